/* test_hl7: the HL7 parser, escapes, splitter and ACK builder, over the
 * shared corpus (../shared/corpus/hl7) and hand-written edge cases. */
#include "hl7.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <time.h>

/* ---- Helpers ---------------------------------------------------------- */

static const char *shared_dir(void)
{
    const char *d = getenv("PV_SHARED_DIR");
    return d && *d ? d : "../../../shared";
}

/* Reads a file under the shared corpus; returns a malloc'd buffer. */
static char *read_corpus(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus/hl7/%s", shared_dir(), rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Parses the single message of a corpus file (found with the splitter, so
 * files ending in 0x1C or with blank lines work too). */
struct first {
    pv_span msg;
    long line;
    int count;
};

static int first_cb(void *ud, pv_span msg, long line)
{
    struct first *f = ud;
    if (f->count++ == 0) {
        f->msg = msg;
        f->line = line;
    }
    return 0;
}

static char *file_buf;

static pv_hl7_msg *load(const char *rel)
{
    size_t len = 0;
    free(file_buf);
    file_buf = read_corpus(rel, &len);
    if (!file_buf) {
        CHECK(!"corpus file missing");
        return NULL;
    }
    struct first f = {{NULL, 0}, 0, 0};
    pv_hl7_split(file_buf, len, first_cb, NULL, &f);
    if (f.count == 0) {
        CHECK(!"no message in file");
        return NULL;
    }
    pv_hl7_msg *m = NULL;
    pv_hl7_error e;
    pv_hl7_opts o = {0, 0, 0, f.line};
    int rc = pv_hl7_parse(f.msg.ptr, f.msg.len, &o, &m, &e);
    if (rc) {
        fprintf(stderr, "%s: %ld: %s\n", rel, e.line, e.reason);
        CHECK(!"corpus message did not parse");
    }
    return m;
}

static pv_hl7_msg *parse_str(const char *s)
{
    pv_hl7_msg *m = NULL;
    pv_hl7_error e;
    if (pv_hl7_parse(s, strlen(s), NULL, &m, &e)) {
        fprintf(stderr, "parse failed: %ld: %s\n", e.line, e.reason);
        CHECK(!"message did not parse");
    }
    return m;
}

/* Decodes a raw span into a static buffer for comparisons. */
static const char *dec(const pv_hl7_msg *m, pv_span raw)
{
    static char buf[65536];
    size_t n = pv_hl7_decode(m, raw, buf, sizeof buf);
    CHECK(n < sizeof buf);
    return buf;
}

static const char *dec_str(const pv_hl7_msg *m, const char *raw)
{
    pv_span s = {raw, strlen(raw)};
    return dec(m, s);
}

#define CHECK_PV(span, str) CHECK_SPAN((span).ptr, (span).len, str)
#define LIT(lit) ((pv_span){(lit), sizeof(lit) - 1})

static bool sp_eq(pv_span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static long seg(const pv_hl7_msg *m, const char *name, size_t nth)
{
    return pv_hl7_find(m, name, nth);
}

#define GET(m, name, nth, f, r, c, s)                                          \
    pv_hl7_get((m), (size_t)seg((m), (name), (nth)), (f), (r), (c), (s))

/* ---- Corpus: every file parses or is rejected with a reason ----------- */

struct outcome {
    int parsed, rejected, faults;
    char reasons[2048];
    int timeout;
};

static int outcome_msg(void *ud, pv_span msg, long line)
{
    struct outcome *o = ud;
    pv_hl7_msg *m = NULL;
    pv_hl7_error e;
    pv_hl7_opts opts = {0, 0, 0, line};
    int rc = pv_hl7_parse(msg.ptr, msg.len, &opts, &m, &e);
    if (rc == 0) {
        o->parsed++;
        /* Touch every field and decode it, as a mapper would. */
        for (size_t s = 0; s < pv_hl7_segment_count(m); s++)
            for (size_t f = 1; f <= pv_hl7_field_count(m, s); f++) {
                char *d = pv_hl7_decode_dup(m, pv_hl7_field(m, s, f));
                free(d);
            }
        pv_hl7_free(m);
    } else {
        o->rejected++;
        CHECK(m == NULL);
        CHECK(e.reason[0] != '\0');
        size_t l = strlen(o->reasons);
        snprintf(o->reasons + l, sizeof o->reasons - l, "line %ld: %s; ",
                 e.line, e.reason);
    }
    return 0;
}

static void outcome_fault(void *ud, long line, const char *reason)
{
    struct outcome *o = ud;
    o->faults++;
    size_t l = strlen(o->reasons);
    snprintf(o->reasons + l, sizeof o->reasons - l, "split line %ld: %s; ",
             line, reason);
}

static struct outcome run_file(const char *rel)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    size_t len;
    char *buf = read_corpus(rel, &len);
    if (!buf) {
        o.rejected = -1;
        return o;
    }
    clock_t t0 = clock();
    pv_hl7_split(buf, len, outcome_msg, outcome_fault, &o);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    o.timeout = secs > 2.0;
    free(buf);
    return o;
}

struct expect {
    const char *file;
    int parsed, rejected, faults;
    const char *reason; /* substring of the reasons, or NULL */
};

static const struct expect corpus[] = {
    {"adt_a01_crlf_odd_msh2.hl7", 0, 1, 0,
     "MSH-2 encoding characters '^~\\\\&' use '\\' twice"},
    {"adt_a01_empty_quotes_repeats.hl7", 1, 0, 0, NULL},
    {"adt_a01_escapes_T_R_lf.hl7", 1, 0, 0, NULL},
    {"adt_a03_subcomponents_lf.hl7", 1, 0, 0, NULL},
    {"adt_a24_nonstandard_delimiters.hl7", 1, 0, 0, NULL},
    {"bar_p01_nonstandard_subcomp_brace.hl7", 1, 0, 0, NULL},
    {"batch_bhs_two_msgs_bts.hl7", 2, 0, 0, NULL},
    {"batch_no_bhs_bts_only_msgs.hl7", 2, 0, 0, NULL},
    {"erp_r09_olis_chem_z_segments.hl7", 1, 0, 0, NULL},
    {"file_fhs_bhs_20_oru_cr.hl7", 20, 0, 0, NULL},
    {"file_fhs_bhs_two_oru_lf.hl7", 2, 0, 0, NULL},
    {"file_fhs_two_batches_fts.hl7", 3, 0, 0, NULL},
    {"mdm_t02_escapes_T_X_E.hl7", 1, 0, 0, NULL},
    {"oml_multi_msgs_blank_lines_cr.hl7", 11, 2, 0,
     "line 138: MSH-10 message control ID missing"},
    {"oml_o33_multiple_spm_obr_groups.hl7", 1, 0, 0, NULL},
    {"oru_olis_formatting_br_F_escapes.hl7", 1, 0, 0, NULL},
    {"oru_r01_athena_lri_amylase_lf.hl7", 1, 0, 0, NULL},
    {"oru_r01_elr_invalid_loinc.hl7", 1, 0, 0, NULL},
    {"oru_r01_glucose_sn_value.hl7", 1, 0, 0, NULL},
    {"oru_r01_hex_escape_trunc_char_multi_obr.hl7", 1, 0, 0, NULL},
    {"oru_r01_newborn_screen_escapes_utf8_lf.hl7", 1, 0, 0, NULL},
    {"oru_r01_nist_elr_lead_cr.hl7", 1, 0, 0, NULL},
    {"oru_r01_nist_lri_cbc_diff_crlf.hl7", 1, 0, 0, NULL},
    {"oru_r01_nist_lri_esr_corrected_crlf.hl7", 1, 0, 0, NULL},
    {"oru_r01_nist_lri_esr_final_nte_crlf.hl7", 1, 0, 0, NULL},
    {"oru_r01_nist_lri_lipid_text_ranges_crlf.hl7", 1, 0, 0, NULL},
    {"oru_r01_nist_lri_micro_parent_child_crlf.hl7", 1, 0, 0, NULL},
    {"oru_r01_rep_subcomponent_minimal.hl7", 1, 0, 0, NULL},
    {"oru_r01_tb_susceptibility_fffd_lf.hl7", 1, 0, 0, NULL},
    {"oru_r01_v23_br_escape_nte.hl7", 1, 0, 0, NULL},
    {"oul_r22_ssmix2_lab_jlac10_iso2022jp.hl7", 0, 1, 0,
     "unsupported character set 'ISO IR87' in MSH-18"},
    {"ras_o17_field_escape_zsegs_unknown_seg.hl7", 1, 0, 0, NULL},
    {"ras_o17_ssmix2_administration_iso2022jp.hl7", 0, 1, 0,
     "unsupported character set 'ISOIR87' in MSH-18"},
    {"rde_o11_ceftriaxone_subcomponents.hl7", 1, 0, 0, NULL},
    {"rde_o11_ssmix2_injection_iso2022jp.hl7", 0, 1, 0,
     "unsupported character set 'ISO IR87' in MSH-18"},
    {"rde_o11_ssmix2_oral_rx_iso2022jp.hl7", 0, 1, 0,
     "unsupported character set 'ISO IR87' in MSH-18"},
    {"vxu_v04_hepb_cvx.hl7", 1, 0, 0, NULL},
    {"malformed/bad_batch_nested_bhs.hl7", 0, 0, 1,
     "split line 4: BHS inside the batch opened at line 1 (nested batch)"},
    {"malformed/nhapi_fuzz_hang1.hl7", 0, 1, 0,
     "MSH-2 encoding characters '^' must be 4 or 5 characters"},
    {"malformed/nhapi_fuzz_highbyte_in_msh2.hl7", 0, 1, 0,
     "MSH-2 encoding characters contain non-ASCII byte 0xFD"},
    {"malformed/nhapi_fuzz_regex1_ctrl_chars.hl7", 0, 1, 0,
     "MSH-2 encoding characters contain control character 0x01"},
    {"malformed/nhapi_fuzz_so5_long_version.hl7", 0, 1, 0,
     "MSH-2 encoding character '0' is not a punctuation character"},
    {"malformed/nhapi_fuzz_stackoverflow1.hl7", 0, 1, 0,
     "MSH-2 encoding characters '^' must be 4 or 5 characters"},
};

