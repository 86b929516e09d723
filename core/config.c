/* config.c: see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv_layout.h"
#include "error.h"
#include "map.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_INSTRUCTIONS 10000000
/* A configuration is a few lines; these bound what a mistaken (or hostile)
 * file can cost 'pvwatch check' and start-up: the Lua memory it may use,
 * the entries of one list (a sparse table such as {[1]=..., [2^40]=...}
 * has a length of 2^40), and the error lines reported. */
#define CONFIG_MAX_MEMORY ((size_t)64 << 20)
#define CONFIG_MAX_LIST 10000
#define CONFIG_MAX_ERRORS 100

/* What we know while checking one file. */
struct ctx {
    lua_State *L;
    const char *file;   /* as the user named it */
    const char *source; /* its text, for finding a key's line */
    char *dir;          /* directory relative paths start from */
    pv_buf *errors;
    int nerr;
};

void pv_strlist_free(pv_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

int pv_strlist_add(pv_strlist *l, const char *s)
{
    char **n = realloc(l->items, (l->count + 1) * sizeof *n);
    if (!n)
        return PV_ENOMEM;
    l->items = n;
    if (!(n[l->count] = strdup(s)))
        return PV_ENOMEM;
    l->count++;
    return 0;
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The line of the first "name =" at the start of a line at brace depth 0,
 * else 0: a nested key of the same name (inbox = { path = ... }) is not
 * the global. Quoted strings and -- comments are skipped when counting
 * braces; long brackets are rare in a configuration and not understood. */
static int key_line(const char *src, const char *name)
{
    if (!src)
        return 0;
    size_t n = strlen(name);
    int line = 1, depth = 0;
    for (const char *p = src; *p; p++) {
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (depth == 0 && strncmp(q, name, n) == 0) {
            const char *r = q + n;
            while (*r == ' ' || *r == '\t')
                r++;
            if (*r == '=' && r[1] != '=')
                return line;
        }
        char quote = 0;
        for (; *p && *p != '\n'; p++) {
            if (quote) {
                if (*p == '\\' && p[1] && p[1] != '\n')
                    p++;
                else if (*p == quote)
                    quote = 0;
            } else if (*p == '"' || *p == '\'') {
                quote = *p;
            } else if (p[0] == '-' && p[1] == '-') {
                while (p[1] && p[1] != '\n')
                    p++;
            } else if (*p == '{') {
                depth++;
            } else if (*p == '}') {
                depth--;
            }
        }
        if (!*p)
            break;
        line++;
    }
    return 0;
}

static void cfg_error(struct ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfg_error(struct ctx *c, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (++c->nerr > CONFIG_MAX_ERRORS)
        return;
    int line = key ? key_line(c->source, key) : 0;
    if (line)
        pv_buf_printf(c->errors, "%s:%d: %s\n", c->file, line, msg);
    else
        pv_buf_printf(c->errors, "%s: %s\n", c->file, msg);
}

/* The length of the list at the top of the stack, or -1 (reported) when
 * it has more than CONFIG_MAX_LIST entries. */
static lua_Integer list_len(struct ctx *c, const char *key, const char *label)
{
    lua_Integer n = luaL_len(c->L, -1);
    if (n < 0 || n > CONFIG_MAX_LIST) {
        cfg_error(c, key, "%s has more than %d entries", label,
                  CONFIG_MAX_LIST);
        return -1;
    }
    return n;
}

/* Makes p absolute against the config directory unless it already is. */
static char *resolve(const char *dir, const char *p)
{
    if (!dir || p[0] == '/' || strcmp(p, "-") == 0 || strstr(p, "://"))
        return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *r = malloc(n);
    if (r)
        snprintf(r, n, "%s/%s", dir, p);
    return r;
}

static void set_path(struct ctx *c, char **dst, const char *v)
{
    free(*dst);
    *dst = resolve(c->dir, v);
}

/* Reads the value at the top of the stack as a string; pops it. */
static int want_string(struct ctx *c, const char *key, const char *label,
                       char **dst, int is_path)
{
    int ok = lua_type(c->L, -1) == LUA_TSTRING;
    if (!ok)
        cfg_error(c, key, "%s must be a string, not %s", label,
                  luaL_typename(c->L, -1));
    else if (is_path)
        set_path(c, dst, lua_tostring(c->L, -1));
    else
        set_str(dst, lua_tostring(c->L, -1));
    lua_pop(c->L, 1);
    return ok;
}

static int want_number(struct ctx *c, const char *key, const char *label,
                       double lo, double hi, double *dst)
{
    /* Only real numbers: a string such as "10" is a mistake to report. */
    int isnum = lua_type(c->L, -1) == LUA_TNUMBER;
    double v = isnum ? lua_tonumber(c->L, -1) : 0;
    lua_pop(c->L, 1);
    if (!isnum) {
        cfg_error(c, key, "%s must be a number", label);
        return 0;
    }
    if (!(v >= lo && v <= hi) || isnan(v)) {
        cfg_error(c, key, "%s must be between %g and %g, not %g", label, lo, hi,
                  v);
        return 0;
    }
    *dst = v;
    return 1;
}

static int want_long(struct ctx *c, const char *key, const char *label,
                     double lo, double hi, long *dst)
{
    double v;
    if (!want_number(c, key, label, lo, hi, &v))
        return 0;
    if (v != floor(v)) {
        cfg_error(c, key, "%s must be a whole number", label);
        return 0;
    }
    *dst = (long)v;
    return 1;
}

/* A string or a list of strings; pops it. */
static void want_strlist(struct ctx *c, const char *key, const char *label,
                         pv_strlist *dst, int is_path)
{
    lua_State *L = c->L;
    pv_strlist_free(dst);
    if (lua_type(L, -1) == LUA_TSTRING) {
        char *p = is_path ? resolve(c->dir, lua_tostring(L, -1))
                          : strdup(lua_tostring(L, -1));
        if (p)
            pv_strlist_add(dst, p);
        free(p);
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1)) {
        cfg_error(c, key, "%s must be a string or a list of strings", label);
        lua_pop(L, 1);
        return;
    }
    lua_Integer n = list_len(c, key, label);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        if (lua_type(L, -1) != LUA_TSTRING) {
            cfg_error(c, key, "%s[%lld] must be a string", label, (long long)i);
        } else {
            char *p = is_path ? resolve(c->dir, lua_tostring(L, -1))
                              : strdup(lua_tostring(L, -1));
            if (p)
                pv_strlist_add(dst, p);
            free(p);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return 1;
    return 0;
}

static const char *const severities[] = {"low", "medium", "high", "critical",
                                         NULL};

/* Iterates the table at the top of the stack, calling field() for each
 * string key; other keys are errors. Pops the table. */
typedef void (*field_fn)(struct ctx *c, const char *top, const char *name,
                         pv_config *cfg);

static void each_field(struct ctx *c, const char *top, pv_config *cfg,
                       field_fn field)
{
    lua_State *L = c->L;
    if (!lua_istable(L, -1)) {
        cfg_error(c, top, "%s must be a table", top);
        lua_pop(L, 1);
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            cfg_error(c, top, "%s has a key that is not a name", top);
            lua_pop(L, 1);
            continue;
        }
        const char *name = lua_tostring(L, -2);
        /* field() pops the value. */
        field(c, top, name, cfg);
    }
    lua_pop(L, 1);
}

static void unknown(struct ctx *c, const char *top, const char *name)
{
    cfg_error(c, top, "unknown key '%s.%s'", top, name);
    lua_pop(c->L, 1);
}

static void mllp_field(struct ctx *c, const char *top, const char *name,
                       pv_config *cfg)
{
    if (!strcmp(name, "listen"))
        want_string(c, top, "mllp.listen", &cfg->mllp.listen, 0);
    else if (!strcmp(name, "max_message"))
        want_long(c, top, "mllp.max_message", 1024, 1 << 30,
                  &cfg->mllp.max_message);
    else if (!strcmp(name, "idle_timeout"))
        want_number(c, top, "mllp.idle_timeout", 0.01, 86400,
                    &cfg->mllp.idle_timeout);
    else if (!strcmp(name, "max_connections"))
        want_long(c, top, "mllp.max_connections", 1, 100000,
                  &cfg->mllp.max_connections);
    else if (!strcmp(name, "assigning_authority"))
        want_string(c, top, "mllp.assigning_authority",
                    &cfg->mllp.assigning_authority, 0);
    else if (!strcmp(name, "duplicates")) {
        static const char *const dups[] = {"reject", "by_content", NULL};
        if (want_string(c, top, "mllp.duplicates", &cfg->mllp.duplicates, 0) &&
            !one_of(cfg->mllp.duplicates, dups))
            cfg_error(c, top,
                      "mllp.duplicates '%s' is not one of reject, by_content",
                      cfg->mllp.duplicates);
    } else if (!strcmp(name, "max_pending_ack_bytes"))
        want_long(c, top, "mllp.max_pending_ack_bytes", 4096, 1 << 30,
                  &cfg->mllp.max_pending_ack_bytes);
    else if (!strcmp(name, "max_pending_ack_bytes_hard"))
        want_long(c, top, "mllp.max_pending_ack_bytes_hard", 4096, 1 << 30,
                  &cfg->mllp.max_pending_ack_bytes_hard);
    else
        unknown(c, top, name);
}

/* inbox.owners = { "dropper", 1001 }: user names (resolved now, so that
 * 'pvwatch check' names one that does not exist) or uids; pops it. */
static void inbox_owners(struct ctx *c, const char *top, pv_config *cfg)
{
    lua_State *L = c->L;
    free(cfg->inbox.owners);
    cfg->inbox.owners = NULL;
    cfg->inbox.nowners = 0;
    if (!lua_istable(L, -1)) {
        cfg_error(c, top, "inbox.owners must be a list of user names or uids");
        lua_pop(L, 1);
        return;
    }
    lua_Integer n = list_len(c, top, "inbox.owners");
    if (n > 0)
        cfg->inbox.owners = calloc((size_t)n, sizeof *cfg->inbox.owners);
    for (lua_Integer i = 1; cfg->inbox.owners && i <= n; i++) {
        lua_geti(L, -1, i);
        long uid = -1;
        if (lua_type(L, -1) == LUA_TSTRING) {
            struct passwd *pw = getpwnam(lua_tostring(L, -1));
            if (pw)
                uid = (long)pw->pw_uid;
            else
                cfg_error(c, top, "inbox.owners[%lld]: no user named '%s'",
                          (long long)i, lua_tostring(L, -1));
        } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 &&
                   lua_tointeger(L, -1) <= 0x7fffffff) {
            uid = (long)lua_tointeger(L, -1);
        } else {
            cfg_error(c, top, "inbox.owners[%lld] must be a user name or a uid",
                      (long long)i);
        }
        if (uid >= 0)
            cfg->inbox.owners[cfg->inbox.nowners++] = uid;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void inbox_field(struct ctx *c, const char *top, const char *name,
                        pv_config *cfg)
{
    if (!strcmp(name, "path"))
        want_string(c, top, "inbox.path", &cfg->inbox.path, 1);
    else if (!strcmp(name, "rescan_interval"))
        want_number(c, top, "inbox.rescan_interval", 0.05, 3600,
                    &cfg->inbox.rescan_interval);
    else if (!strcmp(name, "settle"))
        want_number(c, top, "inbox.settle", 0, 3600, &cfg->inbox.settle);
    else if (!strcmp(name, "owners"))
        inbox_owners(c, top, cfg);
    else if (!strcmp(name, "allow_any_owner")) {
        if (lua_type(c->L, -1) != LUA_TBOOLEAN)
            cfg_error(c, top, "inbox.allow_any_owner must be true or false");
        else
            cfg->inbox.allow_any_owner = lua_toboolean(c->L, -1);
        lua_pop(c->L, 1);
    } else
        unknown(c, top, name);
}

static void exposure_field(struct ctx *c, const char *top, const char *name,
                           pv_config *cfg)
{
    if (!strcmp(name, "washout_days"))
        want_number(c, top, "exposure.washout_days", 0, 3650,
                    &cfg->exposure.washout_days);
    else if (!strcmp(name, "rituximab_days"))
        /* How long after its last dose rituximab still counts for
         * baricitinib.combination (B-cell depletion; issue 14). */
        want_long(c, top, "exposure.rituximab_days", 1, 3650,
                  &cfg->exposure.rituximab_days);
    else
        unknown(c, top, name);
}

/* audit = { allow_by = true } (issue 21 part 2: the signed trail). */
static void audit_field(struct ctx *c, const char *top, const char *name,
                        pv_config *cfg)
{
    if (strcmp(name, "allow_by")) {
        unknown(c, top, name);
        return;
    }
    if (lua_type(c->L, -1) != LUA_TBOOLEAN)
        cfg_error(c, top, "audit.allow_by must be true or false");
    else
        cfg->audit.allow_by = lua_toboolean(c->L, -1);
    lua_pop(c->L, 1);
}

static void label_field(struct ctx *c, const char *top, const char *name,
                        pv_config *cfg)
{
    static const char *const ind[] = {"ra", "aa", "covid19", NULL};
    static const char *const reg[] = {"us", "eu", NULL};
    char **dst = NULL;
    const char *const *allowed = NULL;
    if (!strcmp(name, "indication")) {
        dst = &cfg->label.indication;
        allowed = ind;
    } else if (!strcmp(name, "region")) {
        dst = &cfg->label.region;
        allowed = reg;
    } else {
        unknown(c, top, name);
        return;
    }
    char label[64];
    snprintf(label, sizeof label, "label.%s", name);
    if (want_string(c, top, label, dst, 0) && !one_of(*dst, allowed))
        cfg_error(c, top, "label.%s '%s' is not one of %s", name, *dst,
                  allowed == ind ? "ra, aa, covid19" : "us, eu");
}

static void limits_field(struct ctx *c, const char *top, const char *name,
                         pv_config *cfg)
{
    if (!strcmp(name, "rule_instructions"))
        want_long(c, top, "limits.rule_instructions", 1000, 1e12,
                  &cfg->limits.rule_instructions);
    else if (!strcmp(name, "rule_memory"))
        want_long(c, top, "limits.rule_memory", 64 * 1024, 1e12,
                  &cfg->limits.rule_memory);
    else if (!strcmp(name, "rule_time_ms"))
        want_long(c, top, "limits.rule_time_ms", 10, 600000,
                  &cfg->limits.rule_time_ms);
    else
        unknown(c, top, name);
}

/* http = { listen, threads, session_hours } (issue 16; http.h). */
static void http_field(struct ctx *c, const char *top, const char *name,
                       pv_config *cfg)
{
    if (!strcmp(name, "listen"))
        want_string(c, top, "http.listen", &cfg->http.listen, 0);
    else if (!strcmp(name, "threads"))
        want_long(c, top, "http.threads", 1, 64, &cfg->http.threads);
    else if (!strcmp(name, "session_hours"))
        want_long(c, top, "http.session_hours", 1, 24 * 31,
                  &cfg->http.session_hours);
    else
        unknown(c, top, name);
}

static void check_severity(struct ctx *c, const char *top, const char *label,
                           const char *v)
{
    if (v && !one_of(v, severities))
        cfg_error(c, top, "%s '%s' is not one of low, medium, high, critical",
                  label, v);
}

static void route_field(struct ctx *c, const char *top, const char *name,
                        pv_email_route *r)
{
    if (!strcmp(name, "to")) {
        want_strlist(c, top, "email.routes[].to", &r->to, 0);
    } else if (!strcmp(name, "min_severity")) {
        if (want_string(c, top, "email.routes[].min_severity", &r->min_severity,
                        0))
            check_severity(c, top, "email.routes[].min_severity",
                           r->min_severity);
    } else if (!strcmp(name, "signals")) {
        want_strlist(c, top, "email.routes[].signals", &r->signals, 0);
    } else if (!strcmp(name, "exclusive")) {
        if (lua_type(c->L, -1) != LUA_TBOOLEAN)
            cfg_error(c, top, "email.routes[].exclusive must be true or false");
        r->exclusive = lua_toboolean(c->L, -1);
        lua_pop(c->L, 1);
    } else if (!strcmp(name, "continue")) {
        /* Alertmanager's word, with the opposite default: say it once. */
        cfg_error(c, top,
                  "unknown key 'email.routes[].continue': every route adds "
                  "its recipients to email.to; to send matching alerts "
                  "only to this route, write exclusive = true");
        lua_pop(c->L, 1);
    } else {
        unknown(c, top, name);
    }
}

static void email_routes(struct ctx *c, const char *top, pv_config *cfg)
{
    lua_State *L = c->L;
    if (!lua_istable(L, -1)) {
        cfg_error(c, top, "email.routes must be a list of tables");
        lua_pop(L, 1);
        return;
    }
    lua_Integer n = list_len(c, top, "email.routes");
    cfg->email.routes = calloc(n > 0 ? (size_t)n : 1, sizeof(pv_email_route));
    if (!cfg->email.routes) {
        lua_pop(L, 1);
        return;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        pv_email_route *r = &cfg->email.routes[cfg->email.nroutes++];
        lua_geti(L, -1, i);
        if (!lua_istable(L, -1)) {
            cfg_error(c, top, "email.routes[%lld] must be a table",
                      (long long)i);
            lua_pop(L, 1);
            continue;
        }
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                cfg_error(c, top, "email.routes[%lld] has a bad key",
                          (long long)i);
                lua_pop(L, 1);
                continue;
            }
            route_field(c, top, lua_tostring(L, -2), r);
        }
        lua_pop(L, 1);
        if (r->to.count == 0)
            cfg_error(c, top, "email.routes[%lld] needs 'to'", (long long)i);
    }
    lua_pop(L, 1);
}

/* The line of the first quoted "text" (or 'text') after the first
 * "digest" in the source, else 0: where a digest signal was written. */
static int quoted_line(const char *src, const char *text)
{
    if (!src)
        return 0;
    const char *from = strstr(src, "digest");
    size_t n = strlen(text);
    for (int pass = 0; pass < 2; pass++) {
        for (const char *p = pass ? src : from; p && *p; p++) {
            if ((*p == '"' || *p == '\'') && !strncmp(p + 1, text, n) &&
                p[n + 1] == *p) {
                int line = 1;
                for (const char *q = src; q < p; q++)
                    line += *q == '\n';
                return line;
            }
        }
    }
    return 0;
}

/* "HH:MM" -> seconds after midnight, or -1. */
static long parse_hhmm(const char *s)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    long h = (s[0] - '0') * 10 + (s[1] - '0');
    long m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    return h * 3600 + m * 60;
}

