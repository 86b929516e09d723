-- Tests of scripts/ctcae.lua: CTCAE v5 grading (domain §2), with every
-- domain §6 case 9-20 exactly as written, plus boundary edges.
-- Run: pvlua scripts tests/lua/test_ctcae.lua

local check = require "check"
local ctcae = check.sandboxed("ctcae")
local units = check.sandboxed("units")
local label = check.sandboxed("label")

-- g(term, value, unit, expected [, code, opts, obs_extra]): grade one
-- value and compare the grade.
local function g(term, value, unit, expected, code, opts, extra)
  local obs = { value = value, unit = unit, code = code }
  for k, v in pairs(extra or {}) do obs[k] = v end
  local grade, why = ctcae.grade(term, obs, opts)
  check.eq(grade, expected, ("%s %s %s (%s)"):format(term, tostring(value),
    tostring(unit), tostring(why)))
  return grade, why
end

-- bad(term, obs, opts, text): grading must fail with a message containing
-- text.
local function bad(term, obs, opts, text)
  local grade, err = ctcae.grade(term, obs, opts)
  check.eq(grade, nil, ("%s must fail"):format(tostring(term)))
  check.matches(err, text, ("%s error"):format(tostring(term)))
end

local ANC, ALC = "neutrophil_count_decreased", "lymphocyte_count_decreased"
local WBC, PLT = "white_blood_cell_decreased", "platelet_count_decreased"
local ALT, AST = "alanine_aminotransferase_increased",
  "aspartate_aminotransferase_increased"
local BILI, CREAT = "blood_bilirubin_increased", "creatinine_increased"
local CHOL, TG = "cholesterol_high", "hypertriglyceridemia"
local CKD = "chronic_kidney_disease"

-- Case 9: ANC 0.9 (10*3/uL, LOINC 751-8) = 900 cells/mm3 -> RA interrupt
-- and CTCAE Grade 3 [units §3.1; CTCAE5].
do
  local anc = units.convert(0.9, "10*3/uL", "cells/mm3", "751-8")
  check.eq(anc, 900, "case 9: 0.9 10*3/uL is 900 cells/mm3")
  local _, why = g(ANC, 0.9, "10*3/uL", 3, "751-8")
  check.eq(why, "ANC 900 cells/mm3 < 1000: grade 3 (CTCAE v5 neutrophil "
    .. "count decreased)", "case 9 reason")
  local stop, limit, text = label.check("interrupt", "anc", anc, "ra", "us")
  check.eq(stop, true, "case 9: RA interrupt")
  check.eq(limit, 1000, "case 9: limit")
  check.eq(text, "Interrupt baricitinib until ANC >= 1000 cells/mm3 "
    .. "(US label, RA/AA)", "case 9: action text")
end

-- Case 10: ANC, CTCAE (LLN 2000): 1500 -> G1; 1499 -> G2; 1000 -> G2;
-- 999 -> G3; 500 -> G3; 499 -> G4 [CTCAE5; PF-GRADER neut].
g(ANC, 1500, "cells/mm3", 1, "751-8")
g(ANC, 1499, "cells/mm3", 2, "751-8")
g(ANC, 1000, "cells/mm3", 2, "751-8")
g(ANC, 999, "cells/mm3", 3, "751-8")
g(ANC, 500, "cells/mm3", 3, "751-8")
g(ANC, 499, "cells/mm3", 4, "751-8")

-- Case 11: ALC, CTCAE (LLN 1000): 800 -> G1; 799 -> G2; 500 -> G2;
-- 499 -> G3; 200 -> G3; 199 -> G4 [CTCAE5].
g(ALC, 800, "cells/mm3", 1, "731-0")
g(ALC, 799, "cells/mm3", 2, "731-0")
g(ALC, 500, "cells/mm3", 2, "731-0")
g(ALC, 499, "cells/mm3", 3, "731-0")
g(ALC, 200, "cells/mm3", 3, "731-0")
g(ALC, 199, "cells/mm3", 4, "731-0")

-- Case 12: WBC, CTCAE (LLN 4000): 3000 -> G1; 2999 -> G2; 1999 -> G3;
-- 999 -> G4 [CTCAE5].
g(WBC, 3000, "cells/mm3", 1, "6690-2")
g(WBC, 2999, "cells/mm3", 2, "6690-2")
g(WBC, 1999, "cells/mm3", 3, "6690-2")
g(WBC, 999, "cells/mm3", 4, "6690-2")

