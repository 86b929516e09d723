/* test_hl7_map: HL7 v2 messages to facts (DESIGN "Feeds", HL7 part),
 * through pv_ingest_hl7 on an in-memory database without rules, with the
 * rows read back from SQLite. Covers the corpus messages the issue names
 * (NIST CBC, lipid, ESR final + corrected, CDC newborn screening, RDE, RAS,
 * VXU, ADT with DG1), SN values, the OBX-14 -> OBR-7 -> MSH-7 time
 * fallback, D deletions, the PID-3 assigning authority, AE and AR with
 * their ERR codes, ACKs never answered, duplicates, and every file of
 * corpus/hl7 and corpus/hl7/malformed split and ingested without a crash,
 * each message answered AA, AE or AR with a reason. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "hl7.h"
#include "ingest.h"
#include "map_hl7.h"
#include "store.h"
#include "test.h"

#include "hl7_fixture.h"

static char corpus[PATH_MAX];

/* The single message of a corpus file. */
static struct out ingest_corpus(const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", corpus, name);
    size_t len = 0;
    char *buf = slurp(path, &len);
    if (!buf) {
        PV_FAIL_("cannot read %s", path);
        struct out o = {.rc = -1, .ack = -2};
        return o;
    }
    struct out o = ingest(buf, len);
    free(buf);
    return o;
}

/* ---- The corpus messages the issue names ------------------------------ */

static void test_cbc(void)
{
    struct out o = ingest_corpus("oru_r01_nist_lri_cbc_diff_crlf.hl7");
    CHECK_INT(o.rc, 0);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 28);
    CHECK_INT(qi("SELECT count(*) FROM observations o JOIN messages m ON "
                 "m.id = o.message_id WHERE m.control_id = "
                 "'NIST-LRI-GU-002.00'"),
              28);
    CHECK_STR(q("SELECT source, type, status, rows_stored FROM messages "
                "WHERE control_id = 'NIST-LRI-GU-002.00'"),
              "hl7:^2.16.840.1.113883.3.72.5.20^ISO|^2.16.840.1.113883.3."
              "72.5.21^ISO|ORU^R01|accepted|28");
    /* Hemoglobin: value, unit (OBX-6.1), range "13 to 18", flag, status,
     * time from OBX-14 (-0800) in UTC. */
    CHECK_STR(q("SELECT code_system, name, value_num, value_text, unit, "
                "ref_low, ref_high, flag, status, observed_at FROM "
                "observations WHERE patient_id = 'PATID1234' AND code = "
                "'718-7'"),
              "LN|Hemoglobin [Mass/volume] in Blood|12.5|12.5|g/mL|13.0|18.0|"
              "L|F|2011-01-03T22:34:28Z");
    CHECK_STR(q("SELECT value_num, unit, ref_low, ref_high, flag FROM "
                "observations WHERE code = '26499-4'"),
              "58.0|10*3/uL|1.5|7.0|HH");
    /* CWE: the text of the coded value. */
    CHECK_STR(q("SELECT value_text, value_num FROM observations WHERE code "
                "= '38892-6'"),
              "Present ++ out of ++++|");
    CHECK_STR(q("SELECT birth_date, sex FROM patients WHERE id = "
                "'PATID1234'"),
              "1961-06-15|M");
}

