/* test_notify: the e-mail outbox through its public API (notify.h, with the
 * pipeline of ingest.h). Alerts are raised with pv_ingest_engine_alert, mail
 * is sent with pv_notify_drain: with email.dir to .eml files, whose headers
 * are checked (RFC 2047 subject: words of at most 75 characters, lines of
 * at most 78, each word whole UTF-8, decoding to the subject; no header
 * injection from a title); with email.url to a closed port on a fixed
 * clock, whose retries follow the backoff bounds (base * 2^(n-1), capped,
 * times 0.5 to 1.5) until max_attempts gives the row up with an engine
 * alert; pv_notify_retry makes it pending again. A row of a relaxed
 * commit (an MLLP batch) is not sent before that commit's WAL sync. Without
 * email nothing is queued. Each case runs in its own temporary directory. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "test.h"

static char base[] = "/tmp/pv_test_notify.XXXXXX";

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* Writes base/name/pv.lua with text and opens the pipeline on it (no
 * rules). Exits on failure: nothing else can be tested then. */
static pv_ingest *open_case(const char *name, const char *text, pv_config *cfg)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", base, name);
    if (mkdir(dir, 0700) != 0)
        die(dir);
    snprintf(path, sizeof path, "%s/pv.lua", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path);
    fputs(text, f);
    fclose(f);
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(path, cfg, &errors) != 0) {
        fprintf(stderr, "config %s: %s\n", path, pv_buf_cstr(&errors));
        exit(2);
    }
    pv_ingest *p = NULL;
    if (pv_ingest_open(cfg, NULL, 1, &p, &errors) != 0 || !p) {
        fprintf(stderr, "pv_ingest_open: %s\n", pv_buf_cstr(&errors));
        exit(2);
    }
    pv_buf_free(&errors);
    return p;
}

static long long q_int(pv_ingest *p, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    sqlite3 *db = pv_store_db(pv_ingest_store(p));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    pv_buf b = PV_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        pv_buf_append(&b, chunk, n);
    fclose(f);
    pv_buf_puts(&b, ""); /* a valid C string, even when empty */
    return b.ptr;
}

/* ---------------------------------------------------------------------- */
/* RFC 2047                                                                */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 s[0..n) onto out; -1 when malformed. */
static int b64_decode(const char *s, size_t n, pv_buf *out)
{
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' ? 0 : b64val((unsigned char)s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return -1;
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
                     (unsigned)v[2] << 6 | (unsigned)v[3];
        char bytes[3] = {(char)(w >> 16), (char)(w >> 8), (char)w};
        size_t keep = s[i + 2] == '=' ? 1 : s[i + 3] == '=' ? 2 : 3;
        pv_buf_append(out, bytes, keep);
    }
    return 0;
}

