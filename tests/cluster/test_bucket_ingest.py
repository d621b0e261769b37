"""Ingestion with the landing zone and the lake in a bucket (moto's S3 server on 127.0.0.1).

The landing scan lists only keys under the landing prefix and reports what the folder scan reports; the
fault tests of tests/jobs/ingest/test_faults.py (two runs at once, SIGKILL after a commit, then a plain
re-run) are run again with the sample's telematics in a bucket and the lake in the same bucket. Each
runner is its own process (`python -m jobs.ingest.runner`, `local[1]`), configured by environment only.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from jobs.platform import storage
from jobs.platform.settings import REPO_ROOT
from schemas.tables import BRONZE, INGESTED_FILES, QUARANTINE, SILVER
from tests.cluster.conftest import bucket_table, upload_tree

pytestmark = pytest.mark.cluster

SAMPLE = REPO_ROOT / "data_samples" / "landing"
MANIFEST = json.loads((SAMPLE / "_manifest.json").read_text())
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
D1 = dt.date(2026, 11, 2)


def put_object(server, uri: str, data: bytes) -> None:
    location = storage.parse_location(uri)
    with storage.filesystem(server.settings(), location).open_output_stream(
            storage.fs_path(location), compression=None) as out:
        out.write(data)


def test_the_landing_scan_of_a_bucket_takes_only_day_files_under_its_prefix(s3_server):
    from jobs.ingest.landing import discover
    from schemas.sources import SOURCES

    s3_server.create_bucket("scan")
    csv = b"session_id,station_id\nS1,CS1\n"
    gz = gzip.compress(b"session_id,station_id\nS2,CS1\n", mtime=0)
    day = "s3://scan/zone/charging_sessions/2026-11-02"
    put_object(s3_server, f"{day}/a.csv", csv)
    put_object(s3_server, f"{day}/b.csv.gz", gz)
    put_object(s3_server, f"{day}/_SUCCESS", b"")                        # a marker: skipped, not reported
    put_object(s3_server, f"{day}/sub/c.csv", csv)                       # a folder inside a day folder
    put_object(s3_server, f"{day}/notes.txt", b"x")
    put_object(s3_server, f"{day}/{'x' * 210}.csv", csv)
    put_object(s3_server, "s3://scan/zone/charging_sessions/..%2F..%2Fetc/a.csv", csv)
    put_object(s3_server, "s3://scan/zone/charging_sessions/stray.csv", csv)
    put_object(s3_server, "s3://scan/zone/charging_sessions/2026-11-09/d.csv", csv)   # outside the window
    # beside the landing prefix, never listed: a sibling prefix that starts with the same text, another one
    put_object(s3_server, "s3://scan/zone-old/charging_sessions/2026-11-02/e.csv", csv)
    put_object(s3_server, "s3://scan/other/charging_sessions/2026-11-02/f.csv", csv)

    settings = s3_server.settings()
    found = discover(storage.parse_location("s3://scan/zone"), SOURCES["charging_sessions"], D1, D1, settings)

    assert [(f.rel_path, f.sha256, f.size_bytes) for f in found.files] == [
        ("charging_sessions/2026-11-02/a.csv", hashlib.sha256(csv).hexdigest(), len(csv)),
        ("charging_sessions/2026-11-02/b.csv.gz", hashlib.sha256(gz).hexdigest(), len(gz)),
    ]
    assert found.files[1].path == storage.S3Location("scan", "zone/charging_sessions/2026-11-02/b.csv.gz")
    # read as stored: the gzip stream is not unpacked on the way (the parser does that, as for a local file)
    assert storage.read_bytes(settings, found.files[1].path) == gz
    prefix = "s3://scan/zone/charging_sessions"
    assert sorted(found.rejected) == sorted([
        (f"{prefix}/..%2F..%2Fetc", "folder name is not a yyyy-mm-dd delivery day"),
        (f"{prefix}/2026-11-02/notes.txt", "unexpected file type for csv source (expected .csv, .csv.gz)"),
        (f"{prefix}/2026-11-02/sub", "not a regular file"),
        (f"{prefix}/2026-11-02/{'x' * 210}.csv", "file name longer than 200 characters"),
        (f"{prefix}/stray.csv", "not in a yyyy-mm-dd delivery-day folder"),
    ])


# --- the fault tests against the object store ----------------------------------------------------------
# Hand-checked figures of the sample's telematics (data_samples/landing/_manifest.json): 50007 lines
# written, 12481 of them in a byte copy of a file (skipped as duplicate content): 37526 bronze rows. Of
# those, 63 truncated + 38 clock jumps + 44 out of range = 145 are quarantined, and 86 records written twice
# inside their file are duplicates: 37526 - 145 - 86 = 37295 silver rows (the manifest's distinct_valid).
BRONZE_ROWS, QUARANTINED_ROWS, DUPLICATE_ROWS, SILVER_ROWS = 37526, 145, 86, 37295
LEDGER_FILES = 7    # 6 files ingested, 1 redelivered copy recorded as duplicate content


def test_the_hand_checked_figures_match_the_generator():
    written = MANIFEST["sources"]["telematics"]
    faults = written["faults"]
    assert written["rows_written"] - faults["dup_file_rows"] == BRONZE_ROWS
    assert faults["truncated"] + faults["clock_jump"] + faults["out_of_range"] == QUARANTINED_ROWS
    assert faults["dup_record"] == DUPLICATE_ROWS and written["distinct_valid"] == SILVER_ROWS
    assert written["files"] == LEDGER_FILES


@pytest.fixture(scope="module")
def bucket_landing(s3_server):
    s3_server.create_bucket("faults")
    assert upload_tree(s3_server, SAMPLE / "telematics", "s3://faults/landing/telematics") == LEDGER_FILES
    return "s3://faults/landing"


def runner_process(server, lake: str, landing: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COALCHAIN_", "AWS_"))}
    env.update(server.environment(), PYTHONPATH=str(REPO_ROOT), COALCHAIN_LAKE_ROOT=lake,
               COALCHAIN_LANDING_ROOT=landing, COALCHAIN_SPARK_MASTER="local[1]",
               COALCHAIN_SPARK_PROFILE="small", COALCHAIN_SPARK_SHUFFLE_PARTITIONS="2",
               COALCHAIN_SPARK_DRIVER_MEMORY="1g", SPARK_LOCAL_IP="127.0.0.1")
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.ingest.runner", "--source", "telematics", "--from", FIRST.isoformat(),
         "--to", LAST.isoformat()], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def rerun(server, lake: str, landing: str) -> None:
    proc = runner_process(server, lake, landing)
    output = proc.communicate(timeout=600)[0]
    # 3 = succeeded with rejects: the sample's faults are quarantined
    assert proc.returncode == 3, output[-3000:]


def rows(server, lake: str, spec, columns: list[str], source_partition: bool = False) -> pa.Table:
    uri = (storage.parse_location(lake) / spec.layer / spec.name).uri
    partitions = [("source", "=", "telematics")] if source_partition else None
    return bucket_table(server, uri).to_pyarrow_table(columns=columns, partitions=partitions)


def distinct(table: pa.Table) -> int:
    return table.group_by(table.column_names).aggregate([]).num_rows


def assert_exact(server, lake: str) -> None:
    """No row twice, nothing lost, and the balance bronze = silver + duplicates + quarantined."""
    silver = rows(server, lake, SILVER["telematics"], ["vin", "event_ts_utc"])
    bronze = rows(server, lake, BRONZE["telematics"], ["file_sha256", "record_no"])
    quarantine = rows(server, lake, QUARANTINE, ["file_sha256", "record_no"], source_partition=True)
    ledger = rows(server, lake, INGESTED_FILES, ["file_sha256", "source_file", "status"], source_partition=True)
    assert (bronze.num_rows, quarantine.num_rows, silver.num_rows) == (BRONZE_ROWS, QUARANTINED_ROWS, SILVER_ROWS)
    assert distinct(silver) == silver.num_rows and distinct(bronze) == bronze.num_rows
    assert distinct(quarantine) == quarantine.num_rows
    assert bronze.num_rows == silver.num_rows + DUPLICATE_ROWS + quarantine.num_rows
    assert ledger.num_rows == distinct(ledger.select(["file_sha256", "source_file"])) == LEDGER_FILES
    assert ledger.column("status").to_pylist().count("ingested") == LEDGER_FILES - 1


def commits(server, table: storage.S3Location) -> int:
    return sum(1 for f in storage.list_files(server.settings(), table / "_delta_log")
               if f.rel_key.endswith(".json"))


def staging_runs(server, lake: str) -> set[str]:
    from jobs.ingest.frame_stage import staging_root

    root = staging_root(storage.parse_location(lake))
    return {f.rel_key.split("/", 1)[0] for f in storage.list_files(server.settings(), root)}


@pytest.mark.parametrize("kill_after", ["bronze_commit", "silver_commit"])
def test_sigkill_after_a_commit_then_a_plain_rerun_on_the_bucket(s3_server, bucket_landing, kill_after):
    from jobs.ingest.frame_stage import STALE_AFTER_S, remove_stale

    lake = f"s3://faults/kill-{kill_after}"
    spec = BRONZE["telematics"] if kill_after == "bronze_commit" else SILVER["telematics"]
    watched = storage.parse_location(lake) / spec.layer / spec.name
    proc = runner_process(s3_server, lake, bucket_landing)
    # bronze: version 0 is the empty table, version 1 the first data; silver: right after its first commit
    wanted = 2 if kill_after == "bronze_commit" else 1
    deadline = time.monotonic() + 600
    while commits(s3_server, watched) < wanted and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be killed:\n" + proc.stdout.read()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_runs = staging_runs(s3_server, lake)
    assert len(killed_runs) <= 1            # the killed run's staged objects, if any

    rerun(s3_server, lake, bucket_landing)
    assert_exact(s3_server, lake)
    # the re-run removed its own staging; what is left is the killed run's, which a run removes once it is
    # older than a live run can be
    assert staging_runs(s3_server, lake) == killed_runs
    settings = s3_server.settings(lake_root=lake)
    removed = remove_stale(settings.lake_root, now=time.time() + STALE_AFTER_S + 60, settings=settings)
    assert {location.name for location in removed} == killed_runs
    assert staging_runs(s3_server, lake) == set()


def test_an_object_known_by_name_size_and_time_is_not_downloaded_again(s3_server):
    from jobs.ingest.landing import STAMP_SETTLE_S, discover
    from schemas.sources import SOURCES

    s3_server.create_bucket("quick")
    settings = s3_server.settings()
    zone, uri = storage.parse_location("s3://quick/zone"), "s3://quick/zone/charging_sessions/2026-11-02/a.csv"
    first, second = b"session_id,station_id\nS1,CS1\n", b"session_id,station_id\nS2,CS1\n"   # same size
    put_object(s3_server, uri, first)
    # just uploaded: no stamp (the object could be replaced within the store's time resolution)
    scan = discover(zone, SOURCES["charging_sessions"], D1, D1, settings)
    assert (scan.checksums_read, scan.files[0].stamp) == (1, None)
    time.sleep(STAMP_SETTLE_S + 0.5)
    [listed] = storage.list_files(settings, storage.parse_location("s3://quick/zone/charging_sessions"))
    stamp = f"{len(first)}:{round(listed.mtime_s * 1e9)}"
    scan = discover(zone, SOURCES["charging_sessions"], D1, D1, settings)
    assert (scan.checksums_read, scan.files[0].stamp, scan.files[0].sha256) == (1, stamp, hashlib.sha256(first).hexdigest())
    # the ledger knows it under that stamp: the recorded checksum is taken, the object is not downloaded
    # (a checksum no content has proves it)
    recorded = "f" * 64
    scan = discover(zone, SOURCES["charging_sessions"], D1, D1, settings,
                    known={("charging_sessions/2026-11-02/a.csv", stamp): recorded})
    assert (scan.checksums_read, scan.files[0].sha256) == (0, recorded)
    # replaced by other bytes of the same size: a new modification time, so it is read
    time.sleep(1.1)   # the store's times are whole seconds
    put_object(s3_server, uri, second)
    scan = discover(zone, SOURCES["charging_sessions"], D1, D1, settings,
                    known={("charging_sessions/2026-11-02/a.csv", stamp): recorded})
    assert (scan.checksums_read, scan.files[0].sha256) == (1, hashlib.sha256(second).hexdigest())


def test_two_runs_of_the_same_days_at_once_on_the_bucket(s3_server, bucket_landing):
    lake = "s3://faults/concurrent"
    procs = [runner_process(s3_server, lake, bucket_landing) for _ in range(2)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    # one may lose a write conflict after its retries and fail (exit 1); at least one must succeed: exit 3
    # (the sample's faults are quarantined) or 0 (the other run had ingested every file already)
    assert any(p.returncode in (0, 3) for p in procs), "\n".join(o[-3000:] for o in outputs)
    proc = runner_process(s3_server, lake, bucket_landing)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode in (0, 3), output[-3000:]
    assert_exact(s3_server, lake)
    assert staging_runs(s3_server, lake) == set()
