"""The static world: companies, mines, washing plants, destinations, stations and trucks.

Everything here is small (dimension-sized) and built in one process from named random streams, so
every worker process can rebuild or receive exactly the same world.

Time inside the generator is integer seconds since the window start, ``start_date 00:00:00`` Beijing
time (the sources carry local, zone-less timestamps, see schemas/sources.py).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from data_samples.config import Config, truck_mix
from data_samples.geo import haversine_km, offset_point
from data_samples.rng import stream

DAY_S = 86_400

# Banner seats (WGS84), approximate; mines scatter around them.
BANNERS: tuple[tuple[str, float, float], ...] = (
    ("Zhungeer", 39.86, 111.24),
    ("Yijinhuoluo", 39.45, 109.95),
    ("Etuoke", 39.30, 107.30),
    ("Dongsheng", 39.82, 109.99),
    ("Etuokeqian", 38.18, 107.48),
    ("Dalate", 40.40, 110.03),
    ("Wushen", 38.60, 108.85),
    ("Hangjin", 39.83, 108.73),
)
COMPANY_NAMES = (
    "Ordos Yimeng Coal Group", "Zhungeer Energy Co.", "Yijin Mining Ltd.", "Etuoke Coking Coal Co.",
    "Dongsheng Power Fuel Co.", "Dalate Coal Logistics", "Wushen Energy Holdings", "Hangjin Mining Co.",
)
THERMAL_PROCESSES = ("dense_medium", "jig", "dense_medium_flotation", "dry", "jig_dense_medium",
                     "jig_flotation", "dense_medium_jig_flotation")
COKING_PROCESSES = ("jig_flotation", "dense_medium_flotation", "dense_medium_jig_flotation", "dense_medium", "jig")
# Rail destinations of Ordos coal (port / inland consumer, rail km from the loading station), approximate.
RAIL_DESTINATIONS = (
    ("Caofeidian Port", 1010), ("Huanghua Port", 1120), ("Qinhuangdao Port", 1080), ("Jingtang Port", 1040),
    ("Rizhao Port", 1350), ("Jingzhou (Haoji line)", 1250), ("Wuhan (Haoji line)", 1330),
    ("Shijiazhuang", 760), ("Tianjin Port", 960), ("Zhengzhou", 880),
)
LONG_ROAD_DESTINATIONS = (
    ("Tangshan steel works", 820), ("Handan steel works", 760), ("Linfen coking plant", 640),
    ("Jinan power plant", 980), ("Baoding power plant", 700),
)


@dataclass(frozen=True)
class Company:
    company_id: str
    name: str


@dataclass(frozen=True)
class Mine:
    mine_id: str
    company_id: str
    name: str
    mine_type: str            # underground | open_pit
    banner: str
    capacity_mt: float
    intelligent_since: str    # '' = not yet intelligent
    lat: float
    lon: float
    elevation_m: float
    shift_start_min: int      # minutes after local midnight when the shift-day starts
    rail_access: str          # loop | belt | road: how its own long-haul rail shipments start
    access_km: int            # belt or road km to the rail loading point (0 for a loop)
    rail_share_target: float  # share of its > 500 km tonnes that go by rail


@dataclass(frozen=True)
class Plant:
    plant_id: str
    company_id: str
    mine_id: str
    name: str
    banner: str
    coal_type: str
    process: str
    capacity_mt: float


@dataclass(frozen=True)
class Destination:
    dest_id: str
    name: str
    kind: str                 # power_plant | rail_station
    lat: float
    lon: float
    elevation_m: float
    rail_dest: str = ""       # rail stations: where the train goes
    rail_km: int = 0


@dataclass(frozen=True)
class Route:
    """A mine's road to one destination."""
    dest_id: str
    road_km: float


@dataclass(frozen=True)
class Connector:
    connector_id: str
    rated_kw: int
    meter_start_kwh: float    # register reading at the window start


@dataclass(frozen=True)
class ChargingStation:
    station_id: str
    company_id: str
    name: str
    banner: str
    in_mine_area: bool
    lat: float
    lon: float
    elevation_m: float
    mine_id: str              # the mine whose trucks charge here
    charger_efficiency: float  # battery-side kWh / metered kWh (losses 5-8 %)
    connectors: tuple[Connector, ...]


