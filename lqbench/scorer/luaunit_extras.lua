--[[ The less used half of lqbench's LuaUnit-compatible module (see luaunit.lua).

luaunit.lua loads this chunk the first time a program looks up a field the core does not
define (e.g. lu.assertIsNumber, lu.assert_equals), so that the common case, a MultiPL-E test
using lu.assertEquals, does not pay for ~150 functions and aliases it never calls. Called as
chunk(M, P) with the module table and the core's private helpers; definitions go into M only
where the program has not assigned the name itself.
]]

local M, P = ...
local X = {}
local failure, fail_fmt, error_fmt = P.failure, P.fail_fmt, P.error_fmt
local prettystr, prettystrPairs = P.prettystr, P.prettystrPairs
local is_table_equals, key_of_equal_item = P.is_table_equals, P.key_of_equal_item

function X.assertNotAlmostEquals(actual, expected, margin, extra)
    margin = margin or M.EPS
    if M.almostEquals(actual, expected, margin) then
        if not M.ORDER_ACTUAL_EXPECTED then
            actual, expected = expected, actual
        end
        fail_fmt(2, extra, 'Values are almost equal\nActual: %s, expected: %s, delta %s below margin of %s',
            actual, expected, math.abs(actual - expected), margin)
    end
end

function X.assertStrIContains(str, sub, extra)
    if not string.find(str:lower(), sub:lower(), 1, true) then
        sub, str = prettystrPairs(sub, str, '\n')
        fail_fmt(2, extra, 'Could not find (case insensitively) substring %s in string %s', sub, str)
    end
end

function X.assertNotStrContains(str, sub, isPattern, extra)
    if string.find(str, sub, 1, not isPattern) then
        sub, str = prettystrPairs(sub, str, '\n')
        fail_fmt(2, extra, 'Found the not expected %s %s in string %s', isPattern and 'pattern' or 'substring', sub, str)
    end
end

function X.assertNotStrIContains(str, sub, extra)
    if string.find(str:lower(), sub:lower(), 1, true) then
        sub, str = prettystrPairs(sub, str, '\n')
        fail_fmt(2, extra, 'Found (case insensitively) the not expected substring %s in string %s', sub, str)
    end
end

-- true when `pattern` matches s exactly from `first` to `last` (defaults: the whole string)
local function matches_fully(s, pattern, first, last)
    first = first or 1
    last = last or string.len(s)
    local i, j = string.find(s, pattern, first, false)
    return i == first and j == last
end

function X.assertStrMatches(str, pattern, first, last, extra)
    if not matches_fully(str, pattern, first, last) then
        pattern, str = prettystrPairs(pattern, str, '\n')
        fail_fmt(2, extra, 'Could not match pattern %s with string %s', pattern, str)
    end
end

local function error_message_equals(strip_position, expected, f, ...)
    local ok, err = pcall(f, ...)
    if ok then
        failure('No error generated when calling function but expected error: ' .. prettystr(expected), nil, 3)
    end
    if type(expected) == 'string' and type(err) ~= 'string' then
        err = tostring(err)
    end
    local differ = false
    if strip_position then
        if err:gsub('^.+:%d+: ', '') ~= expected then
            differ = true
        end
    elseif err ~= expected then
        if type(expected) == 'table' and type(err) == 'table' then
            differ = not pcall(M.assertItemsEquals, err, expected)
        else
            differ = true
        end
    end
    if differ then
        local se, sg = prettystrPairs(err, expected)
        fail_fmt(3, nil, 'Error message expected: %s\nError message received: %s\n', sg, se)
    end
end

function X.assertErrorMsgEquals(expected, f, ...)
    error_message_equals(false, expected, f, ...)
end

function X.assertErrorMsgContentEquals(expected, f, ...)
    error_message_equals(true, expected, f, ...)
end

function X.assertErrorMsgContains(part, f, ...)
    local ok, err = pcall(f, ...)
    if ok then
        failure('No error generated when calling function but expected error containing: ' .. prettystr(part), nil, 2)
    end
    if type(err) ~= 'string' then
        err = tostring(err)
    end
    if not string.find(err, part, nil, true) then
        err, part = prettystrPairs(err, part)
        fail_fmt(2, nil, 'Error message does not contain: %s\nError message received: %s\n', part, err)
    end
end

function X.assertErrorMsgMatches(pattern, f, ...)
    local ok, err = pcall(f, ...)
    if ok then
        failure('No error generated when calling function but expected error matching: "' .. pattern .. '"', nil, 2)
    end
    if type(err) ~= 'string' then
        err = tostring(err)
    end
    if not matches_fully(err, pattern) then
        pattern, err = prettystrPairs(pattern, err)
        fail_fmt(2, nil, 'Error message does not match pattern: %s\nError message received: %s\n', pattern, err)
    end
end

