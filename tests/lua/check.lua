-- check.lua: the assertion helper shared by tests/lua/test_*.lua.
--
-- Each check counts as passed or failed; a failure prints the test file's
-- line (and the line of the outer call when the check sits in a helper
-- function) with both values, and the run goes on so that one mistake
-- does not hide the next.  check.done() prints exactly "N passed, N
-- failed" and raises if anything failed, which makes pvlua exit 1.
--
-- check.sandboxed(name) loads a module from scripts/ into an environment
-- shaped like the rule sandbox of DESIGN.md ("Lua rule API"): basic
-- functions without load/dofile/loadfile, string, table, math, utf8 and
-- os.time/date/clock only, and a require that reads text chunks from
-- scripts/ alone.  Testing the modules there proves they need nothing
-- more, and check.done() also fails if a module leaked a global into it.
--
-- This file runs in the test host (tests/lua/runner.c) with the full
-- standard library; it is not part of the rule pack.

local check = {}

local passed, failed = 0, 0
local SELF = debug.getinfo(1, "S").source

-- show(v) renders a value for a failure message: strings quoted, floats
-- with every digit (so 998.9999999999999 is visible), tables by content.
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if math.type(v) == "float" then return string.format("%.17g", v) end
  if type(v) ~= "table" then return tostring(v) end
  if depth > 3 then return "{...}" end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function (a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = ("%s=%s"):format(tostring(k), show(v[k], depth + 1))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
check.show = show

-- where() names the failing line: the innermost frame outside this file,
-- plus the outermost one in the same test file when they differ (a check
-- inside a helper called from many lines).
local function where()
  local first, last
  local level = 3
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source ~= SELF and info.what ~= "C" then
      first = first or info
      if info.source == first.source then last = info end
    end
    level = level + 1
  end
  if not first then return "?" end
  local s = ("%s:%d"):format(first.short_src, first.currentline)
  if last and last.currentline ~= first.currentline then
    s = s .. (" (called from line %d)"):format(last.currentline)
  end
  return s
end

-- record(ok, what, detail) counts one check and prints a failure.
local function record(ok, what, detail)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print(("FAIL %s: %s: %s"):format(where(), what or "check", detail))
  end
  return ok
end

-- deep_equal(a, b) compares tables by content; other values with ==.
local function deep_equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

--[[
check.eq(actual, expected [, what]) -> boolean.  Passes when actual ==
expected (so 900 and 900.0 are equal, as in Lua).
]]
function check.eq(actual, expected, what)
  return record(actual == expected, what,
    ("got %s, expected %s"):format(show(actual), show(expected)))
end

--[[
check.same(actual, expected [, what]) -> boolean.  Deep comparison of
tables.
]]
function check.same(actual, expected, what)
  return record(deep_equal(actual, expected), what,
    ("got %s, expected %s"):format(show(actual), show(expected)))
end

--[[
check.near(actual, expected, tol [, what]) -> boolean.  Passes when both
are numbers and |actual - expected| <= tol.
]]
function check.near(actual, expected, tol, what)
  local ok = type(actual) == "number" and math.abs(actual - expected) <= tol
  return record(ok, what, ("got %s, expected %s +/- %s"):format(
    show(actual), show(expected), show(tol)))
end

--[[
check.ok(value [, what]) -> boolean.  Passes when value is truthy.
]]
function check.ok(value, what)
  return record(value and true or false, what,
    ("got %s, expected a true value"):format(show(value)))
end

--[[
check.matches(s, pattern [, what]) -> boolean.  Passes when s is a string
containing the plain text `pattern`.
]]
function check.matches(s, text, what)
  local ok = type(s) == "string" and s:find(text, 1, true) ~= nil
  return record(ok, what, ("got %s, expected it to contain %s"):format(
    show(s), show(text)))
end

--[[
check.raises(fn, text [, what]) -> boolean.  Passes when fn() raises an
error whose message contains the plain text `text`.
]]
function check.raises(fn, text, what)
  local ok, err = pcall(fn)
  if ok then
    return record(false, what, ("no error, expected one containing %s")
      :format(show(text)))
  end
  return check.matches(tostring(err), text, what)
end

-- The sandbox shared by every check.sandboxed call of one test run.
local BASIC = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
  "print", "rawequal", "rawget", "rawlen", "rawset", "select",
  "setmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION",
}
local env = {}
for _, name in ipairs(BASIC) do env[name] = _G[name] end
env.string, env.table, env.math, env.utf8 = string, table, math, utf8
env.os = { time = os.time, date = os.date, clock = os.clock }
local scripts_path = package.path:match("^[^;]+")
local loaded = {}
env.require = function (name)
  if loaded[name] ~= nil then return loaded[name] end
  local path, err = package.searchpath(name, scripts_path)
  if not path then error(err, 2) end
  local chunk, lerr = loadfile(path, "t", env)
  if not chunk then error(lerr, 2) end
  local result = chunk(name, path)
  loaded[name] = result == nil and true or result
  return loaded[name]
end
local ALLOWED = {}
for k in pairs(env) do ALLOWED[k] = true end

--[[
check.sandboxed(name) -> the module, loaded from scripts/ inside the
rule-like sandbox described at the top of this file.
]]
function check.sandboxed(name)
  return env.require(name)
end

--[[
check.done().  Prints "N passed, N failed" and raises if any check failed
or a sandboxed module left a global behind.
]]
function check.done()
  for k in pairs(env) do
    if not ALLOWED[k] then
      record(false, "sandbox", ("a module set the global %s"):format(
        show(k)))
    end
  end
  print(("%d passed, %d failed"):format(passed, failed))
  if failed > 0 then
    error(("%d check(s) failed"):format(failed), 0)
  end
end

return check
