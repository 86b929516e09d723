/* walbuf: see walbuf.h. The WAL format this relies on (sqlite.org
 * fileformat2.html, "WAL File Format"): a 32-byte header, then frames of a
 * 24-byte header and one page; bytes 4-7 of a frame header are the
 * database size after the commit for a commit frame and zero otherwise.
 * SQLite writes a frame as its header, then its page (wal.c
 * walWriteOneFrame), and makes a commit visible to other connections only
 * after the commit frame's writes have returned (walIndexWriteHdr). So a
 * range gathered here is written out no later than the end of the commit
 * frame's page write: nothing is visible before it is in the file. */
#include "walbuf.h"
#include "error.h"
#include "metrics.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define FRAME_HEADER 24
/* 1 MiB: a 16-message MLLP batch writes about 180 frames of 4 KiB. */
#define GATHER_MAX (1u << 20)
/* The most one write hands the default VFS (see flush). */
#define WRITE_MAX 0x1f000u

typedef struct wb_file wb_file;
struct wb_file {
    sqlite3_file base;  /* pMethods: ours */
    sqlite3_file *real; /* the default VFS's file, allocated after this */
    int wal;            /* a WAL file: writes are gathered */
    /* A main database and its connection's WAL know each other (see
     * wb_shm_lock); db_name is the pager's file name pointer, which is also
     * what sqlite3_filename_database gives for its WAL's name. */
    const char *db_name;
    wb_file *peer;
    wb_file *next_db;   /* the list of open main databases */
    int commit_next;    /* the last write was a commit frame's header */
    unsigned char *buf; /* gathered bytes for [off, off + len); GATHER_MAX */
    size_t len;
    sqlite3_int64 off;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wb_vfs;
/* One table per version the default VFS's files may have (the unix VFS's
 * dot-file locking is version 1), so SQLite never calls a method the file
 * lacks. */
static sqlite3_io_methods wb_methods[3];
static atomic_ullong n_asked, n_written;
static uv_once_t once = UV_ONCE_INIT;
static int registered = PV_EDB;
static uv_mutex_t dbs_mu; /* guards dbs and the peer links */
static wb_file *dbs;

/* Writes the gathered range, in pieces the default VFS takes: the unix
 * VFS writes at most 0x1ffff bytes a call (os_unix.c seekAndWriteFd masks
 * the length). On failure the bytes not written stay gathered, so a later
 * flush tries again and no commit is made visible without them. */
static int flush(wb_file *f)
{
    size_t done = 0;
    int rc = SQLITE_OK;
    while (done < f->len) {
        size_t n = f->len - done < WRITE_MAX ? f->len - done : WRITE_MAX;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                       f->off + (sqlite3_int64)done);
        atomic_fetch_add_explicit(&n_written, 1, memory_order_relaxed);
        if (rc != SQLITE_OK)
            break;
        done += n;
    }
    if (done && done < f->len)
        memmove(f->buf, f->buf + done, f->len - done);
    f->off += (sqlite3_int64)done;
    f->len -= done;
    return rc;
}

/* Adds [o, o + n) to the gathered range if it extends or overlaps it and
 * fits; returns 0 if it did. */
static int gather(wb_file *f, const void *p, size_t n, sqlite3_int64 o)
{
    if (!f->buf) {
        f->buf = malloc(GATHER_MAX);
        if (!f->buf)
            return -1;
    }
    if (!f->len)
        f->off = o;
    if (o < f->off || o > f->off + (sqlite3_int64)f->len ||
        (size_t)(o - f->off) + n > GATHER_MAX)
        return -1;
    size_t at = (size_t)(o - f->off);
    memcpy(f->buf + at, p, n);
    if (at + n > f->len)
        f->len = at + n;
    return 0;
}

