"""`lqbench head` / `join` / `nodes` as separate processes, as on real laptops, on real Ray.

Everything runs inside a private network namespace that has only loopback, so Ray
finds no address but 127.0.0.1 and nothing leaves the machine (DESIGN.md,
Conventions). The `netns_cluster` fixture yields a head plus two joined "laptops"
(same machine, distinct names, ports and Ray temp dirs); tests that need a running
cluster — e.g. `lqbench run --address` — take it and use `cluster.lqbench(...)`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

BIN = Path(sys.executable).parent
LQBENCH = str(BIN / "lqbench")
REPO = Path(__file__).resolve().parents[2]


def _netns_unavailable() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    if not Path(LQBENCH).exists():
        return f"no lqbench entry point next to {sys.executable}"
    return None


@dataclass
class NetnsCluster:
    """A head and two joined workers in network namespace `ns`; one machine stands for three laptops."""

    ns: str
    root: Path                      # short path: Ray's unix sockets live under it (108-char limit)
    env: dict
    address: str = ""
    token: str = ""
    join_line: str = ""
    workers: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def exec(self, *argv: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True,
                              timeout=timeout, env=env or self.env, cwd=self.root)

    def lqbench(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.exec(LQBENCH, *args, timeout=timeout)

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.exec(sys.executable, "-c", code, timeout=timeout)

    def processes(self) -> dict[int, str]:
        """{pid: command line} of live processes of this cluster (their command lines name its root dir)."""
        out = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue
                if str(self.root) in cmd and state != "Z":
                    out[int(pid)] = cmd
        return out


def _timed(cluster: NetnsCluster, what: str, *args: str) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    result = cluster.lqbench(*args)
    cluster.timings[what] = round(time.monotonic() - t0, 1)
    assert result.returncode == 0, f"{what} failed:\n{result.stdout}\n{result.stderr}\n{_log_tail(cluster)}"
    return result


def _log_tail(cluster: NetnsCluster, worker: str | None = None) -> str:
    """The end of `ray start`'s own output, for a failure message."""
    name = f"worker-{worker}.log" if worker else "head.log"
    try:
        return (cluster.root / "lqbench_home" / "cluster" / name).read_text(errors="replace")[-3000:]
    except OSError:
        return f"(no {name})"


@pytest.fixture(scope="module")
def netns_cluster(shared_model_cache):
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    ns = f"lqb{os.getpid()}{random.randrange(1000)}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (no CAP_SYS_ADMIN?)")
    root = Path(tempfile.mkdtemp(prefix="lqb-", dir="/tmp"))
    (root / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "LQBENCH_"))}
    env.update(HOME=str(root / "home"),  # no ~/.ray/auth_token of the real user leaks in
               LQBENCH_HOME=str(root / "lqbench_home"), LQBENCH_DB=str(root / "results.duckdb"),
               RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO),
               LQBENCH_MODEL_CACHE=str(shared_model_cache))  # the demo GGUF for join's inference check, made once
    cluster = NetnsCluster(ns=ns, root=root, env=env)
    port = random.randrange(20000, 29000)  # distinct from any other Ray on this machine (Ray scans all processes)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        head = _timed(cluster, "head", "head", "--port", str(port), "--node-ports", str(port + 10),
                      "--name", "boss", "--no-dashboard", "--no-bandwidth", "--temp-dir", str(root / "h"))
        cluster.join_line = next(line.strip() for line in head.stdout.splitlines()
                                 if line.strip().startswith("lqbench join "))
        m = re.fullmatch(r"lqbench join (\S+) --token (\S+)", cluster.join_line)
        assert m, head.stdout
        cluster.address, cluster.token = m.groups()
        assert cluster.address == f"127.0.0.1:{port}"
        joins = {}
        t0 = time.monotonic()
        for i, name in enumerate(("lap1", "lap2"), start=1):  # two laptops joining at once
            # lap1 runs join's inference check (the demo model in an engine process); lap2 skips it
            extra = ["--no-bandwidth", "--no-engine-check"] if name == "lap2" else ["--label", "team=ml"]
            # the exact command the head printed, plus what tells two laptops on one machine apart
            argv = [*cluster.join_line.split()[1:], "--name", name, "--threads", "1",
                    "--node-ports", str(port + 10 + 10 * i), "--temp-dir", str(root / name), *extra]
            joins[name] = subprocess.Popen(["ip", "netns", "exec", ns, LQBENCH, *argv], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, env=env, cwd=root)
        for name, proc in joins.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"join {name} failed:\n{out}\n{err}\n{_log_tail(cluster, name)}"
            assert f"joined {cluster.address} as '{name}'" in out, out
            assert ("engine unchecked" if name == "lap2" else "engine extra_bufts=") in out, out
            cluster.workers.append(name)
        cluster.timings["two joins"] = round(time.monotonic() - t0, 1)
        yield cluster
    finally:
        _teardown(cluster)


