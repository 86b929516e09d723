-- codes.lua: named code sets for the baricitinib rule pack.
--
-- This module is the single place where LOINC sets, ICD-10-CM prefix sets
-- and drug identifiers live, so that a wrong code can be corrected once
-- (domain §3.2 asks for exactly that).  It is pure data plus matchers: no
-- I/O, no globals, and it can be required inside the rule sandbox.
--
-- Every list is kept in a local table and handed out as a copy, because a
-- rule that mutated a shared list would silently change what every other
-- rule sees.
--
-- Entries marked UNVERIFIED are not confirmed by a stored source in
-- ../shared/domain/baricitinib.md; they are kept because the alternative
-- (missing a real event) is worse than an occasional false alert, and so
-- that a reviewer can find them with grep.

-- type as a local: a global is a table lookup in the sandbox on every use.
local type = type

local codes = {}

-- LOINC sets per analyte (domain §3.1).  The analyte sets are disjoint;
-- the union sets below are built from them.
local LOINC = {
  -- 751-8 automated, 26499-4 method-less, 753-4 manual (GECCO).
  neutrophils   = { "751-8", "26499-4", "753-4" },
  -- 26474-7 is the absolute count; a "%" unit on it is a data error that
  -- units.convert reports (domain §3.1).  732-8's name is UNVERIFIED.
  lymphocytes   = { "731-0", "26474-7", "732-8" },
  wbc           = { "6690-2", "26464-8" },
  -- 59260-0 is the SI (mmol/L) twin of 718-7.
  hemoglobin    = { "718-7", "59260-0" },
  platelets     = { "777-3", "26515-7" },
  alt           = { "1742-6", "1743-4", "1744-2" },
  ast           = { "1920-8", "30239-8" },
  -- 14631-6 is the umol/L twin of 1975-2.
  bilirubin     = { "1975-2", "14631-6" },
  -- 14682-9 is the umol/L twin; Synthea codes creatinine as 38483-4
  -- (TESTING.md, "Real data").
  creatinine    = { "2160-0", "14682-9", "38483-4" },
  egfr          = { "33914-3", "62238-1", "98979-8" },
  -- 14647-2 is the mmol/L twin of total cholesterol 2093-3.
  cholesterol   = { "2093-3", "14647-2" },
  -- 39469-2 and 69419-0 are the mmol/L twins of 13457-7 and 18262-6.
  ldl           = { "13457-7", "18262-6", "2089-1", "39469-2", "69419-0" },
  hdl           = { "2085-9", "14646-4" },
  triglycerides = { "2571-8", "14927-8" },
  -- 48066-5's exact name is UNVERIFIED (domain §3.1).
  ddimer        = { "48065-7", "48066-5" },
}

-- Analyte order for lookups and listings, so results never depend on the
-- iteration order of a hash table.
local ANALYTES = {
  "neutrophils", "lymphocytes", "wbc", "hemoglobin", "platelets", "alt",
  "ast", "bilirubin", "creatinine", "egfr", "cholesterol", "ldl", "hdl",
  "triglycerides", "ddimer",
}

-- Union sets.  "lipids" deliberately leaves HDL out: the lipid_rise rule
-- grades what it receives as cholesterol or triglycerides, and a high HDL
-- is not an adverse event.  A lipid panel always carries total cholesterol,
-- so leaving HDL out does not make "lipids_overdue" miss a panel.
-- "lipid_panel" includes HDL for callers that want every lipid result.
local UNIONS = {
  lipids      = { "cholesterol", "ldl", "triglycerides" },
  lipid_panel = { "cholesterol", "ldl", "hdl", "triglycerides" },
  cbc         = { "neutrophils", "lymphocytes", "wbc", "hemoglobin",
                  "platelets" },
  -- Liver tests used together by the Hy's-law style rule (domain §2 notes).
  liver       = { "alt", "ast", "bilirubin" },
}

