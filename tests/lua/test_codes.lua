-- Tests of scripts/codes.lua: LOINC sets, ICD-10-CM prefix matching and
-- baricitinib identifiers (domain §3).
-- Run: pvlua scripts tests/lua/test_codes.lua

local check = require "check"
local codes = check.sandboxed("codes")

-- LOINC sets (domain §3.1).
check.same(codes.loinc_set("neutrophils"), { "751-8", "26499-4", "753-4" },
  "neutrophils")
check.same(codes.loinc_set("lymphocytes"), { "731-0", "26474-7", "732-8" },
  "lymphocytes")
check.same(codes.loinc_set("wbc"), { "6690-2", "26464-8" }, "wbc")
check.same(codes.loinc_set("hemoglobin"), { "718-7", "59260-0" },
  "hemoglobin")
check.same(codes.loinc_set("platelets"), { "777-3", "26515-7" },
  "platelets")
check.same(codes.loinc_set("alt"), { "1742-6", "1743-4", "1744-2" }, "alt")
check.same(codes.loinc_set("ast"), { "1920-8", "30239-8" }, "ast")
check.same(codes.loinc_set("bilirubin"), { "1975-2", "14631-6" },
  "bilirubin")
check.same(codes.loinc_set("creatinine"), { "2160-0", "14682-9", "38483-4" },
  "creatinine")
check.same(codes.loinc_set("egfr"), { "33914-3", "62238-1", "98979-8" },
  "egfr")
check.same(codes.loinc_set("cholesterol"), { "2093-3", "14647-2" },
  "cholesterol")
check.same(codes.loinc_set("ldl"),
  { "13457-7", "18262-6", "2089-1", "39469-2", "69419-0" }, "ldl")
check.same(codes.loinc_set("hdl"), { "2085-9", "14646-4" }, "hdl")
check.same(codes.loinc_set("triglycerides"), { "2571-8", "14927-8" },
  "triglycerides")
check.same(codes.loinc_set("ddimer"), { "48065-7", "48066-5" }, "ddimer")
check.eq(codes.loinc_set("nonsense"), nil, "unknown LOINC set")

