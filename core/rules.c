/* rules.c: the Lua host. See rules.h; the Lua half is rules_api.lua. */
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "error.h"
#include "log.h"
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
    pv_pool *pool; /* the Lua state's small blocks (pool.h) */
    int host_ref;  /* the table rules_api.lua returned */
};

struct rule {
    struct plugin *pl;
    char *name;
    char *signal;
    int ref;           /* the pv.rule table */
    int on_exposure;   /* triggered by exposures */
    int on_all_events; /* on.event given: prefixes matched in events[] */
    double every;      /* seconds; 0 = not scheduled */
    pv_time_t next_due;
    uint64_t calls, nanos; /* for PVWATCH_PROFILE */
};

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
    struct prefix *prefixes;
    size_t nprefixes;
    char *only;
    long instr_limit;
    /* The call in progress, for the hook and the primitives. */
    long instr_left;
    const struct rule *cur;
    pv_rules_stats stats;
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

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    pv_rules *r = plugin_of(L)->owner;
    r->instr_left -= HOOK_STEP;
    if (r->instr_left <= 0) {
        /* From now on fire at every instruction, so a rule that catches
         * this error with pcall cannot run on. */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        /* Level 0 is the function that was running (luaL_error would name
         * its caller), so the message points at the looping line. */
        luaL_where(L, 0);
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
        /* Give back what the failed call held before the next one. */
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

struct rows {
    lua_State *L;
    lua_Integer n;
    const char *patient;
};

static int lab_row(void *ud, sqlite3_stmt *st)
{
    struct rows *rw = ud;
    lua_State *L = rw->L;
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
    lua_pushliteral(L, "exposure");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_kind");
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, -2, ++rw->n);
    return 0;
}

/* Optional time argument (seconds) as ISO text into buf; NULL when nil. */
static const char *opt_iso(lua_State *L, int idx, char *buf)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    return pv_time_format((pv_time_t)luaL_checknumber(L, idx), buf);
}

/* A list of codes as a JSON array into b; NULL when the argument is nil. */
static const char *codes_json(lua_State *L, int idx, pv_buf *b)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    pv_buf_puts(b, "[");
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
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

static int prim_labs(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *pid = luaL_checkstring(L, 1);
    char since[PV_TIME_BUFSZ], till[PV_TIME_BUFSZ];
    pv_buf codes = PV_BUF_INIT;
    const char *cj = codes_json(L, 2, &codes);
    const char *s = opt_iso(L, 3, since), *u = opt_iso(L, 4, till);
    long limit = (long)luaL_optinteger(L, 5, 0);
    lua_newtable(L);
    struct rows rw = {L, 0, pid};
    int rc = pv_store_labs(r->store, pid, cj, s, u, limit, lab_row, &rw);
    pv_buf_free(&codes);
    if (rc)
        return history_fail(L, r, rc);
    return 1;
}

static int prim_events(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *pid = luaL_checkstring(L, 1);
    char since[PV_TIME_BUFSZ], till[PV_TIME_BUFSZ];
    pv_buf codes = PV_BUF_INIT;
    const char *cj = codes_json(L, 2, &codes);
    const char *s = opt_iso(L, 3, since), *u = opt_iso(L, 4, till);
    long limit = (long)luaL_optinteger(L, 5, 0);
    lua_newtable(L);
    struct rows rw = {L, 0, pid};
    int rc = pv_store_events(r->store, pid, cj, s, u, limit, event_row, &rw);
    pv_buf_free(&codes);
    if (rc)
        return history_fail(L, r, rc);
    return 1;
}

static int prim_exposures(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *pid = luaL_checkstring(L, 1);
    lua_newtable(L);
    struct rows rw = {L, 0, pid};
    int rc = pv_store_exposures(r->store, pid, exposure_row, &rw);
    if (rc)
        return history_fail(L, r, rc);
    return 1;
}

