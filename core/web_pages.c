/* web_pages: the review console's pages (web.h; issue 16).
 *
 * Each page reads what it shows through the caller's read-only connection
 * and fills templates (tmpl.h): the HTML is in web/templates, never here.
 * Every value goes into a {{name}} placeholder, HTML-escaped; only
 * fragments rendered here from other templates, and the charts' SVG
 * (chart.h), go into {{raw:name}}. Links built from ids are
 * percent-encoded (pv_web_url_esc) and then escaped like any value.
 *
 * Called from several console threads at once: no static mutable state
 * here (the costly pages' content is kept by web_cache.h, under its own
 * mutex); the statements are prepared per call on the thread's own
 * connection. */
#include "web.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "chart.h"
#include "rule_stats.h"
#include "tmpl.h"
#include "web_cache.h"

enum { ERRCAP = 512, PAGE_ROWS = 50, MAX_PARAM = 256, LIST_ROWS = 500 };

/* The severity rank (pv_severity_rank: low 1 .. critical 4). Migration
 * 0011 indexes this very expression; SQLite uses the index only for a
 * query that writes the same one, so change both together. */
#define RANK_SQL                                                               \
    "(CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 "                \
    "WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)"

#define VARS_(...) ((const pv_tmpl_var[]){__VA_ARGS__})
#define VARS(...)                                                              \
    VARS_(__VA_ARGS__), sizeof(VARS_(__VA_ARGS__)) / sizeof(pv_tmpl_var)
#define T(n, v) PV_TMPL_TEXT(n, v)
#define R(n, v) PV_TMPL_RAW(n, v)

/* ---- escaping, parameters ---- */

/* The length of the valid UTF-8 sequence at p (2..4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void pv_web_esc(pv_buf *b, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s, *run = p;
    while (*p) {
        const char *rep = NULL;
        size_t skip = 1;
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) {
                rep = "";
            } else if (*p >= 0x80) {
                size_t n = utf8_len(p);
                if (n == 0) {
                    rep = "\xef\xbf\xbd"; /* U+FFFD for a stray byte */
                } else if (p[0] == 0xc2 && p[1] < 0xa0) {
                    rep = ""; /* a C1 control */
                    skip = 2;
                } else {
                    p += n;
                    continue;
                }
            }
        }
        if (rep) {
            pv_buf_append(b, (const char *)run, (size_t)(p - run));
            pv_buf_puts(b, rep);
            p += skip;
            run = p;
        } else {
            p++;
        }
    }
    pv_buf_append(b, (const char *)run, (size_t)(p - run));
}

void pv_web_url_esc(pv_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
            *p == '~') {
            pv_buf_append(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            pv_buf_append(b, e, 3);
        }
    }
}

const char *pv_web_param_get(const pv_web_req *r, const char *name)
{
    for (size_t i = 0; r && r->params && i < r->nparams; i++)
        if (r->params[i].name && strcmp(r->params[i].name, name) == 0)
            return r->params[i].value;
    return NULL;
}

/* ---- small helpers ---- */

static int render(pv_buf *out, const char *name, const pv_tmpl_var *vars,
                  size_t n, char *err)
{
    return pv_tmpl_render(out, name, vars, n, err, ERRCAP);
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, ERRCAP, "database: %s", sqlite3_errmsg(db));
    *st = NULL;
    return -1;
}

static int step_failed(sqlite3 *db, int rc, char *err)
{
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    snprintf(err, ERRCAP, "database: %s", sqlite3_errmsg(db));
    return -1;
}

static void bind_named(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0 && v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static int oom(const pv_buf *b, char *err)
{
    if (pv_buf_ok(b))
        return 0;
    snprintf(err, ERRCAP, "out of memory");
    return -1;
}

/* A fresh one-time id for a form (alerts.h pv_alert_action.request_id):
 * 16 random bytes as 32 hex digits. */
static int request_id(char out[33], char *err)
{
    unsigned char b[16];
    if (sodium_init() < 0) {
        snprintf(err, ERRCAP, "libsodium cannot start");
        return -1;
    }
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, 33, b, sizeof b);
    return 0;
}

static const char *sev_name(int rank)
{
    static const char *const names[] = {"unknown", "low", "medium", "high",
                                        "critical"};
    return rank >= 0 && rank <= 4 ? names[rank] : names[0];
}

/* CSS classes from a fixed set, whatever the database holds. */
static const char *sev_class(const char *sev)
{
    static const char *const classes[] = {
        "sev-unknown", "sev-low", "sev-medium", "sev-high", "sev-critical"};
    return classes[pv_severity_rank(sev)];
}

static const char *status_class(const char *status)
{
    if (status && strcmp(status, "open") == 0)
        return "st-open";
    if (status && strcmp(status, "acknowledged") == 0)
        return "st-acknowledged";
    if (status && strcmp(status, "closed") == 0)
        return "st-closed";
    return "st-unknown";
}

static const char *grade_text(sqlite3_stmt *st, int i, char buf[16])
{
    buf[0] = '\0';
    if (sqlite3_column_type(st, i) != SQLITE_NULL)
        snprintf(buf, 16, "grade %d", sqlite3_column_int(st, i));
    return buf;
}

static void href_alert(pv_buf *b, int64_t id)
{
    pv_buf_printf(b, "/alerts/%" PRId64, id);
}

static void href_patient(pv_buf *b, const char *pid)
{
    pv_buf_puts(b, "/patients/");
    pv_web_url_esc(b, pid);
}

/* Appends "?name=value" or "&name=value" (value percent-encoded); nothing
 * for a NULL value. */
static void query_add(pv_buf *q, int *first, const char *name,
                      const char *value)
{
    if (!value)
        return;
    pv_buf_puts(q, *first ? "?" : "&");
    *first = 0;
    pv_buf_puts(q, name);
    pv_buf_puts(q, "=");
    pv_web_url_esc(q, value);
}

/* The cache key of a page's content (web_cache.h): the database file,
 * the page, its canonical query; and the database's version in ver. 1 when
 * the page may be cached (not for a database without a file name). */
static int cache_key(const pv_web_req *r, const char *page, const char *query,
                     pv_buf *key, char ver[64])
{
    const char *file = r->db ? sqlite3_db_filename(r->db, "main") : NULL;
    if (!file || !*file || pv_web_cache_version(r->db, ver))
        return 0;
    pv_buf_printf(key, "%s\n%s\n%s", file, page, query ? query : "");
    return pv_buf_ok(key);
}

/* ---- layout and the error page ---- */

static int render_header(pv_buf *out, const pv_web_req *r, char *err)
{
    if (!r || !r->user)
        return render(out, "header_anon.html", NULL, 0, err);
    char rid[33];
    if (request_id(rid, err))
        return -1;
    return render(out, "header_user.html",
                  VARS(T("user", r->user->name), T("role", r->user->role),
                       T("csrf", r->user->csrf), T("request_id", rid)),
                  err);
}

