/* csv: a streaming RFC 4180 parser; csv.h is the contract.
 *
 * The parser is a byte-driven state machine, so that any chunking of the
 * input gives the same records. Until the delimiter is known, the bytes of
 * the first record are held raw in a detection buffer and replayed through
 * the machine once it is chosen. A record's unquoted field bytes live in one
 * growing buffer whose size never exceeds max_record, and a record is only
 * reported (delivered or rejected) at its end, so that pv_csv_offset() always
 * stands on a record boundary. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#define CSV_DEFAULT_MAX ((size_t)1024 * 1024)
#define CSV_REASON_MAX 80

/* States of the main machine. ST_CR exists because a CR may end a line (when
 * an LF follows, possibly in the next chunk) or be data (when anything else
 * follows), and the choice cannot be made until the next byte arrives. */
enum csv_state {
    ST_RECORD,   /* before the first byte of a record */
    ST_FIELD,    /* at the start of a field that follows a delimiter */
    ST_UNQUOTED, /* inside an unquoted field */
    ST_QUOTED,   /* inside a quoted field */
    ST_QUOTE,    /* after a quote inside a quoted field */
    ST_CR,       /* after a CR outside quotes */
    ST_DONE      /* pv_csv_finish() has run */
};

/* States of the detection scanner. They mirror the main machine, but every
 * candidate delimiter ends a field, since the real one is not known yet. */
enum det_state { DS_FIELD, DS_UNQUOTED, DS_QUOTED, DS_QUOTE };

struct pv_csv {
    pv_csv_record_fn on_record;
    pv_csv_error_fn on_error;
    void *ud;
    size_t max_record;

    char delim; /* 0 while the first record is still being detected */
    int bom;    /* BOM bytes matched so far, or -1 once past the BOM */
    int err;    /* a sticky PV_ENOMEM: the parser's state is then lost */

    /* Raw bytes of the first record, held until its delimiter is known. */
    unsigned char *det;
    size_t det_len, det_cap;
    enum det_state det_state;
    size_t det_count[3]; /* ',' ';' TAB seen outside quotes */

    enum csv_state state;
    enum csv_state cr_from; /* the state a pending CR interrupted */
    long line;              /* the physical line of the next byte */
    long rec_line;          /* where the current record started */
    long quote_line;        /* where the last quoted field opened */
    long off_line;          /* the line at 'offset' */
    uint64_t pos;           /* absolute offset of the next byte */
    uint64_t offset;        /* end of the last reported record */

    size_t raw; /* the current record's bytes, line end excluded */
    char *buf;  /* field bytes of the current record, back to back */
    size_t len, cap;
    size_t field_start; /* where the current field begins in buf */
    pv_span *fields;    /* lengths only until delivery fills the pointers */
    size_t nfields, fcap;
    int bad; /* the record is rejected; 'reason' says why */
    char reason[CSV_REASON_MAX];
};

static const unsigned char csv_bom[3] = {0xEF, 0xBB, 0xBF};

/* Appends s to dst at *at, truncating rather than overflowing. */
static void put_str(char *dst, size_t *at, const char *s)
{
    while (*s && *at + 1 < CSV_REASON_MAX)
        dst[(*at)++] = *s++;
    dst[*at] = '\0';
}

/* Appends a decimal number without the printf family, which the style rules
 * keep out of parsers. */
static void put_num(char *dst, size_t *at, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && *at + 1 < CSV_REASON_MAX)
        dst[(*at)++] = tmp[--n];
    dst[*at] = '\0';
}

/* Marks the current record as rejected. Only the first reason is kept,
 * since later ones are usually consequences of it. */
static void set_bad(pv_csv *p, const char *what, uint64_t num, const char *tail)
{
    size_t at = 0;
    if (p->bad)
        return;
    p->bad = 1;
    put_str(p->reason, &at, what);
    put_num(p->reason, &at, num);
    put_str(p->reason, &at, tail);
}

