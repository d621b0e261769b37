"""Great Expectations Data Docs that open offline: every script, style sheet, font and image is local.

GX's page templates load Bootstrap, bootstrap-table, jQuery, Popper, bootstrap-datepicker, Font Awesome
and Vega from public CDNs, and its logo from GX's web-assets bucket; offline, a page renders unstyled and
the index's results table (filled by bootstrap-table's script) stays empty. So the project keeps exact
copies of those files, taken from pinned npm packages (:data:`PACKAGES`, each checked against its
registry integrity hash), in ``vendor/data_docs/``; every Data Docs build copies them into the site
(``<site>/static/vendor/``) and rewrites the pages it wrote to point at them (:func:`localise`).
GX's own logo and images come from the ``static/images`` folder GX already copies into the site.

Refresh the copies (needs the npm client and the registry; nothing else does)::

    python -m jobs.quality.data_docs --vendor      # rewrites vendor/data_docs/ from the pinned packages

A GX upgrade whose templates name another CDN file is caught by ``tests/jobs/quality/test_data_docs.py`` (every
remote asset URL in GX's templates must have a local copy), and logged at build time.
"""
from __future__ import annotations

import argparse
import base64
import filecmp
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
VENDOR_DIR = REPO / "vendor" / "data_docs"
CHECKSUMS = "SHA256SUMS"
SITE_VENDOR = "static/vendor"            # inside the Data Docs site
GX_IMAGES = "static/images"              # GX copies its own images there


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str                       # the registry's dist.integrity of the tarball
    licence: str                         # SPDX expression from the package's package.json
    files: tuple[str, ...]               # paths inside the package (below ``package/``)
    licence_files: tuple[str, ...] = ()  # licence texts the package ships ('' when it ships none)
    source: str = ""                     # where the licence text lives when the tarball has none

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def folder(self) -> str:
        return f"{self.name.rsplit('/', 1)[-1]}-{self.version}"


PACKAGES: tuple[Package, ...] = (
    Package("bootstrap", "4.3.1",
            "sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==",
            "MIT", ("dist/css/bootstrap.min.css", "dist/js/bootstrap.min.js"), ("LICENSE",)),
    Package("bootstrap-table", "1.19.1",
            "sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
            "MIT", ("dist/bootstrap-table.min.css", "dist/bootstrap-table.min.js",
                    "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
                    "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"), ("LICENSE",)),
    Package("jquery", "3.7.1",
            "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
            "MIT", ("dist/jquery.min.js",), ("LICENSE.txt",)),
    Package("popper.js", "1.12.9",
            "sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==",
            "MIT", ("dist/umd/popper.min.js",), (), "the licence banner at the top of dist/umd/popper.min.js"),
    Package("bootstrap-datepicker", "1.9.0",
            "sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
            "Apache-2.0", ("dist/css/bootstrap-datepicker.min.css", "dist/js/bootstrap-datepicker.min.js"),
            ("LICENSE",)),
    Package("@forevolve/bootstrap-dark", "1.1.0",
            "sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
            "MIT", ("dist/css/bootstrap-prefers-dark.css",), ("LICENSE",)),
    Package("@fortawesome/fontawesome-free", "6.6.0",
            "sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
            "(CC-BY-4.0 AND OFL-1.1 AND MIT)",
            ("css/all.min.css", *(f"webfonts/{font}.{ext}" for font in (
                "fa-brands-400", "fa-regular-400", "fa-solid-900", "fa-v4compatibility") for ext in ("woff2", "ttf"))),
            ("LICENSE.txt",)),
    Package("vega", "5.33.1",
            "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
            "BSD-3-Clause", ("build/vega.min.js",), (), "https://github.com/vega/vega/blob/v5.33.1/LICENSE"),
    Package("vega-lite", "5.23.0",
            "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
            "BSD-3-Clause", ("build/vega-lite.min.js",), ("LICENSE",)),
    Package("vega-embed", "6.29.0",
            "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
            "BSD-3-Clause", ("build/vega-embed.min.js",), ("LICENSE",)),
)
_BY_NAME = {p.name: p for p in PACKAGES}


