/* test_metrics_rules: the per-rule metrics as the rule engine bumps them
 * (core/rules.c run_call, core/alerts.c emit): calls, errors and budget
 * kills told apart by the limit that stopped the call, time, and alert
 * events; a reload keeps each name's counters. */
#include "metrics.h"
#include "test.h"

static char base[] = "/tmp/pv_test_metrics_rules.XXXXXX";
#include "rule_harness.h"

#define RULE(name, body)                                                       \
    "pv.rule { name = '" name                                                  \
    "', signal = 'test', on = { lab = { 'M-1' } },\n"                          \
    "  when = function(obs)\n" body "\n  end },\n"

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define CHECK_LINE(text, line)                                                 \
    do {                                                                       \
        if (has_line(text, line))                                              \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("missing line: %s", line);                                \
    } while (0)

static void test_rule_outcomes(void)
{
    long saved = cfg.limits.rule_memory;
    cfg.limits.rule_memory = 2 * 1024 * 1024;
    use_plugin_dir("rules");
    write_plugin("a.lua",
                 "return {\n" RULE("x.ok", "    return pv.alert { severity = "
                                           "'medium', title = 'T-SECRET' }")
                     RULE("x.err", "    error('boom')")
                         RULE("x.loop", "    while true do end")
                             RULE("x.mem",
                                  "    local t = {}\n"
                                  "    for i = 1, 1e8 do t[i] = i end") "}\n");
    pv_metrics_reset();
    pv_ingest *p = open_pipeline();
    if (!p) {
        cfg.limits.rule_memory = saved;
        return;
    }
    lab(p, "P-SECRET", "M-1", 1);
    lab(p, "P-SECRET", "M-1", 2); /* x.ok: the same alert, repeated */
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(pv_store_db(pv_ingest_store(p)), &b);
    const char *t = pv_buf_cstr(&b);
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.ok\"} 2");
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.err\"} 2");
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.loop\"} 2");
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.mem\"} 2");
    CHECK_LINE(t, "pvwatch_rule_errors_total{rule=\"x.ok\"} 0");
    CHECK_LINE(t, "pvwatch_rule_errors_total{rule=\"x.err\"} 2");
    CHECK_LINE(t, "pvwatch_rule_errors_total{rule=\"x.loop\"} 0");
    CHECK_LINE(t, "pvwatch_rule_errors_total{rule=\"x.mem\"} 0");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"x.loop\","
                  "limit=\"instructions\"} 2");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"x.loop\","
                  "limit=\"memory\"} 0");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"x.mem\","
                  "limit=\"memory\"} 2");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"x.mem\","
                  "limit=\"instructions\"} 0");
    CHECK_LINE(t, "pvwatch_rule_budget_kills_total{rule=\"x.err\","
                  "limit=\"time\"} 0");
    CHECK(!has_line(t, "pvwatch_rule_seconds_total{rule=\"x.loop\"} 0"));
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"x.ok\","
                  "severity=\"medium\",event=\"opened\"} 1");
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"x.ok\","
                  "severity=\"medium\",event=\"repeated\"} 1");
    /* Each failing rule's engine alert, under the rule's name. */
    CHECK(strstr(t, "pvwatch_alert_events_total{rule=\"x.err\",") != NULL);
    CHECK(strstr(t, "P-SECRET") == NULL);
    CHECK(strstr(t, "T-SECRET") == NULL);
    CHECK_LINE(t, "pvwatch_outbox_messages{status=\"pending\"} 0");
    pv_buf_free(&b);

    /* Acknowledged and closed: from the workflow's log line. */
    char err[256];
    int64_t id = q_int(p, "SELECT id FROM alerts WHERE rule = 'x.ok'");
    CHECK_INT(pv_alerts_act(pv_ingest_alerts(p), id, "ack", "tester", NULL, err,
                            sizeof err),
              0);
    CHECK_INT(pv_alerts_act(pv_ingest_alerts(p), id, "close", "tester", "done",
                            err, sizeof err),
              0);
    pv_metrics_render(NULL, &b);
    t = pv_buf_cstr(&b);
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"x.ok\","
                  "severity=\"medium\",event=\"acknowledged\"} 1");
    CHECK_LINE(t, "pvwatch_alert_events_total{rule=\"x.ok\","
                  "severity=\"medium\",event=\"closed\"} 1");
    pv_buf_free(&b);

    /* A reload: the same names keep counting, a new one is added. */
    write_plugin("b.lua", "return {\n" RULE("x.new", "    return nil") "}\n");
    pv_rules *r = NULL;
    pv_buf errors = PV_BUF_INIT;
    CHECK_INT(pv_rules_load(&cfg, pv_ingest_store(p), &r, &errors), 0);
    CHECK_STR(pv_buf_cstr(&errors), "");
    pv_buf_free(&errors);
    if (r) {
        pv_ingest_set_rules(p, r);
        lab(p, "P-SECRET", "M-1", 3);
        pv_metrics_render(NULL, &b);
        t = pv_buf_cstr(&b);
        CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.ok\"} 3");
        CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.new\"} 1");
        pv_buf_free(&b);
    }
    pv_ingest_close(p);
    cfg.limits.rule_memory = saved;
}

/* Issue 17: a lab of a patient never exposed to the drug a rule's
 * on.exposure names is counted as spared by the gate, not as a call. */
static void test_rule_gated(void)
{
    use_plugin_dir("gated");
    write_plugin("g.lua",
                 "return { pv.rule { name = 'x.gated', signal = 'test',\n"
                 "  on = { lab = { 'M-1' }, exposure = 'baricitinib' },\n"
                 "  when = function(obs) return nil end } }\n");
    pv_metrics_reset();
    pv_ingest *p = open_pipeline();
    if (!p)
        return;
    lab(p, "P-NEVER", "M-1", 1);
    lab(p, "P-NEVER", "M-1", 2);
    pv_buf b = PV_BUF_INIT;
    pv_metrics_render(pv_store_db(pv_ingest_store(p)), &b);
    const char *t = pv_buf_cstr(&b);
    CHECK_LINE(t, "pvwatch_rule_gated_total{rule=\"x.gated\"} 2");
    CHECK_LINE(t, "pvwatch_rule_calls_total{rule=\"x.gated\"} 0");
    pv_buf_free(&b);
    pv_ingest_close(p);
}

int main(void)
{
    harness_init();
    test_rule_outcomes();
    test_rule_gated();
    harness_done();
    return pv_test_report();
}
