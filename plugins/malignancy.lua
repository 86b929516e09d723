-- plugins/malignancy.lua: malignancy on baricitinib (issue 14; signal
-- "malignancy"; domain §1.2 boxed warning, §1.8).
--
-- baricitinib.malignancy raises two kinds of alert:
--
-- 1. key "malignancy:<ICD-10-CM category>": a malignant neoplasm
--    (ICD-10-CM C00-C96, codes.lua "malignancy") or a neoplasm of
--    uncertain behaviour D45-D47 ("malignancy_uncertain") with onset while
--    the patient is exposed (patient:exposed: from the start to the end of
--    the washout).  Severity: lymphoma C81-C88 and lung cancer C34 high,
--    named as the boxed warning's ("Higher rate of lymphomas and lung
--    cancers with another JAK inhibitor vs. TNF blockers", USPI-HL22 5.3);
--    non-melanoma skin cancer C44 medium, with the periodic skin
--    examination advice (OLU-HCP, domain §1.8); D45-D47 low; every other
--    malignancy high ("Malignancies have occurred in patients treated with
--    OLUMIANT", USPI-HL22).
-- 2. key "malignancy_history:<course start>": a malignancy (either set)
--    on record with onset before the course started: the EU risk group
--    "malignancy risk factors" (MIMS-TH; EU-PIL; domain §1.8), medium, once
--    per course.  Decision ("never both"): an on-treatment event of an ICD
--    category that is already in that history is the known cancer, not a
--    new one, so it counts as an occurrence of the history alert instead
--    of opening alert 1; another category still opens alert 1.
--
-- Facts may arrive in any order: an exposure looks back at the events it
-- covers and at the history before its course, and a malignancy event
-- that predates a stored course raises that course's history alert.
-- The ICD-10-CM block boundaries are UNVERIFIED (codes.lua).
local codes = require "codes"
local pack = require "pack"
local dose_text = pack.dose_text

local SETS = "malignancy_any"

-- category(code): "C34.90" -> "C34".
local function category(code)
  return (code or ""):upper():gsub("[%.%s]", ""):sub(1, 3)
end

local function event_text(ev)
  return ("ICD-10-CM %s%s with onset %s"):format(ev.code or "?",
    ev.term and (" '" .. ev.term .. "'") or "", pv.date(ev.onset))
end

-- history(patient, start): malignancy events with onset before start,
-- newest first.
local function history(patient, start)
  return patient:events(SETS, { ["until"] = start - 1 })
end

local function history_alert(first, start, past)
  local cats, seen = {}, {}
  for i = #past, 1, -1 do
    local c = category(past[i].code)
    if not seen[c] then seen[c] = true; cats[#cats + 1] = c end
  end
  return pv.alert {
    severity = "medium",
    title = "Baricitinib started with a history of malignancy",
    detail = ("Baricitinib%s course started %s; malignancy on record "
      .. "before it: %s (%s; %d record%s)."):format(dose_text(first),
      pv.date(start), event_text(past[1]), table.concat(cats, ", "),
      #past, #past == 1 and "" or "s"),
    action = "A history of malignancy is a risk group of the EU SmPC "
      .. "(MIMS-TH; EU-PIL): use baricitinib only if no suitable "
      .. "alternative exists, consider the lower dose, and monitor; "
      .. "malignancy is in the US boxed warning (USPI-HL22 5.3).",
    key = "malignancy_history:" .. pv.date(start),
    evidence = { first, past[1] },
  }
end

-- assess(ev, exposure, patient) -> alert for an on-treatment event.
local function assess(ev, exposure, patient)
  local start, first = patient:course_start("baricitinib", exposure)
  local past = history(patient, start)
  local cat = category(ev.code)
  for _, p in ipairs(past) do
    if category(p.code) == cat then return history_alert(first, start, past) end
  end
  local severity, title, action
  local base = "malignancy is in the US boxed warning ('Malignancies have "
    .. "occurred in patients treated with OLUMIANT', USPI-HL22 5.3)"
  if codes.icd_match("lymphoma", ev.code) or codes.icd_match("lung_cancer",
      ev.code) then
    severity = "high"
    title = (codes.icd_match("lymphoma", ev.code) and "Lymphoma"
      or "Lung cancer") .. " on baricitinib (boxed warning)"
    action = "Evaluate and review continuing baricitinib: the boxed warning "
      .. "names a higher rate of lymphomas and lung cancers with another "
      .. "JAK inhibitor vs. TNF blockers (USPI-HL22 5.3). Report as a "
      .. "serious adverse event."
  elseif codes.icd_match("nmsc", ev.code) then
    severity = "medium"
    title = "Non-melanoma skin cancer on baricitinib"
    action = "Periodic skin examination is recommended for patients at "
      .. "increased risk of skin cancer (OLU-HCP); " .. base .. "."
  elseif codes.icd_match("malignancy_uncertain", ev.code) then
    severity = "low"
    title = ("Neoplasm of uncertain behaviour (%s) on baricitinib"):format(cat)
    action = "Follow up the diagnosis; " .. base .. "."
  else
    severity = "high"
    title = ("Malignancy (%s) on baricitinib"):format(cat)
    action = "Evaluate and review continuing baricitinib: " .. base
      .. ". Report as a serious adverse event."
  end
  return pv.alert {
    severity = severity,
    title = title,
    detail = ("%s. %s (course started %s)."):format(
      event_text(ev), pack.On(exposure, ev.onset, patient), pv.date(start)),
    action = action,
    key = "malignancy:" .. cat,
    evidence = { ev, exposure },
  }
end

local malignancy = pv.rule {
  name = "baricitinib.malignancy",
  signal = "malignancy",
  label = "Malignancies have occurred in patients treated with OLUMIANT. "
    .. "Higher rate of lymphomas and lung cancers with another JAK "
    .. "inhibitor (USPI-HL22 5.3); NMSC: periodic skin examination "
    .. "(OLU-HCP); EU risk group (MIMS-TH)",
  severities = { "high", "medium", "low" },
  description = "a new malignancy while exposed to baricitinib, or a "
    .. "history of malignancy when the course started",
  on = { event = SETS, exposure = "baricitinib" },
  when = function(fact, patient)
    local alerts = {}
    if fact.kind == "event" then
      local exposed, exposure = patient:exposed("baricitinib", fact.onset)
      if exposed then return assess(fact, exposure, patient) end
      -- Before every course: the history of each later course.
      local done = {}
      for _, e in ipairs(patient:exposures("baricitinib")) do
        local start, first = patient:course_start("baricitinib", e)
        if start > fact.onset and not done[start] then
          done[start] = true
          alerts[#alerts + 1] = history_alert(first, start,
            history(patient, start))
        end
      end
      return alerts
    end
    local start, first = patient:course_start("baricitinib", fact)
    if start == fact.start then
      local past = history(patient, start)
      if #past > 0 then alerts[#alerts + 1] = history_alert(first, start, past) end
    end
    for _, a in ipairs(pack.look_back(fact, patient,
      patient:events(SETS, { since = fact.start }), assess)) do
      alerts[#alerts + 1] = a
    end
    return alerts
  end,
}

return malignancy
