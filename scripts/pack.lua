-- pack.lua: small text and fact helpers the baricitinib plugins share, so
-- that every rule words numbers, doses and unusable results the same way.
-- Pure Lua, no I/O, defines no globals (exposure_text reads the sandbox's
-- pv.date and pv.exposure): it is required inside the rule sandbox.
local pack = {}

--[[
pack.fmt(x) -> the number without float noise ("%.10g").

  Example: pack.fmt(0.1 + 0.2) --> "0.3"
]]
function pack.fmt(x)
  return ("%.10g"):format(x)
end

--[[
pack.dose_text(exposure) -> " 2 mg" for an exposure with a dose, else "".

  The leading space lets rules write "On baricitinib%s since ...".
]]
function pack.dose_text(e)
  if not e.dose then return "" end
  return (" %s %s"):format(pack.fmt(e.dose), e.dose_unit or "mg")
end

--[[
pack.exposure_text(exposure, at [, patient]) -> how the patient stood on
baricitinib at the time of the fact:

  "on baricitinib 2 mg since 2025-11-01"      taking it at 'at' (no end,
                                              or 'at' before the end of
                                              its last day of dosing)
  "baricitinib 2 mg 2025-11-01 to 2026-01-15, within the 28-day washout"
                                              'at' after the last day but
                                              inside the washout

  The last day of dosing counts whole and the washout is the
  exposure.washout_days days after it (config, default 28; read from
  pv.exposure.washout_days at call time), exactly as patient:exposed and
  patient:current decide (core/rules_api.lua covers(), docs/rules.md
  "Exposure windows").  After the washout the range is given alone.

  patient:exposed returns the oldest exposure that covers 'at', which
  after a refill or a dose change is often one in its washout while a
  newer one is being taken.  With 'patient', an exposure in its washout
  gives way to the one patient:current says is taken at 'at' ("on
  baricitinib 2 mg since <its start>"), so the text never says washout
  while the patient takes the drug.  Only the wording changes: the rule
  keeps its exposure for keys and evidence.

  The exposure is a baricitinib one (its record may name it Olumiant or by
  a code only).  Starts lower case; pack.On() begins a sentence with it.

  Example: pack.exposure_text(e, obs.at, patient)
]]
local DAY = 86400

-- taking(e, at): 'at' is before the end of e's last day of dosing.
local function taking(e, at)
  local last = e["end"]
  return last == nil or at < last - last % DAY + DAY
end

local function since(e)
  return ("on baricitinib%s since %s"):format(pack.dose_text(e),
    pv.date(e.start))
end

function pack.exposure_text(e, at, patient)
  if taking(e, at) then return since(e) end
  if patient then
    local cur, now_taking = patient:current("baricitinib", at)
    if cur and now_taking then return since(cur) end
  end
  local last, days = e["end"], pv.exposure.washout_days
  local range = ("baricitinib%s %s to %s"):format(pack.dose_text(e),
    pv.date(e.start), pv.date(last))
  if at < last - last % DAY + (days + 1) * DAY then
    return ("%s, within the %d-day washout"):format(range, days)
  end
  return range
end

--[[
pack.On(exposure, at [, patient]) -> pack.exposure_text with a capital
first letter, to begin a sentence in a detail.

  Example: ("%s."):format(pack.On(e, at, patient)) --> "On baricitinib 2 mg
  since 2025-11-01."
]]
function pack.On(e, at, patient)
  local text = pack.exposure_text(e, at, patient)
  return text:sub(1, 1):upper() .. text:sub(2)
end

--[[
pack.void(obs) -> true for a result without a usable value: no number, or
a status that says it does not count (HL7 table 0085: D deleted, W wrong,
X cannot be obtained).
]]
function pack.void(obs)
  return obs.value == nil or obs.status == "D" or obs.status == "W"
    or obs.status == "X"
end

--[[
The shape "a lab is judged if exposed; a late exposure looks back over the
labs its window covers" (docs/rules.md "Facts arriving in any order"), in
one place for the pack's rules.  A rule gives an assess function:

  assess(fact, exposure, patient) -> alert | nil | nil, message

  fact      a lab or an event (fact.kind says which)
  exposure  the baricitinib exposure that covers fact.at
  returns   a pv.alert, nil for no alert, or nil and a message for a fact
            the rule cannot judge (an ANC in a unit CTCAE has no band for)

Errors (one handling, the rules' contract: docs/rules.md "When a rule
fails"): a message returned by assess is raised as the rule's error, on the
arriving fact and in the look-back alike, as an error assess raises itself
is; the engine then stores the fact, raises its engine alert naming the
result and the rule goes on with the next fact.  Nothing is only logged: a
result that arrived before its exposure was never seen by the rule (the
exposure gate), so a log line would be the only trace of it.

Which exposure covers a time (docs/rules.md "Exposure windows";
core/rules_api.lua covers(); domain §1.4 "while exposed"):

  default      patient:exposed("baricitinib", at): the oldest exposure that
               covers 'at', its washout (pv.exposure.washout_days after the
               last day of dosing) included
  taking=true  patient:current("baricitinib", at) when the drug is still
               being taken at 'at' (up to the end of the last day of
               dosing, no washout): the dose in force, for dose rules
]]

-- covering(patient, at, in_force) -> the exposure that judges a fact at
-- 'at', or nil.
local function covering(patient, at, in_force)
  if in_force then
    local e, now_taking = patient:current("baricitinib", at)
    if e and now_taking then return e end
    return nil
  end
  local exposed, e = patient:exposed("baricitinib", at)
  if exposed then return e end
  return nil
end

--[[
pack.judge(fact, patient, assess [, taking]) -> the alert assess gives for
a lab or event that arrives, or nil when no exposure covers fact.at.

  Example: if fact.kind == "lab" then return pack.judge(fact, patient,
  assess) end
]]
function pack.judge(fact, patient, assess, in_force)
  local exposure = covering(patient, fact.at, in_force)
  if not exposure then return nil end
  local alert, err = assess(fact, exposure, patient)
  if err ~= nil then error(err, 0) end
  return alert
end

--[[
pack.look_back(exposure, patient, facts, assess [, taking]) -> the list of
alerts, oldest first, that assess gives for the facts of 'facts' (newest
first, as patient:labs and patient:events return them) for which
'exposure', a new one, is the covering exposure.  A fact also covered by
an older exposure was judged when it arrived (judging it again would only
count another occurrence), so it is left out.  Oldest first: an alert
opens at the first grade and escalates as it would have.

  Example: pack.look_back(fact, patient,
    patient:events("gi_perforation", { since = fact.start }), assess)
]]
-- The result statuses on.lab is never called for (docs/rules.md, the table
-- of obs.status; HL7 table 0085): the look-back skips them too, or a
-- pending or unverified result would alert when the exposure came later and
-- not when it came first.
local NEVER_JUDGED = { X = true, I = true, R = true, N = true, O = true,
  W = true, D = true }

function pack.look_back(e, patient, facts, assess, in_force)
  local alerts, first_err, nerr = {}, nil, 0
  for i = #facts, 1, -1 do
    local f = facts[i]
    local exposure = not (f.kind == "lab" and NEVER_JUDGED[f.status])
      and covering(patient, f.at, in_force)
    if exposure and exposure.id == e.id then
      local alert, err = assess(f, exposure, patient)
      if err ~= nil then
        first_err, nerr = first_err or err, nerr + 1
      else
        alerts[#alerts + 1] = alert
      end
    end
  end
  -- A result that cannot be judged must not cost the others their alerts
  -- (a grade 4 ANC beside an ANC in '%'): every fact is judged first. With
  -- no alert to give, the error is the rule's (an engine alert, docs/rules.md
  -- "When a rule fails"); beside alerts it is logged, since a rule call
  -- either returns alerts or fails.
  if first_err ~= nil then
    if #alerts == 0 then error(first_err, 0) end
    pv.log.warn(string.format("%d result(s) in the look-back could not be "
      .. "judged; the first: %s", nerr, tostring(first_err)))
  end
  return alerts
end

--[[
pack.covered(exposure, patient, spec) -> the stored labs of spec.labs and
events of spec.events (code sets or codes, either may be nil) from the
exposure's start on, newest first; with spec.taking only those up to the
end of its last day of dosing.  With both kinds the two lists are merged
by time.
]]
function pack.covered(e, patient, spec)
  local opts = { since = e.start }
  if spec.taking and e["end"] ~= nil then
    opts["until"] = e["end"] - e["end"] % DAY + DAY - 1
  end
  local labs = spec.labs and patient:labs(spec.labs, opts)
  local events = spec.events and patient:events(spec.events, opts)
  if not (labs and events) then return labs or events or {} end
  -- Labs, then events, sorted oldest first and handed back newest first.
  local all = {}
  for _, f in ipairs(labs) do all[#all + 1] = f end
  for _, f in ipairs(events) do all[#all + 1] = f end
  table.sort(all, function(a, b) return a.at < b.at end)
  local n = #all
  for i = 1, n // 2 do all[i], all[n + 1 - i] = all[n + 1 - i], all[i] end
  return all
end

--[[
pack.when_exposed(spec) -> the `when` of a rule with on = { lab = spec.labs
and/or event = spec.events, exposure = "baricitinib" }: a lab or event that
arrives is judged if an exposure covers it (pack.judge), and a new exposure
looks back over what its window covers (pack.covered, pack.look_back), so
the alerts do not depend on the order of arrival.

  spec: labs, events (codes for pack.covered), assess (above), taking
  (true: only while the drug is taken, the exposure in force).  The rule
  still declares its own `on`: the engine's exposure gate reads it.

  Example:
    on = { lab = "neutrophils", exposure = "baricitinib" },
    when = pack.when_exposed { labs = "neutrophils", assess = assess },
]]
function pack.when_exposed(spec)
  local assess, in_force = spec.assess, spec.taking
  assert(type(assess) == "function", "pack.when_exposed: assess must be a "
    .. "function")
  return function(fact, patient)
    if fact.kind ~= "exposure" then
      return pack.judge(fact, patient, assess, in_force)
    end
    return pack.look_back(fact, patient, pack.covered(fact, patient, spec),
      assess, in_force)
  end
end

return pack
