"""Shards: the unit of work a laptop takes, and `run_shard()`, which does it.

A generation shard is one model file x one suite x a chunk of tasks x n samples
each, with the sampling and scoring settings. A perplexity shard is one model's
whole quant ladder on one corpus: the base's distributions are computed once and
every quant is compared against them on the same node. A speed shard is the speed probe
(lqbench.speed) of one model file on one named node, once per run. Its id is the hash of its canonical JSON, so
the same plan always yields the same shards. `run_shard()` is pure Python (no Ray):
the agent on a laptop calls it with a loaded generator and a scorer pool and
streams the `SampleRecord`s it yields back to the head.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from lqbench.records import SampleRecord, utc_now
from lqbench.tasks import TaskSpec


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Shard:
    run_id: str
    model: dict  # the models-table row of the model file (model_id, name, quant, path, sha256, file_bytes, ...)
    suite: str
    suite_version: str
    tasks: tuple[TaskSpec, ...]
    sampling: dict
    n_samples: int
    scoring: dict
    inference: dict
    replica: str = ""  # '' = anywhere (spread); a node name = must run there (every-node placement)
    select: dict = field(default_factory=dict)  # node label selector from the plan
    kind: str = "generate"  # "generate" | "perplexity" | "speed"
    ladder: tuple[dict, ...] = ()  # perplexity: every model row of the ladder; `model` is its base
    corpus: str = ""  # perplexity: the corpus name recorded in the perplexity table
    text: str = ""  # perplexity: the corpus text
    prompt: dict = field(default_factory=dict)  # lqbench.prompt_styles: {} = completion, else the resolved chat style

    @property
    def model_id(self) -> str:
        return self.model["model_id"]

    @property
    def shard_id(self) -> str:
        ident = {
            "model_sha256": self.model["sha256"],
            "quant": self.model["quant"],
            "suite": self.suite,
            "suite_version": self.suite_version,
            "task_ids": [t.task_id for t in self.tasks],
            "sampling": self.sampling,
            "n_samples": self.n_samples,
            "replica": self.replica,
        }
        if self.kind != "generate":
            ident.update(kind=self.kind, ladder=[m["sha256"] for m in self.ladder], corpus=self.corpus)
        if self.prompt:
            from lqbench.prompt_styles import prompt_identity

            ident["prompt"] = prompt_identity(self.prompt)
        return hashlib.sha256(_canonical(ident).encode()).hexdigest()[:16]

    @property
    def prompt_style(self) -> str:
        return self.prompt.get("style", "completion") if self.prompt else "completion"

    def sample_key(self, task_id: str, idx: int) -> tuple:
        """(model_id, suite, task_id, sample_idx, replica, prompt_style): SampleRecord.key of that sample."""
        return (self.model_id, self.suite, task_id, idx, self.replica, self.prompt_style)

    def sample_keys(self) -> list[tuple]:
        """The key of every sample this shard owes."""
        return [self.sample_key(t.task_id, i) for t in self.tasks for i in range(self.n_samples)]

    def without(self, done: set[tuple]) -> "Shard | None":
        """This shard minus tasks whose samples are all done; None if nothing is left.
        A perplexity shard is all or nothing: it is done when every rung's key is in `done`; so is a speed shard."""
        if self.kind == "perplexity":
            return None if all(k in done for k in self.perplexity_keys()) else self
        if self.kind == "speed":
            return None if all(k in done for k in self.speed_keys()) else self
        left = tuple(t for t in self.tasks
                     if any(self.sample_key(t.task_id, i) not in done for i in range(self.n_samples)))
        if not left:
            return None
        return Shard(**{**self.__dict__, "tasks": left})

    def perplexity_keys(self) -> list[tuple]:
        """("perplexity", model_id, corpus, node-independent) keys this perplexity shard owes."""
        return [("perplexity", m["model_id"], self.corpus) for m in self.ladder]

    def speed_keys(self) -> list[tuple]:
        """("speed", model_id, node name) of a speed shard (SpeedRecord.key), else nothing."""
        return [("speed", self.model_id, self.replica)] if self.kind == "speed" else []

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["tasks"] = [t.to_dict() for t in self.tasks]
        d["ladder"] = list(self.ladder)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Shard":
        d = dict(d)
        d["tasks"] = tuple(TaskSpec.from_dict(t) for t in d["tasks"])
        d["ladder"] = tuple(d.get("ladder", ()))
        return cls(**d)


def make_perplexity_shards(run_id: str, ladders: list[tuple[dict, list[dict], dict]], corpus: str, text: str,
                           settings: dict, inference: dict) -> list[Shard]:
    """One shard per model ladder: (base row, all rows, node selector)."""
    return [Shard(run_id=run_id, model=base, suite="", suite_version="", tasks=(), sampling=dict(settings),
                  n_samples=0, scoring={}, inference=dict(inference), select=dict(select), kind="perplexity",
                  ladder=tuple(rows), corpus=corpus, text=text)
            for base, rows, select in ladders]


