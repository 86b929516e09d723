#!/usr/bin/env bash
# End to end: CSV layouts users bring (issue 15 items 10 and 11): OMOP CDM
# v5.4 tables (a generated extract with the CDM's lower-case column names,
# and a Eunomia-style one with upper-case headers) and configured layouts
# (csv.layouts) through ingest, the inbox and `ingest --explain`; their
# rows reach the rules (a low ANC of an exposed person raises the
# neutropenia alert) and bad rows are named by file, line, field, reason.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RULE=baricitinib.neutropenia
alerts_of() { q "SELECT count(*) FROM alerts WHERE patient_id='$1' AND rule='$RULE'"; }

# ---------------------------------------------------------------------------
section "OMOP CDM v5.4 extract (CDM column names and order)"
mkdir omop && cd omop || exit 1
write_config pv.lua
cat >person.csv <<'EOF'
person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,birth_datetime,race_concept_id,ethnicity_concept_id,location_id,provider_id,care_site_id,person_source_value,gender_source_value,gender_source_concept_id,race_source_value,race_source_concept_id,ethnicity_source_value,ethnicity_source_concept_id
1,8532,1961,4,12,,8527,38003564,,,,p1,F,0,white,0,nonhispanic,0
2,8507,1955,,,,8527,38003564,,,,p2,M,0,white,0,nonhispanic,0
3,8532,1970,6,1,1970-06-01 00:00:00,8527,38003564,,,,p3,F,0,white,0,nonhispanic,0
4,8507,1980,1,1,,8527,38003564,,,,p4,M,0,white,0,nonhispanic,0
x,8507,1980,1,1,,8527,38003564,,,,p5,M,0,white,0,nonhispanic,0
EOF
cat >observation_period.csv <<'EOF'
observation_period_id,person_id,observation_period_start_date,observation_period_end_date,period_type_concept_id
1,1,2020-01-01,2026-06-30,32817
2,4,2020-01-01,2026-06-30,32817
EOF
# 1: RxNorm ingredient 2047232 as the source value (domain §3.2);
# 2: by name; 3: by OMOP concept id only (domain §3.2 CURE-ID ids);
# 4: another drug; line 6: an end before the start.
cat >drug_exposure.csv <<'EOF'
drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_exposure_start_datetime,drug_exposure_end_date,drug_exposure_end_datetime,verbatim_end_date,drug_type_concept_id,stop_reason,refills,quantity,days_supply,sig,route_concept_id,lot_number,provider_id,visit_occurrence_id,visit_detail_id,drug_source_value,drug_source_concept_id,route_source_value,dose_unit_source_value
11,1,1510627,2026-01-05,,2026-12-31,,,38000177,,0,30,30,,4132161,,,,,2047232,0,oral,mg
12,2,0,2026-01-05,,,,,38000177,,0,30,30,,4132161,,,,,Olumiant 2 MG Oral Tablet,0,oral,mg
13,3,1510632,2026-01-05,,,,,38000177,,0,30,30,,4132161,,,,,,0,oral,mg
14,4,1118084,2026-01-05,,,,,38000177,,0,30,30,,4132161,,,,,197361,0,oral,mg
15,4,1510632,2026-03-05,,2026-02-01,,,38000177,,0,30,30,,4132161,,,,,,0,oral,mg
EOF
cat >measurement.csv <<'EOF'
measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,measurement_time,measurement_type_concept_id,operator_concept_id,value_as_number,value_as_concept_id,unit_concept_id,range_low,range_high,provider_id,visit_occurrence_id,visit_detail_id,measurement_source_value,measurement_source_concept_id,unit_source_value,unit_source_concept_id,value_source_value,measurement_event_id,meas_event_field_concept_id
101,1,3013650,2026-02-10,2026-02-10 08:30:00,,32856,,0.4,,8848,1.8,7.7,,,,751-8,3013650,10*3/uL,,0.4,,
102,2,3013650,2026-02-10,,,32856,,0.4,,8848,,,,,,751-8,0,10*3/uL,,0.4,,
103,3,3013650,2026-02-10,,,32856,,0.4,,8848,,,,,,751-8,0,10*3/uL,,,,
104,4,3013650,2026-02-10,,,32856,,0.4,,8848,,,,,,751-8,0,10*3/uL,,,,
105,1,3013650,2026-02-30,,,32856,,0.4,,8848,,,,,,751-8,0,10*3/uL,,,,
106,1,3013650,2026-02-11,,,32856,,lots,,8848,,,,,,751-8,0,10*3/uL,,,,
107,1,0,2026-02-11,,,32856,,1.1,,8848,,,,,,,0,10*3/uL,,,,
108,1,3013650,2026-02-12,,,32856,4171756,0.5,,8848,,,,,,,0,10*3/uL,,,,
EOF
cat >condition_occurrence.csv <<'EOF'
condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_start_datetime,condition_end_date,condition_end_datetime,condition_type_concept_id,condition_status_concept_id,stop_reason,provider_id,visit_occurrence_id,visit_detail_id,condition_source_value,condition_source_concept_id,condition_status_source_value
201,1,4110056,2026-02-15,,,,32020,0,,,,,B02.9,0,
202,2,4110056,2026-02-15,,,,32020,0,,,,,4740000,0,
EOF
cat >death.csv <<'EOF'
person_id,death_date,death_datetime,death_type_concept_id,cause_concept_id,cause_source_value,cause_source_concept_id
3,2026-03-01,,32817,0,,0
EOF
pv ingest -c pv.lua person.csv observation_period.csv drug_exposure.csv measurement.csv condition_occurrence.csv death.csv
assert_eq 3 "$RC" "OMOP extract with bad rows: exit 3"
assert_eq "F|1961-04-12,M|1955-01-01,F|1970-06-01" \
    "$(q "SELECT group_concat(sex || '|' || birth_date) FROM (SELECT * FROM patients WHERE id IN ('1','2','3') ORDER BY id)")" \
    "person: sex from gender_concept_id, birth date from year/month/day or birth_datetime"