static const struct expect *find_expect(const char *rel)
{
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++)
        if (strcmp(corpus[i].file, rel) == 0)
            return &corpus[i];
    return NULL;
}

/* Runs every file in a corpus directory: known files must give the
 * expected outcome, unknown ones must at least parse or give reasons. */
static void test_corpus_dir(const char *sub)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus/hl7%s%s", shared_dir(),
             sub[0] ? "/" : "", sub);
    DIR *d = opendir(path);
    CHECK(d != NULL);
    if (!d)
        return;
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 4, ".hl7") != 0)
            continue;
        char rel[512];
        snprintf(rel, sizeof rel, "%s%s%s", sub, sub[0] ? "/" : "", de->d_name);
        struct outcome o = run_file(rel);
        files++;
        printf("  %-50s parsed %d, rejected %d, faults %d%s%s\n", rel, o.parsed,
               o.rejected, o.faults, o.reasons[0] ? ": " : "", o.reasons);
        CHECK(!o.timeout);
        const struct expect *x = find_expect(rel);
        if (!x) {
            CHECK(o.rejected >= 0);
            continue;
        }
        CHECK_INT(o.parsed, x->parsed);
        CHECK_INT(o.rejected, x->rejected);
        CHECK_INT(o.faults, x->faults);
        if (x->reason && !strstr(o.reasons, x->reason)) {
            fprintf(stderr, "%s: expected reason \"%s\" in \"%s\"\n", rel,
                    x->reason, o.reasons);
            CHECK(!"reason");
        }
    }
    closedir(d);
    CHECK(files > 0);
}

/* ---- Corpus facts ----------------------------------------------------- */

static void test_cbc(void)
{
    pv_hl7_msg *m = load("oru_r01_nist_lri_cbc_diff_crlf.hl7");
    if (!m)
        return;
    CHECK_PV(pv_hl7_msg_type(m), "ORU");
    CHECK_PV(pv_hl7_trigger(m), "R01");
    CHECK_PV(pv_hl7_structure(m), "ORU_R01");
    CHECK_PV(pv_hl7_control_id(m), "NIST-LRI-GU-002.00");
    CHECK_PV(pv_hl7_processing_id(m), "T");
    CHECK_PV(pv_hl7_version(m), "2.5.1");
    CHECK_PV(pv_hl7_time(m), "20110531140551-0500");
    CHECK_PV(pv_hl7_sending_app(m), "^2.16.840.1.113883.3.72.5.20^ISO");
    CHECK_PV(pv_hl7_sending_facility(m), "^2.16.840.1.113883.3.72.5.21^ISO");
    CHECK_PV(pv_hl7_accept_ack(m), "AL");
    CHECK_PV(pv_hl7_app_ack(m), "NE");
    CHECK_PV(pv_hl7_charset(m), "");
    CHECK(!pv_hl7_is_ack(m));
    CHECK_PV(GET(m, "PID", 1, 3, 1, 1, 0), "PATID1234");
    CHECK_PV(GET(m, "PID", 1, 3, 1, 4, 2), "2.16.840.1.113883.3.72.5.30.2");
    CHECK_PV(GET(m, "PID", 1, 3, 1, 5, 0), "MR");
    CHECK_INT(pv_hl7_count(m, "OBX"), 28);
    CHECK_PV(GET(m, "OBX", 2, 3, 1, 1, 0), "718-7");
    CHECK_PV(GET(m, "OBX", 2, 3, 1, 3, 0), "LN");
    CHECK_PV(GET(m, "OBX", 2, 2, 1, 0, 0), "NM");
    CHECK_PV(GET(m, "OBX", 2, 5, 1, 0, 0), "12.5");
    CHECK_PV(GET(m, "OBX", 2, 6, 1, 1, 0), "g/mL");
    CHECK_PV(GET(m, "OBX", 2, 7, 0, 0, 0), "13 to 18");
    CHECK_PV(GET(m, "OBX", 2, 8, 1, 0, 0), "L");
    CHECK_PV(GET(m, "OBX", 2, 11, 1, 0, 0), "F");
    CHECK_PV(GET(m, "OBX", 2, 14, 1, 1, 0), "20110103143428-0800");
    /* Group order: PID, then OBR, then its OBX. */
    long pid = seg(m, "PID", 1), obr = seg(m, "OBR", 1);
    long obx = seg(m, "OBX", 1);
    CHECK(pid > 0 && obr > pid && obx > obr);
    CHECK_INT(pv_hl7_find_from(m, (size_t)obx + 1, "OBX"), obx + 1);
    CHECK_INT(pv_hl7_segment_line(m, 0), 1);
    CHECK_INT(pv_hl7_segment_line(m, (size_t)pid), pid + 1);
    pv_hl7_free(m);
}

static void test_lipid(void)
{
    pv_hl7_msg *m = load("oru_r01_nist_lri_lipid_text_ranges_crlf.hl7");
    if (!m)
        return;
    CHECK_INT(pv_hl7_count(m, "OBX"), 4);
    CHECK_PV(GET(m, "OBX", 1, 3, 1, 1, 0), "2093-3");
    CHECK_PV(GET(m, "OBX", 1, 5, 1, 0, 0), "196");
    CHECK_PV(GET(m, "OBX", 1, 6, 1, 1, 0), "mg/dL");
    CHECK_STR(dec(m, GET(m, "OBX", 1, 7, 1, 0, 0)),
              "Recommended: <200; Moderate Risk: 200-239 ; High Risk: >240");
    CHECK_PV(GET(m, "OBX", 4, 3, 1, 1, 0), "2089-1");
    CHECK_PV(GET(m, "OBX", 4, 5, 1, 0, 0), "116");
    pv_hl7_free(m);
}

static void test_esr(void)
{
    pv_hl7_msg *m = load("oru_r01_nist_lri_esr_final_nte_crlf.hl7");
    if (m) {
        /* MSH-2 has the v2.7 truncation character. */
        CHECK_PV(pv_hl7_field(m, 0, 2), "^~\\&#");
        CHECK_STR(dec_str(m, "50\\P\\"), "50#");
        CHECK_PV(GET(m, "OBX", 1, 3, 1, 1, 0), "30341-2");
        CHECK_PV(GET(m, "OBX", 1, 5, 1, 0, 0), "10");
        CHECK_PV(GET(m, "OBX", 1, 11, 1, 0, 0), "F");
        CHECK_PV(GET(m, "OBR", 1, 25, 1, 0, 0), "F");
        CHECK_INT(seg(m, "NTE", 1), seg(m, "OBR", 1) + 1);
        CHECK_INT(pv_hl7_rep_count(m, 0, 21), 3);
        CHECK_PV(pv_hl7_get(m, 0, 21, 2, 1, 0), "LRI_GU_Component");
        pv_hl7_free(m);
    }
    m = load("oru_r01_nist_lri_esr_corrected_crlf.hl7");
    if (m) {
        CHECK_PV(GET(m, "OBX", 1, 5, 1, 0, 0), "20");
        CHECK_PV(GET(m, "OBX", 1, 8, 1, 0, 0), "H");
        CHECK_PV(GET(m, "OBX", 1, 11, 1, 0, 0), "C");
        CHECK_PV(GET(m, "OBR", 1, 25, 1, 0, 0), "C");
        /* The NTE after the OBX belongs to it. */
        long obx = seg(m, "OBX", 1);
        CHECK_INT(pv_hl7_find_from(m, (size_t)obx, "NTE"), obx + 1);
        CHECK_STR(dec(m, pv_hl7_field(m, (size_t)obx + 1, 3)),
                  "Specimen re-analyzed per request of ordering provider.");
        pv_hl7_free(m);
    }
}

