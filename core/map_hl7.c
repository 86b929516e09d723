/* map_hl7.c: HL7 v2 messages to facts, purely (see map_hl7.h). Moved out
 * of ingest_hl7.c (issue 20 part 3): what used to be stored as it was
 * mapped is now appended to out->items in the same order, and what used to
 * be logged is returned (out->skips). */
#include "map_hl7.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "map.h"

struct ctx {
    const pv_hl7_msg *m;
    const pv_hl7_map_opts *opts;
    pv_hl7_mapped *out;
    pv_time_t msh_time;
    int has_msh_time;
    const char *patient;
    int oom; /* an allocation failed: the mapping is worthless */
};

/* Decoded strings live until pv_hl7_mapped_free. NULL in, NULL out. */
static const char *keep(struct ctx *c, char *str)
{
    pv_hl7_mapped *o = c->out;
    if (!str) {
        c->oom = 1;
        return NULL;
    }
    if (o->nstrs == o->capstrs) {
        size_t cap = o->capstrs ? o->capstrs * 2 : 32;
        char **n = realloc(o->strs, cap * sizeof *n);
        if (!n) {
            free(str);
            c->oom = 1;
            return NULL;
        }
        o->strs = n;
        o->capstrs = cap;
    }
    o->strs[o->nstrs++] = str;
    return str;
}

static const char *keep_copy(struct ctx *c, const char *s)
{
    return keep(c, strdup(s));
}

/* A new item of kind for segment seg, zeroed; NULL when out of memory. */
static pv_hl7_item *add_item(struct ctx *c, pv_hl7_item_kind kind, long seg)
{
    pv_hl7_mapped *o = c->out;
    if (o->n == o->capitems) {
        size_t cap = o->capitems ? o->capitems * 2 : 16;
        pv_hl7_item *n = realloc(o->items, cap * sizeof *n);
        if (!n) {
            c->oom = 1;
            return NULL;
        }
        o->items = n;
        o->capitems = cap;
    }
    pv_hl7_item *it = &o->items[o->n++];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->segment = (size_t)seg;
    if (kind == PV_HL7_ITEM_LAB || kind == PV_HL7_ITEM_EXPOSURE ||
        kind == PV_HL7_ITEM_EVENT)
        o->facts++;
    return it;
}

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
    return keep(c, d);
}

/* The decoded sub-component of a component, or NULL when empty. */
static const char *subval(struct ctx *c, long seg, size_t field, size_t rep,
                          size_t comp, size_t sub)
{
    pv_span sp = pv_hl7_get(c->m, (size_t)seg, field, rep, comp, sub);
    if (sp.len == 0 || pv_hl7_is_null(sp))
        return NULL;
    return keep(c, pv_hl7_decode_dup(c->m, sp));
}

/* The whole message is not storable (AE): the reason. Returns 1. */
static int reject(struct ctx *c, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reject(struct ctx *c, int error, const char *fmt, ...)
{
    c->out->reject = 1;
    c->out->error = error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->text, sizeof c->out->text, fmt, ap);
    va_end(ap);
    return 1;
}

/* Leaves one segment out of the message with a reason: the rest of the
 * message is stored and judged, the ACK is AA with an ERR of severity W
 * naming it (pv_hl7_ack), or AE when nothing usable remained. 'seg' is the
 * segment's index, 'field' the field at fault. Returns 0 (the mapping goes
 * on), or -1 when out of memory. */
