/* ingest_hl7: one HL7 v2 message through the pipeline — parse (hl7.c),
 * map (map_hl7.c, pure), store (store.c) — and the outcome for its ACK:
 * AA, AE or AR, duplicates, control ids reused, segments skipped.
 *
 * It sits below ingest.c (issue 20 part 3: no cycle): what it needs of the
 * pipeline — storing a fact and offering it to the rules, raising an engine
 * alert — comes as callbacks in pv_hl7_pipe, which ingest.c fills
 * (pv_ingest_hl7 in ingest.h is the entry the feeds call). Depends on
 * hl7.h, map_hl7.h, store.h, alerts.h, facts.h; no SQL of its own. */
#ifndef PV_INGEST_HL7_H
#define PV_INGEST_HL7_H

#include <stddef.h>

#include "alerts.h"
#include "facts.h"
#include "store.h"

/* What became of one HL7 message, for its ACK. */
typedef struct pv_hl7_result {
    int ack;                /* 0 AA, 1 AE, 2 AR (pv_hl7_ack_code); -1: no ACK at
                             * all, because the message is itself an ACK */
    int error;              /* ERR-3 code for AE/AR */
    char text[512];         /* why, for AE/AR (and logs) */
    int duplicate;          /* seen before from the same sender: not stored */
    long facts;             /* facts stored */
    long skipped;           /* segments left out (AA with warnings: error
                             * is set and text holds one "ERL<TAB>reason"
                             * line per segment, see pv_hl7_ack_info) */
    struct pv_hl7_msg *msg; /* the parsed message (for the ACK), or NULL when
                             * it could not be parsed; free with
                             * pv_hl7_result_free */
} pv_hl7_result;

void pv_hl7_result_free(pv_hl7_result *res);

/* The pipeline as ingest_hl7.c sees it. The fact callbacks store the fact
 * and run the rules on it (pv_ingest_lab ...); they and engine_alert
 * return 0 or a negative code. */
typedef struct pv_hl7_pipe {
    pv_store *store;
    pv_alerts *alerts;
    const char *assigning_authority; /* mllp.assigning_authority */
    const char *duplicates;          /* mllp.duplicates */
    void *ud;
    int (*lab)(void *ud, const pv_obs *o);
    int (*exposure)(void *ud, const pv_exposure *e);
    int (*event)(void *ud, const pv_event *e);
    int (*engine_alert)(void *ud, const char *rule, const char *key,
                        const char *title, const char *detail,
                        const char *action);
} pv_hl7_pipe;

/* pv_ingest_hl7 (ingest.h) on an explicit pipeline. */
int pv_hl7_ingest(const pv_hl7_pipe *pipe, const char *raw, size_t len,
                  const char *peer, long first_line, pv_hl7_result *res);

#endif
