/* csv_layout.c: configured and OMOP CDM layouts. See csv_layout.h.
 *
 * OMOP CDM v5.4 column names and types: OHDSI CommonDataModel
 * (https://ohdsi.github.io/CommonDataModel/cdm54.html); the measurement
 * field list was checked against the HL7 FHIR-to-OMOP IG's Measurement
 * logical model. docs/feeds.md lists what each column becomes. */
#define _XOPEN_SOURCE 700 /* strptime */
#include "csv_layout.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- OMOP tables ---------------------------------------------------- */

enum pv_omop_table {
    T_PERSON,
    T_MEASUREMENT,
    T_DRUG,
    T_CONDITION,
    T_DEATH,
    T_OBSPERIOD,
};

struct omop_def {
    enum pv_omop_table t;
    const char *label;
    enum pv_csv_kind kind;
    int nreq; /* the first nreq columns must be in the header */
    const char *cols[PV_MAP_MAXCOLS];
};

/* Column indexes below are positions in cols[]. */
enum { P_ID, P_GENDER, P_YEAR, P_MONTH, P_DAY, P_BIRTH_DT, P_GENDER_SRC };
enum {
    M_ID,
    M_PERSON,
    M_CONCEPT,
    M_DATE,
    M_DATETIME,
    M_OPERATOR,
    M_VALUE_NUM,
    M_VALUE_CONCEPT,
    M_UNIT_CONCEPT,
    M_RANGE_LOW,
    M_RANGE_HIGH,
    M_SOURCE,
    M_UNIT_SOURCE,
    M_VALUE_SOURCE,
};
enum {
    D_ID,
    D_PERSON,
    D_CONCEPT,
    D_START,
    D_START_DT,
    D_END,
    D_END_DT,
    D_VERBATIM_END,
    D_ROUTE_SRC,
    D_SOURCE,
    D_DOSE_UNIT_SRC,
};
enum { C_ID, C_PERSON, C_CONCEPT, C_START, C_START_DT, C_SOURCE };
enum { X_PERSON, X_DATE, X_DATETIME, X_CAUSE, X_CAUSE_SRC };
enum { O_ID, O_PERSON, O_START, O_END };

static const struct omop_def omop[] = {
    {T_MEASUREMENT,
     "omop measurement",
     PV_CSV_LABS,
     4,
     {"measurement_id", "person_id", "measurement_concept_id",
      "measurement_date", "measurement_datetime", "operator_concept_id",
      "value_as_number", "value_as_concept_id", "unit_concept_id", "range_low",
      "range_high", "measurement_source_value", "unit_source_value",
      "value_source_value", NULL}},
    {T_DRUG,
     "omop drug_exposure",
     PV_CSV_MEDICATIONS,
     4,
     {"drug_exposure_id", "person_id", "drug_concept_id",
      "drug_exposure_start_date", "drug_exposure_start_datetime",
      "drug_exposure_end_date", "drug_exposure_end_datetime",
      "verbatim_end_date", "route_source_value", "drug_source_value",
      "dose_unit_source_value", NULL}},
    {T_CONDITION,
     "omop condition_occurrence",
     PV_CSV_EVENTS,
     4,
     {"condition_occurrence_id", "person_id", "condition_concept_id",
      "condition_start_date", "condition_start_datetime",
      "condition_source_value", NULL}},
    {T_OBSPERIOD,
     "omop observation_period",
     PV_CSV_PATIENTS,
     4,
     {"observation_period_id", "person_id", "observation_period_start_date",
      "observation_period_end_date", NULL}},
    {T_PERSON,
     "omop person",
     PV_CSV_PATIENTS,
     3,
     {"person_id", "gender_concept_id", "year_of_birth", "month_of_birth",
      "day_of_birth", "birth_datetime", "gender_source_value", NULL}},
    {T_DEATH,
     "omop death",
     PV_CSV_EVENTS,
     2,
     {"person_id", "death_date", "death_datetime", "cause_concept_id",
      "cause_source_value", NULL}},
};
#define NOMOP (sizeof omop / sizeof omop[0])

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static int find(const pv_span *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = f[i].ptr;
        size_t len = f[i].len;
        trim(&s, &len);
        if (len == strlen(name) && !strncasecmp(s, name, len))
            return (int)i;
    }
    return -1;
}