-- ICD-10-CM sets as prefix lists (domain §3.3).  Each entry records why it
-- is there; verified = false marks codes the domain file does not confirm.
local ICD = {
  -- I26 PE (excludes chronic PE I27.82 and history Z86.711); I82.4 acute
  -- DVT of the lower extremity.  domain §3.3.
  vte = {
    { "I26", "Pulmonary embolism", true },
    { "I82.4", "Acute embolism and thrombosis of deep veins of lower "
      .. "extremity", true },
  },
  -- I74 arterial embolism and thrombosis; I63 cerebral infarction and
  -- I21 acute MI are its Excludes2 siblings.  domain §3.3.
  arterial_thrombosis = {
    { "I74", "Arterial embolism and thrombosis", true },
    { "I63", "Cerebral infarction", true },
    { "I21", "Acute myocardial infarction", true },
  },
  -- MACE = cardiovascular death, MI and stroke (USPI-HL22, domain §1.8);
  -- the grouping beyond I21/I63 is UNVERIFIED (domain §3.3).
  mace = {
    { "I21", "Acute myocardial infarction", true },
    { "I63", "Cerebral infarction", true },
  },
  herpes_zoster = {
    { "B02", "Zoster [herpes zoster]", true },
  },
  -- A15-A19: standard block, UNVERIFIED in domain §3.3.
  tuberculosis = {
    { "A15", "Respiratory tuberculosis", false },
    { "A16", "Respiratory tuberculosis, not confirmed", false },
    { "A17", "Tuberculosis of nervous system", false },
    { "A18", "Tuberculosis of other organs", false },
    { "A19", "Miliary tuberculosis", false },
  },
  -- A40-A41: UNVERIFIED in domain §3.3.
  sepsis = {
    { "A40", "Streptococcal sepsis", false },
    { "A41", "Other sepsis", false },
  },
  -- J12-J18 inside J09-J18: UNVERIFIED in domain §3.3.
  pneumonia = {
    { "J12", "Viral pneumonia", false },
    { "J13", "Pneumonia due to Streptococcus pneumoniae", false },
    { "J14", "Pneumonia due to Haemophilus influenzae", false },
    { "J15", "Bacterial pneumonia", false },
    { "J16", "Pneumonia due to other infectious organisms", false },
    { "J17", "Pneumonia in diseases classified elsewhere", false },
    { "J18", "Pneumonia, unspecified organism", false },
  },
  -- The boxed warning (domain §1.2) names "Invasive fungal infections,
  -- including candidiasis and pneumocystosis" and "other infections due to
  -- opportunistic pathogens".  B37 and B59 are the two it names (and the
  -- DESIGN rule table lists them); the ICD codes themselves are not in
  -- domain §3.3.  The rest are common invasive fungal, viral and
  -- mycobacterial opportunists, all UNVERIFIED.  Note B37 also covers
  -- non-invasive thrush (B37.0), so severity must come from the event's
  -- seriousness, not from the code.
  opportunistic = {
    { "B37", "Candidiasis (named in boxed warning)", false },
    { "B59", "Pneumocystosis (named in boxed warning)", false },
    { "B38", "Coccidioidomycosis", false },
    { "B39", "Histoplasmosis", false },
    { "B44", "Aspergillosis", false },
    { "B45", "Cryptococcosis", false },
    { "B46", "Zygomycosis", false },
    { "B25", "Cytomegaloviral disease", false },
    { "A31", "Infection due to other mycobacteria", false },
  },
  -- Other serious bacterial infections seen as "serious infections" in
  -- JAK-inhibitor labels; all UNVERIFIED.  Seriousness itself comes from the
  -- event's serious flag.
  other_serious_infection = {
    { "L03", "Cellulitis and acute lymphangitis", false },
    { "N10", "Acute pyelonephritis", false },
    { "G00", "Bacterial meningitis", false },
  },
}

-- ICD union sets.  "serious_infection" leaves out tuberculosis, herpes
-- zoster and opportunistic infections on purpose: each of those has its own
-- rule (DESIGN "baricitinib rule pack"), and including them here would
-- raise two alerts for one event.  "infection" is the union of everything.
local ICD_UNIONS = {
  serious_infection = { "sepsis", "pneumonia", "other_serious_infection" },
  infection = { "sepsis", "pneumonia", "other_serious_infection",
                "tuberculosis", "herpes_zoster", "opportunistic" },
  thrombosis = { "vte", "arterial_thrombosis" },
}