/* Whether s[0..n) is whole, valid UTF-8 (no character cut in two). */
static int utf8_whole(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80             ? 1
                     : (s[i] & 0xE0) == 0xC0 ? 2
                     : (s[i] & 0xF0) == 0xE0 ? 3
                     : (s[i] & 0xF8) == 0xF0 ? 4
                                             : 0;
        if (!len || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

struct header_check {
    int lines_ok; /* every header line at most 78 characters */
    int words_ok; /* every encoded word well formed, <= 75, whole UTF-8 */
    int ascii;    /* the header is 7-bit */
    int injected; /* a header line starting "Bcc:" */
    char subject[1024];
    char message_id[256];
};

/* Checks the header of the message text and decodes its Subject. */
static void check_header(const char *msg, struct header_check *h)
{
    memset(h, 0, sizeof *h);
    h->lines_ok = h->words_ok = h->ascii = 1;
    const char *end = strstr(msg, "\r\n\r\n");
    if (!end) {
        h->lines_ok = h->words_ok = 0;
        return;
    }
    pv_buf subj = PV_BUF_INIT, raw = PV_BUF_INIT;
    int in_subject = 0;
    for (const char *l = msg; l < end + 2;) {
        const char *e = strstr(l, "\r\n");
        size_t len = (size_t)(e - l);
        if (len > 78)
            h->lines_ok = 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)l[i] >= 0x80)
                h->ascii = 0;
        if (!strncmp(l, "Bcc:", 4))
            h->injected = 1;
        if (!strncmp(l, "Message-ID: ", 12))
            snprintf(h->message_id, sizeof h->message_id, "%.*s",
                     (int)(len - 12), l + 12);
        if (!strncmp(l, "Subject: ", 9)) {
            in_subject = 1;
            pv_buf_append(&raw, l + 9, len - 9);
        } else if (in_subject && (*l == ' ' || *l == '\t')) {
            pv_buf_append(&raw, l, len);
        } else {
            in_subject = 0;
        }
        l = e + 2;
    }
    /* The words of the unfolded subject; white space between encoded
     * words is not part of the text (RFC 2047 section 6.2). */
    const char *s = pv_buf_cstr(&raw);
    while (s && *s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        const char *w = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        size_t wl = (size_t)(s - w);
        if (wl < 12 || wl > 75 || strncmp(w, "=?UTF-8?B?", 10) ||
            strncmp(s - 2, "?=", 2)) {
            h->words_ok = 0;
            pv_buf_append(&subj, w, wl); /* taken as plain text */
            continue;
        }
        size_t before = subj.len;
        if (b64_decode(w + 10, wl - 12, &subj) != 0 ||
            !utf8_whole((const unsigned char *)subj.ptr + before,
                        subj.len - before))
            h->words_ok = 0;
    }
    snprintf(h->subject, sizeof h->subject, "%.*s", (int)subj.len,
             subj.ptr ? subj.ptr : "");
    pv_buf_free(&subj);
    pv_buf_free(&raw);
}

static void test_eml_subjects(void)
{
    pv_config cfg;
    pv_ingest *p = open_case("eml",
                             "database = 'pv.db'\n"
                             "alert_log = 'alerts.jsonl'\n"
                             "email = { dir = 'out', min_severity = 'low' }\n",
                             &cfg);
    CHECK(pv_ingest_notify(p) != NULL);
    /* Titles: short, long with accents and CJK at the cut points, only
     * 2-byte characters, 4-byte emoji, and one that tries to add a
     * header. */
    static const char *const titles[] = {
        "Mail test",
        "Neutrop\xc3\xa9nie de grade 3 sous baricitinib \xe2\x80\x94 "
        "arr\xc3\xaat recommand\xc3\xa9, contr\xc3\xb4le de la NFS "
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86"
        "\xe3\x82\xb9\xe3\x83\x88 and more words to need several lines",
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
        "x\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a"
        "\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a"
        "\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a\xf0\x9f\x92\x8a",
        "Bad\r\nBcc: evil@example.org",
    };
    size_t n = sizeof titles / sizeof *titles;
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%zu", i);
        CHECK_INT(pv_ingest_engine_alert(p, "test.mail", key, titles[i],
                                         "detail", "action"),
                  0);
    }
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox"), (long long)n);
    CHECK_INT(pv_notify_drain(pv_ingest_notify(p), 5), (long long)n);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE status = 'sent'"),
              (long long)n);
    for (size_t i = 0; i < n; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/eml/out/outbox-%06zu.eml", base, i + 1);
        char *msg = read_file(path);
        CHECK(msg != NULL);
        if (!msg)
            continue;
        struct header_check h;
        check_header(msg, &h);
        char want[1024];
        /* Feed text reaches the Subject escaped (issue 22 item 14): the
         * injected title's CR LF are shown as \r\n, never a line break. */
        pv_buf esc = PV_BUF_INIT;
        pv_buf_escape(&esc, titles[i]);
        snprintf(want, sizeof want,
                 "[pvwatch] HIGH engine: %s \xe2\x80\x94 patient -",
                 pv_buf_cstr(&esc));
        pv_buf_free(&esc);
        if (i == n - 1)
            CHECK_INT(h.injected, 0);
        CHECK_STR(h.subject, want);
        CHECK(h.lines_ok);
        CHECK(h.words_ok);
        CHECK(h.ascii);
        char mid[64];
        snprintf(mid, sizeof mid, "<pvwatch.alert-%zu.opened-1.", i + 1);
        CHECK(strncmp(h.message_id, mid, strlen(mid)) == 0);
        if (!h.lines_ok || !h.words_ok || strcmp(h.subject, want))
            fprintf(stderr, "  in %s:\n%.600s\n", path, msg);
        free(msg);
    }
    pv_ingest_close(p);
    pv_config_free(&cfg);
}

