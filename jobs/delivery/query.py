"""Planners' SQL CLI: read-only Spark SQL over the Delta tables of the lake, and nothing else.

    python -m jobs.delivery.query "SELECT banner, count(*) AS mines FROM silver_mines GROUP BY banner"
    python -m jobs.delivery.query -f rail_share.sql --csv rail_share.csv     # full result as one CSV file
    python -m jobs.delivery.query "SELECT * FROM silver_telematics" --parquet /tmp/frames   # a new directory
    python -m jobs.delivery.query "SELECT count(*) FROM silver_shipments VERSION AS OF 1"   # time travel
    python -m jobs.delivery.query "DESCRIBE HISTORY silver_shipments"
    python -m jobs.delivery.query --list            # every table: layer, name, version, path, content (no Spark)
    python -m jobs.delivery.query --list --counts   # ... with row counts

The lake is a folder or a prefix in an S3-API bucket (``COALCHAIN_LAKE_ROOT=s3://bucket/lake`` with the
``AWS_*`` settings the pipeline uses). Every ``<lake_root>/<layer>/<name>`` holding a ``_delta_log`` is a table, reachable by its name
(``silver_telematics``, ``gold_mine_energy_daily``, ``quarantine``) or as ``<layer>.<name>``
(``ops.quarantine``). Names are already layer-prefixed for bronze, silver and gold; ops tables keep
theirs.

Safe by construction, not by a list of bad words:

* The statement runs in its own Spark session where ``spark.sql.runSQLOnFiles`` is off, so no
  ``text.`/path```, ``csv.``, ``delta.`` ... relation can resolve; the only tables it can name are temp
  views this module creates over the lake's tables (one per table and time-travel version named).
* Spark parses the statement (parsing runs nothing) and every node of the parsed plan - every
  operator, every expression, every field of every node, subqueries and CTEs included - must be on an
  allow-list: query operators, plain expressions, the built-in functions of ``FUNCTIONS`` (no
  ``reflect``/``java_method``, no UDFs, no file or user functions), the table functions of
  ``TABLE_FUNCTIONS``, relations that are views of the lake or CTEs. The root is a query, or one of
  ``DESCRIBE HISTORY|DETAIL <table>``, ``DESCRIBE <table>``, ``SHOW TABLES``, ``EXPLAIN <query>``,
  which this module answers itself. The checked plan object is what runs (no second parse).
* The analysed plan is checked again: every leaf reads a Delta table of the lake (or literal rows), and
  no reflection, UDF or file-name expression appears.
* Limits (``Settings.query_*`` or flags): a timeout (Spark jobs cancelled), a row limit, and a memory
  bound: the CLI's own JVM heap, where an out-of-memory task fails the query, not the JVM; a watch on
  that heap that cancels the query's jobs when their live data passes 60 % of it; and results brought
  back one partition at a time and counted, up to a quarter of the heap.

Exit codes: 0 success, 1 SQL error or a limit reached (one line), 2 usage error, 3 statement refused.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from jobs.platform import storage
from jobs.platform.storage import Location, S3Location
from schemas import gold

EXIT_OK, EXIT_SQL_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
DEFAULT_LIMIT = 50
DEFAULT_TRUNCATE = 80
LAYER_ORDER = ("bronze", "silver", "gold", "ops")
MAX_STATEMENT_CHARS = 100_000   # the documented queries are under 3,000
MAX_PLAN_DEPTH = 400            # nested operators/expressions/fields; the documented queries need < 60

ALLOWED_LEADING = ("SELECT", "WITH", "VALUES", "TABLE", "FROM", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
ALLOWED_TEXT = "SELECT, WITH, VALUES, TABLE, FROM, SHOW TABLES, DESCRIBE, EXPLAIN"


def _names(text: str) -> frozenset[str]:
    return frozenset(w for line in text.splitlines() if not line.strip().startswith("#") for w in line.split())


# Spark's built-in functions by their registry group, minus what reads the environment or the JVM:
# reflect/java_method/try_reflect (arbitrary static methods), current_user/user/session_user, version,
# input_file_* (file paths), Avro/Protobuf (descriptor files), XML/XPath (external entities), AES.
FUNCTIONS = _names("""
    # math
    abs acos acosh asin asinh atan atan2 atanh bin bround cbrt ceil ceiling conv cos cosh cot csc
    degrees div e exp expm1 factorial floor greatest hex hypot least ln log log10 log1p log2 mod
    negative pi pmod positive pow power radians rand randn random rint round sec sign signum sin sinh
    sqrt tan tanh try_add try_divide try_mod try_multiply try_subtract unhex uniform width_bucket
    # aggregate
    any any_value approx_count_distinct approx_percentile array_agg avg bit_and bit_or bit_xor
    bitmap_construct_agg bitmap_or_agg bool_and bool_or collect_list collect_set corr count count_if
    count_min_sketch covar_pop covar_samp every first first_value grouping grouping_id histogram_numeric
    hll_sketch_agg hll_union_agg kurtosis last last_value listagg max max_by mean median min min_by mode
    percentile percentile_approx percentile_cont percentile_disc regr_avgx regr_avgy regr_count
    regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy skewness some std stddev stddev_pop
    stddev_samp string_agg sum try_avg try_sum var_pop var_samp variance
    # generator
    explode explode_outer inline inline_outer posexplode posexplode_outer stack
    # date and time
    add_months convert_timezone curdate current_date current_timestamp current_timezone date_add
    date_diff date_format date_from_unix_date date_part date_sub date_trunc dateadd datediff datepart
    day dayname dayofmonth dayofweek dayofyear extract from_unixtime from_utc_timestamp hour last_day
    localtimestamp make_date make_dt_interval make_interval make_timestamp make_timestamp_ltz
    make_timestamp_ntz make_ym_interval minute month monthname months_between next_day now quarter
    second session_window timestamp_micros timestamp_millis timestamp_seconds to_date to_timestamp
    to_timestamp_ltz to_timestamp_ntz to_unix_timestamp to_utc_timestamp trunc try_make_interval
    try_make_timestamp try_make_timestamp_ltz try_make_timestamp_ntz try_to_timestamp unix_date
    unix_micros unix_millis unix_seconds unix_timestamp weekday weekofyear window window_time year
    # array
    array array_append array_compact array_contains array_distinct array_except array_insert
    array_intersect array_join array_max array_min array_position array_prepend array_remove
    array_repeat array_size array_union arrays_overlap arrays_zip flatten get sequence shuffle slice
    sort_array
    # string
    ascii base64 bit_length btrim char char_length character_length chr collate collation concat_ws
    contains decode elt encode endswith find_in_set format_number format_string initcap instr
    is_valid_utf8 lcase left len length levenshtein locate lower lpad ltrim luhn_check make_valid_utf8
    mask octet_length overlay position printf randstr regexp_count regexp_extract regexp_extract_all
    regexp_instr regexp_replace regexp_substr repeat replace right rpad rtrim sentences soundex space
    split split_part startswith substr substring substring_index to_binary to_char to_number to_varchar
    translate trim try_to_binary try_to_number try_validate_utf8 ucase unbase64 upper validate_utf8
    # map
    map map_concat map_contains_key map_entries map_from_arrays map_from_entries map_keys map_values
    str_to_map
    # predicate and bitwise
    and equal_null ilike in isnan isnotnull isnull like not or regexp regexp_like rlike
    bit_count bit_get getbit shiftleft shiftright shiftrightunsigned
    # variant and JSON
    is_variant_null parse_json schema_of_variant schema_of_variant_agg to_variant_object try_parse_json
    try_variant_get variant_get
    from_json get_json_object json_array_length json_object_keys json_tuple schema_of_json to_json
    # window
    cume_dist dense_rank lag lead nth_value ntile percent_rank rank row_number
    # conversion
    bigint binary boolean cast date decimal double float int smallint string timestamp tinyint
    # lambda
    aggregate array_sort exists filter forall map_filter map_zip_with reduce transform transform_keys
    transform_values zip_with
    # conditional
    between coalesce if ifnull nanvl nullif nullifzero nvl nvl2 when zeroifnull
    # CSV, URL, hash, struct, collection
    from_csv schema_of_csv to_csv
    parse_url try_parse_url try_url_decode url_decode url_encode
    crc32 hash md5 sha sha1 sha2 xxhash64
    named_struct struct
    cardinality concat element_at reverse size try_element_at
    # misc (the pure ones)
    assert_true bitmap_bit_position bitmap_bucket_number bitmap_count current_catalog current_database
    current_schema hll_sketch_estimate hll_union monotonically_increasing_id raise_error
    spark_partition_id typeof uuid