static int omop_header(const pv_span *f, size_t n, pv_csv_map *m)
{
    for (size_t k = 0; k < NOMOP; k++) {
        const struct omop_def *d = &omop[k];
        int ok = 1;
        for (int c = 0; c < d->nreq && ok; c++)
            ok = find(f, n, d->cols[c]) >= 0;
        if (!ok)
            continue;
        memset(m, 0, sizeof *m);
        for (int c = 0; c < PV_MAP_MAXCOLS; c++)
            m->col[c] = m->omop_col[c] = -1;
        for (int c = 0; d->cols[c]; c++)
            m->omop_col[c] = find(f, n, d->cols[c]);
        m->kind = d->kind;
        m->name = d->label;
        m->ncols = n;
        m->omop = (int)k + 1;
        return 0;
    }
    return PV_EINVAL;
}

/* ---- configured layouts --------------------------------------------- */

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p ? p : "";
}

static const pv_csv_layout_cfg *configured(const pv_config *cfg,
                                           const char *fname)
{
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < cfg->csv.nlayouts; i++)
        if (fnmatch(cfg->csv.layouts[i].match, base_name(fname), 0) == 0)
            return &cfg->csv.layouts[i];
    return NULL;
}

static int mapped_header(const pv_csv_layout_cfg *l, const pv_span *f, size_t n,
                         pv_csv_map *m, char *err, size_t errcap)
{
    char why[400];
    int rc = pv_map_csv_mapped(l->kind, (const char *const *)l->keys.items,
                               (const char *const *)l->heads.items,
                               l->keys.count, f, n, m, why, sizeof why);
    if (rc) {
        snprintf(err, errcap, "csv layout '%s': %s", l->match, why);
        return rc;
    }
    m->time_format = l->time_format;
    return 0;
}

int pv_layout_header(const pv_config *cfg, const char *fname,
                     const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                     size_t errcap)
{
    if (n > PV_MAP_MAX_HEADER_COLS)
        return pv_map_csv_header(fields, n, m, err, errcap);
    const pv_csv_layout_cfg *l = configured(cfg, fname);
    if (l)
        return mapped_header(l, fields, n, m, err, errcap);
    /* The built-in check first: it rejects a column given twice. */
    int rc = pv_map_csv_header(fields, n, m, err, errcap);
    if (rc == 0 || strncmp(err, "header not recognised", 21))
        return rc;
    if (omop_header(fields, n, m) == 0)
        return 0;
    size_t len = strlen(err);
    snprintf(err + len, errcap > len ? errcap - len : 0,
             "; nor an OMOP CDM person, measurement, drug_exposure, "
             "condition_occurrence, death or observation_period table");
    return PV_EINVAL;
}

/* ---- explain -------------------------------------------------------- */

static int lev(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > 64 || lb > 64)
        return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int ca =
                a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? a[i - 1] + 32 : a[i - 1];
            int cb =
                b[j - 1] >= 'A' && b[j - 1] <= 'Z' ? b[j - 1] + 32 : b[j - 1];
            int best = prev + (ca != cb);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* Lowercase, with ' ', '_', '-' and '.' dropped. */
