"""`lqbench join`: put this laptop into the cluster as a Ray worker that carries its fingerprint.

The laptop is fingerprinted (lqbench.hardware), the head and the token are checked
(one clear line if either is wrong, before Ray's slow retries), this node's ports are
checked free, then the inference check of `lqbench doctor` runs the demo model in a child
process in each engine configuration: a laptop on which nothing runs is refused with the
reason; one on which only the safe configuration runs joins advertising it (node label
`lqbench-extra-bufts=off`), so the head never sends it work that crashes. Then a Ray worker
node starts with the fingerprint as node labels, the chosen thread count as its CPUs, and
one `lqbench_agent` slot: the head's scheduler places exactly one NodeAgent on each node
that offers that slot.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from agents.agent import AGENT_RESOURCE
from cluster import auth, ray_node
from lqbench import hardware
from lqbench.errors import LqbenchError


@dataclass
class JoinedNode:
    name: str
    address: str
    pid: int
    log: Path
    seconds: float
    labels: dict
    num_cpus: int

    @property
    def key(self) -> str:
        return worker_key(self.name)


def worker_key(name: str) -> str:
    return f"worker-{name}"


def join(address: str, token: str, *, name: str | None = None, labels: dict | None = None,
         threads: int | None = None, node_ip: str | None = None,
         node_ports: int = ray_node.DEFAULT_NODE_PORTS, temp_dir: str | None = None,
         measure_bandwidth: bool = True, timeout_s: float = 120.0, engine_check: bool = True,
         check_model: str | None = None) -> JoinedNode:
    """Fingerprint this machine and start a Ray worker attached to the head at `address`.

    `engine_check=False` skips the inference check (the node then advertises no configuration and
    the head learns of a crashing engine from the crash itself)."""
    if not token:
        raise LqbenchError("no cluster token: pass --token (printed by `lqbench head`)")
    name = hardware.label_value(name or socket.gethostname()) or "laptop"
    key = worker_key(name)
    current = ray_node.read_state(key)
    if current and ray_node.pid_alive(current.get("pid")):
        raise LqbenchError(f"this machine already joined as {name!r} (pid {current['pid']}); "
                           f"`lqbench join --stop --name {name}` first, or pick another --name")
    if threads is not None and threads < 1:
        raise LqbenchError(f"--threads {threads}: expected >= 1")
    port_args = ray_node.node_port_args(node_ports)
    ray_node.check_ports_free(node_ports)
    auth.check_head(address, token)  # fast, clear refusal of a wrong token / unreachable head
    auth.check_versions(address)  # the same Ray and Python as the head, or one line saying which differs
    num_cpus = int(threads or hardware.physical_cores())
    engine_labels = _engine_labels(num_cpus, check_model) if engine_check else {}
    fp = hardware.fingerprint(measure_bandwidth=measure_bandwidth, labels=labels or {}, name=name)
    node_labels = {**hardware.fingerprint_labels(fp, threads=num_cpus), **engine_labels}
    args = [f"--address={address}", f"--num-cpus={num_cpus}", '--resources={"%s": 1}' % AGENT_RESOURCE,
            "--labels=" + ",".join(f"{k}={v}" for k, v in node_labels.items()),
            "--disable-usage-stats", *port_args]
    if node_ip:
        args.append(f"--node-ip-address={node_ip}")
    if temp_dir:
        args.append(f"--temp-dir={temp_dir}")
    log = ray_node.state_dir() / f"{key}.log"
    started = ray_node.start_node(args, auth.ray_env(token), log, timeout_s=timeout_s,
                                  classify=lambda text: classify_join_failure(text, address))
    ray_node.write_state(key, {"pid": started.pid, "address": address, "name": name, "log": str(log),
                               "node_id": fp["node_id"], "started_at": time.time()})
    return JoinedNode(name=name, address=address, pid=started.pid, log=log, seconds=started.seconds,
                      labels=node_labels, num_cpus=num_cpus)


def _engine_labels(n_threads: int, model: str | None) -> dict:
    """Run the inference check; the labels that advertise what works, or a refusal that says why."""
    from lqbench import doctor, engine

    check = doctor.engine_check(model, n_threads=n_threads)
    working = check.working
    if working is None:
        raise LqbenchError(f"this laptop cannot run the model in any engine configuration ({check.summary()}); "
                           "see `lqbench doctor`, or rebuild llama-cpp-python with ./setup.sh")
    return {hardware.ENGINE_CONFIG_LABEL: "on" if working.extra_bufts else "off",
            hardware.ENGINE_BUILD_LABEL: hardware.label_value(engine.build_info()["label"])}


def classify_join_failure(text: str, address: str) -> str | None:
    """One line for what `ray start --address` printed before dying."""
    if "InvalidAuthToken" in text or "AuthenticationError" in text:
        return f"the Ray head at {address} refused the token: use the exact `--token` printed by `lqbench head`"
    if "Failed to connect to GCS" in text or "Timed out while waiting for GCS" in text:
        return f"cannot reach the Ray head at {address}"
    if "version mismatch" in text.lower() or "Version mismatch" in text:
        return "this laptop's Ray/Python version differs from the head's: install the same versions on both"
    port = re.search(r"(?:port|Port)\D{0,20}(\d{4,5})\D{0,40}(?:already in use|in use|Address already)", text)
    if port or "Address already in use" in text:
        which = f"port {port.group(1)}" if port else "a port"
        return (f"{which} of this node is already in use (another Ray node on this machine, e.g. `lqbench head`?): "
                "pass --node-ports N to use N..N+5 instead")
    return None


def leave(name: str | None = None) -> list[str]:
    """Stop the worker(s) this machine started with `lqbench join` (all, or the one named)."""
    keys = [worker_key(hardware.label_value(name))] if name else ray_node.worker_keys()
    stopped = []
    for key in keys:
        state = ray_node.read_state(key)
        if not state:
            continue
        if ray_node.stop_node(state.get("pid")):
            stopped.append(state.get("name", key))
        ray_node.remove_state(key)
    return stopped
