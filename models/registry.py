"""A model registry for forecast bundles, in a folder or under a prefix of an object store.

Layout::

    <root>/<model_version>/bundle.joblib    the fitted ForecastBundle (joblib)
    <root>/<model_version>/metadata.json    model/code/data version, training window, horizons, features
    <root>/<model_version>/metrics.json     backtest metrics given at save time (or {})
    <root>/LATEST                           the most recently saved model_version

``model_version`` is ``<freq>-<UTC yyyymmddThhmmss>-<8 hex>``, the hex digest covering the data version,
training window and horizons, so two trainings on different data never share an id.

Every function takes ``root`` as a local path, or, with ``filesystem`` (a ``pyarrow.fs.FileSystem``, e.g.
an ``S3FileSystem``), as a path in that file system (``bucket/prefix`` for S3). ``bundle.joblib`` is
written last but one and ``metadata.json`` last, so a version is listed only once it is complete.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
from pathlib import Path

import joblib
from pyarrow import fs as pafs

from .bundle import ForecastBundle


def make_version(bundle: ForecastBundle, now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    key = json.dumps([bundle.data_version, bundle.train_start, bundle.train_end, list(bundle.horizons),
                      bundle.freq, bundle.sites, now.isoformat()], default=str)
    return f"{bundle.freq}-{now:%Y%m%dT%H%M%S}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


class _Store:
    """``root`` in a file system: a local folder by default."""

    def __init__(self, root, filesystem: pafs.FileSystem | None):
        self.local = filesystem is None
        self.fs = filesystem or pafs.LocalFileSystem()
        self.root = str(Path(root).resolve()) if self.local else str(root).rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def read(self, *parts: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(*parts), compression=None) as stream:
                return stream.read()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"model registry: {self.path(*parts)} does not exist") from exc

    def write(self, data: bytes, *parts: str) -> None:
        if self.local:
            self.fs.create_dir(self.path(*parts[:-1]), recursive=True)
        with self.fs.open_output_stream(self.path(*parts), compression=None) as stream:
            stream.write(data)

    def versions(self) -> list[str]:
        """Version folders holding a metadata.json."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True))
        return sorted(i.path[len(self.root) + 1:].split("/")[0] for i in infos
                      if i.type == pafs.FileType.File and i.base_name == "metadata.json"
                      and i.path.count("/") == self.root.count("/") + 2)


def save_bundle(bundle: ForecastBundle, root, metrics: dict | None = None, set_latest: bool = True,
                filesystem: pafs.FileSystem | None = None) -> Path | str:
    """Save under ``root/<model_version>/`` (assigning ``bundle.model_version`` if unset); returns that folder
    (a ``Path`` for a local registry, else its path in ``filesystem``).

    ``set_latest=False`` leaves ``LATEST`` alone (a model trained for a backfill day must not replace the one
    trained on newer data)."""
    store = _Store(root, filesystem)
    if metrics is not None:
        bundle.metrics = metrics
    if not bundle.model_version:
        bundle.model_version = make_version(bundle)
    version = bundle.model_version
    if store.exists(version):
        raise FileExistsError(f"model registry: {store.path(version)} already exists")
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer, compress=3)
    store.write(json.dumps(bundle.metrics or {}, indent=2, default=str).encode(), version, "metrics.json")
    store.write(buffer.getvalue(), version, "bundle.joblib")
    store.write(json.dumps(bundle.metadata(), indent=2, default=str).encode(), version, "metadata.json")
    if set_latest:
        store.write((version + "\n").encode(), "LATEST")
    return Path(store.path(version)) if store.local else store.path(version)


def list_versions(root, filesystem: pafs.FileSystem | None = None) -> list[dict]:
    """Metadata of every saved version, oldest first; none for a registry that does not exist yet."""
    store = _Store(root, filesystem)
    out = [json.loads(store.read(v, "metadata.json")) for v in store.versions()]
    return sorted(out, key=lambda m: m.get("created_at") or "")


def load_bundle(path, version: str | None = None, filesystem: pafs.FileSystem | None = None) -> ForecastBundle:
    """Load a bundle from a version folder, or from a registry root (``version`` or ``LATEST``)."""
    store = _Store(path, filesystem)
    if store.exists("bundle.joblib"):
        parts: tuple[str, ...] = ("bundle.joblib",)
    else:
        parts = (version or store.read("LATEST").decode().strip(), "bundle.joblib")
    bundle = joblib.load(io.BytesIO(store.read(*parts)))
    if not isinstance(bundle, ForecastBundle):
        raise TypeError(f"{store.path(*parts)} does not hold a ForecastBundle")
    return bundle
