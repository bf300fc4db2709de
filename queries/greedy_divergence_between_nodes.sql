-- purpose: Determinism across hardware: the greedy samples (temperature 0) that were generated on two or more
--   nodes within one run (every-node replicas) and whose completions are not identical everywhere.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per diverging sample: run_id, model, quant, suite, task_id, sample_idx, n_nodes,
--   n_distinct_completions, verdict_differs (did the pass/fail outcome change too), verdicts (node=status,
--   ...), completion_hashes (node=first 8 hex of md5(completion), ...), prompt_style (a sample is compared
--   only with copies of itself in the same style). No rows: every replicated greedy sample came out
--   byte-identical on every node.
-- example: lqbench query greedy_divergence_between_nodes --param run_id=RUN
WITH greedy AS (
    SELECT s.run_id, s.model_id, m.name, m.quant, s.prompt_style, s.suite, s.task_id, s.sample_idx, s.node_id,
           coalesce(n.hostname, s.node_id) AS node, s.status, s.passed, md5(coalesce(s.completion, '')) AS h
    FROM samples s
    JOIN models m USING (model_id)
    LEFT JOIN nodes n USING (node_id)
    WHERE coalesce(s.temperature, 0) = 0 AND ($run_id IS NULL OR s.run_id = $run_id)
),
grouped AS (
    SELECT run_id, model_id, any_value(name) AS name, any_value(quant) AS quant, prompt_style, suite, task_id,
           sample_idx,
           count(DISTINCT node_id)                                        AS n_nodes,
           count(DISTINCT h)                                              AS n_distinct_completions,
           count(DISTINCT passed) > 1                                     AS verdict_differs,
           string_agg(node || '=' || status, ', ' ORDER BY node)          AS verdicts,
           string_agg(node || '=' || left(h, 8), ', ' ORDER BY node)      AS completion_hashes
    FROM greedy
    GROUP BY run_id, model_id, prompt_style, suite, task_id, sample_idx
)
SELECT run_id, name AS model, quant, suite, task_id, sample_idx, n_nodes, n_distinct_completions,
       verdict_differs, verdicts, completion_hashes, prompt_style
FROM grouped
WHERE n_nodes >= 2 AND n_distinct_completions > 1
ORDER BY run_id, model, quant, prompt_style, suite, task_id, sample_idx;
