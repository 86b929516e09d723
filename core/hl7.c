/* hl7: see hl7.h. Offsets into the message copy are kept as uint32_t, which
 * halves the index's memory; the size ceiling is clamped so that they fit. */
#include "hl7.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Offsets must fit in 32 bits even after ISO 8859-1 doubles the size. */
#define HARD_MAX_BYTES ((size_t)1 << 30)

/* A value copied from an unparsed message into an ACK must be short; longer
 * ones are more likely garbage than a control ID. */
#define UNPARSED_FIELD_MAX 199

struct delims {
    char fs, cs, rs, es, ss, tc; /* tc is 0 when MSH-2 has 4 characters */
};

struct seg {
    uint32_t start; /* offset of the segment name */
    uint32_t end;   /* offset just past the last byte, before the line end */
    uint32_t first; /* index in fstart of element 0, the name */
    uint32_t nelem; /* elements, the name included */
    long line;
};

struct pv_hl7_msg {
    char *buf; /* owned UTF-8 copy, NUL-terminated */
    size_t len;
    struct delims d;
    struct seg *segs;
    size_t nseg, segcap;
    uint32_t *fstart; /* start offset of every element of every segment */
    size_t nf, fcap;
};

static const char empty_str[1] = "";

static pv_span empty_span(void)
{
    pv_span s = {empty_str, 0};
    return s;
}

static pv_span mkspan(const char *p, size_t n)
{
    pv_span s = {p, n};
    return s;
}

/* ---- Small helpers ---------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int
set_error(pv_hl7_error *err, int code, long line, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->line = line;
        vsnprintf(err->reason, sizeof err->reason, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Renders bytes taken from the input for a reason: printable ASCII as is,
 * everything else as \xNN, cut at 40 bytes so a hostile value cannot crowd
 * out the rest of the message. */
static const char *quote(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    size_t shown = n > 40 ? 40 : n;
    for (size_t i = 0; i < shown && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02X", c);
    }
    if (shown < n && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o < cap ? o : cap - 1] = '\0';
    return dst;
}

static bool is_upper_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_alnum(unsigned char c)
{
    return is_upper_alnum(c) || (c >= 'a' && c <= 'z');
}

static bool span_eq(pv_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Index of the first CR or LF at or after pos, or len. */
static size_t line_end(const char *b, size_t pos, size_t len)
{
    while (pos < len && b[pos] != '\r' && b[pos] != '\n')
        pos++;
    return pos;
}

/* Position after the line end at eol (CRLF counts as one). */
static size_t next_line(const char *b, size_t eol, size_t len)
{
    if (eol >= len)
        return len;
    if (b[eol] == '\r' && eol + 1 < len && b[eol + 1] == '\n')
        return eol + 2;
    return eol + 1;
}

static bool is_blank(const char *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (b[i] != ' ' && b[i] != '\t')
            return false;
    return true;
}

/* A streaming UTF-8 validator: rejects overlong forms, surrogates and code
 * points above U+10FFFF, one byte at a time so that the same code checks a
 * segment, an escaped hex run or an ERR text. */
struct u8v {
    int need;
    unsigned char lo, hi;
};

static bool u8v_step(struct u8v *v, unsigned char b)
{
    if (v->need == 0) {
        v->lo = 0x80;
        v->hi = 0xBF;
        if (b < 0x80)
            return true;
        if (b >= 0xC2 && b <= 0xDF)
            v->need = 1;
        else if (b == 0xE0) {
            v->need = 2;
            v->lo = 0xA0;
        } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
            v->need = 2;
        else if (b == 0xED) {
            v->need = 2;
            v->hi = 0x9F;
        } else if (b == 0xF0) {
            v->need = 3;
            v->lo = 0x90;
        } else if (b >= 0xF1 && b <= 0xF3)
            v->need = 3;
        else if (b == 0xF4) {
            v->need = 3;
            v->hi = 0x8F;
        } else
            return false;
        return true;
    }
    if (b < v->lo || b > v->hi)
        return false;
    v->need--;
    v->lo = 0x80;
    v->hi = 0xBF;
    return true;
}

/* Length of the valid UTF-8 sequence starting at s, or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    struct u8v v = {0, 0x80, 0xBF};
    for (size_t i = 0; i < n && i < 4; i++) {
        if (!u8v_step(&v, s[i]))
            return 0;
        if (v.need == 0)
            return i + 1;
    }
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte two hex digits stand for, or -1. */
static int hexpair(const char *h)
{
    int hi = hexval((unsigned char)h[0]), lo = hexval((unsigned char)h[1]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* ---- Delimiters and MSH-18 ------------------------------------------- */

static bool delim_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !is_alnum(c);
}

/* Reads MSH-1 and MSH-2 from an MSH line (line[0..n) starts with "MSH").
 * Fills d, or writes a reason into why and returns false. */
static bool read_delims(const char *line, size_t n, struct delims *d, char *why,
                        size_t whycap)
{
    char q[200];
    if (n < 4) {
        snprintf(why, whycap, "MSH segment has no field separator (MSH-1)");
        return false;
    }
    unsigned char fs = (unsigned char)line[3];
    if (!delim_ok(fs)) {
        snprintf(why, whycap,
                 "MSH-1 field separator 0x%02X is not a printable "
                 "punctuation character",
                 fs);
        return false;
    }
    size_t e = 4;
    while (e < n && (unsigned char)line[e] != fs)
        e++;
    const char *enc = line + 4;
    size_t elen = e - 4;
    if (elen == 0) {
        snprintf(why, whycap, "MSH-2 encoding characters missing");
        return false;
    }
    for (size_t i = 0; i < elen && i < 5; i++) {
        unsigned char c = (unsigned char)enc[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, whycap,
                     "MSH-2 encoding characters contain control character "
                     "0x%02X",
                     c);
            return false;
        }
        if (c >= 0x80) {
            snprintf(why, whycap,
                     "MSH-2 encoding characters contain non-ASCII byte 0x%02X",
                     c);
            return false;
        }
        if (!delim_ok(c)) {
            snprintf(why, whycap,
                     "MSH-2 encoding character '%c' is not a punctuation "
                     "character",
                     c);
            return false;
        }
    }
    if (elen != 4 && elen != 5) {
        snprintf(why, whycap,
                 "MSH-2 encoding characters '%s' must be 4 or 5 characters "
                 "(component, repetition, escape, sub-component "
                 "[, truncation])",
                 quote(q, sizeof q, enc, elen));
        return false;
    }
    /* The field separator cannot recur here: it ends MSH-2. */
    for (size_t i = 1; i < elen; i++) {
        if (memchr(enc, enc[i], i)) {
            snprintf(why, whycap,
                     "MSH-2 encoding characters '%s' use '%c' twice",
                     quote(q, sizeof q, enc, elen), enc[i]);
            return false;
        }
    }
    d->fs = (char)fs;
    d->cs = enc[0];
    d->rs = enc[1];
    d->es = enc[2];
    d->ss = enc[3];
    d->tc = elen == 5 ? enc[4] : '\0';
    return true;
}

/* Element k (0 = the name) of a line split on fs, or an empty span. */
static pv_span line_elem(const char *line, size_t n, char fs, size_t k)
{
    size_t i = 0;
    for (size_t e = 0; e < k; e++) {
        const char *p = memchr(line + i, fs, n - i);
        if (!p)
            return empty_span();
        i = (size_t)(p - line) + 1;
    }
    const char *p = memchr(line + i, fs, n - i);
    size_t end = p ? (size_t)(p - line) : n;
    return mkspan(line + i, end - i);
}

/* The nth (1-based) piece of s split on sep, or an empty span. */
static pv_span nth_piece(pv_span s, char sep, size_t nth)
{
    size_t i = 0;
    for (size_t k = 1; k < nth; k++) {
        const char *p = memchr(s.ptr + i, sep, s.len - i);
        if (!p)
            return empty_span();
        i = (size_t)(p - s.ptr) + 1;
    }
    const char *p = memchr(s.ptr + i, sep, s.len - i);
    size_t end = p ? (size_t)(p - s.ptr) : s.len;
    return mkspan(s.ptr + i, end - i);
}

enum charset { CS_UTF8, CS_LATIN1, CS_BAD };

/* Classifies one MSH-18 value. Spelling varies between senders ("8859/1",
 * "ISO-8859-1", "ISO IR100", "ISO_IR 100"), so spaces, '_', '-' and '/' are
 * ignored and case is folded before comparing. ASCII is treated as UTF-8:
 * senders that say ASCII but send UTF-8 are common, and ASCII is a subset. */
static enum charset classify_charset(pv_span v)
{
    char norm[24];
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c == ' ' || c == '_' || c == '-' || c == '/')
            continue;
        if (n + 1 >= sizeof norm)
            return CS_BAD;
        norm[n++] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    norm[n] = '\0';
    static const char *const utf8[] = {"",        "ASCII",       "USASCII",
                                       "ISOIR6",  "UNICODEUTF8", "UTF8",
                                       "UNICODE", NULL};
    static const char *const latin1[] = {"88591", "ISO88591", "ISOIR100",
                                         "LATIN1", NULL};
    for (size_t i = 0; utf8[i]; i++)
        if (strcmp(norm, utf8[i]) == 0)
            return CS_UTF8;
    for (size_t i = 0; latin1[i]; i++)
        if (strcmp(norm, latin1[i]) == 0)
            return CS_LATIN1;
    return CS_BAD;
}