/* Puts content into the layout as resp's body. */
static int finish(const pv_web_req *r, pv_web_resp *resp, int status,
                  const char *title, pv_buf *content, char *err)
{
    pv_buf header = PV_BUF_INIT, flash = PV_BUF_INIT;
    int rc = oom(content, err) || render_header(&header, r, err);
    if (!rc && r && r->flash && *r->flash)
        rc = render(&flash, "flash.html", VARS(T("message", r->flash)), err);
    if (!rc) {
        pv_buf_reset(&resp->body);
        rc = render(&resp->body, "layout.html",
                    VARS(T("title", title), R("header", pv_buf_cstr(&header)),
                         R("flash", pv_buf_cstr(&flash)),
                         R("content", pv_buf_cstr(content))),
                    err);
    }
    pv_buf_free(&header);
    pv_buf_free(&flash);
    if (!rc) {
        resp->status = status;
        resp->content_type = NULL;
    }
    return rc;
}

static const char *status_heading(int status)
{
    switch (status) {
    case 400:
        return "Bad request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not found";
    case 405:
        return "Method not allowed";
    case 429:
        return "Too many requests";
    case 500:
        return "Internal error";
    default:
        return "Error";
    }
}

void pv_web_error_page(const pv_web_req *r, int status, const char *why,
                       pv_web_resp *resp)
{
    char err[ERRCAP] = "", code[16];
    const char *heading = status_heading(status);
    snprintf(code, sizeof code, "%d", status);
    pv_buf content = PV_BUF_INIT;
    int rc = render(
        &content, "error.html",
        VARS(T("status", code), T("heading", heading), T("why", nz(why))), err);
    if (!rc) {
        char title[64];
        snprintf(title, sizeof title, "%d %s", status, heading);
        rc = finish(r, resp, status, title, &content, err);
    }
    pv_buf_free(&content);
    if (rc) {
        /* The templates themselves failed: say so in plain text, which
         * needs no escaping. */
        pv_buf_reset(&resp->body);
        pv_buf_printf(&resp->body, "%d %s\n%s\n(%s)\n", status, heading,
                      nz(why), err);
        resp->status = status;
        resp->content_type = "text/plain; charset=utf-8";
    }
}

/* A page that could not be made: 500 with what failed. */
static int internal(const pv_web_req *r, pv_web_resp *resp, const char *what,
                    const char *err)
{
    char why[ERRCAP + 128];
    snprintf(why, sizeof why, "The %s page could not be made: %s", what, err);
    pv_web_error_page(r, 500, why, resp);
    return -1;
}

/* ---- the worklist ---- */

enum { GROUP_NONE, GROUP_PATIENT, GROUP_RULE };

/* The filter, as the URL holds it: each field is the parameter's value, or
 * NULL when absent or empty. */
struct filter {
    const char *status, *severity, *signal, *rule, *patient, *assignee, *from,
        *to, *sort, *group, *after;
    int by_rank, group_by;
    /* Most severe first, and more than one severity shown: ORDER BY the
     * rank. With one severity the rank is the same for every row, and
     * newest first is the same order (and reads alerts_live_newest
     * instead of skipping the other severities in alerts_live_severe). */
    int rank_order;
    /* The cursor (after=), decoded: the last row of the previous page. */
    int after_rank;
    char after_at[64];
    char after_id[24];
};

static const char *param(const pv_web_req *r, const char *name)
{
    const char *v = pv_web_param_get(r, name);
    return v && *v ? v : NULL;
}

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return 1;
    return 0;
}

static int is_date(const char *s)
{
    static const char shape[] = "dddd-dd-dd";
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != '-')
            return 0;
    return s[sizeof shape - 1] == '\0';
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 19)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Parses after= of an ungrouped page: "CREATED_ID" (newest first) or
 * "RANK_CREATED_ID" (most severe first). */
static int parse_cursor(struct filter *f)
{
    const char *s = f->after, *last = strrchr(s, '_');
    if (!last || !all_digits(last + 1, strlen(last + 1)))
        return -1;
    snprintf(f->after_id, sizeof f->after_id, "%s", last + 1);
    const char *at = s;
    if (f->by_rank) {
        if (s[0] < '0' || s[0] > '4' || s[1] != '_')
            return -1;
        f->after_rank = s[0] - '0';
        at = s + 2;
    }
    size_t n = (size_t)(last - at);
    if (n == 0 || n >= sizeof f->after_at || memchr(at, '_', n))
        return -1;
    memcpy(f->after_at, at, n);
    f->after_at[n] = '\0';
    return 0;
}

/* Reads and checks the filter; on a bad value writes a sentence to why. */
static int filter_parse(const pv_web_req *r, struct filter *f, char *why,
                        size_t whycap)
{
    static const char *const statuses[] = {"open", "acknowledged", "closed",
                                           "all", NULL};
    static const char *const severities[] = {"low", "medium", "high",
                                             "critical", NULL};
    static const char *const sorts[] = {"newest", "severity", NULL};
    static const char *const groups[] = {"patient", "rule", NULL};
    memset(f, 0, sizeof *f);
    struct {
        const char *name;
        const char **slot;
    } fields[] = {
        {"status", &f->status},   {"severity", &f->severity},
        {"signal", &f->signal},   {"rule", &f->rule},
        {"patient", &f->patient}, {"assignee", &f->assignee},
        {"from", &f->from},       {"to", &f->to},
        {"sort", &f->sort},       {"group", &f->group},
        {"after", &f->after},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        *fields[i].slot = param(r, fields[i].name);
        if (*fields[i].slot && strlen(*fields[i].slot) > MAX_PARAM) {
            snprintf(why, whycap, "The filter %s is longer than %d bytes.",
                     fields[i].name, MAX_PARAM);
            return -1;
        }
    }
    const char *bad = NULL, *expect = NULL;
    if (f->status && !one_of(f->status, statuses))
        bad = "status", expect = "open, acknowledged, closed or all";
    else if (f->severity && !one_of(f->severity, severities))
        bad = "severity", expect = "low, medium, high or critical";
    else if (f->sort && !one_of(f->sort, sorts))
        bad = "sort", expect = "newest or severity";
    else if (f->group && !one_of(f->group, groups))
        bad = "group", expect = "patient or rule";
    else if (f->from && !is_date(f->from))
        bad = "from", expect = "a date YYYY-MM-DD";
    else if (f->to && !is_date(f->to))
        bad = "to", expect = "a date YYYY-MM-DD";
    if (bad) {
        snprintf(why, whycap, "The filter %s must be %s.", bad, expect);
        return -1;
    }
    f->by_rank = f->sort && strcmp(f->sort, "severity") == 0;
    f->rank_order = f->by_rank && !f->severity;
    f->group_by = !f->group                          ? GROUP_NONE
                  : strcmp(f->group, "patient") == 0 ? GROUP_PATIENT
                                                     : GROUP_RULE;
    if (f->after && f->group_by == GROUP_NONE && parse_cursor(f)) {
        snprintf(why, whycap,
                 "The page cursor after= is not one this worklist wrote "
                 "(for this sort order).");
        return -1;
    }
    return 0;
}

