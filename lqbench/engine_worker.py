"""The child process that holds a loaded model: `python -m lqbench.engine_worker NODE_NAME`.

`lqbench.engine_process.EngineProcess` starts it and talks to it over its stdin/stdout
with length-prefixed pickles: (op, kwargs) in, ("ok", result) or ("error", type name,
message) out. llama.cpp runs here and nowhere else, so a native crash (a SIGSEGV in a
kernel, an abort in a GGML_ASSERT) ends this process and is seen by the parent as an exit
status, not as the death of the agent, the CLI or pytest.

The protocol channel is a private copy of fd 1; fd 1 itself is pointed at stderr, so
anything llama.cpp prints cannot corrupt the channel. The child dies with its parent.

Test-only fault injection: `LQBENCH_TEST_ENGINE_FAULT` makes this real process crash or
hang on purpose, to test crash containment. No plan key reaches it; only the environment
of the process that starts the engine. Its value is a comma list of `MODE` or `NODE:MODE`:
  crash             SIGSEGV on every generate (or batched step)
  crash-extra-bufts SIGSEGV on generate when extra buffer types are on (like the AMX bug)
  crash-agent       SIGSEGV sent to the parent (the agent) on generate
  hang              generate never returns
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
import time

FAULT_ENV = "LQBENCH_TEST_ENGINE_FAULT"
_HEADER = struct.Struct("<I")


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int):
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, n))


def write_frame(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def faults_for(node: str, env: str | None) -> set[str]:
    """The fault modes `env` (LQBENCH_TEST_ENGINE_FAULT) asks of the engine of `node`."""
    modes = set()
    for item in (env or "").split(","):
        item = item.strip()
        if not item:
            continue
        where, sep, mode = item.rpartition(":")
        if not sep or where in ("*", node):
            modes.add(mode)
    return modes


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills us when the parent dies. Elsewhere a watchdog thread notices."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:
            pass

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True).start()


def _available_mib() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().available / (1 << 20)
    except Exception:
        return None


class _Engine:
    def __init__(self, node: str):
        self.node = node
        self.faults = faults_for(node, os.environ.get(FAULT_ENV))
        self.generator = None
        self.batched = None  # lqbench.batched.BatchedGenerator when the model was loaded with n_parallel > 1
        self.results = None  # the open batch's iterator of results
        self.config = None

    def _inject(self) -> None:
        if "hang" in self.faults:
            while True:
                time.sleep(3600)
        if "crash-agent" in self.faults:
            os.kill(os.getppid(), signal.SIGSEGV)
            time.sleep(60)
        if "crash" in self.faults or ("crash-extra-bufts" in self.faults and self.config.extra_bufts):
            os.kill(os.getpid(), signal.SIGSEGV)

    def _unload(self) -> None:
        self.op_batch_close()
        if self.batched is not None:
            self.batched.close()
            self.batched = None
        if self.generator is not None:
            self.generator.close()
            self.generator = None

    def op_load(self, model_path, config, n_threads, n_ctx, n_batch=512, n_parallel=1):
        """`n_parallel`: sequences decoded together (lqbench.batched); 0 = choose ("auto")."""
        from lqbench import batched
        from lqbench.engine import EngineConfig, capture_llama_log, parse_buffer_types
        from lqbench.generation import LlamaGenerator

        self._unload()
        self.config = EngineConfig.from_dict(config)
        t0 = time.perf_counter()
        why = "plan"
        with capture_llama_log() as log:
            # Batched with a known N, the sequences get a context of their own; the generator's is then
            # a small one that is never filled, not another full-size KV cache. "auto" loads the full
            # one: llama.cpp's report of its KV cache is the measure of what a sequence costs.
            self.generator = LlamaGenerator(model_path, n_threads=n_threads,
                                            n_ctx=n_ctx if n_parallel <= 1 else min(n_ctx, 256),
                                            n_batch=n_batch, config=self.config)
            if n_parallel == 0:
                n_parallel, why = batched.choose_parallel(batched.kv_mib("".join(log)), _available_mib(),
                                                          cap=batched.auto_cap(self.generator.n_threads))
            if n_parallel > 1:
                self.batched = batched.BatchedGenerator(self.generator, n_parallel, n_ctx=n_ctx, n_batch=n_batch)
        return {"load_ms": (time.perf_counter() - t0) * 1e3, "buffer_types": parse_buffer_types("".join(log)),
                "n_parallel": n_parallel, "parallel_why": why}

    # --- several samples at once (lqbench.batched) ---------------------------------------------
    def op_batch_open(self, requests):
        """Queue requests ({key, prompt, params, stop, special, add_bos}); batch_next returns results."""
        from lqbench.batched import Request
        from lqbench.generation import SamplingParams
        from lqbench.memory import reset_peak

        if self.batched is None:
            raise RuntimeError("no model loaded for batched decoding")
        self.op_batch_close()
        reset_peak()
        self.results = self.batched.run(Request(**{**r, "params": SamplingParams.from_dict(r["params"])})
                                        for r in requests)
        return len(requests)

    def op_batch_next(self):
        """The next request to end: (key, completion dict, None) or (key, None, (type name, message));
        None when every request has ended."""
        from lqbench.memory import peak_rss_mb

        if self.results is None:
            return None
        self._inject()
        item = next(self.results, None)
        if item is None:
            self.results = None
            return None
        request, outcome = item
        if isinstance(outcome, Exception):
            return request.key, None, (type(outcome).__name__, str(outcome))
        outcome.peak_rss_mb = peak_rss_mb()  # the process's peak since the batch opened
        return request.key, outcome.to_dict(), None

    def op_batch_close(self):
        """Drop what is still queued or being decoded (the caller stopped early)."""
        results, self.results = getattr(self, "results", None), None
        if results is not None:
            results.close()

    def op_generate(self, prompt, params, stop, special=False, add_bos=True):
        from lqbench.generation import SamplingParams
        from lqbench.memory import peak_rss_mb, reset_peak

        if self.generator is None:
            raise RuntimeError("no model loaded")
        self._inject()
        reset_peak()
        comp = self.generator.generate(prompt, SamplingParams.from_dict(params), stop, special=special,
                                       add_bos=add_bos)
        comp.peak_rss_mb = peak_rss_mb()
        return comp.to_dict()

    def op_perplexity(self, **kwargs):
        from lqbench.engine import EngineConfig
        from lqbench.perplexity import compute_perplexity

        self._unload()  # one model in memory at a time
        kwargs["config"] = EngineConfig.from_dict(kwargs.get("config"))
        self.config = kwargs["config"]
        self._inject()
        return compute_perplexity(**kwargs)

    def op_speed(self, tests, reps, n_threads=None, warmup=True, seed=0, median_of=None, meter=True):
        """The speed probe (lqbench.speed) on the loaded model: `tests` as [(n_prompt, n_gen)], plus a pp
        test at the median token length of the prompts in `median_of`, when given."""
        from lqbench.speed import SpeedTest, median_prompt_tokens, run_probe

        if self.generator is None:
            raise RuntimeError("no model loaded")
        if self.batched is not None:  # its own context is then a small one; the probe wants the plan's
            raise RuntimeError("the speed probe needs the model loaded for one sequence (n_parallel = 1)")
        self._inject()
        tests = [SpeedTest(int(p), int(g)) for p, g in tests]
        median = None
        if median_of:
            median = median_prompt_tokens(self.generator.tokenize, list(median_of))
            if median and SpeedTest(median, 0) not in tests:
                tests.insert(sum(1 for t in tests if t.n_gen == 0), SpeedTest(median, 0))
        energy = None
        if meter:
            from lqbench.energy import EnergyMeter

            energy = EnergyMeter()
        result = run_probe(self.generator.llm, tests, reps=int(reps), n_threads=n_threads, warmup=warmup,
                           seed=int(seed), meter=energy)
        result["context"]["median_prompt"] = median
        return result

    def op_build_info(self):
        from lqbench.engine import build_info

        return build_info()


def main(argv: list[str]) -> int:
    node = argv[1] if len(argv) > 1 else ""
    # A Ctrl-C on the terminal is the head's to handle (it stops the run at a safe point); the
    # engine ends with its parent, and must not die of it first and look like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel_out = os.dup(1)
    os.dup2(2, 1)  # llama.cpp's prints go to stderr, never into the channel
    sys.stdout = sys.stderr
    channel_in = 0
    import faulthandler

    faulthandler.enable()  # a native crash leaves the Python stack on stderr for the parent to quote
    _die_with_parent(os.getppid())
    engine = _Engine(node)
    while True:
        try:
            op, kwargs = read_frame(channel_in)
        except EOFError:
            return 0
        if op == "exit":
            return 0
        try:
            result = getattr(engine, f"op_{op}")(**kwargs)
            reply = ("ok", result)
        except Exception as exc:  # reported to the parent; the engine stays usable
            reply = ("error", type(exc).__name__, str(exc))
        write_frame(channel_out, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
