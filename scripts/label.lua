-- label.lua: what the baricitinib (Olumiant) label says about laboratory
-- thresholds, renal dosing and OAT3 inhibitors, for the US label and the
-- EU SmPC (domain §1.3, §1.4, §1.5, §1.9).
--
-- Every threshold is strict, as the label writes it: "ANC less than 1000"
-- interrupts, "ANC greater than or equal to 1000" maintains (domain §1.4,
-- §6 cases 1-8).  Values come in the base unit: cells/mm3 for ANC and ALC
-- (use units.convert first; 1 cell/mm3 = 1 cell/uL), g/dL for Hb.
--
-- Arguments that cannot be right (an unknown analyte, a value that is not
-- a number) raise an error: they are bugs in the calling rule, and the
-- engine reports a rule error instead of silently not alerting.
--
-- Pure Lua, no globals, no I/O: it is required inside the rule sandbox.

local label = {}

-- Base units and display names of the analytes.
local ANALYTE = {
  anc = { name = "ANC", unit = "cells/mm3" },
  alc = { name = "ALC", unit = "cells/mm3" },
  hb  = { name = "Hb", unit = "g/dL" },
}

-- Where each threshold comes from (domain §1.4).  Initiation and
-- interruption use the same limits in every source.
local US_RA_AA = {
  anc = { 1000, "domain §1.4: DRUGS19 Table 2 ('ANC less than 1000': "
    .. "interrupt until 'ANC greater than or equal to 1000'); DRUGS23; "
    .. "USPI-OLD" },
  alc = { 500, "domain §1.4: DRUGS19 Table 1 ('ALC less than 500': "
    .. "interrupt until 'ALC greater than or equal to 500'); DRUGS23; "
    .. "USPI-OLD" },
  hb  = { 8, "domain §1.4: DRUGS19 Table 3 ('Less than 8'); MEDSCAPE "
    .. "('Hgb <8 g/dL: Avoid initiation or interrupt dosing until Hgb "
    .. ">=8 g/dL'); USPI-OLD" },
}
local US_COVID = {
  anc = { 500, "domain §1.4: DRUGS23 ('initiation is not recommended if "
    .. "... the ANC is <500 cells/µl'); MEDSCAPE; whether the current USPI "
    .. "says 'consider interruption' is UNVERIFIED" },
  alc = { 200, "domain §1.4: DRUGS23 ('ALC is <200 cells/µl'); MEDSCAPE "
    .. "('ALC <200 cells/mm3: Avoid initiation or interrupt dosing'); "
    .. "whether the current USPI says 'consider interruption' is "
    .. "UNVERIFIED" },
  -- The label sets no Hb threshold for COVID-19 (MEDSCAPE lists anemia
  -- only for RA/AA, domain §1.4 and §6 case 7).
}
local EU_ALL = {
  anc = { 1000, "domain §1.4: EU SmPC via LILLY-EU-LAB Table 1 ('ANC < "
    .. "1 x 10^9 cells/L ... may be restarted once ANC return above this "
    .. "value'); MIMS-HK" },
  alc = { 500, "domain §1.4: EU SmPC via LILLY-EU-LAB Table 1 ('ALC < "
    .. "0.5 x 10^9 cells/L'); MIMS-HK" },
  hb  = { 8, "domain §1.4: EU SmPC via LILLY-EU-LAB Table 1 ('Hb < 8 "
    .. "g/dL'); MIMS-HK" },
}

-- Decision: the EU SmPC's Table 1 applies to every EU indication, so it is
-- used for "ra" and "aa" alike.  COVID-19 is not an EU indication in the
-- domain file (§1.3); for region "eu" with "covid19" the general SmPC
-- limits are used, which are stricter than the US COVID-19 ones and so
-- alert rather than stay silent.  That choice is marked UNVERIFIED.
local EU_COVID_NOTE = "; COVID-19 is not an EU indication in domain §1.3, "
  .. "general SmPC limits applied (UNVERIFIED)"

local THRESHOLDS = {
  us = { ra = US_RA_AA, aa = US_RA_AA, covid19 = US_COVID },
  eu = { ra = EU_ALL, aa = EU_ALL, covid19 = EU_ALL },
}

