"""Global gradient-boosting quantile models (P10/P50/P90), one set per forecast horizon.

Each quantile is a scikit-learn ``Pipeline`` (column selection -> ``HistGradientBoostingRegressor`` with
``loss="quantile"``). P50 is the point forecast: the quantile-0.5 (absolute) loss is the one that minimises
MAE, which matters on intermittent charging series where the mean is a poor point forecast.

The target is the energy divided by the site's scale (see :mod:`models.features`), so one model serves sites
of any size, including sites it has never seen (their scale comes from their own short history, or a
default). Rows are not weighted (optional recency weights aside): see the note in :func:`fit_horizon_model`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .calibration import ALPHA_SIDE, apply_offsets, conformal_quantile, conformity_scores, offset_from_quantile
from .features import FeatureConfig, Panel, build_features, feature_names, gather, horizon_lags
from .level import PREFIX as LEVEL_PREFIX
from .level import VARIANTS as LEVEL_VARIANTS

QUANTILES = (0.1, 0.5, 0.9)
BASELINE_LAGS = {"snaive_daily": "daily", "snaive_weekly": "weekly"}   # served name -> horizon_lags key
# A baseline replaces the model only if its validation MAE is this much lower: two weeks of errors are noisy,
# and switching on a 2.6 % difference cost UrbanEV at 24 h (0.74 -> 0.78 of weekly; see docs/forecasting.md).
FALLBACK_MARGIN = 0.10
# P50 blend (see :func:`validate_refit`): the GBM P50 shrunk toward a same-hour average of the recent past,
# ``w * p50 + (1 - w) * reference``; the reference (a feature, in units of the scale) and the model weight are
# chosen on the validation fortnight before each refit.
BLEND_REFERENCES = ("sameh_mean", "daytype_mean", "samewh_mean")
BLEND_MODEL_WEIGHTS = (0.25, 0.5, 0.75)
# Daily level x hourly shape (models.level): served as it is (``level_shape``) or averaged with the GBM P50
# with equal weights (``gbm_level_mix``; a fixed weight, not fitted: two weeks are too few to fit one).
LEVEL_SERVED = ("level_shape", "gbm_level_mix")
LEVEL_MIX_WEIGHT = 0.5
# A level candidate replaces the GBM only if its validation MAE is this much lower (the safety net's rule).
# Measured on the third of each real series before its test window (docs/forecasting.md): serving any win
# (margin 0) switched on noise and lost on 2 of 4 series; 5 % and 10 % gave the same, never worse than no
# level candidates at all.
LEVEL_MARGIN = FALLBACK_MARGIN


def n_threads() -> int:
    """OpenMP threads for fitting (the ``forecast_threads`` setting)."""
    from jobs.platform.settings import get_settings

    return get_settings().forecast_threads

DEFAULT_PARAMS = dict(
    max_iter=200,
    learning_rate=0.05,
    max_leaf_nodes=15,        # small trees, large leaves: quantile models overfit fast on hourly noise
    min_samples_leaf=200,
    l2_regularization=5.0,
    max_bins=255,
    early_stopping=False,     # deterministic: same data -> same model (the leakage test relies on it)
    random_state=0,
)


class ColumnSelector(BaseEstimator, TransformerMixin):
    """Selects (and orders) the model's feature columns; passes float32 values on."""

    def __init__(self, columns=None):
        self.columns = columns

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X.loc[:, list(self.columns)].to_numpy(np.float32)


def make_pipeline(columns: list[str], quantile: float, params: dict | None = None) -> Pipeline:
    p = dict(DEFAULT_PARAMS)
    p.update(params or {})
    return Pipeline([
        ("select", ColumnSelector(columns)),
        ("gbm", HistGradientBoostingRegressor(loss="quantile", quantile=quantile, **p)),
    ])


