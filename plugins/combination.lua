-- plugins/combination.lua: baricitinib together with a biologic DMARD,
-- another JAK inhibitor or a potent immunosuppressant (issue 14; signal
-- "interaction"; domain §1.9, §1.10).
--
-- baricitinib.combination  an overlap, on any day, of a baricitinib
--                          exposure with a drug of codes.combination_drug
--                          (TNF blockers, abatacept, tocilizumab,
--                          sarilumab, anakinra, rituximab; tofacitinib,
--                          upadacitinib, filgotinib, ruxolitinib,
--                          abrocitinib, ...; ciclosporin, tacrolimus,
--                          azathioprine, mycophenolate, cyclophosphamide);
--                          high
--
-- Label basis: baricitinib is "not recommended" with "biologic DMARDs,
-- other JAK inhibitors, or potent immunosuppressants such as ciclosporin"
-- (MIMS-TH; domain §1.9).  Pemphigus patients usually arrive on exactly
-- these drugs (domain §1.10, issue 14), so the pair is judged whichever
-- drug arrives first.
--
-- Windows.  Baricitinib counts as patient:exposed counts it: from its
-- start to the end of the washout after its last day (core/rules_api.lua
-- covers(), docs/rules.md "Exposure windows").  The other drug counts on
-- its dosing days (start to the end of its last day; no end = ongoing),
-- except rituximab: its B-cell depletion lasts months, so it counts for
-- RITUXIMAB_DAYS after its last dose (issue 14: "remembered for 6 months
-- after its last dose").  So an exposure that ends (plus the washout)
-- before the other starts is no overlap.  Routes that are not systemic
-- (topical tacrolimus, ciclosporin eye drops) are not matched
-- (codes.combination_drug).
--
-- Dedup key: "combination:<ingredient>" — one alert per other drug; a
-- refill of either drug adds an occurrence.
local codes = require "codes"
local pack = require "pack"
local dose_text = pack.dose_text

local DAY = pv.days

-- RITUXIMAB_DAYS: how long after its last dose rituximab still counts:
-- config exposure.rituximab_days (pv.exposure.rituximab_days; a whole
-- number of days, validated by core/config.c), default 183 = 6 months
-- of B-cell depletion (issue 14).  The fallback keeps the plugin loadable
-- on an engine older than the key.
local RITUXIMAB_DAYS = (type(pv.exposure.rituximab_days) == "number"
  and pv.exposure.rituximab_days) or 183

local CLASS = {
  biologic = "a biologic DMARD",
  jak = "another JAK inhibitor",
  immunosuppressant = "a potent immunosuppressant",
}

-- The trigger: baricitinib and every name and brand of the list.
local TRIGGER = codes.combination_names()
table.insert(TRIGGER, 1, "baricitinib")

-- window_end(e, extra_days): the first second no longer counted for e:
-- the end of its last day plus extra_days; nil when e is ongoing.
local function window_end(e, extra_days)
  if e["end"] == nil then return nil end
  return e["end"] - e["end"] % DAY + (extra_days + 1) * DAY
end

local function range_text(e)
  return pv.date(e.start) .. " to "
    .. (e["end"] and pv.date(e["end"]) or "ongoing")
end

-- assess(bari, other, name, class) -> alert or nil.
local function assess(bari, other, name, class)
  local bari_to = window_end(bari, pv.exposure.washout_days)
  local other_to = window_end(other,
    name == "rituximab" and RITUXIMAB_DAYS or 0)
  local from = math.max(bari.start, other.start)
  local to = (bari_to and other_to) and math.min(bari_to, other_to)
    or bari_to or other_to
  if to ~= nil and from >= to then return nil end
  local days = to and math.ceil((to - from) / DAY) or nil
  local code = other.drug_code and (" (%s %s)"):format(
    other.code_system or "code", other.drug_code) or ""
  return pv.alert {
    severity = "high",
    title = ("Baricitinib combined with %s (%s)"):format(name, CLASS[class]),
    detail = ("%s%s%s, %s, and baricitinib%s, %s (washout %d days), "
      .. "overlap from %s: %s.%s"):format(other.drug, code,
      dose_text(other), range_text(other), dose_text(bari),
      range_text(bari), pv.exposure.washout_days, pv.date(from),
      days and (days .. (days == 1 and " day" or " days")) or "ongoing",
      name == "rituximab" and (" Rituximab counts for %d days after its "
        .. "last dose (B-cell depletion)."):format(RITUXIMAB_DAYS) or ""),
    action = "Baricitinib is not recommended together with biologic "
      .. "DMARDs, other JAK inhibitors or potent immunosuppressants such "
      .. "as ciclosporin (EU SmPC, MIMS-TH; domain §1.9): review and stop "
      .. "one of them.",
    key = "combination:" .. name,
    evidence = { bari, other },
  }
end

local combination = pv.rule {
  name = "baricitinib.combination",
  signal = "interaction",
  label = "Not recommended with biologic DMARDs, other JAK inhibitors, or "
    .. "potent immunosuppressants such as ciclosporin (MIMS-TH; domain "
    .. "§1.9)",
  severities = { "high" },
  description = "baricitinib overlapping a biologic DMARD, another JAK "
    .. "inhibitor or a potent immunosuppressant",
  on = { exposure = TRIGGER },
  when = function(e, patient)
    local alerts = {}
    local name, class = codes.combination_drug(e)
    if name then
      for _, bari in ipairs(patient:exposures("baricitinib")) do
        alerts[#alerts + 1] = assess(bari, e, name, class)
      end
    elseif codes.drug_matches("baricitinib", e) then
      for _, other in ipairs(patient:exposures()) do
        local n, c = codes.combination_drug(other)
        if n then alerts[#alerts + 1] = assess(e, other, n, c) end
      end
    end
    return alerts
  end,
}

return combination
