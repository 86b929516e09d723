/* config: the Lua configuration file, read into a typed struct.
 *
 * The file is evaluated in an empty sandbox (no libraries, an instruction
 * cap) and may only set the globals documented in DESIGN.md
 * ("Configuration"); every key has a type, a default and bounds, and an
 * unknown key is an error naming the file and line. Relative paths are made
 * relative to the config file's directory. Without a file, the built-in
 * defaults apply, with ./plugins and ./scripts when they exist, else the
 * installed or source-tree rule pack. Calls Lua and buf; nothing else. */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stddef.h>

#include "buf.h"

typedef struct pv_strlist {
    char **items;
    size_t count;
} pv_strlist;

typedef struct pv_email_route {
    pv_strlist to;
    char *min_severity; /* NULL = any */
    pv_strlist signals; /* empty = any */
    int exclusive;      /* matching alerts go to this route only */
} pv_email_route;

/* csv.layouts[] (issue 15 item 11; csv_layout.h): files whose name
 * matches 'match' are read as 'kind', keys[i] (a column of that kind) being
 * in the header column heads[i]. */
typedef struct pv_csv_layout_cfg {
    char *match;
    char *kind;
    char *time_format; /* NULL: ISO 8601 or HL7 TS */
    pv_strlist keys, heads;
} pv_csv_layout_cfg;

typedef struct pv_config {
    char *path; /* the file read, or NULL for built-in defaults */
    char *database;
    /* database.walbuf (database = { path = ..., walbuf = false }): open
     * the writer's connection with the WAL-gathering VFS (walbuf.h).
     * Default 1; read at open, so a SIGHUP does not change it. */
    int walbuf;
    pv_strlist plugins;
    pv_strlist scripts;
    char *alert_log; /* "-" = stdout */
    /* log_format "text" | "json", log_level "error" | "warning" | "info" |
     * "debug" (issue 21 part 2; log.h): NULL when the file does not say
     * (PVWATCH_LOG_FORMAT, else text; info). */
    char *log_format;
    char *log_level;
    struct {
        char *listen;
        long max_message;
        double idle_timeout;
        long max_connections;
        char *assigning_authority; /* PID-3 authority to prefer, or NULL */
        /* A control id reused with other content (issue 15 item 6):
         * "reject" (NULL, the default: AE and an engine alert) or
         * "by_content" (stored as a new message). */
        char *duplicates;
        /* Bytes of ACKs a connection may have waiting for its peer to read
         * them: at max_pending_ack_bytes pvwatch stops reading it (resumes
         * at half); past max_pending_ack_bytes_hard it closes it. */
        long max_pending_ack_bytes;
        long max_pending_ack_bytes_hard;
    } mllp;
    struct {
        char *path;
        double rescan_interval; /* seconds */
        double settle;          /* a file unchanged this long is complete */
        /* Whose files the inbox takes, besides pvwatch's own user and
         * root: uids (inbox.owners, names resolved at load). */
        long *owners;
        size_t nowners;
        int allow_any_owner; /* inbox.allow_any_owner: any owner at all */
    } inbox;
    pv_strlist tail;
    struct {
        pv_csv_layout_cfg *layouts;
        size_t nlayouts;
    } csv;
    struct {
        int enabled;
        char *url;
        char *dir;
        char *from;
        pv_strlist to;
        char *min_severity;
        char *username;
        char *password_env;
        char *password_file;
        char *tls;    /* "starttls", "implicit" (smtps), "none" */
        int insecure; /* skip certificate checks (tests only) */
        double timeout;
        long max_attempts;
        double retry_base, retry_cap;
        double digest_interval; /* seconds; 0 = no digest */
        char *digest_severity;  /* at or below this go to the digest */
        /* email.digest (issue 21 part 2): a summary of the open alerts per
         * signal, mailed once per period (notify.c, queue_open_digest).
         * Periods are [anchor + k * every, anchor + (k + 1) * every). */
        struct {
            int enabled;
            long every;         /* seconds: 86400 daily, 604800 weekly, N */
            long anchor;        /* a boundary (Unix time): at, weekday */
            char *every_text;   /* "daily", "weekly" or "N s", for check */
            char *at;           /* as written ("08:00", "mon 08:00"); NULL */
            pv_strlist signals; /* empty = every signal */
            int *signal_lines;  /* the config line of each (0: unknown) */
            char *severity;     /* at or above this; default "low" */
            pv_strlist to;      /* empty = email.to */
            int send_empty;     /* mail "no open alerts" too */
            long newest;        /* newest open alerts listed per signal */
        } digest;
        pv_email_route *routes;
        size_t nroutes;
    } email;
    struct {
        double washout_days;
        long rituximab_days; /* days after the last dose; default 183 */
    } exposure;
    struct {
        /* 'alerts ack/close --by NAME' may name someone other than the
         * login (recorded "entered by LOGIN on behalf of NAME"). */
        int allow_by;
    } audit;
    struct {
        char *indication; /* ra | aa | covid19 */
        char *region;     /* us | eu */
    } label;
    struct {
        long rule_instructions;
        long rule_memory;
        long rule_time_ms; /* wall-clock limit of one rule call */
    } limits;
    /* The review console (issue 16; http.h): off unless the file has an
     * http table. */
    struct {
        int enabled;
        char *listen;       /* HOST:PORT, default 127.0.0.1:8080 */
        long threads;       /* libmicrohttpd's pool; 0: min(4, cores) */
        long session_hours; /* a login lasts this long, default 12 */
    } http;
} pv_config;

/* Loads the configuration. path NULL means "pvwatch.lua in the working
 * directory if present, else defaults". On error returns PV_EINVAL (or
 * PV_EIO for an unreadable file) with one "FILE:LINE: reason" line per
 * problem appended to errors; cfg is then still safe to free. */
int pv_config_load(const char *path, pv_config *cfg, pv_buf *errors);
void pv_config_free(pv_config *cfg);

/* A warning for people (not an error): e.g. MLLP listening beyond
 * loopback. Appends lines to out; returns how many. */
int pv_config_warnings(const pv_config *cfg, pv_buf *out);

/* What 'pvwatch check' judges beyond the file itself (issue 21 part 2):
 * the paths 'run' needs -- the database's and the alert log's directories
 * exist and are writable, the inbox is (or can be made) a directory, a
 * tailed file's directory exists, email.dir, a readable password_file.
 * Appends one "CONFIG: KEY PATH: reason" line per problem; returns how
 * many. */
int pv_config_check_paths(const pv_config *cfg, pv_buf *out);

void pv_strlist_free(pv_strlist *l);
int pv_strlist_add(pv_strlist *l, const char *s);

#endif