def make_speed_shards(run_id: str, model_rows: list[tuple[dict, dict]], nodes_for, settings: dict, inference: dict,
                      tasks: tuple[TaskSpec, ...] = ()) -> list[Shard]:
    """One speed-probe shard per model file x node: `nodes_for(select)` names the nodes a model's selector
    admits (every node, whatever the plan's placement: speed is a property of a node). `tasks` are the
    prompts whose median token length gets its own pp test ([speed] median_prompt); empty: none."""
    return [Shard(run_id=run_id, model=row, suite="", suite_version="", tasks=tuple(tasks), sampling=dict(settings),
                  n_samples=0, scoring={}, inference=dict(inference), replica=node, select=dict(select), kind="speed")
            for row, select in model_rows for node in nodes_for(select)]


def sample_seed(base_seed: int, task_id: str, sample_idx: int) -> int:
    """A reproducible per-sample seed: same plan seed -> same samples on any node."""
    return (base_seed * 1_000_003 + zlib.crc32(task_id.encode()) + sample_idx) % (2**31 - 1)


def chunk_tasks(tasks: list[TaskSpec], size: int) -> list[tuple[TaskSpec, ...]]:
    return [tuple(tasks[i:i + size]) for i in range(0, len(tasks), size)]


def make_shards(
    run_id: str,
    model_rows: list[tuple[dict, dict]],
    suites: list[tuple[str, str, list[TaskSpec]]],
    *,
    sampling: dict,
    scoring: dict,
    inference: dict,
    shard_size: int,
    replicas: Iterable[str] = ("",),
    prompt: dict | None = None,
) -> list[Shard]:
    """Plan -> shards: every (model file, selector) x suite x task chunk x replica.

    `model_rows` pairs each model-file row with its node selector; `suites` holds
    (name, version, selected tasks); `replicas` is ("",) for spread placement or the
    node names for every-node placement; `prompt` is the prompt style
    (lqbench.prompt_styles.resolve_prompts; None or {} = completion).
    """
    shards = []
    for model, select in model_rows:
        for suite_name, version, tasks in suites:
            for chunk in chunk_tasks(tasks, shard_size):
                for replica in replicas:
                    shards.append(Shard(run_id=run_id, model=model, suite=suite_name, suite_version=version,
                                        tasks=chunk, sampling=dict(sampling), n_samples=int(sampling.get("n", 1)),
                                        scoring=dict(scoring), inference=dict(inference), replica=replica,
                                        select=dict(select), prompt=dict(prompt or {})))
    return shards


def run_shard(
    shard: Shard,
    generator,
    scorer,
    *,
    node_id: str,
    n_threads: int,
    skip: set[tuple] = frozenset(),
    should_stop: Callable[[], bool] = lambda: False,
    engine_config: str = "",
    engine_build: str = "",
) -> Iterator[SampleRecord]:
    """Generate and score every sample of `shard` not in `skip`, yielding one record each.

    `generator` follows the Generator protocol (lqbench.generation); `scorer` has
    `score(program) -> Verdict` (a lqbench.scorer.ScorerPool). A generation that
    raises is recorded as status `generation_error`, not dropped: the sample exists.
    An `EngineFailure` (the engine process crashed or hung) is not a sample's error:
    it propagates, and the samples not yielded yet are the shard's remaining work.
    `engine_config` (an `EngineConfig.label`) and `engine_build` (`lqbench.engine.build_info`'s
    label) are recorded with every sample.

    A generator with `n_parallel` > 1 (an engine loaded for batched decoding, lqbench.batched)
    gets all the shard's samples at once through `generate_many` and they come back, and are
    scored, in the order they end; otherwise samples are made one at a time, in order.
    """
    from lqbench.prompt_styles import PromptStyle

    style = PromptStyle(shard.prompt)  # completion (MultiPL-E) or chat: prompt, stops, extraction
    todo = [_Todo(task, idx, sample_seed(int(shard.sampling.get("seed", 0)), task.task_id, idx))
            for task in shard.tasks for idx in range(shard.n_samples)
            if shard.sample_key(task.task_id, idx) not in skip]
    n_parallel = int(getattr(generator, "n_parallel", 1) or 1)
    made = (_made_together(generator, style, shard, todo) if n_parallel > 1
            else _made_one_at_a_time(generator, style, shard, todo, should_stop))
    for item, outcome in made:
        if isinstance(outcome, Exception):  # one bad prompt must not sink the shard
            yield _record(shard, item.task, item.idx, item.seed, node_id, n_threads, completion="",
                          status="generation_error", passed=False, error=f"{type(outcome).__name__}: {outcome}"[:500],
                          tokens=(0, 0), ms=(0.0, 0.0, 0.0, item.wall_ms), score_ms=0.0, rss=item.rss,
                          finish="error", engine=(engine_config, engine_build), n_parallel=n_parallel)
        else:
            verdict = style.score(scorer, item.task, outcome.text)
            yield _record(shard, item.task, item.idx, item.seed, node_id, n_threads, completion=outcome.text,
                          status=verdict.status, passed=verdict.passed, error=verdict.error,
                          tokens=(outcome.prompt_tokens, outcome.gen_tokens),
                          ms=(outcome.prompt_ms, outcome.gen_ms, outcome.ttft_ms, outcome.wall_ms),
                          score_ms=verdict.ms, rss=item.rss, finish=outcome.finish_reason,
                          engine=(engine_config, engine_build), extraction=verdict.extraction,
                          program=verdict.program, n_parallel=n_parallel)
        if n_parallel > 1 and should_stop():
            made.close()  # the engine drops the samples still in its batch
            return


