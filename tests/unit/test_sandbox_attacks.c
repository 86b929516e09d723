/* test_sandbox_attacks: the attacks of issue 6 ("Sandbox attacks") that
 * test_sandbox.c does not already make, each made by a rule while it runs
 * on a stored lab, each expected to be contained (the lab stays stored,
 * the other rules of the plugin and the other plugins still run, the
 * process goes on) and to end in an engine alert naming the rule:
 *   - reaching for what is not there at run time: os.execute, io.open,
 *     package.loadlib, debug.sethook, string.dump and ('').dump, bytecode
 *     through load();
 *   - string metatable tricks: writing to getmetatable(''), setmetatable
 *     on a string, and a plugin that rewrites its string/table libraries
 *     (which must not reach another plugin);
 *   - deep recursion: plain Lua recursion, recursion through an __index
 *     function, through string.gsub callbacks, through __tostring, and
 *     through pcall;
 *   - coroutine tricks to dodge the instruction budget: many short
 *     coroutines, each ending before the count hook would fire in it;
 *   - string.rep memory bombs beyond test_sandbox's: a separator, and a
 *     count whose product overflows;
 *   - catastrophic patterns through string.gsub and string.match (find and
 *     gmatch are in test_sandbox).
 * test_sandbox.c covers the rest (absence at load time, bytecode refusal
 * at load and in require, pcall/xpcall/coroutine loops, __gc, memory,
 * find/gmatch patterns). */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "ingest.h"
#include "rules.h"
#include "store.h"
#include "test.h"

static char base[] = "/tmp/pv_test_sandbox_attacks.XXXXXX";
#include "rule_harness.h"

/* One rule on one lab code, as an item of a list. */
#define RULE(name, code, body)                                                 \
    "pv.rule { name = '" name "', signal = 'test', on = { lab = { '" code      \
    "' } },\n  when = function(obs)\n" body "\n  end },\n"
#define FIRE(title)                                                            \
    "    return pv.alert { severity = 'low', title = '" title                  \
    "', key = tostring(obs.id) }"

/* Each attack rule is followed, in the same plugin, by a rule on the same
 * code that must still fire ("ok" rules), and another plugin has one too. */
struct attack {
    const char *rule, *code, *phrases;
};

static void run_attacks(pv_ingest *p, const struct attack *a, size_t n,
                        const char *patient)
{
    for (size_t i = 0; i < n; i++) {
        long long before_ok = alerts_of(p, "x.ok", "test");
        long long before_other = alerts_of(p, "y.other", "test");
        long long obs = q_int(p, "SELECT count(*) FROM observations");
        lab(p, patient, a[i].code, 1);
        CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), obs + 1);
        CHECK_INT(alerts_of(p, a[i].rule, "test"), 0);
        expect_engine_alert_of(p, a[i].rule, patient, a[i].phrases);
        /* The neighbours in the same plugin and in another one still ran. */
        CHECK_INT(alerts_of(p, "x.ok", "test"), before_ok + 1);
        CHECK_INT(alerts_of(p, "y.other", "test"), before_other + 1);
    }
}

/* The trigger codes every "ok" rule listens to. */
#define OK_CODES                                                               \
    "'EXEC-1', 'IO-1', 'LOADLIB-1', 'DEBUG-1', 'DUMP-1', 'DUMP-2', 'BC-1', "   \
    "'META-1', 'META-2', 'REC-1', 'REC-2', 'REC-3', 'REC-4', 'CO-1', "         \
    "'CO-2', 'REP-1', 'REP-2', 'PAT-1', 'PAT-2', 'PAT-3'"

static const char ok_rules[] =
    "pv.rule { name = 'x.ok', signal = 'test', on = { lab = { " OK_CODES
    " } },\n"
    "  when = function(obs)\n"
    "    return pv.alert { severity = 'low', title = 'still here', key = "
    "tostring(obs.id) }\n"
    "  end },\n";

static const char other_plugin[] =
    "return pv.rule { name = 'y.other', signal = 'test', on = { lab = "
    "{ " OK_CODES " } },\n"
    "  when = function(obs)\n"
    "    -- string and table as every plugin has them, whatever another\n"
    "    -- plugin did to its own.\n"
    "    local s = string.format('%s-%d', 'x', 1) .. ('ab'):rep(2)\n"
    "    assert(s == 'x-1abab', s)\n"
    "    assert(table.concat({ 'a', 'b' }, ',') == 'a,b')\n"
    "    assert(('A'):lower() == 'a')\n"
    "    return pv.alert { severity = 'low', title = 'other plugin', key = "
    "tostring(obs.id) }\n"
    "  end }\n";

