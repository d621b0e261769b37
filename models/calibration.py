"""Rolling, per-site, adaptive conformal calibration of the P10/P90 band (conformalised quantile regression).

The quantile models' raw P10/P90 are shifted by offsets learnt from *out-of-sample* residuals of the same
forecaster (the same horizon model) over a rolling window before the forecast's issue time:

* conformity scores of a forecast with raw band ``[p10, p90]`` and P50 ``p50``, in units of the site scale
  ``s``: ``lo = (p10 - y) / s`` (how far the actual fell below the P10) and ``hi = (y - p90) / s`` (above the
  P90). A bound is never moved across the P50 and the P10 never below 0, so an actual at or above the P50
  can never fall below the calibrated P10, and one at or below the P50 never above the P90: such a score is
  ``-inf`` ("cannot miss on this side"). Without this, an empty hour (actual 0, P10 = P50 = 0) would count
  as a possible miss below that the clipped band can never make, and the band would cover more than aimed;
* each bound is calibrated on its own side (one-sided CQR, miss share ``ALPHA_SIDE`` = 10 % per side, so the
  band aims at 80 %): ``p10' = p10 - Q_lo * s`` and ``p90' = p90 + Q_hi * s``, where ``Q`` is the conformal
  quantile (:func:`conformal_quantile`) of the scores in the window at level ``1 - alpha``;
* the window: the scores of the same site whose target lies in the ``WINDOW_DAYS`` days ending at the
  *calibration cut*, the last step of the last complete day at or before the issue time (a forecast issued
  at 23:00 sees its whole day, one issued at 15:00 sees up to the previous midnight: residuals are only used
  once their actual was known when the forecast was issued, so there is no leakage);
* a site with fewer than ``MIN_SITE_SCORES`` scores in the window (a new station, a feed outage) uses the
  scores of all sites in the window; with none at all the band stays raw;
* **adaptive miss level** (adaptive conformal inference, Gibbs & Candes 2021), per site and side: ``alpha``
  starts at ``ALPHA_SIDE`` and after each forecast whose actual is known moves by
  ``GAMMA * (ALPHA_SIDE - miss)`` (``miss`` = 1 if the actual fell outside that side of the band the
  forecast *was issued with*), kept in ``ALPHA_BOUNDS`` (-0.3 to 1). A run of misses (a shift the window
  has not caught up with) lowers ``alpha`` and widens the band; a run of hits narrows it, so the long-run
  miss share of each side stays near ``ALPHA_SIDE`` even where the recent scores are not exchangeable with
  the next ones. The
  feedback is delayed as the forecasts are: a forecast issued at ``t - H`` counts only once its target
  ``t`` lies at or before the calibration cut of a later forecast's issue time;
* **week-ahead and longer horizons** (``LONG_HORIZON_DAYS``, :func:`horizon_settings`): the newest score such
  a band can use is that of a forecast issued a whole horizon earlier, so a uniform 14-day window describes
  errors 7-21 days older than the target, and a level shift (a holiday, a recovery) lasting a week or two is
  over before the window has turned. There each score in the window weighs
  ``2 ** (-(cut - t) / HALF_LIFE_STEPS)`` (half weight every 12 hours on an hourly grid) and ``Q`` is the
  weighted conformal quantile of non-exchangeable conformal prediction (Barber et al. 2023;
  :func:`conformal_quantile`), with the adaptive step ``GAMMA_LONG``. With about 17 scores' worth of weight
  per site, the new forecast's own weight of 1 puts each bound near the top of the last day's scores, which
  follows a shift within a day of its first scores; the adaptive level narrows the band where that
  over-covers. Shorter horizons keep the uniform window and ``GAMMA``.

Scores come from the refit check's validation fortnight (models fitted on the data before them) and, as the
forecaster runs, from its own forecasts once their actuals are known (the backtest's earlier forecasts,
or in :func:`models.forecast.predict` the served model's forecasts of the history after its training end).
The miss sequence that drives ``alpha`` is replayed over the same scores, each scored forecast calibrated
as it would have been at its own issue time (target - H), so the backtest and the served forecast follow the
same rule. The P50 is never moved; a shifted bound that would cross it stops at it, and the P10 is floored
at 0.
"""
from __future__ import annotations

