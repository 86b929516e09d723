/* auth: the review console's users, roles, passwords and sessions (issue 16).
 *
 * Users live in the `users` table (migration 0010): a name, a role
 * (viewer | reviewer | admin), an argon2id password hash
 * (crypto_pwhash_str, libsodium's INTERACTIVE cost) and a disabled flag.
 * A login creates a session: a random 32-byte token (64 hex characters)
 * that the browser keeps in the cookie `pvwatch_session` (HttpOnly,
 * SameSite=Strict, Path=/; http.c sets it) and a random CSRF token that
 * every form carries. The database stores only the SHA-256 of the cookie
 * token, never the token itself.
 *
 * Login failures are recorded; after PV_AUTH_MAX_FAILURES failures for a
 * name, or from a client, within PV_AUTH_WINDOW_S seconds, login is refused
 * with PV_ELIMIT until the window passes. A success clears the name's
 * failures.
 *
 * Thread safety: no static mutable state. Every function works on the
 * connection it is given; the console calls these concurrently from
 * several threads, each with its own connection. Functions that write
 * (login, logout, user management) need a writable connection with a busy
 * timeout, which the caller supplies. */
#ifndef PV_AUTH_H
#define PV_AUTH_H

#include <sqlite3.h>
#include <stddef.h>

#include "web.h"

#define PV_AUTH_COOKIE "pvwatch_session"
#define PV_AUTH_MAX_FAILURES 5
#define PV_AUTH_WINDOW_S (15 * 60)
#define PV_AUTH_MIN_PASSWORD 10
#define PV_AUTH_MAX_PASSWORD 1024
#define PV_AUTH_MAX_NAME 63 /* pv_web_user.name holds 63 + NUL */
#define PV_AUTH_SESSION_HOURS_DEFAULT 12

/* sodium_init(); once per process before any other call (safe to call
 * again). 0, or PV_EINVAL if libsodium cannot start. */
int pv_auth_init(void);

/* Checks name/password and, on success, creates a session lasting
 * PV_AUTH_SESSION_HOURS_DEFAULT hours: writes the cookie token (64 hex +
 * NUL) to token and fills user (name, role, csrf). client identifies the
 * peer for rate limiting (an address; NULL or "" counts as "-").
 * Returns 0; PV_EAUTH for an unknown name, a wrong password or a disabled
 * user (one message for all, err says which only in general terms);
 * PV_ELIMIT when rate-limited; PV_EDB on a database error. */
int pv_auth_login(sqlite3 *rw, const char *name, const char *password,
                  const char *client, char token[65], pv_web_user *user,
                  char *err, size_t errcap);

/* pv_auth_login with a session lifetime in hours (config
 * http.session_hours; <= 0 means the default). */
int pv_auth_login_hours(sqlite3 *rw, const char *name, const char *password,
                        const char *client, int session_hours, char token[65],
                        pv_web_user *user, char *err, size_t errcap);

/* pv_auth_login_hours in two steps, for a caller whose writes go one at a
 * time (the console's write mutex): pv_auth_login_verify only reads (a
 * read-only connection will do) and runs the slow argon2id verification,
 * outside any lock; pv_auth_login_record then writes what it decided --
 * the session, or the failure row -- on the writable connection (and, for
 * a success, counts the name's failures again: tries verified at the same
 * time that failed count as having come first). verify returns v->rc (0,
 * PV_EAUTH, PV_ELIMIT, PV_EDB); record returns what pv_auth_login_hours
 * returns, and writes nothing for a try refused before any verification
 * (rate-limited, database error). */
typedef struct pv_auth_verdict {
    int rc;     /* 0: the password is right and the user enabled */
    int failed; /* a wrong name or password: record a failure */
    char name[PV_AUTH_MAX_NAME + 2]; /* the keys of the failure counts */
    char client[128];
    char role[16];
    char err[256];
} pv_auth_verdict;
int pv_auth_login_verify(sqlite3 *db, const char *name, const char *password,
                         const char *client, pv_auth_verdict *v);
int pv_auth_login_record(sqlite3 *rw, const pv_auth_verdict *v,
                         int session_hours, char token[65], pv_web_user *user,
                         char *err, size_t errcap);

