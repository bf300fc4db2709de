"""Batched decoding: what `[inference] parallel = N` buys and what it changes, measured side by side.

Three parts, in one process, back to back (run it on a quiet machine):

1. The whole product. The same plan (the demo model at one quant, --tasks tasks of the built-in suite,
   greedy, --max-tokens) run by `lqbench run` (local Ray, the agent, the engine process, the scorer
   pool, the writer) once per N in --parallel, into one results file. For each N: samples per hour over
   the whole command and over the generation phase (first shard start to last shard end), and the
   ratio to N = 1. Then the `parallel_agreement` query on that file: for each N > 1, how many of the
   completions are byte-identical to N = 1's and how many verdicts flipped.
2. Single stream: the N = 1 run's token-generation rate (llama.cpp's own counters, summed over its
   samples) against a bare llama-cpp-python loop (Llama.generate, greedy, the same prompts, stop
   strings, max tokens and threads), run right after it.
3. The batched engine alone (no Ray, no scoring) on the first --engine-tasks prompts: new prompts
   decoded in the same batches as running sequences ("mixed") or in batches of their own ("separate").

    .venv/bin/python bench/bench_batched.py --parallel 1,2,4,8 --tasks 60 --max-tokens 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _plan(n_parallel: int, quant: str, tasks: int, max_tokens: int, threads: int) -> str:
    return f"""name = "bench-batched-{n_parallel}"
placement = "spread"
shard_size = {tasks}
[[models]]
spec = "demo:gemma-3-270m"
quants = ["{quant}"]
[[suites]]
name = "lqbench-lua"
limit = {tasks}
[sampling]
temperature = 0.0
max_tokens = {max_tokens}
n = 1
seed = 1234
[scoring]
timeout_s = 5.0
memory_mb = 256
lua = "5.4"
[inference]
n_ctx = 2048
n_threads = {threads}
parallel = {n_parallel}
"""


def _sql(db: Path, sql: str, params=None) -> list[dict]:
    from lqbench.querying import run_query

    cols, rows = run_query(db, sql, params)
    return [dict(zip(cols, r)) for r in rows]


def run_product(n: int, args, db: Path, workdir: Path) -> dict:
    plan = workdir / f"plan-{n}.toml"
    plan.write_text(_plan(n, args.quant, args.tasks, args.max_tokens, args.threads))
    t0 = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("lqbench")), "run", str(plan), "--db", str(db), "-q"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"lqbench run (parallel {n}) failed: {proc.stderr.strip()[-500:]}")
    run = _sql(db, "SELECT run_id FROM runs WHERE plan_name = $plan ORDER BY started_at DESC LIMIT 1",
               {"plan": f"bench-batched-{n}"})[0]["run_id"]
    row = _sql(db, """
        SELECT count(*) AS samples, sum(gen_tokens) AS gen_tokens, sum(gen_ms) AS gen_ms,
               avg(passed::INT) AS pass_at_1, min(n_parallel) AS n_min, max(n_parallel) AS n_max
        FROM samples WHERE run_id = $run""", {"run": run})[0]
    phase = _sql(db, "SELECT epoch(max(finished_at)) - epoch(min(started_at)) AS s FROM shards "
                     "WHERE run_id = $run AND status = 'finished'", {"run": run})[0]["s"]
    return {"n": n, "run": run, "wall_s": wall, "phase_s": phase, **row}


def bare_loop(args, path: str, prompts) -> dict:
    """Llama.generate, greedy, stop strings, max tokens: llama.cpp's own counters summed."""
    from lqbench.generation import LlamaGenerator, SamplingParams

    gen = LlamaGenerator(path, n_threads=args.threads, n_ctx=2048)
    tokens = ms = 0.0
    t0 = time.perf_counter()
    for prompt, stop in prompts:
        c = gen.generate(prompt, SamplingParams(max_tokens=args.max_tokens), stop)
        tokens += c.gen_tokens
        ms += c.gen_ms
    wall = time.perf_counter() - t0
    gen.close()
    return {"tok_s": 1e3 * tokens / ms, "wall_s": wall, "gen_tokens": tokens}


