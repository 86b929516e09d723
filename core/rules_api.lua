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
local function setmetatable(t, mt)
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

-- The exponent of a pattern's worst case (0: linear), memoised: the rule
-- pack calls the same few patterns millions of times.
local pattern_exp, pattern_exp_count = {}, 0

local function exponent(p)
    local k, i, len = 0, 1, #p
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
            if c == 42 or c == 43 or c == 45 then k = k + 1 end
            i = i + 1
        end
    end
    if k == 0 then return 0, 0 end
    return str_byte(p, 1) == 94 and k or k + 1, k
end

local function pattern_cost_ok(fname, s, p)
    if type(p) ~= "string" or (type(s) ~= "string" and type(s) ~= "number") then
        return -- the real function reports the bad argument
    end
    local e = pattern_exp[p]
    local k
    if e == nil then
        e, k = exponent(p)
        if pattern_exp_count > 1000 then pattern_exp, pattern_exp_count = {}, 0 end
        pattern_exp[p] = e
        pattern_exp_count = pattern_exp_count + 1
    end
    if e == 0 then return end
    local n = #tostring(s) + 1
    if n ^ e > PATTERN_STEPS then
        if not k then k = select(2, exponent(p)) end
        error(string.format("%s: pattern '%s' with %d repetitions on %d bytes "
            .. "could run too long for a rule; use a shorter text or a "
            .. "simpler pattern", fname, p:sub(1, 40), k, n - 1), 3)
    end
end

string.find = function(s, p, init, plain)
    if not plain then pattern_cost_ok("string.find", s, p) end
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
    return str_gsub(s, p, repl, n)
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
    local co_resume, co_wrap, co_create = coroutine.resume, coroutine.wrap, coroutine.create
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
env.os = { time = os.time, date = os.date, clock = os.clock }
env._G = env

-- load() only for text chunks, and only into the sandbox (or an env the
-- caller passes, which is itself built from sandboxed values).
env.load = function(chunk, name, mode, e)
    if mode ~= nil and mode ~= "t" then
        return nil, "only text chunks may be loaded"
    end
    return load(chunk, name, "t", e or env)
end

env.require = function(name)
    return prim.require(name, env)
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
        local ok, m = pcall(prim.require, "codes", env)
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
    local m = codes()
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
        _kind = e._kind, kind = e.kind,
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

local RuleMT = { __name = "pv.rule" }
local AlertMT = { __name = "pv.alert" }
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

--- pv.rule { name, signal, on = { lab|event|exposure = codes }, every, when }
function pv.rule(spec)
    if type(spec) ~= "table" then error("pv.rule takes a table", 2) end
    check_field(spec, "name", "string", true, "pv.rule")
    local what = "rule " .. spec.name
    check_field(spec, "signal", "string", true, what)
    check_field(spec, "when", "function", true, what)
    if spec.on == nil and spec.every == nil then
        error(what .. ": needs 'on' (lab, event, exposure) or 'every'", 2)
    end
    if spec.on ~= nil and spec.every ~= nil then
        error(what .. ": takes 'on' or 'every', not both (when() differs)", 2)
    end
    local r = setmetatable({ name = spec.name, signal = spec.signal, when = spec.when,
        description = spec.description, every = spec.every }, RuleMT)
    if spec.on ~= nil then
        if type(spec.on) ~= "table" then error(what .. ": 'on' must be a table", 2) end
        for k in pairs(spec.on) do
            if k ~= "lab" and k ~= "event" and k ~= "exposure" then
                error(string_format("%s: unknown trigger '%s' (lab, event, exposure)", what, tostring(k)), 2)
            end
        end
        r.labs = spec.on.lab and expand(spec.on.lab) or nil
        r.events = spec.on.event and expand(spec.on.event, nil, "event") or nil
        if spec.on.exposure ~= nil then
            r.exposures = type(spec.on.exposure) == "table" and spec.on.exposure or { spec.on.exposure }
        end
    end
    if spec.every ~= nil then
        local n, u = tostring(spec.every):match("^(%d+)([smhd])$")
        if not n then error(what .. ": 'every' must look like \"1d\", \"6h\", \"30m\"", 2) end
        r.every_seconds = tonumber(n) * ({ s = 1, m = 60, h = 3600, d = DAY })[u]
    end
    return r
end

--- pv.alert { severity, title, grade, detail, action, key, evidence }
function pv.alert(a)
    if type(a) ~= "table" then error("pv.alert takes a table", 2) end
    check_field(a, "severity", "string", true, "pv.alert")
    if not SEVERITY[a.severity] then
        error("pv.alert: severity must be low, medium, high or critical, not '" .. a.severity .. "'", 2)
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
    return setmetatable(copy(a), AlertMT)
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
pv.exposure = { washout_days = settings.washout_days }

pv.state = {
    get = function(key) return prim.state_get(tostring(key)) end,
    set = function(key, value)
        if value ~= nil and type(value) ~= "string" and type(value) ~= "number" and type(value) ~= "boolean" then
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

-- Checks what a plugin file returned: one rule or a list of rules.
function host.register(result, file)
    if getmetatable(result) == RuleMT then return { result } end
    if type(result) ~= "table" then
        error(string_format("%s must return pv.rule{...} or a list of them, not %s", file, type(result)), 0)
    end
    local list = {}
    for i, r in ipairs(result) do
        if getmetatable(r) ~= RuleMT then
            error(string_format("%s: item %d of the returned list is not a pv.rule", file, i), 0)
        end
        list[#list + 1] = r
    end
    if #list == 0 then error(file .. " returned no rules", 0) end
    return list
end

local function normalise(rule, a, fact)
    if getmetatable(a) ~= AlertMT then
        error(string_format("rule %s returned a %s; return pv.alert{...}, a list of them, or nil",
            rule.name, type(a)), 0)
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
        severity = a.severity, title = a.title, grade = a.grade and math_floor(a.grade) or nil,
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
    local patient = setmetatable_unguarded({ id = fact and fact.patient_id, _at = fact and fact.at }, PatientMT)
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
    if getmetatable(res) == AlertMT then
        out[1] = normalise(rule, res, fact)
    elseif type(res) == "table" then
        for _, a in ipairs(res) do out[#out + 1] = normalise(rule, a, fact) end
    else
        out[1] = normalise(rule, res, fact)
    end
    return out
end

-- Scheduled rules get the patient and the current time instead of a fact.
function host.tick(rule, patient_id, now)
    call_gen = prim.exposure_gen()
    local patient = setmetatable_unguarded({ id = patient_id, _at = now }, PatientMT)
    local res = rule.when(patient, now)
    if res == nil or res == false then return NONE end
    if getmetatable(res) == AlertMT then return { normalise(rule, res, nil) } end
    local out = {}
    for _, a in ipairs(res) do out[#out + 1] = normalise(rule, a, nil) end
    return out
end

host.expand = expand
host.env = env
return host