static void test_lipid(void)
{
    struct out o = ingest_corpus("oru_r01_nist_lri_lipid_text_ranges_crlf.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 4);
    /* A free-text range gives no bounds, and is no error. */
    CHECK_STR(q("SELECT value_num, unit, ref_low, ref_high, observed_at FROM "
                "observations WHERE code = '2093-3'"),
              "196.0|mg/dL|||2011-05-31T20:35:51Z");
    CHECK_STR(q("SELECT ref_low, ref_high FROM observations WHERE code = "
                "'2089-1'"),
              "|");
    CHECK_STR(q("SELECT value_num, ref_low, ref_high FROM observations "
                "WHERE code = '2571-8'"),
              "100.0|40.0|160.0");
    CHECK_STR(q("SELECT value_num, ref_low, ref_high FROM observations "
                "WHERE code = '2085-9'"),
              "60.0|29.0|72.0");
}

static void test_esr_corrected(void)
{
    struct out f = ingest_corpus("oru_r01_nist_lri_esr_final_nte_crlf.hl7");
    CHECK_INT(f.ack, PV_HL7_AA);
    CHECK_INT(f.facts, 1);
    struct out c = ingest_corpus("oru_r01_nist_lri_esr_corrected_crlf.hl7");
    CHECK_INT(c.ack, PV_HL7_AA);
    CHECK_INT(c.facts, 1);
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = "
                 "'PATID1234' AND code = '30341-2'"),
              2);
    /* Exactly one current row for the code and time: the corrected one. */
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = "
                 "'PATID1234' AND code = '30341-2' AND observed_at = "
                 "'2011-03-31T22:05:51Z' AND status NOT IN ('W', 'D')"),
              1);
    CHECK_STR(q("SELECT value_num, flag, status FROM observations WHERE "
                "code = '30341-2' AND status NOT IN ('W', 'D')"),
              "20.0|H|C");
    CHECK_STR(q("SELECT o.value_num, o.status FROM observations o JOIN "
                "messages m ON m.id = o.message_id WHERE m.control_id = "
                "'NIST-LRI-GU-001.00'"),
              "10.0|W");

    /* D deletes the current result of that code and time. */
    struct out d = ingest_str(
        "MSH|^~\\&|NIST Test Lab APP|NIST Lab Facility|||20110601140551||"
        "ORU^R01|ESR-DELETE-1|T|2.5.1\r"
        "PID|1||PATID1234^^^NIST MPI^MR\r"
        "OBR|1|||30341-2^ESR^LN|||20110331140551-0800\r"
        "OBX|1|NM|30341-2^ESR^LN||20|mm/h|||||D|||20110331140551-0800\r");
    CHECK_INT(d.ack, PV_HL7_AA);
    CHECK_INT(d.facts, 0);
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE code = '30341-2' "
                 "AND status NOT IN ('W', 'D')"),
              0);
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE code = '30341-2' "
                 "AND status = 'D'"),
              1);
}

static void test_newborn(void)
{
    struct out o = ingest_corpus("oru_r01_newborn_screen_escapes_utf8_lf.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 149);
    /* UTF-8 unit, '<175' range, several OBR groups. */
    CHECK_STR(q("SELECT value_num, unit, ref_low, ref_high, observed_at FROM "
                "observations WHERE patient_id = '12345678' AND code = "
                "'29573-3'"),
              "77.5|µmol/L||175.0|2024-10-15T03:43:04Z");
    CHECK_STR(q("SELECT ref_low FROM observations WHERE code = '55827-0'"),
              "2.079");
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE code = '57719-7'"),
              42);
    /* \.br\ is a newline, \R\ the repetition separator. */
    CHECK_STR(q("SELECT instr(value_text, char(10)) > 0, instr(value_text, "
                "'TEST REG MEDICAL CENTER LAB ~M 57752') > 0, "
                "instr(value_text, char(92)) FROM observations WHERE code = "
                "'57724-7'"),
              "1|1|0");
    CHECK_STR(q("SELECT substr(value_text, 1, 17) FROM observations WHERE "
                "code = '57724-7'"),
              "ACTION REQUIRED\n\n");
    /* Only the alternate identifier (CE.4-6) is given. */
    CHECK_STR(q("SELECT code_system, name, value_text FROM observations "
                "WHERE code = '99717-5'"),
              "L|Accession Number|045-89-477/21-2024-21");
    /* A non-ASCII character inside a value. */
    CHECK(strstr(q("SELECT value_text FROM observations WHERE code = "
                   "'57703-1'"),
                 "pattern.\xe2\x80\xa0These") != NULL);
    CHECK_STR(q("SELECT observed_at FROM observations WHERE code = "
                "'50157-7'"),
              "2024-02-26T03:43:04Z");
}

static void test_rde(void)
{
    struct out o = ingest_corpus("rde_o11_ceftriaxone_subcomponents.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_STR(q("SELECT drug, drug_code, dose, dose_unit, start_at, end_at "
                "FROM exposures WHERE patient_id = '1234'"),
              "cefTRIAXone (ROCEPHIN) 2 g in sodium chloride 0.9 % 50 mL "
              "IVPB|DEFAULTMED|2.0|g|2021-04-07T19:13:42Z|");
}

/* Regression (crash test finding): in RDE_O11 v2.5 the encoded order's
 * TQ1 follows the RXE; its start time was ignored for MSH-7. */
