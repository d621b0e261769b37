"""The whole sample pipeline on a real Spark standalone cluster, with the landing zone and the lake in a
bucket, gives the same lake as ``local[*]`` on a local disk.

`make test-cluster` runs this file. It starts, on 127.0.0.1 only, a Spark master and two workers from the
pinned PySpark whose environment does not contain the repository (jobs.tools.local_cluster), and an S3
endpoint (moto's standalone server, tests/cluster/conftest.py). The pipeline then runs twice through real
Airflow (`airflow dags test`, scripts/run_pipeline.sh: the five ingest DAGs side by side, then kpi_daily
with its quality gate; then kpi_extracts): once on ``local[2]`` with the sample landing zone and the lake in
local folders, once on the cluster with the sample uploaded to ``s3://pipeline/landing`` and the lake at
``s3://pipeline/lake``. The DAGs and jobs are the same; only environment variables differ. Every bronze,
silver, ops and gold table and every extract pack CSV must then be equal, row for row and value for value
(floats to 12 significant digits), apart from the columns that record when or in which run a row was
written. spark-submit of a job on the cluster, with a lake on disk, is checked against the same reference.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.tools.local_cluster import LocalSparkCluster, spark_home
from tests.cluster.conftest import bucket_settings, bucket_table, upload_tree

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
EXTRACT_MONTH_RUN = "2026-12-01T12:00:00+00:00"  # kpi_extracts builds the month before: 2026-11

pytestmark = pytest.mark.cluster


def pipeline_env(tmp: Path, name: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COALCHAIN_", "AIRFLOW"))}
    env.update(
        PYTHONPATH=str(REPO),
        AIRFLOW_HOME=str(tmp / name / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        COALCHAIN_LAKE_ROOT=str(tmp / name / "lake"),
        COALCHAIN_DELIVERY_ROOT=str(tmp / name / "delivery"),
        COALCHAIN_TASK_RETRIES="0",
        SPARK_LOCAL_IP="127.0.0.1",
    )
    env.update(overrides)
    return env


def run(cmd: list[str], env: dict[str, str], log: Path, ok: tuple[int, ...] = (0,)) -> int:
    with open(log, "ab") as out:
        done = subprocess.run(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=1500)
    if done.returncode not in ok:
        tail = log.read_text(errors="replace")[-4000:]
        pytest.fail(f"{' '.join(cmd)} failed with exit code {done.returncode}; log {log}:\n{tail}")
    return done.returncode


def run_pipeline(env: dict[str, str], log: Path) -> None:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True)
    run([str(AIRFLOW), "db", "migrate"], env, log)
    run(["bash", "scripts/run_pipeline.sh"], env, log)
    run([str(AIRFLOW), "dags", "test", "kpi_extracts", EXTRACT_MONTH_RUN], env, log)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Two workers of two cores each; one core per application, so the five ingest DAGs (one Spark
    # application each) run side by side instead of queueing behind the first one.
    with LocalSparkCluster(workers=2, cores_per_worker=2, memory_per_worker="3g",
                           work_dir=tmp_path_factory.mktemp("spark")) as running:
        yield running


CLUSTER_CONF = json.dumps({"spark.cores.max": "1", "spark.executor.memory": "1g"})


BUCKET_LAKE, BUCKET_LANDING = "s3://pipeline/lake", "s3://pipeline/landing"


@pytest.fixture(scope="module")
def lakes(tmp_path_factory, cluster, s3_server):
    """(local lake folder, bucket lake's tables by name, the cluster's applications of the bucket run, tmp)."""
    tmp = tmp_path_factory.mktemp("cluster")
    local = pipeline_env(tmp, "local", COALCHAIN_SPARK_MASTER="local[2]")
    run_pipeline(local, tmp / "local.log")
    s3_server.create_bucket("pipeline")
    upload_tree(s3_server, REPO / "data_samples" / "landing", BUCKET_LANDING)
    before = {app["id"] for app in cluster.status().get("completedapps", [])}
    remote = pipeline_env(tmp, "cluster", COALCHAIN_SPARK_MASTER=cluster.master_url,
                          COALCHAIN_SPARK_CONF=CLUSTER_CONF, COALCHAIN_LAKE_ROOT=BUCKET_LAKE,
                          COALCHAIN_LANDING_ROOT=BUCKET_LANDING, **s3_server.environment())
    run_pipeline(remote, tmp / "cluster.log")
    applications = [app for app in cluster.status().get("completedapps", []) if app["id"] not in before]
    return Path(local["COALCHAIN_LAKE_ROOT"]), bucket_tables(s3_server, BUCKET_LAKE), applications, tmp


def bucket_tables(server, lake: str) -> dict[str, object]:
    """Every Delta table of the lake in the bucket: name (``layer/table``) → the table opened with delta-rs."""
    from jobs.platform import storage

    location = storage.parse_location(lake)
    names = {f.rel_key.split("/_delta_log/")[0] for f in storage.list_files(bucket_settings(server), location)
             if "/_delta_log/" in f.rel_key}
    return {name: bucket_table(server, (location / name).uri) for name in sorted(names)}


def test_the_cluster_ran_the_jobs(lakes):
    """The cluster lake was written by executors of the standalone cluster, not by a local fallback:
    the master saw one application per process of the bucket run (init, 5 ingest DAGs, kpi_daily,
    summary, kpi_extracts: at least 8)."""
    _, _, applications, _ = lakes
    assert len(applications) >= 8, applications


# When or in which run a row was written: these differ between any two runs of the same pipeline.
VOLATILE = {"ingested_at", "quarantined_at", "run_id", "started_at", "finished_at", "built_at",
            "build_started_at", "build_finished_at", "checked_at", "recorded_at", "generated_at",
            "validated_at", "created_at", "trained_at",
            "seconds", "validation_s"}  # durations of the same work differ too


def delta_tables(lake: Path) -> dict[str, Path]:
    return {str(log.parent.relative_to(lake)): log.parent for log in sorted(lake.rglob("_delta_log"))}


def table_rows(path) -> tuple[list[str], list[tuple]]:
    """A table's rows (a local folder, or a delta-rs table already opened) without the volatile columns."""
    from deltalake import DeltaTable

    table = (DeltaTable(str(path)) if isinstance(path, Path) else path).to_pyarrow_table()
    columns = sorted(c for c in table.column_names if c not in VOLATILE)
    rows = [tuple(_normalised(row[c]) for c in columns) for row in table.select(columns).to_pylist()]
    return columns, sorted(rows, key=repr)