/* Returns 1 when s[0..n) is well-formed UTF-8: no overlong forms, no
 * surrogates, nothing above U+10FFFF and no sequence cut short. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        /* Only the first continuation byte has a narrowed range; the rest
         * are plain 0x80..0xBF. */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += need + 1;
    }
    return 1;
}

static int oom(pv_csv *p)
{
    p->err = PV_ENOMEM;
    return PV_ENOMEM;
}

/* Makes room for k more field bytes. The caller has counted them against
 * max_record already, so the buffer never grows past it. */
static int reserve(pv_csv *p, size_t k)
{
    if (p->cap - p->len >= k)
        return 0;
    size_t need = p->len + k;
    size_t ncap = p->cap;
    while (ncap < need) {
        if (ncap >= p->max_record / 2) {
            ncap = p->max_record;
            break;
        }
        ncap *= 2;
    }
    if (ncap < need)
        ncap = need;
    char *nb = realloc(p->buf, ncap);
    if (!nb)
        return oom(p);
    p->buf = nb;
    p->cap = ncap;
    return 0;
}

/* Counts one byte of the record against max_record. */
static void count(pv_csv *p)
{
    p->raw++;
    if (p->raw > p->max_record)
        set_bad(p, "record longer than ", p->max_record, " bytes");
}

/* Counts and stores one field byte; a rejected record stores nothing. */
static int add(pv_csv *p, unsigned char c)
{
    count(p);
    if (p->bad)
        return 0;
    if (reserve(p, 1))
        return PV_ENOMEM;
    p->buf[p->len++] = (char)c;
    return 0;
}

static int end_field(pv_csv *p)
{
    if (!p->bad && !utf8_valid((const unsigned char *)p->buf + p->field_start,
                               p->len - p->field_start))
        set_bad(p, "invalid UTF-8 in field ", p->nfields + 1, "");
    if (!p->bad) {
        if (p->nfields == p->fcap) {
            size_t ncap = p->fcap ? p->fcap * 2 : 16;
            pv_span *nf = realloc(p->fields, ncap * sizeof *nf);
            if (!nf)
                return oom(p);
            p->fields = nf;
            p->fcap = ncap;
        }
        p->fields[p->nfields].ptr = NULL;
        p->fields[p->nfields].len = p->len - p->field_start;
        p->field_start = p->len;
    }
    p->nfields++;
    return 0;
}

static void reset_record(pv_csv *p)
{
    p->state = ST_RECORD;
    p->raw = 0;
    p->len = 0;
    p->field_start = 0;
    p->nfields = 0;
    p->bad = 0;
    p->reason[0] = '\0';
}

/* Reports the current record. The offset and line are moved past it first,
 * so that a callback that stores pv_csv_offset() with the record's data
 * stores the place to resume from. */
static int end_record(pv_csv *p, int had_lf)
{
    int rc = end_field(p);
    if (rc)
        return rc;
    if (had_lf)
        p->line++;
    p->offset = p->pos;
    p->off_line = p->line;
    if (p->bad) {
        if (p->on_error)
            p->on_error(p->ud, p->rec_line, p->reason);
    } else if (p->on_record) {
        const char *at = p->buf;
        for (size_t i = 0; i < p->nfields; i++) {
            p->fields[i].ptr = at;
            at += p->fields[i].len;
        }
        rc = p->on_record(p->ud, p->rec_line, p->fields, p->nfields);
    }
    reset_record(p);
    return rc;
}

/* Runs one byte through the main machine. p->pos already counts it. The
 * loop only turns when a pending CR proves to be data and the byte after it
 * must be looked at again in the state that follows. */