-- How the action text names the label in force.
local WHO = {
  us = { ra = "US label, RA/AA", aa = "US label, RA/AA",
         covid19 = "US label, COVID-19" },
  eu = { ra = "EU SmPC", aa = "EU SmPC", covid19 = "EU SmPC" },
}

-- check_args(indication, region [, level]) normalises and validates the
-- label selectors and returns them.  nil selects the engine's documented
-- default (config `label = { indication = "ra", region = "us" }`).  Errors
-- are raised at `level` (default 3: the caller of the public function).
local function check_args(indication, region, level)
  level = level or 3
  indication = indication == nil and "ra" or indication
  region = region == nil and "us" or region
  if type(indication) ~= "string" or type(region) ~= "string" then
    error("indication and region must be strings", level)
  end
  indication = indication:lower():gsub("%-", "")
  region = region:lower()
  if not THRESHOLDS[region] then
    error(("unknown region '%s' (us|eu)"):format(region), level)
  end
  if not THRESHOLDS[region][indication] then
    error(("unknown indication '%s' (ra|aa|covid19)"):format(indication),
      level)
  end
  return indication, region
end

-- lookup(kind, analyte, indication, region) validates every argument and
-- returns the threshold entry (or nil when the label sets none) with the
-- normalised selectors.
local function lookup(kind, analyte, indication, region)
  if kind ~= "initiate" and kind ~= "interrupt" then
    error(("unknown kind '%s' (initiate|interrupt)"):format(tostring(kind)),
      3)
  end
  if not ANALYTE[analyte] then
    error(("unknown analyte '%s' (anc|alc|hb)"):format(tostring(analyte)),
      3)
  end
  indication, region = check_args(indication, region, 4)
  return THRESHOLDS[region][indication][analyte], indication, region
end

--[[
label.threshold(kind, analyte, indication, region) -> limit, citation | nil,
reason.

  kind: "initiate" or "interrupt".  analyte: "anc", "alc" or "hb".
  indication: "ra", "aa" or "covid19" (nil = "ra").  region: "us" or "eu"
  (nil = "us").
  Returns the limit below which the label says do not initiate or
  interrupt (cells/mm3 for anc/alc, g/dL for hb) and where it comes from;
  nil and a reason when the label sets none (US COVID-19 Hb).

  Example: label.threshold("interrupt", "anc", "ra", "us") --> 1000, "..."
]]
function label.threshold(kind, analyte, indication, region)
  local entry, ind, reg = lookup(kind, analyte, indication, region)
  if not entry then
    return nil, ("no %s threshold for %s in the %s (domain §1.4: MEDSCAPE "
      .. "lists anemia only for RA/AA)"):format(ANALYTE[analyte].name,
      ind == "covid19" and "COVID-19" or ind:upper(), WHO[reg][ind])
  end
  local citation = entry[2]
  if reg == "eu" and ind == "covid19" then
    citation = citation .. EU_COVID_NOTE
  end
  return entry[1], citation
end

-- fmt(x) prints a number without float noise or a trailing ".0".
local function fmt(x)
  return string.format("%.10g", x)
end

-- si(analyte, limit) adds the EU SmPC's x 10^9/L spelling to a count.
local function si(analyte, limit)
  if ANALYTE[analyte].unit ~= "cells/mm3" then return "" end
  return (" (%s x 10^9/L)"):format(string.format("%.1f", limit / 1000))
end

