-- Prompt styles (issue: instruct models). A sample is generated either as a MultiPL-E completion or
-- through the model's chat template; one run may hold both for the same model file, so the style is
-- part of a sample's key. Chat samples keep the raw reply (completion), the code that was scored in
-- front of the tests (program) and how it was taken from the reply (extraction: fence | whole | none).
ALTER TABLE samples ADD COLUMN prompt_style VARCHAR DEFAULT 'completion';
ALTER TABLE samples ADD COLUMN instruction VARCHAR;          -- instruction template name (chat)
ALTER TABLE samples ADD COLUMN instruction_version VARCHAR;  -- hash of its content and the extraction rules
ALTER TABLE samples ADD COLUMN chat_template VARCHAR;        -- gguf:<hash> | <named template>:<hash> | plan:<hash>
ALTER TABLE samples ADD COLUMN extraction VARCHAR;           -- fence | whole | none (chat); NULL for completion
ALTER TABLE samples ADD COLUMN program VARCHAR;              -- chat: the code run before the tests

-- DuckDB cannot change a primary key in place: copy the table (every column, including any that earlier
-- migrations added), then restore the key with prompt_style in it, the defaults and the NOT NULLs.
CREATE TABLE samples_005 AS SELECT * FROM samples;
DROP TABLE samples;
ALTER TABLE samples_005 RENAME TO samples;
ALTER TABLE samples ALTER COLUMN replica SET DEFAULT '';
ALTER TABLE samples ALTER COLUMN prompt_style SET DEFAULT 'completion';
ALTER TABLE samples ALTER COLUMN status SET NOT NULL;
ALTER TABLE samples ALTER COLUMN passed SET NOT NULL;
ALTER TABLE samples ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE samples ADD PRIMARY KEY (run_id, model_id, suite, task_id, sample_idx, replica, prompt_style);

-- An evaluation unit is now one task's samples in one run, on one replica, in one prompt style:
-- a chat and a completion sample of the same task are two evaluations, never averaged together.
CREATE OR REPLACE VIEW task_outcomes AS
SELECT s.run_id,
       s.model_id,
       m.name,
       m.quant,
       s.suite,
       s.task_id,
       s.replica,
       count(*)                                   AS n,         -- samples in the unit
       count(*) FILTER (WHERE s.passed)           AS c,         -- of which passed
       count(*) FILTER (WHERE s.passed) / count(*) AS pass_rate,
       min(s.temperature)                          AS temperature,
       s.prompt_style
FROM samples s
JOIN models m USING (model_id)
GROUP BY s.run_id, s.model_id, m.name, m.quant, s.suite, s.task_id, s.replica, s.prompt_style;
