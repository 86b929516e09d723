/* notify.c: see notify.h. */
#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "sha256.h"

#define MAX_IN_FLIGHT 4
#define PUMP_MS 1000
/* The rule name of the engine alerts notify raises; never mailed, so a
 * broken mail server cannot cause a chain of mails about mail. */
#define NOTIFY_RULE "pvwatch.notify"

/* One SMTP transfer. Created on the loop thread, run by the transport
 * thread, handed back to the loop thread with its outcome. */
struct xfer {
    pv_notify *n;
    struct xfer *next; /* in a queue */
    CURL *easy;
    int64_t *ids; /* outbox rows this transfer delivers */
    size_t nids;
    pv_buf payload;
    size_t off;
    struct curl_slist *rcpt;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode res;  /* outcome, set by the transport */
    long code;     /* the server's last reply code */
    int abandoned; /* stopped before it finished: no attempt counted */
};

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    pv_notify *n;
};

/* Transfers run on a thread of their own, with its own libuv loop driving
 * curl's multi interface (curl_multi_socket_action, uv_poll, uv_timer):
 * libcurl 7.88 still blocks in places (waiting for the reply to the
 * message body, curl issue 8555; the DONE phase of an unfinished transfer,
 * issue 4015), and none of that may stall the engine's loop. The loop
 * thread owns the database; the transport thread never touches it. */
struct pv_notify {
    const pv_config *cfg;
    pv_store *store;
    char *password;
    int secret_read;
    /* The loop thread. */
    uv_loop_t *loop;
    uv_timer_t pump;
    uv_async_t done_async;
    int started;
    int handles;
    struct xfer *inflight[MAX_IN_FLIGHT];
    size_t ninflight;
    pv_notify_fail_fn on_fail;
    void *on_fail_ud;
    long sent_count;
    /* While draining: rows up to this id have had their attempt. */
    int64_t drained_id;
    int64_t durable_upto;  /* rows up to here are on disk (pv_notify_durable) */
    sqlite3_stmt *max_st;  /* pv_notify_outbox_max: after every commit */
    pv_time_t digest_done; /* email.digest: the period queued (0: none) */
    /* The transport thread. */
    uv_thread_t thread;
    uv_loop_t tloop;
    uv_async_t wake;
    uv_timer_t curl_timer;
    CURLM *multi;
    struct xfer *active[MAX_IN_FLIGHT];
    size_t nactive;
    /* Shared, under mu. */
    uv_mutex_t mu;
    struct xfer *todo, *done;
    int stopping;
};

/* ---------------------------------------------------------------------- */
/* Composing                                                               */

static const char *col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

static void base64(pv_buf *b, const unsigned char *s, size_t n)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char out[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63],
                       i + 1 < n ? t[(v >> 6) & 63] : '=',
                       i + 2 < n ? t[v & 63] : '='};
        pv_buf_append(b, out, 4);
    }
}

/* A header value: as is when it is plain ASCII, else RFC 2047 encoded. */
static void header_text(pv_buf *b, const char *s)
{
    int plain = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80 || *p < 0x20)
            plain = 0;
    if (plain) {
        pv_buf_puts(b, s);
        return;
    }
    /* Encoded words of at most 42 input bytes (56 base64 characters, so
     * "Subject: " and the first word fit in 78 columns), cut on UTF-8
     * boundaries. */
    size_t len = strlen(s), i = 0;
    while (i < len) {
        size_t n = len - i > 42 ? 42 : len - i;
        while (n < len - i && n > 0 && ((unsigned char)s[i + n] & 0xC0) == 0x80)
            n--;
        if (i)
            pv_buf_puts(b, "\r\n ");
        pv_buf_puts(b, "=?UTF-8?B?");
        base64(b, (const unsigned char *)s + i, n);
        pv_buf_puts(b, "?=");
        i += n;
    }
}

/* Feed and rule text in a mail (issue 22 item 14): every value is put
 * escaped (pv_buf_put_escaped: CR, LF and other controls become visible
 * escapes, invalid UTF-8 too), so no value can start a line of its own,
 * forge a header or a body line, or end the SMTP data with a lone dot.
 * A value is cut after FIELD_CAP bytes (on a UTF-8 boundary), saying how
 * much was left out: the whole text is in 'pvwatch alerts show'. A
 * rule's detail or action is one line too: feed text in it (a unit, a
 * code) could otherwise bring line breaks of its own. */
#define FIELD_CAP 2000
#define SUBJECT_CHARS 200
#define LINE_MAX_OCTETS 998

static size_t utf8_cut(const char *s, size_t len, size_t cap)
{
    if (len <= cap)
        return len;
    while (cap > 0 && ((unsigned char)s[cap] & 0xC0) == 0x80)
        cap--;
    return cap;
}

static void put_n(pv_buf *b, const char *s, size_t len, size_t cap)
{
    size_t n = utf8_cut(s, len, cap);
    pv_buf_put_escaped(b, s, n, 0);
    if (n < len)
        pv_buf_printf(b, " \xe2\x80\xa6 (%zu more bytes)", len - n);
}

/* One value on one line. */
static void put_text(pv_buf *b, const char *s)
{
    put_n(b, s, strlen(s), FIELD_CAP);
}

/* The final form of a message handed to curl or written as .eml: CRLF
 * line ends only (a bare CR or LF becomes CRLF), no NUL, and no line
 * longer than RFC 5322's 998 octets (longer ones are wrapped on a UTF-8
 * boundary). curl dot-stuffs a '.' after CRLF (libcurl 7.88, checked by
 * tests/e2e/test_mail_sanitize.sh against aiosmtpd), so with CRLF line
 * ends only, no line of ours can end the SMTP data. */
static int canonical(pv_buf *msg)
{
    pv_buf out = PV_BUF_INIT;
    const char *p = msg->ptr, *end = msg->ptr + msg->len;
    size_t col = 0;
    while (p < end) {
        if (*p == '\r' || *p == '\n') {
            pv_buf_append(&out, "\r\n", 2);
            p += (p[0] == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
            col = 0;
            continue;
        }
        if (*p == '\0') {
            p++;
            continue;
        }
        if (col >= LINE_MAX_OCTETS - 4 && ((unsigned char)*p & 0xC0) != 0x80) {
            /* A continuation, indented: inside a header it folds. */
            pv_buf_append(&out, "\r\n ", 3);
            col = 1;
        }
        pv_buf_append(&out, p, 1);
        col++;
        p++;
    }
    if (!pv_buf_ok(&out)) {
        pv_buf_free(&out);
        return PV_ENOMEM;
    }
    pv_buf_free(msg);
    *msg = out;
    return 0;
}

/* The subject: at most SUBJECT_CHARS characters, an ellipsis when cut. */
static void cap_subject(pv_buf *b)
{
    const char *s = pv_buf_cstr(b);
    size_t chars = 0, i = 0;
    for (; s[i]; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars <= SUBJECT_CHARS)
        return;
    chars = 0;
    for (i = 0; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == SUBJECT_CHARS - 1)
                break;
            chars++;
        }
    }
    if (!s[i])
        return;
    b->len = i;
    pv_buf_puts(b, "\xe2\x80\xa6");
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s -= 32;
}

/* One line of a trend (a row of pv_store_labs: observed_at is column 11,
 * value_text 5, unit 6, flag 9). */
static int trend_row(void *ud, sqlite3_stmt *st)
{
    pv_buf *b = ud;
    pv_buf_puts(b, "  ");
    pv_buf_put_escaped(b, col(st, 11),
                       utf8_cut(col(st, 11), strlen(col(st, 11)), 10), 0);
    pv_buf_puts(b, "  ");
    put_text(b, col(st, 5));
    pv_buf_puts(b, " ");
    put_text(b, col(st, 6));
    if (*col(st, 9)) {
        pv_buf_puts(b, "  flag ");
        put_text(b, col(st, 9));
    }
    pv_buf_puts(b, "\r\n");
    return 0;
}

