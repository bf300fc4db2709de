"""A synthetic but plausible results file for the query and report tests, written through `ResultStore`.

Three laptops of different memory bandwidth, two model families at F16/Q8_0/Q4_K_M/Q2_K, two suites,
a greedy spread run, a sampled run (n = 5 per task, for pass@k with k > 1), an every-node run whose
replicas mostly agree but differ on a few tasks, a chat-style run of two configs that the greedy run
also has in completion style (code from fences, whole replies and replies with no code), shards with
load times and perplexity/KLD rows, and speed-probe repetitions (table `speed`) for two node x config pairs
(PROBES), whose single-stream tg reaches another share of the roofline than the samples do.
Pass probabilities fall with bits (2-bit collapses), speeds follow the memory roofline — so the
queries' answers have a known shape the tests can check. Deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path

from lqbench.records import PerplexityRecord, SampleRecord, ShardRecord, SpeedRecord
from lqbench.store import ResultStore
from lqbench.tasks import TaskSpec

NODES = [
    dict(node_id="node-fast", hostname="ryzen-desk", cpu_model="AMD Ryzen 7 7840U", physical_cores=8,
         logical_cores=16, ram_gb=32.0, os="Linux 6.8", arch="x86_64", mem_bandwidth_gbs=48.0,
         llama_cpp_version="0.3.16", labels_json='{"class": "fast"}'),
    dict(node_id="node-mid", hostname="mbp-m1", cpu_model="Apple M1", physical_cores=8, logical_cores=8,
         ram_gb=16.0, os="Darwin 23.5", arch="arm64", mem_bandwidth_gbs=36.0, llama_cpp_version="0.3.16",
         labels_json='{"class": "mid"}'),
    dict(node_id="node-slow", hostname="old-thinkpad", cpu_model="Intel Core i5-8250U", physical_cores=4,
         logical_cores=8, ram_gb=8.0, os="Linux 6.1", arch="x86_64", mem_bandwidth_gbs=14.0,
         llama_cpp_version="0.3.16", labels_json='{"class": "slow"}'),
]
# The llama.cpp build of each node (run-every-node records it): two laptops share one build.
ENGINE_BUILDS = {"node-fast": "0.3.16+aaaaaaaaaaaa", "node-mid": "0.3.16+aaaaaaaaaaaa",
                 "node-slow": "0.3.16+bbbbbbbbbbbb"}
# How much of the roofline each node reaches (cache and thread effects differ per machine).
ROOFLINE_EFF = {"node-fast": 0.62, "node-mid": 0.70, "node-slow": 0.55}

# Speed probes (lqbench.speed): (node, model, quant) -> the share of the roofline its tg128 reached.
PROBES = {("node-fast", "tinycoder-1b", "Q4_K_M"): 0.75, ("node-slow", "gemma-3-270m", "Q8_0"): 0.66}

QUANTS = {"F16": 16.0, "Q8_0": 8.5, "Q4_K_M": 4.85, "Q2_K": 3.0}
# Skill on the logit scale: 2-bit collapses, 4-bit is close to 8-bit.
QUANT_PENALTY = {"F16": 0.0, "Q8_0": 0.05, "Q4_K_M": 0.25, "Q2_K": 1.6}
FAMILIES = {"gemma-3-270m": (270e6, -0.6), "tinycoder-1b": (1.1e9, 0.7)}
SUITES = {"lqbench-lua": 12, "humaneval-lua": 8}
# Configs the fixture also runs in chat style, and how chat shifts their skill (logit scale).
CHAT_SHIFT = {("tinycoder-1b", "Q4_K_M"): 0.4, ("tinycoder-1b", "Q2_K"): -0.5}
FAIL_MIX = {  # conditional on failing: how it fails
    "F16": {"assertion_failure": 0.6, "runtime_error": 0.25, "syntax_error": 0.1, "timeout": 0.05},
    "Q8_0": {"assertion_failure": 0.6, "runtime_error": 0.25, "syntax_error": 0.1, "timeout": 0.05},
    "Q4_K_M": {"assertion_failure": 0.55, "runtime_error": 0.25, "syntax_error": 0.15, "timeout": 0.05},
    "Q2_K": {"assertion_failure": 0.3, "runtime_error": 0.2, "syntax_error": 0.4, "timeout": 0.05,
             "memory_limit": 0.03, "sandbox_violation": 0.02},
}


@dataclass
class FixtureInfo:
    path: Path
    run_ids: list[str]
    model_ids: dict[tuple[str, str], str]
    n_tasks: int
    divergent: list[tuple[str, str, str]]  # (model_id, suite, task_id) whose replicas differ
    chat_configs: tuple = ()  # (name, quant) run in both prompt styles


def _model_rows() -> list[dict]:
    rows = []
    for name, (n_params, _) in FAMILIES.items():
        base_sha = hashlib.sha256(f"{name}-F16".encode()).hexdigest()
        for quant, bpw in QUANTS.items():
            sha = hashlib.sha256(f"{name}-{quant}".encode()).hexdigest()
            rows.append(dict(model_id=sha[:16], name=name, quant=quant, path=f"/models/{name}-{quant}.gguf",
                             sha256=sha, file_bytes=int(n_params * bpw / 8 + 40e6), n_params=int(n_params),
                             bits_per_weight=bpw, base_sha256=base_sha, requantized=quant != "F16",
                             architecture="gemma3" if name.startswith("gemma") else "llama"))
    return rows


def _tasks() -> list[TaskSpec]:
    out = []
    for suite, count in SUITES.items():
        for i in range(count):
            out.append(TaskSpec(suite=suite, task_id=f"{suite[:2]}_{i:02d}",
                                prompt=f"-- task {i}\nlocal function f{i}(x)\n",
                                tests="lu = require('luaunit')\nos.exit(lu.LuaUnit.run())",
                                suite_version="v1", topic="basics", difficulty="easy"))
    return out


def _difficulty(task: TaskSpec) -> float:
    # a spread of easy to hard tasks, stable per task id
    return (int(task.task_id[-2:]) * 37 % 11) / 5.0 - 1.0


# Energy per node (lqbench.energy): the Linux desktop reads RAPL package counters, the old ThinkPad runs on
# battery with root-only RAPL, the Mac has nothing readable without admin rights. Watts are constant per
# node, so joules per token follow the roofline speeds (more bits, slower, more joules per token).
ENERGY = {"node-fast": ("rapl-package", 24.0, "ac"), "node-slow": ("battery", 13.0, "battery"),
          "node-mid": ("none", None, "ac")}


def _energy_columns(node_id: str, samples: list, throttled: bool) -> dict:
    """ShardRecord energy/state columns for a shard's samples (deterministic: uses no random draws)."""
    method, watts, source = ENERGY[node_id]
    seconds = sum(s.wall_ms + s.score_ms for s in samples) / 1000.0
    return dict(
        energy_j=round(watts * seconds, 3) if watts else None, energy_method=method, energy_s=round(seconds, 3),
        energy_note=("no energy counter readable without admin rights on Darwin; battery: on AC power"
                     if method == "none" else None),
        power_source=source, battery_pct_start=80.0 if source == "battery" else None,
        battery_pct_end=78.5 if source == "battery" else None,
        cpu_mhz_start=3400.0 if node_id != "node-mid" else None,
        cpu_mhz_end=(2300.0 if throttled else 3380.0) if node_id != "node-mid" else None,
        throttle_events=(6 if throttled else 0) if node_id != "node-mid" else None,
        tg_drift=0.84 if throttled else 0.99, throttled=throttled,
        throttle_evidence=("kernel throttle events +6; clock 3400->2300 MHz; tg last/first third 0.84" if throttled
                           else "tg last/first third 0.99"))


