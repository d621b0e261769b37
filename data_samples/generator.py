"""Seeded, deterministic sample-world generator writing the landing layout of schemas/sources.py.

    python -m data_samples.generator --out DIR --seed 42 --preset sample

Writes ``<out>/<source>/<yyyy-mm-dd>/<file>`` (dimension snapshots in the first day's folder, events in
their delivery day's folder), ``<out>/_manifest.json`` (parameters and ground truth) and
``<out>/_faults.jsonl`` (every injected data fault). Same parameters -> the same bytes, whatever --jobs.
See data_samples/README.md.
"""
from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field

from data_samples.config import GENERATOR_VERSION, Config, parse_args
from data_samples.faults import CSV_FAULT_FIELDS, CSV_FAULTS, LANDING_KEY, LATE_DAYS, corrupt, pick_kind
from data_samples.fleet import GroupOutput, TELEMATICS_FAULTS, make_groups, run_group
from data_samples.operations import duty_roster, production, production_plan, truck_budgets, wash_and_ship
from data_samples.rng import stream
from data_samples.world import DAY_S, Clock, World, build_world
from schemas.sources import SOURCES

MANIFEST = "_manifest.json"
FAULT_LOG = "_faults.jsonl"
EVENT_CSV_SOURCES = ("production_plan", "mine_production", "washing", "weighbridge", "charging_sessions", "connector_status",
                     "h2_fills", "shipments")


@dataclass
class CsvRow:
    day: int                   # delivery day (index)
    sort_key: tuple
    values: dict[str, str]


@dataclass
class SourceStats:
    files: int = 0
    rows_written: int = 0
    distinct_true: int = 0
    faults: dict[str, int] = field(default_factory=dict)

    def as_dict(self, destroying: tuple[str, ...]) -> dict:
        lost = sum(self.faults.get(k, 0) for k in destroying)
        return {"files": self.files, "rows_written": self.rows_written, "distinct_true": self.distinct_true,
                "distinct_valid": self.distinct_true - lost, "faults": dict(sorted(self.faults.items()))}


# Faults after which a record no longer counts as a valid record of the true world.
DESTROYING = ("out_of_range", "non_numeric", "clock_jump", "truncated")


def _f(x: float, nd: int) -> str:
    return f"{x:.{nd}f}"


