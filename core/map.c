/* map.c: CSV rows to facts. See map.h. */
#include "map.h"

#include "csv_layout.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Logical columns. */
enum col {
    C_PATIENT,
    C_CODE,
    C_CODE_SYSTEM,
    C_NAME,
    C_VALUE,
    C_UNIT,
    C_TIME, /* observed_at / start / onset */
    C_END,
    C_REF_LOW,
    C_REF_HIGH,
    C_REF_RANGE,
    C_FLAG,
    C_STATUS,
    C_DRUG,
    C_DRUG_CODE,
    C_DOSE,
    C_DOSE_UNIT,
    C_ROUTE,
    C_TERM,
    C_SERIOUS,
    C_OUTCOME,
    C_BIRTH,
    C_SEX,
    C__COUNT
};

struct colname {
    enum col col;
    const char *name;
    int required;
};

struct kind_def {
    enum pv_csv_kind kind;
    const char *label;
    const char *code_system;
    const char *must_have; /* a column only this kind has, or NULL */
    struct colname cols[16];
};

/* Order matters: the first kind whose required columns are all present
 * wins, so the more specific Synthea layouts come before ours. */
static const struct kind_def kinds[] = {
    {PV_CSV_MEDICATIONS,
     "synthea medications",
     "RXNORM",
     "dispenses",
     {{C_TIME, "start", 1},
      {C_END, "stop", 0},
      {C_PATIENT, "patient", 1},
      {C_DRUG_CODE, "code", 1},
      {C_DRUG, "description", 1},
      {0, NULL, 0}}},
    {PV_CSV_EVENTS,
     "synthea conditions",
     "SNOMED",
     NULL,
     {{C_TIME, "start", 1},
      {C_END, "stop", 0},
      {C_PATIENT, "patient", 1},
      {C_CODE, "code", 1},
      {C_TERM, "description", 1},
      {0, NULL, 0}}},
    {PV_CSV_LABS,
     "synthea observations",
     "LN",
     NULL,
     {{C_TIME, "date", 1},
      {C_PATIENT, "patient", 1},
      {C_CODE, "code", 1},
      {C_NAME, "description", 0},
      {C_VALUE, "value", 1},
      {C_UNIT, "units", 1},
      {0, NULL, 0}}},
    {PV_CSV_PATIENTS,
     "synthea patients",
     NULL,
     NULL,
     {{C_PATIENT, "id", 1},
      {C_BIRTH, "birthdate", 1},
      {C_SEX, "gender", 0},
      {0, NULL, 0}}},
    {PV_CSV_LABS,
     "labs",
     "LN",
     NULL,
     {{C_PATIENT, "patient_id", 1},
      {C_CODE, "code", 1},
      {C_VALUE, "value", 1},
      {C_UNIT, "unit", 1},
      {C_TIME, "observed_at", 1},
      {C_CODE_SYSTEM, "code_system", 0},
      {C_NAME, "name", 0},
      {C_REF_LOW, "ref_low", 0},
      {C_REF_HIGH, "ref_high", 0},
      {C_REF_RANGE, "ref_range", 0},
      {C_FLAG, "flag", 0},
      {C_STATUS, "status", 0},
      {0, NULL, 0}}},
    {PV_CSV_MEDICATIONS,
     "medications",
     NULL,
     NULL,
     {{C_PATIENT, "patient_id", 1},
      {C_DRUG, "drug", 1},
      {C_TIME, "start", 1},
      {C_DRUG_CODE, "drug_code", 0},
      {C_CODE_SYSTEM, "code_system", 0},
      {C_DOSE, "dose", 0},
      {C_DOSE_UNIT, "dose_unit", 0},
      {C_ROUTE, "route", 0},
      {C_END, "end", 0},
      {0, NULL, 0}}},
    {PV_CSV_EVENTS,
     "events",
     "ICD10CM",
     NULL,
     {{C_PATIENT, "patient_id", 1},
      {C_CODE, "code", 1},
      {C_TIME, "onset", 1},
      {C_CODE_SYSTEM, "code_system", 0},
      {C_TERM, "term", 0},
      {C_SERIOUS, "serious", 0},
      {C_OUTCOME, "outcome", 0},
      {0, NULL, 0}}},
    {PV_CSV_PATIENTS,
     "patients",
     NULL,
     NULL,
     {{C_PATIENT, "patient_id", 1},
      {C_BIRTH, "birth_date", 0},
      {C_SEX, "sex", 0},
      {0, NULL, 0}}},
};

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* The header's column names, hashed (issue 22 item 11: comparing every
 * column with every other made a 210,000-column header block the loop for
 * 292 s). Open addressing over trimmed, ASCII-case-folded names; at most
 * PV_MAP_MAX_HEADER_COLS names, so the table lives on the stack and every
 * probe sequence ends (the table is never more than half full). */
