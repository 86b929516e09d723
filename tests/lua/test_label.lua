-- Tests of scripts/label.lua: label thresholds, renal dosing and OAT3
-- dosing (domain §1.4, §1.5, §1.9), with every domain §6 case 1-8 and
-- 21-24 exactly as written, plus edges.
-- Run: pvlua scripts tests/lua/test_label.lua

local check = require "check"
local label = check.sandboxed("label")
local units = check.sandboxed("units")
local ctcae = check.sandboxed("ctcae")

-- stop(kind, analyte, value, ind, reg, expected): one label.check.
local function stop(kind, analyte, value, ind, reg, expected)
  local hit, limit, text = label.check(kind, analyte, value, ind, reg)
  check.eq(hit, expected, ("check(%s, %s, %s, %s, %s) -> %s"):format(kind,
    analyte, tostring(value), tostring(ind), tostring(reg), tostring(text)))
  return hit, limit, text
end

-- both(analyte, value, ind, reg, expected): the label uses one limit for
-- "do not initiate" and "interrupt" (domain §1.4).
local function both(analyte, value, ind, reg, expected)
  stop("initiate", analyte, value, ind, reg, expected)
  return stop("interrupt", analyte, value, ind, reg, expected)
end

-- Case 1: RA/AA, ANC 999 -> do not initiate / interrupt [DRUGS19 Table 2;
-- DRUGS23].
for _, ind in ipairs({ "ra", "aa" }) do
  local _, limit, text = both("anc", 999, ind, "us", true)
  check.eq(limit, 1000, "case 1 limit")
  check.eq(text, "Interrupt baricitinib until ANC >= 1000 cells/mm3 "
    .. "(US label, RA/AA)", "case 1 interrupt text")
end
check.eq(select(3, label.check("initiate", "anc", 999, "ra", "us")),
  "Baricitinib initiation is not recommended with ANC < 1000 cells/mm3 "
  .. "(US label, RA/AA)", "case 1 initiate text")

