"""Mine production per shift, washing per plant-day and shipments per consignment, with a mass balance.

Order of the simulation: production is drawn first (it bounds what the fleet may haul), then the fleet
runs (fleet.py), then this module's ``wash_and_ship`` balances each mine's raw-coal stock and each plant's
clean-coal stock day by day:

    raw stock(d)   = raw stock(d-1) + shifts completed on d - fleet tickets on d - plant feed on d
                     - other raw shipments on d                                    (never < 0)
    clean stock(d) = clean stock(d-1) + clean coal washed on d - clean shipments on d (never < 0)

Initial stocks are part of the ground truth in the manifest (a test needs them to check the balance).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from data_samples.rng import stream
from data_samples.world import DAY_S, LONG_ROAD_DESTINATIONS, RAIL_DESTINATIONS, World

WORKING_DAYS_PER_YEAR = 330
SHIFT_S = 8 * 3600
SHIFT_SHARES = (0.36, 0.36, 0.28)    # the night shift carries maintenance
FLEET_SHARE_OF_OUTPUT = 0.45         # a truck's daily load budget: this share of output / trucks at the mine


@dataclass(frozen=True)
class PlanShift:
    """The day-ahead production plan of one mine shift, as published the evening before."""
    mine_id: str
    shift_day: int
    shift_no: int
    start_s: int
    planned_raw_coal_t: float
    trucks_dispatched: int
    published_s: int          # generator seconds; normally 17:00-21:00 the day before the shift-day
    reason: str               # normal | spring_festival | holiday | maintenance


@dataclass(frozen=True)
class Shift:
    mine_id: str
    shift_day: int            # day index (days since window start) of the shift-day; may be -1
    shift_no: int
    start_s: int              # generator seconds
    end_s: int
    raw_coal_t: float
    electricity_kwh: float
    diesel_kg: float
    other_energy_kgce: float | None
    trucks_on_duty: int = 0   # trucks that actually ran the shift (plan scaled by actual / planned output)


# Output factor of a planned shift-day by calendar: the Spring Festival slowdown runs from a few days before
# the statutory holiday to about a week after it (migrant crews travel home); other statutory holidays cut less.
SPRING_FESTIVAL_FACTOR = 0.35
SPRING_FESTIVAL_BEFORE_DAYS, SPRING_FESTIVAL_AFTER_DAYS = 4, 6
HOLIDAY_FACTOR = 0.8
MAINTENANCE_DAY_RATE = 1 / 20       # planned whole-day stops per mine and day (belt, shaft or crusher work)
SHIFT_MIX = (0.6, 1.2)              # per-shift factor on trucks and tonnes: crews, loading-point and face availability
LATE_PLAN_RATE = 0.03               # plans published after midnight, on the shift-day itself
NIGHT_SHIFT_TRUCKS = 0.6            # share of the day shifts' trucks dispatched on the night shift
DISPATCH_SHARE = 0.8                # trucks dispatched on a normal day, of those in service (spares, rest days)


def _calendar(cfg) -> list[tuple[float, str]]:
    """(output factor, reason) per shift-day index -1 .. days, from the Chinese State Council calendar."""
    import chinese_calendar as cc
    start = cfg.start()
    days = [start + dt.timedelta(days=i) for i in range(-1 - SPRING_FESTIVAL_AFTER_DAYS - 10,
                                                        cfg.days + 2 + SPRING_FESTIVAL_BEFORE_DAYS + 10)]

    def detail(d):
        try:
            return cc.get_holiday_detail(d)
        except NotImplementedError:       # years the calendar does not cover: no holidays
            return (d.weekday() >= 5, None)
    info = {d: detail(d) for d in days}
    sf = [d for d in days if info[d][0] and info[d][1] == "Spring Festival"]
    out = []
    for i in range(-1, cfg.days + 1):
        d = start + dt.timedelta(days=i)
        if sf and min(sf) - dt.timedelta(days=SPRING_FESTIVAL_BEFORE_DAYS) <= d <= max(sf) + dt.timedelta(
                days=SPRING_FESTIVAL_AFTER_DAYS):
            out.append((SPRING_FESTIVAL_FACTOR, "spring_festival"))
        elif info[d][0] and info[d][1] is not None:
            out.append((HOLIDAY_FACTOR, "holiday"))
        else:
            out.append((1.0, "normal"))
    return out


def fleet_on_day(world: World, mine_id: str, day: int) -> list[str]:
    """VINs of a mine's trucks in service on a day (trucks of a station not yet open are not)."""
    opens = world.station_open_day
    return [t.vin for t in world.trucks if t.mine_id == mine_id and day >= opens.get(t.station_id, -10**6)]


