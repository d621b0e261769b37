"""Daily level x hourly shape: a forecast that can follow (and extrapolate) a site's daily total.

The GBM forecasts each bin relative to the site's 4-week scale, so it cannot carry a level it has not seen.
This component forecasts the **daily total** of the target's day type (work day / off day) and multiplies it
by the **share of the day** each step of that day type takes:

    p50[t] = level(day of t) * shape(step of day of t)

Everything comes from *complete days at or before the issue time* ``t - H``: the last such day is
``L(t) = floor((t - H + 1) / spd) - 1`` (for an hourly grid and H = 24 h that is the day before yesterday for
hours 00-22 and yesterday for 23:00). For each site, day type and ``L``:

* reference days: the last ``shape_days`` days of the target's type up to ``L`` whose total is known;
* ``flat``: the mean daily total of the reference days;
* ``trend``: a robust (Theil-Sen: median of pairwise slopes) linear trend through the totals of the days
  of the target's type in the ``trend_days`` calendar days up to ``L``, evaluated at ``L`` and extrapolated
  to the target day with a damped slope: ``fit(L) + damping * slope * (day - L)``, floored at 0; with fewer
  than ``min_trend_points`` days, the flat level;
* shape: the per-step mean (``mean``) or median (``median``) of the reference days, divided by their mean
  daily total (a mean share sums to 1 over the day; a median share usually sums to less, which is what the
  MAE of an intermittent hour rewards).

Four variants (``flat_mean``, ``flat_median``, ``trend_mean``, ``trend_median``); ``flat_*`` is exactly the
same-day-type profile of the reference days, ``trend_*`` rescales it by ``trend / flat``. Which variant (and
whether this, the GBM, or their equal-weight mix is served) is decided per refit on the two weeks before the
origin, in :func:`models.gbm.validate_refit`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._warnings import _quiet

LEVELS = ("flat", "trend")
SHAPES = ("mean", "median")
VARIANTS = tuple(f"{lv}_{sh}" for lv in LEVELS for sh in SHAPES)
PREFIX = "_level_"          # key prefix of the variants in the feature dict (not GBM features: leading "_")


@dataclass(frozen=True)
class LevelConfig:
    # chosen on the third of each real series *before* its test window (see docs/forecasting.md)
    shape_days: int = 5           # reference days of the target's type for the shape and the flat level
    trend_days: int = 42          # calendar days (up to the last complete day) the trend is fitted on
    damping: float = 0.5          # share of the fitted slope carried past the last complete day
    min_trend_points: int = 4     # fewer known days of the type in the window: flat level instead


def daily_totals(y: np.ndarray, spd: int) -> np.ndarray:
    """``(n_days, S)`` sum over each day's steps; NaN if any step of that day is unknown (a partial day
    would read as a drop in level)."""
    T, S = y.shape
    Y = y[: (T // spd) * spd].reshape(T // spd, spd, S)
    return np.where(np.isnan(Y).any(1), np.nan, np.nansum(Y, 1))


def last_complete_day(t: np.ndarray, horizon: int, spd: int) -> np.ndarray:
    """Index of the last day all of whose steps are at or before the issue time ``t - horizon``."""
    return (np.asarray(t) - int(horizon) + 1) // spd - 1


def _theil_sen(days: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: median pairwise slope and median intercept of ``vals`` against ``days`` (NaN entries skipped).
    ``days``, ``vals``: (rows, m)."""
    i, j = np.triu_indices(days.shape[1], 1)
    dd = days[:, j] - days[:, i]
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        slope = np.nanmedian(np.where(dd > 0, (vals[:, j] - vals[:, i]) / np.where(dd > 0, dd, 1), np.nan), 1)
        intercept = np.nanmedian(vals - slope[:, None] * days, 1)
    return slope, intercept


@dataclass
class DayTypeLevels:
    """Per (last complete day L, site) for one day type: the flat and trend ingredients and the shapes."""
    flat: np.ndarray              # (n_days, S) mean total of the reference days
    fit_at_l: np.ndarray          # (n_days, S) Theil-Sen line at L (NaN: too few points)
    slope: np.ndarray             # (n_days, S) kWh per day
    shape: dict                   # name -> (n_days, spd, S) per-step profile / flat


