"""The engine in its own process: real llama.cpp on the demo GGUF; real crashes and hangs contained.

The crash and hang are made by the test-only fault switch of `lqbench.engine_worker`
(LQBENCH_TEST_ENGINE_FAULT): the engine process really dies of SIGSEGV, or really stops answering.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from lqbench.engine import DEFAULT, SAFE, EngineFailure, parse_buffer_types
from lqbench.engine_process import EngineProcess, describe_exit
from lqbench.engine_worker import FAULT_ENV, faults_for
from lqbench.generation import SamplingParams

PROMPT = "local function add(a, b)\n"


def test_fault_switch_parses_per_node_and_wildcards():
    assert faults_for("a", None) == set() and faults_for("a", "") == set()
    assert faults_for("a", "crash") == {"crash"}
    assert faults_for("a", "b:crash, a:hang") == {"hang"}
    assert faults_for("a", "*:crash-extra-bufts") == {"crash-extra-bufts"}
    assert faults_for("c", "a:crash,b:hang") == set()


def test_exit_descriptions_name_the_signal():
    assert describe_exit(-signal.SIGSEGV) == "SIGSEGV"
    assert describe_exit(-signal.SIGABRT) == "SIGABRT"
    assert describe_exit(3) == "exit code 3"


def test_buffer_types_are_read_from_llama_cpp_load_log():
    log = ("load_tensors:   CPU_Mapped model buffer size =   170.32 MiB\n"
           "load_tensors:   CPU_REPACK model buffer size =    80.00 MiB\n"
           "llama_context:        CPU  output buffer size =     1.00 MiB\n")
    assert parse_buffer_types(log) == {"CPU_Mapped": 170.32, "CPU_REPACK": 80.0}


@pytest.fixture(scope="module")
def demo_path():
    from lqbench.doctor import demo_model_path

    return demo_model_path()


@pytest.mark.e2e
def test_generation_in_the_engine_process_and_the_configuration_it_used(demo_path):
    with EngineProcess() as engine:
        load_ms = engine.load(demo_path, DEFAULT, n_threads=1, n_ctx=256)
        assert load_ms > 0 and engine.load_info["buffer_types"]
        assert engine.load(demo_path, DEFAULT, n_threads=1, n_ctx=256) is None  # loaded already
        comp = engine.generate(PROMPT, SamplingParams(max_tokens=8))
        assert comp.gen_tokens > 0 and comp.gen_ms > 0 and comp.peak_rss_mb > 50
        default_buffers = engine.load_info["buffer_types"]
        engine.load(demo_path, SAFE, n_threads=1, n_ctx=256)
        assert engine.config == SAFE
        safe_buffers = engine.load_info["buffer_types"]
        safe = engine.generate(PROMPT, SamplingParams(max_tokens=8))
    # Without extra buffer types nothing is repacked; greedy output of a tiny prompt agrees.
    assert "CPU_REPACK" not in safe_buffers and "AMX" not in safe_buffers, safe_buffers
    assert set(safe_buffers) <= set(default_buffers) | {"CPU", "CPU_Mapped"}
    assert safe.text == comp.text


@pytest.mark.e2e
def test_a_segfault_in_the_engine_is_a_reported_crash_and_the_next_load_works(demo_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "crash-extra-bufts")
    engine = EngineProcess()
    try:
        engine.load(demo_path, DEFAULT, n_threads=1, n_ctx=256)
        first = engine.pid
        with pytest.raises(EngineFailure) as info:
            engine.generate(PROMPT, SamplingParams(max_tokens=4))
        assert info.value.what == "crashed"
        assert info.value.reason.startswith("SIGSEGV") and "during generate" in info.value.reason
        assert info.value.config == DEFAULT
        assert engine.pid is None and engine.loaded is None
        with pytest.raises(ProcessLookupError):
            os.kill(first, 0)  # the child is gone, not left behind
        # The caller (the agent) carries on with the safe configuration in a new process.
        engine.load(demo_path, SAFE, n_threads=1, n_ctx=256)
        assert engine.pid != first
        assert engine.generate(PROMPT, SamplingParams(max_tokens=4)).gen_tokens > 0
    finally:
        engine.close()


@pytest.mark.e2e
def test_a_hung_engine_is_killed_after_the_timeout(demo_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "hang")
    engine = EngineProcess(hang_timeout_s=2.0)
    try:
        engine.load(demo_path, DEFAULT, n_threads=1, n_ctx=256)
        pid = engine.pid
        t0 = time.monotonic()
        with pytest.raises(EngineFailure) as info:
            engine.generate(PROMPT, SamplingParams(max_tokens=4))
        assert 1.5 < time.monotonic() - t0 < 30
        assert info.value.what == "hung" and "no reply to generate in 2 s" in info.value.reason
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        engine.close()


def test_a_normal_error_in_the_engine_is_an_exception_not_a_crash(tmp_path):
    not_a_model = tmp_path / "x.gguf"
    not_a_model.write_bytes(b"not a gguf at all")
    with EngineProcess() as engine:
        with pytest.raises(Exception) as info:
            engine.load(str(not_a_model), DEFAULT, n_threads=1)
        assert not isinstance(info.value, EngineFailure)
        assert "GGUF" in str(info.value) or "gguf" in str(info.value)
        assert engine.pid is not None  # still alive and usable
