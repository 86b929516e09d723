-- units.lua: the unit spellings and conversions the baricitinib rules need.
--
-- Labs send the same quantity under many spellings ("K/uL", "x10E3/uL",
-- "10^9/L", "G/L" ...).  This module maps them to one canonical spelling
-- per unit and converts between units of the same kind, and between mass
-- and molar units for the analytes of domain §3.1 only.  It never guesses:
-- an unknown unit, a percentage offered as a count, or mmol/L without a
-- known analyte is an error returned to the caller (nil, message).
--
-- Pure Lua, no globals, no I/O: it is required inside the rule sandbox.

local codes = require "codes"
-- Globals the hot paths use, as locals: a global is a table lookup in the
-- sandbox environment on every use, a local upvalue is not.
local type, tostring = type, tostring
local HUGE = math.huge

local units = {}

-- Canonical units, their kind and their factor to the kind's base unit.
-- Bases: count cells/mm3, mass mg/dL, molar mmol/L, enzyme U/L,
-- gfr mL/min/{1.73_m2}.
local UNITS = {
  -- 1 cell/mm3 = 1 cell/uL, and 10*3/uL = 10*9/L = 1000 cells/mm3
  -- (domain §3.1 "Unit facts for rules"; §1.4 says the label uses both
  -- cells/mm3 and cells/uL for the same quantity).
  ["cells/mm3"]        = { kind = "count", factor = 1 },
  ["10*3/uL"]          = { kind = "count", factor = 1000 },
  ["10*9/L"]           = { kind = "count", factor = 1000 },
  -- A percentage of leukocytes is not a count and never converts to one
  -- (domain §3.1, note on 26474-7).
  ["%"]                = { kind = "percent", factor = 1 },
  ["g/dL"]             = { kind = "mass", factor = 1000 },
  ["g/L"]              = { kind = "mass", factor = 100 },
  ["mg/dL"]            = { kind = "mass", factor = 1 },
  ["mg/L"]             = { kind = "mass", factor = 0.1 },
  ["mmol/L"]           = { kind = "molar", factor = 1 },
  ["umol/L"]           = { kind = "molar", factor = 0.001 },
  -- IU/L and U/L are the same enzyme unit (1 IU = 1 umol/min).
  ["U/L"]              = { kind = "enzyme", factor = 1 },
  -- CTCAE grades chronic kidney disease on "eGFR or CrCl" in the same
  -- numbers, and the EU renal dosing text uses "creatinine clearance
  -- between 30 and 60 mL/min" where newer text says eGFR (domain §1.5,
  -- §2).  So mL/min converts to mL/min/{1.73_m2} with factor 1, but keeps
  -- its own spelling so a report shows what was measured.
  ["mL/min/{1.73_m2}"] = { kind = "gfr", factor = 1 },
  ["mL/min"]           = { kind = "gfr", factor = 1 },
}

-- Case-sensitive spellings, tried first.  Capital "G/L" is giga per litre
-- (10*9/L) in UCUM and in European haematology reports, while "g/L" is
-- grams per litre; only an exact capital G means a count.
local EXACT = {
  ["G/L"] = "10*9/L",
  ["G/l"] = "10*9/L",
}

