"""Charging-demand forecast job: weekly retraining and daily 168-hour forecasts per station.

    python -m jobs.forecast.charging_demand train   --as-of 2026-11-04 [--force]
    python -m jobs.forecast.charging_demand predict --as-of 2026-11-04

The *as-of day* D is an Asia/Shanghai calendar day; its end (local midnight) is the **feature cut-off**:
nothing at or after it is read, so a backfill for D sees what a run on the night of D would have seen
(apart from records that arrived late, which the ``data_version`` pins).

extract  ``silver_charging_sessions`` (its Delta version is the data version),
         ``silver_charging_connectors`` (station features ``n_connectors``, ``rated_kw``) and, when the lake has
         them, ``silver_production_plan`` (plans published before the cut-off), ``silver_weighbridge`` (each
         truck's home mine) and ``silver_mines`` (nominal output), through jobs.platform.delta_tables;
transform  sessions -> the model's session frame (station, local charge start/end, kWh) -> hourly series
         per station (energy spread over the hours each session spans, :mod:`models.features`), with the
         plan features of :mod:`jobs.forecast.plan_exog` per station and hour: in the history as a forecast
         issued at the midnight starting the hour's day knew them, for the forecast window as published by
         the cut-off (the next day's plan; later days' are unknown);
train    if the newest model eligible for D is missing, trained for a day >= 7 days before D, or ``--force``:
         fit :func:`models.forecast.train` on data before the cut-off and save it to the registry
         ``<lake_root>/models/charging_forecast/`` with its metrics (a quick backtest when the history is
         long enough), training window, data version and as-of day;
predict  forecast the 168 hours after the cut-off with the newest model trained for a day <= D (never a
         model that saw data after the cut-off; P10/P90 calibrated per station on its recent out-of-sample
         errors, :mod:`models.calibration`) and replace the partition ``forecast_date_local = D`` of
         ``gold_charging_forecast``. With too little history to train (the committed sample holds 3 days)
         no model exists and the rows are a seasonal-naive forecast, ``model_version = method =
         "seasonal_naive_daily"`` (see :func:`models.baselines.seasonal_naive_daily_forecast`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.platform import delta_log, delta_tables, storage
from jobs.platform.settings import Settings, get_settings
from jobs.platform.storage import Location
from schemas.gold_forecast import GOLD_CHARGING_FORECAST
from schemas.tables import INGESTED_FILES, SILVER

log = logging.getLogger(__name__)

LOCAL_TZ = "Asia/Shanghai"
HORIZON_H = 168                       # forecast length: one week of hours
MODEL_HORIZONS_H = (1, 24, 168)       # direct models: lead 1 by the 1 h model, 2-24 by 24 h, 25-168 by 168 h
RETRAIN_EVERY_DAYS = 7
# Below three weeks the week-ahead model would learn from < 2 weeks of targets on a handful of stations
# (a few hundred rows for trees that need 200 per leaf): the seasonal-naive fallback is served instead.
MIN_TRAIN_DAYS = 21
# A backtest needs a test window after enough training data for the 168 h model: eight weeks.
MIN_BACKTEST_DAYS = 56
BACKTEST_HORIZONS_H = (24, 168)
BACKTEST_MAX_TEST_DAYS = 28
STATION_FEATURES = ("n_connectors", "rated_kw")
# The plan reaches the forecast of the next day (published the evening before); its issue-time rule at 24 h.
PLAN_RULE_HORIZON_H = 24
FALLBACK = "seasonal_naive_daily"
GBM_METHOD = "gbm_quantile"


def registry_root(settings: Settings | None = None) -> Location:
    """The model registry: a folder in the lake, or a prefix beside its tables in the lake's bucket."""
    return (settings or get_settings()).lake_root / "models" / "charging_forecast"


def registry(settings: Settings | None = None) -> dict:
    """Where :mod:`models.registry` finds the registry: ``root`` and, for a bucket, its ``filesystem``."""
    settings = settings or get_settings()
    root = registry_root(settings)
    if not storage.is_object_store(root):
        return {"root": root}
    return {"root": storage.fs_path(root), "filesystem": storage.filesystem(settings, root)}


