--[[ lqbench's LuaUnit-compatible test module (written for lqbench, not a copy of LuaUnit).

Programs in MultiPL-E layout do `lu = require('luaunit')`, define global `test*`
functions or `Test*` tables, and end with `os.exit(lu.LuaUnit.run())`.  This module
reproduces what LuaUnit 3.4 (Debian's `lua-unit`) does in those programs, so that a
verdict computed in lqbench's sandbox equals the exit status of `lua5.4 program.lua`:

  * discovery: every global whose name starts with "test" in any letter case, sorted;
    a table is a test class whose "test*" function fields are run in sorted key order,
    with setUp/tearDown (and their spelling variants) around each method;
  * a failed assertion raises a string starting with FAILURE_PREFIX (possibly behind
    "file:line: "); any other error value makes the test an error, not a failure;
  * run() returns failures + errors, and while a run is in progress os.exit raises an
    error inside the test instead of exiting (LuaUnit guards os.exit the same way);
  * equality is LuaUnit's: numbers by ==, tables deeply (keys looked up with t[k], so
    1 and 1.0 are the same key), cycles matched structurally, no __eq at any depth.

It reads globals at call time, like any module would, so a program that replaces a
standard function affects it as it would affect the real LuaUnit; it calls print and
io.stdout:write where LuaUnit's text output does (the sandbox discards what they write),
and reports each run's summary to the host through the private `report` function.

Only what nearly every program needs is here (the runner, assertEquals and the common
assertions, failure formatting); the other assertions and all snake_case/alias names live
in luaunit_extras.lua, loaded the first time a program looks up a name this table lacks.
]]

-- Host callbacks, not reachable from programs: report(summary) receives each run's outcome,
-- load_extras() returns the compiled luaunit_extras.lua chunk.
local report, load_extras = ...

-- LuaUnit reads the script's command line once, when it is loaded.
local cmdline_argv = rawget(_G, 'arg')

local M = {}
M.private = {}
M.VERSION = '3.4'
M._VERSION = M.VERSION
M._LUAVERSION = (jit and jit.version) or _VERSION

M.ORDER_ACTUAL_EXPECTED = true
M.PRINT_TABLE_REF_IN_ERROR_MSG = false
M.LINE_LENGTH = 80
M.TABLE_DIFF_ANALYSIS_THRESHOLD = 10
M.LIST_DIFF_ANALYSIS_THRESHOLD = 10
M.STRIP_EXTRA_ENTRIES_IN_STACK_TRACE = 0
M.EPS = 2^-52
M.VERBOSITY_DEFAULT = 10
M.VERBOSITY_LOW = 1
M.VERBOSITY_QUIET = 0
M.VERBOSITY_VERBOSE = 20
M.DEFAULT_DEEP_ANALYSIS = nil
M.FORCE_DEEP_ANALYSIS = true
M.DISABLE_DEEP_ANALYSIS = false

M.FAILURE_PREFIX = 'LuaUnit test FAILURE: '
M.SUCCESS_PREFIX = 'LuaUnit test SUCCESS: '
M.SKIP_PREFIX    = 'LuaUnit test SKIP:    '

M.USAGE = 'Usage: lua <your_test_suite.lua> [options] [testname1 [testname2] ... ]'

------------------------------------------------------------------------
-- os.exit guard: a test must not end the whole run early.
------------------------------------------------------------------------

M.oldOsExit = os.exit
os.exit = function(...)
    if M.LuaUnit and #M.LuaUnit.instances ~= 0 then
        error('You are trying to exit but there is still a running instance of LuaUnit.\n'
              .. 'LuaUnit expects to run until the end before exiting with a complete status '
              .. 'of successful/failed tests.\n\nTo force exit LuaUnit while running, please call '
              .. 'before os.exit (assuming lu is the luaunit module loaded):\n\n'
              .. '    lu.unregisterCurrentSuite() \n\n', 2)
    end
    M.oldOsExit(...)
end

-- LuaUnit reseeds the generator when it is loaded; keep the same effect on math.random.
math.randomseed(math.floor(os.clock() * 1E11))

------------------------------------------------------------------------
-- Key ordering and sorted iteration (numbers < booleans < strings < tables < others).
------------------------------------------------------------------------