/* Decides the character set from MSH-18. Every repetition must be one we
 * read: a second repetition names a character set switched to with ISO
 * 2022 escapes inside the text (SS-MIX2's "~ISO IR87"), which we cannot
 * decode. */
static int read_charset(const char *line, size_t n, const struct delims *d,
                        enum charset *cs, char *why, size_t whycap)
{
    pv_span f = line_elem(line, n, d->fs, 17);
    bool latin1 = false;
    size_t nrep = 1;
    for (size_t i = 0; i < f.len; i++)
        if (f.ptr[i] == d->rs)
            nrep++;
    for (size_t r = 1; r <= nrep; r++) {
        pv_span v = nth_piece(f, d->rs, r);
        while (v.len && v.ptr[0] == ' ') {
            v.ptr++;
            v.len--;
        }
        while (v.len && v.ptr[v.len - 1] == ' ')
            v.len--;
        enum charset c = classify_charset(v);
        if (c == CS_BAD) {
            char q[200];
            snprintf(why, whycap, "unsupported character set '%s' in MSH-18",
                     quote(q, sizeof q, v.ptr, v.len));
            return PV_EINVAL;
        }
        if (c == CS_LATIN1)
            latin1 = true;
    }
    *cs = latin1 ? CS_LATIN1 : CS_UTF8;
    return 0;
}

/* ---- Parsing ---------------------------------------------------------- */

struct limits {
    size_t max_bytes, max_segments, max_fields;
    long first_line;
};

static int push_field(pv_hl7_msg *m, uint32_t off)
{
    if (m->nf == m->fcap) {
        size_t cap = m->fcap ? m->fcap * 2 : 256;
        uint32_t *p = realloc(m->fstart, cap * sizeof *p);
        if (!p)
            return PV_ENOMEM;
        m->fstart = p;
        m->fcap = cap;
    }
    m->fstart[m->nf++] = off;
    return 0;
}

/* Field number, as HL7 counts it, of element e of a segment. */
static size_t field_no(bool msh, size_t e)
{
    return msh ? e + 1 : e;
}

/* Indexes one non-blank line as a segment, checking its name, its bytes
 * (no control characters but TAB, valid UTF-8) and the ceilings. */
