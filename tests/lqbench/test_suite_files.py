"""MultiPL-E suite files (JSONL / JSON / Parquet), malformed-entry reporting, and the hub loader offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lqbench.errors import LqbenchError
from lqbench.suites.hub import HUB_CONFIGS, MULTIPL_E_REPO, MULTIPL_E_REVISION, load_multipl_e_hub
from lqbench.suites.multiple import load_multipl_e_file, suite_name_for, task_to_row, write_jsonl
from lqbench.tasks import LUA_STOP_TOKENS, load_builtin, load_suite

PROMPT = "-- Add one.\nlocal function inc(x)\n"
TESTS = ("\nlu = require('luaunit')\n\nfunction test_humaneval()\nlocal candidate = inc\n"
         "    lu.assertEquals(candidate(1), 2)\nend\n\nos.exit(lu.LuaUnit.run())\n")


def row(name: str, **overrides) -> dict:
    r = {"name": name, "language": "lua", "prompt": PROMPT, "tests": TESTS,
         "stop_tokens": ["\nlocal", "\nfunction", "\n--", "\n\n"], "doctests": "transform",
         "original": f"../originals/{name}.py", "prompt_terminology": "reworded"}
    r.update(overrides)
    return r


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_rows_become_tasks_and_extra_fields_are_kept(tmp_path):
    path = write_lines(tmp_path / "humaneval-lua.jsonl", [json.dumps(row("HumanEval_0_inc")),
                                                          json.dumps(row("HumanEval_1_inc", stop_tokens=None))])
    suite = load_suite(str(path))
    assert suite.name == "humaneval-lua" and suite.issues == [] and suite.source == str(path)
    first, second = suite.tasks
    assert first.task_id == "HumanEval_0_inc" and first.prompt == PROMPT and first.tests == TESTS
    assert first.language == "lua" and first.suite == "humaneval-lua" and first.suite_version == suite.version
    assert first.meta == {"doctests": "transform", "original": "../originals/HumanEval_0_inc.py",
                          "prompt_terminology": "reworded"}
    assert second.stop_tokens == tuple(LUA_STOP_TOKENS), "missing stop tokens default to MultiPL-E's Lua ones"
    assert first.program("  return x + 1\nend\n").endswith("os.exit(lu.LuaUnit.run())\n")


def test_jsonl_malformed_lines_are_reported_with_file_and_line(tmp_path):
    path = write_lines(tmp_path / "mixed.jsonl", [
        json.dumps(row("ok_1")),
        "{not json",
        "",
        json.dumps(row("py_task", language="python")),
        json.dumps({"name": "no_tests", "language": "lua", "prompt": PROMPT}),
        json.dumps(row("ok_1")),
        json.dumps(["a", "list"]),
        json.dumps(row("bad_stops", stop_tokens="\n\n")),
        json.dumps(row("ok_2")),
    ])
    lenient = load_multipl_e_file(path, strict=False)
    assert [t.task_id for t in lenient.tasks] == ["ok_1", "ok_2"]
    assert lenient.issues == [
        f"{path}:2: invalid JSON (Expecting property name enclosed in double quotes, column 2)",
        f"{path}:4: language is 'python', not 'lua'",
        f"{path}:5: field 'tests' is missing or not a non-empty string",
        f"{path}:6: duplicate task 'ok_1' (first at {path}:1)",
        f"{path}:7: expected a JSON object, got list",
        f"{path}:8: stop_tokens must be a list of strings",
    ]
    with pytest.raises(LqbenchError) as refused:
        load_multipl_e_file(path, strict=True)
    assert str(refused.value) == lenient.issues[0]
    # The default for load_suite (what plans use) is to refuse.
    with pytest.raises(LqbenchError, match=r"mixed.jsonl:2: invalid JSON"):
        load_suite(str(path))


def test_json_array_reports_element_lines_and_single_object_loads(tmp_path):
    array = tmp_path / "tasks.json"
    good, missing_prompt = json.dumps(row("a"), indent=1), json.dumps({"name": "b", "tests": "x"}, indent=1)
    array.write_text("[\n" + good + ",\n" + missing_prompt + "\n]\n")
    suite = load_multipl_e_file(array, strict=False)
    assert [t.task_id for t in suite.tasks] == ["a"]
    second_line = 2 + good.count("\n") + 1
    assert suite.issues == [f"{array}:{second_line}: field 'prompt' is missing or not a non-empty string"]

    broken = tmp_path / "broken.json"
    broken.write_text("[\n" + good + ",\n{oops}\n]")
    suite = load_multipl_e_file(broken, strict=False)
    assert [t.task_id for t in suite.tasks] == ["a"]
    assert len(suite.issues) == 1 and suite.issues[0].startswith(f"{broken}:{second_line}: invalid JSON")

    single = tmp_path / "one.json"
    single.write_text(json.dumps(row("solo")))
    assert [t.task_id for t in load_suite(str(single)).tasks] == ["solo"]


def test_empty_or_unknown_files(tmp_path):
    empty = write_lines(tmp_path / "empty.jsonl", [""])
    assert load_multipl_e_file(empty, strict=False).issues == [f"{empty}: no tasks"]
    with pytest.raises(LqbenchError, match="no tasks"):
        load_suite(str(empty))
    odd = tmp_path / "tasks.csv"
    odd.write_text("name,prompt\n")
    with pytest.raises(LqbenchError, match="unknown suite file type"):
        load_suite(str(odd))
    assert suite_name_for(Path("x/mbpp-lua.jsonl.gz")) == "mbpp-lua"


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """A Parquet file shaped like MultiPL-E's (stop_tokens is a list column), written by DuckDB."""
    import duckdb

    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (name VARCHAR, language VARCHAR, prompt VARCHAR, doctests VARCHAR, "
                    "original VARCHAR, prompt_terminology VARCHAR, tests VARCHAR, stop_tokens VARCHAR[])")
        for r in rows:
            con.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [r["name"], r["language"], r["prompt"], r["doctests"], r["original"],
                         r["prompt_terminology"], r["tests"], r["stop_tokens"]])
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    return path


