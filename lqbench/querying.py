"""Named SQL queries over the results file: find them, read their headers, run them read-only, print them.

A named query is `queries/NAME.sql`, a single SELECT whose leading comment block is its documentation:

    -- purpose: what the rows answer, in one sentence
    -- params: $run_id VARCHAR = NULL  only this run (NULL: every run)
    -- params: $k INTEGER = 1  the k of pass@k
    -- returns: one row per ..., columns ...
    -- example: lqbench query NAME --param k=1

A `-- params:` line declares one DuckDB `$name` parameter with its type (VARCHAR, INTEGER, BIGINT,
DOUBLE, BOOLEAN) and an optional default; without a default the parameter is required. `-- params: none`
declares that there are none. An indented comment line (`--   more text`) continues the field above it.

`run_query(db, name_or_sql, params)` is the one entry point the CLI, the report and tests use; it returns
`(columns, rows)`. Ad-hoc SQL is allowed too, but only statements DuckDB itself classifies as SELECT
(which covers WITH, DESCRIBE and SHOW): the file is opened read-only and anything else is refused up front.
"""

from __future__ import annotations

import csv
import datetime as _dt
import decimal
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from lqbench.errors import LqbenchError

FORMATS = ("table", "csv", "json", "parquet")
PARAM_TYPES = ("VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN")
HEADER_KEYS = ("purpose", "params", "returns", "example")
# The tables and views of the DuckDB contract that `export_tables` writes out by default.
CONTRACT_TABLES = ("runs", "nodes", "models", "tasks", "shards", "samples", "perplexity")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PARAM_DECL_RE = re.compile(
    r"^\$(?P<name>[A-Za-z_]\w*)\s+(?P<type>[A-Za-z]+)(?:\s*=\s*(?P<default>'[^']*'|\S+))?\s*(?P<doc>.*)$"
)
_PARAM_USE_RE = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class QueryParam:
    name: str
    type: str
    default: object = None
    required: bool = False
    doc: str = ""

    def describe(self) -> str:
        tail = "required" if self.required else f"default {format_value(self.default, 'NULL')}"
        return f"${self.name} {self.type} ({tail})" + (f": {self.doc}" if self.doc else "")


@dataclass
class Query:
    name: str
    sql: str
    path: Path | None = None
    purpose: str = ""
    returns: str = ""
    example: str = ""
    params: list[QueryParam] = field(default_factory=list)

    def param(self, name: str) -> QueryParam | None:
        return next((p for p in self.params if p.name == name), None)


