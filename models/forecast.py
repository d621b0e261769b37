"""Charging-demand forecaster: Python API for the DAG and a command line.

Python API (what the Airflow task calls)::

    from models.forecast import train, predict, backtest
    from models.registry import save_bundle, load_bundle

    bundle = train(df, freq="h", horizons=(1, 24, 168), holidays="cn", data_version="silver@v42")
    path = save_bundle(bundle, "/lake/models/charging_forecast", metrics=metrics)
    fc = predict(load_bundle(path), history_df, start="2026-11-04 00:00", horizon=168)

``df`` / ``history_df``: either a series ``site_id, ts, energy_kwh`` (hourly or finer; summed into bins) or
sessions ``site_id, start_ts, end_ts, energy_kwh`` (spread over the hours they span); optional exogenous
columns known in advance (``planned_tonnes``, ``trucks_in_service``, ...) are used as features.

Command line::

    python -m models.forecast backtest --input FILE --freq H --horizon 24 --out DIR
    python -m models.forecast train    --input FILE --freq H --horizons 1,24,168 --registry DIR
    python -m models.forecast predict  --model DIR --input FILE --horizon 24 [--start TS] --out FILE.csv

Horizon semantics: a forecast ``horizon`` steps ahead uses data up to ``t - horizon`` only. ``train`` fits one
set of P10/P50/P90 models per horizon in ``horizons``; ``predict`` serves lead ``k`` with the model of the
smallest trained horizon ``>= k`` (direct multi-horizon forecasting, no recursion).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .backtest import BacktestConfig, plot_backtest, run_backtest
# Pickled bundles name models.forecast.ForecastBundle: the name stays importable from here.
from .bundle import MODEL_CODE_VERSION, MODEL_NAME, ForecastBundle  # noqa: F401
from .features import (KNOWN_EXOG, FeatureConfig, build_features, normalize_freq, read_input, steps_per_day,
                       to_panel)
from .calibration import WINDOW_DAYS, adaptive_offsets, apply_offsets, conformity_scores, horizon_settings
from .gbm import HorizonModel, fit_horizon_model, predict_cells, served_band, validate_refit
from .registry import load_bundle, save_bundle


def _exog_for(df: pd.DataFrame, exog: tuple[str, ...] | None) -> tuple[str, ...]:
    if exog is not None:
        return tuple(exog)
    return tuple(c for c in KNOWN_EXOG if c in df.columns)


def train(df: pd.DataFrame, freq: str = "h", horizons=(1, 24, 168), holidays: str = "cn",
          exog: tuple[str, ...] | None = None, gaps: str = "zero", data_version: str | None = None,
          train_end=None, max_rows: int = 60_000, params: dict | None = None,
          half_life_days: float | None = None, window_candidates=(None, 120), fallback: bool = True,
          calibrate: bool = True, level: bool = True) -> ForecastBundle:
    """Fit the global quantile models for each horizon on data up to ``train_end`` (default: all).

    For each horizon the last two weeks decide (see :func:`models.gbm.validate_refit`) the training window
    (all history or the last 120 days, by the P50's MAE), whether a seasonal-naive baseline that beat the
    model there is served instead (``fallback``), whether the daily level x hourly shape forecast, alone or
    mixed with the GBM's P50, is served (``level``), and offsets that calibrate P10/P90 (``calibrate``)."""
    f = normalize_freq(freq)
    ex = _exog_for(df, exog)
    series = read_input(df, f, exog=ex)
    if train_end is not None:
        series = series[series["ts"] <= pd.Timestamp(train_end)]
    panel = to_panel(series, f, gaps=gaps)
    cfg = FeatureConfig(holidays=holidays, exog=ex, level_shape=level)
    models = {}
    for h in sorted({int(h) for h in horizons}):
        F = build_features(panel, h, cfg)
        end = panel.last_obs
        check = validate_refit(panel, h, cfg, end, F, window_candidates, params=params, max_rows=max_rows,
                               fallback=fallback, calibrate=calibrate, level=level)
        models[h] = fit_horizon_model(panel, h, cfg, train_end=end, F=F, max_rows=max_rows, params=params,
                                      half_life_days=half_life_days, train_window_days=check.window)
        check.apply(models[h])
        models[h].info.update({"train_window_days": check.window, "window_scores_mae": check.window_scores})
    return ForecastBundle(
        freq=f, horizons=tuple(sorted(models)), models=models, config=cfg, gaps=gaps, sites=list(panel.sites),
        train_start=str(panel.index[int(panel.first.min())]), train_end=str(panel.index[panel.last_obs]),
        data_version=data_version, created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def predict(bundle: ForecastBundle, history_df: pd.DataFrame, start=None, horizon: int | None = None,
            future_exog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Forecast ``horizon`` bins from ``start`` (default: the bin after the last one in ``history_df``).

    History at or after ``start`` is ignored. Sites in ``future_exog`` but not in the history (new stations)
    get a forecast from the global model with a default scale. Returns ``site_id, ts, lead, model_horizon,
    issued_at, p10, p50, p90`` (kWh per bin) and ``method`` (``gbm_quantile``, or the seasonal-naive baseline
    the refit check chose to serve for that horizon).
    """
    f = bundle.freq
    step = pd.Timedelta(hours=1) if f == "h" else pd.Timedelta(days=1)
    horizon = int(horizon or (24 if f == "h" else 7))
    if horizon > max(bundle.horizons):
        raise ValueError(f"horizon {horizon} exceeds the largest trained horizon {max(bundle.horizons)}")
    series = read_input(history_df, f, exog=bundle.config.exog)
    if start is None:
        start = series["ts"].max() + step
    start = pd.Timestamp(start).floor("h" if f == "h" else "D")
    series = series[series["ts"] < start]
    if series.empty:
        raise ValueError("no history before start")
    end = start + (horizon - 1) * step
    sites = sorted(set(series["site_id"]))
    if future_exog is not None and len(future_exog):
        fx = future_exog.copy()
        fx["site_id"] = fx["site_id"].astype(str)
        fx["ts"] = pd.to_datetime(fx["ts"]).dt.floor("h" if f == "h" else "D")
        fx["energy_kwh"] = np.nan
        cols = ["site_id", "ts", "energy_kwh"] + [c for c in bundle.config.exog if c in fx.columns]
        series = pd.concat([series, fx[cols]], ignore_index=True)
        sites = sorted(set(sites) | set(fx["site_id"]))
    panel = to_panel(series, f, gaps=bundle.gaps, end=end, sites=sites)
    last = int(np.searchsorted(panel.index, start)) - 1       # issue time: last bin before start
    t_all = last + np.arange(1, horizon + 1)
    frames = []
    prev = 0
    for h in bundle.horizons:
        leads = np.arange(prev + 1, min(h, horizon) + 1)
        prev = h
        if len(leads) == 0:
            continue
        F = build_features(panel, h, bundle.config)
        t_idx = np.repeat(last + leads, len(sites))
        s_idx = np.tile(np.arange(len(sites)), len(leads))
        q = calibrated_cells(bundle.models[h], F, panel, h, last, t_idx, s_idx)
        frames.append(pd.DataFrame({
            "site_id": np.asarray(sites, dtype=object)[s_idx], "ts": panel.index[t_idx],
            "lead": t_idx - last, "model_horizon": h, "issued_at": panel.index[last],
            "p10": q["p10"].to_numpy(), "p50": q["p50"].to_numpy(), "p90": q["p90"].to_numpy(),
            "method": q["method"].to_numpy(),
        }))
        if h >= horizon:
            break
    out = pd.concat(frames, ignore_index=True).sort_values(["site_id", "ts"], ignore_index=True)
    assert len(out) == len(sites) * len(t_all)
    return out


def calibrated_cells(model, F: dict, panel, horizon: int, last: int, t_idx: np.ndarray,
                     s_idx: np.ndarray) -> pd.DataFrame:
    """Served forecasts of the cells ``(t_idx, s_idx)`` issued at grid index ``last``, with the rolling
    per-site conformal band (:mod:`models.calibration`): its scores are the model's validation-fortnight
    scores and those of its own forecasts of the known history after its training end (out of sample: the
    model never saw those targets), in the window before ``last``. A model without stored scores (pickled
    before they existed, or trained without calibration) gets its fixed offsets (:func:`predict_cells`)."""
    res = getattr(model, "residuals", None) or {}
    if len(res.get("lo", ())) == 0:
        return predict_cells(model, F, t_idx, s_idx)
    ti = panel.index.get_indexer(pd.DatetimeIndex(res["ts"]))
    si = pd.Index(panel.sites).get_indexer(pd.Index(res["site"], dtype=object))
    keep = (ti >= 0) & (si >= 0) & (ti <= last)
    log = [ti[keep], si[keep], np.asarray(res["lo"])[keep], np.asarray(res["hi"])[keep]]
    trained_to = int(np.searchsorted(panel.index, pd.Timestamp(model.train_end), side="right")) - 1
    # all of it, not only the window: the adaptive level replays every forecast since the training end
    first = max(trained_to + 1, horizon)
    if first <= last:
        hist_t, hist_s = np.nonzero(np.isfinite(panel.y[first:last + 1]))
        hist_t = hist_t + first
        if len(hist_t):
            b = served_band(model, F, hist_t, hist_s)
            lo, hi = conformity_scores(panel.y[hist_t, hist_s], b["p10"], b["p90"], b["scale"], p50=b["p50"])
            log = [np.concatenate([a, v]) for a, v in zip(log, (hist_t, hist_s, lo, hi))]
    add_p10, add_p90 = adaptive_offsets(*log, np.full(len(t_idx), last), s_idx, panel.spd, horizon=horizon,
                                        **horizon_settings(horizon, panel.spd))
    b = served_band(model, F, t_idx, s_idx)
    p10, p90 = apply_offsets(b["p10"], b["p50"], b["p90"], add_p10, add_p90, b["scale"])
    return pd.DataFrame({"p10": p10, "p50": b["p50"], "p90": p90, "method": b["method"]})


def backtest(df: pd.DataFrame, freq: str = "h", horizon: int = 24, test_fraction: float = 1 / 3,
             holidays: str = "cn", exog: tuple[str, ...] | None = None, gaps: str = "zero",
             refit_every: int | None = None, max_refits: int = 4, max_rows: int = 60_000,
             params: dict | None = None, half_life_days: float | None = None, fallback: bool = True,
             calibrate: bool = True, level: bool = True) -> tuple[pd.DataFrame, dict]:
    """Rolling-origin backtest (see :mod:`models.backtest`); returns ``(predictions, metrics)``."""
    f = normalize_freq(freq)
    ex = _exog_for(df, exog)
    panel = to_panel(read_input(df, f, exog=ex), f, gaps=gaps)
    cfg = BacktestConfig(horizon=int(horizon), test_fraction=test_fraction, refit_every=refit_every,
                         max_refits=max_refits, features=FeatureConfig(holidays=holidays, exog=ex, level_shape=level),
                         params=params, max_rows=max_rows, half_life_days=half_life_days, fallback=fallback,
                         calibrate=calibrate, level=level)
    return run_backtest(panel, cfg)


def write_backtest(pred: pd.DataFrame, metrics: dict, out_dir, title: str = "") -> dict[str, Path]:
    """Write ``predictions.csv``, ``metrics.json`` and ``backtest.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = ["site_id", "ts", "actual", "p50", "p10", "p90", "snaive_daily", "snaive_weekly", "issued_at",
            "model_trained_to"]
    paths = {"predictions": out / "predictions.csv", "metrics": out / "metrics.json", "plot": out / "backtest.png"}
    pred[cols].to_csv(paths["predictions"], index=False, float_format="%.4f")
    paths["metrics"].write_text(json.dumps(metrics, indent=2, default=str))
    plot_backtest(pred, metrics, paths["plot"], title=title)
    return paths


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--input", required=True, help="CSV: site_id,ts,energy_kwh or site_id,start_ts,end_ts,energy_kwh")
    ap.add_argument("--freq", default="H", help="H (hourly) or D (daily)")
    ap.add_argument("--holidays", default="cn", choices=["cn", "none"],
                    help="calendar features: Chinese holidays/make-up days (cn) or weekends only (none)")
    ap.add_argument("--gaps", default="zero", choices=["zero", "nan"],
                    help="a missing row after a site's first one means zero demand (zero) or unknown (nan)")
    ap.add_argument("--exog", default=None, help="comma-separated exogenous columns (default: known names present)")
    ap.add_argument("--max-train-rows", type=int, default=60_000)


def _exog_arg(s: str | None):
    return None if s is None else tuple(c for c in s.split(",") if c)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.forecast", description="Charging-demand forecaster")
    sub = ap.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("backtest", help="rolling-origin backtest vs seasonal-naive baselines")
    _common(b)
    b.add_argument("--horizon", type=int, required=True, help="steps ahead (hours for H, days for D)")
    b.add_argument("--out", required=True)
    b.add_argument("--test-fraction", type=float, default=1 / 3)
    b.add_argument("--refit-every", type=int, default=None, help="steps between refits (default: test/max-refits)")
    b.add_argument("--max-refits", type=int, default=4)
    b.add_argument("--title", default="")
    b.add_argument("--no-fallback", action="store_true", help="never serve a seasonal-naive baseline")
    b.add_argument("--no-calibration", action="store_true", help="raw GBM P10/P90 (no calibration offsets)")
    b.add_argument("--no-level", action="store_true", help="never serve the daily level x hourly shape forecast")

    t = sub.add_parser("train", help="fit models for several horizons and save them to a registry")
    _common(t)
    t.add_argument("--horizons", default="1,24,168", help="comma-separated steps")
    t.add_argument("--registry", required=True, help="registry root folder")
    t.add_argument("--data-version", default=None)
    t.add_argument("--train-end", default=None)

    p = sub.add_parser("predict", help="forecast from a saved model")
    p.add_argument("--model", required=True, help="model version folder or registry root (latest)")
    p.add_argument("--input", required=True, help="history CSV (same formats as for training)")
    p.add_argument("--horizon", type=int, default=None)
    p.add_argument("--start", default=None)
    p.add_argument("--future-exog", default=None, help="CSV site_id,ts,<exog columns> for the forecast window")
    p.add_argument("--out", required=True)

    a = ap.parse_args(argv)
    if a.cmd == "backtest":
        t0 = time.time()
        df = pd.read_csv(a.input)
        pred, metrics = backtest(df, a.freq, a.horizon, a.test_fraction, a.holidays, _exog_arg(a.exog), a.gaps,
                                 a.refit_every, a.max_refits, a.max_train_rows, fallback=not a.no_fallback,
                                 calibrate=not a.no_calibration, level=not a.no_level)
        metrics["setup"]["input"] = str(a.input)
        metrics["setup"]["runtime_s"] = round(time.time() - t0, 1)
        paths = write_backtest(pred, metrics, a.out, a.title or f"{Path(a.input).name}, horizon {a.horizon}")
        ov = metrics["overall"]
        print(f"{'model':15s} {'MAE':>10s} {'RMSE':>10s} {'sMAPE%':>8s} {'relMAE_wk':>9s} {'cover':>6s}")
        for m in ("model", "snaive_daily", "snaive_weekly"):
            r = ov.get(m)
            if r is None:
                print(f"{m:15s} (no forecast: series shorter than the baseline's season)")
                continue
            cov = "" if r["coverage_p10_p90"] is None else f"{r['coverage_p10_p90']:.2f}"
            print(f"{m:15s} {r['mae']:10.4f} {r['rmse']:10.4f} {r['smape_pct']:8.1f} "
                  f"{(r.get('rel_mae_vs_snaive_weekly') or float('nan')):9.3f} {cov:>6s}")
        print("wrote", ", ".join(str(p) for p in paths.values()))
    elif a.cmd == "train":
        df = pd.read_csv(a.input)
        hs = tuple(int(h) for h in a.horizons.split(","))
        bundle = train(df, a.freq, hs, a.holidays, _exog_arg(a.exog), a.gaps, a.data_version, a.train_end,
                       a.max_train_rows)
        path = save_bundle(bundle, a.registry)
        print(f"saved {bundle.model_version} -> {path}")
    elif a.cmd == "predict":
        bundle = load_bundle(a.model)
        df = pd.read_csv(a.input)
        fx = pd.read_csv(a.future_exog) if a.future_exog else None
        out = predict(bundle, df, a.start, a.horizon, fx)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(a.out, index=False, float_format="%.4f")
        print(f"wrote {len(out)} rows -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
