"""The cluster's nodes as lqbench sees them: Ray's node table joined with the fingerprint labels.

`list_nodes` / `live_nodes` need a connected driver (`cluster.head.connect`);
`format_nodes` is pure, for `lqbench nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lqbench import hardware


@dataclass
class ClusterNode:
    ray_node_id: str
    address: str
    alive: bool
    is_head: bool
    cpus: float
    agent_slots: float
    labels: dict = field(default_factory=dict)  # every label, Ray's ray.io/* included

    @property
    def fingerprint(self) -> dict:
        """The `nodes` row as far as the labels tell (see lqbench.hardware.fingerprint_from_labels)."""
        return hardware.fingerprint_from_labels(self.labels)

    @property
    def name(self) -> str:
        return self.labels.get(hardware.NAME_LABEL) or f"{self.address}-{self.ray_node_id[:6]}"

    @property
    def user_labels(self) -> dict:
        return hardware.split_labels(self.labels)[1]


def node_from_ray(entry: dict) -> ClusterNode:
    """One entry of `ray.nodes()` as a ClusterNode."""
    from agents.agent import AGENT_RESOURCE

    resources = entry.get("Resources") or {}
    return ClusterNode(
        ray_node_id=entry["NodeID"],
        address=entry.get("NodeManagerAddress", "?"),
        alive=bool(entry.get("Alive")),
        is_head=any(k == "node:__internal_head__" for k in resources),
        cpus=float(resources.get("CPU", 0)),
        agent_slots=float(resources.get(AGENT_RESOURCE, 0)),
        labels=dict(entry.get("Labels") or {}),
    )


def list_nodes(include_dead: bool = True) -> list[ClusterNode]:
    """Every node Ray knows (the head first, then by name); dead ones only if asked."""
    import ray

    nodes = [node_from_ray(n) for n in ray.nodes()]
    if not include_dead:
        nodes = [n for n in nodes if n.alive]
    return sorted(nodes, key=lambda n: (not n.alive, not n.is_head, n.name, n.ray_node_id))


def live_nodes(agents_only: bool = False) -> dict[str, dict]:
    """{ray_node_id: labels} of the alive nodes (with an agent slot, if `agents_only`).

    What the runner needs to place one agent per node with NodeAffinitySchedulingStrategy
    and hand it its labels."""
    return {n.ray_node_id: n.labels for n in list_nodes(include_dead=False)
            if not agents_only or n.agent_slots >= 1}


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_nodes(nodes: list[ClusterNode]) -> list[str]:
    """One line per node (plus a header): state, address, name, ids, hardware, slots, labels."""
    header = ("STATE", "ADDRESS", "NAME", "NODE_ID", "RAY_NODE", "CPU_MODEL", "CORES", "RAM_GB", "BW_GB/S",
              "CPUS", "AGENT", "LABELS")
    rows = [header]
    for n in nodes:
        fp = n.fingerprint
        cores = "-" if fp["physical_cores"] is None else f"{fp['physical_cores']}/{fp['logical_cores'] or '?'}"
        state = ("alive" if n.alive else "dead") + ("*" if n.is_head else "")
        user = ",".join(f"{k}={v}" for k, v in sorted(n.user_labels.items())) or "-"
        rows.append((state, n.address, n.name, fp["node_id"] or "-", n.ray_node_id[:8], fp["cpu_model"] or "-",
                     cores, _num(fp["ram_gb"], ".1f"), _num(fp["mem_bandwidth_gbs"], ".1f"),
                     _num(n.cpus, "g"), "yes" if n.agent_slots >= 1 else "no", user))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
