--[[ lqbench sandbox bootstrap: prepares a Lua state once, then runs programs in it one at
a time, each in a world of its own, and says how each ended.

Loaded once per Lua state as
    run, kb_in_use = bootstrap(luaunit_chunk, luaunit_extras_chunk)
and then called once per program as
    kind, code, message, tests, failures, errors, first_error, first_failure, reusable,
        kb_in_use = run(program, cpu_seconds, hook_every, may_reuse)
where `kind` is one of
    "exit"      the program ended with exit status `code` (falling off the end is 0)
    "error"     an error escaped the main chunk (lua.c would print it and exit 1)
    "syntax"    the program does not compile
    "timeout"   the CPU-time budget ran out (instruction-count hook)
    "memory"    an allocation failed under the runtime's memory cap
    "violation" the program reached for something the sandbox does not provide
the next five values are LuaUnit's summary of its last run (nil when it never ran), and
`reusable` says whether the state may run another program (see below; never when
`may_reuse` is false); `kb_in_use` is collectgarbage('count') after the bootstrap's full
collection, and after the run's (0 when the state is not reusable).

How the sandbox holds:
  * the program sees only `env`, a new global table with the safe standard functions;
    io/os/debug/package are small stand-ins (no files, processes, host modules, hooks);
    the real global table is emptied once everything needed is captured in locals;
  * os.exit, the timeout and violations raise STOP.  pcall/xpcall/coroutine.resume/
    coroutine.close/load are wrapped so that, once stopped, they re-raise STOP instead
    of returning, and a count hook (installed in every coroutine too) re-raises it within
    `hook_every` instructions, so no Lua code can swallow the stop;
  * text chunks only: bytecode given to load/loadstring is a violation (string.dump works,
    its output just cannot be loaded);
  * the host process adds a memory cap (max_memory) and a wall-clock kill.

One state, many programs.  Everything a program can reach is made for it alone: its global
table, its own copies of the library tables (string, table, math, coroutine, utf8, ...), the
stand-ins, its own string metatable (`getmetatable('')` is the one string metatable of the
state, so each run installs a new one whose __index is that run's string table), and its own
LuaUnit instance (the precompiled LuaUnit chunk is loaded once and re-run per program with
its _ENV rebound to the program's globals).  What stays shared is immutable from inside:
the C functions, the chunk prototypes, and this bootstrap's locals (no debug.getupvalue or
setupvalue reaches them).  The program's garbage is left to the incremental collector.

A run reports `reusable = false`, and the host then closes the state (running any
finalizers as lua.c's exit would) and makes a new one for the next program, when the
program could have left something behind that outlives it: it set a __gc metamethod or made
a proxy (a finalizer would run during a later program), changed the collector's mode or
parameters, switched LuaJIT's compiler on or off, or was stopped by the timeout, the memory
cap or a sandbox violation.  The host adds its own conditions (a long run, a run count), see
sandbox.py.

What crosses back to the host is plain data only (the trust boundary):
  * every value `run` returns is a string, a number, a boolean or nil, made so here by
    bootstrap code that reads the program's values raw (rawget, the `type` captured above)
    and never calls a metamethod, so no program code runs in it; it runs while the
    instruction hook still enforces the program's CPU deadline (the memory cap holds
    throughout).  LuaUnit's summary is built with the program's globals (a replaced
    `tostring` or a __concat can put a table where a message belongs): anything in it that
    is not a number where a count belongs or a string where a message belongs makes the
    run a sandbox violation.  The host then never operates on a Lua object of the program
    (a Python-side `str()`, `len()` or slice of one would call its metamethods with no hook,
    after the reuse decision, and hand Python objects to program code).
  * reuse is decided last: after the outcome is plain, with the hook removed, the state is
    checked -- no hook left, the host's global table still empty, no metatable on any value
    type the whole state shares (nil, booleans, numbers, functions, threads), the string
    metatable the one this run installed -- then the pristine string metatable is put back,
    and a full collection leaves only the bootstrap's own data alive (a reusable run has no
    finalizer, so the collection runs no program code).  The memory in use afterwards,
    which the host compares with the fresh state's, tells whether anything of the program is
    still reachable.  Every program thus starts from the same heap and collector state,
    whether its state is new or reused: its memory cap, `collectgarbage('count')` and
    collection timing do not depend on what ran before it.
]]

