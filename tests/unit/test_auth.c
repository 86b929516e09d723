/* test_auth: the review console's users, passwords, sessions, CSRF tokens
 * and login rate limiting (core/auth.c, issue 16), on a real SQLite file
 * in a temporary directory with every migration applied.
 *
 * Users are hashed at crypto_pwhash's minimum cost (the test-only
 * pv_auth_user_add_cost) so that the test stays quick under valgrind; one
 * user is hashed at the production cost to check the stored parameters,
 * and one unknown-name login verifies against the production-cost dummy
 * hash. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "error.h"
#include "pvtime.h"
#include "store.h"
#include "test.h"

static char tmpdir[] = "/tmp/pv_test_auth.XXXXXX";
static char dbpath[512];

#define PW "correct horse battery"

static long long one_int(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "exec %s: %s\n", sql, msg ? msg : "?");
        pv_test_failed++;
    }
    sqlite3_free(msg);
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Whether the bytes of path contain needle (the database file, its WAL). */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t cap = 1 << 20, n = 0, r;
    char *buf = malloc(cap);
    int found = 0;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    size_t len = strlen(needle);
    for (size_t i = 0; buf && i + len <= n && !found; i++)
        found = memcmp(buf + i, needle, len) == 0;
    free(buf);
    fclose(f);
    return found;
}

static void add_users(sqlite3 *db)
{
    char err[256];
    CHECK_INT(
        pv_auth_user_add_cost(db, "alice", "reviewer", PW, 1, err, sizeof err),
        0);
    CHECK_INT(
        pv_auth_user_add_cost(db, "bob", "viewer", PW, 1, err, sizeof err), 0);
    /* The same name twice. */
    CHECK_INT(
        pv_auth_user_add_cost(db, "alice", "viewer", PW, 1, err, sizeof err),
        PV_ESTATE);
    CHECK(strstr(err, "exists") != NULL);
    /* Names, roles and passwords refused before anything is hashed. */
    CHECK_INT(
        pv_auth_user_add_cost(db, "a b", "viewer", PW, 1, err, sizeof err),
        PV_EINVAL);
    CHECK(strstr(err, "spaces") != NULL);
    CHECK_INT(
        pv_auth_user_add_cost(db, "a\tb", "viewer", PW, 1, err, sizeof err),
        PV_EINVAL);
    CHECK_INT(pv_auth_user_add_cost(db, "a\xc2\x85z", "viewer", PW, 1, err,
                                    sizeof err),
              PV_EINVAL); /* U+0085, a C1 control */
    CHECK_INT(
        pv_auth_user_add_cost(db, "bad\xff", "viewer", PW, 1, err, sizeof err),
        PV_EINVAL);
    CHECK_INT(pv_auth_user_add_cost(db, "", "viewer", PW, 1, err, sizeof err),
              PV_EINVAL);
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    CHECK_INT(
        pv_auth_user_add_cost(db, longname, "viewer", PW, 1, err, sizeof err),
        PV_EINVAL);
    longname[63] = '\0'; /* 63 bytes: the most pv_web_user holds */
    CHECK_INT(
        pv_auth_user_add_cost(db, longname, "viewer", PW, 1, err, sizeof err),
        0);
    CHECK_INT(pv_auth_user_add_cost(db, "m\xc3\xbcller", "admin", PW, 1, err,
                                    sizeof err),
              0); /* UTF-8 is fine */
    CHECK_INT(
        pv_auth_user_add_cost(db, "carol", "root", PW, 1, err, sizeof err),
        PV_EINVAL);
    CHECK_INT(pv_auth_user_add_cost(db, "carol", "viewer", "short", 1, err,
                                    sizeof err),
              PV_EINVAL);
    CHECK(strstr(err, "10") != NULL);
    CHECK_INT(
        one_int(db, "SELECT count(*) FROM users WHERE name = 'carol'", NULL),
        0);
    CHECK_INT(one_int(db, "SELECT count(*) FROM users", NULL), 4);
}

