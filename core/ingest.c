/* ingest.c: the pipeline. See ingest.h. */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "csv_layout.h"
#include "error.h"
#include "hl7.h"
#include "log.h"
#include "map.h"
#include "notify.h"
#include "sha256.h"

#define READ_CHUNK (64 * 1024)
#define MAX_ERROR_LINES 100000
#define PATIENT_CACHE 4096

struct pv_ingest {
    const pv_config *cfg;
    pv_store *store;
    pv_rules *rules;
    pv_alerts *alerts;
    pv_notify *notify;
    pv_buf scratch;
    /* Recently seen patient ids, so that each fact does not re-insert its
     * patient: a direct-mapped cache of hashes. */
    uint64_t seen[PATIENT_CACHE];
    int db_failed; /* the sink hit a database error */
    void (*flush)(void *ud);
    void *flush_ud;
    int lock_fd;      /* the single-instance lock (pv_store_lock), or -1 */
    long lock_holder; /* CLIENT: the writer holding it, 0 none, -1 unknown */
};

void pv_ingest_set_flush(pv_ingest *p, void (*flush)(void *ud), void *ud)
{
    p->flush = flush;
    p->flush_ud = ud;
}

pv_store *pv_ingest_store(pv_ingest *p)
{
    return p->store;
}

pv_alerts *pv_ingest_alerts(pv_ingest *p)
{
    return p->alerts;
}

pv_notify *pv_ingest_notify(pv_ingest *p)
{
    return p->notify;
}

/* A mail that could not be delivered becomes an engine alert (which is
 * itself never mailed: see notify.c). */
static int mail_failed(void *ud, int64_t outbox_id, const char *error)
{
    pv_ingest *p = ud;
    char key[64], detail[1024];
    snprintf(key, sizeof key, "outbox-%lld", (long long)outbox_id);
    snprintf(detail, sizeof detail,
             "Outbox row %lld was not accepted after %ld attempts: %s",
             (long long)outbox_id, p->cfg->email.max_attempts, error);
    return pv_ingest_engine_alert(
        p, "pvwatch.notify", key, "An alert e-mail could not be delivered",
        detail,
        "Check the mail server and email settings, then run 'pvwatch "
        "outbox retry'.");
}

pv_rules *pv_ingest_rules(pv_ingest *p)
{
    return p->rules;
}

const pv_config *pv_ingest_config(pv_ingest *p)
{
    return p->cfg;
}

void pv_ingest_set_config(pv_ingest *p, const pv_config *cfg)
{
    p->cfg = cfg;
}

void pv_ingest_set_rules(pv_ingest *p, pv_rules *r)
{
    pv_rules_free(p->rules);
    p->rules = r;
}

int pv_ingest_open(const pv_config *cfg, const char *db_path, int no_rules,
                   pv_ingest **out, pv_buf *errors)
{
    return pv_ingest_open_as(cfg, db_path, no_rules, PV_INGEST_WRITER, out,
                             errors);
}

long pv_ingest_lock_holder(const pv_ingest *p)
{
    return p->lock_holder;
}