/* Appends body lines for the alert's facts and the trend of its labs. */
static void facts_and_trend(pv_store *s, int64_t alert_id, const char *patient,
                            pv_buf *b)
{
    sqlite3 *db = pv_store_db(s);
    sqlite3_stmt *st;
    pv_strlist codes = {0};
    /* The trend ends at the alert's newest lab: results that came in later
     * (a late exposure looking back) belong to later events. */
    char until[PV_TIME_BUFSZ] = "";
    if (sqlite3_prepare_v2(db,
                           "SELECT json_extract(value, '$.kind'), "
                           "json_extract(value, '$.code'), "
                           "json_extract(value, '$.value'), "
                           "json_extract(value, '$.unit'), "
                           "json_extract(value, '$.at'), "
                           "json_extract(value, '$.id') "
                           "FROM alerts, json_each(alerts.evidence) "
                           "WHERE alerts.id = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, alert_id);
        pv_buf_puts(b, "Facts:\r\n");
        int n = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            n++;
            pv_buf_puts(b, "  - ");
            for (int k = 0; k < 5; k++) {
                static const char *const sep[] = {" ", " = ", " ", " at ", ""};
                put_text(b, col(st, k));
                pv_buf_puts(b, sep[k]);
            }
            if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
                pv_buf_puts(b, " (");
                put_text(b, col(st, 0));
                pv_buf_printf(b, " %lld)",
                              (long long)sqlite3_column_int64(st, 5));
            }
            pv_buf_puts(b, "\r\n");
            if (!strcmp(col(st, 0), "lab") && *col(st, 1)) {
                pv_strlist_add(&codes, col(st, 1));
                if (strcmp(col(st, 4), until) > 0)
                    snprintf(until, sizeof until, "%s", col(st, 4));
            }
        }
        if (!n)
            pv_buf_puts(b, "  (none recorded)\r\n");
        sqlite3_finalize(st);
    }
    for (size_t i = 0; i < codes.count; i++) {
        if (i && !strcmp(codes.items[i], codes.items[i - 1]))
            continue;
        /* The rules' history query (one index range, newest first). */
        pv_buf one = PV_BUF_INIT;
        pv_buf_puts(&one, "[");
        pv_buf_json_str(&one, codes.items[i], (size_t)-1);
        pv_buf_puts(&one, "]");
        pv_buf_puts(b, "\r\nRecent results of ");
        put_text(b, codes.items[i]);
        pv_buf_puts(b, " (newest first):\r\n");
        pv_store_labs(s, patient, pv_buf_cstr(&one), NULL,
                      *until ? until : NULL, 6, trend_row, b);
        pv_buf_free(&one);
    }
    pv_strlist_free(&codes);
}

/* The number of the event in the alert's audit trail: opened is 1, the
 * first escalation 2, ... It makes the Message-ID of an event stable. */
static int event_number(pv_store *s, int64_t alert_id)
{
    sqlite3_stmt *st;
    int n = 0;
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "SELECT count(*) FROM alert_actions WHERE "
                           "alert_id = ? AND action IN ('opened', "
                           "'escalated')",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, alert_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return n;
}

static void rfc2822_date(pv_time_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Builds the whole message for one alert event into b. */
static int compose(pv_notify *n, int64_t alert_id, const char *event,
                   const char *rcpts, pv_buf *b)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(n->store),
                           "SELECT patient_id, rule, signal, severity, "
                           "grade, title, detail, action, rule_sha256, "
                           "engine_version, status, created_at FROM alerts "
                           "WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_int64(st, 1, alert_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return PV_ENOTFOUND;
    }
    char sev[16];
    snprintf(sev, sizeof sev, "%s", col(st, 3));
    upper(sev);
    pv_time_t now = pv_store_now(n->store);
    char date[64], iso[PV_TIME_BUFSZ];
    rfc2822_date(now, date, sizeof date);
    int num = event_number(n->store, alert_id);
    /* The Message-ID names the alert and the event, so the same event
     * sent twice is recognisable as one. */
    pv_sha256 h;
    char hex[65];
    pv_sha256_init(&h);
    pv_sha256_update(&h, col(st, 8), strlen(col(st, 8)));
    pv_sha256_update(&h, col(st, 0), strlen(col(st, 0)));
    pv_sha256_hex(&h, hex);
    pv_buf subject = PV_BUF_INIT, t = PV_BUF_INIT;
    pv_buf_printf(&subject, "[pvwatch] %s ", sev);
    put_n(&subject, col(st, 2), strlen(col(st, 2)), 64);
    pv_buf_puts(&subject, ": ");
    put_n(&subject, col(st, 5), strlen(col(st, 5)), SUBJECT_CHARS * 4);
    /* The patient and the event matter more than the title's tail: the
     * title is cut first. */
    pv_buf_puts(&t, " \xe2\x80\x94 patient ");
    put_n(&t, col(st, 0), strlen(col(st, 0)), 64);
    if (!strcmp(event, "escalated"))
        pv_buf_puts(&t, " (escalated)");
    size_t tail_chars = 0, chars = 0, k = 0;
    for (size_t m = 0; m < t.len; m++)
        tail_chars += ((unsigned char)t.ptr[m] & 0xC0) != 0x80;
    size_t keep =
        SUBJECT_CHARS > tail_chars + 41 ? SUBJECT_CHARS - tail_chars - 1 : 40;
    for (; k < subject.len; k++)
        if (((unsigned char)subject.ptr[k] & 0xC0) != 0x80 && ++chars > keep)
            break;
    if (k < subject.len) {
        subject.len = k;
        pv_buf_puts(&subject, "\xe2\x80\xa6");
    }
    pv_buf_append(&subject, t.ptr ? t.ptr : "", t.len);
    cap_subject(&subject);
    pv_buf_printf(b, "From: pvwatch <%s>\r\n", n->cfg->email.from);
    pv_buf_printf(b, "To: %s\r\n", rcpts);
    pv_buf_puts(b, "Subject: ");
    header_text(b, pv_buf_cstr(&subject));
    pv_buf_free(&subject);
    pv_buf_printf(b, "\r\nDate: %s\r\n", date);
    pv_buf_printf(b, "Message-ID: <pvwatch.alert-%lld.%s-%d.%.12s@pvwatch>\r\n",
                  (long long)alert_id, event, num, hex);
    pv_buf_puts(b, "MIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n");
    pv_buf_printf(b, "X-Pvwatch-Alert: %lld\r\nX-Pvwatch-Event: %s\r\n\r\n",
                  (long long)alert_id, event);

    pv_buf_printf(b, "%s alert %s: ", sev,
                  strcmp(event, "escalated") ? "opened" : "escalated");
    put_text(b, col(st, 5));
    pv_buf_puts(b, "\r\n\r\nPatient:   ");
    put_text(b, col(st, 0));
    pv_buf_puts(b, "\r\nSignal:    ");
    put_text(b, col(st, 2));
    pv_buf_puts(b, " (rule ");
    put_text(b, col(st, 1));
    pv_buf_puts(b, ")\r\nSeverity:  ");
    put_text(b, col(st, 3));
    if (sqlite3_column_type(st, 4) != SQLITE_NULL)
        pv_buf_printf(b, ", grade %d", sqlite3_column_int(st, 4));
    pv_buf_printf(b, "\r\nAlert:     %lld (", (long long)alert_id);
    put_text(b, col(st, 10));
    pv_buf_puts(b, ", opened ");
    put_text(b, col(st, 11));
    pv_buf_printf(b, ")\r\nEvent:     %s at %s\r\n\r\n", event,
                  pv_time_format(now, iso));
    if (*col(st, 6)) {
        pv_buf_puts(b, "What was seen:\r\n  ");
        put_text(b, col(st, 6));
        pv_buf_puts(b, "\r\n\r\n");
    }
    char *patient = strdup(col(st, 0));
    pv_buf_reset(&t);
    put_text(&t, col(st, 1));
    pv_buf_puts(&t, ", source sha256 ");
    put_text(&t, *col(st, 8) ? col(st, 8) : "-");
    pv_buf_puts(&t, ", pvwatch ");
    put_text(&t, *col(st, 9) ? col(st, 9) : "-");
    pv_buf action = PV_BUF_INIT;
    put_text(&action, col(st, 7));
    sqlite3_finalize(st);
    if (!patient) {
        pv_buf_free(&t);
        pv_buf_free(&action);
        return PV_ENOMEM;
    }
    facts_and_trend(n->store, alert_id, patient, b);
    free(patient);
    if (action.len)
        pv_buf_printf(b, "\r\nAction:\r\n  %s\r\n", pv_buf_cstr(&action));
    pv_buf_free(&action);
    pv_buf_printf(b,
                  "\r\nTo acknowledge:  pvwatch alerts ack %lld --note "
                  "\"...\"\r\n"
                  "To see it all:   pvwatch alerts show %lld\r\n",
                  (long long)alert_id, (long long)alert_id);
    pv_buf_printf(b, "\r\nProvenance: rule %s.\r\n", pv_buf_cstr(&t));
    pv_buf_free(&t);
    pv_buf_puts(b, "This message carries the patient id and the facts "
                   "only.\r\n");
    if (!pv_buf_ok(b))
        return PV_ENOMEM;
    return canonical(b);
}

/* ---------------------------------------------------------------------- */
/* Queuing (inside the alert's transaction)                                */

static int rank(const char *s)
{
    return pv_severity_rank(s);
}

