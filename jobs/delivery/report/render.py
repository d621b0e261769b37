"""Transform: scoped month data → one self-contained HTML document (inline CSS, charts as data-URI PNGs).

The markup is in Jinja templates beside this module (``templates/``: the page, its building blocks as
macros, the captions that carry markup, the style sheet), rendered with autoescaping on: text from the
data is passed as text and escaped by the template, and only the output of the templates' own macros
(``Markup``) is inserted as it is. No external resource: every chart is embedded, links are in-page
anchors, except the planners' links to the lake's Data Docs pages (relative paths to local files).
Numbers are rounded here, for display only (grades were decided exactly in gold).
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from jobs.delivery.report import charts
from jobs.delivery.report.charts import Chart
from jobs.delivery.report.data import CITY_SCOPE_ID, MonthData, company_name, for_banner, versions

log = logging.getLogger(__name__)

# Loaded from the package (also from the executors' code zip); block tags on their own lines leave no
# white space, and an included file (the style sheet) keeps its last line break.
TEMPLATES = Environment(loader=PackageLoader("jobs.delivery.report", "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                        keep_trailing_newline=True)

GRADE_CLASS = {"level_1": "good", "level_2": "warn", "level_3": "bad", "above_limit": "bad"}
MAX_FAILURES_LISTED = 50
COMPARATORS = {">=": "≥", "<": "<", "<=": "≤", ">": ">"}
UNITS = {"pct": "%", "count": "", "Mt/yr": "Mt/yr", "kt/yr": "kt/yr", "gce/kWh": "gce/kWh"}
# Energy columns shown only for the powertrain they describe (a FCEV's battery figures mix regen and
# fuel-cell charging; a BEV has no hydrogen); other columns apply to every powertrain.
FLEET_RELEVANT = {"battery_kwh_per_100km": "BEV", "grid_kwh_per_100km": "BEV", "h2_kg_per_100km": "FCEV",
                  "diesel_l_per_100km": "DIESEL"}
VERSION_LABELS = {
    "factor_version": "conversion factors", "limits_version": "standards' limits",
    "process_factor_version": "washing process factors", "rule_version": "KPI rules",
    "target_version": "plan targets", "definition_version": "utilisation definitions",
    "model_version": "forecast model",
}


@functools.cache
def _macros(template: str):
    return TEMPLATES.get_template(template).module


def blocks():
    """The page's building blocks (templates/blocks.html.j2) as callables; each returns Markup."""
    return _macros("blocks.html.j2")


def texts():
    """The captions, leads and subtitles that carry markup (templates/texts.html.j2)."""
    return _macros("texts.html.j2")


def text(value) -> str:
    """A value shown as text (the template escapes it); missing shows as nothing."""
    return "" if value is None else str(value)


def join(parts: Iterable[str]) -> Markup:
    """Concatenated fragments: Markup stays as it is, plain text is escaped."""
    return Markup("").join(parts)


def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def num(v, digits: int = 1) -> str:
    """Display rounding only; missing values show as an en dash."""
    if is_missing(v):
        return "–"
    return f"{float(v):,.{digits}f}"


def pill(label: str, cls: str = "neutral") -> Markup:
    return blocks().pill(label, cls)


def grade_pill(grade) -> Markup:
    if is_missing(grade):
        return pill("no grade")
    return pill(str(grade).replace("_", " "), GRADE_CLASS.get(str(grade), "neutral"))


def first_row(df: pd.DataFrame, **equals) -> dict:
    for k, v in equals.items():
        df = df[df[k] == v]
    return df.iloc[0].to_dict() if len(df) else {}


# --- building blocks ----------------------------------------------------------------------------------
@dataclass
class Section:
    anchor: str
    title: str
    body: Markup
    lead: str | Markup = ""

    def html(self) -> Markup:
        return blocks().section(self)


class ChartSink:
    """Renders charts into figures and logs one progress line per chart."""

    def __init__(self, report: str):
        self.report = report
        self.count = 0

    def figure(self, chart: Chart | None, *, empty_title: str, empty_text: str, kind: str) -> Markup:
        if chart is None:
            return empty_panel(kind, empty_title, empty_text)
        self.count += 1
        log.info("report %s: chart %d %s: %s", self.report, self.count, chart.kind, chart.title)
        alt = f"{chart.title}. Plotted: {', '.join(chart.entities)}" if chart.entities else chart.title
        return blocks().figure(chart.kind, chart.entities, chart.png_base64, alt, chart.caption)


