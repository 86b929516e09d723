/* reload.c: see reload.h. */
#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

struct diff {
    pv_buf *changes, *restart;
    int oom;
};

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static int list_eq(const pv_strlist *a, const pv_strlist *b)
{
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->items[i], b->items[i]))
            return 0;
    return 1;
}

static void put_str(pv_buf *b, const char *s)
{
    pv_buf_puts(b, s ? s : "(none)");
}

static void put_list(pv_buf *b, const pv_strlist *l)
{
    if (!l->count)
        pv_buf_puts(b, "(none)");
    for (size_t i = 0; i < l->count; i++)
        pv_buf_printf(b, "%s%s", i ? ", " : "", l->items[i]);
}

void pv_reload_put_url(pv_buf *b, const char *url)
{
    if (!url) {
        pv_buf_puts(b, "(none)");
        return;
    }
    /* scheme://user:password@host...: the userinfo is left out. */
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    const char *at = strpbrk(host, "@/?#");
    if (at && *at == '@') {
        pv_buf_append(b, url, (size_t)(host - url));
        pv_buf_puts(b, "***");
        pv_buf_puts(b, at);
    } else {
        pv_buf_puts(b, url);
    }
}

static int dup_str(char **dst, const char *src)
{
    char *n = NULL;
    if (src && !(n = strdup(src)))
        return PV_ENOMEM;
    free(*dst);
    *dst = n;
    return 0;
}

static int dup_list(pv_strlist *dst, const pv_strlist *src)
{
    pv_strlist n = {0};
    for (size_t i = 0; i < src->count; i++)
        if (pv_strlist_add(&n, src->items[i])) {
            pv_strlist_free(&n);
            return PV_ENOMEM;
        }
    pv_strlist_free(dst);
    *dst = n;
    return 0;
}

/* --- one key ---------------------------------------------------------- */

static void live_str(struct diff *d, const char *key, const char *a,
                     const char *b)
{
    if (str_eq(a, b))
        return;
    pv_buf_printf(d->changes, "%s: ", key);
    put_str(d->changes, a);
    pv_buf_puts(d->changes, " -> ");
    put_str(d->changes, b);
    pv_buf_puts(d->changes, "\n");
}

static void live_list(struct diff *d, const char *key, const pv_strlist *a,
                      const pv_strlist *b)
{
    if (list_eq(a, b))
        return;
    pv_buf_printf(d->changes, "%s: ", key);
    put_list(d->changes, a);
    pv_buf_puts(d->changes, " -> ");
    put_list(d->changes, b);
    pv_buf_puts(d->changes, "\n");
}

static void live_num(struct diff *d, const char *key, double a, double b)
{
    if (a != b)
        pv_buf_printf(d->changes, "%s: %g -> %g\n", key, a, b);
}

static void live_long(struct diff *d, const char *key, long a, long b)
{
    if (a != b)
        pv_buf_printf(d->changes, "%s: %ld -> %ld\n", key, a, b);
}

static void live_bool(struct diff *d, const char *key, int a, int b)
{
    if (!a != !b)
        pv_buf_printf(d->changes, "%s: %s -> %s\n", key, a ? "true" : "false",
                      b ? "true" : "false");
}

static void restart_head(struct diff *d, const char *key)
{
    pv_buf_printf(d->restart, "%s (", key);
}

static void restart_str(struct diff *d, const char *key, const char *a,
                        char **b)
{
    if (str_eq(a, *b))
        return;
    restart_head(d, key);
    put_str(d->restart, *b);
    pv_buf_puts(d->restart, " in the file; keeps ");
    put_str(d->restart, a);
    pv_buf_puts(d->restart, ")\n");
    if (dup_str(b, a))
        d->oom = 1;
}

static void restart_list(struct diff *d, const char *key, const pv_strlist *a,
                         pv_strlist *b)
{
    if (list_eq(a, b))
        return;
    restart_head(d, key);
    put_list(d->restart, b);
    pv_buf_puts(d->restart, " in the file; keeps ");
    put_list(d->restart, a);
    pv_buf_puts(d->restart, ")\n");
    if (dup_list(b, a))
        d->oom = 1;
}

