"""A job submitted with `spark-submit` to a real Spark standalone cluster gives the tables of the same job
run in-process.

`make test-cluster` runs this file. It starts, on 127.0.0.1 only, a Spark master and two workers from the
pinned PySpark whose environment does not contain the repository (jobs.tools.local_cluster): the
executors import the project only from the code archive the session ships, so a Python function of the
jobs that reached them without it would fail here. The whole pipeline on a cluster with the lake in a
bucket, run by Airflow's scheduler through a Spark Connect server, is tests/stack/test_stack.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.tools.local_cluster import LocalSparkCluster, spark_home
from tests.lake_compare import table_rows

REPO = Path(__file__).resolve().parents[2]
CLUSTER_CONF = json.dumps({"spark.cores.max": "2", "spark.executor.memory": "1g"})
JOB = ["scripts/spark_job.py", "jobs.ingest.runner", "--domain", "logistics", "--from", "2026-11-01",
       "--to", "2026-11-30"]

pytestmark = pytest.mark.cluster


def job_env(tmp: Path, name: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COALCHAIN_", "AIRFLOW"))}
    env.update(PYTHONPATH=str(REPO), COALCHAIN_LAKE_ROOT=str(tmp / name / "lake"), SPARK_LOCAL_IP="127.0.0.1",
               COALCHAIN_SPARK_PROFILE="small", COALCHAIN_SPARK_SHUFFLE_PARTITIONS="2")
    env.update(overrides)
    return env


def run(cmd: list[str], env: dict[str, str], log: Path, ok: tuple[int, ...] = (0,)) -> int:
    with open(log, "ab") as out:
        done = subprocess.run(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    if done.returncode not in ok:
        tail = log.read_text(errors="replace")[-4000:]
        pytest.fail(f"{' '.join(cmd)} failed with exit code {done.returncode}; log {log}:\n{tail}")
    return done.returncode


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalSparkCluster(workers=2, cores_per_worker=1, memory_per_worker="2g",
                           work_dir=tmp_path_factory.mktemp("spark")) as running:
        yield running


def test_spark_submit_of_a_job(cluster, tmp_path):
    """`spark-submit $(python -m jobs.platform.session submit-args) scripts/spark_job.py jobs.ingest.runner`
    ingests the logistics domain on the cluster: the same bronze and silver rows as `python -m
    jobs.ingest.runner` with the same arguments on local[1]."""
    env = job_env(tmp_path, "submit", COALCHAIN_SPARK_MASTER=cluster.master_url, COALCHAIN_SPARK_CONF=CLUSTER_CONF,
                  SPARK_HOME=str(spark_home()))
    printed = subprocess.run([sys.executable, "-m", "jobs.platform.session", "submit-args"], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert printed[:2] == ["--master", cluster.master_url]
    before = {app["id"] for app in cluster.status().get("completedapps", [])}
    # exit 3 = succeeded with rejects: the sample's injected faults are quarantined (docs/reliability.md)
    status = run([str(spark_home() / "bin" / "spark-submit"), *printed, *JOB], env, tmp_path / "submit.log", ok=(0, 3))
    assert status == 3
    submitted_apps = [a for a in cluster.status().get("completedapps", []) if a["id"] not in before]
    assert len(submitted_apps) == 1, submitted_apps     # the job ran as an application of the cluster

    local = job_env(tmp_path, "local", COALCHAIN_SPARK_MASTER="local[1]")
    assert run([sys.executable, "-m", *JOB[1:]], local, tmp_path / "local.log", ok=(0, 3)) == 3
    for table in ("bronze/bronze_shipments", "bronze/bronze_weighbridge", "silver/silver_shipments",
                  "silver/silver_weighbridge"):
        submitted, in_process = tmp_path / "submit" / "lake" / table, tmp_path / "local" / "lake" / table
        assert (submitted / "_delta_log").is_dir(), table
        columns, rows = table_rows(submitted)
        assert rows, table
        assert (columns, rows) == table_rows(in_process), table