static size_t squash(const char *s, size_t len, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < len && w + 1 < cap; i++) {
        char c = s[i];
        if (c == ' ' || c == '_' || c == '-' || c == '.')
            continue;
        out[w++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    out[w] = '\0';
    return w;
}

/* Lists the required names the header lacks, each with near matches. */
static void missing(pv_buf *out, const char *label, const char *const *req,
                    const pv_span *f, size_t n)
{
    int any = 0;
    for (int r = 0; req[r]; r++) {
        if (find(f, n, req[r]) >= 0)
            continue;
        if (!any)
            pv_buf_printf(out, "  %s: missing", label);
        pv_buf_printf(out, "%s '%s'", any ? "," : "", req[r]);
        any = 1;
        char want[128], have[128];
        size_t lw = squash(req[r], strlen(req[r]), want, sizeof want);
        int near = 0;
        for (size_t i = 0; i < n && i < PV_MAP_MAX_HEADER_COLS; i++) {
            const char *s = f[i].ptr;
            size_t len = f[i].len;
            trim(&s, &len);
            size_t lh = squash(s, len, have, sizeof have);
            int close = lh && ((lh == lw && !memcmp(have, want, lw)) ||
                               lev(have, lh, want, lw) <= 2 ||
                               lev(s, len, req[r], strlen(req[r])) <= 2);
            if (!close)
                continue;
            pv_buf_printf(out, "%s'%.*s'", near ? ", " : " (near: ", (int)len,
                          s);
            near = 1;
        }
        if (near)
            pv_buf_puts(out, ")");
    }
    if (any)
        pv_buf_puts(out, "\n");
}

int pv_layout_explain(const pv_config *cfg, const char *fname,
                      const pv_span *fields, size_t n, pv_buf *out)
{
    pv_csv_map m;
    char err[1024];
    const pv_csv_layout_cfg *l = configured(cfg, fname);
    int rc = pv_layout_header(cfg, fname, fields, n, &m, err, sizeof err);
    if (rc == 0) {
        if (l)
            pv_buf_printf(out,
                          "%s: configured layout csv.layouts match = '%s' "
                          "(kind %s%s%s)\n",
                          fname, l->match, l->kind,
                          l->time_format ? ", time_format " : "",
                          l->time_format ? l->time_format : "");
        else if (m.omop)
            pv_buf_printf(out, "%s: OMOP CDM v5.4 table %s\n", fname,
                          m.name + 5);
        else
            pv_buf_printf(out, "%s: built-in layout '%s'\n", fname, m.name);
        return 0;
    }
    pv_buf_printf(out, "%s: no layout matched: %s\n", fname, err);
    if (l) {
        /* The configured headers the file lacks. */
        const char *req[PV_MAP_MAXCOLS + 1];
        size_t r = 0;
        for (size_t i = 0; i < l->heads.count && r < PV_MAP_MAXCOLS; i++)
            req[r++] = l->heads.items[i];
        req[r] = NULL;
        char label[160];
        snprintf(label, sizeof label, "layout '%s'", l->match);
        missing(out, label, req, fields, n);
        return PV_EINVAL;
    }
    const char *req[PV_MAP_MAXCOLS + 1];
    const char *label;
    for (size_t k = 0; (label = pv_map_builtin(k, req, PV_MAP_MAXCOLS + 1));
         k++)
        missing(out, label, req, fields, n);
    for (size_t k = 0; k < NOMOP; k++) {
        int r = 0;
        for (; r < omop[k].nreq; r++)
            req[r] = omop[k].cols[r];
        req[r] = NULL;
        missing(out, omop[k].label, req, fields, n);
    }
    return PV_EINVAL;
}

/* ---- OMOP rows ------------------------------------------------------ */

static const char *col(const pv_csv_map *m, const char **v, size_t n, int c)
{
    int i = m->omop_col[c];
    return i >= 0 && (size_t)i < n ? v[i] : NULL;
}

static int integer(const char *s, long long *out)
{
    if (!s)
        return PV_EINVAL;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end)
        return PV_EINVAL;
    *out = x;
    return 0;
}

/* A concept id column: absent or 0 gives 0; not an integer is an error. */
static int concept(const struct omop_def *d, const pv_csv_map *m,
                   const char **v, size_t n, int c, long long *out, char *err,
                   size_t errcap)
{
    const char *s = col(m, v, n, c);
    *out = 0;
    if (s && integer(s, out)) {
        snprintf(err, errcap, "%s '%.40s' is not an integer concept id",
                 d->cols[c], s);
        return PV_EINVAL;
    }
    return 0;
}

static int person(const struct omop_def *d, const pv_csv_map *m, const char **v,
                  size_t n, int c, const char **out, char *err, size_t errcap)
{
    const char *s = col(m, v, n, c);
    long long id;
    if (!s) {
        snprintf(err, errcap, "%s is empty", d->cols[c]);
        return PV_EINVAL;
    }
    if (integer(s, &id)) {
        snprintf(err, errcap, "%s '%.40s' is not an integer", d->cols[c], s);
        return PV_EINVAL;
    }
    *out = s;
    return 0;
}

/* The datetime column if given, else the date column (then midnight UTC,
 * or the day's last second when end_of_day). 'future' bounds it (results
 * and events: the wall clock; exposures: none). */
