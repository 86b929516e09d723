/* tail.c: see tail.h. */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "csv_layout.h"
#include "error.h"
#include "log.h"
#include "map.h"
#include "metrics.h"

/* One read pass takes at most this much, so a huge backlog becomes several
 * transactions of bounded size. */
#define PASS_BYTES (8u << 20)
#define READ_CHUNK (64 * 1024)
/* How many bytes before the offset are remembered, to tell a file that
 * grew from one rewritten in place to at least the same size. */
#define MARK_BYTES 64

struct follower {
    struct pv_tail *owner;
    char *path; /* as configured: for open() and for messages */
    char *key;  /* the absolute path: the key of its tail_offsets row */
    uv_fs_poll_t poll;
    /* Where we are, as stored in tail_offsets. */
    int known;
    uint64_t dev, ino;
    uint64_t offset;
    long line;
    char *header; /* header field names joined by '\n' */
    char delim;
    /* The bytes just before offset as last read (in memory only). */
    unsigned char mark[MARK_BYTES];
    size_t mark_len;
    int refused; /* not a regular file: said once, until it changes */
};

struct pv_tail {
    uv_loop_t *loop;
    pv_ingest *p;
    struct follower *f;
    size_t nf;
    int open_handles;
};

static int load_state(pv_store *s, struct follower *f)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "SELECT dev, ino, offset, line, header, delimiter "
                           "FROM tail_offsets WHERE path = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    sqlite3_bind_text(st, 1, f->key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        f->known = 1;
        f->dev = (uint64_t)sqlite3_column_int64(st, 0);
        f->ino = (uint64_t)sqlite3_column_int64(st, 1);
        f->offset = (uint64_t)sqlite3_column_int64(st, 2);
        f->line = (long)sqlite3_column_int64(st, 3);
        const char *h = (const char *)sqlite3_column_text(st, 4);
        const char *d = (const char *)sqlite3_column_text(st, 5);
        f->header = h && *h ? strdup(h) : NULL;
        f->delim = d && *d ? d[0] : ',';
    }
    sqlite3_finalize(st);
    return 0;
}

static int save_state(pv_store *s, const struct follower *f)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(pv_store_db(s),
                           "INSERT INTO tail_offsets (path, dev, ino, offset, "
                           "line, header, delimiter, updated_at) VALUES "
                           "(?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT (path) DO "
                           "UPDATE SET dev=?2, ino=?3, offset=?4, line=?5, "
                           "header=?6, delimiter=?7, updated_at=?8",
                           -1, &st, NULL) != SQLITE_OK)
        return PV_EDB;
    char now[PV_TIME_BUFSZ], d[2] = {f->delim ? f->delim : ',', 0};
    sqlite3_bind_text(st, 1, f->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)f->dev);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)f->ino);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)f->offset);
    sqlite3_bind_int64(st, 5, f->line);
    sqlite3_bind_text(st, 6, f->header ? f->header : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, d, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, pv_time_format(pv_store_now(s), now), -1,
                      SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : PV_EDB;
}

/* The state of one read pass. */
struct pass {
    struct follower *f;
    pv_ingest *p;
    pv_csv_map map;
    int have_map;
    int64_t message_id;
    pv_file_report rep;
    long records;
    int db_rc;
    int fatal; /* unrecognised header: stop following */
};

static int header_from_text(struct pass *ps, const char *text)
{
    pv_span fields[PV_MAP_MAXCOLS * 4];
    size_t n = 0;
    const char *s = text;
    while (n < sizeof fields / sizeof *fields) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        fields[n].ptr = s;
        fields[n++].len = len;
        if (!e)
            break;
        s = e + 1;
    }
    char err[512];
    if (pv_layout_header(pv_ingest_config(ps->p), ps->f->path, fields, n,
                         &ps->map, err, sizeof err))
        return PV_EINVAL;
    ps->have_map = 1;
    return 0;
}

