-- plugins/hbv.lua: hepatitis B on baricitinib (issue 14; signal
-- "hepatic"; domain §1.7: in patients HBsAb+/HBcAb+ and HBsAg-, monitor
-- HBV DNA; "Should HBV DNA be detected, consult with a hepatologist"
-- (OLU-HCP)).
--
-- baricitinib.hbv raises, while the patient is exposed (washout included):
--
-- 1. key "hbv_dna": HBV DNA detected (codes.lua "hbv_dna", LOINC codes
--    UNVERIFIED): a text result that says detected, positive or reactive
--    (and not "not detected", "negative", "non-reactive"), or a number
--    without a "<" comparator that is above 0 and, when the laboratory
--    sends its lower limit of quantification as ref_low, at or above it
--    (a result at the limit is quantified, so detected).  "<10" is below
--    the limit: not detected.  High, "consult a hepatologist".
-- 2. key "hbsag": HBsAg positive (codes.lua "hbsag"): a positive text as
--    above, or an abnormal flag (A, AA, H, HH, POS).  High (issue 14; the
--    label's HBV monitoring concerns HBsAg-negative patients, so a positive
--    HBsAg during treatment is a reactivation or a new infection).
--
-- Results with HL7 status D, W or X do not count.  Facts may arrive in
-- any order: an exposure looks back at the results it covers
-- (pack.when_exposed).
local pack = require "pack"
require "codes"

local SETS = { "hbv_dna", "hbsag" }
local HBSAG = {}
for _, c in ipairs(pv.codes.hbsag) do HBSAG[c] = true end
local FLAGS = { A = true, AA = true, H = true, HH = true, POS = true }

-- text_positive(s): true, false, or nil when the text says neither.
local function text_positive(s)
  if type(s) ~= "string" then return nil end
  local t = s:lower()
  if t:find("not detected", 1, true) or t:find("undetect", 1, true)
    or t:find("negative", 1, true) or t:find("non-reactive", 1, true)
    or t:find("nonreactive", 1, true) or t:find("not reactive", 1, true) then
    return false
  end
  if t:find("detected", 1, true) or t:find("positive", 1, true)
    or t:find("reactive", 1, true) then
    return true
  end
  return nil
end

local function counts(obs)
  return obs.status ~= "D" and obs.status ~= "W" and obs.status ~= "X"
end

-- dna_detected(obs) -> boolean.
local function dna_detected(obs)
  if obs.value == nil then return text_positive(obs.value_text) == true end
  local vt = obs.value_text or ""
  if obs.comparator == "<" or obs.comparator == "<=" or vt:match("^%s*<") then
    return false
  end
  if obs.value <= 0 then return false end
  return obs.ref_low == nil or obs.value >= obs.ref_low
end

local function assess(obs, exposure, patient)
  if not counts(obs) then return nil end
  local result = ("%s %s%s on %s"):format(obs.name or obs.code,
    obs.value_text or pack.fmt(obs.value or 0),
    obs.unit and (" " .. obs.unit) or "", pv.date(obs.at))
  local on = pack.On(exposure, obs.at, patient) .. "."
  if HBSAG[obs.code] then
    if not (text_positive(obs.value_text) or FLAGS[obs.flag or ""]) then
      return nil
    end
    return pv.alert {
      severity = "high",
      title = "HBsAg positive on baricitinib",
      detail = ("HBsAg %s (LOINC %s). %s"):format(result, obs.code, on),
      action = "Hepatitis B reactivation or infection: consult a "
        .. "hepatologist, check HBV DNA, and review continuing baricitinib "
        .. "(OLU-HCP; domain §1.7).",
      key = "hbsag",
      evidence = { obs, exposure },
    }
  end
  if not dna_detected(obs) then return nil end
  return pv.alert {
    severity = "high",
    title = "HBV DNA detected on baricitinib",
    detail = ("HBV DNA %s (LOINC %s)%s. %s"):format(result, obs.code,
      obs.ref_low and (", limit %s"):format(pack.fmt(obs.ref_low)) or "", on),
    action = "Should HBV DNA be detected, consult with a hepatologist "
      .. "(OLU-HCP; domain §1.7).",
    key = "hbv_dna",
    evidence = { obs, exposure },
  }
end

local hbv = pv.rule {
  name = "baricitinib.hbv",
  signal = "hepatic",
  label = "Should HBV DNA be detected, consult with a hepatologist "
    .. "(OLU-HCP; domain §1.7)",
  severities = { "high" },
  description = "HBV DNA detected or HBsAg positive while exposed to "
    .. "baricitinib",
  on = { lab = SETS, exposure = "baricitinib" },
  when = pack.when_exposed { labs = SETS, assess = assess },
}

return hbv
