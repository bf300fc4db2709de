-- purpose: The imported programs on which our sandbox and the original harness disagree (one passes, the
--   other does not): where each came from, both verdicts and our error, to look at one by one.
-- params: $run_id VARCHAR = NULL  only this run (default: every imported run)
-- returns: one row per disagreeing program: run_id, model, quant, suite, task_id, sample_idx, origin (file:line
--   or the .lua file), harness, original_status, original_exit_code, original_passed, our_status, our_passed,
--   our_error. No rows: we agree everywhere an original verdict was given.
-- example: lqbench query import_disagreements --format json
SELECT x.run_id,
       m.name               AS model,
       m.quant,
       x.suite,
       x.task_id,
       x.sample_idx,
       x.origin,
       x.original_harness   AS harness,
       x.original_status,
       x.original_exit_code,
       x.original_passed,
       s.status             AS our_status,
       s.passed             AS our_passed,
       s.error              AS our_error
FROM import_samples x
JOIN samples s USING (run_id, model_id, suite, task_id, sample_idx, replica)
JOIN models m USING (model_id)
WHERE x.original_passed IS NOT NULL AND s.passed <> x.original_passed
  AND ($run_id IS NULL OR x.run_id = $run_id)
ORDER BY x.run_id, model, m.quant, x.suite, x.task_id, x.sample_idx;
