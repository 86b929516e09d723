-- plugins/infection.lua: infections on baricitinib (DESIGN.md rule pack,
-- signal "infection"; domain §1.2 boxed warning, §1.7).
--
-- baricitinib.serious_infection  sepsis A40-A41, pneumonia J12-J18, other
--                                serious bacterial infections (L03, N10,
--                                G00; codes.lua "serious_infection")
-- baricitinib.herpes_zoster      B02 (domain §3.3, §6 case 26)
-- baricitinib.tuberculosis       A15-A19 (active TB)
-- baricitinib.opportunistic      B37 candidiasis, B59 pneumocystosis and
--                                other opportunists (codes.lua)
--
-- Each fires on an event whose onset falls while the patient is exposed
-- to baricitinib (patient:exposed, washout included).  An exposure that
-- arrives after the event looks back at the events its window covers
-- (pack.when_exposed), so the order of arrival does not matter.  The
-- code sets live in scripts/codes.lua (several are UNVERIFIED there,
-- domain §3.3).
--
-- Severity by seriousness (DESIGN "severity by seriousness"): the event's
-- serious flag (yes/no; unknown counts as not serious, and the detail says
-- so).  serious -> high, not serious -> medium, and critical when the
-- outcome is fatal.  Two clinical decisions, each cited where it is coded:
-- sepsis counts as serious whatever the flag says, and active TB is at
-- least high.  CTCAE grades for infections need clinical facts an ICD code
-- does not carry (domain §2 rows "Shingles", "Sepsis", "Lung infection"),
-- so these alerts have no grade.
--
-- Dedup key: the rule and the ICD-10-CM category (first three characters),
-- so a repeat of the same diagnosis adds an occurrence to the open alert
-- while a different infection opens its own.
local codes = require "codes"
local pack = require "pack"

-- category(code) is the ICD-10-CM category: "B02.9" -> "B02".
local function category(code)
  return (code or ""):upper():gsub("[%.%s]", ""):sub(1, 3)
end

-- fatal(event) is true when the outcome text says the patient died.
local function fatal(event)
  local o = (event.outcome or ""):lower()
  return o:find("fatal", 1, true) ~= nil or o:find("death", 1, true) ~= nil
    or o:find("died", 1, true) ~= nil
end

-- seriousness(event) -> "serious" | "not serious" | "seriousness not
-- reported", for the detail.
local function seriousness(event)
  if event.serious == true then return "serious" end
  if event.serious == false then return "not serious" end
  return "seriousness not reported"
end

-- describe(event, exposure, patient) is the common part of every detail.
local function describe(event, exposure, patient)
  return ("ICD-10-CM %s%s with onset %s (%s%s). %s.")
    :format(event.code or "?",
      event.term and (" '" .. event.term .. "'") or "",
      pv.date(event.onset), seriousness(event),
      event.outcome and ("; outcome: " .. event.outcome) or "",
      pack.On(exposure, event.onset, patient))
end

-- SERIOUS_ACTION: the US boxed warning's instruction for serious
-- infections (USPI-HL22 5.1) and the EU wording (MIMS-TH), domain §1.7.
local SERIOUS_ACTION = "Interrupt baricitinib until the infection is "
  .. "controlled (USPI-HL22 boxed warning, 5.1; EU: interrupt if the "
  .. "infection does not respond to standard therapy, MIMS-TH)"
local ASSESS_ACTION = "Assess whether the infection is serious "
  .. "(hospitalisation, IV treatment); if it is, interrupt baricitinib "
  .. "until it is controlled (USPI-HL22 boxed warning, 5.1; EU: MIMS-TH)"

-- event_rule(spec) builds one rule.  spec: key, set (codes.lua ICD set),
-- description, assess(event, exposure) -> alert fields (severity, title,
-- action; detail and evidence are added here).
local function event_rule(spec)
  local function assess(event, exposure, patient)
    local a = spec.assess(event, exposure)
    a.detail = describe(event, exposure, patient)
      .. (a.note and (" " .. a.note) or "")
    a.note = nil
    a.key = spec.key .. ":" .. category(event.code)
    a.evidence = { event, exposure }
    return pv.alert(a)
  end
  return pv.rule {
    name = "baricitinib." .. spec.key,
    signal = "infection",
    description = spec.description,
    label = spec.label, severities = spec.severities,
    on = { event = spec.set, exposure = "baricitinib" },
    -- A new exposure: the events of its window, oldest first.
    when = pack.when_exposed { events = spec.set, assess = assess },
  }
end

-- severity(event [, floor]): critical if fatal, high if serious, else
-- medium (or `floor` when it is higher).
local function severity(event, floor)
  if fatal(event) then return "critical" end
  if event.serious == true then return "high" end
  return floor or "medium"
end

