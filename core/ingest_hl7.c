/* ingest_hl7.c: one HL7 v2 message through the pipeline (see
 * ingest_hl7.h): parse (hl7.c) -> map (map_hl7.c, pure: the DESIGN "Feeds"
 * message types and how each becomes facts are described there) -> store
 * (store.c, and the rules through the pipe's callbacks) -> the outcome for
 * the ACK. No SQL here: the store's named functions do it (issue 20 part 3).
 *
 * What we accept: versions 2.3 to 2.8; messages that are not ours to
 * understand but are well-formed are stored and acknowledged AA with no
 * facts; an ACK is never answered. A message with the same sending
 * application, facility and control id as a stored one is a duplicate: AA,
 * not stored again. */
#include "ingest_hl7.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "hl7.h"
#include "log.h"
#include "map_hl7.h"
#include "sha256.h"

static void set_result(pv_hl7_result *r, int ack, int error, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void set_result(pv_hl7_result *r, int ack, int error, const char *fmt,
                       ...)
{
    r->ack = ack;
    r->error = error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
}

/* The segments the mapping left out, for the log, messages.error and the
 * ACK (issue 15 item 5): one "ERL<TAB>reason" line per segment in warn
 * (whole lines only, room kept for a last one counting those that did not
 * fit), the first one's reason and code for an AE. */
struct warnings {
    long skipped, listed;
    int first_error;
    char first_reason[256];
    char warn[2048];
    size_t warn_len;
};

static void collect_warnings(const pv_hl7_mapped *mp, struct warnings *w)
{
    for (size_t i = 0; i < mp->nskips; i++) {
        const pv_hl7_skip *k = &mp->skips[i];
        char line[400];
        int n = snprintf(line, sizeof line,
                         "%.3s^%zu^%zu\t%.3s-%zu at line %ld: "
                         "%s; segment skipped\n",
                         k->name, k->nth, k->field, k->name, k->field, k->line,
                         k->reason);
        if (w->skipped == 0) {
            w->first_error = k->error;
            snprintf(w->first_reason, sizeof w->first_reason,
                     "%.3s-%zu at line %ld: %s", k->name, k->field, k->line,
                     k->reason);
        }
        w->skipped++;
        /* The log names a few; messages.error and the ACK hold the rest. */
        if (w->skipped <= 5)
            pv_warn("HL7 %.3s-%zu at line %ld: %s; segment skipped", k->name,
                    k->field, k->line, k->reason);
        if (n > 0 && (size_t)n < sizeof w->warn - 80 - w->warn_len) {
            memcpy(w->warn + w->warn_len, line, (size_t)n);
            w->warn_len += (size_t)n;
            w->warn[w->warn_len] = '\0';
            w->listed++;
        }
    }
}

/* Ends the warnings with a count of those that did not fit, and copies
 * the whole lines that fit into out (the ACK's text), with the same count
 * for the rest. */
static void finish_warnings(struct warnings *c, char *out, size_t cap)
{
    if (c->listed < c->skipped)
        snprintf(c->warn + c->warn_len, sizeof c->warn - c->warn_len,
                 "and %ld more segments skipped\n", c->skipped - c->listed);
    size_t n = 0;
    long lines = 0;
    for (const char *l = c->warn; *l && lines < c->listed; lines++) {
        const char *eol = strchr(l, '\n');
        size_t len = (size_t)(eol - l) + 1;
        if (n + len >= cap - 48)
            break;
        memcpy(out + n, l, len);
        n += len;
        l += len;
    }
    out[n] = '\0';
    if (lines < c->skipped)
        snprintf(out + n, cap - n, "and %ld more segments skipped\n",
                 c->skipped - lines);
}

/* Stores the mapped items in message order (a correction acts on the
 * results stored before it, the message's own included), each fact through
 * the pipe so that the rules see it. Returns 0 or a negative code. */
static int store_items(const pv_hl7_pipe *p, pv_hl7_mapped *mp,
                       int64_t message_id)
{
    for (size_t i = 0; i < mp->n; i++) {
        pv_hl7_item *it = &mp->items[i];
        int rc = 0, count;
        switch (it->kind) {
        case PV_HL7_ITEM_PATIENT:
            rc = pv_store_patient(p->store, it->u.patient.id,
                                  it->u.patient.birth_date, it->u.patient.sex);
            break;
        case PV_HL7_ITEM_SUPERSEDE: {
            const pv_hl7_supersede *u = &it->u.supersede;
            rc = pv_store_obs_supersede(p->store, u->patient_id, u->code, u->at,
                                        u->order, u->mark, u->only, &count);
            break;
        }
        case PV_HL7_ITEM_END_EXPOSURE: {
            const pv_hl7_end_exposure *u = &it->u.end;
            rc = pv_store_end_exposures(p->store, u->patient_id, u->placer,
                                        u->filler, u->at, &count);
            break;
        }
        case PV_HL7_ITEM_LAB:
            it->u.obs.message_id = message_id;
            rc = p->lab(p->ud, &it->u.obs);
            break;
        case PV_HL7_ITEM_EXPOSURE:
            it->u.exposure.message_id = message_id;
            rc = p->exposure(p->ud, &it->u.exposure);
            break;
        case PV_HL7_ITEM_EVENT:
            it->u.event.message_id = message_id;
            rc = p->event(p->ud, &it->u.event);
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Keeps a message rejected before it could be given a source and control
 * id (unparsable, no MSH-10, unsupported version) in messages, keyed by the
 * SHA-256 of its bytes, so nothing is lost; in a savepoint of its own. The
 * same bytes again are not stored twice. */
static int store_unread(pv_store *s, const char *raw, size_t len,
                        const char *type, const char *peer, const char *why)
{
    pv_sha256 h;
    char hex[65], key[80];
    pv_sha256_init(&h);
    pv_sha256_update(&h, raw, len);
    pv_sha256_hex(&h, hex);
    snprintf(key, sizeof key, "sha256:%s", hex);
    int rc = pv_store_savepoint(s);
    if (rc)
        return rc;
    int64_t id;
    rc = pv_store_message_add(s, "unparsed", key, type, peer, raw, len,
                              "rejected", &id, NULL);
    if (!rc)
        rc = pv_store_message_finish(s, id, "rejected", why, 0, 0);
    if (rc == PV_ESTATE)
        rc = 0;
    if (rc) {
        pv_store_rollback_to(s);
        return rc;
    }
    return pv_store_release(s);
}

/* The SHA-256 (hex) of a message's content (issue 15 item 6): its
 * segments, each ended by CR, whatever line ends, blank lines and MLLP
 * framing bytes it came with, so that a file (LF) and the same message over
 * MLLP (CR) hash alike. */
static void content_hash(const char *raw, size_t len, char hex[65])
{
    pv_sha256 h;
    pv_sha256_init(&h);
    size_t i = 0;
    while (i < len) {
        while (i < len && (raw[i] == '\r' || raw[i] == '\n' || raw[i] == 0x0B ||
                           raw[i] == 0x1C))
            i++;
        size_t from = i;
        while (i < len && raw[i] != '\r' && raw[i] != '\n' && raw[i] != 0x1C)
            i++;
        if (i > from) {
            pv_sha256_update(&h, raw + from, i - from);
            pv_sha256_update(&h, "\r", 1);
        }
    }
    pv_sha256_hex(&h, hex);
}

/* Whether the stored message 'id' has the content hash 'hex': 1 same, 0
 * other content, <0 a database error. A row stored before migration 0006
 * has no hash: the store hashes its raw bytes with content_hash. */
static int same_content(pv_store *s, int64_t id, const char *hex)
{
    char have[65];
    int rc = pv_store_message_hash(s, id, content_hash, have);
    if (rc == PV_ENOTFOUND)
        return 1; /* nothing to compare: a duplicate as before */
    if (rc)
        return rc;
    return strcmp(have, hex) == 0;
}

/* A control id reused with other content and mllp.duplicates not
 * "by_content" (issue 15 item 6): AE, the message kept as rejected under a
 * key of its own (source "collision:...", control id#sha256), and an engine
 * alert. Inside the message's savepoint, which it releases. */
static int reject_collision(const pv_hl7_pipe *p, pv_hl7_result *res,
                            const char *source, const char *control,
                            const char *msgtype, const char *peer,
                            const char *raw, size_t len, const char *hex)
{
    pv_store *s = p->store;
    set_result(res, PV_HL7_AE, PV_HL7_ERR_DUPLICATE_KEY,
               "control id %.100s from %.200s was already used for a "
               "message with other content; not stored as a result (set "
               "mllp.duplicates = \"by_content\" to accept it)",
               control, source + 4);
    char csource[600], key[400];
    snprintf(csource, sizeof csource, "collision:%s", source);
    snprintf(key, sizeof key, "%s#sha256:%s", control, hex);
    int64_t id;
    int rc = pv_store_message_add(s, csource, key, msgtype, peer, raw, len,
                                  "rejected", &id, NULL);
    if (!rc)
        rc = pv_store_message_finish(s, id, "rejected", res->text, 0, 1);
    if (!rc)
        rc = pv_store_message_set_hash(s, id, hex);
    int fresh = !rc;
    if (rc == PV_ESTATE)
        rc = 0; /* the same collision again: kept once */
    if (!rc && fresh) {
        char akey[700], detail[900];
        snprintf(akey, sizeof akey, "control-id-reuse:%.300s|%.200s",
                 source + 4, control);
        snprintf(detail, sizeof detail,
                 "%.200s sent control id (MSH-10) %.100s again with "
                 "different content (SHA-256 %.16s...); the new message was "
                 "answered AE and kept as rejected in messages (source "
                 "%.300s).",
                 source + 4, control, hex, csource);
        rc = p->engine_alert(
            p->ud, "pvwatch.hl7", akey, "An HL7 control id was reused", detail,
            "Ask the sender's interface team why MSH-10 repeats; if it "
            "reuses control ids by design, set mllp.duplicates = "
            "\"by_content\".");
    }
    if (rc) {
        pv_store_rollback_to(s);
        return rc;
    }
    return pv_store_release(s);
}

void pv_hl7_result_free(pv_hl7_result *res)
{
    pv_hl7_free(res->msg);
    res->msg = NULL;
}

int pv_hl7_ingest(const pv_hl7_pipe *p, const char *raw, size_t len,
                  const char *peer, long first_line, pv_hl7_result *res)
{
    memset(res, 0, sizeof *res);
    pv_store *s = p->store;
    pv_hl7_opts opts = {.max_bytes = 0, .first_line = first_line};
    pv_hl7_error perr;
    int rc = pv_hl7_parse(raw, len, &opts, &res->msg, &perr);
    if (rc) {
        set_result(res, PV_HL7_AR, PV_HL7_ERR_SEGMENT_SEQUENCE, "%s",
                   perr.reason);
        /* Something that reads like an ACK is never answered (the peer may
         * be acknowledging ours), but it is kept like any bad input. */
        if (pv_hl7_raw_is_ack(raw, len))
            res->ack = -1;
        return store_unread(s, raw, len, NULL, peer, res->text);
    }
    const pv_hl7_msg *m = res->msg;
    if (pv_hl7_is_ack(m)) {
        res->ack = -1;
        snprintf(res->text, sizeof res->text, "an ACK; not answered");
        return 0;
    }
    char msgtype[64];
    pv_span mt = pv_hl7_msg_type(m), tr = pv_hl7_trigger(m);
    snprintf(msgtype, sizeof msgtype, "%.*s^%.*s", (int)mt.len, mt.ptr,
             (int)tr.len, tr.ptr);
    pv_span app = pv_hl7_sending_app(m), fac = pv_hl7_sending_facility(m);
    pv_span ctl = pv_hl7_control_id(m);
    char source[512], control[256];
    snprintf(source, sizeof source, "hl7:%.*s|%.*s", (int)app.len, app.ptr,
             (int)fac.len, fac.ptr);
    snprintf(control, sizeof control, "%.*s", (int)ctl.len, ctl.ptr);
    if (!control[0]) {
        set_result(res, PV_HL7_AR, PV_HL7_ERR_REQUIRED_FIELD,
                   "MSH-10 message control id missing");
        return store_unread(s, raw, len, msgtype, peer, res->text);
    }
    /* Cut to fit, two different long ids (or senders) sharing their first
     * characters would be one key: the second message a "duplicate" or a
     * "reused control id". HL7 gives MSH-10 199 characters at most (v2.7;
     * 20 before): a longer one is refused, never cut. */
    if (ctl.len >= sizeof control ||
        app.len + fac.len + sizeof "hl7:|" > sizeof source) {
        set_result(res, PV_HL7_AR, PV_HL7_ERR_DATA_TYPE,
                   ctl.len >= sizeof control
                       ? "MSH-10 message control id is %zu characters long; "
                         "at most 255 are taken"
                       : "MSH-3/MSH-4 sending application and facility are "
                         "%zu characters long; at most 500 are taken",
                   ctl.len >= sizeof control ? ctl.len : app.len + fac.len);
        return store_unread(s, raw, len, msgtype, peer, res->text);
    }
    if (!pv_hl7_map_version_ok(pv_hl7_version(m))) {
        pv_span v = pv_hl7_version(m);
        set_result(res, PV_HL7_AR, PV_HL7_ERR_UNSUPPORTED_VERSION,
                   "HL7 version '%.*s' in MSH-12 is not supported (2.3 to "
                   "2.8)",
                   (int)(v.len > 20 ? 20 : v.len), v.ptr);
        return store_unread(s, raw, len, msgtype, peer, res->text);
    }
    /* The later of the wall clock and the store's: a fixed test clock in
     * the past must not make today's results "in the future". */
    pv_hl7_map_opts mopts = {.assigning_authority = p->assigning_authority,
                             .now = (pv_time_t)time(NULL)};
    if (pv_store_now(s) > mopts.now)
        mopts.now = pv_store_now(s);

    rc = pv_store_savepoint(s);
    if (rc)
        return rc;
    size_t mark = pv_alerts_mark(p->alerts);
    char hex[65];
    content_hash(raw, len, hex);
    int64_t message_id = 0, dup_id = 0;
    rc = pv_store_message_add(s, source, control, msgtype, peer, raw, len,
                              "accepted", &message_id, &dup_id);
    if (rc == PV_ESTATE) {
        /* The same sender and control id: a resend when the content is
         * the same, else a control id reused (issue 15 item 6). */
        int same = same_content(s, dup_id, hex);
        const char *mode = p->duplicates;
        if (same < 0) {
            rc = same;
        } else if (!same && mode && !strcmp(mode, "by_content")) {
            /* Stored as a new message under control id#sha256; that one
             * sent again is a duplicate of it. */
            char key[400];
            snprintf(key, sizeof key, "%s#sha256:%s", control, hex);
            rc = pv_store_message_add(s, source, key, msgtype, peer, raw, len,
                                      "accepted", &message_id, NULL);
        } else if (!same) {
            return reject_collision(p, res, source, control, msgtype, peer, raw,
                                    len, hex);
        } else {
            rc = PV_ESTATE;
        }
    }
    if (!rc)
        rc = pv_store_message_set_hash(s, message_id, hex);
    if (rc == PV_ESTATE) {
        pv_store_rollback_to(s);
        res->duplicate = 1;
        res->ack = PV_HL7_AA;
        snprintf(res->text, sizeof res->text,
                 "duplicate of a stored message (control id %.100s from "
                 "%.200s); not stored again",
                 control, source + 4);
        return 0;
    }
    pv_hl7_mapped mp;
    struct warnings w = {0};
    int rejected = 0;
    if (!rc)
        rc = pv_hl7_map(m, &mopts, &mp);
    else
        memset(&mp, 0, sizeof mp);
    if (!rc) {
        collect_warnings(&mp, &w);
        if (mp.reject) {
            set_result(res, PV_HL7_AE, mp.error, "%s", mp.text);
            rejected = 1;
        } else if (w.skipped && mp.facts == 0) {
            /* Segments were skipped and nothing usable remained: AE. */
            set_result(res, PV_HL7_AE, w.first_error,
                       "nothing usable in the message: %ld segment%s "
                       "skipped, the first: %s",
                       w.skipped, w.skipped == 1 ? "" : "s", w.first_reason);
            rejected = 1;
        } else {
            /* Anything else well-formed (no items): stored, no facts, AA. */
            rc = store_items(p, &mp, message_id);
            if (!rc)
                res->facts = mp.facts;
        }
    }
    pv_hl7_mapped_free(&mp);
    if (!rc && rejected) {
        /* Understood but not storable (AE): keep the raw message as
         * rejected, without any of its facts. */
        pv_store_rollback_to(s);
        pv_alerts_rewind(p->alerts, mark);
        res->facts = 0;
        rc = pv_store_savepoint(s);
        int64_t id;
        /* Under a source of its own, so that the message sent again once
         * fixed is not taken for a duplicate. */
        char rsource[600];
        snprintf(rsource, sizeof rsource, "rejected:%s", source);
        if (!rc)
            rc = pv_store_message_add(s, rsource, control, msgtype, peer, raw,
                                      len, "rejected", &id, NULL);
        if (!rc)
            rc = pv_store_message_finish(s, id, "rejected", res->text, 0, 1);
        if (rc == PV_ESTATE)
            rc = 0;
        if (!rc)
            rc = pv_store_release(s);
        else
            pv_store_rollback_to(s);
        return rc;
    }
    if (!rc && w.skipped) {
        /* Stored and judged without the skipped segments: AA with one ERR
         * of severity W per segment (pv_hl7_ack reads text line by line),
         * the reasons kept in messages. */
        finish_warnings(&w, res->text, sizeof res->text);
        res->skipped = w.skipped;
        res->error = w.first_error;
        rc = pv_store_message_finish(s, message_id, "partial", w.warn,
                                     res->facts, w.skipped);
    } else if (!rc) {
        rc = pv_store_message_finish(s, message_id, "accepted", NULL,
                                     res->facts, 0);
    }
    if (rc) {
        pv_store_rollback_to(s);
        pv_alerts_rewind(p->alerts, mark);
        res->facts = 0;
        return rc;
    }
    res->ack = PV_HL7_AA;
    return pv_store_release(s);
}
