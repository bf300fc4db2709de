"""Fingerprint of the machine a sample ran on: what makes speed numbers comparable across laptops.

`node_id` is a stable hash of the hardware identity (hostname, CPU, cores, RAM,
OS, arch), so a laptop that rejoins keeps its id and its history.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def measure_mem_bandwidth_gbs(mb: int = 256, repeats: int = 3) -> float:
    """Best-of-N single-thread copy bandwidth (read + write bytes / s), a short proxy for
    the memory bandwidth that bounds LLM decoding."""
    import numpy as np

    n = mb * 1024 * 1024 // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return round(2 * src.nbytes / best / 1e9, 2)


def llama_cpp_version() -> str:
    try:
        from importlib.metadata import version

        return version("llama_cpp_python")
    except Exception:
        return "unknown"


def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def fingerprint(measure_bandwidth: bool = True, labels: dict | None = None, name: str | None = None) -> dict:
    """This machine as a `nodes` row.

    `name` (default: the hostname) is part of the identity so that several Ray nodes
    on one machine (tests, or one laptop joined twice on purpose) stay distinct.
    """
    import psutil

    identity = {
        "name": name or socket.gethostname(),
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cores": psutil.cpu_count(logical=True) or 1,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
    }
    node_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    labels = {**(labels or {}), "name": identity.pop("name")}
    return {
        "node_id": node_id,
        **identity,
        "mem_bandwidth_gbs": measure_mem_bandwidth_gbs() if measure_bandwidth else None,
        "llama_cpp_version": llama_cpp_version(),
        "labels_json": json.dumps(labels, sort_keys=True),
    }
