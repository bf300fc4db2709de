"""Model shipping throughput on real Ray over loopback, by chunk size and requests in flight.

A two-node `ray.cluster_utils.Cluster` on 127.0.0.1: the driver's (head) node runs the
`cluster.model_server.ModelServer`, a task pinned to the other node runs
`agents.model_files.ensure_model` into a fresh cache directory (hash, fsync, rename
included). For scale it also prints what this machine does without Ray: a plain
file copy and a sha256 of the same bytes. Loopback has no Wi-Fi in it: on a real
network the link is the limit (about 5-60 MB/s on Wi-Fi), which these rates exceed.

Run: python bench/bench_model_shipping.py [--mib 256] [--file PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on Linux binds 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

MiB = 1 << 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256, help="size of the generated file to ship")
    ap.add_argument("--file", help="ship this file instead (e.g. a GGUF)")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from agents.model_files import ensure_model
    from cluster.model_server import start_model_server

    work = tempfile.mkdtemp(prefix="lqbench-ship-")
    try:
        src = args.file
        if not src:
            src = os.path.join(work, "blob.bin")
            with open(src, "wb") as f:
                for _ in range(args.mib):
                    f.write(os.urandom(MiB))
        size = os.path.getsize(src)
        t0 = time.perf_counter()
        h = hashlib.sha256()
        with open(src, "rb") as f:
            while block := f.read(8 * MiB):
                h.update(block)
        sha = h.hexdigest()
        hash_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        shutil.copyfile(src, os.path.join(work, "copy.bin"))
        copy_s = time.perf_counter() - t0
        os.unlink(os.path.join(work, "copy.bin"))

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                                 "include_dashboard": False})
        laptop = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            row = {"sha256": sha, "name": os.path.basename(src), "quant": "-", "file_bytes": size,
                   "path": "/nonexistent-head-disk/file.gguf"}  # the laptop cannot see the head's disk
            warm = os.path.join(work, "warm.bin")
            with open(warm, "wb") as f:
                f.write(os.urandom(MiB))
            warm_sha = hashlib.sha256(open(warm, "rb").read()).hexdigest()
            server = start_model_server([{"sha256": sha, "path": src}, {"sha256": warm_sha, "path": warm}])
            fetch = ray.remote(ensure_model).options(
                num_cpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=laptop.node_id, soft=False))
            # Start the server actor and the laptop's worker process before timing anything.
            ray.get(fetch.remote({**row, "sha256": warm_sha, "file_bytes": MiB}, server,
                                 cache_dir=os.path.join(work, "warm-cache")))
            print(f"shipping {size / MiB:.0f} MiB head node -> laptop node over loopback (real Ray, 2 raylets)")
            print(f"for scale, on this machine: sha256 {size / MiB / hash_s:6.0f} MiB/s, "
                  f"file copy {size / MiB / copy_s:6.0f} MiB/s")
            print(f"{'chunk':>8} {'in flight':>9} {'seconds':>8} {'MiB/s':>7}")
            for chunk_mib in (4, 8, 16):
                for in_flight in (1, 4):
                    cache = os.path.join(work, f"cache-{chunk_mib}-{in_flight}")
                    t0 = time.perf_counter()
                    path = ray.get(fetch.remote(row, server, cache_dir=cache, chunk_bytes=chunk_mib * MiB,
                                                in_flight=in_flight))
                    took = time.perf_counter() - t0
                    assert os.path.getsize(path) == size
                    shutil.rmtree(cache)
                    print(f"{chunk_mib:>6}Mi {in_flight:>9} {took:8.2f} {size / MiB / took:7.0f}")
        finally:
            ray.shutdown()
            cluster.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
