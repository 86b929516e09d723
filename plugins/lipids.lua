-- plugins/lipids.lua: lipid rises on baricitinib (DESIGN.md rule pack,
-- signal "lipids"; domain §1.4, §2, §6 cases 19-20).
--
-- baricitinib.lipid_rise: total cholesterol (LOINC 2093-3, 14647-2) or
-- triglycerides (2571-8, 14927-8) of CTCAE v5 grade >= 2 while exposed:
--   cholesterol high    G2 >300-400 mg/dL (>7.75-10.34 mmol/L), G3 >400-500
--                       (>10.34-12.92), G4 >500 (>12.92)
--   hypertriglyceridemia G2 >300-500 mg/dL (>3.42-5.7 mmol/L), G3 >500-1000
--                       (>5.7-11.4), G4 >1000 (>11.4)
-- graded in the band of the unit the value arrived in (domain §2 notes;
-- ctcae.lua).  Grade 2 medium, 3 high, 4 critical.  LDL and HDL have no
-- CTCAE term and are not graded.
--
-- The label sets no numeric lipid threshold: "Assess ... 12 weeks after
-- initiation", then manage per hyperlipidaemia guidelines (LILLY-US-MON;
-- EU SmPC via LILLY-EU-LAB; domain §1.4).  So the action cites CTCAE and
-- the guideline instruction, never an interruption.
--
-- Facts may arrive in any order (pack.when_exposed: the exposure path
-- looks back; a result that cannot be graded raises on either path).  One
-- dedup key per term.
local ctcae = require "ctcae"
local pack = require "pack"
local fmt = pack.fmt

local SEVERITY = { [2] = "medium", [3] = "high", [4] = "critical" }
local SETS = { "cholesterol", "triglycerides" }
local NAME = {
  cholesterol_high = { "Total cholesterol", "Hypercholesterolaemia",
    "cholesterol" },
  hypertriglyceridemia = { "Triglycerides", "Hypertriglyceridaemia",
    "triglycerides" },
}

local function assess(obs, exposure, patient)
  if pack.void(obs) then return nil end
  local term = ctcae.term_for(obs.code)
  local name = NAME[term]
  if not name then return nil end
  local grade, why = ctcae.grade(term, obs)
  if not grade then
    return nil, ("baricitinib.lipid_rise cannot grade %s %s %s: %s")
      :format(name[3], tostring(obs.value), tostring(obs.unit), why)
  end
  if grade < 2 then return nil end
  return pv.alert {
    severity = SEVERITY[grade] or "critical",
    grade = grade,
    title = ("%s grade %d on baricitinib"):format(name[2], grade),
    detail = ("%s %s %s on %s; %s. %s.")
      :format(name[1], obs.value_text or fmt(obs.value), obs.unit or "",
      pv.date(obs.at), why, pack.On(exposure, obs.at, patient)),
    action = ("CTCAE v5 grade %d %s: manage according to clinical "
      .. "guidelines for hyperlipidaemia (EU SmPC via LILLY-EU-LAB: lipids "
      .. "12 weeks after initiation and thereafter per international "
      .. "guidelines; LILLY-US-MON). The label sets no lipid threshold for "
      .. "interrupting baricitinib."):format(grade,
      term == "cholesterol_high" and "cholesterol high"
        or "hypertriglyceridemia"),
    key = name[3],
    evidence = { obs, exposure },
  }
end

local lipid_rise = pv.rule {
  name = "baricitinib.lipid_rise",
  signal = "lipids",
  label = "Assess lipids 12 weeks after initiation; manage according to "
    .. "clinical guidelines for hyperlipidaemia; no numeric threshold "
    .. "in the label (LILLY-US-MON; LILLY-EU-LAB; domain §1.4)",
  severities = { "medium", "high", "critical" },
  description = "total cholesterol or triglycerides of CTCAE v5 grade >= 2 "
    .. "while exposed to baricitinib",
  on = { lab = SETS, exposure = "baricitinib" },
  when = pack.when_exposed { labs = SETS, assess = assess },
}

return lipid_rise