#define INDEX_SLOTS (2 * PV_MAP_MAX_HEADER_COLS)

struct col_index {
    const pv_span *f;
    int slot[INDEX_SLOTS]; /* header index + 1; 0 = empty */
};

static unsigned fold(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32u : ch;
}

static size_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ fold((unsigned char)s[i])) * 16777619u;
    return h & (INDEX_SLOTS - 1);
}

/* Where name (len bytes, trimmed) is or would go. */
static int *index_slot(struct col_index *x, const char *name, size_t len)
{
    size_t h = name_hash(name, len);
    for (size_t probe = 0; probe < INDEX_SLOTS; probe++) {
        int *sl = &x->slot[(h + probe) & (INDEX_SLOTS - 1)];
        if (*sl == 0)
            return sl;
        const char *s = x->f[*sl - 1].ptr;
        size_t sl_len = x->f[*sl - 1].len;
        trim(&s, &sl_len);
        if (sl_len == len && strncasecmp(s, name, len) == 0)
            return sl;
    }
    return NULL; /* not reached: at most half the slots are used */
}

static int find_col(struct col_index *x, const char *name)
{
    int *sl = index_slot(x, name, strlen(name));
    return sl && *sl ? *sl - 1 : -1;
}

/* Kinds whose columns alone do not tell them apart: Synthea's encounters,
 * procedures, careplans, allergies ... all have START, STOP, PATIENT, CODE
 * and DESCRIPTION, like its conditions. Their header may hold only the
 * kind's own columns and these. */
static const struct {
    const char *label;
    const char *also[4];
} closed_kinds[] = {
    {"synthea conditions", {"encounter", "system", NULL}},
};

/* Whether the header fits kind d: always, unless d is a closed kind and
 * the header has a column d does not know. */
static int header_fits(const struct kind_def *d, const pv_span *f, size_t n)
{
    const char *const *also = NULL;
    for (size_t k = 0; k < sizeof closed_kinds / sizeof *closed_kinds; k++)
        if (!strcmp(closed_kinds[k].label, d->label))
            also = closed_kinds[k].also;
    if (!also)
        return 1;
    for (size_t i = 0; i < n; i++) {
        const char *s = f[i].ptr;
        size_t len = f[i].len;
        trim(&s, &len);
        int known = 0;
        for (const struct colname *c = d->cols; c->name && !known; c++)
            known = strlen(c->name) == len && !strncasecmp(s, c->name, len);
        for (int k = 0; also[k] && !known; k++)
            known = strlen(also[k]) == len && !strncasecmp(s, also[k], len);
        if (!known)
            return 0;
    }
    return 1;
}

int pv_map_csv_header(const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                      size_t errcap)
{
    memset(m, 0, sizeof *m);
    if (n > PV_MAP_MAX_HEADER_COLS) {
        snprintf(err, errcap,
                 "header has %zu columns, more than the limit of %d; the "
                 "file is rejected",
                 n, PV_MAP_MAX_HEADER_COLS);
        return PV_EINVAL;
    }
    /* Names are compared as find_col() sees them: blanks trimmed, case
     * folded. One pass: each name is looked up, then added. */
    struct col_index x; /* 8 KiB */
    x.f = fields;
    memset(x.slot, 0, sizeof x.slot);
    for (size_t i = 0; i < n; i++) {
        const char *a = fields[i].ptr;
        size_t alen = fields[i].len;
        trim(&a, &alen);
        if (!alen)
            continue;
        int *sl = index_slot(&x, a, alen);
        if (sl && *sl) {
            snprintf(err, errcap, "column '%.*s' appears twice", (int)alen, a);
            return PV_EINVAL;
        }
        if (sl)
            *sl = (int)i + 1;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const struct kind_def *d = &kinds[k];
        if (d->must_have && find_col(&x, d->must_have) < 0)
            continue;
        int ok = 1;
        for (int c = 0; c < PV_MAP_MAXCOLS; c++)
            m->col[c] = -1;
        for (const struct colname *c = d->cols; c->name && ok; c++) {
            int i = find_col(&x, c->name);
            if (i < 0 && c->required)
                ok = 0;
            m->col[c->col] = i;
        }
        if (!ok || !header_fits(d, fields, n))
            continue;
        /* patient_id and nothing else we know is a broken feed of another
         * kind (a labs file without its unit column), not a patients
         * file whose rows would all be taken for patients. */
        if (d->kind == PV_CSV_PATIENTS && m->col[C_BIRTH] < 0 &&
            m->col[C_SEX] < 0)
            continue;
        m->kind = d->kind;
        m->name = d->label;
        m->ncols = n;
        m->code_system = d->code_system;
        return 0;
    }
    snprintf(err, errcap,
             "header not recognised: labs need patient_id, code, value, "
             "unit, observed_at; medications need patient_id, drug, start; "
             "events need patient_id, code, onset (or a Synthea "
             "observations, medications, conditions or patients header)");
    return PV_EINVAL;
}

