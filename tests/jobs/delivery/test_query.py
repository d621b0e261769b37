"""The planners' SQL CLI: table discovery, the view rewriter, the statement check and the plan guard,
output, errors, and every query of docs/queries.md on a small hand-built lake. Hostile queries and the
limits are in test_query_redteam.py.

The lake is written with the real schemas through jobs.platform.delta_tables. silver_shipments has three versions:
0 = created empty, 1 = first delivery (A, B, C, I), 2 = second delivery (D, E, F, G, H).
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest

from jobs.platform import delta_tables as lake_io
from jobs.delivery.query import (
    Refused, Table, View, _Progress, check_query_plan, check_statement, delta_tables, discover_tables, main, parse,
    prepare, rewrite, split_statements,
)
from jobs.platform.settings import Settings
from schemas.tables import QUARANTINE, SILVER

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs" / "queries.md"


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def ts(s: str) -> dt.datetime:
    """A naive datetime meaning UTC (the session time zone is UTC)."""
    return dt.datetime.fromisoformat(s)


# --- the tiny lake ------------------------------------------------------------------------------

def _frame(spark, spec, records: list[dict]):
    """A DataFrame of ``records`` with the table's declared schema; lineage columns get defaults."""
    from pyspark.sql.types import DoubleType

    names = spec.schema.fieldNames()
    rows = []
    for i, rec in enumerate(records, start=1):
        unknown = set(rec) - set(names)
        assert not unknown, f"{spec.name}: unknown columns {sorted(unknown)}"
        row = dict.fromkeys(names)
        row.update({"source_file": "test.csv", "record_no": i, "line_no": i + 1, "ingested_at": ts("2026-11-05 00:00"),
                    "file_sha256": "0" * 64, "quarantined_at": ts("2026-11-05 00:00")})
        row.update(rec)
        rows.append(tuple(float(row[f.name]) if isinstance(f.dataType, DoubleType) and row[f.name] is not None
                          else row[f.name] for f in spec.schema))
    return spark.createDataFrame(rows, spec.schema)


def ship(sid, mine, product, tonnes, day, road=0.0, rail=0.0, belt=0.0):
    legs = "|".join(f"{m}:{km:g}" for m, km in (("road", road), ("belt", belt), ("rail", rail)) if km > 0)
    return {"shipment_id": sid, "mine_id": mine, "product": product, "tonnes": tonnes, "ship_date": d(day),
            "distance_km": road + rail + belt, "legs": legs, "road_km": road, "rail_km": rail, "belt_km": belt,
            "mode_pattern": ">".join(leg.split(":")[0] for leg in legs.split("|")),
            "event_date_local": d(day)}


SHIPMENTS_V1 = [
    ship("A", "M1", "raw_coal", 1000, "2026-11-02", road=35, rail=1120),   # 1,155 km, rail 97 % -> rail
    ship("B", "M1", "raw_coal", 2000, "2026-11-02", road=600),             # road only -> not rail
    ship("C", "M2", "coke", 500, "2026-11-02", rail=800),                  # rail only -> rail
    ship("I", "M2", "raw_coal", 9000, "2026-09-30", road=800),             # road, but in the quarter before
]
SHIPMENTS_V2 = [
    ship("D", "M2", "raw_coal", 3000, "2026-11-03", road=300, rail=250),   # 550 km, rail 45 % -> not rail
    ship("E", "M1", "clean_coal", 1000, "2026-11-03", road=260, rail=260),  # 520 km, exactly 50 % -> rail
    ship("F", "M2", "raw_coal", 4000, "2026-11-03", road=500),             # exactly 500 km -> out of scope
    ship("G", "M1", "raw_coal", 700, "2026-11-03", road=120),              # short haul -> out of scope
    ship("H", "M2", "raw_coal", 12000, "2026-11-03", rail=900),            # rail only -> rail
]

MINES = [
    {"mine_id": "M1", "company_id": "C1", "mine_type": "underground", "banner": "Zhungeer"},
    {"mine_id": "M2", "company_id": "C2", "mine_type": "open_pit", "banner": "Etuoke"},
]
COMPANIES = [{"company_id": "C1", "company_name": "Alpha Coal"}, {"company_id": "C2", "company_name": "Beta Energy"}]
TRUCKS = [
    {"vin": "V1", "company_id": "C1", "powertrain": "BEV", "battery_kwh": 141, "rated_payload_t": 34.5},
    {"vin": "V2", "company_id": "C1", "powertrain": "BEV", "battery_kwh": 282, "rated_payload_t": 33},
    {"vin": "V3", "company_id": "C1", "powertrain": "DIESEL", "rated_payload_t": 35.5},
    {"vin": "V4", "company_id": "C2", "powertrain": "FCEV", "battery_kwh": 100, "h2_tank_kg": 56,
     "rated_payload_t": 34},
    {"vin": "V5", "company_id": "C2", "powertrain": "DIESEL", "rated_payload_t": 35.5},
]
STATIONS = [
    {"station_id": "CS1", "company_id": "C1", "banner": "Zhungeer", "in_mine_area": True},
    {"station_id": "CS2", "company_id": "C2", "banner": "Etuoke", "in_mine_area": True},
]
CONNECTORS = [
    {"station_id": "CS1", "connector_id": "1", "rated_kw": 360},
    {"station_id": "CS1", "connector_id": "2", "rated_kw": 360},
    {"station_id": "CS2", "connector_id": "1", "rated_kw": 240},
]


