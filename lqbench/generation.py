"""Turning a prompt into a completion, timed the way llama-bench times it.

`LlamaGenerator` runs a GGUF on the CPU with llama-cpp-python. Per call it clears the KV
cache (no prefix reuse between samples, so every prompt is processed in full and prompt
timings stay honest), resets llama.cpp's perf counters, decodes until EOS/EOG, a stop
string or `max_tokens`, and reports llama.cpp's own counters:

  prompt_tokens / prompt_ms  = n_p_eval / t_p_eval_ms   (prompt processing, "pp")
  gen_tokens / gen_ms        = n_eval / t_eval_ms       (token generation, "tg": one decode per token)
  ttft_ms = call start -> first generated token sampled;  wall_ms = the whole call.

`gen_tokens` counts decoded tokens: the last sampled token (the EOS, or the one that
completed a stop string or hit the limit) is never fed back, so it is one less than
`sampled_tokens` — which makes gen_tokens / gen_ms exactly llama-bench's tg rate.

`FakeGenerator` stands in for it in unit tests of the logic above generation.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Protocol, Sequence

from lqbench.errors import LqbenchError


class ContextOverflow(LqbenchError):
    """The prompt does not fit the context window (a per-sample generation error, not a plan error)."""


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_k: int = 1
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int = 0
    repeat_penalty: float = 1.0

    def __post_init__(self):
        if self.temperature < 0:
            raise LqbenchError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise LqbenchError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise LqbenchError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.top_k < 0:
            raise LqbenchError(f"top_k must be >= 0 (0 = whole vocabulary), got {self.top_k}")
        if self.temperature == 0 and self.top_k != 1:
            # Greedy decoding is top-1 whatever top_k says; store it so equal plans hash equal.
            object.__setattr__(self, "top_k", 1)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "SamplingParams":
        """From a plan's [sampling] table; keys that are not per-call parameters (e.g. `n`) are ignored."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def with_seed(self, seed: int) -> "SamplingParams":
        return SamplingParams(**{**self.to_dict(), "seed": seed})


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    gen_tokens: int
    prompt_ms: float
    gen_ms: float
    ttft_ms: float
    wall_ms: float
    finish_reason: str  # "stop" (EOS or a stop string) | "length" (max_tokens or the context end)
    sampled_tokens: int = 0  # tokens the sampler produced, incl. a final EOS (gen_tokens + 1 when > 0)
    peak_rss_mb: float | None = None  # the generating process's peak RSS during the call, where it was measured

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(Protocol):
    def generate(self, prompt: str, params: SamplingParams, stop: Sequence[str] = (), special: bool = False,
                 add_bos: bool = True) -> Completion: ...

    def close(self) -> None: ...