static int add_segment(pv_hl7_msg *m, size_t start, size_t end, long line,
                       const struct limits *lim, pv_hl7_error *err)
{
    const char *b = m->buf;
    char q[200];
    size_t ne = start;
    while (ne < end && b[ne] != m->d.fs)
        ne++;
    size_t nlen = ne - start;
    if (nlen != 3 || !is_upper_alnum((unsigned char)b[start]) ||
        !is_upper_alnum((unsigned char)b[start + 1]) ||
        !is_upper_alnum((unsigned char)b[start + 2]))
        return set_error(err, PV_EINVAL, line,
                         "segment name '%s' is not 3 upper-case letters or "
                         "digits",
                         quote(q, sizeof q, b + start, nlen));
    pv_span name = mkspan(b + start, 3);
    bool msh = m->nseg == 0;
    if (!msh) {
        if (span_eq(name, "MSH"))
            return set_error(err, PV_EINVAL, line,
                             "second MSH segment in one message (split "
                             "files into messages first)");
        if (span_eq(name, "FHS") || span_eq(name, "BHS") ||
            span_eq(name, "BTS") || span_eq(name, "FTS"))
            return set_error(err, PV_EINVAL, line,
                             "batch segment %.3s inside a message", b + start);
    }
    if (m->nseg >= lim->max_segments)
        return set_error(err, PV_ETOOBIG, line,
                         "message has more than %zu segments",
                         lim->max_segments);
    if (m->nseg == m->segcap) {
        size_t cap = m->segcap ? m->segcap * 2 : 32;
        struct seg *p = realloc(m->segs, cap * sizeof *p);
        if (!p)
            return PV_ENOMEM;
        m->segs = p;
        m->segcap = cap;
    }
    struct seg *s = &m->segs[m->nseg];
    s->start = (uint32_t)start;
    s->end = (uint32_t)end;
    s->first = (uint32_t)m->nf;
    s->line = line;
    int rc = push_field(m, (uint32_t)start);
    if (rc)
        return rc;
    size_t elem = 0;
    size_t seq = 0; /* where the UTF-8 sequence being checked began */
    bool bad = false;
    struct u8v v = {0, 0x80, 0xBF};
    for (size_t i = ne; i < end && !bad; i++) {
        unsigned char c = (unsigned char)b[i];
        if (v.need == 0) {
            seq = i;
            if (c == (unsigned char)m->d.fs) {
                elem++;
                if (field_no(msh, elem) > lim->max_fields)
                    return set_error(err, PV_ETOOBIG, line,
                                     "segment %.3s has more than %zu fields",
                                     b + start, lim->max_fields);
                if ((rc = push_field(m, (uint32_t)(i + 1))) != 0)
                    return rc;
                continue;
            }
            if (c < 0x20 && c != '\t')
                return set_error(err, PV_EINVAL, line,
                                 "control character 0x%02X in %.3s-%zu", c,
                                 b + start, field_no(msh, elem));
        }
        bad = !u8v_step(&v, c);
    }
    /* A bad or cut sequence is named by its first byte, the one a reader
     * looks for in a hex dump of the field. */
    if (bad || v.need)
        return set_error(err, PV_EINVAL, line,
                         "invalid UTF-8 (byte 0x%02X) in %.3s-%zu",
                         (unsigned char)b[seq], b + start, field_no(msh, elem));
    s->nelem = (uint32_t)(m->nf - s->first);
    m->nseg++;
    return 0;
}

static bool version_ok(pv_span v)
{
    /* Digits and dots, "2.5" or "2.5.1", each part at most 3 digits. */
    size_t parts = 0, digits = 0;
    if (v.len == 0 || v.len > 11)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 3)
                return false;
        } else if (c == '.') {
            if (digits == 0)
                return false;
            parts++;
            digits = 0;
        } else
            return false;
    }
    return digits > 0 && parts >= 1 && parts <= 2;
}

static bool code3_ok(pv_span v)
{
    return v.len == 3 && is_upper_alnum((unsigned char)v.ptr[0]) &&
           is_upper_alnum((unsigned char)v.ptr[1]) &&
           is_upper_alnum((unsigned char)v.ptr[2]);
}

/* The MSH fields every message needs before anything can be done with it:
 * a type to route on, a control ID to acknowledge and a version. */
static int check_msh(const pv_hl7_msg *m, pv_hl7_error *err)
{
    char q[200];
    if (m->nseg == 0)
        return set_error(err, PV_EINVAL, 0, "message has no MSH segment");
    long line = m->segs[0].line;
    pv_span type = pv_hl7_msg_type(m);
    if (type.len == 0)
        return set_error(err, PV_EINVAL, line, "MSH-9 message type missing");
    if (!code3_ok(type))
        return set_error(err, PV_EINVAL, line,
                         "MSH-9 message type '%s' is not 3 upper-case "
                         "letters or digits",
                         quote(q, sizeof q, type.ptr, type.len));
    pv_span trig = pv_hl7_trigger(m);
    if (trig.len && !code3_ok(trig))
        return set_error(err, PV_EINVAL, line,
                         "MSH-9 trigger event '%s' is not 3 upper-case "
                         "letters or digits",
                         quote(q, sizeof q, trig.ptr, trig.len));
    if (pv_hl7_control_id(m).len == 0)
        return set_error(err, PV_EINVAL, line,
                         "MSH-10 message control ID missing");
    pv_span ver = pv_hl7_version(m);
    if (ver.len == 0)
        return set_error(err, PV_EINVAL, line, "MSH-12 version ID missing");
    if (!version_ok(ver))
        return set_error(err, PV_EINVAL, line,
                         "MSH-12 version ID '%s' is not a version like 2.5.1",
                         quote(q, sizeof q, ver.ptr, ver.len));
    return 0;
}

/* Skips a UTF-8 byte order mark and blank lines; returns the offset of the
 * first non-blank line and counts the lines skipped into *line. */
static size_t skip_leading(const char *in, size_t len, long *line)
{
    size_t p = 0;
    if (len >= 3 && (unsigned char)in[0] == 0xEF &&
        (unsigned char)in[1] == 0xBB && (unsigned char)in[2] == 0xBF)
        p = 3;
    while (p < len) {
        size_t eol = line_end(in, p, len);
        if (!is_blank(in, p, eol))
            break;
        if (eol == len)
            return len;
        p = next_line(in, eol, len);
        (*line)++;
    }
    return p;
}