/* ---------------------------------------------------------------------- */
/* Backoff, give-up, retry                                                 */

/* A TCP port on 127.0.0.1 that refuses connections: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("socket");
    close(fd);
    return ntohs(a.sin_port);
}

#define NROWS 12
#define T0 ((pv_time_t)1780000000) /* 2026-05-28 */

static void test_backoff(void)
{
    char text[512];
    snprintf(text, sizeof text,
             "database = 'pv.db'\n"
             "alert_log = 'alerts.jsonl'\n"
             "email = { url = 'smtp://127.0.0.1:%d', to = { 'x@example.org' "
             "}, retry_base = 10, retry_cap = 25, max_attempts = 4, "
             "timeout = 5 }\n",
             closed_port());
    pv_config cfg;
    pv_ingest *p = open_case("backoff", text, &cfg);
    pv_store *s = pv_ingest_store(p);
    pv_notify *n = pv_ingest_notify(p);
    pv_store_set_clock(s, T0);
    for (int i = 0; i < NROWS; i++) {
        char key[32];
        snprintf(key, sizeof key, "b%d", i);
        CHECK_INT(pv_ingest_engine_alert(p, "test.mail", key, "Backoff",
                                         "detail", "action"),
                  0);
    }
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox"), NROWS);
    /* Attempt k fails at 'now'; the next is due after
     * min(base * 2^(k-1), cap) * [0.5, 1.5], rounded up to a second. */
    const double nominal[] = {10, 20, 25}; /* 10, 20, min(40, 25) */
    pv_time_t now = T0;
    for (int k = 1; k <= 3; k++) {
        CHECK_INT(pv_notify_drain(n, 5), 0);
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM outbox WHERE status = 'pending' AND "
                 "attempts = %d",
                 k);
        CHECK_INT(q_int(p, sql), NROWS);
        long long lo = (long long)now + (long long)(nominal[k - 1] * 0.5);
        long long hi = (long long)now + (long long)(nominal[k - 1] * 1.5) + 1;
        long long min_t = q_int(
            p, "SELECT min(CAST(strftime('%s', next_attempt_at) AS INTEGER)) "
               "FROM outbox");
        long long max_t = q_int(
            p, "SELECT max(CAST(strftime('%s', next_attempt_at) AS INTEGER)) "
               "FROM outbox");
        if (min_t < lo || max_t > hi)
            fprintf(stderr,
                    "attempt %d: next attempts in [%lld, %lld], "
                    "want within [%lld, %lld]\n",
                    k, min_t - (long long)now, max_t - (long long)now,
                    lo - (long long)now, hi - (long long)now);
        CHECK(min_t >= lo);
        CHECK(max_t <= hi);
        /* Not due yet: a drain now tries nothing. */
        CHECK_INT(pv_notify_drain(n, 5), 0);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM outbox WHERE attempts = %d", k);
        CHECK_INT(q_int(p, sql), NROWS);
        now = (pv_time_t)max_t;
        pv_store_set_clock(s, now);
    }
    /* Attempt 4 = max_attempts: every row failed, one engine alert each,
     * and those are not mailed. */
    CHECK_INT(pv_notify_drain(n, 5), 0);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE status = 'failed' "
                       "AND attempts = 4 AND last_error <> ''"),
              NROWS);
    CHECK_INT(q_int(p, "SELECT count(*) FROM alerts WHERE rule = "
                       "'pvwatch.notify' AND signal = 'engine'"),
              NROWS);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox"), NROWS);
    /* Retry: one, then all; pending again with a fresh count, due now. */
    CHECK_INT(pv_notify_retry(s, 1), 1);
    CHECK_INT(pv_notify_retry(s, 1), 0);
    CHECK_INT(pv_notify_retry(s, 0), NROWS - 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE status = "
                       "'pending' AND attempts = 0"),
              NROWS);
    pv_notify_drain(n, 5);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE attempts = 1"),
              NROWS);
    pv_ingest_close(p);
    pv_config_free(&cfg);
}

