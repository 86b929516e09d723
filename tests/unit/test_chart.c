/* test_chart: the review console's inline SVG charts (core/chart.c) on a
 * real SQLite database made by the store's migrations. The threshold line
 * at the right height for the unit of the plotted values (10*9/L and
 * cells/mm3), grade bands, exposure rectangles where the formula of
 * chart.h puts them (an open one to the right edge), the alert's facts
 * marked, results the rules do not judge drawn apart, an event-only alert
 * without a chart, hostile strings escaped, the patient timeline,
 * deterministic output and charts drawn from several threads at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chart.h"
#include "pvtime.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_chart.XXXXXX";
static char dbpath[512];

static void exec_or_die(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        exit(2);
    }
}

/* The value of attribute name in the nth (0-based) tag that contains
 * marker, or NULL. */
static const char *attr(const char *svg, const char *marker, int nth,
                        const char *name, char *out, size_t cap)
{
    const char *p = svg;
    for (int i = 0;; i++) {
        p = strstr(p, marker);
        if (!p)
            return NULL;
        if (i == nth)
            break;
        p += strlen(marker);
    }
    const char *open = p;
    while (open > svg && *open != '<')
        open--;
    const char *close = strchr(p, '>');
    if (!close)
        return NULL;
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    for (const char *q = open; q && q < close; q++) {
        if (strncmp(q, pat, strlen(pat)))
            continue;
        q += strlen(pat);
        const char *e = strchr(q, '"');
        if (!e || e > close)
            return NULL;
        snprintf(out, cap, "%.*s", (int)(e - q), q);
        return out;
    }
    return NULL;
}

static double attr_num(const char *svg, const char *marker, int nth,
                       const char *name)
{
    char v[128];
    if (!attr(svg, marker, nth, name, v, sizeof v))
        return -1e300;
    return strtod(v, NULL);
}