-- Case 2: RA/AA, ANC 1000 -> maintain [DRUGS19 "ANC greater than or equal
-- to 1000 Maintain dose"].
for _, ind in ipairs({ "ra", "aa" }) do
  local _, limit, text = both("anc", 1000, ind, "us", false)
  check.eq(limit, 1000, "case 2 limit")
  check.eq(text, "ANC 1000 cells/mm3 >= 1000: maintain dose (US label, "
    .. "RA/AA)", "case 2 text")
end

-- Case 3: RA/AA, ALC 499 -> interrupt; ALC 500 -> maintain [DRUGS19
-- Table 1].
for _, ind in ipairs({ "ra", "aa" }) do
  local _, _, text = both("alc", 499, ind, "us", true)
  check.eq(text, "Interrupt baricitinib until ALC >= 500 cells/mm3 "
    .. "(US label, RA/AA)", "case 3 text")
  both("alc", 500, ind, "us", false)
end

-- Case 4: RA/AA, Hb 7.9 g/dL -> interrupt; Hb 8.0 g/dL -> maintain
-- [DRUGS19 Table 3].
for _, ind in ipairs({ "ra", "aa" }) do
  local _, limit, text = both("hb", 7.9, ind, "us", true)
  check.eq(limit, 8, "case 4 limit")
  check.eq(text, "Interrupt baricitinib until Hb >= 8 g/dL (US label, "
    .. "RA/AA)", "case 4 text")
  both("hb", 8.0, ind, "us", false)
end

-- Case 5: COVID-19, ALC 199 -> avoid initiation / interrupt; ALC 200 ->
-- maintain [MEDSCAPE; DRUGS23].
do
  local _, limit, text = both("alc", 199, "covid19", "us", true)
  check.eq(limit, 200, "case 5 limit")
  check.eq(text, "Avoid initiation or interrupt baricitinib until ALC >= "
    .. "200 cells/mm3 (US label, COVID-19)", "case 5 text")
  both("alc", 200, "covid19", "us", false)
end

-- Case 6: COVID-19, ANC 499 -> avoid initiation / interrupt; ANC 500 ->
-- maintain [MEDSCAPE].
both("anc", 499, "covid19", "us", true)
both("anc", 500, "covid19", "us", false)
check.eq(label.threshold("interrupt", "anc", "covid19", "us"), 500,
  "case 6 limit")

-- Case 7: COVID-19, Hb 7.5 g/dL -> no label interruption rule (no COVID
-- Hb threshold); CTCAE anemia Grade 3 [MEDSCAPE; CTCAE5].
do
  local limit, why = label.threshold("interrupt", "hb", "covid19", "us")
  check.eq(limit, nil, "case 7: no COVID-19 Hb threshold")
  check.matches(why, "no Hb threshold for COVID-19", "case 7 reason")
  local hit, lim, text = both("hb", 7.5, "covid19", "us", false)
  check.eq(hit, false, "case 7: no interruption")
  check.eq(lim, nil, "case 7: no limit")
  check.matches(text, "No label action", "case 7 text")
  check.eq(ctcae.grade("anemia", { value = 7.5, unit = "g/dL",
    code = "718-7" }), 3, "case 7: CTCAE anemia Grade 3")
end

-- Case 8: EU, ANC 0.99 x10^9/L -> interrupt; ANC 1.0 x10^9/L -> may
-- restart [LILLY-EU-LAB].
do
  local low = units.convert(0.99, "x10E9/L", "cells/mm3", "751-8")
  local ok = units.convert(1.0, "10*9/L", "cells/mm3", "751-8")
  local _, limit, text = stop("interrupt", "anc", low, "ra", "eu", true)
  check.eq(limit, 1000, "case 8 limit")
  check.eq(text, "Interrupt baricitinib; it may be restarted once ANC >= "
    .. "1000 cells/mm3 (1.0 x 10^9/L) (EU SmPC)", "case 8 interrupt text")
  local _, _, text2 = stop("interrupt", "anc", ok, "ra", "eu", false)
  check.matches(text2, "may continue or be restarted", "case 8 restart")
end

-- Edges: the other EU limits, initiation wording and the EU COVID-19
-- decision.
both("alc", 499, "ra", "eu", true)
both("alc", 500, "aa", "eu", false)
both("hb", 7.99, "ra", "eu", true)
both("hb", 8, "ra", "eu", false)
check.eq(select(3, label.check("initiate", "alc", 450, "ra", "eu")),
  "Do not initiate baricitinib: ALC < 500 cells/mm3 (0.5 x 10^9/L) "
  .. "(EU SmPC)", "EU initiate text")
check.eq(select(3, label.check("interrupt", "hb", 7, "ra", "eu")),
  "Interrupt baricitinib: Hb < 8 g/dL (EU SmPC)", "EU Hb text")
both("anc", 999, "covid19", "eu", true)
check.matches(select(2, label.threshold("interrupt", "anc", "covid19",
  "eu")), "UNVERIFIED", "EU COVID-19 limits are marked UNVERIFIED")
check.eq(label.threshold("initiate", "alc", "covid19", "us"), 200,
  "US COVID-19 ALC")
check.eq(label.threshold("initiate", "hb", "aa", "us"), 8, "US AA Hb")
check.matches(select(2, label.threshold("interrupt", "anc", "ra", "us")),
  "DRUGS19", "citation names its source")
-- Strictly "<" for fractional values too.
stop("interrupt", "anc", 999.5, "ra", "us", true)
stop("interrupt", "hb", 7.95, "ra", "us", true)
-- Selectors: case-insensitive, "covid-19" accepted, nil = ra/us.
stop("interrupt", "anc", 999, "RA", "US", true)
stop("interrupt", "anc", 499, "COVID-19", "us", true)
stop("interrupt", "anc", 999, nil, nil, true)
check.raises(function () label.check("interrupt", "anc", 1, "ra", "uk") end,
  "unknown region 'uk'", "bad region raises")
check.raises(function () label.check("interrupt", "anc", 1, "psa", "us") end,
  "unknown indication 'psa'", "bad indication raises")
check.raises(function () label.check("stop", "anc", 1, "ra", "us") end,
  "unknown kind 'stop'", "bad kind raises")
check.raises(function () label.check("interrupt", "plt", 1, "ra", "us") end,
  "unknown analyte 'plt'", "bad analyte raises")
check.raises(function () label.check("interrupt", "anc", "1", "ra", "us")
  end, "value must be a number", "string value raises")

-- renal(egfr, current, ind, reg, dose, recommended, adjust): one
-- label.renal_dose call.
local function renal(egfr, current, ind, reg, dose, recommended, adjust)
  local r = label.renal_dose(egfr, current, ind, reg)
  local what = ("renal_dose(%s, %s, %s, %s) -> %s"):format(egfr,
    tostring(current), ind, reg, tostring(r.text))
  check.eq(r.dose, dose, what .. " dose")
  check.eq(r.recommended, recommended, what .. " recommended")
  if adjust ~= nil then check.eq(r.adjust, adjust, what .. " adjust") end
  return r
end

-- Case 21: US RA renal dosing by eGFR: 60 -> 2 mg; 59 -> 1 mg; 30 -> 1 mg;
-- 29 -> not recommended [LILLY-US-RA; USPI-OLD].
renal(60, 2, "ra", "us", 2, true, false)
renal(59, 2, "ra", "us", 1, true, true)
renal(30, 2, "ra", "us", 1, true, true)
renal(29, 2, "ra", "us", nil, false, true)

-- Case 22: US COVID-19 renal dosing by eGFR: 60 -> 4 mg; 59 -> 2 mg;
-- 29 -> 1 mg; 15 -> 1 mg; 14 -> not recommended [EUA-DOSE; UCLA pathway].
renal(60, 4, "covid19", "us", 4, true, false)
renal(59, 4, "covid19", "us", 2, true, true)
renal(29, 4, "covid19", "us", 1, true, true)
renal(15, 4, "covid19", "us", 1, true, true)
local r14 = renal(14, 4, "covid19", "us", nil, false, true)
check.matches(r14.text, "dialysis", "case 22: dialysis/ESRD/AKI named")

-- Case 23: EU adult on 4 mg, eGFR 45 -> 2 mg; eGFR 25 -> not recommended
-- [LILLY-EU-RA; MIMS-HK].
renal(45, 4, "ra", "eu", 2, true, true)
renal(25, 4, "ra", "eu", nil, false, true)

-- Renal edges.
local r = renal(59, 2, "ra", "us", 1, true, true)
check.eq(r.text, "eGFR 59 (30 to <60): 1 mg once daily (US label, RA)",
  "US RA reduced text")
check.eq(r.unverified, false, "US RA is verified")
check.eq(label.renal_dose(29, 2, "ra", "us").text,
  "eGFR 29 (< 30): baricitinib is not recommended (US label, RA)",
  "US RA not recommended text")
renal(59.9, 2, "ra", "us", 1, true, true)
renal(90, nil, "ra", "us", 2, true, false)
renal(45, nil, "ra", "us", 1, true, false)      -- no current dose: no adjust
renal(45, 1, "ra", "us", 1, true, false)        -- already 1 mg
renal(60, 4, "ra", "eu", 4, true, false)
renal(60, 2, "ra", "eu", 2, true, false)        -- EU 2 mg is a label dose
renal(30, 4, "ra", "eu", 2, true, true)
renal(29.9, 2, "ra", "eu", nil, false, true)
renal(45, 2, "ra", "eu", 2, true, false)
renal(30, 4, "covid19", "us", 2, true, true)
renal(0, nil, "covid19", "us", nil, false, false)
-- US AA rows are UNVERIFIED: expected 4 -> 2 mg, 2 -> 1 mg, < 30 not
-- recommended (domain §1.5).
local ra4 = renal(45, 4, "aa", "us", 2, true, true)
check.eq(ra4.unverified, true, "US AA renal marked unverified")
check.matches(ra4.text, "UNVERIFIED", "US AA renal text says UNVERIFIED")
check.matches(ra4.text, "US label, AA", "US AA names the indication")
renal(45, 2, "aa", "us", 1, true, true)
renal(45, nil, "aa", "us", 1, true, false)
renal(29, 4, "aa", "us", nil, false, true)
renal(60, 4, "aa", "us", 4, true, false)
check.matches(label.renal_dose(29, 4, "aa", "us").text, "UNVERIFIED",
  "US AA not recommended is UNVERIFIED")
check.raises(function () label.renal_dose(-1, 2, "ra", "us") end,
  "egfr must be a non-negative number", "negative eGFR raises")
check.raises(function () label.renal_dose(45, 0, "ra", "us") end,
  "current_dose_mg must be nil or a positive number", "zero dose raises")

-- oat3(current, ind, reg, dose, adjust): one label.oat3_dose call.
local function oat3(current, ind, reg, dose, adjust)
  local o = label.oat3_dose(current, ind, reg)
  local what = ("oat3_dose(%s, %s, %s) -> %s"):format(tostring(current),
    ind, reg, tostring(o.text))
  check.eq(o.dose, dose, what .. " dose")
  check.eq(o.recommended, true, what .. " recommended")
  check.eq(o.adjust, adjust, what .. " adjust")
  return o
end

-- Case 24: Probenecid co-prescribed: US RA patient on 2 mg -> 1 mg; EU
-- adult -> 2 mg [LILLY-US-RA; MIMS-HK].
local o24 = oat3(2, "ra", "us", 1, true)
check.eq(o24.text, "With a strong OAT3 inhibitor (e.g. probenecid): 1 mg "
  .. "once daily (US label, RA)", "case 24 US text")
oat3(4, "ra", "eu", 2, true)
oat3(2, "ra", "eu", 2, false)

-- OAT3 edges: US AA and COVID-19 are UNVERIFIED (expected 4 -> 2, 2 -> 1).
oat3(1, "ra", "us", 1, false)
local oaa = oat3(4, "aa", "us", 2, true)
check.eq(oaa.unverified, true, "US AA OAT3 unverified")
check.matches(oaa.text, "UNVERIFIED", "US AA OAT3 text")
oat3(2, "aa", "us", 1, true)
oat3(1, "aa", "us", 1, false)                  -- never below a 1 mg tablet
oat3(4, "covid19", "us", 2, true)
oat3(nil, "covid19", "us", 2, false)
check.eq(label.oat3_dose(2, "ra", "us").unverified, false,
  "US RA OAT3 verified")

-- normal_dose (domain §1.3).
check.eq(label.normal_dose("ra", "us"), 2, "US RA normal dose")
check.eq(label.normal_dose("aa", "us"), 2, "US AA normal dose")
check.eq(label.normal_dose("aa", "us", 4), 4, "US AA 4 mg kept")
check.eq(label.normal_dose("covid19", "us"), 4, "US COVID-19 dose")
check.eq(label.normal_dose("ra", "eu"), 4, "EU dose")
check.eq(label.normal_dose("ra", "eu", 2), 2, "EU 2 mg kept")

check.done()
