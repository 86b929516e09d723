/* web: the review console's pages (issue 16), as functions from a parsed
 * request to a response, with no HTTP library in sight.
 *
 * http.c (libmicrohttpd) parses the request, checks the session and the
 * CSRF token, and calls one of the page functions below on the thread that
 * serves the connection, with that thread's read-only SQLite connection.
 * The page functions only read: every change (acknowledge, assign,
 * comment, close with an outcome) is made by http.c through alerts.h, on a
 * separate writable connection, exactly as the CLI makes it. Templates are
 * files in web/templates/, embedded at build time (tmpl.h). Every value
 * written into HTML is escaped (pv_web_esc). */
#ifndef PV_WEB_H
#define PV_WEB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The logged-in user (auth.h fills it in); role "viewer" cannot act. */
typedef struct pv_web_user {
    char name[64];
    char role[16]; /* viewer | reviewer | admin */
    char csrf[65]; /* this session's CSRF token, hex; forms carry it */
} pv_web_user;

/* One query-string or form parameter (both decoded, NUL-terminated). */
typedef struct pv_web_param {
    const char *name, *value;
} pv_web_param;

typedef struct pv_web_req {
    const char *method;         /* "GET" | "POST" */
    const char *path;           /* "/alerts/12", without the query */
    const char *query;          /* the raw query string ("" if none), to
                                   rebuild links that keep the filter */
    const pv_web_param *params; /* query parameters (GET) or form (POST) */
    size_t nparams;
    const pv_web_user *user; /* NULL: not logged in (login page only) */
    sqlite3 *db;             /* read-only connection of this thread */
    const char *flash;       /* a one-line message to show, or NULL */
} pv_web_req;

typedef struct pv_web_resp {
    int status;               /* 200, 303, 400, 403, 404, 500 */
    const char *content_type; /* static string; NULL: text/html */
    pv_buf body;
    char location[512]; /* for 303: where to go */
} pv_web_resp;

/* The value of a parameter, or NULL. */
const char *pv_web_param_get(const pv_web_req *r, const char *name);

/* Appends s HTML-escaped (& < > " ' become entities; control characters
 * dropped, but tab and newline kept; a byte that is not valid UTF-8
 * becomes U+FFFD). */
void pv_web_esc(pv_buf *b, const char *s);
/* Appends s percent-encoded for a URL path segment or query value: every
 * byte but A-Z a-z 0-9 - . _ ~ becomes %XX (pages). */
void pv_web_url_esc(pv_buf *b, const char *s);

/* 1 when s is a path on this site to go back to after the login (the
 * login form's next): "/" then no '/' or '\\' (never "//host", which a
 * browser takes for another site), no control characters, spaces or
 * backslashes, at most 900 bytes. 0 otherwise (NULL, "", "http://..."). */
int pv_web_local_path(const char *s);

/* The pages. Each returns 0 and fills resp (status, body), or -1 on an
 * internal error (resp->status 500 with a page that says what failed). */
int pv_web_worklist(const pv_web_req *r, pv_web_resp *resp); /* GET / */
int pv_web_alert(const pv_web_req *r, int64_t id,
                 pv_web_resp *resp); /* GET /alerts/ID */
int pv_web_patient(const pv_web_req *r, const char *patient_id,
                   pv_web_resp *resp);                    /* /patients/ID */
int pv_web_rules(const pv_web_req *r, pv_web_resp *resp); /* GET /rules */
/* GET /login; the form carries the request's next= when it is a local
 * path (pv_web_local_path), so the login leads back there. */
int pv_web_login_page(const pv_web_req *r, const char *error,
                      pv_web_resp *resp);
/* A page for 400/403/404 with a sentence saying why. */
void pv_web_error_page(const pv_web_req *r, int status, const char *why,
                       pv_web_resp *resp);

/* The outcomes a close records are alerts.h's pv_alert_outcomes. */

/* The SQL the worklist would run for r's filter (its parameters unbound),
 * for tests and benchmarks that check its plan (EXPLAIN QUERY PLAN). 0, or
 * -1 with a sentence in why for a bad filter (the page's 400). */
int pv_web_worklist_sql(const pv_web_req *r, pv_buf *sql, char *why,
                        size_t whycap);

#endif
