/* faultsim: SQLite-style fault injection over the real pipeline (issue 20
 * part 2; docs/reliability.md "Fault injection").
 *
 * One run opens a fresh database with the full rule pack (plugins/,
 * scripts/), then ingests a small feed, one transaction per unit as the
 * CLI and the MLLP listener do: a medications, a labs, an events and a
 * labs-with-errors CSV file (examples/feeds/) and four HL7 v2 messages
 * (an RDE order, two ORUs that alert, an ADT), and closes the pipeline.
 * A reference run counts the allocations of each allocator (faultsim.h:
 * pvwatch's malloc family, through -Wl,--wrap; the rule plugins' Lua
 * states; SQLite's allocator); then, for one allocator at a time, run N
 * fails its Nth allocation (only that one: the run goes on). Each run is a
 * forked child, so that a crash, an ASan report or a leak on an error path
 * (LeakSanitizer at the child's exit) is that N's failure. After each run:
 * - the child exited 0 (a clean error or a clean success, no signal);
 * - the database passes PRAGMA integrity_check;
 * - every unit the child saw acknowledged (its commit returned 0; a file
 *   read, an HL7 message answered AA) is in the database with exactly the
 *   facts it reported;
 * - every unit that started after the fault was hit was acknowledged (a
 *   failed allocation leaves no state behind that fails the next unit).
 *
 * Bounded for CI: when an allocator makes more than PV_FAULTSIM_RUNS (60;
 * 20 in sanitizer builds) allocations, N = 1 .. RUNS/4 (the pipeline's open,
 * migrations, first plugin) are all run, and the rest of the runs are N drawn
 * uniformly, half from the open's range and half from the feed's, with a seed
 * that is printed (PV_FAULTSIM_SEED reproduces it). PV_FAULTSIM_KIND=malloc|
 * lua|sqlite runs one allocator, PV_FAULTSIM_N one run (and keeps its
 * directory), PV_FAULTSIM_PERSISTENT=1 fails every allocation from the
 * Nth on. The last line is 'N passed, N failed'. */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "faultsim.h"