int pv_hl7_parse(const char *in, size_t len, const pv_hl7_opts *opts,
                 pv_hl7_msg **out, pv_hl7_error *err)
{
    *out = NULL;
    if (err) {
        err->line = 0;
        err->reason[0] = '\0';
    }
    struct limits lim = {PV_HL7_MAX_BYTES, PV_HL7_MAX_SEGMENTS,
                         PV_HL7_MAX_FIELDS, 1};
    if (opts) {
        if (opts->max_bytes)
            lim.max_bytes = opts->max_bytes;
        if (opts->max_segments)
            lim.max_segments = opts->max_segments;
        if (opts->max_fields)
            lim.max_fields = opts->max_fields;
        if (opts->first_line)
            lim.first_line = opts->first_line;
    }
    if (lim.max_bytes > HARD_MAX_BYTES)
        lim.max_bytes = HARD_MAX_BYTES;
    if (len > lim.max_bytes)
        return set_error(err, PV_ETOOBIG, 0,
                         "message is %zu bytes, over the limit of %zu", len,
                         lim.max_bytes);
    if (!in) {
        in = empty_str;
        len = 0;
    }

    long line = lim.first_line;
    size_t p = skip_leading(in, len, &line);
    if (p == len)
        return set_error(err, PV_EINVAL, 0, "message is empty");
    size_t eol = line_end(in, p, len);
    if (eol - p < 3 || memcmp(in + p, "MSH", 3) != 0)
        return set_error(err, PV_EINVAL, line,
                         "message does not start with MSH");

    char why[sizeof err->reason];
    struct delims d;
    if (!read_delims(in + p, eol - p, &d, why, sizeof why))
        return set_error(err, PV_EINVAL, line, "%s", why);
    enum charset cs;
    if (read_charset(in + p, eol - p, &d, &cs, why, sizeof why))
        return set_error(err, PV_EINVAL, line, "%s", why);

    pv_hl7_msg *m = calloc(1, sizeof *m);
    if (!m)
        return set_error(err, PV_ENOMEM, 0, "out of memory");
    m->d = d;
    size_t n = len - p;
    if (cs == CS_LATIN1) {
        /* ISO 8859-1 maps byte for byte onto U+0000..U+00FF, so the
         * transcoding needs no table: each high byte becomes two. */
        size_t extra = 0;
        for (size_t i = p; i < len; i++)
            extra += (unsigned char)in[i] >= 0x80;
        m->buf = malloc(n + extra + 1);
        if (!m->buf) {
            pv_hl7_free(m);
            return set_error(err, PV_ENOMEM, 0, "out of memory");
        }
        size_t o = 0;
        for (size_t i = p; i < len; i++) {
            unsigned char c = (unsigned char)in[i];
            if (c < 0x80) {
                m->buf[o++] = (char)c;
            } else {
                m->buf[o++] = (char)(0xC0 | (c >> 6));
                m->buf[o++] = (char)(0x80 | (c & 0x3F));
            }
        }
        m->len = o;
    } else {
        m->buf = malloc(n + 1);
        if (!m->buf) {
            pv_hl7_free(m);
            return set_error(err, PV_ENOMEM, 0, "out of memory");
        }
        memcpy(m->buf, in + p, n);
        m->len = n;
    }
    m->buf[m->len] = '\0';

    size_t pos = 0;
    int rc = 0;
    while (pos < m->len) {
        size_t e = line_end(m->buf, pos, m->len);
        if (!is_blank(m->buf, pos, e)) {
            rc = add_segment(m, pos, e, line, &lim, err);
            if (rc)
                break;
        }
        pos = next_line(m->buf, e, m->len);
        line++;
    }
    if (!rc)
        rc = check_msh(m, err);
    if (rc) {
        if (rc == PV_ENOMEM)
            set_error(err, rc, 0, "out of memory");
        pv_hl7_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void pv_hl7_free(pv_hl7_msg *m)
{
    if (!m)
        return;
    free(m->buf);
    free(m->segs);
    free(m->fstart);
    free(m);
}

/* ---- Accessors -------------------------------------------------------- */

size_t pv_hl7_segment_count(const pv_hl7_msg *m)
{
    return m ? m->nseg : 0;
}

pv_span pv_hl7_segment_name(const pv_hl7_msg *m, size_t seg)
{
    if (!m || seg >= m->nseg)
        return empty_span();
    return mkspan(m->buf + m->segs[seg].start, 3);
}

long pv_hl7_segment_line(const pv_hl7_msg *m, size_t seg)
{
    if (!m || seg >= m->nseg)
        return 0;
    return m->segs[seg].line;
}

static bool name_is(const pv_hl7_msg *m, size_t seg, const char *name)
{
    return memcmp(m->buf + m->segs[seg].start, name, 3) == 0;
}

long pv_hl7_find_from(const pv_hl7_msg *m, size_t from, const char *name)
{
    if (!m || !name || strlen(name) != 3)
        return -1;
    for (size_t i = from; i < m->nseg; i++)
        if (name_is(m, i, name))
            return (long)i;
    return -1;
}

long pv_hl7_find(const pv_hl7_msg *m, const char *name, size_t nth)
{
    if (nth == 0)
        return -1;
    long i = -1;
    size_t from = 0;
    for (size_t k = 0; k < nth; k++) {
        i = pv_hl7_find_from(m, from, name);
        if (i < 0)
            return -1;
        from = (size_t)i + 1;
    }
    return i;
}

size_t pv_hl7_count(const pv_hl7_msg *m, const char *name)
{
    size_t n = 0;
    for (long i = pv_hl7_find_from(m, 0, name); i >= 0;
         i = pv_hl7_find_from(m, (size_t)i + 1, name))
        n++;
    return n;
}

size_t pv_hl7_field_count(const pv_hl7_msg *m, size_t seg)
{
    if (!m || seg >= m->nseg)
        return 0;
    return field_no(seg == 0, m->segs[seg].nelem - 1);
}

static pv_span element(const pv_hl7_msg *m, size_t seg, size_t e)
{
    const struct seg *s = &m->segs[seg];
    if (e >= s->nelem)
        return empty_span();
    size_t start = m->fstart[s->first + e];
    size_t end = e + 1 < s->nelem ? m->fstart[s->first + e + 1] - 1 : s->end;
    return mkspan(m->buf + start, end - start);
}

pv_span pv_hl7_field(const pv_hl7_msg *m, size_t seg, size_t field)
{
    if (!m || seg >= m->nseg || field == 0)
        return empty_span();
    if (seg == 0) {
        if (field == 1)
            return mkspan(m->buf + m->segs[0].start + 3, 1);
        return element(m, 0, field - 1);
    }
    return element(m, seg, field);
}

pv_span pv_hl7_get(const pv_hl7_msg *m, size_t seg, size_t field, size_t rep,
                   size_t comp, size_t sub)
{
    pv_span f = pv_hl7_field(m, seg, field);
    if (rep == 0 || f.len == 0)
        return f;
    if (seg == 0 && field <= 2)
        return rep == 1 && comp <= 1 && sub <= 1 ? f : empty_span();
    pv_span r = nth_piece(f, m->d.rs, rep);
    if (comp == 0)
        return r;
    pv_span c = nth_piece(r, m->d.cs, comp);
    if (sub == 0)
        return c;
    return nth_piece(c, m->d.ss, sub);
}

size_t pv_hl7_rep_count(const pv_hl7_msg *m, size_t seg, size_t field)
{
    pv_span f = pv_hl7_field(m, seg, field);
    if (f.len == 0)
        return 0;
    if (seg == 0 && field <= 2)
        return 1;
    size_t n = 1;
    for (size_t i = 0; i < f.len; i++)
        n += f.ptr[i] == m->d.rs;
    return n;
}

bool pv_hl7_is_null(pv_span v)
{
    return v.len == 2 && v.ptr[0] == '"' && v.ptr[1] == '"';
}

/* ---- MSH getters ------------------------------------------------------ */

pv_span pv_hl7_msg_type(const pv_hl7_msg *m)
{
    return pv_hl7_get(m, 0, 9, 1, 1, 0);
}

pv_span pv_hl7_trigger(const pv_hl7_msg *m)
{
    return pv_hl7_get(m, 0, 9, 1, 2, 0);
}

pv_span pv_hl7_structure(const pv_hl7_msg *m)
{
    return pv_hl7_get(m, 0, 9, 1, 3, 0);
}

pv_span pv_hl7_control_id(const pv_hl7_msg *m)
{
    return pv_hl7_field(m, 0, 10);
}

pv_span pv_hl7_processing_id(const pv_hl7_msg *m)
{
    return pv_hl7_get(m, 0, 11, 1, 1, 0);
}

pv_span pv_hl7_version(const pv_hl7_msg *m)
{
    return pv_hl7_get(m, 0, 12, 1, 1, 0);
}

pv_span pv_hl7_sending_app(const pv_hl7_msg *m)
{
    return pv_hl7_field(m, 0, 3);
}

pv_span pv_hl7_sending_facility(const pv_hl7_msg *m)
{
    return pv_hl7_field(m, 0, 4);
}

pv_span pv_hl7_time(const pv_hl7_msg *m)
{
    return pv_hl7_get(m, 0, 7, 1, 1, 0);
}

pv_span pv_hl7_accept_ack(const pv_hl7_msg *m)
{
    return pv_hl7_field(m, 0, 15);
}

pv_span pv_hl7_app_ack(const pv_hl7_msg *m)
{
    return pv_hl7_field(m, 0, 16);
}

pv_span pv_hl7_charset(const pv_hl7_msg *m)
{
    return pv_hl7_field(m, 0, 18);
}

bool pv_hl7_is_ack(const pv_hl7_msg *m)
{
    return span_eq(pv_hl7_msg_type(m), "ACK");
}

/* ---- Escapes ---------------------------------------------------------- */

/* An snprintf-style writer: counts every byte, stores those that fit. */
struct writer {
    char *out;
    size_t cap, n;
};

static void put(struct writer *w, char c)
{
    if (w->n + 1 < w->cap)
        w->out[w->n] = c;
    w->n++;
}

static void put_n(struct writer *w, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(w, s[i]);
}

static void finish(struct writer *w)
{
    if (w->cap)
        w->out[w->n < w->cap ? w->n : w->cap - 1] = '\0';
}

/* Decodes a \X...\ body (without the X) when it is an even number of hex
 * digits giving valid UTF-8 without NUL; those bytes would otherwise cut or
 * corrupt the text downstream. */
static bool decode_hex(struct writer *w, const char *h, size_t n)
{
    if (n == 0 || n % 2)
        return false;
    struct u8v v = {0, 0x80, 0xBF};
    for (size_t i = 0; i < n; i += 2) {
        int c = hexpair(h + i);
        if (c <= 0 || !u8v_step(&v, (unsigned char)c))
            return false;
    }
    if (v.need)
        return false;
    for (size_t i = 0; i < n; i += 2)
        put(w, (char)hexpair(h + i));
    return true;
}

/* A formatting command (body starts with '.'): \.br\ is a new line, the
 * others only lay text out and are dropped. */
static bool decode_format(struct writer *w, const char *b, size_t n)
{
    if (n == 3 && memcmp(b, ".br", 3) == 0) {
        put(w, '\n');
        return true;
    }
    if (n == 3 && (memcmp(b, ".ce", 3) == 0 || memcmp(b, ".fi", 3) == 0 ||
                   memcmp(b, ".nf", 3) == 0))
        return true;
    if (n >= 3 && (memcmp(b, ".sp", 3) == 0 || memcmp(b, ".in", 3) == 0 ||
                   memcmp(b, ".ti", 3) == 0 || memcmp(b, ".sk", 3) == 0)) {
        /* An optional sign must be followed by digits. */
        bool sign = n > 3 && (b[3] == '+' || b[3] == '-');
        if (sign && n == 4)
            return false;
        for (size_t i = sign ? 4 : 3; i < n; i++)
            if (b[i] < '0' || b[i] > '9')
                return false;
        return true;
    }
    return false;
}

static bool decode_one(const pv_hl7_msg *m, struct writer *w, const char *b,
                       size_t n)
{
    if (n == 1) {
        switch (b[0]) {
        case 'F':
            put(w, m->d.fs);
            return true;
        case 'S':
            put(w, m->d.cs);
            return true;
        case 'T':
            put(w, m->d.ss);
            return true;
        case 'R':
            put(w, m->d.rs);
            return true;
        case 'E':
            put(w, m->d.es);
            return true;
        case 'P':
            if (!m->d.tc)
                return false;
            put(w, m->d.tc);
            return true;
        case 'H':
        case 'N':
            return true;
        }
        return false;
    }
    if (n > 1 && b[0] == 'X')
        return decode_hex(w, b + 1, n - 1);
    if (n > 1 && b[0] == '.')
        return decode_format(w, b, n);
    return false;
}

size_t pv_hl7_decode(const pv_hl7_msg *m, pv_span raw, char *out, size_t cap)
{
    struct writer w = {out, cap, 0};
    if (!m || !raw.ptr) {
        finish(&w);
        return 0;
    }
    size_t i = 0;
    while (i < raw.len) {
        const char *esc = memchr(raw.ptr + i, m->d.es, raw.len - i);
        size_t stop = esc ? (size_t)(esc - raw.ptr) : raw.len;
        put_n(&w, raw.ptr + i, stop - i);
        if (!esc)
            break;
        const char *close =
            memchr(raw.ptr + stop + 1, m->d.es, raw.len - stop - 1);
        if (!close) {
            /* An unterminated escape is text, kept as it stands. */
            put_n(&w, raw.ptr + stop, raw.len - stop);
            break;
        }
        size_t end = (size_t)(close - raw.ptr);
        if (!decode_one(m, &w, raw.ptr + stop + 1, end - stop - 1))
            put_n(&w, raw.ptr + stop, end - stop + 1);
        i = end + 1;
    }
    finish(&w);
    return w.n;
}

char *pv_hl7_decode_dup(const pv_hl7_msg *m, pv_span raw)
{
    char *s = malloc(raw.len + 1);
    if (s)
        pv_hl7_decode(m, raw, s, raw.len + 1);
    return s;
}

static void escape_into(struct writer *w, pv_span t)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.ptr[i];
        const char *rep = NULL;
        switch (c) {
        case '|':
            rep = "\\F\\";
            break;
        case '^':
            rep = "\\S\\";
            break;
        case '~':
            rep = "\\R\\";
            break;
        case '\\':
            rep = "\\E\\";
            break;
        case '&':
            rep = "\\T\\";
            break;
        case '\n':
            rep = "\\.br\\";
            break;
        case '\r':
            if (i + 1 < t.len && t.ptr[i + 1] == '\n')
                i++;
            rep = "\\.br\\";
            break;
        }
        if (rep) {
            put_n(w, rep, strlen(rep));
            continue;
        }
        size_t seq = c >= 0x80 ? utf8_seq_len((const unsigned char *)t.ptr + i,
                                              t.len - i)
                               : 1;
        if ((c < 0x20 && c != '\t') || c == 0x7f || seq == 0) {
            char x[5] = {'\\', 'X', hex[c >> 4], hex[c & 15], '\\'};
            put_n(w, x, 5);
            continue;
        }
        put_n(w, t.ptr + i, seq);
        i += seq - 1;
    }
}

