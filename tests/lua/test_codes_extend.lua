-- Tests of scripts/codes.lua for issue 21 part 2: drugs given only as a
-- code (domain §3.2), drug sets, codes.drug_known and codes.extend.
-- Run: pvlua scripts tests/lua/test_codes_extend.lua

local check = require "check"
local codes = check.sandboxed("codes")

-- Baricitinib by code alone, the code as drug text too (HL7 CE without
-- text; a CSV row with an empty drug).
local function bari(e) return codes.drug_matches("baricitinib", e) end
check.ok(bari { drug = "L04AF02", drug_code = "L04AF02", code_system = "ATC" },
  "ATC L04AF02")
check.ok(bari { drug = "L04AA37" }, "old ATC as text, no system")
check.ok(bari { drug = "2047241", code_system = "RxNorm" }, "RxCUI as text")
check.ok(bari { drug = "00002447930" }, "11-digit NDC as text")
check.ok(not bari { drug = "L04AF04", code_system = "ATC" },
  "L04AF04 is filgotinib")
check.ok(not bari { drug = "2047241" }, "a bare number needs a system")
check.ok(not bari { drug = "L04AF02", drug_code = "L04AF04",
  code_system = "ATC" }, "the drug_code wins over the text")

-- Drug sets.
check.ok(codes.drug_matches("immunosuppressants",
  { drug = "L04AX01", code_system = "ATC" }), "azathioprine by ATC")
check.ok(not codes.drug_matches("biologics",
  { drug = "L04AX01", code_system = "ATC" }), "azathioprine is no biologic")
check.ok(codes.drug_matches("live_vaccines",
  { drug = "03", drug_code = "03", code_system = "CVX" }), "MMR by CVX")
check.eq(codes.combination_drug({ drug = "L04AD01" }), "ciclosporin",
  "ciclosporin by ATC as text")

-- drug_known: what on.exposure accepts.
for _, n in ipairs({ "baricitinib", "Olumiant", "azathioprine", "Imuran",
    "probenecid", "prednisone", "ibuprofen", "vax", "immunosuppressants" }) do
  check.ok(codes.drug_known(n), "known: " .. n)
end
for _, n in ipairs({ "baricitnib", "", "  ", "aspirin" }) do
  check.ok(not codes.drug_known(n), "unknown: " .. n)
end

-- extend: validation first, nothing added on error.
check.raises(function() codes.extend("immunosupressants", { "x" }) end,
  "unknown set 'immunosupressants'", "a misspelt set")
check.raises(function() codes.extend("cbc", { "26499-4" }) end,
  "is the union of", "a union")
check.raises(function() codes.extend("neutrophils", { "I26" }) end,
  "is not a LOINC code", "ICD in a LOINC set")
check.raises(function() codes.extend("neutrophils", { "718-7" }) end,
  "already in set 'hemoglobin'", "disjoint analytes")
check.raises(function() codes.extend("vte", { "751-8" }) end,
  "is not an ICD-10-CM code", "LOINC in an ICD set")
check.raises(function()
  codes.extend("immunosuppressants", { "voclosporin",
    { name = "xyzzy", atc = { "12345" } } })
end, "atc[1] '12345' is not an ATC code", "a bad ATC code")
check.ok(not codes.drug_known("voclosporin"), "the failed list added nothing")
check.raises(function()
  codes.extend("immunosuppressants", { "adalimumab" })
end, "already in another set (biologic)", "a biologic is no immunosuppressant")
check.raises(function() codes.extend("baricitinib", { ndc = { "12" } }) end,
  "is not an NDC", "a bad NDC")
check.raises(function() codes.extend("oat3_inhibitors", { "ab" }) end,
  "at least 3 characters", "a name too short to match")
check.raises(function() codes.extend("live_vaccines", { "L04AF02" }) end,
  "is not a CVX code", "a bad CVX code")

local before = #codes.icd_set("vte")
codes.extend("immunosuppressants", {
  { name = "voclosporin", brands = { "Lupkynis" }, atc = { "L04AD03" },
    rxcui = { "2481976" } } })
codes.extend("neutrophils", { "99999-9" })
codes.extend("vte", { "I80.2", { "I26", "already there" } })
codes.extend("baricitinib", { rxcui = { "7654321" } })
codes.extend("drugs", { { name = "dupilumab", atc = { "D11AH05" } } })
check.eq(select(2, codes.combination_drug({ drug = "LUPKYNIS 7.9 mg" })),
  "immunosuppressant", "by brand")
check.eq(codes.combination_drug({ drug = "2481976", code_system = "RXNORM" }),
  "voclosporin", "by RxCUI")
check.ok(codes.drug_matches("immunosuppressants", { drug_code = "L04AD03" }),
  "the set sees it")
check.ok(codes.in_set("cbc", "99999-9"), "the union follows its part")
check.eq(codes.loinc_analyte("99999-9"), "neutrophils", "analyte")
check.eq(#codes.icd_set("vte"), before + 1, "I26 was there: skipped")
check.ok(codes.icd_match("thrombosis", "I80.29"), "ICD union follows")
check.ok(bari { drug_code = "7654321", code_system = "RXNORM" }, "new RxCUI")
check.ok(bari { drug_code = "2047241", code_system = "RXNORM" },
  "pack codes stay")
check.ok(codes.drug_known("dupilumab"), "a new drug is known")
check.ok(#codes.extensions() >= 6, "extensions are listed")

codes.seal()
check.raises(function() codes.extend("vte", { "I80.3" }) end,
  "only by the site module", "sealed")

check.done()
