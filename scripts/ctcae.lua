-- ctcae.lua: CTCAE v5.0 grades for the laboratory terms the baricitinib
-- rules watch (domain §2, source CTCAE5, cross-checked with PF-GRADER).
--
-- Boundary semantics (domain §2): a cell "<upper - lower" means
-- upper > value >= lower, and ">a - b x ULN" means a*ULN < value <= b*ULN.
-- Products such as 1.5 x 1.2 are rounded with units.round before they are
-- compared, so that 1.8 is exactly 1.5 x ULN and stays Grade 1.
--
-- Decisions this module makes (each is also stated where it is coded):
--   * Decreased counts: Grades 2-4 come from the numeric band alone, as
--     PF-GRADER does; Grade 1 also needs value < LLN.
--   * Anemia, cholesterol and triglycerides are graded in the CTCAE band of
--     the unit the value arrived in (g/dL, g/L, mmol/L; mg/dL, mmol/L),
--     never converted first, because the SI cells are not exact
--     conversions (domain §2 notes; PF-GRADER ctcae5_chol.sas).
--   * ALT/AST/bilirubin: "baseline abnormal" means baseline > ULN
--     (PF-GRADER ALT_BASEABFL).  ALT/AST Grade 1 on an abnormal baseline
--     includes exactly 1.5 x baseline (CTCAE text "1.5 - 3.0 x baseline";
--     PF-GRADER uses "<", domain §2 marks this UNVERIFIED).
--   * Creatinine is graded on ULN multiples only (see grade_creatinine).
--
-- Pure Lua, no globals, no I/O: it is required inside the rule sandbox.

local units = require "units"
local codes = require "codes"
-- Globals the hot paths use, as locals: a global is a table lookup in the
-- sandbox environment on every use, a local upvalue is not.
local type, tostring, ipairs = type, tostring, ipairs
local HUGE = math.huge

local ctcae = {}

