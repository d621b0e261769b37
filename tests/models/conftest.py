"""Small synthetic series shared by the forecasting tests (no Spark, no real data)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

FAST = dict(max_iter=30, learning_rate=0.2, max_leaf_nodes=15, min_samples_leaf=20)


def make_series(n_days: int = 42, sites=("A", "B"), seed: int = 0, start: str = "2023-01-02") -> pd.DataFrame:
    """Hourly workplace-like demand: weekday daytime peak, weekend low, noise, some exact zeros."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=24 * n_days, freq="h")
    rows = []
    for j, s in enumerate(sites):
        base = 5.0 * (j + 1)
        day = ((idx.hour >= 8) & (idx.hour < 18)).astype(float)
        wk = (idx.dayofweek < 5).astype(float)
        y = base * day * (0.3 + 0.7 * wk) + rng.gamma(2.0, 0.3, len(idx))
        y[rng.random(len(idx)) < 0.1] = 0.0
        rows.append(pd.DataFrame({"site_id": s, "ts": idx, "energy_kwh": y}))
    return pd.concat(rows, ignore_index=True)


def last_day_setup(n_days: int = 35):
    """``make_series(n_days)`` on the grid, its 24 h features, a fast GBM trained on targets up to the day
    before the last, and the cells (both sites) of the last day: ``(panel, F, model, t_idx, s_idx)``."""
    from models import features as fe
    from models.gbm import fit_horizon_model
    p = fe.to_panel(make_series(n_days=n_days), "h")
    cfg = fe.FeatureConfig(holidays="none")
    F = fe.build_features(p, 24, cfg)
    model = fit_horizon_model(p, 24, cfg, train_end=p.n_steps - 25, F=F, params=FAST)
    t_idx = np.repeat(np.arange(p.n_steps - 24, p.n_steps), 2)
    s_idx = np.tile([0, 1], 24)
    return p, F, model, t_idx, s_idx


@pytest.fixture
def series() -> pd.DataFrame:
    return make_series()
