/* test_hl7_status: what issue 22 item 15 and issue 15 items 1 and 5 pin in
 * the HL7 mapping, on an in-memory database without rules: plausible fact
 * times (pv_time_implausible), an OBX whose time or identifier is bad
 * skipped alone (the rest stored, AA with an ERR of severity W per skipped
 * segment, AE when nothing usable remained), and OBX-11 statuses (W
 * retires the earlier result, F replaces a preliminary, which statuses are
 * judged). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "facts.h"
#include "hl7.h"
#include "ingest.h"
#include "pvtime.h"
#include "store.h"
#include "test.h"

#include "hl7_fixture.h"

#define MSH(ctl)                                                               \
    "MSH|^~\\&|LAB|L|PV|PV|20261201080000||ORU^R01|" ctl "|P|2.5.1\r"

static void issue22_item15_plausible_times(void)
{
    pv_time_t now = INT64_C(1764576000); /* 2025-12-01 */
    CHECK(pv_time_implausible(PV_TIME_FACT_MIN, now) == NULL);
    CHECK_STR(pv_time_implausible(PV_TIME_FACT_MIN - 1, now), "before 1850");
    CHECK(pv_time_implausible(now + 86400, now) == NULL);
    CHECK_STR(pv_time_implausible(now + 86401, now),
              "more than a day in the future");
    CHECK(pv_time_implausible(INT64_MAX, INT64_MAX) == NULL);
    pv_time_t t;
    CHECK_INT(pv_time_parse("18500101", 8, &t), 0);
    CHECK_INT(t, PV_TIME_FACT_MIN);
    CHECK_INT(pv_time_parse("99991231", 8, &t), 0);
    CHECK_STR(pv_time_implausible(t, now), "more than a day in the future");
    /* Not valid at all: the parser says so. */
    CHECK_INT(pv_time_parse("00000000", 8, &t), PV_EINVAL);
    CHECK_INT(pv_time_parse("20261231235960", 14, &t), PV_EINVAL);
}

static void issue22_item15_bad_obx14_not_replaced_by_msh7(void)
{
    struct out o = ingest_str(
        MSH("S1") "PID|1||P-S1\r"
                  "OBR|1|||57021-8^CBC^LN|||20261201070000\r"
                  "OBX|1|NM|718-7^Hgb^LN||13.1|g/dL|||||F|||garbage\r"
                  "OBX|2|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||20261201060000\r"
                  "OBX|3|NM|777-3^Plt^LN||250|10*9/L|||||F|||99991231\r"
                  "OBX|4|NM|^^^||9|10*9/L|||||F\r");
    CHECK_INT(o.rc, 0);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_INT(o.skipped, 3);
    CHECK_STR(q_rows("SELECT code, observed_at FROM observations WHERE "
                     "patient_id = 'P-S1'"),
              "751-8|2026-12-01T06:00:00Z");
    CHECK_STR(q_rows("SELECT status, rows_stored, rows_rejected FROM messages "
                     "WHERE control_id = 'S1'"),
              "partial|1|3");
    CHECK(o.ack_raw[0] && strstr(o.ack_raw, "MSA|AA|S1\r"));
    CHECK(o.ack_raw[0] &&
          strstr(o.ack_raw, "ERR||OBX^1^14|102^Data type error^HL70357|W||||"
                            "OBX-14 at line 4: observation time 'garbage' is "
                            "not a valid time (HL7 TS); segment skipped\r"));
    CHECK(o.ack_raw[0] &&
          strstr(o.ack_raw, "ERR||OBX^3^14|102^Data type "
                            "error^HL70357|W||||OBX-14 at line 6: "
                            "observation time '99991231' is an "
                            "impossible time (more than a day in "
                            "the future)"));
    CHECK(o.ack_raw[0] && strstr(o.ack_raw, "ERR||OBX^4^3|"));

    /* Nothing usable: AE, nothing of it stored. */
    o = ingest_str(
        MSH("S2") "PID|1||P-S2\r"
                  "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||0000\r");
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.error, PV_HL7_ERR_DATA_TYPE);
    CHECK(strstr(o.text, "nothing usable in the message: 1 segment skipped") !=
          NULL);
    CHECK_STR(
        q_rows("SELECT count(*) FROM observations WHERE patient_id = 'P-S2'"),
        "0");
    CHECK(o.ack_raw[0] && strstr(o.ack_raw, "MSA|AE|S2\r") &&
          strstr(o.ack_raw, "|E||||nothing usable"));
}