/* ---------------------------------------------------------------------- */
/* Mail only of what is on disk                                            */

/* One alert in a relaxed transaction (as an MLLP batch commits it: no sync
 * in COMMIT), committed; returns what pv_ingest_durable needs. */
static pv_alerts_lines relaxed_alert(pv_ingest *p, const char *key)
{
    pv_alerts_lines lines = {0, 0, 0};
    CHECK_INT(pv_ingest_begin_relaxed(p), 0);
    CHECK_INT(pv_ingest_engine_alert(p, "test.mail", key, "Durable", "detail",
                                     "action"),
              0);
    CHECK_INT(pv_ingest_commit_deferred(p, &lines), 0);
    return lines;
}

static void test_durable_only(void)
{
    pv_config cfg;
    pv_ingest *p = open_case("durable",
                             "database = 'pv.db'\n"
                             "alert_log = 'alerts.jsonl'\n"
                             "email = { dir = 'out', min_severity = 'low' }\n",
                             &cfg);
    pv_store *s = pv_ingest_store(p);
    pv_notify *n = pv_ingest_notify(p);
    /* Batch A committed, not synced: its mail waits. */
    pv_alerts_lines a = relaxed_alert(p, "a");
    CHECK(a.outbox >= 1);
    CHECK(!pv_store_all_durable(s));
    CHECK_INT(pv_notify_drain(n, 5), 0);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE status = 'sent'"), 0);
    /* Synced, then batch B committed behind it: A's mail goes, B's not. */
    CHECK_INT(pv_store_sync_wal(s), 0);
    pv_alerts_lines b = relaxed_alert(p, "b");
    CHECK(b.outbox > a.outbox);
    CHECK_INT(pv_ingest_durable(p, a), 0);
    CHECK(!pv_store_all_durable(s));
    CHECK_INT(pv_notify_drain(n, 5), 1);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox WHERE status = 'sent' AND id <= %lld",
             (long long)a.outbox);
    CHECK_INT(q_int(p, sql), 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE status = 'pending'"),
              1);
    /* B synced: all of it is durable, and its mail goes too. */
    CHECK_INT(pv_store_sync_wal(s), 0);
    CHECK(pv_store_all_durable(s));
    CHECK_INT(pv_notify_drain(n, 5), 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE status = 'sent'"), 2);
    CHECK_INT(pv_ingest_durable(p, b), 0);
    pv_ingest_close(p);
    pv_config_free(&cfg);
}

/* ---------------------------------------------------------------------- */

