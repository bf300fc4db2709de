-- purpose: Determinism across llama.cpp builds and engine configurations: within each run, for each model file,
--   how often the greedy samples (temperature 0) of the same task came out byte-identical under two different
--   engines (build = llama-cpp-python version + hash of its compiled libraries, configuration = extra buffer
--   types on/off), and how often the verdict flipped. Nodes with the same engine count as one engine.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- returns: one row per run x model x quant x pair of engines: engine_a, engine_b ("<build> <configuration>"),
--   n_samples (greedy samples generated under both), identical, identical_rate, verdict_flips (pass under one,
--   not under the other), nodes_a, nodes_b. No rows: no run generated the same greedy sample under two engines.
-- example: lqbench query greedy_divergence_by_engine --param run_id=RUN
WITH greedy AS (
    SELECT s.run_id, s.model_id, s.suite, s.task_id, s.sample_idx,
           coalesce(s.engine_build, 'unknown') || ' ' || coalesce(s.engine_config, 'unknown') AS engine,
           md5(coalesce(s.completion, '')) AS h, s.passed, coalesce(n.hostname, s.node_id) AS node, s.created_at
    FROM samples s
    LEFT JOIN nodes n USING (node_id)
    WHERE coalesce(s.temperature, 0) = 0 AND s.status <> 'generation_error'
      AND ($run_id IS NULL OR s.run_id = $run_id)
),
per_engine AS (  -- one representative per sample and engine (its replicas on same-engine nodes agree or not:
                 -- that is greedy_divergence_between_nodes' question)
    SELECT run_id, model_id, suite, task_id, sample_idx, engine,
           arg_min(h, created_at) AS h, arg_min(passed, created_at) AS passed
    FROM greedy
    GROUP BY ALL
),
engine_nodes AS (
    SELECT run_id, model_id, engine, string_agg(DISTINCT node, ', ' ORDER BY node) AS nodes
    FROM greedy GROUP BY ALL
),
pairs AS (
    SELECT a.run_id, a.model_id, a.engine AS engine_a, b.engine AS engine_b,
           count(*) AS n_samples,
           count(*) FILTER (WHERE a.h = b.h) AS identical,
           count(*) FILTER (WHERE a.passed <> b.passed) AS verdict_flips
    FROM per_engine a
    JOIN per_engine b ON a.run_id = b.run_id AND a.model_id = b.model_id AND a.suite = b.suite
        AND a.task_id = b.task_id AND a.sample_idx = b.sample_idx AND a.engine < b.engine
    GROUP BY ALL
)
SELECT p.run_id, m.name AS model, m.quant, p.engine_a, p.engine_b, p.n_samples, p.identical,
       round(p.identical / p.n_samples, 4) AS identical_rate, p.verdict_flips,
       na.nodes AS nodes_a, nb.nodes AS nodes_b
FROM pairs p
JOIN models m USING (model_id)
JOIN engine_nodes na ON na.run_id = p.run_id AND na.model_id = p.model_id AND na.engine = p.engine_a
JOIN engine_nodes nb ON nb.run_id = p.run_id AND nb.model_id = p.model_id AND nb.engine = p.engine_b
ORDER BY p.run_id, model, m.quant, p.engine_a, p.engine_b;
