/* pvwatch report disproportionality (issue 18): the 2x2 table of every
 * (drug, event) pair over spontaneous reports, with PRR, chi-square, ROR,
 * IC and EBGM (core/stats.c).
 *
 * Input: CSV files of `case_id,drug,event` rows (a header row with those
 * names is skipped). The rows of one case must be together, as an export
 * ordered by case gives them; a case that comes back after another is an
 * error naming both lines, because counting it twice would bias every
 * figure. Counting is by report: a case that names a drug twice counts
 * once. Memory grows with the distinct drugs, events and pairs and with
 * the case ids seen (8 bytes each), never with the rows.
 *
 * Not yet: openFDA drug-event JSON input and `report cohort` (issue 18
 * note). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "csv.h"
#include "stats.h"

static const char usage_report[] =
    "usage: pvwatch report disproportionality FILE... [--drug NAME]\n"
    "           [--min-count N] [--prior A1,B1,A2,B2,P] [--format "
    "text|csv|json]\n"
    "\n"
    "Reads spontaneous reports as CSV rows case_id,drug,event (the rows of\n"
    "a case together) and prints, for each (drug, event) pair with at least\n"
    "N reports (default 3): a, b, c, d (a = drug and event, b = drug and\n"
    "other events, c = other drugs and event, d = the rest), PRR with 95%\n"
    "CI and Yates chi-square (Evans: a >= 3, PRR >= 2, chi2 >= 4), ROR with\n"
    "95% CI, IC with IC025/IC975, and EBGM with EB05/EB95, sorted by EB05.\n"
    "The EBGM prior is fitted by maximum likelihood over every pair unless\n"
    "--prior gives it. --drug keeps the pairs of that drug "
    "(case-insensitive).\n"
    "Spontaneous reports are not incidence: see docs/reports.md.\n"
    "Exit status: 0 ok, 1 unreadable or inconsistent input, 2 usage.\n";

/* Interned names: open addressing over FNV-1a hashes. */
struct names {
    char **str;
    uint32_t *slot; /* index + 1, 0 = empty */
    size_t count, cap, slots;
};

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static int names_grow(struct names *t)
{
    size_t slots = t->slots ? t->slots * 2 : 1024;
    uint32_t *s = calloc(slots, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < t->count; i++) {
        uint64_t h = fnv(t->str[i], strlen(t->str[i]));
        size_t j = h & (slots - 1);
        while (s[j])
            j = (j + 1) & (slots - 1);
        s[j] = (uint32_t)(i + 1);
    }
    free(t->slot);
    t->slot = s;
    t->slots = slots;
    return 0;
}

/* The id of s[0..n), added when new; -1 when out of memory. */
static long names_id(struct names *t, const char *s, size_t n)
{
    if (2 * (t->count + 1) > t->slots && names_grow(t))
        return -1;
    size_t j = fnv(s, n) & (t->slots - 1);
    for (; t->slot[j]; j = (j + 1) & (t->slots - 1)) {
        const char *x = t->str[t->slot[j] - 1];
        if (strlen(x) == n && !memcmp(x, s, n))
            return (long)t->slot[j] - 1;
    }
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        char **p = realloc(t->str, cap * sizeof *p);
        if (!p)
            return -1;
        t->str = p;
        t->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, n);
    copy[n] = 0;
    t->str[t->count] = copy;
    t->slot[j] = (uint32_t)(t->count + 1);
    return (long)t->count++;
}

static void names_free(struct names *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->str[i]);
    free(t->str);
    free(t->slot);
}

/* 64-bit keys to counts (pairs), or to lines (finished cases). */
struct map {
    uint64_t *key;
    long *val;
    size_t count, slots;
};