static int when(const struct omop_def *d, const pv_csv_map *m, const char **v,
                size_t n, int c_date, int c_dt, int need, int end_of_day,
                int future, pv_time_t *t, int *has, char *err, size_t errcap)
{
    int c = c_dt >= 0 && col(m, v, n, c_dt) ? c_dt : c_date;
    const char *s = col(m, v, n, c);
    if (has)
        *has = 0;
    if (!s) {
        if (!need)
            return 0;
        snprintf(err, errcap, "%s is empty", d->cols[c_date]);
        return PV_EINVAL;
    }
    if (pv_time_parse(s, strlen(s), t)) {
        snprintf(err, errcap, "%s '%.40s' is not a valid date or datetime",
                 d->cols[c], s);
        return PV_EINVAL;
    }
    if (c == c_date && end_of_day && strlen(s) <= 10)
        *t += 86399;
    const char *bad =
        pv_time_implausible(*t, future ? (pv_time_t)time(NULL) : INT64_MAX);
    if (bad) {
        snprintf(err, errcap, "%s '%.40s' is an impossible time (%s)",
                 d->cols[c], s, bad);
        return PV_EINVAL;
    }
    if (has)
        *has = 1;
    return 0;
}

/* nnnnn-n: the shape of a LOINC code. */
static int looks_loinc(const char *s)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    return i >= 1 && i <= 7 && s[i] == '-' && s[i + 1] >= '0' &&
           s[i + 1] <= '9' && !s[i + 2];
}

/* A letter, two digits, then optionally '.' and up to four characters. */
static int looks_icd10(const char *s)
{
    size_t len = strlen(s);
    if (len < 3 || len > 8 || !((s[0] >= 'A' && s[0] <= 'Z')) ||
        !(s[1] >= '0' && s[1] <= '9') ||
        !((s[2] >= '0' && s[2] <= '9') || s[2] == 'A' || s[2] == 'B'))
        return 0;
    for (size_t i = 3; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] == '.' && i == 3)))
            return 0;
    return 1;
}

static int all_digits(const char *s, size_t *len)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    *len = i;
    return i > 0 && !s[i];
}

/* NDC: 10 or 11 digits, or 4-4-2 / 5-3-2 / 5-4-1 / 5-4-2 with dashes. */
static int looks_ndc(const char *s)
{
    size_t len, digits = 0, dashes = 0;
    if (all_digits(s, &len))
        return len == 10 || len == 11;
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '-')
            dashes++;
        else
            return 0;
    }
    return dashes == 2 && (digits == 10 || digits == 11);
}

static const char *concept_text(pv_row *row, int slot, const char *what,
                                long long id)
{
    snprintf(row->text[slot], sizeof row->text[slot], "%s %lld", what, id);
    return row->text[slot];
}

