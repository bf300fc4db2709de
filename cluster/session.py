"""Getting a Ray session on the head: an embedded local Ray on loopback, or an existing cluster."""

from __future__ import annotations

import os


NAME_LABEL = "lqbench-name"  # node label carrying the laptop's lqbench name (set by `lqbench join`)


def start_local(num_cpus: int | None = None, name: str | None = None) -> None:
    """An embedded single-node Ray bound to 127.0.0.1, with one agent slot."""
    import socket

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Linux: bind loopback only
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    import ray

    from agents.agent import AGENT_RESOURCE

    ray.init(
        address="local",  # always a new instance: never attach to a cluster someone started here
        num_cpus=num_cpus or os.cpu_count() or 1,
        resources={AGENT_RESOURCE: 1},
        labels={NAME_LABEL: _label_safe(name or socket.gethostname())},
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        object_store_memory=256 * 2**20,
        configure_logging=False,
    )


def _label_safe(value: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63].strip("-_.") or "node"


def connect(address: str, token: str | None) -> None:
    """Join an existing cluster as a driver (the head started by `lqbench head`): token
    checked first, one clear line if the head is unreachable or refuses it."""
    from cluster.head import connect as head_connect

    head_connect(address, token)


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