/* The filter as a query string ("" or "?a=b&..."), without after=;
 * without group= unless keep_group; with over_name=over_value in place of
 * that field's value. */
static void filter_query(pv_buf *q, const struct filter *f, int keep_group,
                         const char *over_name, const char *over_value)
{
    int first = 1;
    const struct {
        const char *name, *value;
    } fields[] = {
        {"status", f->status},   {"severity", f->severity},
        {"signal", f->signal},   {"rule", f->rule},
        {"patient", f->patient}, {"assignee", f->assignee},
        {"from", f->from},       {"to", f->to},
        {"sort", f->sort},       {"group", keep_group ? f->group : NULL},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int over = over_name && strcmp(fields[i].name, over_name) == 0;
        query_add(q, &first, fields[i].name,
                  over ? over_value : fields[i].value);
    }
}

/* The WHERE clause of the filter (values are bound by name). The default
 * view says "status != 'closed'" literally, so that SQLite may use 0011's
 * partial indexes; one status is an equality, the first column of
 * alerts_status_newest and alerts_status_severe. */
static void filter_where(pv_buf *sql, const struct filter *f)
{
    if (!f->status)
        pv_buf_puts(sql, " WHERE status != 'closed'");
    else if (strcmp(f->status, "all") == 0)
        pv_buf_puts(sql, " WHERE 1");
    else
        pv_buf_puts(sql, " WHERE status = :status");
    if (f->severity)
        pv_buf_puts(sql, " AND severity = :severity");
    if (f->signal)
        pv_buf_puts(sql, " AND signal = :signal");
    if (f->rule)
        pv_buf_puts(sql, " AND rule = :rule");
    if (f->patient)
        pv_buf_puts(sql, " AND patient_id = :patient");
    if (f->assignee)
        pv_buf_puts(sql, " AND assignee = :assignee");
    if (f->from)
        pv_buf_puts(sql, " AND created_at >= :from");
    if (f->to)
        pv_buf_puts(sql, " AND created_at < date(:to, '+1 day')");
}

static void filter_bind(sqlite3_stmt *st, const struct filter *f)
{
    bind_named(st, ":status", f->status);
    bind_named(st, ":severity", f->severity);
    bind_named(st, ":signal", f->signal);
    bind_named(st, ":rule", f->rule);
    bind_named(st, ":patient", f->patient);
    bind_named(st, ":assignee", f->assignee);
    bind_named(st, ":from", f->from);
    bind_named(st, ":to", f->to);
}

/* The SQL of one worklist page (also pv_web_worklist_sql, for the
 * EXPLAIN QUERY PLAN test). */
static void worklist_sql(pv_buf *sql, const struct filter *f)
{
    if (f->group_by != GROUP_NONE) {
        const char *k = f->group_by == GROUP_PATIENT ? "patient_id" : "rule";
        pv_buf_printf(sql,
                      "SELECT %s, count(*), sum(status = 'open'), "
                      "sum(status = 'acknowledged'), max(" RANK_SQL "), "
                      "max(created_at) FROM alerts",
                      k);
        filter_where(sql, f);
        if (f->after)
            pv_buf_printf(sql, " AND %s > :after_key", k);
        pv_buf_printf(sql, " GROUP BY %s ORDER BY %s LIMIT %d", k, k,
                      PAGE_ROWS + 1);
        return;
    }
    pv_buf_puts(sql, "SELECT id, created_at, severity, grade, status, "
                     "patient_id, rule, signal, title, assignee, "
                     "occurrences, " RANK_SQL " FROM alerts");
    filter_where(sql, f);
    /* SQLite does not seek an expression index by a row value: the rank
     * range before it makes the search start at the cursor's rank. */
    if (f->after && f->rank_order)
        pv_buf_puts(sql, " AND " RANK_SQL " <= :after_rank AND (" RANK_SQL
                         ", created_at, id) < "
                         "(:after_rank, :after_at, :after_id)");
    else if (f->after)
        pv_buf_puts(sql, " AND (created_at, id) < (:after_at, :after_id)");
    pv_buf_printf(sql, " ORDER BY %screated_at DESC, id DESC LIMIT %d",
                  f->rank_order ? RANK_SQL " DESC, " : "", PAGE_ROWS + 1);
}

static void worklist_bind(sqlite3_stmt *st, const struct filter *f)
{
    filter_bind(st, f);
    if (!f->after)
        return;
    if (f->group_by != GROUP_NONE) {
        bind_named(st, ":after_key", f->after);
        return;
    }
    int i = sqlite3_bind_parameter_index(st, ":after_rank");
    if (i > 0)
        sqlite3_bind_int(st, i, f->after_rank);
    bind_named(st, ":after_at", f->after_at);
    i = sqlite3_bind_parameter_index(st, ":after_id");
    if (i > 0)
        sqlite3_bind_int64(st, i, strtoll(f->after_id, NULL, 10));
}

int pv_web_worklist_sql(const pv_web_req *r, pv_buf *sql, char *why,
                        size_t whycap)
{
    struct filter f;
    if (filter_parse(r, &f, why, whycap))
        return -1;
    worklist_sql(sql, &f);
    return pv_buf_ok(sql) ? 0 : -1;
}

static int option_list(pv_buf *out, const char *const (*opts)[2],
                       const char *current, char *err)
{
    for (size_t i = 0; opts[i][0]; i++) {
        int sel = current ? strcmp(current, opts[i][0]) == 0 : !*opts[i][0];
        if (render(out, sel ? "option_selected.html" : "option.html",
                   VARS(T("value", opts[i][0]), T("label", opts[i][1])), err))
            return -1;
    }
    return 0;
}

/* Renders the rows of an ungrouped page into rows; *n rows shown, and the
 * cursor of the last one in cursor when there is a next page. */
