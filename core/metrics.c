/* metrics.c: see metrics.h.
 *
 * Every counter is an _Atomic uint64_t bumped with a relaxed fetch-add: the
 * loop thread (and the store's checkpoint thread, libuv's pool for the WAL
 * sync) write, the console's threads read, and a reader needs no ordering
 * beyond each value being whole. The rule table is filled under a mutex
 * and published by a release store of its count; readers take the count
 * with an acquire load and read only entries below it, whose names never
 * change again. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PV_VERSION
#define PV_VERSION "unknown"
#endif

typedef _Atomic uint64_t ctr;

static inline void bump(ctr *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t get(ctr *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- Feeds ------------------------------------------------------------ */

static const char *const feed_names[PV_FEED_COUNT] = {"mllp", "inbox_hl7",
                                                      "inbox_csv", "tail"};
static const char *const ack_names[3] = {"AA", "AE", "AR"};

static ctr m_received[PV_FEED_COUNT];
static ctr m_stored[PV_FEED_COUNT][3];
static ctr m_failed[PV_FEED_COUNT];
static ctr m_rows_rejected[PV_FEED_COUNT];
static _Atomic int64_t m_mllp_open;
static ctr m_mllp_accepted;

const char *pv_metrics_feed_name(int feed)
{
    return feed >= 0 && feed < PV_FEED_COUNT ? feed_names[feed] : "unknown";
}

static inline int feed_ok(int feed)
{
    return feed >= 0 && feed < PV_FEED_COUNT;
}

void pv_metrics_received(int feed)
{
    if (feed_ok(feed))
        bump(&m_received[feed], 1);
}

void pv_metrics_stored_n(int feed, int ack, long n)
{
    if (!feed_ok(feed) || n <= 0)
        return;
    if (ack < 0 || ack > 2)
        ack = 0;
    bump(&m_stored[feed][ack], (uint64_t)n);
}

void pv_metrics_stored(int feed, int ack)
{
    pv_metrics_stored_n(feed, ack, 1);
}

void pv_metrics_failed(int feed, long n)
{
    if (feed_ok(feed) && n > 0)
        bump(&m_failed[feed], (uint64_t)n);
}

void pv_metrics_rejected(int feed, long n)
{
    if (feed_ok(feed) && n > 0)
        bump(&m_rows_rejected[feed], (uint64_t)n);
}

void pv_metrics_mllp_conn(int delta)
{
    atomic_fetch_add_explicit(&m_mllp_open, delta, memory_order_relaxed);
    if (delta > 0)
        bump(&m_mllp_accepted, (uint64_t)delta);
}

/* ---- Rules and alerts ------------------------------------------------- */

#define NSEV 5 /* unknown, low, medium, high, critical */
#define NEV 5  /* opened, escalated, repeated, acknowledged, closed */
static const char *const sev_names[NSEV] = {"unknown", "low", "medium", "high",
                                            "critical"};
static const char *const ev_names[NEV] = {"opened", "escalated", "repeated",
                                          "acknowledged", "closed"};
static const char *const kill_names[3] = {"instructions", "memory", "time"};

struct pv_metrics_rule {
    char name[128];
    ctr calls, errors, kills[3], ns, gated;
    ctr alerts[NSEV][NEV];
};

/* The last entry is "_other", for names past the table's end. */
static struct pv_metrics_rule m_rules[PV_METRICS_MAX_RULES + 1];
static _Atomic size_t m_nrules;
static _Atomic int m_other_named; /* "_other" was handed out */
static pthread_mutex_t m_rules_mu = PTHREAD_MUTEX_INITIALIZER;

/* Lock-free: the published entries. */
static struct pv_metrics_rule *find_rule(const char *name, size_t n)
{
    if (strlen(name) >= sizeof m_rules[0].name)
        return NULL; /* never in the table: "_other" */
    for (size_t i = 0; i < n; i++)
        if (strcmp(m_rules[i].name, name) == 0)
            return &m_rules[i];
    return NULL;
}

