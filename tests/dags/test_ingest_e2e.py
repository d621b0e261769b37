"""End to end through real Airflow: `airflow dags test` runs an ingest DAG on the committed sample, and
kpi_daily on a lake with nothing to build."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data_samples" / "landing"


def test_ingest_hydrogen_dag_runs_on_the_sample(spark, tmp_path):
    # the hydrogen sources of the sample, plus one truncated gzip file: the task succeeds with rejects
    landing = tmp_path / "landing"
    for source in ("h2_stations", "h2_fills"):
        shutil.copytree(SAMPLE / source, landing / source)
    whole = gzip.compress(b"fill_id,station_id\n" * 50, mtime=0)
    (landing / "h2_fills" / "2026-11-03" / "cut.csv.gz").write_bytes(whole[:-12])
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "COALCHAIN_LAKE_ROOT": str(tmp_path / "lake"),
        "COALCHAIN_LANDING_ROOT": str(landing),
        "COALCHAIN_TASK_RETRIES": "0",
    }
    airflow = Path(sys.executable).with_name("airflow")
    conf = json.dumps({"from_date": "2026-11-01", "to_date": "2026-11-09"})

    def dags_test(logical_date: str) -> str:
        out = subprocess.run([str(airflow), "dags", "test", "ingest_hydrogen", logical_date, "-c", conf],
                             capture_output=True, text=True, env=env, timeout=900)
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        return out.stdout + out.stderr

    events = asset_events("ingest_hydrogen")
    log = dags_test("2026-11-09T12:00:00+00:00")
    assert "state=success" in log, log[-3000:]
    assert "ingest_h2_fills succeeded with rejects" in log and "h2_fills/2026-11-03/cut.csv.gz: gzip stream" in log, \
        log[-3000:]

    manifest = json.loads((SAMPLE / "_manifest.json").read_text())
    fills = spark.read.format("delta").load(str(tmp_path / "lake" / "silver" / "silver_h2_fills"))
    stations = spark.read.format("delta").load(str(tmp_path / "lake" / "silver" / "silver_h2_stations"))
    assert fills.count() == manifest["sources"]["h2_fills"]["distinct_valid"]
    assert stations.count() == manifest["sources"]["h2_stations"]["distinct_valid"]
    # the first run updated silver_h2_stations and silver_h2_fills: one Asset event each
    assert asset_events("ingest_hydrogen") == events + 2

    # the same window again: no new file, so both tasks end skipped (the second one runs although the first
    # skipped) and update no Asset: kpi_daily and the forecast are not started by a run that brought nothing
    log = dags_test("2026-11-10T12:00:00+00:00")
    assert "no new h2_stations file delivered for 2026-11-01..2026-11-09" in log, log[-3000:]
    assert "no new h2_fills file delivered for 2026-11-01..2026-11-09" in log, log[-3000:]
    assert "state=success" in log, log[-3000:]
    assert asset_events("ingest_hydrogen") == events + 2
    assert fills.count() == manifest["sources"]["h2_fills"]["distinct_valid"]


def asset_events(dag_id: str) -> int:
    """Asset events the DAG's runs have emitted so far (the tests' Airflow metadata database, SQLite)."""
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM asset_event WHERE source_dag_id = ?", (dag_id,)).fetchone()[0]


def test_kpi_daily_with_nothing_to_build_ends_skipped_and_updates_no_gold_asset(tmp_path):
    """What the daily 05:00 sweep mostly finds: no day touched by ingestion since the last build (here: a
    lake nothing was ingested into). The run is green, build_gold ends skipped with the reason, and no gold
    Asset event is emitted, so kpi_extracts is not started for nothing."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COALCHAIN_LAKE_ROOT": str(tmp_path / "lake"),
           "COALCHAIN_LANDING_ROOT": str(tmp_path / "landing"), "COALCHAIN_TASK_RETRIES": "0"}
    airflow = Path(sys.executable).with_name("airflow")
    events = asset_events("kpi_daily")
    out = subprocess.run([str(airflow), "dags", "test", "kpi_daily", "2026-11-10T21:00:00+00:00"],
                         capture_output=True, text=True, env=env, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0 and "state=success" in log, log[-3000:]
    assert "no day touched by ingestion since the last gold build: gold unchanged" in log, log[-3000:]
    assert asset_events("kpi_daily") == events