static int wb_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 o)
{
    wb_file *f = (wb_file *)file;
    if (!f->wal)
        return f->real->pMethods->xWrite(f->real, p, n, o);
    atomic_fetch_add_explicit(&n_asked, 1, memory_order_relaxed);
    int rc = SQLITE_OK;
    if (gather(f, p, (size_t)n, o) != 0) {
        /* Not contiguous with what is gathered, or too big: write that
         * out, then start again from this write. */
        if ((rc = flush(f)) != SQLITE_OK)
            return rc;
        if (gather(f, p, (size_t)n, o) != 0) {
            atomic_fetch_add_explicit(&n_written, 1, memory_order_relaxed);
            rc = f->real->pMethods->xWrite(f->real, p, n, o);
        }
    }
    if (rc != SQLITE_OK)
        return rc;
    if (n == FRAME_HEADER) {
        const unsigned char *h = p;
        f->commit_next = (h[4] | h[5] | h[6] | h[7]) != 0;
        return SQLITE_OK;
    }
    if (f->commit_next) {
        /* The commit frame's page: the commit is complete in the file
         * before SQLite publishes it. */
        f->commit_next = 0;
        return flush(f);
    }
    return SQLITE_OK;
}

static int wb_close(sqlite3_file *file)
{
    wb_file *f = (wb_file *)file;
    /* Only frames of a transaction that did not commit can still be
     * gathered here: they are dropped, as SQLite would overwrite them. */
    f->len = 0;
    free(f->buf);
    f->buf = NULL;
    uv_mutex_lock(&dbs_mu);
    if (f->peer)
        f->peer->peer = NULL;
    for (wb_file **pp = &dbs; *pp; pp = &(*pp)->next_db)
        if (*pp == f) {
            *pp = f->next_db;
            break;
        }
    uv_mutex_unlock(&dbs_mu);
    return f->real->pMethods->xClose(f->real);
}

