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

return pack
