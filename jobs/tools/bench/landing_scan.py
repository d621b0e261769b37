"""The landing scan of a daily ingest run: every file of the lateness window read for its checksum, against
the quick check (files the ledger holds under the same name, size and modification time are not read), in
one run.

    python -m jobs.tools.bench.landing_scan                       # 60 trucks, 8 delivery days (a week late)
    python -m jobs.tools.bench.landing_scan --trucks 600 --days 8  # the Ordos fleet
    python -m jobs.tools.bench.landing_scan --bucket               # the landing zone in a bucket (a local
                                                                   # S3 server on loopback, stopped at the end)

1. generates (or reuses) the Ordos-day landing zone of ``make bench`` for ``--days`` delivery days;
2. scans the telematics window as a first run does (nothing known: every file read) — ``--repeats`` times;
3. scans it as the next day's run does, the files of the window known as the files ledger records them
   after that first run ((name, stamp) → checksum) — ``--repeats`` times.

On disk the operating system's page cache holds the files after the first scan, so the full-read figure is
a lower bound; in a bucket every full read downloads every byte again. Prints one JSON object; the ratio is quick
check ÷ full read, medians of the same run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

from jobs.platform.settings import REPO_ROOT
from jobs.tools.bench.run import delivery_days, generate


def main(argv: list[str] | None = None) -> None:
    from jobs.ingest.landing import STAMP_SETTLE_S

    p = argparse.ArgumentParser(prog="python -m jobs.tools.bench.landing_scan", description=__doc__.split("\n\n")[0])
    p.add_argument("--trucks", type=int, default=60)
    p.add_argument("--days", type=int, default=8, help="delivery days in the window (lateness allowance + 1)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", type=Path, default=REPO_ROOT / ".bench")
    p.add_argument("--bucket", action="store_true", help="scan a copy of the landing zone in a local S3 server")
    args = p.parse_args(argv)

    landing = args.work / f"landing_ordos_{args.trucks}x{args.days}"
    generated = generate(landing, trucks=args.trucks, days=args.days)
    days = delivery_days(landing)
    with contextlib.ExitStack() as stack:
        root, settings = landing, None
        if args.bucket:
            root, settings = _in_a_bucket(stack, landing)
        time.sleep(STAMP_SETTLE_S)   # files written just now get no stamp
        _report(args, landing, root, settings, days, generated)


def _in_a_bucket(stack: contextlib.ExitStack, landing: Path):
    from jobs.platform import storage
    from jobs.tools.local_cluster import LocalS3Server

    server = stack.enter_context(LocalS3Server(log_path=landing.parent / "landing_scan_s3.log"))
    server.create_bucket("landing")
    settings = server.settings()
    root = storage.parse_location("s3://landing/zone")
    storage.upload_tree(settings, landing / "telematics", root / "telematics")
    return root, settings


def _report(args, landing: Path, root, settings, days, generated: dict) -> None:
    from jobs.ingest.landing import discover
    from schemas.sources import SOURCES

    spec = SOURCES["telematics"]

    def scan(known) -> tuple[float, object]:
        t0 = time.perf_counter()
        found = discover(root, spec, days[0], days[-1], settings, known=known)
        return time.perf_counter() - t0, found

    full = [scan({}) for _ in range(args.repeats)]
    found = full[-1][1]
    known = {(f.rel_path, f.stamp): f.sha256 for f in found.files if f.stamp}
    quick = [scan(known) for _ in range(args.repeats)]
    full_s = statistics.median(s for s, _ in full)
    quick_s = statistics.median(s for s, _ in quick)
    print(json.dumps({
        "landing": root.uri if args.bucket else str(root), "generated": generated.get("generated"), "delivery_days": len(days),
        "files": len(found.files), "bytes": sum(f.size_bytes for f in found.files),
        "files_read_full": full[-1][1].checksums_read, "files_read_quick": quick[-1][1].checksums_read,
        "full_read_s": round(full_s, 3), "quick_check_s": round(quick_s, 4),
        "quick_over_full": round(quick_s / full_s, 4),
    }, indent=2))


if __name__ == "__main__":
    main()
