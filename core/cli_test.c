/* cli_test.c: 'pvwatch test' — rule specs written in Lua.
 *
 * A spec file calls pv.test(name) for each case; each case gets a fresh
 * in-memory database with the configured plugins loaded and a fixed clock,
 * feeds facts with t:lab{}, t:exposure{}, t:event{} (each stored and run
 * through the rules exactly as a feed would) and states what must follow
 * with t:expect_alert{} / t:expect_no_alert{}. Failures name the spec's
 * FILE:LINE; the run ends with 'N passed, N failed'. */
#include <dirent.h>
#include <getopt.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "error.h"
#include "ingest.h"
#include "log.h"

#define T_MT "pv.test"
#define DEFAULT_CLOCK "2026-06-01T00:00:00Z"

static const char usage_test[] =
    "usage: pvwatch test [-c CONFIG] [PATH...]\n"
    "\n"
    "Runs rule specs (Lua files; default: every *.lua under tests/rules)\n"
    "against the configured plugins (default ./plugins). Each pv.test case\n"
    "runs on a fresh in-memory database with a fixed clock. Prints each\n"
    "failure as FILE:LINE, then 'N passed, N failed'; exits 1 if any\n"
    "failed.\n";

struct runner {
    pv_config cfg;
    long passed, failed;
    struct tcase *current;
};

struct tcase {
    struct runner *run;
    pv_config cfg; /* a shallow copy of the runner's, without alert log;
                    * the pipeline keeps a pointer to it */
    pv_ingest *p;
    char *name;
    int failures;
    int finished;
};

static struct runner *runner_of(lua_State *L)
{
    return *(struct runner **)lua_getextraspace(L);
}

static void fail(lua_State *L, struct tcase *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(lua_State *L, struct tcase *t, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    luaL_where(L, 1);
    fprintf(stderr, "%stest '%s': %s\n", lua_tostring(L, -1), t->name, msg);
    lua_pop(L, 1);
    t->failures++;
}

static void finish_case(struct runner *r)
{
    struct tcase *t = r->current;
    if (!t || t->finished)
        return;
    t->finished = 1;
    if (t->failures)
        r->failed++;
    else
        r->passed++;
    pv_ingest_close(t->p);
    t->p = NULL;
    r->current = NULL;
}

static struct tcase *check_case(lua_State *L)
{
    struct tcase *t = luaL_checkudata(L, 1, T_MT);
    if (!t->p)
        luaL_error(L, "test '%s' is finished", t->name);
    return t;
}

static int case_gc(lua_State *L)
{
    struct tcase *t = luaL_checkudata(L, 1, T_MT);
    if (t->run->current == t)
        finish_case(t->run);
    pv_ingest_close(t->p);
    t->p = NULL;
    free(t->name);
    t->name = NULL;
    return 0;
}

/* Field readers: strings, numbers and times, with errors naming the
 * field. */
static const char *opt_str(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    const char *s = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
    if (!lua_isnil(L, -1) && !s)
        luaL_error(L, "field '%s' must be a string", k);
    lua_pop(L, 1); /* strings stay alive: the table holds them */
    return s;
}

static int opt_num(lua_State *L, int t, const char *k, double *out)
{
    lua_getfield(L, t, k);
    int has = !lua_isnil(L, -1);
    if (has) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "field '%s' must be a number", k);
        *out = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return has;
}

static int opt_time(lua_State *L, int t, const char *k, pv_time_t *out)
{
    lua_getfield(L, t, k);
    int has = !lua_isnil(L, -1);
    if (has) {
        if (lua_type(L, -1) == LUA_TNUMBER) {
            if (pv_time_from_number(lua_tonumber(L, -1), out))
                luaL_error(L,
                           "field '%s': not a time between the years 0000 "
                           "and 9999",
                           k);
        } else {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            if (!s || pv_time_parse(s, len, out))
                luaL_error(L, "field '%s': '%s' is not a valid time", k,
                           s ? s : "?");
        }
    }
    lua_pop(L, 1);
    return has;
}