assert_match "person\\.csv:6: person_id 'x' is not an integer" "$ERR" "person: a bad person_id is named"
assert_match "drug_exposure\\.csv:6: drug_exposure_end_date is before" "$ERR" "drug_exposure: end before start rejected"
assert_eq "2047232|RXNORM" "$(q "SELECT drug_code || '|' || code_system FROM exposures WHERE patient_id='1'")" \
    "drug_exposure: RxNorm source value kept as the code"
assert_eq "drug_exposure_start_date" "$(q "SELECT start_source FROM exposures WHERE patient_id='1'")" \
    "drug_exposure: start_source names the column"
assert_eq "Olumiant 2 MG Oral Tablet" "$(q "SELECT drug FROM exposures WHERE patient_id='2'")" "drug_exposure: name source value"
assert_eq "1510632|OMOP" "$(q "SELECT drug_code || '|' || code_system FROM exposures WHERE patient_id='3'")" \
    "drug_exposure: concept id kept when there is no source code"
assert_match "measurement\\.csv:6: measurement_date '2026-02-30'" "$ERR" "measurement: impossible date named"
assert_match "measurement\\.csv:7: value_as_number 'lots' is not a number" "$ERR" "measurement: bad number named"
assert_match "measurement\\.csv:8: measurement_concept_id is 0 and measurement_source_value is empty" "$ERR" \
    "measurement: no code at all named"
assert_eq "751-8|LN|0.4|10*3/uL|1.8|7.7" \
    "$(q "SELECT code || '|' || code_system || '|' || value_num || '|' || unit || '|' || ref_low || '|' || ref_high FROM observations WHERE patient_id='1' AND observed_at LIKE '2026-02-10%'")" \
    "measurement: LOINC source value, unit_source_value, range"
assert_eq "3013650|OMOP|<" "$(q "SELECT code || '|' || code_system || '|' || comparator FROM observations WHERE patient_id='1' AND observed_at LIKE '2026-02-12%'")" \
    "measurement: the concept id without a LOINC source, operator_concept_id 4171756 is '<'"
for pid in 1 2 3; do
    assert_eq 1 "$(alerts_of $pid)" "person $pid exposed to baricitinib (RxNorm/name/OMOP) with ANC 0.4: neutropenia alert"
done
assert_eq 0 "$(alerts_of 4)" "person 4, not exposed: no neutropenia alert"
assert_eq "B02.9|ICD10CM" "$(q "SELECT code || '|' || code_system FROM events WHERE patient_id='1'")" "condition: ICD-10 source value"
assert_eq "4110056|OMOP" "$(q "SELECT code || '|' || code_system FROM events WHERE patient_id='2'")" "condition: concept id when the source is not ICD-10"
assert_eq "R99|fatal" "$(q "SELECT code || '|' || outcome FROM events WHERE patient_id='3'")" "death: R99, outcome fatal"
pv ingest --explain drug_exposure.csv
assert_match "OMOP CDM v5.4 table drug_exposure" "$OUT" "--explain names the OMOP table"
cd .. || exit 1