static void test_rde_tq1_after_rxe(void)
{
    struct out o = ingest_str(
        "MSH|^~\\&|A|B|C|D|20260301||RDE^O11^RDE_O11|TQ1AFTER|P|2.5.1\r"
        "PID|1||TQ9^^^H\r"
        "ORC|NW|1\r"
        "RXE||baricitinib^baricitinib^L|4||mg\r"
        "TQ1|1||||||20260101|20260131\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q("SELECT start_at, end_at FROM exposures WHERE patient_id = "
                "'TQ9'"),
              "2026-01-01T00:00:00Z|2026-01-31T00:00:00Z");
}

static void test_ras(void)
{
    struct out o = ingest_corpus("ras_o17_field_escape_zsegs_unknown_seg.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 2);
    /* RXA-5 with escaped field separators, RXA-6/7, RXA-3 with a zone. */
    CHECK_STR(q("SELECT drug, drug_code, dose, dose_unit, start_at FROM "
                "exposures WHERE patient_id = '7000135' ORDER BY start_at"),
              "0001|Tylenol|http://acme.org/meds|0001|Tylenol|http://"
              "acme.org/meds|10.0|mg|2017-12-09T08:10:55Z");
    CHECK_INT(qi("SELECT count(*) FROM exposures WHERE patient_id = "
                 "'7000135' AND dose = 20 AND drug_code LIKE '0002|Advil|%'"),
              1);
}

static void test_vxu(void)
{
    struct out o = ingest_corpus("vxu_v04_hepb_cvx.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_STR(q("SELECT drug, drug_code, code_system, dose, dose_unit, "
                "start_at FROM exposures WHERE patient_id = 'PA123456'"),
              "HEPB-PEDIATRIC/ADOLESCENT|08|CVX|0.5|mL|2014-07-30T00:00:00Z");
    CHECK_STR(q("SELECT birth_date, sex FROM patients WHERE id = "
                "'PA123456'"),
              "2014-02-27|M");
    /* Refused (RXA-20 RE) or deleted (RXA-21 D): no exposure. */
    struct out r = ingest_str(
        "MSH|^~\\&|MyEMR|DE-000001|||20160701123030||VXU^V04|VXU-RE-1|P|"
        "2.6\r"
        "PID|1||PA-RE^^^MYEMR^MR\r"
        "RXA|0|1|20140730||08^HEPB^CVX|999||||||||||||||RE|A\r"
        "RXA|0|1|20140730||08^HEPB^CVX|999||||||||||||||CP|D\r");
    CHECK_INT(r.ack, PV_HL7_AA);
    CHECK_INT(r.facts, 0);
    CHECK_INT(qi("SELECT count(*) FROM exposures WHERE patient_id = 'PA-RE'"),
              0);
}