def truncate_at_stop(text: str, stop: Sequence[str], search_from: int = 0) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string at or after `search_from` (MultiPL-E's rule)."""
    cut = min((i for s in stop if s and (i := text.find(s, search_from)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class ReplyText:
    """A reply growing token by token: detokenized incrementally (UTF-8 split across tokens is
    held back until complete), cut at the earliest stop string, ended by an end-of-generation
    token or after `max_new` sampled tokens. Both generators (one sequence, or several batched in
    lqbench.batched) feed it the same way, so a reply ends by the same rules in either."""

    def __init__(self, llm, vocab, stop: Sequence[str], max_new: int):
        import llama_cpp

        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._llm, self._vocab = llm, vocab
        self.stop = [s for s in stop if s]
        self._longest_stop = max((len(s) for s in self.stop), default=0)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.max_new = max_new
        self.text = ""
        self.sampled = 0

    def push(self, token: int) -> str | None:
        """Take one sampled token; "stop" or "length" if the reply ends with it, else None."""
        self.sampled += 1
        if self._is_eog(self._vocab, token):
            return "stop"
        before = len(self.text)
        self.text += self._decoder.decode(self._llm.detokenize([token]))
        if self.stop:
            self.text, hit = truncate_at_stop(self.text, self.stop, max(0, before - self._longest_stop + 1))
            if hit:
                return "stop"
        if self.sampled >= self.max_new:
            return "length"
        return None

    def finish(self, reason: str) -> tuple[str, str, int]:
        """(text, finish reason, tokens sampled); a reply cut by length flushes a partial character."""
        if reason == "length":
            self.text += self._decoder.decode(b"", final=True)
        return self.text, reason, self.sampled


class LlamaGenerator:
    """A GGUF loaded once on the CPU; `generate` per sample (see the module docstring for the timings)."""

    def __init__(self, model_path: str, n_threads: int | None = None, n_ctx: int = 2048, n_batch: int = 512,
                 reuse_prefix: bool = False, config=None):
        """`reuse_prefix=True` keeps the KV cache between calls so a prompt sharing a prefix with the
        previous call only evaluates the rest (faster, but prompt_tokens/prompt_ms then count only
        that rest). A library option: no plan key turns it on, so runs never reuse prefixes.
        `config` is the `lqbench.engine.EngineConfig` of the load (default: extra buffer types on)."""
        from lqbench.engine import DEFAULT, load_llama
        from lqbench.gguf_meta import check_magic

        check_magic(model_path)
        if n_threads is None:
            from lqbench.hardware import physical_cores

            n_threads = physical_cores()
        import llama_cpp

        self.n_threads = int(n_threads)
        self.n_ctx = int(n_ctx)
        self.reuse_prefix = bool(reuse_prefix)
        self.model_path = str(model_path)
        self.config = config or DEFAULT
        t0 = time.perf_counter()
        try:
            self.llm = load_llama(
                self.model_path, self.config,
                n_ctx=self.n_ctx,
                n_batch=min(n_batch, self.n_ctx),
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_gpu_layers=0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LqbenchError(f"llama.cpp could not load {model_path}: {exc}") from exc
        self.load_ms = (time.perf_counter() - t0) * 1e3
        self._llama_cpp = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)

    def tokenize(self, text: str, add_bos: bool = True, special: bool = False) -> list[int]:
        # special=False by default: a prompt is text; "<eos>" written in a Lua comment must not end it.
        # A rendered chat template is the exception: its <start_of_turn> must be the special token.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def generate(self, prompt: str, params: SamplingParams = SamplingParams(), stop: Sequence[str] = (),
                 special: bool = False, add_bos: bool = True) -> Completion:
        """`special`/`add_bos`: how the prompt is tokenized (see `tokenize`); chat prompts
        (lqbench.prompt_styles) pass special=True, add_bos=False since their template writes the BOS."""
        llama_cpp, llm = self._llama_cpp, self.llm
        t_start = time.perf_counter()
        tokens = self.tokenize(prompt, add_bos=add_bos, special=special)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise ContextOverflow(f"prompt has {len(tokens)} tokens; the context holds {self.n_ctx}")
        max_new = min(params.max_tokens, room)

        if not self.reuse_prefix:
            llm.reset()  # n_tokens = 0: the next eval clears the whole KV cache (no prefix reuse)
        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.set_seed(params.seed)

        reply = ReplyText(llm, self._vocab, stop, max_new)
        finish, ttft_ms = "length", 0.0
        for token in llm.generate(
            tokens,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=0.0,  # llama-cpp-python's default 0.05 would silently narrow seeded sampling
            typical_p=1.0,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
            reset=True,
        ):
            if reply.sampled == 0:
                ttft_ms = (time.perf_counter() - t_start) * 1e3
            finish = reply.push(token)
            if finish:
                break
        text, finish, sampled = reply.finish(finish or "length")
        perf = llama_cpp.llama_perf_context(llm.ctx)
        wall_ms = (time.perf_counter() - t_start) * 1e3
        return Completion(
            text=text,
            prompt_tokens=int(perf.n_p_eval),
            gen_tokens=int(perf.n_eval),
            prompt_ms=float(perf.t_p_eval_ms),
            gen_ms=float(perf.t_eval_ms),
            ttft_ms=ttft_ms,
            wall_ms=wall_ms,
            finish_reason=finish,
            sampled_tokens=sampled,
        )

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeGenerator:
    """Deterministic completions for unit tests: `responses` maps a prompt to text (dict or callable).

    A response that is an Exception is raised instead (to test generation errors).
    Token counts are ~4 characters per token; timings are computed, not slept, at
    `prompt_tok_s` and `gen_tok_s`, so results are plausible and tests stay fast.
    """

    def __init__(
        self,
        responses: Mapping[str, str | Exception] | Callable[[str], str] | None = None,
        default: str = "",
        prompt_tok_s: float = 500.0,
        gen_tok_s: float = 50.0,
        load_ms: float = 100.0,
        n_threads: int = 1,
    ):
        self.responses = responses
        self.default = default
        self.prompt_tok_s = prompt_tok_s
        self.gen_tok_s = gen_tok_s
        self.load_ms = load_ms
        self.n_threads = n_threads
        self.calls: list[tuple[str, SamplingParams]] = []
        self.tokenization: dict = {}  # how the last call asked for its prompt to be tokenized, and its stops
        self.closed = False

    @staticmethod
    def count_tokens(text: str) -> int:
        return (len(text) + 3) // 4

    def generate(self, prompt: str, params: SamplingParams = SamplingParams(), stop: Sequence[str] = (),
                 special: bool = False, add_bos: bool = True) -> Completion:
        if self.closed:
            raise RuntimeError("FakeGenerator used after close()")
        self.calls.append((prompt, params))
        self.tokenization = {"special": special, "add_bos": add_bos, "stop": list(stop)}  # of the last call
        if callable(self.responses):
            out = self.responses(prompt)
        elif self.responses is not None:
            out = self.responses.get(prompt, self.default)
        else:
            out = self.default
        if isinstance(out, Exception):
            raise out
        text, hit = truncate_at_stop(out, stop)
        finish = "stop" if hit or self.count_tokens(text) < params.max_tokens else "length"
        if self.count_tokens(text) > params.max_tokens:
            text = text[: 4 * params.max_tokens]
        sampled = min(self.count_tokens(text) + 1, params.max_tokens)
        n_prompt = self.count_tokens(prompt) + 1  # + BOS
        prompt_ms = 1e3 * n_prompt / self.prompt_tok_s
        gen_tokens = max(sampled - 1, 0)
        gen_ms = 1e3 * gen_tokens / self.gen_tok_s
        ttft_ms = prompt_ms + 0.5
        return Completion(
            text=text,
            prompt_tokens=n_prompt,
            gen_tokens=gen_tokens,
            prompt_ms=prompt_ms,
            gen_ms=gen_ms,
            ttft_ms=ttft_ms,
            wall_ms=ttft_ms + gen_ms + 0.5,
            finish_reason=finish,
            sampled_tokens=sampled,
        )

    def close(self) -> None:
        self.closed = True