static void test_newborn(void)
{
    pv_hl7_msg *m = load("oru_r01_newborn_screen_escapes_utf8_lf.hl7");
    if (!m)
        return;
    CHECK_INT(pv_hl7_count(m, "OBX"), 149);
    CHECK_INT(pv_hl7_count(m, "OBR"), 20);
    CHECK_PV(GET(m, "PID", 1, 3, 1, 1, 0), "12345678");
    /* UTF-8 passes through unchanged. */
    long nm = -1, tx = -1;
    for (size_t i = 1; i <= 149; i++) {
        if (nm < 0 && sp_eq(GET(m, "OBX", i, 3, 1, 1, 0), "47633-3"))
            nm = seg(m, "OBX", i);
        if (tx < 0 && sp_eq(GET(m, "OBX", i, 3, 1, 1, 0), "57724-7"))
            tx = seg(m, "OBX", i);
    }
    CHECK(nm > 0);
    CHECK_PV(pv_hl7_get(m, (size_t)nm, 6, 1, 1, 0), "\xC2\xB5mol/L");
    CHECK_STR(dec(m, pv_hl7_get(m, (size_t)nm, 6, 1, 1, 0)), "\xC2\xB5mol/L");
    /* \.br\ and \R\ inside TX. */
    CHECK(tx > 0);
    CHECK_PV(pv_hl7_get(m, (size_t)tx, 2, 1, 0, 0), "TX");
    const char *t = dec(m, pv_hl7_field(m, (size_t)tx, 5));
    const char *want = "ACTION REQUIRED\n\nNBS Testing Lab - TEST REG MEDICAL "
                       "CENTER LAB ~M 57752YWKP NAEBC";
    CHECK(strncmp(t, want, strlen(want)) == 0);
    CHECK(strstr(t, "\\") == NULL);
    CHECK_INT(pv_hl7_segment_line(m, (size_t)tx), 12);
    pv_hl7_free(m);
}

static void test_rde_ras_vxu(void)
{
    pv_hl7_msg *m = load("rde_o11_ceftriaxone_subcomponents.hl7");
    if (m) {
        CHECK_PV(GET(m, "RXE", 1, 2, 1, 1, 0), "DEFAULTMED");
        CHECK_STR(dec(m, GET(m, "RXE", 1, 2, 1, 2, 0)),
                  "cefTRIAXone (ROCEPHIN) 2 g in sodium chloride 0.9 % 50 mL "
                  "IVPB");
        CHECK_PV(GET(m, "RXE", 1, 1, 1, 2, 1), "Q24H");
        CHECK_PV(GET(m, "RXE", 1, 1, 1, 2, 2), "0600");
        CHECK_PV(GET(m, "RXE", 1, 1, 1, 2, 3), "");
        CHECK_PV(GET(m, "RXE", 1, 3, 1, 0, 0), "2");
        CHECK_PV(GET(m, "RXE", 1, 5, 1, 1, 0), "g");
        CHECK_PV(GET(m, "PID", 1, 3, 1, 1, 0), "1234");
        pv_hl7_free(m);
    }
    m = load("ras_o17_field_escape_zsegs_unknown_seg.hl7");
    if (m) {
        CHECK_PV(pv_hl7_processing_id(m), "");
        CHECK_INT(pv_hl7_count(m, "RXA"), 2);
        CHECK_STR(dec(m, GET(m, "RXA", 1, 5, 1, 0, 0)),
                  "0001|Tylenol|http://acme.org/meds");
        CHECK_STR(dec(m, GET(m, "RXA", 2, 5, 1, 1, 0)),
                  "0002|Advil|http://acme.org/meds");
        CHECK_PV(GET(m, "RXA", 1, 6, 1, 0, 0), "10");
        CHECK_PV(GET(m, "RXA", 1, 7, 1, 1, 0), "mg");
        CHECK_INT(pv_hl7_rep_count(m, (size_t)seg(m, "RXA", 1), 9), 2);
        CHECK_PV(GET(m, "RXA", 1, 9, 2, 2, 0), "Tylenol note 2");
        CHECK_STR(dec(m, GET(m, "PV1", 1, 3, 1, 0, 0)),
                  "Acme Hospital|3rd Floor Room 124");
        CHECK(seg(m, "ABC", 1) > 0);
        CHECK_INT(pv_hl7_count(m, "ZXC"), 2);
        CHECK_PV(GET(m, "ZXC", 2, 1, 1, 0, 0), "Some ZXC value 2");
        CHECK_INT(pv_hl7_rep_count(m, (size_t)seg(m, "PID", 1), 3), 2);
        CHECK_PV(GET(m, "PID", 1, 3, 2, 5, 0), "SB");
        pv_hl7_free(m);
    }
    m = load("vxu_v04_hepb_cvx.hl7");
    if (m) {
        CHECK_PV(pv_hl7_msg_type(m), "VXU");
        CHECK_PV(GET(m, "RXA", 1, 5, 1, 1, 0), "08");
        CHECK_PV(GET(m, "RXA", 1, 5, 1, 2, 0), "HEPB-PEDIATRIC/ADOLESCENT");
        CHECK_PV(GET(m, "RXA", 1, 5, 1, 3, 0), "CVX");
        CHECK_PV(GET(m, "RXA", 1, 6, 1, 0, 0), ".5");
        CHECK_PV(GET(m, "RXA", 1, 7, 1, 1, 0), "mL");
        CHECK_PV(GET(m, "RXA", 1, 15, 1, 0, 0), "0039F");
        CHECK_PV(GET(m, "RXA", 1, 17, 1, 1, 0), "MSD");
        CHECK_PV(pv_hl7_field(m, 0, 5), " ");
        CHECK_PV(pv_hl7_accept_ack(m), "ER");
        CHECK_PV(pv_hl7_app_ack(m), "AL");
        pv_hl7_free(m);
    }
}

static void test_adt(void)
{
    pv_hl7_msg *m = load("adt_a01_empty_quotes_repeats.hl7");
    if (m) {
        CHECK_PV(pv_hl7_trigger(m), "A01");
        CHECK_PV(GET(m, "DG1", 1, 3, 1, 1, 0), "440.21");
        CHECK_PV(GET(m, "DG1", 1, 3, 1, 3, 0), "I9");
        CHECK(pv_hl7_is_null(GET(m, "DG1", 1, 5, 1, 0, 0)));
        CHECK(!pv_hl7_is_null(GET(m, "DG1", 1, 4, 1, 0, 0)));
        CHECK_INT(pv_hl7_rep_count(m, (size_t)seg(m, "PID", 1), 3), 2);
        CHECK_PV(GET(m, "PID", 1, 3, 2, 1, 0), "162840");
        CHECK_PV(GET(m, "PID", 1, 4, 2, 5, 0), "DONOR ");
        CHECK_INT(pv_hl7_count(m, "IN1"), 3);
        pv_hl7_free(m);
    }
    m = load("adt_a24_nonstandard_delimiters.hl7");
    if (m) {
        CHECK_PV(pv_hl7_field(m, 0, 1), "^");
        CHECK_PV(pv_hl7_field(m, 0, 2), "~|\\&");
        CHECK_PV(pv_hl7_get(m, 0, 2, 1, 1, 0), "~|\\&");
        CHECK_PV(pv_hl7_get(m, 0, 2, 1, 2, 0), "");
        CHECK_PV(pv_hl7_msg_type(m), "ADT");
        CHECK_PV(pv_hl7_trigger(m), "A24");
        CHECK_PV(pv_hl7_control_id(m), "2003582144");
        CHECK_PV(pv_hl7_version(m), "2.4");
        CHECK_PV(pv_hl7_sending_app(m), "SENDING");
        CHECK_INT(pv_hl7_count(m, "PID"), 2);
        CHECK_PV(GET(m, "PID", 1, 3, 1, 1, 0), "11111");
        CHECK_PV(GET(m, "PID", 1, 3, 1, 4, 3), "0363");
        CHECK_PV(GET(m, "PID", 1, 3, 1, 6, 2), "200M");
        CHECK_PV(GET(m, "PID", 2, 3, 1, 1, 0), "22222");
        CHECK_PV(GET(m, "PID", 1, 5, 1, 2, 0), "JOHN");
        CHECK_STR(dec_str(m, "a\\F\\b\\S\\c\\R\\d\\T\\e\\E\\f"),
                  "a^b~c|d&e\\f");
        CHECK_INT(pv_hl7_segment_line(m, 3), 4);
        pv_hl7_free(m);
    }
    m = load("bar_p01_nonstandard_subcomp_brace.hl7");
    if (m) {
        CHECK_PV(pv_hl7_field(m, 0, 2), "^~\\}");
        CHECK_PV(GET(m, "PID", 1, 3, 1, 1, 0), "429314294");
        CHECK_INT(pv_hl7_rep_count(m, (size_t)seg(m, "PID", 1), 13), 3);
        CHECK(seg(m, "DST", 1) > 0);
        /* '&' is plain text here, '}' the sub-component separator. */
        CHECK_STR(dec_str(m, "a&b\\T\\c"), "a&b}c");
        pv_hl7_free(m);
    }
    m = load("adt_a01_escapes_T_R_lf.hl7");
    if (m) {
        CHECK_STR(dec(m, GET(m, "PV2", 1, 12, 1, 0, 0)),
                  "<This field> should be found \"Encounter.text\" & "
                  "formatted as xhtml with correct escaped "
                  "characters.~HL7 newline should be processed as well");
        pv_hl7_free(m);
    }
}

