"""The Ray event loop on the head: agents on every node, a dynamic shard queue, lost nodes.

Decisions (which shard next, what to give back) are `lqbench.scheduling.ShardQueue`;
this module only does the Ray side: it places one `NodeAgent` per node that offers
the `lqbench_agent` resource (new laptops are picked up while the run goes), starts
a shard on each free agent, and waits on all their sample streams at once with
`ray.wait`. Samples go to the writer as they arrive. If a node dies, the samples it
already streamed are kept and the rest of its shard goes back on the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from agents.agent import AGENT_RESOURCE, NodeAgent
from cluster.session import NAME_LABEL
from lqbench.errors import LqbenchError
from lqbench.records import PerplexityRecord, SampleRecord, ShardRecord
from lqbench.scheduling import NodeInfo, ShardQueue
from lqbench.shard import Shard

MAX_SHARD_FAILURES = 2  # a shard that raises on two nodes is a bad shard, not a bad node


@dataclass
class AgentSlot:
    info: NodeInfo
    actor: object
    fingerprint: dict
    shard: Shard | None = None
    stream: object = None


@dataclass
class LoopResult:
    lost_nodes: list[str] = field(default_factory=list)
    failed_shards: list[tuple[str, str]] = field(default_factory=list)  # (shard_id, error)
    unplaceable: list[Shard] = field(default_factory=list)


def _lost_errors() -> tuple:
    ex = ray.exceptions
    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "NodeDiedError", "ObjectLostError",
             "OwnerDiedError", "WorkerCrashedError", "ObjectFetchTimedOutError", "ReferenceCountingAssertionError")
    return tuple(getattr(ex, n) for n in names if hasattr(ex, n))


def agent_nodes() -> list[dict]:
    """Alive Ray nodes that offer an agent slot."""
    return [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(AGENT_RESOURCE, 0) >= 1]


def node_name(node: dict) -> str:
    labels = node.get("Labels") or {}
    return labels.get(NAME_LABEL) or f"{node.get('NodeManagerHostname', 'node')}-{node['NodeID'][:6]}"


class Scheduler:
    def __init__(self, *, on_sample: Callable[[SampleRecord, str], None], on_shard: Callable[[ShardRecord, str], None],
                 on_node: Callable[[dict], None], on_perplexity: Callable[[PerplexityRecord, str], None] = None,
                 progress=None, n_threads: int | None = None,
                 measure_bandwidth: bool = True, discover_every_s: float = 5.0, model_server=None):
        self.slots: dict[str, AgentSlot] = {}
        self.model_server = model_server  # cluster.model_server.ModelServer: agents fetch model files from it
        self.on_sample = on_sample
        self.on_shard = on_shard
        self.on_node = on_node
        self.on_perplexity = on_perplexity or (lambda rec, node: None)
        self.progress = progress
        self.n_threads = n_threads
        self.measure_bandwidth = measure_bandwidth
        self.discover_every_s = discover_every_s
        self._failures: dict[str, int] = {}
        self.agent_errors: dict[str, str] = {}  # node name -> why its agent did not start

    # --- agents -------------------------------------------------------------
    def discover(self, timeout_s: float = 180.0) -> list[AgentSlot]:
        """Start an agent on every agent-capable node that has none; return the new ones."""
        new = []
        for node in agent_nodes():
            key = node["NodeID"]
            if key in self.slots:
                continue
            labels = {k: v for k, v in (node.get("Labels") or {}).items() if not k.startswith("ray.io/")}
            name = node_name(node)
            cpus = int(node.get("Resources", {}).get("CPU", 0))
            actor = NodeAgent.options(
                resources={AGENT_RESOURCE: 1}, num_cpus=cpus,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=key, soft=False),
            ).remote(name, labels, self.n_threads, self.measure_bandwidth, self.model_server)
            new.append((key, name, labels, actor))
        ready = []
        for key, name, labels, actor in new:
            try:
                fp = ray.get(actor.info.remote(), timeout=timeout_s)
            except (ray.exceptions.GetTimeoutError, *_lost_errors()) as exc:
                self.agent_errors[name] = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                ray.kill(actor)
                if self.progress:
                    self.progress.lost(name)
                continue
            info = NodeInfo(key=key, name=name, labels={**labels, **_numeric_labels(fp), "name": name})
            slot = AgentSlot(info=info, actor=actor, fingerprint=fp)
            self.slots[key] = slot
            self.on_node(fp)
            if self.progress:
                self.progress.node(name)
            ready.append(slot)
        return ready

    def _drop(self, slot: AgentSlot) -> None:
        self.slots.pop(slot.info.key, None)
        try:
            ray.kill(slot.actor)
        except Exception:
            pass
        if self.progress:
            self.progress.lost(slot.info.name)

    # --- the loop -------------------------------------------------------------
    def run(self, queue: ShardQueue, done_keys: set, should_stop: Callable[[], bool] = lambda: False,
            idle_timeout_s: float = 300.0) -> LoopResult:
        result = LoopResult()
        if not self.slots:
            self.discover()
        last_discovery = time.monotonic()
        no_agents_since = None
        while not queue.empty():
            if should_stop():
                break
            if time.monotonic() - last_discovery > self.discover_every_s:
                self.discover(timeout_s=60.0)
                last_discovery = time.monotonic()
            # Every free agent takes the next shard it can run.
            for slot in list(self.slots.values()):
                if slot.stream is None:
                    shard = queue.take(slot.info)
                    if shard is not None:
                        skip = [k for k in shard.sample_keys() if k in done_keys]
                        slot.shard = shard
                        slot.stream = slot.actor.run_shard.remote(shard.to_dict(), skip)
                        if self.progress:
                            self.progress.started(slot.info.name, f"{shard.model['name']}:{shard.model['quant']}")
            streams = {slot.stream: slot for slot in self.slots.values() if slot.stream is not None}
            if not streams:
                stuck = queue.unplaceable([s.info for s in self.slots.values()])
                if self.slots and stuck and len(stuck) == len(queue.pending) and queue.running == 0:
                    result.unplaceable.extend(stuck)
                    queue.drop(stuck)
                    continue
                no_agents_since = no_agents_since or time.monotonic()
                if time.monotonic() - no_agents_since > idle_timeout_s:
                    raise LqbenchError(f"no node can take the remaining {len(queue.pending)} shards "
                                       f"(waited {idle_timeout_s:.0f} s for a node to join)")
                time.sleep(0.5)
                self.discover(timeout_s=60.0)
                continue
            no_agents_since = None
            ready, _ = ray.wait(list(streams), num_returns=1, timeout=0.5)
            for stream in ready:
                self._advance(streams[stream], queue, done_keys, result)
        return result

    def _advance(self, slot: AgentSlot, queue: ShardQueue, done_keys: set, result: LoopResult) -> None:
        shard = slot.shard
        try:
            item = ray.get(next(slot.stream))
        except StopIteration:
            queue.done(shard.shard_id)
            slot.shard, slot.stream = None, None
            if self.progress:
                self.progress.shard_done(slot.info.name)
            return
        except _lost_errors():
            # The laptop left (lid closed, Wi-Fi gone, process killed): re-queue what it did not finish.
            result.lost_nodes.append(slot.info.name)
            queue.give_back(shard.shard_id, done_keys)
            self._drop(slot)
            return
        except ray.exceptions.RayTaskError as exc:
            cause = str(exc.cause if getattr(exc, "cause", None) else exc).splitlines()[0][:300]
            n = self._failures[shard.shard_id] = self._failures.get(shard.shard_id, 0) + 1
            slot.shard, slot.stream = None, None
            if n >= MAX_SHARD_FAILURES:
                queue.give_back(shard.shard_id, done_keys | set(shard.sample_keys()))
                result.failed_shards.append((shard.shard_id, cause))
            else:
                queue.give_back(shard.shard_id, done_keys)
            if self.progress:
                self.progress.shard_done(slot.info.name)
            return
        if item["kind"] == "sample":
            record = SampleRecord(**item["record"])
            done_keys.add(record.key)
            self.on_sample(record, slot.info.name)
        elif item["kind"] == "perplexity":
            record = PerplexityRecord(**item["record"])
            done_keys.add(("perplexity", record.model_id, record.corpus))
            self.on_perplexity(record, slot.info.name)
        elif item["kind"] == "shard":
            self.on_shard(ShardRecord(**item["record"]), slot.info.name)

    def shutdown(self) -> None:
        for slot in list(self.slots.values()):
            try:
                ray.kill(slot.actor)
            except Exception:
                pass
        self.slots.clear()


def _numeric_labels(fp: dict) -> dict:
    """Fingerprint fields usable in plan selectors (e.g. ram_gb >= 16)."""
    keys = ("node_id", "hostname", "cpu_model", "physical_cores", "logical_cores", "ram_gb", "os", "arch",
            "mem_bandwidth_gbs")
    return {k: fp.get(k) for k in keys}