def build_fixture_db(path: Path | str, seed: int = 7) -> FixtureInfo:
    rng = random.Random(seed)
    store = ResultStore(path)
    store.ensure()
    models = _model_rows()
    tasks = _tasks()
    store.upsert_nodes(NODES)
    store.upsert_models(models)
    store.upsert_tasks(tasks)
    ids = {(m["name"], m["quant"]): m["model_id"] for m in models}
    by_id = {m["model_id"]: m for m in models}
    node_by_id = {n["node_id"]: n for n in NODES}

    def sample(run_id, node_id, model, task, idx, replica, temperature, passed_p):
        ok = rng.random() < passed_p
        if ok:
            status = "pass"
        else:
            mix = FAIL_MIX[model["quant"]]
            status = rng.choices(list(mix), weights=list(mix.values()))[0]
        node = node_by_id[node_id]
        gen_tps = ROOFLINE_EFF[node_id] * node["mem_bandwidth_gbs"] * 1e9 / model["file_bytes"]
        gen_tps *= rng.uniform(0.95, 1.05)
        prompt_tps = gen_tps * rng.uniform(8, 12)
        prompt_tokens = rng.randint(40, 160)
        gen_tokens = rng.randint(15, 220)
        prompt_ms = prompt_tokens / prompt_tps * 1000
        gen_ms = gen_tokens / gen_tps * 1000
        return SampleRecord(
            run_id=run_id, node_id=node_id, model_id=model["model_id"], suite=task.suite, task_id=task.task_id,
            sample_idx=idx, replica=replica, seed=1000 + idx, status=status, passed=ok,
            completion=f"  return x -- {task.task_id} {status} {idx}\nend",
            error=None if ok else f"{status}: synthetic", prompt_tokens=prompt_tokens, gen_tokens=gen_tokens,
            prompt_ms=prompt_ms, gen_ms=gen_ms, ttft_ms=prompt_ms + 1000 / gen_tps, wall_ms=prompt_ms + gen_ms + 3,
            score_ms=rng.uniform(0.3, 2.0), peak_rss_mb=model["file_bytes"] / 1e6 + rng.uniform(120, 180),
            created_at="2025-06-01 12:00:00", shard_id=f"sh-{model['model_id']}-{task.suite}",
            suite_version="v1", temperature=temperature, finish_reason="stop" if rng.random() < 0.9 else "length",
            n_threads=node["physical_cores"])

    def p_pass(model, task, temperature=0.0):
        skill = FAMILIES[model["name"]][1] - QUANT_PENALTY[model["quant"]] - 0.3 * temperature
        return 1 / (1 + math.exp(-(skill - _difficulty(task))))

    def shards_for(run_id, node_id, model_id, batch, throttled_node=None):
        # Shard ids and windows match their samples' (shard_id, created_at) so shard_energy can join them.
        return [ShardRecord(run_id=run_id, shard_id=f"sh-{model_id}-{suite}", node_id=node_id,
                            model_id=model_id, suite=suite, n_tasks=n,
                            load_ms=by_id[model_id]["file_bytes"] / 1e6 * (2.0 if node_id == "node-slow" else 0.8)
                            * rng.uniform(0.9, 1.1),
                            n_threads=node_by_id[node_id]["physical_cores"], started_at="2025-06-01 11:00:00",
                            finished_at="2025-06-01 12:30:00", status="finished",
                            **_energy_columns(node_id, [s for s in batch if s.suite == suite and s.node_id == node_id],
                                              throttled=node_id == throttled_node))
                for suite, n in SUITES.items()]

    # run 1: greedy, spread over the nodes (each model's shards on one node, round-robin)
    run1 = "run-greedy"
    store.begin_run(run1, {"plan": "fixture-greedy", "placement": "spread", "temperature": 0.0,
                           "models": sorted({m["name"] for m in models}), "quants": list(QUANTS)}, "fixture-greedy")
    for i, model in enumerate(models):
        node_id = NODES[i % len(NODES)]["node_id"]
        batch = [sample(run1, node_id, model, t, 0, "", 0.0, p_pass(model, t)) for t in tasks]
        store.write_batch(batch, shards_for(run1, node_id, model["model_id"], batch))
    store.finish_run(run1, "finished")

    # run 2: sampled, n = 5 per task at temperature 0.8, for two configs, on the fast node
    run2 = "run-sampled"
    store.begin_run(run2, {"plan": "fixture-sampled", "placement": "spread", "temperature": 0.8, "n": 5},
                    "fixture-sampled")
    for key in (("tinycoder-1b", "Q4_K_M"), ("tinycoder-1b", "Q2_K")):
        model = by_id[ids[key]]
        batch = [sample(run2, "node-fast", model, t, k, "", 0.8, p_pass(model, t, 0.8))
                 for t in tasks for k in range(5)]
        store.write_batch(batch, shards_for(run2, "node-fast", model["model_id"], batch))
    store.finish_run(run2, "finished")

    # run 3: every-node greedy replicas of the Q4_K_M configs; the slow node diverges on a few tasks
    run3 = "run-every-node"
    store.begin_run(run3, {"plan": "fixture-every-node", "placement": "every-node", "temperature": 0.0},
                    "fixture-every-node")
    divergent = []
    for name in FAMILIES:
        model = by_id[ids[(name, "Q4_K_M")]]
        batch = []
        for t in tasks:
            ok = rng.random() < p_pass(model, t)
            differs = t.task_id in ("lq_03", "hu_05") and name == "tinycoder-1b"
            if differs:
                divergent.append((model["model_id"], t.suite, t.task_id))
            for node in NODES:
                s = sample(run3, node["node_id"], model, t, 0, node["node_id"], 0.0, 1.0 if ok else 0.0)
                if not ok:  # the same verdict on every replica, as greedy decoding should give
                    s.status, s.error = "assertion_failure", "assertion_failure: synthetic"
                drift = " -- fp drift" if differs and node["node_id"] == "node-slow" else ""
                s.completion = f"  return x + {t.task_id[-2:]}{drift}\nend"
                # The slow laptop compiled its own llama.cpp: another build, which is where the drift is.
                s.engine_build = ENGINE_BUILDS[node["node_id"]]
                s.engine_config = "extra_bufts=on"
                batch.append(s)
        shards = [r for node in NODES for r in shards_for(run3, node["node_id"], model["model_id"], batch,
                                                               throttled_node="node-slow")]
        store.write_batch(batch, shards)
    store.finish_run(run3, "finished")

    # run 4: greedy in chat style for two configs, on the mid node. Chat is a little better at 4 bits and
    # worse at 2 bits (where replies lose their code: more `no_code`), so the paired query has a signal.
    run4 = "run-chat"
    store.begin_run(run4, {"plan": "fixture-chat", "placement": "spread", "temperature": 0.0}, "fixture-chat")
    for key, shift in CHAT_SHIFT.items():
        model = by_id[ids[key]]
        batch = []
        for t in tasks:
            p = p_pass(model, t)
            odds = p / (1 - p) * math.exp(shift)
            s = sample(run4, "node-mid", model, t, 0, "", 0.0, odds / (1 + odds))
            s.prompt_style, s.instruction, s.instruction_version = "chat", "lua-fence", "abc123def456"
            s.chat_template = "gguf:0123456789ab"
            s.extraction = "fence" if rng.random() < 0.8 else "whole"
            if not s.passed and rng.random() < (0.5 if key[1] == "Q2_K" else 0.15):
                s.status, s.error, s.extraction = "no_code", "the reply contains no Lua code", "none"
            s.program = None if s.extraction == "none" else "local function f(x)\n  return x\nend"
            batch.append(s)
        store.write_batch(batch, shards_for(run4, "node-mid", model["model_id"], batch))
    store.finish_run(run4, "finished")

    # perplexity and KLD against each family's F16, measured once on the fast node
    ppl_rows = []
    for name in FAMILIES:
        base = ids[(name, "F16")]
        base_ppl = 6.0 if name == "tinycoder-1b" else 9.5
        for quant in QUANTS:
            extra = {"F16": 0.0, "Q8_0": 0.01, "Q4_K_M": 0.06, "Q2_K": 0.55}[quant]
            ppl_rows.append(PerplexityRecord(
                run_id=run1, node_id="node-fast", model_id=ids[(name, quant)], corpus="lqbench-lua-reference",
                tokens=24000, ppl=base_ppl * (1 + extra), kld_mean=None if quant == "F16" else extra * 0.9,
                top1_agreement=None if quant == "F16" else 1 - extra * 0.5, base_model_id=base,
                created_at="2025-06-01 12:30:00"))
    store.write_batch([], [], ppl_rows)
    store.write_batch([], speeds=_speed_probes(run1, ids, by_id, node_by_id, rng))
    return FixtureInfo(path=Path(path), run_ids=[run1, run2, run3, run4], model_ids=ids, n_tasks=len(tasks),
                       divergent=divergent, chat_configs=tuple(CHAT_SHIFT))



