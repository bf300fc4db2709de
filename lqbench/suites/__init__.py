"""Suite sources beside the built-in problem files: MultiPL-E files and the hub, and problem checks.

The built-in problems themselves are data (`lqbench/suites/<dir>/*.toml`), loaded by
`lqbench.tasks`; this package holds the code that reads other suites and checks
that a problem follows the MultiPL-E Lua layout.
"""
