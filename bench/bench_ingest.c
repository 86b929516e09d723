/* bench_ingest: CSV ingest throughput and peak memory of the real pipeline
 * (issue 2, "Performance"), reported as a ratio to a raw SQLite insert of
 * the same rows into the same schema measured in the same run
 * (TESTING.md, "Performance reference").
 *
 * It generates a labs feed and a medications feed with a seeded PRNG, has
 * them ingested with pv_ingest_* exactly as `pvwatch ingest` does (the
 * subject) by a process of its own (fork + exec of itself, started before
 * the generation, so that its peak RSS is its own), then inserts the same
 * lab rows with one prepared statement (the reference). Nothing here is
 * hard-coded: every figure printed is measured or counted. Calls the
 * public API of pvcore only (config, ingest, store, rules, alerts). How to
 * run it and read it: bench/README.md. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "alerts.h"
#include "buf.h"
#include "config.h"
#include "error.h"
#include "ingest.h"
#include "rules.h"
#include "store.h"

#define DAY 86400
/* Lab times run over two years from 2025-01-01T00:00:00Z. */
#define T0 1735689600LL
#define SPAN (730LL * DAY)
#define REF_TX_ROWS 1000
#define TARGET_RATIO 0.5
#define TARGET_RSS_KB (64L * 1024)
#define MAX_ROUNDS 9

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

struct opts {
    long rows;
    long patients;
    double exposed_pct;
    uint64_t seed;
    int anc_only;
    int keep;
    int check;
    int skip_reference;
    int repeat;
    const char *tmpdir;
    const char *rule; /* --rule: run only this rule (pv_rules_only) */
};

static const char usage[] =
    "usage: bench_ingest [--rows N] [--patients N] [--exposed-pct P]\n"
    "                    [--seed S] [--anc-only] [--tmpdir DIR] [--keep]\n"
    "                    [--skip-reference] [--check] [--rule NAME]\n"
    "                    [--repeat K]\n"
    "  --rows N          lab rows to generate (default 1000000)\n"
    "  --patients N      distinct patients (default 10000)\n"
    "  --exposed-pct P   share of patients on baricitinib (default 10)\n"
    "  --seed S          PRNG seed (default 1); same seed, same files\n"
    "  --anc-only        every lab row is an ANC (751-8): every row runs\n"
    "                    the neutropenia rule (worst case)\n"
    "  --tmpdir DIR      where the temporary directory goes (default\n"
    "                    $TMPDIR or /tmp)\n"
    "  --keep            keep the generated files and databases\n"
    "  --skip-reference  only run the pipeline (for profiling)\n"
    "  --rule NAME       load every plugin but run only rule NAME (as\n"
    "                    `pvwatch replay --rule` does); default: all rules,\n"
    "                    as `pvwatch ingest` runs them\n"
    "  --repeat K        K rounds (subject, A, B each, on fresh databases;\n"
    "                    at most 9); the result is the median\n"
    "  --check           exit 1 when a target is missed\n";

static int parse_long(const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min)
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.rows = 1000000,
                       .patients = 10000,
                       .exposed_pct = 10,
                       .seed = 1,
                       .repeat = 1};
    const char *t = getenv("TMPDIR");
    o->tmpdir = t && *t ? t : "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--rows") && v && !parse_long(v, 1, &n)) {
            o->rows = n;
            i++;
        } else if (!strcmp(a, "--patients") && v && !parse_long(v, 1, &n) &&
                   n <= 99999999) {
            o->patients = n;
            i++;
        } else if (!strcmp(a, "--exposed-pct") && v && !parse_long(v, 0, &n) &&
                   n <= 100) {
            o->exposed_pct = (double)n;
            i++;
        } else if (!strcmp(a, "--seed") && v && !parse_long(v, 0, &n)) {
            o->seed = (uint64_t)n;
            i++;
        } else if (!strcmp(a, "--repeat") && v && !parse_long(v, 1, &n) &&
                   n <= MAX_ROUNDS) {
            o->repeat = (int)n;
            i++;
        } else if (!strcmp(a, "--rule") && v) {
            o->rule = v;
            i++;
        } else if (!strcmp(a, "--tmpdir") && v) {
            o->tmpdir = v;
            i++;
        } else if (!strcmp(a, "--anc-only")) {
            o->anc_only = 1;
        } else if (!strcmp(a, "--keep")) {
            o->keep = 1;
        } else if (!strcmp(a, "--check")) {
            o->check = 1;
        } else if (!strcmp(a, "--skip-reference")) {
            o->skip_reference = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        } else {
            fprintf(stderr, "bench_ingest: bad argument '%s'\n%s", a, usage);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Measuring                                                            */
/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A "VmXXX:" line of /proc/self/status, in kB, or -1. */
static long proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            kb = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Bytes this process has passed to write(2) and friends ("wchar" of
 * /proc/self/io): what SQLite wrote to the WAL and the database. */
static double written_mb(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    double mb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "wchar:", 6)) {
            mb = strtod(line + 6, NULL) / 1e6;
            break;
        }
    fclose(f);
    return mb;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static double file_mb(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (double)st.st_size / 1e6;
}

/* ------------------------------------------------------------------ */
/* The generated data                                                   */
/* ------------------------------------------------------------------ */

/* splitmix64: small, fast, and the same sequence on every machine. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(void) /* [0, 1) */
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static long rng_below(long n) /* [0, n) */
{
    return (long)(rng_unit() * (double)n);
}

struct band {
    int permille; /* share of this analyte's rows */
    double lo, hi;
};

struct unit_var {
    const char *unit;
    int permille; /* share of this analyte's rows */
    double scale; /* from the generated value to this unit */
    int decimals;
    const char *ref_low, *ref_high; /* as written in the CSV */
};

struct analyte {
    const char *code, *abbrev, *name;
    struct band bands[4];
    struct unit_var units[3];
};

enum { A_ANC, A_ALC, A_WBC, A_HB, A_PLT, A_ALT, A__COUNT };

