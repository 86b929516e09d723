-- plugins/pregnancy.lua: pregnancy on baricitinib (issue 14; signal
-- "pregnancy"; domain §1.3: the EU contraindicates pregnancy, "Do not take
-- Olumiant ... if you are pregnant" (EU-PIL)).
--
-- baricitinib.pregnancy  a positive hCG (codes.lua "hcg": a text saying
--                        positive/detected/reactive, an abnormal flag, or a
--                        number above the laboratory's ref_high) or a
--                        pregnancy code (ICD-10-CM O00-O9A, Z33, Z34;
--                        codes.lua "pregnancy") while exposed (washout
--                        included); high
--
-- The action follows pv.label.region: EU "contraindicated" (EU-PIL);
-- US: the label advises against use in pregnancy (issue 14's wording; the
-- US sentence is not in the domain file: UNVERIFIED).  One alert per
-- patient (key "pregnancy"); further evidence adds occurrences.  Facts may
-- arrive in any order: an exposure looks back at what it covers, hCG
-- results and pregnancy codes in order of time (pack.when_exposed).
local pack = require "pack"
require "codes"

local FLAGS = { A = true, AA = true, H = true, HH = true, POS = true }

local function text_positive(s)
  if type(s) ~= "string" then return false end
  local t = s:lower()
  if t:find("neg", 1, true) or t:find("not detected", 1, true)
    or t:find("non-reactive", 1, true) or t:find("nonreactive", 1, true) then
    return false
  end
  return t:find("pos", 1, true) ~= nil or t:find("detected", 1, true) ~= nil
    or t:find("reactive", 1, true) ~= nil
end

local function positive(obs)
  if obs.status == "D" or obs.status == "W" or obs.status == "X" then
    return false
  end
  if FLAGS[obs.flag or ""] then return true end
  if obs.value == nil then return text_positive(obs.value_text) end
  return obs.ref_high ~= nil and obs.value > obs.ref_high
end

local function action()
  if pv.label.region == "eu" then
    return "Pregnancy is a contraindication in the EU: stop baricitinib "
      .. "(EU-PIL 'Do not take Olumiant ... if you are pregnant'); "
      .. "follow up the pregnancy and report."
  end
  return "The US label advises against baricitinib in pregnancy (wording "
    .. "UNVERIFIED in the domain file): review treatment with the patient, "
    .. "follow up the pregnancy and report."
end

local function alert(fact, what, exposure, patient)
  return pv.alert {
    severity = "high",
    title = "Pregnancy on baricitinib",
    detail = ("%s on %s. %s."):format(what,
      pv.date(fact.at or fact.onset),
      pack.On(exposure, fact.at or fact.onset, patient)),
    action = action(),
    key = "pregnancy",
    evidence = { fact, exposure },
  }
end

local function assess_lab(obs, exposure, patient)
  if not positive(obs) then return nil end
  return alert(obs, ("Positive hCG %s %s%s (LOINC %s)"):format(
    obs.name or obs.code, obs.value_text or pack.fmt(obs.value or 0),
    obs.unit and (" " .. obs.unit) or "", obs.code), exposure, patient)
end

local function assess_event(ev, exposure, patient)
  return alert(ev, ("ICD-10-CM %s%s"):format(ev.code or "?",
    ev.term and (" '" .. ev.term .. "'") or ""), exposure, patient)
end

local pregnancy = pv.rule {
  name = "baricitinib.pregnancy",
  signal = "pregnancy",
  label = "EU: Do not take Olumiant ... if you are pregnant (EU-PIL; "
    .. "domain §1.3); US: advised against (wording UNVERIFIED)",
  severities = { "high" },
  description = "positive hCG or a pregnancy code while exposed to "
    .. "baricitinib",
  on = { lab = "hcg", event = "pregnancy", exposure = "baricitinib" },
  when = pack.when_exposed { labs = "hcg", events = "pregnancy",
    assess = function(fact, exposure, patient)
      if fact.kind == "lab" then return assess_lab(fact, exposure, patient) end
      return assess_event(fact, exposure, patient)
    end },
}

return pregnancy