def empty_panel(kind: str, title: str, message: str) -> Markup:
    return blocks().empty_panel(kind, title, message)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = (), cls: str = "") -> Markup:
    """Cells are text (escaped) or Markup; ``numeric`` columns are right-aligned."""
    return blocks().table(list(headers), [list(r) for r in rows], list(numeric), cls)


def kpi_cell(key: str, value, digits: int) -> Markup:
    """A headline value, tagged with the KPI column it comes from (tests and readers can find it)."""
    return blocks().kpi(key, num(value, digits))


# --- sections shared by both reports -------------------------------------------------------------------
def mine_energy_section(d: MonthData, sink: ChartSink, *, anchor: str = "mine-energy", heading: str | None = None
                        ) -> Section:
    figures = []
    for mine_type in sorted(d.mine_daily["mine_type"].dropna().unique()) if len(d.mine_daily) else []:
        rows = d.mine_daily[d.mine_daily["mine_type"] == mine_type]
        standards = ", ".join(sorted(rows["standard"].dropna().unique())) or "no standard in force"
        basis = ", ".join(sorted(rows["electricity_basis"].dropna().unique()))
        review = bool(rows["limits_need_review"].fillna(False).any())
        caption = texts().mine_energy_caption(basis, standards, mine_type.replace("_", "-"), review)
        chart = charts.level_trend(
            rows, kind="energy_trend", date_col="shift_date", value_col="energy_kgce_per_t",
            numerator_col="energy_kgce", denominator_col="raw_coal_t",
            level_cols=("level_1_max_kgce_per_t", "level_2_max_kgce_per_t", "level_3_max_kgce_per_t"),
            entity_col="mine_id", label_col="mine_name",
            title=f"Energy per tonne, {mine_type.replace('_', '-')} mines", ylabel="energy per tonne (kgce/t)",
            unit="kgce/t", caption=caption)
        figures.append(sink.figure(chart, kind="energy_trend", empty_title="No energy data",
                                   empty_text=f"No {mine_type} mine reported energy and output this month."))
    if not figures:
        figures.append(empty_panel("energy_trend", "No mine production this month",
                                   "No mine energy rows in gold_mine_energy_daily for this period."))
    m = d.mine_monthly.sort_values(["banner", "mine_id"]) if len(d.mine_monthly) else d.mine_monthly
    rows = [[text(r.get("mine_id")), text(r.get("mine_name")), str(r.get("mine_type", "")).replace("_", "-"),
             text(r.get("banner")), num(r.get("raw_coal_t"), 0), num(r.get("energy_kgce_per_t"), 2),
             num(r.get("electricity_kwh_per_t"), 2), grade_pill(r.get("grade")),
             blocks().nowrap(text(r.get("standard")))]
            for r in m.to_dict("records")]
    tbl = table(["Mine", "Name", "Type", "Banner", "Raw coal (t)", "Energy (kgce/t)", "Electricity (kWh/t)",
                 "Grade (month)", "Standard"], rows, numeric=(4, 5, 6)) if rows else ""
    return Section(anchor, heading or "Mine energy per tonne vs GB 29445 levels", join([*figures, tbl]),
                   "Month grade per mine = the level whose limit the month's energy does not exceed, decided exactly "
                   "in gold (numerator ≤ limit × tonnes).")


def washing_section(d: MonthData, sink: ChartSink, *, anchor: str = "washing", heading: str | None = None) -> Section:
    figures = []
    w = d.washing_daily
    for coal_type in sorted(w["coal_type"].dropna().unique()) if len(w) else []:
        rows = w[w["coal_type"] == coal_type]
        standards = ", ".join(sorted(rows["standard"].dropna().unique())) or "no standard in force"
        chart = charts.level_trend(
            rows, kind="washing_trend", date_col="prod_date", value_col="gb29446_electricity_kwh_per_t",
            numerator_col="corrected_electricity_kwh", denominator_col="raw_coal_fed_t",
            level_cols=("level_1_max_kwh_per_t", "level_2_max_kwh_per_t", "level_3_max_kwh_per_t"),
            entity_col="plant_id", label_col="plant_name", title=f"Washing electricity per tonne, {coal_type} coal",
            ylabel="electricity per tonne fed (kWh/t)", unit="kWh/t",
            caption=texts().washing_caption(standards, coal_type))
        figures.append(sink.figure(chart, kind="washing_trend", empty_title="No washing data",
                                   empty_text=f"No {coal_type} plant fed raw coal this month."))
    if not figures:
        figures.append(empty_panel("washing_trend", "No washing plant data this month",
                                   "No rows in gold_washing_daily for this period."))
    m = d.washing_monthly.sort_values(["plant_id"]) if len(d.washing_monthly) else d.washing_monthly
    rows = [[text(r.get("plant_id")), text(r.get("plant_name")), text(r.get("coal_type")), text(r.get("process")),
             num(r.get("raw_coal_fed_t"), 0), num(r.get("gb29446_electricity_kwh_per_t"), 2), num(r.get("yield_pct"), 1),
             grade_pill(r.get("grade"))] for r in m.to_dict("records")]
    tbl = table(["Plant", "Name", "Coal", "Process", "Raw coal fed (t)", "GB 29446 e (kWh/t)", "Yield (%)",
                 "Grade (month)"], rows, numeric=(4, 5, 6)) if rows else ""
    return Section(anchor, heading or "Washing electricity per tonne vs GB 29446 levels", join([*figures, tbl]))


