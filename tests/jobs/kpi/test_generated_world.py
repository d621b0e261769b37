"""Cross-checks of the KPI transforms on the generated sample world against the generator's ground truth.

The committed sample (data_samples/landing, with its _manifest.json) goes through the real ingestion into
a temporary lake; the KPIs are computed from those silver tables and compared with values the generator
recorded while simulating (not derived from the files). Marked slow (minutes: it ingests the whole
sample): run with `make test-slow`; a plain `pytest tests/jobs/kpi` skips it.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from jobs.platform import delta_tables
from jobs.ingest.runner import ingest_source
from jobs.kpi.rail_share import classify_shipments, rail_share
from jobs.kpi.truck_energy import check_battery_vs_grid, truck_energy_daily, truck_interval_sums
from jobs.kpi.washing import check_washing_feed_vs_production
from jobs.platform.settings import REPO_ROOT, Settings
from schemas.reference_tables import read_reference, rule_params
from schemas.tables import SILVER

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "data_samples" / "landing"
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
SOURCES = ("mines", "washing_plants", "trucks", "mine_production", "washing", "telematics", "weighbridge",
           "charging_sessions", "shipments")


@pytest.fixture(scope="module", autouse=True)
def _only_when_slow_tests_are_selected(request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("slow: run with `make test-slow` (pytest -m slow)")


@pytest.fixture(scope="module")
def truth():
    return json.loads((SAMPLE / "_manifest.json").read_text())["ground_truth"]


@pytest.fixture(scope="module")
def silver(spark, tmp_path_factory):
    settings = Settings(lake_root=tmp_path_factory.mktemp("lake"), landing_root=SAMPLE)
    for source in SOURCES:
        ingest_source(spark, source, FIRST, LAST, settings)
    return {s: delta_tables.read_table(spark, SILVER[s], settings) for s in SOURCES}


@pytest.fixture(scope="module")
def rules(spark):
    return read_reference(spark, "rule_parameters")


@pytest.fixture(scope="module")
def truck_daily(spark, silver, rules):
    sums = truck_interval_sums(silver["telematics"], trucks=silver["trucks"], tickets=silver["weighbridge"],
                               **rule_params(rules, "truck_energy", on_date=FIRST))
    daily = truck_energy_daily(sums, tickets=silver["weighbridge"], charging_sessions=silver["charging_sessions"])
    rows = daily.collect()
    return spark.createDataFrame(rows, daily.schema)


def test_battery_energy_matches_the_simulated_pack(truck_daily, truth):
    # The generator integrates the same V x I it reports; missing frames (faults) are bridged by the
    # 5-minute hold, so the integrated pack energy stays within 1 % of the simulated one.
    per = truck_daily.groupBy("vin", "powertrain").agg(
        F.sum("battery_net_kwh").alias("net"), F.sum("charge_in_battery_kwh").alias("charge_in"),
        F.sum("distance_km").alias("km"), F.sum("h2_used_kg").alias("h2"), F.sum("diesel_l").alias("diesel"),
    ).collect()
    for r in per:
        g = truth["trucks"][r.vin]
        assert r.km == pytest.approx(g["distance_km"], rel=0.005), r.vin
        if r.powertrain == "BEV":
            assert r.net == pytest.approx(g["battery_out_kwh"], rel=0.01), r.vin
            assert r.charge_in == pytest.approx(g["battery_in_kwh"], rel=0.01), r.vin
        elif r.powertrain == "FCEV":
            assert r.h2 == pytest.approx(g["h2_used_kg"], rel=0.05), r.vin       # H2 level is whole %
        else:
            assert r.diesel == pytest.approx(g["diesel_used_l"], rel=0.01), r.vin


def test_battery_out_vs_grid_in_within_configured_losses(truck_daily, silver, rules):
    checks = check_battery_vs_grid(truck_daily, trucks=silver["trucks"],
                                   **rule_params(rules, "battery_grid_check", on_date=FIRST)).collect()
    assert checks and {r.check_status for r in checks} == {"ok"}, [(r.vin, r.implied_charge_efficiency) for r in checks]


def test_washing_feed_within_production_plus_stock(spark, silver, truth):
    stocks = spark.createDataFrame([(m, float(g["initial_raw_stock_t"])) for m, g in truth["mines"].items()],
                                   "mine_id string, opening_stock_t double")
    check = check_washing_feed_vs_production(silver["washing"], plants=silver["washing_plants"],
                                             production=silver["mine_production"], opening_stocks=stocks)
    assert check.filter(~F.col("feed_within_production")).count() == 0


def test_rail_share_per_mine_equals_the_simulated_share(spark, silver, rules, truth):
    classified = classify_shipments(silver["shipments"], **rule_params(rules, "rail_share", on_date=FIRST))
    rows = rail_share(classified, mines=silver["mines"], targets=read_reference(spark, "plan_targets")).filter(
        F.col("scope_level") == "mine").collect()
    assert rows
    for r in rows:
        assert r.rail_share_tonnes_pct / 100 == pytest.approx(truth["mines"][r.scope_id]["rail_share_over_500km"], abs=5e-5)
