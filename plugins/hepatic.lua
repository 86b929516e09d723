-- plugins/hepatic.lua: liver injury on baricitinib (DESIGN.md rule pack,
-- signal "hepatic"; domain §1.4, §1.6, §2).
--
-- baricitinib.transaminase_rise  ALT or AST of CTCAE v5 grade >= 2 while
--                                exposed, graded against the patient's
--                                baseline (domain §2, §6 cases 15-16)
-- baricitinib.hys_law            ALT or AST >= 3 x ULN and total bilirubin
--                                >= 2 x ULN within 30 days of each other,
--                                both while exposed; critical
--
-- Label basis: "Treatment should be temporarily interrupted if drug-induced
-- liver injury is suspected" (EU SmPC via LILLY-EU-LAB; MIMS-TH); the
-- exact US sentence is UNVERIFIED (domain §1.4).
--
-- Facts may arrive in any order: a lab is judged when it arrives during an
-- exposure, and an exposure that arrives later looks back at the labs its
-- window covers (pack.judge and pack.look_back, scripts/pack.lua; a result
-- that cannot be graded raises on either path).
local ctcae = require "ctcae"
local codes = require "codes"
local units = require "units"
local pack = require "pack"
local fmt, void = pack.fmt, pack.void

local DAY = pv.days
local SEVERITY = { [2] = "medium", [3] = "high", [4] = "critical" }
local TERM = {
  alt = "alanine_aminotransferase_increased",
  ast = "aspartate_aminotransferase_increased",
  bilirubin = "blood_bilirubin_increased",
}
local DILI_ACTION = "interrupt baricitinib if drug-induced liver injury "
  .. "is suspected, until DILI is excluded (EU SmPC: 'Treatment should be "
  .. "temporarily interrupted if drug-induced liver injury is suspected', "
  .. "LILLY-EU-LAB; MIMS-TH; US wording UNVERIFIED, domain §1.4)"