#include "ingest.h"
#include "store.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ---- pvwatch's own allocations (-Wl,--wrap=malloc,... in tests.cmake) -- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static int malloc_fails(void)
{
    if (pv_faultsim_on && pv_faultsim_fail(PV_FAULT_MALLOC)) {
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    return malloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return malloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    /* realloc(p, 0) frees: never a failure. */
    return n && malloc_fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return malloc_fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return malloc_fails() ? NULL : __real_strndup(s, n);
}

/* ---- The feed ------------------------------------------------------------ */

struct unit {
    const char *file;    /* under the source tree, or NULL: hl7 */
    const char *hl7;     /* one message */
    const char *control; /* its MSH-10 */
    int bad_rows;        /* rows rejected by design (not an error) */
};

#define MSH "MSH|^~\\&|FSIM|FAC|PVWATCH|PV|20260301120000||"
static const struct unit units[] = {
    {.file = "examples/feeds/medications.csv"},
    {.hl7 = MSH "RDE^O11^RDE_O11|FS-RDE-1|P|2.5.1\r"
                "PID|1||PV-010^^^HOSP^MR\r"
                "ORC|NW|FS-RDE-1\r"
                "TQ1|1||||||20260110\r"
                "RXE||baricitinib^baricitinib^L|4||mg\r",
     .control = "FS-RDE-1"},
    {.file = "examples/feeds/labs.csv"},
    {.hl7 =
         MSH "ORU^R01^ORU_R01|FS-ORU-1|P|2.5.1\r"
             "PID|1||PV-010^^^HOSP^MR||Doe^Jane||19700101|F\r"
             "OBR|1|FS-ORU-1||CBC^Complete blood count^L|||20260215090000\r"
             "OBX|1|NM|751-8^Neutrophils^LN||450|cells/mm3|||||F|||"
             "20260215090000\r"
             "OBX|2|NM|731-0^Lymphocytes^LN||300|cells/mm3|||||F|||"
             "20260215090000\r"
             "OBX|3|NM|718-7^Hemoglobin^LN||7.4|g/dL|||||F|||20260215090000\r",
     .control = "FS-ORU-1"},
    {.file = "examples/feeds/events.csv"},
    {.hl7 =
         MSH "ORU^R01^ORU_R01|FS-ORU-2|P|2.5.1\r"
             "PID|1||PV-002^^^HOSP^MR\r"
             "OBR|1|FS-ORU-2||CMP^Metabolic panel^L|||20260301090000\r"
             "OBX|1|NM|1742-6^ALT^LN||400|U/L|||||F|||20260301090000\r"
             "OBX|2|NM|2093-3^Cholesterol^LN||320|mg/dL|||||F|||"
             "20260301090000\r"
             "OBX|3|NM|777-3^Platelets^LN||40|10*3/uL|||||F|||20260301090000\r",
     .control = "FS-ORU-2"},
    {.file = "examples/feeds/labs_with_errors.csv", .bad_rows = 1},
    {.hl7 = MSH "ADT^A08^ADT_A01|FS-ADT-1|P|2.5.1\r"
                "PID|1||PV-010^^^HOSP^MR||Doe^Jane||19700101|F\r"
                "DG1|1||B02.9^Zoster^I10||20260220\r",
     .control = "FS-ADT-1"},
};
#define NUNITS (sizeof units / sizeof units[0])

/* ---- One run, in a child ------------------------------------------------- */

static pv_config cfg;
static char src_dir[PATH_MAX];
static char base[PATH_MAX];

/* What the child tells the parent, through a pipe, without allocating. */
struct unit_out {
    int started; /* after the fault was hit */
    int acked;
    long facts;
};
struct run_out {
    int opened;
    long count_open; /* allocations counted when the pipeline was open */
    long count;      /* ... at the end */
    long hits;       /* faults injected */
    struct unit_out u[NUNITS];
    char first_error[256]; /* the first error seen, for the log */
};

static void note_error(struct run_out *o, const char *what, const char *text)
{
    if (o->first_error[0])
        return;
    snprintf(o->first_error, sizeof o->first_error, "%.40s: %.200s", what,
             text);
}

static void run_child(enum pv_fault_kind kind, long n, int persistent,
                      const char *db, struct run_out *o)
{
    memset(o, 0, sizeof *o);
    pv_faultsim_arm(kind, n, persistent);
    pv_buf errors = PV_BUF_INIT;
    pv_ingest *p = NULL;
    int rc = pv_ingest_open(&cfg, db, 0, &p, &errors);
    o->count_open = pv_faultsim_count(kind);
    if (rc || !p) {
        note_error(o, "open", errors.len ? pv_buf_cstr(&errors) : "(none)");
        pv_buf_free(&errors);
        if (p)
            pv_ingest_close(p);
        goto out;
    }
    pv_buf_free(&errors);
    o->opened = 1;
    for (size_t i = 0; i < NUNITS; i++) {
        const struct unit *u = &units[i];
        o->u[i].started = pv_faultsim_hits(kind) > 0;
        rc = pv_ingest_begin(p);
        if (rc) {
            note_error(o, "begin", pv_strerror(rc));
            continue;
        }
        int ok = 0;
        long facts = 0;
        if (u->file) {
            char path[PATH_MAX + 64], name[64];
            snprintf(path, sizeof path, "%s/%s", src_dir, u->file);
            snprintf(name, sizeof name, "u%zu.csv", i);
            pv_file_report rep;
            rc = pv_ingest_file(p, path, name, &rep);
            ok = !rc && !rep.failed && !rep.duplicate;
            facts = rep.stored;
            if (!rc && rep.errors.len && !u->bad_rows)
                note_error(o, name, pv_buf_cstr(&rep.errors));
            pv_file_report_free(&rep);
        } else {
            pv_hl7_result res;
            rc = pv_ingest_hl7(p, u->hl7, strlen(u->hl7), "faultsim", 1, &res);
            ok = !rc && res.ack == 0;
            facts = res.facts;
            if (!rc && res.ack != 0)
                note_error(o, u->control, res.text);
            pv_hl7_result_free(&res);
        }
        if (rc) {
            note_error(o, "ingest", pv_strerror(rc));
            pv_ingest_rollback(p);
            continue;
        }
        rc = pv_ingest_commit(p);
        if (rc) {
            note_error(o, "commit", pv_strerror(rc));
            pv_ingest_rollback(p);
            continue;
        }
        o->u[i].acked = ok;
        o->u[i].facts = facts;
    }
    pv_ingest_close(p);
out:
    o->count = pv_faultsim_count(kind);
    o->hits = pv_faultsim_hits(kind);
    pv_faultsim_disarm();
}

/* ---- The parent's checks ------------------------------------------------- */

static int passed, failed;

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        bad = 1;                                                               \
    } while (0)

