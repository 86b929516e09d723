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
-- labs its window covers, so the alerts are the same either way
-- (pack.when_exposed, scripts/pack.lua).
--
-- Further down: baricitinib.lymphopenia, .anemia, .thrombocytopenia
-- (CTCAE v5 grade >= 2 while exposed) and .initiation_blocked (a course
-- started within 14 days after an ANC, ALC or Hb below the label's
-- do-not-initiate threshold).
local ctcae = require "ctcae"
local label = require "label"
local pack = require "pack"
local fmt, dose_text, void = pack.fmt, pack.dose_text, pack.void

local SEVERITY = { [2] = "medium", [3] = "high", [4] = "critical" }

-- The alert for one ANC result, nil, or nil and why it cannot be graded.
local function assess(obs, exposure, patient)
  if obs.value == nil then return nil end
  -- An ANC that cannot be graded (a unit CTCAE has no band for, a %) is
  -- an error for the engine alert, never a silent pass (pack.judge and
  -- pack.look_back raise the message).
  local grade, why = ctcae.grade("neutrophil_count_decreased", obs)
  if not grade then
    return nil, ("baricitinib.neutropenia cannot grade ANC %s %s (LOINC %s): "
      .. "%s"):format(tostring(obs.value), tostring(obs.unit),
      tostring(obs.code), why)
  end
  if grade < 2 then return nil end
  local anc = obs:value_in("cells/mm3")
  local interrupt, _, text = label.check("interrupt", "anc", anc,
    pv.label.indication, pv.label.region)
  return pv.alert {
    severity = SEVERITY[grade] or "critical",
    grade = grade,
    title = ("Neutropenia grade %d on baricitinib"):format(grade),
    detail = ("ANC %s %s (= %g cells/mm3) on %s; CTCAE v5 grade %d. "
      .. "%s."):format(
      obs.value_text or tostring(obs.value), obs.unit or "", anc,
      pv.date(obs.at), grade, pack.On(exposure, obs.at, patient)),
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
  label = "ANC less than 1000: interrupt OLUMIANT until ANC greater than "
    .. "or equal to 1000 (US RA/AA; EU: interrupt if ANC < 1 x 10^9 "
    .. "cells/L; domain §1.4)",
  severities = { "medium", "high", "critical" },
  description = "ANC of CTCAE v5 grade >= 2 while exposed to baricitinib",
  -- LOINC 751-8, 26499-4, 753-4 (domain §3.1)
  on = { lab = "neutrophils", exposure = "baricitinib" },
  -- A new exposure judges the ANC results it covers, oldest first, so the
  -- alert opens at the first grade and escalates as it would have.
  when = pack.when_exposed { labs = "neutrophils", assess = assess },
}

-- The other cytopenia rules (DESIGN rule pack, signal "cytopenia"). They
-- follow baricitinib.neutropenia: a lab is judged when it arrives if an
-- exposure covers it, and an exposure that arrives later looks back at
-- the labs its window covers, so the alerts do not depend on the order of
-- arrival.  Grade 2 is medium, grade 3 high, grade 4 critical.
--
-- A result that cannot be graded (an unknown unit, "%" on an absolute
-- count code; domain §3.1) raises an error, when it arrives or when a
-- later exposure looks back at it, so the engine reports it instead of
-- guessing.
local codes = require "codes"

local DAY = pv.days

-- shown(obs, value, unit) writes a result as it arrived, with its value
-- in the rule's unit when that differs: "0.9 10*9/L (= 900 cells/mm3)".
local function shown(obs, value, unit)
  local raw = ("%s %s"):format(obs.value_text or fmt(obs.value),
    obs.unit or "")
  if obs.unit == unit then return raw end
  return ("%s (= %s %s)"):format(raw, fmt(value), unit)
end

