/* inbox.c: see inbox.h. */
#include "inbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

struct candidate {
    char *name;
    off_t size;
    struct timespec mtime;
    uint64_t stable_since; /* uv_now() when last seen changing */
    uint64_t retry_at;     /* after a database failure */
    int present;           /* seen in the current scan */
};

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
    struct candidate *c;
    size_t nc;
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

static struct candidate *find(pv_inbox *in, const char *name)
{
    for (size_t i = 0; i < in->nc; i++)
        if (strcmp(in->c[i].name, name) == 0)
            return &in->c[i];
    return NULL;
}

static void drop(pv_inbox *in, struct candidate *c)
{
    free(c->name);
    *c = in->c[--in->nc];
}

static void take(pv_inbox *in, struct candidate *c)
{
    pv_ingest *p = in->p;
    pv_file_report rep;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", in->dir, c->name);
    int rc = pv_ingest_begin(p);
    if (!rc)
        rc = pv_ingest_file(p, path, c->name, &rep);
    else
        memset(&rep, 0, sizeof rep);
    if (!rc)
        rc = pv_ingest_commit(p);
    if (rc) {
        pv_ingest_rollback(p);
        pv_error("%s: not ingested, will retry: %s (%s)", c->name,
                 pv_strerror(rc), pv_store_errmsg(pv_ingest_store(p)));
        c->retry_at = uv_now(in->loop) + 5000;
        pv_file_report_free(&rep);
        return;
    }
    if (rep.duplicate)
        pv_info("%s: same content as message %lld, ingested before; not "
                "stored again",
                c->name, (long long)rep.duplicate_of);
    else
        pv_info("%s: %s, %ld stored, %ld rejected", c->name,
                rep.kind ? rep.kind : "unrecognised", rep.stored, rep.rejected);
    /* One "pvwatch: FILE:LINE: reason" line each; the .error file has
     * them all. */
    int shown = 0;
    for (const char *e = pv_buf_cstr(&rep.errors); e && *e; shown++) {
        const char *nl = strchr(e, '\n');
        int len = nl ? (int)(nl - e) : (int)strlen(e);
        if (shown == 100) {
            pv_error("%s: more bad lines; see the .error file", c->name);
            break;
        }
        pv_error("%.*s", len, e);
        e += len + (nl != NULL);
    }
    pv_inbox_file_done(in->dir, c->name, &rep);
    pv_file_report_free(&rep);
    drop(in, c);
}

static void schedule_settle(pv_inbox *in);

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
    for (size_t i = 0; i < in->nc; i++)
        in->c[i].present = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", in->dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* .error files are ours, written into rejected/; one dropped
         * into the inbox itself is still taken as data. */
        struct candidate *c = find(in, e->d_name);
        if (!c) {
            struct candidate *n = realloc(in->c, (in->nc + 1) * sizeof *in->c);
            if (!n)
                break;
            in->c = n;
            c = &in->c[in->nc++];
            memset(c, 0, sizeof *c);
            c->name = strdup(e->d_name);
            c->size = -1;
        }
        c->present = 1;
        if (c->size != st.st_size || c->mtime.tv_sec != st.st_mtim.tv_sec ||
            c->mtime.tv_nsec != st.st_mtim.tv_nsec) {
            c->size = st.st_size;
            c->mtime = st.st_mtim;
            c->stable_since = now;
        }
    }
    closedir(d);
    /* Take the files that have settled, in name order of arrival. */
    for (size_t i = 0; i < in->nc;) {
        struct candidate *c = &in->c[i];
        if (!c->present || !c->name) {
            drop(in, c);
            continue;
        }
        if (now - c->stable_since >= in->settle_ms && now >= c->retry_at) {
            size_t before = in->nc;
            take(in, c);
            if (in->nc < before)
                continue; /* c was replaced by the last candidate */
        }
        i++;
    }
    schedule_settle(in);
}

static void on_settle(uv_timer_t *t)
{
    scan(t->data);
}

static void schedule_settle(pv_inbox *in)
{
    if (in->nc && !in->closing)
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
    /* Let a burst of events settle into one scan. */
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
    uv_timer_init(loop, &in->rescan);
    uv_timer_init(loop, &in->settle_timer);
    in->rescan.data = in->settle_timer.data = in;
    in->open_handles = 2;
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
    if (in->open_handles > 2)
        uv_close((uv_handle_t *)&in->watch, on_closed);
}
