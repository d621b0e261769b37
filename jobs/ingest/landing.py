"""Find landing files safely and fingerprint them.

Layout: ``<landing_root>/<source>/<yyyy-mm-dd>/<file>``. Only regular files whose resolved path stays
inside the landing root are taken; anything else is reported, never followed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from schemas.sources import CSV, JSONL, SourceSpec

log = logging.getLogger(__name__)
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SUFFIXES = {CSV: (".csv", ".csv.gz"), JSONL: (".jsonl", ".jsonl.gz", ".json", ".json.gz")}
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class LandingFile:
    source: str
    landing_date: dt.date
    path: Path          # absolute, resolved
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


def discover(landing_root: Path, spec: SourceSpec, start: dt.date, end: dt.date) -> Discovery:
    """Landing files of ``spec`` delivered on days ``start``..``end`` (inclusive), sorted by day and name."""
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