def day_type_levels(D: np.ndarray, Y: np.ndarray, is_type: np.ndarray, cfg: LevelConfig) -> DayTypeLevels:
    """Ingredients for every last complete day ``L`` from the days of one type.

    ``D``: (n_days, S) daily totals; ``Y``: (n_days, spd, S) the steps; ``is_type``: (n_days,) bool."""
    nd, spd, S = Y.shape
    flat = np.full((nd, S), np.nan)
    fit = np.full((nd, S), np.nan)
    slope = np.full((nd, S), np.nan)
    shapes = {sh: np.full((nd, spd, S), np.nan) for sh in SHAPES}
    L = np.arange(nd)
    n_ref, m = cfg.shape_days, cfg.trend_days
    for s in range(S):
        known = np.nonzero(is_type & np.isfinite(D[:, s]))[0]          # days of this type with a known total
        if len(known) == 0:
            continue
        pos = np.searchsorted(known, L, side="right")                   # how many such days are <= L
        # reference days: the last n_ref known days of the type <= L (padded with -1 = none)
        k = pos[:, None] - n_ref + np.arange(n_ref)[None, :]
        ref = np.where(k >= 0, known[np.clip(k, 0, None)], -1)
        has = ref >= 0
        tot = np.where(has, D[np.clip(ref, 0, None), s], np.nan)
        with np.errstate(invalid="ignore"), _quiet():
            flat[:, s] = np.nanmean(tot, 1)
            steps = np.where(has[:, :, None], Y[np.clip(ref, 0, None), :, s], np.nan)    # (nd, n_ref, spd)
            prof = {"mean": np.nanmean(steps, 1), "median": np.nanmedian(steps, 1)}
        f = flat[:, s][:, None]
        for sh in SHAPES:
            shapes[sh][:, :, s] = np.where(f > 0, prof[sh] / np.where(f > 0, f, 1.0), 0.0)
            shapes[sh][~np.isfinite(flat[:, s]), :, s] = np.nan
        # trend: the known days of the type in the m calendar days up to L (at most m of them)
        k = pos[:, None] - m + np.arange(m)[None, :]
        win = np.where(k >= 0, known[np.clip(k, 0, None)], -1)
        inside = (win >= 0) & (win > L[:, None] - m)
        days = np.where(inside, win, np.nan).astype(float)
        vals = np.where(inside, D[np.clip(win, 0, None), s], np.nan)
        enough = inside.sum(1) >= cfg.min_trend_points
        if enough.any():
            b, a = _theil_sen(days[enough], vals[enough])
            slope[enough, s] = b
            fit[enough, s] = a + b * L[enough]
    return DayTypeLevels(flat, fit, slope, shapes)


def level_shape_forecasts(y: np.ndarray, spd: int, offday: np.ndarray, horizon: int,
                          cfg: LevelConfig = LevelConfig()) -> dict[str, np.ndarray]:
    """The four variants' P50 (kWh), each ``(T, S)`` like ``y``, for a forecast of ``y[t]`` issued at
    ``t - horizon`` from complete days at or before that time only (NaN where there is no reference day).

    ``offday``: per day of the grid, 1 for an off day (weekend/holiday), 0 for a work day."""
    T, S = y.shape
    nd = T // spd
    D = daily_totals(y, spd)
    Y = y[: nd * spd].reshape(nd, spd, S)
    off = np.asarray(offday[:nd]).astype(int)
    per_type = {typ: day_type_levels(D, Y, off == typ, cfg) for typ in (0, 1)}
    t = np.arange(T)
    day = t // spd
    L = last_complete_day(t, horizon, spd)
    ok = (L >= 0) & (day < nd)
    Lc = np.clip(L, 0, nd - 1)
    dc = np.clip(day, 0, nd - 1)
    step = t % spd
    typ = off[dc]
    out = {v: np.full((T, S), np.nan) for v in VARIANTS}
    for ty, lv in per_type.items():
        rows = np.nonzero(ok & (typ == ty))[0]
        if len(rows) == 0:
            continue
        Lr = Lc[rows]
        flat = lv.flat[Lr]
        ahead = (day[rows] - Lr).astype(float)[:, None]
        trend = lv.fit_at_l[Lr] + cfg.damping * lv.slope[Lr] * ahead
        trend = np.where(np.isfinite(trend), np.maximum(trend, 0.0), flat)
        for sh in SHAPES:
            share = lv.shape[sh][Lr, step[rows]]
            out[f"flat_{sh}"][rows] = share * flat
            out[f"trend_{sh}"][rows] = share * trend
    return out
