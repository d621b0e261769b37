"""Property-style: many mutations of valid landing files (truncation, byte garbage, encodings, delimiters,
duplicated or missing columns, huge fields, gzip) in one delivery. Whatever they hold, the run does not
crash, every file is ingested or rejected with a reason, nothing lands garbled, and the rows balance:
bronze = silver + duplicates + quarantine, with the rejected files' records in none of them."""
from __future__ import annotations

import datetime as dt
import gzip
import random

import pytest
from pyspark.sql import functions as F

from jobs.platform import delta_tables
from jobs.ingest.runner import ingest_source
from schemas.tables import BRONZE, INGESTED_FILES, QUARANTINE, SILVER
from tests.jobs.ingest.test_runner import SESSION_HEADER, frame

DAY = dt.date(2026, 11, 2)
LIMIT_BYTES = 4096
N_MUTANTS = 48


def session_rows(seed: int, n: int = 5) -> list[str]:
    return [f"S{seed}-{k},CS1,{k % 3 + 1},V{k},2026-11-02 0{k}:10:00,,,2026-11-02 0{k}:40:00,{1000 + k},"
            f"{1100 + k * 7},300,Arrêt {'满' if k % 2 else 'plein'}" for k in range(n)]


def frame_rows(seed: int, n: int = 5) -> list[str]:
    return [frame(f"V{seed}", f"2026-11-02 07:{k:02d}:{seed % 60:02d}", soc=50 + k) for k in range(n)]


