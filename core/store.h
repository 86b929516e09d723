/* store: the SQLite database: opening, migrations, transactions, the
 * writes of facts and messages, and the history queries rules ask for.
 *
 * One writing connection, owned by the loop thread (there is one writer);
 * a file database also has the checkpoint thread's own connection, which
 * only checkpoints (struct checkpointer in store.c), and pv_store_sync_wal
 * may run on another thread (libuv's pool, for MLLP's relaxed commits).
 * Opening applies the embedded migrations of db/migrations in order and
 * sets WAL mode, synchronous=FULL (an ACK means on disk), a busy timeout
 * and, unless database.walbuf = false, the gathering WAL VFS (walbuf.h).
 * A new database file is created with mode 0600; every commit first checks
 * that the file is still the one opened (pv_store_check). Other modules
 * (alerts, notify, tail, ingest, the CLI commands) still prepare their own
 * statements on pv_store_db(): moving them here is issue 20 part 3. Does
 * not know about Lua or feeds. */
#ifndef PV_STORE_H
#define PV_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "facts.h"

typedef struct pv_store pv_store;

/* Opens (creating if needed) the database at path; ":memory:" gives a
 * private in-memory one. On failure returns a negative code and writes a
 * sentence into err. The caller frees the store with pv_store_close(). */
int pv_store_open(const char *path, pv_store **out, char *err, size_t errcap);
/* The same, choosing whether the connection writes its WAL through the
 * gathering VFS (walbuf != 0, what pv_store_open does; walbuf.h) or
 * SQLite's default VFS (the config's database.walbuf = false). */
int pv_store_open_with(const char *path, int walbuf, pv_store **out, char *err,
                       size_t errcap);
void pv_store_close(pv_store *s);

/* WAL checkpoints of a database file run on a thread of the store's own
 * (store.c, struct checkpointer), never inside a commit. What they did: */
typedef struct {
    int running;       /* the thread has its connection */
    uint64_t runs;     /* background checkpoints */
    uint64_t frames;   /* WAL frames they copied into the database (with
                          any the writer copied between two passes) */
    uint64_t errors;   /* that failed (I/O, disk full), logged */
    uint64_t restarts; /* times the writer copied the WAL to its end */
    /* Checkpoints the writer ran itself, on its own thread (the loop in
     * pvwatch run): when the thread is not running, or to copy the WAL's
     * end so that it can start over. Their time holds up every commit. */
    uint64_t writer_runs;
    uint64_t writer_us; /* microseconds they took in all */
} pv_store_ckpt_stats;
void pv_store_ckpt_get(pv_store *s, pv_store_ckpt_stats *out);

/* The raw connection, for modules that keep their own statements. */
sqlite3 *pv_store_db(pv_store *s);
/* The last SQLite error message of the connection. */
const char *pv_store_errmsg(pv_store *s);

/* Transactions. begin is a no-op returning PV_ESTATE when one is open.
 * commit first checks the database file's identity (pv_store_check) and
 * returns PV_EGONE, committing nothing, once it has changed; like any
 * failed commit, the caller then rolls back. */
int pv_store_begin(pv_store *s);
int pv_store_commit(pv_store *s);

/* The database file and its WAL, as opened (device and inode), against
 * what their paths name now: a file deleted, or replaced (mv over it), or
 * a WAL deleted while pvwatch runs would take every later commit with it
 * (SQLite goes on writing into the unlinked file; the next start finds an
 * empty or other database). Returns 0, or PV_EGONE once the identity has
 * changed; from then on it stays PV_EGONE and pv_store_gone() says what
 * happened. Two stat() calls; in memory always 0. */
int pv_store_check(pv_store *s);
/* NULL, or a sentence naming the path and what changed. */
const char *pv_store_gone(const pv_store *s);
/* After PV_EGONE: lets later commits go into the file the store still has
 * open (deleted or replaced: nothing committed is in the database at the
 * path), so that the engine's last alert is recorded and its alert-log
 * line written. Call it only once nothing more can be acknowledged. */