static int on_record(void *ud, long line, const pv_span *fields, size_t n)
{
    struct pass *ps = ud;
    if (!ps->have_map) {
        char err[512];
        if (pv_layout_header(pv_ingest_config(ps->p), ps->f->path, fields, n,
                             &ps->map, err, sizeof err)) {
            pv_error("%s:%ld: %s; not following this file", ps->f->path, line,
                     err);
            ps->fatal = 1;
            return 1;
        }
        ps->have_map = 1;
        pv_buf h = PV_BUF_INIT;
        for (size_t i = 0; i < n; i++) {
            if (i)
                pv_buf_puts(&h, "\n");
            pv_buf_append(&h, fields[i].ptr, fields[i].len);
        }
        free(ps->f->header);
        ps->f->header = pv_buf_ok(&h) ? strdup(pv_buf_cstr(&h)) : NULL;
        pv_buf_free(&h);
        return 0;
    }
    ps->records++;
    int rc = pv_ingest_csv_record(ps->p, &ps->map, fields, n, line,
                                  ps->message_id, ps->f->path, &ps->rep);
    if (rc) {
        ps->db_rc = rc;
        return 1;
    }
    return 0;
}

static void on_error(void *ud, long line, const char *reason)
{
    struct pass *ps = ud;
    ps->records++;
    ps->rep.rejected++;
    pv_buf_printf(&ps->rep.errors, "%s:%ld: %s\n", ps->f->path, line, reason);
}

/* Reads the (up to MARK_BYTES) bytes before offset; returns how many, or
 * 0 when they cannot be read. */
static size_t read_mark(int fd, uint64_t offset, unsigned char *out)
{
    size_t want = offset < MARK_BYTES ? (size_t)offset : MARK_BYTES;
    ssize_t n = pread(fd, out, want, (off_t)(offset - want));
    return n == (ssize_t)want ? want : 0;
}

/* Reads from the stored offset to the end of what is there (at most
 * PASS_BYTES) in one transaction. Returns records stored, or -1. */