int pv_ingest_open_as(const pv_config *cfg, const char *db_path, int no_rules,
                      enum pv_ingest_role role, pv_ingest **out, pv_buf *errors)
{
    *out = NULL;
    pv_ingest *p = calloc(1, sizeof *p);
    if (!p)
        return PV_ENOMEM;
    p->cfg = cfg;
    const char *path = db_path ? db_path : cfg->database;
    char err[1024];
    /* The lock before the database: a second engine must not even run
     * the migrations or the alert log's recovery. */
    int rc = pv_store_lock(path, role == PV_INGEST_WRITER, &p->lock_fd,
                           &p->lock_holder, err, sizeof err);
    if (rc) {
        pv_buf_printf(errors, "%s\n", err);
        free(p);
        return rc;
    }
    rc = pv_store_open_with(path, cfg->walbuf, &p->store, err, sizeof err);
    if (rc) {
        pv_buf_printf(errors, "%s\n", err);
        if (p->lock_fd >= 0)
            close(p->lock_fd);
        free(p);
        return rc;
    }
    if (!no_rules) {
        rc = pv_rules_load(cfg, p->store, &p->rules, errors);
        if (rc) {
            pv_ingest_close(p);
            return rc == PV_ENOMEM ? rc : PV_EINVAL;
        }
    }
    /* A client beside a running engine leaves the log to the engine. */
    rc = pv_alerts_open(p->store, p->lock_holder ? NULL : cfg->alert_log,
                        &p->alerts, err, sizeof err);
    if (!rc && p->lock_holder && cfg->alert_log)
        pv_alerts_set_queue_only(p->alerts); /* its lines: for the engine */
    /* Beside a running engine under load the write lock is free only
     * between its commits: a command waits longer for it than the engine
     * itself (5 s) rather than fail ("database is locked"). */
    if (!rc && p->lock_holder)
        sqlite3_busy_timeout(pv_store_db(p->store), 30000);
    if (!rc)
        rc = pv_notify_open(cfg, p->store, p->alerts, &p->notify, err,
                            sizeof err);
    if (rc) {
        pv_buf_printf(errors, "%s\n", err);
        pv_ingest_close(p);
        return rc;
    }
    if (p->notify)
        pv_notify_on_failure(p->notify, mail_failed, p);
    *out = p;
    return 0;
}

void pv_ingest_close(pv_ingest *p)
{
    if (!p)
        return;
    if (p->store && pv_store_in_tx(p->store))
        pv_ingest_rollback(p);
    pv_notify_free(p->notify);
    pv_alerts_close(p->alerts);
    pv_rules_free(p->rules);
    pv_store_close(p->store);
    pv_buf_free(&p->scratch);
    /* Last: the database is closed (and its WAL checkpointed) first. */
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    free(p);
}

/* An MLLP batch waiting for its commit point is committed first. */
static void flush_open_batch(pv_ingest *p)
{
    if (pv_store_in_tx(p->store) && p->flush)
        p->flush(p->flush_ud);
}

int pv_ingest_begin(pv_ingest *p)
{
    flush_open_batch(p);
    return pv_store_begin(p->store);
}

int pv_ingest_begin_relaxed(pv_ingest *p)
{
    flush_open_batch(p);
    return pv_store_begin_relaxed(p->store);
}

int pv_ingest_commit_deferred(pv_ingest *p, pv_alerts_lines *lines)
{
    int rc = pv_store_commit(p->store);
    if (rc)
        return rc; /* the caller logs pv_store_errmsg, then rolls back */
    memset(p->seen, 0, sizeof p->seen);
    *lines = pv_alerts_take(p->alerts);
    lines->outbox = pv_notify_outbox_max(p->notify);
    return 0;
}

int pv_ingest_durable(pv_ingest *p, pv_alerts_lines lines)
{
    pv_notify_durable(p->notify, lines.outbox);
    pv_notify_kick(p->notify);
    return pv_alerts_write(p->alerts, lines);
}

int pv_ingest_commit(pv_ingest *p)
{
    /* An ordinary commit is durable when it returns. */
    pv_alerts_lines lines;
    int rc = pv_ingest_commit_deferred(p, &lines);
    if (rc) {
        pv_ingest_rollback(p);
        return rc;
    }
    return pv_ingest_durable(p, lines);
}

void pv_ingest_rollback(pv_ingest *p)
{
    pv_store_rollback(p->store);
    pv_alerts_rolled_back(p->alerts);
    /* Patients inserted in the transaction are gone again. */
    memset(p->seen, 0, sizeof p->seen);
}

static int sink(void *ud, const pv_alert_in *a)
{
    pv_ingest *p = ud;
    int rc = pv_alerts_raise(p->alerts, a, NULL, NULL);
    if (rc)
        p->db_failed = 1;
    return rc;
}

static uint64_t hash64(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h | 1;
}

static int touch_patient(pv_ingest *p, const char *id)
{
    uint64_t h = hash64(id);
    uint64_t *slot = &p->seen[h % PATIENT_CACHE];
    if (*slot == h)
        return 0;
    int rc = pv_store_patient(p->store, id, NULL, NULL);
    if (!rc)
        *slot = h;
    return rc;
}

