-- Tests of scripts/units.lua: unit spellings and conversions (domain §3.1).
-- Run: pvlua scripts tests/lua/test_units.lua

local check = require "check"
local units = check.sandboxed("units")

-- canonical(unit, expected): one spelling and the canonical unit it maps to.
local function canonical(unit, expected)
  check.eq(units.canonical(unit), expected, ("canonical(%q)"):format(unit))
end

-- Counts per mm3 and per microlitre are one quantity (domain §3.1, §1.4).
for _, u in ipairs({ "cells/mm3", "/mm3", "cells/uL", "/uL", "/\u{B5}L",
                     "cells/\u{B5}L", "/\u{3BC}L", "cells/\u{3BC}L",
                     " cells/uL ", "CELLS/UL" }) do
  canonical(u, "cells/mm3")
end
for _, u in ipairs({ "10*3/uL", "10^3/uL", "x10E3/uL", "K/uL", "10*3/mm3",
                     "10^3/\u{B5}L", "k/ul" }) do
  canonical(u, "10*3/uL")
end
for _, u in ipairs({ "10*9/L", "10^9/L", "x10E9/L", "10e9/L", "G/L",
                     "10E9/L", "x10^9/L" }) do
  canonical(u, "10*9/L")
end
canonical("g/dL", "g/dL")
canonical("G/DL", "g/dL")
canonical("g/L", "g/L")
canonical("g/l", "g/L")
canonical("mg/dL", "mg/dL")
canonical("MG/DL", "mg/dL")
canonical("mg/L", "mg/L")
canonical("mmol/L", "mmol/L")
canonical("umol/L", "umol/L")
canonical("\u{B5}mol/L", "umol/L")
canonical("\u{3BC}mol/l", "umol/L")
canonical("U/L", "U/L")
canonical("IU/L", "U/L")
canonical("mL/min/{1.73_m2}", "mL/min/{1.73_m2}")
canonical("mL/min/1.73m2", "mL/min/{1.73_m2}")
canonical("mL/min/1.73 m2", "mL/min/{1.73_m2}")
canonical("ml/min", "mL/min")
canonical("%", "%")
canonical("furlongs", nil)
canonical("", nil)
check.eq(units.canonical(nil), nil, "canonical(nil)")
check.eq(units.canonical(42), nil, "canonical(42)")

check.eq(units.kind("K/uL"), "count", "kind K/uL")
check.eq(units.kind("%"), "percent", "kind %")
check.eq(units.kind("IU/L"), "enzyme", "kind IU/L")
check.eq(units.kind("xyz"), nil, "kind xyz")

-- conv(value, from, to, code, expected): a conversion that must succeed.
local function conv(value, from, to, code, expected)
  local got, err = units.convert(value, from, to, code)
  check.eq(got, expected, ("convert(%s, %s, %s, %s)%s"):format(value, from,
    to, tostring(code), err and (" error: " .. err) or ""))
end

-- fails(value, from, to, code, message): a conversion that must fail with
-- exactly this message.
local function fails(value, from, to, code, message)
  local got, err = units.convert(value, from, to, code)
  check.eq(got, nil, ("convert(%s, %s, %s) result"):format(value, from, to))
  check.eq(err, message, ("convert(%s, %s, %s) error"):format(value, from,
    to))
end

-- Counts: 1 cell/mm3 = 1 /uL; 10*3/uL = 10*9/L = 1000 cells/mm3 (§3.1).
conv(0.9, "10*3/uL", "cells/mm3", "751-8", 900)
conv(0.999, "10*3/uL", "cells/mm3", nil, 999)
conv(0.99, "10^9/L", "cells/mm3", nil, 990)
conv(1.0, "x10E9/L", "cells/mm3", nil, 1000)
conv(1.5, "G/L", "cells/mm3", nil, 1500)
conv(150, "K/uL", "cells/mm3", "777-3", 150000)
conv(74.999, "10*3/uL", "cells/mm3", nil, 74999)
conv(2500, "/uL", "cells/mm3", nil, 2500)
conv(900, "cells/mm3", "10*9/L", nil, 0.9)
conv(1.2, "10*3/uL", "10*9/L", nil, 1.2)
-- 1.001 * 1000 is 1000.9999999999999 and 2.002 * 1000 is
-- 2001.9999999999998 in binary floating point; the result must be the
-- integer the laboratory meant.
check.eq(1.001 * 1000 ~= 1001, true, "the float noise this guards against")
conv(1.001, "10*3/uL", "cells/mm3", nil, 1001)
conv(2.002, "10^9/L", "cells/mm3", nil, 2002)
check.eq(math.type(units.convert(1.001, "10*3/uL", "cells/mm3")), "integer",
  "1.001 10*3/uL converts to an integer")
