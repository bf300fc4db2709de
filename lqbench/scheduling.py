"""The scheduler's decisions, without Ray: which shard a free node takes next.

`ShardQueue` is a dynamic queue: a node asks for work whenever it is free, so
fast laptops take more shards. It prefers a shard of the model the node already
has loaded (a model load costs seconds), honours `every-node` replicas and the
plan's label selectors, and takes back a lost node's shard minus what is done.
The Ray event loop in `cluster/scheduler.py` and the simulation in `bench/` both
drive this same class.

The end of a run is where a cluster of unequal laptops loses time: the last
shards sit on slow laptops while fast ones idle. Three rules keep the tail short
(`balance=True`, the default), all from what the queue sees itself — when each
node started and finished its shards, and the model file sizes (decoding is
memory-bound, so a sample costs about the model's bytes / the node's speed):

- piece sizing (weighted factoring): a node takes at most half its fair share of
  the work still pending, so shards are split into smaller pieces, down to one
  task, only as the queue runs short;
- fast nodes last: a node waits instead of taking a piece if the nodes that would
  finish that piece sooner (counting when they will be free and whether they must
  load the model first) can do all the pending work before this node would finish
  it; the node that would finish soonest never waits, so the run cannot stall;
- spreading models: a node that must switch model picks the model with the most
  pending work per node already on it, so laptops load fewer models overall.
"""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field
from typing import Callable

from lqbench.shard import Shard

_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq, ">": operator.gt, "<": operator.lt}


@dataclass
class NodeInfo:
    """What the scheduler knows of a live node."""

    key: str  # the Ray node id (or a simulated id)
    name: str  # the node's lqbench name (every-node replicas refer to it)
    labels: dict = field(default_factory=dict)  # fingerprint fields + user labels
    loaded_model: str | None = None
    # Relative decode speed before any shard is measured; None = neutral. By default the
    # measured memory bandwidth, since token generation on a CPU is bandwidth-bound.
    speed: float | None = None

    def __post_init__(self):
        if self.speed is None:
            bandwidth = _as_number(self.labels.get("mem_bandwidth_gbs"))
            if bandwidth and bandwidth > 0:
                self.speed = bandwidth


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


# A model load (reading the GGUF, building the context) costs about this many samples
# of the same model: a guess, used only to rank nodes for the last pieces of work.
LOAD_COST_SAMPLES = 0.25
# How many times its expected duration a node counts its piece when deciding to leave the tail to
# faster nodes (one sample's length is unknown until it is generated). In bench/bench_scheduler.py
# (32 mixed laptops) 1 left a 1.02x tail, 1.5 about 1.013x, 2 about 1.01x; but at 2 a laptop only a
# little slower than its peer sat idle with work left in a 2-node run, so: in between.
TAIL_RISK = 1.5


# A perplexity shard reads its corpus once per rung of the ladder; prompt processing is batched,
# so a whole corpus costs roughly what a few generated samples cost (a guess, for ranking only).
PERPLEXITY_SAMPLES_PER_RUNG = 4.0


# A speed probe (pp512 + tg128 and a median-length pp, warm-up and 5 repetitions) costs roughly what a few
# generated samples cost (a guess, for ranking only).
SPEED_SAMPLES = 3.0


def shard_work(shard: Shard, n_tasks: int | None = None) -> float:
    """Expected cost of (the first `n_tasks` tasks of) a shard in model-bytes x samples."""
    if shard.kind == "speed":
        return float(shard.model.get("file_bytes") or 1) * SPEED_SAMPLES
    if shard.kind == "perplexity":
        return sum(float(m.get("file_bytes") or 1) for m in shard.ladder) * PERPLEXITY_SAMPLES_PER_RUNG
    tasks = len(shard.tasks) if n_tasks is None else n_tasks
    return float(shard.model.get("file_bytes") or 1) * tasks * max(1, shard.n_samples)