def production_plan(world: World) -> list[PlanShift]:
    """Day-ahead plan per mine and shift for shift-days -1 .. days (the last one is tomorrow's plan)."""
    cfg = world.cfg
    cal = _calendar(cfg)
    out = []
    for mine in world.mines:
        rng = stream(cfg.seed, "plan", mine.mine_id)
        nominal_day_t = mine.capacity_mt * 1e6 / WORKING_DAYS_PER_YEAR
        orders = 0.0                      # sales-order pressure: an AR(1) the plan follows day by day
        for sd in range(-1, cfg.days + 1):
            orders = 0.7 * orders + rng.gauss(0.0, 0.18)
            draws = (rng.random(), rng.uniform(17 * 3600, 21 * 3600), rng.random(), rng.uniform(1800, 5 * 3600))
            factor, reason = cal[sd + 1]
            factor *= min(1.25, max(0.55, 1.0 + orders))
            if draws[0] < MAINTENANCE_DAY_RATE:
                factor, reason = 0.0, "maintenance"
            fleet = len(fleet_on_day(world, mine.mine_id, sd))
            day_start = sd * DAY_S + mine.shift_start_min * 60
            published = sd * DAY_S - DAY_S + int(draws[1])
            if draws[2] < LATE_PLAN_RATE:
                published = sd * DAY_S + int(draws[3])
            for k, share in enumerate(SHIFT_SHARES):
                mix = rng.uniform(*SHIFT_MIX)
                trucks = round(fleet * min(1.0, DISPATCH_SHARE * factor * mix) * (NIGHT_SHIFT_TRUCKS if k == 2 else 1.0))
                out.append(PlanShift(mine.mine_id, sd, k + 1, day_start + k * SHIFT_S,
                                     round(nominal_day_t * factor * mix * share, 0), trucks if factor else 0, published,
                                     reason))
    return out