void pv_store_accept_gone(pv_store *s);
/* Copies the database the store has open (the deleted or replaced one,
 * with every commit) with SQLite's backup API into a new file
 * "<path>.rescued-<unix time>" (its name is written into out). 0 or a
 * negative code; never overwrites a file. */
int pv_store_rescue(pv_store *s, char *out, size_t outcap);

/* The single-instance lock: an flock(2) on "<path>.lock" beside the
 * database, held until *fd is closed (by the process's exit at the
 * latest). exclusive = 1 (pvwatch run, ingest, replay: anything that runs
 * the pipeline and its recovery): takes it and writes the process id
 * into the file, or returns PV_ELOCKED with *holder = the holder's pid (0
 * when not known) and a sentence in err; commands that hold it shared are
 * waited for up to 10 s. exclusive = 0 (alerts, outbox): takes it shared
 * and returns 0 with *holder = 0, or, when an exclusive holder has it,
 * returns 0 with *fd = -1 and *holder = its pid (-1: the lock file cannot
 * be opened, so unknown): the caller must then leave the engine's
 * recovery (the alert log) alone. ":memory:" never locks (0, *fd = -1). */
int pv_store_lock(const char *path, int exclusive, int *fd, long *holder,
                  char *err, size_t errcap);
void pv_store_rollback(pv_store *s);
int pv_store_in_tx(const pv_store *s);

/* A transaction whose COMMIT does not wait for the disk (synchronous=OFF
 * for it alone): the commit is atomic and visible at once, and durable
 * after the next pv_store_sync_wal() returns 0 (or any later ordinary
 * commit, or a checkpoint: each syncs the whole WAL first, so what is
 * durable is always a prefix of the commits). The MLLP server commits its
 * batches this way and sends their ACKs after the sync, which runs on a
 * worker thread while the loop goes on with the next batch. In memory, or
 * when the WAL cannot be opened, it is an ordinary transaction. */
int pv_store_begin_relaxed(pv_store *s);
/* fdatasync of the WAL; may be called from another thread while the loop
 * uses the store (it touches the WAL's file descriptor only). 0 or PV_EIO. */
int pv_store_sync_wal(pv_store *s);
/* 1 when every committed transaction is on disk: no relaxed commit waits
 * for a pv_store_sync_wal (which may run on another thread) that has not
 * returned 0 yet. */
int pv_store_all_durable(pv_store *s);

/* Records an inbound message or file. Returns PV_ESTATE when (source,
 * control_id) exists already, and then sets *dup_id to that row. */
int pv_store_message_add(pv_store *s, const char *source,
                         const char *control_id, const char *type,
                         const char *name, const void *raw, size_t rawlen,
                         const char *status, int64_t *id, int64_t *dup_id);
/* Gives a message its final control id (a file's SHA-256 is known only
 * after reading it). Returns PV_ESTATE, with *dup_id set, when another
 * message of that source has it. */
int pv_store_message_rekey(pv_store *s, int64_t id, const char *source,
                           const char *control_id, int64_t *dup_id);
/* Savepoints inside the open transaction, so one file or message can be
 * undone without the rest of its batch. */
int pv_store_savepoint(pv_store *s);
int pv_store_release(pv_store *s);
void pv_store_rollback_to(pv_store *s);
/* Sets the final status, error summary and row counts of a message. */
int pv_store_message_finish(pv_store *s, int64_t id, const char *status,
                            const char *error, long stored, long rejected);

/* Inserts or refreshes a patient (birth date and sex may be NULL). */
int pv_store_patient(pv_store *s, const char *id, const char *birth_date,
                     const char *sex);

/* Insert facts; *id (may be NULL) receives the new row id. */
int pv_store_add_obs(pv_store *s, const pv_obs *o, int64_t *id);
/* Marks the patient's earlier live results of 'code' at 'at' (status not
 * D or W) as 'mark'; only those whose status is 'only' when it is given;
 * of the same order when 'order' is given (a row without an order number
 * matches any). *count: how many (issue 15 item 1). */