-- Case 13: Platelets, CTCAE (LLN 150,000): 75,000 -> G1; 74,999 -> G2;
-- 50,000 -> G2; 49,999 -> G3; 24,999 -> G4 [CTCAE5].
g(PLT, 75000, "cells/mm3", 1, "777-3")
g(PLT, 74999, "cells/mm3", 2, "777-3")
g(PLT, 50000, "cells/mm3", 2, "777-3")
g(PLT, 49999, "cells/mm3", 3, "777-3")
g(PLT, 24999, "cells/mm3", 4, "777-3")

-- Case 14: Hb, CTCAE (LLN 12.0 g/dL): 10.0 -> G1; 9.9 -> G2; 8.0 -> G2;
-- 7.9 -> G3; 79 g/L -> G3; 4.8 mmol/L -> G3 [CTCAE5; PF-GRADER hgb].
g("anemia", 10.0, "g/dL", 1, "718-7")
g("anemia", 9.9, "g/dL", 2, "718-7")
g("anemia", 8.0, "g/dL", 2, "718-7")
g("anemia", 7.9, "g/dL", 3, "718-7")
g("anemia", 79, "g/L", 3, "718-7")
g("anemia", 4.8, "mmol/L", 3, "59260-0")

-- Case 15: ALT, normal baseline, ULN 40 U/L: 120 -> G1; 121 -> G2;
-- 200 -> G2; 201 -> G3; 800 -> G3; 801 -> G4 [CTCAE5; PF-GRADER alt].
g(ALT, 120, "U/L", 1, "1742-6")
g(ALT, 121, "U/L", 2, "1742-6")
g(ALT, 200, "U/L", 2, "1742-6")
g(ALT, 201, "U/L", 3, "1742-6")
g(ALT, 800, "U/L", 3, "1742-6")
g(ALT, 801, "U/L", 4, "1742-6")

-- Case 16: ALT, abnormal baseline 80 (ULN 40): 110 -> ungraded
-- (<1.5 x baseline); 121 -> G1; 241 -> G2; 401 -> G3; 1601 -> G4.
local B80 = { baseline = 80 }
g(ALT, 110, "U/L", 0, "1742-6", B80)
g(ALT, 121, "U/L", 1, "1742-6", B80)
g(ALT, 241, "U/L", 2, "1742-6", B80)
g(ALT, 401, "U/L", 3, "1742-6", B80)
g(ALT, 1601, "U/L", 4, "1742-6", B80)

-- Case 17: Total bilirubin, normal baseline, ULN 1.2 mg/dL: 1.8 -> G1;
-- 1.81 -> G2; 3.61 -> G3; 12.01 -> G4 [CTCAE5].
g(BILI, 1.8, "mg/dL", 1, "1975-2")
g(BILI, 1.81, "mg/dL", 2, "1975-2")
g(BILI, 3.61, "mg/dL", 3, "1975-2")
g(BILI, 12.01, "mg/dL", 4, "1975-2")

-- Case 18: Creatinine, ULN 1.2 mg/dL, baseline 1.0: 1.8 -> G1;
-- 1.81 -> G2 (>1.5 x ULN); 3.61 -> G3; 7.21 -> G4 [CTCAE5].
local B1 = { baseline = 1.0 }
g(CREAT, 1.8, "mg/dL", 1, "2160-0", B1)
g(CREAT, 1.81, "mg/dL", 2, "2160-0", B1)
g(CREAT, 3.61, "mg/dL", 3, "2160-0", B1)
g(CREAT, 7.21, "mg/dL", 4, "2160-0", B1)

-- Case 19: Total cholesterol (ULN 200 mg/dL): 300 -> G1; 301 -> G2;
-- 7.76 mmol/L -> G2; 501 -> G4 [CTCAE5; PF-GRADER chol].
g(CHOL, 300, "mg/dL", 1, "2093-3")
g(CHOL, 301, "mg/dL", 2, "2093-3")
g(CHOL, 7.76, "mmol/L", 2, "14647-2")
g(CHOL, 501, "mg/dL", 4, "2093-3")

