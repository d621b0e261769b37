"""Transform: scoped month data → one self-contained HTML document (inline CSS, charts as data-URI PNGs).

No template engine and no external resource: every string that comes from data goes through
:func:`esc`, every chart is embedded, links are in-page anchors, except the planners' links to the
lake's Data Docs pages (relative paths to local files). Numbers are rounded here, for
display only (grades were decided exactly in gold).
"""
from __future__ import annotations

import datetime as dt
import html
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from jobs.delivery.report import charts
from jobs.delivery.report.charts import Chart
from jobs.delivery.report.data import CITY_SCOPE_ID, MonthData, company_name, for_banner, versions

log = logging.getLogger(__name__)

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


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def num(v, digits: int = 1) -> str:
    """Display rounding only; missing values show as an en dash."""
    if is_missing(v):
        return "–"
    return f"{float(v):,.{digits}f}"


def pill(text: str, cls: str = "neutral") -> str:
    return f'<span class="pill {esc(cls)}">{esc(text)}</span>'


def grade_pill(grade) -> str:
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
    body: str
    lead: str = ""

    def html(self) -> str:
        lead = f'<p class="lead">{self.lead}</p>' if self.lead else ""
        return (f'<section class="card" id="{esc(self.anchor)}"><h2>{esc(self.title)}</h2>{lead}'
                f'{self.body}</section>')


class ChartSink:
    """Renders charts into figures and logs one progress line per chart."""

    def __init__(self, report: str):
        self.report = report
        self.count = 0

    def figure(self, chart: Chart | None, *, empty_title: str, empty_text: str, kind: str) -> str:
        if chart is None:
            return empty_panel(kind, empty_title, empty_text)
        self.count += 1
        log.info("report %s: chart %d %s: %s", self.report, self.count, chart.kind, chart.title)
        alt = f"{chart.title}. Plotted: {', '.join(chart.entities)}" if chart.entities else chart.title
        return (f'<figure class="chart" data-chart="{esc(chart.kind)}" data-entities="{esc(" ".join(chart.entities))}">'
                f'<img src="data:image/png;base64,{chart.png_base64}" alt="{esc(alt)}">'
                f'<figcaption>{chart.caption}</figcaption></figure>')


