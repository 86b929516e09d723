-- plugins/renal.lua: baricitinib dose checks (DESIGN.md rule pack, signal
-- "renal"; domain §1.5, §1.9, §6 cases 21-24).
--
-- baricitinib.dose_adjustment raises two kinds of alert:
--
-- 1. key "renal": an eGFR (LOINC 33914-3, 62238-1, 98979-8; mL/min/1.73 m2,
--    or mL/min as the EU's creatinine clearance) measured while the
--    patient takes baricitinib, for which label.renal_dose says the
--    current dose is too high or baricitinib is not recommended:
--      US RA        >= 60 2 mg; 30 to <60 1 mg; < 30 not recommended
--                   (LILLY-US-RA; USPI-OLD; case 21)
--      US COVID-19  >= 60 4 mg; 30 to <60 2 mg; 15 to <30 1 mg; < 15 not
--                   recommended (EUA-DOSE; UCLA pathway; case 22)
--      US AA        30 to <60 4 -> 2, 2 -> 1 mg; < 30 not recommended
--                   (UNVERIFIED, domain §1.5)
--      EU adults    30 to <60 2 mg; < 30 not recommended (LILLY-EU-RA;
--                   MIMS-HK; case 23)
--    eGFR 60 is normal dosing and 30 the reduced dose (domain §1.5
--    boundary note).  Reduce -> medium, not recommended -> high; the grade
--    is the CTCAE v5 chronic kidney disease grade of the eGFR (domain §2).
-- 2. key "oat3": a strong OAT3 inhibitor (probenecid; codes.lua) taken at
--    the same time as baricitinib, with a baricitinib dose above
--    label.oat3_dose (US RA 1 mg, LILLY-US-RA; EU 2 mg, MIMS-HK; case 24).
--    Medium.
--
-- "The current dose" is the dose of the exposure in force at the time
-- (patient:current: after a dose change, the new record).  Decision: only
-- days on which the drug is taken count (start to the end of the last
-- day), not the washout, because a dose recommendation is about doses
-- still being given.  A dose that is unknown (no dose, or not in mg) is
-- not guessed: the alert then asks to verify it whenever the label's dose
-- for that eGFR is below the usual one.
--
-- Facts may arrive in any order: an exposure that arrives after the eGFR
-- looks back at the eGFR results of its dosing period (pack.judge and
-- pack.look_back with taking = true), and either drug of an OAT3 pair may
-- arrive second.
local ctcae = require "ctcae"
local codes = require "codes"
local label = require "label"
local pack = require "pack"
local fmt = pack.fmt

local DAY = pv.days
local OAT3 = codes.oat3_strong_inhibitors()
local EXPOSURES = { "baricitinib" }
for _, d in ipairs(OAT3) do EXPOSURES[#EXPOSURES + 1] = d end

-- dose_mg(e) -> the daily dose in mg, or nil when unknown or not in mg.
local function dose_mg(e)
  if type(e.dose) ~= "number" or e.dose <= 0 then return nil end
  if e.dose_unit ~= nil and e.dose_unit:lower() ~= "mg" then return nil end
  return e.dose
end

local function dose_text(e)
  if not e.dose then return "dose not recorded" end
  return ("%s %s"):format(fmt(e.dose), e.dose_unit or "mg")
end

-- dosing_end(e): the first second after the last day taken; nil = open.
local function dosing_end(e)
  if e["end"] == nil then return nil end
  return e["end"] - e["end"] % DAY + DAY
end

local function is_baricitinib(e)
  return codes.drug_matches("baricitinib", e)
end

----------------------------------------------------------------------------
-- eGFR
----------------------------------------------------------------------------

local function assess_renal(obs, exposure)
  if pack.void(obs) then return nil end
  local egfr = obs:value_in("mL/min/{1.73_m2}")
  local ind, reg = pv.label.indication, pv.label.region
  local dose = dose_mg(exposure)
  local r = label.renal_dose(egfr, dose, ind, reg)
  if dose ~= nil then
    if not r.adjust then return nil end
  elseif r.recommended and r.dose >= label.normal_dose(ind, reg) then
    return nil
  end
  local grade = ctcae.grade("chronic_kidney_disease", obs)
  local title, action
  if not r.recommended then
    title = ("Baricitinib not recommended at eGFR %s"):format(fmt(egfr))
    action = ("Stop baricitinib: %s [%s]."):format(r.text, r.citation)
  elseif dose then
    title = ("Baricitinib %s mg too high for eGFR %s: label dose %s mg")
      :format(fmt(dose), fmt(egfr), fmt(r.dose))
    action = ("Reduce baricitinib to %s mg once daily: %s [%s]."):format(
      fmt(r.dose), r.text, r.citation)
  else
    title = ("Baricitinib dose to verify at eGFR %s: label dose %s mg")
      :format(fmt(egfr), fmt(r.dose))
    action = ("Verify the baricitinib dose (not recorded in mg): %s [%s].")
      :format(r.text, r.citation)
  end
  return pv.alert {
    severity = r.recommended and "medium" or "high",
    grade = grade and grade >= 2 and grade or nil,
    title = title,
    detail = ("eGFR %s %s on %s%s; %s.%s")
      :format(obs.value_text or fmt(obs.value), obs.unit or "",
      pv.date(obs.at),
      grade and grade >= 2
        and (" (CTCAE v5 chronic kidney disease grade %d)"):format(grade)
        or "",
      pack.exposure_text(exposure, obs.at)
        .. (exposure.dose and "" or " (dose not recorded)"),
      r.unverified and " The label row used is UNVERIFIED (domain §1.5)."
        or ""),
    action = action,
    key = "renal",
    evidence = { obs, exposure },
  }
end

----------------------------------------------------------------------------
-- Strong OAT3 inhibitors
----------------------------------------------------------------------------

-- overlap(a, b) -> first shared second, or nil when the dosing periods of
-- a and b do not overlap.
local function overlap(a, b)
  local from = math.max(a.start, b.start)
  local ae, be = dosing_end(a), dosing_end(b)
  local to = (ae and be) and math.min(ae, be) or ae or be
  if to ~= nil and from >= to then return nil end
  return from
end

local function assess_oat3(bari, inhibitor)
  local from = overlap(bari, inhibitor)
  if not from then return nil end
  local ind, reg = pv.label.indication, pv.label.region
  local dose = dose_mg(bari)
  local r = label.oat3_dose(dose, ind, reg)
  if dose ~= nil and not r.adjust then return nil end
  local title, action
  if dose then
    title = ("Baricitinib %s mg with %s: label dose %s mg"):format(
      fmt(dose), inhibitor.drug, fmt(r.dose))
    action = ("Reduce baricitinib to %s mg once daily while %s is given: "
      .. "%s [%s]."):format(fmt(r.dose), inhibitor.drug, r.text, r.citation)
  else
    title = ("Baricitinib with %s: verify the dose (label %s mg)"):format(
      inhibitor.drug, fmt(r.dose))
    action = ("Verify the baricitinib dose (not recorded in mg): %s [%s].")
      :format(r.text, r.citation)
  end
  return pv.alert {
    severity = "medium",
    title = title,
    detail = ("%s (a strong OAT3 inhibitor) from %s%s and baricitinib %s "
      .. "from %s%s are taken together from %s.%s"):format(
      inhibitor.drug, pv.date(inhibitor.start),
      inhibitor["end"] and (" to " .. pv.date(inhibitor["end"])) or "",
      dose_text(bari), pv.date(bari.start),
      bari["end"] and (" to " .. pv.date(bari["end"])) or "",
      pv.date(from),
      r.unverified and " The label row used is UNVERIFIED (domain §1.9)."
        or ""),
    action = action,
    key = "oat3",
    evidence = { bari, inhibitor },
  }
end

----------------------------------------------------------------------------
-- The rule
----------------------------------------------------------------------------

local dose_adjustment = pv.rule {
  name = "baricitinib.dose_adjustment",
  signal = "renal",
  label = "eGFR 30 to <60: reduce the dose, <30 not recommended; with "
    .. "strong OAT3 inhibitors such as probenecid a lower dose, per "
    .. "label.region and indication (LILLY-US-RA; MIMS-HK; domain "
    .. "§1.5, §1.9)",
  severities = { "high", "medium" },
  description = "baricitinib dose above the label's for the eGFR, or with "
    .. "a strong OAT3 inhibitor (probenecid)",
  on = { lab = "egfr", exposure = EXPOSURES },
  when = function(fact, patient)
    if fact.kind == "lab" then
      return pack.judge(fact, patient, assess_renal, true)
    end
    local alerts = {}
    if is_baricitinib(fact) then
      -- eGFR results of its dosing period for which it is the dose in
      -- force, oldest first.
      alerts = pack.look_back(fact, patient, pack.covered(fact, patient,
        { labs = "egfr", taking = true }), assess_renal, true)
      for _, other in ipairs(patient:exposures()) do
        if codes.is_strong_oat3_inhibitor(other) then
          alerts[#alerts + 1] = assess_oat3(fact, other)
        end
      end
    elseif codes.is_strong_oat3_inhibitor(fact) then
      for _, bari in ipairs(patient:exposures("baricitinib")) do
        alerts[#alerts + 1] = assess_oat3(bari, fact)
      end
    end
    return alerts
  end,
}

return dose_adjustment
