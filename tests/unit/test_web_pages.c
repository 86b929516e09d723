/* test_web_pages: the review console's pages (issue 16; web.h) and the
 * template engine under them (tmpl.h). A real SQLite database made by the
 * store's migrations, seeded with alerts, facts and actions by SQL; the
 * page functions are called directly, as http.c calls them, and their
 * HTML is read back: what the worklist's filters, sort orders, keyset
 * paging and grouping show, that hostile text stays text, that the forms
 * carry the CSRF token and a fresh request id, and only for who may act.
 * Also the plans of the worklist's queries (0011's indexes). */
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "test.h"
#include "tmpl.h"
#include "web.h"
#include "web_cache.h"

#define XSS "<script>alert(1)</script>"

static char tmpdir[] = "/tmp/pv_test_web_pages.XXXXXX";

static pv_store *open_db(const char *name)
{
    char path[512], err[512] = "";
    pv_store *s = NULL;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    if (pv_store_open(path, &s, err, sizeof err) || !s) {
        fprintf(stderr, "pv_store_open(%s): %s\n", path, err);
        exit(2);
    }
    return s;
}

static void exec(pv_store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(pv_store_db(s), sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        exit(2);
    }
}

static long long q_int(pv_store *s, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(pv_store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(pv_store_db(s)));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* One alert; status, assignee, evidence may be NULL (defaults). */
static void add_alert(pv_store *s, const char *patient, const char *rule,
                      const char *signal, const char *severity,
                      const char *title, const char *status,
                      const char *created, const char *assignee,
                      const char *evidence)
{
    sqlite3_stmt *st;
    sqlite3 *db = pv_store_db(s);
    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO alerts (patient_id, rule, signal, severity, grade, "
            "title, detail, action, dedup_key, status, created_at, "
            "updated_at, occurrences, evidence, rule_sha256, engine_version, "
            "assignee) VALUES (?1, ?2, ?3, ?4, 3, ?5, 'detail ' || ?5, "
            "'action ' || ?5, 'k' || (SELECT count(*) FROM alerts), "
            "coalesce(?6, 'open'), ?7, ?7, 1, ?8, 'abc123', '0.1.0', ?9)",
            -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
        exit(2);
    }
    const char *v[] = {patient, rule,    signal,   severity, title,
                       status,  created, evidence, assignee};
    for (int i = 0; i < 9; i++)
        if (v[i])
            sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
        exit(2);
    }
    sqlite3_finalize(st);
}

/* A request from a query string like "status=all&after=x" (decoded into
 * storage of its own). */
struct req {
    pv_web_req r;
    pv_web_param p[32];
    char store[4096];
};

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+')
            *o++ = ' ';
        else if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else
            *o++ = *p;
    }
    *o = '\0';
}