static void test_adt(void)
{
    /* The corpus ADT carries an ICD-9 diagnosis: kept with its system. */
    struct out o = ingest_corpus("adt_a01_empty_quotes_repeats.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_STR(q("SELECT code, code_system, term, onset_at FROM events WHERE "
                "patient_id = '2148790'"),
              "440.21|I9|ATHEROSCLEROSIS W/INT CLAUDCTN|2013-10-17T14:00:41Z");

    /* ICD-10 (I10 / I10C) gives ICD10CM; DG1-5 else EVN-2 else MSH-7. */
    o = ingest_str("MSH|^~\\&|ADT|HOSP|PV|PV|20260105080000||ADT^A01|ADT-1|P|"
                   "2.5\r"
                   "EVN|A01|20260104090000\r"
                   "PID|1||P-ADT^^^HOSP^MR||Doe^Jane||19600101|F\r"
                   "DG1|1||B02.9^Zoster without complications^I10||"
                   "20260103100000|A\r"
                   "DG1|2||J18.9^Pneumonia, unspecified^I10C|||A\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 2);
    CHECK_STR(q("SELECT code_system, term, onset_at FROM events WHERE "
                "patient_id = 'P-ADT' AND code = 'B02.9'"),
              "ICD10CM|Zoster without complications|2026-01-03T10:00:00Z");
    CHECK_STR(q("SELECT code_system, onset_at FROM events WHERE patient_id "
                "= 'P-ADT' AND code = 'J18.9'"),
              "ICD10CM|2026-01-04T09:00:00Z");
    o = ingest_str("MSH|^~\\&|ADT|HOSP|PV|PV|20260106080000||ADT^A08|ADT-2|P|"
                   "2.5\r"
                   "PID|1||P-ADT^^^HOSP^MR\r"
                   "DG1|1||I26.99^Pulmonary embolism^I10\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q("SELECT code_system, onset_at FROM events WHERE code = "
                "'I26.99'"),
              "ICD10CM|2026-01-06T08:00:00Z");
    /* Another ADT event: stored, no facts. */
    o = ingest_corpus("adt_a24_nonstandard_delimiters.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 0);
    /* An ADT without PID-3: AE. */
    o = ingest_str("MSH|^~\\&|ADT|HOSP|PV|PV|20260106080000||ADT^A01|ADT-3|P|"
                   "2.5\r"
                   "PID|1||\r"
                   "DG1|1||I26.99^Pulmonary embolism^I10\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.error, PV_HL7_ERR_REQUIRED_FIELD);
    CHECK(strstr(o.text, "PID-3") != NULL);
}

/* ---- Values, times, patients ------------------------------------------ */

static void test_sn(void)
{
    struct out o = ingest_str(
        "MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|SN-1|P|2.5.1\r"
        "PID|1||P-SN^^^L^MR\r"
        "OBR|1|||1988-5^CRP^LN|||20260201070000\r"
        "OBX|1|SN|1988-5^CRP^LN||<^0.5|mg/dL|0-5||||F\r"
        "OBX|2|SN|1989-3^Vit D^LN||>=^200|ng/mL|||||F\r"
        "OBX|3|SN|5196-1^HBsAg ratio^LN||^1^:^128||||||F\r"
        "OBX|4|SN|2345-7^Glucose^LN||^182|mg/dL|||||F\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 4);
    /* Comparator and number: the number is the value, the text keeps the
     * comparator. */
    CHECK_STR(q("SELECT value_num, comparator, value_text, ref_low, "
                "ref_high FROM observations WHERE patient_id = 'P-SN' AND "
                "code = '1988-5'"),
              "0.5|<|<^0.5|0.0|5.0");
    CHECK_STR(q("SELECT value_num, comparator, value_text FROM observations "
                "WHERE patient_id = 'P-SN' AND code = '1989-3'"),
              "200.0|>=|>=^200");
    /* A ratio is no single number. */
    CHECK_STR(q("SELECT value_num, comparator, value_text FROM observations "
                "WHERE patient_id = 'P-SN' AND code = '5196-1'"),
              "||^1^:^128");
    /* No comparator: a plain number. */
    CHECK_STR(q("SELECT value_num, comparator FROM observations WHERE "
                "patient_id = 'P-SN' AND code = '2345-7'"),
              "182.0|");
    /* The corpus SN sample. */
    o = ingest_corpus("oru_r01_glucose_sn_value.hl7");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q("SELECT value_num, unit, observed_at FROM observations WHERE "
                "patient_id = '555-44-4444' AND code = '1554-5'"),
              "182.0|mg/dl|2002-02-15T07:30:00Z");
}

static void test_time_fallback(void)
{
    /* OBX-14, else its OBR's OBR-7, else MSH-7 (with its zone). */
    struct out o = ingest_str(
        "MSH|^~\\&|LAB|L|PV|PV|202602011000-0500||ORU^R01|TIME-1|P|2.5.1\r"
        "PID|1||P-TIME^^^L^MR\r"
        "OBR|1|||57021-8^CBC^LN|||20260201083000\r"
        "OBX|1|NM|718-7^Hgb^LN||13.1|g/dL|||||F|||20260201081500\r"
        "OBX|2|NM|26499-4^ANC^LN||3.2|10*9/L|||||F\r"
        "OBR|2|||24331-1^Lipid^LN\r"
        "OBX|1|NM|2093-3^Chol^LN||180|mg/dL|||||F\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 3);
    CHECK_STR(q("SELECT observed_at FROM observations WHERE patient_id = "
                "'P-TIME' AND code = '718-7'"),
              "2026-02-01T08:15:00Z");
    CHECK_STR(q("SELECT observed_at FROM observations WHERE patient_id = "
                "'P-TIME' AND code = '26499-4'"),
              "2026-02-01T08:30:00Z");
    CHECK_STR(q("SELECT observed_at FROM observations WHERE patient_id = "
                "'P-TIME' AND code = '2093-3'"),
              "2026-02-01T15:00:00Z");
    /* No time anywhere: AE, nothing kept of it. */
    o = ingest_str("MSH|^~\\&|LAB|L|PV|PV|||ORU^R01|TIME-2|P|2.5.1\r"
                   "PID|1||P-NOTIME^^^L^MR\r"
                   "OBR|1|||57021-8^CBC^LN\r"
                   "OBX|1|NM|718-7^Hgb^LN||13.1|g/dL|||||F\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.error, PV_HL7_ERR_REQUIRED_FIELD);
    CHECK(strstr(o.text, "no observation time") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = "
                 "'P-NOTIME'"),
              0);
    CHECK_STR(q("SELECT status, source FROM messages WHERE control_id = "
                "'TIME-2'"),
              "rejected|rejected:hl7:LAB|L");
}

static void test_assigning_authority(void)
{
    static const char msg[] =
        "MSH|^~\\&|LAB|AA|PV|PV|20260201080000||ORU^R01|%s|P|2.5.1\r"
        "PID|1||111^^^HOSP_A^MR~222^^^HOSP_B&2.16.840.1.113883.19.5&ISO^MR\r"
        "OBR|1|||718-7^Hgb^LN|||20260201070000\r"
        "OBX|1|NM|718-7^Hgb^LN||%s|g/dL|||||F\r";
    char buf[512];
    /* Default: the first identifier. */
    snprintf(buf, sizeof buf, msg, "AUTH-1", "11.1");
    CHECK_INT(ingest_str(buf).ack, PV_HL7_AA);
    CHECK_STR(q("SELECT patient_id FROM observations WHERE value_num = "
                "11.1"),
              "111");
    /* mllp.assigning_authority names one by its namespace id... */
    cfg.mllp.assigning_authority = strdup("HOSP_B");
    snprintf(buf, sizeof buf, msg, "AUTH-2", "11.2");
    CHECK_INT(ingest_str(buf).ack, PV_HL7_AA);
    CHECK_STR(q("SELECT patient_id FROM observations WHERE value_num = "
                "11.2"),
              "222");
    /* ... or its universal id. */
    free(cfg.mllp.assigning_authority);
    cfg.mllp.assigning_authority = strdup("2.16.840.1.113883.19.5");
    snprintf(buf, sizeof buf, msg, "AUTH-3", "11.3");
    CHECK_INT(ingest_str(buf).ack, PV_HL7_AA);
    CHECK_STR(q("SELECT patient_id FROM observations WHERE value_num = "
                "11.3"),
              "222");
    /* An authority the message does not carry: the first identifier. */
    free(cfg.mllp.assigning_authority);
    cfg.mllp.assigning_authority = strdup("HOSP_C");
    snprintf(buf, sizeof buf, msg, "AUTH-4", "11.4");
    CHECK_INT(ingest_str(buf).ack, PV_HL7_AA);
    CHECK_STR(q("SELECT patient_id FROM observations WHERE value_num = "
                "11.4"),
              "111");
    free(cfg.mllp.assigning_authority);
    cfg.mllp.assigning_authority = NULL;
}

/* ---- The mapping alone (map_hl7.c, issue 20 part 3) ------------------- */

/* pv_hl7_map is pure: the message in, items out in message order (the
 * patient, a correction before the result that makes it, the skipped
 * segment named with its field and reason), and nothing stored. */
static void test_map_pure_items_in_order(void)
{
    static const char msg[] =
        "MSH|^~\\&|LAB|L|PV|PV|20261201080000||ORU^R01|PURE-1|P|2.5.1\r"
        "PID|1||PURE1^^^H^MR||Doe^Jane||19610615|F\r"
        "OBR|1|PL1|FI1|57021-8^CBC^LN|||20261201070000\r"
        "OBX|1|NM|718-7^Hgb^LN||13.1|g/dL|||||C\r"
        "OBX|2|NM|751-8^ANC^LN||1.1|10*9/L|||||F|||garbage\r";
    pv_hl7_msg *m = NULL;
    CHECK_INT(pv_hl7_parse(msg, sizeof msg - 1, NULL, &m, NULL), 0);
    pv_hl7_map_opts opts = {NULL, INT64_C(1796601600)};
    pv_hl7_mapped mp;
    CHECK_INT(pv_hl7_map(m, &opts, &mp), 0);
    CHECK_INT(mp.reject, 0);
    CHECK_INT(mp.facts, 1);
    CHECK_INT(mp.n, 3);
    if (mp.n == 3) {
        CHECK_INT(mp.items[0].kind, PV_HL7_ITEM_PATIENT);
        CHECK_STR(mp.items[0].u.patient.id, "PURE1");
        CHECK_STR(mp.items[0].u.patient.birth_date, "1961-06-15");
        CHECK_INT(mp.items[1].kind, PV_HL7_ITEM_SUPERSEDE);
        CHECK_STR(mp.items[1].u.supersede.mark, "W");
        CHECK_STR(mp.items[1].u.supersede.order, "FI1");
        CHECK_INT(mp.items[2].kind, PV_HL7_ITEM_LAB);
        CHECK_INT(mp.items[2].segment, 3);
        CHECK_STR(mp.items[2].u.obs.patient_id, "PURE1");
        CHECK_STR(mp.items[2].u.obs.status, "C");
        CHECK_INT(mp.items[2].u.obs.message_id, 0);
    }
    CHECK_INT(mp.nskips, 1);
    if (mp.nskips == 1) {
        CHECK_STR(mp.skips[0].name, "OBX");
        CHECK_INT(mp.skips[0].nth, 2);
        CHECK_INT(mp.skips[0].field, 14);
        CHECK_INT(mp.skips[0].line, 5);
        CHECK_INT(mp.skips[0].error, PV_HL7_ERR_DATA_TYPE);
        CHECK(strstr(mp.skips[0].reason, "'garbage' is not a valid time"));
    }
    pv_hl7_mapped_free(&mp);
    /* A message without a PID-3 before its OBX: rejected with the reason,
     * and still nothing stored. */
    static const char bad[] =
        "MSH|^~\\&|LAB|L|PV|PV|20261201080000||ORU^R01|PURE-2|P|2.5.1\r"
        "OBX|1|NM|718-7^Hgb^LN||13.1|g/dL|||||F\r";
    pv_hl7_msg *b = NULL;
    CHECK_INT(pv_hl7_parse(bad, sizeof bad - 1, NULL, &b, NULL), 0);
    CHECK_INT(pv_hl7_map(b, &opts, &mp), 0);
    CHECK_INT(mp.reject, 1);
    CHECK_INT(mp.error, PV_HL7_ERR_REQUIRED_FIELD);
    CHECK(strstr(mp.text, "OBX before any PID") != NULL);
    pv_hl7_mapped_free(&mp);
    pv_hl7_free(m);
    pv_hl7_free(b);
    CHECK_INT(qi("SELECT count(*) FROM patients WHERE id = 'PURE1'"), 0);
    CHECK_INT(qi("SELECT count(*) FROM messages WHERE control_id LIKE "
                 "'PURE-%'"),
              0);
}

/* ---- AE, AR, ACKs, duplicates ----------------------------------------- */

static void test_ae_no_pid3(void)
{
    long long before = qi("SELECT count(*) FROM observations");
    struct out o = ingest_str(
        "MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|NOPID-1|P|2.5.1\r"
        "PID|1||||Doe^Jane\r"
        "OBR|1|||718-7^Hgb^LN|||20260201070000\r"
        "OBX|1|NM|718-7^Hgb^LN||9.9|g/dL|||||F\r");
    CHECK_INT(o.rc, 0);
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.error, PV_HL7_ERR_REQUIRED_FIELD);
    CHECK(strstr(o.text, "PID-3") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM observations"), before);
    CHECK_STR(q("SELECT status, error FROM messages WHERE control_id = "
                "'NOPID-1'"),
              "rejected|OBX before any PID with a PID-3 patient identifier");
    /* Sent again (still wrong): AE again, not a duplicate. */
    o = ingest_str(
        "MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|NOPID-1|P|2.5.1\r"
        "PID|1||||Doe^Jane\r"
        "OBR|1|||718-7^Hgb^LN|||20260201070000\r"
        "OBX|1|NM|718-7^Hgb^LN||9.9|g/dL|||||F\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.duplicate, 0);
    /* Fixed and sent again with the same control id: accepted. */
    o = ingest_str(
        "MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|NOPID-1|P|2.5.1\r"
        "PID|1||P-FIXED^^^L^MR\r"
        "OBR|1|||718-7^Hgb^LN|||20260201070000\r"
        "OBX|1|NM|718-7^Hgb^LN||9.9|g/dL|||||F\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    /* RDE without PID-3. */
    o = ingest_str("MSH|^~\\&|RX|L|PV|PV|20260201080000||RDE^O11|NOPID-2|P|"
                   "2.5.1\r"
                   "PID|1\r"
                   "RXE|^^^20260201|123^baricitinib^NDC|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK(strstr(o.text, "PID-3") != NULL);
}

static void test_ar_version(void)
{
    static const char *const versions[] = {"2.2", "2.9", "3.0", "2.10"};
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|VER-%zu|P|"
                 "%s\r"
                 "PID|1||P-VER^^^L^MR\r"
                 "OBX|1|NM|718-7^Hgb^LN||9|g/dL|||||F|||20260201070000\r",
                 i, versions[i]);
        struct out o = ingest_str(buf);
        CHECK_INT(o.rc, 0);
        CHECK_INT(o.ack, PV_HL7_AR);
        CHECK_INT(o.error, PV_HL7_ERR_UNSUPPORTED_VERSION);
        CHECK(strstr(o.text, versions[i]) != NULL);
    }
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = "
                 "'P-VER'"),
              0);
    /* Kept as rejected all the same. */
    CHECK_INT(qi("SELECT count(*) FROM messages WHERE status = 'rejected' "
                 "AND error LIKE '%MSH-12 is not supported%'"),
              4);
    /* Supported: 2.3 to 2.8, with or without a further level. */
    static const char *const good[] = {"2.3", "2.3.1", "2.5.1", "2.8"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|GOODVER-%zu|"
                 "P|%s\r"
                 "PID|1||P-GOODVER^^^L^MR\r"
                 "OBX|1|NM|718-7^Hgb^LN||9|g/dL|||||F|||20260201070000\r",
                 i, good[i]);
        CHECK_INT(ingest_str(buf).ack, PV_HL7_AA);
    }
    /* No MSH-10: AR. */
    struct out o =
        ingest_str("MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01||P|2.5\r"
                   "PID|1||P-NOCTL^^^L^MR\r");
    CHECK_INT(o.ack, PV_HL7_AR);
    CHECK(o.error != 0);
    CHECK(strstr(o.text, "MSH-10") != NULL);
    /* Malformed: AR with the parser's reason, raw bytes kept. */
    o = ingest_str("MSH|^~\\&|LAB|L|PV|PV|20260201080000||ORU^R01|BAD-1|P|"
                   "2.5\r"
                   "pid|1||x\r");
    CHECK_INT(o.ack, PV_HL7_AR);
    CHECK(o.text[0] != '\0');
    CHECK_INT(qi("SELECT count(*) FROM messages WHERE source = 'unparsed' "
                 "AND instr(raw, 'pid|1||x') > 0"),
              1);
}

