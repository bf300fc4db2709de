"""The speed probe: llama-bench's statistics and our throttle judgement on made-up repetitions, the same
numbers from the `speed_summary` view, and the real probe through the engine process on the demo GGUF."""

from __future__ import annotations

import statistics

import pytest

from lqbench.errors import LqbenchError
from lqbench.records import SpeedRecord, utc_now
from lqbench.speed import SpeedTest, judge, plan_tests, sample_sd, summarize, summarize_all, tokens_per_second


def _reps(test: SpeedTest, ns_list, mhz=(None, None), source=None) -> list[dict]:
    return [{"test": test.name, "n_prompt": test.n_prompt, "n_gen": test.n_gen, "rep": i, "ns": ns,
             "ts": tokens_per_second(test.n_tokens, ns), "cpu_mhz_start": mhz[0], "cpu_mhz_end": mhz[1],
             "cpu_mhz_source": source, "energy_j": None, "energy_method": "none"} for i, ns in enumerate(ns_list)]


def test_test_names_and_the_test_list_follow_llama_bench():
    assert [t.name for t in plan_tests()] == ["pp512", "tg128"]
    assert [t.name for t in plan_tests([512, 0], [128], median_prompt=87)] == ["pp512", "pp87", "tg128"]
    assert [t.name for t in plan_tests([512], [128], median_prompt=512)] == ["pp512", "tg128"]  # once
    assert SpeedTest(512, 128).name == "pp512+tg128" and SpeedTest(512, 128).n_tokens == 640
    with pytest.raises(LqbenchError):
        plan_tests([0], [0])
    with pytest.raises(LqbenchError):
        SpeedTest(-1, 5)


def test_statistics_are_llama_bench_s_mean_and_sample_sd_over_per_repetition_rates():
    test = SpeedTest(0, 128)
    ns = [4_000_000_000, 4_100_000_000, 3_900_000_000, 4_050_000_000, 3_950_000_000]
    s = summarize(_reps(test, ns))
    rates = [128e9 / n for n in ns]
    assert s["avg_ts"] == pytest.approx(statistics.mean(rates))  # mean of rates, not tokens / mean time
    assert s["avg_ts"] != pytest.approx(128e9 / statistics.mean(ns), rel=1e-6)
    assert s["stddev_ts"] == pytest.approx(statistics.stdev(rates))
    assert s["avg_ns"] == round(statistics.mean(ns)) and s["stddev_ns"] == round(statistics.stdev(ns))
    assert s["n_reps"] == 5 and s["samples_ns"] == ns
    assert sample_sd([7.0]) == 0.0  # one repetition: sd 0, as llama-bench prints it


def test_throttled_when_the_last_repetition_generates_clearly_slower_than_the_first():
    tg = SpeedTest(0, 128)
    steady, evidence = judge(_reps(tg, [4.0e9, 4.1e9, 4.05e9]))
    assert steady is False and "last/first repetition 0.99" in evidence
    slowed, evidence = judge(_reps(tg, [4.0e9, 4.3e9, 4.6e9]))  # 1/1.15 = 0.87 < 0.90
    assert slowed is True and "0.87" in evidence
    # pp: no drift judgement; a nominal clock is quoted, not judged; a live clock that fell is throttling
    pp = SpeedTest(512, 0)
    assert judge(_reps(pp, [1e9, 2e9], mhz=(2100, 2100), source="psutil"))[0] is None
    assert judge(_reps(pp, [1e9, 1e9], mhz=(3000, 2400), source="cpufreq")) == (True, "clock 3000->2400 MHz")
    assert judge(_reps(pp, [1e9, 1e9], mhz=(3000, 2900), source="cpufreq"))[0] is False


