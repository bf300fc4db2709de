-- purpose: pass@k of each model × quant × prompt style on each suite, and over all suites together
--   (suite = '(all)'), with a 95 % percentile-bootstrap interval over tasks.
-- params: $k INTEGER = 1  the k of pass@k; an evaluation unit with fewer than k samples is left out
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- params: $resamples INTEGER = 1000  bootstrap resamples (0: no interval)
-- params: $seed BIGINT = 0  seed of the resampling: the same seed gives the same intervals
-- returns: one row per model × quant × prompt style × suite: model, quant, bits_per_weight, suite, k, n_tasks,
--   n_samples, min_samples_per_task, pass_at_k, ci_low, ci_high, prompt_style (completion | chat)
-- example: lqbench query pass_at_k_by_model_quant_suite --param k=5 --param run_id=RUN --format csv
--
-- How. The unit is one task's samples in one run on one replica in one prompt style (view task_outcomes):
-- n samples, c passed.
-- pass@k of a unit is the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al., 2021), evaluated with
-- lgamma so large n cannot overflow; a task's value is the mean over its units (runs, every-node replicas),
-- the config's value the mean over tasks. n comes from the data, k from $k.
-- Why the interval is computed in SQL: so that `duckdb` itself, a notebook or this CLI all get the same
-- numbers from the file, with no Python in between. Resample b draws n_tasks task indices with replacement,
-- draw j = H(H(H(seed) xor b) xor j) mod n_tasks with H = DuckDB's hash(): deterministic for a given DuckDB
-- version, and the same draws for every config with the same task count (a paired bootstrap, so configs are
-- compared on the same resamples). Not hash(seed, b, j): DuckDB combines the arguments' hashes so that, for one
-- b, the low bits are a permutation of j -- every "resample" of 8 tasks then held exactly 5 distinct tasks.
-- Cost: n_tasks x resamples hashes per row; 18 configs x 608 tasks x 1000 resamples take ~0.5 s on 2 cores.
WITH units AS (
    SELECT name, quant, prompt_style, suite, task_id, n,
           CASE WHEN n - c < $k THEN 1.0
                ELSE 1.0 - exp(lgamma(n - c + 1) - lgamma(n - c - $k + 1) - lgamma(n + 1) + lgamma(n - $k + 1))
           END AS pass_k
    FROM task_outcomes
    WHERE n >= $k AND ($run_id IS NULL OR run_id = $run_id)
),
per_task AS (
    SELECT name, quant, prompt_style, suite, task_id, avg(pass_k) AS pass_k, sum(n) AS n_samples, min(n) AS min_n
    FROM units
    GROUP BY ALL
),
scoped AS (
    SELECT name, quant, prompt_style, suite, task_id, pass_k, n_samples, min_n FROM per_task
    UNION ALL
    SELECT name, quant, prompt_style, '(all)' AS suite, suite || '/' || task_id, pass_k, n_samples, min_n
    FROM per_task
),
grouped AS (
    SELECT name, quant, prompt_style, suite,
           count(*)                      AS n_tasks,
           sum(n_samples)                AS n_samples,
           min(min_n)                    AS min_n,
           avg(pass_k)                   AS pass_k,
           list(pass_k ORDER BY task_id) AS task_values
    FROM scoped
    GROUP BY ALL
),
resampled AS (
    SELECT name, quant, prompt_style, suite, n_tasks, task_values, unnest(range($resamples)) AS b
    FROM grouped
),
boot AS (
    SELECT name, quant, prompt_style, suite,
           list_avg(list_transform(range(n_tasks), lambda j:
               task_values[(hash(xor(hash(xor(hash($seed::BIGINT), b::UBIGINT)), j::UBIGINT))
                            % n_tasks::UBIGINT)::BIGINT + 1])) AS mean_k
    FROM resampled
),
intervals AS (
    SELECT name, quant, prompt_style, suite, quantile_cont(mean_k, 0.025) AS lo, quantile_cont(mean_k, 0.975) AS hi
    FROM boot
    GROUP BY ALL
),
bits AS (
    SELECT name, quant, avg(bits_per_weight) AS bits_per_weight FROM models GROUP BY ALL
)
SELECT g.name                       AS model,
       g.quant,
       round(bits.bits_per_weight, 3) AS bits_per_weight,
       g.suite,
       $k                           AS k,
       g.n_tasks,
       g.n_samples,
       g.min_n                      AS min_samples_per_task,
       round(g.pass_k, 4)           AS pass_at_k,
       round(i.lo, 4)               AS ci_low,
       round(i.hi, 4)               AS ci_high,
       g.prompt_style
FROM grouped g
LEFT JOIN intervals i USING (name, quant, prompt_style, suite)
LEFT JOIN bits USING (name, quant)
ORDER BY model, bits.bits_per_weight, g.quant, g.prompt_style, g.suite = '(all)' DESC, g.suite;
