"""The cluster token: making one, finding it, handing it to Ray, and checking it against a head.

Ray (>= 2.52) authenticates every RPC with one shared bearer token when
`RAY_AUTH_MODE=token`; the token comes from `RAY_AUTH_TOKEN` (first) or the file
named by `RAY_AUTH_TOKEN_PATH`, then `~/.ray/auth_token`. Every process of the
cluster (head, workers, drivers) must see the same mode and token.

What a wrong token does, measured on Ray 2.60: `ray start --address` retries the
head for ~20 s and dies with a traceback; `ray.init(address=...)` retries ~20 s
and raises a bare "Failed to connect to Ray cluster". A single GCS client call
answers in ~10 ms with `AuthenticationError`, so `check_head` asks that first and
turns the answer into one clear line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile

from lqbench.errors import LqbenchError

TOKEN_ENV = "LQBENCH_TOKEN"  # where the CLI also looks for --token


def new_token() -> str:
    """A fresh 256-bit token, URL-safe so it pastes into any shell unquoted."""
    return secrets.token_urlsafe(32)


def resolve_token(token: str | None, address: str | None = None) -> str:
    """The token to use: the one given, else $LQBENCH_TOKEN, else the one of the head started
    from this machine (when `address` is that head or not given)."""
    if token:
        return token
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    from cluster.ray_node import read_state

    head = read_state("head")
    if head and head.get("token") and (address is None or address == head.get("address")):
        return head["token"]
    raise LqbenchError(f"no cluster token: pass --token (printed by `lqbench head`) or set ${TOKEN_ENV}")


def ray_env(token: str, base: dict | None = None) -> dict:
    """Environment for a `ray start` child: token auth on with this token, multi-node allowed.

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 because a cluster of laptops is the point (it is
    Ray's default on Linux; macOS and Windows need it, at their own risk per Ray's docs).
    Usage stats stay off unless the user turned them on: we only talk to the cluster."""
    env = dict(os.environ if base is None else base)
    env.pop("RAY_AUTH_TOKEN_PATH", None)  # RAY_AUTH_TOKEN wins anyway; avoid a confusing second source
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN"] = token
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return env


def use_token_in_process(token: str) -> None:
    """Make this process's Ray (a driver) authenticate with `token`.

    Ray caches its config and token in C++ on first use; refresh both in case ray
    was imported before this call."""
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    import sys

    if "ray._raylet" in sys.modules:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LqbenchError(f"bad head address {address!r}: expected HOST:PORT, e.g. 192.168.1.20:6379")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """One TCP connect to the head's GCS port; a clear line instead of Ray's 20-40 s of retries."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise LqbenchError(
            f"cannot reach the Ray head at {address} ({exc.strerror or exc}): is `lqbench head` running there, "
            f"and is TCP port {port} open in its firewall?"
        ) from None


@contextlib.contextmanager
def _quiet_stderr():
    """Hide what Ray's C++ client logs to fd 2 while probing (one refused RPC prints a warning)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_token(address: str, token: str) -> None:
    """Ask the head's GCS once whether it accepts `token`; raise one clear line if not.

    Sets this process's Ray auth env to the token (a driver needs it next anyway)."""
    use_token_in_process(token)
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        with _quiet_stderr():
            GcsClient(address=address).internal_kv_get(b"lqbench-token-probe", None)
    except AuthenticationError:
        raise LqbenchError(
            f"the Ray head at {address} refused the token: use the exact `--token` printed by `lqbench head`"
        ) from None
    except Exception as exc:  # timeouts, a non-Ray service on that port
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LqbenchError(f"the Ray head at {address} did not answer: {first}") from None


def check_versions(address: str) -> None:
    """The head's Ray and Python versions (Ray keeps them in the GCS as the cluster's metadata) against
    ours: a worker of another version fails in `ray start` with a long traceback, so say it in one line."""
    import json
    import platform

    import ray
    from ray._raylet import GcsClient

    try:
        with _quiet_stderr():
            raw = GcsClient(address=address).internal_kv_get(b"CLUSTER_METADATA", b"cluster")
        meta = json.loads(raw) if raw else {}
    except Exception:  # unreadable metadata is not a version mismatch; ray start still checks
        return
    ours = {"ray_version": ray.__version__, "python_version": platform.python_version()}
    theirs_py = str(meta.get("python_version", ""))
    if meta.get("ray_version") and meta["ray_version"] != ours["ray_version"]:
        raise LqbenchError(f"the head at {address} runs Ray {meta['ray_version']}, this laptop Ray "
                           f"{ours['ray_version']}: install the same Ray version on both")
    if theirs_py and theirs_py.rsplit(".", 1)[0] != ours["python_version"].rsplit(".", 1)[0]:
        raise LqbenchError(f"the head at {address} runs Python {theirs_py}, this laptop Python "
                           f"{ours['python_version']}: Ray needs the same Python minor version on both")


def check_head(address: str, token: str) -> None:
    """Reachable, then token accepted: the checks `join` and `connect` make before Ray's slow paths."""
    check_reachable(address)
    check_token(address, token)
