"""The whole sample pipeline on a real Spark standalone cluster gives the same lake as ``local[*]``.

`make test-cluster` runs this file. It starts, on 127.0.0.1 only, a Spark master and two workers from the
pinned PySpark whose environment does not contain the repository (jobs.tools.local_cluster), then runs the
pipeline twice through real Airflow (`airflow dags test`, scripts/run_pipeline.sh: the five ingest DAGs
side by side, then kpi_daily; then kpi_extracts), once on ``local[2]`` and once on the cluster, each
into its own lake and Airflow home. The DAGs and jobs are the same; only environment variables differ.
Every bronze, silver, ops and gold table and every extract pack CSV must then be equal, row for row and
value for value (floats to 12 significant digits), apart from the columns that record when or in which run a row was written.

The same cluster then runs the pipeline with the landing zone and the lake in a bucket of an S3 endpoint
(moto's server): the sample uploaded to ``s3://pipeline/landing``, every source ingested and gold built by
the jobs' command lines on the cluster; every silver and gold table in the bucket equals the local run's.
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


@pytest.fixture(scope="module")
def lakes(tmp_path_factory, cluster):
    tmp = tmp_path_factory.mktemp("cluster")
    local = pipeline_env(tmp, "local", COALCHAIN_SPARK_MASTER="local[2]")
    run_pipeline(local, tmp / "local.log")
    before = {app["id"] for app in cluster.status().get("completedapps", [])}
    remote = pipeline_env(tmp, "cluster", COALCHAIN_SPARK_MASTER=cluster.master_url,
                          COALCHAIN_SPARK_CONF=CLUSTER_CONF)
    run_pipeline(remote, tmp / "cluster.log")
    applications = [app for app in cluster.status().get("completedapps", []) if app["id"] not in before]
    return Path(local["COALCHAIN_LAKE_ROOT"]), Path(remote["COALCHAIN_LAKE_ROOT"]), applications, tmp


def test_the_cluster_ran_the_jobs(lakes):
    """The cluster lake was written by executors of the standalone cluster, not by a local fallback:
    the master saw one application per process of the cluster run (init, 5 ingest DAGs, kpi_daily,
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
    local_lake, cluster_lake, _, _ = lakes
    local_tables, cluster_tables = delta_tables(local_lake), delta_tables(cluster_lake)
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
    """`spark-submit $(python -m jobs.platform.session submit-args) scripts/spark_job.py jobs.ingest.runner` ingests the logistics
    domain on the cluster: the same silver shipments as the Airflow run of the pipeline."""
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


@pytest.fixture(scope="module")
def bucket_lake(tmp_path_factory, cluster, s3_server):
    """The sample pipeline on the cluster with landing zone and lake in a bucket: ``runner --all`` and
    ``kpi.build --affected`` (what kpi_daily runs after the quality gate), over the days the local run
    ingested. Returns the lake's URI."""
    from jobs.tools.demo import landing_window

    s3_server.create_bucket("pipeline")
    sample = REPO / "data_samples" / "landing"
    upload_tree(s3_server, sample, "s3://pipeline/landing")
    tmp = tmp_path_factory.mktemp("bucket")
    env = pipeline_env(tmp, "bucket", COALCHAIN_SPARK_MASTER=cluster.master_url,
                       COALCHAIN_SPARK_CONF=json.dumps({"spark.cores.max": "2", "spark.executor.memory": "1g"}),
                       COALCHAIN_LAKE_ROOT="s3://pipeline/lake", COALCHAIN_LANDING_ROOT="s3://pipeline/landing",
                       COALCHAIN_SPARK_PROFILE="small", **s3_server.environment())
    first, last = landing_window(sample)
    log = tmp / "bucket.log"
    # exit 3 = succeeded with rejects: the sample's injected faults are quarantined
    assert run([sys.executable, "-m", "jobs.ingest.runner", "--all", "--from", first, "--to", last], env, log,
               ok=(0, 3)) == 3
    run([sys.executable, "-m", "jobs.kpi.build", "--affected"], env, log)
    return "s3://pipeline/lake"


def bucket_tables(server, lake: str) -> dict[str, str]:
    """Every table in the bucket lake: name (``layer/table``) → URI."""
    from jobs.platform import storage

    names = {f.rel_key.split("/_delta_log/")[0] for f in storage.list_files(bucket_settings(server),
                                                                             storage.parse_location(lake))
             if "/_delta_log/" in f.rel_key}
    return {name: (storage.parse_location(lake) / name).uri for name in sorted(names)}


def test_lake_and_landing_in_a_bucket_give_the_same_silver_and_gold(lakes, bucket_lake, s3_server):
    local_lake = lakes[0]
    local_tables = delta_tables(local_lake)
    in_bucket = bucket_tables(s3_server, bucket_lake)
    compared = sorted(n for n in in_bucket if n.startswith(("silver/", "gold/")))
    assert [n for n in compared if n.startswith("silver/")] == sorted(n for n in local_tables if n.startswith("silver/"))
    assert len([n for n in compared if n.startswith("gold/")]) >= 10
    differing = []
    for name in compared:
        local = table_rows(local_tables[name])
        bucket = table_rows(bucket_table(s3_server, in_bucket[name]))
        if local != bucket:
            differing.append(f"{name}: {len(local[1])} vs {len(bucket[1])} rows; only local e.g. "
                             f"{sorted(set(local[1]) - set(bucket[1]), key=repr)[:2]}; only in the bucket e.g. "
                             f"{sorted(set(bucket[1]) - set(local[1]), key=repr)[:2]}")
    assert not differing, "\n".join(differing)
    silver_rows = sum(len(table_rows(bucket_table(s3_server, in_bucket[n]))[1]) for n in compared if n.startswith("silver/"))
    assert silver_rows > 10_000
