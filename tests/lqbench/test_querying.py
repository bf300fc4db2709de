"""`lqbench.querying` and the `lqbench query` command against a synthetic results file."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from lqbench import querying
from lqbench.errors import LqbenchError
from lqbench.paths import queries_dir


@pytest.fixture(scope="module")
def fixture_db(analysis_db):
    return analysis_db


def cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run `lqbench ARGS` in-process, as the console script does; return (exit code, stdout, stderr)."""
    from lqbench.cli import main

    monkeypatch.setattr(sys, "argv", ["lqbench", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ headers
ALL_QUERIES = sorted(p.stem for p in queries_dir().glob("*.sql"))


def test_every_query_file_is_documented():
    queries = querying.list_queries()
    assert [q.name for q in queries] == ALL_QUERIES and "pass_at_1_by_model_quant" in ALL_QUERIES
    for q in queries:
        text = q.sql
        for key in ("-- purpose:", "-- params:", "-- returns:", "-- example:"):
            assert key in text, f"{q.name} lacks {key}"
        assert q.purpose and q.returns and f"lqbench query {q.name}" in q.example
        querying.check_read_only(q.sql)  # one SELECT statement


def test_header_parsing_types_defaults_and_continuations():
    q = querying.parse_query("x", (
        "-- purpose: first part\n"
        "--   second part\n"
        "-- params: $k INTEGER = 3  the k\n"
        "-- params: $who VARCHAR  required one\n"
        "-- returns: rows\n"
        "-- example: lqbench query x\n"
        "SELECT $k AS k, $who AS who -- $not_a_param\n"
    ))
    assert q.purpose == "first part second part"
    assert q.param("k").default == 3 and not q.param("k").required
    assert q.param("who").required and q.param("who").doc == "required one"
    assert querying.bind_params(q, ["who=ann"]) == {"k": 3, "who": "ann"}
    assert querying.bind_params(q, {"who": "bo", "k": "5"}) == {"k": 5, "who": "bo"}
    with pytest.raises(LqbenchError, match="needs --param who"):
        querying.bind_params(q, [])
    with pytest.raises(LqbenchError, match="no parameter \\$nope"):
        querying.bind_params(q, ["who=a", "nope=1"])
    with pytest.raises(LqbenchError, match="not a valid INTEGER"):
        querying.bind_params(q, ["who=a", "k=three"])


def test_undeclared_or_malformed_params_are_refused():
    with pytest.raises(LqbenchError, match="declares no such parameter"):
        querying.parse_query("bad", "-- purpose: p\n-- params: none\nSELECT $x")
    with pytest.raises(LqbenchError, match="bad '-- params:' line"):
        querying.parse_query("bad", "-- params: $x WHATEVER = 1\nSELECT $x")


@pytest.mark.parametrize("sql", [
    "INSERT INTO runs VALUES (1)", "DROP TABLE samples", "COPY samples TO '/tmp/x.csv'",
    "ATTACH 'x.duckdb'", "SELECT 1; DELETE FROM samples", "UPDATE samples SET passed = true",
])
def test_writes_are_refused(sql):
    with pytest.raises(LqbenchError, match="refused|one statement"):
        querying.resolve(sql)


def test_names_and_sql_are_told_apart(tmp_path):
    assert querying.resolve("pass_at_1_by_model_quant").path.name == "pass_at_1_by_model_quant.sql"
    assert querying.resolve("SELECT 1").name == "(sql)"
    assert querying.resolve("with t as (select 1 as a) select a from t").name == "(sql)"
    with pytest.raises(LqbenchError, match="unknown query 'no_such_query'"):
        querying.resolve("no_such_query")
    own = tmp_path / "mine.sql"
    own.write_text("-- purpose: mine\nSELECT 42 AS answer\n")
    assert querying.resolve(str(own)).name == "mine"


# ------------------------------------------------------------------ running
def test_pass_at_1_matches_a_python_recount(fixture_db):
    columns, rows = querying.run_query(fixture_db.path, "pass_at_1_by_model_quant")
    style = columns.index("prompt_style")
    result = {(r[0], r[1], r[style]): dict(zip(columns, r)) for r in rows}
    # 2 families x 4 quants, one row each, and one more for each config also run in chat style
    assert len(result) == 8 + len(fixture_db.chat_configs)
    import duckdb

    con = duckdb.connect(str(fixture_db.path), read_only=True)
    raw = con.execute(
        "SELECT m.name, m.quant, s.prompt_style, s.run_id, s.replica, s.suite, s.task_id, s.passed, s.gen_tokens,"
        " s.gen_ms FROM samples s JOIN models m USING (model_id)").fetchall()
    con.close()
    units: dict = {}
    for name, quant, prompt_style, run, replica, suite, task, passed, *_ in raw:
        units.setdefault((name, quant, prompt_style), {}).setdefault((suite, task), {}).setdefault(
            (run, replica), []).append(passed)
    for key, tasks in units.items():
        per_task = [sum(sum(u) / len(u) for u in us.values()) / len(us) for us in tasks.values()]
        expected = sum(per_task) / len(per_task)
        assert result[key]["pass_at_1"] == pytest.approx(expected, abs=1e-4)
        assert result[key]["n_tasks"] == fixture_db.n_tasks
        gen = [(t, ms) for n, q, st, *_rest, t, ms in raw if (n, q, st) == key]
        assert result[key]["gen_tok_s"] == pytest.approx(sum(t for t, _ in gen) * 1000 / sum(ms for _, ms in gen), rel=1e-3)
    # the synthetic 2-bit quants collapse: below their own 8-bit in both families
    for family in ("gemma-3-270m", "tinycoder-1b"):
        assert result[(family, "Q2_K", "completion")]["pass_at_1"] < result[(family, "Q8_0", "completion")]["pass_at_1"]


def test_run_id_param_filters(fixture_db):
    _, every = querying.run_query(fixture_db.path, "pass_at_1_by_model_quant")
    columns, sampled = querying.run_query(fixture_db.path, "pass_at_1_by_model_quant", {"run_id": "run-sampled"})
    assert len(sampled) == 2 and len(every) == 8 + len(fixture_db.chat_configs)
    n_samples = columns.index("n_samples")
    assert all(r[n_samples] == fixture_db.n_tasks * 5 for r in sampled)


@pytest.mark.parametrize("name", ALL_QUERIES)
def test_every_query_runs_on_the_fixture(analysis_db_with_import, name):
    columns, rows = querying.run_query(analysis_db_with_import.path, name)
    assert columns and rows, f"{name} returned no rows on the fixture DB"


def test_missing_db_is_one_clear_error(tmp_path):
    with pytest.raises(LqbenchError, match="no results file"):
        querying.run_query(tmp_path / "absent.duckdb", "pass_at_1_by_model_quant")


# ------------------------------------------------------------------ CLI
def test_cli_lists_queries(monkeypatch, capsys):
    code, out, _ = cli(monkeypatch, capsys, "query")
    assert code == 0
    for name in ALL_QUERIES:
        assert name in out
    code, out, _ = cli(monkeypatch, capsys, "query", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][0] == "name" and sorted(r[0] for r in rows[1:]) == ALL_QUERIES


def test_cli_formats(fixture_db, monkeypatch, capsys, tmp_path):
    db = fixture_db.path
    code, out, _ = cli(monkeypatch, capsys, "query", "pass_at_1_by_model_quant", "--db", db, "--format", "json")
    records = json.loads(out)
    n_rows = 8 + len(fixture_db.chat_configs)
    assert code == 0 and len(records) == n_rows and {"model", "quant", "pass_at_1", "gen_tok_s"} <= set(records[0])
    code, out, _ = cli(monkeypatch, capsys, "query", "pass_at_1_by_model_quant", "--db", db, "-f", "csv")
    assert code == 0 and out.splitlines()[0].startswith("model,quant,bits_per_weight")
    code, out, _ = cli(monkeypatch, capsys, "query", "pass_at_1_by_model_quant", "--db", db)
    assert code == 0 and "tinycoder-1b" in out and "Q4_K_M" in out
    code, out, _ = cli(monkeypatch, capsys, "query", "SELECT count(*) AS n FROM samples WHERE run_id = $r",
                       "--db", db, "--param", "r=run-sampled", "-f", "csv")
    assert code == 0 and out.split() == ["n", str(2 * 5 * fixture_db.n_tasks)]
    pq = tmp_path / "p1.parquet"
    code, out, _ = cli(monkeypatch, capsys, "query", "pass_at_1_by_model_quant", "--db", db, "-f", "parquet",
                       "--out", pq)
    import duckdb

    assert code == 0 and duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [str(pq)]).fetchone()[0] == n_rows


def test_cli_export_tables(fixture_db, monkeypatch, capsys, tmp_path):
    code, out, _ = cli(monkeypatch, capsys, "query", "--db", fixture_db.path, "--export", tmp_path / "x")
    assert code == 0
    import duckdb

    con = duckdb.connect()
    n = con.execute("SELECT count(*) FROM read_parquet(?)", [str(tmp_path / "x" / "samples.parquet")]).fetchone()[0]
    src = duckdb.connect(str(fixture_db.path), read_only=True)
    assert n == src.execute("SELECT count(*) FROM samples").fetchone()[0]
    src.close()
    assert (tmp_path / "x" / "task_outcomes.parquet").exists()  # views too
    code, out, _ = cli(monkeypatch, capsys, "query", "--db", fixture_db.path, "--export", tmp_path / "y",
                       "--table", "nodes")
    assert code == 0 and [p.name for p in (tmp_path / "y").iterdir()] == ["nodes.parquet"]


@pytest.mark.parametrize("args, message", [
    (["query", "no_such_query"], "unknown query 'no_such_query'"),
    (["query", "DELETE FROM samples"], "refused"),
    (["query", "pass_at_1_by_model_quant", "--format", "xml"], "--format must be one of"),
    (["query", "pass_at_1_by_model_quant", "--format", "parquet"], "needs --out"),
    (["query", "pass_at_1_by_model_quant", "--param", "nope=1"], "no parameter $nope"),
    (["query", "SELECT $x AS x"], "needs --param x"),
])
def test_cli_bad_input_is_one_line_exit_2(fixture_db, monkeypatch, capsys, args, message):
    code, out, err = cli(monkeypatch, capsys, *args, "--db", fixture_db.path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_missing_db_and_missing_required_param(monkeypatch, capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, "query", "pass_at_1_by_model_quant", "--db", tmp_path / "none.duckdb")
    assert code == 2 and "no results file" in err and len(err.strip().splitlines()) == 1
    qdir = tmp_path / "queries"
    qdir.mkdir()
    (qdir / "needs_k.sql").write_text("-- purpose: p\n-- params: $k INTEGER  the k\n-- returns: r\n"
                                      "-- example: lqbench query needs_k --param k=1\nSELECT $k AS k\n")
    monkeypatch.setenv("LQBENCH_QUERIES", str(qdir))
    code, _, err = cli(monkeypatch, capsys, "query", "needs_k", "--db", tmp_path / "none.duckdb")
    assert code == 2 and "needs --param k" in err
