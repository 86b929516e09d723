/* test_hl7_types: the message types and segments issue 14 and issue 15
 * items 3 and 7 added to the HL7 mapper, through pv_ingest_hl7 on an
 * in-memory database without rules, the rows read back from SQLite:
 * - exposure timing (RXE-1, ORC-7 and TQ1 start/end, the v2.3 "^^^start^end"
 *   form, MSH-7 only when none is given) and exposures.start_source;
 * - VXU/RXA: CVX code, RXA-3 time, RXA-6 999 = amount unknown;
 * - RDS^O13 (RXD) and RGV^O15 (RXG) to exposures;
 * - OUL^R22 and OUL^R24 results like ORU^R01;
 * - ADT deaths: PID-29, PID-30, PV1-36 expired, the DG1 cause;
 * - v2.1 / v2.2: AR with an ERR naming the version.
 * The messages are written from the HL7 v2.5.1 chapters 2, 3, 4, 7 and 13
 * (segment definitions) and the CDC IIS implementation guide for RXA. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "hl7.h"
#include "ingest.h"
#include "store.h"
#include "test.h"

#include "hl7_fixture.h"

#define EXP_ROW                                                                \
    "SELECT start_at, end_at, start_source FROM exposures WHERE patient_id = "

/* ---- Issue 15 item 3: timing of orders ---------------------------------- */

static void test_rde_timing(void)
{
    /* v2.5.1: the order's TQ1 (TQ1-7 start, TQ1-8 end). */
    struct out o = ingest_str(
        "MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11^RDE_O11|T-TQ1|P|"
        "2.5.1\r"
        "PID|1||T1^^^H^MR\r"
        "ORC|NW|ORD1\r"
        "TQ1|1||||||20260102080000|20260201080000\r"
        "RXE||baricitinib 4 MG^baricitinib^L|4||mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q(EXP_ROW "'T1'"),
              "2026-01-02T08:00:00Z|2026-02-01T08:00:00Z|TQ1-7");

    /* v2.3: RXE-1 quantity/timing "^^^start^end"; ORC-7 in the same form
     * is used only when RXE-1 has no start. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-RXE1|P|"
                   "2.3\r"
                   "PID|1||T2^^^H^MR\r"
                   "ORC|NW|ORD2|||||^^^20251201^20251231\r"
                   "RXE|1^QD^^20260103^20260110|baricitinib^baricitinib^L|2||"
                   "mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q(EXP_ROW "'T2'"),
              "2026-01-03T00:00:00Z|2026-01-10T00:00:00Z|RXE-1");

    /* ORC-7 when RXE-1 has none; its start a TS with a precision
     * sub-component (v2.3 TS = time & degree of precision inside a TQ). */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-ORC7|P|"
                   "2.3\r"
                   "PID|1||T3^^^H^MR\r"
                   "ORC|NW|ORD3|||||1^QD^^202601040900&M^20260131\r"
                   "RXE||baricitinib^baricitinib^L|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q(EXP_ROW "'T3'"),
              "2026-01-04T09:00:00Z|2026-01-31T00:00:00Z|ORC-7");

    /* Nothing given: MSH-7, and the row says so. An end alone is kept. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-MSH7|P|"
                   "2.5\r"
                   "PID|1||T4^^^H^MR\r"
                   "ORC|NW|ORD4\r"
                   "RXE|^^^^20260331|baricitinib^baricitinib^L|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q(EXP_ROW "'T4'"),
              "2026-03-01T08:00:00Z|2026-03-31T00:00:00Z|MSH-7");

    /* The TQ1 that follows the RXE (RDE_O11 TIMING_ENCODED) wins over the
     * order's TQ1 and over RXE-1. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-TQ1B|P|"
                   "2.5.1\r"
                   "PID|1||T5^^^H^MR\r"
                   "ORC|NW|ORD5\r"
                   "TQ1|1||||||20250101\r"
                   "RXE|^^^20250601|baricitinib^baricitinib^L|2||mg\r"
                   "TQ1|1||||||20260105\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q(EXP_ROW "'T5'"), "2026-01-05T00:00:00Z||TQ1-7");

    /* A start that is given but unreadable is never replaced by MSH-7: the
     * RXE is skipped with an ERR (W), the other order is stored. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-BAD|P|"
                   "2.3\r"
                   "PID|1||T6^^^H^MR\r"
                   "ORC|NW|ORD6\r"
                   "RXE|^^^2026-01-0x|baricitinib^baricitinib^L|2||mg\r"
                   "ORC|NW|ORD7\r"
                   "RXE|^^^20260106|prednisone^prednisone^L|20||mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_INT(o.skipped, 1);
    CHECK(strstr(o.text, "RXE-1") != NULL);
    CHECK(strstr(o.ackmsg, "ERR||RXE^1^1|102^Data type error^HL70357|W") !=
          NULL);
    CHECK_STR(q("SELECT drug, start_source FROM exposures WHERE patient_id "
                "= 'T6'"),
              "prednisone|RXE-1");

    /* Before 1850: impossible, and the only order, so AE. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-1800|P|"
                   "2.3\r"
                   "PID|1||T7^^^H^MR\r"
                   "ORC|NW|ORD8\r"
                   "RXE|^^^18000101|baricitinib^baricitinib^L|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK(strstr(o.text, "before 1850") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM exposures WHERE patient_id = 'T7'"), 0);

    /* An end before the start is not believed: open-ended. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDE^O11|T-REV|P|"
                   "2.5\r"
                   "PID|1||T8^^^H^MR\r"
                   "ORC|NW|ORD9\r"
                   "TQ1|1||||||20260201|20260101\r"
                   "RXE||baricitinib^baricitinib^L|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q(EXP_ROW "'T8'"), "2026-02-01T00:00:00Z||TQ1-7");
}

/* ---- Issue 14: VXU / RXA ------------------------------------------------ */

