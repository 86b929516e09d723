/* auth.c: users, argon2id passwords, sessions, CSRF tokens and login rate
 * limiting for the review console (issue 16). See auth.h.
 *
 * No static mutable state: every function works on the connection it is
 * given, so console threads call these concurrently, each with its own
 * connection. The only static data are constant strings. Statements are
 * prepared per call (a login costs one argon2id verification, tens of
 * milliseconds, which dwarfs a prepare).
 *
 * Costs: passwords are hashed with crypto_pwhash_str at
 * crypto_pwhash_OPSLIMIT_INTERACTIVE / MEMLIMIT_INTERACTIVE (argon2id,
 * 2 passes over 64 MiB: about 0.1-0.2 s of one core and 64 MiB of memory
 * per login or 'users add'). A console with 4 threads can therefore need
 * up to 256 MiB for concurrent logins. */
#include "auth.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "pvtime.h"

/* Failed logins from one client (address) within the window before it is
 * refused. Higher than the per-name limit: behind a reverse proxy, or a
 * hospital's NAT, many people share one address, and one person's typos
 * must not lock out the ward. */
#define PV_AUTH_MAX_CLIENT_FAILURES 20

/* An argon2id hash, at the production cost, of a random password nobody
 * knows: a login for an unknown name verifies against it, so that the time
 * a login takes does not tell which names exist. Constant. */
static const char dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$fqx7+WeMvNe6N7DJ9rw+zg$"
    "9eQaRPZvzyJVfs2ZmITDwPuoVrnRRssuA5MrXPQmti4";

static void seterr(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || !errcap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

static void iso_at(time_t offset, char out[PV_TIME_BUFSZ])
{
    pv_time_format((pv_time_t)time(NULL) + (pv_time_t)offset, out);
}

/* Runs sql with up to three text parameters (NULL: not bound) to the end.
 * 0 or PV_EDB (err says what failed). */
static int run(sqlite3 *db, const char *sql, const char *a, const char *b,
               const char *c, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        seterr(err, errcap, "users database: %s", sqlite3_errmsg(db));
        return PV_EDB;
    }
    const char *v[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (v[i])
            sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        seterr(err, errcap, "users database: %s", sqlite3_errmsg(db));
        return PV_EDB;
    }
    return 0;
}

/* The first column of the first row of sql (two text parameters) copied
 * into out; 1 when there is no row, 0 when there is, PV_EDB. */
static int first_text(sqlite3 *db, const char *sql, const char *a,
                      const char *b, char *out, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    if (a)
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), res;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
        res = 0;
    } else {
        res = rc == SQLITE_DONE ? 1 : PV_EDB;
    }
    sqlite3_finalize(st);
    return res;
}

/* SHA-256 of the cookie token's text, as 64 hex digits. */
static void token_hash(const char *token, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, 65, d, sizeof d);
}