pv_metrics_rule *pv_metrics_rule_get(const char *name)
{
    if (!name)
        name = "";
    size_t n = atomic_load_explicit(&m_nrules, memory_order_acquire);
    struct pv_metrics_rule *r = find_rule(name, n);
    if (r)
        return r;
    pthread_mutex_lock(&m_rules_mu);
    n = atomic_load_explicit(&m_nrules, memory_order_relaxed);
    r = find_rule(name, n);
    if (!r && n < PV_METRICS_MAX_RULES && strlen(name) < sizeof r->name) {
        r = &m_rules[n];
        snprintf(r->name, sizeof r->name, "%s", name);
        atomic_store_explicit(&m_nrules, n + 1, memory_order_release);
    }
    if (!r) {
        r = &m_rules[PV_METRICS_MAX_RULES];
        if (!m_other_named) {
            snprintf(r->name, sizeof r->name, "_other");
            m_other_named = 1;
        }
    }
    pthread_mutex_unlock(&m_rules_mu);
    return r;
}

void pv_metrics_rule_call(pv_metrics_rule *r, uint64_t ns, int outcome)
{
    if (!r)
        return;
    bump(&r->calls, 1);
    bump(&r->ns, ns);
    if (outcome == PV_RULE_ERROR)
        bump(&r->errors, 1);
    else if (outcome >= PV_RULE_KILL_INSNS && outcome <= PV_RULE_KILL_TIME)
        bump(&r->kills[outcome - PV_RULE_KILL_INSNS], 1);
}

void pv_metrics_rule_gated(pv_metrics_rule *r)
{
    if (r)
        bump(&r->gated, 1);
}

static int sev_index(const char *s)
{
    for (int i = 1; s && i < NSEV; i++)
        if (strcmp(s, sev_names[i]) == 0)
            return i;
    return 0;
}

void pv_metrics_alert(const char *rule, const char *severity, const char *event)
{
    if (!event)
        return;
    int ev = -1;
    for (int i = 0; i < NEV; i++)
        if (strcmp(event, ev_names[i]) == 0)
            ev = i;
    if (ev < 0)
        return;
    bump(&pv_metrics_rule_get(rule)->alerts[sev_index(severity)][ev], 1);
}

/* Copies the JSON string value of key (a top-level "key":"..." of an
 * alert-log line, unescaped for \" and \\) into out; "" when absent. In a
 * JSON string every quote is escaped, so "key": never matches inside a
 * value. */
static void json_field(const char *json, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return;
    p += strlen(pat);
    size_t n = 0;
    for (; *p && *p != '"' && n + 1 < cap; p++) {
        if (*p == '\\' && p[1])
            p++;
        out[n++] = *p;
    }
    out[n] = '\0';
}

void pv_metrics_alert_line(const char *event, const char *json)
{
    if (!event || !json)
        return;
    char rule[128], sev[32];
    json_field(json, "rule", rule, sizeof rule);
    json_field(json, "severity", sev, sizeof sev);
    pv_metrics_alert(rule, sev, event);
}

/* ---- Mail ------------------------------------------------------------- */

static const char *const mail_names[3] = {"sent", "retry", "failed"};
static ctr m_mail[3];

void pv_metrics_mail(int result)
{
    if (result >= 0 && result < 3)
        bump(&m_mail[result], 1);
}

/* ---- Histograms ------------------------------------------------------- */

#define MAX_BUCKETS 16
struct hist {
    const double *bounds; /* upper bounds, in the unit shown */
    size_t nb;
    double div; /* the value recorded / div = the value in the bounds' unit */
    ctr bucket[MAX_BUCKETS + 1]; /* not cumulative; the last: +Inf */
    ctr count, sum;              /* sum in recorded units */
};

static const double sec_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
static const double batch_bounds[] = {1,  2,   4,   8,   16,  32,
                                      64, 128, 256, 512, 1000};

#define HIST(b, s)                                                             \
    {                                                                          \
        .bounds = b, .nb = sizeof b / sizeof b[0], .div = s                    \
    }
