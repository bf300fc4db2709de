"""The speed probe: single-stream prompt processing and token generation, in llama-bench's meaning.

The sweep's per-sample timings are throughput numbers (several sequences may share a decode, the scorer
runs beside it); the probe is the clean measurement a user at the keyboard gets. It follows llama.cpp's
`tools/llama-bench` exactly where that matters for comparing numbers:

- a test is `pp<n>` (n_prompt tokens decoded in n_batch-sized batches), `tg<n>` (n_gen single-token
  decodes, each synchronized) or both (`pp<n>+tg<m>`); tokens are random ids, the first one BOS when the
  vocabulary adds one; the KV memory is cleared before every repetition and the clock covers only the decodes;
- a warm-up first (a full pp run, then a 1-token tg run), then `reps` repetitions;
- per repetition ts = (n_prompt + n_gen) / seconds; avg_ts / stddev_ts are the mean and the sample
  standard deviation (n - 1) of those rates, avg_ns / stddev_ns of the durations (sd 0 for one repetition).

Two things differ on purpose: the random tokens are drawn before the clock starts (Python is slower at it
than C++, and it is not the model's work), and the probe runs in the context the engine already loaded
(llama-bench makes a context of n_prompt + n_gen cells; the KV cells in use, not the context size, decide
the attention cost, so the numbers compare).

Around each repetition the CPU clock is read at both ends and, with an `lqbench.energy.EnergyMeter`, the
joules it drew (method `none` when nothing is readable: never an estimate). A test is judged throttled
when its last repetition generated more than 10 % slower than its first, or the live clock dropped by
more than 10 % (the thresholds of `lqbench.energy.state`).

`run_probe` needs a loaded `llama_cpp.Llama` and runs in the engine child process (op `speed` of
`lqbench.engine_worker`); everything else here is plain arithmetic, usable anywhere. No Ray here.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass

from lqbench.errors import LqbenchError

DEFAULT_REPS = 5
DEFAULT_N_PROMPT = 512
DEFAULT_N_GEN = 128


@dataclass(frozen=True)
class SpeedTest:
    """One llama-bench test: n_prompt tokens of prompt processing and/or n_gen generated tokens."""

    n_prompt: int
    n_gen: int

    def __post_init__(self):
        if self.n_prompt < 0 or self.n_gen < 0 or self.n_prompt + self.n_gen == 0:
            raise LqbenchError(f"a speed test needs n_prompt >= 0, n_gen >= 0 and one of them > 0, "
                               f"got n_prompt={self.n_prompt}, n_gen={self.n_gen}")

    @property
    def name(self) -> str:
        """llama-bench's test label: pp512, tg128 or pp512+tg128."""
        if self.n_gen == 0:
            return f"pp{self.n_prompt}"
        if self.n_prompt == 0:
            return f"tg{self.n_gen}"
        return f"pp{self.n_prompt}+tg{self.n_gen}"

    @property
    def n_tokens(self) -> int:
        return self.n_prompt + self.n_gen


def plan_tests(n_prompt=(DEFAULT_N_PROMPT,), n_gen=(DEFAULT_N_GEN,), median_prompt: int | None = None) -> list[SpeedTest]:
    """llama-bench's test list: a pp test per n_prompt (plus the suite's median prompt length when
    given), then a tg test per n_gen; zeros are skipped and duplicates kept once."""
    tests: list[SpeedTest] = []
    prompts = [int(n) for n in n_prompt] + ([int(median_prompt)] if median_prompt else [])
    for n in prompts:
        if n > 0:
            tests.append(SpeedTest(n, 0))
    for n in n_gen:
        if int(n) > 0:
            tests.append(SpeedTest(0, int(n)))
    if not tests:
        raise LqbenchError("the speed probe has nothing to run: every n_prompt and n_gen is 0")
    return list(dict.fromkeys(tests))


# ---------------------------------------------------------------- statistics
def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def sample_sd(values) -> float:
    """Sample standard deviation (n - 1); 0 for fewer than two values, as llama-bench prints it."""
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else 0.0


def tokens_per_second(n_tokens: int, ns: int) -> float:
    return n_tokens * 1e9 / ns if ns > 0 else math.nan