-- Case 20: Triglycerides: 150 mg/dL -> G1; 301 -> G2; 1001 -> G4;
-- 1.70 mmol/L -> ungraded (G1 starts at 1.71) [CTCAE5].
g(TG, 150, "mg/dL", 1, "2571-8")
g(TG, 301, "mg/dL", 2, "2571-8")
g(TG, 1001, "mg/dL", 4, "2571-8")
g(TG, 1.70, "mmol/L", 0, "14927-8")

-- Edges beyond the domain cases.

-- Counts in other units convert exactly before comparing.
g(ANC, 0.999, "10*3/uL", 3, "751-8")
g(ANC, 1.0, "10*9/L", 2, "751-8")
g(ANC, 0.5, "x10E9/L", 3, "751-8")
g(ANC, 0.4999, "10^3/uL", 4, "751-8")
g(ANC, 0.9995, "10*3/uL", 3, "751-8")   -- 999.5 is still < 1000
g(ANC, 1.5, "G/L", 1, "751-8")
g(PLT, 74.999, "10*3/uL", 2, "777-3")
g(PLT, 75, "K/uL", 1, "777-3")
g(ALC, 0.8, "10*3/uL", 1, "26474-7")
-- Grade 0 at and above the LLN.
local _, why0 = g(ANC, 2000, "cells/mm3", 0, "751-8")
check.eq(why0, "ANC 2000 cells/mm3 >= LLN 2000: grade 0 (CTCAE v5 "
  .. "neutrophil count decreased)", "grade 0 reason")
g(ANC, 5000, "cells/mm3", 0)
-- The LLN comes from the observation's reference range (in its unit)...
g(ANC, 1.7, "10*3/uL", 0, "751-8", nil, { ref_low = 1.6 })
g(ANC, 1.7, "10*3/uL", 1, "751-8", nil, { ref_low = 1.8 })
-- ...and opts.lln beats the reference range.
g(ANC, 1700, "cells/mm3", 1, "751-8", { lln = 1800 }, { ref_low = 1600 })
-- Decision: Grades 2-4 come from the band alone, even when the
-- laboratory's LLN is below the band (as PF-GRADER).
g(ANC, 1450, "cells/mm3", 2, "751-8", nil, { ref_low = 1400 })
g(ALC, 750, "cells/mm3", 2, "731-0", nil, { ref_low = 700 })

-- Anemia: each unit's own band; LLN defaults convert to the arrival unit.
g("anemia", 12.0, "g/dL", 0, "718-7")
g("anemia", 11.9, "g/dL", 1, "718-7")
g("anemia", 100, "g/L", 1, "718-7")
g("anemia", 99, "g/L", 2, "718-7")
g("anemia", 80, "g/L", 2, "718-7")
g("anemia", 119, "g/L", 1, "718-7")
g("anemia", 120, "g/L", 0, "718-7")
g("anemia", 6.2, "mmol/L", 1, "59260-0")
g("anemia", 6.1, "mmol/L", 2, "59260-0")
g("anemia", 4.9, "mmol/L", 2, "59260-0")
g("anemia", 7.4, "mmol/L", 1, "59260-0")   -- 12.0 g/dL is 7.4534 mmol/L
g("anemia", 7.5, "mmol/L", 0, "59260-0")
g("anemia", 11.0, "g/dL", 0, "718-7", nil, { ref_low = 11.0 })
g("anemia", 2.0, "g/dL", 3, "718-7")       -- no numeric Grade 4
g("anemia", 790, "mg/dL", 3, "718-7")      -- mass unit without a band
-- A hemoglobin sent as capital "G/L" is a count and cannot be graded.
bad("anemia", { value = 79, unit = "G/L", code = "718-7" }, nil,
  "cannot convert 10*9/L to g/dL")

