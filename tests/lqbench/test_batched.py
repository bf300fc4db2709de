"""Batched decoding (lqbench.batched): the real generator on the demo model, the engine process's
batch protocol, and run_shard over a batched generator."""

import pytest

from lqbench.batched import AUTO_MAX, BatchedGenerator, Request, auto_cap, choose_parallel, kv_mib
from lqbench.engine import EngineConfig, EngineFailure
from lqbench.engine_process import EngineProcess, IsolatedGenerator
from lqbench.generation import Completion, ContextOverflow, FakeGenerator, LlamaGenerator, SamplingParams
from lqbench.shard import make_shards, run_shard
from lqbench.tasks import load_builtin
from lqbench.scorer.sandbox import Verdict

# ------------------------------------------------------------------ pure logic


def test_kv_size_is_read_from_llamas_own_report():
    log = ("llama_kv_cache: layer   0: dev = CPU\n"
           "llama_kv_cache:        CPU KV buffer size =    30.00 MiB\n"
           "llama_kv_cache_iswa: SWA\nllama_kv_cache:        CPU KV buffer size =     6.50 MiB\n")
    assert kv_mib(log) == 36.5
    assert kv_mib("llama_context: n_ctx = 2048\n") is None


def test_auto_parallel_fits_memory_and_stops_at_the_cap():
    assert choose_parallel(30.0, 20_000.0)[0] == AUTO_MAX  # a small model: the cap decides
    n, why = choose_parallel(1024.0, 3_000.0)  # 7B-like KV on a laptop with 3 GB free: 1.5 GB for KV
    assert n == 1 and "1024 MiB" in why
    assert choose_parallel(1024.0, 9_000.0)[0] == 4
    assert choose_parallel(None, 9_000.0) == (1, "auto: KV cache size or free memory unknown, so one sequence at a time")
    assert choose_parallel(30.0, None)[0] == 1
    assert choose_parallel(30.0, 20_000.0, cap=auto_cap(2))[0] == 4  # two threads: four sequences
    assert [auto_cap(t) for t in (1, 2, 3, 4, 16)] == [2, 4, 6, 8, 8]


class _BatchedFake(FakeGenerator):
    """A fake generator that answers batches, in reverse order of submission (a batched engine
    returns samples in the order they end, not the order they were asked for)."""

    n_parallel = 3

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batches, self.closed_early = [], False

    def generate_many(self, requests):
        self.batches.append(requests)
        try:
            for r in reversed(requests):
                out = (self.generate(r["prompt"], SamplingParams.from_dict(r["params"]), r["stop"])
                       if "boom" not in r["prompt"] else ContextOverflow("prompt has 9999 tokens"))
                yield r["key"], out
        except GeneratorExit:
            self.closed_early = True
            raise


class _Scorer:
    def score(self, program):
        return Verdict(status="pass" if "return" in program else "syntax_error", passed="return" in program,
                       error=None, ms=0.1)


def _shard(n_tasks=4, n=2):
    tasks = load_builtin().tasks[:n_tasks]
    model = {"model_id": "m", "sha256": "0" * 64, "quant": "q4_k_m"}
    return make_shards("r", [(model, {})], [("lqbench-lua", "v", tasks)], sampling={"n": n, "seed": 3},
                       scoring={}, inference={"parallel": 3}, shard_size=n_tasks)[0]


def test_run_shard_sends_a_batched_generator_every_sample_at_once_and_records_each():
    shard = _shard()
    gen = _BatchedFake(default="  return 1\nend")
    records = list(run_shard(shard, gen, _Scorer(), node_id="n", n_threads=2))
    assert len(gen.batches) == 1 and len(gen.batches[0]) == 8  # one batch, all samples
    assert sorted(r.key for r in records) == sorted(shard.sample_keys())
    assert {r.n_parallel for r in records} == {3}
    assert [r.sample_idx for r in records[:2]] == [1, 0]  # in the order they ended
    # each sample keeps its own seed, whatever the order
    assert [r["params"]["seed"] for r in gen.batches[0]] == [
        r.seed for r in sorted(records, key=lambda r: ([t.task_id for t in shard.tasks].index(r.task_id), r.sample_idx))]
    assert len({r.seed for r in records}) == 8
    assert all(r.status == "pass" for r in records)