/* Values in the first unit; bands below the normal range give the rules
 * something to find (ANC: CTCAE v5 grade 2, 3 and 4 bands). */
static const struct analyte analytes[A__COUNT] = {
    [A_ANC] =
        {"751-8",
         "ANC",
         "Neutrophils [#/volume] in Blood by Automated count",
         {{880, 1.6, 7.5}, {70, 1.0, 1.5}, {40, 0.5, 1.0}, {10, 0.1, 0.5}},
         {{"10*9/L", 800, 1, 2, "2.0", "7.5"},
          {"10*3/uL", 100, 1, 2, "2.0", "7.5"},
          {"cells/mm3", 100, 1000, 0, "2000", "7500"}}},
    [A_ALC] = {"731-0",
               "ALC",
               "Lymphocytes [#/volume] in Blood by Automated count",
               {{900, 1.0, 4.0}, {100, 0.3, 1.0}},
               {{"10*9/L", 1000, 1, 2, "1.0", "4.0"}}},
    [A_WBC] = {"6690-2",
               "WBC",
               "Leukocytes [#/volume] in Blood by Automated count",
               {{900, 4.0, 11.0}, {100, 2.0, 4.0}},
               {{"10*9/L", 1000, 1, 1, "4.0", "11.0"}}},
    [A_HB] = {"718-7",
              "Hb",
              "Hemoglobin [Mass/volume] in Blood",
              {{900, 11.5, 17.0}, {100, 7.5, 11.5}},
              {{"g/dL", 1000, 1, 1, "12.0", "17.5"}}},
    [A_PLT] = {"777-3",
               "PLT",
               "Platelets [#/volume] in Blood by Automated count",
               {{920, 150, 450}, {80, 50, 150}},
               {{"10*9/L", 1000, 1, 0, "150", "400"}}},
    [A_ALT] = {"1742-6",
               "ALT",
               "Alanine aminotransferase [Enzymatic activity/volume] in "
               "Serum or Plasma",
               {{900, 7, 56}, {100, 56, 250}},
               {{"U/L", 1000, 1, 0, "7", "56"}}},
};

/* Share of panels (blood draws) that also carry an ALT. */
#define ALT_PERMILLE 550

struct lab_row {
    double value; /* strtod of value_text: what the pipeline parses */
    double ref_low, ref_high;
    int64_t at;
    uint32_t patient;
    uint8_t analyte, unit;
    char value_text[14];
    char at_text[21]; /* 2025-03-14T09:30:00Z */
};

struct exposure {
    int exposed;
    int has_end;
    int64_t start, end; /* midnight UTC */
};

struct data {
    long rows, patients, nexposed, nmeds, draws;
    struct lab_row *labs;
    struct exposure *exp;
    char (*pid)[24];
    long per_analyte[A__COUNT];
    long per_unit[3];  /* ANC units */
    long anc_grade[5]; /* ANC rows per CTCAE grade band (0-1, 2, 3, 4) */
};

