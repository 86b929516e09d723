/* alerts.c: see alerts.h. */
#include "alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "metrics.h"

enum {
    A_FIND,
    A_INSERT,
    A_ESCALATE,
    A_REPEAT,
    A_ACTION,
    A_GET,
    A_STATUS,
    A_ANY,
    A_QUEUE_ADD,
    A_QUEUE_NEXT,
    A_QUEUE_RANGE,
    A_QUEUE_DEL,
    A_QUEUE_COUNT,
    A_QUEUE_MAX,
    A__COUNT
};

static const char *const asql[A__COUNT] = {
    [A_FIND] = "SELECT id, grade, severity FROM alerts WHERE patient_id = ? "
               "AND rule = ? AND dedup_key = ? AND status != 'closed'",
    [A_INSERT] = "INSERT INTO alerts (patient_id, rule, signal, severity, "
                 "grade, title, detail, action, dedup_key, status, "
                 "created_at, updated_at, occurrences, evidence, "
                 "rule_sha256, engine_version) VALUES "
                 "(?,?,?,?,?,?,?,?,?,'open',?10,?10,1,?11,?12,?13)",
    [A_ESCALATE] = "UPDATE alerts SET severity = ?, grade = ?, title = ?, "
                   "detail = ?, action = ?, evidence = ?, updated_at = ?, "
                   "occurrences = occurrences + 1, rule_sha256 = ? "
                   "WHERE id = ?",
    [A_REPEAT] = "UPDATE alerts SET occurrences = occurrences + 1, "
                 "updated_at = ? WHERE id = ?",
    [A_ACTION] = "INSERT INTO alert_actions (alert_id, at, actor, action, "
                 "note) VALUES (?,?,?,?,?)",
    [A_GET] = "SELECT id, patient_id, rule, signal, severity, grade, title, "
              "detail, action, status, evidence, updated_at, occurrences, "
              "created_at, dedup_key, rule_sha256, engine_version "
              "FROM alerts WHERE id = ?",
    [A_STATUS] = "UPDATE alerts SET status = ?, updated_at = ? WHERE id = ?",
    [A_QUEUE_ADD] = "INSERT INTO alert_log_queue (id, line) VALUES (?, ?)",
    [A_QUEUE_RANGE] = "SELECT id, line FROM alert_log_queue WHERE id "
                      "BETWEEN ? AND ? ORDER BY id",
    [A_QUEUE_COUNT] = "SELECT count(*) FROM alert_log_queue WHERE id BETWEEN "
                      "? AND ?",
    [A_QUEUE_MAX] = "SELECT coalesce(max(id), 0) FROM alert_log_queue",
    [A_QUEUE_NEXT] = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence "
                     "WHERE name = 'alert_log_queue'), 0), coalesce((SELECT "
                     "max(id) FROM alert_log_queue), 0)) + 1",
    [A_QUEUE_DEL] = "DELETE FROM alert_log_queue WHERE id <= ?",
    [A_ANY] = "SELECT id FROM alerts WHERE patient_id = ? AND rule = ? AND "
              "dedup_key = ? ORDER BY id DESC LIMIT 1",
};

struct pv_alerts {
    pv_store *store;
    sqlite3_stmt *st[A__COUNT];
    int fd; /* the log (STDOUT_FILENO for "-"); -1: none */
    int log_is_stdout;
    char *path;           /* for messages */
    int64_t queued_first; /* queue rows of the open transaction */
    int64_t queued_last;
    int64_t written_upto;   /* queue rows up to here are in the file */
    int64_t file_upto;      /* the highest seq written to the file */
    int64_t deleting;       /* ... and are deleted by the open tx */
    int64_t synced_upto;    /* the file is on disk up to this seq */
    int64_t committed_upto; /* lines up to here are committed and durable:
                               the file owes every queued one of them */
    off_t synced_size;      /* the file's size when synced_upto was set */
    off_t cut_to;           /* >= 0: bytes past here are from a write that
                               failed, not cut off yet: nothing is appended
                               before they are (or a newline ends them) */
    int unsynced;           /* written (or opened) since the last fdatasync */
    int write_failing, sync_failing; /* one message per episode */
    pv_alert_hook hook;
    void *hook_ud;
    pv_alerts_counts counts;
    int replay;
    /* No log file, but lines are queued for the engine that holds the
     * lock: pv_alerts_set_queue_only. */
    int queue_only;
    const char *entered_by; /* pv_alerts_act_as: the login that typed it */
    const char *outcome;    /* pv_alerts_do: a close's outcome, for the log */
};

/* Cuts the file back to size: the bytes of a write that failed part-way
 * (a disk that filled up in the middle of a line), or lines a failed sync
 * may not have kept. A torn line may only ever be the file's last: until
 * the cut is done, nothing more is appended (cut_pending retries it). */
static void cut_back(pv_alerts *a, off_t size)
{
    if (a->log_is_stdout)
        return;
    if (ftruncate(a->fd, size) == 0) {
        a->cut_to = -1;
        return;
    }
    pv_warn("alert log %s: cannot cut off the end of a failed write (%s); "
            "nothing more is written before it is",
            a->path, strerror(errno));
    if (a->cut_to < 0 || size < a->cut_to)
        a->cut_to = size;
}

/* Before appending: a cut that failed earlier is tried again. If the file
 * still cannot be cut (an append-only file, chattr +a), the torn piece is
 * ended with a newline instead, so that no more lines are held back (it
 * stays in the file as a line that is not JSON; every line is still there
 * once, whole). Returns 0 when lines may be appended. */
static int cut_pending(pv_alerts *a)
{
    if (a->cut_to < 0)
        return 0;
    struct stat sb;
    if (fstat(a->fd, &sb) == 0 && sb.st_size <= a->cut_to) {
        a->cut_to = -1;
        return 0;
    }
    if (ftruncate(a->fd, a->cut_to) == 0) {
        a->cut_to = -1;
        return 0;
    }
    int e = errno;
    if (write(a->fd, "\n", 1) == 1) {
        pv_warn("alert log %s: cannot cut off a line written in part (%s); "
                "ended it with a newline",
                a->path, strerror(e));
        a->cut_to = -1;
        return 0;
    }
    return -1;
}

/* Makes the lines written so far durable (fdatasync of the log file), so
 * that their queue rows may go: a row deleted while its line is only in
 * the page cache would leave the line nowhere after a power cut. Returns
 * 0 when the rows up to a->file_upto may be deleted. A failed sync may
 * have lost what it should have covered even though the page cache still
 * shows it (the kernel can drop dirty pages it could not write): the file
 * is cut back to what the last good sync covered and those lines are
 * written again from the queue. */
static int sync_log(pv_alerts *a)
{
    if (a->log_is_stdout || !a->unsynced)
        return 0;
    if (fdatasync(a->fd) != 0) {
        if (!a->sync_failing)
            pv_warn("alert log %s: cannot sync it to disk (%s); its lines "
                    "stay queued in the database and are written again",
                    a->path, strerror(errno));
        a->sync_failing = 1;
        cut_back(a, a->synced_size);
        a->file_upto = a->synced_upto;
        if (a->written_upto > a->synced_upto)
            a->written_upto = a->synced_upto;
        return PV_EIO;
    }
    struct stat sb;
    if (fstat(a->fd, &sb) == 0)
        a->synced_size = sb.st_size;
    a->synced_upto = a->file_upto;
    a->unsynced = 0;
    a->sync_failing = 0;
    return 0;
}