function X.assertEvalToTrue(value, extra)
    if not value then
        failure('expected: a value evaluating to true, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertEvalToFalse(value, extra)
    if value then
        failure('expected: false or nil, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertNotIsTrue(value, extra)
    if value == true then
        failure('expected: not true, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertNotIsFalse(value, extra)
    if value == false then
        failure('expected: not false, actual: ' .. prettystr(value), extra, 2)
    end
end

for _, tname in ipairs({ 'Number', 'String', 'Table', 'Boolean', 'Function', 'Userdata', 'Thread' }) do
    local wanted = tname:lower()
    X['assertIs' .. tname] = function(value, extra)
        if type(value) ~= wanted then
            if value == nil then
                fail_fmt(2, extra, 'expected: a %s value, actual: nil', wanted)
            else
                fail_fmt(2, extra, 'expected: a %s value, actual: type %s, value %s', wanted, type(value), prettystr(value))
            end
        end
    end
    X['assertNotIs' .. tname] = function(value, extra)
        if type(value) == wanted then
            fail_fmt(2, extra, 'expected: not a %s type, actual: value %s', wanted, prettystr(value))
        end
    end
end

for _, tname in ipairs({ 'Number', 'String', 'Table', 'Boolean', 'Function', 'Userdata', 'Thread', 'Nil' }) do
    local wanted = tname:lower()
    local check = function(value) return type(value) == wanted end
    X['is' .. tname] = check
    X['is_' .. wanted] = check
end

function X.assertIs(actual, expected, extra)
    if actual ~= expected then
        if not M.ORDER_ACTUAL_EXPECTED then
            actual, expected = expected, actual
        end
        local keep = M.PRINT_TABLE_REF_IN_ERROR_MSG
        M.PRINT_TABLE_REF_IN_ERROR_MSG = true
        local se, sa = prettystrPairs(expected, actual, '\n', '')
        M.PRINT_TABLE_REF_IN_ERROR_MSG = keep
        fail_fmt(2, extra, 'expected and actual object should not be different\nExpected: %s\nReceived: %s', se, sa)
    end
end

function X.assertNotIs(actual, expected, extra)
    if actual == expected then
        local keep = M.PRINT_TABLE_REF_IN_ERROR_MSG
        M.PRINT_TABLE_REF_IN_ERROR_MSG = true
        local s = prettystr(M.ORDER_ACTUAL_EXPECTED and expected or actual)
        M.PRINT_TABLE_REF_IN_ERROR_MSG = keep
        fail_fmt(2, extra, 'expected and actual object should be different: %s', s)
    end
end

function X.assertIsNaN(value, extra)
    if type(value) ~= 'number' or value == value then
        failure('expected: NaN, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertNotIsNaN(value, extra)
    if type(value) == 'number' and value ~= value then
        failure('expected: not NaN, actual: NaN', extra, 2)
    end
end

function X.assertIsInf(value, extra)
    if type(value) ~= 'number' or math.abs(value) ~= math.huge then
        failure('expected: #Inf, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertIsPlusInf(value, extra)
    if type(value) ~= 'number' or value ~= math.huge then
        failure('expected: #Inf, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertIsMinusInf(value, extra)
    if type(value) ~= 'number' or value ~= -math.huge then
        failure('expected: -#Inf, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertNotIsPlusInf(value, extra)
    if type(value) == 'number' and value == math.huge then
        failure('expected: not #Inf, actual: #Inf', extra, 2)
    end
end

function X.assertNotIsMinusInf(value, extra)
    if type(value) == 'number' and value == -math.huge then
        failure('expected: not -#Inf, actual: -#Inf', extra, 2)
    end
end

function X.assertNotIsInf(value, extra)
    if type(value) == 'number' and math.abs(value) == math.huge then
        failure('expected: not infinity, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertIsPlusZero(value, extra)
    if type(value) ~= 'number' or value ~= 0 then
        failure('expected: +0.0, actual: ' .. prettystr(value), extra, 2)
    elseif 1 / value == -math.huge then
        failure('expected: +0.0, actual: -0.0', extra, 2)
    elseif 1 / value ~= math.huge then
        failure('expected: +0.0, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertIsMinusZero(value, extra)
    if type(value) ~= 'number' or value ~= 0 then
        failure('expected: -0.0, actual: ' .. prettystr(value), extra, 2)
    elseif 1 / value == math.huge then
        failure('expected: -0.0, actual: +0.0', extra, 2)
    elseif 1 / value ~= -math.huge then
        failure('expected: -0.0, actual: ' .. prettystr(value), extra, 2)
    end
end

function X.assertNotIsPlusZero(value, extra)
    if type(value) == 'number' and 1 / value == math.huge then
        failure('expected: not +0.0, actual: +0.0', extra, 2)
    end
end

function X.assertNotIsMinusZero(value, extra)
    if type(value) == 'number' and 1 / value == -math.huge then
        failure('expected: not -0.0, actual: -0.0', extra, 2)
    end
end

function X.assertTableContains(t, expected, extra)
    if key_of_equal_item(t, expected) == nil then
        local st, se = prettystrPairs(t, expected)
        fail_fmt(2, extra, 'Table %s does NOT contain the expected element %s', st, se)
    end
end

function X.assertNotTableContains(t, expected, extra)
    local k = key_of_equal_item(t, expected)
    if k ~= nil then
        local st, se = prettystrPairs(t, expected)
        fail_fmt(2, extra, 'Table %s DOES contain the unwanted element %s (at key %s)', st, se, prettystr(k))
    end
end

function X.failIf(cond, msg)
    if cond then failure(msg, nil, 2) end
end

function X.skip(msg)
    error_fmt(2, M.SKIP_PREFIX .. msg)
end

function X.skipIf(cond, msg)
    if cond then error_fmt(2, M.SKIP_PREFIX .. msg) end
end

function X.runOnlyIf(cond, msg)
    if not cond then error_fmt(2, M.SKIP_PREFIX .. prettystr(msg)) end
end

function X.success()
    error_fmt(2, M.SUCCESS_PREFIX)
end

function X.successIf(cond)
    if cond then error_fmt(2, M.SUCCESS_PREFIX) end
end

function X.wrapFunctions()
    -- kept for LuaUnit 2.x programs; test functions are discovered by name anyway
end

-- Every alias LuaUnit 3.4 publishes, mapped to its official name.
local ALIASES = {
    assertEquals = { 'assert_equals' },
    assertItemsEquals = { 'assert_items_equals' },
    assertNotEquals = { 'assert_not_equals' },
    assertAlmostEquals = { 'assert_almost_equals' },
    assertNotAlmostEquals = { 'assert_not_almost_equals' },
    assertEvalToTrue = { 'assert_eval_to_true' },
    assertEvalToFalse = { 'assert_eval_to_false' },
    assertStrContains = { 'assert_str_contains' },
    assertStrIContains = { 'assert_str_icontains' },
    assertNotStrContains = { 'assert_not_str_contains' },
    assertNotStrIContains = { 'assert_not_str_icontains' },
    assertStrMatches = { 'assert_str_matches' },
    assertError = { 'assert_error' },
    assertErrorMsgEquals = { 'assert_error_msg_equals' },
    assertErrorMsgContains = { 'assert_error_msg_contains' },
    assertErrorMsgMatches = { 'assert_error_msg_matches' },
    assertErrorMsgContentEquals = { 'assert_error_msg_content_equals' },
    assertIs = { 'assert_is' },
    assertNotIs = { 'assert_not_is' },
    assertTableContains = { 'assert_table_contains' },
    assertNotTableContains = { 'assert_not_table_contains' },
    wrapFunctions = { 'WrapFunctions', 'wrap_functions' },
}
-- assertIsXxx -> assert_is_xxx, assertXxx, assert_xxx; assertNotIsXxx -> assert_not_is_xxx, assertNotXxx, assert_not_xxx
local SNAKE = {
    Number = 'number', String = 'string', Table = 'table', Boolean = 'boolean', Nil = 'nil',
    True = 'true', False = 'false', NaN = 'nan', Inf = 'inf', PlusInf = 'plus_inf',
    MinusInf = 'minus_inf', PlusZero = 'plus_zero', MinusZero = 'minus_zero',
    Function = 'function', Thread = 'thread', Userdata = 'userdata',
}
for camel, snake in pairs(SNAKE) do
    ALIASES['assertIs' .. camel] = { 'assert_is_' .. snake, 'assert' .. camel, 'assert_' .. snake }
    local not_is = { 'assert_not_is_' .. snake, 'assertNot' .. camel, 'assert_not_' .. snake }
    if camel == 'PlusInf' or camel == 'MinusInf' or camel == 'PlusZero' or camel == 'MinusZero' then
        -- LuaUnit spells these without "is"
        not_is[1] = 'assert_not_' .. snake
    end
    ALIASES['assertNotIs' .. camel] = not_is
end
for _, alias in ipairs({ 'assertIsCoroutine', 'assertCoroutine', 'assert_is_coroutine', 'assert_coroutine' }) do
    table.insert(ALIASES.assertIsThread, alias)
end
for _, alias in ipairs({ 'assertNotIsCoroutine', 'assertNotCoroutine', 'assert_not_is_coroutine', 'assert_not_coroutine' }) do
    table.insert(ALIASES.assertNotIsThread, alias)
end

-- New functions and aliases go in only where the program has not put something itself.
for k, v in pairs(X) do
    if rawget(M, k) == nil then
        rawset(M, k, v)
    end
end
local export_globals = EXPORT_ASSERT_TO_GLOBALS
for official, aliases in pairs(ALIASES) do
    local f = X[official] or P.core[official]
    for _, alias in ipairs(aliases) do
        if rawget(M, alias) == nil then
            rawset(M, alias, f)
        end
        if export_globals then _G[alias] = f end
    end
    if export_globals then _G[official] = f end
end
