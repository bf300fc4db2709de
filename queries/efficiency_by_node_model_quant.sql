-- purpose: Speed and memory of each model × quant on each node, the way llama-bench measures them, and how
--   close decoding gets to the memory-bandwidth roofline.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per node × model × quant: node (hostname), node_id, model, quant, bits_per_weight, file_mb,
--   n_samples, n_threads, prompt_tok_s and gen_tok_s, speed_source ('probe': the speed probe's pp and tg
--   (lqbench speed / [speed], single stream, mean over its repetitions, e.g. tg128 and pp512); 'samples': no
--   probe, so sum of tokens / sum of ms x 1000 over samples decoded one at a time (n_parallel = 1), from
--   llama.cpp's perf counters), probe_tests (e.g. 'pp512 tg128'), probe_tg_sd, probe_throttled,
--   ttft_ms_median, load_ms (mean model load on that node, from shards), peak_rss_mb, roofline_tok_s
--   (node's mem_bandwidth_gbs x 1e9 / file_bytes: every weight read once per token) and roofline_fraction
--   (gen_tok_s / roofline_tok_s: probe tg where there is a probe)
-- example: lqbench query efficiency_by_node_model_quant --param run_id=RUN
WITH s AS (
    SELECT s.node_id, m.name, m.quant,
           count(*)                                                        AS n_samples,
           max(s.n_threads)                                                AS n_threads,
           -- Samples decoded together with others (n_parallel > 1) measure throughput, not speed.
           sum(s.prompt_tokens) FILTER (WHERE s.n_parallel = 1) * 1000.0
               / nullif(sum(s.prompt_ms) FILTER (WHERE s.n_parallel = 1), 0) AS prompt_tok_s,
           sum(s.gen_tokens) FILTER (WHERE s.n_parallel = 1) * 1000.0
               / nullif(sum(s.gen_ms) FILTER (WHERE s.n_parallel = 1), 0)    AS gen_tok_s,
           median(s.ttft_ms) FILTER (WHERE s.n_parallel = 1)               AS ttft_ms_median,
           max(s.peak_rss_mb)                                              AS peak_rss_mb
    FROM samples s
    JOIN models m USING (model_id)
    WHERE ($run_id IS NULL OR s.run_id = $run_id)
      AND s.run_id NOT IN (SELECT run_id FROM imports)  -- imported runs: generated elsewhere, no timings
    GROUP BY s.node_id, m.name, m.quant
),
p AS (
    SELECT p.node_id, m.name, m.quant,
           avg(p.pp_ts) AS prompt_tok_s, avg(p.tg_ts) AS gen_tok_s, avg(p.tg_sd) AS tg_sd,
           bool_or(p.tg_throttled) AS throttled, max(p.n_threads) AS n_threads,
           string_agg(DISTINCT concat_ws(' ', p.pp_test, p.tg_test), ', ') AS tests
    FROM probe_speed p
    JOIN models m USING (model_id)
    WHERE ($run_id IS NULL OR p.run_id = $run_id)
    GROUP BY ALL
),
k AS (
    SELECT node_id, name, quant FROM s UNION SELECT node_id, name, quant FROM p
),
meta AS (
    SELECT name, quant, avg(file_bytes) AS file_bytes, avg(bits_per_weight) AS bits_per_weight
    FROM models GROUP BY ALL
),
loads AS (
    SELECT sh.node_id, m.name, m.quant, avg(sh.load_ms) AS load_ms
    FROM shards sh
    JOIN models m USING (model_id)
    WHERE sh.load_ms IS NOT NULL AND ($run_id IS NULL OR sh.run_id = $run_id)
    GROUP BY ALL
),
j AS (
    SELECT k.node_id, k.name, k.quant, mt.file_bytes, mt.bits_per_weight,
           coalesce(s.n_samples, 0)                                                   AS n_samples,
           coalesce(p.n_threads, s.n_threads)                                         AS n_threads,
           CASE WHEN p.gen_tok_s IS NOT NULL THEN p.prompt_tok_s ELSE s.prompt_tok_s END AS prompt_tok_s,
           coalesce(p.gen_tok_s, s.gen_tok_s)                                         AS gen_tok_s,
           CASE WHEN p.gen_tok_s IS NOT NULL THEN 'probe'
                WHEN s.gen_tok_s IS NOT NULL THEN 'samples' END                       AS speed_source,
           p.tests, p.tg_sd, p.throttled, s.ttft_ms_median, s.peak_rss_mb
    FROM k
    LEFT JOIN s USING (node_id, name, quant)
    LEFT JOIN p USING (node_id, name, quant)
    LEFT JOIN meta mt USING (name, quant)
)
SELECT coalesce(n.hostname, j.node_id)                           AS node,
       j.node_id,
       j.name                                                    AS model,
       j.quant,
       round(j.bits_per_weight, 3)                               AS bits_per_weight,
       round(j.file_bytes / 1e6, 1)                              AS file_mb,
       j.n_samples,
       j.n_threads,
       round(j.prompt_tok_s, 2)                                  AS prompt_tok_s,
       round(j.gen_tok_s, 2)                                     AS gen_tok_s,
       j.speed_source,
       j.tests                                                   AS probe_tests,
       round(j.tg_sd, 2)                                         AS probe_tg_sd,
       j.throttled                                               AS probe_throttled,
       round(j.ttft_ms_median, 1)                                AS ttft_ms_median,
       round(l.load_ms, 1)                                       AS load_ms,
       round(j.peak_rss_mb, 1)                                   AS peak_rss_mb,
       round(n.mem_bandwidth_gbs * 1e9 / nullif(j.file_bytes, 0), 2)                  AS roofline_tok_s,
       round(j.gen_tok_s / (n.mem_bandwidth_gbs * 1e9 / nullif(j.file_bytes, 0)), 3)  AS roofline_fraction
FROM j
LEFT JOIN nodes n USING (node_id)
LEFT JOIN loads l USING (node_id, name, quant)
ORDER BY node, model, j.bits_per_weight, quant;
