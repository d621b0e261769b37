"""requirements.txt declares what the pipeline imports, requirements-dev.txt what only the tests and the
benchmark add, and requirements.lock pins both.

Imports are read from the source with ``ast`` (every ``import`` and ``from ... import``, also those inside
functions) and mapped to the installed distributions that provide them with
``importlib.metadata.packages_distributions()``. A distribution that ships no code of its own (a
meta-package such as ``apache-airflow``) stands for the distributions it requires unconditionally.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME_ROOTS = ("jobs", "dags", "models", "data_samples", "schemas")
DEV_ROOTS = ("tests", "jobs/tools/bench", "scripts")
RUNTIME_EXCLUDED = ("jobs/tools/bench",)          # the benchmark is tooling: its peers are dev extras
# Declared for the runtime although no module imports them, and why.
NOT_IMPORTED = {"psycopg2-binary": "SQLAlchemy loads it from Airflow's metadata database URL",
                "grpcio-status": "PySpark's Spark Connect client (COALCHAIN_SPARK_REMOTE) requires it at session start"}
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> dict[str, str]:
    """{distribution: pinned version} of a requirements file, following ``-r`` includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(requirements(path.parent / line[3:].strip()))
            continue
        m = PIN.fullmatch(line)
        assert m, f"{path.name}: {raw!r} is not pinned to one version (name==version)"
        pins[normalise(m.group(1))] = m.group(2)
    return pins


def local_names() -> set[str]:
    """Top-level names that are the project's own: its packages, and the DAG folder's modules (Airflow
    puts dags/ on the import path)."""
    names = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file()}
    return names | {p.stem for p in (REPO / "dags").glob("*.py")}


def imports(roots: tuple[str, ...], excluded: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """{top-level module: files importing it} for the third-party imports of the .py files under ``roots``."""
    own = local_names() | set(sys.stdlib_module_names) | {"__future__"}
    found: dict[str, set[str]] = {}
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if any(rel.startswith(e + "/") for e in excluded):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in own:
                        found.setdefault(top, set()).add(rel)
    return found


def ships_code(dist: md.Distribution) -> bool:
    """Whether the distribution installs anything besides its metadata and scripts."""
    return any(not (str(f).startswith("..") or str(f).split("/")[0].endswith(".dist-info")) for f in dist.files or [])


def provided(declared: set[str]) -> set[str]:
    """The declared distributions, plus the unconditional requirements of those that ship no code."""
    out = set(declared)
    for name in declared:
        dist = md.distribution(name)
        if not ships_code(dist):
            out |= {normalise(re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0])
                    for r in dist.requires or [] if "extra ==" not in r}
    return out


def uncovered(found: dict[str, set[str]], declared: set[str]) -> dict[str, tuple[list[str], list[str]]]:
    """{module: (its distributions, files importing it)} for the imports no declared distribution provides."""
    by_module = md.packages_distributions()
    have = provided(declared)
    missing = {}
    for module, files in sorted(found.items()):
        dists = sorted({normalise(d) for d in by_module.get(module, [])})
        if not set(dists) & have:
            missing[module] = (dists or ["(not installed)"], sorted(files)[:3])
    return missing


RUNTIME = requirements(REPO / "requirements.txt")
ALL = requirements(REPO / "requirements-dev.txt")
LOCK = requirements(REPO / "requirements.lock")


def test_every_runtime_import_is_declared_in_requirements_txt():
    found = imports(RUNTIME_ROOTS, RUNTIME_EXCLUDED)
    assert {"pyspark", "delta", "airflow", "jinja2"} <= set(found)      # the scan sees the pipeline's imports
    assert uncovered(found, set(RUNTIME)) == {}


def test_every_test_and_benchmark_import_is_declared_in_the_two_files():
    found = imports(DEV_ROOTS)
    assert {"pytest", "duckdb", "psutil"} <= set(found)
    assert uncovered(found, set(ALL)) == {}


def test_requirements_txt_holds_runtime_dependencies_only():
    """Each runtime distribution provides something the pipeline imports (or is listed, with its reason, in
    NOT_IMPORTED); test and benchmark tools are in requirements-dev.txt."""
    by_module = md.packages_distributions()
    found = imports(RUNTIME_ROOTS, RUNTIME_EXCLUDED)
    imported = {normalise(d) for module in found for d in by_module.get(module, [])}
    unused = [d for d in RUNTIME if d not in NOT_IMPORTED and not provided({d}) & imported]
    assert unused == []
    assert {"pytest", "duckdb", "psutil"} <= set(ALL) - set(RUNTIME)
    assert (REPO / "requirements-dev.txt").read_text(encoding="utf-8").count("-r requirements.txt") == 1


def test_the_lock_pins_both_files_at_their_versions():
    differing = {d: (v, LOCK.get(d)) for d, v in ALL.items() if LOCK.get(d) != v}
    assert differing == {}


@pytest.mark.parametrize("module, declared, expected", [
    ("airflow", {"apache-airflow"}, {}),                 # meta-package: its parts provide the module
    ("yaml", {"pyspark"}, {"yaml": (["pyyaml"], ["x.py"])}),
])
def test_the_check_itself_finds_what_is_missing(module, declared, expected):
    assert uncovered({module: {"x.py"}}, declared) == expected