/* email.digest = { every = "daily"|"weekly"|SECONDS, at = "08:00" (weekly:
 * also "mon 08:00"), signals, severity, to, send_empty, newest } (issue 21
 * part 2; docs/operations.md "Digest of open alerts"). Signal names are
 * judged against the rule pack by 'pvwatch check'
 * (pv_notify_check_digest). */
static void digest_field(struct ctx *c, const char *top, const char *name,
                         pv_config *cfg)
{
    lua_State *L = c->L;
    if (!strcmp(name, "every")) {
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *v = lua_tostring(L, -1);
            if (!strcmp(v, "daily") || !strcmp(v, "weekly")) {
                cfg->email.digest.every = v[0] == 'd' ? 86400 : 7 * 86400;
                set_str(&cfg->email.digest.every_text, v);
            } else {
                cfg_error(c, top,
                          "email.digest.every '%s' is not \"daily\", "
                          "\"weekly\" or a number of seconds",
                          v);
            }
            lua_pop(L, 1);
        } else {
            long v = 0;
            if (want_long(c, top, "email.digest.every", 1, 366.0 * 86400, &v)) {
                char text[64];
                snprintf(text, sizeof text, "every %ld s", v);
                cfg->email.digest.every = v;
                set_str(&cfg->email.digest.every_text, text);
            }
        }
    } else if (!strcmp(name, "at")) {
        want_string(c, top, "email.digest.at", &cfg->email.digest.at, 0);
    } else if (!strcmp(name, "signals")) {
        want_strlist(c, top, "email.digest.signals", &cfg->email.digest.signals,
                     0);
    } else if (!strcmp(name, "severity")) {
        if (want_string(c, top, "email.digest.severity",
                        &cfg->email.digest.severity, 0))
            check_severity(c, top, "email.digest.severity",
                           cfg->email.digest.severity);
    } else if (!strcmp(name, "to")) {
        want_strlist(c, top, "email.digest.to", &cfg->email.digest.to, 0);
    } else if (!strcmp(name, "send_empty")) {
        if (lua_type(L, -1) != LUA_TBOOLEAN)
            cfg_error(c, top, "email.digest.send_empty must be true or false");
        else
            cfg->email.digest.send_empty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    } else if (!strcmp(name, "newest")) {
        want_long(c, top, "email.digest.newest", 0, 1000,
                  &cfg->email.digest.newest);
    } else {
        cfg_error(c, top, "unknown key 'email.digest.%s'", name);
        lua_pop(L, 1);
    }
}

