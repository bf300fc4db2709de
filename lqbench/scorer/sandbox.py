"""Run one Lua program in a fresh, sandboxed lupa runtime and turn how it ended into a `Verdict`.

This is the in-process half of the scorer: `LuaSandbox.run` gives no protection against a
program that loops inside a C function or in a finalizer (no Lua hook fires there), so it is
meant to run inside a scorer worker process that the pool can kill (see `pool.py`).

What a verdict means, mirroring `lua5.4 program.lua` with Debian's LuaUnit 3.4 on the path:

- ``pass``: the process would exit with status 0 — `os.exit(0)`, `os.exit(true)`, `os.exit()`,
  or falling off the end of the program (whether or not LuaUnit ever ran). Statuses wrap as
  in C: `os.exit(256)` is 0.
- ``assertion_failure``: exit status not 0 and LuaUnit's last run had failed tests (a failed
  `lu.assert*`, `lu.fail`) but no test errors. The message is the first failure's.
- ``runtime_error``: an error escaped the main chunk (lua.c prints it and exits 1 — this includes
  errors raised by LuaUnit itself, e.g. a global `test*` that is neither function nor table); or
  exit status not 0 and LuaUnit's last run had a test error (any error value other than a
  failure — non-string values included), which wins over failures; or any other non-zero exit
  (`os.exit(3)`, `os.exit(false)`) with no failing test to blame.
- ``syntax_error``: the program does not compile.
- ``timeout``: over `timeout_s` of CPU time (instruction hook) or wall time (the pool's kill).
- ``memory_limit``: an allocation failed under the `memory_mb` cap (real Lua has no cap).
- ``sandbox_violation``: the program called something the sandbox withholds: os.execute/
  remove/rename/tmpname, io.open/popen/tmpfile, io.lines/input/output on a file, dofile,
  loadfile, package.loadlib, require of ffi, debug hooks/locals/upvalues/registry, loading
  bytecode with load/loadstring. `require` of any other unknown module fails as in real
  Lua ("module 'x' not found", a runtime error), since no module is installed but LuaUnit.
"""

from __future__ import annotations

import importlib
import os
import time

from lqbench.errors import LqbenchError
from lqbench.verdicts import VERDICTS

LUA_VERSIONS = {
    "5.1": "lupa.lua51",
    "5.2": "lupa.lua52",
    "5.3": "lupa.lua53",
    "5.4": "lupa.lua54",
    "5.5": "lupa.lua55",
    "luajit": "lupa.luajit21",
}

# The count hook runs every this many VM instructions: cheap (~1 % overhead), and a stopped
# program is unwound within microseconds.
HOOK_EVERY = 10_000
# Error messages are kept to this many characters.
MAX_ERROR_CHARS = 500
# The program's Lua state may use memory_mb plus this much for the sandbox and LuaUnit.
BOOTSTRAP_HEADROOM_BYTES = 4 << 20
# A Lua state runs the next program too only if sandbox.lua found nothing of this program
# left in it (see "What crosses back to the host" there) and, in addition, this one took under
# REUSE_MAX_MS of CPU (a new state costs ~0.2 ms: nothing next to a long run), the memory still
# in use after the full collection that ends every reusable run is at most
# REUSE_MAX_GROWTH_KB above the fresh state's (it is the bootstrap's own data then, give or
# take the string table's size: more means something of the program is still reachable)
# and the state has run fewer than REUSE_MAX_PROGRAMS programs (a bound on slow drift).
REUSE_MAX_MS = 5.0
REUSE_MAX_GROWTH_KB = 64
REUSE_MAX_PROGRAMS = 1000
# How a run may end (sandbox.lua's `kind`), and the verdict each gives when it is not an exit.
_KIND_VERDICTS = {
    "error": "runtime_error",
    "syntax": "syntax_error",
    "timeout": "timeout",
    "memory": "memory_limit",
    "violation": "sandbox_violation",
}
_KINDS = frozenset(_KIND_VERDICTS) | {"exit"}
_NUMBER = (int, float)
_HUGE = float("inf")  # an exit status must be finite (NaN fails both comparisons)

_HERE = os.path.dirname(os.path.abspath(__file__))

# ScoreLimits and Verdict are plain classes rather than dataclasses: every worker process
# imports this module, and `dataclasses` (with `inspect` behind it) would double its start-up.


class ScoreLimits:
    """Per-program limits, immutable; `lua` picks the interpreter (5.1/5.2/5.3/5.4/5.5/luajit);
    `fresh_state` (the default) gives every program a new Lua state; False reuses states, faster
    but not exact for collector-timing-dependent verdicts (see LuaSandbox)."""

    __slots__ = ("timeout_s", "memory_mb", "lua", "fresh_state")

    def __init__(self, timeout_s: float = 5.0, memory_mb: int = 256, lua: str = "5.4",
                 fresh_state: bool = True) -> None:
        if lua not in LUA_VERSIONS:
            raise LqbenchError(f"unknown Lua version {lua!r}; choose one of {', '.join(LUA_VERSIONS)}")
        if not timeout_s > 0:
            raise LqbenchError(f"timeout must be positive, got {timeout_s}")
        if int(memory_mb) < 1:
            raise LqbenchError(f"memory limit must be at least 1 MB, got {memory_mb}")
        for name, value in zip(self.__slots__, (timeout_s, memory_mb, lua, fresh_state)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"ScoreLimits is immutable (cannot set {name})")

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        return self._key() == other._key() if isinstance(other, ScoreLimits) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "ScoreLimits(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


