"""Seasonal-naive baselines that respect the forecast horizon.

At a horizon of ``H`` steps the forecast for ``t`` may use only data up to ``t - H``, so a seasonal-naive
forecast with season ``m`` repeats ``y[t - m * ceil(H / m)]``:

* ``snaive_daily``  (m = one day):  same hour yesterday for H <= 24 h; for H = 168 h it is the value a week ago.
* ``snaive_weekly`` (m = one week): same hour on the same weekday last week (for H <= 168 h).
"""
from __future__ import annotations

import numpy as np

from ._warnings import _quiet
from .features import Panel, _shift, horizon_lags

BASELINES = ("snaive_daily", "snaive_weekly")


def seasonal_naive(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``out[t] = y[t - season * ceil(horizon / season)]`` (NaN where that is before the start)."""
    lag = season * -(-int(horizon) // int(season))
    return _shift(np.asarray(y, float), lag)


def baseline_forecasts(panel: Panel, horizon: int) -> dict[str, np.ndarray]:
    """Both baselines as ``(T, S)`` matrices on the panel's grid."""
    lags = horizon_lags(horizon, panel.freq)
    return {"snaive_daily": _shift(panel.y, lags["daily"]), "snaive_weekly": _shift(panel.y, lags["weekly"])}


SEASONAL_NAIVE_DAILY = "seasonal_naive_daily"


def seasonal_naive_daily_forecast(history, start, horizon: int = 168, profile_days: int = 7):
    """Hourly fallback forecast for sites too young to train a model on: the last day repeated.

    For lead ``k`` from ``start`` the P50 is the daily seasonal-naive forecast at horizon ``k``,
    ``y[t - 24 * ceil(k / 24)]``; with ``start`` at midnight that is the same hour of the last day before
    ``start`` for every lead. P10/P90 are the 10 % / 90 % quantiles (linear interpolation) of the same hour
    over the last ``profile_days`` days before ``start`` (fewer when the history is shorter), widened to
    contain the P50: an honest spread of what was seen, not a calibrated interval.

    ``history``: the long series ``site_id, ts, energy_kwh`` (hourly bins; a missing hour between a site's
    first row and the last row of any site is zero demand, later hours are unknown). Returns the columns of
    :func:`models.forecast.predict` (``site_id, ts, lead, model_horizon, issued_at, p10, p50, p90``) with
    ``model_horizon`` = 24.
    """
    import pandas as pd

    from .features import to_panel

    start = pd.Timestamp(start).floor("h")
    series = history[pd.to_datetime(history["ts"]) < start]
    if series.empty:
        raise ValueError("no history before start")
    panel = to_panel(series.loc[:, ["site_id", "ts", "energy_kwh"]], "h", gaps="zero",
                     end=start + pd.Timedelta(hours=int(horizon) - 1))
    last = int(np.searchsorted(panel.index, start)) - 1              # issue time: last bin before start
    leads = np.arange(1, int(horizon) + 1)
    t = last + leads

    def days_back(i: int) -> np.ndarray:               # (leads, sites): the same hour, i days before the P50's
        idx = t - 24 * (-(-leads // 24) + i)
        return np.where((idx >= 0)[:, None], panel.y[np.clip(idx, 0, None)], np.nan)

    p50 = days_back(0)
    refs = np.stack([days_back(i) for i in range(profile_days)])
    with np.errstate(invalid="ignore"), _quiet():                       # all-NaN hours are expected
        p10 = np.nanquantile(refs, 0.1, axis=0)
        p90 = np.nanquantile(refs, 0.9, axis=0)
        median = np.nanmedian(refs, axis=0)
    # the last day's hour unknown (feed outage): the median of the days that are known; never seen: 0
    p50 = np.nan_to_num(np.where(np.isnan(p50), median, p50), nan=0.0)
    p10 = np.minimum(np.nan_to_num(p10, nan=0.0), p50)
    p90 = np.maximum(np.nan_to_num(p90, nan=0.0), p50)
    n_s = len(panel.sites)
    out = pd.DataFrame({
        "site_id": np.tile(np.asarray(panel.sites, dtype=object), len(leads)),
        "ts": np.repeat(panel.index[t], n_s), "lead": np.repeat(leads, n_s), "model_horizon": 24,
        "issued_at": panel.index[last], "p10": p10.ravel(), "p50": p50.ravel(), "p90": p90.ravel(),
    })
    return out.sort_values(["site_id", "ts"], ignore_index=True)
