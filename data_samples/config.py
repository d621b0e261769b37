"""Generator parameters and presets. One frozen object is the generator's whole interface."""
from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import asdict, dataclass, fields, replace

GENERATOR_VERSION = "1.0.0"


@dataclass(frozen=True)
class Config:
    seed: int = 42
    preset: str = "sample"
    companies: int = 3
    mines: int = 5
    washing_plants: int = 2
    trucks: int = 12
    bev_share: float = 0.42           # of trucks; BEV packs alternate 282 / 141 kWh (2 of 3 are 282)
    fcev_share: float = 0.25          # of trucks; the rest are diesel
    days: int = 3
    start_date: str = "2026-11-02"
    telemetry_interval_min_s: int = 60   # each truck draws its own interval from [min, max] in steps of 30 s
    telemetry_interval_max_s: int = 120
    charging_stations: int = 3
    connectors_per_station: int = 3
    h2_stations: int = 2
    fault_rate: float = 0.01
    trucks_per_file: int = 25         # telematics files per delivery day = groups of about this many trucks
    telematics: bool = True           # False: no telematics files (the fleet is still simulated frame by frame)
    station_opens_day: int = 0        # > 0: the last charging station opens on this day index (its trucks with it)
    connector_outage_day: int = -1    # >= 0: connector 1 of the first charging station is down (255) for
    connector_outage_days: int = 7    # this many days from this day index

    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.start_date)

    def as_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> "Config":
        if self.companies < 1 or self.mines < 1 or self.days < 1 or self.trucks < 0:
            raise ValueError("companies, mines and days must be >= 1 and trucks >= 0")
        if self.washing_plants > self.mines:
            raise ValueError("each washing plant washes one mine's coal: washing_plants must be <= mines")
        if not 0 <= self.fault_rate <= 0.2:
            raise ValueError("fault_rate must be within [0, 0.2]")
        if not 1 <= self.telemetry_interval_min_s <= self.telemetry_interval_max_s <= 600:
            raise ValueError("telemetry interval must satisfy 1 <= min <= max <= 600 s")
        n_bev, n_fcev, _ = truck_mix(self)
        if n_bev and (self.charging_stations < 1 or self.connectors_per_station < 1):
            raise ValueError("BEV trucks need at least one charging station with a connector")
        if n_fcev and self.h2_stations < 1:
            raise ValueError("FCEV trucks need at least one hydrogen station")
        if self.station_opens_day and not 0 < self.station_opens_day < self.days:
            raise ValueError("station_opens_day must fall inside the window (0 = every station open from the start)")
        if self.connector_outage_day >= self.days:
            raise ValueError("connector_outage_day must fall inside the window (-1 = no outage)")
        self.start()
        return self


def truck_mix(cfg: Config) -> tuple[int, int, int]:
    """(BEV, FCEV, diesel) counts."""
    n_bev = round(cfg.trucks * cfg.bev_share)
    n_fcev = min(cfg.trucks - n_bev, round(cfg.trucks * cfg.fcev_share))
    return n_bev, n_fcev, cfg.trucks - n_bev - n_fcev


PRESETS: dict[str, Config] = {
    # Small world committed under data_samples/landing (a few MB at most).
    "sample": Config(),
    # One operating day of a realistic fleet: 600 trucks x 8640 frames = 5.18 M telematics rows.
    "ordos_day": Config(
        preset="ordos_day", companies=5, mines=12, washing_plants=6, trucks=600, bev_share=0.5,
        fcev_share=0.2, days=1, telemetry_interval_min_s=10, telemetry_interval_max_s=10,
        charging_stations=24, connectors_per_station=8, h2_stations=6, fault_rate=0.01,
    ),
    # A month of a mid-size fleet at a realistic frame rate, for backfill and KPI trend work.
    "ordos_month": Config(
        preset="ordos_month", companies=4, mines=8, washing_plants=4, trucks=60, bev_share=0.5,
        fcev_share=0.2, days=30, telemetry_interval_min_s=30, telemetry_interval_max_s=30,
        charging_stations=6, connectors_per_station=4, h2_stations=2, fault_rate=0.005,
    ),
    # Months of operations driving charging demand, for forecasting: a day-ahead production plan, Spring
    # Festival 2026, maintenance days, a station opening mid-window, a connector down for a week. Telematics
    # are simulated (one step every 5 min) but not written: sessions, tickets, plan and production are what
    # the forecast reads.
    "long": Config(
        preset="long", companies=2, mines=3, washing_plants=1, trucks=120, bev_share=0.75, fcev_share=0.1,
        days=165, start_date="2025-11-03", telemetry_interval_min_s=300, telemetry_interval_max_s=300,
        charging_stations=6, connectors_per_station=6, h2_stations=1, fault_rate=0.002, telematics=False,
        station_opens_day=70, connector_outage_day=100,
    ),
}


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="python -m data_samples.generator",
        description="Write a seeded, deterministic sample world in the landing layout of schemas/sources.py.",
    )
    p.add_argument("--out", required=True, help="landing root to write (<out>/<source>/<yyyy-mm-dd>/<file>)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--preset", choices=sorted(PRESETS), default="sample")
    p.add_argument("--companies", type=int)
    p.add_argument("--mines", type=int)
    p.add_argument("--washing-plants", type=int)
    p.add_argument("--trucks", type=int)
    p.add_argument("--days", type=int)
    p.add_argument("--start-date", help="first local calendar day, yyyy-mm-dd")
    p.add_argument("--telemetry-interval-s", type=int, help="one frame every S seconds for every truck")
    p.add_argument("--charging-stations", type=int)
    p.add_argument("--connectors-per-station", type=int)
    p.add_argument("--h2-stations", type=int)
    p.add_argument("--fault-rate", type=float, help="share of records given a data fault; 0 = clean world")
    p.add_argument("--trucks-per-file", type=int)
    p.add_argument("--no-telematics", dest="telematics", action="store_const", const=False,
                   help="simulate the fleet but write no telematics files")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (0 = one per CPU); output is identical")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the source folders and _manifest.json of an existing landing root")
    args = p.parse_args(argv)
    cfg = replace(PRESETS[args.preset], seed=args.seed)
    names = {f.name for f in fields(Config)}
    overrides = {k: v for k, v in vars(args).items() if k in names and v is not None and k not in ("seed", "preset")}
    if args.telemetry_interval_s is not None:
        overrides["telemetry_interval_min_s"] = overrides["telemetry_interval_max_s"] = args.telemetry_interval_s
    try:
        cfg = replace(cfg, **overrides).validate()
    except ValueError as e:
        p.error(str(e))
    return cfg, args
