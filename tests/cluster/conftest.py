"""Shared by the cluster tests: one S3 endpoint (moto's standalone server on 127.0.0.1) for the session,
and helpers to put a landing zone into a bucket and read a lake back from one."""
from __future__ import annotations

from pathlib import Path

import pytest

from jobs.tools.local_cluster import LocalS3Server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    with LocalS3Server(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def upload_tree(server: LocalS3Server, folder: Path, target: str) -> int:
    """Every file under ``folder`` to the prefix ``target`` (s3://bucket/prefix), keys relative to it; the
    number of files."""
    from jobs.platform import storage

    copied, kept = storage.upload_tree(server.settings(), folder, storage.parse_location(target))
    return copied + kept


def bucket_table(server: LocalS3Server, uri: str):
    """A Delta table in the bucket, read with delta-rs."""
    from deltalake import DeltaTable

    from jobs.platform import storage

    settings = server.settings()
    return DeltaTable(uri, storage_options=storage.delta_storage_options(settings, storage.parse_location(uri)))
