"""`lqbench score` inputs (files, directories, MultiPL-E JSONL) and the command itself."""

import json
import signal
import subprocess
import time
import sys

import pytest

from lqbench.errors import LqbenchError
from lqbench.scorer.files import collect_programs, score_paths

TESTS = "lu = require('luaunit')\nfunction test_a() lu.assertEquals(f(1), 2) end\nos.exit(lu.LuaUnit.run())"
PROMPT = "local function f(x)\n"
GOOD = "  return x + 1\nend\n"
BAD = "  return x\nend\n"


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "b.lua").write_text("function f(x) return x + 1 end\n" + TESTS)
    (tmp_path / "dir" / "a.lua").write_text("x = = 1")
    (tmp_path / "dir" / "notes.txt").write_text("not lua")
    lines = [
        {"name": "HumanEval_1", "prompt": PROMPT, "completion": GOOD, "tests": TESTS},
        {"task_id": 7, "program": "os.exit(1)"},
        "this is not json",
        {"name": "HumanEval_2", "prompt": PROMPT, "completions": [BAD, GOOD], "tests": TESTS},
        {"name": "broken"},
        [1, 2],
    ]
    gen = tmp_path / "gen.jsonl"
    gen.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n")
    return tmp_path


def test_collect_reads_files_directories_and_generations(inputs):
    programs, issues = collect_programs([inputs / "dir", inputs / "gen.jsonl"])
    assert [(p.path.split("/")[-1], p.line, p.id) for p in programs] == [
        ("a.lua", None, None), ("b.lua", None, None),
        ("gen.jsonl", 1, "HumanEval_1"), ("gen.jsonl", 2, "7"),
        ("gen.jsonl", 4, "HumanEval_2#0"), ("gen.jsonl", 4, "HumanEval_2#1"),
    ]
    assert programs[2].load() == (PROMPT + GOOD + "\n" + TESTS).encode()
    assert programs[1].load() == (inputs / "dir" / "sub" / "b.lua").read_bytes()
    assert [(i.line, i.reason.split(":")[0]) for i in issues] == [
        (3, "not valid JSON"), (5, "needs 'program', or 'prompt' + 'completion' + 'tests'; missing prompt, tests, completion"),
        (6, "expected a JSON object, got list"),
    ]
    assert str(issues[0]).startswith(f"{inputs / 'gen.jsonl'}:3: ")


def test_strict_refuses_the_first_malformed_line(inputs):
    with pytest.raises(LqbenchError, match=r"gen\.jsonl:3: not valid JSON"):
        collect_programs([inputs / "gen.jsonl"], strict=True)


def test_missing_path_is_one_clear_error(tmp_path):
    with pytest.raises(LqbenchError, match="no such file or directory"):
        collect_programs([tmp_path / "nope.lua"])


def test_score_paths_writes_one_record_per_program(inputs):
    out = inputs / "results.jsonl"
    seen = []
    run = score_paths([inputs / "dir", inputs / "gen.jsonl"], out, jobs=2, on_verdict=lambda s, v: seen.append(v))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == run.total == len(seen) == 6
    assert [r["status"] for r in records] == [
        "syntax_error", "pass", "pass", "runtime_error", "assertion_failure", "pass"]
    assert {"path", "status", "passed", "error", "ms"} <= set(records[0])
    assert records[2]["id"] == "HumanEval_1" and records[2]["line"] == 1
    assert run.counts["pass"] == 3 and len(run.issues) == 3
    assert not (inputs / "results.jsonl.tmp").exists()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lqbench.cli", "score", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_score_command_end_to_end(inputs):
    done = _cli(inputs / "dir", "--out", inputs / "out.jsonl", "--jobs", "2", "--timeout", "2", "-q", cwd=inputs)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (inputs / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["syntax_error", "pass"]
    lines = done.stderr.splitlines()  # the summary by status
    assert lines[0].startswith("2 programs scored with Lua 5.4 in ")
    assert [line.split() for line in lines[1:]] == [["status", "programs", "share"], ["pass", "1", "50.0", "%"],
                                                   ["syntax_error", "1", "50.0", "%"],
                                                   ["results:", str(inputs / "out.jsonl")]]


def test_score_command_reports_skipped_lines_and_bad_input(inputs):
    done = _cli(inputs / "gen.jsonl", "--out", inputs / "out.jsonl", "-q", cwd=inputs)
    assert done.returncode == 1
    assert "gen.jsonl:3" in done.stderr
    missing = _cli(inputs / "missing.lua", "--out", inputs / "out2.jsonl", cwd=inputs)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"error: no such file or directory: {inputs / 'missing.lua'}"]
    bad_lua = _cli(inputs / "dir", "--out", inputs / "out3.jsonl", "--lua", "4.0", cwd=inputs)
    assert bad_lua.returncode == 2 and "unknown Lua version" in bad_lua.stderr


def test_ctrl_c_stops_scoring_with_one_line_and_writes_nothing(tmp_path):
    programs = tmp_path / "programs"
    programs.mkdir()
    (programs / "a.lua").write_text("os.exit(0)")
    (programs / "b.lua").write_text("while true do end")  # holds the only worker for a minute
    (programs / "c.lua").write_text("os.exit(0)")
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "lqbench.cli", "score", str(programs), "--out", str(out),
                             "--jobs", "1", "--timeout", "60", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    partial = tmp_path / "out.jsonl.tmp"
    deadline = time.monotonic() + 60
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial.exists(), "scoring never started"
    time.sleep(0.5)  # a.lua is scored (unless the machine is slow), b.lua is running
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert lines in ([f"interrupted: {n} of 3 programs scored; {out} not written"] for n in (0, 1)), lines
    assert not out.exists() and not partial.exists()
