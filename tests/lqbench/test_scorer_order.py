"""Order independence (issue 17): a program's verdict is the one it gets alone in a brand-new Lua
state, whatever ran before it in the same worker.

A set of adversaries (programs that try to outlive their run or to change what later
programs see: values with metatables in LuaUnit's summary, finalizers that re-arm, library and
metatable replacements, left-over coroutines, garbage, collector tuning, a timeout, a memory
bomb, programs that look at the heap) and ordinary programs (correct ones that must pass,
wrong ones that must fail, each kind of verdict) is scored alone in a fresh state, twice, to
get each program's own verdict; then in many orders: each adversary first, each adversary
between every two ordinary programs, all adversaries first and all last, shuffled sequences
with many repetitions; in one Lua state in this process, through the real pool with one
worker and with two, and through `lqbench score --jobs 1` as a user runs it. Every verdict
(status, and message with addresses masked) must equal the program's own.

Both modes are covered: the default (a new state per program) with every program, and
`fresh_state=False` / `--reuse-state` with every program but the two whose verdict depends on
the collector's timing (GC_TIMING: they keep 6.7 and 20.5 MB alive under a 20 MB cap, with as
much garbage again): a reused state is not bit for bit a new one, and near the cap that decides
the verdict (see LuaSandbox).
"""

import faulthandler
import json
import random
import re
import subprocess
import sys

import pytest

from lqbench.scorer import ScoreLimits, ScorerPool
from lqbench.scorer.sandbox import BOOTSTRAP_HEADROOM_BYTES, LuaSandbox
from lqbench.tasks import load_builtin

from tests.lqbench.test_scorer_boundary import COUNT_TABLE, REARM, SUMMARY_INDEX_LOOP, SUMMARY_SLICE

TIMEOUT_S = 1.0
MEMORY_MB = 16
LUAUNIT = "lu = require('luaunit')\n"
RUN = "\nos.exit(lu.LuaUnit.run())"

# What every poisoner does to whatever program is running when it runs: make string.find
# (which LuaUnit uses to tell failures from successes) always match, and tostring lie.
POISON = r"""
local gm, rg, rs, ty = getmetatable, rawget, rawset, type
local function poison()
  local mt = gm('')
  local index = mt and rg(mt, '__index')
  if ty(index) == 'table' then
    rs(index, 'find', function() return 1 end)
    rs(index, 'format', function() return 'poisoned' end)
  end
end
"""

# Programs whose text depends on the Lua state's own numbers are made by functions of them.
HEAP_SNIFFER = """local c = collectgarbage('count')
local limit = {limit}
if limit < 0 then error(string.format('%.3f', c), 0) end
if c > limit then error(string.format('the heap holds %.0f KB more than a new state', c - limit + 32), 0) end
"""


def memory_hog(mb: float) -> str:
    """Keeps `mb` MB alive in distinct 64 KiB strings (Lua 5.1 interns every string, so equal
    ones would be one); the cap is MEMORY_MB plus the bootstrap headroom."""
    return (f"local piece = string.rep('ab', 32) local t = {{}} "
            f"for i = 1, {int(mb * 16)} do t[i] = string.rep(piece, 1020) .. i end t = nil")


CAP_MB = MEMORY_MB + BOOTSTRAP_HEADROOM_BYTES / (1 << 20)