-- Term definitions.  Fields:
--   kind     which grading function applies
--   analyte  the codes.lua LOINC set the term accepts
--   abbrev   how the reason string names the analyte
--   title    the CTCAE term as the reason string cites it
--   gunits   units with a CTCAE band (or the unit the term grades in);
--            other units of the same kind are converted to the first one
--   limit    default LLN or ULN with its unit (used without a reference
--            range in obs or opts), documented per term
local TERMS = {
  -- domain §2 row "Neutrophil count decreased"; PF-GRADER ctcae5_neut.sas.
  -- Default LLN 2000/mm3 as domain §6 case 10 uses.
  neutrophil_count_decreased = {
    kind = "decreased", analyte = "neutrophils", abbrev = "ANC",
    title = "neutrophil count decreased", gunits = { "cells/mm3" },
    bands = { 1500, 1000, 500 }, limit = { 2000, "cells/mm3" },
  },
  -- domain §2 "Lymphocyte count decreased"; default LLN 1000 (case 11).
  lymphocyte_count_decreased = {
    kind = "decreased", analyte = "lymphocytes", abbrev = "ALC",
    title = "lymphocyte count decreased", gunits = { "cells/mm3" },
    bands = { 800, 500, 200 }, limit = { 1000, "cells/mm3" },
  },
  -- domain §2 "White blood cell decreased"; default LLN 4000 (case 12).
  white_blood_cell_decreased = {
    kind = "decreased", analyte = "wbc", abbrev = "WBC",
    title = "white blood cell decreased", gunits = { "cells/mm3" },
    bands = { 3000, 2000, 1000 }, limit = { 4000, "cells/mm3" },
  },
  -- domain §2 "Platelet count decreased"; default LLN 150,000 (case 13).
  platelet_count_decreased = {
    kind = "decreased", analyte = "platelets", abbrev = "PLT",
    title = "platelet count decreased", gunits = { "cells/mm3" },
    bands = { 75000, 50000, 25000 }, limit = { 150000, "cells/mm3" },
  },
  -- domain §2 "Anemia": G1 <LLN-10.0 g/dL, G2 <10.0-8.0, G3 <8.0; the same
  -- cells in mmol/L (6.2, 4.9) and g/L (100, 80).  Grade 4 has no numeric
  -- cut-off, so a number alone never gives Grade 4.  Default LLN 12.0 g/dL
  -- (case 14), converted to the arrival unit when no range is given.
  anemia = {
    kind = "anemia", analyte = "hemoglobin", abbrev = "Hb",
    title = "anemia", gunits = { "g/dL", "g/L", "mmol/L" },
    bands = {
      ["g/dL"] = { 10.0, 8.0 },
      ["g/L"] = { 100, 80 },
      ["mmol/L"] = { 6.2, 4.9 },
    },
    limit = { 12.0, "g/dL" },
  },
  -- domain §2 "Alanine aminotransferase increased"; PF-GRADER
  -- ctcae5_alt.sas.  Default ULN 40 U/L (case 15).
  alanine_aminotransferase_increased = {
    kind = "transaminase", analyte = "alt", abbrev = "ALT",
    title = "alanine aminotransferase increased", gunits = { "U/L" },
    limit = { 40, "U/L" },
  },
  -- domain §2: "identical wording to ALT".  Default ULN 40 U/L.
  aspartate_aminotransferase_increased = {
    kind = "transaminase", analyte = "ast", abbrev = "AST",
    title = "aspartate aminotransferase increased", gunits = { "U/L" },
    limit = { 40, "U/L" },
  },
  -- domain §2 "Blood bilirubin increased"; PF-GRADER ctcae5_bili.sas.
  -- Graded on multiples, so any mass or molar unit works once the ULN is
  -- in the same unit.  Default ULN 1.2 mg/dL (case 17).
  blood_bilirubin_increased = {
    kind = "bilirubin", analyte = "bilirubin", abbrev = "Bilirubin",
    title = "blood bilirubin increased",
    gunits = { "mg/dL", "umol/L" }, limit = { 1.2, "mg/dL" },
  },
  -- domain §2 "Creatinine increased"; PF-GRADER ctcae5_creat.sas.
  -- Default ULN 1.2 mg/dL (case 18).
  creatinine_increased = {
    kind = "creatinine", analyte = "creatinine", abbrev = "Creatinine",
    title = "creatinine increased",
    gunits = { "mg/dL", "umol/L" }, limit = { 1.2, "mg/dL" },
  },
  -- domain §2 "Cholesterol high": G1 >ULN-300 mg/dL (>ULN-7.75 mmol/L),
  -- G2 >300-400 (>7.75-10.34), G3 >400-500 (>10.34-12.92), G4 >500
  -- (>12.92); PF-GRADER ctcae5_chol.sas.  Default ULN 200 mg/dL (case 19).
  cholesterol_high = {
    kind = "cholesterol", analyte = "cholesterol", abbrev = "Cholesterol",
    title = "cholesterol high", gunits = { "mg/dL", "mmol/L" },
    bands = {
      ["mg/dL"] = { 300, 400, 500 },
      ["mmol/L"] = { 7.75, 10.34, 12.92 },
    },
    limit = { 200, "mg/dL" },
  },
  -- domain §2 "Hypertriglyceridemia": G1 150-300 mg/dL (1.71-3.42 mmol/L,
  -- lower bound inclusive), G2 >300-500 (>3.42-5.7), G3 >500-1000
  -- (>5.7-11.4), G4 >1000 (>11.4); PF-GRADER ctcae5_trig.sas.  No ULN.
  hypertriglyceridemia = {
    kind = "triglycerides", analyte = "triglycerides",
    abbrev = "Triglycerides", title = "hypertriglyceridemia",
    gunits = { "mg/dL", "mmol/L" },
    bands = {
      ["mg/dL"] = { 150, 300, 500, 1000 },
      ["mmol/L"] = { 1.71, 3.42, 5.7, 11.4 },
    },
  },
  -- domain §2 "Chronic kidney disease": G1 <LLN-60, G2 59-30, G3 29-15,
  -- G4 <15 mL/min/1.73 m2.  The integer cells are read as half-open bands
  -- (G2 30 <= eGFR < 60, ...), which agrees with the label's boundary note
  -- (domain §1.5: eGFR 60 is normal dosing, 30 is the reduced dose).  The
  -- default LLN 90 mL/min/1.73 m2 is an assumption (not in the domain
  -- file, UNVERIFIED); a reference range in obs or opts overrides it.
  -- Proteinuria, the other Grade 1 criterion, is not graded here.
  chronic_kidney_disease = {
    kind = "decreased", analyte = "egfr", abbrev = "eGFR",
    title = "chronic kidney disease", gunits = { "mL/min/{1.73_m2}" },
    bands = { 60, 30, 15 }, limit = { 90, "mL/min/{1.73_m2}" },
  },
}

