"""Flexible charging energy of the forecast day, per station and hour: ``gold_charging_flexibility_forecast``.

    python -m jobs.forecast.flexibility --as-of 2026-11-04

extract  the run of as-of day D of ``gold_charging_forecast`` and days D − 27 .. D of
         ``gold_charging_flexibility_hourly`` (written by the gold build);
transform  :func:`jobs.kpi.charging_flexibility.charging_flexibility_forecast`: the P50 of each hour of
         D + 1 x the station's historical flexible share of that local hour;
load     replace the partition ``forecast_date_local = D`` (a re-run or backfill never duplicates), through
         the gold catalogue's writer (:func:`jobs.kpi.build.write_declared`): the rows must have the schema
         ``schemas/gold.py`` declares for the table, which the forecast job writes.

Run after each forecast (``charging_demand.predict`` calls :func:`write_flexibility_forecast`). A day whose
gold flexibility rows are not built yet is simply not in the history.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.kpi.build import write_declared
from jobs.kpi.charging_flexibility import FORECAST_HISTORY_DAYS, charging_flexibility_forecast
from jobs.platform import delta_log, delta_tables
from jobs.platform.settings import Settings, get_settings
from schemas import gold
from schemas.gold_forecast import GOLD_CHARGING_FORECAST

log = logging.getLogger(__name__)

FLEXIBILITY_HOURLY = gold.table("gold_charging_flexibility_hourly").spec
TABLE_NAME = "gold_charging_flexibility_forecast"


def write_flexibility_forecast(spark: SparkSession, as_of: dt.date, settings: Settings | None = None) -> dict:
    """Replace the partition ``forecast_date_local = as_of``; nothing is written without a forecast run of
    that day or without any flexibility history table (a lake whose gold is not built)."""
    settings = settings or get_settings()
    for spec in (GOLD_CHARGING_FORECAST, FLEXIBILITY_HOURLY):
        if not delta_log.table_exists(spec, settings):
            return {"status": "skipped", "reason": f"{spec.name} does not exist"}
    run = delta_tables.read_existing(spark, GOLD_CHARGING_FORECAST, settings).filter(
        F.col("forecast_date_local") == F.lit(as_of))
    history = delta_tables.read_existing(spark, FLEXIBILITY_HOURLY, settings).filter(F.col("date_local").between(
        F.lit(as_of - dt.timedelta(days=FORECAST_HISTORY_DAYS - 1)), F.lit(as_of)))
    df = charging_flexibility_forecast(run, flexibility_hourly=history).cache()
    try:
        rows = df.count()
        if rows == 0:
            return {"status": "skipped", "reason": f"no forecast run for {as_of}"}
        write_declared(spark, TABLE_NAME, df, [as_of], settings, job=gold.FORECAST_JOB)
        no_history = df.filter(F.col("share_basis") == "none").select("station_id").distinct().count()
    finally:
        df.unpersist()
    return {"status": "written", "rows": rows, "stations_without_history": no_history,
            "forecast_date_local": as_of.isoformat()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.forecast.flexibility", description=__doc__.splitlines()[0])
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat,
                    help="as-of day of the forecast run (yyyy-mm-dd); its forecast day is the day after")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from jobs.platform.session import get_spark

    print(json.dumps(write_flexibility_forecast(get_spark("flexibility_forecast"), a.as_of), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