static const char *req_str(lua_State *L, int t, const char *k)
{
    const char *s = opt_str(L, t, k);
    if (!s)
        luaL_error(L, "field '%s' is required", k);
    return s;
}

/* A misspelt field ("vaule") must not vanish silently (issue 20). */
static void check_keys(lua_State *L, int t, const char *what,
                       const char *const *known)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        const char *k =
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int ok = 0;
        for (const char *const *n = known; k && *n && !ok; n++)
            ok = strcmp(*n, k) == 0;
        if (!ok)
            luaL_error(L, "%s: unknown field '%s'", what,
                       k ? k : luaL_typename(L, -1));
    }
}

static const char *const LAB_KEYS[] = {
    "patient_id", "code",       "code_system", "name",    "unit",
    "flag",       "status",     "value",       "ref_low", "ref_high",
    "at",         "comparator", NULL};
static const char *const EXPOSURE_KEYS[] = {
    "patient_id", "drug",  "drug_code", "code_system", "dose",
    "dose_unit",  "route", "start",     "end",         NULL};
static const char *const EVENT_KEYS[] = {"patient_id", "code",    "code_system",
                                         "term",       "outcome", "serious",
                                         "onset",      "at",      NULL};

/* Stores one fact in its own transaction, as a feed would. Every field is
 * read and checked first: a Lua error must not leave the transaction open
 * (issue 20: t:lab{} raised while it was). */
static int feed(lua_State *L, struct tcase *t, int kind)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    check_keys(L, 2,
               kind == 'l'   ? "t:lab"
               : kind == 'x' ? "t:exposure"
                             : "t:event",
               kind == 'l'   ? LAB_KEYS
               : kind == 'x' ? EXPOSURE_KEYS
                             : EVENT_KEYS);
    int rc = 0;
    int64_t id = 0;
    if (kind == 'l') {
        pv_obs o = {0};
        o.patient_id = req_str(L, 2, "patient_id");
        o.code = req_str(L, 2, "code");
        o.code_system = opt_str(L, 2, "code_system");
        o.name = opt_str(L, 2, "name");
        o.unit = opt_str(L, 2, "unit");
        o.flag = opt_str(L, 2, "flag");
        o.status = opt_str(L, 2, "status");
        /* A value that is not a number is kept as text, as a feed keeps
         * it (value_text only). */
        lua_getfield(L, 2, "value");
        if (lua_type(L, -1) == LUA_TSTRING && !lua_isnumber(L, -1))
            o.has_num = 0;
        else
            o.has_num = opt_num(L, 2, "value", &o.value_num);
        o.value_text = lua_tostring(L, -1);
        lua_pop(L, 1);
        o.has_low = opt_num(L, 2, "ref_low", &o.ref_low);
        o.has_high = opt_num(L, 2, "ref_high", &o.ref_high);
        o.comparator = opt_str(L, 2, "comparator");
        if (!opt_time(L, 2, "at", &o.at))
            luaL_error(L, "field 'at' is required");
        rc = pv_ingest_begin(t->p);
        if (!rc)
            rc = pv_ingest_lab(t->p, &o, &id);
    } else if (kind == 'x') {
        pv_exposure e = {0};
        e.patient_id = req_str(L, 2, "patient_id");
        e.drug_code = opt_str(L, 2, "drug_code");
        /* Given only as a code, the code is the drug text, as the feeds
         * store it (map.c, ingest_hl7.c; issue 21). */
        e.drug = e.drug_code ? opt_str(L, 2, "drug") : req_str(L, 2, "drug");
        if (!e.drug)
            e.drug = e.drug_code;
        e.code_system = opt_str(L, 2, "code_system");
        e.has_dose = opt_num(L, 2, "dose", &e.dose);
        e.dose_unit = opt_str(L, 2, "dose_unit");
        if (e.has_dose && !e.dose_unit)
            e.dose_unit = "mg";
        e.route = opt_str(L, 2, "route");
        if (!opt_time(L, 2, "start", &e.start))
            luaL_error(L, "field 'start' is required");
        e.has_end = opt_time(L, 2, "end", &e.end);
        rc = pv_ingest_begin(t->p);
        if (!rc)
            rc = pv_ingest_exposure(t->p, &e, &id);
    } else {
        pv_event e = {0};
        e.patient_id = req_str(L, 2, "patient_id");
        e.code = req_str(L, 2, "code");
        e.code_system = opt_str(L, 2, "code_system");
        e.term = opt_str(L, 2, "term");
        e.outcome = opt_str(L, 2, "outcome");
        e.serious = -1;
        lua_getfield(L, 2, "serious");
        if (!lua_isnil(L, -1))
            e.serious = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!opt_time(L, 2, "onset", &e.onset) &&
            !opt_time(L, 2, "at", &e.onset))
            luaL_error(L, "field 'onset' is required");
        rc = pv_ingest_begin(t->p);
        if (!rc)
            rc = pv_ingest_event(t->p, &e, &id);
    }
    if (!rc)
        rc = pv_ingest_commit(t->p);
    if (rc) {
        pv_ingest_rollback(t->p);
        return luaL_error(L, "storing the fact failed: %s (%s)",
                          pv_strerror(rc),
                          pv_store_errmsg(pv_ingest_store(t->p)));
    }
    lua_pushinteger(L, id);
    return 1;
}