/* ---------------------------------------------------------------------- */
/* Reaching for what is not there                                          */

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    pv_buf_append(ud, p, sz);
    return 0;
}

static void test_reach(void)
{
    use_plugin_dir("reach");
    char marker[PATH_MAX + 32];
    snprintf(marker, sizeof marker, "%s/pwned", base);
    pv_buf src = PV_BUF_INIT;
    pv_buf_puts(&src, "return {\n");
    pv_buf_printf(&src,
                  RULE("a.os_execute", "EXEC-1",
                       "    os.execute('touch %s')\n" FIRE("executed")),
                  marker);
    pv_buf_puts(
        &src,
        RULE("a.io_open", "IO-1",
             "    local f = io.open('/etc/passwd')\n" FIRE("opened"))
            RULE("a.loadlib", "LOADLIB-1",
                 "    local f = package.loadlib('libc.so.6', 'system')\n"
                 "    f('true')\n" FIRE("loaded")) RULE("a.debug", "DEBUG-1",
                                                        "    debug.sethook()\n"
                                                        "    while true do end")
                RULE("a.dump", "DUMP-1",
                     "    local bc = string.dump(function() end)\n" FIRE(
                         "dumped"))
                    RULE("a.dump_method", "DUMP-2",
                         "    local bc = ('').dump(function() end)\n" FIRE(
                             "dumped")) RULE("a.bytecode", "BC-1",
                                             "    local bc = BYTECODE\n"
                                             "    local f = assert(load(bc))\n"
                                             "    f()\n" FIRE("bytecode ran")));
    pv_buf_puts(&src, ok_rules);
    pv_buf_puts(&src, "}\n");

    /* Real bytecode, as a Lua string literal of decimal escapes. */
    pv_buf raw = PV_BUF_INIT, lit = PV_BUF_INIT;
    lua_State *L = luaL_newstate();
    if (!L || luaL_loadstring(L, "return 42") != LUA_OK)
        die("luaL_loadstring");
    lua_dump(L, dump_writer, &raw, 0);
    lua_close(L);
    pv_buf_puts(&lit, "\"");
    for (size_t i = 0; i < raw.len; i++)
        pv_buf_printf(&lit, "\\%u", (unsigned char)raw.ptr[i]);
    pv_buf_puts(&lit, "\"");
    const char *s = pv_buf_cstr(&src);
    const char *mark = strstr(s, "BYTECODE");
    pv_buf final = PV_BUF_INIT;
    pv_buf_append(&final, s, (size_t)(mark - s));
    pv_buf_puts(&final, pv_buf_cstr(&lit));
    pv_buf_puts(&final, mark + strlen("BYTECODE"));
    write_plugin("a_reach.lua", pv_buf_cstr(&final));
    write_plugin("b_other.lua", other_plugin);
    pv_buf_free(&src);
    pv_buf_free(&raw);
    pv_buf_free(&lit);
    pv_buf_free(&final);

    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    const struct attack attacks[] = {
        {"a.os_execute", "EXEC-1", "execute"},
        {"a.io_open", "IO-1", "'io'"},
        {"a.loadlib", "LOADLIB-1", "'package'"},
        {"a.debug", "DEBUG-1", "'debug'"},
        {"a.dump", "DUMP-1", "dump"},
        {"a.dump_method", "DUMP-2", "dump"},
        {"a.bytecode", "BC-1", "binary chunk|text chunks"},
    };
    run_attacks(p, attacks, sizeof attacks / sizeof attacks[0], "P1");
    CHECK(access(marker, F_OK) != 0);
    pv_ingest_close(p);
}

/* ---------------------------------------------------------------------- */
/* String metatable tricks                                                 */

