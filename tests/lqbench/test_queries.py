"""What each named query in queries/ answers, recomputed in Python from the raw rows of the fixture DB."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from lqbench import metrics
from lqbench.querying import run_query


@pytest.fixture(scope="module")
def fx(analysis_db):
    return analysis_db


def records(db, name, params=None):
    columns, rows = run_query(db, name, params)
    return [dict(zip(columns, r)) for r in rows]


def raw(db, sql, params=None):
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


SAMPLES = ("SELECT s.*, m.name, m.quant, m.file_bytes, m.bits_per_weight FROM samples s"
           " JOIN models m USING (model_id)")


# ------------------------------------------------------------------ pass@k
def _units(fx, run_id=None):
    """(name, quant, prompt_style) -> {(suite, task): [(n, c) per (run, replica) unit]}"""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: [0, 0])))
    for s in raw(fx.path, SAMPLES):
        if run_id and s["run_id"] != run_id:
            continue
        unit = out[(s["name"], s["quant"], s["prompt_style"])][(s["suite"], s["task_id"])][(s["run_id"], s["replica"])]
        unit[0] += 1
        unit[1] += int(s["passed"])
    return out


@pytest.mark.parametrize("k", [1, 3, 5])
def test_pass_at_k_point_estimates(fx, k):
    rows = records(fx.path, "pass_at_k_by_model_quant_suite", {"k": k, "resamples": 0})
    units = _units(fx)
    expected = {}
    for config, tasks in units.items():
        per_task = {}
        for task, us in tasks.items():
            vals = [metrics.pass_at_k(n, c, k) for n, c in us.values() if n >= k]
            if vals:
                per_task[task] = sum(vals) / len(vals)
        for suite in {t[0] for t in per_task} | {"(all)"}:
            vals = [v for t, v in per_task.items() if suite in ("(all)", t[0])]
            if vals:
                expected[(*config, suite)] = (sum(vals) / len(vals), len(vals))
    got = {(r["model"], r["quant"], r["prompt_style"], r["suite"]): (r["pass_at_k"], r["n_tasks"]) for r in rows}
    assert got.keys() == expected.keys() and got
    for key, (value, n_tasks) in expected.items():
        assert got[key][0] == pytest.approx(value, abs=1e-4) and got[key][1] == n_tasks
    assert all(r["ci_low"] is None for r in rows)  # resamples = 0: no interval
    if k > 1:  # only the sampled run has n >= k samples per unit
        assert {(r["model"], r["quant"]) for r in rows} == {("tinycoder-1b", "Q4_K_M"), ("tinycoder-1b", "Q2_K")}


def test_pass_at_k_bootstrap_agrees_with_numpy(fx):
    rows = records(fx.path, "pass_at_k_by_model_quant_suite", {"resamples": 4000, "seed": 11})
    units = _units(fx)
    checked = 0
    for r in rows:
        tasks = units[(r["model"], r["quant"], r["prompt_style"])]
        values = [sum(c / n for n, c in us.values()) / len(us) for t, us in sorted(tasks.items())
                  if r["suite"] in ("(all)", t[0])]
        lo, hi = metrics.bootstrap_ci(values, resamples=4000, seed=5)
        assert r["ci_low"] <= r["pass_at_k"] <= r["ci_high"]
        # Two independent random streams: the ends agree up to Monte-Carlo error plus one step of the
        # resampled mean's lattice (1 / n_tasks), since a quantile can sit right at a step. (The broken
        # hash(seed, b, j) resampler gave [0.5, 0.5] where numpy gives [0.125, 0.875].)
        tol = 0.03 + 1 / len(values)
        assert r["ci_low"] == pytest.approx(lo, abs=tol) and r["ci_high"] == pytest.approx(hi, abs=tol), r
        if len(set(values)) > 1:
            assert r["ci_high"] > r["ci_low"]  # a real spread gives a real interval
        checked += 1
    assert checked == len(rows) == (8 + len(fx.chat_configs)) * 3  # configs x (2 suites + all)


def test_pass_at_k_bootstrap_is_seeded(fx):
    a = records(fx.path, "pass_at_k_by_model_quant_suite", {"seed": 1, "resamples": 300})
    b = records(fx.path, "pass_at_k_by_model_quant_suite", {"seed": 1, "resamples": 300})
    c = records(fx.path, "pass_at_k_by_model_quant_suite", {"seed": 2, "resamples": 300})
    assert a == b and a != c


# ------------------------------------------------------------------ failures
def test_failure_taxonomy_shares(fx):
    rows = records(fx.path, "failure_taxonomy_by_model_quant")
    samples = raw(fx.path, SAMPLES)
    statuses = ["pass", "assertion_failure", "runtime_error", "syntax_error", "timeout", "memory_limit",
                "sandbox_violation", "generation_error", "no_code"]
    assert len(rows) == 8 + len(fx.chat_configs)
    for r in rows:
        mine = [s for s in samples
                if (s["name"], s["quant"], s["prompt_style"]) == (r["model"], r["quant"], r["prompt_style"])]
        assert r["n_samples"] == len(mine)
        assert sum(r[s] for s in statuses) == pytest.approx(1.0, abs=1e-3)
        for status in statuses:
            assert r[status] == pytest.approx(sum(s["status"] == status for s in mine) / len(mine), abs=1e-4)
        fails = [s["status"] for s in mine if s["status"] != "pass"]
        assert r[r["top_failure"]] == max(r[s] for s in statuses if s != "pass")
        assert r["top_failure"] in fails
    chat = [r for r in rows if r["prompt_style"] == "chat"]
    assert {(r["model"], r["quant"]) for r in chat} == set(fx.chat_configs)
    assert all(r["no_code"] > 0 for r in chat)  # its own class: never counted as a syntax error
    assert all(r["no_code"] == 0 for r in rows if r["prompt_style"] == "completion")


# ------------------------------------------------------------------ efficiency
def test_efficiency_recovers_the_roofline_the_fixture_was_built_with(fx, analysis_fixture):
    rows = records(fx.path, "efficiency_by_node_model_quant")
    eff = analysis_fixture.ROOFLINE_EFF
    samples = raw(fx.path, SAMPLES)
    shards = raw(fx.path, "SELECT * FROM shards")
    probes = analysis_fixture.PROBES
    summary = {(p["node_id"], p["test"]): p for p in raw(
        fx.path, "SELECT v.*, m.name, m.quant FROM speed_summary v JOIN models m USING (model_id)")}
    # every node x config with samples or a probe (a probe alone, without samples, is a row too)
    assert len(rows) == len({(s["node_id"], s["name"], s["quant"]) for s in samples} | set(probes))
    assert sorted((r["node_id"], r["model"], r["quant"]) for r in rows if r["speed_source"] == "probe") == sorted(probes)
    for r in rows:
        mine = [s for s in samples if (s["node_id"], s["name"], s["quant"]) == (r["node_id"], r["model"], r["quant"])]
        probe = probes.get((r["node_id"], r["model"], r["quant"]))
        if probe:  # the probe's tg128 and pp512, and the roofline share its tg reached
            assert r["roofline_fraction"] == pytest.approx(probe, rel=0.02)
            assert r["gen_tok_s"] == pytest.approx(summary[(r["node_id"], "tg128")]["avg_ts"], abs=0.01)
            assert r["prompt_tok_s"] == pytest.approx(summary[(r["node_id"], "pp512")]["avg_ts"], abs=0.01)
            assert r["probe_tests"] == "pp512 tg128" and r["probe_throttled"] is False
            assert r["n_samples"] == len(mine)
            continue
        assert r["speed_source"] == "samples" and r["probe_tests"] is None
        assert r["roofline_fraction"] == pytest.approx(eff[r["node_id"]], rel=0.06)
        assert r["gen_tok_s"] == pytest.approx(
            sum(s["gen_tokens"] for s in mine) * 1000 / sum(s["gen_ms"] for s in mine), rel=1e-3)
        assert r["prompt_tok_s"] == pytest.approx(
            sum(s["prompt_tokens"] for s in mine) * 1000 / sum(s["prompt_ms"] for s in mine), rel=1e-3)
        loads = [sh["load_ms"] for sh in shards
                 if sh["node_id"] == r["node_id"] and sh["model_id"] == mine[0]["model_id"]]
        assert r["load_ms"] == pytest.approx(sum(loads) / len(loads), abs=0.1)
        assert r["gen_tok_s"] < r["prompt_tok_s"] and r["ttft_ms_median"] > 0


def test_efficiency_leaves_out_samples_decoded_together(fx, tmp_path, analysis_fixture):
    """Samples decoded with others (n_parallel > 1) are throughput, not speed: only n_parallel = 1 samples
    count where a config has no probe."""
    import shutil

    import duckdb

    db = tmp_path / "copy.duckdb"
    shutil.copy(fx.path, db)
    key = next(k for k in sorted({(s["node_id"], s["name"], s["quant"]) for s in raw(db, SAMPLES)})
               if k not in analysis_fixture.PROBES)
    con = duckdb.connect(str(db))
    con.execute("UPDATE samples SET n_parallel = 4, gen_ms = gen_ms / 3 WHERE node_id = ? AND rowid % 2 = 0 "
                "AND model_id = (SELECT model_id FROM models WHERE name = ? AND quant = ?)", list(key))
    con.close()
    single = [s for s in raw(db, SAMPLES) if (s["node_id"], s["name"], s["quant"]) == key and s["n_parallel"] == 1]
    assert 0 < len(single) < len([s for s in raw(db, SAMPLES) if (s["node_id"], s["name"], s["quant"]) == key])
    for name in ("efficiency_by_node_model_quant", "speed_across_nodes_normalized"):
        [row] = [r for r in records(db, name) if (r["node_id"], r["model"], r["quant"]) == key]
        assert row["speed_source"] == "samples"
        assert row["gen_tok_s"] == pytest.approx(
            sum(s["gen_tokens"] for s in single) * 1000 / sum(s["gen_ms"] for s in single), rel=1e-3)


# ------------------------------------------------------------------ Pareto
def test_pareto_front_by_brute_force(fx):
    rows = records(fx.path, "accuracy_vs_size_pareto")

    def name(model, quant, style):  # how dominated_by names a config
        return f"{model} {quant}" + ("" if style == "completion" else f" ({style})")

    pts = {name(r["model"], r["quant"], r["prompt_style"]): (r["file_mb"], r["pass_at_1"]) for r in rows}
    assert len(pts) == len(rows) == 8 + len(fx.chat_configs)  # a chat config is its own point
    for r in rows:
        size, acc = pts[name(r["model"], r["quant"], r["prompt_style"])]
        dominators = [k for k, (s2, a2) in pts.items() if s2 <= size and a2 >= acc and (s2 < size or a2 > acc)]
        assert r["on_front"] == (not dominators) and r["n_dominating"] == len(dominators)
        if dominators:
            best = max(dominators, key=lambda k: pts[k][1])
            assert pts[r["dominated_by"]][1] == pts[best][1]
    assert any(r["on_front"] for r in rows) and not all(r["on_front"] for r in rows)
    # the smallest config is always on the front
    assert min(rows, key=lambda r: r["file_mb"])["on_front"]


# ------------------------------------------------------------------ quality proxy
def test_quality_proxy_correlations(fx):
    every = records(fx.path, "quality_proxy_vs_pass_at_1")
    assert len(every) == 8 + len(fx.chat_configs)
    chat = [r for r in every if r["prompt_style"] == "chat"]
    # correlations never mix styles: the chat rows correlate among themselves
    assert chat[0]["corr_ppl_all"] == pytest.approx(
        metrics.pearson([r["ppl"] for r in chat], [r["pass_at_1"] for r in chat]), abs=2e-3)
    rows = [r for r in every if r["prompt_style"] == "completion"]
    assert len(rows) == 8
    xs = [r["ppl"] for r in rows]
    ys = [r["pass_at_1"] for r in rows]
    kl = [r["kld_mean"] for r in rows]
    assert rows[0]["corr_ppl_all"] == pytest.approx(metrics.pearson(xs, ys), abs=2e-3)
    assert rows[0]["corr_kld_all"] == pytest.approx(metrics.pearson(kl, ys), abs=2e-3)
    assert rows[0]["spearman_ppl_all"] == pytest.approx(metrics.spearman(xs, ys), abs=2e-3)
    for family in ("gemma-3-270m", "tinycoder-1b"):
        mine = [r for r in rows if r["model"] == family]
        assert mine[0]["corr_ppl_in_model"] == pytest.approx(
            metrics.pearson([r["ppl"] for r in mine], [r["pass_at_1"] for r in mine]), abs=2e-3)
        base = next(r for r in mine if r["quant"] == "F16")
        assert base["kld_mean"] == 0 and base["top1_agreement"] == 1  # the base against itself
        # the fixture's perplexity rises as bits fall, and its pass@1 falls: a negative correlation
        assert mine[0]["corr_ppl_in_model"] < -0.5


# ------------------------------------------------------------------ cross-hardware
def test_speed_normalized_to_fastest_node(fx, analysis_fixture):
    rows = records(fx.path, "speed_across_nodes_normalized")
    by_config = defaultdict(list)
    for r in rows:
        by_config[(r["model"], r["quant"])].append(r)
    probes = analysis_fixture.PROBES
    assert {(r["node_id"], r["model"], r["quant"]) for r in rows if r["speed_source"] == "probe"} == set(probes)
    for config, rs in by_config.items():
        fastest = max(r["gen_tok_s"] for r in rs)
        assert max(r["gen_relative"] for r in rs) == 1.0
        for r in rs:
            assert r["gen_relative"] == pytest.approx(r["gen_tok_s"] / fastest, abs=1e-3) and r["n_nodes"] == len(rs)
    geo = {r["node_id"]: r["node_gen_relative_geomean"] for r in rows}
    # the slow laptop's bandwidth is ~0.3 of the fast one's: its typical relative speed shows it
    assert geo["node-fast"] == 1.0 and 0.15 < geo["node-slow"] < 0.4


def test_greedy_divergence_finds_exactly_the_planted_tasks(fx):
    rows = records(fx.path, "greedy_divergence_between_nodes")
    ids = {v: k for k, v in fx.model_ids.items()}
    found = {(fx.model_ids[(r["model"], r["quant"])], r["suite"], r["task_id"]) for r in rows}
    assert found == set(fx.divergent) and all(ids[m][1] == "Q4_K_M" for m, _, _ in found)
    for r in rows:
        assert r["n_nodes"] == 3 and r["n_distinct_completions"] == 2 and not r["verdict_differs"]
        assert r["completion_hashes"].count("=") == 3
    assert records(fx.path, "greedy_divergence_between_nodes", {"run_id": "run-greedy"}) == []


def test_greedy_divergence_by_engine_attributes_the_drift_to_the_other_build(fx, analysis_fixture):
    ENGINE_BUILDS = analysis_fixture.ENGINE_BUILDS
    rows = records(fx.path, "greedy_divergence_by_engine")
    a = f"{ENGINE_BUILDS['node-fast']} extra_bufts=on"
    b = f"{ENGINE_BUILDS['node-slow']} extra_bufts=on"
    by_model = {r["model"]: r for r in rows}
    assert set(by_model) == {"gemma-3-270m", "tinycoder-1b"} and all(r["run_id"] == "run-every-node" for r in rows)
    for name, r in by_model.items():
        assert (r["engine_a"], r["engine_b"]) == (a, b) and r["quant"] == "Q4_K_M"
        assert r["n_samples"] == fx.n_tasks and r["verdict_flips"] == 0
        assert r["nodes_a"] == "mbp-m1, ryzen-desk" and r["nodes_b"] == "old-thinkpad"
        planted = sum(1 for m, _, _ in fx.divergent if m == fx.model_ids[(name, "Q4_K_M")])
        assert r["identical"] == fx.n_tasks - planted
        assert r["identical_rate"] == round((fx.n_tasks - planted) / fx.n_tasks, 4)
    assert planted == 2  # tinycoder's two planted tasks, the last family checked
    assert records(fx.path, "greedy_divergence_by_engine", {"run_id": "run-greedy"}) == []


# ------------------------------------------------------------------ sweep cost
REFERENCE_BYTES = (
    sum(p * b / 8 for p in (7.25e9, 6.74e9, 6.74e9, 8.54e9, 7.17e9) for b in (3.35, 4.85, 8.5))
    + sum(p * 16 / 8 for p in (1.3e9, 2.0e9, 3.0e9))
)


def test_sweep_cost_projection(fx):
    rows = records(fx.path, "sweep_cost_projection")
    samples = raw(fx.path, SAMPLES)
    per_node = [r for r in rows if r["node_id"] is not None]
    cluster = [r for r in rows if r["node_id"] is None]
    assert len(per_node) == 3 and len(cluster) == 1 and cluster[0]["node"] == "cluster (3 nodes)"
    for r in per_node:
        mine = [s for s in samples if s["node_id"] == r["node_id"]]
        s_per_byte = sum((s["wall_ms"] + s["score_ms"]) / 1000 / s["file_bytes"] for s in mine) / len(mine)
        assert r["projected_hours"] == pytest.approx(s_per_byte * REFERENCE_BYTES * 608 / 3600, rel=1e-3)
        assert r["vs_reference"] == pytest.approx(r["projected_hours"] / 87.9, rel=1e-2)
    harmonic = 1 / sum(1 / r["projected_hours"] for r in per_node)
    assert cluster[0]["projected_hours"] == pytest.approx(harmonic, rel=1e-3)
    assert cluster[0]["projected_hours"] < min(r["projected_hours"] for r in per_node)
    doubled = records(fx.path, "sweep_cost_projection", {"samples_per_task": 2, "tasks": 304})
    assert [r["projected_hours"] for r in doubled] == pytest.approx([r["projected_hours"] for r in rows], rel=1e-3)
    assert not math.isnan(cluster[0]["projected_hours"])


# ------------------------------------------------------------------ prompt styles
def test_pass_at_1_by_prompt_style_is_a_paired_recount(fx):
    rows = records(fx.path, "pass_at_1_by_prompt_style")
    units = _units(fx)
    assert {(r["model"], r["quant"]) for r in rows} == set(fx.chat_configs)
    for r in rows:
        comp, chat = units[(r["model"], r["quant"], "completion")], units[(r["model"], r["quant"], "chat")]
        both = sorted(set(comp) & set(chat))

        def rate(us):
            return sum(c / n for n, c in us.values()) / len(us)

        diffs = [rate(chat[t]) - rate(comp[t]) for t in both]
        assert r["n_tasks"] == len(both) == fx.n_tasks
        assert r["pass_at_1_completion"] == pytest.approx(sum(rate(comp[t]) for t in both) / len(both), abs=1e-4)
        assert r["pass_at_1_chat"] == pytest.approx(sum(rate(chat[t]) for t in both) / len(both), abs=1e-4)
        assert r["chat_minus_completion"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-4)
        assert r["tasks_better_in_chat"] == sum(d > 0 for d in diffs)
        assert r["tasks_better_in_completion"] == sum(d < 0 for d in diffs)


def test_chat_extraction_shares(fx):
    rows = records(fx.path, "chat_extraction_by_model_quant")
    chat = [s for s in raw(fx.path, SAMPLES) if s["prompt_style"] == "chat"]
    assert {(r["model"], r["quant"]) for r in rows} == set(fx.chat_configs)
    for r in rows:
        mine = [s for s in chat if (s["name"], s["quant"]) == (r["model"], r["quant"])]
        assert r["n_samples"] == len(mine) and r["instruction"] == "lua-fence"
        for how in ("fence", "whole", "none"):
            assert r[how] == pytest.approx(sum(s["extraction"] == how for s in mine) / len(mine), abs=1e-4)
        fenced = [s for s in mine if s["extraction"] == "fence"]
        assert r["pass_rate_fence"] == pytest.approx(sum(s["passed"] for s in fenced) / len(fenced), abs=1e-4)
        # a reply with no code is counted as no_code, never scored
        assert all(s["status"] == "no_code" for s in mine if s["extraction"] == "none")