static int insert_row(pv_notify *n, int64_t alert_id, const char *channel,
                      const char *payload)
{
    sqlite3_stmt *st;
    char now[PV_TIME_BUFSZ];
    if (sqlite3_prepare_v2(pv_store_db(n->store),
                           "INSERT INTO outbox (alert_id, channel, payload, "
                           "attempts, next_attempt_at, status) VALUES "
                           "(?, ?, ?, 0, ?, 'pending')",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_int64(st, 1, alert_id);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, payload, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, pv_time_format(pv_store_now(n->store), now), -1,
                      SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : PV_EDB;
}

static int queue_for(pv_notify *n, int64_t alert_id, const char *event,
                     const char *severity, const char *to)
{
    pv_buf rcpts = PV_BUF_INIT, msg = PV_BUF_INIT, channel = PV_BUF_INIT;
    pv_buf_puts(&rcpts, to);
    int digest = n->cfg->email.digest_interval > 0 &&
                 rank(severity) <= rank(n->cfg->email.digest_severity
                                            ? n->cfg->email.digest_severity
                                            : "low");
    pv_buf_printf(&channel, "%s:%s", digest ? "digest" : "email",
                  pv_buf_cstr(&rcpts));
    int rc = compose(n, alert_id, event, pv_buf_cstr(&rcpts), &msg);
    if (!rc)
        rc = insert_row(n, alert_id, pv_buf_cstr(&channel), pv_buf_cstr(&msg));
    pv_buf_free(&rcpts);
    pv_buf_free(&msg);
    pv_buf_free(&channel);
    return rc;
}

/* The recipients everything reaches: email.to, or with email.dir and no
 * 'to' the local safety officer (a dry run still shows the mails). */
static void top_recipients(const pv_config *cfg, pv_strlist *out)
{
    if (cfg->email.to.count) {
        for (size_t i = 0; i < cfg->email.to.count; i++)
            pv_strlist_add(out, cfg->email.to.items[i]);
    } else if (cfg->email.dir) {
        pv_strlist_add(out, "safety-officer@localhost");
    }
}

static int route_matches(const pv_config *cfg, const pv_email_route *r,
                         const char *severity, const char *signal)
{
    /* A route without a severity of its own takes email's. */
    const char *min =
        r->min_severity ? r->min_severity : cfg->email.min_severity;
    if (min && rank(severity) < rank(min))
        return 0;
    int ok = r->signals.count == 0;
    for (size_t j = 0; j < r->signals.count; j++)
        ok |= !strcmp(r->signals.items[j], signal);
    return ok;
}

static int listed(const pv_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->count; i++)
        if (!strcmp(l->items[i], s))
            return 1;
    return 0;
}

/* Adds one row of the addresses of to not yet in seen. */
static int add_row(pv_strlist *rows, pv_strlist *seen, const pv_strlist *to)
{
    pv_buf b = PV_BUF_INIT;
    for (size_t i = 0; i < to->count; i++) {
        if (listed(seen, to->items[i]))
            continue;
        pv_strlist_add(seen, to->items[i]);
        if (b.len)
            pv_buf_puts(&b, ", ");
        pv_buf_puts(&b, to->items[i]);
    }
    int rc = 0;
    if (!pv_buf_ok(&b))
        rc = PV_ENOMEM;
    else if (b.len)
        rc = pv_strlist_add(rows, pv_buf_cstr(&b));
    pv_buf_free(&b);
    return rc;
}

int pv_notify_route(const pv_config *cfg, const char *severity,
                    const char *signal, pv_strlist *rows)
{
    pv_strlist seen = {0}, top = {0};
    int rc = 0;
    /* The first matching exclusive route takes the alert alone. */
    for (size_t i = 0; i < cfg->email.nroutes; i++) {
        const pv_email_route *r = &cfg->email.routes[i];
        if (r->exclusive && route_matches(cfg, r, severity, signal)) {
            rc = add_row(rows, &seen, &r->to);
            pv_strlist_free(&seen);
            return rc;
        }
    }
    if (rank(severity) >= rank(cfg->email.min_severity)) {
        top_recipients(cfg, &top);
        rc = add_row(rows, &seen, &top);
        pv_strlist_free(&top);
    }
    for (size_t i = 0; i < cfg->email.nroutes && !rc; i++) {
        const pv_email_route *r = &cfg->email.routes[i];
        if (route_matches(cfg, r, severity, signal))
            rc = add_row(rows, &seen, &r->to);
    }
    pv_strlist_free(&seen);
    return rc;
}

int pv_notify_print_routes(const pv_config *cfg, FILE *out, pv_buf *warnings)
{
    static const char *const sevs[] = {"low", "medium", "high", "critical"};
    pv_strlist signals = {0};
    for (size_t i = 0; i < cfg->email.nroutes; i++)
        for (size_t j = 0; j < cfg->email.routes[i].signals.count; j++)
            if (!listed(&signals, cfg->email.routes[i].signals.items[j]))
                pv_strlist_add(&signals, cfg->email.routes[i].signals.items[j]);
    /* "*": every other signal, the engine's alerts among them. */
    pv_strlist_add(&signals, "*");
    int nwarn = 0;
    fprintf(out, "e-mail routing (one mail per line; '*' = any other signal, "
                 "engine alerts included):\n");
    fprintf(out, "  %-20s %-9s %s\n", "SIGNAL", "SEVERITY", "RECIPIENTS");
    for (size_t i = 0; i < signals.count; i++) {
        const char *sig = signals.items[i];
        /* A signal no rule can name ("*") is matched as one no route
         * lists. */
        const char *as = strcmp(sig, "*") ? sig
                                          : "\x01"
                                            "any";
        for (size_t k = 0; k < 4; k++) {
            pv_strlist rows = {0};
            pv_notify_route(cfg, sevs[k], as, &rows);
            if (!rows.count) {
                int below = rank(sevs[k]) < rank(cfg->email.min_severity);
                fprintf(out, "  %-20s %-9s %s\n", sig, sevs[k],
                        below ? "(not mailed: below email.min_severity)"
                              : "(nobody)");
                if (!below) {
                    pv_buf_printf(warnings,
                                  "%s: email: %s alerts of %s reach nobody "
                                  "(add email.to, or a route for them)\n",
                                  cfg->path ? cfg->path : "(defaults)", sevs[k],
                                  strcmp(sig, "*") ? sig : "other signals");
                    nwarn++;
                }
            }
            for (size_t r = 0; r < rows.count; r++)
                fprintf(out, "  %-20s %-9s %s\n", sig, sevs[k], rows.items[r]);
            pv_strlist_free(&rows);
        }
    }
    pv_strlist_free(&signals);
    return nwarn;
}

static int on_alert(void *ud, const pv_alert_event *ev, const pv_alert_in *in,
                    int64_t alert_id)
{
    pv_notify *n = ud;
    if (!in || (strcmp(ev->event, "opened") && strcmp(ev->event, "escalated")))
        return 0;
    if (in->rule && !strcmp(in->rule, NOTIFY_RULE))
        return 0;
    pv_strlist rows = {0};
    int rc = pv_notify_route(n->cfg, in->severity, in->signal, &rows);
    for (size_t i = 0; i < rows.count && !rc; i++)
        rc = queue_for(n, alert_id, ev->event, in->severity, rows.items[i]);
    pv_strlist_free(&rows);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Outcomes                                                                */

static int exec_update(pv_notify *n, const char *sql, int64_t id,
                       const char *text, const char *when)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(n->store), sql, -1, &st, NULL) !=
        SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_int64(st, 1, id);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
    if (when)
        sqlite3_bind_text(st, 3, when, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : PV_EDB;
}

static void mark_sent(pv_notify *n, int64_t id)
{
    /* In autocommit, or inside an MLLP batch that commits within this
     * loop iteration; if that batch were rolled back the row is sent
     * again with the same Message-ID: at least once, recognisably. */
    if (exec_update(n,
                    "UPDATE outbox SET status = 'sent', attempts = "
                    "attempts + 1, last_error = NULL WHERE id = ?1",
                    id, NULL, NULL))
        pv_error("outbox %lld: sent, but could not be marked: %s",
                 (long long)id, pv_store_errmsg(n->store));
    n->sent_count++;
    pv_metrics_mail(PV_MAIL_SENT);
}

static void mark_failed(pv_notify *n, int64_t id, const char *error)
{
    sqlite3_stmt *st;
    int attempts = 0;
    if (sqlite3_prepare_v2(pv_store_db(n->store),
                           "SELECT attempts FROM outbox WHERE id = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            attempts = sqlite3_column_int(st, 0) + 1;
        sqlite3_finalize(st);
    }
    if (attempts >= n->cfg->email.max_attempts) {
        exec_update(n,
                    "UPDATE outbox SET status = 'failed', attempts = "
                    "attempts + 1, last_error = ?2 WHERE id = ?1",
                    id, error, NULL);
        pv_error("outbox %lld: giving up after %d attempts: %s", (long long)id,
                 attempts, error);
        pv_metrics_mail(PV_MAIL_GAVE_UP);
        if (n->on_fail)
            n->on_fail(n->on_fail_ud, id, error);
        return;
    }
    /* Exponential backoff with jitter (0.5x to 1.5x), capped. */
    double delay = n->cfg->email.retry_base * pow(2.0, attempts - 1);
    if (delay > n->cfg->email.retry_cap)
        delay = n->cfg->email.retry_cap;
    delay *= 0.5 + (double)rand() / RAND_MAX;
    char when[PV_TIME_BUFSZ];
    pv_time_format(pv_store_now(n->store) + (pv_time_t)ceil(delay), when);
    exec_update(n,
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, "
                "next_attempt_at = ?3 WHERE id = ?1",
                id, error, when);
    pv_warn("outbox %lld: attempt %d failed (%s); next at %s", (long long)id,
            attempts, error, when);
    pv_metrics_mail(PV_MAIL_RETRY);
}

/* ---------------------------------------------------------------------- */
/* Sending with curl multi on the libuv loop                               */

static size_t read_payload(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t room = size * nitems, left = x->payload.len - x->off;
    size_t n = left < room ? left : room;
    memcpy(buf, x->payload.ptr + x->off, n);
    x->off += n;
    return n;
}

/* Frees a transfer that is in no multi handle any more. */
static void xfer_free(struct xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->rcpt);
    pv_buf_free(&x->payload);
    free(x->ids);
    free(x);
}

/* Transport thread: hands a finished (or abandoned) transfer back. */
static void hand_back(pv_notify *n, struct xfer *x)
{
    for (size_t i = 0; i < n->nactive; i++)
        if (n->active[i] == x) {
            n->active[i] = n->active[--n->nactive];
            break;
        }
    curl_multi_remove_handle(n->multi, x->easy);
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->code);
    uv_mutex_lock(&n->mu);
    x->next = n->done;
    n->done = x;
    uv_mutex_unlock(&n->mu);
    uv_async_send(&n->done_async);
}