local luaunit_code, luaunit_extras_code = ...

local G = _G
local type, select, tostring, tonumber, error = type, select, tostring, tonumber, error
local rawget, rawset, next, pairs, ipairs = rawget, rawset, next, pairs, ipairs
local setmetatable, getmetatable = setmetatable, getmetatable
local pcall, xpcall, load = pcall, xpcall, load
local collectgarbage, newproxy, has_warn = collectgarbage, rawget(G, 'newproxy'), rawget(G, 'warn') ~= nil
local loadstring, setfenv, getfenv = rawget(G, 'loadstring'), rawget(G, 'setfenv'), rawget(G, 'getfenv')
local string, table, math, coroutine = string, table, math, coroutine
local utf8, bit32, bit = rawget(G, 'utf8'), rawget(G, 'bit32'), rawget(G, 'bit')
local real_os, real_debug, real_package = os, debug, package
local clock, sethook, getinfo = real_os.clock, real_debug.sethook, real_debug.getinfo
local set_any_metatable, upvaluejoin = real_debug.setmetatable, real_debug.upvaluejoin
local get_any_metatable, gethook, rawequal = real_debug.getmetatable, real_debug.gethook, rawequal
local format, byte, sub, find, gsub = string.format, string.byte, string.sub, string.find, string.gsub
local randomseed = math.randomseed
-- The string metatable as the string library made it: in 5.4 it also holds __add, __sub, ...
-- (string arithmetic such as "10" + 1 goes through them), so each program gets a copy of all
-- of it, not just an __index.
local STRING_METATABLE = {}
for k, v in next, getmetatable('') do STRING_METATABLE[k] = v end
local co_create, co_resume, co_wrap, co_close = coroutine.create, coroutine.resume, coroutine.wrap, coroutine.close
local jit = rawget(G, 'jit')
local VERSION = _VERSION
local PLAIN_51 = VERSION == 'Lua 5.1' and not jit
-- math.random starts every program where it starts in `lua program.lua`, never where the
-- previous program left it: 5.4/5.5 seed it randomly in every new state; LuaJIT's generator
-- belongs to the state and starts as randomseed(0) leaves it; 5.1-5.3 use the C library's
-- generator, shared by the whole process (fresh states included), which a new process starts
-- as srand(1) leaves it: 5.1's randomseed(1) is exactly that, while 5.2/5.3's also draw one
-- number after seeding, so there the sequence is the unseeded one shifted by one draw.
local PROGRAM_SEED = jit and 0 or (VERSION == 'Lua 5.1' or VERSION == 'Lua 5.2' or VERSION == 'Lua 5.3') and 1
    or nil
local MEMERR = 'not enough memory'
local PACKAGE_CONFIG = rawget(real_package, 'config') or '/\n;\n?\n!\n-\n'
local HOST_ONLY = { ffi = true, ['jit.util'] = true, ['jit.profile'] = true, ['string.buffer'] = true }
local SAFE_BASE = {
    'assert', 'error', 'ipairs', 'next', 'pairs', 'rawequal', 'rawget', 'rawlen', 'rawset',
    'select', 'tonumber', 'tostring', 'type', 'getmetatable', '_VERSION', 'unpack', 'gcinfo',
}
local base_functions = {}
for _, name in ipairs(SAFE_BASE) do
    base_functions[name] = rawget(G, name)
end
-- collectgarbage options that change nothing a later program would notice
local HARMLESS_GC = { collect = true, count = true, step = true, isrunning = true }
local FORBIDDEN_DEBUG = {
    'sethook', 'gethook', 'getlocal', 'setlocal', 'getupvalue', 'setupvalue', 'upvalueid',
    'upvaluejoin', 'getregistry', 'getmetatable', 'setmetatable', 'getuservalue',
    'setuservalue', 'setcstacklimit', 'getfenv', 'setfenv', 'debug',
}

