"""The native production stack (`make stack-up`), run by its scheduler, gives the lake of a `make run`.

One stack for the module, in a temporary stack folder with its own secrets file, started and stopped with
the README's commands (`make stack-up`, `make stack-status`, `make stack-down`) and driven only with the
commands of docs/operations.md (`scripts/stack.sh airflow ...`, `scripts/stack.sh rotate-credentials`,
`python -m jobs.tools.restore_table`):

1. the stack is up on loopback only, and a second `make stack-up` starts nothing;
2. the scheduler runs the pipeline: the ingest DAGs are unpaused and backfilled over the sample's delivery
   days; `kpi_daily` and the forecast DAG are started by the silver Assets, then `kpi_daily` is triggered
   without days (what its daily sweep runs) and no day touched by ingestion is left unbuilt;
   `kpi_monthly` is backfilled for the month after the sample and `kpi_extracts` follows from the gold
   Assets. Then every bronze, silver and
   gold table, the quarantine and the files ledger, and every extract pack CSV equal those of a `make run`-style run of the same code in this
   process (ingest of the sample window, the month's gold build, the month's packs, the last day's forecast);
   a second backfill of the same days (`--reprocess-behavior completed`) skips every ingest task (no new
   file), so no Asset starts `kpi_daily` or the forecast, and changes no table version;
3. the operator's view: the Airflow UI, logged in through its login form in headless Chromium, lists the
   DAGs and their successful runs (screenshot: docs/img/airflow-ui.png);
4. the runbook: gold of a day is rebuilt by hand, a failed run is found and cleared, a table is restored
   to an earlier version, the credentials are rotated (the old UI password is refused, the new one works,
   the scheduler still runs);
5. `make stack-down` leaves no process of the stack behind.

The stack runs as docker/compose.yaml does: the landing zone and the lake in its object store (the sample
is copied into ``s3://coalchain-landing/landing`` with `scripts/stack.sh load-sample`; the lake is
``s3://coalchain-lake/lake``), the tasks as clients of its Spark Connect server, one Spark application on
its standalone cluster with executors on the two workers: no task starts a JVM of its own. The
comparison with the in-process run on folders is then also the proof that the pipeline gives the same
lake on a cluster with the lake in a bucket.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from jobs.platform.settings import get_settings
from jobs.tools import stack as stack_tool
from tests import lake_compare
from tests.lake_compare import csv_cells, delta_tables, open_table
from tests.processes import python_workers

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data_samples" / "landing"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
INGEST_DAGS = {   # dags/ingest_<domain>.py SOURCES
    "ingest_mine_operations": ("companies", "mines", "washing_plants", "production_plan", "mine_production",
                               "washing"),
    "ingest_fleet_telematics": ("trucks", "telematics"),
    "ingest_charging": ("charging_stations", "charging_connectors", "charging_sessions", "connector_status"),
    "ingest_hydrogen": ("h2_stations", "h2_fills"),
    "ingest_logistics": ("weighbridge", "shipments"),
}
ALL_DAGS = set(INGEST_DAGS) | {"kpi_daily", "kpi_monthly", "kpi_extracts", "forecast_charging_demand"}
MONTH = dt.date(2026, 11, 1)
# the lake and the landing zone in the stack's object store (its buckets), as docker/compose.yaml has them
LAKE, LANDING = "s3://coalchain-lake/lake", "s3://coalchain-landing/landing"
MONTHLY_RUN = "2026-12-01T06:00:00+08:00"   # kpi_monthly's cron fire time that closes 2026-11
# issued_at: when the forecast was made; data_version names the sessions table's Delta version, which
# counts that lake's commits (three daily MERGEs here, one in the make-run lake) for the same rows
VOLATILE = lake_compare.VOLATILE | {"issued_at", "data_version"}
TIMINGS: dict[str, float] = {}
# written by the forecast DAG's predict task, partitioned by the as-of day (forecast_date_local)
FORECAST_TABLES = ("gold/gold_charging_forecast", "gold/gold_charging_flexibility_forecast")


def table_rows(where) -> tuple[list[str], list[tuple]]:
    return lake_compare.table_rows(where, VOLATILE)


pytestmark = pytest.mark.stack


# ---- helpers ------------------------------------------------------------------------------------------
def delivery_days(dag_id: str) -> list[dt.date]:
    """The sample's delivery days of the DAG's sources, first to last."""
    days = sorted({dt.date.fromisoformat(d.name) for s in INGEST_DAGS[dag_id] for d in (SAMPLE / s).iterdir()})
    return [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]


def logical_date(day: dt.date) -> str:
    """The run covering delivery day ``day`` fires at the local midnight after it (dags/_ingest.py)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SHANGHAI).isoformat()


