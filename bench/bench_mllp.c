/* bench_mllp: MLLP throughput, ACK latency and memory of `pvwatch run`
 * (issue 3, "Performance"), reported as a ratio to a raw SQLite insert of
 * the same rows into the same schema measured in the same run (TESTING.md,
 * "Performance reference").
 *
 * It starts the pvwatch binary it is given (fork + exec) on a fresh
 * database in a temporary directory, with the repository's rule pack and
 * the default synchronous=FULL, listening on a port the system picks.
 * Realistic data (issue 17): --exposed-pct of the patients (default 10 %)
 * are first given a baricitinib exposure (RDE^O11), the others have no
 * medication, as most patients of a hospital feed; each result has its
 * analyte's proper unit and a normal value, except --abnormal-pct of them
 * (default 2 %), which are at CTCAE grade >= 2 so that alerts fire;
 * --awkward sends the ALC in a unit no rule can grade. Then K connections
 * (plain blocking sockets, one thread each) send ORU^R01 messages of 10 OBX
 * stop-and-wait, each with its own MSH-10, for a fixed time or count, at K = 1
 * and K = 16 by default. It reports messages/s and observations/s, p50/p99/max
 * ACK latency, the RSS of the pvwatch process (VmRSS) at start, after warm-up,
 * after each phase and at the end, and the ratio of observations/s to the
 * raw insert: the same number of observation rows of the same shape, one
 * prepared statement, 1000-row transactions, synchronous=NORMAL, SQLite's
 * default VFS, into a database made by pv_store_open (so the same schema
 * and indexes).
 *
 *   bench_mllp PVWATCH [--seconds S] [--messages N] [--k 1,16]
 *              [--patients N] [--dir DIR] [--plugins DIR] [--scripts DIR]
 *              [--db FILE] [--keep]
 *   bench_mllp --config LABEL:PVWATCH:PLUGINS[:awkward][:walbuf=off] ...
 *              [--reference raw-sqlite[:LABEL]] [--taskset N] [--rounds R]
 *
 * In a comparison (--config), --reference adds the raw-SQLite reference
 * of issue 17 (pvwatch's writes per message at its own batch sizes) as a
 * configuration, --taskset N every configuration again on N CPUs; a
 * single run with --messages reports the soak by tenths (bench/README.md).
 *
 * Every figure printed is measured; nothing is assumed. */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET (--taskset) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define OBX_PER_MESSAGE 10
#define MAX_K 256

/* The ten results of each message: codes the rule pack listens to, with
 * values inside their normal ranges (the rules run; few alerts fire). */
static const struct {
    const char *code, *name, *unit, *range;
    double value;    /* normal */
    double abnormal; /* CTCAE grade >= 2 (or the label's threshold) */
} LABS[OBX_PER_MESSAGE] = {
    {"751-8", "Neutrophils", "10*9/L", "1.5-7.0", 3.2, 0.8},
    {"731-0", "Lymphocytes", "10*9/L", "1.0-4.8", 1.8, 0.4},
    {"6690-2", "Leukocytes", "10*9/L", "4.0-11.0", 6.5, 1.5},
    {"718-7", "Hemoglobin", "g/dL", "12-16", 13.5, 7.5},
    {"777-3", "Platelets", "10*9/L", "150-400", 250, 40},
    {"1742-6", "ALT", "U/L", "7-56", 22, 200},
    {"1920-8", "AST", "U/L", "10-40", 25, 200},
    {"1975-2", "Bilirubin", "mg/dL", "0.1-1.2", 0.6, 3.0},
    {"2093-3", "Cholesterol", "mg/dL", "<200", 180, 420},
    {"33914-3", "eGFR", "mL/min/{1.73_m2}", ">60", 90, 25},
};

/* --awkward: the second analyte (ALC, 731-0, an absolute count) comes in
 * "%", which no rule can grade on it (domain §3.1), so the rules that
 * grade it fail on every exposed patient's message (issue 17: engine
 * alerts, the failing path). ("%" on the ANC is not an error: the
 * neutropenia rule passes it by.) */
#define AWKWARD_UNIT "%"
#define AWKWARD_LAB 1

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_mllp: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- Options and the pvwatch process ---------------------------------- */

static struct {
    const char *pvwatch;
    double seconds;
    long messages;
    int k[8];
    int nk;
    int patients;
    int keep;
    const char *base;
    const char *plugins;
    const char *scripts;
    const char *db; /* --db: start from a copy of this database */
    double exposed_pct, abnormal_pct, spacing;
    int awkward;
    int rounds;
    int walbuf_off; /* database.walbuf = false in pvwatch's config */
    int taskset;    /* --taskset N: also every configuration on N CPUs */
} opt = {NULL,
         20,
         0,
         {1, 16},
         2,
         2000,
         0,
         "/tmp",
         PV_SOURCE_DIR "/plugins",
         PV_SOURCE_DIR "/scripts",
         NULL,
         10,
         2,
         60,
         0,
         5,
         0,
         0};

/* --config LABEL:PVWATCH:PLUGINS[:awkward][:walbuf=off]: the
 * configurations a comparison interleaves, round after round.
 * --reference raw-sqlite[:LABEL] adds the raw-SQLite reference as one
 * (is_ref; it repeats the writes configuration ref_of made in the same
 * round). --taskset N adds each of them again pinned to N CPUs (cpus). */
#define MAX_CONFIGS 16
struct config {
    char *label, *pvwatch, *plugins;
    int awkward, walbuf_off;
    int is_ref, ref_of;
    int cpus; /* 0: every CPU the bench may use */
    int twin; /* with cpus: the same configuration on every CPU */
};
static struct config configs[MAX_CONFIGS];
static int nconfigs;

static char dir[PATH_MAX];
static char log_path[PATH_MAX + 32]; /* pvwatch's stderr and stdout */
static pid_t pv_pid = -1;
static int port;

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void start_pvwatch(void)
{
    char path[PATH_MAX + 32];
    if (opt.db) {
        /* A grown database: pvwatch opens a copy; the original is left
         * alone. */
        char cmd[2 * PATH_MAX + 64];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/pv.db'", opt.db, dir);
        if (system(cmd) != 0)
            die("copying --db");
    }
    snprintf(path, sizeof path, "%s/pv.lua", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path);
    /* synchronous=FULL is the store's default: an ACK means on disk. */
    fputs(opt.walbuf_off ? "database = { path = \"pv.db\", walbuf = false }\n"
                         : "database = \"pv.db\"\n",
          f);
    fprintf(f,
            "alert_log = \"alerts.jsonl\"\n"
            "inbox = { path = \"inbox\" }\n"
            "plugins = { \"%s\" }\n"
            "scripts = { \"%s\" }\n"
            "mllp = { listen = \"127.0.0.1:0\", max_connections = 1024 }\n",
            opt.plugins, opt.scripts);
    fclose(f);
    snprintf(log_path, sizeof log_path, "%s/pv.log", dir);
    pv_pid = fork();
    if (pv_pid < 0)
        die("fork");
    if (pv_pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0 || chdir(dir) != 0)
            _exit(127);
        execl(opt.pvwatch, opt.pvwatch, "run", "-c", "pv.lua", (char *)NULL);
        _exit(127);
    }
    /* The log names the port the system chose. */
    double deadline = now_s() + 15;
    while (now_s() < deadline && !port) {
        FILE *l = fopen(log_path, "r");
        char line[512];
        while (l && fgets(line, sizeof line, l)) {
            const char *m = strstr(line, "MLLP listening on 127.0.0.1:");
            if (m)
                port = atoi(m + strlen("MLLP listening on 127.0.0.1:"));
        }
        if (l)
            fclose(l);
        int status;
        if (waitpid(pv_pid, &status, WNOHANG) == pv_pid) {
            fprintf(stderr, "bench_mllp: pvwatch exited at start; see %s\n",
                    log_path);
            exit(1);
        }
        if (!port)
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    if (!port) {
        fprintf(stderr, "bench_mllp: no MLLP port in %s\n", log_path);
        kill(pv_pid, SIGKILL);
        exit(1);
    }
}

