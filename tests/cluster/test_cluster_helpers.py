"""Token resolution, address checks, node-port flags, node listing format: the logic around head/join."""

import json
import socket

import pytest

from cluster import auth, ray_node
from lqbench import hardware
from lqbench.errors import LqbenchError


def test_new_tokens_are_long_random_and_shell_safe():
    a, b = auth.new_token(), auth.new_token()
    assert a != b and len(a) >= 40
    assert all(c.isalnum() or c in "-_" for c in a)


def test_resolve_token_prefers_explicit_then_env_then_local_head(monkeypatch):
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    with pytest.raises(LqbenchError, match="no cluster token"):
        auth.resolve_token(None, "10.0.0.1:6379")
    ray_node.write_state("head", {"pid": 1, "address": "127.0.0.1:6379", "token": "from-head"})
    assert auth.resolve_token(None, "127.0.0.1:6379") == "from-head"
    assert auth.resolve_token(None) == "from-head"
    with pytest.raises(LqbenchError):
        auth.resolve_token(None, "127.0.0.1:7000")  # another cluster: the local head's token is not its token
    monkeypatch.setenv(auth.TOKEN_ENV, "from-env")
    assert auth.resolve_token(None, "127.0.0.1:6379") == "from-env"
    assert auth.resolve_token("explicit", "127.0.0.1:6379") == "explicit"


def test_head_state_file_is_private():
    ray_node.write_state("head", {"token": "secret"})
    assert ray_node.state_path("head").stat().st_mode & 0o077 == 0
    assert ray_node.read_state("head") == {"token": "secret"}


def test_ray_env_turns_token_auth_and_multinode_on():
    env = auth.ray_env("tok", base={"RAY_AUTH_TOKEN_PATH": "/x", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == "tok"
    assert "RAY_AUTH_TOKEN_PATH" not in env
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "1"
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert auth.ray_env("tok", base={"RAY_USAGE_STATS_ENABLED": "1"})["RAY_USAGE_STATS_ENABLED"] == "1"


@pytest.mark.parametrize("address", ["nohost", ":6379", "host:", "host:port"])
def test_split_address_refuses_malformed_addresses(address):
    with pytest.raises(LqbenchError, match="HOST:PORT"):
        auth.split_address(address)


def test_unreachable_head_is_one_clear_line():
    with socket.socket() as s:  # a loopback port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LqbenchError, match=f"cannot reach the Ray head at 127.0.0.1:{port}") as err:
        auth.check_reachable(f"127.0.0.1:{port}", timeout_s=2)
    assert "\n" not in str(err.value)


def test_node_port_args_pin_six_consecutive_ports_or_none():
    args = ray_node.node_port_args(6380)
    assert args[0] == "--node-manager-port=6380" and args[-1] == "--metrics-export-port=6385"
    assert len(args) == len(ray_node.NODE_PORT_FLAGS) == 6
    assert ray_node.node_port_args(0) == []
    with pytest.raises(LqbenchError):
        ray_node.node_port_args(80)


def test_join_failure_text_is_classified():
    from agents.join import classify_join_failure

    ray_output = ("gcs_client.cc:210: Failed to get cluster ID from GCS server: Unauthenticated: RPC error: "
                  "InvalidAuthToken: Authentication token is missing or incorrect\n"
                  "RuntimeError: Failed to connect to GCS. Last connection error: ...")
    assert "refused the token" in classify_join_failure(ray_output, "h:1")
    assert "cannot reach" in classify_join_failure("RuntimeError: Failed to connect to GCS. timeout", "h:1")
    assert classify_join_failure("something else", "h:1") is None


def test_our_labels_pass_rays_own_validator():
    label_utils = pytest.importorskip("ray._private.label_utils")
    fp = hardware.fingerprint(measure_bandwidth=False, labels={"team": "ml"}, name="Lap Top (2019)")
    fp["cpu_model"] = "Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz with a very long marketing suffix indeed"
    labels = hardware.fingerprint_labels(fp, threads=4)
    cli_form = ",".join(f"{k}={v}" for k, v in labels.items())
    assert label_utils.parse_node_labels_string(cli_form) == labels  # what `ray start --labels` does


def _ray_node_entry(node_id, name, alive=True, head=False, agent=True, extra=None):
    fp = hardware.fingerprint(measure_bandwidth=False, labels=extra or {}, name=name)
    fp["mem_bandwidth_gbs"] = 10.5
    resources = {"CPU": 2.0, "memory": 1e9}
    if agent:
        resources["lqbench_agent"] = 1.0
    if head:
        resources["node:__internal_head__"] = 1.0
    return {"NodeID": node_id, "NodeManagerAddress": "127.0.0.1", "Alive": alive, "Resources": resources,
            "Labels": {**hardware.fingerprint_labels(fp, threads=2), "ray.io/node-id": node_id}}


def test_format_nodes_prints_one_line_per_node_head_first():
    from cluster.nodes import format_nodes, node_from_ray

    entries = [_ray_node_entry("b" * 56, "w2", alive=False), _ray_node_entry("a" * 56, "w1", extra={"team": "ml"}),
               _ray_node_entry("c" * 56, "boss", head=True, agent=False)]
    nodes = sorted((node_from_ray(e) for e in entries), key=lambda n: (not n.alive, not n.is_head, n.name))
    lines = format_nodes(nodes)
    assert len(lines) == 4 and lines[0].startswith("STATE")
    assert lines[1].split()[:3] == ["alive*", "127.0.0.1", "boss"] and " no " in lines[1]
    assert lines[2].split()[:3] == ["alive", "127.0.0.1", "w1"] and lines[2].endswith("team=ml")
    assert lines[3].split()[0] == "dead" and "10.5" in lines[3]
    w1 = nodes[1]
    assert w1.fingerprint["node_id"] == json.loads(json.dumps(entries[1]["Labels"]))["lqbench-node-id"]
    assert w1.user_labels == {"team": "ml"}


def test_cli_without_a_head_says_so_in_one_line():
    from typer.testing import CliRunner

    from lqbench.cli import app

    runner = CliRunner()
    stopped = runner.invoke(app, ["head", "--stop"])
    assert stopped.exit_code == 0 and "no head was running here" in stopped.output
    left = runner.invoke(app, ["join", "--stop"])
    assert left.exit_code == 0 and "no lqbench worker was running here" in left.output
    no_address = runner.invoke(app, ["join", "--token", "t"])
    assert no_address.exit_code == 2 and "missing HOST:PORT" in no_address.output
    with pytest.raises(LqbenchError, match="no `lqbench head` running on this machine"):
        runner.invoke(app, ["nodes"], catch_exceptions=False)


def test_a_stale_head_state_does_not_count_as_running():
    from cluster import head

    ray_node.write_state("head", {"pid": 2**22 + 12345, "address": "127.0.0.1:1", "token": "t"})
    assert head.running_head() is None
    assert head.stop_head() is None and ray_node.read_state("head") is None