/* The production cost: argon2id, 2 passes over 64 MiB. */
static void production_cost(sqlite3 *db)
{
    char err[256];
    CHECK_INT(pv_auth_user_add(db, "prod", "viewer", PW, err, sizeof err), 0);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT pwhash FROM users WHERE name = 'prod'",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        CHECK(h && !strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31));
        CHECK(h && !strstr(h, PW));
    } else {
        CHECK(0);
    }
    sqlite3_finalize(st);
}

static void login_and_session(sqlite3 *db)
{
    char err[256], token[65], token2[65];
    pv_web_user u, s;
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.0.0.1", token, &u, err, sizeof err),
        0);
    CHECK(is_hex64(token));
    CHECK_STR(u.name, "alice");
    CHECK_STR(u.role, "reviewer");
    CHECK(is_hex64(u.csrf));
    CHECK(strcmp(u.csrf, token) != 0);

    /* The session, found by its token. */
    CHECK_INT(pv_auth_session(db, token, &s), 0);
    CHECK_STR(s.name, "alice");
    CHECK_STR(s.role, "reviewer");
    CHECK_STR(s.csrf, u.csrf);
    CHECK_INT(pv_auth_touch(db, token), 0);

    /* Two logins, two sessions, two tokens. */
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.0.0.1", token2, &u, err, sizeof err),
        0);
    CHECK(strcmp(token, token2) != 0);
    CHECK_INT(pv_auth_session(db, token2, &s), 0);

    /* Unknown, malformed, NULL. */
    char other[65];
    snprintf(other, sizeof other, "%s", token);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    CHECK_INT(pv_auth_session(db, other, &s), 1);
    CHECK_STR(s.name, "");
    char upper[65];
    snprintf(upper, sizeof upper, "%s", token);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    CHECK_INT(pv_auth_session(db, upper, &s), strcmp(upper, token) ? 1 : 0);
    char shorter[65];
    snprintf(shorter, sizeof shorter, "%.63s", token);
    CHECK_INT(pv_auth_session(db, shorter, &s), 1);
    CHECK_INT(pv_auth_session(db, "", &s), 1);
    CHECK_INT(pv_auth_session(db, NULL, &s), 1);

    /* Only the token's hash is stored: neither the sessions table nor the
     * database file (nor its WAL) holds the token's text. */
    CHECK_INT(one_int(db,
                      "SELECT count(*) FROM sessions WHERE token_sha256 = ?1 "
                      "OR csrf = ?1",
                      token),
              0);
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), 2);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    CHECK(!file_contains(dbpath, token));
    CHECK(!file_contains(wal, token));
    CHECK(file_contains(wal, u.csrf) || file_contains(dbpath, u.csrf));

    /* Expired: no session; the next login deletes it. */
    exec(db, "UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'");
    CHECK_INT(pv_auth_session(db, token, &s), 1);
    CHECK_INT(pv_auth_session(db, token2, &s), 1);
    CHECK_INT(
        pv_auth_login(db, "bob", PW, "10.0.0.2", token, &u, err, sizeof err),
        0);
    CHECK_STR(u.role, "viewer");
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), 1);
    CHECK_INT(pv_auth_session(db, token, &s), 0);

    /* Logout ends it; a second logout is no error. */
    CHECK_INT(pv_auth_logout(db, token), 0);
    CHECK_INT(pv_auth_session(db, token, &s), 1);
    CHECK_INT(pv_auth_logout(db, token), 0);
    CHECK_INT(pv_auth_logout(db, "nonsense"), 0);
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), 0);

    /* The lifetime is the configured number of hours. */
    CHECK_INT(pv_auth_login_hours(db, "bob", PW, "10.0.0.2", 2, token, &u, err,
                                  sizeof err),
              0);
    CHECK_INT(one_int(db,
                      "SELECT strftime('%s', expires_at) - strftime('%s', "
                      "created_at) FROM sessions",
                      NULL),
              2 * 3600);
    CHECK_INT(pv_auth_logout(db, token), 0);
    CHECK_INT(pv_auth_login_hours(db, "bob", PW, "10.0.0.2", 0, token, &u, err,
                                  sizeof err),
              0);
    CHECK_INT(one_int(db,
                      "SELECT strftime('%s', expires_at) - strftime('%s', "
                      "created_at) FROM sessions",
                      NULL),
              12 * 3600);
    CHECK_INT(pv_auth_logout(db, token), 0);
}