class Handle:
    """The running stack: its commands (run as an operator would) and a read-only look at its metadata DB."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("COALCHAIN_", "AIRFLOW", "AWS_"))}
        self.env.update(COALCHAIN_STACK_DIR=str(tmp / "stack"), COALCHAIN_STACK_ENV=str(tmp / "config" / "stack.env"),
                        COALCHAIN_SPARK_SHUFFLE_PARTITIONS="2", COALCHAIN_TASK_RETRIES="0",
                        COALCHAIN_LAKE_ROOT=LAKE, COALCHAIN_LANDING_ROOT=LANDING)
        self.stack = stack_tool.Stack(tmp / "stack", tmp / "config" / "stack.env")
        self.commands: list[str] = []

    def run(self, *cmd: str, timeout: float = 600, ok=(0,)) -> str:
        self.commands.append(" ".join(cmd))
        done = subprocess.run(list(cmd), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        out = done.stdout + done.stderr
        assert done.returncode in ok, f"{' '.join(cmd)} exited {done.returncode}:\n{out[-5000:]}\n{self.logs()}"
        return out

    def airflow(self, *args: str, **kw) -> str:
        return self.run("scripts/stack.sh", "airflow", *args, **kw)

    def query(self, sql: str, *params) -> list[tuple]:
        connection = stack_tool._connect(self.stack, stack_tool.DB_NAME)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def runs(self, dag_id: str | None = None) -> list[tuple]:
        """(dag_id, run_type, state, logical_date, conf) of every run, oldest first."""
        sql = "SELECT dag_id, run_type, state, logical_date, conf FROM dag_run"
        rows = self.query(sql + (" WHERE dag_id = %s" if dag_id else "") + " ORDER BY id", *([dag_id] if dag_id else []))
        return [(d, t, s, l, c) for d, t, s, l, c in rows]

    def logs(self) -> str:
        parts = []
        for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-api-server"):
            path = self.stack.log_dir / f"{name}.log"
            if path.is_file():
                parts.append(f"=== {name}\n{path.read_text(errors='replace')[-1500:]}")
        failed = sorted(self.stack.airflow_home.glob("logs/**/*.log"), key=lambda p: p.stat().st_mtime)[-2:]
        parts += [f"--- {p}\n{p.read_text(errors='replace')[-2500:]}" for p in failed]
        return "\n".join(parts)

    def wait(self, condition, timeout_s: float, what: str, every_s: float = 3.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = [n for n in stack_tool.COMPONENTS if self.stack.alive(n) is None]
            assert not dead, f"stack components died: {dead}\n{self.logs()}"
            result = condition()
            if result:
                return result
            time.sleep(every_s)
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.runs()}\n{self.logs()}")

    def settle(self, timeout_s: float = 2700) -> list[tuple]:
        """Wait until no run is queued or running and no Asset update waits for its run, for three looks in a
        row, and no backfill is still open."""
        quiet = [0]

        def idle():
            busy = self.query("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')")[0][0]
            busy += self.query("SELECT count(*) FROM backfill WHERE completed_at IS NULL")[0][0]
            # an Asset update that will start a run the scheduler has not created yet (these two DAGs run on
            # any one of their Assets)
            busy += self.query("SELECT count(*) FROM asset_dag_run_queue WHERE target_dag_id IN "
                               "('kpi_daily', 'forecast_charging_demand')")[0][0]
            quiet[0] = quiet[0] + 1 if busy == 0 else 0
            return quiet[0] >= 3

        self.wait(idle, timeout_s, "every run to finish", every_s=1.0)
        return self.runs()

    def lake_root(self):
        """The stack's lake (in its bucket), as its settings name it."""
        from jobs.platform import storage

        return storage.parse_location(self.stack.state()["project_env"]["COALCHAIN_LAKE_ROOT"])

    def lake_tables(self) -> dict[str, str]:
        """Every Delta table of the stack's lake (in its bucket): ``layer/table`` -> its URI."""
        from jobs.platform import storage

        lake = self.lake_root()
        names = {f.rel_key.split("/_delta_log/")[0] for f in storage.list_files(get_settings(), lake)
                 if "/_delta_log/" in f.rel_key}
        return {name: (lake / name).uri for name in sorted(names)}

    def lake_versions(self) -> dict[str, int]:
        """Every Delta table of the stack's lake and its latest version."""
        return {name: open_table(uri).version() for name, uri in self.lake_tables().items()}


