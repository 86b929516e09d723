/* ingest_hl7.c: HL7 v2 messages to facts (DESIGN "Feeds": ORU^R01,
 * RDE^O11, RAS^O17, VXU^V04, ADT^A01/A03/A04/A08; and OUL^R22/R24,
 * RDS^O13, RGV^O15 and ADT deaths, docs/feeds.md), stored through the
 * pipeline. See ingest.h.
 *
 * What we accept: versions 2.3 to 2.8; messages that are not ours to
 * understand but are well-formed are stored and acknowledged AA with no
 * facts; an ACK is never answered. A message with the same sending
 * application, facility and control id as a stored one is a duplicate: AA,
 * not stored again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "hl7.h"
#include "ingest.h"
#include "log.h"
#include "map.h"
#include "sha256.h"

/* Decoded strings live until the message is done. */
struct strs {
    char **items;
    size_t n, cap;
};

static const char *keep(struct strs *s, char *str)
{
    if (!str)
        return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        char **n = realloc(s->items, cap * sizeof *n);
        if (!n) {
            free(str);
            return NULL;
        }
        s->items = n;
        s->cap = cap;
    }
    s->items[s->n++] = str;
    return str;
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i]);
    free(s->items);
}

struct ctx {
    pv_ingest *p;
    const pv_hl7_msg *m;
    struct strs strs;
    pv_hl7_result *res;
    int64_t message_id;
    pv_time_t msh_time;
    int has_msh_time;
    const char *patient;
    pv_time_t now;   /* bound for plausible times: see pv_time_implausible */
    long skipped;    /* segments left out of the message (issue 15 item 5) */
    long listed;     /* of which the reasons fit in warn */
    int first_error; /* the first skip's ERR-3 code */
    char warn[2048]; /* one "ERL<TAB>reason" line per skipped segment */
    size_t warn_len;
    char first_reason[256]; /* the first skip's reason, for an AE */
};

/* The decoded text of a component, or NULL when empty or HL7 null (""). */
static const char *val(struct ctx *c, long seg, size_t field, size_t rep,
                       size_t comp)
{
    if (seg < 0)
        return NULL;
    pv_span sp = pv_hl7_get(c->m, (size_t)seg, field, rep, comp, 0);
    if (sp.len == 0 || pv_hl7_is_null(sp))
        return NULL;
    char *d = pv_hl7_decode_dup(c->m, sp);
    if (d && !*d) {
        free(d);
        return NULL;
    }
    return keep(&c->strs, d);
}

/* Leaves one segment out of the message with a reason: the rest of the
 * message is stored and judged, the ACK is AA with an ERR of severity W
 * naming it (pv_hl7_ack), or AE when nothing usable remained. 'seg' is the
 * segment's index, 'field' the field at fault. Returns 0 (the mapping goes
 * on). */