int pv_store_obs_supersede(pv_store *s, const char *patient, const char *code,
                           pv_time_t at, const char *order, const char *mark,
                           const char *only, int *count);
/* Records a stored message's content hash (messages.content_sha256). */
int pv_store_message_set_hash(pv_store *s, int64_t id, const char *hex);
/* The content hash (hex) of stored message 'id' into hex; a row stored
 * before migration 0006 has none, and hash_raw computes it from the raw
 * bytes. Returns 0, PV_ENOTFOUND (no such message) or an error. */
int pv_store_message_hash(pv_store *s, int64_t id,
                          void (*hash_raw)(const char *raw, size_t len,
                                           char hex[65]),
                          char hex[65]);
int pv_store_add_exposure(pv_store *s, const pv_exposure *e, int64_t *id);
/* Ends the patient's exposures of an order, the same placer or filler
 * order number (either may be NULL, not both), that started by 'at' and
 * are still open then: their end becomes 'at' (issue 15 item 2: ORC-1
 * DC/OD/XO/RO). *count: how many. */
int pv_store_end_exposures(pv_store *s, const char *patient, const char *placer,
                           const char *filler, pv_time_t at, int *count);
int pv_store_add_event(pv_store *s, const pv_event *e, int64_t *id);

/* History queries. Each result row is passed to fn with the statement
 * positioned on it (columns as documented per query); fn returns nonzero to
 * stop. codes_json is a JSON array of code strings, or NULL for every code.
 * since/until are ISO times or NULL; limit <= 0 means no limit. Rows come
 * newest first. */
typedef int (*pv_store_row_fn)(void *ud, sqlite3_stmt *row);
/* fn may not return normally: rules.c builds Lua tables in it inside a
 * protected call, and a Lua error (memory, budget) leaves the query
 * stepping. The caller then calls pv_store_cursor_reset() before anything
 * else uses the store; every query also resets its statement before it
 * binds. A no-op when no query was cut short. */
void pv_store_cursor_reset(pv_store *s);

/* Columns: id, code, code_system, name, value_num, value_text, unit,
 * ref_low, ref_high, flag, status, observed_at, comparator, patient_id. */
int pv_store_labs(pv_store *s, const char *patient, const char *codes_json,
                  const char *since, const char *until, long limit,
                  pv_store_row_fn fn, void *ud);
/* Columns: id, code, code_system, term, onset_at, serious, outcome,
 * patient_id. */
int pv_store_events(pv_store *s, const char *patient, const char *codes_json,
                    const char *since, const char *until, long limit,
                    pv_store_row_fn fn, void *ud);
/* Columns: id, drug, drug_code, code_system, dose, dose_unit, route,
 * start_at, end_at, patient_id; oldest first. */
int pv_store_exposures(pv_store *s, const char *patient, pv_store_row_fn fn,
                       void *ud);
/* Columns: id, birth_date, sex. */
int pv_store_patient_get(pv_store *s, const char *patient, pv_store_row_fn fn,
                         void *ud);

/* Rule memory (pv.state). get returns PV_ENOTFOUND when unset; the value is
 * copied into a malloc'd string the caller frees. set with value NULL
 * deletes. */
int pv_store_state_get(pv_store *s, const char *rule, const char *key,
                       char **value);
int pv_store_state_set(pv_store *s, const char *rule, const char *key,
                       const char *value);

/* A number that changes whenever the stored exposures may have changed (an
 * exposure added, a transaction or savepoint rolled back), for caches. */
uint64_t pv_store_exposure_gen(const pv_store *s);

/* Current clock for stored times; tests and 'pvwatch test' fix it. */
pv_time_t pv_store_now(const pv_store *s);
void pv_store_set_clock(pv_store *s, pv_time_t fixed); /* 0 = real clock */

#endif
