-- Specs for drugs given only as a code (issue 21 part 2): an exposure with
-- no drug name, only an ATC, RxNorm or NDC code, reaches the rules that
-- name the drug (on.exposure, patient:exposures, the exposure gate) and
-- the combination sets.  Codes: domain §3.2 (baricitinib NDC 0002-4479,
-- ATC L04AA37 / L04AF02, RxCUI 2047241); azathioprine ATC L04AX01 is
-- scripts/codes.lua's (UNVERIFIED there).  As the feeds do (core/map.c,
-- core/ingest_hl7.c), a spec exposure without 'drug' stores its code as
-- the drug text.

local NEUTRO = "baricitinib.neutropenia"

-- A neutropenic ANC (900 cells/mm3: CTCAE grade 3, below the label's
-- 1000, domain §1.4 and §2) a month after the start.
local function anc(t, pid)
  return t:lab { patient_id = pid, code = "751-8", value = 900,
    unit = "cells/mm3", at = "2026-02-01" }
end

local BY_CODE = {
  { "ATC_NEW", "L04AF02", "ATC" },
  { "ATC_OLD", "L04AA37", "WHO ATC" },
  { "ATC_BARE", "L04AF02", nil },
  { "RXNORM", "2047241", "RxNorm" },
  { "RXNORM_URI", "2047247", "http://www.nlm.nih.gov/research/umls/rxnorm" },
  { "NDC", "0002-4479-30", "NDC" },
  { "NDC11", "00002447930", nil },
}

do
  local t = pv.test "drug codes: baricitinib by ATC, RxNorm or NDC alone"
  for _, c in ipairs(BY_CODE) do
    t:exposure { patient_id = c[1], drug_code = c[2], code_system = c[3],
      dose = 2, start = "2026-01-01" }
    anc(t, c[1])
  end
  for _, c in ipairs(BY_CODE) do
    t:expect_alert { rule = NEUTRO, patient_id = c[1], count = 1, grade = 3,
      severity = "high" }
  end
  t:expect_no_alert { signal = "engine" }
end

do
  local t = pv.test "drug codes: a code of another drug, or ambiguous, is not baricitinib"
  -- L04AF04 is filgotinib (domain §3.2); a bare 7-digit number may be an
  -- RxCUI or an OMOP id, so it needs a code system.
  t:exposure { patient_id = "FILGO", drug_code = "L04AF04",
    code_system = "ATC", start = "2026-01-01" }
  anc(t, "FILGO")
  t:exposure { patient_id = "BARE", drug_code = "2047241",
    start = "2026-01-01" }
  anc(t, "BARE")
  t:expect_no_alert { rule = NEUTRO, patient_id = "FILGO" }
  t:expect_no_alert { rule = NEUTRO, patient_id = "BARE" }
end

do
  local t = pv.test "drug codes: the code written as the drug text"
  t:exposure { patient_id = "TXT", drug = "L04AF02", start = "2026-01-01" }
  anc(t, "TXT")
  t:exposure { patient_id = "TXT_RX", drug = "2047241", code_system = "RXNORM",
    start = "2026-01-01" }
  anc(t, "TXT_RX")
  t:expect_alert { rule = NEUTRO, patient_id = "TXT", count = 1 }
  t:expect_alert { rule = NEUTRO, patient_id = "TXT_RX", count = 1 }
end

do
  local t = pv.test "drug codes: an immunosuppressant and baricitinib both by ATC"
  t:exposure { patient_id = "AZA", drug_code = "L04AX01", code_system = "ATC",
    dose = 100, start = "2026-01-01" }
  t:exposure { patient_id = "AZA", drug_code = "L04AF02", code_system = "ATC",
    dose = 2, start = "2026-02-01" }
  -- The other order: baricitinib by NDC first, then azathioprine by ATC.
  t:exposure { patient_id = "AZA2", drug_code = "00002447930",
    start = "2026-01-01" }
  t:exposure { patient_id = "AZA2", drug_code = "L04AX01", code_system = "ATC",
    start = "2026-02-01" }
  t:expect_alert { rule = "baricitinib.combination", patient_id = "AZA",
    count = 1, key = "combination:azathioprine", severity = "high",
    title = "Baricitinib combined with azathioprine (a potent "
      .. "immunosuppressant)",
    detail_has = "L04AX01 (ATC L04AX01)" }
  t:expect_alert { rule = "baricitinib.combination", patient_id = "AZA2",
    count = 1, key = "combination:azathioprine" }
end
