"""Feature construction for charging-demand forecasting.

Three steps, each usable on its own:

1. :func:`sessions_to_series` spreads every charging session's energy over the hours (or days) it spans,
   in proportion to the overlap of ``[start_ts, end_ts)`` with each bin (not all at the start hour).
2. :func:`to_panel` turns a long series ``site_id, ts, energy_kwh[, exog...]`` into a :class:`Panel`: a regular
   time grid x sites matrix. A site exists from its first observation on; a missing row after that is zero
   demand (``gaps="zero"``, the default, right for session-derived data) or unknown (``gaps="nan"``); an
   explicitly empty ``energy_kwh`` is always unknown.
3. :func:`build_features` computes, for a forecast horizon of ``H`` steps, features of each (time, site) cell
   that use only data at or before ``t - H``: lags, rolling statistics over one day and one week, same-hour
   and same-day-type profiles, site scale and age, calendar (hour, weekday, Chinese public holidays and
   make-up working days via ``chinese_calendar``) and exogenous operations known in advance.

Energy features and the target are divided by a per-site scale (the site's mean over the four weeks ending at
``t - H``, floored at a quarter of its all-history mean) so that one global model serves small and large
stations alike; the scale itself is a feature (``log_scale``), so a quantile of the scaled target times the
scale is the quantile in kWh.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from ._warnings import _quiet

SERIES_COLUMNS = ("site_id", "ts", "energy_kwh")
SESSION_COLUMNS = ("site_id", "start_ts", "end_ts", "energy_kwh")
# Exogenous columns picked up automatically when present (values must be known at forecast time: plans,
# fleet size in service, static station attributes).
KNOWN_EXOG = ("planned_tonnes", "planned_trips", "trucks_in_service", "rated_kw", "n_connectors")
# station properties: constant for long stretches, so their value relative to last week's says nothing
STATIC_EXOG = ("rated_kw", "n_connectors")

_FREQS = {"h": "h", "H": "h", "1h": "h", "hour": "h", "d": "D", "D": "D", "1d": "D", "day": "D"}


def normalize_freq(freq: str) -> str:
    """'H'/'h' -> 'h' (hourly), 'D'/'d' -> 'D' (daily)."""
    try:
        return _FREQS[freq]
    except KeyError:
        raise ValueError(f"unsupported freq {freq!r}: use H (hourly) or D (daily)") from None


def steps_per_day(freq: str) -> int:
    return 24 if normalize_freq(freq) == "h" else 1


def _to_naive(ts: pd.Series) -> pd.Series:
    """Parse timestamps; tz-aware values keep their wall-clock time (the zone is dropped)."""
    if not pd.api.types.is_datetime64_any_dtype(ts):
        ts = pd.to_datetime(ts, format="mixed")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    return ts.astype("datetime64[ns]")


# --------------------------------------------------------------------------------------------------
# 1. sessions -> energy per bin
# --------------------------------------------------------------------------------------------------
def sessions_to_series(sessions: pd.DataFrame, freq: str = "h", max_duration_h: float = 72.0,
                       extra_cols: tuple[str, ...] = ()) -> pd.DataFrame:
    """Spread each session's ``energy_kwh`` uniformly over ``[start_ts, end_ts)`` into ``freq`` bins.

    A session with a missing, equal or earlier end puts all its energy in its start bin. Sessions longer than
    ``max_duration_h`` are cut to that length (a car left plugged in for days does not charge for days).
    Returns ``site_id, ts, energy_kwh`` with one row per (site, bin) that received energy (zero bins are not
    written; :func:`to_panel` fills them). ``extra_cols`` are ignored here (exogenous columns belong to the
    series level, not to sessions).
    """
    f = normalize_freq(freq)
    missing = [c for c in SESSION_COLUMNS if c not in sessions.columns]
    if missing:
        raise ValueError(f"session frame lacks columns {missing}")
    s = sessions.loc[:, list(SESSION_COLUMNS)].copy()
    s = s[s["energy_kwh"].notna() & s["start_ts"].notna()]
    s["start_ts"] = _to_naive(s["start_ts"])
    s["end_ts"] = _to_naive(s["end_ts"])
    bin_ns = np.int64(3600 * 10**9) if f == "h" else np.int64(86400 * 10**9)
    start = s["start_ts"].to_numpy("datetime64[ns]").astype(np.int64)
    end = s["end_ts"].to_numpy("datetime64[ns]")
    end_i = np.where(np.isnat(end), start, end.astype(np.int64))
    end_i = np.minimum(end_i, start + np.int64(max_duration_h * 3600 * 10**9))
    energy = s["energy_kwh"].to_numpy(float)
    point = end_i <= start
    first_bin = start // bin_ns
    last_bin = np.where(point, first_bin, (end_i - 1) // bin_ns)
    nbins = (last_bin - first_bin + 1).astype(np.int64)
    rep = np.repeat(np.arange(len(s)), nbins)
    offs = np.arange(nbins.sum()) - np.repeat(np.cumsum(nbins) - nbins, nbins)
    b = first_bin[rep] + offs
    lo = np.maximum(start[rep], b * bin_ns)
    hi = np.minimum(end_i[rep], (b + 1) * bin_ns)
    dur = (end_i - start).astype(float)
    frac = np.where(point[rep], 1.0, (hi - lo) / np.where(dur > 0, dur, 1.0)[rep])
    out = pd.DataFrame({
        "site_id": s["site_id"].astype(str).to_numpy()[rep],
        "ts": pd.to_datetime(b * bin_ns),
        "energy_kwh": energy[rep] * frac,
    })
    return out.groupby(["site_id", "ts"], as_index=False, sort=True)["energy_kwh"].sum()


def read_input(path_or_df, freq: str = "h", exog: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read a CSV (or take a frame) of either kind and return the long series ``site_id, ts, energy_kwh, exog..``.

    * series: ``site_id, ts, energy_kwh`` (any finer step is summed into ``freq`` bins);
    * sessions: ``site_id, start_ts, end_ts, energy_kwh`` (spread over the bins they span).
    Exogenous columns: ``exog`` if given, else those of :data:`KNOWN_EXOG` present (series input only;
    they are averaged within a bin).
    """
    df = pd.read_csv(path_or_df) if not isinstance(path_or_df, pd.DataFrame) else path_or_df.copy()
    df.columns = [c.strip() for c in df.columns]
    f = normalize_freq(freq)
    if set(SESSION_COLUMNS) <= set(df.columns):
        return sessions_to_series(df, f)
    if not set(SERIES_COLUMNS) <= set(df.columns):
        raise ValueError(f"input needs columns {SERIES_COLUMNS} or {SESSION_COLUMNS}; got {list(df.columns)}")
    ex = [c for c in (exog if exog is not None else KNOWN_EXOG) if c in df.columns]
    out = df.loc[:, list(SERIES_COLUMNS) + ex].copy()
    out["site_id"] = out["site_id"].astype(str)
    out["ts"] = _to_naive(out["ts"]).dt.floor("h" if f == "h" else "D")
    out = out[out["ts"].notna()]
    agg = {"energy_kwh": lambda v: v.sum(min_count=1)}
    agg.update({c: "mean" for c in ex})
    return out.groupby(["site_id", "ts"], as_index=False, sort=True).agg(agg)