import math

import numpy as np

ALPHA_SIDE = 0.10         # share of actuals meant to fall below the P10, and the same above the P90
WINDOW_DAYS = 14          # rolling window of residuals (target days before the calibration cut)
MIN_SITE_SCORES = 48      # fewer scores of a site in the window: use all sites' scores (two days of hours)
GAMMA = 0.002             # adaptive step per scored forecast (0: plain rolling conformal)
ALPHA_BOUNDS = (-0.3, 1.0)  # alpha may go below 0 (a band at the widest score seen) and keeps that debt
OFFSET_CAP = 1e3          # |offset| in site scales; "move the bound to the P50" is any offset beyond this
# week-ahead and longer horizons: the newest score a band can use is a horizon old, so the window's scores are
# weighted by recency (weighted conformal quantile, half weight every HALF_LIFE_STEPS steps before the cut)
LONG_HORIZON_DAYS = 7     # horizons of at least this many days use the settings below
HALF_LIFE_STEPS = 12      # half-life of a score's weight, in grid steps (12 h on an hourly grid)
GAMMA_LONG = 0.003        # adaptive step at those horizons


def horizon_settings(horizon: int, spd: int) -> dict:
    """Keyword arguments of :func:`adaptive_offsets` for a horizon of ``horizon`` steps on a grid of ``spd``
    steps a day: ``gamma`` and ``half_life_steps`` (None: every score in the window weighs the same)."""
    if int(horizon) >= LONG_HORIZON_DAYS * int(spd):
        return {"gamma": GAMMA_LONG, "half_life_steps": HALF_LIFE_STEPS}
    return {"gamma": GAMMA, "half_life_steps": None}


def conformal_quantile(scores: np.ndarray, level: float = 1 - ALPHA_SIDE,
                       weights: np.ndarray | None = None) -> float:
    """The split-conformal quantile of ``scores``: the ``k``-th smallest with ``k = ceil((n + 1) * level)``.

    With ``n`` exchangeable scores, a new score is at most this value with probability >= ``level``. When
    ``k > n`` (fewer than ``level / (1 - level)`` scores: 9 at the 90 % level; or ``level >= 1``) the
    guarantee needs an infinite bound; the largest score is returned instead (the widest band seen); when
    ``k < 1`` (``level`` near 0) the smallest. NaN scores are ignored (``-inf`` is a score: "cannot miss");
    no score at all gives NaN.

    With ``weights`` (one per score, in (0, 1]): the weighted conformal quantile of non-exchangeable
    conformal prediction (Barber, Candes, Ramdas & Tibshirani 2023), the smallest score whose cumulative
    weight (scores sorted) reaches ``level * (W + 1)``, ``W`` the total weight and 1 the weight of the new
    score; all weights 1 give the ``k`` above. Same conventions when it is never reached."""
    s = np.asarray(scores, float)
    keep = ~np.isnan(s)
    s = s[keep]
    n = len(s)
    if n == 0:
        return float("nan")
    if weights is None:
        k = min(n, max(1, math.ceil((n + 1) * level)))
        return float(np.partition(s, k - 1)[k - 1])
    w = np.asarray(weights, float)[keep]
    order = np.argsort(s, kind="stable")
    cum = np.cumsum(w[order])
    k = min(n - 1, int(np.searchsorted(cum, level * (cum[-1] + 1.0), "left")))
    return float(s[order][max(0, k)])


