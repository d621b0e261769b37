"""``gold_charging_forecast``: hourly charging-energy forecasts per station, written by
``jobs.forecast.charging_demand predict`` (the ``forecast_charging_demand`` DAG). Its schema is declared in
the gold catalogue (``schemas/gold.py``); this is its spec, and what its rows are.

One forecast run per as-of day: at the end of local day D (the feature cut-off, local midnight) the next
168 hours are forecast for every station with session history. ``forecast_date_local`` = D is the run key
and the partition column; re-running day D replaces its partition (``replaceWhere``), so a day never holds
two runs and a backfill is the same code path as the daily run.

Every row names what produced it: ``model_version`` is a folder of the model registry
(``<lake_root>/models/charging_forecast/<model_version>/metadata.json`` holds the training window, data
version and metrics) or ``seasonal_naive_daily`` for the fallback served while history is too short to
train; ``method`` says what the row's P50 is (``gbm_quantile``, ``level_shape``, ``gbm_level_mix``,
``snaive_daily``, ``snaive_weekly``: see docs/forecasting.md); ``data_version`` is the Delta version of
``silver_charging_sessions`` the features were read from.
"""
from __future__ import annotations

from schemas import gold

# Declared, with a comment per column, in the gold catalogue.
GOLD_CHARGING_FORECAST = gold.table("gold_charging_forecast").spec
