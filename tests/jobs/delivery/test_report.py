"""HTML reports on the committed sample world (gold built for 2026-11 by the shared ``sample_gold_lake``).

A private copy of the lake gets two things the sample does not produce: a charging forecast for one
station (CS01, company C01) and a hand-made set of data-quality results, so the forecast panel, the
"no forecast available" panel and the quality counts are all exercised and checkable. The reports are
then opened in headless Chromium: the DOM must hold every chart, the screenshot must show them.
"""
from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import re
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.platform import delta_log, delta_tables
from jobs.delivery.company_keys import company_key
from jobs.delivery.report import data as report_data
from jobs.delivery.report import job, render
from jobs.platform.settings import Settings
from schemas.gold_forecast import GOLD_CHARGING_FORECAST
from schemas.quality import QUALITY_RESULTS
from schemas.tables import SILVER
from tests.conftest import copy_lake
from tests.pages import offline_problems

MONTH = dt.date(2026, 11, 1)
GENERATED_AT = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.timezone.utc)
FORECAST_STATION = "CS01"                  # company C01
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_TIMEOUT_S = 90
DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
LANDING = Path(__file__).resolve().parents[3] / "data_samples" / "landing"
WASHING_K = Path(__file__).resolve().parents[3] / "schemas" / "reference" / "washing_process_factors.csv"


