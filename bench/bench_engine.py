"""Generation speed of llama.cpp builds and engine configurations, and lqbench's engine process vs bare.

Variants, each measured in its own process (so a variant that segfaults is a result, "crashed"):
  bare        llama-cpp-python's Llama + generate loop, default model params (extra buffer types on)
  bare-safe   the same with use_extra_bufts = False (no weight repacking)
  lqbench     lqbench's EngineProcess (the engine child process the agent uses), extra buffer types on
  lqbench-safe  the same with extra_bufts=off

Every variant decodes the same prompts (the first --prompts tasks of the built-in suite) greedily
to --max-tokens with the suite's stop strings, on --threads threads, and reports llama.cpp's own
token-generation rate (sum of generated tokens / sum of decode ms). Repetitions alternate the
variants, so a noisy machine hits all of them alike; the median of --repeat runs is printed.

Several llama-cpp-python builds side by side: pass --python for each venv's interpreter, e.g.
    python bench/bench_engine.py --python .venv/bin/python --python /tmp/native-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("bare", "bare-safe", "lqbench", "lqbench-safe")


def _prompts(n: int) -> list[tuple[str, list[str]]]:
    from lqbench.tasks import load_suite

    suite = load_suite("lqbench-lua")
    return [(t.prompt, list(t.stop_tokens)) for t in suite.tasks[:n]]


def _quant_path(quant: str) -> str:
    from lqbench.models import build_ladder, resolve_model

    base = resolve_model("demo:gemma-3-270m")
    return base.path if quant == "q4_k_m" else build_ladder(base, [quant])[0].path


def measure(variant: str, path: str, threads: int, n_prompts: int, max_tokens: int) -> dict:
    """One repetition of one variant, in this process: {"tok_s", "tokens", "ms", "build"}."""
    from lqbench.engine import DEFAULT, SAFE, build_info
    from lqbench.generation import SamplingParams

    prompts = _prompts(n_prompts)
    params = SamplingParams(max_tokens=max_tokens)
    tokens, ms = 0, 0.0
    config = SAFE if variant.endswith("safe") else DEFAULT
    if variant.startswith("bare"):
        # What a user of llama-cpp-python would write, with the same sampler settings as lqbench.
        import llama_cpp

        from lqbench.engine import load_llama

        llm = load_llama(path, config, n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads,
                         n_gpu_layers=0, verbose=False)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        for prompt, stop in prompts:
            llm.reset()
            llama_cpp.llama_perf_context_reset(llm.ctx)
            text, n = "", 0
            for tok in llm.generate(llm.tokenize(prompt.encode(), add_bos=True, special=False), top_k=1, top_p=1.0,
                                    min_p=0.0, typical_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
                n += 1
                if llama_cpp.llama_vocab_is_eog(vocab, tok):
                    break
                text += llm.detokenize([tok]).decode("utf-8", "replace")
                if any(s in text for s in stop) or n >= max_tokens:
                    break
            perf = llama_cpp.llama_perf_context(llm.ctx)
            tokens += perf.n_eval
            ms += perf.t_eval_ms
        llm.close()
    else:
        from lqbench.engine_process import EngineProcess

        with EngineProcess() as engine:
            engine.load(path, config, n_threads=threads, n_ctx=2048)
            for prompt, stop in prompts:
                comp = engine.generate(prompt, params, stop)
                tokens += comp.gen_tokens
                ms += comp.gen_ms
    return {"tok_s": tokens / ms * 1000 if ms else None, "tokens": tokens, "ms": ms, "build": build_info()["label"]}


def _child(python: str, variant: str, args) -> dict:
    cmd = [python, __file__, "--child", variant, "--path", args.path, "--threads", str(args.threads),
           "--prompts", str(args.prompts), "--max-tokens", str(args.max_tokens)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if proc.returncode != 0:
        from lqbench.engine_process import describe_exit

        return {"error": f"crashed: {describe_exit(proc.returncode)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", action="append", help="interpreter of a venv with a llama-cpp-python build "
                                                       "(repeatable; default: this one)")
    ap.add_argument("--variant", action="append", choices=VARIANTS, help="default: all")
    ap.add_argument("--quant", default="q4_k_m")
    ap.add_argument("--path", help="GGUF to use (default: the demo model at --quant)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        print(json.dumps(measure(args.child, args.path, args.threads, args.prompts, args.max_tokens)))
        return 0
    args.path = args.path or _quant_path(args.quant)
    pythons = args.python or [sys.executable]
    variants = args.variant or list(VARIANTS)
    results: dict[tuple[str, str], list] = {(p, v): [] for p in pythons for v in variants}
    builds: dict[str, str] = {}
    t0 = time.monotonic()
    for rep in range(args.repeat):
        for python in pythons:
            for variant in variants:
                key = (python, variant)
                if results[key] and "error" in results[key][-1]:
                    continue  # a crash is deterministic enough: do not crash it again
                r = _child(python, variant, args)
                results[key].append(r)
                builds.setdefault(python, r.get("build", "?"))
                print(f"  rep {rep + 1}: {python} {variant}: " +
                      (f"{r['tok_s']:.1f} tok/s ({r['tokens']} tokens)" if "tok_s" in r else r["error"]),
                      file=sys.stderr, flush=True)
    print(f"\n{Path(args.path).name}, {args.threads} threads, {args.prompts} prompts x <= {args.max_tokens} tokens, "
          f"median of {args.repeat} ({time.monotonic() - t0:.0f} s)")
    ref = None
    for python in pythons:
        print(f"\nbuild {builds.get(python)} ({python})")
        for variant in variants:
            runs = results[(python, variant)]
            if runs and "error" in runs[-1]:
                print(f"  {variant:13s} {runs[-1]['error']}")
                continue
            med = statistics.median(r["tok_s"] for r in runs)
            ref = ref or med
            spread = f"{min(r['tok_s'] for r in runs):.1f}-{max(r['tok_s'] for r in runs):.1f}"
            print(f"  {variant:13s} {med:6.1f} gen tok/s  (range {spread}; x{med / ref:.3f} of the first line)")
        row = {v: statistics.median(r["tok_s"] for r in results[(python, v)])
               for v in variants if results[(python, v)] and "error" not in results[(python, v)][-1]}
        if "lqbench" in row and "bare" in row:
            print(f"  lqbench / bare = {row['lqbench'] / row['bare']:.3f}")
        if "lqbench" in row and "bare-safe" in row:
            print(f"  lqbench / bare-safe (the use_extra_bufts=False workaround) = {row['lqbench'] / row['bare-safe']:.3f}")
        if "lqbench-safe" in row and "bare-safe" in row:
            print(f"  lqbench-safe / bare-safe = {row['lqbench-safe'] / row['bare-safe']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