static void issue15_item05_many_skipped_segments_fit_the_ack(void)
{
    char msg[16384];
    size_t n =
        (size_t)snprintf(msg, sizeof msg,
                         MSH("S3") "PID|1||P-S3\r"
                                   "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||"
                                   "20261201060000\r");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(msg + n, sizeof msg - n,
                              "OBX|%d|NM|718-7^Hgb^LN||13|g/dL|||||F|||bad%d\r",
                              i + 2, i);
    struct out o = ingest_str(msg);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.skipped, 40);
    CHECK(strstr(o.text, "more segments skipped\n") != NULL);
    CHECK_STR(
        q_rows("SELECT rows_rejected FROM messages WHERE control_id = 'S3'"),
        "40");
}

static void issue15_item01_status_w_retires_and_f_replaces_p(void)
{
    struct out o = ingest_str(
        MSH("W1") "PID|1||P-W\r"
                  "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||20261201060000\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    o = ingest_str(
        MSH("W2") "PID|1||P-W\r"
                  "OBX|1|NM|751-8^ANC^LN||0.4|10*9/L|||||W|||20261201060000\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(
        q_rows("SELECT value_num, status FROM observations WHERE patient_id "
               "= 'P-W' ORDER BY id"),
        "2.0|W;0.4|W");

    o = ingest_str(
        MSH("P1") "PID|1||P-P\r"
                  "OBX|1|NM|751-8^ANC^LN||1.1|10*9/L|||||P|||20261201060000\r"
                  "OBX|2|NM|718-7^Hgb^LN||12|g/dL|||||P|||20261201060000\r");
    o = ingest_str(
        MSH("P2") "PID|1||P-P\r"
                  "OBX|1|NM|751-8^ANC^LN||1.2|10*9/L|||||F|||20261201060000\r");
    /* One live ANC, the final; the preliminary kept, retired; the Hgb
     * preliminary, of another code, stays live. */
    CHECK_STR(q_rows("SELECT code, value_num, status FROM observations WHERE "
                     "patient_id = 'P-P' ORDER BY id"),
              "751-8|1.1|W;718-7|12.0|P;751-8|1.2|F");
    /* A second final does not retire the first. */
    o = ingest_str(
        MSH("P3") "PID|1||P-P\r"
                  "OBX|1|NM|751-8^ANC^LN||1.3|10*9/L|||||F|||20261201060000\r");
    CHECK_STR(
        q_rows("SELECT count(*) FROM observations WHERE patient_id = 'P-P' "
               "AND code = '751-8' AND status = 'F'"),
        "2");
}

static void issue15_item01_which_statuses_are_judged(void)
{
    const char *judged[] = {"F", "C", "P", "A", "S", "U", NULL, ""};
    const char *not_judged[] = {"W", "X", "I", "R", "N", "O", "D"};
    for (size_t i = 0; i < sizeof judged / sizeof *judged; i++)
        CHECK_INT(pv_obs_judged(judged[i]), 1);
    for (size_t i = 0; i < sizeof not_judged / sizeof *not_judged; i++)
        CHECK_INT(pv_obs_judged(not_judged[i]), 0);
    CHECK_INT(pv_obs_judged("WX"), 1); /* not a table 0085 code: judged */
}

static void issue15_item01_final_replaces_preliminary_of_its_order(void)
{
    /* Two orders with the same code and time: each final replaces only the
     * preliminary of its own order (OBR-3, else OBR-2). */
    struct out o =
        ingest_str(MSH("FO1") "PID|1||P-FO\r"
                              "OBR|1|PL1|FI1|57021-8^CBC^LN|||20261201060000\r"
                              "OBX|1|NM|751-8^ANC^LN||1.1|10*9/L|||||P\r"
                              "OBR|2|PL2||57021-8^CBC^LN|||20261201060000\r"
                              "OBX|1|NM|751-8^ANC^LN||1.5|10*9/L|||||P\r");
    o = ingest_str(MSH("FO2") "PID|1||P-FO\r"
                              "OBR|1|PL1|FI1|57021-8^CBC^LN|||20261201060000\r"
                              "OBX|1|NM|751-8^ANC^LN||1.2|10*9/L|||||F\r");
    CHECK_STR(q_rows("SELECT filler_order, value_num, status FROM observations "
                     "WHERE patient_id = 'P-FO' ORDER BY id"),
              "FI1|1.1|W;PL2|1.5|P;FI1|1.2|F");
    /* W for order PL2 retires its preliminary; the final of FI1 stays. */
    o = ingest_str(MSH("FO3") "PID|1||P-FO\r"
                              "OBR|1|PL2||57021-8^CBC^LN|||20261201060000\r"
                              "OBX|1|NM|751-8^ANC^LN||0.4|10*9/L|||||W\r");
    CHECK_STR(q_rows("SELECT filler_order, value_num, status FROM observations "
                     "WHERE patient_id = 'P-FO' ORDER BY id"),
              "FI1|1.1|W;PL2|1.5|W;FI1|1.2|F;PL2|0.4|W");
    /* C (corrected) replaces the final of its order. */
    o = ingest_str(MSH("FO4") "PID|1||P-FO\r"
                              "OBR|1|PL1|FI1|57021-8^CBC^LN|||20261201060000\r"
                              "OBX|1|NM|751-8^ANC^LN||1.3|10*9/L|||||C\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    CHECK_STR(
        q_rows("SELECT value_num, status FROM observations WHERE patient_id "
               "= 'P-FO' AND status NOT IN ('W', 'D')"),
        "1.3|C");
}

