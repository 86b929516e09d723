/* inbox.c: see inbox.h. */
#include "inbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "metrics.h"

/* A name in the inbox. in->c is kept sorted by name (strcmp), so that a
 * scan merges what it read in O(n log n) and files are taken in name
 * order. */
struct candidate {
    char *name;
    off_t size;
    struct timespec mtime;
    uint64_t stable_since; /* uv_now() when last seen changing */
    uint64_t retry_at;     /* after a database failure */
    const char *refuse;    /* not a regular file (lstat): why, or NULL */
    int gone;              /* taken or refused: removed at the next compact */
};

/* A slice: at most this many files, or this much time, per loop turn, in
 * one transaction; then the loop runs (MLLP ACKs, timers) before the next
 * one (issue 22 item 12: 10,000 files in one turn held an ACK 18 s). */
#define SLICE_FILES 64
#define SLICE_MS 20

struct pv_inbox {
    uv_loop_t *loop;
    pv_ingest *p;
    char *dir;
    uv_fs_event_t watch;
    uv_timer_t rescan;
    uv_timer_t settle_timer;
    int watching;
    int closing;
    int open_handles;
    uint64_t settle_ms, rescan_ms;
    uv_idle_t work; /* runs a slice per loop turn while files are due */
    int working;
    struct candidate *c;
    size_t nc;
    size_t cursor; /* where the next slice starts looking */
    /* Whose files are taken: pvwatch's own user, root, these. */
    uid_t euid;
    const long *owners;
    size_t nowners;
    int any_owner;
};

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Picks dir/sub/name, or name.1, name.2 ... when that exists. */
static void target_path(char *out, size_t cap, const char *dir, const char *sub,
                        const char *name)
{
    snprintf(out, cap, "%s/%s/%s", dir, sub, name);
    struct stat st;
    for (int i = 1; stat(out, &st) == 0 && i < 100000; i++)
        snprintf(out, cap, "%s/%s/%s.%d", dir, sub, name, i);
}

static int write_error_file(const char *path, const char *name,
                            const pv_file_report *rep)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    /* 0640 whatever the umask: the lines hold patient data. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    fchmod(fd, 0640);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    if (rep->failed && rep->stored == 0)
        fprintf(f, "# %s was rejected; nothing from it was stored.\n", name);
    else
        fprintf(f,
                "# %s: %ld record%s stored, %ld rejected. Only the lines "
                "below need to be sent again.\n",
                name, rep->stored, rep->stored == 1 ? "" : "s", rep->rejected);
    if (rep->errors.len)
        fwrite(rep->errors.ptr, 1, rep->errors.len, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return -1;
    return rename(tmp, path);
}

int pv_inbox_file_done(const char *dir, const char *name,
                       const pv_file_report *rep)
{
    int rejected = rep->failed || rep->rejected > 0;
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    target_path(to, sizeof to, dir, rejected ? "rejected" : "processed", name);
    if (rejected) {
        char errpath[4200];
        snprintf(errpath, sizeof errpath, "%s.error", to);
        if (write_error_file(errpath, name, rep) != 0)
            pv_error("%s: cannot write %s: %s", name, errpath, strerror(errno));
    }
    if (rename(from, to) != 0) {
        pv_error("%s: cannot move to %s: %s", from, to, strerror(errno));
        return PV_EIO;
    }
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *type_name(mode_t m)
{
    if (S_ISLNK(m))
        return "a symbolic link (links are never followed: move the file "
               "itself in)";
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device node";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

/* Moves a file that is not taken to rejected/ with NAME.error saying why;
 * the entry itself is moved (a link, not what it points to; a FIFO is not
 * opened). */
static void refuse(pv_inbox *in, const char *name, const char *why)
{
    pv_file_report rep;
    memset(&rep, 0, sizeof rep);
    rep.failed = 1;
    pv_buf_printf(&rep.errors, "%s: refused: %s\n", name, why);
    pv_error("%s: refused: %s; moved to rejected/", name, why);
    pv_inbox_file_done(in->dir, name, &rep);
    pv_file_report_free(&rep);
}

