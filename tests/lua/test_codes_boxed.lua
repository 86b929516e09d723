-- Tests of the boxed-warning code sets of scripts/codes.lua (issue 14):
-- for every new set a code in and a neighbour out.
-- Run: pvlua scripts tests/lua/test_codes_boxed.lua

local check = require "check"
local codes = check.sandboxed("codes")

-- LOINC sets.
local function lab(set, inside, outside)
  check.ok(codes.in_set(set, inside), set .. " contains " .. inside)
  check.ok(not codes.in_set(set, outside), set .. " excludes " .. outside)
end
lab("hbv_dna", "29615-2", "5196-1")       -- HBsAg is not HBV DNA
lab("hbsag", "5196-1", "16935-9")         -- anti-HBs is not HBsAg
lab("hbv_antibody", "13952-7", "5196-1")
lab("hbv_serology", "5196-1", "29615-2")  -- serology, not viral load
lab("hbv_serology", "16933-4", "1742-6")
lab("igra", "64084-6", "1648-5")          -- TST is not an IGRA
lab("tst", "1648-5", "64084-6")
lab("tb_test", "71774-4", "5196-1")
lab("hcg", "2106-3", "2093-3")
check.eq(codes.loinc_analyte("42595-9"), "hbv_dna", "analyte of 42595-9")

-- ICD-10-CM sets.
local function icd(set, inside, outside)
  check.ok(codes.icd_match(set, inside), set .. " matches " .. inside)
  check.ok(not codes.icd_match(set, outside), set .. " excludes " .. outside)
end
icd("malignancy", "C34.90", "D03.9")        -- melanoma in situ: not malignant
icd("malignancy", "C96.9", "C97")
icd("malignancy", "C7A.00", "D45")
icd("malignancy_uncertain", "D46.9", "D48.5")
icd("malignancy_uncertain", "D45", "D44.9")
icd("malignancy_any", "D47.Z9", "Z85.3")    -- history of cancer: not new
icd("lymphoma", "C83.30", "C90.00")         -- myeloma is not C81-C88
icd("lymphoma", "C88.4", "C80.1")
icd("lung_cancer", "C34.11", "C33")
icd("nmsc", "C44.91", "C43.9")              -- melanoma is not NMSC
icd("gi_perforation", "K63.1", "K63.2")
icd("gi_perforation", "K25.1", "K25.0")     -- ulcer with bleeding only
icd("gi_perforation", "K27.6", "K27.4")
icd("gi_perforation", "K57.20", "K57.30")   -- without perforation
icd("gi_perforation", "K65.0", "K66.0")
icd("diverticular", "K57.30", "K56.0")
icd("pregnancy", "O09.91", "N96")
icd("pregnancy", "Z33.1", "Z32.01")         -- pregnancy test, result
icd("pregnancy", "Z34.00", "Z35")
icd("death", "R99", "R98")
icd("death", "I46.9", "I47.1")
icd("cv_death", "I21.4", "I20.0")
icd("cv_death", "R96.0", "R97")
icd("cv_death", "I71.01", "I70.0")
for _, name in ipairs({ "malignancy", "malignancy_uncertain", "lymphoma",
    "lung_cancer", "nmsc", "gi_perforation", "diverticular", "pregnancy",
    "death", "cv_death" }) do
  for _, e in ipairs(codes.icd_entries(name)) do
    check.eq(type(e.label), "string", name .. " " .. e.prefix .. " label")
  end
end

-- Combination drugs: name, brand and ATC in; the neighbours out.
local function combo(e, name, class, what)
  local n, c = codes.combination_drug(e)
  check.eq(n, name, what .. ": name")
  check.eq(c, class, what .. ": class")
end
combo({ drug = "Azathioprine 50 MG" }, "azathioprine", "immunosuppressant",
  "azathioprine")
combo({ drug = "IMURAN" }, "azathioprine", "immunosuppressant", "Imuran")
combo({ drug = "x", drug_code = "L04AX01", code_system = "ATC" },
  "azathioprine", "immunosuppressant", "ATC L04AX01")
combo({ drug_code = "L04AB04" }, "adalimumab", "biologic", "bare ATC shape")
combo({ drug = "MabThera 500 mg" }, "rituximab", "biologic", "MabThera")
combo({ drug_code = "L01FA01", code_system = "WHO ATC" }, "rituximab",
  "biologic", "L01FA01")
