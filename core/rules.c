/* rules.c: the Lua host. See rules.h; the Lua half is rules_api.lua. */
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "sha256.h"

extern const char pv_rules_api_lua[];

/* The instruction hook fires every HOOK_STEP instructions. */
#define HOOK_STEP 1000
#define MAX_PLUGIN_BYTES (4 << 20)

struct plugin {
    pv_rules *owner;
    lua_State *L;
    char *file;
    char sha[65];
    size_t mem_used, mem_limit;
    size_t mem_base; /* after loading and a collection */
    pv_pool *pool;   /* the Lua state's small blocks (pool.h) */
    int host_ref;    /* the table rules_api.lua returned */
};

struct rule {
    struct plugin *pl;
    char *name;
    char *signal;
    /* For listings (pvwatch rules): NULL when the rule does not say. */
    char *description, *label, *severities, *trigger;
    int ref;           /* the pv.rule table */
    int on_exposure;   /* triggered by exposures */
    int gated;         /* labs and events only for the exposed (gate_pass) */
    uint64_t skips;    /* calls the gate spared */
    int on_all_events; /* on.event given: prefixes matched in events[] */
    double every;      /* seconds; 0 = not scheduled */
    pv_time_t next_due;
    uint64_t calls, nanos;   /* for PVWATCH_PROFILE */
    uint64_t failures;       /* calls that ended in an error or a kill */
    pv_metrics_rule *metric; /* its counters in /metrics (metrics.h) */
};

/* One class of rule failure (the rule, the first line of the error with
 * its numbers blanked, the fact's code and unit) and how often it was
 * seen: the log gets the first failure of a class whole and then one line
 * at every ERR_LOG_EVERY-th, or after ERR_LOG_NS, with the count (issue 17: a
 * unit no rule could grade made 146k log lines of 34k messages). */
#define ERR_CLASSES 64
#define ERR_LOG_EVERY 1000
#define ERR_LOG_NS (60LL * 1000000000LL)
struct err_class {
    uint64_t hash;
    uint64_t pending; /* failures since the last line */
    uint64_t total;
    long long logged_ns; /* when the last line was written */
    char *rule, *what;   /* for the lines: rule name, first error line */
};

/* The gate (issue 17): a rule that names drugs in on.exposure gets a lab
 * or an event only when the patient has a stored exposure that on.exposure
 * would trigger on (what patient:exposed and a course need), unless it
 * says needs_exposure = false. What an exposure is, for the match, is its
 * drug text, drug code and code system; each such kind is judged once per
 * rule by the rule's own state (host.gate_match, the match host.call uses
 * for exposure triggers) and the verdict is kept here. */
#define GATE_KINDS 32   /* kinds of exposure listed per patient */
#define GATE_SLOTS 1024 /* verdicts kept: emptied when half full */
struct gate_memo {
    uint64_t hash;
    char *drug, *code, *system; /* NULL for a NULL column */
    unsigned char *verdict;     /* per rule: 0 unknown, 1 no, 2 yes */
};

static void gate_memo_clear(pv_rules *r);
static void err_flush(struct err_class *c, long long now);
static void err_class_free(struct err_class *c);

/* Lab code -> rules, by open addressing. */
struct code_slot {
    char *code;
    size_t *rules;
    size_t nrules;
};

/* An ICD prefix a rule listens for. */
struct prefix {
    char *prefix; /* upper-case, no dots */
    size_t rule;
};

struct pv_rules {
    const pv_config *cfg;
    pv_store *store;
    struct plugin **plugins;
    size_t nplugins;
    struct rule *rules;
    size_t nrules;
    struct code_slot *slots;
    size_t nslots; /* a power of two */
    size_t nused;  /* slots with a code */
    struct prefix *prefixes;
    size_t nprefixes;
    char *only;
    long instr_limit;
    /* The call in progress, for the hook and the primitives. */
    long instr_left;
    /* CLOCK_MONOTONIC nanoseconds after which the call in progress is
     * stopped by the count hook (limits.rule_time_ms). */
    long long deadline_ns;
    const struct rule *cur;
    pv_rules_stats stats;
    /* Failures seen, by class, for the log (engine_alert). */
    struct err_class errs[ERR_CLASSES];
    size_t nerrs;
    /* The gate (gate_pass): the exposures of the last patient asked for,
     * valid while the store's exposure generation stays gate_gen. */
    char *gate_patient;
    uint64_t gate_gen;
    int gate_valid; /* gate_patient and its exposures are known */
    int gate_all;   /* too many kinds of exposure to list: all pass */
    size_t gate_n;  /* kinds of exposure of gate_patient */
    size_t gate_desc[GATE_KINDS]; /* their slots in gate_memo */
    struct gate_memo *gate_memo;  /* GATE_SLOTS, by kind of exposure */
    size_t gate_used;
    int no_gate; /* PVWATCH_NO_GATE=1 */
};

/* ---------------------------------------------------------------------- */
/* Memory cap and instruction budget                                       */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct plugin *pl = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        pv_pool_realloc(pl->pool, ptr, osize, 0);
        pl->mem_used -= old;
        return NULL;
    }
    if (nsize > old && pl->mem_used + (nsize - old) > pl->mem_limit)
        return NULL;
    void *n = pv_pool_realloc(pl->pool, ptr, osize, nsize);
    if (!n)
        return NULL;
    pl->mem_used = pl->mem_used - old + nsize;
    return n;
}

static struct plugin *plugin_of(lua_State *L)
{
    return *(struct plugin **)lua_getextraspace(L);
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    pv_rules *r = plugin_of(L)->owner;
    r->instr_left -= HOOK_STEP;
    /* The wall clock catches what the count cannot see: work in C that
     * each library wrapper bounds but a loop repeats (rules_api.lua). */
    int late = mono_ns() > r->deadline_ns;
    if (r->instr_left <= 0 || late) {
        /* From now on fire at every instruction, so a rule that catches
         * this error with pcall cannot run on. */
        r->instr_left = 0;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        /* Level 0 is the function that was running (luaL_error would name
         * its caller), so the message points at the looping line. */
        luaL_where(L, 0);
        if (late)
            lua_pushfstring(L, "time limit of %I ms exceeded",
                            (lua_Integer)r->cfg->limits.rule_time_ms);
        else
            lua_pushfstring(L, "instruction budget of %I exceeded",
                            (lua_Integer)r->instr_limit);
        lua_concat(L, 2);
        lua_error(L);
    }
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = luaL_typename(L, 1);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the function below nargs arguments with the budget, a traceback
 * handler and no unwinding into C. On failure copies the message into err
 * and leaves nothing on the stack. */
static int protected_call(struct plugin *pl, int nargs, int nres, long budget,
                          char *err, size_t errcap)
{
    lua_State *L = pl->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    pl->owner->instr_left = budget;
    pl->owner->deadline_ns =
        mono_ns() + pl->owner->cfg->limits.rule_time_ms * 1000000LL *
                        (budget > pl->owner->instr_limit ? 10 : 1);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    if (rc != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(err, errcap, "%s",
                 m ? m : (rc == LUA_ERRMEM ? "not enough memory" : "error"));
        if (rc == LUA_ERRMEM)
            snprintf(err, errcap, "memory limit of %zu bytes exceeded",
                     pl->mem_limit);
        lua_pop(L, 1);
        /* A failed call leaves no more garbage than one that returns, and
         * the incremental collector takes it in its stride: a full
         * collection here cost about 1 ms a failure, 45 % of the CPU of a
         * feed whose every result made a rule fail (issue 17). Only a
         * memory error, which says the state is at its cap, collects in
         * full at once; a state still near its cap after a call is
         * collected, and rebuilt if need be, by check_memory (issue 22
         * item 1). */
        if (rc == LUA_ERRMEM)
            lua_gc(L, LUA_GCCOLLECT);
        return PV_ELUA;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Primitives for rules_api.lua                                            */

static pv_rules *rules_of(lua_State *L)
{
    return plugin_of(L)->owner;
}

static void push_time_or_nil(lua_State *L, sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    pv_time_t t;
    if (s && pv_time_parse(s, strlen(s), &t) == 0)
        lua_pushinteger(L, t);
    else
        lua_pushnil(L);
}

static void set_col_text(lua_State *L, sqlite3_stmt *st, int col,
                         const char *field)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    if (s) {
        lua_pushstring(L, s);
        lua_setfield(L, -2, field);
    }
}

static void set_col_num(lua_State *L, sqlite3_stmt *st, int col,
                        const char *field)
{
    if (sqlite3_column_type(st, col) != SQLITE_NULL) {
        lua_pushnumber(L, sqlite3_column_double(st, col));
        lua_setfield(L, -2, field);
    }
}

/* A history query of a primitive. Everything the C side holds while the
 * store steps (the codes buffer, the statement) is here or in the store,
 * and the query runs inside a protected call (run_query): a Lua error in a
 * row builder (the memory cap, the budget) ends that call, then the
 * statement is reset and the buffer freed, and only then is the error
 * raised again. Issue 20: the error had unwound past sqlite3_reset, and
 * the next patient's query ran on the old cursor with the old patient's
 * bindings. */
enum query_kind { Q_LABS, Q_EVENTS, Q_EXPOSURES, Q_PATIENT };

struct rows {
    lua_State *L;
    lua_Integer n;
    const char *patient;
    enum query_kind kind;
    int codes_idx; /* stack index of the codes list, 0 for none */
    const char *since, *until;
    long limit;
    pv_buf codes;
    int rc;      /* the store's result */
    int foreign; /* a row of another patient came back: refused */
};

/* Every row is checked against the patient asked for (the queries return
 * patient_id as their last column): cheap, and a wrong cursor can never
 * again hand a rule someone else's results unnoticed. */
static int foreign_row(struct rows *rw, sqlite3_stmt *st, int col)
{
    const char *pid = (const char *)sqlite3_column_text(st, col);
    if (pid && strcmp(pid, rw->patient) == 0)
        return 0;
    rw->foreign = 1;
    return 1;
}

static int lab_row(void *ud, sqlite3_stmt *st)
{
    struct rows *rw = ud;
    lua_State *L = rw->L;
    if (foreign_row(rw, st, 13))
        return 1;
    lua_createtable(L, 0, 14);
    lua_pushinteger(L, sqlite3_column_int64(st, 0));
    lua_setfield(L, -2, "id");
    lua_pushstring(L, rw->patient);
    lua_setfield(L, -2, "patient_id");
    set_col_text(L, st, 1, "code");
    set_col_text(L, st, 2, "code_system");
    set_col_text(L, st, 3, "name");
    set_col_num(L, st, 4, "value");
    set_col_text(L, st, 5, "value_text");
    set_col_text(L, st, 6, "unit");
    set_col_num(L, st, 7, "ref_low");
    set_col_num(L, st, 8, "ref_high");
    set_col_text(L, st, 9, "flag");
    set_col_text(L, st, 10, "status");
    push_time_or_nil(L, st, 11);
    lua_setfield(L, -2, "at");
    set_col_text(L, st, 12, "comparator");
    lua_pushliteral(L, "lab");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_kind");
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, -2, ++rw->n);
    return 0;
}

static int event_row(void *ud, sqlite3_stmt *st)
{
    struct rows *rw = ud;
    lua_State *L = rw->L;
    if (foreign_row(rw, st, 7))
        return 1;
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, sqlite3_column_int64(st, 0));
    lua_setfield(L, -2, "id");
    lua_pushstring(L, rw->patient);
    lua_setfield(L, -2, "patient_id");
    set_col_text(L, st, 1, "code");
    set_col_text(L, st, 2, "code_system");
    set_col_text(L, st, 3, "term");
    push_time_or_nil(L, st, 4);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "onset");
    lua_setfield(L, -2, "at");
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
        lua_pushboolean(L, sqlite3_column_int(st, 5));
        lua_setfield(L, -2, "serious");
    }
    set_col_text(L, st, 6, "outcome");
    lua_pushliteral(L, "event");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_kind");
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, -2, ++rw->n);
    return 0;
}

