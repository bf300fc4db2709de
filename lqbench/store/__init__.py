"""The DuckDB results file: numbered migrations, the batched writer, read-only access."""

from lqbench.store.db import SCHEMA_VERSION, connect_read_only, connect_write, migrate
from lqbench.store.writer import ResultStore

__all__ = ["SCHEMA_VERSION", "ResultStore", "connect_read_only", "connect_write", "migrate"]
