"""Truck duty cycles: telematics frames, weighbridge tickets, charging sessions, connector status, H2 fills.

A *group* is a set of stations plus the trucks that use them (and some diesel trucks); groups share
nothing, so they run in any order or process and give the same bytes. Inside a group trucks run one
after another over the whole window; a truck that needs a connector or dispenser books the earliest free
slot left by the trucks before it (so queues appear and a connector never serves two trucks).

Physics (one step per telematics frame, ``dt`` = the truck's frame interval):
  road load   F = m g (Crr + grade) + 1/2 rho CdA v^2 + 1.05 m a   (Crr 0.008, CdA 8 m2)
  BEV         battery power = F v / 0.85 (traction) or F v * 0.65 (regeneration, >= -250 kW) + auxiliaries (5 kW driving)
  FCEV        the same demand is split: the fuel cell (58 % of H2 LHV, <= 150 kW) follows demand and
              restores the buffer pack towards 60 % SOC; the pack takes peaks and regeneration
  diesel      fuel = max(F v, 0) / (0.38 * 9.96 kWh/L) + 2.5 L/h idling with the engine on
A frame at time t carries the state at t (speed, odometer, SOC, H2, fuel, position) and the pack voltage
and current that hold over [t, t + dt). Voltage and current are rounded to the contract's 0.1 V / 0.1 A
*before* the energy V*I*dt is taken off the pack, so integrating the frames reproduces the SOC path
exactly (the SOC field itself is rounded to 1 %).
"""
from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass, field

from data_samples.geo import wgs84_to_gcj02
from data_samples.rng import stream
from data_samples.world import (
    DAY_S, PLAN_BEV_KWH_PER_KM, PLAN_CHARGE_TO, PLAN_FCEV_KG_PER_KM, PLAN_FILL_TO, PLAN_RESERVE, Clock, Truck,
    World, plan_round_trip, shift_day_index,
)

G = 9.81
CRR = 0.0080           # rough haul roads, winter tyres
HALF_RHO_CDA = 0.5 * 1.2 * 8.0   # tractor with an open-top coal trailer
ROTATING_MASS = 1.05
ETA_DRIVE = 0.85
ETA_REGEN = 0.65
P_REGEN_MAX_W = 250e3
P_DRIVE_MAX_W = 420e3
AUX_DRIVE_W = 5000.0    # compressor, steering pump, cab and pack heating (Ordos winter)
AUX_PARK_W = 1500.0
H2_LHV_J_PER_KG = 33.33 * 3.6e6
FC_EFFICIENCY = 0.58
FC_MAX_W = 150e3
FCEV_SOC_TARGET = 0.60
DIESEL_J_PER_L = 9.96 * 3.6e6
DIESEL_ENGINE_EFF = 0.38
DIESEL_IDLE_L_PER_S = 2.5 / 3600
J_PER_KWH = 3.6e6
V_LIMIT = 85 / 3.6      # heavy-truck speed limiter
TRIP_PLAN_KMH = 55.0    # average speed a dispatcher plans a round trip with (loading and queues in the 1800 s)
TOPUP_SOC = 0.75        # a BEV going off duty below this SOC charges before it parks
PARKED_MIN_SOC = 0.3    # ... and a parked BEV whose pack ran down to this charges again
MAX_PARK_S = 12 * 3600

# Raw sentinels of schemas.sources.TELEMATICS_ENCODING.
WORD_INVALID, WORD_ABNORMAL = 0xFFFF, 0xFFFE
BYTE_INVALID, BYTE_ABNORMAL = 0xFF, 0xFE
DWORD_INVALID, DWORD_ABNORMAL = 0xFFFFFFFF, 0xFFFFFFFE

# Data faults of telematics frames and their relative weights (share of --fault-rate).
TELEMATICS_FAULTS = (("dup_record", 0.25), ("late_record", 0.25), ("sentinel", 0.15), ("out_of_range", 0.12),
                     ("clock_jump", 0.08), ("truncated", 0.15))


class EndOfWindow(Exception):
    """The truck's clock reached the end of the simulated window."""


class Booking:
    """Busy intervals [start, end) of one connector or dispenser."""

    MARGIN_S = 60

    def __init__(self) -> None:
        self.busy: list[tuple[int, int]] = []

    def earliest(self, t: int, duration: int) -> int:
        start = t
        for b0, b1 in self.busy:   # sorted by start
            if b1 + self.MARGIN_S <= start:
                continue
            if start + duration + self.MARGIN_S <= b0:
                break
            start = max(start, b1 + self.MARGIN_S)
        return start

    def add(self, start: int, end: int) -> None:
        self.busy.append((start, end))
        self.busy.sort()

    def replace(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        self.busy.remove(old)
        self.add(*new)


class TelemetryFiles:
    """One gzip JSON-lines file per delivery day for a group, opened on first use.

    gzip with mtime=0 and no file name in the header: the bytes depend only on the content.
    """

    def __init__(self, out_dir: str, group_id: int, clock: Clock, enabled: bool = True):
        self.out_dir, self.group_id, self.clock, self.enabled = out_dir, group_id, clock, enabled
        self.handles: dict[int, tuple] = {}
        self.lines: dict[int, int] = {}

    def rel_path(self, day: int) -> str:
        d = self.clock.date(day)
        return f"telematics/{d}/frames_{self.clock.yyyymmdd(day)}_g{self.group_id:02d}.jsonl.gz"

    def write(self, day: int, lines: list[str]) -> None:
        if not lines or not self.enabled:
            return
        h = self.handles.get(day)
        if h is None:
            path = os.path.join(self.out_dir, self.rel_path(day))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            raw = open(path, "wb")
            h = self.handles[day] = (raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6))
            self.lines[day] = 0
        h[1].write("".join(lines).encode("ascii"))
        self.lines[day] += len(lines)

    def close(self) -> dict[str, int]:
        for raw, gz in self.handles.values():
            gz.close()
            raw.close()
        return {self.rel_path(d): n for d, n in sorted(self.lines.items())}