static void req_init(struct req *q, pv_store *s, const pv_web_user *u,
                     const char *query)
{
    memset(q, 0, sizeof *q);
    q->r.method = "GET";
    q->r.path = "/";
    q->r.query = query;
    q->r.user = u;
    q->r.db = pv_store_db(s);
    snprintf(q->store, sizeof q->store, "%s", query);
    size_t n = 0;
    for (char *tok = q->store; tok && *tok && n < 32;) {
        char *amp = strchr(tok, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(tok, '=');
        if (eq) {
            *eq = '\0';
            decode(eq + 1);
        }
        decode(tok);
        q->p[n].name = tok;
        q->p[n].value = eq ? eq + 1 : "";
        n++;
        tok = amp ? amp + 1 : NULL;
    }
    q->r.params = q->p;
    q->r.nparams = n;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The ids of the worklist rows (data-id="N" of class alert-row). */
static int row_ids(const char *html, long long *ids, int cap)
{
    int n = 0;
    const char *key = "class=\"alert-row\" data-id=\"";
    for (const char *p = html; (p = strstr(p, key)) && n < cap;) {
        p += strlen(key);
        ids[n++] = strtoll(p, NULL, 10);
    }
    return n;
}

/* The query of the "next" link, &amp; undone, into out; 0 when none. */
static int next_query(const char *html, char *out, size_t cap)
{
    const char *p = strstr(html, "rel=\"next\" href=\"/?");
    if (!p)
        return 0;
    p += strlen("rel=\"next\" href=\"/?");
    size_t o = 0;
    while (*p && *p != '"' && o + 1 < cap) {
        if (strncmp(p, "&amp;", 5) == 0) {
            out[o++] = '&';
            p += 5;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return 1;
}

static const pv_web_user reviewer = {
    "rita", "reviewer",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
static const pv_web_user viewer = {
    "vic", "viewer",
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"};

/* ---- the template engine ---- */

static void test_tmpl(void)
{
    char err[256];
    pv_buf b = PV_BUF_INIT;
    const char *src = "<p title=\"{{t}}\">{{t}}</p>{{raw:frag}}";
    pv_tmpl_var v[] = {PV_TMPL_TEXT("t", XSS "\"'&"),
                       PV_TMPL_RAW("frag", "<b>ok</b>")};
    CHECK_INT(
        pv_tmpl_render_src(&b, "t", src, strlen(src), v, 2, err, sizeof err),
        0);
    CHECK_STR(pv_buf_cstr(&b),
              "<p title=\"&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"
              "&amp;\">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"
              "</p><b>ok</b>");

    /* An unknown placeholder fails and names itself and the line. */
    pv_buf_reset(&b);
    const char *unk = "a\n{{nope}}";
    CHECK_INT(pv_tmpl_render_src(&b, "u.html", unk, strlen(unk), v, 2, err,
                                 sizeof err),
              -1);
    CHECK(strstr(err, "u.html:2") && strstr(err, "{{nope}}"));
    /* A variable no placeholder uses fails too. */
    pv_buf_reset(&b);
    CHECK_INT(pv_tmpl_render_src(&b, "u", "{{t}}", 5, v, 2, err, sizeof err),
              -1);
    CHECK(strstr(err, "frag") != NULL);
    /* Text given where the template says raw, and the other way round. */
    pv_buf_reset(&b);
    CHECK_INT(pv_tmpl_render_src(&b, "u", "{{raw:t}}{{raw:frag}}", 21, v, 2,
                                 err, sizeof err),
              -1);
    pv_buf_reset(&b);
    CHECK_INT(
        pv_tmpl_render_src(&b, "u", "{{t}}{{frag}}", 13, v, 2, err, sizeof err),
        -1);
    /* Malformed placeholders. */
    const char *bad[] = {"{{ t }}", "{{t", "{{T}}", "{{raw:}}", "{{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pv_buf_reset(&b);
        CHECK_INT(pv_tmpl_render_src(&b, "m", bad[i], strlen(bad[i]), v, 1, err,
                                     sizeof err),
                  -1);
    }
    /* A template that is not there. */
    pv_buf_reset(&b);
    CHECK_INT(pv_tmpl_render(&b, "nosuch.html", NULL, 0, err, sizeof err), -1);
    /* Every embedded template is well formed: each renders with exactly
     * the variables it names, as text (a template naming more than
     * PV_TMPL_MAX_VARS could not be filled). */
    CHECK(pv_tmpl_templates_count >= 10);
    for (size_t i = 0; i < pv_tmpl_templates_count; i++)
        CHECK(pv_tmpl_templates[i].data[pv_tmpl_templates[i].len] == '\0');
    pv_buf_free(&b);

    /* Escaping: controls dropped (tab and newline kept), C1 dropped, a
     * stray byte replaced, valid UTF-8 kept. */
    pv_buf e = PV_BUF_INIT;
    pv_web_esc(&e, "a\x01\tb\nc\x7f\xc2\x85\xff\xc3\xa9");
    CHECK_STR(pv_buf_cstr(&e), "a\tb\nc\xef\xbf\xbd\xc3\xa9");
    pv_buf_reset(&e);
    pv_web_url_esc(&e, "P 1/<x>&é");
    CHECK_STR(pv_buf_cstr(&e), "P%201%2F%3Cx%3E%26%C3%A9");
    pv_buf_free(&e);

    /* Static files. */
    size_t len = 0;
    const char *ct = NULL;
    const char *css = pv_tmpl_asset("app.css", &len, &ct);
    CHECK(css != NULL && len > 100);
    CHECK_STR(ct, "text/css; charset=utf-8");
    CHECK(pv_tmpl_asset("../app.css", NULL, NULL) == NULL);
    CHECK(pv_tmpl_asset("layout.html", NULL, NULL) == NULL);
}

/* ---- the worklist ---- */

static void test_filters(void)
{
    pv_store *s = open_db("filters.db");
    /* 12 alerts: 3 patients x 2 rules x 2 times, statuses and severities
     * mixed; then 3 closed ones. */
    static const char *const sev[] = {"low", "medium", "high", "critical"};
    char created[32], title[32];
    for (int i = 0; i < 12; i++) {
        char pid[8], rule[16];
        snprintf(pid, sizeof pid, "P%d", i % 3);
        snprintf(rule, sizeof rule, "rule_%c", i % 2 ? 'b' : 'a');
        snprintf(created, sizeof created, "2026-03-%02dT10:00:00Z", 1 + i);
        snprintf(title, sizeof title, "alert %d", i);
        add_alert(s, pid, rule, i % 4 ? "neutropenia" : "zoster", sev[i % 4],
                  title, i % 3 == 2 ? "acknowledged" : "open", created,
                  i == 4 || i == 7 ? "alice" : NULL, NULL);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(created, sizeof created, "2026-03-%02dT11:00:00Z", 1 + i);
        add_alert(s, "P0", "rule_a", "neutropenia", "high", "closed one",
                  "closed", created, NULL, NULL);
    }
    struct {
        const char *query, *where;
    } cases[] = {
        {"", "status != 'closed'"},
        {"status=open", "status = 'open'"},
        {"status=acknowledged", "status = 'acknowledged'"},
        {"status=closed", "status = 'closed'"},
        {"status=all", "1"},
        {"severity=high", "status != 'closed' AND severity = 'high'"},
        {"signal=zoster", "status != 'closed' AND signal = 'zoster'"},
        {"rule=rule_b", "status != 'closed' AND rule = 'rule_b'"},
        {"patient=P1", "status != 'closed' AND patient_id = 'P1'"},
        {"assignee=alice", "status != 'closed' AND assignee = 'alice'"},
        {"from=2026-03-05", "status != 'closed' AND created_at >= "
                            "'2026-03-05'"},
        {"to=2026-03-04", "status != 'closed' AND created_at < "
                          "'2026-03-05'"},
        {"from=2026-03-03&to=2026-03-06&status=all&rule=rule_a",
         "created_at >= '2026-03-03' AND created_at < '2026-03-07' AND "
         "rule = 'rule_a'"},
        {"patient=P0&sort=severity", "status != 'closed' AND "
                                     "patient_id = 'P0'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct req q;
        req_init(&q, s, &reviewer, cases[c].query);
        pv_web_resp resp = {0};
        CHECK_INT(pv_web_worklist(&q.r, &resp), 0);
        CHECK_INT(resp.status, 200);
        long long ids[64];
        int n = row_ids(pv_buf_cstr(&resp.body), ids, 64);
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM alerts WHERE %s",
                 cases[c].where);
        long long want = q_int(s, sql);
        if (n != want)
            fprintf(stderr, "filter '%s': %d rows, want %lld\n", cases[c].query,
                    n, want);
        CHECK_INT(n, want);
        /* Each row shown matches the filter, and the order is kept. */
        for (int i = 0; i < n; i++) {
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM alerts WHERE id = %lld AND %s",
                     ids[i], cases[c].where);
            CHECK_INT(q_int(s, sql), 1);
        }
        for (int i = 1; i < n && !strstr(cases[c].query, "severity"); i++) {
            snprintf(sql, sizeof sql,
                     "SELECT (SELECT created_at FROM alerts WHERE id = %lld) "
                     ">= (SELECT created_at FROM alerts WHERE id = %lld)",
                     ids[i - 1], ids[i]);
            CHECK_INT(q_int(s, sql), 1);
        }
        pv_buf_free(&resp.body);
    }
    /* The form shows the filter it applied. */
    struct req q;
    req_init(&q, s, &reviewer, "severity=high&rule=rule_b&sort=severity");
    pv_web_resp resp = {0};
    CHECK_INT(pv_web_worklist(&q.r, &resp), 0);
    const char *html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "<option value=\"high\" selected>") != NULL);
    CHECK(strstr(html, "<option value=\"severity\" selected>") != NULL);
    CHECK(strstr(html, "name=\"rule\" value=\"rule_b\"") != NULL);
    pv_buf_free(&resp.body);

    /* A bad filter is a 400 that says which. */
    const char *bad[] = {"status=gone",    "severity=extreme",
                         "sort=oldest",    "group=ward",
                         "from=yesterday", "to=2026-3-1",
                         "after=garbage",  "sort=severity&after=9_x_1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req_init(&q, s, &reviewer, bad[i]);
        pv_web_resp r2 = {0};
        CHECK_INT(pv_web_worklist(&q.r, &r2), 0);
        CHECK_INT(r2.status, 400);
        pv_buf_free(&r2.body);
    }

    /* Grouping: one row per patient (per rule), with the counts of every
     * alert the filter matches. */
    const char *groups[][2] = {{"group=patient", "patient_id"},
                               {"group=rule", "rule"},
                               {"group=patient&status=all", "patient_id"}};
    for (size_t g = 0; g < 3; g++) {
        req_init(&q, s, &reviewer, groups[g][0]);
        pv_web_resp r3 = {0};
        CHECK_INT(pv_web_worklist(&q.r, &r3), 0);
        html = pv_buf_cstr(&r3.body);
        int all = strstr(groups[g][0], "all") != NULL;
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(DISTINCT %s) FROM alerts WHERE %s", groups[g][1],
                 all ? "1" : "status != 'closed'");
        CHECK_INT(count_of(html, "class=\"group-row\""), q_int(s, sql));
        const char *key = "class=\"group-row\" data-key=\"";
        for (const char *p = html; (p = strstr(p, key));) {
            p += strlen(key);
            char k[64];
            size_t kl = (size_t)(strchr(p, '"') - p);
            snprintf(k, sizeof k, "%.*s", (int)kl, p);
            long long shown =
                strtoll(strstr(p, "data-count=\"") + 12, NULL, 10);
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM alerts WHERE %s = '%s' AND %s",
                     groups[g][1], k, all ? "1" : "status != 'closed'");
            CHECK_INT(shown, q_int(s, sql));
        }
        pv_buf_free(&r3.body);
    }
    /* P0 has 4 alerts not closed (i = 0, 3, 6, 9) and 3 closed. */
    req_init(&q, s, &reviewer, "group=patient");
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_worklist(&q.r, &resp), 0);
    CHECK(strstr(pv_buf_cstr(&resp.body), "data-key=\"P0\" data-count=\"4\"") !=
          NULL);
    /* A group links to the worklist filtered to it. */
    CHECK(strstr(pv_buf_cstr(&resp.body), "href=\"/?patient=P0\"") != NULL);
    pv_buf_free(&resp.body);
    pv_store_close(s);
}

