-- purpose: What the reference study's matrix would cost here: projected hours for 608 Lua tasks x 18 configs
--   (5 ~7B code models at Q2_K, Q4_K_M, Q8_0 + FP16 models of 1.3B, 2B and 3B) on each node, and on the
--   whole cluster sharing the work (the reference study: 87.9 h on one Core i5 laptop).
-- params: $run_id VARCHAR = NULL  measure on this run only (default: every run in the file)
-- params: $tasks INTEGER = 608  tasks per config (HumanEval-Lua 161 + MBPP-Lua 397 + MCEVAL-Lua 50)
-- params: $samples_per_task INTEGER = 1  samples per task (1 = greedy, as in the reference study)
-- returns: one row per node, then one 'cluster' row: node, node_id, cpu_model, n_samples_measured,
--   measured_s_per_sample (mean generation + scoring time of the samples this node ran), s_per_gb (that time
--   per GB of model file), projected_hours, vs_reference (projected_hours / 87.9). The cluster row assumes a
--   dynamic queue keeping every node busy: hours = 1 / sum(1 / node hours).
-- example: lqbench query sweep_cost_projection --param samples_per_task=10
--
-- Assumption, stated plainly: a sample's time (prompt + generation + scoring, llama.cpp-measured wall_ms plus
-- score_ms) scales linearly with the model file's bytes, because CPU decoding reads every weight once per token
-- (memory-bound); the node's measured seconds per sample per byte, averaged over the samples it ran, is applied
-- to each reference config's size (n_params x bits_per_weight / 8 below). It also assumes the reference models
-- write as many tokens per sample as the models measured here, and ignores model load (18 loads per node) and
-- shipping time. Prompt processing is compute-bound, so small-model measurements understate big-model prompts.
-- A sample decoded with n_parallel - 1 others (batched decoding) shared its wall time with them: its share,
-- wall_ms / n_parallel, is what it cost. That is exact while every slot is busy and understates the cost at a
-- shard's tail, when fewer sequences are left than slots.
WITH reference(config, n_params, bits_per_weight) AS (
    VALUES ('CodeQwen1.5-7B-Chat Q2_K', 7.25e9, 3.35), ('CodeQwen1.5-7B-Chat Q4_K_M', 7.25e9, 4.85),
           ('CodeQwen1.5-7B-Chat Q8_0', 7.25e9, 8.5),
           ('deepseek-coder-6.7B-instruct Q2_K', 6.74e9, 3.35), ('deepseek-coder-6.7B-instruct Q4_K_M', 6.74e9, 4.85),
           ('deepseek-coder-6.7B-instruct Q8_0', 6.74e9, 8.5),
           ('CodeLlama-7B-Instruct Q2_K', 6.74e9, 3.35), ('CodeLlama-7B-Instruct Q4_K_M', 6.74e9, 4.85),
           ('CodeLlama-7B-Instruct Q8_0', 6.74e9, 8.5),
           ('codegemma-7b Q2_K', 8.54e9, 3.35), ('codegemma-7b Q4_K_M', 8.54e9, 4.85), ('codegemma-7b Q8_0', 8.54e9, 8.5),
           ('starcoder2-7b Q2_K', 7.17e9, 3.35), ('starcoder2-7b Q4_K_M', 7.17e9, 4.85), ('starcoder2-7b Q8_0', 7.17e9, 8.5),
           ('1.3B FP16', 1.3e9, 16.0), ('2B FP16', 2.0e9, 16.0), ('3B FP16', 3.0e9, 16.0)
),
matrix AS (
    SELECT sum(n_params * bits_per_weight / 8) AS total_bytes, count(*) AS n_configs FROM reference
),
measured AS (
    SELECT s.node_id,
           count(*)                                                                      AS n_samples,
           avg((s.wall_ms / coalesce(s.n_parallel, 1) + coalesce(s.score_ms, 0)) / 1000.0) AS s_per_sample,
           avg((s.wall_ms / coalesce(s.n_parallel, 1) + coalesce(s.score_ms, 0)) / 1000.0 / m.file_bytes)
                                                                                         AS s_per_byte
    FROM samples s
    JOIN models m USING (model_id)
    WHERE m.file_bytes > 0 AND s.wall_ms > 0 AND ($run_id IS NULL OR s.run_id = $run_id)
      AND s.run_id NOT IN (SELECT run_id FROM imports)  -- imported runs: generated elsewhere, no timings
    GROUP BY s.node_id
),
per_node AS (
    SELECT coalesce(n.hostname, x.node_id) AS node, x.node_id, n.cpu_model, x.n_samples, x.s_per_sample,
           x.s_per_byte * 1e9 AS s_per_gb,
           x.s_per_byte * matrix.total_bytes * $tasks * $samples_per_task / 3600.0 AS hours
    FROM measured x
    CROSS JOIN matrix
    LEFT JOIN nodes n USING (node_id)
),
cluster AS (
    SELECT 'cluster (' || count(*) || ' nodes)' AS node, NULL::VARCHAR AS node_id, NULL::VARCHAR AS cpu_model,
           sum(n_samples) AS n_samples, NULL::DOUBLE AS s_per_sample, NULL::DOUBLE AS s_per_gb,
           1.0 / sum(1.0 / hours) AS hours
    FROM per_node
    HAVING count(*) > 0
)
SELECT node, node_id, cpu_model,
       n_samples                          AS n_samples_measured,
       round(s_per_sample, 3)             AS measured_s_per_sample,
       round(s_per_gb, 3)                 AS s_per_gb,
       round(hours, 2)                    AS projected_hours,
       round(hours / 87.9, 3)             AS vs_reference
FROM (SELECT *, 0 AS is_cluster FROM per_node UNION ALL SELECT *, 1 FROM cluster)
ORDER BY is_cluster, hours;