static void check_multi(pv_notify *n)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(n->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        x->res = m->data.result;
        hand_back(n, x);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(s->n->multi, s->fd, flags, &running);
    check_multi(s->n);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp,
                     void *sockp)
{
    (void)e;
    pv_notify *n = userp;
    struct sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(n->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->n = n;
        uv_poll_init_socket(&n->tloop, &s->poll, fd);
        s->poll.data = s;
        curl_multi_assign(n->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    pv_notify *n = t->data;
    int running;
    curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi(n);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    pv_notify *n = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&n->curl_timer);
    else
        uv_timer_start(&n->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_POLL ? on_sock_closed : NULL);
}

/* Transport thread: new transfers to start, or the order to stop. */
static void on_wake(uv_async_t *a)
{
    pv_notify *n = a->data;
    uv_mutex_lock(&n->mu);
    struct xfer *todo = n->todo;
    n->todo = NULL;
    int stopping = n->stopping;
    uv_mutex_unlock(&n->mu);
    while (todo) {
        struct xfer *x = todo;
        todo = x->next;
        if (stopping || curl_multi_add_handle(n->multi, x->easy) != CURLM_OK) {
            x->abandoned = stopping;
            x->res = CURLE_FAILED_INIT;
            uv_mutex_lock(&n->mu);
            x->next = n->done;
            n->done = x;
            uv_mutex_unlock(&n->mu);
            uv_async_send(&n->done_async);
            continue;
        }
        n->active[n->nactive++] = x;
    }
    if (stopping) {
        /* Removing an unfinished SMTP transfer runs curl's DONE phase,
         * which blocks until the server answers or the transfer's timeout
         * (curl issue 4015): with a 1 ms timeout it returns at once. */
        while (n->nactive) {
            struct xfer *x = n->active[n->nactive - 1];
            curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 1L);
            curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, 1L);
            x->abandoned = 1;
            x->res = CURLE_ABORTED_BY_CALLBACK;
            hand_back(n, x);
        }
        curl_multi_cleanup(n->multi);
        n->multi = NULL;
        uv_walk(&n->tloop, close_walk, NULL);
        return;
    }
    int running;
    curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi(n);
}

static void transport_main(void *arg)
{
    pv_notify *n = arg;
    uv_run(&n->tloop, UV_RUN_DEFAULT);
}

static int in_flight(pv_notify *n, int64_t id)
{
    for (size_t i = 0; i < n->ninflight; i++)
        for (size_t j = 0; j < n->inflight[i]->nids; j++)
            if (n->inflight[i]->ids[j] == id)
                return 1;
    return 0;
}

/* "email:a@x, b@y" -> the recipients as a curl list. */
static struct curl_slist *recipients(const char *channel)
{
    const char *p = strchr(channel, ':');
    struct curl_slist *l = NULL;
    if (!p)
        return NULL;
    p++;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p) {
            char addr[512];
            snprintf(addr, sizeof addr, "<%.*s>", (int)(t - p), p);
            struct curl_slist *nl = curl_slist_append(l, addr);
            if (nl)
                l = nl;
        }
        p = e;
    }
    return l;
}

static int start_transfer(pv_notify *n, const char *channel, pv_buf *payload,
                          int64_t *ids, size_t nids)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (!x)
        return PV_ENOMEM;
    x->n = n;
    x->payload = *payload;
    *payload = (pv_buf)PV_BUF_INIT;
    x->ids = ids;
    x->nids = nids;
    x->rcpt = recipients(channel);
    x->easy = curl_easy_init();
    if (!x->easy || !x->rcpt) {
        xfer_free(x);
        return PV_ENOMEM;
    }
    const pv_config *c = n->cfg;
    CURL *e = x->easy;
    char from[512];
    snprintf(from, sizeof from, "<%s>", c->email.from);
    curl_easy_setopt(e, CURLOPT_URL, c->email.url);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, x->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_payload);
    curl_easy_setopt(e, CURLOPT_READDATA, x);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->payload.len);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->email.timeout * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->email.timeout * 1000));
    if (c->email.tls && strcmp(c->email.tls, "none"))
        curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (c->email.insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->email.username)
        curl_easy_setopt(e, CURLOPT_USERNAME, c->email.username);
    if (n->password)
        curl_easy_setopt(e, CURLOPT_PASSWORD, n->password);
    n->inflight[n->ninflight++] = x;
    uv_mutex_lock(&n->mu);
    x->next = n->todo;
    n->todo = x;
    uv_mutex_unlock(&n->mu);
    uv_async_send(&n->wake);
    return 0;
}

/* email.dir: the message as a file, written whole or not at all. */
static int write_eml(pv_notify *n, int64_t id, const char *payload)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/outbox-%06lld.eml", n->cfg->email.dir,
             (long long)id);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return PV_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return PV_EIO;
    size_t len = strlen(payload), off = 0;
    while (off < len) {
        ssize_t w = write(fd, payload + off, len - off);
        if (w <= 0) {
            close(fd);
            return PV_EIO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return PV_EIO;
    if (rename(tmp, path) != 0)
        return PV_EIO;
    /* The new name on disk before the row says 'sent': otherwise a power
     * cut could leave the row sent and the file never there. (A failure
     * here leaves the row pending; the next attempt writes the same
     * name again.) */
    int dfd = open(n->cfg->email.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return PV_EIO;
    int rc = fsync(dfd) == 0 ? 0 : PV_EIO;
    close(dfd);
    return rc;
}

/* Collects the due digest rows of one channel into one message. */
static void send_digest(pv_notify *n, const char *channel)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(n->store),
                           "SELECT id, payload FROM outbox WHERE status = "
                           "'pending' AND channel = ? AND next_attempt_at "
                           "<= ? AND id <= ? ORDER BY id LIMIT 500",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    char now[PV_TIME_BUFSZ];
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pv_time_format(pv_store_now(n->store), now), -1,
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, n->durable_upto);
    int64_t *ids = NULL;
    size_t nids = 0;
    pv_buf body = PV_BUF_INIT;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (in_flight(n, id))
            continue;
        int64_t *ni = realloc(ids, (nids + 1) * sizeof *ni);
        if (!ni)
            break;
        ids = ni;
        ids[nids++] = id;
        /* Each item: its message without the headers. */
        const char *p = col(st, 1);
        const char *b = strstr(p, "\r\n\r\n");
        pv_buf_printf(&body, "---------- item %zu ----------\r\n%s\r\n", nids,
                      b ? b + 4 : p);
    }
    sqlite3_finalize(st);
    if (!nids) {
        pv_buf_free(&body);
        return;
    }
    char date[64];
    rfc2822_date(pv_store_now(n->store), date, sizeof date);
    pv_buf msg = PV_BUF_INIT;
    pv_buf_printf(&msg, "From: pvwatch <%s>\r\nTo: %s\r\n", n->cfg->email.from,
                  strchr(channel, ':') + 1);
    pv_buf_printf(&msg,
                  "Subject: [pvwatch] digest: %zu low-severity "
                  "alert event%s\r\n",
                  nids, nids == 1 ? "" : "s");
    pv_buf_printf(&msg,
                  "Date: %s\r\nMessage-ID: <pvwatch.digest-%lld-%lld@"
                  "pvwatch>\r\nMIME-Version: 1.0\r\nContent-Type: "
                  "text/plain; charset=utf-8\r\nContent-Transfer-"
                  "Encoding: 8bit\r\n\r\n",
                  date, (long long)ids[0], (long long)ids[nids - 1]);
    pv_buf_append(&msg, body.ptr, body.len);
    pv_buf_free(&body);
    if (canonical(&msg)) {
        free(ids);
        pv_buf_free(&msg);
        return;
    }
    if (n->cfg->email.dir) {
        int rc = write_eml(n, ids[0], pv_buf_cstr(&msg));
        for (size_t i = 0; i < nids; i++)
            rc ? mark_failed(n, ids[i], "cannot write the .eml file")
               : mark_sent(n, ids[i]);
        free(ids);
        pv_buf_free(&msg);
        return;
    }
    if (start_transfer(n, channel, &msg, ids, nids)) {
        free(ids);
        pv_buf_free(&msg);
    }
}

