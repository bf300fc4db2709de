"""Perplexity of a model on a Lua corpus, and how far its token distributions drift from a base model.

`compute_perplexity(model_path, text)` is a pure function of files: the model, the text,
and (for KL divergence) a file of the base model's distributions written by an earlier
call with `save_logits_path`. So a ladder is scored as: the base once with
`save_logits_path=base.npz`, then each quant with `base_logits_path=base.npz`, on any
node that has the file.

Method (close to llama-perplexity's):
  - the text is tokenized once (no BOS) and cut into chunks of `n_ctx - 1` tokens; each chunk
    is evaluated from an empty KV cache as BOS + chunk, and every chunk token is scored
    from the logits of the position before it (so every text token is predicted once);
  - ppl = exp(mean negative log-likelihood of the scored tokens);
  - top1_agreement = share of positions where this model's most likely token equals the
    base's ("same top" in llama-perplexity's KL-divergence mode);
  - kld_mean = mean over positions of KL(base ‖ model).

The approximation: llama-perplexity stores the base's full distribution (one value per
vocabulary entry per position — 262k for Gemma, gigabytes for a real corpus). We store the
base's top-K (default 32) token ids and log-probabilities per position; the KL divergence
is computed over those K tokens plus one bucket for "all other tokens" (base mass 1 - ΣpK,
model mass 1 - ΣqK at the same ids). Merging tokens into one bucket can only lower a KL
divergence (log-sum inequality), so kld_mean is a lower bound of the full-vocabulary KLD
that is exact when the base puts no mass outside its top K; with K=32 the base's tail
mass on code is typically a few percent, and what is lost is only how that tail is spread.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from lqbench.errors import LqbenchError

FORMAT_VERSION = 1


def corpus_from_suite(suite, *, with_tests: bool = False) -> str:
    """The Lua text of a suite's reference programs: prompt + reference solution for each problem
    (and its LuaUnit tests with `with_tests`), separated by blank lines."""
    problems = getattr(suite, "problems", None) or []
    if not problems:
        raise LqbenchError(f"suite {suite.name} has no reference solutions to build a perplexity corpus from")
    parts = []
    for p in problems:
        program = p.task.prompt + p.reference
        if with_tests:
            program += "\n" + p.task.tests
        parts.append(program.strip("\n"))
    return "\n\n".join(parts) + "\n"


def corpus_name(suite, *, with_tests: bool = False) -> str:
    """How a corpus is named in the `perplexity` table: suite, version, what was included."""
    return f"{suite.name}@{suite.version}:{'reference+tests' if with_tests else 'reference'}"


def load_corpus(spec: str) -> tuple[str, str]:
    """(corpus name for the `perplexity` table, text) for a plan's `[perplexity] corpus`:
    a suite name (its reference programs) or a path to a text/Lua file."""
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LqbenchError(f"cannot read perplexity corpus {path}: {exc}") from None
        return f"file:{path.name}@{hashlib.sha256(text.encode()).hexdigest()[:12]}", text
    from lqbench.tasks import load_suite

    suite = load_suite(spec)  # raises LqbenchError naming the known suites
    return corpus_name(suite), corpus_from_suite(suite)


class _RowScorer:
    """Log-softmax statistics of logit rows, with buffers reused across batches.

    A 262k-entry vocabulary makes each row 1 MB; fresh temporaries per batch cost more in
    page faults than in arithmetic, so the work buffers are allocated once.
    """

    BLOCK = 128  # vocabulary entries per block in the top-K search

    def __init__(self, n_rows: int, n_vocab: int):
        import numpy as np

        self.n_rows, self.n_vocab = n_rows, n_vocab
        self.work = np.empty((n_rows, n_vocab), dtype=np.float32)
        self.padded = None  # only the base run (top_k) needs it

    def log_normalizer(self, logits):
        """log Σ exp(logits) per row (float64), computed as max + log Σ exp(logits - max)."""
        import numpy as np

        n = len(logits)
        m = logits.max(axis=1, keepdims=True)
        work = self.work[:n]
        np.subtract(logits, m, out=work)
        np.exp(work, out=work)
        return m[:, 0].astype(np.float64) + np.log(work.sum(axis=1, dtype=np.float64))

    def top_k(self, logits, k: int):
        """(ids, logits) of each row's k largest entries, largest first.

        Two stages instead of argpartition over the whole vocabulary (12 ms a row at 262k):
        a row's top k entries all lie in the k blocks with the largest block maxima (a block
        holding one of them has a maximum at least that large, and at most k-1 blocks can
        beat it), so only k * BLOCK candidates need a full selection.
        """
        import numpy as np

        n = len(logits)
        if self.padded is None:
            n_blocks = -(-self.n_vocab // self.BLOCK)
            self.padded = np.full((self.n_rows, n_blocks * self.BLOCK), -np.inf, dtype=np.float32)
        padded = self.padded[:n]
        padded[:, : self.n_vocab] = logits
        blocks = padded.reshape(n, -1, self.BLOCK)
        kb = min(k, blocks.shape[1])
        best_blocks = np.argpartition(-blocks.max(axis=2), kb - 1, axis=1)[:, :kb]
        cand = (best_blocks[:, :, None] * self.BLOCK + np.arange(self.BLOCK)).reshape(n, -1)
        vals = np.take_along_axis(padded, cand, axis=1)
        pick = np.argpartition(-vals, k - 1, axis=1)[:, :k]
        ids, vals = np.take_along_axis(cand, pick, axis=1), np.take_along_axis(vals, pick, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        return np.take_along_axis(ids, order, axis=1), np.take_along_axis(vals, order, axis=1)


def compute_perplexity(
    model_path: str,
    text: str,
    n_ctx: int = 512,
    n_threads: int | None = None,
    base_logits_path: str | None = None,
    *,
    save_logits_path: str | None = None,
    max_tokens: int | None = None,
    top_k: int = 32,
    n_batch: int = 128,
    config=None,
) -> dict:
    """{"tokens", "ppl", "kld_mean", "top1_agreement"} of `model_path` on `text` (see module docstring).

    `kld_mean` and `top1_agreement` are None without `base_logits_path`. `save_logits_path`
    writes this model's top-`top_k` distributions for later calls to compare against.
    `max_tokens` caps the number of text tokens scored (the first ones).
    """
    import llama_cpp
    import numpy as np

    from lqbench.gguf_meta import check_magic

    check_magic(model_path)
    if n_threads is None:
        from lqbench.hardware import physical_cores

        n_threads = physical_cores()
    if n_ctx < 8:
        raise LqbenchError(f"perplexity n_ctx must be at least 8, got {n_ctx}")
    n_batch = max(1, min(n_batch, n_ctx))
    base = _load_base(base_logits_path) if base_logits_path else None

    from lqbench.engine import DEFAULT, load_llama

    llm = load_llama(model_path, config or DEFAULT, n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                          n_threads=n_threads, n_threads_batch=n_threads, n_gpu_layers=0, verbose=False)
    batch = None
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if max_tokens:
            tokens = tokens[:max_tokens]
        use_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        bos = llama_cpp.llama_vocab_bos(vocab)
        if len(tokens) < 2:
            raise LqbenchError("perplexity corpus is too short (fewer than 2 tokens)")
        if base is not None:
            if base["n_ctx"] != n_ctx or not np.array_equal(base["tokens"], np.asarray(tokens, dtype=np.int32)):
                raise LqbenchError(
                    "base logits were computed on other tokens (another tokenizer, corpus, max_tokens or n_ctx); "
                    "KL divergence needs the same text, tokenizer and n_ctx"
                )

        chunk_len = n_ctx - 1 if use_bos else n_ctx
        nll_sum, n_scored = 0.0, 0
        kld_sum, top1_hits = 0.0, 0
        saved_ids, saved_logp = [], []
        ctx = llm.ctx
        mem = llama_cpp.llama_get_memory(ctx)
        batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        scorer = _RowScorer(n_batch, n_vocab)

        for c0 in range(0, len(tokens), chunk_len):
            chunk = tokens[c0:c0 + chunk_len]
            seq = ([bos] if use_bos else []) + chunk
            llama_cpp.llama_memory_clear(mem, True)
            for b0 in range(0, len(seq), n_batch):
                part = seq[b0:b0 + n_batch]
                batch.n_tokens = len(part)
                for i, tok in enumerate(part):
                    batch.token[i] = tok
                    batch.pos[i] = b0 + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = 1
                if llama_cpp.llama_decode(ctx, batch) != 0:
                    raise LqbenchError(f"llama.cpp failed to evaluate the perplexity corpus on {model_path}")
                # Row r (position b0 + r) predicts seq[b0 + r + 1]; the last position of a chunk predicts nothing.
                n_rows = min(len(part), len(seq) - 1 - b0)
                if n_rows <= 0:
                    continue
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx), shape=(len(part) * n_vocab,))
                logits = logits.reshape(len(part), n_vocab)[:n_rows]
                targets = np.asarray(seq[b0 + 1:b0 + 1 + n_rows], dtype=np.int64)
                rows = np.arange(n_rows)
                lse = scorer.log_normalizer(logits)
                nll_sum += float((lse - logits[rows, targets]).sum())
                first = n_scored
                n_scored += n_rows
                if save_logits_path:
                    ids, vals = scorer.top_k(logits, top_k)
                    saved_ids.append(ids.astype(np.int32))
                    saved_logp.append((vals - lse[:, None]).astype(np.float32))
                if base is not None:
                    b_ids = base["ids"][first:first + n_rows].astype(np.int64)
                    b_logp = base["logp"][first:first + n_rows].astype(np.float64)
                    q_logp = np.take_along_axis(logits, b_ids, axis=1).astype(np.float64) - lse[:, None]
                    kld_sum += _kl_top_k(b_logp, q_logp)
                    top1_hits += int((logits.argmax(axis=1) == b_ids[:, 0]).sum())
        if base is not None and n_scored != len(base["ids"]):
            raise LqbenchError("base logits cover a different number of positions; recompute them")
        if save_logits_path:
            _save_base(save_logits_path, tokens=np.asarray(tokens, dtype=np.int32), n_ctx=n_ctx,
                       ids=np.concatenate(saved_ids), logp=np.concatenate(saved_logp), model_path=str(model_path))
    finally:
        if batch is not None:
            llama_cpp.llama_batch_free(batch)
        llm.close()

    return {
        "tokens": n_scored,
        "ppl": float(np.exp(nll_sum / n_scored)),
        "kld_mean": kld_sum / n_scored if base is not None else None,
        "top1_agreement": top1_hits / n_scored if base is not None else None,
    }


def _kl_top_k(b_logp, q_logp) -> float:
    """Σ over rows of KL(base ‖ model) over the base's top-K tokens plus one 'rest' bucket.

    `b_logp`, `q_logp`: the base's and the model's log-probabilities of the base's top-K ids.
    """
    import numpy as np

    p = np.exp(b_logp)
    kl = (p * (b_logp - q_logp)).sum(axis=1)
    p_rest = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    q_rest = np.clip(1.0 - np.exp(q_logp).sum(axis=1), 1e-12, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = np.where(p_rest > 0, p_rest * (np.log(np.maximum(p_rest, 1e-300)) - np.log(q_rest)), 0.0)
    return float(np.maximum(kl + rest, 0.0).sum())  # ≥ 0 up to rounding


def _save_base(path: str, *, tokens, n_ctx: int, ids, logp, model_path: str) -> None:
    import os
    import tempfile

    import numpy as np

    meta = {"format": FORMAT_VERSION, "n_ctx": n_ctx, "top_k": int(ids.shape[1]), "model": Path(model_path).name,
            "tokens_sha256": hashlib.sha256(tokens.tobytes()).hexdigest(), "created": time.time()}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".npz", dir=target.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, tokens=tokens, ids=ids, logp=logp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load_base(path: str) -> dict:
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise LqbenchError(f"base logits file not found: {p}")
    try:
        with np.load(p) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            out = {"tokens": z["tokens"], "ids": z["ids"], "logp": z["logp"], "n_ctx": int(meta["n_ctx"]), "meta": meta}
    except (OSError, ValueError, KeyError) as exc:
        raise LqbenchError(f"not a base logits file ({exc}): {p}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise LqbenchError(f"base logits file {p} has format {meta.get('format')}, expected {FORMAT_VERSION}")
    return out


def ladder_perplexity(models, base, text: str, workdir: str | Path, **kwargs) -> dict[str, dict]:
    """Perplexity of every model of a ladder and its KLD against `base` (a ModelFile), base first.

    Returns {model_id: result}; the base's own row has kld_mean 0 and top1_agreement 1 by construction.
    """
    workdir = Path(workdir)
    base_npz = workdir / f"base-{base.sha256[:16]}.npz"
    results = {base.model_id: compute_perplexity(base.path, text, save_logits_path=str(base_npz), **kwargs)}
    for m in models:
        if m.model_id != base.model_id:
            results[m.model_id] = compute_perplexity(m.path, text, base_logits_path=str(base_npz), **kwargs)
    results[base.model_id].update(kld_mean=0.0, top1_agreement=1.0)
    return results
