"""Building blocks shared by the KPI transforms.

Exact arithmetic for graded values
----------------------------------
Silver quantities are doubles; a value graded against a standard must not depend on binary rounding
(``100000 * 0.1229 + 16000 * 1.4571 + 26396.4`` is 62000.000000000007 in doubles, which would push a
mine exactly on the 6.2 kgce/t limit into the next level). So graded numerators and denominators are
carried as decimals:

* ``QTY``    DECIMAL(22,6)  measured quantities (t, kWh, kg): a double is cast through its shortest
  decimal representation, kept to 1e-6 of its unit;
* ``FACTOR`` DECIMAL(15,7)  conversion factors, process factors and limits;
* ``EXACT``  DECIMAL(30,13) products QTY x FACTOR, exact (6 + 7 decimals) - no Spark precision loss.

Grading never divides: ``numerator <= limit x denominator`` is compared in exact decimals. The ratio
columns (``*_per_t``) are doubles for display and analysis.

Reference lookups are date-effective: a row applies on ``effective_from <= date < effective_to``
(null = open). Spark runs with ANSI mode on, so every division goes through :func:`ratio`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

QTY = T.DecimalType(22, 6)
FACTOR = T.DecimalType(15, 7)
EXACT = T.DecimalType(30, 13)
LOCAL_TZ = "Asia/Shanghai"
ELECTRICITY_BASES = ("equivalent", "equal_value")
CITY_SCOPE_ID = "ordos"


def col(c: str | Column) -> Column:
    return F.col(c) if isinstance(c, str) else c


def qty(c: str | Column) -> Column:
    return col(c).cast(QTY)


def sum_qty(c: str | Column) -> Column:
    """Sum of a quantity, kept exact and narrowed back to QTY (sums stay far below 1e16)."""
    return F.sum(qty(c)).cast(QTY)


def sum_exact(c: str | Column) -> Column:
    return F.sum(col(c).cast(EXACT)).cast(EXACT)


def times(quantity: str | Column, factor: str | Column) -> Column:
    """quantity x factor, exact (DECIMAL(22,6) x DECIMAL(15,7) = DECIMAL(38,13), narrowed to EXACT)."""
    return (qty(quantity) * col(factor).cast(FACTOR)).cast(EXACT)


def ratio(numerator: str | Column, denominator: str | Column, scale: float = 1.0) -> Column:
    """numerator / denominator as a double; null when the denominator is null or not positive."""
    num, den = col(numerator).cast("double"), col(denominator).cast("double")
    return F.when(den > 0, F.try_divide(num, den) * F.lit(scale))


def in_force(date: Column, effective_from: str = "effective_from", effective_to: str = "effective_to") -> Column:
    """A reference row applies on ``effective_from <= date < effective_to`` (null bounds are open)."""
    return (F.col(effective_from).isNull() | (F.col(effective_from) <= date)) & (
        F.col(effective_to).isNull() | (date < F.col(effective_to))
    )


def versions_label(*cols: str | Column) -> Column:
    """'v1' or 'v1+v2': the distinct non-null version ids of one row, sorted."""
    return F.array_join(F.array_sort(F.array_distinct(F.array_compact(F.array(*[col(c) for c in cols])))), "+")


def collect_versions(c: str) -> Column:
    """Aggregate: the distinct version labels of a group, split on '+', sorted and re-joined."""
    return F.array_join(F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.split(F.col(c), r"\+"))))), "+")


def check_basis(electricity_basis: str) -> None:
    if electricity_basis not in ELECTRICITY_BASES:
        raise ValueError(f"electricity_basis must be one of {ELECTRICITY_BASES}, got {electricity_basis!r}")


def with_factor(
    df: DataFrame, factors: DataFrame, *, carrier: str, basis: str, date_col: str, factor_col: str, version_col: str
) -> DataFrame:
    """Join the conversion factor of one carrier and basis in force on ``date_col`` (left join)."""
    f = factors.filter((F.col("carrier") == carrier) & (F.col("basis") == basis)).select(
        F.col("factor").cast(FACTOR).alias(factor_col),
        F.col("version").alias(version_col),
        F.col("effective_from").alias("_f_from"),
        F.col("effective_to").alias("_f_to"),
    )
    return df.join(F.broadcast(f), on=in_force(F.col(date_col), "_f_from", "_f_to"), how="left").drop("_f_from", "_f_to")


def electricity_factor(
    df: DataFrame, factors: DataFrame, *, electricity_basis: str, date_col: str,
    factor_col: str = "electricity_kgce_per_kwh", version_col: str = "_v_electricity",
) -> DataFrame:
    check_basis(electricity_basis)
    return with_factor(df, factors, carrier="electricity", basis=electricity_basis, date_col=date_col,
                       factor_col=factor_col, version_col=version_col)


# --- grading against level limits -------------------------------------------------------------------
GRADES = ("level_1", "level_2", "level_3", "above_limit")


def limit_levels(limits: DataFrame, *, type_col: str, value_col: str) -> DataFrame:
    """One row per standard, type and validity range with its level 1/2/3 maxima side by side."""
    return limits.groupBy(
        F.col("standard"), F.col("clause"), F.col(type_col).alias("_l_type"),
        F.col("effective_from").alias("_l_from"), F.col("effective_to").alias("_l_to"), F.col("version"),
    ).agg(
        *[F.max(F.when(F.col("level") == n, F.col(value_col).cast(FACTOR))).alias(f"level_{n}_max") for n in (1, 2, 3)],
        F.max(F.col("needs_review")).alias("limits_need_review"),
    ).withColumnRenamed("clause", "standard_clause").withColumnRenamed("version", "limits_version")


def grade(
    df: DataFrame, limits: DataFrame, *, type_col: str, limit_type_col: str, limit_value_col: str, date_col: str,
    numerator_col: str, denominator_col: str, unit: str,
) -> DataFrame:
    """Add the standard in force on ``date_col`` for the row's type, its level maxima and the grade.

    The grade is the lowest level n with ``numerator <= level_n_max x denominator`` (exact decimals, a
    value exactly on a limit belongs to that level); beyond level 3 it is ``above_limit``. Rows that
    cannot be graded say why: ``no_standard``, ``no_limit_available`` (the standard in force has no
    limit values on file - not a pass), ``no_output``.
    Adds: standard, standard_clause, level_{1,2,3}_max_<unit>, limits_version, limits_need_review, level, grade.
    """
    lv = limit_levels(limits, type_col=limit_type_col, value_col=limit_value_col)
    joined = df.join(
        F.broadcast(lv),
        on=(F.col(type_col) == F.col("_l_type")) & in_force(F.col(date_col), "_l_from", "_l_to"),
        how="left",
    ).drop("_l_type", "_l_from", "_l_to")
    num, den = F.col(numerator_col).cast(EXACT), F.col(denominator_col).cast(QTY)

    def within(n: int) -> Column:
        lim = F.col(f"level_{n}_max")
        return lim.isNotNull() & (num <= (lim * den))

    grade_col = (
        F.when(F.col("standard").isNull(), F.lit("no_standard"))
        .when(den.isNull() | (den <= 0), F.lit("no_output"))
        .when(num.isNull(), F.lit("no_energy_data"))
        .when(F.col("level_1_max").isNull() & F.col("level_2_max").isNull() & F.col("level_3_max").isNull(),
              F.lit("no_limit_available"))
        .when(within(1), F.lit("level_1"))
        .when(within(2), F.lit("level_2"))
        .when(within(3), F.lit("level_3"))
        .when(F.col("level_3_max").isNotNull(), F.lit("above_limit"))
        .otherwise(F.lit("no_limit_available"))
    )
    level_col = (
        F.when(grade_col == "level_1", 1).when(grade_col == "level_2", 2).when(grade_col == "level_3", 3)
        .otherwise(F.lit(None).cast("int"))
    )
    out = joined.withColumn("grade", grade_col).withColumn("level", level_col)
    for n in (1, 2, 3):
        out = out.withColumnRenamed(f"level_{n}_max", f"level_{n}_max_{unit}")
    return out


# --- roll-ups ---------------------------------------------------------------------------------------
SCOPE_COLUMNS = {"company": "company_id", "banner": "banner", "city": None}


def rollup_scopes(
    df: DataFrame, *, period_cols: Sequence[str], aggs: Iterable[Column], scopes: Sequence[str] = ("company", "banner", "city"),
) -> DataFrame:
    """Aggregate one table per company, per banner and for the whole city, stacked with
    ``scope_level`` / ``scope_id``. Callers pass sums only and derive ratios after (ratio of sums)."""
    aggs = list(aggs)
    parts = []
    for scope in scopes:
        key = SCOPE_COLUMNS[scope]
        scope_id = F.col(key) if key else F.lit(CITY_SCOPE_ID)
        parts.append(
            df.withColumn("scope_level", F.lit(scope)).withColumn("scope_id", scope_id)
            .groupBy(*period_cols, "scope_level", "scope_id").agg(*aggs)
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def month_start(c: str | Column) -> Column:
    return F.trunc(col(c), "month")


def local_ts(c: str | Column) -> Column:
    """UTC timestamp -> Asia/Shanghai wall-clock timestamp (no DST in China, so offsets are constant)."""
    return F.from_utc_timestamp(col(c), LOCAL_TZ)


def epoch_s(c: str | Column) -> Column:
    return F.unix_micros(col(c)).cast("double") / F.lit(1e6)