static void wrong_password_and_unknown(sqlite3 *db)
{
    char err[256], token[65];
    pv_web_user u;
    CHECK_INT(pv_auth_login(db, "alice", "wrong password!", "10.0.0.3", token,
                            &u, err, sizeof err),
              PV_EAUTH);
    CHECK_STR(err, "wrong user name or password");
    CHECK_STR(token, "");
    CHECK_STR(u.name, "");
    /* An unknown name: the same answer (verified against the dummy). */
    char err2[256];
    CHECK_INT(pv_auth_login(db, "nobody", PW, "10.0.0.3", token, &u, err2,
                            sizeof err2),
              PV_EAUTH);
    CHECK_STR(err2, err);
    CHECK_INT(
        pv_auth_login(db, "alice", "", "10.0.0.3", token, &u, err, sizeof err),
        PV_EAUTH);
    CHECK_INT(
        pv_auth_login(db, "alice", NULL, NULL, token, &u, err, sizeof err),
        PV_EAUTH);
    /* Each failure is recorded; no session was made. */
    CHECK_INT(one_int(db,
                      "SELECT count(*) FROM login_failures WHERE name = "
                      "'alice'",
                      NULL),
              3);
    CHECK_INT(one_int(db,
                      "SELECT count(*) FROM login_failures WHERE client = '-'",
                      NULL),
              1);
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), 0);
    /* A success clears the name's failures. */
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.0.0.3", token, &u, err, sizeof err),
        0);
    CHECK_INT(one_int(db,
                      "SELECT count(*) FROM login_failures WHERE name = "
                      "'alice'",
                      NULL),
              0);
    CHECK_INT(pv_auth_logout(db, token), 0);
    exec(db, "DELETE FROM login_failures");
}

static void rate_limit(sqlite3 *db)
{
    char err[256], token[65];
    pv_web_user u;
    /* Five wrong passwords for alice, from different clients. */
    for (int i = 0; i < PV_AUTH_MAX_FAILURES; i++) {
        char client[32];
        snprintf(client, sizeof client, "10.1.0.%d", i);
        CHECK_INT(pv_auth_login(db, "alice", "not the password", client, token,
                                &u, err, sizeof err),
                  PV_EAUTH);
    }
    /* Now even the right password is refused, with a clear message. */
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.1.0.99", token, &u, err, sizeof err),
        PV_ELIMIT);
    CHECK(strstr(err, "too many failed logins for this user name") != NULL);
    CHECK(strstr(err, "try again after 20") != NULL);
    CHECK_STR(token, "");
    /* Refusals while limited are not recorded (the window does not grow). */
    CHECK_INT(one_int(db,
                      "SELECT count(*) FROM login_failures WHERE name = "
                      "'alice'",
                      NULL),
              PV_AUTH_MAX_FAILURES);
    /* Another name from the same client is not limited. */
    CHECK_INT(
        pv_auth_login(db, "bob", PW, "10.1.0.0", token, &u, err, sizeof err),
        0);
    CHECK_INT(pv_auth_logout(db, token), 0);
    /* When the failures are older than the window, alice may log in. */
    exec(db, "UPDATE login_failures SET at = '2000-01-01T00:00:00Z'");
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.1.0.99", token, &u, err, sizeof err),
        0);
    CHECK_INT(one_int(db, "SELECT count(*) FROM login_failures", NULL), 0);
    CHECK_INT(pv_auth_logout(db, token), 0);

    /* Per client: many names failing from one address. */
    char now[PV_TIME_BUFSZ], sql[256];
    sqlite3_stmt *st;
    {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO login_failures (name, client, at) VALUES (?1, "
             "'10.9.9.9', '%s')",
             now);
    for (int i = 0; i < 19; i++) {
        char name[32];
        snprintf(name, sizeof name, "guess%d", i);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
            CHECK_INT(sqlite3_step(st), SQLITE_DONE);
            sqlite3_finalize(st);
        }
    }
    /* Under the limit (19): a real failure makes it 20. */
    CHECK_INT(pv_auth_login(db, "bob", "not the password", "10.9.9.9", token,
                            &u, err, sizeof err),
              PV_EAUTH);
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.9.9.9", token, &u, err, sizeof err),
        PV_ELIMIT);
    CHECK(strstr(err, "from this address") != NULL);
    /* Another client, same name: fine. */
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.9.9.10", token, &u, err, sizeof err),
        0);
    CHECK_INT(pv_auth_logout(db, token), 0);
    exec(db, "DELETE FROM login_failures");
}

