"""Telematics typing on Arrow batches (no Spark): strict local time, decoding, checks and their texts,
and the staging folder's clean-up. Expected values are worked out by hand in the comments."""
from __future__ import annotations

import datetime as dt
import json
import os
import time

import numpy as np
import pyarrow as pa
import pytest

from jobs.ingest.frame_stage import remove_stale, staging_folder
from jobs.ingest.frames import frame_batches
from jobs.ingest.telematics import arrow_schema, local_time_parts, type_frame_batch, typed_schema, utc_timestamps

LINEAGE = {"source": "telematics", "landing_date": dt.date(2026, 11, 9), "source_file": "telematics/2026-11-09/a.jsonl",
           "file_sha256": "0" * 64, "ingested_at": dt.datetime(2026, 11, 9, 1, tzinfo=dt.timezone.utc)}


def test_local_time_is_read_strictly_and_converted_by_hand():
    text = pa.array([
        "2026-11-01 08:00:10",   # valid
        "2024-02-29 23:59:59",   # valid (leap day)
        "2026-02-30 08:00:10",   # no 30 February (Arrow's strptime would roll it into March)
        "2026-11-1 08:00:10",    # one-digit day
        "2026-11-01 24:00:00",   # hour 24
        "2026-11-01 08:00:60",   # second 60
        "2026-11-01 08:00:10 ",  # trailing space
        "2026-11-01T08:00:10",   # wrong separator
        None, "x",
    ])
    seconds, days, valid = local_time_parts(text)
    assert valid.tolist() == [True, True] + [False] * 8
    # 2026-11-01: 56 years after 1970 with 14 leap days (1972..2024) = 56 * 365 + 14 = 20454 days, plus
    # Jan..Oct of 2026 = 31+28+31+30+31+30+31+31+30+31 = 304 → day 20758;
    # 20758 * 86400 + 8 * 3600 + 10 = 1,793,491,200 + 28,810 = 1,793,520,010 s
    assert (int(days[0]), int(seconds[0])) == (20758, 1_793_520_010)
    # 2024-02-29: 54 * 365 + 13 leap days (1972..2020) = 19723 (1 January 2024) + 31 + 28 = 19782;
    # 19782 * 86400 + 86399 = 1,709,164,800 + 86,399 = 1,709,251,199 s
    assert (int(days[1]), int(seconds[1])) == (19782, 1_709_251_199)
    utc = utc_timestamps(seconds, valid, "Asia/Shanghai").to_pylist()
    # Beijing time is UTC+8: 08:00:10 local is 00:00:10 UTC
    assert utc[0] == dt.datetime(2026, 11, 1, 0, 0, 10, tzinfo=dt.timezone.utc)
    assert utc[2:] == [None] * 8


def _frame(t: str, **vehicle) -> str:
    v = {"speed": 352, "odometer": 1234567, "total_voltage": 6120, "total_current": 29000, "soc": 78, **vehicle}
    return json.dumps({"vin": "V1", "msg_type": "realtime", "collect_time": t, "vehicle": v,
                       "position": {"valid": 1, "coord_sys": "WGS84", "lon": 109781234, "lat": 39608765}},
                      separators=(",", ":"))


def _typed(lines: list[str]) -> list[dict]:
    [bronze] = list(frame_batches(("\n".join(lines) + "\n").encode(), "a.jsonl", LINEAGE))
    return type_frame_batch(bronze, "Asia/Shanghai", 7, arrow_schema(typed_schema())).to_pylist()


def test_a_batch_is_decoded_and_each_fault_gets_its_field_and_text():
    good, sentinel, too_fast, too_late = _typed([
        _frame("2026-11-09 08:00:10"),
        _frame("2026-11-09 08:00:20", speed=0xFFFF, soc=0xFE),
        _frame("2026-11-09 08:00:30", speed=2201),
        _frame("2026-10-30 08:00:40"),
    ])
    # 352 × 0.1 = 35.2 km/h; 1234567 / 10 = 123456.7 km; 29000 × 0.1 − 3000 = −100 A (charging / regen)
    assert good["speed_kmh"] == pytest.approx(35.2) and good["odometer_km"] == 123456.7
    assert good["total_current_a"] == pytest.approx(-100.0) and good["soc_pct"] == 78
    assert good["lon_wgs84_deg"] == pytest.approx(109.781234) and good["position_valid"] is True
    assert good["event_date_local"] == dt.date(2026, 11, 9) and good["_errors"] == [] and good["raw_record"] is None
    # 0xFFFF speed and 0xFE SOC are "invalid/abnormal" sentinels: null, no error
    assert sentinel["speed_kmh"] is None and sentinel["soc_pct"] is None and sentinel["_errors"] == []
    # 2201 is above the valid 0..2200 (220 km/h): the frame is quarantined, with its fields as JSON
    assert too_fast["_errors"] == [{"field": "vehicle.speed",
                                    "reason": "raw value 2201 outside the valid range 0..2200 of speed"}]
    assert json.loads(too_fast["raw_record"])["vehicle"]["speed"] == 2201
    # delivered 2026-11-09, event day 2026-10-30: 10 days late, the allowance is 7
    assert too_late["_errors"] == [{"field": "collect_time", "reason": (
        "event day 2026-10-30 is 10 days before delivery day 2026-11-09 (lateness allowance 7 days)")}]


def test_a_truncated_line_and_a_frame_without_vehicle_keep_their_reasons():
    truncated = '{"vin":"V1","collect_time":"2026-11-09 08:0'
    no_vehicle = json.dumps({"vin": "V2", "msg_type": "realtime", "collect_time": "2026-11-09 09:00:00"})
    rows = {r["record_no"]: r for r in _typed([_frame("2026-11-09 08:00:10"), truncated, no_vehicle])}
    assert rows[2]["_errors"][0]["field"] is None and rows[2]["raw_record"] == truncated
    assert rows[3]["_errors"] == [{"field": "vehicle", "reason": "required field is missing"}]


def test_only_staging_folders_of_long_dead_runs_are_removed(tmp_path):
    old, live = staging_folder(tmp_path, "old"), staging_folder(tmp_path, "live")
    for folder in (old, live):
        (folder / "bronze").mkdir(parents=True)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    assert remove_stale(tmp_path) == [old]
    assert not old.exists() and live.exists()


def test_no_valid_time_at_all_is_handled():
    seconds, days, valid = local_time_parts(pa.array([None, ""], pa.string()))
    assert not valid.any() and np.array_equal(seconds, [0, 0])
