"""Several samples decoded together: continuous batching on llama.cpp's low-level API.

On a CPU, decoding one token is bound by memory bandwidth: every step reads all the weights.
One `llama_decode` over N sequences reads them once for all N, so a shard's samples finish
several times sooner in total, while each one still sees only its own prompt and tokens.

`BatchedGenerator` shares the model of a loaded `LlamaGenerator` and makes a second
llama.cpp context with `n_seq_max = N` and a KV stream per sequence (not unified: a
sequence's attention never scans another's cells), each of the plan's `n_ctx`. `run()` takes
requests and yields `(request, Completion | Exception)` as each sequence ends. A slot that
ends takes the next request at once (continuous batching). Each step is one batch holding the
last token of every generating sequence and, up to `n_batch` tokens, prompt tokens of
sequences starting: prompt processing rides along with generation ("mixed"), or, with
`mixed=False`, new prompts are decoded in batches of their own first (bench/bench_batched.py
measures both).

Each sequence has its own sampler chain, built exactly as llama-cpp-python's `Llama.generate`
builds it for today's one-at-a-time path (penalties, then greedy, or top-k, typical, top-p,
min-p, temperature and a seeded draw), and its reply ends by the same rules
(`lqbench.generation.ReplyText`: EOG, stop strings, max tokens, the end of its context).

Timings of a batched sample are its share of shared work, not a single stream's speed:
  prompt_ms  the decode steps that held its prompt tokens; gen_ms the steps that held its
  generated tokens (each step is all sequences' step); ttft_ms and wall_ms from the moment it
  took its slot. Samples record `n_parallel`, and speed questions go to the speed probe.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from lqbench.generation import Completion, ContextOverflow, ReplyText, SamplingParams

# llama-cpp-python's Llama keeps this many recent tokens for its repetition penalty.
PENALTY_LAST_N = 64
# `parallel = "auto"`: AUTO_PER_THREAD sequences per thread the engine uses, at most AUTO_MAX, and
# the KV caches together at most AUTO_MEMORY_SHARE of the memory available when the model loads.
# A step of N sequences turns compute-bound as N grows, sooner with fewer cores. Measured with
# bench/bench_batched.py on 2 threads (demo model, 60 tasks, 256 tokens, `lqbench run` end to end):
# samples per hour x1.42 at N=2, x2.24 at N=4, x2.09 at N=8; decode steps alone: 16 sequences cost
# 2.2x a step of 8. Other core counts are not measured; the cap keeps a big laptop from paying a
# full KV cache per sequence for gains this project has not seen.
AUTO_PER_THREAD = 2
AUTO_MAX = 8
AUTO_MEMORY_SHARE = 0.5
_KV_LINE = re.compile(r"KV buffer size\s*=\s*([0-9.]+)\s*MiB")


def kv_mib(load_log: str) -> float | None:
    """MiB of KV cache llama.cpp allocated, from its log of making a context (None if it did not say)."""
    sizes = [float(x) for x in _KV_LINE.findall(load_log)]
    return sum(sizes) if sizes else None


def auto_cap(n_threads: int) -> int:
    return max(1, min(AUTO_MAX, AUTO_PER_THREAD * int(n_threads)))


def choose_parallel(kv_mib_per_sequence: float | None, available_mib: float | None,
                    cap: int = AUTO_MAX) -> tuple[int, str]:
    """`parallel = "auto"` on this node for this model file: as many sequences as fit, up to `cap`
    (`auto_cap` of the engine's threads). Both other inputs are measured where the model was loaded:
    llama.cpp's own report of one sequence's KV cache at the plan's n_ctx, and the memory available
    then. (n, why)."""
    if not kv_mib_per_sequence or available_mib is None:
        return 1, "auto: KV cache size or free memory unknown, so one sequence at a time"
    fit = int(AUTO_MEMORY_SHARE * available_mib // kv_mib_per_sequence)
    n = max(1, min(cap, fit))
    return n, (f"auto: {n} (KV {kv_mib_per_sequence:.0f} MiB per sequence, {available_mib:.0f} MiB available, "
               f"cap {cap})")


@dataclass
class Request:
    key: Any  # the caller's name for it, returned with its result
    prompt: str
    params: SamplingParams
    stop: Sequence[str] = ()
    special: bool = False  # tokenization, as LlamaGenerator.generate
    add_bos: bool = True


@dataclass
class _Slot:
    seq: int
    request: Request
    prompt: list[int]
    reply: ReplyText
    sampler: Any
    t_start: float
    n_fed: int = 0  # prompt tokens already in this sequence's KV cells
    next_token: int | None = None  # sampled, to be fed in the next step
    prompt_ms: float = 0.0
    gen_ms: float = 0.0
    gen_tokens: int = 0
    ttft_ms: float = 0.0

    @property
    def prefilling(self) -> bool:
        return self.n_fed < len(self.prompt)


def _plain_greedy(params: SamplingParams) -> bool:
    """Greedy with no repetition penalty: the chain would only take the highest logit. numpy finds it in
    the logits in place; llama.cpp's sampler first copies the whole vocabulary (262k entries for Gemma 3)
    into candidates. Measured on 16 samples at 8 sequences: 2.4 s of sampling became 0.3 s."""
    return params.temperature == 0 and params.repeat_penalty == 1.0


def sampler_chain(params: SamplingParams, n_vocab: int):
    """A llama.cpp sampler chain equal to the one `Llama.generate` builds for these parameters
    (min_p 0 and typical_p 1, as LlamaGenerator passes them). The caller frees it."""
    import llama_cpp as ll

    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())

    def add(sampler) -> None:
        ll.llama_sampler_chain_add(chain, sampler)

    add(ll.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0))
    if params.temperature == 0:
        add(ll.llama_sampler_init_greedy())
    else:
        add(ll.llama_sampler_init_top_k(params.top_k))
        add(ll.llama_sampler_init_typical(1.0, 1))
        add(ll.llama_sampler_init_top_p(params.top_p, 1))
        add(ll.llama_sampler_init_min_p(0.0, 1))
        add(ll.llama_sampler_init_temp(params.temperature))
        add(ll.llama_sampler_init_dist(params.seed))
    return chain


class BatchedGenerator:
    """N sequences of one model decoded together (see the module docstring)."""

    def __init__(self, generator, n_parallel: int, *, n_ctx: int | None = None, n_batch: int = 512,
                 mixed: bool = True):
        """`generator`: a loaded lqbench.generation.LlamaGenerator (its model is shared);
        `n_ctx`: each sequence's context (default: the generator's)."""
        import llama_cpp as ll

        if n_parallel < 1:
            raise ValueError(f"n_parallel must be >= 1, got {n_parallel}")
        self._ll = ll
        self.generator = generator
        self.llm = generator.llm
        self.n_parallel = int(n_parallel)
        self.mixed = bool(mixed)
        self._vocab = ll.llama_model_get_vocab(self.llm.model)
        self._n_vocab = ll.llama_vocab_n_tokens(self._vocab)
        seq_ctx = int(n_ctx or generator.n_ctx)
        self.n_batch = max(int(n_batch), self.n_parallel)
        # The same context settings as the one-at-a-time path, with N sequences of seq_ctx each.
        params = ll.llama_context_params.from_buffer_copy(self.llm.context_params)
        params.n_ctx = seq_ctx * self.n_parallel
        params.n_seq_max = self.n_parallel
        params.kv_unified = False
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        self.ctx = ll.llama_init_from_model(self.llm.model, params)
        if not self.ctx:
            raise MemoryError(f"llama.cpp could not make a context for {self.n_parallel} sequences of {seq_ctx}")
        self.seq_ctx = min(seq_ctx, int(ll.llama_n_ctx_seq(self.ctx)))
        self._memory = ll.llama_get_memory(self.ctx)
        self._batch = ll.llama_batch_init(self.n_batch, 0, 1)

    # --- one batch ------------------------------------------------------------
    def _add(self, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self._batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = 1 if logits else 0

    def _fill(self, slots: list[_Slot]) -> list[tuple[_Slot, int | None, bool]]:
        """Put this step's tokens in the batch: every generating sequence's next token, then
        prompt tokens while there is room. Returns (slot, batch index of its logits or None, prefill)."""
        n, plan = 0, []
        # In sequence order: llama.cpp takes longer over a batch whose sequences come out of order
        # (measured here: 4 generating sequences as 1,2,3,0 took 73 ms a step, as 0,1,2,3 53 ms).
        slots = sorted(slots, key=lambda s: s.seq)
        prefilling = [s for s in slots if s.prefilling]
        generating = [s for s in slots if not s.prefilling]
        if prefilling and not self.mixed:
            generating = []  # new prompts first, in batches of their own
        for s in generating:  # its next token goes after its prompt and the tokens it already fed back
            self._add(n, s.next_token, len(s.prompt) + s.gen_tokens, s.seq, True)
            plan.append((s, n, False))
            n += 1
        for s in prefilling:
            take = min(len(s.prompt) - s.n_fed, self.n_batch - n)
            if take <= 0:
                break
            for j in range(take):
                last = s.n_fed + j == len(s.prompt) - 1
                self._add(n, s.prompt[s.n_fed + j], s.n_fed + j, s.seq, last)
                n += 1
            s.n_fed += take
            plan.append((s, n - 1 if not s.prefilling else None, True))
        self._batch.n_tokens = n
        return plan

    def _start(self, seq: int, request: Request) -> _Slot | Exception:
        tokens = self.generator.tokenize(request.prompt, add_bos=request.add_bos, special=request.special)
        room = self.seq_ctx - len(tokens)
        if room < 1:
            return ContextOverflow(f"prompt has {len(tokens)} tokens; the context holds {self.seq_ctx}")
        self._ll.llama_memory_seq_rm(self._memory, seq, -1, -1)  # nothing of the last sample stays
        return _Slot(seq=seq, request=request, prompt=tokens,
                     reply=ReplyText(self.llm, self._vocab, request.stop, min(request.params.max_tokens, room)),
                     sampler=None if _plain_greedy(request.params) else sampler_chain(request.params, self._n_vocab),
                     t_start=time.perf_counter())

    def _end(self, slot: _Slot, reason: str) -> Completion:
        if slot.sampler is not None:
            self._ll.llama_sampler_free(slot.sampler)
        text, finish, sampled = slot.reply.finish(reason)
        return Completion(text=text, prompt_tokens=len(slot.prompt), gen_tokens=slot.gen_tokens,
                          prompt_ms=slot.prompt_ms, gen_ms=slot.gen_ms, ttft_ms=slot.ttft_ms,
                          wall_ms=(time.perf_counter() - slot.t_start) * 1e3, finish_reason=finish,
                          sampled_tokens=sampled)

    # --- the loop -------------------------------------------------------------
    def run(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Completion | Exception]]:
        """Yield (request, completion or the exception that ended it) as each one ends. Closing
        the iterator early frees the sequences it was working on."""
        ll = self._ll
        pending = iter(requests)
        slots: dict[int, _Slot] = {}
        free = list(range(self.n_parallel - 1, -1, -1))
        try:
            while True:
                while free:
                    request = next(pending, None)
                    if request is None:
                        break
                    slot = self._start(free[-1], request)
                    if isinstance(slot, Exception):
                        yield request, slot
                        continue
                    slots[free.pop()] = slot
                if not slots:
                    return
                plan = self._fill(list(slots.values()))
                t0 = time.perf_counter()
                status = ll.llama_decode(self.ctx, self._batch)
                if status != 0:  # the step's samples fail (each a generation error), the shard goes on
                    error = RuntimeError(f"llama_decode returned {status} for a batch of {self._batch.n_tokens} "
                                         f"tokens of {len(slots)} sequences")
                    for slot in list(slots.values()):
                        del slots[slot.seq]
                        free.append(slot.seq)
                        self._end(slot, "length")  # frees its sampler
                        yield slot.request, error
                    continue
                step_ms = (time.perf_counter() - t0) * 1e3
                now = time.perf_counter()
                for slot, index, prefill in plan:
                    if prefill:
                        slot.prompt_ms += step_ms
                    else:
                        slot.gen_ms += step_ms
                        slot.gen_tokens += 1
                    if index is None:
                        continue  # more of its prompt to go
                    if slot.sampler is None:  # plain greedy: the first highest logit, as llama.cpp's greedy sampler
                        token = int(np.ctypeslib.as_array(ll.llama_get_logits_ith(self.ctx, index),
                                                          shape=(self._n_vocab,)).argmax())
                    else:
                        token = ll.llama_sampler_sample(slot.sampler, self.ctx, index)
                    if slot.reply.sampled == 0:
                        slot.ttft_ms = (now - slot.t_start) * 1e3
                    finish = slot.reply.push(token)
                    if finish:
                        del slots[slot.seq]
                        free.append(slot.seq)
                        yield slot.request, self._end(slot, finish)
                    else:
                        slot.next_token = token
        finally:
            for slot in slots.values():
                if slot.sampler is not None:
                    ll.llama_sampler_free(slot.sampler)
                ll.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)

    def close(self) -> None:
        ll = self._ll
        if getattr(self, "ctx", None):
            ll.llama_batch_free(self._batch)
            ll.llama_free(self.ctx)
            self.ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