static long long q1(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Checks the database a run left; returns 1 when something is wrong. */
static int check_db(const char *tag, const char *path, const struct run_out *o)
{
    int bad = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        for (size_t i = 0; i < NUNITS; i++)
            if (o->u[i].acked)
                FAIL("%s: unit %zu acknowledged but no database", tag, i);
        return bad;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        FAIL("%s: cannot open the database: %s", tag, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0)
            FAIL("%s: integrity_check: %s", tag, r ? r : "(null)");
    } else {
        FAIL("%s: integrity_check failed: %s", tag, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < NUNITS && !bad; i++) {
        if (!o->u[i].acked)
            continue;
        char name[64];
        const char *key = units[i].control;
        const char *find = "SELECT id FROM messages WHERE control_id = ?1 "
                           "AND source LIKE 'hl7:%'";
        if (units[i].file) {
            snprintf(name, sizeof name, "u%zu.csv", i);
            key = name;
            find = "SELECT id FROM messages WHERE name = ?1 "
                   "AND source = 'file'";
        }
        long long id = q1(db, find, key);
        if (id < 0) {
            FAIL("%s: unit %zu (%s) acknowledged, not in the database", tag, i,
                 key);
            continue;
        }
        char ids[32];
        snprintf(ids, sizeof ids, "%lld", id);
        long long n =
            q1(db,
               "SELECT (SELECT count(*) FROM observations WHERE message_id "
               "= ?1) + (SELECT count(*) FROM exposures WHERE message_id = "
               "?1) + (SELECT count(*) FROM events WHERE message_id = ?1)",
               ids);
        if (n != o->u[i].facts)
            FAIL("%s: unit %zu (%s) acknowledged with %ld facts, %lld stored",
                 tag, i, key, o->u[i].facts, n);
    }
    sqlite3_close(db);
    return bad;
}

static void rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* Runs N in a child and checks what it left. Returns 0 when the run is
 * good; fills *o. keep: leave the directory. */
static int one_run(enum pv_fault_kind kind, long n, int persistent, int keep,
                   struct run_out *o)
{
    char dir[PATH_MAX + 64], db[PATH_MAX + 80], tag[64];
    snprintf(dir, sizeof dir, "%s/%s-%ld", base, pv_faultsim_name(kind), n);
    snprintf(db, sizeof db, "%s/pv.db", dir);
    snprintf(tag, sizeof tag, "%s N=%ld%s", pv_faultsim_name(kind), n,
             persistent ? " (persistent)" : "");
    memset(o, 0, sizeof *o);
    if (mkdir(dir, 0700) != 0) {
        fprintf(stderr, "%s: mkdir %s: %s\n", tag, dir, strerror(errno));
        return 1;
    }
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(fds[0]);
        /* The alert log of this run, beside its database. */
        char log[PATH_MAX + 96];
        snprintf(log, sizeof log, "%s/alerts.jsonl", dir);
        free(cfg.alert_log);
        cfg.alert_log = strdup(log);
        struct run_out out;
        run_child(kind, n, persistent, db, &out);
        const char *b = (const char *)&out;
        size_t left = sizeof out;
        while (left) {
            ssize_t w = write(fds[1], b, left);
            if (w <= 0)
                _exit(3);
            b += w;
            left -= (size_t)w;
        }
        close(fds[1]);
        pv_config_free(&cfg);
        exit(0); /* LeakSanitizer checks here in ASan builds */
    }
    close(fds[1]);
    size_t got = 0;
    while (got < sizeof *o) {
        ssize_t r = read(fds[0], (char *)o + got, sizeof *o - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    int status, bad = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        FAIL("%s: the run died of signal %d", tag, WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0)
        FAIL("%s: the run exited %d (a sanitizer report above?)", tag,
             WEXITSTATUS(status));
    if (got != sizeof *o) {
        FAIL("%s: no report from the run", tag);
    } else {
        bad |= check_db(tag, db, o);
        /* One-shot: what started after the fault must succeed. */
        for (size_t i = 0; i < NUNITS && !persistent && o->opened; i++)
            if (o->u[i].started && !o->u[i].acked)
                FAIL("%s: unit %zu started after the fault and failed (%s)",
                     tag, i, o->first_error);
    }
    if (bad)
        fprintf(stderr, "%s: kept %s (first error: %s)\n", tag, dir,
                o->first_error[0] ? o->first_error : "none");
    else if (!keep)
        rm_tree(dir);
    return bad;
}

/* A small PRNG (splitmix64): the same seed, the same N. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void sweep(enum pv_fault_kind kind, long runs, int persistent)
{
    struct run_out ref;
    if (one_run(kind, 0, 0, 0, &ref)) {
        failed++;
        return;
    }
    for (size_t i = 0; i < NUNITS; i++)
        if (!ref.u[i].acked) {
            fprintf(stderr, "reference run: unit %zu not acknowledged: %s\n", i,
                    ref.first_error);
            failed++;
            return;
        }
    long total = ref.count, open = ref.count_open;
    long *ns = malloc(sizeof(long) * (size_t)(runs > 0 ? runs : 1));
    long k = 0;
    if (total <= runs) {
        for (long n = 1; n <= total; n++)
            ns[k++] = n;
    } else {
        long first = runs / 4;
        for (long n = 1; n <= first; n++)
            ns[k++] = n;
        while (k < runs) {
            /* Alternately the rest of the open's range and the feed's. */
            long lo = (k % 2 && open > first) ? first + 1 : open + 1;
            long hi = (k % 2 && open > first) ? open : total;
            if (lo > hi)
                lo = first + 1, hi = total;
            ns[k++] = lo + (long)(rng_next() % (uint64_t)(hi - lo + 1));
        }
        qsort(ns, (size_t)k, sizeof *ns, cmp_long);
    }
    long bad = 0, hit = 0, clean_err = 0;
    for (long i = 0; i < k; i++) {
        if (i && ns[i] == ns[i - 1])
            continue;
        struct run_out o;
        if (one_run(kind, ns[i], persistent, 0, &o))
            bad++;
        hit += o.hits > 0;
        clean_err += o.first_error[0] != 0;
    }
    printf("%s: %ld allocations (%ld opening the pipeline, %ld over the "
           "feed); %ld runs (N %ld..%ld%s), %ld hit the fault, %ld reported "
           "an error; %ld failed\n",
           pv_faultsim_name(kind), total, open, total - open, k, k ? ns[0] : 0,
           k ? ns[k - 1] : 0, total <= runs ? ", every N" : ", sampled", hit,
           clean_err, bad);
    fflush(stdout);
    free(ns);
    if (bad)
        failed++;
    else
        passed++;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pv_faultsim_sqlite_install() != SQLITE_OK) {
        fprintf(stderr, "sqlite3_config(SQLITE_CONFIG_MALLOC) failed\n");
        return 2;
    }
    const char *s = getenv("PV_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", s ? s : PV_SOURCE_DIR);
    /* Built-in defaults with the source tree's plugins/ and scripts/. */
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(NULL, &cfg, &errors) != 0) {
        fprintf(stderr, "config: %s\n", pv_buf_cstr(&errors));
        return 2;
    }
    pv_buf_free(&errors);
    char dir[PATH_MAX + 16];
    pv_strlist_free(&cfg.plugins);
    pv_strlist_free(&cfg.scripts);
    snprintf(dir, sizeof dir, "%s/plugins", src_dir);
    pv_strlist_add(&cfg.plugins, dir);
    snprintf(dir, sizeof dir, "%s/scripts", src_dir);
    pv_strlist_add(&cfg.scripts, dir);
    /* On tmpfs when there is one: the runs' syncs cost nothing there. */
    struct stat sb;
    const char *tmp = getenv("PV_FAULTSIM_TMP");
    if (!tmp)
        tmp = stat("/dev/shm", &sb) == 0 && access("/dev/shm", W_OK) == 0
                  ? "/dev/shm"
                  : "/tmp";
    snprintf(base, sizeof base, "%s/pv_faultsim.XXXXXX", tmp);
    if (!mkdtemp(base)) {
        perror(base);
        return 2;
    }
    /* About 0.2 s a run in the normal build (the pack's load dominates),
     * several times that under ASan: 60 runs per allocator keep the test
     * under a minute there, 20 under ASan. */
    const char *e = getenv("PV_FAULTSIM_RUNS");
    long runs = e ? atol(e) : SANITIZED ? 20 : 60;
    e = getenv("PV_FAULTSIM_SEED");
    uint64_t seed = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed;
    e = getenv("PV_FAULTSIM_PERSISTENT");
    int persistent = e && atoi(e);
    const char *only = getenv("PV_FAULTSIM_KIND");
    e = getenv("PV_FAULTSIM_N");
    long single = e ? atol(e) : 0;
    printf("faultsim: seed %llu (PV_FAULTSIM_SEED), %ld runs per allocator "
           "(PV_FAULTSIM_RUNS)%s\n",
           (unsigned long long)seed, runs, persistent ? ", persistent" : "");
    for (int k = 0; k < PV_FAULT_KINDS; k++) {
        if (only && strcmp(only, pv_faultsim_name(k)) != 0)
            continue;
        if (single) {
            struct run_out o;
            int bad = one_run(k, single, persistent, 1, &o);
            printf("%s N=%ld: %s; %ld allocations, %ld faults; first error: "
                   "%s\n",
                   pv_faultsim_name(k), single, bad ? "FAILED" : "ok", o.count,
                   o.hits, o.first_error[0] ? o.first_error : "none");
            bad ? failed++ : passed++;
            continue;
        }
        sweep(k, runs, persistent);
    }
    pv_config_free(&cfg);
    if (!failed && !single)
        rm_tree(base);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