/* A command beside a running engine (pv_ingest_open_as, CLIENT role)
 * must not touch the log file (only the engine writes it, and recovery
 * there would write the engine's lines twice), but its workflow lines must
 * not be lost either: each is queued in alert_log_queue in the
 * transaction of its action, under a seq taken there like any other, and
 * the engine writes it in seq order on its next watch tick (engine.c,
 * write_others_lines), or the next start's recovery does. */
void pv_alerts_set_queue_only(pv_alerts *a)
{
    if (a->fd < 0)
        a->queue_only = 1;
}

void pv_alerts_set_replay(pv_alerts *a, int on)
{
    a->replay = on;
}

int pv_severity_rank(const char *s)
{
    static const char *const names[] = {"low", "medium", "high", "critical"};
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i + 1;
    return 0;
}

static int recover_log(pv_alerts *a);
static int done(sqlite3_stmt *st);

int pv_alerts_open(pv_store *store, const char *log_path, pv_alerts **out,
                   char *err, size_t errcap)
{
    *out = NULL;
    pv_alerts *a = calloc(1, sizeof *a);
    if (!a)
        return PV_ENOMEM;
    a->store = store;
    a->fd = -1;
    a->cut_to = -1;
    for (int i = 0; i < A__COUNT; i++)
        if (sqlite3_prepare_v3(pv_store_db(store), asql[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &a->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errcap, "alerts: %s", pv_store_errmsg(store));
            pv_alerts_close(a);
            return PV_EDB;
        }
    if (log_path && !(a->path = strdup(log_path))) {
        pv_alerts_close(a);
        return PV_ENOMEM;
    }
    if (log_path && strcmp(log_path, "-") == 0) {
        a->fd = STDOUT_FILENO;
        a->log_is_stdout = 1;
    } else if (log_path) {
        /* Read too: recovery looks at the last lines. Written with
         * write(2), each call checked, never through stdio's buffer: a
         * failed fflush leaves no way to know which bytes reached the
         * file. */
        a->fd = open(log_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (a->fd < 0) {
            snprintf(err, errcap, "%s: cannot open alert log: %s", log_path,
                     strerror(errno));
            pv_alerts_close(a);
            return PV_EIO;
        }
    }
    if (a->fd >= 0 && recover_log(a))
        pv_warn("alert log: could not write the lines left from the last "
                "stop: %s",
                pv_store_errmsg(store));
    *out = a;
    return 0;
}

void pv_alerts_close(pv_alerts *a)
{
    if (!a)
        return;
    /* A clean stop: lines a failed write left out get one more try, and
     * what is in the file leaves the queue now. */
    if (a->fd >= 0 && a->st[A__COUNT - 1] && !pv_store_in_tx(a->store)) {
        if (a->committed_upto > a->file_upto)
            pv_alerts_flush(a);
        if (a->written_upto > 0 && sync_log(a) == 0) {
            sqlite3_bind_int64(a->st[A_QUEUE_DEL], 1, a->written_upto);
            done(a->st[A_QUEUE_DEL]);
        }
    }
    for (int i = 0; i < A__COUNT; i++)
        sqlite3_finalize(a->st[i]);
    if (a->fd >= 0 && !a->log_is_stdout)
        close(a->fd);
    free(a->path);
    free(a);
}

void pv_alerts_set_hook(pv_alerts *a, pv_alert_hook hook, void *ud)
{
    a->hook = hook;
    a->hook_ud = ud;
}

void pv_alerts_counts_take(pv_alerts *a, pv_alerts_counts *out)
{
    *out = a->counts;
    memset(&a->counts, 0, sizeof a->counts);
}

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_BUSY ? PV_EBUSY : PV_EDB;
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Appends one alert log line for alert 'id' (read back from the table, so
 * the line shows what was stored) to b. */
static int event_json(pv_alerts *a, int64_t id, const char *event,
                      const char *actor, const char *note, int64_t seq,
                      pv_buf *b)
{
    sqlite3_stmt *st = a->st[A_GET];
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return PV_ENOTFOUND;
    }
    char now[PV_TIME_BUFSZ];
    pv_buf_puts(b, "{");
    if (seq > 0)
        pv_buf_printf(b, "\"seq\":%lld,", (long long)seq);
    pv_buf_puts(b, "\"time\":");
    pv_buf_json_str(b, pv_time_format(pv_store_now(a->store), now), (size_t)-1);
    pv_buf_puts(b, ",\"event\":");
    pv_buf_json_str(b, event, (size_t)-1);
    pv_buf_printf(b, ",\"alert_id\":%lld", (long long)id);
    static const char *const names[] = {"patient_id", "rule", "signal",
                                        "severity"};
    for (int i = 0; i < 4; i++) {
        pv_buf_printf(b, ",\"%s\":", names[i]);
        pv_buf_json_str(b, col(st, 1 + i), (size_t)-1);
    }
    pv_buf_puts(b, ",\"grade\":");
    if (sqlite3_column_type(st, 5) == SQLITE_NULL)
        pv_buf_puts(b, "null");
    else
        pv_buf_printf(b, "%d", sqlite3_column_int(st, 5));
    pv_buf_puts(b, ",\"title\":");
    pv_buf_json_str(b, col(st, 6), (size_t)-1);
    pv_buf_puts(b, ",\"detail\":");
    pv_buf_json_str(b, col(st, 7), (size_t)-1);
    pv_buf_puts(b, ",\"action\":");
    pv_buf_json_str(b, col(st, 8), (size_t)-1);
    pv_buf_puts(b, ",\"status\":");
    pv_buf_json_str(b, col(st, 9), (size_t)-1);
    pv_buf_printf(b, ",\"occurrences\":%d", sqlite3_column_int(st, 12));
    pv_buf_puts(b, ",\"evidence\":");
    const char *ev = col(st, 10);
    pv_buf_puts(b, ev && *ev ? ev : "[]");
    pv_buf_puts(b, ",\"rule_sha256\":");
    pv_buf_json_str(b, col(st, 15), (size_t)-1);
    pv_buf_puts(b, ",\"engine_version\":");
    pv_buf_json_str(b, col(st, 16), (size_t)-1);
    if (actor) {
        pv_buf_puts(b, ",\"by\":");
        pv_buf_json_str(b, actor, (size_t)-1);
    }
    if (actor && a->entered_by && strcmp(actor, a->entered_by)) {
        pv_buf_puts(b, ",\"entered_by\":");
        pv_buf_json_str(b, a->entered_by, (size_t)-1);
    }
    if (note) {
        pv_buf_puts(b, ",\"note\":");
        pv_buf_json_str(b, note, (size_t)-1);
    }
    if (a->outcome) {
        /* Issue 16, an addition to the "closed" line. */
        pv_buf_puts(b, ",\"outcome\":");
        pv_buf_json_str(b, a->outcome, (size_t)-1);
    }
    pv_buf_puts(b, "}");
    sqlite3_reset(st);
    return pv_buf_ok(b) ? 0 : PV_ENOMEM;
}

static int add_action(pv_alerts *a, int64_t id, const char *actor,
                      const char *action, const char *note)
{
    char now[PV_TIME_BUFSZ];
    sqlite3_stmt *st = a->st[A_ACTION];
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, pv_time_format(pv_store_now(a->store), now), -1,
                      SQLITE_TRANSIENT);
    bind_opt(st, 3, actor);
    bind_opt(st, 4, action);
    bind_opt(st, 5, note);
    return done(st);
}

