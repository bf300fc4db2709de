"""Code extraction from chat replies (lqbench.extraction), on a table of replies shaped like real ones."""

from __future__ import annotations

import re

import pytest

from lqbench.extraction import Extraction, extract, fences, function_name, looks_like_lua, program_code

PROMPT = """
-- Return the sum of the numbers `a` and `b`.
-- >>> add(2, 3)
-- 5
local function add(a, b)
"""

FULL = "local function add(a, b)\n  return a + b\nend"

# (case, reply, how, defines, code the extraction must return: None = don't check)
REPLIES = [
    ("fenced, prose around",
     "Here is the completed function:\n\n```lua\n" + FULL + "\n```\n\nIt returns the sum of `a` and `b`.",
     "fence", True, FULL),
    ("fenced, no prose", "```lua\n" + FULL + "\n```", "fence", True, FULL),
    ("unlabeled fence", "```\n" + FULL + "\n```", "fence", True, FULL),
    ("label in capitals", "```Lua\n" + FULL + "\n```", "fence", True, FULL),
    ("label with version", "```lua5.4\n" + FULL + "\n```", "fence", True, FULL),
    ("tilde fence", "~~~lua\n" + FULL + "\n~~~", "fence", True, FULL),
    ("unfenced whole function", FULL + "\n", "whole", True, FULL + "\n"),
    ("unfenced body, as a base model continues", "  return a + b\nend\n", "whole", False, "  return a + b\nend\n"),
    ("several fences: usage example first, function second",
     "Usage:\n```lua\nprint(add(2, 3)) -- 5\n```\nImplementation:\n```lua\n" + FULL + "\n```",
     "fence", True, FULL),
    ("several fences: python first, lua second",
     "In Python:\n```python\ndef add(a, b):\n    return a + b\n```\nIn Lua:\n```lua\n" + FULL + "\n```",
     "fence", True, FULL),
    ("several fences: two definitions, the first is taken",
     "```lua\nlocal function add(a, b)\n  return a + b\nend\n```\nor shorter:\n"
     "```lua\nfunction add(a, b) return b + a end\n```",
     "fence", True, "local function add(a, b)\n  return a + b\nend"),
    ("fence holding only the body", "The body is:\n```lua\n  return a + b\nend\n```", "fence", False,
     "  return a + b\nend"),
    ("prose only", "I'm sorry, but I can't help with that. Adding numbers is easy: you return the sum.",
     "none", False, ""),
    ("prose that starts like code words", "For each pair we return the sum.\nIf both are numbers, then fine.",
     "none", False, ""),
    ("empty reply", "", "none", False, ""),
    ("whitespace only", "\n \n\t\n", "none", False, ""),
    ("empty fence only", "```lua\n```", "none", False, ""),
    ("a fence of prose", "```\nThe answer depends on the inputs.\n```", "none", False, ""),
    ("function renamed", "```lua\nfunction add_numbers(a, b)\n  return a + b\nend\n```", "fence", False,
     "function add_numbers(a, b)\n  return a + b\nend"),
    ("similar name is not the name", "```lua\nlocal function add2(a, b)\n  return a + b\nend\n```", "fence", False,
     None),
    ("global function instead of local", "```lua\nfunction add(a, b)\n  return a + b\nend\n```", "fence", True,
     "function add(a, b)\n  return a + b\nend"),
    ("assigned function", "```lua\nlocal add = function(a, b) return a + b end\n```", "fence", True,
     "local add = function(a, b) return a + b end"),
    ("windows line endings",
     "Here you go:\r\n\r\n```lua\r\nlocal function add(a, b)\r\n  return a + b\r\nend\r\n```\r\n",
     "fence", True, FULL),
    ("unclosed fence (cut at the token limit)", "```lua\nlocal function add(a, b)\n  return a +", "fence", True,
     "local function add(a, b)\n  return a +"),
    ("fence indented in a list", "1. Define it:\n   ```lua\n   " + FULL.replace("\n", "\n   ") + "\n   ```",
     "fence", True, None),
    ("helper function before the asked one",
     "```lua\nlocal function plus(x, y) return x + y end\n\nlocal function add(a, b)\n  return plus(a, b)\nend\n```",
     "fence", True, None),
    ("only a luau fence (another language): whole reply", "```luau\nlocal function add(a: number, b: number)\n"
     "  return a + b\nend\n```", "whole", True, None),
]


@pytest.mark.parametrize("case,reply,how,defines,code", REPLIES, ids=[r[0] for r in REPLIES])
def test_extraction_table(case, reply, how, defines, code):
    got = extract(reply, "add")
    assert (got.how, got.defines) == (how, defines), got
    if code is not None:
        assert got.code == code
    assert "\r" not in got.code


def test_program_is_the_extraction_when_it_defines_the_function_else_prompt_first():
    fenced = extract("```lua\n" + FULL + "\n```", "add")
    assert program_code(PROMPT, fenced) == FULL
    body = extract("  return a + b\nend", "add")
    assert program_code(PROMPT, body) == PROMPT + "  return a + b\nend"
    renamed = extract("```lua\nfunction add_numbers(a, b)\n  return a + b\nend\n```", "add")
    assert program_code(PROMPT, renamed).startswith(PROMPT)  # the signature is still open: it will not compile
    assert program_code(PROMPT.replace("\n", "\r\n"), body) == PROMPT + "  return a + b\nend"


def test_function_name_of_every_builtin_task_is_what_its_tests_call():
    from lqbench.tasks import load_suite

    suite = load_suite("lqbench-lua")
    for task in suite.tasks:
        called = re.search(r"local candidate = ([\w.]+)", task.tests).group(1)
        assert function_name(task.prompt) == called, task.task_id
    assert function_name("-- no function here\n") is None


def test_fences_report_labels_and_closure():
    got = fences("a\n```lua\nx = 1\n```\nb\n``` \ny = 2\n```\n````python extra\nz\n```\n````\n```\nopen")
    assert [(f.label, f.code, f.closed) for f in got] == [
        ("lua", "x = 1", True), ("", "y = 2", True), ("python", "z\n```", True), ("", "open", False)]


@pytest.mark.parametrize("line", ["local x = 1", "x = x + 1", "t[1] = 2", "print(x)", "return", "return x",
                                  "return a + b", "end", "end)", "for i = 1, 10 do", "while x do", "if x then",
                                  "function f(a)", "local function f()", "repeat", "until x > 3", "else"])
def test_lua_lines_read_as_code(line):
    assert looks_like_lua(line)


@pytest.mark.parametrize("line", ["Here is the function:", "return the sum of a and b", "For example, add(2, 3).",
                                  "for each element we add it", "If a is nil, then we fail.", "-- just a comment",
                                  "In the end, it works.", "The result (a number)"])
def test_prose_lines_do_not(line):
    assert not looks_like_lua(line)


def test_none_has_no_code():
    assert extract("Sorry.", "add") == Extraction("none", "", False)