-- baricitinib.serious_infection: the boxed warning's "serious bacterial,
-- fungal, viral and opportunistic infections" (USPI-HL22; domain §1.2,
-- §1.7).  Decision: sepsis (A40-A41) is serious whatever the flag says,
-- because CTCAE v5 grades sepsis 3 or 4 only (domain §2 "Sepsis": grade 3
-- "Blood culture positive with signs or symptoms; treatment indicated").
local serious_infection = event_rule {
  key = "serious_infection", set = "serious_infection",
  label = "Interrupt treatment with OLUMIANT if serious infection occurs "
    .. "until the infection is controlled (USPI-HL22 boxed warning, "
    .. "5.1; domain §1.7)",
  severities = { "critical", "high", "medium" },
  description = "sepsis, pneumonia or another serious infection while "
    .. "exposed to baricitinib",
  assess = function(event)
    local sepsis = codes.icd_match("sepsis", event.code)
    local serious = event.serious == true or sepsis
    return {
      severity = fatal(event) and "critical" or serious and "high"
        or "medium",
      title = (sepsis and "Sepsis" or "Infection (%s)"):format(
        category(event.code)) .. " on baricitinib",
      action = serious and (SERIOUS_ACTION .. ".") or (ASSESS_ACTION .. "."),
      note = sepsis and event.serious ~= true
        and "Sepsis is treated as serious (CTCAE v5 sepsis has grades 3-4 "
          .. "only)." or nil,
    }
  end,
}

-- baricitinib.herpes_zoster: "If a patient develops herpes zoster,
-- interrupt Olumiant treatment until the episode resolves" (OLU-HCP; EU
-- wording MIMS-TH; domain §1.7, §6 case 26).  Serious zoster (e.g. B02.7
-- disseminated, B02.0 encephalitis) is high.
local herpes_zoster = event_rule {
  key = "herpes_zoster", set = "herpes_zoster",
  label = "If a patient develops herpes zoster, interrupt Olumiant "
    .. "treatment until the episode resolves (OLU-HCP; domain §1.7)",
  severities = { "critical", "high", "medium" },
  description = "herpes zoster while exposed to baricitinib",
  assess = function(event)
    local serious = event.serious == true
    return {
      severity = severity(event),
      title = "Herpes zoster on baricitinib",
      action = "Interrupt baricitinib until the herpes zoster episode "
        .. "resolves (OLU-HCP; EU SmPC wording, MIMS-TH)"
        .. (serious and "; it is serious: also keep baricitinib interrupted "
          .. "until the infection is controlled (USPI-HL22 boxed warning, "
          .. "5.1)" or "") .. ".",
    }
  end,
}

-- baricitinib.tuberculosis: "OLUMIANT should not be given to patients
-- with active tuberculosis ... Monitor all patients for active TB during
-- treatment, even patients with initial negative, latent TB test"
-- (USPI-HL22 boxed warning; domain §1.2, §1.7).  A15-A19 code active TB
-- (latent TB infection has other codes), so decision: at least high
-- whatever the serious flag says, because the label rules the drug out
-- with active TB; critical when serious or fatal.
local tuberculosis = event_rule {
  key = "tuberculosis", set = "tuberculosis",
  label = "OLUMIANT should not be given to patients with active "
    .. "tuberculosis (USPI-HL22 boxed warning, 5.1; domain §1.7)",
  severities = { "critical", "high" },
  description = "active tuberculosis while exposed to baricitinib",
  assess = function(event)
    return {
      severity = (event.serious == true or fatal(event)) and "critical"
        or "high",
      title = "Active tuberculosis on baricitinib",
      action = "Stop baricitinib: it should not be given to patients with "
        .. "active tuberculosis; treat the TB (USPI-HL22 boxed warning, "
        .. "5.1). Monitor for active TB during treatment even after a "
        .. "negative latent TB test (USPI-HL22).",
    }
  end,
}

-- baricitinib.opportunistic: "Invasive fungal infections, including
-- candidiasis and pneumocystosis" and "infections due to opportunistic
-- pathogens" (boxed warning, domain §1.2).  B37 also covers thrush, so the
-- severity comes from the serious flag, never from the code.
local opportunistic = event_rule {
  key = "opportunistic", set = "opportunistic",
  label = "Invasive fungal infections, including candidiasis and "
    .. "pneumocystosis; infections due to opportunistic pathogens "
    .. "(USPI-HL22 boxed warning; domain §1.2)",
  severities = { "critical", "high", "medium" },
  description = "opportunistic infection (candidiasis, pneumocystosis, "
    .. "...) while exposed to baricitinib",
  assess = function(event)
    local serious = event.serious == true
    return {
      severity = severity(event),
      title = ("Opportunistic infection (%s) on baricitinib"):format(
        category(event.code)),
      action = (serious and SERIOUS_ACTION or ASSESS_ACTION)
        .. "; the boxed warning names invasive fungal infections including "
        .. "candidiasis and pneumocystosis, and opportunistic pathogens "
        .. "(USPI-HL22).",
    }
  end,
}

return { serious_infection, herpes_zoster, tuberculosis, opportunistic }