static void restart_long(struct diff *d, const char *key, long a, long *b)
{
    if (a == *b)
        return;
    pv_buf_printf(d->restart, "%s (%ld in the file; keeps %ld)\n", key, *b, a);
    *b = a;
}

static void restart_dbl(struct diff *d, const char *key, double a, double *b)
{
    if (a == *b)
        return;
    pv_buf_printf(d->restart, "%s (%g in the file; keeps %g)\n", key, *b, a);
    *b = a;
}

static void restart_bool(struct diff *d, const char *key, int a, int *b)
{
    if (!a == !*b)
        return;
    pv_buf_printf(d->restart, "%s (%s in the file; keeps %s)\n", key,
                  *b ? "true" : "false", a ? "true" : "false");
    *b = a;
}

/* --- e-mail ----------------------------------------------------------- */

static int route_eq(const pv_email_route *a, const pv_email_route *b)
{
    return list_eq(&a->to, &b->to) &&
           str_eq(a->min_severity, b->min_severity) &&
           list_eq(&a->signals, &b->signals) && !a->exclusive == !b->exclusive;
}

static void put_routes(pv_buf *b, const pv_config *c)
{
    if (!c->email.nroutes)
        pv_buf_puts(b, "(none)");
    for (size_t i = 0; i < c->email.nroutes; i++) {
        const pv_email_route *r = &c->email.routes[i];
        pv_buf_puts(b, i ? "; {to " : "{to ");
        put_list(b, &r->to);
        if (r->min_severity)
            pv_buf_printf(b, ", min_severity %s", r->min_severity);
        if (r->signals.count) {
            pv_buf_puts(b, ", signals ");
            put_list(b, &r->signals);
        }
        if (r->exclusive)
            pv_buf_puts(b, ", exclusive");
        pv_buf_puts(b, "}");
    }
}

static void live_routes(struct diff *d, const pv_config *a, const pv_config *b)
{
    int same = a->email.nroutes == b->email.nroutes;
    for (size_t i = 0; same && i < a->email.nroutes; i++)
        same = route_eq(&a->email.routes[i], &b->email.routes[i]);
    if (same)
        return;
    pv_buf_puts(d->changes, "email.routes: ");
    put_routes(d->changes, a);
    pv_buf_puts(d->changes, " -> ");
    put_routes(d->changes, b);
    pv_buf_puts(d->changes, "\n");
}

static int dup_routes(pv_config *dst, const pv_config *src)
{
    pv_email_route *r =
        calloc(src->email.nroutes ? src->email.nroutes : 1, sizeof *r);
    if (!r)
        return PV_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < src->email.nroutes && !rc; i++) {
        const pv_email_route *s = &src->email.routes[i];
        rc = dup_list(&r[i].to, &s->to) ||
             dup_list(&r[i].signals, &s->signals) ||
             dup_str(&r[i].min_severity, s->min_severity);
        r[i].exclusive = s->exclusive;
    }
    size_t n = src->email.nroutes; /* all freeable, even after a failure */
    for (size_t i = 0; i < dst->email.nroutes; i++) {
        pv_strlist_free(&dst->email.routes[i].to);
        pv_strlist_free(&dst->email.routes[i].signals);
        free(dst->email.routes[i].min_severity);
    }
    free(dst->email.routes);
    dst->email.routes = r;
    dst->email.nroutes = n;
    return rc ? PV_ENOMEM : 0;
}

/* The e-mail table was added or removed: the notifier exists (or not)
 * from the start; the running e-mail settings stay whole. */