@dataclass
class GroupOutput:
    tickets: list[dict] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    statuses: list[tuple] = field(default_factory=list)      # (station_id, connector_id, t, code)
    fills: list[dict] = field(default_factory=list)
    trucks: dict[str, dict] = field(default_factory=dict)    # per-vin ground truth
    telematics_files: dict[str, int] = field(default_factory=dict)
    telematics_records: int = 0
    telematics_faults: list[dict] = field(default_factory=list)
    equipment_faults: int = 0


class GroupContext:
    def __init__(self, world: World, budgets, roster, group_id: int, out_dir: str):
        self.world, self.cfg, self.budgets, self.roster = world, world.cfg, budgets, roster
        self.clock = Clock(world.cfg.start())
        self.files = TelemetryFiles(out_dir, group_id, self.clock, world.cfg.telematics)
        self.out = GroupOutput()
        self.charging = {s.station_id: s for s in world.charging_stations}
        self.h2 = {s.station_id: s for s in world.h2_stations}
        self.books: dict[tuple[str, str], Booking] = {}
        self.meters: dict[tuple[str, str], float] = {}
        self.profiles: dict[str, tuple[float, int]] = {}

    def book(self, station_id: str, unit_id: str) -> Booking:
        key = (station_id, unit_id)
        if key not in self.books:
            self.books[key] = Booking()
        return self.books[key]

    def profile(self, pair_key: str, road_km: float) -> tuple[float, int]:
        """(amplitude m, half-waves) of a road's undulation, the same in both directions and for every truck."""
        p = self.profiles.get(pair_key)
        if p is None:
            rng = stream(self.cfg.seed, "road", pair_key)
            wavelength_m = rng.uniform(3000, 8000)
            p = self.profiles[pair_key] = (rng.uniform(6, 20), max(1, round(2 * road_km * 1000 / wavelength_m)))
        return p

    def assign_meters(self) -> None:
        """Connector energy registers advance session by session in time order (trucks ran one by one)."""
        for s in sorted(self.out.sessions, key=lambda s: (s["station_id"], s["connector_id"], s["plug_in"])):
            key = (s["station_id"], s["connector_id"])
            s["meter_start_kwh"] = self.meters[key]
            s["meter_stop_kwh"] = self.meters[key] = self.meters[key] + s["grid_kwh"]

    def prepare_stations(self, station_ids: list[str]) -> None:
        """Initial 'idle' status of every connector, then equipment faults (255 ... 1) booked first."""
        window = self.world.window_s
        for sid in station_ids:
            st = self.charging.get(sid)
            if st is None:
                continue
            rng = stream(self.cfg.seed, "equipment_faults", sid)
            for c in st.connectors:
                self.meters[(sid, c.connector_id)] = c.meter_start_kwh
                self.out.statuses.append((sid, c.connector_id, 0, 1))
                book = self.book(sid, c.connector_id)
                if (self.cfg.connector_outage_day >= 0 and sid == self.world.charging_stations[0].station_id
                        and c.connector_id == "1"):
                    # a failed power module: the connector reports a fault until the repair a week later
                    start = self.cfg.connector_outage_day * DAY_S + 10 * 3600
                    end = min(window, start + self.cfg.connector_outage_days * DAY_S)
                    book.add(start, end)
                    self.out.statuses.append((sid, c.connector_id, start, 255))
                    if end < window:
                        self.out.statuses.append((sid, c.connector_id, end, 1))
                for day in range(self.cfg.days):
                    draws = (rng.random(), rng.randrange(60, DAY_S), rng.randrange(1200, 7200))
                    if draws[0] >= 0.12:
                        continue
                    start = day * DAY_S + draws[1]
                    end = start + draws[2]
                    if book.earliest(start, end - start) != start:
                        continue
                    book.add(start, end)
                    self.out.statuses.append((sid, c.connector_id, start, 255))
                    if end < window:
                        self.out.statuses.append((sid, c.connector_id, end, 1))
                    self.out.equipment_faults += 1