static void test_escape_files(void)
{
    pv_hl7_msg *m = load("mdm_t02_escapes_T_X_E.hl7");
    if (m) {
        CHECK_STR(dec(m, GET(m, "OBX", 1, 5, 1, 0, 0)),
                  "&#39;Thirty days have September,\rApril\nJune,\nand "
                  "November.\nWhen short February is done,\\X0A\\all the "
                  "rest have&nbsp;31.&#39");
        pv_hl7_free(m);
    }
    m = load("oru_r01_hex_escape_trunc_char_multi_obr.hl7");
    if (m) {
        CHECK_STR(dec(m, GET(m, "NTE", 1, 3, 1, 0, 0)),
                  "Interpretation: \r\nNormal <5.7\r\nPrediabetes: "
                  "5.7-6.4\r\nDiabetic: &#8805;6.5");
        CHECK_INT(pv_hl7_count(m, "OBR"), 4);
        pv_hl7_free(m);
    }
    m = load("oru_olis_formatting_br_F_escapes.hl7");
    if (m) {
        CHECK_PV(pv_hl7_trigger(m), "");
        const char *t = dec(m, GET(m, "NTE", 1, 3, 1, 0, 0));
        CHECK(strncmp(t, "\n                  Lipid - Target Levels", 40) == 0);
        CHECK(strstr(t, "\n  |  Risk   |") != NULL);
        pv_hl7_free(m);
    }
    m = load("erp_r09_olis_chem_z_segments.hl7");
    if (m) {
        CHECK_PV(pv_hl7_charset(m), "8859/1");
        CHECK(seg(m, "ZNT", 1) > 0);
        pv_hl7_free(m);
    }
    m = load("oru_r01_tb_susceptibility_fffd_lf.hl7");
    if (m) {
        CHECK_INT(pv_hl7_count(m, "OBR"), 3);
        CHECK_PV(GET(m, "OBX", 1, 11, 1, 0, 0), "F");
        CHECK_PV(GET(m, "OBX", 2, 11, 1, 0, 0), "X");
        CHECK_INT(pv_hl7_count(m, "OBX"), 17);
        pv_hl7_free(m);
    }
}

/* ---- Splitting files -------------------------------------------------- */

struct collect {
    int n;
    long lines[32];
    char msgs[8][256];
    int faults;
    long fault_lines[8];
    char fault[8][320];
    int stop_after;
};