@dataclass(frozen=True)
class H2Station:
    station_id: str
    company_id: str
    name: str
    banner: str
    in_mine_area: bool
    lat: float
    lon: float
    elevation_m: float
    mine_id: str
    nameplate_kg_per_day: int
    dispensers: int
    pressure_class_mpa: int
    fill_rate_kg_per_min: float


@dataclass(frozen=True)
class Truck:
    vin: str
    company_id: str
    powertrain: str           # BEV | FCEV | DIESEL
    battery_kwh: int          # 0 for diesel
    h2_tank_kg: int           # 0 unless FCEV
    rated_payload_t: float
    tare_t: float
    swap_capable: bool
    mine_id: str
    station_id: str           # home charging (BEV) or hydrogen (FCEV) station; '' for diesel
    coord_sys: str            # WGS84 | GCJ02
    interval_s: int
    routes: tuple[Route, ...]  # the routes of its mine it can run
    station_road_km: float    # mine <-> home station, road km


@dataclass
class World:
    cfg: Config
    companies: list[Company]
    mines: list[Mine]
    plants: list[Plant]
    destinations: list[Destination]
    mine_routes: dict[str, tuple[Route, ...]]
    charging_stations: list[ChargingStation]
    h2_stations: list[H2Station]
    trucks: list[Truck]
    trucks_per_mine: dict[str, int] = field(default_factory=dict)
    station_open_day: dict[str, int] = field(default_factory=dict)   # a station opening inside the window

    @property
    def window_s(self) -> int:
        return self.cfg.days * DAY_S

    def mine(self, mine_id: str) -> Mine:
        return self._mines[mine_id]

    def dest(self, dest_id: str) -> Destination:
        return self._dests[dest_id]

    def __post_init__(self) -> None:
        self._mines = {m.mine_id: m for m in self.mines}
        self._dests = {d.dest_id: d for d in self.destinations}
        self.trucks_per_mine = {m.mine_id: 0 for m in self.mines}
        for t in self.trucks:
            self.trucks_per_mine[t.mine_id] += 1


# --- time helpers ----------------------------------------------------------------------------------
class Clock:
    """Formats generator seconds as the contract's local timestamps, fast (telematics hot path)."""

    def __init__(self, start: dt.date):
        self.start = start
        self.tod = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self._dates: dict[int, str] = {}

    def date(self, day_index: int) -> str:
        d = self._dates.get(day_index)
        if d is None:
            d = self._dates[day_index] = (self.start + dt.timedelta(days=day_index)).isoformat()
        return d

    def ts(self, t: int) -> str:
        return self.date(t // DAY_S) + " " + self.tod[t % DAY_S]

    def yyyymmdd(self, day_index: int) -> str:
        return self.date(day_index).replace("-", "")


def shift_day_index(t: int, shift_start_min: int) -> int:
    """Index (days since window start) of the shift-day that contains generator second ``t``."""
    return (t - shift_start_min * 60) // DAY_S


# --- building the world ----------------------------------------------------------------------------
def build_world(cfg: Config) -> World:
    rng = stream(cfg.seed, "world")
    companies = [Company(f"C{i + 1:02d}", COMPANY_NAMES[i % len(COMPANY_NAMES)] + ("" if i < len(COMPANY_NAMES)
                 else f" {i // len(COMPANY_NAMES) + 1}")) for i in range(cfg.companies)]
    mines = _build_mines(cfg, rng, companies)
    plants = _build_plants(cfg, rng, mines)
    destinations, mine_routes = _build_destinations(cfg, mines)
    charging = _build_charging_stations(cfg, mines)
    h2 = _build_h2_stations(cfg, mines)
    trucks = _build_trucks(cfg, mines, mine_routes, charging, h2)
    # the last charging station opens mid-window: its trucks join the fleet that day
    opening = {charging[-1].station_id: cfg.station_opens_day} if cfg.station_opens_day and charging else {}
    return World(cfg, companies, mines, plants, destinations, mine_routes, charging, h2, trucks,
                 station_open_day=opening)


def _build_mines(cfg: Config, rng, companies: list[Company]) -> list[Mine]:
    mines = []
    for i in range(cfg.mines):
        banner, blat, blon = BANNERS[i % len(BANNERS)]
        # Alternate types so both kinds exist in every preset; open pits are the big ones in Ordos.
        mine_type = "underground" if i % 2 == 0 else "open_pit"
        lo, hi = (1.2, 15.0) if mine_type == "underground" else (3.0, 35.0)
        capacity = round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 1)
        lat, lon = offset_point(blat, blon, rng.uniform(0, 360), rng.uniform(8, 30))
        if rng.random() < 0.15:
            since = ""  # a laggard: the 2025 "100 % intelligent" target is not met everywhere
        else:
            since = (dt.date(2019, 6, 1) + dt.timedelta(days=rng.randrange(0, 6 * 365))).isoformat()
        access = ("loop", "belt", "road")[rng.randrange(3)]
        access_km = {"loop": 0, "belt": rng.randint(2, 12), "road": rng.randint(15, 60)}[access]
        mines.append(Mine(
            mine_id=f"M{i + 1:03d}", company_id=companies[i % len(companies)].company_id,
            name=f"{banner} No.{i // len(BANNERS) + 1} {'Underground' if mine_type == 'underground' else 'Open-pit'} Mine",
            mine_type=mine_type, banner=banner, capacity_mt=capacity, intelligent_since=since,
            lat=round(lat, 6), lon=round(lon, 6), elevation_m=round(rng.uniform(1250, 1450)),
            shift_start_min=360 if i % 5 == 3 else 480, rail_access=access, access_km=access_km,
            rail_share_target=round(rng.uniform(0.65, 0.92), 3),
        ))
    return mines