ADVERSARIES = [
    ("summary_rearm", REARM),
    ("summary_slice", SUMMARY_SLICE),
    ("summary_index_loop", SUMMARY_INDEX_LOOP),
    ("summary_count_table", COUNT_TABLE % "errorCount"),
    ("summary_tests_table", COUNT_TABLE % "runCount"),
    ("finalizer_rearming_poison", POISON + """
local sm = setmetatable
local mt = {}
mt.__gc = function() poison(); sm({}, mt) end
sm({}, mt)
collectgarbage(); collectgarbage()
""" + LUAUNIT + "function test_x() lu.assertEquals(1, 2) end" + RUN),
    ("finalizer_added_after_setmetatable", POISON + """
local mt = {}
KEEP = setmetatable({}, mt)
mt.__gc = function() poison() end
os.exit(1)"""),
    ("library_replacements", LUAUNIT + POISON + """
poison()
string.find = function() return 1 end
getmetatable('').__index = setmetatable({}, { __index = function() return function() return 1 end end })
tostring = function() return 'x' end
type = function() return 'table' end
pairs = function() return next, {} end
table.sort = function() end
lu.LuaUnit.run = function() return 0 end
lu.assertEquals = function() end
package.loaded.luaunit = lu
function test_x() lu.assertEquals(1, 2) end
os.exit(1)"""),
    ("string_metatable_with_metatable", """
local mt = getmetatable('')
mt.__metatable = 'locked'
setmetatable(mt, { __eq = function() return true end, __index = function() while true do end end,
                   __len = function() while true do end end })
mt.__index = {}
error('done', 0)"""),
    ("metatable_on_numbers", "debug.setmetatable(0, { __index = function() return 1 end })"),
    ("garbage_left_behind", "local t = {} for i = 1, 25000 do t[i] = { i } end"),
    ("gc_generational", "collectgarbage('generational') local t = {} for i = 1, 1000 do t[i] = {} end"),
    ("gc_tuned_then_exit", "collectgarbage('incremental', 1, 1000) os.exit(0)"),
    ("timeout_after_poisoning", POISON + "poison() while true do end"),
    ("memory_bomb_after_poisoning", POISON + "poison() " + memory_hog(4 * CAP_MB)),
    ("error_object_arming_finalizer", POISON + """
error(setmetatable({}, { __tostring = function()
  setmetatable({}, { __gc = function() poison() end })
  poison()
  return 'boom'
end }))"""),
    ("to_be_closed_poison", POISON + "do local x <close> = setmetatable({}, { __close = function() poison() end }) end os.exit(0)"),
    ("coroutine_left_suspended", POISON + """
co = coroutine.create(function() while true do poison(); coroutine.yield() end end)
coroutine.resume(co)
os.exit(2)"""),
    ("global_table_metatable", """
setmetatable(_G, { __index = function() return function() return 1 end end, __newindex = function() end })
lu = require('luaunit')
function test_x() lu.assertEquals(1, 2) end
os.exit(lu.LuaUnit.run())"""),
    ("load_into_the_string_table", "load('find = function() return 1 end', 'x', 't', getmetatable('').__index)() error('x', 0)"),
    ("random_reseeded", "math.randomseed(42) for i = 1, 10 do math.random() end"),
    ("exit_with_a_table", "os.exit(setmetatable({}, { __index = function() while true do end end }))"),
]

ORDINARY_EXTRA = [
    ("control_assertion_failure", LUAUNIT + "function test_x() lu.assertEquals(1, 2) end" + RUN),
    ("control_pass_using_strings", LUAUNIT + """
function test_strings()
  lu.assertEquals(('abc'):find('b'), 2)
  lu.assertEquals(string.format('%d-%s', 3, 'x'), '3-x')
  lu.assertEquals(tostring(12), '12')
  lu.assertEquals(type(print), 'function')
  lu.assertEquals(getmetatable('').__index, string)
  lu.assertEquals(getmetatable(0), nil)
  lu.assertNil(POLLUTED)
end""" + RUN),
    ("control_runtime_error", "local x = nil\nreturn x.y"),
    ("control_luaunit_error", LUAUNIT + "function test_e() error('inside') end" + RUN),
    ("control_syntax_error", "local = 1"),
    ("control_exit_3", "os.exit(3)"),
    ("control_pass_exit", "os.exit(0)"),
    ("control_big_message", LUAUNIT + "function test_x() lu.assertEquals(string.rep('a', 100000), 'b') end" + RUN),
    ("memory_under_the_cap", memory_hog(CAP_MB / 3)),
    ("memory_just_over_the_cap", memory_hog(CAP_MB + 0.5)),
]


# Verdicts that depend on the collector's timing, exact only with a new state per program.
GC_TIMING = {"memory_under_the_cap", "memory_just_over_the_cap"}


def timing_free(named: list) -> list:
    return [item for item in named if item[0] not in GC_TIMING]


def outcome(verdict):
    return plain(verdict.status, verdict.error)


def plain(status: str, error: str | None) -> tuple:
    """What must not depend on order: the status and the message, with addresses masked; a
    timeout's message says which clock ran out (CPU in the hook, wall in the pool's kill), which
    depends on the machine's load."""
    return status, "" if status == "timeout" else re.sub(r"0x[0-9a-f]+", "0x?", error or "")