static int omop_measurement(const struct omop_def *d, const pv_csv_map *m,
                            const char **v, size_t n, pv_row *row, char *err,
                            size_t errcap)
{
    pv_obs *o = &row->obs;
    long long cid, op, vcid, ucid;
    if (person(d, m, v, n, M_PERSON, &o->patient_id, err, errcap) ||
        concept(d, m, v, n, M_CONCEPT, &cid, err, errcap) ||
        concept(d, m, v, n, M_OPERATOR, &op, err, errcap) ||
        concept(d, m, v, n, M_VALUE_CONCEPT, &vcid, err, errcap) ||
        concept(d, m, v, n, M_UNIT_CONCEPT, &ucid, err, errcap) ||
        when(d, m, v, n, M_DATE, M_DATETIME, 1, 0, 1, &o->at, NULL, err,
             errcap))
        return PV_EINVAL;
    /* The code: a LOINC source value; else the concept id (code system
     * OMOP); else the source value as a local code. */
    const char *src = col(m, v, n, M_SOURCE);
    if (src && looks_loinc(src)) {
        o->code = src;
        o->code_system = "LN";
        if (cid)
            o->name = concept_text(row, 0, "OMOP concept", cid);
    } else if (cid) {
        o->code = concept_text(row, 0, "", cid) + 1;
        o->code_system = "OMOP";
        o->name = src;
    } else if (src) {
        o->code = src;
        o->code_system = "LOCAL";
    } else {
        snprintf(err, errcap,
                 "measurement_concept_id is 0 and "
                 "measurement_source_value is empty: no code");
        return PV_EINVAL;
    }
    const char *num = col(m, v, n, M_VALUE_NUM);
    const char *vsrc = col(m, v, n, M_VALUE_SOURCE);
    if (num) {
        if (pv_map_number(num, strlen(num), &o->value_num)) {
            snprintf(err, errcap, "value_as_number '%.40s' is not a number",
                     num);
            return PV_EINVAL;
        }
        o->has_num = 1;
        o->value_text = num;
        /* OMOP operator concepts (CDM "operator_concept_id"). */
        static const struct {
            long long id;
            const char *op;
        } ops[] = {
            {4171756, "<"}, {4171754, "<="}, {4172704, ">"}, {4171755, ">="}};
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
            if (ops[i].id == op)
                o->comparator = ops[i].op;
    } else if (vsrc) {
        o->value_text = vsrc;
    } else if (vcid) {
        o->value_text = concept_text(row, 1, "OMOP concept", vcid);
    } else {
        snprintf(err, errcap,
                 "no value: value_as_number, value_as_concept_id "
                 "and value_source_value are empty");
        return PV_EINVAL;
    }
    o->unit = col(m, v, n, M_UNIT_SOURCE);
    if (!o->unit && ucid)
        o->unit = concept_text(row, 2, "OMOP concept", ucid);
    const char *lo = col(m, v, n, M_RANGE_LOW),
               *hi = col(m, v, n, M_RANGE_HIGH);
    if (lo && pv_map_number(lo, strlen(lo), &o->ref_low)) {
        snprintf(err, errcap, "range_low '%.40s' is not a number", lo);
        return PV_EINVAL;
    }
    if (hi && pv_map_number(hi, strlen(hi), &o->ref_high)) {
        snprintf(err, errcap, "range_high '%.40s' is not a number", hi);
        return PV_EINVAL;
    }
    o->has_low = lo != NULL;
    o->has_high = hi != NULL;
    row->patient_id = o->patient_id;
    return 0;
}

static int omop_drug(const struct omop_def *d, const pv_csv_map *m,
                     const char **v, size_t n, pv_row *row, char *err,
                     size_t errcap)
{
    pv_exposure *e = &row->exp;
    long long cid;
    if (person(d, m, v, n, D_PERSON, &e->patient_id, err, errcap) ||
        concept(d, m, v, n, D_CONCEPT, &cid, err, errcap) ||
        when(d, m, v, n, D_START, D_START_DT, 1, 0, 0, &e->start, NULL, err,
             errcap))
        return PV_EINVAL;
    /* Where the start came from (exposures.start_source, issue 15 item
     * 3): the column read. */
    e->start_source =
        col(m, v, n, D_START_DT) ? d->cols[D_START_DT] : d->cols[D_START];
    /* The actual end (verbatim_end_date) when given, else the end. */
    int c_end = col(m, v, n, D_VERBATIM_END) ? D_VERBATIM_END : D_END;
    if (when(d, m, v, n, c_end, c_end == D_END ? D_END_DT : -1, 0, 1, 0,
             &e->end, &e->has_end, err, errcap))
        return PV_EINVAL;
    if (e->has_end && e->end < e->start) {
        snprintf(err, errcap, "%s is before drug_exposure_start_date",
                 d->cols[c_end]);
        return PV_EINVAL;
    }
    /* The code: drug_source_value when it is an RxCUI or an NDC (the code
     * sets know baricitinib's RxCUIs, domain §3.2), else the concept id
     * (code system OMOP; codes.lua knows baricitinib's OMOP ids). A
     * source value that is no code is the drug's name. */
    const char *src = col(m, v, n, D_SOURCE);
    size_t len;
    if (src && all_digits(src, &len) && len <= 8) {
        e->drug_code = src;
        e->code_system = "RXNORM";
    } else if (src && looks_ndc(src)) {
        e->drug_code = src;
        e->code_system = "NDC";
    } else if (cid) {
        e->drug_code = concept_text(row, 0, "", cid) + 1;
        e->code_system = "OMOP";
    }
    if (src && e->drug_code != src)
        e->drug = src;
    else if (cid)
        e->drug = concept_text(row, 1, "OMOP concept", cid);
    else if (src)
        e->drug = src;
    if (!e->drug) {
        snprintf(err, errcap,
                 "drug_concept_id is 0 and drug_source_value is "
                 "empty: no drug");
        return PV_EINVAL;
    }
    e->route = col(m, v, n, D_ROUTE_SRC);
    row->patient_id = e->patient_id;
    return 0;
}