static int skip_segment(struct ctx *c, long seg, size_t field, int err,
                        const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int skip_segment(struct ctx *c, long seg, size_t field, int err,
                        const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    pv_span name = pv_hl7_segment_name(c->m, (size_t)seg);
    /* ERR-2 (ERL): segment id ^ its occurrence in the message ^ field. */
    size_t nth = 0;
    for (size_t i = 0; i <= (size_t)seg; i++)
        if (pv_hl7_segment_name(c->m, i).len == name.len &&
            !memcmp(pv_hl7_segment_name(c->m, i).ptr, name.ptr, name.len))
            nth++;
    char line[400];
    int n = snprintf(line, sizeof line,
                     "%.3s^%zu^%zu\t%.3s-%zu at line %ld: "
                     "%s; segment skipped\n",
                     name.ptr, nth, field, name.ptr, field,
                     pv_hl7_segment_line(c->m, (size_t)seg), why);
    if (c->skipped == 0)
        c->first_error = err;
    if (c->skipped++ == 0)
        snprintf(c->first_reason, sizeof c->first_reason,
                 "%.3s-%zu at line %ld: %s", name.ptr, field,
                 pv_hl7_segment_line(c->m, (size_t)seg), why);
    /* The log names a few; messages.error and the ACK hold the rest. */
    if (c->skipped <= 5)
        pv_warn("HL7 %.3s-%zu at line %ld: %s; segment skipped", name.ptr,
                field, pv_hl7_segment_line(c->m, (size_t)seg), why);
    /* Whole lines only, and room kept for the last one saying how many
     * more were skipped (written at the end, see finish_warnings). */
    if (n > 0 && (size_t)n < sizeof c->warn - 80 - c->warn_len) {
        memcpy(c->warn + c->warn_len, line, (size_t)n);
        c->warn_len += (size_t)n;
        c->warn[c->warn_len] = '\0';
        c->listed++;
    }
    return 0;
}

/* Ends the warnings with a count of those that did not fit, and copies
 * the whole lines that fit into out (the ACK's text), with the same count
 * for the rest. */
static void finish_warnings(struct ctx *c, char *out, size_t cap)
{
    if (c->listed < c->skipped)
        snprintf(c->warn + c->warn_len, sizeof c->warn - c->warn_len,
                 "and %ld more segments skipped\n", c->skipped - c->listed);
    size_t n = 0;
    long lines = 0;
    for (const char *l = c->warn; *l && lines < c->listed; lines++) {
        const char *eol = strchr(l, '\n');
        size_t len = (size_t)(eol - l) + 1;
        if (n + len >= cap - 48)
            break;
        memcpy(out + n, l, len);
        n += len;
        l += len;
    }
    out[n] = '\0';
    if (lines < c->skipped)
        snprintf(out + n, cap - n, "and %ld more segments skipped\n",
                 c->skipped - lines);
}

/* Parses a feed time and checks that it is plausible for a fact. Returns
 * 0 when t was set, 1 when s is empty, -1 when s is not a valid or
 * plausible time (the reason in why). */
static int fact_time(struct ctx *c, const char *s, pv_time_t *t, char *why,
                     size_t cap)
{
    if (!s)
        return 1;
    pv_time_t v;
    if (pv_time_parse(s, strlen(s), &v) != 0) {
        snprintf(why, cap, "'%.40s' is not a valid time (HL7 TS)", s);
        return -1;
    }
    const char *bad = pv_time_implausible(v, c->now);
    if (bad) {
        snprintf(why, cap, "'%.40s' is an impossible time (%s)", s, bad);
        return -1;
    }
    *t = v;
    return 0;
}

static int span_eq(pv_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int ts(const char *s, pv_time_t *t)
{
    return s && pv_time_parse(s, strlen(s), t) == 0;
}

static void set_result(pv_hl7_result *r, int ack, int error, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void set_result(pv_hl7_result *r, int ack, int error, const char *fmt,
                       ...)
{
    r->ack = ack;
    r->error = error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

/* The decoded sub-component of a component, or NULL when empty. */
static const char *subval(struct ctx *c, long seg, size_t field, size_t rep,
                          size_t comp, size_t sub)
{
    pv_span sp = pv_hl7_get(c->m, (size_t)seg, field, rep, comp, sub);
    if (sp.len == 0 || pv_hl7_is_null(sp))
        return NULL;
    return keep(&c->strs, pv_hl7_decode_dup(c->m, sp));
}

/* PID-3: the first identifier, or the one whose assigning authority
 * (CX.4, an HD: namespace id & universal id & its type) the configuration
 * names, by namespace id, universal id (an OID) or as a whole. */
static const char *patient_id(struct ctx *c, long pid)
{
    const char *want = pv_ingest_config(c->p)->mllp.assigning_authority;
    size_t reps = pv_hl7_rep_count(c->m, (size_t)pid, 3);
    for (size_t r = 1; want && r <= reps; r++) {
        const char *whole = val(c, pid, 3, r, 4);
        const char *ns = subval(c, pid, 3, r, 4, 1);
        const char *uid = subval(c, pid, 3, r, 4, 2);
        if ((whole && !strcmp(whole, want)) || (ns && !strcmp(ns, want)) ||
            (uid && !strcmp(uid, want)))
            return val(c, pid, 3, r, 1);
    }
    return val(c, pid, 3, 1, 1);
}

static int store_patient(struct ctx *c, long pid)
{
    c->patient = patient_id(c, pid);
    if (!c->patient)
        return 0;
    /* Only the birth date (as a date) and sex: never names. */
    const char *dob = val(c, pid, 7, 1, 1);
    char date[11] = "";
    pv_time_t t;
    if (ts(dob, &t)) {
        char iso[PV_TIME_BUFSZ];
        snprintf(date, sizeof date, "%.10s", pv_time_format(t, iso));
    }
    return pv_store_patient(pv_ingest_store(c->p), c->patient,
                            date[0] ? date : NULL, val(c, pid, 8, 1, 1));
}

/* Marks earlier live results of the same patient, code, time and order
 * (OBR-3, else OBR-2: 'order'; issue 15 item 1) as replaced or wrong ('W')
 * or deleted ('D'); with 'only', just those whose status is 'only' (a
 * final replaces the preliminary, not another final). A row without an
 * order number (CSV, stored before migration 0006, no OBR) matches any
 * order; two different order numbers never match. History queries leave
 * 'D' and 'W' rows out. Returns how many there were in *count. */
static int supersede(struct ctx *c, const char *code, pv_time_t at,
                     const char *order, const char *mark, const char *only,
                     int *count)
{
    return pv_store_obs_supersede(pv_ingest_store(c->p), c->patient, code, at,
                                  order, mark, only, count);
}

/* OBX-7. Besides what pv_map_ref_range() reads ("3.5-7.0", "<5", ">40"),
 * NIST LRI and many US labs write "13 to 18". */
static void ref_range(const char *range, pv_obs *o)
{
    const char *to = strstr(range, " to ");
    char buf[128], tight[128];
    if (to && strlen(range) < sizeof buf) {
        snprintf(buf, sizeof buf, "%.*s-%s", (int)(to - range), range, to + 4);
        range = buf;
    }
    /* "3.5 - 5.3", "< 5": without the spaces (issue 15 item 4). */
    size_t n = 0;
    for (const char *r = range; *r && n + 1 < sizeof tight; r++)
        if (*r != ' ')
            tight[n++] = *r;
    tight[n] = '\0';
    pv_map_ref_range(tight, o);
}

/* A units field (CE): its identifier, unless that is only a number and the
 * text component holds the unit ("43^mg/hr", issue 15 item 4). */
static const char *unit_of(struct ctx *c, long seg, size_t field)
{
    const char *id = val(c, seg, field, 1, 1);
    const char *text = val(c, seg, field, 1, 2);
    double v;
    if (text && (!id || pv_map_number(id, strlen(id), &v) == 0))
        return text;
    return id;
}

static int map_obx(struct ctx *c, long obx, long obr)
{
    pv_obs o = {0};
    o.patient_id = c->patient;
    o.code = val(c, obx, 3, 1, 1);
    o.name = val(c, obx, 3, 1, 2);
    const char *sys = val(c, obx, 3, 1, 3);
    if (!o.code) {
        /* Only the alternate identifier (CE.4-6) is filled. */
        o.code = val(c, obx, 3, 1, 4);
        o.name = val(c, obx, 3, 1, 5);
        sys = val(c, obx, 3, 1, 6);
    }
    /* An empty OBX-3.3 is a local code, stored with an empty code system:
     * never taken for LOINC (issue 15 item 4). Rules that want LOINC match
     * code_system "LN" (docs/feeds.md). */
    o.code_system = sys ? sys : "";
    if (!o.code)
        return skip_segment(c, obx, 3, PV_HL7_ERR_REQUIRED_FIELD,
                            "observation identifier missing");
    const char *type = val(c, obx, 2, 1, 1);
    if (obr >= 0) {
        o.filler_order = val(c, obr, 3, 1, 1);
        if (!o.filler_order)
            o.filler_order = val(c, obr, 2, 1, 1);
    }
    o.status = val(c, obx, 11, 1, 1);
    if (!o.status)
        o.status = "F";
    o.unit = unit_of(c, obx, 6);
    o.flag = val(c, obx, 8, 1, 1);
    const char *range = val(c, obx, 7, 1, 0);
    if (range)
        ref_range(range, &o);
    /* OBX-14, else OBR-7, else MSH-7: the first one given decides, and
     * when it is not a valid, plausible time the segment is skipped rather
     * than given another time (issue 22 item 15). */
    char why[128];
    int tr = fact_time(c, val(c, obx, 14, 1, 1), &o.at, why, sizeof why);
    if (tr < 0)
        return skip_segment(c, obx, 14, PV_HL7_ERR_DATA_TYPE,
                            "observation time %s", why);
    if (tr > 0 && obr >= 0) {
        tr = fact_time(c, val(c, obr, 7, 1, 1), &o.at, why, sizeof why);
        if (tr < 0)
            return skip_segment(c, obx, 14, PV_HL7_ERR_DATA_TYPE,
                                "no OBX-14, and OBR-7 (line %ld) %s",
                                pv_hl7_segment_line(c->m, (size_t)obr), why);
    }
    if (tr > 0) {
        tr = fact_time(c, val(c, 0, 7, 1, 1), &o.at, why, sizeof why);
        if (tr != 0)
            return skip_segment(c, obx, 14,
                                tr > 0 ? PV_HL7_ERR_REQUIRED_FIELD
                                       : PV_HL7_ERR_DATA_TYPE,
                                "no observation time (OBX-14 and OBR-7 "
                                "empty, MSH-7 %s)",
                                tr > 0 ? "empty" : why);
    }
    if (type && !strcmp(type, "SN")) {
        /* comparator ^ num1 ^ separator ^ num2: keep a plain comparator
         * with its number; ratios and ranges stay text. */
        const char *cmp = val(c, obx, 5, 1, 1);
        const char *n1 = val(c, obx, 5, 1, 2);
        const char *sep = val(c, obx, 5, 1, 3);
        if (n1 && !sep && pv_map_number(n1, strlen(n1), &o.value_num) == 0) {
            o.has_num = 1;
            o.comparator = cmp;
        }
        o.value_text = val(c, obx, 5, 1, 0);
    } else if (type && (!strcmp(type, "CE") || !strcmp(type, "CWE") ||
                        !strcmp(type, "CNE"))) {
        const char *text = val(c, obx, 5, 1, 2);
        o.value_text = text ? text : val(c, obx, 5, 1, 1);
    } else if (type && (!strcmp(type, "DT") || !strcmp(type, "TS") ||
                        !strcmp(type, "TM") || !strcmp(type, "DTM"))) {
        /* A date or time (20261201) is text, never a number (issue 15
         * item 4). */
        o.value_text = val(c, obx, 5, 1, 0);
    } else {
        o.value_text = val(c, obx, 5, 0, 0);
        if (o.value_text && pv_map_number(o.value_text, strlen(o.value_text),
                                          &o.value_num) == 0)
            o.has_num = 1;
    }
    o.message_id = c->message_id;
    o.line = pv_hl7_segment_line(c->m, (size_t)obx);
    int n = 0;
    /* OBX-11 (table 0085), issue 15 item 1: D deletes the earlier result
     * and is not stored; W (wrong: posted to the wrong patient) retires it
     * and is stored, never judged (pv_obs_judged); C retires the earlier
     * live result whatever its status; F retires an earlier preliminary
     * (P) of the same code and time, so that one live row remains. */
    int rc = 0;
    if (!strcmp(o.status, "D"))
        return supersede(c, o.code, o.at, o.filler_order, "D", NULL, &n);
    if (!strcmp(o.status, "C") || !strcmp(o.status, "W"))
        rc = supersede(c, o.code, o.at, o.filler_order, "W", NULL, &n);
    else if (!strcmp(o.status, "F"))
        rc = supersede(c, o.code, o.at, o.filler_order, "W", "P", &n);
    if (rc)
        return rc;
    rc = pv_ingest_lab(c->p, &o, NULL);
    if (!rc)
        c->res->facts++;
    return rc;
}

/* ORU^R01, and OUL^R22 / OUL^R24 (issue 15 item 7), which carry the same
 * OBR / OBX groups. In OUL^R22 a SPECIMEN group (SPM, then its own OBX)
 * comes before the ORDER groups, so an OBX after an SPM and before the
 * next OBR describes the specimen, not a result: it is not stored. In
 * OUL^R24 and ORU^R01 the specimen's OBX and the results cannot be told
 * apart, so every OBX is a result (none is lost). */
static int map_oru(struct ctx *c)
{
    long obr = -1;
    int specimen_obx = 0; /* OBX here belong to an SPM (OUL^R22) */
    int r22 = span_eq(pv_hl7_msg_type(c->m), "OUL") &&
              span_eq(pv_hl7_trigger(c->m), "R22");
    size_t n = pv_hl7_segment_count(c->m);
    for (size_t i = 0; i < n; i++) {
        pv_span name = pv_hl7_segment_name(c->m, i);
        if (span_eq(name, "PID")) {
            int rc = store_patient(c, (long)i);
            if (rc)
                return rc;
        } else if (span_eq(name, "SPM")) {
            specimen_obx = r22;
        } else if (span_eq(name, "OBR")) {
            obr = (long)i;
            specimen_obx = 0;
        } else if (span_eq(name, "OBX") && specimen_obx) {
            continue;
        } else if (span_eq(name, "OBX")) {
            if (!c->patient) {
                set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                           "OBX before any PID with a PID-3 patient "
                           "identifier");
                return 1;
            }
            int rc = map_obx(c, (long)i, obr);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* The segments that become exposures, by field (HL7 v2.5 chapter 4):
 * RXE (pharmacy encoded order, RDE), RXA (administration, RAS and VXU),
 * RXD (dispense, RDS^O13) and RXG (give, RGV^O15); issue 15 item 7. */
enum rx_kind { RX_RXE, RX_RXA, RX_RXD, RX_RXG };

static const struct rx_def {
    const char *seg;
    size_t code;     /* give / administered / dispense code (CE) */
    size_t amount;   /* the amount of one dose (NM) */
    size_t units;    /* its units (CE) */
    size_t tq;       /* the segment's own quantity/timing (TQ), 0 none */
    size_t start;    /* its own start time (TS), 0 none */
    size_t end;      /* its own end time (TS), 0 none */
    const char *own; /* start_source for the segment's own time or TQ */
} rx_defs[] = {
    [RX_RXE] = {"RXE", 2, 3, 5, 1, 0, 0, "RXE-1"},
    [RX_RXA] = {"RXA", 5, 6, 7, 0, 3, 4, "RXA-3"},
    /* RXD-4 is the quantity handed out (28 tablets), not a dose: the dose
     * is RXD-16/17, the actual strength of what was dispensed. */
    [RX_RXD] = {"RXD", 2, 16, 17, 0, 3, 0, "RXD-3"},
    [RX_RXG] = {"RXG", 4, 5, 7, 3, 0, 0, "RXG-3"},
};

/* One place an exposure's start (and end) may be written. */
struct rx_when {
    const char *start, *end;
    const char *source; /* exposures.start_source: "TQ1-7", "RXE-1" ... */
    long seg;           /* where it stands, for the reason */
};

/* Reads an exposure time: 0 when set, -1 when not a valid HL7 TS or before
 * 1850 (PV_TIME_FACT_MIN). Orders may be planned ahead, so there is no
 * bound in the future (docs/feeds.md). */
static int rx_time(const char *s, pv_time_t *t, char *why, size_t cap)
{
    if (pv_time_parse(s, strlen(s), t) != 0) {
        snprintf(why, cap, "'%.40s' is not a valid time (HL7 TS)", s);
        return -1;
    }
    if (*t < PV_TIME_FACT_MIN) {
        snprintf(why, cap, "'%.40s' is an impossible time (before 1850)", s);
        return -1;
    }
    return 0;
}

/* An RXE, RXA, RXD or RXG segment to an exposure. tq1 is the order's or
 * the segment's TQ1, orc its ORC (-1 none), rxr the RXR that follows. */
static int map_rx(struct ctx *c, long seg, enum rx_kind kind, long tq1,
                  long orc, long rxr)
{
    const struct rx_def *d = &rx_defs[kind];
    pv_exposure e = {0};
    e.patient_id = c->patient;
    e.drug_code = val(c, seg, d->code, 1, 1);
    const char *text = val(c, seg, d->code, 1, 2);
    e.drug = text ? text : e.drug_code;
    e.code_system = val(c, seg, d->code, 1, 3);
    if (!e.drug) {
        set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                   "%s-%zu drug code missing", d->seg, d->code);
        return 1;
    }
    const char *dose = val(c, seg, d->amount, 1, 1);
    /* RXA-6 999 is "amount unknown" (CDC IIS guide): no dose (issue 15
     * item 4). */
    if (kind == RX_RXA && dose && !strcmp(dose, "999"))
        dose = NULL;
    if (dose && pv_map_number(dose, strlen(dose), &e.dose) == 0)
        e.has_dose = 1;
    e.dose_unit = unit_of(c, seg, d->units);
    e.route = rxr >= 0 ? val(c, rxr, 1, 1, 1) : NULL;
    if (kind == RX_RXA) {
        const char *done = val(c, seg, 20, 1, 1);
        const char *action = val(c, seg, 21, 1, 1);
        /* Refused or not administered, or a deletion: no exposure. */
        if ((done && (!strcmp(done, "RE") || !strcmp(done, "NA"))) ||
            (action && !strcmp(action, "D")))
            return 0;
    }
    /* Where the start is written, in order (issue 15 item 3): the
     * segment's own time (RXA-3, RXD-3), TQ1-7/8 (v2.5+), the segment's
     * quantity/timing (RXE-1, RXG-3: TQ start ^ end in components 4 and
     * 5, the v2.3 form "^^^start^end"), ORC-7 (the same TQ). The first one
     * given decides and gives the end too; when none gives a start, MSH-7
     * with the first end given. */
    struct rx_when w[4];
    size_t nw = 0;
    if (d->start)
        w[nw++] = (struct rx_when){val(c, seg, d->start, 1, 1),
                                   d->end ? val(c, seg, d->end, 1, 1) : NULL,
                                   d->own, seg};
    if (kind != RX_RXA && tq1 >= 0)
        w[nw++] = (struct rx_when){val(c, tq1, 7, 1, 1), val(c, tq1, 8, 1, 1),
                                   "TQ1-7", tq1};
    if (d->tq)
        w[nw++] = (struct rx_when){subval(c, seg, d->tq, 1, 4, 1),
                                   subval(c, seg, d->tq, 1, 5, 1), d->own, seg};
    if (kind != RX_RXA && orc >= 0)
        w[nw++] = (struct rx_when){subval(c, orc, 7, 1, 4, 1),
                                   subval(c, orc, 7, 1, 5, 1), "ORC-7", orc};
    const char *end = NULL;
    size_t k = 0;
    while (k < nw && !w[k].start)
        k++;
    size_t own = d->start ? d->start : d->tq;
    char why[128];
    if (k < nw) {
        if (rx_time(w[k].start, &e.start, why, sizeof why)) {
            if (w[k].seg == seg)
                return skip_segment(c, seg, own, PV_HL7_ERR_DATA_TYPE,
                                    "start time %s", why);
            return skip_segment(c, seg, own, PV_HL7_ERR_DATA_TYPE,
                                "start time in %s (line %ld) %s", w[k].source,
                                pv_hl7_segment_line(c->m, (size_t)w[k].seg),
                                why);
        }
        e.start_source = w[k].source;
        end = w[k].end;
    } else {
        if (!c->has_msh_time) {
            set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                       "no start time for %s", e.drug);
            return 1;
        }
        e.start = c->msh_time;
        e.start_source = "MSH-7";
        for (k = 0; k < nw && !end; k++)
            end = w[k].end;
    }
    if (end) {
        if (rx_time(end, &e.end, why, sizeof why))
            return skip_segment(c, seg, own, PV_HL7_ERR_DATA_TYPE,
                                "end time %s", why);
        /* An end before the start is not believed: open-ended. */
        e.has_end = e.end >= e.start;
    }
    e.message_id = c->message_id;
    e.line = pv_hl7_segment_line(c->m, (size_t)seg);
    e.placer_order = val(c, orc, 2, 1, 1);
    e.filler_order = val(c, orc, 3, 1, 1);
    /* ORC-1 XO (change order) / RO (replacement order), issue 15 item 2:
     * the new order replaces the open exposure of the order it names
     * (ORC-2/ORC-3), which ends where the new one starts. */
    const char *control = val(c, orc, 1, 1, 1);
    if (control && (!strcmp(control, "XO") || !strcmp(control, "RO"))) {
        int ended;
        int rc = pv_store_end_exposures(pv_ingest_store(c->p), c->patient,
                                        e.placer_order, e.filler_order, e.start,
                                        &ended);
        if (rc)
            return rc;
    }
    int rc = pv_ingest_exposure(c->p, &e, NULL);
    if (!rc)
        c->res->facts++;
    return rc;
}

/* ORC-1 DC (discontinue) / OD (discontinued as requested), issue 15 item
 * 2: the open exposure of the same order (ORC-2 placer or ORC-3 filler
 * order number) ends at the order's transaction time (ORC-9), else at the
 * message time (MSH-7). An order without either number matches nothing: it
 * is logged in the ACK as a warning, since the exposure it meant stays
 * open. */
static int end_order(struct ctx *c, long orc)
{
    const char *placer = val(c, orc, 2, 1, 1);
    const char *filler = val(c, orc, 3, 1, 1);
    if (!placer && !filler)
        return skip_segment(c, orc, 2, PV_HL7_ERR_REQUIRED_FIELD,
                            "discontinued order without ORC-2 or ORC-3: "
                            "no exposure ended");
    pv_time_t at;
    if (!ts(val(c, orc, 9, 1, 1), &at)) {
        if (!c->has_msh_time)
            return skip_segment(c, orc, 9, PV_HL7_ERR_REQUIRED_FIELD,
                                "discontinued order without a time (ORC-9, "
                                "MSH-7): no exposure ended");
        at = c->msh_time;
    }
    int ended;
    return pv_store_end_exposures(pv_ingest_store(c->p), c->patient, placer,
                                  filler, at, &ended);
}

static int map_rx_message(struct ctx *c, enum rx_kind kind)
{
    const char *segname = rx_defs[kind].seg;
    size_t n = pv_hl7_segment_count(c->m);
    long tq1 = -1, orc = -1;
    const char *control = NULL; /* ORC-1 of the current order */
    for (size_t i = 0; i < n; i++) {
        pv_span name = pv_hl7_segment_name(c->m, i);
        if (span_eq(name, "PID")) {
            int rc = store_patient(c, (long)i);
            if (rc)
                return rc;
        } else if (span_eq(name, "ORC")) {
            tq1 = -1; /* a new order: its own timing */
            orc = (long)i;
            control = val(c, (long)i, 1, 1, 1);
        } else if (span_eq(name, "TQ1")) {
            tq1 = (long)i;
        } else if (span_eq(name, segname)) {
            if (!c->patient) {
                set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                           "PID-3 patient identifier missing");
                return 1;
            }
            /* The route is the RXR that follows; so is the timing of an
             * encoded order in v2.5+ (RDE_O11 TIMING_ENCODED: RXE then
             * TQ1; RGV_O15 TIMING_GIVE: RXG then TQ1), which wins over an
             * order's TQ1 before it. Both stop at the next ORC or order
             * segment. */
            long next = pv_hl7_find_from(c->m, i + 1, segname);
            long norc = pv_hl7_find_from(c->m, i + 1, "ORC");
            if (norc >= 0 && (next < 0 || norc < next))
                next = norc;
            long rxr = pv_hl7_find_from(c->m, i + 1, "RXR");
            if (next >= 0 && rxr > next)
                rxr = -1;
            long tq1_after = pv_hl7_find_from(c->m, i + 1, "TQ1");
            if (tq1_after >= 0 && (next < 0 || tq1_after < next))
                tq1 = tq1_after;
            /* ORC-1 (table 0119), issue 15 item 2: a cancelled, refused,
             * discontinued or held order is no exposure; a discontinued
             * one (DC, OD) also ends the open exposure of its order
             * (end_order), and XO/RO replace it (map_rx). */
            static const char *const no_exposure[] = {"CA", "DC", "OC",
                                                      "CR", "OD", "HD"};
            int skip = 0;
            for (size_t k = 0; control && k < 6; k++)
                skip |= !strcmp(control, no_exposure[k]);
            int rc;
            if (skip && (!strcmp(control, "DC") || !strcmp(control, "OD")))
                rc = end_order(c, orc);
            else
                rc = skip ? 0 : map_rx(c, (long)i, kind, tq1, orc, rxr);
            tq1 = -1;
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* A death in an ADT (issue 14): PID-30 death indicator "Y", a PID-29
 * death date/time (unless PID-30 says "N"), or PV1-36 discharge
 * disposition 20, 40, 41 or 42 (NUBC patient status "expired", "expired at
 * home", "expired in a medical facility", "expired, place unknown"; HL7
 * table 0112 is user-defined and US senders use these). It becomes one
 * event with outcome "fatal", serious, which plugins/death.lua judges:
 * code = the principal DG1 (DG1-15 = 1, else the first DG1 with a code) as
 * the cause, else R99 (unknown cause of mortality); onset = PID-29, else
 * PV1-45 discharge date/time, else EVN-6, EVN-2, MSH-7. Returns 0, 1 (AE:
 * an unreadable PID-29) or an error. */
static int map_death(struct ctx *c, long pid, long evn)
{
    const char *ind = val(c, pid, 30, 1, 1);
    const char *when = val(c, pid, 29, 1, 1);
    long pv1 = pv_hl7_find(c->m, "PV1", 1);
    const char *disp = pv1 >= 0 ? val(c, pv1, 36, 1, 1) : NULL;
    static const char *const expired[] = {"20", "40", "41", "42"};
    int by_disp = 0;
    for (size_t k = 0; disp && k < 4; k++)
        by_disp |= !strcmp(disp, expired[k]);
    int by_ind = ind && (!strcmp(ind, "Y") || !strcmp(ind, "y"));
    int denied = ind && (!strcmp(ind, "N") || !strcmp(ind, "n"));
    int by_time = when && !denied;
    if (!by_ind && !by_time && !by_disp)
        return 0;
    pv_event e = {0};
    e.patient_id = c->patient;
    e.outcome = "fatal";
    e.serious = 1;
    char why[128];
    int tr = fact_time(c, when, &e.onset, why, sizeof why);
    if (tr < 0) {
        set_result(c->res, PV_HL7_AE, PV_HL7_ERR_DATA_TYPE,
                   "PID-29 death date/time %s", why);
        return 1;
    }
    if (tr > 0 && !(pv1 >= 0 && ts(val(c, pv1, 45, 1, 1), &e.onset)) &&
        !ts(val(c, evn, 6, 1, 1), &e.onset) &&
        !ts(val(c, evn, 2, 1, 1), &e.onset)) {
        if (!c->has_msh_time) {
            set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                       "no time for the death (PID-29, PV1-45, EVN, MSH-7)");
            return 1;
        }
        e.onset = c->msh_time;
    }
    long cause = -1;
    size_t n = pv_hl7_segment_count(c->m);
    for (size_t i = 0; i < n; i++) {
        if (!span_eq(pv_hl7_segment_name(c->m, i), "DG1") ||
            !val(c, (long)i, 3, 1, 1))
            continue;
        if (cause < 0)
            cause = (long)i;
        const char *prio = val(c, (long)i, 15, 1, 1);
        if (prio && !strcmp(prio, "1")) {
            cause = (long)i;
            break;
        }
    }
    char term[200];
    const char *said = by_ind    ? "PID-30 death indicator Y"
                       : by_time ? "PID-29 death date/time"
                                 : "PV1-36 discharge disposition expired";
    if (cause >= 0) {
        e.code = val(c, cause, 3, 1, 1);
        const char *text = val(c, cause, 3, 1, 2);
        const char *sys = val(c, cause, 3, 1, 3);
        e.code_system = !sys || !strncmp(sys, "I10", 3) ? "ICD10CM" : sys;
        snprintf(term, sizeof term, "Death (%s); cause: %.120s", said,
                 text ? text : e.code);
    } else {
        e.code = "R99";
        e.code_system = "ICD10CM";
        snprintf(term, sizeof term, "Death (%s); cause not given", said);
    }
    e.term = term;
    e.message_id = c->message_id;
    e.line = pv_hl7_segment_line(c->m, (size_t)pid);
    int rc = pv_ingest_event(c->p, &e, NULL);
    if (!rc)
        c->res->facts++;
    return rc;
}

static int map_adt(struct ctx *c)
{
    long pid = pv_hl7_find(c->m, "PID", 1);
    if (pid < 0 || store_patient(c, pid) || !c->patient) {
        set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                   "PID-3 patient identifier missing");
        return 1;
    }
    long evn = pv_hl7_find(c->m, "EVN", 1);
    size_t n = pv_hl7_segment_count(c->m);
    for (size_t i = 0; i < n; i++) {
        if (!span_eq(pv_hl7_segment_name(c->m, i), "DG1"))
            continue;
        pv_event e = {0};
        e.patient_id = c->patient;
        e.code = val(c, (long)i, 3, 1, 1);
        if (!e.code)
            continue;
        const char *text = val(c, (long)i, 3, 1, 2);
        e.term = text ? text : val(c, (long)i, 4, 1, 0);
        const char *sys = val(c, (long)i, 3, 1, 3);
        /* I10 and I10C are HL7's names for ICD-10(-CM). */
        e.code_system = !sys || !strncmp(sys, "I10", 3) ? "ICD10CM" : sys;
        e.serious = -1;
        if (!ts(val(c, (long)i, 5, 1, 1), &e.onset) &&
            !ts(val(c, evn, 2, 1, 1), &e.onset)) {
            if (!c->has_msh_time) {
                set_result(c->res, PV_HL7_AE, PV_HL7_ERR_REQUIRED_FIELD,
                           "no time for diagnosis %s", e.code);
                return 1;
            }
            e.onset = c->msh_time;
        }
        e.message_id = c->message_id;
        e.line = pv_hl7_segment_line(c->m, i);
        int rc = pv_ingest_event(c->p, &e, NULL);
        if (rc)
            return rc;
        c->res->facts++;
    }
    return map_death(c, pid, evn);
}

static int supported_version(pv_span v)
{
    /* 2.3 to 2.8, with or without a further level (2.5.1). */
    return v.len >= 3 && v.ptr[0] == '2' && v.ptr[1] == '.' &&
           v.ptr[2] >= '3' && v.ptr[2] <= '8' &&
           (v.len == 3 || v.ptr[3] == '.');
}

/* Keeps a message rejected before it could be given a source and control
 * id (unparsable, no MSH-10, unsupported version) in messages, keyed by the
 * SHA-256 of its bytes, so nothing is lost; in a savepoint of its own. The
 * same bytes again are not stored twice. */
static int store_unread(pv_store *s, const char *raw, size_t len,
                        const char *type, const char *peer, const char *why)
{
    pv_sha256 h;
    char hex[65], key[80];
    pv_sha256_init(&h);
    pv_sha256_update(&h, raw, len);
    pv_sha256_hex(&h, hex);
    snprintf(key, sizeof key, "sha256:%s", hex);
    int rc = pv_store_savepoint(s);
    if (rc)
        return rc;
    int64_t id;
    rc = pv_store_message_add(s, "unparsed", key, type, peer, raw, len,
                              "rejected", &id, NULL);
    if (!rc)
        rc = pv_store_message_finish(s, id, "rejected", why, 0, 0);
    if (rc == PV_ESTATE)
        rc = 0;
    if (rc) {
        pv_store_rollback_to(s);
        return rc;
    }
    return pv_store_release(s);
}

/* The SHA-256 (hex) of a message's content (issue 15 item 6): its
 * segments, each ended by CR, whatever line ends, blank lines and MLLP
 * framing bytes it came with, so that a file (LF) and the same message over
 * MLLP (CR) hash alike. */
static void content_hash(const char *raw, size_t len, char hex[65])
{
    pv_sha256 h;
    pv_sha256_init(&h);
    size_t i = 0;
    while (i < len) {
        while (i < len && (raw[i] == '\r' || raw[i] == '\n' || raw[i] == 0x0B ||
                           raw[i] == 0x1C))
            i++;
        size_t from = i;
        while (i < len && raw[i] != '\r' && raw[i] != '\n' && raw[i] != 0x1C)
            i++;
        if (i > from) {
            pv_sha256_update(&h, raw + from, i - from);
            pv_sha256_update(&h, "\r", 1);
        }
    }
    pv_sha256_hex(&h, hex);
}

/* Whether the stored message 'id' has the content hash 'hex': 1 same, 0
 * other content, <0 a database error. A row stored before migration 0006
 * has no hash: its raw bytes are hashed. */
static int same_content(pv_store *s, int64_t id, const char *hex)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "SELECT content_sha256, raw FROM messages WHERE "
                           "id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int same = 1; /* not found: nothing to compare, a duplicate as before */
    if (rc == SQLITE_ROW) {
        const char *have = (const char *)sqlite3_column_text(st, 0);
        char mine[65];
        if (!have) {
            const void *b = sqlite3_column_blob(st, 1);
            int n = sqlite3_column_bytes(st, 1);
            content_hash(b ? b : "", b ? (size_t)n : 0, mine);
            have = mine;
        }
        same = strcmp(have, hex) == 0;
    } else if (rc != SQLITE_DONE) {
        same = PV_EDB;
    }
    sqlite3_finalize(st);
    return same;
}

/* A control id reused with other content and mllp.duplicates not
 * "by_content" (issue 15 item 6): AE, the message kept as rejected under a
 * key of its own (source "collision:...", control id#sha256), and an engine
 * alert. Inside the message's savepoint, which it releases. */
static int reject_collision(pv_ingest *p, pv_hl7_result *res,
                            const char *source, const char *control,
                            const char *msgtype, const char *peer,
                            const char *raw, size_t len, const char *hex)
{
    pv_store *s = pv_ingest_store(p);
    set_result(res, PV_HL7_AE, PV_HL7_ERR_DUPLICATE_KEY,
               "control id %.100s from %.200s was already used for a "
               "message with other content; not stored as a result (set "
               "mllp.duplicates = \"by_content\" to accept it)",
               control, source + 4);
    char csource[600], key[400];
    snprintf(csource, sizeof csource, "collision:%s", source);
    snprintf(key, sizeof key, "%s#sha256:%s", control, hex);
    int64_t id;
    int rc = pv_store_message_add(s, csource, key, msgtype, peer, raw, len,
                                  "rejected", &id, NULL);
    if (!rc)
        rc = pv_store_message_finish(s, id, "rejected", res->text, 0, 1);
    if (!rc)
        rc = pv_store_message_set_hash(s, id, hex);
    int fresh = !rc;
    if (rc == PV_ESTATE)
        rc = 0; /* the same collision again: kept once */
    if (!rc && fresh) {
        char akey[700], detail[900];
        snprintf(akey, sizeof akey, "control-id-reuse:%.300s|%.200s",
                 source + 4, control);
        snprintf(detail, sizeof detail,
                 "%.200s sent control id (MSH-10) %.100s again with "
                 "different content (SHA-256 %.16s...); the new message was "
                 "answered AE and kept as rejected in messages (source "
                 "%.300s).",
                 source + 4, control, hex, csource);
        rc = pv_ingest_engine_alert(
            p, "pvwatch.hl7", akey, "An HL7 control id was reused", detail,
            "Ask the sender's interface team why MSH-10 repeats; if it "
            "reuses control ids by design, set mllp.duplicates = "
            "\"by_content\".");
    }
    if (rc) {
        pv_store_rollback_to(s);
        return rc;
    }
    return pv_store_release(s);
}

void pv_hl7_result_free(pv_hl7_result *res)
{
    pv_hl7_free(res->msg);
    res->msg = NULL;
}

int pv_ingest_hl7(pv_ingest *p, const char *raw, size_t len, const char *peer,
                  long first_line, pv_hl7_result *res)
{
    memset(res, 0, sizeof *res);
    pv_store *s = pv_ingest_store(p);
    pv_hl7_opts opts = {.max_bytes = 0, .first_line = first_line};
    pv_hl7_error perr;
    int rc = pv_hl7_parse(raw, len, &opts, &res->msg, &perr);
    if (rc) {
        set_result(res, PV_HL7_AR, PV_HL7_ERR_SEGMENT_SEQUENCE, "%s",
                   perr.reason);
        /* Something that reads like an ACK is never answered (the peer may
         * be acknowledging ours), but it is kept like any bad input. */
        if (pv_hl7_raw_is_ack(raw, len))
            res->ack = -1;
        return store_unread(s, raw, len, NULL, peer, res->text);
    }
    const pv_hl7_msg *m = res->msg;
    if (pv_hl7_is_ack(m)) {
        res->ack = -1;
        snprintf(res->text, sizeof res->text, "an ACK; not answered");
        return 0;
    }
    struct ctx c = {.p = p, .m = m, .res = res};
    char *type = pv_hl7_decode_dup(m, pv_hl7_structure(m));
    char msgtype[64];
    pv_span mt = pv_hl7_msg_type(m), tr = pv_hl7_trigger(m);
    snprintf(msgtype, sizeof msgtype, "%.*s^%.*s", (int)mt.len, mt.ptr,
             (int)tr.len, tr.ptr);
    free(type);
    pv_span app = pv_hl7_sending_app(m), fac = pv_hl7_sending_facility(m);
    pv_span ctl = pv_hl7_control_id(m);
    char source[512], control[256];
    snprintf(source, sizeof source, "hl7:%.*s|%.*s", (int)app.len, app.ptr,
             (int)fac.len, fac.ptr);
    snprintf(control, sizeof control, "%.*s", (int)ctl.len, ctl.ptr);
    if (!control[0]) {
        set_result(res, PV_HL7_AR, PV_HL7_ERR_REQUIRED_FIELD,
                   "MSH-10 message control id missing");
        return store_unread(s, raw, len, msgtype, peer, res->text);
    }
    /* Cut to fit, two different long ids (or senders) sharing their first
     * characters would be one key: the second message a "duplicate" or a
     * "reused control id". HL7 gives MSH-10 199 characters at most (v2.7;
     * 20 before): a longer one is refused, never cut. */
    if (ctl.len >= sizeof control ||
        app.len + fac.len + sizeof "hl7:|" > sizeof source) {
        set_result(res, PV_HL7_AR, PV_HL7_ERR_DATA_TYPE,
                   ctl.len >= sizeof control
                       ? "MSH-10 message control id is %zu characters long; "
                         "at most 255 are taken"
                       : "MSH-3/MSH-4 sending application and facility are "
                         "%zu characters long; at most 500 are taken",
                   ctl.len >= sizeof control ? ctl.len : app.len + fac.len);
        return store_unread(s, raw, len, msgtype, peer, res->text);
    }
    if (!supported_version(pv_hl7_version(m))) {
        pv_span v = pv_hl7_version(m);
        set_result(res, PV_HL7_AR, PV_HL7_ERR_UNSUPPORTED_VERSION,
                   "HL7 version '%.*s' in MSH-12 is not supported (2.3 to "
                   "2.8)",
                   (int)(v.len > 20 ? 20 : v.len), v.ptr);
        return store_unread(s, raw, len, msgtype, peer, res->text);
    }
    c.has_msh_time = ts(val(&c, 0, 7, 1, 1), &c.msh_time);
    /* The later of the wall clock and the store's: a fixed test clock in
     * the past must not make today's results "in the future". */
    c.now = (pv_time_t)time(NULL);
    if (pv_store_now(s) > c.now)
        c.now = pv_store_now(s);

    rc = pv_store_savepoint(s);
    if (rc) {
        strs_free(&c.strs);
        return rc;
    }
    size_t mark = pv_alerts_mark(pv_ingest_alerts(p));
    char hex[65];
    content_hash(raw, len, hex);
    int64_t dup_id = 0;
    rc = pv_store_message_add(s, source, control, msgtype, peer, raw, len,
                              "accepted", &c.message_id, &dup_id);
    if (rc == PV_ESTATE) {
        /* The same sender and control id: a resend when the content is
         * the same, else a control id reused (issue 15 item 6). */
        int same = same_content(s, dup_id, hex);
        const char *mode = pv_ingest_config(p)->mllp.duplicates;
        if (same < 0) {
            rc = same;
        } else if (!same && mode && !strcmp(mode, "by_content")) {
            /* Stored as a new message under control id#sha256; that one
             * sent again is a duplicate of it. */
            char key[400];
            snprintf(key, sizeof key, "%s#sha256:%s", control, hex);
            rc = pv_store_message_add(s, source, key, msgtype, peer, raw, len,
                                      "accepted", &c.message_id, NULL);
        } else if (!same) {
            rc = reject_collision(p, res, source, control, msgtype, peer, raw,
                                  len, hex);
            strs_free(&c.strs);
            return rc;
        } else {
            rc = PV_ESTATE;
        }
    }
    if (!rc)
        rc = pv_store_message_set_hash(s, c.message_id, hex);
    if (rc == PV_ESTATE) {
        pv_store_rollback_to(s);
        res->duplicate = 1;
        res->ack = PV_HL7_AA;
        snprintf(res->text, sizeof res->text,
                 "duplicate of a stored message (control id %.100s from "
                 "%.200s); not stored again",
                 control, source + 4);
        strs_free(&c.strs);
        return 0;
    }
    int mapped = 0;
    if (!rc) {
        if ((span_eq(mt, "ORU") && span_eq(tr, "R01")) ||
            (span_eq(mt, "OUL") && (span_eq(tr, "R22") || span_eq(tr, "R24"))))
            mapped = map_oru(&c);
        else if (span_eq(mt, "RDE"))
            mapped = map_rx_message(&c, RX_RXE);
        else if (span_eq(mt, "RAS") || span_eq(mt, "VXU"))
            mapped = map_rx_message(&c, RX_RXA);
        else if (span_eq(mt, "RDS") && span_eq(tr, "O13"))
            mapped = map_rx_message(&c, RX_RXD);
        else if (span_eq(mt, "RGV") && span_eq(tr, "O15"))
            mapped = map_rx_message(&c, RX_RXG);
        else if (span_eq(mt, "ADT") &&
                 (span_eq(tr, "A01") || span_eq(tr, "A03") ||
                  span_eq(tr, "A04") || span_eq(tr, "A08")))
            mapped = map_adt(&c);
        /* Anything else well-formed: stored, no facts, AA. */
        if (mapped < 0)
            rc = mapped;
        /* Segments were skipped and nothing usable remained: AE. */
        if (!rc && !mapped && c.skipped && res->facts == 0) {
            set_result(res, PV_HL7_AE, c.first_error,
                       "nothing usable in the message: %ld segment%s "
                       "skipped, the first: %s",
                       c.skipped, c.skipped == 1 ? "" : "s", c.first_reason);
            mapped = 1;
        }
    }
    if (!rc && mapped > 0) {
        /* Understood but not storable (AE): keep the raw message as
         * rejected, without its partial facts. */
        pv_store_rollback_to(s);
        pv_alerts_rewind(pv_ingest_alerts(p), mark);
        res->facts = 0;
        rc = pv_store_savepoint(s);
        int64_t id;
        /* Under a source of its own, so that the message sent again once
         * fixed is not taken for a duplicate. */
        char rsource[600];
        snprintf(rsource, sizeof rsource, "rejected:%s", source);
        if (!rc)
            rc = pv_store_message_add(s, rsource, control, msgtype, peer, raw,
                                      len, "rejected", &id, NULL);
        if (!rc)
            rc = pv_store_message_finish(s, id, "rejected", res->text, 0, 1);
        if (rc == PV_ESTATE)
            rc = 0;
        if (!rc)
            rc = pv_store_release(s);
        else
            pv_store_rollback_to(s);
        strs_free(&c.strs);
        return rc;
    }
    if (!rc && c.skipped) {
        /* Stored and judged without the skipped segments: AA with one ERR
         * of severity W per segment (pv_hl7_ack reads text line by line),
         * the reasons kept in messages. */
        finish_warnings(&c, res->text, sizeof res->text);
        res->skipped = c.skipped;
        res->error = c.first_error;
        rc = pv_store_message_finish(s, c.message_id, "partial", c.warn,
                                     res->facts, c.skipped);
    } else if (!rc) {
        rc = pv_store_message_finish(s, c.message_id, "accepted", NULL,
                                     res->facts, 0);
    }
    if (rc) {
        pv_store_rollback_to(s);
        pv_alerts_rewind(pv_ingest_alerts(p), mark);
        strs_free(&c.strs);
        return rc;
    }
    res->ack = PV_HL7_AA;
    strs_free(&c.strs);
    return pv_store_release(s);
}
