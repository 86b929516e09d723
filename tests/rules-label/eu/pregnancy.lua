-- Spec for plugins/pregnancy.lua under the EU label: the action says
-- contraindicated (EU-PIL, domain §1.3; issue 14).
local t = pv.test "pregnancy (EU): contraindicated, stop baricitinib"
t:exposure { patient_id = "E1", drug = "baricitinib", dose = 4,
  start = "2026-01-01" }
t:lab { patient_id = "E1", code = "2106-3", value = "Positive",
  at = "2026-03-01" }
t:expect_alert { rule = "baricitinib.pregnancy", severity = "high",
  action_has = "Pregnancy is a contraindication in the EU: stop baricitinib" }
