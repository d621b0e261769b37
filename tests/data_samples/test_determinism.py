"""Same parameters -> the same bytes; the committed sample is exactly what the documented command writes."""
from __future__ import annotations

from dataclasses import replace

from data_samples.config import PRESETS, parse_args
from data_samples.generator import generate

from tests.data_samples.landing import manifest, relpaths, sha256_of


def test_committed_sample_is_the_documented_command(committed_config):
    # data_samples/README.md: python -m data_samples.generator --out data_samples/landing --seed 42 --preset sample
    cfg, _ = parse_args(["--out", "x", "--seed", "42", "--preset", "sample"])
    assert committed_config == cfg


def test_committed_sample_regenerates_bit_for_bit(committed, regenerated):
    assert relpaths(regenerated) == [p for p in relpaths(committed) if not p.startswith(".")]
    mismatched = [p for p in relpaths(regenerated) if sha256_of(committed / p) != sha256_of(regenerated / p)]
    assert not mismatched, f"regenerate with the command in data_samples/README.md; differing: {mismatched[:5]}"


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path, regenerated, committed_config):
    generate(committed_config, str(tmp_path), jobs=1)
    assert relpaths(tmp_path) == relpaths(regenerated)
    assert all(sha256_of(tmp_path / p) == sha256_of(regenerated / p) for p in relpaths(tmp_path))


def test_another_seed_gives_another_world(tmp_path, regenerated, committed_config):
    generate(replace(committed_config, seed=committed_config.seed + 1), str(tmp_path), jobs=1)
    for rel in ("trucks/2026-11-02/trucks_20261102.csv", "telematics/2026-11-02/frames_20261102_g00.jsonl.gz",
                "weighbridge/2026-11-02/weighbridge_20261102.csv"):
        assert sha256_of(tmp_path / rel) != sha256_of(regenerated / rel)


def test_faults_do_not_change_the_physical_world(clean_world, committed):
    # Fault decisions come from their own random streams: the world at --fault-rate 0 and at 0.01 is the
    # same world, only delivered differently.
    assert manifest(clean_world)["ground_truth"] == manifest(committed)["ground_truth"]
    for rel in ("trucks/2026-11-02/trucks_20261102.csv", "mines/2026-11-02/mines_20261102.csv"):
        assert sha256_of(clean_world / rel) == sha256_of(committed / rel)


def test_presets_have_the_documented_shape():
    day = PRESETS["ordos_day"]
    assert (day.mines, day.trucks, day.days, day.charging_stations, day.connectors_per_station, day.h2_stations) == \
        (12, 600, 1, 24, 8, 6)
    assert day.telemetry_interval_min_s == day.telemetry_interval_max_s == 10
    # 600 trucks x 86,400 s / 10 s = 5,184,000 frames in the day
    assert day.trucks * 86_400 // day.telemetry_interval_min_s == 5_184_000
    sample = PRESETS["sample"]
    assert (sample.companies, sample.days) == (3, 3)
    assert (sample.telemetry_interval_min_s, sample.telemetry_interval_max_s) == (60, 120)
