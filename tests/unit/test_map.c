/* test_map: CSV rows to facts. Header detection for each kind of our own
 * and each Synthea file of the shared corpus, every corpus row mapped
 * without error, each rejection reason, and the value forms labs carry
 * (text values, comparators, reference ranges). */
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "map.h"
#include "pvtime.h"
#include "csv_split.h"
#include "test.h"

static int header(const char *line, pv_csv_map *m, char *err, size_t cap)
{
    struct split s;
    split(&s, line);
    err[0] = '\0';
    return pv_map_csv_header(s.f, s.n, m, err, cap);
}

static void expect_kind(const char *line, enum pv_csv_kind kind,
                        const char *name)
{
    pv_csv_map m;
    char err[512];
    int rc = header(line, &m, err, sizeof err);
    if (rc != 0) {
        PV_FAIL_("header \"%s\": rc %d: %s", line, rc, err);
        return;
    }
    CHECK_INT(m.kind, kind);
    CHECK_STR(m.name, name);
}

/* Maps one data line under a header; returns the status, row and err. */
struct mapped {
    pv_row row;
    pv_buf scratch;
    char err[512];
    int rc;
};

static int map_line(struct mapped *r, const char *head, const char *line)
{
    pv_csv_map m;
    char err[512];
    memset(r->err, 0, sizeof r->err);
    if (header(head, &m, err, sizeof err)) {
        PV_FAIL_("header \"%s\": %s", head, err);
        return r->rc = -100;
    }
    struct split s;
    split(&s, line);
    r->rc = pv_map_csv_row(&m, s.f, s.n, 42, &r->row, &r->scratch, r->err,
                           sizeof r->err);
    return r->rc;
}

static const char *iso(pv_time_t t, char *buf)
{
    return pv_time_format(t, buf);
}

static void test_headers(void)
{
    expect_kind("patient_id,code,value,unit,observed_at", PV_CSV_LABS, "labs");
    expect_kind("patient_id,code,code_system,name,value,unit,ref_low,"
                "ref_high,ref_range,flag,status,observed_at,extra",
                PV_CSV_LABS, "labs");
    expect_kind("patient_id,drug,start", PV_CSV_MEDICATIONS, "medications");
    expect_kind("patient_id,drug,drug_code,code_system,dose,dose_unit,route,"
                "start,end",
                PV_CSV_MEDICATIONS, "medications");
    expect_kind("patient_id,code,onset", PV_CSV_EVENTS, "events");
    expect_kind("patient_id,code,code_system,term,onset,serious,outcome",
                PV_CSV_EVENTS, "events");
    expect_kind("patient_id,birth_date,sex", PV_CSV_PATIENTS, "patients");
    /* Case-insensitive, blanks around names ignored, any order. */
    expect_kind("Observed_At,UNIT,Value,CODE,Patient_ID", PV_CSV_LABS, "labs");
    expect_kind(" patient_id , DRUG ,Start", PV_CSV_MEDICATIONS, "medications");

    pv_csv_map m;
    char err[512];
    CHECK_INT(
        header("patient_id,code,value,unit,observed_at", &m, err, sizeof err),
        0);
    CHECK_INT(m.ncols, 5);
    CHECK_STR(m.code_system, "LN");
    CHECK_INT(header("patient_id,code,onset", &m, err, sizeof err), 0);
    CHECK_STR(m.code_system, "ICD10CM");

    /* Duplicate names, in any case, are refused. */
    CHECK_INT(header("patient_id,code,value,unit,observed_at,Code", &m, err,
                     sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "twice") != NULL);
    CHECK(strstr(err, "code") != NULL || strstr(err, "Code") != NULL);
    CHECK_INT(header("patient_id,drug,start,extra,EXTRA", &m, err, sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "twice") != NULL);
    /* ... also when only blanks tell them apart. */
    CHECK_INT(header("patient_id,drug,start,drug ", &m, err, sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "twice") != NULL);

    /* Missing one required column, or nothing known. */
    CHECK_INT(header("patient_id,code,value,observed_at", &m, err, sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "labs need") != NULL);
    /* Regression: that header, and any other with patient_id and nothing
     * else known, used to be taken for a patients file. */
    CHECK_INT(header("patient_id,name,observed", &m, err, sizeof err),
              PV_EINVAL);
    expect_kind("patient_id,sex", PV_CSV_PATIENTS, "patients");
    expect_kind("PATIENT_ID,Birth_Date", PV_CSV_PATIENTS, "patients");
    /* Synthea layouts that share conditions' columns are not conditions. */
    CHECK_INT(header("START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,UDI", &m,
                     err, sizeof err),
              PV_EINVAL);
    CHECK_INT(header("START,STOP,PATIENT,ENCOUNTER,SYSTEM,CODE,DESCRIPTION,"
                     "BASE_COST,REASONCODE,REASONDESCRIPTION",
                     &m, err, sizeof err),
              PV_EINVAL);
    expect_kind("START,STOP,PATIENT,ENCOUNTER,SYSTEM,CODE,DESCRIPTION",
                PV_CSV_EVENTS, "synthea conditions");
    CHECK_INT(header("a,b,c", &m, err, sizeof err), PV_EINVAL);
    CHECK(strstr(err, "not recognised") != NULL);
    CHECK_INT(header("", &m, err, sizeof err), PV_EINVAL);
}

