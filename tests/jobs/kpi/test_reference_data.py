"""The checked-in reference tables: declared schemas, versions, no overlapping validity, the values
docs/domain.md states for the standards, placeholders flagged for review."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import functions as F

from schemas.reference_tables import REFERENCE, read_reference, reference_overlaps, rule_params
from tests.jobs.kpi.helpers import reference


@pytest.fixture(scope="module")
def tables(spark):
    return {name: read_reference(spark, name) for name in REFERENCE}


@pytest.fixture(scope="module")
def rows(tables):
    return {name: df.collect() for name, df in tables.items()}


def test_every_row_has_a_version_and_no_key_overlaps_in_time(tables, rows):
    assert all(r.version for rs in rows.values() for r in rs)
    overlaps = None
    for name, df in tables.items():
        o = reference_overlaps(df, name).select(F.lit(name).alias("table"), "version_a", "version_b")
        overlaps = o if overlaps is None else overlaps.unionByName(o)
    assert overlaps.collect() == []


def test_overlap_check_finds_overlaps(spark):
    # two diesel factors both open-ended from 2026-01-01 and from 2026-06-01 -> they overlap from 06-01
    df = reference(spark, "conversion_factors", [
        {"carrier": "diesel", "factor": 1.4571, "unit": "kgce/kg", "basis": "equivalent", "effective_from": dt.date(2026, 1, 1)},
        {"carrier": "diesel", "factor": 1.5, "unit": "kgce/kg", "basis": "equivalent", "effective_from": dt.date(2026, 6, 1)},
    ])
    assert len(reference_overlaps(df, "conversion_factors").collect()) == 1


def test_mine_limits_as_in_domain_notes(rows):
    new = {(r.mine_type, r.level): r.max_kgce_per_t for r in rows["mine_energy_limits"] if r.standard == "GB 29445-2025"}
    assert new == {("underground", 1): Decimal("2.5"), ("underground", 2): Decimal("6.2"), ("underground", 3): Decimal("10.8"),
                   ("open_pit", 1): Decimal("3.0"), ("open_pit", 2): Decimal("5.4"), ("open_pit", 3): Decimal("8.0")}
    assert all(r.effective_from == dt.date(2026, 8, 1) and r.needs_review for r in rows["mine_energy_limits"]
               if r.standard == "GB 29445-2025")
    old = [r for r in rows["mine_energy_limits"] if r.standard.endswith("-2012")]
    # values not found: no invented numbers, flagged, and ending the day the 2025 standard starts
    assert len(old) == 6 and all(r.max_kgce_per_t is None and r.needs_review and r.effective_to == dt.date(2026, 8, 1) for r in old)
    # GB 29445-2012 (open pit) implemented 2013-10-01; GB 29444-2012's date not confirmed (open)
    assert {(r.standard, r.effective_from) for r in old} == {("GB 29445-2012", dt.date(2013, 10, 1)), ("GB 29444-2012", None)}


def test_washing_limits_and_process_factors(rows):
    lim = {(r.coal_type, r.level): r.max_kwh_per_t for r in rows["washing_limits"]}
    assert lim == {("thermal", 1): Decimal("2.0"), ("thermal", 2): Decimal("3.0"), ("thermal", 3): Decimal("4.5"),
                   ("coking", 1): Decimal("5.0"), ("coking", 2): Decimal("7.0"), ("coking", 3): Decimal("8.5")}
    k = {(r.coal_type, r.process): r.k_factor for r in rows["washing_process_factors"]}
    assert k[("thermal", "dense_medium_jig_flotation")] == Decimal("0.72") and k[("coking", "jig")] == Decimal("1.26")
    assert ("coking", "dry") not in k and len(k) == 12


def test_conversion_factors_bases(rows):
    f = {(r.carrier, r.basis): r for r in rows["conversion_factors"]}
    assert f[("electricity", "equivalent")].factor == Decimal("0.1229")
    assert f[("electricity", "equal_value")].needs_review      # must be declared per year
    assert f[("diesel", "equivalent")].factor == Decimal("1.4571") and f[("raw_coal", "equivalent")].factor == Decimal("0.7143")
    assert f[("hydrogen", "equivalent")].needs_review           # project assumption, not GB/T 2589
    # rail: the Railway Statistical Bulletin 2010 figure, 4.94 tce per million converted tkm = 0.00494 kgce/tkm,
    # a national average (passenger + freight, all traction): flagged for review, its own version
    rail = f[("rail_freight", "equivalent")]
    assert rail.factor == Decimal("0.00494") and rail.unit == "kgce/tkm" and rail.needs_review
    assert "2010" in rail.source and "4.94 tce per million converted tonne-km" in rail.source
    assert rail.version == "factors_v2026.2"
    assert {r.basis for r in rows["conversion_factors"]} == {"equivalent", "equal_value", "physical"}


def test_rule_params_unknown_rule_and_wrong_header(spark, tables, tmp_path):
    with pytest.raises(ValueError, match="no parameters of rule 'no_such_rule' in force on 2026-01-01"):
        rule_params(tables["rule_parameters"], "no_such_rule", on_date=dt.date(2026, 1, 1))
    bad = tmp_path / "factors.csv"   # columns swapped: the declared schema must not silently re-map them
    bad.write_text("factor,carrier,unit,basis,source,version,effective_from,effective_to,needs_review,note\n"
                   "0.1229,electricity,kgce/kWh,equivalent,x,v,,,false,\n")
    with pytest.raises(Py4JJavaError, match="CSV header does not conform to the schema"):
        read_reference(spark, "conversion_factors", path=bad).collect()
