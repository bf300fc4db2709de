"""End to end: a real `lqbench run` of the demo model (real Ray on loopback, real llama.cpp, real Lua, real
DuckDB), then `lqbench import` of another model's programs for the same tasks into the same file; the
headline query and the report show both, and only the measured run in the speed charts."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from lqbench.tasks import load_builtin

pytestmark = pytest.mark.e2e

LQBENCH = [sys.executable, "-m", "lqbench.cli"]


def _cli(args, timeout=900):
    return subprocess.run(LQBENCH + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def test_imported_rows_next_to_a_real_demo_run(tmp_path):
    db = tmp_path / "results.duckdb"
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "import-e2e"\nshard_size = 2\n'
                    '[[models]]\nspec = "demo:gemma-3-270m"\nquants = ["q4_k_m"]\n'
                    '[[suites]]\nname = "lqbench-lua"\nlimit = 2\n'
                    '[sampling]\ntemperature = 0.0\nmax_tokens = 32\n')
    run = _cli(["run", plan, "--db", db, "--quiet"])
    assert run.returncode == 0, run.stderr[-3000:]

    # another study's programs for the same two tasks: each task's reference (passes) and first wrong solution
    suite = load_builtin()
    folder = tmp_path / "published"
    for problem in suite.problems[:2]:
        task = problem.task
        for k, completion in enumerate([problem.reference, problem.wrong[0]]):
            d = folder / "other-coder-7b"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{task.task_id}-{k}.lua").write_text(task.prompt + completion)
    imported = _cli(["import", folder, "--suite", "lqbench-lua", "--pattern", "{model}/{task}-{sample}.lua",
                     "--quant", "q8_0", "--source", "a published study", "--db", db])
    assert imported.returncode == 0, imported.stderr
    assert "imported 4 program(s) of other-coder-7b q8_0" in imported.stderr

    query = _cli(["query", "pass_at_1_by_model_quant", "--db", db, "--format", "csv"])
    assert query.returncode == 0, query.stderr
    rows = list(csv.DictReader(io.StringIO(query.stdout)))
    assert len(rows) == 2, query.stdout
    measured = [r for r in rows if r["origin"] == "measured"]
    other = [r for r in rows if r["model"] == "other-coder-7b"]
    assert len(measured) == 1 and measured[0]["quant"] == "q4_k_m" and float(measured[0]["gen_tok_s"]) > 0
    assert measured[0]["n_tasks"] == "2"
    assert len(other) == 1 and other[0]["origin"] == "imported: a published study"
    assert (other[0]["quant"], other[0]["n_tasks"], other[0]["n_samples"]) == ("q8_0", "2", "4")
    assert float(other[0]["pass_at_1"]) == 0.5 and other[0]["gen_tok_s"] == ""

    report = _cli(["report", "--db", db, "--out", tmp_path / "report.html"])
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report.html").read_text()
    speed = html[html.index('<section id="speed">'):]
    speed = speed[:speed.index("</section>")]
    assert measured[0]["model"] in speed and "other-coder-7b" not in speed
    section = html[html.index('<section id="imported">'):]
    assert "a published study" in section[:section.index("</section>")]
    accuracy = html[html.index('<section id="accuracy">'):]
    accuracy = accuracy[:accuracy.index("</section>")]
    assert "other-coder-7b" in accuracy and measured[0]["model"] in accuracy
