/* faultsim: see faultsim.h. */
#include "faultsim.h"

#include <sqlite3.h>
#include <stddef.h>

int pv_faultsim_on;

static struct {
    enum pv_fault_kind kind;
    long fail_at; /* 0: count only */
    int persistent;
    long count[PV_FAULT_KINDS];
    long hits[PV_FAULT_KINDS];
} fs;

void pv_faultsim_arm(enum pv_fault_kind k, long n, int persistent)
{
    fs.kind = k;
    fs.fail_at = n;
    fs.persistent = persistent;
    fs.count[k] = 0;
    fs.hits[k] = 0;
    pv_faultsim_on = 1;
}

void pv_faultsim_disarm(void)
{
    pv_faultsim_on = 0;
}

int pv_faultsim_fail(enum pv_fault_kind k)
{
    if (!pv_faultsim_on || k != fs.kind)
        return 0;
    long c = ++fs.count[k];
    if (fs.fail_at <= 0 || c < fs.fail_at || (c > fs.fail_at && !fs.persistent))
        return 0;
    fs.hits[k]++;
    return 1;
}

long pv_faultsim_count(enum pv_fault_kind k)
{
    return fs.count[k];
}

long pv_faultsim_hits(enum pv_fault_kind k)
{
    return fs.hits[k];
}

const char *pv_faultsim_name(enum pv_fault_kind k)
{
    static const char *const names[PV_FAULT_KINDS] = {"malloc", "lua",
                                                      "sqlite"};
    return (unsigned)k < PV_FAULT_KINDS ? names[k] : "?";
}

/* ---- SQLite: the default methods behind a counter ---------------------- */

static sqlite3_mem_methods sqlite_default;

static void *sq_malloc(int n)
{
    if (pv_faultsim_on && pv_faultsim_fail(PV_FAULT_SQLITE))
        return NULL;
    return sqlite_default.xMalloc(n);
}

static void *sq_realloc(void *p, int n)
{
    if (pv_faultsim_on && pv_faultsim_fail(PV_FAULT_SQLITE))
        return NULL;
    return sqlite_default.xRealloc(p, n);
}

static void sq_free(void *p)
{
    sqlite_default.xFree(p);
}

static int sq_size(void *p)
{
    return sqlite_default.xSize(p);
}

static int sq_roundup(int n)
{
    return sqlite_default.xRoundup(n);
}

static int sq_init(void *ud)
{
    return sqlite_default.xInit(ud);
}

static void sq_shutdown(void *ud)
{
    sqlite_default.xShutdown(ud);
}

int pv_faultsim_sqlite_install(void)
{
    int rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_default);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_mem_methods m = {
        sq_malloc,  sq_free, sq_realloc,  sq_size,
        sq_roundup, sq_init, sq_shutdown, sqlite_default.pAppData};
    return sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}
