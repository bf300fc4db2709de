-- Engine provenance (issue: heterogeneous nodes). A result is comparable only with results of the
-- same llama.cpp build and configuration, so every sample and shard says which produced it:
--   engine_build  = "<llama-cpp-python version>+<12 hex of the compiled libraries' sha256>"
--   engine_config = lqbench.engine.EngineConfig.label, e.g. "extra_bufts=on"
-- Shards also record attempts that ended in a crash or hang (status crashed | hung, with error).
ALTER TABLE samples ADD COLUMN engine_build VARCHAR;
ALTER TABLE samples ADD COLUMN engine_config VARCHAR;
ALTER TABLE shards ADD COLUMN engine_build VARCHAR;
ALTER TABLE shards ADD COLUMN engine_config VARCHAR;
ALTER TABLE shards ADD COLUMN error VARCHAR;
-- The node's engine as last seen: build, llama.cpp's system_info, and the configuration its
-- inference check (lqbench join / the agent's first load) found working.
ALTER TABLE nodes ADD COLUMN engine_build VARCHAR;
ALTER TABLE nodes ADD COLUMN engine_system_info VARCHAR;
ALTER TABLE nodes ADD COLUMN engine_config VARCHAR;