def landing_rows(source: str) -> list[dict[str, str]]:
    """Every row of a source's landing CSV files (the committed sample, not anything the pipeline wrote)."""
    rows = []
    for path in sorted((LANDING / source).glob("*/*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    return rows


def landing_charts() -> dict[str, set[tuple[str, str]]]:
    """Which charts the November reports should hold, from the landing files alone: per kind, the
    (banner, company) of each one. Energy trend: one per mine type per page, for mines that produced in
    November; washing trend: one per coal type, for plants that fed raw coal with a process that has a
    GB 29446 factor k (otherwise no graded value to plot); heatmap: one per page with stations."""
    mines = {r["mine_id"]: r for r in landing_rows("mines")}
    produced = {r["mine_id"] for r in landing_rows("mine_production")
                if r["shift_date"].startswith("2026-11") and float(r["raw_coal_t"] or 0) > 0}
    plants = {r["plant_id"]: r for r in landing_rows("washing_plants")}
    fed = {r["plant_id"] for r in landing_rows("washing")
           if r["prod_date"].startswith("2026-11") and float(r["raw_coal_fed_t"] or 0) > 0}
    with WASHING_K.open(encoding="utf-8") as f:
        graded = {(r["coal_type"], r["process"]) for r in csv.DictReader(line for line in f if not line.startswith("#"))}
    return {
        "energy_trend": {(mines[m]["banner"], mines[m]["company_id"], mines[m]["mine_type"]) for m in produced},
        "washing_trend": {(p["banner"], p["company_id"], p["coal_type"]) for pid, p in plants.items()
                          if pid in fed and (p["coal_type"], p["process"]) in graded},
        "heatmap": {(r["banner"], r["company_id"], "") for r in landing_rows("charging_stations")},
    }


# --- fixtures ------------------------------------------------------------------------------------------
def _add_forecast(spark, settings: Settings) -> None:
    """168 hourly rows for one station from the as-of day 2026-11-03, written the way the forecast job writes."""
    from jobs.forecast.charging_demand import forecast_rows

    start = dt.datetime(2026, 11, 4, 0, 0)
    rows = [(FORECAST_STATION, start + dt.timedelta(hours=h), h + 1, 6.0 + h % 24 * 0.5, 10.0 + h % 24, 16.0 + h % 24 * 1.5,
             "seasonal_naive_daily") for h in range(168)]
    fc = spark.createDataFrame(rows, "station_id string, ts_local timestamp, lead_h int, p10_kwh double, "
                                     "p50_kwh double, p90_kwh double, method string")
    delta_tables.replace_where(forecast_rows(fc, model_version="seasonal_naive_daily", data_version="silver_charging_sessions@v1",
                                   cutoff_utc=dt.datetime(2026, 11, 3, 16, 0), issued_at=dt.datetime(2026, 11, 3, 16, 5),
                                   as_of=dt.date(2026, 11, 3)),
                     GOLD_CHARGING_FORECAST, "forecast_date_local = '2026-11-03'", settings)


def _quality_row(run_id, table, expectation, column, severity, success, dates, validated_at, unexpected=0):
    return (run_id, table, dates, expectation, column, severity, success, 100, 0, unexpected,
            float(unexpected), None, None, None, None, f'{{"column": "{column}"}}', None, "thresholds_v1", 100, 0.5,
            validated_at)


# Hand-made results. In November's runs: 4 critical passes (3 on silver_shipments, 1 on the dimension
# silver_mines of the same run), 2 critical failures (one passes again in a later run -> "fixed"),
# 1 warning failure; the later run adds 1 critical pass. October's run is outside the period.
NOV, LATER = dt.datetime(2026, 11, 3, 2, 0), dt.datetime(2026, 11, 3, 9, 0)
NOV_DAYS = [dt.date(2026, 11, 2)]
QUALITY_ROWS = [
    _quality_row("r_nov", "silver_shipments", "expect_column_values_to_not_be_null", "shipment_id", "critical", True, NOV_DAYS, NOV),
    _quality_row("r_nov", "silver_shipments", "expect_column_values_to_not_be_null", "mine_id", "critical", True, NOV_DAYS, NOV),
    _quality_row("r_nov", "silver_shipments", "expect_column_values_to_be_unique", "shipment_id", "critical", True, NOV_DAYS, NOV),
    _quality_row("r_nov", "silver_mines", "expect_column_values_to_be_unique", "mine_id", "critical", True, None, NOV),
    _quality_row("r_nov", "silver_shipments", "expect_column_values_to_be_between", "tonnes", "critical", False, NOV_DAYS, NOV, 3),
    _quality_row("r_nov", "silver_shipments", "expect_column_values_to_be_in_set", "product", "critical", False, NOV_DAYS, NOV, 7),
    _quality_row("r_nov", "silver_shipments", "expect_column_mean_to_be_between", "distance_km", "warning", False, NOV_DAYS, NOV, 1),
    _quality_row("r_fix", "silver_shipments", "expect_column_values_to_be_between", "tonnes", "critical", True, NOV_DAYS, LATER),
    _quality_row("r_oct", "silver_shipments", "expect_column_pair_values_a_to_be_greater_than_b", "rail_km", "critical",
                 False, [dt.date(2026, 10, 15)], dt.datetime(2026, 10, 16, 2, 0), 5),
]
EXPECTED_QUALITY = {"critical_passed": 5, "critical_failed": 2, "warning_passed": 0, "warning_failed": 1}


@pytest.fixture(scope="module")
def report_lake(spark, sample_gold_lake, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("report")
    copied = copy_lake(sample_gold_lake[0], root / "lake")
    settings = Settings(lake_root=copied.lake_root, landing_root=copied.landing_root, delivery_root=root / "delivery")
    assert not delta_log.table_exists(GOLD_CHARGING_FORECAST, settings)       # the sample has neither: we add both
    assert not delta_log.table_exists(QUALITY_RESULTS, settings)
    _add_forecast(spark, settings)
    delta_tables.append(spark.createDataFrame(QUALITY_ROWS, QUALITY_RESULTS.schema), QUALITY_RESULTS, settings)
    return settings


@pytest.fixture(scope="module")
def month_data(spark, report_lake) -> report_data.MonthData:
    return report_data.load_month(report_data.Lake(spark, report_lake), MONTH)


@pytest.fixture(scope="module")
def reports(report_lake, month_data) -> job.ReportRun:
    return job.render_reports(month_data, report_lake, generated_at=GENERATED_AT)


@pytest.fixture(scope="module")
def tenants(spark, report_lake) -> dict[str, dict[str, set[str]]]:
    """Per company, from silver: its ids and names (what its report may show and the others' may not)."""
    def rows(source, *cols):
        return delta_tables.read_table(spark, SILVER[source], report_lake).select(*cols).collect()

    out: dict[str, dict[str, set[str]]] = {}
    for r in rows("companies", "company_id", "company_name"):
        out[r.company_id] = {"company": {r.company_id}, "company_name": {r.company_name}, "mine": set(), "station": set(),
                             "plant": set(), "vin": set(), "mine_name": set()}
    for r in rows("mines", "mine_id", "company_id", "mine_name"):
        out[r.company_id]["mine"].add(r.mine_id)
        out[r.company_id]["mine_name"].add(r.mine_name)
    for r in rows("charging_stations", "station_id", "company_id"):
        out[r.company_id]["station"].add(r.station_id)
    for r in rows("washing_plants", "plant_id", "company_id"):
        out[r.company_id]["plant"].add(r.plant_id)
    for r in rows("trucks", "vin", "company_id"):
        out[r.company_id]["vin"].add(r.vin)
    return out


def visible_text(html: str) -> str:
    """The document without its embedded image bytes (base64 can contain any short id by chance)."""
    return DATA_URI.sub("data:image/png;base64,", html)


def has_id(text: str, ident: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(ident) + r"(?![A-Za-z0-9_])", text) is not None


def kpi_value(html: str, key: str, scope: str | None = None) -> str:
    scope_attr = f' data-scope="{re.escape(scope)}"' if scope else ""
    m = re.search(rf'<span data-kpi="{re.escape(key)}"{scope_attr}>([^<]*)</span>', html)
    assert m, f"no headline value {key} {scope or ''}"
    return m.group(1)


# --- files and keys -------------------------------------------------------------------------------------
def test_one_report_per_company_named_by_hashed_key_and_one_for_planners(reports, report_lake, tenants):
    out_dir = report_lake.reports_root / "2026-11"
    assert reports.out_dir == out_dir
    expected = {f"{company_key(c, report_lake)}.html" for c in tenants} | {"planners.html"}
    assert {p.name for p in out_dir.iterdir()} == expected
    for name in expected - {"planners.html"}:
        assert re.fullmatch(r"c_[0-9a-f]{16}\.html", name)
    for company_id in tenants:
        assert company_id not in str(reports.company_files[company_id].relative_to(report_lake.delivery_dir))
    # the key depends on the salt: a public id alone does not give the file name
    other = Settings(lake_root=report_lake.lake_root, company_key_salt="another-deployment")
    assert company_key("C01", other) != company_key("C01", report_lake)


# --- self-contained -------------------------------------------------------------------------------------
def test_reports_reference_nothing_outside_the_file(reports):
    for path in [*reports.company_files.values(), reports.planners_file]:
        html = path.read_text(encoding="utf-8")
        assert "http://" not in html and "https://" not in html, path.name
        refs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', html)
        assert refs, path.name
        bad = [r for r in refs if not (r.startswith("data:image/png;base64,") or r.startswith("#"))]
        assert not bad, (path.name, bad[:5])
        for construct in ("<script", "<link", "<iframe", "@import", "url("):
            assert construct not in html, (path.name, construct)
        assert offline_problems(path) == [], path.name     # the check every page the project writes passes


# --- tenant isolation ------------------------------------------------------------------------------------
def test_company_report_shows_its_own_ids_and_no_other_company(reports, tenants):
    for company_id, own in tenants.items():
        text = visible_text(reports.company_files[company_id].read_text(encoding="utf-8"))
        for kind in ("company", "mine", "station"):
            for ident in own[kind]:
                assert has_id(text, ident), f"{company_id}: own {kind} {ident} missing"
        for name in own["company_name"] | own["mine_name"]:
            assert name in text, f"{company_id}: own name {name} missing"
        for other_id, theirs in tenants.items():
            if other_id == company_id:
                continue
            for kind in ("company", "mine", "station", "plant", "vin"):
                for ident in theirs[kind]:
                    assert not has_id(text, ident), f"{company_id}'s report shows {other_id}'s {kind} {ident}"
            for name in theirs["company_name"] | theirs["mine_name"]:
                assert name not in text, f"{company_id}'s report shows {other_id}'s name {name}"


def test_planners_report_covers_every_company_grouped_by_banner(reports, tenants, month_data):
    text = visible_text(reports.planners_file.read_text(encoding="utf-8"))
    for own in tenants.values():
        for kind in ("company", "mine", "station"):
            for ident in own[kind]:
                assert has_id(text, ident), ident
    for banner in set(month_data.mines["banner"]) | set(month_data.stations["banner"]):
        assert f"Banner: {banner}</h2>" in text


def test_for_company_keeps_only_the_company_rows_of_every_frame(month_data):
    scoped = report_data.for_company(month_data, "C02")
    for name, df in scoped.frames.items():
        if "company_id" in df.columns and len(df):
            assert set(df["company_id"]) == {"C02"}, name
        if "scope_level" in df.columns and len(df):
            assert set(df.loc[df["scope_level"] != "mine", "scope_level"]) == {"company"}, name
    assert scoped.targets.empty      # city-wide targets are for planners only


# --- hand-checkable numbers ----------------------------------------------------------------------------
def test_rail_share_headline_equals_an_independent_computation_from_silver(spark, report_lake, reports, tenants):
    """Rail share of company X, recomputed here from silver with plain arithmetic: coal and coke
    (raw_coal, clean_coal, coke) shipped in November over more than 500 km; a shipment counts as rail
    when rail_km > 0 and rail_km >= 0.5 x distance_km (docs/kpis.md section 7); share = rail t / all t x 100."""
    mine_company = {r.mine_id: r.company_id for r in
                    delta_tables.read_table(spark, SILVER["mines"], report_lake).select("mine_id", "company_id").collect()}
    shipments = (delta_tables.read_table(spark, SILVER["shipments"], report_lake)
                 .filter(F.col("ship_date").between("2026-11-01", "2026-11-30"))
                 .select("mine_id", "product", "tonnes", "distance_km", "rail_km").collect())
    planners = reports.planners_file.read_text(encoding="utf-8")
    checked = 0
    for company_id in tenants:
        long_haul_t = rail_t = 0.0
        for s in shipments:
            if mine_company.get(s.mine_id) != company_id or s.product not in ("raw_coal", "clean_coal", "coke"):
                continue
            if s.distance_km > 500:
                long_haul_t += s.tonnes
                if s.rail_km > 0 and s.rail_km >= 0.5 * s.distance_km:
                    rail_t += s.tonnes
        if not long_haul_t:
            continue
        expected = f"{rail_t / long_haul_t * 100:,.1f}"
        html = reports.company_files[company_id].read_text(encoding="utf-8")
        assert kpi_value(html, "rail_share_tonnes_pct") == expected, company_id
        assert kpi_value(planners, "rail_share_tonnes_pct", scope=company_id) == expected, company_id
        checked += 1
    assert checked >= 2


def test_month_charging_occupancy_and_hydrogen_equal_sums_recomputed_from_the_finest_rows(
        spark, report_lake, reports, tenants):
    """A company's month of charging occupancy = Σ plugged-in s ÷ Σ calendar s over its connectors' hours
    (gold_charging_connector_hourly), and its hydrogen = Σ kg of its stations' November fills (silver): the
    report shows the monthly gold tables, which must agree with both."""
    station_company = {r.station_id: r.company_id for r in delta_tables.read_table(
        spark, SILVER["charging_stations"], report_lake).select("station_id", "company_id").collect()}
    h2_company = {r.station_id: r.company_id for r in delta_tables.read_table(
        spark, SILVER["h2_stations"], report_lake).select("station_id", "company_id").collect()}
    hours = (spark.read.format("delta").load(str(report_lake.gold_root / "gold_charging_connector_hourly"))
             .filter(F.col("date_local").between("2026-11-01", "2026-11-30"))
             .groupBy("station_id").agg(F.sum("plugged_in_s").alias("plugged"), F.sum("calendar_s").alias("calendar"))
             .collect())
    fills = (delta_tables.read_table(spark, SILVER["h2_fills"], report_lake)
             .filter(F.col("event_date_local").between("2026-11-01", "2026-11-30")).select("station_id", "h2_kg").collect())
    checked = set()
    for company_id in tenants:
        plugged = sum(h.plugged for h in hours if station_company.get(h.station_id) == company_id)
        calendar = sum(h.calendar for h in hours if station_company.get(h.station_id) == company_id)
        h2_kg = sum(f.h2_kg for f in fills if h2_company.get(f.station_id) == company_id)
        html = reports.company_files[company_id].read_text(encoding="utf-8")
        if calendar:
            assert kpi_value(html, "occupancy_pct") == f"{plugged / calendar * 100:,.1f}", company_id
            checked.add("charging")
        if h2_kg:
            assert kpi_value(html, "h2_kg") == f"{h2_kg:,.1f}", company_id
            checked.add("hydrogen")
    assert checked == {"charging", "hydrogen"}


def test_quality_counts_of_the_period_and_critical_failures(reports):
    html = reports.company_files["C01"].read_text(encoding="utf-8")
    counts = {k: int(v.replace(",", "")) for k, v in re.findall(r'<span data-quality="(\w+)">([\d,]+)</span>', html)}
    assert counts == EXPECTED_QUALITY
    section = html[html.index('id="quality"'):]
    assert "expect_column_values_to_be_in_set" in section and "open</span>" in section
    assert "fixed by a later run" in section               # the tonnes check passed again in run r_fix
    assert "expect_column_pair_values_a_to_be_greater_than_b" not in section     # October's run
    assert "r_oct" not in section


def test_headline_versions_come_from_the_data(reports):
    html = reports.company_files["C01"].read_text(encoding="utf-8")
    header = html[html.index('data-versions="1"'):html.index("</header>")]
    for version in ("factors_v2026.1", "mine_limits_v2026.1", "rules_v2026.1", "plan_targets_v2024.1",
                    "charging_util_defs_v2026.1", "seasonal_naive_daily"):
        assert version in header, version


# --- forecast panel ------------------------------------------------------------------------------------
def test_forecast_chart_for_the_station_with_a_forecast_and_a_clear_panel_elsewhere(reports, month_data):
    c01 = reports.company_files["C01"].read_text(encoding="utf-8")
    assert re.search(r'data-chart="forecast" data-entities="CS01"', c01)
    for other in ("C02", "C03"):
        html = reports.company_files[other].read_text(encoding="utf-8")
        assert 'data-chart="forecast"' not in html
        assert 'data-empty="forecast"' in html and "No forecast available" in html
    # without the table at all (a lake where the forecast DAG never ran) the section says so, no error
    absent = dataclasses.replace(month_data, forecast=month_data.forecast.iloc[0:0], forecast_table_exists=False)
    section = render.forecast_section(absent, render.ChartSink("test"))
    assert "No forecast available" in section.body and "does not exist" in section.body


# --- hostile text from the data --------------------------------------------------------------------------
HOSTILE_COMPANY = '<script>alert("c")</script> & =HYPERLINK("http://evil.example/x","click")'
HOSTILE_MINE = "\"><img src=x onerror=alert(1)> 'M' =cmd|' /C calc'!A0"
HOSTILE_BANNER = "</h2><style>body{display:none}</style>"
VOID_TAGS = {"meta", "img", "br", "hr", "input", "link"}


class Dom(HTMLParser):
    """Every element of a page with its attributes and its text (descendants' text included), as a parser
    that follows the HTML rules reads it."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict, str]] = []
        self._open: list[list] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag in VOID_TAGS:
            self.elements.append((tag, dict(attrs), ""))
        else:
            self._open.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        while self._open:
            name, attrs, text = self._open.pop()
            self.elements.append((name, attrs, text))
            if self._open:
                self._open[-1][2] += text
            if name == tag:
                break

    def handle_data(self, data):
        if self._open:
            self._open[-1][2] += data

    def texts(self, tag: str) -> list[str]:
        return [text for name, _, text in self.elements if name == tag]


def test_hostile_names_in_the_data_are_shown_as_text_not_markup(month_data):
    """A company, mine or banner name holding markup or a spreadsheet formula is escaped wherever it is
    shown: the page gains no element, and the name reads back, character for character, as text."""
    d = report_data.for_company(month_data, "C01")
    d = dataclasses.replace(d, companies=d.companies.assign(company_name=HOSTILE_COMPANY),
                            mines=d.mines.assign(mine_name=HOSTILE_MINE),
                            mine_monthly=d.mine_monthly.assign(mine_name=HOSTILE_MINE))
    html = render.company_report(d, company_id="C01", generated_at=GENERATED_AT, report_name="hostile")
    for raw in (HOSTILE_COMPANY, HOSTILE_MINE, "<script", "<img src=x"):
        assert raw not in html
    dom = Dom(html)
    assert dom.texts("title") == [f"{HOSTILE_COMPANY} · 2026-11 KPI report"]
    assert dom.texts("h1") == [HOSTILE_COMPANY]
    assert HOSTILE_MINE in dom.texts("td")                      # the mine table's name column
    assert {name for name, _, _ in dom.elements} <= {
        "html", "head", "meta", "title", "style", "body", "header", "div", "p", "h1", "dl", "dt", "dd", "span", "b",
        "nav", "a", "main", "section", "h2", "h3", "figure", "img", "figcaption", "table", "thead", "tbody", "tr",
        "th", "td", "strong", "em", "footer"}
    assert dom.texts("style") and len(dom.texts("style")) == 1
    assert all(a["src"].startswith("data:image/png;base64,") for name, a, _ in dom.elements if name == "img")

    planners_data = dataclasses.replace(month_data, mines=month_data.mines.assign(banner=HOSTILE_BANNER))
    planners = render.planners_report(planners_data, generated_at=GENERATED_AT, report_name="hostile")
    assert HOSTILE_BANNER not in planners
    dom = Dom(planners)
    assert f"Banner: {HOSTILE_BANNER}" in dom.texts("h2")
    assert f"Banner: {HOSTILE_BANNER}" in dom.texts("a")      # the table of contents
    assert len(dom.texts("style")) == 1


HOSTILE_STATION = '<img src=x onerror=alert(1)> $\\frac{$ =HYPERLINK("http://evil.example")'


def test_planners_report_shows_load_flexibility_beside_each_charging_heatmap(reports):
    html = reports.planners_file.read_text(encoding="utf-8")
    charts = re.findall(r'<figure class="chart" data-chart="(heatmap|flexibility)" data-entities="([^"]*)"', html)
    # each banner with stations (3 in the sample): its occupancy heatmap, then the flexibility heatmap of the
    # same stations; then a table per banner with the month's figures per station
    assert [kind for kind, _ in charts] == ["heatmap", "flexibility"] * 3
    assert [e for k, e in charts if k == "flexibility"] == [e for k, e in charts if k == "heatmap"]
    dom = Dom(html)
    assert dom.texts("th").count("Flexible share (%)") == 3 and dom.texts("h3").count("Load flexibility") == 3


def test_hostile_station_names_in_the_flexibility_section_are_text(month_data):
    """A station name holding markup, mathtext or a formula is drawn in the chart title as it is (no
    mathtext parse error) and shown in the table as text: the section gains no element."""
    d = dataclasses.replace(month_data, stations=month_data.stations.assign(station_name=HOSTILE_STATION))
    html = str(render.flexibility_section(d, render.ChartSink("hostile")).html())
    assert "<img src=x" not in html and 'data-chart="flexibility"' in html
    dom = Dom(html)
    assert dom.texts("td").count(HOSTILE_STATION) == len(d.flex_station_month) > 0
    assert {name for name, _, _ in dom.elements} <= {"section", "h2", "figure", "img", "figcaption", "b", "div",
                                                      "table", "thead", "tbody", "tr", "th", "td"}
    assert all(a["src"].startswith("data:image/png;base64,") for name, a, _ in dom.elements if name == "img")


# --- bad input -----------------------------------------------------------------------------------------
def test_unknown_or_empty_month_is_a_clear_error(spark, report_lake, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        job.main(["--month", "2026-13"])
    assert exc.value.code == job.EXIT_USAGE
    assert "not a month" in capsys.readouterr().err
    monkeypatch.setattr(job, "get_settings", lambda: report_lake)
    assert job.main(["--month", "2026-10"]) == job.EXIT_NO_DATA
    err = capsys.readouterr().err
    assert "no gold KPI data for 2026-10" in err and "months with data: 2026-11" in err
    empty = Settings(lake_root=tmp_path / "lake", delivery_root=tmp_path / "delivery")
    with pytest.raises(report_data.NoGoldData, match="no gold KPI data under"):
        job.write_reports(spark, None, empty)
    assert not (tmp_path / "lake").exists()          # a report never creates tables


# --- rendered in a real browser ------------------------------------------------------------------------
def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM.is_file(), "headless Chromium missing: run scripts/bootstrap.sh (installs Debian's chromium)"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=True)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def pixel_stats(png: Path) -> tuple[int, int]:
    """(warm pixels, distinct colours) of a screenshot. Warm = red / orange / yellow-orange, the colours of
    the heatmap cells and the rail-share bars; the page itself (blue header, grey text, pills) has almost none."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    warm = int(((r > 180) & (g < 190) & (b < 140)).sum())
    distinct = int(np.count_nonzero(np.bincount(((r << 16) | (g << 8) | b).ravel(), minlength=1 << 24)))
    return warm, distinct


def expected_charts(tenant: dict[str, set[str]], month_data) -> int:
    """Energy trend per mine type, washing trend per coal type, rail share, the station heatmap, the forecast."""
    mines = month_data.mines[month_data.mines["mine_id"].isin(tenant["mine"])]
    fed = month_data.washing_daily[month_data.washing_daily["plant_id"].isin(tenant["plant"])]
    fed = fed[fed["gb29446_electricity_kwh_per_t"].notna()]
    return (mines["mine_type"].nunique() + fed["coal_type"].nunique() + 1 + (1 if tenant["station"] else 0)
            + (1 if FORECAST_STATION in tenant["station"] else 0))


def test_company_report_renders_in_chromium_with_every_chart(reports, tenants, month_data, tmp_path):
    path = reports.company_files["C01"]
    shot = tmp_path / "c01.png"
    # one browser run: the DOM as Chromium parsed it on stdout, and a screenshot of the page
    dom = chromium([f"--screenshot={shot}", "--window-size=1400,4000", "--dump-dom", path.as_uri()],
                   tmp_path / "profile").stdout
    figures = re.findall(r'<figure class="chart" data-chart="(\w+)"[^>]*>\s*<img src="(data:image/png;base64,[^"]+)"', dom)
    # C01 from the landing files: mines M001 (underground) and M004 (open pit) -> 2 energy trends; plant
    # WP01 (thermal, dense medium) -> 1 washing trend; station CS01 -> 1 heatmap and the added forecast;
    # 1 rail share: 2 + 1 + 1 + 1 + 1 = 6
    landing = landing_charts()
    from_landing = sum(len({extra for _, company, extra in entries if company == "C01"})
                       for entries in landing.values()) + 1 + 1          # + forecast + rail share
    assert len(figures) == expected_charts(tenants["C01"], month_data) == from_landing == 6
    assert {kind for kind, _ in figures} == {"energy_trend", "washing_trend", "rail_share", "heatmap", "forecast"}
    for kind, uri in figures:
        png = base64.b64decode(uri.split(",", 1)[1])
        width, height = png_size(png)
        assert width >= 600 and height >= 150 and len(png) > 8_000, (kind, width, height, len(png))

    # the same page without its images: the charts must account for most of the colour on the page
    bare = tmp_path / "bare.html"
    bare.write_text(DATA_URI.sub("data:,", path.read_text(encoding="utf-8")), encoding="utf-8")
    bare_shot = tmp_path / "bare.png"
    chromium([f"--screenshot={bare_shot}", "--window-size=1400,4000", bare.as_uri()], tmp_path / "profile_bare")
    warm, distinct = pixel_stats(shot)
    bare_warm, bare_distinct = pixel_stats(bare_shot)
    # the page's own palette is blue, grey and white with a few coloured pills, so without its images it has
    # almost no warm pixels (< 5,000); the heatmap cells and rail-share bars are orange-red, so with them the
    # warm area is far larger (> 20,000 px: a 200 x 100 px patch of a 1,400 px-wide page). The charts'
    # anti-aliased lines and colour scales add well over 1,500 colours to the page's few.
    assert warm > 20_000 and bare_warm < 5_000, (warm, bare_warm)
    assert distinct > bare_distinct + 1_500, (distinct, bare_distinct)


def test_planners_report_renders_in_chromium(reports, tmp_path):
    dom = chromium(["--dump-dom", reports.planners_file.as_uri()], tmp_path / "profile").stdout
    kinds = re.findall(r'<figure class="chart" data-chart="(\w+)"', dom)
    # rail share by banner, then per banner its mine-type trends, washing, heatmap; the forecast in CS01's banner.
    # From the landing files: 5 mines, each alone in its banner (Zhungeer, Yijinhuoluo, Etuoke, Dongsheng,
    # Etuokeqian) -> 5 energy trends; plants WP01 (Zhungeer, thermal) and WP02 (Etuoke, coking) -> 2 washing
    # trends; stations in Zhungeer, Yijinhuoluo and Etuoke -> 3 heatmaps
    landing = landing_charts()
    per_banner = {kind: len({(banner, extra) for banner, _, extra in entries}) for kind, entries in landing.items()}
    assert per_banner == {"energy_trend": 5, "washing_trend": 2, "heatmap": 3}
    assert kinds.count("rail_share") == 1 and kinds.count("forecast") == 1
    for kind, count in per_banner.items():
        assert kinds.count(kind) == count, kind
    assert dom.count("<section") >= 8


# --- links to the Data Docs of the latest gate run ------------------------------------------------------
@pytest.fixture(scope="module")
def gate_docs(spark, report_lake, reports) -> dict:
    """Two tables of the sample validated by a gate run, their Data Docs built (after the other reports)."""
    from jobs.quality import validation as q

    results = {t: q.validate_day(spark, t, days, settings=report_lake, run_id="gate_report")
               for t, days in (("silver_companies", []), ("silver_shipments", [dt.date(2026, 11, 2)]))}
    for result in results.values():
        q.write_results(spark, result, report_lake)
    q.build_data_docs(settings=report_lake, results=list(results.values()))
    return results


def test_planners_report_links_each_tables_latest_gate_page_and_company_reports_do_not(
        report_lake, month_data, gate_docs, tmp_path):
    settings = report_lake.model_copy(update={"delivery_root": tmp_path / "delivery"})
    run = job.render_reports(month_data, settings, generated_at=GENERATED_AT)
    html = run.planners_file.read_text(encoding="utf-8")
    links = {t: h for h, t in re.findall(r'<a href="([^"]+)" data-docs="(\w+)">', html)}
    assert set(links) == {"silver_companies", "silver_shipments"}
    for table, href in links.items():
        page = (run.out_dir / href).resolve()
        # the page of this gate run for this table, as the site lays it out: validations/<table>/<run>/<time>/<batch>
        assert page.is_file() and page.parts[-5:-2] == ("validations", table, "gate_report"), page
        result = gate_docs[table]
        verdict = ("failed" if result.critical_failures else
                   "passed with warnings" if result.warning_failures else "passed")
        row = html[html.index(f'data-docs="{table}"') - 600:html.index(f'data-docs="{table}"')]
        assert f">{verdict}</span>" in row, (table, verdict)
        assert offline_problems(page) == [], page          # the page it links to opens offline too
    assert offline_problems(run.planners_file) == []
    for path in run.company_files.values():                 # Data Docs samples hold every tenant's rows
        assert "data-docs=" not in path.read_text(encoding="utf-8"), path.name