/* ---------------------------------------------------------------------- */
/* The Synthea corpus                                                      */

struct corpus {
    const char *file;
    int expect_rc; /* of the header */
    enum pv_csv_kind kind;
    const char *name;
    long rows; /* data rows in the file */
};

static const struct corpus corpus[] = {
    {"synthea_observations_head300.csv", 0, PV_CSV_LABS, "synthea observations",
     300},
    {"synthea_observations_laboratory.csv", 0, PV_CSV_LABS,
     "synthea observations", 251},
    {"synthea_medications_head300.csv", 0, PV_CSV_MEDICATIONS,
     "synthea medications", 300},
    {"synthea_conditions_head300.csv", 0, PV_CSV_EVENTS, "synthea conditions",
     300},
    {"synthea_patients.csv", 0, PV_CSV_PATIENTS, "synthea patients", 27},
    /* Encounters are not conditions: their codes are visit types. */
    {"synthea_encounters_head200.csv", PV_EINVAL, 0, NULL, 0},
};

struct feed {
    const struct corpus *c;
    pv_csv_map map;
    int have_header;
    int header_rc;
    long rows, mapped, failed, with_num, csv_errors;
    pv_buf scratch;
    char first[512]; /* a summary of the first mapped row */
    char text_row[256];
};

static void summarise(struct feed *f, const pv_row *r)
{
    char t1[PV_TIME_BUFSZ], t2[PV_TIME_BUFSZ];
    switch (r->kind) {
    case PV_CSV_LABS:
        snprintf(f->first, sizeof f->first, "%s|%s|%s|%s|%g|%s|%s",
                 r->obs.patient_id, r->obs.code, r->obs.code_system,
                 r->obs.name, r->obs.value_num, r->obs.unit,
                 iso(r->obs.at, t1));
        break;
    case PV_CSV_MEDICATIONS:
        snprintf(f->first, sizeof f->first, "%s|%s|%s|%s|%s|%s",
                 r->exp.patient_id, r->exp.drug, r->exp.drug_code,
                 r->exp.code_system, iso(r->exp.start, t1),
                 r->exp.has_end ? iso(r->exp.end, t2) : "-");
        break;
    case PV_CSV_EVENTS:
        snprintf(f->first, sizeof f->first, "%s|%s|%s|%s|%s", r->ev.patient_id,
                 r->ev.code, r->ev.code_system, r->ev.term,
                 iso(r->ev.onset, t1));
        break;
    case PV_CSV_PATIENTS:
        snprintf(f->first, sizeof f->first, "%s|%s|%s", r->patient_id,
                 r->birth_date ? r->birth_date : "-", r->sex ? r->sex : "-");
        break;
    }
}