def _teardown(cluster: NetnsCluster) -> None:
    try:
        cluster.lqbench("join", "--stop", timeout=90)
        cluster.lqbench("head", "--stop", timeout=90)
    except subprocess.TimeoutExpired:
        pass
    finally:
        deadline = time.monotonic() + 10
        while cluster.processes() and time.monotonic() < deadline:
            time.sleep(0.5)
        leftovers = cluster.processes()
        for pid in leftovers:  # never leave a raylet behind, even when a test failed
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", cluster.ns], capture_output=True)
        shutil.rmtree(cluster.root, ignore_errors=True)
        print(f"\ncluster timings (s): {cluster.timings}")
        assert not leftovers, f"processes left after stop: {leftovers}"


def test_nodes_lists_the_head_and_both_laptops_with_fingerprints(netns_cluster):
    result = _timed(netns_cluster, "nodes", "nodes")
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["STATE", "ADDRESS", "NAME"]
    rows = {line.split()[2]: line for line in lines[1:]}
    assert set(rows) == {"boss", "lap1", "lap2"}, result.stdout
    assert rows["boss"].startswith("alive*")  # the head
    for name in ("lap1", "lap2"):
        cols = rows[name].split()
        assert cols[0] == "alive" and cols[1] == "127.0.0.1"
        assert re.fullmatch(r"[0-9a-f]{12}", cols[3])  # the fingerprint's node_id
    assert rows["lap1"].endswith("team=ml")
    # every node offers one agent slot; lap2 skipped the bandwidth measurement
    assert all(" yes " in row for row in rows.values())
    assert rows["lap2"].split()[8] == "-" and float(rows["lap1"].split()[8]) > 0


def test_join_with_a_wrong_token_is_refused_with_one_line(netns_cluster):
    t0 = time.monotonic()
    result = netns_cluster.lqbench("join", netns_cluster.address, "--token", "not-the-token", "--name", "intruder",
                                   "--node-ports", "0", "--temp-dir", str(netns_cluster.root / "intruder"))
    netns_cluster.timings["refused join"] = round(time.monotonic() - t0, 1)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: the Ray head at {netns_cluster.address} refused the token: "
        "use the exact `--token` printed by `lqbench head`"]
    assert not [c for c in netns_cluster.processes().values() if "intruder" in c]  # no half-started raylet
    names = netns_cluster.lqbench("nodes", "--json", "--alive").stdout
    assert names.count('"name": "intruder"') == 0 and names.count('"alive": true') == 3


def test_join_on_ports_taken_by_the_head_says_which_port_and_the_fix(netns_cluster):
    """Lending the head's own laptop as a worker: its ports clash with the head's node."""
    c = netns_cluster
    head_ports = int(c.address.rsplit(":", 1)[1]) + 10  # the fixture's `lqbench head --node-ports`
    t0 = time.monotonic()
    result = c.lqbench(*c.join_line.split()[1:], "--name", "lap-clash", "--node-ports", str(head_ports),
                       "--no-bandwidth", "--no-engine-check", "--temp-dir", str(c.root / "clash"))
    assert time.monotonic() - t0 < 30  # said at once, not after Ray's start-up timeout
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: port {head_ports} (node-manager-port) is already in use on this machine")
    assert "pass --node-ports N" in line and re.search(r"e\.g\. --node-ports \d+", line), line
    assert not [cmd for cmd in c.processes().values() if "clash" in cmd]


def test_join_to_a_head_of_another_ray_version_is_refused_with_one_line(netns_cluster):
    """The head's cluster metadata (where Ray keeps its version) says another Ray: join names both."""
    c = netns_cluster
    rewrite = f"""
import json, sys
from cluster.auth import use_token_in_process
use_token_in_process("{c.token}")
from ray._raylet import GcsClient
gcs = GcsClient(address="{c.address}")
meta = json.loads(gcs.internal_kv_get(b"CLUSTER_METADATA", b"cluster"))
if sys.argv[1:] == ["restore"]:
    meta["ray_version"] = meta.pop("real_ray_version")
else:
    meta["real_ray_version"], meta["ray_version"] = meta["ray_version"], "2.0.0"
gcs.internal_kv_put(b"CLUSTER_METADATA", json.dumps(meta).encode(), True, b"cluster")
"""
    changed = c.exec(sys.executable, "-c", rewrite)
    assert changed.returncode == 0, changed.stderr
    try:
        result = c.lqbench(*c.join_line.split()[1:], "--name", "lap-old", "--node-ports", "0", "--no-bandwidth",
                           "--no-engine-check", "--temp-dir", str(c.root / "old"))
    finally:
        restored = c.exec(sys.executable, "-c", rewrite, "restore")
        assert restored.returncode == 0, restored.stderr
    import ray

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: the head at {c.address} runs Ray 2.0.0, this laptop Ray {ray.__version__}: "
        "install the same Ray version on both"]