def conformity_scores(y: np.ndarray, p10: np.ndarray, p90: np.ndarray, scale: np.ndarray,
                      p50: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Conformity scores ``(lo, hi) = ((p10 - y) / scale, (y - p90) / scale)`` (positive = a miss). With
    ``p50``: ``lo = -inf`` where ``y >= p50`` and ``hi = -inf`` where ``y <= p50`` (the calibrated bound stops
    at the P50, so that side cannot miss there); NaN where ``y`` is unknown."""
    y, s = np.asarray(y, float), np.asarray(scale, float)
    lo = (np.asarray(p10, float) - y) / s
    hi = (y - np.asarray(p90, float)) / s
    if p50 is not None:
        m = np.asarray(p50, float)
        with np.errstate(invalid="ignore"):
            lo = np.where(y >= m, -np.inf, lo)
            hi = np.where(y <= m, -np.inf, hi)
        lo = np.where(np.isnan(y), np.nan, lo)
        hi = np.where(np.isnan(y), np.nan, hi)
    return lo, hi


def offset_from_quantile(q: float) -> float:
    """An offset in site scales from a conformal quantile, finite (``+-OFFSET_CAP``) and 0 for NaN."""
    return float(np.clip(np.nan_to_num(q, nan=0.0), -OFFSET_CAP, OFFSET_CAP))


def calibration_cut(issue_idx: np.ndarray, spd: int) -> np.ndarray:
    """Grid index of the last step of the last complete day at or before each issue step."""
    return (np.asarray(issue_idx, np.int64) + 1) // spd * spd - 1


class _ScoreWindows:
    """Conformal quantiles of the score log over the window ``(cut - w, cut]``, per site or pooled."""

    def __init__(self, log_t, log_s, log_lo, log_hi, spd: int, window_days: int, min_site_scores: int):
        log_t = np.asarray(log_t, np.int64)
        log_s = np.asarray(log_s, np.int64)
        log_lo = np.asarray(log_lo, float)
        log_hi = np.asarray(log_hi, float)
        good = ~np.isnan(log_lo) & ~np.isnan(log_hi)
        order = np.argsort(log_t[good], kind="stable")
        self.t, self.s = log_t[good][order], log_s[good][order]
        self.lo, self.hi = log_lo[good][order], log_hi[good][order]
        self.per_site = {int(j): np.flatnonzero(self.s == j) for j in np.unique(self.s)}
        self.w = int(window_days) * spd
        self.min_site = min_site_scores

    def scores(self, cut: int, site: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The window's ``(lo, hi, t)`` scores and targets for ``site`` at ``cut`` (its own or pooled), None
        if empty."""
        idx = self.per_site.get(site)
        if idx is not None:
            t = self.t[idx]
            a, b = np.searchsorted(t, cut - self.w, "right"), np.searchsorted(t, cut, "right")
            if b - a >= self.min_site:
                return self.lo[idx[a:b]], self.hi[idx[a:b]], t[a:b]
        a, b = np.searchsorted(self.t, cut - self.w, "right"), np.searchsorted(self.t, cut, "right")
        return (self.lo[a:b], self.hi[a:b], self.t[a:b]) if b > a else None


def rolling_offsets(log_t: np.ndarray, log_s: np.ndarray, log_lo: np.ndarray, log_hi: np.ndarray,
                    issue_idx: np.ndarray, site_idx: np.ndarray, spd: int, window_days: int = WINDOW_DAYS,
                    min_site_scores: int = MIN_SITE_SCORES, alpha_side: float = ALPHA_SIDE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Offsets to *add* to P10 and P90 (in units of the site scale) of forecasts issued at ``issue_idx`` for
    sites ``site_idx`` (grid indices), from the score log ``(log_t, log_s, log_lo, log_hi)`` (target grid
    index, site index, scores of :func:`conformity_scores`), at the fixed miss level ``alpha_side``.

    A forecast uses the scores with target in ``(cut - window_days * spd, cut]``, ``cut`` =
    :func:`calibration_cut` of its issue step: those of its site if there are at least ``min_site_scores``,
    else those of all sites. Returns ``(add_p10, add_p90) = (-Q_lo, Q_hi)``; 0 where there is no score."""
    return adaptive_offsets(log_t, log_s, log_lo, log_hi, issue_idx, site_idx, spd, horizon=1, gamma=0.0,
                            window_days=window_days, min_site_scores=min_site_scores, alpha_side=alpha_side)


def adaptive_offsets(log_t: np.ndarray, log_s: np.ndarray, log_lo: np.ndarray, log_hi: np.ndarray,
                     issue_idx: np.ndarray, site_idx: np.ndarray, spd: int, horizon: int, gamma: float = GAMMA,
                     window_days: int = WINDOW_DAYS, min_site_scores: int = MIN_SITE_SCORES,
                     alpha_side: float = ALPHA_SIDE, alpha_bounds: tuple = ALPHA_BOUNDS,
                     half_life_steps: float | None = None, trace: dict | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rolling_offsets` with the miss level of each side adapted per site (adaptive conformal
    inference, see the module doc).

    Every score in the log is the forecast of its target ``t`` issued at ``t - horizon``; replayed in the
    order of the calibration cuts, each is calibrated as it would have been then (window and level at
    ``calibration_cut(t - horizon)``) and its miss on each side (``score > Q``) moves that site's
    ``alpha`` by ``gamma * (alpha_side - miss)`` once its target is at or before a later cut. A scored
    forecast whose window was empty (raw band) does not count. ``half_life_steps``: each score in the window
    weighs ``2 ** (-(cut - t) / half_life_steps)`` in a weighted conformal quantile (None: all weigh 1;
    :func:`horizon_settings` gives both per horizon). ``trace`` (a dict), if given, receives the replayed
    ``t, s, miss_lo, miss_hi``."""
    win = _ScoreWindows(log_t, log_s, log_lo, log_hi, spd, window_days, min_site_scores)
    q_cut = calibration_cut(issue_idx, spd)
    q_site = np.asarray(site_idx, np.int64)
    add_lo = np.zeros(len(q_cut))
    add_hi = np.zeros(len(q_cut))
    if len(q_cut) == 0 or len(win.t) == 0:
        return add_lo, add_hi
    H = int(horizon)
    # the replayed forecasts (the log, target order) and the cut each was issued under
    r_cut = calibration_cut(win.t - H, spd)
    r_miss = np.full((len(win.t), 2), np.nan)
    adaptive = gamma > 0
    a_min, a_max = alpha_bounds
    # every (cut, site) that needs a quantile: the queries, and (adaptive only) the replayed forecasts
    keys = {(int(c), int(j)) for c, j in zip(q_cut, q_site)}
    if adaptive:
        keys |= {(int(c), int(j)) for c, j in zip(r_cut, win.s)}
    by_cut: dict[int, list[int]] = {}
    for c, j in keys:
        by_cut.setdefault(c, []).append(j)
    alpha = {}                                 # site -> [alpha_lo, alpha_hi]
    fed = 0                                    # replayed forecasts (target order) already fed back
    replay_at = {}
    if adaptive:
        for i, (c, j) in enumerate(zip(r_cut, win.s)):
            replay_at.setdefault((int(c), int(j)), []).append(i)
    offsets = {}
    for c in sorted(by_cut):
        if adaptive:
            # feed back every replayed forecast whose target is known at this cut (its own cut is earlier:
            # target - H <= its cut + spd - 1 < target <= c, so its miss is already decided)
            while fed < len(win.t) and win.t[fed] <= c:
                m = r_miss[fed]
                if not np.isnan(m[0]):
                    a = alpha.setdefault(int(win.s[fed]), [alpha_side, alpha_side])
                    a[0] = min(a_max, max(a_min, a[0] + gamma * (alpha_side - m[0])))
                    a[1] = min(a_max, max(a_min, a[1] + gamma * (alpha_side - m[1])))
                fed += 1
        for j in by_cut[c]:
            sc = win.scores(c, j)
            if sc is None:
                offsets[(c, j)] = (0.0, 0.0, np.nan, np.nan)
                continue
            a_lo, a_hi = alpha.get(j, (alpha_side, alpha_side))
            w = None if not half_life_steps else 0.5 ** ((c - sc[2]) / float(half_life_steps))
            q_lo, q_hi = conformal_quantile(sc[0], 1 - a_lo, w), conformal_quantile(sc[1], 1 - a_hi, w)
            offsets[(c, j)] = (-offset_from_quantile(q_lo), offset_from_quantile(q_hi), q_lo, q_hi)
            for i in replay_at.get((c, j), ()):
                r_miss[i] = (float(win.lo[i] > q_lo), float(win.hi[i] > q_hi))
    for i, (c, j) in enumerate(zip(q_cut, q_site)):
        add_lo[i], add_hi[i] = offsets[(int(c), int(j))][:2]
    if trace is not None:
        trace.update({"t": win.t, "s": win.s, "miss_lo": r_miss[:, 0], "miss_hi": r_miss[:, 1]})
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