static pv_time_t attr_time(const char *svg, const char *marker, int nth,
                           const char *name)
{
    char v[128];
    pv_time_t t = -1;
    if (attr(svg, marker, nth, name, v, sizeof v))
        pv_time_parse(v, strlen(v), &t);
    return t;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* x = x0 + (t - t0) / (t1 - t0) * (x1 - x0) from the svg's own axis. */
static double expect_x(const char *svg, pv_time_t t)
{
    pv_time_t t0 = attr_time(svg, "class=\"pv-chart\"", 0, "data-t0");
    pv_time_t t1 = attr_time(svg, "class=\"pv-chart\"", 0, "data-t1");
    double x0 = attr_num(svg, "class=\"pv-chart\"", 0, "data-x0");
    double x1 = attr_num(svg, "class=\"pv-chart\"", 0, "data-x1");
    return x0 + (double)(t - t0) / (double)(t1 - t0) * (x1 - x0);
}

/* y of value v on the first panel's value axis. */
static double expect_y(const char *svg, double v)
{
    double v0 = attr_num(svg, "class=\"panel\"", 0, "data-v0");
    double v1 = attr_num(svg, "class=\"panel\"", 0, "data-v1");
    double y0 = attr_num(svg, "class=\"panel\"", 0, "data-y0");
    double y1 = attr_num(svg, "class=\"panel\"", 0, "data-y1");
    return y0 - (v - v0) / (v1 - v0) * (y0 - y1);
}

static pv_time_t at(const char *iso)
{
    pv_time_t t = 0;
    pv_time_parse(iso, strlen(iso), &t);
    return t;
}

static void seed(sqlite3 *db)
{
    exec_or_die(
        db,
        /* P1: ANC in 10*9/L, one result in cells/mm3, one in % (not a
         * count), one retired (W); Olumiant 2026-01-01..02-05. */
        "INSERT INTO observations (id, patient_id, code, value_num, unit, "
        "status, observed_at) VALUES "
        "(1, 'P1', '751-8', 2.1, '10*9/L', 'F', '2026-01-05T08:00:00Z'),"
        "(2, 'P1', '751-8', 1200, 'cells/mm3', 'F', '2026-01-12T08:00:00Z'),"
        "(3, 'P1', '26499-4', 1.4, '10^9/L', 'F', '2026-01-19T08:00:00Z'),"
        "(4, 'P1', '751-8', 0.9, '10*9/L', 'F', '2026-02-02T08:00:00Z'),"
        "(5, 'P1', '751-8', 0.2, '10*9/L', 'W', '2026-02-09T08:00:00Z'),"
        "(6, 'P1', '751-8', 55, '%', 'F', '2026-02-10T08:00:00Z'),"
        "(7, 'P1', '718-7', 13.1, 'g/dL', 'F', '2026-01-05T08:00:00Z');"
        "INSERT INTO exposures (id, patient_id, drug, start_at, end_at) VALUES "
        "(1, 'P1', 'Olumiant 4 MG Oral Tablet', '2026-01-01T00:00:00Z', "
        "'2026-02-05T00:00:00Z'),"
        "(2, 'P1', 'Methotrexate 15 mg', '2025-12-01T00:00:00Z', NULL);"
        "INSERT INTO events (id, patient_id, code, term, onset_at) VALUES "
        "(1, 'P1', 'J18.9', 'Pneumonia', '2026-02-03T00:00:00Z');"
        /* P2: ANC in cells/mm3; baricitinib known by its NDC only, open. */
        "INSERT INTO observations (id, patient_id, code, value_num, unit, "
        "status, observed_at) VALUES "
        "(11, 'P2', '751-8', 2100, 'cells/mm3', 'F', '2026-01-05T08:00:00Z'),"
        "(12, 'P2', '751-8', 1400, '/uL', 'F', '2026-01-19T08:00:00Z'),"
        "(13, 'P2', '751-8', 900, 'cells/mm3', 'F', '2026-02-02T08:00:00Z');"
        "INSERT INTO exposures (id, patient_id, drug, drug_code, code_system, "
        "start_at, end_at) VALUES (3, 'P2', 'Study drug A', '00002447930', "
        "'NDC', '2026-01-10T00:00:00Z', NULL),"
        "(4, 'P2', 'Tofacitinib 5 mg', NULL, NULL, '2026-01-01T00:00:00Z', "
        "'2026-01-20T00:00:00Z');"
        "INSERT INTO observations (id, patient_id, code, value_num, unit, "
        "ref_high, status, observed_at) VALUES "
        "(31, 'P5', '1742-6', 30, 'U/L', 35, 'F', '2026-01-05T08:00:00Z'),"
        "(32, 'P5', '1742-6', 150, 'IU/L', 35, 'F', '2026-02-01T08:00:00Z'),"
        "(33, 'P5', '1975-2', 0.8, 'mg/dL', 1.2, 'F', '2026-01-05T08:00:00Z'),"
        "(34, 'P5', '1975-2', 2.9, 'mg/dL', 1.2, 'F', '2026-02-01T08:00:00Z'),"
        "(41, 'P6', '718-7', 7.5, 'mmol/L', NULL, 'F', '2026-01-05T08:00:00Z'),"
        "(42, 'P6', '718-7', 4.7, 'mmol/L', NULL, 'F', '2026-02-01T08:00:00Z');"
        /* P4: hostile strings everywhere. */
        "INSERT INTO observations (id, patient_id, code, value_num, unit, "
        "status, observed_at) VALUES "
        "(21, '<b>P4</b>', '<script>alert(1)</script>', 5, "
        "'\"><svg onload=alert(2)>', 'F', '2026-01-05T08:00:00Z'),"
        "(22, '<b>P4</b>', '<script>alert(1)</script>', 6, "
        "'\"><svg onload=alert(2)>', 'F', '2026-01-06T08:00:00Z');"
        "INSERT INTO exposures (id, patient_id, drug, start_at) VALUES "
        "(5, '<b>P4</b>', 'Olumiant <img src=x onerror=alert(3)>', "
        "'2026-01-01T00:00:00Z');"
        "INSERT INTO alerts (id, patient_id, rule, signal, severity, grade, "
        "title, dedup_key, created_at, updated_at, evidence) VALUES "
        "(1, 'P1', 'cytopenia.anc', 'cytopenia', 'high', 3, 'ANC below 1.0', "
        "'k1', '2026-02-02T09:00:00Z', '2026-02-02T09:00:00Z', "
        "'[{\"kind\":\"lab\",\"id\":4,\"code\":\"751-8\",\"value\":0.9,"
        "\"unit\":\"10*9/L\",\"at\":\"2026-02-02T08:00:00Z\"},"
        "{\"kind\":\"exposure\",\"id\":1,\"code\":null,\"value\":null,"
        "\"unit\":null,\"at\":\"2026-01-01T00:00:00Z\"}]'),"
        "(2, 'P2', 'cytopenia.anc', 'cytopenia', 'high', 3, 'ANC below 1000', "
        "'k2', '2026-02-02T09:00:00Z', '2026-02-02T09:00:00Z', "
        "'[{\"kind\":\"lab\",\"id\":13,\"code\":\"751-8\",\"value\":900,"
        "\"unit\":\"cells/mm3\",\"at\":\"2026-02-02T08:00:00Z\"}]'),"
        "(3, 'P1', 'infection.zoster', 'infection', 'medium', NULL, "
        "'Herpes zoster', 'k3', '2026-02-03T09:00:00Z', "
        "'2026-02-03T09:00:00Z', '[{\"kind\":\"event\",\"id\":1,"
        "\"code\":\"B02.9\",\"value\":null,\"unit\":null,\"at\":null}]'),"
        "(4, '<b>P4</b>', '<script>r</script>', 'x', 'low', NULL, "
        "'<script>t</script>', 'k4', '2026-01-06T09:00:00Z', "
        "'2026-01-06T09:00:00Z', '[{\"kind\":\"lab\",\"id\":22}]'),"
        /* P5: ALT and bilirubin (two analytes: two panels); P6: Hb in
         * mmol/L. */
        "(7, 'P5', 'hepatic.hy', 'hepatic', 'high', NULL, 'Hy', 'k7', "
        "'2026-02-01T09:00:00Z', '2026-02-01T09:00:00Z', "
        "'[{\"kind\":\"lab\",\"id\":32},{\"kind\":\"lab\",\"id\":34}]'),"
        "(8, 'P6', 'cytopenia.hb', 'cytopenia', 'high', NULL, 'Hb', 'k8', "
        "'2026-02-01T09:00:00Z', '2026-02-01T09:00:00Z', "
        "'[{\"kind\":\"lab\",\"id\":42}]'),"
        /* evidence that is not JSON, and a lab fact of another patient */
        "(5, 'P1', 'x.bad', 'x', 'low', NULL, 'bad', 'k5', "
        "'2026-02-03T09:00:00Z', '2026-02-03T09:00:00Z', '[{\"kind\":'),"
        "(6, 'P1', 'x.other', 'x', 'low', NULL, 'other', 'k6', "
        "'2026-02-03T09:00:00Z', '2026-02-03T09:00:00Z', "
        "'[{\"kind\":\"lab\",\"id\":13}]');");
}

static char *chart_alert(sqlite3 *db, int64_t id, int *rc)
{
    pv_buf b = PV_BUF_INIT;
    *rc = pv_chart_alert(db, id, &b);
    char *s = strdup(pv_buf_cstr(&b));
    pv_buf_free(&b);
    return s;
}

/* PV_CHART_DUMP=DIR writes the charts there, to look at them. */
static void dump(const char *name, const char *svg)
{
    const char *dir = getenv("PV_CHART_DUMP");
    if (!dir)
        return;
    char path[600];
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(svg, f);
        fclose(f);
    }
}

