/* rules: the Lua host that runs the safety officers' rule plugins.
 *
 * Each plugin file gets its own lua_State with a memory cap, a sandbox made
 * of an allowlist (rules_api.lua builds it) and an instruction budget per
 * call; every call goes through one protected wrapper with a traceback, so
 * no Lua error unwinds into C. A fact is offered only to the rules whose
 * trigger names its code (a hash lookup in C), so facts no rule wants never
 * enter Lua. Alerts the rules return, and the failures of rules, are handed
 * to a sink; rules.c does not store alerts (alerts.c does). Reads history
 * through store.c. */
#ifndef PV_RULES_H
#define PV_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "facts.h"
#include "store.h"

typedef struct pv_rules pv_rules;

/* An alert as a rule raised it. All strings are borrowed for the duration
 * of the sink call. evidence_json is a JSON array. */
typedef struct pv_alert_in {
    const char *patient_id;
    const char *rule;
    const char *signal;
    const char *severity; /* low | medium | high | critical */
    int has_grade;
    int grade;
    const char *title;
    const char *detail;
    const char *action;
    const char *key;
    const char *evidence_json;
    const char *rule_sha256;
} pv_alert_in;

/* Receives each alert; returns 0, or a negative code that stops the run
 * (e.g. the database failed). */
typedef int (*pv_alert_sink)(void *ud, const pv_alert_in *a);

/* Loads every *.lua file of cfg->plugins (in name order) with require()
 * searching cfg->scripts. Returns 0, or PV_ELUA with one "FILE:LINE: reason"
 * line per broken plugin in errors (then *out is NULL: a rule set loads
 * whole or not at all). The store is used for history queries when rules
 * run and must outlive the rule set. */
int pv_rules_load(const pv_config *cfg, pv_store *store, pv_rules **out,
                  pv_buf *errors);
void pv_rules_free(pv_rules *r);

/* Number of rules loaded, and the name of rule i (for listings). */
size_t pv_rules_count(const pv_rules *r);
const char *pv_rules_name(const pv_rules *r, size_t i);
const char *pv_rules_file(const pv_rules *r, size_t i);
/* What 'pvwatch rules' lists of rule i, as pv.rule gave it: the signal,
 * and the optional description, label (the label sentence enforced),
 * severities ("high, medium") and trigger ("lab: neutrophils; exposure:
 * baricitinib", or "every 1d"). NULL when the rule does not say. */
enum pv_rule_info {
    PV_RULE_SIGNAL,
    PV_RULE_DESCRIPTION,
    PV_RULE_LABEL,
    PV_RULE_SEVERITIES,
    PV_RULE_TRIGGER,
};
const char *pv_rules_info(const pv_rules *r, size_t i, enum pv_rule_info what);
/* Only run rules whose name equals 'name' (NULL: all). For replay --rule. */
void pv_rules_only(pv_rules *r, const char *name);

/* Offer one stored fact (id is its row id) to the rules it triggers. Rule
 * failures become engine alerts in the sink and do not fail the call.
 * Returns the sink's error, if any. */
int pv_rules_on_lab(pv_rules *r, const pv_obs *o, int64_t id,
                    pv_alert_sink sink, void *ud);
int pv_rules_on_exposure(pv_rules *r, const pv_exposure *e, int64_t id,
                         pv_alert_sink sink, void *ud);
int pv_rules_on_event(pv_rules *r, const pv_event *e, int64_t id,
                      pv_alert_sink sink, void *ud);

/* Runs the scheduled rules ('every') that are due at 'now' (all of them
 * when force is set) for each patient of the NULL-terminated list. */
int pv_rules_tick(pv_rules *r, pv_time_t now, const char *const *patients,
                  int force, pv_alert_sink sink, void *ud);
/* Whether any rule is scheduled. */
int pv_rules_has_schedule(const pv_rules *r);
/* Seconds until the next scheduled rule is due (<0: none scheduled). */
double pv_rules_next_due(const pv_rules *r, pv_time_t now);

/* Counters for logs and metrics. */
typedef struct pv_rules_stats {
    uint64_t calls, alerts, errors;
    uint64_t gated; /* lab and event calls the gate spared (rules.c) */
} pv_rules_stats;
void pv_rules_stats_get(const pv_rules *r, pv_rules_stats *out);

#endif