local function pass(...)
    return ...
end

-- One value of each type whose metatable is shared by the whole state (nil is checked apart;
-- a string's is the string metatable, replaced per program).  Only debug.setmetatable, which
-- programs never get, can give them one; a state where one has one is not reused.
local SHARED_TYPE_SAMPLES = { false, 0, 0.5, pass, co_create(pass) }
-- LuaUnit's summary as the host reads it: field name and the Lua type it must have
local SUMMARY_FIELDS = {
    { 'tests', 'number' }, { 'failures', 'number' }, { 'errors', 'number' },
    { 'first_error', 'string' }, { 'first_failure', 'string' },
}

local function copy(t)
    if t == nil then return nil end
    local c = {}
    for k, v in next, t do c[k] = v end
    return c
end

-- our own precompiled chunks: loaded once, their globals bound to each program's table
local function load_trusted(code, chunkname)
    local chunk
    if setfenv then
        chunk = (loadstring or load)(code, chunkname)
    else
        chunk = load(code, chunkname, 'b', {})
    end
    return chunk
end
local luaunit_main = load_trusted(luaunit_code, '=luaunit')
local luaunit_extras_main = load_trusted(luaunit_extras_code, '=luaunit')

local function bind_globals(chunk, env)
    if setfenv then
        setfenv(chunk, env)      -- closures the chunk makes from now on inherit env
    else
        local function holder() return env end
        upvaluejoin(chunk, 1, holder, 1)  -- a main chunk's only upvalue is _ENV
    end
    return chunk
end

local function typename(v)
    local mt = getmetatable(v)
    if type(mt) == 'table' and type(rawget(mt, '__name')) == 'string' then
        return rawget(mt, '__name')
    end
    return type(v)
end

-- lua.c's message for an error object that is not a string
local function describe(e)
    if type(e) == 'string' or type(e) == 'number' then
        return tostring(e)
    end
    local mt = getmetatable(e)
    if type(mt) == 'table' and rawget(mt, '__tostring') then
        local ok, s = pcall(tostring, e)
        if ok and type(s) == 'string' then
            return s
        end
    end
    return format('(error object is a %s value)', typename(e))
end

local function exit_status(code)
    if code == nil then return 0 end
    if type(code) == 'boolean' and not PLAIN_51 then
        return code and 0 or 1
    end
    local n = (type(code) == 'number' or type(code) == 'string') and tonumber(code) or nil
    if n == nil then
        error(format("bad argument #1 to 'exit' (number expected, got %s)", typename(code)), 0)
    end
    if n ~= n or n % 1 ~= 0 or n >= 2^63 or n < -2^63 then
        if PLAIN_51 or VERSION == 'Lua 5.2' then
            -- C's conversion: toward zero; NaN, infinities and anything beyond 64 bits end up
            -- as the most negative integer, whose low byte is 0
            if n ~= n or n >= 2^63 or n < -2^63 then
                n = 0
            elseif n >= 0 then
                n = n - n % 1
            else
                n = -(-n - (-n) % 1)
            end
        else
            error("bad argument #1 to 'exit' (number has no integer representation)", 0)
        end
    end
    return n % 256
end

local function strip_script_header(source)
    if sub(source, 1, 3) == '\239\187\191' then
        source = sub(source, 4)                  -- lua.c skips a UTF-8 byte-order mark
    end
    if sub(source, 1, 1) == '#' then
        local eol = find(source, '\n', 1, true)  -- and a first line starting with '#'
        source = eol and sub(source, eol) or ''
    end
    return source
end

-- Nothing of the host's global table stays reachable, even through getfenv tricks.
for k in next, G do
    rawset(G, k, nil)
end

------------------------------------------------------------------------
-- What a finished run leaves: its outcome made plain, and the state checked.
------------------------------------------------------------------------

-- LuaUnit's last summary as plain values, or nil and why not (raw reads only: no metamethod
-- of the program can run here).
local function plain_summary(s)
    if s == nil then
        return true
    end
    for i = 1, #SUMMARY_FIELDS do
        local field, wanted = SUMMARY_FIELDS[i][1], SUMMARY_FIELDS[i][2]
        local got = type(rawget(s, field))
        if got ~= wanted and got ~= 'nil' then
            return false, format("sandbox: LuaUnit's summary holds a %s where a %s belongs (%s)", got, wanted, field)
        end
    end
    return true, rawget(s, 'tests'), rawget(s, 'failures'), rawget(s, 'errors'), rawget(s, 'first_error'),
        rawget(s, 'first_failure')
