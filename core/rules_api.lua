-- rules_api.lua: the Lua half of the rule API (the C half is rules.c).
--
-- rules.c runs this chunk once in every plugin's lua_State, before any
-- plugin code, with the full standard libraries still at hand. It builds the
-- sandbox environment the plugin runs in (an allowlist: DESIGN.md "Lua rule
-- API") and returns the functions rules.c calls: register() to check what a
-- plugin returned, and call() to run one rule on one fact. Everything that
-- touches the database goes through 'prim', the C primitives.
local prim, settings = ...

local type, pairs, ipairs, tostring, tonumber, error, setmetatable, select =
    type, pairs, ipairs, tostring, tonumber, error, setmetatable, select
local string_format, table_concat, math_floor = string.format, table.concat, math.floor
local pcall, rawget, rawset, table_pack, table_unpack =
    pcall, rawget, rawset, table.pack, table.unpack

-- Lua runs __gc finalizers with debug hooks switched off, so the
-- instruction budget cannot stop one. A rule cannot set a metatable with
-- __gc (env.setmetatable below), and as it can reach some metatables made
-- here (getmetatable of an alert or a rule), every object made with one of
-- those gets its metatable without one: an object is finalized only if __gc
-- was there when its metatable was set. (Labs and patients use metatables
-- no rule can reach: see ObsMT below.)
local setmetatable_unguarded = setmetatable
-- Shadows the local above on purpose: every setmetatable below is this one.
local function setmetatable(t, mt) -- luacheck: ignore 411
    rawset(mt, "__gc", nil)
    return setmetatable_unguarded(t, mt)
end

-- string.dump would hand out bytecode, which the sandbox never loads; the
-- string metatable is reachable from any string, so remove it at the source
-- and hide the metatable itself.
string.dump = nil
getmetatable("").__metatable = false

-- Pattern matching runs in C, where the instruction budget cannot stop it,
-- and backtracking makes it cost up to about len ^ (k + 1) steps for a
-- pattern with k repetition items (* + - and %b; len ^ k when anchored
-- with ^): ("a"):rep(1e5):find(".-.-b") would never end. So find, match,
-- gmatch and gsub refuse a subject and pattern whose bound is over
-- PATTERN_STEPS (about a second at worst); plain finds are linear. Every
-- pattern the rule pack uses on codes, units and names is far below it.
local PATTERN_STEPS = 1e8
local str_byte, str_find, str_match, str_gmatch, str_gsub =
    string.byte, string.find, string.match, string.gmatch, string.gsub
local str_format, str_sub = string.format, string.sub

-- The rest of the string, table and utf8 libraries also work in C, out of
-- the hook's sight, for as long as their arguments say: string.rep('',
-- math.maxinteger), table.move({}, 1, math.maxinteger - 1, 2), a
-- table.insert on a table whose __len is huge. So each function that does
-- work in proportion to its arguments or its result is wrapped, and
-- charges the instruction budget by the size of that work (prim.charge):
-- about one instruction per element moved or compared, per 32 bytes
-- copied, per 16 repetitions of string.rep, per 64 byte comparisons a
-- find may make (subject length times pattern length). Work known before the call is
-- charged before it, so work over the budget, or over the hard ceiling
-- of one call (prim.charge: 1e8), is refused with an error naming the
-- function; work known only from the result (its length) was bounded by
-- the memory cap and is charged after it. Work below CHEAP instructions
-- (BYTES_FREE bytes) is not charged: the wrapper's own instructions pay.
-- What no wrapper can see (a loop of '..' on long strings, varargs copied
-- by the VM) is stopped by the deadline of each call (limits.rule_time_ms),
-- which the count hook checks.
local charge = prim.charge
local CHEAP, BYTES_FREE = 32, 256

-- The exponent of a pattern's worst case (0: linear), memoised: the rule
-- pack calls the same few patterns millions of times.
local pattern_exp, pattern_opt, pattern_exp_count = {}, {}, 0

local function exponent(p)
    local k, q, i, len = 0, 0, 1, #p
    while i <= len do
        local c = str_byte(p, i)
        if c == 37 then -- %x: an escape; %b is a repetition
            if str_byte(p, i + 1) == 98 then k = k + 1 end
            i = i + 2
        elseif c == 91 then -- a set [...]: its '-' are ranges
            i = i + 1
            if str_byte(p, i) == 94 then i = i + 1 end
            if str_byte(p, i) == 93 then i = i + 1 end
            while i <= len and str_byte(p, i) ~= 93 do
                i = i + (str_byte(p, i) == 37 and 2 or 1)
            end
            i = i + 1
        else
            if c == 42 or c == 43 or c == 45 then
                k = k + 1
            elseif c == 63 then -- '?': two ways to go on at each
                q = q + 1
            end
            i = i + 1
        end
    end
    if k == 0 and q == 0 then return 0, 0, 0 end
    return str_byte(p, 1) == 94 and k or k + 1, k, q
end

