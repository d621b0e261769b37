"""Rolling, per-site conformal calibration of the P10/P90 band (conformalised quantile regression).

The quantile models' raw P10/P90 are shifted by offsets learnt from *out-of-sample* residuals of the same
forecaster (the same horizon model) over a rolling window before the forecast's issue time:

* conformity scores of a forecast with raw band ``[p10, p90]``, in units of the site scale ``s``:
  ``lo = (p10 - y) / s`` (how far the actual fell below the P10) and ``hi = (y - p90) / s`` (above the P90);
* each bound is calibrated on its own side (one-sided CQR, miss share ``ALPHA_SIDE`` = 10 % per side, so the
  band aims at 80 %): ``p10' = p10 - Q_lo * s`` and ``p90' = p90 + Q_hi * s``, where ``Q`` is the conformal
  quantile (:func:`conformal_quantile`) of the scores in the window;
* the window: the scores of the same site whose target lies in the ``WINDOW_DAYS`` days ending at the
  *calibration cut*, the last step of the last complete day at or before the issue time (a forecast issued
  at 23:00 sees its whole day, one issued at 15:00 sees up to the previous midnight: residuals are only used
  once their actual was known when the forecast was issued, so there is no leakage);
* a site with fewer than ``MIN_SITE_SCORES`` scores in the window (a new station, a feed outage) uses the
  scores of all sites in the window; with none at all the band stays raw.

Scores come from the refit check's validation fortnight (models fitted on the data before it) and, as the
forecaster runs, from its own forecasts once their actuals are known (the backtest's earlier forecasts,
or in :func:`models.forecast.predict` the served model's forecasts of the history after its training end).
The P50 is never moved; a shifted bound that would cross it stops at it, and the P10 is floored at 0.
"""
from __future__ import annotations

import math

import numpy as np

ALPHA_SIDE = 0.10         # share of actuals meant to fall below the P10, and the same above the P90
WINDOW_DAYS = 14          # rolling window of residuals (target days before the calibration cut)
MIN_SITE_SCORES = 48      # fewer scores of a site in the window: use all sites' scores (two days of hours)


def conformal_quantile(scores: np.ndarray, level: float = 1 - ALPHA_SIDE) -> float:
    """The split-conformal quantile of ``scores``: the ``k``-th smallest with ``k = ceil((n + 1) * level)``.

    With ``n`` exchangeable scores, a new score is at most this value with probability >= ``level``. When
    ``k > n`` (fewer than ``level / (1 - level)`` scores: 9 at the 90 % level) the guarantee needs an
    infinite bound; the largest score is returned instead (the widest band seen). NaN scores are ignored;
    no score at all gives NaN."""
    s = np.asarray(scores, float)
    s = s[np.isfinite(s)]
    n = len(s)
    if n == 0:
        return float("nan")
    k = min(n, math.ceil((n + 1) * level))
    return float(np.partition(s, k - 1)[k - 1])


def conformity_scores(y: np.ndarray, p10: np.ndarray, p90: np.ndarray,
                      scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conformity scores ``(lo, hi) = ((p10 - y) / scale, (y - p90) / scale)`` (positive = a miss)."""
    y, s = np.asarray(y, float), np.asarray(scale, float)
    return (np.asarray(p10, float) - y) / s, (y - np.asarray(p90, float)) / s


def calibration_cut(issue_idx: np.ndarray, spd: int) -> np.ndarray:
    """Grid index of the last step of the last complete day at or before each issue step."""
    return (np.asarray(issue_idx, np.int64) + 1) // spd * spd - 1


def rolling_offsets(log_t: np.ndarray, log_s: np.ndarray, log_lo: np.ndarray, log_hi: np.ndarray,
                    issue_idx: np.ndarray, site_idx: np.ndarray, spd: int, window_days: int = WINDOW_DAYS,
                    min_site_scores: int = MIN_SITE_SCORES, alpha_side: float = ALPHA_SIDE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Offsets to *add* to P10 and P90 (in units of the site scale) of forecasts issued at ``issue_idx`` for
    sites ``site_idx`` (grid indices), from the score log ``(log_t, log_s, log_lo, log_hi)`` (target grid
    index, site index, scores of :func:`conformity_scores`).

    A forecast uses the scores with target in ``(cut - window_days * spd, cut]``, ``cut`` =
    :func:`calibration_cut` of its issue step: those of its site if there are at least ``min_site_scores``,
    else those of all sites. Returns ``(add_p10, add_p90) = (-Q_lo, Q_hi)``; 0 where there is no score."""
    log_t = np.asarray(log_t, np.int64)
    log_s = np.asarray(log_s, np.int64)
    log_lo = np.asarray(log_lo, float)
    log_hi = np.asarray(log_hi, float)
    good = np.isfinite(log_lo) & np.isfinite(log_hi)
    log_t, log_s, log_lo, log_hi = log_t[good], log_s[good], log_lo[good], log_hi[good]
    cut = calibration_cut(issue_idx, spd)
    site_idx = np.asarray(site_idx, np.int64)
    add_lo = np.zeros(len(cut))
    add_hi = np.zeros(len(cut))
    if len(cut) == 0 or len(log_t) == 0:
        return add_lo, add_hi
    w = int(window_days) * spd
    level = 1.0 - alpha_side
    order = np.argsort(log_t, kind="stable")
    all_t, all_lo, all_hi = log_t[order], log_lo[order], log_hi[order]
    per_site = {}
    for j in np.unique(log_s):
        m = log_s[order] == j
        per_site[int(j)] = (all_t[m], all_lo[m], all_hi[m])
    pooled_cache: dict[int, tuple[float, float]] = {}

    def pooled(c: int) -> tuple[float, float]:
        if c not in pooled_cache:
            a, b = np.searchsorted(all_t, c - w, "right"), np.searchsorted(all_t, c, "right")
            pooled_cache[c] = ((-conformal_quantile(all_lo[a:b], level), conformal_quantile(all_hi[a:b], level))
                               if b > a else (0.0, 0.0))
        return pooled_cache[c]

    n_s = int(site_idx.max()) + 1
    uniq, inverse = np.unique(cut * n_s + site_idx, return_inverse=True)
    res = np.zeros((len(uniq), 2))
    for i, key in enumerate(uniq):
        c, j = int(key // n_s), int(key % n_s)
        t, lo, hi = per_site.get(j, (all_t[:0], all_lo[:0], all_hi[:0]))
        a, b = np.searchsorted(t, c - w, "right"), np.searchsorted(t, c, "right")
        if b - a >= min_site_scores:
            res[i] = (-conformal_quantile(lo[a:b], level), conformal_quantile(hi[a:b], level))
        else:
            res[i] = pooled(c)
    add_lo[:], add_hi[:] = res[inverse, 0], res[inverse, 1]
    return add_lo, add_hi


def apply_offsets(p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, add_p10, add_p90,
                  scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated ``(p10, p90)`` in kWh: ``p10 + add_p10 * scale`` (at most the P50, at least 0) and
    ``p90 + add_p90 * scale`` (at least the P50). Offsets may be scalars or per-cell arrays."""
    s = np.asarray(scale, float)
    lo = np.asarray(p10, float) + np.nan_to_num(np.asarray(add_p10, float)) * s
    hi = np.asarray(p90, float) + np.nan_to_num(np.asarray(add_p90, float)) * s
    p50 = np.asarray(p50, float)
    return np.clip(np.minimum(lo, p50), 0.0, None), np.maximum(hi, p50)
