/* test_sandbox: the Lua rule sandbox and its limits. Plugins are written
 * into temporary directories and loaded with pv_rules_load (directly, or
 * through pv_ingest_open on an in-memory database); labs are fed through
 * pv_ingest and the alerts table is read back. Covers: every forbidden
 * library and loader absent, binary chunks refused, require confined to
 * scripts/, the instruction budget (also against pcall, xpcall and
 * coroutines), the memory cap, a failing rule not stopping the others, and
 * the load errors of broken plugins and duplicate rule names. */
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

static char base[] = "/tmp/pv_test_sandbox.XXXXXX";
#include "rule_harness.h"

/* The engine alert of a rule: its key, severity and detail, checked
 * against a phrase the failure must name. */
static void expect_engine_alert(pv_ingest *p, const char *rule,
                                const char *patient, const char *phrase)
{
    char sql[512], buf[2048];
    CHECK_INT(alerts_of(p, rule, "engine"), 1);
    snprintf(sql, sizeof sql,
             "SELECT patient_id || '|' || dedup_key || '|' || severity || "
             "'|' || status FROM alerts WHERE rule = '%s' AND signal = "
             "'engine'",
             rule);
    char want[256];
    snprintf(want, sizeof want, "%s|rule-error|high|open", patient);
    CHECK_STR(q_text(p, sql, buf, sizeof buf), want);
    snprintf(sql, sizeof sql,
             "SELECT title || ' / ' || detail FROM alerts WHERE rule = '%s' "
             "AND signal = 'engine'",
             rule);
    q_text(p, sql, buf, sizeof buf);
    if (strstr(buf, phrase) && strstr(buf, rule))
        pv_test_passed++;
    else
        PV_FAIL_("engine alert of %s lacks \"%s\": \"%s\"", rule, phrase, buf);
}

/* ---------------------------------------------------------------------- */
/* What a plugin can reach                                                 */

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    pv_buf_append(ud, p, sz);
    return 0;
}

/* Real bytecode for "return 42", as raw bytes and as a Lua string
 * literal made of decimal escapes. */
static void bytecode(pv_buf *raw, pv_buf *literal)
{
    lua_State *L = luaL_newstate();
    if (!L || luaL_loadstring(L, "return 42") != LUA_OK)
        die("luaL_loadstring");
    lua_dump(L, dump_writer, raw, 0);
    lua_close(L);
    pv_buf_puts(literal, "\"");
    for (size_t i = 0; i < raw->len; i++)
        pv_buf_printf(literal, "\\%u", (unsigned char)raw->ptr[i]);
    pv_buf_puts(literal, "\"");
}

/* The plugin fails to load, naming what it could reach, if anything
 * forbidden is there; it also checks that what is allowed works. */