static int exposure_row(void *ud, sqlite3_stmt *st)
{
    struct rows *rw = ud;
    lua_State *L = rw->L;
    if (foreign_row(rw, st, 9))
        return 1;
    lua_createtable(L, 0, 12);
    lua_pushinteger(L, sqlite3_column_int64(st, 0));
    lua_setfield(L, -2, "id");
    lua_pushstring(L, rw->patient);
    lua_setfield(L, -2, "patient_id");
    set_col_text(L, st, 1, "drug");
    set_col_text(L, st, 2, "drug_code");
    set_col_text(L, st, 3, "code_system");
    set_col_num(L, st, 4, "dose");
    set_col_text(L, st, 5, "dose_unit");
    set_col_text(L, st, 6, "route");
    push_time_or_nil(L, st, 7);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "start");
    lua_setfield(L, -2, "at");
    push_time_or_nil(L, st, 8);
    lua_setfield(L, -2, "end");
    set_col_text(L, st, 10, "start_source");
    lua_pushliteral(L, "exposure");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_kind");
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, -2, ++rw->n);
    return 0;
}

static pv_time_t check_time(lua_State *L, int idx)
{
    pv_time_t t = 0;
    if (pv_time_from_number(luaL_checknumber(L, idx), &t))
        luaL_argerror(L, idx, "not a time between the years 0000 and 9999");
    return t;
}

/* Optional time argument (seconds) as ISO text into buf; NULL when nil. */
static const char *opt_iso(lua_State *L, int idx, char *buf)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    return pv_time_format(check_time(L, idx), buf);
}

/* The list of codes at idx (a plain list rules_api.lua made) as a JSON
 * array into b; NULL when there is none. Runs inside the protected
 * query. */
static const char *codes_json(lua_State *L, int idx, pv_buf *b)
{
    if (!idx)
        return NULL;
    pv_buf_puts(b, "[");
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        size_t len;
        const char *s =
            lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (s) {
            if (b->len > 1)
                pv_buf_puts(b, ",");
            pv_buf_json_str(b, s, len);
        }
        lua_pop(L, 1);
    }
    pv_buf_puts(b, "]");
    return pv_buf_cstr(b);
}

static int history_fail(lua_State *L, pv_rules *r, int rc)
{
    return luaL_error(L, "history query failed: %s (%s)", pv_strerror(rc),
                      pv_store_errmsg(r->store));
}

static int patient_row(void *ud, sqlite3_stmt *st);

/* The protected half of a history primitive: builds the result table. */
static int query_body(lua_State *L)
{
    struct rows *rw = lua_touserdata(L, 1);
    pv_rules *r = rules_of(L);
    rw->L = L;
    const char *cj = codes_json(L, rw->codes_idx, &rw->codes);
    if (rw->codes_idx && !cj) {
        rw->rc = PV_ENOMEM;
        return 0;
    }
    if (rw->kind != Q_PATIENT)
        lua_newtable(L);
    switch (rw->kind) {
    case Q_LABS:
        rw->rc = pv_store_labs(r->store, rw->patient, cj, rw->since, rw->until,
                               rw->limit, lab_row, rw);
        break;
    case Q_EVENTS:
        rw->rc = pv_store_events(r->store, rw->patient, cj, rw->since,
                                 rw->until, rw->limit, event_row, rw);
        break;
    case Q_EXPOSURES:
        rw->rc = pv_store_exposures(r->store, rw->patient, exposure_row, rw);
        break;
    case Q_PATIENT:
        rw->rc = pv_store_patient_get(r->store, rw->patient, patient_row, rw);
        if (!rw->n)
            lua_pushnil(L);
        break;
    }
    return 1;
}

/* Runs rw's query in a protected call; the store's statement is reset and
 * the buffer freed before any error goes on (issue 20). */
static int run_query(lua_State *L, struct rows *rw)
{
    pv_rules *r = rules_of(L);
    lua_pushcfunction(L, query_body);
    lua_pushlightuserdata(L, rw);
    /* The codes list goes along: in query_body it is argument 2. */
    if (rw->codes_idx)
        lua_pushvalue(L, rw->codes_idx);
    else
        lua_pushnil(L);
    rw->codes_idx = rw->codes_idx ? 2 : 0;
    int st = lua_pcall(L, 2, 1, 0);
    pv_store_cursor_reset(r->store);
    pv_buf_free(&rw->codes);
    if (st != LUA_OK)
        return lua_error(L);
    if (rw->foreign) {
        pv_error("history query for patient %s returned a row of another "
                 "patient: refused",
                 rw->patient);
        return luaL_error(L, "history query returned a row of another "
                             "patient: refused");
    }
    if (rw->rc)
        return history_fail(L, r, rw->rc);
    return 1;
}

/* prim.labs / prim.events (patient, codes, since, until, limit). */
static int history_prim(lua_State *L, enum query_kind kind)
{
    char since[PV_TIME_BUFSZ], till[PV_TIME_BUFSZ];
    struct rows rw = {.kind = kind, .codes = PV_BUF_INIT};
    rw.patient = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        rw.codes_idx = 2;
    }
    rw.since = opt_iso(L, 3, since);
    rw.until = opt_iso(L, 4, till);
    rw.limit = (long)luaL_optinteger(L, 5, 0);
    return run_query(L, &rw);
}

static int prim_labs(lua_State *L)
{
    return history_prim(L, Q_LABS);
}

static int prim_events(lua_State *L)
{
    return history_prim(L, Q_EVENTS);
}

static int prim_exposures(lua_State *L)
{
    struct rows rw = {.kind = Q_EXPOSURES, .codes = PV_BUF_INIT};
    rw.patient = luaL_checkstring(L, 1);
    return run_query(L, &rw);
}

static int patient_row(void *ud, sqlite3_stmt *st)
{
    struct rows *rw = ud;
    lua_State *L = rw->L;
    if (foreign_row(rw, st, 0))
        return 1;
    lua_newtable(L);
    push_time_or_nil(L, st, 1);
    lua_setfield(L, -2, "birth_date");
    set_col_text(L, st, 2, "sex");
    rw->n = 1;
    return 1;
}

static int prim_patient(lua_State *L)
{
    struct rows rw = {.kind = Q_PATIENT, .codes = PV_BUF_INIT};
    rw.patient = luaL_checkstring(L, 1);
    return run_query(L, &rw);
}

static int push_string_body(lua_State *L)
{
    lua_pushstring(L, lua_touserdata(L, 1));
    return 1;
}

static int prim_state_get(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *key = luaL_checkstring(L, 1);
    if (!r->cur)
        return luaL_error(L, "pv.state is only available while a rule runs");
    char *v = NULL;
    int rc = pv_store_state_get(r->store, r->cur->name, key, &v);
    if (rc == PV_ENOTFOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc)
        return history_fail(L, r, rc);
    /* lua_pushstring can raise (the memory cap): not while v is held. */
    lua_pushcfunction(L, push_string_body);
    lua_pushlightuserdata(L, v);
    int st = lua_pcall(L, 1, 1, 0);
    free(v);
    return st == LUA_OK ? 1 : lua_error(L);
}

