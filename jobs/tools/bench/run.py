"""The reference benchmark (`make bench`): one Ordos day through the real pipeline, with peers.

    python -m jobs.tools.bench                          # scales 1,2,4; 30 incremental days; peers
    python -m jobs.tools.bench --scales 1 --incremental-days 5 --no-peers     # a quick look

What it measures, each the same way every run (wall clock, in this one process, one SparkSession):

1. ingestion landing → bronze → silver for every source, per stage (``SourceResult.stage_s``), and
   the telematics throughput in rows per second (bronze rows ÷ seconds);
2. the gold KPI build for the day's affected days;
3. incremental cost: a smaller fleet over N days, each delivery day ingested and its affected days
   built as ``kpi_daily`` does; day N time ÷ day 1 time;
4. peak resident memory of the whole process tree (driver JVM = executors in local mode, Python
   workers, this driver) sampled every 0.2 s;
5. peers (``jobs.tools.bench.peers_duckdb``, ``jobs.tools.bench.peers_pandas``) on the same landing files and the
   same silver Delta tables, timed in the same run, and their KPI values compared with ours;
6. scaling: 1×, 2×, 4× the fleet (telemetry grows with trucks);
7. with ``--cluster``: the 1× day again on a Spark standalone cluster started on loopback (two workers
   of one core each, jobs.tools.local_cluster; the project's code shipped to the executors), in a second process,
   with the landing zone and the lake in a bucket of a loopback S3 endpoint (moto's server; the upload of
   the landing zone is timed apart), as a ratio to ``local[*]`` on local disk of the same run.

Results go to ``<work>/results/<timestamp>.json`` and a dated row is appended to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from jobs.platform.settings import REPO_ROOT, Settings

log = logging.getLogger("jobs.tools.bench")
BASE_TRUCKS = 600  # the Ordos-day fleet of data_samples/config.py (preset ordos_day)
SEED = 7


# --- memory ----------------------------------------------------------------------------------------
class PeakMemory:
    """Peak RSS of this process and all its descendants (the Spark JVM and Python workers), sampled."""

    def __init__(self, interval_s: float = 0.2):
        self.interval_s = interval_s
        self.peak_total_bytes = 0
        self.peak_jvm_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int]:
        """(total, JVM) RSS bytes of the process tree now: this process, the JVM it started and the Python
        workers.

        Processes the JVM starts for a moment (Hadoop runs ``chmod``, ``bash``, ``readlink`` for local
        files) share the JVM's memory until they execute their program, and meanwhile report the JVM's whole
        RSS (seen: a child named after a JVM thread at 0.59 GiB beside a 0.59 GiB JVM). Counted, they doubled
        the JVM in a sample now and then (peaks of 8.7-10.1 GiB = 2 × the JVM + the rest), so they are not."""
        me = psutil.Process()
        total = jvm = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                name = p.name()
                is_jvm = name.startswith("java") and p.ppid() == me.pid
                if p.pid != me.pid and not is_jvm and not name.startswith("python"):
                    continue
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            jvm += rss if is_jvm else 0
        return total, jvm

    def _run(self) -> None:
        while not self._stop.is_set():
            total, jvm = self.sample()
            self.peak_total_bytes = max(self.peak_total_bytes, total)
            self.peak_jvm_bytes = max(self.peak_jvm_bytes, jvm)
            self._stop.wait(self.interval_s)

    def reset(self) -> None:
        self.peak_total_bytes = self.peak_jvm_bytes = 0

    def start(self) -> PeakMemory:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def snapshot_gib(self) -> dict[str, float]:
        gib = 1024 ** 3
        return {"peak_rss_total_gib": round(self.peak_total_bytes / gib, 2),
                "peak_rss_jvm_gib": round(self.peak_jvm_bytes / gib, 2)}


@contextmanager
def timed(out: dict, key: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        out[key] = round(time.perf_counter() - started, 2)


# --- workload ----------------------------------------------------------------------------------------
def generate(landing: Path, *, trucks: int, days: int) -> dict:
    """Generate (once; reused while its parameters match) an Ordos-day world with ``trucks`` trucks."""
    stamp = landing / "_bench_params.json"
    params = {"preset": "ordos_day", "seed": SEED, "trucks": trucks, "days": days}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return {"generated": False, **params}
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "data_samples.generator", "--preset", "ordos_day", "--seed", str(SEED),
           "--trucks", str(trucks), "--days", str(days), "--out", str(landing), "--jobs", "0", "--overwrite"]
    log.info("generating %s trucks × %s day(s) into %s", trucks, days, landing)
    subprocess.run(cmd, check=True, cwd=REPO_ROOT)
    stamp.write_text(json.dumps(params))
    return {"generated": True, "generate_s": round(time.perf_counter() - started, 1), **params}


def delivery_days(landing: Path) -> list[dt.date]:
    days = {dt.date.fromisoformat(d.name) for src in landing.iterdir() if src.is_dir() for d in src.iterdir()
            if d.is_dir()}
    return sorted(days)


def fresh_settings(work: Path, name: str, landing: Path) -> Settings:
    lake = work / f"lake_{name}"
    shutil.rmtree(lake, ignore_errors=True)
    return Settings(lake_root=lake, landing_root=landing, spark_profile="default")


# --- one pass: ingest + gold -------------------------------------------------------------------------
def ingest_and_build(spark, settings: Settings, start: dt.date, end: dt.date) -> dict:
    """Ingest every source for delivery days start..end (``runner --all``: the small sources, then
    telematics alone), then build the affected days (kpi_daily's work)."""
    from jobs.ingest.runner import ingest_all
    from jobs.kpi.build import affected_days, build, last_build_started_at, record_build

    out: dict = {"sources": {}}
    since = last_build_started_at(settings)
    t0 = time.perf_counter()
    for r in ingest_all(spark, start, end, settings):
        out["sources"][r.source] = {"bronze_rows": r.bronze_rows, "silver_inserted": r.silver_inserted,
                                     "quarantined_rows": r.quarantined_rows, "stage_s": r.stage_s,
                                     "seconds": round(sum(r.stage_s.values()), 2)}
    out["ingest_s"] = round(time.perf_counter() - t0, 2)
    days = affected_days(settings, since=since)
    out["gold_days"] = [d.isoformat() for d in days]
    t1 = time.perf_counter()
    if days:
        started_at = dt.datetime.now(dt.timezone.utc)
        result = build(spark, min(days), max(days), settings)
        record_build(spark, result, started_at, settings)
        out["gold_step_s"] = result.step_s
    out["gold_s"] = round(time.perf_counter() - t1, 2)
    out["landing_to_gold_s"] = round(out["ingest_s"] + out["gold_s"], 2)
    tel = out["sources"].get("telematics", {})
    if tel.get("seconds"):
        out["telematics_rows"] = tel["bronze_rows"]
        out["telematics_rows_per_s"] = round(tel["bronze_rows"] / tel["seconds"])
        out["telematics_stage_rows_per_s"] = {k: round(tel["bronze_rows"] / v) for k, v in tel["stage_s"].items()
                                              if v > 0 and k in ("parse", "bronze", "typing", "silver")}
    return out


# --- the same day on a standalone cluster ---------------------------------------------------------------
def run_cluster_pass(work: Path, landing: Path, local: dict) -> dict:
    """The 1× day through a loopback standalone cluster, with the landing zone and the lake in a bucket of
    a loopback S3 endpoint, in a child process (one SparkSession per process); with its ratios to the
    local pass of this run."""
    from jobs.platform import storage
    from jobs.tools.local_cluster import LocalS3Server, LocalSparkCluster

    days = delivery_days(landing)
    with LocalS3Server(log_path=work / "moto.log") as s3, \
            LocalSparkCluster(workers=2, cores_per_worker=1, memory_per_worker="6g",
                              work_dir=work / "cluster") as cluster:
        s3.create_bucket("bench")
        s3_env = s3.environment()
        settings = s3.settings()
        t0 = time.perf_counter()
        prefix = storage.parse_location("s3://bench/landing")
        files = [f for f in sorted(landing.rglob("*")) if f.is_file()]
        for f in files:
            storage.upload(settings, f, prefix / f.relative_to(landing).as_posix())
        upload_s = round(time.perf_counter() - t0, 2)
        env = {**os.environ, **s3_env, "COALCHAIN_SPARK_MASTER": cluster.master_url, "SPARK_LOCAL_IP": "127.0.0.1",
               "COALCHAIN_SPARK_CONF": json.dumps({"spark.executor.memory": "5g"}), "PYTHONPATH": str(REPO_ROOT),
               # the session reads these to put the S3 connector on its classpath
               "COALCHAIN_LAKE_ROOT": "s3://bench/lake", "COALCHAIN_LANDING_ROOT": prefix.uri}
        log_path = work / "cluster_pass.log"
        with open(log_path, "w") as log_file:
            done = subprocess.run([sys.executable, "-m", "jobs.tools.bench.run", "--one-pass", prefix.uri,
                                   "--work", "s3://bench/lake", "--days", f"{days[0]},{days[-1]}"],
                                  env=env, stdout=subprocess.PIPE, stderr=log_file, text=True, timeout=3600)
    if done.returncode != 0:
        errors = [line for line in log_path.read_text(errors="replace").splitlines()
                  if "Error" in line or "Exception" in line][:10]
        raise RuntimeError(f"cluster pass failed (log: {log_path}):\n" + "\n".join(errors))
    run = json.loads(done.stdout.strip().splitlines()[-1])
    run["master"] = "standalone, 2 workers x 1 core, loopback"
    run["storage"] = "landing and lake in a bucket of moto's S3 server, loopback"
    run["landing_upload_s"] = upload_s
    run["landing_files"] = len(files)
    run["landing_to_gold_ratio_to_local"] = round(run["landing_to_gold_s"] / local["landing_to_gold_s"], 2)
    if run.get("telematics_rows_per_s") and local.get("telematics_rows_per_s"):
        run["telematics_rows_per_s_ratio_to_local"] = round(run["telematics_rows_per_s"] / local["telematics_rows_per_s"], 2)
    return run


def one_pass(landing: str, lake: str, days: list[dt.date]) -> None:
    """``--one-pass``: ingest and build one landing zone (a folder or a bucket prefix) into a lake with the
    environment's master and object store; JSON on the last line."""
    from jobs.platform.session import get_spark

    settings = Settings(lake_root=lake, landing_root=landing, spark_profile="default")
    t0 = time.perf_counter()
    spark = get_spark("coalchain-bench-pass")
    start_s = time.perf_counter() - t0
    try:
        run = ingest_and_build(spark, settings, days[0], days[-1])
    finally:
        spark.stop()
    run["spark_start_s"] = round(start_s, 2)
    print(json.dumps(run, default=str))


# --- peers --------------------------------------------------------------------------------------------
def run_peers(settings: Settings, day: dt.date, ours: dict) -> dict:
    """DuckDB and pandas on the same landing telematics and the same silver tables; compare with gold."""
    from jobs.tools.bench import peer_contract, peers_duckdb, peers_pandas

    files = sorted((settings.landing_root / "telematics").rglob("*.jsonl*"))
    results: dict = {}
    our_tel_s = ours["sources"]["telematics"]["seconds"]
    for name, peer in (("duckdb", peers_duckdb), ("pandas", peers_pandas)):
        out_dir = settings.lake_root.parent / f"peer_{name}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        ingest = peer.ingest_telematics(files, out_dir / "telematics.parquet", settings.source_timezone)
        t0 = time.perf_counter()
        kpis = peer.gold_kpis(settings.lake_root, day, day)
        gold_s = round(time.perf_counter() - t0, 2)
        agreement = {}
        for table, peer_df in kpis.items():
            ours_df = peer_contract.read_gold(settings.lake_root, peer_contract.PEER_KPIS[table], day, day)
            report = peer_contract.compare(ours_df, peer_df, **peer_contract.CONTRACT[table])
            agreement[table] = {**report, "seconds": peer_df.attrs.get("seconds")}
        results[name] = {
            "ingest_telematics": ingest,
            "ingest_ratio_to_ours": round(ingest["seconds"] / our_tel_s, 2) if our_tel_s else None,
            "gold_kpis_s": gold_s,
            "gold_ratio_to_ours": round(gold_s / ours["gold_s"], 2) if ours["gold_s"] else None,
            "agreement": agreement,
            # an empty comparison proves nothing: every family must have matched rows
            "all_agree": all(a["agree"] and a["rows_matched"] > 0 for a in agreement.values()),
        }
    return results


# --- incremental ---------------------------------------------------------------------------------------
def run_incremental(spark, work: Path, *, trucks: int, days: int, memory: PeakMemory) -> dict:
    landing = work / f"landing_incremental_{trucks}t_{days}d"
    gen = generate(landing, trucks=trucks, days=days)
    memory.reset()  # the generator's worker processes are this process's children: not the pipeline's memory
    settings = fresh_settings(work, "incremental", landing)
    per_day = []
    for d in delivery_days(landing):
        r = ingest_and_build(spark, settings, d, d)
        per_day.append({"delivery_day": d.isoformat(), "ingest_s": r["ingest_s"], "gold_s": r["gold_s"],
                        "total_s": r["landing_to_gold_s"], "gold_days": r["gold_days"]})
        log.info("incremental %s: ingest %.1f s, gold %.1f s (days %s)", d, r["ingest_s"], r["gold_s"], r["gold_days"])
    # delivery day N carries event day N (the first delivery day the first event day); the deliveries after
    # the last event day hold late records only and are not "day N"
    totals = [p["total_s"] for p in per_day if p["gold_days"]][:days]
    out = {"workload": gen, "per_day": per_day, **memory.snapshot_gib()}
    if len(totals) >= 2:
        out["day_first_s"], out["day_last_s"] = totals[0], totals[-1]
        out["day_last_over_first"] = round(totals[-1] / totals[0], 2)
        # the first day also pays the JVM's warm-up and creates every table; the median of days 2-6 against
        # that of the last five days shows growth with history without either
        early, late = totals[1:6], totals[-5:]
        out["last5_over_days_2_6_median"] = round(statistics.median(late) / statistics.median(early), 2)
    return out


# --- report --------------------------------------------------------------------------------------------
def machine() -> dict:
    return {"cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 1024 ** 3, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def append_markdown(doc: Path, result: dict) -> None:
    s1 = result["scales"].get("1", {})
    peers = result.get("peers", {})
    inc = result.get("incremental", {})
    row = "| {date} | {cores} cores, {ram} GiB, load {load} | {rps} | {ing} | {gold} | {l2g} | {mem} | {inc} | {duck} | {pandas} | {scaling} |".format(
        date=result["started_at"][:16].replace("T", " "),
        cores=result["machine"]["cores"], ram=result["machine"]["ram_gib"],
        load=result["machine"]["load_avg_at_start"][0],
        rps=f'{s1["telematics_rows_per_s"]:,}' if s1.get("telematics_rows_per_s") else "–",
        ing=s1.get("ingest_s", "–"), gold=s1.get("gold_s", "–"), l2g=s1.get("landing_to_gold_s", "–"),
        mem=result.get("peak_rss_total_gib", "–"),
        inc=inc.get("day_last_over_first", "–"),
        duck=_peer_cell(peers.get("duckdb")), pandas=_peer_cell(peers.get("pandas")),
        scaling=" / ".join(f'{k}×: {v.get("landing_to_gold_s", "–")} s' for k, v in result["scales"].items()),
    )
    if not doc.exists():
        doc.write_text(HEADER)
    with doc.open("a") as fh:
        fh.write(row + "\n")


def _peer_cell(p: dict | None) -> str:
    if not p:
        return "–"
    return (f'ingest {p["ingest_telematics"]["seconds"]} s ({p["ingest_ratio_to_ours"]}× ours), '
            f'gold {p["gold_kpis_s"]} s ({p["gold_ratio_to_ours"]}×), agree: {"yes" if p["all_agree"] else "NO"}')


HEADER = """# Benchmarks

Rows are appended by `make bench` (`python -m jobs.tools.bench`, see its docstring for what each figure means).
Telematics rows/s = landing → silver Delta for the telematics source, dedupe included. Ingest = all 15
sources. Gold = the KPI build for the day's affected days. Memory = peak RSS of the whole process tree
(driver JVM with the executors in local mode, Python workers, the driver). Incremental = day N ÷ day 1
(landing → gold per delivery day, smaller fleet). Peers: time and its ratio to ours (below 1 = faster than
ours); "agree" = the same KPI values within the tolerances of `jobs/tools/bench/peer_contract.py`.
The full JSON of each run is in `.bench/results/`.

| date (UTC) | machine | telematics rows/s | ingest s | gold s | landing→gold s | peak RSS GiB | day N/day 1 | DuckDB peer | pandas peer | scaling (landing→gold) |
|---|---|---|---|---|---|---|---|---|---|---|
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m jobs.tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", default="1,2,4", help="fleet multiples of the Ordos day (600 trucks)")
    p.add_argument("--incremental-days", type=int, default=30)
    p.add_argument("--incremental-trucks", type=int, default=60)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--work", default=str(REPO_ROOT / ".bench"))
    p.add_argument("--doc", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    p.add_argument("--cluster", action="store_true",
                   help="also run the 1x day on a loopback standalone cluster with landing zone and lake in a "
                        "loopback S3 bucket, and print its ratios to local[*]")
    p.add_argument("--one-pass", help=argparse.SUPPRESS)  # the cluster pass's child process: its landing
    p.add_argument("--days", help=argparse.SUPPRESS)      # and its first,last delivery day
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("COALCHAIN_SPARK_PROFILE", "default")
    if args.one_pass:
        one_pass(args.one_pass, args.work, [dt.date.fromisoformat(d) for d in args.days.split(",")])
        return
    args.work = Path(args.work)

    from jobs.platform.session import get_spark

    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "scales": {}}
    memory = PeakMemory().start()
    with timed(result, "spark_start_s"):
        spark = get_spark("coalchain-bench")
    try:
        for scale in [int(x) for x in args.scales.split(",") if x]:
            landing = args.work / f"landing_ordos_day_x{scale}"
            gen = generate(landing, trucks=BASE_TRUCKS * scale, days=1)
            settings = fresh_settings(args.work, f"x{scale}", landing)
            days = delivery_days(landing)
            memory.reset()
            run = ingest_and_build(spark, settings, days[0], days[-1])
            run.update(workload=gen, **memory.snapshot_gib())
            result["scales"][str(scale)] = run
            log.info("scale %s×: telematics %s rows/s, ingest %.1f s, gold %.1f s, landing→gold %.1f s",
                     scale, run.get("telematics_rows_per_s"), run["ingest_s"], run["gold_s"], run["landing_to_gold_s"])
            if scale == 1 and not args.no_peers:
                memory.reset()
                # the workload's day: the last built (the first is the day before, rebuilt for its last interval)
                result["peers"] = run_peers(settings, dt.date.fromisoformat(run["gold_days"][-1]), run)
                result["peers_peak_rss_total_gib"] = memory.snapshot_gib()["peak_rss_total_gib"]
            if scale == 1 and args.cluster:
                result["cluster"] = run_cluster_pass(args.work, landing, run)
                c = result["cluster"]
                log.info("cluster 1×: telematics %s rows/s (%.2f of local), landing→gold %.1f s (%.2f of local)",
                         c.get("telematics_rows_per_s"), c.get("telematics_rows_per_s_ratio_to_local", 0),
                         c["landing_to_gold_s"], c["landing_to_gold_ratio_to_local"])
        if args.incremental_days > 0:
            memory.reset()
            result["incremental"] = run_incremental(spark, args.work, trucks=args.incremental_trucks,
                                                    days=args.incremental_days, memory=memory)
    finally:
        memory.stop()
        spark.stop()
    result["peak_rss_total_gib"] = max([v.get("peak_rss_total_gib", 0) for v in result["scales"].values()]
                                       + [result.get("incremental", {}).get("peak_rss_total_gib", 0)])
    out = args.work / "results" / (result["started_at"].replace(":", "").replace("+0000", "Z") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    append_markdown(args.doc, result)
    print(json.dumps({k: v for k, v in result.items() if k != "incremental"}, indent=2, default=str)[:6000])
    print(f"\nfull results: {out}\nsummary row appended to {args.doc}")


if __name__ == "__main__":
    main()