int pv_ingest_lab(pv_ingest *p, const pv_obs *o, int64_t *id)
{
    int64_t rid;
    int rc = touch_patient(p, o->patient_id);
    if (!rc)
        rc = pv_store_add_obs(p->store, o, &rid);
    if (!rc && id)
        *id = rid;
    /* Results whose status says they are not a result (W, X, I, R, N,
     * ...) are stored but never judged. */
    if (!rc && p->rules && pv_obs_judged(o->status))
        rc = pv_rules_on_lab(p->rules, o, rid, sink, p);
    return rc;
}

int pv_ingest_exposure(pv_ingest *p, const pv_exposure *e, int64_t *id)
{
    int64_t rid;
    int rc = touch_patient(p, e->patient_id);
    if (!rc)
        rc = pv_store_add_exposure(p->store, e, &rid);
    if (!rc && id)
        *id = rid;
    if (!rc && p->rules)
        rc = pv_rules_on_exposure(p->rules, e, rid, sink, p);
    return rc;
}

int pv_ingest_event(pv_ingest *p, const pv_event *e, int64_t *id)
{
    int64_t rid;
    int rc = touch_patient(p, e->patient_id);
    if (!rc)
        rc = pv_store_add_event(p->store, e, &rid);
    if (!rc && id)
        *id = rid;
    if (!rc && p->rules)
        rc = pv_rules_on_event(p->rules, e, rid, sink, p);
    return rc;
}