/* A copy of scripts/ in tmpdir/NAME with sed expression EDIT applied to
 * FILE. */
static void edited_pack(const char *scripts, const char *name, const char *file,
                        const char *edit, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%s", tmpdir, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && cp '%s'/*.lua '%s'/ && sed -i '%s' '%s/%s'", dir,
             scripts, dir, edit, dir, file);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s failed\n", cmd);
        exit(2);
    }
}

static void test_init_errors(const char *scripts)
{
    char err[512] = "", dir[600];
    CHECK_INT(pv_chart_init("/nonexistent/scripts", err, sizeof err), -1);
    CHECK(strstr(err, "units") != NULL);
    CHECK(strstr(err, "/nonexistent/scripts/units.lua") != NULL);
    CHECK_INT(pv_chart_init("/tmp;x", err, sizeof err), -1);
    /* A syntax error: the file and line. */
    edited_pack(scripts, "syntax", "ctcae.lua", "3s/^/local = = 1/", dir,
                sizeof dir);
    CHECK_INT(pv_chart_init(dir, err, sizeof err), -1);
    CHECK(strstr(err, "ctcae.lua:3:") != NULL);
    /* A module-local table renamed: said so, not a wrong chart. */
    edited_pack(scripts, "renamed", "units.lua", "s/ALIASES/SPELLINGS/g", dir,
                sizeof dir);
    CHECK_INT(pv_chart_init(dir, err, sizeof err), -1);
    CHECK(strstr(err, "units.lua: no local 'ALIASES'") != NULL);
    /* codes.lua's matching changed (names case-sensitive): the C copy
     * would answer otherwise, and init says so. */
    edited_pack(scripts, "drift", "codes.lua",
                "s/local t = text:lower()/local t = text/", dir, sizeof dir);
    CHECK_INT(pv_chart_init(dir, err, sizeof err), -1);
    CHECK(strstr(err, "codes.drug_matches") != NULL);
    pv_chart_free();
}