def _csv_bytes(fields: tuple[str, ...], rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([r[f] for f in fields])
    return buf.getvalue().encode("utf-8")


class LandingWriter:
    def __init__(self, out_dir: str, clock: Clock):
        self.out_dir, self.clock = out_dir, clock
        self.written: list[str] = []          # relative paths of original event files

    def write(self, rel: str, data: bytes) -> None:
        path = os.path.join(self.out_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)

    def csv_path(self, source: str, day: int, suffix: str = "") -> str:
        return f"{source}/{self.clock.date(day)}/{source}_{self.clock.yyyymmdd(day)}{suffix}.csv"


# --- dimensions ------------------------------------------------------------------------------------
def dimension_rows(world: World) -> dict[str, list[dict[str, str]]]:
    b = lambda x: "true" if x else "false"  # noqa: E731
    return {
        "companies": [{"company_id": c.company_id, "company_name": c.name} for c in world.companies],
        "mines": [{
            "mine_id": m.mine_id, "company_id": m.company_id, "mine_name": m.name, "mine_type": m.mine_type,
            "banner": m.banner, "capacity_mt_per_yr": _f(m.capacity_mt, 1), "intelligent_since": m.intelligent_since,
            "lat_deg": _f(m.lat, 6), "lon_deg": _f(m.lon, 6),
            "shift_day_start_local": f"{m.shift_start_min // 60:02d}:{m.shift_start_min % 60:02d}",
        } for m in world.mines],
        "washing_plants": [{
            "plant_id": p.plant_id, "company_id": p.company_id, "mine_id": p.mine_id, "plant_name": p.name,
            "banner": p.banner, "coal_type": p.coal_type, "process": p.process,
            "capacity_mt_per_yr": _f(p.capacity_mt, 1),
        } for p in world.plants],
        "trucks": [{
            "vin": t.vin, "company_id": t.company_id, "powertrain": t.powertrain,
            "battery_kwh": str(t.battery_kwh) if t.battery_kwh else "",
            "h2_tank_kg": str(t.h2_tank_kg) if t.h2_tank_kg else "",
            "rated_payload_t": _f(t.rated_payload_t, 1), "swap_capable": b(t.swap_capable),
        } for t in world.trucks],
        "charging_stations": [{
            "station_id": s.station_id, "company_id": s.company_id, "station_name": s.name, "banner": s.banner,
            "in_mine_area": b(s.in_mine_area), "lat_deg": _f(s.lat, 6), "lon_deg": _f(s.lon, 6),
        } for s in world.charging_stations],
        "charging_connectors": [{"station_id": s.station_id, "connector_id": c.connector_id, "rated_kw": str(c.rated_kw)}
                                for s in world.charging_stations for c in s.connectors],
        "h2_stations": [{
            "station_id": s.station_id, "company_id": s.company_id, "station_name": s.name, "banner": s.banner,
            "in_mine_area": b(s.in_mine_area), "nameplate_kg_per_day": str(s.nameplate_kg_per_day),
            "dispensers": str(s.dispensers), "pressure_class_mpa": str(s.pressure_class_mpa),
        } for s in world.h2_stations],
    }


# --- events ----------------------------------------------------------------------------------------
def event_rows(world: World, clock: Clock, plan, shifts, wash_days, shipments, fleet: list[GroupOutput]):
    ts = clock.ts
    rows: dict[str, list[CsvRow]] = {s: [] for s in EVENT_CSV_SOURCES}
    for p in plan:
        if p.shift_day < 0:
            continue   # the plan of the shift-day before the window was published before it
        # delivered on its publication day; plans published before the window land in the first folder
        rows["production_plan"].append(CsvRow(max(0, p.published_s // DAY_S), (p.mine_id, p.start_s), {
            "mine_id": p.mine_id, "shift_date": clock.date(p.shift_day), "shift_no": str(p.shift_no),
            "shift_start_local": ts(p.start_s), "planned_raw_coal_t": _f(p.planned_raw_coal_t, 0),
            "trucks_dispatched": str(p.trucks_dispatched), "published_local": ts(p.published_s)}))
    for s in shifts:
        rows["mine_production"].append(CsvRow((s.end_s - 1) // DAY_S, (s.mine_id, s.start_s), {
            "mine_id": s.mine_id, "shift_date": clock.date(s.shift_day), "shift_no": str(s.shift_no),
            "shift_start_local": ts(s.start_s), "shift_end_local": ts(s.end_s), "raw_coal_t": _f(s.raw_coal_t, 2),
            "electricity_kwh": _f(s.electricity_kwh, 1), "diesel_kg": _f(s.diesel_kg, 1),
            "other_energy_kgce": "" if s.other_energy_kgce is None else _f(s.other_energy_kgce, 1)}))
    for w in wash_days:
        rows["washing"].append(CsvRow(w.day, (w.plant_id,), {
            "plant_id": w.plant_id, "prod_date": clock.date(w.day), "raw_coal_fed_t": _f(w.raw_coal_fed_t, 2),
            "clean_coal_t": _f(w.clean_coal_t, 2), "middlings_t": _f(w.middlings_t, 2), "gangue_t": _f(w.gangue_t, 2),
            "slime_t": _f(w.slime_t, 2), "electricity_kwh": _f(w.electricity_kwh, 1), "water_m3": _f(w.water_m3, 1),
            "magnetite_kg": _f(w.magnetite_kg, 1)}))
    tickets = sorted((t for g in fleet for t in g.tickets), key=lambda t: (t["mine_id"], t["t"], t["vin"]))
    seq: dict[tuple, int] = {}
    for t in tickets:
        day = t["t"] // DAY_S
        n = seq[(t["mine_id"], day)] = seq.get((t["mine_id"], day), 0) + 1
        rows["weighbridge"].append(CsvRow(day, (t["t"], t["vin"]), {
            "ticket_id": f"WB-{t['mine_id']}-{clock.yyyymmdd(day)}-{n:04d}", "vin": t["vin"], "mine_id": t["mine_id"],
            "load_time_local": ts(t["t"]), "gross_t": _f(t["gross_t"], 2), "tare_t": _f(t["tare_t"], 2),
            "net_t": _f(t["net_t"], 2), "destination_id": t["destination_id"]}))
    sessions = sorted((s for g in fleet for s in g.sessions), key=lambda s: (s["station_id"], s["plug_in"], s["connector_id"]))
    seq = {}
    for s in sessions:
        n = seq[s["station_id"]] = seq.get(s["station_id"], 0) + 1
        rows["charging_sessions"].append(CsvRow(s["plug_out"] // DAY_S, (s["plug_out"], s["station_id"]), {
            "session_id": f"{s['station_id']}-S{n:06d}", "station_id": s["station_id"],
            "connector_id": s["connector_id"], "vin": s["vin"], "plug_in_local": ts(s["plug_in"]),
            "charge_start_local": ts(s["charge_start"]), "charge_end_local": ts(s["charge_end"]),
            "plug_out_local": ts(s["plug_out"]), "meter_start_kwh": _f(s["meter_start_kwh"], 3),
            "meter_stop_kwh": _f(s["meter_stop_kwh"], 3), "max_power_kw": _f(s["max_power_kw"], 1),
            "stop_reason": s["stop_reason"]}))
    for sid, cid, t, code in sorted(st for g in fleet for st in g.statuses):
        rows["connector_status"].append(CsvRow(t // DAY_S, (t, sid, cid), {
            "station_id": sid, "connector_id": cid, "status_time_local": ts(t), "status_code": str(code)}))
    fills = sorted((f for g in fleet for f in g.fills), key=lambda f: (f["station_id"], f["start"], f["dispenser_id"]))
    seq = {}
    for f in fills:
        n = seq[f["station_id"]] = seq.get(f["station_id"], 0) + 1
        rows["h2_fills"].append(CsvRow(f["end"] // DAY_S, (f["end"], f["station_id"]), {
            "fill_id": f"{f['station_id']}-F{n:06d}", "station_id": f["station_id"], "dispenser_id": f["dispenser_id"],
            "vin": f["vin"], "start_local": ts(f["start"]), "end_local": ts(f["end"]), "h2_kg": _f(f["h2_kg"], 2),
            "pressure_mpa": str(f["pressure_mpa"])}))
    seq = {}
    for s in shipments:
        n = seq[(s.mine_id, s.day)] = seq.get((s.mine_id, s.day), 0) + 1
        rows["shipments"].append(CsvRow(s.day, (s.mine_id, n), {
            "shipment_id": f"SH-{s.mine_id}-{clock.yyyymmdd(s.day)}-{n:03d}", "mine_id": s.mine_id,
            "product": s.product, "tonnes": _f(s.tonnes, 2), "ship_date": clock.date(s.day), "destination": s.destination,
            "distance_km": str(s.distance_km), "legs": "|".join(f"{m}:{km}" for m, km in s.legs)}))
    for source, rs in rows.items():
        keys = [tuple(r.values[k] for k in LANDING_KEY[source]) for r in rs]
        if len(set(keys)) != len(keys):
            raise AssertionError(f"generator bug: duplicate natural keys in clean {source}")
    return rows


