"""Lake maintenance on the benchmark day: silver telematics files and planners' query times, before and
after compaction, in one run.

    python -m jobs.tools.bench.maintenance                 # the Ordos day (600 trucks), generated once
    python -m jobs.tools.bench.maintenance --trucks 60     # a quicker look

1. generates (or reuses) the Ordos-day landing zone of ``make bench`` and ingests its telematics into a
   fresh lake (``<work>/lake_maintenance``), as the ingest DAG does;
2. measures ``silver_telematics`` (files, bytes, small files) and times two planners' queries through
   Spark (the engine of the SQL CLI): one truck's day (day partition + vin: file skipping matters) and
   the whole fleet's day (every row of the day: the number of files read matters); each query once to
   warm up, then the median of ``--repeats``;
3. runs ``jobs.platform.maintenance`` on the table (Z-order on vin, event time) and measures again.

Prints one JSON object; the ratios are after ÷ before of the same run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from jobs.platform.settings import REPO_ROOT, Settings
from jobs.tools.bench.run import SEED, delivery_days, generate

ONE_TRUCK = ("SELECT count(*) AS frames, round(max(odometer_km) - min(odometer_km), 1) AS km, "
             "round(avg(speed_kmh), 1) AS mean_speed_kmh FROM silver_telematics "
             "WHERE event_date_local = DATE'{day}' AND vin = '{vin}'")
FLEET_DAY = ("SELECT vin, count(*) AS frames, round(max(odometer_km) - min(odometer_km), 1) AS km "
             "FROM silver_telematics WHERE event_date_local = DATE'{day}' GROUP BY vin")


def _timed_median_s(spark, path: str, sql: str, repeats: int) -> tuple[float, int]:
    def once() -> tuple[float, int]:
        t0 = time.perf_counter()
        spark.read.format("delta").load(path).createOrReplaceTempView("silver_telematics")
        rows = spark.sql(sql).collect()
        return time.perf_counter() - t0, len(rows)

    once()                                           # warm-up: JIT, snapshot, file listing caches
    runs = [once() for _ in range(repeats)]
    return round(statistics.median(r[0] for r in runs), 3), runs[0][1]


def _files(health) -> dict:
    return {"files": sum(h.files for h in health), "bytes": sum(h.bytes for h in health),
            "small_files": sum(h.small_files for h in health),
            "partitions": {h.partition: {"files": h.files, "mib": round(h.bytes / 2**20, 1)} for h in health}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m jobs.tools.bench.maintenance", description=__doc__.split("\n\n")[0])
    p.add_argument("--trucks", type=int, default=600)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--work", type=Path, default=REPO_ROOT / ".bench")
    args = p.parse_args(argv)

    from jobs.ingest.runner import ingest_source
    from jobs.platform import maintenance
    from jobs.platform.session import get_spark

    suffix = "x1" if args.trucks == 600 else f"{args.trucks}t"
    landing = args.work / f"landing_ordos_day_{suffix}"
    generated = generate(landing, trucks=args.trucks, days=1)
    lake = args.work / "lake_maintenance"
    shutil.rmtree(lake, ignore_errors=True)
    settings = Settings(lake_root=lake, landing_root=landing, spark_profile="default")
    day = delivery_days(landing)[0]
    spark = get_spark("coalchain-bench-maintenance")
    t0 = time.perf_counter()
    ingested = ingest_source(spark, "telematics", day, day, settings)
    ingest_s = round(time.perf_counter() - t0, 1)

    table = maintenance.LakeTable("silver", "silver_telematics", settings.silver_root / "silver_telematics")
    path = str(table.location)
    busiest = spark.read.format("delta").load(path).groupBy("event_date_local").count() \
        .orderBy("count", ascending=False).first()
    event_day = busiest["event_date_local"].isoformat()
    vins = sorted(r["vin"] for r in spark.read.format("delta").load(path)
                  .where(f"event_date_local = DATE'{event_day}'").select("vin").distinct().collect())
    vin = vins[len(vins) // 2]                       # a truck from the middle of the vin range
    queries = {"one_truck_day": ONE_TRUCK.format(day=event_day, vin=vin), "fleet_day": FLEET_DAY.format(day=event_day)}

    before = _files(maintenance.measure(table, settings))
    times_before = {name: _timed_median_s(spark, path, sql, args.repeats) for name, sql in queries.items()}
    t1 = time.perf_counter()
    run = maintenance.run(settings, layers=("silver",), tables=("silver_telematics",))
    maintenance_s = round(time.perf_counter() - t1, 1)
    after = _files(maintenance.measure(table, settings))
    times_after = {name: _timed_median_s(spark, path, sql, args.repeats) for name, sql in queries.items()}
    spark.stop()

    result = {
        "landing": str(landing), "seed": SEED, "trucks": args.trucks, "generated": generated.get("generated"),
        "telematics_rows": ingested.bronze_rows, "ingest_s": ingest_s, "event_day": event_day, "vin": vin,
        "files_before": before, "files_after": after, "maintenance_s": maintenance_s,
        "compaction": run["reports"][0],
        "query_s_before": {k: v[0] for k, v in times_before.items()},
        "query_s_after": {k: v[0] for k, v in times_after.items()},
        "rows_returned": {k: [times_before[k][1], times_after[k][1]] for k in queries},
        "query_ratio_after_to_before": {k: round(times_after[k][0] / times_before[k][0], 2) for k in queries},
        "repeats": args.repeats, "queries": queries,
    }
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