int pv_map_number(const char *s, size_t len, double *out)
{
    trim(&s, &len);
    if (len == 0 || len > 63)
        return PV_EINVAL;
    char buf[64];
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* strtod would accept hex, inf and nan; lab values are decimal. */
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' ||
              c == 'e' || c == 'E'))
            return PV_EINVAL;
    }
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v))
        return PV_EINVAL;
    *out = v;
    return 0;
}

/* Copies every field, NUL-terminated, into scratch and returns pointers
 * (NULL for empty fields, after trimming). */
static int copy_fields(const pv_span *f, size_t n, pv_buf *scratch,
                       const char **out)
{
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += f[i].len + 1;
    pv_buf_reset(scratch);
    /* Reserve once, so that the pointers handed out stay valid. */
    pv_buf_append(scratch, "", 0);
    if (scratch->cap < need + 1) {
        pv_buf_free(scratch);
        char *p = malloc(need + 1);
        if (!p)
            return PV_ENOMEM;
        scratch->ptr = p;
        scratch->cap = need + 1;
        scratch->len = 0;
    }
    char *w = scratch->ptr;
    for (size_t i = 0; i < n; i++) {
        const char *s = f[i].ptr;
        size_t len = f[i].len;
        trim(&s, &len);
        if (len == 0) {
            out[i] = NULL;
            continue;
        }
        memcpy(w, s, len);
        w[len] = '\0';
        out[i] = w;
        w += len + 1;
    }
    scratch->len = (size_t)(w - scratch->ptr);
    return 0;
}

static const char *get(const pv_csv_map *m, const char **v, enum col c)
{
    return m->col[c] >= 0 ? v[m->col[c]] : NULL;
}

static int want_time(const pv_csv_map *m, const char **v, enum col c,
                     const char *label, int required, pv_time_t *t, int *has,
                     char *err, size_t errcap)
{
    int is_start = !strcmp(label, "start");
    const char *s = get(m, v, c);
    if (has)
        *has = 0;
    if (m->header_label[c])
        label = m->header_label[c];
    if (!s) {
        if (!required)
            return 0;
        snprintf(err, errcap, "%s is empty", label);
        return PV_EINVAL;
    }
    if (m->time_format) {
        /* A configured layout's format (issue 15 item 11). */
        if (pv_layout_parse_time(m->time_format, s, t) != 0) {
            snprintf(err, errcap, "%s '%.40s' does not match time_format '%s'",
                     label, s, m->time_format);
            return PV_EINVAL;
        }
    } else if (pv_time_parse(s, strlen(s), t) != 0) {
        snprintf(err, errcap,
                 "%s '%.40s' is not a valid time (ISO 8601 or HL7 TS)", label,
                 s);
        return PV_EINVAL;
    }
    /* Issue 22 item 15: no fact before 1850, and no result or event
     * dated past tomorrow (it would be the "latest" for ever); an
     * exposure's start or end may be planned ahead. The wall clock, not a
     * test's fixed one, bounds the future (see pv_time_implausible). */
    const char *bad = pv_time_implausible(
        *t, c == C_TIME && !is_start ? (pv_time_t)time(NULL) : INT64_MAX);
    if (bad) {
        snprintf(err, errcap, "%s '%.40s' is an impossible time (%s)", label, s,
                 bad);
        return PV_EINVAL;
    }
    if (has)
        *has = 1;
    return 0;
}

static int want_num(const char *s, const char *label, double *out, int *has,
                    char *err, size_t errcap)
{
    *has = 0;
    if (!s)
        return 0;
    if (pv_map_number(s, strlen(s), out)) {
        snprintf(err, errcap, "%s '%.40s' is not a number", label, s);
        return PV_EINVAL;
    }
    *has = 1;
    return 0;
}