/* 1 when s is exactly 64 lower-case hex digits (a token we made). */
static int token_shape_ok(const char *s)
{
    if (!s)
        return 0;
    size_t i = 0;
    for (; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[i] == '\0';
}

static void random_hex(char out[65])
{
    unsigned char r[32];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(out, 65, r, sizeof r);
    sodium_memzero(r, sizeof r);
}

int pv_auth_init(void)
{
    return sodium_init() < 0 ? PV_EINVAL : 0;
}

int pv_auth_role_ok(const char *role)
{
    return role && (!strcmp(role, "viewer") || !strcmp(role, "reviewer") ||
                    !strcmp(role, "admin"));
}

/* Length of the UTF-8 sequence at s that is valid and not a control
 * character (C1: U+0080..U+009F), else 0. */
static size_t utf8_char(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf && (s[1] & 0xc0) == 0x80)
        return s[0] == 0xc2 && s[1] < 0xa0 ? 0 : 2;
    if (s[0] >= 0xe0 && s[0] <= 0xef && (s[1] & 0xc0) == 0x80 &&
        (s[2] & 0xc0) == 0x80) {
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0; /* overlong, surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4 && (s[1] & 0xc0) == 0x80 &&
        (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

int pv_auth_name_ok(const char *name, char *err, size_t errcap)
{
    size_t len = name ? strlen(name) : 0;
    if (!len) {
        seterr(err, errcap, "a user name cannot be empty");
        return PV_EINVAL;
    }
    if (len > PV_AUTH_MAX_NAME) {
        seterr(err, errcap, "a user name has at most %d bytes (this has %zu)",
               PV_AUTH_MAX_NAME, len);
        return PV_EINVAL;
    }
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        if (s[i] <= ' ' || s[i] == 0x7f) {
            seterr(err, errcap,
                   "a user name cannot contain spaces or control characters "
                   "(byte %zu)",
                   i + 1);
            return PV_EINVAL;
        }
        size_t n = utf8_char(s + i);
        if (!n) {
            seterr(err, errcap,
                   "a user name must be UTF-8 text without control "
                   "characters (byte %zu)",
                   i + 1);
            return PV_EINVAL;
        }
        i += n;
    }
    return 0;
}

int pv_auth_password_ok(const char *password, char *err, size_t errcap)
{
    size_t len = password ? strlen(password) : 0;
    if (len < PV_AUTH_MIN_PASSWORD) {
        seterr(err, errcap, "a password needs at least %d characters",
               PV_AUTH_MIN_PASSWORD);
        return PV_EINVAL;
    }
    if (len > PV_AUTH_MAX_PASSWORD) {
        seterr(err, errcap, "a password has at most %d bytes",
               PV_AUTH_MAX_PASSWORD);
        return PV_EINVAL;
    }
    return 0;
}

/* ---- login and sessions ------------------------------------------------ */

/* When the name (or client) may try again: the time the failure that makes
 * the count reach the limit leaves the window. */
static void retry_after(sqlite3 *rw, const char *col, const char *key,
                        int limit, char out[PV_TIME_BUFSZ])
{
    char sql[160], at[PV_TIME_BUFSZ];
    snprintf(sql, sizeof sql,
             "SELECT at FROM login_failures WHERE %s = ?1 ORDER BY at DESC "
             "LIMIT 1 OFFSET %d",
             col, limit - 1);
    pv_time_t t;
    if (first_text(rw, sql, key, NULL, at, sizeof at) == 0 &&
        pv_time_parse(at, strlen(at), &t) == 0)
        pv_time_format(t + PV_AUTH_WINDOW_S, out);
    else
        iso_at(PV_AUTH_WINDOW_S, out);
}

static long count_failures(sqlite3 *rw, const char *col, const char *key,
                           const char *since)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM login_failures WHERE %s = ?1 AND at >= ?2",
             col);
    char n[32];
    if (first_text(rw, sql, key, since, n, sizeof n) != 0)
        return -1;
    return strtol(n, NULL, 10);
}

int pv_auth_login(sqlite3 *rw, const char *name, const char *password,
                  const char *client, char token[65], pv_web_user *user,
                  char *err, size_t errcap)
{
    return pv_auth_login_hours(rw, name, password, client,
                               PV_AUTH_SESSION_HOURS_DEFAULT, token, user, err,
                               errcap);
}

int pv_auth_login_hours(sqlite3 *rw, const char *name, const char *password,
                        const char *client, int session_hours, char token[65],
                        pv_web_user *user, char *err, size_t errcap)
{
    if (user)
        memset(user, 0, sizeof *user);
    if (token)
        token[0] = '\0';
    if (!rw || !token || !user) {
        seterr(err, errcap, "pv_auth_login: missing argument");
        return PV_EINVAL;
    }
    pv_auth_verdict v;
    pv_auth_login_verify(rw, name, password, client, &v);
    return pv_auth_login_record(rw, &v, session_hours, token, user, err,
                                errcap);
}