static int keep_email(const pv_config *o, pv_config *n)
{
    int rc = dup_str(&n->email.url, o->email.url) ||
             dup_str(&n->email.dir, o->email.dir) ||
             dup_str(&n->email.from, o->email.from) ||
             dup_list(&n->email.to, &o->email.to) ||
             dup_str(&n->email.min_severity, o->email.min_severity) ||
             dup_str(&n->email.username, o->email.username) ||
             dup_str(&n->email.password_env, o->email.password_env) ||
             dup_str(&n->email.password_file, o->email.password_file) ||
             dup_str(&n->email.tls, o->email.tls) ||
             dup_str(&n->email.digest_severity, o->email.digest_severity) ||
             dup_routes(n, o);
    n->email.enabled = o->email.enabled;
    n->email.insecure = o->email.insecure;
    n->email.timeout = o->email.timeout;
    n->email.max_attempts = o->email.max_attempts;
    n->email.retry_base = o->email.retry_base;
    n->email.retry_cap = o->email.retry_cap;
    n->email.digest_interval = o->email.digest_interval;
    return rc ? PV_ENOMEM : 0;
}

static void email_diff(struct diff *d, const pv_config *o, pv_config *n)
{
    if (!o->email.enabled != !n->email.enabled) {
        pv_buf_printf(d->restart,
                      "email (the e-mail table was %s; the running e-mail "
                      "settings stay)\n",
                      n->email.enabled ? "added" : "removed");
        if (keep_email(o, n))
            d->oom = 1;
        return;
    }
    if (!o->email.enabled)
        return;
    /* The transport: the password is read once at the start (and
     * password_env's variable then wiped), the TLS mode goes with the
     * URL, .eml files or SMTP is decided at the start. */
    if (!str_eq(o->email.url, n->email.url)) {
        pv_buf_puts(d->restart, "email.url (");
        pv_reload_put_url(d->restart, n->email.url);
        pv_buf_puts(d->restart, " in the file; keeps ");
        pv_reload_put_url(d->restart, o->email.url);
        pv_buf_puts(d->restart, ")\n");
        if (dup_str(&n->email.url, o->email.url))
            d->oom = 1;
    }
    restart_str(d, "email.dir", o->email.dir, &n->email.dir);
    restart_str(d, "email.username", o->email.username, &n->email.username);
    restart_str(d, "email.password_env", o->email.password_env,
                &n->email.password_env);
    restart_str(d, "email.password_file", o->email.password_file,
                &n->email.password_file);
    restart_str(d, "email.tls", o->email.tls, &n->email.tls);
    restart_bool(d, "email.insecure", o->email.insecure, &n->email.insecure);
    /* Who gets what: live (notify reads them for every alert). */
    live_str(d, "email.from", o->email.from, n->email.from);
    live_list(d, "email.to", &o->email.to, &n->email.to);
    live_str(d, "email.min_severity", o->email.min_severity,
             n->email.min_severity);
    live_routes(d, o, n);
    live_num(d, "email.timeout", o->email.timeout, n->email.timeout);
    live_long(d, "email.max_attempts", o->email.max_attempts,
              n->email.max_attempts);
    live_num(d, "email.retry_base", o->email.retry_base, n->email.retry_base);
    live_num(d, "email.retry_cap", o->email.retry_cap, n->email.retry_cap);
    live_num(d, "email.digest_interval", o->email.digest_interval,
             n->email.digest_interval);
    live_str(d, "email.digest_severity", o->email.digest_severity,
             n->email.digest_severity);
    /* email.digest = { ... } (notify.c reads it at every pump). */
    live_bool(d, "email.digest", o->email.digest.enabled,
              n->email.digest.enabled);
    live_str(d, "email.digest.every", o->email.digest.every_text,
             n->email.digest.every_text);
    live_str(d, "email.digest.at", o->email.digest.at, n->email.digest.at);
    live_list(d, "email.digest.signals", &o->email.digest.signals,
              &n->email.digest.signals);
    live_str(d, "email.digest.severity", o->email.digest.severity,
             n->email.digest.severity);
    live_list(d, "email.digest.to", &o->email.digest.to, &n->email.digest.to);
    live_bool(d, "email.digest.send_empty", o->email.digest.send_empty,
              n->email.digest.send_empty);
    live_long(d, "email.digest.newest", o->email.digest.newest,
              n->email.digest.newest);
}

/* --- inbox, tail, csv ---------------------------------------------------- */

static int owners_eq(const pv_config *a, const pv_config *b)
{
    return a->inbox.nowners == b->inbox.nowners &&
           (!a->inbox.nowners ||
            !memcmp(a->inbox.owners, b->inbox.owners,
                    a->inbox.nowners * sizeof *a->inbox.owners));
}