def charging_section(d: MonthData, sink: ChartSink, *, anchor: str = "charging", heading: str | None = None) -> Section:
    st = d.station_month.sort_values("station_id") if len(d.station_month) else d.station_month
    names = dict(zip(d.stations["station_id"], d.stations["station_name"]))
    stations = [(sid, str(names.get(sid) or sid)) for sid in sorted(d.heatmap["station_id"].dropna().unique())]
    unknown = st["status_unknown_pct"].max() if "status_unknown_pct" in st and len(st) else None
    caption = texts().charging_caption(num(unknown, 1) if not is_missing(unknown) and unknown > 0 else None)
    chart = charts.occupancy_heatmaps(d.heatmap, stations=stations, title="Charging occupancy by weekday and hour",
                                      caption=caption)
    fig = sink.figure(chart, kind="heatmap", empty_title="No charging station data",
                      empty_text="No rows in gold_charging_station_hourly for these stations this month.")
    rows = [[text(r.get("station_id")), text(names.get(r.get("station_id"), "")), text(r.get("banner")),
             num(r.get("connectors"), 0), num(r.get("occupancy_pct"), 1), num(r.get("time_based_utilisation_pct"), 1),
             num(r.get("energy_kwh"), 0), num(r.get("sessions"), 0), num(r.get("peak_concurrent_charging"), 0)]
            for r in st.to_dict("records")]
    tbl = table(["Station", "Name", "Banner", "Connectors", "Occupancy (%)", "Time-based utilisation (%)",
                 "Energy (kWh)", "Sessions", "Peak concurrent"], rows, numeric=(3, 4, 5, 6, 7, 8)) if rows else ""
    return Section(anchor, heading or "Charging station utilisation", join([fig, tbl]))


def flexibility_section(d: MonthData, sink: ChartSink, *, anchor: str = "flexibility", heading: str | None = None
                        ) -> Section:
    """Load flexibility of the month (docs/kpis.md §5a): the flexible share of the energy charged per weekday and
    hour, and per station the share and the station-day peaks a schedule using the slack would have removed."""
    fm = d.flex_station_month.sort_values("station_id") if len(d.flex_station_month) else d.flex_station_month
    names = dict(zip(d.stations["station_id"], d.stations["station_name"]))
    stations = [(sid, str(names.get(sid) or sid)) for sid in sorted(d.flex_heatmap["station_id"].dropna().unique())]
    chart = charts.flexibility_heatmaps(d.flex_heatmap, stations=stations,
                                        title="Flexible share of charging energy by weekday and hour",
                                        caption=texts().flexibility_caption())
    fig = sink.figure(chart, kind="flexibility", empty_title="No load flexibility data",
                      empty_text="No rows in gold_charging_flexibility_hourly for these stations this month.")
    rows = [[text(r.get("station_id")), text(names.get(r.get("station_id"), "")), num(r.get("as_charged_kwh"), 0),
             num(r.get("flexible_kwh"), 0), num(r.get("flexible_share_pct"), 1),
             num(r.get("max_day_peak_as_charged_kw"), 0), num(r.get("mean_day_peak_removed_kw"), 1),
             num(r.get("max_day_peak_removed_kw"), 0), num(r.get("capacity_exceeded_session_hours"), 0)]
            for r in fm.to_dict("records")]
    tbl = table(["Station", "Name", "Energy charged (kWh)", "Flexible (kWh)", "Flexible share (%)",
                 "Highest day peak (kW)", "Peak removed, mean day (kW)", "Peak removed, best day (kW)",
                 "Flagged session-hours"], rows, numeric=(2, 3, 4, 5, 6, 7, 8)) if rows else ""
    return Section(anchor, heading or "Load flexibility", join([fig, tbl]))