/* Looks up a session by its cookie token. 0 and fills user (name, role,
 * csrf) when the token names an unexpired session of an enabled user;
 * 1 when there is none (unknown, expired, malformed, disabled user);
 * PV_EDB on a database error. Works on a read-only connection (it does
 * not update last_seen; see pv_auth_touch). */
int pv_auth_session(sqlite3 *db, const char *token, pv_web_user *user);

/* pv_auth_session, and *idle_s (NULL: not wanted) the seconds since the
 * session's last_seen (-1 when there is no session or no readable time). */
int pv_auth_session_seen(sqlite3 *db, const char *token, pv_web_user *user,
                         long *idle_s);

/* The console records a session's use (pv_auth_touch) at most this often:
 * a page never writes, but the first after a minute of the session's idle
 * time (sessions.last_seen: "last seen, to the minute"). */
#define PV_AUTH_TOUCH_S 60

/* Records that the session was used now (sessions.last_seen). 0 or
 * PV_EDB. Optional; needs a writable connection. */
int pv_auth_touch(sqlite3 *rw, const char *token);

/* 1 when token equals the session's CSRF token (constant time over the
 * 64 characters), 0 otherwise (NULL, empty, wrong length, different). */
int pv_auth_csrf_ok(const pv_web_user *u, const char *token);

/* Deletes the session of token (no error when there is none). 0 or
 * PV_EDB. */
int pv_auth_logout(sqlite3 *rw, const char *token);

/* ---- user management (pvwatch users) ---- */

/* 1 when role is viewer, reviewer or admin. */
int pv_auth_role_ok(const char *role);

/* 0 when name is a valid user name (1..63 bytes, no spaces or control
 * characters); else PV_EINVAL with the reason in err. */
int pv_auth_name_ok(const char *name, char *err, size_t errcap);

/* 0 when password is acceptable (PV_AUTH_MIN_PASSWORD..MAX bytes); else
 * PV_EINVAL with the reason in err. */
int pv_auth_password_ok(const char *password, char *err, size_t errcap);

/* Adds a user. PV_EINVAL (bad name/role/password), PV_ESTATE (the name
 * exists), PV_EDB. */
int pv_auth_user_add(sqlite3 *rw, const char *name, const char *role,
                     const char *password, char *err, size_t errcap);

/* Sets a user's password (and clears the name's login failures). */
int pv_auth_user_passwd(sqlite3 *rw, const char *name, const char *password,
                        char *err, size_t errcap);

/* Disables (disabled = 1) or re-enables (0) a user; disabling ends the
 * user's sessions. PV_ENOTFOUND when there is no such user. */
int pv_auth_user_disable(sqlite3 *rw, const char *name, int disabled, char *err,
                         size_t errcap);

/* Changes a user's role; ends the user's sessions so the new role applies
 * at the next login. */
int pv_auth_user_role(sqlite3 *rw, const char *name, const char *role,
                      char *err, size_t errcap);

/* pv_auth_user_add / pv_auth_user_passwd with an explicit argon2id cost:
 * minimal_cost 0 is the production cost (crypto_pwhash OPSLIMIT and
 * MEMLIMIT _INTERACTIVE: 2 passes over 64 MiB); 1 is crypto_pwhash's
 * minimum, for unit tests under valgrind only. pvwatch itself always
 * passes 0 (through the functions above). */
int pv_auth_user_add_cost(sqlite3 *rw, const char *name, const char *role,
                          const char *password, int minimal_cost, char *err,
                          size_t errcap);
int pv_auth_user_passwd_cost(sqlite3 *rw, const char *name,
                             const char *password, int minimal_cost, char *err,
                             size_t errcap);

/* One user as 'pvwatch users list' shows it (never the hash). */
typedef struct pv_auth_user_row {
    char name[64];
    char role[16];
    char created_at[32];
    int disabled;
} pv_auth_user_row;

/* Calls fn for each user in name order; stops at fn's first non-zero
 * return and returns it. 0, or PV_EDB. */
int pv_auth_user_each(sqlite3 *db,
                      int (*fn)(const pv_auth_user_row *u, void *ud), void *ud);

#endif
