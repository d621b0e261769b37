"""The gold catalogue: the build writes exactly the declared tables with exactly the declared schemas, and
the Assets, the extract packs, the reports, the SQL CLI and docs/kpis.md all take their tables from it."""
from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import re
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.delivery import extracts, query
from jobs.delivery.report import data as report_data
from jobs.kpi import build as gold_build
from jobs.kpi.build import BuildResult, GoldBuild, UndeclaredTable
from jobs.platform import delta_log
from jobs.platform.settings import Settings
from schemas import gold
from schemas.reference_tables import REFERENCE

REPO = Path(__file__).resolve().parents[2]
BUILT = {t.name for t in gold.written_by(gold.KPI_BUILD)}
DAY = dt.date(2026, 11, 3)


def _delta_schema(path: Path) -> T.StructType:
    """A table's schema as its Delta log states it (nullability included)."""
    from deltalake import DeltaTable

    return T.StructType.fromJson(json.loads(DeltaTable(str(path)).schema().to_json()))


# --- the build against the catalogue ---------------------------------------------------------------------------

def test_the_build_writes_every_declared_table_and_nothing_else(sample_gold_lake):
    settings, result = sample_gold_lake
    assert set(result.tables) == BUILT
    folders = {p.name for p in settings.gold_root.iterdir() if (p / "_delta_log").is_dir()}
    # the reference copies are declared in schemas/reference_tables.py; every other gold table in the catalogue
    assert folders == BUILT | {f"ref_{name}" for name in REFERENCE}


def test_every_built_table_has_its_declared_schema_partition_and_a_unique_key(spark, sample_gold_lake):
    settings, _ = sample_gold_lake
    for name in sorted(BUILT):
        table = gold.table(name)
        path = delta_log.table_path(table.spec, settings)
        assert _delta_schema(path) == table.schema, name
        df = spark.read.format("delta").load(str(path))
        from deltalake import DeltaTable

        assert DeltaTable(str(path)).metadata().partition_columns == [table.period_col], name
        assert df.count() > 0, name
        assert df.groupBy(*table.key).count().filter(F.col("count") > 1).count() == 0, f"{name}: key {table.key}"


@pytest.fixture()
def one_day_build(spark, tmp_path):
    """A build's writer on an empty lake, without inputs (the tests below hand it the rows)."""
    settings = Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")
    return GoldBuild(spark, settings, inputs=None, days=[DAY], months=[DAY.replace(day=1)],
                     result=BuildResult([DAY], [DAY.replace(day=1)]))


def _declared_rows(spark, name: str):
    """One row of a declared table: every column filled, with the schema exactly as declared."""
    schema = gold.table(name).schema
    samples = {T.StringType: "x", T.DoubleType: 1.0, T.LongType: 1, T.IntegerType: 1, T.DateType: DAY,
               T.BooleanType: True}
    row = {f.name: samples[type(f.dataType)] for f in schema.fields}
    return spark.createDataFrame([tuple(row[f.name] for f in schema.fields)], schema)


def test_a_table_without_a_declaration_stops_the_build_before_anything_is_written(spark, one_day_build):
    rows = _declared_rows(spark, "gold_h2_rollup_daily")
    with pytest.raises(UndeclaredTable, match="gold_h2_rollup_weekly is not a declared gold table"):
        one_day_build.write("gold_h2_rollup_weekly", rows)
    # declared, but written by another job
    with pytest.raises(UndeclaredTable, match="gold_charging_forecast is declared as written by"):
        one_day_build.write("gold_charging_forecast", rows)
    assert not (one_day_build.settings.gold_root).exists()


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop("fills"), r"missing \['fills'\]"),
    (lambda df: df.withColumn("extra_kg", F.lit(1.0)), r"new \['extra_kg'\]"),
    (lambda df: df.select(*reversed(df.columns)), "in another order"),
    (lambda df: df.withColumn("h2_kg", F.col("h2_kg").cast("float")), "h2_kg: float, declared double"),
    # a transform that may now produce nulls where the declaration promises none
    (lambda df: df.withColumn("stations", F.when(F.col("stations") > 0, F.col("stations"))),
     "stations: nullable, declared NOT NULL"),
])
def test_a_transform_output_that_differs_from_its_declaration_stops_the_build(spark, one_day_build, change, message):
    rows = change(_declared_rows(spark, "gold_h2_rollup_daily"))
    with pytest.raises(UndeclaredTable, match=message):
        one_day_build.write("gold_h2_rollup_daily", rows)
    assert not delta_log.table_exists(gold.table("gold_h2_rollup_daily").spec, one_day_build.settings)


