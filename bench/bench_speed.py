"""The speed probe's two promises, measured side by side in one run (issue 13):

(a) repeatability: sd / mean of the probe's tg (default tg128) over its repetitions (goal <= 3 % on a
    quiet machine), per round;
(b) no overhead: probe tg ÷ a bare llama-cpp-python decode loop on the same file, threads and token count
    (goal >= 0.97). The probe runs as the product runs it, in the engine child process (EngineProcess.speed,
    what `lqbench speed` and the agent call); the bare loops run in this process on their own `Llama` of the
    same file: `Llama.eval` one token at a time (decode only, as the probe), and `Llama.generate` greedy
    (decode + sampling: what a user's loop costs). Rounds alternate A B B A so drift hits both sides alike.

Usage: python bench/bench_speed.py [--model demo:gemma-3-270m] [--n-gen 128] [--reps 5] [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lqbench.engine import EngineConfig, load_llama  # noqa: E402
from lqbench.engine_process import EngineProcess  # noqa: E402
from lqbench.hardware import physical_cores  # noqa: E402
from lqbench.models import resolve_model  # noqa: E402
from lqbench.speed import mean, sample_sd, summarize_all  # noqa: E402


def bare_eval(llm, n_gen: int) -> float:
    """tok/s of n_gen single-token decodes from an empty KV cache (BOS first), the plain Python way."""
    llm.reset()
    token = llm.token_bos()
    t0 = time.perf_counter()
    for _ in range(n_gen):
        llm.eval([token])
    return n_gen / (time.perf_counter() - t0)


def bare_generate(llm, n_gen: int) -> float:
    """tok/s of a greedy `Llama.generate` loop of n_gen tokens from BOS (decode plus sampling)."""
    llm.reset()
    n = 0
    t0 = time.perf_counter()
    for _ in llm.generate([llm.token_bos()], top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        n += 1
        if n >= n_gen:
            break
    return n / (time.perf_counter() - t0)


def _fmt(values: list[float]) -> str:
    m, sd = mean(values), sample_sd(values)
    return f"{m:8.2f} ± {sd:5.2f} t/s  (sd/mean {100 * sd / m:4.1f} %, n={len(values)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo:gemma-3-270m")
    ap.add_argument("--n-gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--no-extra-bufts", action="store_true")
    args = ap.parse_args()

    mf = resolve_model(args.model)
    threads = args.threads or physical_cores()
    config = EngineConfig(extra_bufts=not args.no_extra_bufts)
    print(f"model {mf.label} ({mf.file_bytes / 2**20:.0f} MiB), {threads} threads, {config.label}, "
          f"tg{args.n_gen}, {args.reps} repetitions x {args.rounds} rounds")
    llm = load_llama(mf.path, config, n_ctx=args.n_ctx, n_batch=min(512, args.n_ctx), n_threads=threads,
                     n_threads_batch=threads, n_gpu_layers=0, verbose=False)
    probe_ts, probe_cv, evals, gens = [], [], [], []
    with EngineProcess(hang_timeout_s=1800) as engine:
        engine.load(mf.path, config, n_threads=threads, n_ctx=args.n_ctx)

        def probe_round():
            result = engine.speed([(0, args.n_gen)], reps=args.reps)
            [s] = summarize_all(result["reps"])
            probe_ts.extend(s["samples_ts"])
            probe_cv.append(s["stddev_ts"] / s["avg_ts"])
            print(f"  probe  tg{args.n_gen}: {s['avg_ts']:.2f} ± {s['stddev_ts']:.2f} t/s, "
                  f"sd/mean {100 * probe_cv[-1]:.1f} %, throttled: {s['throttled']} ({s['throttle_evidence']})")

        def bare_round():
            bare_eval(llm, 1)  # warm-up, as the probe does
            for _ in range(args.reps):
                evals.append(bare_eval(llm, args.n_gen))
                gens.append(bare_generate(llm, args.n_gen))
            print(f"  bare   eval {mean(evals[-args.reps:]):.2f} t/s, generate {mean(gens[-args.reps:]):.2f} t/s")

        for i in range(args.rounds):  # A B B A ...
            order = (probe_round, bare_round) if i % 2 == 0 else (bare_round, probe_round)
            for step in order:
                step()
    llm.close()

    print()
    for label, values in ((f"probe tg{args.n_gen} (engine process)", probe_ts), ("bare Llama.eval loop", evals),
                          ("bare Llama.generate loop", gens)):
        print(f"{label + ':':34s}{_fmt(values)}")
    print()
    print(f"(a) repeatability: sd/mean of tg{args.n_gen} over {args.reps} repetitions, per round: "
          + ", ".join(f"{100 * c:.1f} %" for c in probe_cv)
          + f"; median {100 * statistics.median(probe_cv):.1f} %   (goal <= 3 %)")
    print(f"(b) probe ÷ bare eval loop     = {mean(probe_ts) / mean(evals):.3f}   (goal >= 0.97)")
    print(f"    probe ÷ bare generate loop = {mean(probe_ts) / mean(gens):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