static int stop_pvwatch(void)
{
    kill(pv_pid, SIGTERM);
    int status = 0;
    if (waitpid(pv_pid, &status, 0) != pv_pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- An MLLP client ---------------------------------------------------- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one framed message and reads its ACK; returns 1 for AA, 0 for any
 * other answer, -1 when the connection failed. */
static int round_trip(int fd, const char *frame, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, frame + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (got >= 2 && buf[got - 2] == 0x1c && buf[got - 1] == 0x0d)
            break;
        if (got >= sizeof buf - 1)
            return -1;
    }
    return strstr(buf, "\rMSA|AA|") != NULL;
}

/* The n-th message of connection t: unique MSH-10, a patient out of the
 * pool, distinct observation times. */
static size_t oru(char *out, size_t cap, int t, long n, int patient)
{
    /* Seconds after 2026-01-02 00:00 (the day after the exposures start,
     * so that the rules see exposed patients), so each message has its own
     * time, and every time is in the past: pvwatch rejects a result time more
     * than a day ahead (the threads were a million minutes apart, so most
     * of K=16's messages were decades in the future, and AE'd). n is
     * unique across threads and phases (next_seq), so the time is n alone:
     * t * 10^7 seconds put the phases after the first (t = phase x 256 +
     * thread) 81 years ahead, and every message of them AE'd. Messages
     * are --spacing seconds apart (default 60): with 2000 patients each
     * gets a result about every 33 hours, so a patient's 30 days of
     * history hold tens of results, not the thousands one second apart
     * made, which no hospital feed has. */
    (void)t;
    long seconds = (long)((double)n * opt.spacing);
    struct tm tm = {.tm_year = 126, .tm_mon = 0, .tm_mday = 2};
    time_t base = timegm(&tm) + seconds;
    struct tm at;
    gmtime_r(&base, &at);
    char ts[16];
    strftime(ts, sizeof ts, "%Y%m%d%H%M%S", &at);
    size_t len = (size_t)snprintf(
        out, cap,
        "\x0bMSH|^~\\&|BENCH|LAB|PVWATCH|PV|%s||ORU^R01^ORU_R01|B%d-%ld|P|"
        "2.5.1\r"
        "PID|1||BP%04d^^^BENCH^MR||Doe^Jane||19700101|F\r"
        "OBR|1|ORD%d-%ld||57021-8^CBC^LN|||%s\r",
        ts, t, n, patient, t, n, ts);
    for (int i = 0; i < OBX_PER_MESSAGE; i++) {
        /* The same draw for the same message and analyte in every run. */
        uint64_t u =
            splitmix(((uint64_t)t << 40) ^ ((uint64_t)n << 4) ^ (uint64_t)i);
        int abnormal = (double)(u % 1000000) < opt.abnormal_pct * 10000;
        const char *unit = LABS[i].unit;
        double v = abnormal ? LABS[i].abnormal : LABS[i].value;
        if (opt.awkward && i == AWKWARD_LAB) {
            unit = AWKWARD_UNIT;
            v = 30;
        }
        len += (size_t)snprintf(out + len, cap - len,
                                "OBX|%d|NM|%s^%s^LN||%g|%s|%s|%s|||F|||%s\r",
                                i + 1, LABS[i].code, LABS[i].name, v, unit,
                                LABS[i].range, abnormal ? "A" : "N", ts);
    }
    len += (size_t)snprintf(out + len, cap - len, "\x1c\r");
    return len;
}

/* Whether patient i is on baricitinib: exactly --exposed-pct of the pool,
 * spread over it. */
static int is_exposed(int i)
{
    return (double)((long)i * 37 % 100) < opt.exposed_pct ||
           opt.exposed_pct >= 100;
}

static int exposed_count(void)
{
    int n = 0;
    for (int i = 0; i < opt.patients; i++)
        n += is_exposed(i);
    return n;
}

/* The exposed share of the patients starts baricitinib (RDE^O11); the
 * others have no medication, as most patients of a hospital feed. */
static void expose_patients(void)
{
    int fd = dial();
    if (fd < 0)
        die("connect");
    char msg[1024];
    for (int i = 0; i < opt.patients; i++) {
        if (!is_exposed(i))
            continue;
        int len = snprintf(msg, sizeof msg,
                           "\x0bMSH|^~\\&|BENCH|PHARM|PVWATCH|PV|"
                           "20260101080000||RDE^O11^RDE_O11|RX-%d|P|2.5.1\r"
                           "PID|1||BP%04d^^^BENCH^MR\r"
                           "ORC|NW|RX-%d\r"
                           "RXE|^^^20260101080000|^baricitinib 2 MG Oral "
                           "Tablet|2||mg\r\x1c\r",
                           i, i, i);
        if (round_trip(fd, msg, (size_t)len) != 1) {
            fprintf(stderr,
                    "bench_mllp: the exposure of BP%04d was not "
                    "accepted\n",
                    i);
            exit(1);
        }
    }
    close(fd);
}

/* RSS samples of pvwatch taken during the phases, for "RSS flat". */
static long rss_samples[16384];
static long seq_samples[16384];       /* messages sent so far, at each sample */
static double time_samples[16384];    /* now_s() at each sample */
static size_t nrss, last_phase_first; /* first sample of the last phase */
static atomic_long next_seq;

static void rss_sample(void)
{
    if (nrss < sizeof rss_samples / sizeof *rss_samples) {
        seq_samples[nrss] = atomic_load(&next_seq);
        time_samples[nrss] = now_s();
        rss_samples[nrss++] = rss_kb(pv_pid);
    }
}

/* ---- One phase: K connections, stop-and-wait ------------------------- */

struct worker {
    pthread_t thread;
    int t;
    long sent, ok, failed;
    double *lat; /* ms */
    size_t nlat, caplat;
};

static pthread_barrier_t start_line;
static double phase_end;
static long phase_quota;        /* messages per connection, 0 = by time */
static atomic_int workers_done; /* of the phase that runs */

static void *work(void *arg)
{
    struct worker *w = arg;
    char frame[8192];
    int fd = dial();
    pthread_barrier_wait(&start_line);
    if (fd < 0) {
        w->failed++;
        atomic_fetch_add(&workers_done, 1);
        return NULL;
    }
    for (;;) {
        if (phase_quota ? w->sent >= phase_quota : now_s() >= phase_end)
            break;
        long n = atomic_fetch_add(&next_seq, 1);
        size_t len = oru(frame, sizeof frame, w->t, n, (int)(n % opt.patients));
        double t0 = now_s();
        int r = round_trip(fd, frame, len);
        double ms = (now_s() - t0) * 1000;
        w->sent++;
        if (r < 0) {
            w->failed++;
            break;
        }
        if (r == 1)
            w->ok++;
        else
            w->failed++;
        if (w->nlat == w->caplat) {
            w->caplat = w->caplat ? w->caplat * 2 : 4096;
            double *nl = realloc(w->lat, w->caplat * sizeof *nl);
            if (!nl)
                die("realloc");
            w->lat = nl;
        }
        w->lat[w->nlat++] = ms;
    }
    close(fd);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct phase {
    int k;
    long messages, failed;
    double seconds, msg_s, obs_s, p50, p99, max;
    long rss_after;
    double cpu; /* CPU seconds pvwatch used (all its threads) */
};

/* CPU seconds (user + system, all threads) the process has used so far,
 * from /proc/PID/stat; -1 if unreadable. Less sensitive than rates to
 * other load on the machine: the cost of a message, not its wait. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%lu %lu",
                     &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static struct phase run_phase(int k, int phase_no)
{
    struct worker *w = calloc((size_t)k, sizeof *w);
    if (!w)
        die("calloc");
    pthread_barrier_init(&start_line, NULL, (unsigned)k + 1);
    phase_quota = opt.messages ? (opt.messages + k - 1) / k : 0;
    atomic_store(&workers_done, 0);
    for (int i = 0; i < k; i++) {
        w[i].t = phase_no * MAX_K + i;
        if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0)
            die("pthread_create");
    }
    /* Set before the barrier, which publishes it to the workers; they
     * connect first, so the phase starts at the barrier. */
    phase_end = now_s() + opt.seconds;
    pthread_barrier_wait(&start_line);
    double t0 = now_s();
    double cpu0 = cpu_seconds(pv_pid);
    last_phase_first = nrss;
    rss_sample(); /* the phase's start, for the soak's tenths */
    /* Sample the RSS of pvwatch about once a second while the phase runs
     * (until its end, or until every sender has sent its quota). */
    while (phase_quota ? atomic_load(&workers_done) < k
                       : now_s() + 1 < phase_end) {
        nanosleep(&(struct timespec){1, 0}, NULL);
        rss_sample();
    }
    for (int i = 0; i < k; i++)
        pthread_join(w[i].thread, NULL);
    rss_sample(); /* the phase's end */
    double elapsed = now_s() - t0;
    double cpu1 = cpu_seconds(pv_pid);
    pthread_barrier_destroy(&start_line);

    struct phase ph = {.k = k, .seconds = elapsed};
    ph.cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    size_t n = 0;
    for (int i = 0; i < k; i++) {
        ph.messages += w[i].ok;
        ph.failed += w[i].failed;
        n += w[i].nlat;
    }
    double *all = malloc((n ? n : 1) * sizeof *all);
    if (!all)
        die("malloc");
    size_t j = 0;
    for (int i = 0; i < k; i++) {
        memcpy(all + j, w[i].lat, w[i].nlat * sizeof *all);
        j += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, n, sizeof *all, cmp_double);
    if (n) {
        ph.p50 = all[(n - 1) / 2];
        ph.p99 = all[(size_t)((double)(n - 1) * 0.99)];
        ph.max = all[n - 1];
    }
    free(all);
    free(w);
    ph.msg_s = (double)ph.messages / elapsed;
    ph.obs_s = ph.msg_s * OBX_PER_MESSAGE;
    ph.rss_after = rss_kb(pv_pid);
    return ph;
}

/* ---- The reference: raw inserts of the same rows ---------------------- */

static double raw_insert(long rows)
{
    char path[PATH_MAX + 32], err[512];
    snprintf(path, sizeof path, "%s/raw.db", dir);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[PATH_MAX + 40];
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        unlink(f);
    }
    pv_store *s;
    if (pv_store_open(path, &s, err, sizeof err) != 0) {
        fprintf(stderr, "bench_mllp: %s\n", err);
        exit(1);
    }
    /* The store made the schema; the inserts go through plain SQLite:
     * the default VFS (not the store's WAL gathering, walbuf.h), its own
     * automatic checkpoint inside COMMIT every 1000 WAL pages (not the
     * store's checkpoint thread), the store's page cache size. */
    pv_store_close(s);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_mllp: %s: %s\n", path, sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                 "PRAGMA cache_size=-16000",
                 NULL, NULL, NULL);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO observations (patient_id, code, code_system, name, "
            "value_num, value_text, unit, ref_low, ref_high, flag, status, "
            "observed_at, message_id, line) VALUES "
            "(?, ?, 'LN', ?, ?, ?, ?, ?, ?, 'N', 'F', ?, NULL, ?)",
            -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_mllp: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    double t0 = now_s();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (long r = 0; r < rows; r++) {
        long msg = r / OBX_PER_MESSAGE;
        int i = (int)(r % OBX_PER_MESSAGE);
        char pid[16], iso[32], text[32];
        snprintf(pid, sizeof pid, "BP%04d", (int)(msg % opt.patients));
        time_t at = 1767312000 + (time_t)msg * 60; /* 2026-01-02 + msg min */
        struct tm tm;
        gmtime_r(&at, &tm);
        strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(text, sizeof text, "%g", LABS[i].value);
        sqlite3_bind_text(st, 1, pid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, LABS[i].code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, LABS[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, LABS[i].value);
        sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, LABS[i].unit, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 7, 1.0);
        sqlite3_bind_double(st, 8, 10.0);
        sqlite3_bind_text(st, 9, iso, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 10, i + 4);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "bench_mllp: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(st);
        if ((r + 1) % 1000 == 0) {
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        }
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    double elapsed = now_s() - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return (double)rows / elapsed;
}

/* What one durable commit costs at least on the database's file system:
 * the p50 and p99 of fsync() after a 4 KiB write, over 200 tries. */
static void fsync_probe(double *p50, double *p99)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/fsync.probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die(path);
    double t[200];
    char block[4096];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < 200; i++) {
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
            die(path);
        double t0 = now_s();
        fsync(fd);
        t[i] = (now_s() - t0) * 1000;
    }
    close(fd);
    unlink(path);
    qsort(t, 200, sizeof *t, cmp_double);
    *p50 = t[99];
    *p99 = t[197];
}

