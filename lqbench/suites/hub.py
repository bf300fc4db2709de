"""MultiPL-E's Lua suites from the Hugging Face hub, at a pinned revision -- only when asked by name.

`load_suite("multipl-e:humaneval-lua")` (or `mbpp-lua`, optionally `@REVISION`)
downloads the dataset's Parquet file with `huggingface_hub.hf_hub_download` into
the usual hub cache and reads it with DuckDB (`lqbench.suites.multiple`). Nothing
else in lqbench ever goes to the hub. Without a reachable hub (or with
HF_HUB_OFFLINE=1 and nothing cached) it fails within seconds with one line.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from lqbench.errors import LqbenchError
from lqbench.tasks import Suite

MULTIPL_E_REPO = "nuprl/MultiPL-E"
# A commit of the dataset's Parquet branch (refs/convert/parquet, July 2024) holding
# `<config>/test/0000.parquet`; pinned so a suite name always means the same tasks.
MULTIPL_E_REVISION = "d80c9f4095f4779d22d7bc406cf1ef8396fb4505"
HUB_CONFIGS = {
    "humaneval-lua": "humaneval-lua/test/0000.parquet",
    "mbpp-lua": "mbpp-lua/test/0000.parquet",
}
# The whole fetch (metadata request + a ~70 kB download) gets this long, then we give up.
FETCH_DEADLINE_S = 30.0
ETAG_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 3.0


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_unreachable(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub endpoint cannot be reached (None if a TCP connection opens).

    huggingface_hub retries a failed request five times with backoff (~25 s of
    warnings); one quick connection attempt first lets us fail in seconds.
    """
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"hub {host}:{port} unreachable ({exc.strerror or type(exc).__name__})"
    return None


def _cached_path(filename: str, revision: str, cache_dir: Path | None) -> str | None:
    """The file's path in the local hub cache, if it is there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(MULTIPL_E_REPO, filename, cache_dir=cache_dir, revision=revision,
                                   repo_type="dataset")
    return found if isinstance(found, str) else None


def fetch_multipl_e_parquet(config: str, revision: str = MULTIPL_E_REVISION, *,
                            cache_dir: Path | None = None, deadline_s: float = FETCH_DEADLINE_S) -> Path:
    """The local path of the config's Parquet file, downloading it if it is not cached.

    cache_dir: the hub cache to use (default: huggingface_hub's, e.g. ~/.cache/huggingface/hub).
    """
    if config not in HUB_CONFIGS:
        raise LqbenchError(f"unknown MultiPL-E suite {config!r}; known: {', '.join(HUB_CONFIGS)}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise LqbenchError("huggingface_hub is not installed; cannot fetch MultiPL-E suites") from exc

    filename = HUB_CONFIGS[config]
    # Offline: only the cache counts. Read the variable ourselves because huggingface_hub
    # reads it once at import time, which may be before our caller set it.
    offline = _env_true("HF_HUB_OFFLINE")
    where = f"{MULTIPL_E_REPO}@{revision[:12]}/{filename}"
    cached = _cached_path(filename, revision, cache_dir)
    if cached:
        return Path(cached)
    if offline:
        raise LqbenchError(f"cannot fetch MultiPL-E {config} ({where}): offline (HF_HUB_OFFLINE) "
                           "and not in the local hub cache")
    unreachable = _hub_unreachable()
    if unreachable:
        raise LqbenchError(f"cannot fetch MultiPL-E {config} ({where}): {unreachable}")
    outcome: dict = {}

    def fetch() -> None:
        try:
            outcome["path"] = hf_hub_download(
                repo_id=MULTIPL_E_REPO, repo_type="dataset", filename=filename, revision=revision,
                cache_dir=cache_dir, etag_timeout=ETAG_TIMEOUT_S)
        except BaseException as exc:  # reported below, in the caller's thread
            outcome["error"] = exc

    # A daemon thread with a deadline: however the network misbehaves, we do not hang.
    worker = threading.Thread(target=fetch, name="lqbench-hub-fetch", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        raise LqbenchError(f"cannot fetch MultiPL-E {config} ({where}): no answer from the hub in {deadline_s:g} s")
    if "error" in outcome:
        exc = outcome["error"]
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}"
        raise LqbenchError(f"cannot fetch MultiPL-E {config} ({where}): {why}")
    return Path(outcome["path"])


def load_multipl_e_hub(spec: str, *, strict: bool = True, cache_dir: Path | None = None) -> Suite:
    """`humaneval-lua` or `mbpp-lua[@REVISION]` as a Suite named after the config."""
    from lqbench.suites.multiple import load_multipl_e_file

    config, _, revision = spec.partition("@")
    revision = revision or MULTIPL_E_REVISION
    path = fetch_multipl_e_parquet(config, revision, cache_dir=cache_dir)
    return load_multipl_e_file(path, name=config, strict=strict,
                               source=f"hub:{MULTIPL_E_REPO}@{revision}/{HUB_CONFIGS[config]}")
