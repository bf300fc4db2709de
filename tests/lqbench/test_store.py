"""The DuckDB contract: migrations, idempotent batches, done keys, readers during writes."""

import duckdb
import pytest

from lqbench.records import SampleRecord, ShardRecord, utc_now
from lqbench.store import SCHEMA_VERSION, ResultStore, connect_read_only
from lqbench.store.db import _migrations
from lqbench.tasks import TaskSpec

CONTRACT = {
    "runs": {"run_id", "started_at", "finished_at", "status", "config_json", "lqbench_version"},
    "nodes": {"node_id", "hostname", "cpu_model", "physical_cores", "logical_cores", "ram_gb", "os", "arch",
              "mem_bandwidth_gbs", "llama_cpp_version", "labels_json"},
    "models": {"model_id", "name", "quant", "path", "sha256", "file_bytes", "n_params", "bits_per_weight",
               "base_sha256", "requantized"},
    "tasks": {"suite", "task_id", "prompt", "tests", "stop_tokens", "suite_version"},
    "samples": {"run_id", "node_id", "model_id", "suite", "task_id", "sample_idx", "seed", "completion", "status",
                "passed", "error", "prompt_tokens", "gen_tokens", "prompt_ms", "gen_ms", "ttft_ms", "wall_ms",
                "score_ms", "peak_rss_mb", "created_at"},
    "perplexity": {"run_id", "node_id", "model_id", "corpus", "tokens", "ppl", "kld_mean", "top1_agreement",
                   "base_model_id"},
}


def _sample(task_id="t1", idx=0, run_id="r1"):
    return SampleRecord(run_id=run_id, node_id="n1", model_id="m1", suite="s", task_id=task_id, sample_idx=idx,
                        replica="", seed=1, completion="end", status="pass", passed=True, error=None,
                        prompt_tokens=10, gen_tokens=5, prompt_ms=3.0, gen_ms=50.0, ttft_ms=4.0, wall_ms=60.0,
                        score_ms=0.5, peak_rss_mb=300.0, created_at=utc_now(), shard_id="sh", suite_version="v",
                        temperature=0.0, finish_reason="stop", n_threads=2)


def test_migrations_create_the_contract(tmp_path):
    store = ResultStore(tmp_path / "r.duckdb")
    store.ensure()
    store.ensure()  # idempotent
    con = duckdb.connect(str(store.path), read_only=True)
    versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
    # every migration file, once (numbers are handed out to parallel work, so one branch may have gaps)
    assert versions == [v for v, _, _ in _migrations()] and versions[-1] == SCHEMA_VERSION
    for table, cols in CONTRACT.items():
        have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        assert cols <= have, (table, cols - have)
    con.close()


def test_batches_are_idempotent_and_done_keys_reflect_them(tmp_path):
    store = ResultStore(tmp_path / "r.duckdb")
    store.begin_run("r1", {"name": "x"}, "x")
    store.upsert_tasks([TaskSpec(suite="s", task_id="t1", prompt="p", tests="t", suite_version="v")])
    assert store.write_batch([_sample("t1"), _sample("t2")]) == 2
    assert store.write_batch([_sample("t2"), _sample("t3")]) == 1  # t2 already there: skipped
    shard = ShardRecord(run_id="r1", shard_id="sh", node_id="n1", model_id="m1", suite="s", n_tasks=3,
                        load_ms=120.0, n_threads=2, started_at=utc_now(), finished_at=utc_now(), status="finished")
    store.write_batch([], [shard])
    assert store.done_keys("r1") == {("m1", "s", t, 0, "", "completion") for t in ("t1", "t2", "t3")}
    assert store.done_keys("other") == set()
    store.finish_run("r1", "finished")
    with connect_read_only(store.path) as con:
        assert con.execute("SELECT status FROM runs").fetchone()[0] == "finished"
        assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 3
        assert con.execute("SELECT load_ms FROM shards").fetchone()[0] == 120.0


def test_a_failed_batch_leaves_nothing_behind(tmp_path):
    store = ResultStore(tmp_path / "r.duckdb")
    store.write_batch([_sample("t1")])
    broken = _sample("t2")
    broken.status = None  # NOT NULL violation mid-batch
    with pytest.raises(Exception):
        store.write_batch([_sample("t3"), broken])
    assert store.done_keys("r1") == {("m1", "s", "t1", 0, "", "completion")}