# ----------------------------------------------------------------- parsing
def _strip_sql_noise(sql: str) -> str:
    """SQL with comments, string literals and quoted identifiers blanked, in one left-to-right pass,
    so a `$x` (or an apostrophe) inside any of them is not mistaken for code."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif ch in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote escapes itself
                        j += 2
                        continue
                    break
                j += 1
            out.append(ch + ch)
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def used_params(sql: str) -> list[str]:
    """The `$name` parameters a statement uses, in first-use order."""
    seen: list[str] = []
    for name in _PARAM_USE_RE.findall(_strip_sql_noise(sql)):
        if name not in seen:
            seen.append(name)
    return seen


def _coerce(raw: str | None, type_: str, what: str) -> object:
    """A `--param` string (or header default) as a value of the declared type; NULL/none → None."""
    if raw is None:
        return None
    text = raw.strip()
    if text.upper() in ("NULL", "NONE", ""):
        return None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    try:
        if type_ in ("INTEGER", "BIGINT"):
            return int(text)
        if type_ == "DOUBLE":
            return float(text)
        if type_ == "BOOLEAN":
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
    except ValueError:
        raise LqbenchError(f"{what}: {raw!r} is not a valid {type_}") from None
    return text


def _guess(raw: str) -> object:
    """Value of a `--param` for ad-hoc SQL, which declares no types: int, float, NULL, else text."""
    text = raw.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text):
        return float(text)
    if text.upper() == "NULL":
        return None
    return raw


def parse_query(name: str, sql: str, path: Path | None = None) -> Query:
    """Read the documentation header of a query file; refuse malformed parameter declarations."""
    q = Query(name=name, sql=sql, path=path)
    fields_: dict[str, list[str]] = {k: [] for k in HEADER_KEYS}
    param_lines: list[str] = []
    current: str | None = None
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        body = stripped[2:]
        m = re.match(r"\s*(purpose|params|returns|example)\s*:\s*(.*)$", body, flags=re.I)
        if m:
            current = m.group(1).lower()
            text = m.group(2).strip()
            if current == "params":
                param_lines.append(text)
            else:
                fields_[current].append(text)
        elif current and body.startswith(("  ", "\t")) and body.strip():
            # an indented line ("--   more") continues the field above
            if current == "params" and param_lines:
                param_lines[-1] += " " + body.strip()
            elif current != "params":
                fields_[current].append(body.strip())
        else:
            current = None
    q.purpose = " ".join(fields_["purpose"])
    q.returns = " ".join(fields_["returns"])
    q.example = "\n".join(fields_["example"])
    for decl in param_lines:
        if decl.lower() in ("none", "none.", "-", ""):
            continue
        m = _PARAM_DECL_RE.match(decl)
        if not m or m.group("type").upper() not in PARAM_TYPES:
            raise LqbenchError(
                f"query {name}: bad '-- params:' line {decl!r} (want: $name TYPE [= default] description;"
                f" TYPE one of {', '.join(PARAM_TYPES)})"
            )
        type_ = m.group("type").upper()
        default_raw = m.group("default")
        required = default_raw is None
        default = None if required else _coerce(default_raw, type_, f"query {name}: default of ${m.group('name')}")
        q.params.append(QueryParam(m.group("name"), type_, default, required, m.group("doc").strip(" -—:")))
    undeclared = [p for p in used_params(sql) if q.param(p) is None]
    if undeclared:
        raise LqbenchError(f"query {name}: uses ${undeclared[0]} but its header declares no such parameter")
    return q


# ----------------------------------------------------------------- discovery
def _dir(queries_dir: Path | None) -> Path:
    if queries_dir is not None:
        return Path(queries_dir)
    from lqbench.paths import queries_dir as default_dir

    return default_dir()


def list_queries(queries_dir: Path | None = None) -> list[Query]:
    """Every `*.sql` in the queries directory, parsed, sorted by name."""
    d = _dir(queries_dir)
    if not d.is_dir():
        raise LqbenchError(f"no queries directory at {d}")
    return [parse_query(p.stem, p.read_text(encoding="utf-8"), p) for p in sorted(d.glob("*.sql"))]


def load_query(name: str, queries_dir: Path | None = None) -> Query:
    """`queries/NAME.sql` (or a path to a .sql file) as a parsed Query."""
    as_path = Path(name)
    if name.endswith(".sql") and as_path.is_file():
        return parse_query(as_path.stem, as_path.read_text(encoding="utf-8"), as_path)
    d = _dir(queries_dir)
    path = d / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(d.glob("*.sql"))) or "none"
        raise LqbenchError(f"unknown query {name!r} (known: {known}; run `lqbench query` to list them)")
    return parse_query(name, path.read_text(encoding="utf-8"), path)


def looks_like_name(text: str) -> bool:
    return bool(_NAME_RE.match(text.strip())) or (text.endswith(".sql") and Path(text).is_file())


def check_read_only(sql: str) -> None:
    """Refuse anything but a single SELECT-class statement (SELECT, WITH ..., DESCRIBE, SHOW)."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise LqbenchError(f"SQL does not parse: {str(exc).splitlines()[0]}") from None
    if not statements:
        raise LqbenchError("no SQL statement given")
    if len(statements) > 1:
        raise LqbenchError("one statement at a time, please (found %d)" % len(statements))
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise LqbenchError(
            f"refused: lqbench query runs SELECT/WITH queries only, read-only (this is {kind.name})"
        )


def resolve(name_or_sql: str, queries_dir: Path | None = None) -> Query:
    """A query name (or .sql path) → its file; anything else → ad-hoc SQL, checked to be read-only."""
    if looks_like_name(name_or_sql):
        return load_query(name_or_sql.strip(), queries_dir)
    check_read_only(name_or_sql)
    q = Query(name="(sql)", sql=name_or_sql)
    q.params = [QueryParam(p, "ANY", required=True) for p in used_params(name_or_sql)]
    return q


def bind_params(query: Query, given: dict[str, str] | Sequence[str] | None) -> dict[str, object]:
    """`--param k=v` strings (or a dict) as the exact parameter dict DuckDB wants for this query."""
    raw: dict[str, object] = {}
    if isinstance(given, dict):
        raw = dict(given)
    else:
        for item in given or ():
            if "=" not in item:
                raise LqbenchError(f"--param wants k=v, got {item!r}")
            k, v = item.split("=", 1)
            raw[k.strip().lstrip("$")] = v
    names = [p.name for p in query.params]
    unknown = [k for k in raw if k not in names]
    if unknown:
        takes = ", ".join("$" + n for n in names) or "no parameters"
        raise LqbenchError(f"query {query.name} has no parameter ${unknown[0]} (it takes {takes})")
    bound: dict[str, object] = {}
    for p in query.params:
        if p.name in raw:
            value = raw[p.name]
            if isinstance(value, str):
                value = _guess(value) if p.type == "ANY" else _coerce(value, p.type, f"--param {p.name}")
            bound[p.name] = value
        elif p.required:
            raise LqbenchError(f"query {query.name} needs --param {p.name}=VALUE ({p.describe()})")
        else:
            bound[p.name] = p.default
    # DuckDB refuses values for parameters a statement does not use, so bind only the used ones.
    used = set(used_params(query.sql))
    return {k: v for k, v in bound.items() if k in used}


