-- The speed probe (lqbench.speed): single-stream prompt processing and token generation in llama-bench's
-- meaning, one row per repetition of a test on a node x model file. `test` is llama-bench's label (pp512,
-- tg128, pp512+tg128); ns is the repetition's wall time over its decodes only; ts = (n_prompt + n_gen) * 1e9 / ns.
-- replica: the node name a cluster run scheduled the probe for ('' for `lqbench speed` on this machine).
-- energy_method none means nothing was readable and energy_j stays NULL: nothing is estimated.
CREATE TABLE speed (
    run_id          VARCHAR NOT NULL,
    node_id         VARCHAR NOT NULL,
    model_id        VARCHAR NOT NULL,
    replica         VARCHAR NOT NULL DEFAULT '',
    test            VARCHAR NOT NULL,
    n_prompt        INTEGER NOT NULL,
    n_gen           INTEGER NOT NULL,
    n_batch         INTEGER,
    n_ubatch        INTEGER,
    n_threads       INTEGER,
    n_ctx           INTEGER,
    rep             INTEGER NOT NULL,               -- 0-based repetition index (after the warm-up)
    ns              BIGINT NOT NULL,
    ts              DOUBLE NOT NULL,
    cpu_mhz_start   DOUBLE,                         -- mean clock over the CPUs at the repetition's start
    cpu_mhz_end     DOUBLE,
    cpu_mhz_source  VARCHAR,                        -- cpufreq (a live reading) | psutil (may be nominal) | NULL
    energy_j        DOUBLE,
    energy_method   VARCHAR NOT NULL DEFAULT 'none',
    energy_s        DOUBLE,
    energy_note     VARCHAR,
    warmup          BOOLEAN,
    engine_build    VARCHAR,
    engine_config   VARCHAR,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, node_id, model_id, replica, test, rep)
);

-- One row per probe test, with llama-bench's output names: avg_ns / stddev_ns over the repetitions' durations,
-- avg_ts / stddev_ts over their rates (sample standard deviation; 0 for a single repetition, as llama-bench).
-- throttled: the last repetition generated < 90 % of the first one's rate (tests that generate), or a live
-- (cpufreq) clock fell below 90 % of its start; NULL when neither could be judged. The same rule as
-- lqbench.speed.judge (thresholds of lqbench.energy.state).
CREATE VIEW speed_summary AS
WITH t AS (
    SELECT run_id, node_id, model_id, replica, test,
           any_value(n_prompt)                       AS n_prompt,
           any_value(n_gen)                          AS n_gen,
           any_value(n_batch)                        AS n_batch,
           any_value(n_ubatch)                       AS n_ubatch,
           any_value(n_threads)                      AS n_threads,
           count(*)                                  AS n_reps,
           avg(ns)                                   AS avg_ns,
           coalesce(stddev_samp(ns), 0)              AS stddev_ns,
           avg(ts)                                   AS avg_ts,
           coalesce(stddev_samp(ts), 0)              AS stddev_ts,
           arg_min(ts, rep)                          AS ts_first,
           arg_max(ts, rep)                          AS ts_last,
           arg_min(cpu_mhz_start, rep)               AS cpu_mhz_start,
           arg_max(cpu_mhz_end, rep)                 AS cpu_mhz_end,
           bool_and(cpu_mhz_source = 'cpufreq')      AS clock_is_live,
           sum(energy_j)                             AS energy_j,
           CASE WHEN count(DISTINCT energy_method) = 1 THEN any_value(energy_method) ELSE 'mixed' END AS energy_method,
           any_value(engine_build)                   AS engine_build,
           any_value(engine_config)                  AS engine_config,
           min(created_at)                           AS created_at
    FROM speed
    GROUP BY run_id, node_id, model_id, replica, test
)
SELECT run_id, node_id, model_id, replica, test, n_prompt, n_gen, n_batch, n_ubatch, n_threads, n_reps,
       round(avg_ns)::BIGINT                      AS avg_ns,
       round(stddev_ns)::BIGINT                   AS stddev_ns,
       avg_ts, stddev_ts,
       stddev_ts / nullif(avg_ts, 0)              AS cv_ts,
       CASE WHEN n_gen > 0 AND n_reps >= 2 THEN ts_last / nullif(ts_first, 0) END AS ts_last_first,
       cpu_mhz_start, cpu_mhz_end,
       CASE
           WHEN (n_gen > 0 AND n_reps >= 2 AND ts_last < 0.90 * ts_first)
             OR (clock_is_live AND cpu_mhz_end < 0.90 * cpu_mhz_start) THEN TRUE
           WHEN (n_gen > 0 AND n_reps >= 2) OR (clock_is_live AND cpu_mhz_start > 0 AND cpu_mhz_end > 0) THEN FALSE
       END                                        AS throttled,
       energy_j, energy_method,
       energy_j / nullif((n_prompt + n_gen) * n_reps, 0) AS energy_j_per_token,
       engine_build, engine_config, created_at
FROM t;

-- The probe's headline numbers per run x node x model file, for the efficiency queries and the report:
-- tg = the generation-only test with the most tokens (tg128 by default), pp = the prompt-only test with the
-- most tokens (pp512 by default). A probe is single stream and alone on its node; prefer it to sample timings.
CREATE VIEW probe_speed AS
WITH tg AS (
    SELECT run_id, node_id, model_id,
           arg_max(test, n_gen) AS tg_test, arg_max(avg_ts, n_gen) AS tg_ts, arg_max(stddev_ts, n_gen) AS tg_sd,
           arg_max(n_reps, n_gen) AS tg_reps, arg_max(throttled, n_gen) AS tg_throttled,
           arg_max(n_threads, n_gen) AS n_threads
    FROM speed_summary WHERE n_prompt = 0 AND n_gen > 0
    GROUP BY ALL
),
pp AS (
    SELECT run_id, node_id, model_id,
           arg_max(test, n_prompt) AS pp_test, arg_max(avg_ts, n_prompt) AS pp_ts, arg_max(stddev_ts, n_prompt) AS pp_sd
    FROM speed_summary WHERE n_gen = 0 AND n_prompt > 0
    GROUP BY ALL
)
SELECT run_id, node_id, model_id, tg.tg_test, tg.tg_ts, tg.tg_sd, tg.tg_reps, tg.tg_throttled, tg.n_threads,
       pp.pp_test, pp.pp_ts, pp.pp_sd
FROM tg FULL OUTER JOIN pp USING (run_id, node_id, model_id);
