"""Where a shard's model file is on this laptop, fetching it from the head when it is not.

The model row carries the head's path, size and sha256. In order of preference:
this laptop's content-addressed cache (`<model cache>/<sha256>.gguf`, size checked),
the head's own path when this laptop sees it with the right size (a shared disk, the
embedded default, a test cluster on one machine), else the file streamed in chunks
from the run's `cluster.model_server.ModelServer`: a few requests in flight, written
to a `.part` file and hashed as it arrives, verified against the sha256, then renamed
into the cache. A mismatch is one clear error and leaves nothing in the cache.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable

from lqbench.errors import LqbenchError
from lqbench.paths import model_cache

IN_FLIGHT = 4  # chunk requests outstanding at once: hides the round trip without flooding the object store
PROGRESS_EVERY_S = 2.0


def cached_path(sha256: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return (Path(cache_dir) if cache_dir else model_cache()) / f"{sha256}.gguf"


def _label(model: dict) -> str:
    return f"{model.get('name', '?')}:{model.get('quant', '?')} ({model['sha256'][:12]})"


def _local_candidates(model: dict, cache_dir: str | os.PathLike | None):
    yield cached_path(model["sha256"], cache_dir)
    if model.get("path"):
        yield Path(model["path"])


def find_local(model: dict, cache_dir: str | os.PathLike | None = None) -> str | None:
    """The model's file on this laptop (own cache first, then the head's path), or None."""
    size = model.get("file_bytes")
    for candidate in _local_candidates(model, cache_dir):
        if candidate.is_file() and (size is None or candidate.stat().st_size == size):
            return os.fspath(candidate)
    return None


def local_model_path(model: dict) -> str:
    """The model's file on this laptop, or a clear error (no shipping: the shared-disk case)."""
    path = find_local(model)
    if path is None:
        raise LqbenchError(f"model {_label(model)} is not on this node")
    return path


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # lands in the agent's Ray worker log


def ensure_model(model: dict, server=None, *, cache_dir: str | os.PathLike | None = None, in_flight: int = IN_FLIGHT,
                 chunk_bytes: int | None = None, log: Callable[[str], None] = _stderr) -> str:
    """A local path to the model's verified file, fetching it from `server` (a ModelServer handle) if needed."""
    path = find_local(model, cache_dir)
    if path is not None:
        return path
    if server is None:
        raise LqbenchError(f"model {_label(model)} is not on this node and the run has no model server")
    return fetch_model(model, server, cache_dir=cache_dir, in_flight=in_flight, chunk_bytes=chunk_bytes, log=log)


def fetch_model(model: dict, server, *, cache_dir: str | os.PathLike | None = None, in_flight: int = IN_FLIGHT,
                chunk_bytes: int | None = None, log: Callable[[str], None] = _stderr) -> str:
    """Stream the file from the head into the cache; return its path. Refuses (and removes) a damaged copy."""
    import ray

    sha = model["sha256"].lower()
    final = cached_path(sha, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        info = ray.get(server.describe.remote(sha))
    except ray.exceptions.RayTaskError as exc:  # not part of the run, or gone from the head's disk
        cause = str(getattr(exc, "cause", None) or exc).splitlines()[0]
        raise LqbenchError(f"the head cannot ship model {_label(model)}: {cause}") from None
    total = int(info["bytes"])
    if model.get("file_bytes") is not None and total != int(model["file_bytes"]):
        raise LqbenchError(f"model {_label(model)}: the head's file is {total} bytes, the run expects "
                           f"{model['file_bytes']} (changed since it was hashed?)")
    step = int(chunk_bytes or info.get("chunk_bytes") or 8 << 20)
    # Unique per process: two workers fetching the same file never write into each other's copy.
    part = final.with_name(f".{sha}.{os.getpid()}.part")
    digest = hashlib.sha256()
    t0 = last_log = time.monotonic()
    received = 0
    log(f"fetching model {_label(model)} from the head: {total / 2**20:.0f} MiB")
    try:
        with open(part, "wb") as out:
            offsets = iter(range(0, total, step))
            waiting: deque = deque()
            for offset in offsets:  # prime the pipeline
                waiting.append((offset, server.read.remote(sha, offset, step)))
                if len(waiting) >= in_flight:
                    break
            while waiting:
                offset, ref = waiting.popleft()
                chunk = ray.get(ref)
                expected = min(step, total - offset)
                if len(chunk) != expected:
                    raise LqbenchError(f"model {_label(model)}: the head sent {len(chunk)} bytes at offset "
                                       f"{offset}, expected {expected} (file changed or truncated?)")
                nxt = next(offsets, None)
                if nxt is not None:
                    waiting.append((nxt, server.read.remote(sha, nxt, step)))
                out.write(chunk)
                digest.update(chunk)  # hash in order, while later chunks are on the way
                received += len(chunk)
                now = time.monotonic()
                if now - last_log >= PROGRESS_EVERY_S:
                    log(f"  {received / 2**20:.0f}/{total / 2**20:.0f} MiB, "
                        f"{received / 2**20 / (now - t0):.1f} MiB/s")
                    last_log = now
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != sha:
            raise LqbenchError(f"model {_label(model)} arrived damaged: sha256 {got[:16]}… ≠ {sha[:16]}…; "
                               f"not cached")
        os.replace(part, final)  # atomic: the cache only ever holds whole, verified files
    finally:
        if part.exists():
            part.unlink()
    seconds = max(time.monotonic() - t0, 1e-9)
    log(f"fetched model {_label(model)}: {total / 2**20:.0f} MiB in {seconds:.1f} s, "
        f"{total / 2**20 / seconds:.1f} MiB/s, verified")
    return os.fspath(final)
