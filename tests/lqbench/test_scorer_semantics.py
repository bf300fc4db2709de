"""What our LuaUnit + sandbox decide, case by case, next to what real `lua5.4` + LuaUnit 3.4 decide.

Each case is a small program probing one rule (LuaUnit's deep compare, margins, string
assertions, error classification, discovery and order, os.exit codes, load-time errors...).
The expected status was recorded from the real interpreter; the first test holds our scorer
to it, the second re-checks it against real Lua when `lua5.4` and `lua-unit` are installed
(Debian: `apt-get install lua5.4 lua-unit`; `setup.sh --test` does it).
"""

import pytest

from lqbench.scorer.reference import find_reference_lua, run_reference
from lqbench.scorer.sandbox import LuaSandbox, ScoreLimits

LUAUNIT = "lu = require('luaunit')\n"
RUN = "\nos.exit(lu.LuaUnit.run())\n"


def T(body):
    """A LuaUnit test program in MultiPL-E shape around `body`."""
    return LUAUNIT + body + RUN


CASES = [
    # string arithmetic: coerced through the string metatable's __add etc. (5.4), as in lua.c
    ('str_arith_coerces', 'assertion_failure',
     T("local function f(n) return tostring(n) + tostring(1) end function test_a() lu.assertEquals(f(1), '11') end")),
    ('str_arith_value', 'pass', T("function test_a() lu.assertEquals('10' + 1, 11) lu.assertEquals('3' * '4', 12) "
                                  "lu.assertEquals(-'2', -2) lu.assertEquals('7' // 2, 3) end")),
    ('str_arith_not_a_number', 'runtime_error', T("function test_a() return 'a' + 1 end")),
    ('str_metatable_shape', 'pass', T("function test_a() local mt = getmetatable('') lu.assertEquals(mt.__index, string) "
                                      "lu.assertEquals(type(mt.__add), 'function') lu.assertEquals(type(mt.__unm), 'function') end")),
    ('eq_int_float', 'pass', T("function test_a() lu.assertEquals(3, 3.0) end")),
    ('eq_float_exact', 'assertion_failure', T("function test_a() lu.assertEquals(0.1+0.2, 0.3) end")),
    ('eq_nested', 'pass', T("function test_a() lu.assertEquals({1,{2,{3}},a={b=1}}, {1,{2,{3}},a={b=1}}) end")),
    ('eq_nested_diff', 'assertion_failure', T("function test_a() lu.assertEquals({1,{2,{3}}}, {1,{2,{4}}}) end")),
    ('eq_float_keys', 'pass', T("function test_a() local t = {} t[1.0] = 'a' t[2] = 'b' lu.assertEquals(t, {'a','b'}) end")),
    ('eq_extra_key', 'assertion_failure', T("function test_a() lu.assertEquals({1,2,x=1}, {1,2}) end")),
    ('eq_cyclic_same', 'pass', T("function test_a() local a = {} a.s = a local b = {} b.s = b lu.assertEquals(a, b) end")),
    ('eq_cyclic_diff', 'assertion_failure', T("function test_a() local a = {} a.s = a local b = {s={}} lu.assertEquals(a, b) end")),
    ('eq_cyclic_both_shapes', 'assertion_failure', T("function test_a() local a = {} a.s = {s=a} local b = {} b.s = b lu.assertEquals(a, b) end")),
    ('eq_nil_nil', 'pass', T("function test_a() lu.assertEquals(nil, nil) end")),
    ('eq_str_num', 'assertion_failure', T("function test_a() lu.assertEquals('1', 1) end")),
    ('eq_eqmeta', 'assertion_failure', T("local mt = {__eq=function() return true end} function test_a() lu.assertEquals({setmetatable({}, mt)}, {setmetatable({1}, mt)}) end")),
    ('eq_nan', 'assertion_failure', T("function test_a() lu.assertEquals(0/0, 0/0) end")),
    ('eq_neg_zero', 'pass', T("function test_a() lu.assertEquals(-0.0, 0) end")),
    ('eq_huge_tbl_fail', 'assertion_failure', T("function test_a() local a, b = {}, {} for i=1,200 do a[i]=i b[i]=i end b[150]=0 lu.assertEquals(a, b) end")),
    ('almost_ok', 'pass', T("function test_a() lu.assertAlmostEquals(1.0, 1.05, 0.1) end")),
    ('almost_fail', 'assertion_failure', T("function test_a() lu.assertAlmostEquals(1.0, 1.2, 0.1) end")),
    ('almost_default_margin', 'pass', T("function test_a() lu.assertAlmostEquals(0.1+0.2, 0.3) end")),
    ('almost_str_err', 'runtime_error', T("function test_a() lu.assertAlmostEquals('a', 1, 0.1) end")),
    ('almost_neg_margin', 'runtime_error', T("function test_a() lu.assertAlmostEquals(1, 1, -1) end")),
    ('almost_tables', 'pass', T("function test_a() lu.assertAlmostEquals({1.0, 2.0}, {1.01, 2.0}, 0.1) end")),
    ('almost_tables_str', 'pass', T("function test_a() lu.assertAlmostEquals({'a'}, {'a'}, 0.1) end")),
    ('items_ok', 'pass', T("function test_a() lu.assertItemsEquals({1,2,3}, {3,1,2}) end")),
    ('items_dup', 'pass', T("function test_a() lu.assertItemsEquals({1,1,2}, {1,2,2}) end")),
    ('items_fail', 'assertion_failure', T("function test_a() lu.assertItemsEquals({1,2}, {1,3}) end")),
    ('items_nontable', 'pass', T("function test_a() lu.assertItemsEquals(1, 1) end")),
    ('strcontains_plain', 'pass', T("function test_a() lu.assertStrContains('a.b', '.') end")),
    ('strcontains_plainfail', 'assertion_failure', T("function test_a() lu.assertStrContains('abc', '.') end")),
    ('strcontains_pattern', 'pass', T("function test_a() lu.assertStrContains('abc', 'b.', true) end")),
    ('strcontains_badpattern', 'runtime_error', T("function test_a() lu.assertStrContains('abc', '[', true) end")),
    ('strcontains_nonstring', 'runtime_error', T("function test_a() lu.assertStrContains(nil, 'a') end")),
    ('strcontains_number', 'pass', T("function test_a() lu.assertStrContains(123, '2') end")),
    ('stricontains', 'pass', T("function test_a() lu.assertStrIContains('ABC', 'bc') end")),
    ('strmatches', 'pass', T("function test_a() lu.assertStrMatches('abc', 'a.c') end")),
    ('strmatches_fail', 'assertion_failure', T("function test_a() lu.assertStrMatches('abcd', 'a.c') end")),
    ('assert_error_ok', 'pass', T("function test_a() lu.assertError(error, 'x') end")),
    ('assert_error_noerr', 'assertion_failure', T("function test_a() lu.assertError(function() end) end")),
    ('assert_error_nil', 'pass', T("function test_a() lu.assertError(nil) end")),
    ('errmsg_contains', 'pass', T("function test_a() lu.assertErrorMsgContains('boom', function() error('big boom') end) end")),
    ('errmsg_contains_fail', 'assertion_failure', T("function test_a() lu.assertErrorMsgContains('bam', function() error('big boom') end) end")),
    ('errmsg_contains_table', 'pass', T("function test_a() lu.assertErrorMsgContains('table', function() error({}) end) end")),
    ('errmsg_equals', 'pass', T("function test_a() lu.assertErrorMsgEquals('x', function() error('x', 0) end) end")),
    ('errmsg_equals_pos', 'assertion_failure', T("function test_a() lu.assertErrorMsgEquals('x', function() error('x') end) end")),
    ('errmsg_content_equals', 'pass', T("function test_a() lu.assertErrorMsgContentEquals('x', function() error('x') end) end")),
    ('errmsg_matches', 'pass', T("function test_a() lu.assertErrorMsgMatches('.*x', function() error('x') end) end")),
    ('errmsg_noerror', 'assertion_failure', T("function test_a() lu.assertErrorMsgEquals('x', function() end) end")),
    ('nil_ok', 'pass', T("function test_a() lu.assertNil(nil) lu.assertIsNil(nil) end")),
    ('nil_fail', 'assertion_failure', T("function test_a() lu.assertNil(false) end")),
    ('notnil_fail', 'assertion_failure', T("function test_a() lu.assertNotNil(nil) end")),
    ('istrue_1', 'assertion_failure', T("function test_a() lu.assertIsTrue(1) end")),
    ('true_ok', 'pass', T("function test_a() lu.assertTrue(true) lu.assertFalse(false) end")),
    ('evaltrue', 'pass', T("function test_a() lu.assertEvalToTrue(0) lu.assertEvalToFalse(nil) end")),
    ('false_nil', 'assertion_failure', T("function test_a() lu.assertFalse(nil) end")),
    ('notequals_ok', 'pass', T("function test_a() lu.assertNotEquals({1}, {2}) lu.assertNotEquals(1, '1') end")),
    ('notequals_fail', 'assertion_failure', T("function test_a() lu.assertNotEquals({1}, {1}) end")),
    ('is_fail', 'assertion_failure', T("function test_a() lu.assertIs({}, {}) end")),
    ('notis_ok', 'pass', T("function test_a() lu.assertNotIs({}, {}) end")),
    ('type_asserts', 'pass', T("function test_a() lu.assertIsNumber(1) lu.assertIsString('') lu.assertIsTable({}) lu.assertIsFunction(print) lu.assertNumber(2) lu.assert_is_string('x') end")),
    ('type_assert_fail', 'assertion_failure', T("function test_a() lu.assertIsNumber('1') end")),
    ('nan_asserts', 'pass', T("function test_a() lu.assertNaN(0/0) lu.assertInf(1/0) lu.assertPlusZero(0.0) lu.assertMinusZero(-0.0) end")),
    ('table_contains', 'pass', T("function test_a() lu.assertTableContains({1,{2}}, {2}) end")),
    ('table_contains_fail', 'assertion_failure', T("function test_a() lu.assertTableContains({1,2}, 3) end")),
    ('snake_aliases', 'pass', T("function test_a() lu.assert_equals(1,1) lu.assert_not_equals(1,2) lu.assert_true(true) lu.assert_nil(nil) lu.assert_not_nil(1) lu.assert_str_contains('ab','b') lu.assert_items_equals({1},{1}) lu.assert_almost_equals(1,1,0.1) lu.assert_error(error) end")),
    ('unknown_assert', 'runtime_error', T("function test_a() lu.assertBogus(1) end")),
    ('fail_call', 'assertion_failure', T("function test_a() lu.fail('nope') end")),
    ('skip', 'pass', T("function test_a() lu.skip('later') end function test_b() lu.assertEquals(1,1) end")),
    ('skip_only', 'pass', T("function test_a() lu.skip('later') end")),
    ('success_early', 'pass', T("function test_a() lu.success() error('not reached') end")),
    ('no_run', 'pass', LUAUNIT + "function test_a() lu.assertEquals(1, 2) end\n"),
    ('run_no_exit', 'pass', LUAUNIT + "function test_a() lu.assertEquals(1, 2) end\nlu.LuaUnit.run()\n"),
    ('exit_true', 'pass', "os.exit(true)"),
    ('exit_false', 'runtime_error', "os.exit(false)"),
    ('exit_3', 'runtime_error', "os.exit(3)"),
    ('exit_256', 'pass', "os.exit(256)"),
    ('exit_neg', 'runtime_error', "os.exit(-1)"),
    ('exit_float', 'runtime_error', "os.exit(1.5)"),
    ('exit_float_int', 'runtime_error', "os.exit(2.0)"),
    ('exit_str', 'pass', "os.exit('0')"),
    ('exit_badstr', 'runtime_error', "os.exit('x')"),
    ('exit_table', 'runtime_error', "os.exit({})"),
    ('exit_in_test', 'runtime_error', T("function test_a() os.exit(0) end")),
    ('exit_in_test_unreg', 'pass', T("function test_a() lu.unregisterCurrentSuite() os.exit(0) end")),
    ('exit_in_pcall', 'pass', "pcall(os.exit, 0) error('after')"),
    ('exit_in_pcall_3', 'runtime_error', "pcall(os.exit, 3) error('after')"),
    ('exit_in_coroutine', 'pass', "coroutine.wrap(function() os.exit(0) end)() error('after')"),
    ('print_tests', 'pass', T("function test_a() print('hello', nil, {}, 1.5) io.write('x', 1, '\\n') lu.assertEquals(1, 1) end")),
    ('print_bad_tostring', 'pass', T("function test_a() print(setmetatable({}, {__tostring=function() return 1 end})) end")),
    ('io_write_bad', 'runtime_error', T("function test_a() io.write({}) end")),
    ('io_read_nil', 'pass', "assert(io.read() == nil) assert(io.read('n') == nil)"),
    ('err_table', 'runtime_error', T("function test_a() error({code=1}) end")),
    ('err_nil', 'runtime_error', T("function test_a() error() end")),
    ('err_number', 'runtime_error', T("function test_a() error(42) end")),
    ('err_failure_text', 'assertion_failure', T("function test_a() error('x:1: LuaUnit test FAILURE: fake') end")),
    ('err_failure_text2', 'assertion_failure', T("function test_a() error('LuaUnit test FAILURE: fake', 0) end")),
    ('err_tostring_meta', 'runtime_error', T("function test_a() error(setmetatable({}, {__tostring=function() return 'custom' end})) end")),
    ('top_err_table', 'runtime_error', "error({})"),
    ('top_err_tostring', 'runtime_error', "error(setmetatable({}, {__tostring=function() return 'custom' end}))"),
    ('top_err_nil', 'runtime_error', "error()"),
    ('load_time_error', 'runtime_error', "local x = nil + 1\n" + T("function test_a() end")),
    ('syntax', 'syntax_error', "local function f(\n" + T("function test_a() end")),
    ('syntax_goto', 'syntax_error', "goto nowhere"),
    ('shebang', 'pass', "#!/usr/bin/lua\n" + T("function test_a() lu.assertEquals(1,1) end")),
    ('global_test_number', 'runtime_error', T("testcount = 3\nfunction test_a() end")),
    ('global_test_string', 'runtime_error', T("TESTING = 'x'\nfunction test_a() end")),
    ('global_test_table_data', 'pass', T("test_data = {{1,2},{3,4}}\nfunction test_a() lu.assertEquals(test_data[1][1], 1) end")),
    ('test_class', 'assertion_failure', T("TestFoo = {}\nfunction TestFoo:setUp() self.x = 1 end\nfunction TestFoo:test_x() lu.assertEquals(self.x, 1) end\nfunction TestFoo:testY() lu.assertEquals(self.x, 2) end")),
    ('test_class_teardown_err', 'runtime_error', T("TestFoo = {}\nfunction TestFoo:tearDown() error('td') end\nfunction TestFoo:test_x() end")),
    ('test_class_setup_fail', 'assertion_failure', T("TestFoo = {}\nfunction TestFoo:setUp() lu.fail('su') end\nfunction TestFoo:test_x() error('x') end")),
    ('setupclass_fail', 'runtime_error', T("TestFoo = {}\nfunction TestFoo.setupClass() error('sc') end\nfunction TestFoo:test_x() end")),
    ('setupsuite_fail', 'runtime_error', T("function setupSuite() error('ss') end\nfunction test_x() end")),
    ('setupsuite_ok', 'pass', T("x = 0\nfunction setupSuite() x = 1 end\nfunction test_x() lu.assertEquals(x, 1) end")),
    ('order_dependency', 'pass', T("n = 0\nfunction test_b() lu.assertEquals(n, 1) end\nfunction test_a() n = n + 1 end")),
    ('order_upper', 'pass', T("n = 0\nfunction test_b() n = n + 1 end\nfunction Test_A() lu.assertEquals(n, 0) end")),
    ('fail_and_error', 'runtime_error', T("function test_a() lu.assertEquals(1,2) end\nfunction test_b() error('e') end")),
    ('many_failures_256', 'pass', T("for i=1,256 do _G['test_'..string.format('%03d',i)] = function() lu.assertEquals(1,2) end end")),
    ('zero_tests', 'pass', T("")),
    ('run_with_name', 'pass', LUAUNIT + "function test_a() lu.assertEquals(1,2) end\nfunction test_b() end\nos.exit(lu.LuaUnit.run('test_b'))"),
    ('run_with_bad_name', 'runtime_error', LUAUNIT + "function test_b() end\nos.exit(lu.LuaUnit.run('test_zz'))"),
    ('run_with_option_v', 'pass', LUAUNIT + "function test_b() end\nos.exit(lu.LuaUnit.run('-v'))"),
    ('run_with_bad_option', 'runtime_error', LUAUNIT + "function test_b() end\nos.exit(lu.LuaUnit.run('--bogus'))"),
    ('run_method_syntax', 'assertion_failure', LUAUNIT + "function test_b() lu.assertEquals(1,2) end\nos.exit(lu.LuaUnit:run())"),
    ('lu_run_alias', 'assertion_failure', LUAUNIT + "function test_b() lu.assertEquals(1,2) end\nos.exit(lu.run())"),
    ('run_pattern', 'pass', LUAUNIT + "function test_a() lu.assertEquals(1,2) end\nfunction test_b() end\nos.exit(lu.LuaUnit.run('-p', 'test_b'))"),
    ('run_twice', 'pass', LUAUNIT + "function test_a() end\nlu.LuaUnit.run('test_a')\nos.exit(lu.LuaUnit.run())"),
    ('export_globals', 'pass', "EXPORT_ASSERT_TO_GLOBALS = true\n" + T("function test_a() assertEquals(1, 1) end")),
    ('require_twice', 'pass', T("local lu2 = require('luaunit') function test_a() lu.assertIs(lu, lu2) end")),
    ('require_unknown', 'runtime_error', "local x = require('socket')"),
    ('require_unknown_pcall', 'pass', "local ok = pcall(require, 'socket') assert(not ok)"),
    ('require_string', 'pass', "local s = require('string') assert(s == string) local t = require('table') assert(t == table)"),
    ('pairs_order_int', 'pass', T("function test_a() local t={} for i=1,10 do t[i]=i end local r={} for k,v in pairs(t) do r[#r+1]=v end lu.assertEquals(r, {1,2,3,4,5,6,7,8,9,10}) end")),
    ('string_methods', 'pass', T("function string:split(sep) local r={} for p in self:gmatch('[^'..sep..']+') do r[#r+1]=p end return r end\nfunction test_a() lu.assertEquals(('a,b'):split(','), {'a','b'}) end")),
    ('deep_recursion', 'pass', T("local function f(n) if n == 0 then return 0 end return 1 + f(n-1) end\nfunction test_a() lu.assertEquals(f(100000), 100000) end")),
    ('stack_overflow', 'runtime_error', T("local function f(n) return 1 + f(n+1) end\nfunction test_a() f(1) end")),
    ('int_overflow', 'pass', T("function test_a() lu.assertEquals(math.maxinteger + 1, math.mininteger) end")),
    ('int_div', 'pass', T("function test_a() lu.assertEquals(7 // 2, 3) lu.assertEquals(7 / 2, 3.5) lu.assertEquals(-7 // 2, -4) end")),
    ('tostring_float', 'pass', T("function test_a() lu.assertEquals(tostring(3.0), '3.0') lu.assertEquals(tostring(1e100), '1e+100') end")),
    ('string_format', 'pass', T("function test_a() lu.assertEquals(string.format('%5.2f|%d|%s|%q', 3.14159, 42, nil, 'a\\nb'), ' 3.14|42|nil|\"a\\\\\\nb\"') end")),
    ('math_tointeger', 'pass', T("function test_a() lu.assertEquals(math.tointeger(3.0), 3) lu.assertEquals(math.type(3.0), 'float') end")),
    ('utf8', 'pass', T("function test_a() lu.assertEquals(utf8.len('héllo'), 5) end")),
    ('table_sort_invalid', 'runtime_error', T("function test_a() local t={} for i=1,100 do t[i]=i%7 end table.sort(t, function(a,b) return a<=b end) end")),
    ('xpcall_handler', 'pass', T("function test_a() local ok, e = xpcall(function() error('x', 0) end, function(m) return 'h:'..m end) lu.assertEquals(e, 'h:x') end")),
    ('xpcall_args', 'pass', T("function test_a() local ok, v = xpcall(function(a, b) return a + b end, print, 1, 2) lu.assertEquals(v, 3) end")),
    ('pcall_noargs', 'runtime_error', T("function test_a() pcall() end")),
    ('coroutine_basic', 'pass', T("function test_a() local co = coroutine.wrap(function() for i=1,3 do coroutine.yield(i) end end) lu.assertEquals({co(), co(), co()}, {1,2,3}) end")),
    ('coroutine_err', 'pass', T("function test_a() local co = coroutine.create(function() error('in co') end) local ok, e = coroutine.resume(co) lu.assertFalse(ok) lu.assertStrContains(e, 'in co') end")),
    ('coroutine_wrap_err', 'runtime_error', T("function test_a() local f = coroutine.wrap(function() error('in co') end) f() end")),
    ('load_text', 'pass', T("function test_a() local f = load('return 1 + 1') lu.assertEquals(f(), 2) end")),
    ('load_env', 'pass', T("function test_a() local f = load('return x', 'c', 't', {x=5}) lu.assertEquals(f(), 5) end")),
    ('load_globals', 'pass', T("y = 7 function test_a() local f = load('return y') lu.assertEquals(f(), 7) end")),
    ('load_syntax', 'pass', T("function test_a() local f, e = load('return +') lu.assertNil(f) lu.assertStrContains(e, 'unexpected') end")),
    ('select_neg', 'pass', T("function test_a() lu.assertEquals(select(-1, 1, 2, 3), 3) lu.assertEquals(select('#', nil, nil), 2) end")),
    ('gsub_pattern', 'pass', T("function test_a() lu.assertEquals(('hello world'):gsub('o', '0'), 'hell0 w0rld') end")),
    ('os_time_date', 'pass', T("function test_a() lu.assertIsNumber(os.time()) lu.assertIsString(os.date('%Y')) lu.assertIsNumber(os.clock()) end")),
    ('os_getenv', 'pass', "local h = os.getenv('LQBENCH_SURELY_UNSET_VAR') assert(h == nil)"),
    ('math_random', 'pass', T("function test_a() local r = math.random(1, 10) lu.assertTrue(r >= 1 and r <= 10) end")),
    ('rawequal_etc', 'pass', T("function test_a() lu.assertTrue(rawequal(1, 1)) lu.assertEquals(rawlen({1,2}), 2) lu.assertEquals(next({}), nil) end")),
    ('setmetatable_index', 'pass', T("local V = {} V.__index = V function V.new(x) return setmetatable({x=x}, V) end function V:get() return self.x end\nfunction test_a() lu.assertEquals(V.new(3):get(), 3) end")),
    ('getmetatable_string', 'pass', T("function test_a() lu.assertEquals(getmetatable('').__index, string) end")),
    ('global_print_override', 'runtime_error', T("function print() error('no print') end\nfunction test_a() lu.assertEquals(1,1) end")),
    ('override_type', 'runtime_error', T("function test_a() lu.assertEquals(1,1) end\ntype = nil")),
    ('assert_builtin', 'runtime_error', T("function test_a() assert(false, 'plain assert') end")),
    ('assert_builtin_top', 'runtime_error', "assert(1 == 2, 'top assert')"),
    ('warn_call', 'pass', "warn('@on') warn('hello')"),
    ('collectgarbage_count', 'pass', T("function test_a() lu.assertIsNumber(collectgarbage('count')) collectgarbage() collectgarbage('step') end")),
    ('tbc_variable', 'pass', T("function test_a() do local x <close> = setmetatable({}, {__close=function() end}) end end")),
    ('const_var', 'pass', T("local x <const> = 5\nfunction test_a() lu.assertEquals(x, 5) end")),
    ('integer_keys_float', 'pass', T("function test_a() local t = {[1]=1, [2.0]=2} lu.assertEquals(#t, 2) lu.assertEquals(t, {1, 2}) end")),
    ('prettystr_error_in_fail', 'runtime_error', T("function test_a() lu.assertEquals(setmetatable({}, {__tostring=function() error('ts') end}), 1) end")),
    ('prettystr_pairs_meta', 'runtime_error', T("function test_a() lu.assertEquals(setmetatable({}, {__pairs=function() error('pairs!') end}), {1}) end")),
    ('arg_table', 'pass', T("function test_a() lu.assertEquals(type(arg), 'table') lu.assertEquals(#arg, 0) end")),
    ('varargs_main', 'pass', "local n = select('#', ...) assert(n == 0, 'main chunk got args')"),
    ('string_rep_big_ok', 'pass', T("function test_a() lu.assertEquals(#string.rep('x', 1e6), 1e6) end")),
    ('tostring_nil_concat', 'runtime_error', T("function test_a() local s = 'a' .. nil end")),
    ('testnames_global', 'pass', LUAUNIT + "function test_a() end\nlu.LuaUnit.run('test_a')\nos.exit(lu.LuaUnit.run())"),
    ('unicode_src', 'pass', "-- héllo wörld\n" + T("function test_a() lu.assertEquals(#'é', 2) end")),
    ('bom_src', 'syntax_error', "\239\187\191" + T("function test_a() end")),
    ('nul_in_src', 'pass', T("function test_a() lu.assertEquals(#'a\\0b', 3) end")),
    ('method_on_nil_field', 'runtime_error', T("local t = {} function test_a() t.x:y() end")),
    ('cpu_heavy_ok', 'pass', T("function test_a() local s = 0 for i=1,3e6 do s = s + i end lu.assertEquals(s, 4500001500000) end")),
    ('os_exit_close', 'pass', "os.exit(0, true)"),
    ('dofile_stdin_like', 'pass', "local f = loadstring"),
    ('string_dump_call', 'pass', "local ok = pcall(string.dump, print)"),
    ('gc_finalizer_error', 'pass', "setmetatable({}, {__gc = function() error('gc err') end}) collectgarbage()"),
    ('exit_after_run_ok', 'runtime_error', LUAUNIT + "function test_a() end\nlocal r = lu.LuaUnit.run()\nos.exit(r + 4)"),
]

IDS = [name for name, _, _ in CASES]


@pytest.fixture(scope="module")
def sandbox():
    return LuaSandbox(ScoreLimits(timeout_s=10.0))


def test_cases_are_distinct_and_cover_every_kind_of_outcome():
    assert len(set(IDS)) == len(IDS) >= 150
    assert {expected for _, expected, _ in CASES} >= {"pass", "assertion_failure", "runtime_error", "syntax_error"}


@pytest.mark.parametrize("name,expected,program", CASES, ids=IDS)
def test_our_scorer_gives_the_recorded_verdict(sandbox, name, expected, program):
    verdict = sandbox.run(program)
    assert verdict.status == expected, verdict.error
    assert verdict.passed == (expected == "pass")
    assert (verdict.error is None) == (expected == "pass")


@pytest.mark.parametrize("name,expected,program", CASES, ids=IDS)
def test_real_lua_gives_the_recorded_verdict(name, expected, program, tmp_path):
    if find_reference_lua() is None:
        pytest.skip("lua5.4 with LuaUnit is not installed")
    assert run_reference(program, timeout_s=30.0, workdir=tmp_path).status == expected
