"""Fingerprint of the machine a sample ran on: what makes speed numbers comparable across laptops.

`node_id` is a stable hash of the hardware identity (hostname, CPU, cores, RAM,
OS, arch), so a laptop that rejoins keeps its id and its history.

The fingerprint also travels as Ray node labels (`fingerprint_labels`): `lqbench join`
puts it on the laptop's Ray node, so the head can list and select nodes before any
actor runs there. Ray label values follow Kubernetes syntax (<= 63 characters of
`[A-Za-z0-9_.-]`, alphanumeric at both ends), hence `label_value`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
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


def llama_cpp_system_info() -> str:
    """llama.cpp's own view of this CPU ("CPU : AVX2 = 1 | FMA = 1 | ..."): what its kernels will use.

    Empty when llama-cpp-python is not importable (a head that only schedules)."""
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
    except Exception:
        return ""
    return (info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)).strip()


# The CPU features that change llama.cpp's CPU speed; the rest of its system info is build flags.
SIMD_FEATURES = ("AVX", "AVX2", "AVX_VNNI", "AVX512", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8", "FMA", "F16C",
                 "NEON", "ARM_FMA", "FP16_VA", "DOTPROD", "MATMUL_INT8", "SVE", "SME")


def simd_features(system_info: str) -> list[str]:
    """The enabled entries of `SIMD_FEATURES` in a llama.cpp system-info string, in that order."""
    enabled = set()
    for part in system_info.replace("\n", "|").split("|"):
        key, sep, value = part.rpartition("=")
        if sep and value.strip() not in ("", "0"):
            enabled.add(key.split(":")[-1].strip().upper())
    return [f for f in SIMD_FEATURES if f in enabled]


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
        "llama_cpp_system_info": llama_cpp_system_info(),
        "labels_json": json.dumps(labels, sort_keys=True),
    }


# ---------------------------------------------------------------- as Ray node labels
LABEL_PREFIX = "lqbench-"  # keys this module owns; anything else on a node is a user label
NAME_LABEL = "lqbench-name"
ENGINE_CONFIG_LABEL = "lqbench-extra-bufts"  # on | off: the engine configuration `lqbench join` found working
ENGINE_BUILD_LABEL = "lqbench-engine-build"  # lqbench.engine.build_info()["label"]
_LABEL_FIELDS = {  # label key -> fingerprint field
    "lqbench-node-id": "node_id",
    "lqbench-hostname": "hostname",
    "lqbench-cpu": "cpu_model",
    "lqbench-cores": "physical_cores",
    "lqbench-logical-cores": "logical_cores",
    "lqbench-ram-gb": "ram_gb",
    "lqbench-os": "os",
    "lqbench-arch": "arch",
    "lqbench-mem-bw-gbs": "mem_bandwidth_gbs",
    "lqbench-llama-cpp": "llama_cpp_version",
}
_LABEL_SYNTAX = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_LABEL_KEY_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def label_value(text: object) -> str:
    """`text` made a valid Ray label value: other characters become `_`, runs collapse,
    the ends are trimmed to alphanumerics, at most 63 characters ("" stays "")."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))
    value = re.sub(r"_+", "_", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def check_user_label(key: str, value: str) -> None:
    """Refuse, with one line, a `--label k=v` that Ray would reject or that clashes with ours."""
    from lqbench.errors import LqbenchError

    name = key.rsplit("/", 1)[-1]
    prefix = key.rsplit("/", 1)[0] if "/" in key else ""
    if not _LABEL_SYNTAX.fullmatch(name) or (prefix and not _LABEL_KEY_PREFIX.fullmatch(prefix)):
        raise LqbenchError(f"bad label key {key!r}: use letters, digits, '-', '_', '.' (<= 63, alphanumeric ends)")
    if key.startswith(LABEL_PREFIX) or key.startswith("ray.io/") or key == "name":
        raise LqbenchError(f"label key {key!r} is reserved (lqbench-*, ray.io/*, name)")
    if value and not _LABEL_SYNTAX.fullmatch(value):
        raise LqbenchError(f"bad value for label {key}: {value!r} (letters, digits, '-', '_', '.'; <= 63)")


def parse_label_args(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`["team=ml", "room=2"]` -> `{"team": "ml", "room": "2"}`, each checked by `check_user_label`."""
    from lqbench.errors import LqbenchError

    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LqbenchError(f"bad --label {item!r}: expected KEY=VALUE")
        key, value = key.strip(), value.strip()
        check_user_label(key, value)
        labels[key] = value
    return labels


def fingerprint_labels(fp: dict, threads: int | None = None) -> dict[str, str]:
    """A fingerprint (from `fingerprint`) as Ray node labels: lqbench-* keys plus the user's labels.

    cpu_model and os are lossy here (label syntax); the exact strings come from
    `fingerprint` run on the node itself, whose node_id matches `lqbench-node-id`."""
    labels = {}
    user = {k: v for k, v in json.loads(fp.get("labels_json") or "{}").items() if k != "name"}
    name = json.loads(fp.get("labels_json") or "{}").get("name") or fp.get("hostname", "")
    labels[NAME_LABEL] = label_value(name) or "node"
    for key, field in _LABEL_FIELDS.items():
        if fp.get(field) is not None:
            labels[key] = label_value(fp[field])
    simd = simd_features(fp.get("llama_cpp_system_info") or "")
    if simd:
        labels["lqbench-simd"] = label_value("-".join(f.lower() for f in simd))
    if threads:
        labels["lqbench-threads"] = str(int(threads))
    for key, value in user.items():
        labels[key] = label_value(value)
    return labels


def split_labels(labels: dict) -> tuple[dict, dict]:
    """A Ray node's labels -> (lqbench-* fingerprint labels, user labels); Ray's own ray.io/* are dropped."""
    ours = {k: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    user = {k: v for k, v in labels.items() if not k.startswith(LABEL_PREFIX) and not k.startswith("ray.io/")}
    return ours, user


def fingerprint_from_labels(labels: dict) -> dict:
    """The `nodes` row as far as a Ray node's labels tell it (for the head, before any actor runs there).

    Numbers come back as numbers; missing fields are None."""
    ours, user = split_labels(labels)
    row: dict = {field: ours.get(key) for key, field in _LABEL_FIELDS.items()}
    for field, cast in (("physical_cores", int), ("logical_cores", int), ("ram_gb", float),
                        ("mem_bandwidth_gbs", float)):
        try:
            row[field] = cast(row[field]) if row[field] not in (None, "") else None
        except ValueError:
            row[field] = None
    name = ours.get(NAME_LABEL)
    row["labels_json"] = json.dumps({**user, **({"name": name} if name else {})}, sort_keys=True)
    row["name"] = name
    row["simd"] = ours.get("lqbench-simd", "")
    row["threads"] = int(ours["lqbench-threads"]) if ours.get("lqbench-threads", "").isdigit() else None
    return row
