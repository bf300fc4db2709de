"""One Lua state runs many programs (sandbox.lua, "One state, many programs"): nothing a program
does may change what the next program sees.

The probe program below condenses everything a program can observe of its world into a
fingerprint (the keys and value types of every library table, the string metatable, the
LuaUnit module, behaviour of common functions) and raises it as its error message. Run in a
brand-new state it gives the pristine fingerprint; after each polluting program, in the same
sandbox, it must give exactly that again. Each test also checks that the state really was
reused (or, where reuse would be unsafe, that it was not), so none of them passes vacuously.
"""

import pytest

from lqbench.scorer import ScoreLimits, ScorerPool
from lqbench.scorer.sandbox import LuaSandbox, REUSE_MAX_GROWTH_KB
from lqbench.tasks import load_builtin

from tests.lqbench.test_scorer_hostile import HOSTILE

LIMITS = ScoreLimits(timeout_s=0.5, memory_mb=64, fresh_state=False)  # these tests are about reuse

pytestmark = pytest.mark.usefixtures("reuse_whatever_the_cpu_time")

PROBE = r"""
local function h(s)                       -- a short checksum of a string
    local a, b = 1, 0
    for i = 1, #s do a = (a + s:byte(i)) % 65521; b = (b + a) % 65521 end
    return #s .. ':' .. (b * 65536 + a)
end
local function shape(t)                   -- sorted "key=type" of a table
    if type(t) ~= 'table' then return type(t) end
    local keys = {}
    for k, v in pairs(t) do keys[#keys + 1] = tostring(k) .. '=' .. type(v) end
    table.sort(keys)
    return table.concat(keys, ',')
end
local parts = {}
local function add(name, s) parts[#parts + 1] = name .. '=' .. h(s) end
add('G', shape(_G))
for _, name in ipairs({'string', 'table', 'math', 'os', 'io', 'coroutine', 'debug', 'package', 'utf8'}) do
    add(name, shape(_G[name]))
end
add('loaded', shape(package.loaded))
add('preload', shape(package.preload))
add('path', tostring(package.path) .. tostring(package.cpath))
local smt = getmetatable('')
add('stringmt', shape(smt) .. tostring(smt.__index == string))
add('behaviour', table.concat({
    ('abc'):upper(), ('x'):rep(3, ','), string.format('%5.1f|%d|%s', 1.25, 7, 'q'), tostring(#arg),
    tostring(collectgarbage('isrunning')), tostring(select('#', string.byte('abc', 1, -1))),
    tostring(math.pi), tostring(math.maxinteger), table.concat({table.unpack({3, 1, 2})}, ''),
    tostring(pcall(error, 'e')), tostring(os.time{year=2020, month=1, day=1, hour=0} ~= nil),
    tostring(io.write('x') == io.stdout), tostring(type(coroutine.running())),
    tostring(rawequal(_G, _ENV)), tostring(math.random(1, 1)),
}, '|'))
local lu = require('luaunit')
add('luaunit', shape(lu))
add('LuaUnit', shape(lu.LuaUnit) .. '#' .. #lu.LuaUnit.instances)
add('luaunit_settings', tostring(lu.ORDER_ACTUAL_EXPECTED) .. tostring(lu.EPS))
local ok_eq = pcall(lu.assertEquals, {1, {2}}, {1, {2}})
local ok_ne = pcall(lu.assertEquals, {1, {2}}, {1, {3}})
add('asserts', tostring(ok_eq) .. tostring(ok_ne))
function test_one() lu.assertEquals(1, 1) end
function test_two() lu.assertEquals('a', 'b') end
add('run', tostring(lu.LuaUnit.run()))
local ok, co = pcall(coroutine.wrap, function() coroutine.yield(5) end)
add('coroutine', tostring(ok and co()))
error('FP ' .. table.concat(parts, ' '), 0)
"""