int pv_ingest_tick(pv_ingest *p, pv_time_t now, int force)
{
    if (!p->rules || !pv_rules_has_schedule(p->rules))
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(p->store),
                           "SELECT DISTINCT patient_id FROM exposures "
                           "ORDER BY patient_id",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    pv_strlist ids = {0};
    while (sqlite3_step(st) == SQLITE_ROW)
        pv_strlist_add(&ids, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    char **list = calloc(ids.count + 1, sizeof *list);
    int rc = list ? 0 : PV_ENOMEM;
    for (size_t i = 0; list && i < ids.count; i++)
        list[i] = ids.items[i];
    int own_tx = !pv_store_in_tx(p->store);
    if (!rc && own_tx)
        rc = pv_ingest_begin(p);
    if (!rc)
        rc = pv_rules_tick(p->rules, now, (const char *const *)list, force,
                           sink, p);
    if (own_tx) {
        if (!rc)
            rc = pv_ingest_commit(p);
        else
            pv_ingest_rollback(p);
    }
    free(list);
    pv_strlist_free(&ids);
    return rc;
}

int pv_ingest_engine_alert(pv_ingest *p, const char *rule, const char *key,
                           const char *title, const char *detail,
                           const char *action)
{
    pv_alert_in a = {
        .patient_id = "-",
        .rule = rule,
        .signal = "engine",
        .severity = "high",
        .title = title,
        .detail = detail,
        .action = action,
        .key = key,
        .evidence_json = "[]",
    };
    int own_tx = !pv_store_in_tx(p->store);
    int rc = own_tx ? pv_ingest_begin(p) : 0;
    if (!rc)
        rc = pv_alerts_raise(p->alerts, &a, NULL, NULL);
    if (own_tx) {
        if (!rc)
            rc = pv_ingest_commit(p);
        else
            pv_ingest_rollback(p);
    }
    return rc;
}

void pv_file_report_free(pv_file_report *r)
{
    pv_buf_free(&r->errors);
}

static void report_error(pv_file_report *rep, const char *name, long line,
                         const char *reason)
{
    rep->rejected++;
    if (rep->rejected <= MAX_ERROR_LINES)
        pv_buf_printf(&rep->errors, "%s:%ld: %s\n", name, line, reason);
    else if (rep->rejected == MAX_ERROR_LINES + 1)
        pv_buf_printf(&rep->errors,
                      "%s: more than %d bad records; the rest "
                      "are counted, not listed\n",
                      name, MAX_ERROR_LINES);
}

int pv_ingest_csv_record(pv_ingest *p, const pv_csv_map *m,
                         const pv_span *fields, size_t n, long line,
                         int64_t message_id, const char *name,
                         pv_file_report *rep)
{
    pv_row row;
    char err[512];
    int rc =
        pv_map_csv_row(m, fields, n, line, &row, &p->scratch, err, sizeof err);
    if (rc == PV_ENOMEM)
        return rc;
    if (rc) {
        report_error(rep, name, line, err);
        return 0;
    }
    switch (row.kind) {
    case PV_CSV_LABS:
        row.obs.message_id = message_id;
        rc = pv_ingest_lab(p, &row.obs, NULL);
        break;
    case PV_CSV_MEDICATIONS:
        row.exp.message_id = message_id;
        rc = pv_ingest_exposure(p, &row.exp, NULL);
        break;
    case PV_CSV_EVENTS:
        row.ev.message_id = message_id;
        rc = pv_ingest_event(p, &row.ev, NULL);
        break;
    case PV_CSV_PATIENTS: {
        /* Birth dates are kept as dates only. */
        char bd[11] = "";
        if (row.birth_date)
            snprintf(bd, sizeof bd, "%.10s", row.birth_date);
        rc = pv_store_patient(p->store, row.patient_id,
                              row.birth_date ? bd : NULL, row.sex);
        break;
    }
    }
    if (!rc)
        rep->stored++;
    return rc;
}

/* State of one CSV file being read. */
struct file_ctx {
    pv_ingest *p;
    const char *name;
    pv_file_report *rep;
    pv_csv_map map;
    int have_header;
    int64_t message_id;
    int db_rc;
};

static int on_record(void *ud, long line, const pv_span *fields, size_t n)
{
    struct file_ctx *c = ud;
    if (!c->have_header) {
        char err[512];
        if (pv_layout_header(c->p->cfg, c->name, fields, n, &c->map, err,
                             sizeof err)) {
            report_error(c->rep, c->name, line, err);
            c->rep->failed = 1;
            return 1;
        }
        c->have_header = 1;
        c->rep->kind = c->map.name;
        return 0;
    }
    int rc = pv_ingest_csv_record(c->p, &c->map, fields, n, line, c->message_id,
                                  c->name, c->rep);
    if (rc) {
        c->db_rc = rc;
        return 1;
    }
    return 0;
}

static void on_csv_error(void *ud, long line, const char *reason)
{
    struct file_ctx *c = ud;
    report_error(c->rep, c->name, line, reason);
}

static const char *final_status(const pv_file_report *rep)
{
    if (rep->failed || (rep->stored == 0 && rep->rejected > 0))
        return "rejected";
    return rep->rejected ? "partial" : "accepted";
}

/* One HL7 message: ingest_hl7.c does the work (parse, map, store, the
 * outcome) on this pipeline, seen through a pv_hl7_pipe, so that it calls
 * nothing of ingest.c (issue 20 part 3: no ingest.c <-> ingest_hl7.c
 * cycle). */
static int hl7_lab(void *ud, const pv_obs *o)
{
    return pv_ingest_lab(ud, o, NULL);
}

static int hl7_exposure(void *ud, const pv_exposure *e)
{
    return pv_ingest_exposure(ud, e, NULL);
}

static int hl7_event(void *ud, const pv_event *e)
{
    return pv_ingest_event(ud, e, NULL);
}

static int hl7_engine_alert(void *ud, const char *rule, const char *key,
                            const char *title, const char *detail,
                            const char *action)
{
    return pv_ingest_engine_alert(ud, rule, key, title, detail, action);
}

int pv_ingest_hl7(pv_ingest *p, const char *raw, size_t len, const char *peer,
                  long first_line, pv_hl7_result *res)
{
    const pv_hl7_pipe pipe = {
        .store = p->store,
        .alerts = p->alerts,
        .assigning_authority = p->cfg->mllp.assigning_authority,
        .duplicates = p->cfg->mllp.duplicates,
        .ud = p,
        .lab = hl7_lab,
        .exposure = hl7_exposure,
        .event = hl7_event,
        .engine_alert = hl7_engine_alert,
    };
    return pv_hl7_ingest(&pipe, raw, len, peer, first_line, res);
}

/* HL7 files are read whole: a file of messages is small next to what a
 * CSV extract can be, and its messages are split before parsing. */
#define HL7_FILE_MAX (64u << 20)

struct hl7_file {
    pv_ingest *p;
    const char *name;
    pv_file_report *rep;
    int db_rc;
};

static int on_hl7_message(void *ud, pv_span msg, long line)
{
    struct hl7_file *h = ud;
    pv_hl7_result res;
    int rc = pv_ingest_hl7(h->p, msg.ptr, msg.len, h->name, line, &res);
    if (rc) {
        pv_hl7_result_free(&res);
        h->db_rc = rc;
        return 1;
    }
    if (res.ack == PV_HL7_AE || res.ack == PV_HL7_AR) {
        report_error(h->rep, h->name, line, res.text);
    } else if (res.skipped) {
        /* AA without some segments: each "ERL<TAB>reason" line of text
         * (the last may count those that did not fit). */
        long listed = 0;
        for (char *l = res.text; *l; listed++) {
            char *eol = strchr(l, '\n');
            if (eol)
                *eol = '\0';
            char *tab = strchr(l, '\t');
            report_error(h->rep, h->name, line, tab ? tab + 1 : l);
            l = eol ? eol + 1 : l + strlen(l);
        }
        if (res.skipped > listed)
            h->rep->rejected += res.skipped - listed;
    } else if (res.duplicate)
        pv_info("%s:%ld: %s", h->name, line, res.text);
    h->rep->stored += res.facts;
    pv_hl7_result_free(&res);
    return 0;
}

static void on_hl7_split_error(void *ud, long line, const char *reason)
{
    struct hl7_file *h = ud;
    report_error(h->rep, h->name, line, reason);
}

static int ingest_hl7_file(pv_ingest *p, int fd, const char *name,
                           const char *head, size_t headlen,
                           pv_file_report *rep)
{
    pv_buf all = PV_BUF_INIT;
    pv_buf_append(&all, head, headlen);
    char chunk[READ_CHUNK];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (all.len + (size_t)n > HL7_FILE_MAX) {
            pv_buf_printf(&rep->errors,
                          "%s: HL7 file larger than %u MiB; "
                          "split it\n",
                          name, HL7_FILE_MAX >> 20);
            rep->failed = 1;
            rep->rejected++;
            pv_buf_free(&all);
            return 0;
        }
        pv_buf_append(&all, chunk, (size_t)n);
    }
    if (!pv_buf_ok(&all)) {
        pv_buf_free(&all);
        return PV_ENOMEM;
    }
    rep->kind = "hl7";
    rep->bytes = all.len;
    struct hl7_file h = {p, name, rep, 0};
    pv_hl7_split(all.ptr, all.len, on_hl7_message, on_hl7_split_error, &h);
    pv_buf_free(&all);
    if (!h.db_rc && rep->stored == 0 && rep->rejected > 0)
        rep->failed = 1;
    return h.db_rc;
}