static int worklist_rows(sqlite3_stmt *st, sqlite3 *db, const struct filter *f,
                         pv_buf *rows, int *n, pv_buf *cursor, char *err)
{
    int rc, more = 0;
    pv_buf href = PV_BUF_INIT, phref = PV_BUF_INIT, rhref = PV_BUF_INIT;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == PAGE_ROWS) {
            /* Row 51 exists: there is a next page after row 50. */
            more = 1;
            rc = SQLITE_DONE;
            break;
        }
        int64_t id = sqlite3_column_int64(st, 0);
        char ids[24], grade[16], occ[24];
        snprintf(ids, sizeof ids, "%" PRId64, id);
        snprintf(occ, sizeof occ, "%lld", sqlite3_column_int64(st, 10));
        pv_buf_reset(&href);
        pv_buf_reset(&phref);
        pv_buf_reset(&rhref);
        href_alert(&href, id);
        href_patient(&phref, nz(col(st, 5)));
        int first = 1;
        query_add(&rhref, &first, "rule", nz(col(st, 6)));
        if (oom(&href, err) || oom(&phref, err) || oom(&rhref, err) ||
            render(rows, "worklist_row.html",
                   VARS(T("id", ids), T("href", pv_buf_cstr(&href)),
                        T("created_at", col(st, 1)), T("severity", col(st, 2)),
                        T("sev_class", sev_class(col(st, 2))),
                        T("grade", grade_text(st, 3, grade)),
                        T("status", col(st, 4)),
                        T("status_class", status_class(col(st, 4))),
                        T("patient", col(st, 5)),
                        T("patient_href", pv_buf_cstr(&phref)),
                        T("rule", col(st, 6)),
                        T("rule_href", pv_buf_cstr(&rhref)),
                        T("signal", col(st, 7)), T("title", col(st, 8)),
                        T("assignee", col(st, 9)), T("occurrences", occ)),
                   err)) {
            rc = -1;
            break;
        }
        (*n)++;
        pv_buf_reset(cursor);
        if (f->by_rank)
            pv_buf_printf(cursor, "%d_", sqlite3_column_int(st, 11));
        pv_buf_printf(cursor, "%s_%s", nz(col(st, 1)), ids);
    }
    pv_buf_free(&href);
    pv_buf_free(&phref);
    pv_buf_free(&rhref);
    if (rc == -1)
        return -1;
    if (step_failed(db, rc, err))
        return -1;
    if (!more)
        pv_buf_reset(cursor);
    return 0;
}

static int group_rows(sqlite3_stmt *st, sqlite3 *db, const struct filter *f,
                      pv_buf *rows, int *n, pv_buf *cursor, char *err)
{
    int rc, more = 0;
    pv_buf href = PV_BUF_INIT;
    const char *field = f->group_by == GROUP_PATIENT ? "patient" : "rule";
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == PAGE_ROWS) {
            more = 1;
            rc = SQLITE_DONE;
            break;
        }
        const char *key = nz(col(st, 0));
        char count[24], open[24], ack[24];
        snprintf(count, sizeof count, "%lld", sqlite3_column_int64(st, 1));
        snprintf(open, sizeof open, "%lld", sqlite3_column_int64(st, 2));
        snprintf(ack, sizeof ack, "%lld", sqlite3_column_int64(st, 3));
        const char *sev = sev_name(sqlite3_column_int(st, 4));
        pv_buf_reset(&href);
        pv_buf_puts(&href, "/");
        filter_query(&href, f, 0, field, key);
        if (oom(&href, err) ||
            render(rows, "worklist_group_row.html",
                   VARS(T("key", key), T("href", pv_buf_cstr(&href)),
                        T("count", count), T("open", open),
                        T("acknowledged", ack), T("severity", sev),
                        T("sev_class", sev_class(sev)),
                        T("newest", col(st, 5))),
                   err)) {
            rc = -1;
            break;
        }
        (*n)++;
        pv_buf_reset(cursor);
        pv_buf_puts(cursor, key);
    }
    pv_buf_free(&href);
    if (rc == -1 || step_failed(db, rc, err))
        return -1;
    if (!more)
        pv_buf_reset(cursor);
    return 0;
}

static const char *const status_opts[][2] = {{"", "Open and acknowledged"},
                                             {"open", "Open"},
                                             {"acknowledged", "Acknowledged"},
                                             {"closed", "Closed"},
                                             {"all", "All"},
                                             {NULL, NULL}};
static const char *const severity_opts[][2] = {
    {"", "Any"},          {"critical", "Critical"}, {"high", "High"},
    {"medium", "Medium"}, {"low", "Low"},           {NULL, NULL}};
static const char *const sort_opts[][2] = {
    {"", "Newest first"}, {"severity", "Most severe first"}, {NULL, NULL}};
static const char *const group_opts[][2] = {{"", "No grouping"},
                                            {"patient", "By patient"},
                                            {"rule", "By rule"},
                                            {NULL, NULL}};