def judge(reps: list[dict]) -> tuple[bool | None, str]:
    """(throttled, evidence) of one test's repetitions (rows with ts, cpu_mhz_start/end, cpu_mhz_source).

    Rate drift: ts of the last repetition / the first, for tests that generate (pp is compute-bound and
    its first repetitions vary with caches more than with heat). Clock drop: only a live cpufreq reading
    counts; a nominal clock (psutil in a VM) is quoted, not judged."""
    from lqbench.energy.state import judge_throttling

    if not reps:
        return None, "no repetitions"
    first, last = reps[0], reps[-1]
    drift = None
    if first.get("n_gen") and len(reps) >= 2 and first["ts"] > 0:
        drift = round(last["ts"] / first["ts"], 3)
    live = first.get("cpu_mhz_source") == last.get("cpu_mhz_source") == "cpufreq"
    throttled, evidence = judge_throttling(first.get("cpu_mhz_start"), last.get("cpu_mhz_end"), None, drift,
                                           clock_is_real=live)
    if throttled is None:  # judge_throttling's own wording is about a shard's samples
        return None, "nothing to judge from: no live clock reading" + ("" if first.get("n_gen") else
                                                                       " (a pp test has no generation drift)")
    return throttled, evidence.replace("tg last/first third", "tg last/first repetition")


def summarize(reps: list[dict]) -> dict:
    """llama-bench's statistics over one test's repetitions (rows of `run_probe`), plus our judgement."""
    ns = [r["ns"] for r in reps]
    ts = [r["ts"] for r in reps]
    throttled, evidence = judge(reps)
    return {
        "test": reps[0]["test"], "n_prompt": reps[0]["n_prompt"], "n_gen": reps[0]["n_gen"], "n_reps": len(reps),
        "avg_ns": round(mean(ns)), "stddev_ns": round(sample_sd(ns)),
        "avg_ts": mean(ts), "stddev_ts": sample_sd(ts), "samples_ns": ns, "samples_ts": ts,
        "cpu_mhz_start": reps[0].get("cpu_mhz_start"), "cpu_mhz_end": reps[-1].get("cpu_mhz_end"),
        "throttled": throttled, "throttle_evidence": evidence,
    }


def summarize_all(reps: list[dict]) -> list[dict]:
    """One summary per test, in the order the tests ran."""
    by_test: dict[str, list[dict]] = {}
    for r in reps:
        by_test.setdefault(r["test"], []).append(r)
    return [summarize(sorted(rows, key=lambda r: r["rep"])) for rows in by_test.values()]


def median_prompt_tokens(tokenize, prompts: list[str]) -> int | None:
    """The median token count of `prompts` under this model's tokenizer (the sweep's pp length)."""
    lengths = [len(tokenize(p)) for p in prompts if p]
    return int(statistics.median(lengths)) if lengths else None


