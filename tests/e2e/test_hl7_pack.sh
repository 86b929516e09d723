#!/usr/bin/env bash
# End to end (issue 14 proof; issue 15 items 3 and 7): the facts of a
# pemphigus patient on baricitinib sent as HL7 over MLLP to 'pvwatch run'
# by the @medplum/hl7 client (tests/e2e/npm/, TESTING.md) — RDE orders
# (v2.5.1 TQ1 and v2.3 RXE-1 timing), a VXU with a live vaccine, an ORU
# with a low ANC, an ADT^A03 with DG1 diagnoses, PID-29/PID-30 and PV1-36
# "expired" — and a second patient's RGV^O15 administration, RDS^O13
# dispense and OUL^R22 result. Checks the ACKs, the rows (start_source, the
# death event) and the alerts of baricitinib.live_vaccine, .death,
# .combination, .malignancy, .gi_perforation and .neutropenia, and that a
# rule sees exp.start_source. A v2.2 message is AR with an ERR naming the
# version.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NPM=$PV_SOURCE_DIR/tests/e2e/npm
if ! command -v node >/dev/null 2>&1; then
    echo "node is not installed (TESTING.md: Node.js 20 and npm)" >&2
    exit 1
fi
if [ ! -d "$NPM/medplum/node_modules" ]; then
    (cd "$NPM/medplum" && timeout 300 npm ci --silent --no-audit --no-fund) >&2 || {
        echo "cannot install the npm peer in $NPM/medplum (npm ci)" >&2
        exit 1
    }
fi

