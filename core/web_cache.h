/* web_cache: the review console's cache of its costly pages (issue 16).
 *
 * The rule-quality page (/rules) and the grouped worklist (/?group=rule,
 * /?group=patient) aggregate every alert the filter matches: at 100k
 * alerts a GROUP BY over the table, 100-200 ms of CPU. A reload storm (a
 * committee's screen, eight browsers on F5) would take the cores the engine
 * needs. So their content -- the page's part without the header, which
 * alone names the user and carries nothing per session -- is kept, per
 * database and query, and given again while
 *   - the database's version is the same: the highest alerts.id and the
 *     highest alert_actions.id (every new alert, escalation, acknowledge,
 *     assign, comment and close adds an alert_actions row in the same
 *     transaction; a repeat only counts occurrences, which these pages do
 *     not show; nothing deletes alerts), and
 *   - it is younger than PV_WEB_CACHE_MS (a bound on anything the version
 *     does not see).
 * PRAGMA data_version is not used: it is per connection, and each console
 * thread has its own; and under an MLLP feed it changes at every commit.
 *
 * Thread safety: one mutex around a small table (PV_WEB_CACHE_SLOTS
 * entries, the oldest replaced); the copy in and out is made under it, the
 * page is computed outside it. */
#ifndef PV_WEB_CACHE_H
#define PV_WEB_CACHE_H

#include <sqlite3.h>
#include <stddef.h>

#include "buf.h"

#define PV_WEB_CACHE_MS 5000
#define PV_WEB_CACHE_SLOTS 32
#define PV_WEB_CACHE_MAX_BYTES (4u << 20) /* one entry; larger: not kept */

/* The version of db's alerts as text ("MAXALERT:MAXACTION") into out.
 * 0, or -1 on a database error (then do not use the cache). */
int pv_web_cache_version(sqlite3 *db, char out[64]);

/* When key's entry has this version and is fresh, appends its bytes to
 * out and returns 1; else 0. */
int pv_web_cache_get(const char *key, const char *version, pv_buf *out);

/* Keeps data under key with version (replacing key's entry, else the
 * oldest). Silently keeps nothing when out of memory or too large. */
void pv_web_cache_put(const char *key, const char *version, const char *data,
                      size_t len);

/* Hits and misses since the start (or the last clear), for tests and the
 * log. */
void pv_web_cache_counts(unsigned long *hits, unsigned long *misses);

/* Empties the cache and zeroes the counts (tests; frees the memory). */
void pv_web_cache_clear(void);

#endif
