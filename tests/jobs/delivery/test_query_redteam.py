"""Hostile queries against the planners' SQL CLI: every one ends with one line (refused, or an error or a
limit reached), and neither the lake nor anything outside it changes.

The lake is three small Delta tables written with delta-rs (no Spark needed to build it): silver_shipments
with three versions (created, 2 rows, 3 rows), gold_kpi and ops/quarantine. A second lake beside it stands
for "another lake". Each case compares every file of both lakes (size and modification time) before and
after, and checks that the canary folder outside the lakes was not created.

Queries that exhaust memory run the real command line in a child process: its JVM has the query's memory
bound, and a bomb must fail the query there, not end the test session's JVM.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.delivery.query import EXIT_REFUSED, EXIT_SQL_ERROR, MAX_STATEMENT_CHARS, discover_tables, main

REPO = Path(__file__).resolve().parents[3]
REFUSED, ERROR = EXIT_REFUSED, EXIT_SQL_ERROR


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    """(lake, other_lake, canary): two lakes written by delta-rs and a path that must never appear."""
    import pyarrow as pa
    from deltalake import write_deltalake

    root = tmp_path_factory.mktemp("redteam")
    lake, other = root / "lake", root / "other_lake"
    ship = str(lake / "silver" / "silver_shipments")
    schema = pa.schema([("shipment_id", pa.string()), ("tonnes", pa.float64())])
    write_deltalake(ship, pa.Table.from_pylist([], schema))                                   # version 0
    write_deltalake(ship, pa.Table.from_pylist([{"shipment_id": "A", "tonnes": 1000.0},
                                                {"shipment_id": "B", "tonnes": 2000.0}], schema), mode="append")
    write_deltalake(ship, pa.Table.from_pylist([{"shipment_id": "C", "tonnes": 500.0}], schema), mode="append")
    write_deltalake(str(lake / "gold" / "gold_kpi"), pa.table({"kpi": ["rail_share_pct"], "value": [80.6]}))
    write_deltalake(str(lake / "ops" / "quarantine"), pa.table({"source": ["telematics"], "reason": ["bad"]}))
    write_deltalake(str(other / "silver" / "secret"), pa.table({"password": ["hunter2"]}))
    return lake, other, root / "canary"


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def run_cli(capsys, lakes, sql: str, *flags: str) -> tuple[int, str, str]:
    lake, other, canary = lakes
    before = (files(lake), files(other))
    versions = {n: t.version for n, t in discover_tables(lake).items()}
    rc = main([sql, "--lake-root", str(lake), *flags])
    out, err = capsys.readouterr()
    assert (files(lake), files(other)) == before, "a file in a lake changed"
    assert {n: t.version for n, t in discover_tables(lake).items()} == versions == {
        "silver_shipments": 2, "gold_kpi": 0, "quarantine": 0}
    assert not canary.exists()
    return rc, out, err


def assert_one_line(err: str, rc: int, expected_rc: int, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert rc == expected_rc, err
    assert len(lines) == 1, err
    assert lines[0].startswith("refused: " if expected_rc == REFUSED else "error: "), err
    assert fragment in lines[0], err
    assert "Traceback" not in err and "at org.apache" not in err


# (query, exit status, fragment of the one line). {lake}, {other} and {canary} are filled in per run.
FILES = [
    ("SELECT count(*) FROM text.`/etc/passwd`", REFUSED, "text.`/etc/passwd` is not a table of the lake"),
    ("SELECT * FROM csv.`/etc/passwd`", REFUSED, "csv.`/etc/passwd` is not a table"),
    ("SELECT * FROM json.`/etc/passwd`", REFUSED, "json.`/etc/passwd` is not a table"),
    ("SELECT * FROM binaryFile.`/etc`", REFUSED, "binaryFile.`/etc` is not a table"),
    ("SELECT * FROM parquet.`{lake}/silver/silver_shipments`", REFUSED, "is not a table of the lake"),
    ("SELECT * FROM orc.`/tmp`", REFUSED, "orc.`/tmp` is not a table"),
    ("SELECT * FROM delta.`{other}/silver/secret`", REFUSED, "is not a table of the lake"),
    ("SELECT * FROM delta.`{lake}/silver/silver_shipments`", REFUSED, "is not a table of the lake"),
    ("SELECT * FROM `text`.`/etc/passwd`", REFUSED, "text.`/etc/passwd`"),
    ("SELECT * FROM TEXT.`/etc/passwd`", REFUSED, "TEXT.`/etc/passwd`"),
    ("SELECT * FROM `/etc/passwd`", REFUSED, "`/etc/passwd` is not a table"),
    ("SELECT * FROM `file:/etc/passwd`", REFUSED, "is not a table"),
    ("SELECT * FROM IDENTIFIER('text.`/etc/passwd`')", REFUSED, "IDENTIFIER(...) is not accepted"),
    ("SELECT * FROM IDENTIFIER('silver_shipments')", REFUSED, "IDENTIFIER(...) is not accepted"),
    ("SELECT * FROM silver_shipments WHERE shipment_id IN (SELECT value FROM text.`/etc/passwd`)", REFUSED,
     "text.`/etc/passwd`"),
    ("WITH p AS (SELECT * FROM text.`/etc/passwd`) SELECT * FROM p", REFUSED, "text.`/etc/passwd`"),
    ("SELECT * FROM silver_shipments s JOIN json.`/etc/hosts` h ON true", REFUSED, "json.`/etc/hosts`"),
    ("SELECT * FROM silver_shipments, LATERAL (SELECT * FROM text.`/etc/passwd`)", REFUSED, "text.`/etc/passwd`"),
    ("SELECT (SELECT max(value) FROM text.`/etc/passwd`) AS x", REFUSED, "text.`/etc/passwd`"),
    ("SELECT * FROM spark_catalog.default.silver_shipments", REFUSED, "spark_catalog.default.silver_shipments"),
    ("SELECT * FROM global_temp.silver_shipments", REFUSED, "global_temp.silver_shipments"),
    ("SELECT * FROM other.secret", REFUSED, "other.secret is not a table"),
    ("SELECT * FROM secret", REFUSED, "secret is not a table"),
    ("SELECT * FROM read_files('/etc/passwd')", REFUSED, "table function read_files()"),
    ("SELECT * FROM table_changes('silver_shipments', 0)", REFUSED, "table function table_changes()"),
    ("SELECT * FROM table_changes_by_path('{lake}/silver/silver_shipments', 0)", REFUSED, "table_changes_by_path()"),
    ("SELECT * FROM sql_keywords()", REFUSED, "table function sql_keywords()"),
    ("TABLE text.`/etc/passwd`", REFUSED, "text.`/etc/passwd`"),
    ("EXPLAIN SELECT * FROM text.`/etc/passwd`", REFUSED, "text.`/etc/passwd`"),
    ("DESCRIBE HISTORY delta.`{other}/silver/secret`", REFUSED, "DESCRIBE HISTORY of delta."),
    ("DESCRIBE DETAIL '{other}/silver/secret'", REFUSED, "DESCRIBE DETAIL of a path"),
    ("DESCRIBE text.`/etc/passwd`", REFUSED, "DESCRIBE of text./etc/passwd"),
    ("SELECT * FROM silver_shipments TIMESTAMP AS OF reflect('java.lang.System', 'getProperty', 'user.dir')",
     REFUSED, "needs a lake table name and a literal"),
]
REFLECTION = [
    ("SELECT reflect('java.lang.System', 'getProperty', 'user.dir')", REFUSED, "function reflect()"),
    ("SELECT `reflect`('java.lang.System', 'getProperty', 'user.dir')", REFUSED, "function reflect()"),
    ("SELECT REFLECT('java.lang.System', 'getProperty', 'user.dir')", REFUSED, "function REFLECT()"),
    ("SELECT java_method('java.lang.System', 'getenv', 'PATH')", REFUSED, "function java_method()"),
    ("SELECT `java_method`('java.lang.System', 'setProperty', 'user.dir', '/')", REFUSED, "function java_method()"),
    ("SELECT try_reflect('java.lang.System', 'getenv', 'HOME')", REFUSED, "function try_reflect()"),
    ("SELECT r'\\' AS a, reflect('java.lang.System', 'getProperty', 'user.dir') AS b", REFUSED, "function reflect()"),
    ("SELECT r'\\', `reflect`('java.lang.System', 'getenv', 'HOME') -- '", REFUSED, "function reflect()"),
    ("SELECT reflect('org.apache.spark.util.Utils', 'createDirectory', '{lake}/silver', 'x')", REFUSED,
     "function reflect()"),
    ("SELECT java_method('org.apache.spark.util.Utils', 'createDirectory', '{canary}', 'x')", REFUSED,
     "function java_method()"),
    ("SELECT system.builtin.reflect('java.lang.System', 'getenv', 'HOME')", REFUSED, "system.builtin.reflect()"),
    ("SELECT builtin.java_method('java.lang.System', 'getenv', 'HOME')", REFUSED, "builtin.java_method()"),
    ("SELECT IDENTIFIER('reflect')('java.lang.System', 'getenv', 'HOME')", REFUSED, "IDENTIFIER(...)"),
    ("SELECT sum(tonnes) OVER w FROM silver_shipments WINDOW w AS "
     "(PARTITION BY reflect('java.lang.System', 'getenv', 'HOME'))", REFUSED, "function reflect()"),
    ("SELECT * FROM silver_shipments ORDER BY java_method('java.lang.System', 'getenv', 'HOME')", REFUSED,
     "java_method()"),
    ("SELECT shipment_id FROM silver_shipments GROUP BY shipment_id "
     "HAVING max(reflect('java.lang.System', 'getenv', 'HOME')) > ''", REFUSED, "function reflect()"),
    ("SELECT transform(array(1), x -> reflect('java.lang.System', 'getenv', 'HOME'))", REFUSED, "function reflect()"),
    ("WITH c AS (SELECT reflect('java.lang.System', 'getenv', 'HOME') AS h) SELECT * FROM c", REFUSED,
     "function reflect()"),
    ("SELECT * FROM silver_shipments WHERE tonnes > (SELECT length(java_method('java.lang.System', 'getenv', "
     "'HOME')))", REFUSED, "function java_method()"),
    ("SELECT h FROM silver_shipments LATERAL VIEW explode(array(reflect('java.lang.System', 'getenv', 'HOME'))) "
     "t AS h", REFUSED, "function reflect()"),
    ("SELECT count(*) FROM silver_shipments GROUP BY reflect('java.lang.System', 'getenv', 'HOME')", REFUSED,
     "function reflect()"),
    ("SELECT * FROM silver_shipments a JOIN silver_shipments b "
     "ON reflect('java.lang.System', 'getenv', 'HOME') = a.shipment_id", REFUSED, "function reflect()"),
    ("SELECT 1 LIMIT length(reflect('java.lang.System', 'getenv', 'HOME'))", REFUSED, "function reflect()"),
    ("VALUES (reflect('java.lang.System', 'getProperty', 'user.dir'))", REFUSED, "function reflect()"),
    ("SELECT * FROM silver_shipments DISTRIBUTE BY java_method('java.lang.System', 'getenv', 'HOME')", REFUSED,
     "function java_method()"),
    ("SELECT * FROM silver_shipments PIVOT (sum(tonnes) FOR shipment_id IN "
     "(reflect('java.lang.System', 'getenv', 'HOME')))", REFUSED, "function reflect()"),
    # a Cyrillic "е" in the name: unquoted it does not parse; quoted it is an unknown function
    ("SELECT r\u0435flect('java.lang.System', 'getenv', 'HOME')", ERROR, "INVALID_IDENTIFIER"),
    ("SELECT `r\u0435flect`('java.lang.System', 'getenv', 'HOME')", REFUSED, "function `r\u0435flect`()"),
    ("SELECT current_user", REFUSED, "CurrentUser"),
    ("SELECT current_user()", REFUSED, "function current_user()"),
    ("SELECT session_user()", REFUSED, "function session_user()"),
    ("SELECT version()", REFUSED, "function version()"),
    ("SELECT input_file_name(), * FROM silver_shipments", REFUSED, "function input_file_name()"),
    ("SELECT xpath_string('<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>', '/a')", REFUSED,
     "function xpath_string()"),
    ("SELECT from_protobuf(CAST('' AS BINARY), 'M', '/etc/passwd')", REFUSED, "function from_protobuf()"),
    ("SELECT aes_decrypt(unbase64('x'), 'k')", REFUSED, "function aes_decrypt()"),
]
COMMANDS = [
    ("CREATE FUNCTION f AS 'com.evil.F' USING JAR '/tmp/evil.jar'", REFUSED, "CREATE statement"),
    ("CREATE TEMPORARY FUNCTION f AS 'org.apache.hadoop.hive.ql.udf.UDFReflect'", REFUSED, "CREATE statement"),
    ("ADD JAR /tmp/evil.jar", REFUSED, "ADD statement"),
    ("ADD FILE /etc/passwd", REFUSED, "ADD statement"),
    ("LIST FILES", REFUSED, "LIST statement"),
    ("SET spark.sql.runSQLOnFiles = true", REFUSED, "SET statement"),
    ("SET", REFUSED, "SET statement"),
    ("RESET", REFUSED, "RESET statement"),
    ("USE other", REFUSED, "USE statement"),
    ("CACHE TABLE silver_shipments", REFUSED, "CACHE statement"),
    ("CACHE LAZY TABLE c AS SELECT * FROM silver_shipments", REFUSED, "CACHE statement"),
    ("UNCACHE TABLE silver_shipments", REFUSED, "UNCACHE statement"),
    ("CLEAR CACHE", REFUSED, "CLEAR statement"),
    ("REFRESH TABLE silver_shipments", REFUSED, "REFRESH statement"),
    ("REFRESH '{lake}/silver'", REFUSED, "REFRESH statement"),
    ("MSCK REPAIR TABLE silver_shipments", REFUSED, "MSCK statement"),
    ("INSERT INTO silver_shipments SELECT * FROM silver_shipments", REFUSED, "INSERT statement"),
    ("INSERT OVERWRITE DIRECTORY '{canary}' USING csv SELECT 1", REFUSED, "INSERT statement"),
    ("WITH a AS (SELECT 1 AS x) INSERT OVERWRITE DIRECTORY '{canary}' USING csv SELECT * FROM a", REFUSED,
     "InsertIntoDir"),
    ("FROM silver_shipments INSERT OVERWRITE TABLE silver_shipments SELECT *", REFUSED, "InsertIntoStatement"),
    ("DELETE FROM silver_shipments", REFUSED, "DELETE statement"),
    ("UPDATE silver_shipments SET tonnes = 0", REFUSED, "UPDATE statement"),
    ("MERGE INTO silver_shipments t USING silver_shipments s ON true WHEN MATCHED THEN DELETE", REFUSED,
     "MERGE statement"),
    ("CREATE TABLE evil USING delta LOCATION '{lake}/silver/evil' AS SELECT 1 AS x", REFUSED, "CREATE statement"),
    ("CREATE OR REPLACE TEMP VIEW silver_shipments AS SELECT 1 AS x", REFUSED, "CREATE statement"),
    ("DROP TABLE silver_shipments", REFUSED, "DROP statement"),
    ("ALTER TABLE silver_shipments SET TBLPROPERTIES ('delta.logRetentionDuration' = '0 days')", REFUSED,
     "ALTER statement"),
    ("VACUUM silver_shipments RETAIN 0 HOURS", REFUSED, "VACUUM statement"),
    ("OPTIMIZE silver_shipments", REFUSED, "OPTIMIZE statement"),
    ("RESTORE TABLE silver_shipments TO VERSION AS OF 0", REFUSED, "RESTORE statement"),
    ("CONVERT TO DELTA parquet.`{canary}`", REFUSED, "CONVERT statement"),
    ("GENERATE symlink_format_manifest FOR TABLE silver_shipments", REFUSED, "GENERATE statement"),
    ("EXPLAIN INSERT INTO silver_shipments SELECT * FROM silver_shipments", REFUSED, "InsertIntoStatement"),
    ("EXPLAIN CREATE TABLE evil (x INT)", REFUSED, "CreateTable"),
    ("DESCRIBE QUERY SELECT reflect('java.lang.System', 'getenv', 'HOME')", REFUSED, "DescribeQueryCommand"),
    ("DESCRIBE FUNCTION reflect", REFUSED, "DescribeFunction"),
    ("SHOW FUNCTIONS", REFUSED, "ShowFunctions"),
    ("SHOW CREATE TABLE silver_shipments", REFUSED, "ShowCreateTable"),
    ("SHOW TBLPROPERTIES silver_shipments", REFUSED, "ShowTableProperties"),
    ("EXECUTE IMMEDIATE 'SELECT reflect(''java.lang.System'', ''getenv'', ''HOME'')'", REFUSED,
     "EXECUTE statement"),
    ("DECLARE VARIABLE v STRING DEFAULT reflect('java.lang.System', 'getenv', 'HOME')", REFUSED,
     "DECLARE statement"),
    ("CALL sys.evil()", REFUSED, "CALL statement"),
    ("BEGIN SELECT 1; END", REFUSED, "2 statements"),
]
TRICKS = [
    ("SELECT 1; DROP TABLE silver_shipments", REFUSED, "2 statements"),
    ("SELECT 1 /* ; */ ; INSERT INTO silver_shipments SELECT * FROM silver_shipments", REFUSED, "2 statements"),
    ("SELECT 1 -- ;\n; DROP TABLE silver_shipments", REFUSED, "2 statements"),
    ("SELECT ';' ; DROP TABLE silver_shipments", REFUSED, "2 statements"),
    ("-- SELECT\nDROP TABLE silver_shipments", REFUSED, "DROP statement"),
    ("/* a /* nested */ SELECT */ DROP TABLE silver_shipments", REFUSED, "DROP statement"),
    ("( DROP TABLE silver_shipments )", REFUSED, "DROP statement"),
    ("SELECT 1\uff1bDROP TABLE silver_shipments", ERROR, "PARSE_SYNTAX_ERROR"),             # fullwidth ';'
    ("\uff33\uff25\uff2c\uff25\uff23\uff34 1", REFUSED, "statement"),                       # fullwidth SELECT
    ("DR\u200bOP TABLE silver_shipments", REFUSED, "DR statement"),                         # zero-width space
    ("SELECT * FROM silver_shipments; \uff24\uff32\uff2f\uff30 TABLE x", REFUSED, "2 statements"),
    ("SELECT /*+ REPARTITION(100000) */ * FROM silver_shipments", REFUSED, "hint REPARTITION"),
    ("SELECT * FROM silver_shipments VERSION AS OF 99", ERROR, "Cannot time travel Delta table to version 99"),
    ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r", REFUSED, "UnionLoopRef"),
    ("SELECT count(*) FROM (SELECT explode(sequence(1, 100000000000)))", ERROR, "COLLECTION_SIZE_LIMIT_EXCEEDED"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, ERROR, "StackOverflowError"),
    ("SELECT " + "abs(" * 500 + "1" + ")" * 500, ERROR, "FAILED_TO_PARSE_TOO_COMPLEX"),
    ("SELECT '" + "x" * MAX_STATEMENT_CHARS + "'", REFUSED, f"at most {MAX_STATEMENT_CHARS:,} are accepted"),
]
CASES = FILES + REFLECTION + COMMANDS + TRICKS


def _fill(sql: str, lakes) -> str:
    lake, other, canary = lakes
    return sql.replace("{lake}", str(lake)).replace("{other}", str(other)).replace("{canary}", str(canary))


def test_there_are_at_least_eighty_hostile_queries():
    assert len(CASES) + len(MEMORY_BOMBS) + 4 >= 80   # + the 4 limit tests below
    assert len({sql for sql, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("sql, expected_rc, fragment", CASES, ids=[f"{i:03d}" for i in range(len(CASES))])
def test_hostile_query_ends_with_one_line_and_changes_nothing(spark, lakes, capsys, sql, expected_rc, fragment):
    rc, out, err = run_cli(capsys, lakes, _fill(sql, lakes))
    assert out == ""
    assert_one_line(err, rc, expected_rc, _fill(fragment, lakes))


def test_reading_the_lake_still_works_after_the_refusals(spark, lakes, capsys):
    """The guard is not a wall: a join, time travel and history on the same lake give hand-counted rows."""
    # version 1 = A 1000 + B 2000 = 3000 t; now also C 500 -> 3500 t over 3 rows
    rc, out, err = run_cli(capsys, lakes, "SELECT count(*) AS n, sum(tonnes) AS t FROM silver_shipments "
                                          "JOIN gold_kpi ON true")
    assert rc == 0, err
    assert out.splitlines()[2].split() == ["3", "3500"]
    rc, out, err = run_cli(capsys, lakes, "SELECT sum(tonnes) FROM silver_shipments VERSION AS OF 1")
    assert rc == 0 and out.splitlines()[2].strip() == "3000", err
    rc, out, err = run_cli(capsys, lakes, "DESCRIBE HISTORY silver.silver_shipments")
    assert rc == 0 and [ln.split()[0] for ln in out.splitlines()[2:]] == ["2", "1", "0"], err


# --- limits -------------------------------------------------------------------------------------

def test_a_huge_cross_join_is_cancelled_at_the_timeout(spark, lakes, capsys):
    # 3 shipments x 10^6 x 10^6 = 3 * 10^12 rows: hours of work, cut at 3 s
    started = time.monotonic()
    rc, out, err = run_cli(capsys, lakes, "SELECT count(*) FROM silver_shipments CROSS JOIN range(1000000) a "
                                          "CROSS JOIN range(1000000) b", "--timeout-s", "3")
    elapsed_s = time.monotonic() - started
    assert_one_line(err, rc, ERROR, "[QUERY_TIMEOUT] the query ran longer than 3 s")
    assert elapsed_s < 60
    deadline = time.monotonic() + 30      # the cancelled jobs end too (tasks interrupted), not only the CLI
    while spark.sparkContext.statusTracker().getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert spark.sparkContext.statusTracker().getActiveJobsIds() == []


def test_printing_all_rows_stops_at_the_row_limit(spark, lakes, capsys):
    # range(11) has 11 rows > --max-rows 10; the same query with --max-rows 11 prints all 11
    rc, out, err = run_cli(capsys, lakes, "SELECT * FROM range(11)", "--limit", "0", "--max-rows", "10")
    assert out == ""
    assert_one_line(err, rc, ERROR, "[QUERY_ROW_LIMIT] the result has more than 10 rows")
    rc, out, err = run_cli(capsys, lakes, "SELECT * FROM range(11)", "--limit", "0", "--max-rows", "11")
    assert rc == 0 and len(out.splitlines()) == 2 + 11, err


def test_a_csv_over_the_row_limit_is_not_left_behind(spark, lakes, capsys, tmp_path):
    target = tmp_path / "big.csv"
    rc, out, err = run_cli(capsys, lakes, "SELECT * FROM range(11)", "--csv", str(target), "--max-rows", "10")
    assert_one_line(err, rc, ERROR, "[QUERY_ROW_LIMIT]")
    assert not target.exists()


def test_a_parquet_over_the_row_limit_is_not_left_behind(spark, lakes, capsys, tmp_path):
    target = tmp_path / "big_parquet"
    rc, out, err = run_cli(capsys, lakes, "SELECT * FROM range(11)", "--parquet", str(target), "--max-rows", "10")
    assert_one_line(err, rc, ERROR, "[QUERY_ROW_LIMIT]")
    assert not target.exists()


# --- memory: the real command line, in its own JVM ---------------------------------------------

MEMORY_BOMBS = [
    "SELECT size(sequence(1, 1000000000))",                                        # 8 GB of longs at once
    "SELECT length(aggregate(sequence(1, 40), 'x', (acc, x) -> concat(acc, acc)))",  # doubling: 2^40 chars
    "SELECT length(repeat(repeat('x', 40000), 40000))",                            # 1.6 G chars in one value
    "SELECT size(collect_list(repeat('x', 1000))) FROM range(10000000)",           # one 10 GB group
    # a cross join printed whole (--limit 0) is bounded by the result size, not the JVM
    "SELECT s.shipment_id, r.id, repeat('x', 200) AS pad FROM silver_shipments s CROSS JOIN range(3000000) r",
]


def test_memory_bombs_fail_the_query_with_one_line_in_a_bounded_jvm(lakes):
    """One child process runs the bombs one after the other: after each, the JVM is still there (the next
    bomb and a normal query still get their answer), so an out-of-memory task ends its query, not the engine."""
    lake, other, canary = lakes
    before = (files(lake), files(other))
    script = (
        "import sys\n"
        "from jobs.delivery.query import main\n"
        "for sql in sys.argv[1:-1]:\n"
        "    rc = main([sql, '--lake-root', sys.argv[-1], '--memory-mb', '1024', '--limit', '0', "
        "'--max-rows', '100000000'], hard_exit=True)\n"
        "    print(f'rc={rc}', file=sys.stderr, flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", script, *MEMORY_BOMBS, "SELECT count(*) FROM silver_shipments",
                           str(lake)], capture_output=True, text=True, env=env, timeout=900)
    # stderr also has the JVM's start-up notices (before the first query); take what follows them
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "refused:", "rc=", "("))]
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [lines[i:i + 2] for i in range(0, len(lines), 2)]
    assert len(results) == len(MEMORY_BOMBS) + 1, proc.stderr[-3000:]
    for bomb, (message, rc) in zip(MEMORY_BOMBS, results):
        assert rc == "rc=1", (bomb, message)
        assert message.startswith("error: [QUERY_MEMORY_LIMIT]") and "1,024 MB of heap" in message, (bomb, message)
    assert results[-1][1] == "rc=0" and proc.stdout.strip().endswith("3")   # the engine still answers
    assert "Traceback" not in proc.stderr and "at org.apache" not in proc.stderr
    assert (files(lake), files(other)) == before and not canary.exists()