/* Queues the log line of an event and tells the hook. */
static int emit(pv_alerts *a, int64_t id, const char *event,
                const pv_alert_in *in, const char *actor, const char *note)
{
    int rc;
    int64_t seq = 0;
    int queue = a->fd >= 0 || a->queue_only;
    if (queue) {
        /* The line's sequence number is its queue row id, taken inside
         * this transaction (which holds the write lock), so it is unique
         * and increasing across processes; recovery uses it to write
         * exactly the lines the file does not have. */
        sqlite3_stmt *n = a->st[A_QUEUE_NEXT];
        if (sqlite3_step(n) == SQLITE_ROW)
            seq = sqlite3_column_int64(n, 0);
        sqlite3_reset(n);
        if (seq <= 0)
            return PV_EDB;
    }
    pv_buf line = PV_BUF_INIT;
    rc = event_json(a, id, event, actor, note, seq, &line);
    if (!rc && queue) {
        /* The line waits in the database, not in memory, until the
         * transaction commits: memory stays flat however many alerts one
         * big file raises, and a crash in between loses no line. Rows
         * already written to the file are dropped here, riding on this
         * transaction rather than paying a commit of their own, once
         * the file has them on disk (one fdatasync per such transaction,
         * not per line). */
        if (a->fd >= 0 && a->written_upto > 0 && sync_log(a) == 0) {
            sqlite3_bind_int64(a->st[A_QUEUE_DEL], 1, a->written_upto);
            rc = done(a->st[A_QUEUE_DEL]);
            if (!rc) {
                a->deleting = a->written_upto;
                a->written_upto = 0;
            }
        }
        sqlite3_stmt *q = a->st[A_QUEUE_ADD];
        sqlite3_bind_int64(q, 1, seq);
        sqlite3_bind_text(q, 2, line.ptr, (int)line.len, SQLITE_TRANSIENT);
        if (!rc)
            rc = done(q);
        if (!rc) {
            if (!a->queued_first)
                a->queued_first = seq;
            a->queued_last = seq;
        }
    }
    if (!rc && a->hook) {
        pv_alert_event ev = {event, id, pv_buf_cstr(&line)};
        rc = a->hook(a->hook_ud, &ev, in, id);
    }
    if (!rc) /* /metrics: alert events by rule, severity, event */
        pv_metrics_alert_line(event, pv_buf_cstr(&line));
    pv_buf_free(&line);
    return rc;
}

int pv_alerts_raise(pv_alerts *a, const pv_alert_in *in, const char **event_out,
                    int64_t *id_out)
{
    char now[PV_TIME_BUFSZ];
    pv_time_format(pv_store_now(a->store), now);
    if (a->replay) {
        sqlite3_stmt *q = a->st[A_ANY];
        bind_opt(q, 1, in->patient_id);
        bind_opt(q, 2, in->rule);
        bind_opt(q, 3, in->key);
        int found = sqlite3_step(q) == SQLITE_ROW;
        int64_t existing = found ? sqlite3_column_int64(q, 0) : 0;
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
        if (found) {
            if (event_out)
                *event_out = "existing";
            if (id_out)
                *id_out = existing;
            return 0;
        }
    }
    sqlite3_stmt *f = a->st[A_FIND];
    bind_opt(f, 1, in->patient_id);
    bind_opt(f, 2, in->rule);
    bind_opt(f, 3, in->key);
    int rc = sqlite3_step(f);
    int64_t id = 0;
    int old_grade = 0, old_has_grade = 0, old_sev = 0;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(f, 0);
        old_has_grade = sqlite3_column_type(f, 1) != SQLITE_NULL;
        old_grade = sqlite3_column_int(f, 1);
        old_sev = pv_severity_rank(col(f, 2));
    }
    sqlite3_reset(f);
    sqlite3_clear_bindings(f);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc == SQLITE_BUSY ? PV_EBUSY : PV_EDB;

    const char *event;
    if (!id) {
        sqlite3_stmt *st = a->st[A_INSERT];
        bind_opt(st, 1, in->patient_id);
        bind_opt(st, 2, in->rule);
        bind_opt(st, 3, in->signal);
        bind_opt(st, 4, in->severity);
        if (in->has_grade)
            sqlite3_bind_int(st, 5, in->grade);
        bind_opt(st, 6, in->title);
        bind_opt(st, 7, in->detail);
        bind_opt(st, 8, in->action);
        bind_opt(st, 9, in->key);
        sqlite3_bind_text(st, 10, now, -1, SQLITE_TRANSIENT);
        bind_opt(st, 11, in->evidence_json);
        bind_opt(st, 12, in->rule_sha256);
        sqlite3_bind_text(st, 13, PV_VERSION, -1, SQLITE_STATIC);
        if ((rc = done(st)))
            return rc;
        id = sqlite3_last_insert_rowid(pv_store_db(a->store));
        event = "opened";
        a->counts.opened++;
        rc = add_action(a, id, "pvwatch", "opened", NULL);
    } else {
        int higher = in->has_grade && old_has_grade
                         ? in->grade > old_grade
                         : (in->has_grade && !old_has_grade) ||
                               pv_severity_rank(in->severity) > old_sev;
        if (higher) {
            sqlite3_stmt *st = a->st[A_ESCALATE];
            bind_opt(st, 1, in->severity);
            if (in->has_grade)
                sqlite3_bind_int(st, 2, in->grade);
            bind_opt(st, 3, in->title);
            bind_opt(st, 4, in->detail);
            bind_opt(st, 5, in->action);
            bind_opt(st, 6, in->evidence_json);
            sqlite3_bind_text(st, 7, now, -1, SQLITE_TRANSIENT);
            bind_opt(st, 8, in->rule_sha256);
            sqlite3_bind_int64(st, 9, id);
            event = "escalated";
            a->counts.escalated++;
            rc = done(st);
            if (!rc)
                rc = add_action(a, id, "pvwatch", "escalated", NULL);
        } else {
            sqlite3_stmt *st = a->st[A_REPEAT];
            sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, id);
            event = "repeated";
            a->counts.repeated++;
            rc = done(st);
        }
    }
    if (!rc)
        rc = emit(a, id, event, in, NULL, NULL);
    if (event_out)
        *event_out = event;
    if (id_out)
        *id_out = id;
    return rc;
}

pv_alerts_lines pv_alerts_take(pv_alerts *a)
{
    pv_alerts_lines l = {a->queued_first, a->queued_last, 0};
    a->queued_first = a->queued_last = 0;
    a->deleting = 0;
    return l;
}

/* write(2) until all of it is written; 0, or -1 with errno. *done gets
 * the bytes written either way. */
static int write_all(int fd, const char *p, size_t n, size_t *done)
{
    *done = 0;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        *done += (size_t)w;
    }
    return 0;
}

/* Lines are appended in chunks of about this size: one write(2) each. */
#define LOG_CHUNK 65536

/* Appends the queued lines after a->file_upto up to seq 'upto' to the
 * file, in seq order, and advances a->file_upto over what was written
 * whole. A write that fails (the disk is full) is cut back to the end of
 * the last line it wrote whole, so the file never keeps part of a line,
 * and the rest stays queued for the next call. *n_out (may be NULL)
 * counts the lines written. Returns 0 when every line up to 'upto' is in
 * the file; PV_EIO (errno set) or PV_EDB otherwise. */