# --------------------------------------------------------------------------------------------------
# 2. panel
# --------------------------------------------------------------------------------------------------
@dataclass
class Panel:
    """Regular grid: ``y[t, s]`` energy of site ``s`` in bin ``index[t]``; NaN = unknown or site not yet open.

    The grid starts at midnight of the first day and ends at the last bin of the last day (padding is NaN),
    so that ``y.reshape(n_days, steps_per_day, n_sites)`` works.
    """
    index: pd.DatetimeIndex
    sites: list[str]
    y: np.ndarray
    first: np.ndarray                       # per site: grid index of its first observation
    freq: str = "h"
    exog: dict[str, np.ndarray] = field(default_factory=dict)
    last_obs: int = -1                      # grid index of the last bin with any observation

    @property
    def n_steps(self) -> int:
        return len(self.index)

    @property
    def spd(self) -> int:
        return steps_per_day(self.freq)

    def copy(self) -> "Panel":
        return Panel(self.index, list(self.sites), self.y.copy(), self.first.copy(), self.freq,
                     {k: v.copy() for k, v in self.exog.items()}, self.last_obs)

    def to_long(self, values: np.ndarray | None = None, name: str = "energy_kwh") -> pd.DataFrame:
        v = self.y if values is None else values
        t, s = np.nonzero(np.arange(self.n_steps)[:, None] >= self.first[None, :])
        return pd.DataFrame({"site_id": np.asarray(self.sites, dtype=object)[s], "ts": self.index[t],
                             name: v[t, s]})