def _build_plants(cfg: Config, rng, mines: list[Mine]) -> list[Plant]:
    plants = []
    # Plants sit at every other mine first (spreads them over banners), then fill the remaining mines.
    order = list(range(0, len(mines), 2)) + list(range(1, len(mines), 2))
    n_thermal = n_coking = 0
    for k in range(cfg.washing_plants):
        mine = mines[order[k]]
        coking = k % 3 == 1
        if coking:
            process = COKING_PROCESSES[n_coking % len(COKING_PROCESSES)]
            n_coking += 1
        else:
            process = THERMAL_PROCESSES[n_thermal % len(THERMAL_PROCESSES)]
            n_thermal += 1
        plants.append(Plant(
            plant_id=f"WP{k + 1:02d}", company_id=mine.company_id, mine_id=mine.mine_id,
            name=f"{mine.banner} {'Coking' if coking else 'Thermal'} Coal Preparation Plant {k + 1}",
            banner=mine.banner, coal_type="coking" if coking else "thermal", process=process,
            capacity_mt=round(mine.capacity_mt * rng.uniform(0.6, 0.95), 1),
        ))
    return plants


# One-way road km bands of a mine's destinations: short ones suit 141 kWh trucks, middle ones 282 kWh
# trucks (a 282 kWh pack lasts 150-200 km), long ones fuel-cell and diesel trucks.
_ROUTE_BANDS = (("rail_station", 20, 32), ("power_plant", 38, 62), ("rail_station", 55, 70),
                ("power_plant", 90, 195))


def _build_destinations(cfg: Config, mines: list[Mine]):
    dests: list[Destination] = []
    routes: dict[str, tuple[Route, ...]] = {}
    n_pp = n_rs = 0
    for mine in mines:
        rng = stream(cfg.seed, "destinations", mine.mine_id)
        mine_routes = []
        for kind, lo, hi in _ROUTE_BANDS:
            road_km = round(rng.uniform(lo, hi), 1)
            straight_km = road_km / rng.uniform(1.15, 1.35)   # roads wind: road km > straight km
            lat, lon = offset_point(mine.lat, mine.lon, rng.uniform(0, 360), straight_km)
            if kind == "power_plant":
                n_pp += 1
                dest_id, name, rail_dest, rail_km = f"PP{n_pp:03d}", f"Power plant PP{n_pp:03d}", "", 0
            else:
                n_rs += 1
                rd, base_km = RAIL_DESTINATIONS[rng.randrange(len(RAIL_DESTINATIONS))]
                dest_id, name = f"RS{n_rs:03d}", f"Rail loading station RS{n_rs:03d}"
                rail_dest, rail_km = rd, base_km + rng.randint(-40, 40)
            # Coal flows downhill from the plateau: destinations sit lower than the mines (0.5-2 m per road km).
            drop_m = min(250.0, road_km * rng.uniform(0.5, 2.0))
            dests.append(Destination(dest_id, name, kind, round(lat, 6), round(lon, 6),
                                     round(mine.elevation_m - drop_m), rail_dest, rail_km))
            mine_routes.append(Route(dest_id, road_km))
        routes[mine.mine_id] = tuple(mine_routes)
    return dests, routes