def inject_csv_faults(rows: dict[str, list[CsvRow]], cfg: Config):
    """Decide (per row, then at least one of each kind when the rate is > 0) and apply CSV faults."""
    frng = stream(cfg.seed, "faults-csv")
    decisions: dict[str, dict[int, str]] = {s: {} for s in rows}
    if cfg.fault_rate > 0:
        for source in EVENT_CSV_SOURCES:
            for i in range(len(rows[source])):
                if frng.random() < cfg.fault_rate:
                    decisions[source][i] = pick_kind(frng)
        seen = {k for d in decisions.values() for k in d.values()}
        for kind, _ in CSV_FAULTS:
            if kind in seen:
                continue
            source = max(EVENT_CSV_SOURCES, key=lambda s: len(rows[s]) - len(decisions[s]))
            free = [i for i in range(len(rows[source])) if i not in decisions[source]]
            if free:
                decisions[source][free[frng.randrange(len(free))]] = kind
    log: list[dict] = []
    per_file: dict[str, dict[int, dict[str, list]]] = {}
    counts: dict[str, dict[str, int]] = {s: {} for s in rows}
    for source in EVENT_CSV_SOURCES:
        files = per_file[source] = {}
        for i, row in enumerate(rows[source]):
            kind = decisions[source].get(i)
            day = row.day
            values = dict(row.values)
            slot = "on_time"
            entry = None
            if kind:
                counts[source][kind] = counts[source].get(kind, 0) + 1
                entry = {"source": source, "kind": kind, "key": {k: row.values[k] for k in LANDING_KEY[source]}}
                if kind == "late_record":
                    day += frng.choice(LATE_DAYS)
                    slot = "late"
                elif kind in ("out_of_range", "non_numeric", "clock_jump"):
                    entry["field"], entry["written_value"] = corrupt(source, kind, values, frng)
            f = files.setdefault(day, {"on_time": [], "late": [], "dup": []})
            f[slot].append(values)
            if kind == "dup_record":
                f["dup"].append(dict(values))
            if entry is not None:
                entry["delivery_day"] = day
                log.append(entry)
    return per_file, log, counts