combo({ drug = "Xeljanz 5 mg" }, "tofacitinib", "jak", "Xeljanz")
combo({ drug = "mycophenolic acid" }, "mycophenol", "immunosuppressant",
  "mycophenolic acid")
combo({ drug = "Cyclosporine" }, "ciclosporin", "immunosuppressant",
  "US spelling")
combo({ drug = "Methotrexate 15 MG" }, nil, nil, "methotrexate")
combo({ drug = "Baricitinib", drug_code = "L04AF02", code_system = "ATC" },
  nil, nil, "baricitinib itself")
combo({ drug_code = "L04AX03", code_system = "ATC" }, nil, nil,
  "L04AX03 methotrexate")
combo({ drug = "tacrolimus ointment", route = "topical" }, nil, nil,
  "topical tacrolimus")
combo({ drug_code = "L04AB04", code_system = "NDC" }, nil, nil,
  "an ATC-shaped code of another system")
check.ok(codes.drug_matches("azathioprine", { drug_code = "L04AX01",
  code_system = "ATC" }), "drug_matches knows azathioprine's ATC")
check.ok(codes.drug_matches("tofacitinib", { drug = "Tofacitinib",
  drug_code = "L04AF01", code_system = "ATC" }), "tofacitinib by name")
local names = codes.combination_names()
check.eq(names[1], "etanercept", "combination_names order")
names[1] = "x"
check.eq(codes.combination_names()[1], "etanercept", "combination_names copies")

-- Steroids and prednisone equivalents.
local function steroid(e, name, factor, what)
  local n, f = codes.steroid(e)
  check.eq(n, name, what .. ": name")
  check.eq(f, factor, what .. ": factor")
end
steroid({ drug = "Prednisone 20 MG" }, "prednisone", 1, "prednisone")
steroid({ drug = "Methylprednisolone 16 mg" }, "methylprednisolone", 1.25,
  "methylprednisolone is not prednisolone")
steroid({ drug = "prednisolone" }, "prednisolone", 1, "prednisolone")
steroid({ drug = "Dexamethasone 4 mg" }, "dexamethasone", 5 / 0.75,
  "dexamethasone")
steroid({ drug = "Hydrocortisone" }, "hydrocortisone", 0.25, "hydrocortisone")
steroid({ drug = "Budesonide inhaler" }, nil, nil, "budesonide")
steroid({ drug = "Prednisolone eye drops", route = "ophthalmic" }, nil, nil,
  "ophthalmic")
steroid({ drug = "hydrocortisone cream", route = "Topical" }, nil, nil,
  "topical")

-- GI-perforation risk medicines.
check.eq(codes.gi_risk_drug({ drug = "Naproxen 500 mg" }), "NSAID", "naproxen")
check.eq(codes.gi_risk_drug({ drug = "Oxycodone 5 mg" }), "opioid",
  "oxycodone")
check.eq(codes.gi_risk_drug({ drug = "prednisone" }), "corticosteroid",
  "prednisone")
check.eq(codes.gi_risk_drug({ drug = "Paracetamol 500 mg" }), nil,
  "paracetamol is not an NSAID")
check.eq(codes.gi_risk_drug({ drug = "Aspirin 100 mg" }), nil,
  "low-dose aspirin is not listed")

-- Live vaccines by CVX.
local function cvx(code, system, want, what)
  check.eq((codes.live_vaccine({ drug = "vaccine", drug_code = code,
    code_system = system })), want, what)
end
cvx("03", "CVX", "03", "MMR")
cvx("3", "CVX", "03", "MMR without the leading zero")
cvx("121", "CVX", "121", "zoster live")
cvx("187", "CVX", nil, "zoster recombinant is not live")
cvx("21", "http://hl7.org/fhir/sid/cvx", "21", "varicella, FHIR URI")
cvx("10", "CVX", nil, "IPV is not live")
cvx("03", "NDC", nil, "03 in another code system")
cvx(nil, "CVX", nil, "no code")
check.eq(codes.live_vaccine({ drug_code = 37, code_system = "CVX" }), "37",
  "an integer code")
local live = codes.live_vaccine_codes()
check.eq(live[2].code, "03", "live_vaccine_codes order")
check.eq(live[2].verified, true, "MMR verified")

check.done()