-- ALT/AST: the ULN comes from ref_high or opts.uln.
g(ALT, 40, "U/L", 0, "1742-6")
g(ALT, 41, "U/L", 1, "1742-6")
g(ALT, 150, "U/L", 1, "1742-6", nil, { ref_high = 50 })
g(ALT, 151, "U/L", 2, "1742-6", nil, { ref_high = 50 })
g(ALT, 151, "IU/L", 2, "1742-6", { uln = 50 })
g(AST, 121, "U/L", 2, "1920-8")
g(AST, 110, "U/L", 0, "1920-8", B80)
-- A baseline at the ULN is normal: the ULN rules apply.
g(ALT, 121, "U/L", 2, "1742-6", { baseline = 40 })
-- Decision: exactly 1.5 x baseline is Grade 1 (CTCAE "1.5 - 3.0").
local _, why15 = g(ALT, 120, "U/L", 1, "1742-6", B80)
check.eq(why15, "ALT 120 U/L >= 1.5 x baseline (120): grade 1 (CTCAE v5 "
  .. "alanine aminotransferase increased; baseline 80 > ULN 40)",
  "1.5 x baseline reason")
g(ALT, 119, "U/L", 0, "1742-6", B80)
g(ALT, 240, "U/L", 1, "1742-6", B80)        -- 3.0 x baseline is Grade 1
g(ALT, 400, "U/L", 2, "1742-6", B80)
g(ALT, 1600, "U/L", 3, "1742-6", B80)
bad(ALT, { value = 40, unit = "mg/dL", code = "1742-6" }, nil,
  "cannot convert mg/dL to U/L")

-- Bilirubin: abnormal baseline uses > 1.0 - 1.5 x baseline for Grade 1.
g(BILI, 1.2, "mg/dL", 0, "1975-2")
g(BILI, 1.21, "mg/dL", 1, "1975-2")
g(BILI, 3.6, "mg/dL", 2, "1975-2")
g(BILI, 12, "mg/dL", 3, "1975-2")
g(BILI, 2.0, "mg/dL", 0, "1975-2", { baseline = 2.0 })
g(BILI, 2.1, "mg/dL", 1, "1975-2", { baseline = 2.0 })
g(BILI, 3.0, "mg/dL", 1, "1975-2", { baseline = 2.0 })
g(BILI, 3.01, "mg/dL", 2, "1975-2", { baseline = 2.0 })
g(BILI, 20.01, "mg/dL", 4, "1975-2", { baseline = 2.0 })
-- In umol/L with the default ULN converted (1.2 mg/dL = 20.52 umol/L).
g(BILI, 31, "umol/L", 2, "14631-6")
g(BILI, 30, "umol/L", 1, "14631-6")
g(BILI, 31, "\u{B5}mol/L", 1, "14631-6", nil, { ref_high = 21 })

-- Creatinine: ULN multiples only; the baseline never changes the grade.
g(CREAT, 1.2, "mg/dL", 0, "2160-0")
g(CREAT, 1.21, "mg/dL", 1, "2160-0")
g(CREAT, 3.6, "mg/dL", 2, "2160-0")
g(CREAT, 7.2, "mg/dL", 3, "2160-0")
g(CREAT, 1.8, "mg/dL", 1, "38483-4", { baseline = 0.6 })
g(CREAT, 160, "umol/L", 2, "14682-9")      -- 1.81 mg/dL
g(CREAT, 159, "umol/L", 1, "14682-9", nil, { ref_high = 106 })

-- Cholesterol: ULN from ref_high; bands of the arrival unit.
g(CHOL, 200, "mg/dL", 0, "2093-3")
g(CHOL, 201, "mg/dL", 1, "2093-3")
g(CHOL, 210, "mg/dL", 0, "2093-3", nil, { ref_high = 240 })
g(CHOL, 400, "mg/dL", 2, "2093-3")
g(CHOL, 401, "mg/dL", 3, "2093-3")
g(CHOL, 500, "mg/dL", 3, "2093-3")
g(CHOL, 7.75, "mmol/L", 1, "14647-2")
g(CHOL, 10.35, "mmol/L", 3, "14647-2")
g(CHOL, 12.93, "mmol/L", 4, "14647-2")
g(CHOL, 5.1, "mmol/L", 0, "14647-2")       -- 200 mg/dL is 5.172 mmol/L
g(CHOL, 5.2, "mmol/L", 1, "14647-2")
bad(CHOL, { value = 301, unit = "mg/dL", code = "13457-7" }, nil,
  "LOINC 13457-7 is ldl, not cholesterol")

