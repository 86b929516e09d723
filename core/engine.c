/* engine.c: see engine.h. */
#include "engine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "http.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "mllp_server.h"
#include "notify.h"
#include "reload.h"
#include "service.h"
#include "store.h"
#include "tail.h"

/* Configurations loaded by SIGHUP, at most: the current one, the one the
 * rules were loaded with, the one the inbox was started with, and the one
 * being installed. */
#define MAX_HELD 4

struct engine {
    uv_loop_t loop;
    /* The configuration in force (issue 21 part 2: SIGHUP replaces it).
     * Who points into which (the audit of reload.h):
     * - orig, the start's (main.c owns it): the MLLP server (listen and
     *   limits, restart-only) and the console's threads (http.*, the
     *   database; they must never see a swap);
     * - cfg: the pipeline (pv_ingest_set_config), the notifier
     *   (pv_notify_set_config), the tailed files (through the pipeline);
     * - rules_cfg: the rule set (rules.c keeps r->cfg: limits, scripts,
     *   label); replaced only when the rules reload;
     * - inbox_cfg: the inbox watcher (inbox.owners, taken at its start).
     * A configuration in held[] is freed once it is none of these
     * (release_unused). Everything runs on the loop thread. */
    const pv_config *cfg;
    const pv_config *orig, *rules_cfg, *inbox_cfg;
    pv_config *held[MAX_HELD];
    pv_ingest *p;
    uv_signal_t sigint, sigterm, sighup;
    pv_inbox *inbox;
    pv_tail *tail;
    pv_mllp_server *mllp;
    pv_http *http;       /* the review console (http table), or NULL */
    uv_timer_t schedule; /* scheduled rules ('every') */
    uv_timer_t reload_debounce;
    uv_timer_t watch;      /* the database's identity, others' log lines */
    uv_prepare_t gone_chk; /* a commit found the database gone */
    sqlite3_stmt *queue_max;
    uv_fs_event_t *plugin_watch;
    size_t nwatch;
    int stopping;
    int gone; /* stopped because the database file was deleted/replaced */
    pv_mllp_stats mllp_stats; /* at the stop, for its summary */
};

/* How often the schedule timer looks for due rules. */
#define SCHEDULE_CHECK_MS 60000
/* How often an idle engine checks that its database file is still the one
 * it opened, and writes the alert-log lines other commands queued. */
#define WATCH_MS 1000

static void stop(struct engine *e, const char *why)
{
    if (e->stopping)
        return;
    e->stopping = 1;
    /* /readyz: not ready from here on (also when the database is gone). */
    pv_metrics_set_ready(PV_READY_ALL, 0);
    pv_info("%s: stopping", why);
    pv_service_notify("STOPPING=1"); /* systemd: service.h */
    /* The MLLP batch at hand is committed and acknowledged first. */
    pv_mllp_server_stop(e->mllp);
    if (e->mllp)
        pv_mllp_server_stats(e->mllp, &e->mllp_stats);
    pv_notify_stop(pv_ingest_notify(e->p));
    pv_inbox_stop(e->inbox);
    pv_tail_stop(e->tail);
    uv_close((uv_handle_t *)&e->schedule, NULL);
    uv_close((uv_handle_t *)&e->reload_debounce, NULL);
    uv_close((uv_handle_t *)&e->watch, NULL);
    uv_close((uv_handle_t *)&e->gone_chk, NULL);
    for (size_t i = 0; i < e->nwatch; i++)
        uv_close((uv_handle_t *)&e->plugin_watch[i], NULL);
    uv_close((uv_handle_t *)&e->sigint, NULL);
    uv_close((uv_handle_t *)&e->sigterm, NULL);
    uv_close((uv_handle_t *)&e->sighup, NULL);
}

static int in_use(const struct engine *e, const pv_config *c)
{
    return c == e->cfg || c == e->rules_cfg || c == e->inbox_cfg;
}

/* Frees the configurations SIGHUP loaded that nothing points into. */
static void release_unused(struct engine *e)
{
    for (size_t i = 0; i < MAX_HELD; i++)
        if (e->held[i] && !in_use(e, e->held[i])) {
            pv_config_free(e->held[i]);
            free(e->held[i]);
            e->held[i] = NULL;
        }
}

static int hold(struct engine *e, pv_config *c)
{
    for (size_t i = 0; i < MAX_HELD; i++)
        if (!e->held[i]) {
            e->held[i] = c;
            return 0;
        }
    return -1;
}