static void test_ack_not_answered(void)
{
    long long before = qi("SELECT count(*) FROM messages");
    struct out o = ingest_str(
        "MSH|^~\\&|PV|PV|LAB|L|20260201080000||ACK^R01^ACK|PVACK1|P|2.5.1\r"
        "MSA|AA|CNTRL-1\r");
    CHECK_INT(o.rc, 0);
    CHECK_INT(o.ack, -1);
    CHECK_INT(o.facts, 0);
    CHECK_INT(qi("SELECT count(*) FROM messages"), before);
    /* hl7v2-net's ACK of an ACK: MSH-9 ACK alone. */
    o = ingest_str("MSH|^~\\&|LAB|L|PV|PV|20260201080001||ACK|X1|P|2.5\r"
                   "MSA|AA|PVACK1\r");
    CHECK_INT(o.ack, -1);
    /* An ACK that does not parse is not answered either. */
    o = ingest_str("MSH|^~\\&|LAB|L|PV|PV|20260201080001||ACK^R01|X2|P|2.5\r"
                   "msa|AA|PVACK1\r");
    CHECK_INT(o.ack, -1);
    CHECK(o.text[0] != '\0');
}

static void test_duplicates(void)
{
    static const char msg[] =
        "MSH|^~\\&|LAB|%s|PV|PV|20260201080000||ORU^R01|DUP-1|P|2.5.1\r"
        "PID|1||P-DUP^^^L^MR\r"
        "OBR|1|||718-7^Hgb^LN|||20260201070000\r"
        "OBX|1|NM|718-7^Hgb^LN||12.0|g/dL|||||F\r";
    char buf[512];
    snprintf(buf, sizeof buf, msg, "FAC1");
    struct out a = ingest_str(buf);
    CHECK_INT(a.ack, PV_HL7_AA);
    CHECK_INT(a.duplicate, 0);
    CHECK_INT(a.facts, 1);
    struct out b = ingest_str(buf);
    CHECK_INT(b.rc, 0);
    CHECK_INT(b.ack, PV_HL7_AA);
    CHECK_INT(b.duplicate, 1);
    CHECK_INT(b.facts, 0);
    CHECK(strstr(b.text, "duplicate") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM messages WHERE control_id = 'DUP-1'"),
              1);
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = "
                 "'P-DUP'"),
              1);
    /* The same control id from another facility is another message. */
    snprintf(buf, sizeof buf, msg, "FAC2");
    struct out c = ingest_str(buf);
    CHECK_INT(c.ack, PV_HL7_AA);
    CHECK_INT(c.duplicate, 0);
    CHECK_INT(qi("SELECT count(*) FROM messages WHERE control_id = 'DUP-1'"),
              2);
}