def test_parquet_rows_with_duckdb(tmp_path):
    path = write_parquet(tmp_path / "mbpp-lua.parquet",
                         [row("mbpp_1_inc"), row("mbpp_2_py", language="python"), row("mbpp_3_inc")])
    suite = load_suite(str(path), strict=False)
    assert suite.name == "mbpp-lua"
    assert [t.task_id for t in suite.tasks] == ["mbpp_1_inc", "mbpp_3_inc"]
    assert suite.tasks[0].stop_tokens == ("\nlocal", "\nfunction", "\n--", "\n\n")
    assert suite.tasks[0].meta["doctests"] == "transform"
    assert suite.issues == [f"{path}:row 2: language is 'python', not 'lua'"]
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("hello")
    with pytest.raises(LqbenchError, match="not a readable Parquet file"):
        load_suite(str(not_parquet))


def test_builtin_suite_round_trips_through_multipl_e_jsonl(tmp_path):
    suite = load_builtin("lqbench-lua")
    path = tmp_path / "lqbench-lua.jsonl"
    assert write_jsonl(suite.tasks, path) == len(suite.tasks)
    again = load_suite(str(path))
    assert again.name == suite.name and again.version == suite.version
    assert again.tasks == suite.tasks
    assert task_to_row(suite.tasks[0])["language"] == "lua"


@pytest.mark.timeout(60)
def test_hub_loader_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LqbenchError) as err:
        load_suite("multipl-e:humaneval-lua")
    message = str(err.value)
    assert "\n" not in message
    assert "humaneval-lua" in message and "offline" in message
    with pytest.raises(LqbenchError, match="unknown MultiPL-E suite 'cobol-lua'"):
        load_suite("multipl-e:cobol-lua")


@pytest.mark.timeout(60)
def test_hub_loader_reads_a_cached_parquet_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "datasets--nuprl--MultiPL-E" / "snapshots" / MULTIPL_E_REVISION
    target = snapshot / HUB_CONFIGS["humaneval-lua"]
    target.parent.mkdir(parents=True)
    write_parquet(target, [row("HumanEval_0_inc"), row("HumanEval_1_inc")])
    suite = load_multipl_e_hub("humaneval-lua", cache_dir=tmp_path)
    assert suite.name == "humaneval-lua"
    assert [t.task_id for t in suite.tasks] == ["HumanEval_0_inc", "HumanEval_1_inc"]
    assert suite.source == f"hub:{MULTIPL_E_REPO}@{MULTIPL_E_REVISION}/{HUB_CONFIGS['humaneval-lua']}"
