"""The gate between silver and gold: validate every silver table the KPIs read, for the affected days.

Results of every table are recorded (Delta ``quality_results`` + Data Docs) before any failure is
raised, so a failed gate still leaves its evidence; then a failed critical expectation raises
``QualityGateError`` and the calling task fails, blocking the gold build. Warnings never block.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid

from pyspark.sql import SparkSession

from jobs.settings import Settings, get_settings
from schemas.sources import ALL_SOURCES


def gate_silver(spark: SparkSession, days: list[dt.date], settings: Settings | None = None,
                run_id: str | None = None) -> dict:
    from jobs.quality import QualityGateError, build_data_docs, validate_day, write_results

    settings = settings or get_settings()
    run_id = run_id or f"gate_{uuid.uuid4().hex[:10]}"
    if not days:
        return {"run_id": run_id, "tables": 0, "note": "no affected days"}
    t0 = time.perf_counter()
    results = []
    for spec in ALL_SOURCES:
        result = validate_day(spark, f"silver_{spec.name}", days, settings=settings, run_id=run_id)
        write_results(spark, result, settings)
        results.append(result)
    docs = build_data_docs(settings=settings)
    failed = [r for r in results if r.critical_failures]
    summary = {
        "run_id": run_id, "tables": len(results), "seconds": round(time.perf_counter() - t0, 1),
        "data_docs": str(docs), "critical_failures": {r.table: len(r.critical_failures) for r in failed},
        "warnings": {r.table: len(r.warning_failures) for r in results if r.warning_failures},
    }
    if failed:
        error = QualityGateError(failed[0])
        error.args = ("gold not built:\n" + "\n".join(str(QualityGateError(r)) for r in failed),)
        raise error
    return summary
