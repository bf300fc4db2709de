-- purpose: Which model × quant configs are worth their size: pass@1 against file size, and the configs that
--   another config beats on both (no larger and no less accurate, better on at least one). A config is a
--   model × quant × prompt style: the same file prompted two ways is two points.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per model × quant × prompt style, smallest first: model, quant, bits_per_weight, file_mb,
--   n_tasks, pass_at_1, on_front (true: no other config dominates it), dominated_by (the most accurate config
--   that dominates it: "model quant", plus " (chat)" for a chat config), n_dominating, prompt_style. Models without a file size (imported by
--   `lqbench import`) are left out.
-- example: lqbench query accuracy_vs_size_pareto --format json
WITH per_task AS (
    SELECT name, quant, prompt_style, suite, task_id, avg(pass_rate) AS pass_rate
    FROM task_outcomes
    WHERE $run_id IS NULL OR run_id = $run_id
    GROUP BY ALL
),
acc AS (
    SELECT p.name, p.quant, p.prompt_style, count(*) AS n_tasks, avg(p.pass_rate) AS pass_at_1,
           any_value(m.file_bytes) AS file_bytes, any_value(m.bits_per_weight) AS bits_per_weight
    FROM per_task p
    JOIN (SELECT name, quant, avg(file_bytes) AS file_bytes, avg(bits_per_weight) AS bits_per_weight
          FROM models GROUP BY ALL) m USING (name, quant)
    GROUP BY p.name, p.quant, p.prompt_style
    HAVING any_value(m.file_bytes) IS NOT NULL  -- imported models (lqbench import) have no file here
),
dominance AS (
    SELECT a.name, a.quant, a.prompt_style,
           count(b.name)                                           AS n_dominating,
           arg_max(b.name || ' ' || b.quant
                   || CASE WHEN b.prompt_style = 'completion' THEN '' ELSE ' (' || b.prompt_style || ')' END,
                   b.pass_at_1)                                    AS dominated_by
    FROM acc a
    LEFT JOIN acc b
      ON b.file_bytes <= a.file_bytes AND b.pass_at_1 >= a.pass_at_1
     AND (b.file_bytes < a.file_bytes OR b.pass_at_1 > a.pass_at_1)
    GROUP BY a.name, a.quant, a.prompt_style
)
SELECT a.name                          AS model,
       a.quant,
       round(a.bits_per_weight, 3)     AS bits_per_weight,
       round(a.file_bytes / 1e6, 1)    AS file_mb,
       a.n_tasks,
       round(a.pass_at_1, 4)           AS pass_at_1,
       d.n_dominating = 0              AS on_front,
       d.dominated_by,
       d.n_dominating,
       a.prompt_style
FROM acc a
JOIN dominance d USING (name, quant, prompt_style)
ORDER BY a.file_bytes, model, quant, prompt_style;
