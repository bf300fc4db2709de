"""The laptop's agent: one Ray actor per node that owns the node's cores and runs shards.

The model lives in an engine child process (`lqbench.engine_process`), never in the agent:
a llama.cpp crash or hang ends that child, and the agent reports it ({"kind": "failure"})
instead of dying with it. The scheduler says which engine configuration to use for each
shard (a safer one after a crash). The agent keeps the loaded model between shards of the
same model (the scheduler sends it those first) and one scorer pool for its lifetime.
`run_shard` is a Ray streaming generator: each sample goes back to the head the moment it
is scored, so a laptop that vanishes mid-shard loses only the sample it was working on.
"""

from __future__ import annotations

import os

import ray

from lqbench.engine_process import IsolatedGenerator
from lqbench.records import PerplexityRecord, ShardRecord, SpeedRecord, utc_now
from lqbench.shard import Shard, run_shard

AGENT_RESOURCE = "lqbench_agent"  # one unit per node: exactly one agent per laptop


@ray.remote(max_restarts=0)
class NodeAgent:
    def __init__(self, name: str, labels: dict, n_threads: int | None = None, measure_bandwidth: bool = True,
                 model_server=None):
        from lqbench.engine import build_info
        from lqbench.engine_process import EngineProcess
        from lqbench.hardware import ENGINE_CONFIG_LABEL, fingerprint, physical_cores, split_labels

        # Ray starts workers niced (worker_niceness); the agent owns this laptop's cores, and a
        # niced llama.cpp loses its threads to any other program, which distorts every timing.
        # Raising priority back needs privileges: where we lack them we keep Ray's niceness.
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        except (AttributeError, PermissionError, OSError):
            pass

        self.model_server = model_server  # cluster.model_server.ModelServer handle, or None (shared disk only)
        # `lqbench join` already measured this laptop and put it in lqbench-* labels; keep only
        # the user's own labels in labels_json and reuse the join's bandwidth measurement.
        ours, user = split_labels(labels)
        joined_bw = ours.get("lqbench-mem-bw-gbs")
        self.fp = fingerprint(measure_bandwidth=measure_bandwidth and not joined_bw, labels=user, name=name)
        if joined_bw:
            self.fp["mem_bandwidth_gbs"] = float(joined_bw)
        # The engine build is read here (a version and a hash of its libraries: nothing runs); which
        # configuration works is what `lqbench join`'s inference check found, carried as a label.
        self.engine_build = build_info()
        joined_config = ours.get(ENGINE_CONFIG_LABEL)
        self.fp.update(engine_build=self.engine_build["label"], engine_system_info=self.engine_build["system_info"],
                       engine_config=f"extra_bufts={joined_config}" if joined_config else None)
        self.node_id = self.fp["node_id"]
        self.n_threads = n_threads or physical_cores()
        self._engine = EngineProcess(node_name=name)
        self._pool = None
        self._pool_key = None

    def info(self) -> dict:
        return self.fp

    def _model_path(self, model: dict) -> str:
        from agents.model_files import ensure_model

        # Own cache, else the head's path if this laptop sees it, else streamed from the head's ModelServer.
        return ensure_model(model, self.model_server)

    def _scorer(self, scoring: dict):
        from lqbench.scorer import ScoreLimits, ScorerPool

        key = tuple(sorted(scoring.items()))
        if self._pool_key != key:
            if self._pool is not None:
                self._pool.close()
            # One scoring process: llama.cpp already uses the cores, and scoring takes milliseconds.
            self._pool = ScorerPool(jobs=1, limits=ScoreLimits(**scoring))
            self._pool_key = key
        return self._pool

    def run_shard(self, shard_dict: dict, skip: list, engine_config: dict | None = None):
        """Yield {"kind": "sample"|"perplexity", "record": ...} per result, then {"kind": "shard", ...};
        or, if the engine crashed or hung, the attempt's shard record and then {"kind": "failure", ...}."""
        from lqbench.engine import EngineConfig, EngineFailure

        shard = Shard.from_dict(shard_dict)
        config = EngineConfig.from_dict(engine_config)
        self._engine.hang_timeout_s = float(shard.inference.get("hang_timeout_s", self._engine.hang_timeout_s))
        started = utc_now()
        n_threads = int(shard.inference.get("n_threads") or self.n_threads)
        n_parallel = None  # sequences decoded together, once the model is loaded

        def shard_record(status: str, load_ms=None, error=None, energy=None) -> dict:
            return ShardRecord(
                run_id=shard.run_id, shard_id=shard.shard_id, node_id=self.node_id, model_id=shard.model_id,
                suite={"perplexity": shard.corpus, "speed": "speed"}.get(shard.kind, shard.suite),
                n_tasks={"perplexity": len(shard.ladder), "speed": 0}.get(shard.kind, len(shard.tasks)), load_ms=load_ms,
                n_threads=n_threads, started_at=started, finished_at=utc_now(), status=status,
                engine_config=config.label, engine_build=self.engine_build["label"], error=error,
                n_parallel=n_parallel,
                **(energy or {})).__dict__

        try:
            if shard.kind == "perplexity":
                yield from self._run_perplexity(shard, {tuple(k) for k in skip}, config, n_threads)
                yield {"kind": "shard", "record": shard_record("finished")}
                return
            path = self._model_path(shard.model)
            parallel = shard.inference.get("parallel", 1)
            if shard.kind == "speed":
                parallel = 1  # the probe measures a single stream, in the generator's own full-size context
            load_ms = self._engine.load(path, config, n_threads=n_threads,
                                        n_ctx=int(shard.inference.get("n_ctx", 2048)),
                                        n_parallel=0 if parallel == "auto" else int(parallel))
            n_parallel = self._engine.n_parallel
            if shard.kind == "speed":
                yield self._run_speed(shard, config)
                yield {"kind": "shard", "record": shard_record("finished", load_ms)}
                return
            scorer = self._scorer(shard.scoring)
            skip_keys = {tuple(k) for k in skip}
            generator = IsolatedGenerator(self._engine)
            from lqbench.energy import ShardMeter

            with ShardMeter() as meter:  # energy and thermal state over the sample loop (model load excluded)
                for record in run_shard(shard, generator, scorer, node_id=self.node_id, n_threads=n_threads,
                                        skip=skip_keys, engine_config=config.label,
                                        engine_build=self.engine_build["label"]):
                    meter.observe(record.gen_tokens, record.gen_ms)
                    yield {"kind": "sample", "record": record.to_dict()}
            yield {"kind": "shard", "record": shard_record("finished", load_ms, energy=meter.columns())}
        except EngineFailure as failure:
            yield {"kind": "shard", "record": shard_record(failure.what, error=failure.reason)}
            yield {"kind": "failure", "what": failure.what, "reason": failure.reason}

    def _run_speed(self, shard: Shard, config) -> dict:
        """The speed probe on the loaded model, alone: an agent runs one shard at a time and its scorer
        pool is idle between samples, so nothing of ours competes for the cores meanwhile."""
        from lqbench.speed import plan_tests

        settings = shard.sampling
        tests = plan_tests(settings["n_prompt"], settings["n_gen"])
        prompts = [t.prompt for t in shard.tasks] if settings.get("median_prompt") else []
        result = self._engine.speed([(t.n_prompt, t.n_gen) for t in tests], reps=int(settings["reps"]),
                                    warmup=bool(settings.get("warmup", True)), median_of=prompts)
        records = SpeedRecord.from_probe(result, run_id=shard.run_id, node_id=self.node_id,
                                         model_id=shard.model_id, replica=shard.replica,
                                         engine_build=self.engine_build["label"], engine_config=config.label)
        return {"kind": "speed", "records": [r.__dict__ for r in records]}

    def _run_perplexity(self, shard: Shard, skip: set, config, n_threads: int):
        """The whole ladder on this node: the base's distributions once, every rung against them."""
        import tempfile

        from lqbench.models import ModelFile

        settings = {k: v for k, v in shard.sampling.items() if v is not None}
        base = ModelFile.from_dict({**shard.model, "path": self._model_path(shard.model)})
        with tempfile.TemporaryDirectory(prefix="lqbench-ppl-") as workdir:
            base_npz = f"{workdir}/base.npz"
            order = [shard.model] + [m for m in shard.ladder if m["model_id"] != shard.model_id]
            for row in order:
                is_base = row["model_id"] == shard.model_id
                if not is_base and ("perplexity", row["model_id"], shard.corpus) in skip:
                    continue
                path = base.path if is_base else self._model_path(row)
                result = self._engine.perplexity(config, model_path=path, text=shard.text, n_threads=n_threads,
                                                 save_logits_path=base_npz if is_base else None,
                                                 base_logits_path=None if is_base else base_npz, **settings)
                if is_base:
                    if ("perplexity", row["model_id"], shard.corpus) in skip:
                        continue
                    result.update(kld_mean=0.0, top1_agreement=1.0)
                yield {"kind": "perplexity", "record": PerplexityRecord(
                    run_id=shard.run_id, node_id=self.node_id, model_id=row["model_id"], corpus=shard.corpus,
                    tokens=int(result["tokens"]), ppl=float(result["ppl"]), kld_mean=result["kld_mean"],
                    top1_agreement=result["top1_agreement"], base_model_id=shard.model_id,
                    created_at=utc_now()).__dict__}

    def pid(self) -> int:
        return os.getpid()
