"""`lqbench suites`: the built-in suites' counts, and inspecting a suite file with its issues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from lqbench.tasks import load_builtin


def lqbench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lqbench.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_suites_lists_builtin_counts_by_topic_and_difficulty():
    suite = load_builtin("lqbench-lua")
    out = lqbench("suites")
    assert out.returncode == 0, out.stderr
    assert f"lqbench-lua: {len(suite.tasks)} tasks, version {suite.version}" in out.stdout
    by_difficulty = Counter(t.difficulty for t in suite.tasks)
    total_row = next(line for line in out.stdout.splitlines() if line.strip("│ ").startswith("total"))
    cells = [c.strip() for c in total_row.strip("│ ").split("│")]
    assert cells == ["total", str(by_difficulty["easy"]), str(by_difficulty["medium"]),
                     str(by_difficulty["hard"]), str(len(suite.tasks))]
    topic_counts = Counter(t.topic for t in suite.tasks)
    closures_row = next(line for line in out.stdout.splitlines() if "closures" in line)
    assert closures_row.strip("│ ").split("│")[-1].strip() == str(topic_counts["closures"])
    assert "multipl-e:humaneval-lua" in out.stdout


def test_suites_path_prints_name_count_and_issues(tmp_path):
    good = {"name": "t1", "language": "lua", "prompt": "local function f()\n", "tests": "x",
            "stop_tokens": ["\n\n"]}
    path = tmp_path / "my-suite.jsonl"
    path.write_text(json.dumps(good) + "\n" + "{broken\n" + json.dumps({**good, "name": "t2"}) + "\n")
    out = lqbench("suites", str(path))
    assert out.returncode == 1, "issues make the check fail"
    assert "my-suite: 2 tasks" in out.stdout
    assert f"{path}:2: invalid JSON" in out.stdout
    strict = lqbench("suites", str(path), "--strict")
    assert strict.returncode == 2
    assert strict.stderr.strip().startswith(f"error: {path}:2: invalid JSON")

    clean = tmp_path / "clean.jsonl"
    clean.write_text(json.dumps(good) + "\n")
    out = lqbench("suites", str(clean))
    assert out.returncode == 0 and "clean: 1 tasks" in out.stdout and "issue" not in out.stdout


def test_suites_unknown_or_offline_hub_is_one_error_line():
    out = lqbench("suites", "no-such-suite")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: unknown suite 'no-such-suite'")
    hub = lqbench("suites", "multipl-e:mbpp-lua")
    assert hub.returncode == 2
    assert hub.stderr.count("\n") == 1 and "cannot fetch MultiPL-E mbpp-lua" in hub.stderr
