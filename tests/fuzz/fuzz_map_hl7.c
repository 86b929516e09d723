/* fuzz_map_hl7: libFuzzer target for the pure HL7 -> facts mapping
 * (core/map_hl7.c, issue 20 part 3). The input is split like an HL7 file
 * (pv_hl7_split), each message parsed and mapped twice (without and with
 * an assigning authority). Besides crashes and leaks it checks what
 * ingest_hl7.c relies on:
 * - every item's patient id is non-empty and is a PID-3 identifier
 *   (CX.1 of a repetition) of a PID segment of the message;
 * - times are range-checked: a result at a plausible time
 *   (pv_time_implausible), an exposure not starting before 1850 and never
 *   ending before it starts, an event at a plausible time;
 * - no fact comes from a segment that was skipped, every skip names a real
 *   segment with its line, a field, an ERR-3 code and a reason;
 * - a rejected message says why; facts counts the fact items.
 * Replayed over tests/fuzz/corpus/map_hl7 by ctest (fuzz.map_hl7). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl7.h"
#include "map_hl7.h"

#define REQUIRE(c)                                                             \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

/* A fixed 'now' (2026-12-07), so that a run is repeatable. */
#define NOW INT64_C(1796601600)

static const pv_hl7_opts small = {65536, 64, 32, 0};

static int span_is(pv_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* Whether id is CX.1 of a PID-3 repetition of a PID of m. */
static int from_pid3(const pv_hl7_msg *m, const char *id)
{
    for (size_t s = 0; s < pv_hl7_segment_count(m); s++) {
        if (!span_is(pv_hl7_segment_name(m, s), "PID"))
            continue;
        size_t reps = pv_hl7_rep_count(m, s, 3);
        for (size_t r = 1; r <= reps; r++) {
            char *d = pv_hl7_decode_dup(m, pv_hl7_get(m, s, 3, r, 1, 0));
            REQUIRE(d);
            int same = strcmp(d, id) == 0;
            free(d);
            if (same)
                return 1;
        }
    }
    return 0;
}

static void check_patient(const pv_hl7_msg *m, const char *id)
{
    REQUIRE(id && id[0]);
    REQUIRE(from_pid3(m, id));
}

static int skipped(const pv_hl7_mapped *mp, size_t seg)
{
    for (size_t i = 0; i < mp->nskips; i++)
        if (mp->skips[i].segment == seg)
            return 1;
    return 0;
}

static void check_mapped(const pv_hl7_msg *m, const pv_hl7_mapped *mp)
{
    size_t nseg = pv_hl7_segment_count(m);
    if (mp->reject)
        REQUIRE(mp->text[0] && mp->error >= 100 && mp->error <= 207);
    for (size_t i = 0; i < mp->nskips; i++) {
        const pv_hl7_skip *k = &mp->skips[i];
        REQUIRE(k->segment < nseg);
        REQUIRE(span_is(pv_hl7_segment_name(m, k->segment), k->name));
        REQUIRE(k->line == pv_hl7_segment_line(m, k->segment));
        REQUIRE(k->nth >= 1 && k->field >= 1 && k->reason[0]);
        REQUIRE(k->error >= 100 && k->error <= 207);
    }
    long facts = 0;
    for (size_t i = 0; i < mp->n; i++) {
        const pv_hl7_item *it = &mp->items[i];
        REQUIRE(it->segment < nseg);
        switch (it->kind) {
        case PV_HL7_ITEM_PATIENT:
            check_patient(m, it->u.patient.id);
            if (it->u.patient.birth_date)
                REQUIRE(strlen(it->u.patient.birth_date) == 10);
            break;
        case PV_HL7_ITEM_SUPERSEDE:
            check_patient(m, it->u.supersede.patient_id);
            REQUIRE(it->u.supersede.code && it->u.supersede.code[0]);
            REQUIRE(it->u.supersede.mark);
            REQUIRE(!pv_time_implausible(it->u.supersede.at, NOW));
            break;
        case PV_HL7_ITEM_END_EXPOSURE:
            check_patient(m, it->u.end.patient_id);
            REQUIRE(it->u.end.placer || it->u.end.filler);
            break;
        case PV_HL7_ITEM_LAB: {
            const pv_obs *o = &it->u.obs;
            facts++;
            REQUIRE(!skipped(mp, it->segment));
            check_patient(m, o->patient_id);
            REQUIRE(o->code && o->code[0] && o->code_system && o->status);
            REQUIRE(!pv_time_implausible(o->at, NOW));
            REQUIRE(o->line == pv_hl7_segment_line(m, it->segment));
            REQUIRE(o->message_id == 0);
            break;
        }
        case PV_HL7_ITEM_EXPOSURE: {
            const pv_exposure *e = &it->u.exposure;
            facts++;
            REQUIRE(!skipped(mp, it->segment));
            check_patient(m, e->patient_id);
            REQUIRE(e->drug && e->drug[0] && e->start_source);
            REQUIRE(e->start >= PV_TIME_FACT_MIN);
            if (e->has_end)
                REQUIRE(e->end >= e->start);
            REQUIRE(e->message_id == 0);
            break;
        }
        case PV_HL7_ITEM_EVENT: {
            const pv_event *e = &it->u.event;
            facts++;
            REQUIRE(!skipped(mp, it->segment));
            check_patient(m, e->patient_id);
            REQUIRE(e->code && e->code[0] && e->code_system);
            REQUIRE(!pv_time_implausible(e->onset, NOW));
            REQUIRE(e->serious >= -1 && e->serious <= 1);
            REQUIRE(e->message_id == 0);
            break;
        }
        default:
            abort();
        }
    }
    REQUIRE(facts == mp->facts);
}

static void map_one(const char *p, size_t len, long line)
{
    pv_hl7_opts o = small;
    o.first_line = line;
    pv_hl7_msg *m = NULL;
    if (pv_hl7_parse(p, len, &o, &m, NULL) != 0)
        return;
    static const char *const authorities[] = {NULL, "NIST", "2.16.840.1"};
    for (size_t a = 0; a < 3; a++) {
        pv_hl7_map_opts mo = {authorities[a], NOW};
        pv_hl7_mapped mp;
        REQUIRE(pv_hl7_map(m, &mo, &mp) == 0);
        check_mapped(m, &mp);
        pv_hl7_mapped_free(&mp);
    }
    (void)pv_hl7_map_version_ok(pv_hl7_version(m));
    pv_hl7_free(m);
}

static int on_msg(void *ud, pv_span msg, long line)
{
    (void)ud;
    map_one(msg.ptr, msg.len, line);
    return 0;
}

static void on_fault(void *ud, long line, const char *reason)
{
    (void)ud;
    (void)line;
    (void)reason;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    /* The whole input as one message, and split as a file. */
    map_one(in, size, 1);
    pv_hl7_split(in, size, on_msg, on_fault, NULL);
    return 0;
}