/* The console's login in two steps: the verification reads (here on a
 * read-only connection, as http.c does, outside its write mutex), the
 * record writes; a success verified while others failed is refused once
 * their failures reach the limit. And last_seen: its idle time, touched. */
static void two_steps_and_last_seen(sqlite3 *db)
{
    char err[256], token[65];
    pv_web_user u;
    pv_auth_verdict v;
    sqlite3 *ro = NULL;
    CHECK_INT(sqlite3_open_v2(dbpath, &ro, SQLITE_OPEN_READONLY, NULL),
              SQLITE_OK);
    exec(ro, "PRAGMA query_only = 1");
    exec(db, "DELETE FROM login_failures");
    long long sessions0 = one_int(db, "SELECT count(*) FROM sessions", NULL);

    CHECK_INT(pv_auth_login_verify(ro, "alice", PW, "10.2.0.1", &v), 0);
    CHECK_INT(v.failed, 0);
    CHECK_STR(v.role, "reviewer");
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), sessions0);
    CHECK_INT(pv_auth_login_record(db, &v, 0, token, &u, err, sizeof err), 0);
    CHECK(is_hex64(token));
    CHECK_STR(u.name, "alice");
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL),
              sessions0 + 1);

    /* last_seen: just now; two minutes ago after an UPDATE; now again
     * after pv_auth_touch. */
    long idle = -2;
    pv_web_user su;
    CHECK_INT(pv_auth_session_seen(ro, token, &su, &idle), 0);
    CHECK(idle >= 0 && idle < 5);
    exec(db, "UPDATE sessions SET last_seen = strftime('%Y-%m-%dT%H:%M:%SZ', "
             "'now', '-120 seconds') WHERE user = 'alice'");
    CHECK_INT(pv_auth_session_seen(ro, token, &su, &idle), 0);
    CHECK(idle >= 119 && idle < 130);
    CHECK(idle >= PV_AUTH_TOUCH_S);
    CHECK_INT(pv_auth_touch(db, token), 0);
    CHECK_INT(pv_auth_session_seen(ro, token, &su, &idle), 0);
    CHECK(idle >= 0 && idle < 5);
    CHECK_INT(pv_auth_session_seen(ro, "nope", &su, &idle), 1);
    CHECK_INT(idle, -1);
    CHECK_INT(pv_auth_logout(db, token), 0);

    /* A wrong password: verify decides, record writes the failure. */
    CHECK_INT(
        pv_auth_login_verify(ro, "alice", "not the password", "10.2.0.1", &v),
        PV_EAUTH);
    CHECK_INT(v.failed, 1);
    CHECK_INT(one_int(db, "SELECT count(*) FROM login_failures", NULL), 0);
    CHECK_INT(pv_auth_login_record(db, &v, 0, token, &u, err, sizeof err),
              PV_EAUTH);
    CHECK_STR(token, "");
    CHECK_INT(one_int(db, "SELECT count(*) FROM login_failures", NULL), 1);

    /* The right password verified while four other tries, verified at the
     * same time, fail and are recorded first: the limit holds. */
    CHECK_INT(pv_auth_login_verify(ro, "alice", PW, "10.2.0.2", &v), 0);
    for (int i = 0; i < PV_AUTH_MAX_FAILURES - 1; i++) {
        pv_auth_verdict w;
        CHECK_INT(
            pv_auth_login_verify(ro, "alice", "guess guess", "10.2.0.3", &w),
            PV_EAUTH);
        CHECK_INT(pv_auth_login_record(db, &w, 0, token, &u, err, sizeof err),
                  PV_EAUTH);
    }
    CHECK_INT(pv_auth_login_record(db, &v, 0, token, &u, err, sizeof err),
              PV_ELIMIT);
    CHECK(strstr(err, "too many failed logins") != NULL);
    CHECK_STR(token, "");
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), sessions0);
    /* Rate-limited before the verification: nothing is written. */
    CHECK_INT(pv_auth_login_verify(ro, "alice", PW, "10.2.0.2", &v), PV_ELIMIT);
    CHECK_INT(pv_auth_login_record(db, &v, 0, token, &u, err, sizeof err),
              PV_ELIMIT);
    CHECK_INT(one_int(db, "SELECT count(*) FROM login_failures", NULL),
              PV_AUTH_MAX_FAILURES);
    exec(db, "DELETE FROM login_failures");
    sqlite3_close(ro);
}

