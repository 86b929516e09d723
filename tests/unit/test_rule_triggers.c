/* Triggers that can never fire are load errors naming the file and the
 * rule (issue 21 part 2): an empty drug name or list, an unknown set name,
 * a drug no code set knows, 'every' <= 0, an 'on' with no trigger. And the
 * site module (scripts/site.lua): its codes.extend reaches the rules of
 * every plugin and the exposure gate in rules.c; a broken site module is a
 * load error naming its line; a plugin cannot extend the sets itself. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "error.h"
#include "ingest.h"
#include "rules.h"
#include "store.h"
#include "test.h"

static char base[] = "/tmp/pv_test_rule_triggers.XXXXXX";
#include "rule_harness.h"

#define FIRE                                                                   \
    "when = function() return pv.alert { severity = 'low', title = 't' } "     \
    "end }\n"

/* One plugin file t.lua with rule 'bad.trigger' and the given trigger. */
static void bad_trigger(const char *dir, const char *trigger, const char *why)
{
    use_plugin_dir(dir);
    char src[1024];
    snprintf(src, sizeof src,
             "local codes = require 'codes'\n"
             "return pv.rule { name = 'bad.trigger', signal = 'test',\n"
             "  %s,\n  " FIRE,
             trigger);
    write_plugin("t.lua", src);
    expect_plugins_refused("@/t.lua: rule bad.trigger: ", why);
}

static void test_never_fire(void)
{
    bad_trigger("empty_drug", "on = { exposure = '' }", "on.exposure is empty");
    bad_trigger("blank_drug", "on = { exposure = { 'baricitinib', '  ' } }",
                "on.exposure[2] is empty");
    bad_trigger("empty_drug_list", "on = { exposure = {} }",
                "on.exposure is an empty list");
    bad_trigger("empty_lab_list", "on = { lab = {} }",
                "on.lab is an empty list");
    bad_trigger("empty_event_list",
                "on = { event = {}, exposure = 'olumiant' }",
                "on.event is an empty list");
    bad_trigger("unknown_lab_set", "on = { lab = 'neutrofils' }",
                "on.lab: unknown code set 'neutrofils'");
    bad_trigger("unknown_event_set", "on = { event = { 'vte', 'vtee' } }",
                "on.event: unknown code set 'vtee'");
    bad_trigger("unknown_drug",
                "on = { lab = 'neutrophils', exposure = "
                "'baricitnib' }",
                "on.exposure 'baricitnib' is a drug no code set knows");
    bad_trigger("drug_not_string", "on = { exposure = { 'baricitinib', 4 } }",
                "on.exposure[2] must be a string");
    bad_trigger("no_known_key", "on = {}", "'on' names no trigger");
    bad_trigger("unknown_key", "on = { labs = 'neutrophils' }",
                "unknown trigger 'labs'");
    bad_trigger("every_zero", "every = '0d'", "'every' must be from 1s");
    bad_trigger("every_negative", "every = '-1d'", "'every' must look like");
    bad_trigger("every_number", "every = 0", "'every' must look like");

    /* Drug names and drug sets codes.lua knows load. */
    use_plugin_dir("known");
    write_plugin("k.lua",
                 "return pv.rule { name = 'k.ok', signal = 'test',\n"
                 "  on = { exposure = { 'Olumiant', 'immunosuppressants', "
                 "'probenecid', 'live_vaccines', 'prednisone', 'vax' } },\n"
                 "  " FIRE);
    pv_ingest *p = open_pipeline();
    CHECK(p != NULL);
    if (p)
        pv_ingest_close(p);
}

static void write_script(const char *dir, const char *name, const char *src)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, src, strlen(src));
}

static void exposure(pv_ingest *p, const char *pid, const char *code,
                     const char *system)
{
    pv_exposure e = {.patient_id = pid,
                     .drug = code,
                     .drug_code = code,
                     .code_system = system,
                     .start = 1767225600}; /* 2026-01-01 */
    int64_t id = 0;
    CHECK_INT(pv_ingest_begin(p), 0);
    CHECK_INT(pv_ingest_exposure(p, &e, &id), 0);
    CHECK_INT(pv_ingest_commit(p), 0);
}