static int machine(pv_csv *p, unsigned char c)
{
    const unsigned char d = (unsigned char)p->delim;
    int rc;
    for (;;) {
        switch (p->state) {
        case ST_RECORD:
            if (c == '\n') {
                /* A blank line is not a record, but it is consumed. */
                p->line++;
                p->offset = p->pos;
                p->off_line = p->line;
                return 0;
            }
            if (c == '\r') {
                p->cr_from = ST_RECORD;
                p->state = ST_CR;
                return 0;
            }
            p->rec_line = p->line;
            p->state = ST_FIELD;
            continue;
        case ST_FIELD:
            if (c == '"') {
                p->quote_line = p->line;
                p->state = ST_QUOTED;
                count(p);
                return 0;
            }
            if (c == '\n')
                return end_record(p, 1);
            if (c == '\r') {
                p->cr_from = ST_FIELD;
                p->state = ST_CR;
                return 0;
            }
            if (c == d) {
                count(p);
                return end_field(p);
            }
            p->state = ST_UNQUOTED;
            return add(p, c);
        case ST_UNQUOTED:
            if (c == '\n')
                return end_record(p, 1);
            if (c == '\r') {
                p->cr_from = ST_UNQUOTED;
                p->state = ST_CR;
                return 0;
            }
            if (c == d) {
                count(p);
                p->state = ST_FIELD;
                return end_field(p);
            }
            /* A quote inside an unquoted field is kept as data, as most
             * producers and readers do (think of 5'10"). */
            return add(p, c);
        case ST_QUOTED:
            if (c == '"') {
                count(p);
                p->state = ST_QUOTE;
                return 0;
            }
            if (c == '\n')
                p->line++;
            return add(p, c);
        case ST_QUOTE:
            if (c == '"') {
                p->state = ST_QUOTED;
                return add(p, c);
            }
            if (c == d) {
                count(p);
                p->state = ST_FIELD;
                return end_field(p);
            }
            if (c == '\n')
                return end_record(p, 1);
            if (c == '\r') {
                p->cr_from = ST_QUOTE;
                p->state = ST_CR;
                return 0;
            }
            /* The rest of the record is read as unquoted data so that its
             * end is found where a reader of the file would expect it. */
            set_bad(p, "text after closing quote in field ", p->nfields + 1,
                    "");
            p->state = ST_UNQUOTED;
            return add(p, c);
        case ST_CR:
            if (c == '\n') {
                if (p->cr_from == ST_RECORD) {
                    p->state = ST_RECORD;
                    continue;
                }
                return end_record(p, 1);
            }
            /* A CR not followed by LF is data, not a line end. */
            if (p->cr_from == ST_RECORD)
                p->rec_line = p->line;
            else if (p->cr_from == ST_QUOTE)
                set_bad(p, "text after closing quote in field ", p->nfields + 1,
                        "");
            p->state = ST_UNQUOTED;
            rc = add(p, '\r');
            if (rc)
                return rc;
            continue;
        case ST_DONE:
            return 0;
        }
    }
}

/* Runs s[0..n) through the main machine, *used telling how many bytes were
 * taken when a callback stops it. Runs of plain field bytes are copied in
 * one go, which is where most of the input goes. */
static int run(pv_csv *p, const unsigned char *s, size_t n, size_t *used)
{
    const unsigned char d = (unsigned char)p->delim;
    size_t i = 0;
    while (i < n) {
        if (!p->bad && (p->state == ST_UNQUOTED || p->state == ST_QUOTED)) {
            size_t room = p->max_record - p->raw;
            size_t j = i;
            if (p->state == ST_UNQUOTED) {
                while (j < n && j - i < room && s[j] != d && s[j] != '\n' &&
                       s[j] != '\r')
                    j++;
            } else {
                while (j < n && j - i < room && s[j] != '"' && s[j] != '\n')
                    j++;
            }
            if (j > i) {
                size_t k = j - i;
                if (reserve(p, k)) {
                    *used = i;
                    return PV_ENOMEM;
                }
                memcpy(p->buf + p->len, s + i, k);
                p->len += k;
                p->raw += k;
                p->pos += k;
                i = j;
                continue;
            }
        }
        p->pos++;
        int rc = machine(p, s[i++]);
        if (rc) {
            *used = i;
            return rc;
        }
    }
    *used = n;
    return 0;
}