-- Which term grades each analyte, for ctcae.term_for.
local TERM_FOR = {}
for name, t in pairs(TERMS) do TERM_FOR[t.analyte] = name end

-- fmt(x) prints a number the way a laboratory would: no trailing ".0" and
-- no float noise.
-- Written numbers are remembered (reasons are built on every grade, and
-- laboratory values repeat); the table starts over when it is full.
local written, written_size, WRITTEN_MAX = {}, 0, 4096

local function fmt(x)
  -- NaN cannot be a key; 0 and -0 are the same key but print differently.
  if x ~= x or x == 0 then return string.format("%.10g", x) end
  local s = written[x]
  if s then return s end
  s = string.format("%.10g", x)
  if written_size >= WRITTEN_MAX then written, written_size = {}, 0 end
  written[x] = s
  written_size = written_size + 1
  return s
end

-- finite(x) is true for a number that is neither NaN nor infinite.
local function finite(x)
  return type(x) == "number" and x == x and x ~= HUGE and x ~= -HUGE
end

-- grading_unit(t, canon) returns the unit the term grades `canon` in: the
-- unit itself when it has a CTCAE band, else the first band unit of the
-- same kind; nil when the term cannot grade this kind of unit.
local function find_grading_unit(t, canon)
  for _, u in ipairs(t.gunits) do
    if u == canon then return u end
  end
  local kind = units.kind(canon)
  for _, u in ipairs(t.gunits) do
    if units.kind(u) == kind then return u end
  end
  return nil
end

-- (Remembered per term: a handful of units each; false = cannot grade.)
local function grading_unit(t, canon)
  local by = t.gunit_for
  if not by then
    by = {}
    t.gunit_for = by
  end
  local gu = by[canon]
  if gu == nil then
    gu = find_grading_unit(t, canon) or false
    by[canon] = gu
  end
  return gu or nil
end

-- Options when none are given (read only: no table per call).
local NO_OPTS = {}

-- to_gu(x, what, canon, gu, analyte) converts a number given in the
-- arrival unit (canon) into the grading unit (gu).
local function to_gu(x, what, canon, gu, analyte)
  if x == nil then return nil end
  if not finite(x) then
    return nil, ("%s is not a finite number"):format(what)
  end
  return units.convert(x, canon, gu, analyte)
end

-- prepare(term, obs, opts) validates the call and brings the value, the
-- reference limit and the baseline into the grading unit.  It returns a
-- context table, or nil and an error message.
local function prepare(term, obs, opts)
  local t = TERMS[term]
  if not t then
    return nil, ("unknown CTCAE term '%s'"):format(tostring(term))
  end
  -- The engine may hand over its observation as a table or as a userdata
  -- with fields; only the fields below are read.
  if type(obs) ~= "table" and type(obs) ~= "userdata" then
    return nil, "obs must be a table"
  end
  opts = opts or NO_OPTS
  if type(opts) ~= "table" then return nil, "opts must be a table" end
  if not finite(obs.value) then
    return nil, ("%s value is not a finite number"):format(t.abbrev)
  end
  -- A code from another analyte set means the rule passed the wrong
  -- observation; grading it would produce a plausible but false grade.
  -- Codes this module does not know (local lab codes) are accepted.
  if obs.code ~= nil then
    local analyte = codes.loinc_analyte(obs.code)
    if analyte and analyte ~= t.analyte then
      return nil, ("LOINC %s is %s, not %s: cannot grade %s")
        :format(obs.code, analyte, t.analyte, t.title)
    end
  end
  local canon = units.canonical(obs.unit)
  if not canon then
    return nil, ("unknown unit '%s'"):format(tostring(obs.unit))
  end
  local gu = grading_unit(t, canon)
  if not gu then
    return nil, ("cannot convert %s to %s"):format(canon, t.gunits[1])
  end
  local analyte = t.analyte
  local v, err = to_gu(obs.value, "value", canon, gu, analyte)
  if not v then return nil, err end
  -- All fields in the constructor (nil ones too), so that setting them
  -- below needs no rehash.
  local ctx = { t = t, value = v, unit = gu, limit = nil,
    limit_source = nil, baseline = nil }
  -- The reference limit: opts first (the caller knows best), then the
  -- observation's own range, then the documented default.  For decreased
  -- terms it is the LLN, for increased ones the ULN.
  local own, what, source
  if t.kind == "decreased" or t.kind == "anemia" then
    own, what = opts.lln, "opts.lln"
    if own == nil then own, what = obs.ref_low, "ref_low" end
  else
    own, what = opts.uln, "opts.uln"
    if own == nil then own, what = obs.ref_high, "ref_high" end
  end
  if own ~= nil then
    ctx.limit, err = to_gu(own, what, canon, gu, analyte)
    if ctx.limit == nil then return nil, err end
    source = what
  elseif t.limit then
    ctx.limit, err = units.convert(t.limit[1], t.limit[2], gu, analyte)
    if ctx.limit == nil then return nil, err end
    source = "default"
  end
  ctx.limit_source = source
  if opts.baseline ~= nil then
    ctx.baseline, err = to_gu(opts.baseline, "opts.baseline", canon, gu, analyte)
    if ctx.baseline == nil then return nil, err end
  end
  return ctx