# (name, program, whether the state may be kept after it)
POLLUTERS = [
    ("globals", "POLLUTED = 1; _G.also = 2; rawset(_G, 'raw', 3); test_leftover = function() error('x') end",
     True),
    ("library_tables",
     "string.upper = string.lower; string.extra = 1; table.concat = nil; table.insert = print; math.pi = 3; "
     "math.random = function() return 42 end; os.time = nil; io.write = nil; coroutine.wrap = nil; "
     "debug.traceback = nil; utf8.char = nil; package.path = 'x'; package.cpath = 'y'", True),
    ("string_metatable",
     "local mt = getmetatable(''); mt.__index = { upper = function() return 'polluted' end }; "
     "mt.__add = function() return 1 end; mt.__call = print; mt.__metatable = 'locked'", True),
    ("string_methods_through_metatable", "getmetatable('').__index.rep = nil; ('x').upper = nil", True),
    ("luaunit_module",
     "local lu = require('luaunit'); lu.assertEquals = function() end; lu.LuaUnit.run = function() return 0 end; "
     "lu.ORDER_ACTUAL_EXPECTED = false; lu.EPS = 1; lu.extra = 1; table.insert(lu.LuaUnit.instances, {}); "
     "lu.LuaUnit.instances = nil", True),
    ("package_loaded",
     "package.loaded.string = nil; package.loaded.luaunit = {}; package.preload.luaunit = function() return {} end; "
     "package.loaded.extra = true", True),
    ("luaunit_run_with_exit_in_test",
     "lu = require('luaunit')\nfunction test_x() os.exit(1) end\nfunction test_y() lu.assertEquals(1, 2) end\n"
     "os.exit(lu.LuaUnit.run())", True),
    ("suspended_coroutines",
     "co = coroutine.create(function() while true do coroutine.yield(string.upper) end end); coroutine.resume(co); "
     "w = coroutine.wrap(function() coroutine.yield() end); w()", True),
    ("early_exit", "string.upper = nil; os.exit(3)", True),
    ("error_with_tostring",
     "error(setmetatable({}, { __tostring = function() string.upper = nil; return 'obj' end }))", True),
    ("to_be_closed", "do local x <close> = setmetatable({}, { __close = function() string.upper = nil end }) end",
     True),
    ("syntax_error", "string.upper = nil\nlocal = 1", True),
    ("environment_swap", "local _ENV = { string = string }; string.upper = nil", True),
    ("random_seed", "math.randomseed(42); math.random()", True),
    # unsafe to keep: the state is closed and the probe runs in a new one
    ("finalizer", "setmetatable({}, { __gc = function() POLLUTED = 1; string.upper = nil end })", False),
    ("finalizer_resurrecting",
     "local mt = {}; mt.__gc = function(o) KEEP = o; setmetatable({}, mt) end; setmetatable({}, mt)", False),
    ("gc_stopped", "collectgarbage('stop')", False),
    ("gc_generational", "collectgarbage('generational')", False),
    ("gc_tuned", "collectgarbage('incremental', 1000, 10)", False),
    ("timeout_swallowed", "while true do pcall(function() while true do end end) end", False),
    ("memory_cap", "local t = {} for i = 1, 1e9 do t[i] = {i} end", False),
    ("violation", "debug.sethook()", False),
    # The big string is garbage once the program's world is gone; whether the full collection before the
    # reuse decision has freed it yet decides between reuse and a new state. Either is safe: None = either.
    ("memory_left_in_use", f"KEEP = string.rep('x', {(REUSE_MAX_GROWTH_KB + 1024) * 1024})", None),
    ("deep_recursion", "local function f() return 1 + f() end f()", False),
]


@pytest.fixture(scope="module")
def pristine():
    verdict = LuaSandbox(LIMITS).run(PROBE)
    assert verdict.status == "runtime_error" and verdict.error.startswith("FP "), verdict
    return verdict.error


def test_the_probe_fingerprint_is_stable_in_one_state(pristine):
    sandbox = LuaSandbox(LIMITS)
    assert [sandbox.run(PROBE).error for _ in range(5)] == [pristine] * 5
    assert sandbox.states_made == 1


def test_the_probe_sees_pollution_within_one_program(pristine):
    # the fingerprint does notice these changes when they happen inside the probe's own world
    for name, program, _ in POLLUTERS[:6]:
        polluted = LuaSandbox(LIMITS).run(program + "\n" + PROBE)
        assert polluted.error != pristine, name


