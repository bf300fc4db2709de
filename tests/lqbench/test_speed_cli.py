"""`lqbench speed` at the command line: the real probe on the demo GGUF into a results file that already
holds another run (left as it was), llama-bench's output formats, and bad input as one line with the DB untouched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.lqbench.test_cli_run import _seed_db

LQBENCH = [sys.executable, "-m", "lqbench.cli", "speed"]
TINY = ["-r", "2", "-p", "32", "-n", "8", "-t", "1", "--no-bandwidth", "--no-median"]


def _seed(path: Path) -> None:
    _seed_db(path, node={"node_id": "n-earlier", "hostname": "elsewhere", "mem_bandwidth_gbs": 12.5})


def _table(con, sql):
    return con.execute(sql).fetchall()


def test_speed_probe_writes_its_rows_and_prints_llama_bench_json(tmp_path):
    db = tmp_path / "r.duckdb"
    _seed(db)
    con = duckdb.connect(str(db), read_only=True)
    before = {t: _table(con, f"SELECT * FROM {t} ORDER BY ALL") for t in ("runs", "nodes", "samples")}
    con.close()
    out = subprocess.run(LQBENCH + TINY + ["-o", "json", "--db", str(db), "demo:gemma-3-270m"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["test"] for r in rows] == ["pp32", "tg8"]
    for r in rows:
        assert r["n_reps"] == 2 and len(r["samples_ns"]) == 2 and r["n_threads"] == 1
        assert r["avg_ts"] > 0 and r["stddev_ts"] >= 0 and r["avg_ns"] > 0
        assert {"n_prompt", "n_gen", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "model_size",
                "model_n_params", "n_batch"} <= set(r)
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table, old in before.items():  # other rows untouched (the earlier run, its node)
            now = _table(con, f"SELECT * FROM {table} ORDER BY ALL")
            assert set(old) <= set(now), table
        run_id = rows[0]["run_id"]
        assert _table(con, f"SELECT status, plan_name FROM runs WHERE run_id = '{run_id}'") == [("finished", "speed")]
        assert _table(con, "SELECT test, count(*) FROM speed GROUP BY test ORDER BY test") == [("pp32", 2), ("tg8", 2)]
        view = _table(con, "SELECT test, n_reps, avg_ts, stddev_ts FROM speed_summary ORDER BY test")
        for (test, n, avg, sd), r in zip(view, sorted(rows, key=lambda r: r["test"])):
            assert (test, n) == (r["test"], 2)
            assert avg == pytest.approx(r["avg_ts"], rel=1e-5) and sd == pytest.approx(r["stddev_ts"], rel=1e-4, abs=1e-6)
        assert _table(con, "SELECT count(*) FROM models m JOIN speed s USING (model_id)")[0][0] == 4
        assert _table(con, "SELECT count(*) FROM nodes n JOIN speed s USING (node_id)")[0][0] == 4
    finally:
        con.close()


@pytest.mark.parametrize("args, message", [
    (["-r", "0"], "--reps must be >= 1"),
    (["-p", "abc"], "--n-prompt must be a comma list"),
    (["-p", "0", "-n", "0"], "nothing to run"),
    (["-o", "yaml"], "-o must be one of md, json, csv"),
    (["--quants", "q3_zz"], "q3_zz"),
    (["/nonexistent/model.gguf"], "/nonexistent/model.gguf"),
    (["--suite", "no-such-suite"], "no-such-suite"),
    (["-p", "4096", "--n-ctx", "1024"], "too small for pp4096"),
])
def test_bad_input_is_one_line_and_leaves_the_file_as_it_was(tmp_path, args, message):
    db = tmp_path / "r.duckdb"
    _seed(db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    out = subprocess.run(LQBENCH + ["--no-bandwidth", "--db", str(db)] + args, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_markdown_and_csv_rendering():
    from lqbench.speed_command import render

    row = {"run_id": "r", "model_filename": "/m.gguf", "model_type": "gemma q4_k_m", "model_size": 253 * 2**20,
           "model_n_params": 268_098_176, "engine_build": "0.3.36+abc", "engine_config": "extra_bufts=on",
           "n_batch": 512, "n_ubatch": 512, "n_threads": 2, "n_prompt": 0, "n_gen": 128, "test": "tg128",
           "n_reps": 5, "avg_ns": 1, "stddev_ns": 0, "avg_ts": 31.4159, "stddev_ts": 0.4, "samples_ns": [1, 2],
           "samples_ts": [1.5, 2.5], "cpu_mhz_start": None, "cpu_mhz_end": None, "throttled": True,
           "throttle_evidence": "tg last/first repetition 0.80"}
    md = render([row], "md")
    assert "| gemma q4_k_m | 253.00 MiB | 268.10 M | CPU     |       2 |     512 | tg128 |" in md
    assert "31.42 ± 0.40 (throttled)" in md
    csv_text = render([row], "csv")
    header, line = csv_text.strip().splitlines()
    assert header.split(",")[:3] == ["run_id", "model_filename", "model_type"] and ",1.5 2.5," in line
