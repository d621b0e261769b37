"""jobs.platform.storage: one location, what each engine gets from it (no server needed here; the object-store
round trip through Spark, delta-rs and pyarrow is tests/cluster/test_object_store.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobs.platform.settings import Settings
from jobs.platform.storage import (LocationError, S3Location, delta_storage_options, delta_uri, fs_path, parse_location,
                          spark_conf, spark_uri)


@pytest.mark.parametrize("text, bucket, key", [
    ("s3://lake", "lake", ""),
    ("s3://lake/", "lake", ""),
    ("s3://lake/prod/ordos/", "lake", "prod/ordos"),
    ("s3a://lake/prod", "lake", "prod"),
])
def test_bucket_locations(text, bucket, key):
    assert parse_location(text) == S3Location(bucket, key)


def test_local_locations_stay_paths():
    assert parse_location("/data/lake") == Path("/data/lake")
    assert parse_location("file:///data/lake") == Path("/data/lake")
    assert parse_location("relative/lake") == Path("relative/lake")


@pytest.mark.parametrize("text", ["gs://lake/x", "s3:///nobucket", "s3://key:secret@lake/x", "s3://lake/x?versionId=1",
                                  "http://127.0.0.1:9000/lake"])
def test_other_locations_are_refused(text):
    with pytest.raises(LocationError):
        parse_location(text)


def test_joining_and_the_forms_each_engine_reads():
    table = parse_location("s3://lake/prod") / "silver" / "silver_telematics"
    assert table == S3Location("lake", "prod/silver/silver_telematics")
    assert table.name == "silver_telematics" and table.parent == S3Location("lake", "prod/silver")
    assert spark_uri(table) == "s3a://lake/prod/silver/silver_telematics"
    assert delta_uri(table) == "s3://lake/prod/silver/silver_telematics"
    assert fs_path(table) == "lake/prod/silver/silver_telematics"
    assert spark_uri(Path("/data/lake/x")) == delta_uri(Path("/data/lake/x")) == "/data/lake/x"


def test_settings_read_the_standard_aws_variables(monkeypatch):
    monkeypatch.setenv("COALCHAIN_LAKE_ROOT", "s3://lake/prod")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    monkeypatch.setenv("COALCHAIN_S3_ALLOW_HTTP", "true")
    monkeypatch.setenv("COALCHAIN_S3_PATH_STYLE", "true")
    settings = Settings(_env_file=None)
    assert settings.lake_root == S3Location("lake", "prod")
    assert "very-secret-value" not in repr(settings) and "very-secret-value" not in str(settings)
    options = delta_storage_options(settings, settings.lake_root)
    assert options == {"AWS_REGION": "cn-north-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
                       "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
                       "AWS_ALLOW_HTTP": "true", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false"}
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.access.key"] == "AKIDEXAMPLE"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "cn-north-1"


def test_a_local_lake_needs_no_object_store_settings(tmp_path):
    settings = Settings(_env_file=None, lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")
    assert spark_conf(settings) == {}
    assert delta_storage_options(settings, settings.lake_root) is None
    assert settings.delivery_dir == tmp_path / "delivery"
    assert settings.quality_dir == tmp_path / "lake" / "quality"


def test_files_for_people_stay_on_a_file_system_when_the_lake_is_in_a_bucket(tmp_path):
    """GX's result store and Data Docs are file stores: with the lake in a bucket they go to the delivery
    folder, unless COALCHAIN_QUALITY_ROOT names another."""
    in_bucket = Settings(_env_file=None, lake_root="s3://lake/prod", delivery_root=tmp_path / "out")
    assert in_bucket.quality_dir == tmp_path / "out" / "quality"
    chosen = Settings(_env_file=None, lake_root="s3://lake/prod", quality_root=tmp_path / "gx")
    assert chosen.quality_dir == tmp_path / "gx"
