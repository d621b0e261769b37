"""Charts of the HTML reports: matplotlib (Agg) figures rendered to base64 PNG, from small pandas frames.

Each function returns a :class:`Chart` (title, caption with units, the PNG, the ids of the entities it
plots) or ``None`` when there is nothing to draw; the caller shows a "no data" panel instead. Figures are
built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so rendering is thread-safe and
needs no display.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 100
WIDTH_IN = 10.0
HALF_DAY = pd.Timedelta(hours=12)
MAX_LINES = 8                     # more entities than this in one trend chart: plot their ratio of sums
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LEVEL_STYLE = {1: ("#2e7d32", "Level 1"), 2: ("#ef6c00", "Level 2"), 3: ("#c62828", "Level 3")}
PALETTE = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#2ca02c", "#ff7f0e",
           "#d62728")
GOOD, BAD, NEUTRAL = "#2e7d32", "#c62828", "#455a64"

matplotlib.rcParams.update({
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelsize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": "#e0e0e0",
    "grid.linewidth": 0.8, "legend.fontsize": 9, "legend.frameon": False,
})


@dataclass
class Chart:
    kind: str                               # energy_trend | washing_trend | heatmap | flexibility | rail_share | forecast
    title: str
    caption: str
    png_base64: str
    entities: list[str] = field(default_factory=list)   # ids of what is plotted (mines, plants, stations, scopes)


def to_png_base64(fig: Figure) -> str:
    buf = io.BytesIO()
    # no "Software" text chunk: the file carries nothing but pixels (and no URL)
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}, facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float, digits: int = 2) -> str:
    return f"{v:,.{digits}f}"


# --- energy per tonne against the standard's levels ---------------------------------------------------
def level_trend(df: pd.DataFrame, *, kind: str, date_col: str, value_col: str, numerator_col: str,
                denominator_col: str, level_cols: Sequence[str], entity_col: str, label_col: str, title: str,
                ylabel: str, unit: str, caption: str) -> Chart | None:
    """Daily value per entity (one line each) with the standard's level-1/2/3 maxima as dashed step lines.

    Levels come from the rows (the standard in force on each graded date), so a change of standard
    within the window shows as a step. With more than :data:`MAX_LINES` entities the chart plots their
    ratio of sums (numerator ÷ denominator per day) instead of one line each.
    """
    d = df.dropna(subset=[date_col]).copy()
    if d.empty or d[value_col].notna().sum() == 0:
        return None
    d[date_col] = pd.to_datetime(d[date_col])
    fig = Figure(figsize=(WIDTH_IN, 3.6))
    ax = fig.add_subplot()
    entities = sorted(d[entity_col].dropna().unique())
    data_max = float(np.nanmax(d[value_col].to_numpy(dtype=float)))
    if len(entities) <= MAX_LINES:
        for i, ent in enumerate(entities):
            e = d[d[entity_col] == ent].sort_values(date_col)
            label = str(e[label_col].dropna().iloc[0]) if label_col in e and e[label_col].notna().any() else str(ent)
            label = f"{ent} · {label}" if label != str(ent) else label
            ax.plot(e[date_col], e[value_col], marker="o", markersize=4, linewidth=1.8,
                    color=PALETTE[i % len(PALETTE)], label=label)
    else:
        agg = d.groupby(date_col)[[numerator_col, denominator_col]].sum()
        series = agg[numerator_col] / agg[denominator_col].where(agg[denominator_col] > 0)
        data_max = float(np.nanmax(series.to_numpy(dtype=float)))
        ax.plot(series.index, series.to_numpy(), marker="o", markersize=4, linewidth=2, color=PALETTE[0],
                label=f"{len(entities)} sites, ratio of sums")
    levels = d.groupby(date_col)[list(level_cols)].max().sort_index()
    # Draw the levels up to the first one above every value; higher ones would only squash the data.
    top, off_scale, covered = data_max, [], False
    for n, col in enumerate(level_cols, start=1):
        s = levels[col].astype(float)
        if s.notna().sum() == 0:
            continue
        colour, name = LEVEL_STYLE[n]
        current = float(s.dropna().iloc[-1])
        if covered:
            off_scale.append(f"{name} ≤ {_fmt(current)}")
            continue
        # each day's limit spans its own day cell (day - 12 h .. day + 12 h)
        x = [t - HALF_DAY for t in s.index] + [s.index[-1] + HALF_DAY]
        y = list(s.to_numpy()) + [s.to_numpy()[-1]]
        ax.step(x, y, where="post", linestyle="--", linewidth=1.5, color=colour, label=f"{name} ≤ {_fmt(current)} {unit}")
        top = max(top, float(np.nanmax(s.to_numpy())))
        covered = float(np.nanmin(s.to_numpy())) >= data_max
    if levels.notna().sum().sum() == 0:
        ax.text(0.01, 0.97, "no limit values in force for these dates", transform=ax.transAxes, va="top",
                fontsize=9, color=BAD)
    if off_scale:
        ax.plot([], [], " ", label="off scale: " + ", ".join(off_scale) + f" {unit}")
    ax.set_ylim(0, top * 1.15 if top > 0 else 1)
    ax.set_title(title, loc="left")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("day (local)")
    first_day, last_day = d[date_col].min(), d[date_col].max()
    ax.set_xlim(first_day - HALF_DAY, last_day + HALF_DAY)
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, math.ceil(((last_day - first_day).days + 1) / 10))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return Chart(kind, title, caption, to_png_base64(fig), [str(e) for e in entities])


# --- charging utilisation heatmaps --------------------------------------------------------------------
def occupancy_heatmaps(df: pd.DataFrame, *, stations: Sequence[tuple[str, str]], title: str, caption: str
                       ) -> Chart | None:
    """One hour × weekday grid per station (small multiples), occupancy % on a shared colour scale."""
    return weekday_hour_heatmaps(df, value_col="occupancy_pct", colorbar_label="occupancy (%)", kind="heatmap",
                                 stations=stations, title=title, caption=caption, cmap="YlOrRd")


def flexibility_heatmaps(df: pd.DataFrame, *, stations: Sequence[tuple[str, str]], title: str, caption: str
                         ) -> Chart | None:
    """One hour × weekday grid per station: the share (%) of the energy charged that could have been moved
    out of that hour (``flexible_share_pct``); grey = nothing charged there."""
    return weekday_hour_heatmaps(df, value_col="flexible_share_pct", colorbar_label="flexible share of kWh (%)",
                                 kind="flexibility", stations=stations, title=title, caption=caption, cmap="YlGnBu")


def weekday_hour_heatmaps(df: pd.DataFrame, *, value_col: str, colorbar_label: str, kind: str,
                          stations: Sequence[tuple[str, str]], title: str, caption: str, cmap: str) -> Chart | None:
    """Small multiples of hour × weekday grids of a percentage column, on a shared colour scale."""
    shown = [(sid, label) for sid, label in stations if (df["station_id"] == sid).any()]
    if not shown:
        return None
    vmax = float(np.nanmax(df[value_col].to_numpy(dtype=float))) if df[value_col].notna().any() else 0.0
    vmax = max(10.0, math.ceil(vmax / 10.0) * 10.0)
    ncols = 1 if len(shown) == 1 else 2
    nrows = math.ceil(len(shown) / ncols)
    fig = Figure(figsize=(WIDTH_IN, 2.5 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    colours = matplotlib.colormaps[cmap].with_extremes(bad="#eceff1")
    image = None
    for ax, (sid, label) in zip(axes.flat, shown):
        s = df[df["station_id"] == sid]
        grid = np.full((7, 24), np.nan)
        for weekday, hour, value in zip(s["weekday"], s["hour_local"], s[value_col]):
            if value is not None and not pd.isna(value):
                grid[int(weekday), int(hour)] = float(value)
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=colours, vmin=0, vmax=vmax,
                          interpolation="nearest")
        # a name is text: no mathtext, so "$" in a station name is drawn as it is
        ax.set_title(f"{sid} · {label}" if label and label != sid else sid, loc="left", fontsize=10, parse_math=False)
        ax.set_yticks(range(7), WEEKDAYS)
        ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)])
        ax.set_xlabel("hour of day (local)")
        ax.grid(False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.9, 0.97))
    cax = fig.add_axes((0.92, 0.12, 0.015, 0.76))
    fig.colorbar(image, cax=cax, label=colorbar_label)
    return Chart(kind, title, caption, to_png_base64(fig), [sid for sid, _ in shown])


# --- rail share ---------------------------------------------------------------------------------------
def rail_share_bars(rows: pd.DataFrame, *, title: str, caption: str) -> Chart | None:
    """Horizontal bars: rail share (tonnes) per scope row (``label``), green where the target is met;
    the target line(s) come from each row's ``target_rail_share_pct``."""
    r = rows.dropna(subset=["rail_share_tonnes_pct"])
    if r.empty:
        return None
    r = r.iloc[::-1]
    fig = Figure(figsize=(WIDTH_IN, 0.45 * len(r) + 1.4))
    ax = fig.add_subplot()
    colours = [GOOD if bool(m) else BAD for m in r["meets_target"].fillna(False)]
    y = np.arange(len(r))
    ax.barh(y, r["rail_share_tonnes_pct"], color=colours, height=0.6)
    for yi, v in zip(y, r["rail_share_tonnes_pct"]):      # values in a column right of the axis, clear of the bars
        ax.text(103, yi, f"{v:.1f} %", va="center", ha="left", fontsize=9, fontweight="bold")
    for t in sorted(r["target_rail_share_pct"].dropna().unique()):
        ax.axvline(t, color=NEUTRAL, linestyle="--", linewidth=1.5, label=f"target {t:g} % (from the data)")
    ax.set_yticks(y, r["label"])
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 20))
    ax.set_ylim(-0.6, len(r) - 0.4)
    ax.set_xlabel("rail share of coal and coke hauled > 500 km, by tonnes (%)")
    ax.set_title(title, loc="left")
    ax.grid(axis="y", visible=False)
    ax.bar(0, 0, color=GOOD, label="meets target")
    ax.bar(0, 0, color=BAD, label="below target")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.5 / (0.45 * len(r) + 1.4) - 0.12), ncol=3)
    return Chart("rail_share", title, caption, to_png_base64(fig), [str(s) for s in r["scope_id"]])