class TruckSim:
    def __init__(self, ctx: GroupContext, truck: Truck):
        self.ctx, self.truck = ctx, truck
        world = ctx.world
        self.mine = world.mine(truck.mine_id)
        self.kind = truck.powertrain
        self.rng = stream(ctx.cfg.seed, "duty", truck.vin)
        self.frng = stream(ctx.cfg.seed, "faults-telematics", truck.vin)
        self.fault_rate = ctx.cfg.fault_rate
        self.dt = truck.interval_s
        self.t_end = world.window_s
        self.t = self.rng.randrange(0, self.dt)      # terminals are not in phase with each other
        # a truck of a station that opens mid-window enters service (and starts reporting) that day
        self.t += world.station_open_day.get(truck.station_id, 0) * DAY_S
        self.km = self.rng.uniform(20_000, 300_000)
        self.lat, self.lon, self.z = self.mine.lat, self.mine.lon, self.mine.elevation_m
        self.place = self.mine.mine_id
        self.v = 0.0
        self.v_noise = 0.0
        self.payload_t = 0.0
        self.budget = ctx.budgets.get(truck.mine_id, {})
        self.duty = ctx.roster.get(truck.vin) if ctx.roster is not None else None   # on-duty spans
        self.duty_i = 0
        self.topped_up = False
        self.loaded_t: dict[int, float] = {}
        self.just_refuelled = False
        self.has_battery = truck.battery_kwh > 0
        self.pack_j = truck.battery_kwh * J_PER_KWH
        if self.has_battery:
            # LFP pack: open-circuit voltage ~ cells * (3.05 + 0.30 * SOC) V; resistance scales with 1/capacity.
            cells = 168 if self.kind == "FCEV" else 192
            self.v_a, self.v_b = cells * 3.05, cells * 0.30
            self.r_ohm = 0.045 * 282 / truck.battery_kwh
            self.soc = self.rng.uniform(0.55, 0.65) if self.kind == "FCEV" else self.rng.uniform(0.35, 0.95)
        else:
            self.soc = 0.0
        self.tank = truck.h2_tank_kg
        self.h2 = self.tank * self.rng.uniform(0.25, 0.95) if self.tank else 0.0
        self.fuel_l = self.rng.uniform(20_000, 400_000) if self.kind == "DIESEL" else 0.0
        self.gcj = truck.coord_sys == "GCJ02"
        self.engine_on = True
        self.charging = False
        self.gcj_shift: tuple[float, float] | None = None
        self.diesel = self.kind == "DIESEL"
        self.day = self.t // DAY_S
        self.next_midnight = (self.day + 1) * DAY_S
        self.tod = ctx.clock.tod
        self.day_start = self.day * DAY_S
        self.day_prefix = ctx.clock.date(self.day) + " "
        self.cur: list[str] = []                       # lines of the current day
        self.buffers: dict[int, list[str]] = {}        # late lines waiting for a later delivery day
        self.dup_tail: dict[int, list[str]] = {}       # duplicated lines, written at the end of their day
        self.template = self._template()
        # hot-path accumulators (J, m, kg, L)
        self.n_frames = 0
        self.j_out = self.j_in = self.j_regen = self.j_loaded = self.j_empty = 0.0
        self.m_loaded = self.h2_used = self.fuel_used = 0.0
        # ground truth
        self.g = dict(
            powertrain=self.kind, battery_kwh=truck.battery_kwh, h2_tank_kg=self.tank,
            soc_start=self.soc, h2_start_kg=self.h2, odometer_start_km=self.km, fuel_start_l=self.fuel_l,
            trips=0, net_t=0.0, grid_in_kwh=0.0, h2_filled_kg=0.0, sessions=0, fills=0, open_session=None,
            open_fill=None,
        )

    # ---- frames ------------------------------------------------------------------------------------
    def _line(self, msg_type, ts, speed, odo, volt, curr, soc, h2, fuel, valid, lon, lat) -> str:
        fc = "null" if h2 is None else f'{{"h2_remaining":{h2}}}'
        en = "null" if fuel is None else f'{{"fuel_total":{fuel}}}'
        return (f'{{"vin":"{self.truck.vin}","msg_type":"{msg_type}","collect_time":"{ts}","vehicle":{{'
                f'"speed":{speed},"odometer":{odo},"total_voltage":{volt},"total_current":{curr},"soc":{soc}}},'
                f'"fuel_cell":{fc},"engine":{en},"position":{{"valid":{valid},"coord_sys":"{self.truck.coord_sys}",'
                f'"lon":{lon},"lat":{lat}}}}}\n')

    def _template(self) -> str:
        """The realtime line of this truck with %-placeholders: one % operation per frame (hot path)."""
        self.truck.vin.encode("ascii")  # VINs are plain ASCII: no JSON escaping needed
        return self._line("realtime", "%s", "%d", "%d", "%d", "%d", "%d", "%d" if self.tank else None,
                          "%d" if self.kind == "DIESEL" else None, 1, "%d", "%d")

    def _step(self, speed_mps: float, ds_m: float, p_batt_w: float, lat_next: float, lon_next: float,
              h2_used_kg: float = 0.0, fuel_used_l: float = 0.0) -> float:
        """Emit the frame at self.t, then advance one interval. Returns the pack energy taken (J)."""
        t, dt = self.t, self.dt
        if self.has_battery:
            voc = self.v_a + self.v_b * self.soc
            r = self.r_ohm
            i_true = (voc - math.sqrt(voc * voc - 4 * r * p_batt_w)) / (2 * r)
            volt = int((voc - r * i_true) * 10 + 0.5)
            curr = int((i_true + 3000.0) * 10 + 0.5)
            e_j = volt * (curr - 30000) * 0.01 * dt
            soc_raw = int(self.soc * 100 + 0.5)
        else:
            volt, curr, soc_raw, e_j = WORD_INVALID, WORD_INVALID, BYTE_INVALID, 0.0
        if self.gcj_shift is not None:      # parked: the datum shift is constant over a few metres
            lat, lon = self.lat + self.gcj_shift[0], self.lon + self.gcj_shift[1]
        elif self.gcj:
            lat, lon = wgs84_to_gcj02(self.lat, self.lon)
        else:
            lat, lon = self.lat, self.lon
        if self.tank:
            extra = int(self.h2 / self.tank * 100 + 0.5)
        elif self.diesel:
            extra = int(self.fuel_l * 10)
        else:
            extra = None
        ts = self.day_prefix + self.tod[t - self.day_start]
        if self.fault_rate and self.frng.random() < self.fault_rate:
            self._faulty_frame(ts, (int(speed_mps * 36 + 0.5), int(self.km * 10), volt, curr, soc_raw,
                                    extra if self.tank else None, extra if self.diesel else None, 1,
                                    int(lon * 1e6 + 0.5), int(lat * 1e6 + 0.5)))
        elif extra is None:
            self.cur.append(self.template % (ts, int(speed_mps * 36 + 0.5), int(self.km * 10), volt, curr, soc_raw,
                                             int(lon * 1e6 + 0.5), int(lat * 1e6 + 0.5)))
        else:
            self.cur.append(self.template % (ts, int(speed_mps * 36 + 0.5), int(self.km * 10), volt, curr, soc_raw,
                                             extra, int(lon * 1e6 + 0.5), int(lat * 1e6 + 0.5)))
        self.n_frames += 1
        if e_j:
            self.soc -= e_j / self.pack_j
            if self.charging:
                self.j_in -= e_j
            else:
                self.j_out += e_j
                if ds_m:
                    if self.payload_t:
                        self.j_loaded += e_j
                    else:
                        self.j_empty += e_j
                if e_j < 0:
                    self.j_regen -= e_j
        if ds_m:
            self.km += ds_m / 1000.0
            if self.payload_t:
                self.m_loaded += ds_m
        if h2_used_kg:
            self.h2 -= h2_used_kg
            self.h2_used += h2_used_kg
        if fuel_used_l:
            self.fuel_l += fuel_used_l
            self.fuel_used += fuel_used_l
        self.lat, self.lon = lat_next, lon_next
        self.t = t = t + dt
        if t >= self.next_midnight:
            self._flush(self.day)
            self.day += 1
            self.next_midnight += DAY_S
            self.cur = self.buffers.pop(self.day, [])   # late frames already due that day come first
            self.day_start += DAY_S
            self.day_prefix = self.ctx.clock.date(self.day) + " "
        if t >= self.t_end:
            raise EndOfWindow
        return e_j

    def _flush(self, day: int) -> None:
        lines = self.cur if day == self.day else self.buffers.pop(day, [])
        self.ctx.files.write(day, lines + self.dup_tail.pop(day, []))
        if day == self.day:
            self.cur = []

    def _faulty_frame(self, ts: str, values: tuple) -> None:
        frng = self.frng
        r = frng.random() * sum(w for _, w in TELEMATICS_FAULTS)
        for kind, w in TELEMATICS_FAULTS:
            r -= w
            if r < 0:
                break
        speed, odo, volt, curr, soc, h2, fuel, valid, lon, lat = values
        files = self.ctx.files
        entry = {"source": "telematics", "kind": kind, "vin": self.truck.vin, "collect_time": ts,
                 "file": files.rel_path(self.day)}
        buf = self.cur
        if kind == "dup_record":
            line = self._line("realtime", ts, *values)
            buf.append(line)
            self.dup_tail.setdefault(self.day, []).append(line)   # the copy comes later in the same file
            self.ctx.out.telematics_faults.append(entry)
            return
        if kind == "late_record":
            delivery = self.day + frng.choice((1, 1, 1, 2, 2, 3))
            entry["file"] = files.rel_path(delivery)
            entry["delivery_day"] = self.ctx.clock.date(delivery)
            self.buffers.setdefault(delivery, []).append(self._line("resend", ts, *values))
            self.ctx.out.telematics_faults.append(entry)
            return
        if kind == "truncated":
            line = self._line("realtime", ts, *values)
            cut = int(len(line) * frng.uniform(0.2, 0.9))
            buf.append(line[:cut] + "\n")
            self.ctx.out.telematics_faults.append(entry)
            return
        if kind == "clock_jump":
            # A terminal whose RTC lost power restarts at 2000-01-01, or a GPS week-rollover style jump.
            if frng.random() < 0.5:
                bad = "2000-01-01 " + ts[11:]
            else:
                bad = f"{int(ts[:4]) + frng.choice((-7, -3, 2, 5, 19)):04d}{ts[4:]}"
            entry["written_collect_time"] = bad
            buf.append(self._line("realtime", bad, *values))
            self.ctx.out.telematics_faults.append(entry)
            return
        fields = ["speed", "odometer", "position"]
        if self.has_battery:
            fields += ["soc", "total_voltage", "total_current"]
        if h2 is not None:
            fields.append("h2_remaining")
        if fuel is not None:
            fields.append("fuel_total")
        fld = frng.choice(fields)
        v = dict(speed=speed, odometer=odo, total_voltage=volt, total_current=curr, soc=soc, h2_remaining=h2,
                 fuel_total=fuel, valid=valid, lon=lon, lat=lat)
        if kind == "sentinel":
            abnormal = frng.random() < 0.5
            if fld in ("speed", "total_voltage", "total_current"):
                v[fld] = WORD_ABNORMAL if abnormal else WORD_INVALID
            elif fld in ("soc", "h2_remaining"):
                v[fld] = BYTE_ABNORMAL if abnormal else BYTE_INVALID
            elif fld in ("odometer", "fuel_total"):
                v[fld] = DWORD_ABNORMAL if abnormal else DWORD_INVALID
            else:  # lost GNSS fix
                v["valid"], v["lon"], v["lat"] = 0, DWORD_INVALID, DWORD_INVALID
        else:  # out_of_range: a value above the encoding's valid_max_raw that is not a sentinel
            v[fld] = {"speed": 3000, "odometer": 99_999_999, "total_voltage": 12_000, "total_current": 61_000,
                      "soc": 130, "h2_remaining": 150, "fuel_total": 4_100_000_000}.get(fld, 0)
            if fld == "position":
                v["lat"] = 95_000_000
                fld = "lat"
        entry["field"] = fld
        buf.append(self._line("realtime", ts, v["speed"], v["odometer"], v["total_voltage"], v["total_current"],
                              v["soc"], v["h2_remaining"], v["fuel_total"], v["valid"], v["lon"], v["lat"]))
        self.ctx.out.telematics_faults.append(entry)

    # ---- powertrain ----------------------------------------------------------------------------------
    def _power_step(self, speed_mps: float, ds_m: float, p_wheel_w: float, aux_w: float,
                    lat_next: float, lon_next: float) -> None:
        dt = self.dt
        if self.kind == "DIESEL":
            fuel = max(p_wheel_w, 0.0) * dt / (DIESEL_ENGINE_EFF * DIESEL_J_PER_L)
            if self.engine_on:
                fuel += DIESEL_IDLE_L_PER_S * dt
            self._step(speed_mps, ds_m, 0.0, lat_next, lon_next, fuel_used_l=fuel)
            return
        if p_wheel_w > 0:
            p = min(p_wheel_w / ETA_DRIVE, P_DRIVE_MAX_W) + aux_w
        else:
            p = max(p_wheel_w * ETA_REGEN, -P_REGEN_MAX_W) + aux_w
        if self.kind == "BEV":
            self._step(speed_mps, ds_m, p, lat_next, lon_next)
            return
        p_fc = p + (FCEV_SOC_TARGET - self.soc) * self.pack_j / 1800.0
        p_fc = min(max(p_fc, 0.0), FC_MAX_W)
        h2 = p_fc * dt / (FC_EFFICIENCY * H2_LHV_J_PER_KG)
        self._step(speed_mps, ds_m, p - p_fc, lat_next, lon_next, h2_used_kg=h2)

    # ---- activities ----------------------------------------------------------------------------------
    def _dwell(self, seconds: float, engine_on: bool = True) -> None:
        n = max(1, math.ceil(seconds / self.dt))
        self.engine_on = engine_on
        rnd = self.rng.random
        lat0, lon0 = self.lat, self.lon
        if self.gcj:
            g_lat, g_lon = wgs84_to_gcj02(lat0, lon0)
            self.gcj_shift = (g_lat - lat0, g_lon - lon0)
        try:
            for _ in range(n):
                # GNSS noise of a parked truck, a few metres.
                self._power_step(0.0, 0.0, 0.0, AUX_PARK_W, lat0 + (rnd() - 0.5) * 4e-5, lon0 + (rnd() - 0.5) * 5e-5)
        finally:
            self.gcj_shift = None
        self.lat, self.lon = lat0, lon0
        self.engine_on = True

    def _drive(self, to_place: str, to_lat: float, to_lon: float, to_z: float, road_km: float) -> None:
        rng = self.rng
        dt = self.dt
        dist = road_km * 1000.0
        forward = self.place < to_place
        amp, halfwaves = self.ctx.profile(f"{min(self.place, to_place)}|{max(self.place, to_place)}", road_km)
        slope = (to_z - self.z) / dist
        k = math.pi * halfwaves / dist
        und = amp * k            # max undulation grade
        lat0, lon0 = self.lat, self.lon
        dlat, dlon = to_lat - lat0, to_lon - lon0
        mass = (self.truck.tare_t + self.payload_t) * 1000.0
        cruise = (rng.uniform(50, 62) if self.payload_t else rng.uniform(58, 72)) / 3.6
        s, v = 0.0, 0.0
        slow_steps, slow_v = 0, 0.0
        while True:
            rem = dist - s
            self.v_noise = 0.7 * self.v_noise + rng.gauss(0.0, 1.0)
            target = cruise + self.v_noise
            if slow_steps:
                slow_steps -= 1
                target = min(target, slow_v)
            elif rng.random() < dt / 1200.0:   # a village, a junction, a weighbridge queue
                slow_steps = max(1, round(rng.uniform(60, 240) / dt))
                slow_v = rng.uniform(15, 35) / 3.6
            target = min(target, V_LIMIT, math.sqrt(0.8 * rem))   # brake at 0.4 m/s2 towards the stop
            a = max(-0.8, min(0.4, (target - v) / dt))
            v1 = max(0.0, v + a * dt)
            ds = 0.5 * (v + v1) * dt
            last = ds >= rem or rem < 30.0
            if last:
                ds, v1 = rem, 0.0
            v_avg = ds / dt
            s_mid = s + 0.5 * ds
            x = s_mid if forward else dist - s_mid
            grade = slope + (und if forward else -und) * math.cos(k * x)
            force = mass * (G * (CRR + grade) + ROTATING_MASS * (v1 - v) / dt) + HALF_RHO_CDA * v_avg * v_avg
            frac = (s + ds) / dist
            self._power_step(v, ds, force * v_avg, AUX_DRIVE_W, lat0 + dlat * frac, lon0 + dlon * frac)
            s += ds
            v = v1
            if last:
                break
        self.lat, self.lon, self.z, self.place = to_lat, to_lon, to_z, to_place

    # ---- duty cycle ----------------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            self._dwell(self.rng.uniform(0, 1800), engine_on=False)
            while True:
                self._cycle()
        except EndOfWindow:
            pass
        for day in sorted({self.day} | set(self.buffers) | set(self.dup_tail)):
            self._flush(day)
        g = self.g
        g.update(
            frames=self.n_frames, soc_end=self.soc, h2_end_kg=self.h2, odometer_end_km=self.km, fuel_end_l=self.fuel_l,
            distance_km=self.km - g["odometer_start_km"], loaded_km=self.m_loaded / 1000.0,
            battery_out_kwh=self.j_out / J_PER_KWH, battery_in_kwh=self.j_in / J_PER_KWH,
            regen_kwh=self.j_regen / J_PER_KWH, battery_out_loaded_drive_kwh=self.j_loaded / J_PER_KWH,
            battery_out_empty_drive_kwh=self.j_empty / J_PER_KWH, h2_used_kg=self.h2_used,
            diesel_used_l=self.fuel_used,
        )
        return g

    def _park_until_next_shift_day(self, sd: int) -> None:
        next_start = (sd + 1) * DAY_S + self.mine.shift_start_min * 60 + self.rng.uniform(0, 1800)
        self._dwell(max(self.dt, next_start - self.t), engine_on=False)

    def _needs_energy(self, road_km: float) -> bool:
        detour = self.truck.station_road_km
        if self.kind == "BEV":
            have = (self.soc - PLAN_RESERVE) * self.truck.battery_kwh
            return have < plan_round_trip("BEV", road_km, detour)
        if self.kind == "FCEV":
            have = self.h2 - PLAN_RESERVE * self.tank
            return have < plan_round_trip("FCEV", road_km, detour)
        return False

    def _cycle(self) -> None:
        rng, truck, mine = self.rng, self.truck, self.mine
        route = truck.routes[rng.randrange(len(truck.routes))]
        if self.duty is not None and not self._on_duty(route.road_km):
            return
        if self._needs_energy(route.road_km):
            if not self.just_refuelled:
                self._station_trip()
                self.just_refuelled = True
                return
            route = min(truck.routes, key=lambda r: r.road_km)
        self.just_refuelled = False
        self._dwell(rng.uniform(180, 1200))                       # queue at the loading point
        if rng.random() < 0.12:
            self._dwell(rng.uniform(1200, 2700), engine_on=False)  # driver break / shift change
        load_s = max(1, math.ceil(rng.uniform(480, 840) / self.dt)) * self.dt
        ticket_t = self.t + load_s
        sd = shift_day_index(ticket_t, mine.shift_start_min)
        if self.loaded_t.get(sd, 0.0) + truck.rated_payload_t > self.budget.get(sd, 0.0):
            self._park_until_next_shift_day(sd)
            return
        self._dwell(load_s)
        net = round(min(truck.rated_payload_t, max(26.0, rng.gauss(truck.rated_payload_t - 1.2, 1.1))), 2)
        tare = round(truck.tare_t + rng.gauss(0.0, 0.03), 2)
        self.loaded_t[sd] = self.loaded_t.get(sd, 0.0) + net
        self.ctx.out.tickets.append(dict(vin=truck.vin, mine_id=mine.mine_id, t=self.t, gross_t=round(tare + net, 2),
                                         tare_t=tare, net_t=net, destination_id=route.dest_id))
        self.g["trips"] += 1
        self.g["net_t"] += net
        self.payload_t = net
        dest = self.ctx.world.dest(route.dest_id)
        self._drive(dest.dest_id, dest.lat, dest.lon, dest.elevation_m, route.road_km)
        self._dwell(rng.uniform(600, 1200))                       # unloading
        self.payload_t = 0.0
        self._drive(mine.mine_id, mine.lat, mine.lon, mine.elevation_m, route.road_km)

    def _on_duty(self, road_km: float) -> bool:
        """True when the truck is on duty and has time for a round trip before its shift ends; otherwise it
        goes off duty: a BEV below TOPUP_SOC first tops up at its station (charging peaks at shift changes),
        then parks until its next shift."""
        need_s = 2 * road_km / TRIP_PLAN_KMH * 3600 + 1800
        while self.duty_i < len(self.duty) and self.t + need_s > self.duty[self.duty_i][1]:
            self.duty_i += 1
        if self.duty_i < len(self.duty) and self.t >= self.duty[self.duty_i][0]:
            self.topped_up = False
            return True
        low = self.soc < TOPUP_SOC if not self.topped_up else self.soc < PARKED_MIN_SOC
        if self.kind == "BEV" and low:
            self.topped_up = True
            self._station_trip()
            return False
        if self.duty_i < len(self.duty):
            wait = self.duty[self.duty_i][0] - self.t + self.rng.uniform(0, 900)
        else:
            wait = self.t_end - self.t + self.dt
        # parked trucks draw auxiliary power (pack heating in winter): days off duty are waited in parts, and
        # a pack run down to PARKED_MIN_SOC is charged in between
        self._dwell(max(self.dt, min(wait, MAX_PARK_S)), engine_on=False)
        return False

    def _station_trip(self) -> None:
        st = self.ctx.charging.get(self.truck.station_id) or self.ctx.h2[self.truck.station_id]
        self._drive(st.station_id, st.lat, st.lon, st.elevation_m, self.truck.station_road_km)
        if self.kind == "BEV":
            self._charge(st)
        else:
            self._fill(st)
        self._drive(self.mine.mine_id, self.mine.lat, self.mine.lon, self.mine.elevation_m, self.truck.station_road_km)

    def _reserve(self, station_id: str, units: list[str], duration: int) -> tuple[str, int]:
        """Earliest slot over the station's units; waits (queues) until then. Returns (unit, plug-in time)."""
        best = None
        for u in units:
            start = self.ctx.book(station_id, u).earliest(self.t, duration + self.dt)
            if best is None or start < best[1]:
                best = (u, start)
        unit, start = best
        wait_steps = math.ceil((start - self.t) / self.dt)
        plug_in = self.t + wait_steps * self.dt
        self.ctx.book(station_id, unit).add(plug_in, plug_in + duration)
        if wait_steps:
            self._dwell(wait_steps * self.dt, engine_on=False)   # queue at the station
        return unit, plug_in

    def _charge_power_w(self, rated_w: float, eff: float) -> float:
        c_rate = 1.0 if self.truck.battery_kwh >= 250 else 1.3
        taper = 1.0 if self.soc < 0.8 else max(0.12, (1.0 - self.soc) / 0.2)
        return min(rated_w * eff * 0.995, c_rate * self.truck.battery_kwh * 1000.0 * taper)

    def _charge(self, st) -> None:
        rng, dt = self.rng, self.dt
        target = rng.uniform(*PLAN_CHARGE_TO)
        plug_s = max(1, math.ceil(rng.uniform(60, 180) / dt)) * dt
        unplug_s = max(1, math.ceil(rng.uniform(60, 300) / dt)) * dt
        connectors = {c.connector_id: c for c in st.connectors}
        # Duration estimate with the slowest connector, a small SOC margin for the wait, then a few steps.
        slowest = min(c.rated_kw for c in st.connectors) * 1000.0
        soc, est = self.soc - 0.02, 0
        while soc < target:
            taper = 1.0 if soc < 0.8 else max(0.12, (1.0 - soc) / 0.2)
            c_rate = 1.0 if self.truck.battery_kwh >= 250 else 1.3
            p = min(slowest * st.charger_efficiency * 0.995, c_rate * self.truck.battery_kwh * 1000.0 * taper)
            soc += p * dt / self.pack_j
            est += dt
        duration = plug_s + est + 3 * dt + unplug_s
        conn_id, plug_in = self._reserve(st.station_id, list(connectors), duration)
        booked = (plug_in, plug_in + duration)
        statuses = self.ctx.out.statuses
        sid = st.station_id
        statuses.append((sid, conn_id, plug_in, 2))
        self.g["open_session"] = {"station_id": sid, "connector_id": conn_id, "plug_in_s": plug_in}
        self._dwell(plug_s, engine_on=False)
        charge_start = self.t
        statuses.append((sid, conn_id, charge_start, 3))
        rated_w = connectors[conn_id].rated_kw * 1000.0
        eff = st.charger_efficiency
        deadline = booked[1] - unplug_s
        batt_j = 0.0
        max_grid_w = 0.0
        self.charging = True
        try:
            while (self.t == charge_start or self.soc < target) and self.t + dt <= deadline:
                need_j = (target - self.soc) * self.pack_j
                p = min(self._charge_power_w(rated_w, eff), max(need_j, 0.0) / dt + 1000.0)
                e_j = -self._step(0.0, 0.0, -p, self.lat, self.lon)
                batt_j += e_j
                max_grid_w = max(max_grid_w, e_j / dt / eff)
        finally:
            self.charging = False
            self.g["open_session"]["battery_kwh"] = batt_j / J_PER_KWH
        charge_end = self.t
        reached = self.soc >= target
        statuses.append((sid, conn_id, charge_end, 2))
        self._dwell(unplug_s, engine_on=False)
        plug_out = self.t
        statuses.append((sid, conn_id, plug_out, 1))
        self.ctx.book(sid, conn_id).replace(booked, (plug_in, plug_out))
        grid_kwh = batt_j / eff / J_PER_KWH
        # meter_start/stop are filled in by assign_meters() once every truck of the group has run
        self.ctx.out.sessions.append(dict(
            station_id=sid, connector_id=conn_id, vin=self.truck.vin, plug_in=plug_in, charge_start=charge_start,
            charge_end=charge_end, plug_out=plug_out, grid_kwh=grid_kwh,
            max_power_kw=min(max_grid_w / 1000.0, connectors[conn_id].rated_kw),
            stop_reason="Local" if reached else "Other", battery_kwh=batt_j / J_PER_KWH,
        ))
        self.g["open_session"] = None
        self.g["sessions"] += 1
        self.g["grid_in_kwh"] += grid_kwh

    def _fill(self, st) -> None:
        rng, dt = self.rng, self.dt
        target_kg = self.tank * rng.uniform(*PLAN_FILL_TO)
        connect_s = max(1, math.ceil(rng.uniform(120, 240) / dt)) * dt
        disconnect_s = max(1, math.ceil(rng.uniform(60, 180) / dt)) * dt
        rate_kg_s = st.fill_rate_kg_per_min / 60.0
        est = math.ceil(max(0.0, target_kg - self.h2 + 1.0) / rate_kg_s / dt + 2) * dt
        duration = connect_s + est + disconnect_s
        disp, plug_in = self._reserve(st.station_id, [str(d + 1) for d in range(st.dispensers)], duration)
        booked = (plug_in, plug_in + duration)
        self._dwell(connect_s, engine_on=False)
        start = self.t
        filled = 0.0
        target_kg = max(target_kg, self.h2 + 1.0)
        self.g["open_fill"] = {"station_id": st.station_id, "dispenser_id": disp, "start_s": start}
        try:
            while self.h2 < target_kg - 1e-9:
                self._power_step(0.0, 0.0, 0.0, AUX_PARK_W, self.lat, self.lon)
                # the frame above showed the level at the start of the interval; the tank fills during it
                kg = min(rate_kg_s * dt, target_kg - self.h2)
                self.h2 += kg
                filled += kg
        finally:
            self.g["open_fill"]["h2_kg"] = filled
        end = self.t
        self.ctx.out.fills.append(dict(station_id=st.station_id, dispenser_id=disp, vin=self.truck.vin, start=start,
                                       end=end, h2_kg=filled, pressure_mpa=st.pressure_class_mpa))
        self.g["open_fill"] = None
        self.g["fills"] += 1
        self.g["h2_filled_kg"] += filled
        self._dwell(disconnect_s, engine_on=False)
        self.ctx.book(st.station_id, disp).replace(booked, (plug_in, self.t))


