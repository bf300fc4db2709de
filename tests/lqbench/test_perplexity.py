"""Perplexity and KL divergence: the numerics on synthetic distributions, then llama.cpp on the demo ladder."""

import numpy as np
import pytest

from lqbench.errors import LqbenchError
from lqbench.perplexity import (
    _kl_top_k,
    _RowScorer,
    compute_perplexity,
    corpus_from_suite,
    corpus_name,
    load_corpus,
)
from lqbench.tasks import Suite, load_builtin


@pytest.mark.parametrize("n_vocab", [40, 1000, 32001, 262144])
def test_top_k_and_normalizer_match_brute_force(n_vocab):
    rng = np.random.default_rng(n_vocab)
    logits = (3 * rng.standard_normal((9, n_vocab))).astype(np.float32)
    scorer = _RowScorer(16, n_vocab)
    ids, vals = scorer.top_k(logits, 32)
    assert (ids == np.argsort(-logits, axis=1, kind="stable")[:, :32]).all()
    assert (vals == np.take_along_axis(logits, ids, axis=1)).all()
    exact = np.log(np.exp(logits.astype(np.float64)).sum(axis=1))
    assert np.allclose(scorer.log_normalizer(logits), exact, rtol=0, atol=1e-6)


def _log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_top_k_kl_is_exact_with_full_support_and_a_lower_bound_otherwise():
    rng = np.random.default_rng(1)
    p = _log_softmax(rng.standard_normal((50, 64)) * 2)
    q = _log_softmax(rng.standard_normal((50, 64)) * 2)
    full = (np.exp(p) * (p - q)).sum()
    order = np.argsort(-p, axis=1)
    take = lambda a, k: np.take_along_axis(a, order[:, :k], axis=1)  # noqa: E731
    assert _kl_top_k(take(p, 64), take(q, 64)) == pytest.approx(full, rel=1e-9)
    for k in (1, 8, 32):
        approx = _kl_top_k(take(p, k), take(q, k))
        assert 0 <= approx <= full + 1e-9
    assert _kl_top_k(take(p, 8), take(p, 8)) == pytest.approx(0, abs=1e-12)


def test_corpus_from_suite():
    suite = load_builtin()
    text = corpus_from_suite(suite)
    for problem in suite.problems:
        assert (problem.task.prompt + problem.reference).strip("\n") in text
        assert problem.task.tests.strip() not in text
    assert problem.task.tests.strip("\n") in corpus_from_suite(suite, with_tests=True)
    assert corpus_name(suite) == f"lqbench-lua@{suite.version}:reference"
    with pytest.raises(LqbenchError, match="no reference solutions"):
        corpus_from_suite(Suite(name="x", version="1", tasks=[]))


def test_load_corpus_by_suite_or_file(tmp_path):
    name, text = load_corpus("lqbench-lua")
    assert name == corpus_name(load_builtin()) and text == corpus_from_suite(load_builtin())
    f = tmp_path / "extra.lua"
    f.write_text("local t = {}\nreturn t\n")
    name, text = load_corpus(str(f))
    assert name.startswith("file:extra.lua@") and text == "local t = {}\nreturn t\n"
    with pytest.raises(LqbenchError):
        load_corpus("no-such-suite")


# ------------------------------------------------------------------ real llama.cpp

@pytest.fixture(scope="module")
def ladder(shared_model_cache):
    import os

    from lqbench.models import build_ladder, resolve_model

    old = os.environ.get("LQBENCH_MODEL_CACHE")
    os.environ["LQBENCH_MODEL_CACHE"] = str(shared_model_cache)
    try:
        base = resolve_model("demo:gemma-3-270m")
        quants = ["f16", "q4_k_m", "q2_k"]
        return dict(zip(quants, build_ladder(base, quants)))
    finally:
        if old is None:
            os.environ.pop("LQBENCH_MODEL_CACHE")
        else:
            os.environ["LQBENCH_MODEL_CACHE"] = old


@pytest.fixture(scope="module")
def corpus():
    return corpus_from_suite(load_builtin())


def test_perplexity_and_kld_on_the_demo_ladder(ladder, corpus, tmp_path):
    base_npz = str(tmp_path / "base.npz")
    kw = dict(n_ctx=48, max_tokens=60, n_threads=2)  # 60 tokens over 2 chunks of 47
    base = compute_perplexity(ladder["q4_k_m"].path, corpus, save_logits_path=base_npz, **kw)
    assert base["tokens"] == 60 and 1 < base["ppl"] < 1000
    assert base["kld_mean"] is None and base["top1_agreement"] is None

    same = compute_perplexity(ladder["q4_k_m"].path, corpus, base_logits_path=base_npz, **kw)
    assert same["ppl"] == pytest.approx(base["ppl"], rel=1e-6)
    assert same["kld_mean"] == pytest.approx(0, abs=1e-6) and same["top1_agreement"] == 1.0

    low = compute_perplexity(ladder["q2_k"].path, corpus, base_logits_path=base_npz, **kw)
    assert low["tokens"] == 60 and low["ppl"] != base["ppl"]
    assert low["kld_mean"] > 1e-4 and 0 < low["top1_agreement"] < 1

    with pytest.raises(LqbenchError, match="other tokens"):
        compute_perplexity(ladder["q2_k"].path, corpus, base_logits_path=base_npz, n_ctx=64, max_tokens=60)
    with pytest.raises(LqbenchError, match="base logits file not found"):
        compute_perplexity(ladder["q2_k"].path, corpus, base_logits_path=str(tmp_path / "none.npz"), **kw)


def test_sub_batches_continue_the_same_sequence(ladder, corpus):
    # One chunk of 40 tokens decoded in sub-batches of 7 or all at once must score the same:
    # positions and the KV cache carry over between sub-batches. F16, because with quantized
    # weights llama.cpp's matmul kernels differ by batch size (seen here: Q4_K_M PPL 23.4 vs
    # 23.8 at batch 7 vs 64), which is why a ladder is always scored with one n_batch.
    a = compute_perplexity(ladder["f16"].path, corpus, n_ctx=64, max_tokens=40, n_batch=7, n_threads=2)
    b = compute_perplexity(ladder["f16"].path, corpus, n_ctx=64, max_tokens=40, n_batch=64, n_threads=2)
    assert a["tokens"] == b["tokens"] == 40
    assert a["ppl"] == pytest.approx(b["ppl"], rel=1e-4)


def test_bad_inputs(ladder, tmp_path):
    with pytest.raises(LqbenchError, match="too short"):
        compute_perplexity(ladder["q2_k"].path, "x", n_ctx=64)
    with pytest.raises(LqbenchError, match="model file not found"):
        compute_perplexity(str(tmp_path / "missing.gguf"), "local x = 1")