static int owner_ok(const pv_inbox *in, uid_t uid)
{
    if (in->any_owner || uid == 0 || uid == in->euid)
        return 1;
    for (size_t i = 0; i < in->nowners; i++)
        if ((long)uid == in->owners[i])
            return 1;
    return 0;
}

/* Opens inbox file NAME for reading without following a link, without
 * blocking (a FIFO or device swapped in after the scan) and only when the
 * descriptor is a regular file with one link, owned as configured
 * (inbox.owners). Returns the descriptor, -1 with a reason in why for a
 * file to refuse, or -2 when the name is gone. */
static int open_checked(pv_inbox *in, const char *path, struct stat *st,
                        char *why, size_t whycap)
{
    int fd =
        open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return -2;
        if (errno == ELOOP) {
            snprintf(why, whycap, "%s", type_name(S_IFLNK));
            return -1;
        }
        snprintf(why, whycap, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        snprintf(why, whycap, "cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(why, whycap, "%s", type_name(st->st_mode));
        close(fd);
        return -1;
    }
    if (st->st_nlink > 1) {
        /* A hard link to a file the dropper could not read would be taken
         * as data (and moved, leaving the other name). */
        snprintf(why, whycap,
                 "it has %lu hard links; move files into the inbox, do "
                 "not link them",
                 (unsigned long)st->st_nlink);
        close(fd);
        return -1;
    }
    if (!owner_ok(in, st->st_uid)) {
        snprintf(why, whycap,
                 "owned by uid %lu, which is not pvwatch's user, root or "
                 "one of inbox.owners",
                 (unsigned long)st->st_uid);
        close(fd);
        return -1;
    }
    /* Reads of a regular file never block; clear the flag all the same. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* One file read in the slice's transaction, waiting for its commit. */
struct taken {
    struct candidate *c;
    pv_file_report rep;
    dev_t dev;
    ino_t ino;
};

static void report(pv_inbox *in, struct taken *t)
{
    pv_file_report *rep = &t->rep;
    const char *name = t->c->name;
    int feed = rep->kind && strcmp(rep->kind, "hl7") == 0 ? PV_FEED_INBOX_HL7
                                                          : PV_FEED_INBOX_CSV;
    pv_metrics_received(feed); /* committed: a file is one message */
    pv_metrics_stored(feed, rep->rejected || rep->failed ? 1 : 0);
    pv_metrics_rejected(feed, rep->rejected);
    if (rep->duplicate)
        pv_info("%s: same content as message %lld, ingested before; not "
                "stored again",
                name, (long long)rep->duplicate_of);
    else
        pv_info("%s: %s, %ld stored, %ld rejected", name,
                rep->kind ? rep->kind : "unrecognised", rep->stored,
                rep->rejected);
    /* One "pvwatch: FILE:LINE: reason" line each; the .error file has
     * them all. */
    int shown = 0;
    for (const char *e = pv_buf_cstr(&rep->errors); e && *e; shown++) {
        const char *nl = strchr(e, '\n');
        int len = nl ? (int)(nl - e) : (int)strlen(e);
        if (shown == 100) {
            pv_error("%s: more bad lines; see the .error file", name);
            break;
        }
        pv_error("%.*s", len, e);
        e += len + (nl != NULL);
    }
    /* Move what was read, not what may have replaced it since. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", in->dir, name);
    struct stat now;
    if (lstat(path, &now) != 0) {
        pv_warn("%s: gone from the inbox before it could be moved (its "
                "content is stored)",
                name);
        t->c->gone = 1;
        return;
    }
    if (now.st_dev != t->dev || now.st_ino != t->ino) {
        pv_warn("%s: replaced while it was read; the new file will be "
                "taken once it settles",
                name);
        t->c->size = -1;
        t->c->stable_since = uv_now(in->loop);
        return;
    }
    pv_inbox_file_done(in->dir, name, rep);
    t->c->gone = 1;
}

static void compact(pv_inbox *in)
{
    size_t j = 0, cursor = 0;
    for (size_t i = 0; i < in->nc; i++) {
        if (i == in->cursor)
            cursor = j;
        if (in->c[i].gone) {
            free(in->c[i].name);
            continue;
        }
        in->c[j++] = in->c[i];
    }
    in->cursor = in->cursor >= in->nc ? j : cursor;
    in->nc = j;
}

static int due(const pv_inbox *in, const struct candidate *c, uint64_t now)
{
    if (c->gone || now < c->retry_at)
        return 0;
    return c->refuse || now - c->stable_since >= in->settle_ms;
}

/* Takes up to SLICE_FILES due files (or SLICE_MS of work) in one
 * transaction, then moves them. Returns 1 when more are due. */
static int slice(pv_inbox *in)
{
    uint64_t now = uv_now(in->loop), t0 = mono_ms();
    struct taken t[SLICE_FILES];
    size_t nt = 0, looked = 0;
    int open_tx = 0, rc = 0;
    struct candidate *failed = NULL;
    if (in->cursor >= in->nc)
        in->cursor = 0;
    while (looked < in->nc && nt < SLICE_FILES && !rc) {
        if (nt && mono_ms() - t0 >= SLICE_MS)
            break;
        struct candidate *c = &in->c[in->cursor];
        in->cursor = in->cursor + 1 < in->nc ? in->cursor + 1 : 0;
        looked++;
        if (!due(in, c, now))
            continue;
        if (c->refuse) {
            refuse(in, c->name, c->refuse);
            c->gone = 1;
            continue;
        }
        char path[4096], why[256];
        snprintf(path, sizeof path, "%s/%s", in->dir, c->name);
        struct stat st;
        int fd = open_checked(in, path, &st, why, sizeof why);
        if (fd == -2) {
            c->gone = 1;
            continue;
        }
        if (fd < 0) {
            refuse(in, c->name, why);
            c->gone = 1;
            continue;
        }
        if (st.st_size != c->size || st.st_mtim.tv_sec != c->mtime.tv_sec ||
            st.st_mtim.tv_nsec != c->mtime.tv_nsec) {
            /* Written to since it was seen: not complete yet. */
            close(fd);
            c->size = st.st_size;
            c->mtime = st.st_mtim;
            c->stable_since = now;
            continue;
        }
        if (!open_tx) {
            rc = pv_ingest_begin(in->p);
            if (rc) {
                close(fd);
                failed = c;
                break;
            }
            open_tx = 1;
        }
        struct taken *k = &t[nt];
        k->c = c;
        k->dev = st.st_dev;
        k->ino = st.st_ino;
        rc = pv_ingest_fd(in->p, fd, c->name, &k->rep);
        if (rc) {
            /* Its savepoint was rolled back; the files before it in this
             * slice are committed without it. */
            pv_file_report_free(&k->rep);
            failed = c;
            break;
        }
        nt++;
    }
    if (failed) {
        pv_error("%s: not ingested, will retry: %s (%s)", failed->name,
                 pv_strerror(rc), pv_store_errmsg(pv_ingest_store(in->p)));
        failed->retry_at = now + 5000;
    }
    if (open_tx && nt) {
        int crc = pv_ingest_commit(in->p);
        if (crc) {
            /* pv_ingest_commit rolled back: nothing of the slice stored. */
            for (size_t i = 0; i < nt; i++) {
                pv_error("%s: not ingested, will retry: %s (%s)", t[i].c->name,
                         pv_strerror(crc),
                         pv_store_errmsg(pv_ingest_store(in->p)));
                t[i].c->retry_at = now + 5000;
                pv_metrics_failed(t[i].rep.kind && !strcmp(t[i].rep.kind, "hl7")
                                      ? PV_FEED_INBOX_HL7
                                      : PV_FEED_INBOX_CSV,
                                  1);
                pv_file_report_free(&t[i].rep);
            }
            nt = 0;
        }
    } else if (open_tx) {
        pv_ingest_rollback(in->p);
    }
    for (size_t i = 0; i < nt; i++) {
        report(in, &t[i]);
        pv_file_report_free(&t[i].rep);
    }
    compact(in);
    /* More due now? (Files waiting to settle or to retry are the timer's.) */
    for (size_t i = 0; i < in->nc; i++)
        if (due(in, &in->c[i], now))
            return 1;
    return 0;
}

static void schedule_settle(pv_inbox *in);

static void on_work(uv_idle_t *h)
{
    pv_inbox *in = h->data;
    if (in->closing || !slice(in)) {
        uv_idle_stop(&in->work);
        in->working = 0;
        schedule_settle(in);
    }
}

static void start_work(pv_inbox *in)
{
    if (!in->working && !in->closing) {
        in->working = 1;
        uv_idle_start(&in->work, on_work);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct candidate *)a)->name,
                  ((const struct candidate *)b)->name);
}

static void scan(pv_inbox *in)
{
    if (in->closing)
        return;
    DIR *d = opendir(in->dir);
    if (!d) {
        pv_error("%s: cannot read inbox: %s", in->dir, strerror(errno));
        return;
    }
    uint64_t now = uv_now(in->loop);
    /* What is there now, then merged with what was known (both sorted):
     * O(n log n) whatever the number of files. */
    struct candidate *seen = NULL;
    size_t ns = 0, cap = 0;
    struct dirent *e;
    int oom = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (e->d_type == DT_DIR)
            continue; /* processed/, rejected/ and the like */
        if (ns == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct candidate *n = realloc(seen, ncap * sizeof *seen);
            if (!n) {
                oom = 1;
                break;
            }
            seen = n;
            cap = ncap;
        }
        struct candidate *c = &seen[ns];
        memset(c, 0, sizeof *c);
        if (!(c->name = strdup(e->d_name))) {
            oom = 1;
            break;
        }
        c->size = -1;
        c->stable_since = now;
        ns++;
    }
    closedir(d);
    if (oom) {
        pv_error("%s: out of memory reading the inbox", in->dir);
        for (size_t i = 0; i < ns; i++)
            free(seen[i].name);
        free(seen);
        return;
    }
    if (ns > 1)
        qsort(seen, ns, sizeof *seen, by_name);
    size_t i = 0, j = 0;
    for (; j < ns; j++) {
        struct candidate *s = &seen[j];
        while (i < in->nc && strcmp(in->c[i].name, s->name) < 0)
            free(in->c[i++].name); /* no longer there */
        if (i < in->nc && strcmp(in->c[i].name, s->name) == 0) {
            /* Known: keep what was learnt (the descriptor is checked again
             * when it is taken, so no lstat here). */
            free(s->name);
            *s = in->c[i++];
            if (!s->refuse && s->size >= 0)
                continue;
        }
        /* New (or not yet stat'ed): one lstat, never followed. */
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", in->dir, s->name);
        struct stat st;
        if (lstat(path, &st) != 0) {
            s->gone = 1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            s->gone = 1;
            continue;
        }
        s->refuse = S_ISREG(st.st_mode) ? NULL : type_name(st.st_mode);
        if (s->size != st.st_size || s->mtime.tv_sec != st.st_mtim.tv_sec ||
            s->mtime.tv_nsec != st.st_mtim.tv_nsec) {
            s->size = st.st_size;
            s->mtime = st.st_mtim;
            s->stable_since = now;
        }
    }
    for (; i < in->nc; i++)
        free(in->c[i].name);
    free(in->c);
    in->c = seen;
    in->nc = ns;
    in->cursor = 0;
    compact(in);
    int any = 0;
    for (size_t k = 0; k < in->nc && !any; k++)
        any = due(in, &in->c[k], now);
    if (any)
        start_work(in);
    else
        schedule_settle(in);
}

