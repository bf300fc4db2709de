"""Crash containment on real parts: Ray on loopback, the demo GGUF, real SIGSEGVs and hangs.

A node's engine is made to crash or hang with the test-only switch LQBENCH_TEST_ENGINE_FAULT
(`lqbench.engine_worker`), set in the environment of the Ray nodes this test starts: the engine
process (or the agent itself) really dies of SIGSEGV, or really stops answering. No plan key can
reach the switch.
"""

from __future__ import annotations

import time

import duckdb
import pytest

from lqbench.engine_worker import FAULT_ENV
from lqbench.plan import plan_from_dict

pytestmark = pytest.mark.e2e


def _plan(tasks: int = 4, **inference) -> dict:
    return {
        "name": "crashy",
        "shard_size": 2,
        "models": [{"spec": "demo:gemma-3-270m", "quants": ["q4_k_m"]}],
        "suites": [{"name": "lqbench-lua", "limit": tasks}],
        "sampling": {"temperature": 0.0, "max_tokens": 16, "seed": 3},
        "scoring": {"timeout_s": 5.0},
        "inference": {"n_threads": 1, **inference},
    }


def _rows(db, sql, params=()):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_a_node_whose_engine_segfaults_is_crashed_not_lost_and_the_other_node_does_all(ray_cluster, tmp_path,
                                                                                       monkeypatch):
    from cluster.runner import run_plan

    monkeypatch.setenv(FAULT_ENV, "laptop-b:crash")
    ray_cluster.add_laptop("laptop-a")
    ray_cluster.add_laptop("laptop-b")
    db = tmp_path / "results.duckdb"
    t0 = time.monotonic()
    summary = run_plan(plan_from_dict(_plan(tasks=6, max_crashes=2)), db=db, progress=False,
                       measure_bandwidth=False)
    took = time.monotonic() - t0
    assert took < 300
    assert summary.status == "finished" and summary.lost_nodes == []
    assert summary.excluded == 1
    [line] = summary.engine_failures
    assert line.startswith("gemma-3-270m:q4_k_m on laptop-b: excluded after crashed 2 times (SIGSEGV")
    assert "with extra_bufts=on, extra_bufts=off" in line

    rows = _rows(db, "SELECT s.task_id, s.sample_idx, json_extract_string(n.labels_json, '$.name'), s.status, "
                     "s.engine_config, s.engine_build FROM samples s JOIN nodes n USING (node_id)")
    keys = [(r[0], r[1]) for r in rows]
    assert len(rows) == 6 and len(set(keys)) == 6  # every sample exactly once
    assert {r[2] for r in rows} == {"laptop-a"}
    assert all(r[3] != "generation_error" for r in rows)
    assert {r[4] for r in rows} == {"extra_bufts=on"} and all(r[5] for r in rows)
    attempts = _rows(db, "SELECT status, engine_config, error FROM shards WHERE status <> 'finished' ORDER BY 2")
    assert [(a[0], a[1]) for a in attempts] == [("crashed", "extra_bufts=off"), ("crashed", "extra_bufts=on")]
    assert all(a[2].startswith("SIGSEGV") for a in attempts)


def test_a_crash_only_with_extra_buffer_types_falls_back_and_the_samples_say_so(ray_cluster, tmp_path, monkeypatch):
    from cluster.runner import run_plan

    monkeypatch.setenv(FAULT_ENV, "crash-extra-bufts")  # what llama.cpp's AMX kernels do on some Xeons
    ray_cluster.add_laptop("laptop-a")
    db = tmp_path / "results.duckdb"
    summary = run_plan(plan_from_dict(_plan(tasks=3)), db=db, progress=False, measure_bandwidth=False)
    assert summary.status == "finished" and summary.excluded == 0
    assert summary.engine_failures == ["gemma-3-270m:q4_k_m on laptop-a: crashed once (SIGSEGV during generate) "
                                       "with extra_bufts=on; continued with extra_bufts=off"]
    rows = _rows(db, "SELECT status, engine_config FROM samples")
    assert len(rows) == 3 and {r[1] for r in rows} == {"extra_bufts=off"}
    assert all(r[0] != "generation_error" for r in rows)


def _snapshot(db):
    return _rows(db, "SELECT * FROM samples ORDER BY ALL"), _rows(db, "SELECT * FROM runs ORDER BY ALL")


def test_a_run_whose_every_generation_crashes_ends_bounded_with_the_cause(ray_cluster, tmp_path, monkeypatch):
    from cluster.runner import run_plan

    db = tmp_path / "results.duckdb"
    node_a = ray_cluster.add_laptop("laptop-a")
    first = run_plan(plan_from_dict(_plan(tasks=2)), db=db, progress=False, measure_bandwidth=False)
    assert first.status == "finished"
    before_samples, before_runs = _snapshot(db)

    # A second laptop whose every generation crashes; the first one leaves.
    monkeypatch.setenv(FAULT_ENV, "laptop-z:crash")
    ray_cluster.add_laptop("laptop-z")
    ray_cluster.remove_node(node_a)
    t0 = time.monotonic()
    summary = run_plan(plan_from_dict(_plan(tasks=3, max_crashes=3)), db=db, progress=False,
                       measure_bandwidth=False)
    took = time.monotonic() - t0
    assert took < 180, took  # 3 crashes, each a model load and one sample: seconds, not forever
    assert summary.status == "failed" and summary.excluded == 1
    assert len(summary.engine_failures) == 1 and "laptop-z: excluded after crashed 3 times" in \
        summary.engine_failures[0]
    rows = _rows(db, "SELECT status, error FROM samples WHERE run_id = ?", [summary.run_id])
    assert len(rows) == 3 and {r[0] for r in rows} == {"generation_error"}
    assert all(r[1].startswith("engine failed on every node that could run it — laptop-z: crashed 3 times")
               for r in rows)
    # The earlier run's rows are untouched.
    after_samples = [r for r in _rows(db, "SELECT * FROM samples ORDER BY ALL") if r[0] == first.run_id]
    assert after_samples == before_samples
    assert [r for r in _rows(db, "SELECT * FROM runs ORDER BY ALL") if r[0] == first.run_id] == before_runs


def test_an_agent_that_dies_is_a_crash_and_a_hang_is_bounded(ray_cluster, tmp_path, monkeypatch):
    from cluster.runner import run_plan

    # laptop-a's engine kills its agent process (SIGSEGV to the Ray actor); laptop-b's engine hangs.
    monkeypatch.setenv(FAULT_ENV, "laptop-a:crash-agent,laptop-b:hang")
    ray_cluster.add_laptop("laptop-a")
    ray_cluster.add_laptop("laptop-b")
    db = tmp_path / "results.duckdb"
    t0 = time.monotonic()
    summary = run_plan(plan_from_dict(_plan(tasks=2, max_crashes=2, hang_timeout_s=3.0)), db=db, progress=False,
                       measure_bandwidth=False)
    assert time.monotonic() - t0 < 240
    assert summary.lost_nodes == []  # both nodes stayed alive: neither is "lost"
    assert summary.status == "failed" and summary.excluded == 2
    lines = sorted(summary.engine_failures)
    assert lines[0].startswith("gemma-3-270m:q4_k_m on laptop-a: excluded after crashed 2 times (the agent process died")
    assert lines[1].startswith("gemma-3-270m:q4_k_m on laptop-b: excluded after hung 2 times (no reply to generate in 3 s")
    rows = _rows(db, "SELECT status FROM samples WHERE run_id = ?", [summary.run_id])
    assert len(rows) == 2 and {r[0] for r in rows} == {"generation_error"}