/* Logs each line of text (lines end in '\n') with a prefix. */
static void log_lines(enum pv_log_level level, const char *prefix,
                      const char *text)
{
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        if (n)
            pv_log(level, "%s%.*s", prefix, n, text);
        text += n + (nl != NULL);
    }
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; text && *text; text++)
        n += *text == '\n';
    return n;
}

/* The new file has errors: nothing of it is applied. */
static void config_rejected(struct engine *e, const char *path, const char *why)
{
    pv_error("reload: %s has errors; the running configuration stays "
             "entirely:",
             path);
    log_lines(PV_LOG_ERROR, "reload: ", why);
    pv_ingest_engine_alert(
        e->p, "pvwatch.config", "reload-failed",
        "Configuration reload failed; the running configuration stays", why,
        "Fix the file at the line named in the detail ('pvwatch check -c "
        "FILE' shows every error), then send SIGHUP again.");
}

/* SIGHUP: the configuration file again, checked as 'pvwatch check' checks
 * it, merged with the running one and applied (issue 21 part 2;
 * reload.h). The rules reload after it (reload). */
static void reload_config(struct engine *e)
{
    const pv_config *old = e->cfg;
    if (!old->path) {
        pv_info("reload: running on the built-in defaults (no configuration "
                "file); only the rules reload");
        return;
    }
    pv_config *neu = calloc(1, sizeof *neu);
    if (!neu) {
        pv_error("reload: out of memory; the running configuration stays");
        return;
    }
    pv_buf errors = PV_BUF_INIT, changes = PV_BUF_INIT, restart = PV_BUF_INIT;
    int rc = pv_config_load(old->path, neu, &errors);
    if (!rc && pv_config_check_paths(neu, &errors))
        rc = PV_EINVAL;
    if (!rc && pv_reload_merge(old, neu, &changes, &restart))
        rc = PV_ENOMEM;
    release_unused(e);
    if (!rc && hold(e, neu))
        rc = PV_ENOMEM; /* cannot happen: at most three are in use */
    if (rc) {
        config_rejected(e, old->path,
                        rc == PV_ENOMEM        ? "out of memory\n"
                        : pv_buf_cstr(&errors) ? pv_buf_cstr(&errors)
                                               : "");
        pv_config_free(neu);
        free(neu);
        pv_buf_free(&errors);
        pv_buf_free(&changes);
        pv_buf_free(&restart);
        return;
    }
    pv_buf warn = PV_BUF_INIT;
    pv_config_warnings(neu, &warn);
    log_lines(PV_LOG_WARN, "reload: ", pv_buf_cstr(&warn));
    pv_buf_free(&warn);

    /* The pipeline first: a new inbox takes its owners from it, the new
     * tail reads csv.layouts through it. */
    pv_ingest_set_config(e->p, neu);
    char err[1024];
    if (pv_reload_inbox_changed(old, neu)) {
        pv_inbox *in = NULL;
        if (pv_inbox_start(&e->loop, e->p, neu->inbox.path,
                           neu->inbox.rescan_interval, neu->inbox.settle, &in,
                           err, sizeof err) == 0) {
            pv_inbox_stop(e->inbox);
            e->inbox = in;
            e->inbox_cfg = neu;
        } else {
            pv_warn("reload: inbox: %s; the inbox stays %s", err,
                    old->inbox.path);
            pv_reload_keep_inbox(old, neu);
        }
    }
    if (pv_reload_tail_changed(old, neu)) {
        pv_tail *t = NULL;
        if (pv_tail_start(&e->loop, e->p, &neu->tail, &t, err, sizeof err) ==
            0) {
            pv_tail_stop(e->tail);
            e->tail = t;
        } else {
            pv_warn("reload: tail: %s; the tailed files stay", err);
            pv_reload_keep_tail(old, neu);
        }
    }
    pv_reload_feed_lines(old, neu, &changes);
    pv_notify_set_config(pv_ingest_notify(e->p), neu);
    pv_notify_kick(pv_ingest_notify(e->p));
    e->cfg = neu;

    int nchanged = count_lines(pv_buf_cstr(&changes));
    int nrestart = count_lines(pv_buf_cstr(&restart));
    log_lines(PV_LOG_INFO, "reload: ", pv_buf_cstr(&changes));
    log_lines(PV_LOG_WARN, "reload: needs a restart: ", pv_buf_cstr(&restart));
    if (nchanged || nrestart)
        pv_info("reload: configuration %s: %d change%s applied, %d need%s a "
                "restart",
                neu->path, nchanged, nchanged == 1 ? "" : "s", nrestart,
                nrestart == 1 ? "s" : "");
    else
        pv_info("reload: configuration %s: unchanged", neu->path);
    /* Last, so that the lines above are in the format they were. */
    pv_log_configure(neu->log_format, neu->log_level);
    release_unused(e);
    pv_buf_free(&errors);
    pv_buf_free(&changes);
    pv_buf_free(&restart);
}