end

-- reason(ctx, grade, rel, extra) builds the reason string, e.g.
-- "ANC 900 cells/mm3 < 1000: grade 3 (CTCAE v5 neutrophil count
-- decreased)".
-- (Concatenation rather than string.format: a reason is built on every
-- grade, most of them 0, and format costs several times as much.)
local GRADE_TEXT = { [0] = "0", "1", "2", "3", "4" }

local function reason(ctx, grade, rel, extra)
  local t = ctx.t
  return t.abbrev .. " " .. fmt(ctx.value) .. " " .. ctx.unit .. " " .. rel
    .. ": grade " .. GRADE_TEXT[grade] .. " (CTCAE v5 " .. t.title
    .. (extra and ("; " .. extra) or "") .. ")"
end

-- grade_decreased: counts and eGFR.  bands = {g2 upper, g3 upper,
-- g4 upper}.  Grades 2-4 from the band alone (PF-GRADER ctcae5_neut.sas:
-- "1000 <= value < 1500"); Grade 1 = band's upper > value >= g2 upper
-- and value < LLN (domain §2 boundary paragraph).  Decision: a laboratory
-- LLN below the Grade 2 band does not lower the grade (as PF-GRADER).
local function grade_decreased(ctx)
  local v, b = ctx.value, ctx.t.bands
  if v < b[3] then return 4, reason(ctx, 4, "< " .. fmt(b[3])) end
  if v < b[2] then return 3, reason(ctx, 3, "< " .. fmt(b[2])) end
  if v < b[1] then return 2, reason(ctx, 2, "< " .. fmt(b[1])) end
  if ctx.limit and v < ctx.limit then
    return 1, reason(ctx, 1, "< LLN " .. fmt(ctx.limit))
  end
  return 0, reason(ctx, 0, ">= LLN " .. fmt(ctx.limit or b[1]))
end

-- grade_anemia: the band of the arrival unit (domain §2 anemia row; the
-- SI cells are not exact conversions, so nothing is converted).  Grade 1
-- needs value < LLN; Grades 2 and 3 come from the band alone.
local function grade_anemia(ctx)
  local v, b = ctx.value, ctx.t.bands[ctx.unit]
  if v < b[2] then return 3, reason(ctx, 3, "< " .. fmt(b[2])) end
  if v < b[1] then return 2, reason(ctx, 2, "< " .. fmt(b[1])) end
  if v < ctx.limit then
    return 1, reason(ctx, 1, "< LLN " .. fmt(ctx.limit))
  end
  return 0, reason(ctx, 0, ">= LLN " .. fmt(ctx.limit))
end

-- above(ctx, ref, name, mults, g1_inclusive, extra) grades "> m x ref"
-- bands: mults = {g1 lower, g2 lower, g3 lower, g4 lower}; each bound is
-- exclusive ("> a - b x ULN" is a*ULN < value <= b*ULN), except the Grade 1
-- bound when g1_inclusive is set.
-- times(m, name) writes a bound the way the CTCAE cell does: "3.0 x ULN",
-- or just "ULN" for the 1.0 multiple (remembered: few names, few m).
local times_text = {}
local function times(m, name)
  local by = times_text[name]
  if not by then
    by = {}
    times_text[name] = by
  end
  local s = by[m]
  if not s then
    s = m == 1 and name or ("%.1f x %s"):format(m, name)
    by[m] = s
  end
  return s
end

