"""Rolling-origin backtest and forecast metrics.

The test window is the last ``test_fraction`` of the time axis (never a random split). A forecast for bin
``t`` at horizon ``H`` is *issued* at ``s = t - H``: its features use data up to ``s`` only and its model is
the latest refit whose training targets all lie at or before ``s``. Models are refit every ``refit_every``
steps (default: often enough for at most ``max_refits`` fits over the test window, and at least weekly
spacing), which keeps a run to seconds while every forecast still sees only its past.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .baselines import BASELINES, baseline_forecasts
from .features import FeatureConfig, Panel, build_features, horizon_lags
from .calibration import adaptive_offsets, apply_offsets, conformity_scores, horizon_settings
from .gbm import fit_horizon_model, predict_cells, served_band, validate_refit

MODELS = ("model",) + BASELINES


@dataclass
class BacktestConfig:
    horizon: int = 24
    test_fraction: float = 1 / 3
    refit_every: int | None = None        # steps between refits; default from max_refits
    max_refits: int = 4
    features: FeatureConfig = field(default_factory=FeatureConfig)
    params: dict | None = None
    max_rows: int = 60_000
    half_life_days: float | None = None
    train_window_days: int | None = None
    # candidate training windows (None = all history, N = last N days) chosen per refit on the two weeks
    # before the origin; set to (None,) to always train on all history
    window_candidates: tuple = (None, 120)
    # at each refit, on the same two weeks: serve a seasonal-naive baseline that beat the model there
    # (models.gbm.validate_refit); calibrate P10/P90 per site on a rolling window of out-of-sample errors
    # that starts with those two weeks (models.calibration)
    fallback: bool = True
    calibrate: bool = True
    # shrink the P50 toward a recent same-hour average, reference and weight chosen on the same two weeks
    blend: bool = False
    # on the same two weeks: serve the daily level x hourly shape forecast (models.level), alone or mixed with
    # the GBM's P50, where it beat the GBM there (needs features.level_shape, on by default)
    level: bool = True


def holdout_window(panel: Panel, test_fraction: float) -> tuple[int, int]:
    """Grid indices [start, end] of the test window: the last ``test_fraction`` of the observed span."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be in (0, 1)")
    first = int(panel.first.min())
    end = int(panel.last_obs)
    n = end - first + 1
    n_test = max(1, int(round(n * test_fraction)))
    return end - n_test + 1, end


def refit_origins(test_start: int, test_end: int, horizon: int, refit_every: int) -> np.ndarray:
    o0 = test_start - horizon
    last_issue = test_end - horizon
    return np.arange(o0, last_issue + 1, refit_every)


def run_backtest(panel: Panel, cfg: BacktestConfig) -> tuple[pd.DataFrame, dict]:
    """Rolling-origin backtest of the GBM quantile model and both seasonal-naive baselines.

    Returns ``(predictions, metrics)``; predictions has one row per (site, test bin) with ``actual``,
    ``p50``, ``p10``, ``p90``, ``snaive_daily``, ``snaive_weekly``, ``issued_at`` and ``model_trained_to``.
    """
    H = int(cfg.horizon)
    d = panel.spd
    test_start, test_end = holdout_window(panel, cfg.test_fraction)
    if test_start - H <= int(panel.first.min()):
        raise ValueError("series too short: no training data before the first forecast's issue time")
    n_test = test_end - test_start + 1
    R = cfg.refit_every or max(7 * d, math.ceil(n_test / max(1, cfg.max_refits)))
    R = int(math.ceil(R / d) * d) if R >= d else int(R)
    origins = refit_origins(test_start, test_end, H, R)

    F = build_features(panel, H, cfg.features)
    base = baseline_forecasts(panel, H)
    frames, windows, checks = [], [], []
    cands = cfg.window_candidates if cfg.train_window_days is None else (cfg.train_window_days,)
    for k, o in enumerate(origins):
        lo_t = max(test_start, o + H)                      # targets issued in [o, o + R)
        hi_t = min(test_end, o + R - 1 + H)
        if hi_t < lo_t:
            continue
        check = validate_refit(panel, H, cfg.features, int(o), F, cands, params=cfg.params,
                               max_rows=cfg.max_rows, seed=k, fallback=cfg.fallback, calibrate=cfg.calibrate,
                               half_life_days=cfg.half_life_days, blend=cfg.blend, level=cfg.level)
        windows.append("all" if check.window is None else check.window)
        checks.append({"served": check.served, "val_mae": check.val_mae, "calibration": check.calibration,
                       "blend": check.blend, "level_variant": check.level_variant})
        model = fit_horizon_model(panel, H, cfg.features, train_end=int(o), F=F, params=cfg.params,
                                  max_rows=cfg.max_rows, half_life_days=cfg.half_life_days,
                                  train_window_days=check.window, seed=k)
        check.apply(model)
        ts = np.arange(lo_t, hi_t + 1)
        t_idx = np.repeat(ts, len(panel.sites))
        s_idx = np.tile(np.arange(len(panel.sites)), len(ts))
        active = t_idx >= panel.first[s_idx]
        t_idx, s_idx = t_idx[active], s_idx[active]
        if len(t_idx) == 0:
            continue
        if cfg.calibrate and check.residuals:
            q = rolling_calibrated(model, F, panel, t_idx, s_idx, H, check.residuals)
        else:
            q = predict_cells(model, F, t_idx, s_idx)
        fr = pd.DataFrame({
            "site_id": np.asarray(panel.sites, dtype=object)[s_idx],
            "ts": panel.index[t_idx],
            "actual": panel.y[t_idx, s_idx],
            "p50": q["p50"].to_numpy(), "p10": q["p10"].to_numpy(), "p90": q["p90"].to_numpy(),
            "snaive_daily": base["snaive_daily"][t_idx, s_idx],
            "snaive_weekly": base["snaive_weekly"][t_idx, s_idx],
            "issued_at": panel.index[t_idx - H],
            "model_trained_to": panel.index[int(o)],
            "method": q["method"].to_numpy(),
        })
        frames.append(fr)
    pred = pd.concat(frames, ignore_index=True).sort_values(["site_id", "ts"], ignore_index=True)
    mase_den = insample_naive_mae(panel, test_start)
    metrics = compute_metrics(pred, mase_den)
    metrics["setup"] = {
        "freq": panel.freq, "horizon_steps": H, "baseline_lags_steps": horizon_lags(H, panel.freq),
        "n_sites": len(panel.sites), "test_start": str(panel.index[test_start]),
        "test_end": str(panel.index[test_end]), "test_fraction": cfg.test_fraction,
        "refit_every_steps": R, "n_refits": int(len(origins)), "max_train_rows": cfg.max_rows,
        "half_life_days": cfg.half_life_days, "train_window_days": cfg.train_window_days,
        "window_candidates_days": ["all" if c is None else c for c in cfg.window_candidates],
        "train_window_chosen_per_refit": windows,
        "fallback": cfg.fallback, "calibrate": cfg.calibrate, "level": cfg.level,
        "served_per_refit": [c["served"] for c in checks],
        "refit_checks": checks,
        "features": asdict(cfg.features),
    }
    return pred, metrics