/* 230 alerts, ten to a created_at (ties), severities mixed: following the
 * next links shows each exactly once, in order, for both orders and with
 * a filter kept across pages. */
static void test_paging(void)
{
    pv_store *s = open_db("paging.db");
    static const char *const sev[] = {"low", "medium", "high", "critical"};
    exec(s, "BEGIN");
    for (int i = 0; i < 230; i++) {
        char created[32], pid[16];
        snprintf(created, sizeof created, "2026-04-%02dT08:00:00Z", 1 + i / 10);
        snprintf(pid, sizeof pid, "P%03d", i % 70);
        add_alert(s, pid, i % 3 ? "rule_x" : "rule_y", "neutropenia",
                  sev[(i * 7) % 4], "t", i % 5 == 0 ? "acknowledged" : "open",
                  created, NULL, NULL);
    }
    /* Closed ones never show by default. */
    for (int i = 0; i < 20; i++)
        add_alert(s, "P001", "rule_x", "neutropenia", "critical", "c", "closed",
                  "2026-04-30T00:00:00Z", NULL, NULL);
    exec(s, "COMMIT");
    const char *starts[] = {"", "sort=severity", "severity=high",
                            "sort=severity&rule=rule_x", "group=patient"};
    const char *wheres[] = {"status != 'closed'", "status != 'closed'",
                            "status != 'closed' AND severity = 'high'",
                            "status != 'closed' AND rule = 'rule_x'", NULL};
    for (size_t c = 0; c < sizeof starts / sizeof starts[0]; c++) {
        int grouped = wheres[c] == NULL;
        char sql[256];
        long long want =
            grouped
                ? q_int(s, "SELECT count(DISTINCT patient_id) FROM alerts "
                           "WHERE status != 'closed'")
                : (snprintf(sql, sizeof sql,
                            "SELECT count(*) FROM alerts WHERE %s", wheres[c]),
                   q_int(s, sql));
        unsigned char seen[512] = {0};
        int total = 0, pages = 0, dup = 0, order_ok = 1;
        char query[1024];
        snprintf(query, sizeof query, "%s", starts[c]);
        long long prev_rank = 99, prev_id = 0;
        char prev_at[32] = "9999";
        for (;;) {
            struct req q;
            req_init(&q, s, &reviewer, query);
            pv_web_resp resp = {0};
            CHECK_INT(pv_web_worklist(&q.r, &resp), 0);
            CHECK_INT(resp.status, 200);
            const char *html = pv_buf_cstr(&resp.body);
            pages++;
            if (grouped) {
                int n = count_of(html, "class=\"group-row\"");
                total += n;
                CHECK(n <= 50);
            } else {
                long long ids[64];
                int n = row_ids(html, ids, 64);
                CHECK(n <= 50);
                for (int i = 0; i < n; i++) {
                    if (ids[i] <= 0 || ids[i] >= 512 || seen[ids[i]]++)
                        dup++;
                    char q2[160];
                    snprintf(q2, sizeof q2,
                             "SELECT CASE severity WHEN 'critical' THEN 4 "
                             "WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 "
                             "END FROM alerts WHERE id = %lld",
                             ids[i]);
                    long long rank =
                        strstr(starts[c], "severity") ? q_int(s, q2) : 0;
                    snprintf(q2, sizeof q2,
                             "SELECT substr(created_at, 9, 2) FROM alerts "
                             "WHERE id = %lld",
                             ids[i]);
                    char at[32];
                    snprintf(at, sizeof at, "%02lld", q_int(s, q2));
                    /* Strictly decreasing (rank, created_at, id). */
                    int cmp_at = strcmp(at, prev_at);
                    if (!(rank < prev_rank ||
                          (rank == prev_rank &&
                           (cmp_at < 0 || (cmp_at == 0 && ids[i] < prev_id)))))
                        order_ok = 0;
                    prev_rank = rank;
                    snprintf(prev_at, sizeof prev_at, "%s", at);
                    prev_id = ids[i];
                }
                total += n;
            }
            int more = next_query(html, query, sizeof query);
            /* The next link keeps the filter. */
            char want_q[128];
            snprintf(want_q, sizeof want_q, "%s", starts[c]);
            for (char *t = want_q; more && *t;) {
                char *amp = strchr(t, '&');
                if (amp)
                    *amp = '\0';
                CHECK(strstr(query, t) != NULL);
                t = amp ? amp + 1 : t + strlen(t);
            }
            pv_buf_free(&resp.body);
            if (!more || pages > 20)
                break;
        }
        if (total != want || dup || !order_ok)
            fprintf(stderr,
                    "paging '%s': %d shown, want %lld, %d dup, "
                    "order %d\n",
                    starts[c], total, want, dup, order_ok);
        CHECK_INT(total, want);
        CHECK_INT(dup, 0);
        CHECK(order_ok);
        CHECK_INT(pages, want == 0 ? 1 : (want + 49) / 50);
    }
    /* The plans: the default view and both orders read 0011's indexes in
     * order, never a temporary b-tree for the ORDER BY. */
    const char *plans[][2] = {
        {"", "alerts_live_newest"},
        {"after=2026-04-10T08:00:00Z_95", "alerts_live_newest"},
        {"sort=severity", "alerts_live_severe"},
        {"sort=severity&after=3_2026-04-10T08:00:00Z_95", "alerts_live_severe"},
        {"status=all", "alerts_newest"},
        {"status=all&sort=severity", "alerts_severe"},
        {"status=open", "alerts_status_newest"},
        {"status=acknowledged&sort=severity", "alerts_status_severe"},
        {"status=closed", "alerts_status_newest"},
        {"status=closed&sort=severity&after=3_2026-04-10T08:00:00Z_95",
         "alerts_status_severe"},
        {"sort=severity&severity=high", "alerts_live_newest"},
        {"group=rule", "alerts_live_by_rule"},
        {"group=rule&status=all", "alerts_by_rule_counts"},
        {"group=patient", "alerts_live_key"},
        {"assignee=alice", "alerts_assignee_newest"},
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        struct req q;
        req_init(&q, s, &reviewer, plans[i][0]);
        pv_buf sql = PV_BUF_INIT, plan = PV_BUF_INIT;
        char why[256];
        CHECK_INT(pv_web_worklist_sql(&q.r, &sql, why, sizeof why), 0);
        pv_buf_puts(&plan, "");
        sqlite3_stmt *st;
        pv_buf eqp = PV_BUF_INIT;
        pv_buf_printf(&eqp, "EXPLAIN QUERY PLAN %s", pv_buf_cstr(&sql));
        CHECK_INT(sqlite3_prepare_v2(pv_store_db(s), pv_buf_cstr(&eqp), -1, &st,
                                     NULL),
                  SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            pv_buf_puts(&plan, (const char *)sqlite3_column_text(st, 3));
            pv_buf_puts(&plan, "; ");
        }
        sqlite3_finalize(st);
        const char *p = pv_buf_cstr(&plan);
        if (!strstr(p, plans[i][1]) || strstr(p, "TEMP B-TREE"))
            fprintf(stderr, "plan of '%s': %s\n", plans[i][0], p);
        CHECK(strstr(p, plans[i][1]) != NULL);
        CHECK(strstr(p, "TEMP B-TREE") == NULL);
        /* A later page seeks to its cursor, it does not scan up to it. */
        if (strstr(plans[i][0], "after="))
            CHECK(strstr(p, "SEARCH alerts USING INDEX") != NULL);
        pv_buf_free(&sql);
        pv_buf_free(&plan);
        pv_buf_free(&eqp);
    }
    pv_store_close(s);
}