int pv_web_worklist(const pv_web_req *r, pv_web_resp *resp)
{
    struct filter f;
    char err[ERRCAP] = "", why[ERRCAP];
    if (filter_parse(r, &f, why, sizeof why)) {
        pv_web_error_page(r, 400, why, resp);
        return 0;
    }
    pv_buf sql = PV_BUF_INIT, rows = PV_BUF_INIT, body = PV_BUF_INIT,
           cursor = PV_BUF_INIT,
           opts[4] = {PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT},
           next = PV_BUF_INIT, first = PV_BUF_INIT, link = PV_BUF_INIT,
           content = PV_BUF_INIT;
    sqlite3_stmt *st = NULL;
    int n = 0, rc;
    /* A grouped page reads every alert the filter matches: its content is
     * kept a few seconds (web_cache.h), keyed by the filter and page. */
    pv_buf ckey = PV_BUF_INIT;
    char cver[64];
    int cached = 0;
    if (f.group_by != GROUP_NONE) {
        pv_buf cq = PV_BUF_INIT;
        filter_query(&cq, &f, 1, NULL, NULL);
        pv_buf_puts(&cq, "\nafter=");
        pv_buf_puts(&cq, f.after ? f.after : "");
        cached = pv_buf_ok(&cq) &&
                 cache_key(r, "worklist", pv_buf_cstr(&cq), &ckey, cver);
        pv_buf_free(&cq);
        if (cached && pv_web_cache_get(pv_buf_cstr(&ckey), cver, &content)) {
            rc = finish(r, resp, 200, "Worklist", &content, err);
            pv_buf_free(&ckey);
            pv_buf_free(&content);
            return rc ? internal(r, resp, "worklist", err) : 0;
        }
    }
    worklist_sql(&sql, &f);
    rc = oom(&sql, err) || prep(r->db, pv_buf_cstr(&sql), &st, err);
    if (!rc) {
        worklist_bind(st, &f);
        rc = f.group_by == GROUP_NONE
                 ? worklist_rows(st, r->db, &f, &rows, &n, &cursor, err)
                 : group_rows(st, r->db, &f, &rows, &n, &cursor, err);
    }
    sqlite3_finalize(st);
    if (!rc && n == 0)
        rc = render(&body, "empty.html",
                    VARS(T("text", "No alerts match this filter.")), err);
    else if (!rc && f.group_by == GROUP_NONE)
        rc = render(&body, "worklist_table.html",
                    VARS(R("rows", pv_buf_cstr(&rows))), err);
    else if (!rc)
        rc = render(
            &body, "worklist_groups.html",
            VARS(T("heading", f.group_by == GROUP_PATIENT ? "Patient" : "Rule"),
                 R("rows", pv_buf_cstr(&rows))),
            err);
    if (!rc && cursor.len) {
        int firstp = 0;
        pv_buf_puts(&link, "/");
        filter_query(&link, &f, 1, NULL, NULL);
        firstp = link.len == 1;
        query_add(&link, &firstp, "after", pv_buf_cstr(&cursor));
        char count[16];
        snprintf(count, sizeof count, "%d", PAGE_ROWS);
        rc =
            oom(&link, err) ||
            render(&next, "link_next.html",
                   VARS(T("href", pv_buf_cstr(&link)), T("count", count)), err);
    }
    if (!rc && f.after) {
        pv_buf_reset(&link);
        pv_buf_puts(&link, "/");
        filter_query(&link, &f, 1, NULL, NULL);
        rc =
            oom(&link, err) || render(&first, "link_first.html",
                                      VARS(T("href", pv_buf_cstr(&link))), err);
    }
    if (!rc)
        rc = option_list(&opts[0], status_opts, f.status, err) ||
             option_list(&opts[1], severity_opts, f.severity, err) ||
             option_list(&opts[2], sort_opts, f.sort, err) ||
             option_list(&opts[3], group_opts, f.group, err);
    char summary[256];
    const char *what = !f.status ? "open and acknowledged" : f.status;
    if (f.group_by != GROUP_NONE)
        snprintf(summary, sizeof summary,
                 "%d %s%s on this page (%s alerts, grouped; counts cover "
                 "every alert the filter matches).",
                 n, f.group_by == GROUP_PATIENT ? "patient" : "rule",
                 n == 1 ? "" : "s", what);
    else
        snprintf(summary, sizeof summary, "%d alert%s on this page (%s, %s).",
                 n, n == 1 ? "" : "s", what,
                 f.by_rank ? "most severe first" : "newest first");
    if (!rc)
        rc = render(&content, "worklist.html",
                    VARS(R("status_options", pv_buf_cstr(&opts[0])),
                         R("severity_options", pv_buf_cstr(&opts[1])),
                         R("sort_options", pv_buf_cstr(&opts[2])),
                         R("group_options", pv_buf_cstr(&opts[3])),
                         T("signal", f.signal), T("rule", f.rule),
                         T("patient", f.patient), T("assignee", f.assignee),
                         T("from", f.from), T("to", f.to),
                         T("summary", summary), R("body", pv_buf_cstr(&body)),
                         R("first", pv_buf_cstr(&first)),
                         R("next", pv_buf_cstr(&next))),
                    err);
    if (!rc && cached && pv_buf_ok(&content))
        pv_web_cache_put(pv_buf_cstr(&ckey), cver, content.ptr, content.len);
    if (!rc)
        rc = finish(r, resp, 200, "Worklist", &content, err);
    pv_buf_free(&ckey);
    pv_buf_free(&sql);
    pv_buf_free(&rows);
    pv_buf_free(&body);
    pv_buf_free(&cursor);
    for (int i = 0; i < 4; i++)
        pv_buf_free(&opts[i]);
    pv_buf_free(&next);
    pv_buf_free(&first);
    pv_buf_free(&link);
    pv_buf_free(&content);
    return rc ? internal(r, resp, "worklist", err) : 0;
}

/* ---- the alert page ---- */

static int evidence_html(sqlite3 *db, const char *json, pv_buf *out, char *err)
{
    if (!json || !*json)
        return render(out, "empty.html",
                      VARS(T("text", "No evidence was recorded.")), err);
    sqlite3_stmt *st;
    if (prep(db,
             "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'array' "
             "ELSE 0 END, (SELECT count(*) FROM json_each(CASE WHEN "
             "json_valid(?1) THEN ?1 ELSE '[]' END))",
             &st, err))
        return -1;
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int valid = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    long count = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 1) : 0;
    sqlite3_finalize(st);
    if (step_failed(db, rc, err))
        return -1;
    if (!valid)
        return render(out, "evidence_raw.html", VARS(T("text", json)), err);
    if (count == 0)
        return render(out, "empty.html",
                      VARS(T("text", "No evidence was recorded.")), err);
    if (prep(db,
             "SELECT json_extract(value, '$.kind'), "
             "json_extract(value, '$.code'), json_extract(value, '$.value'), "
             "json_extract(value, '$.unit'), json_extract(value, '$.at'), "
             "json_extract(value, '$.id') FROM json_each(?1) "
             "WHERE json_type(value) = 'object' ORDER BY key",
             &st, err))
        return -1;
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    pv_buf rows = PV_BUF_INIT;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (render(&rows, "evidence_row.html",
                   VARS(T("kind", col(st, 0)), T("code", col(st, 1)),
                        T("value", col(st, 2)), T("unit", col(st, 3)),
                        T("at", col(st, 4)), T("record", col(st, 5))),
                   err)) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(st);
    int fail = rc == -1 || step_failed(db, rc, err) || oom(&rows, err) ||
               render(out, "evidence_table.html",
                      VARS(R("rows", pv_buf_cstr(&rows))), err);
    pv_buf_free(&rows);
    return fail ? -1 : 0;
}

