-- Views the named queries and the report share; stable names users may query too.
--
-- The evaluation unit: one task's samples in one run on one replica. With `spread` placement
-- replica = '' and a task has one unit per run; with `every-node` placement each node's copy is
-- its own unit, so greedy copies of one sample on three laptops are three evaluations of the
-- task, not three samples of it (pass@k must not treat identical greedy outputs as independent).
CREATE VIEW task_outcomes AS
SELECT s.run_id,
       s.model_id,
       m.name,
       m.quant,
       s.suite,
       s.task_id,
       s.replica,
       count(*)                                   AS n,         -- samples in the unit
       count(*) FILTER (WHERE s.passed)           AS c,         -- of which passed
       count(*) FILTER (WHERE s.passed) / count(*) AS pass_rate,
       min(s.temperature)                          AS temperature
FROM samples s
JOIN models m USING (model_id)
GROUP BY s.run_id, s.model_id, m.name, m.quant, s.suite, s.task_id, s.replica;

-- Model load time per run × node × model (mean over the shards that loaded it there).
CREATE VIEW model_loads AS
SELECT run_id, node_id, model_id, count(*) AS n_loads, avg(load_ms) AS load_ms
FROM shards
WHERE load_ms IS NOT NULL
GROUP BY run_id, node_id, model_id;
