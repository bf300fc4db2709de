-- purpose: The same config on different laptops: each node's prompt and generation speed for a
--   model × quant, relative to the fastest node that ran it, and each node's typical relative speed.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per model × quant × node, fastest first: model, quant, node, node_id, cpu_model,
--   mem_bandwidth_gbs, n_samples, gen_tok_s, prompt_tok_s (llama-bench meaning: the speed probe's tg and pp
--   where the node ran one, else samples decoded one at a time, n_parallel = 1), speed_source ('probe' or
--   'samples'), gen_relative and
--   prompt_relative (÷ the fastest node on that config, 1.0 = fastest), n_nodes (nodes that ran the
--   config), node_gen_relative_geomean (the node's geometric-mean gen_relative over the configs that
--   two or more nodes ran; NULL if none)
-- example: lqbench query speed_across_nodes_normalized --param run_id=RUN
WITH sampled AS (
    SELECT m.name, m.quant, s.node_id,
           count(*)                                                      AS n_samples,
           -- samples decoded together with others (n_parallel > 1) measure throughput, not speed
           sum(s.gen_tokens) FILTER (WHERE s.n_parallel = 1) * 1000.0
               / nullif(sum(s.gen_ms) FILTER (WHERE s.n_parallel = 1), 0)       AS gen_tok_s,
           sum(s.prompt_tokens) FILTER (WHERE s.n_parallel = 1) * 1000.0
               / nullif(sum(s.prompt_ms) FILTER (WHERE s.n_parallel = 1), 0)    AS prompt_tok_s
    FROM samples s
    JOIN models m USING (model_id)
    WHERE ($run_id IS NULL OR s.run_id = $run_id)
      AND s.run_id NOT IN (SELECT run_id FROM imports)  -- imported runs: generated elsewhere, no timings
    GROUP BY m.name, m.quant, s.node_id
),
probed AS (
    SELECT m.name, m.quant, p.node_id, avg(p.tg_ts) AS gen_tok_s, avg(p.pp_ts) AS prompt_tok_s
    FROM probe_speed p
    JOIN models m USING (model_id)
    WHERE ($run_id IS NULL OR p.run_id = $run_id) AND p.tg_ts IS NOT NULL
    GROUP BY ALL
),
speed AS (
    SELECT name, quant, node_id,
           coalesce(s.n_samples, 0)                                              AS n_samples,
           coalesce(p.gen_tok_s, s.gen_tok_s)                                    AS gen_tok_s,
           CASE WHEN p.gen_tok_s IS NOT NULL THEN p.prompt_tok_s ELSE s.prompt_tok_s END AS prompt_tok_s,
           CASE WHEN p.gen_tok_s IS NOT NULL THEN 'probe' ELSE 'samples' END    AS speed_source
    FROM sampled s
    FULL OUTER JOIN probed p USING (name, quant, node_id)
    WHERE coalesce(p.gen_tok_s, s.gen_tok_s) IS NOT NULL
),
relative AS (
    SELECT *,
           gen_tok_s / max(gen_tok_s) OVER (PARTITION BY name, quant)       AS gen_relative,
           prompt_tok_s / max(prompt_tok_s) OVER (PARTITION BY name, quant) AS prompt_relative,
           count(*) OVER (PARTITION BY name, quant)                         AS n_nodes
    FROM speed
)
SELECT r.name                                   AS model,
       r.quant,
       coalesce(n.hostname, r.node_id)          AS node,
       r.node_id,
       n.cpu_model,
       n.mem_bandwidth_gbs,
       r.n_samples,
       round(r.gen_tok_s, 2)                    AS gen_tok_s,
       round(r.prompt_tok_s, 2)                 AS prompt_tok_s,
       r.speed_source,
       round(r.gen_relative, 3)                 AS gen_relative,
       round(r.prompt_relative, 3)              AS prompt_relative,
       r.n_nodes,
       -- only configs that two or more nodes ran say anything about a node's relative speed
       round(exp(avg(CASE WHEN r.n_nodes >= 2 THEN ln(r.gen_relative) END) OVER (PARTITION BY r.node_id)), 3)
                                                AS node_gen_relative_geomean
FROM relative r
LEFT JOIN nodes n USING (node_id)
ORDER BY model, r.quant, r.gen_relative DESC, node;
