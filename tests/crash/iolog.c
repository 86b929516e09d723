/* iolog.c: an LD_PRELOAD library for the power-loss test (crash.py
 * --power-loss). It records, for the files of one directory, every write
 * with the bytes it overwrites and every fsync/fdatasync, so that after a
 * SIGKILL the test can undo writes that no sync covered: the state of the
 * disk after a power cut at that moment, rather than after a process kill
 * (where the page cache keeps everything written).
 *
 *   PV_IOLOG=FILE      the log to write (nothing is recorded without it)
 *   PV_IOLOG_DIR=DIR   the directory whose files are recorded (an absolute
 *                      path, as /proc/self/fd shows it), not those of its
 *                      subdirectories; files ending in "-shm" are left out
 *                      (SQLite maps them and rebuilds them after a crash)
 *
 * Records, little-endian, one after another:
 *   'P' u32 id, u32 n, path[n]         a file first seen (id from 1)
 *   'W' u32 id, u64 off, u32 len, u64 size_before, u32 n, old[n]
 *       a write of len bytes at off; old: the n bytes it replaced (those
 *       below size_before). Logged before the write is made, so a kill
 *       between the two leaves a record whose undo changes nothing.
 *   'S' u32 id, u64 size               fsync/fdatasync of the file began
 *       (size: the file's then): every write logged before it, and the
 *       file up to size, are durable once it returns.
 *   'T' u32 id, u64 size_before, u64 size_after   ftruncate
 * A record cut short by the kill at the end of the log is ignored by the
 * reader (crash.py).
 *
 * glibc's stdio writes with an internal call that no preloaded library
 * sees: a file written with fprintf (the alert log) has no 'W' records,
 * only the 'S' records of its syncs; powercut.py cuts what such a file
 * grew by since its last sync (it is only ever appended to).
 *
 * Calls are serialised by one mutex (reading the old bytes, logging and
 * writing must not interleave with another thread's write to the file).
 * This is test code: it trades speed for simplicity. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*sync_fn)(int);
typedef int (*trunc_fn)(int, off_t);

static struct {
    write_fn write;
    pwrite_fn pwrite, pwrite64;
    pwritev_fn pwritev, pwritev64;
    writev_fn writev;
    sync_fn fsync, fdatasync;
    trunc_fn ftruncate, ftruncate64;
} real;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static char dir[PATH_MAX];
static size_t dirlen;

/* Files seen so far, by path (not by inode: SQLite deletes its journal
 * and creates the WAL, which may get the same inode number). */
#define MAX_FILES 1024
static struct seen {
    char *path;
    uint32_t id; /* 0: not recorded */
} seen[MAX_FILES];
static size_t nseen;
static uint32_t next_id = 1;

__attribute__((constructor)) static void iolog_init(void)
{
    real.write = (write_fn)dlsym(RTLD_NEXT, "write");
    real.pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    real.pwrite64 = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    real.pwritev = (pwritev_fn)dlsym(RTLD_NEXT, "pwritev");
    real.pwritev64 = (pwritev_fn)dlsym(RTLD_NEXT, "pwritev64");
    real.writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
    real.fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    real.fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    real.ftruncate = (trunc_fn)dlsym(RTLD_NEXT, "ftruncate");
    real.ftruncate64 = (trunc_fn)dlsym(RTLD_NEXT, "ftruncate64");
    const char *path = getenv("PV_IOLOG"), *d = getenv("PV_IOLOG_DIR");
    if (!path || !d || strlen(d) + 2 > sizeof dir)
        return;
    snprintf(dir, sizeof dir, "%s/", d);
    dirlen = strlen(dir);
    log_fd =
        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
}

static void put(const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = real.write(log_fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            /* A log with a hole would make the test lie: stop here. */
            static const char msg[] = "iolog: cannot write the log\n";
            real.write(2, msg, sizeof msg - 1);
            abort();
        }
        c += w;
        n -= (size_t)w;
    }
}

static void put_u32(uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, 4);
}

static void put_u64(uint64_t v)
{
    put_u32((uint32_t)v);
    put_u32((uint32_t)(v >> 32));
}

/* The id of fd's file (logging a 'P' record the first time), 0 when it is
 * not recorded. Called with mu held. */