# ---------------------------------------------------------------------------
section "Eunomia-style layout: upper-case CDM headers"
mkdir eunomia && cd eunomia || exit 1
write_config pv.lua
cat >DRUG_EXPOSURE.csv <<'EOF'
DRUG_EXPOSURE_ID,PERSON_ID,DRUG_CONCEPT_ID,DRUG_EXPOSURE_START_DATE,DRUG_EXPOSURE_START_DATETIME,DRUG_EXPOSURE_END_DATE,DRUG_EXPOSURE_END_DATETIME,VERBATIM_END_DATE,DRUG_TYPE_CONCEPT_ID,STOP_REASON,REFILLS,QUANTITY,DAYS_SUPPLY,SIG,ROUTE_CONCEPT_ID,LOT_NUMBER,PROVIDER_ID,VISIT_OCCURRENCE_ID,VISIT_DETAIL_ID,DRUG_SOURCE_VALUE,DRUG_SOURCE_CONCEPT_ID,ROUTE_SOURCE_VALUE,DOSE_UNIT_SOURCE_VALUE
1,6,1510632,2026-01-10,2026-01-10 00:00:00,2026-12-31,2026-12-31 00:00:00,,38000177,,0,0,30,,0,0,0,0,0,2047232,0,,
EOF
cat >MEASUREMENT.csv <<'EOF'
MEASUREMENT_ID,PERSON_ID,MEASUREMENT_CONCEPT_ID,MEASUREMENT_DATE,MEASUREMENT_DATETIME,MEASUREMENT_TIME,MEASUREMENT_TYPE_CONCEPT_ID,OPERATOR_CONCEPT_ID,VALUE_AS_NUMBER,VALUE_AS_CONCEPT_ID,UNIT_CONCEPT_ID,RANGE_LOW,RANGE_HIGH,PROVIDER_ID,VISIT_OCCURRENCE_ID,VISIT_DETAIL_ID,MEASUREMENT_SOURCE_VALUE,MEASUREMENT_SOURCE_CONCEPT_ID,UNIT_SOURCE_VALUE,UNIT_SOURCE_CONCEPT_ID,VALUE_SOURCE_VALUE
1,6,3013650,2026-02-01,2026-02-01 00:00:00,,5001,0,0.3,0,8848,0,0,0,0,0,751-8,3013650,10*3/uL,0,0.3
EOF
pv ingest -c pv.lua DRUG_EXPOSURE.csv MEASUREMENT.csv
assert_eq 0 "$RC" "Eunomia-style files ingested: exit 0"
assert_eq 1 "$(alerts_of 6)" "Eunomia-style: low ANC of the exposed person raises the neutropenia alert"
cd .. || exit 1

# ---------------------------------------------------------------------------
section "configured layout (csv.layouts): check, ingest, explain, inbox"
mkdir mapped && cd mapped || exit 1
LAYOUT='csv = { layouts = { { match = "simplereport*.csv", kind = "labs",
  columns = { patient_id = "Patient ID", code = "Test performed code", value = "Test result",
              unit = "Result units", observed_at = "Test date" },
  time_format = "%m/%d/%Y %H:%M" },
  { match = "feed.csv", kind = "labs", time_format = "%d.%m.%Y %H:%M",
    columns = { patient_id = "PID", code = "LOINC", value = "Wert", unit = "Einheit", observed_at = "Zeit" } } } }'
