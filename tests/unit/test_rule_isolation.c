/* test_rule_isolation: the regressions of issue 20 part 1 (a rule's failed
 * history query handed the next patient another patient's results) and of
 * issue 22 items 1, 2, 3, 5, 17 and 18 (a rule author could crash, freeze
 * or stall the engine). Each case is named after the bug it pins; each
 * ingests real labs through the pipeline on an in-memory database and
 * checks what was stored and which alerts came out. */
#include <stdarg.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "ingest.h"
#include "rules.h"
#include "store.h"
#include "test.h"

static char base[] = "/tmp/pv_test_rule_isolation.XXXXXX";
#include "rule_harness.h"

/* n Hb results of a patient stored without running the rules (the
 * history a rule then reads in one query). */
static void store_history(pv_ingest *p, const char *pid, int n, double value)
{
    pv_store *s = pv_ingest_store(p);
    CHECK_INT(pv_store_begin(s), 0);
    for (int i = 0; i < n; i++) {
        pv_obs o = {.patient_id = pid,
                    .code = "718-7",
                    .value_text = "x",
                    .has_num = 1,
                    .value_num = value,
                    .unit = "g/dL",
                    .at = 1760000000 + i};
        if (pv_store_add_obs(s, &o, NULL) != 0) {
            PV_FAIL_("store_history: row %d", i);
            break;
        }
    }
    CHECK_INT(pv_store_commit(s), 0);
}

__attribute__((format(printf, 2, 3))) static long long
count_sql(pv_ingest *p, const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return q_int(p, sql);
}

/* The rule of the issue's reproduction: it alerts when any Hb row it
 * reads differs from the triggering one, or when it reads none. */
#define HB_RULE(name, read)                                                    \
    "return pv.rule { name = '" name "', signal = 'test',\n"                   \
    "  on = { lab = { '718-7' } },\n"                                          \
    "  when = function(obs, patient)\n"                                        \
    "    " read "\n"                                                           \
    "    if #rows == 0 then\n"                                                 \
    "      return pv.alert { severity = 'high', title = 'no rows' }\n"         \
    "    end\n"                                                                \
    "    for _, r in ipairs(rows) do\n"                                        \
    "      if r.value ~= obs.value then\n"                                     \
    "        return pv.alert { severity = 'high', title = 'foreign row ' ..\n" \
    "          tostring(r.value) }\n"                                          \
    "      end\n"                                                              \
    "    end\n"                                                                \
    "  end }\n"

static void run_hb_case(const char *dir, const char *rule, const char *src,
                        long long p1_engine)
{
    use_plugin_dir(dir);
    write_plugin("hb.lua", src);
    long saved = cfg.limits.rule_memory;
    cfg.limits.rule_memory = 256 * 1024;
    pv_ingest *p = open_pipeline();
    cfg.limits.rule_memory = saved;
    if (!p)
        return;
    store_history(p, "P1", 3000, 13.5);
    lab(p, "P1", "718-7", 13.5);
    lab(p, "P2", "718-7", 9.1);
    lab(p, "P2", "718-7", 9.1);
    /* P1's query ran out of memory: an engine alert (or, caught by the
     * rule's pcall, nothing). */
    CHECK_INT(count_sql(p,
                        "SELECT count(*) FROM alerts WHERE patient_id = 'P1' "
                        "AND signal = 'engine' AND rule = '%s'",
                        rule),
              p1_engine);
    /* P2 saw its own rows, and only them: no 'no rows', no foreign row. */
    CHECK_INT(count_sql(p,
                        "SELECT count(*) FROM alerts WHERE patient_id = 'P2' "
                        "AND rule = '%s'",
                        rule),
              0);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), 3003);
    pv_ingest_close(p);
}

static void issue20_history_after_memory_error(void)
{
    run_hb_case("i20plain", "t.hb",
                HB_RULE("t.hb", "local rows = patient:labs('718-7')"), 1);
}

static void issue20_history_after_caught_memory_error(void)
{
    run_hb_case("i20pcall", "t.hbp",
                HB_RULE("t.hbp",
                        "local ok, rows = pcall(patient.labs, patient, "
                        "'718-7')\n    if not ok then return nil end"),
                0);
}

/* A rule fills its state to the cap inside pcall and returns normally;
 * the next fact used to abort the process while it was pushed. Now every
 * call is protected, and a state still above 90 % of its cap after a
 * collection is rebuilt from its plugin: each call starts with an empty
 * 'keep' again. */
