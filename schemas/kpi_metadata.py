"""Units and definitions of the gold KPI columns, kept as versioned data for delivered files.

- ``schemas/column_units.csv``: the unit of a column derived from its name (the units-in-names convention
  of docs/kpis.md), e.g. ``energy_kgce_per_t`` → ``kgce/t``. Headers of delivered workbooks read
  ``energy_kgce_per_t [kgce/t]``.
- ``schemas/kpi_definitions.csv``: a one-line definition and formula per KPI column, written from
  docs/kpis.md, shown on the cover sheet of the extract packs.

Plain Python (csv module): these are read by delivery code that runs after Spark, and by tests.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent
UNITS_FILE = SCHEMAS_DIR / "column_units.csv"
DEFINITIONS_FILE = SCHEMAS_DIR / "kpi_definitions.csv"


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@dataclass(frozen=True)
class UnitRule:
    match: str      # column | suffix
    pattern: str
    unit: str
    version: str


@dataclass(frozen=True)
class KpiDefinition:
    family: str
    kpi: str
    definition: str
    formula: str
    reference: str
    version: str


@lru_cache(maxsize=1)
def unit_rules() -> tuple[UnitRule, ...]:
    rules = tuple(UnitRule(r["match"], r["pattern"], r["unit"], r["version"]) for r in _read_csv(UNITS_FILE))
    bad = [r for r in rules if r.match not in ("column", "suffix")]
    if bad:
        raise ValueError(f"{UNITS_FILE.name}: match must be 'column' or 'suffix': {bad}")
    return rules


@lru_cache(maxsize=1)
def kpi_definitions() -> tuple[KpiDefinition, ...]:
    return tuple(KpiDefinition(**r) for r in _read_csv(DEFINITIONS_FILE))


def units_version() -> str:
    return "+".join(sorted({r.version for r in unit_rules()}))


def definitions_version() -> str:
    return "+".join(sorted({d.version for d in kpi_definitions()}))


def column_unit(column: str) -> str | None:
    """The unit of a column: an exact column entry, else the longest matching suffix, else None."""
    rules = unit_rules()
    for rule in rules:
        if rule.match == "column" and rule.pattern == column:
            return rule.unit
    suffixes = [r for r in rules if r.match == "suffix" and f"_{column}".endswith(r.pattern)]
    return max(suffixes, key=lambda r: len(r.pattern)).unit if suffixes else None


def header_with_unit(column: str) -> str:
    unit = column_unit(column)
    return f"{column} [{unit}]" if unit else column
