"""The forecast model registry with the lake in a bucket (a real S3 HTTP endpoint: moto's server on loopback).

The forecast DAG keeps its registry beside the lake's tables; with ``COALCHAIN_LAKE_ROOT=s3://...`` it is a
prefix in the bucket, read and written through the same settings (endpoint, credentials) as the tables."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs.forecast import charging_demand as job
from jobs.platform import storage
from models.bundle import ForecastBundle
from models.features import FeatureConfig
from models.registry import list_versions, load_bundle, save_bundle

pytestmark = pytest.mark.cluster
BUCKET = "registry"


def _bundle(as_of: str, version: str) -> ForecastBundle:
    """A bundle as train() saves it (no fitted models: the registry stores whatever the bundle holds)."""
    return ForecastBundle(freq="h", horizons=(24,), models={}, config=FeatureConfig(), sites=["ST-1"],
                          data_version=f"sessions@{as_of}", model_version=version, created_at=f"{as_of}T20:00:00",
                          run_info={"as_of_date": as_of})


@pytest.fixture()
def lake(s3_server, request):
    server = s3_server
    server.create_bucket(BUCKET)
    return server.settings(lake_root=f"s3://{BUCKET}/{request.node.name}/lake")


def test_registry_round_trip_in_a_bucket(lake):
    reg = job.registry(lake)
    assert reg["root"] == "registry/test_registry_round_trip_in_a_bucket/lake/models/charging_forecast"
    # an empty registry: no versions, no model for any day (the job then serves its fallback)
    assert list_versions(**reg) == []
    assert job.model_for(dt.date(2026, 10, 24), lake) is None

    saved = save_bundle(_bundle("2026-10-24", "h-1"), metrics={"mae": 1.5}, **reg)
    assert saved == f"{reg['root']}/h-1"
    # a backfill day's model must not replace LATEST
    save_bundle(_bundle("2026-10-17", "h-0"), set_latest=False, **reg)

    # oldest first by created_at: h-0 (10-17) then h-1 (10-24)
    assert [m["model_version"] for m in list_versions(**reg)] == ["h-0", "h-1"]
    assert load_bundle(reg["root"], filesystem=reg["filesystem"]).model_version == "h-1"      # LATEST
    old = load_bundle(reg["root"], "h-0", filesystem=reg["filesystem"])
    assert (old.model_version, old.run_info) == ("h-0", {"as_of_date": "2026-10-17"})
    # the newest model trained for a day <= the as-of day: 10-20 -> h-0, 10-24 -> h-1, 10-16 -> none
    assert job.model_for(dt.date(2026, 10, 20), lake)["model_version"] == "h-0"
    assert job.model_for(dt.date(2026, 10, 24), lake)["model_version"] == "h-1"
    assert job.model_for(dt.date(2026, 10, 16), lake) is None

    # every object is under the registry's prefix, as the layout says
    keys = [f.rel_key for f in storage.list_files(lake, storage.parse_location(f"s3://{BUCKET}"))]
    prefix = "test_registry_round_trip_in_a_bucket/lake/models/charging_forecast/"
    assert sorted(keys) == sorted(prefix + k for k in (
        "LATEST", "h-0/bundle.joblib", "h-0/metadata.json", "h-0/metrics.json",
        "h-1/bundle.joblib", "h-1/metadata.json", "h-1/metrics.json"))
    assert storage.read_bytes(lake, storage.parse_location(f"s3://{BUCKET}/{prefix}LATEST")) == b"h-1\n"


def test_saving_a_version_twice_is_refused(lake):
    reg = job.registry(lake)
    save_bundle(_bundle("2026-10-24", "h-1"), **reg)
    with pytest.raises(FileExistsError, match="charging_forecast/h-1 already exists"):
        save_bundle(_bundle("2026-10-24", "h-1"), **reg)


def test_missing_version_names_the_object(lake):
    reg = job.registry(lake)
    with pytest.raises(FileNotFoundError, match="charging_forecast/LATEST does not exist"):
        load_bundle(reg["root"], filesystem=reg["filesystem"])
