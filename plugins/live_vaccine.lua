-- plugins/live_vaccine.lua: a live vaccine given on baricitinib (issue 14;
-- signal "vaccine"; domain §1.7 "Live vaccines: avoid" (USPI-OLD;
-- MIMS-TH)).
--
-- baricitinib.live_vaccine  a live vaccine given while the patient is
--                           exposed (patient:exposed: from the start to the
--                           end of the washout); high
--
-- How a vaccine reaches the store (the assumption this rule is written
-- for): pvwatch has no immunisation table and no VXU/RXA mapping yet, so a
-- vaccination is an exposure (medications CSV, or later the HL7 mapper)
-- whose code_system is "CVX" and whose drug_code is the CVX code, with
-- start = the administration date ("MMR II,03,CVX,2026-03-01,2026-03-01").
-- The live-vaccine CVX codes are codes.lua LIVE_VACCINES (13 verified
-- against a CDC CVX table copy, 8 UNVERIFIED).  A vaccine without a CVX
-- code is not judged (names are too ambiguous: "zoster vaccine" may be
-- the recombinant, non-live one).  The trigger needs a vaccine word in the
-- drug text (VACCINE_WORDS) or a CVX code codes.lua's "live_vaccines" set
-- knows, so a vaccine given only as its code triggers the rule too.
--
-- Dedup key: "live_vaccine:<CVX>:<date given>" — each administration.
local codes = require "codes"
local pack = require "pack"

local VACCINE_WORDS = { "baricitinib", "vaccin", "vax", "mmr", "measles",
  "mumps", "rubella", "varicella", "zoster", "yellow fever", "typhoid",
  "bcg", "influenza", "flumist", "rotavirus", "rotateq", "rotarix", "polio",
  "opv", "cholera", "vaccinia", "smallpox", "priorix", "proquad", "stamaril",
  "vivotif", "live_vaccines" }

local function assess(v, bari, patient)
  local cvx, label, verified = codes.live_vaccine(v)
  if not cvx then return nil end
  return pv.alert {
    severity = "high",
    title = ("Live vaccine (%s) given on baricitinib"):format(label),
    detail = ("%s (CVX %s%s) given %s. %s.")
      :format(v.drug or "vaccine", cvx, verified and ""
        or ", live status UNVERIFIED", pv.date(v.start),
      pack.On(bari, v.start, patient)),
    action = "Avoid live vaccines during baricitinib treatment (USPI-OLD; "
      .. "EU SmPC, MIMS-TH): assess for vaccine-strain infection and "
      .. "report.",
    key = ("live_vaccine:%s:%s"):format(cvx, pv.date(v.start)),
    evidence = { v, bari },
  }
end

local live_vaccine = pv.rule {
  name = "baricitinib.live_vaccine",
  signal = "vaccine",
  label = "Avoid live vaccines (USPI-OLD; MIMS-TH; domain §1.7)",
  severities = { "high" },
  description = "a live vaccine (CVX) given while exposed to baricitinib",
  on = { exposure = VACCINE_WORDS },
  when = function(e, patient)
    if codes.drug_matches("baricitinib", e) then
      local alerts = {}
      for _, v in ipairs(patient:exposures()) do
        if codes.live_vaccine(v) then
          local exposed, bari = patient:exposed("baricitinib", v.start)
          if exposed and bari.id == e.id then
            alerts[#alerts + 1] = assess(v, bari, patient)
          end
        end
      end
      return alerts
    end
    local exposed, bari = patient:exposed("baricitinib", e.start)
    if not exposed then return nil end
    return assess(e, bari, patient)
  end,
}

return live_vaccine