local TYPE_RANK = { number = 1, boolean = 2, string = 3, table = 4 }

local function key_before(a, b)
    local ta, tb = type(a), type(b)
    if ta == tb then
        if ta == 'number' or ta == 'string' then
            return a < b
        end
        return tostring(a) < tostring(b)
    end
    return (TYPE_RANK[ta] or 5) < (TYPE_RANK[tb] or 5)
end

local function sorted_keys(t)
    local keys, n = {}, 0
    for k in pairs(t) do
        n = n + 1
        keys[n] = k
    end
    table.sort(keys, key_before)
    return keys
end

local function sortedPairs(t)
    local keys, i = sorted_keys(t), 0
    return function()
        i = i + 1
        local k = keys[i]
        if k ~= nil then
            return k, t[k]
        end
    end
end
M.private.sortedPairs = sortedPairs

------------------------------------------------------------------------
-- Pretty printing of values in failure messages.
------------------------------------------------------------------------

local function quote_string(s)
    if s:find('"', 1, true) and not s:find("'", 1, true) then
        return "'" .. s .. "'"
    end
    return '"' .. s:gsub('"', '\\"') .. '"'
end

local ref_ids, next_ref_id = {}, 1
local function table_ref(t)
    local id = ref_ids[t]
    if not id then
        id = next_ref_id
        next_ref_id = next_ref_id + 1
        ref_ids[t] = id
    end
    return string.format('table %02d', id)
end

local format_value

local function format_table(t, indent, show_refs, seen)
    seen[t] = true
    local mt = getmetatable(t)
    if mt and mt.__tostring then
        -- a table that knows how to print itself is shown that way
        local s = tostring(t)
        if type(s) ~= 'string' then
            return string.format('<invalid tostring() result: "%s" >', format_value(s, 1, false, {}))
        end
        return (s:gsub('\n', '\n' .. string.rep('    ', indent - 1)))
    end
    local parts, n, next_index, width = {}, 0, 1, 0
    for _, k in ipairs(sorted_keys(t)) do
        local v = t[k]
        local entry
        if k == next_index then
            entry = ''
            next_index = next_index + 1
        elseif seen[k] then
            seen.cycle = true
            entry = '<' .. table_ref(k) .. '>='
        elseif type(k) == 'string' and k:match('^[_%a][_%w]*$') then
            entry = k .. '='
        else
            entry = format_value(k, indent + 1, show_refs, seen) .. '='
        end
        if seen[v] then
            seen.cycle = true
            entry = entry .. '<' .. table_ref(v) .. '>'
        else
            entry = entry .. format_value(v, indent + 1, show_refs, seen)
        end
        n = n + 1
        parts[n] = entry
        width = width + #entry
    end
    local out
    if n > 0 then
        width = width + 2 * (n - 1)
    end
    if width + 2 >= M.LINE_LENGTH then
        local pad = string.rep('    ', indent - 1)
        out = '{\n    ' .. pad .. table.concat(parts, ',\n    ' .. pad) .. '\n' .. pad .. '}'
    else
        out = '{' .. table.concat(parts, ', ') .. '}'
    end
    if show_refs then
        out = '<' .. table_ref(t) .. '> ' .. out
    end
    return out
end

format_value = function(v, indent, show_refs, seen)
    local tv = type(v)
    if tv == 'string' then
        return quote_string(v)
    elseif tv == 'table' then
        return format_table(v, indent, show_refs, seen)
    elseif tv == 'number' then
        if v ~= v then return '#NaN' end
        if v == math.huge then return '#Inf' end
        if v == -math.huge then return '-#Inf' end
        if _VERSION == 'Lua 5.3' and math.tointeger then
            local i = math.tointeger(v)
            if i then return tostring(i) end
        end
    end
    return tostring(v)
end

local function prettystr(v)
    local seen = {}
    local s = format_value(v, 1, M.PRINT_TABLE_REF_IN_ERROR_MSG, seen)
    if seen.cycle and not M.PRINT_TABLE_REF_IN_ERROR_MSG then
        -- with cycles, references are needed to make sense of the output
        s = format_value(v, 1, true, {})
    end
    return s
end
M.prettystr = prettystr