static int write_range(pv_alerts *a, int64_t upto, long *n_out)
{
    long n = 0;
    if (n_out)
        *n_out = 0;
    if (a->fd < 0 || upto <= a->file_upto)
        return 0;
    off_t good = 0;
    if (a->log_is_stdout) {
        fflush(stdout); /* keep the order of what the CLI printed */
    } else {
        struct stat sb;
        if (cut_pending(a) != 0 || fstat(a->fd, &sb) != 0)
            return PV_EIO;
        good = sb.st_size;
    }
    sqlite3_stmt *st = a->st[A_QUEUE_RANGE];
    sqlite3_bind_int64(st, 1, a->file_upto + 1);
    sqlite3_bind_int64(st, 2, upto);
    pv_buf chunk = PV_BUF_INIT;
    /* Where each line of the chunk ends, and its seq. */
    struct line_end {
        size_t end;
        int64_t seq;
    } *ends = NULL;
    size_t chunk_n = 0, ends_cap = 0;
    int rc = 0, e = 0;
    for (;;) {
        int sr = sqlite3_step(st);
        if (sr == SQLITE_ROW) {
            if (chunk_n == ends_cap) {
                size_t cap = ends_cap ? 2 * ends_cap : 256;
                struct line_end *grown = realloc(ends, cap * sizeof *ends);
                if (!grown) {
                    rc = PV_ENOMEM;
                    break;
                }
                ends = grown;
                ends_cap = cap;
            }
            pv_buf_append(&chunk, (const char *)sqlite3_column_text(st, 1),
                          (size_t)sqlite3_column_bytes(st, 1));
            pv_buf_append(&chunk, "\n", 1);
            ends[chunk_n].end = chunk.len;
            ends[chunk_n].seq = sqlite3_column_int64(st, 0);
            chunk_n++;
            if (chunk.len < LOG_CHUNK && pv_buf_ok(&chunk))
                continue;
        } else if (sr != SQLITE_DONE) {
            rc = PV_EDB;
            break;
        }
        if (!pv_buf_ok(&chunk)) {
            rc = PV_ENOMEM;
            break;
        }
        if (chunk_n) {
            size_t wrote;
            int failed = write_all(a->fd, chunk.ptr, chunk.len, &wrote);
            if (failed)
                e = errno;
            /* The lines written whole stay; a part of one is cut off. */
            size_t whole = 0;
            while (whole < chunk_n && ends[whole].end <= wrote)
                whole++;
            if (whole) {
                good += (off_t)ends[whole - 1].end;
                a->file_upto = ends[whole - 1].seq;
                a->unsynced = 1;
                n += (long)whole;
            }
            if (failed) {
                rc = PV_EIO;
                break;
            }
        }
        pv_buf_reset(&chunk);
        chunk_n = 0;
        if (sr == SQLITE_DONE)
            break;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pv_buf_free(&chunk);
    free(ends);
    if (rc == PV_EIO)
        cut_back(a, good);
    else if (!rc)
        a->file_upto = upto; /* seqs without a row are no line */
    if (a->file_upto > a->written_upto)
        a->written_upto = a->file_upto;
    if (n_out)
        *n_out = n;
    errno = e;
    return rc;
}

/* The queued lines a committed transaction owes the file and that are not
 * in it yet (a write failed): 0 when there are none. */
static long owed(pv_alerts *a)
{
    if (a->fd < 0 || a->committed_upto <= a->file_upto)
        return 0;
    sqlite3_stmt *st = a->st[A_QUEUE_COUNT];
    sqlite3_bind_int64(st, 1, a->file_upto + 1);
    sqlite3_bind_int64(st, 2, a->committed_upto);
    long n =
        sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 1;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return n;
}

int pv_alerts_write(pv_alerts *a, pv_alerts_lines l)
{
    /* Lines go into the file in seq order, each once. Everything up to
     * l.last is committed and on disk when this is called (seq order is
     * commit order, and what is durable is a prefix of the commits), so
     * lines of earlier commits whose own call has not come yet (MLLP
     * batches waiting for their WAL sync when an ordinary commit wrote its
     * lines) are written now, before these; their own call then finds
     * them written. Otherwise a later line would reach the file first, and
     * after a crash the recovery, which trusts the file's last seq, would
     * never write the earlier ones. Lines an earlier call could not write
     * (the disk was full) come first as well: committed_upto remembers
     * how far the file is owed lines. */
    if (l.last > a->committed_upto)
        a->committed_upto = l.last;
    if (a->fd < 0 || a->committed_upto <= a->file_upto)
        return 0;
    long n = 0;
    int rc = write_range(a, a->committed_upto, &n);
    if (rc) {
        int e = errno;
        if (!a->write_failing) {
            long w = owed(a);
            pv_error("alert log %s: cannot write it (%s); %ld line%s wait "
                     "in the database and are written as soon as it "
                     "takes them",
                     a->path, rc == PV_EIO ? strerror(e) : pv_strerror(rc), w,
                     w == 1 ? "" : "s");
        }
        a->write_failing = 1;
    } else if (a->write_failing) {
        pv_info("alert log %s: written again (%ld line%s that had waited)",
                a->path, n, n == 1 ? "" : "s");
        a->write_failing = 0;
    }
    /* The transaction is committed whatever happened to the file: its
     * lines are safe in alert_log_queue. */
    return 0;
}

long pv_alerts_flush(pv_alerts *a)
{
    if (a->fd < 0)
        return 0;
    pv_alerts_lines none = {0, 0, 0};
    pv_alerts_write(a, none);
    return owed(a);
}

int pv_alerts_committed(pv_alerts *a)
{
    return pv_alerts_write(a, pv_alerts_take(a));
}

/* The highest "seq" among the last whole lines of the log file (0 if
 * none, -1 when the file cannot be read). A last line without its newline
 * (the write was cut short by a crash, or by a power cut that kept only
 * part of it) does not count: it is cut off the file, and written again
 * whole from the queue (its row stays there until the file is synced).
 * The window read grows while it holds no whole line with a seq (lines
 * longer than 64 KiB), up to 16 MiB. */
static int64_t last_seq_in_file(pv_alerts *a)
{
    struct stat sb;
    if (fstat(a->fd, &sb) != 0)
        return -1;
    off_t size = sb.st_size;
    if (size <= 0)
        return 0;
    for (size_t want = 65536;; want *= 2) {
        int last_try = (off_t)want >= size || want >= ((size_t)16 << 20);
        if ((off_t)want > size)
            want = (size_t)size;
        off_t from = size - (off_t)want;
        char *buf = malloc(want + 1);
        if (!buf)
            return -1;
        size_t got = 0;
        while (got < want) {
            ssize_t r = pread(a->fd, buf + got, want - got, from + (off_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < want) {
            free(buf);
            return -1;
        }
        size_t end = got;
        while (end > 0 && buf[end - 1] != '\n')
            end--;
        buf[end] = '\0';
        int64_t best = 0;
        for (char *p = buf; (p = strstr(p, "{\"seq\":")) != NULL; p++) {
            long long v = strtoll(p + 7, NULL, 10);
            if (v > best)
                best = v;
        }
        free(buf);
        if (!best && !last_try)
            continue;
        if (end < got && (end > 0 || from == 0)) {
            pv_warn("alert log %s: cut off a last line written only in part "
                    "(%zu bytes); it is written again whole",
                    a->path, got - end);
            cut_back(a, from + (off_t)end);
        }
        return best;
    }
}

/* Lines committed but perhaps never written (pvwatch stopped between the
 * commit and the write, or the disk was full): the ones the file does not
 * have are written now, so each line is in the file exactly once. Queue
 * rows go only once the file is synced, and only those of lines the file
 * has: a line that could not be written stays queued for the next write
 * or the next start. */
static int recover_log(pv_alerts *a)
{
    int64_t have = a->log_is_stdout ? 0 : last_seq_in_file(a);
    if (have < 0) {
        pv_error("alert log %s: cannot read it (%s); its queued lines are "
                 "kept in the database",
                 a->path, strerror(errno));
        /* Nothing is appended until it can be read: committed_upto stays
         * 0 and file_upto is past every queued line. */
        a->file_upto = INT64_MAX;
        return 0;
    }
    struct stat sb;
    if (!a->log_is_stdout && fstat(a->fd, &sb) == 0)
        a->synced_size = sb.st_size;
    if (a->cut_to >= 0 && a->cut_to < a->synced_size)
        a->synced_size = a->cut_to;
    a->file_upto = a->synced_upto = have;
    a->unsynced = 1; /* what a kill left in the page cache, perhaps */
    sqlite3_stmt *m = a->st[A_QUEUE_MAX];
    int64_t last =
        sqlite3_step(m) == SQLITE_ROW ? sqlite3_column_int64(m, 0) : -1;
    sqlite3_reset(m);
    if (last < 0)
        return PV_EDB;
    a->committed_upto = last;
    long n = 0;
    int rc = write_range(a, last, &n);
    if (n)
        pv_info("alert log: wrote %ld line%s committed before the last stop", n,
                n == 1 ? "" : "s");
    if (rc) {
        const char *why = rc == PV_EIO ? strerror(errno) : pv_strerror(rc);
        long w = owed(a);
        pv_error("alert log %s: cannot write it (%s); %ld line%s wait in the "
                 "database and are written as soon as it takes them",
                 a->path, why, w, w == 1 ? "" : "s");
        a->write_failing = 1;
    }
    if (!last || a->file_upto <= 0 || sync_log(a) != 0)
        return 0;
    sqlite3_bind_int64(a->st[A_QUEUE_DEL], 1,
                       a->file_upto < last ? a->file_upto : last);
    int d = done(a->st[A_QUEUE_DEL]);
    if (!d)
        a->written_upto = 0;
    return d;
}

void pv_alerts_rolled_back(pv_alerts *a)
{
    a->queued_first = a->queued_last = 0;
    if (a->deleting > a->written_upto)
        a->written_upto = a->deleting;
    a->deleting = 0;
    memset(&a->counts, 0, sizeof a->counts);
}

/* The lines of a rolled-back savepoint leave with their queue rows, and
 * their seqs will be taken again (SQLite rolls sqlite_sequence back too):
 * the range of lines to write after the commit must end where it did at
 * the savepoint. Kept as it was, it would mark those seqs written, and the
 * lines that take them later would never reach the file. (The counters
 * count attempts and are left alone.) */
size_t pv_alerts_mark(const pv_alerts *a)
{
    return (size_t)a->queued_last;
}

void pv_alerts_rewind(pv_alerts *a, size_t mark)
{
    int64_t last = (int64_t)mark;
    if (a->queued_last <= last)
        return;
    a->queued_last = last;
    if (last == 0)
        a->queued_first = 0;
}

int pv_alerts_act(pv_alerts *a, int64_t id, const char *action,
                  const char *actor, const char *note, char *err, size_t errcap)
{
    return pv_alerts_act_as(a, id, action, actor, NULL, note, err, errcap);
}

/* ---------------------------------------------------------------------- */
/* Workflow (issue 16): acknowledge, assign, comment, close with outcome   */

/* The outcomes, in display order (alerts.h). The "intervention:*" ones
 * are what rule_stats.c counts as an intervention. */
const char *const pv_alert_outcomes[] = {"intervention:dose_interrupted",
                                         "intervention:dose_reduced",
                                         "intervention:drug_stopped",
                                         "intervention:labs_repeated",
                                         "intervention:referred",
                                         "not_clinically_relevant",
                                         "duplicate",
                                         "false_positive_data_error",
                                         NULL};

static const char *const outcome_labels[] = {"Intervention: dose interrupted",
                                             "Intervention: dose reduced",
                                             "Intervention: drug stopped",
                                             "Intervention: labs repeated",
                                             "Intervention: referred",
                                             "Not clinically relevant",
                                             "Duplicate",
                                             "False positive (data error)",
                                             NULL};

int pv_alert_outcome_index(const char *outcome)
{
    for (int i = 0; outcome && pv_alert_outcomes[i]; i++)
        if (strcmp(outcome, pv_alert_outcomes[i]) == 0)
            return i;
    return -1;
}

const char *pv_alert_outcome_label(const char *outcome)
{
    int i = pv_alert_outcome_index(outcome);
    return i < 0 ? NULL : outcome_labels[i];
}

/* Ceilings for what a person types: an assignee is a name, a note a few
 * sentences (a pasted letter is not refused below 8 KiB), a request id a
 * token the form made. */
#define ASSIGNEE_MAX_CHARS 64
#define NOTE_MAX_BYTES 8192
#define REQUEST_ID_MAX_BYTES 128

/* Copies s without leading and trailing blanks into out (cap bytes).
 * Returns the length, or -1 when it does not fit. */
static long trimmed(const char *s, char *out, size_t cap)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r'))
        n--;
    if (n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return (long)n;
}

/* Characters (UTF-8 code points) in s, or -1 for a control character or
 * a byte that cannot start or continue one. */
static long name_chars(const char *s)
{
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return -1;
        if ((*p & 0xc0) != 0x80)
            n++;
    }
    return n;
}

static int blank(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

/* What an action does: the status it moves to (NULL: none), the word in
 * alert_actions.action, and the alert log event (NULL: no log line). */
typedef struct {
    const char *name, *to, *row, *event;
} act_kind;

static const act_kind act_kinds[] = {
    {"ack", "acknowledged", "acknowledged", "acknowledged"},
    {"close", "closed", "closed", "closed"},
    /* Assignments and comments go to the audit trail only, not to the
     * alert log: its event list is a contract (DESIGN.md, "Alert log")
     * that consumers switch on. */
    {"assign", NULL, "assigned", NULL},
    {"comment", NULL, "commented", NULL},
};

/* Checks what the caller gave, before any transaction. */
static int check_action(const pv_alert_action *act, const act_kind **kind,
                        char *assignee, size_t acap, char *err, size_t errcap)
{
    *kind = NULL;
    for (size_t i = 0; act->action && i < sizeof act_kinds / sizeof *act_kinds;
         i++)
        if (strcmp(act->action, act_kinds[i].name) == 0)
            *kind = &act_kinds[i];
    if (!*kind) {
        snprintf(err, errcap,
                 "unknown action '%s' (ack, assign, comment, "
                 "close)",
                 act->action ? act->action : "");
        return PV_EINVAL;
    }
    const char *name = (*kind)->name;
    if (blank(act->actor)) {
        snprintf(err, errcap, "%s: who did it (the actor) is required", name);
        return PV_EINVAL;
    }
    if (act->note && strlen(act->note) > NOTE_MAX_BYTES) {
        snprintf(err, errcap, "%s: the note is longer than %d bytes", name,
                 NOTE_MAX_BYTES);
        return PV_EINVAL;
    }
    if (act->request_id &&
        (!*act->request_id || strlen(act->request_id) > REQUEST_ID_MAX_BYTES ||
         name_chars(act->request_id) < 0)) {
        snprintf(err, errcap,
                 "%s: the request id must be 1 to %d printable bytes", name,
                 REQUEST_ID_MAX_BYTES);
        return PV_EINVAL;
    }
    int is_close = strcmp(name, "close") == 0;
    int is_assign = strcmp(name, "assign") == 0;
    /* An empty form field is a field not given. */
    const char *outcome = act->outcome && *act->outcome ? act->outcome : NULL;
    if (outcome && !is_close) {
        snprintf(err, errcap, "%s: an outcome is given only when closing",
                 name);
        return PV_EINVAL;
    }
    if (act->assignee && !blank(act->assignee) && !is_assign) {
        snprintf(err, errcap, "%s: an assignee is given only when assigning",
                 name);
        return PV_EINVAL;
    }
    if (is_close && outcome && pv_alert_outcome_index(outcome) < 0) {
        pv_buf b = PV_BUF_INIT;
        for (int i = 0; pv_alert_outcomes[i]; i++)
            pv_buf_printf(&b, "%s%s", i ? ", " : "", pv_alert_outcomes[i]);
        snprintf(err, errcap, "close: unknown outcome '%s' (one of: %s)",
                 outcome, pv_buf_ok(&b) ? pv_buf_cstr(&b) : "?");
        pv_buf_free(&b);
        return PV_EINVAL;
    }
    if (is_close && !outcome && act->require_outcome) {
        snprintf(err, errcap, "close: an outcome is required");
        return PV_EINVAL;
    }
    if (strcmp(name, "comment") == 0 && blank(act->note)) {
        snprintf(err, errcap, "comment: the note is required");
        return PV_EINVAL;
    }
    if (is_assign) {
        long n = act->assignee ? trimmed(act->assignee, assignee, acap) : 0;
        long chars = n > 0 ? name_chars(assignee) : 0;
        if (n < 0 || chars > ASSIGNEE_MAX_CHARS) {
            snprintf(err, errcap,
                     "assign: the assignee is longer than %d characters",
                     ASSIGNEE_MAX_CHARS);
            return PV_EINVAL;
        }
        if (n == 0) {
            snprintf(err, errcap, "assign: the assignee is required");
            return PV_EINVAL;
        }
        if (chars < 0) {
            snprintf(err, errcap,
                     "assign: the assignee contains a control character");
            return PV_EINVAL;
        }
    }
    return 0;
}

/* A request id already recorded: 1 when by this very action (a double
 * submit: nothing more to do), 0 when new, PV_EINVAL when another alert or
 * action took it, PV_EDB. */
static int request_seen(pv_alerts *a, const pv_alert_action *act,
                        const act_kind *kind, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(a->store),
                           "SELECT alert_id, action FROM alert_actions "
                           "WHERE request_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_text(st, 1, act->request_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = 0;
    } else if (rc == SQLITE_ROW) {
        int64_t other = sqlite3_column_int64(st, 0);
        const char *what = col(st, 1);
        if (other == act->alert_id && what && strcmp(what, kind->row) == 0) {
            rc = 1;
        } else {
            snprintf(err, errcap,
                     "request id '%s' was used already (alert %lld, %s)",
                     act->request_id, (long long)other, what ? what : "?");
            rc = PV_EINVAL;
        }
    } else {
        rc = rc == SQLITE_BUSY ? PV_EBUSY : PV_EDB;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The audit row: actor, who typed it, the note, the outcome and the
 * request id (db/migrations/0007, 0009). */
static int add_action_row(pv_alerts *a, const pv_alert_action *act,
                          const char *row, const char *note)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(a->store),
                           "INSERT INTO alert_actions (alert_id, at, actor, "
                           "action, note, entered_by, outcome, request_id) "
                           "VALUES (?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    char now[PV_TIME_BUFSZ];
    sqlite3_bind_int64(st, 1, act->alert_id);
    sqlite3_bind_text(st, 2, pv_time_format(pv_store_now(a->store), now), -1,
                      SQLITE_TRANSIENT);
    bind_opt(st, 3, act->actor);
    bind_opt(st, 4, row);
    bind_opt(st, 5, note);
    bind_opt(st, 6, act->entered_by);
    bind_opt(st, 7, act->outcome);
    bind_opt(st, 8, act->request_id);
    int rc = done(st);
    sqlite3_finalize(st);
    return rc;
}

static int set_assignee(pv_alerts *a, int64_t id, const char *assignee)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(a->store),
                           "UPDATE alerts SET assignee = ?, updated_at = ? "
                           "WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    char now[PV_TIME_BUFSZ];
    sqlite3_bind_text(st, 1, assignee, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, pv_time_format(pv_store_now(a->store), now), -1,
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, id);
    int rc = done(st);
    sqlite3_finalize(st);
    return rc;
}

/* The copies on the alert of its audit trail (db/migrations/0009): the
 * first acknowledgement's time, the close's outcome. */
static int set_copies(pv_alerts *a, int64_t id, const act_kind *kind,
                      const char *outcome, const char *now)
{
    int ack = strcmp(kind->to, "acknowledged") == 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(a->store),
                           ack ? "UPDATE alerts SET acknowledged_at = "
                                 "coalesce(acknowledged_at, ?) WHERE id = ?"
                               : "UPDATE alerts SET outcome = ? WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    bind_opt(st, 1, ack ? now : outcome);
    sqlite3_bind_int64(st, 2, id);
    int rc = done(st);
    sqlite3_finalize(st);
    return rc;
}

/* alerts.assignee of id into out (empty: nobody). */
static int get_assignee(pv_alerts *a, int64_t id, char *out, size_t cap)
{
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(pv_store_db(a->store),
                           "SELECT assignee FROM alerts WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && col(st, 0))
        snprintf(out, cap, "%s", col(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : PV_EDB;
}

/* The status check: 0 when kind may act on an alert in status. */
static int status_allows(const act_kind *kind, int64_t id, const char *status,
                         char *err, size_t errcap)
{
    int closed = strcmp(status, "closed") == 0;
    if (kind->to && closed) {
        snprintf(
            err, errcap, "alert %lld is closed and cannot be %s", (long long)id,
            strcmp(kind->to, "closed") == 0 ? "closed again" : "acknowledged");
        return PV_ESTATE;
    }
    if (kind->to && strcmp(status, kind->to) == 0) {
        snprintf(err, errcap, "alert %lld is already %s", (long long)id,
                 kind->to);
        return PV_ESTATE;
    }
    if (strcmp(kind->name, "assign") == 0 && closed) {
        snprintf(err, errcap, "alert %lld is closed and cannot be assigned",
                 (long long)id);
        return PV_ESTATE;
    }
    /* A comment is allowed in any status: one on a closed alert is for
     * hand-over and review. */
    return 0;
}

int pv_alerts_do(pv_alerts *a, const pv_alert_action *given, char *err,
                 size_t errcap)
{
    /* An empty form field is a field not given. */
    pv_alert_action norm = *given;
    if (norm.outcome && !*norm.outcome)
        norm.outcome = NULL;
    if (norm.request_id && !*norm.request_id)
        norm.request_id = NULL;
    const pv_alert_action *act = &norm;
    const act_kind *kind;
    char assignee[4 * ASSIGNEE_MAX_CHARS + 1];
    int rc = check_action(act, &kind, assignee, sizeof assignee, err, errcap);
    if (rc)
        return rc;
    int64_t id = act->alert_id;
    if ((rc = pv_store_begin(a->store))) {
        snprintf(err, errcap, "cannot start a transaction: %s",
                 pv_store_errmsg(a->store));
        return rc;
    }
    sqlite3_stmt *g = a->st[A_GET];
    sqlite3_bind_int64(g, 1, id);
    if (sqlite3_step(g) != SQLITE_ROW) {
        sqlite3_reset(g);
        pv_store_rollback(a->store);
        snprintf(err, errcap, "no alert with id %lld", (long long)id);
        return PV_ENOTFOUND;
    }
    char status[32];
    snprintf(status, sizeof status, "%s", col(g, 9));
    sqlite3_reset(g);
    /* A double submit is answered before the status: the second ack of a
     * form finds the alert acknowledged by the first. */
    if (act->request_id) {
        rc = request_seen(a, act, kind, err, errcap);
        if (rc) {
            pv_store_rollback(a->store);
            if (rc == PV_EDB || rc == PV_EBUSY)
                snprintf(err, errcap, "database error: %s",
                         pv_store_errmsg(a->store));
            return rc == 1 ? 0 : rc;
        }
    }
    if ((rc = status_allows(kind, id, status, err, errcap))) {
        pv_store_rollback(a->store);
        return rc;
    }
    const char *note = act->note;
    if (strcmp(kind->name, "assign") == 0) {
        char current[4 * ASSIGNEE_MAX_CHARS + 64];
        rc = get_assignee(a, id, current, sizeof current);
        if (!rc && strcmp(current, assignee) == 0) {
            pv_store_rollback(a->store);
            snprintf(err, errcap, "alert %lld is already assigned to %s",
                     (long long)id, assignee);
            return PV_ESTATE;
        }
        if (!rc)
            rc = set_assignee(a, id, assignee);
        /* The row's note names the assignee; a note given with it
         * follows. */
        pv_buf b = PV_BUF_INIT;
        pv_buf_printf(&b, "%s%s%s", assignee, act->note ? ": " : "",
                      act->note ? act->note : "");
        if (!rc)
            rc = pv_buf_ok(&b)
                     ? add_action_row(a, act, kind->row, pv_buf_cstr(&b))
                     : PV_ENOMEM;
        pv_buf_free(&b);
    } else {
        if (kind->to) {
            char now[PV_TIME_BUFSZ];
            sqlite3_stmt *st = a->st[A_STATUS];
            sqlite3_bind_text(st, 1, kind->to, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2,
                              pv_time_format(pv_store_now(a->store), now), -1,
                              SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 3, id);
            rc = done(st);
            if (!rc)
                rc = set_copies(a, id, kind, act->outcome, now);
        }
        if (!rc)
            rc = add_action_row(a, act, kind->row, note);
    }
    if (!rc && kind->event) {
        a->entered_by = act->entered_by;
        a->outcome = act->outcome;
        rc = emit(a, id, kind->event, NULL, act->actor, note);
        a->entered_by = NULL;
        a->outcome = NULL;
    }
    if (!rc)
        rc = pv_store_commit(a->store);
    if (rc) {
        pv_store_rollback(a->store);
        pv_alerts_rolled_back(a);
        snprintf(err, errcap, "database error: %s", pv_store_errmsg(a->store));
        return rc;
    }
    return pv_alerts_committed(a);
}

int pv_alerts_act_as(pv_alerts *a, int64_t id, const char *action,
                     const char *actor, const char *entered_by,
                     const char *note, char *err, size_t errcap)
{
    if (strcmp(action, "ack") && strcmp(action, "close")) {
        snprintf(err, errcap, "unknown action '%s' (ack, close)", action);
        return PV_EINVAL;
    }
    pv_alert_action act = {.alert_id = id,
                           .action = action,
                           .actor = actor,
                           .entered_by = entered_by,
                           .note = note};
    return pv_alerts_do(a, &act, err, errcap);
}
/* ---------------------------------------------------------------------- */
/* Printing for the CLI                                                    */

int pv_alerts_print_list(pv_store *store, FILE *out, const char *status,
                         int json)
{
    return pv_alerts_print_list_for(store, out, status, NULL, json);
}

int pv_alerts_print_list_for(pv_store *store, FILE *out, const char *status,
                             const char *assignee, int json)
{
    sqlite3_stmt *st;
    const char *sql =
        "SELECT id, status, severity, grade, patient_id, rule, title, "
        "occurrences, updated_at, signal, detail, action, created_at, "
        "evidence, assignee FROM alerts WHERE (?1 IS NULL OR status = ?1) "
        "AND (?2 IS NULL OR assignee = ?2) ORDER BY id";
    if (sqlite3_prepare_v2(pv_store_db(store), sql, -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    bind_opt(st, 1, status);
    bind_opt(st, 2, assignee);
    if (!json)
        fprintf(out, "%-5s %-12s %-8s %-2s %-16s %-32s %s\n", "ID", "STATUS",
                "SEVERITY", "G", "PATIENT", "RULE", "TITLE");
    int n = 0;
    pv_buf b = PV_BUF_INIT;
    pv_buf e[5] = {PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT,
                   PV_BUF_INIT};
    while (sqlite3_step(st) == SQLITE_ROW) {
        n++;
        if (json) {
            static const char *const names[] = {
                "id",     "status", "severity",    "grade",      "patient_id",
                "rule",   "title",  "occurrences", "updated_at", "signal",
                "detail", "action", "created_at",  "evidence",   "assignee"};
            pv_buf_reset(&b);
            pv_buf_puts(&b, "{");
            for (int i = 0; i < 15; i++) {
                pv_buf_printf(&b, "%s\"%s\":", i ? "," : "", names[i]);
                int t = sqlite3_column_type(st, i);
                if (t == SQLITE_NULL)
                    pv_buf_puts(&b, "null");
                else if (t == SQLITE_INTEGER)
                    pv_buf_printf(&b, "%lld",
                                  (long long)sqlite3_column_int64(st, i));
                else if (i == 13)
                    pv_buf_puts(&b, col(st, i));
                else
                    pv_buf_json_str(&b, col(st, i), (size_t)-1);
            }
            pv_buf_puts(&b, "}");
            fprintf(out, "%s\n", pv_buf_cstr(&b));
        } else {
            char grade[8] = "-";
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                snprintf(grade, sizeof grade, "%d", sqlite3_column_int(st, 3));
            /* Feed text (a patient id, a title built from values) goes to
             * a terminal: control characters escaped. */
            fprintf(out, "%-5lld %-12s %-8s %-2s %-16s %-32s %s",
                    (long long)sqlite3_column_int64(st, 0),
                    pv_buf_escape(&e[0], col(st, 1)),
                    pv_buf_escape(&e[1], col(st, 2)), grade,
                    pv_buf_escape(&e[2], col(st, 4)),
                    pv_buf_escape(&e[3], col(st, 5)),
                    pv_buf_escape(&e[4], col(st, 6)));
            int occ = sqlite3_column_int(st, 7);
            if (occ > 1)
                fprintf(out, " (x%d)", occ);
            fputc('\n', out);
        }
    }
    pv_buf_free(&b);
    for (int i = 0; i < 5; i++)
        pv_buf_free(&e[i]);
    sqlite3_finalize(st);
    if (!json && n == 0) {
        pv_buf_reset(&b);
        fprintf(out, "(no alerts%s%s%s%s)\n", status ? " with status " : "",
                status ? status : "", assignee ? " assigned to " : "",
                assignee ? pv_buf_escape(&b, assignee) : "");
        pv_buf_free(&b);
    }
    return 0;
}

int pv_alerts_print_show(pv_store *store, FILE *out, int64_t id, int json)
{
    pv_alerts *a;
    char err[256];
    if (pv_alerts_open(store, NULL, &a, err, sizeof err))
        return PV_EDB;
    pv_buf b = PV_BUF_INIT;
    int rc = event_json(a, id, "show", NULL, NULL, 0, &b);
    if (rc) {
        pv_alerts_close(a);
        pv_buf_free(&b);
        return rc;
    }
    /* Issue 16: who has it, and what its close ended in. */
    sqlite3_stmt *x;
    char *assignee = NULL, *outcome = NULL;
    if (sqlite3_prepare_v2(pv_store_db(store),
                           "SELECT assignee, outcome FROM alerts WHERE "
                           "id = ?",
                           -1, &x, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(x, 1, id);
        if (sqlite3_step(x) == SQLITE_ROW) {
            if (col(x, 0))
                assignee = strdup(col(x, 0));
            if (col(x, 1))
                outcome = strdup(col(x, 1));
        }
        sqlite3_finalize(x);
    }
    sqlite3_stmt *g = a->st[A_GET];
    sqlite3_bind_int64(g, 1, id);
    sqlite3_step(g);
    if (json) {
        /* The alert and its audit trail, as one JSON object. */
        b.len--; /* drop the closing brace */
        pv_buf_puts(&b, ",\"assignee\":");
        pv_buf_json_str(&b, assignee, (size_t)-1);
        pv_buf_puts(&b, ",\"outcome\":");
        pv_buf_json_str(&b, outcome, (size_t)-1);
        pv_buf_puts(&b, ",\"actions\":[");
        sqlite3_stmt *st;
        sqlite3_prepare_v2(pv_store_db(store),
                           "SELECT at, actor, action, note, entered_by, "
                           "outcome FROM alert_actions WHERE alert_id = ? "
                           "ORDER BY id",
                           -1, &st, NULL);
        sqlite3_bind_int64(st, 1, id);
        int i = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            pv_buf_puts(&b, i++ ? ",{\"at\":" : "{\"at\":");
            pv_buf_json_str(&b, col(st, 0), (size_t)-1);
            pv_buf_puts(&b, ",\"by\":");
            pv_buf_json_str(&b, col(st, 1), (size_t)-1);
            pv_buf_puts(&b, ",\"action\":");
            pv_buf_json_str(&b, col(st, 2), (size_t)-1);
            pv_buf_puts(&b, ",\"note\":");
            pv_buf_json_str(&b, col(st, 3), (size_t)-1);
            pv_buf_puts(&b, ",\"entered_by\":");
            pv_buf_json_str(&b, col(st, 4), (size_t)-1);
            pv_buf_puts(&b, ",\"outcome\":");
            pv_buf_json_str(&b, col(st, 5), (size_t)-1);
            pv_buf_puts(&b, "}");
        }
        sqlite3_finalize(st);
        pv_buf_puts(&b, "]}");
        fprintf(out, "%s\n", pv_buf_cstr(&b));
    } else {
        /* Feed text goes to a terminal: control characters escaped. */
        pv_buf e[5] = {PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT, PV_BUF_INIT,
                       PV_BUF_INIT};
#define ESC(i, v) pv_buf_escape(&e[i], (v))
        fprintf(out, "Alert %lld: %s\n", (long long)id, ESC(0, col(g, 6)));
        fprintf(out, "  status:      %s\n", ESC(0, col(g, 9)));
        fprintf(out, "  assignee:    %s\n", assignee ? ESC(0, assignee) : "-");
        if (outcome) {
            const char *label = pv_alert_outcome_label(outcome);
            fprintf(out, "  outcome:     %s (%s)\n", ESC(0, outcome),
                    label ? label : "not in the list of outcomes");
        }
        fprintf(out, "  severity:    %s", ESC(0, col(g, 4)));
        if (sqlite3_column_type(g, 5) != SQLITE_NULL)
            fprintf(out, " (grade %d)", sqlite3_column_int(g, 5));
        fprintf(out, "\n  patient:     %s\n", ESC(0, col(g, 1)));
        fprintf(out, "  rule:        %s (signal %s)\n", ESC(0, col(g, 2)),
                ESC(1, col(g, 3)));
        if (col(g, 7))
            fprintf(out, "  detail:      %s\n", ESC(0, col(g, 7)));
        if (col(g, 8))
            fprintf(out, "  action:      %s\n", ESC(0, col(g, 8)));
        fprintf(out, "  opened:      %s\n", ESC(0, col(g, 13)));
        fprintf(out, "  updated:     %s (%d occurrence%s)\n",
                ESC(0, col(g, 11)), sqlite3_column_int(g, 12),
                sqlite3_column_int(g, 12) == 1 ? "" : "s");
        fprintf(out, "  evidence:    %s\n",
                ESC(0, col(g, 10) ? col(g, 10) : "[]"));
        fprintf(out, "  provenance:  rule source sha256 %s, pvwatch %s\n",
                ESC(0, col(g, 15) ? col(g, 15) : "-"),
                ESC(1, col(g, 16) ? col(g, 16) : "-"));
        fprintf(out, "  audit trail:\n");
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(pv_store_db(store),
                               "SELECT at, actor, action, note, entered_by, "
                               "outcome FROM alert_actions WHERE alert_id = ? "
                               "ORDER BY id",
                               -1, &st, NULL) != SQLITE_OK ||
            sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
            fprintf(out, "    (cannot be read: %s)\n",
                    sqlite3_errmsg(pv_store_db(store)));
            rc = PV_EDB;
        }
        while (st && sqlite3_step(st) == SQLITE_ROW) {
            /* "entered by X on behalf of Y" when X typed it for Y. */
            const char *typist = col(st, 4), *y = col(st, 1);
            int behalf = typist && y && strcmp(typist, y);
            const char *ey = ESC(2, y);
            fprintf(out, "    %s  %-13s by %s", ESC(0, col(st, 0)),
                    ESC(1, col(st, 2)), ey);
            if (behalf)
                fprintf(out, " (entered by %s on behalf of %s)", ESC(4, typist),
                        ey);
            if (col(st, 5))
                fprintf(out, " [outcome %s]", ESC(1, col(st, 5)));
            fprintf(out, "%s%s\n", col(st, 3) ? ": " : "",
                    col(st, 3) ? ESC(3, col(st, 3)) : "");
        }
#undef ESC
        for (int i = 0; i < 5; i++)
            pv_buf_free(&e[i]);
        sqlite3_finalize(st);
    }
    sqlite3_reset(g);
    free(assignee);
    free(outcome);
    pv_buf_free(&b);
    pv_alerts_close(a);
    return rc;
}