def limits(lua: str = "5.4", fresh_state: bool = False) -> ScoreLimits:
    """The test's limits; states reused unless `fresh_state` (the scorer's default is fresh)."""
    return ScoreLimits(timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB, lua=lua, fresh_state=fresh_state)


def programs_for(lua: str):
    """(adversaries, ordinary programs) as (name, source) lists, for one Lua version."""
    problems = load_builtin().problems
    ordinary = list(ORDINARY_EXTRA)
    ordinary += [(f"reference_{p.task.task_id}", p.task.program(p.reference)) for p in problems[:6]]
    ordinary += [(f"wrong_{p.task.task_id}_{i}", p.task.program(w)) for p in problems[:8] for i, w in enumerate(p.wrong)][:12]
    if lua not in ("5.4", "5.5"):  # math.random restarts per program only where it is not seeded at random
        ordinary.insert(0, ("random_reader", "error(tostring(math.random(1, 1000000)), 0)"))
    if lua == "luajit":  # no memory cap under LuaJIT (lupa cannot set one): the hogs would only be slow
        ordinary = [(n, p) for n, p in ordinary if not n.startswith("memory_")]
    adversaries = [(n, p) for n, p in ADVERSARIES if not (lua == "luajit" and n.startswith("memory_"))]
    probe = LuaSandbox(limits(lua, fresh_state=True)).run(HEAP_SNIFFER.format(limit=-1))
    heap = float(probe.error)  # what a program sees in a new state
    adversaries.append(("heap_sniffer", HEAP_SNIFFER.format(limit=f"{heap + 32:.3f}")))
    return adversaries, ordinary


def alone(lua: str, named: list) -> dict:
    """Each program's own verdict: alone in a new state, twice, and both times the same."""
    own = {}
    for name, program in named:
        first, second = (outcome(LuaSandbox(limits(lua, fresh_state=True)).run(program)) for _ in range(2))
        assert first == second, f"{name} is not deterministic on its own: {first} vs {second}"
        own[name] = first
    return own


def orders(adversaries: list, ordinary: list, seed: int, shuffles: int):
    """Named sequences of (name, program)."""
    rng = random.Random(seed)
    victims_between = ordinary[:4]
    result = []
    for adversary in adversaries:
        result.append((f"{adversary[0]} first", [adversary] + ordinary))
        between = [adversary]
        for victim in victims_between:
            between += [victim, adversary]
        result.append((f"{adversary[0]} between", between))
    result.append(("all adversaries first", adversaries + ordinary))
    result.append(("all adversaries last", ordinary + adversaries))
    everything = adversaries + ordinary
    for i in range(shuffles):
        sequence = everything * 3
        rng.shuffle(sequence)
        result.append((f"shuffled #{i} (each program 3 times)", sequence))
    return result


def check(sequence_name: str, sequence: list, verdicts: list, own: dict) -> None:
    assert len(verdicts) == len(sequence)
    wrong = [(i, name, outcome(v), own[name]) for i, ((name, _), v) in enumerate(zip(sequence, verdicts))
             if outcome(v) != own[name]]
    assert not wrong, f"{sequence_name}: {wrong[:5]}"


@pytest.fixture(scope="module")
def world_54():
    adversaries, ordinary = programs_for("5.4")
    own = alone("5.4", adversaries + ordinary)
    return adversaries, ordinary, own


def test_the_adversaries_do_what_they_are_meant_to_on_their_own(world_54):
    adversaries, ordinary, own = world_54
    assert own["summary_rearm"][0] == own["summary_slice"][0] == own["summary_index_loop"][0] == "sandbox_violation"
    assert own["summary_count_table"][0] == own["summary_tests_table"][0] == "sandbox_violation"
    assert own["timeout_after_poisoning"][0] == "timeout"
    assert own["memory_bomb_after_poisoning"][0] == own["memory_just_over_the_cap"][0] == "memory_limit"
    assert own["memory_under_the_cap"][0] == "pass"
    assert own["heap_sniffer"][0] == "pass"
    assert own["control_assertion_failure"][0] == "assertion_failure"
    assert own["control_pass_using_strings"][0] == "pass"
    assert own["metatable_on_numbers"][0] == "sandbox_violation"
    assert {own[n][0] for n, _ in ordinary if n.startswith("reference_")} == {"pass"}
    assert "pass" not in {own[n][0] for n, _ in ordinary if n.startswith("wrong_")}