static void put_owners(pv_buf *b, const pv_config *c)
{
    if (!c->inbox.nowners)
        pv_buf_puts(b, "(none)");
    for (size_t i = 0; i < c->inbox.nowners; i++)
        pv_buf_printf(b, "%s%ld", i ? ", " : "", c->inbox.owners[i]);
}

int pv_reload_inbox_changed(const pv_config *a, const pv_config *b)
{
    return !str_eq(a->inbox.path, b->inbox.path) ||
           a->inbox.rescan_interval != b->inbox.rescan_interval ||
           a->inbox.settle != b->inbox.settle || !owners_eq(a, b) ||
           !a->inbox.allow_any_owner != !b->inbox.allow_any_owner;
}

int pv_reload_tail_changed(const pv_config *a, const pv_config *b)
{
    return !list_eq(&a->tail, &b->tail);
}

int pv_reload_keep_inbox(const pv_config *o, pv_config *n)
{
    if (dup_str(&n->inbox.path, o->inbox.path))
        return PV_ENOMEM;
    long *own = NULL;
    if (o->inbox.nowners) {
        own = malloc(o->inbox.nowners * sizeof *own);
        if (!own)
            return PV_ENOMEM;
        memcpy(own, o->inbox.owners, o->inbox.nowners * sizeof *own);
    }
    free(n->inbox.owners);
    n->inbox.owners = own;
    n->inbox.nowners = o->inbox.nowners;
    n->inbox.rescan_interval = o->inbox.rescan_interval;
    n->inbox.settle = o->inbox.settle;
    n->inbox.allow_any_owner = o->inbox.allow_any_owner;
    return 0;
}

int pv_reload_keep_tail(const pv_config *o, pv_config *n)
{
    return dup_list(&n->tail, &o->tail);
}

static int layout_eq(const pv_csv_layout_cfg *a, const pv_csv_layout_cfg *b)
{
    return str_eq(a->match, b->match) && str_eq(a->kind, b->kind) &&
           str_eq(a->time_format, b->time_format) &&
           list_eq(&a->keys, &b->keys) && list_eq(&a->heads, &b->heads);
}

static void put_layouts(pv_buf *b, const pv_config *c)
{
    if (!c->csv.nlayouts)
        pv_buf_puts(b, "(none)");
    for (size_t i = 0; i < c->csv.nlayouts; i++)
        pv_buf_printf(b, "%s%s as %s", i ? ", " : "",
                      c->csv.layouts[i].match ? c->csv.layouts[i].match : "?",
                      c->csv.layouts[i].kind ? c->csv.layouts[i].kind : "?");
}

static void live_layouts(struct diff *d, const pv_config *a, const pv_config *b)
{
    int same = a->csv.nlayouts == b->csv.nlayouts;
    for (size_t i = 0; same && i < a->csv.nlayouts; i++)
        same = layout_eq(&a->csv.layouts[i], &b->csv.layouts[i]);
    if (same)
        return;
    pv_buf_puts(d->changes, "csv.layouts: ");
    put_layouts(d->changes, a);
    pv_buf_puts(d->changes, " -> ");
    put_layouts(d->changes, b);
    pv_buf_puts(d->changes, "\n");
}

/* --- the whole ----------------------------------------------------------- */

