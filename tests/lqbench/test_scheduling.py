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


# --- balancing the tail (ShardQueue(balance=True), the default) -------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _all_keys(shards):
    return sorted(k for s in shards for k in s.sample_keys())


def test_speed_hint_comes_from_measured_bandwidth():
    assert NodeInfo(key="1", name="a", labels={"mem_bandwidth_gbs": 21.5}).speed == 21.5
    assert NodeInfo(key="1", name="a", labels={"mem_bandwidth_gbs": None}).speed is None
    assert NodeInfo(key="1", name="a", labels={"mem_bandwidth_gbs": 21.5}, speed=2.0).speed == 2.0


def test_a_lone_node_takes_whole_shards():
    q = ShardQueue(_shards(models=1, tasks=8, size=4))
    node = NodeInfo(key="1", name="a")
    assert [len(q.take(node).tasks), len(q.take(node).tasks)] == [4, 4]


def test_shards_are_split_when_the_queue_runs_short_and_no_sample_is_lost():
    shards = _shards(models=1, tasks=8, size=8)  # one shard, three nodes
    q = ShardQueue(shards, clock=FakeClock())
    nodes = [NodeInfo(key=str(i), name=f"n{i}") for i in range(3)]
    q.take(nodes[0])  # the first asker is alone so far: whole shard
    q.give_back(q.running_on("0")[0], set())
    for n in nodes:
        q._nodes[n.key] = n  # all three have asked for work before
    pieces = []
    while q.pending:
        for n in nodes:
            shard = q.take(n)
            if shard is not None:
                pieces.append(shard)
                q.done(shard.shard_id)
    assert len(pieces) > 1 and max(len(p.tasks) for p in pieces) < 8
    assert _all_keys(pieces) == _all_keys(shards)  # every sample exactly once
    assert len({p.shard_id for p in pieces}) == len(pieces)


def _fast_and_slow_measured(tasks, size):
    """Two nodes that each finished one first piece: "f" in 10 s, "s" at 40 s (the slow one)."""
    clock = FakeClock()
    q = ShardQueue(_shards(models=1, tasks=tasks, size=size), clock=clock)
    fast, slow = NodeInfo(key="f", name="f"), NodeInfo(key="s", name="s")
    a, b = q.take(fast), q.take(slow)
    clock.now = 10.0
    q.done(a.shard_id)
    clock.now = 40.0
    q.done(b.shard_id)
    return clock, q, fast, slow, a, b


def test_measured_rate_follows_the_clock():
    clock, q, fast, slow, a, b = _fast_and_slow_measured(tasks=4, size=2)
    # work is model bytes (1 here) x samples; the second asker got a split piece
    assert q.rate(fast) == len(a.tasks) / 10 and q.rate(slow) == len(b.tasks) / 40
    assert q.rate(NodeInfo(key="new", name="new")) > 0  # unmeasured: the median of the measured


def test_slow_node_leaves_the_last_task_to_a_faster_idle_node():
    clock, q, fast, slow, _, _ = _fast_and_slow_measured(tasks=5, size=1)  # slow is 4x slower than fast
    c = q.take(fast)
    clock.now = 50.0
    q.done(c.shard_id)
    d = q.take(fast)  # two left: fast runs one, the other is pending
    assert q.take(slow) is None  # fast will be done with both before slow would finish one
    clock.now = 60.0
    q.done(d.shard_id)
    assert q.take(fast) is not None and q.empty() is False
    assert q.take(slow) is None  # nothing left to take


def test_a_slow_node_alone_never_waits():
    clock, q, fast, slow, _, _ = _fast_and_slow_measured(tasks=3, size=1)
    q.give_back(q.take(fast).shard_id, set())  # the fast laptop is lost: forgotten
    assert q.take(slow) is not None  # nobody better is left, so the slow one takes it


def test_a_node_switching_model_goes_where_fewest_nodes_are():
    q = ShardQueue(_shards(models=3, tasks=4, size=1))
    busy = [NodeInfo(key=str(i), name=f"n{i}") for i in range(2)]
    assert [q.take(n).model_id for n in busy] == ["m0", "m1"]  # the second one does not pile on m0
    assert q.take(NodeInfo(key="x", name="x")).model_id == "m2"
    plain = ShardQueue(_shards(models=3, tasks=4, size=1), balance=False)
    assert [plain.take(NodeInfo(key=str(i), name=f"n{i}")).model_id for i in range(3)] == ["m0", "m0", "m0"]


def test_simulated_cluster_runs_every_sample_exactly_once_and_never_stalls():
    """Random speeds, random sample times, nodes lost mid-shard: a small event loop drives the queue."""
    import heapq
    import random

    from lqbench.shard import make_perplexity_shards

    for seed in range(6):
        rng = random.Random(seed)
        ppl = make_perplexity_shards("r", [(_model(0), [_model(0), _model(1)], {})], "corpus", "text", {}, {})
        shards = _shards(models=3, tasks=11, size=4) + ppl
        clock = FakeClock()
        q = ShardQueue(shards, clock=clock)
        nodes = [NodeInfo(key=str(i), name=f"n{i}", speed=rng.choice([None, 1.0, 3.0])) for i in range(6)]
        speed = {n.key: 1.0 if seed % 2 else rng.uniform(1, 4) for n in nodes}  # equal speeds: ties everywhere
        doomed = {nodes[1].key, nodes[4].key}
        current, events, seq, done_keys, ran = {}, [], 0, set(), []
        while not q.empty():
            for n in nodes:
                if n.key in current:
                    continue
                shard = q.take(n)
                if shard is None:
                    continue
                seq += 1
                current[n.key] = shard
                heapq.heappush(events, (clock.now + rng.uniform(1, 5) * len(shard.tasks) / speed[n.key], seq, n))
            assert events, "queue stalled: work pending, nothing running"
            clock.now, _, n = heapq.heappop(events)
            shard = current.pop(n.key)
            if n.key in doomed and len(nodes) > 2 and shard.tasks:  # lost mid-shard: first task was recorded
                first = shard.sample_keys()[:shard.n_samples]
                done_keys.update(first)
                ran.extend(first)
                q.give_back(shard.shard_id, done_keys)
                nodes.remove(n)
                doomed.discard(n.key)
                continue
            new = [k for k in shard.sample_keys() + shard.perplexity_keys() if k not in done_keys]
            done_keys.update(new)
            ran.extend(new)
            q.done(shard.shard_id)
        assert sorted(ran) == sorted(k for s in shards for k in s.sample_keys() + s.perplexity_keys())


def test_perplexity_shards_are_handed_out_whole():
    """A ladder's perplexity shard has no tasks; it must still go out (once, unsplit)."""
    from lqbench.shard import make_perplexity_shards

    ppl = make_perplexity_shards("r", [(_model(0), [_model(0), _model(1)], {})], "corpus", "text", {}, {})
    q = ShardQueue(_shards(models=1, tasks=4, size=4) + ppl)
    nodes = [NodeInfo(key="1", name="a"), NodeInfo(key="2", name="b")]
    handed = []
    for _ in range(20):
        if q.empty():
            break
        for node in nodes:
            shard = q.take(node)
            if shard is not None:
                handed.append(shard)
        for shard in handed[-2:]:
            q.done(shard.shard_id)
    assert q.empty()
    ppl_out = [s for s in handed if s.kind == "perplexity"]
    assert [s.shard_id for s in ppl_out] == [ppl[0].shard_id]
    assert sorted(t.task_id for s in handed for t in s.tasks) == ["t0", "t1", "t2", "t3"]
