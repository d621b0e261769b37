"""Converters from the real public charging datasets (read in place under ``shared/data/real``) and from our
own landing zone to the generic forecaster inputs:

* sessions: ``site_id, start_ts, end_ts, energy_kwh`` (local wall-clock time, no zone), or
* series:   ``site_id, ts, energy_kwh``.

Usage: ``python -m models.datasets NAME --out FILE.csv`` (NAME from :data:`DATASETS`); the CSV is meant for a
temp dir, never for the repo.
"""
from __future__ import annotations

import argparse
import glob
from pathlib import Path

import pandas as pd



def _real_root() -> Path:
    """Where the public datasets are (the ``real_data_root`` setting)."""
    from jobs.platform.settings import get_settings

    return get_settings().real_data_root


def _landing_root() -> Path:
    from jobs.platform.settings import get_settings

    return get_settings().landing_root


def acn_caltech(level: str = "station") -> pd.DataFrame:
    """ACN-Data Caltech, 2019-12-30..2021-09-14 (Lee, Li & Low 2019). Times UTC -> America/Los_Angeles.

    Energy is spread from connection to *done charging* (when known, else disconnection): a car stays plugged
    in long after it is full. ``level="station"``: one site per EVSE (54); ``"site"``: the whole garage."""
    df = pd.read_csv(_real_root() / "acn_caltech_sessions" / "sessions_flat.csv.gz", dtype={"stationID": str})
    tz = "America/Los_Angeles"
    start = pd.to_datetime(df["connectionTime_utc"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    done = pd.to_datetime(df["doneChargingTime_utc"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    disc = pd.to_datetime(df["disconnectTime_utc"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    end = done.where(done.notna() & (done > start), disc)
    site = df["stationID"] if level == "station" else pd.Series("caltech", index=df.index)
    return pd.DataFrame({"site_id": site, "start_ts": start, "end_ts": end, "energy_kwh": df["kWhDelivered"]})


def lugano() -> pd.DataFrame:
    """AIL Lugano 2017 public network, one site per charging station (52). Local time (Europe/Zurich).

    Dates come in two formats in the same column (``dd.mm.yy`` and ``mm/dd/yyyy``); energy is in Wh."""
    df = pd.read_csv(_real_root() / "lugano_ail_2017_sessions" / "ail_lugano_charging_sessions_2017.csv")

    def parse(date: pd.Series, hour: pd.Series) -> pd.Series:
        dot = date.str.contains(r"\.", regex=True)
        out = pd.Series(pd.NaT, index=date.index, dtype="datetime64[ns]")
        out[dot] = pd.to_datetime(date[dot] + " " + hour[dot], format="%d.%m.%y %H:%M")
        out[~dot] = pd.to_datetime(date[~dot] + " " + hour[~dot], format="%m/%d/%Y %H:%M")
        return out

    start = parse(df["BeginDate"], df["BeginHour"])
    end = parse(df["EndDate"], df["EndHour"])
    return pd.DataFrame({"site_id": df["ChargingStationId"].astype(str), "start_ts": start, "end_ts": end,
                         "energy_kwh": df["PowerConsumption"] / 1000.0})


def workplace(level: str = "location") -> pd.DataFrame:
    """US workplace charging (Harvard Dataverse, CC0), 2014-11..2015-10. ``level="location"``: one site per
    location (25); ``"station"``: per station (105). Years written 0014/0015 are read as 2014/2015."""
    df = pd.read_csv(_real_root() / "workplace_charging_dataverse" / "station_data_dataverse.csv")

    def fix(s: pd.Series) -> pd.Series:
        return pd.to_datetime(s.str.replace(r"^00(\d\d)-", r"20\1-", regex=True))

    site = df["locationId"] if level == "location" else df["stationId"]
    return pd.DataFrame({"site_id": site.astype(str), "start_ts": fix(df["created"]), "end_ts": fix(df["ended"]),
                         "energy_kwh": df["kwhTotal"]})


def urbanev_shenzhen() -> pd.DataFrame:
    """UrbanEV Shenzhen, 10 traffic zones, hourly kWh, 2022-09-01..2023-02-28 (Asia/Shanghai). Series input."""
    df = pd.read_csv(_real_root() / "urbanev_shenzhen_10zone_subset" / "volume_kwh_hourly_10zones.csv.gz")
    df["ts"] = pd.to_datetime(df["time"], format="%Y/%m/%d %H:%M")
    long = df.drop(columns="time").melt(id_vars="ts", var_name="zone", value_name="energy_kwh")
    long["site_id"] = "zone_" + long["zone"].astype(str).str.zfill(2)
    return long[["site_id", "ts", "energy_kwh"]].sort_values(["site_id", "ts"], ignore_index=True)


def generated(landing_root: Path | str | None = None) -> pd.DataFrame:
    """Our generator's charging sessions: ``<landing>/charging_sessions/<date>/*.csv[.gz]``.

    site_id = station_id, start = charge_start_local (else plug_in_local), end = charge_end_local (else
    plug_out_local), energy = meter_stop_kwh - meter_start_kwh; duplicates of a session_id (late re-deliveries)
    are dropped."""
    root = Path(landing_root or _landing_root()) / "charging_sessions"
    files = sorted(glob.glob(str(root / "*" / "*.csv")) + glob.glob(str(root / "*" / "*.csv.gz")))
    if not files:
        raise FileNotFoundError(f"no charging session files under {root}")
    df = pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
    df = df.drop_duplicates("session_id", keep="last")
    num = lambda c: pd.to_numeric(df[c], errors="coerce")  # noqa: E731
    start = pd.to_datetime(df["charge_start_local"].fillna(df["plug_in_local"]), errors="coerce")
    end = pd.to_datetime(df["charge_end_local"].fillna(df["plug_out_local"]), errors="coerce")
    out = pd.DataFrame({"site_id": df["station_id"], "start_ts": start, "end_ts": end,
                        "energy_kwh": num("meter_stop_kwh") - num("meter_start_kwh")})
    return out[out["energy_kwh"].notna() & (out["energy_kwh"] >= 0) & out["start_ts"].notna()]


# name -> (loader, holiday calendar appropriate for the place)
DATASETS = {
    "acn_caltech_station": (lambda: acn_caltech("station"), "none"),
    "acn_caltech_site": (lambda: acn_caltech("site"), "none"),
    "lugano_station": (lugano, "none"),
    "lugano_network": (lambda: lugano().assign(site_id="lugano"), "none"),
    "workplace_location": (lambda: workplace("location"), "none"),
    "workplace_all": (lambda: workplace("location").assign(site_id="all"), "none"),
    "urbanev_shenzhen_zone": (urbanev_shenzhen, "cn"),
    "generated_station": (generated, "cn"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(DATASETS))
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    df = DATASETS[a.name][0]()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    print(f"{a.name}: {len(df)} rows -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