def forecast_section(d: MonthData, sink: ChartSink, *, anchor: str = "forecast", heading: str | None = None) -> Section:
    fc = d.forecast
    if fc.empty:
        why = ("the forecast table gold_charging_forecast does not exist yet" if not d.forecast_table_exists
               else "no forecast run in this month covers these stations")
        body = empty_panel("forecast", "No forecast available",
                           f"No charging forecast to show: {why}. The forecast_charging_demand DAG writes one run "
                           "per day once stations have session history.")
        return Section(anchor, heading or "Charging energy forecast", body)
    run = fc.iloc[0]
    names = dict(zip(d.stations["station_id"], d.stations["station_name"]))
    stations = [(sid, str(names.get(sid) or sid)) for sid in sorted(fc["station_id"].dropna().unique())]
    methods = ", ".join(sorted(fc["method"].dropna().unique()))
    caption = texts().forecast_caption(text(run["forecast_date_local"]), text(run["model_version"]), methods)
    chart = charts.forecast_bands(fc, d.forecast_actual, stations=stations, title="Charging energy forecast, next 7 days",
                                  caption=caption)
    body = sink.figure(chart, kind="forecast", empty_title="No forecast available", empty_text="No forecast rows.")
    totals = fc.groupby("station_id")[["p50_kwh"]].sum()
    rows = [[text(sid), text(names.get(sid, "")), num(totals.loc[sid, "p50_kwh"], 0)] for sid in totals.index]
    body += table(["Station", "Name", "Forecast P50, 168 h (kWh)"], rows, numeric=(2,))
    return Section(anchor, heading or "Charging energy forecast", body)


def fleet_section(d: MonthData, *, with_company: bool) -> Section:
    f = d.fleet.sort_values(["company_id", "powertrain"]) if len(d.fleet) else d.fleet
    cols = [("powertrain", "Powertrain", None), ("trucks", "Trucks", 0), ("distance_km", "Distance (km)", 0),
            ("delivered_t", "Delivered (t)", 0), ("battery_kwh_per_100km", "Battery (kWh/100 km)", 1),
            ("grid_kwh_per_100km", "Grid (kWh/100 km)", 1), ("h2_kg_per_100km", "H2 (kg/100 km)", 2),
            ("diesel_l_per_100km", "Diesel (L/100 km)", 1), ("integration_coverage_pct", "Telematics coverage (%)", 1)]
    if with_company:
        cols.insert(0, ("company_id", "Company", None))
    rows = [[text(r.get(c)) if digits is None else
             num(r.get(c), digits) if FLEET_RELEVANT.get(c, r.get("powertrain")) == r.get("powertrain") else "–"
             for c, _, digits in cols] for r in f.to_dict("records")]
    if not rows:
        return Section("fleet", "Truck fleet energy", empty_panel("fleet", "No truck data this month",
                                                                  "No rows in gold_truck_energy_monthly."))
    numeric = [i for i, (_, _, digits) in enumerate(cols) if digits is not None]
    return Section("fleet", "Truck fleet energy", table([h for _, h, _ in cols], rows, numeric=numeric),
                   "Per powertrain, month totals; intensities are ratios of the month's sums. Battery side: integrated "
                   "V × I over telematics; grid side: charging-session energy. FCEV energy is hydrogen.")


@dataclass(frozen=True)
class DocsLink:
    """A table's Data Docs page of its latest quality-gate run, as a link from the report's folder."""
    table: str
    status: str                     # the gate's verdict: passed / passed with warnings / failed
    run_id: str
    validated_at: dt.datetime
    href: str                       # relative to the report file (the site opens offline)


DOCS_STATUS_CLASS = {"passed": "good", "passed with warnings": "warn", "failed": "bad"}


def data_docs_links(links: Sequence[DocsLink]) -> Markup:
    if not links:
        return blocks().data_docs(None)
    rows = [[k.table, pill(k.status, DOCS_STATUS_CLASS.get(k.status, "neutral")), k.run_id,
             k.validated_at.strftime("%Y-%m-%d %H:%M UTC"), blocks().docs_link(k.href, k.table)] for k in links]
    return blocks().data_docs(table(["Table", "Gate", "Run", "Validated", "Page"], rows, cls="docs"))