static void email_digest(struct ctx *c, const char *top, pv_config *cfg)
{
    lua_State *L = c->L;
    if (!lua_istable(L, -1)) {
        cfg_error(c, top,
                  "email.digest must be a table (every = \"daily\", "
                  "...)");
        lua_pop(L, 1);
        return;
    }
    int before = c->nerr;
    cfg->email.digest.enabled = 1;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            cfg_error(c, top, "email.digest has a key that is not a name");
            lua_pop(L, 1);
            continue;
        }
        char key[64];
        snprintf(key, sizeof key, "%s", lua_tostring(L, -2));
        digest_field(c, top, key, cfg);
    }
    lua_pop(L, 1);
    if (c->nerr != before)
        return;
    long every = cfg->email.digest.every;
    if (!every) {
        cfg_error(c, top,
                  "email.digest needs 'every' (\"daily\", \"weekly\" or a "
                  "number of seconds)");
        return;
    }
    /* Boundaries: daily at 'at' UTC; weekly on Monday (1970-01-05 was
     * one) or the day 'at' names; N seconds from the epoch. */
    long anchor = 0;
    const char *at = cfg->email.digest.at;
    const char *ev = cfg->email.digest.every_text;
    int weekly = ev && !strcmp(ev, "weekly");
    int daily = ev && !strcmp(ev, "daily");
    if (weekly)
        anchor = 4 * 86400L;
    if (at && !daily && !weekly) {
        cfg_error(c, top,
                  "email.digest.at needs every = \"daily\" or \"weekly\" "
                  "(with a number of seconds, digests go at multiples of "
                  "it since 1970-01-01 00:00 UTC)");
    } else if (at) {
        static const char *const days[] = {"monday",   "tuesday", "wednesday",
                                           "thursday", "friday",  "saturday",
                                           "sunday"};
        const char *hm = at;
        long day = 0;
        const char *sp = strchr(at, ' ');
        int ok = 1;
        if (sp) {
            size_t wl = (size_t)(sp - at);
            ok = 0;
            for (long d = 0; d < 7 && !ok; d++)
                if ((wl == 3 || wl == strlen(days[d])) &&
                    !strncasecmp(at, days[d], wl)) {
                    day = d;
                    ok = 1;
                }
            hm = sp + 1;
        }
        long off = parse_hhmm(hm);
        pv_buf shown = PV_BUF_INIT;
        if (!ok || off < 0)
            cfg_error(c, top,
                      "email.digest.at '%s' is not a time \"HH:MM\" (UTC, "
                      "00:00 to 23:59)%s",
                      pv_buf_escape(&shown, at),
                      weekly ? " or a day and a time (\"mon 08:00\")" : "");
        else if (sp && !weekly)
            cfg_error(c, top,
                      "email.digest.at '%s' names a day: only with every = "
                      "\"weekly\"",
                      pv_buf_escape(&shown, at));
        else
            anchor += day * 86400 + off;
        pv_buf_free(&shown);
    }
    cfg->email.digest.anchor = anchor;
    size_t ns = cfg->email.digest.signals.count;
    cfg->email.digest.signal_lines = calloc(ns ? ns : 1, sizeof(int));
    for (size_t i = 0; i < ns; i++) {
        const char *sig = cfg->email.digest.signals.items[i];
        if (cfg->email.digest.signal_lines)
            cfg->email.digest.signal_lines[i] = quoted_line(c->source, sig);
        if (!*sig)
            cfg_error(c, top, "email.digest.signals[%zu] is empty", i + 1);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sig, cfg->email.digest.signals.items[j]))
                cfg_error(c, top, "email.digest.signals names '%s' twice", sig);
    }
}