-- below_text(kind, analyte, limit, ind, reg) is the action text when the
-- value is below the limit, worded after the quotes of domain §1.4.
local function below_text(kind, analyte, limit, ind, reg)
  local a = ANALYTE[analyte]
  local who = WHO[reg][ind]
  if kind == "initiate" then
    if reg == "eu" then
      return ("Do not initiate baricitinib: %s < %s %s%s (%s)"):format(
        a.name, fmt(limit), a.unit, si(analyte, limit), who)
    end
    return ("Baricitinib initiation is not recommended with %s < %s %s "
      .. "(%s)"):format(a.name, fmt(limit), a.unit, who)
  end
  if reg == "eu" then
    if analyte == "anc" then
      -- "may be restarted once ANC return above this value" (LILLY-EU-LAB);
      -- §6 case 8 reads 1.0 x 10^9/L as "may restart".
      return ("Interrupt baricitinib; it may be restarted once %s >= %s %s"
        .. "%s (%s)"):format(a.name, fmt(limit), a.unit, si(analyte, limit),
        who)
    end
    return ("Interrupt baricitinib: %s < %s %s%s (%s)"):format(a.name,
      fmt(limit), a.unit, si(analyte, limit), who)
  end
  if ind == "covid19" then
    -- MEDSCAPE: "Avoid initiation or interrupt dosing until ALC >=200".
    return ("Avoid initiation or interrupt baricitinib until %s >= %s %s "
      .. "(%s)"):format(a.name, fmt(limit), a.unit, who)
  end
  -- DRUGS19: "Interrupt OLUMIANT until ANC greater than or equal to 1000".
  return ("Interrupt baricitinib until %s >= %s %s (%s)"):format(a.name,
    fmt(limit), a.unit, who)
end

--[[
label.check(kind, analyte, value, indication, region) -> true, limit, text
| false, limit, text | false, nil, text.

  value: the result in the base unit (cells/mm3 for anc/alc, g/dL for hb).
  Returns true when value < limit (strictly), with the limit and an action
  text such as "Interrupt baricitinib until ANC >= 1000 cells/mm3 (US
  label, RA/AA)".  Returns false with the limit and a "maintain" text when
  value >= limit, and false, nil and an explanation when the label sets
  no threshold (US COVID-19 Hb).

  Example: label.check("interrupt", "anc", 999, "ra", "us") --> true, 1000,
           "Interrupt baricitinib until ANC >= 1000 cells/mm3 (US label,
           RA/AA)"
]]
function label.check(kind, analyte, value, indication, region)
  local entry, ind, reg = lookup(kind, analyte, indication, region)
  if type(value) ~= "number" or value ~= value then
    error("label.check: value must be a number in the base unit", 2)
  end
  local a = ANALYTE[analyte]
  if not entry then
    local _, why = label.threshold(kind, analyte, ind, reg)
    return false, nil, "No label action: " .. why
  end
  local limit = entry[1]
  if value < limit then
    return true, limit, below_text(kind, analyte, limit, ind, reg)
  end
  local what = kind == "initiate" and "no label bar to initiation"
    or (reg == "eu" and analyte == "anc")
      and "treatment may continue or be restarted"
    or "maintain dose"
  return false, limit, ("%s %s %s >= %s: %s (%s)"):format(a.name,
    fmt(value), a.unit, fmt(limit), what, WHO[reg][ind])
end

-- check_dose(d) validates an optional current dose in mg.
local function check_dose(d)
  if d ~= nil and (type(d) ~= "number" or d ~= d or d <= 0) then
    error("current_dose_mg must be nil or a positive number", 3)
  end
end

-- halve(d) halves a dose without going below the 1 mg tablet, the
-- smallest strength (domain §1.1).
local function halve(d)
  return math.max(1, d / 2)
end

-- result(dose, current, changes, text, citation, unverified) builds the
-- table renal_dose and oat3_dose return.  `changes` says whether the
-- situation calls for a dose other than normal; adjust is then true when
-- the current dose is above the recommendation (or the drug is not
-- recommended at all).
local function result(dose, current, changes, text, citation, unverified)
  local adjust = false
  if changes and current ~= nil then
    adjust = dose == nil or current > dose
  end
  return {
    dose = dose and (math.tointeger(dose) or dose) or nil,
    recommended = dose ~= nil,
    adjust = adjust,
    text = text,
    citation = citation,
    unverified = unverified or false,
  }
end