int pv_auth_login_verify(sqlite3 *db, const char *name, const char *password,
                         const char *client, pv_auth_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->rc = PV_EDB;
    if (!db) {
        snprintf(v->err, sizeof v->err, "pv_auth_login: missing argument");
        return v->rc = PV_EINVAL;
    }
    if (sodium_init() < 0) {
        snprintf(v->err, sizeof v->err, "libsodium could not start");
        return v->rc = PV_EINVAL;
    }
    if (!name)
        name = "";
    if (!password)
        password = "";
    /* The keys of the failure counts, bounded so that a hostile form
     * cannot store megabytes per try. */
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->client, sizeof v->client, "%s",
             client && *client ? client : "-");
    char since[PV_TIME_BUFSZ];
    iso_at(-PV_AUTH_WINDOW_S, since);

    long by_name = count_failures(db, "name", v->name, since);
    long by_client = count_failures(db, "client", v->client, since);
    if (by_name < 0 || by_client < 0) {
        snprintf(v->err, sizeof v->err, "users database: %s",
                 sqlite3_errmsg(db));
        return v->rc = PV_EDB;
    }
    if (by_name >= PV_AUTH_MAX_FAILURES ||
        by_client >= PV_AUTH_MAX_CLIENT_FAILURES) {
        int per_name = by_name >= PV_AUTH_MAX_FAILURES;
        char after[PV_TIME_BUFSZ];
        retry_after(
            db, per_name ? "name" : "client", per_name ? v->name : v->client,
            per_name ? PV_AUTH_MAX_FAILURES : PV_AUTH_MAX_CLIENT_FAILURES,
            after);
        snprintf(v->err, sizeof v->err,
                 "too many failed logins %s in %d minutes; try again after %s "
                 "(UTC)",
                 per_name ? "for this user name" : "from this address",
                 PV_AUTH_WINDOW_S / 60, after);
        return v->rc = PV_ELIMIT;
    }

    /* The user, if there is one; else the dummy hash, verified all the
     * same so that an unknown name takes as long as a wrong password. */
    char hash[crypto_pwhash_STRBYTES];
    int found = 0, disabled = 0;
    if (strlen(name) <= PV_AUTH_MAX_NAME) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db,
                               "SELECT role, pwhash, disabled FROM users "
                               "WHERE name = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            snprintf(v->err, sizeof v->err, "users database: %s",
                     sqlite3_errmsg(db));
            return v->rc = PV_EDB;
        }
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            const unsigned char *r = sqlite3_column_text(st, 0);
            const unsigned char *h = sqlite3_column_text(st, 1);
            if (r && h && strlen((const char *)h) < sizeof hash &&
                strlen((const char *)r) < sizeof v->role) {
                snprintf(v->role, sizeof v->role, "%s", (const char *)r);
                snprintf(hash, sizeof hash, "%s", (const char *)h);
                disabled = sqlite3_column_int(st, 2) != 0;
                found = 1;
            }
        }
        sqlite3_finalize(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            snprintf(v->err, sizeof v->err, "users database: %s",
                     sqlite3_errmsg(db));
            return v->rc = PV_EDB;
        }
    }
    if (!found)
        snprintf(hash, sizeof hash, "%s", dummy_hash);
    size_t plen = strlen(password);
    int too_long = plen > PV_AUTH_MAX_PASSWORD;
    int ok = crypto_pwhash_str_verify(
                 hash, password, too_long ? PV_AUTH_MAX_PASSWORD : plen) == 0;
    sodium_memzero(hash, sizeof hash);
    if (!found || !ok || too_long) {
        v->failed = 1;
        snprintf(v->err, sizeof v->err, "wrong user name or password");
        return v->rc = PV_EAUTH;
    }
    if (disabled) {
        snprintf(v->err, sizeof v->err,
                 "the user %s is disabled; an administrator can enable it "
                 "('pvwatch users enable')",
                 name);
        return v->rc = PV_EAUTH;
    }
    return v->rc = 0;
}

