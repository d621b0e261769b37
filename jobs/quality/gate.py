"""The gate between silver and gold: validate every silver table the KPIs read, for the affected days
(kpi_daily passes its plan: each table on the days its own rows changed, see jobs.kpi.build.gate_plan).

Results of every table are recorded (Delta ``quality_results`` + Data Docs) before any failure is
raised, so a failed gate still leaves its evidence. All days are validated together first (one
validation per table: the common, passing case costs no more than that). Only when a critical
expectation fails are the failing tables validated again day by day, to find which days to block: a
bad day must not hold back the good ones. A failure that no single day reproduces (a cross-day
check) or a failed dimension table blocks every day. ``gate_silver`` then raises ``QualityGateError``
carrying ``passed_days`` and ``blocked_days``; the caller builds the passed days and fails. Warnings
never block.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid

from pyspark.sql import SparkSession

from jobs.platform.settings import Settings, get_settings
from schemas.sources import ALL_SOURCES


def gate_silver(spark: SparkSession, days: list[dt.date], settings: Settings | None = None,
                run_id: str | None = None, tables: dict[str, list[dt.date]] | None = None) -> dict:
    """Validate the silver tables for ``days``: every table on every day, or with ``tables`` (the kpi_daily
    run's `gate_plan`) only the tables named there, each on its days."""
    from jobs.quality.validation import GATE_RUN_PREFIX, QualityGateError, build_data_docs, validate_day, write_results

    settings = settings or get_settings()
    run_id = run_id or f"{GATE_RUN_PREFIX}{uuid.uuid4().hex[:10]}"
    if not days:
        return {"run_id": run_id, "tables": 0, "note": "no affected days"}
    t0 = time.perf_counter()
    results = []
    for spec in ALL_SOURCES:
        table_days = days if tables is None else tables.get(spec.name)
        if not table_days:
            continue
        result = validate_day(spark, f"silver_{spec.name}", table_days, settings=settings, run_id=run_id)
        write_results(spark, result, settings)
        results.append(result)
    failed = [r for r in results if r.critical_failures]
    by_day: list = []
    blocked = _blocked_days(spark, failed, sorted(days), settings, run_id, by_day) if failed else {}
    # the pages of this run (and of its day-by-day re-validations) and the index; older pages stay as built
    docs = build_data_docs(settings=settings, results=results + by_day)
    summary = {
        "run_id": run_id, "tables": len(results), "seconds": round(time.perf_counter() - t0, 1),
        "data_docs": str(docs), "critical_failures": {r.table: len(r.critical_failures) for r in failed},
        "warnings": {r.table: len(r.warning_failures) for r in results if r.warning_failures},
        "passed_days": [d.isoformat() for d in sorted(days)], "blocked_days": {},
    }
    if not failed:
        return summary
    summary["blocked_days"] = {d.isoformat(): reason for d, reason in sorted(blocked.items())}
    summary["passed_days"] = [d.isoformat() for d in sorted(days) if d not in blocked]
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    error = QualityGateError(failed[0])
    error.args = (f"gold blocked for {len(blocked)} of {len(days)} day(s) "
                  f"({', '.join(summary['blocked_days'])}):\n" + "\n".join(str(QualityGateError(r)) for r in failed),)
    error.summary = summary
    raise error


def _blocked_days(spark: SparkSession, failed, days: list[dt.date], settings: Settings, run_id: str,
                  written: list | None = None) -> dict:
    """Which days each failed table fails on, by validating it day by day (the failure path only);
    the day-by-day results (recorded) are appended to ``written``."""
    from jobs.quality.validation import BY_DAY_SUFFIX, QualityGateError, validate_day, write_results

    blocked: dict[dt.date, str] = {}
    for result in failed:
        if not result.event_dates or len(result.event_dates) == 1:  # a dimension table, or nothing to split
            for day in result.event_dates or days:
                blocked.setdefault(day, str(QualityGateError(result)))
            continue
        reproduced = False
        for day in result.event_dates:
            one = validate_day(spark, result.table, [day], settings=settings, run_id=f"{run_id}{BY_DAY_SUFFIX}")
            write_results(spark, one, settings)
            if written is not None:
                written.append(one)
            if one.critical_failures:
                reproduced = True
                blocked.setdefault(day, str(QualityGateError(one)))
        if not reproduced:  # only the days together fail (e.g. a check across days): block them all
            for day in result.event_dates:
                blocked.setdefault(day, str(QualityGateError(result)))
    return blocked
