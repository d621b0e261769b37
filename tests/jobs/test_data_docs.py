"""Great Expectations Data Docs that open offline (jobs.data_docs, jobs.quality.build_data_docs), on a tiny
lake validated by the real suites, opened in headless Chromium inside a network namespace with no network.

The lake (rows built by hand, as in tests/jobs/test_quality.py):

* silver_companies C01, silver_trucks BEV (rated 34.5 t) and FCEV, silver_mines M1 (not validated here);
* silver_telematics 2026-11-05: 3 frames, one with coordinate system 'BD09' -> one **warning** failure;
* silver_weighbridge 2026-11-03: tickets W1 net 34.5 t (ratio 34.5 / 34.5 = 1.0) and W2 net 46.0 t
  (ratio 46.0 / 34.5 = 1.333 > 1.3) -> one **critical** failure, 1 unexpected of 2 tickets = 50 %.

One gate run (run id ``gate_docs``) validates companies, trucks, telematics and weighbridge; a later
day-by-day re-validation of the weighbridge (``gate_docs_by_day``) must not count as the gate's page.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from jobs import data_docs
from jobs import quality as q
from jobs.settings import Settings
from tests.jobs.test_quality import BEV, FCEV, _write, frame
from tests.pages import chromium, offline_problems, requested_urls

WARNING_DAY, CRITICAL_DAY = dt.date(2026, 11, 5), dt.date(2026, 11, 3)
GATE_RUN = "gate_docs"
# table -> the status the index shows (the gate's verdict: a warning-only run passes)
EXPECTED_STATUS = {"silver_companies": "Succeeded", "silver_trucks": "Succeeded",
                   "silver_telematics": "Succeeded", "silver_weighbridge": "Failed"}
_TINY_QUERY_CONF = {"spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false",
                    "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


@pytest.fixture(scope="module", autouse=True)
def _interpreted_tiny_queries(spark):
    previous = {k: spark.conf.get(k, None) for k in _TINY_QUERY_CONF}
    for k, v in _TINY_QUERY_CONF.items():
        spark.conf.set(k, v)
    yield
    for k, v in previous.items():
        spark.conf.unset(k) if v is None else spark.conf.set(k, v)


def _ticket(ticket_id: str, net_t: float, hour: int) -> dict:
    return {"ticket_id": ticket_id, "vin": BEV, "mine_id": "M1", "load_ts_utc": dt.datetime(2026, 11, 3, hour),
            "gross_t": net_t + 15.5, "tare_t": 15.5, "net_t": net_t, "destination_id": "RS1",
            "event_date_local": CRITICAL_DAY, "source_file": "weighbridge/2026-11-03/tickets.csv"}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("data_docs")
    s = Settings(lake_root=root / "lake", landing_root=root / "landing")
    _write(spark, "companies", [{"company_id": "C01", "company_name": "Test Coal"}], s)
    _write(spark, "trucks", [
        {"vin": BEV, "company_id": "C01", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 34.5,
         "swap_capable": True},
        {"vin": FCEV, "company_id": "C01", "powertrain": "FCEV", "battery_kwh": 100.0, "h2_tank_kg": 60.0,
         "rated_payload_t": 33.0, "swap_capable": False},
    ], s)
    _write(spark, "mines", [{"mine_id": "M1", "company_id": "C01", "mine_type": "open_pit", "banner": "Zhungeer"}], s)
    _write(spark, "telematics", [frame(BEV, "2026-11-05 08:00", 1030.0, coord="BD09"),
                                 frame(BEV, "2026-11-05 08:01", 1031.0), frame(FCEV, "2026-11-05 08:00", 5000.0)], s)
    _write(spark, "weighbridge", [_ticket("W1", 34.5, 1), _ticket("W2", 46.0, 2)], s)
    return s


@pytest.fixture(scope="module")
def site(spark, lake) -> dict[str, q.QualityResult]:
    """The gate run written and its Data Docs built (what gate_silver does for its tables)."""
    results = {}
    for table, days in (("silver_companies", []), ("silver_trucks", []), ("silver_telematics", [WARNING_DAY]),
                        ("silver_weighbridge", [CRITICAL_DAY])):
        result = q.validate_day(spark, table, days, settings=lake, run_id=GATE_RUN)
        q.write_results(spark, result, lake)
        results[table] = result
    q.build_data_docs(settings=lake, results=list(results.values()))
    return results


def test_the_lake_has_one_warning_and_one_critical_failure(site):
    assert {t: (len(r.critical_failures), len(r.warning_failures)) for t, r in site.items()} == {
        "silver_companies": (0, 0), "silver_trucks": (0, 0), "silver_telematics": (0, 1), "silver_weighbridge": (1, 0)}
    (ratio,) = site["silver_weighbridge"].critical_failures
    assert (ratio.column, ratio.unexpected_count, ratio.element_count) == ("payload_ratio", 1, 2)