static int t_lab(lua_State *L)
{
    return feed(L, check_case(L), 'l');
}

static int t_exposure(lua_State *L)
{
    return feed(L, check_case(L), 'x');
}

static int t_event(lua_State *L)
{
    return feed(L, check_case(L), 'e');
}

/* t:patient{patient_id=, birth_date=, sex=}: a patient's demographics. */
static int t_patient(lua_State *L)
{
    struct tcase *t = check_case(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *id = req_str(L, 2, "patient_id");
    const char *bd = opt_str(L, 2, "birth_date");
    pv_time_t when;
    if (bd && pv_time_parse(bd, strlen(bd), &when))
        return luaL_error(L, "birth_date '%s' is not a valid date", bd);
    int rc =
        pv_store_patient(pv_ingest_store(t->p), id, bd, opt_str(L, 2, "sex"));
    if (rc)
        return luaL_error(L, "storing the patient failed: %s", pv_strerror(rc));
    return 0;
}

/* t:ack(id [, note]) and t:close(id [, note]): the alert workflow, so a
 * spec can check what happens after an alert was closed. */
static int act(lua_State *L, const char *action)
{
    struct tcase *t = check_case(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *note = luaL_optstring(L, 3, NULL);
    char err[512];
    if (pv_alerts_act(pv_ingest_alerts(t->p), id, action, "spec", note, err,
                      sizeof err))
        return luaL_error(L, "%s", err);
    return 0;
}

static int t_ack(lua_State *L)
{
    return act(L, "ack");
}

static int t_close(lua_State *L)
{
    return act(L, "close");
}

/* pv.time(text) in specs, as in rules: seconds since the epoch or nil. */
static int spec_time(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    pv_time_t t;
    if (pv_time_parse(s, len, &t)) {
        lua_pushnil(L);
        lua_pushfstring(L, "not a valid time: %s", s);
        return 2;
    }
    lua_pushinteger(L, t);
    return 1;
}

static int spec_iso(lua_State *L)
{
    char buf[PV_TIME_BUFSZ];
    lua_pushstring(L, pv_time_format((pv_time_t)luaL_checkinteger(L, 1), buf));
    return 1;
}

static int t_clock(lua_State *L)
{
    struct tcase *t = check_case(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    pv_time_t when;
    if (pv_time_parse(s, len, &when))
        return luaL_error(L, "'%s' is not a valid time", s);
    pv_store_set_clock(pv_ingest_store(t->p), when);
    return 0;
}

/* t:tick(at): runs the scheduled rules at time 'at' (default: the clock)
 * for every exposed patient, as the engine's timer would. */
static int t_tick(lua_State *L)
{
    struct tcase *t = check_case(L);
    pv_time_t at = pv_store_now(pv_ingest_store(t->p));
    if (!lua_isnoneornil(L, 2)) {
        size_t len;
        const char *s = luaL_checklstring(L, 2, &len);
        if (pv_time_parse(s, len, &at))
            return luaL_error(L, "'%s' is not a valid time", s);
        pv_store_set_clock(pv_ingest_store(t->p), at);
    }
    int rc = pv_ingest_tick(t->p, at, 1);
    if (rc)
        return luaL_error(L, "tick failed: %s", pv_strerror(rc));
    return 0;
}

/* Pushes the list of alerts of the case as tables. */
static void push_alerts(lua_State *L, struct tcase *t)
{
    sqlite3_stmt *st;
    lua_newtable(L);
    if (sqlite3_prepare_v2(pv_store_db(pv_ingest_store(t->p)),
                           "SELECT id, patient_id, rule, signal, severity, "
                           "grade, title, detail, action, status, "
                           "occurrences, dedup_key, evidence FROM alerts "
                           "ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    static const char *const names[] = {
        "id",          "patient_id", "rule",    "signal", "severity",
        "grade",       "title",      "detail",  "action", "status",
        "occurrences", "key",        "evidence"};
    lua_Integer n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        lua_createtable(L, 0, 13);
        for (int i = 0; i < 13; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER:
                lua_pushinteger(L, sqlite3_column_int64(st, i));
                break;
            case SQLITE_NULL:
                continue;
            default:
                lua_pushstring(L, (const char *)sqlite3_column_text(st, i));
            }
            lua_setfield(L, -2, names[i]);
        }
        lua_rawseti(L, -2, ++n);
    }
    sqlite3_finalize(st);
}

static int t_alerts(lua_State *L)
{
    push_alerts(L, check_case(L));
    return 1;
}

/* Does alert (table at -1) match every field of the expectation at 2?
 * Fields ending in _has are substring tests on the field before it. */
static int matches(lua_State *L, int exp)
{
    int a = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, exp)) {
        const char *k = lua_tostring(L, -2);
        if (!k || !strcmp(k, "count")) {
            lua_pop(L, 1);
            continue;
        }
        size_t kl = strlen(k);
        int ok;
        if (kl > 4 && !strcmp(k + kl - 4, "_has")) {
            char field[64];
            snprintf(field, sizeof field, "%.*s", (int)(kl - 4), k);
            lua_getfield(L, a, field);
            const char *have = lua_tostring(L, -1);
            const char *want = lua_tostring(L, -2);
            ok = have && want && strstr(have, want);
            lua_pop(L, 1);
        } else {
            lua_getfield(L, a, k);
            ok = lua_compare(L, -1, -2, LUA_OPEQ);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (!ok) {
            lua_pop(L, 1); /* the key */
            return 0;
        }
    }
    return 1;
}

/* "{k=v, ...}" of the table at idx, leaving out the long fields. */
static void describe(lua_State *L, int idx, pv_buf *b)
{
    idx = lua_absindex(L, idx);
    pv_buf_puts(b, "{");
    int first = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k =
            lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && strcmp(k, "detail") && strcmp(k, "evidence") &&
            strcmp(k, "action") && strcmp(k, "id")) {
            const char *v = luaL_tolstring(L, -1, NULL);
            pv_buf_printf(b, "%s%s=%s", first ? "" : ", ", k, v);
            lua_pop(L, 1);
            first = 0;
        }
        lua_pop(L, 1);
    }
    pv_buf_puts(b, "}");
}