def test_reader_and_writer_take_turns(tmp_path):
    """A reader holding the file makes the writer wait, not fail."""
    import multiprocessing

    store = ResultStore(tmp_path / "r.duckdb")
    store.write_batch([_sample("t1")])
    ctx = multiprocessing.get_context("spawn")
    holding = ctx.Event()
    # DuckDB's lock is per process: hold it from another process.
    proc = ctx.Process(target=_hold_read_lock, args=(str(store.path), 1.0, holding))
    proc.start()
    assert holding.wait(30), "reader process never got the file"
    assert store.write_batch([_sample("t2")]) == 1  # raised a lock error before retries existed
    proc.join(10)
    assert proc.exitcode == 0


def _hold_read_lock(path, seconds, holding):
    import time

    from lqbench.store import connect_read_only

    with connect_read_only(path):
        holding.set()
        time.sleep(seconds)


def test_a_reader_thread_in_the_writing_process_waits_too(tmp_path):
    """In one process DuckDB refuses a read-only connection while a read-write one is open
    ("different configuration"); the reader retries instead of failing."""
    import threading

    from lqbench.store import connect_write

    store = ResultStore(tmp_path / "r.duckdb")
    store.write_batch([_sample("t1")])
    opened, counts = threading.Event(), []

    def read():
        opened.wait(10)
        with connect_read_only(store.path, retry_s=10) as con:
            counts.append(con.execute("SELECT count(*) FROM samples").fetchone()[0])

    reader = threading.Thread(target=read)
    reader.start()
    with connect_write(store.path) as con:
        opened.set()
        threading.Event().wait(0.5)  # hold the read-write connection while the reader tries
        con.execute("DELETE FROM samples WHERE task_id = 'none'")
    reader.join(15)
    assert counts == [1]


def test_run_config_round_trips_and_unknown_runs_are_one_error(tmp_path):
    from lqbench.errors import LqbenchError

    store = ResultStore(tmp_path / "r.duckdb")
    store.begin_run("r1", {"name": "x", "sampling": {"n": 2}}, "x")
    assert store.run_config("r1") == {"name": "x", "sampling": {"n": 2}}
    with pytest.raises(LqbenchError, match="no run 'nope'"):
        store.run_config("nope")


def test_a_sample_in_two_prompt_styles_is_two_samples(tmp_path):
    store = ResultStore(tmp_path / "r.duckdb")
    chat = _sample()
    chat.prompt_style, chat.extraction, chat.program = "chat", "fence", "local function f() end"
    assert store.write_batch([_sample(), chat]) == 2
    assert store.write_batch([chat]) == 0  # still idempotent on the (longer) key
    assert store.done_keys("r1") == {("m1", "s", "t1", 0, "", "completion"), ("m1", "s", "t1", 0, "", "chat")}
    assert {r.key for r in (_sample(), chat)} == store.done_keys("r1")


def test_migration_005_keeps_an_older_files_samples(tmp_path):
    """A results file made before prompt styles: its rows become completion samples, nothing is lost,
    and the same keys can then be recorded again in chat style."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR,"
                " applied_at TIMESTAMP DEFAULT current_timestamp)")
    for version, name, sql in _migrations():
        if version < 5:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    old = _sample()
    cols = [c for c in SampleRecord.columns() if c in {r[0] for r in con.execute("DESCRIBE samples").fetchall()}]
    con.execute(f"INSERT INTO samples ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [getattr(old, c) for c in cols])
    con.close()

    store = ResultStore(path)
    assert store.done_keys("r1") == set()  # read-only: not migrated yet, and the old key shape is not a done key
    chat = _sample()
    chat.prompt_style = "chat"
    assert store.write_batch([chat]) == 1  # opening for a write migrates
    with connect_read_only(path) as con:
        rows = con.execute("SELECT prompt_style, completion, status, replica FROM samples ORDER BY prompt_style").fetchall()
        assert rows == [("chat", "end", "pass", ""), ("completion", "end", "pass", "")]
        pk = con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = 'samples'"
                         " AND constraint_type = 'PRIMARY KEY'").fetchone()[0]
        assert pk == ["run_id", "model_id", "suite", "task_id", "sample_idx", "replica", "prompt_style"]
        nullable = dict(con.execute("SELECT column_name, is_nullable FROM information_schema.columns"
                                    " WHERE table_name = 'samples'").fetchall())
        assert nullable["status"] == nullable["passed"] == nullable["created_at"] == "NO"
        # the view was rebuilt over the copied table: it binds and splits by style
        assert "prompt_style" in {r[0] for r in con.execute("DESCRIBE task_outcomes").fetchall()}
    assert store.done_keys("r1") == {old.key, chat.key}