static void on_settle(uv_timer_t *t)
{
    scan(t->data);
}

static void schedule_settle(pv_inbox *in)
{
    if (in->nc && !in->closing && !in->working)
        uv_timer_start(&in->settle_timer, on_settle,
                       in->settle_ms ? in->settle_ms : 50, 0);
}

static void on_rescan(uv_timer_t *t)
{
    scan(t->data);
}

static void on_event(uv_fs_event_t *h, const char *filename, int events,
                     int status)
{
    (void)filename;
    (void)events;
    pv_inbox *in = h->data;
    if (status < 0) {
        pv_warn("%s: watch error: %s; relying on rescans", in->dir,
                uv_strerror(status));
        return;
    }
    /* Let a burst of events settle into one scan. While slices are being
     * taken (each move is an event) the rescan timer finds new files. */
    if (!in->working)
        uv_timer_start(&in->settle_timer, on_settle, 20, 0);
}

int pv_inbox_start(uv_loop_t *loop, pv_ingest *p, const char *dir,
                   double rescan, double settle, pv_inbox **out, char *err,
                   size_t errcap)
{
    *out = NULL;
    char sub[4096];
    if (mkdir_p(dir) != 0) {
        snprintf(err, errcap, "%s: cannot create inbox: %s", dir,
                 strerror(errno));
        return PV_EIO;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, i ? "rejected" : "processed");
        if (mkdir_p(sub) != 0) {
            snprintf(err, errcap, "%s: cannot create: %s", sub,
                     strerror(errno));
            return PV_EIO;
        }
    }
    pv_inbox *in = calloc(1, sizeof *in);
    if (!in || !(in->dir = strdup(dir))) {
        free(in);
        return PV_ENOMEM;
    }
    in->loop = loop;
    in->p = p;
    in->settle_ms = (uint64_t)(settle * 1000);
    in->rescan_ms = (uint64_t)(rescan * 1000);
    in->euid = geteuid();
    const pv_config *cfg = pv_ingest_config(p);
    if (cfg) {
        in->owners = cfg->inbox.owners;
        in->nowners = cfg->inbox.nowners;
        in->any_owner = cfg->inbox.allow_any_owner;
    }
    uv_timer_init(loop, &in->rescan);
    uv_timer_init(loop, &in->settle_timer);
    uv_idle_init(loop, &in->work);
    in->rescan.data = in->settle_timer.data = in->work.data = in;
    in->open_handles = 3;
    if (uv_fs_event_init(loop, &in->watch) == 0) {
        in->watch.data = in;
        in->open_handles++;
        int rc = uv_fs_event_start(&in->watch, on_event, dir, 0);
        if (rc == 0)
            in->watching = 1;
        else
            pv_warn("%s: cannot watch (%s); rescanning every %.1fs", dir,
                    uv_strerror(rc), rescan);
    }
    uv_timer_start(&in->rescan, on_rescan, 0,
                   in->rescan_ms ? in->rescan_ms : 1000);
    *out = in;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    pv_inbox *in = h->data;
    if (--in->open_handles > 0)
        return;
    for (size_t i = 0; i < in->nc; i++)
        free(in->c[i].name);
    free(in->c);
    free(in->dir);
    free(in);
}

void pv_inbox_stop(pv_inbox *in)
{
    if (!in)
        return;
    in->closing = 1;
    uv_close((uv_handle_t *)&in->rescan, on_closed);
    uv_close((uv_handle_t *)&in->settle_timer, on_closed);
    uv_close((uv_handle_t *)&in->work, on_closed);
    if (in->open_handles > 3)
        uv_close((uv_handle_t *)&in->watch, on_closed);
}
