"""The scorer's interface: limits, verdict mapping, Lua versions, and the worker pool's behaviour
(order, threads, runaways, lost workers, closing)."""

import os
import threading
import time

import pytest

from lqbench.errors import LqbenchError
from lqbench.scorer import LUA_VERSIONS, ScoreLimits, ScorerError, ScorerPool, Verdict, score
from lqbench.scorer.sandbox import LuaSandbox, verdict_from_outcome

PASSING = "lu = require('luaunit')\nfunction test_a() lu.assertEquals(1 + 1, 2) end\nos.exit(lu.LuaUnit.run())"
FAILING = "lu = require('luaunit')\nfunction test_a() lu.assertEquals(1 + 1, 3) end\nos.exit(lu.LuaUnit.run())"
ERRING = "lu = require('luaunit')\nfunction test_a() local t = nil; return t.x end\nos.exit(lu.LuaUnit.run())"
RUNAWAY_IN_C = "local s = string.rep('a', 40000) .. 'b' string.find(s, string.rep('a*', 40) .. 'c')"
NO_SUMMARY = (None, None, None, None, None)


# ---------------------------------------------------------------- values


def test_limits_validate_what_users_type():
    assert ScoreLimits() == ScoreLimits(timeout_s=5.0, memory_mb=256, lua="5.4")
    with pytest.raises(LqbenchError, match="unknown Lua version"):
        ScoreLimits(lua="6.0")
    with pytest.raises(LqbenchError, match="timeout"):
        ScoreLimits(timeout_s=0)
    with pytest.raises(LqbenchError, match="memory"):
        ScoreLimits(memory_mb=0)


def test_verdict_status_must_be_a_known_verdict():
    assert Verdict("pass", True, None, 1.0).to_dict() == {"status": "pass", "passed": True, "error": None, "ms": 1.0}
    with pytest.raises(ValueError):
        Verdict("crashed", False, None, 1.0)


@pytest.mark.parametrize("code,summary,status,error", [
    (0, NO_SUMMARY, "pass", None),
    (0, (3, 1, 1, b"t: e", b"t: f"), "pass", None),  # exit status decides, as in real Lua
    (2, (3, 1, 1, b"test_b: boom", b"test_a: expected"), "runtime_error", "test_b: boom"),
    (1, (3, 1, 0, None, b"test_a: expected: 2, actual: 3"), "assertion_failure", "test_a: expected: 2, actual: 3"),
    (3, (1, 0, 0, None, None), "runtime_error", "exit status 3"),
    (1, NO_SUMMARY, "runtime_error", "exit status 1"),
])
def test_exit_status_and_luaunit_summary_map_to_verdicts(code, summary, status, error):
    verdict = verdict_from_outcome("exit", code, None, summary, 1.0)
    assert (verdict.status, verdict.error, verdict.passed) == (status, error, status == "pass")


@pytest.mark.parametrize("kind,status", [
    ("error", "runtime_error"), ("syntax", "syntax_error"), ("timeout", "timeout"),
    ("memory", "memory_limit"), ("violation", "sandbox_violation"),
])
def test_other_outcomes_map_to_verdicts(kind, status):
    verdict = verdict_from_outcome(kind, None, b"why " * 300, NO_SUMMARY, 1.0)
    assert verdict.status == status and not verdict.passed
    assert verdict.error.startswith("why") and len(verdict.error) <= 500


# ---------------------------------------------------------------- in-process sandbox, every Lua


@pytest.mark.parametrize("lua", sorted(LUA_VERSIONS))
def test_every_lua_version_scores_the_basic_outcomes(lua):
    sandbox = LuaSandbox(ScoreLimits(lua=lua))
    assert sandbox.run(PASSING).status == "pass"
    assert sandbox.run(FAILING).status == "assertion_failure"
    assert sandbox.run(ERRING).status == "runtime_error"
    assert sandbox.run("x = = 1").status == "syntax_error"
    assert sandbox.run("io.open('/etc/passwd')").status == "sandbox_violation"
    assert sandbox.run("local f = load(string.dump(function() end))").status == "sandbox_violation"
    escaped = sandbox.run("assert(python == nil and rawget(_G, 'python') == nil) "
                          "assert((getfenv == nil) or getfenv(0) == _G) os.exit(0)")
    assert escaped.status == "pass", escaped.error


def test_the_program_sees_no_host_objects():
    verdict = LuaSandbox().run(
        "assert(python == nil and package.loaded.python == nil) "
        "assert(package.loaded.ffi == nil) assert(package.cpath == '') "
        "assert(debug.getinfo(1, 'f').func == nil) "
        "assert(getmetatable('').__index == string) os.exit(0)")
    assert verdict.status == "pass", verdict.error


def test_cpu_limit_stops_a_loop_even_when_pcall_swallows_it():
    verdict = LuaSandbox(ScoreLimits(timeout_s=0.3)).run("while true do pcall(function() while true do end end) end")
    assert verdict.status == "timeout"


# ---------------------------------------------------------------- the pool


@pytest.fixture(scope="module")
def pool():
    with ScorerPool(jobs=2, limits=ScoreLimits(timeout_s=1.0)) as p:
        yield p


def test_score_many_keeps_input_order(pool):
    programs = [PASSING, FAILING, ERRING, "x = = 1"] * 25
    expected = ["pass", "assertion_failure", "runtime_error", "syntax_error"] * 25
    assert [v.status for v in pool.score_many(programs)] == expected
    assert [v.status for v in pool.score_many(iter(programs[:3]))] == expected[:3]
    assert list(pool.score_many([])) == []