def to_panel(series: pd.DataFrame, freq: str = "h", gaps: str = "zero", end=None,
             sites: list[str] | None = None) -> Panel:
    """Long series -> :class:`Panel`. ``end`` extends the grid (NaN) to cover future bins to forecast."""
    f = normalize_freq(freq)
    if gaps not in ("zero", "nan"):
        raise ValueError("gaps must be 'zero' or 'nan'")
    df = series.copy()
    df["site_id"] = df["site_id"].astype(str)
    df["ts"] = _to_naive(df["ts"])
    if df.empty:
        raise ValueError("empty series")
    exog_cols = [c for c in df.columns if c not in SERIES_COLUMNS]
    site_list = sorted(df["site_id"].unique()) if sites is None else list(sites)
    start = df["ts"].min().normalize()
    stop = df["ts"].max() if end is None else max(df["ts"].max(), pd.Timestamp(end))
    stop = stop.normalize() + pd.Timedelta(days=1)
    step = pd.Timedelta(hours=1) if f == "h" else pd.Timedelta(days=1)
    index = pd.date_range(start, stop - step, freq=step)
    T, S = len(index), len(site_list)
    ti = ((df["ts"] - start) // step).to_numpy(np.int64)
    si = pd.Index(site_list).get_indexer(df["site_id"])
    keep = si >= 0
    y = np.full((T, S), np.nan)
    obs = np.zeros((T, S), bool)
    y[ti[keep], si[keep]] = df["energy_kwh"].to_numpy(float)[keep]
    obs[ti[keep], si[keep]] = True
    has_val = obs & ~np.isnan(y)
    first = np.where(has_val.any(0), has_val.argmax(0), T)
    last_obs = int(np.nonzero(has_val.any(1))[0].max()) if has_val.any() else -1
    grid_t = np.arange(T)[:, None]
    if gaps == "zero":
        fill = (~obs) & (grid_t >= first[None, :]) & (grid_t <= last_obs)
        y[fill] = 0.0
    y[grid_t < first[None, :]] = np.nan
    exog = {}
    for c in exog_cols:
        m = np.full((T, S), np.nan)
        m[ti[keep], si[keep]] = pd.to_numeric(df[c], errors="coerce").to_numpy(float)[keep]
        # static/slow exogenous values carry forward (a station's rated power, the fleet size in service)
        m = pd.DataFrame(m).ffill().to_numpy()
        exog[c] = m
    return Panel(index, site_list, y, first, f, exog, last_obs)


# --------------------------------------------------------------------------------------------------
# calendar
# --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _cn_day(d: _dt.date) -> tuple[int, int, int]:
    """(offday, statutory holiday, make-up working day) from chinese_calendar; weekends only out of range."""
    import chinese_calendar as cc
    weekend = d.weekday() >= 5
    try:
        off, name = cc.get_holiday_detail(d)
    except NotImplementedError:
        return int(weekend), 0, 0
    return int(off), int(bool(off) and name is not None), int((not off) and weekend)


def day_flags(days: pd.DatetimeIndex, holidays: str = "cn") -> pd.DataFrame:
    """Per day: offday (weekend or holiday), holiday, makeup_workday, days_to_holiday, days_since_holiday.

    ``holidays="cn"`` uses the Chinese State Council calendar (chinese_calendar; years it does not cover fall
    back to plain weekends); ``"none"`` uses weekends only (no holiday columns are then informative).
    """
    days = pd.DatetimeIndex(days).normalize()
    if holidays == "cn":
        flags = np.array([_cn_day(d.date()) for d in days], dtype=float).reshape(-1, 3)
    elif holidays == "none":
        wk = (days.weekday >= 5).astype(float)
        flags = np.column_stack([wk, np.zeros(len(days)), np.zeros(len(days))])
    else:
        raise ValueError("holidays must be 'cn' or 'none'")
    out = pd.DataFrame(flags, index=days, columns=["offday", "holiday", "makeup_workday"])
    hol = out["holiday"].to_numpy() > 0
    n = len(days)
    idx = np.arange(n)
    last = np.where(hol, idx, -10**6)
    last = np.maximum.accumulate(last)
    nxt = np.where(hol, idx, 10**6)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    cap = 10
    out["days_since_holiday"] = np.minimum(idx - last, cap).astype(float)
    out["days_to_holiday"] = np.minimum(nxt - idx, cap).astype(float)
    return out


# --------------------------------------------------------------------------------------------------
# 3. features
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureConfig:
    holidays: str = "cn"          # "cn" | "none"
    n_recent: int = 3             # recent lags H, H+1, ... H+n_recent-1
    n_day_lags: int = 3           # same-hour lags on the first n available days
    n_week_lags: int = 3          # same-hour-same-weekday lags on the first n available weeks
    profile_days: int = 7         # same-hour mean/median over this many available days
    profile_weeks: int = 4        # same-hour-same-weekday mean/median over this many weeks
    daytype_days: int = 5         # same-hour mean over the last n days of the target's day type (work/off)
    scale_weeks: int = 4          # per-site scale: mean over this many weeks ending at t - H
    # how energy features and the target are normalised: "weeks" = the scale_weeks mean (floored at a quarter
    # of the all-history mean); "recent" = the mean over the last level_days days, floored at a quarter of the
    # scale_weeks mean (a growing programme or a recovering campus is then judged against its recent level)
    scale_by: str = "weeks"
    level_days: int = 7           # window of the recent level (days ending at t - H)
    level_halflife_days: float | None = None   # adds an exponentially weighted level (half-life in days)
    exog: tuple[str, ...] = ()    # exogenous columns used as features (known in advance)
    exog_relative: bool = True    # time-varying exog also relative to its value at the reference hours
    # daily level x hourly shape forecasts (models.level) as helper entries ``_level_<variant>`` (kWh): not
    # GBM features, candidates the refit check may serve instead of (or mixed with) the GBM's P50
    level_shape: bool = True
    level_damping: float = 0.5    # share of the daily trend's slope carried past the last complete day


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """Rows shifted down by k >= 0: out[t] = a[t - k] (NaN where t - k < 0)."""
    out = np.full_like(a, np.nan)
    if k < a.shape[0]:
        out[k:] = a[: a.shape[0] - k]
    return out


def _csum(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = ~np.isnan(a)
    v = np.where(ok, a, 0.0)
    z = np.zeros((1,) + a.shape[1:])
    return (np.concatenate([z, np.cumsum(v, 0)]), np.concatenate([z, np.cumsum(v * v, 0)]),
            np.concatenate([z, np.cumsum(ok, 0)]))


def _window(cs, n: int, end_lag: int, T: int, stat: str = "mean") -> np.ndarray:
    """Statistic over the n steps ending at t - end_lag (inclusive), NaN-aware, for every t."""
    c1, c2, cn = cs
    t = np.arange(T)
    hi = t - end_lag + 1                    # exclusive upper bound in cumsum coordinates
    lo = np.maximum(hi - n, 0)
    valid = hi > 0
    hi_c = np.clip(hi, 0, T)
    s1 = c1[hi_c] - c1[lo]
    cnt = cn[hi_c] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, s1 / np.maximum(cnt, 1), np.nan)
        if stat == "mean":
            out = mean
        elif stat == "std":
            s2 = c2[hi_c] - c2[lo]
            out = np.sqrt(np.maximum(s2 / np.maximum(cnt, 1) - mean**2, 0.0))
            out = np.where(cnt > 1, out, np.nan)
        elif stat == "count":
            out = cnt.astype(float)
        else:
            raise ValueError(stat)
    out[~valid] = np.nan
    return out


def _expanding_mean(cs, end_lag: int, T: int) -> np.ndarray:
    c1, _, cn = cs
    hi = np.clip(np.arange(T) - end_lag + 1, 0, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cn[hi] > 0, c1[hi] / np.maximum(cn[hi], 1), np.nan)


def _stack_stat(mats: list[np.ndarray], stat: str) -> np.ndarray:
    st = np.stack(mats)
    with np.errstate(invalid="ignore"), _quiet():
        return np.nanmean(st, 0) if stat == "mean" else np.nanmedian(st, 0)


def _daytype_profile(y: np.ndarray, offday: np.ndarray, spd: int, k_min: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Same-step-of-day mean and median over the last ``n`` days of the target day's type (work/off) that lie
    at least ``k_min`` days back. Returns (mean, median), each shaped like ``y``."""
    T, S = y.shape
    nd = T // spd
    Y = y.reshape(nd, spd, S)
    mean = np.full((nd, spd, S), np.nan)
    med = np.full((nd, spd, S), np.nan)
    for typ in (0, 1):
        days_t = np.nonzero(offday == typ)[0]
        if len(days_t) == 0:
            continue
        Yt = Y[days_t]
        cs = _csum(Yt)
        targets = days_t
        pos = np.searchsorted(days_t, targets - k_min, side="right")   # number of eligible days
        hi, lo = pos, np.maximum(pos - n, 0)
        cnt = cs[2][hi] - cs[2][lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[targets] = np.where(cnt > 0, (cs[0][hi] - cs[0][lo]) / np.maximum(cnt, 1), np.nan)
        with _quiet():
            for j, (a, b) in enumerate(zip(lo, hi)):
                if b > a:
                    med[targets[j]] = np.nanmedian(Yt[a:b], 0)
    return mean.reshape(T, S), med.reshape(T, S)


def ewm_level(y: np.ndarray, halflife_steps: float) -> np.ndarray:
    """Exponentially weighted mean of each column over all values at or before t (NaN = skipped, not zero):
    ``m[t] = sum_k w^k y[t-k] / sum_k w^k`` over the known ``y[t-k]``, ``w = 0.5 ** (1 / halflife_steps)``.
    Causal by construction: row t uses rows <= t only (shift it by the horizon before use)."""
    w = 0.5 ** (1.0 / float(halflife_steps))
    ok = ~np.isnan(y)
    v = np.where(ok, y, 0.0)
    num = np.zeros(y.shape[1:])
    den = np.zeros(y.shape[1:])
    out = np.full(y.shape, np.nan)
    for t in range(y.shape[0]):
        num = w * num + v[t]
        den = w * den + ok[t]
        out[t] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def horizon_lags(horizon: int, freq: str) -> dict[str, int]:
    """The reference lags (in steps) used by the baselines at this horizon: the most recent same step of day
    (daily seasonal-naive) and of week (weekly seasonal-naive) that is at least ``horizon`` steps back."""
    d = steps_per_day(freq)
    w = 7 * d
    return {"daily": d * -(-horizon // d), "weekly": w * -(-horizon // w)}


def build_features(panel: Panel, horizon: int, cfg: FeatureConfig = FeatureConfig()) -> dict[str, np.ndarray]:
    """Feature matrices (each shaped ``(T, S)``) for forecasting ``y[t]`` from data at or before ``t - horizon``.

    Returns a dict with the features plus helper entries (leading ``_``, not model inputs): ``_scale``
    (per-cell scale used to normalise energy features and the target) and, with ``cfg.level_shape``, the
    daily level x hourly shape forecasts ``_level_<variant>`` in kWh (:mod:`models.level`).
    Every energy feature is a function of ``y[: t - horizon + 1]`` only.
    """
    H = int(horizon)
    if H < 1:
        raise ValueError("horizon must be >= 1 step")
    y = panel.y
    T, S = y.shape
    d = panel.spd
    w = 7 * d
    kd = -(-H // d)                      # first same-step-of-day lag (in days) that is >= H steps back
    kw = -(-H // w)
    cs = _csum(y)
    F: dict[str, np.ndarray] = {}

    recent = [H + i for i in range(cfg.n_recent)]
    day_lags = [d * (kd + i) for i in range(cfg.n_day_lags)]
    week_lags = [w * (kw + i) for i in range(cfg.n_week_lags)]
    for lag in sorted(set(recent + day_lags + week_lags)):
        F[f"lag_{lag}"] = _shift(y, lag)
    F["sameh_mean"] = _stack_stat([_shift(y, d * (kd + i)) for i in range(cfg.profile_days)], "mean")
    F["sameh_median"] = _stack_stat([_shift(y, d * (kd + i)) for i in range(cfg.profile_days)], "median")
    nz = np.where(np.isnan(y), np.nan, (y > 0).astype(float))
    F["sameh_nonzero"] = _stack_stat([_shift(nz, d * (kd + i)) for i in range(cfg.profile_days)], "mean")
    F["samewh_mean"] = _stack_stat([_shift(y, w * (kw + i)) for i in range(cfg.profile_weeks)], "mean")
    F["samewh_median"] = _stack_stat([_shift(y, w * (kw + i)) for i in range(cfg.profile_weeks)], "median")

    days = panel.index[::d]
    flags = day_flags(days, cfg.holidays)
    off_day = flags["offday"].to_numpy().astype(int)
    dt_mean, dt_med = _daytype_profile(y, off_day, d, kd, cfg.daytype_days)
    F["daytype_mean"], F["daytype_median"] = dt_mean, dt_med
    F["daytype_nonzero"] = _daytype_profile(nz, off_day, d, kd, cfg.daytype_days)[0]

    if d > 1:
        F["roll_mean_day"] = _window(cs, d, H, T)
    F["roll_mean_week"] = _window(cs, w, H, T)
    F["roll_std_week"] = _window(cs, w, H, T, "std")
    F["roll_mean_prevweek"] = _window(cs, w, H + w, T)
    roll_max = pd.DataFrame(y).rolling(w, min_periods=1).max().to_numpy()
    F["roll_max_week"] = _shift(roll_max, H)
    F["roll_nonzero_week"] = _window(_csum(nz), w, H, T)        # fraction of non-zero bins (not scaled)
    scale_win = _window(cs, cfg.scale_weeks * w, H, T)
    site_mean = _expanding_mean(cs, H, T)
    F["site_mean"] = site_mean
    if cfg.level_halflife_days:
        F["level_ewm"] = _shift(ewm_level(y, cfg.level_halflife_days * d), H)

    with np.errstate(invalid="ignore"):
        if cfg.scale_by == "weeks":
            scale = np.fmax(scale_win, 0.25 * site_mean)
        elif cfg.scale_by == "recent":
            level = _window(cs, cfg.level_days * d, H, T)
            scale = np.fmax(level, 0.25 * scale_win)
            F["roll_mean_4week"] = scale_win          # the longer level, relative to the recent one
        else:
            raise ValueError("scale_by must be 'weeks' or 'recent'")
    scale = np.where(np.isnan(scale), np.nan, np.maximum(scale, 1e-3))
    energy_keys = [k for k in F if "nonzero" not in k]
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in energy_keys:
            F[k] = F[k] / scale
        F["trend_week"] = (F["roll_mean_week"] + 0.05) / (F["roll_mean_prevweek"] + 0.05)
    F["log_scale"] = np.log1p(scale)

    # calendar of the target bin
    day_idx = np.arange(T) // d
    cal = flags.to_numpy()[day_idx]          # (T, 5)
    if d > 1:
        F["hour"] = np.repeat(np.asarray(panel.index.hour, float)[:, None], S, 1)
    F["dow"] = np.repeat(np.asarray(panel.index.dayofweek, float)[:, None], S, 1)
    names = list(flags.columns) if cfg.holidays == "cn" else ["offday"]
    for name in names:
        j = list(flags.columns).index(name)
        F[name] = np.repeat(cal[:, j][:, None], S, 1)
    # day type of the reference days the lags come from (is yesterday's value a holiday value?)
    for tag, lag in (("offday_ref_day", d * kd), ("offday_ref_week", w * kw)):
        ref = day_idx - lag // d
        v = np.where(ref >= 0, off_day[np.clip(ref, 0, None)], np.nan).astype(float)
        F[tag] = np.repeat(v[:, None], S, 1)
    age = (np.arange(T)[:, None] - H - panel.first[None, :]) / d
    F["site_age_days"] = np.where(age >= 0, age, np.nan)
    for c in cfg.exog:
        x = panel.exog[c] if c in panel.exog else np.full((T, S), np.nan)
        F[f"exog_{c}"] = x
        if cfg.exog_relative and c not in STATIC_EXOG:
            ref = _stack_stat([_shift(x, d * (kd + i)) for i in range(cfg.profile_days)], "mean")
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.where(ref > 0, x / np.where(ref > 0, ref, 1.0), np.nan)
                ref_day = _shift(x, d * kd)
                rel_day = np.where(ref_day > 0, x / np.where(ref_day > 0, ref_day, 1.0), np.nan)
            F[f"exog_{c}_rel"] = rel
            F[f"exog_{c}_x_sameh"] = F["sameh_mean"] * rel
            F[f"exog_{c}_x_lagday"] = F[f"lag_{d * kd}"] * rel_day
    F["_scale"] = scale
    if cfg.level_shape:
        from .level import PREFIX, LevelConfig, level_shape_forecasts
        lcfg = LevelConfig(damping=cfg.level_damping)
        for name, v in level_shape_forecasts(y, d, off_day, H, lcfg).items():
            F[PREFIX + name] = v
    return F


def feature_names(F: dict[str, np.ndarray]) -> list[str]:
    return [k for k in F if not k.startswith("_")]


def gather(F: dict[str, np.ndarray], t_idx: np.ndarray, s_idx: np.ndarray) -> pd.DataFrame:
    """Rows (t, s) of the feature matrices as a DataFrame (float32 features)."""
    names = feature_names(F)
    return pd.DataFrame({k: F[k][t_idx, s_idx].astype(np.float32) for k in names})
