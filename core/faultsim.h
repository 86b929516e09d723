/* faultsim: fails the Nth allocation of one allocator, as SQLite's own
 * test harness does (its "malloc fault injection"), so that a test can
 * walk N = 1, 2, ... over a run and see every failure path taken
 * (tests/fault/faultsim.c; docs/reliability.md "Fault injection").
 *
 * Three allocators are counted separately:
 * - PV_FAULT_MALLOC: pvwatch's own malloc/calloc/realloc/strdup/strndup.
 *   Only a binary linked with -Wl,--wrap=malloc,... (tests/tests.cmake,
 *   the faultsim target) routes them here; pvwatch itself never does.
 * - PV_FAULT_LUA: every growing allocation of a rule plugin's Lua state
 *   (pv_pool_realloc, the lua_Alloc behind rules.c's memory cap). Lua
 *   assumes a shrink never fails, so shrinks are not counted.
 * - PV_FAULT_SQLITE: every sqlite3_malloc/realloc of the process, once
 *   pv_faultsim_sqlite_install has put a counter in front of SQLite's
 *   default methods (SQLITE_CONFIG_MALLOC).
 *
 * Nothing is armed in pvwatch: the allocators' cost is one test of
 * pv_faultsim_on. Not thread-safe: arm and disarm it while only the
 * calling thread allocates (the test drives the pipeline on one thread). */
#ifndef PV_FAULTSIM_H
#define PV_FAULTSIM_H

enum pv_fault_kind {
    PV_FAULT_MALLOC,
    PV_FAULT_LUA,
    PV_FAULT_SQLITE,
    PV_FAULT_KINDS
};

/* Nonzero while a kind is counted (armed or counting only). */
extern int pv_faultsim_on;

/* Counts the allocations of kind k from now on, and fails the nth of them
 * (n >= 1), or none when n is 0 (counting only). persistent: every one
 * after the nth fails too; else only the nth (the run goes on). Other
 * kinds stop being counted. */
void pv_faultsim_arm(enum pv_fault_kind k, long n, int persistent);
/* Stops counting and failing; the counters keep their values. */
void pv_faultsim_disarm(void);
/* Called by an allocator of kind k before it allocates: 1 when this
 * allocation must fail. */
int pv_faultsim_fail(enum pv_fault_kind k);
/* Allocations of kind k counted since it was armed, and failures made. */
long pv_faultsim_count(enum pv_fault_kind k);
long pv_faultsim_hits(enum pv_fault_kind k);
const char *pv_faultsim_name(enum pv_fault_kind k);

/* Puts the counter in front of SQLite's allocator. Call before any other
 * SQLite call (sqlite3_config must precede sqlite3_initialize). Returns an
 * SQLite result code. */
int pv_faultsim_sqlite_install(void);

#endif
