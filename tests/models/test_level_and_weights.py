"""Zero-target dither, recency weights, recent-level scale and the EWMA level feature."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import features as fe
from models import gbm


def _office_hours(n_days: int = 70) -> pd.DataFrame:
    """Zero-heavy like a workplace site: 6 kWh at 09-16 h on 80 % of weekdays, 0 otherwise (76 % zeros)."""
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-01-01", periods=24 * n_days, freq="h")
    busy_day = np.repeat(rng.random(n_days) < 0.8, 24) & (idx.dayofweek < 5)
    y = np.where(busy_day & (idx.hour >= 9) & (idx.hour < 17), 6.0, 0.0)
    return pd.DataFrame({"site_id": "A", "ts": idx, "energy_kwh": y})


def _busy_hour_p50(monkeypatch, dither: float) -> tuple[float, float]:
    monkeypatch.setattr(gbm, "ZERO_DITHER", dither)
    p = fe.to_panel(_office_hours(), "h")
    cfg = fe.FeatureConfig(holidays="none")
    F = fe.build_features(p, 24, cfg)
    end = p.n_steps - 24 * 7 - 1
    # the production tree settings (>= 200 rows per leaf): with small leaves a lucky all-busy leaf can free
    # the model by chance, with large ones only the dither does
    model = gbm.fit_horizon_model(p, 24, cfg, train_end=end, F=F, params=dict(max_iter=100))
    t = np.arange(end + 24, p.n_steps)
    q = gbm.predict_cells(model, F, t, np.zeros(len(t), int))
    hour = p.index[t].hour
    weekday = p.index[t].dayofweek < 5
    office = weekday & (hour >= 9) & (hour < 17)
    return float(q.p50[office].mean()), float(q.p50[~office & (hour < 6)].mean())


def test_dithered_zeros_let_the_median_leave_zero(monkeypatch):
    # without the dither every target is >= the initial median 0, all pinball gradients are equal and the
    # P50 barely moves (measured: 0.8 kWh at office hours; the failure seen on workplace_all); with it the
    # office hours get ~6 kWh (80 % busy days: the median of a weekday 10:00 is 6; measured 5.9) and the
    # night stays at 0
    dither = gbm.ZERO_DITHER
    stuck, _ = _busy_hour_p50(monkeypatch, 0.0)
    assert stuck < 2.0
    busy, night = _busy_hour_p50(monkeypatch, dither)
    assert busy > 5.0 and night < 0.05


def test_tie_dither_is_a_fixed_number_per_cell():
    t = np.array([5, 17, 5, 100_000])
    s = np.array([0, 3, 0, 7])
    u = gbm.tie_dither(t, s)
    assert u[0] == u[2] and u[0] != u[1]                          # same cell, same number, whatever the order
    assert np.all((u >= -0.5) & (u < 0.5))
    v = gbm.tie_dither(np.arange(24 * 200), np.zeros(24 * 200, int))
    assert abs(v.mean()) < 0.01 and (v > 0).mean() == pytest.approx(0.5, abs=0.02)   # centred on 0
    # only exact zeros are dithered, by at most ZERO_DITHER / 2 (in units of the scale)
    z = gbm.scaled_target(np.array([0.0, 3.0]), np.array([2.0, 2.0]), t[:2], s[:2])
    assert z[1] == 1.5 and 0 < abs(z[0]) <= gbm.ZERO_DITHER / 2


def test_recency_weights_by_hand():
    # hourly grid (24 steps a day), half-life 1 day: the target at train_end weighs 1, a day before 0.5,
    # two days before 0.25
    w = gbm.recency_weights(np.array([48, 24, 0, 36]), 48, 1.0, 24)
    assert w == pytest.approx([1.0, 0.5, 0.25, 0.5 ** 0.5])


def test_ewm_level_by_hand():
    # half-life 1 step -> decay 0.5; NaN is skipped, not read as 0:
    # t0: 2/1 = 2; t1: (0.5*2)/(0.5*1) = 2; t2: (0.25*2 + 4)/(0.25 + 1) = 4.5/1.25 = 3.6
    y = np.array([[2.0], [np.nan], [4.0]])
    assert fe.ewm_level(y, 1.0)[:, 0] == pytest.approx([2.0, 2.0, 3.6])


def test_recent_level_scale_by_hand():
    # daily grid, one site: 21 days at 1 kWh/day, then 7 days at 5 kWh/day. At H = 1 day the scale of the
    # target on day 28 (issued at day 27):
    #   "weeks"  = mean of the 28 days ending day 27 = (21*1 + 7*5)/28 = 2.0
    #   "recent" = max(mean of the last 7 days = 5, 0.25 x 2.0) = 5.0, and roll_mean_4week = 2.0 / 5.0 = 0.4
    idx = pd.date_range("2024-01-01", periods=29, freq="D")
    y = np.r_[np.ones(21), np.full(8, 5.0)]
    p = fe.to_panel(pd.DataFrame({"site_id": "A", "ts": idx, "energy_kwh": y}), "D")
    weeks = fe.build_features(p, 1, fe.FeatureConfig(holidays="none", scale_by="weeks"))
    recent = fe.build_features(p, 1, fe.FeatureConfig(holidays="none", scale_by="recent", level_days=7))
    assert weeks["_scale"][28, 0] == pytest.approx(2.0)
    assert recent["_scale"][28, 0] == pytest.approx(5.0)
    assert recent["roll_mean_4week"][28, 0] == pytest.approx(0.4)
    # a lag feature is divided by the scale: yesterday's 5 kWh is 1.0 recent levels, 2.5 four-week levels
    assert recent["lag_1"][28, 0] == pytest.approx(1.0) and weeks["lag_1"][28, 0] == pytest.approx(2.5)
    # floor: a week of zeros after 3 busy weeks keeps the scale at a quarter of the 4-week mean
    z = np.r_[np.full(21, 4.0), np.zeros(8)]
    pz = fe.to_panel(pd.DataFrame({"site_id": "A", "ts": idx, "energy_kwh": z}), "D")
    Fz = fe.build_features(pz, 1, fe.FeatureConfig(holidays="none", scale_by="recent", level_days=7))
    assert Fz["_scale"][28, 0] == pytest.approx(0.25 * (21 * 4.0 / 28))      # 0.25 x 3.0 = 0.75


def test_blended_p50_is_the_weighted_mean_of_the_model_and_its_reference():
    from .conftest import last_day_setup
    p, F, model, t_idx, s_idx = last_day_setup()
    raw = gbm.predict_cells(model, F, t_idx, s_idx)
    model.blend = {"reference": "sameh_mean", "model_weight": 0.25}
    mixed = gbm.predict_cells(model, F, t_idx, s_idx)
    # 0.25 x GBM P50 + 0.75 x the same-hour mean of the last 7 days (the feature is in units of the scale)
    ref = F["sameh_mean"][t_idx, s_idx] * F["_scale"][t_idx, s_idx]
    assert np.allclose(mixed.p50, 0.25 * raw.p50 + 0.75 * ref)
    assert set(mixed.method) == {"gbm_blend"}
    assert np.all(mixed.p10 <= mixed.p50) and np.all(mixed.p50 <= mixed.p90)


def test_refit_check_chooses_a_blend_only_when_it_beats_the_model_on_validation():
    from .conftest import FAST, make_series
    p = fe.to_panel(make_series(n_days=42), "h")
    cfg = fe.FeatureConfig(holidays="none")
    F = fe.build_features(p, 24, cfg)
    origin = p.n_steps - 24 * 7 - 1
    # a properly fitted GBM beats every shrinkage toward a same-hour average here: no blend
    good = gbm.validate_refit(p, 24, cfg, origin, F, (None,), params=FAST, blend=True)
    assert good.blend == {} and "model_gbm_only" not in good.val_mae
    # a GBM stopped after 2 trees is barely off its constant start: shrinking it toward the reference wins
    weak = dict(FAST, max_iter=2)
    off = gbm.validate_refit(p, 24, cfg, origin, F, (None,), params=weak, blend=False)
    on = gbm.validate_refit(p, 24, cfg, origin, F, (None,), params=weak, blend=True)
    assert off.blend == {} and on.blend["reference"] in gbm.BLEND_REFERENCES
    assert on.blend["model_weight"] in gbm.BLEND_MODEL_WEIGHTS
    assert on.val_mae["model"] < on.val_mae["model_gbm_only"] == pytest.approx(off.val_mae["model"])


def test_predictions_inside_the_dither_band_are_zero():
    # scale 10 kWh: 0.0004 scales (inside the +-0.0005 band) -> 0, 0.002 scales -> 0.02 kWh, negatives -> 0
    out = gbm.to_kwh(np.array([0.0004, 0.002, -0.3, 1.5]), np.full(4, 10.0))
    assert out == pytest.approx([0.0, 0.02, 0.0, 15.0])
