"""Does the production plan help? Rolling-origin backtest on a generated landing world, with and without it.

    python -m jobs.forecast.plan_backtest --landing /tmp/coalchain_long --out /tmp/plan_backtest [--days 60]

Reads the world's landing files with pandas (no lake needed): charging sessions (energy spread over the
hours from charge start to charge end, per station), weighbridge tickets (each truck's home mine), mines
(nominal shift tonnes), connectors (station features) and the production plan. For each horizon (24 h and
168 h) it runs :func:`models.forecast.backtest` twice on the same hourly series, the same rolling origins
and the same settings: **with the plan** (station features + :data:`jobs.forecast.plan_exog.PLAN_FEATURES`,
each hour's plan values as known at that forecast's issue time, :func:`jobs.forecast.plan_exog.issue_times`)
and **without** (station features only). Both seasonal-naive baselines come with each run. Writes
``<out>/plan_backtest.md`` (the table), ``plan_backtest.json`` and, per run, the backtest CLI's
``predictions.csv``, ``metrics.json`` and ``backtest.png``.

The station-to-mine weights and fleet sizes are taken from the tickets and sessions of the training part
(before the test window), so nothing after a forecast's issue time reaches its features.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from jobs.forecast.plan_exog import PLAN_FEATURES, issue_times, nominal_shift_tonnes, plan_exog, station_mine_weights

HORIZONS_H = (24, 168)
STATION_FEATURES = ("n_connectors", "rated_kw")
TEST_FRACTION = 1 / 3


def _read(landing: str, source: str) -> pd.DataFrame:
    files = sorted(glob.glob(os.path.join(landing, source, "*", "*.csv")))
    if not files:
        raise FileNotFoundError(f"{landing}: no {source} files (expected {source}/<yyyy-mm-dd>/*.csv)")
    frames = [pd.read_csv(f, dtype=str, keep_default_na=False).assign(_delivered=os.path.basename(os.path.dirname(f)))
              for f in files]
    return pd.concat(frames, ignore_index=True)


def _in_window(df: pd.DataFrame, col: str, days_before: int = 2) -> pd.DataFrame:
    """Rows whose time lies within the delivery folders' span (a clock jump of years is dropped, as the
    ingestion quarantines it)."""
    delivered = pd.to_datetime(df["_delivered"])
    lo, hi = delivered.min() - pd.Timedelta(days=days_before), delivered.max() + pd.Timedelta(days=1)
    return df[(df[col] >= lo) & (df[col] < hi)]


def _num(df: pd.DataFrame, cols) -> pd.DataFrame:
    for c in cols:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def _ts(df: pd.DataFrame, cols) -> pd.DataFrame:
    for c in cols:
        df[c] = pd.to_datetime(df[c], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    return df


def load_world(landing: str, days: int | None = None) -> dict[str, pd.DataFrame]:
    """The frames the forecast needs, deduplicated and with unreadable rows dropped (what silver would hold).
    ``days``: keep only the first ``days`` local days (a slice of a long world)."""
    s = _read(landing, "charging_sessions").drop_duplicates("session_id")
    s = _ts(_num(s, ["meter_start_kwh", "meter_stop_kwh"]),
            ["plug_in_local", "charge_start_local", "charge_end_local", "plug_out_local"])
    s["energy_kwh"] = s["meter_stop_kwh"] - s["meter_start_kwh"]
    s = s[(s["energy_kwh"] >= 0) & s["plug_in_local"].notna() & s["plug_out_local"].notna()]
    s = s.assign(site_id=s["station_id"], start_ts=s["charge_start_local"].fillna(s["plug_in_local"]),
                 end_ts=s["charge_end_local"].fillna(s["plug_out_local"]))
    s = _in_window(s, "start_ts")
    t = _read(landing, "weighbridge").drop_duplicates("ticket_id")
    t = _in_window(_ts(t, ["load_time_local"]).dropna(subset=["load_time_local"]), "load_time_local")
    p = _read(landing, "production_plan").drop_duplicates(["mine_id", "shift_date", "shift_no"])
    p = _ts(_num(p, ["planned_raw_coal_t", "trucks_dispatched"]), ["shift_start_local", "published_local"])
    p = p.dropna(subset=["planned_raw_coal_t", "trucks_dispatched", "shift_start_local", "published_local"])
    p = _in_window(p, "published_local")
    p = p[(p["planned_raw_coal_t"] >= 0) & (p["trucks_dispatched"] >= 0) & (p["published_local"] < p["shift_start_local"])]
    p = p.rename(columns={"shift_start_local": "shift_start", "published_local": "published"})
    mines = _read(landing, "mines").drop_duplicates("mine_id")
    conn = _num(_read(landing, "charging_connectors").drop_duplicates(["station_id", "connector_id"]), ["rated_kw"])
    stations = conn.groupby("station_id").agg(n_connectors=("connector_id", "nunique"), rated_kw=("rated_kw", "sum"))
    stations = stations.reset_index().rename(columns={"station_id": "site_id"})
    if days is not None:
        start = s["start_ts"].min().normalize()
        end = start + pd.Timedelta(days=days)
        s = s[s["start_ts"] < end]
        t = t[t["load_time_local"] < end]
        p = p[p["published"] < end]
    return {"sessions": s, "tickets": t, "plan": p, "mines": mines, "stations": stations}


def hourly_series(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Station x hour energy with the station features as columns."""
    from models.features import sessions_to_series

    s = world["sessions"]
    series = sessions_to_series(s.loc[:, ["site_id", "start_ts", "end_ts", "energy_kwh"]], "h")
    return series.merge(world["stations"], on="site_id", how="left")


