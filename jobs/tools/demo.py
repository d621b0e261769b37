"""Helpers of ``make run``: the landing window to ingest, and the closing summary of the lake.

    python -m jobs.tools.demo window    # prints: first_day last_day landing_root
    python -m jobs.tools.demo init      # creates every bronze/silver/ops table that does not exist yet
    python -m jobs.tools.demo summary   # tables written, row counts, rows quarantined, where they are, and the
                                  # Data Docs page of each table's latest quality-gate run
    python -m jobs.tools.demo kpis      # compact KPI summary per company and the plan targets
    python -m jobs.tools.demo report    # both
"""
from __future__ import annotations

import argparse
import re
import sys

from jobs.platform.settings import get_settings

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def landing_window(root=None) -> tuple[str, str]:
    """First and last delivery day of the landing zone (a folder, or a prefix in a bucket)."""
    from jobs.platform import storage

    settings = get_settings()
    root = settings.landing_root if root is None else root
    if storage.is_object_store(root):
        days = sorted({parts[1] for f in storage.list_files(settings, root)
                       if len(parts := f.rel_key.split("/")) == 3 and _DAY.match(parts[1])})
    else:
        days = sorted({d.name for src in root.iterdir() if src.is_dir() for d in src.iterdir() if _DAY.match(d.name)})
    if not days:
        sys.exit(f"no landing folders <source>/<yyyy-mm-dd> under {root}")
    return days[0], days[-1]


def init_lake() -> None:
    """Create every bronze, silver and ops table (empty, with its declared schema) so that DAGs started
    side by side only ever append to or MERGE into existing tables."""
    from jobs.platform import delta_log
    from jobs.platform.session import get_spark
    from schemas.tables import BRONZE, INGEST_AUDIT, INGESTED_FILES, QUARANTINE, SILVER

    spark = get_spark("init")
    for spec in (*BRONZE.values(), *SILVER.values(), QUARANTINE, INGESTED_FILES, INGEST_AUDIT):
        delta_log.ensure_table(spark, spec)


def print_summary() -> None:
    from pyspark.sql import functions as F

    from jobs.platform import delta_log, delta_tables
    from jobs.platform.session import get_spark
    from schemas.tables import BRONZE, QUARANTINE, SILVER

    settings = get_settings()
    spark = get_spark("summary")
    quarantine = {r["source"]: r["n"] for r in delta_tables.read_table(spark, QUARANTINE).groupBy("source")
                  .agg(F.count(F.lit(1)).alias("n")).collect()}
    print(f"\nLake root: {settings.lake_root}")
    print(f"{'source':<22}{'bronze rows':>12}{'silver rows':>12}{'quarantined':>12}  silver table")
    totals = [0, 0, 0]
    for source, spec in SILVER.items():
        if not delta_log.table_exists(spec):
            continue
        bronze_n = delta_tables.read_table(spark, BRONZE[source]).count()
        silver_n = delta_tables.read_table(spark, spec).count()
        q = quarantine.get(source, 0)
        totals = [totals[0] + bronze_n, totals[1] + silver_n, totals[2] + q]
        print(f"{source:<22}{bronze_n:>12,}{silver_n:>12,}{q:>12,}  {delta_log.table_path(spec)}")
    print(f"{'total':<22}{totals[0]:>12,}{totals[1]:>12,}{totals[2]:>12,}")
    print(f"Quarantine (reasons per row): {delta_log.table_path(QUARANTINE)}")
    print("\n".join(quality_lines(settings)))


def quality_lines(settings) -> list[str]:
    """Per silver table, the gate's verdict of its latest gate run and that run's Data Docs page."""
    from jobs.quality.validation import docs_dir_of, latest_gate_pages

    pages = latest_gate_pages(settings)
    if not pages:
        return ["\nData quality: no gate run has Data Docs yet"]
    lines = [f"\nData quality, latest gate run per table (Data Docs open offline: {docs_dir_of(settings) / 'index.html'})",
             f"{'table':<30}{'status':<22}{'validated (UTC)':<21}Data Docs page"]
    for table, p in sorted(pages.items()):
        lines.append(f"{table:<30}{p.status:<22}{p.validated_at:%Y-%m-%d %H:%M:%S}  {p.page}")
    return lines