static void issue15_item04_values_units_ranges_codes(void)
{
    struct out o = ingest_str(
        MSH("V1") "PID|1||P-V\r"
                  "OBX|1|DT|8665-2^LMP^LN||20261101||||||F|||20261201060000\r"
                  "OBX|2|TS|123-4^Drawn^LN||20261201060000||||||F|||"
                  "20261201060000\r"
                  "OBX|3|TM|123-5^Time^LN||0600||||||F|||20261201060000\r"
                  "OBX|4|NM|2823-3^K^LN||4.1|mmol/L^^UCUM|3.5 - 5.3|||F|||"
                  "20261201060000\r"
                  "OBX|5|NM|2951-2^Na^LN||140|mmol/L|135-145|||F|||"
                  "20261201060000\r"
                  "OBX|6|NM|1988-5^CRP^LN||3|mg/L|<5|||F|||20261201060000\r"
                  "OBX|7|NM|33914-3^eGFR^LN||70|mL/min|>60|||F|||"
                  "20261201060000\r"
                  "OBX|8|NM|718-7^Hgb^LN||14|g/dL|13 to 18|||F|||"
                  "20261201060000\r"
                  "OBX|9|NM|LOCAL1^Local test||7|U|||||F|||20261201060000\r"
                  "OBX|10|NM|3016-3^TSH^LN||2|43^mIU/L|||||F|||"
                  "20261201060000\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 10);
    CHECK_STR(
        q_rows("SELECT code, coalesce(value_num, 'null'), value_text FROM "
               "observations WHERE patient_id = 'P-V' AND line <= 5 ORDER "
               "BY id"),
        "8665-2|null|20261101;123-4|null|20261201060000;123-5|null|0600");
    CHECK_STR(
        q_rows("SELECT code, unit, coalesce(ref_low, '-'), coalesce(ref_high, "
               "'-') FROM observations WHERE patient_id = 'P-V' AND line > 5 "
               "AND line < 11 ORDER BY id"),
        "2823-3|mmol/L|3.5|5.3;2951-2|mmol/L|135.0|145.0;1988-5|mg/L|-|"
        "5.0;33914-3|mL/min|60.0|-;718-7|g/dL|13.0|18.0");
    CHECK_STR(q_rows("SELECT quote(code_system) FROM observations WHERE code = "
                     "'LOCAL1'"),
              "''");
    CHECK_STR(q_rows("SELECT unit FROM observations WHERE code = '3016-3'"),
              "mIU/L");
    o = ingest_str("MSH|^~\\&|PH|L|PV|PV|20261201080000||RDE^O11|RX1|P|2.5.1\r"
                   "PID|1||P-V\r"
                   "ORC|NW|PL1|FI1\r"
                   "RXE|^^^20261101|2047232^baricitinib^RXNORM|43||43^mg/hr\r");
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q_rows("SELECT dose, dose_unit FROM exposures WHERE patient_id = "
                     "'P-V'"),
              "43.0|mg/hr");
    CHECK_STR(
        q_rows("SELECT code_system FROM observations WHERE code = '718-7' "
               "AND patient_id = 'P-V'"),
        "LN");
}

static long count_of(const char *sql)
{
    return strtol(q_rows(sql), NULL, 10);
}

