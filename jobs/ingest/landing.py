"""Find landing files safely and fingerprint them.

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
from dataclasses import dataclass
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


@dataclass
class Discovery:
    files: list[LandingFile]
    rejected: list[tuple[str, str]]   # (path, reason)


def sha256_of(path: Path, chunk_bytes: int = 4 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_and_size(stream, chunk_bytes: int = 4 << 20) -> tuple[str, int]:
    """Checksum and size of the bytes read, so both describe the same content."""
    digest, size_bytes = hashlib.sha256(), 0
    while chunk := stream.read(chunk_bytes):
        digest.update(chunk)
        size_bytes += len(chunk)
    return digest.hexdigest(), size_bytes


def discover(landing_root: storage.Location, spec: SourceSpec, start: dt.date, end: dt.date,
             settings: "Settings | None" = None) -> Discovery:
    """Landing files of ``spec`` delivered on days ``start``..``end`` (inclusive), sorted by day and name.
    ``settings`` give the object store's endpoint and credentials for a landing zone in a bucket."""
    if storage.is_object_store(landing_root):
        from jobs.platform.settings import get_settings

        return _discover_in_bucket(landing_root, spec, start, end, settings or get_settings())
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
            try:
                sha, size_bytes = sha256_of(resolved), resolved.stat().st_size
            except OSError as exc:   # unreadable, or removed since it was listed
                rejected.append((str(path), f"cannot be read: {exc.strerror or exc}"))
                continue
            files.append(LandingFile(
                source=spec.name, landing_date=day, path=resolved,
                rel_path=resolved.relative_to(root).as_posix(), sha256=sha, size_bytes=size_bytes,
            ))
    _log(rejected)
    return Discovery(files, rejected)


def _discover_in_bucket(root: storage.S3Location, spec: SourceSpec, start: dt.date, end: dt.date,
                        settings: "Settings") -> Discovery:
    """``discover`` under a bucket prefix: the same layout, names and reasons as in a folder. A bucket has
    no folders, so a key is taken only when it is exactly ``<yyyy-mm-dd>/<file>`` below the source's prefix;
    a deeper key stands for a folder inside a day folder, which is "not a regular file"."""
    source_prefix = root / spec.name
    files: list[LandingFile] = []
    rejected: list[tuple[str, str]] = []
    reported: set[str] = set()

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
            try:
                with storage.open_input(settings, stored.location) as stream:
                    sha, size_bytes = _sha256_and_size(stream)
            except OSError as exc:   # unreadable, or removed since it was listed
                reject(entry, f"cannot be read: {exc}")
                continue
            files.append(LandingFile(source=spec.name, landing_date=day, path=stored.location,
                                     rel_path=f"{spec.name}/{entry}", sha256=sha, size_bytes=size_bytes))
    files.sort(key=lambda f: (f.landing_date, f.rel_path))
    _log(rejected)
    return Discovery(files, rejected)


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