/* ---- The raw-SQLite reference at pvwatch's batch sizes (issue 17) ------ */

/* pvwatch's own account of its commits, from its "stopped: MLLP" line:
 * messages it read and commits (group commits) it made over the whole
 * run. Returns 0, or -1 when the line is not in the log. */
static int stopped_counts(long *messages, long *commits)
{
    char line[1024];
    int found = -1;
    FILE *l = fopen(log_path, "r");
    while (l && fgets(line, sizeof line, l)) {
        const char *m = strstr(line, "stopped: MLLP ");
        const char *c = m ? strstr(m, ") in ") : NULL;
        if (m && c && sscanf(m, "stopped: MLLP %*s %*s %ld", messages) == 1 &&
            sscanf(c, ") in %ld", commits) == 1)
            found = 0;
    }
    if (l)
        fclose(l);
    return found;
}

/* The mean batch of the phases with more than one connection: every
 * message sent on one connection (the exposures, the warm-up, K=1 phases)
 * is a commit of its own (stop-and-wait: the next is sent after the ACK,
 * which follows the commit), so the commits left over are theirs.
 * single = messages sent on one connection; -1 when it cannot be told. */
static double multi_batch(long messages, long commits, long single)
{
    if (commits <= single || messages <= single)
        return -1;
    return (double)(messages - single) / (double)(commits - single);
}

