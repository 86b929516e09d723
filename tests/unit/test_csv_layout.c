/* test_csv_layout: which layout a CSV header is in (issue 15 items 10 and
 * 11): a configured layout chosen by its glob before anything else, OMOP
 * CDM tables by their column names in any case, the built-in layouts
 * otherwise; the explanation when none matches; the checks `pvwatch check`
 * runs on csv.layouts; OMOP rows mapped to facts. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "csv_layout.h"
#include "map.h"
#include "csv_split.h"
#include "test.h"

static char *keys[] = {"patient_id", "code", "value", "unit", "observed_at"};
static char *heads[] = {"Patient ID", "Test performed code", "Test result",
                        "Result units", "Test date"};

static void one_layout(pv_config *cfg, pv_csv_layout_cfg *l)
{
    memset(cfg, 0, sizeof *cfg);
    memset(l, 0, sizeof *l);
    l->match = "simplereport*.csv";
    l->kind = "labs";
    l->time_format = "%m/%d/%Y %H:%M";
    l->keys.items = keys;
    l->keys.count = 5;
    l->heads.items = heads;
    l->heads.count = 5;
    cfg->csv.layouts = l;
    cfg->csv.nlayouts = 1;
}

static int header(const pv_config *cfg, const char *file, const char *line,
                  pv_csv_map *m, char *err)
{
    struct split s;
    split(&s, line);
    err[0] = '\0';
    return pv_layout_header(cfg, file, s.f, s.n, m, err, 1024);
}

static void test_matching(void)
{
    pv_config cfg;
    pv_csv_layout_cfg l;
    one_layout(&cfg, &l);
    pv_csv_map m;
    char err[1024];
    const char *sr = "Test date,Patient ID,Test performed code,Test result,"
                     "Result units,Extra";
    /* The glob decides, on the last path component only. */
    CHECK_INT(header(&cfg, "/in/simplereport_1.csv", sr, &m, err), 0);
    CHECK_INT(m.kind, PV_CSV_LABS);
    CHECK_STR(m.time_format, "%m/%d/%Y %H:%M");
    CHECK_INT(header(&cfg, "/simplereport/x.csv", sr, &m, err), PV_EINVAL);
    CHECK(strstr(err, "header not recognised") != NULL);
    /* A matching file without a configured column: named. */
    CHECK_INT(
        header(&cfg, "simplereport.csv", "Patient ID,Test result", &m, err),
        PV_EINVAL);
    CHECK(strstr(err, "'Test performed code'") != NULL);
    CHECK(strstr(err, "simplereport*.csv") != NULL);
    /* The configured layout wins over the built-in header it also is. */
    CHECK_INT(header(&cfg, "simplereport.csv",
                     "patient_id,code,value,unit,observed_at", &m, err),
              PV_EINVAL);
    /* Without configuration the built-in layouts still match. */
    CHECK_INT(header(NULL, "simplereport.csv",
                     "patient_id,code,value,unit,observed_at", &m, err),
              0);
    CHECK_STR(m.name, "labs");
    CHECK(!m.omop);
    /* OMOP tables, any case, extra columns ignored. */
    CHECK_INT(header(NULL, "m.csv",
                     "MEASUREMENT_ID,PERSON_ID,MEASUREMENT_CONCEPT_ID,"
                     "MEASUREMENT_DATE,VALUE_AS_NUMBER,X",
                     &m, err),
              0);
    CHECK_STR(m.name, "omop measurement");
    CHECK_INT(m.kind, PV_CSV_LABS);
    CHECK_INT(header(NULL, "p.csv", "person_id,gender_concept_id,year_of_birth",
                     &m, err),
              0);
    CHECK_STR(m.name, "omop person");
    CHECK_INT(header(NULL, "d.csv", "person_id,death_date", &m, err), 0);
    CHECK_STR(m.name, "omop death");
    CHECK_INT(header(NULL, "o.csv",
                     "observation_period_id,person_id,observation_period_"
                     "start_date,observation_period_end_date",
                     &m, err),
              0);
    CHECK_STR(m.name, "omop observation_period");
    CHECK_INT(header(NULL, "c.csv",
                     "condition_occurrence_id,person_id,condition_concept_"
                     "id,condition_start_date",
                     &m, err),
              0);
    CHECK_STR(m.name, "omop condition_occurrence");
    /* A measurement table without its date is not one. */
    CHECK_INT(header(NULL, "m.csv",
                     "measurement_id,person_id,measurement_concept_id", &m,
                     err),
              PV_EINVAL);
    CHECK(strstr(err, "OMOP") != NULL);
    /* A column twice is still an error, not a guess. */
    CHECK_INT(header(NULL, "d.csv", "person_id,death_date,DEATH_DATE", &m, err),
              PV_EINVAL);
    CHECK(strstr(err, "twice") != NULL);
}