static int skip_segment(struct ctx *c, long seg, size_t field, int err,
                        const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int skip_segment(struct ctx *c, long seg, size_t field, int err,
                        const char *fmt, ...)
{
    pv_hl7_mapped *o = c->out;
    if (o->nskips == o->capskips) {
        size_t cap = o->capskips ? o->capskips * 2 : 8;
        pv_hl7_skip *n = realloc(o->skips, cap * sizeof *n);
        if (!n) {
            c->oom = 1;
            return -1;
        }
        o->skips = n;
        o->capskips = cap;
    }
    pv_hl7_skip *s = &o->skips[o->nskips++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
    pv_span name = pv_hl7_segment_name(c->m, (size_t)seg);
    snprintf(s->name, sizeof s->name, "%.*s",
             (int)(name.len > 3 ? 3 : name.len), name.ptr);
    /* ERR-2 (ERL): segment id ^ its occurrence in the message ^ field. */
    for (size_t i = 0; i <= (size_t)seg; i++)
        if (pv_hl7_segment_name(c->m, i).len == name.len &&
            !memcmp(pv_hl7_segment_name(c->m, i).ptr, name.ptr, name.len))
            s->nth++;
    s->segment = (size_t)seg;
    s->field = field;
    s->line = pv_hl7_segment_line(c->m, (size_t)seg);
    s->error = err;
    return 0;
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
    const char *bad = pv_time_implausible(v, c->opts->now);
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

/* PID-3: the first identifier, or the one whose assigning authority
 * (CX.4, an HD: namespace id & universal id & its type) the configuration
 * names, by namespace id, universal id (an OID) or as a whole. */
static const char *patient_id(struct ctx *c, long pid)
{
    const char *want = c->opts->assigning_authority;
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

/* A PID: the current patient from here on (none when PID-3 is empty), and
 * a PATIENT item when there is one. */
static void map_patient(struct ctx *c, long pid)
{
    c->patient = patient_id(c, pid);
    if (!c->patient)
        return;
    const char *dob = val(c, pid, 7, 1, 1);
    char date[11] = "";
    pv_time_t t;
    if (ts(dob, &t)) {
        char iso[PV_TIME_BUFSZ];
        snprintf(date, sizeof date, "%.10s", pv_time_format(t, iso));
    }
    const char *sex = val(c, pid, 8, 1, 1);
    const char *birth = date[0] ? keep_copy(c, date) : NULL;
    pv_hl7_item *it = add_item(c, PV_HL7_ITEM_PATIENT, pid);
    if (!it)
        return;
    it->u.patient = (pv_hl7_patient){c->patient, birth, sex};
}

/* Marks earlier live results of the same patient, code, time and order
 * (OBR-3, else OBR-2: 'order'; issue 15 item 1) as replaced or wrong ('W')
 * or deleted ('D'); with 'only', just those whose status is 'only' (a
 * final replaces the preliminary, not another final). A row without an
 * order number (CSV, stored before migration 0006, no OBR) matches any
 * order; two different order numbers never match. History queries leave
 * 'D' and 'W' rows out. */
static void supersede(struct ctx *c, long seg, const pv_obs *o,
                      const char *mark, const char *only)
{
    pv_hl7_item *it = add_item(c, PV_HL7_ITEM_SUPERSEDE, seg);
    if (it)
        it->u.supersede = (pv_hl7_supersede){c->patient,      o->code, o->at,
                                             o->filler_order, mark,    only};
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

/* Returns 0 (the mapping goes on) or -1 (out of memory). */
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
    o.line = pv_hl7_segment_line(c->m, (size_t)obx);
    /* OBX-11 (table 0085), issue 15 item 1: D deletes the earlier result
     * and is not stored; W (wrong: posted to the wrong patient) retires it
     * and is stored, never judged (pv_obs_judged); C retires the earlier
     * live result whatever its status; F retires an earlier preliminary
     * (P) of the same code and time, so that one live row remains. */
    if (!strcmp(o.status, "D")) {
        supersede(c, obx, &o, "D", NULL);
        return 0;
    }
    if (!strcmp(o.status, "C") || !strcmp(o.status, "W"))
        supersede(c, obx, &o, "W", NULL);
    else if (!strcmp(o.status, "F"))
        supersede(c, obx, &o, "W", "P");
    pv_hl7_item *it = add_item(c, PV_HL7_ITEM_LAB, obx);
    if (!it)
        return -1;
    it->u.obs = o;
    return 0;
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
    for (size_t i = 0; i < n && !c->oom; i++) {
        pv_span name = pv_hl7_segment_name(c->m, i);
        if (span_eq(name, "PID")) {
            map_patient(c, (long)i);
        } else if (span_eq(name, "SPM")) {
            specimen_obx = r22;
        } else if (span_eq(name, "OBR")) {
            obr = (long)i;
            specimen_obx = 0;
        } else if (span_eq(name, "OBX") && specimen_obx) {
            continue;
        } else if (span_eq(name, "OBX")) {
            if (!c->patient)
                return reject(c, PV_HL7_ERR_REQUIRED_FIELD,
                              "OBX before any PID with a PID-3 patient "
                              "identifier");
            if (map_obx(c, (long)i, obr))
                return -1;
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
 * the segment's TQ1, orc its ORC (-1 none), rxr the RXR that follows.
 * Returns 0, 1 (reject) or -1 (out of memory). */
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
    if (!e.drug)
        return reject(c, PV_HL7_ERR_REQUIRED_FIELD, "%s-%zu drug code missing",
                      d->seg, d->code);
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
        if (!c->has_msh_time)
            return reject(c, PV_HL7_ERR_REQUIRED_FIELD, "no start time for %s",
                          e.drug);
        /* Found by fuzz_map_hl7: MSH-7 was taken unchecked (year 1000). */
        if (c->msh_time < PV_TIME_FACT_MIN)
            return skip_segment(c, seg, own, PV_HL7_ERR_DATA_TYPE,
                                "no start time given, and MSH-7 '%.40s' is "
                                "an impossible time (before 1850)",
                                val(c, 0, 7, 1, 1));
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
    e.line = pv_hl7_segment_line(c->m, (size_t)seg);
    e.placer_order = val(c, orc, 2, 1, 1);
    e.filler_order = val(c, orc, 3, 1, 1);
    /* ORC-1 XO (change order) / RO (replacement order), issue 15 item 2:
     * the new order replaces the open exposure of the order it names
     * (ORC-2/ORC-3), which ends where the new one starts; without either
     * number it names none (the store would match nothing). */
    const char *control = val(c, orc, 1, 1, 1);
    if (control && (!strcmp(control, "XO") || !strcmp(control, "RO")) &&
        (e.placer_order || e.filler_order)) {
        pv_hl7_item *it = add_item(c, PV_HL7_ITEM_END_EXPOSURE, seg);
        if (!it)
            return -1;
        it->u.end = (pv_hl7_end_exposure){c->patient, e.placer_order,
                                          e.filler_order, e.start};
    }
    pv_hl7_item *it = add_item(c, PV_HL7_ITEM_EXPOSURE, seg);
    if (!it)
        return -1;
    it->u.exposure = e;
    return 0;
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
    pv_hl7_item *it = add_item(c, PV_HL7_ITEM_END_EXPOSURE, orc);
    if (!it)
        return -1;
    it->u.end = (pv_hl7_end_exposure){c->patient, placer, filler, at};
    return 0;
}

static int map_rx_message(struct ctx *c, enum rx_kind kind)
{
    const char *segname = rx_defs[kind].seg;
    size_t n = pv_hl7_segment_count(c->m);
    long tq1 = -1, orc = -1;
    const char *control = NULL; /* ORC-1 of the current order */
    for (size_t i = 0; i < n && !c->oom; i++) {
        pv_span name = pv_hl7_segment_name(c->m, i);
        if (span_eq(name, "PID")) {
            map_patient(c, (long)i);
        } else if (span_eq(name, "ORC")) {
            tq1 = -1; /* a new order: its own timing */
            orc = (long)i;
            control = val(c, (long)i, 1, 1, 1);
        } else if (span_eq(name, "TQ1")) {
            tq1 = (long)i;
        } else if (span_eq(name, segname)) {
            if (!c->patient)
                return reject(c, PV_HL7_ERR_REQUIRED_FIELD,
                              "PID-3 patient identifier missing");
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
 * an unreadable PID-29) or -1. */
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
    if (tr < 0)
        return reject(c, PV_HL7_ERR_DATA_TYPE, "PID-29 death date/time %s",
                      why);
    if (tr > 0) {
        const char *from;
        if (pv1 >= 0 && ts(val(c, pv1, 45, 1, 1), &e.onset))
            from = "PV1-45";
        else if (ts(val(c, evn, 6, 1, 1), &e.onset))
            from = "EVN-6";
        else if (ts(val(c, evn, 2, 1, 1), &e.onset))
            from = "EVN-2";
        else if (c->has_msh_time)
            e.onset = c->msh_time, from = "MSH-7";
        else
            return reject(c, PV_HL7_ERR_REQUIRED_FIELD,
                          "no time for the death (PID-29, PV1-45, EVN, "
                          "MSH-7)");
        /* These were taken unchecked (found by fuzz_map_hl7): an
         * impossible one is refused like an impossible PID-29. */
        const char *bad = pv_time_implausible(e.onset, c->opts->now);
        if (bad) {
            char iso[PV_TIME_BUFSZ];
            return reject(c, PV_HL7_ERR_DATA_TYPE,
                          "no PID-29, and the death date/time from %s (%s) "
                          "is an impossible time (%s)",
                          from, pv_time_format(e.onset, iso), bad);
        }
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
    e.term = keep_copy(c, term);
    e.line = pv_hl7_segment_line(c->m, (size_t)pid);
    pv_hl7_item *it = add_item(c, PV_HL7_ITEM_EVENT, pid);
    if (!it)
        return -1;
    it->u.event = e;
    return 0;
}

static int map_adt(struct ctx *c)
{
    long pid = pv_hl7_find(c->m, "PID", 1);
    if (pid >= 0)
        map_patient(c, pid);
    if (pid < 0 || !c->patient)
        return reject(c, PV_HL7_ERR_REQUIRED_FIELD,
                      "PID-3 patient identifier missing");
    long evn = pv_hl7_find(c->m, "EVN", 1);
    size_t n = pv_hl7_segment_count(c->m);
    for (size_t i = 0; i < n && !c->oom; i++) {
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
        const char *from;
        if (ts(val(c, (long)i, 5, 1, 1), &e.onset))
            from = "DG1-5";
        else if (ts(val(c, evn, 2, 1, 1), &e.onset))
            from = "EVN-2";
        else if (c->has_msh_time)
            e.onset = c->msh_time, from = "MSH-7";
        else
            return reject(c, PV_HL7_ERR_REQUIRED_FIELD,
                          "no time for diagnosis %s", e.code);
        /* Plausible, as a CSV event's onset must be (map.c); these times
         * were taken unchecked (found by fuzz_map_hl7). */
        const char *bad = pv_time_implausible(e.onset, c->opts->now);
        if (bad) {
            char iso[PV_TIME_BUFSZ];
            if (skip_segment(c, (long)i, 5, PV_HL7_ERR_DATA_TYPE,
                             "onset from %s (%s) is an impossible time (%s)",
                             from, pv_time_format(e.onset, iso), bad))
                return -1;
            continue;
        }
        e.line = pv_hl7_segment_line(c->m, i);
        pv_hl7_item *it = add_item(c, PV_HL7_ITEM_EVENT, (long)i);
        if (!it)
            return -1;
        it->u.event = e;
    }
    if (c->oom)
        return -1;
    return map_death(c, pid, evn);
}

int pv_hl7_map_version_ok(pv_span v)
{
    /* 2.3 to 2.8, with or without a further level (2.5.1). */
    return v.len >= 3 && v.ptr[0] == '2' && v.ptr[1] == '.' &&
           v.ptr[2] >= '3' && v.ptr[2] <= '8' &&
           (v.len == 3 || v.ptr[3] == '.');
}

int pv_hl7_map(const pv_hl7_msg *m, const pv_hl7_map_opts *opts,
               pv_hl7_mapped *out)
{
    memset(out, 0, sizeof *out);
    struct ctx c = {.m = m, .opts = opts, .out = out};
    c.has_msh_time = ts(val(&c, 0, 7, 1, 1), &c.msh_time);
    pv_span mt = pv_hl7_msg_type(m), tr = pv_hl7_trigger(m);
    int rc = 0;
    if ((span_eq(mt, "ORU") && span_eq(tr, "R01")) ||
        (span_eq(mt, "OUL") && (span_eq(tr, "R22") || span_eq(tr, "R24"))))
        rc = map_oru(&c);
    else if (span_eq(mt, "RDE"))
        rc = map_rx_message(&c, RX_RXE);
    else if (span_eq(mt, "RAS") || span_eq(mt, "VXU"))
        rc = map_rx_message(&c, RX_RXA);
    else if (span_eq(mt, "RDS") && span_eq(tr, "O13"))
        rc = map_rx_message(&c, RX_RXD);
    else if (span_eq(mt, "RGV") && span_eq(tr, "O15"))
        rc = map_rx_message(&c, RX_RXG);
    else if (span_eq(mt, "ADT") && (span_eq(tr, "A01") || span_eq(tr, "A03") ||
                                    span_eq(tr, "A04") || span_eq(tr, "A08")))
        rc = map_adt(&c);
    /* Anything else well-formed: no facts, no error. */
    if (c.oom || rc < 0)
        return PV_ENOMEM;
    return 0;
}

void pv_hl7_mapped_free(pv_hl7_mapped *out)
{
    for (size_t i = 0; i < out->nstrs; i++)
        free(out->strs[i]);
    free(out->strs);
    free(out->items);
    free(out->skips);
    memset(out, 0, sizeof *out);
}
