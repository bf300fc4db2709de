-- Batched decoding (lqbench.batched): a node may decode several samples of a shard in one
-- llama_decode. n_parallel is how many sequences shared the context when the sample was made
-- (1 = one sample at a time, the only kind whose timings are a single stream's speed).
-- Rows written before this migration were all made one at a time.
ALTER TABLE samples ADD COLUMN n_parallel INTEGER;
UPDATE samples SET n_parallel = 1 WHERE gen_ms IS NOT NULL;
ALTER TABLE shards ADD COLUMN n_parallel INTEGER;
UPDATE shards SET n_parallel = 1;