static int trail_html(sqlite3 *db, int64_t id, pv_buf *out, char *err)
{
    sqlite3_stmt *st;
    if (prep(db,
             "SELECT at, action, actor, entered_by, outcome, note "
             "FROM alert_actions WHERE alert_id = ?1 ORDER BY id",
             &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *outcome = col(st, 4);
        const char *label = outcome ? pv_alert_outcome_label(outcome) : NULL;
        n++;
        if (render(out, "trail_row.html",
                   VARS(T("at", col(st, 0)), T("action", col(st, 1)),
                        T("actor", col(st, 2)), T("entered_by", col(st, 3)),
                        T("outcome", label ? label : outcome),
                        T("note", col(st, 5))),
                   err)) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc == -1 || step_failed(db, rc, err))
        return -1;
    if (n == 0)
        return render(out, "empty_row.html",
                      VARS(T("cols", "6"), T("text", "No actions yet.")), err);
    return 0;
}

/* The action forms a user may use on an alert in this status: none for a
 * viewer; once closed, only the comment (pv_alerts_do takes a comment in
 * any status: on a closed alert it is for hand-over and review). */
static int forms_html(const pv_web_req *r, int64_t id, const char *status,
                      const char *assignee, pv_buf *out, char *err)
{
    const pv_web_user *u = r->user;
    if (!u || strcmp(u->role, "viewer") == 0 || !status)
        return 0;
    int closed = strcmp(status, "closed") == 0;
    static const char *const actions[] = {"ack", "assign", "comment", "close"};
    pv_buf forms = PV_BUF_INIT, url = PV_BUF_INIT, outcomes = PV_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof actions / sizeof actions[0]; i++) {
        const char *a = actions[i];
        if (strcmp(a, "ack") == 0 && strcmp(status, "open") != 0)
            continue;
        if (closed && strcmp(a, "comment") != 0)
            continue;
        char rid[33], tname[32];
        rc = request_id(rid, err);
        if (rc)
            break;
        pv_buf_reset(&url);
        href_alert(&url, id);
        pv_buf_printf(&url, "/%s", a);
        snprintf(tname, sizeof tname, "form_%s.html", a);
        if ((rc = oom(&url, err)))
            break;
        if (strcmp(a, "assign") == 0) {
            rc = render(&forms, tname,
                        VARS(T("action_url", pv_buf_cstr(&url)),
                             T("csrf", u->csrf), T("request_id", rid),
                             T("assignee", assignee)),
                        err);
        } else if (strcmp(a, "close") == 0) {
            rc = render(&outcomes, "option.html",
                        VARS(T("value", ""), T("label", "Choose an outcome")),
                        err);
            for (size_t k = 0; !rc && pv_alert_outcomes[k]; k++) {
                const char *label =
                    pv_alert_outcome_label(pv_alert_outcomes[k]);
                rc = render(
                    &outcomes, "option.html",
                    VARS(T("value", pv_alert_outcomes[k]),
                         T("label", label ? label : pv_alert_outcomes[k])),
                    err);
            }
            if (!rc)
                rc = render(&forms, tname,
                            VARS(T("action_url", pv_buf_cstr(&url)),
                                 T("csrf", u->csrf), T("request_id", rid),
                                 R("outcome_options", pv_buf_cstr(&outcomes))),
                            err);
        } else {
            rc = render(&forms, tname,
                        VARS(T("action_url", pv_buf_cstr(&url)),
                             T("csrf", u->csrf), T("request_id", rid)),
                        err);
        }
    }
    if (!rc)
        rc = oom(&forms, err) ||
             render(out, "forms.html", VARS(R("forms", pv_buf_cstr(&forms))),
                    err);
    pv_buf_free(&forms);
    pv_buf_free(&url);
    pv_buf_free(&outcomes);
    return rc;
}

static int chart_alert_html(sqlite3 *db, int64_t id, pv_buf *out, char *err)
{
    pv_buf svg = PV_BUF_INIT;
    int crc = pv_chart_alert(db, id, &svg), rc;
    if (crc == 0) {
        /* The SVG is chart.c's own markup, escaped there. */
        pv_buf_append(out, pv_buf_cstr(&svg), svg.len);
        rc = oom(&svg, err) || oom(out, err);
    } else {
        rc = render(out, "chart_none.html",
                    VARS(T("text", crc == 1 ? "No numeric lab result among the "
                                              "evidence: nothing to chart."
                                            : "The chart could not be drawn.")),
                    err);
    }
    pv_buf_free(&svg);
    return rc;
}

int pv_web_alert(const pv_web_req *r, int64_t id, pv_web_resp *resp)
{
    char err[ERRCAP] = "";
    sqlite3_stmt *st;
    if (prep(r->db,
             "SELECT id, patient_id, rule, signal, severity, grade, title, "
             "detail, action, dedup_key, status, created_at, updated_at, "
             "occurrences, evidence, rule_sha256, engine_version, assignee, "
             "outcome FROM alerts WHERE id = ?1",
             &st, err))
        return internal(r, resp, "alert", err);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        char why[96];
        snprintf(why, sizeof why, "There is no alert #%" PRId64 ".", id);
        pv_web_error_page(r, 404, why, resp);
        return 0;
    }
    if (step_failed(r->db, rc, err)) {
        sqlite3_finalize(st);
        return internal(r, resp, "alert", err);
    }
    pv_buf evidence = PV_BUF_INIT, trail = PV_BUF_INIT, forms = PV_BUF_INIT,
           chart = PV_BUF_INIT, phref = PV_BUF_INIT, rhref = PV_BUF_INIT,
           content = PV_BUF_INIT;
    char ids[24], grade[16], occ[24], title[96];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(occ, sizeof occ, "%lld", sqlite3_column_int64(st, 13));
    snprintf(title, sizeof title, "Alert #%" PRId64, id);
    href_patient(&phref, nz(col(st, 1)));
    int first = 1;
    pv_buf_puts(&rhref, "/");
    query_add(&rhref, &first, "rule", nz(col(st, 2)));
    query_add(&rhref, &first, "status", "all");
    rc = evidence_html(r->db, col(st, 14), &evidence, err) ||
         trail_html(r->db, id, &trail, err) ||
         forms_html(r, id, col(st, 10), col(st, 17), &forms, err) ||
         chart_alert_html(r->db, id, &chart, err) || oom(&phref, err) ||
         oom(&rhref, err);
    const char *outcome = col(st, 18);
    const char *outcome_label = outcome ? pv_alert_outcome_label(outcome) : "";
    if (!outcome_label)
        outcome_label = outcome; /* not in today's list: as stored */
    if (!rc)
        rc = render(
            &content, "alert.html",
            VARS(T("id", ids), T("status", col(st, 10)),
                 T("status_class", status_class(col(st, 10))),
                 T("severity", col(st, 4)),
                 T("sev_class", sev_class(col(st, 4))),
                 T("grade", grade_text(st, 5, grade)), T("title", col(st, 6)),
                 T("patient", col(st, 1)),
                 T("patient_href", pv_buf_cstr(&phref)),
                 T("signal", col(st, 3)),
                 T("assignee", col(st, 17) ? col(st, 17) : "nobody"),
                 T("outcome", outcome_label), T("created_at", col(st, 11)),
                 T("updated_at", col(st, 12)), T("occurrences", occ),
                 T("detail", col(st, 7)), T("action", col(st, 8)),
                 R("chart", pv_buf_cstr(&chart)),
                 R("evidence", pv_buf_cstr(&evidence)),
                 R("forms", pv_buf_cstr(&forms)),
                 R("trail", pv_buf_cstr(&trail)), T("rule", col(st, 2)),
                 T("rule_href", pv_buf_cstr(&rhref)),
                 T("rule_sha256", col(st, 15)),
                 T("engine_version", col(st, 16)), T("dedup_key", col(st, 9))),
            err);
    sqlite3_finalize(st);
    if (!rc)
        rc = finish(r, resp, 200, title, &content, err);
    pv_buf_free(&evidence);
    pv_buf_free(&trail);
    pv_buf_free(&forms);
    pv_buf_free(&chart);
    pv_buf_free(&phref);
    pv_buf_free(&rhref);
    pv_buf_free(&content);
    return rc ? internal(r, resp, "alert", err) : 0;
}

/* ---- the patient page ---- */

/* Runs sql (?1 = the patient id) and renders each row with row_tmpl,
 * whose variables fill() sets from the row; an empty_row when none. */
typedef int (*row_fn)(sqlite3_stmt *st, pv_buf *out, char *err);