def print_task_time(handle: Handle) -> None:
    """Where the stack's time went: per DAG, task and run type, the task instances, their total and longest
    run time (s); and the runs' wall time from queued to finished."""
    rows = handle.query(
        "SELECT t.dag_id, t.task_id, r.run_type, count(*), sum(t.duration), max(t.duration) FROM task_instance t "
        "JOIN dag_run r ON r.dag_id = t.dag_id AND r.run_id = t.run_id GROUP BY 1, 2, 3 ORDER BY 5 DESC NULLS LAST")
    print("task time (dag, task, run type: count, total s, longest s):")
    for dag_id, task_id, run_type, n, total, longest in rows:
        print(f"  {dag_id}.{task_id} [{run_type}]: {n}, {total or 0:.0f}, {longest or 0:.0f}")
    runs = handle.query("SELECT dag_id, run_type, count(*), sum(extract(epoch FROM end_date - queued_at)) FROM dag_run "
                        "GROUP BY 1, 2 ORDER BY 4 DESC NULLS LAST")
    print("run wall time (dag, run type: count, total s from queued to end):")
    for dag_id, run_type, n, total in runs:
        print(f"  {dag_id} [{run_type}]: {n}, {float(total or 0):.0f}")


def stack_pids(handle: Handle) -> list[int]:
    components = {handle.stack.alive(n) for n in stack_tool.COMPONENTS} - {None}
    return stack_tool.stack_processes(handle.stack.id, components)


@pytest.fixture(scope="module")
def handle(tmp_path_factory):
    h = Handle(tmp_path_factory.mktemp("stack"))
    t0 = time.monotonic()
    out = h.run("make", "stack-up", timeout=900)
    TIMINGS["stack-up"] = time.monotonic() - t0
    assert re.search(r"Airflow UI: +http://127\.0\.0\.1:\d+", out), out
    # this process reads the stack's bucket (the lake) with the stack's object-store settings
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in stack_tool.airflow_environment(h.stack).items()
                       if k.startswith(("AWS_", "COALCHAIN_S3_"))})
    get_settings.cache_clear()
    try:
        yield h
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        try:
            print_task_time(h)
        except Exception as exc:   # a report only: the stack must still be stopped below
            print("no task-time report:", exc)
        t0 = time.monotonic()
        out = h.run("make", "stack-down", timeout=300, ok=(0, 1, 2))
        TIMINGS["stack-down"] = time.monotonic() - t0
        left = stack_pids(h)
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        print("timings (s):", {k: round(v) for k, v in TIMINGS.items()})
        print("commands run:", *h.commands, sep="\n  ")
        shutil.rmtree(h.stack.postgres_data.parent, ignore_errors=True)   # owned by the postgres user
        assert "no process of it is left" in out and not left, (out, left, ps)


# ---- 1. up, idempotent, loopback ----------------------------------------------------------------------
def test_stack_up_twice_starts_nothing_and_listens_on_loopback_only(handle):
    pids = {n: handle.stack.alive(n) for n in stack_tool.COMPONENTS}
    assert all(pids.values()), pids
    out = handle.run("make", "stack-up")
    assert "nothing started" in out and "Airflow UI:" in out, out
    assert {n: handle.stack.alive(n) for n in stack_tool.COMPONENTS} == pids

    status = handle.run("make", "stack-status")
    for name in stack_tool.COMPONENTS:
        assert re.search(rf"^{name}\s+running\s+{pids[name]}\b", status, re.M), status
    assert "(2 workers alive)" in status and "health: healthy" in status, status

    # every listening socket of a stack process is bound to 127.0.0.1
    mine = set(stack_pids(handle))
    listening = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    bound = []
    for line in listening.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & mine:
            bound.append(line.split()[3])
    assert len(bound) >= 10, listening   # postgres, S3, master (2), workers (2 x 2), Connect server, api-server
    assert all(a.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for a in bound), bound
    # no secret in the repository: the secrets file is the configured one, readable by its owner only
    assert oct(handle.stack.env_file.stat().st_mode & 0o777) == "0o600"
    assert not any(k in (handle.stack.state_file.read_text()) for k in handle.stack.secrets().values())


