"""Every built-in problem is right: its reference passes and every known-wrong completion fails.

Scored through our own sandboxed scorer (the one that scores model samples) and,
where Debian's `lua5.4` and LuaUnit are installed, cross-checked with real Lua.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lqbench.tasks import load_builtin

SUITE = load_builtin("lqbench-lua")


def _programs() -> list[tuple[str, str, str]]:
    """(task_id, which completion, program) for every reference and wrong completion."""
    out = []
    for p in SUITE.problems:
        out.append((p.task.task_id, "reference", p.task.program(p.reference)))
        out += [(p.task.task_id, f"wrong[{i}]", p.task.program(w)) for i, w in enumerate(p.wrong)]
    return out


PROGRAMS = _programs()


def _misjudged(outcomes: list[tuple[str, str, bool, str]]) -> list[str]:
    return [f"{tid} {which}: {'failed' if which == 'reference' else 'passed'} ({detail})"
            for tid, which, passed, detail in outcomes if passed != (which == "reference")]


def test_references_pass_and_wrongs_fail_in_our_scorer():
    from lqbench.scorer import ScorerPool

    with ScorerPool() as pool:
        verdicts = list(pool.score_many(program for _, _, program in PROGRAMS))
    assert len(verdicts) == len(PROGRAMS)
    outcomes = [(tid, which, v.passed, f"{v.status}: {(v.error or '')[:200]}")
                for (tid, which, _), v in zip(PROGRAMS, verdicts)]
    assert _misjudged(outcomes) == []
    for (_, which, _), v in zip(PROGRAMS, verdicts):
        assert (v.status == "pass") == (which == "reference")
        # A wrong completion must fail by being wrong, not by tripping the sandbox's limits.
        assert v.status in ("pass", "assertion_failure", "runtime_error")


def _have_real_lua() -> bool:
    if not shutil.which("lua5.4"):
        return False
    probe = subprocess.run(["lua5.4", "-e", "require('luaunit')"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _have_real_lua(), reason="Debian lua5.4 + lua-unit not installed")
def test_references_pass_and_wrongs_fail_in_real_lua(tmp_path: Path):
    outcomes = []
    for n, (tid, which, program) in enumerate(PROGRAMS):
        path = tmp_path / f"p{n}.lua"
        path.write_text(program)
        proc = subprocess.run(["lua5.4", str(path)], capture_output=True, text=True, timeout=30)
        outcomes.append((tid, which, proc.returncode == 0, (proc.stdout + proc.stderr)[-200:]))
    assert _misjudged(outcomes) == []
