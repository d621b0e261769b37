"""Planners' SQL CLI: read-only Spark SQL over every Delta table of the lake.

    python -m jobs.query "SELECT banner, count(*) AS mines FROM silver_mines GROUP BY banner"
    python -m jobs.query -f rail_share.sql --csv rail_share.csv     # full result as one CSV file
    python -m jobs.query "SELECT * FROM silver_telematics" --parquet /tmp/frames   # a new directory
    python -m jobs.query "SELECT count(*) FROM silver_shipments VERSION AS OF 1"   # time travel
    python -m jobs.query "DESCRIBE HISTORY silver_shipments"
    python -m jobs.query --list            # every table: layer, name, version, path (no Spark start)
    python -m jobs.query --list --counts   # ... with row counts

Every folder ``<lake_root>/<layer>/<name>`` holding a ``_delta_log`` is a table, reachable by its name
(``silver_telematics``, ``gold_mine_energy_daily``, ``quarantine``) or as ``<layer>.<name>``
(``ops.quarantine``). Names are already layer-prefixed for bronze, silver and gold; ops tables keep
theirs. Views are created only for the tables a statement names (registering all 30-odd tables costs
seconds per table on a busy machine); ``SHOW`` statements see every table.

Spark cannot time-travel a temporary view, so ``<table> VERSION AS OF n``, ``TIMESTAMP AS OF '...'``,
``DESCRIBE HISTORY <table>`` and ``DESCRIBE DETAIL <table>`` are rewritten to ``delta.`<path>```
before the statement runs.

Read-only by two independent checks, both before anything executes (``spark.sql`` runs commands
eagerly): a keyword check on the statement's tokens (strings, comments and `quoted` identifiers
excluded), then Spark's own parser, whose logical plan must contain no command. One statement per
run. Exit codes: 0 success, 1 SQL or runtime error (one line: Spark's error class and message),
2 usage error, 3 statement refused.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

EXIT_OK, EXIT_SQL_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
DEFAULT_LIMIT = 50
DEFAULT_TRUNCATE = 80
LAYER_ORDER = ("bronze", "silver", "gold", "ops")

ALLOWED_LEADING = ("SELECT", "WITH", "VALUES", "TABLE", "FROM", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
ALLOWED_TEXT = "SELECT, WITH, VALUES, TABLE, FROM, SHOW, DESCRIBE, EXPLAIN"
# Keywords that only occur in statements changing tables, files, the catalog or the session.
FORBIDDEN_KEYWORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "DROP", "ALTER", "CREATE", "TRUNCATE", "REPLACE", "OPTIMIZE",
    "VACUUM", "RESTORE", "CONVERT", "COPY", "MSCK", "REPAIR", "REFRESH", "CACHE", "UNCACHE", "CLEAR", "LOAD",
    "ADD", "SET", "RESET", "USE", "GRANT", "REVOKE", "ANALYZE", "EXECUTE", "DECLARE", "CALL", "CLONE", "REORG",
    "GENERATE", "OVERWRITE", "DIRECTORY",
})
# Statement kinds named in refusals that are ordinary words elsewhere (a column may be called "comment").
LEADING_ONLY_FORBIDDEN = frozenset({"COMMENT", "LIST", "MSCK", "FSCK", "UNSET"})
# replace(str, search, replace) is a string function: allowed when a "(" follows.
FUNCTION_NAMES_ALLOWED = frozenset({"REPLACE"})
# Functions that call arbitrary JVM static methods (System.exit, setProperty, ...).
FORBIDDEN_FUNCTIONS = frozenset({"REFLECT", "JAVA_METHOD", "TRY_REFLECT"})

# Logical-plan nodes: read-only commands allowed at the root, and write statements that are not
# Spark ``Command``s (checked by name because they do not carry the trait).
READ_ONLY_ROOT = re.compile(r"^(Show\w*|Describe\w*|ExplainCommand)$")
WRITE_NODE = re.compile(r"^(Insert\w*|\w*Statement|ExecuteImmediate\w*|Call|\w*Command\$?|Write\w*|\w*Clone\w*)$")

TIME_TRAVEL = (("VERSION", "AS", "OF"), ("TIMESTAMP", "AS", "OF"), ("FOR", "SYSTEM_VERSION", "AS", "OF"),
               ("FOR", "SYSTEM_TIME", "AS", "OF"))
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


class Refused(Exception):
    """The statement would change something; the message says what and why."""


@dataclass(frozen=True)
class Table:
    name: str     # view name = folder name
    layer: str    # folder under the lake root
    path: Path

    @property
    def version(self) -> int | None:
        """Latest committed version, from the commit file names (no Spark needed)."""
        versions = [int(m.group(1)) for p in (self.path / "_delta_log").iterdir() if (m := _COMMIT_FILE.match(p.name))]
        return max(versions) if versions else None

    @property
    def delta_ref(self) -> str:
        return "delta.`" + str(self.path.absolute()).replace("`", "``") + "`"


# --- discovery ----------------------------------------------------------------------------------

def delta_tables(lake_root: Path) -> list[Table]:
    """Every ``<lake_root>/<layer>/<name>/_delta_log``: bronze, silver, gold, ops, other layers, then by name.

    Folders whose names are not SQL identifiers are skipped (still readable as delta.`<path>`).
    """
    if not lake_root.is_dir():
        return []
    layers = sorted((p for p in lake_root.iterdir() if p.is_dir() and _IDENT.match(p.name)),
                    key=lambda p: (LAYER_ORDER.index(p.name) if p.name in LAYER_ORDER else len(LAYER_ORDER), p.name))
    return [Table(folder.name, layer.name, folder) for layer in layers for folder in sorted(layer.iterdir())
            if (folder / "_delta_log").is_dir() and _IDENT.match(folder.name)]


def discover_tables(lake_root: Path) -> dict[str, Table]:
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


# --- read-only guard ----------------------------------------------------------------------------

def check_keywords(sql: str) -> str:
    """Refuse anything but one read-only statement; return that statement (without a trailing ``;``)."""
    statements = split_statements(sql)
    if not statements:
        raise Refused("refused: no SQL statement given")
    if len(statements) > 1:
        raise Refused(f"refused: {len(statements)} statements separated by ';' — run one statement at a time")
    statement = statements[0]
    tokens = tokenize(statement)
    code = [tokens[k] for k in _code(tokens)]
    leading = _leading(tokens)
    if leading.kind != "word" or leading.upper not in ALLOWED_LEADING:
        kind = leading.upper if leading.kind == "word" else leading.text
        known = kind in FORBIDDEN_KEYWORDS | LEADING_ONLY_FORBIDDEN
        what = f"{kind} statement" if known else f"statement starting with {kind}"
        raise Refused(f"refused: {what} — this CLI only runs read-only queries "
                      f"(statements starting with {ALLOWED_TEXT})")
    for k, t in enumerate(code):
        if t.kind != "word":
            continue
        followed_by_paren = k + 1 < len(code) and code[k + 1].text == "("
        if t.upper in FORBIDDEN_FUNCTIONS and followed_by_paren:
            raise Refused(f"refused: {t.text}() calls Java methods and is not allowed in the query CLI")
        if t.upper in FORBIDDEN_KEYWORDS and not (t.upper in FUNCTION_NAMES_ALLOWED and followed_by_paren):
            raise Refused(f"refused: {t.upper} — it changes tables, files or the session and this CLI is "
                          f"read-only (allowed: {ALLOWED_TEXT}); if {t.text} is a column name here, "
                          f"quote it: `{t.text}`")
    return statement


def _plan_nodes(plan, is_root: bool = True) -> Iterable[tuple[object, bool]]:
    """(node, is_root) for the plan, its children, and the plan an EXPLAIN explains (a field, not a child)."""
    yield plan, is_root
    if plan.getClass().getSimpleName() == "ExplainCommand":
        yield from _plan_nodes(plan.logicalPlan(), False)
    children = plan.children()
    for i in range(children.size()):
        yield from _plan_nodes(children.apply(i), False)


def check_plan(spark, statement: str) -> None:
    """Refuse a statement whose parsed logical plan contains a command or a write.

    Parsing runs nothing. A syntax error raises Spark's ParseException here, as running it would.
    """
    jvm = spark._jvm
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(statement)
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command")
    root = plan.getClass().getSimpleName()
    for node, is_root in _plan_nodes(plan):
        name = node.getClass().getSimpleName()
        if is_root and READ_ONLY_ROOT.match(name):
            continue
        if command.isAssignableFrom(node.getClass()) or WRITE_NODE.match(name):
            raise Refused(f"refused: the statement parses to {name} (a command that changes tables, files or the "
                          f"session{'' if name == root else ', inside ' + root}) — this CLI is read-only "
                          f"(allowed: {ALLOWED_TEXT})")


# --- rewriting ----------------------------------------------------------------------------------

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


def rewrite(statement: str, tables: dict[str, Table], layer_tables: dict[tuple[str, str], Table] | None = None) -> str:
    """Map table names Spark cannot time-travel or describe as temp views to ``delta.`path```.

    * ``<layer>.<name>`` -> ``<name>`` (or the table's path when that name is shadowed by another layer);
    * ``<name> VERSION|TIMESTAMP AS OF ...`` (and ``FOR SYSTEM_VERSION|SYSTEM_TIME AS OF``) -> path;
    * ``DESCRIBE|DESC HISTORY|DETAIL <name>`` -> path.
    Strings, comments and already-qualified names (``x.name``) are left alone.
    """
    tokens = tokenize(statement)
    layer_tables = layer_tables or {}
    # 1. <layer>.<name>: collapse the three tokens into one naming the table.
    resolved: dict[int, Table] = {}
    for k, t in enumerate(tokens):
        nxt = _next_code(tokens, k, 2)
        prev = _prev_code(tokens, k)
        if (t.ident and len(nxt) == 2 and tokens[nxt[0]].text == "." and tokens[nxt[1]].ident
                and (t.ident, tokens[nxt[1]].ident) in layer_tables
                and not (prev is not None and tokens[prev].text == ".")):
            table = layer_tables[(t.ident, tokens[nxt[1]].ident)]
            shadowed = tables.get(table.name.lower()) != table
            tokens[k] = Token("quoted" if shadowed else "word", table.delta_ref if shadowed else table.name)
            for j in range(k + 1, nxt[1] + 1):
                tokens[j] = Token("ws", "")
            resolved[k] = table
    # 2. time travel and DESCRIBE HISTORY / DETAIL on a known table name.
    for k, t in enumerate(tokens):
        if t.kind not in ("word", "quoted") or t.text.startswith("delta.`"):
            continue
        table = resolved.get(k) or tables.get(t.ident or "")
        if table is None:
            continue
        prev = _prev_code(tokens, k)
        if prev is not None and tokens[prev].text == ".":
            continue
        after = [tokens[j].upper for j in _next_code(tokens, k, 4)]
        travels = any(tuple(after[:len(p)]) == p for p in TIME_TRAVEL)
        before = [tokens[j].upper for j in (prev, _prev_code(tokens, prev) if prev is not None else None)
                  if j is not None]
        describes = (len(before) == 2 and before[0] in ("HISTORY", "DETAIL") and before[1] in ("DESCRIBE", "DESC"))
        if travels or describes:
            tokens[k] = Token("quoted", table.delta_ref)
    return "".join(t.text for t in tokens)


def referenced_tables(statement: str, tables: dict[str, Table]) -> list[Table]:
    """Tables a statement names: identifiers, and string literals such as IDENTIFIER('name')."""
    names = set()
    for t in tokenize(statement):
        if t.ident:
            names.add(t.ident)
        elif t.kind == "string" and len(t.text) >= 2:
            names.add(t.text[1:-1].lower())
    return [tables[n] for n in sorted(names) if n in tables]


# --- running ------------------------------------------------------------------------------------

_registered_views: set[str] = set()


def register_views(spark, tables: Iterable[Table]) -> None:
    """(Re)create a temp view per table; views this module made before and not asked for now are dropped."""
    wanted = {t.name for t in tables}
    for name in sorted(_registered_views - wanted):
        spark.catalog.dropTempView(name)
        _registered_views.discard(name)
    for table in tables:
        spark.read.format("delta").load(str(table.path)).createOrReplaceTempView(table.name)
        _registered_views.add(table.name)


def prepare(spark, sql: str, lake_root: Path):
    """Guard, rewrite, register the named tables and return the statement's DataFrame.

    Raises Refused before anything runs when the statement is not read-only.
    """
    statement = check_keywords(sql)
    everything = delta_tables(lake_root)
    tables = discover_tables(lake_root)
    by_layer = {(t.layer.lower(), t.name.lower()): t for t in everything}
    rewritten = rewrite(statement, tables, by_layer)
    check_plan(spark, rewritten)
    shows = _leading(tokenize(statement)).upper == "SHOW"
    needed = list(tables.values()) if shows else referenced_tables(rewritten, tables)
    register_views(spark, needed)
    return spark.sql(rewritten)


class _Progress:
    """An elapsed-time / task-count line on stderr while Spark works (only on a terminal)."""

    def __init__(self, spark, enabled: bool, delay_s: float = 1.0):
        self._spark, self._enabled, self._delay_s = spark, enabled, delay_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def __enter__(self):
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

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


def write_csv(df, path: Path) -> int:
    """The full result as one CSV file with a header; rows streamed in order (no driver-side collect)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(df.columns)
        for row in df.toLocalIterator():
            writer.writerow([_cell(v) for v in row])
            n += 1
    return n


def write_parquet(df, directory: Path) -> int:
    """The full result as a new Parquet directory (never overwrites: a typo must not delete a folder)."""
    if directory.exists():
        raise FileExistsError(f"{directory} already exists; give a new directory for --parquet")
    df.write.mode("errorifexists").parquet(str(directory))
    return df.sparkSession.read.parquet(str(directory)).count()


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


def _outside_lake(path: Path, lake_root: Path) -> bool:
    return not path.resolve().is_relative_to(lake_root.resolve())


# --- CLI ----------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs.query", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sql", nargs="?", help="one read-only statement; '-' reads it from stdin")
    p.add_argument("-f", "--file", type=Path, help="read the statement from this file")
    p.add_argument("--list", action="store_true", help="list every table: layer, name, version, path")
    p.add_argument("--counts", action="store_true", help="with --list: also count rows (starts Spark)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                   help=f"rows printed (default {DEFAULT_LIMIT}; 0 = all); files always get every row")
    p.add_argument("--truncate", type=int, default=DEFAULT_TRUNCATE,
                   help=f"shorten printed cells to this many characters (default {DEFAULT_TRUNCATE}; 0 = never)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", type=Path, metavar="FILE", help="write the full result to one CSV file")
    out.add_argument("--parquet", type=Path, metavar="DIR", help="write the full result to a new Parquet directory")
    p.add_argument("--lake-root", type=Path, help="lake root (default: COALCHAIN_LAKE_ROOT / Settings)")
    return p


def _list_tables(lake_root: Path, counts: bool) -> int:
    tables = discover_tables(lake_root)
    if not tables:
        print(f"no Delta tables under {lake_root}", file=sys.stderr)
        return EXIT_USAGE
    columns = ["layer", "table", "version"] + (["rows"] if counts else []) + ["path"]
    rows = []
    spark = _spark() if counts else None
    for t in tables.values():
        row = [t.layer, t.name, t.version]
        if counts:
            # Delta answers count(*) from the file statistics in its log: no data scan.
            row.append(spark.read.format("delta").load(str(t.path)).count())
        rows.append(row + [str(t.path)])
    print(render_table(columns, rows, truncate=0))
    return EXIT_OK


def _spark():
    from jobs.session import get_spark

    return get_spark("coalchain-query")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.lake_root is None:
        from jobs.settings import get_settings

        args.lake_root = get_settings().lake_root
    lake_root = args.lake_root
    if not lake_root.is_dir():
        print(f"error: lake root {lake_root} is not a directory (set --lake-root or COALCHAIN_LAKE_ROOT)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        return _list_tables(lake_root, args.counts)
    sql = _read_sql(args, parser)
    try:
        statement = check_keywords(sql)   # before Spark starts: a refusal costs nothing
    except Refused as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    target = args.csv or args.parquet
    if target is not None and not _outside_lake(target, lake_root):
        print(f"refused: {target} is inside the lake root {lake_root}; write results elsewhere", file=sys.stderr)
        return EXIT_REFUSED

    from pyspark.errors import PySparkException
    from py4j.protocol import Py4JError

    spark = _spark()
    # Failed tasks log JVM stack traces (log4j, ERROR) and PySpark logs every SQL error with its Java
    # trace (a Python logger with its own handler): the user gets one line from us instead.
    spark.sparkContext.setLogLevel("FATAL")
    pyspark_error_logger = logging.getLogger("SQLQueryContextLogger")
    pyspark_error_logger.disabled = True
    started = time.monotonic()
    try:
        with _Progress(spark, enabled=sys.stderr.isatty()):
            df = prepare(spark, statement, lake_root)
            if args.csv:
                n = write_csv(df, args.csv)
            elif args.parquet:
                n = write_parquet(df, args.parquet)
            else:
                rows = df.collect() if args.limit <= 0 else df.limit(args.limit + 1).collect()
    except Refused as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except (PySparkException, Py4JError, FileExistsError) as exc:
        print(_error_line(exc), file=sys.stderr)
        return EXIT_SQL_ERROR
    finally:
        spark.sparkContext.setLogLevel("WARN")
        pyspark_error_logger.disabled = False
    elapsed_s = time.monotonic() - started
    if target is not None:
        print(f"wrote {n:,} rows to {target} ({elapsed_s:,.1f} s)")
        return EXIT_OK
    truncated = 0 < args.limit < len(rows)
    rows = rows[:args.limit] if truncated else rows
    if len(df.columns) == 1 and len(rows) == 1 and isinstance(rows[0][0], str) and "\n" in rows[0][0]:
        print(rows[0][0])   # EXPLAIN and other one-cell texts read better as they are
    else:
        print(render_table(df.columns, rows, truncate=args.truncate))
    note = (f"first {len(rows)} rows shown; more exist (--limit N, --limit 0 for all, or --csv FILE)"
            if truncated else f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
    print(f"({note}; {elapsed_s:,.1f} s)", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
