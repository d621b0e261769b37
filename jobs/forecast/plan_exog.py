"""The day-ahead production plan as exogenous input of the charging-demand forecast (pandas, no Spark).

A plan row says, per mine and shift, the raw-coal tonnes planned and the trucks dispatched, and when the
dispatch office published it (normally the evening before the shift-day). A station's demand follows the
trucks of the mines it serves, so each station gets, per hour ``t``:

``plan_trucks_share``       sum over mines m of w[s, m] x trucks dispatched by m for the shift containing t / fleet[m]
``plan_trucks_share_prev``  the same for the shift before it (trucks coming off duty charge after their shift)
``plan_tonnes_ratio``       sum over m of w[s, m] x planned tonnes of that shift / the mine's nominal shift tonnes

``w[s, m]``: the share of station s's charged energy drawn by trucks whose home mine is m (the mine most of
their weighbridge tickets come from); ``fleet[m]``: how many trucks have m as home mine; nominal shift tonnes:
capacity per year / 330 working days / 3 shifts. All three come from data before the forecast's cut-off.

**Publication time.** A plan may only be used from its publication on: the value for hour ``t`` is the plan
of t's shift only if it was published at or before the *issue time* of the forecast for ``t``; otherwise it is
unknown (NaN). :func:`issue_times` gives the issue time of a forecast ``horizon_h`` hours ahead; the forecast
job issues at the local midnight that ends the as-of day, so the next day's plan (published the evening
before) is known and later days' plans are not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PLAN_FEATURES = ("plan_trucks_share", "plan_trucks_share_prev", "plan_tonnes_ratio")
SHIFT_H = 8
WORKING_DAYS_PER_YEAR = 330
SHIFTS_PER_DAY = 3


def issue_times(ts: pd.DatetimeIndex | pd.Series, horizon_h: int) -> pd.DatetimeIndex:
    """When the forecast of hour ``ts`` made ``horizon_h`` hours ahead is issued.

    Its features use the hours up to ``ts - horizon_h`` (complete at ``ts - horizon_h + 1 h``). Below a day
    that is the issue time; from 24 h on, forecasts are issued at local midnight (the pipeline's cut-off), so
    it is the first midnight at or after that: the forecast of day D's hours at 24 h is issued at D 00:00.
    """
    ts = pd.DatetimeIndex(ts)
    ready = ts - pd.Timedelta(hours=int(horizon_h) - 1)
    if horizon_h < 24:
        return ready
    return ready.ceil("D")


def home_mines(tickets: pd.DataFrame) -> pd.Series:
    """VIN -> the mine most of its weighbridge tickets come from (ties: the smallest mine id)."""
    if tickets.empty:
        return pd.Series(dtype=object)
    n = tickets.groupby(["vin", "mine_id"]).size().rename("n").reset_index()
    n = n.sort_values(["vin", "n", "mine_id"], ascending=[True, False, True])
    return n.drop_duplicates("vin").set_index("vin")["mine_id"]


def station_mine_weights(sessions: pd.DataFrame, tickets: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """``(weights, fleet)``: per (site_id, mine_id) the share of the station's energy drawn by trucks of that
    home mine, and per mine the number of trucks whose home mine it is. ``sessions``: ``site_id, vin,
    energy_kwh``; ``tickets``: ``vin, mine_id``. Sessions of trucks without tickets carry no weight."""
    home = home_mines(tickets)
    fleet = home.value_counts().rename("fleet")
    s = sessions.loc[:, ["site_id", "vin", "energy_kwh"]].copy()
    s["mine_id"] = s["vin"].map(home)
    s = s.dropna(subset=["mine_id"])
    e = s.groupby(["site_id", "mine_id"], as_index=False)["energy_kwh"].sum()
    e["weight"] = e["energy_kwh"] / e.groupby("site_id")["energy_kwh"].transform("sum")
    return e.loc[e["weight"] > 0, ["site_id", "mine_id", "weight"]].reset_index(drop=True), fleet


def _mine_hourly(plan_m: pd.DataFrame, hours: pd.DatetimeIndex, issue: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Per hour: dispatched trucks and planned tonnes of the shift containing it and of the shift before,
    NaN where that plan was not yet published at the hour's issue time (or no plan covers the hour)."""
    p = plan_m.sort_values("shift_start").drop_duplicates("shift_start", keep="last")
    starts = p["shift_start"].to_numpy("datetime64[ns]")
    pub = p["published"].to_numpy("datetime64[ns]")
    trucks = p["trucks_dispatched"].to_numpy(float)
    tonnes = p["planned_raw_coal_t"].to_numpy(float)
    h = hours.to_numpy("datetime64[ns]")
    iss = issue.to_numpy("datetime64[ns]")
    out = {}
    for name, back in (("cur", 0), ("prev", 1)):
        i = np.searchsorted(starts, h, side="right") - 1 - back
        ok = i >= 0
        ic = np.clip(i, 0, max(len(starts) - 1, 0))
        if len(starts) == 0:
            ok &= False
        else:
            # the shift must cover the hour (cur) or end where the hour's shift starts (prev)
            covers = h < starts[ic] + np.timedelta64((1 + back) * SHIFT_H, "h")
            ok &= covers & (pub[ic] <= iss)
        out[f"trucks_{name}"] = np.where(ok, trucks[ic] if len(starts) else np.nan, np.nan)
        out[f"tonnes_{name}"] = np.where(ok, tonnes[ic] if len(starts) else np.nan, np.nan)
    return out


def plan_exog(plan: pd.DataFrame, weights: pd.DataFrame, fleet: pd.Series, nominal_shift_t: pd.Series,
              hours: pd.DatetimeIndex, issue: pd.DatetimeIndex) -> pd.DataFrame:
    """Station x hour plan features (:data:`PLAN_FEATURES`) as known at each hour's issue time.

    ``plan``: ``mine_id, shift_start, planned_raw_coal_t, trucks_dispatched, published`` (local wall-clock);
    ``hours`` and ``issue`` align (one issue time per target hour, e.g. :func:`issue_times`). A station whose
    mines' plans are all unknown for an hour gets NaN; otherwise the weights of the known mines are
    renormalised. Returns ``site_id, ts, <PLAN_FEATURES>``.
    """
    hours = pd.DatetimeIndex(hours)
    issue = pd.DatetimeIndex(issue)
    if len(hours) != len(issue):
        raise ValueError(f"hours ({len(hours)}) and issue times ({len(issue)}) must align")
    per_mine = {m: _mine_hourly(g, hours, issue) for m, g in plan.groupby("mine_id")}
    frames = []
    for site, w in weights.groupby("site_id"):
        acc = {k: np.zeros(len(hours)) for k in PLAN_FEATURES}
        wsum = {k: np.zeros(len(hours)) for k in PLAN_FEATURES}
        for m, wt in zip(w["mine_id"], w["weight"]):
            v = per_mine.get(m)
            n_fleet = float(fleet.get(m, 0) or 0)
            nominal = float(nominal_shift_t.get(m, np.nan))
            if v is None or n_fleet <= 0:
                continue
            parts = {"plan_trucks_share": v["trucks_cur"] / n_fleet,
                     "plan_trucks_share_prev": v["trucks_prev"] / n_fleet,
                     "plan_tonnes_ratio": v["tonnes_cur"] / nominal if nominal > 0 else np.full(len(hours), np.nan)}
            for k, x in parts.items():
                known = ~np.isnan(x)
                acc[k] += np.where(known, wt * x, 0.0)
                wsum[k] += np.where(known, wt, 0.0)
        cols = {k: np.where(wsum[k] > 0, acc[k] / np.where(wsum[k] > 0, wsum[k], 1.0), np.nan) for k in PLAN_FEATURES}
        frames.append(pd.DataFrame({"site_id": str(site), "ts": hours, **cols}))
    if not frames:
        return pd.DataFrame(columns=["site_id", "ts", *PLAN_FEATURES])
    return pd.concat(frames, ignore_index=True)


def nominal_shift_tonnes(mines: pd.DataFrame) -> pd.Series:
    """mine_id -> nominal tonnes per shift: capacity (Mt/yr) x 1e6 / 330 working days / 3 shifts."""
    cap = pd.to_numeric(mines["capacity_mt_per_yr"], errors="coerce")
    return pd.Series((cap * 1e6 / WORKING_DAYS_PER_YEAR / SHIFTS_PER_DAY).to_numpy(), index=mines["mine_id"].astype(str))
