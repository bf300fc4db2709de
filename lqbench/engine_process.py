"""A loaded model in a child process, so that llama.cpp crashing or hanging is a result, not the end.

`EngineProcess` starts `lqbench.engine_worker`, loads a model there with an
`EngineConfig`, and runs generations and perplexity in it. If the child dies (a SIGSEGV in a
kernel, an abort, the OOM killer) or does not answer within `hang_timeout_s`, the call raises
`EngineFailure` with what happened ("crashed: SIGSEGV", "hung: no reply in 600 s") and the child
is gone; the caller decides what to do next (the agent reports it, the scheduler retries with a
safer configuration or excludes the node for that model file). Errors that llama.cpp reports
normally (a prompt longer than the context) come back as ordinary exceptions.

`IsolatedGenerator` is an `EngineProcess` that follows the Generator protocol of
`lqbench.generation`, which is how `run_shard` uses it on a laptop.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Sequence

from lqbench.engine import DEFAULT, EngineConfig, EngineFailure
from lqbench.errors import LqbenchError
from lqbench.generation import Completion, ContextOverflow, SamplingParams


def describe_exit(returncode: int) -> str:
    """"SIGSEGV" for a process killed by signal 11, "exit code 3" otherwise."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _last_words(stderr_text: str) -> str:
    """The most telling line of what a dying engine printed: a GGML_ASSERT, a C++ exception, an error
    line (faulthandler's "Fatal Python error: <signal>" only restates the signal, so it is not one)."""
    lines = [ln.strip() for ln in stderr_text.splitlines() if ln.strip() and "Fatal Python error" not in ln]
    for key in ("GGML_ASSERT", "terminate called", "what():", "error:"):
        for ln in reversed(lines):
            if key in ln:
                return ln[:200]
    return ""


# What an operation is called in a failure's cause: batched decoding is generation like any other.
_WORDS = {"batch_open": "generate", "batch_next": "generate", "batch_close": "generate"}


def _as_exception(name: str, message: str) -> Exception:
    """The engine's report of an ordinary error (type name, message) as an exception here."""
    if name == "ContextOverflow":
        return ContextOverflow(message)
    if name == "LqbenchError":
        return LqbenchError(message)
    return RuntimeError(f"{name}: {message}")


