"""The silver expectation suites as declarations (no Spark): every table has one, every expectation is
tagged, names only columns its batch will have, and thresholds come from the versioned file."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import expectations as X
from schemas.tables import SILVER

REPO = Path(__file__).resolve().parents[2]
PARAMS = X.SuiteParams((dt.date(2026, 11, 3),), "Asia/Shanghai", 7)


def _batch_columns(table: str) -> set[str]:
    """Columns jobs.quality.validation hands to GX: declared + reference flags + carried attributes + derived."""
    cols = {f.name for f in X.SILVER_TABLES[table].schema.fields}
    for ref in X.REFERENCES.get(table, ()):
        cols |= {ref.flag, *ref.carry}
    return cols | {d.name for d in X.derived_columns(table)}


def _columns_named(expectation) -> set[str]:
    kw = expectation.configuration.kwargs
    return {c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B"), *(kw.get("column_list") or ())) if c}


def test_every_silver_table_has_a_suite():
    assert set(X.SILVER_TABLES) == {spec.name for spec in SILVER.values()}
    assert set(X._RULES) == set(X.SILVER_TABLES)


@pytest.mark.parametrize("table", sorted({spec.name for spec in SILVER.values()}))
def test_suite_is_tagged_and_names_only_batch_columns(table):
    expectations = X.expectations_for(table, PARAMS)
    assert expectations
    for e in expectations:
        assert e.severity.value in (X.CRITICAL, X.WARNING)
        assert e.meta == {"severity": e.severity.value}
        assert _columns_named(e) <= _batch_columns(table), (e.expectation_type, _columns_named(e))
    # jobs.quality.validation matches results of its two passes by (type, kwargs): they must be unique in a suite
    identities = [e.expectation_type + repr(sorted(e.configuration.kwargs.items())) for e in expectations]
    assert len(identities) == len(set(identities))
    spec = X.SILVER_TABLES[table]
    not_null = {e.configuration.kwargs["column"] for e in expectations
                if e.expectation_type == "expect_column_values_to_not_be_null" and "row_condition" not in e.configuration.kwargs}
    assert {f.name for f in spec.schema.fields if not f.nullable} <= not_null
    if spec.partition_cols:   # every event table: run window (where it has a timestamp) and lateness
        assert "delivery_lag_days" in {c for e in expectations for c in _columns_named(e)}
        ts_col, _ = X.EVENT_TIME[table]
        if ts_col:
            assert any(e.configuration.kwargs.get("column") == ts_col and "min_value" in e.configuration.kwargs
                       for e in expectations)


def test_run_window_is_the_local_days_in_utc():
    # 2026-11-03 00:00 +08:00 = 2026-11-02 16:00 UTC; the mine shift-day window runs one day longer
    start, end = PARAMS.window_utc()
    assert (start.isoformat(), end.isoformat()) == ("2026-11-02T16:00:00+00:00", "2026-11-03T16:00:00+00:00")
    assert PARAMS.window_utc(1)[1].isoformat() == "2026-11-04T16:00:00+00:00"


def test_event_tables_need_dates():
    with pytest.raises(ValueError, match="event day"):
        X.expectations_for("silver_telematics", X.SuiteParams((), "Asia/Shanghai", 7))


def test_thresholds_are_versioned_data_used_by_the_suites():
    thresholds = X.load_thresholds()
    assert thresholds["soc_pct_max"].number == 100 and thresholds["speed_kmh_max"].number == 150
    assert thresholds["payload_factor_max"].number == 1.3
    assert all(t.version for t in thresholds.values())
    source = Path(X.__file__).read_text(encoding="utf-8")
    unused = [name for name in thresholds if f'"{name}"' not in source]
    assert not unused, f"parameters no suite reads: {unused}"
    soc = next(e for e in X.expectations_for("silver_telematics", PARAMS)
               if e.expectation_type == "expect_column_values_to_be_between"
               and e.configuration.kwargs["column"] == "soc_pct")
    assert (soc.configuration.kwargs["min_value"], soc.configuration.kwargs["max_value"]) == (0.0, 100.0)


def test_modules_the_dags_import_do_not_import_great_expectations():
    code = ("import sys, jobs.quality.validation, schemas.expectations, schemas.quality; "
            "sys.exit(1 if 'great_expectations' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0