-- count_rule(spec) builds a "CTCAE v5 grade >= 2 while exposed" rule for
-- one blood count.  spec: key (rule name after "baricitinib."), set
-- (codes.lua LOINC set), term (ctcae.lua term), abbrev, unit (the unit
-- label.lua and the detail use), analyte (label.lua analyte, nil when the
-- label sets no threshold), title, no_label (action text builder when
-- analyte is nil).
local function count_rule(spec)
  -- judge(obs, exposure, patient) -> alert | nil | nil, error.
  local function judge(obs, exposure, patient)
    if void(obs) then return nil end
    local grade, why = ctcae.grade(spec.term, obs)
    if not grade then
      return nil, ("baricitinib.%s cannot grade %s %s %s (LOINC %s): %s")
        :format(spec.key, spec.abbrev, tostring(obs.value),
        tostring(obs.unit), tostring(obs.code), why)
    end
    if grade < 2 then return nil end
    local value = obs:value_in(spec.unit)
    local action, interrupt
    if spec.analyte then
      local hit, limit, text = label.check("interrupt", spec.analyte, value,
        pv.label.indication, pv.label.region)
      interrupt = hit
      if hit then
        action = text
      elseif limit == nil then
        -- US COVID-19 sets no Hb threshold (domain §1.4, §6 case 7).
        action = ("CTCAE v5 grade %d %s: evaluate and manage the %s; %s.")
          :format(grade, spec.ctcae_term, spec.title:lower(), text)
      else
        action = ("CTCAE v5 grade %d %s: repeat the CBC with differential "
          .. "and review; the label's interruption threshold is not "
          .. "reached (%s)."):format(grade, spec.ctcae_term, text)
      end
    else
      action = spec.no_label(grade)
    end
    -- Decision: below the label's interruption limit the alert is at
    -- least high.  The CTCAE SI cells are not exact conversions (domain §2
    -- notes), so Hb 4.9 mmol/L is CTCAE grade 2 yet 7.9 g/dL, below the
    -- label's 8 g/dL.
    local severity = SEVERITY[grade] or "critical"
    if interrupt and severity == "medium" then severity = "high" end
    return pv.alert {
      severity = severity,
      grade = grade,
      title = ("%s grade %d on baricitinib"):format(spec.title, grade),
      detail = ("%s %s on %s; %s. %s.")
        :format(spec.abbrev, shown(obs, value, spec.unit), pv.date(obs.at),
        why, pack.On(exposure, obs.at, patient)),
      action = action,
      key = spec.key,
      evidence = { obs, exposure },
    }
  end

  return pv.rule {
    name = "baricitinib." .. spec.key,
    signal = "cytopenia",
    description = spec.description,
    label = spec.label, severities = spec.severities,
    on = { lab = spec.set, exposure = "baricitinib" },
    when = pack.when_exposed { labs = spec.set, assess = judge },
  }
end

-- baricitinib.lymphopenia: ALC of CTCAE v5 grade >= 2 (< 800 cells/mm3;
-- domain §2 "Lymphocyte count decreased", §6 case 11) while exposed.  The
-- action names the label's interruption below ALC 500 cells/mm3 (US RA/AA,
-- DRUGS19 Table 1; EU 0.5 x 10^9/L, LILLY-EU-LAB) or 200 (US COVID-19,
-- MEDSCAPE; domain §1.4, §6 cases 3 and 5).
local lymphopenia = count_rule {
  key = "lymphopenia", set = "lymphocytes",
  term = "lymphocyte_count_decreased", ctcae_term = "lymphocyte count "
    .. "decreased", abbrev = "ALC", unit = "cells/mm3", analyte = "alc",
  title = "Lymphopenia",
  label = "ALC less than 500: interrupt OLUMIANT until ALC greater than "
    .. "or equal to 500 (US RA/AA; EU: ALC < 0.5 x 10^9 cells/L; "
    .. "domain §1.4)",
  severities = { "medium", "high", "critical" },
  description = "ALC of CTCAE v5 grade >= 2 while exposed to baricitinib",
}

-- baricitinib.anemia: Hb of CTCAE v5 grade >= 2 (< 10.0 g/dL, < 100 g/L,
-- < 6.2 mmol/L, graded in the arrival unit's band; domain §2 "Anemia",
-- §6 case 14) while exposed.  Grade 4 has no numeric cut-off, so a result
-- alone gives at most grade 3.  The action names the label's interruption
-- below Hb 8 g/dL (US RA/AA: DRUGS19 Table 3, MEDSCAPE; EU: LILLY-EU-LAB;
-- domain §1.4, §6 case 4); US COVID-19 has no Hb threshold (§6 case 7).
local anemia = count_rule {
  key = "anemia", set = "hemoglobin", term = "anemia",
  ctcae_term = "anemia", abbrev = "Hb", unit = "g/dL", analyte = "hb",
  title = "Anemia",
  label = "Hgb <8 g/dL: avoid initiation or interrupt dosing until Hgb >= "
    .. "8 g/dL (MEDSCAPE; EU: Hb < 8 g/dL; domain §1.4)",
  severities = { "medium", "high", "critical" },
  description = "Hb of CTCAE v5 grade >= 2 while exposed to baricitinib",
}

-- baricitinib.thrombocytopenia: platelets of CTCAE v5 grade >= 2
-- (< 75,000/mm3; domain §2 "Platelet count decreased", §6 case 13) while
-- exposed.  The label sets no platelet threshold (domain §1.4 names ANC,
-- ALC and Hb only), so the action cites CTCAE.
local thrombocytopenia = count_rule {
  key = "thrombocytopenia", set = "platelets",
  term = "platelet_count_decreased", ctcae_term = "platelet count "
    .. "decreased", abbrev = "Platelets", unit = "cells/mm3",
  title = "Thrombocytopenia",
  label = "None: the label sets no platelet threshold; CTCAE v5 grading "
    .. "only (domain §1.4, §2)",
  severities = { "medium", "high", "critical" },
  description = "Platelets of CTCAE v5 grade >= 2 while exposed to "
    .. "baricitinib",
  no_label = function(grade)
    return ("CTCAE v5 grade %d platelet count decreased: repeat the "
      .. "platelet count and review the cause; the baricitinib label sets "
      .. "no platelet threshold (domain §1.4)."):format(grade)
  end,
}