static const char forbidden_plugin[] =
    "local bad = {}\n"
    "local function no(name, ok) if not ok then bad[#bad + 1] = name end "
    "end\n"
    "no('io', io == nil)\n"
    "no('_G.io', _G.io == nil and _G == _ENV)\n"
    "no('debug', debug == nil)\n"
    "no('package', package == nil)\n"
    "no('dofile', dofile == nil)\n"
    "no('loadfile', loadfile == nil)\n"
    "no('collectgarbage', collectgarbage == nil)\n"
    "no('prim', prim == nil and host == nil)\n"
    "for _, k in ipairs { 'execute', 'exit', 'remove', 'rename', 'getenv',\n"
    "                     'tmpname', 'setlocale' } do\n"
    "  no('os.' .. k, os[k] == nil)\n"
    "end\n"
    "no('os.time', type(os.time) == 'function' and type(os.time()) == "
    "'number')\n"
    "no('os.date', os.date('!%Y', 0) == '1970')\n"
    "no('os.clock', type(os.clock()) == 'number')\n"
    "no('string.dump', string.dump == nil and ('').dump == nil)\n"
    "no('string metatable', getmetatable('') == false)\n"
    "no('string.rep', ('ab'):rep(2) == 'abab')\n"
    "no('require ../x', not pcall(require, '../outside'))\n"
    "no('require /abs', not pcall(require, '/etc/passwd'))\n"
    "no('require outside', not pcall(require, 'outside'))\n"
    "no('require os', not pcall(require, 'os'))\n"
    "no('require io', not pcall(require, 'io'))\n"
    "no('require debug', not pcall(require, 'debug'))\n"
    "no('require bytecode', not pcall(require, 'evil'))\n"
    "no('require ctcae', type(require 'ctcae') == 'table')\n"
    "local bc = BYTECODE\n"
    "no('bytecode literal', bc:sub(1, 4) == '\\27Lua')\n"
    "no('load bytecode', load(bc) == nil)\n"
    "no('load bytecode b', load(bc, 'x', 'b') == nil)\n"
    "no('load bytecode bt', load(bc, 'x', 'bt') == nil)\n"
    "no('load bytecode env', load(bc, 'x', 't', {}) == nil)\n"
    "local parts = { bc }\n"
    "no('load bytecode reader', load(function() return table.remove(parts) "
    "end) == nil)\n"
    "no('load text', load('return 1 + 1')() == 2)\n"
    "no('xpcall', select(2, xpcall(error, function(m) return 'got ' .. m "
    "end, 'x')) == 'got x')\n"
    "no('xpcall ok', select(2, xpcall(function(a, b) return a + b end, "
    "print, 1, 2)) == 3)\n"
    "no('setmetatable', getmetatable(setmetatable({}, { __index = {} })) "
    "~= nil)\n"
    "no('load sees sandbox', load('return io')() == nil)\n"
    "no('coroutine io', coroutine.wrap(function() return io end)() == "
    "nil)\n"
    "if #bad > 0 then error('reachable: ' .. table.concat(bad, ', ')) end\n"
    "return pv.rule { name = 'sandbox.forbidden', signal = 'test',\n"
    "  on = { lab = { 'SB-1' } },\n"
    "  when = function(obs)\n"
    "    -- The same checks while a rule runs (the environment is the "
    "same).\n"
    "    if io or debug or package or os.execute or load(bc) then\n"
    "      return pv.alert { severity = 'low', title = 'reachable' }\n"
    "    end\n"
    "    return pv.alert { severity = 'low', title = 'sandboxed' }\n"
    "  end,\n"
    "}\n";

static void test_forbidden(void)
{
    pv_buf raw = PV_BUF_INIT, literal = PV_BUF_INIT;
    bytecode(&raw, &literal);

    /* A scripts directory with a bytecode module, and a module outside
     * every scripts directory. */
    char evil_dir[PATH_MAX], path[PATH_MAX + 64];
    snprintf(evil_dir, sizeof evil_dir, "%s/evil_scripts", base);
    if (mkdir(evil_dir, 0700) != 0)
        die(evil_dir);
    snprintf(path, sizeof path, "%s/evil.lua", evil_dir);
    write_bytes(path, raw.ptr, raw.len);
    snprintf(path, sizeof path, "%s/outside.lua", base);
    write_bytes(path, "return {}\n", 10);
    pv_strlist_add(&cfg.scripts, evil_dir);

    use_plugin_dir("forbidden");
    pv_buf src = PV_BUF_INIT;
    const char *mark = strstr(forbidden_plugin, "BYTECODE");
    pv_buf_append(&src, forbidden_plugin, (size_t)(mark - forbidden_plugin));
    pv_buf_puts(&src, pv_buf_cstr(&literal));
    pv_buf_puts(&src, mark + strlen("BYTECODE"));
    write_plugin("forbidden.lua", pv_buf_cstr(&src));

    pv_store *store = NULL;
    char err[256];
    CHECK_INT(pv_store_open(":memory:", &store, err, sizeof err), 0);
    pv_rules *rules = NULL;
    pv_buf errors = PV_BUF_INIT;
    CHECK_INT(pv_rules_load(&cfg, store, &rules, &errors), 0);
    CHECK_STR(pv_buf_cstr(&errors), "");
    CHECK(rules != NULL);
    if (rules) {
        CHECK_INT(pv_rules_count(rules), 1);
        CHECK_STR(pv_rules_name(rules, 0), "sandbox.forbidden");
    }
    pv_rules_free(rules);
    pv_store_close(store);
    pv_buf_free(&errors);

    pv_ingest *p = open_pipeline();
    if (p) {
        lab(p, "P1", "SB-1", 1);
        char buf[256];
        CHECK_STR(q_text(p,
                         "SELECT title FROM alerts WHERE rule = "
                         "'sandbox.forbidden'",
                         buf, sizeof buf),
                  "sandboxed");
        CHECK_INT(q_int(p, "SELECT count(*) FROM alerts"), 1);
        pv_ingest_close(p);
    }

    /* The sandbox test above must be able to fail: the same plugin with
     * io reachable is refused. */
    use_plugin_dir("forbidden_control");
    write_plugin("control.lua",
                 "local bad = {}\n"
                 "if string.rep then bad[1] = 'string.rep' end\n"
                 "if #bad > 0 then error('reachable: ' .. bad[1]) end\n");
    CHECK_INT(pv_store_open(":memory:", &store, err, sizeof err), 0);
    CHECK_INT(pv_rules_load(&cfg, store, &rules, &errors), PV_ELUA);
    CHECK(strstr(pv_buf_cstr(&errors), "reachable: string.rep") != NULL);
    CHECK(rules == NULL);
    pv_store_close(store);
    pv_buf_free(&errors);

    pv_strlist_free(&cfg.scripts);
    char scripts[PATH_MAX];
    snprintf(scripts, sizeof scripts, "%s/scripts",
             getenv("PV_SOURCE_DIR") ? getenv("PV_SOURCE_DIR") : PV_SOURCE_DIR);
    pv_strlist_add(&cfg.scripts, scripts);
    pv_buf_free(&src);
    pv_buf_free(&raw);
    pv_buf_free(&literal);
}

