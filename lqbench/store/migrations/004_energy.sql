-- Energy and thermal state per shard (lqbench.energy): joules as a counter delta over the shard's sample
-- loop (model load excluded) with the method that measured them, and the power/thermal state at both ends.
-- energy_method: rapl-package | rapl-psys | battery | none. With none, energy_j is NULL: nothing is estimated.
ALTER TABLE shards ADD COLUMN energy_j DOUBLE;                 -- joules over the metered window
ALTER TABLE shards ADD COLUMN energy_method VARCHAR DEFAULT 'none';
ALTER TABLE shards ADD COLUMN energy_s DOUBLE;                 -- seconds the window lasted
ALTER TABLE shards ADD COLUMN energy_domains_json VARCHAR;     -- joules per readable counter: {"package-0": .., "psys": .., "battery": ..}
ALTER TABLE shards ADD COLUMN energy_note VARCHAR;             -- why a method was (not) available
ALTER TABLE shards ADD COLUMN power_source VARCHAR;            -- ac | battery | mixed (changed during the shard) | NULL unknown
ALTER TABLE shards ADD COLUMN battery_pct_start DOUBLE;
ALTER TABLE shards ADD COLUMN battery_pct_end DOUBLE;
ALTER TABLE shards ADD COLUMN cpu_mhz_start DOUBLE;            -- mean clock over the CPUs
ALTER TABLE shards ADD COLUMN cpu_mhz_end DOUBLE;
ALTER TABLE shards ADD COLUMN temp_c_start DOUBLE;             -- CPU package temperature where readable
ALTER TABLE shards ADD COLUMN temp_c_end DOUBLE;
ALTER TABLE shards ADD COLUMN throttle_events INTEGER;         -- kernel thermal-throttle events during the shard
ALTER TABLE shards ADD COLUMN tg_drift DOUBLE;                 -- median tg tok/s of the last third / the first third
ALTER TABLE shards ADD COLUMN throttled BOOLEAN;               -- NULL: nothing to judge from
ALTER TABLE shards ADD COLUMN throttle_evidence VARCHAR;

-- One row per shard row with what its metered window produced and cost. Its samples are those of the same
-- run, shard and node created between its start and finish, so an earlier attempt of a retried shard (whose
-- energy was never recorded) is not charged to the attempt that finished. tasks_passed = sum over its tasks
-- of the share of samples that passed (with one sample per task: the tasks whose sample passed).
-- Shards recorded before migration 004 have energy_method 'none'.
CREATE VIEW shard_energy AS
WITH per_task AS (
    SELECT sh.run_id, sh.shard_id, sh.node_id, sh.started_at, s.task_id,
           count(*)                            AS n,
           count(*) FILTER (WHERE s.passed)    AS c,
           sum(s.gen_tokens)                   AS gen_tokens,
           sum(s.gen_ms)                       AS gen_ms,
           sum(s.prompt_tokens)                AS prompt_tokens
    FROM shards sh
    JOIN samples s
      ON s.run_id = sh.run_id AND s.shard_id = sh.shard_id AND s.node_id = sh.node_id
     AND s.created_at BETWEEN sh.started_at AND sh.finished_at
    GROUP BY ALL
),
per_shard AS (
    SELECT run_id, shard_id, node_id, started_at,
           sum(n) AS n_samples, count(*) AS n_tasks_run, sum(c / n) AS tasks_passed,
           sum(gen_tokens) AS gen_tokens, sum(gen_ms) AS gen_ms, sum(prompt_tokens) AS prompt_tokens
    FROM per_task
    GROUP BY ALL
)
SELECT sh.run_id, sh.shard_id, sh.node_id, sh.model_id, sh.suite, sh.started_at, sh.finished_at, sh.status,
       sh.energy_j, sh.energy_method, sh.energy_s,
       sh.energy_j / nullif(sh.energy_s, 0)      AS avg_watts,
       sh.power_source, sh.throttled,
       coalesce(p.n_samples, 0)                  AS n_samples,
       coalesce(p.n_tasks_run, 0)                AS n_tasks_run,
       coalesce(p.tasks_passed, 0)               AS tasks_passed,
       coalesce(p.gen_tokens, 0)                 AS gen_tokens,
       p.gen_ms,
       coalesce(p.prompt_tokens, 0)              AS prompt_tokens
FROM shards sh
LEFT JOIN per_shard p USING (run_id, shard_id, node_id, started_at);
