-- plugins/death.lua: death of a patient exposed to baricitinib (issue 14;
-- signal "mortality"; domain §1.2 boxed warning "Higher rate of all-cause
-- mortality, including sudden cardiovascular death with another JAK
-- inhibitor vs. TNF blockers" (USPI-HL22 5.2), §1.8 MACE).
--
-- baricitinib.death  a death with onset while the patient is exposed
--                    (patient:exposed: washout included); critical
--
-- What the store can hold today: an event (CSV events, HL7 DG1) whose
-- outcome says the patient died ("fatal", "death", "died", "dead",
-- "expired"), whatever its code, or an event coded ICD-10 R99 (unknown
-- cause of mortality) or I46 (cardiac arrest) (codes.lua "death").  ADT
-- PID-29/PID-30 (death date/time, death indicator) and PV1-36 discharge
-- disposition "expired" (20, 40, 41, 42) are not mapped yet: the HL7
-- mapper is to turn them into such an event (code = the DG1 cause when
-- there is one, else R99; outcome "fatal"; onset = PID-29, else the
-- discharge time).
--
-- A cardiovascular cause (codes.lua "cv_death": I21, I46, I63, I64, I71,
-- R96) also names MACE ("cardiovascular death, myocardial infarction, and
-- stroke", USPI-HL22).  To see every event with a fatal outcome, the rule
-- triggers on every ICD-10 chapter letter and digit as a prefix (every
-- code starts with one).  Dedup key "death": one alert per patient.
-- Facts may arrive in any order: an exposure looks back at the events it
-- covers.
local codes = require "codes"
local pack = require "pack"

local ALL = {}
for c in ("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"):gmatch(".") do
  ALL[#ALL + 1] = c
end

local DIED = { "fatal", "death", "died", "dead", "expired", "deceased" }

local function is_death(ev)
  local o = type(ev.outcome) == "string" and ev.outcome:lower() or ""
  for _, w in ipairs(DIED) do
    if o:find(w, 1, true) then return true end
  end
  return codes.icd_match("death", ev.code)
end

local function assess(ev, exposure, patient)
  if not is_death(ev) then return nil end
  local cv = codes.icd_match("cv_death", ev.code)
  return pv.alert {
    severity = "critical",
    title = cv and "Cardiovascular death (MACE) on baricitinib"
      or "Death of a patient on baricitinib",
    detail = ("ICD-10-CM %s%s on %s%s. %s.")
      :format(ev.code or "?", ev.term and (" '" .. ev.term .. "'") or "",
      pv.date(ev.onset), ev.outcome and ("; outcome: " .. ev.outcome) or "",
      pack.On(exposure, ev.onset, patient)),
    action = "Report as a fatal serious adverse event; the US boxed warning "
      .. "names a higher rate of all-cause mortality, including sudden "
      .. "cardiovascular death, with another JAK inhibitor (USPI-HL22 5.2)"
      .. (cv and "; MACE is 'cardiovascular death, myocardial infarction, "
        .. "and stroke' (USPI-HL22 5.4)" or "") .. ".",
    key = "death",
    evidence = { ev, exposure },
  }
end

local death = pv.rule {
  name = "baricitinib.death",
  signal = "mortality",
  label = "Higher rate of all-cause mortality, including sudden "
    .. "cardiovascular death with another JAK inhibitor vs. TNF "
    .. "blockers (USPI-HL22 boxed warning, 5.2); MACE (5.4)",
  severities = { "critical" },
  description = "death (fatal outcome, R99, I46) while exposed to "
    .. "baricitinib",
  on = { event = ALL, exposure = "baricitinib" },
  when = function(fact, patient)
    if fact.kind == "event" then
      -- Most events are not deaths: no exposure lookup for them.
      if not is_death(fact) then return nil end
      return pack.judge(fact, patient, assess)
    end
    -- The deaths among every event of the window, newest first.
    local deaths = {}
    for _, ev in ipairs(patient:events(nil, { since = fact.start })) do
      if is_death(ev) then deaths[#deaths + 1] = ev end
    end
    return pack.look_back(fact, patient, deaths, assess)
  end,
}

return death