static void issue22_item01_memory_cap_abort(void)
{
    use_plugin_dir("i22m");
    write_plugin("fill.lua",
                 "keep = {}\n"
                 "return pv.rule { name = 't.fill', signal = 'test',\n"
                 "  on = { lab = { '751-8' } },\n"
                 "  when = function(obs)\n"
                 "    pv.state.set('before ' .. obs.id, #keep)\n"
                 "    pcall(function()\n"
                 "      while true do keep[#keep + 1] = {} end\n"
                 "    end)\n"
                 "  end }\n");
    long saved = cfg.limits.rule_memory;
    cfg.limits.rule_memory = 256 * 1024;
    pv_ingest *p = open_pipeline();
    cfg.limits.rule_memory = saved;
    if (!p)
        return;
    for (int i = 0; i < 3; i++)
        lab(p, "P1", "751-8", 0.4 + i);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), 3);
    CHECK_INT(q_int(p, "SELECT count(*) FROM rule_state WHERE rule = "
                       "'t.fill' AND value = '0'"),
              3);
    pv_ingest_close(p);
}

/* Loading must fail cleanly (no hang, no crash) and name the file. */
static void expect_load_error(const char *dir, const char *file,
                              const char *src, const char *phrase)
{
    use_plugin_dir(dir);
    if (src)
        write_plugin(file, src);
    pv_ingest *p = NULL;
    pv_buf errors = PV_BUF_INIT;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pv_ingest_open(&cfg, ":memory:", 0, &p, &errors);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(rc != 0);
    CHECK(t1.tv_sec - t0.tv_sec < 10);
    const char *e = pv_buf_cstr(&errors) ? pv_buf_cstr(&errors) : "";
    if (strstr(e, phrase) && strstr(e, file))
        pv_test_passed++;
    else
        PV_FAIL_("%s: load error lacks '%s': %s", dir, phrase, e);
    pv_ingest_close(p);
    pv_buf_free(&errors);
}

static void issue22_item02_rule_metatable(void)
{
    /* The metatable is out of reach, so a rule cannot be forged... */
    expect_load_error("i22r1", "forge.lua",
                      "local mt = getmetatable(pv.rule { name = 'a', signal "
                      "= 's', on = { lab = { '1-1' } }, when = function() "
                      "end })\n"
                      "assert(mt == false, 'metatable reachable')\n"
                      "return setmetatable({ labs = { '1-1' } }, {\n"
                      "  __index = function(t, k) while true do end end })\n",
                      "returned no rules");
    /* ...and one whose fields were removed after pv.rule is refused. */
    expect_load_error("i22r2", "strip.lua",
                      "local r = pv.rule { name = 'b', signal = 's', on = { "
                      "lab = { '1-1' } }, when = function() end }\n"
                      "rawset(r, 'name', nil)\n"
                      "return r\n",
                      "name");
}

static void issue22_item03_many_lab_codes(void)
{
    use_plugin_dir("i22codes");
    pv_buf src = PV_BUF_INIT;
    pv_buf_puts(&src, "local codes = {}\n"
                      "for i = 1, 600 do codes[i] = 'X' .. i end\n"
                      "return pv.rule { name = 't.many', signal = 'test',\n"
                      "  on = { lab = codes },\n"
                      "  when = function(obs)\n"
                      "    return pv.alert { severity = 'low', title = "
                      "obs.code, key = obs.code }\n"
                      "  end }\n");
    write_plugin("many.lua", pv_buf_cstr(&src));
    pv_buf_free(&src);
    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    lab(p, "P1", "X599", 1);
    lab(p, "P1", "X1", 1);
    lab(p, "P1", "X601", 1);
    CHECK_INT(alerts_of(p, "t.many", "test"), 2);
    pv_ingest_close(p);
}

