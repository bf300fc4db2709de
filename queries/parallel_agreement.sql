-- purpose: What batched decoding changes in results: the same samples (same model file, task, sample index,
--   seed, sampling and prompt style) made one at a time (n_parallel = 1) and several at a time (n_parallel > 1)
--   by the same engine (build and configuration), usually in two runs of one plan. llama.cpp does not promise
--   bit-identical logits across batch shapes, so a few completions may differ; this says how many, and how
--   many verdicts flipped because of it.
-- params: $run_id VARCHAR = NULL  only pairs where one side is this run (default: every run in the file)
-- returns: one row per model x quant x batched n_parallel x engine: n_pairs, identical (byte-identical
--   completions), identical_rate, verdict_flips (passed under one, not the other), flip_rate,
--   status_changes (any verdict status differs), pass_at_1_single / pass_at_1_batched over the pairs, runs.
--   No rows: the file has no sample made both ways.
-- example: lqbench query parallel_agreement --param run_id=RUN
WITH made AS (
    SELECT s.run_id, s.model_id, s.suite, s.task_id, s.sample_idx, s.replica, s.prompt_style, s.seed,
           s.temperature, s.suite_version, s.n_parallel, s.passed, s.status, md5(coalesce(s.completion, '')) AS h,
           coalesce(s.engine_build, 'unknown') || ' ' || coalesce(s.engine_config, 'unknown') AS engine,
           s.created_at
    FROM samples s
    WHERE s.n_parallel IS NOT NULL AND s.status <> 'generation_error'
),
pairs AS (
    SELECT a.model_id, b.n_parallel, a.engine, a.passed AS passed_1, b.passed AS passed_n,
           a.h = b.h AS identical, a.status <> b.status AS status_changed, a.run_id AS run_1, b.run_id AS run_n
    FROM made a
    JOIN made b ON a.model_id = b.model_id AND a.suite = b.suite AND a.task_id = b.task_id
        AND a.sample_idx = b.sample_idx AND a.replica = b.replica AND a.prompt_style = b.prompt_style
        AND a.seed IS NOT DISTINCT FROM b.seed AND a.temperature IS NOT DISTINCT FROM b.temperature
        AND a.suite_version IS NOT DISTINCT FROM b.suite_version AND a.engine = b.engine
    WHERE a.n_parallel = 1 AND b.n_parallel > 1
      AND ($run_id IS NULL OR a.run_id = $run_id OR b.run_id = $run_id)
)
SELECT m.name AS model, m.quant, p.n_parallel, p.engine,
       count(*) AS n_pairs,
       count(*) FILTER (WHERE p.identical) AS identical,
       round(count(*) FILTER (WHERE p.identical) / count(*), 4) AS identical_rate,
       count(*) FILTER (WHERE p.passed_1 <> p.passed_n) AS verdict_flips,
       round(count(*) FILTER (WHERE p.passed_1 <> p.passed_n) / count(*), 4) AS flip_rate,
       count(*) FILTER (WHERE p.status_changed) AS status_changes,
       round(avg(p.passed_1::INT), 4) AS pass_at_1_single,
       round(avg(p.passed_n::INT), 4) AS pass_at_1_batched,
       string_agg(DISTINCT p.run_1 || ' vs ' || p.run_n, ', ') AS runs
FROM pairs p
JOIN models m USING (model_id)
GROUP BY m.name, m.quant, p.n_parallel, p.engine
ORDER BY m.name, m.quant, p.n_parallel, p.engine;