-- Unions.
check.eq(#codes.loinc_set("cbc"), 3 + 3 + 2 + 2 + 2, "cbc size")
for _, c in ipairs({ "751-8", "731-0", "6690-2", "718-7", "777-3" }) do
  check.ok(codes.in_set("cbc", c), "cbc contains " .. c)
end
check.ok(not codes.in_set("cbc", "2093-3"), "cbc excludes cholesterol")
for _, c in ipairs({ "2093-3", "14647-2", "13457-7", "69419-0", "2571-8",
                     "14927-8" }) do
  check.ok(codes.in_set("lipids", c), "lipids contains " .. c)
end
-- Decision: HDL is not in "lipids" (it is not graded as high cholesterol)
-- but is in "lipid_panel".
check.ok(not codes.in_set("lipids", "2085-9"), "lipids excludes HDL")
check.ok(codes.in_set("lipid_panel", "2085-9"), "lipid_panel includes HDL")
check.ok(codes.in_set("neutrophils", " 751-8 "), "in_set trims")
check.ok(not codes.in_set("neutrophils", "731-0"), "ALC is not ANC")
check.ok(not codes.in_set("neutrophils", nil), "in_set nil code")
check.raises(function () return codes.in_set("neutrophil", "751-8") end,
  "unknown LOINC set 'neutrophil'", "in_set typo raises")

-- Copies: a caller that edits a set does not change the module.
local s = codes.loinc_set("neutrophils")
s[1] = "0-0"
check.eq(codes.loinc_set("neutrophils")[1], "751-8", "loinc_set copies")

check.eq(codes.loinc_analyte("38483-4"), "creatinine", "Synthea creatinine")
check.eq(codes.loinc_analyte("59260-0"), "hemoglobin", "Hb SI twin")
check.eq(codes.loinc_analyte("26474-7"), "lymphocytes", "ALC 26474-7")
check.eq(codes.loinc_analyte("1-1"), nil, "unknown LOINC analyte")
check.eq(codes.loinc_analyte(nil), nil, "nil LOINC analyte")

-- ICD-10-CM prefix matching (domain §3.3).
-- icd(set, code, expected): one match.
local function icd(set, code, expected)
  check.eq(codes.icd_match(set, code), expected,
    ("icd_match(%s, %s)"):format(tostring(set), tostring(code)))
end
icd("vte", "I82.401", true)
icd("vte", "I82401", true)
icd("vte", "i82.4z1", true)
icd("vte", "I82.40", true)
icd("vte", "I26.99", true)
icd("vte", "I26.02", true)
icd("vte", "I2699", true)
icd("vte", "I27.82", false)    -- chronic PE is excluded from I26
icd("vte", "Z86.711", false)   -- history of PE
icd("vte", "I82.5", false)     -- chronic DVT is not I82.4
icd("vte", "I82.3", false)
icd("vte", "I2", false)
icd("vte", "", false)
icd("vte", nil, false)
icd("I82.4", "I82401", true)
icd("I26", "I26.99", true)
icd("I26", "I27.82", false)
icd({ "I26", "I82.4" }, "I82.402", true)
icd("arterial_thrombosis", "I74.3", true)
icd("arterial_thrombosis", "I63.9", true)
icd("arterial_thrombosis", "I21.4", true)
icd("arterial_thrombosis", "I25.10", false)
icd("thrombosis", "I26.99", true)
icd("thrombosis", "I74.3", true)
icd("mace", "I21.09", true)
icd("herpes_zoster", "B02.9", true)
icd("herpes_zoster", "B02.7", true)
icd("herpes_zoster", "B01.9", false)   -- varicella is not zoster
icd("tuberculosis", "A15.0", true)
icd("tuberculosis", "A19.9", true)
icd("tuberculosis", "A17.0", true)
icd("tuberculosis", "A14", false)
icd("tuberculosis", "A20.0", false)
icd("sepsis", "A41.9", true)
icd("sepsis", "A40.3", true)
icd("sepsis", "A42.7", false)
icd("pneumonia", "J18.9", true)
icd("pneumonia", "J12.82", true)
icd("pneumonia", "J11.00", false)
icd("pneumonia", "J19", false)
icd("opportunistic", "B37.1", true)
icd("opportunistic", "B59", true)
icd("opportunistic", "B44.0", true)
icd("opportunistic", "B02.9", false)
icd("serious_infection", "A41.9", true)
icd("serious_infection", "J15.9", true)
-- TB, zoster and opportunistic infections have their own rules, so they
-- are not in serious_infection (one event, one alert)...
icd("serious_infection", "A15.0", false)
icd("serious_infection", "B02.9", false)
icd("serious_infection", "B59", false)
-- ...but are in the all-infections union.
icd("infection", "A15.0", true)
icd("infection", "B02.9", true)
icd("infection", "B59", true)
check.raises(function () return codes.icd_match("vtee", "I26.99") end,
  "unknown ICD-10-CM set 'vtee'", "icd_match typo raises")
check.same(codes.icd_set("vte"), { "I26", "I82.4" }, "icd_set vte")
check.eq(codes.icd_set("nonsense"), nil, "unknown ICD set")
check.eq(codes.icd_entries("tuberculosis")[1].verified, false,
  "A15 is marked UNVERIFIED")
check.eq(codes.icd_entries("vte")[1].verified, true, "I26 is verified")

-- Baricitinib exposure (domain §3.2).
-- drug(query, exposure, expected): one exposure test.
local function drug(query, exposure, expected)
  check.eq(codes.drug_matches(query, exposure), expected,
    ("drug_matches(%s, %s)"):format(tostring(query), check.show(exposure)))
end
drug("baricitinib", { drug = "Olumiant 2 MG Oral Tablet" }, true)
drug("baricitinib", { drug = "BARICITINIB 4mg" }, true)
drug("baricitinib", { drug = "baricitinib" }, true)
drug("Baricitinib", { drug = "olumiant" }, true)
drug("olumiant", { drug = "baricitinib 2 mg" }, true)
drug("baricitinib", { drug = "tofacitinib 5 mg" }, false)
drug("baricitinib", {}, false)
-- NDC product 0002-4479 in every package form.
drug("baricitinib", { drug_code = "0002-4479-30", code_system = "NDC" }, true)
drug("baricitinib", { drug_code = "00002447930", code_system = "NDC" }, true)
drug("baricitinib", { drug_code = "00002-4479-30", code_system = "NDC" },
  true)
drug("baricitinib", { drug_code = "0002447930", code_system = "NDC" }, true)
drug("baricitinib", { drug_code = "0002-4479", code_system = "NDC" }, true)
drug("baricitinib", { drug_code = "0002-4479-61",
  code_system = "http://hl7.org/fhir/sid/ndc" }, true)
drug("baricitinib", { drug_code = "0002-4479-30" }, true)
drug("baricitinib", { drug_code = "00002447930" }, true)
drug("baricitinib", { drug_code = "0002-4182-30", code_system = "NDC" }, true)
drug("baricitinib", { drug_code = "0002-4732-30", code_system = "NDC" }, true)
drug("baricitinib", { drug_code = "0002-4480-30", code_system = "NDC" },
  false)
drug("baricitinib", { drug_code = "10002-4479-30", code_system = "NDC" },
  false)
drug("baricitinib", { drug_code = "0002-4479-", code_system = "NDC" }, false)
-- ATC, old and new codes.
drug("baricitinib", { drug_code = "L04AA37", code_system = "ATC" }, true)
drug("baricitinib", { drug_code = "L04AF02",
  code_system = "http://www.whocc.no/atc" }, true)
drug("baricitinib", { drug_code = "l04af02" }, true)
drug("baricitinib", { drug_code = "L04AF01", code_system = "ATC" }, false)
-- RxCUI and OMOP ids need a code system.
drug("baricitinib", { drug_code = "2047241", code_system = "RXNORM" }, true)
drug("baricitinib", { drug_code = "2205472", code_system = "RxNorm" }, true)
drug("baricitinib", { drug_code = "1927851",
  code_system = "http://www.nlm.nih.gov/research/umls/rxnorm" }, true)
drug("baricitinib", { drug_code = 2047232, code_system = "RXNORM" }, true)
drug("baricitinib", { drug_code = "2047241" }, false)
drug("baricitinib", { drug_code = "1510627", code_system = "OMOP" }, true)
drug("baricitinib", { drug_code = "1510627", code_system = "RXNORM" }, false)
drug("baricitinib", { drug_code = "2047241", code_system = "SNOMED" }, false)
-- Any other query is a case-insensitive substring of the drug text.
drug("metformin", { drug = "Metformin 500 MG Oral Tablet" }, true)
drug("METFORMIN", { drug = "metformin hydrochloride" }, true)
drug("metformin", { drug = "baricitinib" }, false)
drug("probenecid", { drug = "PROBENECID 500 mg" }, true)
drug("a.b", { drug = "axb" }, false)   -- no Lua pattern magic
drug("", { drug = "anything" }, false)
drug(nil, { drug = "anything" }, false)
drug("baricitinib", nil, false)

check.same(codes.oat3_strong_inhibitors(), { "probenecid" }, "OAT3 list")
check.ok(codes.is_strong_oat3_inhibitor({ drug = "Probenecid 500 MG" }),
  "probenecid is a strong OAT3 inhibitor")
check.ok(not codes.is_strong_oat3_inhibitor({ drug = "ibuprofen" }),
  "ibuprofen is not")
check.ok(codes.is_other_jak_inhibitor({ drug = "Xeljanz (tofacitinib)" }),
  "tofacitinib is another JAK inhibitor")
check.ok(codes.is_other_jak_inhibitor({ drug_code = "L04AF03" }),
  "upadacitinib by ATC")
check.ok(not codes.is_other_jak_inhibitor({ drug = "baricitinib" }),
  "baricitinib is not 'another' JAK inhibitor")
local ids = codes.drug_ids("Olumiant")
check.eq(ids.ndc[1].code, "0002-4479", "drug_ids NDC")
check.eq(ids.ndc[1].verified, true, "0002-4479 verified")
check.eq(ids.ndc[2].verified, false, "0002-4182 UNVERIFIED")

check.done()