def _mutate(rng: random.Random, lines: list[str], csv_file: bool) -> bytes:
    """One random mutation of a valid file (``lines``: header first for CSV)."""
    text = "\n".join(lines) + "\n"
    raw = text.encode("utf-8")
    kind = rng.choice(["truncate", "garbage", "flip", "cp1252", "utf16", "gb18030", "bom_crlf", "delimiter",
                       "dup_column", "drop_column", "huge_field", "gzip", "gzip_truncated", "shuffle_dup",
                       "empty", "first_line_only", "nul_bytes", "quote"])
    if kind == "truncate":
        return raw[:rng.randrange(len(raw))]
    if kind == "garbage":
        at = rng.randrange(len(raw))
        return raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) + raw[at:]
    if kind == "flip":
        out = bytearray(raw)
        for _ in range(rng.randint(1, 5)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if kind == "cp1252":
        return text.replace("满", "é").encode("cp1252")
    if kind == "utf16":
        return text.encode("utf-16")
    if kind == "gb18030":
        return text.encode("gb18030")
    if kind == "bom_crlf":
        return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")
    if kind == "delimiter":
        return text.replace(",", rng.choice([";", "\t", "|"])).encode("utf-8")
    if kind in ("dup_column", "drop_column") and csv_file:
        k = rng.randrange(len(lines[0].split(",")))
        table = [ln.split(",") for ln in lines]
        for row in table:
            if kind == "dup_column":
                row.insert(k, row[k])
            else:
                del row[k]
        return ("\n".join(",".join(r) for r in table) + "\n").encode("utf-8")
    if kind in ("dup_column", "drop_column"):   # JSON: a key twice, or a key removed
        row = rng.randrange(len(lines))
        changed = (lines[row].replace('"vin": ', '"vin": "X", "vin": ', 1) if kind == "dup_column"
                   else lines[row].replace('"msg_type": "realtime", ', "", 1))
        return "\n".join(lines[:row] + [changed] + lines[row + 1:]).encode("utf-8") + b"\n"
    if kind == "huge_field":
        row = rng.randrange(1 if csv_file else 0, len(lines))
        huge = "z" * rng.choice([LIMIT_BYTES, 3 * LIMIT_BYTES, 60_000])
        changed = lines[row] + huge if csv_file else lines[row][:-1] + f', "pad": "{huge}"}}'
        return "\n".join(lines[:row] + [changed] + lines[row + 1:]).encode("utf-8") + b"\n"
    if kind == "gzip":
        return gzip.compress(raw, mtime=0)
    if kind == "gzip_truncated":
        packed = gzip.compress(raw, mtime=0)
        return packed[:rng.randrange(2, len(packed) - 1)]
    if kind == "shuffle_dup":
        body = lines[1:] if csv_file else lines[:]
        body = body + rng.sample(body, 2)
        rng.shuffle(body)
        return "\n".join(([lines[0]] if csv_file else []) + body).encode("utf-8") + b"\n"
    if kind == "empty":
        return b""
    if kind == "first_line_only":
        return (lines[0] + "\n").encode("utf-8")
    if kind == "nul_bytes":
        return raw.replace(b",", b"\x00,", 3)
    # a stray quote opening a field that is never closed
    row = rng.randrange(1 if csv_file else 0, len(lines))
    changed = lines[row].replace(",", ',"', 1)
    return "\n".join(lines[:row] + [changed] + lines[row + 1:]).encode("utf-8") + b"\n"


@pytest.mark.parametrize("source", ["charging_sessions", "telematics"])
def test_mutated_landing_files_never_crash_and_the_rows_balance(spark, tmp_path, source):
    from jobs.platform.settings import Settings

    settings = Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing", max_record_bytes=LIMIT_BYTES)
    folder = settings.landing_root / source / DAY.isoformat()
    folder.mkdir(parents=True)
    rng = random.Random(19)
    csv_file = source != "telematics"
    names = []
    for seed in range(N_MUTANTS):
        lines = [SESSION_HEADER, *session_rows(seed)] if csv_file else frame_rows(seed)
        name = f"m{seed:02d}.{'csv' if csv_file else 'jsonl'}"
        (folder / name).write_bytes(_mutate(rng, lines, csv_file))
        names.append(f"{source}/{DAY.isoformat()}/{name}")

    result = ingest_source(spark, source, DAY, DAY, settings)   # raises if anything crashes

    # every file is accounted for once: ingested, rejected with a reason, or the same content as another
    files = {r["source_file"]: r for r in delta_tables.read_table(spark, INGESTED_FILES, settings).collect()}
    assert sorted(files) == sorted(names)
    assert {r["status"] for r in files.values()} <= {"ingested", "rejected", "duplicate_content"}
    rejected = {r["file_sha256"] for r in files.values() if r["status"] == "rejected"}
    assert all(r["reason"] for r in files.values() if r["status"] == "rejected")
    assert dict(result.files_rejected).keys() == {n for n, r in files.items() if r["status"] == "rejected"}
    assert 0 < len(rejected) < N_MUTANTS      # the mutations reject some files and leave others readable

    bronze = delta_tables.read_table(spark, BRONZE[source], settings)
    quarantine = delta_tables.read_table(spark, QUARANTINE, settings).filter(F.col("source") == source)
    silver = delta_tables.read_table(spark, SILVER[source], settings)
    # the rejected files left no row anywhere; every ingested file's ledger count is its bronze rows
    assert bronze.filter(F.col("file_sha256").isin(sorted(rejected))).count() == 0 if rejected else True
    per_file = {r["file_sha256"]: r["count"] for r in bronze.groupBy("file_sha256").count().collect()}
    for r in files.values():
        if r["status"] == "ingested":
            assert per_file.get(r["file_sha256"], 0) == r["records"], r["source_file"]
    # quarantine rows are bronze rows (by file and record), each once
    lineage = ["file_sha256", "record_no"]
    assert quarantine.join(bronze.select(*lineage), lineage, "left_anti").count() == 0
    assert quarantine.select(*lineage).distinct().count() == quarantine.count()

    # balance: the good bronze rows (not quarantined) hold each natural key once in silver, the rest of them
    # are duplicates. The key is read from bronze's raw fields, not from silver
    good = bronze.join(quarantine.select(*lineage), lineage, "left_anti")
    if csv_file:
        keys = good.select(F.trim(F.col("fields")["session_id"]).alias("k"))
    else:
        keys = good.select(F.concat_ws("|", "vin", "collect_time").alias("k"))
    n_bronze, n_quarantine, n_good, n_keys = bronze.count(), quarantine.count(), good.count(), keys.distinct().count()
    assert silver.count() == n_keys
    assert n_bronze == silver.count() + (n_good - n_keys) + n_quarantine
    assert (result.bronze_rows, result.quarantined_rows, result.silver_inserted, result.duplicate_rows) == \
        (n_bronze, n_quarantine, n_keys, n_good - n_keys)

    # nothing garbled landed: no replacement character in any silver text
    text_cols = [f.name for f in silver.schema.fields if f.dataType.simpleString() == "string"]
    assert silver.filter(F.greatest(*[F.instr(F.col(c), "\ufffd") for c in text_cols]) > 0).count() == 0
    # a second run reads nothing again
    again = ingest_source(spark, source, DAY, DAY, settings)
    assert (again.files_new, again.files_rejected) == (0, [])
