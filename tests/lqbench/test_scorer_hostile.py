"""Hostile programs: every one is contained, gets the right verdict within its limit + 1 s, and
leaves the pool healthy (killed workers replaced, the next program scored normally)."""

import pytest

from lqbench.scorer import ScoreLimits, ScorerPool

LIMITS = ScoreLimits(timeout_s=1.0, memory_mb=128)
# Memory bombs get time to reach the cap even on a loaded machine, and a smaller cap.
MEMORY_LIMITS = ScoreLimits(timeout_s=10.0, memory_mb=64)
LUAUNIT = "lu = require('luaunit')\n"

HOSTILE = [
    # endless loops, including ones that try to swallow the stop
    ("busy_loop", "timeout", "while true do end"),
    ("loop_in_pcall_loop", "timeout", "while true do pcall(function() while true do end end) end"),
    ("loop_in_xpcall_swallowing_handler", "timeout",
     "while true do xpcall(function() while true do end end, function(e) return 'ignored' end) end"),
    ("looping_error_handler", "timeout",
     "xpcall(function() error('x') end, function() while true do end end)"),
    ("pcall_error_object_retry", "timeout",
     "local n = 0 while true do local ok, e = pcall(function() for i = 1, 1e12 do n = n + 1 end end) end"),
    ("coroutine_wrap_loop", "timeout", "coroutine.wrap(function() while true do end end)()"),
    ("coroutine_resume_loop", "timeout",
     "local co = coroutine.create(function() while true do pcall(error, 'x') end end) "
     "while true do coroutine.resume(co) end"),
    ("coroutine_yield_ping_pong", "timeout",
     "local co = coroutine.wrap(function() while true do coroutine.yield() end end) while true do co() end"),
    ("loaded_chunk_loop", "timeout", "load('while true do end')()"),
    ("global_index_loop", "timeout",
     "setmetatable(_G, {__index = function() while true do end end}) local x = undefined_name"),
    ("tostring_loop_in_error", "timeout",
     "error(setmetatable({}, {__tostring = function() while true do end end}))"),
    ("print_flood", "timeout", "while true do print(string.rep('x', 1000)) io.write('y') end"),
    ("pattern_backtracking_in_c", "timeout",
     "local s = string.rep('a', 40000) .. 'b' string.find(s, string.rep('a*', 40) .. 'c')"),
    ("collectgarbage_loop", "timeout", "while true do collectgarbage() end"),
    ("recursion_caught_forever", "timeout",
     "while true do pcall(function() local function f() return 1 + f() end f() end) end"),
    # a loop in a test, under LuaUnit's own xpcall
    ("loop_inside_luaunit_test", "timeout",
     LUAUNIT + "function test_a() while true do end end\nos.exit(lu.LuaUnit.run())"),
    # finalizers (no hook runs in them: the pool's kill ends them)
    ("gc_finalizer_loop_on_collect", "timeout",
     "setmetatable({}, {__gc = function() while true do end end}) collectgarbage()"),
    ("gc_finalizer_loop_at_close", "timeout", "setmetatable({}, {__gc = function() while true do end end})"),
    ("gc_finalizer_loop_then_exit", "pass", "setmetatable({}, {__gc = function() while true do end end}) os.exit(0)"),
    # memory
    ("string_rep_bomb", "memory_limit", "local s = string.rep('x', 2^30)"),
    ("string_doubling", "memory_limit", "local s = 'x' while true do s = s .. s end"),
    ("table_bomb", "memory_limit", "local t = {} for i = 1, 1e9 do t[i] = {i} end"),
    ("memory_bomb_in_pcall_loop", "memory_limit",
     "while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = {} end end) end"),
    ("gc_stopped_growth", "memory_limit",
     "collectgarbage('stop') local t = {} for i = 1, 1e9 do t[#t + 1] = string.rep('z', 1000) .. i end"),
    ("table_concat_bomb", "memory_limit",
     "local t = {} for i = 1, 64 do t[i] = string.rep('y', 2^20) end local s = '' for i = 1, 100 do s = s .. table.concat(t) end"),
    # deep recursion is an ordinary error
    ("deep_recursion", "runtime_error", "local function f() return 1 + f() end f()"),
    # processes, files, host modules
    ("os_execute", "sandbox_violation", "os.execute('touch /tmp/lqbench_hostile_pwned')"),
    ("os_execute_in_pcall", "sandbox_violation", "pcall(os.execute, 'touch /tmp/lqbench_hostile_pwned') os.exit(0)"),
    ("io_popen", "sandbox_violation", "io.popen('id'):read('a')"),
    ("io_open_host_file", "sandbox_violation", "local f = io.open('/etc/passwd') print(f:read('a'))"),
    ("io_open_in_pcall", "sandbox_violation", "local ok, f = pcall(io.open, '/etc/passwd', 'r') os.exit(0)"),
    ("io_lines_file", "sandbox_violation", "for l in io.lines('/etc/passwd') do end"),
    ("io_output_file", "sandbox_violation", "io.output('/tmp/lqbench_hostile_pwned') io.write('x')"),
    ("os_remove", "sandbox_violation", "os.remove('/tmp/lqbench_hostile_pwned')"),
    ("dofile", "sandbox_violation", "dofile('/etc/passwd')"),
    ("loadfile", "sandbox_violation", "loadfile('/etc/passwd')"),
    ("package_loadlib", "sandbox_violation",
     "local f = package.loadlib('/lib/x86_64-linux-gnu/libc.so.6', 'system')"),
    ("require_c_module", "runtime_error", "local socket = require('socket.core')"),
    ("require_ffi", "sandbox_violation", "local ffi = require('ffi') ffi.cdef('int system(const char*);')"),
    ("python_bridge", "runtime_error", "python.eval('__import__(\"os\").system(\"id\")')"),
    # bytecode
    ("load_dumped_bytecode", "sandbox_violation", "local f = load(string.dump(function() return 1 end)) f()"),
    ("load_handmade_bytecode", "sandbox_violation", "load('\\27Lua\\84\\0garbage')"),
    ("load_bytecode_via_reader", "sandbox_violation",
     "local parts = {string.dump(function() end)} local i = 0 "
     "load(function() i = i + 1 return parts[i] end)"),
    ("load_bytecode_in_pcall", "sandbox_violation",
     "pcall(load, string.dump(function() end), 'x', 'b') os.exit(0)"),
    # hooks and debug tricks
    ("debug_sethook_removal", "sandbox_violation", "debug.sethook() while true do end"),
    ("debug_sethook_in_pcall", "sandbox_violation", "pcall(debug.sethook) while true do end"),
    ("debug_getregistry", "sandbox_violation", "local r = debug.getregistry()"),
    ("debug_upvalue", "sandbox_violation", "local n, v = debug.getupvalue(print, 1)"),
    ("getinfo_no_functions", "pass",
     "local i = debug.getinfo(1) assert(i.func == nil) local j = debug.getinfo(1, 'f') assert(j.func == nil) os.exit(0)"),
    # exiting
    ("os_exit_zero_in_pcall", "pass", "pcall(os.exit, 0) error('still running')"),
    ("os_exit_in_coroutine_in_pcall", "runtime_error",
     "pcall(coroutine.wrap(function() os.exit(7) end)) os.exit(0)"),
    ("os_exit_replaced", "pass", "os.exit = nil"),
]

