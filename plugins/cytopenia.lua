-- plugins/cytopenia.lua: cytopenias on baricitinib (DESIGN.md rule pack,
-- signal "cytopenia").
--
-- baricitinib.neutropenia: an absolute neutrophil count of CTCAE v5 grade
-- >= 2 (ANC < 1500 cells/mm3; domain §2, CTCAE5 "Neutrophil count
-- decreased"; PF-GRADER ctcae5_neut.sas) while the patient is exposed.
-- Grade 2 is medium, grade 3 high, grade 4 critical. Below the label's
-- interruption threshold (US RA/AA: ANC < 1000 cells/mm3, DRUGS19 Table 2;
-- COVID-19: < 500, MEDSCAPE; EU: < 1 x 10^9/L, LILLY-EU-LAB; domain §1.4)
-- the alert's action names the interruption, worded by scripts/label.lua.
--
-- Facts may arrive in any order: a lab is judged when it arrives if the
-- exposure is known, and an exposure that arrives later looks back at the
-- labs its window covers, so the alerts are the same either way.
local ctcae = require "ctcae"
local label = require "label"

local SEVERITY = { [2] = "medium", [3] = "high", [4] = "critical" }

-- The alert for one ANC result, or nil.
local function assess(obs, exposure)
  if obs.value == nil then return nil end
  local grade = ctcae.grade("neutrophil_count_decreased", obs)
  if not grade or grade < 2 then return nil end
  local anc = obs:value_in("cells/mm3")
  local interrupt, _, text = label.check("interrupt", "anc", anc,
    pv.label.indication, pv.label.region)
  local dose = exposure.dose
    and (" %g %s"):format(exposure.dose, exposure.dose_unit or "mg") or ""
  return pv.alert {
    severity = SEVERITY[grade] or "critical",
    grade = grade,
    title = ("Neutropenia grade %d on baricitinib"):format(grade),
    detail = ("ANC %s %s (= %g cells/mm3) on %s; CTCAE v5 grade %d. "
      .. "On baricitinib%s since %s."):format(
      obs.value_text or tostring(obs.value), obs.unit or "", anc,
      pv.date(obs.at), grade, dose, pv.date(exposure.start)),
    action = interrupt and text
      or ("CTCAE v5 grade %d neutropenia: repeat the CBC with differential "
        .. "and review; the label's interruption threshold is not reached "
        .. "(%s)."):format(grade, text),
    key = "neutropenia",
    evidence = { obs, exposure },
  }
end

local neutropenia = pv.rule {
  name = "baricitinib.neutropenia",
  signal = "cytopenia",
  description = "ANC of CTCAE v5 grade >= 2 while exposed to baricitinib",
  -- LOINC 751-8, 26499-4, 753-4 (domain §3.1)
  on = { lab = "neutrophils", exposure = "baricitinib" },
  when = function(fact, patient)
    if fact.kind == "lab" then
      local exposed, exposure = patient:exposed("baricitinib", fact.at)
      if exposed then return assess(fact, exposure) end
      return nil
    end
    -- A new exposure: judge the ANC results it covers, oldest first, so
    -- the alert opens at the first grade and escalates as it would have.
    local alerts = {}
    local labs = patient:labs("neutrophils", { since = fact.start })
    for i = #labs, 1, -1 do
      local obs = labs[i]
      local exposed, exposure = patient:exposed("baricitinib", obs.at)
      if exposed and exposure.id == fact.id then
        alerts[#alerts + 1] = assess(obs, exposure)
      end
    end
    return alerts
  end,
}

return { neutropenia }