/* After a failed expectation (issue 21 part 2): the facts the case
 * stored, one line each, so that a wrong detail or field can be traced to
 * what the rule saw. */
static void print_facts(struct tcase *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            pv_store_db(pv_ingest_store(t->p)),
            "SELECT 'lab', patient_id, code, coalesce(value_num, value_text), "
            "unit, observed_at FROM observations UNION ALL SELECT "
            "'exposure', patient_id, coalesce(drug, drug_code), dose, "
            "dose_unit, start_at || coalesce(' to ' || end_at, '') FROM "
            "exposures UNION ALL SELECT 'event', patient_id, code, term, "
            "NULL, onset_at FROM events ORDER BY 6",
            -1, &st, NULL) != SQLITE_OK)
        return;
    fprintf(stderr, "  facts seen:\n");
    int n = 0;
    pv_buf e = PV_BUF_INIT, shown = PV_BUF_INIT;
    while (sqlite3_step(st) == SQLITE_ROW) {
        pv_buf_reset(&e);
        for (int i = 0; i < 6; i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            if (v)
                pv_buf_printf(&e, "%s%s", i ? " " : "", v);
        }
        fprintf(stderr, "    %s\n",
                pv_buf_ok(&e) ? pv_buf_escape(&shown, pv_buf_cstr(&e)) : "?");
        n++;
    }
    if (!n)
        fprintf(stderr, "    none\n");
    pv_buf_free(&e);
    pv_buf_free(&shown);
    sqlite3_finalize(st);
}

