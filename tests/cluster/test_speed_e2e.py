"""[speed] on a real Ray cluster on loopback: one probe per node x model file, whatever the placement,
streamed back and written; `--resume` probes only the pairs whose rows are missing."""

from __future__ import annotations

import duckdb
import pytest

from lqbench.plan import plan_from_dict

pytestmark = pytest.mark.e2e

SPEED_PLAN = {
    "name": "speed-tiny",
    "placement": "spread",
    "shard_size": 1,
    "models": [{"spec": "demo:gemma-3-270m", "quants": ["q4_k_m"]}],
    "suites": [{"name": "lqbench-lua", "limit": 2}],
    "sampling": {"temperature": 0.0, "max_tokens": 8, "seed": 5},
    "inference": {"n_ctx": 256},
    "speed": {"reps": 2, "n_prompt": 32, "n_gen": 8, "median_prompt": True},
}


def _rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_node_is_probed_once_and_resume_probes_only_what_is_missing(ray_cluster, tmp_path):
    from cluster.runner import run_plan

    ray_cluster.add_laptop("laptop-a")
    ray_cluster.add_laptop("laptop-b")
    db = tmp_path / "results.duckdb"
    plan = plan_from_dict(SPEED_PLAN)
    summary = run_plan(plan, db=db, progress=False, n_threads=1, measure_bandwidth=False)
    assert summary.status == "finished"
    assert _rows(db, "SELECT count(*) FROM samples")[0][0] == 2  # spread: each sample once

    per_node = _rows(db, "SELECT replica, json_extract_string(n.labels_json, '$.name'), test, count(*) "
                         "FROM speed s JOIN nodes n USING (node_id) GROUP BY ALL ORDER BY ALL")
    tests = sorted({t for _, _, t, _ in per_node})
    assert len(tests) == 3 and "pp32" in tests and "tg8" in tests  # + pp at the suite's median prompt length
    median = next(t for t in tests if t not in ("pp32", "tg8"))
    assert 10 < int(median[2:]) < 256
    assert per_node == [(node, node, t, 2) for node in ("laptop-a", "laptop-b") for t in tests]
    view = _rows(db, "SELECT replica, test, n_reps, avg_ts, stddev_ts, n_threads FROM speed_summary ORDER BY ALL")
    assert len(view) == 6 and all(n == 2 and avg > 0 and sd >= 0 and th == 1 for _, _, n, avg, sd, th in view)
    assert _rows(db, "SELECT DISTINCT energy_method FROM speed")[0][0] in ("rapl-package", "rapl-psys", "battery", "none")
    attempts = _rows(db, "SELECT count(*) FROM shards WHERE suite = 'speed' AND status = 'finished'")[0][0]
    assert attempts == 2

    # Lose laptop-b's probe; a resume probes laptop-b again, and only it.
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM speed WHERE replica = 'laptop-b'")
    con.close()
    again = run_plan(plan, db=db, resume=summary.run_id, progress=False, n_threads=1, measure_bandwidth=False)
    assert again.status == "finished" and again.samples_written == 0
    assert _rows(db, "SELECT count(*) FROM shards WHERE suite = 'speed'")[0][0] == attempts + 1
    assert _rows(db, "SELECT replica, count(*) FROM speed GROUP BY ALL ORDER BY ALL") == [("laptop-a", 6),
                                                                                      ("laptop-b", 6)]