static void disabled_and_changes(sqlite3 *db)
{
    char err[256], token[65], t2[65];
    pv_web_user u, s;
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.2.0.1", token, &u, err, sizeof err),
        0);
    CHECK_INT(pv_auth_user_disable(db, "alice", 1, err, sizeof err), 0);
    /* Disabling ends the sessions, and a disabled user cannot log in. */
    CHECK_INT(pv_auth_session(db, token, &s), 1);
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.2.0.1", t2, &u, err, sizeof err),
        PV_EAUTH);
    CHECK(strstr(err, "disabled") != NULL);
    CHECK_STR(t2, "");
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), 0);
    /* A session row left behind for a disabled user is still refused. */
    CHECK_INT(pv_auth_user_disable(db, "alice", 0, err, sizeof err), 0);
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.2.0.1", token, &u, err, sizeof err),
        0);
    exec(db, "UPDATE users SET disabled = 1 WHERE name = 'alice'");
    CHECK_INT(pv_auth_session(db, token, &s), 1);
    exec(db, "UPDATE users SET disabled = 0 WHERE name = 'alice'");
    CHECK_INT(pv_auth_session(db, token, &s), 0);
    CHECK_INT(pv_auth_user_disable(db, "nobody", 1, err, sizeof err),
              PV_ENOTFOUND);

    /* A role change ends the sessions; the next login has the new role. */
    CHECK_INT(pv_auth_user_role(db, "alice", "admin", err, sizeof err), 0);
    CHECK_INT(pv_auth_session(db, token, &s), 1);
    CHECK_INT(pv_auth_user_role(db, "alice", "god", err, sizeof err),
              PV_EINVAL);
    CHECK_INT(pv_auth_user_role(db, "nobody", "viewer", err, sizeof err),
              PV_ENOTFOUND);
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.2.0.1", token, &u, err, sizeof err),
        0);
    CHECK_STR(u.role, "admin");

    /* A new password: the old one fails, the new one works, and the
     * sessions of the old one are gone. */
    CHECK_INT(pv_auth_user_passwd_cost(db, "alice", "a new password 2", 1, err,
                                       sizeof err),
              0);
    CHECK_INT(pv_auth_session(db, token, &s), 1);
    CHECK_INT(
        pv_auth_login(db, "alice", PW, "10.2.0.1", token, &u, err, sizeof err),
        PV_EAUTH);
    CHECK_INT(pv_auth_login(db, "alice", "a new password 2", "10.2.0.1", token,
                            &u, err, sizeof err),
              0);
    CHECK_INT(
        pv_auth_user_passwd_cost(db, "alice", "short", 1, err, sizeof err),
        PV_EINVAL);
    CHECK_INT(pv_auth_user_passwd_cost(db, "nobody", "long enough pw", 1, err,
                                       sizeof err),
              PV_ENOTFOUND);
    CHECK_INT(pv_auth_logout(db, token), 0);
}