def quality_section(d: MonthData, *, shared_note: bool, docs_links: Sequence[DocsLink] | None = None) -> Section:
    """``docs_links`` (planners only): links to the Data Docs pages, whose samples show every tenant's rows."""
    docs = Markup("") if docs_links is None else data_docs_links(docs_links)
    if not d.quality_table_exists or d.quality_counts.empty:
        why = ("no data-quality results are recorded in this lake (ops/quality_results)" if not d.quality_table_exists
               else "no validation run covers a day of this month")
        return Section("quality", "Data quality", empty_panel("quality", "No data-quality results for the period",
                                                              f"{why}.") + docs)
    q = d.quality_counts
    crit = q[q["severity"] == "critical"]
    warn = q[q["severity"] == "warning"]

    def n(df, success):
        return int(df.loc[df["success"] == success, "evaluations"].sum())

    f = d.quality_failures
    open_crit = int((~f["later_passed"].astype(bool)).sum()) if len(f) else 0
    status = (pill("critical failures", "bad") if open_crit else
              pill("all critical expectations passed" if n(crit, False) == 0 else "failures fixed by a later run", "good"))
    count = blocks().quality_count
    summary = table(
        ["Severity", "Passed", "Failed"],
        [["critical", count("critical_passed", f"{n(crit, True):,}"), count("critical_failed", f"{n(crit, False):,}")],
         ["warning", count("warning_passed", f"{n(warn, True):,}"), count("warning_failed", f"{n(warn, False):,}")]],
        numeric=(1, 2), cls="narrow")
    per_table = q.pivot_table(index="table_name", columns=["severity", "success"], values="evaluations", aggfunc="sum",
                              fill_value=0)

    def cell(t, sev, ok):
        return int(per_table.loc[t, (sev, ok)]) if (sev, ok) in per_table.columns else 0

    table_rows = [[text(t), f"{cell(t, 'critical', True) + cell(t, 'warning', True):,}",
                   f"{cell(t, 'critical', False):,}", f"{cell(t, 'warning', False):,}"] for t in per_table.index]
    tables = table(["Table", "Passed", "Failed critical", "Failed warning"], table_rows, numeric=(1, 2, 3))
    if len(f):
        listed = f.head(MAX_FAILURES_LISTED)
        fail_rows = [[text(r["table_name"]), text(r["expectation_type"]), text(r["column_name"] or "(table)"),
                      num(r["unexpected_count"], 0),
                      f"{r['first_day']} – {r['last_day']}" if r["first_day"] else "whole table",
                      text(r["run_id"]), pill("fixed by a later run", "good") if r["later_passed"] else pill("open", "bad")]
                     for r in listed.to_dict("records")]
        more = (blocks().note(f"… and {len(f) - MAX_FAILURES_LISTED} more (ops/quality_results).")
                if len(f) > MAX_FAILURES_LISTED else "")
        failures = blocks().titled("Critical failures", table(
            ["Table", "Expectation", "Column", "Unexpected rows", "Days", "Run", "Status"], fail_rows,
            numeric=(3,), cls="failures")) + more
    else:
        failures = blocks().note("No critical expectation failed in the period.")
    lead = texts().quality_lead(d.quality_runs, status, shared_note)
    return Section("quality", "Data quality", join([summary, tables, failures, docs]), lead)


def page(*, title: str, heading: str, subtitle: str | Markup, d: MonthData, generated_at: dt.datetime, kind: str,
         sections: Sequence[Section]) -> str:
    """The whole document: header (period, versions in the data), table of contents, sections, footer."""
    days = (f"{d.data_first_day:%d %b} – {d.data_last_day:%d %b %Y}" if d.data_first_day else "no daily data")
    meta = [("Period", f"{d.month:%B %Y} ({d.month:%Y-%m-%d} – {d.month_end:%Y-%m-%d})"), ("Days with data", days),
            ("Generated", generated_at.strftime("%Y-%m-%d %H:%M UTC")), ("Report", kind)]
    chips = [(VERSION_LABELS.get(k, k), ", ".join(v)) for k, v in versions(d).items()]
    return TEMPLATES.get_template("report.html.j2").render(
        title=title, heading=heading, subtitle=subtitle, meta=meta, versions=chips, sections=list(sections))