IDS = [name for name, _, _ in HOSTILE]


def limits_for(expected):
    return MEMORY_LIMITS if expected == "memory_limit" else LIMITS


@pytest.fixture(scope="module")
def hostile_run():
    verdicts = {}
    with ScorerPool(jobs=2, limits=LIMITS) as pool, ScorerPool(jobs=1, limits=MEMORY_LIMITS) as memory_pool:
        for limits, this_pool in ((LIMITS, pool), (MEMORY_LIMITS, memory_pool)):
            cases = [(name, program) for name, expected, program in HOSTILE if limits_for(expected) is limits]
            verdicts.update(zip([n for n, _ in cases], this_pool.score_many(p for _, p in cases)))
        after = pool.score(LUAUNIT + "function test_a() lu.assertEquals(1 + 1, 2) end\nos.exit(lu.LuaUnit.run())")
        yield verdicts, after, pool.replaced


def test_the_corpus_is_large_and_varied():
    assert len(HOSTILE) >= 30 and len(set(IDS)) == len(IDS)
    assert {expected for _, expected, _ in HOSTILE} >= {"timeout", "memory_limit", "sandbox_violation"}


@pytest.mark.parametrize("name,expected,program", HOSTILE, ids=IDS)
def test_hostile_program_is_contained(hostile_run, name, expected, program):
    verdicts, _, _ = hostile_run
    verdict = verdicts[name]
    assert verdict.status == expected, verdict.error
    assert verdict.ms <= (limits_for(expected).timeout_s + 1.0) * 1000.0


def test_pool_is_healthy_after_the_hostile_corpus(hostile_run, tmp_path):
    _, after, replaced = hostile_run
    assert after.status == "pass"
    assert replaced >= 1  # the C-level loops and the finalizers were killed, their workers replaced


def test_nothing_escaped_to_the_host():
    import os

    assert not os.path.exists("/tmp/lqbench_hostile_pwned")
