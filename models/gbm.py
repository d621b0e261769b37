"""Global gradient-boosting quantile models (P10/P50/P90), one set per forecast horizon.

Each quantile is a scikit-learn ``Pipeline`` (column selection -> ``HistGradientBoostingRegressor`` with
``loss="quantile"``). P50 is the point forecast: the quantile-0.5 (absolute) loss is the one that minimises
MAE, which matters on intermittent charging series where the mean is a poor point forecast.

The target is the energy divided by the site's scale (see :mod:`models.features`), so one model serves sites
of any size, including sites it has never seen (their scale comes from their own short history, or a
default). Rows are not weighted (optional recency weights aside): see the note in :func:`fit_horizon_model`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from .features import FeatureConfig, Panel, build_features, feature_names, gather

QUANTILES = (0.1, 0.5, 0.9)


def n_threads() -> int:
    """OpenMP threads for fitting (env ``COALCHAIN_FORECAST_THREADS``, default 1). On a shared 2-core machine
    one thread is faster and far steadier than two: OpenMP's spin-waiting collapses under CPU contention."""
    return max(1, int(os.environ.get("COALCHAIN_FORECAST_THREADS", "1")))

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

    def predict_frame(self, X: pd.DataFrame, scale: np.ndarray) -> pd.DataFrame:
        s = np.where(np.isnan(scale), self.default_scale, scale)
        preds = np.column_stack([self.pipelines[q].predict(X) * s for q in QUANTILES])
        preds = np.sort(np.clip(preds, 0.0, None), axis=1)        # non-negative, non-crossing quantiles
        return pd.DataFrame(preds, columns=["p10", "p50", "p90"])


def training_rows(F: dict, panel: Panel, train_end: int, train_start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cells usable for training: known target at ``t <= train_end`` and some site history at ``t - H``."""
    y = panel.y
    ok = ~np.isnan(y) & ~np.isnan(F["_scale"])
    ok[train_end + 1:] = False
    ok[:train_start] = False
    return np.nonzero(ok)


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
    target = panel.y[t_idx, s_idx] / scale
    # No sample weights by default: the scale is a feature (log_scale), so the conditional quantile of y/scale
    # is the conditional quantile of y divided by the scale; weights would only change how errors are traded
    # between leaves, and they make HistGradientBoosting several times slower.
    fit_kw = {}
    if half_life_days:
        age_steps = train_end - t_idx
        fit_kw["gbm__sample_weight"] = 0.5 ** (age_steps / (half_life_days * panel.spd))
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


def predict_cells(model: HorizonModel, F: dict, t_idx: np.ndarray, s_idx: np.ndarray) -> pd.DataFrame:
    X = gather(F, t_idx, s_idx)
    with threadpool_limits(limits=n_threads(), user_api="openmp"):
        return model.predict_frame(X, F["_scale"][t_idx, s_idx])


def select_train_window(panel: Panel, horizon: int, cfg: FeatureConfig, train_end: int, F: dict,
                        candidates=(None, 120), val_days: int = 14, params: dict | None = None,
                        max_rows: int = 60_000, seed: int = 0) -> tuple[int | None, dict]:
    """Pick the training window (``None`` = all history, or a number of recent days) whose P50 model has the
    lowest MAE on the last ``val_days`` before ``train_end`` when fitted on the data before them.

    This is how the model copes with regime changes (e.g. a campus emptied by COVID-19, a new fleet): when the
    recent past no longer looks like the old one, the short window wins. Only data up to ``train_end`` is used.
    """
    cands = list(dict.fromkeys(candidates))
    if len(cands) < 2:
        return cands[0] if cands else None, {}
    v_end = train_end - val_days * panel.spd
    if v_end <= int(panel.first.min()) + 7 * panel.spd:
        return cands[0], {}
    tv, sv = training_rows(F, panel, train_end, v_end + 1)
    if len(tv) == 0:
        return cands[0], {}
    Xv = gather(F, tv, sv)
    yv = panel.y[tv, sv]
    scores = {}
    for c in cands:
        start = 0 if c is None else max(0, v_end + 1 - c * panel.spd)
        t_idx, s_idx = training_rows(F, panel, v_end, start)
        if len(t_idx) < 200:
            continue
        if len(t_idx) > max_rows:
            pick = np.sort(np.random.default_rng(seed).choice(len(t_idx), max_rows, replace=False))
            t_idx, s_idx = t_idx[pick], s_idx[pick]
        X = gather(F, t_idx, s_idx)
        cols = [k for k in feature_names(F) if X[k].notna().any()]
        with threadpool_limits(limits=n_threads(), user_api="openmp"):
            pipe = make_pipeline(cols, 0.5, params).fit(X, panel.y[t_idx, s_idx] / F["_scale"][t_idx, s_idx])
            sc = F["_scale"][tv, sv]
            pv = np.clip(pipe.predict(Xv) * np.where(np.isnan(sc), np.nanmedian(sc), sc), 0, None)
        scores["all" if c is None else str(c)] = float(np.mean(np.abs(pv - yv)))
    if not scores:
        return cands[0], {}
    best = min(scores, key=scores.get)
    return (None if best == "all" else int(best)), scores