-- baricitinib.initiation_blocked: a baricitinib course starts although an
-- ANC, ALC or Hb result in the 14 days before was below the label's
-- do-not-initiate threshold (label.check("initiate", ...) for the
-- configured indication and region: US RA/AA ANC < 1000, ALC < 500
-- cells/mm3, Hb < 8 g/dL, DRUGS23 "OLUMIANT initiation is not recommended
-- in patients with ..."; US COVID-19 ALC < 200, ANC < 500, no Hb limit;
-- EU the same as RA/AA, MIMS-HK; domain §1.4, §6 cases 1-8).
--
-- Window (DESIGN "within 14 days after"): the result is dated from 14 days
-- (inclusive) before the start up to the end of the start's calendar day,
-- because the pre-treatment CBC is often drawn the morning of the first
-- dose.  Only an initiation counts: an exposure that continues a course
-- (patient:course_start, e.g. a refill or a dose change) is not one; a
-- low result during a course is the interrupt rules' business.  Any result
-- below the limit in the window fires, whatever came after it, so the
-- alerts do not depend on the order of arrival.  High severity: the label
-- says not to start.  One alert per analyte and course start.
local INIT = {
  neutrophils = { analyte = "anc", term = "neutrophil_count_decreased",
    unit = "cells/mm3", name = "neutropenia" },
  lymphocytes = { analyte = "alc", term = "lymphocyte_count_decreased",
    unit = "cells/mm3", name = "lymphopenia" },
  hemoglobin = { analyte = "hb", term = "anemia", unit = "g/dL",
    name = "anemia" },
}
local INIT_SETS = { "neutrophils", "lymphocytes", "hemoglobin" }
local INIT_BEFORE = 14 * DAY

-- day_end(t): the first second after t's calendar day (UTC).
local function day_end(t)
  return t - t % DAY + DAY
end

-- in_init_window(obs, e) is true when obs lies in e's pre-start window.
local function in_init_window(obs, e)
  return obs.at >= e.start - INIT_BEFORE and obs.at < day_end(e.start)
end

local function assess_initiation(obs, exposure)
  if void(obs) then return nil end
  local a = INIT[codes.loinc_analyte(obs.code) or ""]
  if not a then return nil end
  local value = obs:value_in(a.unit)
  local ind, reg = pv.label.indication, pv.label.region
  local hit, limit, text = label.check("initiate", a.analyte, value, ind,
    reg)
  if not hit then return nil end
  local _, _, interrupt = label.check("interrupt", a.analyte, value, ind,
    reg)
  local grade = ctcae.grade(a.term, obs)
  local days = (exposure.start - obs.at) / DAY
  local when = days >= 1
    and ("%d day%s before"):format(math.floor(days),
      math.floor(days) == 1 and "" or "s")
    or "on the day of"
  local abbrev = a.analyte:upper():gsub("HB", "Hb")
  return pv.alert {
    severity = "high",
    grade = grade and grade >= 1 and grade or nil,
    title = ("Baricitinib started with %s below the label's initiation "
      .. "threshold"):format(abbrev),
    detail = ("%s %s on %s, %s baricitinib%s started on %s; the label's "
      .. "do-not-initiate limit is %s < %s %s%s.")
      :format(abbrev, shown(obs, value, a.unit), pv.date(obs.at), when,
      dose_text(exposure),
      pv.date(exposure.start), abbrev, fmt(limit), a.unit,
      grade and grade >= 1
        and ("; CTCAE v5 %s grade %d"):format(a.name, grade) or ""),
    action = ("%s. It has been started: review the patient and repeat the "
      .. "CBC. %s."):format(text, interrupt),
    key = ("initiation:%s:%s"):format(a.analyte, pv.date(exposure.start)),
    evidence = { obs, exposure },
  }
end

local initiation_blocked = pv.rule {
  name = "baricitinib.initiation_blocked",
  signal = "cytopenia",
  label = "OLUMIANT initiation is not recommended in patients with an ALC "
    .. "<500 cells/μl, ANC <1000 cells/μl, or hemoglobin level <8 g/dL "
    .. "(DRUGS23; COVID-19: ALC <200, ANC <500; domain §1.4)",
  severities = { "high" },
  description = "baricitinib started within 14 days after an ANC, ALC or "
    .. "Hb below the label's do-not-initiate threshold",
  on = { lab = INIT_SETS, exposure = "baricitinib" },
  when = function(fact, patient)
    if fact.kind == "lab" then
      -- A result that arrives late: every course it precedes.
      local alerts = {}
      for _, e in ipairs(patient:exposures("baricitinib")) do
        if in_init_window(fact, e)
          and patient:course_start("baricitinib", e) == e.start then
          alerts[#alerts + 1] = assess_initiation(fact, e)
        end
      end
      return alerts
    end
    if patient:course_start("baricitinib", fact) ~= fact.start then
      return nil
    end
    local alerts = {}
    local labs = patient:labs(INIT_SETS, { since = fact.start - INIT_BEFORE,
      ["until"] = day_end(fact.start) - 1 })
    for i = #labs, 1, -1 do
      alerts[#alerts + 1] = assess_initiation(labs[i], fact)
    end
    return alerts
  end,
}

return { neutropenia, lymphopenia, anemia, thrombocytopenia,
  initiation_blocked }