-- Two values formatted for a message; multi-line values go on their own lines.
local function prettystrPairs(a, b, suffix_multi, suffix_single)
    local sa, sb = prettystr(a), prettystr(b)
    if sa:find('\n', 1, true) or sb:find('\n', 1, true) then
        return '\n' .. sa .. (suffix_multi or ''), '\n' .. sb
    end
    return sa .. (suffix_single or ''), sb
end
M.private.prettystrPairs = prettystrPairs

------------------------------------------------------------------------
-- Equality.
------------------------------------------------------------------------

function M.almostEquals(actual, expected, margin)
    if type(actual) ~= 'number' or type(expected) ~= 'number' or type(margin) ~= 'number' then
        error(string.format('almostEquals: must supply only number arguments.\nArguments supplied: %s, %s, %s',
            prettystr(actual), prettystr(expected), prettystr(margin)), 3)
    end
    if margin < 0 then
        error('almostEquals: margin must not be negative, current value is ' .. margin, 3)
    end
    return math.abs(expected - actual) <= margin
end

-- Deep comparison. `open_a`/`open_e` hold the tables currently being compared on the
-- path from the root: meeting an open table on both sides at once counts as equal
-- structure, on one side only as a difference.
local function deep_equal(a, e, open_a, open_e, margin)
    local ta = type(a)
    if ta ~= type(e) then
        return false
    end
    if ta == 'number' then
        if margin ~= nil then
            return M.almostEquals(a, e, margin)
        end
        return a == e
    elseif ta ~= 'table' then
        return a == e
    end
    if open_a[a] then
        return open_e[e] == true
    end
    if open_e[e] then
        return false
    end
    open_a[a], open_e[e] = true, true
    local same = true
    local seen_keys = {}
    for k, v in pairs(a) do
        seen_keys[k] = true
        if not deep_equal(v, e[k], open_a, open_e, margin) then
            same = false
            break
        end
    end
    if same then
        for k in pairs(e) do
            if not seen_keys[k] then
                same = false
                break
            end
        end
    end
    open_a[a], open_e[e] = nil, nil
    return same
end

local function is_table_equals(a, e, margin)
    return deep_equal(a, e, {}, {}, margin)
end
M.private.is_table_equals = is_table_equals

local function key_of_equal_item(t, item)
    if type(t) == 'table' then
        for k, v in pairs(t) do
            if is_table_equals(v, item) then
                return k
            end
        end
    end
    return nil
end

local function same_items(a, e)
    if type(a) ~= type(e) then
        return false
    end
    if type(a) == 'table' then
        for _, v in pairs(a) do
            if key_of_equal_item(e, v) == nil then return false end
        end
        for _, v in pairs(e) do
            if key_of_equal_item(a, v) == nil then return false end
        end
        return true
    end
    return a == e
end

------------------------------------------------------------------------
-- Raising failures.
------------------------------------------------------------------------

-- `level` is counted from the assertion function (2 = the code calling the assertion).
local function failure(msg, extra, level)
    if type(extra) == 'string' and #extra > 0 then
        msg = extra .. '\n' .. msg
    end
    error(M.FAILURE_PREFIX .. msg, (level or 1) + 1 + M.STRIP_EXTRA_ENTRIES_IN_STACK_TRACE)
end

local function fail_fmt(level, extra, ...)
    failure(string.format(...), extra, (level or 1) + 1)
end

local function error_fmt(level, ...)
    error(string.format(...), (level or 1) + 1 + M.STRIP_EXTRA_ENTRIES_IN_STACK_TRACE)
end
M.private.fail_fmt = fail_fmt
M.private.error_fmt = error_fmt

local function equality_message(actual, expected, margin)
    if not M.ORDER_ACTUAL_EXPECTED then
        actual, expected = expected, actual
    end
    if type(expected) == 'string' or type(expected) == 'table' then
        local se, sa = prettystrPairs(expected, actual)
        local msg = string.format('expected: %s\nactual: %s', se, sa)
        if margin then
            msg = msg .. '\nwere not equal by the margin of: ' .. prettystr(margin)
        end
        return msg
    end
    return string.format('expected: %s, actual: %s', prettystr(expected), prettystr(actual))
end

------------------------------------------------------------------------
-- Assertions.
------------------------------------------------------------------------

