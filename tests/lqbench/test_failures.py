"""The crash policy: bounded retries per (node, model file), a safer engine configuration, exclusion."""

import pytest

from lqbench.engine import DEFAULT, SAFE, EngineConfig, fallback
from lqbench.failures import FailureBook
from lqbench.scheduling import NodeInfo, ShardQueue
from lqbench.shard import Shard, failed_records
from lqbench.tasks import TaskSpec


def _record(book, node="k1", model="m1", what="crashed", reason="SIGSEGV during generate", config=DEFAULT):
    return book.record(node_key=node, node_name=f"name-{node}", node_id=f"id-{node}", model_id=model,
                       model_label=f"{model}:q4_k_m", what=what, reason=reason, config=config)


def test_engine_config_labels_round_trip_and_fallback_ends_at_safe():
    assert DEFAULT.label == "extra_bufts=on" and SAFE.label == "extra_bufts=off"
    assert EngineConfig.from_label("extra_bufts=off") == SAFE
    assert EngineConfig.from_dict(SAFE.to_dict()) == SAFE and EngineConfig.from_dict(None) == DEFAULT
    assert fallback(DEFAULT) == SAFE and fallback(SAFE) is None
    with pytest.raises(Exception, match="unknown engine configuration"):
        EngineConfig.from_label("amx=off")


def test_a_crash_retries_with_the_safe_configuration_then_excludes_after_k():
    book = FailureBook(max_failures=3)
    assert book.config_for("k1", "m1", DEFAULT) == DEFAULT
    assert _record(book) == "retry"
    assert book.config_for("k1", "m1", DEFAULT) == SAFE  # the retry is safer
    assert book.config_for("k2", "m1", DEFAULT) == DEFAULT  # other nodes are not affected
    assert book.config_for("k1", "m2", DEFAULT) == DEFAULT  # nor other model files on that node
    assert not book.excluded("k1", "m1")
    assert _record(book, config=SAFE) == "retry"
    assert _record(book, config=SAFE, what="hung", reason="no reply to generate in 5 s") == "exclude"
    assert book.excluded("k1", "m1") and not book.excluded("k2", "m1")
    [line] = book.lines()
    assert line.startswith("m1:q4_k_m on name-k1: excluded after crashed/hung 3 times")
    assert "SIGSEGV during generate; no reply to generate in 5 s" in line
    assert "with extra_bufts=on, extra_bufts=off, extra_bufts=off" in line
    assert book.cause("m1").startswith("engine failed on every node that could run it — name-k1: ")
    assert book.cause("m2") == ""


def test_a_recovered_pair_is_reported_but_not_excluded():
    book = FailureBook(max_failures=2)
    assert _record(book) == "retry"
    assert book.excluded_pairs() == []
    assert book.lines() == ["m1:q4_k_m on name-k1: crashed once (SIGSEGV during generate) with extra_bufts=on; "
                            "continued with extra_bufts=off"]


def test_max_failures_one_excludes_at_once_and_zero_is_refused():
    book = FailureBook(max_failures=1)
    assert _record(book) == "exclude"
    with pytest.raises(ValueError):
        FailureBook(max_failures=0)


def _shard(model_id="m1", n_tasks=3, n=2):
    tasks = tuple(TaskSpec(suite="s", task_id=f"t{i}", prompt="p", tests="t", stop_tokens=("\n\n",),
                           suite_version="1") for i in range(n_tasks))
    return Shard(run_id="r", model={"model_id": model_id, "sha256": model_id * 4, "quant": "q4_k_m", "name": "m",
                                    "file_bytes": 100}, suite="s", suite_version="1", tasks=tasks,
                 sampling={"temperature": 0.0, "n": n, "seed": 7}, n_samples=n, scoring={}, inference={})


def test_an_excluded_pair_takes_no_more_work_of_that_model_but_others_do():
    a, b = NodeInfo(key="a", name="a"), NodeInfo(key="b", name="b")
    m1, m2 = _shard("m1"), _shard("m2")
    queue = ShardQueue([m1, m2], balance=False)
    queue.exclude("a", "m1")
    assert not queue.can_run(m1, a) and queue.can_run(m1, b) and queue.can_run(m2, a)
    assert queue.take(a).model_id == "m2"
    assert queue.unplaceable([a]) == [m1]  # with only node a left, m1 can never run
    assert queue.unplaceable([a, b]) == []


def test_failed_records_cover_every_remaining_sample_with_the_cause_and_no_measurements():
    shard = _shard(n_tasks=2, n=2)
    done = {shard.sample_key("t0", 0)}
    records = failed_records(shard, "node-1", "engine failed on every node that could run it — x", done)
    assert sorted((r.task_id, r.sample_idx) for r in records) == [("t0", 1), ("t1", 0), ("t1", 1)]
    for r in records:
        assert r.status == "generation_error" and not r.passed and r.node_id == "node-1"
        assert r.error.startswith("engine failed on every node")
        assert r.gen_tokens is None and r.gen_ms is None and r.peak_rss_mb is None and r.wall_ms is None
        assert r.shard_id == shard.shard_id and r.finish_reason == "error"