""")
TABLE_FUNCTIONS = _names("range explode explode_outer inline inline_outer posexplode posexplode_outer stack")
HINTS = _names("BROADCAST BROADCASTJOIN MAPJOIN MERGE SHUFFLE_MERGE MERGEJOIN SHUFFLE_HASH SHUFFLE_REPLICATE_NL")

# Operators Spark's parser produces for a query (package org.apache.spark.sql.catalyst.*).
PLAN_NODES = _names("""
    Project Filter Aggregate Join LateralJoin SubqueryAlias UnresolvedRelation UnresolvedWith Sort
    GlobalLimit LocalLimit Offset Tail Distinct Union Intersect Except OneRowRelation LocalRelation
    UnresolvedInlineTable UnresolvedSubqueryColumnAliases UnresolvedTableValuedFunction UnresolvedTVFAliases
    Generate WithWindowDefinition Pivot Unpivot Sample UnresolvedHint RepartitionByExpression
    UnresolvedHaving
""")
# Expressions the parser builds directly (functions arrive as UnresolvedFunction, checked by name).
EXPRESSIONS = _names("""
    Alias MultiAlias UnresolvedAlias UnresolvedAttribute UnresolvedStar UnresolvedRegex UnresolvedExtractValue
    UnresolvedFunction UnresolvedNamedLambdaVariable LambdaFunction UnresolvedWindowExpression
    WindowSpecReference WindowSpecDefinition WindowExpression SpecifiedWindowFrame UnspecifiedFrame$
    UnboundedPreceding$ UnboundedFollowing$ CurrentRow$ SortOrder Literal Cast
    Add Subtract Multiply Divide Remainder IntegralDivide UnaryMinus UnaryPositive
    BitwiseAnd BitwiseOr BitwiseXor BitwiseNot ShiftLeft ShiftRight ShiftRightUnsigned
    EqualTo EqualNullSafe LessThan LessThanOrEqual GreaterThan GreaterThanOrEqual Not And Or In
    InSubquery ListQuery Exists ScalarSubquery LateralSubquery
    Like ILike RLike LikeAll NotLikeAll LikeAny NotLikeAny CaseWhen IsNull IsNotNull IsUnknown IsNotUnknown
    Concat Cube Rollup GroupingSets UnresolvedOrdinal TimestampAdd TimestampDiff UnresolvedGenerator
    AttributeReference
""")
# Second line, on the analysed plan: classes that must never appear whatever the first line let through.
ANALYSED_DENIED = re.compile(r"(UDF|UDAF|UDTF|Reflect|Reflection|CurrentUser|InputFile|SparkVersion|XPath|Xml|Avro|"
                             r"Protobuf|Aes)", re.I)
# CTERelationRef: a CTE's definition is a child of the WithCTE node above it, and is checked there.
ANALYSED_LEAVES = _names("LogicalRelation LocalRelation OneRowRelation Range CTERelationRef")
TIME_TRAVEL = (("VERSION", "AS", "OF"), ("TIMESTAMP", "AS", "OF"), ("FOR", "SYSTEM_VERSION", "AS", "OF"),
               ("FOR", "SYSTEM_TIME", "AS", "OF"))
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_CATALYST = "org.apache.spark.sql.catalyst."


class Refused(Exception):
    """The statement is not a read of the lake's tables; the message says what and why."""


class LimitReached(Exception):
    """The query hit its timeout, row limit or memory bound; the message is the one line to print."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    max_rows: int
    memory_mb: int

    @classmethod
    def from_settings(cls, settings=None) -> "Limits":
        if settings is None:
            from jobs.platform.settings import get_settings

            settings = get_settings()
        return cls(settings.query_timeout_s, settings.query_max_rows, settings.query_memory_mb)


@dataclass(frozen=True)
class Table:
    name: str        # view name = folder name
    layer: str       # folder under the lake root
    path: Location   # a folder, or a prefix in the lake's bucket

    @property
    def version(self) -> int | None:
        """Latest committed version, from the commit file names (no Spark needed)."""
        versions = [int(m.group(1)) for name in _entries(self.path / "_delta_log", folders=False)
                    if (m := _COMMIT_FILE.match(name))]
        return max(versions) if versions else None

    @property
    def uri(self) -> str:
        """What Spark loads: the folder, or the table's s3a:// URI."""
        return storage.spark_uri(self.path)


@dataclass(frozen=True)
class View:
    """A temp view the statement may read: a lake table, at its latest version or at one it travelled to."""
    name: str
    table: Table
    version: int | None = None
    timestamp: str | None = None


# --- discovery ----------------------------------------------------------------------------------

