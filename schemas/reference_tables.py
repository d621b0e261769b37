"""Reference data as versioned tables: conversion factors, standards thresholds, process factors,
plan targets and KPI rule parameters.

The source of truth is the checked-in CSV files in ``schemas/reference/`` (reviewed like code, one
``version`` id per row); the gold DAG loads them into Delta tables ``ref_<name>`` so every KPI row can
name the version it used and planners can time-travel to the values of a past run.

Conventions of every file:

* lines starting with ``#`` are comments (what the table is, where values come from);
* ``effective_from`` is inclusive and ``effective_to`` exclusive; empty means open-ended. Rows of the
  same key must not overlap in time (:func:`reference_overlaps` finds violations);
* ``needs_review = true`` marks a value that is an assumption or a placeholder, never a silent guess;
* numbers that are graded against or multiplied into graded values are read as ``DECIMAL(38,18)``, so
  ``6.2`` is exactly 6.2 and not the nearest binary double.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"

EXACT = T.DecimalType(38, 18)
S_, I, B, DATE = T.StringType(), T.IntegerType(), T.BooleanType(), T.DateType()


def _struct(*fields: tuple[str, T.DataType] | tuple[str, T.DataType, bool]) -> T.StructType:
    return T.StructType([T.StructField(f[0], f[1], f[2] if len(f) > 2 else True) for f in fields])


_VALIDITY = (("effective_from", DATE), ("effective_to", DATE))


@dataclass(frozen=True)
class ReferenceSpec:
    name: str
    schema: T.StructType
    key: tuple[str, ...]          # one row per key and date (effective ranges of a key must not overlap)
    description: str

    @property
    def file(self) -> Path:
        return REFERENCE_DIR / f"{self.name}.csv"

    @property
    def table_name(self) -> str:
        return f"ref_{self.name}"


REFERENCE: dict[str, ReferenceSpec] = {
    spec.name: spec
    for spec in (
        ReferenceSpec(
            "conversion_factors",
            _struct(("carrier", S_, False), ("factor", EXACT), ("unit", S_, False), ("basis", S_, False),
                    ("source", S_), ("version", S_, False), *_VALIDITY, ("needs_review", B, False),
                    ("note", S_)),
            ("carrier", "basis"),
            "kgce per unit of each energy carrier (basis equivalent | equal_value) and physical conversions.",
        ),
        ReferenceSpec(
            "mine_energy_limits",
            _struct(("standard", S_, False), ("clause", S_), ("mine_type", S_, False), ("level", I, False),
                    ("max_kgce_per_t", EXACT), *_VALIDITY, ("version", S_, False), ("needs_review", B, False),
                    ("note", S_)),
            ("mine_type", "level"),
            "Coal-mining energy limits (kgce/t raw coal) by mine type and level, with effective dates.",
        ),
        ReferenceSpec(
            "washing_limits",
            _struct(("standard", S_, False), ("clause", S_), ("coal_type", S_, False), ("level", I, False),
                    ("max_kwh_per_t", EXACT), *_VALIDITY, ("version", S_, False), ("needs_review", B, False),
                    ("note", S_)),
            ("coal_type", "level"),
            "GB 29446-2019 washing electricity limits (kWh/t raw coal fed, process-corrected).",
        ),
        ReferenceSpec(
            "washing_process_factors",
            _struct(("standard", S_, False), ("coal_type", S_, False), ("process", S_, False),
                    ("k_factor", EXACT), *_VALIDITY, ("version", S_, False), ("needs_review", B, False),
                    ("note", S_)),
            ("coal_type", "process"),
            "GB 29446-2019 process factor k by coal type and washing process.",
        ),
        ReferenceSpec(
            "plan_targets",
            _struct(("target_id", S_, False), ("description", S_, False), ("metric", S_, False),
                    ("comparator", S_, False), ("target_value", EXACT), ("unit", S_), ("target_year", I),
                    ("scope", S_, False), ("measured", B, False), ("source_clause", S_),
                    ("version", S_, False), ("needs_review", B, False), ("note", S_)),
            ("target_id",),
            "Targets of the Ordos carbon-peaking pilot plan with ids.",
        ),
        ReferenceSpec(
            "mine_register",
            _struct(("mine_id", S_, False), ("commissioned_on", DATE), ("advanced_capacity", B), ("source", S_),
                    *_VALIDITY, ("version", S_, False), ("needs_review", B, False), ("note", S_)),
            ("mine_id",),
            "Mine commissioning dates and advanced-capacity designations (plan targets T02, T03).",
        ),
        ReferenceSpec(
            "rule_parameters",
            _struct(("rule", S_, False), ("parameter", S_, False), ("value", EXACT, False), ("unit", S_),
                    *_VALIDITY, ("version", S_, False), ("needs_review", B, False), ("rationale", S_)),
            ("rule", "parameter"),
            "Parameters of KPI rules (rail-share bounds, telematics integration, loaded-trip rule).",
        ),
    )
}


def read_reference(spark: SparkSession, name: str, *, path: Path | str | None = None) -> DataFrame:
    """Read one checked-in reference file with its declared schema (no inference, fail on bad rows)."""
    if name not in REFERENCE:
        raise KeyError(f"unknown reference table {name!r}; expected one of {', '.join(sorted(REFERENCE))}")
    spec = REFERENCE[name]
    return (
        spark.read.schema(spec.schema)
        .option("header", True)
        .option("comment", "#")
        .option("mode", "FAILFAST")
        .option("enforceSchema", False)     # the header must name the declared columns, in order
        .option("dateFormat", "yyyy-MM-dd")
        .csv(str(path or spec.file))
    )


def reference_overlaps(df: DataFrame, name: str) -> DataFrame:
    """Pairs of rows of the same key whose effective ranges overlap (an empty result = consistent).

    Overlaps would make a date-effective lookup return two rows and double-count a KPI.
    """
    key = list(REFERENCE[name].key)
    validity = [F.col(c) if c in df.columns else F.lit(None).cast(DATE).alias(c) for c in ("effective_from", "effective_to")]
    rows = df.select(*key, "version", *validity).withColumn("_row", F.monotonically_increasing_id())
    a, b = rows.alias("a"), rows.alias("b")
    open_from, open_to = F.lit("0001-01-01").cast("date"), F.lit("9999-12-31").cast("date")
    cond = [F.col(f"a.{k}").eqNullSafe(F.col(f"b.{k}")) for k in key] + [
        F.col("a._row") < F.col("b._row"),
        F.coalesce(F.col("a.effective_from"), open_from) < F.coalesce(F.col("b.effective_to"), open_to),
        F.coalesce(F.col("b.effective_from"), open_from) < F.coalesce(F.col("a.effective_to"), open_to),
    ]
    return a.join(b, on=cond, how="inner").select(
        *[F.col(f"a.{k}").alias(k) for k in key],
        F.col("a.version").alias("version_a"), F.col("b.version").alias("version_b"),
    )


def rule_params(rules: DataFrame, rule: str, *, on_date: dt.date | None = None) -> dict[str, float | str]:
    """The parameters of one rule in force on ``on_date`` (default: today) as keyword arguments.

    Returns ``{parameter: value, ..., "rule_version": version}`` ready to pass to a KPI transform, so a
    transform stays a pure function of scalars while the values live in versioned reference data.
    This collects a handful of rows to the driver; it is not a transform.
    """
    day = on_date or dt.date.today()
    in_force = (F.col("effective_from").isNull() | (F.col("effective_from") <= F.lit(day))) & (
        F.col("effective_to").isNull() | (F.lit(day) < F.col("effective_to"))
    )
    rows = rules.filter((F.col("rule") == rule) & in_force).select("parameter", "value", "version").collect()
    if not rows:
        raise ValueError(f"no parameters of rule {rule!r} in force on {day}")
    names = [r["parameter"] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"rule {rule!r} has overlapping parameter rows on {day}")
    versions = sorted({r["version"] for r in rows})
    params: dict[str, float | str] = {r["parameter"]: float(r["value"]) for r in rows}
    params["rule_version"] = "+".join(versions)
    return params
