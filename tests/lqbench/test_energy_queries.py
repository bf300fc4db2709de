"""Energy in the results file: migration 004, the shard_energy view, the two named queries and the report's
"Cost in energy" section, on a small results file whose expected answers are computed here by hand."""

from __future__ import annotations

import pytest

from lqbench.querying import run_query
from lqbench.records import SampleRecord, ShardRecord
from lqbench.store import ResultStore

NODES = [dict(node_id="node-a", hostname="laptop-a", cpu_model="Intel Core i7-1185G7", physical_cores=4),
         dict(node_id="node-b", hostname="laptop-b", cpu_model="AMD Ryzen 5 5500U", physical_cores=6)]
MODELS = [dict(model_id="m4", name="coder", quant="Q4_K_M", sha256="4" * 64, file_bytes=400, bits_per_weight=4.85),
          dict(model_id="m8", name="coder", quant="Q8_0", sha256="8" * 64, file_bytes=800, bits_per_weight=8.5)]


def sample(node, model, shard, task, idx, passed, gen_tokens, at, run="r1"):
    return SampleRecord(
        run_id=run, node_id=node, model_id=model, suite="s", task_id=task, sample_idx=idx, replica="", seed=idx,
        completion="", status="pass" if passed else "assertion_failure", passed=passed, error=None,
        prompt_tokens=50, gen_tokens=gen_tokens, prompt_ms=10.0, gen_ms=gen_tokens * 20.0, ttft_ms=30.0,
        wall_ms=gen_tokens * 20.0 + 10, score_ms=1.0, peak_rss_mb=300.0, created_at=at, shard_id=shard,
        suite_version="v1", temperature=0.0, finish_reason="stop", n_threads=4)


def shard(node, model, shard_id, start, end, run="r1", **energy):
    return ShardRecord(run_id=run, shard_id=shard_id, node_id=node, model_id=model, suite="s", n_tasks=4,
                       load_ms=100.0, n_threads=4, started_at=start, finished_at=end, status="finished", **energy)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("energy") / "energy.duckdb"
    store = ResultStore(path)
    store.ensure()
    store.upsert_nodes(NODES)
    store.upsert_models(MODELS)
    store.begin_run("r1", {"plan": "energy"}, "energy")
    t = "2025-06-01 10:00:{:02d}"
    # node-a, Q4_K_M: 4 tasks x 100 tokens, 3 pass, 120 J over 60 s
    a4 = [sample("node-a", "m4", "sh1", f"t{i}", 0, i < 3, 100, t.format(10 + i)) for i in range(4)]
    # node-a, Q8_0: 4 tasks x 100 tokens, 2 pass, 300 J, throttled
    a8 = [sample("node-a", "m8", "sh2", f"t{i}", 0, i < 2, 100, t.format(30 + i)) for i in range(4)]
    # node-a, Q8_0, a sampled shard: 2 tasks x 2 samples x 50 tokens; v0 passes twice, v1 once -> 1.5 tasks
    a8n = [sample("node-a", "m8", "sh3", f"v{i}", k, (i, k) != (1, 1), 50, t.format(45 + 2 * i + k))
           for i in range(2) for k in range(2)]
    # node-b (other tasks: with spread placement a sample key exists once), Q4_K_M: nothing readable there
    b4 = [sample("node-b", "m4", "sh1b", f"u{i}", 0, i < 1, 80, t.format(10 + i)) for i in range(4)]
    # node-b, Q8_0: an attempt that crashed (2 samples, no shard row), then a retry on the same node that
    # metered 40 J over its remaining 2 samples: only the retry's samples are charged.
    crashed = [sample("node-b", "m8", "sh2b", f"u{i}", 0, True, 60, t.format(20 + i)) for i in range(2)]
    retry = [sample("node-b", "m8", "sh2b", f"u{i}", 0, i == 2, 70, t.format(40 + i)) for i in range(2, 4)]
    store.write_batch(a4 + a8 + a8n + b4 + crashed + retry, [
        shard("node-a", "m4", "sh1", t.format(5), t.format(20), energy_j=120.0, energy_method="rapl-package",
              energy_s=60.0, power_source="ac", throttled=False, tg_drift=0.99,
              throttle_evidence="kernel throttle events +0; tg last/first third 0.99"),
        shard("node-a", "m8", "sh2", t.format(25), t.format(40), energy_j=300.0, energy_method="rapl-package",
              energy_s=100.0, power_source="ac", throttled=True, tg_drift=0.8, cpu_mhz_start=3000.0,
              cpu_mhz_end=2100.0, throttle_events=5,
              throttle_evidence="kernel throttle events +5; clock 3000->2100 MHz; tg last/first third 0.80"),
        shard("node-a", "m8", "sh3", t.format(44), t.format(50), energy_j=90.0, energy_method="rapl-package",
              energy_s=30.0, power_source="ac", throttled=False),
        shard("node-b", "m4", "sh1b", t.format(5), t.format(20), energy_method="none",
              energy_note="no RAPL counters under /sys/class/powercap; battery: no battery",
              throttle_evidence="nothing to judge from"),
        shard("node-b", "m8", "sh2b", t.format(39), t.format(50), energy_j=40.0, energy_method="battery",
              energy_s=20.0, power_source="battery", battery_pct_start=80.0, battery_pct_end=79.0),
    ])
    store.finish_run("r1", "finished")
    return path