static long *map_at(struct map *m, uint64_t key, int add)
{
    if (add && 2 * (m->count + 1) > m->slots) {
        size_t slots = m->slots ? m->slots * 2 : 4096;
        uint64_t *k = malloc(slots * sizeof *k);
        long *v = malloc(slots * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return NULL;
        }
        memset(k, 0xff, slots * sizeof *k);
        for (size_t i = 0; i < m->slots; i++) {
            if (m->key[i] == UINT64_MAX)
                continue;
            size_t j = (m->key[i] * 0x9e3779b97f4a7c15u) >> 20 & (slots - 1);
            while (k[j] != UINT64_MAX)
                j = (j + 1) & (slots - 1);
            k[j] = m->key[i];
            v[j] = m->val[i];
        }
        free(m->key);
        free(m->val);
        m->key = k, m->val = v, m->slots = slots;
    }
    if (!m->slots)
        return NULL;
    size_t j = (key * 0x9e3779b97f4a7c15u) >> 20 & (m->slots - 1);
    for (; m->key[j] != UINT64_MAX; j = (j + 1) & (m->slots - 1))
        if (m->key[j] == key)
            return &m->val[j];
    if (!add)
        return NULL;
    m->key[j] = key;
    m->val[j] = 0;
    m->count++;
    return &m->val[j];
}

struct ids {
    long *v;
    size_t n, cap;
};

static int ids_add_unique(struct ids *s, long id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == id)
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        long *p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return -1;
        s->v = p, s->cap = cap;
    }
    s->v[s->n++] = id;
    return 0;
}

struct table {
    struct names drugs, events;
    struct map pairs, cases;
    long *n_drug, *n_event; /* reports naming each */
    size_t n_drug_cap, n_event_cap;
    long reports;
    /* the case being read */
    char *case_id;
    long case_line;
    struct ids cur_drugs, cur_events;
    /* reading */
    const char *file;
    long rows, bad_rows;
    int failed, header_done;
};

static int bump(long **arr, size_t *cap, long id)
{
    if ((size_t)id >= *cap) {
        size_t n = *cap ? *cap : 256;
        while (n <= (size_t)id)
            n *= 2;
        long *p = realloc(*arr, n * sizeof *p);
        if (!p)
            return -1;
        memset(p + *cap, 0, (n - *cap) * sizeof *p);
        *arr = p, *cap = n;
    }
    (*arr)[id]++;
    return 0;
}

static int end_case(struct table *t)
{
    if (!t->case_id)
        return 0;
    t->reports++;
    for (size_t i = 0; i < t->cur_drugs.n; i++)
        if (bump(&t->n_drug, &t->n_drug_cap, t->cur_drugs.v[i]))
            return -1;
    for (size_t i = 0; i < t->cur_events.n; i++)
        if (bump(&t->n_event, &t->n_event_cap, t->cur_events.v[i]))
            return -1;
    for (size_t i = 0; i < t->cur_drugs.n; i++)
        for (size_t j = 0; j < t->cur_events.n; j++) {
            uint64_t key = (uint64_t)t->cur_drugs.v[i] << 32 |
                           (uint64_t)t->cur_events.v[j];
            long *c = map_at(&t->pairs, key, 1);
            if (!c)
                return -1;
            ++*c;
        }
    long *seen = map_at(&t->cases, fnv(t->case_id, strlen(t->case_id)), 1);
    if (!seen)
        return -1;
    *seen = t->case_line;
    t->cur_drugs.n = t->cur_events.n = 0;
    free(t->case_id);
    t->case_id = NULL;
    return 0;
}

/* Trimmed, upper-cased copy of a field into buf (names compare without
 * case: FAERS spells "Olumiant" and "OLUMIANT"). */