end

-- The outcome as plain values: kind, code, message, then the summary's five.
local function plain_outcome(summary, kind, code, message)
    if type(message) ~= 'string' then
        message = nil
    end
    if kind ~= 'exit' and kind ~= 'error' then
        return kind, nil, message            -- the host reads no summary for these
    end
    if kind == 'exit' and type(code) ~= 'number' then
        return 'violation', nil, 'sandbox: the exit status is not a number'
    end
    local ok, tests, failures, errors, first_error, first_failure = plain_summary(summary)
    if not ok then
        return 'violation', nil, tests
    end
    return kind, code, message, tests, failures, errors, first_error, first_failure
end

-- Nothing the program did may show in the state once it is over (see the header);
-- `string_metatable` is the one its run installed.
local function state_is_clean(string_metatable)
    if gethook() ~= nil or next(G) ~= nil or get_any_metatable(G) ~= nil
            or get_any_metatable(nil) ~= nil then
        return false
    end
    for i = 1, #SHARED_TYPE_SAMPLES do
        if get_any_metatable(SHARED_TYPE_SAMPLES[i]) ~= nil then
            return false
        end
    end
    return rawequal(get_any_metatable(''), string_metatable)
end

local run_program

-- whether the function running `level` levels above the caller is run_program itself
local function is_run_program(level)
    return rawequal(getinfo(level + 1, 'f').func, run_program)
end

-- (one table: Lua 5.1 and LuaJIT allow a function 60 upvalues, and run_program is near that)
local finishing = { plain_outcome = plain_outcome, state_is_clean = state_is_clean, is_run_program = is_run_program }

------------------------------------------------------------------------
-- One program.
------------------------------------------------------------------------

run_program = function(program, cpu_seconds, hook_every, may_reuse)

------------------------------------------------------------------------
-- Stopping: one sentinel error object that nothing in the sandbox can keep.
------------------------------------------------------------------------

local STOP = setmetatable({}, { __tostring = function() return 'lqbench: program stopped' end })
local stopped, stop_kind, stop_code, stop_message = false, nil, nil, nil
local deadline = math.huge
-- the host closes the state after this program anyway when it asked for a new state per
-- program: then the state check and the full collection are skipped
local reusable = may_reuse == true
-- set once the program's main chunk has returned: from then on only bootstrap code runs
-- (reading the outcome), still under the CPU deadline
local program_over = false

local function stop(kind, code, message)
    if not stopped then
        stopped, stop_kind, stop_code, stop_message = true, kind, code, message
    end
    error(STOP, 0)
end

local function timeout_message()
    return format('timeout: over %.3g s of CPU time', cpu_seconds)
end

local function on_count()
    if not stopped and clock() <= deadline then
        return
    end
    -- Never raise in run_program's own frame: nothing catches an error there, and the
    -- host must always get an outcome back (run_program removes the hook right away).
    if finishing.is_run_program(2) then
        return
    end
    if program_over then
        if clock() > deadline then
            error(STOP, 0)  -- reading the outcome ran past the deadline (see finish_run)
        end
        return
    end
    if not stopped then
        stop('timeout', nil, timeout_message())
    end
    error(STOP, 0)
end