class EngineProcess:
    """One child process holding (at most) one loaded model."""

    def __init__(self, node_name: str = "", hang_timeout_s: float = 600.0, load_timeout_s: float = 600.0):
        self.node_name = node_name
        self.hang_timeout_s = float(hang_timeout_s)
        self.load_timeout_s = float(load_timeout_s)
        self.config: EngineConfig = DEFAULT
        self.loaded: tuple | None = None
        self.load_info: dict = {}
        self._proc = None
        self._replies: queue.Queue = queue.Queue()
        self._stderr = None

    # --- the child ----------------------------------------------------------
    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile(prefix="lqbench-engine-")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "lqbench.engine_worker", self.node_name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        )
        self._replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(self._proc, self._replies), daemon=True).start()

    @staticmethod
    def _read_replies(proc, replies: queue.Queue) -> None:
        from lqbench.engine_worker import read_frame

        fd = proc.stdout.fileno()
        while True:
            try:
                replies.put(read_frame(fd))
            except Exception:  # EOF (the child exited) or a torn frame (it died mid-write)
                replies.put(None)
                return

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 8192))
            return self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _call(self, op: str, timeout_s: float, **kwargs):
        from lqbench.engine_worker import write_frame

        if self._proc is None or self._proc.poll() is not None:
            self._start()
        try:
            write_frame(self._proc.stdin.fileno(), (op, kwargs))
        except OSError:
            pass  # it died before reading: the reply wait below reports how
        try:
            reply = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self._kill()
            raise EngineFailure("hung", f"no reply to {_WORDS.get(op, op)} in {timeout_s:.0f} s", self.config) from None
        if reply is None:
            try:
                code = self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
                code = self._proc.returncode
            hint = _last_words(self._stderr_text())
            self._forget()
            reason = describe_exit(code if code is not None else -9) + (f" ({hint})" if hint else "")
            raise EngineFailure("crashed", f"{reason} during {_WORDS.get(op, op)}", self.config)
        if reply[0] == "ok":
            return reply[1]
        raise _as_exception(reply[1], reply[2])

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._forget()

    def _forget(self) -> None:
        self.loaded = None
        self.load_info = {}
        for stream in (getattr(self._proc, "stdin", None), getattr(self._proc, "stdout", None), self._stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._proc, self._stderr = None, None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # --- operations ---------------------------------------------------------
    def load(self, model_path: str, config: EngineConfig = DEFAULT, *, n_threads: int, n_ctx: int = 2048,
             n_batch: int = 512, n_parallel: int = 1) -> float | None:
        """Load unless this exact model and configuration is loaded; the load time in ms, or None if reused.
        `n_parallel` > 1 makes the engine decode that many samples together (`generate_many`); 0 lets
        it choose from what one sequence's KV cache costs and the memory available (`n_parallel` then says)."""
        key = (str(model_path), config, int(n_threads), int(n_ctx), int(n_batch), int(n_parallel))
        if self.loaded == key:
            return None
        self.config = config
        self.load_info = self._call("load", self.load_timeout_s, model_path=str(model_path),
                                    config=config.to_dict(), n_threads=int(n_threads), n_ctx=int(n_ctx),
                                    n_batch=int(n_batch), n_parallel=int(n_parallel))
        self.loaded = key
        return float(self.load_info["load_ms"])

    @property
    def n_parallel(self) -> int:
        return int(self.load_info.get("n_parallel", 1)) if self.loaded else 1

    def generate(self, prompt: str, params: SamplingParams = SamplingParams(), stop: Sequence[str] = (), *,
                 special: bool = False, add_bos: bool = True) -> Completion:
        """As `LlamaGenerator.generate` (`special`/`add_bos`: how the prompt is tokenized; chat prompts parse
        their template's special tokens and bring their own BOS)."""
        out = self._call("generate", self.hang_timeout_s, prompt=prompt, params=params.to_dict(), stop=list(stop),
                         special=special, add_bos=add_bos)
        return Completion(**out)

    def generate_many(self, requests: list[dict]):
        """Decode `requests` ({key, prompt, params (a dict), stop, special, add_bos}) together in the
        loaded model's batch (lqbench.batched); yield (key, Completion or the exception that ended it)
        as each one ends. Each wait for the next result has the hang timeout; closing the generator
        early drops the rest in the engine."""
        self._call("batch_open", self.hang_timeout_s, requests=requests)
        done = False
        try:
            while True:
                item = self._call("batch_next", self.hang_timeout_s)
                if item is None:
                    done = True
                    return
                key, completion, error = item
                yield key, (Completion(**completion) if error is None else _as_exception(*error))
        finally:
            if not done and self._proc is not None and self._proc.poll() is None:
                self._call("batch_close", self.hang_timeout_s)

    def perplexity(self, config: EngineConfig = DEFAULT, **kwargs) -> dict:
        self.config = config
        self.loaded = None  # the child drops its generator to make room
        return self._call("perplexity", self.load_timeout_s + self.hang_timeout_s, config=config.to_dict(),
                          **kwargs)

    def speed(self, tests, *, reps: int = 5, n_threads: int | None = None, warmup: bool = True, seed: int = 0,
              median_of: Sequence[str] = (), meter: bool = True, timeout_s: float | None = None) -> dict:
        """The speed probe (lqbench.speed.run_probe) on the loaded model; `tests` as [(n_prompt, n_gen)],
        `median_of`: prompts whose median token length gets its own pp test. A repetition costs less than
        one long sample, so the default timeout is the hang timeout per repetition (warm-up included)."""
        if self.loaded is None:
            raise LqbenchError("the speed probe needs a loaded model (EngineProcess.load first)")
        timeout = timeout_s if timeout_s is not None else self.hang_timeout_s * (int(reps) + 1)
        return self._call("speed", timeout, tests=[tuple(t) for t in tests], reps=int(reps), n_threads=n_threads,
                          warmup=bool(warmup), seed=int(seed), median_of=list(median_of), meter=bool(meter))

    def build_info(self) -> dict:
        return self._call("build_info", 120.0)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            from lqbench.engine_worker import write_frame

            try:
                write_frame(self._proc.stdin.fileno(), ("exit", {}))
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class IsolatedGenerator:
    """The Generator protocol over an `EngineProcess` whose model is loaded."""

    def __init__(self, engine: EngineProcess):
        self.engine = engine

    @property
    def config(self) -> EngineConfig:
        return self.engine.config

    @property
    def n_parallel(self) -> int:
        return self.engine.n_parallel

    def generate(self, prompt: str, params: SamplingParams = SamplingParams(), stop: Sequence[str] = (), *,
                 special: bool = False, add_bos: bool = True) -> Completion:
        return self.engine.generate(prompt, params, stop, special=special, add_bos=add_bos)

    def generate_many(self, requests: list[dict]):
        return self.engine.generate_many(requests)

    def close(self) -> None:
        self.engine.close()