static long read_pass(struct follower *f, pv_ingest *p, int *more)
{
    *more = 0;
    /* Never blocks: a FIFO or a device in place of the file (issue 22
     * item 7) is opened without waiting for a writer, seen by fstat and
     * refused. A configured path that is a symbolic link is followed on
     * each open (rotation by re-pointing a link); what it points to must
     * be a regular file. */
    int fd = open(f->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        f->refused = 0;
        return 0; /* not there (yet): nothing to do */
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        if (!f->refused)
            pv_error(
                "%s: not followed: %s; only a regular file is read", f->path,
                S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device node"
                : S_ISDIR(st.st_mode)                        ? "a directory"
                                      : "not a regular file");
        f->refused = 1;
        close(fd);
        return 0;
    }
    f->refused = 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (f->known &&
        (f->dev != (uint64_t)st.st_dev || f->ino != (uint64_t)st.st_ino ||
         (uint64_t)st.st_size < f->offset)) {
        pv_info("%s: file was %s; reading it from the start", f->path,
                (uint64_t)st.st_size < f->offset && f->ino == st.st_ino
                    ? "truncated"
                    : "replaced");
        f->known = 0;
    }
    if (f->known && f->mark_len) {
        /* Same file, not shorter: did it grow, or was it rewritten in
         * place (truncated and written again past our offset)? */
        unsigned char now[MARK_BYTES];
        if (read_mark(fd, f->offset, now) != f->mark_len ||
            memcmp(now, f->mark, f->mark_len) != 0) {
            pv_info("%s: file was rewritten; reading it from the start",
                    f->path);
            f->known = 0;
        }
    }
    if (!f->known) {
        f->dev = (uint64_t)st.st_dev;
        f->ino = (uint64_t)st.st_ino;
        f->offset = 0;
        f->line = 1;
        free(f->header);
        f->header = NULL;
        f->delim = 0;
        f->mark_len = 0;
    } else if (!f->mark_len && f->offset > 0) {
        /* First look since start-up: what is there now is the reference. */
        f->mark_len = read_mark(fd, f->offset, f->mark);
    }
    if ((uint64_t)st.st_size == f->offset) {
        close(fd);
        return 0;
    }
    struct pass ps = {.f = f, .p = p};
    pv_csv *csv = pv_csv_new(0, on_record, on_error, &ps);
    if (!csv) {
        close(fd);
        return -1;
    }
    if (f->offset > 0 && f->header) {
        if (header_from_text(&ps, f->header) != 0) {
            pv_error("%s: stored header no longer recognised", f->path);
            pv_csv_free(csv);
            close(fd);
            return -1;
        }
        pv_csv_resume(csv, f->delim, f->line, f->offset);
    }
    int rc = pv_ingest_begin(p);
    char control[96];
    snprintf(control, sizeof control, "%llu:%llu:%llu",
             (unsigned long long)f->dev, (unsigned long long)f->ino,
             (unsigned long long)f->offset);
    char source[4200];
    snprintf(source, sizeof source, "tail:%s", f->key);
    if (!rc)
        rc = pv_store_message_add(pv_ingest_store(p), source, control, "CSV",
                                  f->path, NULL, 0, "receiving", &ps.message_id,
                                  NULL);
    if (rc == PV_ESTATE) {
        /* This range of this file was read before: the file was truncated
         * or rewritten in place and is read again from there. A message of
         * its own, so that its rows and counts are not lost. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char again[160];
        snprintf(again, sizeof again, "%s:again:%lld.%09ld", control,
                 (long long)ts.tv_sec, ts.tv_nsec);
        rc = pv_store_message_add(pv_ingest_store(p), source, again, "CSV",
                                  f->path, NULL, 0, "receiving", &ps.message_id,
                                  NULL);
    }
    char *buf = malloc(READ_CHUNK);
    uint64_t taken = 0;
    if (lseek(fd, (off_t)f->offset, SEEK_SET) < 0)
        rc = rc ? rc : PV_EIO;
    while (!rc && buf && !ps.fatal) {
        ssize_t n = read(fd, buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (pv_csv_feed(csv, buf, (size_t)n) != 0) {
            if (ps.db_rc)
                rc = ps.db_rc;
            break;
        }
        taken += (uint64_t)n;
        if (taken >= PASS_BYTES) {
            *more = 1;
            break;
        }
    }
    free(buf);
    uint64_t new_offset = pv_csv_offset(csv);
    long new_line = pv_csv_line(csv);
    char delim = pv_csv_delimiter(csv);
    pv_csv_free(csv);
    if (ps.fatal && !rc) {
        /* Remember the position so the bad header is not reported on
         * every poll; the file is skipped until it is replaced. */
        f->known = 1;
        f->offset = (uint64_t)st.st_size;
        f->mark_len = 0;
        close(fd);
        pv_ingest_rollback(p);
        pv_file_report_free(&ps.rep);
        return 0;
    }
    if (!rc && new_offset == f->offset) {
        /* Only a partial record so far: nothing to commit. */
        close(fd);
        pv_ingest_rollback(p);
        pv_file_report_free(&ps.rep);
        return 0;
    }
    if (!rc) {
        f->offset = new_offset;
        f->line = new_line;
        if (delim)
            f->delim = delim;
        f->known = 1;
        rc = save_state(pv_ingest_store(p), f);
    }
    if (!rc)
        rc = pv_store_message_finish(
            pv_ingest_store(p), ps.message_id,
            ps.rep.rejected ? (ps.rep.stored ? "partial" : "rejected")
                            : "accepted",
            ps.rep.errors.len ? pv_buf_cstr(&ps.rep.errors) : NULL,
            ps.rep.stored, ps.rep.rejected);
    if (!rc)
        rc = pv_ingest_commit(p);
    if (!rc)
        f->mark_len = read_mark(fd, f->offset, f->mark);
    close(fd);
    if (rc) {
        pv_ingest_rollback(p);
        /* Forget the in-memory position: reload it from the database. */
        f->known = 0;
        f->mark_len = 0;
        free(f->header);
        f->header = NULL;
        load_state(pv_ingest_store(p), f);
        pv_error("%s: not ingested, will retry: %s (%s)", f->path,
                 pv_strerror(rc), pv_store_errmsg(pv_ingest_store(p)));
        pv_metrics_failed(PV_FEED_TAIL, 1);
        pv_file_report_free(&ps.rep);
        return -1;
    }
    /* Committed: one pass is one message (metrics.h). */
    pv_metrics_received(PV_FEED_TAIL);
    pv_metrics_stored(PV_FEED_TAIL, ps.rep.rejected ? 1 : 0);
    pv_metrics_rejected(PV_FEED_TAIL, ps.rep.rejected);
    /* One "pvwatch: FILE:LINE: reason" line each. */
    for (const char *e = pv_buf_cstr(&ps.rep.errors); e && *e;) {
        const char *nl = strchr(e, '\n');
        int len = nl ? (int)(nl - e) : (int)strlen(e);
        pv_error("%.*s", len, e);
        e += len + (nl != NULL);
    }
    long stored = ps.rep.stored;
    pv_file_report_free(&ps.rep);
    return stored;
}