static int expect(lua_State *L, int want_some)
{
    struct tcase *t = check_case(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "count");
    lua_Integer count = lua_isnil(L, -1) ? -1 : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    push_alerts(L, t);
    int list = lua_gettop(L);
    lua_Integer n = luaL_len(L, list), hits = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, list, i);
        if (matches(L, 2))
            hits++;
        lua_pop(L, 1);
    }
    int ok = want_some ? (count >= 0 ? hits == count : hits > 0) : hits == 0;
    if (!ok) {
        pv_buf want = PV_BUF_INIT, have = PV_BUF_INIT;
        describe(L, 2, &want);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, list, i);
            pv_buf_puts(&have, "\n    ");
            describe(L, -1, &have);
            /* The detail too: a detail_has that failed shows it whole. */
            lua_getfield(L, -1, "detail");
            if (lua_type(L, -1) == LUA_TSTRING)
                pv_buf_printf(&have, "\n      detail: %s", lua_tostring(L, -1));
            lua_pop(L, 2);
        }
        const char *w = pv_buf_cstr(&want),
                   *h = n ? pv_buf_cstr(&have) : " none";
        if (want_some && count >= 0)
            fail(L, t,
                 "expected %lld alert(s) matching %s, found %lld; "
                 "alerts:%s",
                 (long long)count, w, (long long)hits, h);
        else if (want_some)
            fail(L, t, "expected an alert matching %s; alerts:%s", w, h);
        else
            fail(L, t, "expected no alert matching %s; alerts:%s", w, h);
        print_facts(t);
        pv_buf_free(&want);
        pv_buf_free(&have);
    }
    lua_pop(L, 1);
    lua_pushboolean(L, ok);
    return 1;
}

static int t_expect_alert(lua_State *L)
{
    return expect(L, 1);
}

static int t_expect_no_alert(lua_State *L)
{
    return expect(L, 0);
}

/* t:expect(cond, message): a plain assertion that counts as a failure of
 * the case rather than stopping the file. */
static int t_expect(lua_State *L)
{
    struct tcase *t = check_case(L);
    if (!lua_toboolean(L, 2))
        fail(L, t, "%s", luaL_optstring(L, 3, "expectation failed"));
    lua_pushboolean(L, lua_toboolean(L, 2));
    return 1;
}

/* pv.test(name) -> a new case. */
static int pv_test(lua_State *L)
{
    struct runner *r = runner_of(L);
    const char *name = luaL_checkstring(L, 1);
    finish_case(r);
    struct tcase *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    t->run = r;
    t->name = strdup(name);
    luaL_setmetatable(L, T_MT);
    t->cfg = r->cfg; /* a shallow copy: no alert log for specs */
    t->cfg.alert_log = NULL;
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_ingest_open(&t->cfg, ":memory:", 0, &t->p, &errors);
    if (rc) {
        lua_pushfstring(L, "cannot load the rules: %s",
                        pv_buf_cstr(&errors) ? pv_buf_cstr(&errors) : "");
        pv_buf_free(&errors);
        return lua_error(L);
    }
    pv_buf_free(&errors);
    pv_time_t when;
    pv_time_parse(DEFAULT_CLOCK, strlen(DEFAULT_CLOCK), &when);
    pv_store_set_clock(pv_ingest_store(t->p), when);
    r->current = t;
    return 1;
}

