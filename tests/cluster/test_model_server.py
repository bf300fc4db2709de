"""Model shipping on real Ray (loopback): the head's ModelServer, a fetch on another node, damage refused.

A head node (which runs the driver and so the server) and a laptop node, both raylets on
127.0.0.1. The laptop fetches through `agents.model_files.ensure_model`, run as a Ray task
pinned to the laptop, into its own cache directory; the model rows name a head path the
laptop "cannot see" so the bytes really go through the server.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import pytest

from agents.model_files import ensure_model
from lqbench.errors import LqbenchError

MiB = 1 << 20


@pytest.fixture(scope="module")
def loopback():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                             "include_dashboard": False})
    laptop = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield laptop.node_id
    finally:
        ray.shutdown()
        cluster.shutdown()


def _row(path, sha=None, name="blob", quant="q0"):
    data_sha = sha or hashlib.sha256(open(path, "rb").read()).hexdigest()
    # The head's path as the laptop would see it: not there (no shared disk).
    return {"model_id": data_sha[:16], "name": name, "quant": quant, "sha256": data_sha,
            "path": f"/nonexistent-head-disk/{os.path.basename(path)}", "file_bytes": os.path.getsize(path)}


def _fetch_on(node_id, row, server, cache_dir, **kw):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(ensure_model).options(
        num_cpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False))
    return ray.get(task.remote(row, server, cache_dir=str(cache_dir), **kw), timeout=300)


def _server(files):
    from cluster.model_server import start_model_server

    return start_model_server([{"sha256": sha, "path": str(p)} for sha, p in files.items()])


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_server_runs_on_the_drivers_node_and_caps_chunks(loopback, tmp_path):
    import ray

    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3 * MiB))
    server = _server({_sha(blob): blob})
    assert ray.get(server.where.remote()) == ray.get_runtime_context().get_node_id() != loopback
    assert ray.get(server.describe.remote(_sha(blob)))["bytes"] == 3 * MiB
    from cluster.model_server import MAX_CHUNK_BYTES

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(MAX_CHUNK_BYTES + MiB)
    server2 = _server({"ab" * 32: big})
    assert len(ray.get(server2.read.remote("ab" * 32, 0, 10 * MAX_CHUNK_BYTES))) == MAX_CHUNK_BYTES
    with pytest.raises(Exception, match="not part of this run"):
        ray.get(server.describe.remote("cd" * 32))


def test_multi_chunk_file_arrives_whole_and_in_order(loopback, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(5 * MiB + 12345))  # 6 chunks of 1 MiB, the last one short
    row = _row(blob)
    server = _server({row["sha256"]: blob})
    cache = tmp_path / "laptop-cache"
    path = _fetch_on(loopback, row, server, cache, chunk_bytes=MiB, in_flight=3)
    assert path == str(cache / f"{row['sha256']}.gguf")
    assert open(path, "rb").read() == blob.read_bytes()
    assert sorted(os.listdir(cache)) == [f"{row['sha256']}.gguf"]  # no .part left behind
    # Next time it comes from the laptop's own cache: no server needed.
    assert ensure_model(row, None, cache_dir=cache) == path


def test_a_corrupted_chunk_is_refused_and_nothing_is_cached(loopback, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(4 * MiB))
    row = _row(blob)
    with open(blob, "r+b") as f:  # one byte of the third chunk changes after the head hashed the file
        f.seek(2 * MiB + 77)
        byte = f.read(1)
        f.seek(2 * MiB + 77)
        f.write(bytes([byte[0] ^ 0xFF]))
    server = _server({row["sha256"]: blob})
    cache = tmp_path / "laptop-cache"
    with pytest.raises(LqbenchError, match="arrived damaged.*not cached"):
        _fetch_on(loopback, row, server, cache, chunk_bytes=MiB)
    assert not cache.exists() or os.listdir(cache) == []


def test_a_file_that_is_not_the_named_sha_is_refused(loopback, tmp_path):
    right, wrong = tmp_path / "right.bin", tmp_path / "wrong.bin"
    right.write_bytes(os.urandom(2 * MiB))
    wrong.write_bytes(os.urandom(2 * MiB))
    row = _row(right)
    server = _server({row["sha256"]: wrong})  # the head serves another file under that sha
    cache = tmp_path / "laptop-cache"
    with pytest.raises(LqbenchError, match="arrived damaged"):
        _fetch_on(loopback, row, server, cache, chunk_bytes=MiB)
    assert not cache.exists() or os.listdir(cache) == []
    smaller = {**row, "file_bytes": row["file_bytes"] - 1}
    with pytest.raises(LqbenchError, match="the run expects"):
        _fetch_on(loopback, smaller, server, cache)


def test_no_server_and_no_local_copy_is_one_clear_error(tmp_path):
    row = {"sha256": "ef" * 32, "name": "m", "quant": "q4_k_m", "path": "/nonexistent/m.gguf", "file_bytes": 10}
    with pytest.raises(LqbenchError, match="not on this node and the run has no model server"):
        ensure_model(row, None, cache_dir=tmp_path)


def test_a_file_the_laptop_sees_is_used_in_place(tmp_path):
    blob = tmp_path / "shared.gguf"
    blob.write_bytes(b"GGUF" + os.urandom(100))
    row = {**_row(blob), "path": str(blob)}
    assert ensure_model(row, None, cache_dir=tmp_path / "cache") == str(blob)
    with pytest.raises(LqbenchError, match="not on this node"):  # same name, other size: not the file
        ensure_model({**row, "file_bytes": 5}, None, cache_dir=tmp_path / "cache")


def test_the_demo_gguf_ships_to_a_laptop_verified(loopback, tmp_path):
    """A real GGUF (the demo model, 253 MB) crosses from the head node to the laptop node."""
    from lqbench.gguf_meta import read_gguf_meta
    from lqbench.models import resolve_model

    model = resolve_model("demo:gemma-3-270m")
    row = {**model.to_row(), "path": "/nonexistent-head-disk/demo.gguf"}
    server = _server({model.sha256: model.path})
    cache = tmp_path / "laptop-cache"
    t0 = time.perf_counter()
    path = _fetch_on(loopback, row, server, cache)
    seconds = time.perf_counter() - t0
    assert path != model.path and os.path.getsize(path) == model.file_bytes
    assert _sha(path) == model.sha256
    meta = read_gguf_meta(path)  # a whole GGUF, header and tensors, not just the right number of bytes
    assert (meta.architecture, meta.n_params) == (model.architecture, model.n_params)
    print(f"\nshipped {model.file_bytes / MiB:.0f} MiB over loopback in {seconds:.2f} s: "
          f"{model.file_bytes / MiB / seconds:.0f} MiB/s", file=sys.stderr)