@dataclass
class HorizonModel:
    """Quantile pipelines for one horizon (in steps) plus what is needed to apply them."""
    horizon: int
    columns: list[str]
    pipelines: dict[float, Pipeline]
    default_scale: float
    config: FeatureConfig
    n_train_rows: int = 0
    train_end: pd.Timestamp | None = None
    info: dict = field(default_factory=dict)
    # set by the refit check (:func:`validate_refit`): what is served and how its P10/P90 are shifted
    served: str = "model"                 # model | snaive_daily | snaive_weekly | level_shape | gbm_level_mix
    served_lag: int | None = None         # steps back of the served seasonal-naive value
    calibration: dict = field(default_factory=dict)   # {"p10": offset, "p90": offset} in units of the scale
    blend: dict = field(default_factory=dict)         # {"reference": feature, "model_weight": w}; {} = none
    level_variant: str | None = None      # models.level variant of level_shape / gbm_level_mix
    # validation-fortnight conformity scores (ts, site, lo, hi) that seed the rolling calibration at predict
    residuals: dict = field(default_factory=dict)

    def predict_frame(self, X: pd.DataFrame, scale: np.ndarray) -> pd.DataFrame:
        """The raw GBM quantiles (kWh), before any fallback or calibration."""
        s = np.where(np.isnan(scale), self.default_scale, scale)
        preds = np.column_stack([to_kwh(self.pipelines[q].predict(X), s) for q in QUANTILES])
        preds = np.sort(np.clip(preds, 0.0, None), axis=1)        # non-negative, non-crossing quantiles
        return pd.DataFrame(preds, columns=["p10", "p50", "p90"])


