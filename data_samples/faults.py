"""Data faults of the CSV event sources (telematics frames get theirs in fleet.py).

Kinds, shared with telematics where they apply:
  dup_record    the same row twice in one file (the copy at the end of the file)
  late_record   the row lands 1-3 delivery days late, in a later day folder
  out_of_range  a value that cannot be true (negative tonnes, a meter running backwards, status code 7)
  non_numeric   a numeric field holding text ('n/a', '#VALUE!', a decimal comma)
  clock_jump    a timestamp or date years off (RTC reset to 2000-01-01, or a wrong year)
Only telematics: sentinel (0xFE/0xFF... raw values), truncated (a JSON line cut short).
Whole files: dup_file (a file delivered again, under another name, on a later day).

Every injected fault is listed in ``<out>/_faults.jsonl`` and counted in ``_manifest.json``.
"""
from __future__ import annotations

CSV_FAULTS = (("dup_record", 0.30), ("late_record", 0.30), ("out_of_range", 0.15), ("non_numeric", 0.10),
              ("clock_jump", 0.15))
LATE_DAYS = (1, 1, 1, 2, 2, 3)

# Per source: (field made out of range, how), field made non-numeric, timestamp/date field that jumps.
CSV_FAULT_FIELDS: dict[str, dict[str, object]] = {
    "production_plan": {"out_of_range": ("planned_raw_coal_t", "negate"), "non_numeric": "trucks_dispatched",
                        "clock_jump": "published_local"},
    "mine_production": {"out_of_range": ("raw_coal_t", "negate"), "non_numeric": "electricity_kwh",
                        "clock_jump": "shift_start_local"},
    "washing": {"out_of_range": ("clean_coal_t", "negate"), "non_numeric": "raw_coal_fed_t", "clock_jump": "prod_date"},
    "weighbridge": {"out_of_range": ("net_t", "negate"), "non_numeric": "net_t", "clock_jump": "load_time_local"},
    "charging_sessions": {"out_of_range": ("meter_stop_kwh", "meter_backwards"), "non_numeric": "meter_stop_kwh",
                          "clock_jump": "plug_in_local"},
    "connector_status": {"out_of_range": ("status_code", "code_7"), "non_numeric": "status_code",
                         "clock_jump": "status_time_local"},
    "h2_fills": {"out_of_range": ("h2_kg", "plus_1000"), "non_numeric": "h2_kg", "clock_jump": "start_local"},
    "shipments": {"out_of_range": ("tonnes", "negate"), "non_numeric": "distance_km", "clock_jump": "ship_date"},
}

# Landing fields that identify a row (the contract's natural key, with silver-only UTC columns mapped back).
LANDING_KEY = {
    "production_plan": ("mine_id", "shift_date", "shift_no"),
    "mine_production": ("mine_id", "shift_date", "shift_no"),
    "washing": ("plant_id", "prod_date"),
    "weighbridge": ("ticket_id",),
    "charging_sessions": ("session_id",),
    "connector_status": ("station_id", "connector_id", "status_time_local"),
    "h2_fills": ("fill_id",),
    "shipments": ("shipment_id",),
    "telematics": ("vin", "collect_time"),
}


def pick_kind(rng, table=CSV_FAULTS) -> str:
    r = rng.random() * sum(w for _, w in table)
    for kind, w in table:
        r -= w
        if r < 0:
            return kind
    return table[-1][0]


def jump_clock(value: str, rng) -> str:
    """A timestamp ('yyyy-mm-dd HH:MM:SS') or date years away from the truth."""
    if rng.random() < 0.5:
        return "2000-01-01" + value[10:]
    return f"{int(value[:4]) + rng.choice((-7, -3, 2, 5, 19)):04d}{value[4:]}"


def corrupt(source: str, kind: str, row: dict[str, str], rng) -> tuple[str, str]:
    """Apply a value fault to ``row`` in place; returns (field, written value)."""
    spec = CSV_FAULT_FIELDS[source]
    if kind == "out_of_range":
        fld, how = spec["out_of_range"]
        v = row[fld]
        if how == "negate":
            new = "-" + v if float(v) > 0 else "-999.00"   # '-0.00' would still be a valid zero
        elif how == "meter_backwards":
            new = f"{float(row['meter_start_kwh']) - rng.uniform(5, 50):.3f}"
        elif how == "code_7":
            new = "7"
        else:  # plus_1000: more hydrogen than any truck tank holds
            new = f"{float(v) + 1000:.2f}"
    elif kind == "non_numeric":
        fld = spec["non_numeric"]
        v = row[fld]
        new = rng.choice(("n/a", "#VALUE!", v.replace(".", ",") if "." in v else "n/a"))
    else:
        fld = spec["clock_jump"]
        new = jump_clock(row[fld], rng)
    row[fld] = new
    return fld, new