static int on_record(void *ud, long line, const pv_span *fields, size_t n)
{
    struct feed *f = ud;
    char err[512];
    if (!f->have_header) {
        f->have_header = 1;
        f->header_rc = pv_map_csv_header(fields, n, &f->map, err, sizeof err);
        if (f->header_rc != f->c->expect_rc)
            PV_FAIL_("%s: header rc %d: %s", f->c->file, f->header_rc, err);
        return f->header_rc ? 1 : 0;
    }
    f->rows++;
    pv_row row;
    int rc = pv_map_csv_row(&f->map, fields, n, line, &row, &f->scratch, err,
                            sizeof err);
    if (rc) {
        f->failed++;
        PV_FAIL_("%s:%ld: %s", f->c->file, line, err);
        return 0;
    }
    f->mapped++;
    if (f->mapped == 1)
        summarise(f, &row);
    if (row.kind == PV_CSV_LABS) {
        if (row.obs.line != line)
            PV_FAIL_("%s:%ld: obs.line %ld", f->c->file, line, row.obs.line);
        /* Synthea says which values are numbers in its TYPE column (some
         * "text" answers are numbers too, such as an income). */
        const pv_span *type = &fields[n - 1];
        int numeric = type->len == 7 && !memcmp(type->ptr, "numeric", 7);
        if (numeric && !row.obs.has_num)
            PV_FAIL_("%s:%ld: TYPE %.*s but has_num %d", f->c->file, line,
                     (int)type->len, type->ptr, row.obs.has_num);
        if (row.obs.has_num)
            f->with_num++;
        else if (!f->text_row[0])
            snprintf(f->text_row, sizeof f->text_row, "%s|%s|%d", row.obs.code,
                     row.obs.value_text, row.obs.has_num);
    }
    return 0;
}

static void on_error(void *ud, long line, const char *reason)
{
    struct feed *f = ud;
    f->csv_errors++;
    PV_FAIL_("%s:%ld: csv: %s", f->c->file, line, reason);
}

static void feed_file(struct feed *f, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus/csv/%s", dir, f->c->file);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        PV_FAIL_("cannot open %s", path);
        return;
    }
    pv_csv *p = pv_csv_new(0, on_record, on_error, f);
    char buf[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, fp)) > 0)
        rc = pv_csv_feed(p, buf, n);
    if (!rc)
        rc = pv_csv_finish(p);
    fclose(fp);
    pv_csv_free(p);
    /* A header that is refused stops the parser with 1. */
    CHECK_INT(rc, f->c->expect_rc ? 1 : 0);
}

static void test_corpus(void)
{
    const char *shared = getenv("PV_SHARED_DIR");
    if (!shared) {
        PV_FAIL_("PV_SHARED_DIR is not set");
        return;
    }
    struct feed fs[sizeof corpus / sizeof corpus[0]];
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        struct feed *f = &fs[i];
        memset(f, 0, sizeof *f);
        f->c = &corpus[i];
        feed_file(f, shared);
        CHECK_INT(f->have_header, 1);
        CHECK_INT(f->header_rc, f->c->expect_rc);
        CHECK_INT(f->csv_errors, 0);
        if (f->c->expect_rc == 0) {
            CHECK_INT(f->map.kind, f->c->kind);
            CHECK_STR(f->map.name, f->c->name);
            CHECK_INT(f->rows, f->c->rows);
            CHECK_INT(f->mapped, f->c->rows);
            CHECK_INT(f->failed, 0);
        }
        pv_buf_free(&f->scratch);
    }
    CHECK_STR(fs[0].first, "3edac2e3-d223-6fae-d515-daf96ef6bc76|8302-2|LN|"
                           "Body Height|127.9|cm|2023-10-10T04:17:47Z");
    /* Survey answers are text, kept as such. */
    CHECK(fs[0].with_num > 0 && fs[0].with_num < 300);
    CHECK(fs[0].text_row[0] != '\0');
    CHECK_STR(fs[1].text_row, "56799-0|455 Labadie Underpass Suite 69|0");
    CHECK_INT(fs[1].with_num, 233);
    CHECK_STR(fs[2].first,
              "9d188916-8390-282b-3ec2-73fce6e08649|Loratadine 5 MG Chewable "
              "Tablet|665078|RXNORM|2009-09-27T14:12:44Z|-");
    CHECK_STR(fs[3].first, "3edac2e3-d223-6fae-d515-daf96ef6bc76|195662009|"
                           "SNOMED|Acute viral pharyngitis (disorder)|"
                           "2023-01-27T00:00:00Z");
    CHECK_STR(fs[4].first, "3edac2e3-d223-6fae-d515-daf96ef6bc76|2014-10-06|M");
}