static int collect_msg(void *ud, pv_span msg, long line)
{
    struct collect *c = ud;
    if (c->n < 32)
        c->lines[c->n] = line;
    if (c->n < 8)
        snprintf(c->msgs[c->n], sizeof c->msgs[0], "%.*s", (int)msg.len,
                 msg.ptr);
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static void collect_fault(void *ud, long line, const char *reason)
{
    struct collect *c = ud;
    if (c->faults < 8) {
        c->fault_lines[c->faults] = line;
        snprintf(c->fault[c->faults], sizeof c->fault[0], "%s", reason);
    }
    c->faults++;
}

static struct collect split_str(const char *s, size_t len)
{
    struct collect c;
    memset(&c, 0, sizeof c);
    pv_hl7_split(s, len, collect_msg, collect_fault, &c);
    return c;
}

#define SPLIT(lit) split_str((lit), sizeof(lit) - 1)

#define M1 "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5"
#define M2 "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|2|P|2.5"

static void test_split(void)
{
    struct collect c = SPLIT(M1 "\rPID|1\r\r\r" M2 "\nEVN|A01\n");
    CHECK_INT(c.n, 2);
    CHECK_INT(c.faults, 0);
    CHECK_INT(c.lines[0], 1);
    CHECK_INT(c.lines[1], 5);
    CHECK_STR(c.msgs[0], M1 "\rPID|1");
    CHECK_STR(c.msgs[1], M2 "\nEVN|A01");

    /* CRLF counts as one line end; a UTF-8 BOM is skipped. */
    c = SPLIT("\xEF\xBB\xBF" M1 "\r\nPID|1\r\n\r\n" M2 "\r\n");
    CHECK_INT(c.n, 2);
    CHECK_INT(c.lines[1], 4);
    CHECK_STR(c.msgs[0], M1 "\r\nPID|1");

    /* MLLP framing bytes left in a dump file. */
    c = SPLIT("\x0b" M1 "\rPID|1\r\x1c\r\x0b" M2 "\r\x1c\r");
    CHECK_INT(c.n, 2);
    CHECK_INT(c.faults, 0);
    CHECK_STR(c.msgs[0], M1 "\rPID|1");
    CHECK_STR(c.msgs[1], M2);

    /* Lines before any MSH are one fault, then splitting goes on. */
    c = SPLIT("PID|1\rPV1|1\r" M1 "\r");
    CHECK_INT(c.n, 1);
    CHECK_INT(c.faults, 1);
    CHECK_INT(c.fault_lines[0], 1);
    CHECK(strstr(c.fault[0], "segment 'PID' outside a message") != NULL);

    /* Envelopes. */
    c = SPLIT("FHS|^~\\&\rBHS|^~\\&\r" M1 "\r" M2 "\rBTS|2\rFTS|1\r");
    CHECK_INT(c.n, 2);
    CHECK_INT(c.faults, 0);
    CHECK_INT(c.lines[0], 3);
    c = SPLIT("BHS|^~\\&\r" M1 "\rBTS|3\r");
    CHECK_INT(c.n, 1);
    CHECK_INT(c.faults, 1);
    CHECK_INT(c.fault_lines[0], 3);
    CHECK_STR(c.fault[0],
              "BTS-1 says 3 messages but the batch opened at line 1 has 1");
    c = SPLIT("BHS|^~\\&\r" M1 "\rBTS|x\r");
    CHECK_STR(c.fault[0], "BTS-1 batch message count is not a number");
    c = SPLIT(M1 "\rBTS|1\r");
    CHECK_INT(c.n, 1);
    CHECK_STR(c.fault[0], "BTS without an open batch (no BHS)");
    c = SPLIT("BHS|^~\\&\r" M1 "\r");
    CHECK_INT(c.n, 1);
    CHECK_INT(c.faults, 1);
    CHECK_STR(c.fault[0], "batch opened at line 1 has no BTS");
    CHECK_INT(c.fault_lines[0], 2);
    c = SPLIT(M1 "\rFHS|^~\\&\r");
    CHECK_STR(c.fault[0], "FHS is not the first segment of the file");
    c = SPLIT("FHS|^~\\&\r" M1 "\rFTS|1\r" M2 "\r");
    CHECK_INT(c.n, 1);
    CHECK_INT(c.faults, 1);
    CHECK_INT(c.fault_lines[0], 4);
    CHECK(strstr(c.fault[0], "text after FTS") != NULL);
    c = SPLIT("FHS|^~\\&\r" M1 "\rFTS|1\r\r\n\x1c\r");
    CHECK_INT(c.n, 1);
    CHECK_INT(c.faults, 0);
    c = SPLIT("FHS|^~\\&\r" M1 "\r");
    CHECK_STR(c.fault[0], "file header opened at line 1 has no FTS");
    CHECK_INT(c.fault_lines[0], 2);
    c = SPLIT("FHS|^~\\&\r" M1 "\rFTS|2\r");
    CHECK_STR(c.fault[0], "FTS-1 says 2 batches but the file has 0");
    c = SPLIT("FHS|^~\\&\r" M1 "\rFTS|0\r");
    CHECK_INT(c.faults, 0);
    c = SPLIT("FHS|^~\\&\rBHS|^~\\&\r" M1 "\rFTS|1\r");
    CHECK_INT(c.n, 1);
    CHECK_INT(c.faults, 1);
    CHECK_STR(c.fault[0], "batch opened at line 2 has no BTS");
    c = SPLIT("BHS|^~\\&\rBHS|^~\\&\r" M1 "\rBTS|1\r");
    CHECK_INT(c.n, 1);
    CHECK(strstr(c.fault[0], "nested batch") != NULL);
    c = SPLIT("FTS|0\r");
    CHECK_STR(c.fault[0], "FTS without FHS");

    /* A callback's nonzero return stops the walk. */
    struct collect s;
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    const char two[] = M1 "\r" M2 "\r";
    CHECK_INT(pv_hl7_split(two, sizeof two - 1, collect_msg, NULL, &s), 42);
    CHECK_INT(s.n, 1);

    /* Empty and blank input. */
    c = split_str("", 0);
    CHECK_INT(c.n + c.faults, 0);
    c = SPLIT("\r\n\r\n  \r");
    CHECK_INT(c.n + c.faults, 0);
    CHECK_INT(pv_hl7_split(NULL, 5, collect_msg, NULL, &s), 0);
}

/* The python-hl7 bad batch: the message cut by the nested BHS is reported,
 * not delivered truncated, and the lines after it are not messages. */
static void test_split_nested_bhs(void)
{
    size_t len;
    char *buf = read_corpus("malformed/bad_batch_nested_bhs.hl7", &len);
    if (!buf) {
        CHECK(!"missing");
        return;
    }
    struct collect c = split_str(buf, len);
    CHECK_INT(c.n, 0);
    CHECK_INT(c.faults, 1);
    CHECK_INT(c.fault_lines[0], 4);
    CHECK_STR(c.fault[0],
              "BHS inside the batch opened at line 1 (nested batch); the "
              "message at line 2 and the lines up to the next MSH are "
              "skipped");
    free(buf);
}

/* ---- Validation reasons ----------------------------------------------- */

#define MSH_OK "MSH|^~\\&|||||||ORU^R01|1|P|2.5"

static void expect_reject(const char *in, size_t len, const pv_hl7_opts *o,
                          int code, long line, const char *reason, int lineno)
{
    pv_hl7_msg *m = (pv_hl7_msg *)1;
    pv_hl7_error e;
    int rc = pv_hl7_parse(in, len, o, &m, &e);
    if (rc != code || m != NULL || e.line != line ||
        strcmp(e.reason, reason) != 0) {
        fprintf(stderr,
                "test_hl7.c:%d: want %d line %ld \"%s\", got %d line %ld "
                "\"%s\"\n",
                lineno, code, line, reason, rc, e.line, e.reason);
        pv_test_failed++;
        pv_hl7_free(m == (pv_hl7_msg *)1 ? NULL : m);
    } else {
        pv_test_passed++;
    }
}

#define REJECT(lit, code, line, reason)                                        \
    expect_reject((lit), sizeof(lit) - 1, NULL, (code), (line), (reason),      \
                  __LINE__)

static void test_reasons(void)
{
    REJECT("", PV_EINVAL, 0, "message is empty");
    REJECT("\r\n \r", PV_EINVAL, 0, "message is empty");
    REJECT("PID|1\r", PV_EINVAL, 1, "message does not start with MSH");
    REJECT("\r\nPID|1\r", PV_EINVAL, 2, "message does not start with MSH");
    REJECT(MSH_OK "\rPID|1\r\nX1|a\r", PV_EINVAL, 3,
           "segment name 'X1' is not 3 upper-case letters or digits");
    REJECT(MSH_OK "\rpid|1\r", PV_EINVAL, 2,
           "segment name 'pid' is not 3 upper-case letters or digits");
    REJECT(MSH_OK "\r PID|1\r", PV_EINVAL, 2,
           "segment name ' PID' is not 3 upper-case letters or digits");
    REJECT("MSH|^~\\&|||||||^R01|1|P|2.5", PV_EINVAL, 1,
           "MSH-9 message type missing");
    REJECT("MSH|^~\\&|||||||oru^R01|1|P|2.5", PV_EINVAL, 1,
           "MSH-9 message type 'oru' is not 3 upper-case letters or digits");
    REJECT("MSH|^~\\&|||||||ORU^R01x|1|P|2.5", PV_EINVAL, 1,
           "MSH-9 trigger event 'R01x' is not 3 upper-case letters or "
           "digits");
    REJECT("MSH|^~\\&|||||||ORU^R01||P|2.5", PV_EINVAL, 1,
           "MSH-10 message control ID missing");
    REJECT("MSH|^~\\&|||||||ORU^R01|1|P", PV_EINVAL, 1,
           "MSH-12 version ID missing");
    REJECT("MSH|^~\\&|||||||ORU^R01|1|P|2.8.100000000000000000000000000000",
           PV_EINVAL, 1,
           "MSH-12 version ID '2.8.100000000000000000000000000000' is not a "
           "version like 2.5.1");
    REJECT("MSH", PV_EINVAL, 1, "MSH segment has no field separator (MSH-1)");
    REJECT("MSHA^~\\&", PV_EINVAL, 1,
           "MSH-1 field separator 0x41 is not a printable punctuation "
           "character");
    REJECT("MSH ^~\\&", PV_EINVAL, 1,
           "MSH-1 field separator 0x20 is not a printable punctuation "
           "character");
    REJECT("MSH||", PV_EINVAL, 1, "MSH-2 encoding characters missing");
    REJECT("MSH|^~^&|", PV_EINVAL, 1,
           "MSH-2 encoding characters '^~^&' use '^' twice");
    REJECT("MSH|^~\\&##|", PV_EINVAL, 1,
           "MSH-2 encoding characters '^~\\&##' must be 4 or 5 characters "
           "(component, repetition, escape, sub-component [, truncation])");
    REJECT("MSH|^~\\\xFD|", PV_EINVAL, 1,
           "MSH-2 encoding characters contain non-ASCII byte 0xFD");
    REJECT(MSH_OK "\r" MSH_OK "\r", PV_EINVAL, 2,
           "second MSH segment in one message (split files into messages "
           "first)");
    REJECT(MSH_OK "\rBHS|^~\\&\r", PV_EINVAL, 2,
           "batch segment BHS inside a message");
    REJECT(MSH_OK "\rPID|1||x||Do\x01"
                  "e\r",
           PV_EINVAL, 2, "control character 0x01 in PID-5");
    REJECT(MSH_OK "\x1b(B\r", PV_EINVAL, 1, "control character 0x1B in MSH-12");
    REJECT(MSH_OK "\rPID|1||\xFFx\r", PV_EINVAL, 2,
           "invalid UTF-8 (byte 0xFF) in PID-3");
    REJECT(MSH_OK "\rPID|1||\xC3\r", PV_EINVAL, 2,
           "invalid UTF-8 (byte 0xC3) in PID-3");
    REJECT(MSH_OK "\rPID|1||\xC3|x\r", PV_EINVAL, 2,
           "invalid UTF-8 (byte 0xC3) in PID-3");
    REJECT(MSH_OK "\rPID|\xC0\xAF\r", PV_EINVAL, 2,
           "invalid UTF-8 (byte 0xC0) in PID-1");
    REJECT(MSH_OK "\rPID|\xED\xA0\x80\r", PV_EINVAL, 2,
           "invalid UTF-8 (byte 0xED) in PID-1");

    /* Character sets. */
    REJECT(MSH_OK "||||||~ISO IR87\r", PV_EINVAL, 1,
           "unsupported character set 'ISO IR87' in MSH-18");
    REJECT(MSH_OK "||||||GB 18030-2000\r", PV_EINVAL, 1,
           "unsupported character set 'GB 18030-2000' in MSH-18");
    REJECT(MSH_OK "||||||UNICODE UTF-8\rPID|\xE9\r", PV_EINVAL, 2,
           "invalid UTF-8 (byte 0xE9) in PID-1");
    REJECT(MSH_OK "||||||\xFF\xFE\r", PV_EINVAL, 1,
           "unsupported character set '\\xFF\\xFE' in MSH-18");

    /* Ceilings. */
    pv_hl7_opts o = {0, 3, 0, 0};
    const char four[] = MSH_OK "\rPID|1\rPV1|1\rOBX|1\r";
    expect_reject(four, sizeof four - 1, &o, PV_ETOOBIG, 4,
                  "message has more than 3 segments", __LINE__);
    pv_hl7_opts o2 = {0, 0, 5, 0};
    const char wide[] = MSH_OK "\rOBX|1|2|3|4|5|6\r";
    expect_reject(wide, sizeof wide - 1, &o2, PV_ETOOBIG, 1,
                  "segment MSH has more than 5 fields", __LINE__);
    pv_hl7_opts o3 = {10, 0, 0, 0};
    char why[128];
    snprintf(why, sizeof why, "message is %zu bytes, over the limit of 10",
             sizeof wide - 1);
    expect_reject(wide, sizeof wide - 1, &o3, PV_ETOOBIG, 0, why, __LINE__);
    /* first_line shifts reported lines to the file's numbering. */
    pv_hl7_opts o4 = {0, 0, 0, 100};
    const char bad[] = MSH_OK "\r\rX|1\r";
    expect_reject(bad, sizeof bad - 1, &o4, PV_EINVAL, 102,
                  "segment name 'X' is not 3 upper-case letters or digits",
                  __LINE__);
    /* A NULL err is allowed. */
    pv_hl7_msg *m = NULL;
    CHECK_INT(pv_hl7_parse("PID", 3, NULL, &m, NULL), PV_EINVAL);
    CHECK(m == NULL);
}

/* Hostile shapes from nHapi's fuzzers, scaled up: must stay linear. */
static void test_hostile(void)
{
    size_t n = 4 * 1024 * 1024;
    char *b = malloc(n + 64);
    if (!b)
        return;
    clock_t t0 = clock();

    /* One segment with millions of empty fields hits the field ceiling. */
    memcpy(b, MSH_OK "\rIN2", 4 + strlen(MSH_OK));
    size_t p = strlen(MSH_OK) + 4;
    memset(b + p, '|', n - p);
    pv_hl7_msg *m = NULL;
    pv_hl7_error e;
    CHECK_INT(pv_hl7_parse(b, n, NULL, &m, &e), PV_ETOOBIG);
    CHECK_STR(e.reason, "segment IN2 has more than 1000 fields");

    /* Millions of segments hit the segment ceiling. */
    p = strlen(MSH_OK);
    memcpy(b, MSH_OK, p);
    for (; p + 4 <= n; p += 4)
        memcpy(b + p, "\rZZ1", 4);
    CHECK_INT(pv_hl7_parse(b, p, NULL, &m, &e), PV_ETOOBIG);
    CHECK_STR(e.reason, "message has more than 10000 segments");

    /* Millions of blank lines and a long version string. */
    memset(b, '\r', n);
    CHECK_INT(pv_hl7_parse(b, n, NULL, &m, &e), PV_EINVAL);
    CHECK_STR(e.reason, "message is empty");

    /* A field of escape characters and one of unterminated escapes. */
    p = strlen(MSH_OK);
    memcpy(b, MSH_OK "\rNTE|", p + 5);
    memset(b + p + 5, '\\', n - p - 5);
    CHECK_INT(pv_hl7_parse(b, n, NULL, &m, &e), 0);
    if (m) {
        pv_span f = pv_hl7_field(m, 1, 1);
        CHECK_INT(f.len, n - p - 5);
        char *d = pv_hl7_decode_dup(m, f);
        CHECK(d && strlen(d) == f.len);
        free(d);
        pv_hl7_free(m);
    }
    for (size_t i = p + 5; i + 1 < n; i += 2)
        memcpy(b + i, "\\X", 2);
    CHECK_INT(pv_hl7_parse(b, n, NULL, &m, &e), 0);
    if (m) {
        char *d = pv_hl7_decode_dup(m, pv_hl7_field(m, 1, 1));
        CHECK(d != NULL);
        free(d);
        pv_hl7_free(m);
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("  hostile inputs: %.2f s\n", secs);
    CHECK(secs < 10.0);
    free(b);
}

/* ---- Accessors -------------------------------------------------------- */

static void test_accessors(void)
{
    pv_hl7_msg *m = parse_str("\xEF\xBB\xBF\r\n" MSH_OK
                              "\r\nPID|1|a~b^c&d&e~|x||\r\n\r\nOBX\r\n"
                              "OBX|1|NM\nNTE|1|\"\"");
    if (!m)
        return;
    CHECK_INT(pv_hl7_segment_count(m), 5);
    CHECK_INT(pv_hl7_segment_line(m, 0), 2);
    CHECK_INT(pv_hl7_segment_line(m, 1), 3);
    CHECK_INT(pv_hl7_segment_line(m, 2), 5);
    CHECK_INT(pv_hl7_segment_line(m, 4), 7);
    CHECK_INT(pv_hl7_segment_line(m, 5), 0);
    CHECK_PV(pv_hl7_segment_name(m, 2), "OBX");
    CHECK_PV(pv_hl7_segment_name(m, 9), "");
    CHECK(pv_hl7_segment_name(m, 9).ptr != NULL);
    CHECK_INT(pv_hl7_field_count(m, 0), 12);
    CHECK_INT(pv_hl7_field_count(m, 1), 5);
    CHECK_INT(pv_hl7_field_count(m, 2), 0);
    CHECK_INT(pv_hl7_field_count(m, 3), 2);
    CHECK_INT(pv_hl7_field_count(m, 99), 0);
    CHECK_PV(pv_hl7_field(m, 0, 1), "|");
    CHECK_PV(pv_hl7_field(m, 0, 2), "^~\\&");
    CHECK_PV(pv_hl7_field(m, 0, 9), "ORU^R01");
    CHECK_PV(pv_hl7_field(m, 0, 13), "");
    CHECK_PV(pv_hl7_field(m, 0, 0), "");
    CHECK_PV(pv_hl7_get(m, 0, 1, 2, 0, 0), "");
    CHECK_PV(pv_hl7_get(m, 0, 2, 1, 1, 1), "^~\\&");
    CHECK_PV(pv_hl7_field(m, 1, 2), "a~b^c&d&e~");
    CHECK_PV(pv_hl7_get(m, 1, 2, 0, 5, 5), "a~b^c&d&e~");
    CHECK_PV(pv_hl7_get(m, 1, 2, 1, 0, 0), "a");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 0, 0), "b^c&d&e");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 1, 0), "b");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 2, 0), "c&d&e");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 2, 1), "c");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 2, 3), "e");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 2, 4), "");
    CHECK_PV(pv_hl7_get(m, 1, 2, 2, 3, 0), "");
    CHECK_PV(pv_hl7_get(m, 1, 2, 3, 0, 0), "");
    CHECK_PV(pv_hl7_get(m, 1, 2, 4, 0, 0), "");
    CHECK_PV(pv_hl7_get(m, 1, 2, 1, 1, 1), "a");
    CHECK_INT(pv_hl7_rep_count(m, 1, 2), 3);
    CHECK_INT(pv_hl7_rep_count(m, 1, 3), 1);
    CHECK_INT(pv_hl7_rep_count(m, 1, 4), 0);
    CHECK_INT(pv_hl7_rep_count(m, 0, 2), 1);
    CHECK_PV(pv_hl7_field(m, 1, 5), "");
    CHECK_PV(pv_hl7_field(m, 1, 6), "");
    CHECK_PV(pv_hl7_field(m, 2, 1), "");
    CHECK_PV(pv_hl7_field(m, 3, 2), "NM");
    CHECK(pv_hl7_is_null(pv_hl7_field(m, 4, 2)));
    CHECK(!pv_hl7_is_null(pv_hl7_field(m, 4, 3)));
    CHECK_INT(pv_hl7_find(m, "OBX", 1), 2);
    CHECK_INT(pv_hl7_find(m, "OBX", 2), 3);
    CHECK_INT(pv_hl7_find(m, "OBX", 3), -1);
    CHECK_INT(pv_hl7_find(m, "OBX", 0), -1);
    CHECK_INT(pv_hl7_find(m, "OB", 1), -1);
    CHECK_INT(pv_hl7_find_from(m, 3, "OBX"), 3);
    CHECK_INT(pv_hl7_find_from(m, 4, "OBX"), -1);
    CHECK_INT(pv_hl7_find_from(m, 99, "OBX"), -1);
    CHECK_INT(pv_hl7_count(m, "OBX"), 2);
    CHECK_INT(pv_hl7_count(m, "ZZZ"), 0);
    pv_hl7_free(m);

    /* NULL messages are harmless. */
    CHECK_INT(pv_hl7_segment_count(NULL), 0);
    CHECK_PV(pv_hl7_field(NULL, 0, 1), "");
    CHECK_PV(pv_hl7_msg_type(NULL), "");
    CHECK_INT(pv_hl7_find(NULL, "MSH", 1), -1);
    CHECK(!pv_hl7_is_ack(NULL));
    pv_hl7_free(NULL);

    /* The caller's buffer may be reused once parsing returns. */
    char buf[] = MSH_OK "\rPID|1||ABC\r";
    m = parse_str(buf);
    memset(buf, 'x', sizeof buf - 1);
    if (m) {
        CHECK_PV(GET(m, "PID", 1, 3, 1, 1, 0), "ABC");
        pv_hl7_free(m);
    }
}

