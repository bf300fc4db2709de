"""Layout checks for authored problems: is a built-in problem a well-formed MultiPL-E Lua task?

The loader accepts anything with a prompt and tests; these checks hold our own
suite to the shape the issue asks for (doc comment with 1-3 examples, a
`local function` signature, LuaUnit tests with 4-10 `lu.assertEquals`, completions
a model could emit verbatim without hitting a stop string). The CI test runs them
over every built-in problem, and `bench/check_suite_lua54.py` runs them while authoring.
"""

from __future__ import annotations

import re

from lqbench.tasks import DIFFICULTIES, TOPICS, Problem

_SIGNATURE = re.compile(r"^local function ([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")
_EXAMPLE = "-- >>> "
TESTS_HEADER = "lu = require('luaunit')\n\nfunction test_humaneval()\nlocal candidate = {name}\n"
TESTS_FOOTER = "end\n\nos.exit(lu.LuaUnit.run())\n"
MIN_ASSERTS, MAX_ASSERTS = 4, 10


def function_name(prompt: str) -> str | None:
    """The name in the prompt's last line `local function NAME(ARGS)`, or None."""
    lines = prompt.rstrip("\n").split("\n")
    m = _SIGNATURE.match(lines[-1]) if lines else None
    return m.group(1) if m else None


def doc_examples(prompt: str) -> list[tuple[str, str]]:
    """The doc comment's examples as (call, expected) Lua expression pairs."""
    lines = prompt.split("\n")
    examples = []
    for i, line in enumerate(lines):
        if line.startswith(_EXAMPLE) and i + 1 < len(lines) and lines[i + 1].startswith("-- "):
            examples.append((line[len(_EXAMPLE):].strip(), lines[i + 1][3:].strip()))
    return examples


def problem_layout_issues(problem: Problem) -> list[str]:
    """Everything about one problem that breaks the built-in suite's layout rules (empty = fine)."""
    task = problem.task
    issues: list[str] = []
    if task.topic not in TOPICS:
        issues.append(f"topic {task.topic!r} is not one of {sorted(TOPICS)}")
    if task.difficulty not in DIFFICULTIES:
        issues.append(f"difficulty {task.difficulty!r} is not one of {list(DIFFICULTIES)}")

    prompt = task.prompt
    name = function_name(prompt)
    if not prompt.endswith(")\n") or name is None:
        issues.append("prompt must end with a `local function name(args)` line and a newline")
    body = prompt.rstrip("\n").split("\n")[:-1]
    if not body or any(not line.startswith("--") for line in body):
        issues.append("prompt must be a `--` doc comment before the signature")
    n_examples = len(doc_examples(prompt))
    if not 1 <= n_examples <= 3:
        issues.append(f"doc comment has {n_examples} examples (want 1-3 `-- >>> call` / `-- result` pairs)")

    header = TESTS_HEADER.format(name=name)
    if not task.tests.startswith(header) or not task.tests.endswith(TESTS_FOOTER):
        issues.append("tests are not in MultiPL-E LuaUnit layout (header/footer)")
    else:
        asserts = task.tests[len(header):-len(TESTS_FOOTER)].rstrip("\n").split("\n")
        if any(not a.startswith("    lu.assertEquals(") for a in asserts):
            issues.append("every test line must be `    lu.assertEquals(...)`")
        if not MIN_ASSERTS <= len(asserts) <= MAX_ASSERTS:
            issues.append(f"{len(asserts)} assertions (want {MIN_ASSERTS}-{MAX_ASSERTS})")

    if not problem.wrong:
        issues.append("no wrong completion")
    for label, completion in [("reference", problem.reference)] + [
        (f"wrong[{i}]", w) for i, w in enumerate(problem.wrong)
    ]:
        if not completion.endswith("end\n"):
            issues.append(f"{label} must end with `end` and a newline")
        hit = [s for s in task.stop_tokens if s in completion]
        if hit:
            issues.append(f"{label} contains stop string {hit[0]!r}: a model could never emit it whole")
    if problem.reference in problem.wrong:
        issues.append("a wrong completion equals the reference")
    return issues