-- Every protected call returns through here: a stop is re-raised, an allocation
-- failure under the memory cap ends the program (real Lua has no such cap).
local function after_protected(ok, ...)
    if stopped then
        error(STOP, 0)
    end
    if not ok and (...) == MEMERR then
        stop('memory', nil, 'memory limit exceeded')
    end
    return ok, ...
end

local function forbidden(name)
    return function()
        stop('violation', nil, 'sandbox: ' .. name .. ' is not available')
    end
end

------------------------------------------------------------------------
-- The program's global table and its own library tables.
------------------------------------------------------------------------

local env = copy(base_functions)
local p_string, p_table, p_math = copy(string), copy(table), copy(math)
env._G = env
env.string, env.table, env.math = p_string, p_table, p_math
env.utf8, env.bit32, env.bit = copy(utf8), copy(bit32), copy(bit)
env.arg = { [0] = 'program.lua', [-1] = 'lua' }
-- `("x"):upper()` finds this program's string table, whatever the last program did
local p_string_metatable = copy(STRING_METATABLE)
p_string_metatable.__index = p_string
set_any_metatable('', p_string_metatable)
if PROGRAM_SEED then
    randomseed(PROGRAM_SEED)
else
    randomseed()
end

-- pcall / xpcall
env.pcall = function(...)
    return after_protected(pcall(...))
end
env.xpcall = function(...)
    local n = select('#', ...)
    local handler = (select(2, ...))
    if n < 2 or type(handler) ~= 'function' then
        return after_protected(xpcall(...))   -- same argument errors as the real xpcall
    end
    local f = (...)
    local function guarded_handler(e)
        if stopped then return e end
        return handler(e)
    end
    return after_protected(xpcall(f, guarded_handler, select(3, ...)))
end

-- setmetatable: remember finalizers so they can be disarmed when the program is stopped;
-- a program with a finalizer does not share its state with the next one
local finalizer_metatables = setmetatable({}, { __mode = 'k' })
env.setmetatable = function(t, mt)
    local r = setmetatable(t, mt)
    if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then
        finalizer_metatables[mt] = true
        reusable = false
    end
    return r
end
if newproxy then
    env.newproxy = function(...)
        reusable = false   -- a proxy's metatable may get a __gc at any time
        return newproxy(...)
    end
end

-- collectgarbage: all of it, but a changed mode or tuning ends the state's reuse
env.collectgarbage = function(opt, ...)
    if opt ~= nil and not HARMLESS_GC[opt] then
        reusable = false
    end
    return pass(collectgarbage(opt, ...))  -- not a tail call: errors name 'collectgarbage'
end

-- print / warn: output goes nowhere, but values are converted as print would
env.print = function(...)
    for i = 1, select('#', ...) do
        tostring((select(i, ...)))
    end
end
if has_warn then
    env.warn = function(...)
        if select('#', ...) == 0 then
            error("bad argument #1 to 'warn' (string expected, got no value)", 0)
        end
        for i = 1, select('#', ...) do
            local v = select(i, ...)
            if type(v) ~= 'string' and type(v) ~= 'number' then
                error(format("bad argument #%d to 'warn' (string expected, got %s)", i, typename(v)), 0)
            end
        end
    end
end

-- coroutines: every new thread gets the count hook; resume/close re-raise stops
local p_coroutine = copy(coroutine)
env.coroutine = p_coroutine
p_coroutine.create = function(f)
    local co = co_create(f)
    sethook(co, on_count, '', hook_every)
    return co
end
p_coroutine.resume = function(...)
    return after_protected(co_resume(...))
end
p_coroutine.wrap = function(f)
    if type(f) ~= 'function' then
        return co_wrap(f)
    end
    return co_wrap(function(...)
        sethook(on_count, '', hook_every)
        return f(...)
    end)
end
if co_close then
    p_coroutine.close = function(...)
        return after_protected(co_close(...))
    end
end

-- load / loadstring: text chunks only, in the program's environment by default
local function refuse_bytecode(piece)
    if type(piece) == 'string' and byte(piece, 1) == 27 then
        stop('violation', nil, 'sandbox: loading precompiled bytecode is not allowed')
    end