/* ---------------------------------------------------------------------- */
/* The instruction budget                                                  */

/* One rule on one lab code, as an expression (RULE1) or as an item of a
 * list (RULE). */
#define RULE1(name, code, body)                                                \
    "pv.rule { name = '" name "', signal = 'test', on = { lab = { '" code      \
    "' } },\n  when = function(obs, patient)\n" body "\n  end }\n"
#define RULE(name, code, body) RULE1(name, code, body) ",\n"

#define FIRE(title)                                                            \
    "    return pv.alert { severity = 'low', title = '" title                  \
    "', key = tostring(obs.id) }"

static void test_budget(void)
{
    long saved = cfg.limits.rule_instructions;
    cfg.limits.rule_instructions = 200000;
    use_plugin_dir("budget");
    /* a_loop.lua loads first, so its rules run before b_after's. */
    write_plugin(
        "a_loop.lua",
        "return {\n" RULE("t.loop", "LOOP-1", "    while true do end")
            RULE("t.same", "LOOP-1", FIRE("same plugin after loop")) RULE(
                "t.pcall", "PCALL-1",
                "    for i = 1, 1000 do\n"
                "      pcall(function() while true do end end)\n"
                "    end\n" FIRE("dodged with pcall"))
                RULE("t.pcall_loop", "PCALL-2",
                     "    while true do\n"
                     "      pcall(function() while true do end "
                     "end)\n"
                     "    end") RULE("t.xpcall", "XPCALL-1",
                                     "    xpcall(function() while true do end "
                                     "end,\n"
                                     "           function() while true do end "
                                     "end)\n" FIRE("dodged with xpcall"))
                    RULE("t.coroutine", "CO-1",
                         "    for i = 1, 1000 do\n"
                         "      coroutine.resume(coroutine."
                         "create(function()\n"
                         "        while true do end end))\n"
                         "    end\n" FIRE("dodged with "
                                          "coroutine"))
                        RULE("t.gc", "GC-1",
                             "    setmetatable({}, { __gc = "
                             "function()\n"
                             "      while true do end end })\n" FIRE(
                                 "gc accepted"))
                            RULE("t.gc_reach", "GC-2",
                                 "    local mt = getmetatable(obs)\n"
                                 "    local p = getmetatable(patient)\n"
                                 "    assert(mt == false and p == false)\n"
                                 "    assert(obs.__index == nil)\n"
                                 "    assert(patient.__index == nil)\n"
                                 "    for i = 1, 20000 do local t "
                                 "= {} end\n" FIRE("gc survived"))
                                RULE("t.pattern", "PAT-1",
                                     "    local s = ('a'):rep(200000)\n"
                                     "    s:find('.-.-.-b')\n" FIRE(
                                         "pattern ran"))
                                    RULE("t.gmatch", "PAT-2",
                                         "    local s = ('a'):rep(100000)\n"
                                         "    for w in s:gmatch('(a-)b') "
                                         "do end\n" FIRE("gmatch ran"))
                                        RULE("t.pattern_ok", "PAT-3",
                                             "    local v, u = ('  1.5 10*9/L')"
                                             ":gsub('^%s+', '')\n"
                                             "      :match('^(%d+%.?%d*)%s*"
                                             "(%S+)$')\n"
                                             "    assert(v == '1.5' and u == "
                                             "'10*9/L')\n"
                                             "    assert(('a'):rep(5000):find("
                                             "'a-b') == nil)\n"
                                             "    assert(('a'):rep(1e6):find("
                                             "'.-b', 1, true) == nil)\n"
                                             "    assert(select(2, ('x'):rep("
                                             "1e5):gsub('[x-y]', 'z')) == "
                                             "1e5)\n" FIRE("patterns work"))
                                            RULE(
                                                "t.error_loop", "ERRL-1",
                                                "    local n = 0\n"
                                                "    while true do\n"
                                                "      local ok = pcall(error, "
                                                "'x')\n"
                                                "      n = n + 1\n"
                                                "    end") "}\n");
    /* Half the budget per call, three calls: the budget is per call. */
    write_plugin(
        "b_after.lua",
        "return {\n" RULE("t.after", "LOOP-1", FIRE("other plugin after loop"))
            RULE("t.busy", "BUSY-1",
                 "    local n = 0\n"
                 "    for i = 1, 40000 do n = n + 1 end\n" FIRE(
                     "busy done")) "}\n");
    pv_ingest *p = open_pipeline();
    if (!p) {
        cfg.limits.rule_instructions = saved;
        return;
    }
    lab(p, "P1", "LOOP-1", 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations WHERE code = "
                       "'LOOP-1'"),
              1);
    expect_engine_alert(p, "t.loop", "P1", "instruction budget");
    /* The message points at the looping line of the plugin. */
    CHECK_INT(q_int(p, "SELECT count(*) FROM alerts WHERE rule = 't.loop' "
                       "AND detail LIKE '%a_loop.lua:4: instruction budget "
                       "of 200000 exceeded%'"),
              1);
    CHECK_INT(alerts_of(p, "t.same", "test"), 1);
    CHECK_INT(alerts_of(p, "t.after", "test"), 1);

    const char *dodgers[][2] = {
        {"t.pcall", "PCALL-1"},     {"t.pcall_loop", "PCALL-2"},
        {"t.xpcall", "XPCALL-1"},   {"t.coroutine", "CO-1"},
        {"t.error_loop", "ERRL-1"},
    };
    for (size_t i = 0; i < sizeof dodgers / sizeof dodgers[0]; i++) {
        lab(p, "P2", dodgers[i][1], 1);
        CHECK_INT(alerts_of(p, dodgers[i][0], "test"), 0);
        expect_engine_alert(p, dodgers[i][0], "P2", "budget");
    }

    /* Finalizers run with hooks off: none may be set. */
    lab(p, "P5", "GC-1", 1);
    expect_engine_alert(p, "t.gc", "P5", "__gc");
    CHECK_INT(alerts_of(p, "t.gc", "test"), 0);
    for (int i = 0; i < 3; i++)
        lab(p, "P5", "GC-2", i);
    CHECK_INT(alerts_of(p, "t.gc_reach", "test"), 3);

    /* Pattern matching runs in C, outside the budget: a pattern that
     * would backtrack for ever is refused. */
    lab(p, "P6", "PAT-1", 1);
    expect_engine_alert(p, "t.pattern", "P6", "too long");
    lab(p, "P6", "PAT-2", 1);
    expect_engine_alert(p, "t.gmatch", "P6", "too long");
    lab(p, "P6", "PAT-3", 1);
    CHECK_INT(alerts_of(p, "t.pattern_ok", "test"), 1);
    CHECK_INT(alerts_of(p, "t.pattern_ok", "engine"), 0);

    for (int i = 0; i < 3; i++)
        lab(p, "P3", "BUSY-1", i);
    CHECK_INT(alerts_of(p, "t.busy", "test"), 3);
    CHECK_INT(alerts_of(p, "t.busy", "engine"), 0);

    /* After all that, the plugin whose rules looped still works. */
    lab(p, "P4", "LOOP-1", 2);
    CHECK_INT(alerts_of(p, "t.same", "test"), 2);
    CHECK_INT(alerts_of(p, "t.after", "test"), 2);
    /* The looping rule failed again: a second engine alert for P4. */
    CHECK_INT(alerts_of(p, "t.loop", "engine"), 2);

    pv_rules_stats st;
    pv_rules_stats_get(pv_ingest_rules(p), &st);
    CHECK_INT(st.errors, 10);
    pv_ingest_close(p);
    cfg.limits.rule_instructions = saved;
}

