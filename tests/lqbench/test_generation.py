"""Sampling parameters, stop strings, the fake generator, and the real llama.cpp generator on the demo model."""

import pytest

from lqbench.errors import LqbenchError
from lqbench.generation import (
    Completion,
    ContextOverflow,
    FakeGenerator,
    LlamaGenerator,
    SamplingParams,
    truncate_at_stop,
)
from lqbench.tasks import LUA_STOP_TOKENS, load_builtin

# ------------------------------------------------------------------ pure logic


def test_greedy_forces_top1_and_round_trips():
    p = SamplingParams(temperature=0.0, top_k=40)
    assert p.greedy and p.top_k == 1
    assert p == SamplingParams()  # equal plans hash equal
    q = SamplingParams(temperature=0.7, top_k=40, top_p=0.9, max_tokens=64, seed=3)
    assert not q.greedy and q.top_k == 40
    assert SamplingParams.from_dict(q.to_dict()) == q
    # a plan's [sampling] table carries `n`, which is not a per-call parameter
    assert SamplingParams.from_dict({**q.to_dict(), "n": 5}) == q
    assert q.with_seed(9).seed == 9 and q.with_seed(9).top_p == 0.9


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(max_tokens=0), dict(top_k=-2)])
def test_bad_sampling_params(bad):
    with pytest.raises(LqbenchError):
        SamplingParams(**bad)


def test_truncate_at_earliest_stop():
    text = "  return 1\nend\n\nlocal x = 2\n-- done"
    assert truncate_at_stop(text, LUA_STOP_TOKENS) == ("  return 1\nend", True)
    assert truncate_at_stop("abc", ["\n\n"]) == ("abc", False)
    assert truncate_at_stop("a\n\nb\n\n", ["\n\n"], search_from=3) == ("a\n\nb", True)
    assert truncate_at_stop("abc", ["", "c"]) == ("ab", True)  # empty stops are ignored


def test_fake_generator_responses_stops_and_limits():
    boom = RuntimeError("decode failed")
    fake = FakeGenerator({"p1": "  return 1\nend\n\nlocal junk", "p2": boom}, default="x" * 400)
    c = fake.generate("p1", SamplingParams(), LUA_STOP_TOKENS)
    assert c.text == "  return 1\nend" and c.finish_reason == "stop"
    assert c.prompt_tokens > 0 and c.gen_tokens == c.sampled_tokens - 1
    assert 0 < c.ttft_ms < c.wall_ms and c.gen_ms > 0
    with pytest.raises(RuntimeError, match="decode failed"):
        fake.generate("p2", SamplingParams())
    long = fake.generate("other", SamplingParams(max_tokens=10))
    assert long.finish_reason == "length" and len(long.text) == 40 and long.sampled_tokens == 10
    by_fn = FakeGenerator(lambda prompt: prompt.upper())
    assert by_fn.generate("abc", SamplingParams()).text == "ABC"
    assert [p for p, _ in fake.calls] == ["p1", "p2", "other"]
    fake.close()
    with pytest.raises(RuntimeError):
        fake.generate("p1", SamplingParams())


# ------------------------------------------------------------------ real llama.cpp


@pytest.fixture(scope="module")
def demo_path(demo_gguf):
    return demo_gguf


@pytest.fixture(scope="module")
def gen(demo_path):
    g = LlamaGenerator(demo_path, n_threads=2, n_ctx=512)
    yield g
    g.close()


@pytest.fixture(scope="module")
def prompts():
    return [t.prompt for t in load_builtin().tasks[:2]]


def test_load_reports_time_and_threads(gen):
    assert gen.load_ms > 0 and gen.n_threads == 2


def test_greedy_is_deterministic_and_timed_by_perf_counters(gen, prompts):
    params = SamplingParams(max_tokens=48)
    first = [gen.generate(p, params, LUA_STOP_TOKENS) for p in prompts]
    second = [gen.generate(p, params, LUA_STOP_TOKENS) for p in prompts]
    assert [c.text for c in first] == [c.text for c in second]
    for prompt, c in zip(prompts * 2, first + second):
        assert isinstance(c, Completion)
        # the whole prompt is processed every time: no prefix reuse between samples
        assert c.prompt_tokens == len(gen.tokenize(prompt))
        assert c.sampled_tokens >= 1 and c.gen_tokens == c.sampled_tokens - 1
        assert not any(s in c.text for s in LUA_STOP_TOKENS)
        assert c.finish_reason in ("stop", "length")
        assert c.prompt_ms > 0 and c.wall_ms > 0
        assert c.prompt_ms <= c.ttft_ms <= c.wall_ms  # the prompt is processed before the first token
        assert (c.gen_ms > 0) == (c.gen_tokens > 0)


def test_no_prefix_reuse_between_samples(gen, prompts):
    a = gen.generate(prompts[0], SamplingParams(max_tokens=2))
    b = gen.generate(prompts[0] + "  ", SamplingParams(max_tokens=2))  # shares all but the last token(s)
    assert b.prompt_tokens == len(gen.tokenize(prompts[0] + "  ")) >= a.prompt_tokens


def test_prefix_reuse_only_when_asked(demo_path, prompts):
    g = LlamaGenerator(demo_path, n_threads=2, n_ctx=512, reuse_prefix=True)
    try:
        full = g.generate(prompts[0], SamplingParams(max_tokens=2), [])
        again = g.generate(prompts[0] + "  ", SamplingParams(max_tokens=2), [])
        assert full.prompt_tokens == len(g.tokenize(prompts[0]))
        assert again.prompt_tokens < full.prompt_tokens // 2  # only the new suffix was evaluated
    finally:
        g.close()


def test_max_tokens_and_length_finish(gen, prompts):
    c = gen.generate(prompts[0], SamplingParams(max_tokens=5), stop=[])
    assert c.sampled_tokens <= 5
    if c.finish_reason == "length":
        assert c.sampled_tokens == 5 and c.gen_tokens == 4


def test_seeded_sampling_repeats_per_seed_and_varies_across_seeds(gen, prompts):
    def sample(seed):
        return gen.generate(prompts[1], SamplingParams(temperature=1.0, top_k=0, max_tokens=12, seed=seed), []).text

    assert sample(11) == sample(11)
    assert len({sample(s) for s in (1, 2, 3, 4)}) > 1


def test_context_overflow_is_a_generation_error(demo_path):
    g = LlamaGenerator(demo_path, n_threads=1, n_ctx=64)
    try:
        with pytest.raises(ContextOverflow, match="context holds 64"):
            g.generate("-- lua\n" * 80, SamplingParams(max_tokens=4))
        short = g.generate("local x = ", SamplingParams(max_tokens=200), [])
        assert short.sampled_tokens <= 64 - len(g.tokenize("local x = "))  # cut at the context end
    finally:
        g.close()


def test_not_a_model(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_text("hello")
    with pytest.raises(LqbenchError, match="not a GGUF"):
        LlamaGenerator(str(p))
