-- luacheck configuration: `luacheck plugins/ scripts/` (and the rule specs).
std = "lua54"
max_line_length = 100

-- Rule plugins run in the pvwatch sandbox, which provides the `pv` API
-- (core/rules_api.lua); rule specs get `pv.test` from `pvwatch test`.
files["plugins/"] = { read_globals = { "pv" } }
files["tests/rules/"] = { read_globals = { "pv" } }
files["tests/rules-label/"] = { read_globals = { "pv" } }

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