/* ---------------------------------------------------------------------- */
/* The memory cap                                                          */

static void test_memory(void)
{
    long saved = cfg.limits.rule_memory;
    cfg.limits.rule_memory = 2 * 1024 * 1024;
    use_plugin_dir("memory");
    write_plugin(
        "a_bombs.lua",
        "return {\n" RULE("m.rep", "REP-1",
                          "    local s = string.rep('x', 64 * 1024 "
                          "* 1024)\n" FIRE("rep survived"))
            RULE("m.table", "TAB-1",
                 "    local t = {}\n"
                 "    for i = 1, 1e8 do t[i] = i end\n" FIRE("table survived"))
                RULE("m.concat", "CAT-1",
                     "    local s = 'x'\n"
                     "    while true do s = s .. s end")
                    RULE("m.pcall", "PC-1",
                         "    for i = 1, 5 do\n"
                         "      pcall(string.rep, 'x', 64 * 1024 * "
                         "1024)\n"
                         "    end\n"
                         "    local t = {}\n"
                         "    for i = 1, 1e8 do t[i] = {} end\n" FIRE(
                             "pcall survived"))
                        RULE("m.ok", "REP-1",
                             FIRE("same plugin after bomb")) "}\n");
    write_plugin(
        "b_after.lua",
        "return " RULE1("m.after", "REP-1", FIRE("other plugin after bomb")));
    pv_ingest *p = open_pipeline();
    if (!p) {
        cfg.limits.rule_memory = saved;
        return;
    }
    lab(p, "P1", "REP-1", 1);
    expect_engine_alert(p, "m.rep", "P1", "memory");
    CHECK_INT(alerts_of(p, "m.rep", "test"), 0);
    /* The bomb's memory was given back: the next rule of the same plugin
     * runs. */
    CHECK_INT(alerts_of(p, "m.ok", "test"), 1);
    CHECK_INT(alerts_of(p, "m.after", "test"), 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), 1);

    lab(p, "P2", "TAB-1", 1);
    expect_engine_alert(p, "m.table", "P2", "memory");
    CHECK_INT(alerts_of(p, "m.table", "test"), 0);
    lab(p, "P3", "CAT-1", 1);
    expect_engine_alert(p, "m.concat", "P3", "memory");
    lab(p, "P4", "PC-1", 1);
    expect_engine_alert(p, "m.pcall", "P4", "memory");
    CHECK_INT(alerts_of(p, "m.pcall", "test"), 0);

    lab(p, "P5", "REP-1", 2);
    CHECK_INT(alerts_of(p, "m.ok", "test"), 2);
    CHECK_INT(alerts_of(p, "m.after", "test"), 2);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), 5);
    pv_ingest_close(p);
    cfg.limits.rule_memory = saved;
}

