"""The reference the scorer is measured against: a real `lua5.4` process with LuaUnit on its path.

Used by the differential tests and `bench/bench_scorer.py`, never by scoring itself (no
sandbox here). One program = one interpreter process, as the reference study ran them.
`classify` reads that process's exit status and output the way `sandbox.py` documents the
verdicts, so both sides are compared on the same definitions:

- killed at the time limit -> timeout; exit status 0 -> pass;
- "not enough memory" on stderr -> memory_limit;
- `lua5.4: ...` on stderr: with a stack traceback -> runtime_error (the chunk ran and raised),
  without one -> syntax_error if the file does not compile (checked with a second process,
  since an error object with __tostring is also printed without a traceback), else
  runtime_error;
- otherwise LuaUnit's last status line ("Ran N tests ..., F failures, E errors"): errors ->
  runtime_error, failures -> assertion_failure; a non-zero exit with neither -> runtime_error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from lqbench.scorer.sandbox import Verdict, trim_error

_STATUS_LINE = re.compile(rb"^Ran \d+ tests in [0-9.]+ seconds, .*$", re.M)
_FAILURES = re.compile(rb"(\d+) failures?\b")
_ERRORS = re.compile(rb"(\d+) errors?\b")


def find_reference_lua(name: str = "lua5.4") -> str | None:
    """Path of the reference interpreter if it and a LuaUnit for it are installed."""
    exe = shutil.which(name)
    if exe is None:
        return None
    try:
        probe = subprocess.run([exe, "-e", "require('luaunit')"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if probe.returncode == 0 else None


def classify(returncode: int | None, stdout: bytes, stderr: bytes, timed_out: bool, ms: float,
             interpreter: str = "lua5.4", compiles=None) -> Verdict:
    """The verdict a real run stands for (see the module docstring).

    `compiles()` is asked only when lua.c printed an error without a traceback, which it does
    both for a syntax error and for an error object with a __tostring metamethod.
    """
    if timed_out:
        return Verdict("timeout", False, "timeout", ms)
    if returncode == 0:
        return Verdict("pass", True, None, ms)
    if b"not enough memory" in stderr:
        return Verdict("memory_limit", False, "not enough memory", ms)
    # lua.c prefixes its own messages with argv[0], i.e. the interpreter as it was invoked
    prefix = next((p for p in (interpreter.encode() + b": ", os.path.basename(interpreter).encode() + b": ")
                   if stderr.startswith(p)), None)
    if prefix is not None:
        message = trim_error(stderr[len(prefix):].split(b"\n", 1)[0])
        if b"stack traceback:" in stderr or (compiles is not None and compiles()):
            return Verdict("runtime_error", False, message, ms)
        return Verdict("syntax_error", False, message, ms)
    lines = _STATUS_LINE.findall(stdout)
    if lines:
        line = lines[-1]
        failures = _FAILURES.search(line)
        errors = _ERRORS.search(line)
        if errors and int(errors.group(1)) > 0:
            return Verdict("runtime_error", False, "LuaUnit: test error", ms)
        if failures and int(failures.group(1)) > 0:
            return Verdict("assertion_failure", False, "LuaUnit: test failure", ms)
    return Verdict("runtime_error", False, f"exit status {returncode}", ms)


def run_reference(program: str | bytes, timeout_s: float = 5.0, interpreter: str = "lua5.4",
                  workdir: str | os.PathLike | None = None) -> Verdict:
    """Run one program as `lua5.4 program.lua` (stdin empty) and classify the outcome."""
    if isinstance(program, str):
        program = program.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory(dir=workdir, prefix="lqbench-ref-") as tmp:
        path = Path(tmp) / "program.lua"
        path.write_bytes(program)

        def compiles() -> bool:
            check = subprocess.run(
                [interpreter, "-e", "if not loadfile('program.lua') then os.exit(3) end"],
                cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            return check.returncode == 0

        started = time.perf_counter()
        try:
            done = subprocess.run([interpreter, "program.lua"], cwd=tmp, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return classify(None, b"", b"", True, (time.perf_counter() - started) * 1000.0, interpreter)
        ms = (time.perf_counter() - started) * 1000.0
        return classify(done.returncode, done.stdout, done.stderr, False, ms, interpreter, compiles)