def cutoff_for(as_of: dt.date) -> tuple[pd.Timestamp, dt.datetime]:
    """The end of the local as-of day: (naive local wall-clock, naive UTC)."""
    local = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    utc = local.replace(tzinfo=ZoneInfo(LOCAL_TZ)).astimezone(dt.timezone.utc).replace(tzinfo=None)
    return pd.Timestamp(local), utc


# --------------------------------------------------------------------------------------------------
# transforms (Spark)
# --------------------------------------------------------------------------------------------------
def to_model_sessions(sessions: DataFrame, *, cutoff_utc: dt.datetime, tz: str = LOCAL_TZ) -> DataFrame:
    """Silver sessions -> the model's session frame ``site_id, start_ts, end_ts, energy_kwh``.

    Energy flows between charge start and end; a session without them falls back to plug-in / plug-out.
    Times become local wall-clock (the model's calendar features are local hours and days). Only sessions
    that started before the cut-off are kept; the model drops their energy after it.
    """
    start_utc = F.coalesce(F.col("charge_start_ts_utc"), F.col("plug_in_ts_utc"))
    end_utc = F.coalesce(F.col("charge_end_ts_utc"), F.col("plug_out_ts_utc"))
    return (
        sessions
        .select("station_id", "charge_start_ts_utc", "plug_in_ts_utc", "charge_end_ts_utc", "plug_out_ts_utc",
                "energy_kwh")
        .filter(start_utc < F.lit(cutoff_utc))
        .select(
            F.col("station_id").alias("site_id"),
            F.from_utc_timestamp(start_utc, tz).alias("start_ts"),
            F.from_utc_timestamp(end_utc, tz).alias("end_ts"),
            F.col("energy_kwh"),
        )
    )


def station_features(connectors: DataFrame) -> DataFrame:
    """Per station: ``n_connectors`` and ``rated_kw`` (sum of its connectors' rated power, kW)."""
    return (
        connectors
        .select("station_id", "connector_id", "rated_kw")
        .groupBy("station_id")
        .agg(F.countDistinct("connector_id").cast("double").alias("n_connectors"),
             F.sum("rated_kw").alias("rated_kw"))
        .select(F.col("station_id").alias("site_id"), "n_connectors", "rated_kw")
    )


def session_vins(sessions: DataFrame, *, cutoff_utc: dt.datetime) -> DataFrame:
    """Energy per station and truck before the cut-off: ``site_id, vin, energy_kwh`` (station-to-mine weights)."""
    start_utc = F.coalesce(F.col("charge_start_ts_utc"), F.col("plug_in_ts_utc"))
    return (sessions.filter((start_utc < F.lit(cutoff_utc)) & F.col("vin").isNotNull())
            .groupBy(F.col("station_id").alias("site_id"), "vin")
            .agg(F.sum("energy_kwh").alias("energy_kwh")))


def known_plans(plan: DataFrame, *, cutoff_utc: dt.datetime, tz: str = LOCAL_TZ) -> DataFrame:
    """Plans published before the cut-off, in local wall-clock time: ``mine_id, shift_start,
    planned_raw_coal_t, trucks_dispatched, published``. A plan published later is not known to this run."""
    return (plan.filter(F.col("published_ts_utc") < F.lit(cutoff_utc))
            .select("mine_id", F.from_utc_timestamp("shift_start_ts_utc", tz).alias("shift_start"),
                    "planned_raw_coal_t", "trucks_dispatched",
                    F.from_utc_timestamp("published_ts_utc", tz).alias("published")))


# --------------------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------------------
@dataclass
class Inputs:
    sessions: pd.DataFrame            # site_id, start_ts, end_ts (local), energy_kwh
    stations: pd.DataFrame            # site_id, n_connectors, rated_kw
    data_version: str                 # silver_charging_sessions@v<N>
    last_delivery_day: dt.date | None  # newest delivery day (<= as-of) of a charging-sessions file, if known
    plan: pd.DataFrame | None = None        # known_plans(); None: no plan table in the lake
    session_vins: pd.DataFrame | None = None  # site_id, vin, energy_kwh
    tickets: pd.DataFrame | None = None     # vin, mine_id of weighbridge tickets before the cut-off
    mines: pd.DataFrame | None = None       # mine_id, capacity_mt_per_yr