--[[
label.normal_dose(indication, region [, current_dose_mg]) -> mg, text.

  The label's usual adult dose without renal impairment or OAT3
  inhibitors (domain §1.3): US RA 2 mg; US AA 2 mg (4 mg allowed, so a
  current 4 mg is kept); US COVID-19 4 mg; EU 4 mg (2 mg allowed, so a
  current 2 mg is kept).
]]
function label.normal_dose(indication, region, current_dose_mg)
  local ind, reg = check_args(indication, region)
  check_dose(current_dose_mg)
  if reg == "eu" then
    local d = (current_dose_mg == 2) and 2 or 4
    return d, ("%d mg once daily (EU-PIL: 'The recommended dose is 4 mg "
      .. "once a day', 2 mg for some patients)"):format(d)
  end
  if ind == "covid19" then
    return 4, "4 mg once daily for 14 days or until hospital discharge "
      .. "(US label, COVID-19; OLU-COVID)"
  end
  if ind == "aa" then
    local d = (current_dose_mg == 4) and 4 or 2
    return d, ("%d mg once daily (US label, AA: 2 mg, increase to 4 mg if "
      .. "the response is not adequate; LILLY-US-AA)"):format(d)
  end
  return 2, "2 mg once daily (US label, RA; LILLY-US-RA)"
end

--[[
label.renal_dose(egfr, current_dose_mg, indication, region) -> {
  dose = mg or nil, recommended = bool, adjust = bool, text = string,
  citation = string, unverified = bool }.

  egfr in mL/min/1.73 m2.  current_dose_mg may be nil.  dose is the
  recommended daily dose, nil when baricitinib is not recommended.
  adjust is true when the eGFR calls for a change from current_dose_mg
  (it is false for normal renal function and when no current dose is
  given).  Bands (domain §1.5; eGFR 60 is normal dosing, 30 is reduced):
    US RA:       >= 60 2 mg; 30 to <60 1 mg; < 30 not recommended.
    US COVID-19: >= 60 4 mg; 30 to <60 2 mg; 15 to <30 1 mg; < 15 not
                 recommended (also on dialysis, in ESRD or AKI).
    US AA:       >= 60 normal; 30 to <60 4 -> 2 mg, 2 -> 1 mg; < 30 not
                 recommended.  All UNVERIFIED (expected values).
    EU adults:   >= 60 normal; 30 to <60 2 mg; < 30 not recommended.
  Paediatric EU dosing ("reduced by half") is not covered.
]]
function label.renal_dose(egfr, current_dose_mg, indication, region)
  local ind, reg = check_args(indication, region)
  if type(egfr) ~= "number" or egfr ~= egfr or egfr < 0 then
    error("label.renal_dose: egfr must be a non-negative number", 2)
  end
  check_dose(current_dose_mg)
  local e = fmt(egfr)
  local normal = label.normal_dose(ind, reg, current_dose_mg)
  local who = WHO[reg][ind]:gsub(", RA/AA", ind == "aa" and ", AA" or ", RA")

  if egfr >= 60 then
    return result(normal, current_dose_mg, false,
      ("eGFR %s (>= 60): %d mg once daily, no renal dose adjustment (%s)")
        :format(e, normal, who),
      "domain §1.5; MEDSCAPE ('Mild (eGFR 60 to <90 ...): No dose "
        .. "adjustment')", false)
  end

  if reg == "eu" then
    if egfr >= 30 then
      return result(2, current_dose_mg, true,
        ("eGFR %s (30 to <60): 2 mg once daily (%s)"):format(e, who),
        "domain §1.5: LILLY-EU-RA ('eGFR between 30 and 60 mL/min/1.73 "
          .. "m2'); MIMS-HK", ind == "covid19")
    end
    return result(nil, current_dose_mg, true,
      ("eGFR %s (< 30): baricitinib is not recommended (%s)"):format(e, who),
      "domain §1.5: LILLY-EU-RA; MIMS-HK", ind == "covid19")
  end

  if ind == "covid19" then
    if egfr >= 30 then
      return result(2, current_dose_mg, true,
        ("eGFR %s (30 to <60): 2 mg once daily (%s)"):format(e, who),
        "domain §1.5: EUA-DOSE; UCLA pathway", false)
    end
    if egfr >= 15 then
      return result(1, current_dose_mg, true,
        ("eGFR %s (15 to <30): 1 mg once daily (%s)"):format(e, who),
        "domain §1.5: UCLA pathway ('eGFR 15 mL/min to <30 mL/min: Dose "
          .. "reduction to 1 mg PO daily'); EUA-DOSE table truncated", false)
    end
    return result(nil, current_dose_mg, true,
      ("eGFR %s (< 15): baricitinib is not recommended; also not "
        .. "recommended on dialysis, in ESRD or AKI (%s)"):format(e, who),
      "domain §1.5: EUA-DOSE", false)
  end

  if ind == "aa" then
    -- domain §1.5 marks both AA rows UNVERIFIED and gives the expected
    -- values: 4 mg -> 2 mg, 2 mg -> 1 mg, and < 30 not recommended.
    if egfr >= 30 then
      local dose = (current_dose_mg or 2) >= 4 and 2 or 1
      return result(dose, current_dose_mg, true,
        ("eGFR %s (30 to <60): %d mg once daily (%s; UNVERIFIED: expected "
          .. "value, the source table was not available)"):format(e, dose,
          who),
        "domain §1.5 (US alopecia areata row UNVERIFIED)", true)
    end
    return result(nil, current_dose_mg, true,
      ("eGFR %s (< 30): baricitinib is not recommended (%s; UNVERIFIED: "
        .. "expected value)"):format(e, who),
      "domain §1.5 (US alopecia areata row UNVERIFIED)", true)
  end

  if egfr >= 30 then
    return result(1, current_dose_mg, true,
      ("eGFR %s (30 to <60): 1 mg once daily (%s)"):format(e, who),
      "domain §1.5: LILLY-US-RA; USPI-OLD ('Moderate Renal Impairment: "
        .. "Reduce dose to 1 mg once daily')", false)
  end
  return result(nil, current_dose_mg, true,
    ("eGFR %s (< 30): baricitinib is not recommended (%s)"):format(e, who),
    "domain §1.5: LILLY-US-RA", false)