static void test_latin1(void)
{
    pv_hl7_msg *m = parse_str(MSH_OK "||||||8859/1\rPID|1||x||M\xFCller^J\xE9r"
                                     "\xF4me\r");
    if (m) {
        CHECK_PV(GET(m, "PID", 1, 5, 1, 1, 0), "M\xC3\xBCller");
        CHECK_PV(GET(m, "PID", 1, 5, 1, 2, 0), "J\xC3\xA9r\xC3\xB4me");
        CHECK_PV(pv_hl7_charset(m), "8859/1");
        pv_hl7_free(m);
    }
    const char *names[] = {"ISO IR100", "ISO_IR 100", "iso-8859-1", "Latin1",
                           "ISO8859-1"};
    for (size_t i = 0; i < 5; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, MSH_OK "||||||%s\rPID|\xB5g\r", names[i]);
        m = parse_str(msg);
        if (m)
            CHECK_PV(pv_hl7_field(m, 1, 1), "\xC2\xB5g");
        pv_hl7_free(m);
    }
    const char *utf8[] = {"UNICODE UTF-8", "ASCII",   "UTF-8",
                          "unicode utf-8", " ASCII ", "~UNICODE UTF-8",
                          "ISO IR6"};
    for (size_t i = 0; i < 7; i++) {
        char msg[256];
        snprintf(msg, sizeof msg, MSH_OK "||||||%s\rPID|\xC2\xB5g\r", utf8[i]);
        m = parse_str(msg);
        if (m)
            CHECK_PV(pv_hl7_field(m, 1, 1), "\xC2\xB5g");
        pv_hl7_free(m);
    }
}