def _speed_probes(run_id, ids, by_id, node_by_id, rng) -> list[SpeedRecord]:
    """pp512 and tg128, 5 repetitions each, for every PROBES pair: tg at its roofline share (±1 %)."""
    rows = []
    for (node_id, name, quant), share in PROBES.items():
        model = by_id[ids[(name, quant)]]
        tg = share * node_by_id[node_id]["mem_bandwidth_gbs"] * 1e9 / model["file_bytes"]
        for test, n_prompt, n_gen, rate in (("pp512", 512, 0, tg * 10), ("tg128", 0, 128, tg)):
            for rep in range(5):
                ts = rate * rng.uniform(0.99, 1.01)
                ns = int((n_prompt + n_gen) * 1e9 / ts)
                rows.append(SpeedRecord(run_id=run_id, node_id=node_id, model_id=model["model_id"], test=test,
                                        n_prompt=n_prompt, n_gen=n_gen, rep=rep, ns=ns, ts=(n_prompt + n_gen) * 1e9 / ns,
                                        created_at="2025-06-01 12:40:00", replica=node_id, n_batch=512, n_ubatch=512,
                                        n_threads=node_by_id[node_id]["physical_cores"], n_ctx=2048,
                                        engine_build=ENGINE_BUILDS[node_id], engine_config="extra_bufts=on"))
    return rows