/* ---------------------------------------------------------------------- */
/* Rows of our own layouts                                                 */

#define LABS                                                                   \
    "patient_id,code,value,unit,observed_at,ref_low,ref_high,"                 \
    "ref_range,status,code_system"
#define MEDS "patient_id,drug,start,end,dose,dose_unit,route,drug_code"
#define EVENTS "patient_id,code,onset,serious,term,outcome"

static void expect_reject(const char *head, const char *line,
                          const char *needle)
{
    struct mapped r = {0};
    int rc = map_line(&r, head, line);
    if (rc != PV_EINVAL)
        PV_FAIL_("\"%s\": rc %d, want PV_EINVAL", line, rc);
    else if (!strstr(r.err, needle))
        PV_FAIL_("\"%s\": reason \"%s\" lacks \"%s\"", line, r.err, needle);
    else
        pv_test_passed++;
    pv_buf_free(&r.scratch);
}

static void test_rejections(void)
{
    /* A missing required field names it. */
    expect_reject(LABS, ",718-7,13,g/dL,2026-01-01,,,,,",
                  "patient_id is "
                  "empty");
    expect_reject(LABS, "P1,,13,g/dL,2026-01-01,,,,,", "code is empty");
    expect_reject(LABS, "P1,718-7,  ,g/dL,2026-01-01,,,,,", "value is empty");
    expect_reject(LABS, "P1,718-7,13,g/dL,,,,,,", "observed_at is empty");
    expect_reject(MEDS, "P1,,2026-01-01,,,,,", "drug is empty");
    expect_reject(MEDS, "P1,baricitinib,,,,,,", "start is empty");
    expect_reject(EVENTS, "P1,B02.9,,,,", "onset is empty");
    expect_reject("patient_id,birth_date,sex", ",1980-01-01,F",
                  "patient_id is empty");

    /* Impossible or unparseable times. */
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-13-45,,,,,",
                  "observed_at '2026-13-45' is not a valid time");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-02-30T10:00:00Z,,,,,",
                  "is not a valid time");
    expect_reject(LABS, "P1,718-7,13,g/dL,yesterday,,,,,",
                  "observed_at 'yesterday'");
    expect_reject(MEDS, "P1,baricitinib,2026-01-01,2026-01-32,,,,",
                  "end '2026-01-32' is not a valid time");
    expect_reject(MEDS, "P1,baricitinib,2026-02-01,2026-01-01,,,,",
                  "end is before start");
    expect_reject(EVENTS, "P1,B02.9,2026-00-10,,,", "onset '2026-00-10'");
    expect_reject("patient_id,birth_date,sex", "P1,1980-02-31,F",
                  "birth_date '1980-02-31'");

    /* The wrong number of fields, either way. */
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01",
                  "5 fields, the header "
                  "has 10");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,,,,,",
                  "11 fields, the header has 10");
    expect_reject("patient_id,drug,start", "P1", "1 field, the header has 3");

    /* Numbers and ranges. */
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,,3.5 to 7.0,,",
                  "ref_range '3.5 to 7.0'");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,,<high,,",
                  "ref_range '<high'");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,,3.5-,,",
                  "ref_range '3.5-'");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,,normal,,",
                  "ref_range 'normal'");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,low,,,,",
                  "ref_low 'low' is not a number");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,0x10,,,",
                  "ref_high '0x10' is not a number");
    expect_reject(MEDS, "P1,baricitinib,2026-01-01,,two,mg,,",
                  "dose 'two' is not a number");
    expect_reject(MEDS, "P1,baricitinib,2026-01-01,,2 mg,mg,,",
                  "dose '2 mg' is not a number");
    expect_reject(MEDS, "P1,baricitinib,2026-01-01,,nan,mg,,", "dose 'nan'");
    expect_reject(EVENTS, "P1,B02.9,2026-01-01,maybe,,", "serious 'maybe'");
    expect_reject(LABS, "P1,718-7,13,g/dL,2026-01-01,,,,FINAL,",
                  "status 'FINAL'");
}