static void test_no_email(void)
{
    pv_config cfg;
    pv_ingest *p = open_case("none",
                             "database = 'pv.db'\n"
                             "alert_log = 'alerts.jsonl'\n",
                             &cfg);
    CHECK(pv_ingest_notify(p) == NULL);
    CHECK_INT(pv_ingest_engine_alert(p, "test.mail", "k", "No mail", "detail",
                                     "action"),
              0);
    CHECK_INT(q_int(p, "SELECT count(*) FROM alerts"), 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox"), 0);
    pv_ingest_close(p);
    pv_config_free(&cfg);
}

/* ---------------------------------------------------------------------- */
/* email.digest: periods, configuration, the digest mail                  */

static pv_time_t ts(const char *s)
{
    pv_time_t t = 0;
    if (pv_time_parse(s, strlen(s), &t) != 0)
        die(s);
    return t;
}

/* Loads text as base/name.lua; returns the load's status, errors in err. */
static int load_text(const char *name, const char *text, pv_config *cfg,
                     pv_buf *err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.lua", base, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path);
    fputs(text, f);
    fclose(f);
    pv_buf_reset(err);
    return pv_config_load(path, cfg, err);
}

static void check_period(const char *digest, const char *at, const char *want)
{
    char text[512];
    snprintf(text, sizeof text, "email = { dir = 'out', digest = %s }\n",
             digest);
    pv_config cfg;
    pv_buf err = PV_BUF_INIT;
    CHECK_INT(load_text("period", text, &cfg, &err), 0);
    if (err.len)
        fprintf(stderr, "%s", pv_buf_cstr(&err));
    char got[PV_TIME_BUFSZ];
    pv_time_format(pv_notify_digest_period(&cfg, ts(at)), got);
    if (strcmp(got, want))
        fprintf(stderr, "digest %s at %s: period from %s, want %s\n", digest,
                at, got, want);
    CHECK_STR(got, want);
    pv_config_free(&cfg);
    pv_buf_free(&err);
}

static void test_digest_period(void)
{
    /* Daily: midnight UTC, or 'at'. A boundary belongs to the period it
     * starts. */
    check_period("{ every = 'daily' }", "2026-05-28T00:00:00Z",
                 "2026-05-28T00:00:00Z");
    check_period("{ every = 'daily' }", "2026-05-27T23:59:59Z",
                 "2026-05-27T00:00:00Z");
    check_period("{ every = 'daily', at = '08:00' }", "2026-05-28T07:59:59Z",
                 "2026-05-27T08:00:00Z");
    check_period("{ every = 'daily', at = '08:00' }", "2026-05-28T08:00:00Z",
                 "2026-05-28T08:00:00Z");
    check_period("{ every = 'daily', at = '23:59' }", "2026-01-01T00:00:00Z",
                 "2025-12-31T23:59:00Z");
    /* Weekly: Monday (2026-05-25 is one), at 'at', or the day it names. */
    check_period("{ every = 'weekly' }", "2026-05-28T12:00:00Z",
                 "2026-05-25T00:00:00Z");
    check_period("{ every = 'weekly' }", "2026-05-25T00:00:00Z",
                 "2026-05-25T00:00:00Z");
    check_period("{ every = 'weekly' }", "2026-05-24T23:59:59Z",
                 "2026-05-18T00:00:00Z");
    check_period("{ every = 'weekly', at = '08:00' }", "2026-05-25T07:00:00Z",
                 "2026-05-18T08:00:00Z");
    check_period("{ every = 'weekly', at = 'fri 17:30' }",
                 "2026-05-29T17:29:59Z", "2026-05-22T17:30:00Z");
    check_period("{ every = 'weekly', at = 'Friday 17:30' }",
                 "2026-05-29T17:30:00Z", "2026-05-29T17:30:00Z");
    check_period("{ every = 'weekly', at = 'sun 23:00' }",
                 "2026-06-01T00:00:00Z", "2026-05-31T23:00:00Z");
    /* Across a year's end, and before the epoch's first Monday. */
    check_period("{ every = 'weekly' }", "2027-01-01T10:00:00Z",
                 "2026-12-28T00:00:00Z");
    check_period("{ every = 'weekly' }", "1970-01-01T00:00:00Z",
                 "1969-12-29T00:00:00Z");
    /* Seconds: multiples since the epoch. */
    check_period("{ every = 3600 }", "2026-05-28T10:59:59Z",
                 "2026-05-28T10:00:00Z");
    check_period("{ every = 7 }", "1970-01-01T00:00:20Z",
                 "1970-01-01T00:00:14Z");
}

/* Each bad digest is a load error naming the field and the reason. */
static void check_bad(const char *digest, const char *want)
{
    char text[512];
    snprintf(text, sizeof text, "email = { dir = 'out',\n  digest = %s }\n",
             digest);
    pv_config cfg;
    pv_buf err = PV_BUF_INIT;
    CHECK_INT(load_text("bad", text, &cfg, &err), PV_EINVAL);
    if (!strstr(pv_buf_cstr(&err), want))
        fprintf(stderr, "digest %s: errors \"%s\" do not say \"%s\"\n", digest,
                pv_buf_cstr(&err), want);
    CHECK(strstr(pv_buf_cstr(&err), want) != NULL);
    /* FILE:LINE: the email table's line. */
    CHECK(strstr(pv_buf_cstr(&err), "bad.lua:1: ") != NULL);
    pv_config_free(&cfg);
    pv_buf_free(&err);
}

static void test_digest_config(void)
{
    check_bad("{ every = 'hourly' }",
              "email.digest.every 'hourly' is not \"daily\", \"weekly\"");
    check_bad("{ every = 0 }", "email.digest.every must be between 1");
    check_bad("{ every = 1.5 }", "email.digest.every must be a whole number");
    check_bad("{ signals = { 'cytopenia' } }", "email.digest needs 'every'");
    check_bad("{ every = 'daily', at = '24:00' }",
              "email.digest.at '24:00' is not a time \"HH:MM\"");
    check_bad("{ every = 'daily', at = '8:00' }",
              "email.digest.at '8:00' is not a time");
    check_bad("{ every = 'daily', at = 'mon 08:00' }",
              "names a day: only with every = \"weekly\"");
    check_bad("{ every = 'weekly', at = 'someday 08:00' }",
              "or a day and a time (\"mon 08:00\")");
    check_bad("{ every = 60, at = '08:00' }",
              "email.digest.at needs every = \"daily\" or \"weekly\"");
    check_bad("{ every = 'daily', signals = { 'cytopenia', 'cytopenia' } }",
              "email.digest.signals names 'cytopenia' twice");
    check_bad("{ every = 'daily', signals = { 3 } }",
              "email.digest.signals[1] must be a string");
    check_bad("{ every = 'daily', severity = 'severe' }",
              "email.digest.severity 'severe' is not one of low, medium");
    check_bad("{ every = 'daily', send_empty = 'yes' }",
              "email.digest.send_empty must be true or false");
    check_bad("{ every = 'daily', newest = 5000 }",
              "email.digest.newest must be between 0 and 1000");
    check_bad("{ every = 'daily', to = { 'not an address' } }",
              "email.digest.to 'not an address' is not an address");
    check_bad("{ every = 'daily', interval = 5 }",
              "unknown key 'email.digest.interval'");
    check_bad("'daily'", "email.digest must be a table");

    /* Signals: against the rule pack's (and "engine"), each error on the
     * line the name is written. */
    pv_config cfg;
    pv_buf err = PV_BUF_INIT;
    CHECK_INT(load_text("signals",
                        "email = { dir = 'out',\n"
                        "  digest = { every = 'weekly',\n"
                        "    signals = { 'cytopenia', 'engine',\n"
                        "                'thrombosiss' } } }\n",
                        &cfg, &err),
              0);
    pv_strlist known = {0};
    pv_strlist_add(&known, "cytopenia");
    pv_strlist_add(&known, "thrombosis");
    pv_strlist_add(&known, "cytopenia");
    pv_buf_reset(&err);
    CHECK_INT(pv_notify_check_digest(&cfg, &known, &err), 1);
    char want[700];
    snprintf(want, sizeof want,
             "%s/signals.lua:4: email.digest.signals: 'thrombosiss' is not a "
             "signal of the rule pack (known: cytopenia, thrombosis, "
             "engine)\n",
             base);
    CHECK_STR(pv_buf_cstr(&err), want);
    /* Without the pack: DESIGN.md's list. */
    pv_buf_reset(&err);
    CHECK_INT(pv_notify_check_digest(&cfg, NULL, &err), 1);
    CHECK(strstr(pv_buf_cstr(&err), "not a signal of DESIGN.md's list") !=
          NULL);
    pv_strlist_free(&known);
    pv_config_free(&cfg);
    pv_buf_free(&err);
}

/* The digest files written to dir so far. */
static int digest_files(const char *dir, pv_buf *last)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd,
             "grep -l '^X-Pvwatch-Digest:' %s/*.eml 2>/dev/null | sort", dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        die("popen");
    char line[600];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        char *text = read_file(line);
        if (text && last) {
            pv_buf_reset(last);
            pv_buf_puts(last, text);
        }
        free(text);
        n++;
    }
    pclose(p);
    return n;
}