-- Baricitinib identifiers (domain §3.2).  verified = false marks the
-- UNVERIFIED ones; they are matched anyway because missing an exposure
-- hides every signal for that patient.
local DRUGS = {
  baricitinib = {
    names = { "baricitinib", "olumiant" },
    -- NDC product codes, labeler-product.  0002-4479 (4 mg) is verified
    -- by OFDA-NDC; the 2 mg and 1 mg codes are from memory (UNVERIFIED).
    ndc = {
      { "0002-4479", true },
      { "0002-4182", false },
      { "0002-4732", false },
    },
    -- L04AA37 (EMA listing) and its 2024 successor L04AF02 (code repos
    -- only; WHOCC not reachable).  Both must match (domain §3.2).
    atc = { { "L04AA37", true }, { "L04AF02", false } },
    -- 2047241, 2047247 and 2205472 are listed by openFDA for the SPL
    -- (OFDA-NDC), but which strength or form each is remains UNVERIFIED.
    -- 1927851 and 2047232 are conflicting ingredient claims (UNVERIFIED).
    rxcui = {
      { "2047241", true }, { "2047247", true }, { "2205472", true },
      { "1927851", false }, { "2047232", false },
    },
    -- OMOP concept ids from a public CURE-ID SQL script (secondary source).
    omop = {
      { "1510627", false }, { "37497353", false }, { "37497355", false },
      { "1510632", false }, { "1510638", false }, { "1758613", false },
      { "779707", false },
    },
  },
}

-- Strong OAT3 inhibitors named by the label (domain §1.9).  Only probenecid
-- is named; the label's "such as" means the list is open, so extend it here
-- when a source is found.
local OAT3_STRONG = { "probenecid" }

-- Other JAK inhibitors, not recommended together with baricitinib (domain
-- §1.9), with the new L04AF ATC codes from domain §3.2.
local OTHER_JAK = {
  { "tofacitinib", "L04AF01", "L04AA29" },
  { "upadacitinib", "L04AF03", "L04AA44" },
  { "filgotinib", "L04AF04", "L04AA45" },
}

-- copy(list) returns a fresh array with the same elements.  Callers get
-- copies so that they cannot change the module's data.
local function copy(list)
  local out = {}
  for i = 1, #list do out[i] = list[i] end
  return out
end

-- trim(s) returns s without leading and trailing white space.
local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Build the LOINC lookup tables once: code -> analyte, and name -> set.
local LOINC_ANALYTE = {}
local LOINC_SETS = {}
for _, analyte in ipairs(ANALYTES) do
  LOINC_SETS[analyte] = LOINC[analyte]
  for _, code in ipairs(LOINC[analyte]) do
    LOINC_ANALYTE[code] = analyte
  end
