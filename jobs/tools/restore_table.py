"""Restore a Delta table of the lake to an earlier version (a new commit: the later versions stay in the
history, so a restore can itself be undone within the time-travel window).

    python -m jobs.tools.restore_table gold_rail_share_monthly --list             # versions, operations, times
    python -m jobs.tools.restore_table gold_rail_share_monthly --version 3
    python -m jobs.tools.restore_table silver_shipments --timestamp 2026-12-06T08:00:00Z

The table is named as the query CLI names it (``python -m jobs.delivery.query --list``) and looked up under
the layers of ``COALCHAIN_LAKE_ROOT`` (bronze, silver, gold, ops). Written with delta-rs (no Spark); a
version older than the last VACUUM's retention may have lost its files and is refused by delta-rs.
Run it while no DAG writes the table (pause the DAGs that write it), as for any manual repair.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from jobs.platform import storage
from jobs.platform.settings import get_settings

LAYERS = ("bronze", "silver", "gold", "ops")


def locate(name: str) -> str:
    """The URI of the table ``name`` in the configured lake (exactly one layer must hold it)."""
    settings = get_settings()
    found = []
    for layer in LAYERS:
        location = settings.lake_root / layer / name
        log = location / "_delta_log"
        exists = (storage.has_commit(settings, log) if storage.is_object_store(log)
                  else (log.is_dir() and any(log.iterdir())))
        if exists:
            found.append(storage.delta_uri(location) if storage.is_object_store(location) else str(location))
    if len(found) != 1:
        raise SystemExit(f"table {name!r}: {'not found' if not found else 'in several layers: ' + ', '.join(found)}"
                         f" under {settings.lake_root}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.tools.restore_table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--list", action="store_true", help="print the table's versions and stop")
    target.add_argument("--version", type=int, help="the version to restore")
    target.add_argument("--timestamp", type=dt.datetime.fromisoformat,
                        help="restore the version current at this time (ISO 8601, with a zone)")
    args = parser.parse_args(argv)
    from deltalake import DeltaTable

    uri = locate(args.table)
    table = DeltaTable(uri, storage_options=storage.options_for(uri))
    if args.list:
        print(f"{'version':>8}  {'timestamp (UTC)':<20} operation")
        for entry in sorted(table.history(), key=lambda e: e["version"]):
            when = dt.datetime.fromtimestamp(entry["timestamp"] / 1000, dt.timezone.utc)
            print(f"{entry['version']:>8}  {when:%Y-%m-%d %H:%M:%S}  {entry.get('operation', '')}")
        return 0
    before = table.version()
    if args.timestamp is not None and args.timestamp.tzinfo is None:
        print("--timestamp needs a zone (e.g. ...Z or +08:00)", file=sys.stderr)
        return 2
    metrics = table.restore(args.version if args.version is not None else args.timestamp)
    after = DeltaTable(uri, storage_options=storage.options_for(uri)).version()
    print(f"{args.table}: version {before} -> {after} (restored "
          f"{'version ' + str(args.version) if args.version is not None else args.timestamp.isoformat()}); {metrics}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
