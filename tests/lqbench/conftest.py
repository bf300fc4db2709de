"""Fixtures of the analysis tests (queries, report): one synthetic results file per session."""

import importlib.util
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def analysis_fixture():
    """tests/lqbench/analysis_fixture.py as a module (tests are not a package, so load it by path)."""
    name = "lqbench_analysis_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("analysis_fixture.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def analysis_db(analysis_fixture, tmp_path_factory):
    """The synthetic results file (FixtureInfo); it is only ever read."""
    return analysis_fixture.build_fixture_db(tmp_path_factory.mktemp("analysis_fixture") / "fixture.duckdb")


@pytest.fixture(scope="session")
def analysis_db_with_import(analysis_fixture, tmp_path_factory):
    """The synthetic results file plus an imported run (lqbench import) and a batched rerun of one config
    (tests of parallel_agreement); only ever read."""
    path = tmp_path_factory.mktemp("analysis_fixture_import") / "fixture.duckdb"
    info = analysis_fixture.build_fixture_db(path)
    analysis_fixture.add_imported_run(path)
    analysis_fixture.add_batched_rerun(path)
    return info


@pytest.fixture
def reuse_whatever_the_cpu_time(monkeypatch):
    """Lift the sandbox's CPU-time rule for reuse (REUSE_MAX_MS), so a test about what a
    reused state lets through does not depend on how fast this machine ran the program
    (a loaded CI machine once took over 5 ms of CPU for a LuaJIT probe and made a new state)."""
    from lqbench.scorer import sandbox
    monkeypatch.setattr(sandbox, "REUSE_MAX_MS", 60_000.0)
