"""Fault 6: an Airflow 3 backfill over the sample's delivery days gives the same tables as daily runs.

Two temporary Airflow homes (SQLite) and two temporary lakes, the committed sample landing zone:

* backfill lake: a real Airflow 3 deployment in miniature - `airflow dag-processor` parses the DAGs into
  the metadata DB, `airflow scheduler` (LocalExecutor) runs the task instances, `airflow api-server`
  serves the Execution API the task SDK talks to - and `airflow backfill create` over the logical dates
  of the delivery days;
* daily lake: the same DAG run once per delivery day, in order, with `airflow dags test <logical date>`,
  i.e. what the daily schedule would have run.

Then every table the DAG writes (bronze, silver, quarantine, files ledger, ingest audit) must hold the
same rows in both lakes, apart from the columns that record *when* or *in which run* a row was written.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pendulum
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data_samples" / "landing"
AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "ingest_logistics"
SOURCES = ("weighbridge", "shipments")            # dags/ingest_logistics.py SOURCES
SHANGHAI = "Asia/Shanghai"

# Columns that legitimately differ between the two lakes: wall-clock times of the writes and the ids of
# the runs that wrote them. Everything else (values, event days, source file, record and line numbers,
# checksums, quarantine reasons, per-run counts) is a function of the landing data and the run's window.
VOLATILE = {"ingested_at", "quarantined_at", "run_id", "started_at", "finished_at", "file_stamp"}

pytestmark = pytest.mark.slow


def delivery_days() -> list[dt.date]:
    """Every delivery-day folder of the DAG's sources in the committed sample, first to last."""
    days = sorted({dt.date.fromisoformat(d.name) for s in SOURCES for d in (SAMPLE / s).iterdir() if d.is_dir()})
    return [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]


def logical_date(day: dt.date) -> pendulum.DateTime:
    """The run that covers delivery day ``day``: the daily cron fires at the local midnight after it
    (CronTriggerTimetable: logical date = fire time; see dags/_ingest.py delivery_day)."""
    return pendulum.datetime(day.year, day.month, day.day, tz=SHANGHAI).add(days=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow_env(home: Path, lake: Path, api_port: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # scheduler, dag-processor, api-server and the CLI write to one SQLite file: wait up to 60 s for its
        # lock (sqlite3's default is 5 s; on a busy host `backfill create` failed with "database is locked")
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # One task at a time: SQLite has one writer, and the machine is small.
        "AIRFLOW__CORE__PARALLELISM": "1",
        # Only the backfill's runs: with catch-up off the scheduler would otherwise add a run for today.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "COALCHAIN_LAKE_ROOT": str(lake),
        "COALCHAIN_LANDING_ROOT": str(SAMPLE),
        "COALCHAIN_TASK_RETRIES": "0",
    })
    if api_port is not None:
        env.update({
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        })
    return env


def run(args: list[str], env: dict[str, str], timeout: int = 600) -> str:
    out = subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True, env=env, timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == 0, f"airflow {' '.join(args)} failed:\n{log[-4000:]}"
    return log


def query(home: Path, sql: str, *params) -> list[tuple]:
    """Read the metadata DB directly (cheaper than one `airflow` CLI process per poll)."""
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql, params).fetchall()


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} missing)"


def task_logs(home: Path) -> str:
    logs = sorted((home / "logs").glob(f"dag_id={DAG_ID}/**/*.log"), key=lambda p: p.stat().st_mtime)
    return "\n".join(f"--- {p.relative_to(home)}\n{tail(p, 1500)}" for p in logs[-2:])