static void issue22_item05_forged_alert(void)
{
    use_plugin_dir("i22a");
    write_plugin(
        "forge.lua",
        "return {\n"
        "pv.rule { name = 't.forge', signal = 'test', on = { lab = { "
        "'751-8' } },\n"
        "  when = function(obs)\n"
        "    local mt = getmetatable(pv.alert { severity = 'low', title = "
        "'t' })\n"
        "    return setmetatable({ severity = 'URGENT!!', title = 'x' }, mt)\n"
        "  end },\n"
        "pv.rule { name = 't.mutate', signal = 'test', on = { lab = { "
        "'751-8' } },\n"
        "  when = function(obs)\n"
        "    local a = pv.alert { severity = 'low', title = 't' }\n"
        "    a.severity = 'URGENT!!'\n"
        "    return a\n"
        "  end },\n"
        "pv.rule { name = 't.grade', signal = 'test', on = { lab = { "
        "'751-8' } },\n"
        "  when = function(obs)\n"
        "    local a = pv.alert { severity = 'low', title = 't' }\n"
        "    a.grade = 2^62\n"
        "    return a\n"
        "  end },\n"
        "pv.rule { name = 't.good', signal = 'test', on = { lab = { "
        "'751-8' } },\n"
        "  when = function(obs)\n"
        "    return pv.alert { severity = 'low', title = 'fine', grade = 2 }\n"
        "  end },\n"
        "}\n");
    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    lab(p, "P1", "751-8", 0.4);
    CHECK_INT(q_int(p, "SELECT count(*) FROM observations"), 1);
    CHECK_INT(alerts_of(p, "t.forge", "engine"), 1);
    CHECK_INT(alerts_of(p, "t.mutate", "engine"), 1);
    CHECK_INT(alerts_of(p, "t.grade", "engine"), 1);
    CHECK_INT(alerts_of(p, "t.good", "test"), 1);
    CHECK_INT(q_int(p, "SELECT grade FROM alerts WHERE rule = 't.good'"), 2);
    pv_ingest_close(p);
}

static void issue22_item17_float_casts(void)
{
    use_plugin_dir("i22f");
    write_plugin(
        "casts.lua",
        "local function r(name, body)\n"
        "  return pv.rule { name = name, signal = 'test', on = { lab = { "
        "'751-8' } },\n"
        "    when = function(obs, patient) body(patient) end }\n"
        "end\n"
        "return {\n"
        "  r('t.iso', function() return pv.iso(1e300) end),\n"
        "  r('t.nan', function(p) return p:labs('751-8', { since = 0/0 }) "
        "end),\n"
        "  r('t.inf', function(p) return p:labs('751-8', { ['until'] = "
        "math.huge }) end),\n"
        "}\n");
    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    lab(p, "P1", "751-8", 0.4);
    CHECK_INT(alerts_of(p, "t.iso", "engine"), 1);
    CHECK_INT(alerts_of(p, "t.nan", "engine"), 1);
    CHECK_INT(alerts_of(p, "t.inf", "engine"), 1);
    pv_ingest_close(p);
}

static void issue22_item18_plugin_not_regular(void)
{
    use_plugin_dir("i22fifo");
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/fifo.lua", plugdir);
    CHECK_INT(mkfifo(path, 0600), 0);
    use_plugin_dir("i22zero");
    snprintf(path, sizeof path, "%s/zero.lua", plugdir);
    CHECK_INT(symlink("/dev/zero", path), 0);
    pv_strlist_free(&cfg.plugins);
    char fifo_dir[PATH_MAX];
    snprintf(fifo_dir, sizeof fifo_dir, "%s/i22fifo", base);
    pv_strlist_add(&cfg.plugins, fifo_dir);
    pv_strlist_add(&cfg.plugins, plugdir);
    pv_ingest *p = NULL;
    pv_buf errors = PV_BUF_INIT;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(pv_ingest_open(&cfg, ":memory:", 0, &p, &errors) != 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 10);
    const char *e = pv_buf_cstr(&errors) ? pv_buf_cstr(&errors) : "";
    CHECK(strstr(e, "fifo.lua: not a regular file") != NULL);
    CHECK(strstr(e, "zero.lua: not a regular file") != NULL);
    pv_ingest_close(p);
    pv_buf_free(&errors);
}

int main(void)
{
    harness_init();

    const char *only = getenv("PV_TEST_ONLY");
#define RUN(fn)                                                                \
    if (!only || strcmp(only, #fn) == 0)                                       \
    fn()
    RUN(issue20_history_after_memory_error);
    RUN(issue20_history_after_caught_memory_error);
    RUN(issue22_item01_memory_cap_abort);
    RUN(issue22_item02_rule_metatable);
    RUN(issue22_item03_many_lab_codes);
    RUN(issue22_item05_forged_alert);
    RUN(issue22_item17_float_casts);
    RUN(issue22_item18_plugin_not_regular);

    harness_done();
    return pv_test_report();
}
