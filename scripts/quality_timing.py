"""Time the data-quality gate against ingestion, delivery day by delivery day.

    python scripts/quality_timing.py [--landing data_samples/landing] [--lake /tmp/quality_timing_lake]
                                     [--days 2026-11-02 2026-11-03 ...] [--no-warmup] [--warmup-landing DIR]

Writes only to ``--lake`` (never the project's .lake). First a warm-up: the first day of ``--warmup-landing``
is ingested and validated into a throw-away lake, so the JVM, Delta and GX are warm for every measured day. Then, on a
fresh lake, each delivery day in order: ingest every domain, then validate what that ingestion touched,
as the DAGs do - each event table for the event dates it wrote, each dimension whole. Ingestion and
validation share one Spark session and alternate, so both see the same machine load. Prints one line
per table and the totals per day.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.quality import validation  # noqa: E402
from jobs.ingest.runner import ingest_domain  # noqa: E402
from jobs.platform.session import get_spark  # noqa: E402
from jobs.platform.settings import Settings, get_settings  # noqa: E402
from schemas.sources import DOMAINS, SOURCES  # noqa: E402

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def delivery_days(landing: Path) -> list[dt.date]:
    return sorted({dt.date.fromisoformat(d.name) for src in landing.iterdir() if src.is_dir()
                   for d in src.iterdir() if _DAY.match(d.name)})


def run_day(spark, day: dt.date, settings: Settings, *, verbose: bool = True) -> tuple[float, float, float]:
    """Ingest delivery day ``day``, validate what it touched; returns (ingest_s, read_s, gx_s)."""
    ingest_s, touched = 0.0, {}
    for domain in DOMAINS:
        t = time.perf_counter()
        for r in ingest_domain(spark, domain, day, day, settings):
            if r.silver_inserted or r.silver_updated:
                touched[r.source] = [dt.date.fromisoformat(d) for d in r.event_dates]
        ingest_s += time.perf_counter() - t
    if verbose:
        print(f"\ndelivery day {day}: ingestion of all domains {ingest_s:.1f} s", flush=True)
    read_s = gx_s = 0.0
    for source, dates in touched.items():
        result = validation.validate_day(spark, f"silver_{source}", dates, settings=settings, run_id=f"timing_{day}")
        read_s += result.read_s
        gx_s += result.validation_s
        if verbose:
            print(f"  silver_{source:<22} {result.rows_validated:>8} rows {len(result.outcomes):>3} expectations  "
                  f"read {result.read_s:6.2f} s  GX {result.validation_s:6.2f} s  "
                  f"{'ok' if result.success else 'CRITICAL'} ({len(result.warning_failures)} warnings)  "
                  f"dates {','.join(d.isoformat()[5:] for d in result.event_dates) or 'all'}", flush=True)
    if verbose:
        total = read_s + gx_s
        print(f"  validation {total:.1f} s (read+derive+cache {read_s:.1f} s, GX {gx_s:.1f} s) = "
              f"{100 * total / (total + ingest_s):.0f} % of ingestion + validation", flush=True)
    return ingest_s, read_s, gx_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, default=get_settings().landing_root)
    parser.add_argument("--lake", type=Path, default=Path("/tmp/quality_timing_lake"))
    parser.add_argument("--days", nargs="+", type=dt.date.fromisoformat, help="default: every delivery day")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--warmup-landing", type=Path, help="landing root of the warm-up (default: --landing)")
    args = parser.parse_args(argv)
    if args.lake.resolve() == get_settings().lake_root.resolve():
        sys.exit("refusing to write into the project's lake; pass another --lake")
    days = args.days or delivery_days(args.landing)
    spark = get_spark("quality-timing")
    if not args.no_warmup:
        warm_landing = args.warmup_landing or args.landing
        warm = Settings(lake_root=Path(f"{args.lake}_warmup"), landing_root=warm_landing)
        shutil.rmtree(warm.lake_root, ignore_errors=True)
        t = time.perf_counter()
        run_day(spark, delivery_days(warm_landing)[0], warm, verbose=False)
        print(f"warm-up (first day into a throw-away lake): {time.perf_counter() - t:.1f} s", flush=True)
        shutil.rmtree(warm.lake_root, ignore_errors=True)
    settings = Settings(lake_root=args.lake, landing_root=args.landing)
    shutil.rmtree(settings.lake_root, ignore_errors=True)
    totals = [run_day(spark, day, settings) for day in days]
    ingest_s, read_s, gx_s = (sum(t[i] for t in totals) for i in range(3))
    print(f"\nall {len(days)} days: ingestion {ingest_s:.1f} s, validation {read_s + gx_s:.1f} s "
          f"(read+derive+cache {read_s:.1f} s, GX {gx_s:.1f} s) = "
          f"{100 * (read_s + gx_s) / (ingest_s + read_s + gx_s):.0f} % of ingestion + validation")


if __name__ == "__main__":
    main()
