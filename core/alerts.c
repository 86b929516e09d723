/* alerts.c: see alerts.h. */
#include "alerts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

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
    [A_QUEUE_RANGE] = "SELECT line FROM alert_log_queue WHERE id BETWEEN ? "
                      "AND ? ORDER BY id",
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
    FILE *log;
    int log_is_stdout;
    int64_t queued_first; /* queue rows of the open transaction */
    int64_t queued_last;
    int64_t written_upto; /* queue rows up to here are in the file */
    int64_t file_upto;    /* the highest seq written to the file */
    int64_t deleting;     /* ... and are deleted by the open tx */
    int64_t synced_upto;  /* the file is on disk up to this seq */
    pv_alert_hook hook;
    void *hook_ud;
    pv_alerts_counts counts;
    int replay;
};

/* Makes the lines written so far durable (fdatasync of the log file), so
 * that their queue rows may go: a row deleted while its line is only in
 * the page cache would leave the line nowhere after a power cut. Returns
 * 0 when the rows up to a->file_upto may be deleted. */
static int sync_log(pv_alerts *a)
{
    if (a->log_is_stdout || a->synced_upto >= a->file_upto)
        return 0;
    if (fflush(a->log) != 0 || fdatasync(fileno(a->log)) != 0) {
        pv_warn("alert log: cannot sync it to disk (%s); its lines stay "
                "queued in the database",
                strerror(errno));
        return PV_EIO;
    }
    a->synced_upto = a->file_upto;
    return 0;
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
    for (int i = 0; i < A__COUNT; i++)
        if (sqlite3_prepare_v3(pv_store_db(store), asql[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &a->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errcap, "alerts: %s", pv_store_errmsg(store));
            pv_alerts_close(a);
            return PV_EDB;
        }
    if (log_path && strcmp(log_path, "-") == 0) {
        a->log = stdout;
        a->log_is_stdout = 1;
    } else if (log_path) {
        /* Read too: recovery looks at the last lines. */
        int fd = open(log_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0 || !(a->log = fdopen(fd, "a"))) {
            snprintf(err, errcap, "%s: cannot open alert log: %s", log_path,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            pv_alerts_close(a);
            return PV_EIO;
        }
    }
    if (a->log && recover_log(a))
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
    /* A clean stop: what is in the file leaves the queue now. */
    if (a->written_upto > 0 && a->st[A_QUEUE_DEL] &&
        !pv_store_in_tx(a->store) && sync_log(a) == 0) {
        sqlite3_bind_int64(a->st[A_QUEUE_DEL], 1, a->written_upto);
        done(a->st[A_QUEUE_DEL]);
    }
    for (int i = 0; i < A__COUNT; i++)
        sqlite3_finalize(a->st[i]);
    if (a->log && !a->log_is_stdout)
        fclose(a->log);
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
    if (note) {
        pv_buf_puts(b, ",\"note\":");
        pv_buf_json_str(b, note, (size_t)-1);
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
    if (a->log) {
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
    if (!rc && a->log) {
        /* The line waits in the database, not in memory, until the
         * transaction commits: memory stays flat however many alerts one
         * big file raises, and a crash in between loses no line. Rows
         * already written to the file are dropped here, riding on this
         * transaction rather than paying a commit of their own, once
         * the file has them on disk (one fdatasync per such transaction,
         * not per line). */
        if (a->written_upto > 0 && sync_log(a) == 0) {
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

int pv_alerts_write(pv_alerts *a, pv_alerts_lines l)
{
    int rc = 0;
    /* Lines go into the file in seq order, each once. Everything up to
     * l.last is committed and on disk when this is called (seq order is
     * commit order, and what is durable is a prefix of the commits), so
     * lines of earlier commits whose own call has not come yet (MLLP
     * batches waiting for their WAL sync when an ordinary commit wrote its
     * lines) are written now, before these; their own call then finds
     * them written. Otherwise a later line would reach the file first, and
     * after a crash the recovery, which trusts the file's last seq, would
     * never write the earlier ones. */
    if (a->log && l.last > a->file_upto) {
        sqlite3_stmt *st = a->st[A_QUEUE_RANGE];
        sqlite3_bind_int64(st, 1, a->file_upto + 1);
        sqlite3_bind_int64(st, 2, l.last);
        while (!rc && sqlite3_step(st) == SQLITE_ROW)
            if (fprintf(a->log, "%s\n",
                        (const char *)sqlite3_column_text(st, 0)) < 0)
                rc = PV_EIO;
        sqlite3_reset(st);
        if (!rc && fflush(a->log) != 0)
            rc = PV_EIO;
        if (rc) {
            pv_error("cannot write the alert log: %s", strerror(errno));
        } else {
            a->file_upto = l.last;
            if (l.last > a->written_upto)
                a->written_upto = l.last;
        }
    }
    return rc;
}

int pv_alerts_committed(pv_alerts *a)
{
    return pv_alerts_write(a, pv_alerts_take(a));
}

/* The highest "seq" among the last whole lines of the log file (0 if
 * none). A last line without its newline (the write was cut short by a
 * crash, or by a power cut that kept only part of it) does not count: it
 * is cut off the file, and written again whole from the queue (its row
 * stays there until the file is synced). *torn is set when it could not be
 * cut off (then a newline ends it). */
static int64_t last_seq_in_file(FILE *f, int *torn)
{
    *torn = 0;
    if (fflush(f) != 0 || fseeko(f, 0, SEEK_END) != 0)
        return 0;
    off_t size = ftello(f);
    if (size <= 0)
        return 0;
    size_t want = size > 65536 ? 65536 : (size_t)size;
    char *buf = malloc(want + 1);
    if (!buf)
        return 0;
    int fd = fileno(f);
    off_t from = size - (off_t)want;
    ssize_t got = pread(fd, buf, want, from);
    int64_t best = 0;
    if (got > 0) {
        size_t end = (size_t)got;
        if (buf[end - 1] != '\n') {
            while (end > 0 && buf[end - 1] != '\n')
                end--;
            if ((end > 0 || from == 0) &&
                ftruncate(fd, from + (off_t)end) == 0) {
                pv_warn("alert log: cut off a last line written only in part "
                        "(%zd bytes); it is written again whole",
                        got - (ssize_t)end);
                fseeko(f, 0, SEEK_END);
            } else {
                *torn = 1; /* left in the file, ended by a newline */
            }
        }
        buf[end] = '\0';
        for (char *p = buf; (p = strstr(p, "{\"seq\":")) != NULL; p++) {
            long long v = strtoll(p + 7, NULL, 10);
            if (v > best)
                best = v;
        }
    }
    free(buf);
    return best;
}

/* Lines committed but perhaps never written (pvwatch stopped between the
 * commit and the write): the ones the file does not have are written now,
 * so each line is in the file exactly once. */
static int recover_log(pv_alerts *a)
{
    sqlite3 *db = pv_store_db(a->store);
    sqlite3_stmt *st;
    int torn = 0;
    int64_t have = a->log_is_stdout ? 0 : last_seq_in_file(a->log, &torn);
    /* A line cut short that could not be cut off: end it, so that the
     * next line is whole. */
    if (torn)
        fputc('\n', a->log);
    if (sqlite3_prepare_v2(db,
                           "SELECT id, line FROM alert_log_queue ORDER "
                           "BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    int64_t last = 0;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        if (last <= have)
            continue;
        fprintf(a->log, "%s\n", (const char *)sqlite3_column_text(st, 1));
        n++;
    }
    sqlite3_finalize(st);
    if (fflush(a->log) != 0)
        return PV_EIO;
    a->file_upto = last > have ? last : have;
    if (n)
        pv_info("alert log: wrote %d line%s committed before the last stop", n,
                n == 1 ? "" : "s");
    if (!last || sync_log(a) != 0)
        return 0;
    sqlite3_bind_int64(a->st[A_QUEUE_DEL], 1, last);
    return done(a->st[A_QUEUE_DEL]);
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
    const char *to, *event;
    if (strcmp(action, "ack") == 0) {
        to = "acknowledged";
        event = "acknowledged";
    } else if (strcmp(action, "close") == 0) {
        to = "closed";
        event = "closed";
    } else {
        snprintf(err, errcap, "unknown action '%s' (ack, close)", action);
        return PV_EINVAL;
    }
    int rc = pv_store_begin(a->store);
    if (rc) {
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
    if (strcmp(status, "closed") == 0) {
        pv_store_rollback(a->store);
        snprintf(err, errcap, "alert %lld is closed and cannot be %s",
                 (long long)id,
                 strcmp(to, "closed") == 0 ? "closed again" : "acknowledged");
        return PV_ESTATE;
    }
    if (strcmp(status, to) == 0) {
        pv_store_rollback(a->store);
        snprintf(err, errcap, "alert %lld is already %s", (long long)id, to);
        return PV_ESTATE;
    }
    char now[PV_TIME_BUFSZ];
    sqlite3_stmt *st = a->st[A_STATUS];
    sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pv_time_format(pv_store_now(a->store), now), -1,
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, id);
    rc = done(st);
    if (!rc)
        rc = add_action(a, id, actor, event, note);
    if (!rc)
        rc = emit(a, id, event, NULL, actor, note);
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

/* ---------------------------------------------------------------------- */
/* Printing for the CLI                                                    */

int pv_alerts_print_list(pv_store *store, FILE *out, const char *status,
                         int json)
{
    sqlite3_stmt *st;
    const char *sql =
        "SELECT id, status, severity, grade, patient_id, rule, title, "
        "occurrences, updated_at, signal, detail, action, created_at, "
        "evidence FROM alerts WHERE (?1 IS NULL OR status = ?1) "
        "ORDER BY id";
    if (sqlite3_prepare_v2(pv_store_db(store), sql, -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    bind_opt(st, 1, status);
    if (!json)
        fprintf(out, "%-5s %-12s %-8s %-2s %-16s %-32s %s\n", "ID", "STATUS",
                "SEVERITY", "G", "PATIENT", "RULE", "TITLE");
    int n = 0;
    pv_buf b = PV_BUF_INIT;
    while (sqlite3_step(st) == SQLITE_ROW) {
        n++;
        if (json) {
            static const char *const names[] = {
                "id",     "status", "severity",    "grade",      "patient_id",
                "rule",   "title",  "occurrences", "updated_at", "signal",
                "detail", "action", "created_at",  "evidence"};
            pv_buf_reset(&b);
            pv_buf_puts(&b, "{");
            for (int i = 0; i < 14; i++) {
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
            fprintf(out, "%-5lld %-12s %-8s %-2s %-16s %-32s %s",
                    (long long)sqlite3_column_int64(st, 0), col(st, 1),
                    col(st, 2), grade, col(st, 4), col(st, 5), col(st, 6));
            int occ = sqlite3_column_int(st, 7);
            if (occ > 1)
                fprintf(out, " (x%d)", occ);
            fputc('\n', out);
        }
    }
    pv_buf_free(&b);
    sqlite3_finalize(st);
    if (!json && n == 0)
        fprintf(out, "(no alerts%s%s)\n", status ? " with status " : "",
                status ? status : "");
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
    sqlite3_stmt *g = a->st[A_GET];
    sqlite3_bind_int64(g, 1, id);
    sqlite3_step(g);
    if (json) {
        /* The alert and its audit trail, as one JSON object. */
        b.len--; /* drop the closing brace */
        pv_buf_puts(&b, ",\"actions\":[");
        sqlite3_stmt *st;
        sqlite3_prepare_v2(pv_store_db(store),
                           "SELECT at, actor, action, note FROM "
                           "alert_actions WHERE alert_id = ? ORDER BY id",
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
            pv_buf_puts(&b, "}");
        }
        sqlite3_finalize(st);
        pv_buf_puts(&b, "]}");
        fprintf(out, "%s\n", pv_buf_cstr(&b));
    } else {
        fprintf(out, "Alert %lld: %s\n", (long long)id, col(g, 6));
        fprintf(out, "  status:      %s\n", col(g, 9));
        fprintf(out, "  severity:    %s", col(g, 4));
        if (sqlite3_column_type(g, 5) != SQLITE_NULL)
            fprintf(out, " (grade %d)", sqlite3_column_int(g, 5));
        fprintf(out, "\n  patient:     %s\n", col(g, 1));
        fprintf(out, "  rule:        %s (signal %s)\n", col(g, 2), col(g, 3));
        if (col(g, 7))
            fprintf(out, "  detail:      %s\n", col(g, 7));
        if (col(g, 8))
            fprintf(out, "  action:      %s\n", col(g, 8));
        fprintf(out, "  opened:      %s\n", col(g, 13));
        fprintf(out, "  updated:     %s (%d occurrence%s)\n", col(g, 11),
                sqlite3_column_int(g, 12),
                sqlite3_column_int(g, 12) == 1 ? "" : "s");
        fprintf(out, "  evidence:    %s\n", col(g, 10) ? col(g, 10) : "[]");
        fprintf(out, "  provenance:  rule source sha256 %s, pvwatch %s\n",
                col(g, 15) ? col(g, 15) : "-", col(g, 16) ? col(g, 16) : "-");
        fprintf(out, "  audit trail:\n");
        sqlite3_stmt *st;
        sqlite3_prepare_v2(pv_store_db(store),
                           "SELECT at, actor, action, note FROM "
                           "alert_actions WHERE alert_id = ? ORDER BY id",
                           -1, &st, NULL);
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW)
            fprintf(out, "    %s  %-13s by %s%s%s\n", col(st, 0), col(st, 2),
                    col(st, 1), col(st, 3) ? ": " : "",
                    col(st, 3) ? col(st, 3) : "");
        sqlite3_finalize(st);
    }
    sqlite3_reset(g);
    pv_buf_free(&b);
    pv_alerts_close(a);
    return 0;
}
