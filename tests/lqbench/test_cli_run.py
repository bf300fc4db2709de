"""`lqbench run` at the command line: bad input is one line and leaves the DB as it was;
a real run and `lqbench query` on the same file at the same time both succeed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lqbench.records import SampleRecord, utc_now
from lqbench.store import ResultStore

LQBENCH = [sys.executable, "-m", "lqbench.cli"]


def _seed_db(path: Path) -> str:
    """A results file with one earlier run in it; returns its content hash."""
    store = ResultStore(path)
    store.begin_run("earlier", {"name": "earlier"}, "earlier")
    store.write_batch([SampleRecord(
        run_id="earlier", node_id="n", model_id="m", suite="s", task_id="t", sample_idx=0, replica="", seed=0,
        completion="", status="pass", passed=True, error=None, prompt_tokens=1, gen_tokens=1, prompt_ms=1.0,
        gen_ms=1.0, ttft_ms=1.0, wall_ms=1.0, score_ms=1.0, peak_rss_mb=1.0, created_at=utc_now(), shard_id="x",
        suite_version="v", temperature=0.0, finish_reason="stop", n_threads=1)])
    store.finish_run("earlier", "finished")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_cli(args, timeout=120):
    return subprocess.run(LQBENCH + args, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "plan_text, expected",
    [
        ('[[models]]\nspec = "/nowhere/missing-model.gguf"\nquants = ["q4_k_m"]\n', "missing-model.gguf"),
        ('[[models]]\nspec = "demo:gemma-3-270m"\nquants = ["q4_k_m", "q3_xyz"]\n', "q3_xyz"),
        ('[[models]]\nspec = "demo:gemma-3-270m"\n[sampling]\ntemperature = "hot"\n', "sampling.temperature"),
        ('[[models]\nspec = "x"\n', "not valid TOML"),
    ],
    ids=["missing-gguf", "unknown-quant", "bad-type", "bad-toml"],
)
def test_bad_input_is_one_line_and_leaves_the_db_unchanged(tmp_path, plan_text, expected):
    db = tmp_path / "results.duckdb"
    before = _seed_db(db)
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text)
    proc = _run_cli(["run", str(plan), "--db", str(db), "--quiet"])
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_corrupt_gguf_is_refused_with_one_line(tmp_path):
    db = tmp_path / "results.duckdb"
    before = _seed_db(db)
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)  # a GGUF header with nothing behind it
    plan = tmp_path / "plan.toml"
    plan.write_text(f'[[models]]\nspec = "{bad}"\n')
    proc = _run_cli(["run", str(plan), "--db", str(db), "--quiet"])
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def _start_demo_run(tmp_path, name, quants, limit, shard_size):
    """`lqbench run` in the background on a small plan over the demo model; returns (process, db)."""
    db = tmp_path / "results.duckdb"
    plan = tmp_path / "plan.toml"
    plan.write_text(f'name = "{name}"\nshard_size = {shard_size}\n'
                    f'[[models]]\nspec = "demo:gemma-3-270m"\nquants = {json.dumps(quants)}\n'
                    f'[[suites]]\nname = "lqbench-lua"\nlimit = {limit}\n'
                    '[sampling]\ntemperature = 0.0\nmax_tokens = 32\n')
    run = subprocess.Popen(LQBENCH + ["run", str(plan), "--db", str(db), "--quiet"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    return run, db


@pytest.mark.e2e
def test_run_and_query_on_the_same_db_at_once(tmp_path):
    """The embedded default path (local Ray on loopback) from the CLI, with readers hammering the file."""
    run, db = _start_demo_run(tmp_path, "concurrent", ["q4_k_m", "q8_0"], limit=3, shard_size=1)
    queries = []
    deadline = time.monotonic() + 600
    while run.poll() is None and time.monotonic() < deadline:
        if db.exists():
            q = _run_cli(["query", "SELECT count(*) AS n FROM samples", "--db", str(db), "--format", "csv"])
            queries.append(q)
        time.sleep(1.0)  # each query is a fresh process: leave the 2 cores to the run
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err[-3000:]
    assert queries, "the run finished before any query could start"
    # The writer creates and migrates the file in its first open, so every reader sees the schema;
    # any failure (a lock error above all) is a bug.
    failed = [q for q in queries if q.returncode != 0]
    assert not failed, failed[0].stderr
    final = _run_cli(["query", "pass_at_1_by_model_quant", "--db", str(db), "--format", "csv"])
    assert final.returncode == 0, final.stderr
    body = [line for line in final.stdout.splitlines()[1:] if line.strip()]
    assert len(body) == 2  # one row per model x quant


@pytest.mark.e2e
@pytest.mark.xfail(strict=False, reason="known bug: about 1 run in 4, `lqbench run` exits 130 on SIGINT with "
                   "nothing on stderr (the interrupted mark and resume hint are lost); cause not found yet")
def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    """Ctrl-C (SIGINT to `lqbench run`) mid-run: exit 130, the run marked interrupted with the
    samples so far intact; `--resume RUN_ID` does only the rest.

    The signal goes to the lqbench process alone (a terminal's Ctrl-C also reaches the embedded
    Ray's own processes; that is not the cause of the known failure, which happens either way)."""
    import signal

    import duckdb

    run, db = _start_demo_run(tmp_path, "ctrl-c", ["q4_k_m"], limit=5, shard_size=2)
    deadline = time.monotonic() + 600
    while run.poll() is None and time.monotonic() < deadline:
        if db.exists():
            q = _run_cli(["query", "SELECT count(*) FROM samples", "--db", str(db), "--format", "csv"])
            if q.returncode == 0 and int(q.stdout.splitlines()[1]) >= 1:
                break
        time.sleep(1.0)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err[-3000:]
    assert "--resume" in err + out, (out[-2000:], err[-3000:])

    con = duckdb.connect(str(db), read_only=True)
    run_id, status = con.execute("SELECT run_id, status FROM runs").fetchone()
    before = dict(con.execute("SELECT task_id, created_at FROM samples").fetchall())
    con.close()
    assert status == "interrupted"
    assert 1 <= len(before) < 5

    resumed = _run_cli(["run", "--resume", run_id, "--db", str(db), "--quiet"], timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    after = dict(con.execute("SELECT task_id, created_at FROM samples").fetchall())
    status = con.execute("SELECT status FROM runs").fetchone()[0]
    con.close()
    assert status == "finished" and len(after) == 5
    assert all(after[t] == created for t, created in before.items())