local function above(ctx, ref, name, mults, g1_inclusive, extra)
  local v = ctx.value
  for g = 4, 1, -1 do
    local bound = units.round(mults[g] * ref)
    local hit
    if g == 1 and g1_inclusive then hit = v >= bound else hit = v > bound end
    if hit then
      local rel = ((g == 1 and g1_inclusive) and ">=" or ">") .. " "
        .. times(mults[g], name) .. " (" .. fmt(bound) .. ")"
      return g, reason(ctx, g, rel, extra)
    end
  end
  return 0, reason(ctx, 0, (g1_inclusive and "<" or "<=") .. " "
    .. times(mults[1], name) .. " (" .. fmt(units.round(mults[1] * ref))
    .. ")", extra)
end

-- baseline_abnormal(ctx) is true when a baseline was given and it is
-- above the ULN (domain §2 notes; PF-GRADER ALT_BASEABFL: BASE > ANRHI).
local function baseline_abnormal(ctx)
  return ctx.baseline ~= nil and ctx.baseline > ctx.limit
end

-- grade_transaminase: ALT and AST (domain §2).  Normal baseline: >ULN-3.0,
-- >3.0-5.0, >5.0-20.0, >20.0 x ULN.  Abnormal baseline: 1.5-3.0, >3.0-5.0,
-- >5.0-20.0, >20.0 x baseline; values below 1.5 x baseline are ungraded
-- (case 16: baseline 80, 110 -> 0).  Decision: exactly 1.5 x baseline is
-- Grade 1, because the CTCAE cell reads "1.5 - 3.0" without ">"
-- (PF-GRADER uses "<"; domain §2 marks this UNVERIFIED).
local function grade_transaminase(ctx)
  if baseline_abnormal(ctx) then
    return above(ctx, ctx.baseline, "baseline", { 1.5, 3.0, 5.0, 20.0 },
      true, ("baseline %s > ULN %s"):format(fmt(ctx.baseline),
      fmt(ctx.limit)))
  end
  return above(ctx, ctx.limit, "ULN", { 1.0, 3.0, 5.0, 20.0 }, false,
    "baseline normal")
end

-- grade_bilirubin: domain §2.  Normal baseline: >ULN-1.5, >1.5-3.0,
-- >3.0-10.0, >10.0 x ULN.  Abnormal baseline (> ULN): >1.0-1.5, >1.5-3.0,
-- >3.0-10.0, >10.0 x baseline (PF-GRADER ctcae5_bili.sas).
local function grade_bilirubin(ctx)
  if baseline_abnormal(ctx) then
    return above(ctx, ctx.baseline, "baseline", { 1.0, 1.5, 3.0, 10.0 },
      false, ("baseline %s > ULN %s"):format(fmt(ctx.baseline),
      fmt(ctx.limit)))
  end
  return above(ctx, ctx.limit, "ULN", { 1.0, 1.5, 3.0, 10.0 }, false,
    "baseline normal")
end

-- grade_creatinine: domain §2: G1 >ULN-1.5, G2 >1.5-3.0, G3 >3.0-6.0,
-- G4 >6.0 x ULN.  The CTCAE cells also list ">1.5 - 3.0 x baseline" (G2)
-- and ">3.0 x baseline" (G3).  Decision: grade on ULN multiples only, as
-- PF-GRADER ctcae5_creat.sas does.  Domain §6 case 18 (baseline 1.0,
-- 1.8 mg/dL -> Grade 1) rules out applying the baseline criteria to a
-- normal baseline, and for a baseline above the ULN they can never give a
-- higher grade than the ULN criteria, so opts.baseline is ignored.
local function grade_creatinine(ctx)
  return above(ctx, ctx.limit, "ULN", { 1.0, 1.5, 3.0, 6.0 }, false)
end

-- grade_cholesterol: fixed bands of the arrival unit for Grades 2-4,
-- Grade 1 = ULN < value <= first band (domain §2; PF-GRADER
-- ctcae5_chol.sas).
local function grade_cholesterol(ctx)
  local v, b = ctx.value, ctx.t.bands[ctx.unit]
  if v > b[3] then return 4, reason(ctx, 4, "> " .. fmt(b[3])) end
  if v > b[2] then return 3, reason(ctx, 3, "> " .. fmt(b[2])) end
  if v > b[1] then return 2, reason(ctx, 2, "> " .. fmt(b[1])) end
  if v > ctx.limit then
    return 1, reason(ctx, 1, "> ULN " .. fmt(ctx.limit))
  end
  return 0, reason(ctx, 0, "<= ULN " .. fmt(ctx.limit))
end

