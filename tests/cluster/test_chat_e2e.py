"""Both prompt styles end to end on real parts: a Ray cluster on loopback, the real demo GGUF through
llama.cpp, real Lua scoring, a real DuckDB file.

The demo GGUF (Gemma 3 270M) is a base model: its file has no tokenizer.chat_template, so the plan gives
one (the named `gemma` template). Its vocabulary has Gemma's turn tokens, so the chat prompt tokenizes
to them and generation stops at <end_of_turn> (an end-of-generation token for llama.cpp) if the model
ever writes it.
"""

from __future__ import annotations

import duckdb
import pytest

from lqbench.plan import plan_from_dict
from lqbench.verdicts import VERDICTS

pytestmark = pytest.mark.e2e

BOTH_STYLES_PLAN = {
    "name": "styles",
    "shard_size": 2,
    "models": [{"spec": "demo:gemma-3-270m", "quants": ["q4_k_m"], "prompt_style": ["completion", "chat"],
                "chat_template": "gemma"}],
    "suites": [{"name": "lqbench-lua", "limit": 3, "difficulties": ["easy"]}],
    "sampling": {"temperature": 0.0, "max_tokens": 96, "seed": 5},
}


def _rows(db, sql="SELECT * FROM samples ORDER BY task_id, prompt_style"):
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def test_chat_and_completion_side_by_side_on_real_ray(ray_cluster, tmp_path):
    from cluster.runner import run_plan
    from lqbench.extraction import extract, function_name, program_code
    from lqbench.prompt_styles import load_instruction
    from lqbench.querying import run_query
    from lqbench.report.build import build_report
    from lqbench.tasks import load_suite

    ray_cluster.add_laptop("laptop-a")
    db = tmp_path / "results.duckdb"
    summary = run_plan(plan_from_dict(BOTH_STYLES_PLAN), db=db, progress=False, n_threads=1,
                       measure_bandwidth=False)
    assert summary.status == "finished"
    rows = _rows(db)
    assert len(rows) == 6 and len({(r["task_id"], r["prompt_style"]) for r in rows}) == 6
    tasks = load_suite("lqbench-lua").by_id()
    by_style = {s: {r["task_id"]: r for r in rows if r["prompt_style"] == s} for s in ("completion", "chat")}
    assert by_style["completion"].keys() == by_style["chat"].keys() and len(by_style["chat"]) == 3

    for task_id, r in by_style["completion"].items():  # today's path, unchanged: no chat fields
        assert r["status"] in VERDICTS and r["extraction"] is None and r["program"] is None
        assert r["instruction"] is None and r["chat_template"] is None
    for task_id, r in by_style["chat"].items():
        task = tasks[task_id]
        print(f"\n--- {task_id} chat: status={r['status']} extraction={r['extraction']} finish={r['finish_reason']} "
              f"prompt_tokens={r['prompt_tokens']} gen_tokens={r['gen_tokens']}\n"
              f"raw reply: {r['completion']!r}\nprogram: {r['program']!r}")
        assert r["status"] != "generation_error", r["error"]
        assert r["gen_tokens"] > 0 and r["prompt_ms"] > 0
        assert r["instruction"] == "lua-fence" and r["instruction_version"] == load_instruction().version
        assert r["chat_template"].startswith("gemma:")
        # the chat prompt wraps the task's prompt in an instruction and turn markers: more tokens
        assert r["prompt_tokens"] > by_style["completion"][task_id]["prompt_tokens"] + 20
        # what was stored is what extraction makes of the stored raw reply
        found = extract(r["completion"], function_name(task.prompt))
        assert r["extraction"] == found.how
        if found.how == "none":
            assert r["status"] == "no_code" and r["program"] is None and not r["passed"]
        else:
            assert r["program"] == program_code(task.prompt, found) and r["status"] in VERDICTS

    # queries and the report split by style
    cols, p1 = run_query(db, "pass_at_1_by_model_quant", {"run_id": summary.run_id})
    assert sorted(r[cols.index("prompt_style")] for r in p1) == ["chat", "completion"]
    cols, paired = run_query(db, "pass_at_1_by_prompt_style", {"run_id": summary.run_id})
    assert len(paired) == 1 and paired[0][cols.index("n_tasks")] == 3
    cols, taxonomy = run_query(db, "failure_taxonomy_by_model_quant")
    assert sorted(r[cols.index("prompt_style")] for r in taxonomy) == ["chat", "completion"]
    cols, extraction = run_query(db, "chat_extraction_by_model_quant")
    shares = dict(zip(cols, extraction[0]))
    assert shares["fence"] + shares["whole"] + shares["none"] == pytest.approx(1.0, abs=1e-3)
    build_report(db, tmp_path / "report.html")
    assert 'id="styles"' in (tmp_path / "report.html").read_text()

    # a resume finds every sample of both styles done: nothing is generated again
    again = run_plan(None, db=db, resume=summary.run_id, progress=False, n_threads=1, measure_bandwidth=False)
    assert again.status == "finished" and again.samples_written == 0
    assert len(_rows(db)) == 6
