"""The data-quality gate (jobs.quality.validation) on a tiny lake: telematics days built by hand, validated with the
real suites through Great Expectations, results written to Delta and rendered as Data Docs.

The lake (one module-scoped fixture, written through jobs.platform.delta_tables) holds:

* silver_companies C01; silver_trucks BEV (rated 34.5 t) and FCEV (rated 33 t, 60 kg tank); silver_mines M1;
  silver_h2_stations HS1;
* silver_telematics, local days (Asia/Shanghai):
    2026-11-02  context only: last odometer readings BEV 1000.0 km, FCEV 5000.0 km
    2026-11-03  clean: 5 frames, odometer steps BEV 0.0, 1.2, 1.3 and FCEV 0.0, 0.8 (none negative)
    2026-11-04  faulty: 8 frames with one row per critical fault (see ``FAULTY``)
    2026-11-05  warning only: 3 frames, one with coordinate system 'BD09'
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from jobs.platform import delta_tables
from jobs.quality import validation as q
from jobs.platform.settings import Settings
from schemas.quality import QUALITY_RESULTS
from schemas.tables import SILVER

BEV, FCEV, UNKNOWN = "LZTB0010000000001", "LZTF0010000000002", "LZTX0990000000099"
CLEAN, FAULTY, WARNING_DAY = dt.date(2026, 11, 3), dt.date(2026, 11, 4), dt.date(2026, 11, 5)
TZ_OFFSET = dt.timedelta(hours=8)      # Asia/Shanghai, no DST
INGESTED_AT = dt.datetime(2026, 11, 20, 0, 0)


def _rows(source: str, records: list[dict]) -> list[tuple]:
    names = [f.name for f in SILVER[source].schema]
    out = []
    for i, rec in enumerate(records, start=1):
        row = {n: None for n in names} | {"record_no": i, "ingested_at": INGESTED_AT,
                                          "source_file": f"{source}/2026-11-01/{source}.csv"} | rec
        assert set(row) == set(names), set(row) ^ set(names)
        out.append(tuple(row[n] for n in names))
    return out


def _write(spark, source: str, records: list[dict], settings: Settings) -> None:
    spec = SILVER[source]
    delta_tables.append(spark.createDataFrame(_rows(source, records), spec.schema), spec, settings)


def frame(vin: str, local: str, odometer_km: float, *, soc: float = 80.0, coord: str = "WGS84",
          delivered: str | None = None, event_day: str | None = None) -> dict:
    """A telematics row at local time ``local`` ('yyyy-mm-dd HH:MM'); delivered on its event day unless told."""
    local_ts = dt.datetime.fromisoformat(local)
    event_date = dt.date.fromisoformat(event_day) if event_day else local_ts.date()
    return {
        "vin": vin, "event_ts_utc": local_ts - TZ_OFFSET, "msg_type": "realtime", "speed_kmh": 40.0,
        "odometer_km": odometer_km, "total_voltage_v": 620.0, "total_current_a": 50.0, "soc_pct": soc,
        "h2_remaining_pct": 70.0 if vin == FCEV else None, "fuel_total_l": None, "position_valid": True,
        "coord_sys_source": coord, "lon_wgs84_deg": 109.8, "lat_wgs84_deg": 39.6, "event_date_local": event_date,
        "source_file": f"telematics/{delivered or event_date.isoformat()}/frames.jsonl",
    }


TELEMATICS = [
    # 2026-11-02: context for the odometer steps of 2026-11-03
    frame(BEV, "2026-11-02 23:50", 1000.0), frame(FCEV, "2026-11-02 23:50", 5000.0),
    # 2026-11-03 clean
    frame(BEV, "2026-11-03 08:00", 1000.0), frame(BEV, "2026-11-03 08:01", 1001.2),
    frame(BEV, "2026-11-03 08:02", 1002.5),
    frame(FCEV, "2026-11-03 08:00", 5000.0), frame(FCEV, "2026-11-03 08:01", 5000.8),
    # 2026-11-04 faulty, 8 frames:
    frame(BEV, "2026-11-04 09:00", 1010.0, soc=130.0),              # SOC 130 %        (step +7.5)
    frame(BEV, "2026-11-04 09:01", 1011.0),                         #                  (step +1.0)
    frame(BEV, "2026-11-04 10:00", 1015.0, delivered="2026-11-13"),  # 9 days late > 7  (step +4.0)
    frame(BEV, "2026-11-05 02:00", 1020.0, event_day="2026-11-04"),  # ts outside day   (step +5.0)
    frame(FCEV, "2026-11-04 09:00", 5001.0),                        #                  (step +0.2)
    frame(FCEV, "2026-11-04 09:01", 4996.0),                        # odometer back    (step -5.0)
    frame(FCEV, "2026-11-04 09:02", 4997.0),                        # vs previous only (step +1.0)
    frame(UNKNOWN, "2026-11-04 09:00", 100.0),                      # unknown vin      (no step: first)
    # 2026-11-05 warning only
    frame(BEV, "2026-11-05 08:00", 1030.0, coord="BD09"), frame(BEV, "2026-11-05 08:01", 1031.0),
    frame(FCEV, "2026-11-05 08:00", 5000.0),
]


def write_dimensions(spark, settings: Settings) -> None:
    """The company, its BEV and FCEV truck and its mine, as both quality test lakes hold them."""
    _write(spark, "companies", [{"company_id": "C01", "company_name": "Test Coal"}], settings)
    _write(spark, "trucks", [
        {"vin": BEV, "company_id": "C01", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 34.5,
         "swap_capable": True},
        {"vin": FCEV, "company_id": "C01", "powertrain": "FCEV", "battery_kwh": 100.0, "h2_tank_kg": 60.0,
         "rated_payload_t": 33.0, "swap_capable": False},
    ], settings)
    _write(spark, "mines", [{"mine_id": "M1", "company_id": "C01", "mine_type": "open_pit", "banner": "Zhungeer"}],
           settings)


@pytest.fixture(scope="module")
def settings(spark, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("quality")
    s = Settings(lake_root=root / "lake", landing_root=root / "landing")
    write_dimensions(spark, s)
    _write(spark, "h2_stations", [{"station_id": "HS1", "company_id": "C01", "nameplate_kg_per_day": 1000.0,
                                   "dispensers": 2}], s)
    _write(spark, "telematics", TELEMATICS, s)
    return s


@pytest.fixture(scope="module")
def clean(spark, settings) -> q.QualityResult:
    return q.validate_day(spark, "silver_telematics", [CLEAN], settings=settings, run_id="run-clean")


@pytest.fixture(scope="module")
def faulty(spark, settings) -> q.QualityResult:
    return q.validate_day(spark, "silver_telematics", [FAULTY], settings=settings, run_id="run-faulty")


@pytest.fixture(scope="module")
def warned(spark, settings) -> q.QualityResult:
    return q.validate_day(spark, "silver_telematics", [WARNING_DAY], settings=settings, run_id="run-warning")


def outcome(result: q.QualityResult, expectation_type: str, column: str) -> q.ExpectationOutcome:
    found = [o for o in result.outcomes if o.expectation_type == expectation_type and o.column == column]
    assert len(found) == 1, (expectation_type, column, [(o.expectation_type, o.column) for o in result.outcomes])
    return found[0]


def test_clean_day_passes_every_expectation(clean):
    assert clean.rows_validated == 5
    assert clean.success and not clean.critical_failures and not clean.warning_failures
    q.raise_on_critical(clean)                          # does not raise
    step = outcome(clean, "expect_column_values_to_be_between", "odometer_step_km")
    assert step.success and step.unexpected_count == 0
    rows = outcome(clean, "expect_table_row_count_to_be_between", None)
    assert rows.observed_value == 5                     # aggregate expectations carry their observed value


def test_soc_above_100_is_a_critical_failure_that_raises(faulty):
    soc = outcome(faulty, "expect_column_values_to_be_between", "soc_pct")
    # 8 frames, all with a SOC; one is 130 -> 1 unexpected of 8 = 12.5 %
    assert (soc.success, soc.severity, soc.unexpected_count, soc.element_count) == (False, "critical", 1, 8)
    assert soc.unexpected_percent == pytest.approx(12.5)
    assert soc.sample_values == [130.0]
    with pytest.raises(q.QualityGateError) as err:
        q.raise_on_critical(faulty)
    message = str(err.value)
    assert "silver_telematics" in message and "2026-11-04" in message
    assert "soc_pct: expect_column_values_to_be_between" in message and "130.0" in message
    assert BEV in message                               # the failing row's key is named


def test_unknown_vin_fails_referential_integrity(faulty):
    known = outcome(faulty, "expect_column_values_to_be_in_set", "vin_known")
    assert (known.success, known.severity, known.unexpected_count) == (False, "critical", 1)
    assert [r["vin"] for r in known.sample_rows] == [UNKNOWN]


def test_odometer_going_backwards_fails_for_that_truck_only(faulty):
    step = outcome(faulty, "expect_column_values_to_be_between", "odometer_step_km")
    # steps: BEV +7.5 (first frame vs 1002.5 of the day before), +1.0, +4.0, +5.0; FCEV +0.2, -5.0, +1.0;
    # the unknown truck has no previous frame (null, skipped) -> 7 values, 1 negative
    assert (step.success, step.unexpected_count, step.element_count - step.missing_count) == (False, 1, 7)
    assert step.sample_values == [pytest.approx(-5.0)]
    assert step.sample_rows[0]["vin"] == FCEV


def test_timestamps_outside_the_run_window_or_lateness_allowance_fail(faulty):
    window = outcome(faulty, "expect_column_values_to_be_between", "event_ts_utc")
    assert (window.success, window.unexpected_count) == (False, 1)     # 2026-11-05 02:00 local on day 11-04
    assert window.kwargs["min_value"].startswith("2026-11-03T16:00:00")  # 2026-11-04 00:00 +08:00
    lag = outcome(faulty, "expect_column_values_to_be_between", "delivery_lag_days")
    assert (lag.success, lag.unexpected_count, lag.sample_values) == (False, 1, [9])   # 11-13 - 11-04
    # exactly these five critical failures, nothing else
    assert sorted(o.column for o in faulty.critical_failures) == [
        "delivery_lag_days", "event_ts_utc", "odometer_step_km", "soc_pct", "vin_known"]
    assert not faulty.warning_failures


def test_warning_only_failure_does_not_raise_but_is_recorded(spark, settings, warned):
    coord = outcome(warned, "expect_column_values_to_be_in_set", "coord_sys_source")
    assert (coord.success, coord.severity, coord.unexpected_count, coord.sample_values) == (False, "warning", 1, ["BD09"])
    assert warned.success and [o.column for o in warned.warning_failures] == ["coord_sys_source"]
    q.raise_on_critical(warned)                         # warnings never raise
    q.write_results(spark, warned, settings)
    recorded = (delta_tables.read_table(spark, QUALITY_RESULTS, settings)
                .filter("run_id = 'run-warning' AND NOT success").collect())
    assert [(r["column_name"], r["severity"], r["unexpected_count"]) for r in recorded] == [
        ("coord_sys_source", "warning", 1)]


def test_results_land_in_delta_and_rerunning_does_not_duplicate(spark, settings, faulty, clean):
    q.write_results(spark, clean, settings)
    q.write_results(spark, faulty, settings)
    q.write_results(spark, faulty, settings)             # a task retry with the same run id
    table = delta_tables.read_table(spark, QUALITY_RESULTS, settings)
    per_run = {r["run_id"]: r["n"] for r in table.groupBy("run_id").count().withColumnRenamed("count", "n").collect()}
    assert per_run["run-faulty"] == len(faulty.outcomes) and per_run["run-clean"] == len(clean.outcomes)
    failed = table.filter("run_id = 'run-faulty' AND NOT success").collect()
    assert sorted(r["column_name"] for r in failed) == [
        "delivery_lag_days", "event_ts_utc", "odometer_step_km", "soc_pct", "vin_known"]
    soc = next(r for r in failed if r["column_name"] == "soc_pct")
    assert (soc["severity"], soc["unexpected_count"], soc["event_dates"], soc["rows_validated"]) == (
        "critical", 1, [FAULTY], 8)
    assert json.loads(soc["sample_values"]) == [130.0]
    assert json.loads(soc["kwargs_json"])["max_value"] == 100.0
    # one GX result file per (table, run, days) even after the retry
    stored = list(q.results_dir_of(settings).glob("silver_telematics/run-faulty/*/*.json"))
    assert len(stored) == 1


def test_data_docs_html_is_built_and_names_the_table(spark, settings, faulty):
    q.write_results(spark, faulty, settings)
    index = q.build_data_docs(settings=settings, results=[faulty])     # what a DAG task does: its pages only
    assert index == settings.lake_root / "quality" / "data_docs" / "index.html"
    assert "silver_telematics" in index.read_text(encoding="utf-8")
    pages = list(index.parent.glob("validations/silver_telematics/run-faulty/*/*.html"))
    assert len(pages) == 1 and "soc_pct" in pages[0].read_text(encoding="utf-8")
    pages[0].unlink()
    assert q.build_data_docs(q.results_dir_of(settings), settings=settings) == index    # the whole site again
    assert len(list(index.parent.glob("validations/silver_telematics/run-faulty/*/*.html"))) == 1


def test_cross_table_ratios_are_derived_from_the_dimensions(spark, settings):
    _write(spark, "weighbridge", [
        {"ticket_id": "W1", "vin": BEV, "mine_id": "M1", "load_ts_utc": dt.datetime(2026, 11, 3, 1), "net_t": 34.5,
         "event_date_local": CLEAN},
        {"ticket_id": "W2", "vin": BEV, "mine_id": "M1", "load_ts_utc": dt.datetime(2026, 11, 3, 2), "net_t": 46.0,
         "event_date_local": CLEAN},
        {"ticket_id": "W3", "vin": UNKNOWN, "mine_id": "M9", "load_ts_utc": dt.datetime(2026, 11, 3, 3),
         "net_t": 30.0, "event_date_local": CLEAN},
    ], settings)
    _write(spark, "h2_fills", [
        {"fill_id": "F1", "station_id": "HS1", "dispenser_id": "1", "vin": FCEV, "h2_kg": 45.0,
         "start_ts_utc": dt.datetime(2026, 11, 3, 1), "end_ts_utc": dt.datetime(2026, 11, 3, 1, 20),
         "event_date_local": CLEAN},
        {"fill_id": "F2", "station_id": "HS9", "dispenser_id": "1", "vin": FCEV, "h2_kg": 66.0,
         "start_ts_utc": dt.datetime(2026, 11, 3, 2), "end_ts_utc": dt.datetime(2026, 11, 3, 2, 20),
         "event_date_local": CLEAN},
    ], settings)
    tickets = {r["ticket_id"]: r for r in q.prepare_batch(spark, "silver_weighbridge", [CLEAN], settings).collect()}
    # payload ratio = net_t / rated_payload_t: 34.5/34.5 = 1.0; 46/34.5 = 1.333 > 1.3; unknown truck -> null
    assert tickets["W1"]["payload_ratio"] == pytest.approx(1.0)
    assert tickets["W2"]["payload_ratio"] == pytest.approx(46.0 / 34.5)
    assert (tickets["W3"]["payload_ratio"], tickets["W3"]["vin_known"], tickets["W3"]["mine_known"]) == (None, False, False)
    assert tickets["W1"]["delivery_lag_days"] == -2       # lineage folder 2026-11-01, event day 2026-11-03
    fills = {r["fill_id"]: r for r in q.prepare_batch(spark, "silver_h2_fills", [CLEAN], settings).collect()}
    # H2 per fill / tank: 45/60 = 0.75; 66/60 = 1.1 > 1.0 (more than the tank holds); HS9 is no known station
    assert fills["F1"]["fill_share_of_tank"] == pytest.approx(0.75)
    assert fills["F2"]["fill_share_of_tank"] == pytest.approx(1.1)
    assert (fills["F1"]["station_known"], fills["F2"]["station_known"]) == (True, False)


def test_cli_exits_non_zero_on_a_critical_failure(settings, faulty, monkeypatch, capsys):
    # The validation itself is tested above; here only the command line around it (the faulty day's result).
    monkeypatch.setattr(q, "get_settings", lambda: settings)
    monkeypatch.setattr(q, "validate_day", lambda spark, table, dates, **kw: faulty)
    code = q.main(["--table", "telematics", "--date", "2026-11-04", "--no-write"])
    out = capsys.readouterr()
    assert code == 1
    assert "silver_telematics [2026-11-04] FAILED" in out.out and "CRITICAL soc_pct" in out.out
    assert "critical expectations failed in: silver_telematics" in out.err


def test_gate_blocks_only_the_failing_day_and_lets_the_clean_day_through(spark, settings):
    from jobs.quality.gate import _blocked_days

    together = q.validate_day(spark, "silver_telematics", [CLEAN, FAULTY], settings=settings, run_id="gate-both")
    assert together.critical_failures                   # validated together, the two days fail
    blocked = _blocked_days(spark, [together], [CLEAN, FAULTY], settings, "gate-by-day")
    # day by day only 2026-11-04 (the faulty day) fails; 2026-11-03 goes through to gold
    assert list(blocked) == [FAULTY]
    assert "soc_pct" in blocked[FAULTY] and "2026-11-04" in blocked[FAULTY]


def test_the_gate_validates_only_the_tables_and_days_of_its_plan(spark, settings):
    """kpi_daily's plan: each table on the days its rows changed. The faulty telematics day is among the
    gate's days, but a plan that gives telematics the clean day only does not validate it; a plan that gives
    telematics the faulty day blocks that day alone and lets the clean one through."""
    from jobs.quality.gate import gate_silver
    from jobs.quality.validation import QualityGateError

    passed = gate_silver(spark, [CLEAN, FAULTY], settings, run_id="gate-plan-clean",
                         tables={"telematics": [CLEAN], "trucks": [CLEAN, FAULTY]})
    assert (passed["tables"], passed["critical_failures"], passed["passed_days"]) == (
        2, {}, [CLEAN.isoformat(), FAULTY.isoformat()])
    with pytest.raises(QualityGateError) as failed:
        gate_silver(spark, [CLEAN, FAULTY], settings, run_id="gate-plan-faulty", tables={"telematics": [FAULTY]})
    summary = failed.value.summary
    assert summary["tables"] == 1 and list(summary["blocked_days"]) == [FAULTY.isoformat()]
    assert summary["passed_days"] == [CLEAN.isoformat()]


def test_the_gate_plan_takes_each_tables_own_days_and_every_blocked_day():
    from jobs.kpi.build import gate_plan

    d0, d1, d2, d3 = (dt.date(2026, 11, n) for n in (1, 2, 3, 4))
    days = [d1, d2, d3]
    # telematics touched d1 and d2; weighbridge d3 (and d0, not an affected day here); trucks (a dimension)
    # was ingested; nothing else was
    touched = {"telematics": {d1, d2}, "weighbridge": {d0, d3}, "trucks": set()}
    assert gate_plan(days, touched, set()) == {"telematics": [d1, d2], "weighbridge": [d3], "trucks": days}
    # d2 still blocked: every event table on d2 besides its own days, every dimension whole
    plan = gate_plan(days, touched, {d2})
    assert plan["telematics"] == [d1, d2] and plan["weighbridge"] == [d2, d3]
    assert plan["shipments"] == [d2] and plan["companies"] == days and plan["trucks"] == days
    assert len(plan) == 16
    assert gate_plan([], {}, set()) == {}


def test_a_blocked_day_stays_affected_until_a_later_build_covers_it(spark, tmp_path):
    from jobs.kpi.build import (KPI_BUILDS, contiguous_runs, pending_blocked_days, record_blocked)

    assert contiguous_runs([dt.date(2026, 11, 5), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]) == [
        (dt.date(2026, 11, 2), dt.date(2026, 11, 3)), (dt.date(2026, 11, 5), dt.date(2026, 11, 5))]
    lake = Settings(lake_root=tmp_path / "lake")
    record_blocked(spark, {FAULTY: "soc_pct above 100"}, lake)
    assert pending_blocked_days(lake) == {FAULTY}
    # a build of 11-03..11-03 started later does not cover 11-04; one of 11-04..11-05 does
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    rows = [(later, later, CLEAN, CLEAN, 21, 1.0)]
    delta_tables.append(spark.createDataFrame(rows, KPI_BUILDS.schema), KPI_BUILDS, lake)
    assert pending_blocked_days(lake) == {FAULTY}
    rows = [(later, later, FAULTY, WARNING_DAY, 21, 1.0)]
    delta_tables.append(spark.createDataFrame(rows, KPI_BUILDS.schema), KPI_BUILDS, lake)
    assert pending_blocked_days(lake) == set()


def test_a_plan_published_after_its_shift_started_fails_the_plan_suite(spark, settings):
    def plan(shift_start_local: str, published_local: str) -> dict:
        published = dt.datetime.fromisoformat(published_local)
        start = dt.datetime.fromisoformat(shift_start_local)
        return {"mine_id": "M1", "shift_date": start.date(), "shift_no": 1, "shift_start_ts_utc": start - TZ_OFFSET,
                "planned_raw_coal_t": 6000.0, "trucks_dispatched": 12, "published_ts_utc": published - TZ_OFFSET,
                "event_date_local": published.date(),
                "source_file": f"production_plan/{published.date().isoformat()}/p.csv"}

    _write(spark, "production_plan", [
        plan("2026-11-04 08:00", "2026-11-03 19:30"),     # the evening before: a plan
        plan("2026-11-03 16:00", "2026-11-03 19:30"),     # 3.5 h after its shift started: not a plan
    ], settings)
    result = q.validate_day(spark, "silver_production_plan", [CLEAN], settings=settings, run_id="run-plan")
    [pair] = [o for o in result.outcomes if o.expectation_type == "expect_column_pair_values_a_to_be_greater_than_b"]
    assert (pair.success, pair.severity, pair.unexpected_count) == (False, "critical", 1)
    assert [o.expectation_type for o in result.critical_failures] == ["expect_column_pair_values_a_to_be_greater_than_b"]