size_t pv_hl7_escape(pv_span text, char *out, size_t cap)
{
    struct writer w = {out, cap, 0};
    if (text.ptr)
        escape_into(&w, text);
    finish(&w);
    return w.n;
}

/* ---- Files ------------------------------------------------------------ */

static bool seg_is(const char *b, size_t from, size_t to, const char *name)
{
    return to - from >= 3 && memcmp(b + from, name, 3) == 0 &&
           (to - from == 3 || !is_alnum((unsigned char)b[from + 3]));
}

/* A line is blank when it holds only spaces, tabs and MLLP framing bytes,
 * which dump files of captured traffic keep between messages. */
static bool is_blank_framed(const char *b, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (b[i] != ' ' && b[i] != '\t' && b[i] != 0x0B && b[i] != 0x1C)
            return false;
    return true;
}

/* Reads field 1 of a BTS/FTS line as a count: returns -1 when empty, -2 when
 * it is not a number, else the count (capped, which is enough to compare). */
static long envelope_count(const char *b, size_t from, size_t to)
{
    if (to - from < 5)
        return -1;
    char fs = b[from + 3];
    size_t i = from + 4;
    while (i < to && b[i] == ' ')
        i++;
    size_t start = i;
    long n = 0;
    for (; i < to && b[i] != fs && b[i] >= '0' && b[i] <= '9'; i++)
        if (n < 100000000)
            n = n * 10 + (b[i] - '0');
    size_t digits = i - start;
    while (i < to && b[i] == ' ')
        i++;
    if (i < to && b[i] != fs)
        return -2;
    return digits ? n : -1;
}

