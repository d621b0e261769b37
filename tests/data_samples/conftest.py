"""Worlds generated once per test session (each takes about a second)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from data_samples.config import PRESETS, Config
from data_samples.generator import generate

from tests.data_samples.landing import manifest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "data_samples" / "landing"


def _generate(tmp_path_factory, name: str, cfg: Config, jobs: int = 1) -> Path:
    out = tmp_path_factory.mktemp(name)
    generate(cfg, str(out), jobs=jobs)
    return out


@pytest.fixture(scope="session")
def committed() -> Path:
    assert (COMMITTED / "_manifest.json").is_file(), "the committed sample is missing: see data_samples/README.md"
    return COMMITTED


@pytest.fixture(scope="session")
def committed_config(committed) -> Config:
    return Config(**manifest(committed)["params"])


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory, committed_config) -> Path:
    """The committed sample's parameters, generated again with two worker processes."""
    return _generate(tmp_path_factory, "regenerated", committed_config, jobs=2)


@pytest.fixture(scope="session")
def clean_world(tmp_path_factory) -> Path:
    """The sample preset with --fault-rate 0."""
    return _generate(tmp_path_factory, "clean", replace(PRESETS["sample"], fault_rate=0.0))


@pytest.fixture(scope="session")
def faulty_world(tmp_path_factory) -> Path:
    """Two days of the sample preset at a high fault rate, so every fault kind shows up many times."""
    return _generate(tmp_path_factory, "faulty", replace(PRESETS["sample"], days=2, fault_rate=0.05))


@pytest.fixture(scope="session", params=["clean", "committed"])
def world(request) -> Path:
    """Consistency checks run on the clean world (tight) and on the committed sample (with its faults)."""
    return request.getfixturevalue("clean_world" if request.param == "clean" else "committed")