/* A column's name in messages: the configured header, else ours. */
#define LBL(m, c, ours) ((m)->header_label[c] ? (m)->header_label[c] : (ours))

static int required(const char *s, const char *label, char *err, size_t errcap)
{
    if (s)
        return 0;
    snprintf(err, errcap, "%s is empty", label);
    return PV_EINVAL;
}

/* "3.5-7.0", "<5", ">40" */
static int parse_range(const char *s, pv_obs *o, char *err, size_t errcap);

int pv_map_ref_range(const char *s, pv_obs *o)
{
    char err[128];
    return parse_range(s, o, err, sizeof err);
}

static int parse_range(const char *s, pv_obs *o, char *err, size_t errcap)
{
    size_t len = strlen(s);
    if (s[0] == '<' || s[0] == '>') {
        size_t skip = s[1] == '=' ? 2 : 1;
        double v;
        if (pv_map_number(s + skip, len - skip, &v) == 0) {
            if (s[0] == '<') {
                o->has_high = 1;
                o->ref_high = v;
            } else {
                o->has_low = 1;
                o->ref_low = v;
            }
            return 0;
        }
    } else {
        /* The separating dash is the first one after a digit, so a
         * negative low bound still parses. */
        for (size_t i = 1; i < len; i++) {
            if (s[i] == '-' && s[i - 1] >= '0' && s[i - 1] <= '9') {
                double lo, hi;
                if (pv_map_number(s, i, &lo) == 0 &&
                    pv_map_number(s + i + 1, len - i - 1, &hi) == 0) {
                    o->has_low = o->has_high = 1;
                    o->ref_low = lo;
                    o->ref_high = hi;
                    return 0;
                }
                break;
            }
        }
    }
    snprintf(err, errcap,
             "ref_range '%.40s' is not 'low-high', '<high' or "
             "'>low'",
             s);
    return PV_EINVAL;
}

static int parse_serious(const char *s, int *out, char *err, size_t errcap)
{
    static const char *const yes[] = {"1", "y", "yes", "true", NULL};
    static const char *const no[] = {"0", "n", "no", "false", NULL};
    *out = -1;
    if (!s)
        return 0;
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    snprintf(err, errcap, "serious '%.20s' is not yes/no/true/false/1/0", s);
    return PV_EINVAL;
}

static int map_lab(const pv_csv_map *m, const char **v, pv_row *row, char *err,
                   size_t errcap)
{
    pv_obs *o = &row->obs;
    o->patient_id = get(m, v, C_PATIENT);
    o->code = get(m, v, C_CODE);
    if (required(o->patient_id, LBL(m, C_PATIENT, "patient_id"), err, errcap) ||
        required(o->code, LBL(m, C_CODE, "code"), err, errcap))
        return PV_EINVAL;
    const char *time_label = m->col[C_TIME] >= 0 && strcmp(m->name, "labs") == 0
                                 ? "observed_at"
                                 : "DATE";
    if (want_time(m, v, C_TIME, time_label, 1, &o->at, NULL, err, errcap))
        return PV_EINVAL;
    o->code_system = get(m, v, C_CODE_SYSTEM);
    if (!o->code_system)
        o->code_system = m->code_system;
    o->name = get(m, v, C_NAME);
    o->unit = get(m, v, C_UNIT);
    o->flag = get(m, v, C_FLAG);
    o->status = get(m, v, C_STATUS);
    const char *val = get(m, v, C_VALUE);
    if (required(val, LBL(m, C_VALUE, "value"), err, errcap))
        return PV_EINVAL;
    o->value_text = val;
    /* A non-numeric value is kept as text, not rejected; a comparator
     * ("<0.5") keeps its number. */
    const char *num = val;
    if (val[0] == '<' || val[0] == '>') {
        size_t skip = val[1] == '=' ? 2 : 1;
        static const char *const cmp[] = {"<", "<=", ">", ">="};
        o->comparator = cmp[(val[0] == '>') * 2 + (skip == 2)];
        num = val + skip;
    }
    if (pv_map_number(num, strlen(num), &o->value_num) == 0)
        o->has_num = 1;
    else
        o->comparator = NULL;
    if (want_num(get(m, v, C_REF_LOW), "ref_low", &o->ref_low, &o->has_low, err,
                 errcap) ||
        want_num(get(m, v, C_REF_HIGH), "ref_high", &o->ref_high, &o->has_high,
                 err, errcap))
        return PV_EINVAL;
    const char *range = get(m, v, C_REF_RANGE);
    if (range && !o->has_low && !o->has_high &&
        parse_range(range, o, err, errcap))
        return PV_EINVAL;
    if (o->status && strlen(o->status) > 2) {
        snprintf(err, errcap,
                 "status '%.20s' is not an HL7 result status "
                 "(F, C, P, D, ...)",
                 o->status);
        return PV_EINVAL;
    }
    row->patient_id = o->patient_id;
    return 0;
}