def engine_only(args, path: str, prompts, n: int, mixed: bool) -> dict:
    from lqbench.batched import BatchedGenerator, Request
    from lqbench.generation import LlamaGenerator, SamplingParams

    gen = LlamaGenerator(path, n_threads=args.threads, n_ctx=2048)
    with BatchedGenerator(gen, n, mixed=mixed) as batched:
        t0 = time.perf_counter()
        done = list(batched.run(Request(i, p, SamplingParams(max_tokens=args.engine_max_tokens), s)
                                for i, (p, s) in enumerate(prompts)))
        wall = time.perf_counter() - t0
    gen.close()
    tokens = sum(c.gen_tokens for _, c in done)
    return {"wall_s": wall, "gen_tokens": tokens, "tok_s": tokens / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parallel", default="1,2,4,8", help="comma list of N (1 is always run, first)")
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--quant", default="q4_k_m")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--engine-tasks", type=int, default=24)
    ap.add_argument("--engine-max-tokens", type=int, default=128)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: product, bare, engine")
    ap.add_argument("--db", type=Path, help="keep the results file here (default: a temporary one)")
    args = ap.parse_args()
    ns = sorted({1, *(int(x) for x in args.parallel.split(","))})
    skip = set(filter(None, args.skip.split(",")))

    from lqbench.models import build_ladder, resolve_model
    from lqbench.querying import run_query
    from lqbench.tasks import load_builtin

    base = resolve_model("demo:gemma-3-270m")
    path = next(m.path for m in build_ladder(base, [args.quant]))
    prompts = [(t.prompt, list(t.stop_tokens)) for t in load_builtin().tasks[:args.tasks]]
    print(f"demo model {args.quant}, {args.tasks} tasks, max {args.max_tokens} tokens, {args.threads} threads, "
          f"load {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory(prefix="bench-batched-") as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"
        results = []
        if "product" not in skip:
            print("\n1. lqbench run, the same plan at each N")
            print(f"{'N':>3} {'samples':>7} {'wall s':>7} {'gen phase s':>11} {'samples/h':>9} {'÷ N=1':>6} "
                  f"{'phase samples/h':>15} {'÷ N=1':>6} {'pass@1':>6}")
            for n in ns:
                r = run_product(n, args, db, Path(tmp))
                results.append(r)
                one = results[0]
                per_h = 3600 * r["samples"] / r["wall_s"]
                phase_h = 3600 * r["samples"] / r["phase_s"]
                print(f"{n:>3} {r['samples']:>7} {r['wall_s']:>7.1f} {r['phase_s']:>11.1f} {per_h:>9.0f} "
                      f"{per_h / (3600 * one['samples'] / one['wall_s']):>6.2f} {phase_h:>15.0f} "
                      f"{phase_h / (3600 * one['samples'] / one['phase_s']):>6.2f} {r['pass_at_1']:>6.3f}"
                      + ("" if r["n_min"] == r["n_max"] == n else f"  (n_parallel recorded {r['n_min']}..{r['n_max']})"))
            cols, rows = run_query(db, "parallel_agreement")
            print("\n   parallel_agreement (each N against N = 1, same samples):")
            for row in (dict(zip(cols, x)) for x in rows):
                print(f"   N={row['n_parallel']}: {row['identical']}/{row['n_pairs']} completions identical "
                      f"({100 * row['identical_rate']:.1f} %), {row['verdict_flips']} verdicts flipped "
                      f"({100 * row['flip_rate']:.1f} %), {row['status_changes']} statuses changed; pass@1 "
                      f"{row['pass_at_1_single']:.3f} vs {row['pass_at_1_batched']:.3f}")
        if "bare" not in skip and results:
            one = results[0]
            product = 1e3 * one["gen_tokens"] / one["gen_ms"]
            bare = bare_loop(args, path, prompts)
            print("\n2. single stream: lqbench run at N = 1 vs a bare llama-cpp-python loop, same prompts")
            print(f"   product {product:.1f} tok/s ({one['gen_tokens']} tokens), bare {bare['tok_s']:.1f} tok/s "
                  f"({bare['gen_tokens']:.0f} tokens): ratio {product / bare['tok_s']:.3f}")
            print(f"   generation phase {one['phase_s']:.1f} s in the product vs {bare['wall_s']:.1f} s bare "
                  f"(the product also scores and writes): ratio {bare['wall_s'] / one['phase_s']:.3f}")
        if "engine" not in skip:
            some = prompts[:args.engine_tasks]
            print(f"\n3. the batched engine alone, {len(some)} prompts, max {args.engine_max_tokens} tokens")
            for n in [x for x in ns if x > 1]:
                mixed = engine_only(args, path, some, n, True)
                separate = engine_only(args, path, some, n, False)
                print(f"   N={n}: mixed {mixed['wall_s']:.1f} s ({mixed['tok_s']:.1f} tok/s), separate "
                      f"{separate['wall_s']:.1f} s ({separate['tok_s']:.1f} tok/s): mixed ÷ separate time "
                      f"{mixed['wall_s'] / separate['wall_s']:.3f}")
        print(f"\nload at the end {os.getloadavg()[0]:.2f}")
        if results:
            print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