def _station_site(cfg: Config, purpose: str, j: int, mine: Mine, hub: bool):
    rng = stream(cfg.seed, purpose, j)
    dist = rng.uniform(8, 15) if hub else rng.uniform(1.5, 5.0)
    lat, lon = offset_point(mine.lat, mine.lon, rng.uniform(0, 360), dist)
    return rng, round(lat, 6), round(lon, 6), round(mine.elevation_m - rng.uniform(0, 40))


def _build_charging_stations(cfg: Config, mines: list[Mine]) -> list[ChargingStation]:
    out = []
    for j in range(cfg.charging_stations):
        mine = mines[j % len(mines)]
        hub = j % 3 == 2  # every third station is a logistics-park hub outside the mine area
        rng, lat, lon, elev = _station_site(cfg, "charging_station", j, mine, hub)
        connectors = tuple(
            Connector(str(c + 1), rng.choice((180, 240, 240, 360)), round(rng.uniform(5_000, 250_000), 3))
            for c in range(cfg.connectors_per_station))
        out.append(ChargingStation(
            station_id=f"CS{j + 1:02d}", company_id=mine.company_id,
            name=f"{mine.banner} {'truck charging hub' if hub else 'mine charging station'} {j + 1}",
            banner=mine.banner, in_mine_area=not hub, lat=lat, lon=lon, elevation_m=elev, mine_id=mine.mine_id,
            charger_efficiency=round(rng.uniform(0.92, 0.95), 3), connectors=connectors,
        ))
    return out


def _build_h2_stations(cfg: Config, mines: list[Mine]) -> list[H2Station]:
    out = []
    for j in range(cfg.h2_stations):
        mine = mines[(len(mines) - 1 - j) % len(mines)]  # from the other end of the mine list than chargers
        hub = j % 3 == 2
        rng, lat, lon, elev = _station_site(cfg, "h2_station", j, mine, hub)
        dispensers = rng.choice((2, 2, 3, 4))
        out.append(H2Station(
            station_id=f"HS{j + 1:02d}", company_id=mine.company_id,
            name=f"{mine.banner} hydrogen refuelling station {j + 1}", banner=mine.banner, in_mine_area=not hub,
            lat=lat, lon=lon, elevation_m=elev, mine_id=mine.mine_id,
            nameplate_kg_per_day=dispensers * rng.choice((500, 600, 750)), dispensers=dispensers,
            pressure_class_mpa=70, fill_rate_kg_per_min=round(rng.uniform(2.0, 3.5), 2),
        ))
    return out


def _pick_home(candidates, load, capacity):
    """Candidate with the fewest trucks per Mt/yr of its mine (fleets follow output)."""
    return min(candidates, key=lambda c: ((load[c[0]] + 1) / capacity[c[0]], c[1]))


# Conservative per-km energy used for planning (the simulation's physics lands below these).
PLAN_BEV_KWH_PER_KM = {True: 2.1, False: 1.3}       # loaded, empty
PLAN_FCEV_KG_PER_KM = {True: 0.11, False: 0.07}
PLAN_RESERVE = 0.12                                  # of pack / tank kept in hand on arrival
PLAN_CHARGE_TO = (0.90, 0.97)                        # BEV charge target SOC range
PLAN_FILL_TO = (0.94, 0.99)                          # FCEV fill target range


def plan_round_trip(truck_kind: str, road_km: float, detour_km: float) -> float:
    """Planned kWh (BEV) or kg H2 (FCEV) for mine -> destination -> mine plus a station detour."""
    per_km = PLAN_BEV_KWH_PER_KM if truck_kind == "BEV" else PLAN_FCEV_KG_PER_KM
    return road_km * (per_km[True] + per_km[False]) + 2 * detour_km * per_km[False]