static void test_lab_values(void)
{
    struct mapped r = {0};
    const pv_obs *o = &r.row.obs;
    char t[PV_TIME_BUFSZ];

    CHECK_INT(map_line(&r, LABS,
                       "P1,718-7, 13.5 ,g/dL,2026-01-31T14:05:00Z,"
                       "12,16,,,"),
              0);
    CHECK_INT(r.row.kind, PV_CSV_LABS);
    CHECK_STR(r.row.patient_id, "P1");
    CHECK_STR(o->patient_id, "P1");
    CHECK_STR(o->code, "718-7");
    CHECK_STR(o->code_system, "LN");
    CHECK_INT(o->has_num, 1);
    CHECK_DBL(o->value_num, 13.5, 0);
    CHECK_STR(o->value_text, "13.5");
    CHECK(o->comparator == NULL);
    CHECK_STR(o->unit, "g/dL");
    CHECK_STR(iso(o->at, t), "2026-01-31T14:05:00Z");
    CHECK_INT(o->has_low, 1);
    CHECK_INT(o->has_high, 1);
    CHECK_DBL(o->ref_low, 12, 0);
    CHECK_DBL(o->ref_high, 16, 0);
    CHECK(o->status == NULL);
    CHECK(o->name == NULL);
    CHECK_INT(o->line, 42);

    /* A non-numeric value is kept as text. */
    CHECK_INT(map_line(&r, LABS, "P1,94500-6,Not detected,,2026-01-31,,,,,"),
              0);
    CHECK_INT(o->has_num, 0);
    CHECK_STR(o->value_text, "Not detected");
    CHECK(o->comparator == NULL);
    CHECK(o->unit == NULL);
    CHECK_STR(iso(o->at, t), "2026-01-31T00:00:00Z");

    /* Comparators keep their number. */
    CHECK_INT(map_line(&r, LABS, "P1,1988-5,<0.5,mg/L,2026-01-31,,,,F,"), 0);
    CHECK_INT(o->has_num, 1);
    CHECK_DBL(o->value_num, 0.5, 0);
    CHECK_STR(o->comparator, "<");
    CHECK_STR(o->value_text, "<0.5");
    CHECK_STR(o->status, "F");
    CHECK_INT(map_line(&r, LABS, "P1,1988-5,<=0.5,mg/L,2026-01-31,,,,,"), 0);
    CHECK_STR(o->comparator, "<=");
    CHECK_DBL(o->value_num, 0.5, 0);
    CHECK_INT(map_line(&r, LABS, "P1,33914-3,>90,mL/min,2026-01-31,,,,,"), 0);
    CHECK_STR(o->comparator, ">");
    CHECK_DBL(o->value_num, 90, 0);
    CHECK_INT(map_line(&r, LABS, "P1,33914-3,>=60,mL/min,2026-01-31,,,,,"), 0);
    CHECK_STR(o->comparator, ">=");
    CHECK_DBL(o->value_num, 60, 0);
    /* A comparator without a number is text. */
    CHECK_INT(map_line(&r, LABS, "P1,33914-3,<,mL/min,2026-01-31,,,,,"), 0);
    CHECK_INT(o->has_num, 0);
    CHECK(o->comparator == NULL);
    CHECK_STR(o->value_text, "<");
    CHECK_INT(map_line(&r, LABS, "P1,33914-3,>high,,2026-01-31,,,,,"), 0);
    CHECK_INT(o->has_num, 0);
    CHECK(o->comparator == NULL);

    /* Reference ranges. */
    CHECK_INT(map_line(&r, LABS, "P1,2823-3,4.1,mmol/L,2026-01-31,,,3.5-7.0,,"),
              0);
    CHECK_INT(o->has_low, 1);
    CHECK_INT(o->has_high, 1);
    CHECK_DBL(o->ref_low, 3.5, 0);
    CHECK_DBL(o->ref_high, 7.0, 0);
    CHECK_INT(map_line(&r, LABS, "P1,1988-5,1,mg/L,2026-01-31,,,<5,,"), 0);
    CHECK_INT(o->has_low, 0);
    CHECK_INT(o->has_high, 1);
    CHECK_DBL(o->ref_high, 5, 0);
    CHECK_INT(map_line(&r, LABS, "P1,2085-9,50,mg/dL,2026-01-31,,,>40,,"), 0);
    CHECK_INT(o->has_low, 1);
    CHECK_INT(o->has_high, 0);
    CHECK_DBL(o->ref_low, 40, 0);
    CHECK_INT(map_line(&r, LABS, "P1,x,1,u,2026-01-31,,,-5--1,,"), 0);
    CHECK_DBL(o->ref_low, -5, 0);
    CHECK_DBL(o->ref_high, -1, 0);
    /* Explicit bounds win over the range text. */
    CHECK_INT(map_line(&r, LABS, "P1,x,1,u,2026-01-31,1,2,3-4,,"), 0);
    CHECK_DBL(o->ref_low, 1, 0);
    CHECK_DBL(o->ref_high, 2, 0);
    /* The code system given wins over the kind's default; HL7 TS times. */
    CHECK_INT(map_line(&r, LABS, "P1,HGB,13,g/dL,20260131140500,,,,,LOCAL"), 0);
    CHECK_STR(o->code_system, "LOCAL");
    CHECK_STR(iso(o->at, t), "2026-01-31T14:05:00Z");
    CHECK_INT(map_line(&r, LABS,
                       "P1,HGB,13,g/dL,2026-01-31T15:05:00+01:00,"
                       ",,,,"),
              0);
    CHECK_STR(iso(o->at, t), "2026-01-31T14:05:00Z");

    /* Case-insensitive column names map the same. */
    CHECK_INT(map_line(&r, "PATIENT_ID,Code,VALUE,Unit,OBSERVED_AT,REF_RANGE",
                       "P2,751-8,1.2,10*9/L,2026-02-01,1.5-8"),
              0);
    CHECK_STR(o->patient_id, "P2");
    CHECK_STR(o->code, "751-8");
    CHECK_DBL(o->value_num, 1.2, 0);
    CHECK_STR(o->unit, "10*9/L");
    CHECK_DBL(o->ref_low, 1.5, 0);
    CHECK_DBL(o->ref_high, 8, 0);
    pv_buf_free(&r.scratch);
}