/* ---- Every corpus file ------------------------------------------------ */

struct sweep {
    const char *file;
    int messages, aa, ae, ar, acks, split_errors, bad;
};

static int on_msg(void *ud, pv_span msg, long line)
{
    struct sweep *s = ud;
    s->messages++;
    pv_hl7_result res;
    memset(&res, 0, sizeof res);
    int rc = pv_ingest_begin(p);
    if (!rc)
        rc = pv_ingest_hl7(p, msg.ptr, msg.len, s->file, line, &res);
    if (!rc)
        rc = pv_ingest_commit(p);
    else
        pv_ingest_rollback(p);
    if (rc) {
        PV_FAIL_("%s:%ld: pv_ingest_hl7: %s", s->file, line, pv_strerror(rc));
        s->bad++;
        pv_hl7_result_free(&res);
        return 0;
    }
    switch (res.ack) {
    case PV_HL7_AA:
        s->aa++;
        break;
    case PV_HL7_AE:
    case PV_HL7_AR:
        if (res.ack == PV_HL7_AE)
            s->ae++;
        else
            s->ar++;
        if (!res.text[0]) {
            PV_FAIL_("%s:%ld: %s without a reason", s->file, line,
                     res.ack == PV_HL7_AE ? "AE" : "AR");
            s->bad++;
        }
        break;
    case -1:
        s->acks++;
        if (!res.text[0]) {
            PV_FAIL_("%s:%ld: ACK without a reason", s->file, line);
            s->bad++;
        }
        break;
    default:
        PV_FAIL_("%s:%ld: ack %d", s->file, line, res.ack);
        s->bad++;
    }
    pv_hl7_result_free(&res);
    return 0;
}

