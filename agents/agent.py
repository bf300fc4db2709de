"""The laptop's agent: one Ray actor per node that owns the node's cores and runs shards.

It keeps the loaded model between shards of the same model (the scheduler sends it
those first) and one scorer pool for its lifetime. `run_shard` is a Ray streaming
generator: each sample goes back to the head the moment it is scored, so a laptop
that vanishes mid-shard loses only the sample it was working on.
"""

from __future__ import annotations

import os

import ray

from lqbench.records import PerplexityRecord, ShardRecord, utc_now
from lqbench.shard import Shard, run_shard

AGENT_RESOURCE = "lqbench_agent"  # one unit per node: exactly one agent per laptop


@ray.remote(max_restarts=0)
class NodeAgent:
    def __init__(self, name: str, labels: dict, n_threads: int | None = None, measure_bandwidth: bool = True,
                 model_server=None):
        from lqbench.hardware import fingerprint, physical_cores, split_labels

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
        self.node_id = self.fp["node_id"]
        self.n_threads = n_threads or physical_cores()
        self._generator = None
        self._generator_key = None
        self._pool = None
        self._pool_key = None

    def info(self) -> dict:
        return self.fp

    def _model_path(self, model: dict) -> str:
        from agents.model_files import ensure_model

        # Own cache, else the head's path if this laptop sees it, else streamed from the head's ModelServer.
        return ensure_model(model, self.model_server)

    def _load(self, path: str, n_threads: int, n_ctx: int) -> float | None:
        """Load the model unless it is already loaded; the load time in ms, or None if reused."""
        key = (path, n_threads, n_ctx)
        if self._generator_key == key:
            return None
        if self._generator is not None:
            self._generator.close()
            self._generator, self._generator_key = None, None
        from lqbench.generation import LlamaGenerator

        self._generator = LlamaGenerator(path, n_threads=n_threads, n_ctx=n_ctx)
        self._generator_key = key
        return self._generator.load_ms

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

    def run_shard(self, shard_dict: dict, skip: list):
        """Yield {"kind": "sample"|"perplexity", "record": ...} per result, then {"kind": "shard", ...}."""
        shard = Shard.from_dict(shard_dict)
        if shard.kind == "perplexity":
            yield from self._run_perplexity(shard, {tuple(k) for k in skip})
            return
        started = utc_now()
        n_threads = int(shard.inference.get("n_threads") or self.n_threads)
        path = self._model_path(shard.model)
        load_ms = self._load(path, n_threads, int(shard.inference.get("n_ctx", 2048)))
        scorer = self._scorer(shard.scoring)
        skip_keys = {tuple(k) for k in skip}
        from lqbench.energy import ShardMeter

        with ShardMeter() as meter:  # energy and thermal state over the sample loop (model load excluded)
            for record in run_shard(shard, self._generator, scorer, node_id=self.node_id, n_threads=n_threads,
                                    skip=skip_keys):
                meter.observe(record.gen_tokens, record.gen_ms)
                yield {"kind": "sample", "record": record.to_dict()}
        yield {"kind": "shard", "record": ShardRecord(
            run_id=shard.run_id, shard_id=shard.shard_id, node_id=self.node_id, model_id=shard.model_id,
            suite=shard.suite, n_tasks=len(shard.tasks), load_ms=load_ms, n_threads=n_threads,
            started_at=started, finished_at=utc_now(), status="finished", **meter.columns()).__dict__}

    def _run_perplexity(self, shard: Shard, skip: set):
        """The whole ladder on this node: the base's distributions once, every rung against them."""
        import tempfile

        from lqbench.models import ModelFile
        from lqbench.perplexity import compute_perplexity

        started = utc_now()
        n_threads = int(shard.inference.get("n_threads") or self.n_threads)
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
                result = compute_perplexity(path, shard.text, n_threads=n_threads,
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
        yield {"kind": "shard", "record": ShardRecord(
            run_id=shard.run_id, shard_id=shard.shard_id, node_id=self.node_id, model_id=shard.model_id,
            suite=shard.corpus, n_tasks=len(order), load_ms=None, n_threads=n_threads, started_at=started,
            finished_at=utc_now(), status="finished").__dict__}

    def pid(self) -> int:
        return os.getpid()