def _normalised(value):
    # sums over partitions may add in another order on another executor layout: 12 significant digits
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, list):
        return tuple(_normalised(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _normalised(v)) for k, v in value.items()))
    return value


def test_same_tables_on_the_cluster(lakes):
    local_lake, cluster_tables, _, _ = lakes
    local_tables = delta_tables(local_lake)
    assert sorted(cluster_tables) == sorted(local_tables)
    layers = {name.split("/")[0] for name in local_tables}
    assert {"bronze", "silver", "gold", "ops"} <= layers, layers
    assert len([n for n in local_tables if n.startswith("gold/")]) >= 10
    differing = []
    for name in sorted(local_tables):
        local_columns, local_rows = table_rows(local_tables[name])
        cluster_columns, cluster_rows = table_rows(cluster_tables[name])
        if (local_columns, local_rows) != (cluster_columns, cluster_rows):
            only_local = set(local_rows) - set(cluster_rows)
            only_cluster = set(cluster_rows) - set(local_rows)
            differing.append(f"{name}: {len(local_rows)} vs {len(cluster_rows)} rows; "
                             f"only local e.g. {sorted(only_local, key=repr)[:2]}; "
                             f"only cluster e.g. {sorted(only_cluster, key=repr)[:2]}")
    assert not differing, "\n".join(differing)
    silver_rows = sum(len(table_rows(p)[1]) for n, p in local_tables.items() if n.startswith("silver/"))
    assert silver_rows > 10_000  # the sample's telematics alone are ~37 k rows: the comparison is not vacuous


def test_same_extract_packs_on_the_cluster(lakes):
    """Every CSV of every company's pack holds the same cells (the workbook and manifest carry the build
    time; their tables are the CSVs')."""
    _, _, _, tmp = lakes
    local_root, cluster_root = tmp / "local" / "delivery" / "extracts", tmp / "cluster" / "delivery" / "extracts"
    local_csvs = sorted(p.relative_to(local_root) for p in local_root.rglob("*.csv"))
    cluster_csvs = sorted(p.relative_to(cluster_root) for p in cluster_root.rglob("*.csv"))
    assert local_csvs and local_csvs == cluster_csvs
    differing = [str(p) for p in local_csvs if csv_cells(local_root / p) != csv_cells(cluster_root / p)]
    assert not differing


def csv_cells(path: Path) -> list[tuple]:
    """The rows of a pack CSV, numbers to 12 significant digits (sums may add in another order)."""
    import csv

    def cell(text: str):
        try:
            return float(f"{float(text):.12g}")
        except ValueError:
            return text

    with path.open(newline="", encoding="utf-8") as fh:
        return [tuple(cell(c) for c in row) for row in csv.reader(fh)]


def test_spark_submit_of_a_job(cluster, lakes, tmp_path):
    """`spark-submit $(python -m jobs.platform.session submit-args) scripts/spark_job.py jobs.ingest.runner`
    ingests the logistics domain on the cluster into a lake on disk: the same silver shipments as the
    local Airflow run of the pipeline."""
    local_lake, _, _, _ = lakes
    env = pipeline_env(tmp_path, "submit", COALCHAIN_SPARK_MASTER=cluster.master_url,
                       COALCHAIN_SPARK_CONF=CLUSTER_CONF, SPARK_HOME=str(spark_home()))
    printed = subprocess.run([sys.executable, "-m", "jobs.platform.session", "submit-args"], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert printed[:2] == ["--master", cluster.master_url]
    submit = spark_home() / "bin" / "spark-submit"
    log = tmp_path / "submit.log"
    # exit 3 = succeeded with rejects: the sample's injected faults are quarantined (docs/reliability.md)
    status = run([str(submit), *printed, "scripts/spark_job.py", "jobs.ingest.runner", "--domain", "logistics",
                  "--from", "2026-11-01",
                  "--to", "2026-11-30"], env, log, ok=(0, 3))
    assert status == 3
    submitted = Path(env["COALCHAIN_LAKE_ROOT"])
    for table in ("silver/silver_shipments", "silver/silver_weighbridge"):
        assert (submitted / table / "_delta_log").is_dir(), table
        assert table_rows(submitted / table) == table_rows(local_lake / table)