static int map_med(const pv_csv_map *m, const char **v, pv_row *row, char *err,
                   size_t errcap)
{
    pv_exposure *e = &row->exp;
    e->patient_id = get(m, v, C_PATIENT);
    e->drug = get(m, v, C_DRUG);
    /* A medication given only as a code (issue 21): the code stands for
     * the drug text, as an HL7 CE without text does (ingest_hl7.c). */
    if (!e->drug)
        e->drug = get(m, v, C_DRUG_CODE);
    if (required(e->patient_id, LBL(m, C_PATIENT, "patient_id"), err, errcap) ||
        required(e->drug, LBL(m, C_DRUG, "drug"), err, errcap))
        return PV_EINVAL;
    if (want_time(m, v, C_TIME, "start", 1, &e->start, NULL, err, errcap) ||
        want_time(m, v, C_END, "end", 0, &e->end, &e->has_end, err, errcap))
        return PV_EINVAL;
    if (e->has_end && e->end < e->start) {
        snprintf(err, errcap, "end is before start");
        return PV_EINVAL;
    }
    e->drug_code = get(m, v, C_DRUG_CODE);
    e->code_system = get(m, v, C_CODE_SYSTEM);
    if (!e->code_system)
        e->code_system = m->code_system;
    if (want_num(get(m, v, C_DOSE), "dose", &e->dose, &e->has_dose, err,
                 errcap))
        return PV_EINVAL;
    e->dose_unit = get(m, v, C_DOSE_UNIT);
    e->route = get(m, v, C_ROUTE);
    e->start_source = "csv"; /* the file's start column (issue 15 item 3) */
    row->patient_id = e->patient_id;
    return 0;
}

static int map_event(const pv_csv_map *m, const char **v, pv_row *row,
                     char *err, size_t errcap)
{
    pv_event *e = &row->ev;
    e->patient_id = get(m, v, C_PATIENT);
    e->code = get(m, v, C_CODE);
    if (required(e->patient_id, LBL(m, C_PATIENT, "patient_id"), err, errcap) ||
        required(e->code, LBL(m, C_CODE, "code"), err, errcap))
        return PV_EINVAL;
    if (want_time(m, v, C_TIME, "onset", 1, &e->onset, NULL, err, errcap))
        return PV_EINVAL;
    e->code_system = get(m, v, C_CODE_SYSTEM);
    if (!e->code_system)
        e->code_system = m->code_system;
    e->term = get(m, v, C_TERM);
    e->outcome = get(m, v, C_OUTCOME);
    if (parse_serious(get(m, v, C_SERIOUS), &e->serious, err, errcap))
        return PV_EINVAL;
    row->patient_id = e->patient_id;
    return 0;
}

static int map_patient(const pv_csv_map *m, const char **v, pv_row *row,
                       char *err, size_t errcap)
{
    row->patient_id = get(m, v, C_PATIENT);
    if (required(row->patient_id, LBL(m, C_PATIENT, "patient_id"), err, errcap))
        return PV_EINVAL;
    const char *b = get(m, v, C_BIRTH);
    pv_time_t t;
    if (b && pv_time_parse(b, strlen(b), &t) != 0) {
        snprintf(err, errcap, "birth_date '%.40s' is not a valid date", b);
        return PV_EINVAL;
    }
    row->birth_date = b;
    row->sex = get(m, v, C_SEX);
    return 0;
}