def _entries(location: Location, folders: bool) -> list[str]:
    """Names of the folders (or files) directly in ``location``; none when it does not exist. In a bucket, a
    folder is a common key prefix (one listing call per location)."""
    if not isinstance(location, S3Location):
        if not location.is_dir():
            return []
        return sorted(p.name for p in location.iterdir() if p.is_dir() == folders)
    from pyarrow import fs

    from jobs.platform.settings import get_settings

    wanted = fs.FileType.Directory if folders else fs.FileType.File
    infos = storage.filesystem(get_settings(), location).get_file_info(
        fs.FileSelector(storage.fs_path(location), recursive=False, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == wanted)


def delta_tables(lake_root: Location) -> list[Table]:
    """Every ``<lake_root>/<layer>/<name>/_delta_log``: bronze, silver, gold, ops, other layers, then by name.

    Folders whose names are not SQL identifiers are skipped.
    """
    layers = sorted((name for name in _entries(lake_root, folders=True) if _IDENT.match(name)),
                    key=lambda n: (LAYER_ORDER.index(n) if n in LAYER_ORDER else len(LAYER_ORDER), n))
    return [Table(name, layer, lake_root / layer / name) for layer in layers
            for name in _entries(lake_root / layer, folders=True)
            if _IDENT.match(name) and "_delta_log" in _entries(lake_root / layer / name, folders=True)]


def discover_tables(lake_root: Location) -> dict[str, Table]:
    """Tables by lower-case name (SQL names ignore case).

    A name found in two layers keeps the first in ``delta_tables`` order (with layer-prefixed names that
    is a misplaced folder); the other stays reachable as ``<layer>.<name>``.
    """
    tables: dict[str, Table] = {}
    for table in delta_tables(lake_root):
        tables.setdefault(table.name.lower(), table)
    return tables


# --- tokens -------------------------------------------------------------------------------------

@dataclass
class Token:
    kind: str   # ws | comment | string | quoted | word | number | punct
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper()

    @property
    def ident(self) -> str | None:
        """The identifier this token names (word or `quoted`), lower-case; else None."""
        if self.kind == "word":
            return self.text.lower()
        if self.kind == "quoted":
            return self.text[1:-1].replace("``", "`").lower()
        return None


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?[A-Za-z]*|\.[0-9]+([eE][+-]?[0-9]+)?[A-Za-z]*")
_WS = re.compile(r"\s+")


def tokenize(sql: str) -> list[Token]:
    """Split Spark SQL into tokens; joining their texts gives ``sql`` back unchanged."""
    tokens, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            j = _WS.match(sql, i).end()
            tokens.append(Token("ws", sql[i:j]))
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            tokens.append(Token("comment", sql[i:j]))
        elif sql.startswith("/*", i):
            j, depth = i + 2, 1          # Spark's bracketed comments nest
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            tokens.append(Token("comment", sql[i:j]))
        elif c in "rR" and i + 1 < n and sql[i + 1] in "'\"":   # raw string: r'\' is one backslash
            j = sql.find(sql[i + 1], i + 2)
            j = n if j < 0 else j + 1
            tokens.append(Token("string", sql[i:j]))
        elif c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                elif sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:   # doubled quote
                        j += 2
                    else:
                        j += 1
                        break
                else:
                    j += 1
            tokens.append(Token("string", sql[i:min(j, n)]))
        elif c == "`":
            j = i + 1
            while j < n:
                if sql[j] == "`":
                    if j + 1 < n and sql[j + 1] == "`":
                        j += 2
                        continue
                    j += 1
                    break
                j += 1
            tokens.append(Token("quoted", sql[i:min(j, n)]))
        elif m := _WORD.match(sql, i):
            j = m.end()
            tokens.append(Token("word", m.group()))
        elif m := _NUMBER.match(sql, i):
            j = m.end()
            tokens.append(Token("number", m.group()))
        else:
            j = i + 1
            tokens.append(Token("punct", c))
        i = j
    return tokens


def _code(tokens: Sequence[Token]) -> list[int]:
    """Indexes of the tokens that are not whitespace or comments."""
    return [k for k, t in enumerate(tokens) if t.kind not in ("ws", "comment")]


def split_statements(sql: str) -> list[str]:
    """Statements separated by ``;`` outside strings and comments; empty ones dropped."""
    parts, current = [], []
    for t in tokenize(sql):
        if t.kind == "punct" and t.text == ";":
            parts.append(current)
            current = []
        else:
            current.append(t)
    parts.append(current)
    return ["".join(t.text for t in p).strip() for p in parts if _code(p)]


def _leading(tokens: Sequence[Token]) -> Token:
    """The statement's first token after comments and opening parentheses."""
    code = [tokens[k] for k in _code(tokens)]
    return next((t for t in code if t.text != "("), code[0])


# --- statement (before Spark starts: cheap refusals; the plan check below is the guard) -------------

def check_statement(sql: str) -> str:
    """One statement, of bounded length, starting with a read-only keyword; returned without its ``;``."""
    if len(sql) > MAX_STATEMENT_CHARS:
        raise Refused(f"refused: the statement has {len(sql):,} characters; at most {MAX_STATEMENT_CHARS:,} "
                      f"are accepted")
    statements = split_statements(sql)
    if not statements:
        raise Refused("refused: no SQL statement given")
    if len(statements) > 1:
        raise Refused(f"refused: {len(statements)} statements separated by ';' — run one statement at a time")
    statement = statements[0]
    leading = _leading(tokenize(statement))
    if leading.kind != "word" or leading.upper not in ALLOWED_LEADING:
        kind = leading.upper if leading.kind == "word" else leading.text
        raise Refused(f"refused: {kind} statement — this CLI only runs read-only queries "
                      f"(statements starting with {ALLOWED_TEXT})")
    return statement


# --- rewriting: names to views ------------------------------------------------------------------

def _next_code(tokens: Sequence[Token], k: int, count: int) -> list[int]:
    out, j = [], k + 1
    while j < len(tokens) and len(out) < count:
        if tokens[j].kind not in ("ws", "comment"):
            out.append(j)
        j += 1
    return out


def _prev_code(tokens: Sequence[Token], k: int) -> int | None:
    j = k - 1
    while j >= 0 and tokens[j].kind in ("ws", "comment"):
        j -= 1
    return j if j >= 0 else None


def _string_value(token: Token) -> str | None:
    """The value of a plain '...' or "..." literal without escapes; None for anything else."""
    text = token.text
    if token.kind != "string" or len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0] or "\\" in text:
        return None
    return text[1:-1].replace(text[0] * 2, text[0])


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def rewrite(statement: str, tables: dict[str, Table],
            layer_tables: dict[tuple[str, str], Table] | None = None) -> tuple[str, dict[str, View]]:
    """Point the statement's table names at views; return the new text and the views it reads.

    * ``<name>`` stays (the view has the table's name);
    * ``<layer>.<name>`` -> ``<name>``, or the view `` `<layer>.<name>` `` when another layer has that name;
    * ``<name> VERSION AS OF 3`` / ``TIMESTAMP AS OF '...'`` (and ``FOR SYSTEM_VERSION|SYSTEM_TIME AS OF``)
      -> the view `` `<name> VERSION AS OF 3` `` reading that version (a temp view cannot time-travel).
    Strings, comments and other qualified names (``x.name``) are left alone. What this misses stays in
    the text and meets the plan check like any other name.
    """
    tokens = tokenize(statement)
    layer_tables = layer_tables or {}
    views: dict[str, View] = {}
    # 1. <layer>.<name>: collapse the three tokens into one naming the table's view.
    resolved: dict[int, View] = {}
    for k, t in enumerate(tokens):
        nxt = _next_code(tokens, k, 2)
        prev = _prev_code(tokens, k)
        if (t.ident and len(nxt) == 2 and tokens[nxt[0]].text == "." and tokens[nxt[1]].ident
                and (t.ident, tokens[nxt[1]].ident) in layer_tables
                and not (prev is not None and tokens[prev].text == ".")):
            table = layer_tables[(t.ident, tokens[nxt[1]].ident)]
            shadowed = tables.get(table.name.lower()) != table
            view = View(f"{table.layer}.{table.name}" if shadowed else table.name, table)
            tokens[k] = Token("quoted", _quote(view.name)) if shadowed else Token("word", table.name)
            for j in range(k + 1, nxt[1] + 1):
                tokens[j] = Token("ws", "")
            resolved[k] = view
    # 2. plain names, and time travel on them.
    for k, t in enumerate(tokens):
        if t.kind not in ("word", "quoted"):
            continue
        view = resolved.get(k)
        if view is None:
            table = tables.get(t.ident or "")
            prev = _prev_code(tokens, k)
            if table is None or (prev is not None and tokens[prev].text == "."):
                continue
            view = View(table.name, table)
        following = _next_code(tokens, k, 6)
        words = [tokens[j].upper for j in following]
        clause = next((p for p in TIME_TRAVEL if tuple(words[:len(p)]) == p), None)
        if clause is not None and len(following) > len(clause):
            value_at = following[len(clause)]
            value = tokens[value_at]
            last = value_at
            if value.upper in ("TIMESTAMP", "DATE") and len(following) > len(clause) + 1:   # TIMESTAMP'...'
                last = following[len(clause) + 1]
                value = tokens[last]
            by_version = clause[0] == "VERSION" or clause[1] == "SYSTEM_VERSION"
            text = value.text if value.kind == "number" else _string_value(value)
            if text is not None and (not by_version or re.fullmatch(r"\d+", text)):
                label = f"VERSION AS OF {int(text)}" if by_version else f"TIMESTAMP AS OF {text}"
                view = View(f"{view.table.name} {label}", view.table,
                            version=int(text) if by_version else None, timestamp=None if by_version else text)
                tokens[k] = Token("quoted", _quote(view.name))
                for j in range(k + 1, last + 1):
                    tokens[j] = Token("ws", "")
        views[view.name.lower()] = view
    return "".join(t.text for t in tokens), views


