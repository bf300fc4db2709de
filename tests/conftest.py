"""Shared test setup: every test gets its own LQBENCH_HOME; Ray, when used, stays on loopback."""

import os
import secrets

import pytest

# Ray on Linux binds 127.0.0.1 only with this set; and never phone home.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Token auth on for every Ray process the tests start, as `lqbench head` does in production.
# Ray reads the mode once per process when it is first imported, so it is set here, before
# any test module imports ray; a driver and the cluster it joins must agree on it.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


@pytest.fixture(scope="session")
def shared_model_cache(tmp_path_factory):
    """One model cache for the whole session: the demo GGUF is assembled and quantized once."""
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="session")
def demo_gguf(shared_model_cache):
    """Path of the demo model's GGUF (Q4_K_M) in the session's model cache, made once."""
    from lqbench.models import resolve_model

    old = os.environ.get("LQBENCH_MODEL_CACHE")
    os.environ["LQBENCH_MODEL_CACHE"] = str(shared_model_cache)
    try:
        return resolve_model("demo:gemma-3-270m").path
    finally:
        if old is None:
            os.environ.pop("LQBENCH_MODEL_CACHE")
        else:
            os.environ["LQBENCH_MODEL_CACHE"] = old


@pytest.fixture(autouse=True)
def lqbench_home(tmp_path, monkeypatch, shared_model_cache):
    home = tmp_path / "lqbench_home"
    home.mkdir()
    monkeypatch.setenv("LQBENCH_HOME", str(home))
    monkeypatch.setenv("LQBENCH_DB", str(tmp_path / "results.duckdb"))
    monkeypatch.setenv("LQBENCH_MODEL_CACHE", str(shared_model_cache))
    return home