end

local function checked_reader(reader)
    local first = true
    return function()
        local piece = reader()
        if first and piece ~= nil and piece ~= '' then
            first = false
            refuse_bytecode(piece)
        end
        return piece
    end
end

env.load = function(chunk, chunkname, mode, ...)
    local custom_env = select('#', ...) > 0
    local chunk_env = env
    if custom_env then chunk_env = (...) end
    if type(chunk) == 'string' then
        refuse_bytecode(chunk)
    elseif type(chunk) == 'function' then
        chunk = checked_reader(chunk)
    end
    local f, err
    if setfenv then
        f, err = load(chunk, chunkname, mode)
        if stopped then error(STOP, 0) end
        if f then setfenv(f, chunk_env) end
    else
        f, err = load(chunk, chunkname, mode or 'bt', chunk_env)
        if stopped then error(STOP, 0) end
    end
    return f, err
end
if loadstring then
    env.loadstring = function(s, chunkname)
        refuse_bytecode(s)
        local f, err = loadstring(s, chunkname)
        if f then setfenv(f, env) end
        return f, err
    end
end
env.dofile = forbidden('dofile')
env.loadfile = forbidden('loadfile')

-- getfenv / setfenv (5.1, LuaJIT): the host's global table never shows through
if getfenv then
    local function shift(level)
        if type(level) == 'number' and level > 0 then return level + 1 end
        return level
    end
    env.getfenv = function(f)
        if f == nil then f = 1 end
        local e = getfenv(shift(f))
        if e == G then return env end
        return e
    end
    env.setfenv = function(f, t)
        if f == 0 then
            stop('violation', nil, 'sandbox: setfenv(0) is not available')
        end
        f = shift(f)
        if getfenv(f) == G then
            stop('violation', nil, 'sandbox: setfenv on a sandbox function is not available')
        end
        local r = setfenv(f, t)
        if type(f) == 'function' then return r end
        return nil
    end
end

-- os: clocks and dates; exit ends the program with a status; no processes or files
local sandbox_os = {
    time = real_os.time, clock = real_os.clock, date = real_os.date, difftime = real_os.difftime,
    exit = function(code)
        stop('exit', exit_status(code))
    end,
    getenv = function(name)
        if type(name) ~= 'string' and type(name) ~= 'number' then
            error(format("bad argument #1 to 'getenv' (string expected, got %s)", typename(name)), 0)
        end
        return nil
    end,
    setlocale = function(locale)
        if locale == nil or locale == '' or locale == 'C' or locale == 'POSIX' then
            return 'C'
        end
        return nil
    end,
    execute = forbidden('os.execute'),
    remove = forbidden('os.remove'),
    rename = forbidden('os.rename'),
    tmpname = forbidden('os.tmpname'),
}
env.os = sandbox_os

-- io: stdout/stderr swallow what is written, stdin is empty, nothing else exists
local file_methods = {}
local file_mt = { __index = file_methods, __name = 'FILE*' }
file_mt.__tostring = function(f) return f.kind == 'in' and 'file (0x1)' or 'file (0x2)' end
local function new_file(kind) return setmetatable({ kind = kind }, file_mt) end
local stdin, stdout, stderr = new_file('in'), new_file('out'), new_file('out')

local function check_writable(first_index, ...)
    for i = 1, select('#', ...) do
        local v = select(i, ...)
        if type(v) ~= 'string' and type(v) ~= 'number' then
            error(format("bad argument #%d to 'write' (string expected, got %s)", i + first_index - 1, typename(v)), 0)
        end
    end
end
function file_methods.write(f, ...)
    check_writable(1, ...)
    return f
end
function file_methods.read() return nil end
function file_methods.lines() return function() return nil end end
function file_methods.flush(f) return f end
function file_methods.setvbuf() return true end
function file_methods.seek() return nil, 'Illegal seek', 29 end
function file_methods.close() return nil, 'cannot close standard file' end