# --- the plan guard -----------------------------------------------------------------------------

@dataclass
class PlanFacts:
    """What the walk over a parsed query found: relation names and CTE names."""
    relations: list[list[str]] = field(default_factory=list)   # name parts
    ctes: set[str] = field(default_factory=set)


class _PlanGuard:
    """Walks every object reachable from a parsed plan through case-class fields and collections.

    Operators and expressions must be on the allow-lists; everything else reachable (identifiers, data
    types, join types, literal values) is data. The walk visits fields, not only ``children``, so nothing
    hides in a window definition, a CTE, a subquery or a hint.
    """

    def __init__(self, jvm):
        lang = jvm.java.lang.Class
        self._expression = lang.forName(_CATALYST + "expressions.Expression")
        self._plan = lang.forName(_CATALYST + "plans.logical.LogicalPlan")
        self._iterable = lang.forName("scala.collection.Iterable")
        self._product = lang.forName("scala.Product")
        self._kinds: dict[str, str] = {}
        self.facts = PlanFacts()

    def _kind(self, obj) -> tuple[str, str]:
        name = obj.getClass().getName()
        kind = self._kinds.get(name)
        if kind is None:
            cls = obj.getClass()
            if name.startswith(("org.apache.spark.sql.types.", "java.", "org.apache.spark.unsafe.types.")):
                kind = "data"
            elif self._expression.isAssignableFrom(cls):
                kind = "expression"
            elif self._plan.isAssignableFrom(cls):
                kind = "plan"
            elif self._iterable.isAssignableFrom(cls):
                kind = "iterable"
            elif self._product.isAssignableFrom(cls):
                kind = "product"
            else:
                kind = "data"
            self._kinds[name] = kind
        return name, kind

    def walk(self, root) -> PlanFacts:
        stack = [(root, 0)]
        while stack:
            obj, depth = stack.pop()
            if obj is None or isinstance(obj, (str, int, float, bool, bytes)):
                continue
            if depth > MAX_PLAN_DEPTH:
                raise Refused(f"refused: the statement nests deeper than {MAX_PLAN_DEPTH} levels")
            name, kind = self._kind(obj)
            simple = name.rsplit(".", 1)[-1]
            if kind == "data":
                continue
            if kind == "iterable":
                it = obj.iterator()
                while it.hasNext():
                    stack.append((it.next(), depth + 1))
                continue
            if kind == "plan":
                self._check_plan_node(obj, name, simple)
            elif kind == "expression":
                self._check_expression(obj, name, simple)
            for i in range(obj.productArity()):
                stack.append((obj.productElement(i), depth + 1))
        return self.facts

    def _check_plan_node(self, node, name: str, simple: str) -> None:
        if simple == "RelationTimeTravel":
            raise Refused("refused: VERSION AS OF / TIMESTAMP AS OF needs a lake table name and a literal "
                          "right after it (a version number, or a timestamp string)")
        if simple == "PlanWithUnresolvedIdentifier":
            raise Refused("refused: IDENTIFIER(...) is not accepted in the query CLI; name the table itself")
        if not name.startswith(_CATALYST) or simple not in PLAN_NODES:
            raise Refused(f"refused: the statement contains {simple}, which is not a read-only query operator "
                          f"— this CLI only runs queries over the lake's tables (allowed: {ALLOWED_TEXT})")
        if simple == "UnresolvedRelation":
            parts = node.multipartIdentifier()
            self.facts.relations.append([str(parts.apply(i)) for i in range(parts.size())])
        elif simple == "UnresolvedWith":
            ctes = node.cteRelations()
            for i in range(ctes.size()):
                self.facts.ctes.add(str(ctes.apply(i)._1()).lower())
        elif simple == "UnresolvedTableValuedFunction":
            fn = _identifier(node.name())
            if fn.lower() not in TABLE_FUNCTIONS:
                raise Refused(f"refused: table function {fn}() is not allowed in the query CLI "
                              f"(allowed: {', '.join(sorted(TABLE_FUNCTIONS))})")
        elif simple == "UnresolvedHint":
            if str(node.name()).upper() not in HINTS:
                raise Refused(f"refused: hint {node.name()} is not allowed (join hints only: "
                              f"{', '.join(sorted(HINTS))})")

    def _check_expression(self, expr, name: str, simple: str) -> None:
        if simple == "ExpressionWithUnresolvedIdentifier":
            raise Refused("refused: IDENTIFIER(...) is not accepted in the query CLI; name the function itself")
        if not name.startswith(_CATALYST) or simple not in EXPRESSIONS:
            raise Refused(f"refused: the statement contains the expression {simple}, which the query CLI "
                          f"does not accept")
        if simple in ("UnresolvedFunction", "UnresolvedGenerator"):   # f(...) and LATERAL VIEW f(...)
            parts = expr.nameParts() if simple == "UnresolvedFunction" else expr.name().nameParts()
            fn = _identifier(parts)
            if parts.size() != 1 or fn.lower() not in FUNCTIONS:
                raise Refused(f"refused: function {fn}() is not allowed in the query CLI (it is not one of "
                              f"the built-in functions on its allow-list; see docs/queries.md)")


def _identifier(parts) -> str:
    """A Scala Seq[String] of name parts as SQL text: `a`.`b` when quoting is needed."""
    names = [str(parts.apply(i)) for i in range(parts.size())]
    return ".".join(n if _IDENT.match(n) else _quote(n) for n in names)


def parse(spark, statement: str):
    """Spark's parsed (unresolved) plan of one statement; parsing runs nothing."""
    return spark._jsparkSession.sessionState().sqlParser().parsePlan(statement)