/* The splitter's state: where the open message starts and ends, and which
 * envelopes are open. */
struct splitter {
    const char *b;
    pv_hl7_msg_fn on_msg;
    pv_hl7_split_error_fn on_error;
    void *ud;
    bool in_msg, skipping, fhs_open, bhs_open;
    long fhs_line, bhs_line, msg_line;
    long batch_msgs, nbatches, loose_msgs;
    size_t msg_start, msg_end;
};

__attribute__((format(printf, 3, 4))) static void
fault(struct splitter *s, long line, const char *fmt, ...)
{
    if (!s->on_error)
        return;
    char reason[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    s->on_error(s->ud, line, reason);
}

/* Delivers the open message, if any; returns the callback's value. */
static int emit(struct splitter *s)
{
    int rc = 0;
    if (s->in_msg && s->on_msg)
        rc = s->on_msg(s->ud,
                       mkspan(s->b + s->msg_start, s->msg_end - s->msg_start),
                       s->msg_line);
    s->in_msg = false;
    return rc;
}

static void open_batch(struct splitter *s, long line)
{
    if (s->bhs_open) {
        fault(s, line, "BHS inside the batch opened at line %ld (nested batch)",
              s->bhs_line);
        return;
    }
    s->bhs_open = true;
    s->bhs_line = line;
    s->batch_msgs = 0;
    s->nbatches++;
}

static void close_batch(struct splitter *s, long line, size_t from, size_t eol)
{
    if (!s->bhs_open) {
        fault(s, line, "BTS without an open batch (no BHS)");
        return;
    }
    s->bhs_open = false;
    long n = envelope_count(s->b, from, eol);
    if (n == -2)
        fault(s, line, "BTS-1 batch message count is not a number");
    else if (n >= 0 && n != s->batch_msgs)
        fault(s, line,
              "BTS-1 says %ld messages but the batch opened at line %ld has "
              "%ld",
              n, s->bhs_line, s->batch_msgs);
}

/* Returns true when the file ends here (FTS seen). */
static bool close_file(struct splitter *s, long line, size_t from, size_t eol)
{
    if (s->bhs_open) {
        fault(s, line, "batch opened at line %ld has no BTS", s->bhs_line);
        s->bhs_open = false;
    }
    if (!s->fhs_open) {
        fault(s, line, "FTS without FHS");
        return false;
    }
    s->fhs_open = false;
    long n = envelope_count(s->b, from, eol);
    if (n == -2)
        fault(s, line, "FTS-1 batch count is not a number");
    else if (n >= 0 && n != s->nbatches &&
             !(s->nbatches == 0 && n == s->loose_msgs))
        /* A file of bare messages has no batches; some senders then count
         * its messages, which is accepted too. */
        fault(s, line, "FTS-1 says %ld batches but the file has %ld", n,
              s->nbatches);
    return true;
}

int pv_hl7_split(const char *buf, size_t len, pv_hl7_msg_fn on_msg,
                 pv_hl7_split_error_fn on_error, void *ud)
{
    struct splitter s;
    memset(&s, 0, sizeof s);
    s.b = buf;
    s.on_msg = on_msg;
    s.on_error = on_error;
    s.ud = ud;
    bool seen = false, ended = false;
    long line = 1;
    size_t pos = 0;
    int rc = 0;
    char q[200];
    if (!buf)
        len = 0;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF &&
        (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        pos = 3;

    for (; pos < len; line++) {
        size_t from = pos;
        size_t eol = line_end(buf, pos, len);
        pos = next_line(buf, eol, len);
        while (from < eol && buf[from] == 0x0B)
            from++;
        if (is_blank_framed(buf, from, eol))
            continue;
        bool first = !seen;
        seen = true;
        if (seg_is(buf, from, eol, "MSH")) {
            if ((rc = emit(&s)) != 0)
                return rc;
            s.in_msg = true;
            s.skipping = false;
            s.msg_start = from;
            s.msg_end = eol;
            s.msg_line = line;
            s.batch_msgs += s.bhs_open;
            s.loose_msgs += !s.bhs_open;
        } else if (seg_is(buf, from, eol, "BHS")) {
            if (s.bhs_open && s.in_msg) {
                /* The message is cut: delivering its first half would lose
                 * its results silently, so it is reported instead. */
                s.in_msg = false;
                s.skipping = true;
                fault(&s, line,
                      "BHS inside the batch opened at line %ld (nested "
                      "batch); the message at line %ld and the lines up to "
                      "the next MSH are skipped",
                      s.bhs_line, s.msg_line);
                continue;
            }
            if ((rc = emit(&s)) != 0)
                return rc;
            s.skipping = false;
            open_batch(&s, line);
        } else if (seg_is(buf, from, eol, "BTS")) {
            if ((rc = emit(&s)) != 0)
                return rc;
            s.skipping = false;
            close_batch(&s, line, from, eol);
        } else if (seg_is(buf, from, eol, "FHS")) {
            if ((rc = emit(&s)) != 0)
                return rc;
            s.skipping = false;
            if (!first) {
                fault(&s, line, "FHS is not the first segment of the file");
                continue;
            }
            s.fhs_open = true;
            s.fhs_line = line;
        } else if (seg_is(buf, from, eol, "FTS")) {
            if ((rc = emit(&s)) != 0)
                return rc;
            s.skipping = false;
            if ((ended = close_file(&s, line, from, eol)))
                break;
        } else if (s.in_msg) {
            s.msg_end = eol;
        } else if (!s.skipping) {
            s.skipping = true;
            fault(&s, line,
                  "segment '%s' outside a message (no MSH before it); lines "
                  "up to the next MSH are skipped",
                  quote(q, sizeof q, buf + from,
                        eol - from < 3 ? eol - from : 3));
        }
    }
    /* Anything but blank lines after FTS is a fault: the file said it
     * ended. */
    for (line += ended; ended && pos < len; line++) {
        size_t from = pos;
        size_t eol = line_end(buf, pos, len);
        pos = next_line(buf, eol, len);
        if (!is_blank_framed(buf, from, eol)) {
            fault(&s, line,
                  "text after FTS (end of file); the rest of the file is "
                  "skipped");
            break;
        }
    }
    if ((rc = emit(&s)) != 0)
        return rc;
    if (s.bhs_open)
        fault(&s, line - 1, "batch opened at line %ld has no BTS", s.bhs_line);
    if (s.fhs_open)
        fault(&s, line - 1, "file header opened at line %ld has no FTS",
              s.fhs_line);
    return 0;
}

/* ---- Acknowledgements ------------------------------------------------- */

/* A growing output buffer; the first allocation failure sticks. */
struct dbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void db_put(struct dbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void db_str(struct dbuf *b, const char *s)
{
    db_put(b, s, strlen(s));
}

static void db_text(struct dbuf *b, pv_span t)
{
    size_t need = pv_hl7_escape(t, NULL, 0);
    char *tmp = malloc(need + 1);
    if (!tmp) {
        b->oom = true;
        return;
    }
    pv_hl7_escape(t, tmp, need + 1);
    db_put(b, tmp, need);
    free(tmp);
}

/* Copies a raw value from a message with delimiters d into the ACK, which
 * uses the standard ones: the original's separators and escape character
 * are mapped onto ours (keeping components and escape sequences intact) and
 * a character that is a delimiter only for us is escaped. */
static void db_reencode(struct dbuf *b, pv_span v, const struct delims *d)
{
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        const char *o = NULL;
        char one[2] = {c, 0};
        if (c == d->fs)
            o = "\\F\\";
        else if (c == d->cs)
            o = "^";
        else if (c == d->rs)
            o = "~";
        else if (c == d->es)
            o = "\\";
        else if (c == d->ss)
            o = "&";
        else if (c == '|')
            o = "\\F\\";
        else if (c == '^')
            o = "\\S\\";
        else if (c == '~')
            o = "\\R\\";
        else if (c == '\\')
            o = "\\E\\";
        else if (c == '&')
            o = "\\T\\";
        else
            o = one;
        db_str(b, o);
    }
}

/* The original header values an ACK needs. */
struct ack_src {
    pv_span send_app, send_fac, recv_app, recv_fac;
    pv_span trigger, control_id, proc_id, version;
    struct delims d;
    bool have_delims; /* false: values are plain text to escape */
};

static const char *err_text(int code)
{
    switch (code) {
    case PV_HL7_ERR_SEGMENT_SEQUENCE:
        return "Segment sequence error";
    case PV_HL7_ERR_REQUIRED_FIELD:
        return "Required field missing";
    case PV_HL7_ERR_DATA_TYPE:
        return "Data type error";
    case PV_HL7_ERR_TABLE_VALUE:
        return "Table value not found";
    case PV_HL7_ERR_UNSUPPORTED_TYPE:
        return "Unsupported message type";
    case PV_HL7_ERR_UNSUPPORTED_EVENT:
        return "Unsupported event code";
    case PV_HL7_ERR_UNSUPPORTED_PROCESSING_ID:
        return "Unsupported processing id";
    case PV_HL7_ERR_UNSUPPORTED_VERSION:
        return "Unsupported version id";
    case PV_HL7_ERR_UNKNOWN_KEY:
        return "Unknown key identifier";
    case PV_HL7_ERR_DUPLICATE_KEY:
        return "Duplicate key identifier";
    case PV_HL7_ERR_RECORD_LOCKED:
        return "Application record locked";
    }
    return NULL;
}

/* Formats t as an HL7 TS in UTC, YYYYMMDDHHMMSS+0000, without the C
 * library's time functions so that any int64 is safe: days to civil date
 * after Howard Hinnant's days_from_civil inverse. */
static bool format_ts(int64_t t, char *out, size_t cap)
{
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t mo = mp < 10 ? mp + 3 : mp - 9;
    y += mo <= 2;
    if (y < 0 || y > 9999)
        return false;
    snprintf(out, cap, "%04d%02d%02d%02d%02d%02d+0000", (int)y, (int)mo, (int)d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
    return true;
}

/* An ERR-2 location as the caller wrote it ("OBX^2^14"): only letters,
 * digits and '^' pass, so that it cannot break the segment. */
static pv_span erl_span(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '^')
            return empty_span();
    return mkspan(s, n);
}

static void db_value(struct dbuf *b, const struct ack_src *src, pv_span v)
{
    if (src->have_delims)
        db_reencode(b, v, &src->d);
    else
        db_text(b, v);
}

static int build_ack(const struct ack_src *src, const pv_hl7_ack_info *info,
                     char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (!info || !info->control_id || !info->control_id[0])
        return PV_EINVAL;
    const char *code;
    switch (info->code) {
    case PV_HL7_AA:
        code = "AA";
        break;
    case PV_HL7_AE:
        code = "AE";
        break;
    case PV_HL7_AR:
        code = "AR";
        break;
    default:
        return PV_EINVAL;
    }
    struct dbuf b = {0};
    char ts[40] = "";
    format_ts(info->now, ts, sizeof ts);
    db_str(&b, "MSH|^~\\&|");
    db_value(&b, src, src->recv_app);
    db_str(&b, "|");
    db_value(&b, src, src->recv_fac);
    db_str(&b, "|");
    db_value(&b, src, src->send_app);
    db_str(&b, "|");
    db_value(&b, src, src->send_fac);
    db_str(&b, "|");
    db_str(&b, ts);
    db_str(&b, "||ACK^");
    db_value(&b, src, src->trigger);
    db_str(&b, "^ACK|");
    db_text(&b, mkspan(info->control_id, strlen(info->control_id)));
    db_str(&b, "|");
    bool pid_ok = src->proc_id.len == 1 &&
                  (src->proc_id.ptr[0] == 'P' || src->proc_id.ptr[0] == 'D' ||
                   src->proc_id.ptr[0] == 'T');
    db_put(&b, pid_ok ? src->proc_id.ptr : "P", 1);
    db_str(&b, "|");
    if (version_ok(src->version))
        db_put(&b, src->version.ptr, src->version.len);
    else
        db_str(&b, "2.5");
    db_str(&b, "\rMSA|");
    db_str(&b, code);
    db_str(&b, "|");
    db_value(&b, src, src->control_id);
    db_str(&b, "\r");
    if (info->code == PV_HL7_AA && info->error && info->text) {
        /* Warnings: parts of the message that were left out. */
        const char *et = err_text(info->error);
        int ec = et ? info->error : PV_HL7_ERR_INTERNAL;
        char num[16];
        snprintf(num, sizeof num, "%d", ec);
        for (const char *l = info->text; *l;) {
            const char *eol = strchr(l, '\n');
            size_t n = eol ? (size_t)(eol - l) : strlen(l);
            const char *tab = memchr(l, '\t', n);
            db_str(&b, "ERR||");
            if (tab) {
                pv_span erl = erl_span(l, (size_t)(tab - l));
                db_put(&b, erl.ptr, erl.len);
            }
            db_str(&b, "|");
            db_str(&b, num);
            db_str(&b, "^");
            db_str(&b, et ? et : "Application internal error");
            db_str(&b, "^HL70357|W||||");
            const char *t = tab ? tab + 1 : l;
            db_text(&b, mkspan(t, (size_t)(l + n - t)));
            db_str(&b, "\r");
            l += n;
            if (*l)
                l++;
        }
    } else if (info->code != PV_HL7_AA) {
        int ec = info->error;
        const char *et = err_text(ec);
        if (!et) {
            ec = PV_HL7_ERR_INTERNAL;
            et = "Application internal error";
        }
        char num[16];
        snprintf(num, sizeof num, "%d", ec);
        db_str(&b, "ERR|||");
        db_str(&b, num);
        db_str(&b, "^");
        db_str(&b, et);
        db_str(&b, "^HL70357|E||||");
        if (info->text)
            db_text(&b, mkspan(info->text, strlen(info->text)));
        db_str(&b, "\r");
    }
    if (b.oom) {
        free(b.p);
        return PV_ENOMEM;
    }
    *out = b.p;
    if (len)
        *len = b.n;
    return 0;
}

int pv_hl7_ack(const pv_hl7_msg *m, const pv_hl7_ack_info *info, char **out,
               size_t *len)
{
    if (!m) {
        *out = NULL;
        return PV_EINVAL;
    }
    struct ack_src src = {
        .send_app = pv_hl7_field(m, 0, 3),
        .send_fac = pv_hl7_field(m, 0, 4),
        .recv_app = pv_hl7_field(m, 0, 5),
        .recv_fac = pv_hl7_field(m, 0, 6),
        .trigger = pv_hl7_trigger(m),
        .control_id = pv_hl7_control_id(m),
        .proc_id = pv_hl7_processing_id(m),
        .version = pv_hl7_version(m),
        .d = m->d,
        .have_delims = true,
    };
    return build_ack(&src, info, out, len);
}

/* A value read from an unparsed MSH is used only when it is short printable
 * ASCII: anything else is as likely to be noise as data. */
static pv_span safe_value(pv_span v)
{
    if (v.len > UNPARSED_FIELD_MAX)
        return empty_span();
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] < 0x20 || (unsigned char)v.ptr[i] >= 0x7f)
            return empty_span();
    return v;
}