local function pattern_cost_ok(fname, s, p)
    if type(p) ~= "string" or (type(s) ~= "string" and type(s) ~= "number") then
        return -- the real function reports the bad argument
    end
    local e, q = pattern_exp[p], pattern_opt[p]
    local k
    if e == nil then
        e, k, q = exponent(p)
        if pattern_exp_count > 1000 then
            pattern_exp, pattern_opt, pattern_exp_count = {}, {}, 0
        end
        pattern_exp[p], pattern_opt[p] = e, q
        pattern_exp_count = pattern_exp_count + 1
    end
    local len = #tostring(s)
    -- The linear part, which the budget pays for: every start position
    -- may compare up to the pattern's length (a plain find too).
    local lin = len * (#p < len and #p or len) // 64
    if lin > CHEAP then charge(lin, fname) end
    if e == 0 and q == 0 then return end
    local n = len + 1
    if n ^ e * 2 ^ q > PATTERN_STEPS then
        if not k then k = select(2, exponent(p)) end
        error(str_format("%s: pattern '%s' with %d repetitions and %d optional "
            .. "items on %d bytes could run too long for a rule; use a shorter "
            .. "text or a simpler pattern", fname, str_sub(p, 1, 40), k, q,
            n - 1), 3)
    end
end

string.find = function(s, p, init, plain)
    if not plain then
        pattern_cost_ok("string.find", s, p)
    elseif type(s) == "string" and type(p) == "string" then
        local lin = #s * (#p < #s and #p or #s) // 64
        if lin > CHEAP then charge(lin, "string.find") end
    end
    return str_find(s, p, init, plain)
end
string.match = function(s, p, init)
    pattern_cost_ok("string.match", s, p)
    return str_match(s, p, init)
end
string.gmatch = function(s, p, init)
    pattern_cost_ok("string.gmatch", s, p)
    return str_gmatch(s, p, init)
end
string.gsub = function(s, p, repl, n)
    pattern_cost_ok("string.gsub", s, p)
    local r, count = str_gsub(s, p, repl, n)
    if #r > BYTES_FREE then charge(#r // 32, "string.gsub") end
    return r, count
end

-- The other string functions (see "The rest of the string ..." above);
-- string.len is O(1), string.dump is gone.
do
    local str_rep, str_lower, str_upper, str_reverse, str_char =
        string.rep, string.lower, string.upper, string.reverse, string.char
    local str_pack, str_unpack, str_packsize =
        string.pack, string.unpack, string.packsize
    local tointeger = math.tointeger

    -- Charges for a result string of n bytes.
    local function bytes(fname, r)
        if #r > BYTES_FREE then charge(#r // 32, fname) end
        return r
    end
    -- Charges one instruction per value returned.
    local function values(fname, ...)
        local n = select("#", ...)
        if n > CHEAP then charge(n, fname) end
        return ...
    end

    string.rep = function(s, n, sep)
        -- The count, not the result, is what costs with an empty string:
        -- charge the repetitions before; a non-empty result either fails
        -- to allocate before any copy or is bounded by the memory cap.
        local cn = tointeger(n)
        if cn and cn > CHEAP * 16 and (type(s) == "string" or type(s) == "number") then
            local l = #tostring(s) + (sep ~= nil and #tostring(sep) or 0)
            if l == 0 then
                charge(cn / 16, "string.rep")
                return str_rep(s, n, sep)
            end
            local r = str_rep(s, n, sep)
            charge(cn / 16 + #r / 32, "string.rep")
            return r
        end
        return bytes("string.rep", str_rep(s, n, sep))
    end
    string.lower = function(s) return bytes("string.lower", str_lower(s)) end
    string.upper = function(s) return bytes("string.upper", str_upper(s)) end
    string.reverse = function(s) return bytes("string.reverse", str_reverse(s)) end
    string.sub = function(s, i, j) return bytes("string.sub", str_sub(s, i, j)) end
    string.format = function(fmt, ...)
        return bytes("string.format", str_format(fmt, ...))
    end
    string.char = function(...) return bytes("string.char", str_char(...)) end
    string.byte = function(s, i, j) return values("string.byte", str_byte(s, i, j)) end
    string.pack = function(fmt, ...)
        if type(fmt) == "string" and #fmt > BYTES_FREE then
            charge(#fmt // 32, "string.pack")
        end
        return bytes("string.pack", str_pack(fmt, ...))
    end
    string.packsize = function(fmt)
        if type(fmt) == "string" and #fmt > BYTES_FREE then
            charge(#fmt // 32, "string.packsize")
        end
        return str_packsize(fmt)
    end
    string.unpack = function(fmt, ...)
        if type(fmt) == "string" and #fmt > BYTES_FREE then
            charge(#fmt // 32, "string.unpack")
        end
        return values("string.unpack", str_unpack(fmt, ...))
    end
end

local env = {}

-- The allowlist of base functions. Not here: load (a text-only version is
-- below), loadfile, dofile, collectgarbage, rawequal is harmless and kept,
-- require (the sandboxed one is below), print (goes to pv.log.info).
for _, name in ipairs {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "xpcall", "rawequal", "rawget", "rawlen",
    "rawset", "setmetatable", "getmetatable", "_VERSION",
} do
    env[name] = _G[name]
end

env.setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
        error("setmetatable: __gc is not allowed in rules", 2)
    end
    return setmetatable_unguarded(t, mt)
end

-- A message handler called for an error the budget hook raised runs with
-- hooks switched off, and could loop for ever. So the sandbox's xpcall
-- calls its handler after the stack has unwound, under the budget; with no
-- debug library a handler could not look at that stack anyway.
env.xpcall = function(f, msgh, ...)
    if type(msgh) ~= "function" then
        error("bad argument #2 to 'xpcall' (function expected)", 2)
    end
    local res = table_pack(pcall(f, ...))
    if res[1] then return table_unpack(res, 1, res.n) end
    local _, v = pcall(msgh, res[2])
    return false, v
end

local function copy(t)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
end

env.string = copy(string)
env.table = copy(table)
env.math = copy(math)
env.utf8 = copy(utf8)
env.coroutine = copy(coroutine)
-- The instruction hook counts per coroutine, and a fresh coroutine starts
-- a fresh count: a rule resuming many short coroutines would never be
-- charged. So every resume costs one hook step of the budget up front.
do
    local co_resume, co_create = coroutine.resume, coroutine.create
    env.coroutine.resume = function(co, ...)
        prim.charge()
        return co_resume(co, ...)
    end
    env.coroutine.wrap = function(f)
        local co = co_create(f)
        return function(...)
            prim.charge()
            local res = table_pack(co_resume(co, ...))
            if not res[1] then error(res[2], 0) end
            return table_unpack(res, 2, res.n)
        end
    end
end

-- The table functions (see "The rest of the string ..." above). A table
-- with a metatable may answer #t with anything, and differently each time
-- the C function asks: table.insert, table.remove and table.sort on such a
-- table run here in Lua, under the hook; concat and unpack ask for #t here,
-- once, and pass it on.
do
    local tbl_insert, tbl_remove, tbl_sort, tbl_move, tbl_concat =
        table.insert, table.remove, table.sort, table.move, table.concat
    local tointeger, ult, log = math.tointeger, math.ult, math.log
    local getmetatable, rawlen = getmetatable, rawlen

    local function len_of(t, fname)
        local n = tointeger(#t)
        if not n then error("table." .. fname .. ": object length is not an integer", 3) end
        return n
    end
    local function int_arg(v, i, fname)
        local n = tointeger(v)
        if not n then
            error(str_format("bad argument #%d to '%s' (number has no integer "
                .. "representation)", i, fname), 3)
        end
        return n
    end
    -- Charges for the elements first..last (any numbers; the C function
    -- checks their types after).
    local function span(first, last, fname)
        if type(first) == "number" and type(last) == "number" then
            local n = (last + 0.0) - first + 1
            if n > CHEAP then charge(n, fname) end
        end
    end

    env.table.insert = function(t, ...)
        if type(t) ~= "table" then return tbl_insert(t, ...) end
        if getmetatable(t) == nil then
            local n = rawlen(t)
            if n > CHEAP then charge(n, "table.insert") end
            return tbl_insert(t, ...)
        end
        local nargs = select("#", ...)
        local e = len_of(t, "insert") + 1
        if nargs == 1 then
            t[e] = ...
            return
        elseif nargs ~= 2 then
            error("wrong number of arguments to 'insert'", 2)
        end
        local pos, v = ...
        pos = int_arg(pos, 2, "insert")
        if not ult(pos - 1, e) then
            error("bad argument #2 to 'insert' (position out of bounds)", 2)
        end
        for i = e, pos + 1, -1 do t[i] = t[i - 1] end
        t[pos] = v
    end

    env.table.remove = function(t, pos)
        if type(t) ~= "table" then return tbl_remove(t, pos) end
        if getmetatable(t) == nil then
            local n = rawlen(t)
            if n > CHEAP then charge(n, "table.remove") end
            return tbl_remove(t, pos)
        end
        local size = len_of(t, "remove")
        if pos == nil then
            pos = size
        else
            pos = int_arg(pos, 2, "remove")
            if pos ~= size and ult(size, pos - 1) then
                error("bad argument #2 to 'remove' (position out of bounds)", 2)
            end
        end
        local v = t[pos]
        while pos < size do
            t[pos] = t[pos + 1]
            pos = pos + 1
        end
        t[pos] = nil
        return v
    end

    local function sort_cost(n)
        if n > 8 then charge(n * log(n, 2), "table.sort") end
    end
    env.table.sort = function(t, comp)
        if type(t) ~= "table" then return tbl_sort(t, comp) end
        if getmetatable(t) == nil then
            sort_cost(rawlen(t))
            return tbl_sort(t, comp)
        end
        -- Sort a plain copy, whose length cannot change, and write back.
        local n = len_of(t, "sort")
        if n < 2 then return end
        sort_cost(n)
        local c = {}
        for i = 1, n do c[i] = t[i] end
        tbl_sort(setmetatable_unguarded(c, { __len = function() return n end }), comp)
        for i = 1, n do t[i] = c[i] end
    end

    env.table.move = function(a1, f, e, t, a2)
        span(f, e, "table.move")
        return tbl_move(a1, f, e, t, a2)
    end

    env.table.concat = function(t, sep, i, j)
        if type(t) == "table" then
            if i == nil then i = 1 end
            if j == nil then j = getmetatable(t) == nil and rawlen(t) or len_of(t, "concat") end
            span(i, j, "table.concat")
        end
        local r = tbl_concat(t, sep, i, j)
        if #r > BYTES_FREE then charge(#r // 32, "table.concat") end
        return r
    end

    env.table.unpack = function(t, i, j)
        if type(t) == "table" then
            if i == nil then i = 1 end
            if j == nil then j = getmetatable(t) == nil and rawlen(t) or len_of(t, "unpack") end
            span(i, j, "table.unpack")
        end
        return table_unpack(t, i, j)
    end

    env.table.pack = function(...)
        local n = select("#", ...)
        if n > CHEAP then charge(n, "table.pack") end
        return table_pack(...)
    end
end

-- utf8: char and codepoint make or return one value per code point; len
-- and offset scan the string.
do
    local u_char, u_codepoint, u_len, u_offset =
        utf8.char, utf8.codepoint, utf8.len, utf8.offset
    local function scan(s, fname)
        if type(s) == "string" and #s > BYTES_FREE then charge(#s // 32, fname) end
    end
    local function values(...)
        local n = select("#", ...)
        if n > CHEAP then charge(n, "utf8.codepoint") end
        return ...
    end
    env.utf8.char = function(...)
        local n = select("#", ...)
        if n > CHEAP then charge(n, "utf8.char") end
        return u_char(...)
    end
    env.utf8.codepoint = function(s, ...) return values(u_codepoint(s, ...)) end
    env.utf8.len = function(s, ...)
        scan(s, "utf8.len")
        return u_len(s, ...)
    end
    env.utf8.offset = function(s, ...)
        scan(s, "utf8.offset")
        return u_offset(s, ...)
    end
end

do
    local os_date = os.date
    env.os = {
        time = os.time,
        clock = os.clock,
        date = function(fmt, ...)
            if type(fmt) == "string" and #fmt > CHEAP then
                charge(#fmt, "os.date")
            end
            return os_date(fmt, ...)
        end,
    }
end
env._G = env

-- load() only for text chunks, and only into the sandbox (or an env the
-- caller passes, which is itself built from sandboxed values).
env.load = function(chunk, name, mode, e)
    if mode ~= nil and mode ~= "t" then
        return nil, "only text chunks may be loaded"
    end
    return load(chunk, name, "t", e or env)
end

-- The site module (issue 21, docs/rules.md "Site code sets"): a module
-- named "site" in a scripts directory, if there is one, is loaded right
-- after scripts/codes.lua, in every plugin's state, and may call
-- codes.extend; then the code sets are sealed (codes.seal). So every rule,
-- and the gate in rules.c (host.gate_match), sees the same extended sets,
-- and no plugin can change them for itself. An error in the site module
-- is a load error of every plugin that uses the codes.
local codes_sealed, site_error = false, nil
local function require_module(name)
    local m = prim.require(name, env)
    if name == "codes" then
        if site_error then error(site_error, 0) end
        if not codes_sealed then
            codes_sealed = true
            if type(m) == "table" then
                -- A failure is remembered: the codes are never handed out
                -- without the site's extensions.
                local ok, err = pcall(prim.require, "site", env, true)
                if not ok then
                    site_error = "site module: " .. tostring(err)
                    error(site_error, 0)
                end
                if type(m.seal) == "function" then m.seal() end
            end
        end
    end
    return m
end

env.require = function(name)
    return require_module(name)
end

----------------------------------------------------------------------------
-- Times
----------------------------------------------------------------------------

local DAY = 86400

local function to_time(v, what)
    if type(v) == "number" then return v end
    if type(v) == "string" then
        local t = prim.time_parse(v)
        if t then return t end
        error(string_format("%s: '%s' is not a valid time", what, v), 3)
    end
    error(string_format("%s: expected a time (number or string), got %s", what, type(v)), 3)
end

----------------------------------------------------------------------------
-- Codes: a code, a list of codes, or the name of a set in scripts/codes.lua
----------------------------------------------------------------------------

local codes_module
local function codes()
    if codes_module == nil then
        local ok, m = pcall(require_module, "codes")
        if not ok and not tostring(m):find("module 'codes' not found", 1, true) then
            error(m, 0) -- a broken codes.lua or site module: say so
        end
        codes_module = ok and type(m) == "table" and m or false
    end
    return codes_module or nil
end

-- Expands a code spec into a flat list of codes. 'kind' is "lab" (LOINC
-- sets of codes.lua) or "event" (ICD-10-CM sets, kept as prefixes).
local function expand(spec, out, kind)
    out = out or {}
    kind = kind or "lab"
    if spec == nil then return out end
    if type(spec) == "table" then
        for _, s in ipairs(spec) do expand(s, out, kind) end
        return out
    end
    if type(spec) ~= "string" then
        error("a code must be a string, got " .. type(spec), 3)
    end
    -- Only a lower-case word can be a set name: literal codes do not load
    -- scripts/codes.lua (a small rule's state stays small).
    local m = spec:match("^[a-z_]+$") and codes() or nil
    local set
    if m then
        if kind == "lab" and m.loinc_set then set = m.loinc_set(spec) end
        if kind == "event" and m.icd_set then set = m.icd_set(spec) end
    end
    if set then
        for _, c in ipairs(set) do out[#out + 1] = c end
    elseif spec:match("^[a-z_]+$") then
        -- Codes are digits (LOINC) or upper-case (ICD-10-CM): a lower-case
        -- word is a set name, and a misspelt one must not pass silently.
        error(("unknown code set '%s' (see scripts/codes.lua)"):format(spec), 3)
    else
        out[#out + 1] = spec
    end
    return out
end

----------------------------------------------------------------------------
-- Facts
----------------------------------------------------------------------------

-- The metatables of labs and patients are out of the rules' reach: the
-- methods live in their own table (so obs.__index is nil, not the
-- metatable) and __metatable makes getmetatable give false. Nobody can add
-- a __gc to them, so the objects made with them need not go through the
-- guarded setmetatable above (a rawset on every fact and patient object).
local Obs = {}
local ObsMT = { __index = Obs, __metatable = false }

--- obs:value_in(unit) -> number: the value converted to 'unit'. Raises an
--- error for a unit it does not know, rather than guessing.
function Obs:value_in(unit)
    if self.value == nil then
        error(string_format("lab %s has no numeric value ('%s')", tostring(self.code),
            tostring(self.value_text)), 2)
    end
    if self.unit == unit then return self.value end
    local ok, units = pcall(prim.require, "units", env)
    if not ok or type(units) ~= "table" then
        error("unit conversion needs scripts/units.lua", 2)
    end
    local v, err = units.convert(self.value, self.unit, unit, self.code)
    if v == nil then error(err or "cannot convert units", 2) end
    return v
end

local function lab(row)
    return setmetatable_unguarded(row, ObsMT)
end

----------------------------------------------------------------------------
-- The patient
----------------------------------------------------------------------------

local Patient = {}
local PatientMT = { __index = Patient, __metatable = false }

local function hist_opts(opts, now)
    opts = opts or {}
    local since, till = opts.since, opts["until"]
    if opts.days then since = (till and to_time(till, "until") or now) - opts.days * DAY end
    return since and to_time(since, "since") or nil,
        till and to_time(till, "until") or nil,
        opts.limit
end

--- patient:labs(codes, opts) -> list of labs, newest first.
function Patient:labs(spec, opts)
    local since, till, limit = hist_opts(opts, self._at or prim.now())
    local rows = prim.labs(self.id, spec and expand(spec) or nil, since, till, limit)
    for i = 1, #rows do lab(rows[i]) end
    return rows
end

--- patient:latest(codes) -> the newest lab of those codes, or nil.
function Patient:latest(spec, before)
    return self:labs(spec, { limit = 1, ["until"] = before or self._at })[1]
end

--- patient:baseline(codes, before) -> the newest lab strictly before 'before'.
function Patient:baseline(spec, before)
    before = to_time(before or self._at or prim.now(), "before")
    return self:labs(spec, { limit = 1, ["until"] = before - 1 })[1]
end

--- patient:events(codes, opts) -> list of events, newest first. Codes here
--- may be ICD-10-CM prefixes or set names ("vte"); nil means all events.
function Patient:events(spec, opts)
    local since, till, limit = hist_opts(opts, self._at or prim.now())
    local rows = prim.events(self.id, nil, since, till, nil)
    if spec == nil then
        if limit then
            local r = {}
            for i = 1, math.min(limit, #rows) do r[i] = rows[i] end
            return r
        end
        return rows
    end
    local prefixes = {}
    for _, p in ipairs(expand(spec, nil, "event")) do
        prefixes[#prefixes + 1] = (p:upper():gsub("%.", ""))
    end
    local out = {}
    for _, e in ipairs(rows) do
        local c = (e.code or ""):upper():gsub("%.", "")
        for _, p in ipairs(prefixes) do
            if c:sub(1, #p) == p then out[#out + 1] = e break end
        end
        if limit and #out >= limit then break end
    end
    return out
end

local function drug_matches(query, e)
    local m = codes()
    if m and m.drug_matches then return m.drug_matches(query, e) end
    return (e.drug or ""):lower():find(query:lower(), 1, true) ~= nil
end

--- patient:exposures(drug) -> list of exposures to that drug, oldest first.
-- Exposures change rarely and nearly every rule asks for them, so they are
-- cached per patient (and per drug query) until the store's exposure
-- generation moves on (a new exposure, or a rolled-back transaction).
-- Callers get copies of the list, so a rule cannot spoil the cache.
local exposure_cache, exposure_cache_gen, exposure_cache_size = {}, -1, 0
local EXPOSURE_CACHE_MAX = 4096

-- The store's exposure generation, read once per rule call by host.call
-- and host.tick (exposures do not change while a rule runs).
local call_gen

local function cached_exposures(id, drug)
    local gen = call_gen or prim.exposure_gen()
    if gen ~= exposure_cache_gen or exposure_cache_size > EXPOSURE_CACHE_MAX then
        exposure_cache, exposure_cache_gen, exposure_cache_size = {}, gen, 0
    end
    local per = exposure_cache[id]
    if not per then
        per = { all = prim.exposures(id) }
        exposure_cache[id] = per
        exposure_cache_size = exposure_cache_size + 1
    end
    local key = drug or "\0all"
    local list = per[key]
    if not list then
        list = {}
        for _, e in ipairs(per.all) do
            if drug == nil or drug_matches(drug, e) then list[#list + 1] = e end
        end
        per[key] = list
    end
    return list
end

-- A copy of a cached exposure: every field exposure_row() in rules.c sets,
-- in one constructor (no rehash as copy() would do, and far cheaper: nearly
-- every rule call asks for an exposure).
local function copy_exposure(e)
    return {
        id = e.id, patient_id = e.patient_id, drug = e.drug, drug_code = e.drug_code,
        code_system = e.code_system, dose = e.dose, dose_unit = e.dose_unit,
        route = e.route, start = e.start, at = e.at, ["end"] = e["end"],
        start_source = e.start_source, _kind = e._kind, kind = e.kind,
    }
end

function Patient:exposures(drug)
    local list = cached_exposures(self.id, drug)
    local out = {}
    for i = 1, #list do out[i] = copy_exposure(list[i]) end
    return out
end

-- An exposure covers its start instant up to the end of its last day plus
-- the washout (exposure.washout_days): a dose on day D still counts on day
-- D + washout. With no end it is open-ended.
local function covers(e, at)
    if at < e.start then return false end
    if e["end"] == nil then return true end
    local last_day = math_floor(e["end"] / DAY) * DAY
    return at < last_day + (settings.washout_days + 1) * DAY
end

--- patient:exposed(drug, at) -> true, exposure | false
function Patient:exposed(drug, at)
    at = to_time(at or self._at or prim.now(), "at")
    for _, e in ipairs(cached_exposures(self.id, drug)) do
        if covers(e, at) then return true, copy_exposure(e) end
    end
    return false
end

--- patient:current(drug, at) -> exposure, taking | nil. Of the exposures
--- that cover 'at' (as exposed() counts them, washout included), the one
--- in force: one still being taken at 'at' (before the end of its last
--- day) wins over one only in its washout, then the latest start. After a
--- dose change this is the new dose, where exposed() returns the oldest.
--- 'taking' is false when 'at' lies only in the washout.
function Patient:current(drug, at)
    at = to_time(at or self._at or prim.now(), "at")
    local best, best_taking
    for _, e in ipairs(self:exposures(drug)) do
        if covers(e, at) then
            local taking = e["end"] == nil or at < math_floor(e["end"] / DAY) * DAY + DAY
            if best == nil or (taking and not best_taking)
                or (taking == best_taking and e.start >= best.start) then
                best, best_taking = e, taking
            end
        end
    end
    if best == nil then return nil end
    return best, best_taking
end

--- patient:course_start(drug, exposure) -> time, first exposure: the start
--- of the continuous course 'exposure' belongs to. An earlier exposure
--- that still covers the second before it starts (washout included) makes
--- it a continuation (a refill, a dose change, a short interruption).
--- course_start(drug, e) == e.start means 'e' is an initiation.
function Patient:course_start(drug, exposure)
    local list = self:exposures(drug)
    local start, first = exposure.start, exposure
    local moved = true
    while moved do
        moved = false
        for _, e in ipairs(list) do -- oldest first
            if e.start < start and covers(e, start - 1) then
                start, first, moved = e.start, e, true
                break
            end
        end
    end
    return start, first
end

--- patient:age(at) -> whole years, or nil when the birth date is unknown.
function Patient:age(at)
    local p = prim.patient(self.id)
    if not p or not p.birth_date then return nil end
    at = to_time(at or self._at or prim.now(), "at")
    local b = os.date("!*t", p.birth_date)
    local n = os.date("!*t", at)
    local years = n.year - b.year
    if n.month < b.month or (n.month == b.month and n.day < b.day) then years = years - 1 end
    return years
end

----------------------------------------------------------------------------
-- pv
----------------------------------------------------------------------------

local pv = {}
env.pv = pv

-- Rules and alerts are known by a private key, not by their metatable: a
-- rule could read a metatable that getmetatable returned, and forge an
-- alert with it that pv.alert never checked (issue 22 items 2 and 5).
-- Their metatables are closed (__metatable), and what C reads are plain
-- copies that host code makes.
local trigger_codes, trigger_drugs -- defined with pv.rule below
local made_rules = setmetatable({}, { __mode = "k" })
local made_alerts = setmetatable({}, { __mode = "k" })
local RuleMT = { __name = "pv.rule", __metatable = false }
local AlertMT = { __name = "pv.alert", __metatable = false }
local RULE_FIELDS = { name = true, signal = true, description = true, on = true,
    every = true, when = true, needs_exposure = true, label = true, severities = true }
local SEVERITY = { low = 1, medium = 2, high = 3, critical = 4 }
local ALERT_FIELDS = { severity = true, title = true, grade = true, detail = true,
    action = true, key = true, evidence = true }

local function check_field(t, k, ty, required, what)
    local v = t[k]
    if v == nil then
        if required then error(string_format("%s: '%s' is required", what, k), 3) end
        return
    end
    if type(v) ~= ty then
        error(string_format("%s: '%s' must be a %s, not %s", what, k, ty, type(v)), 3)
    end
end

-- The trigger of a rule as a listing shows it: "lab: neutrophils;
-- exposure: baricitinib", the names the plugin gave (sets unexpanded),
-- long lists cut after 4 names ("+N more").
local function trigger_text(spec)
    local function names(v)
        if type(v) ~= "table" then return tostring(v) end
        local out = {}
        for i = 1, math.min(#v, 4) do out[i] = tostring(v[i]) end
        if #v > 4 then out[#out + 1] = string_format("+%d more", #v - 4) end
        return table_concat(out, ", ")
    end
    if spec.every ~= nil then return "every " .. tostring(spec.every) end
    if type(spec.on) ~= "table" then return nil end
    local parts = {}
    for _, k in ipairs({ "lab", "event", "exposure" }) do
        if spec.on[k] ~= nil then parts[#parts + 1] = k .. ": " .. names(spec.on[k]) end
    end
    return table_concat(parts, "; ")
end

-- Triggers that can never fire are load errors (issue 21): an empty
-- name or code, an empty list, an unknown set name, a drug no code set
-- knows. The message names the rule; pv.rule's error names the file.
local function where_stripped(msg)
    return (tostring(msg):gsub("^[^\n]-:%d+: ", ""))
end

local function trigger_list(spec, field, what)
    if type(spec) == "string" then spec = { spec } end
    if type(spec) ~= "table" then
        error(string_format("%s: on.%s must be a name or a list of them, not %s",
            what, field, type(spec)), 4)
    end
    if rawlen(spec) == 0 then
        error(string_format("%s: on.%s is an empty list: the trigger could never fire",
            what, field), 4)
    end
    for i = 1, rawlen(spec) do
        local v = rawget(spec, i)
        if type(v) ~= "string" then
            error(string_format("%s: on.%s[%d] must be a string, not %s", what, field, i,
                type(v)), 4)
        end
        if not v:find("%S") then
            error(string_format("%s: on.%s%s is empty: the trigger could never fire",
                what, field, rawlen(spec) > 1 and "[" .. i .. "]" or ""), 4)
        end
    end
    return spec
end

-- on.lab / on.event: codes and set names, expanded.
function trigger_codes(spec, kind, what)
    if spec == nil then return nil end
    local list = trigger_list(spec, kind, what)
    for i = 1, #list do
        -- A broken codes.lua or site module says so itself, unwrapped.
        if list[i]:match("^[a-z_]+$") then codes() break end
    end
    local ok, out = pcall(expand, list, nil, kind)
    if not ok then
        error(string_format("%s: on.%s: %s", what, kind, where_stripped(out)), 3)
    end
    if #out == 0 then
        error(string_format("%s: on.%s names no code: the trigger could never fire",
            what, kind), 3)
    end
    return out
end

-- on.exposure: drug names (and drug sets) scripts/codes.lua knows.
function trigger_drugs(spec, what)
    if spec == nil then return nil end
    local list = trigger_list(spec, "exposure", what)
    local m = codes()
    local out = {}
    for i = 1, rawlen(list) do
        local name = rawget(list, i)
        if m and m.drug_known and not m.drug_known(name) then
            error(string_format("%s: on.exposure '%s' is a drug no code set knows "
                .. "(scripts/codes.lua): the trigger would match only drug text "
                .. "containing it; check the spelling, or add the drug in the "
                .. "site module: codes.extend(\"drugs\", { { name = \"%s\", atc = "
                .. "{ ... } } }) (docs/rules.md, \"Site code sets\")",
                what, name, name:lower()), 3)
        end
        out[i] = name
    end
    return out
end

--- pv.rule { name, signal, description, label, severities,
---           on = { lab|event|exposure = codes }, every, when }
function pv.rule(spec)
    if type(spec) ~= "table" then error("pv.rule takes a table", 2) end
    check_field(spec, "name", "string", true, "pv.rule")
    local what = "rule " .. spec.name
    -- A misspelt field ("descripton") must not vanish silently.
    for k in pairs(spec) do
        if not RULE_FIELDS[k] then
            error(string_format("%s: unknown field '%s' (name, signal, description, "
                .. "label, severities, on, every, needs_exposure, when)", what, tostring(k)), 2)
        end
    end
    check_field(spec, "description", "string", false, what)
    -- label: the label sentence the rule enforces; severities: the ones
    -- it can raise. Both optional, for listings only ('pvwatch rules',
    -- docs/rules.md); they change nothing in how the rule runs.
    check_field(spec, "label", "string", false, what)
    check_field(spec, "severities", "table", false, what)
    local severities
    if spec.severities ~= nil then
        local names = {}
        for i, v in ipairs(spec.severities) do
            if not SEVERITY[v] then
                error(string_format(
                    "%s: severities[%d] must be low, medium, high or critical, not '%s'",
                    what, i, tostring(v)), 2)
            end
            names[i] = v
        end
        severities = table_concat(names, ", ")
    end
    check_field(spec, "signal", "string", true, what)
    check_field(spec, "when", "function", true, what)
    -- needs_exposure = false: labs and events reach when() even for a
    -- patient with no exposure that on.exposure names (issue 17; rules.c,
    -- gate_pass). Only with on.exposure, where the gate applies.
    check_field(spec, "needs_exposure", "boolean", false, what)
    if spec.needs_exposure ~= nil and (type(spec.on) ~= "table" or spec.on.exposure == nil) then
        error(what .. ": 'needs_exposure' goes with on.exposure", 2)
    end
    if spec.on == nil and spec.every == nil then
        error(what .. ": needs 'on' (lab, event, exposure) or 'every'", 2)
    end
    if spec.on ~= nil and spec.every ~= nil then
        error(what .. ": takes 'on' or 'every', not both (when() differs)", 2)
    end
    local r = setmetatable({ name = spec.name, signal = spec.signal, when = spec.when,
        description = spec.description, every = spec.every,
        label = spec.label, severities = severities, trigger = trigger_text(spec),
        needs_exposure = spec.needs_exposure ~= false }, RuleMT)
    if spec.on ~= nil then
        if type(spec.on) ~= "table" then error(what .. ": 'on' must be a table", 2) end
        for k in pairs(spec.on) do
            if k ~= "lab" and k ~= "event" and k ~= "exposure" then
                error(string_format("%s: unknown trigger '%s' (lab, event, exposure)", what,
                    tostring(k)), 2)
            end
        end
        r.labs = trigger_codes(spec.on.lab, "lab", what)
        r.events = trigger_codes(spec.on.event, "event", what)
        r.exposures = trigger_drugs(spec.on.exposure, what)
        if not (r.labs or r.events or r.exposures) then
            error(what .. ": 'on' names no trigger (lab, event, exposure): the "
                .. "rule could never run", 2)
        end
    end
    if spec.every ~= nil then
        local n, u = tostring(spec.every):match("^(%d+)([smhd])$")
        if not n then error(what .. ": 'every' must look like \"1d\", \"6h\", \"30m\"", 2) end
        r.every_seconds = tonumber(n) * ({ s = 1, m = 60, h = 3600, d = DAY })[u]
        if not (r.every_seconds >= 1 and r.every_seconds <= 366 * DAY) then
            error(what .. ": 'every' must be from 1s to 366d", 2)
        end
    end
    made_rules[r] = true
    return r
end

--- pv.alert { severity, title, grade, detail, action, key, evidence }
function pv.alert(a)
    if type(a) ~= "table" then error("pv.alert takes a table", 2) end
    check_field(a, "severity", "string", true, "pv.alert")
    if not SEVERITY[a.severity] then
        error("pv.alert: severity must be low, medium, high or critical, not '"
            .. a.severity .. "'", 2)
    end
    check_field(a, "title", "string", true, "pv.alert")
    check_field(a, "grade", "number", false, "pv.alert")
    check_field(a, "detail", "string", false, "pv.alert")
    check_field(a, "action", "string", false, "pv.alert")
    if a.key ~= nil and type(a.key) ~= "string" and type(a.key) ~= "number" then
        error("pv.alert: key must be a string or a number", 2)
    end
    if a.evidence ~= nil and type(a.evidence) ~= "table" then
        error("pv.alert: evidence must be a list of facts", 2)
    end
    -- A misspelt field ("actoin") must not vanish silently.
    for k in pairs(a) do
        if not ALERT_FIELDS[k] then
            error(("pv.alert: unknown field '%s' (severity, title, grade, "
                .. "detail, action, key, evidence)"):format(tostring(k)), 2)
        end
    end
    local made = setmetatable_unguarded(copy(a), AlertMT)
    made_alerts[made] = true
    return made
end

pv.log = {
    info = function(...) prim.log("info", select("#", ...), ...) end,
    warn = function(...) prim.log("warn", select("#", ...), ...) end,
}
env.print = pv.log.info

--- pv.time(text) -> seconds since the epoch (UTC), or nil, error.
function pv.time(s)
    local t = prim.time_parse(s)
    if t then return t end
    return nil, "not a valid time: " .. tostring(s)
end

--- pv.iso(t) -> "2026-01-31T14:05:00Z"; pv.date(t) -> "2026-01-31".
function pv.iso(t) return prim.time_format(to_time(t, "pv.iso")) end
function pv.date(t) return prim.time_format(to_time(t, "pv.date")):sub(1, 10) end
function pv.now() return prim.now() end

pv.days = DAY
pv.label = { indication = settings.indication, region = settings.region }
pv.exposure = { washout_days = settings.washout_days,
    rituximab_days = settings.rituximab_days }

pv.state = {
    get = function(key) return prim.state_get(tostring(key)) end,
    set = function(key, value)
        if value ~= nil and type(value) ~= "string" and type(value) ~= "number"
            and type(value) ~= "boolean" then
            error("pv.state.set: value must be a string, number or boolean", 2)
        end
        prim.state_set(tostring(key), value ~= nil and tostring(value) or nil)
    end,
}

pv.codes = setmetatable({}, {
    __index = function(_, k)
        local m = codes()
        if not m then return nil end
        return (m.loinc_set and m.loinc_set(k)) or (m.icd_set and m.icd_set(k)) or m[k]
    end,
})

----------------------------------------------------------------------------
-- What rules.c calls
----------------------------------------------------------------------------

local host = {}

-- The plain record of a rule that C reads and host.call runs: copied once,
-- at registration, so that what the plugin does to its rule objects later
-- changes nothing.
local function record(r, file)
    if type(rawget(r, "name")) ~= "string" or type(rawget(r, "signal")) ~= "string"
        or type(rawget(r, "when")) ~= "function" then
        error(string_format("%s: a rule lost its name, signal or when after pv.rule", file), 0)
    end
    local function strings(list)
        if list == nil then return nil end
        local out = {}
        for i = 1, #list do out[i] = list[i] end
        return out
    end
    local function str(k)
        local v = rawget(r, k)
        return type(v) == "string" and v or nil
    end
    return { name = rawget(r, "name"), signal = rawget(r, "signal"),
        description = str("description"), label = str("label"),
        severities = str("severities"), trigger = str("trigger"),
        when = rawget(r, "when"), labs = strings(rawget(r, "labs")),
        events = strings(rawget(r, "events")),
        exposures = strings(rawget(r, "exposures")),
        needs_exposure = rawget(r, "needs_exposure") ~= false,
        every_seconds = rawget(r, "every_seconds") }
end

-- Checks what a plugin file returned: one rule or a list of rules.
function host.register(result, file)
    if made_rules[result] then return { record(result, file) } end
    if type(result) ~= "table" then
        error(string_format("%s must return pv.rule{...} or a list of them, not %s", file,
            type(result)), 0)
    end
    local list = {}
    for i = 1, rawlen(result) do
        local r = rawget(result, i)
        if not made_rules[r] then
            error(string_format("%s: item %d of the returned list is not a pv.rule", file, i), 0)
        end
        list[#list + 1] = record(r, file)
    end
    if #list == 0 then error(file .. " returned no rules", 0) end
    return list
end

local function normalise(rule, a, fact)
    if not made_alerts[a] then
        error(string_format("rule %s returned a %s; return pv.alert{...}, a list of them, or nil",
            rule.name, type(a)), 0)
    end
    -- pv.alert checked the fields, but the rule holds the table and may
    -- have changed them since; C checks again what it stores.
    local sev, title = rawget(a, "severity"), rawget(a, "title")
    if not SEVERITY[sev] then
        error(string_format(
            "rule %s: alert severity must be low, medium, high or critical, not '%s'",
            rule.name, tostring(sev)), 0)
    end
    if type(title) ~= "string" then
        error(string_format("rule %s: alert title must be a string", rule.name), 0)
    end
    local grade = rawget(a, "grade")
    if grade ~= nil and (type(grade) ~= "number" or grade ~= grade or grade < 1 or grade >= 6) then
        error(string_format("rule %s: alert grade must be from 1 to 5, not %s", rule.name,
            tostring(grade)), 0)
    end
    local ev = {}
    local list = a.evidence or (fact and { fact } or {})
    for _, f in ipairs(list) do
        ev[#ev + 1] = {
            kind = f._kind or "lab", id = f.id, code = f.code or f.drug_code or f.drug,
            value = f.value or f.value_text or f.dose, unit = f.unit or f.dose_unit,
            at = f.at or f.start or f.onset,
        }
    end
    return {
        severity = sev, title = title, grade = grade and math_floor(grade) or nil,
        detail = a.detail, action = a.action,
        key = a.key ~= nil and tostring(a.key) or "default",
        evidence = ev,
    }
end

-- The result of a call that raised nothing, shared (most calls raise
-- nothing; rules.c only reads the list and no rule can reach it).
local NONE = {}

-- Runs one rule on one fact; returns a list of normalised alerts.
function host.call(rule, kind, fact)
    call_gen = prim.exposure_gen()
    if fact then
        fact._kind = kind
        fact.kind = kind
        if kind == "lab" then lab(fact) end
        if kind == "exposure" then fact.at = fact.start end
        if kind == "event" then fact.at = fact.onset end
    end
    local patient = setmetatable_unguarded({ id = fact and fact.patient_id,
        _at = fact and fact.at }, PatientMT)
    if kind == "exposure" and rule.exposures then
        local wanted = false
        for _, d in ipairs(rule.exposures) do
            if drug_matches(d, fact) then wanted = true break end
        end
        if not wanted then return NONE end
    end
    local res = rule.when(fact, patient)
    if res == nil or res == false then return NONE end
    local out = {}
    if made_alerts[res] then
        out[1] = normalise(rule, res, fact)
    elseif type(res) == "table" then
        for _, a in ipairs(res) do out[#out + 1] = normalise(rule, a, fact) end
    else
        out[1] = normalise(rule, res, fact)
    end
    return out
end

-- The gate's question (rules.c, gate_pass): would an exposure of this
-- drug text, drug code and code system trigger the rule, as host.call
-- matches exposure triggers? Labs and events of a patient with no such
-- exposure do not reach a rule that names drugs in on.exposure.
function host.gate_match(rule, drug, drug_code, code_system)
    local e = { drug = drug, drug_code = drug_code, code_system = code_system }
    for _, d in ipairs(rule.exposures or {}) do
        if drug_matches(d, e) then return true end
    end
    return false
end

-- Scheduled rules get the patient and the current time instead of a fact.
function host.tick(rule, patient_id, now)
    call_gen = prim.exposure_gen()
    local patient = setmetatable_unguarded({ id = patient_id, _at = now }, PatientMT)
    local res = rule.when(patient, now)
    if res == nil or res == false then return NONE end
    if made_alerts[res] then return { normalise(rule, res, nil) } end
    local out = {}
    for _, a in ipairs(res) do out[#out + 1] = normalise(rule, a, nil) end
    return out
end

host.expand = expand
host.env = env
return host
