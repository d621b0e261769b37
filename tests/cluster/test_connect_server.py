"""The Spark Connect server (`python -m jobs.platform.session connect-server`) and the jobs as its clients.

The server is started as a deployment starts it (loopback, its own process, stopped by its PID); the client
runs in a child process with ``COALCHAIN_SPARK_REMOTE`` set, as an Airflow task does (a process that has
made a Connect session switches PySpark into Connect mode, so it cannot share this test process). The
whole pipeline through a Connect server on a cluster, compared with an in-process run, is tests/stack.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.tools.local_cluster import free_port
from tests.processes import python_workers

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]

CLIENT = r"""
import datetime as dt, json
from pyspark.sql import types as T
from jobs.platform import delta_log, delta_tables
from jobs.platform.session import get_spark, is_remote
from schemas.tables import TableSpec

SPEC = TableSpec("connect_trips", "silver", T.StructType([
    T.StructField("trip_id", T.StringType(), False),
    T.StructField("energy_kwh", T.DoubleType(), True),
    T.StructField("event_date", T.DateType(), False),
]), natural_key=("trip_id",), partition_cols=("event_date",))
D1 = dt.date(2026, 11, 2)
spark = get_spark("connect-test")
first = delta_tables.merge_upsert(spark.createDataFrame([("t1", 10.0, D1), ("t2", 20.0, D1)], SPEC.schema), SPEC,
                                  partition_values=[D1])
second = delta_tables.merge_upsert(
    spark.createDataFrame([("t1", 10.0, D1), ("t2", 25.0, D1), ("t3", 30.0, D1)], SPEC.schema), SPEC,
    partition_values=[D1])
path = str(delta_log.table_path(SPEC))
rows = sorted((r.trip_id, r.energy_kwh) for r in spark.read.format("delta").load(path).collect())
print(json.dumps({"remote": is_remote(spark), "first": first, "second": second, "rows": rows,
                  "version": delta_log.log_table(path).version()}))
"""


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    work = tmp_path_factory.mktemp("connect")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COALCHAIN_", "PYSPARK", "SPARK_CONNECT"))}
    env.update(PYTHONPATH=str(REPO), COALCHAIN_SPARK_MASTER="local[1]", COALCHAIN_SPARK_PROFILE="small",
               COALCHAIN_SPARK_SHUFFLE_PARTITIONS="1", COALCHAIN_LAKE_ROOT=str(work / "lake"),
               SPARK_LOCAL_IP="127.0.0.1")
    log = open(work / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "jobs.platform.session", "connect-server", "--port", str(port)],
                              env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while b"Spark Connect server started" not in (work / "server.log").read_bytes():
            assert server.poll() is None, (work / "server.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the Connect server did not start in 120 s"
            time.sleep(0.5)
        yield {"port": port, "pid": server.pid, "env": env, "work": work}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def test_the_server_listens_on_loopback_only(connect_server):
    listening = subprocess.run(["ss", "-H", "-ltn"], capture_output=True, text=True, check=True).stdout
    addresses = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{connect_server['port']}")]
    assert addresses and all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for a in addresses), addresses


def test_a_client_creates_and_merges_a_table_through_the_server(connect_server):
    env = {**connect_server["env"], "COALCHAIN_SPARK_REMOTE": f"sc://127.0.0.1:{connect_server['port']}"}
    done = subprocess.run([sys.executable, "-c", CLIENT], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["remote"] is True
    # first call: partition 2026-11-02 is empty, so both rows are written without a join: 2 inserted
    assert result["first"] == {"inserted": 2, "updated": 0}
    # second call: t1 unchanged (not rewritten), t2 20.0 -> 25.0 (updated), t3 new (inserted)
    assert result["second"] == {"inserted": 1, "updated": 1}
    assert result["rows"] == [["t1", 10.0], ["t2", 25.0], ["t3", 30.0]]
    # version 0: the table created by delta-rs (a Connect client has no DeltaTable builder), 1 the write, 2 the MERGE
    assert result["version"] == 2


def test_a_client_of_a_server_that_is_not_there_fails_clearly(connect_server):
    env = {**connect_server["env"], "COALCHAIN_SPARK_REMOTE": f"sc://127.0.0.1:{free_port()}"}
    script = "from jobs.platform.session import get_spark; get_spark('x').range(1).collect()"
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "SparkServerUnavailable: the Spark Connect server 127.0.0.1:" in done.stderr, done.stderr[-2000:]
    assert "(COALCHAIN_SPARK_REMOTE) does not accept connections" in done.stderr, done.stderr[-2000:]


UDF_CLIENT = r"""
from pyspark.sql import functions as F
from jobs.platform.session import get_spark
spark = get_spark("connect-udf-test")
plus_one = F.udf(lambda x: x + 1, "long")
print(spark.range(3).select(plus_one("id").alias("v")).agg(F.sum("v")).first()[0], spark.client._session_id)
"""


def test_a_finished_client_leaves_no_session_and_no_python_worker_on_the_server(connect_server):
    env = {**connect_server["env"], "COALCHAIN_SPARK_REMOTE": f"sc://127.0.0.1:{connect_server['port']}"}
    sessions = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", UDF_CLIENT], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-4000:]
        total, session_id = done.stdout.strip().splitlines()[-1].split()
        assert total == "6"        # (0 + 1) + (1 + 1) + (2 + 1)
        sessions.append(session_id)
    # each client released its session when it exited, before the server's idle timeout (60 min)
    log = (connect_server["work"] / "server.log").read_text(errors="replace")
    for session_id in sessions:
        assert f"Closing session with userId:  and sessionId: {session_id}" in log, session_id
    assert "INVALID_HANDLE.SESSION_CLOSED" not in log
    # the Python workers that ran the UDF exited with their tasks (Spark 4.0 would keep a daemon per session)
    assert python_workers(connect_server["pid"]) == []


PROBE_CLIENT = r"""
from pyspark.sql import functions as F
from jobs.platform.session import get_spark

def version(_):
    from jobs import _probe          # imported on the executor, from the zip the client uploaded
    return _probe.VERSION

spark = get_spark("connect-code-test")
print(spark.range(1).select(F.udf(version, "string")("id")).first()[0])
"""


def test_each_client_runs_its_own_code_on_one_server(connect_server, tmp_path):
    """Two checkouts that differ in one module, served by one server that is not restarted: every client's
    functions run the code of its own checkout, in any order (an upgrade needs no server restart)."""
    import shutil

    trees = {}
    for version in ("a", "b"):
        tree = tmp_path / version
        for package in ("jobs", "schemas", "models"):
            shutil.copytree(REPO / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
        (tree / "jobs" / "_probe.py").write_text(f"VERSION = {version!r}\n")
        trees[version] = tree
    seen = []
    for version in ("a", "b", "a"):
        env = {**connect_server["env"], "PYTHONPATH": str(trees[version]),
               "COALCHAIN_SPARK_REMOTE": f"sc://127.0.0.1:{connect_server['port']}",
               "COALCHAIN_CODE_CACHE_DIR": str(tmp_path / "code")}
        done = subprocess.run([sys.executable, "-c", PROBE_CLIENT], env=env, cwd=trees[version], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:]
        seen.append(done.stdout.strip().splitlines()[-1])
    assert seen == ["a", "b", "a"]