-- baricitinib.transaminase_rise.  Baseline (domain §2: "if baseline was
-- normal / abnormal"): the newest result of the same analyte before the
-- start of the treatment course (patient:course_start, so a refill does
-- not turn an on-treatment value into a baseline).  Abnormal means above
-- the ULN (PF-GRADER ALT_BASEABFL).  Without a baseline the baseline is
-- taken as normal, which can only grade higher, never miss a rise.
-- ULN: the record's ref_high, else 40 U/L (ctcae.lua, domain §6 case 15).
-- ALT and AST share one dedup key: the alert shows the worst grade.
local function assess_transaminase(obs, exposure, patient)
  if void(obs) then return nil end
  local analyte = codes.loinc_analyte(obs.code)
  local term = TERM[analyte]
  if not term or analyte == "bilirubin" then return nil end
  -- Grade 2 needs more than 3 x ULN whatever the baseline (more than
  -- 3 x a baseline that is itself above the ULN), so a value at or below
  -- it needs no history: most results stop here, cheaply.
  local uln0, unit0 = ctcae.normal_limit(term, obs)
  if uln0 and obs:value_in(unit0) <= units.round(3 * uln0) then return nil end
  local start = patient:course_start("baricitinib", exposure)
  local base = patient:baseline(analyte, start)
  if base and void(base) then base = nil end
  local opts
  if base then opts = { baseline = base:value_in(obs.unit) } end
  local grade, why = ctcae.grade(term, obs, opts)
  if not grade then
    return nil, ("baricitinib.transaminase_rise cannot grade %s %s %s: %s")
      :format(analyte:upper(), tostring(obs.value), tostring(obs.unit), why)
  end
  if grade < 2 then return nil end
  local name = analyte:upper()
  local uln = ctcae.normal_limit(term, obs)
  return pv.alert {
    severity = SEVERITY[grade] or "critical",
    grade = grade,
    title = ("%s rise grade %d on baricitinib"):format(name, grade),
    detail = ("%s %s %s on %s (ULN %s U/L, %.1f x ULN); %s. Baseline: %s. "
      .. "%s (course started %s).")
      :format(name, obs.value_text or fmt(obs.value), obs.unit or "",
      pv.date(obs.at), fmt(uln), obs:value_in("U/L") / uln, why,
      base and ("%s %s %s on %s"):format(name, fmt(base.value),
        base.unit or "", pv.date(base.at))
        or "none before the course (taken as normal)",
      pack.On(exposure, obs.at, patient), pv.date(start)),
    action = ("CTCAE v5 grade %d %s increased: repeat ALT, AST and total "
      .. "bilirubin and look for other causes; %s."):format(grade,
      analyte == "alt" and "alanine aminotransferase"
        or "aspartate aminotransferase", DILI_ACTION),
    key = "transaminase",
    evidence = base and { obs, exposure, base } or { obs, exposure },
  }
end

local transaminase_rise = pv.rule {
  name = "baricitinib.transaminase_rise",
  signal = "hepatic",
  label = "Interrupt if increases are observed and drug-induced liver "
    .. "injury is suspected, until DILI is excluded (LILLY-EU-LAB; "
    .. "MIMS-TH; US sentence UNVERIFIED; domain §1.4)",
  severities = { "medium", "high", "critical" },
  description = "ALT or AST of CTCAE v5 grade >= 2 (baseline-aware) while "
    .. "exposed to baricitinib",
  on = { lab = { "alt", "ast" }, exposure = "baricitinib" },
  when = pack.when_exposed { labs = { "alt", "ast" },
    assess = assess_transaminase },
}

-- baricitinib.hys_law: a Hy's-law style pattern, "AST or ALT elevations
-- >= 3 x ULN with at least one total bilirubin value >= 2 x ULN" (the
-- criterion of a JAK-inhibitor trial, PMC9300081; UNVERIFIED against the
-- FDA DILI guidance, domain §2 notes).  Decisions:
--   * both results lie within 30 days of each other (inclusive) and both
--     while exposed: a bilirubin raised before treatment (e.g. Gilbert's)
--     is not drug-induced;
--   * ULN: each record's ref_high, else 40 U/L (ALT/AST) and 1.2 mg/dL
--     (bilirubin), the defaults of ctcae.lua (domain §6 cases 15, 17);
--     ">=" is inclusive as the criterion writes it;
--   * grade 3: CTCAE v5 "Hepatic failure" grade 3 includes DILI "as
--     defined by Hy's Law" (domain §2 notes);
--   * alkaline phosphatase (the classic exclusion) is not in the domain
--     file's code sets, so the action asks for it instead.
local WINDOW = 30 * DAY

-- times_uln(obs) -> value / ULN, ULN, unit, analyte | nil.
local function times_uln(obs)
  if void(obs) then return nil end
  local analyte = codes.loinc_analyte(obs.code)
  local term = TERM[analyte]
  if not term then return nil end
  local uln, unit = ctcae.normal_limit(term, obs)
  if not uln then
    error(("baricitinib.hys_law cannot read %s %s %s: %s"):format(
      analyte, tostring(obs.value), tostring(obs.unit), tostring(unit)), 0)
  end
  return obs:value_in(unit) / uln, uln, unit, analyte
end

-- qualifies(obs) -> analyte, ULN, unit when obs meets its half of the
-- criterion: ALT/AST >= 3 x ULN or bilirubin >= 2 x ULN.
local function qualifies(obs)
  local ratio, uln, unit, analyte = times_uln(obs)
  if not ratio then return nil end
  local need = analyte == "bilirubin" and 2 or 3
  -- Compare value >= need x ULN on rounded products, as ctcae.lua does.
  if obs:value_in(unit) >= units.round(need * uln) then
    return analyte, uln, unit
  end
  return nil
end

local function show(obs, analyte, uln, unit)
  return ("%s %s %s on %s (ULN %s %s, %.1f x ULN)"):format(
    analyte == "bilirubin" and "Total bilirubin" or analyte:upper(),
    obs.value_text or fmt(obs.value), obs.unit or "", pv.date(obs.at),
    fmt(uln), unit, obs:value_in(unit) / uln)
end

-- assess_hys(obs, exposure, patient): obs arrived (or was found) while
-- exposed; look for its partner within 30 days, also while exposed.
local function assess_hys(obs, exposure, patient)
  local analyte, uln, unit = qualifies(obs)
  if not analyte then return nil end
  local partners = analyte == "bilirubin" and { "alt", "ast" }
    or "bilirubin"
  local best, best_info
  for _, p in ipairs(patient:labs(partners, { since = obs.at - WINDOW,
      ["until"] = obs.at + WINDOW })) do
    local pa, puln, punit = qualifies(p)
    if pa and patient:exposed("baricitinib", p.at) then
      -- The nearest partner in time; ties go to the higher ratio.
      local d = math.abs(p.at - obs.at)
      if best == nil or d < math.abs(best.at - obs.at)
        or (d == math.abs(best.at - obs.at)
          and p:value_in(punit) / puln > best_info[1]) then
        best, best_info = p, { p:value_in(punit) / puln, pa, puln, punit }
      end
    end
  end
  if not best then return nil end
  local tx, bili, tx_text, bili_text
  if analyte == "bilirubin" then
    tx, bili = best, obs
    tx_text = show(best, best_info[2], best_info[3], best_info[4])
    bili_text = show(obs, analyte, uln, unit)
  else
    tx, bili = obs, best
    tx_text = show(obs, analyte, uln, unit)
    bili_text = show(best, best_info[2], best_info[3], best_info[4])
  end
  local days = math.floor(math.abs(tx.at - bili.at) / DAY)
  return pv.alert {
    severity = "critical",
    grade = 3,
    title = "Possible Hy's law case (drug-induced liver injury) on "
      .. "baricitinib",
    detail = ("%s and %s, %d day%s apart: transaminase >= 3 x ULN with "
      .. "total bilirubin >= 2 x ULN. %s.")
      :format(tx_text, bili_text, days, days == 1 and "" or "s",
      pack.On(exposure, obs.at, patient)),
    action = "Interrupt baricitinib: drug-induced liver injury is "
      .. "suspected; keep it interrupted until DILI is excluded (EU SmPC "
      .. "via LILLY-EU-LAB; MIMS-TH). Repeat ALT, AST, total bilirubin and "
      .. "alkaline phosphatase and exclude other causes. CTCAE v5 hepatic "
      .. "failure grade 3 includes DILI as defined by Hy's law.",
    key = "hys_law",
    evidence = { tx, bili, exposure },
  }
end

local hys_law = pv.rule {
  name = "baricitinib.hys_law",
  signal = "hepatic",
  label = "Treatment should be temporarily interrupted if drug-induced "
    .. "liver injury is suspected (LILLY-EU-LAB; domain §1.4); Hy's "
    .. "law itself is not label text",
  severities = { "critical" },
  description = "ALT or AST >= 3 x ULN with total bilirubin >= 2 x ULN "
    .. "within 30 days, while exposed to baricitinib",
  on = { lab = "liver", exposure = "baricitinib" },
  when = function(fact, patient)
    if fact.kind == "lab" then
      return pack.judge(fact, patient, assess_hys)
    end
    -- A new exposure: its labs may now pair with each other or with
    -- labs of another exposure.  One alert is enough (one key).
    return pack.look_back(fact, patient,
      patient:labs("liver", { since = fact.start }), assess_hys)[1]
  end,
}

return { transaminase_rise, hys_law }