# ---- 2. the pipeline, run by the scheduler ------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(spark, tmp_path_factory, handle):
    """A `make run`-style run of the same code in this process: every ingest source over the sample's
    delivery window (scripts/run_pipeline.sh's `from_date`/`to_date`), the month's gold build (what
    kpi_monthly runs), the month's extract packs (kpi_extracts) and the forecast of the last sessions day."""
    from jobs.delivery.extracts import build_extracts
    from jobs.forecast import charging_demand
    from jobs.ingest.runner import ingest_all
    from jobs.kpi.build import build, record_build
    from jobs.platform.settings import Settings

    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("reference")
    settings = Settings(lake_root=root / "lake", landing_root=SAMPLE, delivery_root=root / "delivery",
                        company_key_salt=handle.stack.secrets()["COALCHAIN_COMPANY_KEY_SALT"])
    days = sorted({d for dag in INGEST_DAGS for d in delivery_days(dag)})
    ingest_all(spark, days[0], days[-1], settings)
    started = dt.datetime.now(dt.timezone.utc)
    result = build(spark, MONTH, dt.date(2026, 11, 30), settings)
    record_build(spark, result, started, settings)
    build_extracts(spark, MONTH, settings=settings)
    charging_demand.predict(spark, delivery_days("ingest_charging")[-1], settings=settings)
    TIMINGS["reference run (in-process)"] = time.monotonic() - t0
    return settings


@pytest.fixture(scope="module")
def pipeline(handle):
    """The scheduler runs the pipeline; returns the runs and the lake's table versions after it."""
    t0 = time.monotonic()
    handle.wait(lambda: {r[0] for r in handle.query("SELECT dag_id FROM serialized_dag")} >= ALL_DAGS, 300,
                "the dag-processor to serialize every DAG")
    out = handle.run("scripts/stack.sh", "load-sample")
    assert f"loaded into {LANDING}" in out, out
    handle.airflow("dags", "unpause", "--treat-dag-id-as-regex", "-y",
                   "^(ingest_.*|kpi_daily|kpi_extracts|forecast_charging_demand)$")
    backfill_ingest(handle)
    handle.settle()
    # kpi_daily without days, what its 05:00 sweep runs: builds any touched day no Asset-triggered run built
    handle.airflow("dags", "trigger", "kpi_daily")
    runs = handle.settle()
    TIMINGS["backfill + Asset-triggered DAGs"] = time.monotonic() - t0

    t1 = time.monotonic()
    # kpi_monthly: the backfill is created while the DAG is paused, so unpausing it does not first start
    # the scheduled run of the same logical date (with the clock past it, that is the latest cron time)
    handle.airflow("backfill", "create", "--dag-id", "kpi_monthly", "--from-date", MONTHLY_RUN,
                   "--to-date", MONTHLY_RUN)
    handle.airflow("dags", "unpause", "kpi_monthly")
    runs = handle.settle()
    # the last sessions day's forecast, re-run by hand (the runbook's "re-run a day")
    last_sessions_day = delivery_days("ingest_charging")[-1].isoformat()
    handle.airflow("dags", "trigger", "forecast_charging_demand", "--conf", json.dumps({"as_of": last_sessions_day}))
    runs = handle.settle()
    TIMINGS["kpi_monthly + kpi_extracts + forecast"] = time.monotonic() - t1
    return runs


def backfill_ingest(handle: Handle, reprocess: bool = False) -> None:
    """`airflow backfill create` for each ingest DAG over its sources' delivery days, the DAGs side by side.
    The first pass runs a DAG's days one at a time (as the daily schedule did); a re-run (docs/operations.md,
    "Re-run a day") runs them side by side."""
    procs = []
    for dag_id in INGEST_DAGS:
        days = delivery_days(dag_id)
        cmd = ["scripts/stack.sh", "airflow", "backfill", "create", "--dag-id", dag_id,
               "--from-date", logical_date(days[0]), "--to-date", logical_date(days[-1]),
               "--max-active-runs", "4" if reprocess else "1"]
        if reprocess:
            cmd += ["--reprocess-behavior", "completed"]
        handle.commands.append(" ".join(cmd))
        procs.append((cmd, subprocess.Popen(cmd, env=handle.env, cwd=REPO, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)))
    for cmd, proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{out[-3000:]}"


