"""The dynamic queue's decisions: model affinity, replicas, selectors, giving back lost work."""

from lqbench.scheduling import NodeInfo, ShardQueue, selector_matches
from lqbench.shard import make_shards
from lqbench.tasks import TaskSpec


def _model(i):
    return {"model_id": f"m{i}", "sha256": f"{i}" * 64, "name": "m", "quant": f"q{i}", "path": "", "file_bytes": 1}


def _shards(models=2, tasks=4, size=2, replicas=("",), select=None):
    ts = [TaskSpec(suite="s", task_id=f"t{i}", prompt="", tests="") for i in range(tasks)]
    return make_shards("r", [(_model(i), select or {}) for i in range(models)], [("s", "v", ts)],
                       sampling={"n": 1}, scoring={}, inference={}, shard_size=size, replicas=replicas)


def test_free_node_prefers_its_loaded_model():
    q = ShardQueue(_shards(models=2))
    node = NodeInfo(key="k", name="a", loaded_model="m1")
    assert q.take(node).model_id == "m1"
    assert q.take(node).model_id == "m1"  # stays on m1 while m1 work is left
    assert q.take(node).model_id == "m0"


def test_every_node_replicas_only_run_on_their_node():
    q = ShardQueue(_shards(models=1, replicas=("a", "b")))
    a, b = NodeInfo(key="1", name="a"), NodeInfo(key="2", name="b")
    got_a = [q.take(a) for _ in range(3)]
    assert [s.replica for s in got_a[:2]] == ["a", "a"] and got_a[2] is None
    assert all(q.take(b).replica == "b" for _ in range(2))


def test_selectors():
    labels = {"ram_gb": 15.5, "arch": "x86_64", "name": "old-laptop"}
    assert selector_matches({"ram_gb": ">=8"}, labels)
    assert not selector_matches({"ram_gb": ">=16"}, labels)
    assert selector_matches({"arch": "x86_64", "name": ["old-laptop", "new"]}, labels)
    assert not selector_matches({"arch": "arm64"}, labels)
    assert selector_matches({"arch": "!=arm64"}, labels)
    q = ShardQueue(_shards(models=1, select={"ram_gb": ">=16"}))
    small, big = NodeInfo(key="1", name="s", labels=labels), NodeInfo(key="2", name="b", labels={"ram_gb": 32})
    assert q.take(small) is None
    assert len(q.unplaceable([small])) == 2 and q.unplaceable([small, big]) == []
    assert q.take(big) is not None


def test_give_back_requeues_only_unfinished_samples():
    q = ShardQueue(_shards(models=1, tasks=2, size=2))
    node = NodeInfo(key="1", name="a")
    shard = q.take(node)
    first_key = shard.sample_keys()[0]
    rest = q.give_back(shard.shard_id, {first_key})
    assert [t.task_id for t in rest.tasks] == ["t1"]
    again = q.take(NodeInfo(key="2", name="b"))
    assert again.shard_id == rest.shard_id
    q.done(again.shard_id)
    assert q.empty() and q.finished == 1


def test_give_back_of_fully_done_shard_finishes_it():
    q = ShardQueue(_shards(models=1, tasks=2, size=2))
    shard = q.take(NodeInfo(key="1", name="a"))
    assert q.give_back(shard.shard_id, set(shard.sample_keys())) is None
    assert q.empty() and q.finished == 1