static void email_field(struct ctx *c, const char *top, const char *name,
                        pv_config *cfg)
{
    static const char *const tls[] = {"starttls", "implicit", "none", NULL};
    if (!strcmp(name, "url")) {
        want_string(c, top, "email.url", &cfg->email.url, 0);
    } else if (!strcmp(name, "dir")) {
        want_string(c, top, "email.dir", &cfg->email.dir, 1);
    } else if (!strcmp(name, "from")) {
        want_string(c, top, "email.from", &cfg->email.from, 0);
    } else if (!strcmp(name, "to")) {
        want_strlist(c, top, "email.to", &cfg->email.to, 0);
    } else if (!strcmp(name, "min_severity")) {
        if (want_string(c, top, "email.min_severity", &cfg->email.min_severity,
                        0))
            check_severity(c, top, "email.min_severity",
                           cfg->email.min_severity);
    } else if (!strcmp(name, "username")) {
        want_string(c, top, "email.username", &cfg->email.username, 0);
    } else if (!strcmp(name, "password_env")) {
        want_string(c, top, "email.password_env", &cfg->email.password_env, 0);
    } else if (!strcmp(name, "password_file")) {
        want_string(c, top, "email.password_file", &cfg->email.password_file,
                    1);
    } else if (!strcmp(name, "tls")) {
        if (want_string(c, top, "email.tls", &cfg->email.tls, 0) &&
            !one_of(cfg->email.tls, tls))
            cfg_error(c, top,
                      "email.tls '%s' is not one of starttls, "
                      "implicit, none",
                      cfg->email.tls);
    } else if (!strcmp(name, "insecure")) {
        cfg->email.insecure = lua_toboolean(c->L, -1);
        lua_pop(c->L, 1);
    } else if (!strcmp(name, "timeout")) {
        want_number(c, top, "email.timeout", 0.1, 3600, &cfg->email.timeout);
    } else if (!strcmp(name, "max_attempts")) {
        want_long(c, top, "email.max_attempts", 1, 1000,
                  &cfg->email.max_attempts);
    } else if (!strcmp(name, "retry_base")) {
        want_number(c, top, "email.retry_base", 0.01, 86400,
                    &cfg->email.retry_base);
    } else if (!strcmp(name, "retry_cap")) {
        want_number(c, top, "email.retry_cap", 0.01, 7 * 86400,
                    &cfg->email.retry_cap);
    } else if (!strcmp(name, "digest_interval")) {
        want_number(c, top, "email.digest_interval", 0, 7 * 86400,
                    &cfg->email.digest_interval);
    } else if (!strcmp(name, "digest_severity")) {
        if (want_string(c, top, "email.digest_severity",
                        &cfg->email.digest_severity, 0))
            check_severity(c, top, "email.digest_severity",
                           cfg->email.digest_severity);
    } else if (!strcmp(name, "digest")) {
        email_digest(c, top, cfg);
    } else if (!strcmp(name, "routes")) {
        email_routes(c, top, cfg);
    } else {
        unknown(c, top, name);
    }
}

/* An address as pvwatch writes it into the envelope and the To: header:
 * one local@domain, nothing that could end or extend the header line. */
static void check_address(struct ctx *c, const char *label, const char *a)
{
    const char *at = strchr(a, '@');
    int ok = at && at != a && at[1] && !strchr(at + 1, '@') && strlen(a) <= 254;
    for (const unsigned char *p = (const unsigned char *)a; ok && *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("<>,;:\"()[]\\", *p))
            ok = 0;
    if (!ok) {
        pv_buf shown = PV_BUF_INIT;
        cfg_error(c, "email",
                  "%s '%s' is not an address (local@domain, no spaces, "
                  "quotes, brackets or commas)",
                  label, pv_buf_escape(&shown, a));
        pv_buf_free(&shown);
    }
}

/* mllp.listen as pv_mllp_server_start reads it (parse_listen): an IPv4
 * address, [IPv6] or localhost, ':' and a port 0-65535 -- judged here so
 * that 'pvwatch check' reports it, not only 'run' (issue 21 part 2).
 * http.listen is read the same way (top "http"; http.c). */