static void issue15_item06_control_id_reused(void)
{
    const char *m1 = MSH("DUP1") "PID|1||P-D\r"
                                 "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||"
                                 "20261201060000\r";
    /* The same message with LF line ends: the same content. */
    const char *m1lf = MSH("DUP1") "\nPID|1||P-D\n"
                                   "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||"
                                   "20261201060000\n";
    const char *m2 = MSH("DUP1") "PID|1||P-D\r"
                                 "OBX|1|NM|751-8^ANC^LN||0.3|10*9/L|||||F|||"
                                 "20261201070000\r";
    struct out o = ingest_str(m1);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(count_of("SELECT length(content_sha256) FROM messages WHERE "
                       "control_id = 'DUP1'"),
              64);
    o = ingest_str(m1lf);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK(strstr(o.text, "duplicate of a stored message") != NULL);
    o = ingest_str(m2);
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(o.error, PV_HL7_ERR_DUPLICATE_KEY);
    CHECK(strstr(o.text, "already used for a message with other content"));
    CHECK(o.ack_raw[0] && strstr(o.ack_raw, "MSA|AE|DUP1\r") &&
          strstr(o.ack_raw, "205^Duplicate key identifier"));
    CHECK_STR(q_rows("SELECT count(*), sum(value_num) FROM observations WHERE "
                     "patient_id = 'P-D'"),
              "1|2.0");
    CHECK_STR(
        q_rows("SELECT source, status FROM messages WHERE control_id LIKE "
               "'DUP1#sha256:%'"),
        "collision:hl7:LAB|L|rejected");
    CHECK_STR(q_rows("SELECT rule, patient_id, signal, occurrences FROM alerts "
                     "WHERE dedup_key = 'control-id-reuse:LAB|L|DUP1'"),
              "pvwatch.hl7|-|engine|1");
    /* The same collision sent again: still AE, kept once, one alert. */
    o = ingest_str(m2);
    CHECK_INT(o.ack, PV_HL7_AE);
    CHECK_INT(count_of("SELECT count(*) FROM messages WHERE control_id LIKE "
                       "'DUP1%'"),
              2);
    /* mllp.duplicates = "by_content": stored as a new message; that one
     * again is a duplicate. */
    cfg.mllp.duplicates = strdup("by_content");
    o = ingest_str(m2);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 1);
    o = ingest_str(m2);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_INT(o.facts, 0);
    CHECK_STR(
        q_rows("SELECT count(*) FROM observations WHERE patient_id = 'P-D'"),
        "2");
    free(cfg.mllp.duplicates);
    cfg.mllp.duplicates = NULL;
}

/* A control id too long to keep whole is refused (AR), never cut: cut, two
 * ids sharing their first 255 characters were one key. */
static void long_control_id_refused_not_cut(void)
{
    char id[301], msg[1024];
    memset(id, 'C', 300);
    id[300] = '\0';
    for (int k = 0; k < 2; k++) {
        id[299] = k ? 'B' : 'A';
        snprintf(msg, sizeof msg,
                 "MSH|^~\\&|LAB|L|PV|PV|20261201080000||ORU^R01|%s|P|2.5.1\r"
                 "PID|1||P-LONG\r"
                 "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||20261201060000\r",
                 id);
        struct out o = ingest_str(msg);
        CHECK_INT(o.ack, PV_HL7_AR);
        CHECK(strstr(o.text, "MSH-10 message control id is 300 characters") !=
              NULL);
    }
    CHECK_STR(q_rows("SELECT count(*) FROM observations WHERE patient_id = "
                     "'P-LONG'"),
              "0");
    /* 199 characters (the v2.7 maximum) are taken whole. */
    id[199] = '\0';
    snprintf(msg, sizeof msg,
             "MSH|^~\\&|LAB|L|PV|PV|20261201080000||ORU^R01|%s|P|2.5.1\r"
             "PID|1||P-LONG\r"
             "OBX|1|NM|751-8^ANC^LN||2.0|10*9/L|||||F|||20261201060000\r",
             id);
    struct out o = ingest_str(msg);
    CHECK_INT(o.ack, PV_HL7_AA);
    CHECK_STR(q_rows("SELECT length(control_id) FROM messages WHERE control_id "
                     "LIKE 'CCC%' AND status != 'rejected'"),
              "199");
}

int main(void)
{
    hl7_fixture_open("hl7_status");

    issue22_item15_plausible_times();
    issue22_item15_bad_obx14_not_replaced_by_msh7();
    issue15_item05_many_skipped_segments_fit_the_ack();
    issue15_item01_status_w_retires_and_f_replaces_p();
    issue15_item01_which_statuses_are_judged();
    issue15_item01_final_replaces_preliminary_of_its_order();
    issue15_item04_values_units_ranges_codes();
    issue15_item06_control_id_reused();
    long_control_id_refused_not_cut();

    return hl7_fixture_close();
}
