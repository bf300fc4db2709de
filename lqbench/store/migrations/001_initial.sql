-- The stable DuckDB contract (DESIGN.md): runs, nodes, models, tasks, samples, perplexity.
CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    status          VARCHAR NOT NULL,          -- running | finished | failed | interrupted
    config_json     VARCHAR NOT NULL,          -- the resolved plan
    lqbench_version VARCHAR NOT NULL,
    plan_name       VARCHAR
);

CREATE TABLE nodes (
    node_id           VARCHAR PRIMARY KEY,     -- stable fingerprint hash of the machine
    hostname          VARCHAR,
    cpu_model         VARCHAR,
    physical_cores    INTEGER,
    logical_cores     INTEGER,
    ram_gb            DOUBLE,
    os                VARCHAR,
    arch              VARCHAR,
    mem_bandwidth_gbs DOUBLE,
    llama_cpp_version VARCHAR,
    labels_json       VARCHAR,
    first_seen        TIMESTAMP,
    last_seen         TIMESTAMP
);

CREATE TABLE models (
    model_id        VARCHAR PRIMARY KEY,       -- first 16 hex of the file's sha256
    name            VARCHAR NOT NULL,
    quant           VARCHAR NOT NULL,
    path            VARCHAR,
    sha256          VARCHAR NOT NULL,
    file_bytes      BIGINT,
    n_params        BIGINT,
    bits_per_weight DOUBLE,
    base_sha256     VARCHAR,
    requantized     BOOLEAN,
    architecture    VARCHAR
);

CREATE TABLE tasks (
    suite         VARCHAR NOT NULL,
    task_id       VARCHAR NOT NULL,
    prompt        VARCHAR NOT NULL,
    tests         VARCHAR NOT NULL,
    stop_tokens   VARCHAR[],
    suite_version VARCHAR NOT NULL,
    topic         VARCHAR,
    difficulty    VARCHAR,
    PRIMARY KEY (suite, suite_version, task_id)
);

CREATE TABLE shards (
    run_id      VARCHAR NOT NULL,
    shard_id    VARCHAR NOT NULL,
    node_id     VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,
    suite       VARCHAR NOT NULL,
    n_tasks     INTEGER,
    load_ms     DOUBLE,                        -- model load time on that node
    n_threads   INTEGER,
    started_at  TIMESTAMP,
    finished_at TIMESTAMP,
    status      VARCHAR                        -- finished | failed | lost
);

CREATE TABLE samples (
    run_id        VARCHAR NOT NULL,
    node_id       VARCHAR NOT NULL,
    model_id      VARCHAR NOT NULL,
    suite         VARCHAR NOT NULL,
    task_id       VARCHAR NOT NULL,
    sample_idx    INTEGER NOT NULL,
    replica       VARCHAR NOT NULL DEFAULT '', -- '' for spread placement; the node for every-node
    seed          BIGINT,
    completion    VARCHAR,
    status        VARCHAR NOT NULL,            -- pass | assertion_failure | runtime_error | syntax_error | timeout | memory_limit | sandbox_violation | generation_error
    passed        BOOLEAN NOT NULL,
    error         VARCHAR,
    prompt_tokens INTEGER,
    gen_tokens    INTEGER,
    prompt_ms     DOUBLE,
    gen_ms        DOUBLE,
    ttft_ms       DOUBLE,
    wall_ms       DOUBLE,
    score_ms      DOUBLE,
    peak_rss_mb   DOUBLE,
    created_at    TIMESTAMP NOT NULL,
    shard_id      VARCHAR,
    suite_version VARCHAR,
    temperature   DOUBLE,
    finish_reason VARCHAR,                     -- stop | length
    n_threads     INTEGER,
    PRIMARY KEY (run_id, model_id, suite, task_id, sample_idx, replica)
);

CREATE TABLE perplexity (
    run_id         VARCHAR NOT NULL,
    node_id        VARCHAR NOT NULL,
    model_id       VARCHAR NOT NULL,
    corpus         VARCHAR NOT NULL,
    tokens         BIGINT,
    ppl            DOUBLE,
    kld_mean       DOUBLE,
    top1_agreement DOUBLE,
    base_model_id  VARCHAR,
    created_at     TIMESTAMP
);