def write_redeliveries(out_dir: str, clock: Clock, candidates: list[str], cfg: Config, stats: dict[str, SourceStats],
                       row_counts: dict[str, int]) -> list[dict]:
    """Deliver some files a second time, under another name, one or two days later."""
    if cfg.fault_rate <= 0 or not candidates:
        return []
    frng = stream(cfg.seed, "faults-files")
    in_window = [c for c in candidates if 0 <= clock_day(clock, c.split("/")[1]) < cfg.days]
    tele = [c for c in in_window if c.startswith("telematics/")]
    other = [c for c in in_window if not c.startswith("telematics/")]
    chosen = []
    for pool in (tele, other):
        if pool:
            chosen.append(pool[frng.randrange(len(pool))])
    for c in candidates:
        if c not in chosen and frng.random() < cfg.fault_rate * 2:
            chosen.append(c)
    log = []
    for rel in chosen:
        source, day_str, name = rel.split("/")
        day = (clock_day(clock, day_str)) + frng.choice((1, 2))
        stem, ext = (name[:-len(".jsonl.gz")], ".jsonl.gz") if name.endswith(".jsonl.gz") else os.path.splitext(name)
        new_rel = f"{source}/{clock.date(day)}/{stem}_redelivered{ext}"
        dst = os.path.join(out_dir, new_rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(out_dir, rel), dst)
        st = stats[source]
        st.files += 1
        st.rows_written += row_counts[rel]
        st.faults["dup_file"] = st.faults.get("dup_file", 0) + 1
        st.faults["dup_file_rows"] = st.faults.get("dup_file_rows", 0) + row_counts[rel]
        log.append({"source": source, "kind": "dup_file", "file": new_rel, "copy_of": rel, "rows": row_counts[rel]})
    return log


def clock_day(clock: Clock, date_str: str) -> int:
    import datetime as dt
    return (dt.date.fromisoformat(date_str) - clock.start).days


def _run_groups(tasks, jobs: int) -> list[GroupOutput]:
    if jobs <= 1 or len(tasks) <= 1:
        return [run_group(t) for t in tasks]
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(min(jobs, len(tasks))) as pool:
        return pool.map(run_group, tasks, chunksize=1)


def _r(x, nd=4):
    return None if x is None else round(x, nd)


