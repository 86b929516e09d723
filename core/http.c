/* http.c: see http.h. The why of libmicrohttpd, the threads and the write
 * path: docs/architecture.md "The review console". */
#define _GNU_SOURCE /* SCHED_IDLE (sched.h) */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "alerts.h"
#include "auth.h"
#include "chart.h"
#include "error.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "tmpl.h"
#include "web.h"
#include "web_cache.h"

/* The most parameters a query or form may have. */
#define MAX_PARAMS 256

struct pv_http {
    struct MHD_Daemon *d;
    const pv_config *cfg;
    char *db; /* the database path */
    char addr[128];
    int session_hours;
    int chart_ok;
    int yield; /* PV_HTTP_YIELD: pool threads SCHED_IDLE (pvwatch run) */
    atomic_int serving; /* set once the daemon started */
    /* Each pool thread's read-only connection (pthread key), and all of
     * them, to close at stop. */
    pthread_key_t key;
    pthread_mutex_t ro_mu;
    sqlite3 **ro;
    size_t nro, capro;
    /* The write path: one at a time. rw is the sessions' connection. */
    pthread_mutex_t w_mu;
    sqlite3 *rw;
};

/* One request, from the URI log callback to the completion callback. */
struct req {
    char *uri;     /* as sent: path and query, still encoded */
    pv_buf body;   /* a POST's body */
    int too_large; /* the body passed PV_HTTP_MAX_BODY */
    int started;   /* the handler has seen this request */
};

/* What a route answers. */
struct out {
    int status;
    const char *ctype; /* NULL: text/html */
    pv_buf body;
    char location[1024];
    char cookie[256]; /* a Set-Cookie value, or "" */
    int cacheable;    /* static files; pages are no-store */
};

/* ---- Logging --------------------------------------------------------- */

/* libmicrohttpd's messages: a warning while the console starts (why it
 * cannot listen), then debug lines -- they are about clients (a browser's
 * preconnected socket closed unused, a malformed request), and a client
 * must not be able to fill the log. */
__attribute__((format(printf, 2, 0))) static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    pv_http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    pv_log(atomic_load(&h->serving) ? PV_LOG_DEBUG : PV_LOG_WARN, "console: %s",
           msg);
}

/* ---- Scheduling ------------------------------------------------------ */

/* Set on a pool thread at its first request, once it is named and (beside
 * the engine) has given up its priority. */
static _Thread_local int thread_ready;

/* At a pool thread's first request: names it "pv-console" (top -H, ps -L,
 * /proc/PID/task/TID/comm) and, beside the engine (PV_HTTP_YIELD), makes
 * it yield the CPU to the engine's threads: SCHED_IDLE (it runs when no
 * normal thread wants the core; any thread may move itself there without
 * privilege), else nice 19 for this thread alone (Linux's setpriority on a
 * thread id). The console and the engine share the cores; the ACK must
 * not wait for a page (docs/architecture.md "The review console"). */
static void thread_first_request(pv_http *h)
{
    if (thread_ready)
        return;
    thread_ready = 1;
    pthread_setname_np(pthread_self(), "pv-console");
    if (!h->yield)
        return;
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    int e = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    if (e == 0) {
        pv_debug("console: thread %ld runs SCHED_IDLE",
                 (long)syscall(SYS_gettid));
        return;
    }
    long tid = (long)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, 19) == 0)
        pv_debug("console: thread %ld runs at nice 19 (SCHED_IDLE: %s)", tid,
                 strerror(e));
    else
        pv_warn("console: thread %ld keeps its priority: SCHED_IDLE: %s; "
                "nice 19: %s",
                tid, strerror(e), strerror(errno));
}

/* ---- Connections ----------------------------------------------------- */