def check_query_plan(spark, plan, views: dict[str, View]) -> list[View]:
    """Refuse a parsed query unless every node is allowed and every relation is a lake view or a CTE.

    Returns the views the query reads.
    """
    facts = _PlanGuard(spark._jvm).walk(plan)
    needed = {}
    for parts in facts.relations:
        key = parts[0].lower() if len(parts) == 1 else None
        if key in views:
            needed[key] = views[key]
        elif key is None or key not in facts.ctes:
            name = ".".join(p if _IDENT.match(p) else _quote(p) for p in parts)
            raise Refused(f"refused: {name} is not a table of the lake — only the lake's tables can be read "
                          f"(python -m jobs.delivery.query --list shows them)")
    return list(needed.values())


def _path_key(uri) -> str:
    """A relation's root (a java.net.URI) as ``_lake_paths`` spells the lake's tables: a local path, or
    ``s3a://bucket/key`` (the bucket is part of the name)."""
    path = (uri.getPath() or "").rstrip("/")
    if str(uri.getScheme() or "").lower() in ("s3", "s3a"):
        return f"s3a://{uri.getAuthority()}{path}"
    return path


def check_analysed(df, lake_paths: set[str]) -> None:
    """Second line: every leaf of the analysed plan reads a lake table or literal rows; no reflection or UDF."""
    jvm = df.sparkSession._jvm
    stack = [df._jdf.queryExecution().analyzed()]
    while stack:
        node = stack.pop()
        simple = node.getClass().getSimpleName()
        children = node.children()
        subqueries = node.subqueries()
        if children.size() == 0:
            if simple not in ANALYSED_LEAVES:
                raise Refused(f"refused: the query reads {simple}, not a table of the lake")
            if simple == "LogicalRelation":
                location = node.relation().location()
                roots = location.rootPaths()
                paths = {_path_key(jvm.java.net.URI(roots.apply(i).toString())) for i in range(roots.size())}
                if "Tahoe" not in location.getClass().getSimpleName() or not paths <= lake_paths:
                    raise Refused(f"refused: the query reads {sorted(paths)}, not a table of the lake")
        expressions = node.expressions()
        exprs = [expressions.apply(i) for i in range(expressions.size())]
        while exprs:
            e = exprs.pop()
            if ANALYSED_DENIED.search(e.getClass().getSimpleName()):
                raise Refused(f"refused: the query uses {e.getClass().getSimpleName()}, which the query CLI "
                              f"does not run")
            ch = e.children()
            exprs.extend(ch.apply(i) for i in range(ch.size()))
        stack.extend(children.apply(i) for i in range(children.size()))
        stack.extend(subqueries.apply(i) for i in range(subqueries.size()))


# --- the query session --------------------------------------------------------------------------

def query_session(spark):
    """A session of its own (same JVM and cores): no SQL on files, no temp views but the ones made here."""
    session = spark.newSession()
    session.conf.set("spark.sql.runSQLOnFiles", "false")
    return session


def register_views(session, views: Iterable[View]) -> None:
    """A temp view per lake table (and per time-travel version) the statement reads."""
    for view in views:
        reader = session.read.format("delta")
        if view.version is not None:
            reader = reader.option("versionAsOf", view.version)
        if view.timestamp is not None:
            reader = reader.option("timestampAsOf", view.timestamp)
        reader.load(view.table.uri).createOrReplaceTempView(_quote(view.name))


def _lake_paths(tables: Iterable[Table]) -> set[str]:
    return {str(p).rstrip("/") for t in tables
            for p in ((t.uri,) if isinstance(t.path, S3Location) else (t.path.absolute(), t.path.resolve()))}


def _query_frame(session, plan, views: dict[str, View], lake_paths: set[str]):
    """The DataFrame of a checked parsed query: the plan object that was checked is the one that runs."""
    from pyspark.sql import DataFrame

    register_views(session, check_query_plan(session, plan, views))
    jdf = session._jvm.org.apache.spark.sql.classic.Dataset.ofRows(session._jsparkSession, plan)
    df = DataFrame(jdf, session)
    check_analysed(df, lake_paths)
    return df


def _described_view(node, views: dict[str, View], statement_kind: str) -> View:
    """The lake view a DESCRIBE names (its child is an unresolved table name)."""
    simple = node.getClass().getSimpleName()
    parts = [str(node.multipartIdentifier().apply(i)) for i in range(node.multipartIdentifier().size())] \
        if simple in ("UnresolvedTable", "UnresolvedTableOrView") else []
    view = views.get(parts[0].lower()) if len(parts) == 1 else None
    if view is None:
        name = ".".join(parts) if parts else "a path"
        raise Refused(f"refused: {statement_kind} of {name} — only the lake's tables can be described "
                      f"(python -m jobs.delivery.query --list shows them)")
    return view


def _show_tables(session, node, lake_root: Location):
    """SHOW TABLES [IN <layer>] [LIKE 'pattern']: the lake's tables, answered from the folders."""
    namespace = node.namespace()
    layer = None
    if namespace.getClass().getSimpleName() == "UnresolvedNamespace":
        parts = namespace.multipartIdentifier()
        layer = ".".join(str(parts.apply(i)) for i in range(parts.size())).lower()
    elif namespace.getClass().getSimpleName() != "CurrentNamespace$":
        raise Refused("refused: SHOW TABLES takes at most a layer name (SHOW TABLES IN silver)")
    pattern = node.pattern()
    regex = None
    if pattern.isDefined():   # Spark's SHOW TABLES pattern: * any characters, | alternatives
        regex = re.compile("|".join(re.escape(p.strip()).replace(r"\*", ".*") for p in str(pattern.get()).split("|")),
                           re.I)
    rows = [("", t.name, True) for t in discover_tables(lake_root).values()
            if (layer is None or t.layer.lower() == layer) and (regex is None or regex.fullmatch(t.name))]
    return session.createDataFrame(rows, "namespace string, tableName string, isTemporary boolean")


def prepare(spark, sql: str, lake_root: Location):
    """Check the statement, create the views it reads, and return its DataFrame (nothing has run yet).

    Raises Refused, before anything runs, when the statement is not a read of the lake's tables.
    """
    from delta.tables import DeltaTable

    statement = check_statement(sql)
    everything = delta_tables(lake_root)
    tables = discover_tables(lake_root)
    by_layer = {(t.layer.lower(), t.name.lower()): t for t in everything}
    rewritten, views = rewrite(statement, tables, by_layer)
    session = query_session(spark)
    plan = parse(session, rewritten)
    root = plan.getClass().getSimpleName()
    if root == "DescribeDeltaHistory":
        view = _described_view(plan.child(), views, "DESCRIBE HISTORY")
        limit = plan.limit()
        history = DeltaTable.forPath(session, view.table.uri)
        return history.history(int(limit.get())) if limit.isDefined() else history.history()
    if root == "DescribeDeltaDetailCommand":
        view = _described_view(plan.child(), views, "DESCRIBE DETAIL")
        return DeltaTable.forPath(session, view.table.uri).detail()
    if root == "DescribeRelation":
        view = _described_view(plan.child(), views, "DESCRIBE")
        if not plan.partitionSpec().isEmpty():
            raise Refused("refused: DESCRIBE with a PARTITION clause is not accepted; DESCRIBE <table>")
        register_views(session, [view])
        return session.sql(f"DESCRIBE {'EXTENDED ' if plan.isExtended() else ''}{_quote(view.name)}")
    if root == "ShowTables":
        return _show_tables(session, plan, lake_root)
    if root == "ExplainCommand":
        df = _query_frame(session, plan.logicalPlan(), views, _lake_paths(everything))
        text = session._jvm.PythonSQLUtils.explainString(df._jdf.queryExecution(), plan.mode().name())
        return session.createDataFrame([(text,)], "plan string")
    return _query_frame(session, plan, views, _lake_paths(everything))