def run_group(args) -> GroupOutput:
    """Worker entry point: simulate one group of stations and trucks."""
    world, budgets, roster, group_id, station_ids, vins, out_dir = args
    ctx = GroupContext(world, budgets, roster, group_id, out_dir)
    ctx.prepare_stations(station_ids)
    by_vin = {t.vin: t for t in world.trucks}
    for vin in vins:
        sim = TruckSim(ctx, by_vin[vin])
        ctx.out.trucks[vin] = sim.run()
        ctx.out.telematics_records += sim.n_frames
    ctx.out.telematics_files = ctx.files.close()
    if not world.cfg.telematics:
        ctx.out.telematics_records, ctx.out.telematics_faults = 0, []
    ctx.assign_meters()
    return ctx.out


def make_groups(world: World, trucks_per_file: int) -> list[tuple[list[str], list[str]]]:
    """Pack stations (with their trucks) and diesel trucks into groups of about ``trucks_per_file`` trucks."""
    units: list[tuple[list[str], list[str]]] = []
    for st in [*world.charging_stations, *world.h2_stations]:
        units.append(([st.station_id], [t.vin for t in world.trucks if t.station_id == st.station_id]))
    units += [([], [t.vin]) for t in world.trucks if not t.station_id]
    groups: list[tuple[list[str], list[str]]] = []
    cur_s: list[str] = []
    cur_v: list[str] = []
    for stations, vins in units:
        if cur_v and len(cur_v) + len(vins) > trucks_per_file:
            groups.append((cur_s, cur_v))
            cur_s, cur_v = [], []
        cur_s += stations
        cur_v += vins
    if cur_s or cur_v:
        groups.append((cur_s, cur_v))
    return groups
