"""Read MultiPL-E-format suites from files: `.jsonl`, `.json` (an array or one object), `.parquet`.

A MultiPL-E row has `name`, `language`, `prompt`, `tests` and `stop_tokens`; we
turn each into a `TaskSpec` (name -> task_id), keep `topic`/`difficulty` when a
row has them, and keep every other field (MultiPL-E's `doctests`, `original`,
`prompt_terminology`, ...) in `TaskSpec.meta_json`. Rows that cannot be a Lua
task are reported as "file:line: what is wrong" (for Parquet, "file:row N") and
either refuse the whole suite (strict) or are skipped and listed in
`Suite.issues` -- never dropped silently. `write_jsonl` writes tasks back out
in the same row form, so any suite can be fed to MultiPL-E's own tooling.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any, Iterable, Iterator

from lqbench.errors import LqbenchError
from lqbench.tasks import LUA_STOP_TOKENS, Suite, TaskSpec, meta_to_json, stamp_version

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json", ".parquet", ".jsonl.gz", ".json.gz")
# Row fields that map onto TaskSpec; everything else goes to meta.
_SPEC_FIELDS = ("name", "language", "prompt", "tests", "stop_tokens", "topic", "difficulty")


class MalformedRow(ValueError):
    """One row that cannot become a task; the message says why (without the location)."""


def suite_name_for(path: Path) -> str:
    """`humaneval-lua.jsonl.gz` -> `humaneval-lua`."""
    name = path.name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def task_from_row(row: Any, suite: str) -> TaskSpec:
    """One MultiPL-E row as a Lua TaskSpec; raises MalformedRow naming the first problem."""
    if not isinstance(row, dict):
        raise MalformedRow(f"expected a JSON object, got {type(row).__name__}")
    for key in ("name", "prompt", "tests"):
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise MalformedRow(f"field {key!r} is missing or not a non-empty string")
    language = row.get("language", "lua")
    if not isinstance(language, str) or language.lower() != "lua":
        raise MalformedRow(f"language is {language!r}, not 'lua'")
    stop_tokens = row.get("stop_tokens")
    if stop_tokens is None:
        stop_tokens = LUA_STOP_TOKENS
    elif isinstance(stop_tokens, str) or not hasattr(stop_tokens, "__iter__"):
        raise MalformedRow("stop_tokens must be a list of strings")
    stop_tokens = list(stop_tokens)
    if not all(isinstance(s, str) and s for s in stop_tokens):
        raise MalformedRow("stop_tokens must be a list of non-empty strings")
    for key in ("topic", "difficulty"):
        if row.get(key) is not None and not isinstance(row[key], str):
            raise MalformedRow(f"{key} must be a string")
    extra = {k: v for k, v in row.items() if k not in _SPEC_FIELDS}
    return TaskSpec(
        suite=suite,
        task_id=row["name"],
        prompt=row["prompt"],
        tests=row["tests"],
        stop_tokens=tuple(stop_tokens),
        language="lua",
        topic=row.get("topic") or "",
        difficulty=row.get("difficulty") or "",
        meta_json=meta_to_json(extra),
    )


def suite_from_rows(rows: Iterable[tuple[str, Any]], name: str, source: str, *, strict: bool) -> Suite:
    """A suite from (location, row) pairs; a row given as a MalformedRow is an unreadable line."""
    tasks: list[TaskSpec] = []
    issues: list[str] = []
    first_seen: dict[str, str] = {}

    def report(message: str) -> None:
        if strict:
            raise LqbenchError(message)
        issues.append(message)
        log.info("skipped %s", message)

    for location, row in rows:
        if isinstance(row, MalformedRow):
            report(f"{location}: {row}")
            continue
        try:
            task = task_from_row(row, name)
        except MalformedRow as exc:
            report(f"{location}: {exc}")
            continue
        if task.task_id in first_seen:
            report(f"{location}: duplicate task {task.task_id!r} (first at {first_seen[task.task_id]})")
            continue
        first_seen[task.task_id] = location
        tasks.append(task)
    if not tasks:
        report(f"{source}: no tasks")
    version, tasks = stamp_version(name, tasks)
    return Suite(name=name, version=version, tasks=tasks, issues=issues, source=source)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise LqbenchError(f"{path}: cannot read: {exc}") from exc


def iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """(path:line, row) for every non-blank line; unparseable lines come as MalformedRow."""
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{lineno}", json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"{path}:{lineno}", MalformedRow(f"invalid JSON ({exc.msg}, column {exc.colno})")


def iter_json(path: Path) -> Iterator[tuple[str, Any]]:
    """(path:line, row) for a JSON array of rows (line = where each element starts) or one object."""
    text = _read_text(path)
    decoder = json.JSONDecoder()

    def line_of(pos: int) -> str:
        return f"{path}:{text.count(chr(10), 0, pos) + 1}"

    def skip_ws(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = skip_ws(0)
    if text.startswith("{", pos):
        try:
            row, _ = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield line_of(exc.pos), MalformedRow(f"invalid JSON ({exc.msg})")
            return
        yield line_of(pos), row
        return
    if not text.startswith("[", pos):
        yield line_of(pos), MalformedRow("not a JSON array of tasks or a single task object")
        return
    pos = skip_ws(pos + 1)
    if text.startswith("]", pos):
        return
    while True:
        try:
            row, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            # Past a syntax error we cannot tell where the next element starts.
            yield line_of(exc.pos), MalformedRow(f"invalid JSON ({exc.msg}); the rest of the file is unreadable")
            return
        yield line_of(pos), row
        pos = skip_ws(end)
        if text.startswith(",", pos):
            pos = skip_ws(pos + 1)
        elif text.startswith("]", pos):
            return
        else:
            yield line_of(pos), MalformedRow("expected ',' or ']' after an element; the rest is unreadable")
            return


def iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    """(path:row N, row) for every row of a Parquet file, read with DuckDB's read_parquet."""
    import duckdb

    try:
        with duckdb.connect() as con:
            cursor = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LqbenchError(f"{path}: not a readable Parquet file: {first_line}") from exc
    for i, values in enumerate(rows, 1):
        yield f"{path}:row {i}", dict(zip(columns, values))


def load_multipl_e_file(path: Path, *, name: str | None = None, strict: bool = True, source: str = "") -> Suite:
    """A suite from a MultiPL-E `.jsonl`, `.json` or `.parquet` file (optionally `.gz` for JSON)."""
    path = Path(path)
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        rows = iter_jsonl(path)
    elif path.name.endswith((".json", ".json.gz")):
        rows = iter_json(path)
    elif path.name.endswith(".parquet"):
        rows = iter_parquet(path)
    else:
        raise LqbenchError(f"{path}: unknown suite file type; expected one of {', '.join(SUFFIXES)}")
    return suite_from_rows(rows, name or suite_name_for(path), source or str(path), strict=strict)


def task_to_row(task: TaskSpec) -> dict:
    """A task in MultiPL-E row form (the inverse of `task_from_row`)."""
    row = {"name": task.task_id, "language": task.language, "prompt": task.prompt, "tests": task.tests,
           "stop_tokens": list(task.stop_tokens)}
    if task.topic:
        row["topic"] = task.topic
    if task.difficulty:
        row["difficulty"] = task.difficulty
    row.update(task.meta)
    return row


def write_jsonl(tasks: Iterable[TaskSpec], path: Path) -> int:
    """Write tasks as MultiPL-E JSONL rows; returns how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(task_to_row(task), ensure_ascii=False) + "\n")
            n += 1
    return n