static void test_string_meta(void)
{
    use_plugin_dir("meta");
    pv_buf src = PV_BUF_INIT;
    pv_buf_puts(&src,
                "return {\n" RULE(
                    "a.meta_write", "META-1",
                    "    local mt = getmetatable('')\n"
                    "    mt.__index = function() return os.execute end\n" FIRE(
                        "metatable written"))
                    RULE("a.meta_set", "META-2",
                         "    setmetatable('', { __index = {} })\n" FIRE(
                             "metatable set"))
                /* Rewrites its own libraries: contained to this plugin. */
                RULE("a.poison", "META-1",
                     "    string.format = function() return 'poisoned' end\n"
                     "    string.rep = nil\n"
                     "    table.concat = function() error('poisoned') end\n"
                     "    rawset(string, 'lower', nil)\n"
                     "    return nil"));
    pv_buf_puts(&src, ok_rules);
    pv_buf_puts(&src, "}\n");
    write_plugin("a_meta.lua", pv_buf_cstr(&src));
    pv_buf_free(&src);
    write_plugin("b_other.lua", other_plugin);

    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    const struct attack attacks[] = {
        {"a.meta_write", "META-1", "boolean"},
        {"a.meta_set", "META-2", "setmetatable"},
    };
    run_attacks(p, attacks, sizeof attacks / sizeof attacks[0], "P2");
    /* The poisoning rule ran (no alert, no error); the other plugin's
     * string and table were untouched (y.other asserts on them and fired
     * in run_attacks), and a second round still works. */
    CHECK_INT(alerts_of(p, "a.poison", "engine"), 0);
    lab(p, "P2b", "META-1", 2);
    CHECK_INT(alerts_of(p, "y.other", "test"), 3);
    CHECK_INT(alerts_of(p, "y.other", "engine"), 0);
    pv_ingest_close(p);
}

/* ---------------------------------------------------------------------- */
/* Deep recursion                                                          */

static void test_recursion(void)
{
    use_plugin_dir("recursion");
    pv_buf src = PV_BUF_INIT;
    pv_buf_puts(
        &src,
        "return {\n" RULE("a.recurse", "REC-1",
                          "    local function f(n) return f(n + 1) + 1 end\n"
                          "    f(1)\n" FIRE("recursion returned"))
            RULE("a.recurse_index", "REC-2",
                 "    local t = setmetatable({}, { __index = function(t, k) "
                 "return t[k] end })\n"
                 "    local v = t.x\n" FIRE("index returned"))
                RULE("a.recurse_gsub", "REC-3",
                     "    local function f(s) return (string.gsub(s, '.', "
                     "f)) end\n"
                     "    f('abc')\n" FIRE("gsub returned"))
                    RULE(
                        "a.recurse_tostring", "REC-4",
                        "    local t = {}\n"
                        "    setmetatable(t, { __tostring = function(x) "
                        "return 'x' .. tostring(x) end })\n"
                        "    local s = tostring(t)\n" FIRE("tostring returned"))
        /* Recursion through pcall: each level catches the overflow of the
         * one below, so it returns; it must do so without a crash. */
        RULE("a.recurse_pcall", "REC-1",
             "    local depth = 0\n"
             "    local function f() depth = depth + 1; pcall(f) end\n"
             "    f()\n"
             "    return pv.alert { severity = 'low', title = 'pcall "
             "recursion ended', detail = tostring(depth > 100), key = "
             "tostring(obs.id) }"));
    pv_buf_puts(&src, ok_rules);
    pv_buf_puts(&src, "}\n");
    write_plugin("a_rec.lua", pv_buf_cstr(&src));
    pv_buf_free(&src);
    write_plugin("b_other.lua", other_plugin);

    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    const char *overflow = "stack overflow|memory|error in error handling";
    const struct attack attacks[] = {
        {"a.recurse", "REC-1", overflow},
        {"a.recurse_index", "REC-2", overflow},
        {"a.recurse_gsub", "REC-3", overflow},
        {"a.recurse_tostring", "REC-4", overflow},
    };
    run_attacks(p, attacks, sizeof attacks / sizeof attacks[0], "P3");
    /* The pcall recursion ended by itself (or as an engine alert): one
     * outcome, no crash. */
    CHECK_INT(alerts_of(p, "a.recurse_pcall", "test") +
                  alerts_of(p, "a.recurse_pcall", "engine"),
              1);
    /* And the plugin is usable afterwards. */
    lab(p, "P3b", "REC-1", 2);
    CHECK_INT(alerts_of(p, "x.ok", "test"), 5);
    pv_ingest_close(p);
}