static void test_site_module(void)
{
    char site[PATH_MAX];
    snprintf(site, sizeof site, "%s/site_scripts", base);
    if (mkdir(site, 0700) != 0)
        die(site);
    pv_strlist_add(&cfg.scripts, site);

    /* voclosporin (ATC L04AD03, UNVERIFIED: an example) becomes a potent
     * immunosuppressant: a rule naming it is gated by it (a.lua), and a
     * rule of another plugin on the whole set sees it (b.lua). */
    write_script(site, "site.lua",
                 "local codes = require 'codes'\n"
                 "codes.extend('immunosuppressants', {\n"
                 "  { name = 'voclosporin', atc = { 'L04AD03' } } })\n");
    use_plugin_dir("site_ok");
    write_plugin("a.lua", "return pv.rule { name = 'site.gated', signal = "
                          "'test',\n  on = { lab = { '751-8' }, exposure = "
                          "'voclosporin' },\n  " FIRE);
    write_plugin("b.lua", "return pv.rule { name = 'site.set', signal = "
                          "'test',\n  on = { exposure = 'immunosuppressants' "
                          "},\n  " FIRE);
    pv_ingest *p = open_pipeline();
    CHECK(p != NULL);
    if (p) {
        exposure(p, "P1", "L04AD03", "ATC");
        lab(p, "P1", "751-8", 0.9);
        lab(p, "P2", "751-8", 0.9); /* no exposure: the gate stops it */
        CHECK_INT(q_int(p, "SELECT count(*) FROM alerts WHERE rule = "
                           "'site.gated' AND patient_id = 'P1'"),
                  1);
        CHECK_INT(q_int(p, "SELECT count(*) FROM alerts WHERE rule = "
                           "'site.gated' AND patient_id = 'P2'"),
                  0);
        CHECK_INT(q_int(p, "SELECT count(*) FROM alerts WHERE rule = "
                           "'site.set' AND patient_id = 'P1'"),
                  1);
        CHECK_INT(alerts_of(p, "site.gated", "engine"), 0);
        pv_ingest_close(p);
    }

    /* A plugin cannot extend the sets for itself: they are sealed. */
    use_plugin_dir("plugin_extends");
    write_plugin("x.lua",
                 "local codes = require 'codes'\n"
                 "codes.extend('vte', { 'I80.2' })\n"
                 "return pv.rule { name = 'x.ext', signal = 'test', on = { "
                 "lab = 'neutrophils' },\n  " FIRE);
    expect_plugins_refused("@/x.lua:2:", "only by the site module");

    /* A misspelt set and a code of the wrong shape name the site line. */
    write_script(site, "site.lua",
                 "local codes = require 'codes'\n"
                 "codes.extend('immunosupressants', { 'voclosporin' })\n");
    use_plugin_dir("site_bad_set");
    write_plugin("c.lua", "return pv.rule { name = 'c.r', signal = 'test', "
                          "on = { lab = 'neutrophils' },\n  " FIRE);
    expect_plugins_refused(
        "site_scripts/site.lua:2: codes.extend('immunosupressants')"
        ": unknown set 'immunosupressants'",
        "@/c.lua");
    write_script(site, "site.lua",
                 "local codes = require 'codes'\n"
                 "codes.extend('neutrophils', { '751-8' })\n"
                 "codes.extend('vte', { '26499-4' })\n");
    use_plugin_dir("site_bad_shape");
    write_plugin("d.lua", "local codes = require 'codes'\n"
                          "return pv.rule { name = 'd.r', signal = 'test', "
                          "on = { event = 'vte' },\n  " FIRE);
    expect_plugins_refused(
        "site_scripts/site.lua:3: codes.extend('vte'): entry 1 "
        "'26499-4' is not an ICD-10-CM code",
        "@/d.lua");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/site.lua", site);
    unlink(path);
}

int main(void)
{
    harness_init();
    test_never_fire();
    test_site_module();
    harness_done();
    return pv_test_report();
}
