"""The scheduler's decisions, without Ray: which shard a free node takes next.

`ShardQueue` is a dynamic queue: a node asks for work whenever it is free, so
fast laptops take more shards. It prefers a shard of the model the node already
has loaded (a model load costs seconds), honours `every-node` replicas and the
plan's label selectors, and takes back a lost node's shard minus what is done.
The Ray event loop in `cluster/scheduler.py` and the simulation in `bench/` both
drive this same class.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

from lqbench.shard import Shard

_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq, ">": operator.gt, "<": operator.lt}


@dataclass
class NodeInfo:
    """What the scheduler knows of a live node."""

    key: str  # the Ray node id (or a simulated id)
    name: str  # the node's lqbench name (every-node replicas refer to it)
    labels: dict = field(default_factory=dict)  # fingerprint fields + user labels
    loaded_model: str | None = None


def _as_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def selector_matches(select: dict, labels: dict) -> bool:
    """`{"ram_gb": ">=16", "arch": "x86_64", "name": ["a", "b"]}` against a node's labels."""
    for key, want in select.items():
        have = labels.get(key)
        if isinstance(want, list):
            if str(have) not in [str(w) for w in want]:
                return False
            continue
        want = str(want).strip()
        for sym, op in _OPS.items():
            if want.startswith(sym):
                target = want[len(sym):].strip()
                a, b = _as_number(have), _as_number(target)
                if a is not None and b is not None:
                    if not op(a, b):
                        return False
                elif not op(str(have), target):
                    return False
                break
        else:
            if str(have) != want:
                return False
    return True


class ShardQueue:
    def __init__(self, shards: list[Shard]):
        self._pending: list[Shard] = list(shards)
        self._running: dict[str, tuple[Shard, str]] = {}  # shard_id -> (shard, node key)
        self.finished: int = 0

    @property
    def pending(self) -> list[Shard]:
        return list(self._pending)

    @property
    def running(self) -> int:
        return len(self._running)

    def empty(self) -> bool:
        return not self._pending and not self._running

    def can_run(self, shard: Shard, node: NodeInfo) -> bool:
        if shard.replica and shard.replica != node.name:
            return False
        return selector_matches(shard.select, node.labels)

    def take(self, node: NodeInfo) -> Shard | None:
        """The next shard for a free node: its loaded model first, else the oldest it can run."""
        best = None
        for i, shard in enumerate(self._pending):
            if not self.can_run(shard, node):
                continue
            if node.loaded_model and shard.model_id == node.loaded_model:
                best = i
                break
            if best is None:
                best = i
        if best is None:
            return None
        shard = self._pending.pop(best)
        self._running[shard.shard_id] = (shard, node.key)
        node.loaded_model = shard.model_id
        return shard

    def done(self, shard_id: str) -> None:
        if self._running.pop(shard_id, None) is not None:
            self.finished += 1

    def give_back(self, shard_id: str, done_keys: set[tuple]) -> Shard | None:
        """A shard whose node was lost goes back on the queue, minus samples already recorded."""
        entry = self._running.pop(shard_id, None)
        if entry is None:
            return None
        rest = entry[0].without(done_keys)
        if rest is None:
            self.finished += 1
            return None
        self._pending.insert(0, rest)  # first in line: it was started before the rest
        return rest

    def running_on(self, node_key: str) -> list[str]:
        return [sid for sid, (_, key) in self._running.items() if key == node_key]

    def unplaceable(self, nodes: list[NodeInfo]) -> list[Shard]:
        """Pending shards no live node can ever take (replica's node gone, selector matches none)."""
        return [s for s in self._pending if not any(self.can_run(s, n) for n in nodes)]

    def drop(self, shards: list[Shard]) -> None:
        ids = {s.shard_id for s in shards}
        self._pending = [s for s in self._pending if s.shard_id not in ids]