def test_a_batched_prompt_that_fails_is_a_generation_error_and_the_rest_go_on():
    shard = _shard(n_tasks=2, n=1)
    bad = shard.tasks[0].prompt
    gen = _BatchedFake(default="  return 1\nend")
    gen.generate_many_orig = gen.generate_many

    def many(requests):
        for r in requests:
            if r["prompt"] == bad:
                r["prompt"] = "boom"
        return gen.generate_many_orig(requests)

    gen.generate_many = many
    records = {r.task_id: r for r in run_shard(shard, gen, _Scorer(), node_id="n", n_threads=2)}
    assert records[shard.tasks[0].task_id].status == "generation_error"
    assert "ContextOverflow" in records[shard.tasks[0].task_id].error
    assert records[shard.tasks[1].task_id].status == "pass"


def test_stopping_a_batched_shard_closes_the_batch():
    shard = _shard()
    gen = _BatchedFake(default="  return 1\nend")
    asked = []
    records = list(run_shard(shard, gen, _Scorer(), node_id="n", n_threads=2,
                             should_stop=lambda: asked.append(1) or len(asked) >= 3))
    assert len(records) == 3 and gen.closed_early


def test_one_at_a_time_is_todays_path_with_n_parallel_1():
    shard = _shard(n_tasks=2, n=1)
    gen = FakeGenerator(default="  return 1\nend")
    records = list(run_shard(shard, gen, _Scorer(), node_id="n", n_threads=2))
    assert [r.task_id for r in records] == [t.task_id for t in shard.tasks]  # in order
    assert {r.n_parallel for r in records} == {1}
    assert [p for p, _ in gen.calls] == [t.prompt for t in shard.tasks]


# ------------------------------------------------------------------ real llama.cpp


@pytest.fixture(scope="module")
def gen(demo_gguf):
    with LlamaGenerator(demo_gguf, n_threads=2, n_ctx=512) as g:
        yield g


@pytest.fixture(scope="module")
def tasks():
    return load_builtin().tasks[:4]


def test_one_sequence_batched_is_exactly_the_one_at_a_time_path(gen, tasks):
    # The batched loop with one slot decodes the same batches as Llama.generate: same sampler chain,
    # same stop rules, so the same text, token counts and finish reasons; greedy and seeded.
    params = [SamplingParams(max_tokens=24), SamplingParams(temperature=0.8, top_k=40, top_p=0.95, max_tokens=24, seed=5),
              SamplingParams(max_tokens=24, repeat_penalty=1.3)]  # greedy through numpy, and through the chains
    requests = [Request((t.task_id, i), t.prompt, p, list(t.stop_tokens)) for t in tasks[:2] for i, p in enumerate(params)]
    alone = {r.key: gen.generate(r.prompt, r.params, r.stop) for r in requests}
    with BatchedGenerator(gen, 1) as batched:
        together = {r.key: c for r, c in batched.run(requests)}
    assert together.keys() == alone.keys()
    for key, comp in together.items():
        a = alone[key]
        assert (comp.text, comp.gen_tokens, comp.sampled_tokens, comp.finish_reason, comp.prompt_tokens) == \
               (a.text, a.gen_tokens, a.sampled_tokens, a.finish_reason, a.prompt_tokens), key
    assert alone[(tasks[0].task_id, 0)].text != alone[(tasks[0].task_id, 1)].text  # the seeded draw is not greedy


