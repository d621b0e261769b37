"""End to end through real Airflow: `airflow dags test` runs an ingest DAG on the committed sample."""
from __future__ import annotations

import gzip
import json
import os
import shutil
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
    out = subprocess.run([str(airflow), "dags", "test", "ingest_hydrogen", "2026-11-09T12:00:00+00:00", "-c", conf],
                         capture_output=True, text=True, env=env, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "state=success" in log, log[-3000:]
    assert "ingest_h2_fills succeeded with rejects" in log and "h2_fills/2026-11-03/cut.csv.gz: gzip stream" in log, \
        log[-3000:]

    manifest = json.loads((SAMPLE / "_manifest.json").read_text())
    fills = spark.read.format("delta").load(str(tmp_path / "lake" / "silver" / "silver_h2_fills"))
    stations = spark.read.format("delta").load(str(tmp_path / "lake" / "silver" / "silver_h2_stations"))
    assert fills.count() == manifest["sources"]["h2_fills"]["distinct_valid"]
    assert stations.count() == manifest["sources"]["h2_stations"]["distinct_valid"]