@pytest.mark.parametrize("name,program,keeps_state", POLLUTERS, ids=[p[0] for p in POLLUTERS])
def test_nothing_a_program_does_reaches_the_next(pristine, name, program, keeps_state):
    sandbox = LuaSandbox(LIMITS)
    sandbox.run(PROBE)  # the state exists before the polluter runs
    sandbox.run(program)
    after = sandbox.run(PROBE)
    assert after.error == pristine
    assert sandbox.states_made in ((1, 2) if keeps_state is None else (1 if keeps_state else 2,))


def test_every_suite_and_hostile_program_leaves_the_next_one_a_pristine_world(pristine):
    problems = load_builtin().problems
    programs = [p.task.program(p.reference) for p in problems]
    programs += [p.task.program(wrong) for p in problems for wrong in p.wrong]
    # the hostile programs that end within a hook's reach (the rest need the pool's kill)
    programs += [program for name, expected, program in HOSTILE
                 if "finalizer_loop" not in name and "in_c" not in name]
    sandbox = LuaSandbox(ScoreLimits(timeout_s=0.2, memory_mb=64, fresh_state=False))
    reused = 0
    for program in programs:
        before = sandbox.states_made
        sandbox.run(program)
        after = sandbox.run(PROBE)
        assert after.error == pristine, program
        reused += sandbox.states_made == before
    assert reused > len(programs) // 2  # most programs really did share their state


def test_fresh_state_option_gives_every_program_its_own_state(pristine):
    sandbox = LuaSandbox(ScoreLimits(timeout_s=0.5, memory_mb=64, fresh_state=True))
    for name, program, _ in POLLUTERS[:4]:
        sandbox.run(program)
        assert sandbox.run(PROBE).error == pristine, name
    assert sandbox.states_made == 8


def test_luajit_compiler_switch_ends_the_state():
    sandbox = LuaSandbox(ScoreLimits(timeout_s=0.5, memory_mb=64, lua="luajit", fresh_state=False))
    sandbox.run("x = 1")
    sandbox.run("x = 2")
    assert sandbox.states_made == 1
    sandbox.run("jit.off()")
    assert sandbox.run("assert(jit.status())").status == "pass"  # a new state: compiler on again
    assert sandbox.states_made == 2


def test_a_polluter_and_the_probe_in_one_pool_worker(pristine):
    programs = [program for _, program, _ in POLLUTERS[:14]]
    interleaved = [p for program in programs for p in (program, PROBE)]
    with ScorerPool(jobs=1, limits=LIMITS) as pool:
        verdicts = list(pool.score_many(interleaved))
    assert [v.error for v in verdicts[1::2]] == [pristine] * len(programs)


@pytest.mark.parametrize("lua", ["5.1", "5.2", "5.3", "5.4", "5.5", "luajit"])
def test_every_lua_version_keeps_programs_apart(lua):
    sandbox = LuaSandbox(ScoreLimits(timeout_s=0.5, memory_mb=64, lua=lua, fresh_state=False))
    polluter = ("lu = require('luaunit'); lu.assertEquals = function() end; string.upper = nil; "
                "getmetatable('').__index = {}; POLLUTED = true; table.insert = nil")
    probe = ("lu = require('luaunit')\n"
             "function test_world() lu.assertEquals(POLLUTED, nil) lu.assertEquals(('a'):upper(), 'A') "
             "lu.assertEquals(type(table.insert), 'function') lu.assertEquals(getmetatable('').__index, string) end\n"
             "function test_luaunit() lu.assertEquals({1}, {2}) end\n"
             "os.exit(lu.LuaUnit.run())")
    first = sandbox.run(probe)
    sandbox.run(polluter)
    second = sandbox.run(probe)
    assert sandbox.states_made == 1  # the probe really ran in the polluted program's state
    # only test_luaunit fails (its assertEquals is the real one): the same verdict both times
    assert first.status == second.status == "assertion_failure"
    assert first.error == second.error and "test_luaunit" in second.error