def test_continuous_batching_ends_every_request_by_its_own_rules(gen, tasks):
    long_prompt = "x = 1\n" * 400  # over the 512-token context of each sequence
    requests = [Request(i, t.prompt, SamplingParams(max_tokens=8 + 4 * i), list(t.stop_tokens)) for i, t in enumerate(tasks)]
    requests.insert(2, Request("long", long_prompt, SamplingParams(max_tokens=8)))
    requests.append(Request("stop", "local t = {", SamplingParams(max_tokens=40), ["}"]))
    with BatchedGenerator(gen, 2) as batched:
        order, results = [], {}
        for request, outcome in batched.run(requests):
            order.append(request.key)
            results[request.key] = outcome
    assert sorted(map(str, order)) == sorted(str(r.key) for r in requests)  # each exactly once
    assert isinstance(results["long"], ContextOverflow)
    for i in range(len(tasks)):
        c = results[i]
        assert isinstance(c, Completion) and c.sampled_tokens <= 8 + 4 * i
        assert c.finish_reason == "stop" or c.sampled_tokens == 8 + 4 * i
        assert c.prompt_ms > 0 and c.wall_ms >= c.ttft_ms > 0
    assert "}" not in results["stop"].text
    # two slots: the third request started when the first one ended, before the last ones ended
    assert order.index(0) < order.index(3)


def test_engine_process_batches_and_chooses_n_itself(demo_gguf, tasks):
    with EngineProcess(node_name="t") as engine:
        engine.load(demo_gguf, EngineConfig(), n_threads=2, n_ctx=512, n_parallel=0)
        assert 1 <= engine.n_parallel <= auto_cap(2) and engine.load_info["parallel_why"].startswith("auto:")
        engine.load(demo_gguf, EngineConfig(), n_threads=2, n_ctx=512, n_parallel=3)
        assert engine.n_parallel == 3
        requests = [{"key": t.task_id, "prompt": t.prompt, "params": SamplingParams(max_tokens=6).to_dict(),
                     "stop": list(t.stop_tokens), "special": False, "add_bos": True} for t in tasks]
        out = dict(IsolatedGenerator(engine).generate_many(requests))
        assert out.keys() == {t.task_id for t in tasks}
        assert all(c.sampled_tokens <= 6 and c.peak_rss_mb > 0 for c in out.values())
        # stopping early: the engine drops the rest and takes the next batch as usual
        first = engine.generate_many(requests)
        next(first)
        first.close()
        assert len(dict(engine.generate_many(requests[:2]))) == 2


def test_a_crash_in_a_batched_step_is_an_engine_failure(demo_gguf, tasks, monkeypatch):
    monkeypatch.setenv("LQBENCH_TEST_ENGINE_FAULT", "t:crash")
    with EngineProcess(node_name="t") as engine:
        engine.load(demo_gguf, EngineConfig(), n_threads=2, n_ctx=512, n_parallel=2)
        requests = [{"key": 0, "prompt": tasks[0].prompt, "params": SamplingParams(max_tokens=4).to_dict(),
                     "stop": [], "special": False, "add_bos": True}]
        with pytest.raises(EngineFailure) as failure:
            list(engine.generate_many(requests))
        assert failure.value.what == "crashed" and "SIGSEGV" in failure.value.reason
        assert engine.pid is None


def test_a_failed_decode_fails_the_samples_in_it_and_the_rest_go_on(gen, tasks, monkeypatch):
    import llama_cpp

    real, calls = llama_cpp.llama_decode, []

    def decode_refusing_the_first_batch(ctx, batch):  # as llama.cpp does when no KV slot is free (status 1)
        calls.append(batch.n_tokens)
        return 1 if len(calls) == 1 else real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", decode_refusing_the_first_batch)
    requests = [Request(i, t.prompt, SamplingParams(max_tokens=4), []) for i, t in enumerate(tasks[:3])]
    with BatchedGenerator(gen, 2) as batched:
        results = {r.key: c for r, c in batched.run(requests)}
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], RuntimeError)
    assert "llama_decode returned 1" in str(results[0]) and "2 sequences" in str(results[0])
    assert isinstance(results[2], Completion) and results[2].sampled_tokens == 4