/* An ICD-10 source value, else the concept id, else the source value as
 * SNOMED (digits) or a local code. */
static void event_code(pv_row *row, const char *src, long long cid)
{
    pv_event *e = &row->ev;
    size_t len;
    if (src && looks_icd10(src)) {
        e->code = src;
        e->code_system = "ICD10CM";
    } else if (cid) {
        e->code = concept_text(row, 0, "", cid) + 1;
        e->code_system = "OMOP";
        e->term = src;
    } else if (src) {
        e->code = src;
        e->code_system = all_digits(src, &len) ? "SNOMED" : "LOCAL";
    }
    if (cid && !e->term)
        e->term = concept_text(row, 1, "OMOP concept", cid);
}

static int omop_condition(const struct omop_def *d, const pv_csv_map *m,
                          const char **v, size_t n, pv_row *row, char *err,
                          size_t errcap)
{
    pv_event *e = &row->ev;
    long long cid;
    if (person(d, m, v, n, C_PERSON, &e->patient_id, err, errcap) ||
        concept(d, m, v, n, C_CONCEPT, &cid, err, errcap) ||
        when(d, m, v, n, C_START, C_START_DT, 1, 0, 1, &e->onset, NULL, err,
             errcap))
        return PV_EINVAL;
    event_code(row, col(m, v, n, C_SOURCE), cid);
    if (!e->code) {
        snprintf(err, errcap,
                 "condition_concept_id is 0 and "
                 "condition_source_value is empty: no code");
        return PV_EINVAL;
    }
    e->serious = -1;
    row->patient_id = e->patient_id;
    return 0;
}

static int omop_death(const struct omop_def *d, const pv_csv_map *m,
                      const char **v, size_t n, pv_row *row, char *err,
                      size_t errcap)
{
    pv_event *e = &row->ev;
    long long cid;
    if (person(d, m, v, n, X_PERSON, &e->patient_id, err, errcap) ||
        concept(d, m, v, n, X_CAUSE, &cid, err, errcap) ||
        when(d, m, v, n, X_DATE, X_DATETIME, 1, 0, 1, &e->onset, NULL, err,
             errcap))
        return PV_EINVAL;
    /* As plugins/death.lua expects: the cause when known, else ICD-10 R99
     * (unknown cause of mortality); outcome "fatal". */
    event_code(row, col(m, v, n, X_CAUSE_SRC), cid);
    if (!e->code) {
        e->code = "R99";
        e->code_system = "ICD10CM";
    }
    if (!e->term)
        e->term = "death";
    e->outcome = "fatal";
    e->serious = 1;
    row->patient_id = e->patient_id;
    return 0;
}

static int omop_person(const struct omop_def *d, const pv_csv_map *m,
                       const char **v, size_t n, pv_row *row, char *err,
                       size_t errcap)
{
    long long g, y, mo = 1, dd = 1;
    if (person(d, m, v, n, P_ID, &row->patient_id, err, errcap) ||
        concept(d, m, v, n, P_GENDER, &g, err, errcap))
        return PV_EINVAL;
    const char *bdt = col(m, v, n, P_BIRTH_DT);
    pv_time_t t;
    if (bdt && !pv_time_parse(bdt, strlen(bdt), &t)) {
        snprintf(row->text[0], sizeof row->text[0], "%.10s", bdt);
    } else {
        const char *ys = col(m, v, n, P_YEAR), *ms = col(m, v, n, P_MONTH),
                   *ds = col(m, v, n, P_DAY);
        if (integer(ys, &y) || y < 1850 || y > 9999) {
            snprintf(err, errcap, "year_of_birth '%.20s' is not a year",
                     ys ? ys : "");
            return PV_EINVAL;
        }
        if ((ms && (integer(ms, &mo) || mo < 1 || mo > 12)) ||
            (ds && (integer(ds, &dd) || dd < 1 || dd > 31))) {
            snprintf(err, errcap,
                     "month_of_birth/day_of_birth '%.4s'/'%.4s' "
                     "is not a date",
                     ms ? ms : "", ds ? ds : "");
            return PV_EINVAL;
        }
        /* Month or day unknown: the 1st (birth dates are dates). */
        snprintf(row->text[0], sizeof row->text[0], "%04lld-%02lld-%02lld", y,
                 mo, dd);
        if (pv_time_parse(row->text[0], 10, &t)) {
            snprintf(err, errcap, "date of birth %s is not a valid date",
                     row->text[0]);
            return PV_EINVAL;
        }
    }
    row->birth_date = row->text[0];
    /* OMOP gender concepts: 8507 MALE, 8532 FEMALE. */
    row->sex = g == 8507 ? "M" : g == 8532 ? "F" : col(m, v, n, P_GENDER_SRC);
    return 0;
}