/* This thread's read-only connection, opened at its first request. */
static sqlite3 *ro_db(pv_http *h)
{
    sqlite3 *db = pthread_getspecific(h->key);
    if (db)
        return db;
    if (sqlite3_open_v2(h->db, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        pv_error("console: cannot open %s read-only: %s", h->db,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    pthread_mutex_lock(&h->ro_mu);
    if (h->nro == h->capro) {
        size_t cap = h->capro ? h->capro * 2 : 8;
        sqlite3 **v = realloc(h->ro, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&h->ro_mu);
            sqlite3_close(db);
            return NULL;
        }
        h->ro = v;
        h->capro = cap;
    }
    h->ro[h->nro++] = db;
    pthread_mutex_unlock(&h->ro_mu);
    pthread_setspecific(h->key, db);
    return db;
}

/* The sessions' writable connection; call with w_mu held. */
static sqlite3 *rw_db(pv_http *h)
{
    if (h->rw)
        return h->rw;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(h->db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        pv_error("console: cannot open %s for writing: %s", h->db,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    /* Beside a running engine the write lock is free between its
     * commits: wait as long as the CLI does (ingest.c). */
    sqlite3_busy_timeout(db, 30000);
    h->rw = db;
    return db;
}

/* Records a session's use (sessions.last_seen), at most once a minute per
 * session (the caller checks the idle time). Best effort, and never a
 * wait for a page: skipped when another write holds the mutex or the
 * engine holds the write lock for more than 100 ms; the next request of
 * the session tries again. */
static void touch_session(pv_http *h, const char *token)
{
    if (pthread_mutex_trylock(&h->w_mu))
        return;
    sqlite3 *rw = rw_db(h);
    if (rw) {
        sqlite3_busy_timeout(rw, 100);
        if (pv_auth_touch(rw, token))
            pv_debug("console: last_seen not updated: %s", sqlite3_errmsg(rw));
        sqlite3_busy_timeout(rw, 30000);
    }
    pthread_mutex_unlock(&h->w_mu);
}

/* ---- Parsing --------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s in place ('+' is a space when plus). -1 for a bad
 * escape or a NUL byte. */
static int pct_decode(char *s, int plus)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = hexval((unsigned char)r[1]);
            int lo = hi < 0 ? -1 : hexval((unsigned char)r[2]);
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else if (*r == '+' && plus) {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return 0;
}

struct params {
    pv_web_param v[MAX_PARAMS];
    size_t n;
    char *text; /* the decoded copy the pointers point into */
};

/* Parses "a=1&b=x%20y" (a query string or an x-www-form-urlencoded body)
 * into p. -1 for a malformed one (bad escape, NUL, too many). */
static int parse_params(const char *s, size_t len, struct params *p)
{
    p->n = 0;
    p->text = malloc(len + 1);
    if (!p->text)
        return -1;
    memcpy(p->text, s, len);
    p->text[len] = '\0';
    if (memchr(s, '\0', len))
        return -1;
    char *save = NULL;
    for (char *tok = strtok_r(p->text, "&", &save); tok;
         tok = strtok_r(NULL, "&", &save)) {
        if (p->n == MAX_PARAMS)
            return -1;
        char *eq = strchr(tok, '=');
        char *val = "";
        if (eq) {
            *eq = '\0';
            val = eq + 1;
        }
        if (pct_decode(tok, 1) || pct_decode(val, 1))
            return -1;
        if (!*tok)
            continue;
        p->v[p->n].name = tok;
        p->v[p->n].value = val;
        p->n++;
    }
    return 0;
}

static const char *param(const struct params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].name, name))
            return p->v[i].value;
    return NULL;
}

/* A 'next' that stays on this site: a local path, not "//host". */
static int local_path(const char *s)
{
    return pv_web_local_path(s);
}

/* Appends s percent-encoded for a query value. */
static void pct_encode(pv_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
            c == '~' || c == '/') {
            pv_buf_append(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            pv_buf_append(b, e, 3);
        }
    }
}

static int parse_id(const char *s, size_t len, int64_t *id)
{
    if (len == 0 || len > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0)
        return -1;
    *id = v;
    return 0;
}

/* ---- Responses ------------------------------------------------------- */

static void add_security_headers(struct MHD_Response *r, int cacheable)
{
    MHD_add_response_header(
        r, "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Cache-Control",
                            cacheable ? "public, max-age=3600" : "no-store");
}

