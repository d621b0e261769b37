"""Source freshness: which sources have had no new landing file for longer than their limit.

    python -m jobs.ingest.freshness              # print every checked source; alert the stale ones
    python -m jobs.ingest.freshness --no-alert   # print only

A source's last arrival is the newest modification time of any file under
``<landing_root>/<source>/`` (a local folder or a bucket prefix; files whose name starts with ``_`` or
``.`` are bookkeeping, not deliveries). Event sources are checked against ``stale_source_hours``
unless ``stale_source_hours_per_source`` names another limit; dimension sources (companies, mines,
trucks, stations, ...) are snapshots delivered when something changes, so they are checked only when
named there. A source with no file at all is stale. The ``source_freshness`` DAG runs this check and
sends one ``stale_source`` alert listing every stale source (``jobs.platform.alerts``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import asdict, dataclass

from jobs.platform import storage
from jobs.platform.settings import Settings, get_settings
from schemas.sources import ALL_SOURCES, SOURCES


@dataclass(frozen=True)
class Freshness:
    source: str
    last_file_at: dt.datetime | None          # UTC
    hours_since: float | None
    limit_hours: float

    @property
    def stale(self) -> bool:
        return self.hours_since is None or self.hours_since > self.limit_hours


def limits_hours(settings: Settings) -> dict[str, float]:
    """The staleness limit of every checked source."""
    unknown = sorted(set(settings.stale_source_hours_per_source) - set(SOURCES))
    if unknown:
        raise ValueError(f"COALCHAIN_STALE_SOURCE_HOURS_PER_SOURCE names unknown source(s) {', '.join(unknown)}; "
                         f"known: {', '.join(SOURCES)}")
    limits = {s.name: settings.stale_source_hours for s in ALL_SOURCES if not s.is_dimension}
    limits.update(settings.stale_source_hours_per_source)
    return limits


def last_arrival(settings: Settings, source: str) -> dt.datetime | None:
    """Newest modification time (UTC) of a delivered file under the source's landing folder."""
    from pyarrow import fs

    folder = settings.landing_root / source
    filesystem = storage.filesystem(settings, folder)
    infos = filesystem.get_file_info(fs.FileSelector(storage.fs_path(folder), recursive=True, allow_not_found=True))
    times = [i.mtime for i in infos
             if i.type == fs.FileType.File and not i.base_name.startswith(("_", ".")) and i.mtime is not None]
    if not times:
        return None
    newest = max(times)
    return newest if newest.tzinfo else newest.replace(tzinfo=dt.timezone.utc)


def check(settings: Settings | None = None, now: dt.datetime | None = None) -> list[Freshness]:
    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.timezone.utc)
    out = []
    for source, limit in sorted(limits_hours(settings).items()):
        last = last_arrival(settings, source)
        hours = None if last is None else round((now - last).total_seconds() / 3600, 1)
        out.append(Freshness(source, last, hours, limit))
    return out


def stale_alert(stale: list[Freshness], *, dag_id: str | None, task_id: str | None, day: str | None,
                run_id: str | None = None):
    from jobs.platform.alerts import STALE_SOURCE, Alert

    return Alert(kind=STALE_SOURCE, dag_id=dag_id, task_id=task_id, day=day, run_id=run_id,
                 stale_sources=[{"source": f.source,
                                 "last_file_at": f.last_file_at.isoformat() if f.last_file_at else None,
                                 "hours_since": f.hours_since, "limit_hours": f.limit_hours} for f in stale])


def check_and_alert(settings: Settings | None = None, now: dt.datetime | None = None, *, dag_id: str | None = None,
                    task_id: str | None = None, run_id: str | None = None) -> dict:
    """Check every source and send one alert for the stale ones; returns what was found."""
    from jobs.platform.alerts import notify

    settings = settings or get_settings()
    now = now or dt.datetime.now(dt.timezone.utc)
    results = check(settings, now)
    stale = [f for f in results if f.stale]
    delivered: list[str] = []
    if stale:
        day = now.astimezone(_zone(settings)).date().isoformat()
        delivered = notify(stale_alert(stale, dag_id=dag_id, task_id=task_id, day=day, run_id=run_id), settings)
    return {"checked": len(results), "stale": [f.source for f in stale], "alerted_by": delivered,
            "sources": [{**asdict(f), "stale": f.stale} for f in results]}


def _zone(settings: Settings):
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.source_timezone)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.ingest.freshness", description=__doc__.split("\n\n")[0])
    p.add_argument("--no-alert", action="store_true", help="only print, send nothing")
    args = p.parse_args(argv)
    settings = get_settings()
    now = dt.datetime.now(dt.timezone.utc)
    results = check(settings, now)
    stale = [f for f in results if f.stale]
    if stale and not args.no_alert:
        from jobs.platform.alerts import notify

        day = now.astimezone(_zone(settings)).date().isoformat()
        notify(stale_alert(stale, dag_id=None, task_id="jobs.ingest.freshness", day=day), settings)
    for f in results:
        print(f"{f.source:<22} last file {f.last_file_at.isoformat() if f.last_file_at else 'never':<34} "
              f"{'-' if f.hours_since is None else f'{f.hours_since:.1f} h ago':<12} limit {f.limit_hours:g} h"
              f"{'  STALE' if f.stale else ''}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