/* ---- several threads at once ---- */

/* Each console thread has its own read-only connection and calls the
 * pages concurrently: every thread must get the very page one thread
 * alone gets (no shared mutable state; valgrind/helgrind would see a
 * race). No user: the header then has no random request id. */
struct thread_job {
    const char *path, *query, *want;
    int same, runs;
};

static void *page_thread(void *arg)
{
    struct thread_job *j = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(j->path, &db, SQLITE_OPEN_READONLY, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    for (int i = 0; i < j->runs; i++) {
        struct req q;
        memset(&q, 0, sizeof q);
        q.r.method = "GET";
        q.r.path = "/";
        q.r.query = j->query;
        q.r.db = db;
        pv_web_param p = {"sort", "severity"};
        q.r.params = &p;
        q.r.nparams = 1;
        pv_web_resp resp = {0};
        if (pv_web_worklist(&q.r, &resp) == 0 &&
            strcmp(pv_buf_cstr(&resp.body), j->want) == 0)
            j->same++;
        pv_buf_free(&resp.body);
        resp = (pv_web_resp){0};
        if (pv_web_alert(&q.r, 1 + i, &resp) == 0 && resp.status == 200)
            j->same++;
        pv_buf_free(&resp.body);
    }
    sqlite3_close(db);
    return NULL;
}

static void test_threads(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/paging.db", tmpdir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
              SQLITE_OK);
    pv_web_param p = {"sort", "severity"};
    pv_web_req r = {"GET", "/", "sort=severity", &p, 1, NULL, db, NULL};
    pv_web_resp want = {0};
    CHECK_INT(pv_web_worklist(&r, &want), 0);
    CHECK_INT(row_ids(pv_buf_cstr(&want.body), (long long[64]){0}, 64), 50);
    struct thread_job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){path, "sort=severity",
                                      pv_buf_cstr(&want.body), 0, 10};
        CHECK_INT(pthread_create(&t[i], NULL, page_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(jobs[i].same, 2 * jobs[i].runs);
    }
    pv_buf_free(&want.body);
    sqlite3_close(db);
}

