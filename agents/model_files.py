"""Where a shard's model file is on this laptop.

The model row carries the head's path and sha256. A laptop that shares the head's
disk (the embedded default, or a test cluster on one machine) uses that path when
the file is there with the right size; otherwise it looks in its own
content-addressed cache (LQBENCH_HOME/models/<sha256>.gguf).
"""

from __future__ import annotations

import os
from pathlib import Path

from lqbench.errors import LqbenchError
from lqbench.paths import model_cache


def cached_path(sha256: str) -> Path:
    return model_cache() / f"{sha256}.gguf"


def local_model_path(model: dict) -> str:
    size = model.get("file_bytes")
    for candidate in (Path(model["path"]), cached_path(model["sha256"])):
        if candidate.is_file() and (size is None or candidate.stat().st_size == size):
            return os.fspath(candidate)
    raise LqbenchError(f"model {model['name']}:{model['quant']} ({model['sha256'][:12]}) is not on this node")