static int wb_read(sqlite3_file *file, void *p, int n, sqlite3_int64 o)
{
    wb_file *f = (wb_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, n, o);
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    wb_file *f = (wb_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *file, int flags)
{
    wb_file *f = (wb_file *)file;
    int rc = flush(f);
    if (rc != SQLITE_OK)
        return rc;
    uint64_t t0 = f->wal ? pv_metrics_now_ns() : 0;
    rc = f->real->pMethods->xSync(f->real, flags);
    if (f->wal && rc == SQLITE_OK) /* /metrics: the writer's WAL syncs */
        pv_metrics_wal_sync(pv_metrics_now_ns() - t0);
    return rc;
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    wb_file *f = (wb_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_file_control(sqlite3_file *file, int op, void *arg)
{
    wb_file *f = (wb_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc
                           : f->real->pMethods->xFileControl(f->real, op, arg);
}

/* The rest goes straight to the default VFS's file. */
#define REAL(file) (((wb_file *)(file))->real)

static int wb_lock(sqlite3_file *file, int lock)
{
    return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int wb_unlock(sqlite3_file *file, int lock)
{
    return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int wb_check_reserved(sqlite3_file *file, int *out)
{
    return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int wb_sector_size(sqlite3_file *file)
{
    return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int wb_device(sqlite3_file *file)
{
    return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int wb_shm_map(sqlite3_file *file, int page, int size, int extend,
                      void volatile **out)
{
    return REAL(file)->pMethods->xShmMap(REAL(file), page, size, extend, out);
}

/* SQLite's WAL write lock is shared-memory lock 0 (wal.c WAL_WRITE_LOCK). */
#define WAL_WRITE_LOCK 0

static int wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    wb_file *f = (wb_file *)file;
    if ((flags & SQLITE_SHM_UNLOCK) && (flags & SQLITE_SHM_EXCLUSIVE) &&
        offset <= WAL_WRITE_LOCK && WAL_WRITE_LOCK < offset + n && f->peer) {
        /* The write transaction ends. A commit has written out what it
         * gathered; what is left belongs to a transaction that rolled back
         * (frames spilled from the cache). Once the lock is free another
         * connection may write frames at those offsets, so they must never
         * be written: drop them. */
        f->peer->len = 0;
        f->peer->commit_next = 0;
    }
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wb_shm_barrier(sqlite3_file *file)
{
    REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int wb_shm_unmap(sqlite3_file *file, int del)
{
    return REAL(file)->pMethods->xShmUnmap(REAL(file), del);
}

static int wb_fetch(sqlite3_file *file, sqlite3_int64 o, int n, void **out)
{
    return REAL(file)->pMethods->xFetch(REAL(file), o, n, out);
}

static int wb_unfetch(sqlite3_file *file, sqlite3_int64 o, void *p)
{
    return REAL(file)->pMethods->xUnfetch(REAL(file), o, p);
}

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file,
                   int flags, int *out_flags)
{
    (void)vfs;
    wb_file *f = (wb_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    /* SQLite calls xClose only if pMethods is set. */
    if (rc == SQLITE_OK && f->real->pMethods) {
        int v = f->real->pMethods->iVersion;
        f->base.pMethods = &wb_methods[v < 1 ? 0 : v > 3 ? 2 : v - 1];
        uv_mutex_lock(&dbs_mu);
        if ((flags & SQLITE_OPEN_MAIN_DB) && name) {
            f->db_name = name;
            f->next_db = dbs;
            dbs = f;
        } else if ((flags & SQLITE_OPEN_WAL) && name) {
            /* Gather only for a WAL whose database is known: its write
             * lock tells when gathered frames have gone stale. */
            const char *db = sqlite3_filename_database(name);
            for (wb_file *d = dbs; d; d = d->next_db)
                if (d->db_name == db && !d->peer) {
                    d->peer = f;
                    f->peer = d;
                    f->wal = 1;
                    break;
                }
        }
        uv_mutex_unlock(&dbs_mu);
    } else if (f->real->pMethods) {
        f->real->pMethods->xClose(f->real);
    }
    return rc;
}

/* The VFS's own methods: the default VFS's, given the default VFS (its
 * methods read their own pAppData). */
static int wb_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int wb_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int wb_full_path(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *wb_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void wb_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*wb_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void wb_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}

static int wb_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int wb_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}

static int wb_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int wb_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xGetLastError(real_vfs, n, out);
}

static int wb_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void register_once(void)
{
    if (uv_mutex_init(&dbs_mu) != 0)
        return;
    real_vfs = sqlite3_vfs_find(NULL);
    /* Versions below these lack shared memory (WAL) or xCurrentTimeInt64. */
    if (!real_vfs || real_vfs->iVersion < 2)
        return;
    sqlite3_io_methods m = {
        .iVersion = 3,
        .xClose = wb_close,
        .xRead = wb_read,
        .xWrite = wb_write,
        .xTruncate = wb_truncate,
        .xSync = wb_sync,
        .xFileSize = wb_file_size,
        .xLock = wb_lock,
        .xUnlock = wb_unlock,
        .xCheckReservedLock = wb_check_reserved,
        .xFileControl = wb_file_control,
        .xSectorSize = wb_sector_size,
        .xDeviceCharacteristics = wb_device,
        .xShmMap = wb_shm_map,
        .xShmLock = wb_shm_lock,
        .xShmBarrier = wb_shm_barrier,
        .xShmUnmap = wb_shm_unmap,
        .xFetch = wb_fetch,
        .xUnfetch = wb_unfetch,
    };
    for (int v = 1; v <= 3; v++) {
        wb_methods[v - 1] = m;
        wb_methods[v - 1].iVersion = v;
    }
    wb_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(wb_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = PV_WALBUF_VFS,
        .xOpen = wb_open,
        .xDelete = wb_delete,
        .xAccess = wb_access,
        .xFullPathname = wb_full_path,
        .xDlOpen = wb_dl_open,
        .xDlError = wb_dl_error,
        .xDlSym = wb_dl_sym,
        .xDlClose = wb_dl_close,
        .xRandomness = wb_randomness,
        .xSleep = wb_sleep,
        .xCurrentTime = wb_current_time,
        .xGetLastError = wb_last_error,
        .xCurrentTimeInt64 = wb_current_time64,
    };
    if (sqlite3_vfs_register(&wb_vfs, 0) == SQLITE_OK)
        registered = 0;
}

int pv_walbuf_register(void)
{
    uv_once(&once, register_once);
    return registered;
}

void pv_walbuf_stats_get(pv_walbuf_stats *out)
{
    out->asked = atomic_load_explicit(&n_asked, memory_order_relaxed);
    out->written = atomic_load_explicit(&n_written, memory_order_relaxed);
}