class Verdict:
    """How one program ended: `status` is one of `lqbench.verdicts.VERDICTS`."""

    __slots__ = ("status", "passed", "error", "ms")

    def __init__(self, status: str, passed: bool, error: str | None, ms: float) -> None:
        if status not in VERDICTS:
            raise ValueError(f"not a verdict: {status!r}")
        self.status, self.passed, self.error, self.ms = status, passed, error, ms

    def to_dict(self) -> dict:
        return {"status": self.status, "passed": self.passed, "error": self.error, "ms": self.ms}

    def __eq__(self, other):
        return self.to_dict() == other.to_dict() if isinstance(other, Verdict) else NotImplemented

    __hash__ = None  # mutable, as a dataclass without frozen=True

    def __repr__(self) -> str:
        return "Verdict(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def trim_error(message: str | bytes | None) -> str | None:
    """One readable message: decoded, stripped, at most MAX_ERROR_CHARS characters.

    Only Python's own str and bytes are touched: anything else (a Lua object would run its
    metamethods on `.strip()`, `len()` or a slice) is a TypeError, never an operation on it.
    """
    if message is None:
        return None
    if type(message) is bytes:
        message = message.decode("utf-8", "replace")
    elif type(message) is not str:
        raise TypeError(f"error message must be str or bytes, not {type(message).__name__}")
    message = message.strip()
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return message


def verdict_from_outcome(kind: str, code, message, summary: tuple, ms: float) -> Verdict:
    """Map the bootstrap's report (see sandbox.lua) to a verdict, as documented above.

    Every argument must already be plain Python data (`plain_outcome` checks what a Lua state
    returned): counts are numbers, messages str or bytes, nothing is a Lua object.
    """
    tests, failures, errors, first_error, first_failure = summary
    if kind == "exit":
        status = int(code)
        if status == 0:
            return Verdict("pass", True, None, ms)
        if errors:
            return Verdict("runtime_error", False, trim_error(first_error), ms)
        if failures:
            return Verdict("assertion_failure", False, trim_error(first_failure), ms)
        return Verdict("runtime_error", False, f"exit status {status}", ms)
    status = _KIND_VERDICTS.get(kind)
    if status is None:
        return Verdict("runtime_error", False, trim_error(f"scorer: unexpected outcome {kind!r}"), ms)
    return Verdict(status, False, trim_error(message), ms)


_NOT_PLAIN = ("violation", None, "sandbox: the program's state returned something that is not plain data",
              (None,) * 5)


def plain_outcome(result) -> tuple[tuple, bool, float]:
    """((kind, code, message, summary), reusable, kb in use) from what `run` in sandbox.lua
    returned, checked value by value with `type()` alone (which runs nothing of a Lua object):
    sandbox.lua returns only strings, numbers, booleans and nil, and anything else is a
    sandbox violation whose state is not kept."""
    if type(result) is not tuple or len(result) != 10:
        return _NOT_PLAIN, False, 0.0
    kind, code, message, tests, failures, errors, first_error, first_failure, reusable, in_use_kb = result
    kind = kind.decode("ascii", "replace") if type(kind) is bytes else None
    plain = (kind in _KINDS
             and (code is None or (type(code) in _NUMBER and -_HUGE < code < _HUGE))
             and (message is None or type(message) is bytes)
             and all(v is None or type(v) in _NUMBER for v in (tests, failures, errors))
             and all(v is None or type(v) is bytes for v in (first_error, first_failure))
             and type(reusable) is bool and type(in_use_kb) in _NUMBER
             and (kind != "exit" or code is not None))
    if not plain:
        return _NOT_PLAIN, False, 0.0
    return (kind, code, message, (tests, failures, errors, first_error, first_failure)), reusable, float(in_use_kb)


def _deny_attribute(obj, name, is_setting):
    # No Python object is ever handed to the sandbox; if one were, its attributes stay closed.
    raise AttributeError("Python attributes are not accessible from the Lua sandbox")


class _LuaState:
    """One Lua state with the bootstrap loaded: `run(program, cpu_seconds, hook_every)`."""

    __slots__ = ("runtime", "run", "programs", "base_kb")

    def __init__(self, runtime, run, base_kb: float) -> None:
        self.runtime, self.run, self.programs, self.base_kb = runtime, run, 0, base_kb