# ---------------------------------------------------------------- the probe (engine child process only)
class _Decoder:
    """llama-bench's two loops on llama-cpp-python's low-level API, over one loaded context."""

    def __init__(self, llm, n_threads: int | None, seed: int):
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llm
        self.ctx = llm.ctx
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(vocab)) if llama_cpp.llama_vocab_get_add_bos(vocab) else None
        self.n_ctx = int(llama_cpp.llama_n_ctx(self.ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(self.ctx))
        self.n_ubatch = int(llama_cpp.llama_n_ubatch(self.ctx))
        if n_threads:
            llama_cpp.llama_set_n_threads(self.ctx, int(n_threads), int(n_threads))
        self.n_threads = int(llama_cpp.llama_n_threads(self.ctx))
        self.rng = random.Random(seed)
        self.memory = llama_cpp.llama_get_memory(self.ctx)

    def clear(self) -> None:
        self.lib.llama_memory_clear(self.memory, True)

    def _tokens(self, n: int, start_with_bos: bool) -> list[int]:
        toks = [self.rng.randrange(self.n_vocab) for _ in range(n)]
        if start_with_bos and self.bos is not None and toks:
            toks[0] = self.bos
        return toks

    def prepare(self, test: SpeedTest) -> tuple[list, list]:
        """The test's input as ctypes arrays, drawn before the clock starts: pp batches, tg tokens."""
        arr = self.lib.llama_token * 1
        pp = []
        done = 0
        while done < test.n_prompt:
            n = min(self.n_batch, test.n_prompt - done)
            pp.append(((self.lib.llama_token * n)(*self._tokens(n, done == 0)), n))
            done += n
        tg = [arr(t) for t in self._tokens(test.n_gen, True)]
        return pp, tg

    def run(self, pp: list, tg: list) -> None:
        lib, ctx = self.lib, self.ctx
        for tokens, n in pp:
            if lib.llama_decode(ctx, lib.llama_batch_get_one(tokens, n)) != 0:
                raise RuntimeError(f"llama_decode failed on a prompt batch of {n} tokens")
        if pp:
            lib.llama_synchronize(ctx)
        for token in tg:
            if lib.llama_decode(ctx, lib.llama_batch_get_one(token, 1)) != 0:
                raise RuntimeError("llama_decode failed on a generated token")
            lib.llama_synchronize(ctx)


def run_probe(llm, tests: list[SpeedTest], *, reps: int = DEFAULT_REPS, n_threads: int | None = None,
              warmup: bool = True, seed: int = 0, meter=None, clock_reader=None) -> dict:
    """Run `tests` on a loaded `llama_cpp.Llama`: {"reps": [one dict per repetition], "context": {...}}.

    `meter` is an `lqbench.energy.EnergyMeter` (None: energy is not measured, method `none`);
    `clock_reader() -> (MHz or None, source)` reads the CPU clock (default: lqbench.energy.state.cpu_mhz).
    Leaves the context's KV memory empty and the Llama object's token count at 0, so the engine's next
    generation starts from a clean state."""
    if reps < 1:
        raise LqbenchError(f"reps must be >= 1, got {reps}")
    if clock_reader is None:
        from lqbench.energy.base import Sysfs
        from lqbench.energy.state import cpu_mhz

        sysfs = Sysfs("/")
        clock_reader = lambda: cpu_mhz(sysfs)  # noqa: E731
    dec = _Decoder(llm, n_threads, seed)
    for test in tests:
        if test.n_tokens > dec.n_ctx:
            raise LqbenchError(f"speed test {test.name} needs {test.n_tokens} KV cells; the context holds {dec.n_ctx}")
    rows: list[dict] = []
    try:
        for test in tests:
            if warmup:  # llama-bench: a whole pp run, then one generated token
                dec.clear()
                if test.n_prompt:
                    dec.run(*dec.prepare(SpeedTest(test.n_prompt, 0)))
                if test.n_gen:
                    dec.run(*dec.prepare(SpeedTest(0, 1)))
            for rep in range(reps):
                dec.clear()
                pp, tg = dec.prepare(test)
                mhz_start, mhz_source = clock_reader()
                window = meter.begin() if meter is not None else None
                t0 = time.perf_counter_ns()
                dec.run(pp, tg)
                ns = time.perf_counter_ns() - t0
                energy = window.finish() if window is not None else None
                mhz_end, _ = clock_reader()
                rows.append({
                    "test": test.name, "n_prompt": test.n_prompt, "n_gen": test.n_gen, "rep": rep, "ns": ns,
                    "ts": tokens_per_second(test.n_tokens, ns),
                    "cpu_mhz_start": mhz_start, "cpu_mhz_end": mhz_end, "cpu_mhz_source": mhz_source or None,
                    "energy_j": energy.joules if energy else None,
                    "energy_method": energy.method if energy else "none",
                    "energy_s": round(energy.seconds, 6) if energy else None,
                    "energy_note": (energy.note or None) if energy else "energy not metered",
                })
    finally:
        dec.clear()
        llm.reset()  # the Llama wrapper's own token count must agree with the now empty memory
    return {"reps": rows, "context": {"n_threads": dec.n_threads, "n_batch": dec.n_batch, "n_ubatch": dec.n_ubatch,
                                      "n_ctx": dec.n_ctx, "warmup": bool(warmup), "seed": seed}}