@dataclass
class _Todo:
    task: TaskSpec
    idx: int
    seed: int
    wall_ms: float = 0.0  # of a generation that failed
    rss: float | None = None  # peak RSS of the generating process

    def params(self, shard: Shard):
        from lqbench.generation import SamplingParams

        return SamplingParams.from_dict({**shard.sampling, "seed": self.seed})


def _made_one_at_a_time(generator, style, shard: Shard, todo: list[_Todo], should_stop):
    """(item, Completion or the exception its generation raised), one sample after another."""
    from lqbench.engine import EngineFailure
    from lqbench.memory import peak_rss_mb, reset_peak

    for item in todo:
        if should_stop():
            return
        reset_peak()
        t0 = time.perf_counter()
        try:
            comp = style.generate(generator, item.task, item.params(shard))
        except EngineFailure:
            raise
        except Exception as exc:
            item.wall_ms, item.rss = (time.perf_counter() - t0) * 1000, peak_rss_mb()
            yield item, exc
            continue
        # A generator in another process measures its own peak; an in-process one is measured here.
        item.rss = comp.peak_rss_mb if comp.peak_rss_mb is not None else peak_rss_mb()
        yield item, comp


def _made_together(generator, style, shard: Shard, todo: list[_Todo]):
    """(item, Completion or exception) in the order the batched engine finishes them."""
    requests = [{"key": i, **style.request(item.task), "params": item.params(shard).to_dict()}
                for i, item in enumerate(todo)]
    results = generator.generate_many(requests)
    try:
        for key, outcome in results:
            item = todo[key]
            if not isinstance(outcome, Exception):
                item.rss = outcome.peak_rss_mb
            yield item, outcome
    finally:
        results.close()


def failed_records(shard: Shard, node_id: str, error: str, skip: set[tuple] = frozenset()) -> list[SampleRecord]:
    """`generation_error` records for every sample of `shard` not in `skip`: work that no node could
    do (its engine crashed everywhere it was tried), recorded with the cause instead of left missing.
    Nothing was measured, so tokens, timings and memory are NULL."""
    return [_record(shard, task, idx, sample_seed(int(shard.sampling.get("seed", 0)), task.task_id, idx), node_id,
                    None, completion="", status="generation_error", passed=False, error=error[:500],
                    tokens=(None, None), ms=(None, None, None, None), score_ms=None, rss=None, finish="error",
                    n_parallel=None)
            for task in shard.tasks for idx in range(shard.n_samples)
            if shard.sample_key(task.task_id, idx) not in skip]


def _record(shard, task, idx, seed, node_id, n_threads, *, completion, status, passed, error, tokens, ms,
            score_ms, rss, finish, engine=("", ""), extraction=None, program=None, n_parallel=1) -> SampleRecord:
    from lqbench.prompt_styles import record_fields

    return SampleRecord(
        run_id=shard.run_id, node_id=node_id, model_id=shard.model_id, suite=shard.suite, task_id=task.task_id,
        sample_idx=idx, replica=shard.replica, seed=seed, completion=completion, status=status, passed=bool(passed),
        error=error, prompt_tokens=tokens[0], gen_tokens=tokens[1], prompt_ms=ms[0], gen_ms=ms[1], ttft_ms=ms[2],
        wall_ms=ms[3], score_ms=score_ms, peak_rss_mb=None if rss is None else round(rss, 1), created_at=utc_now(), shard_id=shard.shard_id,
        suite_version=shard.suite_version, temperature=float(shard.sampling.get("temperature", 0.0)),
        finish_reason=finish, n_threads=n_threads, engine_config=engine[0], engine_build=engine[1],
        extraction=extraction, program=program, n_parallel=n_parallel, **record_fields(shard.prompt),
    )