# --- limits -------------------------------------------------------------------------------------

def _timeout_message(limits: Limits) -> str:
    return (f"error: [QUERY_TIMEOUT] the query ran longer than {limits.timeout_s:g} s and was cancelled "
            f"(limit query_timeout_s, or --timeout-s S)")


def _rows_message(limits: Limits) -> str:
    return (f"error: [QUERY_ROW_LIMIT] the result has more than {limits.max_rows:,} rows "
            f"(limit query_max_rows, or --max-rows N): narrow the query, or print the first rows with --limit N")


def _memory_message(heap_mb: int) -> str:
    return (f"error: [QUERY_MEMORY_LIMIT] the query needed more memory than its bound and was stopped "
            f"({heap_mb:,} MB of heap, results up to a quarter of it; limit query_memory_mb, or --memory-mb MB)")


def _heap_mb(spark, limits: Limits) -> int:
    """The heap the engine really has (``--memory-mb`` only applies to a JVM the CLI starts)."""
    try:
        return int(spark._jvm.java.lang.Runtime.getRuntime().maxMemory()) // 2**20
    except Exception:
        return limits.memory_mb


def result_mb(limits: Limits) -> int:
    """Largest result brought back to the CLI (Spark's maxResultSize): a quarter of the heap."""
    return max(limits.memory_mb // 4, 32)


class _Deadline:
    """Cancels the Spark jobs this thread starts once ``timeout_s`` has passed (tasks are interrupted)."""

    def __init__(self, spark, limits: Limits):
        self._sc, self._limits = spark.sparkContext, limits
        self.tag = self._tag = f"coalchain-query-{os.getpid()}-{time.monotonic_ns()}"
        self.expired = threading.Event()
        self._timer = threading.Timer(limits.timeout_s, self._cancel)
        self._timer.daemon = True

    def _cancel(self) -> None:
        self.expired.set()
        try:
            self._sc.cancelJobsWithTag(self._tag)
        except Exception:   # the engine may be gone already; the query thread reports that
            pass

    def __enter__(self):
        self._sc.setInterruptOnCancel(True)
        self._sc.addJobTag(self._tag)
        self._timer.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._timer.cancel()
        try:
            self._sc.removeJobTag(self._tag)
        except Exception:
            pass
        if exc is not None and self.expired.is_set() and not isinstance(exc, (Refused, LimitReached)):
            raise LimitReached(_timeout_message(self._limits)) from None
        return False


class _Watcher:
    """A daemon thread that runs ``_run`` while the ``with`` block does (only when ``enabled``); leaving the
    block sets ``_stop`` and waits for the thread."""

    def __init__(self, enabled: bool, name: str):
        self._enabled = enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return False


class _HeapGuard(_Watcher):
    """Cancels the query's Spark jobs (by the deadline's tag) when the engine's JVM heap holds more live data
    than ``HEAP_LIVE_SHARE`` of its maximum.

    Spark bounds the memory it manages (shuffles, sorts, caches), not the objects an expression or an
    aggregation buffer builds (``collect_list`` of one huge group, a string doubled in a loop): such a task
    fills the heap until some thread, maybe one of Spark's own, gets an OutOfMemoryError, and the engine
    stops. The guard looks at the heap every ``poll_s``; over ``HEAP_CHECK_SHARE`` in use it asks for a
    collection, and if the live data after it is still over ``HEAP_LIVE_SHARE`` it cancels the jobs (their
    tasks are interrupted and free what they built) and the query ends with the memory line.
    """

    HEAP_CHECK_SHARE = 0.75
    HEAP_LIVE_SHARE = 0.6

    def __init__(self, spark, tag: str, enabled: bool = True, poll_s: float = 0.1):
        super().__init__(enabled, "query-heap-guard")
        self._sc, self._tag, self._poll_s = spark.sparkContext, tag, poll_s
        self._runtime = spark._jvm.java.lang.Runtime.getRuntime()
        self._system = spark._jvm.java.lang.System
        self.tripped = threading.Event()

    def _used_share(self) -> float:
        rt = self._runtime
        return (rt.totalMemory() - rt.freeMemory()) / rt.maxMemory()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._poll_s):
                if self._used_share() < self.HEAP_CHECK_SHARE:
                    continue
                self._system.gc()
                if self._used_share() > self.HEAP_LIVE_SHARE and not self._stop.is_set():
                    self.tripped.set()
                    self._sc.cancelJobsWithTag(self._tag)
                    return
        except Exception:   # the engine is gone or stopping: the query thread reports it
            return


def _tripped(guard: _HeapGuard | None) -> bool:
    return guard is not None and guard.tripped.is_set()


def _approx_bytes(value) -> int:
    """Bytes a result value takes in the CLI, roughly (text and binary by length, other scalars 8)."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value) + 48
    if isinstance(value, (list, tuple)):
        return 56 + sum(_approx_bytes(v) for v in value)
    if isinstance(value, dict):
        return 64 + sum(_approx_bytes(k) + _approx_bytes(v) for k, v in value.items())
    return 24


def collect_rows(df, limit: int, limits: Limits, heap_mb: int | None = None) -> tuple[list, bool]:
    """Up to ``limit`` rows (0 = all) and whether more exist; more than ``max_rows`` is an error, and so is a
    result over ``result_mb`` (the memory line). Rows come one partition at a time (the limit is in the
    plan), and are counted as they arrive, so an over-large result stops before it is held whole."""
    cap = min(limit, limits.max_rows) if limit > 0 else limits.max_rows
    budget_bytes = result_mb(limits) * 2**20
    rows, held_bytes = [], 0
    iterator = df.limit(cap + 1).toLocalIterator()
    try:
        for row in iterator:
            rows.append(row)
            held_bytes += _approx_bytes(row)
            if held_bytes > budget_bytes:
                rows.clear()
                raise LimitReached(_memory_message(heap_mb or limits.memory_mb))
            if len(rows) > cap:
                break
    finally:
        iterator.close()
    if len(rows) > cap:
        if limit <= 0 or limit > limits.max_rows:
            raise LimitReached(_rows_message(limits))
        return rows[:cap], True
    return rows, False


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        text += str(java.toString())
    return isinstance(exc, MemoryError) or "OutOfMemoryError" in text or "maxResultSize" in text


def _engine_gone(exc: BaseException) -> bool:
    from py4j.protocol import Py4JNetworkError

    text = str(exc)
    return (isinstance(exc, (Py4JNetworkError, ConnectionError)) or "Answer from Java side is empty" in text
            or "Connection refused" in text or "SparkContext was shut down" in text
            or "Cannot call methods on a stopped SparkContext" in text)


class _Progress(_Watcher):
    """An elapsed-time / task-count line on stderr while Spark works (only on a terminal)."""

    def __init__(self, spark, enabled: bool, delay_s: float = 1.0):
        super().__init__(enabled, "query-progress")
        self._spark, self._delay_s = spark, delay_s
        self._start = time.monotonic()
        self.drawn = threading.Event()   # set once the first line is on the terminal

    def __exit__(self, *exc):
        drawing = self._thread.is_alive()
        super().__exit__(*exc)
        if drawing:
            sys.stderr.write("\r\033[K")   # clear the line
            sys.stderr.flush()
        return False

    def _run(self) -> None:
        frames = "|/-\\"
        if self._stop.wait(self._delay_s):
            return
        tracker = self._spark.sparkContext.statusTracker()
        k = 0
        while not self._stop.is_set():
            stages = []
            try:
                for stage_id in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(stage_id)
                    if info:
                        stages.append(f"stage {stage_id}: {info.numCompletedTasks}/{info.numTasks} tasks")
            except Exception:   # the tracker is advisory; never let it break the query
                pass
            elapsed = time.monotonic() - self._start
            sys.stderr.write(f"\r\033[K{frames[k % 4]} running {elapsed:,.0f} s  {'  '.join(stages[:3])}")
            sys.stderr.flush()
            self.drawn.set()
            k += 1
            self._stop.wait(0.25)


# --- output -------------------------------------------------------------------------------------

def _cell(value) -> str:
    """A value as text: ISO dates and times, plain numbers, JSON for maps, arrays and structs."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, Decimal, int, float, str)):
        return str(value) if not isinstance(value, dt.date) else value.isoformat()
    if hasattr(value, "asDict"):
        value = value.asDict(recursive=True)
    return json.dumps(value, default=str, ensure_ascii=False)