def _feasible_routes(kind: str, capacity: float, routes, detour_km: float):
    """Routes a truck can run after a full charge / fill (at least one must be, or it would loop)."""
    budget = capacity * (PLAN_CHARGE_TO[0] - PLAN_RESERVE) - detour_km * PLAN_BEV_KWH_PER_KM[False]
    if kind == "FCEV":
        budget = capacity * (PLAN_FILL_TO[0] - PLAN_RESERVE) - detour_km * PLAN_FCEV_KG_PER_KM[False]
    return tuple(r for r in routes if plan_round_trip(kind, r.road_km, detour_km) <= budget)


def _build_trucks(cfg, mines, mine_routes, charging, h2) -> list[Truck]:
    n_bev, n_fcev, n_diesel = truck_mix(cfg)
    capacity = {m.mine_id: m.capacity_mt for m in mines}
    mine_by_id = {m.mine_id: m for m in mines}
    load = {m.mine_id: 0 for m in mines}
    station_load: dict[str, int] = {}
    stations = {s.station_id: s for s in (*charging, *h2)}
    trucks = []
    kinds = ["BEV"] * n_bev + ["FCEV"] * n_fcev + ["DIESEL"] * n_diesel
    for i, kind in enumerate(kinds):
        rng = stream(cfg.seed, "truck", i)
        if kind == "BEV":
            cands = [(s.mine_id, s.station_id) for s in charging]
        elif kind == "FCEV":
            cands = [(s.mine_id, s.station_id) for s in h2]
        else:
            cands = [(m.mine_id, "") for m in mines]
        # Among the candidate mines pick by load per capacity, then the least-used station at that mine
        # (small packs prefer a station inside the mine area: a hub detour eats their range).
        battery = 141 if kind == "BEV" and i % 3 == 1 else 282
        if battery == 141 and any(stations[c[1]].in_mine_area for c in cands):
            cands = [c for c in cands if stations[c[1]].in_mine_area]
        mine_id, _ = _pick_home(cands, load, capacity)
        mine = mine_by_id[mine_id]
        at_mine = [c for c in cands if c[0] == mine_id]
        station_id = min(at_mine, key=lambda c: (battery == 141 and not stations[c[1]].in_mine_area,
                                                 station_load.get(c[1], 0), c[1]))[1]
        load[mine_id] += 1
        station_load[station_id] = station_load.get(station_id, 0) + 1
        routes = mine_routes[mine_id]
        detour = 0.0
        if station_id:
            st = stations[station_id]
            detour = distance_km(mine.lat, mine.lon, st.lat, st.lon)
        tank, swap = 0, False
        if kind == "BEV":
            usable = _feasible_routes(kind, battery, routes, detour)
            if not usable and battery == 141:
                battery = 282
                usable = _feasible_routes(kind, battery, routes, detour)
            tare, payload = (15.2, 34.5) if battery == 141 else (16.8, 33.0)
            swap = battery == 282 and i % 2 == 0
        elif kind == "FCEV":
            battery, tank = 100, rng.choice((56, 64, 70, 80))
            usable = _feasible_routes(kind, tank, routes, detour)
            tare, payload = 15.6, 34.0
        else:
            battery, usable = 0, routes
            tare, payload = 14.2, 35.5
        if not usable:
            raise ValueError(f"no route of mine {mine_id} is feasible for a {kind} truck; check the route bands")
        if cfg.telemetry_interval_max_s > cfg.telemetry_interval_min_s:
            interval = rng.randrange(cfg.telemetry_interval_min_s, cfg.telemetry_interval_max_s + 1, 30)
        else:
            interval = cfg.telemetry_interval_min_s
        company_id = mine.company_id
        trucks.append(Truck(
            vin=f"LZT{kind[0]}{company_id[1:]:0>3}{i + 1:010d}", company_id=company_id, powertrain=kind,
            battery_kwh=battery, h2_tank_kg=tank, rated_payload_t=payload,
            tare_t=round(tare + rng.uniform(-0.3, 0.3), 2), swap_capable=swap, mine_id=mine_id,
            station_id=station_id, coord_sys="GCJ02" if rng.random() < 0.3 else "WGS84", interval_s=interval,
            routes=usable, station_road_km=detour,
        ))
    return trucks


def distance_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float, detour: float = 1.25) -> float:
    """Road km between two points that have no configured route (straight line times a detour factor)."""
    return round(haversine_km(a_lat, a_lon, b_lat, b_lon) * detour, 1)