static struct hist h_wal_sync = HIST(sec_bounds, 1e9);
static struct hist h_ckpt_thread = HIST(sec_bounds, 1e9);
static struct hist h_ckpt_writer = HIST(sec_bounds, 1e9);
static struct hist h_batch = HIST(batch_bounds, 1);

static void observe(struct hist *h, uint64_t v)
{
    double x = (double)v / h->div;
    size_t i = 0;
    while (i < h->nb && x > h->bounds[i])
        i++;
    bump(&h->bucket[i], 1);
    bump(&h->sum, v);
    bump(&h->count, 1);
}

void pv_metrics_wal_sync(uint64_t ns)
{
    observe(&h_wal_sync, ns);
}

void pv_metrics_checkpoint(uint64_t ns, int on_writer)
{
    observe(on_writer ? &h_ckpt_writer : &h_ckpt_thread, ns);
}

void pv_metrics_commit_batch(long n)
{
    observe(&h_batch, n > 0 ? (uint64_t)n : 0);
}

uint64_t pv_metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Readiness -------------------------------------------------------- */

static _Atomic unsigned m_ready;
static _Atomic int m_db_failing; /* the last commit or WAL sync failed */

void pv_metrics_db_write(int ok)
{
    /* Stored only on a change: a commit reads a cache line, no write. */
    int failing = !ok;
    if (atomic_load_explicit(&m_db_failing, memory_order_relaxed) != failing)
        atomic_store_explicit(&m_db_failing, failing, memory_order_relaxed);
}

/* The bits, with DB cleared while writes fail. */
static unsigned ready_bits(void)
{
    unsigned r = atomic_load(&m_ready);
    if (atomic_load_explicit(&m_db_failing, memory_order_relaxed))
        r &= ~(unsigned)PV_READY_DB;
    return r;
}

void pv_metrics_set_ready(unsigned bits, int on)
{
    if (on)
        atomic_fetch_or(&m_ready, bits);
    else
        atomic_fetch_and(&m_ready, ~bits);
}

int pv_metrics_ready(pv_buf *why)
{
    unsigned r = ready_bits();
    if ((r & PV_READY_ALL) == PV_READY_ALL)
        return 1;
    if (why) {
        if (!(atomic_load(&m_ready) & PV_READY_DB))
            pv_buf_puts(why, "database not open and writable\n");
        else if (!(r & PV_READY_DB))
            pv_buf_puts(why, "database not writable: the last commit or WAL "
                             "sync failed\n");
        if (!(r & PV_READY_RULES))
            pv_buf_puts(why, "rules not loaded\n");
        if (!(r & PV_READY_LISTENERS))
            pv_buf_puts(why, "listeners not bound\n");
    }
    return 0;
}

/* ---- Start time and reset --------------------------------------------- */

static _Atomic int64_t m_start_ms;

