"""The verdicts a scored program can get, best first.

A module of its own, importing nothing, because the scorer's worker processes need these
names and nothing else of `lqbench.records` (whose imports would slow every worker's start).
"""

VERDICTS = (
    "pass",
    "assertion_failure",
    "runtime_error",
    "syntax_error",
    "timeout",
    "memory_limit",
    "sandbox_violation",
)