/* The writes pvwatch makes for one ORU^R01 of the bench, by SQLite alone:
 * the messages row (with its raw bytes and content hash, written once),
 * the patient upsert (the store's statement: a no-op once the patient is
 * known) and the 10 observation rows (the store's 16 columns), into a
 * database whose schema pv_store_open made (every migration and index). */
struct ref_db {
    sqlite3 *db;
    sqlite3_stmt *msg, *pat, *obs;
};

static void ref_die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench_mllp: reference: %s: %s\n", what,
            db ? sqlite3_errmsg(db) : "no connection");
    exit(1);
}

static void ref_open(struct ref_db *r, const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[PATH_MAX + 40];
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        unlink(f);
    }
    pv_store *s;
    char err[512];
    if (pv_store_open(path, &s, err, sizeof err) != 0) {
        fprintf(stderr, "bench_mllp: %s\n", err);
        exit(1);
    }
    pv_store_close(s);
    /* Plain SQLite from here: its default VFS, its own automatic
     * checkpoint inside COMMIT (every 1000 WAL pages), WAL,
     * synchronous=FULL (each COMMIT syncs the WAL), the store's cache. */
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(r->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                     "PRAGMA cache_size=-16000; PRAGMA temp_store=MEMORY",
                     NULL, NULL, NULL) != SQLITE_OK)
        ref_die(r->db, path);
    if (sqlite3_prepare_v2(
            r->db,
            "INSERT INTO messages (source, control_id, type, name, raw, "
            "status, received_at, content_sha256, rows_stored) VALUES "
            "(?,?,?,?,?,?,?,?,?)",
            -1, &r->msg, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            r->db,
            "INSERT INTO patients (id, birth_date, sex, updated_at) "
            "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET "
            "birth_date = coalesce(?2, birth_date), "
            "sex = coalesce(?3, sex), updated_at = ?4 "
            "WHERE (?2 IS NOT NULL AND birth_date IS NOT ?2) "
            "OR (?3 IS NOT NULL AND sex IS NOT ?3)",
            -1, &r->pat, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            r->db,
            "INSERT INTO observations (patient_id, code, code_system, name, "
            "value_num, value_text, unit, ref_low, ref_high, flag, status, "
            "observed_at, message_id, line, comparator, filler_order) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            -1, &r->obs, NULL) != SQLITE_OK)
        ref_die(r->db, "prepare");
}

static void ref_close(struct ref_db *r)
{
    sqlite3_finalize(r->msg);
    sqlite3_finalize(r->pat);
    sqlite3_finalize(r->obs);
    sqlite3_close(r->db);
}

static void ref_step(struct ref_db *r, sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        ref_die(r->db, "insert");
    sqlite3_reset(st);
}

/* A reference range as the HL7 mapping stores it: "1.5-7.0" low and
 * high, "<200" high only, ">60" low only. */
static void bind_range(sqlite3_stmt *st, int col, const char *range)
{
    double lo, hi;
    if (range[0] == '<') {
        sqlite3_bind_null(st, col);
        sqlite3_bind_double(st, col + 1, atof(range + 1));
    } else if (range[0] == '>') {
        sqlite3_bind_double(st, col, atof(range + 1));
        sqlite3_bind_null(st, col + 1);
    } else if (sscanf(range, "%lf-%lf", &lo, &hi) == 2) {
        sqlite3_bind_double(st, col, lo);
        sqlite3_bind_double(st, col + 1, hi);
    } else {
        sqlite3_bind_null(st, col);
        sqlite3_bind_null(st, col + 1);
    }
}

/* Message n of the reference: the bench's own ORU^R01 (oru()), so the
 * raw bytes, the patient and the values are those pvwatch stores. */
static void ref_message(struct ref_db *r, long n)
{
    char frame[8192], ts[32], iso[32], cid[32], hash[65], text[32];
    int patient = (int)(n % opt.patients);
    size_t len = oru(frame, sizeof frame, 0, n, patient);
    time_t at = 1767312000 + (time_t)((double)n * opt.spacing);
    struct tm tm;
    gmtime_r(&at, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(cid, sizeof cid, "B0-%ld", n);
    snprintf(hash, sizeof hash, "%064lx", (unsigned long)splitmix((uint64_t)n));
    sqlite3_stmt *st = r->msg;
    sqlite3_bind_text(st, 1, "BENCH|LAB", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, "ORU^R01", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, "127.0.0.1:40000", -1, SQLITE_STATIC);
    /* Without the MLLP framing (0x0b ... 0x1c 0x0d), as pvwatch keeps it. */
    sqlite3_bind_blob(st, 5, frame + 1, (int)len - 3, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, "accepted", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 9, OBX_PER_MESSAGE);
    ref_step(r, st);
    sqlite3_int64 mid = sqlite3_last_insert_rowid(r->db);
    char pid[16];
    snprintf(pid, sizeof pid, "BP%04d", patient);
    st = r->pat;
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, "1970-01-01", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, "F", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ts, -1, SQLITE_TRANSIENT);
    ref_step(r, st);
    st = r->obs;
    for (int i = 0; i < OBX_PER_MESSAGE; i++) {
        /* The same draw as oru() for connection 0. */
        uint64_t u = splitmix(((uint64_t)n << 4) ^ (uint64_t)i);
        int abnormal = (double)(u % 1000000) < opt.abnormal_pct * 10000;
        double v = abnormal ? LABS[i].abnormal : LABS[i].value;
        const char *unit = LABS[i].unit;
        if (opt.awkward && i == AWKWARD_LAB) {
            unit = AWKWARD_UNIT;
            v = 30;
        }
        snprintf(text, sizeof text, "%g", v);
        sqlite3_bind_text(st, 1, pid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, LABS[i].code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, "LN", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, LABS[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 5, v);
        sqlite3_bind_text(st, 6, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 7, unit, -1, SQLITE_STATIC);
        bind_range(st, 8, LABS[i].range);
        sqlite3_bind_text(st, 10, abnormal ? "A" : "N", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, "F", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 12, iso, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 13, mid);
        sqlite3_bind_int(st, 14, i + 4); /* MSH, PID, OBR, then the OBX */
        sqlite3_bind_null(st, 15);
        sqlite3_bind_null(st, 16);
        ref_step(r, st);
    }
}

static void ref_exec(struct ref_db *r, const char *sql)
{
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        ref_die(r->db, sql);
}

/* Messages first..first+count-1 in transactions of a mean of batch
 * messages (sizes floor/ceil of it, so that count/batch commits are
 * made). Returns msg/s; *p99 is the p99 of a transaction's time (what a
 * message of it would wait for its ACK), *cpu the CPU seconds used. */
static double ref_phase(struct ref_db *r, long first, long count, double batch,
                        double *p99, double *cpu)
{
    if (batch < 1)
        batch = 1;
    long ntx = (long)((double)count / batch) + 2;
    double *tx = malloc((size_t)ntx * sizeof *tx);
    if (!tx)
        die("malloc");
    long ntxd = 0;
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t0 = now_s(), tb = t0;
    int open = 0;
    for (long j = 0; j < count; j++) {
        if (!open) {
            ref_exec(r, "BEGIN IMMEDIATE");
            open = 1;
            tb = now_s();
        }
        ref_message(r, first + j);
        /* Commit after message j when the running total of batch-sized
         * transactions passes a whole number. */
        if ((long)((double)(j + 1) / batch) > (long)((double)j / batch) ||
            j + 1 == count) {
            ref_exec(r, "COMMIT");
            open = 0;
            if (ntxd < ntx)
                tx[ntxd++] = (now_s() - tb) * 1000;
        }
    }
    double elapsed = now_s() - t0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    *cpu = (double)(c1.tv_sec - c0.tv_sec) +
           (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    qsort(tx, (size_t)ntxd, sizeof *tx, cmp_double);
    *p99 = ntxd ? tx[(size_t)((double)(ntxd - 1) * 0.99)] : 0;
    free(tx);
    return elapsed > 0 ? (double)count / elapsed : 0;
}

/* ---- --taskset: a run on fewer CPUs ------------------------------------ */

static cpu_set_t all_cpus; /* the bench's own mask, at start */

/* Pins the calling thread (and so pvwatch, forked from it, and the
 * sender threads it starts) to the first n CPUs of the bench's mask;
 * n = 0 gives the whole mask back. */
static void pin_cpus(int n)
{
    cpu_set_t set;
    if (n == 0) {
        set = all_cpus;
    } else {
        CPU_ZERO(&set);
        for (int c = 0, got = 0; c < CPU_SETSIZE && got < n; c++)
            if (CPU_ISSET(c, &all_cpus)) {
                CPU_SET(c, &set);
                got++;
            }
    }
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

/* ---- A comparison of configurations, interleaved ---------------------- */

static int cmp_double(const void *a, const void *b);

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* --config ...: each round runs every configuration once, in the order
 * given (A/B/A/B...: the machine's other load falls on all alike), each
 * on a fresh database with a fresh pvwatch: set-up, a 2 s warm-up, then a
 * phase per K. The raw-SQLite reference (--reference) is a configuration
 * too: at its place in the round it makes, into a fresh database, the
 * writes its pvwatch configuration made earlier in the same round (as
 * many messages per phase, after as many before them, in transactions of
 * that phase's mean batch). --taskset N runs every configuration again
 * on N CPUs (after the others, in the same round). Prints every run, then
 * per configuration and K the median and range of msg/s, and the median
 * and range of the per-round ratios: each configuration to each one
 * before it on the same CPUs, each pvwatch configuration to the
 * reference, and a pinned configuration to itself on every CPU. */
static int compare_mode(void)
{
    static double rate[MAX_CONFIGS][8][16], p99[MAX_CONFIGS][8][16],
        cpu[MAX_CONFIGS][8][16], batch[MAX_CONFIGS][8][16];
    static long msgs[MAX_CONFIGS][8][16], before[MAX_CONFIGS][16];
    int fails = 0;
    const char *base_pv = opt.pvwatch;
    printf("bench_mllp: %d configurations x %d rounds, interleaved; K =",
           nconfigs, opt.rounds);
    for (int i = 0; i < opt.nk; i++)
        printf(" %d", opt.k[i]);
    printf("; %g s per phase; %d patients, %g %% exposed (%d), %g %% "
           "abnormal results, messages %g s apart; synchronous=FULL; "
           "database in %s; %ld CPUs\n",
           opt.seconds, opt.patients, opt.exposed_pct, exposed_count(),
           opt.abnormal_pct, opt.spacing, opt.base, (long)CPU_COUNT(&all_cpus));
    for (int c = 0; c < nconfigs; c++) {
        const struct config *cf = &configs[c];
        char on[32] = "";
        if (cf->cpus)
            snprintf(on, sizeof on, ", on %d CPU%s", cf->cpus,
                     cf->cpus == 1 ? "" : "s");
        if (cf->is_ref)
            printf("  %-12s raw SQLite (default VFS, WAL, synchronous=FULL, "
                   "pvwatch's schema) repeating %s's writes at its batch "
                   "sizes%s\n",
                   cf->label, configs[cf->ref_of].label, on);
        else
            printf("  %-12s %s, plugins %s%s%s%s\n", cf->label, cf->pvwatch,
                   cf->plugins, cf->awkward ? ", awkward units (ALC in %)" : "",
                   cf->walbuf_off ? ", database.walbuf = false" : "", on);
    }
    for (int r = 0; r < opt.rounds; r++) {
        for (int c = 0; c < nconfigs; c++) {
            const struct config *cf = &configs[c];
            snprintf(dir, sizeof dir, "%s/bench_mllp.XXXXXX", opt.base);
            if (!mkdtemp(dir))
                die("mkdtemp");
            pin_cpus(cf->cpus);
            double l0 = load1();
            printf("round %d %-12s", r + 1, cf->label);
            if (cf->is_ref) {
                const int src = cf->ref_of;
                char path[PATH_MAX + 32];
                snprintf(path, sizeof path, "%s/ref.db", dir);
                struct ref_db db;
                opt.awkward = configs[src].awkward;
                ref_open(&db, path);
                double q, u;
                /* What pvwatch stored before the phases (exposures and
                 * the warm-up), untimed, so each phase meets a table of
                 * the same size. */
                (void)ref_phase(&db, 0, before[src][r], 100, &q, &u);
                long first = before[src][r];
                for (int i = 0; i < opt.nk; i++) {
                    long n = msgs[src][i][r];
                    double b = batch[src][i][r];
                    if (b <= 0)
                        b = 1;
                    rate[c][i][r] = ref_phase(&db, first, n, b, &q, &u);
                    first += n;
                    p99[c][i][r] = q;
                    cpu[c][i][r] = n > 0 ? u * 1e6 / (double)n : 0;
                    batch[c][i][r] = b;
                    msgs[c][i][r] = n;
                    printf("  K=%d %7.0f msg/s p99 %6.2f ms %4.0f us CPU/msg "
                           "(%ld messages, batch %.2f)",
                           opt.k[i], rate[c][i][r], q, cpu[c][i][r], n, b);
                }
                ref_close(&db);
            } else {
                opt.pvwatch = cf->pvwatch;
                opt.plugins = cf->plugins;
                opt.awkward = cf->awkward;
                opt.walbuf_off = cf->walbuf_off;
                port = 0;
                nrss = 0;
                /* Each run's times start again at the first day: they
                 * must stay in the past (oru). */
                atomic_store(&next_seq, 0);
                start_pvwatch();
                expose_patients();
                double saved = opt.seconds;
                long saved_m = opt.messages;
                opt.seconds = 2;
                opt.messages = 0;
                struct phase warm = run_phase(1, 0);
                opt.seconds = saved;
                opt.messages = saved_m;
                /* Messages sent on one connection: a commit each. */
                long single = exposed_count() + warm.messages + warm.failed;
                before[c][r] = exposed_count() + warm.messages;
                int nmulti = 0;
                for (int i = 0; i < opt.nk; i++) {
                    struct phase ph = run_phase(opt.k[i], i + 1);
                    rate[c][i][r] = ph.msg_s;
                    p99[c][i][r] = ph.p99;
                    msgs[c][i][r] = ph.messages;
                    cpu[c][i][r] = ph.cpu >= 0 && ph.messages > 0
                                       ? ph.cpu * 1e6 / (double)ph.messages
                                       : 0;
                    if (ph.k == 1)
                        single += ph.messages + ph.failed;
                    else
                        nmulti++;
                    fails += ph.failed > 0;
                    printf("  K=%d %7.0f msg/s p99 %6.2f ms%s", ph.k, ph.msg_s,
                           ph.p99, ph.failed ? " (NOT AA!)" : "");
                    if (ph.cpu >= 0 && ph.messages > 0)
                        printf(" %4.0f us CPU/msg",
                               ph.cpu * 1e6 / (double)ph.messages);
                }
                int rc = stop_pvwatch();
                fails += rc != 0;
                long m = 0, cm = 0;
                double mb = -1;
                if (stopped_counts(&m, &cm) == 0) {
                    mb = multi_batch(m, cm, single);
                    printf("  commits %ld for %ld messages", cm, m);
                    if (mb > 0)
                        printf(", mean batch %.2f at K>1%s", mb,
                               nmulti > 1 ? " (all K>1 phases together)" : "");
                } else {
                    printf("  (no 'stopped: MLLP' line in pvwatch's log)");
                }
                for (int i = 0; i < opt.nk; i++)
                    batch[c][i][r] = opt.k[i] == 1 ? 1 : mb;
            }
            pin_cpus(0);
            printf("  load %.2f\n", l0);
            fflush(stdout);
            if (opt.keep) {
                printf("kept %s\n", dir);
            } else {
                char cmd[PATH_MAX + 16];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                    fprintf(stderr, "bench_mllp: could not remove %s\n", dir);
            }
        }
    }
    const int n = opt.rounds;
    for (int i = 0; i < opt.nk; i++) {
        for (int c = 0; c < nconfigs; c++) {
            const struct config *cf = &configs[c];
            double v[16], q[16], ratio[16], u[16], b[16];
            for (int r = 0; r < n; r++) {
                v[r] = rate[c][i][r];
                q[r] = p99[c][i][r];
                u[r] = cpu[c][i][r];
                b[r] = batch[c][i][r];
            }
            double m = median_of(v, n), mq = median_of(q, n);
            double mu = median_of(u, n), mb = median_of(b, n);
            printf("K=%-3d %-12s median %7.0f msg/s (%.0f-%.0f), p99 median "
                   "%.2f ms (%.2f-%.2f), %s CPU median %.0f us/msg "
                   "(%.0f-%.0f)",
                   opt.k[i], cf->label, m, v[0], v[n - 1], mq, q[0], q[n - 1],
                   cf->is_ref ? "its" : "pvwatch", mu, u[0], u[n - 1]);
            if (mb > 0)
                printf(", batch median %.2f (%.2f-%.2f)", mb, b[0], b[n - 1]);
            printf("\n");
            /* The per-round ratio to each configuration before it on the
             * same CPUs; a pvwatch configuration over the reference. */
            for (int d = 0; d < c; d++) {
                if (configs[d].cpus != cf->cpus)
                    continue;
                int inv = cf->is_ref && !configs[d].is_ref;
                int num = inv ? d : c, den = inv ? c : d;
                for (int r = 0; r < n; r++)
                    ratio[r] = rate[den][i][r] > 0
                                   ? rate[num][i][r] / rate[den][i][r]
                                   : 0;
                double mr = median_of(ratio, n);
                printf("      %s / %s: median %.3f (%.3f-%.3f)%s\n",
                       configs[num].label, configs[den].label, mr, ratio[0],
                       ratio[n - 1],
                       inv && opt.k[i] == 16 ? " (target >= 0.6)" : "");
            }
            /* On fewer CPUs against the same configuration on all. */
            if (cf->cpus && cf->twin >= 0) {
                for (int r = 0; r < n; r++)
                    ratio[r] = rate[cf->twin][i][r] > 0
                                   ? rate[c][i][r] / rate[cf->twin][i][r]
                                   : 0;
                double mr = median_of(ratio, n);
                printf("      %s / %s: median %.3f (%.3f-%.3f)\n", cf->label,
                       configs[cf->twin].label, mr, ratio[0], ratio[n - 1]);
            }
        }
    }
    opt.pvwatch = base_pv;
    return fails ? 1 : 0;
}

/* ---- Main --------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage: bench_mllp PVWATCH [--seconds S] [--messages N] "
          "[--k 1,16] [--patients N] [--exposed-pct P] [--abnormal-pct P] "
          "[--awkward] [--dir DIR] [--plugins DIR] "
          "[--scripts DIR] [--db FILE] [--keep]\n"
          "       bench_mllp --config LABEL:PVWATCH:PLUGINS[:awkward]"
          "[:walbuf=off] [--config ...] [--reference raw-sqlite[:LABEL]] "
          "[--taskset N] [--rounds R] [the options above]\n"
          "  --seconds S   length of each phase (default 20)\n"
          "  --messages N  messages per phase instead (split over K)\n"
          "  --k LIST      connection counts, comma-separated (default "
          "1,16)\n"
          "  --patients N  patients in the pool (default 2000)\n"
          "  --spacing S   seconds between the times of two messages (default\n"
          "                60); all times must stay in the past: 60 s lets a\n"
          "                run send about 400,000 messages (less for a soak)\n"
          "  --exposed-pct P  share of them on baricitinib (default 10; the\n"
          "                others have no medication)\n"
          "  --abnormal-pct P share of results outside the normal range, at\n"
          "                CTCAE grade >= 2, so alerts fire (default 2)\n"
          "  --awkward     the ALC of every message in %, a unit no rule can\n"
          "                grade: rules fail on every exposed patient\n"
          "  --config ...  compare configurations: each round runs each once,\n"
          "                in the order given, on a fresh database (PLUGINS\n"
          "                may be an empty directory: no rules); per-round\n"
          "                ratios of each to each one before it\n"
          "                (:awkward as --awkward; :walbuf=off runs pvwatch\n"
          "                with database = { walbuf = false })\n"
          "  --reference raw-sqlite[:LABEL]  a configuration of the\n"
          "                comparison: SQLite alone makes LABEL's writes of\n"
          "                the same round (default: the configuration before\n"
          "                it) in transactions of LABEL's mean batch\n"
          "  --taskset N   run every configuration again on N CPUs (the\n"
          "                bench, pvwatch and the senders), same rounds\n"
          "  --rounds R    rounds of a comparison (default 5, at most 16)\n"
          "  --dir DIR     where the temporary directory (and so the "
          "database) goes\n"
          "                (default /tmp; /dev/shm shows the cost without "
          "fsync)\n"
          "  --plugins DIR the rule pack (default the repository's; an "
          "empty\n"
          "                directory measures the pipeline without rules)\n"
          "  --scripts DIR the Lua modules the rules require (default the\n"
          "                repository's scripts/; with --plugins, to measure "
          "another\n"
          "                checkout's rule pack against this one)\n"
          "  --db FILE     start pvwatch on a copy of this database (a "
          "grown one,\n"
          "                closed cleanly, without a -wal file)\n"
          "  --keep        keep the temporary directory\n",
          stderr);
    exit(2);
}

/* pvwatch's own account of the run, logged when it stops: above all the
 * checkpoints its loop ran itself (their time held up every commit). */
static void print_summary(void)
{
    char line[1024], last[1024] = "", rules[1024] = "";
    FILE *l = fopen(log_path, "r");
    while (l && fgets(line, sizeof line, l)) {
        if (strstr(line, "stopped: MLLP"))
            snprintf(last, sizeof last, "%s", line);
        if (strstr(line, "stopped: rules"))
            snprintf(rules, sizeof rules, "%s", line);
    }
    if (l)
        fclose(l);
    const char *m = strstr(last, "stopped: MLLP");
    printf("pvwatch says: %s", m ? m : "(no summary in its log)\n");
    if ((m = strstr(rules, "stopped: rules")) != NULL)
        printf("pvwatch says: %s", m);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            opt.seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--messages") && i + 1 < argc)
            opt.messages = atol(argv[++i]);
        else if (!strcmp(argv[i], "--patients") && i + 1 < argc)
            opt.patients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--plugins") && i + 1 < argc)
            opt.plugins = argv[++i];
        else if (!strcmp(argv[i], "--scripts") && i + 1 < argc)
            opt.scripts = argv[++i];
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            opt.db = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            opt.base = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            opt.keep = 1;
        else if (!strcmp(argv[i], "--exposed-pct") && i + 1 < argc)
            opt.exposed_pct = atof(argv[++i]);
        else if (!strcmp(argv[i], "--abnormal-pct") && i + 1 < argc)
            opt.abnormal_pct = atof(argv[++i]);
        else if (!strcmp(argv[i], "--spacing") && i + 1 < argc)
            opt.spacing = atof(argv[++i]);
        else if (!strcmp(argv[i], "--awkward"))
            opt.awkward = 1;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            opt.rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--config") && i + 1 < argc &&
                 nconfigs < MAX_CONFIGS / 2) {
            struct config *c = &configs[nconfigs++];
            char *spec = strdup(argv[++i]);
            c->label = strtok(spec, ":");
            c->pvwatch = strtok(NULL, ":");
            c->plugins = strtok(NULL, ":");
            c->twin = -1;
            for (char *flag; (flag = strtok(NULL, ":")) != NULL;) {
                if (!strcmp(flag, "awkward"))
                    c->awkward = 1;
                else if (!strcmp(flag, "walbuf=off"))
                    c->walbuf_off = 1;
                else if (strcmp(flag, "walbuf=on"))
                    usage();
            }
            if (!c->label || !c->pvwatch || !c->plugins)
                usage();
            static char exes[MAX_CONFIGS][PATH_MAX];
            if (!realpath(c->pvwatch, exes[nconfigs - 1]))
                die(c->pvwatch);
            c->pvwatch = exes[nconfigs - 1];
        } else if (!strcmp(argv[i], "--reference") && i + 1 < argc &&
                   nconfigs < MAX_CONFIGS / 2) {
            char *spec = strdup(argv[++i]);
            char *kind = strtok(spec, ":"), *of = strtok(NULL, ":");
            int src = -1;
            for (int d = nconfigs - 1; d >= 0; d--)
                if (!configs[d].is_ref &&
                    (!of || !strcmp(of, configs[d].label))) {
                    src = d;
                    break;
                }
            /* Its pvwatch configuration runs before it in each round. */
            if (!kind || strcmp(kind, "raw-sqlite") || src < 0) {
                fprintf(stderr, "bench_mllp: --reference raw-sqlite[:LABEL] "
                                "needs a --config LABEL before it\n");
                usage();
            }
            struct config *c = &configs[nconfigs++];
            c->label = kind;
            c->is_ref = 1;
            c->ref_of = src;
            c->pvwatch = configs[src].pvwatch;
            c->plugins = configs[src].plugins;
            c->twin = -1;
        } else if (!strcmp(argv[i], "--taskset") && i + 1 < argc) {
            opt.taskset = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--k") && i + 1 < argc) {
            opt.nk = 0;
            for (char *s = strtok(argv[++i], ","); s && opt.nk < 8;
                 s = strtok(NULL, ","))
                opt.k[opt.nk++] = atoi(s);
        } else if (argv[i][0] != '-' && !opt.pvwatch)
            opt.pvwatch = argv[i];
        else
            usage();
    }
    if (nconfigs && !opt.pvwatch)
        opt.pvwatch = configs[0].pvwatch;
    if (sched_getaffinity(0, sizeof all_cpus, &all_cpus) != 0)
        die("sched_getaffinity");
    if (opt.taskset < 0 || opt.taskset >= CPU_COUNT(&all_cpus) ||
        (opt.taskset && !nconfigs)) {
        fprintf(stderr,
                "bench_mllp: --taskset N needs --config and fewer "
                "than the %d CPUs the bench may use\n",
                CPU_COUNT(&all_cpus));
        usage();
    }
    if (opt.taskset) {
        /* Every configuration again on N CPUs, after the others. */
        int n = nconfigs;
        for (int c = 0; c < n; c++) {
            struct config *d = &configs[nconfigs++];
            *d = configs[c];
            size_t len = strlen(configs[c].label) + 16;
            d->label = malloc(len);
            if (!d->label)
                die("malloc");
            snprintf(d->label, len, "%s@%dcpu", configs[c].label, opt.taskset);
            d->cpus = opt.taskset;
            d->twin = c;
            if (d->is_ref)
                d->ref_of = configs[c].ref_of + n;
        }
    }
    if (!opt.pvwatch || opt.seconds <= 0 || opt.patients <= 0 ||
        opt.rounds < 1 || opt.rounds > 16 || opt.exposed_pct < 0 ||
        opt.abnormal_pct < 0 || opt.abnormal_pct > 100)
        usage();
    for (int i = 0; i < opt.nk; i++)
        if (opt.k[i] < 1 || opt.k[i] > MAX_K)
            usage();
    if (opt.messages) {
        /* Every message time must stay in the past (oru): pvwatch answers
         * AE to a result more than a day ahead. The warm-up adds a few
         * thousand messages. */
        double last = 1767312000.0 +
                      (double)(opt.messages * opt.nk + 20000) * opt.spacing;
        if (last > (double)time(NULL)) {
            fprintf(stderr,
                    "bench_mllp: %ld messages %g s apart from 2026-01-02 "
                    "reach past today: give --spacing %.0f or less\n",
                    opt.messages * opt.nk, opt.spacing,
                    ((double)time(NULL) - 1767312000.0) /
                        (double)(opt.messages * opt.nk + 20000));
            return 2;
        }
    }
    /* pvwatch runs in the temporary directory: resolve its path first. */
    static char exe[PATH_MAX];
    if (!realpath(opt.pvwatch, exe))
        die(opt.pvwatch);
    opt.pvwatch = exe;
    if (nconfigs)
        return compare_mode();
    snprintf(dir, sizeof dir, "%s/bench_mllp.XXXXXX", opt.base);
    if (!mkdtemp(dir))
        die("mkdtemp");

    /* The reference (issue 3): a raw insert of the same rows as a phase,
     * measured after the load, below. Its rate falls as its table grows
     * (SQLite's own checkpoints inside COMMIT write more scattered index
     * pages): about 73,000 rows/s for 100,000 rows and 35,000 rows/s for
     * 271,000 here, with nothing else running. So it is measured with
     * each phase's own number of rows, twice (the faster counts: the
     * machine may be shared), and 100,000 rows into a fresh table before
     * the load are measured too, the fastest case, for a second ratio. */
    double raw_before = raw_insert(100000);
    start_pvwatch();
    long rss_start = rss_kb(pv_pid);
    printf("bench_mllp: %s run, rule pack %s, synchronous=FULL, "
           "database in %s, MLLP 127.0.0.1:%d\n",
           opt.pvwatch, opt.plugins, dir, port);
    printf("  ORU^R01 of %d OBX each, stop-and-wait per connection, %d "
           "patients, %d of them on baricitinib; %g %% abnormal results%s; "
           "%s per phase\n",
           OBX_PER_MESSAGE, opt.patients, exposed_count(), opt.abnormal_pct,
           opt.awkward ? "; awkward units (ALC in %)" : "",
           opt.messages ? "a message count" : "a fixed time");
    double t = now_s();
    expose_patients();
    printf("  set-up: %d RDE^O11 exposures in %.2f s\n", exposed_count(),
           now_s() - t);

    /* Warm-up: a short K=1 phase, not reported, so the start RSS is of a
     * process that has loaded its rules and caches. */
    double saved = opt.seconds;
    long saved_m = opt.messages;
    opt.seconds = 2;
    opt.messages = 0;
    struct phase warm = run_phase(1, 0);
    opt.seconds = saved;
    opt.messages = saved_m;
    long rss_warm = rss_kb(pv_pid);
    printf("  warm-up: %ld messages\n", warm.messages);

    struct phase ph[8];
    long total = warm.messages + exposed_count();
    for (int i = 0; i < opt.nk; i++) {
        ph[i] = run_phase(opt.k[i], i + 1);
        total += ph[i].messages;
        printf("K=%-3d %8ld messages in %6.2f s: %8.0f msg/s %9.0f obs/s; "
               "ACK latency p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
               "%ld not AA; RSS %ld kB\n",
               ph[i].k, ph[i].messages, ph[i].seconds, ph[i].msg_s, ph[i].obs_s,
               ph[i].p50, ph[i].p99, ph[i].max, ph[i].failed, ph[i].rss_after);
        if (ph[i].cpu >= 0 && ph[i].messages > 0)
            printf("      pvwatch CPU: %.0f us per message (%.0f %% of one "
                   "core over the phase)\n",
                   ph[i].cpu * 1e6 / (double)ph[i].messages,
                   100.0 * ph[i].cpu / ph[i].seconds);
        fflush(stdout);
    }
    long rss_end = rss_kb(pv_pid);
    int rc = stop_pvwatch();

    /* The reference for each phase: as many rows as it stored (at least
     * 10000, so that its time is measurable; at most 1,000,000, so that a
     * long run for the RSS, --messages 10000000, does not end in an hour
     * of reference inserts; fewer rows make a faster reference). */
    double same[8];
    long same_rows[8];
    for (int i = 0; i < opt.nk; i++) {
        long rows = ph[i].messages * OBX_PER_MESSAGE;
        rows = rows < 10000 ? 10000 : rows > 1000000 ? 1000000 : rows;
        double a = raw_insert(rows), b = raw_insert(rows);
        same[i] = a > b ? a : b;
        same_rows[i] = rows;
    }
    printf("raw SQLite insert, same schema (pv_store_open), one prepared "
           "statement, 1000-row transactions, synchronous=NORMAL, into a "
           "fresh table: %.0f rows/s for 100000 rows before the load",
           raw_before);
    for (int i = 0; i < opt.nk; i++)
        printf("; %.0f rows/s for K=%d's %ld rows after it", same[i], ph[i].k,
               same_rows[i]);
    printf(" (the faster of two runs)\n");
    for (int i = 0; i < opt.nk; i++)
        printf("ratio obs/s at K=%d to a raw insert of the same rows: "
               "%.3f%s; to 100000 rows: %.3f\n",
               ph[i].k, ph[i].obs_s / same[i],
               ph[i].k == 16 ? " (target >= 0.5)" : "",
               ph[i].obs_s / raw_before);
    for (int i = 0; i < opt.nk; i++)
        if (ph[i].k == 1)
            printf("p99 ACK latency at K=1: %.3f ms (target <= 2 ms)\n",
                   ph[i].p99);
    printf("RSS of pvwatch (VmRSS): %ld kB at start, %ld kB after warm-up, "
           "%ld kB at the end, after %ld messages (%+ld kB since warm-up)\n",
           rss_start, rss_warm, rss_end, total, rss_end - rss_warm);
    size_t n = nrss - last_phase_first;
    if (n >= 30) {
        /* The soak (issue 17 item 5): the last phase by tenths of its
         * messages, each tenth's start and end time interpolated between
         * the once-a-second samples: does the rate hold up as the database
         * and each patient's history grow, and does the RSS stay flat?
         * (The senders finish their quotas at slightly different times,
         * so the very end runs with fewer than K of them.) */
        const long *sq = seq_samples + last_phase_first;
        const double *tq = time_samples + last_phase_first;
        const long *rq = rss_samples + last_phase_first;
        long total_sent = sq[n - 1] - sq[0];
        double at_t[11];
        long at_rss[11];
        for (int j = 0, k = 0; j <= 10; j++) {
            double mark = (double)sq[0] + (double)total_sent * j / 10.0;
            while ((size_t)k < n - 1 && (double)sq[k] < mark)
                k++;
            at_rss[j] = rq[k];
            if (k == 0 || sq[k] == sq[k - 1])
                at_t[j] = tq[k];
            else
                at_t[j] = tq[k - 1] + (mark - (double)sq[k - 1]) /
                                          (double)(sq[k] - sq[k - 1]) *
                                          (tq[k] - tq[k - 1]);
        }
        double tr[10];
        printf("soak, last phase (K=%d, %ld messages in %zu samples) by "
               "tenths of its messages, msg/s:",
               opt.k[opt.nk - 1], total_sent, n);
        for (int j = 0; j < 10; j++) {
            double dt = at_t[j + 1] - at_t[j];
            tr[j] = dt > 0 ? (double)total_sent / 10.0 / dt : 0;
            printf(" %.0f", tr[j]);
        }
        printf("\n      VmRSS (kB) at the start of each tenth and at the "
               "end:");
        for (int j = 0; j <= 10; j++)
            printf(" %ld", at_rss[j]);
        printf("\n      last tenth / first tenth: %.3f (target >= 0.8); "
               "RSS at the end - at the end of the first tenth: %+ld kB\n",
               tr[0] > 0 ? tr[9] / tr[0] : 0, at_rss[10] - at_rss[1]);
    } else if (n > 0) {
        printf("soak: the last phase had %zu samples (one a second), too "
               "few for tenths (30 or more)\n",
               n);
    }
    if (nrss) {
        /* Quartiles of the run: flat means the last ones stay close. */
        printf("RSS samples, one a second over the phases (kB), at 0%%, "
               "25%%, 50%%, 75%%, 100%% of them: %ld %ld %ld %ld %ld\n",
               rss_samples[0], rss_samples[nrss / 4], rss_samples[nrss / 2],
               rss_samples[3 * nrss / 4], rss_samples[nrss - 1]);
    }
    double f50, f99;
    fsync_probe(&f50, &f99);
    printf("fsync() of 4 KiB on the database's file system (%s): p50 %.3f "
           "ms, p99 %.3f ms (a durable commit costs at least one)\n",
           opt.base, f50, f99);
    printf("pvwatch exit status after SIGTERM: %d\n", rc);
    print_summary();
    long sm, sc;
    if (stopped_counts(&sm, &sc) == 0 && sc > 0) {
        long single = exposed_count() + warm.messages + warm.failed;
        int nmulti = 0;
        for (int i = 0; i < opt.nk; i++) {
            if (ph[i].k == 1)
                single += ph[i].messages + ph[i].failed;
            else
                nmulti++;
        }
        double mb = multi_batch(sm, sc, single);
        printf("commits: %ld for %ld messages (%.2f a commit over the run)", sc,
               sm, (double)sm / (double)sc);
        if (mb > 0 && nmulti)
            printf("; %.2f a commit at K>1%s", mb,
                   nmulti > 1 ? " (all K>1 phases together)" : "");
        printf("\n");
    }

    if (opt.keep) {
        printf("kept %s\n", dir);
    } else {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_mllp: could not remove %s\n", dir);
    }
    long failed = 0;
    for (int i = 0; i < opt.nk; i++)
        failed += ph[i].failed;
    return failed || rc ? 1 : 0;
}
