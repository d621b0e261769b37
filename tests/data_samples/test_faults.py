"""Injected faults: absent at rate 0, present and findable at a rate > 0, counted right in the manifest."""
from __future__ import annotations

import datetime as dt
from collections import Counter

from schemas.sources import CSV, SOURCES

from tests.data_samples.landing import (
    by_vin_in_time_order, csv_rows, fault_log, files_of, frame_is_clean, manifest, parse_local, read_frames, relpaths,
    window,
)
from tests.data_samples.test_consistency import KEYS, row_is_valid

TELEMATICS_KINDS = {"dup_record", "late_record", "sentinel", "out_of_range", "clock_jump", "truncated", "dup_file"}
CSV_KINDS = {"dup_record", "late_record", "out_of_range", "non_numeric", "clock_jump", "dup_file"}


def delivery_day(source: str, row: dict, first_day: str = "") -> str:
    """The day a row is delivered on when it is on time (see data_samples/README.md)."""
    if source == "production_plan":   # on its publication day; plans made before the window in its first folder
        return max(row["published_local"][:10], first_day)
    if source == "mine_production":   # a shift is reported once it has ended
        return (parse_local(row["shift_end_local"]) - dt.timedelta(seconds=1)).date().isoformat()
    field = {"washing": "prod_date", "weighbridge": "load_time_local", "charging_sessions": "plug_out_local",
             "connector_status": "status_time_local", "h2_fills": "end_local", "shipments": "ship_date"}[source]
    return row[field][:10]


def test_fault_rate_zero_gives_a_clean_world(clean_world):
    m = manifest(clean_world)
    assert fault_log(clean_world) == []
    assert m["faults"]["totals"] == {}
    assert not [p for p in relpaths(clean_world) if "_redelivered" in p]
    for name, s in m["sources"].items():
        assert s["faults"] == {}
        assert s["rows_written"] == s["distinct_true"] == s["distinct_valid"], name
    frames, broken = read_frames(clean_world)
    assert broken == 0
    assert Counter((f.vin, f.t) for f in frames).most_common(1)[0][1] == 1     # no duplicates
    assert {f.msg_type for f in frames} == {"realtime"}
    start, end = window(clean_world)
    assert all(frame_is_clean(f, start, end) for f in frames)
    for spec in SOURCES.values():
        if spec.file_format == CSV and not spec.is_dimension:
            rows = csv_rows(clean_world, spec.name)
            keys = Counter(tuple(r[k] for k in KEYS[spec.name]) for r in rows)
            assert not keys or keys.most_common(1)[0][1] == 1, spec.name
            assert all(row_is_valid(spec.name, r, start, end) for r in rows), spec.name
            for r in rows:   # nothing late: every row sits in the folder of its own delivery day
                assert r["_file"].split("/")[1] == delivery_day(spec.name, r, start.date().isoformat()), (spec.name, r)


def test_every_fault_kind_is_injected(faulty_world, committed):
    for root in (faulty_world, committed):
        m = manifest(root)
        assert set(m["sources"]["telematics"]["faults"]) - {"dup_file_rows"} == TELEMATICS_KINDS
        csv_kinds = set()
        for name in ("production_plan", "mine_production", "washing", "weighbridge", "charging_sessions", "connector_status",
                     "h2_fills", "shipments"):
            csv_kinds |= set(m["sources"][name]["faults"]) - {"dup_file_rows"}
        assert csv_kinds == CSV_KINDS
        log_counts = Counter((e["source"], e["kind"]) for e in fault_log(root))
        for name, s in m["sources"].items():
            for kind, n in s["faults"].items():
                if kind != "dup_file_rows":
                    assert log_counts[(name, kind)] == n, (name, kind)


def test_telematics_faults_are_where_the_log_says(faulty_world):
    log = [e for e in fault_log(faulty_world) if e["source"] == "telematics"]
    frames, broken = read_frames(faulty_world, include_redelivered=False)
    assert broken == sum(e["kind"] == "truncated" for e in log)
    where = Counter((f.file, f.vin, f.obj["collect_time"], f.msg_type) for f in frames)
    for e in log:
        if e["kind"] == "late_record":
            assert where[(e["file"], e["vin"], e["collect_time"], "resend")] == 1
            assert e["file"].split("/")[1] > e["collect_time"][:10]          # a later delivery-day folder
        elif e["kind"] == "dup_record":
            assert where[(e["file"], e["vin"], e["collect_time"], "realtime")] == 2
        elif e["kind"] == "clock_jump":
            assert where[(e["file"], e["vin"], e["written_collect_time"], "realtime")] == 1
            assert abs(int(e["written_collect_time"][:4]) - int(e["collect_time"][:4])) >= 2   # years off
        elif e["kind"] in ("sentinel", "out_of_range"):
            assert where[(e["file"], e["vin"], e["collect_time"], "realtime")] == 1


def test_redelivered_files_are_byte_copies_on_a_later_day(faulty_world):
    copies = [e for e in fault_log(faulty_world) if e["kind"] == "dup_file"]
    assert {e["source"] == "telematics" for e in copies} == {True, False}
    for e in copies:
        assert (faulty_world / e["file"]).read_bytes() == (faulty_world / e["copy_of"]).read_bytes()
        assert e["file"] != e["copy_of"] and e["file"].split("/")[1] > e["copy_of"].split("/")[1]


def test_manifest_distinct_valid_counts_match_the_files(faulty_world, committed):
    for root in (faulty_world, committed):
        m = manifest(root)
        start, end = window(root)
        frames, _ = read_frames(root)
        valid = by_vin_in_time_order([f for f in frames if frame_is_clean(f, start, end)])
        assert sum(len(v) for v in valid.values()) == m["sources"]["telematics"]["distinct_valid"]
        for spec in SOURCES.values():
            if spec.file_format != CSV:
                continue
            rows = csv_rows(root, spec.name)
            if spec.is_dimension:
                assert len(rows) == m["sources"][spec.name]["distinct_valid"]
                continue
            keys = {tuple(r[k] for k in KEYS[spec.name]) for r in rows if row_is_valid(spec.name, r, start, end)}
            assert len(keys) == m["sources"][spec.name]["distinct_valid"], spec.name


def test_late_csv_rows_land_in_a_later_folder(faulty_world):
    late = [e for e in fault_log(faulty_world) if e["kind"] == "late_record" and e["source"] != "telematics"]
    assert late
    for e in late:
        rows = [r for r in csv_rows(faulty_world, e["source"], include_redelivered=False)
                if all(r[k] == v for k, v in e["key"].items())]
        assert [r["_file"] for r in rows] == [e["file"]]
        assert (faulty_world / e["file"]).parent.name > delivery_day(e["source"], rows[0])


def test_fault_log_files_exist(faulty_world):
    present = set(relpaths(faulty_world))
    assert all(e["file"] in present for e in fault_log(faulty_world))
    assert all(files_of(faulty_world, s) for s in SOURCES)
    assert dt.date.fromisoformat(manifest(faulty_world)["params"]["start_date"])
