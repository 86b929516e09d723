/* ingest.c: the pipeline. See ingest.h. */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "error.h"
#include "log.h"
#include "map.h"
#include "sha256.h"

#define READ_CHUNK (64 * 1024)
#define MAX_ERROR_LINES 100000
#define PATIENT_CACHE 4096

struct pv_ingest {
    const pv_config *cfg;
    pv_store *store;
    pv_rules *rules;
    pv_alerts *alerts;
    pv_buf scratch;
    /* Recently seen patient ids, so that each fact does not re-insert its
     * patient: a direct-mapped cache of hashes. */
    uint64_t seen[PATIENT_CACHE];
    int db_failed; /* the sink hit a database error */
};

pv_store *pv_ingest_store(pv_ingest *p)
{
    return p->store;
}

pv_alerts *pv_ingest_alerts(pv_ingest *p)
{
    return p->alerts;
}

pv_rules *pv_ingest_rules(pv_ingest *p)
{
    return p->rules;
}

const pv_config *pv_ingest_config(pv_ingest *p)
{
    return p->cfg;
}

void pv_ingest_set_rules(pv_ingest *p, pv_rules *r)
{
    pv_rules_free(p->rules);
    p->rules = r;
}

int pv_ingest_open(const pv_config *cfg, const char *db_path, int no_rules,
                   pv_ingest **out, pv_buf *errors)
{
    *out = NULL;
    pv_ingest *p = calloc(1, sizeof *p);
    if (!p)
        return PV_ENOMEM;
    p->cfg = cfg;
    char err[1024];
    int rc = pv_store_open(db_path ? db_path : cfg->database, &p->store, err,
                           sizeof err);
    if (rc) {
        pv_buf_printf(errors, "%s\n", err);
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
    rc = pv_alerts_open(p->store, cfg->alert_log, &p->alerts, err,
                        sizeof err);
    if (rc) {
        pv_buf_printf(errors, "%s\n", err);
        pv_ingest_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void pv_ingest_close(pv_ingest *p)
{
    if (!p)
        return;
    if (p->store && pv_store_in_tx(p->store))
        pv_ingest_rollback(p);
    pv_alerts_close(p->alerts);
    pv_rules_free(p->rules);
    pv_store_close(p->store);
    pv_buf_free(&p->scratch);
    free(p);
}

int pv_ingest_begin(pv_ingest *p)
{
    return pv_store_begin(p->store);
}

int pv_ingest_commit(pv_ingest *p)
{
    int rc = pv_store_commit(p->store);
    if (rc) {
        pv_ingest_rollback(p);
        return rc;
    }
    memset(p->seen, 0, sizeof p->seen);
    return pv_alerts_committed(p->alerts);
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
    if (!rc && p->rules)
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
        pv_buf_printf(&rep->errors, "%s: more than %d bad records; the rest "
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
    int rc = pv_map_csv_row(m, fields, n, line, &row, &p->scratch, err,
                            sizeof err);
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
        if (pv_map_csv_header(fields, n, &c->map, err, sizeof err)) {
            report_error(c->rep, c->name, line, err);
            c->rep->failed = 1;
            return 1;
        }
        c->have_header = 1;
        c->rep->kind = c->map.name;
        return 0;
    }
    int rc = pv_ingest_csv_record(c->p, &c->map, fields, n, line,
                                  c->message_id, c->name, c->rep);
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
        pv_buf_printf(&rep->errors, "%s:1: the file is empty: a header row "
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
