-- purpose: What each model × quant costs in energy on each node: joules per generated token and per passed
--   task, from energy counters read around each shard's sample loop (counter deltas, never an estimate).
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per node × model × quant × energy_method: node (hostname), node_id, model, quant,
--   bits_per_weight, energy_method (rapl-package: the CPU package counters; rapl-psys: the platform counter;
--   battery: whole-system battery discharge; none: nothing readable on that node, and every energy column
--   NULL rather than a guess), n_shards, n_throttled (shards flagged throttled), power_sources (ac, battery,
--   mixed), n_samples, gen_tokens, tasks_passed (sum over tasks of the share of samples that passed),
--   energy_j, metered_s, avg_watts, j_per_token (energy_j ÷ gen_tokens: everything the sample loop drew —
--   prompt processing, generation, scoring — per generated token), j_per_passed_task (energy_j ÷ tasks_passed)
-- example: lqbench query energy_per_token_by_node_model_quant --param run_id=RUN
WITH per AS (
    SELECT e.node_id, m.name, m.quant, e.energy_method,
           avg(m.bits_per_weight)                              AS bits_per_weight,
           count(*)                                            AS n_shards,
           count(*) FILTER (WHERE e.throttled)                 AS n_throttled,
           string_agg(DISTINCT e.power_source, ', ' ORDER BY e.power_source) AS power_sources,
           sum(e.n_samples)                                    AS n_samples,
           sum(e.gen_tokens)                                   AS gen_tokens,
           sum(e.tasks_passed)                                 AS tasks_passed,
           sum(e.energy_j)                                     AS energy_j,
           sum(e.energy_s) FILTER (WHERE e.energy_j IS NOT NULL) AS metered_s
    FROM shard_energy e
    JOIN models m USING (model_id)
    WHERE ($run_id IS NULL OR e.run_id = $run_id) AND e.n_samples > 0
    GROUP BY e.node_id, m.name, m.quant, e.energy_method
)
SELECT coalesce(n.hostname, p.node_id)                       AS node,
       p.node_id,
       p.name                                                AS model,
       p.quant,
       round(p.bits_per_weight, 3)                           AS bits_per_weight,
       p.energy_method,
       p.n_shards,
       p.n_throttled,
       p.power_sources,
       p.n_samples,
       p.gen_tokens,
       round(p.tasks_passed, 2)                              AS tasks_passed,
       round(p.energy_j, 1)                                  AS energy_j,
       round(p.metered_s, 1)                                 AS metered_s,
       round(p.energy_j / nullif(p.metered_s, 0), 2)         AS avg_watts,
       round(p.energy_j / nullif(p.gen_tokens, 0), 4)        AS j_per_token,
       round(p.energy_j / nullif(p.tasks_passed, 0), 1)      AS j_per_passed_task
FROM per p
LEFT JOIN nodes n USING (node_id)
ORDER BY node, model, p.bits_per_weight, p.quant, p.energy_method;
