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

----------------------------------------------------------------------------
-- Boxed-warning sets (issue 14).  Sources are named per entry; entries the
-- domain file does not confirm are marked UNVERIFIED (grep for it).
----------------------------------------------------------------------------

-- LOINC sets for HBV, TB screening and pregnancy tests.  loinc.org was not
-- reachable and none of these codes is in domain §3.1: every name below is
-- from memory of the LOINC table, UNVERIFIED.
-- 29615-2 HBV DNA [#/volume] (viral load) by NAA, 42595-9 HBV DNA [IU/mL]
-- by NAA, 5009-6 HBV DNA [Units/volume], 20442-0 HBV DNA [Mass/volume]
-- (all UNVERIFIED).
LOINC.hbv_dna = { "29615-2", "42595-9", "5009-6", "20442-0" }
-- 5196-1 HBsAg [Presence] in Serum by Immunoassay, 5195-3 HBsAg [Presence]
-- in Serum, 7905-3 HBsAg [Presence] by Neutralization (UNVERIFIED).
LOINC.hbsag = { "5196-1", "5195-3", "7905-3" }
-- 13952-7 HBc Ab [Presence], 16933-4 HBc Ab total, 22316-4 HBc Ab
-- [Units/volume]; 16935-9 HBs Ab [Presence], 22322-2 HBs Ab [Units/volume]
-- (UNVERIFIED).  Together with hbsag: the "hepatitis B serology" the label
-- screens with (domain §1.4 LILLY-US-MON "hepatitis screening", §1.7).
LOINC.hbv_antibody = { "13952-7", "16933-4", "22316-4", "16935-9", "22322-2" }
-- IGRA: 64084-6 M. tuberculosis stimulated gamma interferon [Presence] in
-- Blood, 71773-6 and 71774-4 QuantiFERON-TB Gold Plus results, 46217-6
-- T-SPOT.TB (UNVERIFIED).  TST: 1648-5 tuberculin skin test (PPD) result,
-- 39263-9 TST induration diameter (UNVERIFIED).
LOINC.igra = { "64084-6", "71773-6", "71774-4", "46217-6" }
LOINC.tst = { "1648-5", "39263-9" }
-- hCG: 2106-3 Choriogonadotropin (pregnancy test) [Presence] in Urine,
-- 2118-8 Choriogonadotropin [Presence] in Serum or Plasma, 21198-7
-- Choriogonadotropin.beta [Units/volume] in Serum or Plasma, 2119-6
-- Choriogonadotropin.beta [Units/volume] (UNVERIFIED).
LOINC.hcg = { "2106-3", "2118-8", "21198-7", "2119-6" }
for _, a in ipairs({ "hbv_dna", "hbsag", "hbv_antibody", "igra", "tst",
    "hcg" }) do
  ANALYTES[#ANALYTES + 1] = a
end
UNIONS.hbv_serology = { "hbsag", "hbv_antibody" }
UNIONS.tb_test = { "igra", "tst" }

-- ICD-10-CM sets.  The block boundaries of chapter 2 (C00-C96 malignant,
-- D37-D48 uncertain behaviour) and of chapter 15 (O00-O9A) are standard
-- ICD-10-CM but not in domain §3.3: UNVERIFIED.  The prefix "C0" covers
-- C00-C09, and so on; C7A/C7B/C4A are covered by "C7"/"C4".
ICD.malignancy = {
  { "C0", "Malignant neoplasms C00-C09", false },
  { "C1", "Malignant neoplasms C10-C19", false },
  { "C2", "Malignant neoplasms C20-C26", false },
  { "C3", "Malignant neoplasms C30-C39 (C34 lung)", false },
  { "C4", "Malignant neoplasms C40-C4A (C44 non-melanoma skin)", false },
  { "C5", "Malignant neoplasms C50-C58", false },
  { "C6", "Malignant neoplasms C60-C69", false },
  { "C7", "Malignant neoplasms C70-C7B", false },
  { "C8", "Malignant neoplasms C80-C88 (C81-C88 lymphoma)", false },
  { "C90", "Multiple myeloma and plasma cell neoplasms", false },
  { "C91", "Lymphoid leukemia", false },
  { "C92", "Myeloid leukemia", false },
  { "C93", "Monocytic leukemia", false },
  { "C94", "Other leukemias of specified cell type", false },
  { "C95", "Leukemia of unspecified cell type", false },
  { "C96", "Other malignant neoplasms of lymphoid tissue", false },
}
-- D45 polycythemia vera, D46 myelodysplastic syndromes, D47 other
-- neoplasms of uncertain behavior of lymphoid/haematopoietic tissue: the
-- issue's "uncertain behaviour" group (UNVERIFIED).
ICD.malignancy_uncertain = {
  { "D45", "Polycythemia vera", false },
  { "D46", "Myelodysplastic syndromes", false },
  { "D47", "Other neoplasms of uncertain behavior of lymphoid, "
    .. "hematopoietic and related tissue", false },
}
-- The boxed warning's "lymphomas and lung cancers" (domain §1.2).
ICD.lymphoma = {
  { "C81", "Hodgkin lymphoma", false },
  { "C82", "Follicular lymphoma", false },
  { "C83", "Non-follicular lymphoma", false },
  { "C84", "Mature T/NK-cell lymphomas", false },
  { "C85", "Other and unspecified non-Hodgkin lymphoma", false },
  { "C86", "Other specified types of T/NK-cell lymphoma", false },
  { "C88", "Malignant immunoproliferative diseases", false },
}
ICD.lung_cancer = {
  { "C34", "Malignant neoplasm of bronchus and lung", false },
}
-- Non-melanoma skin cancer: periodic skin examination (OLU-HCP, §1.8).
ICD.nmsc = {
  { "C44", "Other and unspecified malignant neoplasm of skin", false },
}
-- GI perforation (domain §3.3, UNVERIFIED there): K63.1; the ulcer
-- subcategories "with perforation" (.1 acute with perforation, .2 acute
-- with hemorrhage and perforation, .5 chronic with perforation, .6
-- chronic with both) of K25-K28; K57 "with perforation and abscess" (.0
-- small intestine, .2 large intestine, .4 both, .8 unspecified); K65
-- peritonitis.  The fourth characters are UNVERIFIED.
ICD.gi_perforation = { { "K63.1", "Perforation of intestine (nontraumatic)",
  false } }
for _, k in ipairs({ "K25", "K26", "K27", "K28" }) do
  for _, s in ipairs({ "1", "2", "5", "6" }) do
    ICD.gi_perforation[#ICD.gi_perforation + 1] = { k .. "." .. s,
      "Ulcer with perforation", false }
  end
end
for _, s in ipairs({ "0", "2", "4", "8" }) do
  ICD.gi_perforation[#ICD.gi_perforation + 1] = { "K57." .. s,
    "Diverticular disease with perforation and abscess", false }
end
ICD.gi_perforation[#ICD.gi_perforation + 1] = { "K65", "Peritonitis", false }
-- Diverticular disease, a GI-perforation risk factor (EU, MIMS-TH, §1.8).
ICD.diverticular = { { "K57", "Diverticular disease of intestine", false } }
-- Pregnancy: chapter 15 O00-O9A (every code starts with O), Z33 pregnant
-- state, Z34 supervision of normal pregnancy (UNVERIFIED).
ICD.pregnancy = {
  { "O", "Pregnancy, childbirth and the puerperium (O00-O9A)", false },
  { "Z33", "Pregnant state", false },
  { "Z34", "Encounter for supervision of normal pregnancy", false },
}
-- Death codes named by issue 14: R99 ill-defined and unknown cause of
-- mortality, I46 cardiac arrest (UNVERIFIED).
ICD.death = {
  { "R99", "Ill-defined and unknown cause of mortality", false },
  { "I46", "Cardiac arrest", false },
}
-- Cardiovascular causes of death (MACE: "cardiovascular death, myocardial
-- infarction, and stroke", USPI-HL22, §1.8).  The list is issue 14's; I64
-- (stroke not specified) is WHO ICD-10, not ICD-10-CM; I71 aortic
-- aneurysm and dissection; R96 other sudden death (UNVERIFIED).
ICD.cv_death = {
  { "I21", "Acute myocardial infarction", true },
  { "I46", "Cardiac arrest", false },
  { "I63", "Cerebral infarction", true },
  { "I64", "Stroke, not specified (WHO ICD-10)", false },
  { "I71", "Aortic aneurysm and dissection", false },
  { "R96", "Other sudden death, cause unknown", false },
}
ICD_UNIONS.malignancy_any = { "malignancy", "malignancy_uncertain" }

-- Drugs the label does not recommend with baricitinib: "biologic DMARDs,
-- other JAK inhibitors, or potent immunosuppressants such as ciclosporin"
-- (MIMS-TH, domain §1.9).  Names and brands are matched as substrings of
-- the drug text, ATC codes exactly.  Sources of the ATC codes: the JAK
-- L04AF codes are domain §3.2 (code repos); L04AB01, L04AB02, L04AB04,
-- L04AC03, L04AC07, L04AC14, L01FA01 were seen in several public code
-- repos' ATC tables (find_string, secondary; WHOCC not reachable); every
-- other ATC code and every brand name is from memory: UNVERIFIED.
-- class: "biologic" (biologic DMARD), "jak" (another JAK inhibitor),
-- "immunosuppressant" (potent immunosuppressant).
local COMBINATION = {
  { "etanercept", "biologic", { "enbrel" }, { "L04AB01" } },
  { "infliximab", "biologic", { "remicade", "inflectra", "remsima" },
    { "L04AB02" } },
  { "adalimumab", "biologic", { "humira", "amgevita", "hyrimoz" },
    { "L04AB04" } },
  { "certolizumab", "biologic", { "cimzia" }, { "L04AB05" } },
  { "golimumab", "biologic", { "simponi" }, { "L04AB06" } },
  { "abatacept", "biologic", { "orencia" }, { "L04AA24" } },
  { "tocilizumab", "biologic", { "actemra" }, { "L04AC07" } },
  { "sarilumab", "biologic", { "kevzara" }, { "L04AC14" } },
  { "anakinra", "biologic", { "kineret" }, { "L04AC03" } },
  -- L01FA01 is the current code; L01XC02 the former one (UNVERIFIED).
  { "rituximab", "biologic", { "rituxan", "mabthera", "truxima" },
    { "L01FA01", "L01XC02" } },
  { "tofacitinib", "jak", { "xeljanz" }, { "L04AF01", "L04AA29" } },
  { "upadacitinib", "jak", { "rinvoq" }, { "L04AF03", "L04AA44" } },
  { "filgotinib", "jak", { "jyseleca" }, { "L04AF04", "L04AA45" } },
  { "ruxolitinib", "jak", { "jakafi", "jakavi" }, { "L01EJ01", "L01XE18" } },
  { "abrocitinib", "jak", { "cibinqo" }, { "L04AF06", "D11AH08" } },
  { "ritlecitinib", "jak", { "litfulo" }, { "L04AF08" } },
  { "fedratinib", "jak", { "inrebic" }, { "L01EJ02" } },
  { "ciclosporin", "immunosuppressant", { "cyclosporin", "neoral",
    "sandimmun" }, { "L04AD01" } },
  { "tacrolimus", "immunosuppressant", { "prograf", "advagraf", "envarsus" },
    { "L04AD02" } },
  { "azathioprine", "immunosuppressant", { "imuran", "imurel" },
    { "L04AX01" } },
  { "mycophenol", "immunosuppressant", { "cellcept", "myfortic" },
    { "L04AA06" } },
  { "cyclophosphamide", "immunosuppressant", { "endoxan", "cytoxan" },
    { "L01AA01" } },
}

-- Each combination drug is also a known drug of drug_matches (names,
-- brands, ATC codes), so that on.exposure triggers on an exposure coded by
-- ATC alone.
for _, c in ipairs(COMBINATION) do
  local names, atc = { c[1] }, {}
  for _, b in ipairs(c[3]) do names[#names + 1] = b end
  for _, a in ipairs(c[4]) do atc[#atc + 1] = { a, false } end
  DRUGS[c[1]] = { names = names, ndc = {}, atc = atc, rxcui = {}, omop = {} }
end

-- Systemic corticosteroids and their prednisone-equivalent factor (mg of
-- prednisone per mg of the drug): prednisone 5 = prednisolone 5 =
-- methylprednisolone 4 = dexamethasone 0.75 = hydrocortisone 20 mg.  This
-- is the standard glucocorticoid equivalence table (e.g. Liu D et al.,
-- Allergy Asthma Clin Immunol 2013;9:30, Table 1); not in the domain file
-- and not checked against a stored copy here: UNVERIFIED.  Order matters:
-- "methylprednisolone" contains "prednisolone", so it comes first.  ATC:
-- prednisolone H02AB06 (a public code repo, secondary); the others from
-- memory, UNVERIFIED.
local STEROIDS = {
  { "methylprednisolone", 5 / 4, { "medrol", "solu-medrol" }, { "H02AB04" } },
  { "prednisolone", 1, {}, { "H02AB06" } },
  { "prednisone", 1, { "deltasone" }, { "H02AB07" } },
  { "dexamethasone", 5 / 0.75, { "decadron" }, { "H02AB02" } },
  { "hydrocortisone", 5 / 20, { "solu-cortef" }, { "H02AB09" } },
}

-- GI-perforation risk medicines of the EU list ("chronic NSAIDs,
-- corticosteroids or opioids", MIMS-TH, domain §1.8).  The member names
-- are common examples from memory (UNVERIFIED as a complete list); ATC
-- groups M01A (NSAIDs) and N02A (opioids) from memory, UNVERIFIED.
local NSAIDS = { "ibuprofen", "naproxen", "diclofenac", "celecoxib",
  "etoricoxib", "meloxicam", "indometacin", "indomethacin", "ketoprofen",
  "piroxicam", "aceclofenac" }
local OPIOIDS = { "morphine", "oxycodone", "hydrocodone", "codeine",
  "tramadol", "tapentadol", "fentanyl", "buprenorphine", "hydromorphone",
  "methadone" }

-- Live vaccines by CVX code (code_system "CVX").  Verified against a CDC
-- CVX table copied in a public repository (find_string "zoster vaccine,
-- live"; it cites https://www2a.cdc.gov/vaccines/iis/iisstandards/
-- vaccines.asp?rpt=cvx): 02 OPV, 03 MMR, 04 M/R, 05 measles, 06 rubella,
-- 07 mumps, 21 varicella, 37 yellow fever, 94 MMRV, 116 rotavirus
-- pentavalent, 119 rotavirus monovalent, 121 zoster live, 149 LAIV
-- quadrivalent.  Also verified (issue 14 review, find_string over public
-- copies of the CDC CVX table): 25 "typhoid vaccine, live, oral" (CDC
-- CVX JSON export and a tab-separated CVX list), 19 "Bacillus
-- Calmette-Guerin vaccine" and 174 "cholera, live attenuated" (a CVX/CPT
-- crosswalk table: MYCOBAX 19 / 90585, VAXCHORA 174 / 90625), 75
-- "vaccinia (smallpox)" (the same CVX list).  From memory, UNVERIFIED:
-- 38 rubella-mumps, 111 LAIV trivalent, 122 rotavirus unspecified, 184
-- yellow fever unspecified.
-- Not live, the neighbours: 187 zoster recombinant, 10 IPV, 101 typhoid
-- ViCPs, 141 influenza injectable.
local LIVE_VACCINES = {
  { "02", "OPV (oral poliovirus, live)", true },
  { "03", "MMR", true }, { "04", "measles-rubella", true },
  { "05", "measles", true }, { "06", "rubella", true },
  { "07", "mumps", true }, { "21", "varicella", true },
  { "37", "yellow fever", true }, { "94", "MMRV", true },
  { "116", "rotavirus, pentavalent", true },
  { "119", "rotavirus, monovalent", true },
  { "121", "zoster, live", true },
  { "149", "influenza, live, intranasal, quadrivalent", true },
  { "19", "BCG", false }, { "25", "typhoid, oral", false },
  { "38", "rubella-mumps", false },
  { "111", "influenza, live, intranasal", false },
  { "122", "rotavirus, unspecified", false },
  { "174", "cholera, live, oral", false }, { "75", "vaccinia (smallpox)", false },
  { "184", "yellow fever, unspecified", false },
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
--[[
codes.loinc_set(name) -> list of LOINC code strings, or nil if unknown.

  name: an analyte ("neutrophils", "lymphocytes", "wbc", "hemoglobin",
  "platelets", "alt", "ast", "bilirubin", "creatinine", "egfr",
  "cholesterol", "ldl", "hdl", "triglycerides", "ddimer", "hbv_dna",
  "hbsag", "hbv_antibody", "igra", "tst", "hcg") or a union ("lipids",
  "lipid_panel", "cbc", "liver", "hbv_serology", "tb_test").  The list is
  a fresh copy.

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
-- The union sets (UNIONS, ICD_UNIONS) from their parts: now, and again
-- after a site's codes.extend adds to a part.
local function rebuild_unions()
  for name, parts in pairs(UNIONS) do
    local all = {}
    for _, part in ipairs(parts) do
      for _, code in ipairs(LOINC[part]) do all[#all + 1] = code end
    end
    LOINC_SETS[name] = all
  end
  for name, parts in pairs(ICD_UNIONS) do
    local prefixes = {}
    for _, part in ipairs(parts) do
      for _, e in ipairs(ICD[part]) do prefixes[#prefixes + 1] = e[1] end
    end
    ICD_SETS[name] = prefixes
  end
end
rebuild_unions()

--[[
codes.icd_set(name) -> list of ICD-10-CM prefixes (as written, with dots),
or nil if unknown.

  Sets: vte, arterial_thrombosis, mace, thrombosis, herpes_zoster,
  tuberculosis, sepsis, pneumonia, opportunistic, other_serious_infection,
  serious_infection, infection; malignancy, malignancy_uncertain,
  malignancy_any, lymphoma, lung_cancer, nmsc, gi_perforation,
  diverticular, pregnancy, death, cv_death.  The list is a fresh copy.
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

  A medication given only as a code (issue 21): HL7 feeds store the code
  as the drug text when the CE has no text, and a CSV row may leave
  `drug` empty or put the code there without a drug_code; so when the
  exposure has no drug_code, its drug text is tried as the code (with the
  exposure's code_system; without one, only the unambiguous ATC and NDC
  shapes, as above).

  query may also name a drug set (codes.drug_sets()): "immunosuppressants",
  "biologics", "jak_inhibitors", "combination" (the three together),
  "steroids", "nsaids", "opioids", "oat3_inhibitors", "live_vaccines"; the
  exposure matches if it is a member as codes.combination_drug,
  codes.steroid, codes.gi_risk_drug, codes.is_strong_oat3_inhibitor or
  codes.live_vaccine decide (by name, brand or code; sites extend them
  with codes.extend).

  Example: codes.drug_matches("baricitinib",
             {drug_code = "00002447930", code_system = "NDC"}) --> true
]]
local DRUG_SET_TEST -- set name -> predicate(exposure), filled below

function codes.drug_matches(query, exposure)
  if type(query) ~= "string" or not record(exposure) then
    return false
  end
  query = trim(query)
  if query == "" then return false end
  local key = find_drug(query)
  if not key then
    local test = DRUG_SET_TEST[query]
    if test then return test(exposure) end
    return contains_name(exposure.drug, { query })
  end
  local ids = DRUGS[key]
  if contains_name(exposure.drug, ids.names) then return true end
  local code = exposure.drug_code
  if code == nil or code == "" then code = exposure.drug end
  return drug_code_matches(ids, code, exposure.code_system)
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

----------------------------------------------------------------------------
-- Boxed-warning drug classes (issue 14)
----------------------------------------------------------------------------

-- LOCAL_ROUTES: routes that are not systemic.  Topical tacrolimus and
-- ciclosporin eye drops are not "potent immunosuppressants", and inhaled
-- or topical corticosteroids are not a systemic steroid burden.
local LOCAL_ROUTES = { "topical", "cutaneous", "ophthalmic", "eye", "ocular",
  "inhal", "nasal", "dermal", "transdermal", "rectal", "otic" }

-- systemic(e) is false for an exposure whose route names a local route.
local function systemic(e)
  return not contains_name(e.route, LOCAL_ROUTES)
end

-- atc_of(e): the exposure's code upper-cased when it is (or looks like)
-- an ATC code, else nil.
local function atc_of(e)
  local code = e.drug_code
  -- Given only as a code: the code is the drug text (see drug_matches).
  if code == nil or code == "" then code = e.drug end
  if type(code) ~= "string" then return nil end
  local kind = system_kind(e.code_system)
  code = trim(code):upper()
  if kind == "atc" or ((e.code_system == nil or e.code_system == "")
      and code:match("^%u%d%d%u%u%d%d$")) then
    return code
  end
  return nil
end

-- entry_matches(entry, e, atc): name or brand in the text, or the ATC.
local function entry_matches(name, brands, atcs, e, atc)
  if contains_name(e.drug, { name }) or contains_name(e.drug, brands) then
    return true
  end
  if atc then
    for _, a in ipairs(atcs) do if a == atc then return true end end
  end
  return false
end

--[[
codes.combination_drug(exposure) -> name, class | nil.

  name is the ingredient ("azathioprine", "rituximab", ...), class one of
  "biologic" (biologic DMARD), "jak" (another JAK inhibitor) or
  "immunosuppressant" (potent immunosuppressant): the drugs the label does
  not recommend together with baricitinib (domain §1.9).  Matched by name
  or brand in the drug text, or by ATC code; a local route (topical,
  ophthalmic, inhaled, ...) is not a match.

  Example: codes.combination_drug({drug = "Imuran 50 mg"})
             --> "azathioprine", "immunosuppressant"
]]
function codes.combination_drug(e)
  if not record(e) or not systemic(e) then return nil end
  local atc = atc_of(e)
  for _, c in ipairs(COMBINATION) do
    if entry_matches(c[1], c[3], c[4], e, atc) then return c[1], c[2] end
  end
  -- RxNorm, NDC or OMOP codes a site added (codes.extend): the drug's
  -- identifiers, as drug_matches reads them.
  local code = e.drug_code
  if code == nil or code == "" then code = e.drug end
  for _, c in ipairs(COMBINATION) do
    local ids = DRUGS[c[1]]
    if ids and (#ids.ndc > 0 or #ids.rxcui > 0 or #ids.omop > 0)
        and drug_code_matches(ids, code, e.code_system) then
      return c[1], c[2]
    end
  end
  return nil
end

--[[
codes.combination_names() -> every ingredient of the combination list,
for an on.exposure trigger: each is a known drug of drug_matches, so its
brands and ATC codes match too.
]]
function codes.combination_names()
  local out = {}
  for _, c in ipairs(COMBINATION) do out[#out + 1] = c[1] end
  return out
end

--[[
codes.steroid(exposure) -> name, factor | nil.

  A systemic corticosteroid and its prednisone-equivalent factor (mg of
  prednisone per mg): methylprednisolone 1.25, prednisolone 1, prednisone
  1, dexamethasone 6.667, hydrocortisone 0.25 (UNVERIFIED table, see
  STEROIDS).  Local routes do not count.
]]
function codes.steroid(e)
  if not record(e) or not systemic(e) then return nil end
  local atc = atc_of(e)
  for _, s in ipairs(STEROIDS) do
    if entry_matches(s[1], s[3], s[4], e, atc) then return s[1], s[2] end
  end
  return nil
end

--[[
codes.steroid_names() -> the corticosteroid names and brands (copy).
]]
function codes.steroid_names()
  local out = {}
  for _, s in ipairs(STEROIDS) do
    out[#out + 1] = s[1]
    for _, b in ipairs(s[3]) do out[#out + 1] = b end
  end
  return out
end

--[[
codes.gi_risk_drug(exposure) -> "NSAID" | "corticosteroid" | "opioid" | nil.

  The EU SmPC's GI-perforation risk medicines (MIMS-TH, domain §1.8).
]]
function codes.gi_risk_drug(e)
  if not record(e) then return nil end
  if codes.steroid(e) then return "corticosteroid" end
  local atc = atc_of(e)
  if contains_name(e.drug, NSAIDS) or (atc and atc:sub(1, 4) == "M01A") then
    return "NSAID"
  end
  if contains_name(e.drug, OPIOIDS) or (atc and atc:sub(1, 4) == "N02A") then
    return "opioid"
  end
  return nil
end

--[[
codes.gi_risk_names() -> names that make an exposure a GI-risk medicine.
]]
function codes.gi_risk_names()
  local out = codes.steroid_names()
  for _, n in ipairs(NSAIDS) do out[#out + 1] = n end
  for _, n in ipairs(OPIOIDS) do out[#out + 1] = n end
  return out
end

--[[
codes.live_vaccine(exposure) -> cvx, label, verified | nil.

  True for an exposure whose code_system is CVX (HL7 table 0396 "CVX",
  or the FHIR URI http://hl7.org/fhir/sid/cvx) and whose code is a live
  vaccine.  Leading zeros do not matter ("3" = "03").
]]
function codes.live_vaccine(e)
  if not record(e) or type(e.code_system) ~= "string" then return nil end
  if not e.code_system:upper():find("CVX", 1, true) then return nil end
  local code = e.drug_code
  if math.type(code) == "integer" then code = tostring(code) end
  if type(code) ~= "string" then return nil end
  code = trim(code):gsub("^0+", "")
  if code == "" then return nil end
  for _, v in ipairs(LIVE_VACCINES) do
    if v[1]:gsub("^0+", "") == code then return v[1], v[2], v[3] end
  end
  return nil
end

--[[
codes.live_vaccine_codes() -> list of {code=, label=, verified=}.
]]
function codes.live_vaccine_codes()
  local out = {}
  for i, v in ipairs(LIVE_VACCINES) do
    out[i] = { code = v[1], label = v[2], verified = v[3] }
  end
  return out
end

----------------------------------------------------------------------------
-- Drug sets, known drug names and site extensions (issue 21)
----------------------------------------------------------------------------

-- Words that name a vaccine in a feed's drug text (plugins/live_vaccine.lua
-- triggers on them, so that a vaccine given by text reaches the rule; one
-- given by CVX code alone matches the "live_vaccines" set).  Brand names
-- are from memory: UNVERIFIED.
local VACCINE_WORDS = { "vaccin", "vax", "mmr", "measles", "mumps",
  "rubella", "varicella", "zoster", "yellow fever", "typhoid", "bcg",
  "influenza", "flumist", "rotavirus", "rotateq", "rotarix", "polio", "opv",
  "cholera", "vaccinia", "smallpox", "priorix", "proquad", "stamaril",
  "vivotif" }

-- The combination classes as drug-set names.
local CLASS_OF_SET = { biologics = "biologic", jak_inhibitors = "jak",
  immunosuppressants = "immunosuppressant" }

DRUG_SET_TEST = {
  biologics = function(e)
    return select(2, codes.combination_drug(e)) == "biologic"
  end,
  jak_inhibitors = function(e)
    return select(2, codes.combination_drug(e)) == "jak"
  end,
  immunosuppressants = function(e)
    return select(2, codes.combination_drug(e)) == "immunosuppressant"
  end,
  combination = function(e) return codes.combination_drug(e) ~= nil end,
  steroids = function(e) return codes.steroid(e) ~= nil end,
  nsaids = function(e) return codes.gi_risk_drug(e) == "NSAID" end,
  opioids = function(e) return codes.gi_risk_drug(e) == "opioid" end,
  oat3_inhibitors = function(e) return codes.is_strong_oat3_inhibitor(e) end,
  live_vaccines = function(e) return codes.live_vaccine(e) ~= nil end,
}

--[[
codes.drug_sets() -> sorted list of the drug-set names drug_matches (and
so on.exposure) accepts besides drug names.
]]
function codes.drug_sets()
  local out = {}
  for name in pairs(DRUG_SET_TEST) do out[#out + 1] = name end
  table.sort(out)
  return out
end

--[[
codes.vaccine_words() -> the words that name a vaccine in drug text (copy).
]]
function codes.vaccine_words()
  return copy(VACCINE_WORDS)
end

local function in_names(list, name)
  for i = 1, #list do
    if list[i] == name then return true end
  end
  return false
end

--[[
codes.drug_known(name) -> boolean.

  True if name (case-insensitive) is a drug this module knows: a name or
  brand of baricitinib or of the combination list, a corticosteroid, an
  NSAID, an opioid, a strong OAT3 inhibitor, a vaccine word, a drug set
  (codes.drug_sets) or a drug a site added with codes.extend.  pv.rule
  refuses an on.exposure name it does not know: such a trigger could match
  only by accident (a misspelt "baricitnib" never fires).
]]
function codes.drug_known(name)
  if type(name) ~= "string" then return false end
  local q = trim(name):lower()
  if q == "" then return false end
  if find_drug(q) or DRUG_SET_TEST[q] then return true end
  if in_names(OAT3_STRONG, q) or in_names(NSAIDS, q) or in_names(OPIOIDS, q)
      or in_names(VACCINE_WORDS, q) then
    return true
  end
  for _, st in ipairs(STEROIDS) do
    if st[1] == q or in_names(st[3], q) then return true end
  end
  return false
end

-- codes.extend ------------------------------------------------------------

local sealed = false
local EXTENSIONS = {} -- "set: code" for each code a site added

local EXTENDABLE = "an analyte LOINC set (codes.loinc_sets, not a union), "
  .. "an ICD-10-CM base set (codes.icd_sets, not a union), biologics, "
  .. "jak_inhibitors, immunosuppressants, nsaids, opioids, "
  .. "oat3_inhibitors, live_vaccines, drugs, or a known drug (baricitinib, "
  .. "azathioprine, ...)"

local function loinc_shape(c)
  return #c <= 10 and c:match("^%d+%-%d$") ~= nil
end

local function icd_shape(c)
  if c:match("^%u$") or c:match("^%u%d$") or c:match("^%u%d[%dA-Z]$") then
    return true
  end
  local sub = c:match("^%u%d[%dA-Z]%.?([%dA-Z]+)$")
  return sub ~= nil and #sub <= 4
end

-- Shape checks of drug identifiers, by field of a drug entry.
local DRUG_CODE_SHAPE = {
  atc = function(c) return c:upper():match("^%u%d%d%u%u%d%d$") ~= nil end,
  rxcui = function(c) return #c <= 8 and c:match("^%d+$") ~= nil end,
  omop = function(c) return #c <= 10 and c:match("^%d+$") ~= nil end,
  ndc = function(c) return ndc_key(c) ~= nil end,
}
local DRUG_CODE_WHAT = { atc = "an ATC code such as L04AD03",
  rxcui = "an RxNorm RxCUI (digits)", omop = "an OMOP concept id (digits)",
  ndc = "an NDC such as 0002-4479 or 00002447930" }

-- A name matched as a substring of drug text: at least 3 characters, so
-- that "a" cannot match every drug.
local function name_ok(n)
  return type(n) == "string" and #trim(n) >= 3 and #n <= 100
    and not n:find("%c")
end

-- check_drug(entry, what, named) -> normalised entry or nil, error.
-- entry: {name=, brands=|names=, atc=, rxcui=, ndc=, omop=}; named: the
-- entry must carry a name (a set member) rather than extend a known drug.
local function check_drug(entry, what, named)
  if type(entry) == "string" then entry = { name = entry } end
  if type(entry) ~= "table" then
    return nil, ("%s: expected a drug name or a table {name=, brands=, "
      .. "atc=, rxcui=, ndc=, omop=}, got %s"):format(what, type(entry))
  end
  local out = { names = {}, atc = {}, rxcui = {}, ndc = {}, omop = {} }
  for k in pairs(entry) do
    if not (k == "name" or k == "brands" or k == "names"
        or DRUG_CODE_SHAPE[k]) then
      return nil, ("%s: unknown field '%s' (name, brands, atc, rxcui, ndc, "
        .. "omop)"):format(what, tostring(k))
    end
  end
  if named then
    if not name_ok(entry.name) then
      return nil, ("%s: 'name' must be a drug name of at least 3 "
        .. "characters, got %s"):format(what, tostring(entry.name))
    end
    out.name = trim(entry.name):lower()
  elseif entry.name ~= nil then
    return nil, what .. ": 'name' is the drug extended; list more names "
      .. "under 'names'"
  end
  for _, field in ipairs({ "brands", "names" }) do
    local list = entry[field]
    if list ~= nil then
      if type(list) ~= "table" then
        return nil, ("%s: '%s' must be a list of names"):format(what, field)
      end
      for i, n in ipairs(list) do
        if not name_ok(n) then
          return nil, ("%s: %s[%d] must be a name of at least 3 characters, "
            .. "got %s"):format(what, field, i, tostring(n))
        end
        out.names[#out.names + 1] = trim(n):lower()
      end
    end
  end
  for field, shape in pairs(DRUG_CODE_SHAPE) do
    local list = entry[field]
    if list ~= nil then
      if type(list) ~= "table" then
        return nil, ("%s: '%s' must be a list of codes"):format(what, field)
      end
      for i, c in ipairs(list) do
        if math.type(c) == "integer" then c = tostring(c) end
        if type(c) ~= "string" or not shape(trim(c)) then
          return nil, ("%s: %s[%d] '%s' is not %s"):format(what, field, i,
            tostring(c), DRUG_CODE_WHAT[field])
        end
        c = trim(c)
        out[field][#out[field] + 1] = field == "atc" and c:upper() or c
      end
    end
  end
  return out
end

-- Adds a normalised drug entry's names and codes to DRUGS[key].
local function merge_drug(key, d)
  local ids = DRUGS[key]
  if not ids then
    ids = { names = { key }, ndc = {}, atc = {}, rxcui = {}, omop = {} }
    DRUGS[key] = ids
  end
  for _, n in ipairs(d.names) do
    if not in_names(ids.names, n) then ids.names[#ids.names + 1] = n end
  end
  for _, field in ipairs({ "ndc", "atc", "rxcui", "omop" }) do
    for _, c in ipairs(d[field]) do
      if not in_list(ids[field], c) then
        ids[field][#ids[field] + 1] = { c, false }
        EXTENSIONS[#EXTENSIONS + 1] = key .. " " .. field .. ": " .. c
      end
    end
  end
end

local function combination_row(name)
  for _, c in ipairs(COMBINATION) do
    if c[1] == name then return c end
  end
  return nil
end

-- Each extender checks the whole list first and returns a function that
-- applies it, or nil, error: a bad entry changes nothing.
local function extend_loinc(name, list)
  local add = {}
  for i, c in ipairs(list) do
    if type(c) ~= "string" or not loinc_shape(trim(c)) then
      return nil, ("entry %d '%s' is not a LOINC code (digits, '-', check "
        .. "digit, e.g. 751-8)"):format(i, tostring(c))
    end
    c = trim(c)
    local other = LOINC_ANALYTE[c]
    if other and other ~= name then
      return nil, ("entry %d: LOINC %s is already in set '%s'; the analyte "
        .. "sets are disjoint"):format(i, c, other)
    end
    if not other and not in_names(add, c) then add[#add + 1] = c end
  end
  return function()
    for _, c in ipairs(add) do
      LOINC[name][#LOINC[name] + 1] = c
      LOINC_ANALYTE[c] = name
      EXTENSIONS[#EXTENSIONS + 1] = name .. ": " .. c
    end
  end
end

local function extend_icd(name, list)
  local add = {}
  for i, e in ipairs(list) do
    local code, label = e, nil
    if type(e) == "table" then code, label = e[1], e[2] end
    if type(code) ~= "string" or not icd_shape(trim(code):upper()) then
      return nil, ("entry %d '%s' is not an ICD-10-CM code or prefix (a "
        .. "letter, then digits: I80, I80.2, K57.2)"):format(i,
        tostring(code))
    end
    if label ~= nil and type(label) ~= "string" then
      return nil, ("entry %d: the label must be a string"):format(i)
    end
    add[#add + 1] = { trim(code):upper(), label or "added by the site" }
  end
  return function()
    for _, e in ipairs(add) do
      local known = false
      for _, p in ipairs(ICD[name]) do
        if icd_norm(p[1]) == icd_norm(e[1]) then known = true end
      end
      if not known then
        ICD[name][#ICD[name] + 1] = { e[1], e[2], false }
        ICD_SETS[name][#ICD_SETS[name] + 1] = e[1]
        EXTENSIONS[#EXTENSIONS + 1] = name .. ": " .. e[1]
      end
    end
  end
end

local function extend_class(name, list)
  local class = CLASS_OF_SET[name]
  local add = {}
  for i, entry in ipairs(list) do
    local d, err = check_drug(entry, "entry " .. i, true)
    if not d then return nil, err end
    local row = combination_row(d.name)
    if row and row[2] ~= class then
      return nil, ("entry %d: %s is already in another set (%s)"):format(i,
        d.name, row[2])
    end
    if not row and DRUGS[d.name] then
      return nil, ("entry %d: %s is not a combination drug"):format(i,
        d.name)
    end
    add[#add + 1] = d
  end
  return function()
    for _, d in ipairs(add) do
      local row = combination_row(d.name)
      if not row then
        row = { d.name, class, {}, {} }
        COMBINATION[#COMBINATION + 1] = row
        EXTENSIONS[#EXTENSIONS + 1] = name .. ": " .. d.name
      end
      for _, n in ipairs(d.names) do
        if not in_names(row[3], n) then row[3][#row[3] + 1] = n end
      end
      for _, a in ipairs(d.atc) do
        if not in_names(row[4], a) then row[4][#row[4] + 1] = a end
      end
      merge_drug(d.name, d)
    end
  end
end

local function extend_names(target)
  return function(name, list)
    local add = {}
    for i, n in ipairs(list) do
      if not name_ok(n) then
        return nil, ("entry %d must be a drug name of at least 3 characters, "
          .. "got %s"):format(i, tostring(n))
      end
      add[#add + 1] = trim(n):lower()
    end
    return function()
      for _, n in ipairs(add) do
        if not in_names(target, n) then
          target[#target + 1] = n
          EXTENSIONS[#EXTENSIONS + 1] = name .. ": " .. n
        end
      end
    end
  end
end

local function extend_vaccines(_, list)
  local add = {}
  for i, e in ipairs(list) do
    local code, label = e, nil
    if type(e) == "table" then code, label = e[1], e[2] end
    if math.type(code) == "integer" then code = tostring(code) end
    if type(code) ~= "string" or not trim(code):match("^%d%d?%d?$") then
      return nil, ("entry %d '%s' is not a CVX code (1 to 3 digits)"):format(
        i, tostring(code))
    end
    if label ~= nil and type(label) ~= "string" then
      return nil, ("entry %d: the label must be a string"):format(i)
    end
    add[#add + 1] = { trim(code), label or "added by the site" }
  end
  return function()
    for _, v in ipairs(add) do
      local known = false
      for _, l in ipairs(LIVE_VACCINES) do
        if l[1]:gsub("^0+", "") == v[1]:gsub("^0+", "") then known = true end
      end
      if not known then
        LIVE_VACCINES[#LIVE_VACCINES + 1] = { v[1], v[2], false }
        EXTENSIONS[#EXTENSIONS + 1] = "live_vaccines: " .. v[1]
      end
    end
  end
end

local function extend_drugs(_, list)
  local add = {}
  for i, entry in ipairs(list) do
    local d, err = check_drug(entry, "entry " .. i, true)
    if not d then return nil, err end
    add[#add + 1] = d
  end
  return function()
    for _, d in ipairs(add) do
      if not DRUGS[d.name] then
        EXTENSIONS[#EXTENSIONS + 1] = "drugs: " .. d.name
      end
      merge_drug(d.name, d)
    end
  end
end

--[[
codes.extend(set, list)

  Adds codes to one of the named sets, for a site, from its own module
  scripts/site.lua (loaded after this module, before any rule: docs/rules.md
  "Site code sets").  Pack codes are never removed; a code already there is
  skipped.  Added codes count as UNVERIFIED (verified = false) in the
  listings.  The whole list is checked first: an unknown set name or a code
  of the wrong shape for the set's code system raises an error naming it,
  and nothing is added.

    codes.extend("neutrophils", { "770-8" })            -- LOINC codes
    codes.extend("vte", { "I80.2", { "I82.5", "chronic DVT" } })  -- ICD-10-CM
    codes.extend("immunosuppressants", {                 -- drug classes
      "voclosporin",
      { name = "leflunomide", brands = { "arava" }, atc = { "L04AA13" } },
    })
    codes.extend("baricitinib", { ndc = { "0002-4182" }, rxcui = { "2047232" } })
    codes.extend("drugs", { { name = "dupilumab", atc = { "D11AH05" } } })
    codes.extend("live_vaccines", { { "48", "site vaccine" } })  -- CVX
    codes.extend("oat3_inhibitors", { "teriflunomide" })  -- names

  Sets: analyte LOINC sets; ICD-10-CM base sets; biologics, jak_inhibitors,
  immunosuppressants; drugs (new drugs rules may name); a known drug's name
  (its names=, atc=, rxcui=, ndc=, omop=); live_vaccines; oat3_inhibitors,
  nsaids, opioids.  Union sets (cbc, lipids, serious_infection, ...) follow
  their parts and cannot be extended themselves.

  In the engine, extend works only while the site module loads; after that
  the sets are sealed (codes.seal), so that every rule of every plugin sees
  the same codes.
]]
function codes.extend(set, list)
  if sealed then
    error("codes.extend: code sets are extended only by the site module "
      .. "(scripts/site.lua, docs/rules.md \"Site code sets\"), before any "
      .. "rule loads, so that every rule sees the same codes", 2)
  end
  if type(set) ~= "string" then
    error("codes.extend: the first argument must be a set name, got "
      .. type(set), 2)
  end
  if type(list) ~= "table" then
    error(("codes.extend('%s', ...): the second argument must be a list, "
      .. "got %s"):format(set, type(list)), 2)
  end
  local apply, err
  local analyte = false
  for _, a in ipairs(ANALYTES) do
    if a == set then analyte = true end
  end
  if analyte then
    apply, err = extend_loinc(set, list)
  elseif UNIONS[set] or ICD_UNIONS[set] then
    err = ("'%s' is the union of %s: extend one of those"):format(set,
      table.concat(UNIONS[set] or ICD_UNIONS[set], ", "))
  elseif ICD[set] then
    apply, err = extend_icd(set, list)
  elseif CLASS_OF_SET[set] then
    apply, err = extend_class(set, list)
  elseif set == "drugs" then
    apply, err = extend_drugs(set, list)
  elseif set == "live_vaccines" then
    apply, err = extend_vaccines(set, list)
  elseif set == "oat3_inhibitors" then
    apply, err = extend_names(OAT3_STRONG)(set, list)
  elseif set == "nsaids" then
    apply, err = extend_names(NSAIDS)(set, list)
  elseif set == "opioids" then
    apply, err = extend_names(OPIOIDS)(set, list)
  elseif find_drug(trim(set):lower()) then
    local key = find_drug(trim(set):lower())
    local d
    d, err = check_drug(list, "the identifiers of " .. key, false)
    if d then apply = function() merge_drug(key, d) end end
  else
    err = ("unknown set '%s' (%s)"):format(set, EXTENDABLE)
  end
  if not apply then
    error(("codes.extend('%s'): %s"):format(set, err), 2)
  end
  apply()
  rebuild_unions()
end

--[[
codes.extensions() -> list of "set: code" strings, what codes.extend added,
in order (for reviews: these codes are the site's, not the pack's).
]]
function codes.extensions()
  return copy(EXTENSIONS)
end

--[[
codes.seal(): ends codes.extend.  The engine calls it right after the site
module has loaded (core/rules_api.lua).
]]
function codes.seal()
  sealed = true
end

return codes
