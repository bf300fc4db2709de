"""Cluster test fixtures: a real Ray cluster of laptop-like nodes on loopback."""

from __future__ import annotations

import pytest


@pytest.fixture
def ray_cluster():
    """A head that runs no agent, plus a helper to add laptop-like nodes (token auth on:
    tests/conftest.py sets RAY_AUTH_MODE/RAY_AUTH_TOKEN for the session)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                             "include_dashboard": False})

    def add_laptop(name: str, **labels):
        return cluster.add_node(num_cpus=1, resources={"lqbench_agent": 1},
                                labels={"lqbench-name": name, **labels}, node_ip_address="127.0.0.1")

    cluster.add_laptop = add_laptop
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