end

--[[
label.oat3_dose(current_dose_mg, indication, region) -> {
  dose = mg, recommended = true, adjust = bool, text = string,
  citation = string, unverified = bool }.

  The dose with a strong OAT3 inhibitor such as probenecid (domain §1.9;
  see codes.is_strong_oat3_inhibitor):
    US RA:       1 mg once daily (LILLY-US-RA; DRUGSBAR).
    US AA:       half the current dose (4 -> 2, 2 -> 1; nil = 2 mg),
                 UNVERIFIED (expected value).
    US COVID-19: half the current dose (4 -> 2; nil = 4 mg), UNVERIFIED.
    EU adults:   2 mg once daily (MIMS-HK).
  Doses are never halved below the 1 mg tablet.  adjust is true when a
  current dose is given and is above the recommended one.
]]
function label.oat3_dose(current_dose_mg, indication, region)
  local ind, reg = check_args(indication, region)
  check_dose(current_dose_mg)
  local who = WHO[reg][ind]:gsub(", RA/AA", ind == "aa" and ", AA" or ", RA")
  if reg == "eu" then
    return result(2, current_dose_mg, true,
      ("With a strong OAT3 inhibitor (e.g. probenecid): 2 mg once daily "
        .. "(%s)"):format(who),
      "domain §1.9: MIMS-HK ('The recommended dose is 2 mg once daily in "
        .. "patients taking ... OAT3 inhibitors with a strong inhibition "
        .. "potential, such as probenecid')", ind == "covid19")
  end
  if ind == "ra" then
    return result(1, current_dose_mg, true,
      ("With a strong OAT3 inhibitor (e.g. probenecid): 1 mg once daily "
        .. "(%s)"):format(who),
      "domain §1.9: LILLY-US-RA; DRUGSBAR ('In patients taking strong "
        .. "organic anion transporter 3 inhibitors, such as probenecid, the "
        .. "recommended dose of BARI is 1 mg once daily')", false)
  end
  local dose = halve(current_dose_mg or (ind == "covid19" and 4 or 2))
  return result(dose, current_dose_mg, true,
    ("With a strong OAT3 inhibitor (e.g. probenecid): %s mg once daily "
      .. "(%s; UNVERIFIED: expected value)"):format(fmt(dose), who),
    "domain §1.9 (US COVID-19 and AA adjustments UNVERIFIED; expected "
      .. "4 -> 2 mg and 2 -> 1 mg)", true)
end

return label