static void test_anc_10e9(sqlite3 *db)
{
    int rc;
    char *svg = chart_alert(db, 1, &rc);
    CHECK_INT(rc, 0);
    dump("alert-1", svg);
    CHECK(strncmp(svg, "<svg ", 5) == 0);
    CHECK(strstr(svg, "</svg>") != NULL);
    char v[128];
    CHECK_STR(attr(svg, "class=\"pv-chart\"", 0, "data-unit", v, sizeof v),
              "10*9/L");
    CHECK_STR(attr(svg, "class=\"pv-chart\"", 0, "viewBox", v, sizeof v),
              "0 0 720 260");
    /* Label threshold: ANC 1000 cells/mm3 = 1 x 10^9/L, at y(1). */
    CHECK_DBL(attr_num(svg, "class=\"threshold\"", 0, "data-value"), 1.0,
              1e-12);
    double y = attr_num(svg, "class=\"threshold\"", 0, "y1");
    CHECK_DBL(y, expect_y(svg, 1.0), 0.011);
    CHECK_DBL(attr_num(svg, "class=\"threshold\"", 0, "y2"), y, 1e-9);
    /* CTCAE bands in 10*9/L: G3 is 0.5 <= ANC < 1.0, G2 from 1.0 to 1.5,
     * G1 from 1.5 to the default LLN 2.0. */
    CHECK_DBL(attr_num(svg, "data-grade=\"3\"", 0, "data-from"), 1.0, 1e-12);
    CHECK_DBL(attr_num(svg, "data-grade=\"3\"", 0, "data-to"), 0.5, 1e-12);
    CHECK_DBL(attr_num(svg, "data-grade=\"2\"", 0, "data-from"), 1.5, 1e-12);
    CHECK_DBL(attr_num(svg, "data-grade=\"1\"", 0, "data-from"), 2.0, 1e-12);
    double band_top = attr_num(svg, "data-grade=\"3\"", 0, "y");
    CHECK_DBL(band_top, expect_y(svg, 1.0), 0.011);
    /* Exposure: Olumiant only (methotrexate is not shaded), x and width
     * as the formula puts them. */
    CHECK_INT(count(svg, "class=\"exposure\""), 1);
    pv_time_t s = at("2026-01-01T00:00:00Z"), e = at("2026-02-05T00:00:00Z");
    CHECK_INT(attr_time(svg, "class=\"exposure\"", 0, "data-start"), s);
    CHECK_INT(attr_time(svg, "class=\"exposure\"", 0, "data-end"), e);
    double x = attr_num(svg, "class=\"exposure\"", 0, "x");
    double w = attr_num(svg, "class=\"exposure\"", 0, "width");
    CHECK_DBL(x, expect_x(svg, s), 0.011);
    CHECK_DBL(x + w, expect_x(svg, e), 0.02);
    /* Points: 4 judged ANC results, cells/mm3 converted, the fact marked;
     * the W result hollow, never a point; the % result not plotted. */
    CHECK_INT(count(svg, "<circle class=\"point"), 4);
    CHECK_INT(count(svg, "class=\"point fact\""), 1);
    CHECK_DBL(attr_num(svg, "class=\"point fact\"", 0, "data-value"), 0.9,
              1e-12);
    CHECK_INT(attr_time(svg, "class=\"point fact\"", 0, "data-at"),
              at("2026-02-02T08:00:00Z"));
    CHECK_DBL(attr_num(svg, "class=\"point fact\"", 0, "cx"),
              expect_x(svg, at("2026-02-02T08:00:00Z")), 0.011);
    CHECK_DBL(attr_num(svg, "class=\"point fact\"", 0, "cy"),
              expect_y(svg, 0.9), 0.011);
    CHECK_DBL(attr_num(svg, "data-id=\"2\"", 0, "data-value"), 1.2, 1e-12);
    CHECK_DBL(attr_num(svg, "data-id=\"3\"", 0, "data-value"), 1.4, 1e-12);
    CHECK_INT(count(svg, "class=\"void\""), 1);
    CHECK_STR(attr(svg, "class=\"void\"", 0, "data-status", v, sizeof v), "W");
    CHECK(strstr(svg, "data-id=\"6\"") == NULL);
    CHECK(strstr(svg, "1 in a unit that does not convert") != NULL);
    /* Accessibility and a title with the analyte and the unit. */
    CHECK(strstr(svg, "<title id=\"pvc-alert-1-title\">ANC in 10*9/L") != NULL);
    CHECK(strstr(svg, "<desc id=\"pvc-alert-1-desc\">") != NULL);
    CHECK(strstr(svg, "ANC (neutrophil count decreased), 10*9/L") != NULL);
    CHECK(strstr(svg, "class=\"tick\"") != NULL);
    /* Deterministic. */
    char *again = chart_alert(db, 1, &rc);
    CHECK_STR(again, svg);
    free(again);
    free(svg);
}

