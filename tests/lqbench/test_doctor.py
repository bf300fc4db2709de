"""`lqbench doctor` as a user runs it: real llama.cpp in engine processes, real Lua, real crashes as findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lqbench.engine_worker import FAULT_ENV

pytestmark = pytest.mark.e2e
LQBENCH = str(Path(sys.executable).parent / "lqbench")


def _doctor(*args, fault: str | None = None):
    env = dict(os.environ)
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    proc = subprocess.run([LQBENCH, "doctor", "--json", *args], capture_output=True, text=True, timeout=600, env=env)
    checks = {}
    for line in proc.stdout.splitlines():
        c = json.loads(line)
        checks[c["name"]] = c
    return proc, checks


def test_doctor_on_this_machine_reports_every_check():
    proc, checks = _doctor()
    assert proc.returncode == 0, proc.stderr
    for name in ("cpu", "ram", "llama-cpp-python", "llama.cpp system_info", "inference extra_bufts=on",
                 "inference extra_bufts=off", "engine configuration", "ray", "duckdb", "lupa", "cluster token"):
        assert name in checks, name
    from lqbench.scorer import LUA_VERSIONS

    for version in LUA_VERSIONS:
        assert checks[f"lua {version}"]["status"] == "ok", checks[f"lua {version}"]
    assert checks["inference extra_bufts=on"]["status"] == "ok"
    assert "gen tok/s" in checks["inference extra_bufts=on"]["detail"]
    assert "buffers CPU_Mapped" in checks["inference extra_bufts=off"]["detail"]
    assert "CPU_REPACK" not in checks["inference extra_bufts=off"]["detail"]
    assert checks["engine configuration"] == {"name": "engine configuration", "status": "ok",
                                              "detail": "extra_bufts=on (the default)"}
    assert "CPU :" in checks["llama.cpp system_info"]["detail"]


def test_a_default_engine_that_crashes_is_a_finding_with_the_safe_configuration_as_advice():
    proc, checks = _doctor("--no-lua", fault="crash-extra-bufts")
    assert proc.returncode == 0, proc.stderr  # the machine can still run lqbench
    assert checks["inference extra_bufts=on"]["status"] == "warn"  # a finding: another configuration works
    assert checks["inference extra_bufts=on"]["detail"].startswith("crashed: SIGSEGV during generate")
    assert checks["inference extra_bufts=off"]["status"] == "ok"
    assert checks["engine configuration"]["status"] == "warn"
    assert checks["engine configuration"]["detail"].startswith("use extra_bufts=off: the default crashed")
    assert "lua 5.4" not in checks


def test_an_engine_that_crashes_in_every_configuration_is_broken_with_one_line():
    proc, checks = _doctor("--no-lua", fault="crash")
    assert proc.returncode == 1
    assert checks["engine configuration"]["status"] == "fail"
    assert checks["inference extra_bufts=off"]["status"] == "fail"
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("doctor: broken: inference extra_bufts=on: crashed: SIGSEGV during generate")
    assert "engine configuration: no configuration runs the model" in line