-- grade_triglycerides: fixed bands of the arrival unit; Grade 1 starts
-- at (and includes) 150 mg/dL or 1.71 mmol/L (domain §2; case 20: 1.70
-- mmol/L is ungraded).
local function grade_triglycerides(ctx)
  local v, b = ctx.value, ctx.t.bands[ctx.unit]
  if v > b[4] then return 4, reason(ctx, 4, "> " .. fmt(b[4])) end
  if v > b[3] then return 3, reason(ctx, 3, "> " .. fmt(b[3])) end
  if v > b[2] then return 2, reason(ctx, 2, "> " .. fmt(b[2])) end
  if v >= b[1] then return 1, reason(ctx, 1, ">= " .. fmt(b[1])) end
  return 0, reason(ctx, 0, "< " .. fmt(b[1]))
end

local GRADERS = {
  decreased = grade_decreased,
  anemia = grade_anemia,
  transaminase = grade_transaminase,
  bilirubin = grade_bilirubin,
  creatinine = grade_creatinine,
  cholesterol = grade_cholesterol,
  triglycerides = grade_triglycerides,
}

--[[
ctcae.grade(term, obs [, opts]) -> grade, reason | nil, err.

  term: one of ctcae.terms().
  obs: {value = number, unit = string, code = LOINC or nil,
        ref_low = number or nil, ref_high = number or nil}; value,
        ref_low and ref_high are in obs.unit.
  opts: {baseline = number, lln = number, uln = number}, all in obs.unit.
        The LLN/ULN used is opts.lln/uln, else obs.ref_low/ref_high, else
        the term's documented default (ctcae.default_limit).
  Returns the CTCAE v5 grade as an integer 0..4 (0 = normal or not
  graded) and a reason such as
  "ANC 900 cells/mm3 < 1000: grade 3 (CTCAE v5 neutrophil count
  decreased)".  Counts are graded in cells/mm3 after an exact conversion;
  Hb and lipids in the band of the arrival unit.  Returns nil and a
  message for an unknown term or unit, a unit the term cannot use (e.g.
  "%" for a lymphocyte count), a LOINC code of another analyte, or a value
  that is not a finite number.

  Example: ctcae.grade("neutrophil_count_decreased",
             {value = 0.9, unit = "10*3/uL", code = "751-8"}) --> 3, "..."
]]
function ctcae.grade(term, obs, opts)
  local ctx, err = prepare(term, obs, opts)
  if not ctx then return nil, err end
  return GRADERS[ctx.t.kind](ctx)
end

--[[
ctcae.normal_limit(term, obs [, opts]) -> limit, unit, source | nil, err.

  The LLN (decreased terms, anemia) or ULN (increased terms) that
  ctcae.grade uses for this observation, in the grading unit, and where
  it came from: "opts.lln", "opts.uln", "ref_low", "ref_high" or
  "default".  Hypertriglyceridemia has no limit (nil, nil, nil).  Useful
  for rules such as Hy's law (ALT >= 3 x ULN, bilirubin >= 2 x ULN).
]]
function ctcae.normal_limit(term, obs, opts)
  local ctx, err = prepare(term, obs, opts)
  if not ctx then return nil, err end
  if ctx.limit == nil then return nil end
  return ctx.limit, ctx.unit, ctx.limit_source
end

--[[
ctcae.default_limit(term) -> value, unit | nil.

  The documented default LLN/ULN of a term: ANC 2000, ALC 1000, WBC 4000,
  platelets 150000 cells/mm3; Hb 12.0 g/dL; ALT/AST 40 U/L; bilirubin and
  creatinine 1.2 mg/dL; cholesterol 200 mg/dL; eGFR 90 mL/min/{1.73_m2}
  (UNVERIFIED).  These are the values domain §6 cases 10-19 use.
]]
function ctcae.default_limit(term)
  local t = TERMS[term]
  if not t or not t.limit then return nil end
  return t.limit[1], t.limit[2]
end

--[[
ctcae.terms() -> sorted list of every term name ctcae.grade accepts.
]]
function ctcae.terms()
  local names = {}
  for name in pairs(TERMS) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--[[
ctcae.term_for(code) -> term name, or nil.

  The term that grades a LOINC code: 751-8 -> "neutrophil_count_decreased",
  718-7 -> "anemia", 2571-8 -> "hypertriglyceridemia", 33914-3 ->
  "chronic_kidney_disease", ...  LDL, HDL and D-dimer have no CTCAE term
  here and give nil.
]]
function ctcae.term_for(code)
  local analyte = codes.loinc_analyte(code)
  return analyte and TERM_FOR[analyte] or nil
end

return ctcae
