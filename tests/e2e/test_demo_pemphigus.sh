#!/usr/bin/env bash
# The pemphigus patient of the sample feeds (examples/feeds/
# pemphigus_medications.csv, examples/README.md): PV-006 on azathioprine and
# prednisone starts baricitinib.  Ingesting every sample feed as
# examples/demo.sh does must give PV-006 exactly the combination, steroid
# burden and GI-perforation risk alerts, and leave PV-001..PV-005 as the
# README says (issue 14).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FEEDS=$PV_SOURCE_DIR/examples/feeds

section "the sample feeds, as the demo ingests them"
CFG_PLUGINS=$PV_SOURCE_DIR/plugins write_config pv.lua
pv ingest -c pv.lua "$FEEDS"/*
assert_eq 3 "$RC" "ingest exits 3 (labs_with_errors.csv rejects 2 rows on purpose; stderr: $ERR)"
assert_match 'pemphigus_medications.csv: medications: 4 stored, 0 rejected; alerts: 3 opened' \
    "$OUT" "the pemphigus feed opens 3 alerts"
assert_eq "baricitinib.combination|high|combination:azathioprine
baricitinib.gi_perforation|medium|gi_risk:2026-01-20
baricitinib.steroid_burden|medium|steroid_burden:2026-01-20" \
    "$(q "SELECT rule, severity, dedup_key FROM alerts WHERE patient_id = 'PV-006' ORDER BY rule")" \
    "PV-006: combination (high), GI risk and steroid burden (medium)"
assert_match 'Azathioprine 50 MG Oral Tablet \(ATC L04AX01\) 100 mg, 2025-11-01 to ongoing, and baricitinib 4 mg, 2026-01-20' \
    "$(q "SELECT detail FROM alerts WHERE rule = 'baricitinib.combination'")" \
    "the combination names both drugs and their dates"
assert_match 'for 71 days \(2026-01-20 to 2026-03-31, up to 40 mg/day\)' \
    "$(q "SELECT detail FROM alerts WHERE rule = 'baricitinib.steroid_burden'")" \
    "the steroid burden counts the overlap"
assert_eq 5 "$(q "SELECT count(*) FROM alerts WHERE patient_id <> 'PV-006'")" \
    "the other sample patients keep their 5 alerts"
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE signal = 'engine'")" "no rule failed"

finish