int pv_auth_login_record(sqlite3 *rw, const pv_auth_verdict *v,
                         int session_hours, char token[65], pv_web_user *user,
                         char *err, size_t errcap)
{
    if (user)
        memset(user, 0, sizeof *user);
    if (token)
        token[0] = '\0';
    if (!rw || !v || !token || !user) {
        seterr(err, errcap, "pv_auth_login: missing argument");
        return PV_EINVAL;
    }
    if (session_hours <= 0)
        session_hours = PV_AUTH_SESSION_HOURS_DEFAULT;
    if (session_hours > 24 * 366)
        session_hours = 24 * 366;
    if (v->rc && !v->failed) { /* refused without a try: nothing to write */
        seterr(err, errcap, "%s", v->err);
        return v->rc;
    }

    char now[PV_TIME_BUFSZ], since[PV_TIME_BUFSZ], expires[PV_TIME_BUFSZ];
    iso_at(0, now);
    iso_at(-PV_AUTH_WINDOW_S, since);
    iso_at((time_t)session_hours * 3600, expires);

    /* Expired sessions and failures older than the window go first. */
    int rc = run(rw, "DELETE FROM sessions WHERE expires_at <= ?1", now, NULL,
                 NULL, err, errcap);
    if (!rc)
        rc = run(rw, "DELETE FROM login_failures WHERE at < ?1", since, NULL,
                 NULL, err, errcap);
    if (rc)
        return rc;
    if (v->failed) {
        rc = run(rw,
                 "INSERT INTO login_failures (name, client, at) "
                 "VALUES (?1, ?2, ?3)",
                 v->name, v->client, now, err, errcap);
        if (rc)
            return rc;
        seterr(err, errcap, "%s", v->err);
        return v->rc;
    }
    /* Verified outside the write path: the failures that other tries
     * recorded meanwhile count as if they had come first (a guesser with
     * http.threads tries at once gains nothing by the last of them). */
    long by_name = count_failures(rw, "name", v->name, since);
    if (by_name < 0) {
        seterr(err, errcap, "users database: %s", sqlite3_errmsg(rw));
        return PV_EDB;
    }
    if (by_name >= PV_AUTH_MAX_FAILURES) {
        char after[PV_TIME_BUFSZ];
        retry_after(rw, "name", v->name, PV_AUTH_MAX_FAILURES, after);
        seterr(err, errcap,
               "too many failed logins for this user name in %d minutes; try "
               "again after %s (UTC)",
               PV_AUTH_WINDOW_S / 60, after);
        return PV_ELIMIT;
    }

    char tok[65], tokhash[65], csrf[65];
    random_hex(tok);
    random_hex(csrf);
    token_hash(tok, tokhash);
    rc = run(rw, "DELETE FROM login_failures WHERE name = ?1", v->name, NULL,
             NULL, err, errcap);
    if (!rc) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(rw,
                               "INSERT INTO sessions (token_sha256, user, "
                               "csrf, created_at, expires_at, last_seen) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = PV_EDB;
        } else {
            sqlite3_bind_text(st, 1, tokhash, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, v->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, csrf, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, expires, -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : PV_EDB;
            sqlite3_finalize(st);
        }
        if (rc)
            seterr(err, errcap, "users database: %s", sqlite3_errmsg(rw));
    }
    if (rc) {
        sodium_memzero(tok, sizeof tok);
        return rc;
    }
    memcpy(token, tok, 65);
    sodium_memzero(tok, sizeof tok);
    /* A verified name has at most PV_AUTH_MAX_NAME bytes. */
    snprintf(user->name, sizeof user->name, "%.*s", PV_AUTH_MAX_NAME, v->name);
    snprintf(user->role, sizeof user->role, "%s", v->role);
    memcpy(user->csrf, csrf, sizeof user->csrf);
    return 0;
}

int pv_auth_session(sqlite3 *db, const char *token, pv_web_user *user)
{
    return pv_auth_session_seen(db, token, user, NULL);
}