static int table_rows(sqlite3 *db, const char *sql, const char *pid,
                      row_fn fill, const char *cols, const char *none,
                      pv_buf *out, char *err)
{
    sqlite3_stmt *st;
    if (prep(db, sql, &st, err))
        return -1;
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (fill(st, out, err)) {
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc == -1 || step_failed(db, rc, err))
        return -1;
    if (n == 0)
        return render(out, "empty_row.html",
                      VARS(T("cols", cols), T("text", none)), err);
    if (n == LIST_ROWS) {
        char text[64];
        snprintf(text, sizeof text, "Only the first %d are shown.", LIST_ROWS);
        return render(out, "empty_row.html",
                      VARS(T("cols", cols), T("text", text)), err);
    }
    return 0;
}

static int exposure_row(sqlite3_stmt *st, pv_buf *out, char *err)
{
    char dose[96] = "";
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        snprintf(dose, sizeof dose, "%.6g %s", sqlite3_column_double(st, 2),
                 nz(col(st, 3)));
    return render(out, "exposure_row.html",
                  VARS(T("drug", col(st, 0)), T("code", col(st, 1)),
                       T("dose", dose), T("route", col(st, 4)),
                       T("start", col(st, 5)),
                       T("end", col(st, 6) ? col(st, 6) : "ongoing"),
                       T("source", col(st, 7))),
                  err);
}

static int event_row(sqlite3_stmt *st, pv_buf *out, char *err)
{
    const char *serious = sqlite3_column_type(st, 3) == SQLITE_NULL ? ""
                          : sqlite3_column_int(st, 3)               ? "yes"
                                                                    : "no";
    return render(out, "event_row.html",
                  VARS(T("onset", col(st, 0)), T("code", col(st, 1)),
                       T("term", col(st, 2)), T("serious", serious),
                       T("outcome", col(st, 4))),
                  err);
}

static int lab_row(sqlite3_stmt *st, pv_buf *out, char *err)
{
    char value[128];
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        snprintf(value, sizeof value, "%s%.6g", nz(col(st, 4)),
                 sqlite3_column_double(st, 2));
    else
        snprintf(value, sizeof value, "%s", nz(col(st, 3)));
    char count[24];
    snprintf(count, sizeof count, "%lld", sqlite3_column_int64(st, 8));
    return render(out, "lab_row.html",
                  VARS(T("code", col(st, 0)), T("name", col(st, 1)),
                       T("value", value), T("unit", col(st, 5)),
                       T("flag", col(st, 6)), T("at", col(st, 7)),
                       T("count", count)),
                  err);
}

static int patient_alert_row(sqlite3_stmt *st, pv_buf *out, char *err)
{
    pv_buf href = PV_BUF_INIT;
    int64_t id = sqlite3_column_int64(st, 0);
    char ids[24], grade[16];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    href_alert(&href, id);
    int rc = oom(&href, err) ||
             render(out, "patient_alert_row.html",
                    VARS(T("id", ids), T("href", pv_buf_cstr(&href)),
                         T("created_at", col(st, 1)), T("severity", col(st, 2)),
                         T("sev_class", sev_class(col(st, 2))),
                         T("grade", grade_text(st, 3, grade)),
                         T("status", col(st, 4)),
                         T("status_class", status_class(col(st, 4))),
                         T("rule", col(st, 5)), T("title", col(st, 6))),
                    err);
    pv_buf_free(&href);
    return rc;
}

int pv_web_patient(const pv_web_req *r, const char *pid, pv_web_resp *resp)
{
    char err[ERRCAP] = "";
    sqlite3_stmt *st;
    if (!pid || !*pid) {
        pv_web_error_page(r, 404, "No patient id was given.", resp);
        return 0;
    }
    if (prep(r->db,
             "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1) "
             "OR EXISTS (SELECT 1 FROM alerts WHERE patient_id = ?1) "
             "OR EXISTS (SELECT 1 FROM observations WHERE patient_id = ?1) "
             "OR EXISTS (SELECT 1 FROM exposures WHERE patient_id = ?1) "
             "OR EXISTS (SELECT 1 FROM events WHERE patient_id = ?1)",
             &st, err))
        return internal(r, resp, "patient", err);
    sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int known = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (step_failed(r->db, rc, err))
        return internal(r, resp, "patient", err);
    if (!known) {
        pv_web_error_page(r, 404, "There is no patient with this id.", resp);
        return 0;
    }
    pv_buf timeline = PV_BUF_INIT, exposures = PV_BUF_INIT,
           events = PV_BUF_INIT, labs = PV_BUF_INIT, alerts = PV_BUF_INIT,
           ahref = PV_BUF_INIT, content = PV_BUF_INIT;
    if (pv_chart_patient(r->db, pid, &timeline) != 0) {
        pv_buf_reset(&timeline);
        rc = render(&timeline, "chart_none.html",
                    VARS(T("text", "The timeline could not be drawn.")), err);
    } else {
        rc = oom(&timeline, err);
    }
    int first = 1;
    pv_buf_puts(&ahref, "/");
    query_add(&ahref, &first, "patient", pid);
    query_add(&ahref, &first, "status", "all");
    if (!rc)
        rc = table_rows(r->db,
                        "SELECT drug, drug_code, dose, dose_unit, route, "
                        "start_at, end_at, start_source FROM exposures "
                        "WHERE patient_id = ?1 ORDER BY start_at, id "
                        "LIMIT 500",
                        pid, exposure_row, "7", "No exposures.", &exposures,
                        err) ||
             table_rows(r->db,
                        "SELECT onset_at, code, term, serious, outcome "
                        "FROM events WHERE patient_id = ?1 "
                        "ORDER BY onset_at, id LIMIT 500",
                        pid, event_row, "5", "No events.", &events, err) ||
             /* SQLite takes the bare columns from the row of max(). */
             table_rows(r->db,
                        "SELECT code, name, value_num, value_text, "
                        "comparator, unit, flag, max(observed_at), count(*) "
                        "FROM observations WHERE patient_id = ?1 "
                        "AND status NOT IN ('D', 'W') GROUP BY code "
                        "ORDER BY code LIMIT 500",
                        pid, lab_row, "7", "No lab results.", &labs, err) ||
             table_rows(r->db,
                        "SELECT id, created_at, severity, grade, status, "
                        "rule, title FROM alerts WHERE patient_id = ?1 "
                        "ORDER BY created_at DESC, id DESC LIMIT 500",
                        pid, patient_alert_row, "6", "No alerts.", &alerts,
                        err) ||
             oom(&ahref, err);
    if (!rc)
        rc = render(&content, "patient.html",
                    VARS(T("patient", pid),
                         T("alerts_href", pv_buf_cstr(&ahref)),
                         R("timeline", pv_buf_cstr(&timeline)),
                         R("exposures", pv_buf_cstr(&exposures)),
                         R("events", pv_buf_cstr(&events)),
                         R("labs", pv_buf_cstr(&labs)),
                         R("alerts", pv_buf_cstr(&alerts))),
                    err);
    if (!rc)
        rc = finish(r, resp, 200, "Patient", &content, err);
    pv_buf_free(&timeline);
    pv_buf_free(&exposures);
    pv_buf_free(&events);
    pv_buf_free(&labs);
    pv_buf_free(&alerts);
    pv_buf_free(&ahref);
    pv_buf_free(&content);
    return rc ? internal(r, resp, "patient", err) : 0;
}