def records(db, name, params=None):
    cols, rows = run_query(db, name, params)
    return [dict(zip(cols, r)) for r in rows]


def test_energy_per_token_and_per_passed_task(db):
    rows = {(r["node"], r["quant"], r["energy_method"]): r for r in records(db, "energy_per_token_by_node_model_quant")}
    assert set(rows) == {("laptop-a", "Q4_K_M", "rapl-package"), ("laptop-a", "Q8_0", "rapl-package"),
                         ("laptop-b", "Q4_K_M", "none"), ("laptop-b", "Q8_0", "battery")}
    a4 = rows[("laptop-a", "Q4_K_M", "rapl-package")]
    assert (a4["n_shards"], a4["n_samples"], a4["gen_tokens"], a4["tasks_passed"]) == (1, 4, 400, 3)
    assert a4["j_per_token"] == pytest.approx(0.3) and a4["j_per_passed_task"] == pytest.approx(40.0)
    assert a4["avg_watts"] == pytest.approx(2.0) and a4["n_throttled"] == 0 and a4["power_sources"] == "ac"
    a8 = rows[("laptop-a", "Q8_0", "rapl-package")]  # sh2 + sh3
    assert (a8["n_shards"], a8["n_samples"], a8["gen_tokens"], a8["n_throttled"]) == (2, 8, 600, 1)
    assert a8["tasks_passed"] == pytest.approx(2 + 1.5)
    assert a8["j_per_token"] == pytest.approx(390 / 600, abs=1e-4)
    assert a8["j_per_passed_task"] == pytest.approx(390 / 3.5, abs=0.05)
    assert a8["avg_watts"] == pytest.approx(390 / 130, abs=0.01)
    b4 = rows[("laptop-b", "Q4_K_M", "none")]  # an honest blank, not a zero
    assert b4["n_samples"] == 4 and b4["gen_tokens"] == 320
    assert b4["energy_j"] is None and b4["j_per_token"] is None and b4["j_per_passed_task"] is None
    assert b4["avg_watts"] is None and b4["metered_s"] is None
    b8 = rows[("laptop-b", "Q8_0", "battery")]  # the crashed attempt's 2 samples are not charged to the retry
    assert (b8["n_samples"], b8["gen_tokens"], b8["tasks_passed"]) == (2, 140, 1)
    assert b8["j_per_token"] == pytest.approx(40 / 140, abs=1e-4) and b8["j_per_passed_task"] == pytest.approx(40.0)
    assert records(db, "energy_per_token_by_node_model_quant", {"run_id": "nope"}) == []


def test_throttled_shards(db):
    rows = records(db, "throttled_shards")
    assert [r["shard_id"] for r in rows] == ["sh2"]
    r = rows[0]
    assert (r["node"], r["model"], r["quant"], r["throttled"], r["throttle_events"]) == (
        "laptop-a", "coder", "Q8_0", True, 5)
    assert r["gen_tok_s"] == pytest.approx(50.0) and r["avg_watts"] == pytest.approx(3.0)
    assert "clock 3000->2100 MHz" in r["throttle_evidence"]
    every = records(db, "throttled_shards", {"every_shard": True})
    assert [x["shard_id"] for x in every][0] == "sh2" and len(every) == 5
    flags = {x["shard_id"]: x["throttled"] for x in every}
    assert flags == {"sh1": False, "sh2": True, "sh3": False, "sh1b": None, "sh2b": None}