/* Whether a file starts like HL7 (after a UTF-8 byte order mark and blank
 * lines; issue 15 item 9): MSH, FHS or BHS, or an MLLP start byte. The
 * splitter and parser skip the mark themselves. */
static int looks_hl7(const char *b, size_t n)
{
    size_t i = 0;
    if (n >= 3 && (unsigned char)b[0] == 0xEF && (unsigned char)b[1] == 0xBB &&
        (unsigned char)b[2] == 0xBF)
        i = 3;
    while (i < n && (b[i] == '\r' || b[i] == '\n' || b[i] == ' '))
        i++;
    if (i < n && b[i] == 0x0b)
        return 1;
    if (n - i < 4)
        return 0;
    return (!memcmp(b + i, "MSH", 3) || !memcmp(b + i, "FHS", 3) ||
            !memcmp(b + i, "BHS", 3));
}

int pv_ingest_file(pv_ingest *p, const char *path, const char *name,
                   pv_file_report *rep)
{
    memset(rep, 0, sizeof *rep);
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pv_buf_printf(&rep->errors, "%s: cannot open: %s\n", name,
                      strerror(errno));
        rep->failed = 1;
        return 0;
    }
    return pv_ingest_fd(p, fd, name, rep);
}

int pv_ingest_fd(pv_ingest *p, int fd, const char *name, pv_file_report *rep)
{
    memset(rep, 0, sizeof *rep);
    /* Peek at the start to tell HL7 from CSV. */
    char head[512];
    size_t headlen = 0;
    for (;;) {
        ssize_t n = read(fd, head + headlen, sizeof head - headlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        headlen += (size_t)n;
        if (headlen == sizeof head)
            break;
    }
    if (looks_hl7(head, headlen)) {
        int rc = ingest_hl7_file(p, fd, name, head, headlen, rep);
        if (fd)
            close(fd);
        return rc;
    }
    int rc = pv_store_savepoint(p->store);
    if (rc) {
        if (fd)
            close(fd);
        return rc;
    }
    size_t mark = pv_alerts_mark(p->alerts);
    struct file_ctx c = {.p = p, .name = name, .rep = rep};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char pending[96];
    snprintf(pending, sizeof pending, "pending:%ld:%lld.%09ld", (long)getpid(),
             (long long)ts.tv_sec, ts.tv_nsec);
    rc = pv_store_message_add(p->store, "file", pending, "CSV", name, NULL, 0,
                              "receiving", &c.message_id, NULL);
    pv_csv *csv = rc ? NULL : pv_csv_new(0, on_record, on_csv_error, &c);
    if (!rc && !csv)
        rc = PV_ENOMEM;
    pv_sha256 sha;
    pv_sha256_init(&sha);
    char *buf = rc ? NULL : malloc(READ_CHUNK);
    if (!rc && !buf)
        rc = PV_ENOMEM;
    int stopped = 0;
    if (!rc && headlen) {
        rep->bytes += headlen;
        pv_sha256_update(&sha, head, headlen);
        if (pv_csv_feed(csv, head, headlen) != 0) {
            stopped = 1;
            if (c.db_rc)
                rc = c.db_rc;
        }
    }
    while (!rc) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pv_buf_printf(&rep->errors, "%s: read failed: %s\n", name,
                          strerror(errno));
            rep->failed = 1;
            break;
        }
        if (n == 0)
            break;
        rep->bytes += (uint64_t)n;
        pv_sha256_update(&sha, buf, (size_t)n);
        if (!stopped && pv_csv_feed(csv, buf, (size_t)n) != 0) {
            stopped = 1;
            if (c.db_rc)
                rc = c.db_rc;
        }
    }
    if (!rc && !stopped && pv_csv_finish(csv) != 0 && c.db_rc)
        rc = c.db_rc;
    if (!rc && !c.have_header && !rep->failed) {
        pv_buf_printf(&rep->errors,
                      "%s:1: the file is empty: a header row "
                      "is required\n",
                      name);
        rep->rejected++;
        rep->failed = 1;
    }
    free(buf);
    pv_csv_free(csv);
    if (fd)
        close(fd);
    if (!rc) {
        char hex[65], key[72];
        pv_sha256_hex(&sha, hex);
        snprintf(key, sizeof key, "sha256:%s", hex);
        rc = pv_store_message_rekey(p->store, c.message_id, "file", key,
                                    &rep->duplicate_of);
        if (rc == PV_ESTATE) {
            /* Seen before: undo this reading entirely. */
            pv_store_rollback_to(p->store);
            pv_alerts_rewind(p->alerts, mark);
            long stored = rep->stored;
            (void)stored;
            rep->stored = 0;
            rep->rejected = 0;
            pv_buf_reset(&rep->errors);
            rep->duplicate = 1;
            return 0;
        }
    }
    if (!rc) {
        const char *status = final_status(rep);
        char summary[4096];
        snprintf(summary, sizeof summary, "%.*s",
                 (int)(rep->errors.len < 4000 ? rep->errors.len : 4000),
                 rep->errors.ptr ? rep->errors.ptr : "");
        rc = pv_store_message_finish(p->store, c.message_id, status,
                                     summary[0] ? summary : NULL, rep->stored,
                                     rep->rejected);
    }
    if (rc) {
        pv_store_rollback_to(p->store);
        pv_alerts_rewind(p->alerts, mark);
        return rc;
    }
    return pv_store_release(p->store);
}
