-- Imported runs: other harnesses' generations rescored by our sandbox (`lqbench import`).
--
-- An imported run is a `runs` row with status 'imported' (and plan_name 'import: SOURCE') plus one
-- `imports` row; its samples have NULL generation timings, node_id 'imported' and no shards, so
-- every speed, energy or node query leaves them out by run_id (NOT IN imports) or by the NULLs.
-- The model that wrote them has no GGUF here: its `models` row has sha256 =
-- sha256("lqbench-import" NUL name NUL quant NUL source), model_id its first 16 hex, path
-- 'import:SOURCE' and NULL file_bytes / n_params / bits_per_weight.
CREATE TABLE imports (
    run_id      VARCHAR PRIMARY KEY,
    source      VARCHAR NOT NULL,              -- --source: where the generations came from (a URL, a paper, ...)
    n_programs  INTEGER NOT NULL,              -- programs recorded by this import
    n_skipped   INTEGER NOT NULL,              -- issues reported and skipped (one program, or a whole file, each)
    issues_json VARCHAR,                       -- JSON list of the issues, "file:line: why"
    imported_at TIMESTAMP NOT NULL
);

-- Every input file of an import, content-addressed: the same bytes imported again add nothing.
CREATE TABLE import_files (
    run_id     VARCHAR NOT NULL,
    path       VARCHAR NOT NULL,               -- absolute path at import time
    sha256     VARCHAR NOT NULL,
    bytes      BIGINT NOT NULL,
    format     VARCHAR NOT NULL,               -- multipl-e-completions | multipl-e-results | bigcode-generations | program | verdicts-csv | suite (a --suite file)
    n_programs INTEGER NOT NULL,               -- programs of this file recorded by this import
    PRIMARY KEY (run_id, path)
);

-- One row per imported sample (same key as samples): where it came from and the original verdict.
CREATE TABLE import_samples (
    run_id             VARCHAR NOT NULL,
    model_id           VARCHAR NOT NULL,
    suite              VARCHAR NOT NULL,
    task_id            VARCHAR NOT NULL,
    sample_idx         INTEGER NOT NULL,
    replica            VARCHAR NOT NULL DEFAULT '',
    origin_key         VARCHAR NOT NULL UNIQUE,  -- sha256(model_id, input file sha256, place in the file): idempotence
    origin             VARCHAR NOT NULL,         -- human-readable place: file:line, file:line#k, or the .lua file
    format             VARCHAR NOT NULL,
    scored_program     VARCHAR,                  -- NULL when the program was tasks.prompt + completion + '\n' + tests
    original_harness   VARCHAR,                  -- multipl-e | verdicts-csv | NULL when the input had no verdict
    original_status    VARCHAR,                  -- the harness's own word, as given (e.g. OK, Exception, Timeout)
    original_passed    BOOLEAN,
    original_exit_code INTEGER,
    PRIMARY KEY (run_id, model_id, suite, task_id, sample_idx, replica)
);
