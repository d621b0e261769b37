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


@pytest.fixture
def series() -> pd.DataFrame:
    return make_series()