def generate(cfg: Config, out_dir: str, jobs: int = 1, overwrite: bool = False) -> dict:
    """Write the world described by ``cfg`` under ``out_dir``; returns the manifest."""
    cfg.validate()
    _prepare_out(out_dir, overwrite)
    started = time.perf_counter()
    world = build_world(cfg)
    clock = Clock(cfg.start())
    writer = LandingWriter(out_dir, clock)
    stats = {name: SourceStats() for name in SOURCES}
    row_counts: dict[str, int] = {}

    for source, rows in dimension_rows(world).items():
        rel = writer.csv_path(source, 0)
        writer.write(rel, _csv_bytes(SOURCES[source].fields, rows))
        stats[source].files, stats[source].rows_written, stats[source].distinct_true = 1, len(rows), len(rows)

    plan = production_plan(world)
    shifts = production(world, plan)
    budgets = truck_budgets(world, shifts)
    roster = duty_roster(world, shifts)
    groups = make_groups(world, cfg.trucks_per_file)
    tasks = [(world, budgets, roster, gid, st_ids, vins, out_dir) for gid, (st_ids, vins) in enumerate(groups)]
    fleet = _run_groups(tasks, jobs or os.cpu_count() or 1)
    fleet_s = time.perf_counter() - started

    tickets = [t for g in fleet for t in g.tickets]
    wash_days, shipments, mine_truth = wash_and_ship(world, shifts, tickets)
    rows = event_rows(world, clock, plan, shifts, wash_days, shipments, fleet)
    per_file, fault_log, csv_counts = inject_csv_faults(rows, cfg)
    candidates: list[str] = []
    for source in EVENT_CSV_SOURCES:
        st = stats[source]
        st.distinct_true = len(rows[source])
        st.faults = csv_counts[source]
        days = sorted(set(range(cfg.days)) | set(per_file[source]))
        for day in days:
            f = per_file[source].get(day, {"on_time": [], "late": [], "dup": []})
            data_rows = f["on_time"] + f["late"] + f["dup"]
            rel = writer.csv_path(source, day)
            writer.write(rel, _csv_bytes(SOURCES[source].fields, data_rows))
            st.files += 1
            st.rows_written += len(data_rows)
            row_counts[rel] = len(data_rows)
            if data_rows:
                candidates.append(rel)
    for entry in fault_log:
        entry["file"] = writer.csv_path(entry["source"], entry.pop("delivery_day"))

    tel = stats["telematics"]
    tel.distinct_true = sum(g.telematics_records for g in fleet)
    for g in fleet:
        for rel, n in g.telematics_files.items():
            tel.files += 1
            tel.rows_written += n
            row_counts[rel] = n
            candidates.append(rel)
        for e in g.telematics_faults:
            tel.faults[e["kind"]] = tel.faults.get(e["kind"], 0) + 1
            fault_log.append(e)
    fault_log += write_redeliveries(out_dir, clock, sorted(candidates), cfg, stats, row_counts)

    manifest = _manifest(cfg, world, fleet, stats, mine_truth, shifts, wash_days)
    with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")
    order = {s: i for i, s in enumerate(SOURCES)}
    fault_log.sort(key=lambda e: (order[e["source"]], e.get("file", ""), json.dumps(e, sort_keys=True)))
    with open(os.path.join(out_dir, FAULT_LOG), "w", encoding="utf-8") as fh:
        for e in fault_log:
            fh.write(json.dumps(e, sort_keys=True) + "\n")
    elapsed = time.perf_counter() - started
    print(f"[generator] {cfg.preset}: {tel.rows_written:,} telematics rows in {tel.files} files, "
          f"{sum(s.rows_written for n, s in stats.items() if n != 'telematics'):,} CSV rows; fleet {fleet_s:.1f} s, "
          f"total {elapsed:.1f} s, {tel.rows_written / max(elapsed, 1e-9):,.0f} telematics rows/s", file=sys.stderr)
    return manifest


def _prepare_out(out_dir: str, overwrite: bool) -> None:
    os.makedirs(out_dir, exist_ok=True)
    ours = [n for n in os.listdir(out_dir) if n in SOURCES or n in (MANIFEST, FAULT_LOG)]
    if ours and not overwrite:
        raise SystemExit(f"{out_dir} already holds a landing world ({', '.join(sorted(ours)[:3])}...); "
                         "pass --overwrite to replace it")
    for n in ours:
        p = os.path.join(out_dir, n)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