def add_imported_run(path: Path | str, seed: int = 7) -> str:
    """Add an imported run (as `lqbench import` records one) to a fixture file: another harness's greedy
    generations of a model with no GGUF here, rescored, with the original verdicts, which disagree with
    ours on two programs. Returns its run_id."""
    rng = random.Random(seed)
    store = ResultStore(path)
    run_id = "run-imported"
    model = {"model_id": "imp0published7b", "name": "published-coder-7b", "quant": "Q4_K_M",
             "path": "import:fixture-published", "sha256": "1f" * 32}
    samples, extras = [], []
    for i, t in enumerate(_tasks()):
        ok = rng.random() < 0.6
        original = (not ok) if t.task_id in ("lq_01", "hu_02") else ok
        samples.append(SampleRecord(
            run_id=run_id, node_id="imported", model_id=model["model_id"], suite=t.suite, task_id=t.task_id,
            sample_idx=0, replica="", seed=None, completion=f"  return x -- imported {t.task_id}\nend",
            status="pass" if ok else "assertion_failure", passed=ok, error=None if ok else "synthetic",
            prompt_tokens=None, gen_tokens=None, prompt_ms=None, gen_ms=None, ttft_ms=None, wall_ms=None,
            score_ms=rng.uniform(0.3, 2.0), peak_rss_mb=None, created_at="2025-06-02 09:00:00", shard_id=None,
            suite_version="v1", temperature=None, finish_reason=None, n_threads=None))
        extras.append({"run_id": run_id, "model_id": model["model_id"], "suite": t.suite, "task_id": t.task_id,
                       "sample_idx": 0, "replica": "", "origin_key": f"key-{i}",
                       "origin": f"/published/{t.task_id}.results.json.gz:3#0", "format": "multipl-e-results",
                       "scored_program": None, "original_harness": "multipl-e",
                       "original_status": "OK" if original else "Exception", "original_passed": original,
                       "original_exit_code": 0 if original else 1})
    store.record_import(
        run={"run_id": run_id, "started_at": "2025-06-02 09:00:00", "finished_at": "2025-06-02 09:00:00",
             "status": "imported", "config_json": '{"import": {"source": "fixture-published"}}',
             "plan_name": "import: fixture-published"},
        imports_row={"run_id": run_id, "source": "fixture-published", "n_programs": len(samples), "n_skipped": 0,
                     "issues_json": "[]", "imported_at": "2025-06-02 09:00:00"},
        models=[model], tasks=[], samples=samples, import_samples=extras,
        files=[{"run_id": run_id, "path": "/published", "sha256": "2e" * 32, "bytes": 1000,
                "format": "multipl-e-results", "n_programs": len(samples)}])
    return run_id


