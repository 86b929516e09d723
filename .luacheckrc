-- luacheck configuration: `luacheck plugins scripts core/rules_api.lua`
-- (tests/e2e/test_lint_lua.sh; also the rule specs).
std = "lua54"
max_line_length = 100

-- Rule plugins, the modules they require (scripts/) and the rule specs run
-- in the pvwatch sandbox: core/rules_api.lua builds its environment as an
-- allowlist of the Lua 5.4 globals (docs/rules.md "The sandbox").  "sandbox"
-- declares exactly that allowlist, so a plugin that reaches for io,
-- os.getenv, package, dofile or collectgarbage is a warning here, not a
-- surprise at load time; rule specs get pv.test from `pvwatch test`.
stds.sandbox = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "xpcall", "rawequal", "rawget", "rawlen",
    "rawset", "setmetatable", "getmetatable", "_VERSION", "_G",
    "load", "require", "print", "pv",
    string = { fields = { "byte", "char", "find", "format", "gmatch", "gsub",
      "len", "lower", "match", "pack", "packsize", "rep", "reverse", "sub",
      "unpack", "upper" } }, -- no string.dump
    table = { fields = { "concat", "insert", "move", "pack", "remove", "sort",
      "unpack" } },
    math = { other_fields = true }, utf8 = { other_fields = true },
    coroutine = { other_fields = true },
    os = { fields = { "time", "date", "clock" } },
  },
}
files["plugins/"] = { std = "sandbox" }
files["scripts/"] = { std = "sandbox" }
files["tests/rules/"] = { std = "sandbox" }
files["tests/rules-label/"] = { std = "sandbox" }

-- core/rules_api.lua builds the sandbox with the full standard library at
-- hand, before any plugin runs: it replaces string functions with ones
-- that charge the instruction budget and removes string.dump on purpose.
files["core/rules_api.lua"] = {
  globals = { string = { fields = { "dump", "find", "match", "gmatch", "gsub",
    "rep", "lower", "upper", "reverse", "sub", "format", "char", "byte",
    "pack", "packsize", "unpack" } } },
}

-- docs/lua/pv.lua is a LuaLS annotation file (---@meta) that never runs: it
-- declares the global `pv`, and its empty functions, unused arguments and
-- locals (Log, State, TestCase) exist only to carry the annotations; its
-- descriptions may run past the line limit.
files["docs/lua/pv.lua"] = {
  globals = { "pv" },
  ignore = { "211", "212", "241", "631" },
}

-- The examples of docs/rules.md (```lua plugin / ```lua spec blocks) are
-- extracted and linted by tests/e2e/test_docs.sh with the same settings as
-- plugins/: std lua54, read-only global `pv`, lines up to 100.
