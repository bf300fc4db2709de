"""Model shipping, head side: serve byte ranges of the run's GGUF files to laptops without a shared disk.

One `ModelServer` actor per run, pinned to the driver's node (where the plan's model
files are), knows the run's files by sha256 and answers `read(sha256, offset, length)`
with at most `MAX_CHUNK_BYTES` bytes: a multi-GB model crosses the network as many
modest Ray objects, never one huge one, and a laptop can keep a few requests in
flight. It serves bytes, not trust: the laptop hashes what it receives
(`agents.model_files.ensure_model`) and refuses a file that does not match.
"""

from __future__ import annotations

import os

import ray

CHUNK_BYTES = 8 << 20  # what laptops ask for: big enough to amortise a round trip, small in the object store
MAX_CHUNK_BYTES = 16 << 20  # the most one read returns, whatever is asked


class ModelFileChunks:
    """The files a run may ship, by sha256, read in ranges (plain Python; the actor wraps it)."""

    def __init__(self, files: dict[str, str]):
        self._paths = {sha.lower(): os.fspath(path) for sha, path in files.items()}

    def describe(self, sha256: str) -> dict:
        """{"bytes": size, "chunk_bytes": suggested request size} for a file this run ships."""
        return {"bytes": os.path.getsize(self._path(sha256)), "chunk_bytes": CHUNK_BYTES}

    def read(self, sha256: str, offset: int, length: int) -> bytes:
        length = max(0, min(int(length), MAX_CHUNK_BYTES))
        fd = os.open(self._path(sha256), os.O_RDONLY)
        try:
            return os.pread(fd, length, int(offset))  # positional: safe with several reads at once
        finally:
            os.close(fd)

    def where(self) -> str:
        """The Ray node id serving the files (for logs and tests)."""
        return ray.get_runtime_context().get_node_id()

    def _path(self, sha256: str) -> str:
        path = self._paths.get(sha256.lower())
        if path is None:
            raise KeyError(f"model sha256:{sha256[:16]} is not part of this run")
        return path


# Reads are I/O: a few threads let several laptops (and pipelined requests) share the actor.
ModelServer = ray.remote(num_cpus=0, max_concurrency=8, max_restarts=0)(ModelFileChunks)


def start_model_server(model_rows: list[dict]):
    """A ModelServer for these models-table rows, on the node this driver runs on (where the files are)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    files = {row["sha256"]: row["path"] for row in model_rows}
    return ModelServer.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    ).remote(files)
