"""Where lqbench keeps things: LQBENCH_HOME (model cache, default DB) and the repo's queries."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """LQBENCH_HOME, default ~/.lqbench; created on first use."""
    root = Path(os.environ.get("LQBENCH_HOME") or Path.home() / ".lqbench").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def model_cache() -> Path:
    """Content-addressed GGUF cache: <home>/models/<sha256>.gguf, or $LQBENCH_MODEL_CACHE
    (a laptop may keep its multi-GB models on another disk; tests share one cache)."""
    override = os.environ.get("LQBENCH_MODEL_CACHE")
    d = Path(override).expanduser() if override else home() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_db() -> Path:
    """The results file the CLI uses when --db is not given: ./lqbench.duckdb."""
    return Path(os.environ.get("LQBENCH_DB", "lqbench.duckdb"))


def queries_dir() -> Path:
    """The named SQL queries shipped in the repository's top-level queries/."""
    override = os.environ.get("LQBENCH_QUERIES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "queries"
