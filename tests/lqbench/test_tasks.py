"""TaskSpec values, the built-in lqbench-lua suite's shape, suite versions, problem files and selection."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from lqbench.errors import LqbenchError
from lqbench.suites.checks import TESTS_FOOTER, TESTS_HEADER, doc_examples, function_name, problem_layout_issues
from lqbench.tasks import (
    DIFFICULTIES,
    LUA_STOP_TOKENS,
    TOPICS,
    Problem,
    TaskSpec,
    load_builtin,
    load_problem_dir,
    load_suite,
    select_tasks,
    suite_version,
)

SUITE = load_builtin("lqbench-lua")


def test_builtin_suite_size_tags_and_easy_share():
    tasks = SUITE.tasks
    assert len(tasks) >= 100
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert {t.topic for t in tasks} == set(TOPICS), "every topic has at least one problem"
    by_difficulty = Counter(t.difficulty for t in tasks)
    assert set(by_difficulty) == set(DIFFICULTIES)
    # A tiny demo model needs genuinely easy problems to score above zero, and the suite
    # must still be a benchmark: a real share of medium and hard ones.
    assert 0.35 <= by_difficulty["easy"] / len(tasks) <= 0.5
    assert by_difficulty["hard"] >= 15
    assert all(t.suite == "lqbench-lua" and t.suite_version == SUITE.version for t in tasks)
    assert all(t.stop_tokens == tuple(LUA_STOP_TOKENS) and t.language == "lua" for t in tasks)


@pytest.mark.parametrize("problem", SUITE.problems, ids=lambda p: p.task.task_id)
def test_builtin_problem_layout(problem: Problem):
    assert problem_layout_issues(problem) == []
    # The examples a model sees call the function the tests call.
    name = function_name(problem.task.prompt)
    assert all(call.startswith(name) or f"{name}(" in call for call, _ in doc_examples(problem.task.prompt))


def test_layout_check_catches_broken_problems():
    good = SUITE.problems[0]
    broken_prompt = dataclasses.replace(good.task, prompt="local function f(x)\n")
    issues = problem_layout_issues(Problem(task=broken_prompt, reference=good.reference, wrong=good.wrong))
    assert any("doc comment" in i for i in issues)
    no_wrong = problem_layout_issues(Problem(task=good.task, reference=good.reference, wrong=()))
    assert "no wrong completion" in no_wrong
    stop_hit = problem_layout_issues(Problem(task=good.task, reference="  local x = 1\n\n  return x\nend\n",
                                             wrong=good.wrong))
    assert any("stop string" in i for i in stop_hit)
    name = function_name(good.task.prompt)
    two_asserts = TESTS_HEADER.format(name=name) + "    lu.assertEquals(candidate({}), 0)\n" * 2 + TESTS_FOOTER
    bad_tests = dataclasses.replace(good.task, tests=two_asserts)
    assert any("2 assertions" in i for i in problem_layout_issues(
        Problem(task=bad_tests, reference=good.reference, wrong=good.wrong)))


def test_suite_version_is_a_deterministic_content_hash():
    again = load_builtin("lqbench-lua")
    assert again.version == SUITE.version
    assert suite_version(list(reversed(SUITE.tasks))) == SUITE.version, "order of tasks does not matter"
    changed = [dataclasses.replace(SUITE.tasks[0], tests=SUITE.tasks[0].tests + "-- x\n")] + SUITE.tasks[1:]
    assert suite_version(changed) != SUITE.version
    # Tags are not part of what decides a verdict.
    retagged = [dataclasses.replace(SUITE.tasks[0], topic="basics", difficulty="hard")] + SUITE.tasks[1:]
    assert suite_version(retagged) == SUITE.version


def test_taskspec_round_trips_and_is_hashable():
    task = dataclasses.replace(SUITE.tasks[3], meta_json='{"doctests": "keep", "n": 2}')
    assert TaskSpec.from_dict(task.to_dict()) == task
    assert task.meta == {"doctests": "keep", "n": 2}
    assert SUITE.tasks[3].meta == {}
    assert len({task, TaskSpec.from_dict(task.to_dict())}) == 1
    # Older dicts without the newer fields still load.
    old = {k: v for k, v in SUITE.tasks[0].to_dict().items() if k not in ("meta_json", "topic", "difficulty")}
    assert TaskSpec.from_dict(old).task_id == SUITE.tasks[0].task_id


def test_program_is_prompt_completion_newline_tests():
    task = SUITE.tasks[0]
    assert task.program("  return 1\nend\n") == task.prompt + "  return 1\nend\n" + "\n" + task.tests


def test_select_tasks():
    assert [t.task_id for t in select_tasks(SUITE, limit=3)] == [t.task_id for t in SUITE.tasks[:3]]
    ids = [SUITE.tasks[5].task_id, SUITE.tasks[1].task_id]
    assert [t.task_id for t in select_tasks(SUITE, task_ids=ids)] == [SUITE.tasks[1].task_id,
                                                                      SUITE.tasks[5].task_id]
    easy_metatables = select_tasks(SUITE, topics=["metatables"], difficulties=["easy"])
    assert easy_metatables and all(t.topic == "metatables" and t.difficulty == "easy" for t in easy_metatables)
    assert len(select_tasks(SUITE, difficulties=["easy", "hard"], limit=1000)) == sum(
        t.difficulty in ("easy", "hard") for t in SUITE.tasks)
    with pytest.raises(LqbenchError, match="no task 'nope'"):
        select_tasks(SUITE, task_ids=["nope"])
    with pytest.raises(LqbenchError, match="topic 'regex'"):
        select_tasks(SUITE, topics=["regex"])
    with pytest.raises(LqbenchError, match="difficulty 'trivial'"):
        select_tasks(SUITE, difficulties=["trivial"])


PROBLEM_TOML = """task_id = "{tid}"
topic = "{topic}"
difficulty = "easy"
prompt = '''
-- Return one.
-- >>> one()
-- 1
local function one()
'''
reference = '''
  return 1
end
'''
wrong = ['''
  return 0
end
''']
tests = '''
lu = require('luaunit')

function test_humaneval()
local candidate = one
    lu.assertEquals(candidate(), 1)
end

os.exit(lu.LuaUnit.run())
'''
"""


def _write_problem(directory: Path, tid: str, topic: str = "basics") -> None:
    (directory / f"{tid}.toml").write_text(PROBLEM_TOML.format(tid=tid, topic=topic))


def test_problem_directory_strict_and_lenient(tmp_path):
    _write_problem(tmp_path, "p1")
    _write_problem(tmp_path, "p2", topic="astrology")
    (tmp_path / "p3.toml").write_text("prompt = 'unterminated")
    (tmp_path / "p4.toml").write_text(PROBLEM_TOML.format(tid="other_name", topic="basics"))
    with pytest.raises(LqbenchError, match="p2.toml: topic 'astrology'"):
        load_problem_dir(tmp_path, strict=True)
    suite = load_problem_dir(tmp_path, strict=False)
    assert [t.task_id for t in suite.tasks] == ["p1"]
    assert suite.name == tmp_path.name
    assert len(suite.issues) == 3
    assert any("p3.toml: not a valid problem file" in i for i in suite.issues)
    assert any("p4.toml: task_id 'other_name' must equal the file name 'p4'" in i for i in suite.issues)
    # load_suite dispatches a directory path to the same loader.
    assert load_suite(str(tmp_path), strict=False).issues == suite.issues


def test_load_suite_by_name_and_unknown():
    assert load_suite("lqbench-lua").version == SUITE.version
    with pytest.raises(LqbenchError, match="unknown suite 'no-such-suite'"):
        load_suite("no-such-suite")
    with pytest.raises(LqbenchError, match="unknown suite"):
        load_builtin("humaneval-lua")