def test_verdicts_do_not_depend_on_order_in_one_lua_state(world_54, reuse_whatever_the_cpu_time):
    adversaries, ordinary, own = world_54
    # A regression here could loop in C with no hook (this process has no wall-clock kill):
    # rather than hang the test run, end it with a traceback.
    faulthandler.dump_traceback_later(300, exit=True)
    try:
        reused = total = 0
        for name, sequence in orders(timing_free(adversaries), timing_free(ordinary), seed=17, shuffles=2):
            sandbox = LuaSandbox(limits())
            verdicts = [sandbox.run(program) for _, program in sequence]
            check(name, sequence, verdicts, own)
            reused += len(sequence) - sandbox.states_made
            total += len(sequence)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert reused > total // 2  # the states really were shared: the property is not vacuous


def test_verdicts_do_not_depend_on_order_in_the_pool(world_54):
    adversaries, ordinary, own = world_54
    reused = orders(timing_free(adversaries), timing_free(ordinary), seed=18, shuffles=2)
    with ScorerPool(jobs=1, limits=limits()) as pool:
        for name, sequence in reused:
            if name.endswith(" first") or name.startswith("shuffled"):
                check(f"--jobs 1 --reuse-state, {name}", sequence, list(pool.score_many(p for _, p in sequence)), own)
    fresh = orders(adversaries, ordinary, seed=18, shuffles=2)
    with ScorerPool(jobs=1, limits=limits(fresh_state=True)) as pool:
        for name, sequence in fresh:
            if name.endswith(" first") or name.startswith("shuffled"):
                check(f"--jobs 1, {name}", sequence, list(pool.score_many(p for _, p in sequence)), own)
    for fresh_state in (True, False):
        sequences = fresh if fresh_state else reused
        with ScorerPool(jobs=2, limits=limits(fresh_state=fresh_state)) as pool:
            for name, sequence in sequences[-2:]:
                check(f"--jobs 2 fresh_state={fresh_state}, {name}", sequence,
                      list(pool.score_many(p for _, p in sequence)), own)


@pytest.mark.parametrize("mode", ["default", "--reuse-state"])
def test_verdicts_do_not_depend_on_order_through_lqbench_score(world_54, tmp_path, mode):
    adversaries, ordinary, own = world_54
    if mode == "--reuse-state":
        adversaries, ordinary = timing_free(adversaries), timing_free(ordinary)
    # one directory, scored in file-name order by one worker: each adversary, then all ordinary programs
    sequence = [item for adversary in adversaries for item in [adversary] + ordinary]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = {}
    for i, (name, program) in enumerate(sequence):
        path = corpus / f"{i:05d}.lua"
        path.write_text(program)
        names[path.name] = name
    out = tmp_path / "verdicts.jsonl"
    done = subprocess.run([sys.executable, "-m", "lqbench.cli", "score", str(corpus), "--out", str(out),
                           "--jobs", "1", "--timeout", str(TIMEOUT_S), "--memory-mb", str(MEMORY_MB), "-q"]
                          + ([mode] if mode != "default" else []),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(sequence)
    wrong = [(r["path"], names[r["path"].split("/")[-1]]) for r in records
             if plain(r["status"], r["error"]) != own[names[r["path"].split("/")[-1]]]]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("lua", ["5.1", "5.2", "5.3", "5.5", "luajit"])
def test_verdicts_do_not_depend_on_order_in_every_lua_version(lua):
    # states reused, through the pool: under LuaJIT compiled loops never reach the count hook,
    # only the kill ends them
    adversaries, ordinary = (timing_free(named) for named in programs_for(lua))
    ordinary = ordinary[:14]
    own = alone(lua, [item for item in adversaries + ordinary if not (lua == "luajit" and item[0] == "timeout_after_poisoning")])
    if lua == "luajit":
        own["timeout_after_poisoning"] = ("timeout", "")
    with ScorerPool(jobs=1, limits=limits(lua)) as pool:
        for name, sequence in orders(adversaries, ordinary, seed=19, shuffles=1):
            if name.endswith(" first") or name.startswith("shuffled"):
                check(f"Lua {lua}, {name}", sequence, list(pool.score_many(p for _, p in sequence)), own)