int pv_omop_row(const pv_csv_map *m, const char **v, size_t n, long line,
                pv_row *row, char *err, size_t errcap)
{
    const struct omop_def *d = &omop[m->omop - 1];
    int rc = PV_EINVAL;
    switch (d->t) {
    case T_MEASUREMENT:
        rc = omop_measurement(d, m, v, n, row, err, errcap);
        row->obs.line = line;
        break;
    case T_DRUG:
        rc = omop_drug(d, m, v, n, row, err, errcap);
        row->exp.line = line;
        break;
    case T_CONDITION:
        rc = omop_condition(d, m, v, n, row, err, errcap);
        row->ev.line = line;
        break;
    case T_DEATH:
        rc = omop_death(d, m, v, n, row, err, errcap);
        row->ev.line = line;
        break;
    case T_PERSON:
        rc = omop_person(d, m, v, n, row, err, errcap);
        break;
    case T_OBSPERIOD: {
        /* Only makes the person known: no rule reads periods. */
        pv_time_t a, b;
        int hb;
        rc = person(d, m, v, n, O_PERSON, &row->patient_id, err, errcap);
        if (!rc)
            rc = when(d, m, v, n, O_START, -1, 1, 0, 0, &a, NULL, err, errcap);
        if (!rc)
            rc = when(d, m, v, n, O_END, -1, 0, 1, 0, &b, &hb, err, errcap);
        break;
    }
    }
    return rc;
}

/* ---- checks and times ----------------------------------------------- */

int pv_layout_check_time_format(const char *fmt, char *err, size_t errcap)
{
    int year = 0, month = 0, day = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        char c = *++p;
        switch (c) {
        case 'Y':
        case 'y':
            year = 1;
            break;
        case 'm':
        case 'b':
            month = 1;
            break;
        case 'd':
        case 'e':
            day = 1;
            break;
        case 'F':
        case 'D':
            year = month = day = 1;
            break;
        case 'H':
        case 'M':
        case 'S':
        case 'I':
        case 'p':
        case 'T':
        case '%':
            break;
        default:
            snprintf(err, errcap,
                     "time_format '%.60s': %%%c is not supported (use %%Y "
                     "%%y %%m %%b %%d %%e %%H %%M %%S %%I %%p %%T %%F %%D)",
                     fmt, c ? c : ' ');
            return PV_EINVAL;
        }
        if (!c)
            break;
    }
    if (!year || !month || !day) {
        snprintf(err, errcap,
                 "time_format '%.60s' needs a year, a month and a day "
                 "(e.g. \"%%m/%%d/%%Y %%H:%%M\")",
                 fmt);
        return PV_EINVAL;
    }
    return 0;
}

int pv_layout_check_glob(const char *glob, char *err, size_t errcap)
{
    if (!glob[0] || strchr(glob, '/')) {
        snprintf(err, errcap,
                 "match '%.60s' must be a non-empty file-name glob "
                 "without '/' (it is matched against the file's name)",
                 glob);
        return PV_EINVAL;
    }
    for (const char *p = glob; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q++;
            if (!*q) {
                snprintf(err, errcap, "match '%.60s': '[' is never closed",
                         glob);
                return PV_EINVAL;
            }
            p = q;
        }
    }
    return 0;
}

int pv_layout_parse_time(const char *fmt, const char *s, pv_time_t *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = 1;
    const char *end = strptime(s, fmt, &tm);
    if (!end)
        return PV_EINVAL;
    while (*end == ' ')
        end++;
    if (*end || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1)
        return PV_EINVAL;
    /* Reject 31 February and the like: format back and compare. */
    char iso[96];
    snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    return pv_time_parse(iso, strlen(iso), t) ? PV_EINVAL : 0;
}