def test_the_scheduler_ran_every_dag(handle, pipeline):
    runs = pipeline
    by_dag = {}
    for dag_id, run_type, state, logical, _ in runs:
        by_dag.setdefault(dag_id, []).append((run_type, state, logical))
    for dag_id in INGEST_DAGS:
        backfilled = [(s, l) for t, s, l in by_dag[dag_id] if t == "backfill"]
        assert [l.astimezone(SHANGHAI).date() - dt.timedelta(days=1) for _, l in backfilled] == \
            delivery_days(dag_id), backfilled
        assert all(s == "success" for s, _ in backfilled), backfilled
    # Asset-triggered: kpi_daily from the silver Assets, the forecast from the sessions, extracts from gold
    for dag_id in ("kpi_daily", "forecast_charging_demand", "kpi_extracts"):
        triggered = [s for t, s, _ in by_dag.get(dag_id, []) if t == "asset_triggered"]
        assert triggered, (dag_id, by_dag.get(dag_id))
    assert all(s == "success" for t, s, _ in by_dag["kpi_daily"]), by_dag["kpi_daily"]
    assert ("manual", "success") in [(t, s) for t, s, _ in by_dag["kpi_daily"]], by_dag["kpi_daily"]
    # every silver update reached gold: no day touched by ingestion is left for a later build
    from jobs.kpi.build import affected_with_plan

    assert affected_with_plan(get_settings().model_copy(update={"lake_root": handle.lake_root()})) == ([], {})
    assert [(t, s) for t, s, _ in by_dag["kpi_monthly"]] == [("backfill", "success")], by_dag["kpi_monthly"]
    # the forecast's 05:30 sweep, started by the unpause for its latest fire time (today, long after the
    # sample's sessions): no sessions file of the day before it was ingested, so it skipped and wrote nothing
    swept = handle.query("SELECT task_id, state FROM task_instance WHERE dag_id = 'forecast_charging_demand' "
                         "AND run_id LIKE 'scheduled__%%' ORDER BY task_id")
    assert swept == [("predict", "skipped"), ("train_if_due", "skipped")], swept
    assert all(s == "success" for _, s, _ in by_dag["kpi_extracts"]), by_dag["kpi_extracts"]
    assert by_dag["forecast_charging_demand"][-1][:2] == ("manual", "success"), by_dag["forecast_charging_demand"]
    # the Spark work ran on the stack's standalone cluster: one application, the Connect server, holding the
    # cores of both workers
    master = stack_tool._http_json(f"http://127.0.0.1:{handle.stack.ports()['spark-master-ui']}/json/")
    connect = [a for a in master["activeapps"] if a["name"] == "coalchain-connect"]
    assert len(connect) == 1 and connect[0]["cores"] == 2, master["activeapps"]
    assert master["completedapps"] == [], master["completedapps"]   # no task started an application of its own
    # the packs of the month kpi_monthly closed were built by the kpi_extracts run it triggered
    packs = Path(handle.stack.state()["project_env"]["COALCHAIN_DELIVERY_ROOT"]) / "extracts" / "2026-11"
    assert len([p for p in packs.iterdir() if p.is_dir()]) == 3, sorted(packs.iterdir())
    listed = handle.airflow("dags", "list", "-o", "plain")   # the runbook's first look
    assert all(re.search(rf"(^|\s){d}\s", listed, re.M) for d in ALL_DAGS), listed
    out = handle.airflow("dags", "list-runs", "kpi_monthly")
    assert "success" in out and "backfill" in out, out


def test_every_task_released_its_spark_session(handle, pipeline):
    """Each task process released its Connect session when it exited (not at the server's 60-min idle timeout),
    and no Python worker outlived the task it ran for on the cluster's executors."""
    log_path = handle.stack.log_dir / "spark-connect.log"
    deadline = time.monotonic() + 60          # a task's process may still be exiting after its run succeeded
    while True:
        log = log_path.read_text(errors="replace")
        opened = set(re.findall(r"sessionId: ([0-9a-f-]{36})", log))
        closed = set(re.findall(r"Closing session with userId: .* and sessionId: ([0-9a-f-]{36})", log))
        if opened <= closed or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(opened) > 20, len(opened)      # dozens of tasks ran Spark through the server
    assert opened - closed == set()
    assert "INVALID_HANDLE.SESSION_CLOSED" not in log
    for worker in [f"spark-worker-{i}" for i in range(1, stack_tool.SPARK_WORKERS + 1)]:
        assert python_workers(handle.stack.alive(worker)) == [], worker