def rail_share_trend(rows: pd.DataFrame, *, title: str, caption: str) -> Chart | None:
    """Monthly rail share per scope (``label``) over the trend window, with the target from the data."""
    r = rows.dropna(subset=["rail_share_tonnes_pct"]).copy()
    if r["month_start"].nunique() < 2:
        return None
    r["month_start"] = pd.to_datetime(r["month_start"])
    fig = Figure(figsize=(WIDTH_IN, 3.4))
    ax = fig.add_subplot()
    for i, (label, g) in enumerate(sorted(r.groupby("label"), key=lambda kv: str(kv[0]))):
        g = g.sort_values("month_start")
        ax.plot(g["month_start"], g["rail_share_tonnes_pct"], marker="o", color=PALETTE[i % len(PALETTE)], label=label)
    t = r.groupby("month_start")["target_rail_share_pct"].max().sort_index()
    ax.step(t.index, t.to_numpy(), where="mid", color=NEUTRAL, linestyle="--", label="target")
    ax.set_ylim(0, 105)
    ax.set_ylabel("rail share by tonnes (%)")
    ax.set_xlabel("month")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    ax.set_title(title, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return Chart("rail_share_trend", title, caption, to_png_base64(fig), sorted({str(s) for s in r["scope_id"]}))


# --- charging forecast --------------------------------------------------------------------------------
def forecast_bands(fc: pd.DataFrame, actual: pd.DataFrame, *, stations: Sequence[tuple[str, str]], title: str,
                   caption: str) -> Chart | None:
    """Per station: the hourly P50 forecast with its P10–P90 interval, and the actual energy where known."""
    shown = [(sid, label) for sid, label in stations if (fc["station_id"] == sid).any()]
    if not shown:
        return None
    nrows = len(shown)
    fig = Figure(figsize=(WIDTH_IN, 2.4 * nrows + 0.6))
    axes = fig.subplots(nrows, 1, squeeze=False, sharex=True)
    for ax, (sid, label) in zip(axes.flat, shown):
        s = fc[fc["station_id"] == sid].sort_values("ts_local")
        x = pd.to_datetime(s["ts_local"])
        ax.fill_between(x, s["p10_kwh"].astype(float), s["p90_kwh"].astype(float), color="#90caf9", alpha=0.6,
                        linewidth=0, label="P10–P90 interval")
        ax.plot(x, s["p50_kwh"].astype(float), color="#0d47a1", linewidth=1.6, label="P50 forecast")
        a = actual[actual["station_id"] == sid]
        if not a.empty:
            ax.plot(pd.to_datetime(a["ts_local"]), a["energy_kwh"].astype(float), linestyle="none", marker=".",
                    color="#212121", markersize=5, label="actual")
        ax.set_title(f"{sid} · {label}" if label and label != sid else sid, loc="left", fontsize=10, parse_math=False)
        ax.set_ylabel("energy (kWh per hour)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.flat[-1].set_xlabel("hour (local time)")
    axes.flat[-1].xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Hh"))
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return Chart("forecast", title, caption, to_png_base64(fig), [sid for sid, _ in shown])