static void csrf(void)
{
    pv_web_user u;
    memset(&u, 0, sizeof u);
    memset(u.csrf, 'a', 64);
    char t[80];
    memset(t, 'a', 64);
    t[64] = '\0';
    CHECK_INT(pv_auth_csrf_ok(&u, t), 1);
    t[63] = 'b';
    CHECK_INT(pv_auth_csrf_ok(&u, t), 0);
    t[63] = 'a';
    t[0] = 'b';
    CHECK_INT(pv_auth_csrf_ok(&u, t), 0);
    t[0] = 'a';
    t[63] = '\0';
    CHECK_INT(pv_auth_csrf_ok(&u, t), 0); /* 63 characters */
    t[63] = 'a';
    t[64] = 'a';
    t[65] = '\0';
    CHECK_INT(pv_auth_csrf_ok(&u, t), 0); /* 65 */
    CHECK_INT(pv_auth_csrf_ok(&u, ""), 0);
    CHECK_INT(pv_auth_csrf_ok(&u, NULL), 0);
    CHECK_INT(pv_auth_csrf_ok(NULL, t), 0);
    /* A user without a session (empty csrf) matches nothing, not even "". */
    pv_web_user none;
    memset(&none, 0, sizeof none);
    CHECK_INT(pv_auth_csrf_ok(&none, ""), 0);
}

struct list_ctx {
    int n, hashes;
    char names[8][64];
};

static int collect(const pv_auth_user_row *r, void *ud)
{
    struct list_ctx *c = ud;
    if (c->n < 8)
        snprintf(c->names[c->n], sizeof c->names[0], "%s", r->name);
    c->n++;
    c->hashes += strstr(r->name, "$argon2") || strstr(r->role, "$argon2");
    return 0;
}

static void listing(sqlite3 *db)
{
    struct list_ctx c;
    memset(&c, 0, sizeof c);
    CHECK_INT(pv_auth_user_each(db, collect, &c), 0);
    CHECK_INT(c.n, 4);
    CHECK_STR(c.names[0], "alice");
    CHECK_STR(c.names[1], "bob");
    CHECK_INT(c.hashes, 0);
}

/* Console threads log in at once, each on its own connection. */
struct worker {
    const char *name;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 30000);
    for (int i = 0; i < 3; i++) {
        char err[256], token[65];
        pv_web_user u, s;
        if (pv_auth_login(db, w->name, PW, w->name, token, &u, err,
                          sizeof err) == 0 &&
            pv_auth_session(db, token, &s) == 0 && !strcmp(s.name, w->name) &&
            pv_auth_csrf_ok(&s, u.csrf) && pv_auth_logout(db, token) == 0)
            w->ok++;
        else
            fprintf(stderr, "worker %s: %s\n", w->name, err);
    }
    sqlite3_close(db);
    return NULL;
}

static void threads(sqlite3 *db)
{
    char err[256];
    static const char *names[4] = {"t1", "t2", "t3", "t4"};
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        CHECK_INT(pv_auth_user_add_cost(db, names[i], "reviewer", PW, 1, err,
                                        sizeof err),
                  0);
        w[i].name = names[i];
        w[i].ok = 0;
    }
    for (int i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].ok, 3);
    }
    CHECK_INT(one_int(db, "SELECT count(*) FROM sessions", NULL), 0);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dbpath, sizeof dbpath, "%s/auth.db", tmpdir);
    CHECK_INT(pv_auth_init(), 0);
    pv_store *s = NULL;
    char err[256];
    CHECK_INT(pv_store_open(dbpath, &s, err, sizeof err), 0);
    if (!s)
        return pv_test_report();
    sqlite3 *db = pv_store_db(s);
    add_users(db);
    login_and_session(db);
    wrong_password_and_unknown(db);
    rate_limit(db);
    two_steps_and_last_seen(db);
    disabled_and_changes(db);
    csrf();
    listing(db);
    production_cost(db);
    threads(db);
    pv_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return pv_test_report();
}
