"""Write the month's HTML reports: extract once (Spark) → scope per company → render → write atomically.

    python -m jobs.delivery.report --month 2026-11
    python -m jobs.delivery.report --latest

Exit codes: 0 written; 1 no gold data for the month (or no gold at all); 2 usage error (bad month).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pyspark.sql import SparkSession

from jobs.delivery.company_keys import company_key
from jobs.delivery.report import data as report_data
from jobs.delivery.report import render
from jobs.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)
EXIT_OK, EXIT_NO_DATA, EXIT_USAGE = 0, 1, 2
PLANNERS_FILE = "planners.html"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass
class ReportRun:
    month: dt.date
    out_dir: Path
    company_files: dict[str, Path] = field(default_factory=dict)     # company_id -> file
    planners_file: Path | None = None
    seconds: float = 0.0


def parse_month(text: str) -> dt.date:
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise argparse.ArgumentTypeError(f"not a month: {text!r} (expected yyyy-mm, e.g. 2026-11)")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def latest_month(lake: report_data.Lake) -> dt.date:
    months = report_data.months_with_data(lake)
    if not months:
        raise report_data.NoGoldData(f"no gold KPI data under {lake.settings.gold_root}: build gold first "
                                     "(python -m jobs.kpi.build --from ... --to ...)")
    return months[-1]


def write_atomically(path: Path, text: str) -> None:
    """Readers (a web server, a mail job) never see a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)     # mkstemp creates 0600; a report is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(spark: SparkSession, month: dt.date | None, settings: Settings | None = None, *,
                  generated_at: dt.datetime | None = None) -> ReportRun:
    """Render every company report and planners.html for ``month`` (None: the latest month with gold data)."""
    settings = settings or get_settings()
    t0 = time.perf_counter()
    lake = report_data.Lake(spark, settings)
    month = month or latest_month(lake)
    log.info("reports for %s: reading gold data from %s", f"{month:%Y-%m}", settings.lake_root)
    data = report_data.load_month(lake, month)
    run = render_reports(data, settings, generated_at=generated_at)
    run.seconds = time.perf_counter() - t0
    log.info("reports for %s written to %s in %.1f s", f"{month:%Y-%m}", run.out_dir, run.seconds)
    return run


def render_reports(data: report_data.MonthData, settings: Settings, *,
                   generated_at: dt.datetime | None = None) -> ReportRun:
    """Write one report per company (its own data only) and planners.html from the loaded month."""
    generated_at = generated_at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    out_dir = settings.reports_root / f"{data.month:%Y-%m}"
    run = ReportRun(month=data.month, out_dir=out_dir)
    ids = report_data.company_ids(data)
    total = len(ids) + 1
    for i, company_id in enumerate(ids, start=1):
        key = company_key(company_id, settings)
        log.info("report %d/%d: company report %s.html", i, total, key)
        scoped = report_data.for_company(data, company_id)
        text = render.company_report(scoped, company_id=company_id, generated_at=generated_at, report_name=key)
        path = out_dir / f"{key}.html"
        write_atomically(path, text)
        run.company_files[company_id] = path
    log.info("report %d/%d: %s", total, total, PLANNERS_FILE)
    run.planners_file = out_dir / PLANNERS_FILE
    write_atomically(run.planners_file, render.planners_report(data, generated_at=generated_at,
                                                                docs_links=docs_links(settings, out_dir)))
    return run


def docs_links(settings: Settings, out_dir: Path) -> list[render.DocsLink]:
    """Per silver table, the Data Docs page of its latest gate run, linked relative to ``out_dir``."""
    from jobs.quality.validation import latest_gate_pages

    return [render.DocsLink(table=t, status=p.status, run_id=p.run_id, validated_at=p.validated_at,
                            href=quote(Path(os.path.relpath(p.page, out_dir)).as_posix()))
            for t, p in sorted(latest_gate_pages(settings).items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.delivery.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--month", type=parse_month, help="report month, yyyy-mm")
    which.add_argument("--latest", action="store_true", help="the newest month with gold data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from jobs.platform.session import get_spark

    spark = get_spark("report")
    try:
        run = write_reports(spark, None if args.latest else args.month)
    except report_data.NoGoldData as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    print(f"reports for {run.month:%Y-%m} in {run.seconds:.1f} s: {run.out_dir}")
    for path in [*run.company_files.values(), run.planners_file]:
        print(f"  {path.name}")
    return EXIT_OK
