/* engine.c: see engine.h. */
#include "engine.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "inbox.h"
#include "log.h"
#include "mllp_server.h"
#include "notify.h"
#include "store.h"
#include "tail.h"

struct engine {
    uv_loop_t loop;
    const pv_config *cfg;
    pv_ingest *p;
    uv_signal_t sigint, sigterm, sighup;
    pv_inbox *inbox;
    pv_tail *tail;
    pv_mllp_server *mllp;
    uv_timer_t schedule; /* scheduled rules ('every') */
    uv_timer_t reload_debounce;
    uv_fs_event_t *plugin_watch;
    size_t nwatch;
    int stopping;
    pv_mllp_stats mllp_stats; /* at the stop, for its summary */
};

/* How often the schedule timer looks for due rules. */
#define SCHEDULE_CHECK_MS 60000

static void stop(struct engine *e, const char *why)
{
    if (e->stopping)
        return;
    e->stopping = 1;
    pv_info("%s: stopping", why);
    /* The MLLP batch at hand is committed and acknowledged first. */
    pv_mllp_server_stop(e->mllp);
    if (e->mllp)
        pv_mllp_server_stats(e->mllp, &e->mllp_stats);
    pv_notify_stop(pv_ingest_notify(e->p));
    pv_inbox_stop(e->inbox);
    pv_tail_stop(e->tail);
    uv_close((uv_handle_t *)&e->schedule, NULL);
    uv_close((uv_handle_t *)&e->reload_debounce, NULL);
    for (size_t i = 0; i < e->nwatch; i++)
        uv_close((uv_handle_t *)&e->plugin_watch[i], NULL);
    uv_close((uv_handle_t *)&e->sigint, NULL);
    uv_close((uv_handle_t *)&e->sigterm, NULL);
    uv_close((uv_handle_t *)&e->sighup, NULL);
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
    if (signum == SIGHUP)
        reload(e);
    else
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
}

int pv_engine_run(const pv_config *cfg, pv_ingest *p)
{
    struct engine e;
    memset(&e, 0, sizeof e);
    e.cfg = cfg;
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
    watch_plugins(&e);

    char err[1024];
    int status = 0;
    if (pv_inbox_start(&e.loop, p, cfg->inbox.path, cfg->inbox.rescan_interval,
                       cfg->inbox.settle, &e.inbox, err, sizeof err) ||
        pv_tail_start(&e.loop, p, &cfg->tail, &e.tail, err, sizeof err) ||
        pv_mllp_server_start(&e.loop, p, cfg, &e.mllp, err, sizeof err) ||
        (pv_ingest_notify(p) &&
         pv_notify_start(pv_ingest_notify(p), &e.loop))) {
        pv_error("%s", err);
        status = 1;
        stop(&e, "start-up failed");
    } else {
        pv_info("running: %zu rules, inbox %s, %zu tailed file%s, MLLP on "
                "%s",
                pv_ingest_rules(p) ? pv_rules_count(pv_ingest_rules(p)) : 0,
                cfg->inbox.path, cfg->tail.count,
                cfg->tail.count == 1 ? "" : "s", cfg->mllp.listen);
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    log_summary(&e);
    uv_loop_close(&e.loop);
    free(e.plugin_watch);
    return status;
}