# --- the company report --------------------------------------------------------------------------------
def company_headline(d: MonthData, company_id: str) -> Section:
    me = first_row(d.mine_rollup)
    wa = first_row(d.washing_rollup)
    wr = first_row(d.washing_rate)
    ch = first_row(d.charging_rollup)
    h2 = first_row(d.h2_rollup)
    chain = first_row(d.chain_rollup)
    rail = first_row(d.rail, scope_level="company", month_start=d.month) if len(d.rail) else {}
    rows = []

    def add(label, key, value, digits, unit, against=""):
        rows.append([label, kpi_cell(key, value, digits), unit, against])

    grades = (f"mines at level 1 / 2 / 3 / above: {num(me.get('mines_level_1'), 0)} / {num(me.get('mines_level_2'), 0)}"
              f" / {num(me.get('mines_level_3'), 0)} / {num(me.get('mines_above_limit'), 0)}") if me else ""
    add("Raw coal produced", "raw_coal_t", me.get("raw_coal_t"), 0, "t")
    add("Mine comprehensive energy per tonne", "energy_kgce_per_t", me.get("energy_kgce_per_t"), 2, "kgce/t", grades)
    add("Mine electricity per tonne", "electricity_kwh_per_t", me.get("electricity_kwh_per_t"), 2, "kWh/t")
    add("Raw coal fed to washing", "raw_coal_fed_t", wa.get("raw_coal_fed_t"), 0, "t")
    add("Washing electricity per tonne (GB 29446, corrected)", "gb29446_electricity_kwh_per_t",
        wa.get("gb29446_electricity_kwh_per_t"), 2, "kWh/t",
        f"plants above limit: {num(wa.get('plants_above_limit'), 0)}" if wa else "")
    add("Washing yield", "yield_pct", wa.get("yield_pct"), 1, "%")
    add("Raw-coal washing rate", "raw_coal_washing_rate_pct", wr.get("raw_coal_washing_rate_pct"), 1, "%")
    rail_against = ""
    if rail:
        met = bool(rail.get("meets_target"))
        rail_against = join([pill("meets target" if met else "below target", "good" if met else "bad"),
                             f" target ≥ {num(rail.get('target_rail_share_pct'), 0)} %, gap "
                             f"{num(rail.get('gap_to_target_pct_points'), 1)} points"])
    add("Rail share of hauls > 500 km (tonnes)", "rail_share_tonnes_pct", rail.get("rail_share_tonnes_pct"), 1, "%",
        rail_against)
    add("Rail share of hauls > 500 km (tonne-km)", "rail_share_tonne_km_pct", rail.get("rail_share_tonne_km_pct"), 1, "%")
    add("Charging occupancy (plugged-in ÷ calendar time)", "occupancy_pct", ch.get("occupancy_pct"), 1, "%")
    add("Charging time-based utilisation (charging ÷ calendar time)", "time_based_utilisation_pct",
        ch.get("time_based_utilisation_pct"), 1, "%")
    add("Charging energy delivered", "charging_energy_kwh", ch.get("energy_kwh"), 0, "kWh",
        f"{num(ch.get('sessions'), 0)} sessions" if ch else "")
    add("Hydrogen dispensed", "h2_kg", h2.get("h2_kg"), 1, "kg",
        f"nameplate utilisation {num(h2.get('nameplate_utilisation_pct'), 1)} %" if h2 else "")
    add("Chain energy per delivered tonne (complete chains)", "complete_chain_kgce_per_t",
        chain.get("complete_chain_kgce_per_t"), 2, "kgce/t",
        f"complete chain for {num(chain.get('complete_share_pct'), 0)} % of tonnes" if chain else "")
    body = table(["KPI", "Value", "Unit", "Against standard / target"], rows, numeric=(1,), cls="kpi")
    return Section("headline", "Headline KPIs", body,
                   f"Company {company_id}, {d.month:%B %Y}. Company values are ratios of the month's sums over "
                   "its own mines, plants and stations; a dash means no data for the period.")


def rail_heading(d: MonthData) -> str:
    """The target in the heading comes from the rows (target_rail_share_pct), like the chart's line."""
    targets = sorted(d.rail.loc[d.rail["month_start"] == d.month, "target_rail_share_pct"].dropna().unique()) \
        if len(d.rail) else []
    return f"Rail share vs the {targets[0]:g} % target" if len(targets) == 1 else "Rail share vs the plan target"


def company_rail_section(d: MonthData, sink: ChartSink, company_id: str) -> Section:
    now = d.rail[d.rail["month_start"] == d.month].copy()
    names = dict(zip(d.mines["mine_id"], d.mines["mine_name"]))
    now["order"] = now["scope_level"].map({"company": 0, "mine": 1})
    now["label"] = [f"Company {sid}" if lvl == "company" else f"{sid} · {names.get(sid, sid)}"
                    for lvl, sid in zip(now["scope_level"], now["scope_id"])]
    now = now.sort_values(["order", "scope_id"])
    tv = ", ".join(sorted(d.rail["target_version"].dropna().unique()))
    rv = ", ".join(sorted(d.rail["rule_version"].dropna().unique()))
    caption = texts().company_rail_caption(rv, tv)
    parts = [sink.figure(charts.rail_share_bars(now, title="Rail share beyond 500 km, company and its mines",
                                                caption=caption),
                         kind="rail_share", empty_title="No long-haul shipments",
                         empty_text="No shipment of coal or coke beyond 500 km this month.")]
    trend = d.rail[d.rail["scope_level"] == "company"].copy()
    trend["label"] = "Company " + trend["scope_id"].astype(str)
    t = charts.rail_share_trend(trend, title="Rail share, last 12 months", caption="Monthly rail share by tonnes (%), "
                                "company total; dashed: target from the data.")
    if t is not None:
        parts.append(sink.figure(t, kind="rail_share_trend", empty_title="", empty_text=""))
    return Section("rail", rail_heading(d), join(parts))