static int msgh(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static int run_file(struct runner *r, const char *path)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return -1;
    *(struct runner **)lua_getextraspace(L) = r;
    luaL_openlibs(L);
    static const luaL_Reg methods[] = {
        {"lab", t_lab},
        {"exposure", t_exposure},
        {"event", t_event},
        {"clock", t_clock},
        {"tick", t_tick},
        {"patient", t_patient},
        {"ack", t_ack},
        {"close", t_close},
        {"alerts", t_alerts},
        {"expect_alert", t_expect_alert},
        {"expect_no_alert", t_expect_no_alert},
        {"expect", t_expect},
        {NULL, NULL},
    };
    luaL_newmetatable(L, T_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, case_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, pv_test);
    lua_setfield(L, -2, "test");
    lua_pushcfunction(L, spec_time);
    lua_setfield(L, -2, "time");
    lua_pushcfunction(L, spec_iso);
    lua_setfield(L, -2, "iso");
    lua_setglobal(L, "pv");
    /* Specs may require the rule pack's modules (codes, units, ...). */
    lua_getglobal(L, "package");
    pv_buf pp = PV_BUF_INIT;
    for (size_t i = 0; i < r->cfg.scripts.count; i++)
        pv_buf_printf(&pp, "%s/?.lua;", r->cfg.scripts.items[i]);
    lua_pushstring(L, pv_buf_cstr(&pp));
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    pv_buf_free(&pp);

    lua_pushcfunction(L, msgh);
    int rc = luaL_loadfilex(L, path, "t");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, -2);
    if (rc != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        if (r->current)
            r->current->failures++;
        else
            r->failed++;
    }
    finish_case(r);
    lua_close(L);
    return 0;
}

static int has_lua_suffix(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && strcmp(s + n - 4, ".lua") == 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(const char *path, pv_strlist *out)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "pvwatch test: %s: no such file or directory\n", path);
        pv_strlist_add(out, path); /* reported as a failure when run */
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        pv_strlist_add(out, path);
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        return;
    pv_strlist names = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat s2;
        if (stat(sub, &s2) == 0 &&
            (S_ISDIR(s2.st_mode) || has_lua_suffix(e->d_name)))
            pv_strlist_add(&names, sub);
    }
    closedir(d);
    if (names.count)
        qsort(names.items, names.count, sizeof *names.items, cmp);
    for (size_t i = 0; i < names.count; i++)
        collect(names.items[i], out);
    pv_strlist_free(&names);
}

int pv_cli_test(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_test, stdout);
            return 0;
        }
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt(argc, argv, "+c:")) != -1) {
        if (c != 'c') {
            fprintf(stderr, "pvwatch test: unknown option\n%s", usage_test);
            return 2;
        }
        config = optarg;
    }
    struct runner r;
    memset(&r, 0, sizeof r);
    pv_buf errors = PV_BUF_INIT;
    if (pv_config_load(config, &r.cfg, &errors)) {
        fprintf(stderr, "pvwatch: %s", pv_buf_cstr(&errors));
        pv_buf_free(&errors);
        pv_config_free(&r.cfg);
        return 2;
    }
    pv_buf_free(&errors);
    pv_log_set_level(PV_LOG_WARN);
    pv_strlist files = {0};
    if (optind >= argc)
        collect("tests/rules", &files);
    for (int i = optind; i < argc; i++)
        collect(argv[i], &files);
    for (size_t i = 0; i < files.count; i++)
        run_file(&r, files.items[i]);
    printf("%ld passed, %ld failed\n", r.passed, r.failed);
    pv_strlist_free(&files);
    pv_config_free(&r.cfg);
    if (files.count == 0 && r.passed == 0)
        return 1; /* running nothing is not a pass */
    return r.failed ? 1 : 0;
}