def test_migration_004_keeps_old_shards_as_not_measured(tmp_path):
    import duckdb

    from lqbench.store import db as store_db

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR,"
                " applied_at TIMESTAMP DEFAULT current_timestamp)")
    for version, name, sql in store_db._migrations():
        if version < 4:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
    con.execute("INSERT INTO shards (run_id, shard_id, node_id, model_id, suite, status)"
                " VALUES ('r0', 'old', 'n', 'm', 's', 'finished')")
    con.close()
    ResultStore(path).ensure()
    cols, rows = run_query(path, "SELECT energy_method, energy_j, throttled, n_samples FROM shard_energy")
    assert rows == [("none", None, None, 0)]


def test_report_energy_chart(db, tmp_path):
    from lqbench.report import build_report

    result = build_report(db, tmp_path / "r.html")
    html = result.path.read_text(encoding="utf-8")
    assert 'id="chart-energy"' in html and "Cost in energy" in html
    chart = html[html.index('id="chart-energy"'):]
    chart = chart[:chart.index("</svg>")]
    # laptop-a (rapl-package): a line through Q4_K_M and Q8_0; laptop-b (battery): Q8_0 only, a lone point
    assert chart.count('class="mark line" data-series="laptop-a · coder (rapl-package)"') == 1
    assert chart.count('class="mark point" data-series="laptop-a · coder (rapl-package)"') == 2
    assert chart.count('class="mark point" data-series="laptop-b · coder (battery)"') == 1
    assert chart.count('class="mark line"') == 1 and chart.count('class="mark point"') == 3
    assert "without energy data (method none) on laptop-b" in html
    assert "lqbench query throttled_shards" in html


def test_report_says_method_none_instead_of_an_empty_chart(tmp_path):
    from lqbench.report import build_report

    path = tmp_path / "none.duckdb"
    store = ResultStore(path)
    store.upsert_nodes(NODES[1:])
    store.upsert_models(MODELS[:1])
    store.begin_run("r1", {}, "x")
    store.write_batch([sample("node-b", "m4", "sh", "t0", 0, True, 80, "2025-06-01 10:00:10")],
                      [shard("node-b", "m4", "sh", "2025-06-01 10:00:05", "2025-06-01 10:00:20")])
    html = build_report(path, tmp_path / "none.html").path.read_text(encoding="utf-8")
    assert 'id="chart-energy"' not in html
    assert "no energy data: method none on every node that ran shards (laptop-b)" in html
    empty = tmp_path / "empty.duckdb"
    ResultStore(empty).ensure()
    html = build_report(empty, tmp_path / "empty.html").path.read_text(encoding="utf-8")
    assert "no energy data: no shard with samples recorded yet" in html


def test_energy_query_on_the_analysis_fixture(analysis_db, analysis_fixture):
    """Joules per token recomputed from the fixture's raw samples and its constant watts per node."""
    import duckdb

    con = duckdb.connect(str(analysis_db.path), read_only=True)
    try:
        raw = con.execute("SELECT s.node_id, m.name, m.quant, s.wall_ms, s.score_ms, s.gen_tokens FROM samples s"
                          " JOIN models m USING (model_id)").fetchall()
    finally:
        con.close()
    expected: dict = {}
    for node, name, quant, wall, score, tokens in raw:
        e = expected.setdefault((node, name, quant), [0.0, 0])
        e[0] += (wall + score) / 1000.0
        e[1] += tokens
    rows = records(analysis_db.path, "energy_per_token_by_node_model_quant")
    assert {(r["node_id"], r["model"], r["quant"]) for r in rows} == set(expected)
    for r in rows:
        method, watts, _ = analysis_fixture.ENERGY[r["node_id"]]
        seconds, tokens = expected[(r["node_id"], r["model"], r["quant"])]
        assert r["energy_method"] == method and r["gen_tokens"] == tokens
        if watts is None:
            assert r["energy_j"] is None and r["j_per_token"] is None
        else:
            assert r["j_per_token"] == pytest.approx(watts * seconds / tokens, rel=1e-3, abs=1e-4)
    throttled = records(analysis_db.path, "throttled_shards")
    assert throttled and {r["node"] for r in throttled} == {"old-thinkpad"}
    assert {r["run_id"] for r in throttled} == {"run-every-node"}