def session(sid, station, connector, vin, plug_in_utc, local_day, kwh):
    start = ts(plug_in_utc)
    return {"session_id": sid, "station_id": station, "connector_id": connector, "vin": vin,
            "plug_in_ts_utc": start, "plug_out_ts_utc": start + dt.timedelta(hours=1),
            "meter_start_kwh": 1000.0, "meter_stop_kwh": 1000.0 + kwh, "energy_kwh": kwh,
            "event_date_local": d(local_day)}


SESSIONS = [
    session("S1", "CS1", "1", "V1", "2026-11-02 02:00", "2026-11-02", 100.0),
    session("S2", "CS1", "2", "V2", "2026-11-02 03:00", "2026-11-02", 150.5),
    session("S3", "CS1", "1", "V1", "2026-11-03 02:00", "2026-11-03", 80.0),
    session("S4", "CS2", "1", "V2", "2026-11-02 05:00", "2026-11-02", 59.5),
    session("S5", "CS2", "1", None, "2026-11-03 05:00", "2026-11-03", 40.0),   # charger sent no VIN
]


def status(station, connector, at_utc, code, local_day):
    names = {1: "idle", 2: "occupied_not_charging", 3: "charging"}
    return {"station_id": station, "connector_id": connector, "status_ts_utc": ts(at_utc), "status_code": code,
            "status": names[code], "event_date_local": d(local_day)}


# 18:00 Beijing = 10:00 UTC.
CONNECTOR_STATUS = [
    status("CS1", "1", "2026-11-01 20:00:00", 1, "2026-11-02"),   # 04:00 local
    status("CS1", "1", "2026-11-02 09:30:00", 3, "2026-11-02"),   # charging at 18:00 on the 2nd
    status("CS1", "1", "2026-11-02 11:00:00", 1, "2026-11-02"),
    status("CS1", "2", "2026-11-01 12:00:00", 2, "2026-11-01"),   # plugged in since the evening before
    status("CS1", "2", "2026-11-02 10:30:00", 1, "2026-11-02"),   # after 18:00: does not count on the 2nd
    status("CS2", "1", "2026-11-02 09:00:00", 3, "2026-11-02"),
    status("CS2", "1", "2026-11-02 09:59:59", 1, "2026-11-02"),   # idle one second before 18:00
    status("CS2", "1", "2026-11-03 10:00:00", 2, "2026-11-03"),   # exactly 18:00 counts; holds on the 4th
    status("CS2", "1", "2026-11-04 10:00:01", 1, "2026-11-04"),   # one second after 18:00 on the 4th
]


def ticket(tid, vin, mine, at_utc, net_t, local_day):
    return {"ticket_id": tid, "vin": vin, "mine_id": mine, "load_ts_utc": ts(at_utc), "net_t": net_t,
            "event_date_local": d(local_day)}


WEIGHBRIDGE = [
    ticket("T1", "V1", "M1", "2026-11-02 01:00", 30.5, "2026-11-02"),
    ticket("T2", "V1", "M1", "2026-11-02 04:00", 31.5, "2026-11-02"),
    ticket("T3", "V3", "M1", "2026-11-02 05:00", 33.0, "2026-11-02"),
    ticket("T4", "V4", "M2", "2026-11-03 02:00", 32.0, "2026-11-03"),
]


def frame(vin, at_utc, local_day, delivery_day):
    return {"vin": vin, "event_ts_utc": ts(at_utc), "event_date_local": d(local_day),
            "source_file": f"telematics/{delivery_day}/frames_{delivery_day.replace('-', '')}_g00.jsonl.gz"}


TELEMATICS = [
    frame("V1", "2026-11-02 01:00", "2026-11-02", "2026-11-02"),
    frame("V1", "2026-11-02 01:00:10", "2026-11-02", "2026-11-02"),
    frame("V2", "2026-11-02 02:00", "2026-11-02", "2026-11-02"),
    frame("V1", "2026-11-03 01:00", "2026-11-03", "2026-11-03"),
    frame("V2", "2026-11-02 03:00", "2026-11-02", "2026-11-03"),   # one day late
    frame("V2", "2026-11-01 03:00", "2026-11-01", "2026-11-03"),   # two days late
]


def bad(source, field, reason, source_file, landing_day):
    return {"source": source, "landing_date": d(landing_day), "source_file": source_file, "field": field,
            "reason": reason, "raw_record": "..."}


QUARANTINED = [
    bad("telematics", "vehicle.soc", "vehicle.soc: raw value 130 outside the valid range",
        "telematics/2026-11-02/f.jsonl", "2026-11-02"),
    bad("telematics", "vehicle.soc", "vehicle.soc: raw value 140 outside the valid range",
        "telematics/2026-11-02/f.jsonl", "2026-11-02"),
    bad("telematics", None, "malformed JSON (truncated or invalid line)", "telematics/2026-11-03/g.jsonl",
        "2026-11-03"),
    bad("shipments", "tonnes", "tonnes: value -5 below minimum 0", "shipments/2026-11-03/s.csv", "2026-11-03"),
]


