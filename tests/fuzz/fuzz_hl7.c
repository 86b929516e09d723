/* fuzz_hl7: libFuzzer target for the HL7 parser, splitter, escapes and ACK
 * builder. Besides crashes it checks the invariants callers rely on: decoded
 * text is never longer than the raw value, an ACK built for any message
 * parses again as an ACK, and escaping plain text decodes back to it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl7.h"

#define REQUIRE(c)                                                             \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

/* Ceilings small enough that a fuzzer input can reach them. */
static const pv_hl7_opts small = {65536, 64, 32, 0};

static void check_decode(const pv_hl7_msg *m, pv_span raw)
{
    char buf[512];
    size_t n = pv_hl7_decode(m, raw, buf, sizeof buf);
    REQUIRE(n <= raw.len);
    if (n < sizeof buf)
        REQUIRE(memchr(buf, '\0', n) == NULL);
}

/* Parses an ACK we built; it must be a well-formed ACK. */
static void check_ack(const char *a, size_t len, const char *code)
{
    pv_hl7_msg *am = NULL;
    pv_hl7_error e;
    REQUIRE(pv_hl7_parse(a, len, NULL, &am, &e) == 0);
    REQUIRE(pv_hl7_is_ack(am));
    REQUIRE(pv_hl7_raw_is_ack(a, len));
    long msa = pv_hl7_find(am, "MSA", 1);
    REQUIRE(msa == 1);
    pv_span c = pv_hl7_field(am, (size_t)msa, 1);
    REQUIRE(c.len == 2 && memcmp(c.ptr, code, 2) == 0);
    pv_hl7_free(am);
}

static void walk(const pv_hl7_msg *m)
{
    for (size_t s = 0; s < pv_hl7_segment_count(m); s++) {
        pv_span name = pv_hl7_segment_name(m, s);
        REQUIRE(name.len == 3);
        REQUIRE(pv_hl7_segment_line(m, s) > 0);
        size_t nf = pv_hl7_field_count(m, s);
        for (size_t f = 0; f <= nf + 1; f++) {
            pv_span fld = pv_hl7_field(m, s, f);
            REQUIRE(fld.ptr != NULL);
            check_decode(m, fld);
            size_t reps = pv_hl7_rep_count(m, s, f);
            for (size_t r = 1; r <= reps + 1 && r <= 4; r++)
                for (size_t c = 0; c <= 4; c++)
                    for (size_t u = 0; u <= 3; u++) {
                        pv_span v = pv_hl7_get(m, s, f, r, c, u);
                        REQUIRE(v.ptr != NULL && v.len <= fld.len);
                        check_decode(m, v);
                    }
        }
    }
}

static bool standard_delims(const pv_hl7_msg *m)
{
    pv_span enc = pv_hl7_field(m, 0, 2);
    pv_span fs = pv_hl7_field(m, 0, 1);
    return fs.len == 1 && fs.ptr[0] == '|' && enc.len == 4 &&
           memcmp(enc.ptr, "^~\\&", 4) == 0;
}

static void check_parsed(const pv_hl7_msg *m)
{
    walk(m);
    (void)pv_hl7_is_ack(m);
    pv_hl7_ack_info info = {PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                            "fuzz | ^ ~ \\ & \n text", "ACK1", 1700000000};
    char *a = NULL;
    size_t len = 0;
    REQUIRE(pv_hl7_ack(m, &info, &a, &len) == 0);
    check_ack(a, len, "AE");
    if (standard_delims(m)) {
        /* MSA-2 says what MSH-10 said. */
        pv_hl7_msg *am = NULL;
        REQUIRE(pv_hl7_parse(a, len, NULL, &am, NULL) == 0);
        char *x = pv_hl7_decode_dup(m, pv_hl7_control_id(m));
        char *y = pv_hl7_decode_dup(am, pv_hl7_field(am, 1, 2));
        REQUIRE(x && y && strcmp(x, y) == 0);
        free(x);
        free(y);
        pv_hl7_free(am);
    }
    free(a);
}

static int on_msg(void *ud, pv_span msg, long line)
{
    (void)ud;
    pv_hl7_opts o = small;
    o.first_line = line;
    pv_hl7_msg *m = NULL;
    pv_hl7_error e;
    if (pv_hl7_parse(msg.ptr, msg.len, &o, &m, &e) == 0) {
        REQUIRE(pv_hl7_segment_line(m, 0) == line);
        pv_hl7_free(m);
    } else {
        REQUIRE(m == NULL && e.reason[0]);
    }
    return 0;
}

static void on_fault(void *ud, long line, const char *reason)
{
    (void)ud;
    REQUIRE(line > 0 && reason && reason[0]);
}

/* Escaping any valid UTF-8 text without CR or NUL decodes back to it. */
static void check_escape(const char *data, size_t size)
{
    static pv_hl7_msg *std;
    if (!std) {
        const char s[] = "MSH|^~\\&|||||||ADT^A01|1|P|2.5";
        if (pv_hl7_parse(s, sizeof s - 1, NULL, &std, NULL))
            abort();
    }
    size_t n = size > 256 ? 256 : size;
    pv_span t = {data, n};
    size_t need = pv_hl7_escape(t, NULL, 0);
    REQUIRE(need <= 5 * n);
    char *esc = malloc(need + 1), *back = malloc(need + 1);
    REQUIRE(esc && back);
    REQUIRE(pv_hl7_escape(t, esc, need + 1) == need);
    pv_span e = {esc, need};
    size_t bn = pv_hl7_decode(std, e, back, need + 1);
    bool plain = memchr(data, '\0', n) == NULL && memchr(data, '\r', n) == NULL;
    /* Only check when the text is valid UTF-8: escape marks bad bytes as
     * \Xhh\ which decode deliberately leaves alone. */
    for (size_t i = 0; plain && i < n; i++)
        if ((unsigned char)data[i] >= 0x80)
            plain = false;
    if (plain)
        REQUIRE(bn == n && memcmp(back, data, n) == 0);
    free(esc);
    free(back);
}

/* libFuzzer's entry point (and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    pv_hl7_msg *m = NULL;
    pv_hl7_error e;
    int rc = pv_hl7_parse(in, size, &small, &m, &e);
    if (rc == 0) {
        check_parsed(m);
        pv_hl7_free(m);
    } else {
        REQUIRE(m == NULL);
        REQUIRE(rc == PV_EINVAL || rc == PV_ETOOBIG);
        REQUIRE(e.reason[0] != '\0');
    }

    /* Whatever the input, an AR can be built and parses back. */
    pv_hl7_ack_info info = {PV_HL7_AR, 0, e.reason, "ACK2", 0};
    char *a = NULL;
    size_t len = 0;
    REQUIRE(pv_hl7_ack_unparsed(in, size, &info, &a, &len) == 0);
    check_ack(a, len, "AR");
    free(a);
    (void)pv_hl7_raw_is_ack(in, size);

    pv_hl7_split(in, size, on_msg, on_fault, NULL);
    check_escape(in, size);
    return 0;
}