static void test_other_kinds(void)
{
    struct mapped r = {0};
    char t[PV_TIME_BUFSZ];
    const pv_exposure *e = &r.row.exp;
    CHECK_INT(map_line(&r, MEDS,
                       "P1,Olumiant 2 MG,2026-01-01,2026-03-01,2,"
                       "mg,oral,0002-4479"),
              0);
    CHECK_INT(r.row.kind, PV_CSV_MEDICATIONS);
    CHECK_STR(e->patient_id, "P1");
    CHECK_STR(e->drug, "Olumiant 2 MG");
    CHECK_STR(e->drug_code, "0002-4479");
    CHECK_INT(e->has_dose, 1);
    CHECK_DBL(e->dose, 2, 0);
    CHECK_STR(e->dose_unit, "mg");
    CHECK_STR(e->route, "oral");
    CHECK_STR(iso(e->start, t), "2026-01-01T00:00:00Z");
    CHECK_INT(e->has_end, 1);
    CHECK_STR(iso(e->end, t), "2026-03-01T00:00:00Z");
    CHECK_INT(e->line, 42);
    CHECK_INT(map_line(&r, MEDS, "P1,baricitinib,2026-01-01,,,,,"), 0);
    CHECK_INT(e->has_end, 0);
    CHECK_INT(e->has_dose, 0);
    CHECK(e->dose_unit == NULL);

    const pv_event *v = &r.row.ev;
    CHECK_INT(map_line(&r, EVENTS, "P1,B02.9,2026-02-03,yes,Zoster,recovered"),
              0);
    CHECK_INT(r.row.kind, PV_CSV_EVENTS);
    CHECK_STR(v->code, "B02.9");
    CHECK_STR(v->code_system, "ICD10CM");
    CHECK_INT(v->serious, 1);
    CHECK_STR(v->term, "Zoster");
    CHECK_STR(v->outcome, "recovered");
    CHECK_STR(iso(v->onset, t), "2026-02-03T00:00:00Z");
    CHECK_INT(map_line(&r, EVENTS, "P1,B02.9,2026-02-03,FALSE,,"), 0);
    CHECK_INT(v->serious, 0);
    CHECK_INT(map_line(&r, EVENTS, "P1,B02.9,2026-02-03,,,"), 0);
    CHECK_INT(v->serious, -1);
    CHECK(v->term == NULL);

    CHECK_INT(map_line(&r, "patient_id,birth_date,sex", "P3,1975-06-07,F"), 0);
    CHECK_INT(r.row.kind, PV_CSV_PATIENTS);
    CHECK_STR(r.row.patient_id, "P3");
    CHECK_STR(r.row.birth_date, "1975-06-07");
    CHECK_STR(r.row.sex, "F");
    CHECK_INT(map_line(&r, "patient_id,birth_date,sex", "P3,,"), 0);
    CHECK(r.row.birth_date == NULL);
    CHECK(r.row.sex == NULL);
    pv_buf_free(&r.scratch);
}

static void test_numbers(void)
{
    double v = -1;
    CHECK_INT(pv_map_number("12.5", 4, &v), 0);
    CHECK_DBL(v, 12.5, 0);
    CHECK_INT(pv_map_number(" -3e2 ", 6, &v), 0);
    CHECK_DBL(v, -300, 0);
    CHECK_INT(pv_map_number(".5", 2, &v), 0);
    CHECK_DBL(v, 0.5, 0);
    /* Only the first len bytes count. */
    CHECK_INT(pv_map_number("7x", 1, &v), 0);
    CHECK_DBL(v, 7, 0);
    v = 99;
    const char *bad[] = {"",      " ",  "abc", "1,5", "0x10",  "inf", "nan",
                         "1e999", "1e", "--1", ".",   "1.2.3", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (pv_map_number(bad[i], strlen(bad[i]), &v) == PV_EINVAL)
            pv_test_passed++;
        else
            PV_FAIL_("pv_map_number(\"%s\") accepted", bad[i]);
    }
    CHECK_DBL(v, 99, 0);
}

int main(void)
{
    test_headers();
    test_corpus();
    test_rejections();
    test_lab_values();
    test_other_kinds();
    test_numbers();
    return pv_test_report();
}