static void test_anc_cells(sqlite3 *db)
{
    int rc;
    char *svg = chart_alert(db, 2, &rc);
    CHECK_INT(rc, 0);
    dump("alert-2", svg);
    char v[128];
    CHECK_STR(attr(svg, "class=\"pv-chart\"", 0, "data-unit", v, sizeof v),
              "cells/mm3");
    CHECK_DBL(attr_num(svg, "class=\"threshold\"", 0, "data-value"), 1000,
              1e-9);
    CHECK_DBL(attr_num(svg, "class=\"threshold\"", 0, "y1"),
              expect_y(svg, 1000), 0.011);
    CHECK_DBL(attr_num(svg, "data-grade=\"4\"", 0, "data-from"), 500, 1e-9);
    /* "/uL" is cells/mm3. */
    CHECK_INT(count(svg, "<circle class=\"point"), 3);
    CHECK_DBL(attr_num(svg, "data-id=\"12\"", 0, "data-value"), 1400, 1e-9);
    /* The NDC-coded exposure is baricitinib and open: to the right edge;
     * tofacitinib is not shaded. */
    CHECK_INT(count(svg, "class=\"exposure\""), 1);
    CHECK_STR(attr(svg, "class=\"exposure\"", 0, "data-end", v, sizeof v), "");
    double x = attr_num(svg, "class=\"exposure\"", 0, "x");
    double w = attr_num(svg, "class=\"exposure\"", 0, "width");
    CHECK_DBL(x, expect_x(svg, at("2026-01-10T00:00:00Z")), 0.011);
    CHECK_DBL(x + w, attr_num(svg, "class=\"pv-chart\"", 0, "data-x1"), 0.011);
    CHECK_INT(count(svg, "class=\"point fact\""), 1);
    CHECK_DBL(attr_num(svg, "class=\"point fact\"", 0, "data-value"), 900,
              1e-9);
    free(svg);
}

/* Two analytes, two panels on one time axis; ALT's grades are multiples
 * of the result's own ULN (35 U/L): G1 > 35, G2 > 105. */