/* ---------------------------------------------------------------------- */
/* email.digest: a summary of the open alerts, once per period             */

/* The open-alerts digest (issue 21 part 2; docs/operations.md "Digest of
 * open alerts"): at each period boundary, one mail per recipient list
 * with, per signal, the open alerts' counts by severity, the age of the
 * oldest and the newest email.digest.newest of them. The mail is an
 * outbox row (alert_id 0: it is about no one alert) written in the same
 * transaction as the period it is for (rule_state pvwatch.notify /
 * digest_period), so it goes out through the usual retries, and no
 * period is mailed twice, whatever restarts. */

pv_time_t pv_notify_digest_period(const pv_config *cfg, pv_time_t t)
{
    pv_time_t every = cfg->email.digest.every;
    pv_time_t anchor = cfg->email.digest.anchor;
    if (every <= 0)
        return t;
    pv_time_t d = t - anchor;
    pv_time_t k = d >= 0 ? d / every : -((-d + every - 1) / every);
    return anchor + k * every;
}

static const char *const digest_sevs[] = {"critical", "high", "medium", "low"};

static const char *digest_min_sev(const pv_config *cfg)
{
    return cfg->email.digest.severity ? cfg->email.digest.severity : "low";
}

/* "severity IN ('critical', ...)": the severities at or above the
 * digest's (constants only). */
static void sev_filter(const pv_config *cfg, pv_buf *sql)
{
    pv_buf_puts(sql, "severity IN (");
    int first = 1;
    for (size_t k = 0; k < 4; k++) {
        if (rank(digest_sevs[k]) < rank(digest_min_sev(cfg)))
            continue;
        pv_buf_printf(sql, "%s'%s'", first ? "" : ", ", digest_sevs[k]);
        first = 0;
    }
    pv_buf_puts(sql, ")");
}

