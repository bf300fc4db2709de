-- purpose: The headline table: how often each model × quant writes Lua that passes, how big and how fast it is,
--   per prompt style (completion: MultiPL-E continuation; chat: the model's chat template, code extracted).
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per model × quant × prompt style, smallest bits first: model, quant, bits_per_weight,
--   file_mb, n_tasks, n_samples, pass_at_1 (mean over tasks of the share of samples that passed), gen_tok_s
--   (sum generated tokens / sum generation ms, llama-bench's meaning), peak_rss_mb (max over samples),
--   prompt_style (completion | chat)
-- example: lqbench query pass_at_1_by_model_quant --param run_id=20250101-abcd --format csv
WITH per_task AS (
    -- a task's pass rate averaged over its evaluation units (runs, replicas); see view task_outcomes
    SELECT name, quant, prompt_style, suite, task_id, avg(pass_rate) AS pass_rate, sum(n) AS n
    FROM task_outcomes
    WHERE $run_id IS NULL OR run_id = $run_id
    GROUP BY ALL
),
accuracy AS (
    SELECT name, quant, prompt_style, count(*) AS n_tasks, sum(n) AS n_samples, avg(pass_rate) AS pass_at_1
    FROM per_task
    GROUP BY ALL
),
speed AS (
    SELECT m.name, m.quant, s.prompt_style,
           avg(m.bits_per_weight)                                   AS bits_per_weight,
           avg(m.file_bytes)                                        AS file_bytes,
           sum(s.gen_tokens) * 1000.0 / nullif(sum(s.gen_ms), 0)    AS gen_tok_s,
           max(s.peak_rss_mb)                                       AS peak_rss_mb
    FROM samples s
    JOIN models m USING (model_id)
    WHERE $run_id IS NULL OR s.run_id = $run_id
    GROUP BY ALL
)
SELECT a.name                          AS model,
       a.quant,
       round(s.bits_per_weight, 3)     AS bits_per_weight,
       round(s.file_bytes / 1e6, 1)    AS file_mb,
       a.n_tasks,
       a.n_samples,
       round(a.pass_at_1, 4)           AS pass_at_1,
       round(s.gen_tok_s, 2)           AS gen_tok_s,
       round(s.peak_rss_mb, 1)         AS peak_rss_mb,
       a.prompt_style
FROM accuracy a
JOIN speed s USING (name, quant, prompt_style)
ORDER BY model, s.bits_per_weight, quant, prompt_style;