def delivered_through(settings: Settings | None = None) -> dt.date | None:
    """The newest delivery day of a charging-sessions file the ingest took (the files ledger, through
    delta-rs: no Spark job); None before the first one."""
    days = delta_log.read_column(INGESTED_FILES, "landing_date", ("source", "charging_sessions"), settings)
    return max(days) if days else None


def table_version(spark: SparkSession, spec, settings: Settings | None = None) -> int:
    """Current Delta version of a table (read from its log, no Spark job)."""
    path = delta_log.ensure_table(spark, spec, settings)
    return int(delta_log.log_table(path).version())


def extract(spark: SparkSession, as_of: dt.date, settings: Settings | None = None, *, plan: bool = True) -> Inputs:
    """Read the inputs once, pinned to one Delta version of the sessions table; with ``plan`` also the
    production-plan inputs (what a trained model's plan features need; the fallback does not read them).

    A read of a Delta path sees the newest snapshot when it runs, so the version is taken before and after
    the read and the read is repeated if an ingest committed in between: the recorded version is the one read.
    """
    spec = SILVER["charging_sessions"]
    _, cutoff_utc = cutoff_for(as_of)
    for _ in range(5):
        before = table_version(spark, spec, settings)
        sessions = _to_pandas(delta_tables.read_table(spark, spec, settings)
                              .transform(to_model_sessions, cutoff_utc=cutoff_utc))
        if table_version(spark, spec, settings) == before:
            break
    else:
        raise RuntimeError(f"{spec.name} changed during every one of 5 reads")
    stations = _to_pandas(delta_tables.read_table(spark, SILVER["charging_connectors"], settings).transform(station_features))
    delivered = None
    if delta_log.table_exists(INGESTED_FILES, settings):       # a lake written by other means has no ingest log
        delivered = (delta_tables.read_table(spark, INGESTED_FILES, settings)
                     .filter((F.col("source") == "charging_sessions") & (F.col("landing_date") <= F.lit(as_of)))
                     .agg(F.max("landing_date")).first()[0])
    inputs = Inputs(sessions, stations, f"{spec.name}@v{before}", delivered)
    if plan and all(delta_log.table_exists(SILVER[t], settings) for t in ("production_plan", "weighbridge", "mines")):
        inputs.plan = _to_pandas(delta_tables.read_table(spark, SILVER["production_plan"], settings)
                                 .transform(known_plans, cutoff_utc=cutoff_utc))
        inputs.session_vins = _to_pandas(delta_tables.read_table(spark, spec, settings)
                                         .transform(session_vins, cutoff_utc=cutoff_utc))
        inputs.tickets = _to_pandas(delta_tables.read_table(spark, SILVER["weighbridge"], settings)
                                    .filter(F.col("load_ts_utc") < F.lit(cutoff_utc)).select("vin", "mine_id"))
        inputs.mines = _to_pandas(delta_tables.read_table(spark, SILVER["mines"], settings)
                                  .select("mine_id", "capacity_mt_per_yr"))
    return inputs