static void test_explain(void)
{
    pv_config cfg;
    pv_csv_layout_cfg l;
    one_layout(&cfg, &l);
    struct split s;
    pv_buf out = PV_BUF_INIT;
    split(&s, "Patient Id,Test performed cod,Test result,Result units,"
              "Test date");
    CHECK_INT(pv_layout_explain(&cfg, "simplereport.csv", s.f, s.n, &out),
              PV_EINVAL);
    CHECK(strstr(pv_buf_cstr(&out),
                 "missing 'Test performed code' (near: 'Test performed "
                 "cod')") != NULL);
    pv_buf_reset(&out);
    split(&s, "PERSON_ID,DEATH_DATE");
    CHECK_INT(pv_layout_explain(&cfg, "death.csv", s.f, s.n, &out), 0);
    CHECK(strstr(pv_buf_cstr(&out), "OMOP CDM v5.4 table death") != NULL);
    pv_buf_reset(&out);
    split(&s, "Patient-ID,Code,Value,Units,Observed At");
    CHECK_INT(pv_layout_explain(NULL, "x.csv", s.f, s.n, &out), PV_EINVAL);
    const char *o = pv_buf_cstr(&out);
    CHECK(strstr(o, "labs: missing 'patient_id' (near: 'Patient-ID'), "
                    "'unit' (near: 'Units'), 'observed_at' (near: "
                    "'Observed At')") != NULL);
    CHECK(strstr(o, "omop measurement: missing") != NULL);
    pv_buf_free(&out);
}

static void test_checks(void)
{
    char err[512];
    CHECK_INT(pv_layout_check_time_format("%m/%d/%Y %H:%M", err, sizeof err),
              0);
    CHECK_INT(pv_layout_check_time_format("%F %T", err, sizeof err), 0);
    CHECK_INT(pv_layout_check_time_format("%H:%M", err, sizeof err), PV_EINVAL);
    CHECK(strstr(err, "year, a month and a day") != NULL);
    CHECK_INT(pv_layout_check_time_format("%Y-%m-%d %Z", err, sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "%Z is not supported") != NULL);
    CHECK_INT(pv_layout_check_time_format("%Y-%m-%d %", err, sizeof err),
              PV_EINVAL);
    CHECK_INT(pv_layout_check_glob("sr*.csv", err, sizeof err), 0);
    CHECK_INT(pv_layout_check_glob("[!a]x[]].csv", err, sizeof err), 0);
    CHECK_INT(pv_layout_check_glob("a[bc.csv", err, sizeof err), PV_EINVAL);
    CHECK_INT(pv_layout_check_glob("dir/a.csv", err, sizeof err), PV_EINVAL);
    CHECK_INT(pv_layout_check_glob("", err, sizeof err), PV_EINVAL);
    pv_time_t t;
    CHECK_INT(pv_layout_parse_time("%m/%d/%Y %H:%M", "02/03/2026 14:05", &t),
              0);
    CHECK_INT(t, 1770127500);
    CHECK_INT(pv_layout_parse_time("%m/%d/%Y %H:%M", "02/30/2026 14:05", &t),
              PV_EINVAL);
    CHECK_INT(pv_layout_parse_time("%m/%d/%Y %H:%M", "02/03/2026", &t),
              PV_EINVAL);
    CHECK_INT(pv_layout_parse_time("%m/%d/%Y", "02/03/2026 junk", &t),
              PV_EINVAL);
    /* Column keys are the kind's own. */
    const char *k[] = {"patient_id", "drug", "start", "colour"};
    const char *h[] = {"a", "b", "c", "d"};
    CHECK_INT(pv_map_csv_mapped("medications", k, h, 3, NULL, 0, NULL, err,
                                sizeof err),
              0);
    CHECK_INT(pv_map_csv_mapped("medications", k, h, 4, NULL, 0, NULL, err,
                                sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "unknown column key 'colour'") != NULL);
    CHECK_INT(pv_map_csv_mapped("medications", k, h, 2, NULL, 0, NULL, err,
                                sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "'start'") != NULL);
    CHECK_INT(pv_map_csv_mapped("synthea medications", k, h, 3, NULL, 0, NULL,
                                err, sizeof err),
              PV_EINVAL);
}