static void check_listen_of(struct ctx *c, const char *top, const char *spec,
                            const char *example)
{
    if (!spec)
        return;
    const char *colon = strrchr(spec, ':');
    char host[256];
    int ok = colon && colon != spec && (size_t)(colon - spec) < sizeof host;
    if (ok) {
        char *end;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        ok = !*end && end != colon + 1 && !errno && port >= 0 &&
             port <= 65535 && colon[1] != '-' && colon[1] != '+' &&
             colon[1] != ' ';
    }
    if (ok) {
        size_t hl = (size_t)(colon - spec);
        memcpy(host, spec, hl);
        host[hl] = '\0';
        unsigned char addr[16];
        if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
            host[hl - 1] = '\0';
            ok = inet_pton(AF_INET6, host + 1, addr) == 1;
        } else {
            ok = !strcmp(host, "localhost") ||
                 inet_pton(AF_INET, host, addr) == 1;
        }
    }
    if (!ok) {
        pv_buf shown = PV_BUF_INIT;
        cfg_error(c, top,
                  "%s.listen '%s' is not HOST:PORT (an IPv4 address, "
                  "[IPv6 address] or localhost, then ':' and a port "
                  "0-65535, e.g. \"%s\")",
                  top, pv_buf_escape(&shown, spec), example);
        pv_buf_free(&shown);
    }
}

static void check_listen(struct ctx *c, const char *spec)
{
    check_listen_of(c, "mllp", spec, "127.0.0.1:2575");
}

/* email.url: smtp[s]://HOST[:PORT][/...]: a host, and a port that is a
 * number (curl would say "URL using bad/illegal format" at the first mail). */
static void check_smtp_url(struct ctx *c, const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return; /* the scheme's own error is reported */
    p += 3;
    const char *at = strpbrk(p, "@/?#");
    if (at && *at == '@')
        p = at + 1; /* user@host: the user part is curl's */
    size_t hl = strcspn(p, "/?#");
    const char *host_end = p + hl;
    const char *port = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', hl);
        if (rb && rb + 1 < host_end && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(p, ':', hl);
        if (colon)
            port = colon + 1;
    }
    const char *why = NULL;
    if (hl == 0 || (port && port == p + 1))
        why = "has no host";
    else if (port) {
        long v = 0;
        const char *q = port;
        for (; q < host_end && *q >= '0' && *q <= '9' && v <= 65535; q++)
            v = v * 10 + (*q - '0');
        if (q == port || q != host_end || v < 1 || v > 65535)
            why = "has a port that is not a number from 1 to 65535";
    }
    if (why) {
        pv_buf shown = PV_BUF_INIT;
        cfg_error(c, "email",
                  "email.url '%s' %s (write smtp://HOST[:PORT] or "
                  "smtps://HOST[:PORT])",
                  pv_buf_escape(&shown, url), why);
        pv_buf_free(&shown);
    }
}

/* What can only be judged with the whole email table read: addresses,
 * TLS against the URL, and a password that would go out in cleartext. */
static void email_checks(struct ctx *c, pv_config *cfg)
{
    check_address(c, "email.from", cfg->email.from);
    for (size_t i = 0; i < cfg->email.to.count; i++)
        check_address(c, "email.to", cfg->email.to.items[i]);
    for (size_t i = 0; i < cfg->email.nroutes; i++)
        for (size_t j = 0; j < cfg->email.routes[i].to.count; j++)
            check_address(c, "email.routes[].to",
                          cfg->email.routes[i].to.items[j]);
    for (size_t i = 0; i < cfg->email.digest.to.count; i++)
        check_address(c, "email.digest.to", cfg->email.digest.to.items[i]);
    const char *url = cfg->email.url;
    int smtps = url && !strncasecmp(url, "smtps://", 8);
    if (url && !smtps && strncasecmp(url, "smtp://", 7))
        cfg_error(c, "email",
                  "email.url '%s' must start with smtp:// or "
                  "smtps://",
                  url);
    else if (url)
        check_smtp_url(c, url);
    if (!cfg->email.tls) {
        cfg->email.tls = strdup(smtps ? "implicit" : "none");
    } else if (url && smtps && strcmp(cfg->email.tls, "implicit")) {
        cfg_error(c, "email",
                  "email.tls '%s' contradicts the smtps:// URL (TLS from the "
                  "first byte): write tls = \"implicit\" or an smtp:// URL",
                  cfg->email.tls);
    } else if (url && !smtps && !strcmp(cfg->email.tls, "implicit")) {
        cfg_error(c, "email",
                  "email.tls 'implicit' needs an smtps:// URL; with smtp:// "
                  "the connection (and the password) would be cleartext");
    }
    int secret = cfg->email.password_env || cfg->email.password_file;
    if (url && secret && cfg->email.tls && !strcmp(cfg->email.tls, "none") &&
        !cfg->email.insecure)
        cfg_error(c, "email",
                  "email has a password but no TLS: it would go out in "
                  "cleartext; use tls = \"starttls\" or an smtps:// URL "
                  "(or insecure = true, for a test server only)");
}

/* tail = { { path = "a.csv" }, "b.csv" } */
static void tail_list(struct ctx *c, pv_config *cfg)
{
    lua_State *L = c->L;
    if (lua_type(L, -1) == LUA_TSTRING || !lua_istable(L, -1)) {
        want_strlist(c, "tail", "tail", &cfg->tail, 1);
        return;
    }
    lua_Integer n = list_len(c, "tail", "tail");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -1, i);
        if (lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                const char *k =
                    lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
                if (strcmp(k, "path") == 0 && lua_type(L, -1) == LUA_TSTRING) {
                    char *p = resolve(c->dir, lua_tostring(L, -1));
                    if (p)
                        pv_strlist_add(&cfg->tail, p);
                    free(p);
                } else {
                    cfg_error(c, "tail",
                              "tail[%lld]: unknown key '%s' or "
                              "path not a string",
                              (long long)i, k);
                }
                lua_pop(L, 1);
            }
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            char *p = resolve(c->dir, lua_tostring(L, -1));
            if (p)
                pv_strlist_add(&cfg->tail, p);
            free(p);
        } else {
            cfg_error(c, "tail", "tail[%lld] must be { path = \"...\" }",
                      (long long)i);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* csv = { layouts = { { match = "x*.csv", kind = "labs", columns = {
 * patient_id = "Patient ID", ... }, time_format = "%m/%d/%Y" } } }
 * (issue 15 item 11; the checks are csv_layout.c's and map.c's). */
static void csv_layout_entry(struct ctx *c, lua_Integer i, pv_csv_layout_cfg *l)
{
    lua_State *L = c->L;
    char label[64];
    snprintf(label, sizeof label, "csv.layouts[%lld]", (long long)i);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        const char *k =
            lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && !strcmp(k, "match")) {
            want_string(c, "csv", "csv.layouts[].match", &l->match, 0);
        } else if (k && !strcmp(k, "kind")) {
            want_string(c, "csv", "csv.layouts[].kind", &l->kind, 0);
        } else if (k && !strcmp(k, "time_format")) {
            want_string(c, "csv", "csv.layouts[].time_format", &l->time_format,
                        0);
        } else if (k && !strcmp(k, "columns") && lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -2) != LUA_TSTRING ||
                    lua_type(L, -1) != LUA_TSTRING)
                    cfg_error(c, "csv",
                              "%s.columns must map column names to header "
                              "names (strings)",
                              label);
                else if (l->keys.count >= 24)
                    cfg_error(c, "csv", "%s.columns has too many entries",
                              label);
                else {
                    pv_strlist_add(&l->keys, lua_tostring(L, -2));
                    pv_strlist_add(&l->heads, lua_tostring(L, -1));
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        } else {
            cfg_error(c, "csv",
                      "%s: unknown key '%s' (known: match, kind, "
                      "columns, time_format)%s",
                      label, k ? k : "?",
                      k && !strcmp(k, "columns") ? " or columns not a table"
                                                 : "");
            lua_pop(L, 1);
        }
    }
    char why[512];
    if (!l->match)
        cfg_error(c, "csv", "%s needs 'match' (a file-name glob)", label);
    else if (pv_layout_check_glob(l->match, why, sizeof why))
        cfg_error(c, "csv", "%s: %s", label, why);
    if (!l->kind)
        cfg_error(c, "csv",
                  "%s needs 'kind' (labs, medications, events or "
                  "patients)",
                  label);
    else if (pv_map_csv_mapped(l->kind, (const char *const *)l->keys.items,
                               (const char *const *)l->heads.items,
                               l->keys.count, NULL, 0, NULL, why, sizeof why))
        cfg_error(c, "csv", "%s: %s", label, why);
    if (l->time_format &&
        pv_layout_check_time_format(l->time_format, why, sizeof why))
        cfg_error(c, "csv", "%s: %s", label, why);
}