def _to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small frame without Arrow (column types come from the Spark schema)."""
    cols = df.columns
    return pd.DataFrame([tuple(r) for r in df.collect()], columns=cols)


# --------------------------------------------------------------------------------------------------
# transform (pandas: the model's side)
# --------------------------------------------------------------------------------------------------
def hourly_history(inputs: Inputs, as_of: dt.date) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """Hourly energy per station before the cut-off, plus the station features as exogenous columns.

    Returns ``(series, complete_until)``. An hour with no session is zero demand only up to
    ``complete_until``: the end of the newest day the feed is known to have delivered (a charging-sessions
    file delivered for it, or a session starting on it), at most the cut-off. Later hours stay unknown, so a
    feed outage is not read as a week of zero demand.
    """
    from models.features import sessions_to_series

    cutoff_local, _ = cutoff_for(as_of)
    s = inputs.sessions
    if s.empty:
        return pd.DataFrame(columns=["site_id", "ts", "energy_kwh", *STATION_FEATURES]), None
    s = s.assign(start_ts=pd.to_datetime(s["start_ts"]), end_ts=pd.to_datetime(s["end_ts"]),
                 energy_kwh=pd.to_numeric(s["energy_kwh"]))
    series = sessions_to_series(s, "h")
    series = series[series["ts"] < cutoff_local]
    last_day = s["start_ts"].max().normalize()
    if inputs.last_delivery_day is not None:
        last_day = max(last_day, pd.Timestamp(inputs.last_delivery_day))
    complete_until = min(cutoff_local, last_day + pd.Timedelta(days=1))
    # an explicit zero in the last known hour of every station marks the hours before it as observed
    last_hour = complete_until - pd.Timedelta(hours=1)
    marks = pd.DataFrame({"site_id": sorted(series["site_id"].unique()), "ts": last_hour, "energy_kwh": 0.0})
    series = pd.concat([series, marks], ignore_index=True)
    series = series.groupby(["site_id", "ts"], as_index=False)["energy_kwh"].sum()
    stations = inputs.stations
    if not stations.empty:
        stations = stations.assign(site_id=stations["site_id"].astype(str),
                                   **{c: pd.to_numeric(stations[c]) for c in STATION_FEATURES})
        series = series.merge(stations.loc[:, ["site_id", *STATION_FEATURES]], on="site_id", how="left")
    if has_plan(inputs):
        series = _with_history_plan(series, inputs, complete_until)
    return series, complete_until


def has_plan(inputs: Inputs) -> bool:
    return inputs.plan is not None and not inputs.plan.empty and inputs.tickets is not None and not inputs.tickets.empty


def _plan_parts(inputs: Inputs):
    from jobs.forecast.plan_exog import nominal_shift_tonnes, station_mine_weights

    plan = inputs.plan.assign(shift_start=pd.to_datetime(inputs.plan["shift_start"]),
                              published=pd.to_datetime(inputs.plan["published"]),
                              planned_raw_coal_t=pd.to_numeric(inputs.plan["planned_raw_coal_t"]),
                              trucks_dispatched=pd.to_numeric(inputs.plan["trucks_dispatched"]))
    sv = inputs.session_vins.assign(energy_kwh=pd.to_numeric(inputs.session_vins["energy_kwh"]))
    weights, fleet = station_mine_weights(sv, inputs.tickets)
    return plan, weights, fleet, nominal_shift_tonnes(inputs.mines)


def _with_history_plan(series: pd.DataFrame, inputs: Inputs, complete_until: pd.Timestamp) -> pd.DataFrame:
    """Every station hour up to ``complete_until`` gets its plan features (the panel reads exogenous values
    per cell), as a forecast issued at the midnight that starts the hour's day knew them."""
    from jobs.forecast.plan_exog import PLAN_FEATURES, issue_times, plan_exog

    plan, weights, fleet, nominal = _plan_parts(inputs)
    hours = pd.date_range(series["ts"].min(), complete_until - pd.Timedelta(hours=1), freq="h")
    ex = plan_exog(plan, weights, fleet, nominal, hours, issue_times(hours, PLAN_RULE_HORIZON_H))
    first = series.groupby("site_id")["ts"].min()
    ex = ex[ex["site_id"].isin(first.index)]
    ex = ex[ex["ts"] >= ex["site_id"].map(first)]
    out = ex.merge(series, on=["site_id", "ts"], how="outer")
    out["energy_kwh"] = out["energy_kwh"].fillna(0.0)
    static = series.drop_duplicates("site_id").set_index("site_id")
    for c in STATION_FEATURES:
        if c in series.columns:
            out[c] = out["site_id"].map(static[c])
    for c in PLAN_FEATURES:
        if c not in out.columns:
            out[c] = float("nan")
    return out.sort_values(["site_id", "ts"], ignore_index=True)


