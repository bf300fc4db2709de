"""Check a problem suite's reference and wrong completions with Debian's `lua5.4` + LuaUnit.

Authoring aid and cross-check of our own scorer: every reference must exit 0 and
every wrong completion non-zero when run as `prompt + completion + "\\n" + tests`.

    python3 bench/check_suite_lua54.py                 # the whole lqbench-lua suite
    python3 bench/check_suite_lua54.py lqb_012 lqb_013 # only task ids starting so

Needs `apt-get install lua5.4 lua-unit`. Prints one line per problem that misbehaves
and a summary with counts; exits 1 if anything misbehaved.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lqbench.suites.checks import doc_examples, problem_layout_issues  # noqa: E402
from lqbench.tasks import load_builtin  # noqa: E402


def run_lua(program: str) -> tuple[int, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(program)
        path = f.name
    try:
        proc = subprocess.run(["lua5.4", path], capture_output=True, text=True, timeout=10)
        return proc.returncode, (proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired:
        return 124, "timeout"
    finally:
        Path(path).unlink()


def main(prefixes: list[str]) -> int:
    suite = load_builtin("lqbench-lua")
    problems = [p for p in suite.problems if not prefixes or p.task.task_id.startswith(tuple(prefixes))]
    bad = 0
    ref_pass = wrong_fail = n_wrong = 0
    for p in problems:
        tid = p.task.task_id
        for issue in problem_layout_issues(p):
            bad += 1
            print(f"{tid}: layout: {issue}")
        rc, out = run_lua(p.task.program(p.reference))
        if rc == 0:
            ref_pass += 1
        else:
            bad += 1
            print(f"{tid}: reference FAILS (rc={rc})\n{out[-1500:]}")
        # The doc comment's examples must hold for the reference too.
        checks = "".join(f"lu.assertEquals({{{call}}}, {{{want}}})\n" for call, want in doc_examples(p.task.prompt))
        rc, out = run_lua(p.task.prompt + p.reference + "\nlu = require('luaunit')\n" + checks)
        if rc != 0:
            bad += 1
            print(f"{tid}: doc example disagrees with the reference\n{out[-800:]}")
        for i, w in enumerate(p.wrong):
            n_wrong += 1
            rc, out = run_lua(p.task.program(w))
            if rc != 0:
                wrong_fail += 1
            else:
                bad += 1
                print(f"{tid}: wrong[{i}] PASSES")
    print(f"{len(problems)} problems: {ref_pass} references pass, {wrong_fail}/{n_wrong} wrong completions fail, "
          f"{bad} problems found")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
