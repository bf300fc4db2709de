"""The Lua scorer: run a MultiPL-E-layout program with LuaUnit in a sandbox, return its verdict.

    from lqbench.scorer import Verdict, ScoreLimits, ScorerPool, score

    with ScorerPool(jobs=None, limits=ScoreLimits(timeout_s=5.0, memory_mb=256, lua="5.4")) as pool:
        verdict = pool.score(program)                 # Verdict(status, passed, error, ms)
        for verdict in pool.score_many(programs):     # input order, parallel over the workers
            ...
    verdict = score(program)                          # one-off, through a shared one-worker pool

Verdict statuses and what they mean are documented in `lqbench.scorer.sandbox`; the worker
processes, limits and kills in `lqbench.scorer.pool`. Importing this package is cheap: lupa is
imported only inside worker processes.
"""

from __future__ import annotations

import importlib

__all__ = ["Verdict", "ScoreLimits", "ScorerPool", "ScorerError", "score", "LUA_VERSIONS"]

# Loaded on first use, so that a worker process importing lqbench.scorer.worker does not
# pay for the pool's imports (subprocess, threading, tempfile).
_LAZY = {"ScorerPool": "pool", "ScorerError": "pool", "shared_pool": "pool",
         "Verdict": "sandbox", "ScoreLimits": "sandbox", "LUA_VERSIONS": "sandbox"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lqbench.scorer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lqbench.scorer.{module}"), name)


def score(program, limits=None):
    """Score one program with `limits` (default ScoreLimits()) in a shared worker process."""
    from lqbench.scorer.pool import shared_pool
    from lqbench.scorer.sandbox import ScoreLimits

    return shared_pool(limits or ScoreLimits()).score(program)
