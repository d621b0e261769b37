"""One place that turns a lake or landing location into what each engine needs.

A location is a local folder (``/data/lake``) or a prefix in an S3-API bucket (``s3://bucket/prefix``;
AWS S3, MinIO, Alibaba Cloud OSS through its S3 endpoint). ``parse_location`` gives a ``Path`` for the
first and an ``S3Location`` for the second; both join with ``/``. From the settings object this module
derives, for the same endpoint and credentials:

* Spark: ``spark_conf`` (the s3a connector of hadoop-aws) and ``spark_uri`` (``s3a://bucket/key``);
* delta-rs: ``delta_uri`` and ``delta_storage_options``;
* pyarrow: ``filesystem`` (``S3FileSystem``) with ``fs_path`` (``bucket/key``).

Credentials come from the standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``, ``AWS_ENDPOINT_URL``) through the settings object and are never printed: ``repr`` of
a location carries no credential, and the settings hold the secrets as ``SecretStr``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from jobs.platform.settings import Settings

S3_SCHEMES = ("s3", "s3a")
# hadoop-aws matching PySpark 4.0.1's Hadoop (pyspark/jars/hadoop-client-api-3.4.1.jar) and the AWS SDK v2
# bundle that hadoop-project 3.4.1 pins (property aws-java-sdk-v2.version)
HADOOP_AWS_VERSION = "3.4.1"
AWS_SDK_BUNDLE_VERSION = "2.24.6"
S3_JAR_NAMES = (f"hadoop-aws-{HADOOP_AWS_VERSION}.jar", f"bundle-{AWS_SDK_BUNDLE_VERSION}.jar")


class LocationError(ValueError):
    """A lake or landing location that is neither a local path nor s3://bucket[/prefix]."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str = ""  # without leading or trailing "/"

    def __truediv__(self, part: str | PurePosixPath) -> "S3Location":
        part = str(part).strip("/")
        return S3Location(self.bucket, f"{self.key}/{part}" if self.key else part)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1] if self.key else self.bucket

    @property
    def parent(self) -> "S3Location":
        return S3Location(self.bucket, self.key.rsplit("/", 1)[0] if "/" in self.key else "")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    def __str__(self) -> str:
        # the form Spark's s3a connector reads; delta-rs accepts the same scheme
        return f"s3a://{self.bucket}/{self.key}" if self.key else f"s3a://{self.bucket}"


Location = Path | S3Location


def parse_location(value: str | Path | S3Location) -> Location:
    if isinstance(value, (Path, S3Location)):
        return value
    text = str(value).strip()
    if "://" not in text:
        return Path(text).expanduser()
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme not in S3_SCHEMES or not parsed.netloc:
        raise LocationError(f"location {text!r}: expected a local path or s3://bucket/prefix")
    if parsed.query or parsed.fragment or "@" in parsed.netloc:
        raise LocationError(f"location {text!r}: credentials, queries and fragments do not belong in a "
                            "location (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY instead)")
    return S3Location(parsed.netloc, parsed.path.strip("/"))


def is_object_store(location: Location) -> bool:
    return isinstance(location, S3Location)


def spark_uri(location: Location) -> str:
    return str(location)


def delta_uri(location: Location) -> str:
    return location.uri if isinstance(location, S3Location) else str(location)


def uses_object_store(settings: "Settings") -> bool:
    return is_object_store(settings.lake_root) or is_object_store(settings.landing_root)


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def delta_storage_options(settings: "Settings", location: Location) -> dict[str, str] | None:
    """delta-rs (object_store) options for ``location``; None for a local path."""
    if not isinstance(location, S3Location):
        return None
    options = {"AWS_REGION": settings.aws_region}
    if settings.aws_endpoint_url:
        options["AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
    if settings.aws_access_key_id is not None:
        options["AWS_ACCESS_KEY_ID"] = _secret(settings.aws_access_key_id)
        options["AWS_SECRET_ACCESS_KEY"] = _secret(settings.aws_secret_access_key) or ""
    if settings.s3_allow_http:
        options["AWS_ALLOW_HTTP"] = "true"
    if settings.s3_path_style:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    # delta-rs 1.x commits with S3 conditional writes (PUT If-None-Match) natively: no locking provider
    return options


def spark_conf(settings: "Settings") -> dict[str, str]:
    """The s3a connector's properties; empty when neither the lake nor the landing zone is on S3."""
    if not uses_object_store(settings):
        return {}
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.aws_region,
        "spark.hadoop.fs.s3a.path.style.access": str(settings.s3_path_style).lower(),
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(not settings.s3_allow_http).lower(),
        # Delta's log store for s3a: one driver commits at a time per table (see docs/reliability.md)
        "spark.delta.logStore.s3a.impl": "io.delta.storage.S3SingleDriverLogStore",
    }
    if settings.aws_endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = settings.aws_endpoint_url
    if settings.aws_access_key_id is not None:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = \
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        conf["spark.hadoop.fs.s3a.access.key"] = _secret(settings.aws_access_key_id)
        conf["spark.hadoop.fs.s3a.secret.key"] = _secret(settings.aws_secret_access_key) or ""
    return conf