/* ---------------------------------------------------------------------- */
/* Coroutine tricks against the instruction budget                        */

static void test_coroutine_budget(void)
{
    long saved = cfg.limits.rule_instructions;
    cfg.limits.rule_instructions = 200000;
    use_plugin_dir("coroutines");
    pv_buf src = PV_BUF_INIT;
    /* Each coroutine runs about 900 instructions and ends: if only the
     * thread that runs out of a count of 1000 paid, they would all be
     * free. 5000 of them are over 20 times the budget. */
    pv_buf_puts(&src, "return {\n" RULE(
                          "a.co_burst", "CO-1",
                          "    local function burst() for j = 1, 900 do end "
                          "end\n"
                          "    for i = 1, 5000 do coroutine.wrap(burst)() "
                          "end\n" FIRE("5000 short coroutines ran"))
                /* Nested: each coroutine starts more short ones. */
                RULE("a.co_nested", "CO-2",
                     "    local function burst() for j = 1, 900 do end end\n"
                     "    local function fan() for i = 1, 100 do "
                     "coroutine.wrap(burst)() end end\n"
                     "    for i = 1, 100 do coroutine.wrap(fan)() end\n" FIRE(
                         "10000 nested coroutines ran")));
    pv_buf_puts(&src, ok_rules);
    pv_buf_puts(&src, "}\n");
    write_plugin("a_co.lua", pv_buf_cstr(&src));
    pv_buf_free(&src);
    write_plugin("b_other.lua", other_plugin);

    pv_ingest *p = open_pipeline();
    if (p) {
        const struct attack attacks[] = {
            {"a.co_burst", "CO-1", "budget"},
            {"a.co_nested", "CO-2", "budget"},
        };
        run_attacks(p, attacks, sizeof attacks / sizeof attacks[0], "P4");
        pv_ingest_close(p);
    }
    cfg.limits.rule_instructions = saved;
}

/* ---------------------------------------------------------------------- */
/* string.rep bombs and catastrophic patterns                              */

static void test_rep_and_patterns(void)
{
    long saved = cfg.limits.rule_memory;
    cfg.limits.rule_memory = 2 * 1024 * 1024;
    use_plugin_dir("rep_patterns");
    pv_buf src = PV_BUF_INIT;
    pv_buf_puts(
        &src,
        "return {\n" RULE("a.rep_sep", "REP-1",
                          "    local s = string.rep('ab', 1e8, ',')\n" FIRE(
                              "rep with separator survived"))
            RULE("a.rep_huge", "REP-2",
                 "    local s = ('xy'):rep(math.maxinteger // 2 + 1)\n" FIRE(
                     "huge rep survived"))
                RULE("a.gsub", "PAT-1",
                     "    local s = ('a'):rep(100000)\n"
                     "    string.gsub(s, 'a-a-a-b', '')\n" FIRE("gsub ran"))
                    RULE("a.match", "PAT-2",
                         "    local s = ('a'):rep(100000)\n"
                         "    s:match('.-.-.-b')\n" FIRE("match ran"))
                        RULE("a.balance", "PAT-3",
                             "    local s = ('('):rep(50000)\n"
                             "    s:find('%b()%b()%b()x')\n" FIRE(
                                 "balance ran")));
    pv_buf_puts(&src, ok_rules);
    pv_buf_puts(&src, "}\n");
    write_plugin("a_rep.lua", pv_buf_cstr(&src));
    pv_buf_free(&src);
    write_plugin("b_other.lua", other_plugin);

    pv_ingest *p = open_pipeline();
    if (p) {
        const struct attack attacks[] = {
            {"a.rep_sep", "REP-1", "memory"},
            {"a.rep_huge", "REP-2", "memory|too large"},
            {"a.gsub", "PAT-1", "too long"},
            {"a.match", "PAT-2", "too long"},
            {"a.balance", "PAT-3", "too long"},
        };
        run_attacks(p, attacks, sizeof attacks / sizeof attacks[0], "P5");
        pv_ingest_close(p);
    }
    cfg.limits.rule_memory = saved;
}

int main(void)
{
    harness_init();

    test_reach();
    test_string_meta();
    test_recursion();
    test_coroutine_budget();
    test_rep_and_patterns();

    harness_done();
    return pv_test_report();
}