def _split(shard: Shard, n_tasks: int) -> tuple[Shard, Shard]:
    first = Shard(**{**shard.__dict__, "tasks": shard.tasks[:n_tasks]})
    rest = Shard(**{**shard.__dict__, "tasks": shard.tasks[n_tasks:]})
    return first, rest


class ShardQueue:
    """Pending and running shards, and which one a free node gets next.

    `clock` is the time source for measuring node speed (the simulation passes its
    simulated clock). `balance=False` is the plain policy (loaded model first, else
    the oldest shard), kept for comparison in the benchmark.
    """

    def __init__(self, shards: list[Shard], *, clock: Callable[[], float] = time.monotonic, balance: bool = True):
        self._pending: list[Shard] = list(shards)
        self._running: dict[str, tuple[Shard, str]] = {}  # shard_id -> (shard, node key)
        self.finished: int = 0
        self.clock = clock
        self.balance = balance
        self._nodes: dict[str, NodeInfo] = {}  # nodes that asked for work and were not lost since
        self._started: dict[str, float] = {}  # shard_id -> when it was handed out
        self._work_done: dict[str, float] = {}  # node key -> work of the shards it finished
        self._busy_s: dict[str, float] = {}  # node key -> seconds those shards took
        self._excluded: set[tuple[str, str]] = set()  # (node key, model_id): its engine failed there too often

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
        if (node.key, shard.model_id) in self._excluded:
            return False
        return selector_matches(shard.select, node.labels)

    # --- speed estimates ----------------------------------------------------
    def rate(self, node: NodeInfo) -> float:
        """Work per second this node does: measured once it finished a shard, else from its speed hint."""
        busy = self._busy_s.get(node.key, 0.0)
        if busy > 0:
            return self._work_done[node.key] / busy
        measured = [(self._work_done[k] / self._busy_s[k], self._nodes[k].speed)
                    for k in self._busy_s if self._busy_s[k] > 0 and k in self._nodes]
        if measured:
            hinted = [(r, s) for r, s in measured if s]
            if node.speed and hinted:  # convert the hint's units with the nodes measured so far
                return node.speed * sum(r for r, _ in hinted) / sum(s for _, s in hinted)
            return sorted(r for r, _ in measured)[len(measured) // 2]
        hints = [n.speed for n in self._nodes.values() if n.speed]
        if node.speed and hints:
            return node.speed / (sum(hints) / len(hints))
        return 1.0

    def _free_at(self, node: NodeInfo, now: float) -> float:
        """When a node will be free: now if idle, else its shard's expected end (now if overdue)."""
        ends = [self._started[sid] + shard_work(shard) / self.rate(node)
                for sid, (shard, key) in self._running.items() if key == node.key]
        return max([now, *ends])

    def _finish_at(self, node: NodeInfo, piece_work: float, shard: Shard, start: float) -> float:
        load = 0.0
        if node.loaded_model != shard.model_id:
            load = LOAD_COST_SAMPLES * float(shard.model.get("file_bytes") or 1)
        return start + (load + piece_work) / self.rate(node)

    # --- decisions --------------------------------------------------------------
    def _choose(self, node: NodeInfo, eligible: list[int]) -> int:
        """Index of the shard to give: its loaded model first, else (balanced) the least crowded model."""
        if node.loaded_model:
            for i in eligible:
                if self._pending[i].model_id == node.loaded_model:
                    return i
        if not self.balance:
            return eligible[0]
        work: dict[str, float] = {}
        first: dict[str, int] = {}
        for i in eligible:
            shard = self._pending[i]
            work[shard.model_id] = work.get(shard.model_id, 0.0) + shard_work(shard)
            first.setdefault(shard.model_id, i)
        crowd: dict[str, int] = {}
        for other in self._nodes.values():
            if other.key != node.key and other.loaded_model:
                crowd[other.loaded_model] = crowd.get(other.loaded_model, 0) + 1
        # Most work per node already on it; the plan's order breaks ties.
        best = max(first, key=lambda m: (work[m] / (1 + crowd.get(m, 0)), -first[m]))
        return first[best]

    def _piece_tasks(self, node: NodeInfo, shard: Shard) -> int:
        """Weighted factoring: at most half of this node's fair share of the pending work.

        A lone node never splits: there is nobody to share the rest with; nor does a perplexity shard.
        """
        if shard.kind != "generate" or not any(n.key != node.key and self.can_run(shard, n)
                                               for n in self._nodes.values()):
            return len(shard.tasks)
        pending_work = sum(shard_work(s) for s in self._pending)
        total_rate = sum(self.rate(n) for n in self._nodes.values())
        share = pending_work * self.rate(node) / total_rate / 2
        per_task = shard_work(shard, 1)
        return max(1, min(len(shard.tasks), int(share // per_task)))

    def _defer(self, node: NodeInfo, shard: Shard, n_tasks: int, eligible: list[int]) -> bool:
        """True if nodes that would finish this piece sooner can do all the pending work before this one would.

        This node's piece is counted at TAIL_RISK x its expected time. Only strictly better nodes
        count, so the best node never waits and the run cannot stall.
        """
        now = self.clock()
        work = shard_work(shard, n_tasks)
        mine = self._finish_at(node, TAIL_RISK * work, shard, now)
        others = [n for n in self._nodes.values() if n.key != node.key and self.can_run(shard, n)]
        pending_work = sum(shard_work(self._pending[i]) for i in eligible)
        rates = {n.key: self.rate(n) for n in others}
        if pending_work > (mine - now) * sum(rates.values()):
            return False  # plenty left: every node is needed
        expected = self._finish_at(node, work, shard, now)
        capacity = 0.0
        for n in others:
            start = self._free_at(n, now)
            if self._finish_at(n, work, shard, start) >= expected:
                continue
            if n.loaded_model != shard.model_id:
                start += LOAD_COST_SAMPLES * float(shard.model.get("file_bytes") or 1) / rates[n.key]
            capacity += max(0.0, mine - start) * rates[n.key]
        return capacity > 0 and capacity >= pending_work  # nobody better, or nothing to do: take it

    def take(self, node: NodeInfo) -> Shard | None:
        """The next shard (or piece of one) for a free node, or None if it should wait."""
        self._nodes[node.key] = node
        eligible = [i for i, shard in enumerate(self._pending) if self.can_run(shard, node)]
        if not eligible:
            return None
        i = self._choose(node, eligible)
        shard = self._pending[i]
        if self.balance:
            n_tasks = self._piece_tasks(node, shard)
            if self._defer(node, shard, n_tasks, eligible):
                return None
            if n_tasks < len(shard.tasks):
                shard, self._pending[i] = _split(shard, n_tasks)
            else:
                self._pending.pop(i)
        else:
            self._pending.pop(i)
        self._running[shard.shard_id] = (shard, node.key)
        self._started[shard.shard_id] = self.clock()
        node.loaded_model = shard.model_id
        return shard

    def done(self, shard_id: str) -> None:
        entry = self._running.pop(shard_id, None)
        if entry is None:
            return
        self.finished += 1
        shard, key = entry
        took = self.clock() - self._started.pop(shard_id)
        if took > 0:
            self._work_done[key] = self._work_done.get(key, 0.0) + shard_work(shard)
            self._busy_s[key] = self._busy_s.get(key, 0.0) + took

    def give_back(self, shard_id: str, done_keys: set[tuple]) -> Shard | None:
        """A shard whose node was lost (or that failed) goes back on the queue, minus samples already recorded.

        Its node is forgotten until it asks for work again, so a lost laptop is not counted on for the tail.
        """
        entry = self._running.pop(shard_id, None)
        if entry is None:
            return None
        self._started.pop(shard_id, None)
        self._nodes.pop(entry[1], None)
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

    def exclude(self, node_key: str, model_id: str) -> None:
        """This node takes no more shards of this model file (its engine crashed or hung there too often)."""
        self._excluded.add((node_key, model_id))

    def drop(self, shards: list[Shard]) -> None:
        ids = {s.shard_id for s in shards}
        self._pending = [s for s in self._pending if s.shard_id not in ids]