/* ---- Escapes ---------------------------------------------------------- */

static void test_decode(void)
{
    pv_hl7_msg *m = parse_str(MSH_OK);
    pv_hl7_msg *t = parse_str("MSH|^~\\&#|||||||ORU^R01|1|P|2.5");
    if (!m || !t)
        return;
    CHECK_STR(dec_str(m, "foo\\F\\bar"), "foo|bar");
    CHECK_STR(dec_str(m, "line1\\.br\\line2"), "line1\nline2");
    CHECK_STR(dec_str(m, "\\S\\\\T\\\\R\\\\E\\"), "^&~\\");
    CHECK_STR(dec_str(m, "\\X41\\"), "A");
    CHECK_STR(dec_str(m, "a\\X0D0A\\b"), "a\r\nb");
    CHECK_STR(dec_str(m, "caf\\XC3A9\\"), "caf\xC3\xA9");
    CHECK_STR(dec_str(m, "\\x41\\"), "\\x41\\");
    CHECK_STR(dec_str(m, "\\XZZ\\"), "\\XZZ\\");
    CHECK_STR(dec_str(m, "\\X4\\"), "\\X4\\");
    CHECK_STR(dec_str(m, "\\X\\"), "\\X\\");
    CHECK_STR(dec_str(m, "\\X00\\"), "\\X00\\");
    CHECK_STR(dec_str(m, "\\XFF\\"), "\\XFF\\");
    CHECK_STR(dec_str(m, "\\XC3\\"), "\\XC3\\");
    CHECK_STR(dec_str(m, "a\\.sp\\b\\.sp2\\c\\.in+4\\d\\.ti-2\\e\\.sk3\\f"),
              "abcdef");
    CHECK_STR(dec_str(m, "\\.ce\\a\\.fi\\b\\.nf\\"), "ab");
    CHECK_STR(dec_str(m, "\\H\\bold\\N\\ text"), "bold text");
    CHECK_STR(dec_str(m, "\\.sp+\\"), "\\.sp+\\");
    CHECK_STR(dec_str(m, "\\.spx\\"), "\\.spx\\");
    CHECK_STR(dec_str(m, "\\.xx\\"), "\\.xx\\");
    CHECK_STR(dec_str(m, "\\Q\\"), "\\Q\\");
    CHECK_STR(dec_str(m, "\\Zlocal\\x"), "\\Zlocal\\x");
    CHECK_STR(dec_str(m, "\\C2842\\"), "\\C2842\\");
    CHECK_STR(dec_str(m, "abc\\F"), "abc\\F");
    CHECK_STR(dec_str(m, "\\"), "\\");
    CHECK_STR(dec_str(m, "\\\\"), "\\\\");
    CHECK_STR(dec_str(m, "\\Q\\F\\"), "\\Q\\F\\");
    CHECK_STR(dec_str(m, "\\E\\X0A\\E\\"), "\\X0A\\");
    CHECK_STR(dec_str(m, "\\P\\"), "\\P\\");
    CHECK_STR(dec_str(t, "\\P\\"), "#");
    CHECK_STR(dec_str(m, ""), "");

    /* snprintf-style truncation. */
    char out[4];
    pv_span s = {"foo\\F\\bar", 9};
    CHECK_INT(pv_hl7_decode(m, s, out, sizeof out), 7);
    CHECK_STR(out, "foo");
    CHECK_INT(pv_hl7_decode(m, s, NULL, 0), 7);
    CHECK_INT(pv_hl7_decode(m, s, out, 1), 7);
    CHECK_STR(out, "");
    char *d = pv_hl7_decode_dup(m, s);
    CHECK_STR(d, "foo|bar");
    free(d);
    pv_span null_span = {NULL, 0};
    CHECK_INT(pv_hl7_decode(m, null_span, out, sizeof out), 0);
    pv_hl7_free(m);
    pv_hl7_free(t);
}

static void test_escape(void)
{
    char out[256];
    pv_span s = LIT("a|b^c~d\\e&f\ng\r\nh\ri\x01j\tk\x7f");
    size_t n = pv_hl7_escape(s, out, sizeof out);
    CHECK_STR(out, "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\.br\\g\\.br\\h\\.br\\i"
                   "\\X01\\j\tk\\X7F\\");
    CHECK_INT(n, strlen(out));
    pv_span u = LIT("caf\xC3\xA9 \xFF \xE2\x82");
    pv_hl7_escape(u, out, sizeof out);
    CHECK_STR(out, "caf\xC3\xA9 \\XFF\\ \\XE2\\\\X82\\");
    CHECK_INT(pv_hl7_escape(s, NULL, 0), n);
    /* Escaped text decodes back. */
    pv_hl7_msg *m = parse_str(MSH_OK);
    if (m) {
        pv_span t = LIT("x|y^z~w\\v&u\nt");
        pv_hl7_escape(t, out, sizeof out);
        CHECK_STR(dec_str(m, out), "x|y^z~w\\v&u\nt");
        pv_hl7_free(m);
    }
}

/* ---- ACKs ------------------------------------------------------------- */

static char *ack(const pv_hl7_msg *m, pv_hl7_ack_code code, int error,
                 const char *text)
{
    pv_hl7_ack_info info = {code, error, text, "ACK0001", 1700000000};
    char *out = NULL;
    size_t len = 0;
    int rc = pv_hl7_ack(m, &info, &out, &len);
    CHECK_INT(rc, 0);
    if (out)
        CHECK_INT(len, strlen(out));
    return out;
}

