"""`lqbench import`: small files of every format, written here, imported into a real DuckDB file and
rescored by the real scorer pool (lupa)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from lqbench.errors import LqbenchError
from lqbench.importers.importer import ImportOptions, import_paths, imported_model_row
from lqbench.querying import run_query

LQBENCH = [sys.executable, "-m", "lqbench.cli"]
STOPS = ["\nlocal", "\nfunction", "\n--", "\n\n"]


def _tests(name: str, asserts: list[str]) -> str:
    body = "".join(f"    lu.assertEquals({a})\n" for a in asserts)
    return (f"lu = require('luaunit')\n\nfunction test_humaneval()\nlocal candidate = {name}\n{body}end\n\n"
            "os.exit(lu.LuaUnit.run())\n")


ADD = {"name": "HumanEval_1_add", "language": "lua",
       "prompt": "-- Add two numbers.\n-- >>> add(1, 2)\n-- 3\nlocal function add(a, b)\n",
       "tests": _tests("add", ["candidate(1, 2), 3", "candidate(-1, 1), 0"]), "stop_tokens": STOPS}
DOUBLE = {"name": "mbpp_2_double_it", "language": "lua",
          "prompt": "-- Twice x.\n-- >>> double_it(4)\n-- 8\nlocal function double_it(x)\n",
          "tests": _tests("double_it", ["candidate(4), 8", "candidate(0), 0"]), "stop_tokens": STOPS}
RIGHT_ADD, WRONG_ADD, BROKEN_ADD = "    return a + b\nend\n", "    return a - b\nend\n", "    return a +\nend\n"
RIGHT_DOUBLE, WRONG_DOUBLE = "    return x * 2\nend\n", "    return x + 2\nend\n"


def _program(task: dict, completion: str) -> str:
    return task["prompt"] + completion + "\n" + task["tests"]


def _write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(value, indent=1).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _suite_file(path: Path, tasks: list[dict]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return path


def _rows(db: Path, sql: str, params=None) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _options(**kw) -> ImportOptions:
    kw.setdefault("source", "tests")
    kw.setdefault("jobs", 1)
    return ImportOptions(**kw)


def _cli(args, timeout=120):
    return subprocess.run(LQBENCH + ["import", *map(str, args)], capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------- MultiPL-E completion files
def test_a_multipl_e_completion_file_becomes_an_imported_run(tmp_path):
    f = _write_json(tmp_path / "HumanEval_1_add.json.gz",
                    {**ADD, "temperature": 0.8, "top_p": 0.95, "max_tokens": 512,
                     "completions": [RIGHT_ADD, WRONG_ADD, BROKEN_ADD]})
    db = tmp_path / "r.duckdb"
    summary = import_paths([f], db, _options(model="coder-1b", quant="Q4_K_M", source="https://example.org/x"))
    assert summary.n_programs == 3 and not summary.issues and summary.run_id

    samples = _rows(db, "SELECT * FROM samples ORDER BY sample_idx")
    assert [s["sample_idx"] for s in samples] == [0, 1, 2]
    assert [s["status"] for s in samples] == ["pass", "assertion_failure", "syntax_error"]
    assert [s["completion"] for s in samples] == [RIGHT_ADD, WRONG_ADD, BROKEN_ADD]
    for s in samples:
        assert s["node_id"] == "imported" and s["suite"] == "humaneval-lua" and s["temperature"] == 0.8
        assert all(s[c] is None for c in ("seed", "prompt_tokens", "gen_tokens", "prompt_ms", "gen_ms", "ttft_ms",
                                          "wall_ms", "peak_rss_mb", "shard_id", "n_threads"))
        assert s["score_ms"] is not None and s["score_ms"] >= 0

    run = _rows(db, "SELECT * FROM runs")[0]
    assert run["status"] == "imported" and run["plan_name"] == "import: https://example.org/x"
    assert json.loads(run["config_json"])["import"]["source"] == "https://example.org/x"
    model = _rows(db, "SELECT * FROM models")[0]
    want = hashlib.sha256(b"lqbench-import\0coder-1b\0q4_k_m\0https://example.org/x").hexdigest()
    assert (model["name"], model["quant"], model["sha256"], model["model_id"]) == ("coder-1b", "q4_k_m", want, want[:16])
    assert model["path"] == "import:https://example.org/x" and model["file_bytes"] is None
    assert model == {**imported_model_row("coder-1b", "q4_k_m", "https://example.org/x"),
                     "requantized": None, "architecture": None}
    files = _rows(db, "SELECT * FROM import_files")
    assert [(x["sha256"], x["format"], x["n_programs"]) for x in files] == [
        (hashlib.sha256(f.read_bytes()).hexdigest(), "multipl-e-completions", 3)]
    task = _rows(db, "SELECT * FROM tasks")[0]
    assert (task["suite"], task["task_id"], task["prompt"], task["tests"]) == ("humaneval-lua", ADD["name"],
                                                                               ADD["prompt"], ADD["tests"])
    # sample_idx per completion: pass@k over the 3 samples (1 correct): pass@2 = 1 - C(2,2)/C(3,2) = 2/3
    cols, rows = run_query(db, "pass_at_k_by_model_quant_suite", {"k": "2", "resamples": "0"})
    overall = [dict(zip(cols, r)) for r in rows if r[cols.index("suite")] == "(all)"][0]
    assert overall["pass_at_k"] == pytest.approx(0.6667, abs=1e-4) and overall["n_samples"] == 3


def test_importing_the_same_files_again_adds_nothing_and_new_files_add_only_theirs(tmp_path):
    a = _write_json(tmp_path / "in" / "HumanEval_1_add.json", {**ADD, "completions": [RIGHT_ADD, WRONG_ADD]})
    db = tmp_path / "r.duckdb"
    first = import_paths([a], db, _options(model="m"))
    assert first.n_programs == 2
    before = _rows(db, "SELECT count(*) AS n FROM samples")[0]["n"]

    copy = tmp_path / "elsewhere.json"  # the same bytes under another name count as the same file
    copy.write_bytes(a.read_bytes())
    again = import_paths([a, copy], db, _options(model="m"))
    assert again.run_id is None and again.n_programs == 0 and again.n_already == 2
    assert _rows(db, "SELECT count(*) AS n FROM samples")[0]["n"] == before
    assert _rows(db, "SELECT count(*) AS n FROM runs")[0]["n"] == 1

    # under another source it is another model: recorded again, with a note saying so
    other = import_paths([a], db, _options(model="m", source="elsewhere"))
    assert other.n_programs == 2 and len(other.notes) == 1
    assert other.notes[0].startswith(f"{a} was imported before (run {first.run_id}, source 'tests')")

    b = _write_json(tmp_path / "in" / "mbpp_2_double_it.json", {**DOUBLE, "completions": [RIGHT_DOUBLE]})
    more = import_paths([tmp_path / "in"], db, _options(model="m"))
    assert (more.n_programs, more.n_already) == (1, 2)
    assert _rows(db, "SELECT suite, task_id FROM samples WHERE run_id = ?", [more.run_id]) == [
        {"suite": "mbpp-lua", "task_id": DOUBLE["name"]}]
    assert b.exists()


# ----------------------------------------------------------------- MultiPL-E results files
def test_a_results_file_keeps_the_original_verdicts_and_the_queries_compare_them(tmp_path):
    results = [
        {"program": _program(ADD, RIGHT_ADD), "status": "OK", "exit_code": 0, "stdout": "", "stderr": ""},
        {"program": _program(ADD, WRONG_ADD), "status": "Exception", "exit_code": 1, "stdout": "", "stderr": "x"},
        # the original harness said OK to a program that fails its tests: a disagreement to find
        {"program": _program(ADD, BROKEN_ADD), "status": "OK", "exit_code": 0, "stdout": "", "stderr": ""},
    ]
    f = _write_json(tmp_path / "HumanEval_1_add.results.json.gz", {**ADD, "results": results})
    db = tmp_path / "r.duckdb"
    summary = import_paths([f], db, _options(model="m", quant="q8_0"))
    assert (summary.compared, summary.agreed) == (3, 2)

    extra = _rows(db, "SELECT * FROM import_samples ORDER BY sample_idx")
    assert [x["original_status"] for x in extra] == ["OK", "Exception", "OK"]
    assert [x["original_passed"] for x in extra] == [True, False, True]
    assert [x["original_exit_code"] for x in extra] == [0, 1, 0]
    # the programs were prompt + completion + tests: the completion is recovered, the program not stored twice
    assert all(x["scored_program"] is None for x in extra)
    assert [s["completion"] for s in _rows(db, "SELECT completion FROM samples ORDER BY sample_idx")] == [
        RIGHT_ADD, WRONG_ADD, BROKEN_ADD]

    cols, rows = run_query(db, "import_agreement")
    agreement = [dict(zip(cols, r)) for r in rows]
    assert len(agreement) == 1
    assert {k: agreement[0][k] for k in ("harness", "n_compared", "n_agree", "both_pass", "both_fail",
                                          "only_ours_pass", "only_theirs_pass")} == {
        "harness": "multipl-e", "n_compared": 3, "n_agree": 2, "both_pass": 1, "both_fail": 1,
        "only_ours_pass": 0, "only_theirs_pass": 1}
    cols, rows = run_query(db, "import_disagreements")
    bad = [dict(zip(cols, r)) for r in rows]
    assert len(bad) == 1 and bad[0]["sample_idx"] == 2 and bad[0]["our_status"] == "syntax_error"
    assert bad[0]["origin"].startswith(f"{f}:") and bad[0]["origin"].endswith("#2")


def test_a_results_file_without_programs_takes_the_completions_beside_it_once(tmp_path):
    """bigcode-harness layout: completions start with the prompt; results carry only verdicts. Given a folder
    with both files, the programs are imported once (through the results file), not twice."""
    folder = tmp_path / "harness_out"
    folder.mkdir()
    full = [ADD["prompt"].strip() + "\n" + c for c in (RIGHT_ADD, WRONG_ADD)]
    _write_json(folder / "HumanEval_1_add.json", {**ADD, "completions": full})
    _write_json(folder / "HumanEval_1_add.results.json", {**ADD, "results": [
        {"status": "OK", "exit_code": 0}, {"status": "OK", "exit_code": 0}]})
    db = tmp_path / "r.duckdb"
    summary = import_paths([folder], db, _options(model="m"))
    assert summary.n_programs == 2 and not summary.issues
    rows = _rows(db, "SELECT s.status, x.original_status, x.format FROM samples s JOIN import_samples x "
                     "USING (run_id, model_id, suite, task_id, sample_idx) ORDER BY sample_idx")
    assert rows == [{"status": "pass", "original_status": "OK", "format": "multipl-e-results"},
                    {"status": "assertion_failure", "original_status": "OK", "format": "multipl-e-results"}]
    assert sorted(r["format"] for r in _rows(db, "SELECT format FROM import_files")) == [
        "multipl-e-completions", "multipl-e-results"]


# ----------------------------------------------------------------- bigcode generations
def test_bigcode_generations_are_read_against_their_suite_and_extra_tasks_are_reported(tmp_path):
    suite = _suite_file(tmp_path / "tiny-lua.jsonl", [ADD, DOUBLE])
    gens = [[ADD["prompt"].strip() + "\n" + RIGHT_ADD, ADD["prompt"].strip() + "\n" + WRONG_ADD],
            [DOUBLE["prompt"].strip() + "\n" + RIGHT_DOUBLE,
             ADD["prompt"].strip() + "\n" + RIGHT_ADD],  # the wrong task's program: reported
            ["local function third()\nend"]]  # past the suite's end: reported
    f = tmp_path / "generations_multiple-lua.json"
    f.write_text("[\n" + ",\n".join(json.dumps(g) for g in gens) + "\n]\n")
    db = tmp_path / "r.duckdb"
    summary = import_paths([f], db, _options(model="m", suites=[str(suite)]))
    assert summary.n_programs == 3
    issues = [str(i) for i in summary.issues]
    assert len(issues) == 2
    assert issues[0].startswith(f"{f}:3#1: ") and "signature" in issues[0]
    assert issues[1].startswith(f"{f}:4: ") and "has no task" in issues[1]
    rows = _rows(db, "SELECT suite, task_id, sample_idx, status FROM samples ORDER BY task_id, sample_idx")
    assert rows == [
        {"suite": "tiny-lua", "task_id": ADD["name"], "sample_idx": 0, "status": "pass"},
        {"suite": "tiny-lua", "task_id": ADD["name"], "sample_idx": 1, "status": "assertion_failure"},
        {"suite": "tiny-lua", "task_id": DOUBLE["name"], "sample_idx": 0, "status": "pass"}]
    assert {r["task_id"] for r in _rows(db, "SELECT task_id FROM tasks")} == {ADD["name"], DOUBLE["name"]}
    assert _rows(db, "SELECT n_skipped FROM imports")[0]["n_skipped"] == 2
    files = {r["format"]: r for r in _rows(db, "SELECT format, sha256, n_programs FROM import_files")}
    assert files["suite"]["sha256"] == hashlib.sha256(suite.read_bytes()).hexdigest()
    assert files["bigcode-generations"]["n_programs"] == 3


def test_bigcode_generations_need_exactly_one_suite(tmp_path):
    f = tmp_path / "generations.json"
    f.write_text(json.dumps([[ADD["prompt"] + RIGHT_ADD]]))
    with pytest.raises(LqbenchError, match="exactly one --suite"):
        import_paths([f], tmp_path / "r.duckdb", _options(model="m"))
    assert not (tmp_path / "r.duckdb").exists()


# ----------------------------------------------------------------- program folders + verdicts CSV
def test_a_program_folder_named_by_a_pattern_with_a_verdicts_csv(tmp_path):
    suite = _suite_file(tmp_path / "tiny-lua.jsonl", [ADD, DOUBLE])
    root = tmp_path / "study"
    (root / "tiny-lua").mkdir(parents=True)
    files = {
        "tiny_coder_HumanEval_1_add.lua": _program(ADD, RIGHT_ADD),  # a whole program with its tests
        "tiny_coder_mbpp_2_double_it.lua": DOUBLE["prompt"] + WRONG_DOUBLE,  # no tests: they are appended
        "big_coder_HumanEval_1_add.lua": _program(ADD, WRONG_ADD),
        "big_coder_mbpp_2_double_it.lua": "local function double_it(x) return 2 * x end\n" + DOUBLE["tests"],
        "big_coder_HumanEval_99_nope.lua": _program(ADD, RIGHT_ADD),  # a task the suite does not have
    }
    for name, text in files.items():
        (root / "tiny-lua" / name).write_text(text)
    (root / "README.md").write_text("what these are\n")
    csv_file = tmp_path / "verdicts.csv"
    csv_file.write_text("file,passed\n"
                        "tiny-lua/tiny_coder_HumanEval_1_add.lua,true\n"
                        "tiny-lua/big_coder_mbpp_2_double_it.lua,false\n"  # we pass it: a disagreement
                        "tiny-lua/missing.lua,true\n")  # matches nothing: reported
    db = tmp_path / "r.duckdb"
    summary = import_paths([root], db, _options(suites=[str(suite)], pattern="{suite}/{model}_{task}.lua",
                                                quant="q2_k", verdicts=csv_file))
    assert summary.n_programs == 4
    assert summary.ignored == [str(root / "README.md")]
    issues = [str(i) for i in summary.issues]
    assert len(issues) == 2
    assert issues[0].startswith(str(root / "tiny-lua" / "big_coder_HumanEval_99_nope.lua")) and "HumanEval_99_nope" in issues[0]
    assert issues[1].startswith(f"{csv_file}:4: ")
    assert sorted(summary.models) == [("big_coder", "q2_k"), ("tiny_coder", "q2_k")]
    rows = _rows(db, "SELECT m.name, s.task_id, s.status, x.scored_program IS NULL AS plain, x.original_passed "
                     "FROM samples s JOIN models m USING (model_id) JOIN import_samples x "
                     "USING (run_id, model_id, suite, task_id, sample_idx) ORDER BY m.name, s.task_id")
    assert rows == [
        {"name": "big_coder", "task_id": ADD["name"], "status": "assertion_failure", "plain": True, "original_passed": None},
        {"name": "big_coder", "task_id": DOUBLE["name"], "status": "pass", "plain": False, "original_passed": False},
        {"name": "tiny_coder", "task_id": ADD["name"], "status": "pass", "plain": True, "original_passed": True},
        {"name": "tiny_coder", "task_id": DOUBLE["name"], "status": "assertion_failure", "plain": True,
         "original_passed": None}]
    cols, got = run_query(db, "import_agreement")
    assert [(r[cols.index("model")], r[cols.index("n_compared")], r[cols.index("n_agree")]) for r in got] == [
        ("big_coder", 1, 0), ("tiny_coder", 1, 1)]


def test_a_pattern_sample_field_orders_sample_idx(tmp_path):
    suite = _suite_file(tmp_path / "tiny-lua.jsonl", [ADD])
    d = tmp_path / "m"
    d.mkdir()
    for k, completion in [(10, RIGHT_ADD), (2, WRONG_ADD), (7, BROKEN_ADD)]:
        (d / f"{ADD['name']}-{k}.lua").write_text(ADD["prompt"] + completion)
    db = tmp_path / "r.duckdb"
    import_paths([d], db, _options(model="m", suites=[str(suite)], pattern="{task}-{sample}.lua"))
    rows = _rows(db, "SELECT sample_idx, status FROM samples ORDER BY sample_idx")
    assert [r["status"] for r in rows] == ["assertion_failure", "syntax_error", "pass"]


# ----------------------------------------------------------------- refusals
def test_an_imported_model_cannot_take_a_measured_models_name(tmp_path):
    from lqbench.store import ResultStore

    db = tmp_path / "r.duckdb"
    ResultStore(db).upsert_models([{"model_id": "abc", "name": "gemma-3-270m", "quant": "q4_k_m", "path": "/m.gguf",
                                    "sha256": "ab" * 32, "file_bytes": 1}])
    f = _write_json(tmp_path / "HumanEval_1_add.json", {**ADD, "completions": [RIGHT_ADD]})
    with pytest.raises(LqbenchError, match="measured model"):
        import_paths([f], db, _options(model="gemma-3-270m", quant="q4_k_m"))
    assert _rows(db, "SELECT count(*) AS n FROM samples")[0]["n"] == 0


def _seeded_db(tmp_path) -> tuple[Path, str]:
    f = _write_json(tmp_path / "seed" / "HumanEval_1_add.json", {**ADD, "completions": [RIGHT_ADD]})
    db = tmp_path / "r.duckdb"
    import_paths([f], db, _options(model="seed"))
    return db, hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.mark.parametrize("case, expected", [
    ("corrupt-json", "not valid JSON"),
    ("lua-without-pattern", "need --pattern"),
    ("unknown-format", "not an import format"),
    ("missing-path", "no such file or directory"),
    ("no-model", "no model"),
    ("bad-pattern", "unknown field {modle}"),
    ("bad-verdicts", "needs a passed or status column"),
])
def test_bad_input_is_one_line_exit_2_and_the_db_unchanged(tmp_path, case, expected):
    db, before = _seeded_db(tmp_path)
    good = _write_json(tmp_path / "HumanEval_1_add.json", {**ADD, "completions": [WRONG_ADD]})
    suite = _suite_file(tmp_path / "tiny-lua.jsonl", [ADD])
    lua = tmp_path / "HumanEval_1_add.lua"
    lua.write_text(_program(ADD, RIGHT_ADD))
    args = {
        "corrupt-json": [_write_text(tmp_path / "x.json", '{"name": "a",\n "completions": [')],
        "lua-without-pattern": [good, lua, "--suite", suite],
        "unknown-format": [good, _write_text(tmp_path / "notes.txt", "hi")],
        "missing-path": [good, tmp_path / "nowhere.json"],
        "no-model": [good],
        "bad-pattern": [lua, "--suite", suite, "--pattern", "{modle}_{task}.lua"],
        "bad-verdicts": [good, "--verdicts", _write_text(tmp_path / "v.csv", "file,score\na.lua,1\n")],
    }[case]
    proc = _cli([*args, *([] if case == "no-model" else ["--model", "other"]), "--db", db])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_task_the_suite_lacks_is_reported_file_line_exit_1_and_strict_refuses(tmp_path):
    db, before = _seeded_db(tmp_path)
    suite = _suite_file(tmp_path / "tiny-lua.jsonl", [ADD])
    good = _write_json(tmp_path / "a" / "HumanEval_1_add.json", {**ADD, "completions": [WRONG_ADD]})
    stray = _write_json(tmp_path / "a" / "mbpp_2_double_it.json", {**DOUBLE, "completions": [RIGHT_DOUBLE]})

    strict = _cli([tmp_path / "a", "--model", "x", "--suite", suite, "--db", db, "--strict"])
    assert strict.returncode == 2 and "--strict" in strict.stderr and f"{stray}:" in strict.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before

    proc = _cli([tmp_path / "a", "--model", "x", "--suite", suite, "--db", db])
    assert proc.returncode == 1, proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and skipped[0].startswith(f"skipped {stray}:2: names task 'mbpp_2_double_it'")
    assert "imported 1 program(s) of x unknown" in proc.stderr
    assert _rows(db, "SELECT task_id FROM samples s JOIN models m USING (model_id) WHERE m.name = 'x'") == [
        {"task_id": ADD["name"]}]
    assert good.exists()


# ----------------------------------------------------------------- queries and report
def test_imported_rows_sit_next_to_measured_ones_but_not_in_speed(tmp_path):
    from lqbench.records import SampleRecord, utc_now
    from lqbench.report import build_report
    from lqbench.store import ResultStore

    db = tmp_path / "r.duckdb"
    store = ResultStore(db)
    store.begin_run("measured", {"name": "m"}, "m")
    store.upsert_models([{"model_id": "g4", "name": "gemma-3-270m", "quant": "q4_k_m", "path": "/g.gguf",
                          "sha256": "cd" * 32, "file_bytes": 250_000_000, "bits_per_weight": 4.9}])
    store.upsert_nodes([{"node_id": "laptop1", "hostname": "laptop1", "mem_bandwidth_gbs": 20.0}])
    store.write_batch([SampleRecord(
        run_id="measured", node_id="laptop1", model_id="g4", suite="humaneval-lua", task_id=ADD["name"],
        sample_idx=0, replica="", seed=1, completion=RIGHT_ADD, status="pass", passed=True, error=None,
        prompt_tokens=20, gen_tokens=10, prompt_ms=50.0, gen_ms=400.0, ttft_ms=60.0, wall_ms=460.0, score_ms=1.0,
        peak_rss_mb=300.0, created_at=utc_now(), shard_id="s", suite_version="v", temperature=0.0,
        finish_reason="stop", n_threads=2)])
    store.finish_run("measured", "finished")
    f = _write_json(tmp_path / "HumanEval_1_add.json", {**ADD, "completions": [RIGHT_ADD, WRONG_ADD]})
    import_paths([f], db, _options(model="starcoder2-7b", quant="q8_0", source="multipl-e-published"))

    cols, rows = run_query(db, "pass_at_1_by_model_quant")
    p1 = {r[cols.index("model")]: dict(zip(cols, r)) for r in rows}
    assert p1["gemma-3-270m"]["origin"] == "measured" and p1["gemma-3-270m"]["gen_tok_s"] == 25.0
    assert p1["starcoder2-7b"]["origin"] == "imported: multipl-e-published"
    assert p1["starcoder2-7b"]["pass_at_1"] == 0.5 and p1["starcoder2-7b"]["gen_tok_s"] is None
    for name in ("efficiency_by_node_model_quant", "speed_across_nodes_normalized"):
        cols, rows = run_query(db, name)
        assert [r[cols.index("model")] for r in rows] == ["gemma-3-270m"], name
    cols, rows = run_query(db, "sweep_cost_projection")
    assert [r[cols.index("node_id")] for r in rows if r[cols.index("node_id")]] == ["laptop1"]

    result = build_report(db, tmp_path / "report.html")
    html = result.path.read_text()
    speed = html[html.index('<section id="speed">'):]
    speed = speed[:speed.index("</section>")]
    assert "gemma-3-270m" in speed and "starcoder2-7b" not in speed
    imported = html[html.index('<section id="imported">'):]
    imported = imported[:imported.index("</section>")]
    assert "multipl-e-published" in imported and "starcoder2-7b q8_0" in imported
    assert 'href="#imported"' in html
    accuracy = html[html.index('<section id="accuracy">'):]
    assert "imported: multipl-e-published" in accuracy[:accuracy.index("</section>")]
    nodes_card = html[html.index(">nodes<"):][:200]
    assert ">1<" in nodes_card  # the laptop; the imported samples' pseudo-node is no laptop


def test_a_report_without_imports_has_no_imported_section(tmp_path):
    from lqbench.report import build_report
    from lqbench.store import ResultStore

    db = tmp_path / "r.duckdb"
    ResultStore(db).ensure()
    html = build_report(db, tmp_path / "report.html").path.read_text()
    assert 'id="imported"' not in html and 'href="#imported"' not in html


def test_the_import_queries_on_the_analysis_fixture(analysis_db_with_import):
    path = analysis_db_with_import.path
    cols, rows = run_query(path, "import_agreement")
    (row,) = [dict(zip(cols, r)) for r in rows]
    n = analysis_db_with_import.n_tasks
    assert (row["model"], row["source"], row["n_compared"], row["n_agree"]) == (
        "published-coder-7b", "fixture-published", n, n - 2)
    assert row["only_ours_pass"] + row["only_theirs_pass"] == 2
    cols, rows = run_query(path, "import_disagreements")
    assert sorted(r[cols.index("task_id")] for r in rows) == ["hu_02", "lq_01"]
    # no file size for an imported model: it cannot be placed against size, and is left out there
    cols, rows = run_query(path, "accuracy_vs_size_pareto")
    # 8 completion configs and the fixture's 2 chat configs
    assert "published-coder-7b" not in [r[cols.index("model")] for r in rows] and len(rows) == 10
    cols, rows = run_query(path, "pass_at_1_by_model_quant", {"run_id": "run-imported"})
    assert [(r[cols.index("model")], r[cols.index("origin")]) for r in rows] == [
        ("published-coder-7b", "imported: fixture-published")]


def test_a_pattern_splits_names_by_the_suites_task_ids():
    from lqbench.importers.programs import Pattern

    p = Pattern("{suite}/{model}_{task}.lua", [ADD["name"], DOUBLE["name"]], ["tiny-lua"])
    assert p.match(Path("/x/tiny-lua/big_coder_v2_HumanEval_1_add.lua")) == (
        {"suite": "tiny-lua", "model": "big_coder_v2", "task": ADD["name"]}, None)
    assert "suite 'other' (from the file name) is not one of the given --suite" in p.match(
        Path("/x/other/m_HumanEval_1_add.lua"))[1]
    assert "task 'HumanEval_7_x'" in p.match(Path("/x/tiny-lua/m_HumanEval_7_x.lua"))[1]
    assert "does not match --pattern" in p.match(Path("/x/tiny-lua/nounderscore.lua"))[1]
    for bad, why in [("{model}.lua", "has no {task}"), ("{task}/{modle}.lua", "unknown field {modle}"),
                     ("{task}_{task}.lua", "names {task} twice"), ("/abs/{task}.lua", "relative path pattern")]:
        with pytest.raises(LqbenchError, match=re.escape(why)):
            Pattern(bad, [ADD["name"]], [])


def test_a_verdicts_csv_by_task_and_its_refusals(tmp_path):
    from lqbench.importers.programs import read_verdicts

    f = tmp_path / "v.csv"
    f.write_text("Model,Task,Sample,Status\nm,HumanEval_1_add,0,OK\nm,HumanEval_1_add,1,Exception\n\n")
    rows = read_verdicts(f, f.read_text())
    assert [(r.model, r.task, r.sample, r.status, r.passed, r.where) for r in rows] == [
        ("m", ADD["name"], "0", "OK", True, f"{f}:2"), ("m", ADD["name"], "1", "Exception", False, f"{f}:3")]
    with pytest.raises(LqbenchError, match=re.escape(f"{f}:2: passed is 'maybe'")):
        read_verdicts(f, "task,passed\nt,maybe\n")
    with pytest.raises(LqbenchError, match=re.escape(f"{f}:3: 1 fields, the header has 2")):
        read_verdicts(f, "task,passed\nt,1\nt\n")