# ---------------------------------------------------------------------------
section "start pvwatch run with the whole pack and a probe rule"
mkdir -p inbox plugins
cp "$PV_SOURCE_DIR"/plugins/*.lua plugins/
# The probe: each exposure of baricitinib, azathioprine or tofacitinib
# raises a low alert naming its start_source and those of the patient's
# stored exposures (patient:exposures()).
cat >plugins/probe.lua <<'LUA'
return pv.rule {
  name = "test.start_source",
  signal = "test",
  description = "names exp.start_source",
  on = { exposure = { "baricitinib", "azathioprine", "tofacitinib" } },
  when = function(e, patient)
    local all = {}
    for _, x in ipairs(patient:exposures()) do
      all[#all + 1] = x.drug .. "=" .. tostring(x.start_source)
    end
    table.sort(all)
    return pv.alert { severity = "low", title = "start source",
      detail = tostring(e.start_source) .. " / " .. table.concat(all, ","),
      key = e.drug .. ":" .. pv.date(e.start) }
  end,
}
LUA
CFG_PLUGINS=$T/plugins write_config pv.lua
start_pv pv run -c pv.lua
check_wait "grep -q 'MLLP listening on 127.0.0.1:[0-9]' pv.err" 15 "pvwatch names its MLLP port"
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
if [ -z "$PORT" ]; then
    cat pv.err >&2
    finish
fi

# ---------------------------------------------------------------------------
section "the messages, written from the HL7 v2.5.1 segment definitions"
# PID-29 / PID-30 and PV1-36 / PV1-45 stand at their field numbers: the
# runs of '|' are counted, not typed.
bars() { printf '%*s' "$1" '' | tr ' ' '|'; }
ADT_PID="PID|1||E1^^^HOSP^MR||Doe^Ann||19700101|F$(bars 21)20260301040000|Y"
ADT_PV1="PV1|1|I$(bars 34)20$(bars 9)20260301060000"
cat >feed.hl7 <<EOF
MSH|^~\\&|PHARM|HOSP|PV|PV|20260101080000||RDE^O11^RDE_O11|E-RDE-1|P|2.5.1
PID|1||E1^^^HOSP^MR||Doe^Ann||19700101|F
ORC|NW|ORD-B1
TQ1|1||||||20260101080000
RXE||OLU4^baricitinib 4 MG Oral Tablet^L|4||mg
RXR|PO
MSH|^~\\&|PHARM|HOSP|PV|PV|20260101090000||RDE^O11|E-RDE-2|P|2.3
PID|1||E1^^^HOSP^MR
ORC|NW|ORD-A1
RXE|1^QD^^20251201|AZA50^azathioprine 50 MG Oral Tablet^L|50||mg
MSH|^~\\&|EHR|CLINIC|IIS|STATE|20260201100000||VXU^V04^VXU_V04|E-VXU-1|P|2.5.1
PID|1||E1^^^HOSP^MR
ORC|RE||IZ-1
RXA|0|1|20260201093000||03^MMR^CVX|999|||00^New record^NIP001|||||||||||CP|A
MSH|^~\\&|LIS|LAB|PV|PV|20260210120000||ORU^R01^ORU_R01|E-ORU-1|P|2.5.1
PID|1||E1^^^HOSP^MR
OBR|1|ORD-L1|FIL-L1|57021-8^CBC^LN|||20260210080000
OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|1.5-7.0|LL|||F
MSH|^~\\&|ADT|HOSP|PV|PV|20260301070000||ADT^A03^ADT_A03|E-ADT-1|P|2.5.1
EVN|A03|20260301065000
$ADT_PID
$ADT_PV1
DG1|1||C83.3^Diffuse large B-cell lymphoma^I10||20260220|F
DG1|2||K63.1^Perforation of intestine^I10||20260228|F$(bars 9)1
MSH|^~\\&|PHARM|HOSP|PV|PV|20260105080000||RGV^O15^RGV_O15|E-RGV-1|P|2.5.1
PID|1||E2^^^HOSP^MR
ORC|RE|ORD-B2
RXG|1|||OLU2^baricitinib 2 MG Oral Tablet^L|2||mg
TQ1|1||||||20260105080000
RXR|PO
MSH|^~\\&|PHARM|HOSP|PV|PV|20260112080000||RDS^O13^RDS_O13|E-RDS-1|P|2.5.1
PID|1||E2^^^HOSP^MR
ORC|RE|ORD-T2
RXD|1|TOF5^tofacitinib 5 MG Oral Tablet^L|20260110100000|56|TAB$(bars 11)5|mg
RXR|PO
MSH|^~\\&|LIS|LAB|PV|PV|20260115120000||OUL^R22^OUL_R22|E-OUL-1|P|2.5.1
PID|1||E2^^^HOSP^MR
SPM|1|SP-1||119297000^Blood specimen^SCT
OBR|1|ORD-L2|FIL-L2|57021-8^CBC^LN|||20260115080000
OBX|1|NM|751-8^Neutrophils^LN||0.3|10*9/L|1.5-7.0|LL|||F
MSH|^~\\&|OLD|LAB|PV|PV|198801010800||ORU^R01|E-OLD-1|P|2.2
PID|1||E3^^^LAB^MR
OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||F
EOF
timeout 90 node "$NPM/medplum/send.mjs" 127.0.0.1 "$PORT" --timeout 20000 feed.hl7 >acks.json 2>acks.err
NODE_RC=$?
[ "$NODE_RC" = 0 ] || cat acks.json acks.err >&2
assert_eq 0 "$NODE_RC" "medplum client got an ACK for every message"
assert_eq "AA AA AA AA AA AA AA AA AR" "$(jsonl acks.json '" ".join(str(x.get("code")) for x in L)')" \
    "MSA-1: AA for each message, AR for the v2.2 one"
assert_match "HL7 version '2.2' in MSH-12 is not supported" "$(jsonl acks.json 'L[-1]["error"]')" \
    "the AR's ERR-8 names the version"

# ---------------------------------------------------------------------------
section "the rows"
assert_eq "azathioprine 50 MG Oral Tablet|2025-12-01T00:00:00Z|RXE-1
baricitinib 4 MG Oral Tablet|2026-01-01T08:00:00Z|TQ1-7
MMR|2026-02-01T09:30:00Z|RXA-3" \
    "$(q "SELECT drug, start_at, start_source FROM exposures WHERE patient_id = 'E1' ORDER BY start_at")" \
    "E1: exposures with their start and where it came from"
assert_eq "03|CVX|" "$(q "SELECT drug_code, code_system, dose FROM exposures WHERE patient_id = 'E1' AND drug = 'MMR'")" \
    "VXU: CVX code kept, RXA-6 999 is no dose"
assert_eq "K63.1|2026-03-01T04:00:00Z|1" \
    "$(q "SELECT code, onset_at, serious FROM events WHERE patient_id = 'E1' AND outcome = 'fatal'")" \
    "ADT: the death, its cause the principal DG1, at PID-29"
assert_eq 2 "$(q "SELECT count(*) FROM events WHERE patient_id = 'E1' AND outcome IS NULL")" \
    "ADT: both DG1 stored as conditions"
assert_eq "baricitinib 2 MG Oral Tablet|2.0|2026-01-05T08:00:00Z|TQ1-7
tofacitinib 5 MG Oral Tablet|5.0|2026-01-10T10:00:00Z|RXD-3" \
    "$(q "SELECT drug, dose, start_at, start_source FROM exposures WHERE patient_id = 'E2' ORDER BY drug")" \
    "E2: RGV (RXG + TQ1) and RDS (RXD-3, RXD-16 strength) exposures"
assert_eq "0.3|2026-01-15T08:00:00Z" \
    "$(q "SELECT value_num, observed_at FROM observations WHERE patient_id = 'E2' AND code = '751-8'")" \
    "E2: the OUL^R22 result"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE patient_id = 'E3'")" "the v2.2 message: no rows"

# ---------------------------------------------------------------------------
section "the alerts"
alert() { q "SELECT severity FROM alerts WHERE patient_id = '$1' AND rule = '$2'"; }
assert_eq high "$(alert E1 baricitinib.live_vaccine)" "E1: live vaccine (MMR, CVX 03) on baricitinib"
assert_eq high "$(alert E1 baricitinib.combination)" "E1: baricitinib with azathioprine"
assert_eq critical "$(alert E1 baricitinib.death)" "E1: death while exposed"
assert_eq high "$(alert E1 baricitinib.malignancy)" "E1: lymphoma (C83.3) while exposed"
assert_eq critical "$(alert E1 baricitinib.gi_perforation)" "E1: GI perforation (K63.1) while exposed"
assert_ne "" "$(alert E1 baricitinib.neutropenia)" "E1: ANC 0.4 from the ORU"
assert_ne "" "$(alert E2 baricitinib.neutropenia)" "E2: ANC 0.3 from the OUL^R22"
assert_eq high "$(alert E2 baricitinib.combination)" "E2: baricitinib (RGV) with tofacitinib (RDS)"
assert_match "MMR" "$(q "SELECT detail FROM alerts WHERE patient_id = 'E1' AND rule = 'baricitinib.live_vaccine'")" \
    "the live-vaccine alert names the vaccine"
assert_eq "RXD-3 / baricitinib 2 MG Oral Tablet=TQ1-7,tofacitinib 5 MG Oral Tablet=RXD-3" \
    "$(q "SELECT detail FROM alerts WHERE patient_id = 'E2' AND rule = 'test.start_source' AND dedup_key LIKE 'tofacitinib%'")" \
    "a rule sees exp.start_source, on the fact and in patient:exposures()"
check_wait "grep -q '\"baricitinib.death\"' alerts.jsonl" 10 "the death alert is in the alert log"

stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
finish
