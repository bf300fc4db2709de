-- purpose: Shards that slowed down while they ran — kernel thermal-throttle events, a falling clock, or token
--   generation clearly slower in the shard's last third than in its first — whose speed should not be
--   compared across nodes as is.
-- params: $run_id VARCHAR = NULL  only this run (default: every run in the file)
-- params: $every_shard BOOLEAN = false  list every shard with its flag (default: only the throttled ones)
-- returns: one row per shard, throttled ones first: run_id, node, model, quant, suite, shard_id, started_at,
--   throttled (true, false, or NULL when nothing could be judged), throttle_evidence (what was seen), tg_drift
--   (median tg tok/s of the last third ÷ the first third), cpu_mhz_start, cpu_mhz_end, temp_c_start, temp_c_end,
--   throttle_events, power_source, battery_pct_start, battery_pct_end, n_samples, gen_tok_s (the shard's
--   generated tokens ÷ generation time), energy_method, avg_watts
-- example: lqbench query throttled_shards --param every_shard=true
SELECT sh.run_id,
       coalesce(n.hostname, sh.node_id)                          AS node,
       m.name                                                    AS model,
       m.quant,
       sh.suite,
       sh.shard_id,
       sh.started_at,
       sh.throttled,
       sh.throttle_evidence,
       sh.tg_drift,
       sh.cpu_mhz_start,
       sh.cpu_mhz_end,
       sh.temp_c_start,
       sh.temp_c_end,
       sh.throttle_events,
       sh.power_source,
       sh.battery_pct_start,
       sh.battery_pct_end,
       e.n_samples,
       round(e.gen_tokens * 1000.0 / nullif(e.gen_ms, 0), 2)     AS gen_tok_s,
       sh.energy_method,
       round(e.avg_watts, 2)                                     AS avg_watts
FROM shards sh
JOIN shard_energy e USING (run_id, shard_id, node_id, started_at)
LEFT JOIN models m ON m.model_id = sh.model_id
LEFT JOIN nodes n ON n.node_id = sh.node_id
WHERE ($run_id IS NULL OR sh.run_id = $run_id)
  AND (sh.throttled OR coalesce($every_shard, false))
ORDER BY sh.throttled DESC NULLS LAST, node, model, sh.started_at;