def empty_panel(kind: str, title: str, text: str) -> str:
    return (f'<div class="empty" data-empty="{esc(kind)}"><strong>{esc(title)}</strong>'
            f'<p>{text}</p></div>')


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = (), cls: str = "") -> str:
    """Cells are already-escaped HTML; ``numeric`` columns are right-aligned."""
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return (f'<div class="table-wrap"><table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def kpi_cell(key: str, value, digits: int) -> str:
    """A headline value, tagged with the KPI column it comes from (tests and readers can find it)."""
    return f'<span data-kpi="{esc(key)}">{num(value, digits)}</span>'


# --- sections shared by both reports -------------------------------------------------------------------
def mine_energy_section(d: MonthData, sink: ChartSink, *, anchor: str = "mine-energy", heading: str | None = None
                        ) -> Section:
    figures = []
    for mine_type in sorted(d.mine_daily["mine_type"].dropna().unique()) if len(d.mine_daily) else []:
        rows = d.mine_daily[d.mine_daily["mine_type"] == mine_type]
        standards = ", ".join(sorted(rows["standard"].dropna().unique())) or "no standard in force"
        basis = ", ".join(sorted(rows["electricity_basis"].dropna().unique()))
        review = " Limits flagged for review (<em>needs_review</em>)." if rows["limits_need_review"].fillna(False).any() else ""
        caption = (f"Comprehensive energy per tonne of raw coal (<b>kgce/t</b>) per mine and shift-day, electricity on the "
                   f"<b>{esc(basis)}</b> basis. Dashed lines: the maximum of levels 1 / 2 / 3 of <b>{esc(standards)}</b> "
                   f"for {esc(mine_type.replace('_', '-'))} mines in force on each day (level 1 is the most advanced); "
                   f"correction factors k1–k5 not applied.{review}")
        chart = charts.level_trend(
            rows, kind="energy_trend", date_col="shift_date", value_col="energy_kgce_per_t",
            numerator_col="energy_kgce", denominator_col="raw_coal_t",
            level_cols=("level_1_max_kgce_per_t", "level_2_max_kgce_per_t", "level_3_max_kgce_per_t"),
            entity_col="mine_id", label_col="mine_name",
            title=f"Energy per tonne, {mine_type.replace('_', '-')} mines", ylabel="energy per tonne (kgce/t)",
            unit="kgce/t", caption=caption)
        figures.append(sink.figure(chart, kind="energy_trend", empty_title="No energy data",
                                   empty_text=f"No {esc(mine_type)} mine reported energy and output this month."))
    if not figures:
        figures.append(empty_panel("energy_trend", "No mine production this month",
                                   "No mine energy rows in gold_mine_energy_daily for this period."))
    m = d.mine_monthly.sort_values(["banner", "mine_id"]) if len(d.mine_monthly) else d.mine_monthly
    rows = [[esc(r.get("mine_id")), esc(r.get("mine_name")), esc(str(r.get("mine_type", "")).replace("_", "-")),
             esc(r.get("banner")), num(r.get("raw_coal_t"), 0), num(r.get("energy_kgce_per_t"), 2),
             num(r.get("electricity_kwh_per_t"), 2), grade_pill(r.get("grade")),
             f'<span class="nowrap">{esc(r.get("standard"))}</span>']
            for r in m.to_dict("records")]
    tbl = table(["Mine", "Name", "Type", "Banner", "Raw coal (t)", "Energy (kgce/t)", "Electricity (kWh/t)",
                 "Grade (month)", "Standard"], rows, numeric=(4, 5, 6)) if rows else ""
    return Section(anchor, heading or "Mine energy per tonne vs GB 29445 levels", "".join(figures) + tbl,
                   "Month grade per mine = the level whose limit the month's energy does not exceed, decided exactly "
                   "in gold (numerator ≤ limit × tonnes).")


def washing_section(d: MonthData, sink: ChartSink, *, anchor: str = "washing", heading: str | None = None) -> Section:
    figures = []
    w = d.washing_daily
    for coal_type in sorted(w["coal_type"].dropna().unique()) if len(w) else []:
        rows = w[w["coal_type"] == coal_type]
        standards = ", ".join(sorted(rows["standard"].dropna().unique())) or "no standard in force"
        caption = (f"Washing electricity per tonne of raw coal fed, corrected by the process factor k of GB 29446-2019 "
                   f"(e = E × k ÷ raw coal fed, <b>kWh/t</b>), per plant and production day. Dashed lines: the maximum of "
                   f"levels 1 / 2 / 3 of <b>{esc(standards)}</b> for {esc(coal_type)} coal. Days without feed have no value.")
        chart = charts.level_trend(
            rows, kind="washing_trend", date_col="prod_date", value_col="gb29446_electricity_kwh_per_t",
            numerator_col="corrected_electricity_kwh", denominator_col="raw_coal_fed_t",
            level_cols=("level_1_max_kwh_per_t", "level_2_max_kwh_per_t", "level_3_max_kwh_per_t"),
            entity_col="plant_id", label_col="plant_name", title=f"Washing electricity per tonne, {coal_type} coal",
            ylabel="electricity per tonne fed (kWh/t)", unit="kWh/t", caption=caption)
        figures.append(sink.figure(chart, kind="washing_trend", empty_title="No washing data",
                                   empty_text=f"No {esc(coal_type)} plant fed raw coal this month."))
    if not figures:
        figures.append(empty_panel("washing_trend", "No washing plant data this month",
                                   "No rows in gold_washing_daily for this period."))
    m = d.washing_monthly.sort_values(["plant_id"]) if len(d.washing_monthly) else d.washing_monthly
    rows = [[esc(r.get("plant_id")), esc(r.get("plant_name")), esc(r.get("coal_type")), esc(r.get("process")),
             num(r.get("raw_coal_fed_t"), 0), num(r.get("gb29446_electricity_kwh_per_t"), 2), num(r.get("yield_pct"), 1),
             grade_pill(r.get("grade"))] for r in m.to_dict("records")]
    tbl = table(["Plant", "Name", "Coal", "Process", "Raw coal fed (t)", "GB 29446 e (kWh/t)", "Yield (%)",
                 "Grade (month)"], rows, numeric=(4, 5, 6)) if rows else ""
    return Section(anchor, heading or "Washing electricity per tonne vs GB 29446 levels", "".join(figures) + tbl)


def charging_section(d: MonthData, sink: ChartSink, *, anchor: str = "charging", heading: str | None = None) -> Section:
    st = d.station_month.sort_values("station_id") if len(d.station_month) else d.station_month
    names = dict(zip(d.stations["station_id"], d.stations["station_name"]))
    stations = [(sid, str(names.get(sid) or sid)) for sid in sorted(d.heatmap["station_id"].dropna().unique())]
    unknown = st["status_unknown_pct"].max() if "status_unknown_pct" in st and len(st) else None
    unknown_note = (f" Up to {num(unknown, 1)} % of a station's connector time had no known status (before its first "
                    f"status event): the values are lower bounds." if not is_missing(unknown) and unknown > 0 else "")
    caption = ("<b>Occupancy</b> = plugged-in time ÷ calendar time (T/CEC 102 status 2 + 3), in <b>%</b>, per weekday "
               "and local hour, as the ratio of the month's sums over all connectors of the station; grey = no data "
               "(no known status) for that weekday and hour. Time-based utilisation (charging only) is in the table."
               + unknown_note)
    chart = charts.occupancy_heatmaps(d.heatmap, stations=stations, title="Charging occupancy by weekday and hour",
                                      caption=caption)
    fig = sink.figure(chart, kind="heatmap", empty_title="No charging station data",
                      empty_text="No rows in gold_charging_station_hourly for these stations this month.")
    rows = [[esc(r.get("station_id")), esc(names.get(r.get("station_id"), "")), esc(r.get("banner")),
             num(r.get("connectors"), 0), num(r.get("occupancy_pct"), 1), num(r.get("time_based_utilisation_pct"), 1),
             num(r.get("energy_kwh"), 0), num(r.get("sessions"), 0), num(r.get("peak_concurrent_charging"), 0)]
            for r in st.to_dict("records")]
    tbl = table(["Station", "Name", "Banner", "Connectors", "Occupancy (%)", "Time-based utilisation (%)",
                 "Energy (kWh)", "Sessions", "Peak concurrent"], rows, numeric=(3, 4, 5, 6, 7, 8)) if rows else ""
    return Section(anchor, heading or "Charging station utilisation", fig + tbl)


def forecast_section(d: MonthData, sink: ChartSink, *, anchor: str = "forecast", heading: str | None = None) -> Section:
    fc = d.forecast
    if fc.empty:
        why = ("the forecast table gold_charging_forecast does not exist yet" if not d.forecast_table_exists
               else "no forecast run in this month covers these stations")
        body = empty_panel("forecast", "No forecast available",
                           f"No charging forecast to show: {esc(why)}. The forecast_charging_demand DAG writes one run "
                           "per day once stations have session history.")
        return Section(anchor, heading or "Charging energy forecast", body)
    run = fc.iloc[0]
    names = dict(zip(d.stations["station_id"], d.stations["station_name"]))
    stations = [(sid, str(names.get(sid) or sid)) for sid in sorted(fc["station_id"].dropna().unique())]
    methods = ", ".join(sorted(fc["method"].dropna().unique()))
    caption = (f"Hourly charging energy (<b>kWh per hour</b>) forecast by run <b>{esc(run['forecast_date_local'])}</b> "
               f"(the latest of the month; model {esc(run['model_version'])}, method {esc(methods)}) for the 168 hours "
               "after that day's local midnight. Line: P50 (median); band: P10–P90 (80 % interval); dots: actual "
               "energy where gold already has the hour.")
    chart = charts.forecast_bands(fc, d.forecast_actual, stations=stations, title="Charging energy forecast, next 7 days",
                                  caption=caption)
    body = sink.figure(chart, kind="forecast", empty_title="No forecast available", empty_text="No forecast rows.")
    totals = fc.groupby("station_id")[["p50_kwh"]].sum()
    rows = [[esc(sid), esc(names.get(sid, "")), num(totals.loc[sid, "p50_kwh"], 0)] for sid in totals.index]
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
    rows = [[esc(r.get(c)) if digits is None else
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


def data_docs_links(links: Sequence[DocsLink]) -> str:
    if not links:
        return ('<p class="note" data-docs="none">No quality-gate run has Data Docs in this lake yet '
                "(quality/data_docs).</p>")
    rows = [[esc(k.table), pill(k.status, DOCS_STATUS_CLASS.get(k.status, "neutral")), esc(k.run_id),
             esc(k.validated_at.strftime("%Y-%m-%d %H:%M UTC")),
             f'<a href="{esc(k.href)}" data-docs="{esc(k.table)}">Data Docs page</a>'] for k in links]
    return ("<h3>Data Docs of the latest gate run</h3>"
            '<p class="note">Great Expectations\' pages of the gate\'s latest validation of each table (every '
            "expectation, failed rows' sample values); they open offline where the lake's quality/data_docs "
            "folder sits beside this report's folder as written.</p>"
            + table(["Table", "Gate", "Run", "Validated", "Page"], rows, cls="docs"))


def quality_section(d: MonthData, *, shared_note: bool, docs_links: Sequence[DocsLink] | None = None) -> Section:
    """``docs_links`` (planners only): links to the Data Docs pages, whose samples show every tenant's rows."""
    docs = "" if docs_links is None else data_docs_links(docs_links)
    if not d.quality_table_exists or d.quality_counts.empty:
        why = ("no data-quality results are recorded in this lake (ops/quality_results)" if not d.quality_table_exists
               else "no validation run covers a day of this month")
        return Section("quality", "Data quality", empty_panel("quality", "No data-quality results for the period",
                                                              f"{esc(why)}.") + docs)
    q = d.quality_counts
    crit = q[q["severity"] == "critical"]
    warn = q[q["severity"] == "warning"]

    def n(df, success):
        return int(df.loc[df["success"] == success, "evaluations"].sum())

    f = d.quality_failures
    open_crit = int((~f["later_passed"].astype(bool)).sum()) if len(f) else 0
    status = (pill("critical failures", "bad") if open_crit else
              pill("all critical expectations passed" if n(crit, False) == 0 else "failures fixed by a later run", "good"))
    summary = table(
        ["Severity", "Passed", "Failed"],
        [["critical", f'<span data-quality="critical_passed">{n(crit, True):,}</span>',
          f'<span data-quality="critical_failed">{n(crit, False):,}</span>'],
         ["warning", f'<span data-quality="warning_passed">{n(warn, True):,}</span>',
          f'<span data-quality="warning_failed">{n(warn, False):,}</span>']], numeric=(1, 2), cls="narrow")
    per_table = q.pivot_table(index="table_name", columns=["severity", "success"], values="evaluations", aggfunc="sum",
                              fill_value=0)

    def cell(t, sev, ok):
        return int(per_table.loc[t, (sev, ok)]) if (sev, ok) in per_table.columns else 0

    table_rows = [[esc(t), f"{cell(t, 'critical', True) + cell(t, 'warning', True):,}",
                   f"{cell(t, 'critical', False):,}", f"{cell(t, 'warning', False):,}"] for t in per_table.index]
    tables = table(["Table", "Passed", "Failed critical", "Failed warning"], table_rows, numeric=(1, 2, 3))
    if len(f):
        listed = f.head(MAX_FAILURES_LISTED)
        fail_rows = [[esc(r["table_name"]), esc(r["expectation_type"]), esc(r["column_name"] or "(table)"),
                      num(r["unexpected_count"], 0),
                      esc(f"{r['first_day']} – {r['last_day']}" if r["first_day"] else "whole table"),
                      esc(r["run_id"]), pill("fixed by a later run", "good") if r["later_passed"] else pill("open", "bad")]
                     for r in listed.to_dict("records")]
        more = (f'<p class="note">… and {len(f) - MAX_FAILURES_LISTED} more (ops/quality_results).</p>'
                if len(f) > MAX_FAILURES_LISTED else "")
        failures = "<h3>Critical failures</h3>" + table(
            ["Table", "Expectation", "Column", "Unexpected rows", "Days", "Run", "Status"], fail_rows,
            numeric=(3,), cls="failures") + more
    else:
        failures = '<p class="note">No critical expectation failed in the period.</p>'
    note = (" These are checks of the shared pipeline tables (all tenants' rows); sample values are not shown here "
            "(see the Data Docs)." if shared_note else "")
    lead = (f"{d.quality_runs} validation run(s) covering days of this month; expectation evaluations of "
            f"ops/quality_results (Great Expectations). {status}{note}")
    return Section("quality", "Data quality", summary + tables + failures + docs, lead)


def header_html(*, title: str, subtitle: str, d: MonthData, generated_at: dt.datetime, kind: str) -> str:
    days = (f"{d.data_first_day:%d %b} – {d.data_last_day:%d %b %Y}" if d.data_first_day else "no daily data")
    meta = [("Period", f"{d.month:%B %Y} ({d.month:%Y-%m-%d} – {d.month_end:%Y-%m-%d})"), ("Days with data", days),
            ("Generated", generated_at.strftime("%Y-%m-%d %H:%M UTC")), ("Report", kind)]
    meta_html = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in meta)
    vs = versions(d)
    chips = "".join(f'<span class="chip"><b>{esc(VERSION_LABELS.get(k, k))}</b> {esc(", ".join(v))}</span>'
                    for k, v in vs.items()) or '<span class="chip">no versioned rows</span>'
    return (f'<header class="top"><div class="wrap"><p class="eyebrow">Ordos coal chain · monthly KPI report</p>'
            f'<h1>{esc(title)}</h1><p class="subtitle">{subtitle}</p><dl class="meta">{meta_html}</dl>'
            f'<div class="versions" data-versions="1"><span class="chip-label">Versions in the data:</span>{chips}</div>'
            f"</div></header>")


def page(*, title: str, header: str, sections: Sequence[Section]) -> str:
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections if s.anchor)
    body = "".join(s.html() for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body>{header}"
            f'<nav class="toc"><div class="wrap">{nav}</div></nav><main class="wrap">{body}</main>'
            f'<footer class="wrap">Self-contained report: no external resources. Figures are rounded for display; '
            f"grades and target checks were decided exactly in the gold tables. KPI definitions: docs/kpis.md."
            f"</footer></body></html>")


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
        rows.append([esc(label), kpi_cell(key, value, digits), esc(unit), against])

    grades = (f"mines at level 1 / 2 / 3 / above: {num(me.get('mines_level_1'), 0)} / {num(me.get('mines_level_2'), 0)}"
              f" / {num(me.get('mines_level_3'), 0)} / {num(me.get('mines_above_limit'), 0)}") if me else ""
    add("Raw coal produced", "raw_coal_t", me.get("raw_coal_t"), 0, "t")
    add("Mine comprehensive energy per tonne", "energy_kgce_per_t", me.get("energy_kgce_per_t"), 2, "kgce/t", esc(grades))
    add("Mine electricity per tonne", "electricity_kwh_per_t", me.get("electricity_kwh_per_t"), 2, "kWh/t")
    add("Raw coal fed to washing", "raw_coal_fed_t", wa.get("raw_coal_fed_t"), 0, "t")
    add("Washing electricity per tonne (GB 29446, corrected)", "gb29446_electricity_kwh_per_t",
        wa.get("gb29446_electricity_kwh_per_t"), 2, "kWh/t",
        esc(f"plants above limit: {num(wa.get('plants_above_limit'), 0)}") if wa else "")
    add("Washing yield", "yield_pct", wa.get("yield_pct"), 1, "%")
    add("Raw-coal washing rate", "raw_coal_washing_rate_pct", wr.get("raw_coal_washing_rate_pct"), 1, "%")
    rail_against = ""
    if rail:
        met = bool(rail.get("meets_target"))
        rail_against = (pill("meets target" if met else "below target", "good" if met else "bad")
                        + esc(f" target ≥ {num(rail.get('target_rail_share_pct'), 0)} %, gap "
                              f"{num(rail.get('gap_to_target_pct_points'), 1)} points"))
    add("Rail share of hauls > 500 km (tonnes)", "rail_share_tonnes_pct", rail.get("rail_share_tonnes_pct"), 1, "%",
        rail_against)
    add("Rail share of hauls > 500 km (tonne-km)", "rail_share_tonne_km_pct", rail.get("rail_share_tonne_km_pct"), 1, "%")
    add("Charging occupancy (plugged-in ÷ calendar time)", "occupancy_pct", ch.get("occupancy_pct"), 1, "%")
    add("Charging time-based utilisation (charging ÷ calendar time)", "time_based_utilisation_pct",
        ch.get("time_based_utilisation_pct"), 1, "%")
    add("Charging energy delivered", "charging_energy_kwh", ch.get("energy_kwh"), 0, "kWh",
        esc(f"{num(ch.get('sessions'), 0)} sessions") if ch else "")
    add("Hydrogen dispensed", "h2_kg", h2.get("h2_kg"), 1, "kg",
        esc(f"nameplate utilisation {num(h2.get('nameplate_utilisation_pct'), 1)} %") if h2 else "")
    add("Chain energy per delivered tonne (complete chains)", "complete_chain_kgce_per_t",
        chain.get("complete_chain_kgce_per_t"), 2, "kgce/t",
        esc(f"complete chain for {num(chain.get('complete_share_pct'), 0)} % of tonnes") if chain else "")
    body = table(["KPI", "Value", "Unit", "Against standard / target"], rows, numeric=(1,), cls="kpi")
    return Section("headline", "Headline KPIs", body,
                   f"Company {esc(company_id)}, {d.month:%B %Y}. Company values are ratios of the month's sums over "
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
    caption = ("Share of the tonnes of coal and coke hauled beyond 500 km that went by rail (<b>%</b>); a multimodal "
               "haul counts as rail when rail carries at least half of its km (rules " + esc(rv) + "). Dashed line: the "
               "target from plan_targets (" + esc(tv) + ").")
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
    return Section("rail", rail_heading(d), "".join(parts))


def company_report(d: MonthData, *, company_id: str, generated_at: dt.datetime, report_name: str) -> str:
    """``d`` must already be scoped with :func:`jobs.delivery.report.data.for_company`."""
    if d.scope_company_id != company_id:
        raise ValueError("company_report needs data scoped to the company (jobs.delivery.report.data.for_company)")
    sink = ChartSink(report_name)
    name = company_name(d, company_id)
    subtitle = (f"Company <b>{esc(company_id)}</b> · {len(d.mines)} mine(s), "
                f"{d.washing_monthly['plant_id'].nunique() if len(d.washing_monthly) else 0} washing plant(s) with data, "
                f"{len(d.stations)} charging station(s)")
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
    header = header_html(title=name, subtitle=subtitle, d=d, generated_at=generated_at, kind="company")
    return page(title=f"{name} · {d.month:%Y-%m} KPI report", header=header, sections=sections)


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
        rows.append([f'<b>{esc(label)}</b>' if level == "city" else esc(label),
                     num(val(d.mine_rollup, "raw_coal_t"), 0), num(val(d.mine_rollup, "energy_kgce_per_t"), 2),
                     num(val(d.washing_rollup, "gb29446_electricity_kwh_per_t"), 2),
                     num(val(d.washing_rate, "raw_coal_washing_rate_pct"), 1),
                     f'<span data-kpi="rail_share_tonnes_pct" data-scope="{esc(sid)}">'
                     f'{num(rail.get("rail_share_tonnes_pct"), 1)}</span> '
                     + ("" if is_missing(met) or not rail else pill("met" if met else "below", "good" if met else "bad")),
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
    rows = [[esc(r.get("target_id")), esc(r.get("description")),
             esc(f"{COMPARATORS.get(r.get('comparator'), r.get('comparator'))} {num(r.get('target_value'), 0)}"
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
    caption = ("Share of the tonnes of coal and coke hauled beyond 500 km that went by rail (<b>%</b>), city and banners; "
               "dashed line: the target from plan_targets (" + esc(tv) + ").")
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
    rows = [[esc(r["scope_id"]), f'<span data-kpi="rail_share_tonnes_pct" data-scope="{esc(r["scope_id"])}">'
             f'{num(r["rail_share_tonnes_pct"], 1)}</span>', num(r["long_haul_t"], 0),
             pill("met", "good") if r["meets_target"] else pill("below", "bad")] for r in comp.to_dict("records")]
    if rows:
        parts.append("<h3>By company</h3>" + table(["Company", "Rail share (%)", "Long-haul tonnes (t)", "Target"],
                                                   rows, numeric=(1, 2), cls="narrow"))
    return Section("rail", rail_heading(d), "".join(parts))


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
            parts.append(forecast_section(b, sink, anchor="", heading="Charging energy forecast"))
        inner = "".join(f'<div class="sub"><h3>{esc(p.title)}</h3>{p.body}</div>' for p in parts)
        sections.append(Section(slug, f"Banner: {banner}", inner, f"Companies with sites here: {esc(companies or '–')}."))
    sections += [fleet_section(d, with_company=True), quality_section(d, shared_note=False, docs_links=docs_links)]
    subtitle = (f"All companies ({len(d.companies)}), grouped by banner ({len(banners)}) · "
                f"{len(d.mines)} mines, {len(d.stations)} charging stations")
    header = header_html(title="Planners' overview, Ordos", subtitle=subtitle, d=d, generated_at=generated_at,
                         kind="planners (all companies)")
    return page(title=f"Planners' overview · {d.month:%Y-%m} KPI report", header=header, sections=sections)


CSS = """
:root{--ink:#1c2833;--muted:#5d6d7e;--line:#e3e8ee;--bg:#f4f6f8;--card:#ffffff;--accent:#1f4e79;
--good:#2e7d32;--good-bg:#e8f5e9;--warn:#ef6c00;--warn-bg:#fff3e0;--bad:#c62828;--bad-bg:#ffebee}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",
Arial,"Noto Sans","DejaVu Sans",sans-serif}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
header.top{background:linear-gradient(135deg,#1f4e79,#2c6e8f);color:#fff;padding:28px 0 20px}
.eyebrow{margin:0;text-transform:uppercase;letter-spacing:.08em;font-size:12px;opacity:.8}
h1{margin:4px 0 2px;font-size:28px}
.subtitle{margin:0 0 14px;opacity:.92}
dl.meta{display:flex;flex-wrap:wrap;gap:10px 28px;margin:0 0 12px}
dl.meta div{min-width:150px}
dl.meta dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;opacity:.75}
dl.meta dd{margin:0;font-weight:600}
.versions{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.chip-label{font-size:12px;opacity:.8;margin-right:4px}
.chip{background:rgba(255,255,255,.15);border:1px solid rgba(255,255,255,.3);border-radius:999px;padding:2px 10px;
font-size:12px}
nav.toc{background:#fff;border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
nav.toc .wrap{display:flex;flex-wrap:wrap;gap:4px 18px;padding-top:8px;padding-bottom:8px}
nav.toc a{color:var(--accent);text-decoration:none;font-size:13px;font-weight:600}
main{padding-top:20px;padding-bottom:12px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:0 0 18px;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
h2{margin:0 0 6px;font-size:19px;color:var(--accent)}
h3{margin:16px 0 8px;font-size:15px}
.lead{margin:0 0 12px;color:var(--muted);font-size:14px}
.sub{border-top:1px solid var(--line);margin-top:12px}
figure.chart{margin:10px 0 16px}
figure.chart img{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
figcaption{color:var(--muted);font-size:13px;margin-top:6px;max-width:980px}
.table-wrap{overflow-x:auto;margin:8px 0 4px}
table{border-collapse:collapse;width:100%;font-size:14px}
table.narrow{width:auto;min-width:360px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f8fafc;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
.nowrap{white-space:nowrap}
table.kpi td:first-child{font-weight:600}
table.kpi td.num span{font-size:16px;font-weight:700}
tbody tr:hover{background:#fafcff}
.pill{display:inline-block;white-space:nowrap;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;
margin-right:6px;
background:#eceff1;color:#37474f}
.pill.good{background:var(--good-bg);color:var(--good)}
.pill.warn{background:var(--warn-bg);color:var(--warn)}
.pill.bad{background:var(--bad-bg);color:var(--bad)}
.empty{border:1px dashed #b0bec5;background:#fafbfc;border-radius:8px;padding:18px 20px;margin:10px 0;color:var(--muted)}
.empty strong{color:var(--ink);font-size:15px}
.empty p{margin:4px 0 0}
.note{color:var(--muted);font-size:13px}
footer{color:var(--muted);font-size:12px;padding-bottom:28px}
@media print{nav.toc{display:none}section.card{break-inside:avoid;box-shadow:none}}
"""
