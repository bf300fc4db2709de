"""Rows as they travel from a laptop to the head: one `SampleRecord` per generated sample.

Field names are the DuckDB `samples` columns, so the writer inserts them as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone

from lqbench.verdicts import VERDICTS

# A sample whose generation itself failed (e.g. the prompt exceeded the context) is recorded, not dropped;
# a chat reply with no code in it is `no_code` (lqbench.prompt_styles): never scored, not a syntax error.
STATUSES = VERDICTS + ("generation_error", "no_code")


def utc_now() -> str:
    """Timestamps are naive UTC ISO strings, which DuckDB reads as TIMESTAMP."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


@dataclass
class SampleRecord:
    run_id: str
    node_id: str
    model_id: str
    suite: str
    task_id: str
    sample_idx: int
    replica: str
    seed: int
    completion: str
    status: str
    passed: bool
    error: str | None
    prompt_tokens: int
    gen_tokens: int
    prompt_ms: float
    gen_ms: float
    ttft_ms: float
    wall_ms: float
    score_ms: float
    peak_rss_mb: float
    created_at: str  # ISO-8601 UTC
    shard_id: str
    suite_version: str
    temperature: float
    finish_reason: str
    n_threads: int
    engine_config: str = ""  # lqbench.engine.EngineConfig.label of the engine that generated it
    engine_build: str = ""  # lqbench.engine.build_info()["label"]: llama-cpp-python version + library hash
    # Prompt style (lqbench.prompt_styles). Chat samples keep the raw reply in `completion`, the code
    # scored in front of the tests in `program`, and how it was taken from the reply in `extraction`.
    prompt_style: str = "completion"
    instruction: str | None = None  # the instruction template's name (chat)
    instruction_version: str | None = None  # a hash of its content and of the extraction rules
    chat_template: str | None = None  # ChatTemplate.id: "gguf:<hash>", "<name>:<hash>" or "plan:<hash>"
    extraction: str | None = None  # fence | whole | none (chat)
    program: str | None = None
    # Sequences decoded together when this sample was made (lqbench.batched; 1 = one at a time). Only
    # samples with n_parallel = 1 have single-stream timings; NULL where nothing was measured.
    n_parallel: int | None = 1

    @property
    def key(self) -> tuple:
        return (self.model_id, self.suite, self.task_id, self.sample_idx, self.replica, self.prompt_style)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class ShardRecord:
    run_id: str
    shard_id: str
    node_id: str
    model_id: str
    suite: str
    n_tasks: int
    load_ms: float
    n_threads: int
    started_at: str
    finished_at: str
    status: str  # finished | crashed | hung
    engine_config: str = ""
    engine_build: str = ""
    error: str | None = None  # why a crashed or hung attempt ended
    # Energy and thermal state over the shard's sample loop (lqbench.energy.ShardMeter.columns(); migration 004).
    # Defaults are "not measured": energy_method 'none' with NULL joules, never an estimate.
    energy_j: float | None = None
    energy_method: str = "none"
    energy_s: float | None = None
    energy_domains_json: str | None = None
    energy_note: str | None = None
    power_source: str | None = None
    battery_pct_start: float | None = None
    battery_pct_end: float | None = None
    cpu_mhz_start: float | None = None
    cpu_mhz_end: float | None = None
    temp_c_start: float | None = None
    temp_c_end: float | None = None
    throttle_events: int | None = None
    tg_drift: float | None = None
    throttled: bool | None = None
    throttle_evidence: str | None = None
    n_parallel: int | None = 1  # sequences decoded together in this shard (lqbench.batched)

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class PerplexityRecord:
    run_id: str
    node_id: str
    model_id: str
    corpus: str
    tokens: int
    ppl: float
    kld_mean: float | None
    top1_agreement: float | None
    base_model_id: str | None
    created_at: str

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class SpeedRecord:
    """One repetition of one speed-probe test (lqbench.speed) on a node x model file: a `speed` row."""

    run_id: str
    node_id: str
    model_id: str
    test: str  # llama-bench's label: pp512, tg128, pp512+tg128
    n_prompt: int
    n_gen: int
    rep: int
    ns: int
    ts: float
    created_at: str
    replica: str = ""  # the node name a cluster run scheduled the probe for; '' for `lqbench speed`
    n_batch: int | None = None
    n_ubatch: int | None = None
    n_threads: int | None = None
    n_ctx: int | None = None
    cpu_mhz_start: float | None = None
    cpu_mhz_end: float | None = None
    cpu_mhz_source: str | None = None
    energy_j: float | None = None
    energy_method: str = "none"
    energy_s: float | None = None
    energy_note: str | None = None
    warmup: bool | None = None
    engine_build: str = ""
    engine_config: str = ""

    @property
    def key(self) -> tuple:
        """("speed", model_id, replica): what a run owes per node x model file (Shard.speed_keys)."""
        return ("speed", self.model_id, self.replica)

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_probe(cls, result: dict, *, run_id: str, node_id: str, model_id: str, replica: str = "",
                   engine_build: str = "", engine_config: str = "") -> list["SpeedRecord"]:
        """The rows of one `EngineProcess.speed` result."""
        ctx = result["context"]
        now = utc_now()
        return [cls(run_id=run_id, node_id=node_id, model_id=model_id, replica=replica, created_at=now,
                    n_batch=ctx.get("n_batch"), n_ubatch=ctx.get("n_ubatch"), n_threads=ctx.get("n_threads"),
                    n_ctx=ctx.get("n_ctx"), warmup=ctx.get("warmup"), engine_build=engine_build,
                    engine_config=engine_config, **{k: r.get(k) for k in (
                        "test", "n_prompt", "n_gen", "rep", "ns", "ts", "cpu_mhz_start", "cpu_mhz_end",
                        "cpu_mhz_source", "energy_j", "energy_method", "energy_s", "energy_note")})
                for r in result["reps"]]
