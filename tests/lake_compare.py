"""Comparing two lakes written by the same code in different places (in-process and on a cluster, on disk
and in a bucket): every table's rows without the columns that record when or in which run a row was
written, floats to 12 significant digits (sums over partitions may add in another order on another
executor layout), and extract-pack CSVs cell for cell."""
from __future__ import annotations

import csv
from pathlib import Path

# When or in which run a row was written: these differ between any two runs of the same pipeline.
VOLATILE = {"ingested_at", "quarantined_at", "run_id", "started_at", "finished_at", "built_at",
            "build_started_at", "build_finished_at", "checked_at", "recorded_at", "generated_at",
            "validated_at", "created_at", "trained_at",
            "file_stamp",   # a landing file's modification time: when it was copied there
            "seconds", "validation_s"}  # durations of the same work differ too


def delta_tables(lake: Path) -> dict[str, Path]:
    """Every Delta table under a lake folder: ``layer/table`` -> its folder."""
    return {str(log.parent.relative_to(lake)): log.parent for log in sorted(lake.rglob("_delta_log"))}


def open_table(where, version: int | None = None):
    """A Delta table with delta-rs: a folder, or a table URI in a bucket (this process's S3 settings)."""
    from deltalake import DeltaTable

    from jobs.platform import storage

    uri = str(where)
    return DeltaTable(uri, version=version, storage_options=storage.options_for(uri))


def table_rows(where, volatile: set[str] = VOLATILE) -> tuple[list[str], list[tuple]]:
    """The table's columns (but the volatile ones) and its rows, sorted."""
    table = open_table(where).to_pyarrow_table()
    columns = sorted(c for c in table.column_names if c not in volatile)
    rows = [tuple(normalised(row[c]) for c in columns) for row in table.select(columns).to_pylist()]
    return columns, sorted(rows, key=repr)


def normalised(value):
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, list):
        return tuple(normalised(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, normalised(v)) for k, v in value.items()))
    return value


def csv_cells(path: Path) -> list[tuple]:
    """The rows of a pack CSV, numbers to 12 significant digits."""
    def cell(text: str):
        try:
            return float(f"{float(text):.12g}")
        except ValueError:
            return text

    with path.open(newline="", encoding="utf-8") as fh:
        return [tuple(cell(c) for c in row) for row in csv.reader(fh)]
