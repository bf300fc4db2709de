"""`lqbench head`: start this machine's Ray head with token auth and say how laptops join.

Also `connect`, the one way a driver (`lqbench run --address`, `lqbench nodes`)
attaches to that cluster: it checks reachability and the token first so a mistake
is one clear line, not Ray's 20 s of retries and a generic ConnectionError.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cluster import auth, ray_node
from lqbench.errors import LqbenchError

HEAD_KEY = "head"
DEFAULT_PORT = 6379


@dataclass
class HeadInfo:
    address: str
    token: str
    pid: int
    log: Path
    seconds: float
    name: str
    num_cpus: int

    @property
    def join_command(self) -> str:
        return join_command(self.address, self.token)

    @property
    def run_command(self) -> str:
        return f"lqbench run PLAN.toml --address {self.address} --token {self.token}"


def join_command(address: str, token: str) -> str:
    return f"lqbench join {address} --token {token}"


def running_head() -> dict | None:
    """The state of the head started from this machine, if its process is still alive."""
    state = ray_node.read_state(HEAD_KEY)
    if state and ray_node.pid_alive(state.get("pid")):
        return state
    return None


def start_head(port: int = DEFAULT_PORT, token: str | None = None, *, node_ip: str | None = None,
               name: str | None = None, labels: dict | None = None, threads: int | None = None,
               no_work: bool = False, node_ports: int = ray_node.DEFAULT_NODE_PORTS,
               dashboard: bool = True, temp_dir: str | None = None, measure_bandwidth: bool = True,
               timeout_s: float = 120.0) -> HeadInfo:
    """Start a Ray head (token auth on) on this machine and record it for `--stop`.

    The head also offers its own cores and one agent slot (`lqbench_agent`) like a
    joined laptop, unless `no_work`: then it only schedules and writes the DB."""
    from lqbench import hardware

    current = running_head()
    if current:
        raise LqbenchError(f"a head is already running here at {current['address']} (pid {current['pid']}); "
                           "stop it first with `lqbench head --stop`")
    if not 1 <= port <= 65535:
        raise LqbenchError(f"--port {port}: expected 1..65535")
    token = token or auth.new_token()
    name = hardware.label_value(name or _hostname()) or "head"
    fp = hardware.fingerprint(measure_bandwidth=measure_bandwidth and not no_work, labels=labels or {}, name=name)
    num_cpus = 0 if no_work else int(threads or hardware.physical_cores())
    node_labels = hardware.fingerprint_labels(fp, threads=None if no_work else num_cpus)
    args = ["--head", f"--port={port}", f"--num-cpus={num_cpus}", "--disable-usage-stats",
            "--labels=" + ",".join(f"{k}={v}" for k, v in node_labels.items()),
            f"--include-dashboard={'true' if dashboard else 'false'}",
            *ray_node.node_port_args(node_ports)]
    if not no_work:
        args.append('--resources={"%s": 1}' % _agent_resource())
    if node_ip:
        args.append(f"--node-ip-address={node_ip}")
    if temp_dir:
        args.append(f"--temp-dir={temp_dir}")
    log = ray_node.state_dir() / "head.log"
    started = ray_node.start_node(args, auth.ray_env(token), log, timeout_s=timeout_s, classify=_classify_head)
    address = f"{started.node_ip or node_ip or '127.0.0.1'}:{port}"
    ray_node.write_state(HEAD_KEY, {"pid": started.pid, "address": address, "token": token, "port": port,
                                    "log": str(log), "name": name, "node_id": fp["node_id"],
                                    "started_at": time.time()})
    return HeadInfo(address=address, token=token, pid=started.pid, log=log, seconds=started.seconds,
                    name=name, num_cpus=num_cpus)


def _classify_head(text: str) -> str | None:
    if "already running" in text or "address already in use" in text.lower():
        return "cannot start the head: the port is taken (another Ray head here?); try --port"
    return None


def _agent_resource() -> str:
    from agents.agent import AGENT_RESOURCE

    return AGENT_RESOURCE


def _hostname() -> str:
    import socket

    return socket.gethostname()


def stop_head() -> str | None:
    """Stop the head started from this machine; its address, or None if none was running."""
    state = ray_node.read_state(HEAD_KEY)
    if not state:
        return None
    was_running = ray_node.stop_node(state.get("pid"))
    ray_node.remove_state(HEAD_KEY)
    return state.get("address") if was_running else None


# ---------------------------------------------------------------- drivers
def connect(address: str | None = None, token: str | None = None, *, node_ip: str | None = None) -> str:
    """Attach this process to the cluster as a Ray driver; returns the address used.

    No address: the head started from this machine (`lqbench head`). The token comes
    from `token`, $LQBENCH_TOKEN, or that head's state. A driver must run on a machine
    of the cluster (the head, or a joined laptop): Ray drivers talk to a local raylet."""
    if address is None:
        state = running_head()
        if not state:
            raise LqbenchError("no --address given and no `lqbench head` running on this machine")
        address = state["address"]
    token = auth.resolve_token(token, address)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")  # macOS/Windows drivers: not loopback
    auth.check_head(address, token)
    import ray

    if ray.is_initialized():
        ray.shutdown()
    kwargs = {"_node_ip_address": node_ip} if node_ip else {}
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False, **kwargs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LqbenchError(f"cannot attach to the Ray cluster at {address}: {first} "
                           "(run this on the head or on a laptop that joined)") from None
    return address