/* Picks the most frequent candidate; ties go to the earlier of ',' ';' TAB,
 * so that a file without any of them reads as one comma-separated column. */
static void choose_delim(pv_csv *p)
{
    static const char cand[3] = {',', ';', '\t'};
    size_t best = 0;
    for (size_t k = 1; k < 3; k++)
        if (p->det_count[k] > p->det_count[best])
            best = k;
    p->delim = cand[best];
}

/* Replays the detection buffer through the main machine. If a callback
 * stops it there, the rest of the buffer is dropped: the caller is to feed
 * again from pv_csv_offset(). */
static int flush_det(pv_csv *p)
{
    size_t used;
    int rc = run(p, p->det, p->det_len, &used);
    p->det_len = 0;
    p->det_state = DS_FIELD;
    return rc;
}

static int det_push(pv_csv *p, unsigned char c)
{
    if (p->det_len == p->det_cap) {
        size_t ncap = p->det_cap ? p->det_cap * 2 : 256;
        unsigned char *nd = realloc(p->det, ncap);
        if (!nd)
            return oom(p);
        p->det = nd;
        p->det_cap = ncap;
    }
    p->det[p->det_len++] = c;
    return 0;
}

static int is_cand(unsigned char c, size_t *k)
{
    *k = c == ',' ? 0 : c == ';' ? 1 : 2;
    return c == ',' || c == ';' || c == '\t';
}

/* Takes bytes into the detection buffer until the first record ends, then
 * chooses the delimiter and replays the buffer. Blank lines before the first
 * record are replayed at once, since they need no delimiter and would
 * otherwise hold memory. */
static int detect(pv_csv *p, const unsigned char *s, size_t n, size_t *used)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        size_t k;
        int rc;
        if (c == '\n' && p->det_state != DS_QUOTED) {
            int blank =
                p->det_len == 0 || (p->det_len == 1 && p->det[0] == '\r');
            if (det_push(p, c)) {
                *used = i;
                return PV_ENOMEM;
            }
            if (!blank)
                choose_delim(p);
            rc = flush_det(p);
            *used = i + 1;
            if (rc || !blank)
                return rc;
            continue;
        }
        switch (p->det_state) {
        case DS_FIELD:
            if (c == '"')
                p->det_state = DS_QUOTED;
            else if (is_cand(c, &k))
                p->det_count[k]++;
            else
                p->det_state = DS_UNQUOTED;
            break;
        case DS_UNQUOTED:
            if (is_cand(c, &k)) {
                p->det_count[k]++;
                p->det_state = DS_FIELD;
            }
            break;
        case DS_QUOTED:
            if (c == '"')
                p->det_state = DS_QUOTE;
            break;
        case DS_QUOTE:
            if (c == '"') {
                p->det_state = DS_QUOTED;
            } else if (is_cand(c, &k)) {
                p->det_count[k]++;
                p->det_state = DS_FIELD;
            } else {
                p->det_state = DS_UNQUOTED;
            }
            break;
        }
        if (det_push(p, c)) {
            *used = i;
            return PV_ENOMEM;
        }
        /* A first record this long is rejected by the main machine anyway;
         * choosing now keeps the buffer within max_record (plus a CR). */
        if (p->det_len > p->max_record + 1) {
            choose_delim(p);
            rc = flush_det(p);
            *used = i + 1;
            return rc;
        }
    }
    *used = n;
    return 0;
}

/* Routes bytes that are past the BOM to detection or to the machine. */
static int input(pv_csv *p, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t used;
        int rc = p->delim ? run(p, s + i, n - i, &used)
                          : detect(p, s + i, n - i, &used);
        i += used;
        if (rc)
            return rc;
    }
    return 0;
}