static void reload(struct engine *e)
{
    pv_buf errors = PV_BUF_INIT;
    pv_rules *r = NULL;
    int rc = pv_rules_load(e->cfg, pv_ingest_store(e->p), &r, &errors);
    if (rc) {
        const char *why = pv_buf_cstr(&errors) ? pv_buf_cstr(&errors) : "";
        pv_error("reload failed; the previous rules stay in force:\n%s", why);
        pv_ingest_engine_alert(
            e->p, "pvwatch.reload", "reload-failed",
            "Rule reload failed; the previous rules stay in force", why,
            "Fix the plugin named in the detail ('pvwatch check' shows "
            "every error), then save it again or send SIGHUP.");
    } else {
        pv_ingest_set_rules(e->p, r);
        e->rules_cfg = e->cfg;
        release_unused(e);
        pv_info("rules reloaded: %zu rules", pv_rules_count(r));
    }
    pv_buf_free(&errors);
}

static void on_schedule(uv_timer_t *t)
{
    struct engine *e = t->data;
    pv_time_t now = pv_store_now(pv_ingest_store(e->p));
    int rc = pv_ingest_tick(e->p, now, 0);
    if (rc)
        pv_error("scheduled rules failed: %s", pv_strerror(rc));
}

/* After every loop turn: a commit that found the database file deleted or
 * replaced (pv_store_check) answered AE; stop before anything else is
 * taken in. What is left is done after the loop (pv_engine_run). */
static void on_gone_check(uv_prepare_t *h)
{
    struct engine *e = h->data;
    if (e->stopping || !pv_store_gone(pv_ingest_store(e->p)))
        return;
    e->gone = 1;
    stop(e, "the database file is gone");
}

/* Lines that commands queued while this engine holds the lock ('pvwatch
 * alerts ack' writes no log then: see pv_ingest_open_as) are written here,
 * in seq order, once every commit before them is on disk. */
static void write_others_lines(struct engine *e)
{
    pv_store *s = pv_ingest_store(e->p);
    if (!e->queue_max || pv_store_in_tx(s) || !pv_store_all_durable(s))
        return;
    int64_t last = 0;
    if (sqlite3_step(e->queue_max) == SQLITE_ROW)
        last = sqlite3_column_int64(e->queue_max, 0);
    sqlite3_reset(e->queue_max);
    if (last > 0) {
        pv_alerts_lines l = {0, last, 0};
        pv_alerts_write(pv_ingest_alerts(e->p), l);
    }
}

static void on_watch(uv_timer_t *t)
{
    struct engine *e = t->data;
    /* Between commits too: an idle engine notices a deleted database
     * before the next message is answered. */
    if (pv_store_check(pv_ingest_store(e->p))) {
        on_gone_check(&e->gone_chk);
        return;
    }
    write_others_lines(e);
}

/* The loop has ended because the database file was deleted or replaced.
 * Nothing more can be stored in the database at its path; what pvwatch
 * has open still holds every acknowledged commit. It is copied beside the
 * path, and the engine alert is recorded in the open file (it cannot be
 * stored at the path) so that its alert-log line is written. */
static void after_gone(struct engine *e)
{
    pv_store *s = pv_ingest_store(e->p);
    char what[1024], copy[4200];
    snprintf(what, sizeof what, "%s", pv_store_gone(s));
    int rrc = pv_store_rescue(s, copy, sizeof copy);
    if (rrc == 0)
        pv_error("every commit up to the stop was copied to %s", copy);
    char detail[6000];
    snprintf(detail, sizeof detail,
             "%s. Every message answered AE since must be sent again. %s%s",
             what,
             rrc == 0 ? "The database pvwatch had open was copied to "
                      : "The database pvwatch had open could not be copied",
             rrc == 0 ? copy : "");
    pv_store_accept_gone(s);
    int arc = pv_ingest_engine_alert(
        e->p, "pvwatch.store", "database-gone",
        "The database file was deleted or replaced; pvwatch stopped", detail,
        "Put the copy named in the detail back in place of the database "
        "(or restore a backup) before starting pvwatch again; find who "
        "deleted or replaced the file.");
    if (arc)
        pv_error("the engine alert could not be recorded: %s",
                 pv_strerror(arc));
    pv_error("stopped with exit status %d: %s", PV_EXIT_DB_GONE, what);
}