/* ---- the rules page ---- */

static void duration_text(double s, char *buf, size_t cap)
{
    if (s < 0)
        snprintf(buf, cap, "\xe2\x80\x94"); /* none acknowledged */
    else if (s < 90)
        snprintf(buf, cap, "%.0f s", s);
    else if (s < 90 * 60)
        snprintf(buf, cap, "%.0f min", s / 60);
    else if (s < 48 * 3600)
        snprintf(buf, cap, "%.1f h", s / 3600);
    else
        snprintf(buf, cap, "%.1f d", s / 86400);
}

int pv_web_rules(const pv_web_req *r, pv_web_resp *resp)
{
    char err[ERRCAP] = "";
    const char *since = param(r, "since");
    if (since && !is_date(since)) {
        pv_web_error_page(r, 400, "The filter since must be a date YYYY-MM-DD.",
                          resp);
        return 0;
    }
    /* The statistics read every alert: the content is kept a few seconds
     * (web_cache.h). */
    pv_buf ckey = PV_BUF_INIT, content = PV_BUF_INIT;
    char cver[64];
    int cached = cache_key(r, "rules", since, &ckey, cver);
    if (cached && pv_web_cache_get(pv_buf_cstr(&ckey), cver, &content)) {
        int frc = finish(r, resp, 200, "Rule quality", &content, err);
        pv_buf_free(&ckey);
        pv_buf_free(&content);
        return frc ? internal(r, resp, "rules", err) : 0;
    }
    pv_rule_stat *stats = NULL;
    size_t n = 0;
    if (pv_rule_stats(r->db, since, &stats, &n) != 0) {
        pv_buf_free(&ckey);
        snprintf(err, sizeof err, "rule statistics: %s", sqlite3_errmsg(r->db));
        return internal(r, resp, "rules", err);
    }
    size_t nout = 0;
    while (nout < 16 && pv_alert_outcomes[nout])
        nout++;
    pv_buf heads = PV_BUF_INIT, rows = PV_BUF_INIT, cells = PV_BUF_INIT,
           href = PV_BUF_INIT;
    int rc = 0;
    for (size_t k = 0; !rc && k < nout; k++) {
        const char *label = pv_alert_outcome_label(pv_alert_outcomes[k]);
        rc = render(&heads, "th_num.html",
                    VARS(T("text", label ? label : pv_alert_outcomes[k])), err);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        const pv_rule_stat *s = &stats[i];
        char opened[24], acked[24], closed[24], none[24], median[48], share[32];
        snprintf(opened, sizeof opened, "%ld", s->opened);
        snprintf(acked, sizeof acked, "%ld", s->acknowledged);
        snprintf(closed, sizeof closed, "%ld", s->closed);
        snprintf(none, sizeof none, "%ld", s->closed_no_outcome);
        duration_text(s->median_ack_s, median, sizeof median);
        if (s->intervention_share < 0)
            snprintf(share, sizeof share, "\xe2\x80\x94"); /* none closed */
        else
            snprintf(share, sizeof share, "%.1f %%",
                     100.0 * s->intervention_share);
        pv_buf_reset(&cells);
        for (size_t k = 0; !rc && k < nout; k++) {
            char v[24];
            snprintf(v, sizeof v, "%ld", s->by_outcome[k]);
            rc = render(&cells, "td_num.html", VARS(T("text", v)), err);
        }
        pv_buf_reset(&href);
        int first = 1;
        pv_buf_puts(&href, "/");
        query_add(&href, &first, "rule", s->rule);
        query_add(&href, &first, "status", "all");
        if (!rc)
            rc = oom(&href, err) || oom(&cells, err) ||
                 render(&rows, "rules_row.html",
                        VARS(T("rule", s->rule), T("href", pv_buf_cstr(&href)),
                             T("opened", opened), T("acknowledged", acked),
                             T("closed", closed),
                             R("outcome_cells", pv_buf_cstr(&cells)),
                             T("no_outcome", none), T("median_ack", median),
                             T("share", share)),
                        err);
    }
    if (!rc && n == 0) {
        char cols[8];
        snprintf(cols, sizeof cols, "%zu", nout + 7);
        rc = render(&rows, "empty_row.html",
                    VARS(T("cols", cols),
                         T("text", "No rule opened an alert in this period.")),
                    err);
    }
    if (!rc)
        rc = render(&content, "rules.html",
                    VARS(T("since", since),
                         R("outcome_heads", pv_buf_cstr(&heads)),
                         R("rows", pv_buf_cstr(&rows))),
                    err);
    if (!rc && cached && pv_buf_ok(&content))
        pv_web_cache_put(pv_buf_cstr(&ckey), cver, content.ptr, content.len);
    if (!rc)
        rc = finish(r, resp, 200, "Rule quality", &content, err);
    pv_buf_free(&ckey);
    free(stats);
    pv_buf_free(&heads);
    pv_buf_free(&rows);
    pv_buf_free(&cells);
    pv_buf_free(&href);
    pv_buf_free(&content);
    return rc ? internal(r, resp, "rules", err) : 0;
}

/* ---- the login page ---- */

int pv_web_local_path(const char *s)
{
    if (!s || s[0] != '/' || s[1] == '/' || s[1] == '\\' || strlen(s) > 900)
        return 0;
    for (const char *q = s; *q; q++)
        if ((unsigned char)*q < 0x21 || *q == 0x7f || *q == '\\')
            return 0;
    return 1;
}

int pv_web_login_page(const pv_web_req *r, const char *error, pv_web_resp *resp)
{
    char err[ERRCAP] = "";
    pv_buf msg = PV_BUF_INIT, content = PV_BUF_INIT;
    int rc = 0;
    if (error && *error)
        rc = render(&msg, "login_error.html", VARS(T("message", error)), err);
    /* Where the login leads: the page asked for (GET /login?next=, or the
     * form's own field when a failed login shows the form again). */
    const char *next = r ? param(r, "next") : NULL;
    if (!pv_web_local_path(next))
        next = "";
    if (!rc)
        rc = render(&content, "login.html",
                    VARS(R("error", pv_buf_cstr(&msg)), T("next", next)), err);
    /* The login page never shows who is logged in, even if someone is. */
    pv_web_req anon = {0};
    if (r)
        anon = *r;
    anon.user = NULL;
    if (!rc)
        rc = finish(&anon, resp, 200, "Sign in", &content, err);
    pv_buf_free(&msg);
    pv_buf_free(&content);
    return rc ? internal(r, resp, "login", err) : 0;
}
