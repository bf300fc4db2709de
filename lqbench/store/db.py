"""Opening the results file and migrating it.

DuckDB lets one process hold the file read-write *or* several processes hold it
read-only. lqbench's head is the only writer and opens the file around each batch;
`lqbench query` opens it read-only. Either side may find the other holding the
lock for a moment, so both retry briefly instead of failing.
"""

from __future__ import annotations

import contextlib
import re
import time
from importlib import resources
from pathlib import Path
from typing import Iterator

from lqbench.errors import LqbenchError

LOCK_RETRY_SECONDS = 30.0


def _migrations() -> list[tuple[int, str, str]]:
    out = []
    for entry in resources.files("lqbench.store").joinpath("migrations").iterdir():
        m = re.match(r"(\d+)_(.+)\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out)


SCHEMA_VERSION = max(v for v, _, _ in _migrations())


def _is_lock_error(exc: Exception) -> bool:
    """Another holder of the file, worth waiting for: another process's lock, or (within one
    process, e.g. a reader thread during a run) a connection opened with the other read_only mode."""
    text = str(exc).lower()
    return ("lock" in text or "conflicting" in text or "being used by another" in text
            or "different configuration" in text)


def _open(path: Path, read_only: bool, retry_s: float):
    import duckdb

    deadline = time.monotonic() + retry_s
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise LqbenchError(f"cannot open {path}: {str(exc).splitlines()[0]}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextlib.contextmanager
def connect_write(path: Path | str, retry_s: float = LOCK_RETRY_SECONDS) -> Iterator:
    """A read-write connection, migrated, closed on exit (commit on success, rollback on error)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only=False, retry_s=retry_s)
    try:
        migrate(con)
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


@contextlib.contextmanager
def connect_read_only(path: Path | str, retry_s: float = LOCK_RETRY_SECONDS) -> Iterator:
    path = Path(path)
    if not path.exists():
        raise LqbenchError(f"no results file at {path} (run `lqbench run` first, or pass --db)")
    con = _open(path, read_only=True, retry_s=retry_s)
    try:
        yield con
    finally:
        con.close()


def migrate(con) -> int:
    """Apply the numbered migrations not yet recorded in schema_migrations; return the version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    for version, name, sql in _migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION
