"""Helpers of ``make run``: the landing window to ingest, and the closing summary of the lake.

    python -m jobs.demo window    # prints: first_day last_day landing_root
    python -m jobs.demo summary   # tables written, row counts, rows quarantined, where they are
"""
from __future__ import annotations

import argparse
import re
import sys

from jobs.settings import get_settings

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def landing_window() -> tuple[str, str]:
    root = get_settings().landing_root
    days = sorted({d.name for src in root.iterdir() if src.is_dir() for d in src.iterdir() if _DAY.match(d.name)})
    if not days:
        sys.exit(f"no landing folders <source>/<yyyy-mm-dd> under {root}")
    return days[0], days[-1]


def print_summary() -> None:
    from pyspark.sql import functions as F

    from jobs import io
    from jobs.session import get_spark
    from schemas.tables import BRONZE, QUARANTINE, SILVER

    settings = get_settings()
    spark = get_spark("summary")
    quarantine = {r["source"]: r["n"] for r in io.read_table(spark, QUARANTINE).groupBy("source")
                  .agg(F.count(F.lit(1)).alias("n")).collect()}
    print(f"\nLake root: {settings.lake_root}")
    print(f"{'source':<22}{'bronze rows':>12}{'silver rows':>12}{'quarantined':>12}  silver table")
    totals = [0, 0, 0]
    for source, spec in SILVER.items():
        if not io.table_exists(spec):
            continue
        bronze_n = io.read_table(spark, BRONZE[source]).count()
        silver_n = io.read_table(spark, spec).count()
        q = quarantine.get(source, 0)
        totals = [totals[0] + bronze_n, totals[1] + silver_n, totals[2] + q]
        print(f"{source:<22}{bronze_n:>12,}{silver_n:>12,}{q:>12,}  {io.table_path(spec)}")
    print(f"{'total':<22}{totals[0]:>12,}{totals[1]:>12,}{totals[2]:>12,}")
    print(f"Quarantine (reasons per row): {io.table_path(QUARANTINE)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["window", "summary"])
    args = parser.parse_args()
    if args.command == "window":
        first, last = landing_window()
        print(first, last, get_settings().landing_root)
    else:
        print_summary()


if __name__ == "__main__":
    main()