-- Triglycerides: inclusive Grade 1 floor, exclusive upper bands.
g(TG, 149, "mg/dL", 0, "2571-8")
g(TG, 300, "mg/dL", 1, "2571-8")
g(TG, 500, "mg/dL", 2, "2571-8")
g(TG, 501, "mg/dL", 3, "2571-8")
g(TG, 1000, "mg/dL", 3, "2571-8")
g(TG, 1.71, "mmol/L", 1, "14927-8")
g(TG, 3.42, "mmol/L", 1, "14927-8")
g(TG, 3.43, "mmol/L", 2, "14927-8")
g(TG, 11.41, "mmol/L", 4, "14927-8")

-- Chronic kidney disease from eGFR: half-open bands, 60 and 30 inclusive
-- lower bounds as the label reads them (domain §1.5).
g(CKD, 90, "mL/min/{1.73_m2}", 0, "33914-3")
g(CKD, 89, "mL/min/1.73m2", 1, "62238-1")
g(CKD, 60, "mL/min/1.73 m2", 1, "98979-8")
g(CKD, 59, "mL/min/{1.73_m2}", 2, "98979-8")
g(CKD, 59.5, "mL/min/{1.73_m2}", 2, "98979-8")
g(CKD, 30, "mL/min/{1.73_m2}", 2, "98979-8")
g(CKD, 29, "mL/min/{1.73_m2}", 3, "98979-8")
g(CKD, 15, "mL/min/{1.73_m2}", 3, "98979-8")
g(CKD, 14, "ml/min", 4)
g(CKD, 75, "mL/min/{1.73_m2}", 0, "98979-8", nil, { ref_low = 60 })

-- Errors: unknown term or unit, percentages, wrong analyte, bad values.
bad("neutropenia", { value = 900, unit = "cells/mm3" }, nil,
  "unknown CTCAE term 'neutropenia'")
bad(ANC, { value = 900, unit = "furlongs" }, nil, "unknown unit 'furlongs'")
bad(ALC, { value = 12, unit = "%", code = "26474-7" }, nil,
  "cannot convert % to cells/mm3")
bad(ANC, { value = 900, unit = "cells/mm3", code = "731-0" }, nil,
  "LOINC 731-0 is lymphocytes, not neutrophils")
bad(ANC, { value = 0 / 0, unit = "cells/mm3" }, nil, "not a finite number")
bad(ANC, { value = "900", unit = "cells/mm3" }, nil, "not a finite number")
bad(ANC, { value = 900, unit = "cells/mm3" }, { lln = "x" },
  "opts.lln is not a finite number")
bad(ANC, nil, nil, "obs must be a table")
bad(TG, { value = 2, unit = "mmol/L", code = "2571-8" }, { baseline = {} },
  "opts.baseline is not a finite number")

-- Grades are integers, so rules can compare and print them directly.
check.eq(math.type((ctcae.grade(ANC, { value = 900, unit = "/uL" }))),
  "integer", "grade is an integer")

-- Helpers.
check.eq(ctcae.term_for("751-8"), ANC, "term_for ANC")
check.eq(ctcae.term_for("59260-0"), "anemia", "term_for Hb SI")
check.eq(ctcae.term_for("38483-4"), CREAT, "term_for Synthea creatinine")
check.eq(ctcae.term_for("98979-8"), CKD, "term_for eGFR")
check.eq(ctcae.term_for("13457-7"), nil, "LDL has no CTCAE term")
check.eq(#ctcae.terms(), 12, "twelve terms")
local v, u = ctcae.default_limit("anemia")
check.eq(v, 12.0, "default Hb LLN")
check.eq(u, "g/dL", "default Hb LLN unit")
local lim, lu, src = ctcae.normal_limit(ALT, { value = 10, unit = "U/L",
  ref_high = 33 })
check.eq(lim, 33, "normal_limit from ref_high")
check.eq(lu, "U/L", "normal_limit unit")
check.eq(src, "ref_high", "normal_limit source")
lim, lu, src = ctcae.normal_limit(BILI, { value = 10, unit = "umol/L" })
check.near(lim, 20.523, 0.001, "default bilirubin ULN in umol/L")
check.eq(lu, "umol/L", "normal_limit in the arrival unit")
check.eq(src, "default", "normal_limit default source")
check.eq(ctcae.normal_limit(TG, { value = 2, unit = "mmol/L" }), nil,
  "no limit for triglycerides")

check.done()
