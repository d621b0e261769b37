"""``make forecast-demo``: the charging-demand forecast on a months-long generated world.

    python -m jobs.tools.forecast_demo [--work .demo/forecast] [--days 165] [--no-dag]

1. generates the ``long`` preset (165 days; ``--days N`` a shorter slice) under ``<work>/landing``, or reuses
   it when the manifest there has the same parameters (the cached world);
2. backtests the forecast with and without the production plan (:mod:`jobs.forecast.plan_backtest`) and
   prints the table and where the plots are;
3. ingests the sources the forecast reads into ``<work>/lake`` and runs ``forecast_charging_demand`` through
   Airflow (``airflow dags test``) for the world's last day, then prints what ``gold_charging_forecast``
   serves (method, model version) per station. ``--no-dag`` stops after step 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from jobs.platform.settings import REPO_ROOT, Settings

# What the forecast job reads (silver), in ingest order: dimensions first.
FORECAST_SOURCES = ("mines", "charging_stations", "charging_connectors", "production_plan", "weighbridge",
                    "charging_sessions")


def slice_config(days: int | None):
    """The ``long`` preset, or its first ``days`` days (the scenario days scaled into the slice)."""
    from data_samples.config import PRESETS

    cfg = PRESETS["long"]
    if days is None or days >= cfg.days:
        return cfg
    return replace(cfg, days=days, station_opens_day=max(1, days // 2), connector_outage_day=max(0, (2 * days) // 3))


def ensure_world(landing: Path, days: int | None = None) -> tuple[dict, bool]:
    """Generate the world under ``landing`` unless the one there has the same parameters. Returns
    ``(manifest, generated)``."""
    from data_samples.generator import MANIFEST, generate

    cfg = slice_config(days)
    manifest_path = landing / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == cfg.as_dict():
            return manifest, False
    return generate(cfg, str(landing), jobs=0, overwrite=True), True


def ingest_world(spark, settings: Settings, first: dt.date, last: dt.date) -> dict[str, str]:
    """Ingest the forecast's sources for delivery days ``first`` .. ``last`` (+ lateness); source -> status."""
    from jobs.ingest.runner import ingest_source

    return {s: ingest_source(spark, s, first, last, settings).status for s in FORECAST_SOURCES}


def _dag_start_date() -> dt.date:
    """The DAGs' start date (dags/_defaults.py; the dags folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_coalchain_dag_defaults", REPO_ROOT / "dags" / "_defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.START_DATE.date()


def run_dag(settings: Settings, as_of: dt.date, timeout_s: int = 1800) -> subprocess.CompletedProcess:
    """``airflow dags test forecast_charging_demand`` for ``as_of`` against this lake and landing zone.

    The logical date is local midnight after the as-of day (16:00 UTC the day before). A world that lies
    before the DAGs' start date (Airflow runs no task of a run dated before its DAG's start) is run on the
    start date with the as-of day as the DAG's ``as_of`` param."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COALCHAIN_LAKE_ROOT": str(settings.lake_root),
           "COALCHAIN_LANDING_ROOT": str(settings.landing_root), "COALCHAIN_TASK_RETRIES": "0"}
    airflow = Path(sys.executable).with_name("airflow")
    start = _dag_start_date()
    logical = dt.datetime.combine(max(as_of, start), dt.time(16, 0)).isoformat() + "+00:00"
    conf = ["-c", json.dumps({"as_of": as_of.isoformat()})] if as_of < start else []
    return subprocess.run([str(airflow), "dags", "test", "forecast_charging_demand", logical, *conf],
                          capture_output=True, text=True, env=env, timeout=timeout_s)


def served(spark, settings: Settings):
    """Per station: method, model version and rows of the newest forecast day in gold_charging_forecast."""
    from pyspark.sql import functions as F

    from jobs.platform import delta_tables
    from schemas.gold_forecast import GOLD_CHARGING_FORECAST

    gold = delta_tables.read_table(spark, GOLD_CHARGING_FORECAST, settings)
    day = gold.agg(F.max("forecast_date_local")).first()[0]
    return (gold.filter(F.col("forecast_date_local") == day)
            .groupBy("station_id", "method", "model_version").agg(F.count("*").alias("rows"))
            .orderBy("station_id", "method").toPandas())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.tools.forecast_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(REPO_ROOT / ".demo" / "forecast"), help="world, lake and results folder")
    ap.add_argument("--days", type=int, default=None, help="a slice of the first N days (default: all 165)")
    ap.add_argument("--no-dag", action="store_true", help="backtest only, no ingest and no DAG run")
    a = ap.parse_args(argv)
    work = Path(a.work)
    landing = work / "landing"
    manifest, generated = ensure_world(landing, a.days)
    start = dt.date.fromisoformat(manifest["window"]["start_local"][:10])
    last = start + dt.timedelta(days=manifest["window"]["days"] - 1)
    print(f"world: {landing} ({'generated' if generated else 'cached'}), {start} .. {last}")

    from jobs.forecast.plan_backtest import run

    res = run(str(landing), str(work / "backtest"))
    print("\nBacktest (rolling origin, last third of the span), MAE per hour and station:\n")
    print(res["table"])
    print(f"\nplots: {work / 'backtest'}/h<24|168>_<with|without>_plan/backtest.png; "
          f"table: {work / 'backtest' / 'plan_backtest.md'}")
    if a.no_dag:
        return 0

    from jobs.platform.session import get_spark

    settings = Settings(lake_root=work / "lake", landing_root=landing)
    spark = get_spark("forecast_demo")
    print("\ningest:", ingest_world(spark, settings, start, last + dt.timedelta(days=3)))
    out = run_dag(settings, last)
    log_path = work / "forecast_dag.log"
    log_path.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        print(f"forecast_charging_demand failed: see {log_path}")
        return 1
    table = served(spark, settings)
    if table.empty:
        print(f"forecast_charging_demand for {last} wrote no forecast: see {log_path}")
        return 1
    print(f"\nforecast_charging_demand for {last}: success (log: {log_path}); served per station:")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