static pv_ingest *open_dir_case(const char *dir, pv_config *cfg)
{
    char path[700];
    snprintf(path, sizeof path, "%s/pv.lua", dir);
    pv_buf errors = PV_BUF_INIT;
    pv_ingest *p = NULL;
    if (pv_config_load(path, cfg, &errors) != 0 ||
        pv_ingest_open(cfg, NULL, 1, &p, &errors) != 0 || !p) {
        fprintf(stderr, "%s: %s\n", path, pv_buf_cstr(&errors));
        exit(2);
    }
    pv_buf_free(&errors);
    return p;
}

static void test_digest_mail(void)
{
    pv_config cfg;
    pv_ingest *p = open_case("digest",
                             "database = 'pv.db'\n"
                             "alert_log = 'alerts.jsonl'\n"
                             "email = { dir = 'out', min_severity = 'critical',"
                             " digest = { every = 'daily', at = '08:00', "
                             "newest = 2 } }\n",
                             &cfg);
    char dir[600], out[700];
    snprintf(dir, sizeof dir, "%s/digest", base);
    snprintf(out, sizeof out, "%s/out", dir);
    pv_store *s = pv_ingest_store(p);
    pv_store_set_clock(s, ts("2026-05-28T07:00:00Z"));
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "d%d", i);
        CHECK_INT(pv_ingest_engine_alert(p, "test.digest", key, "Digest item",
                                         "detail", "action"),
                  0);
    }
    /* First sight: the periods start counting; nothing is mailed yet. */
    pv_notify_drain(pv_ingest_notify(p), 5);
    CHECK_INT(digest_files(out, NULL), 0);
    CHECK_INT(q_int(p, "SELECT count(*) FROM rule_state WHERE rule = "
                       "'pvwatch.notify' AND key = 'digest_period' AND value "
                       "= '2026-05-27T08:00:00Z'"),
              1);
    /* The boundary passes: one digest, of three open alerts. */
    pv_store_set_clock(s, ts("2026-05-28T08:00:05Z"));
    CHECK_INT(pv_notify_drain(pv_ingest_notify(p), 5), 1);
    pv_buf mail = PV_BUF_INIT;
    CHECK_INT(digest_files(out, &mail), 1);
    CHECK(strstr(pv_buf_cstr(&mail), "X-Pvwatch-Open: 3\r\n") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail),
                 "X-Pvwatch-Digest: 2026-05-28T08:00:00Z\r\n") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "\r\nengine: 3 open (critical 0, high "
                                     "3, medium 0, low 0)\r\n") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "  newest 2 of 3:\r\n") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "oldest open: 1h 00m (alert 1, opened "
                                     "2026-05-28T07:00:00Z)") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "To: safety-officer@localhost\r\n") !=
          NULL);
    CHECK_INT(q_int(p, "SELECT count(*) FROM outbox WHERE alert_id = 0 AND "
                       "status = 'sent' AND channel = "
                       "'email:safety-officer@localhost'"),
              1);
    /* The same period again, and after a restart: nothing more. */
    pv_store_set_clock(s, ts("2026-05-29T07:59:59Z"));
    pv_notify_drain(pv_ingest_notify(p), 5);
    CHECK_INT(digest_files(out, NULL), 1);
    pv_ingest_close(p);
    pv_config_free(&cfg);
    p = open_dir_case(dir, &cfg);
    s = pv_ingest_store(p);
    pv_store_set_clock(s, ts("2026-05-29T07:59:59Z"));
    pv_notify_drain(pv_ingest_notify(p), 5);
    CHECK_INT(digest_files(out, NULL), 1);
    /* An acknowledged and a closed alert leave the next digest. */
    sqlite3_exec(pv_store_db(s),
                 "UPDATE alerts SET status = 'acknowledged' WHERE id = 1;"
                 "UPDATE alerts SET status = 'closed' WHERE id = 2",
                 NULL, NULL, NULL);
    /* Down over two boundaries: one digest, of the latest. */
    pv_store_set_clock(s, ts("2026-05-31T09:00:00Z"));
    CHECK_INT(pv_notify_drain(pv_ingest_notify(p), 5), 1);
    CHECK_INT(digest_files(out, &mail), 2);
    CHECK(strstr(pv_buf_cstr(&mail), "X-Pvwatch-Open: 1\r\n") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "2026-05-31T08:00:00Z") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "- alert 3  patient ") != NULL);
    CHECK(strstr(pv_buf_cstr(&mail), "- alert 1  patient ") == NULL);
    /* Nothing open: no mail (send_empty is false), the period is done. */
    sqlite3_exec(pv_store_db(s), "UPDATE alerts SET status = 'closed'", NULL,
                 NULL, NULL);
    pv_store_set_clock(s, ts("2026-06-01T08:00:00Z"));
    pv_notify_drain(pv_ingest_notify(p), 5);
    CHECK_INT(digest_files(out, NULL), 2);
    CHECK_INT(q_int(p, "SELECT count(*) FROM rule_state WHERE key = "
                       "'digest_period' AND value = '2026-06-01T08:00:00Z'"),
              1);
    pv_ingest_close(p);
    pv_config_free(&cfg);
    pv_buf_free(&mail);

    /* send_empty = true: "no open alerts". */
    p = open_case("digest_empty",
                  "database = 'pv.db'\n"
                  "alert_log = 'alerts.jsonl'\n"
                  "email = { dir = 'out', to = { 'a@example.org' }, digest = {"
                  " every = 60, send_empty = true, to = 'd@example.org' } }\n",
                  &cfg);
    snprintf(out, sizeof out, "%s/digest_empty/out", base);
    s = pv_ingest_store(p);
    pv_store_set_clock(s, ts("2026-05-28T07:00:30Z"));
    pv_notify_drain(pv_ingest_notify(p), 5);
    pv_store_set_clock(s, ts("2026-05-28T07:01:00Z"));
    pv_notify_drain(pv_ingest_notify(p), 5);
    pv_buf last = PV_BUF_INIT;
    CHECK_INT(digest_files(out, &last), 1);
    CHECK(strstr(pv_buf_cstr(&last), "No open alerts at ") != NULL);
    CHECK(strstr(pv_buf_cstr(&last), "To: d@example.org\r\n") != NULL);
    CHECK(strstr(pv_buf_cstr(&last), "X-Pvwatch-Open: 0\r\n") != NULL);
    pv_buf_free(&last);
    pv_ingest_close(p);
    pv_config_free(&cfg);
}

int main(void)
{
    if (!mkdtemp(base))
        die("mkdtemp");
    pv_log_set_level(PV_LOG_ERROR); /* the expected retry warnings */
    test_eml_subjects();
    test_backoff();
    test_durable_only();
    test_no_email();
    test_digest_period();
    test_digest_config();
    test_digest_mail();
    if (!getenv("PV_KEEP_TMP")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", base);
    }
    return pv_test_report();
}
