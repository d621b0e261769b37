"""Generic typing of raw bronze fields into silver columns, collecting every problem per row.

A row's problems are gathered into ``_errors`` (array of {field, reason}); rows with any problem go to
quarantine with the first failing field and all reasons. Spark 4 runs in ANSI mode, so every parse
here is a ``try_`` variant: a bad value becomes a recorded error, never a failed job.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

LOCAL_TS_FORMAT = "yyyy-MM-dd HH:mm:ss"
DATE_FORMAT = "yyyy-MM-dd"
ERROR_TYPE = "array<struct<field:string,reason:string>>"


@dataclass(frozen=True)
class Field:
    """One silver column typed from one raw field. ``kind``: str | double | int | long | date | local_ts | bool."""
    name: str
    src: str
    kind: str = "str"
    min_value: float | None = None
    max_value: float | None = None


def raw(src: str) -> Column:
    """The raw CSV value of ``src``: trimmed, empty → null."""
    value = F.trim(F.col("fields").getItem(src))
    return F.when(value == "", F.lit(None)).otherwise(value)


def local_ts(value: Column, tz: str) -> Column:
    """Zone-less local time text → UTC timestamp (the source zone is ``tz``)."""
    return F.to_utc_timestamp(F.try_to_timestamp(value, F.lit(LOCAL_TS_FORMAT)), tz)


def local_date_of(value: Column) -> Column:
    """Local calendar day of a zone-less local time text."""
    return F.to_date(F.try_to_timestamp(value, F.lit(LOCAL_TS_FORMAT)))


def typed(value: Column, kind: str, tz: str) -> Column:
    if kind == "str":
        return value
    if kind in ("double", "int", "long"):
        return value.try_cast(kind)
    if kind == "date":
        return F.to_date(F.try_to_timestamp(value, F.lit(DATE_FORMAT)))
    if kind == "local_ts":
        return local_ts(value, tz)
    if kind == "bool":
        lowered = F.lower(value)
        return (F.when(lowered.isin("true", "1", "yes", "y"), F.lit(True))
                .when(lowered.isin("false", "0", "no", "n"), F.lit(False)))
    raise ValueError(f"unknown field kind {kind!r}")


def error(field: str | None, reason: Column | str) -> Column:
    reason_col = F.lit(reason) if isinstance(reason, str) else reason
    return F.struct(F.lit(field).cast("string").alias("field"), reason_col.cast("string").alias("reason"))


def field_errors(spec: Field, value: Column, typed_value: Column, required: bool) -> list[Column]:
    checks = []
    if required:
        checks.append(F.when(value.isNull(), error(spec.src, "required field is empty")))
    if spec.kind != "str":
        checks.append(F.when(
            value.isNotNull() & typed_value.isNull(),
            error(spec.src, F.format_string(f"cannot read '%s' as {spec.kind}", F.substring(value, 1, 80))),
        ))
    if spec.min_value is not None:
        checks.append(F.when(typed_value < F.lit(spec.min_value), error(
            spec.src, F.format_string(f"value %s below minimum {spec.min_value:g}", typed_value.cast("string")))))
    if spec.max_value is not None:
        checks.append(F.when(typed_value > F.lit(spec.max_value), error(
            spec.src, F.format_string(f"value %s above maximum {spec.max_value:g}", typed_value.cast("string")))))
    return checks


def type_csv(bronze: DataFrame, fields: list[Field], required: tuple[str, ...], tz: str) -> DataFrame:
    """Bronze CSV rows → typed columns + ``_errors`` (+ the bronze lineage columns kept)."""
    typed_cols, checks = [], []
    for spec in fields:
        value = raw(spec.src)
        typed_value = typed(value, spec.kind, tz)
        typed_cols.append(typed_value.alias(spec.name))
        checks.extend(field_errors(spec, value, typed_value, spec.src in required))
    # a record that could not be read (ragged, unreadable, too large) has its reading error alone: its
    # fields are missing or misplaced, and "required field is empty" for each would bury the cause
    errors = F.when(F.col("parse_error").isNotNull(), F.array(error(None, F.col("parse_error")))).otherwise(
        F.array(*checks)).cast(ERROR_TYPE)
    return bronze.select(
        *lineage_columns(), *typed_cols, errors.alias("_errors"),
        *[raw(s.src).alias(f"_raw_{s.src}") for s in fields if s.kind == "local_ts"],
    )


LINEAGE_NAMES = ("source", "landing_date", "source_file", "file_sha256", "record_no", "line_no", "raw_record",
                 "ingested_at")


def lineage_columns() -> list[Column]:
    return [F.col(c) for c in LINEAGE_NAMES]


def add_errors(df: DataFrame, *checks: Column) -> DataFrame:
    """Append more checks (each a ``when(...)`` giving an error struct or null) to ``_errors``."""
    extra = F.array(*checks).cast(ERROR_TYPE)
    return df.withColumn("_errors", F.concat(F.col("_errors"), extra))


_LATE = "event day %s is %d days before delivery day %s (lateness allowance {lateness_days} days)"
_CLOCK_JUMP = "event day %s is after delivery day %s: clock jump"


def window_reason(event_day: dt.date, delivery_day: dt.date, lag_days: int, lateness_days: int) -> str:
    """The event-window error text of ``event_window_check`` for one row (for typing done outside Spark)."""
    if lag_days > lateness_days:
        return _LATE.format(lateness_days=lateness_days) % (event_day.isoformat(), lag_days, delivery_day.isoformat())
    return _CLOCK_JUMP % (event_day.isoformat(), delivery_day.isoformat())


def event_window_check(df: DataFrame, event_date: str, field: str, lateness_days: int) -> DataFrame:
    """A record may arrive up to ``lateness_days`` after its event day; an event dated after the delivery
    day (+1 day of clock tolerance) is a clock jump."""
    lag_days = F.datediff(F.col("landing_date"), F.col(event_date))
    event_day, delivery_day = F.col(event_date).cast("string"), F.col("landing_date").cast("string")
    return add_errors(
        df,
        F.when(lag_days > lateness_days, error(field, F.format_string(
            _LATE.format(lateness_days=lateness_days), event_day, lag_days, delivery_day))),
        F.when(lag_days < -1, error(field, F.format_string(_CLOCK_JUMP, event_day, delivery_day))),
    )


def finalize_errors(df: DataFrame) -> DataFrame:
    # array_compact (drop the nulls of checks that passed) is compiled code; a lambda filter is
    # interpreted per row and cost more than the whole typing of a telematics frame.
    return df.withColumn("_errors", F.array_compact(F.col("_errors")))