def production(world: World, plan: list[PlanShift]) -> list[Shift]:
    """All shifts that overlap the window, per mine in time order: the plan, deviating as real shifts do
    (output within a few % of plan, now and then an unplanned stop)."""
    planned = {(p.mine_id, p.shift_day, p.shift_no): p for p in plan}
    out = []
    for mine in world.mines:
        rng = stream(world.cfg.seed, "production", mine.mine_id)
        nominal_day_t = mine.capacity_mt * 1e6 / WORKING_DAYS_PER_YEAR
        underground = mine.mine_type == "underground"
        kwh_per_t = rng.uniform(13.0, 20.0) if underground else rng.uniform(2.6, 6.5)
        diesel_kg_per_t = rng.uniform(0.02, 0.08) if underground else rng.uniform(0.6, 1.4)
        heat_kgce_per_t = rng.uniform(0.2, 0.8)  # mine-site boilers (November: heating season)
        base_kwh_per_shift = 0.15 * kwh_per_t * nominal_day_t / 3  # fans and pumps run without output
        for sd in range(-1, world.cfg.days):
            day_start = sd * DAY_S + mine.shift_start_min * 60
            for k in range(len(SHIFT_SHARES)):
                start = day_start + k * SHIFT_S
                end = start + SHIFT_S
                draws = (rng.random(), rng.gauss(0, 0.06), rng.uniform(0.95, 1.05), rng.uniform(0.9, 1.1))
                if end <= 0 or start >= world.window_s:
                    continue
                p = planned[(mine.mine_id, sd, k + 1)]
                stopped = draws[0] < 0.02   # an unplanned stop (breakdown, safety inspection)
                tonnes = 0.0 if stopped else round(max(0.0, p.planned_raw_coal_t * (1 + draws[1])), 2)
                on_duty = 0 if not p.planned_raw_coal_t else min(
                    len(fleet_on_day(world, mine.mine_id, sd)),
                    round(p.trucks_dispatched * tonnes / p.planned_raw_coal_t))
                electricity = round(base_kwh_per_shift * draws[3] + tonnes * kwh_per_t * draws[2], 1)
                diesel = round(tonnes * diesel_kg_per_t * draws[2] + (5.0 if underground else 200.0), 1)
                other = round(tonnes * heat_kgce_per_t + 50.0, 1) if underground else None
                out.append(Shift(mine.mine_id, sd, k + 1, start, end, tonnes, electricity, diesel, other, on_duty))
    return out


def duty_roster(world: World, shifts: list[Shift]) -> dict[str, list[tuple[int, int]]]:
    """Per VIN: its on-duty intervals (generator seconds, consecutive shifts merged). Each shift, the mine
    sends ``trucks_on_duty`` of its trucks in service, a fresh draw per shift (crews rotate)."""
    out: dict[str, list[tuple[int, int]]] = {t.vin: [] for t in world.trucks}
    for s in sorted(shifts, key=lambda s: (s.mine_id, s.start_s)):
        fleet = fleet_on_day(world, s.mine_id, s.shift_day)
        rng = stream(world.cfg.seed, "roster", s.mine_id, s.shift_day, s.shift_no)
        for vin in rng.sample(fleet, min(len(fleet), s.trucks_on_duty)):
            spans = out[vin]
            if spans and spans[-1][1] == s.start_s:
                spans[-1] = (spans[-1][0], s.end_s)
            else:
                spans.append((s.start_s, s.end_s))
    return out


def truck_budgets(world: World, shifts: list[Shift]) -> dict[str, dict[int, float]]:
    """Per mine and shift-day: tonnes ONE truck may load (keeps weighbridge tonnes below production)."""
    per_day: dict[str, dict[int, float]] = {}
    for s in shifts:
        per_day.setdefault(s.mine_id, {}).setdefault(s.shift_day, 0.0)
        per_day[s.mine_id][s.shift_day] += s.raw_coal_t
    out = {}
    for mine_id, days in per_day.items():
        out[mine_id] = {sd: t * FLEET_SHARE_OF_OUTPUT / max(1, len(fleet_on_day(world, mine_id, sd)))
                        for sd, t in days.items()}
    return out


# --- washing and shipments ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WashDay:
    plant_id: str
    day: int
    raw_coal_fed_t: float
    clean_coal_t: float
    middlings_t: float
    gangue_t: float
    slime_t: float
    electricity_kwh: float
    water_m3: float
    magnetite_kg: float


@dataclass(frozen=True)
class Shipment:
    mine_id: str
    day: int
    product: str
    tonnes: float
    destination: str
    legs: tuple[tuple[str, int], ...]   # (mode, km) in travel order

    @property
    def distance_km(self) -> int:
        return sum(km for _, km in self.legs)


_DENSE_MEDIUM = ("dense_medium", "jig_dense_medium", "dense_medium_flotation", "dense_medium_jig_flotation")
_PROCESS_K = {  # GB 29446-2019 process factor (thermal, coking); used to back out plant electricity
    "dry": (1.04, None), "jig": (0.94, 1.26), "jig_flotation": (0.80, 1.00), "jig_dense_medium": (0.85, None),
    "dense_medium": (0.89, 1.12), "dense_medium_flotation": (0.76, 0.83), "dense_medium_jig_flotation": (0.72, 0.78),
}