# Spark compiles code for every new plan; on a few rows that costs more than running the plan
# interpreted (same trade-off and settings as tests/jobs/kpi/conftest.py). Restored after the module.
FAST_TINY_QUERIES = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    from concurrent.futures import ThreadPoolExecutor

    previous = {k: spark.conf.get(k, None) for k in FAST_TINY_QUERIES}
    for k, v in FAST_TINY_QUERIES.items():
        spark.conf.set(k, v)
    root = tmp_path_factory.mktemp("query") / "lake"
    settings = Settings(lake_root=root, landing_root=root.parent / "landing")

    def write(spec, records):
        lake_io.append(_frame(spark, spec, records), spec, settings)

    def write_shipments():
        spec = SILVER["shipments"]
        for batch in (SHIPMENTS_V1, SHIPMENTS_V2):   # MERGEd per delivery, as ingestion does
            lake_io.merge_upsert(_frame(spark, spec, batch), spec,
                            partition_values={r["event_date_local"] for r in batch}, settings=settings)

    tables = [(SILVER[source], records) for source, records in [
        ("mines", MINES), ("companies", COMPANIES), ("trucks", TRUCKS), ("charging_stations", STATIONS),
        ("charging_connectors", CONNECTORS), ("charging_sessions", SESSIONS), ("connector_status", CONNECTOR_STATUS),
        ("weighbridge", WEIGHBRIDGE), ("telematics", TELEMATICS)]] + [(QUARANTINE, QUARANTINED)]
    # Eleven tables, ~20 Delta commits: most of their time is commit latency, so write them side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(write_shipments)] + [pool.submit(write, spec, records) for spec, records in tables]
        for f in futures:
            f.result()
    yield root
    for k, v in previous.items():
        if v is None:
            spark.conf.unset(k)
        else:
            spark.conf.set(k, v)


def versions(lake_root: Path) -> dict[str, int | None]:
    return {name: t.version for name, t in discover_tables(lake_root).items()}


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- discovery (no Spark) -----------------------------------------------------------------------

def test_discovery_finds_every_delta_folder_with_layer_and_version(tmp_path):
    for rel, commits in [("silver/silver_a", 3), ("gold/gold_b", 1), ("ops/quarantine", 2)]:
        log = tmp_path / rel / "_delta_log"
        log.mkdir(parents=True)
        for v in range(commits):
            (log / f"{v:020d}.json").write_text("{}")
        (log / f"{0:020d}.crc").write_text("{}")
    (tmp_path / "silver" / "not_delta").mkdir()          # no _delta_log: not a table
    (tmp_path / "silver" / "bad-name" / "_delta_log").mkdir(parents=True)   # not an SQL identifier
    (tmp_path / ".trash" / "x" / "_delta_log").mkdir(parents=True)

    tables = discover_tables(tmp_path)

    assert {n: (t.layer, t.version) for n, t in tables.items()} == {
        "silver_a": ("silver", 2), "gold_b": ("gold", 0), "quarantine": ("ops", 1)}
    assert list(tables) == ["silver_a", "gold_b", "quarantine"]   # bronze, silver, gold, ops order
    assert discover_tables(tmp_path / "missing") == {}


# --- rewriter (no Spark) ------------------------------------------------------------------------

TABLES = {"silver_shipments": Table("silver_shipments", "silver", Path("/lake/silver/silver_shipments")),
          "quarantine": Table("quarantine", "ops", Path("/lake/ops/quarantine"))}
LAYERS = {("silver", "silver_shipments"): TABLES["silver_shipments"], ("ops", "quarantine"): TABLES["quarantine"]}
V3, V1 = "`silver_shipments VERSION AS OF 3`", "`silver_shipments VERSION AS OF 1`"


@pytest.mark.parametrize("sql, expected, views", [
    ("SELECT * FROM silver_shipments VERSION AS OF 3", f"SELECT * FROM {V3}", {"silver_shipments version as of 3"}),
    ("select * from Silver_Shipments timestamp as of '2026-11-03' s",
     "select * from `silver_shipments TIMESTAMP AS OF 2026-11-03` s", {"silver_shipments timestamp as of 2026-11-03"}),
    ("SELECT * FROM x TIMESTAMP AS OF TIMESTAMP'2026-11-03 08:00:00' JOIN silver_shipments FOR SYSTEM_VERSION AS OF 1",
     f"SELECT * FROM x TIMESTAMP AS OF TIMESTAMP'2026-11-03 08:00:00' JOIN {V1}", {"silver_shipments version as of 1"}),
    ("SELECT * FROM `silver_shipments` FOR SYSTEM_VERSION AS OF '1'", f"SELECT * FROM {V1}",
     {"silver_shipments version as of 1"}),
    ("SELECT * FROM silver.silver_shipments VERSION AS OF 1", f"SELECT * FROM {V1}", {"silver_shipments version as of 1"}),
    ("SELECT * FROM silver.silver_shipments", "SELECT * FROM silver_shipments", {"silver_shipments"}),
    ("desc detail ops.quarantine", "desc detail quarantine", {"quarantine"}),
    ("DESCRIBE HISTORY silver_shipments LIMIT 2", "DESCRIBE HISTORY silver_shipments LIMIT 2", {"silver_shipments"}),
    ("SELECT * FROM silver_shipments s JOIN quarantine q ON true",
     "SELECT * FROM silver_shipments s JOIN quarantine q ON true", {"silver_shipments", "quarantine"}),
    # strings, comments and other qualifiers are not table references
    ("SELECT 'silver_shipments VERSION AS OF 1' -- silver_shipments VERSION AS OF 2\nFROM quarantine",
     "SELECT 'silver_shipments VERSION AS OF 1' -- silver_shipments VERSION AS OF 2\nFROM quarantine", {"quarantine"}),
    ("SELECT * FROM other.silver_shipments VERSION AS OF 1", "SELECT * FROM other.silver_shipments VERSION AS OF 1",
     set()),
    # not a literal version: left as it is, for the plan guard to refuse
    ("SELECT * FROM silver_shipments VERSION AS OF 1 + 1", f"SELECT * FROM {V1} + 1", {"silver_shipments version as of 1"}),
    ("SELECT * FROM silver_shipments TIMESTAMP AS OF now()", "SELECT * FROM silver_shipments TIMESTAMP AS OF now()",
     {"silver_shipments"}),
])
def test_rewrite_points_names_and_time_travel_at_views(sql, expected, views):
    text, found = rewrite(sql, TABLES, LAYERS)
    assert text == expected
    assert set(found) == views


