-- plugins/steroid_burden.lua: a high systemic corticosteroid burden on
-- baricitinib (issue 14; signal "interaction"; domain §1.7 infections,
-- §1.10 pemphigus patients arrive on systemic corticosteroids).
--
-- baricitinib.steroid_burden  prednisone-equivalent >= 20 mg/day for >= 4
--                             weeks (28 consecutive days) while exposed to
--                             baricitinib (patient:exposed, washout
--                             included); medium
--
-- This is a guideline threshold, not label text: >= 20 mg/day prednisone
-- for >= 4 weeks is the dose and duration at which Pneumocystis (PJP)
-- prophylaxis is commonly considered (issue 14; the guideline source is
-- not in the domain file: UNVERIFIED).  The label's part is the boxed
-- warning's opportunistic infections, "including ... pneumocystosis"
-- (USPI-HL22, domain §1.2).
--
-- Prednisone equivalents: codes.steroid (prednisone 1, prednisolone 1,
-- methylprednisolone 1.25, dexamethasone 6.67, hydrocortisone 0.25 mg of
-- prednisone per mg; the standard table, UNVERIFIED, see codes.lua).
-- Concurrent steroid records add up per day.  A record's dose is read as
-- the daily dose in mg (dose_unit "mg" or none); a record without a dose
-- in mg is not counted, and topical or inhaled routes never are.  Days
-- are UTC days; a record counts from its start day to its last day.
--
-- Open-ended records: the facts can prove only what has been recorded, so
-- an ongoing steroid or baricitinib record counts up to the last day any
-- of the patient's steroid or baricitinib records mentions (a start or an
-- end).  A refill or any later record re-judges the patient.  (A
-- scheduled twin would catch a 4-week overlap that no record follows;
-- pvwatch ingest does not run scheduled rules, so this one is triggered.)
-- The days looked at are bounded to MAX_DAYS.
--
-- Dedup key: "steroid_burden:<baricitinib course start>".
local codes = require "codes"
local pack = require "pack"
local fmt = pack.fmt

local DAY = pv.days
local THRESHOLD_MG = 20 -- prednisone-equivalent mg/day (guideline)
local MIN_DAYS = 28     -- 4 weeks
local MAX_DAYS = 3 * 366

local TRIGGER = codes.steroid_names()
table.insert(TRIGGER, 1, "baricitinib")

local function day_of(t) return t - t % DAY end

local function mg(e)
  if type(e.dose) ~= "number" or e.dose <= 0 then return nil end
  if e.dose_unit ~= nil and e.dose_unit:lower() ~= "mg" then return nil end
  return e.dose
end

local burden = pv.rule {
  name = "baricitinib.steroid_burden",
  signal = "interaction",
  label = "None: a guideline threshold, not label text; the boxed warning "
    .. "names pneumocystosis (USPI-HL22; domain §1.2)",
  severities = { "medium" },
  description = "prednisone-equivalent >= 20 mg/day for >= 4 weeks while "
    .. "exposed to baricitinib",
  on = { exposure = TRIGGER },
  when = function(_, patient)
    local bari = patient:exposures("baricitinib")
    if #bari == 0 then return nil end
    local horizon = 0
    local function seen(e)
      horizon = math.max(horizon, day_of(e.start) + DAY)
      if e["end"] then horizon = math.max(horizon, day_of(e["end"]) + DAY) end
    end
    for _, e in ipairs(bari) do seen(e) end
    local steroids = {}
    for _, e in ipairs(patient:exposures()) do
      local name, factor = codes.steroid(e)
      local dose = name and mg(e)
      if dose then
        seen(e)
        steroids[#steroids + 1] = { e = e, name = name, eq = dose * factor,
          from = day_of(e.start) }
      end
    end
    if #steroids == 0 then return nil end
    local first = steroids[1].from
    for _, s in ipairs(steroids) do
      s.to = s.e["end"] and day_of(s.e["end"]) + DAY or horizon
      first = math.min(first, s.from)
    end
    local last = math.min(horizon, first + MAX_DAYS * DAY)
    -- Runs of days with >= THRESHOLD_MG while exposed.
    local alerts, done = {}, {}
    local run_from, run_max, run_exposure
    local function close(to)
      if run_from and (to - run_from) / DAY >= MIN_DAYS then
        local start = patient:course_start("baricitinib", run_exposure)
        if not done[start] then
          done[start] = true
          local used, ev = {}, { run_exposure }
          for _, s in ipairs(steroids) do
            if s.from < to and s.to > run_from then
              used[#used + 1] = ("%s %s mg/day (= %s mg prednisone) %s to %s")
                :format(s.e.drug, fmt(mg(s.e)), fmt(s.eq),
                pv.date(s.from), s.e["end"] and pv.date(s.e["end"])
                  or "ongoing")
              ev[#ev + 1] = s.e
            end
          end
          alerts[#alerts + 1] = pv.alert {
            severity = "medium",
            title = "High corticosteroid burden on baricitinib",
            detail = ("Prednisone-equivalent >= %d mg/day for %d days (%s to "
              .. "%s, up to %s mg/day) while exposed to baricitinib "
              .. "(course started %s): %s."):format(THRESHOLD_MG,
              (to - run_from) // DAY, pv.date(run_from), pv.date(to - DAY),
              fmt(run_max), pv.date(start), table.concat(used, "; ")),
            action = "Consider Pneumocystis (PJP) prophylaxis and review the "
              .. "steroid dose: >= 20 mg/day prednisone for >= 4 weeks is a "
              .. "guideline threshold (not label text); the boxed warning "
              .. "names opportunistic infections including pneumocystosis "
              .. "(USPI-HL22).",
            key = "steroid_burden:" .. pv.date(start),
            evidence = ev,
          }
        end
      end
      run_from, run_max, run_exposure = nil, nil, nil
    end
    for d = first, last - DAY, DAY do
      local total = 0
      for _, s in ipairs(steroids) do
        if d >= s.from and d < s.to then total = total + s.eq end
      end
      total = pack.fmt(total) + 0 -- no float noise at the threshold
      local exposed, exposure = false, nil
      if total >= THRESHOLD_MG then
        exposed, exposure = patient:exposed("baricitinib", d)
      end
      if exposed then
        if not run_from then run_from, run_max, run_exposure = d, total, exposure end
        run_max = math.max(run_max, total)
      else
        close(d)
      end
    end
    close(last)
    return alerts
  end,
}

return burden