function M.assertEquals(actual, expected, extra)
    if type(actual) == 'table' and type(expected) == 'table' then
        if not is_table_equals(actual, expected) then
            failure(equality_message(actual, expected), extra, 2)
        end
    elseif type(actual) ~= type(expected) or actual ~= expected then
        failure(equality_message(actual, expected), extra, 2)
    end
end

function M.assertNotEquals(actual, expected, extra)
    if type(actual) ~= type(expected) then
        return
    end
    if type(actual) == 'table' then
        if not is_table_equals(actual, expected) then return end
    elseif actual ~= expected then
        return
    end
    fail_fmt(2, extra, 'Received the not expected value: %s', prettystr(actual))
end

function M.assertAlmostEquals(actual, expected, margin, extra)
    margin = margin or M.EPS
    if type(margin) ~= 'number' then
        error_fmt(2, 'almostEquals: margin must be a number, not %s', prettystr(margin))
    end
    if type(actual) == 'table' and type(expected) == 'table' then
        if not is_table_equals(actual, expected, margin) then
            failure(equality_message(actual, expected, margin), extra, 2)
        end
    elseif type(actual) == 'number' and type(expected) == 'number' then
        if not M.almostEquals(actual, expected, margin) then
            if not M.ORDER_ACTUAL_EXPECTED then
                actual, expected = expected, actual
            end
            fail_fmt(2, extra, 'Values are not almost equal\nActual: %s, expected: %s, delta %s above margin of %s',
                actual, expected, math.abs(actual - expected), margin)
        end
    else
        error_fmt(3, 'almostEquals: must supply only number or table arguments.\nArguments supplied: %s, %s, %s',
            prettystr(actual), prettystr(expected), prettystr(margin))
    end
end

function M.assertItemsEquals(actual, expected, extra)
    if not same_items(actual, expected) then
        local se, sa = prettystrPairs(expected, actual)
        fail_fmt(2, extra, 'Content of the tables are not identical:\nExpected: %s\nActual: %s', se, sa)
    end
end

function M.assertStrContains(str, sub, isPattern, extra)
    if not string.find(str, sub, 1, not isPattern) then
        sub, str = prettystrPairs(sub, str, '\n')
        fail_fmt(2, extra, 'Could not find %s %s in string %s', isPattern and 'pattern' or 'substring', sub, str)
    end
end

function M.assertError(f, ...)
    if pcall(f, ...) then
        failure('Expected an error when calling function but no error generated', nil, 2)
    end
end

function M.assertIsTrue(value, extra)
    if value ~= true then
        failure('expected: true, actual: ' .. prettystr(value), extra, 2)
    end
end

function M.assertIsFalse(value, extra)
    if value ~= false then
        failure('expected: false, actual: ' .. prettystr(value), extra, 2)
    end
end

function M.assertIsNil(value, extra)
    if value ~= nil then
        failure('expected: nil, actual: ' .. prettystr(value), extra, 2)
    end
end

function M.assertNotIsNil(value, extra)
    if value == nil then
        failure('expected: not nil, actual: nil', extra, 2)
    end
end

function M.fail(msg)
    failure(msg, nil, 2)
end

M.assertTrue, M.assertFalse, M.assertNil, M.assertNotNil = M.assertIsTrue, M.assertIsFalse, M.assertIsNil, M.assertNotIsNil

------------------------------------------------------------------------
-- The rest of the assertions and all other aliases: loaded on first use.
------------------------------------------------------------------------

local core_functions = {}
for k, v in pairs(M) do
    if type(v) == 'function' then core_functions[k] = v end
end
local helpers = {
    failure = failure, fail_fmt = fail_fmt, error_fmt = error_fmt, prettystr = prettystr,
    prettystrPairs = prettystrPairs, is_table_equals = is_table_equals,
    key_of_equal_item = key_of_equal_item, core = core_functions,
}

local function complete_module()
    setmetatable(M, nil)
    if load_extras then
        load_extras()(M, helpers)
    end
end

if EXPORT_ASSERT_TO_GLOBALS then
    complete_module()
else
    setmetatable(M, { __index = function(t, k)
        complete_module()
        return rawget(t, k)
    end })
end

------------------------------------------------------------------------
-- The runner.
------------------------------------------------------------------------

