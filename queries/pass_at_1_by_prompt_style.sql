-- purpose: Completion against chat for the same model file: does quantization hurt one prompt style more
--   than the other? pass@1 in each style on the tasks that ran in both, and the paired difference.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per model × quant that has samples in both styles, smallest bits first: model, quant,
--   bits_per_weight, n_tasks (tasks evaluated in both styles), pass_at_1_completion, pass_at_1_chat,
--   chat_minus_completion (mean over those tasks of the chat pass rate minus the completion one),
--   tasks_better_in_chat, tasks_better_in_completion (tasks whose pass rate is higher in that style)
-- example: lqbench query pass_at_1_by_prompt_style --param run_id=RUN
WITH per_task AS (
    SELECT name, quant, prompt_style, suite, task_id, avg(pass_rate) AS pass_rate
    FROM task_outcomes
    WHERE $run_id IS NULL OR run_id = $run_id
    GROUP BY ALL
),
paired AS (
    SELECT c.name, c.quant, c.suite, c.task_id, c.pass_rate AS completion, h.pass_rate AS chat
    FROM per_task c
    JOIN per_task h USING (name, quant, suite, task_id)
    WHERE c.prompt_style = 'completion' AND h.prompt_style = 'chat'
),
bits AS (
    SELECT name, quant, avg(bits_per_weight) AS bits_per_weight FROM models GROUP BY ALL
)
SELECT p.name                                              AS model,
       p.quant,
       round(any_value(b.bits_per_weight), 3)              AS bits_per_weight,
       count(*)                                            AS n_tasks,
       round(avg(p.completion), 4)                         AS pass_at_1_completion,
       round(avg(p.chat), 4)                               AS pass_at_1_chat,
       round(avg(p.chat - p.completion), 4)                AS chat_minus_completion,
       count(*) FILTER (WHERE p.chat > p.completion)       AS tasks_better_in_chat,
       count(*) FILTER (WHERE p.chat < p.completion)       AS tasks_better_in_completion
FROM paired p
LEFT JOIN bits b USING (name, quant)
GROUP BY p.name, p.quant
ORDER BY model, bits_per_weight, quant;