-- Case-insensitive spellings.  Keys are lower case, without white space,
-- with the micro sign and Greek mu already replaced by "u" (see key()).
local ALIASES = {
  ["cells/mm3"] = "cells/mm3", ["/mm3"] = "cells/mm3",
  ["cell/mm3"] = "cells/mm3", ["{cells}/mm3"] = "cells/mm3",
  ["cells/ul"] = "cells/mm3", ["/ul"] = "cells/mm3",
  ["cell/ul"] = "cells/mm3", ["{cells}/ul"] = "cells/mm3",

  ["10*3/ul"] = "10*3/uL", ["10^3/ul"] = "10*3/uL",
  ["x10e3/ul"] = "10*3/uL", ["10e3/ul"] = "10*3/uL",
  ["x10^3/ul"] = "10*3/uL", ["x10*3/ul"] = "10*3/uL",
  ["k/ul"] = "10*3/uL", ["thou/ul"] = "10*3/uL",
  ["10*3/mm3"] = "10*3/uL", ["10^3/mm3"] = "10*3/uL",
  ["x10e3/mm3"] = "10*3/uL", ["k/mm3"] = "10*3/uL",

  ["10*9/l"] = "10*9/L", ["10^9/l"] = "10*9/L",
  ["x10e9/l"] = "10*9/L", ["10e9/l"] = "10*9/L",
  ["x10^9/l"] = "10*9/L", ["x10*9/l"] = "10*9/L",
  ["gpt/l"] = "10*9/L",

  ["%"] = "%",

  ["g/dl"] = "g/dL", ["g/100ml"] = "g/dL", ["g%"] = "g/dL",
  ["g/l"] = "g/L",
  ["mg/dl"] = "mg/dL", ["mg/100ml"] = "mg/dL", ["mg%"] = "mg/dL",
  ["mg/l"] = "mg/L",

  ["mmol/l"] = "mmol/L",
  ["umol/l"] = "umol/L",

  ["u/l"] = "U/L", ["iu/l"] = "U/L", ["[iu]/l"] = "U/L",
  ["units/l"] = "U/L",

  ["ml/min/{1.73_m2}"] = "mL/min/{1.73_m2}",
  ["ml/min/1.73_m2"] = "mL/min/{1.73_m2}",
  ["ml/min/1.73m2"] = "mL/min/{1.73_m2}",
  ["ml/min/{1.73m2}"] = "mL/min/{1.73_m2}",
  ["ml/min/1.73m^2"] = "mL/min/{1.73_m2}",
  ["ml/min/1.73sqm"] = "mL/min/{1.73_m2}",
  ["ml/min/1.73sq.m"] = "mL/min/{1.73_m2}",
  ["ml/min"] = "mL/min",
}

-- Mass per mole for the analytes of domain §3.1, as mg/dL per mmol/L,
-- written as num / den so that each factor reads as the source gives it.
--   hemoglobin:  g/dL = mmol/L x 1.61 (miracum conversion.tsv)
--   creatinine:  umol/L / 88.4 -> mg/dL, i.e. 1000 / 88.4 per mmol/L
--   bilirubin:   umol/L x 0.05847 -> mg/dL, i.e. 58.47 per mmol/L
--   cholesterol (total, LDL, HDL): mmol/L x 38.67 -> mg/dL
--   triglycerides: mmol/L x 88.5 -> mg/dL (miracum also lists 87.94; the
--   domain file names 88.5 first, so 88.5 is used)
local MOLAR = {
  hemoglobin    = { 1610, 1 },
  creatinine    = { 1000, 88.4 },
  bilirubin     = { 58.47, 1 },
  cholesterol   = { 38.67, 1 },
  ldl           = { 38.67, 1 },
  hdl           = { 38.67, 1 },
  triglycerides = { 88.5, 1 },
}

--[[
units.round(x [, digits]) -> number.

  Rounds x to `digits` significant digits (default 12) and returns an
  integer when the result is whole.  Conversions go through binary floating
  point, so 1.001 * 1000 is 1000.9999999999999 and 1.5 * 1.2 is
  1.7999999999999998; rounding to 12 significant digits removes that noise
  while keeping every digit a laboratory reports, so boundaries such as
  "< 1000" and "> 1.5 x ULN" compare as the clinical text means.
]]
-- Rounding to 12 digits costs a string.format; laboratory values repeat
-- (a few significant digits each), so the results are remembered, in a
-- table that starts over when it is full.
local rounded, rounded_size, ROUNDED_MAX = {}, 0, 4096

function units.round(x, digits)
  if x ~= x or x == HUGE or x == -HUGE then return x end
  if digits == nil or digits == 12 then
    local hit = rounded[x]
    if hit then return hit end
  end
  local r = tonumber(string.format("%." .. (digits or 12) .. "g", x))
  r = math.tointeger(r) or r
  if digits == nil or digits == 12 then
    if rounded_size >= ROUNDED_MAX then rounded, rounded_size = {}, 0 end
    rounded[x] = r
    rounded_size = rounded_size + 1
  end
  return r
end

-- key(u) normalises a unit string for the alias tables: trims, removes
-- white space (so "mL/min/1.73 m2" matches), and spells micro as "u"
-- whether it arrived as U+00B5 MICRO SIGN or U+03BC GREEK SMALL MU.
local function key(u)
  u = u:gsub("\u{B5}", "u"):gsub("\u{3BC}", "u")
  return (u:gsub("%s+", ""))
end