static size_t norm(const pv_span *f, char *buf, size_t cap)
{
    size_t s = 0, e = f->len, n = 0;
    while (s < e && (f->ptr[s] == ' ' || f->ptr[s] == '\t'))
        s++;
    while (e > s && (f->ptr[e - 1] == ' ' || f->ptr[e - 1] == '\t'))
        e--;
    for (size_t i = s; i < e && n + 1 < cap; i++) {
        char c = f->ptr[i];
        buf[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    buf[n] = 0;
    return n;
}

static int on_row(void *ud, long line, const pv_span *f, size_t nf)
{
    struct table *t = ud;
    char id[512], drug[512], event[512];
    if (!t->header_done) {
        t->header_done = 1;
        if (nf == 3 && f[0].len == 7 && !memcmp(f[0].ptr, "case_id", 7))
            return 0;
    }
    t->rows++;
    if (nf != 3) {
        fprintf(stderr,
                "pvwatch report: %s:%ld: %zu fields, expected 3 "
                "(case_id,drug,event); row skipped\n",
                t->file, line, nf);
        t->bad_rows++;
        return 0;
    }
    size_t ni = norm(&f[0], id, sizeof id), nd = norm(&f[1], drug, sizeof drug),
           ne = norm(&f[2], event, sizeof event);
    if (!ni || !nd || !ne) {
        fprintf(stderr,
                "pvwatch report: %s:%ld: field %s is empty; row skipped\n",
                t->file, line,
                !ni   ? "case_id"
                : !nd ? "drug"
                      : "event");
        t->bad_rows++;
        return 0;
    }
    if (!t->case_id || strcmp(t->case_id, id)) {
        if (end_case(t))
            return -1;
        long *seen = map_at(&t->cases, fnv(id, ni), 0);
        if (seen) {
            fprintf(stderr,
                    "pvwatch report: %s:%ld: case_id %s comes back after "
                    "other cases (its rows began at line %ld); the rows of "
                    "a case must be together: sort the file by case_id\n",
                    t->file, line, id, *seen);
            t->failed = 1;
            return 1;
        }
        t->case_id = strdup(id);
        if (!t->case_id)
            return -1;
        t->case_line = line;
    }
    long di = names_id(&t->drugs, drug, nd),
         ei = names_id(&t->events, event, ne);
    if (di < 0 || ei < 0 || ids_add_unique(&t->cur_drugs, di) ||
        ids_add_unique(&t->cur_events, ei))
        return -1;
    return 0;
}

static void on_bad(void *ud, long line, const char *reason)
{
    struct table *t = ud;
    fprintf(stderr, "pvwatch report: %s:%ld: %s; record skipped\n", t->file,
            line, reason);
    t->rows++;
    t->bad_rows++;
}

static int read_file(struct table *t, const char *path)
{
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) {
        fprintf(stderr, "pvwatch report: %s: %s\n", path, strerror(errno));
        return -1;
    }
    t->file = path;
    t->header_done = 0;
    pv_csv *p = pv_csv_new(0, on_row, on_bad, t);
    int rc = p ? 0 : -1;
    char buf[65536];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, fp)) > 0)
        rc = pv_csv_feed(p, buf, n);
    if (!rc && ferror(fp)) {
        fprintf(stderr, "pvwatch report: %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (!rc)
        rc = pv_csv_finish(p);
    /* A case does not continue into the next file. */
    if (!rc && end_case(t))
        rc = -1;
    pv_csv_free(p);
    if (fp != stdin)
        fclose(fp);
    if (rc && !t->failed)
        fprintf(stderr, "pvwatch report: %s: out of memory\n", path);
    return rc ? -1 : 0;
}

struct row {
    long drug, event;
    struct pv_dispro d;
    struct pv_ebgm g;
};

static int by_eb05(const void *x, const void *y)
{
    const struct row *a = x, *b = y;
    if (a->g.eb05 != b->g.eb05)
        return a->g.eb05 < b->g.eb05 ? 1 : -1;
    if (a->d.a != b->d.a)
        return a->d.a < b->d.a ? 1 : -1;
    return a->drug != b->drug ? (a->drug < b->drug ? -1 : 1)
                              : (a->event < b->event ? -1 : 1);
}

struct cell {
    double n, e;
};

static int by_ne(const void *x, const void *y)
{
    const struct cell *a = x, *b = y;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return a->e < b->e ? -1 : a->e > b->e;
}

/* Fits the prior over every pair, squashed as DuMouchel and openEBGM do:
 * the cells of one N, in order of E, are merged into bins of consecutive
 * cells, each bin one cell at its mean E weighted by its size. Each N gets
 * its share of SQUASH_BINS bins, at least 5, so the fit costs about the
 * same for a million pairs as for a few thousand. */
enum { SQUASH_BINS = 2000 };

static int fit_prior(const struct table *t, struct pv_ebgm_prior *out)
{
    size_t m = t->pairs.count ? t->pairs.count : 1, k = 0, q = 0;
    struct cell *c = malloc(m * sizeof *c);
    double *n = malloc(m * sizeof *n), *e = malloc(m * sizeof *e),
           *w = malloc(m * sizeof *w);
    int rc = -1;
    if (!c || !n || !e || !w)
        goto out;
    for (size_t i = 0; i < t->pairs.slots; i++) {
        uint64_t key = t->pairs.key[i];
        if (key == UINT64_MAX)
            continue;
        double nd = (double)t->n_drug[key >> 32],
               ne = (double)t->n_event[key & 0xffffffffu];
        c[k].n = (double)t->pairs.val[i];
        c[k].e = nd * ne / (double)t->reports;
        k++;
    }
    qsort(c, k, sizeof *c, by_ne);
    for (size_t i = 0; i < k;) {
        size_t j = i;
        while (j < k && c[j].n == c[i].n)
            j++;
        size_t cnt = j - i, bins = SQUASH_BINS * cnt / k;
        bins = bins < 1 ? 1 : bins;
        size_t per = (cnt + bins - 1) / bins;
        for (size_t s = i; s < j; s += per) {
            size_t end = s + per < j ? s + per : j;
            double sum = 0;
            for (size_t x = s; x < end; x++)
                sum += c[x].e;
            n[q] = c[i].n, e[q] = sum / (double)(end - s);
            w[q] = (double)(end - s);
            q++;
        }
        i = j;
    }
    rc = pv_ebgm_fit(n, e, w, (long)q, NULL, out);
out:
    free(c);
    free(n);
    free(e);
    free(w);
    return rc;
}

static int parse_prior(const char *s, struct pv_ebgm_prior *p)
{
    double v[5];
    char *end;
    for (int i = 0; i < 5; i++) {
        errno = 0;
        v[i] = strtod(s, &end);
        if (end == s || errno || !(v[i] > 0) || (i < 4 && *end != ',') ||
            (i == 4 && *end))
            return -1;
        s = end + 1;
    }
    if (!(v[4] < 1))
        return -1;
    p->alpha1 = v[0], p->beta1 = v[1], p->alpha2 = v[2], p->beta2 = v[3];
    p->p = v[4];
    return 0;
}

static void put_csv_field(pv_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        pv_buf_puts(b, s);
        return;
    }
    pv_buf_puts(b, "\"");
    for (; *s; s++)
        pv_buf_append(b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
    pv_buf_puts(b, "\"");
}

static void print_rows(const struct table *t, const struct row *r, size_t n,
                       const struct pv_ebgm_prior *pr, const char *format)
{
    pv_buf b = {0};
    int json = !strcmp(format, "json"), csv = !strcmp(format, "csv");
    if (json) {
        pv_buf_printf(&b,
                      "{\"reports\":%ld,\"pairs\":%zu,\"prior\":{\"alpha1\":",
                      t->reports, t->pairs.count);
        pv_buf_json_num(&b, pr->alpha1);
        pv_buf_puts(&b, ",\"beta1\":");
        pv_buf_json_num(&b, pr->beta1);
        pv_buf_puts(&b, ",\"alpha2\":");
        pv_buf_json_num(&b, pr->alpha2);
        pv_buf_puts(&b, ",\"beta2\":");
        pv_buf_json_num(&b, pr->beta2);
        pv_buf_puts(&b, ",\"p\":");
        pv_buf_json_num(&b, pr->p);
        pv_buf_puts(&b, "},\"rows\":[");
    } else if (csv) {
        pv_buf_puts(&b, "drug,event,a,b,c,d,prr,prr_lo,prr_hi,chi2_yates,"
                        "evans,ror,ror_lo,ror_hi,expected,ic,ic025,ic975,"
                        "ebgm,eb05,eb95\n");
    } else {
        pv_buf_printf(&b,
                      "%ld reports, %zu drug-event pairs; EBGM prior "
                      "alpha1 %.6g beta1 %.6g alpha2 %.6g beta2 %.6g p %.6g\n"
                      "%-20s %-28s %5s %6s %6s %8s %7s %-17s %7s %7s %-17s "
                      "%7s %7s %7s %7s %7s\n",
                      t->reports, t->pairs.count, pr->alpha1, pr->beta1,
                      pr->alpha2, pr->beta2, pr->p, "drug", "event", "a", "b",
                      "c", "d", "PRR", "(95% CI)", "chi2", "ROR", "(95% CI)",
                      "IC", "IC025", "EBGM", "EB05", "EB95");
    }
    for (size_t i = 0; i < n; i++) {
        const struct pv_dispro *d = &r[i].d;
        const struct pv_ebgm *g = &r[i].g;
        const char *drug = t->drugs.str[r[i].drug],
                   *event = t->events.str[r[i].event];
        if (json) {
            double v[] = {d->prr,    d->prr_lo, d->prr_hi,   d->chi2, d->ror,
                          d->ror_lo, d->ror_hi, d->expected, d->ic,   d->ic025,
                          d->ic975,  g->ebgm,   g->eb05,     g->eb95};
            static const char *k[] = {"prr",  "prr_lo", "prr_hi", "chi2",
                                      "ror",  "ror_lo", "ror_hi", "expected",
                                      "ic",   "ic025",  "ic975",  "ebgm",
                                      "eb05", "eb95"};
            pv_buf_puts(&b, i ? ",{\"drug\":" : "{\"drug\":");
            pv_buf_json_str(&b, drug, strlen(drug));
            pv_buf_puts(&b, ",\"event\":");
            pv_buf_json_str(&b, event, strlen(event));
            pv_buf_printf(&b, ",\"a\":%.0f,\"b\":%.0f,\"c\":%.0f,\"d\":%.0f",
                          d->a, d->b, d->c, d->d);
            for (size_t j = 0; j < sizeof v / sizeof v[0]; j++) {
                pv_buf_printf(&b, ",\"%s\":", k[j]);
                pv_buf_json_num(&b, v[j]);
            }
            pv_buf_printf(&b,
                          ",\"haldane\":%s,\"evans\":%s,\"ror_signal\":%s,"
                          "\"ic_signal\":%s,\"eb05_signal\":%s}",
                          d->haldane ? "true" : "false",
                          d->evans ? "true" : "false",
                          d->ror_signal ? "true" : "false",
                          d->ic_signal ? "true" : "false",
                          g->eb05 >= 2 ? "true" : "false");
        } else if (csv) {
            put_csv_field(&b, drug);
            pv_buf_puts(&b, ",");
            put_csv_field(&b, event);
            pv_buf_printf(&b,
                          ",%.0f,%.0f,%.0f,%.0f,%.6g,%.6g,%.6g,%.6g,%d,%.6g,"
                          "%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n",
                          d->a, d->b, d->c, d->d, d->prr, d->prr_lo, d->prr_hi,
                          d->chi2, d->evans, d->ror, d->ror_lo, d->ror_hi,
                          d->expected, d->ic, d->ic025, d->ic975, g->ebgm,
                          g->eb05, g->eb95);
        } else {
            char pci[40], rci[40];
            snprintf(pci, sizeof pci, "(%.2f-%.2f)", d->prr_lo, d->prr_hi);
            snprintf(rci, sizeof rci, "(%.2f-%.2f)", d->ror_lo, d->ror_hi);
            pv_buf_printf(
                &b,
                "%-20.20s %-28.28s %5.0f %6.0f %6.0f %8.0f %7.2f "
                "%-17s %7.2f %7.2f %-17s %7.2f %7.2f %7.2f %7.2f "
                "%7.2f%s%s%s%s\n",
                drug, event, d->a, d->b, d->c, d->d, d->prr, pci, d->chi2,
                d->ror, rci, d->ic, d->ic025, g->ebgm, g->eb05, g->eb95,
                d->evans ? " Evans" : "", d->ror_signal ? " ROR" : "",
                d->ic_signal ? " IC" : "", g->eb05 >= 2 ? " EB05>=2" : "");
        }
    }
    if (json)
        pv_buf_puts(&b, "]}\n");
    else if (!csv && !n)
        pv_buf_puts(&b, "(no pair reaches the minimum count)\n");
    fwrite(b.ptr ? b.ptr : "", 1, b.len, stdout);
    pv_buf_free(&b);
}

static int disproportionality(int argc, char **argv)
{
    const char *drug = NULL, *format = "text", *prior_s = NULL;
    long min_count = 3;
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t nfiles = 0;
    int rc = 2;
    if (!files)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--drug")     ? &drug
                            : !strcmp(a, "--format") ? &format
                            : !strcmp(a, "--prior")  ? &prior_s
                                                     : NULL;
        if (slot || !strcmp(a, "--min-count")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "pvwatch report: %s needs a value\n%s", a,
                        usage_report);
                goto usage;
            }
            if (slot) {
                *slot = argv[++i];
            } else {
                char *end;
                errno = 0;
                min_count = strtol(argv[++i], &end, 10);
                if (*end || errno || min_count < 1) {
                    fprintf(stderr,
                            "pvwatch report: --min-count %s: not a whole "
                            "number of at least 1\n",
                            argv[i]);
                    goto usage;
                }
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "pvwatch report: unknown option %s\n%s", a,
                    usage_report);
            goto usage;
        } else {
            files[nfiles++] = a;
        }
    }
    struct pv_ebgm_prior prior;
    if (strcmp(format, "text") && strcmp(format, "csv") &&
        strcmp(format, "json")) {
        fprintf(stderr, "pvwatch report: --format %s: text, csv or json\n",
                format);
        goto usage;
    }
    if (prior_s && parse_prior(prior_s, &prior)) {
        fprintf(stderr,
                "pvwatch report: --prior %s: five positive numbers "
                "A1,B1,A2,B2,P with P below 1\n",
                prior_s);
        goto usage;
    }
    if (!nfiles) {
        fprintf(stderr, "pvwatch report: no files given\n%s", usage_report);
        goto usage;
    }
    struct table t = {0};
    rc = 0;
    for (size_t i = 0; i < nfiles && !rc; i++)
        if (read_file(&t, files[i]))
            rc = 1;
    if (!rc && !t.pairs.count) {
        fprintf(stderr, "pvwatch report: no drug-event pair in the input\n");
        rc = 1;
    }
    if (!rc && !prior_s && fit_prior(&t, &prior)) {
        fprintf(stderr, "pvwatch report: the EBGM prior could not be fitted; "
                        "give one with --prior\n");
        rc = 1;
    }
    struct row *rows = NULL;
    size_t nrows = 0;
    if (!rc) {
        rows = malloc(t.pairs.count * sizeof *rows);
        if (!rows)
            rc = 1;
    }
    for (size_t i = 0; !rc && i < t.pairs.slots; i++) {
        uint64_t key = t.pairs.key[i];
        if (key == UINT64_MAX || t.pairs.val[i] < min_count)
            continue;
        long di = (long)(key >> 32), ei = (long)(key & 0xffffffffu);
        if (drug && strcasecmp(t.drugs.str[di], drug))
            continue;
        double a = (double)t.pairs.val[i], nd = (double)t.n_drug[di],
               ne = (double)t.n_event[ei], n = (double)t.reports;
        struct row *r = &rows[nrows++];
        r->drug = di, r->event = ei;
        pv_dispro_compute(a, nd - a, ne - a, n - nd - ne + a, &r->d);
        pv_ebgm_compute(&prior, a, r->d.expected, &r->g);
    }
    if (!rc) {
        if (drug && !nrows)
            fprintf(stderr,
                    "pvwatch report: drug %s: no pair with %ld or "
                    "more reports\n",
                    drug, min_count);
        qsort(rows, nrows, sizeof *rows, by_eb05);
        print_rows(&t, rows, nrows, &prior, format);
        if (t.bad_rows)
            fprintf(stderr, "pvwatch report: %ld of %ld rows skipped (above)\n",
                    t.bad_rows, t.rows);
    }
    free(rows);
    free(t.case_id);
    free(t.cur_drugs.v);
    free(t.cur_events.v);
    free(t.n_drug);
    free(t.n_event);
    free(t.pairs.key);
    free(t.pairs.val);
    free(t.cases.key);
    free(t.cases.val);
    names_free(&t.drugs);
    names_free(&t.events);
usage:
    free(files);
    return rc;
}

int pv_cli_report(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_report, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_report, stdout);
            return 0;
        }
    if (!strcmp(argv[1], "disproportionality"))
        return disproportionality(argc - 1, argv + 1);
    if (!strcmp(argv[1], "cohort")) {
        fprintf(stderr, "pvwatch report cohort: not built yet (issue 18)\n");
        return 2;
    }
    fprintf(stderr, "pvwatch report: unknown report %s\n%s", argv[1],
            usage_report);
    return 2;
}
