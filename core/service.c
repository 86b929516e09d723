/* service.c: see service.h. */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#ifdef PV_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "buf.h"
#include "error.h"
#include "log.h"

void pv_service_notify(const char *state)
{
#ifdef PV_HAVE_SYSTEMD
    int rc = sd_notify(0, state);
    if (rc < 0)
        pv_warn("cannot tell systemd '%s': %s", state, strerror(-rc));
#else
    (void)state;
#endif
}

/* Writes the run file: the pid line as pv_store_lock wrote it, then the
 * lines. Written from offset 0 in one pwrite and never truncated below
 * the pid line first, so a reader never sees a file without it. */
static void write_run_file(const char *db, const char *lines)
{
    if (!strcmp(db, ":memory:"))
        return;
    char lpath[4096];
    if ((size_t)snprintf(lpath, sizeof lpath, "%s.lock", db) >= sizeof lpath)
        return;
    pv_buf b = PV_BUF_INIT;
    pv_buf_printf(&b, "%ld\n%s", (long)getpid(), lines);
    if (!pv_buf_ok(&b)) {
        pv_buf_free(&b);
        return;
    }
    /* A second descriptor: flock belongs to the engine's own, and closing
     * this one does not release it. */
    int fd = open(lpath, O_WRONLY | O_CLOEXEC);
    const char *s = pv_buf_cstr(&b);
    size_t n = strlen(s);
    if (fd < 0 || pwrite(fd, s, n, 0) != (ssize_t)n ||
        ftruncate(fd, (off_t)n) != 0)
        pv_warn("%s: cannot write what this run listens on: %s", lpath,
                strerror(errno));
    if (fd >= 0)
        close(fd);
    pv_buf_free(&b);
}

/* "KEY PATH\n", the path absolute where it exists (status may run in
 * another directory); one line: a path with a line end is left out rather
 * than let it forge a line. */
static void put_path(pv_buf *b, const char *key, const char *path)
{
    if (!path || strchr(path, '\n'))
        return;
    char *abs = realpath(path, NULL);
    pv_buf_printf(b, "%s %s\n", key, abs && !strchr(abs, '\n') ? abs : path);
    free(abs);
}

void pv_service_ready(const pv_config *cfg, const char *mllp_addr)
{
    pv_buf b = PV_BUF_INIT;
    pv_buf_printf(&b, "command run\nstarted %lld\n", (long long)time(NULL));
    put_path(&b, "config", cfg->path);
    pv_buf_printf(&b, "mllp %s\n", mllp_addr);
    put_path(&b, "inbox", cfg->inbox.path);
    for (size_t i = 0; i < cfg->tail.count; i++)
        put_path(&b, "tail", cfg->tail.items[i]);
    if (pv_buf_ok(&b))
        write_run_file(cfg->database, pv_buf_cstr(&b));
    pv_buf_free(&b);

    char state[600];
    snprintf(state, sizeof state,
             "READY=1\nSTATUS=listening: MLLP %s, inbox %s, %zu tailed "
             "file%s",
             mllp_addr, cfg->inbox.path ? cfg->inbox.path : "-",
             cfg->tail.count, cfg->tail.count == 1 ? "" : "s");
    pv_service_notify(state);
}

int pv_service_read(const char *db_path, pv_service_info *out, char *err,
                    size_t errcap)
{
    memset(out, 0, sizeof *out);
    char lpath[4096];
    if ((size_t)snprintf(lpath, sizeof lpath, "%s.lock", db_path) >=
        sizeof lpath) {
        snprintf(err, errcap, "%s: path too long", db_path);
        return PV_EIO;
    }
    int fd = open(lpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errcap, "%s: %s", lpath, strerror(errno));
        return PV_EIO;
    }
    out->exists = 1;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
        flock(fd, LOCK_UN); /* nobody holds it exclusively */
    else if (errno == EWOULDBLOCK)
        out->running = 1;
    else {
        snprintf(err, errcap, "%s: cannot test the lock: %s", lpath,
                 strerror(errno));
        close(fd);
        return PV_EIO;
    }
    /* The file is a few lines; more than 64 KiB is not ours. */
    char *text = malloc(65536);
    ssize_t n = text ? pread(fd, text, 65535, 0) : -1;
    close(fd);
    if (n < 0) {
        free(text);
        snprintf(err, errcap, "%s: cannot read: %s", lpath, strerror(errno));
        return PV_EIO;
    }
    text[n] = '\0';
    out->text = text;
    char *end;
    long pid = strtol(text, &end, 10);
    if (pid > 0 && (*end == '\n' || *end == '\0'))
        out->pid = pid;
    for (char *line = strchr(text, '\n'); line; line = strchr(line, '\n')) {
        line++;
        if (!strncmp(line, "command run\n", 12))
            out->is_run = 1;
        else if (!strncmp(line, "started ", 8))
            out->started = strtol(line + 8, NULL, 10);
    }
    return 0;
}

void pv_service_info_free(pv_service_info *i)
{
    free(i->text);
    i->text = NULL;
}
