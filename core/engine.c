/* engine.c: see engine.h. */
#include "engine.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "inbox.h"
#include "log.h"
#include "tail.h"

struct engine {
    uv_loop_t loop;
    const pv_config *cfg;
    pv_ingest *p;
    uv_signal_t sigint, sigterm, sighup;
    pv_inbox *inbox;
    pv_tail *tail;
    int stopping;
};

static void stop(struct engine *e, const char *why)
{
    if (e->stopping)
        return;
    e->stopping = 1;
    pv_info("%s: stopping", why);
    pv_inbox_stop(e->inbox);
    pv_tail_stop(e->tail);
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
        pv_error("reload failed; the previous rules stay in force:\n%s",
                 pv_buf_cstr(&errors) ? pv_buf_cstr(&errors) : "");
    } else {
        pv_ingest_set_rules(e->p, r);
        pv_info("rules reloaded: %zu rules", pv_rules_count(r));
    }
    pv_buf_free(&errors);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct engine *e = h->data;
    if (signum == SIGHUP)
        reload(e);
    else
        stop(e, signum == SIGINT ? "SIGINT" : "SIGTERM");
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

    char err[1024];
    int status = 0;
    if (pv_inbox_start(&e.loop, p, cfg->inbox.path, cfg->inbox.rescan_interval,
                       cfg->inbox.settle, &e.inbox, err, sizeof err) ||
        pv_tail_start(&e.loop, p, &cfg->tail, &e.tail, err, sizeof err)) {
        pv_error("%s", err);
        status = 1;
        stop(&e, "start-up failed");
    } else {
        pv_info("running: %zu rules, inbox %s, %zu tailed file%s",
                pv_ingest_rules(p) ? pv_rules_count(pv_ingest_rules(p)) : 0,
                cfg->inbox.path, cfg->tail.count,
                cfg->tail.count == 1 ? "" : "s");
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    uv_loop_close(&e.loop);
    return status;
}