def company_report(d: MonthData, *, company_id: str, generated_at: dt.datetime, report_name: str) -> str:
    """``d`` must already be scoped with :func:`jobs.delivery.report.data.for_company`."""
    if d.scope_company_id != company_id:
        raise ValueError("company_report needs data scoped to the company (jobs.delivery.report.data.for_company)")
    sink = ChartSink(report_name)
    name = company_name(d, company_id)
    plants = d.washing_monthly["plant_id"].nunique() if len(d.washing_monthly) else 0
    subtitle = texts().company_subtitle(company_id, len(d.mines), plants, len(d.stations))
    sections = [
        company_headline(d, company_id),
        mine_energy_section(d, sink),
        washing_section(d, sink),
        company_rail_section(d, sink, company_id),
        charging_section(d, sink),
        forecast_section(d, sink),
        fleet_section(d, with_company=False),
        quality_section(d, shared_note=True),
    ]
    return page(title=f"{name} · {d.month:%Y-%m} KPI report", heading=name, subtitle=subtitle, d=d,
                generated_at=generated_at, kind="company", sections=sections)


# --- the planners' report ------------------------------------------------------------------------------
def planners_headline(d: MonthData) -> Section:
    banners = sorted(set(d.mines["banner"].dropna()) | set(d.stations["banner"].dropna())
                     | set(d.mine_rollup.loc[d.mine_rollup["scope_level"] == "banner", "scope_id"]))
    rows = []
    for level, sid, label in [("city", CITY_SCOPE_ID, "Ordos (city)")] + [("banner", b, b) for b in banners]:
        def val(df, col):
            return first_row(df, scope_level=level, scope_id=sid).get(col)
        rail = first_row(d.rail, scope_level=level, scope_id=sid, month_start=d.month) if len(d.rail) else {}
        met = rail.get("meets_target")
        rail_cell = join([blocks().kpi("rail_share_tonnes_pct", num(rail.get("rail_share_tonnes_pct"), 1), text(sid)),
                          " ", "" if is_missing(met) or not rail else pill("met" if met else "below",
                                                                          "good" if met else "bad")])
        rows.append([blocks().bold(label) if level == "city" else label,
                     num(val(d.mine_rollup, "raw_coal_t"), 0), num(val(d.mine_rollup, "energy_kgce_per_t"), 2),
                     num(val(d.washing_rollup, "gb29446_electricity_kwh_per_t"), 2),
                     num(val(d.washing_rate, "raw_coal_washing_rate_pct"), 1), rail_cell,
                     num(val(d.charging_rollup, "occupancy_pct"), 1), num(val(d.h2_rollup, "h2_kg"), 0)])
    body = table(["Scope", "Raw coal (t)", "Mine energy (kgce/t)", "Washing e (kWh/t)", "Washing rate (%)",
                  "Rail share > 500 km (%)", "Charging occupancy (%)", "H2 dispensed (kg)"], rows,
                 numeric=(1, 2, 3, 4, 5, 6, 7), cls="kpi")
    return Section("headline", "Headline KPIs by banner", body,
                   f"{d.month:%B %Y}. Every value is a ratio of the month's sums over the banner's mines, plants and "
                   "stations (never a mean of ratios). Rail-share target from the data.")


def targets_section(d: MonthData) -> Section:
    t = d.targets.sort_values("target_id") if len(d.targets) else d.targets
    status_class = {"met": "good", "not_met": "bad"}
    rows = [[text(r.get("target_id")), text(r.get("description")),
             text(f"{COMPARATORS.get(r.get('comparator'), r.get('comparator'))} {num(r.get('target_value'), 0)}"
                  f" {UNITS.get(r.get('unit'), r.get('unit') or '')}".strip()
                  if not is_missing(r.get("target_value")) else r.get("comparator")),
             num(r.get("current_value"), 1), num(r.get("gap_to_target"), 1),
             pill(str(r.get("status")).replace("_", " "), status_class.get(str(r.get("status")), "neutral"))]
            for r in t.to_dict("records")]
    if not rows:
        return Section("targets", "Plan targets", empty_panel("targets", "No target tracking for this month",
                                                              "gold_target_tracking has no rows for the period."))
    return Section("targets", "Plan targets (Ordos carbon-peaking pilot plan, 2024)",
                   table(["Target", "Description", "Target", "Current", "Gap", "Status"], rows, numeric=(3, 4)),
                   "Gap in the target's unit, ≤ 0 = met. Targets that the data cannot measure say so.")


