/* facts: the three kinds of clinical fact every feed is mapped to.
 *
 * These are plain records, not handles: map.c fills them from CSV rows or
 * HL7 segments, store.c writes them, rules.c hands them to Lua. Strings are
 * borrowed (NUL-terminated, owned by whoever filled the record, valid until
 * the call that receives it returns); NULL means absent. Depends on pvtime.h
 * only. */
#ifndef PV_FACTS_H
#define PV_FACTS_H

#include <stdint.h>

#include "pvtime.h"

typedef enum pv_fact_kind {
    PV_FACT_LAB = 1,
    PV_FACT_EXPOSURE = 2,
    PV_FACT_EVENT = 3,
} pv_fact_kind;

typedef struct pv_obs {
    const char *patient_id;
    const char *code;
    const char *code_system; /* "LN" when absent */
    const char *name;
    const char *value_text; /* the value as received */
    int has_num;            /* value_num holds a number */
    double value_num;
    const char *comparator; /* "<", "<=", ">", ">=" for SN values, else NULL */
    const char *unit;
    int has_low, has_high;
    double ref_low, ref_high;
    const char *flag;
    const char *status; /* F, C, P, D ...; "F" when absent (see
                         * pv_obs_judged) */
    pv_time_t at;
    int64_t message_id; /* 0 when none */
    long line;          /* source line, 0 when none */
    /* The order: OBR-3, else OBR-2; NULL when none (issue 15 item 1). */
    const char *filler_order;
} pv_obs;

/* Whether rules see a result of this OBX-11 status (HL7 table 0085; issue
 * 15 item 1): not W (wrong, e.g. posted to the wrong patient), X (cannot be
 * obtained), I (in the lab, no result yet), R (not verified), N (not asked
 * for), O (order detail only) nor D (deleted); those are stored (D is not)
 * and never judged. F, C, P, A, B, S, U and anything else are judged; NULL
 * or "" means F. docs/rules.md lists them. */
static inline int pv_obs_judged(const char *status)
{
    if (!status || !status[0] || status[1])
        return 1;
    switch (status[0]) {
    case 'W':
    case 'X':
    case 'I':
    case 'R':
    case 'N':
    case 'O':
    case 'D':
        return 0;
    }
    return 1;
}

typedef struct pv_exposure {
    const char *patient_id;
    const char *drug;
    const char *drug_code;
    const char *code_system;
    int has_dose;
    double dose;
    const char *dose_unit;
    const char *route;
    pv_time_t start;
    int has_end;
    pv_time_t end;
    int64_t message_id;
    long line;
    /* Where start came from: the field ("RXE-1", "TQ1-7", "ORC-7",
     * "RXA-3", "RXD-3", "RXG-3"), "MSH-7" when the message gave no start
     * of its own, "csv"; NULL unknown (exposures.start_source, migration
     * 0005; issue 15 item 3). */
    const char *start_source;
    /* The order it came from: ORC-2 placer and ORC-3 filler order number
     * (first component); NULL for CSV and orders without them
     * (exposures.placer_order/filler_order, migration 0008; issue 15
     * item 2: a later DC/OD or XO/RO of the same order ends it). */
    const char *placer_order;
    const char *filler_order;
} pv_exposure;

typedef struct pv_event {
    const char *patient_id;
    const char *code;
    const char *code_system; /* "ICD10CM" when absent */
    const char *term;
    pv_time_t onset;
    int serious; /* 1 yes, 0 no, -1 unknown */
    const char *outcome;
    int64_t message_id;
    long line;
} pv_event;

#endif