static void csv_field(struct ctx *c, const char *top, const char *name,
                      pv_config *cfg)
{
    lua_State *L = c->L;
    if (strcmp(name, "layouts")) {
        unknown(c, top, name);
        return;
    }
    if (!lua_istable(L, -1) || cfg->csv.layouts) {
        cfg_error(c, top, "csv.layouts must be a list of tables");
        lua_pop(L, 1);
        return;
    }
    lua_Integer n = list_len(c, top, "csv.layouts");
    cfg->csv.layouts = calloc(n > 0 ? (size_t)n : 1, sizeof *cfg->csv.layouts);
    for (lua_Integer i = 1; cfg->csv.layouts && i <= n; i++) {
        lua_geti(L, -1, i);
        if (!lua_istable(L, -1)) {
            cfg_error(c, top, "csv.layouts[%lld] must be a table",
                      (long long)i);
            lua_pop(L, 1);
            continue;
        }
        csv_layout_entry(c, i, &cfg->csv.layouts[cfg->csv.nlayouts++]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* database = { path = "pvwatch.db", walbuf = true }: the table form of
 * the database key (the string form is its path alone). */
static void database_field(struct ctx *c, const char *top, const char *name,
                           pv_config *cfg)
{
    if (!strcmp(name, "path")) {
        want_string(c, top, "database.path", &cfg->database, 1);
    } else if (!strcmp(name, "walbuf")) {
        if (lua_type(c->L, -1) != LUA_TBOOLEAN)
            cfg_error(c, top, "database.walbuf must be true or false");
        else
            cfg->walbuf = lua_toboolean(c->L, -1);
        lua_pop(c->L, 1);
    } else {
        unknown(c, top, name);
    }
}

static void top_field(struct ctx *c, const char *name, pv_config *cfg)
{
    if (!strcmp(name, "database")) {
        if (lua_istable(c->L, -1))
            each_field(c, name, cfg, database_field);
        else
            want_string(c, name, "database", &cfg->database, 1);
    } else if (!strcmp(name, "plugins")) {
        want_strlist(c, name, "plugins", &cfg->plugins, 1);
    } else if (!strcmp(name, "scripts")) {
        want_strlist(c, name, "scripts", &cfg->scripts, 1);
    } else if (!strcmp(name, "alert_log")) {
        want_string(c, name, "alert_log", &cfg->alert_log, 1);
    } else if (!strcmp(name, "log_format")) {
        /* issue 21 part 2: log.h */
        static const char *const fmts[] = {"text", "json", NULL};
        if (want_string(c, name, "log_format", &cfg->log_format, 0) &&
            !one_of(cfg->log_format, fmts))
            cfg_error(c, name, "log_format '%s' is not one of text, json",
                      cfg->log_format);
    } else if (!strcmp(name, "log_level")) {
        static const char *const lvls[] = {"error", "warning", "info", "debug",
                                           NULL};
        if (want_string(c, name, "log_level", &cfg->log_level, 0) &&
            !one_of(cfg->log_level, lvls))
            cfg_error(c, name,
                      "log_level '%s' is not one of error, warning, info, "
                      "debug",
                      cfg->log_level);
    } else if (!strcmp(name, "mllp")) {
        each_field(c, name, cfg, mllp_field);
    } else if (!strcmp(name, "inbox")) {
        each_field(c, name, cfg, inbox_field);
    } else if (!strcmp(name, "tail")) {
        tail_list(c, cfg);
    } else if (!strcmp(name, "csv")) {
        each_field(c, name, cfg, csv_field);
    } else if (!strcmp(name, "email")) {
        cfg->email.enabled = 1;
        each_field(c, name, cfg, email_field);
    } else if (!strcmp(name, "exposure")) {
        each_field(c, name, cfg, exposure_field);
    } else if (!strcmp(name, "audit")) {
        each_field(c, name, cfg, audit_field);
    } else if (!strcmp(name, "label")) {
        each_field(c, name, cfg, label_field);
    } else if (!strcmp(name, "limits")) {
        each_field(c, name, cfg, limits_field);
    } else if (!strcmp(name, "http")) {
        cfg->http.enabled = 1;
        each_field(c, name, cfg, http_field);
    } else {
        cfg_error(c, name, "unknown key '%s'", name);
        lua_pop(c->L, 1);
    }
}

static void set_defaults(pv_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->database = strdup("pvwatch.db");
    cfg->walbuf = 1;
    cfg->alert_log = strdup("alerts.jsonl");
    cfg->mllp.listen = strdup("127.0.0.1:2575");
    cfg->mllp.max_message = 1048576;
    cfg->mllp.idle_timeout = 60;
    cfg->mllp.max_connections = 256;
    cfg->mllp.max_pending_ack_bytes = 1 << 20;
    cfg->mllp.max_pending_ack_bytes_hard = 8 << 20;
    cfg->inbox.path = strdup("inbox");
    cfg->inbox.rescan_interval = 2.0;
    cfg->inbox.settle = 0.2;
    cfg->email.min_severity = strdup("medium");
    cfg->email.from = strdup("pvwatch@localhost");
    cfg->email.tls = NULL; /* from the URL's scheme, after reading */
    cfg->email.timeout = 30;
    cfg->email.max_attempts = 8;
    cfg->email.retry_base = 5;
    cfg->email.retry_cap = 3600;
    cfg->email.digest.newest = 10;
    cfg->exposure.washout_days = 28;
    cfg->exposure.rituximab_days = 183; /* ~6 months */
    cfg->label.indication = strdup("ra");
    cfg->label.region = strdup("us");
    cfg->limits.rule_instructions = 1000000;
    cfg->limits.rule_memory = 8 * 1024 * 1024;
    cfg->limits.rule_time_ms = 2000;
    cfg->http.listen = strdup("127.0.0.1:8080");
    cfg->http.threads = 0; /* unset: min(4, online cores), http.c */
    cfg->http.session_hours = 12;
}

/* The installed share directory as seen from the running binary
 * (BINDIR/PV_DATADIR_FROM_BIN, e.g. /usr/bin/../share/pvwatch), so that a
 * tree installed with DESTDIR or moved elsewhere finds its own rule pack
 * (issue 21 part 3). "" when /proc/self/exe cannot be read. */
static void datadir_from_exe(char *out, size_t cap)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    char joined[4200];
    snprintf(joined, sizeof joined, "%s/%s", exe, PV_DATADIR_FROM_BIN);
    char *abs = realpath(joined, NULL); /* NULL: not installed there */
    if (abs && strlen(abs) < cap)
        memcpy(out, abs, strlen(abs) + 1);
    free(abs);
}

/* Where the rule pack lives when the config does not say: ./NAME, else the
 * installed share directory beside the binary, else the one it was built
 * for, else the source tree this was built from. */
static void default_dir(pv_strlist *l, const char *name)
{
    if (l->count)
        return;
    char p[4096], from_exe[4096];
    datadir_from_exe(from_exe, sizeof from_exe);
    const char *bases[] = {".", from_exe, PV_DATADIR, PV_SOURCE_DIR};
    for (size_t i = 0; i < 4; i++) {
        if (!bases[i][0])
            continue;
        snprintf(p, sizeof p, "%s/%s", bases[i], name);
        if (is_dir(p)) {
            pv_strlist_add(l, i == 0 ? name : p);
            return;
        }
    }
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    luaL_error(L, "configuration runs too long (endless loop?)");
}

/* The configuration's Lua allocator: at most CONFIG_MAX_MEMORY in use
 * while the file runs ("x" .. "x" forty times would ask for a terabyte);
 * lifted (limit 0) once it has run, so that reading the values never
 * fails outside a protected call. */
struct cfg_mem {
    size_t used, limit;
};

static void *cfg_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct cfg_mem *m = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        m->used -= old;
        return NULL;
    }
    if (m->limit && nsize > old && m->used + (nsize - old) > m->limit)
        return NULL;
    void *n = realloc(ptr, nsize);
    if (!n)
        return NULL;
    m->used = m->used - old + nsize;
    return n;
}