static void test_ack(void)
{
    pv_hl7_msg *m = parse_str("MSH|^~\\&|LAB^1.2.3^ISO|HOSP|PV|SAFETY|"
                              "20260101||ORU^R01^ORU_R01|MSG00042|T|2.5.1\r"
                              "PID|1||P1\r");
    if (!m)
        return;
    char *a = ack(m, PV_HL7_AA, 0, "ignored");
    CHECK_STR(a, "MSH|^~\\&|PV|SAFETY|LAB^1.2.3^ISO|HOSP|"
                 "20231114221320+0000||ACK^R01^ACK|ACK0001|T|2.5.1\r"
                 "MSA|AA|MSG00042\r");
    /* The ACK parses, is an ACK, and must not be acknowledged. */
    pv_hl7_msg *am = parse_str(a);
    if (am) {
        CHECK(pv_hl7_is_ack(am));
        CHECK_PV(GET(am, "MSA", 1, 2, 1, 0, 0), "MSG00042");
        pv_hl7_free(am);
    }
    CHECK(pv_hl7_raw_is_ack(a, strlen(a)));
    free(a);

    a = ack(m, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
            "PID-3 missing | see ^ & \\ ~\nline 2");
    CHECK_STR(a, "MSH|^~\\&|PV|SAFETY|LAB^1.2.3^ISO|HOSP|"
                 "20231114221320+0000||ACK^R01^ACK|ACK0001|T|2.5.1\r"
                 "MSA|AE|MSG00042\r"
                 "ERR|||101^Required field missing^HL70357|E||||PID-3 "
                 "missing \\F\\ see \\S\\ \\T\\ \\E\\ \\R\\\\.br\\line 2\r");
    pv_hl7_msg *em = parse_str(a);
    if (em) {
        CHECK_STR(dec(em, GET(em, "ERR", 1, 8, 1, 0, 0)),
                  "PID-3 missing | see ^ & \\ ~\nline 2");
        CHECK_PV(GET(em, "ERR", 1, 3, 1, 1, 0), "101");
        CHECK_PV(GET(em, "ERR", 1, 4, 1, 0, 0), "E");
        pv_hl7_free(em);
    }
    free(a);

    a = ack(m, PV_HL7_AR, 0, NULL);
    CHECK(a && strstr(a, "MSA|AR|MSG00042\r"
                         "ERR|||207^Application internal error^HL70357|E||||"
                         "\r") != NULL);
    free(a);
    a = ack(m, PV_HL7_AR, 999, "x");
    CHECK(a &&
          strstr(a, "ERR|||207^Application internal error^HL70357") != NULL);
    free(a);
    a = ack(m, PV_HL7_AR, PV_HL7_ERR_UNSUPPORTED_VERSION, "v");
    CHECK(a && strstr(a, "ERR|||203^Unsupported version id^HL70357") != NULL);
    free(a);

    /* Misuse. */
    char *out = (char *)1;
    size_t len = 5;
    pv_hl7_ack_info bad = {PV_HL7_AA, 0, NULL, NULL, 0};
    CHECK_INT(pv_hl7_ack(m, &bad, &out, &len), PV_EINVAL);
    CHECK(out == NULL);
    bad.control_id = "";
    CHECK_INT(pv_hl7_ack(m, &bad, &out, &len), PV_EINVAL);
    bad.control_id = "X";
    bad.code = (pv_hl7_ack_code)7;
    CHECK_INT(pv_hl7_ack(m, &bad, &out, &len), PV_EINVAL);
    CHECK_INT(pv_hl7_ack(NULL, &bad, &out, &len), PV_EINVAL);
    pv_hl7_free(m);

    /* Non-standard delimiters are translated to ours, values included. */
    m = load("adt_a24_nonstandard_delimiters.hl7");
    if (m) {
        a = ack(m, PV_HL7_AA, 0, NULL);
        CHECK_STR(a, "MSH|^~\\&|RECEIVING|200|SENDING|200M|"
                     "20231114221320+0000||ACK^A24^ACK|ACK0001|T|2.4\r"
                     "MSA|AA|2003582144\r");
        free(a);
        pv_hl7_free(m);
    }
    m = parse_str("MSH^~|\\&^A~x|y&z\\F\\|^B^^^^^ADT~A01^C^P^2.5");
    if (m) {
        a = ack(m, PV_HL7_AA, 0, NULL);
        CHECK_STR(a, "MSH|^~\\&|||A^x~y&z\\F\\~|B|"
                     "20231114221320+0000||ACK^A01^ACK|ACK0001|P|2.5\r"
                     "MSA|AA|C\r");
        free(a);
        pv_hl7_free(m);
    }
    /* '&' is text when '}' separates sub-components: ours must escape it. */
    m = parse_str("MSH|^~\\}|A&B}C||||||ADT^A01|X&Y|P|2.4");
    if (m) {
        a = ack(m, PV_HL7_AA, 0, NULL);
        CHECK_STR(a, "MSH|^~\\&|||A\\T\\B&C||20231114221320+0000||"
                     "ACK^A01^ACK|ACK0001|P|2.4\rMSA|AA|X\\T\\Y\r");
        free(a);
        pv_hl7_free(m);
    }
    /* The ACK's control ID is escaped; the time is UTC. */
    m = parse_str(MSH_OK);
    if (m) {
        pv_hl7_ack_info info = {PV_HL7_AA, 0, NULL, "a|b", 0};
        CHECK_INT(pv_hl7_ack(m, &info, &out, &len), 0);
        CHECK_STR(out, "MSH|^~\\&|||||19700101000000+0000||ACK^R01^ACK|"
                       "a\\F\\b|P|2.5\rMSA|AA|1\r");
        free(out);
        info.now = 951782400 + 86399; /* 2000-02-29T23:59:59Z */
        pv_hl7_ack(m, &info, &out, &len);
        CHECK(out && strstr(out, "|20000229235959+0000|") != NULL);
        free(out);
        info.now = -1;
        pv_hl7_ack(m, &info, &out, &len);
        CHECK(out && strstr(out, "|19691231235959+0000|") != NULL);
        free(out);
        info.now = INT64_MAX;
        pv_hl7_ack(m, &info, &out, &len);
        CHECK(out && strstr(out, "|||ACK^R01^ACK|") != NULL);
        free(out);
        pv_hl7_free(m);
    }
}

static void test_ack_unparsed(void)
{
    pv_hl7_ack_info info = {PV_HL7_AR, 0, "message does not start with MSH",
                            "ACK9", 1700000000};
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(pv_hl7_ack_unparsed("garbage", 7, &info, &out, &len), 0);
    CHECK_STR(out, "MSH|^~\\&|||||20231114221320+0000||ACK^^ACK|ACK9|P|2.5\r"
                   "MSA|AR|\r"
                   "ERR|||207^Application internal error^HL70357|E||||"
                   "message does not start with MSH\r");
    CHECK_INT(len, strlen(out));
    free(out);
    CHECK_INT(pv_hl7_ack_unparsed(NULL, 0, &info, &out, &len), 0);
    CHECK(out && strstr(out, "MSA|AR|\r") != NULL);
    free(out);

    /* A message rejected for its character set still gets its MSA-2. */
    size_t flen;
    char *f = read_corpus("oul_r22_ssmix2_lab_jlac10_iso2022jp.hl7", &flen);
    if (f) {
        info.text = "unsupported character set 'ISO IR87' in MSH-18";
        CHECK_INT(pv_hl7_ack_unparsed(f, flen, &info, &out, &len), 0);
        CHECK_STR(out, "MSH|^~\\&|GW|RCV|HIS123|SEND|20231114221320+0000||"
                       "ACK^R22^ACK|ACK9|P|2.5\r"
                       "MSA|AR|20111220131032\r"
                       "ERR|||207^Application internal error^HL70357|E||||"
                       "unsupported character set 'ISO IR87' in MSH-18\r");
        free(out);
        free(f);
    }
    /* Unusable MSH-2: values are copied as text, control ID included. */
    f = read_corpus("malformed/nhapi_fuzz_hang1.hl7", &flen);
    if (f) {
        info.text = NULL;
        CHECK_INT(pv_hl7_ack_unparsed(f, flen, &info, &out, &len), 0);
        CHECK_STR(out, "MSH|^~\\&|||||20231114221320+0000||ACK^^ACK|ACK9|P|"
                       "2.2\rMSA|AR|\r"
                       "ERR|||207^Application internal error^HL70357|E||||"
                       "\r");
        free(out);
        free(f);
    }
    /* Values with control bytes or absurd lengths are left out. */
    const char junk[] = "\x0bMSH|^~\\&|A\x01|B|||||ORU^R01|1|P|"
                        "2.8.10000000000000000000000000000000\r";
    CHECK_INT(pv_hl7_ack_unparsed(junk, sizeof junk - 1, &info, &out, &len), 0);
    CHECK_STR(out, "MSH|^~\\&||||B|20231114221320+0000||ACK^R01^ACK|ACK9|P|"
                   "2.5\rMSA|AR|1\r"
                   "ERR|||207^Application internal error^HL70357|E||||\r");
    free(out);
    info.control_id = NULL;
    CHECK_INT(pv_hl7_ack_unparsed(junk, sizeof junk - 1, &info, &out, &len),
              PV_EINVAL);
}

static void test_raw_is_ack(void)
{
    const char a1[] = "MSH|^~\\&|A|B|C|D|2026||ACK^R01^ACK|1|P|2.5\rMSA|AA|9";
    const char a2[] = "\r\nMSH|^~\\&|A|B|C|D|2026||ACK|1|P|2.5";
    const char a3[] = "MSH|^|A|B|C|D|2026||ACK^R01|1|P|2.5";
    const char n1[] = "MSH|^~\\&|A|B|C|D|2026||ACKX^R01|1|P|2.5";
    const char n2[] = "MSH|^~\\&|A|B|C|D|2026||ORU^R01|1|P|2.5";
    const char n3[] = "PID|ACK";
    CHECK(pv_hl7_raw_is_ack(a1, sizeof a1 - 1));
    CHECK(pv_hl7_raw_is_ack(a2, sizeof a2 - 1));
    CHECK(pv_hl7_raw_is_ack(a3, sizeof a3 - 1));
    CHECK(!pv_hl7_raw_is_ack(n1, sizeof n1 - 1));
    CHECK(!pv_hl7_raw_is_ack(n2, sizeof n2 - 1));
    CHECK(!pv_hl7_raw_is_ack(n3, sizeof n3 - 1));
    CHECK(!pv_hl7_raw_is_ack("MSH|", 4));
    CHECK(!pv_hl7_raw_is_ack(NULL, 0));
}

int main(void)
{
    printf("corpus:\n");
    test_corpus_dir("");
    test_corpus_dir("malformed");
    test_cbc();
    test_lipid();
    test_esr();
    test_newborn();
    test_rde_ras_vxu();
    test_adt();
    test_escape_files();
    test_split();
    test_split_nested_bhs();
    test_reasons();
    test_hostile();
    test_accessors();
    test_latin1();
    test_decode();
    test_escape();
    test_ack();
    test_ack_unparsed();
    test_raw_is_ack();
    free(file_buf);
    return pv_test_report();
}