def test_the_view_gives_the_same_numbers_as_the_python_summary(tmp_path):
    import duckdb

    from lqbench.store import ResultStore

    tg, pp = SpeedTest(0, 128), SpeedTest(512, 0)
    reps = (_reps(pp, [2.0e9, 2.1e9, 1.9e9], mhz=(3000, 2500), source="cpufreq")
            + _reps(tg, [4.0e9, 4.3e9, 4.6e9], mhz=(2100, 2100), source="psutil"))
    records = [SpeedRecord(run_id="r1", node_id="n1", model_id="m1", created_at=utc_now(), n_threads=2,
                           **{k: r[k] for k in ("test", "n_prompt", "n_gen", "rep", "ns", "ts", "cpu_mhz_start",
                                                "cpu_mhz_end", "cpu_mhz_source")}) for r in reps]
    store = ResultStore(tmp_path / "r.duckdb")
    store.ensure()
    store.write_batch([], speeds=records)
    store.write_batch([], speeds=records)  # again: repetitions are keyed, nothing doubles
    assert store.done_speed("r1") == {("speed", "m1", "")}
    con = duckdb.connect(str(store.path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM speed").fetchone()[0] == 6
        cur = con.execute("SELECT * FROM speed_summary ORDER BY test")
        cols = [d[0] for d in cur.description]
        view = {r["test"]: r for r in (dict(zip(cols, row)) for row in cur.fetchall())}
    finally:
        con.close()
    for s in summarize_all(reps):
        v = view[s["test"]]
        assert v["n_reps"] == s["n_reps"] and v["avg_ns"] == s["avg_ns"] and v["stddev_ns"] == s["stddev_ns"]
        assert v["avg_ts"] == pytest.approx(s["avg_ts"]) and v["stddev_ts"] == pytest.approx(s["stddev_ts"])
        assert v["throttled"] == s["throttled"], s["test"]
    assert view["pp512"]["throttled"] is True and view["tg128"]["throttled"] is True
    assert view["tg128"]["energy_method"] == "none" and view["tg128"]["energy_j"] is None


@pytest.fixture(scope="module")
def demo_path():
    from lqbench.doctor import demo_model_path

    return demo_model_path()


def test_the_probe_through_the_engine_process_on_the_demo_model(demo_path):
    from lqbench.engine import DEFAULT
    from lqbench.engine_process import EngineProcess
    from lqbench.generation import SamplingParams

    with EngineProcess() as engine:
        with pytest.raises(LqbenchError, match="needs a loaded model"):
            engine.speed([(8, 0)], reps=1)
        engine.load(demo_path, DEFAULT, n_threads=1, n_ctx=128, n_batch=16)
        before = engine.generate("local x = 1", SamplingParams(max_tokens=8))
        result = engine.speed([(32, 0), (0, 8)], reps=2, median_of=["local function f(x) return x end"])
        with pytest.raises(LqbenchError, match=r"pp5000 needs 5000 KV cells; the context holds \d+"):
            engine.speed([(5000, 0)], reps=1)  # llama.cpp pads the context a little, never to 5000
        after = engine.generate("local x = 1", SamplingParams(max_tokens=8))
    ctx = result["context"]
    assert ctx["n_threads"] == 1 and ctx["n_batch"] == 16 and 128 <= ctx["n_ctx"] < 5000 and ctx["warmup"] is True
    median = ctx["median_prompt"]
    assert 8 < median < 20  # BOS + a dozen tokens of Lua
    reps = result["reps"]
    assert [(r["test"], r["rep"]) for r in reps] == [("pp32", 0), ("pp32", 1), (f"pp{median}", 0),
                                                     (f"pp{median}", 1), ("tg8", 0), ("tg8", 1)]
    for r in reps:
        assert r["ns"] > 0 and r["ts"] == pytest.approx((r["n_prompt"] + r["n_gen"]) * 1e9 / r["ns"])
        assert r["energy_method"] in ("rapl-package", "rapl-psys", "battery", "none")
        assert (r["energy_j"] is None) == (r["energy_method"] == "none")
    # The probe left no KV cells behind: the same greedy generation, its whole prompt processed again.
    assert (after.text, after.prompt_tokens) == (before.text, before.prompt_tokens)


def test_speed_shards_one_per_node_the_selector_admits_and_done_by_their_key():
    from lqbench.shard import Shard, make_speed_shards

    rows = [({"model_id": "m1", "sha256": "a" * 64, "quant": "q4_k_m", "name": "x"}, {}),
            ({"model_id": "m2", "sha256": "b" * 64, "quant": "q8_0", "name": "x"}, {"ram_gb": ">=16"})]
    nodes = {"big": {"ram_gb": 32}, "small": {"ram_gb": 8}}

    def nodes_for(select):
        from lqbench.scheduling import selector_matches

        return sorted(n for n, labels in nodes.items() if selector_matches(select, labels))

    settings = {"reps": 5, "n_prompt": [512], "n_gen": [128], "median_prompt": False, "warmup": True}
    shards = make_speed_shards("r", rows, nodes_for, settings, {"n_ctx": 2048})
    assert [(s.model_id, s.replica, s.kind) for s in shards] == [("m1", "big", "speed"), ("m1", "small", "speed"),
                                                                 ("m2", "big", "speed")]
    assert len({s.shard_id for s in shards}) == 3 and not any(s.sample_keys() for s in shards)
    assert shards[0].speed_keys() == [("speed", "m1", "big")]
    assert shards[0].without({("speed", "m1", "small")}) is shards[0]
    assert shards[0].without({("speed", "m1", "big")}) is None
    again = Shard.from_dict(shards[0].to_dict())  # as it travels to the agent
    assert again.shard_id == shards[0].shard_id and again.sampling == settings