def with_plan(series: pd.DataFrame, world: dict[str, pd.DataFrame], horizon_h: int,
              known_before: pd.Timestamp) -> pd.DataFrame:
    """``series`` plus the plan features as known at each hour's issue time at ``horizon_h``. Weights and fleet
    sizes come from sessions and tickets before ``known_before``."""
    s, t = world["sessions"], world["tickets"]
    weights, fleet = station_mine_weights(s[s["start_ts"] < known_before], t[t["load_time_local"] < known_before])
    mines = world["mines"]
    hours = pd.date_range(series["ts"].min(), series["ts"].max(), freq="h")
    ex = plan_exog(world["plan"], weights, fleet, nominal_shift_tonnes(mines), hours, issue_times(hours, horizon_h))
    # every station hour gets its plan row (hours without a session included): the panel reads exog per cell
    grid = ex.merge(series, on=["site_id", "ts"], how="left")
    first = series.groupby("site_id")["ts"].min()
    grid = grid[grid["ts"] >= grid["site_id"].map(first)]
    grid["energy_kwh"] = grid["energy_kwh"].fillna(0.0)
    st = world["stations"].set_index("site_id")
    for c in STATION_FEATURES:
        grid[c] = grid["site_id"].map(st[c])
    return grid.loc[:, ["site_id", "ts", "energy_kwh", *STATION_FEATURES, *PLAN_FEATURES]]


def run(landing: str, out: str, days: int | None = None, horizons=HORIZONS_H, max_refits: int = 4) -> dict:
    from models import forecast

    world = load_world(landing, days)
    series = hourly_series(world)
    t0, t1 = series["ts"].min(), series["ts"].max()
    known_before = t1 - (t1 - t0) * TEST_FRACTION       # the start of the test window
    results: dict = {"landing": landing, "days": days, "span": [str(t0), str(t1)], "runs": {}}
    for h in horizons:
        for variant in ("with_plan", "without_plan"):
            started = time.perf_counter()
            if variant == "with_plan":
                df, exog = with_plan(series, world, h, known_before), (*STATION_FEATURES, *PLAN_FEATURES)
            else:
                df, exog = series, STATION_FEATURES
            pred, metrics = forecast.backtest(df, freq="h", horizon=h, test_fraction=TEST_FRACTION, holidays="cn",
                                              exog=exog, max_refits=max_refits)
            paths = forecast.write_backtest(pred, metrics, Path(out) / f"h{h}_{variant}",
                                            title=f"generated world, {variant.replace('_', ' ')}, horizon {h} h")
            results["runs"][f"{h}/{variant}"] = {
                "overall": metrics["overall"], "per_site": metrics.get("per_site"),
                "served_per_refit": metrics["setup"]["served_per_refit"], "plot": str(paths["plot"]),
                "runtime_s": round(time.perf_counter() - started, 1)}
    results["table"] = table(results)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "plan_backtest.json").write_text(json.dumps(results, indent=1, default=str))
    (Path(out) / "plan_backtest.md").write_text(results["table"] + "\n")
    return results


def _block(results: dict, key: str, site: str | None):
    r = results["runs"].get(key)
    if r is None:
        return None
    return r["overall"] if site is None else (r.get("per_site") or {}).get(site)


def table(results: dict) -> str:
    """Markdown: per horizon and site (overall first), MAE of each forecast and the ratios the goal uses."""
    lines = ["| horizon | site | MAE with plan (kWh/h) | without plan | daily naive | weekly naive | "
             "with / weekly | with / daily | with / without | P10-P90 coverage with plan |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    hs = sorted({int(k.split("/")[0]) for k in results["runs"]})
    for h in hs:
        sites = sorted((results["runs"][f"{h}/with_plan"].get("per_site") or {}).keys())
        for site in [None, *sites]:
            w, wo = _block(results, f"{h}/with_plan", site), _block(results, f"{h}/without_plan", site)
            if not w or not wo or not w.get("model") or not wo.get("model"):
                continue
            m, mo = w["model"]["mae"], wo["model"]["mae"]
            dn = (w.get("snaive_daily") or {}).get("mae")
            wk = (w.get("snaive_weekly") or {}).get("mae")
            cov = w["model"].get("coverage_p10_p90")
            f = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
            lines.append(f"| {h} h | {site or 'all stations'} | {m:.2f} | {mo:.2f} | {f(dn)} | {f(wk)} | "
                         f"{f(m / wk if wk else None)} | {f(m / dn if dn else None)} | {f(m / mo if mo else None)} | "
                         f"{f(cov)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.forecast.plan_backtest", description=__doc__.splitlines()[0])
    ap.add_argument("--landing", required=True, help="landing root of a generated world")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--days", type=int, default=None, help="use only the first N days")
    ap.add_argument("--horizons", default="24,168")
    ap.add_argument("--max-refits", type=int, default=4)
    a = ap.parse_args(argv)
    res = run(a.landing, a.out, a.days, tuple(int(h) for h in a.horizons.split(",")), a.max_refits)
    print(res["table"])
    print(f"wrote {Path(a.out) / 'plan_backtest.md'}; plots: {Path(a.out)}/h<H>_<variant>/backtest.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