def _local(package: str, path: str) -> str:
    p = _BY_NAME[package]
    assert path in p.files, (package, path)
    return f"{SITE_VENDOR}/{p.folder}/{path}"


# Every remote asset GX 1.24's templates and default style sheet name -> the file in the site that
# replaces it. GX's pages ask for bootstrap-table's filter-control CSS of 1.19.0 next to the 1.19.1
# scripts; the 1.19.1 file serves both (the extension's CSS is the same rule set).
CDN_FILES: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/vega@5": _local("vega", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": _local("vega-lite", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": _local("vega-embed", "build/vega-embed.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        _local("@fortawesome/fontawesome-free", "css/all.min.css"),
    "https://code.jquery.com/jquery-3.7.1.min.js": _local("jquery", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        _local("popper.js", "dist/umd/popper.min.js"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        _local("bootstrap", "dist/js/bootstrap.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        _local("bootstrap", "dist/css/bootstrap.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        _local("bootstrap-table", "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        _local("bootstrap-table", "dist/bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        _local("bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        _local("bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        _local("bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        _local("bootstrap-datepicker", "dist/css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        _local("bootstrap-datepicker", "dist/js/bootstrap-datepicker.min.js"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        _local("@forevolve/bootstrap-dark", "dist/css/bootstrap-prefers-dark.css"),
}
# GX's logos from its web-assets bucket (the navigation bar adds a cache-busting query): GX ships the
# light logo in static/images; the dark-mode logo is not shipped, the light one stands in.
GX_ASSETS = re.compile(r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+)(\?[^\"')\s]*)?")
GX_IMAGE_FILES = {"logo-long.png": "logo-long.png", "full_logo_dark.png": "logo-long.png"}
# Subresource-integrity and CORS attributes make sense for a CDN; on a file:// page a crossorigin
# request is refused, so the local copies are loaded plainly.
_CDN_ATTRIBUTES = re.compile(r'\s+(?:integrity="sha\d+-[^"]*"|crossorigin="anonymous")')
_STATIC_REF = re.compile(r"""(?<=["'(])(?:\.\.?/)*static/""")
# What a page would fetch: <script src>, <link href>, <img src>, CSS url(...) and @import.
_REMOTE_FETCH = re.compile(
    r"""<(?:script|img|link|source|iframe)\b[^>]*?\b(?:src|href|srcset)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')\s]+)|@import\s+["']((?:https?:)?//[^"']+)""", re.IGNORECASE)


# --- the site -------------------------------------------------------------------------------------------
def copy_vendor(docs_dir: Path, vendor_dir: Path = VENDOR_DIR) -> Path:
    """Copy the vendored files into ``<docs_dir>/static/vendor`` unless the same set is there already."""
    target = docs_dir / SITE_VENDOR
    sums = vendor_dir / CHECKSUMS
    if not sums.is_file():
        raise FileNotFoundError(f"{sums} missing: the Data Docs assets are not vendored "
                                "(python -m jobs.quality.data_docs --vendor)")
    if (target / CHECKSUMS).is_file() and filecmp.cmp(sums, target / CHECKSUMS, shallow=False):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".vendor_", dir=target.parent))
    try:
        shutil.copytree(vendor_dir, staging, dirs_exist_ok=True)
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError:   # another build put the folder there meanwhile: keep it if it is the same set
            if not ((target / CHECKSUMS).is_file() and filecmp.cmp(sums, target / CHECKSUMS, shallow=False)):
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def localise_html(text: str, static_prefix: str) -> str:
    """``text`` with every CDN asset of GX's templates replaced by its copy under ``static_prefix``
    (the path from the page to the site's ``static`` folder, ending in ``/``)."""
    for url, local in CDN_FILES.items():
        text = text.replace(url, static_prefix + local.removeprefix("static/"))

    def gx_image(m: re.Match) -> str:
        name = GX_IMAGE_FILES.get(m.group(1))
        return f"{static_prefix}images/{name}" if name else m.group(0)

    text = GX_ASSETS.sub(gx_image, text)
    # GX's favicon link on a validation page climbs one folder too few; every reference to the site's
    # static folder is set to the path computed for the page.
    text = _STATIC_REF.sub(static_prefix, text)
    return _CDN_ATTRIBUTES.sub("", text)


def remote_fetches(text: str) -> list[str]:
    """URLs on other hosts that a browser would fetch to show ``text`` (links to follow are not fetched)."""
    return [next(g for g in m.groups() if g) for m in _REMOTE_FETCH.finditer(text)]


def localise(docs_dir: Path, pages: Iterable[Path]) -> list[Path]:
    """Make ``pages`` (HTML files of the site at ``docs_dir``) use the local copies; returns the pages changed.
    A remote asset left over (a GX upgrade naming a file not vendored) is logged with the page."""
    copy_vendor(docs_dir)
    changed = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(docs_dir / "static", page.parent)).as_posix() + "/"
        new = localise_html(text, prefix)
        if new != text:
            tmp = page.with_name(f".{page.name}.tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
            changed.append(page)
        left = remote_fetches(new)
        if left:
            log.error("Data Docs page %s still loads %d remote asset(s), e.g. %s: vendor them (jobs/quality/data_docs.py)",
                      page, len(left), left[0])
    return changed


# --- vendoring (python -m jobs.quality.data_docs --vendor) -------------------------------------------------------
def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def vendor(dest: Path = VENDOR_DIR) -> None:
    """Fetch every pinned package with ``npm pack``, check its integrity, and write the files the pages
    need, the licence texts, ``SHA256SUMS`` and ``README.md`` (what comes from where, under which licence)."""
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "vendor"
        staging.mkdir()
        for p in PACKAGES:
            out = subprocess.run(["npm", "pack", p.spec, "--json", "--pack-destination", tmp],
                                 capture_output=True, text=True, check=True).stdout
            tarball = Path(tmp) / json.loads(out)[0]["filename"]
            data = tarball.read_bytes()
            if _integrity(data) != p.integrity:
                raise RuntimeError(f"{p.spec}: tarball integrity {_integrity(data)} is not the pinned {p.integrity}")
            with tarfile.open(tarball) as tar:
                for path in (*p.files, *p.licence_files):
                    member = tar.extractfile(f"package/{path}")
                    if member is None:
                        raise RuntimeError(f"{p.spec} has no file {path}")
                    target = staging / p.folder / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(member.read())
        _write_notes(staging)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, dest)


def checksums(vendor_dir: Path) -> dict[str, str]:
    """sha256 of every vendored file (but the checksum list itself), by path relative to ``vendor_dir``."""
    return {f.relative_to(vendor_dir).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(vendor_dir.rglob("*")) if f.is_file() and f.name != CHECKSUMS}


def _write_notes(staging: Path) -> None:
    rows = []
    for p in PACKAGES:
        texts = ", ".join(f"`{p.folder}/{f}`" for f in p.licence_files) or p.source
        rows.append(f"| `{p.spec}` | {p.licence} | {texts} | " + ", ".join(f"`{f}`" for f in p.files) + " |")
    (staging / "README.md").write_text(
        "# Data Docs assets\n\n"
        "Exact copies of the files Great Expectations' Data Docs pages load from CDNs, taken from the npm\n"
        "packages below (tarball integrity pinned in `jobs/quality/data_docs.py`). Every Data Docs build copies\n"
        "this folder into the site (`static/vendor/`) and points the pages at it, so they open offline.\n"
        "Regenerate with `python -m jobs.quality.data_docs --vendor`; do not edit by hand (`SHA256SUMS` is checked\n"
        "by the tests).\n\n"
        "| package | licence | licence text | files |\n|---|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8")
    (staging / CHECKSUMS).write_text(
        "".join(f"{digest}  {path}\n" for path, digest in checksums(staging).items()), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vendor", action="store_true", help=f"rewrite {VENDOR_DIR} from the pinned npm packages")
    args = parser.parse_args(argv)
    if not args.vendor:
        parser.error("nothing to do: give --vendor")
    vendor()
    print(f"vendored {len(PACKAGES)} packages into {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