static void put_age(pv_buf *b, pv_time_t s)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        pv_buf_printf(b, "%lldd %02lldh", (long long)(s / 86400),
                      (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        pv_buf_printf(b, "%lldh %02lldm", (long long)(s / 3600),
                      (long long)(s % 3600 / 60));
    else if (s >= 60)
        pv_buf_printf(b, "%lldm", (long long)(s / 60));
    else
        pv_buf_printf(b, "%llds", (long long)s);
}

/* Appends the section of one signal; returns its number of open alerts
 * (negative: a database error). */
static long digest_signal(pv_notify *n, const char *signal, pv_time_t now,
                          pv_buf *b)
{
    const pv_config *cfg = n->cfg;
    sqlite3 *db = pv_store_db(n->store);
    pv_buf sql = PV_BUF_INIT;
    pv_buf_puts(&sql, "SELECT severity, count(*) FROM alerts WHERE status = "
                      "'open' AND signal = ?1 AND ");
    sev_filter(cfg, &sql);
    pv_buf_puts(&sql, " GROUP BY severity");
    sqlite3_stmt *st;
    long counts[4] = {0, 0, 0, 0}, total = 0;
    if (!pv_buf_ok(&sql) ||
        sqlite3_prepare_v2(db, pv_buf_cstr(&sql), -1, &st, NULL) != SQLITE_OK) {
        pv_buf_free(&sql);
        return -1;
    }
    sqlite3_bind_text(st, 1, signal, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        for (size_t k = 0; k < 4; k++)
            if (!strcmp(col(st, 0), digest_sevs[k])) {
                counts[k] = sqlite3_column_int(st, 1);
                total += counts[k];
            }
    sqlite3_finalize(st);
    put_text(b, signal);
    pv_buf_printf(b, ": %ld open", total);
    if (total) {
        pv_buf_puts(b, " (");
        int first = 1;
        for (size_t k = 0; k < 4; k++)
            if (rank(digest_sevs[k]) >= rank(digest_min_sev(cfg))) {
                pv_buf_printf(b, "%s%s %ld", first ? "" : ", ", digest_sevs[k],
                              counts[k]);
                first = 0;
            }
        pv_buf_puts(b, ")");
    }
    pv_buf_puts(b, "\r\n");
    if (!total) {
        pv_buf_free(&sql);
        return 0;
    }
    /* The oldest, then the newest N. */
    pv_buf_reset(&sql);
    pv_buf_puts(&sql, "SELECT id, created_at FROM alerts WHERE status = "
                      "'open' AND signal = ?1 AND ");
    sev_filter(cfg, &sql);
    pv_buf_puts(&sql, " ORDER BY created_at, id LIMIT 1");
    if (pv_buf_ok(&sql) &&
        sqlite3_prepare_v2(db, pv_buf_cstr(&sql), -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, signal, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            pv_time_t at = now;
            pv_time_parse(col(st, 1), strlen(col(st, 1)), &at);
            pv_buf_puts(b, "  oldest open: ");
            put_age(b, now - at);
            pv_buf_printf(b, " (alert %lld, opened ",
                          (long long)sqlite3_column_int64(st, 0));
            put_text(b, col(st, 1));
            pv_buf_puts(b, ")\r\n");
        }
        sqlite3_finalize(st);
    }
    long newest = cfg->email.digest.newest;
    pv_buf_reset(&sql);
    pv_buf_puts(&sql, "SELECT id, patient_id, severity, rule, title, status, "
                      "assignee, created_at FROM alerts WHERE status = "
                      "'open' AND signal = ?1 AND ");
    sev_filter(cfg, &sql);
    pv_buf_puts(&sql, " ORDER BY id DESC LIMIT ?2");
    if (newest > 0 && pv_buf_ok(&sql) &&
        sqlite3_prepare_v2(db, pv_buf_cstr(&sql), -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, signal, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, newest);
        pv_buf_printf(b, "  newest %ld of %ld:\r\n",
                      total < newest ? total : newest, total);
        while (sqlite3_step(st) == SQLITE_ROW) {
            pv_buf_printf(b, "  - alert %lld  patient ",
                          (long long)sqlite3_column_int64(st, 0));
            put_n(b, col(st, 1), strlen(col(st, 1)), 64);
            pv_buf_puts(b, "  ");
            put_text(b, col(st, 2));
            pv_buf_puts(b, "  ");
            put_n(b, col(st, 3), strlen(col(st, 3)), 128);
            pv_buf_puts(b, "  ");
            put_n(b, col(st, 4), strlen(col(st, 4)), 200);
            pv_buf_puts(b, "  [");
            put_text(b, col(st, 5));
            if (*col(st, 6)) {
                pv_buf_puts(b, ", assigned to ");
                put_n(b, col(st, 6), strlen(col(st, 6)), 128);
            } else {
                pv_buf_puts(b, ", unassigned");
            }
            pv_buf_puts(b, ", opened ");
            put_text(b, col(st, 7));
            pv_buf_puts(b, "]\r\n");
        }
        sqlite3_finalize(st);
    }
    pv_buf_free(&sql);
    return total;
}

/* The recipients of the digest: email.digest.to, else email.to (else,
 * with email.dir, the local safety officer). */
static void digest_recipients(const pv_config *cfg, pv_buf *out)
{
    pv_strlist to = {0};
    if (cfg->email.digest.to.count)
        for (size_t i = 0; i < cfg->email.digest.to.count; i++)
            pv_strlist_add(&to, cfg->email.digest.to.items[i]);
    else
        top_recipients(cfg, &to);
    pv_strlist seen = {0};
    for (size_t i = 0; i < to.count; i++) {
        if (listed(&seen, to.items[i]))
            continue;
        pv_strlist_add(&seen, to.items[i]);
        pv_buf_printf(out, "%s%s", out->len ? ", " : "", to.items[i]);
    }
    pv_strlist_free(&seen);
    pv_strlist_free(&to);
}

static void schedule_text(const pv_config *cfg, pv_buf *b)
{
    const char *ev = cfg->email.digest.every_text;
    pv_buf_puts(b, ev ? ev : "?");
    if (cfg->email.digest.at)
        pv_buf_printf(b, " at %s UTC", cfg->email.digest.at);
    else if (ev && !strcmp(ev, "daily"))
        pv_buf_puts(b, " at 00:00 UTC");
    else if (ev && !strcmp(ev, "weekly"))
        pv_buf_puts(b, " on Monday at 00:00 UTC");
}

/* Composes the digest of the period that ends at 'boundary' into msg;
 * returns the number of open alerts in it, negative on error. */
static long compose_open_digest(pv_notify *n, pv_time_t boundary,
                                const char *rcpts, pv_buf *msg)
{
    const pv_config *cfg = n->cfg;
    pv_time_t now = pv_store_now(n->store);
    pv_strlist signals = {0};
    if (cfg->email.digest.signals.count) {
        for (size_t i = 0; i < cfg->email.digest.signals.count; i++)
            pv_strlist_add(&signals, cfg->email.digest.signals.items[i]);
    } else {
        pv_buf sql = PV_BUF_INIT;
        sqlite3_stmt *st;
        pv_buf_puts(&sql, "SELECT DISTINCT signal FROM alerts WHERE status = "
                          "'open' AND ");
        sev_filter(cfg, &sql);
        pv_buf_puts(&sql, " ORDER BY signal");
        if (pv_buf_ok(&sql) &&
            sqlite3_prepare_v2(pv_store_db(n->store), pv_buf_cstr(&sql), -1,
                               &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW)
                pv_strlist_add(&signals, col(st, 0));
            sqlite3_finalize(st);
        } else {
            pv_buf_free(&sql);
            return -1;
        }
        pv_buf_free(&sql);
    }
    pv_buf body = PV_BUF_INIT;
    long total = 0;
    for (size_t i = 0; i < signals.count && total >= 0; i++) {
        pv_buf_puts(&body, "\r\n");
        long k = digest_signal(n, signals.items[i], now, &body);
        total = k < 0 ? k : total + k;
    }
    pv_strlist_free(&signals);
    if (total < 0) {
        pv_buf_free(&body);
        return total;
    }
    char iso[PV_TIME_BUFSZ], niso[PV_TIME_BUFSZ], date[64];
    pv_time_format(boundary, iso);
    pv_time_format(now, niso);
    rfc2822_date(now, date, sizeof date);
    pv_sha256 h;
    char hex[65];
    pv_sha256_init(&h);
    pv_sha256_update(&h, rcpts, strlen(rcpts));
    pv_sha256_hex(&h, hex);
    pv_buf sched = PV_BUF_INIT;
    schedule_text(cfg, &sched);
    pv_buf_printf(msg, "From: pvwatch <%s>\r\nTo: %s\r\n", cfg->email.from,
                  rcpts);
    pv_buf_printf(msg,
                  "Subject: [pvwatch] open alerts digest: %ld open "
                  "(%.10s %.5s UTC)\r\n",
                  total, iso, iso + 11);
    pv_buf_printf(msg,
                  "Date: %s\r\nMessage-ID: <pvwatch.open-digest-%lld.%.12s@"
                  "pvwatch>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
                  "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                  "X-Pvwatch-Digest: %s\r\nX-Pvwatch-Open: %ld\r\n\r\n",
                  date, (long long)boundary, hex, iso, total);
    if (total)
        pv_buf_printf(msg, "%ld open alert%s at %s.\r\n", total,
                      total == 1 ? "" : "s", niso);
    else
        pv_buf_printf(msg, "No open alerts at %s.\r\n", niso);
    pv_buf_printf(msg,
                  "Digest %s, for the period ending %s; severity %s and "
                  "above; signals: ",
                  pv_buf_cstr(&sched), iso, digest_min_sev(cfg));
    pv_buf_free(&sched);
    if (!cfg->email.digest.signals.count)
        pv_buf_puts(msg, "all");
    for (size_t i = 0; i < cfg->email.digest.signals.count; i++) {
        if (i)
            pv_buf_puts(msg, ", ");
        put_text(msg, cfg->email.digest.signals.items[i]);
    }
    pv_buf_puts(msg, ".\r\n");
    pv_buf_append(msg, body.ptr ? body.ptr : "", body.len);
    pv_buf_free(&body);
    pv_buf_puts(msg, "\r\nTo see them:  pvwatch alerts list --status open\r\n"
                     "This message carries patient ids and alert titles "
                     "only.\r\n");
    if (!pv_buf_ok(msg) || canonical(msg))
        return -1;
    return total;
}

#define DIGEST_STATE "digest_period"

/* Loop thread, from pump: queues the digest when a period boundary has
 * passed since the last one queued. */
static void queue_open_digest(pv_notify *n)
{
    const pv_config *cfg = n->cfg;
    if (!cfg->email.digest.enabled || pv_store_in_tx(n->store))
        return;
    pv_time_t b = pv_notify_digest_period(cfg, pv_store_now(n->store));
    if (n->digest_done && b <= n->digest_done)
        return;
    char *stored = NULL;
    pv_time_t last = 0;
    int have =
        pv_store_state_get(n->store, NOTIFY_RULE, DIGEST_STATE, &stored) == 0 &&
        stored && pv_time_parse(stored, strlen(stored), &last) == 0;
    free(stored);
    char iso[PV_TIME_BUFSZ];
    pv_time_format(b, iso);
    if (!have) {
        /* The first sight of this digest: the periods are counted from
         * here; the first digest goes at the next boundary. */
        if (pv_store_state_set(n->store, NOTIFY_RULE, DIGEST_STATE, iso) == 0)
            n->digest_done = b;
        return;
    }
    if (last >= b) {
        n->digest_done = b;
        return;
    }
    pv_buf rcpts = PV_BUF_INIT, msg = PV_BUF_INIT, channel = PV_BUF_INIT;
    digest_recipients(cfg, &rcpts);
    long total = compose_open_digest(n, b, pv_buf_cstr(&rcpts), &msg);
    pv_buf_printf(&channel, "email:%s", pv_buf_cstr(&rcpts));
    int rc = total < 0 || !pv_buf_ok(&channel) ? PV_EDB : 0;
    int mail = !rc && rcpts.len && (total > 0 || cfg->email.digest.send_empty);
    /* The row and the period it is for, in one transaction. */
    if (!rc)
        rc = pv_store_begin(n->store);
    if (!rc && mail)
        rc = insert_row(n, 0, pv_buf_cstr(&channel), pv_buf_cstr(&msg));
    if (!rc)
        rc = pv_store_state_set(n->store, NOTIFY_RULE, DIGEST_STATE, iso);
    if (!rc)
        rc = pv_store_commit(n->store);
    if (rc) {
        if (pv_store_in_tx(n->store))
            pv_store_rollback(n->store);
        pv_error("email.digest: cannot queue the digest of %s: %s", iso,
                 pv_store_errmsg(n->store));
    } else {
        n->digest_done = b;
        pv_info("email.digest: %s: %ld open alert%s%s", iso, total,
                total == 1 ? "" : "s",
                mail ? ", queued" : " (empty: not mailed)");
        if (pv_store_all_durable(n->store))
            pv_notify_durable(n, pv_notify_outbox_max(n));
    }
    pv_buf_free(&rcpts);
    pv_buf_free(&msg);
    pv_buf_free(&channel);
}

int pv_notify_check_digest(const pv_config *cfg, const pv_strlist *known,
                           pv_buf *errors)
{
    /* DESIGN.md's signals, when the rule pack could not be read. */
    static const char *const design[] = {
        "cytopenia", "infection", "thrombosis", "hepatic",
        "lipids",    "renal",     "monitoring", "engine"};
    int nerr = 0;
    if (!cfg->email.enabled || !cfg->email.digest.enabled)
        return 0;
    for (size_t i = 0; i < cfg->email.digest.signals.count; i++) {
        const char *sig = cfg->email.digest.signals.items[i];
        int ok = !strcmp(sig, "engine");
        if (known)
            ok |= listed(known, sig);
        else
            for (size_t k = 0; k < sizeof design / sizeof *design; k++)
                ok |= !strcmp(design[k], sig);
        if (ok)
            continue;
        pv_buf names = PV_BUF_INIT, shown = PV_BUF_INIT;
        pv_strlist seen = {0};
        if (known) {
            for (size_t k = 0; k < known->count; k++)
                if (!listed(&seen, known->items[k]))
                    pv_strlist_add(&seen, known->items[k]);
        } else {
            for (size_t k = 0; k < sizeof design / sizeof *design; k++)
                pv_strlist_add(&seen, design[k]);
        }
        if (!listed(&seen, "engine"))
            pv_strlist_add(&seen, "engine");
        for (size_t k = 0; k < seen.count; k++)
            pv_buf_printf(&names, "%s%s", k ? ", " : "", seen.items[k]);
        pv_strlist_free(&seen);
        int line = cfg->email.digest.signal_lines
                       ? cfg->email.digest.signal_lines[i]
                       : 0;
        const char *file = cfg->path ? cfg->path : "(defaults)";
        if (line)
            pv_buf_printf(errors, "%s:%d: ", file, line);
        else
            pv_buf_printf(errors, "%s: ", file);
        pv_buf_printf(errors,
                      "email.digest.signals: '%s' is not a signal of %s "
                      "(known: %s)\n",
                      pv_buf_escape(&shown, sig),
                      known ? "the rule pack" : "DESIGN.md's list",
                      pv_buf_cstr(&names));
        pv_buf_free(&names);
        pv_buf_free(&shown);
        nerr++;
    }
    return nerr;
}

void pv_notify_print_digest(const pv_config *cfg, FILE *out, pv_time_t now)
{
    if (!cfg->email.enabled)
        return;
    if (cfg->email.digest_interval > 0)
        fprintf(out,
                "e-mail batching (digest_interval): alerts at or below %s "
                "are mailed together every %g s, per recipient list\n",
                cfg->email.digest_severity ? cfg->email.digest_severity : "low",
                cfg->email.digest_interval);
    if (!cfg->email.digest.enabled)
        return;
    pv_buf sched = PV_BUF_INIT, rcpts = PV_BUF_INIT;
    schedule_text(cfg, &sched);
    digest_recipients(cfg, &rcpts);
    char next[PV_TIME_BUFSZ];
    pv_time_format(pv_notify_digest_period(cfg, now) +
                       (pv_time_t)cfg->email.digest.every,
                   next);
    fprintf(out, "e-mail digest of open alerts: %s, next at %s\n",
            pv_buf_cstr(&sched), next);
    fprintf(out, "  to:       %s\n",
            rcpts.len ? pv_buf_cstr(&rcpts) : "(nobody)");
    fprintf(out, "  signals:  ");
    if (!cfg->email.digest.signals.count)
        fprintf(out, "all");
    for (size_t i = 0; i < cfg->email.digest.signals.count; i++)
        fprintf(out, "%s%s", i ? ", " : "", cfg->email.digest.signals.items[i]);
    fprintf(out,
            "\n  severity: %s and above; newest %ld listed per signal; "
            "%s\n",
            digest_min_sev(cfg), cfg->email.digest.newest,
            cfg->email.digest.send_empty
                ? "an empty period mails \"no open alerts\""
                : "an empty period mails nothing");
    pv_buf_free(&sched);
    pv_buf_free(&rcpts);
}

int64_t pv_notify_outbox_max(pv_notify *n)
{
    if (!n)
        return 0;
    if (!n->max_st &&
        sqlite3_prepare_v3(pv_store_db(n->store), "SELECT max(id) FROM outbox",
                           -1, SQLITE_PREPARE_PERSISTENT, &n->max_st,
                           NULL) != SQLITE_OK)
        return 0;
    int64_t max = 0;
    if (sqlite3_step(n->max_st) == SQLITE_ROW)
        max = sqlite3_column_int64(n->max_st, 0);
    sqlite3_reset(n->max_st);
    return max;
}

void pv_notify_durable(pv_notify *n, int64_t upto)
{
    if (n && upto > n->durable_upto)
        n->durable_upto = upto;
}

/* Starts transfers for due rows, as many as may be in flight. */
static void pump(pv_notify *n)
{
    sqlite3_stmt *st;
    char now[PV_TIME_BUFSZ];
    /* Nothing waits for a WAL sync: all that is committed is durable
     * (rows from other processes too, or from before the start). */
    if (pv_store_all_durable(n->store))
        pv_notify_durable(n, pv_notify_outbox_max(n));
    queue_open_digest(n);
    pv_time_format(pv_store_now(n->store), now);
    if (sqlite3_prepare_v2(pv_store_db(n->store),
                           "SELECT id, channel, payload FROM outbox WHERE "
                           "status = 'pending' AND channel LIKE 'email:%' "
                           "AND next_attempt_at <= ? AND id > ? AND id <= ? "
                           "ORDER BY id LIMIT 64",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, n->drained_id);
    sqlite3_bind_int64(st, 3, n->durable_upto);
    while (n->ninflight < MAX_IN_FLIGHT && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (in_flight(n, id))
            continue;
        if (n->drained_id)
            n->drained_id = id; /* draining: each row at most once */
        if (n->cfg->email.dir) {
            if (write_eml(n, id, col(st, 2)))
                mark_failed(n, id, "cannot write the .eml file");
            else
                mark_sent(n, id);
            continue;
        }
        int64_t *ids = malloc(sizeof *ids);
        pv_buf payload = PV_BUF_INIT;
        pv_buf_puts(&payload, col(st, 2));
        if (!ids || !pv_buf_ok(&payload)) {
            free(ids);
            pv_buf_free(&payload);
            break;
        }
        ids[0] = id;
        const char *channel = col(st, 1);
        if (start_transfer(n, channel, &payload, ids, 1)) {
            free(ids);
            pv_buf_free(&payload);
        }
    }
    sqlite3_finalize(st);
    /* Digests go out once per interval, per recipient list. */
    /* When the last digest went is kept in the database, so a restart or
     * a one-off 'pvwatch ingest' does not send one early. */
    pv_time_t t = pv_store_now(n->store), last = 0;
    char *stored = NULL;
    if (n->cfg->email.digest_interval > 0 &&
        pv_store_state_get(n->store, NOTIFY_RULE, "last_digest", &stored) ==
            0 &&
        stored)
        pv_time_parse(stored, strlen(stored), &last);
    free(stored);
    if (n->cfg->email.digest_interval > 0 &&
        t - last >= (pv_time_t)n->cfg->email.digest_interval) {
        char iso[PV_TIME_BUFSZ];
        pv_store_state_set(n->store, NOTIFY_RULE, "last_digest",
                           pv_time_format(t, iso));
        pv_strlist channels = {0};
        if (sqlite3_prepare_v2(pv_store_db(n->store),
                               "SELECT DISTINCT channel FROM outbox WHERE "
                               "status = 'pending' AND channel LIKE "
                               "'digest:%'",
                               -1, &st, NULL) == SQLITE_OK) {
            while (sqlite3_step(st) == SQLITE_ROW)
                pv_strlist_add(&channels, col(st, 0));
            sqlite3_finalize(st);
        }
        for (size_t i = 0; i < channels.count; i++)
            if (n->ninflight < MAX_IN_FLIGHT)
                send_digest(n, channels.items[i]);
        pv_strlist_free(&channels);
    }
}

static void on_pump(uv_timer_t *t)
{
    pump(t->data);
}

/* ---------------------------------------------------------------------- */
/* Life cycle                                                              */

extern char **environ;

/* Removes NAME from the environment and overwrites its value in place:
 * the initial environment is what /proc/PID/environ shows, and unsetenv
 * alone leaves the bytes there. */
static void forget_env(const char *name)
{
    size_t n = strlen(name);
    char *entries[16];
    size_t k = 0;
    for (char **e = environ; e && *e && k < 16; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            entries[k++] = *e;
    unsetenv(name);
    /* The strings outlive unsetenv (glibc keeps them): blank them whole,
     * name too. */
    while (k) {
        k--;
        memset(entries[k], 0, strlen(entries[k]));
    }
}

static char *read_secret(const pv_config *cfg, char *err, size_t errcap)
{
    if (cfg->email.password_env) {
        const char *v = getenv(cfg->email.password_env);
        if (!v) {
            snprintf(err, errcap,
                     "email.password_env: the variable %s is "
                     "not set",
                     cfg->email.password_env);
            return NULL;
        }
        char *copy = strdup(v);
        forget_env(cfg->email.password_env);
        return copy;
    }
    if (cfg->email.password_file) {
        FILE *f = fopen(cfg->email.password_file, "r");
        if (!f) {
            snprintf(err, errcap, "email.password_file %s: %s",
                     cfg->email.password_file, strerror(errno));
            return NULL;
        }
        char buf[1024];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        char *s = strdup(buf);
        memset(buf, 0, sizeof buf);
        return s;
    }
    return NULL;
}

int pv_notify_open(const pv_config *cfg, pv_store *store, pv_alerts *alerts,
                   pv_notify **out, char *err, size_t errcap)
{
    *out = NULL;
    if (!cfg->email.enabled)
        return 0;
    pv_notify *n = calloc(1, sizeof *n);
    if (!n)
        return PV_ENOMEM;
    n->cfg = cfg;
    n->store = store;
    if (cfg->email.dir) {
        mkdir(cfg->email.dir, 0750);
        struct stat st;
        if (stat(cfg->email.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errcap, "email.dir %s: not a directory",
                     cfg->email.dir);
            pv_notify_free(n);
            return PV_EINVAL;
        }
    }
    static int curl_ready;
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    pv_alerts_set_hook(alerts, on_alert, n);
    *out = n;
    return 0;
}

void pv_notify_set_config(pv_notify *n, const pv_config *cfg)
{
    if (!n)
        return;
    n->cfg = cfg;
}

void pv_notify_on_failure(pv_notify *n, pv_notify_fail_fn fn, void *ud)
{
    n->on_fail = fn;
    n->on_fail_ud = ud;
}

/* Loop thread: the outcomes the transport handed back. */
static void on_done(uv_async_t *a)
{
    pv_notify *n = a->data;
    uv_mutex_lock(&n->mu);
    struct xfer *done = n->done;
    n->done = NULL;
    uv_mutex_unlock(&n->mu);
    int finished = 0;
    while (done) {
        struct xfer *x = done;
        done = x->next;
        for (size_t i = 0; i < n->ninflight; i++)
            if (n->inflight[i] == x) {
                n->inflight[i] = n->inflight[--n->ninflight];
                break;
            }
        for (size_t i = 0; i < x->nids && !x->abandoned; i++) {
            if (x->res == CURLE_OK) {
                mark_sent(n, x->ids[i]);
            } else {
                char err[CURL_ERROR_SIZE + 64];
                snprintf(err, sizeof err, "%s (server said %ld)",
                         x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->res),
                         x->code);
                mark_failed(n, x->ids[i], err);
            }
        }
        finished = 1;
        xfer_free(x);
    }
    /* A slot is free: take the next due row now rather than at the next
     * PUMP_MS tick, or a backlog drains at MAX_IN_FLIGHT mails a second.
     * (pv_notify_drain pumps by itself.) */
    if (finished && n->started && !n->drained_id)
        pv_notify_kick(n);
}

int pv_notify_prepare(pv_notify *n, char *err, size_t errcap)
{
    if (n->secret_read)
        return 0;
    if (n->cfg->email.password_env || n->cfg->email.password_file) {
        n->password = read_secret(n->cfg, err, errcap);
        if (!n->password)
            return PV_EINVAL;
    }
    n->secret_read = 1;
    return 0;
}

int pv_notify_start(pv_notify *n, uv_loop_t *loop)
{
    /* The secret is read when mail is to be sent, not when the outbox is
     * only listed. */
    char err[512];
    if (pv_notify_prepare(n, err, sizeof err)) {
        pv_error("%s", err);
        return PV_EINVAL;
    }
    n->loop = loop;
    n->multi = curl_multi_init();
    if (!n->multi || uv_loop_init(&n->tloop) != 0)
        return PV_ENOMEM;
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
    uv_mutex_init(&n->mu);
    n->todo = n->done = NULL;
    n->stopping = 0;
    uv_async_init(&n->tloop, &n->wake, on_wake);
    uv_timer_init(&n->tloop, &n->curl_timer);
    n->wake.data = n->curl_timer.data = n;
    uv_async_init(loop, &n->done_async, on_done);
    uv_timer_init(loop, &n->pump);
    n->pump.data = n->done_async.data = n;
    n->handles = 2;
    if (uv_thread_create(&n->thread, transport_main, n) != 0) {
        pv_error("cannot start the mail transport thread");
        return PV_ENOMEM;
    }
    n->started = 1;
    uv_timer_start(&n->pump, on_pump, 0, PUMP_MS);
    return 0;
}

void pv_notify_kick(pv_notify *n)
{
    if (n && n->started)
        uv_timer_start(&n->pump, on_pump, 0, PUMP_MS);
}

static void on_timer_closed(uv_handle_t *h)
{
    pv_notify *n = h->data;
    n->handles--;
}

void pv_notify_stop(pv_notify *n)
{
    if (!n || !n->started)
        return;
    n->started = 0;
    uv_mutex_lock(&n->mu);
    n->stopping = 1;
    uv_mutex_unlock(&n->mu);
    uv_async_send(&n->wake);
    uv_thread_join(&n->thread);
    uv_loop_close(&n->tloop);
    /* What the transport handed back and nobody collected yet: abandoned
     * transfers leave their rows pending, to be sent again later. */
    on_done(&n->done_async);
    uv_mutex_destroy(&n->mu);
    while (n->ninflight)
        xfer_free(n->inflight[--n->ninflight]);
    uv_close((uv_handle_t *)&n->pump, on_timer_closed);
    uv_close((uv_handle_t *)&n->done_async, on_timer_closed);
}

long pv_notify_drain(pv_notify *n, double max_seconds)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 0;
    long before = n->sent_count;
    if (pv_notify_start(n, &loop)) {
        uv_loop_close(&loop);
        return 0;
    }
    uv_timer_stop(&n->pump);
    /* Rows are taken in id order, at most MAX_IN_FLIGHT (or 64 .eml
     * files) at a time; each is tried once: drained_id (nonzero while
     * draining) marks how far the attempts went. */
    n->drained_id = -1;
    uint64_t deadline = uv_now(&loop) + (uint64_t)(max_seconds * 1000);
    for (;;) {
        int64_t upto = n->drained_id;
        if (n->ninflight < MAX_IN_FLIGHT)
            pump(n);
        if (!n->ninflight && n->drained_id == upto)
            break; /* nothing left to try */
        uv_update_time(&loop);
        if (uv_now(&loop) >= deadline)
            break;
        if (n->ninflight)
            uv_run(&loop, UV_RUN_ONCE);
    }
    n->drained_id = 0;
    pv_notify_stop(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return n->sent_count - before;
}

void pv_notify_free(pv_notify *n)
{
    if (!n)
        return;
    sqlite3_finalize(n->max_st);
    if (n->password) {
        memset(n->password, 0, strlen(n->password));
        free(n->password);
    }
    free(n);
}

int pv_notify_print_outbox(pv_store *s, FILE *out, const char *status)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "SELECT id, alert_id, status, attempts, "
                           "next_attempt_at, channel, last_error FROM outbox "
                           "WHERE ?1 IS NULL OR status = ?1 ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    if (status)
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    fprintf(out, "%-6s %-6s %-8s %-3s %-21s %-6s %s\n", "ID", "ALERT", "STATUS",
            "TRY", "NEXT ATTEMPT", "VIA", "TO / LAST ERROR");
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        n++;
        /* The channel is "email:RCPTS" or "digest:RCPTS". */
        const char *ch = col(st, 5), *colon = strchr(ch, ':');
        /* Alert 0: a digest of open alerts (email.digest), of no one
         * alert. */
        char alert[24];
        if (sqlite3_column_int64(st, 1))
            snprintf(alert, sizeof alert, "%lld",
                     (long long)sqlite3_column_int64(st, 1));
        else
            snprintf(alert, sizeof alert, "-");
        fprintf(out, "%-6lld %-6s %-8s %-3d %-21s %-6.*s to %s%s%s\n",
                (long long)sqlite3_column_int64(st, 0), alert, col(st, 2),
                sqlite3_column_int(st, 3), col(st, 4),
                colon ? (int)(colon - ch) : 0, ch, colon ? colon + 1 : ch,
                *col(st, 6) ? "  last error: " : "", col(st, 6));
    }
    sqlite3_finalize(st);
    if (!n)
        fprintf(out, "(outbox empty)\n");
    return 0;
}

long pv_notify_retry(pv_store *s, int64_t id)
{
    sqlite3_stmt *st;
    char now[PV_TIME_BUFSZ];
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "UPDATE outbox SET status = 'pending', attempts = "
                           "0, next_attempt_at = ?2 WHERE status = 'failed' "
                           "AND (?1 = 0 OR id = ?1)",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, pv_time_format(pv_store_now(s), now), -1,
                      SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return PV_EDB;
    return sqlite3_changes(pv_store_db(s));
}