local sandbox_io = {
    stdin = stdin, stdout = stdout, stderr = stderr,
    write = function(...)
        check_writable(1, ...)
        return stdout
    end,
    read = function() return nil end,
    lines = function(name, ...)
        if name ~= nil then forbidden('io.lines with a file name')() end
        return function() return nil end
    end,
    input = function(f)
        if f ~= nil and getmetatable(f) ~= file_mt then forbidden('io.input with a file name')() end
        return stdin
    end,
    output = function(f)
        if f ~= nil and getmetatable(f) ~= file_mt then forbidden('io.output with a file name')() end
        return stdout
    end,
    flush = function() return true end,
    close = function() return nil, 'cannot close standard file' end,
    type = function(f)
        if getmetatable(f) == file_mt then return 'file' end
        return nil
    end,
    open = forbidden('io.open'),
    popen = forbidden('io.popen'),
    tmpfile = forbidden('io.tmpfile'),
}
env.io = sandbox_io

-- debug: tracebacks and function-free getinfo only; hooks, locals, upvalues, registry are out
local sandbox_debug = { traceback = real_debug.traceback }
sandbox_debug.getinfo = function(...)
    local thread, target, what
    if type((...)) == 'thread' then
        thread, target, what = ...
    else
        target, what = ...
    end
    if what == nil then
        what = 'lnSu'
    elseif type(what) == 'string' then
        what = gsub(what, 'f', '')
    end
    if type(target) == 'number' and thread == nil and target >= 0 then
        target = target + 1
    end
    if thread ~= nil then
        return getinfo(thread, target, what)
    end
    return getinfo(target, what)
end
for i = 1, #FORBIDDEN_DEBUG do
    sandbox_debug[FORBIDDEN_DEBUG[i]] = forbidden('debug.' .. FORBIDDEN_DEBUG[i])
end
env.debug = sandbox_debug

-- jit (LuaJIT): version facts and the compiler switches; never jit.util or ffi
if jit then
    local jit_on, jit_off = jit.on, jit.off
    env.jit = {
        version = jit.version, version_num = jit.version_num, os = jit.os, arch = jit.arch,
        flush = jit.flush, status = jit.status,
        -- the compiler switch is the state's: a state whose program flipped it is not reused
        on = function(...) reusable = false; return jit_on(...) end,
        off = function(...) reusable = false; return jit_off(...) end,
    }
end

-- package / require: the standard libraries and luaunit, nothing from the host
local lu_summary = nil
local function luaunit_report(summary)
    lu_summary = summary
end

local sandbox_package = {
    path = './?.lua', cpath = '', config = PACKAGE_CONFIG,
    preload = {}, searchers = {}, loaders = {},
    loadlib = forbidden('package.loadlib'),
    searchpath = function(name)
        return nil, "\n\tno file '" .. tostring(name) .. "' (lqbench sandbox)"
    end,
}
local loaded = {
    _G = env, string = p_string, table = p_table, math = p_math, coroutine = p_coroutine,
    io = sandbox_io, os = sandbox_os, debug = sandbox_debug, package = sandbox_package,
    utf8 = env.utf8, bit32 = env.bit32, bit = env.bit, jit = env.jit,
}
sandbox_package.loaded = loaded
env.package = sandbox_package

local function load_luaunit_extras()
    return bind_globals(luaunit_extras_main, env)
end

env.require = function(name)
    if type(name) ~= 'string' and type(name) ~= 'number' then
        error(format("bad argument #1 to 'require' (string expected, got %s)",
            name == nil and 'no value' or typename(name)), 0)
    end
    name = tostring(name)
    local lib = sandbox_package.loaded
    local have = lib[name]
    if have then
        return have
    end
    local loader, extra = nil, nil
    local preload = sandbox_package.preload
    if type(preload) == 'table' and preload[name] ~= nil then
        loader, extra = preload[name], ':preload:'
    elseif name == 'luaunit' then
        loader, extra = function()
            return bind_globals(luaunit_main, env)(luaunit_report, load_luaunit_extras)
        end, 'luaunit.lua'
    elseif HOST_ONLY[name] then
        stop('violation', nil, "sandbox: module '" .. name .. "' is not available")
    else
        error(format("module '%s' not found:\n\tno field package.preload['%s']\n\t"
            .. '(lqbench sandbox: only luaunit and the standard libraries can be required)', name, name), 0)
    end
    local result = loader(name, extra)
    if result ~= nil then
        lib[name] = result
    end
    if lib[name] == nil then
        lib[name] = true
    end
    return lib[name], extra