def rolling_calibrated(model, F: dict, panel: Panel, t_idx: np.ndarray, s_idx: np.ndarray, horizon: int,
                       residuals: dict) -> pd.DataFrame:
    """The served forecasts of the cells with the rolling per-site conformal band (:mod:`models.calibration`):
    scores from the refit's validation fortnight, then from the refit's own forecasts of these cells, each
    used only by forecasts issued (at ``t - horizon``) after the end of the day its actual fell in."""
    b = served_band(model, F, t_idx, s_idx)
    y = panel.y[t_idx, s_idx]
    lo, hi = conformity_scores(y, b["p10"], b["p90"], b["scale"], p50=b["p50"])
    known = np.isfinite(y)
    log_t = np.concatenate([residuals["t"], t_idx[known]])
    log_s = np.concatenate([residuals["s"], s_idx[known]])
    log_lo = np.concatenate([residuals["lo"], lo[known]])
    log_hi = np.concatenate([residuals["hi"], hi[known]])
    add_p10, add_p90 = adaptive_offsets(log_t, log_s, log_lo, log_hi, t_idx - horizon, s_idx, panel.spd,
                                        horizon=horizon, **horizon_settings(horizon, panel.spd))
    p10, p90 = apply_offsets(b["p10"], b["p50"], b["p90"], add_p10, add_p90, b["scale"])
    return pd.DataFrame({"p10": p10, "p50": b["p50"], "p90": p90, "method": b["method"]})


# --------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------
def insample_naive_mae(panel: Panel, test_start: int) -> dict:
    """MASE denominators: in-sample MAE of the one-week seasonal-naive before the test window (per site and
    pooled)."""
    w = 7 * panel.spd
    y = panel.y[:test_start]
    if len(y) <= w:
        return {"__all__": float("nan")}
    e = np.abs(y[w:] - y[:-w])
    out = {}
    with np.errstate(invalid="ignore"):
        for j, s in enumerate(panel.sites):
            col = e[:, j]
            out[s] = float(np.nanmean(col)) if np.isfinite(col).any() else float("nan")
        out["__all__"] = float(np.nanmean(e)) if np.isfinite(e).any() else float("nan")
    return out


def point_metrics(actual: np.ndarray, fc: np.ndarray) -> dict:
    a = np.asarray(actual, float)
    f = np.asarray(fc, float)
    e = f - a
    den = np.abs(a) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        sm = np.where(den > 0, 2 * np.abs(e) / np.where(den > 0, den, 1), 0.0)
    tot = np.abs(a).sum()
    return {
        "mae": float(np.mean(np.abs(e))),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "smape_pct": float(100 * np.mean(sm)),
        "wape_pct": float(100 * np.abs(e).sum() / tot) if tot > 0 else None,
        "bias_pct": float(100 * e.sum() / tot) if tot > 0 else None,
    }


