"""Find landing files safely and fingerprint them.

Every file gets its SHA-256 (the files ledger's key). A file the ledger already holds under the same name
with the same size and modification time (its *stamp*) is not read again: its recorded checksum is used,
the quick check rsync makes. A file modified within ``STAMP_SETTLE_S`` before the scan gets no stamp (it
could change again within the same clock tick at the same size), so it is read on every scan until it
settles. The one change the quick check misses is a rewrite that keeps both size and modification time
(e.g. ``touch -r``, or an object replaced at the same size within the store's time resolution).

Layout: ``<landing_root>/<source>/<yyyy-mm-dd>/<file>``, in a local folder or under a bucket prefix
(``s3://bucket/prefix``). In a folder only regular files whose resolved path stays inside the landing
root are taken; anything else is reported, never followed. In a bucket only the objects listed under the
source's prefix are taken, by their keys as stored (a key is never joined with ``..`` or normalised), and
read through the storage layer (``jobs.platform.storage``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.platform import storage
from schemas.sources import CSV, JSONL, SourceSpec

log = logging.getLogger(__name__)
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SUFFIXES = {CSV: (".csv", ".csv.gz"), JSONL: (".jsonl", ".jsonl.gz", ".json", ".json.gz")}
MAX_NAME_CHARS = 200

if TYPE_CHECKING:
    from jobs.platform.settings import Settings


@dataclass(frozen=True)
class LandingFile:
    source: str
    landing_date: dt.date
    path: storage.Location   # a resolved local path, or the object in a bucket
    rel_path: str       # relative to the landing root, '/'-separated
    sha256: str
    size_bytes: int
    stamp: str | None = None   # size and modification time, recorded in the ledger for the quick check


@dataclass
class Discovery:
    files: list[LandingFile]
    rejected: list[tuple[str, str]]   # (path, reason)
    ledger: object = field(default=None, repr=False)   # the files ledger the scan was checked against
    checksums_read: int = 0          # files read for their checksum (the others were known by their stamp)


STAMP_SETTLE_S = 2.0


def file_stamp(size_bytes: int, mtime_ns: int | None, scan_started_ns: int) -> str | None:
    """``size:mtime_ns``, or None when the store reports no time or the file was modified less than
    ``STAMP_SETTLE_S`` before the scan started."""
    if mtime_ns is None or scan_started_ns - mtime_ns < STAMP_SETTLE_S * 1e9:
        return None
    return f"{size_bytes}:{mtime_ns}"


def _sha256_and_size(stream, chunk_bytes: int = 4 << 20) -> tuple[str, int]:
    """Checksum and size of the bytes read, so both describe the same content."""
    digest, size_bytes = hashlib.sha256(), 0
    while chunk := stream.read(chunk_bytes):
        digest.update(chunk)
        size_bytes += len(chunk)
    return digest.hexdigest(), size_bytes


def discover(landing_root: storage.Location, spec: SourceSpec, start: dt.date, end: dt.date,
             settings: "Settings | None" = None, known: Mapping[tuple[str, str], str] | None = None) -> Discovery:
    """Landing files of ``spec`` delivered on days ``start``..``end`` (inclusive), sorted by day and name.
    ``settings`` give the object store's endpoint and credentials for a landing zone in a bucket; ``known``
    maps (relative path, stamp) to the checksum the ledger recorded, so those files are not read."""
    known = known or {}
    scan_started_ns = time.time_ns()
    if storage.is_object_store(landing_root):
        from jobs.platform.settings import get_settings

        return _discover_in_bucket(landing_root, spec, start, end, settings or get_settings(), known, scan_started_ns)
    read = 0
    root = landing_root.resolve()
    source_dir = root / spec.name
    files: list[LandingFile] = []
    rejected: list[tuple[str, str]] = []
    if not source_dir.is_dir():
        return Discovery(files, rejected)
    if not source_dir.resolve().is_relative_to(root):
        rejected.append((str(source_dir), "source folder is a symlink pointing outside the landing root"))
        _log(rejected)
        return Discovery(files, rejected)
    for day_dir in sorted(source_dir.iterdir()):
        if not _DATE_DIR.match(day_dir.name):
            rejected.append((str(day_dir), "folder name is not a yyyy-mm-dd delivery day"))
            continue
        try:
            day = dt.date.fromisoformat(day_dir.name)
        except ValueError:
            rejected.append((str(day_dir), "folder name is not a valid date"))
            continue
        if not (start <= day <= end) or not day_dir.is_dir():
            continue
        if not day_dir.resolve().is_relative_to(root):
            # its files are not read: the folder is reported, the source's other folders are ingested
            rejected.append((str(day_dir), "folder is a symlink pointing outside the landing root"))
            continue
        for path in sorted(day_dir.iterdir()):
            reason = _reject_reason(path, root, spec)
            if reason:
                if reason != "skip":
                    rejected.append((str(path), reason))
                continue
            resolved = path.resolve()
            rel_path = resolved.relative_to(root).as_posix()
            try:
                st = resolved.stat()
                stamp = file_stamp(st.st_size, st.st_mtime_ns, scan_started_ns)
                sha, size_bytes = known.get((rel_path, stamp)) if stamp else None, st.st_size
                if sha is None:
                    with resolved.open("rb") as fh:
                        sha, size_bytes = _sha256_and_size(fh)
                    read += 1
                    if size_bytes != st.st_size:   # written to while read: no stamp to trust
                        stamp = None
            except OSError as exc:   # unreadable, or removed since it was listed
                rejected.append((str(path), f"cannot be read: {exc.strerror or exc}"))
                continue
            files.append(LandingFile(source=spec.name, landing_date=day, path=resolved, rel_path=rel_path,
                                     sha256=sha, size_bytes=size_bytes, stamp=stamp))
    _log(rejected)
    return Discovery(files, rejected, checksums_read=read)


def _discover_in_bucket(root: storage.S3Location, spec: SourceSpec, start: dt.date, end: dt.date,
                        settings: "Settings", known: Mapping[tuple[str, str], str], scan_started_ns: int) -> Discovery:
    """``discover`` under a bucket prefix: the same layout, names and reasons as in a folder. A bucket has
    no folders, so a key is taken only when it is exactly ``<yyyy-mm-dd>/<file>`` below the source's prefix;
    a deeper key stands for a folder inside a day folder, which is "not a regular file"."""
    source_prefix = root / spec.name
    files: list[LandingFile] = []
    rejected: list[tuple[str, str]] = []
    reported: set[str] = set()
    read = 0

    def reject(entry: str, reason: str) -> None:
        if entry not in reported:
            reported.add(entry)
            rejected.append((f"{source_prefix.uri}/{entry}", reason))

    for stored in storage.list_files(settings, source_prefix):
        parts = stored.rel_key.split("/")
        day_name = parts[0]
        if len(parts) == 1:
            reject(day_name, "not in a yyyy-mm-dd delivery-day folder")
            continue
        if not _DATE_DIR.match(day_name):
            reject(day_name, "folder name is not a yyyy-mm-dd delivery day")
            continue
        try:
            day = dt.date.fromisoformat(day_name)
        except ValueError:
            reject(day_name, "folder name is not a valid date")
            continue
        if not (start <= day <= end):
            continue
        name = parts[1]
        if name.startswith((".", "_")):
            continue   # hidden / marker objects (e.g. _SUCCESS) are not data
        entry = f"{day_name}/{name}"
        if len(name) > MAX_NAME_CHARS:
            reject(entry, f"file name longer than {MAX_NAME_CHARS} characters")
        elif len(parts) > 2 or not name:
            reject(entry, "not a regular file")
        elif not name.lower().endswith(_SUFFIXES[spec.file_format]):
            reject(entry, f"unexpected file type for {spec.file_format} source "
                          f"(expected {', '.join(_SUFFIXES[spec.file_format])})")
        else:
            rel_path = f"{spec.name}/{entry}"
            mtime_ns = None if stored.mtime_s is None else round(stored.mtime_s * 1e9)
            stamp = file_stamp(stored.size_bytes, mtime_ns, scan_started_ns)
            sha, size_bytes = known.get((rel_path, stamp)) if stamp else None, stored.size_bytes
            if sha is None:
                try:
                    with storage.open_input(settings, stored.location) as stream:
                        sha, size_bytes = _sha256_and_size(stream)
                except OSError as exc:   # unreadable, or removed since it was listed
                    reject(entry, f"cannot be read: {exc}")
                    continue
                read += 1
                if size_bytes != stored.size_bytes:   # replaced since it was listed: no stamp to trust
                    stamp = None
            files.append(LandingFile(source=spec.name, landing_date=day, path=stored.location,
                                     rel_path=rel_path, sha256=sha, size_bytes=size_bytes, stamp=stamp))
    files.sort(key=lambda f: (f.landing_date, f.rel_path))
    _log(rejected)
    return Discovery(files, rejected, checksums_read=read)


def _log(rejected: list[tuple[str, str]]) -> None:
    for path, reason in rejected:
        log.warning("landing: rejected %s: %s", path, reason)


def _reject_reason(path: Path, root: Path, spec: SourceSpec) -> str | None:
    name = path.name
    if name.startswith((".", "_")):
        return "skip"   # hidden / marker files (e.g. _SUCCESS) are not data
    if len(name) > MAX_NAME_CHARS:
        return f"file name longer than {MAX_NAME_CHARS} characters"
    if not path.resolve().is_relative_to(root):
        return "symlink pointing outside the landing root"
    if not path.is_file():
        return "not a regular file"
    if not name.lower().endswith(_SUFFIXES[spec.file_format]):
        return f"unexpected file type for {spec.file_format} source (expected {', '.join(_SUFFIXES[spec.file_format])})"
    return None