static int prim_state_set(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *key = luaL_checkstring(L, 1);
    const char *v = luaL_optstring(L, 2, NULL);
    if (!r->cur)
        return luaL_error(L, "pv.state is only available while a rule runs");
    int rc = pv_store_state_set(r->store, r->cur->name, key, v);
    if (rc)
        return history_fail(L, r, rc);
    return 0;
}

static int prim_log(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *level = luaL_checkstring(L, 1);
    int n = (int)luaL_checkinteger(L, 2);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < n; i++) {
        if (i)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, 3 + i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    const char *who = r->cur ? r->cur->name : plugin_of(L)->file;
    pv_log(strcmp(level, "warn") == 0 ? PV_LOG_WARN : PV_LOG_INFO,
           "rule %s: %s", who, lua_tostring(L, -1));
    return 0;
}

static int prim_time_parse(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    pv_time_t t;
    if (s && pv_time_parse(s, len, &t) == 0)
        lua_pushinteger(L, t);
    else
        lua_pushnil(L);
    return 1;
}

static int prim_time_format(lua_State *L)
{
    char buf[PV_TIME_BUFSZ];
    lua_pushstring(L, pv_time_format(check_time(L, 1), buf));
    return 1;
}

/* prim.charge([n [, fname]]): charges n instructions of the budget (one
 * hook step if n is absent: coroutine resumes) for work a library function
 * does in C (rules_api.lua), and raises when the budget is spent, the call
 * is past its time limit, or n alone is over the ceiling of one call. The
 * error names fname and the first line of the rule (not of rules_api.lua)
 * that asked for the work. */
static int prim_charge(lua_State *L)
{
    /* About a second of C work at most in any one library call. */
    const lua_Number ceiling = 1e8;
    pv_rules *r = rules_of(L);
    lua_Number n = luaL_optnumber(L, 1, HOOK_STEP);
    const char *fname = luaL_optstring(L, 2, NULL);
    int late = mono_ns() > r->deadline_ns;
    int huge = !(n <= ceiling); /* NaN too */
    if (!huge && !late && n < (lua_Number)r->instr_left) {
        r->instr_left -= (long)(n > 0 ? n : 0);
        return 0;
    }
    r->instr_left = 0;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    lua_Debug ar;
    int where = 0;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 &&
            strcmp(ar.source, "=rules_api.lua") != 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            where = 1;
            break;
        }
    }
    if (!where)
        lua_pushliteral(L, "");
    if (late)
        lua_pushfstring(L, "%s%stime limit of %I ms exceeded",
                        fname ? fname : "", fname ? ": " : "",
                        (lua_Integer)r->cfg->limits.rule_time_ms);
    else if (!fname)
        lua_pushfstring(L, "instruction budget of %I exceeded",
                        (lua_Integer)r->instr_limit);
    else if (huge)
        lua_pushfstring(L,
                        "%s: refused, about %f instructions of work in one "
                        "call is over the ceiling of %f",
                        fname, n, ceiling);
    else
        lua_pushfstring(L,
                        "%s: refused, about %f instructions of work is over "
                        "what is left of the instruction budget of %I",
                        fname, n, (lua_Integer)r->instr_limit);
    lua_concat(L, 2);
    return lua_error(L);
}

static int prim_exposure_gen(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)pv_store_exposure_gen(rules_of(L)->store));
    return 1;
}

static int prim_now(lua_State *L)
{
    lua_pushinteger(L, pv_store_now(rules_of(L)->store));
    return 1;
}

static int valid_module_name(const char *s)
{
    if (!*s || strlen(s) > 128 || *s == '.')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int read_source(const char *path, char **out, size_t *len, char *why,
                       size_t whycap);

/* require(name) inside the sandbox: only text files from the scripts
 * directories, loaded into the sandbox environment, each once. A third
 * argument true makes a missing module nil instead of an error. */
static int prim_require(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int optional = lua_toboolean(L, 3); /* before the stack grows */
    if (!valid_module_name(name))
        return luaL_error(L, "module '%s': not a valid module name", name);
    lua_getfield(L, LUA_REGISTRYINDEX, "pv.loaded");
    lua_getfield(L, -1, name);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    char rel[160];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *p = rel; *p; p++)
        if (*p == '.')
            *p = '/';
    const pv_strlist *dirs = &r->cfg->scripts;
    for (size_t i = 0; i < dirs->count; i++) {
        char path[4096], why[256];
        snprintf(path, sizeof path, "%s/%s.lua", dirs->items[i], rel);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        char *src = NULL;
        size_t len = 0;
        if (read_source(path, &src, &len, why, sizeof why))
            return luaL_error(L, "module '%s': %s: %s", name, path, why);
        /* lua_load is protected: it returns, so src is freed. */
        lua_pushfstring(L, "@%s", path);
        int lrc = luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t");
        free(src);
        lua_remove(L, -2);
        if (lrc != LUA_OK)
            return lua_error(L);
        lua_pushvalue(L, 2);
        lua_setupvalue(L, -2, 1);
        lua_pushstring(L, name);
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name);
        return 1;
    }
    /* prim.require(name, env, true): an optional module (the site
     * module, rules_api.lua) that is not there is nil, not an error. */
    if (optional) {
        lua_pushnil(L);
        return 1;
    }
    return luaL_error(L, "module '%s' not found in the scripts directories",
                      name);
}

/* ---------------------------------------------------------------------- */
/* Loading                                                                 */

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Open addressing kept under half full: the table doubles when it would
 * pass that, so a probe always ends at an empty slot (a fixed 256 slots
 * made a pack with more than 256 lab codes loop for ever, issue 22 item
 * 3). The probe is bounded by the table's size all the same. */
static struct code_slot *slot_find(pv_rules *r, const char *code, int add)
{
    if (!r->nslots)
        return NULL;
    size_t mask = r->nslots - 1, i = hash_str(code) & mask;
    for (size_t probes = 0; probes < r->nslots; probes++, i = (i + 1) & mask) {
        struct code_slot *s = &r->slots[i];
        if (!s->code) {
            if (!add)
                return NULL;
            s->code = strdup(code);
            if (s->code)
                r->nused++;
            return s->code ? s : NULL;
        }
        if (strcmp(s->code, code) == 0)
            return s;
    }
    return NULL;
}

static int slots_grow(pv_rules *r)
{
    size_t n = r->nslots * 2;
    struct code_slot *old = r->slots, *t = calloc(n, sizeof *t);
    if (!t)
        return PV_ENOMEM;
    size_t oldn = r->nslots;
    r->slots = t;
    r->nslots = n;
    for (size_t i = 0; i < oldn; i++) {
        if (!old[i].code)
            continue;
        size_t j = hash_str(old[i].code) & (n - 1);
        while (t[j].code)
            j = (j + 1) & (n - 1);
        t[j] = old[i];
    }
    free(old);
    return 0;
}

static int slot_add(pv_rules *r, const char *code, size_t rule)
{
    if ((r->nused + 1) * 2 > r->nslots && slots_grow(r))
        return PV_ENOMEM;
    struct code_slot *s = slot_find(r, code, 1);
    if (!s)
        return PV_ENOMEM;
    for (size_t i = 0; i < s->nrules; i++)
        if (s->rules[i] == rule)
            return 0;
    size_t *n = realloc(s->rules, (s->nrules + 1) * sizeof *n);
    if (!n)
        return PV_ENOMEM;
    s->rules = n;
    s->rules[s->nrules++] = rule;
    return 0;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void plugin_free(struct plugin *pl)
{
    if (!pl)
        return;
    if (pl->L)
        lua_close(pl->L);
    pv_pool_free(pl->pool);
    free(pl->file);
    free(pl);
}

static const luaL_Reg prims[] = {
    {"labs", prim_labs},
    {"events", prim_events},
    {"exposures", prim_exposures},
    {"patient", prim_patient},
    {"state_get", prim_state_get},
    {"state_set", prim_state_set},
    {"log", prim_log},
    {"time_parse", prim_time_parse},
    {"time_format", prim_time_format},
    {"now", prim_now},
    {"exposure_gen", prim_exposure_gen},
    {"charge", prim_charge},
    {"require", prim_require},
    {NULL, NULL},
};

/* Opens only the libraries the sandbox copies from, then removes from the
 * real globals what nothing may reach. */
static void open_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_getglobal(L, "os");
    for (const char *const *k =
             (const char *const[]){"execute", "exit", "remove", "rename",
                                   "getenv", "tmpname", "setlocale", NULL};
         *k; k++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *k);
    }
    lua_pop(L, 1);
}

/* One line per broken plugin, naming its file (rules.h): Lua's messages
 * name it when they know a line, but not for a binary chunk or an error
 * raised through a tail call such as 'return pv.rule {...}'; the traceback
 * after the first line is left out. */
static void plugin_error(pv_buf *errors, const char *path, const char *msg)
{
    size_t n = strlen(path), len = strcspn(msg, "\n");
    if (strncmp(msg, path, n) == 0)
        pv_buf_printf(errors, "%.*s\n", (int)len, msg);
    else
        pv_buf_printf(errors, "%s: %.*s\n", path, (int)len, msg);
}

