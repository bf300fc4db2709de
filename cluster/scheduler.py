"""The Ray event loop on the head: agents on every node, a dynamic shard queue, lost nodes.

Decisions (which shard next, what to give back) are `lqbench.scheduling.ShardQueue`;
this module only does the Ray side: it places one `NodeAgent` per node that offers
the `lqbench_agent` resource (new laptops are picked up while the run goes), starts
a shard on each free agent, and waits on all their sample streams at once with
`ray.wait`. Samples go to the writer as they arrive. If a node dies, the samples it
already streamed are kept and the rest of its shard goes back on the queue.

A node that is alive but whose engine crashed or hung (the agent reports it; or the agent
process itself died, or sent nothing for far too long) is not lost: the failure is counted
for that (node, model file) in `lqbench.failures.FailureBook`, which says whether to retry
there with a safer engine configuration or to exclude the pair. Either way the rest of the
shard goes back on the queue, so the run always moves on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from agents.agent import AGENT_RESOURCE, NodeAgent
from cluster.session import NAME_LABEL
from lqbench.engine import DEFAULT, EngineConfig
from lqbench.errors import LqbenchError
from lqbench.failures import DEFAULT_MAX_FAILURES, FailureBook
from lqbench.hardware import ENGINE_CONFIG_LABEL
from lqbench.records import PerplexityRecord, SampleRecord, ShardRecord, SpeedRecord
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
    config: EngineConfig = DEFAULT  # the engine configuration of the running shard
    last_heard: float = 0.0  # monotonic time of the stream's last item (or its start)

    @property
    def default_config(self) -> EngineConfig:
        """What `lqbench join`'s inference check found working on this node, else the default."""
        joined = self.info.labels.get(ENGINE_CONFIG_LABEL)
        return EngineConfig(extra_bufts=joined != "off") if joined else DEFAULT


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
                 on_speed: Callable[[list[SpeedRecord], str], None] = None,
                 progress=None, n_threads: int | None = None,
                 measure_bandwidth: bool = True, discover_every_s: float = 5.0, model_server=None,
                 max_failures: int = DEFAULT_MAX_FAILURES, hang_timeout_s: float = 600.0,
                 engine_config: EngineConfig | None = None, notice: Callable[[str], None] = lambda line: None):
        self.slots: dict[str, AgentSlot] = {}
        self.model_server = model_server  # cluster.model_server.ModelServer: agents fetch model files from it
        self.on_sample = on_sample
        self.on_shard = on_shard
        self.on_node = on_node
        self.on_perplexity = on_perplexity or (lambda rec, node: None)
        self.on_speed = on_speed or (lambda records, node: None)
        self.progress = progress
        self.n_threads = n_threads
        self.measure_bandwidth = measure_bandwidth
        self.discover_every_s = discover_every_s
        self._shard_errors: dict[str, int] = {}  # shard_id -> times it raised
        self.agent_errors: dict[str, str] = {}  # node name -> why its agent did not start
        self.failures = FailureBook(max_failures)
        self.engine_config = engine_config  # the plan's [inference] extra_bufts, if it sets one
        # The agent gives up on an engine call after hang_timeout_s; this is the backstop for an
        # agent that itself stops answering (a model load plus a sample, with room to spare).
        self.hang_timeout_s = float(hang_timeout_s)
        self.silence_limit_s = 2 * self.hang_timeout_s + 60.0
        self.notice = notice
        self._engines: dict[str, str] = {}  # node name -> engine build label, to say when nodes differ

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
            self._compare_engines(name, fp)
            if self.progress:
                self.progress.node(name)
            ready.append(slot)
        return ready

    def _compare_engines(self, name: str, fp: dict) -> None:
        """Say once per new engine when the nodes of this run differ in llama.cpp build or configuration."""
        engine = f"{fp.get('engine_build') or fp.get('llama_cpp_version')}"
        if fp.get("engine_config"):
            engine += f" {fp['engine_config']}"
        known = set(self._engines.values())
        self._engines[name] = engine
        if known and engine not in known:
            listing = ", ".join(f"{n}: {e}" for n, e in sorted(self._engines.items()))
            self.notice(f"nodes differ in llama.cpp build or configuration ({listing}); results are compared "
                        "per engine in the greedy_divergence_by_engine query")

    def _drop(self, slot: AgentSlot, why: str = "lost") -> None:
        self.slots.pop(slot.info.key, None)
        try:
            ray.kill(slot.actor)
        except Exception:
            pass
        if self.progress:
            if why == "lost":
                self.progress.lost(slot.info.name)
            else:
                self.progress.failed(slot.info.name, why)

    def _config_for(self, slot: AgentSlot, shard: Shard) -> EngineConfig:
        base = self.engine_config or slot.default_config
        return self.failures.config_for(slot.info.key, shard.model_id, base)

    def _engine_failed(self, slot: AgentSlot, queue: ShardQueue, done_keys: set, result: LoopResult, *,
                       what: str, reason: str, agent_gone: bool) -> None:
        """A crash or hang of `slot`'s shard: count it, retry safer or exclude the pair, give the rest back."""
        shard = slot.shard
        label = f"{shard.model['name']}:{shard.model['quant']}"
        decision = self.failures.record(node_key=slot.info.key, node_name=slot.info.name,
                                        node_id=slot.fingerprint.get("node_id", ""), model_id=shard.model_id,
                                        model_label=label, what=what, reason=reason, config=slot.config)
        if decision == "exclude":
            queue.exclude(slot.info.key, shard.model_id)
        queue.give_back(shard.shard_id, done_keys)
        slot.shard, slot.stream = None, None
        line = f"{what} on {label} ({reason}); " + (
            "excluded for that model" if decision == "exclude" else
            f"retrying with {self.failures.config_for(slot.info.key, shard.model_id, slot.config).label}")
        if agent_gone:
            self._drop(slot, why=line)  # a new agent starts there at the next discovery
        elif self.progress:
            self.progress.failed(slot.info.name, line)

    def _node_alive(self, node_key: str) -> bool:
        try:
            return any(n.get("NodeID") == node_key and n.get("Alive") for n in ray.nodes())
        except Exception:
            return False

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
                        slot.config = self._config_for(slot, shard)
                        slot.last_heard = time.monotonic()
                        slot.stream = slot.actor.run_shard.remote(shard.to_dict(), skip, slot.config.to_dict())
                        if self.progress:
                            self.progress.started(slot.info.name, f"{shard.model['name']}:{shard.model['quant']}")
            streams = {slot.stream: slot for slot in self.slots.values() if slot.stream is not None}
            if not streams:
                # A node whose agent died a moment ago gets a new agent before its work is called unplaceable.
                if self.discover(timeout_s=60.0):
                    continue
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
            now = time.monotonic()
            for slot in [s for s in streams.values() if s.stream is not None]:
                if now - slot.last_heard > self.silence_limit_s:
                    self._engine_failed(slot, queue, done_keys, result, what="hung", agent_gone=True,
                                        reason=f"the agent sent nothing for {now - slot.last_heard:.0f} s")
        return result

    def _advance(self, slot: AgentSlot, queue: ShardQueue, done_keys: set, result: LoopResult) -> None:
        shard = slot.shard
        try:
            item = ray.get(next(slot.stream))
            slot.last_heard = time.monotonic()
        except StopIteration:
            queue.done(shard.shard_id)
            slot.shard, slot.stream = None, None
            if self.progress:
                self.progress.shard_done(slot.info.name)
            return
        except _lost_errors() as exc:
            if self._node_alive(slot.info.key) and "node has died" not in str(exc).lower():
                # The node is still there: its agent process died under it (a native crash outside the
                # engine process, the OOM killer). A crash of this node, not a lost laptop.
                self._engine_failed(slot, queue, done_keys, result, what="crashed", agent_gone=True,
                                    reason=f"the agent process died ({ray_death_reason(exc)})")
                return
            # The laptop left (lid closed, Wi-Fi gone, process killed): re-queue what it did not finish.
            result.lost_nodes.append(slot.info.name)
            queue.give_back(shard.shard_id, done_keys)
            self._drop(slot)
            return
        except ray.exceptions.RayTaskError as exc:
            cause = str(exc.cause if getattr(exc, "cause", None) else exc).splitlines()[0][:300]
            n = self._shard_errors[shard.shard_id] = self._shard_errors.get(shard.shard_id, 0) + 1
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
        elif item["kind"] == "speed":  # a whole probe: every repetition of every test, in one item
            records = [SpeedRecord(**r) for r in item["records"]]
            done_keys.update(r.key for r in records)
            self.on_speed(records, slot.info.name)
        elif item["kind"] == "shard":
            self.on_shard(ShardRecord(**item["record"]), slot.info.name)
        elif item["kind"] == "failure":
            # The engine process crashed or hung; the agent is fine and its stream ends here.
            self._engine_failed(slot, queue, done_keys, result, what=item["what"], reason=item["reason"],
                                agent_gone=False)

    def shutdown(self) -> None:
        for slot in list(self.slots.values()):
            try:
                ray.kill(slot.actor)
            except Exception:
                pass
        self.slots.clear()


def ray_death_reason(exc: Exception) -> str:
    """The part of Ray's actor-death message that says how the process ended, on one line."""
    text = " ".join(str(exc).split())
    for marker in ("Worker exit detail:", "exit detail:", "The actor died", "The actor is dead"):
        i = text.find(marker)
        if i >= 0:
            detail = text[i + len(marker):].strip() if marker.endswith(":") else text[i:]
            return detail.split(" There are some potential root causes")[0][:200]
    return text[:200] or type(exc).__name__


def _numeric_labels(fp: dict) -> dict:
    """Fingerprint fields usable in plan selectors (e.g. ram_gb >= 16)."""
    keys = ("node_id", "hostname", "cpu_model", "physical_cores", "logical_cores", "ram_gb", "os", "arch",
            "mem_bandwidth_gbs")
    return {k: fp.get(k) for k in keys}