static void test_two_panels(sqlite3 *db)
{
    int rc;
    char *svg = chart_alert(db, 7, &rc);
    CHECK_INT(rc, 0);
    dump("alert-7", svg);
    char v[128];
    CHECK_STR(attr(svg, "class=\"pv-chart\"", 0, "viewBox", v, sizeof v),
              "0 0 720 520");
    CHECK_INT(count(svg, "class=\"panel\""), 2);
    CHECK_STR(attr(svg, "class=\"panel\"", 0, "data-analyte", v, sizeof v),
              "alt");
    CHECK_STR(attr(svg, "class=\"panel\"", 1, "data-analyte", v, sizeof v),
              "bilirubin");
    CHECK_DBL(attr_num(svg, "data-grade=\"1\"", 0, "data-from"), 35, 1e-9);
    CHECK_DBL(attr_num(svg, "data-grade=\"2\"", 0, "data-from"), 105, 1e-9);
    /* bilirubin: G1 > 1.2 (ULN), G2 > 1.8 (1.5 x ULN) */
    CHECK_DBL(attr_num(svg, "data-grade=\"2\"", 1, "data-from"), 1.8, 1e-9);
    CHECK_INT(count(svg, "class=\"point fact\""), 2);
    CHECK(strstr(svg, "class=\"threshold\"") == NULL); /* no label limit */
    free(svg);

    /* Hb in mmol/L: the label's 8 g/dL converted (units.lua: x 1.61), the
     * CTCAE band of the mmol/L cells (G3 < 4.9), not a conversion. */
    svg = chart_alert(db, 8, &rc);
    CHECK_INT(rc, 0);
    CHECK_DBL(attr_num(svg, "class=\"threshold\"", 0, "data-value"), 8 / 1.61,
              1e-9);
    CHECK_DBL(attr_num(svg, "class=\"threshold\"", 0, "y1"),
              expect_y(svg, 8 / 1.61), 0.011);
    CHECK_DBL(attr_num(svg, "data-grade=\"3\"", 0, "data-from"), 4.9, 1e-12);
    CHECK_DBL(attr_num(svg, "data-grade=\"2\"", 0, "data-from"), 6.2, 1e-12);
    free(svg);
}

static void test_no_chart(sqlite3 *db)
{
    pv_buf b = PV_BUF_INIT;
    pv_buf_puts(&b, "keep");
    CHECK_INT(pv_chart_alert(db, 3, &b), 1); /* herpes zoster: an event */
    CHECK_INT(pv_chart_alert(db, 5, &b), 1); /* evidence not JSON */
    CHECK_INT(pv_chart_alert(db, 6, &b), 1); /* another patient's result */
    CHECK_INT(pv_chart_alert(db, 999, &b), -1);
    CHECK_STR(pv_buf_cstr(&b), "keep");
    pv_buf_free(&b);
}