def future_plan(inputs: Inputs, sites: list[str], as_of: dt.date) -> pd.DataFrame | None:
    """Plan features of the forecast window as known at the cut-off (``future_exog`` of the model): the
    next day's shifts from the plan published the evening before; later hours (not planned yet) repeat the
    last planned day, hour by hour."""
    from jobs.forecast.plan_exog import PLAN_FEATURES, plan_exog

    if not has_plan(inputs):
        return None
    cutoff_local, _ = cutoff_for(as_of)
    plan, weights, fleet, nominal = _plan_parts(inputs)
    hours = pd.date_range(cutoff_local, periods=HORIZON_H, freq="h")
    issue = pd.DatetimeIndex([cutoff_local] * len(hours))
    ex = plan_exog(plan, weights, fleet, nominal, hours, issue)
    ex = ex[ex["site_id"].isin(sites)].sort_values(["site_id", "ts"], ignore_index=True)
    # hours no published plan covers yet (from the day after next on) repeat the last planned day's hour: an
    # estimate the week-ahead model can read like a plan, where carrying the last value forward would repeat
    # one night shift for a week
    for c in PLAN_FEATURES:
        for _ in range(HORIZON_H // 24):
            ex[c] = ex[c].fillna(ex.groupby("site_id")[c].shift(24))
    return ex


def history_days(series: pd.DataFrame, complete_until: pd.Timestamp | None) -> float:
    if series.empty or complete_until is None:
        return 0.0
    return float((complete_until - pd.Timestamp(series["ts"].min()).normalize()) / pd.Timedelta(days=1))


def history_days_at_most(as_of: dt.date, settings: Settings | None = None) -> float:
    """An upper bound of ``history_days`` for ``as_of``, read with delta-rs (two timestamp columns, no Spark
    job): the history starts no earlier than the local day of the earliest plug-in or charge start and ends
    at the cut-off."""
    import pyarrow.compute as pc

    times = delta_log.read_arrow(SILVER["charging_sessions"], ["plug_in_ts_utc", "charge_start_ts_utc"],
                                 settings=settings)
    if times is None:
        return 0.0
    firsts = [m for m in (pc.min(times.column(c)).as_py() for c in times.column_names) if m is not None]
    if not firsts:
        return 0.0
    earliest = pd.Timestamp(min(firsts))
    earliest = earliest.tz_convert("UTC") if earliest.tzinfo else earliest.tz_localize("UTC")
    first_day = earliest.tz_convert(LOCAL_TZ).tz_localize(None).normalize()
    cutoff_local, _ = cutoff_for(as_of)
    return max(0.0, float((cutoff_local - first_day) / pd.Timedelta(days=1)))


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------
def trained_for(meta: dict) -> dt.date | None:
    """The as-of day a registry entry was trained for (CLI-trained entries: the day of its training end)."""
    day = (meta.get("run_info") or {}).get("as_of_date")
    if day:
        return dt.date.fromisoformat(day)
    end = (meta.get("training_window") or {}).get("end")
    return pd.Timestamp(end).date() if end else None


def model_for(as_of: dt.date, settings: Settings | None = None) -> dict | None:
    """Metadata of the newest model trained for a day <= ``as_of`` (a backfill never uses a model that saw
    data after its cut-off); ties go to the most recently saved. None if there is none."""
    from models.registry import list_versions

    eligible = [m for m in list_versions(**registry(settings)) if (trained_for(m) or dt.date.max) <= as_of]
    if not eligible:
        return None
    return max(eligible, key=lambda m: (trained_for(m), m.get("created_at") or ""))


# --------------------------------------------------------------------------------------------------
# train / predict
# --------------------------------------------------------------------------------------------------
def train(spark: SparkSession, as_of: dt.date, *, force: bool = False, settings: Settings | None = None,
          params: dict | None = None, min_train_days: float = MIN_TRAIN_DAYS,
          min_backtest_days: float = MIN_BACKTEST_DAYS) -> dict:
    """Retrain if due (see the module doc). Returns a small JSON-able summary (the task's XCom)."""
    from models import forecast
    from models.registry import list_versions, save_bundle

    settings = settings or get_settings()
    current = model_for(as_of, settings)
    if current is not None and not force:
        age_days = (as_of - trained_for(current)).days
        if age_days < RETRAIN_EVERY_DAYS:
            return {"status": "skipped", "reason": f"model trained for {trained_for(current)}, {age_days} days "
                    f"before {as_of} (< {RETRAIN_EVERY_DAYS})", "model_version": current["model_version"]}
    at_most = history_days_at_most(as_of, settings)
    if at_most < min_train_days:
        # a young lake's daily runs: decided from two columns read with delta-rs, no Spark job
        log.warning("forecast: at most %.1f days of history < %s: no model trained; predict serves %s",
                    at_most, min_train_days, FALLBACK)
        return {"status": "insufficient_history", "history_days_at_most": at_most,
                "min_train_days": min_train_days, "served_instead": FALLBACK}
    inputs = extract(spark, as_of, settings)
    series, complete_until = hourly_history(inputs, as_of)
    days = history_days(series, complete_until)
    if days < min_train_days:
        log.warning("forecast: %.1f days of history < %s: no model trained; predict serves %s",
                    days, min_train_days, FALLBACK)
        return {"status": "insufficient_history", "history_days": days, "min_train_days": min_train_days,
                "data_version": inputs.data_version, "served_instead": FALLBACK}
    from jobs.forecast.plan_exog import PLAN_FEATURES

    exog = tuple(c for c in (*STATION_FEATURES, *PLAN_FEATURES) if c in series.columns)
    train_end = complete_until - pd.Timedelta(hours=1)
    bundle = forecast.train(series, freq="h", horizons=MODEL_HORIZONS_H, holidays="cn", exog=exog,
                            data_version=inputs.data_version, train_end=train_end, params=params)
    cutoff_local, cutoff_utc = cutoff_for(as_of)
    bundle.run_info = {
        "as_of_date": as_of.isoformat(), "feature_cutoff_local": str(cutoff_local),
        "feature_cutoff_ts_utc": cutoff_utc.isoformat(), "data_complete_until_local": str(complete_until),
        "history_days": days, "station_features": [c for c in exog if c in STATION_FEATURES],
        "plan_features": [c for c in exog if c not in STATION_FEATURES], "job": "jobs.forecast.charging_demand",
    }
    metrics = quick_backtest(series, days, exog, params, min_backtest_days)
    reg = registry(settings)
    newer = [m for m in list_versions(**reg) if (trained_for(m) or dt.date.min) > as_of]
    save_bundle(bundle, metrics=metrics, set_latest=not newer, **reg)
    saved = registry_root(settings) / bundle.model_version
    return {"status": "trained", "model_version": bundle.model_version,
            "path": saved.uri if storage.is_object_store(saved) else str(saved),
            "training_window": {"start": bundle.train_start, "end": bundle.train_end},
            "data_version": inputs.data_version, "history_days": days, "backtest": metrics.get("status")}


def quick_backtest(series: pd.DataFrame, days: float, exog: tuple[str, ...], params: dict | None,
                   min_backtest_days: float) -> dict:
    """Rolling-origin backtest at 24 h and 168 h over the last <= 4 weeks (2 refits), or why there is none."""
    from models import forecast

    if days < min_backtest_days:
        return {"status": "insufficient_history",
                "reason": f"{days:.1f} days of history < {min_backtest_days} needed for a backtest",
                "history_days": days}
    out = {"status": "backtested", "history_days": days, "horizons_h": {}}
    test_fraction = min(1 / 3, BACKTEST_MAX_TEST_DAYS / days)
    from jobs.forecast.plan_exog import PLAN_FEATURES

    for h in BACKTEST_HORIZONS_H:
        s = series
        if h > PLAN_RULE_HORIZON_H:
            # a week ahead no plan is published yet: the history's day-ahead values would leak
            s = series.assign(**{c: float("nan") for c in PLAN_FEATURES if c in series.columns})
        _, m = forecast.backtest(s, freq="h", horizon=h, test_fraction=test_fraction, holidays="cn",
                                 exog=exog, max_refits=2, params=params)
        out["horizons_h"][str(h)] = {"overall": m["overall"], "setup": m["setup"]}
    return out


def predict(spark: SparkSession, as_of: dt.date, *, settings: Settings | None = None,
            issued_at: dt.datetime | None = None, keep_unchanged: bool = False) -> dict:
    """Forecast the 168 hours after the cut-off and replace the as-of day's partition of the gold table.
    ``keep_unchanged`` (the DAG): a partition already forecast by the same model from the same data version
    is kept as it is, so a re-triggered run on unchanged sessions (a second backfill) writes no new version."""
    from models import forecast
    from models.baselines import seasonal_naive_daily_forecast
    from models.registry import load_bundle

    settings = settings or get_settings()
    meta = model_for(as_of, settings)
    if keep_unchanged:   # decided from the registry and the two tables' logs, before any data is read
        model_version = meta["model_version"] if meta else FALLBACK
        spec = SILVER["charging_sessions"]
        data_version = f"{spec.name}@v{table_version(spark, spec, settings)}"
        if _issued_from(as_of, settings) == {(model_version, data_version)}:
            log.info("forecast for %s already issued by %s from %s: kept", as_of, model_version, data_version)
            return {"status": "unchanged", "rows": 0, "model_version": model_version,
                    "data_version": data_version, "forecast_date_local": as_of.isoformat()}
    inputs = extract(spark, as_of, settings, plan=meta is not None)
    series, complete_until = hourly_history(inputs, as_of)
    if series.empty:
        log.warning("forecast: no charging sessions before %s: nothing to forecast", as_of)
        return {"status": "no_history", "rows": 0, "data_version": inputs.data_version}
    cutoff_local, cutoff_utc = cutoff_for(as_of)
    if meta is None:
        fc = seasonal_naive_daily_forecast(series, cutoff_local, HORIZON_H)
        fc["method"] = FALLBACK
        model_version = FALLBACK
    else:
        reg = registry(settings)
        bundle = load_bundle(reg["root"], meta["model_version"], filesystem=reg.get("filesystem"))
        fx = future_plan(inputs, sorted(series["site_id"].astype(str).unique()), as_of) \
            if any(c.startswith("plan_") for c in bundle.config.exog) else None
        fc = forecast.predict(bundle, series, start=cutoff_local, horizon=HORIZON_H, future_exog=fx)
        if "method" not in fc.columns:
            fc["method"] = GBM_METHOD
        model_version = bundle.model_version
    issued_at = issued_at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    rows = [(str(r.site_id), pd.Timestamp(r.ts).to_pydatetime(), int(r.lead), float(r.p10), float(r.p50),
             float(r.p90), str(r.method)) for r in fc.itertuples(index=False)]
    df = forecast_rows(spark.createDataFrame(rows, "station_id string, ts_local timestamp, lead_h int, "
                                                   "p10_kwh double, p50_kwh double, p90_kwh double, method string"),
                       model_version=model_version, data_version=inputs.data_version, cutoff_utc=cutoff_utc,
                       issued_at=issued_at, as_of=as_of)
    delta_tables.replace_where(df, GOLD_CHARGING_FORECAST, f"forecast_date_local = '{as_of.isoformat()}'", settings)
    from jobs.forecast.flexibility import write_flexibility_forecast    # flexible kWh of the forecast day
    flexibility = write_flexibility_forecast(spark, as_of, settings)
    return {"status": "written", "rows": len(rows), "stations": int(fc["site_id"].nunique()),
            "model_version": model_version, "data_version": inputs.data_version,
            "feature_cutoff_ts_utc": cutoff_utc.isoformat(), "data_complete_until_local": str(complete_until),
            "forecast_date_local": as_of.isoformat(), "flexibility": flexibility}


def _issued_from(as_of: dt.date, settings: Settings) -> set[tuple[str, str]]:
    """(model_version, data_version) of the rows forecast for ``as_of`` so far (delta-rs, no Spark job)."""
    partition = ("forecast_date_local", as_of.isoformat())
    models = delta_log.read_column(GOLD_CHARGING_FORECAST, "model_version", partition, settings)
    data = delta_log.read_column(GOLD_CHARGING_FORECAST, "data_version", partition, settings)
    return set(zip(models, data))


def forecast_rows(fc: DataFrame, *, model_version: str, data_version: str, cutoff_utc: dt.datetime,
                  issued_at: dt.datetime, as_of: dt.date, tz: str = LOCAL_TZ) -> DataFrame:
    """Model output (local hours) -> the gold table's columns, with the run's lineage on every row."""
    return fc.select(
        "station_id",
        F.to_utc_timestamp("ts_local", tz).alias("ts_utc"),
        "ts_local", "lead_h", "p10_kwh", "p50_kwh", "p90_kwh", "method",
        F.lit(model_version).alias("model_version"),
        F.lit(data_version).alias("data_version"),
        F.lit(cutoff_utc).cast("timestamp").alias("feature_cutoff_ts_utc"),
        F.lit(issued_at).cast("timestamp").alias("issued_at"),
        F.lit(as_of).cast("date").alias("forecast_date_local"),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.forecast.charging_demand", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["train", "predict"])
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat,
                    help="Asia/Shanghai day whose end is the feature cut-off (yyyy-mm-dd)")
    ap.add_argument("--force", action="store_true", help="train even if the current model is < 7 days old")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from jobs.platform.session import get_spark

    spark = get_spark(f"forecast_{a.command}")
    if a.command == "train":
        result = train(spark, a.as_of, force=a.force)
    else:
        result = predict(spark, a.as_of)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