def _metrics_block(df: pd.DataFrame, mase_den: float) -> dict:
    out = {}
    for m in MODELS:
        col = "p50" if m == "model" else m
        if df[col].isna().all():
            out[m] = None
            continue
        r = point_metrics(df["actual"].to_numpy(), df[col].to_numpy())
        r["mase"] = r["mae"] / mase_den if mase_den and np.isfinite(mase_den) and mase_den > 0 else None
        if m == "model":
            inside = (df["actual"] >= df["p10"]) & (df["actual"] <= df["p90"])
            r["coverage_p10_p90"] = float(inside.mean())
            r["below_p10"] = float((df["actual"] < df["p10"]).mean())
            r["above_p90"] = float((df["actual"] > df["p90"]).mean())
            # ties count: for an outcome with atoms (an exact 0 forecast as 0) a calibrated P10 has
            # below_p10 <= 0.10 <= at_or_below_p10 (and the P90 likewise), so the open cover is at most and
            # the closed cover at least 0.80; actual_eq_p50: cells no band containing the P50 can miss
            r["coverage_p10_p90_open"] = float(((df["actual"] > df["p10"]) & (df["actual"] < df["p90"])).mean())
            r["at_or_below_p10"] = float((df["actual"] <= df["p10"]).mean())
            r["at_or_above_p90"] = float((df["actual"] >= df["p90"]).mean())
            r["actual_eq_p50"] = float((df["actual"] == df["p50"]).mean())
        else:
            r["coverage_p10_p90"] = None
        out[m] = r
    for m in MODELS:
        for b in BASELINES:
            if out[m] is None:
                continue
            bm = out[b]["mae"] if out[b] is not None else None
            out[m][f"rel_mae_vs_{b}"] = out[m]["mae"] / bm if bm else None
    out["mae_zero_forecast"] = float(df["actual"].abs().mean())
    out["n"] = int(len(df))
    return out


def compute_metrics(pred: pd.DataFrame, mase_den: dict | None = None) -> dict:
    """Overall and per-site metrics on the rows where the actual and all forecasts are known.

    Per model: MAE, RMSE, sMAPE (%; 0 when actual and forecast are both 0), WAPE (%), bias (%), MASE (MAE over
    the in-sample MAE of the weekly seasonal-naive), MAE relative to each baseline on the same rows, and for
    the model the share of actuals inside [P10, P90] (nominal 80%), below the P10 and above the P90, and the
    same with ties at a bound counted as outside (open cover, at or below the P10, at or above the P90)."""
    mase_den = mase_den or {}
    # score every forecast on the same rows; a baseline with no value at all (series shorter than its
    # season) is left out of that requirement and reported on no rows
    base = [b for b in BASELINES if pred[b].notna().any()]
    cols = ["actual", "p50", "p10", "p90", *base]
    ok = pred[cols].notna().all(axis=1)
    df = pred[ok]
    res = {"overall": _metrics_block(df, mase_den.get("__all__", float("nan"))) if len(df) else {},
           "n_rows_total": int(len(pred)), "n_rows_scored": int(len(df)), "per_site": {}}
    for site, g in df.groupby("site_id", sort=True):
        res["per_site"][str(site)] = _metrics_block(g, mase_den.get(str(site), float("nan")))
    return res


# --------------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------------
def plot_backtest(pred: pd.DataFrame, metrics: dict, path, title: str = "", last_days: int = 14) -> None:
    """Two panels: total over sites for the last ``last_days`` of the test window (actual, P50, P10-P90 band,
    baselines), and overall MAE per model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tot = pred.groupby("ts")[["actual", "p50", "p10", "p90", *BASELINES]].sum(min_count=1)
    tot = tot[tot.index >= tot.index.max() - pd.Timedelta(days=last_days)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    a1.fill_between(tot.index, tot["p10"], tot["p90"], color="tab:blue", alpha=0.2,
                    label="P10-P90 (sum of site quantiles)")
    a1.plot(tot.index, tot["actual"], color="black", lw=1.2, label="actual")
    a1.plot(tot.index, tot["p50"], color="tab:blue", lw=1.2, label="model P50")
    a1.plot(tot.index, tot["snaive_daily"], color="tab:orange", lw=0.8, ls="--", label="seasonal-naive (day)")
    a1.plot(tot.index, tot["snaive_weekly"], color="tab:green", lw=0.8, ls=":", label="seasonal-naive (week)")
    a1.set_ylabel("energy, kWh per bin (all sites)")
    a1.legend(fontsize=8, loc="upper left")
    a1.set_title(title or "backtest: last days of the test window")
    ov = metrics.get("overall", {})
    names = [m for m in MODELS if ov.get(m)]
    a2.bar(names, [ov[m]["mae"] for m in names], color=["tab:blue", "tab:orange", "tab:green"][: len(names)])
    a2.set_title("MAE per site-bin (test window)")
    a2.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
