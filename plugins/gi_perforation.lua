-- plugins/gi_perforation.lua: gastrointestinal perforation on baricitinib
-- (issue 14; signal "gi_perforation"; domain §1.8, §3.3).
--
-- baricitinib.gi_perforation raises two kinds of alert:
--
-- 1. key "gi_perforation:<ICD-10-CM category>": K63.1, K25-K28 with
--    perforation, K57 with perforation and abscess, K65 peritonitis
--    (codes.lua "gi_perforation"; UNVERIFIED in domain §3.3) with onset
--    while exposed (washout included): critical.  Label basis: "Use with
--    caution in patients at risk" (USPI-OLD); EU: evaluate new abdominal
--    signs promptly (MIMS-TH).
-- 2. key "gi_risk:<course start>": at initiation (an exposure that starts
--    a course, patient:course_start), a GI-perforation risk factor of the
--    EU list (MIMS-TH): diverticular disease (K57, onset before the start)
--    or a systemic NSAID, corticosteroid or opioid taken on the start day
--    (codes.gi_risk_drug).  Decision: "chronic" is read as "taken at
--    initiation"; the feed does not say how long a medicine has been
--    taken before it was recorded.  Medium, once per course.
--
-- Facts may arrive in any order: an exposure looks back at the events it
-- covers; a perforation event judged on arrival; a K57 event or a risk
-- medicine that arrives after the course start raises the risk alert of
-- each course it concerns.
local codes = require "codes"
local pack = require "pack"
local dose_text = pack.dose_text

local DAY = pv.days

local TRIGGER = codes.gi_risk_names()
table.insert(TRIGGER, 1, "baricitinib")

local function category(code)
  return (code or ""):upper():gsub("[%.%s]", ""):sub(1, 3)
end

-- taking(e, at): e is being taken at `at` (start to the end of its last
-- day; no end = ongoing).
local function taking(e, at)
  if at < e.start then return false end
  return e["end"] == nil or at < e["end"] - e["end"] % DAY + DAY
end

local function perforation(ev, exposure, patient)
  return pv.alert {
    severity = "critical",
    title = "Gastrointestinal perforation on baricitinib",
    detail = ("ICD-10-CM %s%s with onset %s. %s.")
      :format(ev.code or "?", ev.term and (" '" .. ev.term .. "'") or "",
      pv.date(ev.onset), pack.On(exposure, ev.onset, patient)),
    action = "Evaluate promptly and review continuing baricitinib: GI "
      .. "perforation has been reported; use with caution in patients at "
      .. "risk (USPI-OLD); evaluate new abdominal signs and symptoms "
      .. "promptly (EU SmPC, MIMS-TH). Report as a serious adverse event.",
    key = "gi_perforation:" .. category(ev.code),
    evidence = { ev, exposure },
  }
end

-- risk(patient, first, start) -> the risk-factor alert of a course, or nil.
local function risk(patient, first, start)
  local found, evidence = {}, { first }
  local div = patient:events("diverticular", { ["until"] = start - 1,
    limit = 1 })[1]
  if div then
    found[#found + 1] = ("diverticular disease (%s, %s)"):format(div.code,
      pv.date(div.onset))
    evidence[#evidence + 1] = div
  end
  for _, e in ipairs(patient:exposures()) do
    local class = codes.gi_risk_drug(e)
    if class and taking(e, start) then
      found[#found + 1] = ("%s %s%s since %s"):format(class, e.drug,
        dose_text(e), pv.date(e.start))
      evidence[#evidence + 1] = e
    end
  end
  if #found == 0 then return nil end
  return pv.alert {
    severity = "medium",
    title = "Baricitinib started with a GI-perforation risk factor",
    detail = ("Baricitinib%s course started %s with: %s."):format(
      dose_text(first), pv.date(start), table.concat(found, "; ")),
    action = "The EU SmPC names diverticular disease and chronic NSAIDs, "
      .. "corticosteroids or opioids as risk factors for GI perforation "
      .. "(MIMS-TH): use baricitinib with caution (USPI-OLD) and evaluate "
      .. "new abdominal symptoms promptly.",
    key = "gi_risk:" .. pv.date(start),
    evidence = evidence,
  }
end

-- courses(patient): {start, first} of every stored baricitinib course.
local function courses(patient)
  local out, seen = {}, {}
  for _, e in ipairs(patient:exposures("baricitinib")) do
    local start, first = patient:course_start("baricitinib", e)
    if not seen[start] then
      seen[start] = true
      out[#out + 1] = { start, first }
    end
  end
  return out
end

local gi_perforation = pv.rule {
  name = "baricitinib.gi_perforation",
  signal = "gi_perforation",
  label = "Use with caution in patients at risk (USPI-OLD); EU: evaluate "
    .. "new abdominal signs promptly; risk factors diverticular "
    .. "disease, chronic NSAIDs, corticosteroids, opioids (MIMS-TH; "
    .. "domain §1.8)",
  severities = { "critical", "medium" },
  description = "GI perforation while exposed to baricitinib, or a "
    .. "GI-perforation risk factor at initiation",
  on = { event = { "gi_perforation", "diverticular" }, exposure = TRIGGER },
  when = function(fact, patient)
    local alerts = {}
    if fact.kind == "event" then
      if codes.icd_match("gi_perforation", fact.code) then
        alerts[#alerts + 1] = pack.judge(fact, patient, perforation)
      end
      for _, c in ipairs(courses(patient)) do
        if fact.onset < c[1] then
          alerts[#alerts + 1] = risk(patient, c[2], c[1])
        end
      end
      return alerts
    end
    if codes.drug_matches("baricitinib", fact) then
      local start, first = patient:course_start("baricitinib", fact)
      if start == fact.start then
        alerts[#alerts + 1] = risk(patient, first, start)
      end
      for _, a in ipairs(pack.look_back(fact, patient,
        patient:events("gi_perforation", { since = fact.start }),
        perforation)) do
        alerts[#alerts + 1] = a
      end
      return alerts
    end
    if not codes.gi_risk_drug(fact) then return nil end
    for _, c in ipairs(courses(patient)) do
      if taking(fact, c[1]) then
        alerts[#alerts + 1] = risk(patient, c[2], c[1])
      end
    end
    return alerts
  end,
}

return gi_perforation