def test_gold_and_extract_packs_equal_a_make_run(handle, pipeline, reference):
    stack_tables, ref_tables = handle.lake_tables(), delta_tables(reference.lake_root)
    # and the ingest ledgers: the files taken (and which copy of a duplicate) and every quarantined row, per
    # day by the backfill's runs, for the whole window at once by the make run
    compared = [n for n in ref_tables if n.split("/")[0] in ("bronze", "silver", "gold")
                or n in ("ops/quarantine", "ops/ingested_files")]
    assert len([n for n in compared if n.startswith("gold/")]) >= 10, compared
    assert set(compared) <= set(stack_tables), sorted(set(compared) - set(stack_tables))
    as_of = delivery_days("ingest_charging")[-1]
    differing = []
    for name in compared:
        ref_columns, ref_rows = table_rows(ref_tables[name])
        columns, rows = table_rows(stack_tables[name])
        if name in FORECAST_TABLES:   # the stack also forecast the earlier days
            at = columns.index("forecast_date_local")
            rows = [r for r in rows if r[at] == as_of]
            assert ref_rows and {r[at] for r in ref_rows} == {as_of}
        if (columns, rows) != (ref_columns, ref_rows):
            differing.append(f"{name}: {len(rows)} rows vs {len(ref_rows)} in the make-run lake; only stack e.g. "
                             f"{sorted(set(rows) - set(ref_rows), key=repr)[:2]}; only make run e.g. "
                             f"{sorted(set(ref_rows) - set(rows), key=repr)[:2]}")
    assert not differing, "\n".join(differing)
    assert sum(len(table_rows(stack_tables[n])[1]) for n in compared if n.startswith("silver/")) > 10_000

    stack_packs = Path(handle.stack.state()["project_env"]["COALCHAIN_DELIVERY_ROOT"]) / "extracts"
    ref_packs = reference.delivery_dir / "extracts"
    csvs = sorted(p.relative_to(ref_packs) for p in ref_packs.rglob("*.csv"))
    assert csvs and csvs == sorted(p.relative_to(stack_packs) for p in stack_packs.rglob("*.csv"))
    assert [str(p) for p in csvs if csv_cells(ref_packs / p) != csv_cells(stack_packs / p)] == []


def test_the_forecast_of_the_last_day_is_the_fallback_for_each_station_and_hour(handle, pipeline):
    """The sample holds 3 days of sessions (2026-11-02..04), fewer than the 21 the model needs to train, so the
    forecast DAG run for the last delivery day (2026-11-05) serves the daily seasonal-naive: one row per
    station and hour of the week after that day."""
    rows = open_table(handle.lake_tables()["gold/gold_charging_forecast"]).to_pyarrow_table().to_pylist()
    as_of = delivery_days("ingest_charging")[-1]
    assert as_of == dt.date(2026, 11, 5)
    day = [r for r in rows if r["forecast_date_local"] == as_of]
    assert len({r["station_id"] for r in day}) == 3 and len(day) == 3 * 168   # 3 stations x 168 h
    assert {r["model_version"] for r in day} == {"seasonal_naive_daily"}
    assert sorted({r["lead_h"] for r in day}) == list(range(1, 169))
    # from the next local midnight: 2026-11-06 00:00 +08:00 = 2026-11-05 16:00 UTC
    assert min(r["ts_utc"] for r in day) == dt.datetime(2026, 11, 5, 16, tzinfo=dt.timezone.utc)
    # traced to the sessions it read: a version of silver_charging_sessions the lake holds
    versions = {r["data_version"] for r in day}
    assert len(versions) == 1 and re.fullmatch(r"silver_charging_sessions@v\d+", next(iter(versions))), versions
    sessions_version = open_table(handle.lake_tables()["silver/silver_charging_sessions"]).version()
    assert int(next(iter(versions)).rsplit("@v", 1)[1]) <= sessions_version
    # and nothing trained: the registry in the lake is empty
    from jobs.platform import storage

    assert storage.list_files(get_settings(), handle.lake_root() / "models" / "charging_forecast") == []


def test_a_second_backfill_changes_no_table_version(handle, pipeline):
    before = handle.lake_versions()
    assert len(before) > 30, before
    last_backfill = handle.query("SELECT max(id) FROM backfill")[0][0]

    def downstream() -> list[tuple]:   # runs an Asset or a person started (not a clock: kpi_daily's sweep)
        return [r for r in handle.runs() if not r[0].startswith("ingest_") and r[1] != "scheduled"]

    downstream_before = downstream()
    t0 = time.monotonic()
    backfill_ingest(handle, reprocess=True)
    runs = handle.settle()
    TIMINGS["second backfill"] = time.monotonic() - t0
    # the same runs, cleared and run again (a logical date has one run)
    rerun = handle.query("SELECT count(*) FROM backfill_dag_run WHERE backfill_id > %s AND dag_run_id IS NOT NULL "
                         "AND exception_reason IS NULL", last_backfill)[0][0]
    assert rerun == sum(len(delivery_days(d)) for d in INGEST_DAGS), handle.query("SELECT * FROM backfill_dag_run")
    # every ingest task ran a second time and found no new file: skipped, so it updated no Asset
    again = handle.query("SELECT state, count(*) FROM task_instance WHERE dag_id LIKE 'ingest_%%' AND run_id LIKE "
                         "'backfill%%' AND try_number >= 2 GROUP BY state")
    assert dict(again) == {"skipped": sum(len(delivery_days(d)) * len(INGEST_DAGS[d]) for d in INGEST_DAGS)}, again
    assert all(r[2] == "success" for r in runs), [r for r in runs if r[2] != "success"]
    # no Asset event, so neither kpi_daily nor the forecast ran again
    assert downstream() == downstream_before, downstream()[len(downstream_before):]
    assert handle.lake_versions() == before