static void test_escaping(sqlite3 *db)
{
    int rc;
    char *svg = chart_alert(db, 4, &rc);
    CHECK_INT(rc, 0);
    dump("alert-4", svg);
    CHECK(strstr(svg, "<script") == NULL);
    CHECK(strstr(svg, "<img") == NULL);
    CHECK(strstr(svg, "<b>") == NULL);
    CHECK(strstr(svg, "\"><svg") == NULL);
    CHECK(strstr(svg, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
    CHECK(strstr(svg, "&quot;&gt;&lt;svg onload=alert(2)&gt;") != NULL);
    CHECK(strstr(svg, "&lt;b&gt;P4&lt;/b&gt;") != NULL);
    CHECK_INT(count(svg, "<svg "), 1);
    /* An unknown unit: plotted as sent, without threshold or bands. */
    CHECK_INT(count(svg, "<circle class=\"point"), 2);
    CHECK(strstr(svg, "class=\"threshold\"") == NULL);
    free(svg);

    pv_buf b = PV_BUF_INIT;
    CHECK_INT(pv_chart_patient(db, "<b>P4</b>", &b), 0);
    const char *p = pv_buf_cstr(&b);
    CHECK(strstr(p, "<script") == NULL);
    CHECK(strstr(p, "<img") == NULL);
    CHECK(strstr(p, "<b>") == NULL);
    CHECK(strstr(p, "&lt;img src=x onerror=alert(3)&gt;") != NULL);
    pv_buf_free(&b);
}

static void test_patient(sqlite3 *db)
{
    pv_buf b = PV_BUF_INIT;
    CHECK_INT(pv_chart_patient(db, "P1", &b), 0);
    const char *svg = pv_buf_cstr(&b);
    dump("patient-P1", svg);
    CHECK(strncmp(svg, "<svg ", 5) == 0);
    CHECK(strstr(svg, "data-kind=\"patient\"") != NULL);
    /* Both drugs as bars, in the order they started; the open
     * methotrexate runs to the right edge. */
    CHECK_INT(count(svg, "class=\"exposure\""), 2);
    CHECK(strstr(svg, "data-baricitinib=\"1\"") != NULL);
    double x1 = attr_num(svg, "class=\"pv-chart\"", 0, "data-x1");
    double x = attr_num(svg, "class=\"exposure\"", 0, "x");
    double w = attr_num(svg, "class=\"exposure\"", 0, "width");
    CHECK_DBL(x + w, x1, 0.011);
    CHECK_DBL(x, expect_x(svg, at("2025-12-01T00:00:00Z")), 0.011);
    x = attr_num(svg, "class=\"exposure\"", 1, "x");
    CHECK_DBL(x, expect_x(svg, at("2026-01-01T00:00:00Z")), 0.011);
    /* Events and alerts as markers; the alerts link to their pages. */
    CHECK_INT(count(svg, "class=\"event\""), 1);
    CHECK_INT(count(svg, "class=\"alert\""), 4);
    CHECK(strstr(svg, "<a href=\"/alerts/1\">") != NULL);
    /* One sparkline per analyte: ANC (W and % left out) and Hb. */
    CHECK_INT(count(svg, "class=\"sparkline\""), 2);
    CHECK(strstr(svg, "data-analyte=\"neutrophils\" data-unit=\"10*9/L\"") !=
          NULL);
    CHECK(strstr(svg, "data-analyte=\"hemoglobin\"") != NULL);
    CHECK_INT(count(svg, "<circle class=\"point\""), 5);
    pv_buf_free(&b);

    CHECK_INT(pv_chart_patient(db, "nobody", &b), 0);
    CHECK(strstr(pv_buf_cstr(&b), "No data") != NULL);
    pv_buf_free(&b);
}

/* Several threads, each with its own read-only connection, as the
 * console's threads draw charts. */
struct worker {
    const char *want;
    int bad;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        w->bad = 1;
        sqlite3_close(db);
        return NULL;
    }
    for (int i = 0; i < 20; i++) {
        pv_buf b = PV_BUF_INIT;
        if (pv_chart_alert(db, 1, &b) != 0 || strcmp(pv_buf_cstr(&b), w->want))
            w->bad = 1;
        pv_buf_free(&b);
        if (pv_chart_patient(db, "P2", &b) != 0)
            w->bad = 1;
        pv_buf_free(&b);
    }
    sqlite3_close(db);
    return NULL;
}

static void test_threads(sqlite3 *db)
{
    int rc;
    char *want = chart_alert(db, 1, &rc);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i].want = want;
        w[i].bad = 0;
        CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].bad, 0);
    }
    free(want);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 2;
    snprintf(dbpath, sizeof dbpath, "%s/pv.db", tmpdir);
    pv_store *s = NULL;
    char err[512] = "";
    if (pv_store_open(dbpath, &s, err, sizeof err)) {
        fprintf(stderr, "pv_store_open: %s\n", err);
        return 2;
    }
    sqlite3 *db = pv_store_db(s);
    seed(db);

    const char *src = getenv("PV_SOURCE_DIR");
    char scripts[512];
    snprintf(scripts, sizeof scripts, "%s/scripts", src ? src : "../..");
    test_init_errors(scripts);
    int rc = pv_chart_init(scripts, err, sizeof err);
    CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "pv_chart_init: %s\n", err);

    test_anc_10e9(db);
    test_anc_cells(db);
    test_two_panels(db);
    test_no_chart(db);
    test_escaping(db);
    test_patient(db);
    test_threads(db);

    pv_chart_free();
    pv_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return pv_test_report();
}