def test_rows_of_the_declared_schema_are_written_to_a_table_created_with_it(spark, one_day_build):
    written = one_day_build.write("gold_h2_rollup_daily", _declared_rows(spark, "gold_h2_rollup_daily"))
    table = gold.table("gold_h2_rollup_daily")
    assert written.count() == 1 and one_day_build.result.tables == {"gold_h2_rollup_daily": 1}
    assert _delta_schema(delta_log.table_path(table.spec, one_day_build.settings)) == table.schema


def test_each_family_function_writes_exactly_its_familys_declared_tables():
    assert list(gold_build.FAMILIES) != [] and set(gold_build.FAMILIES) == set(gold.families(gold.KPI_BUILD))
    for family, builder in gold_build.FAMILIES.items():
        assert set(builder.needs) <= set(gold_build.FAMILIES) - {family}, family
        # every table a family function names, but those it reads from other families (``outputs``)
        named = set(re.findall(r'(?<!outputs\[)(?<!out\[)"(gold_\w+)"', inspect.getsource(builder.build)))
        assert named == {t.name for t in gold.written_by(gold.KPI_BUILD) if t.family == family}, family


# --- declarations --------------------------------------------------------------------------------------------

def test_declarations_are_consistent():
    with pytest.raises(ValueError, match="key/period not among the columns"):
        gold.GoldTable("gold_x", "washing", grain="x", key=("x_id",), period_col="date_local",
                       owner=gold.CITY_WIDE, columns=(("date_local", gold.DATE),), not_extracted="test")
    with pytest.raises(ValueError, match="either an extract title or the reason"):
        gold.GoldTable("gold_x", "washing", grain="x", key=("date_local",), period_col="date_local",
                       owner=gold.CITY_WIDE, columns=(("date_local", gold.DATE),))
    with pytest.raises(ValueError, match="owner column"):
        gold.GoldTable("gold_x", "washing", grain="x", key=("date_local",), period_col="date_local",
                       owner=gold.company(), columns=(("date_local", gold.DATE),), extract_title="x")
    with pytest.raises(ValueError, match="unknown owner kind"):
        gold.Owner("fleet", "fleet_id")
    for t in gold.TABLES:
        assert t.name.startswith("gold_") and t.spec.partition_cols == (t.period_col,)
        # a table in the packs must say whose rows are whose; city-wide rows are nobody's
        assert not (t.extracts and t.owner.kind == gold.CITY), t.name


def test_catalogue_imports_without_spark():
    # the DAG files import it while Airflow parses them
    probe = "import sys, schemas.gold; print('pyspark' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_docs_table_index_is_generated_from_the_catalogue():
    text = gold.DOCS_FILE.read_text(encoding="utf-8")
    assert gold.docs_with_index(text) == text, "run: python -m schemas.gold --write-docs"
    for t in gold.TABLES:
        assert f"| `{t.name}` |" in text


# --- what is driven by it ------------------------------------------------------------------------------------

def test_assets_are_the_tables_declared_as_assets():
    dags = str(REPO / "dags")
    if dags not in sys.path:   # what Airflow does for its DAG folder
        sys.path.insert(0, dags)
    assets = importlib.import_module("assets")
    assert list(assets.GOLD) == [t.name for t in gold.assets()]
    assert {a.name for a in assets.GOLD_BUILT} == {t.name for t in gold.assets() if t.name in BUILT}
    assert {a.name for a in assets.GOLD_EXTRACTED} == {t.name for t in gold.extracted() if t.asset}


def test_extract_packs_take_their_tables_and_owner_rules_from_the_catalogue():
    assert [t.name for t in extracts.TABLES] == [t.name for t in gold.extracted()]
    for t in extracts.TABLES:
        declared = gold.table(t.name)
        assert (t.owner_col, t.owner_kind, t.refs, t.title) == (declared.owner.column, declared.owner.kind,
                                                                 declared.owner.checks, declared.extract_title)
    assert extracts.EXCLUDED_TABLES == {t.name: t.not_extracted for t in gold.TABLES if not t.extracts}


def test_reports_read_only_the_tables_declared_for_them_and_all_of_those():
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "jobs/delivery/report").glob("*.py"))
    named = set(re.findall(r'"(gold_\w+)"', source)) & set(gold.GOLD)
    assert named == {t.name for t in gold.reported()}
    with pytest.raises(KeyError, match="not declared for the reports"):
        report_data.gold_spec("gold_h2_rollup_daily")
    assert report_data.gold_spec("gold_h2_rollup_monthly") == gold.table("gold_h2_rollup_monthly").spec


def test_sql_cli_lists_what_a_row_of_each_gold_table_is(tmp_path):
    table = query.Table("gold_charging_station_monthly", "gold", tmp_path)
    assert query.table_content(table) == "one row per charging station × month"
    assert query.table_content(query.Table("silver_mines", "silver", tmp_path)) == ""