static enum MHD_Result send_out(struct MHD_Connection *c, struct out *o)
{
    if (!pv_buf_ok(&o->body)) {
        pv_buf_reset(&o->body);
        o->status = 500;
        o->ctype = "text/plain; charset=utf-8";
        pv_buf_puts(&o->body, "out of memory\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        o->body.len, o->body.len ? o->body.ptr : (void *)"",
        MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    add_security_headers(r, o->cacheable);
    MHD_add_response_header(r, "Content-Type",
                            o->ctype ? o->ctype : "text/html; charset=utf-8");
    if (o->location[0])
        MHD_add_response_header(r, "Location", o->location);
    if (o->cookie[0])
        MHD_add_response_header(r, "Set-Cookie", o->cookie);
    if (o->status == 405)
        MHD_add_response_header(r, "Allow", "GET, HEAD, POST");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)o->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void text(struct out *o, int status, const char *body)
{
    o->status = status;
    o->ctype = "text/plain; charset=utf-8";
    pv_buf_reset(&o->body);
    pv_buf_puts(&o->body, body);
}

static void redirect(struct out *o, const char *to)
{
    o->status = 303;
    snprintf(o->location, sizeof o->location, "%s", to);
    pv_buf_reset(&o->body);
}

/* Runs the error page of web.h into o. */
static void error_page(struct out *o, const pv_web_req *wr, int status,
                       const char *why)
{
    pv_web_resp resp = {0};
    pv_web_error_page(wr, status, why, &resp);
    pv_buf_free(&o->body);
    o->body = resp.body;
    o->status = resp.status ? resp.status : status;
    o->ctype = resp.content_type;
}

/* Copies a page's response into o. */
static void from_page(struct out *o, int rc, pv_web_resp *resp)
{
    pv_buf_free(&o->body);
    o->body = resp->body;
    o->status = resp->status ? resp->status : (rc ? 500 : 200);
    o->ctype = resp->content_type;
    if (o->status == 303)
        snprintf(o->location, sizeof o->location, "%s",
                 local_path(resp->location) ? resp->location : "/");
}

/* ---- Requests -------------------------------------------------------- */

static void client_addr(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

/* The login form has no session yet, hence no CSRF token: a POST to
 * /login must come from a page of this host (Origin, else Referer), and
 * the SameSite=Strict cookie does the rest. Neither header (curl, old
 * clients) is allowed: a browser sends Origin with every form POST. */
static int same_origin(struct MHD_Connection *c)
{
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    const char *origin =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *ref =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Referer");
    const char *v = origin ? origin : ref;
    /* Under our own Referrer-Policy: no-referrer a browser sends the
     * form's Origin as "null" (Fetch, "serializing a request origin"):
     * then its Sec-Fetch-Site says whether the form was one of ours. */
    if (origin && !strcmp(origin, "null")) {
        const char *site =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
        return site && !strcmp(site, "same-origin");
    }
    if (!v)
        return 1;
    if (!host)
        return 0;
    const char *p = strstr(v, "://");
    if (!p)
        return 0;
    p += 3;
    size_t hl = strlen(host);
    return !strncmp(p, host, hl) && (p[hl] == '\0' || p[hl] == '/');
}

static int secure_request(struct MHD_Connection *c)
{
    const char *p =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Proto");
    return p && !strcmp(p, "https");
}

/* POST /login. */
static void do_login(pv_http *h, struct MHD_Connection *c, pv_web_req *wr,
                     const struct params *form, const struct params *query,
                     struct out *o)
{
    if (!same_origin(c)) {
        error_page(o, wr, 403,
                   "The login form was sent from another site (Origin or "
                   "Referer is not this host).");
        return;
    }
    const char *name = param(form, "name");
    const char *pw = param(form, "password");
    const char *next = param(form, "next"); /* the form's hidden field */
    if (!next || !*next) /* else the query of the form's action */
        next = param(query, "next");
    if (!local_path(next))
        next = "/";
    char client[INET6_ADDRSTRLEN + 1];
    client_addr(c, client, sizeof client);
    char token[65] = "", err[256] = "";
    pv_web_user user;
    memset(&user, 0, sizeof user);
    int rc = PV_EDB;
    /* The argon2id verification (0.1-0.2 s of a core) runs on this
     * thread's read-only connection, outside the write mutex: a login
     * never holds up an action or another login's write. Only the
     * session (or failure) row is written under it. */
    pv_auth_verdict v;
    pv_auth_login_verify(wr->db, name ? name : "", pw ? pw : "", client, &v);
    pthread_mutex_lock(&h->w_mu);
    sqlite3 *rw = rw_db(h);
    if (rw)
        rc = pv_auth_login_record(rw, &v, h->session_hours, token, &user, err,
                                  sizeof err);
    else
        snprintf(err, sizeof err, "cannot open the database for writing");
    pthread_mutex_unlock(&h->w_mu);
    sodium_memzero(&v, sizeof v);
    if (rc == 0) {
        snprintf(o->cookie, sizeof o->cookie,
                 PV_AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; "
                                "Max-Age=%ld%s",
                 token, (long)h->session_hours * 3600,
                 secure_request(c) ? "; Secure" : "");
        redirect(o, next);
        pv_info("console: %s logged in from %s", user.name, client);
        return;
    }
    /* The form again, leading where this one led. */
    pv_web_param np = {"next", next};
    pv_web_req again = *wr;
    again.params = &np;
    again.nparams = 1;
    pv_web_resp resp = {0};
    int prc = pv_web_login_page(
        &again,
        rc == PV_ELIMIT  ? "Too many failed logins: try again in "
                           "a few minutes."
        : rc == PV_EAUTH ? "Wrong user name or password."
                         : "The login could not be checked (a "
                           "database error); see the log.",
        &resp);
    from_page(o, prc, &resp);
    if (!prc)
        o->status = rc == PV_ELIMIT ? 429 : rc == PV_EAUTH ? 401 : 500;
    if (rc != PV_EAUTH && rc != PV_ELIMIT)
        pv_error("console: login: %s", err);
    else /* for the operator (and fail2ban): who, from where */
        pv_info("console: login %s for '%.63s' from %s",
                rc == PV_ELIMIT ? "rate-limited" : "refused", name ? name : "",
                client);
}

/* POST /alerts/ID/VERB. */
static void do_action(pv_http *h, pv_web_req *wr, int64_t id, const char *verb,
                      const struct params *form, struct out *o)
{
    pv_alert_action act;
    memset(&act, 0, sizeof act);
    act.alert_id = id;
    act.action = verb;
    act.actor = act.entered_by = wr->user->name;
    act.note = param(form, "note");
    if (act.note && !*act.note)
        act.note = NULL;
    act.outcome = param(form, "outcome");
    if (act.outcome && !*act.outcome)
        act.outcome = NULL;
    act.assignee = param(form, "assignee");
    act.request_id = param(form, "request_id");
    if (act.request_id && !*act.request_id)
        act.request_id = NULL;
    act.require_outcome = !strcmp(verb, "close");
    char err[512] = "";
    pv_buf errors = PV_BUF_INIT;
    int rc;
    pthread_mutex_lock(&h->w_mu);
    pv_ingest *p = NULL;
    rc = pv_ingest_open_as(h->cfg, h->db, 1, PV_INGEST_CLIENT, &p, &errors);
    if (!rc)
        rc = pv_alerts_do(pv_ingest_alerts(p), &act, err, sizeof err);
    else
        snprintf(err, sizeof err, "%.*s",
                 pv_buf_ok(&errors) && errors.len
                     ? (int)strcspn(errors.ptr, "\n")
                     : 24,
                 pv_buf_ok(&errors) && errors.len ? errors.ptr
                                                  : "cannot open the database");
    pv_ingest_close(p);
    pthread_mutex_unlock(&h->w_mu);
    pv_buf_free(&errors);
    if (rc == 0) {
        char to[64];
        snprintf(to, sizeof to, "/alerts/%lld", (long long)id);
        redirect(o, to);
        pv_info("console: alert %lld %s by %s", (long long)id, verb,
                wr->user->name);
        return;
    }
    if (rc == PV_ENOTFOUND)
        error_page(o, wr, 404, err[0] ? err : "No such alert.");
    else if (rc == PV_ESTATE)
        error_page(o, wr, 409, err);
    else if (rc == PV_EINVAL)
        error_page(o, wr, 400, err);
    else {
        pv_error("console: alert %lld %s: %s", (long long)id, verb, err);
        error_page(o, wr, 500,
                   "The action could not be recorded; see the "
                   "log.");
    }
}

/* GET /static/NAME */
static void do_static(const char *name, struct out *o)
{
    size_t len = 0;
    const char *ctype = NULL;
    const char *data = NULL;
    int ok = *name && !strstr(name, "..");
    for (const char *q = name; ok && *q; q++)
        ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
             (*q >= '0' && *q <= '9') || *q == '.' || *q == '-' || *q == '_';
    if (ok)
        data = pv_tmpl_asset(name, &len, &ctype);
    if (!data) {
        text(o, 404, "not found\n");
        return;
    }
    o->status = 200;
    o->ctype = ctype;
    o->cacheable = 1;
    pv_buf_append(&o->body, data, len);
}

/* The routes that need no login and show no patient data. */
static int public_route(pv_http *h, const char *path, struct out *o)
{
    if (!strcmp(path, "/livez") || !strcmp(path, "/healthz")) {
        text(o, 200, "ok\n");
        return 1;
    }
    if (!strcmp(path, "/readyz")) {
        pv_buf why = PV_BUF_INIT;
        if (pv_metrics_ready(&why)) {
            text(o, 200, "ready\n");
        } else {
            text(o, 503, "not ready:\n");
            pv_buf_append(&o->body, why.ptr ? why.ptr : "", why.len);
        }
        pv_buf_free(&why);
        return 1;
    }
    if (!strcmp(path, "/metrics")) {
        o->status = 200;
        o->ctype = "text/plain; version=0.0.4; charset=utf-8";
        pv_metrics_render(ro_db(h), &o->body);
        return 1;
    }
    if (!strncmp(path, "/static/", 8)) {
        do_static(path + 8, o);
        return 1;
    }
    return 0;
}

static void route(pv_http *h, struct MHD_Connection *c, struct req *rq,
                  const char *method, struct out *o)
{
    int post = !strcmp(method, "POST");
    /* The raw target: path and query, split and decoded here (the path
     * MHD hands over is decoded already and loses "%2F" in a patient
     * id). */
    char *uri = rq->uri ? rq->uri : "/";
    char *qm = strchr(uri, '?');
    const char *rawq = qm ? qm + 1 : "";
    size_t plen = qm ? (size_t)(qm - uri) : strlen(uri);
    char *path = malloc(plen + 1);
    struct params qp = {.n = 0}, form = {.n = 0};
    pv_web_user user;
    pv_web_req wr;
    memset(&wr, 0, sizeof wr);
    wr.method = post ? "POST" : "GET";
    wr.query = rawq;
    if (!path) {
        text(o, 500, "out of memory\n");
        goto done;
    }
    memcpy(path, uri, plen);
    path[plen] = '\0';
    wr.path = path;
    if (parse_params(rawq, strlen(rawq), &qp)) {
        text(o, 400, "malformed query string\n");
        goto done;
    }
    if (public_route(h, path, o))
        goto done;
    wr.db = ro_db(h);
    if (!wr.db) {
        text(o, 500, "the database cannot be opened; see the log\n");
        goto done;
    }
    if (post) {
        const char *ct =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (rq->too_large) {
            error_page(o, &wr, 413, "The form is too large.");
            goto done;
        }
        if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded",
                               strlen("application/x-www-form-urlencoded"))) {
            error_page(o, &wr, 400,
                       "A form must be sent as "
                       "application/x-www-form-urlencoded.");
            goto done;
        }
        if (parse_params(rq->body.len ? rq->body.ptr : "", rq->body.len,
                         &form)) {
            error_page(o, &wr, 400, "The form is malformed.");
            goto done;
        }
        wr.params = form.v;
        wr.nparams = form.n;
    } else {
        wr.params = qp.v;
        wr.nparams = qp.n;
    }
    /* The session, if any. */
    const char *token =
        MHD_lookup_connection_value(c, MHD_COOKIE_KIND, PV_AUTH_COOKIE);
    memset(&user, 0, sizeof user);
    long idle_s = -1;
    if (token && pv_auth_session_seen(wr.db, token, &user, &idle_s) == 0) {
        wr.user = &user;
        if (idle_s >= PV_AUTH_TOUCH_S)
            touch_session(h, token);
    }
    if (!strcmp(path, "/login")) {
        if (post) {
            do_login(h, c, &wr, &form, &qp, o);
        } else {
            pv_web_resp resp = {0};
            int rc = pv_web_login_page(&wr, NULL, &resp);
            from_page(o, rc, &resp);
        }
        goto done;
    }
    if (!wr.user) {
        if (post) {
            error_page(o, &wr, 403, "You are not logged in.");
        } else {
            pv_buf to = PV_BUF_INIT;
            pv_buf_puts(&to, "/login?next=");
            pct_encode(&to, path);
            if (*rawq) {
                pv_buf_puts(&to, "%3F");
                pct_encode(&to, rawq);
            }
            redirect(o, pv_buf_ok(&to) && to.len < sizeof o->location
                            ? pv_buf_cstr(&to)
                            : "/login");
            pv_buf_free(&to);
        }
        goto done;
    }
    if (post) {
        /* Every POST but the login carries the session's CSRF token. */
        if (!pv_auth_csrf_ok(wr.user, param(&form, "csrf"))) {
            error_page(o, &wr, 403,
                       "The form's security token is missing or stale: "
                       "reload the page and try again.");
            goto done;
        }
        if (!strcmp(path, "/logout")) {
            pthread_mutex_lock(&h->w_mu);
            sqlite3 *rw = rw_db(h);
            if (rw)
                pv_auth_logout(rw, token);
            pthread_mutex_unlock(&h->w_mu);
            snprintf(o->cookie, sizeof o->cookie,
                     PV_AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; "
                                    "Max-Age=0");
            redirect(o, "/login");
            goto done;
        }
        int64_t id;
        const char *rest = path + 8, *slash;
        if (!strncmp(path, "/alerts/", 8) && (slash = strchr(rest, '/')) &&
            !parse_id(rest, (size_t)(slash - rest), &id) &&
            (!strcmp(slash, "/ack") || !strcmp(slash, "/assign") ||
             !strcmp(slash, "/comment") || !strcmp(slash, "/close"))) {
            if (strcmp(wr.user->role, "reviewer") &&
                strcmp(wr.user->role, "admin")) {
                error_page(o, &wr, 403,
                           "Your role (viewer) can read alerts but not act "
                           "on them.");
                goto done;
            }
            do_action(h, &wr, id, slash + 1, &form, o);
            goto done;
        }
        error_page(o, &wr, 404, "There is nothing to post to here.");
        goto done;
    }
    pv_web_resp resp = {0};
    int rc;
    int64_t id;
    if (!strcmp(path, "/")) {
        rc = pv_web_worklist(&wr, &resp);
    } else if (!strcmp(path, "/rules")) {
        rc = pv_web_rules(&wr, &resp);
    } else if (!strncmp(path, "/alerts/", 8) &&
               !parse_id(path + 8, strlen(path + 8), &id)) {
        rc = pv_web_alert(&wr, id, &resp);
    } else if (!strncmp(path, "/patients/", 10) && path[10] &&
               !pct_decode(path + 10, 0)) {
        rc = pv_web_patient(&wr, path + 10, &resp);
    } else {
        error_page(o, &wr, 404, "There is no such page.");
        goto done;
    }
    from_page(o, rc, &resp);
done:
    free(path);
    free(qp.text);
    free(form.text);
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req *rq = calloc(1, sizeof *rq);
    if (rq)
        rq->uri = strdup(uri ? uri : "/");
    return rq;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)version;
    pv_http *h = cls;
    struct req *rq = *con_cls;
    if (!rq || !rq->uri)
        return MHD_NO; /* out of memory: drop the connection */
    thread_first_request(h);
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int post = !strcmp(method, "POST");
    if (!rq->started) {
        rq->started = 1;
        if (post) {
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                         "Content-Length");
            if (cl && strtoull(cl, NULL, 10) > PV_HTTP_MAX_BODY)
                rq->too_large = 1;
            else
                return MHD_YES; /* the body follows */
        }
    }
    if (post && *upload_data_size && !rq->too_large) {
        if (rq->body.len + *upload_data_size <= PV_HTTP_MAX_BODY)
            pv_buf_append(&rq->body, upload_data, *upload_data_size);
        else
            rq->too_large = 1;
        *upload_data_size = 0;
        if (!rq->too_large)
            return MHD_YES;
    }
    struct out o;
    memset(&o, 0, sizeof o);
    if (rq->too_large) {
        /* Answered at once; libmicrohttpd reads no more of the body and
         * closes the connection. */
        *upload_data_size = 0;
        text(&o, 413, "the request body is over 64 KiB\n");
    } else if (!get && !post)
        text(&o, 405, "method not allowed\n");
    else
        route(h, c, rq, method, &o);
    enum MHD_Result ret = send_out(c, &o);
    pv_buf_free(&o.body);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *rq = *con_cls;
    if (!rq)
        return;
    free(rq->uri);
    pv_buf_free(&rq->body);
    free(rq);
    *con_cls = NULL;
}