local SUCCESS, SKIP, FAIL, ERROR = 'SUCCESS', 'SKIP', 'FAIL', 'ERROR'

local NodeStatus = { __class__ = 'NodeStatus', SUCCESS = SUCCESS, SKIP = SKIP, FAIL = FAIL, ERROR = ERROR }
M.NodeStatus = NodeStatus

-- Classify a caught error value as LuaUnit does: success()/skip()/failure markers may
-- sit at the start of the message or right behind a "file:line: " position.
local function classify(err, iteration)
    local prefix = iteration and (iteration .. ', ') or ''
    if type(err) ~= 'string' then
        err = prettystr(err)
    end
    local function marked(mark)
        return err:find(mark, 1, true) == 1 or err:find(':%d+: ' .. mark:gsub('%p', '%%%0')) ~= nil
    end
    if marked(M.SUCCESS_PREFIX) then
        return nil, SUCCESS
    end
    if marked(M.SKIP_PREFIX) then
        local _, stop = err:find(M.SKIP_PREFIX, 1, true)
        local last = stop
        while true do
            local _, s2 = err:find(M.SKIP_PREFIX, last + 1, true)
            if not s2 then break end
            last = s2
        end
        return prefix .. err:sub(last + 1), SKIP
    end
    if marked(M.FAILURE_PREFIX) then
        local i, j = err:find(M.FAILURE_PREFIX, 1, true)
        return err:sub(1, i - 1) .. prefix .. err:sub(j + 1), FAIL
    end
    if iteration then
        local pos = err:match('^(.*:%d+: )')
        if pos then
            err = pos .. prefix .. err:sub(#pos + 1)
        else
            err = prefix .. err
        end
    end
    return err, ERROR
end
M.private.classify = classify

local function is_test_name(name)
    return string.sub(name, 1, 4):lower() == 'test'
end

local function as_function(x)
    if type(x) == 'function' then return x end
end

local LuaUnit = { __class__ = 'LuaUnit', instances = {}, verbosity = M.VERBOSITY_DEFAULT }
local LuaUnit_MT = { __index = LuaUnit }
M.LuaUnit = LuaUnit
if EXPORT_ASSERT_TO_GLOBALS then
    _G.LuaUnit = LuaUnit
end

function LuaUnit.new()
    return setmetatable({}, LuaUnit_MT)
end

LuaUnit.asFunction = as_function
LuaUnit.isTestName = is_test_name
LuaUnit.isMethodTestName = is_test_name

function LuaUnit.splitClassMethod(name)
    local dot = string.find(name, '.', 1, true)
    if dot then
        return name:sub(1, dot - 1), name:sub(dot + 1)
    end
    return nil, name
end

function LuaUnit.collectTests()
    local names = {}
    for k in pairs(_G) do
        if type(k) == 'string' and is_test_name(k) then
            table.insert(names, k)
        end
    end
    table.sort(names)
    return names
end

-- Command-line style options accepted by run(...): what LuaUnit does with them, minus output.
local function parse_options(args)
    local opts = {}
    if args == nil then return opts end
    local pending
    local function add_pattern(p)
        opts.pattern = opts.pattern or {}
        table.insert(opts.pattern, p)
    end
    for _, a in ipairs(args) do
        if pending then
            if pending == 'output' then opts.output = a
            elseif pending == 'name' then opts.fname = a
            elseif pending == 'repeat' then opts.exeRepeat = tonumber(a) or error('Malformed -r argument: ' .. a)
            elseif pending == 'pattern' then add_pattern(a)
            elseif pending == 'exclude' then add_pattern('!' .. a)
            end
            pending = nil
        elseif a:sub(1, 1) == '-' then
            if a == '--help' or a == '-h' then opts.help = true
            elseif a == '--version' then opts.version = true
            elseif a == '--verbose' or a == '-v' then opts.verbosity = M.VERBOSITY_VERBOSE
            elseif a == '--quiet' or a == '-q' then opts.verbosity = M.VERBOSITY_QUIET
            elseif a == '--error' or a == '-e' then opts.quitOnError = true
            elseif a == '--failure' or a == '-f' then opts.quitOnFailure = true
            elseif a == '--shuffle' or a == '-s' then opts.shuffle = true
            elseif a == '--output' or a == '-o' then pending = 'output'
            elseif a == '--name' or a == '-n' then pending = 'name'
            elseif a == '--repeat' or a == '-r' then pending = 'repeat'
            elseif a == '--pattern' or a == '-p' then pending = 'pattern'
            elseif a == '--exclude' or a == '-x' then pending = 'exclude'
            else error('Unknown option: ' .. a, 3)
            end
        else
            opts.testNames = opts.testNames or {}
            table.insert(opts.testNames, a)
        end
    end
    if opts.help or opts.version then
        os.exit(0)
    end
    if pending then
        error('Missing argument after ' .. args[#args], 2)
    end
    return opts
end
LuaUnit.parseCmdLine = parse_options

local function pattern_accepts(patterns, name)
    local default, verdict = true, nil
    if patterns then
        for _, p in ipairs(patterns) do
            local exclude = p:sub(1, 1) == '!'
            if exclude then
                p = p:sub(2)
            else
                default = false
            end
            if string.find(name, p) then
                verdict = not exclude
            end
        end
    end
    if verdict ~= nil then return verdict end
    return default
end

function LuaUnit:initFromArguments(...)
    local args = { ... }
    if type(args[1]) == 'table' and args[1].__class__ == 'LuaUnit' then
        table.remove(args, 1)
    end
    if #args == 0 then
        args = cmdline_argv
    end
    local ok, opts = pcall(parse_options, args)
    if not ok then
        os.exit(-1)
    end
    self.verbosity = opts.verbosity
    self.quitOnError = opts.quitOnError
    self.quitOnFailure = opts.quitOnFailure
    self.exeRepeat = opts.exeRepeat
    self.patternIncludeFilter = opts.pattern
    self.shuffle = opts.shuffle
    if opts.output then
        local kind = opts.output:lower()
        if kind == 'junit' and opts.fname == nil then
            os.exit(-1)
        end
        if kind ~= 'nil' and kind ~= 'tap' and kind ~= 'junit' and kind ~= 'text' then
            os.exit(-1)
        end
    end
    return opts.testNames
end

function LuaUnit:registerSuite()
    LuaUnit.instances[#LuaUnit.instances + 1] = self
end

function LuaUnit:unregisterSuite()
    for i, inst in ipairs(LuaUnit.instances) do
        if inst == self then
            table.remove(LuaUnit.instances, i)
            return
        end
    end
end

function M.unregisterCurrentSuite()
    table.remove(LuaUnit.instances, #LuaUnit.instances)
end

function LuaUnit:protectedCall(instance, method)
    local caught
    local ok = xpcall(function()
        if instance then method(instance) else method() end
    end, function(e)
        caught = e
        return e
    end)
    if ok then
        return SUCCESS
    end
    local iteration = self.exeRepeat and ('iteration ' .. self.currentCount)
    local msg, status = classify(caught, iteration)
    return status, msg
end

-- Record the outcome of one protected call; only the first non-success of a test counts.
-- Outside a test (suite or class fixtures) a non-success breaks the runner, as in LuaUnit.
function LuaUnit:updateStatus(status, msg)
    if status == SUCCESS then
        return
    end
    local node = self.result.currentNode
    if node.status ~= SUCCESS then
        return
    end
    node.status, node.msg = status, msg
    if status == FAIL then
        table.insert(self.result.failedTests, node)
    elseif status == ERROR then
        table.insert(self.result.errorTests, node)
    else
        table.insert(self.result.skippedTests, node)
    end
end

local SETUP_NAMES = { 'setUp', 'Setup', 'setup', 'SetUp' }
local TEARDOWN_NAMES = { 'tearDown', 'TearDown', 'teardown', 'Teardown' }

local function first_function(instance, names)
    for _, n in ipairs(names) do
        local f = as_function(instance[n])
        if f then return f end
    end
end

function LuaUnit:startClass(className, instance)
    self.result.currentClassName = className
    if type(instance) == 'table' and as_function(instance.setupClass) then
        self:updateStatus(self:protectedCall(instance, instance.setupClass))
    end
end

function LuaUnit:endClass()
    local instance = self.lastClassInstance
    if type(instance) == 'table' and as_function(instance.teardownClass) then
        self:updateStatus(self:protectedCall(instance, instance.teardownClass))
    end
end

function LuaUnit:execOneFunction(className, methodName, instance, method)
    if type(method) ~= 'function' then
        self:unregisterSuite()
        error(tostring(methodName) .. ' must be a function, not ' .. type(method))
    end
    local fullName
    if className == nil then
        className = '[TestFunctions]'
        fullName = methodName
    else
        fullName = className .. '.' .. methodName
    end
    if self.lastClassName ~= className then
        if self.lastClassName ~= nil then
            self:endClass()
        end
        self:startClass(className, instance)
        self.lastClassName = className
        self.lastClassInstance = instance
    end

    local result = self.result
    result.runCount = result.runCount + 1
    local node = { testName = fullName, className = className, status = SUCCESS }
    result.currentNode = node
    table.insert(result.allTests, node)

    for n = 1, self.exeRepeat or 1 do
        if node.status ~= SUCCESS then break end
        self.currentCount = n
        if instance then
            local setUp = first_function(instance, SETUP_NAMES)
            if setUp then self:updateStatus(self:protectedCall(instance, setUp)) end
        end
        if node.status == SUCCESS then
            self:updateStatus(self:protectedCall(instance, method))
        end
        if instance then
            local tearDown = first_function(instance, TEARDOWN_NAMES)
            if tearDown then self:updateStatus(self:protectedCall(instance, tearDown)) end
        end
    end

    -- LuaUnit's text output: one character per test (E/F/S for the others)
    if node.status == SUCCESS then
        io.stdout:write('.')
    else
        io.stdout:write(string.sub(node.status, 1, 1))
        io.stdout:flush()
    end
    if node.status == SUCCESS then
        result.successCount = result.successCount + 1
    elseif node.status == ERROR then
        if self.quitOnError or self.quitOnFailure then result.aborted = true end
    elseif node.status == FAIL then
        if self.quitOnFailure then result.aborted = true end
    else
        result.runCount = result.runCount - 1
    end
    result.currentNode = nil
end

function LuaUnit.expandOneClass(list, className, instance)
    for name, method in sortedPairs(instance) do
        if as_function(method) and is_test_name(name) then
            table.insert(list, { className .. '.' .. name, instance })
        end
    end
end

function LuaUnit.expandClasses(items)
    local out = {}
    for _, item in ipairs(items) do
        local name, instance = item[1], item[2]
        if as_function(instance) then
            table.insert(out, { name, instance })
        else
            if type(instance) ~= 'table' then
                error('Instance must be a table or a function, not a ' .. type(instance) .. ' with value ' .. prettystr(instance))
            end
            local className, methodName = LuaUnit.splitClassMethod(name)
            if className then
                if instance[methodName] == nil then
                    error('Could not find method in class ' .. tostring(className) .. ' for method ' .. tostring(methodName))
                end
                table.insert(out, { name, instance })
            else
                LuaUnit.expandOneClass(out, name, instance)
            end
        end
    end
    return out
end

local function fixture_from(items, key)
    local found
    for _, item in ipairs(items) do
        if item[1] == key then
            found = item[2]
            break
        end
    end
    if not as_function(found) then
        found = _G[key]
    end
    return found
end

function LuaUnit:internalRunSuiteByInstances(items)
    local expanded = self.expandClasses(items)
    if self.shuffle then
        for i = #expanded, 2, -1 do
            local j = math.random(i)
            expanded[i], expanded[j] = expanded[j], expanded[i]
        end
    end
    local selected = {}
    for _, item in ipairs(expanded) do
        if pattern_accepts(self.patternIncludeFilter, item[1]) then
            table.insert(selected, item)
        end
    end

    self.result = {
        runCount = 0, successCount = 0, currentClassName = '', currentNode = nil,
        allTests = {}, failedTests = {}, errorTests = {}, skippedTests = {},
        failureCount = 0, errorCount = 0, notSuccessCount = 0, skippedCount = 0,
        startTime = os.clock(),
    }
    local setupSuite = fixture_from(items, 'setupSuite')
    if as_function(setupSuite) then
        self:updateStatus(self:protectedCall(nil, setupSuite))
    end

    for _, item in ipairs(selected) do
        local name, instance = item[1], item[2]
        if as_function(instance) then
            self:execOneFunction(nil, name, nil, instance)
        else
            local className, methodName = LuaUnit.splitClassMethod(name)
            self:execOneFunction(className, methodName, instance, instance[methodName])
        end
        if self.result.aborted then break end
    end
    if self.lastClassName ~= nil then
        self:endClass()
    end
    local teardownSuite = fixture_from(items, 'teardownSuite')
    if as_function(teardownSuite) then
        self:updateStatus(self:protectedCall(nil, teardownSuite))
    end

    local r = self.result
    r.duration = os.clock() - r.startTime
    r.failureCount = #r.failedTests
    r.errorCount = #r.errorTests
    r.notSuccessCount = r.failureCount + r.errorCount
    r.skippedCount = #r.skippedTests
    -- LuaUnit prints its summary through the global print (a program may have replaced it)
    print()
    for _, list in ipairs({ r.errorTests, r.failedTests }) do
        for i, node in ipairs(list) do
            print(i .. ') ' .. node.testName)
            print(node.msg)
            print('stack traceback:')
            print()
        end
    end
    print(LuaUnit.statusLine(r))
    if r.notSuccessCount == 0 then
        print('OK')
    end
    if report then
        local first_error, first_failure = r.errorTests[1], r.failedTests[1]
        report({
            tests = r.runCount,
            failures = r.failureCount,
            errors = r.errorCount,
            first_error = first_error and (first_error.testName .. ': ' .. tostring(first_error.msg)) or nil,
            first_failure = first_failure and (first_failure.testName .. ': ' .. tostring(first_failure.msg)) or nil,
        })
    end
    if r.aborted then
        self:unregisterSuite()
        os.exit(-2)
    end
end

function LuaUnit:internalRunSuiteByNames(names)
    local items = {}
    for _, name in ipairs(names) do
        local className, methodName = LuaUnit.splitClassMethod(name)
        local instanceName, instance
        if className then
            instanceName = className
            instance = _G[instanceName]
            if instance == nil then
                self:unregisterSuite()
                error('No such name in global space: ' .. instanceName)
            end
            if type(instance) ~= 'table' then
                self:unregisterSuite()
                error('Instance of ' .. instanceName .. ' must be a table, not ' .. type(instance))
            end
            if instance[methodName] == nil then
                self:unregisterSuite()
                error('Could not find method in class ' .. tostring(className) .. ' for method ' .. tostring(methodName))
            end
        else
            instanceName = name
            instance = _G[instanceName]
        end
        if instance == nil then
            self:unregisterSuite()
            error('No such name in global space: ' .. instanceName)
        end
        if type(instance) ~= 'table' and type(instance) ~= 'function' then
            self:unregisterSuite()
            error('Name must match a function or a table: ' .. instanceName)
        end
        table.insert(items, { name, instance })
    end
    self:internalRunSuiteByInstances(items)
end

function LuaUnit:runSuite(...)
    -- LuaUnit 3.4 keeps the selected names in a global called `testNames`; a later
    -- run() sees it as a test, so it is kept global here too.
    testNames = self:initFromArguments(...)
    self:registerSuite()
    self:internalRunSuiteByNames(testNames or LuaUnit.collectTests())
    self:unregisterSuite()
    return self.result.notSuccessCount
end

function LuaUnit:runSuiteByInstances(items, args)
    testNames = self:initFromArguments(args)
    self:registerSuite()
    self:internalRunSuiteByInstances(items)
    self:unregisterSuite()
    return self.result.notSuccessCount
end

function LuaUnit.run(...)
    return LuaUnit.new():runSuite(...)
end

function LuaUnit:setOutputType(kind)
    local k = kind:upper()
    if k ~= 'NIL' and k ~= 'TAP' and k ~= 'JUNIT' and k ~= 'TEXT' then
        error('No such format: ' .. kind, 2)
    end
end

function LuaUnit.statusLine(r)
    return string.format('Ran %d tests, %d successes, %d failures, %d errors',
        r.runCount, r.successCount, r.failureCount or 0, r.errorCount or 0)
end

M.run = LuaUnit.run
M.Run = LuaUnit.run

function M:setVerbosity(v)
    LuaUnit.verbosity = v
end
M.set_verbosity = M.setVerbosity
M.SetVerbosity = M.setVerbosity

return M
