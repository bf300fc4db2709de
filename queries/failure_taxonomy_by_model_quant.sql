-- purpose: How each model × quant fails, per prompt style: the share of its samples per verdict (syntax,
--   runtime, assertion, timeout, memory, sandbox), chat replies with no code, generation errors, and how many
--   generations hit the token limit.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per model × quant × prompt style, fewest bits first: model, quant, bits_per_weight,
--   n_samples, then the share (0..1) of samples with each status: pass, assertion_failure, runtime_error,
--   syntax_error, timeout, memory_limit, sandbox_violation, generation_error; truncated (finish_reason =
--   'length'); top_failure (the most common non-pass status); no_code (share of chat replies with no Lua in
--   them: never scored, so not a syntax error); prompt_style (completion | chat)
-- example: lqbench query failure_taxonomy_by_model_quant --format csv
WITH s AS (
    SELECT m.name, m.quant, s.prompt_style, m.bits_per_weight, s.status, s.finish_reason
    FROM samples s
    JOIN models m USING (model_id)
    WHERE $run_id IS NULL OR s.run_id = $run_id
),
top AS (
    SELECT name, quant, prompt_style, arg_max(status, n) AS top_failure
    FROM (SELECT name, quant, prompt_style, status, count(*) AS n FROM s WHERE status <> 'pass' GROUP BY ALL)
    GROUP BY ALL
)
SELECT s.name                                                          AS model,
       s.quant,
       round(avg(s.bits_per_weight), 3)                                AS bits_per_weight,
       count(*)                                                        AS n_samples,
       round(avg((s.status = 'pass')::INTEGER), 4)                     AS pass,
       round(avg((s.status = 'assertion_failure')::INTEGER), 4)        AS assertion_failure,
       round(avg((s.status = 'runtime_error')::INTEGER), 4)            AS runtime_error,
       round(avg((s.status = 'syntax_error')::INTEGER), 4)             AS syntax_error,
       round(avg((s.status = 'timeout')::INTEGER), 4)                  AS timeout,
       round(avg((s.status = 'memory_limit')::INTEGER), 4)             AS memory_limit,
       round(avg((s.status = 'sandbox_violation')::INTEGER), 4)        AS sandbox_violation,
       round(avg((s.status = 'generation_error')::INTEGER), 4)         AS generation_error,
       round(avg((s.finish_reason = 'length')::INTEGER), 4)            AS truncated,
       any_value(top.top_failure)                                      AS top_failure,
       round(avg((s.status = 'no_code')::INTEGER), 4)                  AS no_code,
       s.prompt_style
FROM s
LEFT JOIN top USING (name, quant, prompt_style)
GROUP BY s.name, s.quant, s.prompt_style
ORDER BY model, bits_per_weight, quant, prompt_style;
