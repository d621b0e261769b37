import json

import numpy as np
import pandas as pd
import pytest

from models import forecast
from models.registry import list_versions, load_bundle, save_bundle

from .conftest import FAST, make_series


@pytest.fixture
def tiny_csv(tmp_path):
    df = make_series(n_days=28, sites=("S1", "S2", "S3"))
    df = df.drop(df.index[100:160])                       # a gap of missing rows
    df = df[~((df.site_id == "S3") & (df.ts < "2023-01-16"))]  # a site that opens later
    path = tmp_path / "tiny.csv"
    df.to_csv(path, index=False)
    return path


def test_cli_backtest_on_tiny_csv(tiny_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(forecast, "backtest", _fast(forecast.backtest))
    out = tmp_path / "bt"
    rc = forecast.main(["backtest", "--input", str(tiny_csv), "--freq", "H", "--horizon", "24", "--out", str(out)])
    assert rc == 0
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns[:8]) == ["site_id", "ts", "actual", "p50", "p10", "p90", "snaive_daily",
                                      "snaive_weekly"]
    assert set(pred.site_id) == {"S1", "S2", "S3"}
    assert (pred.p10 <= pred.p50).all() and (pred.p50 <= pred.p90).all() and (pred.p10 >= 0).all()
    m = json.loads((out / "metrics.json").read_text())
    for model in ("model", "snaive_daily", "snaive_weekly"):
        for key in ("mae", "rmse", "smape_pct", "rel_mae_vs_snaive_weekly", "coverage_p10_p90"):
            assert key in m["overall"][model]
    assert set(m["per_site"]) == {"S1", "S2", "S3"}
    assert (out / "backtest.png").stat().st_size > 1000
    assert "snaive_weekly" in capsys.readouterr().out


def test_cli_backtest_on_sessions_daily(tmp_path, monkeypatch):
    monkeypatch.setattr(forecast, "backtest", _fast(forecast.backtest))
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2023-03-01") + pd.to_timedelta(rng.uniform(0, 70 * 24, 400), unit="h")
    sess = pd.DataFrame({"site_id": rng.choice(["X", "Y"], 400), "start_ts": start,
                         "end_ts": start + pd.to_timedelta(rng.uniform(0.2, 5, 400), unit="h"),
                         "energy_kwh": rng.uniform(5, 60, 400)})
    path = tmp_path / "sessions.csv"
    sess.to_csv(path, index=False)
    out = tmp_path / "btd"
    assert forecast.main(["backtest", "--input", str(path), "--freq", "D", "--horizon", "1", "--out", str(out),
                          "--holidays", "none"]) == 0
    pred = pd.read_csv(out / "predictions.csv")
    assert pd.to_datetime(pred.ts).dt.hour.eq(0).all()
    # energy is conserved by the daily aggregation over the whole period
    total = pred.groupby("ts").actual.sum().sum()
    assert 0 < total <= sess.energy_kwh.sum() + 1e-6


def _fast(fn):
    def wrapped(*a, **k):
        k["params"] = FAST
        return fn(*a, **k)
    return wrapped


def test_train_save_load_predict(tmp_path):
    df = make_series(n_days=35, sites=("A", "B"))
    df["trucks_in_service"] = 10.0
    bundle = forecast.train(df, "h", horizons=(1, 24, 168), holidays="cn", data_version="test@1", params=FAST)
    assert bundle.config.exog == ("trucks_in_service",)
    path = save_bundle(bundle, tmp_path / "reg", metrics={"overall": {}})
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["data_version"] == "test@1" and meta["training_window"]["end"].startswith("2023-02-05 23")
    # week-ahead bands weigh recent scores (half-life 12 h) with step 0.003; 1 h and 24 h: equal weights, 0.002
    assert meta["interval_calibration"]["per_horizon"] == {
        "1": {"gamma": 0.002, "half_life_steps": None}, "24": {"gamma": 0.002, "half_life_steps": None},
        "168": {"gamma": 0.003, "half_life_steps": 12}}
    assert list_versions(tmp_path / "reg")[0]["model_version"] == bundle.model_version
    loaded = load_bundle(tmp_path / "reg")             # LATEST
    hist = df[df.ts < "2023-02-01"]
    fc = forecast.predict(loaded, hist, horizon=48)
    assert len(fc) == 2 * 48 and fc.ts.min() == pd.Timestamp("2023-02-01")
    assert fc.groupby("lead").model_horizon.first().loc[[1, 2, 24, 25, 48]].tolist() == [1, 24, 24, 168, 168]
    assert (fc.p10 <= fc.p50).all() and (fc.p50 <= fc.p90).all()
    again = forecast.predict(bundle, hist, horizon=48)
    pd.testing.assert_frame_equal(fc, again)
    # data at or after start is ignored: passing the full history with an explicit start changes nothing
    fc2 = forecast.predict(loaded, df, start="2023-02-01", horizon=48)
    pd.testing.assert_frame_equal(fc, fc2)
    with pytest.raises(ValueError):
        forecast.predict(loaded, hist, horizon=169)


def test_new_station_gets_a_forecast(tmp_path):
    df = make_series(n_days=35, sites=("A", "B"))
    bundle = forecast.train(df, "h", horizons=(24,), holidays="cn", params=FAST)
    new = pd.DataFrame({"site_id": "NEW", "ts": pd.date_range("2023-02-03", periods=48, freq="h"),
                        "energy_kwh": 3.0})               # two days of history only
    hist = pd.concat([df[df.ts < "2023-02-05"], new], ignore_index=True)
    fc = forecast.predict(bundle, hist, horizon=24)
    got = fc[fc.site_id == "NEW"]
    assert len(got) == 24 and got.p50.notna().all() and (got.p90 > 0).any()


def test_cli_train_and_predict(tmp_path, tiny_csv, monkeypatch):
    monkeypatch.setattr(forecast, "train", _fast(forecast.train))
    reg = tmp_path / "reg"
    assert forecast.main(["train", "--input", str(tiny_csv), "--horizons", "24", "--registry", str(reg),
                          "--data-version", "tiny"]) == 0
    out = tmp_path / "fc.csv"
    assert forecast.main(["predict", "--model", str(reg), "--input", str(tiny_csv), "--horizon", "24",
                          "--out", str(out)]) == 0
    fc = pd.read_csv(out)
    assert len(fc) == 3 * 24 and {"p10", "p50", "p90", "lead"} <= set(fc.columns)
