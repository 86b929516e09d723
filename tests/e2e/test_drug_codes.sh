#!/usr/bin/env bash
# Drugs by code everywhere (issue 21 part 2): a medication given only as a
# code (ATC, RxNorm, NDC; domain §3.2) in a CSV feed (empty drug column)
# and in HL7 (RXE-2 / RXA-5 without text) reaches baricitinib.neutropenia
# and baricitinib.combination through 'pvwatch ingest'; a site module
# (scripts/site.lua) extends the immunosuppressants without editing the
# pack; triggers that can never fire are errors of 'pvwatch check' and a
# failed reload that keeps the old rules.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$T" || exit 1
mkdir -p pack site
cp "$PV_SOURCE_DIR"/plugins/*.lua pack/
CFG_PLUGINS=$T/pack write_config pv.lua

# ---------------------------------------------------------------------------
section "CSV: baricitinib by ATC, RxNorm or NDC alone; azathioprine by ATC"
cat >meds.csv <<'EOF'
patient_id,drug,start,drug_code,code_system,dose,dose_unit
C-ATC,,2026-01-01,L04AF02,ATC,2,mg
C-ATCOLD,,2026-01-01,L04AA37,ATC,2,mg
C-RX,,2026-01-01,2047241,RXNORM,2,mg
C-NDC,,2026-01-01,0002-4479-30,NDC,4,mg
C-NONE,,2026-01-01,L04AF04,ATC,100,mg
C-AZA,,2025-12-01,L04AX01,ATC,50,mg
C-AZA,,2026-01-01,L04AF02,ATC,2,mg
EOF
cat >labs.csv <<'EOF'
patient_id,code,value,unit,observed_at
C-ATC,751-8,0.8,10*9/L,2026-02-01T08:00:00Z
C-ATCOLD,751-8,0.8,10*9/L,2026-02-01T08:00:00Z
C-RX,751-8,0.8,10*9/L,2026-02-01T08:00:00Z
C-NDC,751-8,0.8,10*9/L,2026-02-01T08:00:00Z
C-NONE,751-8,0.8,10*9/L,2026-02-01T08:00:00Z
EOF
pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "ingest stores every row (a code without a name is a drug): $ERR"
for p in C-ATC C-ATCOLD C-RX C-NDC; do
    assert_eq "1|3|high" "$(q "SELECT count(*), grade, severity FROM alerts WHERE patient_id = '$p' AND rule = 'baricitinib.neutropenia'")" \
        "$p: the grade 3 neutropenia alert (count|grade|severity)"
done
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id = 'C-NONE'")" \
    "L04AF04 is filgotinib, not baricitinib: no neutropenia alert"
assert_eq "1|combination:azathioprine" "$(q "SELECT count(*), dedup_key FROM alerts WHERE patient_id = 'C-AZA' AND rule = 'baricitinib.combination'")" \
    "azathioprine and baricitinib both by ATC: the combination alert"
assert_eq "L04AF02" "$(q "SELECT drug FROM exposures WHERE patient_id = 'C-ATC'")" \
    "the code is stored as the drug text"

# ---------------------------------------------------------------------------
section "HL7: RXE-2 and RXA-5 with a code and no text"
cat >feed.hl7 <<'EOF'
MSH|^~\&|PHARM|HOSP|PV|PV|20260101080000||RDE^O11^RDE_O11|DC-1|P|2.5.1
PID|1||H1^^^HOSP^MR
ORC|NW|ORD-H1
TQ1|1||||||20260101080000
RXE||2047241^^RXNORM|2||mg
MSH|^~\&|PHARM|HOSP|PV|PV|20260101080000||RAS^O17^RAS_O17|DC-2|P|2.5.1
PID|1||H2^^^HOSP^MR
ORC|RE|ORD-H2
RXA|0|1|20260101090000||00002447930^^NDC|4|mg
MSH|^~\&|LIS|LAB|PV|PV|20260201120000||ORU^R01^ORU_R01|DC-3|P|2.5.1
PID|1||H1^^^HOSP^MR
OBR|1|L1|F1|57021-8^CBC^LN|||20260201080000
OBX|1|NM|751-8^Neutrophils^LN||0.7|10*9/L|1.5-7.0|L|||F
PID|1||H2^^^HOSP^MR
OBR|2|L2|F2|57021-8^CBC^LN|||20260201080000
OBX|1|NM|751-8^Neutrophils^LN||0.7|10*9/L|1.5-7.0|L|||F
EOF
pv ingest -c pv.lua feed.hl7
assert_eq 0 "$RC" "the HL7 file is stored: $ERR"
for p in H1 H2; do
    assert_eq "1|3" "$(q "SELECT count(*), grade FROM alerts WHERE patient_id = '$p' AND rule = 'baricitinib.neutropenia'")" \
        "$p: baricitinib by code in HL7 reaches the neutropenia rule"
done

# ---------------------------------------------------------------------------
section "a site module extends the immunosuppressants; the pack is untouched"
# voclosporin and its ATC code L04AD03 are an example (UNVERIFIED).
cp "$PV_SOURCE_DIR/examples/site.lua" site/site.lua
mkdir -p sitecase && cd sitecase || exit 1
CFG_PLUGINS=$T/pack write_config pv.lua "scripts = { \"$PV_SOURCE_DIR/scripts\", \"$T/site\" }"
cat >meds.csv <<'EOF'
patient_id,drug,start,drug_code,code_system
S-VOC,,2026-01-01,L04AD03,ATC
S-VOC,Olumiant 2 MG Oral Tablet,2026-02-01,,
S-TXT,Lupkynis 7.9 mg capsule,2026-01-01,,
S-TXT,baricitinib,2026-02-01,,
EOF
pv ingest -c pv.lua meds.csv
assert_eq 0 "$RC" "ingest with the site module: $ERR"
assert_eq "1|combination:voclosporin" "$(q "SELECT count(*), dedup_key FROM alerts WHERE patient_id = 'S-VOC' AND rule = 'baricitinib.combination'")" \
    "voclosporin by ATC is an immunosuppressant for the pack's rule"
assert_eq "1|Baricitinib combined with voclosporin (a potent immunosuppressant)" \
    "$(q "SELECT count(*), title FROM alerts WHERE patient_id = 'S-TXT' AND rule = 'baricitinib.combination'")" \
    "and by its brand name in the drug text"
cd "$T" || exit 1

section "a misspelt set in the site module: check names the site line"
printf 'local codes = require "codes"\ncodes.extend("immunosupressants", { "voclosporin" })\n' >site/site.lua
CFG_PLUGINS=$T/pack write_config bad_site.lua "scripts = { \"$PV_SOURCE_DIR/scripts\", \"$T/site\" }"
pv check -c bad_site.lua
assert_eq 2 "$RC" "check fails"
assert_match "site/site\\.lua:2: codes\\.extend\\('immunosupressants'\\): unknown set 'immunosupressants'" \
    "$OUT$ERR" "the error names the site file, line and set"
rm site/site.lua

# ---------------------------------------------------------------------------
section "triggers that can never fire: check names the file and the rule"
mkdir -p never
cat >never/empty.lua <<'EOF'
return pv.rule { name = "never.empty", signal = "test",
  on = { exposure = "" },
  when = function() return nil end }
EOF
cat >never/typo.lua <<'EOF'
return pv.rule { name = "never.typo", signal = "test",
  on = { lab = "neutrophils", exposure = "baricitnib" },
  when = function() return nil end }
EOF
cat >never/none.lua <<'EOF'
return pv.rule { name = "never.none", signal = "test", on = {},
  when = function() return nil end }
EOF
CFG_PLUGINS=$T/never write_config never.lua
pv check -c never.lua
assert_eq 2 "$RC" "check fails on triggers that can never fire"
assert_match "never/empty\\.lua: rule never\\.empty: on\\.exposure is empty" "$OUT$ERR" "exposure = \"\""
assert_match "never/typo\\.lua(:[0-9]+)?: rule never\\.typo: on\\.exposure 'baricitnib' is a drug no code set knows" \
    "$OUT$ERR" "a misspelt drug"
assert_match "never/none\\.lua(:[0-9]+)?: rule never\\.none: 'on' names no trigger" "$OUT$ERR" "on = {}"

# ---------------------------------------------------------------------------
section "a reload with such a trigger fails and keeps the old rules"
mkdir -p live/plugins && cd live || exit 1
cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" plugins/
CFG_PLUGINS=$T/live/plugins write_config pv.lua
start_pv run run -c pv.lua
expect_running run
cp plugins/cytopenia.lua cytopenia.good
sed 's/exposure = "baricitinib" }/exposure = "" }/' cytopenia.good >plugins/cytopenia.lua
assert_ne "$(cat cytopenia.good)" "$(cat plugins/cytopenia.lua)" "the plugin now has an empty trigger"
before=$(grep -c 'reload failed' run.err)
kill -HUP "$PV_PID"
check_wait "[ \$(grep -c 'reload failed' run.err) -gt $before ]" 15 "SIGHUP: the reload fails"
assert_match "cytopenia\\.lua(:[0-9]+)?: rule baricitinib\\..*: on\\.exposure is empty" "$(cat run.err)" \
    "the log names the file and the rule"
printf 'patient_id,drug,start,drug_code,code_system\nL1,,2026-01-01,L04AF02,ATC\n' >m.csv
printf 'patient_id,code,value,unit,observed_at\nL1,751-8,0.8,10*9/L,2026-02-01T08:00:00Z\n' >l.csv
mkdir -p inbox
mv m.csv inbox/m.csv
check_wait "[ \"\$(q \"SELECT count(*) FROM exposures WHERE patient_id = 'L1'\")\" = 1 ]" 15 "the medications file is stored"
mv l.csv inbox/l.csv
check_wait "[ \"\$(q \"SELECT count(*) FROM alerts WHERE patient_id = 'L1' AND rule = 'baricitinib.neutropenia'\")\" = 1 ]" 15 \
    "the old rules still raise the alert"
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch stops cleanly"

finish