def print_kpis() -> None:
    """Compact KPI summary per company: energy per tonne, utilisation, rail share vs target."""
    from pyspark.sql import functions as F

    from jobs.platform import delta_log
    from jobs.platform.session import get_spark
    from schemas.tables import TableSpec

    settings = get_settings()
    spark = get_spark("summary")

    def gold(name: str):
        spec = TableSpec(name, "gold", None)  # type: ignore[arg-type]
        return spark.read.format("delta").load(str(delta_log.table_path(spec))) if delta_log.table_exists(spec) else None

    tables = {n: gold(n) for n in ("gold_mine_energy_rollup_monthly", "gold_washing_rollup_monthly",
                                   "gold_charging_rollup_monthly", "gold_h2_rollup_monthly", "gold_rail_share_monthly",
                                   "gold_truck_energy_monthly", "gold_target_tracking")}
    if tables["gold_mine_energy_rollup_monthly"] is None:
        print("\nNo gold tables yet.")
        return
    company = F.col("scope_level") == "company"
    mine = {r["scope_id"]: r for r in tables["gold_mine_energy_rollup_monthly"].filter(company).collect()}
    month = max(r["month_start"] for r in mine.values())
    in_month = company & (F.col("month_start") == F.lit(month))
    charging = {r["scope_id"]: r for r in tables["gold_charging_rollup_monthly"].filter(in_month).collect()}
    h2 = {r["scope_id"]: r for r in tables["gold_h2_rollup_monthly"].filter(in_month).collect()}
    rail = {r["scope_id"]: r for r in tables["gold_rail_share_monthly"].filter(company).collect()}
    fleet = tables["gold_truck_energy_monthly"].groupBy("company_id", "powertrain").agg(
        F.first("battery_kwh_per_100km").alias("bev"), F.first("h2_kg_per_100km").alias("fcev"),
        F.first("diesel_l_per_100km").alias("diesel")).collect()
    per_100km = {}
    for r in fleet:
        value = {"BEV": r["bev"], "FCEV": r["fcev"], "DIESEL": r["diesel"]}.get(r["powertrain"])
        per_100km.setdefault(r["company_id"], {})[r["powertrain"]] = value

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(float(v), spec)

    print(f"\nKPI summary, month {month:%Y-%m} (gold tables under {settings.gold_root})")
    print(f"{'company':<8}{'mine kgce/t':>12}{'kWh/t':>8}{'charging time %':>16}{'energy %':>9}"
          f"{'H2 nameplate %':>15}{'BEV kWh/100km':>14}{'FCEV kg/100km':>14}{'rail >500km %':>14}{'target':>7}")
    for cid in sorted(set(mine) | set(rail) | set(charging)):
        m, c, r = mine.get(cid), charging.get(cid), rail.get(cid)
        p = per_100km.get(cid, {})
        target = "met" if r is not None and r["meets_target"] else ("gap" if r is not None else "-")
        print(f"{cid:<8}{fmt(m and m['energy_kgce_per_t'], '.3f'):>12}{fmt(m and m['electricity_kwh_per_t']):>8}"
              f"{fmt(c and c['time_based_utilisation_pct']):>16}{fmt(c and c['energy_based_utilisation_pct']):>9}"
              f"{fmt(h2.get(cid) and h2[cid]['nameplate_utilisation_pct']):>15}"
              f"{fmt(p.get('BEV')):>14}{fmt(p.get('FCEV')):>14}{fmt(r and r['rail_share_tonnes_pct']):>14}{target:>7}")
    tracking = tables["gold_target_tracking"]
    if tracking is not None:
        rows = tracking.filter(F.col("month_start") == F.lit(month)).orderBy("target_id").collect()
        print("\nPlan targets (city):")
        for t in rows:
            print(f"  {t['target_id']:<34}{fmt(t['current_value']):>8} vs "
                  f"{t['comparator']} {fmt(t['target_value'])} {t['unit'] or ''}: {t['status']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["window", "init", "summary", "kpis", "report"])
    args = parser.parse_args()
    if args.command == "window":
        first, last = landing_window()
        print(first, last, get_settings().landing_root)
        return
    if args.command == "init":
        init_lake()
        return
    if args.command in ("summary", "report"):
        print_summary()
    if args.command in ("kpis", "report"):
        print_kpis()


if __name__ == "__main__":
    main()