def test_gold_of_given_days_is_rebuilt_by_hand(handle, pipeline):
    """docs/operations.md, "Gold for given days": kpi_daily triggered with days validates every silver table
    on them (an operator's days are not narrowed to the tables that changed) and rebuilds exactly them."""
    tables = handle.lake_tables()
    results, builds = tables["ops/quality_results"], tables["ops/kpi_builds"]
    gate_runs_before = set(open_table(results).to_pyarrow_table(columns=["run_id"]).column("run_id").to_pylist())
    builds_before = open_table(builds).to_pyarrow_table().num_rows
    day = dt.date(2026, 11, 3)
    handle.airflow("dags", "trigger", "kpi_daily", "--conf", json.dumps({"from_date": str(day), "to_date": str(day)}))
    runs = handle.settle()
    assert [r[1:3] for r in runs if r[0] == "kpi_daily"][-1] == ("manual", "success"), runs[-3:]
    new = [r for r in open_table(results).to_pyarrow_table(columns=["run_id", "table_name", "event_dates"]).to_pylist()
           if r["run_id"] not in gate_runs_before]
    # the 16 silver tables: the 7 dimensions whole, the 9 event tables on the day
    assert {r["table_name"] for r in new} == {f"silver_{s}" for sources in INGEST_DAGS.values() for s in sources}
    assert {tuple(r["event_dates"] or ()) for r in new} == {(), (day,)}
    rows = sorted(open_table(builds).to_pyarrow_table().to_pylist(), key=lambda r: r["finished_at"])
    assert len(rows) == builds_before + 1 and (rows[-1]["start_date"], rows[-1]["end_date"]) == (day, day)


# ---- 3. the operator's view ---------------------------------------------------------------------------
def test_the_airflow_ui_shows_the_dags_and_their_green_runs(handle, pipeline):
    from tests.pages import Browser

    password = handle.stack.secrets()["AIRFLOW_ADMIN_PASSWORD"]
    screenshot = REPO / "docs" / "img" / "airflow-ui.png"
    with Browser(handle.tmp / "chromium", height=1650) as browser:   # all nine DAG cards
        login(browser, handle.stack.ui_url(), password)
        browser.navigate(f"{handle.stack.ui_url()}/dags")
        text = browser.wait_for_text(lambda t: all(d in t for d in ALL_DAGS), "the DAG list")
        assert "kpi_daily" in text
        browser.screenshot(screenshot)
        browser.navigate(f"{handle.stack.ui_url()}/dag_runs")
        runs_text = browser.wait_for_text(lambda t: "success" in t.lower(), "the runs list")
    assert "failed" not in runs_text.lower(), runs_text[:3000]
    assert screenshot.stat().st_size > 20_000


def login(browser, ui: str, password: str) -> None:
    """Log in through the simple auth manager's form, as a person would: type, click."""
    browser.navigate(ui)
    browser.wait_for("document.querySelector('input[name=username]') !== null", "the login form")
    browser.type_into("input[name=username]", stack_tool.ADMIN_USER)
    browser.type_into("input[name=password]", password)
    browser.evaluate("document.querySelector('button[type=submit]').click()")
    browser.wait_for("document.querySelector('input[name=password]') === null "
                     "&& document.cookie.includes('_token')", "the login to finish")