static int patient_row(void *ud, sqlite3_stmt *st)
{
    struct rows *rw = ud;
    lua_State *L = rw->L;
    lua_newtable(L);
    push_time_or_nil(L, st, 1);
    lua_setfield(L, -2, "birth_date");
    set_col_text(L, st, 2, "sex");
    rw->n = 1;
    return 1;
}

static int prim_patient(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *pid = luaL_checkstring(L, 1);
    struct rows rw = {L, 0, pid};
    int rc = pv_store_patient_get(r->store, pid, patient_row, &rw);
    if (rc)
        return history_fail(L, r, rc);
    if (!rw.n)
        lua_pushnil(L);
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
    lua_pushstring(L, v);
    free(v);
    return 1;
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
    lua_pushstring(L, pv_time_format((pv_time_t)luaL_checknumber(L, 1), buf));
    return 1;
}

/* Charges one hook step of the budget (coroutine resumes, see
 * rules_api.lua) and raises when it is spent. */
static int prim_charge(lua_State *L)
{
    pv_rules *r = rules_of(L);
    r->instr_left -= HOOK_STEP;
    if (r->instr_left <= 0) {
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        return luaL_error(L, "instruction budget of %d exceeded",
                          (int)r->instr_limit);
    }
    return 0;
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

/* require(name) inside the sandbox: only text files from the scripts
 * directories, loaded into the sandbox environment, each once. */
static int prim_require(lua_State *L)
{
    pv_rules *r = rules_of(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
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
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.lua", dirs->items[i], rel);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (luaL_loadfilex(L, path, "t") != LUA_OK)
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

static struct code_slot *slot_find(pv_rules *r, const char *code, int add)
{
    if (!r->nslots)
        return NULL;
    size_t mask = r->nslots - 1;
    for (size_t i = hash_str(code) & mask;; i = (i + 1) & mask) {
        struct code_slot *s = &r->slots[i];
        if (!s->code) {
            if (!add)
                return NULL;
            s->code = strdup(code);
            return s->code ? s : NULL;
        }
        if (strcmp(s->code, code) == 0)
            return s;
    }
}

static int slot_add(pv_rules *r, const char *code, size_t rule)
{
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

static int file_sha(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return PV_EIO;
    pv_sha256 c;
    pv_sha256_init(&c);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        pv_sha256_update(&c, buf, n);
    fclose(f);
    pv_sha256_hex(&c, out);
    return 0;
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
    if (!pl->pool) {
        plugin_free(pl);
        return PV_ENOMEM;
    }
    if (!pl->file || file_sha(path, pl->sha)) {
        pv_buf_printf(errors, "%s: cannot read: %s\n", path, strerror(errno));
        plugin_free(pl);
        return PV_ELUA;
    }
    lua_State *L = pl->L = lua_newstate(capped_alloc, pl);
    if (!L) {
        plugin_free(pl);
        return PV_ENOMEM;
    }
    *(struct plugin **)lua_getextraspace(L) = pl;
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "pv.loaded");
    open_libs(L);

    if (luaL_loadbufferx(L, pv_rules_api_lua, strlen(pv_rules_api_lua),
                         "=rules_api.lua", "t") != LUA_OK) {
        pv_buf_printf(errors, "internal: %s\n", lua_tostring(L, -1));
        plugin_free(pl);
        return PV_ELUA;
    }
    luaL_newlib(L, prims);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, r->cfg->exposure.washout_days);
    lua_setfield(L, -2, "washout_days");
    lua_pushstring(L, r->cfg->label.indication);
    lua_setfield(L, -2, "indication");
    lua_pushstring(L, r->cfg->label.region);
    lua_setfield(L, -2, "region");
    long budget = r->instr_limit * 10;
    if (protected_call(pl, 2, 1, budget, err, sizeof err)) {
        pv_buf_printf(errors, "%s: rule API failed to start: %s\n", path, err);
        plugin_free(pl);
        return PV_ELUA;
    }
    pl->host_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    struct stat st;
    if (stat(path, &st) != 0 || st.st_size > MAX_PLUGIN_BYTES) {
        pv_buf_printf(errors, "%s: missing or larger than %d bytes\n", path,
                      MAX_PLUGIN_BYTES);
        plugin_free(pl);
        return PV_ELUA;
    }
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        plugin_error(errors, path, lua_tostring(L, -1));
        plugin_free(pl);
        return PV_ELUA;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, pl->host_ref);
    lua_getfield(L, -1, "env");
    lua_setupvalue(L, -3, 1);
    lua_pop(L, 1);
    if (protected_call(pl, 0, 1, budget, err, sizeof err)) {
        plugin_error(errors, path, err);
        plugin_free(pl);
        return PV_ELUA;
    }
    /* host.register(result, file) -> list of rules */
    lua_rawgeti(L, LUA_REGISTRYINDEX, pl->host_ref);
    lua_getfield(L, -1, "register");
    lua_remove(L, -2);
    lua_insert(L, -2);
    lua_pushstring(L, path);
    if (protected_call(pl, 2, 1, budget, err, sizeof err)) {
        plugin_error(errors, path, err);
        plugin_free(pl);
        return PV_ELUA;
    }
    *out = pl;
    return 0;
}

static char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *s = lua_tostring(L, -1);
    char *r = s ? strdup(s) : NULL;
    lua_pop(L, 1);
    return r;
}