/* ---- alert page, patient page, hostile text, forms ---- */

static void collect_request_ids(const char *html, char ids[][40], int *n,
                                int cap)
{
    const char *key = "name=\"request_id\" value=\"";
    for (const char *p = html; (p = strstr(p, key)) && *n < cap;) {
        p += strlen(key);
        size_t l = (size_t)(strchr(p, '"') - p);
        snprintf(ids[*n], 40, "%.*s", (int)(l < 39 ? l : 39), p);
        (*n)++;
    }
}

static void test_alert_and_patient(void)
{
    pv_store *s = open_db("alert.db");
    const char *ev = "[{\"kind\":\"lab\",\"id\":1,\"code\":\"751-8\","
                     "\"value\":\"0.4\",\"unit\":\"10*9/L\","
                     "\"at\":\"2026-05-02T08:00:00Z\"},"
                     "{\"kind\":\"event\",\"id\":3,\"code\":\"" XSS "\","
                     "\"value\":null,\"unit\":null,\"at\":\"2026-05-01\"}]";
    add_alert(s, XSS, XSS, "neutropenia", "high", XSS, "open",
              "2026-05-02T09:00:00Z", NULL, ev);
    add_alert(s, "P2", "rule_a", "neutropenia", "low", "plain", "closed",
              "2026-05-02T09:00:00Z", NULL, "not json <b>");
    add_alert(s, "P3", "rule_a", "neutropenia", "low", "ack'd", "acknowledged",
              "2026-05-02T09:00:00Z", "bob", NULL);
    exec(s, "INSERT INTO patients (id, updated_at) VALUES "
            "('<script>alert(1)</script>', '2026-05-01T00:00:00Z');"
            "INSERT INTO observations (patient_id, code, name, value_num, "
            "unit, observed_at, comparator) VALUES "
            "('<script>alert(1)</script>', '751-8', '<i>ANC</i>', 0.4, "
            "'10*9/L', '2026-05-02T08:00:00Z', '<'),"
            "('<script>alert(1)</script>', '751-8', 'ANC', 1.9, "
            "'10*9/L', '2026-04-02T08:00:00Z', NULL);"
            "INSERT INTO exposures (patient_id, drug, dose, dose_unit, "
            "start_at) VALUES ('<script>alert(1)</script>', "
            "'baricitinib<script>', 4, 'mg', '2026-01-01');"
            "INSERT INTO events (patient_id, code, term, onset_at, serious) "
            "VALUES ('<script>alert(1)</script>', 'B02.9', "
            "'zoster <script>', '2026-05-01', 1);"
            "INSERT INTO alert_actions (alert_id, at, actor, action, note) "
            "VALUES (1, '2026-05-02T09:00:00Z', 'pvwatch', 'opened', NULL);"
            "INSERT INTO alert_actions (alert_id, at, actor, entered_by, "
            "action, note, outcome) VALUES (2, '2026-05-03T09:00:00Z', "
            "'ann', 'ann', 'closed', 'note <script>', "
            "'intervention:dose_interrupted');"
            "UPDATE alerts SET outcome = 'intervention:dose_interrupted' "
            "WHERE id = 2;");

    /* Worklist, alert page, patient page: the payload is text. */
    struct req q;
    req_init(&q, s, &reviewer, "");
    pv_web_resp resp = {0};
    CHECK_INT(pv_web_worklist(&q.r, &resp), 0);
    const char *html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "<script") == NULL);
    CHECK(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
    /* The patient link is percent-encoded, then escaped. */
    CHECK(strstr(html, "href=\"/patients/%3Cscript%3Ealert%281%29%3C%2F"
                       "script%3E\"") != NULL);
    pv_buf_free(&resp.body);

    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_alert(&q.r, 1, &resp), 0);
    CHECK_INT(resp.status, 200);
    html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "<script") == NULL);
    CHECK(count_of(html, "&lt;script&gt;") >= 3);
    /* The chart (chart.h) of the alert's analyte, inline. */
    CHECK(strstr(html, "<svg") != NULL);
    CHECK(strstr(html, "class=\"pv-chart\"") != NULL);
    /* Evidence as a table, provenance, the audit trail. */
    CHECK(strstr(html, "<td>751-8</td>") != NULL);
    CHECK(strstr(html, "<td class=\"num\">0.4</td>") != NULL);
    CHECK(strstr(html, "abc123") != NULL);
    CHECK(strstr(html, "data-action=\"opened\"") != NULL);
    /* A reviewer of an open alert: four forms, each with the session's
     * CSRF token and a request id of its own (and the logout form). */
    CHECK(strstr(html, "action=\"/alerts/1/ack\"") != NULL);
    CHECK(strstr(html, "action=\"/alerts/1/assign\"") != NULL);
    CHECK(strstr(html, "action=\"/alerts/1/comment\"") != NULL);
    CHECK(strstr(html, "action=\"/alerts/1/close\"") != NULL);
    CHECK(strstr(html, "<option value=\"intervention:dose_reduced\">") != NULL);
    char csrf_field[128];
    snprintf(csrf_field, sizeof csrf_field, "name=\"csrf\" value=\"%s\"",
             reviewer.csrf);
    CHECK_INT(count_of(html, csrf_field), 5);
    CHECK_INT(count_of(html, "name=\"csrf\""), 5);
    char rids[16][40];
    int nr = 0;
    collect_request_ids(html, rids, &nr, 16);
    CHECK_INT(nr, 5);
    for (int i = 0; i < nr; i++) {
        CHECK_INT(strlen(rids[i]), 32);
        CHECK(strspn(rids[i], "0123456789abcdef") == 32);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(rids[i], rids[j]) != 0);
    }
    /* Another rendering of the same page: fresh ids. */
    pv_web_resp again = {0};
    CHECK_INT(pv_web_alert(&q.r, 1, &again), 0);
    char rids2[16][40];
    int nr2 = 0;
    collect_request_ids(pv_buf_cstr(&again.body), rids2, &nr2, 16);
    CHECK_INT(nr2, 5);
    for (int i = 0; i < nr && i < nr2; i++)
        CHECK(strcmp(rids[i], rids2[i]) != 0);
    pv_buf_free(&again.body);
    pv_buf_free(&resp.body);

    /* Acknowledged: no acknowledge form; closed: only the comment form
     * (pv_alerts_do takes a comment in any status); the closed alert's
     * evidence is not JSON and shows as text. */
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_alert(&q.r, 3, &resp), 0);
    html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "/alerts/3/ack") == NULL);
    CHECK(strstr(html, "/alerts/3/close") != NULL);
    CHECK(strstr(html, "name=\"assignee\" value=\"bob\"") != NULL);
    pv_buf_free(&resp.body);
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_alert(&q.r, 2, &resp), 0);
    html = pv_buf_cstr(&resp.body);
    CHECK_INT(count_of(html, "class=\"act act-"), 1);
    CHECK(strstr(html, "action=\"/alerts/2/comment\"") != NULL);
    CHECK(strstr(html, "/alerts/2/ack") == NULL);
    CHECK(strstr(html, "/alerts/2/assign") == NULL);
    CHECK(strstr(html, "/alerts/2/close") == NULL);
    CHECK(strstr(html, "not json &lt;b&gt;") != NULL);
    /* The outcome's label, in the facts and in the trail. */
    CHECK_INT(count_of(html, "Intervention: dose interrupted"), 2);
    CHECK(strstr(html, "note &lt;script&gt;") != NULL);
    pv_buf_free(&resp.body);

    /* A viewer sees no action form (only the logout form). */
    struct req qv;
    req_init(&qv, s, &viewer, "");
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_alert(&qv.r, 1, &resp), 0);
    html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "/alerts/1/") == NULL);
    CHECK(strstr(html, "class=\"act act-") == NULL);
    CHECK_INT(count_of(html, "method=\"post\""), 1);
    CHECK(strstr(html, "action=\"/logout\"") != NULL);
    CHECK(strstr(html, "<span class=\"role\">viewer</span>") != NULL);
    pv_buf_free(&resp.body);

    /* Unknown alert: 404. */
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_alert(&q.r, 999, &resp), 0);
    CHECK_INT(resp.status, 404);
    pv_buf_free(&resp.body);

    /* The patient page. */
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_patient(&q.r, XSS, &resp), 0);
    CHECK_INT(resp.status, 200);
    html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "<script") == NULL);
    CHECK(strstr(html, "<i>") == NULL);
    CHECK(strstr(html, "baricitinib&lt;script&gt;") != NULL);
    CHECK(strstr(html, "class=\"pv-chart\"") != NULL); /* the timeline */
    CHECK(strstr(html, "zoster &lt;script&gt;") != NULL);
    /* Labs: the latest per analyte, with its comparator, and the count. */
    CHECK(strstr(html, "&lt;0.4") != NULL);
    CHECK(strstr(html, "<td class=\"num\">2</td>") != NULL);
    CHECK(strstr(html, "href=\"/alerts/1\"") != NULL);
    pv_buf_free(&resp.body);
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_patient(&q.r, "nobody", &resp), 0);
    CHECK_INT(resp.status, 404);
    pv_buf_free(&resp.body);

    /* The rules page (workflow's rule_stats.h). */
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_rules(&q.r, &resp), 0);
    CHECK_INT(resp.status, 200);
    html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "<script") == NULL);
    CHECK_INT(count_of(html, "class=\"rule-row\""), 2);
    /* rule_a: 2 opened, 1 acknowledged now, 1 closed with an intervention
     * (alert 2): a share of 100 %; the rule links to its alerts. */
    CHECK(strstr(html, "data-rule=\"rule_a\"><td><a "
                       "href=\"/?rule=rule_a&amp;status=all\">rule_a</a></td>"
                       "<td class=\"num\">2</td>") != NULL);
    CHECK(strstr(html, "100.0 %") != NULL);
    CHECK(strstr(html, "Intervention: dose interrupted") != NULL);
    pv_buf_free(&resp.body);
    req_init(&q, s, &reviewer, "since=last+week");
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_rules(&q.r, &resp), 0);
    CHECK_INT(resp.status, 400);
    pv_buf_free(&resp.body);

    /* The rules page and the grouped worklist are kept a few seconds
     * (web_cache.h) while the alerts' version (max alerts.id, max
     * alert_actions.id) stays: a reload is a hit; a change the version
     * does not see (a rule renamed by hand) is not shown until a new
     * alert, or a new action, makes the next request a miss. */
    pv_web_cache_clear();
    unsigned long hits = 0, misses = 0;
    const char *pages[] = {"", "group=rule"};
    for (size_t k = 0; k < 2; k++) {
        int rules = k == 0;
        const char *mark = rules ? "data-rule=\"" : "data-key=\"";
        char want[64];
        req_init(&q, s, &reviewer, pages[k]);
        for (int i = 0; i < 2; i++) {
            resp = (pv_web_resp){0};
            CHECK_INT(rules ? pv_web_rules(&q.r, &resp)
                            : pv_web_worklist(&q.r, &resp),
                      0);
            CHECK(strstr(pv_buf_cstr(&resp.body), k ? "rule_z" : "rule_a") !=
                  NULL);
            /* The header (the user, the CSRF token) is never cached. */
            CHECK(strstr(pv_buf_cstr(&resp.body), reviewer.csrf) != NULL);
            pv_buf_free(&resp.body);
        }
        pv_web_cache_counts(&hits, &misses);
        CHECK_INT((long)hits, 1);
        CHECK_INT((long)misses, 1);
        exec(s, k ? "UPDATE alerts SET rule = 'rule_b' WHERE rule = 'rule_z'"
                  : "UPDATE alerts SET rule = 'rule_z' WHERE rule = 'rule_a'");
        snprintf(want, sizeof want, "%s%s\"", mark, k ? "rule_b" : "rule_z");
        resp = (pv_web_resp){0};
        CHECK_INT(rules ? pv_web_rules(&q.r, &resp)
                        : pv_web_worklist(&q.r, &resp),
                  0);
        CHECK(strstr(pv_buf_cstr(&resp.body), want) == NULL); /* cached */
        pv_buf_free(&resp.body);
        if (rules)
            add_alert(s, "P9", "rule_new", "neutropenia", "low", "new", "open",
                      "2026-05-03T09:00:00Z", NULL, NULL);
        else
            exec(s, "INSERT INTO alert_actions (alert_id, at, actor, action, "
                    "note) VALUES (3, '2026-05-03T10:00:00Z', 'rita', "
                    "'commented', 'hand-over')");
        resp = (pv_web_resp){0};
        CHECK_INT(rules ? pv_web_rules(&q.r, &resp)
                        : pv_web_worklist(&q.r, &resp),
                  0);
        CHECK(strstr(pv_buf_cstr(&resp.body), want) != NULL); /* fresh */
        if (rules)
            CHECK(strstr(pv_buf_cstr(&resp.body), "data-rule=\"rule_new\"") !=
                  NULL);
        pv_buf_free(&resp.body);
        pv_web_cache_counts(&hits, &misses);
        CHECK_INT((long)hits, 2);
        CHECK_INT((long)misses, 2);
        pv_web_cache_clear();
    }

    /* The login form carries a local next= (hidden field, escaped), and
     * never one that leaves the site. */
    const char *nexts[][2] = {
        {"next=%2Falerts%2F1%3Fx%3D1%26y%3D%22", "/alerts/1?x=1&amp;y=&quot;"},
        {"next=%2F%2Fevil.example%2Fx", ""},
        {"next=%2F%5Cevil.example", ""},
        {"next=https%3A%2F%2Fevil.example%2F", ""},
        {"next=%2Fa%0D%0ASet-Cookie%3A+x", ""},
        {"next=javascript%3Aalert(1)", ""},
        {"", ""},
    };
    for (size_t k = 0; k < sizeof nexts / sizeof nexts[0]; k++) {
        char want[128];
        req_init(&q, s, NULL, nexts[k][0]);
        resp = (pv_web_resp){0};
        CHECK_INT(pv_web_login_page(&q.r, NULL, &resp), 0);
        snprintf(want, sizeof want, "name=\"next\" value=\"%s\"", nexts[k][1]);
        CHECK(strstr(pv_buf_cstr(&resp.body), want) != NULL);
        if (!strstr(pv_buf_cstr(&resp.body), want))
            fprintf(stderr, "login page for '%s': no %s\n", nexts[k][0], want);
        pv_buf_free(&resp.body);
    }
    CHECK_INT(pv_web_local_path("/rules"), 1);
    CHECK_INT(pv_web_local_path("//evil.example"), 0);
    CHECK_INT(pv_web_local_path("/\\evil.example"), 0);
    CHECK_INT(pv_web_local_path("/a b"), 0);
    CHECK_INT(pv_web_local_path("http://evil.example/"), 0);
    CHECK_INT(pv_web_local_path(""), 0);
    CHECK_INT(pv_web_local_path(NULL), 0);

    /* The login page, the error page, the flash line: escaped, and the
     * login page shows nobody as logged in. */
    q.r.flash = XSS;
    resp = (pv_web_resp){0};
    CHECK_INT(pv_web_login_page(&q.r, XSS, &resp), 0);
    html = pv_buf_cstr(&resp.body);
    CHECK(strstr(html, "<script") == NULL);
    CHECK(strstr(html, "name=\"password\"") != NULL);
    CHECK(strstr(html, "rita") == NULL);
    pv_buf_free(&resp.body);
    resp = (pv_web_resp){0};
    pv_web_error_page(&q.r, 403, XSS, &resp);
    CHECK_INT(resp.status, 403);
    CHECK(strstr(pv_buf_cstr(&resp.body), "<script") == NULL);
    CHECK(strstr(pv_buf_cstr(&resp.body), "&lt;script&gt;") != NULL);
    pv_buf_free(&resp.body);
    resp = (pv_web_resp){0};
    pv_web_error_page(NULL, 404, "gone", &resp);
    CHECK_INT(resp.status, 404);
    pv_buf_free(&resp.body);
    pv_store_close(s);
}

int main(void)
{
    if (sodium_init() < 0 || !mkdtemp(tmpdir)) {
        perror("setup");
        return 2;
    }
    test_tmpl();
    test_filters();
    test_paging();
    test_threads();
    test_alert_and_patient();
    const char *names[] = {"filters.db", "paging.db", "alert.db"};
    for (size_t i = 0; i < 3; i++) {
        const char *sfx[] = {"", "-wal", "-shm", ".lock"};
        for (size_t k = 0; k < 4; k++) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s%s", tmpdir, names[i], sfx[k]);
            unlink(p);
        }
    }
    rmdir(tmpdir);
    return pv_test_report();
}