def test_nodes_with_a_wrong_token_is_refused(netns_cluster):
    result = netns_cluster.lqbench("nodes", "--address", netns_cluster.address, "--token", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("refused the token: use the exact `--token` printed by `lqbench head`")


def test_a_failing_ray_start_is_torn_down_and_explained(netns_cluster):
    """Past our token pre-check (say, the token changed in between): Ray's own refusal path."""
    code = f"""
from pathlib import Path
from agents.join import classify_join_failure
from cluster import auth, ray_node
env = auth.ray_env("stale-token")
env["RAY_gcs_server_port_wait_time_s"] = "2"  # Ray retries the GCS ~20 s by default
try:
    ray_node.start_node(["--address={netns_cluster.address}", "--num-cpus=1",
                         "--temp-dir={netns_cluster.root / 'stale'}"], env, Path("{netns_cluster.root / 'stale.log'}"),
                        classify=lambda text: classify_join_failure(text, "{netns_cluster.address}"))
except Exception as exc:
    print("REFUSED", exc)
"""
    result = netns_cluster.python(code)
    assert "REFUSED the Ray head at" in result.stdout and "refused the token" in result.stdout, result.stderr
    assert not [c for c in netns_cluster.processes().values() if "stale" in c]


def test_drivers_get_live_nodes_with_labels_for_agent_placement(netns_cluster):
    code = f"""
import json
from cluster.head import connect
from cluster.nodes import live_nodes
connect("{netns_cluster.address}", "{netns_cluster.token}")
print(json.dumps(live_nodes(agents_only=True)))
"""
    result = netns_cluster.python(code)
    assert result.returncode == 0, result.stderr
    import json

    nodes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(labels["lqbench-name"] for labels in nodes.values()) == ["boss", "lap1", "lap2"]
    assert all(len(ray_id) == 56 for ray_id in nodes)
    from lqbench.hardware import physical_cores

    threads = {labels["lqbench-name"]: labels["lqbench-threads"] for labels in nodes.values()}
    assert threads == {"boss": str(physical_cores()), "lap1": "1", "lap2": "1"}


def test_a_laptop_that_leaves_shows_as_dead_and_leaves_no_process(netns_cluster):
    c = netns_cluster
    port = int(c.address.rsplit(":", 1)[1])
    _timed(c, "join lap3", *c.join_line.split()[1:], "--name", "lap3", "--threads", "1", "--no-bandwidth",
           "--node-ports", str(port + 40), "--temp-dir", str(c.root / "lap3"))
    assert [cmd for cmd in c.processes().values() if str(c.root / "lap3") in cmd]
    again = c.lqbench(*c.join_line.split()[1:], "--name", "lap3", "--no-bandwidth")
    assert again.returncode == 2 and "already joined as 'lap3'" in again.stderr
    left = _timed(c, "leave lap3", "join", "--stop", "--name", "lap3")
    assert left.stdout.strip() == "left the cluster: lap3"
    assert not [cmd for cmd in c.processes().values() if str(c.root / "lap3") in cmd]
    rows = {line.split()[2]: line.split()[0] for line in c.lqbench("nodes").stdout.strip().splitlines()[1:]}
    assert rows == {"boss": "alive*", "lap1": "alive", "lap2": "alive", "lap3": "dead"}


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_run_with_address_spreads_samples_over_the_laptops(netns_cluster, shared_model_cache):
    """`lqbench run PLAN --address --token` from the head, as a user would: real shards on the
    head and both joined laptops, every sample once, more than one node in the results."""
    import duckdb

    plan = netns_cluster.root / "plan.toml"
    plan.write_text('name = "cluster-cli"\nshard_size = 1\n'
                    '[[models]]\nspec = "demo:gemma-3-270m"\nquants = ["q4_k_m"]\n'
                    '[[suites]]\nname = "lqbench-lua"\nlimit = 6\n'
                    '[sampling]\ntemperature = 0.0\nmax_tokens = 24\n')
    db = netns_cluster.root / "cluster.duckdb"
    env = {**netns_cluster.env, "LQBENCH_MODEL_CACHE": str(shared_model_cache)}  # the demo GGUF, made once
    t0 = time.monotonic()
    result = netns_cluster.exec(LQBENCH, "run", str(plan), "--address", netns_cluster.address, "--token",
                                netns_cluster.token, "--db", str(db), "--quiet", timeout=800, env=env)
    netns_cluster.timings["run --address"] = round(time.monotonic() - t0, 1)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT task_id, node_id, status, gen_tokens FROM samples").fetchall()
        names = {r[0] for r in con.execute(
            "SELECT json_extract_string(labels_json, '$.name') FROM nodes n "
            "WHERE node_id IN (SELECT node_id FROM samples)").fetchall()}
    finally:
        con.close()
    assert len(rows) == 6 and len({r[0] for r in rows}) == 6
    assert all(r[3] > 0 and r[2] != "generation_error" for r in rows)
    assert len({r[1] for r in rows}) >= 2, names  # samples came from more than one laptop
    assert names <= {"boss", "lap1", "lap2"}
