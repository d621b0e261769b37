"""Benchmark peers (DuckDB SQL, pandas): hand-worked telematics ingestion and truck-day, agreement with
each other, with our silver telematics and with our gold KPIs on the sample month.

The written rule (docs/kpis.md section 3) says standstill needs speed 0 AND no odometer advance: an
interval whose frame reports speed 0 while the odometer advances to the next frame is moving, so a
negative current there is regeneration, not charging. ``test_ours_follows_the_written_moving_rule``
pins that our Spark code follows it as the peers do.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from jobs.tools.bench import peer_contract as pc
from jobs.tools.bench import peers_duckdb, peers_pandas

PEERS = {"duckdb": peers_duckdb, "pandas": peers_pandas}
REPO = Path(__file__).resolve().parents[3]
SAMPLE_START, SAMPLE_END = dt.date(2026, 11, 1), dt.date(2026, 11, 30)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- ingestion of a hand-made landing zone -------------------------------------------------------------
def _frame(vin, collect_time, *, msg_type="realtime", speed=0, odometer=1_000_000, volt=6000, curr=30000, soc=50,
           h2=None, fuel=None, coord_sys="WGS84", lon=109_781_234, lat=39_608_765) -> str:
    return json.dumps({
        "vin": vin, "msg_type": msg_type, "collect_time": collect_time,
        "vehicle": {"speed": speed, "odometer": odometer, "total_voltage": volt, "total_current": curr, "soc": soc},
        "fuel_cell": None if h2 is None else {"h2_remaining": h2},
        "engine": None if fuel is None else {"fuel_total": fuel},
        "position": {"valid": 1, "coord_sys": coord_sys, "lon": lon, "lat": lat},
    }, separators=(",", ":"))


V1_0800 = _frame("V1", "2026-11-02 08:00:00", speed=352, odometer=1_234_567, volt=6120, curr=31200, soc=78)
GCJ_LON, GCJ_LAT = 109_787_000, 39_610_000
LANDING = {
    "2026-11-02/frames_a.jsonl.gz": [
        V1_0800,
        # speed 0xFFFF = invalid sentinel -> null; current 29500 x 0.1 - 3000 = -50.0 A; a GCJ-02 position
        _frame("V1", "2026-11-02 08:00:10", speed=0xFFFF, odometer=1_234_568, volt=6100, curr=29500, soc=77,
               coord_sys="GCJ02", lon=GCJ_LON, lat=GCJ_LAT),
        # 00:30 Beijing time is 16:30 UTC the day before; h2 0xFE = abnormal sentinel -> null
        _frame("V2", "2026-11-02 00:30:00", speed=0, odometer=500_000, volt=5400, curr=30100, soc=60, h2=0xFE),
        _frame("V2", "2026-11-02 00:30:10", soc=130),                        # SOC 130 % > 100: out of range
        V1_0800[:90],                                                        # truncated line: malformed
        V1_0800,                                                             # the same frame again
    ],
    "2026-11-03/frames_b.jsonl.gz": [
        _frame("V1", "2026-11-02 08:00:00", msg_type="resend", speed=352, odometer=1_234_567, volt=6120,
               curr=31200, soc=78),                                          # resent a day later: it wins
        _frame("V1", "2000-01-01 08:00:00"),                                 # RTC reset: 9,803 days late
    ],
}


@pytest.fixture(scope="module")
def landing_files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("landing") / "telematics"
    files = []
    for rel, lines in LANDING.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
        files.append(path)
    return files


@pytest.fixture(scope="module")
def ingested(landing_files, tmp_path_factory) -> dict[str, tuple[dict, pd.DataFrame, float]]:
    """Per peer: its stats, its rows, and the wall time of the call measured here (bounds its own timing)."""
    out = tmp_path_factory.mktemp("peer_ingest")
    results = {}
    for name, peer in PEERS.items():
        started = time.perf_counter()
        stats = peer.ingest_telematics(list(reversed(landing_files)), out / f"{name}.parquet")
        elapsed_s = time.perf_counter() - started
        rows = pd.read_parquet(out / f"{name}.parquet").sort_values(["vin", "event_ts_utc"], ignore_index=True)
        results[name] = (stats, rows, elapsed_s)
    return results


@pytest.mark.parametrize("peer", PEERS)
def test_ingest_counts(ingested, peer):
    stats, rows, elapsed_s = ingested[peer]
    # 8 lines; rejected: SOC 130, the truncated line, the 2000-01-01 frame; the 3 copies of V1 08:00:00
    # leave one row, so 8 - 3 rejected - 2 duplicates = 3 rows
    assert (stats["rows_in"], stats["rows_rejected"], stats["rows_duplicate"], stats["rows_out"]) == (8, 3, 2, 3)
    assert len(rows) == 3
    # the peer's own timing is a measured wall time in seconds: not a default 0, not milliseconds (it
    # cannot exceed the time of the whole call; rounded to 1 ms, hence the 0.0005 s allowance)
    assert 0 < stats["seconds"] <= elapsed_s + 0.0005
    assert list(rows.columns) == list(pc.SILVER_TELEMATICS_COLUMNS)


@pytest.mark.parametrize("peer", PEERS)
def test_ingest_hand_worked_values(ingested, peer):
    _, rows, _ = ingested[peer]
    by_key = {(r.vin, r.event_ts_utc): r for r in rows.itertuples()}
    # V1 08:00:00 Beijing = 00:00:00 UTC; the resend delivered on 2026-11-03 is the version kept
    first = by_key[("V1", utc("2026-11-02 00:00:00"))]
    assert first.msg_type == "resend"
    assert first.speed_kmh == 35.2                    # 352 x 0.1 km/h
    assert first.odometer_km == 123456.7              # 1,234,567 x 0.1 km
    assert first.total_voltage_v == 612.0             # 6,120 x 0.1 V
    assert first.total_current_a == 120.0             # 31,200 x 0.1 - 3,000 A
    assert first.soc_pct == 78.0
    assert np.isnan(first.h2_remaining_pct) and np.isnan(first.fuel_total_l)   # no fuel_cell / engine block
    assert (first.lon_wgs84_deg, first.lat_wgs84_deg) == (109.781234, 39.608765)   # WGS84 kept, x 1e-6
    assert first.event_date_local == dt.date(2026, 11, 2)

    second = by_key[("V1", utc("2026-11-02 00:00:10"))]
    assert np.isnan(second.speed_kmh)                 # 0xFFFF: invalid
    assert second.odometer_km == 123456.8 and second.total_current_a == -50.0   # 29,500 x 0.1 - 3,000
    # GCJ-02 -> WGS84: shifting the result forward with the generator's own WGS84 -> GCJ-02 formula
    # lands back on the reported GCJ point within 2e-5 degrees (~2 m, the one-step inverse's error)
    from data_samples.geo import wgs84_to_gcj02

    gcj_lat, gcj_lon = wgs84_to_gcj02(second.lat_wgs84_deg, second.lon_wgs84_deg)
    assert abs(gcj_lon - GCJ_LON * 1e-6) < 2e-5 and abs(gcj_lat - GCJ_LAT * 1e-6) < 2e-5
    assert abs(second.lon_wgs84_deg - GCJ_LON * 1e-6) > 1e-3     # and the datum shift was applied

    # 00:30 Beijing = 16:30 UTC on 2026-11-01, but the local event day is 2026-11-02
    fcev = by_key[("V2", utc("2026-11-01 16:30:00"))]
    assert fcev.event_date_local == dt.date(2026, 11, 2)
    assert np.isnan(fcev.h2_remaining_pct)            # 0xFE: abnormal
    assert fcev.total_voltage_v == 540.0 and fcev.total_current_a == 10.0   # 30,100 x 0.1 - 3,000


def test_ingest_peers_agree(ingested):
    report = pc.compare(ingested["duckdb"][1], ingested["pandas"][1], pc.SILVER_TELEMATICS_KEY,
                        pc.SILVER_TELEMATICS_VALUES, pc.INGEST_REL_TOL, pc.INGEST_ABS_TOL)
    assert report["agree"], report
    assert ingested["duckdb"][0] | {"seconds": 0} == ingested["pandas"][0] | {"seconds": 0}


def test_compare_reports_differences():
    ours = pd.DataFrame({"day": [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)],
                         "x": [1.0, 2.0, None]})
    peer = pd.DataFrame({"day": pd.to_datetime(["2026-11-01", "2026-11-02", "2026-11-04"]), "x": [1.0 + 1e-9, 2.5, 7.0]})
    report = pc.compare(ours, peer, ["day"], ["x"], rel_tol=1e-6, abs_tol=1e-6)
    # 1.0 vs 1.000000001 agrees; 2.0 vs 2.5 differs by 0.5 (0.2 of 2.5); 11-03 and 11-04 are one-sided
    assert not report["agree"]
    assert (report["only_ours"], report["only_peer"], report["rows_matched"]) == (1, 1, 2)
    assert report["only_ours_keys"] == ["2026-11-03"] and report["only_peer_keys"] == ["2026-11-04"]
    col = report["columns"]["x"]
    assert col["mismatches"] == 1 and col["max_abs_diff"] == 0.5 and col["max_rel_diff"] == pytest.approx(0.2)
    assert col["worst_key"] == "2026-11-02" and (col["worst_ours"], col["worst_peer"]) == (2.0, 2.5)
    assert pc.compare(ours.iloc[:1], peer.iloc[:1], ["day"], ["x"])["agree"]
    json.dumps(report)      # the benchmark writes it as JSON


# --- one truck-day from silver, worked by hand ---------------------------------------------------------
def _write_silver(lake: Path, table: str, df: pd.DataFrame, partitioned: bool) -> None:
    from deltalake import write_deltalake

    write_deltalake(str(lake / "silver" / table), pa.Table.from_pandas(df, preserve_index=False),
                    partition_by=["event_date_local"] if partitioned else None)


# FCEV V9, 600 V pack, 60 kg tank. Local times (UTC + 8 h); the 4th frame is on the next local day.
TRUCK_DAY_FRAMES = [
    # local time,            speed, odometer, current A, H2 %
    ("2026-11-02 23:40:00", 50.0, 1000.0, 100.0, 50.0),
    ("2026-11-02 23:54:00", 0.0, 1008.0, -30.0, 48.0),
    ("2026-11-02 23:58:00", 30.0, 1008.5, 200.0, 48.0),
    ("2026-11-03 00:02:00", 30.0, 1010.5, 200.0, 47.0),
]


@pytest.fixture(scope="module")
def truck_lake(tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("truck_lake")
    local = pd.to_datetime([f[0] for f in TRUCK_DAY_FRAMES])
    frames = pd.DataFrame({
        "vin": "V9", "event_ts_utc": (local - pd.Timedelta(hours=8)).tz_localize("UTC").astype("datetime64[us, UTC]"),
        "speed_kmh": [f[1] for f in TRUCK_DAY_FRAMES], "odometer_km": [f[2] for f in TRUCK_DAY_FRAMES],
        "total_voltage_v": 600.0, "total_current_a": [f[3] for f in TRUCK_DAY_FRAMES], "soc_pct": 60.0,
        "h2_remaining_pct": [f[4] for f in TRUCK_DAY_FRAMES], "fuel_total_l": np.nan,
        "event_date_local": [d.date() for d in local],
    })
    _write_silver(lake, "silver_telematics", frames, partitioned=True)
    trucks = pd.DataFrame({"vin": ["V9"], "company_id": ["C1"], "powertrain": ["FCEV"], "battery_kwh": [100.0],
                           "h2_tank_kg": [60.0]})
    _write_silver(lake, "silver_trucks", trucks, partitioned=False)
    return lake


# 23:40 -> 23:54: 840 s > 300 s: a gap, not integrated; 8.0 km (distance_km only); H2 50 -> 48 % = 2 % x 60 kg = 1.2 kg
# 23:54 -> 23:58: 240 s, integrated; speed 0 but the odometer advances 0.5 km: moving, so -30 A is regen:
#                 600 V x 30 A x 240 s / 3.6e6 = 1.2 kWh
# 23:58 -> 00:02 (next local day): 240 s, integrated, counted on the day of its first frame; 2.0 km;
#                 600 V x 200 A x 240 s / 3.6e6 = 8.0 kWh discharged; H2 48 -> 47 % = 0.6 kg
HAND_WORKED_DAY = {
    "frames": 3, "integrated_s": 480.0, "gap_s": 840.0, "distance_km": 10.5, "integrated_distance_km": 2.5,
    "battery_discharge_kwh": 8.0, "regen_kwh": 1.2, "battery_net_kwh": 6.8, "h2_used_kg": 1.8, "diesel_l": 0.0,
}


@pytest.mark.parametrize("peer", PEERS)
def test_truck_day_hand_worked(truck_lake, peer):
    day = dt.date(2026, 11, 2)
    out = PEERS[peer].truck_energy_daily(truck_lake, day, day)
    assert len(out) == 1
    row = out.iloc[0]
    assert (pd.Timestamp(row["date_local"]).date(), row["vin"]) == (day, "V9")
    for column, expected in HAND_WORKED_DAY.items():
        assert row[column] == pytest.approx(expected, abs=1e-9), column


def test_ours_follows_the_written_moving_rule(spark, truck_lake):
    from deltalake import DeltaTable

    from jobs.kpi.truck_energy import truck_energy_daily, truck_interval_sums

    frames = spark.createDataFrame(DeltaTable(str(truck_lake / "silver" / "silver_telematics")).to_pandas())
    trucks = spark.createDataFrame(DeltaTable(str(truck_lake / "silver" / "silver_trucks")).to_pandas())
    tickets = spark.createDataFrame([], "vin string, ticket_id string, load_ts_utc timestamp, net_t double, "
                                        "event_date_local date")
    sessions = spark.createDataFrame([], "vin string, session_id string, energy_kwh double, event_date_local date")
    rules = pc.rule_parameters("truck_energy", dt.date(2026, 11, 2))
    sums = truck_interval_sums(frames, trucks=trucks, tickets=tickets, rule_version="test", **rules)
    day = truck_energy_daily(sums, tickets=tickets, charging_sessions=sessions).filter("vin = 'V9'")
    row = day.filter(day.date_local == dt.date(2026, 11, 2)).first()
    assert row["regen_kwh"] == pytest.approx(HAND_WORKED_DAY["regen_kwh"])


# --- the sample month: peers against our gold and our silver -------------------------------------------
@pytest.fixture(scope="module")
def peer_gold_timed(sample_gold_lake) -> dict[str, tuple[dict[str, pd.DataFrame], float]]:
    """Per peer: its KPI frames and the wall time of the call measured here."""
    settings, _ = sample_gold_lake
    out = {}
    for name, peer in PEERS.items():
        started = time.perf_counter()
        frames = peer.gold_kpis(settings.lake_root, SAMPLE_START, SAMPLE_END)
        out[name] = (frames, time.perf_counter() - started)
    return out


@pytest.fixture(scope="module")
def peer_gold(peer_gold_timed) -> dict[str, dict[str, pd.DataFrame]]:
    return {name: frames for name, (frames, _) in peer_gold_timed.items()}


@pytest.mark.parametrize("peer", PEERS)
def test_peer_gold_timings_are_measured(peer_gold_timed, peer):
    frames, elapsed_s = peer_gold_timed[peer]
    seconds = [frames[table].attrs["seconds"] for table in pc.PEER_KPIS]
    # one timing per family, each rounded to 1 ms; together they are the call's time less its set-up, so
    # positive (each family reads Delta files from disk) and at most the call's wall time
    assert all(isinstance(s, float) and s >= 0 for s in seconds), seconds
    assert 0 < sum(seconds) <= elapsed_s + 0.0005 * len(seconds), (seconds, elapsed_s)


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("table", list(pc.PEER_KPIS))
def test_peer_gold_agrees_with_ours(sample_gold_lake, peer_gold, peer, table):
    settings, _ = sample_gold_lake
    spec = pc.PEER_KPIS[table]
    ours = pc.read_gold(settings.lake_root, spec, SAMPLE_START, SAMPLE_END)
    theirs = peer_gold[peer][table]
    report = pc.compare(ours, theirs, spec.keys, spec.columns, ours_where=spec.ours_filter)
    assert report["agree"], report
    assert report["rows_matched"] > 0, report     # agreement on no rows would prove nothing


def test_peers_gold_agree_with_each_other(peer_gold):
    for table, spec in pc.PEER_KPIS.items():
        report = pc.compare(peer_gold["duckdb"][table], peer_gold["pandas"][table], spec.keys, spec.columns)
        assert report["agree"], (table, report)


@pytest.mark.parametrize("peer", PEERS)
def test_peer_ingest_of_the_sample_matches_our_silver(sample_gold_lake, tmp_path, peer):
    settings, _ = sample_gold_lake
    files = sorted((REPO / "data_samples" / "landing" / "telematics").glob("*/*.jsonl*"))
    stats = PEERS[peer].ingest_telematics(files, tmp_path / "telematics.parquet")
    ours = pc.read_delta(settings.lake_root, "silver_telematics", None).to_pandas()
    assert stats["rows_out"] == len(ours)
    report = pc.compare(ours, pd.read_parquet(tmp_path / "telematics.parquet"), pc.SILVER_TELEMATICS_KEY,
                        pc.SILVER_TELEMATICS_VALUES, pc.INGEST_REL_TOL, pc.INGEST_ABS_TOL)
    assert report["agree"], report