# ----------------------------------------------------------------- running
def _execute(con, query: Query, params: dict):
    import duckdb

    try:
        return con.execute(query.sql, params) if params else con.execute(query.sql)
    except duckdb.CatalogException as exc:
        first = str(exc).splitlines()[0]
        raise LqbenchError(
            f"query {query.name}: {first} (is this an lqbench results file at the current schema?"
            " open it once with a current `lqbench run` to migrate it)"
        ) from None
    except duckdb.Error as exc:
        raise LqbenchError(f"query {query.name} failed: {str(exc).splitlines()[0]}") from None


def run_query(
    db: Path | str,
    name_or_sql: str,
    params: dict[str, str] | Sequence[str] | None = None,
    queries_dir: Path | None = None,
) -> tuple[list[str], list[tuple]]:
    """Run a named query (or read-only SQL) against a results file; return (columns, rows)."""
    from lqbench.store import connect_read_only

    query = resolve(name_or_sql, queries_dir)
    bound = bind_params(query, params)
    with connect_read_only(db) as con:
        cur = _execute(con, query, bound)
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
    return columns, rows


def write_parquet(
    db: Path | str,
    name_or_sql: str,
    out: Path | str,
    params: dict[str, str] | Sequence[str] | None = None,
    queries_dir: Path | None = None,
) -> int:
    """Write a query's result to a Parquet file (DuckDB's own writer); return the row count."""
    import duckdb

    from lqbench.store import connect_read_only

    query = resolve(name_or_sql, queries_dir)
    bound = bind_params(query, params)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with connect_read_only(db) as con:
        try:
            rel = con.sql(query.sql, params=bound or None)
            rel.write_parquet(str(out))
            return con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()[0]
        except duckdb.Error as exc:
            raise LqbenchError(f"query {query.name} failed: {str(exc).splitlines()[0]}") from None


def export_tables(db: Path | str, out_dir: Path | str, tables: Iterable[str] | None = None) -> list[tuple[str, int, Path]]:
    """Write whole tables and views to OUT_DIR/<name>.parquet; default: every table and view in the file.

    Returns (name, rows, path) per table written.
    """
    from lqbench.store import connect_read_only

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with connect_read_only(db) as con:
        present = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        wanted = list(tables) if tables else present
        missing = [t for t in wanted if t not in present]
        if missing:
            raise LqbenchError(f"no table or view {missing[0]!r} in {db} (there are: {', '.join(present)})")
        for name in wanted:
            path = out_dir / f"{name}.parquet"
            con.execute(f'COPY (SELECT * FROM "{name}") TO \'{_sql_string(str(path))}\' (FORMAT PARQUET)')
            rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            written.append((name, rows, path))
    return written


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


# ----------------------------------------------------------------- formatting
def format_value(value: object, null: str = "") -> str:
    """A cell for humans: floats to 4 significant digits (thousands with separators), NULL blank."""
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, decimal.Decimal):
        return format_value(float(value), null)
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, null) for v in value)
    return str(value)


def _json_default(value: object):
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _json_safe(value: object) -> object:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def to_csv(columns: Sequence[str], rows: Iterable[Sequence]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else v) for v in row])
    return buf.getvalue()


def to_json(columns: Sequence[str], rows: Iterable[Sequence]) -> str:
    records = [{c: _json_safe(v) for c, v in zip(columns, row)} for row in rows]
    return json.dumps(records, indent=2, default=_json_default) + "\n"


def to_table(columns: Sequence[str], rows: Sequence[Sequence], title: str | None = None):
    """A rich Table; numbers right-aligned."""
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    numeric = [
        bool(rows) and all(isinstance(r[i], (int, float, decimal.Decimal)) and not isinstance(r[i], bool)
                           for r in rows if r[i] is not None)
        for i in range(len(columns))
    ]
    for name, is_num in zip(columns, numeric):
        table.add_column(name, justify="right" if is_num else "left", overflow="fold")
    for row in rows:
        table.add_row(*(format_value(v) for v in row))
    return table


def catalog_rows(queries: Sequence[Query]) -> tuple[list[str], list[tuple]]:
    """The query list as rows: name first, then the header fields."""
    columns = ["name", "purpose", "params", "returns", "example"]
    rows = [
        (q.name, q.purpose, "; ".join(p.describe() for p in q.params) or "none", q.returns, q.example)
        for q in queries
    ]
    return columns, rows


def catalog_text(queries: Sequence[Query]) -> str:
    """The query list for a terminal: each query's name, then its header fields, indented (rich markup)."""
    from rich.markup import escape

    blocks = []
    for q in queries:
        lines = [f"[bold cyan]{escape(q.name)}[/]"]
        if q.purpose:
            lines.append(f"  {escape(q.purpose)}")
        for p in q.params:
            lines.append(f"  [dim]param[/]   {escape(p.describe())}")
        if q.returns:
            lines.append(f"  [dim]returns[/] {escape(q.returns)}")
        for ex in q.example.splitlines():
            lines.append(f"  [dim]example[/] {escape(ex)}")
        blocks.append("\n".join(lines))
    if not blocks:
        return "no queries found"
    return "\n\n".join(blocks) + "\n\nrun one: lqbench query NAME [--param k=v] [--format table|csv|json|parquet]"
