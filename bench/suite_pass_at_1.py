"""The demo model's greedy pass@1 on a whole suite at each quant, without Ray.

Same pieces as a real run -- the quant ladder from `lqbench.models`, `LlamaGenerator`
on the real GGUF, `run_shard` (MultiPL-E stop strings, per-sample timings) and the
sandboxed `ScorerPool` -- in one process, so a suite author can see how a model does
on every task, by topic and difficulty:

    .venv/bin/python bench/suite_pass_at_1.py [--suite lqbench-lua] [--quants q2_k,q4_k_m,q8_0]
        [--limit N] [--difficulties easy] [--task-ids a,b] [--max-tokens 384] [--threads 2]
        [--out samples.jsonl]

Prints pass@1 per quant (overall and by difficulty) and, with --out, writes every
sample (completion, status, timings) as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lqbench.models import build_ladder, resolve_model  # noqa: E402
from lqbench.shard import make_shards, run_shard  # noqa: E402
from lqbench.tasks import load_suite, select_tasks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo:gemma-3-270m")
    ap.add_argument("--suite", default="lqbench-lua")
    ap.add_argument("--quants", default="q2_k,q4_k_m,q8_0")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--difficulties", default="", help="comma-separated, e.g. easy,medium")
    ap.add_argument("--task-ids", default="", help="comma-separated task ids")
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from lqbench.generation import LlamaGenerator
    from lqbench.scorer import ScorerPool

    suite = load_suite(args.suite)
    tasks = select_tasks(suite, limit=args.limit, difficulties=[d for d in args.difficulties.split(",") if d],
                         task_ids=[t for t in args.task_ids.split(",") if t])
    ladder = build_ladder(resolve_model(args.model), args.quants.split(","))
    sampling = {"temperature": 0.0, "max_tokens": args.max_tokens, "n": 1, "seed": 1234}
    out = open(args.out, "w") if args.out else None
    summary = []
    with ScorerPool(jobs=1) as pool:
        for mf in ladder:
            shard, = make_shards("bench", [(mf.to_row(), {})], [(suite.name, suite.version, tasks)],
                                 sampling=sampling, scoring={}, inference={}, shard_size=len(tasks))
            generator = LlamaGenerator(mf.path, n_threads=args.threads)
            t0 = time.perf_counter()
            by_difficulty, statuses, gen_tokens, gen_ms = defaultdict(list), defaultdict(int), 0, 0.0
            difficulty = {t.task_id: t.difficulty for t in tasks}
            for rec in run_shard(shard, generator, pool, node_id="local", n_threads=args.threads):
                by_difficulty[difficulty[rec.task_id]].append(rec.passed)
                statuses[rec.status] += 1
                gen_tokens, gen_ms = gen_tokens + rec.gen_tokens, gen_ms + rec.gen_ms
                if out:
                    out.write(json.dumps({"quant": mf.quant, **asdict(rec)}, default=str) + "\n")
                    out.flush()
            passed = [p for ps in by_difficulty.values() for p in ps]
            row = {"quant": mf.quant, "requantized": mf.requantized, "bpw": mf.bits_per_weight,
                   "pass@1": sum(passed) / len(passed), "passed": sum(passed), "n": len(passed),
                   **{f"pass@1[{d}]": round(sum(ps) / len(ps), 3) for d, ps in sorted(by_difficulty.items())},
                   "statuses": dict(statuses), "gen_tok_s": round(gen_tokens / (gen_ms / 1e3), 1) if gen_ms else None,
                   "minutes": round((time.perf_counter() - t0) / 60, 1)}
            summary.append(row)
            print(json.dumps(row), flush=True)
            del generator
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