pv_csv *pv_csv_new(size_t max_record, pv_csv_record_fn on_record,
                   pv_csv_error_fn on_error, void *ud)
{
    pv_csv *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max_record = max_record ? max_record : CSV_DEFAULT_MAX;
    p->on_record = on_record;
    p->on_error = on_error;
    p->ud = ud;
    p->cap = p->max_record < 256 ? p->max_record : 256;
    p->buf = malloc(p->cap);
    p->fcap = 16;
    p->fields = malloc(p->fcap * sizeof *p->fields);
    if (!p->buf || !p->fields) {
        pv_csv_free(p);
        return NULL;
    }
    p->line = p->rec_line = p->quote_line = p->off_line = 1;
    p->state = ST_RECORD;
    p->det_state = DS_FIELD;
    return p;
}

void pv_csv_free(pv_csv *p)
{
    if (!p)
        return;
    free(p->det);
    free(p->buf);
    free(p->fields);
    free(p);
}

int pv_csv_feed(pv_csv *p, const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    if (p->err)
        return p->err;
    if (p->state == ST_DONE)
        return PV_ESTATE;
    /* The BOM may arrive split over several feeds, so it is matched a byte
     * at a time; a partial match turns out to be data and is replayed. */
    while (p->bom >= 0 && i < len) {
        if (s[i] == csv_bom[p->bom]) {
            i++;
            if (++p->bom == 3) {
                p->bom = -1;
                p->pos += 3;
                p->offset = p->pos;
            }
        } else {
            int k = p->bom;
            p->bom = -1;
            int rc = input(p, csv_bom, (size_t)k);
            if (rc)
                return rc;
        }
    }
    return input(p, s + i, len - i);
}

int pv_csv_finish(pv_csv *p)
{
    int rc = 0;
    if (p->err)
        return p->err;
    if (p->state == ST_DONE)
        return 0;
    if (p->bom > 0) {
        int k = p->bom;
        p->bom = -1;
        rc = input(p, csv_bom, (size_t)k);
        if (rc)
            return rc;
    }
    p->bom = -1;
    if (!p->delim && p->det_len > 0) {
        choose_delim(p);
        rc = flush_det(p);
        if (rc)
            return rc;
    }
    switch (p->state) {
    case ST_RECORD:
        break;
    case ST_CR:
        /* A CR at the very end is taken as the line end it surely was. */
        if (p->cr_from != ST_RECORD)
            rc = end_record(p, 0);
        break;
    case ST_FIELD:
    case ST_UNQUOTED:
    case ST_QUOTE:
        rc = end_record(p, 0);
        break;
    case ST_QUOTED:
        p->offset = p->pos;
        p->off_line = p->line;
        if (p->on_error) {
            if (p->bad)
                p->on_error(p->ud, p->rec_line, p->reason);
            else
                p->on_error(p->ud, p->quote_line, "unterminated quote");
        }
        reset_record(p);
        break;
    case ST_DONE:
        break;
    }
    if (rc == PV_ENOMEM)
        return rc;
    p->offset = p->pos;
    p->off_line = p->line;
    p->state = ST_DONE;
    return rc;
}

uint64_t pv_csv_offset(const pv_csv *p)
{
    return p->offset;
}

long pv_csv_line(const pv_csv *p)
{
    return p->off_line;
}

char pv_csv_delimiter(const pv_csv *p)
{
    return p->delim;
}

void pv_csv_resume(pv_csv *p, char delimiter, long line, uint64_t offset)
{
    /* These could never separate fields; asking for them means "detect". */
    if (delimiter == '"' || delimiter == '\n' || delimiter == '\r')
        delimiter = 0;
    p->delim = delimiter;
    /* Only the very start of a file can carry a BOM. */
    p->bom = (delimiter == 0 && offset == 0) ? 0 : -1;
    p->det_len = 0;
    p->det_state = DS_FIELD;
    memset(p->det_count, 0, sizeof p->det_count);
    reset_record(p);
    p->line = p->rec_line = p->quote_line = p->off_line = line > 0 ? line : 1;
    p->pos = p->offset = offset;
}