int pv_map_csv_row(const pv_csv_map *m, const pv_span *fields, size_t n,
                   long line, pv_row *row, pv_buf *scratch, char *err,
                   size_t errcap)
{
    memset(row, 0, sizeof *row);
    row->kind = m->kind;
    if (n != m->ncols) {
        snprintf(err, errcap, "%zu field%s, the header has %zu", n,
                 n == 1 ? "" : "s", m->ncols);
        return PV_EINVAL;
    }
    /* A NUL byte would cut the field short when it is copied as a C
     * string, and store something else than what was sent. */
    for (size_t i = 0; i < n; i++)
        if (fields[i].len && memchr(fields[i].ptr, '\0', fields[i].len)) {
            snprintf(err, errcap, "NUL byte in field %zu", i + 1);
            return PV_EINVAL;
        }
    /* n == m->ncols, which the header check bounded. */
    const char *v[PV_MAP_MAX_HEADER_COLS];
    if (n > sizeof v / sizeof v[0]) {
        snprintf(err, errcap, "more than %zu columns", sizeof v / sizeof *v);
        return PV_EINVAL;
    }
    if (copy_fields(fields, n, scratch, v)) {
        snprintf(err, errcap, "out of memory");
        return PV_ENOMEM;
    }
    if (m->omop)
        return pv_omop_row(m, v, n, line, row, err, errcap);
    int rc;
    switch (m->kind) {
    case PV_CSV_LABS:
        rc = map_lab(m, v, row, err, errcap);
        row->obs.line = line;
        break;
    case PV_CSV_MEDICATIONS:
        rc = map_med(m, v, row, err, errcap);
        row->exp.line = line;
        break;
    case PV_CSV_EVENTS:
        rc = map_event(m, v, row, err, errcap);
        row->ev.line = line;
        break;
    default:
        rc = map_patient(m, v, row, err, errcap);
        break;
    }
    return rc;
}

/* Issue 15 item 11: configured layouts rename the columns of a built-in
 * kind. */
static const struct kind_def *builtin_kind(const char *kind)
{
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (!strncmp(kinds[k].label, "synthea", 7))
            continue;
        else if (!strcmp(kinds[k].label, kind))
            return &kinds[k];
    return NULL;
}

const char *pv_map_builtin(size_t k, const char **req, size_t max)
{
    if (k >= sizeof kinds / sizeof kinds[0])
        return NULL;
    size_t r = 0;
    for (const struct colname *c = kinds[k].cols; c->name; c++)
        if (c->required && r + 1 < max)
            req[r++] = c->name;
    if (max)
        req[r] = NULL;
    return kinds[k].label;
}

int pv_map_csv_mapped(const char *kind, const char *const *keys,
                      const char *const *heads, size_t nkeys,
                      const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                      size_t errcap)
{
    const struct kind_def *d = builtin_kind(kind);
    if (!d) {
        snprintf(err, errcap,
                 "kind '%.40s' is not labs, medications, events or patients",
                 kind);
        return PV_EINVAL;
    }
    for (size_t i = 0; i < nkeys; i++) {
        int known = 0;
        for (const struct colname *c = d->cols; c->name && !known; c++)
            known = !strcmp(c->name, keys[i]);
        if (!known) {
            char names[400] = "";
            for (const struct colname *c = d->cols; c->name; c++)
                snprintf(names + strlen(names), sizeof names - strlen(names),
                         "%s%s", names[0] ? ", " : "", c->name);
            snprintf(err, errcap,
                     "unknown column key '%.40s' for kind %s (known: %s)",
                     keys[i], kind, names);
            return PV_EINVAL;
        }
    }
    for (const struct colname *c = d->cols; c->name; c++) {
        if (!c->required)
            continue;
        size_t i = 0;
        while (i < nkeys && strcmp(keys[i], c->name))
            i++;
        if (i == nkeys) {
            snprintf(err, errcap, "columns lack '%s', which kind %s requires",
                     c->name, kind);
            return PV_EINVAL;
        }
    }
    if (!fields)
        return 0;
    memset(m, 0, sizeof *m);
    for (int c = 0; c < PV_MAP_MAXCOLS; c++)
        m->col[c] = -1;
    for (size_t i = 0; i < nkeys; i++) {
        const struct colname *c = d->cols;
        while (strcmp(c->name, keys[i]))
            c++;
        int at = -1;
        for (size_t j = 0; j < n && at < 0; j++) {
            const char *s = fields[j].ptr;
            size_t len = fields[j].len;
            trim(&s, &len);
            if (len == strlen(heads[i]) && !strncasecmp(s, heads[i], len))
                at = (int)j;
        }
        if (at < 0 && c->required) {
            snprintf(err, errcap, "header has no column '%.60s' (%s)", heads[i],
                     keys[i]);
            return PV_EINVAL;
        }
        m->col[c->col] = at;
        m->header_label[c->col] = heads[i];
    }
    m->kind = d->kind;
    m->name = d->label;
    m->ncols = n;
    m->code_system = d->code_system;
    return 0;
}