static void on_split_error(void *ud, long line, const char *reason)
{
    struct sweep *s = ud;
    s->split_errors++;
    if (!reason || !reason[0]) {
        PV_FAIL_("%s:%ld: split fault without a reason", s->file, line);
        s->bad++;
    }
}

static int sweep_dir(const char *dir, int malformed)
{
    DIR *d = opendir(dir);
    if (!d) {
        PV_FAIL_("cannot open %s", dir);
        return 0;
    }
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".hl7") != 0)
            continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *buf = slurp(path, &len);
        if (!buf) {
            PV_FAIL_("cannot read %s", path);
            continue;
        }
        files++;
        struct sweep s = {.file = e->d_name};
        CHECK_INT(pv_hl7_split(buf, len, on_msg, on_split_error, &s), 0);
        /* Each file yields something: facts or a reason. */
        if (s.messages + s.split_errors == 0)
            PV_FAIL_("%s: neither a message nor a fault", path);
        /* Nothing in malformed/ is accepted. */
        if (malformed && s.aa > 0)
            PV_FAIL_("%s: %d message(s) accepted", path, s.aa);
        CHECK_INT(s.bad, 0);
        printf("%-50s %2d message(s): AA %d, AE %d, AR %d, ACK %d; %d "
               "fault(s)\n",
               e->d_name, s.messages, s.aa, s.ae, s.ar, s.acks, s.split_errors);
        free(buf);
    }
    closedir(d);
    return files;
}

static void test_corpus_sweep(void)
{
    char dir[PATH_MAX + 32];
    CHECK(sweep_dir(corpus, 0) >= 37);
    snprintf(dir, sizeof dir, "%s/malformed", corpus);
    CHECK(sweep_dir(dir, 1) >= 6);
    /* The database is still sound after all of it. */
    CHECK_STR(q("PRAGMA integrity_check"), "ok");
}

int main(void)
{
    const char *shared = getenv("PV_SHARED_DIR");
    snprintf(corpus, sizeof corpus, "%s/corpus/hl7",
             shared ? shared : PV_SOURCE_DIR "/../shared");
    hl7_fixture_open("hl7_map");

    test_cbc();
    test_lipid();
    test_esr_corrected();
    test_newborn();
    test_rde();
    test_rde_tq1_after_rxe();
    test_ras();
    test_vxu();
    test_adt();
    test_sn();
    test_time_fallback();
    test_assigning_authority();
    test_map_pure_items_in_order();
    test_ae_no_pid3();
    test_ar_version();
    test_ack_not_answered();
    test_duplicates();
    test_corpus_sweep();

    return hl7_fixture_close();
}
