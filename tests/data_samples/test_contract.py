"""Conformance to the landing contract (schemas/sources.py), checked on the written files."""
from __future__ import annotations

import datetime as dt
import json
import re

from schemas.sources import CSV, JSONL, SOURCES

from tests.data_samples.landing import csv_header, csv_rows, files_of, read_frames, read_text, relpaths

DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def test_layout_is_source_day_file(world):
    for rel in relpaths(world):
        parts = rel.split("/")
        if len(parts) == 1:
            assert parts[0] in ("_manifest.json", "_faults.jsonl")
            continue
        source, day, name = parts
        spec = SOURCES[source]
        assert DATE_DIR.match(day)
        allowed = (".csv", ".csv.gz") if spec.file_format == CSV else (".jsonl", ".jsonl.gz")
        assert name.endswith(allowed), rel


def test_every_source_is_delivered(world):
    for name in SOURCES:
        assert files_of(world, name), name


def test_dimensions_are_snapshots_in_the_first_day_folder(world):
    for spec in SOURCES.values():
        if spec.is_dimension:
            assert [p.parent.name for p in files_of(world, spec.name)] == ["2026-11-02"]


def test_csv_headers_equal_the_contract_fields(world):
    for spec in SOURCES.values():
        if spec.file_format == CSV:
            for p in files_of(world, spec.name):
                assert tuple(csv_header(p)) == spec.fields, p


def test_telematics_keys_are_contract_fields(world):
    spec = SOURCES["telematics"]
    frames, _ = read_frames(world)
    assert frames
    for f in frames:
        assert set(f.obj) <= set(spec.fields)
        assert all(f.obj.get(k) is not None for k in spec.required)
        assert f.msg_type in ("realtime", "resend")
        assert set(f.obj["vehicle"]) == {"speed", "odometer", "total_voltage", "total_current", "soc"}
        assert f.obj["position"]["coord_sys"] in ("WGS84", "GCJ02")
        assert all(isinstance(v, int) for v in f.obj["vehicle"].values())


def test_powertrain_blocks(world):
    powertrain = {r["vin"]: r["powertrain"] for r in csv_rows(world, "trucks")}
    frames, _ = read_frames(world)
    for f in frames:
        kind = powertrain[f.vin]
        assert (f.obj["fuel_cell"] is not None) == (kind == "FCEV")
        assert (f.obj["engine"] is not None) == (kind == "DIESEL")


def test_gzip_is_reproducible(world):
    # Header bytes 4..7 are the mtime; flag bit 3 (FNAME) would embed a file name.
    for p in files_of(world, "telematics"):
        head = p.read_bytes()[:10]
        assert head[:2] == b"\x1f\x8b" and head[4:8] == b"\0\0\0\0" and not head[3] & 0x08


def test_local_timestamps_have_the_contract_format(world):
    for spec in SOURCES.values():
        if spec.file_format != CSV:
            continue
        for row in csv_rows(world, spec.name):
            for k, v in row.items():
                if k.endswith("_local") and k != "shift_day_start_local" and v:
                    dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
                elif k.endswith("_date") and v:
                    dt.date.fromisoformat(v)
    for p in files_of(world, "telematics"):
        for line in read_text(p).splitlines()[:50]:
            ts = json.loads(line)["collect_time"] if line.endswith("}") else None
            if ts:
                dt.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S")


def test_required_fields_are_filled_in_clean_world(clean_world):
    for spec in SOURCES.values():
        if spec.file_format == CSV:
            for row in csv_rows(clean_world, spec.name):
                assert all(row[f] != "" for f in spec.required), (spec.name, row)
    assert SOURCES["telematics"].file_format == JSONL