end
for name, parts in pairs(UNIONS) do
  local all = {}
  for _, part in ipairs(parts) do
    for _, code in ipairs(LOINC[part]) do all[#all + 1] = code end
  end
  LOINC_SETS[name] = all
end

--[[
codes.loinc_set(name) -> list of LOINC code strings, or nil if unknown.

  name: an analyte ("neutrophils", "lymphocytes", "wbc", "hemoglobin",
  "platelets", "alt", "ast", "bilirubin", "creatinine", "egfr",
  "cholesterol", "ldl", "hdl", "triglycerides", "ddimer") or a union
  ("lipids", "lipid_panel", "cbc", "liver").  The list is a fresh copy.

  Example: codes.loinc_set("neutrophils") --> {"751-8","26499-4","753-4"}
]]
function codes.loinc_set(name)
  local set = LOINC_SETS[name]
  return set and copy(set) or nil
end

--[[
codes.loinc_sets() -> sorted list of every LOINC set name.
]]
function codes.loinc_sets()
  local names = {}
  for name in pairs(LOINC_SETS) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--[[
codes.loinc_analyte(code) -> analyte name, or nil.

  Returns the analyte set ("hemoglobin", "creatinine", ...) that contains
  the LOINC code.  Surrounding white space is ignored.  Used by units.lua to
  pick an analyte's molar factor and by ctcae.lua to refuse grading, say,
  a lymphocyte count as neutrophils.

  Example: codes.loinc_analyte("38483-4") --> "creatinine"
]]
function codes.loinc_analyte(code)
  if type(code) ~= "string" then return nil end
  -- Codes nearly always arrive trimmed: look them up as they are first.
  return LOINC_ANALYTE[code] or LOINC_ANALYTE[trim(code)]
end

--[[
codes.in_set(name, code) -> boolean.

  True if the LOINC code is in the named LOINC set.  An unknown set name is
  a programming error and raises, so that a typo in a rule cannot silently
  match nothing.

  Example: codes.in_set("cbc", "718-7") --> true
]]
function codes.in_set(name, code)
  local set = LOINC_SETS[name]
  if not set then
    error(("unknown LOINC set '%s'"):format(tostring(name)), 2)
  end
  if type(code) ~= "string" then return false end
  code = trim(code)
  for i = 1, #set do
    if set[i] == code then return true end
  end
  return false
end

-- icd_norm(code) upper-cases an ICD-10-CM code and drops dots and white
-- space, so that "I82.401", "i82401" and "I82 401" compare equal.
local function icd_norm(code)
  return (code:upper():gsub("[%.%s]", ""))
end

-- ICD_SETS maps each set name to its normalised prefix list.
local ICD_SETS = {}
for name, entries in pairs(ICD) do
  local prefixes = {}
  for i, e in ipairs(entries) do prefixes[i] = e[1] end
  ICD_SETS[name] = prefixes
end
for name, parts in pairs(ICD_UNIONS) do
  local prefixes = {}
  for _, part in ipairs(parts) do
    for _, e in ipairs(ICD[part]) do prefixes[#prefixes + 1] = e[1] end
  end
  ICD_SETS[name] = prefixes
end

--[[
codes.icd_set(name) -> list of ICD-10-CM prefixes (as written, with dots),
or nil if unknown.

  Sets: vte, arterial_thrombosis, mace, thrombosis, herpes_zoster,
  tuberculosis, sepsis, pneumonia, opportunistic, other_serious_infection,
  serious_infection, infection.  The list is a fresh copy.
]]
function codes.icd_set(name)
  local set = ICD_SETS[name]
  return set and copy(set) or nil
end

--[[
codes.icd_sets() -> sorted list of every ICD-10-CM set name.
]]
function codes.icd_sets()
  local names = {}
  for name in pairs(ICD_SETS) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--[[
codes.icd_entries(name) -> list of {prefix=, label=, verified=} or nil.

  The documented form of a base set, so that reports and reviewers can see
  which codes are UNVERIFIED.  Union sets return nil here.
]]
function codes.icd_entries(name)
  local entries = ICD[name]
  if not entries then return nil end
  local out = {}
  for i, e in ipairs(entries) do
    out[i] = { prefix = e[1], label = e[2], verified = e[3] }
  end
  return out
end

--[[
codes.icd_match(set_or_name, code) -> boolean.

  set_or_name: a set name (see codes.icd_set), a single prefix such as
  "I26" or "I82.4", or a list of prefixes.  code: an ICD-10-CM code.

  Matching is by prefix after upper-casing and removing dots and white
  space on both sides, so "I82401" matches "I82.4" and "I26.99" matches
  "I26", while "I27.82" (chronic PE) and "Z86.711" (history of PE) match
  neither (domain §3.3).  A lower-case word that is not a set name is a
  typo and raises an error instead of matching nothing.  A non-string or
  empty code is false.
]]
function codes.icd_match(set_or_name, code)
  local prefixes
  if type(set_or_name) == "table" then
    prefixes = set_or_name
  elseif type(set_or_name) == "string" then
    prefixes = ICD_SETS[set_or_name]
    if not prefixes then
      if set_or_name:match("^[%l_]+$") then
        error(("unknown ICD-10-CM set '%s'"):format(set_or_name), 2)
      end
      prefixes = { set_or_name }
    end
  else
    error("icd_match: expected a set name, a prefix or a list", 2)
  end
  if type(code) ~= "string" then return false end
  local c = icd_norm(code)
  if c == "" then return false end
  for i = 1, #prefixes do
    local p = icd_norm(prefixes[i])
    if p ~= "" and c:sub(1, #p) == p then return true end
  end
  return false
end

-- ndc_key(s) turns an NDC in any common form into the 9-digit HIPAA
-- labeler+product key (5 + 4 digits), or nil if s is not an NDC.
--   Dashed forms: each segment is zero-padded to 5-4(-2), which covers the
--   4-4-2, 5-3-2 and 5-4-1 ten-digit layouts and the product code alone.
--   11 digits: the HIPAA 5-4-2 form; the first 9 digits are the key.
--   10 digits without dashes: the layout is ambiguous, so it is read as
--   4-4-2 only, the layout of Lilly's labeler code 0002.
--   8 or 9 digits without dashes: a product code in 4-4 or 5-4 form.
local function ndc_key(s)
  s = trim(s)
  if s:find("-", 1, true) then
    local a, b = s:match("^(%d+)%-(%d+)$")
    if not a then a, b = s:match("^(%d+)%-(%d+)%-%d%d?$") end
    if not a or #a > 5 or #b > 4 then return nil end
    return ("0"):rep(5 - #a) .. a .. ("0"):rep(4 - #b) .. b
  end
  if not s:match("^%d+$") then return nil end
  if #s == 11 then return s:sub(1, 9) end
  if #s == 10 then return "0" .. s:sub(1, 8) end
  if #s == 9 then return s end
  if #s == 8 then return "0" .. s end
  return nil
end

-- system_kind(system) classifies a code-system name or URI as "ndc",
-- "rxnorm", "atc" or "omop", or nil.  HL7 v2 table 0396 mnemonics, FHIR
-- URIs and free spellings ("RxNorm", "WHO ATC") are all seen in feeds.
local function system_kind(system)
  if type(system) ~= "string" then return nil end
  local s = system:upper():gsub("[^%w]", "")
  if s:find("RXNORM", 1, true) then return "rxnorm" end
  if s:find("NDC", 1, true) then return "ndc" end
  if s:find("OMOP", 1, true) then return "omop" end
  if s:find("ATC", 1, true) then return "atc" end
  return nil
end

-- in_list(list, value) is true if value equals the first field of an
-- entry of list (entries are {code, verified}).
local function in_list(list, value)
  for i = 1, #list do
    if list[i][1] == value then return true end
  end
  return false
end

-- drug_code_matches(ids, code, system) checks one drug code against a
-- drug's identifiers.  Without a code system only unambiguous shapes are
-- tried (ATC letters, dashed or 11-digit NDCs): a bare 7-digit number could
-- be an RxCUI of this drug or an OMOP id of another one.
local function drug_code_matches(ids, code, system)
  if type(code) ~= "string" and math.type(code) ~= "integer" then
    return false
  end
  code = trim(tostring(code))
  if code == "" then return false end
  local kind = system_kind(system)
  local function ndc_hit()
    local key = ndc_key(code)
    if not key then return false end
    for _, e in ipairs(ids.ndc) do
      if ndc_key(e[1]) == key then return true end
    end
    return false
  end
  if kind == "ndc" then return ndc_hit() end
  if kind == "rxnorm" then return in_list(ids.rxcui, code) end
  if kind == "omop" then return in_list(ids.omop, code) end
  if kind == "atc" then return in_list(ids.atc, code:upper()) end
  if system ~= nil and system ~= "" then return false end
  if code:upper():match("^%u%d%d%u%u%d%d$") then
    return in_list(ids.atc, code:upper())
  end
  if code:find("-", 1, true) or #code == 11 then return ndc_hit() end
  return false
end

-- find_drug(query) returns the key of the known drug whose name list
-- contains the query (case-insensitive), or nil.
local function find_drug(query)
  local q = query:lower()
  for key, ids in pairs(DRUGS) do
    for _, name in ipairs(ids.names) do
      if name == q then return key end
    end
  end
  return nil
end

-- record(x) is true for a value whose fields can be read: a table, or a
-- userdata the engine may pass for an exposure.
local function record(x)
  return type(x) == "table" or type(x) == "userdata"
end

-- contains_name(text, names) is a case-insensitive plain substring test.
local function contains_name(text, names)
  if type(text) ~= "string" then return false end
  local t = text:lower()
  for _, name in ipairs(names) do
    if t:find(name:lower(), 1, true) then return true end
  end
  return false
end

--[[
codes.drug_matches(query, exposure) -> boolean.

  query: a drug name ("baricitinib", "Olumiant", "probenecid", ...).
  exposure: {drug = text, drug_code = code, code_system = system}; any
  field may be nil.

  For a drug this module knows (baricitinib, also queried as "olumiant"),
  the exposure matches if its text contains one of the drug's names
  (case-insensitive, e.g. "Olumiant 2 MG Oral Tablet", "BARICITINIB 4mg"),
  or its code is one of the drug's NDC product codes (any package form,
  with or without dashes), ATC codes, RxCUIs or OMOP concept ids (domain
  §3.2).  RxCUIs and OMOP ids need a code system that says so.  For any
  other query the exposure matches if its text contains the query,
  case-insensitively.  An empty query matches nothing.

  Example: codes.drug_matches("baricitinib",
             {drug_code = "00002447930", code_system = "NDC"}) --> true
]]
function codes.drug_matches(query, exposure)
  if type(query) ~= "string" or not record(exposure) then
    return false
  end
  query = trim(query)
  if query == "" then return false end
  local key = find_drug(query)
  if not key then
    return contains_name(exposure.drug, { query })
  end
  local ids = DRUGS[key]
  if contains_name(exposure.drug, ids.names) then return true end
  return drug_code_matches(ids, exposure.drug_code, exposure.code_system)
end

--[[
codes.drug_ids(name) -> {names=, ndc=, atc=, rxcui=, omop=} or nil.

  Each field is a list of {code=, verified=} (names: plain strings), a copy
  of the identifiers used by drug_matches, for reports and reviews.
]]
function codes.drug_ids(name)
  local key = type(name) == "string" and find_drug(trim(name)) or nil
  if not key then return nil end
  local ids = DRUGS[key]
  local out = { names = copy(ids.names) }
  for _, field in ipairs({ "ndc", "atc", "rxcui", "omop" }) do
    out[field] = {}
    for i, e in ipairs(ids[field]) do
      out[field][i] = { code = e[1], verified = e[2] }
    end
  end
  return out
end

--[[
codes.oat3_strong_inhibitors() -> list of drug names (copy).

  Strong OAT3 inhibitors that trigger the label's dose reduction
  (domain §1.9): probenecid.
]]
function codes.oat3_strong_inhibitors()
  return copy(OAT3_STRONG)
end

--[[
codes.is_strong_oat3_inhibitor(exposure) -> boolean.

  True if the exposure's drug text names a strong OAT3 inhibitor
  (case-insensitive substring; domain §1.9).
]]
function codes.is_strong_oat3_inhibitor(exposure)
  if not record(exposure) then return false end
  return contains_name(exposure.drug, OAT3_STRONG)
end

--[[
codes.is_other_jak_inhibitor(exposure) -> boolean.

  True if the exposure is another JAK inhibitor (tofacitinib,
  upadacitinib, filgotinib) by name or by ATC code (old L04AA or new L04AF
  code, domain §3.2).  The label advises against combining them with
  baricitinib (domain §1.9).
]]
function codes.is_other_jak_inhibitor(exposure)
  if not record(exposure) then return false end
  local code = type(exposure.drug_code) == "string"
    and exposure.drug_code:upper() or nil
  for _, jak in ipairs(OTHER_JAK) do
    if contains_name(exposure.drug, { jak[1] }) then return true end
    if code and (code == jak[2] or code == jak[3]) then return true end
  end
  return false
end

return codes