static void test_vxu(void)
{
    /* CDC IIS guide: RXA-3 administered, RXA-5 CVX, RXA-6 999 = amount
     * unknown (dose NULL), RXA-7 units. */
    struct out o = ingest_str(
        "MSH|^~\\&|EHR|CLINIC|IIS|STATE|20260310||VXU^V04^VXU_V04|V-1|P|"
        "2.5.1\r"
        "PID|1||V1^^^CLINIC^MR||Doe^Jane||19800101|F\r"
        "ORC|RE||197023^CMC\r"
        "RXA|0|1|20260309||03^MMR^CVX|999|||00^New immunization record^"
        "NIP001|||||||||||CP|A\r"
        "RXR|SC^Subcutaneous^HL70162\r"
        "ORC|RE||197024^CMC\r"
        "RXA|0|1|20260309||187^zoster recombinant^CVX|0.5|mL^mL^UCUM||||||||"
        "|||||CP|A\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 2);
    CHECK_STR(q("SELECT drug, drug_code, code_system, dose, dose_unit, "
                "route, start_at, start_source FROM exposures WHERE "
                "patient_id = 'V1' AND drug_code = '03'"),
              "MMR|03|CVX|||SC|2026-03-09T00:00:00Z|RXA-3");
    CHECK_STR(q("SELECT dose, dose_unit FROM exposures WHERE patient_id = "
                "'V1' AND drug_code = '187'"),
              "0.5|mL");
}

/* ---- Issue 15 item 7: RDS^O13, RGV^O15 ---------------------------------- */

static void test_rds(void)
{
    /* RDS_O13: ORC, the order's TQ1, its RXE (not an exposure here), then
     * RXD: RXD-2 dispense/give code, RXD-3 date/time dispensed, RXD-4/5
     * the quantity dispensed, RXD-16/17 the actual strength. */
    struct out o = ingest_str(
        "MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RDS^O13^RDS_O13|D-1|P|"
        "2.5.1\r"
        "PID|1||D1^^^H^MR\r"
        "ORC|RE|ORD1|FIL1\r"
        "TQ1|1||||||20260219\r"
        "RXE||baricitinib^baricitinib^L|4||mg\r"
        "RXR|PO\r"
        "RXD|1|baricitinib 4 MG Oral Tablet^baricitinib^L|20260221093000|"
        "28|TAB^tablet|||||||||||4|mg\r"
        "RXR|PO^Oral^HL70162\r"
        /* A dispense without RXD-3: its order's TQ1. */
        "ORC|RE|ORD2|FIL2\r"
        "TQ1|1||||||20260220\r"
        "RXD|1|prednisone^prednisone^L||30|TAB\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 2);
    CHECK_STR(q("SELECT drug, dose, dose_unit, route, start_at, "
                "start_source FROM exposures WHERE patient_id = 'D1' AND "
                "drug_code LIKE 'baricitinib%'"),
              "baricitinib|4.0|mg|PO|2026-02-21T09:30:00Z|RXD-3");
    /* RXD-4 (28 tablets) is not a dose. */
    CHECK_STR(q("SELECT dose, dose_unit, start_at, start_source FROM "
                "exposures WHERE patient_id = 'D1' AND drug = 'prednisone'"),
              "||2026-02-20T00:00:00Z|TQ1-7");
}

static void test_rgv(void)
{
    /* RGV_O15: RXG-3 quantity/timing (v2.3 form), RXG-4 give code, RXG-5
     * amount, RXG-7 units; the TQ1 after the RXG (TIMING_GIVE) first. */
    struct out o = ingest_str(
        "MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RGV^O15^RGV_O15|G-1|P|"
        "2.5.1\r"
        "PID|1||G1^^^H^MR\r"
        "ORC|RE|ORD1\r"
        "RXG|1||^^^20260201080000^20260201083000|azathioprine^"
        "azathioprine^L|50||mg^mg^UCUM\r"
        "RXR|PO\r"
        "ORC|RE|ORD2\r"
        "RXG|1|||baricitinib^baricitinib^L|2||mg\r"
        "TQ1|1||||||20260202\r"
        "RXR|PO\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 2);
    CHECK_STR(q("SELECT dose, dose_unit, route, start_at, end_at, "
                "start_source FROM exposures WHERE patient_id = 'G1' AND "
                "drug = 'azathioprine'"),
              "50.0|mg|PO|2026-02-01T08:00:00Z|2026-02-01T08:30:00Z|RXG-3");
    CHECK_STR(q("SELECT dose, start_at, start_source FROM exposures WHERE "
                "patient_id = 'G1' AND drug = 'baricitinib'"),
              "2.0|2026-02-02T00:00:00Z|TQ1-7");
    /* A held order (ORC-1 HD) gives no exposure here either. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|20260301080000||RGV^O15|G-2|P|"
                   "2.5.1\r"
                   "PID|1||G2^^^H^MR\r"
                   "ORC|HD|ORD3\r"
                   "RXG|1|||baricitinib^baricitinib^L|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 0);
}

/* ---- Issue 15 item 7: OUL^R22 / R24 ------------------------------------- */

static void test_oul(void)
{
    /* OUL_R22: SPM with its own OBX (a specimen observation, not a
     * result), then the ORDER group OBR with its result OBX. */
    struct out o = ingest_str(
        "MSH|^~\\&|LIS|LAB|PV|PV|20260301120000||OUL^R22^OUL_R22|L-22|P|"
        "2.5.1\r"
        "PID|1||L1^^^LAB^MR\r"
        "SPM|1|S1||119297000^Blood^SCT|||||||||||||20260301090000\r"
        "OBX|1|NM|8310-5^Body temperature^LN||37|Cel|||||F\r"
        "OBR|1|ORD1|FIL1|57021-8^CBC^LN|||20260301093000\r"
        "OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|1.5-7.0|LL|||F\r"
        "OBX|2|NM|718-7^Hemoglobin^LN||13|g/dL|12-16|N|||F|||"
        "20260301094000\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 2);
    CHECK_STR(q("SELECT value_num, unit, observed_at FROM observations "
                "WHERE patient_id = 'L1' AND code = '751-8'"),
              "0.4|10*9/L|2026-03-01T09:30:00Z");
    CHECK_STR(q("SELECT observed_at FROM observations WHERE patient_id = "
                "'L1' AND code = '718-7'"),
              "2026-03-01T09:40:00Z");
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = 'L1' "
                 "AND code = '8310-5'"),
              0);

    /* OUL_R24: OBR, SPM, then the OBX: every OBX is a result. */
    o = ingest_str(
        "MSH|^~\\&|LIS|LAB|PV|PV|20260301120000||OUL^R24^OUL_R24|L-24|"
        "P|2.5.1\r"
        "PID|1||L2^^^LAB^MR\r"
        "OBR|1|ORD2|FIL2|24323-8^CMP^LN|||20260301080000\r"
        "SPM|1|S2||119364003^Serum^SCT\r"
        "OBX|1|NM|1742-6^ALT^LN||250|U/L|7-56|H|||F\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_STR(q("SELECT value_num, observed_at FROM observations WHERE "
                "patient_id = 'L2' AND code = '1742-6'"),
              "250.0|2026-03-01T08:00:00Z");

    /* Another OUL trigger: stored, no facts. */
    o = ingest_str("MSH|^~\\&|LIS|LAB|PV|PV|20260301120000||OUL^R23|L-23|P|"
                   "2.5.1\r"
                   "PID|1||L3^^^LAB^MR\r"
                   "OBR|1|ORD3|FIL3|24323-8^CMP^LN|||20260301080000\r"
                   "OBX|1|NM|1742-6^ALT^LN||250|U/L|7-56|H|||F\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 0);
}

/* ---- Issue 14: deaths in ADT -------------------------------------------- */

#define DEATH_ROW                                                              \
    "SELECT code, code_system, term, onset_at, serious, outcome FROM events "  \
    "WHERE outcome = 'fatal' AND patient_id = "

static void test_adt_death(void)
{
    /* A03 with PID-29/PID-30 and two DG1: the principal one (DG1-15 = 1)
     * is the cause; both DG1 are conditions as before. */
    struct out o = ingest_str(
        "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A03^ADT_A03|A-1|P|"
        "2.5.1\r"
        "EVN|A03|20260310075500\r"
        "PID|1||X1^^^HOSP^MR||Doe^John||19500101|M|||||||||||||||||||||"
        "20260309231500|Y\r"
        "PV1|1|I||||||||||||||||||||||||||||||||||20|||||||||"
        "20260310070000\r"
        "DG1|1||J18.9^Pneumonia^I10|||W|||||||||2\r"
        "DG1|2||I21.4^NSTEMI^I10|||F|||||||||1\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 3);
    CHECK_STR(q(DEATH_ROW "'X1'"),
              "I21.4|ICD10CM|Death (PID-30 death indicator Y); cause: "
              "NSTEMI|2026-03-09T23:15:00Z|1|fatal");
    CHECK_INT(qi("SELECT count(*) FROM events WHERE patient_id = 'X1' AND "
                 "outcome IS NULL"),
              2);

    /* PV1-36 discharge disposition 20..42 alone, no DG1: R99, at PV1-45
     * (discharge date/time). */
    static const char *const disp[] = {"20", "40", "41", "42"};
    for (size_t i = 0; i < 4; i++) {
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A03|A-D%zu|P|"
                 "2.5\r"
                 "PID|1||X2-%zu^^^HOSP^MR\r"
                 "PV1|1|I||||||||||||||||||||||||||||||||||%s|||||||||"
                 "20260310061500\r",
                 i, i, disp[i]);
        o = ingest_str(msg);
        CHECK_INT(o.ack, PV_HL7_AA);
        CHECK_INT(o.facts, 1);
        char sql[256];
        snprintf(sql, sizeof sql, DEATH_ROW "'X2-%zu'", i);
        CHECK_STR(q(sql), "R99|ICD10CM|Death (PV1-36 discharge disposition "
                          "expired); cause not given|2026-03-10T06:15:00Z|1|"
                          "fatal");
    }

    /* Discharged home (01), PID-30 N with a PID-29: no death. */
    o = ingest_str(
        "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A08|A-3|P|2.5\r"
        "PID|1||X3^^^HOSP^MR||||||||||||||||||||||||||20260309|N\r"
        "PV1|1|I||||||||||||||||||||||||||||||||||01\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 0);

    /* PID-29 alone (A08): a death at that time, R99. */
    o = ingest_str(
        "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A08|A-4|P|2.5\r"
        "PID|1||X4^^^HOSP^MR||||||||||||||||||||||||||20260308\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q("SELECT code, onset_at FROM events WHERE patient_id = 'X4'"),
              "R99|2026-03-08T00:00:00Z");

    /* PID-30 Y, no time anywhere but EVN-2 and MSH-7: EVN-2. */
    o = ingest_str(
        "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A08|A-5|P|2.5\r"
        "EVN|A08|20260310073000\r"
        "PID|1||X5^^^HOSP^MR|||||||||||||||||||||||||||Y\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q("SELECT onset_at FROM events WHERE patient_id = 'X5'"),
              "2026-03-10T07:30:00Z");

    /* An unreadable PID-29 of a death: AE, kept as rejected, nothing
     * stored (not a death at another time). */
    o = ingest_str(
        "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A03|A-6|P|2.5\r"
        "PID|1||X6^^^HOSP^MR||||||||||||||||||||||||||2026-03-0x|Y\r"
        "DG1|1||C83.3^DLBCL^I10\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.error, PV_HL7_ERR_DATA_TYPE);
    CHECK(strstr(o.text, "PID-29") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM events WHERE patient_id = 'X6'"), 0);
    CHECK_INT(qi("SELECT count(*) FROM messages WHERE control_id = 'A-6' "
                 "AND status = 'rejected'"),
              1);
}

/* ---- Times fuzz_map_hl7 found taken unchecked (issue 20 part 3) ---------- */

static void fuzz_map_hl7_fallback_times_are_range_checked(void)
{
    /* A DG1 whose onset comes from an impossible EVN-2 is skipped (like an
     * OBX with an impossible OBX-14), the other DG1 kept. */
    struct out o = ingest_str(
        "MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A08|FZ-1|P|2.5\r"
        "EVN|A08|00010101\r"
        "PID|1||FZ1^^^HOSP^MR\r"
        "DG1|1||I26.99^Pulmonary embolism^I10\r"
        "DG1|2||D70.1^Neutropenia^I10||20260309\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_INT(o.skipped, 1);
    CHECK(strstr(o.text, "DG1^1^5\tDG1-5 at line 4: onset from EVN-2 "
                         "(0001-01-01T00:00:00Z) is an impossible time "
                         "(before 1850)") != NULL);
    CHECK_STR(q("SELECT group_concat(code) FROM events WHERE patient_id = "
                "'FZ1'"),
              "D70.1");
    /* A DG1-5 in the year 9999: skipped, not a patient's event for ever;
     * nothing else usable: AE. */
    o = ingest_str("MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A08|FZ-2|P|"
                   "2.5\r"
                   "PID|1||FZ2^^^HOSP^MR\r"
                   "DG1|1||I26.99^Pulmonary embolism^I10||99991231\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK(strstr(o.text, "nothing usable") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM events WHERE patient_id = 'FZ2'"), 0);
    /* A death whose only time is an impossible EVN-2: AE, as an impossible
     * PID-29 is. */
    o = ingest_str("MSH|^~\\&|ADT|HOSP|PV|PV|20260310080000||ADT^A03|FZ-3|P|"
                   "2.5\r"
                   "EVN|A03|17000101\r"
                   "PID|1||FZ3^^^HOSP^MR|||||||||||||||||||||||||||Y\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK(strstr(o.text, "death date/time from EVN-2 (1700-01-01T00:00:00Z) "
                         "is an impossible time (before 1850)") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM events WHERE patient_id = 'FZ3'"), 0);
    /* An order with no start of its own and an MSH-7 before 1850: the RXE
     * is skipped, not started in 1800. */
    o = ingest_str("MSH|^~\\&|PHARM|H|PV|PV|18000101||RDE^O11|FZ-4|P|2.5\r"
                   "PID|1||FZ4^^^H^MR\r"
                   "ORC|NW|ORD1\r"
                   "RXE||baricitinib^baricitinib^L|2||mg\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK(strstr(o.text, "MSH-7 '18000101' is an impossible time") != NULL);
    CHECK_INT(qi("SELECT count(*) FROM exposures WHERE patient_id = 'FZ4'"), 0);
}

/* ---- Issue 15 item 7: v2.1 and v2.2 ------------------------------------- */

static void test_old_versions(void)
{
    static const char *const v[] = {"2.1", "2.2"};
    for (size_t i = 0; i < 2; i++) {
        char msg[512], want[128];
        snprintf(msg, sizeof msg,
                 "MSH|^~\\&|LAB|L|PV|PV|198801010800||ORU^R01|OLD-%zu|P|%s\r"
                 "PID|1||OLD^^^L^MR\r"
                 "OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||F\r",
                 i, v[i]);
        struct out o = ingest_str(msg);
        CHECK_INT(o.ack, PV_HL7_AR);
        CHECK_INT(o.error, PV_HL7_ERR_UNSUPPORTED_VERSION);
        snprintf(want, sizeof want,
                 "ERR|||203^Unsupported version id^HL70357|E||||HL7 version "
                 "'%s' in MSH-12",
                 v[i]);
        CHECK(strstr(o.ackmsg, want) != NULL);
        snprintf(want, sizeof want, "MSA|AR|OLD-%zu\n", i);
        CHECK(strstr(o.ackmsg, want) != NULL);
    }
    CHECK_INT(qi("SELECT count(*) FROM observations WHERE patient_id = "
                 "'OLD'"),
              0);
}

int main(void)
{
    hl7_fixture_open("hl7_types");

    test_rde_timing();
    test_vxu();
    test_rds();
    test_rgv();
    test_oul();
    test_adt_death();
    test_old_versions();
    fuzz_map_hl7_fallback_times_are_range_checked();

    return hl7_fixture_close();
}