/* A rule that keeps what it allocates (in a global) until the cap leaves
 * its plugin's state full: every later call of that plugin still ends in an
 * alert or an engine alert, never a Lua panic, and the other plugins are
 * untouched. */
static void test_memory_kept(void)
{
    long saved = cfg.limits.rule_memory;
    cfg.limits.rule_memory = 2 * 1024 * 1024;
    use_plugin_dir("memory_kept");
    write_plugin("a_hog.lua",
                 "return {\n" RULE("k.hog", "HOG-1",
                                   "    while true do KEEP = { next = KEEP "
                                   "} end")
                     RULE("k.next", "HOG-1", FIRE("after hog")) "}\n");
    write_plugin("b_other.lua",
                 "return " RULE1("k.other", "HOG-1", FIRE("other plugin")));
    pv_ingest *p = open_pipeline();
    if (!p) {
        cfg.limits.rule_memory = saved;
        return;
    }
    lab(p, "P1", "HOG-1", 1);
    lab(p, "P2", "HOG-1", 2);
    lab(p, "P3", "HOG-1", 3);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), 3);
    /* The hog fails each time; whatever its neighbour in the same plugin
     * does, it is an alert or an engine alert, and the other plugin is
     * untouched. */
    CHECK_INT(alerts_of(p, "k.hog", "engine"), 3);
    CHECK_INT(alerts_of(p, "k.next", "test") + alerts_of(p, "k.next", "engine"),
              3);
    CHECK_INT(alerts_of(p, "k.other", "test"), 3);
    pv_ingest_close(p);
    cfg.limits.rule_memory = saved;
}

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */

static void test_rule_error(void)
{
    use_plugin_dir("errors");
    write_plugin(
        "a_err.lua",
        "return {\n" RULE("e.boom", "ERR-1", "    error('boom: ' .. obs.code)")
            RULE("e.nil", "ERR-1", "    return obs.missing.field")
                RULE("e.bad_return", "ERR-1", "    return 42")
                    RULE("e.bad_alert", "ERR-1",
                         "    return pv.alert { severity = "
                         "'urgent', title = 'x' }")
                        RULE("e.ok", "ERR-1",
                             FIRE("same plugin still "
                                  "fires")) "}\n");
    write_plugin("b_ok.lua", "return " RULE1("e.other", "ERR-1",
                                             FIRE("other plugin fires")));
    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    int64_t id = lab(p, "P9", "ERR-1", 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations WHERE code = "
                       "'ERR-1' AND patient_id = 'P9'"),
              1);
    expect_engine_alert(p, "e.boom", "P9", "boom: ERR-1");
    expect_engine_alert(p, "e.nil", "P9", "missing");
    expect_engine_alert(p, "e.bad_return", "P9", "number");
    expect_engine_alert(p, "e.bad_alert", "P9", "urgent");
    CHECK_INT(alerts_of(p, "e.ok", "test"), 1);
    CHECK_INT(alerts_of(p, "e.other", "test"), 1);
    CHECK_INT(q_int(p, "SELECT count(*) FROM alerts"), 6);

    /* The engine alert names the record: its row id and code. */
    char sql[256], buf[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM alerts WHERE rule = 'e.boom' AND "
             "detail LIKE '%%row id %lld%%' AND evidence LIKE "
             "'%%\"code\":\"ERR-1\"%%'",
             (long long)id);
    CHECK_INT(q_int(p, sql), 1);
    /* The traceback goes to the log, not into the alert. */
    CHECK_STR(q_text(p,
                     "SELECT instr(detail, 'stack traceback') FROM alerts "
                     "WHERE rule = 'e.boom'",
                     buf, sizeof buf),
              "0");
    /* A second failure on the same patient repeats the open alert. */
    lab(p, "P9", "ERR-1", 2);
    CHECK_INT(alerts_of(p, "e.boom", "engine"), 1);
    CHECK_INT(q_int(p, "SELECT occurrences FROM alerts WHERE rule = "
                       "'e.boom'"),
              2);
    pv_ingest_close(p);
}

static void test_load_errors(void)
{
    use_plugin_dir("syntax");
    write_plugin("a_good.lua", "return " RULE1("s.good", "X-1", FIRE("fine")));
    write_plugin("b_broken.lua",
                 "-- a comment\n"
                 "local x = 1\n"
                 "return pv.rule { name = 'b' signal = 'x' }\n");
    expect_plugins_refused("@/b_broken.lua:3:", NULL);

    use_plugin_dir("runtime");
    write_plugin("r.lua", "local x = 1\nerror('not today')\n");
    expect_plugins_refused("@/r.lua:2:", "not today");

    use_plugin_dir("loop_at_load");
    write_plugin("l.lua", "while true do end\n");
    expect_plugins_refused("@/l.lua", "budget");

    use_plugin_dir("bad_return");
    write_plugin("n.lua", "return 42\n");
    expect_plugins_refused("@/n.lua", "pv.rule");

    use_plugin_dir("bad_rule");
    write_plugin("q.lua", "return pv.rule { name = 'q', signal = 'x' }\n");
    expect_plugins_refused("@/q.lua", "'when' is required");

    use_plugin_dir("bytecode_plugin");
    {
        pv_buf raw = PV_BUF_INIT, literal = PV_BUF_INIT;
        bytecode(&raw, &literal);
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/bc.lua", plugdir);
        write_bytes(path, raw.ptr, raw.len);
        expect_plugins_refused("@/bc.lua", "binary");
        pv_buf_free(&raw);
        pv_buf_free(&literal);
    }

    use_plugin_dir("dup_across");
    write_plugin("a.lua", "return " RULE1("dup.name", "X-1", FIRE("a")));
    write_plugin("b.lua", "return " RULE1("dup.name", "X-2", FIRE("b")));
    expect_plugins_refused("dup.name", "twice");

    use_plugin_dir("dup_within");
    write_plugin("a.lua", "return {\n" RULE("dup.same", "X-1", FIRE("a"))
                              RULE("dup.same", "X-1", FIRE("b")) "}\n");
    expect_plugins_refused("dup.same", "twice");

    /* A missing plugin directory is an error too. */
    snprintf(plugdir, sizeof plugdir, "%s/no_such_dir", base);
    pv_strlist_free(&cfg.plugins);
    pv_strlist_add(&cfg.plugins, plugdir);
    expect_plugins_refused("@", NULL);
}

int main(void)
{
    harness_init();

    test_forbidden();
    test_budget();
    test_memory();
    test_memory_kept();
    test_rule_error();
    test_load_errors();

    harness_done();
    return pv_test_report();
}