/* ---- Start and stop -------------------------------------------------- */

/* "HOST:PORT" (IPv4, [IPv6] or localhost) into a socket address. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, int *v6)
{
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || colon == spec || colon - spec >= 100)
        return -1;
    char host[128];
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || errno || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            return -1;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *v6 = 1;
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return -1;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *v6 = 0;
    return 0;
}

static void free_http(pv_http *h)
{
    for (size_t i = 0; i < h->nro; i++)
        sqlite3_close(h->ro[i]);
    free(h->ro);
    sqlite3_close(h->rw);
    pthread_key_delete(h->key);
    pthread_mutex_destroy(&h->ro_mu);
    pthread_mutex_destroy(&h->w_mu);
    if (h->chart_ok)
        pv_chart_free();
    pv_web_cache_clear();
    free(h->db);
    free(h);
}

int pv_http_start(const pv_config *cfg, const char *listen, pv_http **out,
                  char *err, size_t errcap)
{
    return pv_http_start_ex(cfg, listen, PV_HTTP_YIELD, out, err, errcap);
}

/* The pool's size: http.threads, else min(4, online cores). */
static unsigned pool_size(const pv_config *cfg)
{
    if (cfg->http.threads > 0)
        return (unsigned)cfg->http.threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 && n < 4 ? (unsigned)n : 4;
}

