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

from lqbench.scorer.pool import ScorerError, ScorerPool, shared_pool
from lqbench.scorer.sandbox import LUA_VERSIONS, ScoreLimits, Verdict

__all__ = ["Verdict", "ScoreLimits", "ScorerPool", "ScorerError", "score", "LUA_VERSIONS"]


def score(program: str | bytes, limits: ScoreLimits | None = None) -> Verdict:
    """Score one program with `limits` (default ScoreLimits()) in a shared worker process."""
    return shared_pool(limits or ScoreLimits()).score(program)
