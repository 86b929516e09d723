/* map_hl7: one parsed HL7 v2 message to facts, purely (issue 20 part 3).
 *
 * Buffers in, facts out: the parsed message (hl7.h) and the mapping
 * settings of the configuration go in; what comes out is a list of items in
 * message order — the facts of facts.h (observations, exposures, events),
 * the patients of the PID segments and the corrections the message asks for
 * (earlier results superseded, open exposures of an order ended) — plus
 * one entry per segment left out, with its segment, field, error code and
 * reason for the ACK's ERR segment. No store, no I/O, no logging: the
 * caller (ingest_hl7.c) stores the items in order, which is what makes a
 * correction act on the results before it, and writes the ACK.
 *
 * Message types (DESIGN "Feeds", docs/feeds.md): ORU^R01, OUL^R22/R24,
 * RDE, RAS, VXU, RDS^O13, RGV^O15, ADT^A01/A03/A04/A08 (with deaths).
 * Anything else gives no items and no error. Depends on hl7.h, facts.h,
 * pvtime.h and map.h (numbers, reference ranges). */
#ifndef PV_MAP_HL7_H
#define PV_MAP_HL7_H

#include <stddef.h>

#include "facts.h"
#include "hl7.h"

typedef struct pv_hl7_map_opts {
    /* mllp.assigning_authority: the PID-3 identifier whose CX.4 names it
     * (namespace id, universal id or the whole HD); NULL: the first. */
    const char *assigning_authority;
    /* The bound for plausible fact times (pv_time_implausible): the later
     * of the wall clock and the store's. */
    pv_time_t now;
} pv_hl7_map_opts;

typedef enum pv_hl7_item_kind {
    PV_HL7_ITEM_PATIENT = 1,  /* u.patient: a PID with a patient id */
    PV_HL7_ITEM_SUPERSEDE,    /* u.supersede (pv_store_obs_supersede) */
    PV_HL7_ITEM_END_EXPOSURE, /* u.end (pv_store_end_exposures) */
    PV_HL7_ITEM_LAB,          /* u.obs */
    PV_HL7_ITEM_EXPOSURE,     /* u.exposure */
    PV_HL7_ITEM_EVENT,        /* u.event */
} pv_hl7_item_kind;

/* Only the birth date (YYYY-MM-DD) and sex of a PID: never names. */
typedef struct pv_hl7_patient {
    const char *id;
    const char *birth_date; /* NULL when absent or unreadable */
    const char *sex;
} pv_hl7_patient;

/* OBX-11 C, W, F and D (issue 15 item 1): the patient's earlier live
 * results of code at 'at' (of the same order when given) become 'mark';
 * only those whose status is 'only' when it is not NULL. */
typedef struct pv_hl7_supersede {
    const char *patient_id, *code;
    pv_time_t at;
    const char *order, *mark, *only;
} pv_hl7_supersede;

/* ORC-1 DC/OD/XO/RO (issue 15 item 2): the open exposures of the order
 * (placer or filler number; one may be NULL) end at 'at'. */
typedef struct pv_hl7_end_exposure {
    const char *patient_id, *placer, *filler;
    pv_time_t at;
} pv_hl7_end_exposure;

typedef struct pv_hl7_item {
    pv_hl7_item_kind kind;
    size_t segment; /* the segment it came from (index in the message) */
    union {
        pv_hl7_patient patient;
        pv_hl7_supersede supersede;
        pv_hl7_end_exposure end;
        pv_obs obs;           /* message_id 0: the caller sets it */
        pv_exposure exposure; /* likewise */
        pv_event event;       /* likewise */
    } u;
} pv_hl7_item;

/* A segment left out, the rest of the message kept (issue 15 item 5). */
typedef struct pv_hl7_skip {
    char name[4];   /* segment id, e.g. "OBX" */
    size_t segment; /* index in the message */
    size_t nth;     /* its occurrence among segments of that id, from 1 */
    size_t field;   /* the field at fault */
    long line;      /* its line in the file (pv_hl7_segment_line) */
    int error;      /* ERR-3 code (PV_HL7_ERR_...) */
    char reason[200];
} pv_hl7_skip;

typedef struct pv_hl7_mapped {
    /* 0: the items may be stored (skipped segments are listed in skips);
     * 1: understood but not storable as a whole (AE): error and text say
     * why and the items must not be stored. */
    int reject;
    int error; /* ERR-3 code of the rejection */
    char text[512];
    pv_hl7_item *items;
    size_t n;
    pv_hl7_skip *skips;
    size_t nskips;
    long facts; /* items that are facts (LAB, EXPOSURE, EVENT) */
    /* private: the decoded strings the items point into */
    char **strs;
    size_t nstrs, capstrs, capitems, capskips;
} pv_hl7_mapped;

/* Maps m into out (which it initialises). Returns 0, or PV_ENOMEM when an
 * allocation failed (out then holds nothing usable but must still be
 * freed). Strings in the items live until pv_hl7_mapped_free, and point
 * into neither m nor its bytes. */
int pv_hl7_map(const pv_hl7_msg *m, const pv_hl7_map_opts *opts,
               pv_hl7_mapped *out);
void pv_hl7_mapped_free(pv_hl7_mapped *out);

/* Whether MSH-12 is a version we read: 2.3 to 2.8, with or without a
 * further level (2.5.1). */
int pv_hl7_map_version_ok(pv_span version);

#endif
