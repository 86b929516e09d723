-- plugins/monitoring.lua: overdue laboratory monitoring on baricitinib
-- (DESIGN.md rule pack, signal "monitoring"; domain §1.4).  Both rules are
-- scheduled (every = "1d"): the engine calls when(patient, now) for every
-- patient with an exposure.
--
-- baricitinib.lipids_overdue: lipids are to be assessed "12 weeks after
-- initiation" (LILLY-US-MON; EU SmPC "12 weeks after initiation of
-- treatment and thereafter according to international clinical guidelines
-- for hyperlipidaemia", LILLY-EU-LAB; domain §1.4).  The window chosen:
-- a lipid result (codes.lua "lipid_panel": total, LDL or HDL cholesterol,
-- triglycerides) from 12 weeks (day 84) to 16 weeks (day 112) after the
-- course started, both ends inclusive.  12 weeks is the label's time; the
-- 4 weeks after it are the grace DESIGN allows ("12-16 weeks after
-- start"); a result before week 12 is not the 12-week assessment.  The
-- alert fires on the first tick after day 112 if the patient is still
-- exposed in that course (washout included, so the course reached week
-- 12 on treatment) and no such result exists.  Low severity: the label
-- sets no lipid threshold (domain §1.4).
--
-- baricitinib.cbc_overdue: the label monitors ANC, ALC and Hb "before and
-- during treatment" (LILLY-US-MON) and "thereafter according to routine
-- patient management" (EU SmPC, LILLY-EU-LAB); the label gives no
-- interval, the 12 weeks are DESIGN's.  The alert fires on the first tick
-- more than 12 weeks (84 days) after the later of the course start and
-- the last CBC result (codes.lua "cbc": ANC, ALC, WBC, Hb, platelets),
-- while the patient takes baricitinib (not in the washout: monitoring is
-- "during treatment").  Medium: the interrupt thresholds depend on it.
--
-- "Course" is patient:course_start: refills, dose changes and breaks
-- shorter than the washout continue a course.  Each rule fires once per
-- gap: pv.state remembers it (per patient and reference date), so a daily
-- tick neither repeats it nor reopens it after a person closed it; the
-- dedup key names the same date.
local label = require "label"
local pack = require "pack"
local fmt = pack.fmt
-- Loaded at load time, so a broken codes.lua fails the plugin load rather
-- than the first tick (patient:exposures() needs it to match drug codes).
require "codes"

local DAY = pv.days
local WEEK = 7 * DAY

local LIPID_FROM, LIPID_TO = 12 * WEEK, 16 * WEEK
local CBC_EVERY = 12 * WEEK

-- last_text(obs) describes the newest result found, for the detail.
local function last_text(obs, what)
  if not obs then return ("No %s result on record."):format(what) end
  return ("Last %s result: %s %s %s on %s."):format(what,
    obs.name or obs.code or "?", obs.value_text or fmt(obs.value or 0),
    obs.unit or "", pv.date(obs.at))
end

-- limits_text(): the configured label's interruption limits, e.g.
-- "ANC < 1000 cells/mm3, ALC < 500 cells/mm3, Hb < 8 g/dL" (domain §1.4;
-- US COVID-19 has no Hb limit).
local function limits_text()
  local parts = {}
  for _, a in ipairs({ { "anc", "ANC", "cells/mm3" },
      { "alc", "ALC", "cells/mm3" }, { "hb", "Hb", "g/dL" } }) do
    local limit = label.threshold("interrupt", a[1], pv.label.indication,
      pv.label.region)
    if limit then
      parts[#parts + 1] = ("%s < %s %s"):format(a[2], fmt(limit), a[3])
    end
  end
  return table.concat(parts, ", ")
end

local lipids_overdue = pv.rule {
  name = "baricitinib.lipids_overdue",
  signal = "monitoring",
  label = "Lipid assessment 12 weeks after initiation of treatment "
    .. "(LILLY-US-MON; LILLY-EU-LAB; domain §1.4)",
  severities = { "low" },
  description = "no lipid result 12-16 weeks after starting baricitinib",
  every = "1d",
  when = function(patient, now)
    local exposure = patient:current("baricitinib", now)
    if not exposure then return nil end
    local start = patient:course_start("baricitinib", exposure)
    local from, to = start + LIPID_FROM, start + LIPID_TO
    if now <= to then return nil end
    local state = ("%s|%s"):format(patient.id, pv.iso(start))
    if pv.state.get(state) then return nil end
    if #patient:labs("lipid_panel", { since = from, ["until"] = to,
        limit = 1 }) > 0 then
      return nil
    end
    pv.state.set(state, pv.iso(now))
    local last = patient:latest("lipid_panel", now)
    return pv.alert {
      severity = "low",
      title = "Lipids not checked 12 weeks after starting baricitinib",
      detail = ("%s (course started %s); no lipid result between week "
        .. "12 (%s) and week 16 (%s). %s"):format(
        pack.On(exposure, now, patient), pv.date(start), pv.date(from),
        pv.date(to),
        last_text(last, "lipid")),
      action = "Check a lipid panel: the label asks for lipid assessment "
        .. "12 weeks after initiation (LILLY-US-MON; EU SmPC via "
        .. "LILLY-EU-LAB), then management per hyperlipidaemia guidelines.",
      key = "lipids_overdue:" .. pv.date(start),
      evidence = last and { exposure, last } or { exposure },
    }
  end,
}

local cbc_overdue = pv.rule {
  name = "baricitinib.cbc_overdue",
  signal = "monitoring",
  label = "CBC with differential (ANC, ALC, Hb) before and during "
    .. "treatment (LILLY-US-MON; domain §1.4)",
  severities = { "medium" },
  description = "no CBC for 12 weeks while taking baricitinib",
  every = "1d",
  when = function(patient, now)
    local exposure, taking = patient:current("baricitinib", now)
    if not exposure or not taking then return nil end
    local start = patient:course_start("baricitinib", exposure)
    local last = patient:latest("cbc", now)
    local ref = start
    if last and last.at > ref then ref = last.at end
    if now <= ref + CBC_EVERY then return nil end
    local state = ("%s|%s"):format(patient.id, pv.iso(ref))
    if pv.state.get(state) then return nil end
    pv.state.set(state, pv.iso(now))
    local weeks = math.floor((now - ref) / WEEK)
    return pv.alert {
      severity = "medium",
      title = ("CBC overdue on baricitinib: none for %d weeks"):format(
        weeks),
      detail = ("%s (course started %s); no CBC result "
        .. "since %s. %s"):format(pack.On(exposure, now, patient),
        pv.date(start), pv.date(ref),
        last_text(last, "CBC")),
      action = ("Check a CBC with differential (ANC, ALC, Hb): the label "
        .. "monitors them during treatment and interrupts baricitinib with "
        .. "%s (LILLY-US-MON; DRUGS19; EU SmPC via LILLY-EU-LAB). The "
        .. "12-week interval is pvwatch's (DESIGN); the label says "
        .. "'according to routine patient management'."):format(
        limits_text()),
      key = "cbc_overdue:" .. pv.date(ref),
      evidence = last and { exposure, last } or { exposure },
    }
  end,
}

return { lipids_overdue, cbc_overdue }