end

------------------------------------------------------------------------
-- Run the program as lua.c would run a script file.
------------------------------------------------------------------------

local function disarm_finalizers()
    for mt in next, finalizer_metatables do
        rawset(mt, '__gc', nil)
    end
end

-- Reads the outcome and, after it, decides whether the state may be kept (see the header);
-- returns what run_program returns.
local function finish_run(kind, code, message)
    local ok, tests, failures, errors, first_error, first_failure
    ok, kind, code, message, tests, failures, errors, first_error, first_failure =
        pcall(finishing.plain_outcome, lu_summary, kind, code, message)
    sethook()
    if not ok then
        -- only the deadline (the hook raises STOP) or the memory cap can interrupt plain_outcome
        if kind == MEMERR then
            kind, code, message = 'memory', nil, 'memory limit exceeded'
        else
            kind, code, message = 'timeout', nil, timeout_message()
        end
        tests, failures, errors, first_error, first_failure = nil, nil, nil, nil, nil
    end
    if kind ~= 'exit' and kind ~= 'error' and kind ~= 'syntax' then
        reusable = false
    end
    local kb = 0
    if reusable and finishing.state_is_clean(p_string_metatable) then
        set_any_metatable('', STRING_METATABLE)
        collectgarbage('collect')
        kb = collectgarbage('count')
    else
        reusable = false
    end
    return kind, code, message, tests, failures, errors, first_error, first_failure, reusable == true, kb
end

local source = strip_script_header(program)
if byte(source, 1) == 27 then
    return finish_run('violation', nil, 'sandbox: precompiled bytecode programs are not allowed')
end

local main, compile_error
if setfenv then
    main, compile_error = (loadstring or load)(source, '=program')
    if main then setfenv(main, env) end
else
    main, compile_error = load(source, '=program', 't', env)
end
if not main then
    if compile_error == MEMERR then
        return finish_run('memory', nil, 'memory limit exceeded')
    end
    return finish_run('syntax', nil, compile_error)
end

-- The program, and what its error object says (a __tostring is program code, so it runs
-- under the hook too).  An error escaping this function is a stop raised by the hook in
-- the bootstrap's own code right after the program ended: the outcome is then the stop's.
local function execute()
    local ok, err = pcall(main)
    if stopped then
        return stop_kind, stop_code, stop_message
    elseif ok then
        return 'exit', 0
    elseif err == MEMERR then
        return 'memory', nil, 'memory limit exceeded'
    end
    local message = describe(err)
    if stopped then
        return stop_kind, stop_code, stop_message
    end
    return 'error', nil, message
end

deadline = clock() + cpu_seconds
sethook(on_count, '', hook_every)
local finished, kind, code, message = pcall(execute)
program_over = true
if not finished then
    if stopped then
        kind, code, message = stop_kind, stop_code, stop_message
    elseif kind == MEMERR then
        kind, code, message = 'memory', nil, 'memory limit exceeded'
    else
        -- e.g. "error in error handling": a string from Lua itself, never a program's object
        message = type(kind) == 'string' and ('scorer: ' .. kind) or 'scorer: the run ended abnormally'
        kind, code = 'error', nil
        reusable = false
    end
end
if stopped or kind == 'memory' then
    -- lua.c does not close the state on os.exit (nor is a killed process closed), so
    -- finalizers must not run when this state is closed; after an error they do run.
    disarm_finalizers()
end
return finish_run(kind, code, message)

end

-- Every state starts the same: the bootstrap's own garbage is gone before the first program.
collectgarbage('collect')
return run_program, (collectgarbage('count'))
