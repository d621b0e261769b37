"""The planners' SQL CLI on a lake in a bucket (moto's S3 server on loopback), run as planners run it: a
``python -m jobs.delivery.query`` process configured by the environment only."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from jobs.platform import storage

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
BUCKET = "planners"
LAKE = f"s3://{BUCKET}/lake"


@pytest.fixture(scope="module")
def bucket_lake(s3_server):
    """Two tables in the lake (two commits of silver, one of gold) and a Delta table beside the lake."""
    from deltalake import write_deltalake

    s3_server.create_bucket(BUCKET)
    settings = s3_server.settings()

    def write(uri: str, frame: pd.DataFrame, mode: str = "append") -> None:
        write_deltalake(uri, frame, mode=mode,
                        storage_options=storage.delta_storage_options(settings, storage.parse_location(uri)))

    shipments = f"{LAKE}/silver/silver_shipments"
    write(shipments, pd.DataFrame({"shipment_id": ["S1", "S2"], "mode": ["rail", "road"],
                                   "distance_km": [812.0, 640.0], "tonnes": [3000.0, 1000.0]}))
    write(shipments, pd.DataFrame({"shipment_id": ["S3"], "mode": ["rail"], "distance_km": [95.0],
                                   "tonnes": [500.0]}))
    write(f"{LAKE}/gold/gold_rail_share_monthly", pd.DataFrame({"month": ["2026-11"], "rail_share_pct": [75.0]}))
    write(f"s3://{BUCKET}/private/secrets", pd.DataFrame({"password": ["hunter2"]}))
    return s3_server


def query(server, *argv: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COALCHAIN_SPARK_REMOTE", "COALCHAIN_SPARK_MASTER")}
    env.update(server.environment(), PYTHONPATH=str(REPO), COALCHAIN_LAKE_ROOT=LAKE)
    env.update(settings)
    return subprocess.run([sys.executable, "-m", "jobs.delivery.query", *argv], capture_output=True, text=True,
                          env=env, timeout=600, cwd=REPO)


def test_list_shows_the_bucket_tables_with_versions(bucket_lake):
    out = query(bucket_lake, "--list")
    assert out.returncode == 0, out.stderr[-2000:]
    # columns: layer, table, version, path, content (the gold grain: words), separated by spaces
    lines = {line.split()[1]: line.split() for line in out.stdout.splitlines()[2:]}
    # silver first (layer order), then gold; two commits = version 1, one commit = version 0
    assert list(lines) == ["silver_shipments", "gold_rail_share_monthly"]
    assert lines["silver_shipments"][:4] == ["silver", "silver_shipments", "1", f"{LAKE}/silver/silver_shipments"]
    assert lines["gold_rail_share_monthly"][2] == "0"
    assert "secrets" not in out.stdout


def test_a_query_reads_the_tables_in_the_bucket(bucket_lake, tmp_path):
    # rail share of the tonnes moved more than 500 km: S1 3000 t rail (812 km), S2 1000 t road (640 km);
    # S3 (95 km) is out: 3000 / (3000 + 1000) = 75.0 %
    sql = ("SELECT round(100 * sum(CASE WHEN mode = 'rail' THEN tonnes END) / sum(tonnes), 1) AS rail_pct, "
           "count(*) AS n FROM silver_shipments WHERE distance_km > 500")
    target = tmp_path / "rail.csv"
    out = query(bucket_lake, sql, "--csv", str(target))
    assert out.returncode == 0, out.stderr[-2000:]
    assert target.read_text().splitlines() == ["rail_pct,n", "75.0,2"]
    # time travel to the first commit: S1 and S2 only; with the settings of a stack whose tasks use a Connect
    # server and a cluster (neither is there): the CLI runs its own local engine all the same
    out = query(bucket_lake, "SELECT count(*) AS n FROM silver_shipments VERSION AS OF 0",
                COALCHAIN_SPARK_REMOTE="sc://127.0.0.1:9", COALCHAIN_SPARK_MASTER="spark://127.0.0.1:9")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["n", "-", "2"]


def test_a_bucket_named_by_the_flag_is_read_where_the_settings_name_a_folder(bucket_lake, tmp_path):
    # the environment's lake is a local folder (no object-store connector would be configured for it); the
    # flag's bucket lake is read all the same: S1, S2, S3 = 3 shipments, 3000 + 1000 + 500 = 4500 t
    out = query(bucket_lake, "--lake-root", LAKE, "SELECT count(*) AS n, sum(tonnes) AS t FROM silver_shipments",
                COALCHAIN_LAKE_ROOT=str(tmp_path / "lake"))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    assert lines[0].split() == ["n", "t"] and lines[2].split() == ["3", "4500"], out.stdout


def test_nothing_beside_the_lake_is_readable(bucket_lake):
    # the Delta table next to the lake in the same bucket, by path: SQL on files is off, the name is no view
    out = query(bucket_lake, f"SELECT * FROM delta.`s3a://{BUCKET}/private/secrets`")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "refused" in out.stderr and "hunter2" not in out.stdout


def test_a_missing_bucket_is_a_clear_usage_error(bucket_lake):
    env_lake = "s3://no-such-bucket/lake"
    out = query(bucket_lake, "--list", "--lake-root", env_lake)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "s3://no-such-bucket/lake" in out.stderr