def test_a_time_travel_view_reads_its_version():
    _, views = rewrite("SELECT * FROM silver_shipments VERSION AS OF 3 JOIN quarantine TIMESTAMP AS OF '2026-11-03'",
                       TABLES, LAYERS)
    assert views["silver_shipments version as of 3"] == View("silver_shipments VERSION AS OF 3",
                                                             TABLES["silver_shipments"], version=3)
    assert views["quarantine timestamp as of 2026-11-03"].timestamp == "2026-11-03"


def test_a_name_in_two_layers_keeps_the_first_and_the_other_is_reachable_by_layer(tmp_path):
    for rel in ("silver/x", "gold/x"):
        (tmp_path / rel / "_delta_log").mkdir(parents=True)
    tables = discover_tables(tmp_path)
    assert tables["x"].layer == "silver"
    by_layer = {(t.layer, t.name): t for t in delta_tables(tmp_path)}
    text, views = rewrite("SELECT * FROM gold.x", tables, by_layer)
    assert text == "SELECT * FROM `gold.x`" and views["gold.x"].table.path == tmp_path / "gold" / "x"
    assert rewrite("SELECT * FROM silver.x", tables, by_layer)[0] == "SELECT * FROM x"


def test_split_statements_ignores_semicolons_in_strings_and_comments():
    assert split_statements("SELECT ';' AS a /* ; */ -- ;\n;") == ["SELECT ';' AS a /* ; */ -- ;"]
    assert split_statements("SELECT 1; DROP TABLE x;") == ["SELECT 1", "DROP TABLE x"]
    # a raw string has no escapes: r'\' is one backslash, and the ';' after it separates statements
    assert split_statements("SELECT r'\\'; DROP TABLE x") == ["SELECT r'\\'", "DROP TABLE x"]


def test_render_table_aligns_numbers_and_shows_nulls():
    from decimal import Decimal

    from jobs.delivery.query import render_table

    text = render_table(["mine", "rail_t", "share_pct", "note"],
                        [("M1", Decimal("73371.990000"), 79.07512, None), ("M10", Decimal("5.000000"), 100.0, "x" * 12)],
                        truncate=8)
    assert text.splitlines() == [
        "mine    rail_t  share_pct  note",
        "----  --------  ---------  --------",
        "M1    73371.99     79.075  NULL",
        "M10          5        100  xxxxxxx…",
    ]


# --- statement check (no Spark) and plan guard --------------------------------------------------

# (statement, fragment of the one-line refusal). The first ones stop at the statement check before
# Spark starts; the ones that start like a query stop at the plan guard.
REFUSED = [
    ("INSERT INTO silver_shipments SELECT * FROM silver_shipments", "INSERT statement"),
    ("DROP TABLE silver_shipments", "DROP statement"),
    ("DELETE FROM silver_shipments WHERE tonnes > 0", "DELETE statement"),
    ("UPDATE silver_shipments SET tonnes = 0", "UPDATE statement"),
    ("ALTER TABLE silver_shipments ADD COLUMNS (x INT)", "ALTER statement"),
    ("CREATE TABLE x AS SELECT * FROM silver_shipments", "CREATE statement"),
    ("MERGE INTO silver_shipments t USING silver_shipments s ON t.shipment_id = s.shipment_id "
     "WHEN MATCHED THEN DELETE", "MERGE statement"),
    ("OPTIMIZE silver_shipments", "OPTIMIZE statement"),
    ("VACUUM silver_shipments RETAIN 0 HOURS", "VACUUM statement"),
    ("TRUNCATE TABLE silver_shipments", "TRUNCATE statement"),
    ("RESTORE TABLE silver_shipments TO VERSION AS OF 1", "RESTORE statement"),
    ("CACHE TABLE silver_shipments", "CACHE statement"),
    ("SET spark.sql.ansi.enabled = false", "SET statement"),
    ("EXECUTE IMMEDIATE 'DROP TABLE silver_shipments'", "EXECUTE statement"),
    ("SELECT 1; DROP TABLE silver_shipments", "2 statements"),
    ("/* harmless */ DROP TABLE silver_shipments", "DROP statement"),
    ("WITH s AS (SELECT * FROM silver_shipments) INSERT INTO silver_shipments SELECT * FROM s", "InsertIntoStatement"),
    ("FROM silver_shipments INSERT INTO silver_shipments SELECT *", "InsertIntoStatement"),
    ("EXPLAIN DROP TABLE silver_shipments", "DropTable"),
    ("SELECT reflect('java.lang.System', 'exit', '0')", "function reflect()"),
    ("SHOW TBLPROPERTIES silver_shipments", "ShowTableProperties"),
]
STATEMENT_CHECK_REFUSES = REFUSED[:16]