/* Reads a plugin or script file whole. Opened without blocking and taken
 * only if the descriptor is a regular file of at most MAX_PLUGIN_BYTES: a
 * plugin that is a FIFO or a link to /dev/zero hung load and SIGHUP
 * (issue 22 items 7 and 18). Links are followed: the operator owns the
 * plugin directories. On success *out is malloc'd (NUL-terminated). */
static int read_source(const char *path, char **out, size_t *len, char *why,
                       size_t whycap)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "cannot read: %s", strerror(errno));
        return PV_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whycap, "not a regular file");
        close(fd);
        return PV_EIO;
    }
    if (st.st_size > MAX_PLUGIN_BYTES) {
        snprintf(why, whycap, "larger than %d bytes", MAX_PLUGIN_BYTES);
        close(fd);
        return PV_EIO;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(why, whycap, "cannot read: %s",
                 buf ? "short read" : strerror(ENOMEM));
        free(buf);
        return PV_EIO;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* What setup_body needs; the source is owned by the caller. */
struct setup {
    pv_rules *r;
    struct plugin *pl;
    const char *path, *src;
    size_t len;
    int api_started; /* rules_api.lua ran: errors are the plugin's */
};

/* The protected half of plugin_open: builds the sandbox, runs the plugin
 * and host.register, and leaves the list of rules on the stack. Every Lua
 * call that can allocate or raise is in here (issue 22 item 1: with a
 * small memory cap, opening the libraries raised outside any protected
 * call, and Lua aborted). */
static int setup_body(lua_State *L)
{
    struct setup *su = lua_touserdata(L, 1);
    pv_rules *r = su->r;
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "pv.loaded");
    open_libs(L);
    if (luaL_loadbufferx(L, pv_rules_api_lua, strlen(pv_rules_api_lua),
                         "=rules_api.lua", "t") != LUA_OK)
        return lua_error(L);
    luaL_newlib(L, prims);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, r->cfg->exposure.washout_days);
    lua_setfield(L, -2, "washout_days");
    lua_pushinteger(L, r->cfg->exposure.rituximab_days);
    lua_setfield(L, -2, "rituximab_days");
    lua_pushstring(L, r->cfg->label.indication);
    lua_setfield(L, -2, "indication");
    lua_pushstring(L, r->cfg->label.region);
    lua_setfield(L, -2, "region");
    lua_call(L, 2, 1);
    su->pl->host_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    su->api_started = 1;

    lua_pushfstring(L, "@%s", su->path);
    if (luaL_loadbufferx(L, su->src, su->len, lua_tostring(L, -1), "t") !=
        LUA_OK)
        return lua_error(L);
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, su->pl->host_ref);
    lua_getfield(L, -1, "env");
    lua_setupvalue(L, -3, 1);
    lua_pop(L, 1);
    lua_call(L, 0, 1);
    /* host.register(result, file) -> list of plain rule records */
    lua_rawgeti(L, LUA_REGISTRYINDEX, su->pl->host_ref);
    lua_getfield(L, -1, "register");
    lua_remove(L, -2);
    lua_insert(L, -2);
    lua_pushstring(L, su->path);
    lua_call(L, 2, 1);
    return 1;
}

/* A last resort: every call into Lua is protected, so this should never
 * run. If it does, say what happened before Lua aborts. */
static int on_panic(lua_State *L)
{
    const char *m = lua_tostring(L, -1);
    pv_error("Lua panic in plugin %s: %s", plugin_of(L)->file,
             m ? m : "(no message)");
    return 0;
}

/* Creates a plugin's state, runs rules_api.lua in it and then the plugin
 * file in the sandbox. Leaves the list of rules on the stack. */
static int plugin_open(pv_rules *r, const char *path, struct plugin **out,
                       pv_buf *errors)
{
    struct plugin *pl = calloc(1, sizeof *pl);
    if (!pl)
        return PV_ENOMEM;
    pl->owner = r;
    pl->mem_limit = (size_t)r->cfg->limits.rule_memory;
    pl->file = strdup(path);
    pl->pool = pv_pool_new();
    char err[4096];
    if (!pl->pool || !pl->file) {
        plugin_free(pl);
        return PV_ENOMEM;
    }
    char *src = NULL;
    size_t len = 0;
    if (read_source(path, &src, &len, err, sizeof err)) {
        pv_buf_printf(errors, "%s: %s\n", path, err);
        plugin_free(pl);
        return PV_ELUA;
    }
    pv_sha256 c;
    pv_sha256_init(&c);
    pv_sha256_update(&c, src, len);
    pv_sha256_hex(&c, pl->sha);
    lua_State *L = pl->L = lua_newstate(capped_alloc, pl);
    if (!L) {
        free(src);
        plugin_free(pl);
        return PV_ENOMEM;
    }
    lua_atpanic(L, on_panic);
    *(struct plugin **)lua_getextraspace(L) = pl;
    struct setup su = {r, pl, path, src, len, 0};
    lua_pushcfunction(L, setup_body);
    lua_pushlightuserdata(L, &su);
    int rc = protected_call(pl, 1, 1, r->instr_limit * 30, err, sizeof err);
    free(src);
    lua_gc(L, LUA_GCCOLLECT);
    pl->mem_base = pl->mem_used;
    if (rc) {
        if (su.api_started)
            plugin_error(errors, path, err);
        else
            pv_buf_printf(errors, "%s: rule API failed to start: %s\n", path,
                          err);
        plugin_free(pl);
        return PV_ELUA;
    }
    *out = pl;
    return 0;
}

/* A string field of a plain table host code made (no metamethods); a copy
 * the caller frees, or NULL. */
static char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    char *r = s ? strdup(s) : NULL;
    lua_pop(L, 1);
    return r;
}

static int add_prefix(pv_rules *r, const char *code, size_t rule)
{
    struct prefix *np = realloc(r->prefixes, (r->nprefixes + 1) * sizeof *np);
    if (!np)
        return PV_ENOMEM;
    r->prefixes = np;
    char *p = strdup(code), *w = p;
    if (!p)
        return PV_ENOMEM;
    for (const char *c = code; *c; c++)
        if (*c != '.')
            *w++ = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    *w = '\0';
    np[r->nprefixes].prefix = p;
    np[r->nprefixes++].rule = rule;
    return 0;
}

struct adding {
    pv_rules *r;
    struct plugin *pl;
    pv_buf *errors;
    int rc;
};

/* The protected half of add_rules: reads the list of plain rule records
 * host.register made (the rule objects a plugin holds are never read from
 * C: their metatable and fields are the plugin's to play with, issue 22
 * item 2). Everything allocated is attached to r at once, so an error
 * here leaks nothing. */