# ---- 4. the runbook -----------------------------------------------------------------------------------
def test_a_failed_run_is_found_and_cleared(handle, pipeline):
    """docs/operations.md, "Recover after a failed run": the run is listed as failed, its task log names the
    cause, `tasks clear --only-failed` runs it again."""
    handle.airflow("dags", "trigger", "kpi_extracts", "--conf", json.dumps({"month": "2026-10"}))
    handle.settle()
    failed = handle.airflow("dags", "list-runs", "kpi_extracts", "--state", "failed", "-o", "plain")
    assert len([line for line in failed.splitlines() if line.startswith("kpi_extracts") and "failed" in line]) == 1, failed
    logs = [p for p in handle.stack.airflow_home.glob("logs/dag_id=kpi_extracts/**/*.log")
            if "no gold" in p.read_text(errors="replace").lower() or "2026-10" in p.read_text(errors="replace")]
    assert logs, "the failed task's log does not name the month"
    tries_before = handle.query("SELECT max(try_number) FROM task_instance WHERE dag_id = 'kpi_extracts' "
                                "AND state = 'failed'")[0][0]
    handle.airflow("tasks", "clear", "kpi_extracts", "--only-failed", "--yes")
    handle.wait(lambda: handle.query("SELECT max(try_number) FROM task_instance WHERE dag_id = 'kpi_extracts'")[0][0]
                > tries_before, 120, "the cleared task to run again")
    handle.settle()


def test_a_table_is_restored_to_an_earlier_version(handle, pipeline):
    table = handle.lake_tables()["gold/gold_rail_share_monthly"]
    versions = handle.run("scripts/stack.sh", "run", ".venv/bin/python", "-m", "jobs.tools.restore_table",
                          "gold_rail_share_monthly", "--list")
    latest = max(int(v) for v in re.findall(r"^\s*(\d+)\s", versions, re.M))
    assert latest >= 1, versions
    current = table_rows(table)
    earlier = open_table(table, 0).to_pyarrow_table().num_rows
    out = handle.run("scripts/stack.sh", "run", ".venv/bin/python", "-m", "jobs.tools.restore_table",
                     "gold_rail_share_monthly", "--version", "0")
    assert f"version {latest} -> {latest + 1}" in out, out
    assert open_table(table).to_pyarrow_table().num_rows == earlier
    # and back: the restore is a commit like any other
    handle.run("scripts/stack.sh", "run", ".venv/bin/python", "-m", "jobs.tools.restore_table",
               "gold_rail_share_monthly", "--version", str(latest))
    assert table_rows(table) == current
    # the runbook's read of an earlier version without restoring it: the planners' SQL CLI in the stack's
    # environment (lake in the bucket; the CLI runs its own local engine, not the Connect server's)
    listed = handle.run("scripts/stack.sh", "run", ".venv/bin/python", "-m", "jobs.delivery.query", "--list")
    assert re.search(rf"^gold\s+gold_rail_share_monthly\s+{latest + 2}\s+{re.escape(table)}\s", listed, re.M), listed
    out = handle.run("scripts/stack.sh", "run", ".venv/bin/python", "-m", "jobs.delivery.query",
                     "SELECT count(*) AS n FROM gold_rail_share_monthly VERSION AS OF 0")
    counted = re.search(r"^n\s*\n-+\s*\n(\d+)\s*$", out, re.M)
    assert counted and int(counted.group(1)) == earlier, out


def test_credentials_are_rotated(handle, pipeline):
    old = handle.stack.secrets()
    handle.run("scripts/stack.sh", "rotate-credentials", timeout=600)
    new = stack_tool._read_env_file(handle.stack.env_file)
    for key in ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                "AIRFLOW_FERNET_KEY"):
        assert new[key] != old[key], key
    assert new["COALCHAIN_COMPANY_KEY_SALT"] == old["COALCHAIN_COMPANY_KEY_SALT"]
    token = "/auth/token"

    def log_in(password: str) -> int:
        request = urllib.request.Request(handle.stack.ui_url() + token, method="POST",
                                         data=json.dumps({"username": "admin", "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert log_in(old["AIRFLOW_ADMIN_PASSWORD"]) == 401
    assert log_in(new["AIRFLOW_ADMIN_PASSWORD"]) == 201
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        stack_tool._connect(handle.stack, password=old["POSTGRES_PASSWORD"])
    # the restarted scheduler still runs tasks on the new secrets: docs/operations.md's ingest run by hand
    # (no logical date: it covers the day it is queued in), which finds no new file, so its tasks end
    # skipped after reading the landing zone and the files ledger
    handle.airflow("dags", "trigger", "ingest_hydrogen")
    runs = handle.settle()
    assert runs[-1][:3] == ("ingest_hydrogen", "manual", "success"), runs[-3:]
    states = handle.query("SELECT t.state FROM task_instance t JOIN dag_run r ON r.run_id = t.run_id AND "
                          "r.dag_id = t.dag_id WHERE r.dag_id = 'ingest_hydrogen' AND r.run_type = 'manual'")
    assert sorted(s for (s,) in states) == ["skipped", "skipped"], states
    assert "healthy" in handle.run("make", "stack-status")