int pv_reload_merge(const pv_config *o, pv_config *n, pv_buf *changes,
                    pv_buf *restart)
{
    struct diff d = {changes, restart, 0};
    /* The store: opened once (its path, VFS and pragmas); the alert log
     * is opened and recovered at the start. */
    restart_str(&d, "database", o->database, &n->database);
    if (!o->walbuf != !n->walbuf) {
        pv_buf_printf(restart, "database.walbuf (%s in the file; keeps %s)\n",
                      n->walbuf ? "true" : "false",
                      o->walbuf ? "true" : "false");
        n->walbuf = o->walbuf;
    }
    restart_str(&d, "alert_log", o->alert_log, &n->alert_log);
    /* The rule directories are watched from the start. */
    restart_list(&d, "plugins", &o->plugins, &n->plugins);
    restart_list(&d, "scripts", &o->scripts, &n->scripts);
    /* The listeners and their limits (mllp_server.c keeps the start's). */
    restart_str(&d, "mllp.listen", o->mllp.listen, &n->mllp.listen);
    restart_long(&d, "mllp.max_message", o->mllp.max_message,
                 &n->mllp.max_message);
    restart_dbl(&d, "mllp.idle_timeout", o->mllp.idle_timeout,
                &n->mllp.idle_timeout);
    restart_long(&d, "mllp.max_connections", o->mllp.max_connections,
                 &n->mllp.max_connections);
    restart_long(&d, "mllp.max_pending_ack_bytes",
                 o->mllp.max_pending_ack_bytes, &n->mllp.max_pending_ack_bytes);
    restart_long(&d, "mllp.max_pending_ack_bytes_hard",
                 o->mllp.max_pending_ack_bytes_hard,
                 &n->mllp.max_pending_ack_bytes_hard);
    /* Read per message through the pipeline's configuration: live. */
    live_str(&d, "mllp.assigning_authority", o->mllp.assigning_authority,
             n->mllp.assigning_authority);
    live_str(&d, "mllp.duplicates", o->mllp.duplicates, n->mllp.duplicates);
    /* The console runs its own threads on the start's configuration. */
    if (!o->http.enabled != !n->http.enabled) {
        pv_buf_printf(restart, "http (the console table was %s)\n",
                      n->http.enabled ? "added" : "removed");
        n->http.enabled = o->http.enabled;
    }
    restart_str(&d, "http.listen", o->http.listen, &n->http.listen);
    restart_long(&d, "http.threads", o->http.threads, &n->http.threads);
    restart_long(&d, "http.session_hours", o->http.session_hours,
                 &n->http.session_hours);
    email_diff(&d, o, n);
    live_layouts(&d, o, n);
    /* Read by the rules when they load (they reload next). */
    live_long(&d, "limits.rule_instructions", o->limits.rule_instructions,
              n->limits.rule_instructions);
    live_long(&d, "limits.rule_memory", o->limits.rule_memory,
              n->limits.rule_memory);
    live_long(&d, "limits.rule_time_ms", o->limits.rule_time_ms,
              n->limits.rule_time_ms);
    live_str(&d, "label.indication", o->label.indication, n->label.indication);
    live_str(&d, "label.region", o->label.region, n->label.region);
    live_num(&d, "exposure.washout_days", o->exposure.washout_days,
             n->exposure.washout_days);
    live_long(&d, "exposure.rituximab_days", o->exposure.rituximab_days,
              n->exposure.rituximab_days);
    live_bool(&d, "audit.allow_by", o->audit.allow_by, n->audit.allow_by);
    live_str(&d, "log_format", o->log_format, n->log_format);
    live_str(&d, "log_level", o->log_level, n->log_level);
    if (d.oom || !pv_buf_ok(changes) || !pv_buf_ok(restart))
        return PV_ENOMEM;
    return 0;
}

int pv_reload_feed_lines(const pv_config *o, const pv_config *n,
                         pv_buf *changes)
{
    struct diff d = {changes, NULL, 0};
    live_str(&d, "inbox.path", o->inbox.path, n->inbox.path);
    live_num(&d, "inbox.rescan_interval", o->inbox.rescan_interval,
             n->inbox.rescan_interval);
    live_num(&d, "inbox.settle", o->inbox.settle, n->inbox.settle);
    if (!owners_eq(o, n)) {
        pv_buf_puts(changes, "inbox.owners: ");
        put_owners(changes, o);
        pv_buf_puts(changes, " -> ");
        put_owners(changes, n);
        pv_buf_puts(changes, "\n");
    }
    live_bool(&d, "inbox.allow_any_owner", o->inbox.allow_any_owner,
              n->inbox.allow_any_owner);
    live_list(&d, "tail", &o->tail, &n->tail);
    return pv_buf_ok(changes) ? 0 : PV_ENOMEM;
}
