"""What the scheduler does when a node's engine crashes or hangs: bounded retries, safer configs, exclusion.

A laptop fails in three ways, each its own word: *lost* (the node left the cluster; its work
goes elsewhere, nothing is counted against it), *crashed* (the node is alive but the process
running llama.cpp died: a SIGSEGV in a kernel, an abort, the OOM killer) and *hung* (alive,
but nothing came back for too long). Crashes and hangs are counted per (node, model file):

- after a failure the pair is retried with the next safer engine configuration
  (`lqbench.engine.fallback`: extra buffer types off), so samples then record that config;
- after `max_failures` failures the pair is excluded: the node takes no more work of that
  model file, and the shard's remaining samples go to other nodes;
- samples that no node can take any more are recorded as `generation_error` with `cause()`.

Pure bookkeeping (no Ray): `cluster/scheduler.py` feeds it and asks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lqbench.engine import DEFAULT, EngineConfig, fallback

DEFAULT_MAX_FAILURES = 3


@dataclass
class Failure:
    what: str  # crashed | hung
    reason: str  # "SIGSEGV during generate", "no reply to generate in 600 s", Ray's exit detail
    config: str  # EngineConfig.label in use when it happened


@dataclass
class PairRecord:
    node_key: str
    node_name: str
    node_id: str  # the fingerprint's node_id (what samples record)
    model_id: str
    model_label: str  # "name:quant"
    failures: list[Failure] = field(default_factory=list)
    config: EngineConfig | None = None  # the configuration to use next; None = the node's default
    excluded: bool = False


class FailureBook:
    def __init__(self, max_failures: int = DEFAULT_MAX_FAILURES):
        if max_failures < 1:
            raise ValueError("max_failures must be >= 1")
        self.max_failures = int(max_failures)
        self._pairs: dict[tuple[str, str], PairRecord] = {}

    def config_for(self, node_key: str, model_id: str, node_default: EngineConfig = DEFAULT) -> EngineConfig:
        pair = self._pairs.get((node_key, model_id))
        return pair.config if pair is not None and pair.config is not None else node_default

    def record(self, *, node_key: str, node_name: str, node_id: str, model_id: str, model_label: str, what: str,
               reason: str, config: EngineConfig) -> str:
        """Count one failure; "retry" (with `config_for` now safer where possible) or "exclude"."""
        pair = self._pairs.setdefault((node_key, model_id), PairRecord(node_key, node_name, node_id, model_id,
                                                                       model_label))
        pair.failures.append(Failure(what=what, reason=reason, config=config.label))
        if len(pair.failures) >= self.max_failures:
            pair.excluded = True
            return "exclude"
        pair.config = fallback(config) or config
        return "retry"

    def excluded(self, node_key: str, model_id: str) -> bool:
        pair = self._pairs.get((node_key, model_id))
        return pair is not None and pair.excluded

    def pairs(self) -> list[PairRecord]:
        return list(self._pairs.values())

    def excluded_pairs(self) -> list[PairRecord]:
        return [p for p in self._pairs.values() if p.excluded]

    def cause(self, model_id: str) -> str:
        """Why samples of `model_id` could not be generated: every excluded node, what happened there."""
        parts = [f"{p.node_name}: {describe(p)}" for p in self.excluded_pairs() if p.model_id == model_id]
        return "engine failed on every node that could run it — " + "; ".join(parts) if parts else ""

    def lines(self) -> list[str]:
        """One line per (model file x node) that failed, excluded or recovered."""
        out = []
        for p in self._pairs.values():
            if p.excluded:
                out.append(f"{p.model_label} on {p.node_name}: excluded after {describe(p)}")
            else:
                now = p.config.label if p.config is not None else "its default configuration"
                out.append(f"{p.model_label} on {p.node_name}: {describe(p)}; continued with {now}")
        return out


def describe(pair: PairRecord) -> str:
    """"crashed 3 times (SIGSEGV during generate) with extra_bufts=on, off, off"."""
    whats = sorted({f.what for f in pair.failures})
    reasons = []
    for f in pair.failures:
        if f.reason not in reasons:
            reasons.append(f.reason)
    configs = ", ".join(f.config for f in pair.failures)
    n = len(pair.failures)
    times = "once" if n == 1 else f"{n} times"
    return f"{'/'.join(whats)} {times} ({'; '.join(reasons)}) with {configs}"