static uint32_t file_id(int fd, struct stat *st)
{
    if (log_fd < 0 || fd == log_fd || fstat(fd, st) != 0 ||
        !S_ISREG(st->st_mode))
        return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i].path, path) == 0)
            return seen[i].id;
    size_t len = (size_t)n;
    int shm = len > 4 && strcmp(path + len - 4, "-shm") == 0;
    uint32_t id = 0;
    if (strncmp(path, dir, dirlen) == 0 && !strchr(path + dirlen, '/') &&
        !shm && !strstr(path, " (deleted)")) {
        id = next_id++;
        put("P", 1);
        put_u32(id);
        put_u32((uint32_t)len);
        put(path, len);
    }
    char *copy = strdup(path);
    if (copy && nseen < MAX_FILES)
        seen[nseen++] = (struct seen){copy, id};
    else
        free(copy);
    return id;
}

/* Logs the undo record of a write of len bytes at off (off < 0: at the
 * end, O_APPEND). Called with mu held. */
static void log_write(int fd, off_t off, size_t len)
{
    struct stat st;
    uint32_t id = file_id(fd, &st);
    if (!id)
        return;
    if (off < 0 || (fcntl(fd, F_GETFL) & O_APPEND))
        off = st.st_size;
    uint64_t size = (uint64_t)st.st_size;
    size_t n = 0; /* the bytes below the old size that the write replaces */
    if ((uint64_t)off < size)
        n = size - (uint64_t)off < len ? (size_t)(size - (uint64_t)off) : len;
    char *old = n ? malloc(n) : NULL;
    size_t got = 0;
    if (old) {
        /* pread through the same file: the bytes on the page cache now. */
        while (got < n) {
            ssize_t r = pread(fd, old + got, n - got, off + (off_t)got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
    }
    put("W", 1);
    put_u32(id);
    put_u64((uint64_t)off);
    put_u32((uint32_t)len);
    put_u64(size);
    put_u32((uint32_t)got);
    if (got)
        put(old, got);
    free(old);
}

static off_t cur_off(int fd)
{
    return lseek(fd, 0, SEEK_CUR);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (log_fd < 0)
        return real.write(fd, buf, n);
    pthread_mutex_lock(&mu);
    log_write(fd, cur_off(fd), n);
    ssize_t rc = real.write(fd, buf, n);
    pthread_mutex_unlock(&mu);
    return rc;
}

static ssize_t pwrite_any(pwrite_fn f, int fd, const void *buf, size_t n,
                          off_t off)
{
    if (log_fd < 0)
        return f(fd, buf, n, off);
    pthread_mutex_lock(&mu);
    log_write(fd, off, n);
    ssize_t rc = f(fd, buf, n, off);
    pthread_mutex_unlock(&mu);
    return rc;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite_any(real.pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite_any(real.pwrite64, fd, buf, n, off);
}

static size_t iov_len(const struct iovec *iov, int cnt)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

static ssize_t pwritev_any(pwritev_fn f, int fd, const struct iovec *iov,
                           int cnt, off_t off)
{
    if (log_fd < 0)
        return f(fd, iov, cnt, off);
    pthread_mutex_lock(&mu);
    log_write(fd, off, iov_len(iov, cnt));
    ssize_t rc = f(fd, iov, cnt, off);
    pthread_mutex_unlock(&mu);
    return rc;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    return pwritev_any(real.pwritev, fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    return pwritev_any(real.pwritev64, fd, iov, cnt, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (log_fd < 0)
        return real.writev(fd, iov, cnt);
    pthread_mutex_lock(&mu);
    log_write(fd, cur_off(fd), iov_len(iov, cnt));
    ssize_t rc = real.writev(fd, iov, cnt);
    pthread_mutex_unlock(&mu);
    return rc;
}

static int sync_any(sync_fn f, int fd)
{
    if (log_fd >= 0) {
        struct stat st;
        pthread_mutex_lock(&mu);
        uint32_t id = file_id(fd, &st);
        if (id) {
            put("S", 1);
            put_u32(id);
            put_u64((uint64_t)st.st_size);
        }
        pthread_mutex_unlock(&mu);
    }
    return f(fd);
}

int fsync(int fd)
{
    return sync_any(real.fsync, fd);
}

int fdatasync(int fd)
{
    return sync_any(real.fdatasync, fd);
}

static int trunc_any(trunc_fn f, int fd, off_t size)
{
    if (log_fd < 0)
        return f(fd, size);
    struct stat st;
    pthread_mutex_lock(&mu);
    uint32_t id = file_id(fd, &st);
    if (id) {
        put("T", 1);
        put_u32(id);
        put_u64((uint64_t)st.st_size);
        put_u64((uint64_t)size);
    }
    int rc = f(fd, size);
    pthread_mutex_unlock(&mu);
    return rc;
}

int ftruncate(int fd, off_t size)
{
    return trunc_any(real.ftruncate, fd, size);
}

int ftruncate64(int fd, off_t size)
{
    return trunc_any(real.ftruncate64, fd, size);
}