def test_concurrent_callers_share_the_pool(pool):
    results = {}

    def caller(i):
        program = PASSING if i % 2 else FAILING
        results[i] = [v.status for v in pool.score_many([program] * 10)] + [pool.score(program).status]

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, statuses in results.items():
        assert statuses == ["pass" if i % 2 else "assertion_failure"] * 11


def test_a_runaway_does_not_hold_up_other_programs(pool):
    slow = {}
    runner = threading.Thread(target=lambda: slow.setdefault("v", pool.score(RUNAWAY_IN_C)))
    runner.start()
    time.sleep(0.1)
    quick = [v.status for v in pool.score_many([PASSING] * 20)]
    still_running = runner.is_alive()
    runner.join()
    assert quick == ["pass"] * 20
    assert still_running  # the quick ones finished on the other worker meanwhile
    assert slow["v"].status == "timeout"


def test_programs_queued_behind_a_runaway_are_rescheduled(pool):
    # two runaways with quick programs between them: they must not run one after the other
    programs = [RUNAWAY_IN_C] + [PASSING] * 6 + [RUNAWAY_IN_C] + [PASSING] * 6
    started = time.monotonic()
    statuses = [v.status for v in pool.score_many(programs)]
    elapsed = time.monotonic() - started
    assert statuses == ["timeout"] + ["pass"] * 6 + ["timeout"] + ["pass"] * 6
    assert elapsed < 2 * (pool.limits.timeout_s + 0.5) + 0.9  # serialized runaways would take >= 3 s


def test_killed_worker_is_replaced_and_the_pool_keeps_working(pool):
    before = pool.replaced
    assert pool.score(RUNAWAY_IN_C).status == "timeout"
    assert pool.replaced == before + 1
    assert [v.status for v in pool.score_many([PASSING] * 4)] == ["pass"] * 4


def test_a_worker_lost_mid_program_gives_a_verdict_and_a_new_worker():
    with ScorerPool(jobs=1, limits=ScoreLimits(timeout_s=5.0)) as lone:
        assert lone.score(PASSING).status == "pass"
        worker_pid = lone._workers[0].proc.pid
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("v", lone.score("while true do end")))
        t.start()
        time.sleep(0.5)
        os.kill(worker_pid, 9)
        t.join()
        assert box["v"].status in {"runtime_error", "memory_limit"} and not box["v"].passed
        assert lone.score(PASSING).status == "pass"
        assert lone._workers[0].proc.pid != worker_pid


def test_abandoned_score_many_leaves_the_pool_usable(pool):
    stream = pool.score_many([PASSING] * 200)
    assert next(stream).status == "pass"
    stream.close()
    assert pool.score(FAILING).status == "assertion_failure"


def test_closed_pool_refuses_work():
    p = ScorerPool(jobs=1)
    assert p.score(PASSING).passed
    p.close()
    p.close()  # idempotent
    with pytest.raises(ScorerError):
        p.score(PASSING)


def test_one_off_score_uses_a_shared_worker():
    assert score(PASSING).status == "pass"
    assert score(FAILING, ScoreLimits(timeout_s=2.0)).status == "assertion_failure"
    assert score("os.exit(3)").error == "exit status 3"


def test_every_lua_version_runs_in_the_pool():
    for lua in ("5.1", "luajit"):
        with ScorerPool(jobs=1, limits=ScoreLimits(lua=lua, timeout_s=1.0)) as p:
            assert [v.status for v in p.score_many([PASSING, FAILING, "while true do end"])] == \
                ["pass", "assertion_failure", "timeout"]


# ---------------------------------------------------------------- reading a real run


@pytest.mark.parametrize("rc,out,err,compiles,status", [
    (0, b"..\nRan 2 tests in 0.000 seconds, 2 successes, 0 failures\nOK\n", b"", None, "pass"),
    (1, b"F\nRan 1 tests in 0.000 seconds, 0 successes, 1 failure\n", b"", None, "assertion_failure"),
    (2, b"FE\nRan 2 tests in 0.000 seconds, 0 successes, 1 failure, 1 error\n", b"", None, "runtime_error"),
    (1, b"", b"/usr/bin/lua5.4: p.lua:3: boom\nstack traceback:\n\t[C]: in ?\n", None, "runtime_error"),
    (1, b"", b"lua5.4: p.lua:1: unexpected symbol near '='\n", False, "syntax_error"),
    (1, b"", b"lua5.4: custom error object\n", True, "runtime_error"),  # __tostring: no traceback
    (1, b"", b"lua5.4: not enough memory\n", None, "memory_limit"),
    (3, b"", b"", None, "runtime_error"),
])
def test_reference_outcomes_are_read_like_ours(rc, out, err, compiles, status):
    from lqbench.scorer.reference import classify

    verdict = classify(rc, out, err, False, 1.0, "/usr/bin/lua5.4", (lambda: compiles) if compiles is not None else None)
    assert verdict.status == status
    assert classify(None, b"", b"", True, 1.0).status == "timeout"


def test_workers_get_our_malloc_tunables_and_keep_other_ones(monkeypatch):
    from lqbench.scorer.pool import _worker_environment

    ours = ["glibc.malloc.mxfast=0", f"glibc.malloc.trim_threshold={64 << 20}", f"glibc.malloc.top_pad={32 << 20}",
            "glibc.malloc.hugetlb=1", f"glibc.malloc.mmap_threshold={16 << 20}"]
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=3:glibc.malloc.mxfast=64")
    assert _worker_environment()["GLIBC_TUNABLES"].split(":") == ["glibc.malloc.tcache_count=3", *ours]
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert _worker_environment()["GLIBC_TUNABLES"].split(":") == ours