def add_batched_rerun(path: Path | str) -> str:
    """Add a rerun of run-greedy's tinycoder-1b Q4_K_M samples made with batched decoding (n_parallel = 4):
    every fourth completion comes out different, and the first two of those flip their verdict. Returns
    its run_id."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = SampleRecord.columns()
        rows = con.execute(
            f"SELECT {', '.join('s.' + c for c in cols)} FROM samples s JOIN models m USING (model_id)"
            " WHERE s.run_id = 'run-greedy' AND m.name = 'tinycoder-1b' AND m.quant = 'Q4_K_M'"
            " ORDER BY s.suite, s.task_id").fetchall()
    finally:
        con.close()
    run_id = "run-batched"
    store = ResultStore(path)
    store.begin_run(run_id, {"plan": "fixture-greedy", "inference": {"parallel": 4}}, "fixture-greedy")
    samples, changed = [], 0
    for i, row in enumerate(rows):
        s = SampleRecord(**dict(zip(cols, row)))
        s.run_id, s.n_parallel, s.created_at = run_id, 4, str(s.created_at)
        if i % 4 == 0:
            s.completion += " -- a near-tie went the other way"
            if changed < 2:
                s.passed = not s.passed
                s.status = "pass" if s.passed else "assertion_failure"
            changed += 1
        samples.append(s)
    store.write_batch(samples, [])
    store.finish_run(run_id, "finished")
    return run_id