static int cfg_panic(lua_State *L)
{
    fprintf(stderr, "pvwatch: configuration: unprotected Lua error: %s\n",
            lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    return 0; /* Lua aborts */
}

static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    /* A directory opens, and then fails to read (EISDIR): that is no
     * empty configuration. */
    int eno = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (eno) {
        free(buf);
        *err = eno;
        return NULL;
    }
    if (!buf || n > CONFIG_MAX_BYTES) {
        free(buf);
        *err = EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int pv_config_load(const char *path, pv_config *cfg, pv_buf *errors)
{
    set_defaults(cfg);
    int explicit_path = path != NULL;
    if (!path) {
        if (!is_file("pvwatch.lua")) {
            default_dir(&cfg->plugins, "plugins");
            default_dir(&cfg->scripts, "scripts");
            return 0;
        }
        path = "pvwatch.lua";
    }
    (void)explicit_path;
    cfg->path = strdup(path);
    size_t len = 0;
    int eno = 0;
    char *src = read_file(path, &len, &eno);
    if (!src) {
        pv_buf_printf(errors, "%s: cannot read configuration: %s\n", path,
                      strerror(eno));
        return PV_EIO;
    }
    struct ctx c = {.file = path, .source = src, .errors = errors};
    const char *slash = strrchr(path, '/');
    c.dir = slash ? strndup(path, (size_t)(slash - path)) : NULL;
    if (slash && slash == path) {
        free(c.dir);
        c.dir = strdup("/");
    }

    struct cfg_mem mem = {0, CONFIG_MAX_MEMORY};
    lua_State *L = c.L = lua_newstate(cfg_alloc, &mem);
    int rc = 0;
    if (!L) {
        pv_buf_puts(errors, "out of memory\n");
        free(src);
        free(c.dir);
        return PV_ENOMEM;
    }
    lua_atpanic(L, cfg_panic);
    char chunk[4096];
    snprintf(chunk, sizeof chunk, "@%s", path);
    if (luaL_loadbufferx(L, src, len, chunk, "t") != LUA_OK) {
        pv_buf_printf(errors, "%s\n", lua_tostring(L, -1));
        rc = PV_EINVAL;
        goto out;
    }
    /* The chunk's only upvalue is _ENV: give it a fresh, empty table, so
     * the file can set globals and call nothing. */
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "pv.config.env");
    lua_setupvalue(L, -2, 1);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, CONFIG_MAX_INSTRUCTIONS);
    int prc = lua_pcall(L, 0, 0, 0);
    if (prc == LUA_ERRMEM) {
        pv_buf_printf(errors,
                      "%s: configuration uses more than %zu MiB of "
                      "memory\n",
                      path, CONFIG_MAX_MEMORY >> 20);
        rc = PV_EINVAL;
        goto out;
    }
    if (prc != LUA_OK) {
        pv_buf_printf(errors, "%s\n",
                      lua_tostring(L, -1) ? lua_tostring(L, -1) : path);
        rc = PV_EINVAL;
        goto out;
    }
    lua_sethook(L, NULL, 0, 0);
    mem.limit = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "pv.config.env");
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            cfg_error(&c, NULL, "a global with a non-name key");
            lua_pop(L, 1);
            continue;
        }
        /* Copy the key: top_field pops the value, the key stays for
         * lua_next. */
        char key[128];
        snprintf(key, sizeof key, "%s", lua_tostring(L, -2));
        top_field(&c, key, cfg);
    }
    lua_pop(L, 1);
    if (cfg->email.enabled && !cfg->email.url && !cfg->email.dir)
        cfg_error(&c, "email", "email needs either 'url' or 'dir'");
    if (cfg->email.enabled && cfg->email.url && cfg->email.dir)
        cfg_error(&c, "email", "email takes 'url' or 'dir', not both");
    if (cfg->email.enabled && cfg->email.url && cfg->email.to.count == 0 &&
        cfg->email.nroutes == 0)
        cfg_error(&c, "email", "email needs recipients: 'to' or 'routes'");
    if (cfg->email.enabled)
        email_checks(&c, cfg);
    check_listen(&c, cfg->mllp.listen);
    if (cfg->http.enabled)
        check_listen_of(&c, "http", cfg->http.listen, "127.0.0.1:8080");
    if (cfg->mllp.max_pending_ack_bytes_hard < cfg->mllp.max_pending_ack_bytes)
        cfg_error(&c, "mllp",
                  "mllp.max_pending_ack_bytes_hard (%ld) is below "
                  "mllp.max_pending_ack_bytes (%ld)",
                  cfg->mllp.max_pending_ack_bytes_hard,
                  cfg->mllp.max_pending_ack_bytes);
    if (c.nerr > CONFIG_MAX_ERRORS)
        pv_buf_printf(errors, "%s: %d more errors not shown\n", path,
                      c.nerr - CONFIG_MAX_ERRORS);
    if (c.nerr)
        rc = PV_EINVAL;
