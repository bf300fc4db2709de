"""`lqbench run` at the command line: bad input is one line and leaves the DB as it was;
a real run and `lqbench query` on the same file at the same time both succeed."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from lqbench.records import SampleRecord, utc_now
from lqbench.store import ResultStore

LQBENCH = [sys.executable, "-m", "lqbench.cli"]


def _seed_db(path: Path, node: dict | None = None) -> str:
    """A results file with one earlier run in it (its sample made on `node`, a nodes row, when given);
    returns its content hash. Tests of commands that must leave earlier results as they were use it."""
    store = ResultStore(path)
    store.begin_run("earlier", {"name": "earlier"}, "earlier")
    if node:
        store.upsert_nodes([node])
    store.write_batch([SampleRecord(
        run_id="earlier", node_id=node["node_id"] if node else "n", model_id="m", suite="s", task_id="t", sample_idx=0, replica="", seed=0,
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


def _wait_for_samples(db: Path, run: subprocess.Popen, at_least: int, timeout_s: float = 600) -> int:
    """Poll the results file (read-only, in this process) until the run has recorded `at_least`
    samples; returns how many it had. Fails the test if the run ends first."""
    from lqbench.store import connect_read_only

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, f"the run ended before recording {at_least} samples: {run.communicate()}"
        if db.exists():
            try:
                with connect_read_only(db, retry_s=1) as con:
                    n = con.execute("SELECT count(*) FROM samples").fetchone()[0]
            except Exception:  # not migrated yet, or the writer holds the file this instant
                n = 0
            if n >= at_least:
                return n
        time.sleep(0.2)
    raise AssertionError(f"no {at_least} samples after {timeout_s:.0f} s")


INTERRUPTED_LINE = re.compile(r"^interrupted: run (\S+) kept (\d+) of (\d+) samples; "
                              r"resume with lqbench run --resume \1 --db (.+)$")


@pytest.mark.e2e
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path, signum, status):
    """A stop signal to `lqbench run` mid-run (Ctrl-C, or SIGTERM from a service manager):
    exit 128 + signal, one line on stderr naming the run, what it kept and the resume command;
    the run marked interrupted with those samples; `--resume RUN_ID` does only the rest.

    The signal goes to the lqbench process alone. It used to land, about 1 run in 4, inside
    `ray.shutdown()` in the run's cleanup: exit 130 with nothing said and the run left `running`.
    Here it lands while samples stream in; the run is large enough not to finish first."""
    total = 20
    run, db = _start_demo_run(tmp_path, "ctrl-c", ["q4_k_m"], limit=total, shard_size=2)
    try:
        _wait_for_samples(db, run, at_least=1)
        run.send_signal(signum)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == status, err[-3000:]
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err[-3000:]
    match = INTERRUPTED_LINE.match(lines[0])
    assert match, lines[0]
    run_id, kept, planned, db_in_line = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    assert planned == total and Path(db_in_line) == db

    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT run_id, status, finished_at IS NOT NULL FROM runs").fetchall()
    before = dict(con.execute("SELECT task_id, created_at FROM samples").fetchall())
    con.close()
    assert runs == [(run_id, "interrupted", True)]
    assert len(before) == kept and 1 <= kept < total
    if signum != signal.SIGINT:
        return  # resuming is the same whichever signal stopped the run

    resumed = _run_cli(["run", "--resume", run_id, "--db", str(db), "--quiet"], timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The summary's title (rich may wrap it): only the missing samples were generated.
    assert f"run {run_id}: finished, {total - kept} new samples" in " ".join(resumed.stderr.split())
    con = duckdb.connect(str(db), read_only=True)
    after = dict(con.execute("SELECT task_id, created_at FROM samples").fetchall())
    status_after = con.execute("SELECT status FROM runs").fetchone()[0]
    con.close()
    assert status_after == "finished" and len(after) == total
    assert all(after[t] == created for t, created in before.items())


@pytest.mark.e2e
def test_ctrl_c_after_the_last_sample_leaves_the_run_finished(tmp_path):
    """The window the old silent exit 130 came from: Ctrl-C once every sample is recorded,
    while `lqbench run` stops Ray (seconds). Nothing is left to stop: the run is finished,
    the summary printed, exit 0."""
    total = 3
    run, db = _start_demo_run(tmp_path, "late-ctrl-c", ["q4_k_m"], limit=total, shard_size=total)
    try:
        _wait_for_samples(db, run, at_least=total)
        assert run.poll() is None, "the run exited before the signal could reach it"
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    run_id, status = con.execute("SELECT run_id, status FROM runs").fetchone()
    n = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    con.close()
    assert (status, n) == ("finished", total)
    assert f"run {run_id}: finished, {total} new samples" in " ".join(err.split())
    assert "interrupted" not in err