/* The process' start: taken when the program is loaded. */
__attribute__((constructor)) static void take_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store(&m_start_ms, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void hist_zero(struct hist *h)
{
    for (size_t i = 0; i <= MAX_BUCKETS; i++)
        atomic_store(&h->bucket[i], 0);
    atomic_store(&h->count, 0);
    atomic_store(&h->sum, 0);
}

void pv_metrics_reset(void)
{
    pthread_mutex_lock(&m_rules_mu);
    for (int f = 0; f < PV_FEED_COUNT; f++) {
        atomic_store(&m_received[f], 0);
        atomic_store(&m_failed[f], 0);
        atomic_store(&m_rows_rejected[f], 0);
        for (int a = 0; a < 3; a++)
            atomic_store(&m_stored[f][a], 0);
    }
    for (int i = 0; i < 3; i++)
        atomic_store(&m_mail[i], 0);
    atomic_store(&m_mllp_open, 0);
    atomic_store(&m_mllp_accepted, 0);
    size_t n = atomic_load(&m_nrules);
    for (size_t i = 0; i < n; i++)
        memset(&m_rules[i], 0, sizeof m_rules[i]);
    memset(&m_rules[PV_METRICS_MAX_RULES], 0, sizeof m_rules[0]);
    m_other_named = 0;
    atomic_store(&m_nrules, 0);
    hist_zero(&h_wal_sync);
    hist_zero(&h_ckpt_thread);
    hist_zero(&h_ckpt_writer);
    hist_zero(&h_batch);
    atomic_store(&m_ready, 0);
    atomic_store(&m_db_failing, 0);
    pthread_mutex_unlock(&m_rules_mu);
}

/* ---- Rendering -------------------------------------------------------- */

/* A label value, escaped as the exposition format says: backslash, double
 * quote and line feed. */
static void put_label(pv_buf *out, const char *v)
{
    const char *run = v;
    for (const char *p = v; *p; p++) {
        const char *esc = *p == '\\'   ? "\\\\"
                          : *p == '"'  ? "\\\""
                          : *p == '\n' ? "\\n"
                                       : NULL;
        if (!esc)
            continue;
        pv_buf_append(out, run, (size_t)(p - run));
        pv_buf_puts(out, esc);
        run = p + 1;
    }
    pv_buf_puts(out, run);
}

static void family(pv_buf *out, const char *name, const char *type,
                   const char *help)
{
    pv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A float, in the shortest of %.15g and %.17g that reads back exactly. */
static void put_num(pv_buf *out, double v)
{
    char s[40];
    snprintf(s, sizeof s, "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof s, "%.17g", v);
    pv_buf_puts(out, s);
}

static void render_hist(pv_buf *out, const char *name, const char *label,
                        struct hist *h)
{
    uint64_t cum = 0;
    const char *sep = label ? "," : "";
    for (size_t i = 0; i <= h->nb; i++) {
        cum += get(&h->bucket[i]);
        pv_buf_printf(out, "%s_bucket{%s%sle=\"", name, label ? label : "",
                      sep);
        if (i < h->nb)
            pv_buf_printf(out, "%g", h->bounds[i]);
        else
            pv_buf_puts(out, "+Inf");
        pv_buf_printf(out, "\"} %llu\n", (unsigned long long)cum);
    }
    /* count is the +Inf bucket as read above, so that the two agree even
     * when an observation lands while this is being read. */
    pv_buf_printf(out, "%s_sum%s%s%s ", name, label ? "{" : "",
                  label ? label : "", label ? "}" : "");
    put_num(out, (double)get(&h->sum) / h->div);
    pv_buf_printf(out, "\n%s_count%s%s%s %llu\n", name, label ? "{" : "",
                  label ? label : "", label ? "}" : "",
                  (unsigned long long)cum);
}

static void render_feeds(pv_buf *out)
{
    family(out, "pvwatch_messages_received_total", "counter",
           "Messages received, by feed (an HL7 message on MLLP, also each "
           "of a batch frame; a file in the inbox; a pass over a tailed "
           "file).");
    for (int f = 0; f < PV_FEED_COUNT; f++)
        pv_buf_printf(out,
                      "pvwatch_messages_received_total{feed=\"%s\"} %llu\n",
                      feed_names[f], (unsigned long long)get(&m_received[f]));
    family(out, "pvwatch_messages_stored_total", "counter",
           "Messages whose outcome is committed (and, for MLLP, synced "
           "before the ACK), by feed and ACK code (files and tail passes: "
           "AA when every record was stored, AE when some were rejected).");
    for (int f = 0; f < PV_FEED_COUNT; f++)
        for (int a = 0; a < 3; a++)
            pv_buf_printf(
                out,
                "pvwatch_messages_stored_total{feed=\"%s\",ack=\"%s\"} %llu\n",
                feed_names[f], ack_names[a],
                (unsigned long long)get(&m_stored[f][a]));
    family(out, "pvwatch_messages_failed_total", "counter",
           "Messages not stored because the database failed (MLLP: "
           "answered AE; files and tail passes: tried again).");
    for (int f = 0; f < PV_FEED_COUNT; f++)
        pv_buf_printf(out, "pvwatch_messages_failed_total{feed=\"%s\"} %llu\n",
                      feed_names[f], (unsigned long long)get(&m_failed[f]));
    family(out, "pvwatch_rows_rejected_total", "counter",
           "Records rejected, by feed (CSV rows, HL7 messages answered "
           "AE/AR and segments left out of an accepted message).");
    for (int f = 0; f < PV_FEED_COUNT; f++)
        pv_buf_printf(out, "pvwatch_rows_rejected_total{feed=\"%s\"} %llu\n",
                      feed_names[f],
                      (unsigned long long)get(&m_rows_rejected[f]));
    family(out, "pvwatch_mllp_connections", "gauge", "MLLP connections open.");
    int64_t open = atomic_load_explicit(&m_mllp_open, memory_order_relaxed);
    pv_buf_printf(out, "pvwatch_mllp_connections %lld\n",
                  (long long)(open > 0 ? open : 0));
    family(out, "pvwatch_mllp_connections_total", "counter",
           "MLLP connections accepted.");
    pv_buf_printf(out, "pvwatch_mllp_connections_total %llu\n",
                  (unsigned long long)get(&m_mllp_accepted));
}

static void rule_label(pv_buf *out, const char *name)
{
    pv_buf_puts(out, "{rule=\"");
    put_label(out, name);
    pv_buf_puts(out, "\"");
}

static void render_rules(pv_buf *out)
{
    size_t n = atomic_load_explicit(&m_nrules, memory_order_acquire);
    struct pv_metrics_rule *other = &m_rules[PV_METRICS_MAX_RULES];
    /* The entries to show: the table, and "_other" once used. */
    size_t total = n + (atomic_load(&m_other_named) ? 1 : 0);
    if (total == 0)
        return;
#define EACH_RULE(r)                                                           \
    for (size_t i_ = 0; i_ < total; i_++)                                      \
        for (struct pv_metrics_rule *r = i_ < n ? &m_rules[i_] : other; r;     \
             r = NULL)
    family(out, "pvwatch_rule_calls_total", "counter",
           "Calls of a rule (each fact or scheduled run it was given).");
    EACH_RULE(r)
    {
        pv_buf_puts(out, "pvwatch_rule_calls_total");
        rule_label(out, r->name);
        pv_buf_printf(out, "} %llu\n", (unsigned long long)get(&r->calls));
    }
    family(out, "pvwatch_rule_gated_total", "counter",
           "Facts a rule was not called for because the patient was never "
           "exposed to a drug its on.exposure names (the exposure gate).");
    EACH_RULE(r)
    {
        pv_buf_puts(out, "pvwatch_rule_gated_total");
        rule_label(out, r->name);
        pv_buf_printf(out, "} %llu\n", (unsigned long long)get(&r->gated));
    }
    family(out, "pvwatch_rule_errors_total", "counter",
           "Calls of a rule that raised a Lua error (budget kills not "
           "included).");
    EACH_RULE(r)
    {
        pv_buf_puts(out, "pvwatch_rule_errors_total");
        rule_label(out, r->name);
        pv_buf_printf(out, "} %llu\n", (unsigned long long)get(&r->errors));
    }
    family(out, "pvwatch_rule_budget_kills_total", "counter",
           "Calls of a rule stopped by a limit: instructions "
           "(limits.rule_instructions), memory, time "
           "(limits.rule_time_ms).");
    EACH_RULE(r)
    {
        for (int k = 0; k < 3; k++) {
            pv_buf_puts(out, "pvwatch_rule_budget_kills_total");
            rule_label(out, r->name);
            pv_buf_printf(out, ",limit=\"%s\"} %llu\n", kill_names[k],
                          (unsigned long long)get(&r->kills[k]));
        }
    }
    family(out, "pvwatch_rule_seconds_total", "counter",
           "Time spent in calls of a rule, in seconds.");
    EACH_RULE(r)
    {
        pv_buf_puts(out, "pvwatch_rule_seconds_total");
        rule_label(out, r->name);
        pv_buf_puts(out, "} ");
        put_num(out, (double)get(&r->ns) / 1e9);
        pv_buf_puts(out, "\n");
    }
    int header = 0;
    EACH_RULE(r)
    {
        for (int s = 0; s < NSEV; s++)
            for (int e = 0; e < NEV; e++) {
                uint64_t v = get(&r->alerts[s][e]);
                if (!v)
                    continue;
                if (!header++)
                    family(out, "pvwatch_alert_events_total", "counter",
                           "Alert events, by rule, severity and event "
                           "(opened, escalated, repeated, acknowledged, "
                           "closed), as written to the alert log by this "
                           "process.");
                pv_buf_puts(out, "pvwatch_alert_events_total");
                rule_label(out, r->name);
                pv_buf_printf(out, ",severity=\"%s\",event=\"%s\"} %llu\n",
                              sev_names[s], ev_names[e], (unsigned long long)v);
            }
    }
#undef EACH_RULE
}

static void render_outbox(sqlite3 *ro, pv_buf *out)
{
    static const char *const st_names[3] = {"pending", "sent", "failed"};
    long long v[3] = {0, 0, 0};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ro,
                           "SELECT status, count(*) FROM outbox GROUP BY "
                           "status",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; s && i < 3; i++)
            if (strcmp(s, st_names[i]) == 0)
                v[i] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return; /* busy or gone: leave the gauge out rather than lie */
    family(out, "pvwatch_outbox_messages", "gauge",
           "Alert e-mails in the outbox, by status, read from the database "
           "at scrape time.");
    for (int i = 0; i < 3; i++)
        pv_buf_printf(out, "pvwatch_outbox_messages{status=\"%s\"} %lld\n",
                      st_names[i], v[i]);
}

void pv_metrics_render(sqlite3 *ro, pv_buf *out)
{
    family(out, "pvwatch_build_info", "gauge",
           "Always 1; the version of pvwatch as a label.");
    pv_buf_puts(out, "pvwatch_build_info{version=\"");
    put_label(out, PV_VERSION);
    pv_buf_puts(out, "\"} 1\n");
    family(out, "process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch, in seconds.");
    pv_buf_puts(out, "process_start_time_seconds ");
    put_num(out, (double)atomic_load(&m_start_ms) / 1000.0);
    pv_buf_puts(out, "\n");
    family(out, "pvwatch_ready", "gauge",
           "1 when a part pvwatch needs is ready (db: open and writable, "
           "rules: loaded, listeners: bound), else 0.");
    unsigned r = ready_bits();
    pv_buf_printf(
        out,
        "pvwatch_ready{part=\"db\"} %d\npvwatch_ready{part=\"rules\"} "
        "%d\npvwatch_ready{part=\"listeners\"} %d\n",
        !!(r & PV_READY_DB), !!(r & PV_READY_RULES),
        !!(r & PV_READY_LISTENERS));
    render_feeds(out);
    render_rules(out);
    family(out, "pvwatch_wal_sync_seconds", "histogram",
           "Time of one fdatasync of the WAL (a group commit's, or "
           "SQLite's own).");
    render_hist(out, "pvwatch_wal_sync_seconds", NULL, &h_wal_sync);
    family(out, "pvwatch_checkpoint_seconds", "histogram",
           "Time of one WAL checkpoint pass, by who ran it (thread: the "
           "store's checkpoint thread; writer: the loop, holding up "
           "commits).");
    render_hist(out, "pvwatch_checkpoint_seconds", "by=\"thread\"",
                &h_ckpt_thread);
    render_hist(out, "pvwatch_checkpoint_seconds", "by=\"writer\"",
                &h_ckpt_writer);
    family(out, "pvwatch_commit_batch_messages", "histogram",
           "Messages in one MLLP group commit.");
    render_hist(out, "pvwatch_commit_batch_messages", NULL, &h_batch);
    family(out, "pvwatch_mail_attempts_total", "counter",
           "E-mail delivery attempts of the outbox, by result (sent; retry: "
           "failed, tried again later; failed: given up).");
    for (int i = 0; i < 3; i++)
        pv_buf_printf(out, "pvwatch_mail_attempts_total{result=\"%s\"} %llu\n",
                      mail_names[i], (unsigned long long)get(&m_mail[i]));
    if (ro)
        render_outbox(ro, out);
}