def _split(total: float, lo: float, hi: float, rng) -> list[float]:
    """Split ``total`` tonnes into consignments of about lo..hi t that add up exactly (0.01 t)."""
    total = round(total, 2)
    parts = []
    left = total
    while left > hi:
        p = round(rng.uniform(lo, hi), 2)
        parts.append(p)
        left = round(left - p, 2)
    if left > 0:
        parts.append(left)
    return parts


def wash_and_ship(world: World, shifts: list[Shift], tickets: list[dict]):
    """Returns (wash_days, shipments, ground_truth per mine)."""
    days = world.cfg.days
    completed: dict[str, list[float]] = {m.mine_id: [0.0] * days for m in world.mines}
    for s in shifts:
        d = (s.end_s - 1) // DAY_S
        if s.end_s <= world.window_s:
            completed[s.mine_id][d] += s.raw_coal_t
    fleet: dict[tuple[str, int], dict[str, float]] = {}      # (mine, day) -> destination -> tonnes
    for t in tickets:
        per_dest = fleet.setdefault((t["mine_id"], t["t"] // DAY_S), {})
        per_dest[t["destination_id"]] = per_dest.get(t["destination_id"], 0.0) + t["net_t"]
    plant_of = {p.mine_id: p for p in world.plants}
    wash_days: list[WashDay] = []
    shipments: list[Shipment] = []
    truth = {}
    for mine in world.mines:
        rng = stream(world.cfg.seed, "wash_and_ship", mine.mine_id)
        nominal_day_t = mine.capacity_mt * 1e6 / WORKING_DAYS_PER_YEAR
        raw_stock0 = round(nominal_day_t * rng.uniform(0.8, 1.2), 2)
        raw_stock = raw_stock0
        plant = plant_of.get(mine.mine_id)
        clean_stock0 = clean_stock = 0.0
        if plant:
            prng = stream(world.cfg.seed, "plant", plant.plant_id)
            coking = plant.coal_type == "coking"
            base_yield = prng.uniform(0.55, 0.65) if coking else prng.uniform(0.66, 0.80)
            middlings_share = prng.uniform(0.10, 0.18) if coking else (0.0 if plant.process == "dry" else prng.uniform(0.02, 0.06))
            slime_share = 0.0 if plant.process == "dry" else prng.uniform(0.02, 0.05)
            # Draw the plant's GB 29446 level e = E*k/fed around the standard's bands, then back out E.
            e_kwh_per_t = prng.uniform(4.6, 8.8) if coking else prng.uniform(1.8, 4.6)
            k_factor = _PROCESS_K[plant.process][1 if coking else 0]
            water_m3_per_t = 0.01 if plant.process == "dry" else prng.uniform(0.06, 0.12)
            magnetite_kg_per_t = prng.uniform(1.0, 2.5) if plant.process in _DENSE_MEDIUM else 0.0
            plant_day_t = plant.capacity_mt * 1e6 / WORKING_DAYS_PER_YEAR
            clean_stock0 = clean_stock = round(plant_day_t * base_yield * rng.uniform(0.3, 0.6), 2)
        fleet_rail_total = long_road_total = rail_total = 0.0
        for d in range(days):
            fleet_today = sorted(fleet.get((mine.mine_id, d), {}).items())
            raw_stock += completed[mine.mine_id][d] - sum(t for _, t in fleet_today)
            for dest_id, tonnes in fleet_today:
                dest = world.dest(dest_id)
                road_km = round(next(r.road_km for r in world.mine_routes[mine.mine_id] if r.dest_id == dest_id))
                if dest.kind == "rail_station":
                    legs = (("road", road_km), ("rail", dest.rail_km))
                    shipments.append(Shipment(mine.mine_id, d, "raw_coal", round(tonnes, 2), dest.rail_dest, legs))
                    fleet_rail_total += tonnes
                else:
                    shipments.append(Shipment(mine.mine_id, d, "raw_coal", round(tonnes, 2), dest.name,
                                              (("road", road_km),)))
            clean_today = 0.0
            if plant:
                draws = (rng.random(), rng.uniform(0.8, 1.0), rng.gauss(0, 0.015), rng.uniform(0.97, 1.03),
                         rng.uniform(0.0, 0.015))
                stopped = draws[0] < 0.03
                fed = 0.0 if stopped else round(min(plant_day_t * draws[1], max(0.0, raw_stock - 0.1 * raw_stock0)), 2)
                raw_stock -= fed
                clean = round(fed * min(0.80, max(0.55, base_yield + draws[2])), 2)
                middlings = round(fed * middlings_share, 2)
                slime = round(fed * slime_share, 2)
                moisture = fed * draws[4]
                gangue = round(max(0.0, fed - clean - middlings - slime - moisture), 2)
                elec = e_kwh_per_t * fed / k_factor * draws[3] if fed else 0.02 * e_kwh_per_t * plant_day_t
                wash_days.append(WashDay(plant.plant_id, d, fed, clean, middlings, gangue, slime, round(elec, 1),
                                         round(fed * water_m3_per_t, 1), round(fed * magnetite_kg_per_t, 1)))
                clean_stock += clean
                clean_today = max(0.0, clean_stock - clean_stock0 * rng.uniform(0.7, 1.0))
                clean_stock -= clean_today
            raw_today = max(0.0, raw_stock - raw_stock0 * rng.uniform(0.7, 1.0))
            raw_stock -= raw_today
            # Long haul (> 500 km) beyond the fleet: rail (the mine's own access) and some long road hauls,
            # sized so that the mine's rail share of > 500 km tonnes lands near its target.
            fleet_rail = sum(t for dest_id, t in fleet_today if world.dest(dest_id).kind == "rail_station")
            long_total = raw_today + clean_today
            road_long = min(long_total, max(0.0, (1 - mine.rail_share_target) * (long_total + fleet_rail)
                                            * rng.uniform(0.8, 1.2)))
            for product, amount in (("raw_coal", raw_today), ("clean_coal", clean_today)):
                if amount <= 0:
                    continue
                road_part = road_long * amount / long_total
                for tonnes in _split(road_part, 300, 1200, rng):
                    dest, km = LONG_ROAD_DESTINATIONS[rng.randrange(len(LONG_ROAD_DESTINATIONS))]
                    shipments.append(Shipment(mine.mine_id, d, product, tonnes, dest, (("road", km + rng.randint(-30, 30)),)))
                    long_road_total += tonnes
                for tonnes in _split(amount - road_part, 2500, 5000, rng):
                    dest, km = RAIL_DESTINATIONS[rng.randrange(len(RAIL_DESTINATIONS))]
                    rail = ("rail", km + rng.randint(-30, 30))
                    legs = {"loop": (rail,), "belt": (("belt", mine.access_km), rail),
                            "road": (("road", mine.access_km), rail)}[mine.rail_access]
                    shipments.append(Shipment(mine.mine_id, d, product, tonnes, dest, legs))
                    rail_total += tonnes
        long_t = fleet_rail_total + long_road_total + rail_total
        truth[mine.mine_id] = {
            "initial_raw_stock_t": raw_stock0,
            "final_raw_stock_t": round(raw_stock, 2),
            "initial_clean_stock_t": clean_stock0,
            "final_clean_stock_t": round(clean_stock, 2),
            "rail_share_target": mine.rail_share_target,
            "rail_share_over_500km": round((fleet_rail_total + rail_total) / long_t, 4) if long_t else None,
        }
    return wash_days, shipments, truth