static int row(const char *hdr, const char *line, pv_row *r, char *err)
{
    static pv_buf scratch = PV_BUF_INIT;
    static struct split hs, rs;
    static pv_csv_map m;
    split(&hs, hdr);
    if (pv_layout_header(NULL, "x.csv", hs.f, hs.n, &m, err, 512))
        return -1;
    split(&rs, line);
    int rc = pv_map_csv_row(&m, rs.f, rs.n, 2, r, &scratch, err, 512);
    if (!line[0])
        pv_buf_free(&scratch);
    return rc;
}

static void test_omop_rows(void)
{
    pv_row r;
    char err[512];
    const char *mh = "measurement_id,person_id,measurement_concept_id,"
                     "measurement_date,measurement_datetime,operator_concept_"
                     "id,value_as_number,value_as_concept_id,unit_concept_id,"
                     "measurement_source_value,unit_source_value,value_source_"
                     "value";
    CHECK_INT(
        row(mh, "1,7,3013650,2026-02-01,,4172704,2.5,,8848,751-8,,", &r, err),
        0);
    CHECK_STR(r.obs.code, "751-8");
    CHECK_STR(r.obs.code_system, "LN");
    CHECK_STR(r.obs.name, "OMOP concept 3013650");
    CHECK_STR(r.obs.comparator, ">");
    CHECK_STR(r.obs.unit, "OMOP concept 8848");
    CHECK_INT(r.obs.line, 2);
    CHECK_INT(row(mh, "1,7,3013650,2026-02-01,,,,45878583,,ANC,,", &r, err), 0);
    CHECK_STR(r.obs.code, "3013650");
    CHECK_STR(r.obs.code_system, "OMOP");
    CHECK_STR(r.obs.value_text, "OMOP concept 45878583");
    CHECK(!r.obs.has_num);
    CHECK_INT(row(mh, "1,7,3013650,2026-02-01,,,,,,751-8,,", &r, err),
              PV_EINVAL);
    CHECK(strstr(err, "no value") != NULL);
    CHECK_INT(row(mh, "1,7,abc,2026-02-01,,,1,,,751-8,,", &r, err), PV_EINVAL);
    CHECK(strstr(err, "measurement_concept_id 'abc'") != NULL);
    CHECK_INT(row(mh, "1,7,1,1700-01-01,,,1,,,751-8,,", &r, err), PV_EINVAL);
    CHECK(strstr(err, "impossible") != NULL);
    const char *dh = "drug_exposure_id,person_id,drug_concept_id,drug_"
                     "exposure_start_date,drug_exposure_end_date,drug_source_"
                     "value";
    CHECK_INT(row(dh, "1,7,1510627,2026-01-01,2026-01-01,00002447930", &r, err),
              0);
    CHECK_STR(r.exp.code_system, "NDC");
    CHECK_STR(r.exp.drug, "OMOP concept 1510627");
    CHECK(r.exp.has_end);
    /* An end date is inclusive: the last second of that day. */
    CHECK_INT(r.exp.end - r.exp.start, 86399);
    CHECK_INT(row(dh, "1,7,0,2026-01-01,,", &r, err), PV_EINVAL);
    CHECK(strstr(err, "no drug") != NULL);
    CHECK_INT(row("person_id,gender_concept_id,year_of_birth", "9,8551,1900",
                  &r, err),
              0);
    CHECK_STR(r.birth_date, "1900-01-01");
    CHECK(r.sex == NULL);
    CHECK_INT(row("person_id,gender_concept_id,year_of_birth,month_of_birth",
                  "9,8507,1990,13", &r, err),
              PV_EINVAL);
    CHECK_INT(row("person_id,death_date,cause_source_value",
                  "9,2026-01-02,I21.9", &r, err),
              0);
    CHECK_STR(r.ev.code, "I21.9");
    CHECK_STR(r.ev.outcome, "fatal");
    CHECK_INT(r.ev.serious, 1);
    row("person_id,death_date", "", &r, err); /* frees the scratch */
}

int main(void)
{
    test_matching();
    test_explain();
    test_checks();
    test_omop_rows();
    return pv_test_report();
}
