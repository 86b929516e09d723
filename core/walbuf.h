/* walbuf: an SQLite VFS that writes each WAL commit with one system call.
 *
 * SQLite appends a commit to the WAL as two writes per page (the 24-byte
 * frame header, then the page), each a pwrite(2): a 16-message MLLP batch
 * that touches 180 pages makes 360 system calls. This VFS wraps the
 * default one and, for WAL files only, gathers contiguous writes in a
 * buffer that it writes out when the commit frame's page has been added,
 * before SQLite publishes the commit in the WAL index. Nothing else
 * changes: other files, reads, locks, syncs and shared memory go straight
 * to the default VFS (reads, syncs, truncation and size queries of a WAL
 * first write out what is buffered). A write error of the gathered range
 * is returned from the commit frame's write, so SQLite fails that commit as
 * it would have without the buffer. Frames still gathered when the write
 * transaction ends (it rolled back after spilling pages) are dropped when
 * the connection releases the WAL write lock: after that another
 * connection may write at the same offsets.
 *
 * It calls only SQLite's VFS API (and metrics.h, to time the WAL's syncs).
 * The store opens its connections with it.
 */
#ifndef PV_WALBUF_H
#define PV_WALBUF_H

/* The name to give sqlite3_open_v2 as its VFS. */
#define PV_WALBUF_VFS "pvwatch-walbuf"

/* Registers the VFS (not as the default) once per process; later calls
 * return the first call's result. Returns 0, or PV_EDB if SQLite has no
 * default VFS or refuses the registration. Thread-safe. */
int pv_walbuf_register(void);

/* What the VFS did since the process started: WAL writes SQLite asked
 * for, and the writes it made of them. For tests and benchmarks. */
typedef struct pv_walbuf_stats {
    unsigned long long asked;   /* xWrite calls on WAL files */
    unsigned long long written; /* writes that reached the file system */
} pv_walbuf_stats;
void pv_walbuf_stats_get(pv_walbuf_stats *out);

#endif
