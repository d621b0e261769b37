"""The committed sample world through landing → bronze → silver: nothing lost, nothing duplicated.

Expected counts come from outside the pipeline: records are counted straight from the landing files,
and the number of distinct valid records per source from the generator's ground-truth manifest.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json

import pytest
from pyspark.sql import functions as F

from jobs.platform import delta_log, delta_tables
from jobs.ingest.runner import ingest_all
from jobs.platform.settings import REPO_ROOT
from schemas.sources import ALL_SOURCES
from schemas.tables import BRONZE, INGEST_AUDIT, INGESTED_FILES, QUARANTINE, SILVER

SAMPLE = REPO_ROOT / "data_samples" / "landing"
MANIFEST = json.loads((SAMPLE / "_manifest.json").read_text())
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 30)


def records_in_files(source: str, is_csv: bool) -> int:
    """Non-blank data records in the distinct-content files of a source (a replayed copy counts once)."""
    seen, total = set(), 0
    for path in sorted((SAMPLE / source).glob("*/*")):
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        text = (gzip.decompress(content) if path.suffix == ".gz" else content).decode("utf-8")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        total += len(lines) - (1 if is_csv else 0)
    return total


@pytest.mark.parametrize("spec", ALL_SOURCES, ids=lambda s: s.name)
def test_bronze_equals_silver_plus_duplicates_plus_quarantine(spark, sample_lake, spec):
    bronze = delta_tables.read_table(spark, BRONZE[spec.name], sample_lake)
    silver_n = delta_tables.read_table(spark, SILVER[spec.name], sample_lake).count()
    quarantine = delta_tables.read_table(spark, QUARANTINE, sample_lake).filter(F.col("source") == spec.name)
    bronze_n, quarantined_n = bronze.count(), quarantine.count()

    assert bronze_n == records_in_files(spec.name, spec.file_format == "csv")
    assert silver_n == MANIFEST["sources"][spec.name]["distinct_valid"]
    # every quarantined row is a bronze row (same file and record number), each at most once
    assert quarantine.join(bronze, ["file_sha256", "record_no"], "left_anti").count() == 0
    assert quarantine.select("file_sha256", "record_no").distinct().count() == quarantined_n
    duplicates_n = bronze_n - quarantined_n - silver_n
    # the rows the generator wrote twice inside one file (fault dup_record): e.g. connector_status wrote
    # 501 rows for 500 records, 3 of them invalid: 501 - 3 quarantined - 497 silver = 1 duplicate
    assert duplicates_n == MANIFEST["sources"][spec.name]["faults"].get("dup_record", 0)
    audit = delta_tables.read_table(spark, INGEST_AUDIT, sample_lake).filter(F.col("source") == spec.name)
    assert audit.agg(F.sum("duplicate_rows")).first()[0] == duplicates_n


@pytest.mark.parametrize("spec", ALL_SOURCES, ids=lambda s: s.name)
def test_ledger_lists_each_file_once_with_its_bronze_rows(spark, sample_lake, spec):
    # the sources were ingested side by side (three domains at a time): each one's ledger MERGE must have
    # kept the others' rows. Every file is listed once, and the records of the files marked ingested add
    # up to the source's bronze rows.
    ledger = delta_tables.read_table(spark, INGESTED_FILES, sample_lake).filter(F.col("source") == spec.name)
    on_disk = {p.relative_to(SAMPLE).as_posix() for p in (SAMPLE / spec.name).glob("*/*")}
    listed = [r["source_file"] for r in ledger.select("source_file").collect()]
    assert len(listed) == len(set(listed))
    assert set(listed) <= on_disk and listed
    ingested = ledger.filter(F.col("status") == "ingested").agg(F.sum("records")).first()[0]
    assert ingested == delta_tables.read_table(spark, BRONZE[spec.name], sample_lake).count()


def test_faults_of_the_generator_are_all_quarantined_or_deduplicated(spark, sample_lake):
    # truncated telematics lines are quarantined as malformed JSON, one row each
    truncated = MANIFEST["sources"]["telematics"]["faults"]["truncated"]
    malformed = (delta_tables.read_table(spark, QUARANTINE, sample_lake)
                 .filter(F.col("reason").contains("malformed JSON")).count())
    assert malformed == truncated


def test_second_ingestion_of_the_same_landing_changes_no_table(spark, sample_lake):
    # (the sample_lake fixture in tests/conftest.py ingested every source once already)
    from delta.tables import DeltaTable

    def versions():
        return {s.name: DeltaTable.forPath(spark, str(delta_log.table_path(SILVER[s.name], sample_lake))).history(1)
                .first()["version"] for s in ALL_SOURCES}

    before = versions()
    results = ingest_all(spark, FIRST, LAST, sample_lake, threads=3)
    assert sorted(r.source for r in results) == sorted(s.name for s in ALL_SOURCES)
    assert all(r.files_new == 0 for r in results)
    assert versions() == before