def _display(value, truncate: int) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}" if abs(value) < 1 else f"{value:.3f}".rstrip("0").rstrip(".")
    elif isinstance(value, Decimal):   # exact: only the padding zeros of the declared scale go
        text = format(value.normalize(), "f")
    elif value is None:
        text = "NULL"
    else:
        text = _cell(value).replace("\n", " ")
    return text if truncate <= 0 or len(text) <= truncate else text[:truncate - 1] + "…"


def render_table(columns: Sequence[str], rows: Sequence[Sequence], truncate: int = DEFAULT_TRUNCATE) -> str:
    """A plain-text table; numbers right-aligned, floats rounded to 3 decimals for reading only."""
    cells = [[_display(v, truncate) for v in row] for row in rows]
    numeric = [all(isinstance(r[i], (int, float, Decimal)) and not isinstance(r[i], bool) for r in rows
                   if r[i] is not None) and any(r[i] is not None for r in rows) for i in range(len(columns))]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def write_csv(df, path: Path, limits: Limits) -> int:
    """The full result as one CSV file with a header; rows streamed in order (no driver-side collect).

    More than ``limits.max_rows`` rows: the file is removed and LimitReached raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(df.columns)
            for row in df.limit(limits.max_rows + 1).toLocalIterator():
                n += 1
                if n > limits.max_rows:
                    raise LimitReached(_rows_message(limits))
                writer.writerow([_cell(v) for v in row])
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return n


def write_parquet(df, directory: Path, limits: Limits) -> int:
    """The full result as a new Parquet directory (never overwrites: a typo must not delete a folder).

    More than ``limits.max_rows`` rows: the directory is removed and LimitReached raised.
    """
    if directory.exists():
        raise FileExistsError(f"{directory} already exists; give a new directory for --parquet")
    try:
        df.limit(limits.max_rows + 1).write.mode("errorifexists").parquet(str(directory))
        n = df.sparkSession.read.parquet(str(directory)).count()
        if n > limits.max_rows:
            raise LimitReached(_rows_message(limits))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return n


def _error_line(exc: BaseException) -> str:
    """Spark's error class (else the exception's type) and the first line of its message: no JVM stack trace."""
    message = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    condition = exc.getCondition() if hasattr(exc, "getCondition") else None
    java = getattr(exc, "java_exception", None)
    if java is not None:   # a Py4JJavaError that PySpark did not convert
        message = next((ln.strip() for ln in str(java.getMessage() or "").splitlines() if ln.strip()), message)
        condition = condition or java.getClass().getSimpleName()
    condition = condition or type(exc).__name__
    if not message.startswith(f"[{condition}"):
        message = f"[{condition}] {message}"
    return f"error: {message}"


def _outside_lake(path: Path, lake_root: Location) -> bool:
    """Whether a result file goes outside the lake (results are written locally: a bucket lake is never hit)."""
    return isinstance(lake_root, S3Location) or not path.resolve().is_relative_to(lake_root.resolve())


# --- CLI ----------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs.delivery.query", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sql", nargs="?", help="one read-only statement; '-' reads it from stdin")
    p.add_argument("-f", "--file", type=Path, help="read the statement from this file")
    p.add_argument("--list", action="store_true", help="list every table: layer, name, version, path and, for "
                   "gold tables, what a row is (schemas/gold.py)")
    p.add_argument("--counts", action="store_true", help="with --list: also count rows (starts Spark)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"rows printed (default {DEFAULT_LIMIT}; 0 = all, up to --max-rows); files get every row")
    p.add_argument("--truncate", type=int, default=DEFAULT_TRUNCATE,
                   help=f"shorten printed cells to this many characters (default {DEFAULT_TRUNCATE}; 0 = never)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", type=Path, metavar="FILE", help="write the full result to one CSV file")
    out.add_argument("--parquet", type=Path, metavar="DIR", help="write the full result to a new Parquet directory")
    p.add_argument("--lake-root", type=storage.parse_location,
                   help="lake root, a folder or s3://bucket/prefix (default: COALCHAIN_LAKE_ROOT / Settings)")
    p.add_argument("--timeout-s", type=float, help="cancel the query after this many seconds "
                   "(default: Settings.query_timeout_s)")
    p.add_argument("--max-rows", type=int, help="most rows a result may have, on screen or in a file "
                   "(default: Settings.query_max_rows)")
    p.add_argument("--memory-mb", type=int, help="heap of the query's Spark JVM in MB; results up to a quarter "
                   "of it (default: Settings.query_memory_mb; applies when the CLI starts Spark)")
    return p


def table_content(table: Table) -> str:
    """What a row of a table is, for the gold tables the gold catalogue (schemas/gold.py) declares."""
    declared = gold.GOLD.get(table.name) if table.layer == "gold" else None
    return f"one row per {declared.grain}" if declared else ""


def _list_tables(lake_root: Location, counts: bool, settings=None) -> int:
    tables = discover_tables(lake_root)
    if not tables:
        print(f"no Delta tables under {storage.delta_uri(lake_root)}", file=sys.stderr)
        return EXIT_USAGE
    columns = ["layer", "table", "version"] + (["rows"] if counts else []) + ["path", "content"]
    rows = []
    spark = _spark(settings=settings) if counts else None
    for t in tables.values():
        row = [t.layer, t.name, t.version]
        if counts:
            # Delta answers count(*) from the file statistics in its log: no data scan.
            row.append(spark.read.format("delta").load(t.uri).count())
        rows.append(row + [storage.delta_uri(t.path), table_content(t)])
    print(render_table(columns, rows, truncate=0))
    missing = [t.name for t in gold.TABLES if t.name.lower() not in tables]
    if missing and any(t.layer == "gold" for t in tables.values()):
        print(f"declared gold tables not in this lake yet: {', '.join(missing)}", file=sys.stderr)
    return EXIT_OK


def _spark(limits: Limits | None = None, settings=None):
    """The process's Spark session; started by the CLI, its JVM gets the query's memory bound.

    ``killOnFatalError.depth=0``: a task that runs out of memory fails its query instead of ending the JVM
    (Spark's default in local mode is to exit on a task's OutOfMemoryError).
    """
    global _BOUNDED_ENGINE
    from pyspark.sql import SparkSession

    if limits is not None and SparkSession.getActiveSession() is None and "PYSPARK_SUBMIT_ARGS" not in os.environ:
        os.environ["PYSPARK_SUBMIT_ARGS"] = (
            f"--driver-memory {limits.memory_mb}m --conf spark.driver.maxResultSize={result_mb(limits)}m "
            f"--conf spark.executor.killOnFatalError.depth=0 --conf spark.sql.runSQLOnFiles=false pyspark-shell")
        _BOUNDED_ENGINE = True
    from jobs.platform.session import get_spark

    # an engine of its own, in this process, even where the tasks use a Spark Connect server or a cluster: the
    # checks read the plans in the driver's JVM, and the memory bound is that JVM's heap
    return get_spark("coalchain-query", in_process=True, master="local[*]", settings=settings)


# Whether this process's Spark JVM was started by the CLI with the query's memory bound: only then is its
# heap the query's to watch (a caller's own session holds that caller's data too).
_BOUNDED_ENGINE = False


def _read_sql(args, parser: argparse.ArgumentParser) -> str:
    if args.file and args.sql:
        parser.error("give the statement either as an argument or with -f, not both")
    if args.file:
        return args.file.read_text(encoding="utf-8")
    if args.sql == "-":
        return sys.stdin.read()
    if not args.sql:
        parser.error("no statement: give one, -f FILE, '-' for stdin, or --list")
    return args.sql


class _Quiet:
    """While a query runs: no JVM log lines, no PySpark error log with Java traces, no py4j tracebacks."""

    def __init__(self, spark, restore: bool = True):
        self._spark, self._restore = spark, restore
        self._loggers = [logging.getLogger("SQLQueryContextLogger"), logging.getLogger("py4j")]

    def __enter__(self):
        self._spark.sparkContext.setLogLevel("FATAL")
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.CRITICAL + 1)
        return self

    def __exit__(self, *exc):
        if not self._restore:   # the command line ends now: a cancelled task's late log line must not print
            return False
        try:
            self._spark.sparkContext.setLogLevel("WARN")
        except Exception:   # the JVM is gone: nothing to restore
            pass
        for lg, level in zip(self._loggers, self._levels):
            lg.setLevel(level)
        return False


def _watchdog(limits: Limits) -> threading.Timer:
    """Last resort of the command line: a query still running well past its timeout (cancellation had no
    effect, e.g. a plan that never reaches a Spark job) ends the process with the timeout line."""
    def stop():
        print(_timeout_message(limits), file=sys.stderr, flush=True)
        os._exit(EXIT_SQL_ERROR)

    timer = threading.Timer(limits.timeout_s + 30, stop)
    timer.daemon = True
    return timer


def main(argv: Sequence[str] | None = None, *, hard_exit: bool = False) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from jobs.platform.settings import get_settings

    settings = get_settings()
    if args.lake_root is None:
        args.lake_root = settings.lake_root
    defaults = Limits.from_settings(settings)
    limits = Limits(args.timeout_s if args.timeout_s is not None else defaults.timeout_s,
                    args.max_rows if args.max_rows is not None else defaults.max_rows,
                    args.memory_mb if args.memory_mb is not None else defaults.memory_mb)
    if limits.timeout_s <= 0 or limits.max_rows < 1 or limits.memory_mb < 256:
        parser.error("--timeout-s must be > 0, --max-rows >= 1 and --memory-mb >= 256")
    lake_root = args.lake_root
    if isinstance(lake_root, S3Location):
        # the engine's object-store connector follows the lake it is given: the flag's bucket
        settings = settings.model_copy(update={"lake_root": lake_root})
        try:
            _entries(lake_root, folders=True)
        except OSError as exc:
            print(f"error: cannot list the lake root {lake_root.uri}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    elif not lake_root.is_dir():
        print(f"error: lake root {lake_root} is not a directory (set --lake-root or COALCHAIN_LAKE_ROOT)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        return _list_tables(lake_root, args.counts, settings)
    sql = _read_sql(args, parser)
    try:
        statement = check_statement(sql)   # before Spark starts: a refusal costs nothing
    except Refused as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    target = args.csv or args.parquet
    if target is not None and not _outside_lake(target, lake_root):
        print(f"refused: {target} is inside the lake root {lake_root}; write results elsewhere", file=sys.stderr)
        return EXIT_REFUSED

    from pyspark.errors import PySparkException
    from py4j.protocol import Py4JError

    spark = _spark(limits, settings)
    heap_mb = _heap_mb(spark, limits)
    watchdog = _watchdog(limits) if hard_exit else None
    heap_guard = None
    started = time.monotonic()
    try:
        if watchdog is not None:
            watchdog.start()
        with _Quiet(spark, restore=not hard_exit), _Progress(spark, enabled=sys.stderr.isatty()), \
                _Deadline(spark, limits) as deadline, \
                _HeapGuard(spark, deadline.tag, enabled=_BOUNDED_ENGINE) as heap_guard:
            df = prepare(spark, statement, lake_root)
            columns = df.columns
            if args.csv:
                n = write_csv(df, args.csv, limits)
            elif args.parquet:
                n = write_parquet(df, args.parquet, limits)
            else:
                rows, truncated = collect_rows(df, args.limit, limits, heap_mb)
    except Refused as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except LimitReached as exc:
        print(_memory_message(heap_mb) if _tripped(heap_guard) else exc, file=sys.stderr)
        return EXIT_SQL_ERROR
    except (PySparkException, Py4JError, FileExistsError, MemoryError, ConnectionError) as exc:
        if _tripped(heap_guard) or _is_out_of_memory(exc):
            print(_memory_message(heap_mb), file=sys.stderr)
        elif _engine_gone(exc):
            print(f"error: [QUERY_ENGINE_STOPPED] the query's Spark engine stopped (most likely out of memory; "
                  f"heap {heap_mb:,} MB, query_memory_mb or --memory-mb)", file=sys.stderr, flush=True)
            if hard_exit:   # nothing left to shut down cleanly; skip PySpark's exit hooks and their tracebacks
                os._exit(EXIT_SQL_ERROR)
        else:
            print(_error_line(exc), file=sys.stderr)
        return EXIT_SQL_ERROR
    finally:
        if watchdog is not None:
            watchdog.cancel()
    elapsed_s = time.monotonic() - started
    if target is not None:
        print(f"wrote {n:,} rows to {target} ({elapsed_s:,.1f} s)")
        return EXIT_OK
    if len(columns) == 1 and len(rows) == 1 and isinstance(rows[0][0], str) and "\n" in rows[0][0]:
        print(rows[0][0])   # EXPLAIN and other one-cell texts read better as they are
    else:
        print(render_table(columns, rows, truncate=args.truncate))
    note = (f"first {len(rows)} rows shown; more exist (--limit N, --limit 0 for all, or --csv FILE)"
            if truncated else f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
    print(f"({note}; {elapsed_s:,.1f} s)", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(hard_exit=True))
