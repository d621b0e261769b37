"""A folder-based model registry for forecast bundles.

Layout::

    <root>/<model_version>/bundle.joblib    the fitted ForecastBundle (joblib)
    <root>/<model_version>/metadata.json    model/code/data version, training window, horizons, features
    <root>/<model_version>/metrics.json     backtest metrics given at save time (or {})
    <root>/LATEST                           the most recently saved model_version

``model_version`` is ``<freq>-<UTC yyyymmddThhmmss>-<8 hex>``, the hex digest covering the data version,
training window and horizons, so two trainings on different data never share an id.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

import joblib

from .bundle import ForecastBundle


def make_version(bundle: ForecastBundle, now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    key = json.dumps([bundle.data_version, bundle.train_start, bundle.train_end, list(bundle.horizons),
                      bundle.freq, bundle.sites, now.isoformat()], default=str)
    return f"{bundle.freq}-{now:%Y%m%dT%H%M%S}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def save_bundle(bundle: ForecastBundle, root, metrics: dict | None = None, set_latest: bool = True) -> Path:
    """Save under ``root/<model_version>/`` (assigning ``bundle.model_version`` if unset); returns that folder.

    ``set_latest=False`` leaves ``LATEST`` alone (a model trained for a backfill day must not replace the one
    trained on newer data)."""
    root = Path(root)
    if metrics is not None:
        bundle.metrics = metrics
    if not bundle.model_version:
        bundle.model_version = make_version(bundle)
    path = root / bundle.model_version
    path.mkdir(parents=True, exist_ok=False)
    joblib.dump(bundle, path / "bundle.joblib", compress=3)
    (path / "metadata.json").write_text(json.dumps(bundle.metadata(), indent=2, default=str))
    (path / "metrics.json").write_text(json.dumps(bundle.metrics or {}, indent=2, default=str))
    if set_latest:
        (root / "LATEST").write_text(bundle.model_version + "\n")
    return path


def list_versions(root) -> list[dict]:
    """Metadata of every saved version, oldest first."""
    out = []
    for meta in sorted(Path(root).glob("*/metadata.json")):
        out.append(json.loads(meta.read_text()))
    return sorted(out, key=lambda m: m.get("created_at") or "")


def load_bundle(path, version: str | None = None) -> ForecastBundle:
    """Load a bundle from a version folder, or from a registry root (``version`` or ``LATEST``)."""
    p = Path(path)
    if not (p / "bundle.joblib").exists():
        v = version or (p / "LATEST").read_text().strip()
        p = p / v
    bundle = joblib.load(p / "bundle.joblib")
    if not isinstance(bundle, ForecastBundle):
        raise TypeError(f"{p} does not hold a ForecastBundle")
    return bundle