--[[
units.canonical(unit) -> canonical spelling, or nil if unknown.

  Canonical spellings: "cells/mm3" (also /mm3, /uL, cells/uL, /µL),
  "10*3/uL" (also 10^3/uL, x10E3/uL, K/uL, 10*3/mm3), "10*9/L" (also
  10^9/L, x10E9/L, 10e9/L, G/L), "%", "g/dL", "g/L", "mg/dL", "mg/L",
  "mmol/L", "umol/L" (also µmol/L), "U/L" (also IU/L),
  "mL/min/{1.73_m2}" (also mL/min/1.73m2, mL/min/1.73 m2) and "mL/min".
  Matching ignores case and white space, except that capital "G/L" means
  10*9/L while "g/L" means grams per litre.

  Example: units.canonical("x10E3/uL") --> "10*3/uL"
]]
-- Feeds repeat the same few spellings millions of times, so the answer
-- for each spelling is remembered; the memo is bounded (a feed with many
-- odd spellings only resets it), so it cannot grow a rule's memory.
local memo, memo_size, MEMO_MAX = {}, 0, 256

local function lookup(unit)
  local k = key(unit)
  if UNITS[k] then return k end
  if EXACT[k] then return EXACT[k] end
  return ALIASES[k:lower()]
end

function units.canonical(unit)
  if type(unit) ~= "string" then return nil end
  local hit = memo[unit]
  if hit ~= nil then return hit or nil end
  local c = lookup(unit)
  if memo_size >= MEMO_MAX then memo, memo_size = {}, 0 end
  memo[unit] = c or false
  memo_size = memo_size + 1
  return c
end

--[[
units.kind(unit) -> "count" | "percent" | "mass" | "molar" | "enzyme" |
"gfr", or nil if the unit is unknown.
]]
function units.kind(unit)
  local c = units.canonical(unit)
  return c and UNITS[c].kind or nil
end

-- analyte_of(code) accepts a LOINC code or an analyte name and returns the
-- analyte name, or nil.
local function analyte_of(code)
  if type(code) ~= "string" then return nil end
  if MOLAR[code] or codes.loinc_set(code) then return code end
  return codes.loinc_analyte(code)
end

--[[
units.convert(value, from, to [, code]) -> number, or nil and an error.

  value: a finite number in unit `from`.  from, to: any spelling that
  units.canonical accepts.  code: a LOINC code (e.g. "718-7") or an
  analyte name (e.g. "hemoglobin"); needed only between mass and molar
  units.

  Units of the same kind convert by their factors.  Mass <-> molar uses
  the analyte's factor from domain §3.1 and fails without a known analyte.
  Everything else (e.g. % to cells/mm3) fails.  The result is rounded by
  units.round, so 1.001 10*3/uL is exactly 1001 cells/mm3.

  Errors: "value is not a finite number", "unknown unit 'xyz'",
  "cannot convert % to cells/mm3", "cannot convert mmol/L to g/dL without
  a known analyte (LOINC code)".

  Example: units.convert(0.9, "10^3/uL", "cells/mm3") --> 900
]]
function units.convert(value, from, to, code)
  if type(value) ~= "number" or value ~= value
     or value == HUGE or value == -HUGE then
    return nil, "value is not a finite number"
  end
  local cf, ct = units.canonical(from), units.canonical(to)
  if not cf then return nil, ("unknown unit '%s'"):format(tostring(from)) end
  if not ct then return nil, ("unknown unit '%s'"):format(tostring(to)) end
  if cf == ct then return value end
  local uf, ut = UNITS[cf], UNITS[ct]
  if uf.kind == ut.kind then
    return units.round(value * uf.factor / ut.factor)
  end
  local massmol = (uf.kind == "mass" and ut.kind == "molar")
    or (uf.kind == "molar" and ut.kind == "mass")
  if not massmol then
    return nil, ("cannot convert %s to %s"):format(cf, ct)
  end
  local analyte = analyte_of(code)
  local m = analyte and MOLAR[analyte]
  if not m then
    if code == nil then
      return nil, ("cannot convert %s to %s without a known analyte "
        .. "(LOINC code)"):format(cf, ct)
    end
    return nil, ("cannot convert %s to %s: no molar factor for '%s'")
      :format(cf, ct, tostring(code))
  end
  local num, den = m[1], m[2]
  if uf.kind == "molar" then
    local mmol = value * uf.factor
    return units.round(mmol * num / den / ut.factor)
  end
  local mgdl = value * uf.factor
  return units.round(mgdl * den / num / ut.factor)
end

return units