/* Reads the header of bytes that may not parse. Returns false when there is
 * no MSH on the first non-blank line. */
static bool read_unparsed(const char *in, size_t len, struct ack_src *src)
{
    memset(src, 0, sizeof *src);
    src->send_app = src->send_fac = src->recv_app = src->recv_fac =
        src->trigger = src->control_id = src->proc_id = src->version =
            empty_span();
    if (!in)
        return false;
    long line = 1;
    size_t p = skip_leading(in, len, &line);
    while (p < len && in[p] == 0x0B)
        p++;
    size_t eol = line_end(in, p, len);
    const char *l = in + p;
    size_t n = eol - p;
    if (n < 4 || memcmp(l, "MSH", 3) != 0 || !delim_ok((unsigned char)l[3]))
        return false;
    char why[200];
    src->have_delims = read_delims(l, n, &src->d, why, sizeof why);
    char fs = l[3];
    src->send_app = safe_value(line_elem(l, n, fs, 2));
    src->send_fac = safe_value(line_elem(l, n, fs, 3));
    src->recv_app = safe_value(line_elem(l, n, fs, 4));
    src->recv_fac = safe_value(line_elem(l, n, fs, 5));
    src->control_id = safe_value(line_elem(l, n, fs, 9));
    pv_span type = safe_value(line_elem(l, n, fs, 8));
    pv_span proc = safe_value(line_elem(l, n, fs, 10));
    pv_span ver = safe_value(line_elem(l, n, fs, 11));
    if (src->have_delims) {
        pv_span trig = nth_piece(nth_piece(type, src->d.rs, 1), src->d.cs, 2);
        src->trigger = code3_ok(trig) ? trig : empty_span();
        src->proc_id = nth_piece(nth_piece(proc, src->d.rs, 1), src->d.cs, 1);
        src->version = nth_piece(nth_piece(ver, src->d.rs, 1), src->d.cs, 1);
    } else {
        src->proc_id = proc;
        src->version = ver;
    }
    return true;
}

int pv_hl7_ack_unparsed(const char *in, size_t in_len,
                        const pv_hl7_ack_info *info, char **out, size_t *len)
{
    struct ack_src src;
    read_unparsed(in, in_len, &src);
    return build_ack(&src, info, out, len);
}

bool pv_hl7_raw_is_ack(const char *in, size_t len)
{
    struct ack_src src;
    if (!read_unparsed(in, len, &src))
        return false;
    long line = 1;
    size_t p = skip_leading(in, len, &line);
    while (p < len && in[p] == 0x0B)
        p++;
    size_t eol = line_end(in, p, len);
    pv_span type = line_elem(in + p, eol - p, in[p + 3], 8);
    size_t k = 0;
    while (k < type.len && is_alnum((unsigned char)type.ptr[k]))
        k++;
    return k == 3 && memcmp(type.ptr, "ACK", 3) == 0;
}