def _manifest(cfg: Config, world: World, fleet: list[GroupOutput], stats, mine_truth, shifts, wash_days) -> dict:
    trucks = {}
    for g in fleet:
        for vin, t in g.trucks.items():
            t = dict(t)
            open_session, open_fill = t.pop("open_session"), t.pop("open_fill")
            trucks[vin] = {k: (_r(v) if isinstance(v, float) else v) for k, v in sorted(t.items())}
            # a charge / fill still running when the window ends: no session / fill row (it ends later)
            for key, value in (("open_session_at_end", open_session), ("open_fill_at_end", open_fill)):
                trucks[vin][key] = None if value is None else {
                    k: (_r(v) if isinstance(v, float) else v) for k, v in sorted(value.items())}
    efficiency = {s.station_id: s.charger_efficiency for s in world.charging_stations}
    home = {t.vin: {"mine_id": t.mine_id, "station_id": t.station_id, "coord_sys": t.coord_sys,
                    "interval_s": t.interval_s, "tare_t": t.tare_t,
                    "charger_efficiency": efficiency.get(t.station_id)} for t in world.trucks}
    for vin in trucks:
        trucks[vin].update(home[vin])
    sessions_by_station: dict[str, list] = {}
    for g in fleet:
        for s in g.sessions:
            sessions_by_station.setdefault(s["station_id"], []).append(s)
    stations = {s.station_id: {
        "charger_efficiency": s.charger_efficiency, "mine_id": s.mine_id,
        "sessions": len(sessions_by_station.get(s.station_id, [])),
        "grid_kwh": _r(sum(x["grid_kwh"] for x in sessions_by_station.get(s.station_id, []))),
        "battery_kwh": _r(sum(x["battery_kwh"] for x in sessions_by_station.get(s.station_id, []))),
    } for s in world.charging_stations}
    mines = {}
    for m in world.mines:
        mines[m.mine_id] = dict(mine_truth[m.mine_id])
        mines[m.mine_id]["raw_coal_t"] = _r(sum(s.raw_coal_t for s in shifts if s.mine_id == m.mine_id), 2)
        mines[m.mine_id]["trucks"] = world.trucks_per_mine[m.mine_id]
        mines[m.mine_id]["elevation_m"] = m.elevation_m
    plants = {p.plant_id: {"mine_id": p.mine_id,
                           "raw_coal_fed_t": _r(sum(w.raw_coal_fed_t for w in wash_days if w.plant_id == p.plant_id), 2),
                           "clean_coal_t": _r(sum(w.clean_coal_t for w in wash_days if w.plant_id == p.plant_id), 2)}
              for p in world.plants}
    fault_totals: dict[str, int] = {}
    for s in stats.values():
        for k, v in s.faults.items():
            fault_totals[k] = fault_totals.get(k, 0) + v
    return {
        "generator_version": GENERATOR_VERSION,
        "params": cfg.as_dict(),
        "window": {"start_local": f"{cfg.start_date} 00:00:00", "days": cfg.days,
                   "timezone_of_local_times": "Asia/Shanghai"},
        "sources": {name: s.as_dict(DESTROYING) for name, s in stats.items()},
        "faults": {
            "rate": cfg.fault_rate, "totals": dict(sorted(fault_totals.items())), "log": FAULT_LOG,
            "telematics_kind_weights": dict(TELEMATICS_FAULTS), "csv_kind_weights": dict(CSV_FAULTS),
            "csv_fields": {s: {k: (v[0] if isinstance(v, tuple) else v) for k, v in f.items()}
                           for s, f in CSV_FAULT_FIELDS.items()},
            "destroying_kinds": list(DESTROYING),
            "equipment_faults_connector_255": sum(g.equipment_faults for g in fleet),
        },
        "ground_truth": {
            "trucks": dict(sorted(trucks.items())),
            "charging_stations": stations,
            "mines": mines,
            "washing_plants": plants,
            "destinations": {d.dest_id: {"kind": d.kind, "lat_deg": d.lat, "lon_deg": d.lon,
                                         "rail_destination": d.rail_dest or None, "rail_km": d.rail_km or None}
                             for d in world.destinations},
            "routes": {m: {r.dest_id: r.road_km for r in rs} for m, rs in world.mine_routes.items()},
        },
    }


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    generate(cfg, args.out, jobs=args.jobs, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