out:
    lua_close(L);
    free(src);
    free(c.dir);
    default_dir(&cfg->plugins, "plugins");
    default_dir(&cfg->scripts, "scripts");
    return rc;
}

/* The directory part of path ("." when none). */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* One path the configuration names: what must already exist for 'run'.
 * want: 'f' a file (may not exist yet: its directory must, writable when
 * write), 'd' a directory (may not exist: made with its parents), 'D' a
 * directory whose parent must exist (made alone), 'r' a file that must
 * be readable now. Returns 1 when
 * reported. */
static int check_path(const pv_config *cfg, const char *key, const char *path,
                      int want, int write, pv_buf *out)
{
    const char *file = cfg->path ? cfg->path : "(defaults)";
    struct stat st;
    const char *why = NULL;
    char dir[4096];
    int eno = 0;
    if (!path || !strcmp(path, "-") || !strcmp(path, ":memory:"))
        return 0;
    if (stat(path, &st) == 0) {
        int wdir = want == 'd' || want == 'D';
        if (wdir && !S_ISDIR(st.st_mode))
            why = "exists and is not a directory";
        else if (!wdir && S_ISDIR(st.st_mode))
            why = "is a directory";
        else if (want == 'r' && access(path, R_OK) != 0)
            eno = errno;
        else if (write && access(path, W_OK) != 0)
            eno = errno;
    } else if (want == 'r') {
        eno = errno;
    } else {
        dir_of(path, dir, sizeof dir);
        if (want == 'd') {
            /* inbox.c makes the whole path; only an ancestor must exist. */
            while (stat(dir, &st) != 0 && strcmp(dir, ".") &&
                   strcmp(dir, "/")) {
                char up[4096];
                dir_of(dir, up, sizeof up);
                snprintf(dir, sizeof dir, "%s", up);
            }
        }
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            pv_buf_printf(out, "%s: %s %s: its directory %s does not exist\n",
                          file, key, path, dir);
            return 1;
        }
        if (write && access(dir, W_OK | X_OK) != 0) {
            pv_buf_printf(out,
                          "%s: %s %s: its directory %s is not writable: %s\n",
                          file, key, path, dir, strerror(errno));
            return 1;
        }
    }
    if (eno)
        why = strerror(eno);
    if (!why)
        return 0;
    pv_buf_printf(out, "%s: %s %s: %s\n", file, key, path, why);
    return 1;
}

int pv_config_check_paths(const pv_config *cfg, pv_buf *out)
{
    int n = 0;
    n += check_path(cfg, "database", cfg->database, 'f', 1, out);
    n += check_path(cfg, "alert_log", cfg->alert_log, 'f', 1, out);
    n += check_path(cfg, "inbox.path", cfg->inbox.path, 'd', 1, out);
    for (size_t i = 0; i < cfg->tail.count; i++)
        n += check_path(cfg, "tail", cfg->tail.items[i], 'f', 0, out);
    if (cfg->email.enabled) {
        n += check_path(cfg, "email.dir", cfg->email.dir, 'D', 1, out);
        n += check_path(cfg, "email.password_file", cfg->email.password_file,
                        'r', 0, out);
    }
    return n;
}

int pv_config_warnings(const pv_config *cfg, pv_buf *out)
{
    int n = 0;
    const char *l = cfg->mllp.listen;
    if (l && strncmp(l, "127.", 4) != 0 && strncmp(l, "localhost:", 10) != 0 &&
        strncmp(l, "[::1]:", 6) != 0) {
        pv_buf_printf(out,
                      "%s: mllp.listen '%s' accepts connections from other "
                      "machines; HL7 carries patient data unencrypted\n",
                      cfg->path ? cfg->path : "(defaults)", l);
        n++;
    }
    /* The review console (issue 16): TLS is a reverse proxy's job
     * (docs/operations.md "Review console"). */
    l = cfg->http.listen;
    if (cfg->http.enabled && l && strncmp(l, "127.", 4) != 0 &&
        strncmp(l, "localhost:", 10) != 0 && strncmp(l, "[::1]:", 6) != 0) {
        pv_buf_printf(out,
                      "%s: http.listen '%s' accepts connections from other "
                      "machines; the console speaks plain HTTP (put a TLS "
                      "reverse proxy in front and listen on loopback)\n",
                      cfg->path ? cfg->path : "(defaults)", l);
        n++;
    }
    struct stat pst;
    if (cfg->email.enabled && cfg->email.password_file &&
        stat(cfg->email.password_file, &pst) == 0 &&
        (pst.st_mode & (S_IWGRP | S_IRWXO))) {
        pv_buf_printf(out,
                      "%s: email.password_file %s is mode %04o: others can "
                      "read or change it (chmod 600 or 640)\n",
                      cfg->path ? cfg->path : "(defaults)",
                      cfg->email.password_file,
                      (unsigned)(pst.st_mode & 07777));
        n++;
    }
    if (cfg->plugins.count == 0) {
        pv_buf_printf(out, "%s: no plugin directory found; no rules will run\n",
                      cfg->path ? cfg->path : "(defaults)");
        n++;
    }
    return n;
}

void pv_config_free(pv_config *cfg)
{
    free(cfg->path);
    free(cfg->database);
    pv_strlist_free(&cfg->plugins);
    pv_strlist_free(&cfg->scripts);
    free(cfg->alert_log);
    free(cfg->log_format);
    free(cfg->log_level);
    free(cfg->mllp.listen);
    free(cfg->mllp.assigning_authority);
    free(cfg->mllp.duplicates);
    free(cfg->inbox.path);
    free(cfg->inbox.owners);
    pv_strlist_free(&cfg->tail);
    free(cfg->email.url);
    free(cfg->email.dir);
    free(cfg->email.from);
    pv_strlist_free(&cfg->email.to);
    free(cfg->email.min_severity);
    free(cfg->email.username);
    free(cfg->email.password_env);
    free(cfg->email.password_file);
    free(cfg->email.tls);
    free(cfg->email.digest_severity);
    free(cfg->email.digest.every_text);
    free(cfg->email.digest.at);
    pv_strlist_free(&cfg->email.digest.signals);
    free(cfg->email.digest.signal_lines);
    free(cfg->email.digest.severity);
    pv_strlist_free(&cfg->email.digest.to);
    for (size_t i = 0; i < cfg->email.nroutes; i++) {
        pv_strlist_free(&cfg->email.routes[i].to);
        free(cfg->email.routes[i].min_severity);
        pv_strlist_free(&cfg->email.routes[i].signals);
    }
    free(cfg->email.routes);
    for (size_t i = 0; i < cfg->csv.nlayouts; i++) {
        free(cfg->csv.layouts[i].match);
        free(cfg->csv.layouts[i].kind);
        free(cfg->csv.layouts[i].time_format);
        pv_strlist_free(&cfg->csv.layouts[i].keys);
        pv_strlist_free(&cfg->csv.layouts[i].heads);
    }
    free(cfg->csv.layouts);
    free(cfg->label.indication);
    free(cfg->label.region);
    free(cfg->http.listen);
    memset(cfg, 0, sizeof *cfg);
}