/* The key of a followed file in tail_offsets: the real path of its
 * directory and its name, so that the same file has the same key whatever
 * the working directory pvwatch was started in (the configured path is
 * relative to it). NULL when out of memory. */
static char *state_key(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char dir[PATH_MAX], real[PATH_MAX];
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1,
                 slash ? path : ".");
    if (!realpath(dir, real))
        return strdup(path); /* not there (yet): the path as it is */
    size_t n = strlen(real) + strlen(name) + 2;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "%s%s%s", real, strcmp(real, "/") ? "/" : "", name);
    return key;
}

static long poll_one(struct follower *f)
{
    long total = 0;
    int more = 1;
    while (more) {
        long n = read_pass(f, f->owner->p, &more);
        if (n < 0)
            break;
        total += n;
    }
    return total;
}

long pv_tail_poll_all(pv_tail *t)
{
    long total = 0;
    for (size_t i = 0; i < t->nf; i++)
        total += poll_one(&t->f[i]);
    return total;
}

static void on_poll(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                    const uv_stat_t *curr)
{
    (void)status;
    (void)prev;
    (void)curr;
    poll_one(h->data);
}

int pv_tail_start(uv_loop_t *loop, pv_ingest *p, const pv_strlist *paths,
                  pv_tail **out, char *err, size_t errcap)
{
    *out = NULL;
    pv_tail *t = calloc(1, sizeof *t);
    if (!t)
        return PV_ENOMEM;
    t->loop = loop;
    t->p = p;
    t->f = calloc(paths->count ? paths->count : 1, sizeof *t->f);
    if (!t->f) {
        free(t);
        return PV_ENOMEM;
    }
    for (size_t i = 0; i < paths->count; i++) {
        struct follower *f = &t->f[t->nf++];
        f->owner = t;
        f->path = strdup(paths->items[i]);
        f->key = f->path ? state_key(f->path) : NULL;
        int rc = !f->key ? PV_ENOMEM : load_state(pv_ingest_store(p), f);
        if (rc) {
            snprintf(err, errcap, "%s: cannot read tail offsets: %s",
                     paths->items[i],
                     rc == PV_ENOMEM ? "out of memory"
                                     : pv_store_errmsg(pv_ingest_store(p)));
            /* This follower has no poll handle to close. */
            free(f->path);
            free(f->key);
            t->nf--;
            pv_tail_stop(t);
            return rc;
        }
        if (loop) {
            uv_fs_poll_init(loop, &f->poll);
            f->poll.data = f;
            t->open_handles++;
            uv_fs_poll_start(&f->poll, on_poll, f->path, 250);
        }
    }
    *out = t;
    pv_tail_poll_all(t);
    return 0;
}

static void free_tail(pv_tail *t)
{
    for (size_t i = 0; i < t->nf; i++) {
        free(t->f[i].path);
        free(t->f[i].key);
        free(t->f[i].header);
    }
    free(t->f);
    free(t);
}

static void on_closed(uv_handle_t *h)
{
    struct follower *f = h->data;
    pv_tail *t = f->owner;
    if (--t->open_handles == 0)
        free_tail(t);
}

void pv_tail_stop(pv_tail *t)
{
    if (!t)
        return;
    if (t->open_handles == 0) {
        free_tail(t);
        return;
    }
    for (size_t i = 0; i < t->nf; i++)
        if (t->loop)
            uv_close((uv_handle_t *)&t->f[i].poll, on_closed);
}
