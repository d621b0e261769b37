"""make forecast-demo's world handling: the slice it generates and the cached world it reuses."""
from __future__ import annotations

import json

from data_samples.config import PRESETS
from jobs.tools.forecast_demo import ensure_world, slice_config


def test_a_slice_keeps_the_scenario_events_inside_it():
    assert slice_config(None) == PRESETS["long"] and slice_config(500) == PRESETS["long"]
    cfg = slice_config(60).validate()
    # station opens on day 60 // 2 = 30, the connector goes down on day 2 * 60 // 3 = 40 (both < 60 days)
    assert (cfg.days, cfg.station_opens_day, cfg.connector_outage_day) == (60, 30, 40)
    assert cfg.start_date == PRESETS["long"].start_date and cfg.trucks == PRESETS["long"].trucks


def test_a_world_with_the_same_parameters_is_reused_and_another_is_not(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "_manifest.json").write_text(json.dumps({"params": slice_config(60).as_dict(), "window": {}}))
    manifest, generated = ensure_world(landing, days=60)
    assert generated is False and manifest["params"]["days"] == 60
    calls = []
    monkeypatch.setattr("data_samples.generator.generate", lambda cfg, out, jobs, overwrite: calls.append(cfg) or {})
    _, generated = ensure_world(landing, days=61)           # other parameters: generated again
    assert generated is True and [c.days for c in calls] == [61]