def planners_rail_section(d: MonthData, sink: ChartSink) -> Section:
    now = d.rail[(d.rail["month_start"] == d.month) & d.rail["scope_level"].isin(["city", "banner"])].copy()
    now["order"] = now["scope_level"].map({"city": 0, "banner": 1})
    now["label"] = [("Ordos (city)" if lvl == "city" else sid) for lvl, sid in zip(now["scope_level"], now["scope_id"])]
    now = now.sort_values(["order", "scope_id"])
    tv = ", ".join(sorted(d.rail["target_version"].dropna().unique()))
    caption = texts().planners_rail_caption(tv)
    parts = [sink.figure(charts.rail_share_bars(now, title="Rail share beyond 500 km by banner", caption=caption),
                         kind="rail_share", empty_title="No long-haul shipments",
                         empty_text="No shipment of coal or coke beyond 500 km this month.")]
    trend = d.rail[d.rail["scope_level"].isin(["city", "banner"])].copy()
    trend["label"] = [("Ordos (city)" if lvl == "city" else sid) for lvl, sid in zip(trend["scope_level"], trend["scope_id"])]
    t = charts.rail_share_trend(trend, title="Rail share, last 12 months",
                                caption="Monthly rail share by tonnes (%), city and banners; dashed: target from the data.")
    if t is not None:
        parts.append(sink.figure(t, kind="rail_share_trend", empty_title="", empty_text=""))
    comp = d.rail[(d.rail["month_start"] == d.month) & (d.rail["scope_level"] == "company")].sort_values("scope_id")
    rows = [[text(r["scope_id"]), blocks().kpi("rail_share_tonnes_pct", num(r["rail_share_tonnes_pct"], 1), text(r["scope_id"])),
             num(r["long_haul_t"], 0), pill("met", "good") if r["meets_target"] else pill("below", "bad")]
            for r in comp.to_dict("records")]
    if rows:
        parts.append(blocks().titled("By company", table(["Company", "Rail share (%)", "Long-haul tonnes (t)", "Target"],
                                                          rows, numeric=(1, 2), cls="narrow")))
    return Section("rail", rail_heading(d), join(parts))


def planners_report(d: MonthData, *, generated_at: dt.datetime, report_name: str = "planners",
                    docs_links: Sequence[DocsLink] = ()) -> str:
    sink = ChartSink(report_name)
    banners = sorted(set(d.mines["banner"].dropna()) | set(d.stations["banner"].dropna())
                     | set(d.washing_daily["banner"].dropna()) | set(d.heatmap["banner"].dropna()))
    sections = [planners_headline(d), targets_section(d), planners_rail_section(d, sink)]
    for banner in banners:
        b = for_banner(d, banner)
        slug = "banner-" + "".join(ch if ch.isalnum() else "-" for ch in banner.lower())
        companies = ", ".join(sorted(set(b.mines["company_id"].dropna()) | set(b.stations["company_id"].dropna())))
        # only what the banner has: a banner without a washing plant gets no empty washing panel
        parts = []
        if len(b.mines) or len(b.mine_daily):
            parts.append(mine_energy_section(b, sink, anchor="", heading="Mine energy per tonne"))
        if len(b.washing_daily) or len(b.washing_monthly):
            parts.append(washing_section(b, sink, anchor="", heading="Washing electricity per tonne"))
        if len(b.stations) or len(b.heatmap):
            parts.append(charging_section(b, sink, anchor="", heading="Charging station utilisation"))
            parts.append(flexibility_section(b, sink, anchor="", heading="Load flexibility"))
            parts.append(forecast_section(b, sink, anchor="", heading="Charging energy forecast"))
        inner = join(blocks().sub(p.title, p.body) for p in parts)
        sections.append(Section(slug, f"Banner: {banner}", inner, f"Companies with sites here: {companies or '–'}."))
    sections += [fleet_section(d, with_company=True), quality_section(d, shared_note=False, docs_links=docs_links)]
    subtitle = (f"All companies ({len(d.companies)}), grouped by banner ({len(banners)}) · "
                f"{len(d.mines)} mines, {len(d.stations)} charging stations")
    return page(title=f"Planners' overview · {d.month:%Y-%m} KPI report", heading="Planners' overview, Ordos",
                subtitle=subtitle, d=d, generated_at=generated_at, kind="planners (all companies)", sections=sections)
