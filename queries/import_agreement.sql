-- purpose: Imported programs: how often our sandbox's verdict agrees with the one the original harness gave
--   (MultiPL-E results files, or a --verdicts CSV), per imported run × model × quant × harness.
-- params: $run_id VARCHAR = NULL  only this run (default: every imported run)
-- returns: one row per run × model × quant × harness: run_id, source, model, quant, harness, n_compared
--   (programs with an original verdict), n_agree (same pass/fail), agreement (n_agree / n_compared),
--   both_pass, both_fail, only_ours_pass (we pass, they fail), only_theirs_pass (they pass, we fail).
--   Programs without an original verdict are not counted; see import_disagreements for the programs.
-- example: lqbench query import_agreement --format csv
SELECT x.run_id,
       i.source,
       m.name                                                                  AS model,
       m.quant,
       x.original_harness                                                      AS harness,
       count(*)                                                                AS n_compared,
       count(*) FILTER (WHERE s.passed = x.original_passed)                    AS n_agree,
       round(avg((s.passed = x.original_passed)::INTEGER), 4)                  AS agreement,
       count(*) FILTER (WHERE s.passed AND x.original_passed)                  AS both_pass,
       count(*) FILTER (WHERE NOT s.passed AND NOT x.original_passed)          AS both_fail,
       count(*) FILTER (WHERE s.passed AND NOT x.original_passed)              AS only_ours_pass,
       count(*) FILTER (WHERE NOT s.passed AND x.original_passed)              AS only_theirs_pass
FROM import_samples x
JOIN samples s USING (run_id, model_id, suite, task_id, sample_idx, replica)
JOIN models m USING (model_id)
JOIN imports i USING (run_id)
WHERE x.original_passed IS NOT NULL AND ($run_id IS NULL OR x.run_id = $run_id)
GROUP BY ALL
ORDER BY x.run_id, model, m.quant, harness;
