"""Shared test setup: every test gets its own LQBENCH_HOME; Ray, when used, stays on loopback."""

import os

import pytest

# Ray on Linux binds 127.0.0.1 only with this set; and never phone home.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")


@pytest.fixture(autouse=True)
def lqbench_home(tmp_path, monkeypatch):
    home = tmp_path / "lqbench_home"
    home.mkdir()
    monkeypatch.setenv("LQBENCH_HOME", str(home))
    monkeypatch.setenv("LQBENCH_DB", str(tmp_path / "results.duckdb"))
    return home
