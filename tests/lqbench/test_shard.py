"""Shards: stable ids, resumable subsets, and run_shard over a fake generator and the real scorer."""

from lqbench.shard import Shard, make_shards, run_shard, sample_seed
from lqbench.tasks import TaskSpec, load_builtin

MODEL = {"model_id": "abcd" * 4, "sha256": "abcd" * 16, "name": "m", "quant": "q4_k_m", "path": "/x.gguf",
         "file_bytes": 10}


def _tasks(n):
    return [TaskSpec(suite="s", task_id=f"t{i}", prompt=f"p{i}", tests="") for i in range(n)]


def _shards(n_tasks=5, size=2, n=1, replicas=("",)):
    return make_shards("run1", [(MODEL, {})], [("s", "v1", _tasks(n_tasks))],
                       sampling={"temperature": 0.0, "n": n, "seed": 3}, scoring={}, inference={},
                       shard_size=size, replicas=replicas)


def test_make_shards_chunks_and_replicates():
    shards = _shards(n_tasks=5, size=2)
    assert [len(s.tasks) for s in shards] == [2, 2, 1]
    assert len({s.shard_id for s in shards}) == 3
    every = _shards(n_tasks=5, size=2, replicas=("a", "b"))
    assert len(every) == 6 and {s.replica for s in every} == {"a", "b"}
    assert len({s.shard_id for s in every}) == 6


def test_shard_id_is_stable_and_content_addressed():
    a, b = _shards()[0], _shards()[0]
    assert a.shard_id == b.shard_id
    assert Shard.from_dict(a.to_dict()).shard_id == a.shard_id
    other = make_shards("run1", [(MODEL, {})], [("s", "v2", _tasks(2))], sampling={"n": 1}, scoring={},
                        inference={}, shard_size=2)[0]
    assert other.shard_id != a.shard_id


def test_without_drops_finished_tasks_only():
    shard = _shards(n_tasks=3, size=3, n=2)[0]
    keys = shard.sample_keys()
    assert len(keys) == 6
    rest = shard.without({keys[0], keys[1], keys[2]})  # t0 fully done, t1 half done
    assert [t.task_id for t in rest.tasks] == ["t1", "t2"]
    assert shard.without(set(keys)) is None


def test_sample_seed_is_deterministic_and_distinct():
    assert sample_seed(1, "t", 0) == sample_seed(1, "t", 0)
    assert len({sample_seed(1, "t", i) for i in range(100)}) == 100


def test_run_shard_scores_with_real_scorer_and_skips_done():
    from lqbench.generation import FakeGenerator
    from lqbench.scorer import ScorerPool

    suite = load_builtin()
    problems = suite.problems[:3]
    answers = {problems[0].task.prompt: problems[0].reference,
               problems[1].task.prompt: problems[1].wrong[0],
               problems[2].task.prompt: RuntimeError("context overflow")}
    shard = make_shards("r", [(MODEL, {})], [(suite.name, suite.version, [p.task for p in problems])],
                        sampling={"temperature": 0.0, "n": 1, "seed": 1}, scoring={}, inference={},
                        shard_size=10)[0]
    gen = FakeGenerator(answers)
    with ScorerPool(jobs=1) as pool:
        records = list(run_shard(shard, gen, pool, node_id="n1", n_threads=2))
        assert [r.status for r in records][0] == "pass"
        assert records[1].status in ("assertion_failure", "runtime_error") and not records[1].passed
        assert records[2].status == "generation_error" and "context overflow" in records[2].error
        assert all(r.node_id == "n1" and r.shard_id == shard.shard_id for r in records)
        assert records[0].gen_tokens == FakeGenerator.count_tokens(problems[0].reference) > 0
        assert records[0].gen_ms > 0 and records[0].peak_rss_mb > 0
        # resuming: the done key is skipped, the rest is redone
        again = list(run_shard(shard, FakeGenerator(answers), pool, node_id="n1", n_threads=2,
                               skip={records[0].key}))
    assert [r.task_id for r in again] == [problems[1].task.task_id, problems[2].task.task_id]
