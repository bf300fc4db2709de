"""Generation overhead, decode speed against the memory roofline, and PPL/KLD down the demo ladder — one run.

(a) tok/s through lqbench's LlamaGenerator ÷ tok/s of a bare llama-cpp-python loop, on the
    same model, prompts, token counts and threads (target ≥ 0.97). Both models are loaded in
    this process and calls alternate (A B B A …), so load from other processes hits both
    sides alike. Two baselines: the minimal `Llama.generate` token loop, and
    `Llama.create_completion` (what most people call).
(b) decode tok/s (llama.cpp perf counters) ÷ roofline, where roofline = measured memory
    bandwidth ÷ model file bytes (every weight is read once per generated token).
(c) perplexity on the built-in suite's reference programs and KL divergence / top-1
    agreement against the F16 file — which is itself made *from* the Q4_K_M demo file,
    so it is a requantized "base" that carries Q4_K_M's rounding; the Q4_K_M row measures
    only what the F16 conversion changed (numerics), and lower rows what further bits cost.

Usage: python bench/bench_generation.py [--prompts 6] [--max-tokens 96] [--rounds 3] [--ppl-tokens 2048]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lqbench.generation import LlamaGenerator, SamplingParams  # noqa: E402
from lqbench.hardware import measure_mem_bandwidth_gbs, physical_cores  # noqa: E402
from lqbench.models import build_ladder, resolve_model  # noqa: E402
from lqbench.tasks import load_builtin  # noqa: E402


def bare_loop(llm, prompt: str, n_tokens: int) -> tuple[int, float]:
    """The least a llama-cpp-python user can do: tokenize, fresh KV, greedy, n tokens. (tokens, seconds)"""
    t0 = time.perf_counter()
    llm.reset()
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=False)
    n = 0
    for _ in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        n += 1
        if n >= n_tokens:
            break
    return n, time.perf_counter() - t0


def bare_completion(llm, prompt: str, n_tokens: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    llm.reset()  # no prefix reuse, as in lqbench
    out = llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, top_k=1, top_p=1.0, min_p=0.0,
                                repeat_penalty=1.0)
    return out["usage"]["completion_tokens"], time.perf_counter() - t0


def overhead(model_path: str, prompts: list[str], stops, max_tokens: int, rounds: int, threads: int, n_ctx: int):
    """Per side: [tokens, seconds] summed over rounds; per-round seconds; lqbench's texts per pass."""
    import llama_cpp

    gen = LlamaGenerator(model_path, n_threads=threads, n_ctx=n_ctx)
    bare = llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, n_batch=512, n_threads=threads,
                           n_threads_batch=threads, verbose=False)
    params = SamplingParams(max_tokens=max_tokens)
    # Calibration pass (also the warm-up): how many tokens lqbench samples for each prompt.
    reference = [gen.generate(p, params, stops) for p in prompts]
    counts = [c.sampled_tokens for c in reference]
    bare_loop(bare, prompts[0], 4)

    names = ["lqbench", "bare loop", "create_completion"]
    side = {k: [0, 0.0, 0.0] for k in names}  # tokens, wall s, CPU s of this process
    per_round, texts = [], []
    for r in range(rounds):
        round_side = {k: [0, 0.0, 0.0] for k in names}
        round_texts = []
        for i, prompt in enumerate(prompts):
            for name in (names if (r + i) % 2 == 0 else names[::-1]):
                cpu0 = time.process_time()
                if name == "lqbench":
                    t0 = time.perf_counter()
                    c = gen.generate(prompt, params, stops)
                    toks, secs = c.sampled_tokens, time.perf_counter() - t0
                    round_texts.append(c.text)
                elif name == "bare loop":
                    toks, secs = bare_loop(bare, prompt, counts[i])
                else:
                    toks, secs = bare_completion(bare, prompt, counts[i])
                round_side[name][0] += toks
                round_side[name][1] += secs
                round_side[name][2] += time.process_time() - cpu0
        texts.append(round_texts)
        for k in names:
            for j in range(3):
                side[k][j] += round_side[k][j]
        per_round.append({k: v[1] for k, v in round_side.items()})
    gen.close()
    bare.close()
    return side, per_round, [[c.text for c in reference]] + texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--ppl-tokens", type=int, default=2048, help="0 = the whole corpus")
    ap.add_argument("--skip-ppl", action="store_true")
    args = ap.parse_args()
    threads = args.threads or physical_cores()

    suite = load_builtin()
    tasks = suite.tasks[: args.prompts]
    prompts = [t.prompt for t in tasks]
    stops = list(tasks[0].stop_tokens)

    t0 = time.perf_counter()
    base = resolve_model("demo:gemma-3-270m")
    ladder = build_ladder(base, ["f16", "q8_0", "q4_k_m", "q2_k"])
    print(f"demo ladder ready in {time.perf_counter() - t0:.1f} s; threads={threads}")

    # (a) ---------------------------------------------------------------
    side, per_round, texts = overhead(base.path, prompts, stops, args.max_tokens, args.rounds, threads, args.n_ctx)
    print(f"\n(a) {base.label}: {len(prompts)} prompts x {args.rounds} rounds, greedy, <= {args.max_tokens} tokens, "
          f"{threads} threads")
    for name, (toks, secs, cpu) in side.items():
        print(f"    {name:18s} {toks:6d} tokens {secs:8.2f} s  {toks / secs:7.2f} tok/s (end to end, prompt included)"
              f"  CPU {cpu:7.2f} s")
    # Every side samples the same tokens for the same prompts (create_completion does not count a
    # final EOS in its usage), so the tok/s ratio is the inverse ratio of the time taken.
    for base_name in ("bare loop", "create_completion"):
        ratios = [r[base_name] / r["lqbench"] for r in per_round]
        total = side[base_name][1] / side["lqbench"][1]
        cpu_ratio = side[base_name][2] / side["lqbench"][2]
        print(f"    lqbench / {base_name:17s} = {total:.3f} overall (wall); per round {', '.join(f'{x:.3f}' for x in ratios)}"
              f" (median {statistics.median(ratios):.3f}); by CPU time {cpu_ratio:.3f}")
    same = all(t == texts[0] for t in texts)
    print(f"    greedy determinism: {args.rounds} rounds of {len(prompts)} completions identical: {same}")

    # (b) ---------------------------------------------------------------
    bw = measure_mem_bandwidth_gbs()
    print(f"\n(b) decode vs roofline; measured memory bandwidth {bw:.2f} GB/s "
          "(lqbench.hardware: single-thread copy, read+write)")
    print(f"    {'quant':8s} {'file MB':>8s} {'bpw':>6s} {'pp tok/s':>9s} {'tg tok/s':>9s} {'roofline':>9s} {'tg/roof':>8s}")
    for mf in ladder:
        g = LlamaGenerator(mf.path, n_threads=threads, n_ctx=args.n_ctx)
        g.generate(prompts[0], SamplingParams(max_tokens=4), [])  # warm-up
        pt = pm = gt = gm = 0.0
        for p in prompts[:4]:
            c = g.generate(p, SamplingParams(max_tokens=args.decode_tokens), [])
            pt, pm, gt, gm = pt + c.prompt_tokens, pm + c.prompt_ms, gt + c.gen_tokens, gm + c.gen_ms
        g.close()
        tg = gt / gm * 1e3
        roof = bw * 1e9 / mf.file_bytes
        print(f"    {mf.quant:8s} {mf.file_bytes / 1e6:8.0f} {mf.bits_per_weight:6.2f} {pt / pm * 1e3:9.1f} {tg:9.2f} "
              f"{roof:9.2f} {tg / roof:8.2f}")

    # (c) ---------------------------------------------------------------
    if args.skip_ppl:
        return
    from lqbench.perplexity import corpus_from_suite, corpus_name, ladder_perplexity

    text = corpus_from_suite(suite)
    f16 = ladder[0]
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        res = ladder_perplexity(ladder, f16, text, work, n_ctx=512, n_threads=threads,
                                max_tokens=args.ppl_tokens or None)
        secs = time.perf_counter() - t0
    tokens = next(iter(res.values()))["tokens"]
    print(f"\n(c) perplexity on {corpus_name(suite)} ({tokens} tokens, n_ctx 512), KLD vs F16 "
          f"(F16 made from the Q4_K_M demo file: a requantized base); {secs:.0f} s")
    print(f"    {'quant':8s} {'bpw':>6s} {'PPL':>8s} {'KLD':>9s} {'top-1 same':>10s}")
    for mf in ladder:
        r = res[mf.model_id]
        print(f"    {mf.quant:8s} {mf.bits_per_weight:6.2f} {r['ppl']:8.4f} {r['kld_mean']:9.5f} {r['top1_agreement']:10.4f}")


if __name__ == "__main__":
    main()