class LuaSandbox:
    """Runs programs one at a time, each in a world of its own (see sandbox.lua).

    With `limits.fresh_state` (the default) every program gets a brand-new state: its verdict
    is the one it gets alone, always.

    With `fresh_state=False` a Lua state is kept for the next program when nothing the program
    did can outlive it (sandbox.lua decides that, after reading the outcome back as plain data
    and checking the state) and, in addition, the program ran under REUSE_MAX_MS, the state
    holds no more than REUSE_MAX_GROWTH_KB beyond a new state's live data and it has run fewer
    than REUSE_MAX_PROGRAMS programs. That decision is the last thing done for a program, once
    its verdict is complete; otherwise the state is closed right after the program, inside its
    time, and the next program gets a new one. No program can reach another's world then, but
    a reused state is not bit for bit a new one (after the full collection its string table,
    stacks and collector debt differ by a few KB), and a verdict that depends on the
    collector's timing can differ: near the memory cap a few KB decide whether a collection
    cycle ends before an allocation that bypasses Lua's emergency collection (luaL_Buffer's),
    i.e. between `pass` and `memory_limit` (seen: 5.4 and 5.5, a program keeping 16-19 MB
    under a 20 MB cap); likewise weak tables, finalizer timing, `collectgarbage('count')`.
    That is why reuse is not the default (tests/lqbench/test_scorer_order.py shows both).
    """

    def __init__(self, limits: ScoreLimits | None = None) -> None:
        self.limits = limits or ScoreLimits()
        self._lupa = importlib.import_module(LUA_VERSIONS[self.limits.lua])
        self._is_luajit = self.limits.lua == "luajit"
        self._memory_cap = None if self._is_luajit else int(self.limits.memory_mb) * (1 << 20) + BOOTSTRAP_HEADROOM_BYTES
        self._bootstrap_code, self._luaunit_code, self._luaunit_extras_code = self._precompile()
        self._state: _LuaState | None = None
        self.states_made = 0  # how many Lua states this sandbox has created (for tests and reports)

    def _new_runtime(self, capped: bool):
        kwargs = dict(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=False,
            attribute_filter=_deny_attribute,
        )
        if capped and self._memory_cap is not None:  # lupa cannot cap LuaJIT's allocator on 64-bit
            kwargs["max_memory"] = self._memory_cap
        return self._lupa.LuaRuntime(**kwargs)

    def _precompile(self) -> tuple[bytes, ...]:
        """Bytecode of the bootstrap and of our LuaUnit, made once: loading it is cheaper than parsing."""
        runtime = self._new_runtime(capped=False)
        dump = runtime.eval("function(src, name) return string.dump(assert(loadstring or load)(src, name), true) end")
        return tuple(bytes(dump(_read(os.path.join(_HERE, name)), b"=" + name[:-4].encode()))
                     for name in ("sandbox.lua", "luaunit.lua", "luaunit_extras.lua"))

    def _new_state(self) -> _LuaState:
        runtime = self._new_runtime(capped=True)
        run, base_kb = runtime.compile(self._bootstrap_code)(self._luaunit_code, self._luaunit_extras_code)
        self.states_made += 1
        return _LuaState(runtime, run, float(base_kb))

    def run(self, program: str | bytes) -> Verdict:
        if isinstance(program, str):
            program = program.encode("utf-8", "surrogatepass")
        state = self._state
        self._state = None  # taken; put back only if the program leaves it fit for another
        if state is None:
            state = self._new_state()  # before the clock starts: not this program's cost
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            outcome, reusable, in_use_kb = self._run_in(state, program)
        except MemoryError:
            outcome, reusable, in_use_kb = ("memory", None, "memory limit exceeded", (None,) * 5), False, 0.0
        kind, code, message, summary = outcome
        verdict = verdict_from_outcome(kind, code, message, summary, 0.0)
        # Reuse is decided last, once the verdict is complete and plain Python data.
        cpu_ms = (time.thread_time() - cpu_started) * 1000.0
        if (reusable and not self.limits.fresh_state and cpu_ms < REUSE_MAX_MS
                and state.programs < REUSE_MAX_PROGRAMS and in_use_kb - state.base_kb <= REUSE_MAX_GROWTH_KB):
            self._state = state
        else:
            # Closing the state runs the program's pending finalizers (as lua.c does on a
            # normal exit), inside the time the pool allows this program.
            state.run = state.runtime = None
            del state
        verdict.ms = (time.perf_counter() - started) * 1000.0
        return verdict

    def _run_in(self, state: _LuaState, program: bytes):
        runtime = state.runtime
        try:
            if self._memory_cap is not None:
                runtime.set_max_memory(runtime.get_memory_used() + self._memory_cap)
            state.programs += 1
            result = state.run(program, float(self.limits.timeout_s), HOOK_EVERY, not self.limits.fresh_state)
        except self._lupa.LuaMemoryError:
            return ("memory", None, "memory limit exceeded", (None,) * 5), False, 0.0
        except self._lupa.LuaError as exc:
            # lupa makes the message from a string error value only (never calling a
            # metamethod), and run() returns normally unless the bootstrap itself failed
            return ("error", None, f"scorer: {exc}", (None,) * 5), False, 0.0
        return plain_outcome(result)