static int add_rules_body(lua_State *L)
{
    struct adding *ad = lua_touserdata(L, 1);
    pv_rules *r = ad->r;
    struct plugin *pl = ad->pl;
    lua_Integer n = luaL_len(L, 2);
    for (lua_Integer i = 1; i <= n && !ad->rc; i++) {
        lua_geti(L, 2, i);
        int t = lua_gettop(L);
        struct rule *nr = realloc(r->rules, (r->nrules + 1) * sizeof *nr);
        if (!nr) {
            ad->rc = PV_ENOMEM;
            break;
        }
        r->rules = nr;
        struct rule *ru = &r->rules[r->nrules];
        memset(ru, 0, sizeof *ru);
        ru->pl = pl;
        ru->ref = LUA_NOREF;
        size_t idx = r->nrules++;
        ru->name = field_str(L, t, "name");
        ru->signal = field_str(L, t, "signal");
        if (!ru->name || !ru->signal) {
            ad->rc = PV_ENOMEM;
            break;
        }
        ru->metric = pv_metrics_rule_get(ru->name);
        ru->description = field_str(L, t, "description");
        ru->label = field_str(L, t, "label");
        ru->severities = field_str(L, t, "severities");
        ru->trigger = field_str(L, t, "trigger");
        for (size_t j = 0; j < idx; j++)
            if (r->rules[j].name && strcmp(r->rules[j].name, ru->name) == 0) {
                pv_buf_printf(ad->errors,
                              "%s: rule name '%s' is used twice "
                              "(also in %s)\n",
                              pl->file, ru->name, r->rules[j].pl->file);
                ad->rc = PV_ELUA;
            }
        lua_getfield(L, t, "every_seconds");
        ru->every = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
        if (!(ru->every >= 0 && ru->every <= 366.0 * 86400)) {
            pv_buf_printf(ad->errors,
                          "%s: rule %s: 'every' must be at most 366 days\n",
                          pl->file, ru->name);
            ad->rc = PV_ELUA;
        }
        lua_getfield(L, t, "exposures");
        ru->on_exposure = !lua_isnil(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, t, "needs_exposure");
        ru->gated = ru->on_exposure && lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, t, "labs");
        lua_Integer m = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
        for (lua_Integer j = 1; j <= m && !ad->rc; j++) {
            lua_geti(L, -1, j);
            if (lua_type(L, -1) == LUA_TSTRING)
                ad->rc = slot_add(r, lua_tostring(L, -1), idx);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_getfield(L, t, "events");
        if (lua_istable(L, -1)) {
            ru->on_all_events = 1;
            m = luaL_len(L, -1);
            for (lua_Integer j = 1; j <= m && !ad->rc; j++) {
                lua_geti(L, -1, j);
                if (lua_type(L, -1) == LUA_TSTRING)
                    ad->rc = add_prefix(r, lua_tostring(L, -1), idx);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        lua_settop(L, t);
        ru->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

/* Registers the rules of the list on top of the stack (pops it). */
static int add_rules(pv_rules *r, struct plugin *pl, pv_buf *errors)
{
    lua_State *L = pl->L;
    struct adding ad = {r, pl, errors, 0};
    char err[1024];
    lua_pushcfunction(L, add_rules_body);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &ad);
    lua_insert(L, -2);
    if (protected_call(pl, 2, 0, r->instr_limit, err, sizeof err)) {
        plugin_error(errors, pl->file, err);
        return PV_ELUA;
    }
    return ad.rc;
}

int pv_rules_load(const pv_config *cfg, pv_store *store, pv_rules **out,
                  pv_buf *errors)
{
    *out = NULL;
    pv_rules *r = calloc(1, sizeof *r);
    if (!r)
        return PV_ENOMEM;
    r->cfg = cfg;
    r->store = store;
    r->instr_limit = cfg->limits.rule_instructions;
    const char *ng = getenv("PVWATCH_NO_GATE");
    r->no_gate = ng && *ng == '1';
    r->nslots = 256;
    r->slots = calloc(r->nslots, sizeof *r->slots);
    r->gate_memo = calloc(GATE_SLOTS, sizeof *r->gate_memo);
    if (!r->slots || !r->gate_memo) {
        free(r->slots);
        free(r->gate_memo);
        free(r);
        return PV_ENOMEM;
    }
    int rc = 0;
    for (size_t d = 0; d < cfg->plugins.count; d++) {
        const char *dir = cfg->plugins.items[d];
        DIR *dh = opendir(dir);
        if (!dh) {
            pv_buf_printf(errors, "%s: cannot open plugin directory: %s\n", dir,
                          strerror(errno));
            rc = PV_ELUA;
            continue;
        }
        pv_strlist files = {0};
        struct dirent *e;
        while ((e = readdir(dh)) != NULL)
            if (e->d_name[0] != '.' && has_suffix(e->d_name, ".lua"))
                pv_strlist_add(&files, e->d_name);
        closedir(dh);
        if (files.count)
            qsort(files.items, files.count, sizeof *files.items, cmp_str);
        for (size_t i = 0; i < files.count; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, files.items[i]);
            struct plugin *pl = NULL;
            if (plugin_open(r, path, &pl, errors)) {
                rc = PV_ELUA;
                continue;
            }
            struct plugin **np =
                realloc(r->plugins, (r->nplugins + 1) * sizeof *np);
            if (!np) {
                plugin_free(pl);
                rc = PV_ENOMEM;
                continue;
            }
            r->plugins = np;
            r->plugins[r->nplugins++] = pl;
            if (add_rules(r, pl, errors))
                rc = PV_ELUA;
        }
        pv_strlist_free(&files);
    }
    if (rc) {
        pv_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void pv_rules_free(pv_rules *r)
{
    if (!r)
        return;
    /* PVWATCH_PROFILE=1: where the rule time went, for people tuning a
     * rule pack (docs/operations.md). */
    const char *prof = getenv("PVWATCH_PROFILE");
    for (size_t i = 0; prof && *prof == '1' && i < r->nrules; i++)
        if (r->rules[i].calls || r->rules[i].skips)
            pv_info("profile: %-36s %10llu calls %9.3f s %8.2f us/call, "
                    "%llu spared by the gate, %llu failed",
                    r->rules[i].name, (unsigned long long)r->rules[i].calls,
                    r->rules[i].nanos / 1e9,
                    r->rules[i].calls
                        ? r->rules[i].nanos / 1e3 / r->rules[i].calls
                        : 0.0,
                    (unsigned long long)r->rules[i].skips,
                    (unsigned long long)r->rules[i].failures);
    for (size_t i = 0; i < r->nerrs; i++) {
        err_flush(&r->errs[i], 0);
        err_class_free(&r->errs[i]);
    }
    free(r->gate_patient);
    gate_memo_clear(r);
    free(r->gate_memo);
    for (size_t i = 0; i < r->nplugins; i++)
        plugin_free(r->plugins[i]);
    free(r->plugins);
    for (size_t i = 0; i < r->nrules; i++) {
        free(r->rules[i].name);
        free(r->rules[i].signal);
        free(r->rules[i].description);
        free(r->rules[i].label);
        free(r->rules[i].severities);
        free(r->rules[i].trigger);
    }
    free(r->rules);
    for (size_t i = 0; i < r->nslots; i++) {
        free(r->slots[i].code);
        free(r->slots[i].rules);
    }
    free(r->slots);
    for (size_t i = 0; i < r->nprefixes; i++)
        free(r->prefixes[i].prefix);
    free(r->prefixes);
    free(r->only);
    free(r);
}

size_t pv_rules_count(const pv_rules *r)
{
    return r->nrules;
}

const char *pv_rules_name(const pv_rules *r, size_t i)
{
    return i < r->nrules ? r->rules[i].name : NULL;
}

const char *pv_rules_file(const pv_rules *r, size_t i)
{
    return i < r->nrules ? r->rules[i].pl->file : NULL;
}

const char *pv_rules_info(const pv_rules *r, size_t i, enum pv_rule_info what)
{
    if (i >= r->nrules)
        return NULL;
    const struct rule *ru = &r->rules[i];
    switch (what) {
    case PV_RULE_SIGNAL:
        return ru->signal;
    case PV_RULE_DESCRIPTION:
        return ru->description;
    case PV_RULE_LABEL:
        return ru->label;
    case PV_RULE_SEVERITIES:
        return ru->severities;
    case PV_RULE_TRIGGER:
        return ru->trigger;
    }
    return NULL;
}

void pv_rules_only(pv_rules *r, const char *name)
{
    free(r->only);
    r->only = name ? strdup(name) : NULL;
}

void pv_rules_stats_get(const pv_rules *r, pv_rules_stats *out)
{
    *out = r->stats;
}

/* ---------------------------------------------------------------------- */
/* Running                                                                 */

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void push_obs(lua_State *L, const pv_obs *o, int64_t id)
{
    lua_createtable(L, 0, 16);
    set_int(L, "id", id);
    set_str(L, "patient_id", o->patient_id);
    set_str(L, "code", o->code);
    set_str(L, "code_system", o->code_system ? o->code_system : "LN");
    set_str(L, "name", o->name);
    if (o->has_num)
        set_num(L, "value", o->value_num);
    set_str(L, "value_text", o->value_text);
    set_str(L, "comparator", o->comparator);
    set_str(L, "unit", o->unit);
    if (o->has_low)
        set_num(L, "ref_low", o->ref_low);
    if (o->has_high)
        set_num(L, "ref_high", o->ref_high);
    set_str(L, "flag", o->flag);
    set_str(L, "status", o->status ? o->status : "F");
    set_int(L, "at", o->at);
}

static void push_exposure(lua_State *L, const pv_exposure *e, int64_t id)
{
    lua_createtable(L, 0, 12);
    set_int(L, "id", id);
    set_str(L, "patient_id", e->patient_id);
    set_str(L, "drug", e->drug);
    set_str(L, "drug_code", e->drug_code);
    set_str(L, "code_system", e->code_system);
    if (e->has_dose)
        set_num(L, "dose", e->dose);
    set_str(L, "dose_unit", e->dose_unit);
    set_str(L, "route", e->route);
    set_int(L, "start", e->start);
    if (e->has_end)
        set_int(L, "end", e->end);
    set_str(L, "start_source", e->start_source);
}

static void push_event(lua_State *L, const pv_event *e, int64_t id)
{
    lua_createtable(L, 0, 10);
    set_int(L, "id", id);
    set_str(L, "patient_id", e->patient_id);
    set_str(L, "code", e->code);
    set_str(L, "code_system", e->code_system ? e->code_system : "ICD10CM");
    set_str(L, "term", e->term);
    set_int(L, "onset", e->onset);
    if (e->serious >= 0) {
        lua_pushboolean(L, e->serious);
        lua_setfield(L, -2, "serious");
    }
    set_str(L, "outcome", e->outcome);
}

/* What a failing rule was looking at, for the engine alert. */
struct fact_ref {
    const char *kind;
    const char *patient_id;
    int64_t id;
    const char *code;
    const char *value;
    const char *unit;
    pv_time_t at;
};

static void evidence_one(pv_buf *b, const struct fact_ref *f)
{
    char at[PV_TIME_BUFSZ];
    pv_buf_puts(b, "[{\"kind\":");
    pv_buf_json_str(b, f->kind, (size_t)-1);
    pv_buf_printf(b, ",\"id\":%lld,\"code\":", (long long)f->id);
    pv_buf_json_str(b, f->code, (size_t)-1);
    pv_buf_puts(b, ",\"value\":");
    pv_buf_json_str(b, f->value, (size_t)-1);
    pv_buf_puts(b, ",\"unit\":");
    pv_buf_json_str(b, f->unit, (size_t)-1);
    pv_buf_puts(b, ",\"at\":");
    pv_buf_json_str(b, pv_time_format(f->at, at), (size_t)-1);
    pv_buf_puts(b, "}]");
}

static uint64_t hash_mix(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; s && i < n && s[i]; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
}

/* The class of a failure: the rule, the first line of the error with every
 * run of digits as one '#' (values, row ids), the fact's code and unit. */
static uint64_t err_hash(const struct rule *ru, const struct fact_ref *f,
                         const char *err, size_t first)
{
    uint64_t h = hash_mix(1469598103934665603ull, ru->name, (size_t)-1);
    for (size_t i = 0; i < first; i++) {
        if (err[i] >= '0' && err[i] <= '9') {
            while (i + 1 < first && err[i + 1] >= '0' && err[i + 1] <= '9')
                i++;
            h = (h ^ '#') * 1099511628211ull;
        } else {
            h = (h ^ (unsigned char)err[i]) * 1099511628211ull;
        }
    }
    h = hash_mix(h, f->code, (size_t)-1);
    return hash_mix(h, f->unit, (size_t)-1);
}

static void err_flush(struct err_class *c, long long now)
{
    if (c->pending)
        pv_error("rule %s failed %llu more time%s the same way (%llu in "
                 "all): %s",
                 c->rule, (unsigned long long)c->pending,
                 c->pending == 1 ? "" : "s", (unsigned long long)c->total,
                 c->what);
    c->pending = 0;
    c->logged_ns = now;
}

static void err_class_free(struct err_class *c)
{
    free(c->rule);
    free(c->what);
    memset(c, 0, sizeof *c);
}

/* Logs a failure: the first of its class whole (with the traceback), the
 * others as a count, one line per ERR_LOG_EVERY or per ERR_LOG_NS. Each
 * failure still raises its engine alert (engine_alert). */
static void err_log(pv_rules *r, const struct rule *ru,
                    const struct fact_ref *f, const char *err)
{
    size_t first = strcspn(err, "\n");
    uint64_t h = err_hash(ru, f, err, first);
    long long now = mono_ns();
    struct err_class *c = NULL;
    for (size_t i = 0; i < r->nerrs && !c; i++)
        if (r->errs[i].hash == h)
            c = &r->errs[i];
    if (c) {
        c->pending++;
        c->total++;
        if (c->total % ERR_LOG_EVERY == 0 || now - c->logged_ns >= ERR_LOG_NS)
            err_flush(c, now);
        return;
    }
    if (r->nerrs == ERR_CLASSES) {
        /* Full: the class logged longest ago makes room, its count said. */
        size_t old = 0;
        for (size_t i = 1; i < r->nerrs; i++)
            if (r->errs[i].logged_ns < r->errs[old].logged_ns)
                old = i;
        err_flush(&r->errs[old], now);
        err_class_free(&r->errs[old]);
        r->errs[old] = r->errs[--r->nerrs];
    }
    pv_error("rule %s failed on %s%s%s (id %lld) of patient %s: %s", ru->name,
             f->kind, f->code && *f->code ? " " : "", f->code ? f->code : "",
             (long long)f->id, f->patient_id ? f->patient_id : "-", err);
    c = &r->errs[r->nerrs];
    c->rule = strdup(ru->name);
    c->what = strndup(err, first);
    if (!c->rule || !c->what) {
        err_class_free(c);
        return; /* unclassed: the next one is logged whole again */
    }
    c->hash = h;
    c->total = 1;
    c->pending = 0;
    c->logged_ns = now;
    r->nerrs++;
}

static int engine_alert(pv_rules *r, const struct rule *ru,
                        const struct fact_ref *f, const char *err,
                        pv_alert_sink sink, void *ud)
{
    r->stats.errors++;
    char at[PV_TIME_BUFSZ];
    err_log(r, ru, f, err);
    /* The first line of the message is the error; the rest is the
     * traceback, which goes to the log only. */
    size_t first = strcspn(err, "\n");
    pv_buf title = PV_BUF_INIT, detail = PV_BUF_INIT, ev = PV_BUF_INIT;
    pv_buf_printf(&title, "Rule %s failed; the record was stored", ru->name);
    pv_buf_printf(&detail,
                  "%.*s. While evaluating %s %s = %s %s at %s "
                  "(row id %lld).",
                  (int)first, err, f->kind, f->code ? f->code : "-",
                  f->value ? f->value : "-", f->unit ? f->unit : "",
                  pv_time_format(f->at, at), (long long)f->id);
    evidence_one(&ev, f);
    pv_alert_in a = {
        .patient_id = f->patient_id,
        .rule = ru->name,
        .signal = "engine",
        .severity = "high",
        .title = pv_buf_cstr(&title),
        .detail = pv_buf_cstr(&detail),
        .action = "Fix the rule (see the pvwatch log for the traceback), "
                  "then run 'pvwatch replay --rule' for the affected facts.",
        .key = "rule-error",
        .evidence_json = pv_buf_cstr(&ev),
        .rule_sha256 = ru->pl->sha,
    };
    int rc = sink(ud, &a);
    pv_buf_free(&title);
    pv_buf_free(&detail);
    pv_buf_free(&ev);
    return rc;
}

/* One alert as C read it from what host.call returned. */
struct alert_out {
    char *patient_id, *severity, *title, *detail, *action, *key;
    int has_grade, grade;
    pv_buf ev;
    char *invalid; /* why it was refused: an engine alert instead */
};

/* One call of a rule: what to push, and what came back. Owned by the
 * caller of call_body, which frees the alerts after the protected call,
 * whether it ended in an error or not. */
struct call {
    const struct rule *ru;
    const char *kind; /* "lab", "exposure", "event"; NULL: a tick */
    const void *fact;
    int64_t id;
    const char *patient; /* a tick's */
    pv_time_t now;
    struct alert_out *alerts;
    size_t nalerts;
};

static void call_free(struct call *c)
{
    for (size_t i = 0; i < c->nalerts; i++) {
        struct alert_out *a = &c->alerts[i];
        free(a->patient_id);
        free(a->severity);
        free(a->title);
        free(a->detail);
        free(a->action);
        free(a->key);
        free(a->invalid);
        pv_buf_free(&a->ev);
    }
    free(c->alerts);
    c->alerts = NULL;
    c->nalerts = 0;
}

/* Evidence item at the top of the stack as JSON. Values of the wrong type
 * become null: the alert stays. */
static void evidence_item(lua_State *L, pv_buf *ev)
{
    pv_buf_puts(ev, "{\"kind\":");
    lua_getfield(L, -1, "kind");
    pv_buf_json_str(ev,
                    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL,
                    (size_t)-1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "id");
    pv_buf_puts(ev, ",\"id\":");
    if (lua_isinteger(L, -1))
        pv_buf_printf(ev, "%lld", (long long)lua_tointeger(L, -1));
    else
        pv_buf_puts(ev, "null");
    lua_pop(L, 1);
    static const char *const texts[] = {"code", "value", "unit"};
    for (int k = 0; k < 3; k++) {
        lua_getfield(L, -1, texts[k]);
        pv_buf_printf(ev, ",\"%s\":", texts[k]);
        if (lua_type(L, -1) == LUA_TNUMBER)
            pv_buf_json_num(ev, lua_tonumber(L, -1));
        else
            pv_buf_json_str(
                ev, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL,
                (size_t)-1);
        lua_pop(L, 1);
    }
    lua_getfield(L, -1, "at");
    pv_buf_puts(ev, ",\"at\":");
    pv_time_t at;
    if (lua_type(L, -1) == LUA_TNUMBER &&
        pv_time_from_number(lua_tonumber(L, -1), &at) == 0) {
        char buf[PV_TIME_BUFSZ];
        pv_buf_json_str(ev, pv_time_format(at, buf), (size_t)-1);
    } else {
        pv_buf_puts(ev, "null");
    }
    lua_pop(L, 1);
    pv_buf_puts(ev, "}");
}

static const char *const SEVERITIES[] = {"low", "medium", "high", "critical",
                                         NULL};

/* Checks one alert in C, whatever the Lua side let through (issue 22 item
 * 5: an alert forged with pv.alert's metatable skipped its checks, failed
 * the alerts table's CHECK, and the fact was never stored). NULL when it
 * is valid, else why not. */
static const char *alert_invalid(const struct alert_out *a)
{
    if (!a->severity)
        return "it has no severity";
    int ok = 0;
    for (const char *const *s = SEVERITIES; *s; s++)
        ok |= strcmp(*s, a->severity) == 0;
    if (!ok)
        return "its severity is not low, medium, high or critical";
    if (!a->title || !*a->title)
        return "it has no title";
    if (a->has_grade < 0)
        return "its grade is not a whole number from 1 to 5";
    if (!a->key)
        return "its key is not a string";
    return NULL;
}

/* Reads the list of alerts host.call returned (top of the stack) into c;
 * runs inside call_body. The list and its items are plain tables that
 * rules_api.lua made (host code; no metamethods). */
static void read_alerts(lua_State *L, struct call *c)
{
    if (!lua_istable(L, -1))
        return;
    lua_Integer n = luaL_len(L, -1);
    if (n <= 0)
        return;
    if (n > 10000)
        n = 10000;
    c->alerts = calloc((size_t)n, sizeof *c->alerts);
    if (!c->alerts)
        luaL_error(L, "out of memory reading the alerts");
    for (lua_Integer i = 1; i <= n; i++) {
        struct alert_out *a = &c->alerts[c->nalerts++];
        a->ev = (pv_buf)PV_BUF_INIT;
        if (lua_geti(L, -1, i) != LUA_TTABLE) {
            a->invalid = strdup("it is not a table");
            lua_pop(L, 1);
            continue;
        }
        int t = lua_gettop(L);
        a->patient_id = field_str(L, t, "patient_id");
        a->severity = field_str(L, t, "severity");
        a->title = field_str(L, t, "title");
        a->detail = field_str(L, t, "detail");
        a->action = field_str(L, t, "action");
        a->key = field_str(L, t, "key");
        lua_getfield(L, t, "grade");
        if (!lua_isnil(L, -1)) {
            lua_Integer g = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
            a->has_grade = g >= 1 && g <= 5 ? 1 : -1;
            a->grade = a->has_grade > 0 ? (int)g : 0;
        }
        lua_pop(L, 1);
        pv_buf_puts(&a->ev, "[");
        if (lua_getfield(L, t, "evidence") == LUA_TTABLE) {
            lua_Integer m = luaL_len(L, -1);
            for (lua_Integer j = 1; j <= m && j <= 1000; j++) {
                if (lua_geti(L, -1, j) == LUA_TTABLE) {
                    if (a->ev.len > 1)
                        pv_buf_puts(&a->ev, ",");
                    evidence_item(L, &a->ev);
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        pv_buf_puts(&a->ev, "]");
        const char *why = alert_invalid(a);
        if (why)
            a->invalid = strdup(why);
        lua_settop(L, t - 1);
    }
}

static void push_fact(lua_State *L, const struct call *c)
{
    switch (c->kind[0]) {
    case 'l':
        push_obs(L, c->fact, c->id);
        break;
    case 'e':
        if (c->kind[1] == 'x')
            push_exposure(L, c->fact, c->id);
        else
            push_event(L, c->fact, c->id);
        break;
    }
}

/* The protected half of a rule call (issue 22 item 1: the fact was pushed
 * outside any protected call, and a state left at its memory cap aborted
 * the process there): pushes host.call (or host.tick) with its arguments,
 * runs it, and reads the alerts into c. */
static int call_body(lua_State *L)
{
    struct call *c = lua_touserdata(L, 1);
    const struct rule *ru = c->ru;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ru->pl->host_ref);
    lua_getfield(L, -1, c->kind ? "call" : "tick");
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ru->ref);
    if (c->kind) {
        lua_pushstring(L, c->kind);
        push_fact(L, c);
    } else {
        lua_pushstring(L, c->patient);
        lua_pushinteger(L, c->now);
    }
    lua_call(L, 3, 1);
    read_alerts(L, c);
    return 0;
}

struct rebind {
    pv_rules *r;
    struct plugin *pl; /* the plugin whose rules get the new records */
    int *refs;         /* out: one per rule of pl, in order */
    size_t n;
};

/* The protected half of plugin_rebuild: the records of the new state (the
 * list at argument 2) must be the rules of pl, by name and in order. */
static int rebind_body(lua_State *L)
{
    struct rebind *rb = lua_touserdata(L, 1);
    lua_Integer k = 0;
    for (size_t i = 0; i < rb->r->nrules; i++) {
        const struct rule *ru = &rb->r->rules[i];
        if (ru->pl != rb->pl)
            continue;
        lua_geti(L, 2, ++k);
        char *name = lua_istable(L, -1) ? field_str(L, -1, "name") : NULL;
        int same = name && strcmp(name, ru->name) == 0;
        free(name);
        if (!same)
            return luaL_error(L, "rule %s is no longer where it was", ru->name);
        rb->refs[rb->n++] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

/* Gives pl a new state made from its file, when the old one is nearly full
 * of what the rules keep (issue 22 item 1): the next fact would not fit.
 * The rules keep their places; what they kept in Lua is gone (pv.state is
 * in the database). Nothing changes when the file changed since it was
 * loaded (a reload is the way for that) or the new state fails. */
static void plugin_rebuild(pv_rules *r, struct plugin *pl)
{
    pv_buf errors = PV_BUF_INIT;
    struct plugin *fresh = NULL;
    size_t nrules = 0;
    for (size_t i = 0; i < r->nrules; i++)
        nrules += r->rules[i].pl == pl;
    int *refs = calloc(nrules + 1, sizeof *refs);
    char err[1024] = "out of memory";
    int ok = refs && plugin_open(r, pl->file, &fresh, &errors) == 0;
    if (!ok)
        snprintf(err, sizeof err, "%s",
                 pv_buf_cstr(&errors) ? pv_buf_cstr(&errors) : "");
    if (ok && strcmp(fresh->sha, pl->sha) != 0) {
        snprintf(err, sizeof err, "the file changed since it was loaded");
        ok = 0;
    }
    if (ok) {
        struct rebind rb = {r, pl, refs, 0};
        lua_State *L = fresh->L;
        lua_pushcfunction(L, rebind_body);
        lua_insert(L, -2);
        lua_pushlightuserdata(L, &rb);
        lua_insert(L, -2);
        ok = protected_call(fresh, 2, 0, r->instr_limit, err, sizeof err) == 0;
    }
    if (!ok) {
        pv_warn("plugin %s holds %zu of its %zu bytes and could not be "
                "started again: %s",
                pl->file, pl->mem_used, pl->mem_limit, err);
        plugin_free(fresh);
        free(refs);
        pv_buf_free(&errors);
        return;
    }
    pv_warn("plugin %s held %zu of its %zu bytes after a collection: "
            "started again from its file",
            pl->file, pl->mem_used, pl->mem_limit);
    lua_close(pl->L);
    pv_pool_free(pl->pool);
    pl->L = fresh->L;
    pl->pool = fresh->pool;
    pl->mem_used = fresh->mem_used;
    pl->mem_base = fresh->mem_base;
    pl->host_ref = fresh->host_ref;
    lua_setallocf(pl->L, capped_alloc, pl);
    *(struct plugin **)lua_getextraspace(pl->L) = pl;
    size_t k = 0;
    for (size_t i = 0; i < r->nrules; i++)
        if (r->rules[i].pl == pl)
            r->rules[i].ref = refs[k++];
    fresh->L = NULL;
    fresh->pool = NULL;
    plugin_free(fresh);
    free(refs);
    pv_buf_free(&errors);
}

/* After a call: a state still near its cap once its garbage is collected
 * would fail the next rule at its first allocation: it is rebuilt. */
static void check_memory(pv_rules *r, struct plugin *pl)
{
    if (pl->mem_used <= pl->mem_limit / 10 * 9)
        return;
    lua_gc(pl->L, LUA_GCCOLLECT);
    /* Only for what the rules kept: a cap that a fresh state nearly fills
     * already would be rebuilt after every call, for nothing. */
    if (pl->mem_used > pl->mem_limit / 10 * 9 &&
        pl->mem_used - pl->mem_base > (pl->mem_limit - pl->mem_base) / 2)
        plugin_rebuild(r, pl);
}

/* Runs one rule call and hands its alerts, or its failure, to the sink. */
static int run_call(pv_rules *r, struct call *c, const struct fact_ref *f,
                    pv_alert_sink sink, void *ud)
{
    const struct rule *ru = c->ru;
    lua_State *L = ru->pl->L;
    char err[4096];
    r->stats.calls++;
    r->cur = ru;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lua_pushcfunction(L, call_body);
    lua_pushlightuserdata(L, c);
    int rc = protected_call(ru->pl, 1, 0, r->instr_limit, err, sizeof err);
    r->cur = NULL;
    /* For the metrics: a kill leaves no instructions (count_hook,
     * prim_charge); one past the deadline was the time limit's. */
    int outcome = !rc                                     ? PV_RULE_OK
                  : !strncmp(err, "memory limit of ", 16) ? PV_RULE_KILL_MEM
                  : r->instr_left > 0                     ? PV_RULE_ERROR
                  : mono_ns() > r->deadline_ns            ? PV_RULE_KILL_TIME
                                                          : PV_RULE_KILL_INSNS;
    if (rc) {
        rc = engine_alert(r, ru, f, err, sink, ud);
    } else {
        for (size_t i = 0; i < c->nalerts && !rc; i++) {
            struct alert_out *a = &c->alerts[i];
            if (a->invalid) {
                snprintf(err, sizeof err, "rule returned an invalid alert: %s",
                         a->invalid);
                rc = engine_alert(r, ru, f, err, sink, ud);
                continue;
            }
            pv_alert_in in = {
                .patient_id = a->patient_id ? a->patient_id : f->patient_id,
                .rule = ru->name,
                .signal = ru->signal,
                .severity = a->severity,
                .has_grade = a->has_grade > 0,
                .grade = a->grade,
                .title = a->title,
                .detail = a->detail,
                .action = a->action,
                .key = a->key,
                .evidence_json =
                    pv_buf_cstr(&a->ev) ? pv_buf_cstr(&a->ev) : "[]",
                .rule_sha256 = ru->pl->sha,
            };
            if (!in.patient_id)
                continue;
            r->stats.alerts++;
            rc = sink(ud, &in);
        }
    }
    call_free(c);
    check_memory(r, ru->pl);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rule *mru = (struct rule *)ru;
    mru->calls++;
    uint64_t took = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
                               (t1.tv_nsec - t0.tv_nsec));
    mru->nanos += took;
    if (outcome != PV_RULE_OK)
        mru->failures++;
    pv_metrics_rule_call(ru->metric, took, outcome);
    return rc;
}

static int run_rule(pv_rules *r, const struct rule *ru, const char *kind,
                    const void *fact, const struct fact_ref *f,
                    pv_alert_sink sink, void *ud)
{
    struct call c = {.ru = ru, .kind = kind, .fact = fact, .id = f->id};
    return run_call(r, &c, f, sink, ud);
}

static int skip(const pv_rules *r, const struct rule *ru)
{
    return r->only && strcmp(r->only, ru->name) != 0;
}

/* ---------------------------------------------------------------------- */
/* The gate (see struct gate_memo)                                         */

static void gate_memo_clear(pv_rules *r)
{
    for (size_t i = 0; r->gate_memo && i < GATE_SLOTS; i++) {
        struct gate_memo *m = &r->gate_memo[i];
        free(m->drug);
        free(m->code);
        free(m->system);
        free(m->verdict);
        memset(m, 0, sizeof *m);
    }
    r->gate_used = 0;
    r->gate_valid = 0;
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *failed = 1;
    return d;
}

/* The slot of one kind of exposure, made if new; GATE_SLOTS if there is
 * no room (then everything passes). */
static size_t gate_slot(pv_rules *r, const char *drug, const char *code,
                        const char *system)
{
    uint64_t h = hash_mix(1469598103934665603ull, drug ? drug : "", (size_t)-1);
    h = hash_mix(h, code ? code : "", (size_t)-1);
    h = hash_mix(hash_mix(h, system ? system : "", (size_t)-1), drug ? "d" : "",
                 1);
    h = hash_mix(h, code ? "c" : "", 1);
    h = hash_mix(h, system ? "s" : "", 1);
    size_t mask = GATE_SLOTS - 1, i = (size_t)h & mask;
    for (size_t probes = 0; probes < GATE_SLOTS; probes++, i = (i + 1) & mask) {
        struct gate_memo *m = &r->gate_memo[i];
        if (!m->verdict) {
            int failed = 0;
            m->verdict = calloc(r->nrules ? r->nrules : 1, 1);
            m->drug = dup_or_null(drug, &failed);
            m->code = dup_or_null(code, &failed);
            m->system = dup_or_null(system, &failed);
            if (!m->verdict || failed) {
                free(m->verdict);
                free(m->drug);
                free(m->code);
                free(m->system);
                memset(m, 0, sizeof *m);
                return GATE_SLOTS;
            }
            m->hash = h;
            r->gate_used++;
            return i;
        }
        if (m->hash == h && same_str(m->drug, drug) &&
            same_str(m->code, code) && same_str(m->system, system))
            return i;
    }
    return GATE_SLOTS;
}

struct gate_rows {
    pv_rules *r;
    const char *patient;
    int all; /* list the patient as 'everything passes' */
};

static int gate_row(void *ud, sqlite3_stmt *st)
{
    struct gate_rows *g = ud;
    pv_rules *r = g->r;
    const char *pid = (const char *)sqlite3_column_text(st, 9);
    if (!pid || strcmp(pid, g->patient) != 0) {
        g->all = 1; /* not what was asked for: judge nothing, pass all */
        return 1;
    }
    size_t slot = gate_slot(r, (const char *)sqlite3_column_text(st, 1),
                            (const char *)sqlite3_column_text(st, 2),
                            (const char *)sqlite3_column_text(st, 3));
    if (slot == GATE_SLOTS) {
        g->all = 1;
        return 1;
    }
    for (size_t i = 0; i < r->gate_n; i++)
        if (r->gate_desc[i] == slot)
            return 0;
    if (r->gate_n == GATE_KINDS) {
        g->all = 1;
        return 1;
    }
    r->gate_desc[r->gate_n++] = slot;
    return 0;
}

/* Lists the kinds of exposure of the patient, unless they are known for
 * the store's current exposure generation (one query per patient and
 * message, not per rule). */
static void gate_load(pv_rules *r, const char *patient)
{
    uint64_t gen = pv_store_exposure_gen(r->store);
    if (r->gate_valid && r->gate_gen == gen && r->gate_patient &&
        strcmp(r->gate_patient, patient) == 0)
        return;
    if (r->gate_used * 2 > GATE_SLOTS)
        gate_memo_clear(r);
    free(r->gate_patient);
    r->gate_patient = strdup(patient);
    r->gate_n = 0;
    struct gate_rows g = {r, patient, 0};
    int rc = r->gate_patient
                 ? pv_store_exposures(r->store, patient, gate_row, &g)
                 : PV_ENOMEM;
    pv_store_cursor_reset(r->store);
    r->gate_all = g.all || rc != 0;
    r->gate_gen = gen;
    r->gate_valid = r->gate_patient != NULL;
}

struct gate_ask {
    const struct rule *ru;
    const struct gate_memo *m;
    int yes;
};

/* The protected half of a verdict: host.gate_match(record, drug, code,
 * system) in the rule's own state. */
static int gate_body(lua_State *L)
{
    struct gate_ask *q = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, q->ru->pl->host_ref);
    lua_getfield(L, -1, "gate_match");
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, q->ru->ref);
    const char *v[3] = {q->m->drug, q->m->code, q->m->system};
    for (int i = 0; i < 3; i++) {
        if (v[i])
            lua_pushstring(L, v[i]);
        else
            lua_pushnil(L);
    }
    lua_call(L, 4, 1);
    q->yes = lua_toboolean(L, -1);
    return 0;
}

/* Whether a lab or an event may reach the rule: always, unless the rule is
 * gated and no exposure of the patient is one its on.exposure names. Any
 * doubt (a failed query or verdict, too many kinds) lets it through. */
static int gate_pass(pv_rules *r, const struct rule *ru, const char *patient)
{
    if (!ru->gated || r->no_gate || !patient)
        return 1;
    gate_load(r, patient);
    if (!r->gate_valid || r->gate_all)
        return 1;
    size_t ri = (size_t)(ru - r->rules);
    for (size_t i = 0; i < r->gate_n; i++) {
        struct gate_memo *m = &r->gate_memo[r->gate_desc[i]];
        if (!m->verdict[ri]) {
            struct gate_ask q = {ru, m, 1};
            char err[1024];
            lua_State *L = ru->pl->L;
            lua_pushcfunction(L, gate_body);
            lua_pushlightuserdata(L, &q);
            if (protected_call(ru->pl, 1, 0, r->instr_limit, err, sizeof err))
                q.yes = 1;
            m->verdict[ri] = q.yes ? 2 : 1;
        }
        if (m->verdict[ri] == 2)
            return 1;
    }
    return 0;
}

/* Counts a call the gate spared. */
static int gate_skip(pv_rules *r, const struct rule *ru, const char *patient)
{
    if (gate_pass(r, ru, patient))
        return 0;
    r->stats.gated++;
    ((struct rule *)ru)->skips++;
    pv_metrics_rule_gated(ru->metric);
    return 1;
}

int pv_rules_on_lab(pv_rules *r, const pv_obs *o, int64_t id,
                    pv_alert_sink sink, void *ud)
{
    struct code_slot *s = o->code ? slot_find(r, o->code, 0) : NULL;
    if (!s)
        return 0;
    struct fact_ref f = {"lab",         o->patient_id, id,   o->code,
                         o->value_text, o->unit,       o->at};
    for (size_t i = 0; i < s->nrules; i++) {
        const struct rule *ru = &r->rules[s->rules[i]];
        if (skip(r, ru) || gate_skip(r, ru, o->patient_id))
            continue;
        int rc = run_rule(r, ru, "lab", o, &f, sink, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int pv_rules_on_exposure(pv_rules *r, const pv_exposure *e, int64_t id,
                         pv_alert_sink sink, void *ud)
{
    struct fact_ref f = {"exposure", e->patient_id, id,      e->drug_code,
                         e->drug,    NULL,          e->start};
    for (size_t i = 0; i < r->nrules; i++) {
        const struct rule *ru = &r->rules[i];
        if (!ru->on_exposure || skip(r, ru))
            continue;
        int rc = run_rule(r, ru, "exposure", e, &f, sink, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int pv_rules_on_event(pv_rules *r, const pv_event *e, int64_t id,
                      pv_alert_sink sink, void *ud)
{
    if (!e->code)
        return 0;
    char code[64];
    size_t w = 0;
    for (const char *c = e->code; *c && w < sizeof code - 1; c++)
        if (*c != '.')
            code[w++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    code[w] = '\0';
    struct fact_ref f = {"event", e->patient_id, id,      e->code,
                         e->term, NULL,          e->onset};
    size_t last = (size_t)-1;
    for (size_t i = 0; i < r->nprefixes; i++) {
        const struct prefix *p = &r->prefixes[i];
        if (p->rule == last || strncmp(code, p->prefix, strlen(p->prefix)))
            continue;
        const struct rule *ru = &r->rules[p->rule];
        last = p->rule;
        if (skip(r, ru) || gate_skip(r, ru, e->patient_id))
            continue;
        int rc = run_rule(r, ru, "event", e, &f, sink, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int pv_rules_has_schedule(const pv_rules *r)
{
    for (size_t i = 0; i < r->nrules; i++)
        if (r->rules[i].every > 0)
            return 1;
    return 0;
}

int pv_rules_tick(pv_rules *r, pv_time_t now, const char *const *patients,
                  int force, pv_alert_sink sink, void *ud)
{
    for (size_t i = 0; i < r->nrules; i++) {
        struct rule *ru = &r->rules[i];
        if (ru->every <= 0 || skip(r, ru) || (!force && now < ru->next_due))
            continue;
        ru->next_due = now + (pv_time_t)ru->every;
        for (const char *const *p = patients; p && *p; p++) {
            struct fact_ref f = {"schedule", *p, 0, NULL, NULL, NULL, now};
            struct call c = {.ru = ru, .patient = *p, .now = now};
            int rc = run_call(r, &c, &f, sink, ud);
            if (rc)
                return rc;
        }
    }
    return 0;
}

double pv_rules_next_due(const pv_rules *r, pv_time_t now)
{
    double best = -1;
    for (size_t i = 0; i < r->nrules; i++) {
        const struct rule *ru = &r->rules[i];
        if (ru->every <= 0)
            continue;
        double d = ru->next_due > now ? (double)(ru->next_due - now) : 0;
        if (best < 0 || d < best)
            best = d;
    }
    return best;
}
