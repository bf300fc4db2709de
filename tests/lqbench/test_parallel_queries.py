"""The parallel_agreement query: samples made one at a time and batched, paired and counted, on a small
results file whose answers are worked out here by hand."""

from __future__ import annotations

import pytest

from lqbench.querying import run_query
from lqbench.records import SampleRecord
from lqbench.store import ResultStore

MODELS = [dict(model_id="m4", name="coder", quant="Q4_K_M", sha256="4" * 64, file_bytes=400, bits_per_weight=4.85)]


def sample(run, task, n_parallel, completion, passed, status=None, engine="0.3.36+abc extra_bufts=on", seed=1):
    build, config = engine.split(" ")
    return SampleRecord(
        run_id=run, node_id="node-a", model_id="m4", suite="s", task_id=task, sample_idx=0, replica="", seed=seed,
        completion=completion, status=status or ("pass" if passed else "assertion_failure"), passed=passed,
        error=None, prompt_tokens=50, gen_tokens=10, prompt_ms=10.0, gen_ms=200.0, ttft_ms=30.0, wall_ms=220.0,
        score_ms=1.0, peak_rss_mb=300.0, created_at="2026-12-01 10:00:00", shard_id="sh", suite_version="v1",
        temperature=0.0, finish_reason="stop", n_threads=2, engine_build=build, engine_config=config,
        n_parallel=n_parallel)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("parallel") / "p.duckdb"
    store = ResultStore(path)
    store.ensure()
    store.upsert_models(MODELS)
    for run in ("one", "four", "other"):
        store.begin_run(run, {"plan": "p"}, "p")
    single = [sample("one", f"t{i}", 1, f"code {i}", i < 3) for i in range(6)]
    batched = [sample("four", "t0", 4, "code 0", True),               # identical
               sample("four", "t1", 4, "code 1", True),               # identical
               sample("four", "t2", 4, "code 2 but longer", False),   # differs, verdict flips
               sample("four", "t3", 4, "code 3 but longer", True),    # differs, verdict flips the other way
               sample("four", "t4", 4, "code 4 other", False, status="syntax_error"),  # differs, status only
               sample("four", "t5", 4, "code 5", False, seed=2)]      # another seed: not the same sample
    other_engine = [sample("other", "t0", 8, "x", False, engine="0.3.36+def extra_bufts=off")]  # other engine
    store.write_batch(single + batched + other_engine, [])
    return path


def test_pairs_counted_by_hand(db):
    cols, rows = run_query(db, "parallel_agreement")
    assert len(rows) == 1  # the other engine's sample has no single-stream twin
    r = dict(zip(cols, rows[0]))
    assert (r["n_parallel"], r["n_pairs"], r["identical"], r["verdict_flips"], r["status_changes"]) == (4, 5, 2, 2, 3)
    assert r["identical_rate"] == 0.4 and r["flip_rate"] == 0.4
    assert r["pass_at_1_single"] == 0.6 and r["pass_at_1_batched"] == 0.6
    assert r["runs"] == "one vs four"


def test_run_filter(db):
    assert run_query(db, "parallel_agreement", {"run_id": "four"})[1]
    assert run_query(db, "parallel_agreement", {"run_id": "other"})[1] == []


def test_the_report_states_the_agreement_in_its_provenance(db, tmp_path):
    from lqbench.report import build_report

    html = build_report(db, tmp_path / "r.html").path.read_text()
    provenance = html[html.index('id="provenance"'):]
    assert "4 sequences vs one: 2 of 5 completions byte-identical (40.0 %), 2 verdicts flipped (40.0 %)" in provenance
    only_batched = build_report(db, tmp_path / "o.html", run_id="other").path.read_text()
    assert "holds no sample made both one at a time and batched" in only_batched


def test_the_batched_rerun_of_the_analysis_fixture(analysis_db_with_import):
    cols, rows = run_query(analysis_db_with_import.path, "parallel_agreement")
    (r,) = [dict(zip(cols, x)) for x in rows]
    n = analysis_db_with_import.n_tasks
    changed = (n + 3) // 4  # every fourth sample, in task order
    assert (r["model"], r["quant"], r["n_parallel"], r["n_pairs"]) == ("tinycoder-1b", "Q4_K_M", 4, n)
    assert (r["identical"], r["verdict_flips"], r["runs"]) == (n - changed, 2, "run-greedy vs run-batched")