def training_rows(F: dict, panel: Panel, train_end: int, train_start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cells usable for training: known target at ``t <= train_end`` and some site history at ``t - H``."""
    y = panel.y
    ok = ~np.isnan(y) & ~np.isnan(F["_scale"])
    ok[train_end + 1:] = False
    ok[:train_start] = False
    return np.nonzero(ok)


# Width of the dither given to zero targets, in units of the site scale (see :func:`scaled_target`).
ZERO_DITHER = 1e-3


def tie_dither(t_idx: np.ndarray, s_idx: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random number in [-0.5, 0.5) per cell (Weyl sequence on the grid index): the same cell
    always gets the same number, whatever else is in the training set, so fits stay deterministic."""
    h = (np.asarray(t_idx, np.uint64) * np.uint64(2654435761) + np.asarray(s_idx, np.uint64) * np.uint64(40503))
    return (h & np.uint64(0xFFFFFFFF)).astype(np.float64) / 2.0**32 - 0.5


def scaled_target(y: np.ndarray, scale: np.ndarray, t_idx: np.ndarray, s_idx: np.ndarray) -> np.ndarray:
    """The training target ``y / scale``, with exact zeros spread over ``+-ZERO_DITHER / 2``.

    Why: where more than half the training targets are 0, HistGradientBoosting's quantile loss starts every
    quantile <= 0.5 at 0, and its pinball gradient treats ``y >= prediction`` as "above", so every row gets
    the same gradient: no split separates busy hours from empty ones, every leaf's median residual is 0 and
    the model never moves (the P50 stuck at 0 on the workplace and ACN site series). Dithered zeros straddle
    the prediction, so the empty hours pull down and the busy ones up. The dither is 0.1 % of the site's
    mean and is clipped away at prediction (quantiles are floored at 0)."""
    target = np.asarray(y, float) / scale
    return np.where(target == 0.0, ZERO_DITHER * tie_dither(t_idx, s_idx), target)


def to_kwh(pred_scaled: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A quantile of the scaled target -> kWh. Predictions inside the dither band (below ``ZERO_DITHER``
    scales) are 0: the model cannot tell them from a dithered zero, and a P10 of 0.0004 kWh would count every
    empty hour as "below P10"."""
    p = np.asarray(pred_scaled, float)
    return np.where(p < ZERO_DITHER, 0.0, p) * scale


def recency_weights(t_idx: np.ndarray, train_end: int, half_life_days: float, spd: int) -> np.ndarray:
    """Sample weight of a training cell at grid index ``t_idx``: 1 at ``train_end``, halving every
    ``half_life_days`` days before it (``0.5 ** (age_steps / (half_life_days * spd))``)."""
    return 0.5 ** ((train_end - np.asarray(t_idx)) / (float(half_life_days) * spd))


def _weight_kw(t_idx: np.ndarray, train_end: int, half_life_days: float | None, spd: int) -> dict:
    if not half_life_days:
        return {}
    return {"gbm__sample_weight": recency_weights(t_idx, train_end, half_life_days, spd)}


def fit_horizon_model(panel: Panel, horizon: int, cfg: FeatureConfig = FeatureConfig(), train_end: int | None = None,
                      F: dict | None = None, params: dict | None = None, max_rows: int = 60_000,
                      half_life_days: float | None = None, train_window_days: int | None = None,
                      seed: int = 0) -> HorizonModel:
    """Fit P10/P50/P90 pipelines on cells with target time ``<= train_end`` (grid index; default: last bin).

    ``max_rows`` caps the training rows (uniform random subsample, seeded) to keep fits fast on 2 cores;
    ``half_life_days`` optionally down-weights old rows (regime changes); ``train_window_days`` drops them.
    """
    if F is None:
        F = build_features(panel, horizon, cfg)
    if train_end is None:
        train_end = panel.last_obs if panel.last_obs >= 0 else panel.n_steps - 1
    start = 0 if train_window_days is None else max(0, train_end + 1 - train_window_days * panel.spd)
    t_idx, s_idx = training_rows(F, panel, train_end, start)
    if len(t_idx) == 0:
        raise ValueError("no training rows: series too short for this horizon")
    if len(t_idx) > max_rows:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(t_idx), max_rows, replace=False))
        t_idx, s_idx = t_idx[pick], s_idx[pick]
    X = gather(F, t_idx, s_idx)
    scale = F["_scale"][t_idx, s_idx]
    target = scaled_target(panel.y[t_idx, s_idx], scale, t_idx, s_idx)
    # No sample weights by default: the scale is a feature (log_scale), so the conditional quantile of y/scale
    # is the conditional quantile of y divided by the scale; weights would only change how errors are traded
    # between leaves, and they make HistGradientBoosting several times slower.
    fit_kw = _weight_kw(t_idx, train_end, half_life_days, panel.spd)
    # a feature with no value at all in the training rows (e.g. a 3-week lag on a 2-week history) is left out:
    # it carries no information and HistGradientBoosting cannot bin an all-NaN column
    cols = [c for c in feature_names(F) if X[c].notna().any()]
    pipes = {}
    with threadpool_limits(limits=n_threads(), user_api="openmp"):
        for q in QUANTILES:
            pipe = make_pipeline(cols, q, params)
            pipe.fit(X, target, **fit_kw)
            pipes[q] = pipe
    return HorizonModel(horizon=int(horizon), columns=cols, pipelines=pipes,
                        default_scale=float(np.nanmedian(scale)), config=cfg, n_train_rows=len(t_idx),
                        train_end=panel.index[train_end])


def level_p50(F: dict, variant: str | None, t_idx: np.ndarray, s_idx: np.ndarray) -> np.ndarray | None:
    """The daily level x hourly shape P50 (kWh) of a variant at the cells, or None if F does not hold it."""
    key = f"{LEVEL_PREFIX}{variant}"
    return F[key][t_idx, s_idx] if variant and key in F else None


def served_p50(served: str, gbm_p50: np.ndarray, level: np.ndarray) -> np.ndarray:
    """P50 of a level candidate; where the level is unknown (no complete reference day), the GBM's."""
    lv = np.where(np.isfinite(level), level, gbm_p50)
    return lv if served == "level_shape" else LEVEL_MIX_WEIGHT * gbm_p50 + (1 - LEVEL_MIX_WEIGHT) * lv


def served_band(model: HorizonModel, F: dict, t_idx: np.ndarray, s_idx: np.ndarray) -> dict:
    """The served forecast of the cells *before* interval calibration: ``p10, p50, p90`` (kWh), ``method``
    and ``scale`` (the site scale each row is calibrated in). P50 = the GBM's, the seasonal-naive value or
    the level x shape P50 (alone or mixed with the GBM's) the refit check chose (where it exists); the raw
    band is the GBM's P10/P90 for the GBM and the P50 itself (zero width) for a served baseline or level
    candidate, whose interval comes from the calibration of its own errors."""
    X = gather(F, t_idx, s_idx)
    scale = F["_scale"][t_idx, s_idx]
    with threadpool_limits(limits=n_threads(), user_api="openmp"):
        q = model.predict_frame(X, scale)
    s = np.where(np.isnan(scale), model.default_scale, scale)
    p10, p50, p90 = (q[c].to_numpy() for c in ("p10", "p50", "p90"))
    served = getattr(model, "served", "model")            # models pickled before the refit check existed
    method = np.full(len(q), "gbm_quantile", dtype=object)
    blend = getattr(model, "blend", None) or {}
    if served == "model" and blend.get("reference") in F:
        ref = F[blend["reference"]][t_idx, s_idx] * scale                  # profile features are scaled
        ok = np.isfinite(ref)
        w = float(blend["model_weight"])
        p50 = np.where(ok, w * p50 + (1 - w) * ref, p50)
        method[ok] = "gbm_blend"
    level = level_p50(F, getattr(model, "level_variant", None), t_idx, s_idx) if served in LEVEL_SERVED else None
    if level is not None:
        p50 = served_p50(served, p50, level)
        p10, p90 = p50, p50
        method[:] = served
    elif served in BASELINE_LAGS and f"lag_{model.served_lag}" in F:
        base = F[f"lag_{model.served_lag}"][t_idx, s_idx] * scale          # lag features are scaled
        ok = np.isfinite(base)
        p50, p10, p90 = (np.where(ok, base, v) for v in (p50, p10, p90))
        method[ok] = served
    return {"p10": p10, "p50": np.clip(p50, 0.0, None), "p90": p90, "method": method, "scale": s}


def predict_cells(model: HorizonModel, F: dict, t_idx: np.ndarray, s_idx: np.ndarray,
                  offsets: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """P10/P50/P90 (kWh) of the cells, as served (:func:`served_band`), with the interval calibration:
    ``offsets = (add_p10, add_p90)`` per cell in units of the site scale (the rolling per-site conformal
    offsets of :mod:`models.calibration`), or by default the model's fixed offsets ``model.calibration``
    (pooled over sites on the validation fortnight). Column ``method`` names what each row's P50 is
    (``gbm_quantile``, the baseline's name, ``level_shape`` or ``gbm_level_mix``)."""
    b = served_band(model, F, t_idx, s_idx)
    if offsets is None:
        cal = getattr(model, "calibration", None) or {}
        offsets = (cal.get("p10", 0.0), cal.get("p90", 0.0))
    p10, p90 = apply_offsets(b["p10"], b["p50"], b["p90"], offsets[0], offsets[1], b["scale"])
    return pd.DataFrame({"p10": p10, "p50": b["p50"], "p90": p90, "method": b["method"]})


@dataclass
class RefitCheck:
    """What the validation window before a refit decided (see :func:`validate_refit`)."""
    window: int | None = None             # training window in days (None = all history)
    window_scores: dict = field(default_factory=dict)
    served: str = "model"                 # model | snaive_daily | snaive_weekly | level_shape | gbm_level_mix
    served_lag: int | None = None
    level_variant: str | None = None      # best models.level variant on the validation cells
    val_mae: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    blend: dict = field(default_factory=dict)
    n_val: int = 0
    # out-of-sample conformity scores of what is served on the validation cells (models.calibration):
    # grid indices t/s, timestamps ts, site names site, scores lo/hi in units of the site scale
    residuals: dict = field(default_factory=dict)

    def apply(self, model: HorizonModel) -> HorizonModel:
        model.served, model.served_lag, model.calibration = self.served, self.served_lag, dict(self.calibration)
        model.residuals = {k: self.residuals[k] for k in ("ts", "site", "lo", "hi") if k in self.residuals}
        model.blend = dict(self.blend)
        model.level_variant = self.level_variant if self.served in LEVEL_SERVED else None
        model.info.update({"served": self.served, "val_mae": self.val_mae, "calibration": self.calibration,
                           "blend": self.blend, "n_val_cells": self.n_val, "level_variant": self.level_variant})
        return model


def validate_refit(panel: Panel, horizon: int, cfg: FeatureConfig, train_end: int, F: dict,
                   candidates=(None, 120), val_days: int = 14, params: dict | None = None,
                   max_rows: int = 60_000, seed: int = 0, fallback: bool = True,
                   calibrate: bool = True, half_life_days: float | None = None,
                   blend: bool = False, level: bool = True) -> RefitCheck:
    """Decide, on the ``val_days`` before ``train_end`` (models fitted on the data before them), what the
    refit at ``train_end`` serves:

    1. the training window: lowest P50 MAE among ``candidates`` (``None`` = all history, N = last N days);
    2. *safety net* (``fallback``): if a seasonal-naive baseline had an MAE at least ``FALLBACK_MARGIN``
       (10 %) lower than that P50 on the same cells, serve the baseline instead of the model (a regime
       change the model cannot follow, a growing programme whose P50 is stuck at zero, ...);
    3. *interval calibration* (``calibrate``): the conformity scores of what is served on the validation
       cells (:mod:`models.calibration`: ``(p10 - y) / scale`` and ``(y - p90) / scale``; a served baseline
       or level candidate ``b`` has the zero-width raw band ``[b, b]``) are kept in ``residuals``: they seed
       the rolling per-site conformal calibration; ``calibration`` holds the offsets pooled over all sites
       (``p10 -= Q_0.9(lo) * scale``, ``p90 += Q_0.9(hi) * scale``), used where no rolling offsets are given.

    Before the safety net, *level x shape* (``level``, when ``F`` holds :mod:`models.level`'s forecasts): the
    variant with the lowest MAE on the validation cells is scored alone (``level_shape``) and as the
    equal-weight mix with the GBM's P50 (``gbm_level_mix``); the better of these two is served if its MAE
    there was at least ``LEVEL_MARGIN`` (10 %) lower than the GBM's. A baseline is then served only if it
    also beat the GBM's P50 by ``FALLBACK_MARGIN`` and is no worse than that choice.

    Only data up to ``train_end`` is used. With less than three weeks of history nothing is validated: the
    first candidate window, the model, uncalibrated.
    """
    cands = list(dict.fromkeys(candidates)) or [None]
    default = RefitCheck(window=cands[0])
    v_end = train_end - val_days * panel.spd
    if v_end <= int(panel.first.min()) + 7 * panel.spd:
        return default
    tv, sv = training_rows(F, panel, train_end, v_end + 1)
    if len(tv) == 0:
        return default
    Xv = gather(F, tv, sv)
    yv = panel.y[tv, sv]
    sc = F["_scale"][tv, sv]
    fits, scores = {}, {}
    for c in cands:
        if len(cands) == 1 and not (fallback or calibrate or level):
            break
        start = 0 if c is None else max(0, v_end + 1 - c * panel.spd)
        t_idx, s_idx = training_rows(F, panel, v_end, start)
        if len(t_idx) < 200:
            continue
        if len(t_idx) > max_rows:
            pick = np.sort(np.random.default_rng(seed).choice(len(t_idx), max_rows, replace=False))
            t_idx, s_idx = t_idx[pick], s_idx[pick]
        X = gather(F, t_idx, s_idx)
        cols = [k for k in feature_names(F) if X[k].notna().any()]
        target = scaled_target(panel.y[t_idx, s_idx], F["_scale"][t_idx, s_idx], t_idx, s_idx)
        wkw = _weight_kw(t_idx, v_end, half_life_days, panel.spd)
        with threadpool_limits(limits=n_threads(), user_api="openmp"):
            pipe = make_pipeline(cols, 0.5, params).fit(X, target, **wkw)
            p50 = to_kwh(pipe.predict(Xv), sc)
        key = "all" if c is None else str(c)
        scores[key] = float(np.mean(np.abs(p50 - yv)))
        fits[key] = (X, target, cols, p50, wkw)
    if not scores:
        return default
    best = min(scores, key=scores.get)
    check = RefitCheck(window=None if best == "all" else int(best), window_scores=scores, n_val=len(tv))
    if not (fallback or calibrate or level):
        return check
    X, target, cols, p50, wkw = fits[best]
    with threadpool_limits(limits=n_threads(), user_api="openmp"):
        p10 = to_kwh(make_pipeline(cols, 0.1, params).fit(X, target, **wkw).predict(Xv), sc)
        p90 = to_kwh(make_pipeline(cols, 0.9, params).fit(X, target, **wkw).predict(Xv), sc)
    p10, p50, p90 = np.sort(np.column_stack([p10, p50, p90]), axis=1).T
    lags = horizon_lags(horizon, panel.freq)
    forecasts = {"model": p50}
    for name, which in BASELINE_LAGS.items():
        key = f"lag_{lags[which]}"
        if key in F:
            b = F[key][tv, sv] * sc
            if np.isfinite(b).any():
                forecasts[name] = b
    ok = np.all([np.isfinite(f) for f in forecasts.values()], axis=0) & np.isfinite(yv)
    if ok.sum() < panel.spd:                 # less than a day's worth of comparable cells: keep the model
        return check
    check.val_mae = {m: float(np.mean(np.abs(f[ok] - yv[ok]))) for m, f in forecasts.items()}
    if blend:
        best_mae, best_p50 = check.val_mae["model"], None
        for ref_name in (r for r in BLEND_REFERENCES if r in F):
            ref = F[ref_name][tv, sv] * sc
            ref = np.where(np.isfinite(ref), ref, p50)
            for w in BLEND_MODEL_WEIGHTS:
                cand = w * p50 + (1 - w) * ref
                mae = float(np.mean(np.abs(cand[ok] - yv[ok])))
                if mae < best_mae:
                    best_mae, best_p50 = mae, cand
                    check.blend = {"reference": ref_name, "model_weight": w}
        if best_p50 is not None:
            # what the baselines must now beat is the blended P50
            check.val_mae["model_gbm_only"] = check.val_mae["model"]
            check.val_mae["model"] = best_mae
            forecasts["model"] = best_p50
    if level and any(f"{LEVEL_PREFIX}{v}" in F for v in LEVEL_VARIANTS):
        choose_level(check, forecasts, F, tv, sv, p50, yv, ok)
    if fallback:
        best_b = min((m for m in check.val_mae if m in BASELINE_LAGS), key=check.val_mae.get, default=None)
        # "no worse than" up to rounding: a lag feature is stored divided by the scale and multiplied back
        tie = 1e-9 * float(np.mean(sc[ok]))
        if (best_b is not None and check.val_mae[best_b] < (1 - FALLBACK_MARGIN) * check.val_mae["model"]
                and check.val_mae[best_b] <= check.val_mae[check.served] + tie):
            check.served, check.served_lag = best_b, int(lags[BASELINE_LAGS[best_b]])
    if calibrate:
        y, s_ = yv[ok], sc[ok]
        f = forecasts[check.served][ok]           # the served P50: no bound is moved across it
        if check.served == "model":
            lo, hi = conformity_scores(y, p10[ok], p90[ok], s_, p50=f)
        else:                                   # a served P50 without a band of its own: zero raw width
            lo, hi = conformity_scores(y, f, f, s_, p50=f)
        level = 1 - ALPHA_SIDE
        check.calibration = {"p10": -offset_from_quantile(conformal_quantile(lo, level)),
                             "p90": offset_from_quantile(conformal_quantile(hi, level))}
        check.residuals = {"t": tv[ok], "s": sv[ok], "ts": np.asarray(panel.index[tv[ok]]),
                           "site": np.asarray(panel.sites, dtype=object)[sv[ok]], "lo": lo, "hi": hi}
    return check


def choose_level(check: RefitCheck, forecasts: dict, F: dict, t_idx: np.ndarray, s_idx: np.ndarray,
                 gbm_p50: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
    """Score the level x shape variants on the validation cells ``ok``; add the best one alone and mixed
    with the GBM's P50 to ``forecasts`` and ``check.val_mae``; serve the better of ``level_shape`` and
    ``gbm_level_mix`` if its MAE is ``LEVEL_MARGIN`` below the GBM's (as blended, if a blend was chosen)."""
    scores = {}
    for v in LEVEL_VARIANTS:
        lv = level_p50(F, v, t_idx, s_idx)
        if lv is not None and np.isfinite(lv[ok]).any():
            scores[v] = float(np.mean(np.abs(served_p50("level_shape", gbm_p50, lv)[ok] - y[ok])))
    if not scores:
        return
    check.level_variant = min(scores, key=scores.get)
    check.val_mae.update({f"level_shape:{v}": m for v, m in scores.items()})
    lv = level_p50(F, check.level_variant, t_idx, s_idx)
    for name in LEVEL_SERVED:
        forecasts[name] = served_p50(name, gbm_p50, lv)
        check.val_mae[name] = float(np.mean(np.abs(forecasts[name][ok] - y[ok])))
    best = min(("model",) + LEVEL_SERVED, key=check.val_mae.get)
    if check.val_mae[best] < (1 - LEVEL_MARGIN) * check.val_mae["model"]:
        check.served = best
