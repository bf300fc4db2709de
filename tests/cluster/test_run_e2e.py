"""End to end on real parts: a Ray cluster of several nodes on loopback, the real demo GGUF
through llama.cpp, real Lua scoring, a real DuckDB file.

Nodes are `ray.cluster_utils.Cluster` nodes (separate raylets on 127.0.0.1), each offering one
agent slot and named by the `lqbench-name` label, as `lqbench join` would do on a laptop.
"""

from __future__ import annotations


import os

import duckdb
import pytest

from lqbench.plan import plan_from_dict
from lqbench.records import STATUSES

pytestmark = pytest.mark.e2e

TINY_PLAN = {
    "name": "tiny",
    "shard_size": 1,
    "models": [{"spec": "demo:gemma-3-270m", "quants": ["q4_k_m", "q2_k"]}],
    "suites": [{"name": "lqbench-lua", "limit": 3}],
    "sampling": {"temperature": 0.0, "max_tokens": 48, "seed": 5},
    "scoring": {"timeout_s": 5.0},
    "perplexity": {"n_ctx": 128, "max_tokens": 256},
}


def _samples(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [d[0] for d in con.execute("SELECT * FROM samples").description]
        return [dict(zip(cols, row)) for row in con.execute("SELECT * FROM samples").fetchall()]
    finally:
        con.close()


def test_tiny_plan_on_two_nodes_lands_every_sample_once(ray_cluster, tmp_path):
    from cluster.runner import run_plan

    ray_cluster.add_laptop("laptop-a")
    ray_cluster.add_laptop("laptop-b")
    db = tmp_path / "results.duckdb"
    summary = run_plan(plan_from_dict(TINY_PLAN), db=db, progress=False, n_threads=1, measure_bandwidth=False)
    assert summary.status == "finished"

    rows = _samples(db)
    keys = [(r["model_id"], r["task_id"], r["sample_idx"]) for r in rows]
    assert len(rows) == 2 * 3 and len(set(keys)) == len(keys)  # 2 quants x 3 tasks, each exactly once
    assert {r["status"] for r in rows} <= set(STATUSES)
    for r in rows:
        assert r["status"] != "generation_error", r["error"]
        assert r["prompt_tokens"] > 0 and r["prompt_ms"] > 0
        assert r["gen_tokens"] > 0 and r["gen_ms"] > 0
        assert r["ttft_ms"] > 0 and r["wall_ms"] >= r["ttft_ms"]
        assert r["peak_rss_mb"] > 0 and r["score_ms"] >= 0
    assert len({r["node_id"] for r in rows}) == 2  # both laptops took shards

    con = duckdb.connect(str(db), read_only=True)
    try:
        models = dict(con.execute("SELECT quant, requantized FROM models").fetchall())
        assert models == {"q4_k_m": False, "q2_k": True}
        assert con.execute("SELECT status FROM runs").fetchone()[0] == "finished"
        names = {r[0] for r in con.execute("SELECT json_extract_string(labels_json, '$.name') FROM nodes").fetchall()}
        assert names == {"laptop-a", "laptop-b"}
        assert con.execute("SELECT count(*) FROM shards WHERE load_ms > 0").fetchone()[0] >= 2
        ppl = {q: (p, kld, top1) for q, p, kld, top1 in con.execute(
            "SELECT m.quant, p.ppl, p.kld_mean, p.top1_agreement FROM perplexity p JOIN models m USING (model_id)"
        ).fetchall()}
        assert set(ppl) == {"q4_k_m", "q2_k"}
        assert ppl["q4_k_m"][1:] == (0.0, 1.0)  # the base (most bits) against itself
        assert ppl["q2_k"][0] > 1 and ppl["q2_k"][1] > 0 and 0 < ppl["q2_k"][2] < 1
    finally:
        con.close()

    # Every named query and the report run on this real run's file.
    from lqbench.querying import list_queries, run_query
    from lqbench.report.build import build_report

    for query in list_queries():
        columns, _ = run_query(db, query.name)
        assert columns, query.name
    columns, rows = run_query(db, "pass_at_1_by_model_quant", {"run_id": summary.run_id})
    assert sorted(r[columns.index("quant")].lower() for r in rows) == ["q2_k", "q4_k_m"]
    _, quality = run_query(db, "quality_proxy_vs_pass_at_1")
    assert len(quality) >= 2  # one row per quant with perplexity and pass@1
    build_report(db, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and summary.run_id in html


def _count_samples(db) -> int:
    from lqbench.store import connect_read_only

    if not db.exists():
        return 0
    try:
        with connect_read_only(db, retry_s=5) as con:
            return con.execute("SELECT count(*) FROM samples").fetchone()[0]
    except Exception:  # not migrated yet
        return 0


def _wait_for_samples(db, n, timeout_s=240, alive=lambda: True):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        if _count_samples(db) >= n:
            return True
        time.sleep(0.3)
    return False


FAULT_PLAN = {**{k: v for k, v in TINY_PLAN.items() if k != "perplexity"}, "models": [{"spec": "demo:gemma-3-270m", "quants": ["q4_k_m"]}],
              "suites": [{"name": "lqbench-lua", "limit": 8}], "sampling": {"temperature": 0.0, "max_tokens": 32}}


def _samples_by_node_name(db, name) -> list:
    from lqbench.store import connect_read_only

    if not db.exists():
        return []
    try:
        with connect_read_only(db, retry_s=5) as con:
            return con.execute(
                "SELECT s.task_id, s.created_at FROM samples s JOIN nodes n USING (node_id) "
                "WHERE json_extract_string(n.labels_json, '$.name') = ?", [name]).fetchall()
    except Exception:  # not migrated yet
        return []


def test_a_node_that_leaves_mid_run_loses_nothing(ray_cluster, tmp_path):
    """Three laptops with different labels; one is pulled out once it is working. The run
    completes on the others and every planned sample lands exactly once."""
    import threading
    import time
    from datetime import datetime, timezone

    from cluster.runner import run_plan

    ray_cluster.add_laptop("laptop-a", ram="16")
    doomed = ray_cluster.add_laptop("laptop-b", ram="8")
    ray_cluster.add_laptop("laptop-c", ram="32")
    db = tmp_path / "results.duckdb"
    plan = {**FAULT_PLAN, "suites": [{"name": "lqbench-lua", "limit": 12}],
            "sampling": {"temperature": 0.0, "max_tokens": 96}}
    out = {}

    def go():
        try:
            out["summary"] = run_plan(plan_from_dict(plan), db=db, progress=False, n_threads=1,
                                      measure_bandwidth=False)
        except BaseException as exc:  # surfaced below
            out["error"] = exc

    runner = threading.Thread(target=go)
    runner.start()
    deadline = time.monotonic() + 300
    while runner.is_alive() and not _samples_by_node_name(db, "laptop-b") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runner.is_alive(), f"the run ended before laptop-b did any work: {out}"
    removed_at = datetime.now(timezone.utc).replace(tzinfo=None)
    ray_cluster.remove_node(doomed)
    runner.join(600)
    assert not runner.is_alive() and "error" not in out, out
    summary = out["summary"]
    assert summary.status == "finished"
    rows = _samples(db)
    assert sorted(r["task_id"] for r in rows) == sorted({r["task_id"] for r in rows})  # no duplicates
    assert len(rows) == 12
    assert all(created <= removed_at for _, created in _samples_by_node_name(db, "laptop-b"))
    assert any(r["created_at"] > removed_at for r in rows)  # the others carried on after it left
    print("lost nodes reported:", summary.lost_nodes)


def test_resume_after_head_crash_computes_nothing_twice(ray_cluster, tmp_path):
    """`lqbench run --address` is killed -9 mid-run (a head crash); `--resume RUN_ID` finishes
    the run, keeping every sample already recorded and generating only the missing ones."""
    import signal
    import subprocess
    import sys

    from cluster.runner import run_plan

    ray_cluster.add_laptop("laptop-a")
    db = tmp_path / "results.duckdb"
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        'name = "crashy"\nshard_size = 2\n'
        '[[models]]\nspec = "demo:gemma-3-270m"\nquants = ["q4_k_m"]\n'
        '[[suites]]\nname = "lqbench-lua"\nlimit = 6\n'
        '[sampling]\ntemperature = 0.0\nmax_tokens = 32\n'
        # one sample at a time: batched, a shard's samples land together and the whole run can finish
        # between the poll that sees 2 samples and the kill (seen once), so nothing would be left to resume
        '[inference]\nparallel = 1\n'
    )
    token = os.environ["RAY_AUTH_TOKEN"]
    proc = subprocess.Popen([sys.executable, "-m", "lqbench.cli", "run", str(plan_file), "--address",
                             ray_cluster.address, "--token", token, "--db", str(db), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert _wait_for_samples(db, 2, alive=lambda: proc.poll() is None), proc.communicate()[0][-2000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    before = {(r["task_id"]): r["created_at"] for r in _samples(db)}
    assert 2 <= len(before) < 6
    con = duckdb.connect(str(db), read_only=True)
    run_id, status = con.execute("SELECT run_id, status FROM runs").fetchone()
    con.close()
    assert status == "running"  # the crash left it unfinished

    summary = run_plan(None, db=db, resume=run_id, progress=False, n_threads=1, measure_bandwidth=False)
    assert summary.status == "finished"
    assert summary.samples_written == 6 - len(before)
    after = {(r["task_id"]): r["created_at"] for r in _samples(db)}
    assert len(after) == 6
    assert all(after[t] == created for t, created in before.items())  # old samples untouched


def test_every_node_placement_with_a_label_selector(ray_cluster, tmp_path):
    """every-node: each task on every laptop the selector admits (for cross-hardware speed and
    determinism), and on no other; the greedy completions agree across nodes of one machine."""
    from cluster.runner import run_plan
    from lqbench.querying import run_query

    ray_cluster.add_laptop("laptop-a", team="ml")
    ray_cluster.add_laptop("laptop-b", team="ml")
    ray_cluster.add_laptop("laptop-c", team="web")
    plan = {**FAULT_PLAN, "placement": "every-node", "suites": [{"name": "lqbench-lua", "limit": 2}],
            "models": [{"spec": "demo:gemma-3-270m", "quants": ["q4_k_m"], "select": {"team": "ml"}}]}
    db = tmp_path / "results.duckdb"
    summary = run_plan(plan_from_dict(plan), db=db, progress=False, n_threads=1, measure_bandwidth=False)
    assert summary.status == "finished"
    rows = _samples(db)
    assert sorted((r["task_id"], r["replica"]) for r in rows) == sorted(
        (t, n) for t in {r["task_id"] for r in rows} for n in ("laptop-a", "laptop-b"))
    assert len(rows) == 4
    con = duckdb.connect(str(db), read_only=True)
    try:
        ran_on = {r[0] for r in con.execute(
            "SELECT DISTINCT json_extract_string(n.labels_json, '$.name') FROM samples s JOIN nodes n USING (node_id)"
        ).fetchall()}
    finally:
        con.close()
    assert ran_on == {"laptop-a", "laptop-b"}  # each replica on its own node, none on laptop-c
    _, diverging = run_query(db, "greedy_divergence_between_nodes")
    assert diverging == []  # same binary, same model, same prompt: byte-identical greedy output