int pv_auth_session_seen(sqlite3 *db, const char *token, pv_web_user *user,
                         long *idle_s)
{
    if (idle_s)
        *idle_s = -1;
    if (user)
        memset(user, 0, sizeof *user);
    if (!db || !user || !token_shape_ok(token))
        return 1;
    char h[65], now[PV_TIME_BUFSZ];
    token_hash(token, h);
    iso_at(0, now);
    /* The lookup is by the token's hash: how long it takes tells nothing
     * about any token. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT s.user, u.role, s.csrf, s.last_seen "
                           "FROM sessions s "
                           "JOIN users u ON u.name = s.user "
                           "WHERE s.token_sha256 = ?1 AND s.expires_at > ?2 "
                           "AND u.disabled = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_text(st, 1, h, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), res = 1;
    if (step == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 0);
        const char *r = (const char *)sqlite3_column_text(st, 1);
        const char *c = (const char *)sqlite3_column_text(st, 2);
        if (n && r && c && strlen(n) < sizeof user->name &&
            strlen(r) < sizeof user->role && strlen(c) < sizeof user->csrf) {
            snprintf(user->name, sizeof user->name, "%s", n);
            snprintf(user->role, sizeof user->role, "%s", r);
            snprintf(user->csrf, sizeof user->csrf, "%s", c);
            res = 0;
            const char *seen = (const char *)sqlite3_column_text(st, 3);
            pv_time_t t;
            if (idle_s && seen && pv_time_parse(seen, strlen(seen), &t) == 0) {
                pv_time_t d = (pv_time_t)time(NULL) - t;
                *idle_s = d < 0 ? 0 : d > 0x7fffffff ? 0x7fffffff : (long)d;
            }
        }
    } else if (step != SQLITE_DONE) {
        res = PV_EDB;
    }
    sqlite3_finalize(st);
    return res;
}

int pv_auth_touch(sqlite3 *rw, const char *token)
{
    if (!rw || !token_shape_ok(token))
        return 0;
    char h[65], now[PV_TIME_BUFSZ];
    token_hash(token, h);
    iso_at(0, now);
    return run(rw, "UPDATE sessions SET last_seen = ?1 WHERE token_sha256 = ?2",
               now, h, NULL, NULL, 0);
}

int pv_auth_csrf_ok(const pv_web_user *u, const char *token)
{
    if (!u || !token)
        return 0;
    if (strnlen(token, 65) != 64 || strnlen(u->csrf, sizeof u->csrf) != 64)
        return 0;
    return sodium_memcmp(u->csrf, token, 64) == 0;
}

int pv_auth_logout(sqlite3 *rw, const char *token)
{
    if (!rw || !token_shape_ok(token))
        return 0;
    char h[65];
    token_hash(token, h);
    return run(rw, "DELETE FROM sessions WHERE token_sha256 = ?1", h, NULL,
               NULL, NULL, 0);
}

/* ---- user management ------------------------------------------------ */

static int hash_password(const char *password, int minimal_cost,
                         char out[crypto_pwhash_STRBYTES], char *err,
                         size_t errcap)
{
    if (sodium_init() < 0) {
        seterr(err, errcap, "libsodium could not start");
        return PV_EINVAL;
    }
    unsigned long long ops = minimal_cost ? crypto_pwhash_OPSLIMIT_MIN
                                          : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t mem = minimal_cost ? crypto_pwhash_MEMLIMIT_MIN
                              : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    if (crypto_pwhash_str(out, password, strlen(password), ops, mem) != 0) {
        seterr(err, errcap, "hashing the password failed (out of memory)");
        return PV_ENOMEM;
    }
    return 0;
}

/* sqlite3_changes after an UPDATE of one user: PV_ENOTFOUND when none. */
static int one_user_changed(sqlite3 *rw, const char *name, char *err,
                            size_t errcap)
{
    if (sqlite3_changes(rw) == 0) {
        seterr(err, errcap, "no user %s", name);
        return PV_ENOTFOUND;
    }
    return 0;
}

static int end_sessions(sqlite3 *rw, const char *name, char *err, size_t errcap)
{
    return run(rw, "DELETE FROM sessions WHERE user = ?1", name, NULL, NULL,
               err, errcap);
}

int pv_auth_user_add(sqlite3 *rw, const char *name, const char *role,
                     const char *password, char *err, size_t errcap)
{
    return pv_auth_user_add_cost(rw, name, role, password, 0, err, errcap);
}

int pv_auth_user_add_cost(sqlite3 *rw, const char *name, const char *role,
                          const char *password, int minimal_cost, char *err,
                          size_t errcap)
{
    int rc = pv_auth_name_ok(name, err, errcap);
    if (rc)
        return rc;
    if (!pv_auth_role_ok(role)) {
        seterr(err, errcap, "the role must be viewer, reviewer or admin");
        return PV_EINVAL;
    }
    if ((rc = pv_auth_password_ok(password, err, errcap)))
        return rc;
    char hash[crypto_pwhash_STRBYTES], now[PV_TIME_BUFSZ];
    if ((rc = hash_password(password, minimal_cost, hash, err, errcap)))
        return rc;
    iso_at(0, now);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(rw,
                           "INSERT INTO users (name, role, pwhash, "
                           "created_at) VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
        seterr(err, errcap, "users database: %s", sqlite3_errmsg(rw));
        return PV_EDB;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return 0;
    if (sqlite3_extended_errcode(rw) == SQLITE_CONSTRAINT_PRIMARYKEY) {
        seterr(err, errcap, "a user %s exists already", name);
        return PV_ESTATE;
    }
    seterr(err, errcap, "users database: %s", sqlite3_errmsg(rw));
    return PV_EDB;
}

int pv_auth_user_passwd(sqlite3 *rw, const char *name, const char *password,
                        char *err, size_t errcap)
{
    return pv_auth_user_passwd_cost(rw, name, password, 0, err, errcap);
}

int pv_auth_user_passwd_cost(sqlite3 *rw, const char *name,
                             const char *password, int minimal_cost, char *err,
                             size_t errcap)
{
    int rc = pv_auth_password_ok(password, err, errcap);
    if (rc)
        return rc;
    if (!name) {
        seterr(err, errcap, "no user name");
        return PV_EINVAL;
    }
    char hash[crypto_pwhash_STRBYTES];
    if ((rc = hash_password(password, minimal_cost, hash, err, errcap)))
        return rc;
    rc = run(rw, "UPDATE users SET pwhash = ?1 WHERE name = ?2", hash, name,
             NULL, err, errcap);
    if (!rc)
        rc = one_user_changed(rw, name, err, errcap);
    /* A new password ends the sessions the old one opened. */
    if (!rc)
        rc = end_sessions(rw, name, err, errcap);
    if (!rc)
        rc = run(rw, "DELETE FROM login_failures WHERE name = ?1", name, NULL,
                 NULL, err, errcap);
    return rc;
}

int pv_auth_user_disable(sqlite3 *rw, const char *name, int disabled, char *err,
                         size_t errcap)
{
    if (!name) {
        seterr(err, errcap, "no user name");
        return PV_EINVAL;
    }
    int rc = run(rw, "UPDATE users SET disabled = ?1 WHERE name = ?2",
                 disabled ? "1" : "0", name, NULL, err, errcap);
    if (!rc)
        rc = one_user_changed(rw, name, err, errcap);
    if (!rc && disabled)
        rc = end_sessions(rw, name, err, errcap);
    return rc;
}

int pv_auth_user_role(sqlite3 *rw, const char *name, const char *role,
                      char *err, size_t errcap)
{
    if (!pv_auth_role_ok(role)) {
        seterr(err, errcap, "the role must be viewer, reviewer or admin");
        return PV_EINVAL;
    }
    if (!name) {
        seterr(err, errcap, "no user name");
        return PV_EINVAL;
    }
    int rc = run(rw, "UPDATE users SET role = ?1 WHERE name = ?2", role, name,
                 NULL, err, errcap);
    if (!rc)
        rc = one_user_changed(rw, name, err, errcap);
    if (!rc)
        rc = end_sessions(rw, name, err, errcap);
    return rc;
}

int pv_auth_user_each(sqlite3 *db,
                      int (*fn)(const pv_auth_user_row *u, void *ud), void *ud)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, role, created_at, disabled FROM "
                           "users ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        pv_auth_user_row u;
        memset(&u, 0, sizeof u);
        const char *c[3];
        for (int i = 0; i < 3; i++)
            c[i] = (const char *)sqlite3_column_text(st, i);
        snprintf(u.name, sizeof u.name, "%s", c[0] ? c[0] : "");
        snprintf(u.role, sizeof u.role, "%s", c[1] ? c[1] : "");
        snprintf(u.created_at, sizeof u.created_at, "%s", c[2] ? c[2] : "");
        u.disabled = sqlite3_column_int(st, 3) != 0;
        if ((rc = fn(&u, ud)))
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = PV_EDB;
    sqlite3_finalize(st);
    return rc;
}
