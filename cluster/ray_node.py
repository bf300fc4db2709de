"""A local Ray node (the head, or a laptop's worker) as a process lqbench owns and can stop.

We run `ray start ... --block` as a detached child in its own session instead of
plain `ray start` + `ray stop`: `ray stop` kills every Ray process of the machine
by name (other clusters, other users' sessions, the test runner's own Ray), while
SIGTERM to our `ray start --block` drains and stops exactly the processes it
started. The child's pid, address and log go to a small state file under
LQBENCH_HOME/cluster/, so a later `lqbench head --stop` / `lqbench join --stop`
finds it. A node that failed to start is torn down (its whole process group)
before we report, so no half-started raylet is left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lqbench.errors import LqbenchError
from lqbench.paths import home

READY_LINE = "Ray runtime started."  # printed by `ray start` once the node's processes are up
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Fixed per-node ports (firewall-friendly: see docs/cluster.md), as offsets from --node-ports.
NODE_PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--runtime-env-agent-port",
    "--dashboard-agent-grpc-port",
    "--dashboard-agent-listen-port",
    "--metrics-export-port",
)
DEFAULT_NODE_PORTS = 6380  # 6380..6385; the head's GCS keeps Ray's 6379


def node_port_args(base: int) -> list[str]:
    """`ray start` flags pinning this node's listening ports to base..base+5 (0: let Ray pick)."""
    if not base:
        return []
    if not 1024 <= base <= 65535 - len(NODE_PORT_FLAGS):
        raise LqbenchError(f"--node-ports {base}: expected 0 or a port in 1024..{65535 - len(NODE_PORT_FLAGS)}")
    return [f"{flag}={base + i}" for i, flag in enumerate(NODE_PORT_FLAGS)]


def check_ports_free(base: int, host: str = "") -> None:
    """One clear line if a port this node would listen on is taken (Ray itself only says "timed out
    during startup" and leaves the cause in a raylet log). Binding is local: nothing is sent anywhere."""
    import socket

    if not base:
        return
    for i, flag in enumerate(NODE_PORT_FLAGS):
        port = base + i
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                free = next((b for b in range(base + 10, 65500, 10) if _block_free(b, host)), None)
                hint = f", e.g. --node-ports {free}" if free else ""
                raise LqbenchError(f"port {port} ({flag.lstrip('-')}) is already in use on this machine (another Ray "
                                   f"node such as `lqbench head`, or another program): pass --node-ports N to use "
                                   f"ports N..N+{len(NODE_PORT_FLAGS) - 1}{hint}") from None


def _block_free(base: int, host: str) -> bool:
    import socket

    for port in range(base, base + len(NODE_PORT_FLAGS)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def ray_executable() -> str:
    """The `ray` script next to this Python (the venv's), else the one on PATH."""
    candidate = Path(sys.executable).with_name("ray.exe" if os.name == "nt" else "ray")
    return str(candidate) if candidate.exists() else "ray"


# ---------------------------------------------------------------- state files
def state_dir() -> Path:
    d = home() / "cluster"
    d.mkdir(parents=True, exist_ok=True)
    return d


def state_path(key: str) -> Path:
    return state_dir() / f"{key}.json"


def read_state(key: str) -> dict | None:
    try:
        return json.loads(state_path(key).read_text())
    except (OSError, ValueError):
        return None


def write_state(key: str, state: dict) -> None:
    path = state_path(key)
    tmp = path.with_suffix(".tmp")
    # 0600: the head's state holds the cluster token
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def remove_state(key: str) -> None:
    try:
        state_path(key).unlink()
    except FileNotFoundError:
        pass


def worker_keys() -> list[str]:
    return sorted(p.stem for p in state_dir().glob("worker-*.json"))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except Exception:
        return False


# ---------------------------------------------------------------- the process
@dataclass
class StartedNode:
    pid: int
    log: Path
    node_ip: str | None
    seconds: float


def _log_text(log: Path) -> str:
    try:
        return _ANSI.sub("", log.read_text(errors="replace"))
    except OSError:
        return ""


def _kill_group(pid: int, grace_s: float) -> None:
    """SIGTERM our `ray start --block` (it drains and stops its processes), then SIGKILL its
    whole process group if anything is still there after `grace_s`."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True)
        return
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pgid = pid
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (pid_alive(pid) or _group_alive(pgid)):
        _reap(pid)
        time.sleep(0.2)
    _reap(pid)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    """Collect our own exited child, so its zombie does not count as a live group member."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (started by an earlier command): nothing to collect
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def start_node(args: list[str], env: dict, log: Path, timeout_s: float = 120.0,
               classify=None) -> StartedNode:
    """Run `ray start <args> --block` detached, wait until it reports the node up.

    On failure the process group is killed and LqbenchError raised with one line:
    `classify(log_text)` may supply it (e.g. "refused the token"), else Ray's last
    error line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ray_executable(), "start", *args, "--block"]
    t0 = time.monotonic()
    with open(log, "wb") as out:
        kwargs = dict(stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True  # own process group: stoppable as a whole, immune to our Ctrl-C
        try:
            proc = subprocess.Popen(cmd, **kwargs)
        except FileNotFoundError:
            raise LqbenchError("the `ray` command is not installed (pip install 'ray[default]')") from None
    while True:
        text = _log_text(log)
        if READY_LINE in text:
            ip = re.search(r"Local node IP:\s*(\S+)", text)
            return StartedNode(pid=proc.pid, log=log, node_ip=ip.group(1) if ip else None,
                               seconds=time.monotonic() - t0)
        code = proc.poll()
        if code is not None or time.monotonic() - t0 > timeout_s:
            _kill_group(proc.pid, grace_s=5.0)
            proc.wait()
            reason = (classify(text) if classify else None) or _last_error(text) or (
                f"timed out after {timeout_s:.0f} s" if code is None else f"exit code {code}")
            raise LqbenchError(f"{reason} (log: {log})")
        time.sleep(0.2)


def _last_error(text: str) -> str | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if re.match(r"^[\w.]*(Error|Exception)\b", line) or " ERROR " in line:
            return line[:300]
    return None


def stop_node(pid: int, grace_s: float = 40.0) -> bool:
    """Stop a node started by `start_node`; False if it was not running."""
    if not pid_alive(pid):
        return False
    _kill_group(pid, grace_s=grace_s)
    return True


def wait_forever(pid: int, what: str) -> int:
    """Stay in the foreground while the node runs; Ctrl-C (or SIGTERM) stops it. Returns an exit code."""
    def _term(signum, frame):
        raise KeyboardInterrupt

    # Install both explicitly: a shell starting us in the background sets SIGINT to "ignore".
    previous = {sig: signal.signal(sig, _term) for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if sig}
    try:
        while pid_alive(pid):
            time.sleep(0.5)
        print(f"{what} exited on its own; see its log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stopping {what} ...", file=sys.stderr)
        stop_node(pid)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