int pv_http_start_ex(const pv_config *cfg, const char *listen, unsigned flags,
                     pv_http **out, char *err, size_t errcap)
{
    *out = NULL;
    if (!listen)
        listen = cfg->http.listen ? cfg->http.listen : "127.0.0.1:8080";
    struct sockaddr_storage ss;
    int v6 = 0;
    if (parse_listen(listen, &ss, &v6)) {
        snprintf(err, errcap,
                 "console: listen address '%s' is not HOST:PORT (e.g. "
                 "127.0.0.1:8080)",
                 listen);
        return PV_EINVAL;
    }
    struct stat st;
    if (!cfg->database || stat(cfg->database, &st) != 0) {
        snprintf(err, errcap, "console: database %s: %s",
                 cfg->database ? cfg->database : "(none)",
                 cfg->database ? strerror(errno) : "not configured");
        return PV_EIO;
    }
    if (pv_auth_init()) {
        snprintf(err, errcap, "console: libsodium cannot start");
        return PV_EINVAL;
    }
    pv_http *h = calloc(1, sizeof *h);
    if (!h || !(h->db = strdup(cfg->database))) {
        free(h);
        return PV_ENOMEM;
    }
    h->cfg = cfg;
    h->yield = (flags & PV_HTTP_YIELD) != 0;
    h->session_hours = cfg->http.session_hours > 0
                           ? (int)cfg->http.session_hours
                           : PV_AUTH_SESSION_HOURS_DEFAULT;
    pthread_mutex_init(&h->ro_mu, NULL);
    pthread_mutex_init(&h->w_mu, NULL);
    if (pthread_key_create(&h->key, NULL)) {
        pthread_mutex_destroy(&h->ro_mu);
        pthread_mutex_destroy(&h->w_mu);
        free(h->db);
        free(h);
        return PV_ENOMEM;
    }
    char cerr[512] = "";
    if (pv_chart_init_cfg(cfg, cerr, sizeof cerr) == 0)
        h->chart_ok = 1;
    else
        pv_warn("console: charts without thresholds and grade bands: %s", cerr);
    unsigned threads = pool_size(cfg);
    unsigned mflags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
                      MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    /* The pool threads take no signal: the engine's loop (or 'serve''s
     * sigwait) handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    h->d = MHD_start_daemon(
        mflags, 0, NULL, NULL, handler, h,
        /* First, so that every later message goes to pvwatch's log. */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)PV_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PV_HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, h, MHD_OPTION_NOTIFY_COMPLETED,
        completed, h, MHD_OPTION_END);
    int start_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->d) {
        snprintf(err, errcap, "console: cannot listen on %s: %s", listen,
                 start_errno ? strerror(start_errno) : "libmicrohttpd failed");
        free_http(h);
        return PV_EIO;
    }
    atomic_store(&h->serving, 1);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : 0;
    const char *colon = strrchr(listen, ':');
    snprintf(h->addr, sizeof h->addr, "%.*s:%u", (int)(colon - listen), listen,
             port);
    *out = h;
    return 0;
}

void pv_http_address(const pv_http *h, char *out, size_t cap)
{
    snprintf(out, cap, "%s", h ? h->addr : "");
}

void pv_http_stop(pv_http *h)
{
    if (!h)
        return;
    /* Joins the pool threads: no request runs after this. */
    MHD_stop_daemon(h->d);
    free_http(h);
}