static void on_reload_due(uv_timer_t *t)
{
    reload(t->data);
}

/* A plugin file changed: reload once the burst of events is over. */
static void on_plugin_change(uv_fs_event_t *h, const char *name, int events,
                             int status)
{
    (void)events;
    struct engine *e = h->data;
    if (status < 0 || !name)
        return;
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 4, ".lua") != 0 || name[0] == '.')
        return;
    uv_timer_start(&e->reload_debounce, on_reload_due, 300, 0);
}

static void watch_plugins(struct engine *e)
{
    const pv_strlist *dirs = &e->cfg->plugins;
    e->plugin_watch =
        calloc(dirs->count ? dirs->count : 1, sizeof *e->plugin_watch);
    if (!e->plugin_watch)
        return;
    for (size_t i = 0; i < dirs->count; i++) {
        uv_fs_event_t *w = &e->plugin_watch[e->nwatch];
        uv_fs_event_init(&e->loop, w);
        w->data = e;
        e->nwatch++;
        int rc = uv_fs_event_start(w, on_plugin_change, dirs->items[i], 0);
        if (rc)
            pv_warn("%s: cannot watch for rule changes (%s); send SIGHUP "
                    "to reload",
                    dirs->items[i], uv_strerror(rc));
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct engine *e = h->data;
    if (signum == SIGHUP) {
        pv_service_notify("RELOADING=1");
        reload_config(e);
        reload(e);
        pv_service_notify("READY=1");
    } else
        stop(e, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* What the run did, for the operator: the MLLP counts, and the WAL
 * checkpoints, above all the time the loop spent on them (every commit
 * waited meanwhile: see store.c, on_wal_commit). */
static void log_summary(const struct engine *e)
{
    const pv_mllp_stats *m = &e->mllp_stats;
    pv_store_ckpt_stats c;
    pv_store_ckpt_get(pv_ingest_store(e->p), &c);
    pv_info("stopped: MLLP %lu connection%s, %lu message%s (AA %lu, AE %lu, "
            "AR %lu; %lu duplicate%s; %lu ACK%s not answered) in %lu "
            "commit%s; checkpoints: %llu pass%s copied %llu WAL page%s, "
            "%llu error%s; the loop ran %llu itself (%.1f ms)",
            m->connections, m->connections == 1 ? "" : "s", m->messages,
            m->messages == 1 ? "" : "s", m->aa, m->ae, m->ar, m->duplicates,
            m->duplicates == 1 ? "" : "s", m->acks, m->acks == 1 ? "" : "s",
            m->batches, m->batches == 1 ? "" : "s", (unsigned long long)c.runs,
            c.runs == 1 ? "" : "es", (unsigned long long)c.frames,
            c.frames == 1 ? "" : "s", (unsigned long long)c.errors,
            c.errors == 1 ? "" : "s", (unsigned long long)c.writer_runs,
            (double)c.writer_us / 1000.0);
    /* The rules since their last load (issue 17; per rule:
     * PVWATCH_PROFILE=1, docs/operations.md). */
    pv_rules *rules = pv_ingest_rules(e->p);
    if (rules) {
        pv_rules_stats rs;
        pv_rules_stats_get(rules, &rs);
        pv_info("stopped: rules %llu calls, %llu spared by the exposure "
                "gate, %llu errors, %llu alerts",
                (unsigned long long)rs.calls, (unsigned long long)rs.gated,
                (unsigned long long)rs.errors, (unsigned long long)rs.alerts);
    }
}

int pv_engine_run(const pv_config *cfg, pv_ingest *p)
{
    struct engine e;
    memset(&e, 0, sizeof e);
    e.cfg = e.orig = e.rules_cfg = e.inbox_cfg = cfg;
    e.p = p;
    if (uv_loop_init(&e.loop) != 0) {
        pv_error("cannot start the event loop");
        return 1;
    }
    uv_signal_init(&e.loop, &e.sigint);
    uv_signal_init(&e.loop, &e.sigterm);
    uv_signal_init(&e.loop, &e.sighup);
    e.sigint.data = e.sigterm.data = e.sighup.data = &e;
    uv_signal_start(&e.sigint, on_signal, SIGINT);
    uv_signal_start(&e.sigterm, on_signal, SIGTERM);
    uv_signal_start(&e.sighup, on_signal, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(&e.loop, &e.schedule);
    uv_timer_init(&e.loop, &e.reload_debounce);
    e.schedule.data = e.reload_debounce.data = &e;
    uv_timer_start(&e.schedule, on_schedule, 1000, SCHEDULE_CHECK_MS);
    uv_timer_init(&e.loop, &e.watch);
    e.watch.data = &e;
    uv_timer_start(&e.watch, on_watch, WATCH_MS, WATCH_MS);
    uv_prepare_init(&e.loop, &e.gone_chk);
    e.gone_chk.data = &e;
    uv_prepare_start(&e.gone_chk, on_gone_check);
    if (sqlite3_prepare_v2(pv_store_db(pv_ingest_store(p)),
                           "SELECT max(id) FROM alert_log_queue", -1,
                           &e.queue_max, NULL) != SQLITE_OK)
        e.queue_max = NULL;
    watch_plugins(&e);

    char err[1024];
    int status = 0;
    if (pv_inbox_start(&e.loop, p, cfg->inbox.path, cfg->inbox.rescan_interval,
                       cfg->inbox.settle, &e.inbox, err, sizeof err) ||
        pv_tail_start(&e.loop, p, &cfg->tail, &e.tail, err, sizeof err) ||
        pv_mllp_server_start(&e.loop, p, cfg, &e.mllp, err, sizeof err) ||
        (pv_ingest_notify(p) &&
         pv_notify_start(pv_ingest_notify(p), &e.loop)) ||
        (cfg->http.enabled &&
         pv_http_start(cfg, NULL, &e.http, err, sizeof err))) {
        pv_error("%s", err);
        status = 1;
        stop(&e, "start-up failed");
    } else {
        if (e.http) {
            char web[128];
            pv_http_address(e.http, web, sizeof web);
            pv_info("console listening on http://%s/", web);
        }
        pv_info("running: %zu rules, inbox %s, %zu tailed file%s, MLLP on "
                "%s",
                pv_ingest_rules(p) ? pv_rules_count(pv_ingest_rules(p)) : 0,
                cfg->inbox.path, cfg->tail.count,
                cfg->tail.count == 1 ? "" : "s", cfg->mllp.listen);
        /* Every listener is bound: systemd may call the unit started, and
         * 'pvwatch status' reads what this run listens on (service.h). */
        char addr[128];
        pv_mllp_server_address(e.mllp, addr, sizeof addr);
        pv_service_ready(cfg, addr);
        /* /readyz: the writer's store is open, the MLLP listener (if
         * any) bound; rules loaded unless run without them. */
        pv_metrics_set_ready(PV_READY_DB | PV_READY_LISTENERS, 1);
        pv_metrics_set_ready(PV_READY_RULES, pv_ingest_rules(p) != NULL);
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    /* The console's threads finish their requests (an action queues its
     * alert-log line, written just below) and stop. */
    pv_http_stop(e.http);
    /* Lines commands queued since the last watch tick: written now, not
     * left for the next start. */
    if (!e.gone)
        write_others_lines(&e);
    sqlite3_finalize(e.queue_max);
    log_summary(&e);
    /* Stopped by a signal before the watch timer looked: the last chance
     * to say that what was acknowledged is not at the path. */
    if (!e.gone && pv_store_check(pv_ingest_store(p)))
        e.gone = 1;
    if (e.gone) {
        after_gone(&e);
        status = PV_EXIT_DB_GONE;
    }
    uv_loop_close(&e.loop);
    free(e.plugin_watch);
    /* What SIGHUP loaded is freed here; the pipeline goes back to the
     * start's configuration (main.c frees it after pv_ingest_close). The
     * rules, if loaded from a reloaded one, go with it (nothing calls
     * them after the loop). */
    pv_ingest_set_config(p, cfg);
    pv_notify_set_config(pv_ingest_notify(p), cfg);
    if (e.rules_cfg != cfg)
        pv_ingest_set_rules(p, NULL);
    e.cfg = e.rules_cfg = e.inbox_cfg = cfg;
    release_unused(&e);
    return status;
}