static void format_time(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void format_date(int64_t t, char out[11])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static int pick_permille(int total)
{
    return (int)rng_below(total);
}

static void gen_value(struct lab_row *r, int a)
{
    const struct analyte *an = &analytes[a];
    int u = pick_permille(1000), acc = 0;
    for (int i = 0; i < 4 && an->bands[i].permille; i++) {
        acc += an->bands[i].permille;
        if (u < acc || i == 3 || !an->bands[i + 1].permille) {
            double v = an->bands[i].lo +
                       rng_unit() * (an->bands[i].hi - an->bands[i].lo);
            int w = pick_permille(1000), uacc = 0, ui = 0;
            for (int k = 0; k < 3 && an->units[k].unit; k++) {
                uacc += an->units[k].permille;
                ui = k;
                if (w < uacc)
                    break;
            }
            const struct unit_var *uv = &an->units[ui];
            r->unit = (uint8_t)ui;
            snprintf(r->value_text, sizeof r->value_text, "%.*f", uv->decimals,
                     v * uv->scale);
            r->value = strtod(r->value_text, NULL);
            r->ref_low = strtod(uv->ref_low, NULL);
            r->ref_high = strtod(uv->ref_high, NULL);
            return;
        }
    }
}

/* ANC in cells/mm3, the unit the CTCAE bands are in. */
static double anc_cells(const struct lab_row *r)
{
    return r->value * (r->unit == 2 ? 1 : 1000);
}

static int anc_grade(double cells)
{
    return cells < 500 ? 4 : cells < 1000 ? 3 : cells < 1500 ? 2 : 0;
}

static int generate(const struct opts *o, struct data *d)
{
    memset(d, 0, sizeof *d);
    rng_state = o->seed;
    d->rows = o->rows;
    d->patients = o->patients;
    d->labs = calloc((size_t)o->rows, sizeof *d->labs);
    d->exp = calloc((size_t)o->patients, sizeof *d->exp);
    d->pid = calloc((size_t)o->patients, sizeof *d->pid);
    long *perm = malloc((size_t)o->patients * sizeof *perm);
    if (!d->labs || !d->exp || !d->pid || !perm) {
        free(perm);
        return -1;
    }
    for (long p = 0; p < o->patients; p++) {
        snprintf(d->pid[p], sizeof d->pid[p], "PT%06ld", p + 1);
        perm[p] = p;
    }
    /* Exactly round(patients * pct) exposed patients, chosen at random
     * (partial Fisher-Yates). */
    d->nexposed = lround((double)o->patients * o->exposed_pct / 100.0);
    for (long i = 0; i < d->nexposed; i++) {
        long j = i + rng_below(o->patients - i);
        long t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        struct exposure *e = &d->exp[perm[i]];
        e->exposed = 1;
        /* Starts from six months before the labs to 18 months into them;
         * a quarter stopped after 2 to 13 months. */
        e->start = T0 + (rng_below(720) - 180) * (int64_t)DAY;
        if (rng_below(4) == 0) {
            e->has_end = 1;
            e->end = e->start + (60 + rng_below(340)) * (int64_t)DAY;
        }
    }
    free(perm);
    /* Blood draws in time order: each is one patient's CBC with
     * differential (WBC, ANC, ALC, Hb, PLT at the same instant) plus, in
     * ALT_PERMILLE of draws, an ALT; with --anc-only each draw is one ANC.
     * The last draw is cut at --rows. */
    static const int cbc[] = {A_WBC, A_ANC, A_ALC, A_HB, A_PLT, A_ALT};
    long i = 0;
    while (i < o->rows) {
        uint32_t p = (uint32_t)rng_below(o->patients);
        int64_t at = T0 + (int64_t)((double)i * (double)SPAN / (double)o->rows);
        at -= at % 60;
        char at_text[21];
        format_time(at, at_text);
        int n = o->anc_only ? 1 : 5 + (rng_below(1000) < ALT_PERMILLE);
        d->draws++;
        for (int k = 0; k < n && i < o->rows; k++, i++) {
            struct lab_row *r = &d->labs[i];
            int a = o->anc_only ? A_ANC : cbc[k];
            r->patient = p;
            r->analyte = (uint8_t)a;
            r->at = at;
            memcpy(r->at_text, at_text, sizeof at_text);
            gen_value(r, a);
            d->per_analyte[a]++;
            if (a == A_ANC) {
                d->per_unit[r->unit]++;
                d->anc_grade[anc_grade(anc_cells(r))]++;
            }
        }
    }
    return 0;
}

static void free_data(struct data *d)
{
    free(d->labs);
    free(d->exp);
    free(d->pid);
}

/* Baricitinib spelled the ways feeds spell it: by name, by brand with
 * strength, with an NDC or an ATC code. */
static const char *const bari_drug[][3] = {
    {"baricitinib", "", ""},
    {"Olumiant 2 MG Oral Tablet", "0002-4182-30", "NDC"},
    {"BARICITINIB 4mg", "0002-4479-30", "NDC"},
    {"Olumiant", "L04AF02", "ATC"},
};

static int write_files(const struct opts *o, struct data *d,
                       const char *labs_path, const char *meds_path)
{
    /* Its own PRNG stream, so that the medications do not depend on
     * --rows. */
    rng_state = o->seed ^ 0x6D656473ull;
    FILE *f = fopen(meds_path, "w");
    if (!f)
        return -1;
    fputs("patient_id,drug,drug_code,code_system,start,end,dose,dose_unit,"
          "route\n",
          f);
    char s[11], e[11];
    for (long p = 0; p < d->patients; p++) {
        const struct exposure *x = &d->exp[p];
        /* Methotrexate for most (co-medication in RA), a TNF inhibitor or
         * another JAK inhibitor for some of the others: drugs that must
         * not count as baricitinib. */
        if (rng_below(10) < 7) {
            format_date(T0 - rng_below(720) * (int64_t)DAY, s);
            fprintf(f, "%s,Methotrexate 2.5 MG Oral Tablet,,,%s,,15,mg,oral\n",
                    d->pid[p], s);
            d->nmeds++;
        }
        if (!x->exposed) {
            long r = rng_below(10);
            if (r <= 3) {
                format_date(T0 + (rng_below(720) - 180) * (int64_t)DAY, s);
                fprintf(f, "%s,%s,,,%s,,%s,mg,%s\n", d->pid[p],
                        r < 3 ? "adalimumab" : "Xeljanz (tofacitinib) 5 MG", s,
                        r < 3 ? "40" : "5", r < 3 ? "subcutaneous" : "oral");
                d->nmeds++;
            }
            continue;
        }
        const char *const *b = bari_drug[rng_below(4)];
        format_date(x->start, s);
        if (x->has_end)
            format_date(x->end, e);
        else
            e[0] = '\0';
        fprintf(f, "%s,%s,%s,%s,%s,%s,%s,mg,oral\n", d->pid[p], b[0], b[1],
                b[2], s, e, strstr(b[0], "4") ? "4" : "2");
        d->nmeds++;
    }
    if (fclose(f))
        return -1;

    f = fopen(labs_path, "w");
    if (!f)
        return -1;
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fputs("patient_id,code,code_system,name,value,unit,observed_at,ref_low,"
          "ref_high\n",
          f);
    for (long i = 0; i < d->rows; i++) {
        const struct lab_row *r = &d->labs[i];
        const struct analyte *a = &analytes[r->analyte];
        const struct unit_var *u = &a->units[r->unit];
        fprintf(f, "%s,%s,LN,%s,%s,%s,%s,%s,%s\n", d->pid[r->patient], a->code,
                a->name, r->value_text, u->unit, r->at_text, u->ref_low,
                u->ref_high);
    }
    if (ferror(f) | fclose(f))
        return -1;
    return 0;
}

/* What the neutropenia rule should do with these rows, counted here
 * without Lua or SQLite: an ANC of CTCAE grade >= 2 while exposed (from
 * the start instant to the end of the last day plus 28 days of washout,
 * the default) opens one alert per patient, escalates it when the grade
 * rises, and repeats otherwise. */
struct expected {
    long opened, escalated, repeated;
};

static void expect_alerts(const struct data *d, struct expected *x)
{
    memset(x, 0, sizeof *x);
    int *grade = calloc((size_t)d->patients, sizeof *grade);
    if (!grade) {
        x->opened = -1;
        return;
    }
    for (long i = 0; i < d->rows; i++) {
        const struct lab_row *r = &d->labs[i];
        if (r->analyte != A_ANC)
            continue;
        const struct exposure *e = &d->exp[r->patient];
        if (!e->exposed || r->at < e->start)
            continue;
        if (e->has_end && r->at >= e->end - e->end % DAY + 29LL * DAY)
            continue;
        int g = anc_grade(anc_cells(r));
        if (g < 2)
            continue;
        int *cur = &grade[r->patient];
        if (!*cur)
            x->opened++;
        else if (g > *cur)
            x->escalated++;
        else
            x->repeated++;
        if (g > *cur)
            *cur = g;
    }
    free(grade);
}

/* ------------------------------------------------------------------ */
/* REFERENCE: raw SQLite insert                                         */
/* ------------------------------------------------------------------ */

struct ref_result {
    double secs, cpu, written_mb;
    long rows;
    char error[512];
};

/* The same INSERT store.c prepares for observations. */
static const char ref_insert[] =
    "INSERT INTO observations (patient_id, code, code_system, name, "
    "value_num, value_text, unit, ref_low, ref_high, flag, status, "
    "observed_at, message_id, line) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/* tx_rows rows per transaction; 0 = all rows in one transaction. */
static int run_reference(const struct data *d, const char *db_path,
                         long tx_rows, struct ref_result *res)
{
    long tx = tx_rows > 0 ? tx_rows : d->rows;
    memset(res, 0, sizeof *res);
    pv_store *s;
    if (pv_store_open(db_path, &s, res->error, sizeof res->error))
        return -1;
    sqlite3 *db = pv_store_db(s);
    sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
    int64_t msg = 0;
    /* Raw SQLite: its own automatic checkpoint inside COMMIT (every 1000
     * WAL pages), not the store's checkpoint thread. */
    sqlite3_wal_autocheckpoint(db, 1000);
    int rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = pv_store_message_add(s, "file", "bench-reference", "CSV",
                                  "labs.csv", NULL, 0, "accepted", &msg, NULL)
                 ? SQLITE_ERROR
                 : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, ref_insert, -1, &ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL);
    double t0 = now_s(), c0 = cpu_s(), w0 = written_mb();
    for (long i = 0; rc == SQLITE_OK && i < d->rows; i++) {
        const struct lab_row *r = &d->labs[i];
        const struct analyte *a = &analytes[r->analyte];
        if (i % tx == 0) {
            rc = sqlite3_step(begin) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            sqlite3_reset(begin);
            if (rc)
                break;
        }
        sqlite3_bind_text(ins, 1, d->pid[r->patient], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, a->code, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, "LN", 2, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_double(ins, 5, r->value);
        sqlite3_bind_text(ins, 6, r->value_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, a->units[r->unit].unit, -1, SQLITE_STATIC);
        sqlite3_bind_double(ins, 8, r->ref_low);
        sqlite3_bind_double(ins, 9, r->ref_high);
        sqlite3_bind_null(ins, 10);
        sqlite3_bind_text(ins, 11, "F", 1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 12, r->at_text, 20, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 13, msg);
        sqlite3_bind_int64(ins, 14, i + 2); /* the CSV line: header is 1 */
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = SQLITE_ERROR;
        sqlite3_reset(ins);
        if (!rc && (i % tx == tx - 1 || i == d->rows - 1)) {
            rc = sqlite3_step(commit) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            sqlite3_reset(commit);
        }
        if (!rc)
            res->rows++;
    }
    res->secs = now_s() - t0;
    res->cpu = cpu_s() - c0;
    res->written_mb = written_mb() - w0;
    if (rc)
        snprintf(res->error, sizeof res->error, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    pv_store_close(s);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* SUBJECT: the pipeline, in its own process                             */
/* ------------------------------------------------------------------ */

struct file_result {
    double secs, cpu, written_mb;
    long stored, rejected;
    pv_alerts_counts alerts;
};

struct subject_result {
    int ok;
    char error[1024];
    size_t nrules;
    char rule_names[2048]; /* comma-separated */
    double open_secs;
    struct file_result meds, labs;
    pv_rules_stats stats_meds, stats; /* after medications, at the end */
    long hwm_open_kb, hwm_meds_kb, hwm_kb, maxrss_kb, rss_end_kb;
    double wal_mb;
};

static int ingest_one(pv_ingest *p, const char *path, const char *name,
                      struct file_result *fr, struct subject_result *res)
{
    pv_file_report rep;
    double t0 = now_s(), c0 = cpu_s(), w0 = written_mb();
    /* What cmd_ingest in core/main.c does for each file. */
    int rc = pv_ingest_begin(p);
    if (!rc)
        rc = pv_ingest_file(p, path, name, &rep);
    else
        memset(&rep, 0, sizeof rep);
    if (!rc)
        rc = pv_ingest_commit(p);
    fr->secs = now_s() - t0;
    fr->cpu = cpu_s() - c0;
    fr->written_mb = written_mb() - w0;
    if (rc) {
        pv_ingest_rollback(p);
        snprintf(res->error, sizeof res->error, "%s: not stored: %s (%s)", name,
                 pv_strerror(rc), pv_store_errmsg(pv_ingest_store(p)));
    }
    pv_alerts_counts_take(pv_ingest_alerts(p), &fr->alerts);
    fr->stored = rep.stored;
    fr->rejected = rep.rejected;
    if (!rc && (rep.rejected || rep.failed || rep.duplicate))
        snprintf(res->error, sizeof res->error,
                 "%s: %ld rejected%s%s; first errors:\n%.700s", name,
                 rep.rejected, rep.failed ? ", failed" : "",
                 rep.duplicate ? ", duplicate" : "",
                 rep.errors.len ? pv_buf_cstr(&rep.errors) : "");
    pv_file_report_free(&rep);
    return rc;
}

static int replace_str(char **dst, const char *s)
{
    char *c = strdup(s);
    if (!c)
        return -1;
    free(*dst);
    *dst = c;
    return 0;
}

static int replace_list(pv_strlist *l, const char *s)
{
    pv_strlist_free(l);
    memset(l, 0, sizeof *l);
    return pv_strlist_add(l, s);
}

/* Runs in the exec'd child, with the working directory set to dir (which
 * holds no pvwatch.lua, so pv_config_load(NULL) gives the defaults). */
static void subject(const char *dir, const char *only_rule,
                    struct subject_result *res)
{
    memset(res, 0, sizeof *res);
    if (chdir(dir)) {
        snprintf(res->error, sizeof res->error, "%s: %s", dir, strerror(errno));
        return;
    }
    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    double t0 = now_s();
    int rc = pv_config_load(NULL, &cfg, &errors);
    if (!rc && (replace_list(&cfg.plugins, PV_SOURCE_DIR "/plugins") ||
                replace_list(&cfg.scripts, PV_SOURCE_DIR "/scripts") ||
                replace_str(&cfg.alert_log, "alerts.jsonl") ||
                replace_str(&cfg.database, "pipeline.db")))
        rc = PV_ENOMEM;
    pv_ingest *p = NULL;
    if (!rc)
        rc = pv_ingest_open(&cfg, NULL, 0, &p, &errors);
    res->open_secs = now_s() - t0;
    if (rc) {
        snprintf(res->error, sizeof res->error, "opening the pipeline: %s: %s",
                 pv_strerror(rc), pv_buf_cstr(&errors));
        pv_buf_free(&errors);
        pv_config_free(&cfg);
        return;
    }
    pv_buf_free(&errors);
    pv_rules *rules = pv_ingest_rules(p);
    res->nrules = pv_rules_count(rules);
    size_t used = 0;
    for (size_t i = 0; i < res->nrules && used < sizeof res->rule_names; i++)
        used += (size_t)snprintf(res->rule_names + used,
                                 sizeof res->rule_names - used, "%s%s",
                                 i ? ", " : "", pv_rules_name(rules, i));
    if (only_rule)
        pv_rules_only(rules, only_rule);
    res->hwm_open_kb = proc_status_kb("VmHWM");
    rc = ingest_one(p, "medications.csv", "medications.csv", &res->meds, res);
    res->hwm_meds_kb = proc_status_kb("VmHWM");
    pv_rules_stats_get(rules, &res->stats_meds);
    if (!rc && !res->error[0])
        rc = ingest_one(p, "labs.csv", "labs.csv", &res->labs, res);
    pv_rules_stats_get(rules, &res->stats);
    res->hwm_kb = proc_status_kb("VmHWM");
    res->maxrss_kb = maxrss_kb();
    res->rss_end_kb = proc_status_kb("VmRSS");
    res->wal_mb = file_mb("pipeline.db-wal");
    res->ok = !rc && !res->error[0];
    pv_ingest_close(p);
    pv_config_free(&cfg);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *c = buf;
    while (len) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *c = buf;
    while (len) {
        ssize_t n = read(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The pipeline's process. It is started (fork + exec of this program)
 * before anything big is allocated and then waits for a byte on a pipe:
 * ru_maxrss survives exec and would otherwise count the parent's generated
 * arrays, which a forked child maps until it execs. */
struct child {
    pid_t pid;
    int go_fd;     /* parent writes one byte: files are ready */
    int result_fd; /* child writes its struct subject_result */
};

static int start_subject(const char *dir, const char *only_rule,
                         struct child *c)
{
    /* This program's own path: readlink rather than exec of
     * /proc/self/exe, so that valgrind --trace-children follows it. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    int go[2], result[2];
    if (pipe(go))
        return -1;
    if (pipe(result)) {
        close(go[0]);
        close(go[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(go[1]);
        close(result[0]);
        char gofd[16], resfd[16];
        snprintf(gofd, sizeof gofd, "%d", go[0]);
        snprintf(resfd, sizeof resfd, "%d", result[1]);
        execl(self, "bench_ingest", "--subject-child", dir, gofd, resfd,
              only_rule ? only_rule : "", (char *)NULL);
        _exit(127);
    }
    close(go[0]);
    close(result[1]);
    *c = (struct child){.pid = pid, .go_fd = go[1], .result_fd = result[0]};
    return 0;
}

/* go = 0 tells the child to exit without running (generation failed). */
static void finish_subject(struct child *c, int go, struct subject_result *res,
                           long *wait4_maxrss_kb)
{
    memset(res, 0, sizeof *res);
    int rd = -1;
    if (go && write_all(c->go_fd, "g", 1) == 0) {
        close(c->go_fd);
        rd = read_all(c->result_fd, res, sizeof *res);
    } else {
        close(c->go_fd);
    }
    close(c->result_fd);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (wait4(c->pid, &status, 0, &ru) < 0)
        status = -1;
    *wait4_maxrss_kb = ru.ru_maxrss;
    if (go && (rd || !WIFEXITED(status) || WEXITSTATUS(status))) {
        if (rd || !res->error[0])
            snprintf(res->error, sizeof res->error,
                     "the pipeline process ended abnormally (wait status "
                     "%d)",
                     status);
        res->ok = 0;
    }
}

/* Main of the child: wait for the parent's go, run, report. */
static int subject_child(const char *dir, const char *gofd, const char *resfd,
                         const char *only_rule)
{
    int go = (int)strtol(gofd, NULL, 10);
    int fd = (int)strtol(resfd, NULL, 10);
    /* Named for top and perf. */
    prctl(PR_SET_NAME, "pv-pipeline", 0, 0, 0);
    char b;
    if (read_all(go, &b, 1))
        return 0; /* the parent gave up */
    close(go);
    struct subject_result res;
    subject(dir, only_rule, &res);
    return write_all(fd, &res, sizeof res) || !res.ok;
}

/* ------------------------------------------------------------------ */
/* Cross-checks                                                         */
/* ------------------------------------------------------------------ */

/* Aggregates over observations: identical in both databases when both
 * stored the same rows. */
static int db_digest(const char *path, char *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(
            db,
            "SELECT count(*), count(DISTINCT patient_id), "
            "printf('%.6f', total(value_num)), sum(length(value_text)), "
            "printf('%.3f', total(ref_low) + total(ref_high)), "
            "sum(length(name)), sum(length(unit)), sum(line), "
            "min(observed_at), max(observed_at), "
            "sum(unicode(substr(observed_at, 15, 1))), "
            "sum(unicode(substr(code, 1, 1)) * line % 1000003) "
            "FROM observations",
            -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        size_t n = 0;
        for (int i = 0; i < sqlite3_column_count(st) && n < cap; i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "|" : "",
                                  t ? (const char *)t : "NULL");
        }
        ok = 1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok ? 0 : -1;
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* Report                                                               */
/* ------------------------------------------------------------------ */

static double mb(long kb)
{
    return (double)kb / 1024.0;
}

static const char *verdict(int pass)
{
    return pass ? "PASS" : "FAIL";
}

/* Alerts per rule in the pipeline's database; the neutropenia rule's
 * figures are compared with the count made from the generated rows. */
static void print_rule_alerts(const char *db_path, const struct expected *x)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(
            db,
            "SELECT a.rule, count(*), sum(a.occurrences), "
            "(SELECT count(*) FROM alert_actions x JOIN alerts y "
            "ON y.id = x.alert_id WHERE y.rule = a.rule "
            "AND x.action = 'escalated') "
            "FROM alerts a GROUP BY a.rule ORDER BY a.rule",
            -1, &st, NULL) != SQLITE_OK) {
        printf("  alerts per rule: cannot read %s: %s\n", db_path,
               sqlite3_errmsg(db));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return;
    }
    int neutropenia_seen = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *rule = (const char *)sqlite3_column_text(st, 0);
        long opened = sqlite3_column_int64(st, 1);
        long occ = sqlite3_column_int64(st, 2);
        long esc = sqlite3_column_int64(st, 3);
        long rep = occ - opened - esc;
        int is_n = rule && !strcmp(rule, "baricitinib.neutropenia");
        neutropenia_seen |= is_n;
        printf("    %-36s %6ld opened, %6ld escalated, %7ld repeated",
               rule ? rule : "?", opened, esc, rep);
        if (is_n)
            printf("  (counted from the generated rows: %ld, %ld, %ld: %s)",
                   x->opened, x->escalated, x->repeated,
                   opened == x->opened && esc == x->escalated &&
                           rep == x->repeated
                       ? "same"
                       : "MISMATCH");
        printf("\n");
    }
    if (!neutropenia_seen && x->opened)
        printf("    baricitinib.neutropenia: no alerts, but the generated "
               "rows should open %ld\n",
               x->opened);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void print_ref(const char *label, const struct ref_result *rr)
{
    if (rr->error[0])
        printf("  ERROR: %s\n", rr->error);
    printf("  %s: %ld rows in %.3f s (cpu %.3f s, %.0f MB written) = %.0f "
           "rows/s\n",
           label, rr->rows, rr->secs, rr->cpu, rr->written_mb,
           rr->secs > 0 ? (double)rr->rows / rr->secs : 0);
}

static double rate(long rows, double secs)
{
    return secs > 0 ? (double)rows / secs : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One round: the pipeline, then references A and B, on fresh databases. */
struct round {
    struct subject_result sr;
    long wait4_kb;
    struct ref_result a, b;
    int same_rows; /* 1 yes, 0 no, -1 not compared */
};

static long peak_kb(const struct subject_result *sr)
{
    return sr->hwm_kb > sr->maxrss_kb ? sr->hwm_kb : sr->maxrss_kb;
}

static void remove_outputs(const char *dir)
{
    static const char *const names[] = {
        "pipeline.db",      "pipeline.db-wal",      "pipeline.db-shm",
        "reference.db",     "reference.db-wal",     "reference.db-shm",
        "reference-1tx.db", "reference-1tx.db-wal", "reference-1tx.db-shm",
        "alerts.jsonl"};
    char p[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
}

static void print_subject(const struct opts *o, const struct data *d,
                          const struct round *r, const struct expected *want,
                          const char *sub_path, const char *log_path)
{
    const struct subject_result *sr = &r->sr;
    printf("SUBJECT: the pipeline (pv_config_load(NULL) defaults, rules from "
           "%s/plugins;\n  pv_ingest_begin/file/commit per file as "
           "`pvwatch ingest medications.csv labs.csv`)\n",
           PV_SOURCE_DIR);
    if (!sr->ok)
        printf("  ERROR: %s\n", sr->error[0] ? sr->error : "(no message)");
    printf("  open (config, store, rules) %.3f s; %zu rules loaded%s%s: %s\n",
           sr->open_secs, sr->nrules, o->rule ? ", only this one run: " : "",
           o->rule ? o->rule : "", sr->rule_names);
    printf("  medications.csv: %ld stored, %ld rejected in %.3f s\n",
           sr->meds.stored, sr->meds.rejected, sr->meds.secs);
    printf("  labs.csv: %ld stored, %ld rejected in %.3f s (cpu %.3f s, %.0f "
           "MB written) = %.0f rows/s\n",
           sr->labs.stored, sr->labs.rejected, sr->labs.secs, sr->labs.cpu,
           sr->labs.written_mb, rate(sr->labs.stored, sr->labs.secs));
    printf("  alerts, all rules: %ld opened, %ld escalated, %ld repeated\n",
           sr->labs.alerts.opened + sr->meds.alerts.opened,
           sr->labs.alerts.escalated + sr->meds.alerts.escalated,
           sr->labs.alerts.repeated + sr->meds.alerts.repeated);
    print_rule_alerts(sub_path, want);
    printf("  alert log: %ld lines\n", count_lines(log_path));
    printf("  rule stats (pv_rules_stats_get): labs.csv %" PRIu64
           " calls, %" PRIu64 " alerts, %" PRIu64 " errors (ANC rows: %ld); "
           "medications.csv %" PRIu64 " calls, %" PRIu64 " alerts, %" PRIu64
           " errors\n",
           sr->stats.calls - sr->stats_meds.calls,
           sr->stats.alerts - sr->stats_meds.alerts,
           sr->stats.errors - sr->stats_meds.errors, d->per_analyte[A_ANC],
           sr->stats_meds.calls, sr->stats_meds.alerts, sr->stats_meds.errors);
    printf("  peak RSS: VmHWM %.1f MB, ru_maxrss %.1f MB (parent's wait4: "
           "%.1f MB); VmHWM after open %.1f MB, after medications %.1f MB; "
           "VmRSS at end %.1f MB\n",
           mb(sr->hwm_kb), mb(sr->maxrss_kb), mb(r->wait4_kb),
           mb(sr->hwm_open_kb), mb(sr->hwm_meds_kb), mb(sr->rss_end_kb));
    printf("  pipeline.db %.1f MB; its WAL before close %.1f MB (disk, not "
           "memory)\n\n",
           file_mb(sub_path), sr->wal_mb);
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--subject-child"))
        return subject_child(argv[2], argv[3], argv[4],
                             argv[5][0] ? argv[5] : NULL);
    struct opts o;
    if (parse_opts(argc, argv, &o))
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A pipeline process that died must not kill us through the pipe. */
    signal(SIGPIPE, SIG_IGN);

    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/pvbench.XXXXXX", o.tmpdir);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_ingest: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char labs_path[PATH_MAX + 32], meds_path[PATH_MAX + 32],
        ref_path[PATH_MAX + 32], ref1_path[PATH_MAX + 32],
        sub_path[PATH_MAX + 32], log_path[PATH_MAX + 32];
    snprintf(labs_path, sizeof labs_path, "%s/labs.csv", dir);
    snprintf(meds_path, sizeof meds_path, "%s/medications.csv", dir);
    snprintf(ref_path, sizeof ref_path, "%s/reference.db", dir);
    snprintf(ref1_path, sizeof ref1_path, "%s/reference-1tx.db", dir);
    snprintf(sub_path, sizeof sub_path, "%s/pipeline.db", dir);
    snprintf(log_path, sizeof log_path, "%s/alerts.jsonl", dir);

    /* One waiting pipeline process per round, all started while this
     * process is still small (see struct child). */
    struct child children[MAX_ROUNDS];
    struct round *rounds = calloc((size_t)o.repeat, sizeof *rounds);
    int started = 0;
    while (rounds && started < o.repeat &&
           start_subject(dir, o.rule, &children[started]) == 0)
        started++;
    if (!rounds || started < o.repeat) {
        fprintf(stderr,
                "bench_ingest: cannot start the pipeline process: "
                "%s\n",
                strerror(errno));
        for (int i = 0; i < started; i++) {
            long k;
            struct subject_result unused;
            finish_subject(&children[i], 0, &unused, &k);
        }
        free(rounds);
        remove_dir(dir);
        return 1;
    }

    printf("pvwatch bench_ingest: sqlite %s, %s build\n", sqlite3_libversion(),
#ifdef NDEBUG
           "optimised (NDEBUG)"
#else
           "NOT a Release build (NDEBUG unset): figures are not meaningful"
#endif
    );
    printf("seed %" PRIu64 ", %ld lab rows, %ld patients, mode %s, %d "
           "round%s\n",
           o.seed, o.rows, o.patients,
           o.anc_only ? "--anc-only (every row is ANC 751-8)"
                      : "mixed panels (CBC with differential + ALT)",
           o.repeat, o.repeat == 1 ? "" : "s");
    printf("temp dir %s%s\n\n", dir, o.keep ? " (kept)" : " (removed at end)");

    /* Generation. */
    struct data d;
    double t = now_s();
    if (generate(&o, &d) || write_files(&o, &d, labs_path, meds_path)) {
        fprintf(stderr, "bench_ingest: generating the data failed: %s\n",
                strerror(errno));
        for (int i = 0; i < started; i++) {
            long k;
            struct subject_result unused;
            finish_subject(&children[i], 0, &unused, &k);
        }
        free(rounds);
        free_data(&d);
        remove_dir(dir);
        return 1;
    }
    struct expected want;
    expect_alerts(&d, &want);
    printf("GENERATED in %.2f s\n", now_s() - t);
    printf("  labs.csv %.1f MB: %ld rows in %ld blood draws over 730 days "
           "from 2025-01-01, in time order\n",
           file_mb(labs_path), d.rows, d.draws);
    printf("  lab mix:");
    for (int a = 0; a < A__COUNT; a++)
        if (d.per_analyte[a])
            printf(" %s %s %.1f%%;", analytes[a].abbrev, analytes[a].code,
                   100.0 * (double)d.per_analyte[a] / (double)d.rows);
    printf("\n");
    if (d.per_analyte[A_ANC]) {
        double n = (double)d.per_analyte[A_ANC];
        printf("  ANC units: 10*9/L %.0f%%, 10*3/uL %.0f%%, cells/mm3 "
               "%.0f%%; ANC grade >= 2: %.1f%% of ANC rows (g2 %.1f%%, "
               "g3 %.1f%%, g4 %.1f%%)\n",
               100 * d.per_unit[0] / n, 100 * d.per_unit[1] / n,
               100 * d.per_unit[2] / n,
               100 * (d.anc_grade[2] + d.anc_grade[3] + d.anc_grade[4]) / n,
               100 * d.anc_grade[2] / n, 100 * d.anc_grade[3] / n,
               100 * d.anc_grade[4] / n);
    }
    printf("  medications.csv %.2f MB: %ld rows; %ld patients (%.1f%%) on "
           "baricitinib\n\n",
           file_mb(meds_path), d.nmeds, d.nexposed,
           100.0 * (double)d.nexposed / (double)d.patients);

    int failed = 0;
    for (int i = 0; i < o.repeat; i++) {
        struct round *r = &rounds[i];
        remove_outputs(dir);
        /* Each measured phase starts with the dirty pages of the previous
         * one written back, so that it does not pay for them. */
        sync();
        finish_subject(&children[i], 1, &r->sr, &r->wait4_kb);
        failed |= !r->sr.ok;
        if (i == 0)
            print_subject(&o, &d, r, &want, sub_path, log_path);
        else if (!r->sr.ok)
            printf("round %d: pipeline ERROR: %s\n", i + 1, r->sr.error);
        r->same_rows = -1;
        if (o.skip_reference)
            continue;
        if (i == 0)
            printf("REFERENCE: raw SQLite insert of the same rows\n"
                   "  pv_store_open on a fresh file (schema, indexes, WAL, "
                   "cache_size of the store), then PRAGMA "
                   "synchronous=NORMAL;\n"
                   "  one prepared INSERT INTO observations (the 14 columns "
                   "store.c binds), values from in-memory arrays\n"
                   "  (SQLITE_STATIC binds, no CSV); no patients upsert, no "
                   "rules\n");
        sync();
        failed |= run_reference(&d, ref_path, REF_TX_ROWS, &r->a) != 0;
        sync();
        failed |= run_reference(&d, ref1_path, 0, &r->b) != 0;
        char a[1024] = "", b[1024] = "";
        int da = db_digest(sub_path, a, sizeof a);
        int db = db_digest(ref_path, b, sizeof b);
        r->same_rows = !da && !db && !strcmp(a, b);
        if (i == 0) {
            print_ref("A, the reference (BEGIN/COMMIT every 1000 rows)", &r->a);
            print_ref("B, for information (all rows in one transaction, "
                      "like the pipeline)",
                      &r->b);
            printf("  same observations in pipeline.db and reference.db "
                   "(count, sums of values, ranges, lines, times): %s\n\n",
                   r->same_rows ? "yes" : "NO");
        } else if (r->a.error[0] || r->b.error[0]) {
            printf("round %d: reference ERROR: %s%s\n", i + 1, r->a.error,
                   r->b.error);
        }
        if (!r->same_rows) {
            printf("    pipeline:  %s\n    reference: %s\n\n", a, b);
            failed = 1;
        }
    }

    /* Per round, then the medians. */
    double v_sub[MAX_ROUNDS], v_a[MAX_ROUNDS], v_b[MAX_ROUNDS],
        v_ra[MAX_ROUNDS], v_rb[MAX_ROUNDS], v_csub[MAX_ROUNDS],
        v_ca[MAX_ROUNDS], v_cb[MAX_ROUNDS];
    long peak = 0;
    if (o.repeat > 1 || o.skip_reference)
        printf("ROUNDS (wall-clock rows/s; the ratio is within the round)\n");
    for (int i = 0; i < o.repeat; i++) {
        const struct round *r = &rounds[i];
        v_sub[i] = rate(r->sr.labs.stored, r->sr.labs.secs);
        v_a[i] = rate(r->a.rows, r->a.secs);
        v_b[i] = rate(r->b.rows, r->b.secs);
        v_ra[i] = v_a[i] > 0 ? v_sub[i] / v_a[i] : 0;
        v_rb[i] = v_b[i] > 0 ? v_sub[i] / v_b[i] : 0;
        v_csub[i] = rate(r->sr.labs.stored, r->sr.labs.cpu);
        v_ca[i] = rate(r->a.rows, r->a.cpu);
        v_cb[i] = rate(r->b.rows, r->b.cpu);
        if (peak_kb(&r->sr) > peak)
            peak = peak_kb(&r->sr);
        if (o.repeat == 1 && !o.skip_reference)
            continue;
        printf("  round %d: subject %.0f", i + 1, v_sub[i]);
        if (!o.skip_reference)
            printf(", A %.0f, B %.0f; ratio to A %.3f, to B %.3f; same "
                   "rows %s",
                   v_a[i], v_b[i], v_ra[i], v_rb[i],
                   r->same_rows ? "yes" : "NO");
        printf("; peak RSS %.1f MB\n", mb(peak_kb(&r->sr)));
    }
    int n = o.repeat;
    double m_sub = median(v_sub, n), m_a = median(v_a, n), m_b = median(v_b, n),
           m_ra = median(v_ra, n), m_rb = median(v_rb, n),
           m_csub = median(v_csub, n), m_ca = median(v_ca, n),
           m_cb = median(v_cb, n);
    int ratio_ok = m_a > 0 && m_ra >= TARGET_RATIO;
    int rss_ok = !failed && peak > 0 && peak < TARGET_RSS_KB;
    const char *med = n > 1 ? "median " : "";
    printf("%sRESULT (%ld rows, %s, seed %" PRIu64 ", %d round%s)\n",
           o.repeat > 1 || o.skip_reference ? "\n" : "", o.rows,
           o.anc_only ? "--anc-only" : "mixed", o.seed, n, n > 1 ? "s" : "");
    if (o.skip_reference) {
        printf("  subject %s%.0f rows/s; ratio not measured "
               "(--skip-reference)\n",
               med, m_sub);
    } else {
        printf("  %ssubject %.0f rows/s; reference A %.0f rows/s; "
               "B %.0f rows/s\n",
               med, m_sub, m_a, m_b);
        printf("  %sratio subject/reference A = %.3f   (target >= %.1f) %s\n",
               med, m_ra, TARGET_RATIO, verdict(ratio_ok));
        printf("  %sratio subject/B (one transaction, information) = %.3f\n",
               med, m_rb);
        /* Rows per CPU second: less sensitive to other load on the
         * machine and to disk waits than the wall-clock ratio. */
        printf("  by CPU time (information): %ssubject %.0f rows/cpu-s, "
               "A %.0f, B %.0f; ratio to A %.3f, to B %.3f\n",
               med, m_csub, m_ca, m_cb, m_ca > 0 ? m_csub / m_ca : 0,
               m_cb > 0 ? m_csub / m_cb : 0);
    }
    printf("  pipeline peak RSS = %.1f MB, max(VmHWM, ru_maxrss)%s   "
           "(target < %ld MB) %s\n",
           mb(peak), n > 1 ? " over the rounds" : "", TARGET_RSS_KB / 1024,
           verdict(rss_ok));

    free(rounds);
    free_data(&d);
    if (!o.keep)
        remove_dir(dir);
    if (failed)
        return 1;
    if (o.check && (!rss_ok || (!o.skip_reference && !ratio_ok)))
        return 1;
    return 0;
}