/* Registers the rules of the list on top of the stack (pops it). */
static int add_rules(pv_rules *r, struct plugin *pl, pv_buf *errors)
{
    lua_State *L = pl->L;
    lua_Integer n = luaL_len(L, -1);
    int rc = 0;
    for (lua_Integer i = 1; i <= n && !rc; i++) {
        lua_geti(L, -1, i);
        int t = lua_gettop(L);
        struct rule *nr = realloc(r->rules, (r->nrules + 1) * sizeof *nr);
        if (!nr) {
            rc = PV_ENOMEM;
            lua_pop(L, 1);
            break;
        }
        r->rules = nr;
        struct rule *ru = &r->rules[r->nrules];
        memset(ru, 0, sizeof *ru);
        ru->pl = pl;
        ru->name = field_str(L, t, "name");
        ru->signal = field_str(L, t, "signal");
        for (size_t j = 0; j < r->nrules; j++)
            if (strcmp(r->rules[j].name, ru->name) == 0) {
                pv_buf_printf(errors,
                              "%s: rule name '%s' is used twice "
                              "(also in %s)\n",
                              pl->file, ru->name, r->rules[j].pl->file);
                rc = PV_ELUA;
            }
        lua_getfield(L, t, "every_seconds");
        ru->every = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
        lua_getfield(L, t, "exposures");
        ru->on_exposure = !lua_isnil(L, -1);
        lua_pop(L, 1);
        size_t idx = r->nrules++;
        lua_getfield(L, t, "labs");
        if (lua_istable(L, -1)) {
            lua_Integer m = luaL_len(L, -1);
            for (lua_Integer j = 1; j <= m && !rc; j++) {
                lua_geti(L, -1, j);
                const char *code = lua_tostring(L, -1);
                if (code)
                    rc = slot_add(r, code, idx);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        lua_getfield(L, t, "events");
        if (lua_istable(L, -1)) {
            ru->on_all_events = 1;
            lua_Integer m = luaL_len(L, -1);
            for (lua_Integer j = 1; j <= m && !rc; j++) {
                lua_geti(L, -1, j);
                const char *code = lua_tostring(L, -1);
                struct prefix *np =
                    code ? realloc(r->prefixes, (r->nprefixes + 1) * sizeof *np)
                         : NULL;
                if (np) {
                    r->prefixes = np;
                    char *p = strdup(code), *w = p;
                    for (const char *c = code; p && *c; c++)
                        if (*c != '.')
                            *w++ =
                                (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
                    if (p)
                        *w = '\0';
                    np[r->nprefixes].prefix = p;
                    np[r->nprefixes++].rule = idx;
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        ru->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);
    return rc;
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
    r->nslots = 256;
    r->slots = calloc(r->nslots, sizeof *r->slots);
    if (!r->slots) {
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
        if (r->rules[i].calls)
            pv_info("profile: %-36s %10llu calls %9.3f s %8.2f us/call",
                    r->rules[i].name, (unsigned long long)r->rules[i].calls,
                    r->rules[i].nanos / 1e9,
                    r->rules[i].nanos / 1e3 / r->rules[i].calls);
    for (size_t i = 0; i < r->nplugins; i++)
        plugin_free(r->plugins[i]);
    free(r->plugins);
    for (size_t i = 0; i < r->nrules; i++) {
        free(r->rules[i].name);
        free(r->rules[i].signal);
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

static int engine_alert(pv_rules *r, const struct rule *ru,
                        const struct fact_ref *f, const char *err,
                        pv_alert_sink sink, void *ud)
{
    r->stats.errors++;
    char at[PV_TIME_BUFSZ];
    pv_error("rule %s failed on %s %s (id %lld) of patient %s: %s", ru->name,
             f->kind, f->code ? f->code : "", (long long)f->id,
             f->patient_id ? f->patient_id : "-", err);
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

/* Reads the alerts host.call returned (a list on top of the stack; popped)
 * and hands each to the sink. */
static int deliver(pv_rules *r, const struct rule *ru, const char *patient,
                   pv_alert_sink sink, void *ud)
{
    lua_State *L = ru->pl->L;
    lua_Integer n = luaL_len(L, -1);
    int rc = 0;
    for (lua_Integer i = 1; i <= n && !rc; i++) {
        lua_geti(L, -1, i);
        int t = lua_gettop(L);
        pv_buf ev = PV_BUF_INIT;
        pv_buf_puts(&ev, "[");
        lua_getfield(L, t, "evidence");
        lua_Integer m = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
        for (lua_Integer j = 1; j <= m; j++) {
            lua_geti(L, -1, j);
            if (j > 1)
                pv_buf_puts(&ev, ",");
            pv_buf_puts(&ev, "{\"kind\":");
            lua_getfield(L, -1, "kind");
            pv_buf_json_str(&ev, lua_tostring(L, -1), (size_t)-1);
            lua_pop(L, 1);
            lua_getfield(L, -1, "id");
            pv_buf_puts(&ev, ",\"id\":");
            if (lua_isinteger(L, -1))
                pv_buf_printf(&ev, "%lld", (long long)lua_tointeger(L, -1));
            else
                pv_buf_puts(&ev, "null");
            lua_pop(L, 1);
            lua_getfield(L, -1, "code");
            pv_buf_puts(&ev, ",\"code\":");
            pv_buf_json_str(&ev, lua_tostring(L, -1), (size_t)-1);
            lua_pop(L, 1);
            lua_getfield(L, -1, "value");
            pv_buf_puts(&ev, ",\"value\":");
            if (lua_type(L, -1) == LUA_TNUMBER)
                pv_buf_json_num(&ev, lua_tonumber(L, -1));
            else
                pv_buf_json_str(&ev, lua_tostring(L, -1), (size_t)-1);
            lua_pop(L, 1);
            lua_getfield(L, -1, "unit");
            pv_buf_puts(&ev, ",\"unit\":");
            pv_buf_json_str(&ev, lua_tostring(L, -1), (size_t)-1);
            lua_pop(L, 1);
            lua_getfield(L, -1, "at");
            pv_buf_puts(&ev, ",\"at\":");
            if (lua_type(L, -1) == LUA_TNUMBER) {
                char at[PV_TIME_BUFSZ];
                pv_buf_json_str(
                    &ev, pv_time_format((pv_time_t)lua_tonumber(L, -1), at),
                    (size_t)-1);
            } else {
                pv_buf_puts(&ev, "null");
            }
            lua_pop(L, 1);
            pv_buf_puts(&ev, "}");
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        pv_buf_puts(&ev, "]");

        lua_getfield(L, t, "grade");
        int has_grade = lua_isinteger(L, -1);
        int grade = has_grade ? (int)lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
        char *pid = field_str(L, t, "patient_id");
        char *sev = field_str(L, t, "severity");
        char *title = field_str(L, t, "title");
        char *detail = field_str(L, t, "detail");
        char *action = field_str(L, t, "action");
        char *key = field_str(L, t, "key");
        pv_alert_in a = {
            .patient_id = pid ? pid : patient,
            .rule = ru->name,
            .signal = ru->signal,
            .severity = sev,
            .has_grade = has_grade,
            .grade = grade,
            .title = title,
            .detail = detail,
            .action = action,
            .key = key ? key : "default",
            .evidence_json = pv_buf_cstr(&ev),
            .rule_sha256 = ru->pl->sha,
        };
        if (a.patient_id && a.severity && a.title) {
            r->stats.alerts++;
            rc = sink(ud, &a);
        }
        free(pid);
        free(sev);
        free(title);
        free(detail);
        free(action);
        free(key);
        pv_buf_free(&ev);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return rc;
}

/* Calls host.call(rule, kind, fact) with the fact already pushed. */
static int run_rule(pv_rules *r, const struct rule *ru, const char *kind,
                    const struct fact_ref *f, pv_alert_sink sink, void *ud)
{
    lua_State *L = ru->pl->L;
    /* Stack on entry: fact. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, ru->pl->host_ref);
    lua_getfield(L, -1, "call");
    lua_remove(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ru->ref);
    lua_pushstring(L, kind);
    lua_rotate(L, -4, -1); /* call, rule, kind, fact */
    char err[4096];
    r->stats.calls++;
    r->cur = ru;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = protected_call(ru->pl, 3, 1, r->instr_limit, err, sizeof err);
    r->cur = NULL;
    if (rc)
        rc = engine_alert(r, ru, f, err, sink, ud);
    else
        rc = deliver(r, ru, f->patient_id, sink, ud);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rule *mru = (struct rule *)ru;
    mru->calls++;
    mru->nanos += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
                             (t1.tv_nsec - t0.tv_nsec));
    return rc;
}

static int skip(const pv_rules *r, const struct rule *ru)
{
    return r->only && strcmp(r->only, ru->name) != 0;
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
        if (skip(r, ru))
            continue;
        push_obs(ru->pl->L, o, id);
        int rc = run_rule(r, ru, "lab", &f, sink, ud);
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
        push_exposure(ru->pl->L, e, id);
        int rc = run_rule(r, ru, "exposure", &f, sink, ud);
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
        if (skip(r, ru))
            continue;
        push_event(ru->pl->L, e, id);
        int rc = run_rule(r, ru, "event", &f, sink, ud);
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
        lua_State *L = ru->pl->L;
        for (const char *const *p = patients; p && *p; p++) {
            struct fact_ref f = {"schedule", *p, 0, NULL, NULL, NULL, now};
            lua_rawgeti(L, LUA_REGISTRYINDEX, ru->pl->host_ref);
            lua_getfield(L, -1, "tick");
            lua_remove(L, -2);
            lua_rawgeti(L, LUA_REGISTRYINDEX, ru->ref);
            lua_pushstring(L, *p);
            lua_pushinteger(L, now);
            char err[4096];
            r->stats.calls++;
            r->cur = ru;
            int rc =
                protected_call(ru->pl, 3, 1, r->instr_limit, err, sizeof err);
            r->cur = NULL;
            rc = rc ? engine_alert(r, ru, &f, err, sink, ud)
                    : deliver(r, ru, *p, sink, ud);
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