@pytest.mark.parametrize("sql, kind", STATEMENT_CHECK_REFUSES)
def test_statement_check_refuses_other_statements_with_their_kind(sql, kind):
    with pytest.raises(Refused, match=re.escape(kind)):
        check_statement(sql)


@pytest.mark.parametrize("sql", [
    "SELECT 1;",
    "  (SELECT 1)",
    "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
    "SELECT `update`, 'DROP TABLE x' AS s FROM t -- DELETE",
    "SHOW TABLES", "DESCRIBE HISTORY silver_shipments", "DESC silver_shipments", "EXPLAIN SELECT 1",
    "VALUES (1, 2)", "TABLE silver_shipments",
])
def test_statement_check_passes_read_only_statements(sql):
    assert check_statement(sql) == sql.strip().rstrip(";")


T_VIEW = {"t": View("t", Table("t", "silver", Path("/lake/silver/t")))}


def guard(spark, sql):
    return check_query_plan(spark, parse(spark, sql), T_VIEW)


@pytest.mark.parametrize("sql, node", [
    ("INSERT INTO t SELECT 1", "InsertIntoStatement"),
    ("INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1", "InsertIntoDir"),
    ("DROP TABLE t", "DropTable"),
    ("DELETE FROM t WHERE a = 1", "DeleteFromTable"),
    ("UPDATE t SET a = 1", "UpdateTable"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MergeIntoTable"),
    ("ALTER TABLE t ADD COLUMNS (b INT)", "AddColumns"),
    ("CREATE TABLE t (a INT)", "CreateTable"),
    ("CREATE TEMP VIEW v AS SELECT 1", "CreateViewCommand"),
    ("OPTIMIZE t", "OptimizeTableCommand"),
    ("VACUUM t", "VacuumTableCommand"),
    ("RESTORE TABLE t TO VERSION AS OF 1", "RestoreTableStatement"),
    ("TRUNCATE TABLE t", "TruncateTable"),
    ("CACHE TABLE t", "CacheTable"),
    ("SET spark.x = 1", "SetCommand"),
    ("EXECUTE IMMEDIATE 'DROP TABLE t'", "ExecuteImmediateQuery"),
    ("CREATE TABLE t SHALLOW CLONE s", "CloneTableStatement"),
    ("WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", "InsertIntoStatement"),
    ("SELECT * FROM text.`/etc/passwd`", "text.`/etc/passwd` is not a table of the lake"),
    ("SELECT * FROM u", "u is not a table of the lake"),
    ("SELECT `reflect`('java.lang.System', 'getProperty', 'user.dir')", "function reflect()"),
    ("SELECT sum(a) OVER w FROM t WINDOW w AS (PARTITION BY java_method('java.lang.System', 'getenv', 'HOME'))",
     "function java_method()"),
    ("SELECT (SELECT max(x) FROM (SELECT reflect('a', 'b') AS x))", "function reflect()"),
    ("SELECT * FROM t WHERE a IN (SELECT a FROM text.`/etc/passwd`)", "text.`/etc/passwd`"),
])
def test_plan_guard_refuses_on_its_own(spark, sql, node):
    """The guard stands alone: each statement is refused from its parsed plan, whatever its first word."""
    with pytest.raises(Refused, match=re.escape(node)):
        guard(spark, sql)


@pytest.mark.parametrize("sql", [
    "SELECT 1", "WITH a AS (SELECT 1) SELECT * FROM a", "SELECT * FROM t LATERAL VIEW explode(x) e AS y",
    "SELECT a, sum(b) OVER (PARTITION BY a ORDER BY c ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
    "SELECT CASE WHEN a IS NULL THEN 'x' ELSE CAST(a AS STRING) END, transform(array(1, 2), x -> x + 1) FROM t",
    "SELECT * FROM t WHERE a IN (SELECT a FROM t) AND EXISTS (SELECT 1 FROM t) AND b LIKE 'x%'",
    "SELECT a, count(*) FROM t GROUP BY ROLLUP (a) HAVING count(*) > 1 ORDER BY 1 LIMIT 5 OFFSET 1",
    "SELECT * FROM range(3) UNION ALL SELECT * FROM VALUES (1) AS v(id)",
])
def test_plan_guard_passes_queries_over_lake_views(spark, sql):
    assert [v.name for v in guard(spark, sql)] == (["t"] if " t" in sql else [])


# --- the CLI on the tiny lake -------------------------------------------------------------------

def test_list_shows_every_table_with_layer_version_and_path(lake, capsys):
    rc, out, _ = run(capsys, "--list", "--lake-root", str(lake))
    assert rc == 0
    lines = {ln.split()[1]: ln.split() for ln in out.splitlines()[2:]}
    assert set(lines) == {f"silver_{s}" for s in ("mines", "companies", "trucks", "charging_stations",
                                                  "charging_connectors", "charging_sessions", "connector_status",
                                                  "weighbridge", "telematics", "shipments")} | {"quarantine"}
    assert lines["silver_shipments"][:3] == ["silver", "silver_shipments", "2"]
    assert lines["quarantine"][0] == "ops"
    assert lines["silver_shipments"][3] == str(lake / "silver" / "silver_shipments")


def test_show_tables_lists_a_view_per_table(lake, capsys):
    rc, out, err = run(capsys, "SHOW TABLES", "--lake-root", str(lake), "--limit", "0")
    assert rc == 0, err
    views = {ln.split()[0] for ln in out.splitlines()[2:]}   # namespace is empty for temp views
    assert views == set(discover_tables(lake))


def test_progress_line_on_a_terminal_is_cleared_at_the_end(spark, capsys):
    with _Progress(spark, enabled=True, delay_s=0) as progress:
        assert progress.drawn.wait(timeout=60)   # the first line is on the terminal (no sleep to guess it)
    err = capsys.readouterr().err
    assert "running" in err and err.endswith("\r\033[K")


def test_select_prints_hand_computed_numbers(lake, capsys):
    # Current shipments per mine: M1 = A 1000 + B 2000 + E 1000 + G 700 = 4700 t over 4 shipments;
    # M2 = C 500 + I 9000 + D 3000 + F 4000 + H 12000 = 28500 t over 5.
    rc, out, err = run(capsys, "SELECT mine_id, count(*) AS shipments, sum(tonnes) AS tonnes FROM silver_shipments "
                               "GROUP BY mine_id ORDER BY mine_id", "--lake-root", str(lake))
    assert rc == 0, err
    assert out.splitlines() == [
        "mine_id  shipments  tonnes",
        "-------  ---------  ------",
        "M1               4    4700",
        "M2               5   28500",
    ]
    assert err.startswith("(2 rows;")


def test_layer_qualified_names_and_ops_tables_resolve(lake, spark):
    rows = prepare(spark, "SELECT count(*) AS n FROM ops.quarantine JOIN silver.silver_mines ON true", lake).collect()
    assert rows[0]["n"] == 4 * 2


def test_limit_prints_a_note_when_rows_are_cut(lake, capsys):
    rc, out, err = run(capsys, "SELECT shipment_id FROM silver_shipments ORDER BY shipment_id", "--limit", "2",
                       "--lake-root", str(lake))
    assert rc == 0
    assert out.splitlines()[2:] == ["A", "B"]
    assert "first 2 rows shown; more exist" in err


def test_version_as_of_returns_the_old_rows(lake, spark):
    def ids(sql):
        return sorted(r[0] for r in prepare(spark, sql, lake).collect())

    assert ids("SELECT shipment_id FROM silver_shipments VERSION AS OF 1") == ["A", "B", "C", "I"]
    assert ids("SELECT shipment_id FROM silver_shipments") == ["A", "B", "C", "D", "E", "F", "G", "H", "I"]
    assert ids("SELECT shipment_id FROM silver.silver_shipments VERSION AS OF 0") == []
    v1_committed = prepare(spark, "DESCRIBE HISTORY silver_shipments", lake).filter("version = 1").first()["timestamp"]
    assert ids(f"SELECT shipment_id FROM silver_shipments TIMESTAMP AS OF '{v1_committed}'") == ["A", "B", "C", "I"]


def test_describe_history_lists_every_version(lake, capsys):
    rc, out, err = run(capsys, "DESCRIBE HISTORY silver_shipments", "--lake-root", str(lake), "--truncate", "20")
    assert rc == 0, err
    assert [ln.split()[0] for ln in out.splitlines()[2:]] == ["2", "1", "0"]
    operations = [re.search(r"(MERGE|WRITE|CREATE TABLE)", ln).group(1) for ln in out.splitlines()[2:]]
    # both ingests bring days whose partitions are still empty: written by replaceWhere, not MERGE
    assert operations == ["WRITE", "WRITE", "CREATE TABLE"]


@pytest.mark.parametrize("sql, kind", REFUSED + [("SELEC 1", "SELEC statement"),
                                       ("SELECT * FROM silver_nothing", "silver_nothing is not a table of the lake")])
def test_cli_refuses_writes_and_leaves_the_lake_unchanged(lake, capsys, sql, kind):
    before = versions(lake)
    rc, out, err = run(capsys, sql, "--lake-root", str(lake))
    assert rc == 3
    assert out == ""
    assert err.startswith("refused: ") and kind in err and len(err.strip().splitlines()) == 1
    assert versions(lake) == before


def lake_files(lake_root: Path) -> dict[str, tuple[int, int]]:
    """Every file of the lake with its size and modification time (ns)."""
    return {str(p.relative_to(lake_root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(lake_root.rglob("*"))}


def test_the_lake_is_unchanged_after_all_refusals(lake, spark, capsys):
    """Runs every refused statement itself (independent of test order), then compares the whole lake."""
    files = lake_files(lake)
    for sql, _ in REFUSED:
        assert main([sql, "--lake-root", str(lake)]) == 3, sql
    capsys.readouterr()
    assert lake_files(lake) == files
    assert versions(lake)["silver_shipments"] == 2      # as built: created, then two deliveries
    assert {v for k, v in versions(lake).items() if k != "silver_shipments"} == {1}
    assert prepare(spark, "SELECT count(*) FROM silver_shipments", lake).first()[0] == 9


def test_csv_output_has_every_row_in_query_order(lake, capsys, tmp_path):
    target = tmp_path / "out" / "shipments.csv"
    rc, out, err = run(capsys, "SELECT shipment_id, tonnes, ship_date, rail_km > 0 AS by_rail FROM silver_shipments "
                               "ORDER BY shipment_id", "--csv", str(target), "--limit", "1", "--lake-root", str(lake))
    assert rc == 0, err
    assert out.startswith(f"wrote 9 rows to {target}")
    rows = list(csv.reader(target.open()))
    assert rows[0] == ["shipment_id", "tonnes", "ship_date", "by_rail"]
    assert rows[1] == ["A", "1000.0", "2026-11-02", "true"]
    assert [r[0] for r in rows[1:]] == list("ABCDEFGHI")


def test_parquet_output_is_a_new_directory_with_every_row(lake, capsys, tmp_path, spark):
    target = tmp_path / "parquet_out"
    rc, out, err = run(capsys, "SELECT * FROM silver_weighbridge", "--parquet", str(target), "--lake-root", str(lake))
    assert rc == 0, err
    assert out.startswith(f"wrote 4 rows to {target}")
    assert spark.read.parquet(str(target)).agg({"net_t": "sum"}).first()[0] == pytest.approx(127.0)
    # never overwritten: a second run into the same directory is an error, the files stay
    rc, _, err = run(capsys, "SELECT 1 AS x", "--parquet", str(target), "--lake-root", str(lake))
    assert rc == 1 and "already exists" in err
    assert spark.read.parquet(str(target)).count() == 4


def test_output_inside_the_lake_is_refused(lake, capsys):
    rc, _, err = run(capsys, "SELECT 1 AS x", "--csv", str(lake / "silver" / "x.csv"), "--lake-root", str(lake))
    assert rc == 3 and "inside the lake root" in err
    assert not (lake / "silver" / "x.csv").exists()


@pytest.mark.parametrize("sql, error_class", [
    ("SELECT nope FROM silver_trucks", "UNRESOLVED_COLUMN"),
    ("SELECT * FROM silver_trucks WHERE (", "PARSE_SYNTAX_ERROR"),
    ("SELECT 1 / 0", "DIVIDE_BY_ZERO"),
    ("SELECT * FROM silver_shipments VERSION AS OF 99", "Cannot time travel Delta table to version 99"),
])
def test_sql_errors_exit_non_zero_with_one_readable_line(lake, capsys, sql, error_class):
    rc, out, err = run(capsys, sql, "--lake-root", str(lake))
    assert rc == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: [") and error_class in lines[0]
    assert "at org.apache" not in err and "Traceback" not in err


# --- docs/queries.md ----------------------------------------------------------------------------

def doc_queries() -> list[tuple[str, str, list[str]]]:
    """(id, sql, documented columns) per SQL block; id = '<section>' or '<section><a|b|…>'."""
    text = DOCS.read_text(encoding="utf-8")
    sections = re.split(r"^## (?=\d+\. )", text, flags=re.M)[1:]
    out = []
    for section in sections:
        number = section.split(".", 1)[0]
        blocks = re.findall(r"```sql\n(.*?)```\s*\n\s*Columns: ([^\n]+)", section, flags=re.S)
        assert blocks, f"section {number} has no ```sql block followed by a Columns: line"
        for k, (sql, columns) in enumerate(blocks):
            qid = number if len(blocks) == 1 else number + "abcdefgh"[k]
            out.append((qid, sql, re.findall(r"`([^`]+)`", columns)))
    return out


def test_docs_have_ten_numbered_queries():
    text = DOCS.read_text(encoding="utf-8")
    titles = re.findall(r"^## (\d+)\. (.+)$", text, flags=re.M)
    assert [int(n) for n, _ in titles] == list(range(1, 11))
    assert len(doc_queries()) == text.count("```sql")   # every SQL block has its Columns: line


D2, D3, D4 = d("2026-11-02"), d("2026-11-03"), d("2026-11-04")

# Worked out by hand from the tiny lake above.
EXPECTED = {
    # sessions per station and plug-in day: CS1 on the 2nd = 100.0 + 150.5; S5 has no VIN (0 trucks)
    "1": [(D2, "CS1", "Zhungeer", 2, 2, 250.5), (D2, "CS2", "Etuoke", 1, 1, 59.5),
          (D3, "CS1", "Zhungeer", 1, 1, 80.0), (D3, "CS2", "Etuoke", 1, 0, 40.0)],
    # V2 = 150.5 + 59.5 = 210.0 over 2 sessions; V1 = 100 + 80 = 180.0; S5 (no VIN) left out
    "2": [("V2", "C1", "BEV", 282.0, 2, 210.0, 105.0), ("V1", "C1", "BEV", 141.0, 2, 180.0, 90.0)],
    # 18:00 local = 10:00 UTC. 2nd: CS1/1 charging since 09:30, CS1/2 plugged since the 1st -> 2/2;
    # CS2/1 idle at 09:59:59 -> 0/1. 3rd: CS1 both idle; CS2/1 occupied at exactly 10:00:00 -> 1/1.
    # 4th: CS2/1 still occupied (its next event is 10:00:01) -> 1/1.
    "3": [(D2, "CS1", "Zhungeer", 2, 2, 100.0), (D3, "CS2", "Etuoke", 1, 1, 100.0),
          (D4, "CS2", "Etuoke", 1, 1, 100.0)],
    # M1 on the 2nd: 30.5 + 31.5 + 33.0 = 95.0 t on V1, V3; mean 31.666... -> 31.67
    "4": [(D2, "M1", "C1", "Zhungeer", 3, 2, 95.0, 31.67), (D3, "M2", "C2", "Etuoke", 1, 1, 32.0, 32.0)],
    # In scope: > 500 km coal/coke. M1 Nov: A + E rail (2000 t), B road (2000 t) -> 50 % / 50 %;
    # M2 Nov: C + H rail (12500 t = 80.6 %), D road>rail at 45 % rail km (3000 t = 19.4 %); M2 Sep: I road.
    "5": {(d("2026-09-01"), "M2", "road", False, 1, 9000.0, 100.0),
          (d("2026-11-01"), "M1", "road>rail", True, 2, 2000.0, 50.0),
          (d("2026-11-01"), "M1", "road", False, 1, 2000.0, 50.0),
          (d("2026-11-01"), "M2", "rail", True, 2, 12500.0, 80.6),
          (d("2026-11-01"), "M2", "road>rail", False, 1, 3000.0, 19.4)},
    # Q4 2026: Zhungeer (M1) A + E rail of A, B, E = 2000 / 4000 = 50 %; Etuoke (M2) C + H of C, D, H
    # = 12500 / 15500 = 80.6 % (not below 80); F (exactly 500 km), G (120 km) and I (September) are out.
    "6": [("Zhungeer", 3, 4000.0, 2000.0, 50.0)],
    # C1: V1, V2 BEV + V3 diesel -> 2/3 = 66.7 %; C2: V4 FCEV + V5 diesel -> 50 %
    "7": [("C1", "Alpha Coal", 3, 2, 0, 1, 66.7), ("C2", "Beta Energy", 2, 0, 1, 1, 50.0)],
    "8": [("telematics", "vehicle.soc", 2, 1, D2, D2, "vehicle.soc: raw value 130 outside the valid range"),
          ("shipments", "tonnes", 1, 1, D3, D3, "tonnes: value -5 below minimum 0"),
          ("telematics", "(whole record)", 1, 1, D3, D3, "malformed JSON (truncated or invalid line)")],
    # delivered on the 3rd: 3 frames, one 1 day late and one 2 days late, both V2 -> 2/3 = 66.67 %
    "9": [(D2, 3, 0, 0.0, 0, None), (D3, 3, 2, 66.67, 1, 2)],
    # version 1 = A, B, C, I; now all nine (see test_select_prints_hand_computed_numbers)
    "10b": [("M1", 2, 4, 3000.0, 4700.0, 1700.0), ("M2", 2, 5, 9500.0, 28500.0, 19000.0)],
}


@pytest.mark.parametrize("qid, sql, columns", doc_queries(), ids=[q[0] for q in doc_queries()])
def test_docs_query_runs_with_the_documented_columns(lake, spark, qid, sql, columns):
    check_statement(sql)   # every documented query passes the checks as written
    df = prepare(spark, sql, lake)
    assert df.columns == columns
    rows = [tuple(r) for r in df.collect()]
    if qid == "10a":   # DESCRIBE HISTORY: one row per version, newest first
        assert [(r[0], r[4]) for r in rows] == [(2, "WRITE"), (1, "WRITE"), (0, "CREATE TABLE")]
        return
    expected = EXPECTED[qid]
    if isinstance(expected, set):   # ties in the documented order: compare as a set
        assert set(rows) == expected
    else:
        assert rows == expected


# --- statements the CLI answers itself, limits in the docs ---------------------------------------

def test_show_tables_filters_by_layer_and_pattern(lake, spark):
    def names(sql):
        return sorted(r["tableName"] for r in prepare(spark, sql, lake).collect())

    assert names("SHOW TABLES IN ops") == ["quarantine"]
    # silver_c*: companies, charging_stations, charging_connectors, charging_sessions, connector_status
    assert names("SHOW TABLES LIKE 'silver_c*'") == ["silver_charging_connectors", "silver_charging_sessions",
                                                      "silver_charging_stations", "silver_companies",
                                                      "silver_connector_status"]


def test_describe_and_time_travel_with_an_alias(lake, spark):
    columns = [r["col_name"] for r in prepare(spark, "DESCRIBE silver_mines", lake).collect()]
    assert columns == SILVER["mines"].schema.fieldNames()   # the declared schema, in order
    detail = prepare(spark, "DESCRIBE DETAIL silver.silver_shipments", lake).first()
    assert detail["format"] == "delta" and detail["location"].endswith("silver_shipments")
    rows = prepare(spark, "SELECT s.shipment_id FROM silver_shipments VERSION AS OF 1 AS s ORDER BY s.shipment_id",
                   lake).collect()
    assert [r[0] for r in rows] == ["A", "B", "C", "I"]   # version 1 = the first delivery


def test_explain_prints_the_plan_of_a_checked_query(lake, capsys):
    rc, out, err = run(capsys, "EXPLAIN SELECT mine_id FROM silver_mines WHERE banner = 'Etuoke'", "--lake-root",
                       str(lake))
    assert rc == 0, err
    assert out.startswith("== Physical Plan ==") and "silver/silver_mines" in out and "Etuoke" in out


def test_docs_list_the_limits_with_the_settings_defaults():
    text = DOCS.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\s*\| `(query_\w+)` \| (\d+) \|", text, flags=re.M))
    fields = Settings.model_fields
    assert documented == {name: str(int(fields[name].default)) for name in
                          ("query_timeout_s", "query_max_rows", "query_memory_mb")}
