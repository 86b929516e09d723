-- plugins/screening_missing.lua: a baricitinib course started without TB
-- or hepatitis B screening (issue 14; signal "monitoring"; domain §1.2
-- "Test for latent TB before and during therapy, except for COVID-19",
-- §1.4 LILLY-US-MON baseline grid "TB screening, hepatitis screening",
-- §1.7).  Scheduled (every = "1d").
--
-- baricitinib.screening_missing  a course (patient:course_start) with no
--                                latent-TB test (codes.lua "tb_test": IGRA
--                                or TST) or no hepatitis B serology
--                                ("hbv_serology": HBsAg, anti-HBc,
--                                anti-HBs) taken from 90 days before to 14
--                                days after its start (both ends
--                                inclusive); medium, one alert per course,
--                                opened on the first tick at or after 14
--                                days after the start
--
-- With label.indication = "covid19" the TB part is exempt, as the label
-- says ("except for COVID-19"); hepatitis B serology is still asked for.
-- Any result counts as a test done (its value is other rules' business).
-- The 90/14-day window is issue 14's, not label text.  pv.state remembers
-- each reminded course, so a closed alert is not reopened by the next
-- tick.  The LOINC codes are UNVERIFIED (codes.lua).
require "codes"

local DAY = pv.days
local BEFORE, AFTER = 90 * DAY, 14 * DAY

local function found(patient, set, from, to)
  return patient:labs(set, { since = from, ["until"] = to, limit = 1 })[1]
end

local screening_missing = pv.rule {
  name = "baricitinib.screening_missing",
  signal = "monitoring",
  label = "Test for latent TB before and during therapy, except for "
    .. "COVID-19 (USPI-HL22); hepatitis screening before treatment "
    .. "(LILLY-US-MON; domain §1.4, §1.7)",
  severities = { "medium" },
  description = "a baricitinib course started without a latent-TB test or "
    .. "hepatitis B serology (90 days before to 14 days after)",
  every = "1d",
  when = function(patient, now)
    local alerts, seen = {}, {}
    for _, e in ipairs(patient:exposures("baricitinib")) do
      local start, first = patient:course_start("baricitinib", e)
      if not seen[start] and now >= start + AFTER then
        seen[start] = true
        local state = patient.id .. "|" .. pv.iso(start)
        local from, to = start - BEFORE, start + AFTER
        local missing = {}
        local covid = pv.label.indication == "covid19"
        if not covid and not found(patient, "tb_test", from, to) then
          missing[#missing + 1] = "latent-TB test (IGRA or tuberculin "
            .. "skin test)"
        end
        if not found(patient, "hbv_serology", from, to) then
          missing[#missing + 1] = "hepatitis B serology (HBsAg, anti-HBc, "
            .. "anti-HBs)"
        end
        if #missing > 0 and not pv.state.get(state) then
          pv.state.set(state, pv.iso(now))
          alerts[#alerts + 1] = pv.alert {
            severity = "medium",
            title = "Baricitinib started without "
              .. (#missing == 2 and "TB and hepatitis B screening"
                or missing[1]:find("TB", 1, true) and "TB screening"
                or "hepatitis B screening"),
            detail = ("Course started %s; no %s between %s and %s.%s"):format(
              pv.date(start), table.concat(missing, " and no "),
              pv.date(from), pv.date(to), covid and " TB screening is "
                .. "exempt under the COVID-19 label." or ""),
            action = covid
              and "Screen for hepatitis B (LILLY-US-MON; OLU-HCP)."
              or "Test for latent TB before and during therapy and treat "
                .. "latent TB before use (USPI-HL22 boxed warning); screen "
                .. "for hepatitis B (LILLY-US-MON; OLU-HCP).",
            key = "screening_missing:" .. pv.date(start),
            evidence = { first },
          }
        end
      end
    end
    return alerts
  end,
}

return screening_missing