def filesystem(settings: "Settings", location: Location):
    """A pyarrow filesystem for ``location`` (local or S3), to be used with ``fs_path(location)``."""
    from pyarrow import fs

    if not isinstance(location, S3Location):
        return fs.LocalFileSystem()
    endpoint = settings.aws_endpoint_url
    scheme = None
    if endpoint and "://" in endpoint:
        scheme, endpoint = endpoint.split("://", 1)
    return fs.S3FileSystem(
        access_key=_secret(settings.aws_access_key_id), secret_key=_secret(settings.aws_secret_access_key),
        region=settings.aws_region, endpoint_override=endpoint,
        scheme=scheme or ("http" if settings.s3_allow_http else "https"),
        force_virtual_addressing=not settings.s3_path_style and endpoint is None,
    )


def fs_path(location: Location) -> str:
    if isinstance(location, S3Location):
        return f"{location.bucket}/{location.key}" if location.key else location.bucket
    return str(location)


def options_for(uri: str) -> dict[str, str] | None:
    """delta-rs storage options for a table URI, from the process's settings (None for a local path)."""
    location = parse_location(uri)
    if not isinstance(location, S3Location):
        return None
    from jobs.platform.settings import get_settings

    return delta_storage_options(get_settings(), location)


def has_commit(settings: "Settings", log: S3Location) -> bool:
    """Whether a ``_delta_log`` prefix in a bucket holds a commit or a checkpoint pointer."""
    from pyarrow import fs

    infos = filesystem(settings, log).get_file_info(fs.FileSelector(fs_path(log), allow_not_found=True))
    return any(i.base_name == "_last_checkpoint" or i.base_name.endswith(".json") for i in infos)


def upload(settings: "Settings", source: Path, target: S3Location) -> None:
    from pyarrow import fs

    fs.copy_files(str(source), fs_path(target), source_filesystem=fs.LocalFileSystem(),
                  destination_filesystem=filesystem(settings, target))


def upload_tree(settings: "Settings", folder: Path, target: S3Location) -> tuple[int, int]:
    """Every file under ``folder`` to the prefix ``target``, keys relative to it; an object already there
    with the same size is kept. Returns (files copied, files kept)."""
    present = {f.rel_key: f.size_bytes for f in list_files(settings, target)}
    copied = kept = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = path.relative_to(folder).as_posix()
        if present.get(key) == path.stat().st_size:
            kept += 1
        else:
            upload(settings, path, target / key)
            copied += 1
    return copied, kept


def copy(settings: "Settings", source: Location, target: S3Location) -> None:
    """Put the file ``source`` (local, or an object: copied inside the store) at ``target`` in a bucket."""
    if not isinstance(source, S3Location):
        upload(settings, source, target)
        return
    from pyarrow import fs

    if source.bucket == target.bucket:   # a server-side copy: the bytes never leave the store
        filesystem(settings, target).copy_file(fs_path(source), fs_path(target))
    else:
        fs.copy_files(fs_path(source), fs_path(target), source_filesystem=filesystem(settings, source),
                      destination_filesystem=filesystem(settings, target))


def delete(settings: "Settings", target: S3Location) -> None:
    try:
        filesystem(settings, target).delete_file(fs_path(target))
    except FileNotFoundError:
        pass


def remove_tree(settings: "Settings", target: Location) -> None:
    """Remove a folder, or every object under a prefix, with all it holds; nothing there is no error."""
    if not isinstance(target, S3Location):
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        return
    try:
        filesystem(settings, target).delete_dir(fs_path(target))
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class StoredFile:
    location: Location
    rel_key: str            # below the listed prefix, "/"-separated
    size_bytes: int
    mtime_s: float | None   # modification time (seconds since the epoch), if the store reports one


def list_files(settings: "Settings", prefix: S3Location) -> list[StoredFile]:
    """Every object under ``prefix`` (sorted by key), never one outside it; folder markers are left out."""
    from pyarrow import fs

    base = fs_path(prefix)
    infos = filesystem(settings, prefix).get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    found = []
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != fs.FileType.File or not info.path.startswith(base + "/"):
            continue
        rel = info.path[len(base) + 1:]
        key = f"{prefix.key}/{rel}" if prefix.key else rel   # the key as stored, never normalised
        found.append(StoredFile(S3Location(prefix.bucket, key), rel, int(info.size or 0),
                                info.mtime.timestamp() if info.mtime else None))
    return found


def open_input(settings: "Settings", location: Location):
    """A binary stream of a file or object, as stored (a ``.gz`` is not decompressed)."""
    if not isinstance(location, S3Location):
        return open(location, "rb")
    return filesystem(settings, location).open_input_stream(fs_path(location), compression=None)


def read_bytes(settings: "Settings", location: Location) -> bytes:
    with open_input(settings, location) as stream:
        return stream.read()