class Deployment:
    """dag-processor, scheduler and api-server as child processes, each in its own process group so
    that stopping one also stops what it started (executor workers, task supervisors, Spark JVMs)."""

    def __init__(self, home: Path, env: dict[str, str]):
        self.home, self.env, self.procs = home, env, {}

    def start(self, *commands: str) -> None:
        for name in commands:
            log = (self.home / f"{name}.log").open("w")
            self.procs[name] = subprocess.Popen([str(AIRFLOW), name], env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"airflow {name} exited ({proc.returncode}):\n{tail(self.home / f'{name}.log')}"

    def logs(self) -> str:
        return "\n".join(f"=== {name}\n{tail(self.home / f'{name}.log', 2000)}" for name in self.procs)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def wait_for(condition, timeout_s: float, what: str, deployment: Deployment, every_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        deployment.check_alive()
        result = condition()
        if result:
            return result
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{deployment.logs()}\n{task_logs(deployment.home)}")


def backfill(home: Path, lake: Path, days: list[dt.date]) -> list[tuple[str, str]]:
    """A real Airflow 3 backfill over ``days``; returns (logical date, state) of its runs."""
    env = airflow_env(home, lake, api_port=free_port())
    run(["db", "migrate"], env)
    deployment = Deployment(home, env)
    try:
        deployment.start("api-server", "dag-processor", "scheduler")
        wait_for(lambda: query(home, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID),
                 300, f"the dag-processor to serialize {DAG_ID}", deployment)
        run(["dags", "unpause", DAG_ID], env)
        # The range is inclusive and in logical dates: the first and last day's cron fire times.
        # One run at a time, oldest first, as the daily schedule would have run them.
        run(["backfill", "create", "--dag-id", DAG_ID, "--from-date", logical_date(days[0]).isoformat(),
             "--to-date", logical_date(days[-1]).isoformat(), "--max-active-runs", "1"], env)

        def finished():
            runs = query(home, "SELECT logical_date, state FROM dag_run WHERE dag_id = ? AND run_type = 'backfill' "
                               "ORDER BY logical_date", DAG_ID)
            return runs if runs and all(state in ("success", "failed") for _, state in runs) else None

        runs = wait_for(finished, 40 * 60, f"the backfill runs of {DAG_ID} to finish", deployment, every_s=10)
        assert all(state == "success" for _, state in runs), f"{runs}\n{deployment.logs()}\n{task_logs(home)}"
        return runs
    finally:
        deployment.stop()


def daily_runs(home: Path, lake: Path, days: list[dt.date]) -> None:
    """The same DAG once per delivery day, in order, at the logical date its daily cron run has."""
    env = airflow_env(home, lake)
    run(["db", "migrate"], env)
    for day in days:
        log = run(["dags", "test", DAG_ID, logical_date(day).isoformat()], env, timeout=900)
        assert "state=success" in log, log[-3000:]


def comparable(spark, lake: Path, spec):
    """The table's rows without the volatile columns; maps (bronze `fields`) as sorted entry arrays,
    since Spark's set operations refuse map columns."""
    from pyspark.sql import functions as F, types as T

    from jobs.platform.delta_log import table_path
    from jobs.platform.settings import Settings

    df = spark.read.format("delta").load(str(table_path(spec, Settings(lake_root=lake, landing_root=SAMPLE))))
    if "source" in df.columns:                     # shared ops tables: only this DAG's sources
        df = df.where(F.col("source").isin(*SOURCES))
    return df.select(*[F.array_sort(F.map_entries(f.name)).alias(f.name) if isinstance(f.dataType, T.MapType)
                       else F.col(f.name) for f in sorted(df.schema.fields, key=lambda f: f.name)
                       if f.name not in VOLATILE])


def differences(expected, actual) -> list[str]:
    """Rows of one side missing from the other, as a multiset (duplicates count)."""
    missing, extra = expected.exceptAll(actual).collect(), actual.exceptAll(expected).collect()
    return [f"only daily: {r}" for r in missing[:5]] + [f"only backfill: {r}" for r in extra[:5]] + (
        [f"... {len(missing)} rows only daily, {len(extra)} only backfill"] if missing or extra else [])


def duplicate_keys(df, key: tuple[str, ...]) -> int:
    return df.groupBy(*key).count().where("count > 1").count()


def test_backfill_gives_the_same_tables_as_daily_runs(spark, tmp_path):
    days = delivery_days()
    assert days == [dt.date(2026, 11, 2) + dt.timedelta(days=i) for i in range(4)], days  # the sample's 4 days

    t0 = time.monotonic()
    runs = backfill(tmp_path / "airflow_backfill", tmp_path / "lake_backfill", days)
    t_backfill = time.monotonic() - t0
    # One backfill run per delivery day, at the logical dates the daily cron gives them (SQLite stores UTC).
    assert [dt.datetime.fromisoformat(d).replace(tzinfo=dt.timezone.utc) for d, _ in runs] == \
        [logical_date(d) for d in days], runs

    t0 = time.monotonic()
    daily_runs(tmp_path / "airflow_daily", tmp_path / "lake_daily", days)
    t_daily = time.monotonic() - t0
    print(f"backfill {t_backfill:.0f} s, daily runs {t_daily:.0f} s")

    assert_same_tables(spark, tmp_path / "lake_daily", tmp_path / "lake_backfill")


def assert_same_tables(spark, daily_lake: Path, backfill_lake: Path) -> None:
    from schemas.tables import BRONZE, INGEST_AUDIT, INGESTED_FILES, QUARANTINE, SILVER

    tables = [SILVER[s] for s in SOURCES] + [BRONZE[s] for s in SOURCES] + [QUARANTINE, INGESTED_FILES, INGEST_AUDIT]
    problems = {}
    for spec in tables:
        daily = comparable(spark, daily_lake, spec)
        backfilled = comparable(spark, backfill_lake, spec)
        assert daily.count() > 0, f"{spec.name}: empty in the daily lake, the comparison would prove nothing"
        diff = differences(daily, backfilled)
        if diff:
            problems[spec.name] = diff
    assert not problems, problems

    manifest = json.loads((SAMPLE / "_manifest.json").read_text())
    for source in SOURCES:
        spec = SILVER[source]
        silver = comparable(spark, backfill_lake, spec)
        assert duplicate_keys(silver, spec.natural_key) == 0, f"{spec.name}: duplicate {spec.natural_key}"
        assert silver.count() == manifest["sources"][source]["distinct_valid"], spec.name
    # Each run took only its own delivery day's file of each source (the earlier days' files in its
    # lookback window were known by checksum): one audit row per source and delivery day - weighbridge
    # 2026-11-02..05 (4) + shipments 2026-11-02..04 (3) = 7 - with one new file in each; the second file
    # of weighbridge's 2026-11-04 folder is a byte copy of 2026-11-03's, skipped as duplicate content.
    audit = comparable(spark, backfill_lake, INGEST_AUDIT).collect()
    day_folders = {(s, d.name) for s in SOURCES for d in (SAMPLE / s).iterdir() if d.is_dir()}
    assert len(audit) == len(day_folders) == 7, audit
    assert all(r.files_new == 1 for r in audit), audit
    assert sum(manifest["sources"][s]["faults"].get("dup_file", 0) for s in SOURCES) == 1

    # The comparison can fail: one row less, or one row twice, is reported.
    silver = comparable(spark, daily_lake, SILVER["weighbridge"])
    one_less = silver.orderBy("ticket_id").limit(silver.count() - 1)
    assert differences(silver, one_less) and differences(one_less, silver)
    assert duplicate_keys(silver.unionByName(silver.limit(1)), SILVER["weighbridge"].natural_key) == 1