write_config pv.lua "$LAYOUT"
pv check -c pv.lua
assert_eq 0 "$RC" "pvwatch check accepts the layout ($ERR)"
cat >meds.csv <<'EOF'
patient_id,drug,start
SR1,baricitinib,2026-01-01
SR2,baricitinib,2026-01-01
EOF
cat >simplereport_2026.csv <<'EOF'
Patient ID,Patient name,Test performed code,Test result,Result units,Test date
SR1,Doe,751-8,400,cells/mm3,02/03/2026 14:05
SR1,Doe,751-8,400,cells/mm3,2026-02-03
,Doe,751-8,400,cells/mm3,02/04/2026 14:05
EOF
pv ingest -c pv.lua meds.csv simplereport_2026.csv
assert_eq 3 "$RC" "mapped file with bad rows: exit 3"
assert_eq "2026-02-03T14:05:00Z" "$(q "SELECT observed_at FROM observations WHERE patient_id='SR1'")" "time_format applied"
assert_match "simplereport_2026\\.csv:3: Test date '2026-02-03' does not match time_format" "$ERR" "bad time named by its header"
assert_match "simplereport_2026\\.csv:4: Patient ID is empty" "$ERR" "empty required column named by its header"
assert_eq 1 "$(alerts_of SR1)" "mapped layout: ANC 400 on baricitinib raises the neutropenia alert"
pv ingest -c pv.lua --explain simplereport_2026.csv
assert_match "configured layout csv.layouts match = 'simplereport\\*\\.csv' \\(kind labs" "$OUT" "--explain names the configured layout"
printf 'Patient Id,Test performed cod,Test result,Result units,Test date\nX,1,2,3,4\n' >simplereport_bad.csv
pv ingest -c pv.lua --explain simplereport_bad.csv
assert_eq 3 "$RC" "--explain: no match, exit 3"
assert_match "missing 'Test performed code' \\(near: 'Test performed cod'\\)" "$OUT" "--explain: missing column with its near match"
printf 'PatientID,Value\n' >other.csv
pv ingest -c pv.lua --explain other.csv
assert_match "labs: missing 'patient_id' \\(near: 'PatientID'\\)" "$OUT" "--explain: built-in candidate with a near match"
assert_match "omop measurement: missing 'measurement_id'" "$OUT" "--explain: OMOP candidates listed"

start_pv run run -c pv.lua
expect_running run
mkdir -p stage
cat >stage/simplereport_inbox.csv <<'EOF'
Patient ID,Test performed code,Test result,Result units,Test date
SR2,751-8,300,cells/mm3,02/05/2026 09:00
EOF
mv stage/simplereport_inbox.csv inbox/
check_wait "[ -f inbox/processed/simplereport_inbox.csv ]" 15 "inbox: the mapped file is processed"
check_wait "[ \"\$(alerts_of SR2)\" = 1 ]" 10 "inbox: mapped row raises the neutropenia alert"
# tail: the followed feed.csv is read with its own layout.
printf 'PID,LOINC,Wert,Einheit,Zeit\nSR3,751-8,350,cells/mm3,06.02.2026 10:00\n' >feed.csv
printf 'patient_id,drug,start\nSR3,baricitinib,2026-01-01\n' >stage/meds3.csv
mv stage/meds3.csv inbox/
check_wait "[ \"\$(q \"SELECT count(*) FROM observations WHERE patient_id='SR3' AND observed_at='2026-02-06T10:00:00Z'\")\" = 1 ]" 15 \
    "tail: the followed file's row is mapped with its layout's time_format"
check_wait "[ \"\$(alerts_of SR3)\" = 1 ]" 10 "tail: mapped row raises the neutropenia alert"
stop_pv "$PV_PID"
cd .. || exit 1

# ---------------------------------------------------------------------------
section "pvwatch check: bad csv.layouts entries"
mkdir badcfg && cd badcfg || exit 1
check_cfg() {
    write_config pv.lua "csv = { layouts = { $1 } }"
    pv check -c pv.lua
    assert_ne 0 "$RC" "$3: check fails"
    assert_match "$2" "$ERR" "$3: the reason"
}
check_cfg '{ match = "a*.csv", kind = "labs", columns = { patient_id = "P", code = "C", value = "V", unit = "U", observed_at = "T", colour = "X" } }' \
    "unknown column key 'colour' for kind labs" "unknown column key"
check_cfg '{ match = "a*.csv", kind = "labs", columns = { patient_id = "P" } }' \
    "columns lack 'code', which kind labs requires" "missing required column"
check_cfg '{ match = "a*.csv", kind = "labs", columns = { patient_id = "P", code = "C", value = "V", unit = "U", observed_at = "T" }, time_format = "%H:%M" }' \
    "needs a year, a month and a day" "time_format without a date"
check_cfg '{ match = "a*.csv", kind = "labs", columns = { patient_id = "P", code = "C", value = "V", unit = "U", observed_at = "T" }, time_format = "%Q" }' \
    "%Q is not supported" "bad time_format conversion"
check_cfg '{ match = "a[b.csv", kind = "labs", columns = { patient_id = "P", code = "C", value = "V", unit = "U", observed_at = "T" } }' \
    "'\\[' is never closed" "bad glob"
check_cfg '{ match = "a*.csv", kind = "vitals", columns = {} }' "kind 'vitals' is not labs" "bad kind"
check_cfg '{ match = "a*.csv", kind = "labs", colums = {} }' "unknown key 'colums'" "unknown layout key"
cd .. || exit 1

finish
