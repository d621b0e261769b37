"""Seasonal-naive baselines that respect the forecast horizon.

At a horizon of ``H`` steps the forecast for ``t`` may use only data up to ``t - H``, so a seasonal-naive
forecast with season ``m`` repeats ``y[t - m * ceil(H / m)]``:

* ``snaive_daily``  (m = one day):  same hour yesterday for H <= 24 h; for H = 168 h it is the value a week ago.
* ``snaive_weekly`` (m = one week): same hour on the same weekday last week (for H <= 168 h).
"""
from __future__ import annotations

import numpy as np

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