check.eq(math.type(units.convert(0.999, "10*3/uL", "cells/mm3")),
  "integer", "0.999 10*3/uL converts to an integer")
-- A sub-unit count keeps its fraction: it is not rounded up to 1000.
conv(0.9995, "10*3/uL", "cells/mm3", nil, 999.5)

-- Percentages are not counts (§3.1 note on 26474-7).
fails(12, "%", "cells/mm3", "26474-7", "cannot convert % to cells/mm3")
fails(900, "cells/mm3", "%", nil, "cannot convert cells/mm3 to %")
fails(1, "xyz", "cells/mm3", nil, "unknown unit 'xyz'")
fails(1, "cells/mm3", "furlongs", nil, "unknown unit 'furlongs'")
fails(0 / 0, "g/dL", "g/L", nil, "value is not a finite number")
fails(math.huge, "g/dL", "g/L", nil, "value is not a finite number")
fails("0.9", "g/dL", "g/L", nil, "value is not a finite number")

-- Mass and molar units of one kind convert without an analyte.
conv(12.0, "g/dL", "g/L", nil, 120)
conv(79, "g/L", "g/dL", nil, 7.9)
conv(1.2, "mg/dL", "mg/L", nil, 12)
conv(88.4, "umol/L", "mmol/L", nil, 0.0884)
conv(40, "IU/L", "U/L", nil, 40)
conv(45, "ml/min", "mL/min/{1.73_m2}", nil, 45)

-- Mass <-> molar needs the analyte's factor (§3.1).
-- Hemoglobin: g/dL = mmol/L x 1.61.
conv(4.8, "mmol/L", "g/dL", "718-7", 7.728)
conv(4.8, "mmol/L", "g/dL", "59260-0", 7.728)
conv(4.8, "mmol/L", "g/dL", "hemoglobin", 7.728)
conv(8.05, "g/dL", "mmol/L", "718-7", 5)
-- Creatinine: umol/L / 88.4 -> mg/dL (also Synthea's 38483-4).
conv(88.4, "umol/L", "mg/dL", "2160-0", 1)
conv(88.4, "\u{B5}mol/L", "mg/dL", "14682-9", 1)
conv(176.8, "umol/L", "mg/dL", "38483-4", 2)
conv(1.0, "mg/dL", "umol/L", "2160-0", 88.4)
-- Bilirubin: umol/L x 0.05847 -> mg/dL.
conv(20, "umol/L", "mg/dL", "1975-2", 1.1694)
conv(100, "umol/L", "mg/dL", "14631-6", 5.847)
-- Cholesterol (total, LDL, HDL): mmol/L x 38.67 -> mg/dL.
conv(5, "mmol/L", "mg/dL", "2093-3", 193.35)
conv(3, "mmol/L", "mg/dL", "13457-7", 116.01)
conv(1, "mmol/L", "mg/dL", "2085-9", 38.67)
-- Triglycerides: mmol/L x 88.5 -> mg/dL.
conv(2, "mmol/L", "mg/dL", "2571-8", 177)
conv(177, "mg/dL", "mmol/L", "14927-8", 2)
-- Without a known analyte, mmol/L never converts to a mass unit.
fails(5, "mmol/L", "mg/dL", nil,
  "cannot convert mmol/L to mg/dL without a known analyte (LOINC code)")
fails(5, "mmol/L", "mg/dL", "9999-9",
  "cannot convert mmol/L to mg/dL: no molar factor for '9999-9'")
fails(5, "mmol/L", "mg/dL", "751-8",
  "cannot convert mmol/L to mg/dL: no molar factor for '751-8'")
-- Capital G/L is a count, so a hemoglobin sent as "G/L" is refused rather
-- than read as grams.
fails(120, "G/L", "g/dL", "718-7", "cannot convert 10*9/L to g/dL")
fails(40, "U/L", "mg/dL", "1742-6", "cannot convert U/L to mg/dL")

-- Same unit: the value comes back unchanged.
conv(7.9, "g/dL", "G/dL", nil, 7.9)

-- round
check.eq(units.round(998.9999999999999), 999, "round 998.999...")
check.eq(units.round(1.001 * 1000), 1001, "round 1.001 x 1000")
check.eq(units.round(1.5 * 1.2), 1.8, "round 1.5 x 1.2")
check.eq(units.round(3 * 1.2), 3.6, "round 3 x 1.2")
check.eq(units.round(0), 0, "round 0")
check.eq(units.round(-2.5000000000000004), -2.5, "round negative")
check.eq(units.round(1234.5678, 3), 1230, "round to 3 digits")

check.done()
