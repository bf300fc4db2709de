-- purpose: Speed and memory of each model × quant on each node, the way llama-bench measures them, and how
--   close decoding gets to the memory-bandwidth roofline.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per node × model × quant: node (hostname), node_id, model, quant, bits_per_weight, file_mb,
--   n_samples, n_threads, prompt_tok_s and gen_tok_s (sum of tokens / sum of ms x 1000, from llama.cpp's
--   perf counters), ttft_ms_median, load_ms (mean model load on that node, from shards), peak_rss_mb,
--   roofline_tok_s (node's mem_bandwidth_gbs x 1e9 / file_bytes: every weight read once per token) and
--   roofline_fraction (gen_tok_s / roofline_tok_s)
-- example: lqbench query efficiency_by_node_model_quant --param run_id=RUN
WITH s AS (
    SELECT s.node_id, m.name, m.quant,
           count(*)                                                        AS n_samples,
           max(s.n_threads)                                                AS n_threads,
           sum(s.prompt_tokens) * 1000.0 / nullif(sum(s.prompt_ms), 0)     AS prompt_tok_s,
           sum(s.gen_tokens) * 1000.0 / nullif(sum(s.gen_ms), 0)           AS gen_tok_s,
           median(s.ttft_ms)                                               AS ttft_ms_median,
           max(s.peak_rss_mb)                                              AS peak_rss_mb,
           avg(m.file_bytes)                                               AS file_bytes,
           avg(m.bits_per_weight)                                          AS bits_per_weight
    FROM samples s
    JOIN models m USING (model_id)
    WHERE ($run_id IS NULL OR s.run_id = $run_id)
      AND s.run_id NOT IN (SELECT run_id FROM imports)  -- imported runs: generated elsewhere, no timings
    GROUP BY s.node_id, m.name, m.quant
),
loads AS (
    SELECT sh.node_id, m.name, m.quant, avg(sh.load_ms) AS load_ms
    FROM shards sh
    JOIN models m USING (model_id)
    WHERE sh.load_ms IS NOT NULL AND ($run_id IS NULL OR sh.run_id = $run_id)
    GROUP BY ALL
)
SELECT coalesce(n.hostname, s.node_id)                           AS node,
       s.node_id,
       s.name                                                    AS model,
       s.quant,
       round(s.bits_per_weight, 3)                               AS bits_per_weight,
       round(s.file_bytes / 1e6, 1)                              AS file_mb,
       s.n_samples,
       s.n_threads,
       round(s.prompt_tok_s, 2)                                  AS prompt_tok_s,
       round(s.gen_tok_s, 2)                                     AS gen_tok_s,
       round(s.ttft_ms_median, 1)                                AS ttft_ms_median,
       round(l.load_ms, 1)                                       AS load_ms,
       round(s.peak_rss_mb, 1)                                   AS peak_rss_mb,
       round(n.mem_bandwidth_gbs * 1e9 / nullif(s.file_bytes, 0), 2)                  AS roofline_tok_s,
       round(s.gen_tok_s / (n.mem_bandwidth_gbs * 1e9 / nullif(s.file_bytes, 0)), 3)  AS roofline_fraction
FROM s
LEFT JOIN nodes n USING (node_id)
LEFT JOIN loads l USING (node_id, name, quant)
ORDER BY node, model, s.bits_per_weight, quant;
