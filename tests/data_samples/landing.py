"""Reading a landing folder back, independently of the generator: only the files, the contract
(schemas/sources.py) and, where a test needs ground truth, ``_manifest.json`` / ``_faults.jsonl``.
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from schemas.sources import TELEMATICS_ENCODING

SEC = dt.timedelta(seconds=1)


def files_of(root: Path, source: str) -> list[Path]:
    return sorted(p for p in (root / source).glob("*/*") if p.is_file())


def read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def csv_rows(root: Path, source: str, include_redelivered: bool = True) -> list[dict]:
    """Every data row of a CSV source, with ``_file`` (path relative to root) added."""
    out = []
    for p in files_of(root, source):
        if not include_redelivered and "_redelivered" in p.name:
            continue
        for row in csv.DictReader(io.StringIO(read_text(p))):
            row["_file"] = str(p.relative_to(root))
            out.append(row)
    return out


def csv_header(path: Path) -> list[str]:
    return next(csv.reader(io.StringIO(read_text(path))))


def manifest(root: Path) -> dict:
    return json.loads((root / "_manifest.json").read_text())


def fault_log(root: Path) -> list[dict]:
    text = (root / "_faults.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def parse_local(ts: str) -> dt.datetime:
    """'yyyy-MM-dd HH:mm:ss' (test_contract checks the exact format; this is the fast parser)."""
    if len(ts) != 19 or ts[10] != " ":
        raise ValueError(f"not a contract timestamp: {ts!r}")
    return dt.datetime.fromisoformat(ts)


def as_float(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- telematics ----------------------------------------------------------------------------------
def decode(name: str, raw: int | None) -> float | None:
    """Contract decoding: value = raw * scale + offset; sentinels -> None.

    >>> decode("total_current", 31200)   # (31200 * 0.1) - 3000 = 120.0 A, discharging
    120.0
    """
    if raw is None:
        return None
    enc = TELEMATICS_ENCODING[name]
    if raw in enc.sentinels:
        return None
    return raw * enc.scale + enc.offset


def in_range(name: str, raw: int | None) -> bool:
    """A raw value is usable when it is a sentinel (-> null) or within the encoding's valid range."""
    if raw is None:
        return True
    enc = TELEMATICS_ENCODING[name]
    return raw in enc.sentinels or 0 <= raw <= enc.valid_max_raw


@dataclass
class Frame:
    file: str
    vin: str
    msg_type: str
    t: dt.datetime
    obj: dict

    def raw(self, block: str, name: str):
        b = self.obj.get(block)
        return None if b is None else b.get(name)


_FRAMES: dict[tuple[Path, bool], tuple[list[Frame], int]] = {}


def read_frames(root: Path, include_redelivered: bool = True) -> tuple[list[Frame], int]:
    """All parseable frames and the number of lines that are not valid JSON (truncated lines). Cached:
    callers must not modify the frames."""
    key = (Path(root), include_redelivered)
    if key not in _FRAMES:
        _FRAMES[key] = _read_frames(Path(root), include_redelivered)
    frames, broken = _FRAMES[key]
    return list(frames), broken


def _read_frames(root: Path, include_redelivered: bool) -> tuple[list[Frame], int]:
    frames, broken = [], 0
    for p in files_of(root, "telematics"):
        if not include_redelivered and "_redelivered" in p.name:
            continue
        rel = str(p.relative_to(root))
        for line in read_text(p).splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                broken += 1
                continue
            frames.append(Frame(rel, obj["vin"], obj["msg_type"], parse_local(obj["collect_time"]), obj))
    return frames, broken


def frame_is_clean(f: Frame, window_start: dt.datetime, window_end: dt.datetime) -> bool:
    """In the window and every raw value usable (what silver would keep without a quarantine reason)."""
    if not window_start <= f.t < window_end:
        return False
    for name in ("speed", "odometer", "total_voltage", "total_current", "soc"):
        if not in_range(name, f.raw("vehicle", name)):
            return False
    checks = (("fuel_cell", "h2_remaining"), ("engine", "fuel_total"), ("position", "lon"), ("position", "lat"))
    return all(in_range(name, f.raw(block, name)) for block, name in checks)


def by_vin_in_time_order(frames: list[Frame]) -> dict[str, list[Frame]]:
    """One frame per (vin, collect_time) - the natural key - in time order."""
    seen: dict[tuple[str, dt.datetime], Frame] = {}
    for f in frames:
        seen.setdefault((f.vin, f.t), f)
    out: dict[str, list[Frame]] = {}
    for (vin, _), f in sorted(seen.items()):
        out.setdefault(vin, []).append(f)
    return out


def pack_energy_kwh(samples: list[tuple[float, int, int]]) -> float:
    """Sum of V * I * dt over frames given as (t seconds, raw total_voltage, raw total_current).

    A frame's V and I hold until the next frame (left Riemann sum); the last frame only closes the
    previous interval. Discharge is positive, charging / regeneration negative. kWh = J / 3.6e6.
    """
    total_j = 0.0
    for (t0, v_raw, i_raw), (t1, _, _) in zip(samples, samples[1:]):
        volt, amp = decode("total_voltage", v_raw), decode("total_current", i_raw)
        if volt is None or amp is None:
            continue
        total_j += volt * amp * (t1 - t0)
    return total_j / 3.6e6


def shift_day(ts: dt.datetime, start_hhmm: str) -> dt.date:
    h, m = map(int, start_hhmm.split(":"))
    return (ts - dt.timedelta(hours=h, minutes=m)).date()


def relpaths(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def sha256_of(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def window(root: Path) -> tuple[dt.datetime, dt.datetime]:
    m = manifest(root)
    start = parse_local(m["window"]["start_local"])
    return start, start + dt.timedelta(days=m["window"]["days"])


