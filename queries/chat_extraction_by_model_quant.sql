-- purpose: How chat replies became programs, per model × quant: the share taken from a code fence, taken
--   whole, or with no code at all, and how often each kind passed.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per model × quant × instruction template with chat samples, fewest bits first: model,
--   quant, instruction, instruction_version, chat_template, bits_per_weight, n_samples, fence, whole, none
--   (shares 0..1 of samples by extraction; a generation error has none, so they may sum to less than 1),
--   pass_rate_fence, pass_rate_whole (share passed among those;
--   NULL when there were none), truncated (share that hit the token limit)
-- example: lqbench query chat_extraction_by_model_quant --format csv
SELECT m.name                                                           AS model,
       m.quant,
       s.instruction,
       s.instruction_version,
       string_agg(DISTINCT s.chat_template, ', ')                       AS chat_template,
       round(avg(m.bits_per_weight), 3)                                 AS bits_per_weight,
       count(*)                                                         AS n_samples,
       round(avg((s.extraction = 'fence')::INTEGER), 4)                 AS fence,
       round(avg((s.extraction = 'whole')::INTEGER), 4)                 AS whole,
       round(avg((s.extraction = 'none')::INTEGER), 4)                  AS none,
       round(avg(s.passed::INTEGER) FILTER (WHERE s.extraction = 'fence'), 4) AS pass_rate_fence,
       round(avg(s.passed::INTEGER) FILTER (WHERE s.extraction = 'whole'), 4) AS pass_rate_whole,
       round(avg((s.finish_reason = 'length')::INTEGER), 4)             AS truncated
FROM samples s
JOIN models m USING (model_id)
WHERE s.prompt_style = 'chat' AND ($run_id IS NULL OR s.run_id = $run_id)
GROUP BY m.name, m.quant, s.instruction, s.instruction_version
ORDER BY model, bits_per_weight, quant, instruction;
