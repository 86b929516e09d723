/* mllp_server.c: see mllp_server.h. */
#include "mllp_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "hl7.h"
#include "log.h"
#include "metrics.h"
#include "mllp.h"

/* A batch commits at the latest after this many messages. */
#define BATCH_CAP 1000

/* Unsent ACKs (issue 22 item 6). An ACK libuv cannot hand to the kernel at
 * once (the peer does not read, its receive window and our send buffer are
 * full) waits in the connection's write queue, in pvwatch's memory. A peer
 * that sends and never reads would grow that queue without end, so:
 *
 * - at mllp.max_pending_ack_bytes of queued ACKs the connection is no
 *   longer read (soft limit); reading resumes when the queue has drained to
 *   half of it. What the peer sends meanwhile stays in the kernel's buffers
 *   and then in its own: TCP flow control stops it. Nothing of it was
 *   acknowledged, so nothing acknowledged waits there.
 * - reading stops only after the messages already read are stored, so the
 *   queue can pass the soft limit by the ACKs of those (at most two 64 KiB
 *   reads' worth, see on_read); an ACK that would take it past
 *   mllp.max_pending_ack_bytes_hard closes the connection (hard limit).
 *
 * Why closing is safe: ACKs are written only after their batch is
 * committed and its WAL synced (answer_batch), so every ACK dropped with
 * the closed connection answers a message that is already on disk (or an
 * AE/AR, which asks for a resend or a fix anyway). The peer never got it,
 * so for the peer the message is unacknowledged: it resends it, and the
 * resend is a duplicate that pvwatch answers AA without storing it twice.
 * Messages of the connection not yet committed are committed with their
 * batch as usual; their ACKs are dropped the same way. Bytes not yet read
 * (in the framer's unfinished frame or in the kernel) were never
 * acknowledged. So the close loses no acknowledged message and stores
 * none twice; the memory of one connection stays under the hard limit plus
 * one batch. A peer that reads nothing at all is also closed by
 * mllp.idle_timeout: write progress counts as activity, so a slow reader
 * is not. A well-behaved sender (stop-and-wait, or pipelining while it
 * reads) never has more than a few ACKs queued and is never paused. */
#define DEFAULT_PENDING_ACK_BYTES (1L << 20)

struct conn;

/* A message waiting for its batch to commit before its ACK is written. */
struct pending {
    struct conn *c;
    pv_hl7_msg *msg; /* parsed message, or NULL */
    char *raw;       /* for an unparsed message: its bytes, for the ACK */
    size_t rawlen;
    int code; /* PV_HL7_AA / AE / AR */
    int error;
    char *text;
    /* A batch frame (issue 15 item 8): its batch ACK, built when it was
     * stored; 'batch_failed' the one to send if the commit fails. */
    char *batch_ok, *batch_failed;
    long kept[3]; /* messages stored, by ACK code (metrics.h) */
};

/* A committed batch whose ACKs wait until its commit is on disk. Batches
 * commit without syncing (pv_ingest_begin_relaxed); one fdatasync of the
 * WAL at a time runs on libuv's thread pool and covers every batch
 * committed before it started, while the loop goes on reading and storing
 * the next batch. Then, in commit order: alert-log lines, mail, ACKs. */
struct committed {
    struct committed *next;
    struct pending *b;
    size_t n;
    int covered; /* committed before the running sync started */
    pv_alerts_lines lines;
};

struct pv_mllp_server {
    uv_loop_t *loop;
    pv_ingest *p;
    const pv_config *cfg;
    uv_tcp_t listener;
    uv_check_t commit_point;
    struct pending *batch;
    size_t nbatch, capbatch;
    struct committed *head, *tail; /* oldest first */
    uv_work_t sync_req;
    int syncing;
    int sync_rc;
    unsigned long nconn;
    unsigned long busy; /* connections with messages waiting for an ACK */
    unsigned long ack_seq;
    int stopping;
    int open_handles;
    int commit_open; /* commit_point initialised and not closed */
    pv_mllp_stats stats;
};

struct conn {
    pv_mllp_server *srv;
    uv_tcp_t tcp;
    uv_timer_t idle;
    pv_mllp *framer;
    char peer[80];
    int pending;     /* messages in the batch */
    int closed;      /* uv_close called */
    int handles;     /* open libuv handles (tcp, timer) */
    int close_after; /* close once the pending ACKs are written */
    int paused;      /* reads stopped until the ACKs are out, or until the
                        unsent ACKs fall below the soft limit */
    int told;        /* the soft limit was logged for this connection */
};

struct write_req {
    uv_write_t req;
    struct conn *c;
    char *buf;
};

static void conn_close(struct conn *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* Bytes of ACKs libuv holds for the connection: not yet taken by the
 * kernel. */
static size_t unsent(const struct conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

static size_t soft_limit(const pv_mllp_server *srv)
{
    long v = srv->cfg->mllp.max_pending_ack_bytes;
    return (size_t)(v > 0 ? v : DEFAULT_PENDING_ACK_BYTES);
}

static size_t hard_limit(const pv_mllp_server *srv)
{
    long v = srv->cfg->mllp.max_pending_ack_bytes_hard;
    size_t soft = soft_limit(srv);
    return v > 0 && (size_t)v >= soft ? (size_t)v : 8 * soft;
}

/* Restarts reading a paused connection when nothing holds it: no message
 * waits for its ACK and its unsent ACKs are at most 'limit' bytes. */
static void conn_resume(struct conn *c, size_t limit)
{
    if (!c->paused || c->closed || c->close_after || c->pending ||
        c->srv->stopping || unsent(c) > limit)
        return;
    c->paused = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void conn_maybe_free(struct conn *c)
{
    if (c->closed && c->handles == 0 && c->pending == 0) {
        pv_mllp_free(c->framer);
        free(c);
    }
}

static void srv_unref(pv_mllp_server *srv);

/* A connection holds the server (open_handles) until both its handles are
 * closed: at stop they close after the listener, up to STOP_DRAIN_MS
 * later, and must not find the server freed. */
static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    pv_mllp_server *srv = c->srv;
    c->handles--;
    int last = c->handles == 0;
    if (last) {
        srv->nconn--;
        pv_metrics_mllp_conn(-1);
    }
    conn_maybe_free(c);
    if (last)
        srv_unref(srv);
}

static void conn_close(struct conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;
    free(w->buf);
    free(w);
    if (c->closed)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* The peer is reading: not idle. */
    uv_timer_again(&c->idle);
    conn_resume(c, soft_limit(c->srv) / 2);
}

/* Frames and writes one ACK; takes ownership of ack. */
static void write_ack(struct conn *c, char *ack, size_t len)
{
    char *framed;
    size_t flen;
    if (pv_mllp_wrap((pv_span){ack, len}, &framed, &flen) != 0) {
        free(ack);
        return;
    }
    free(ack);
    pv_mllp_server *srv = c->srv;
    size_t queued = unsent(c);
    if (queued && queued + flen > hard_limit(srv)) {
        /* Safe to drop: this ACK, and every other one queued, answers a
         * message already committed (see the comment at the top). */
        pv_warn("%s: %zu bytes of ACKs not read by the peer, more than "
                "mllp.max_pending_ack_bytes_hard (%zu); closing the "
                "connection (its messages are stored; resent, they are "
                "answered AA as duplicates)",
                c->peer, queued + flen, hard_limit(srv));
        free(framed);
        conn_close(c);
        return;
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w) {
        free(framed);
        return;
    }
    w->c = c;
    w->buf = framed;
    uv_buf_t b = uv_buf_init(framed, (unsigned)flen);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(framed);
        free(w);
        conn_close(c);
        return;
    }
    if (unsent(c) >= soft_limit(srv) && !c->closed) {
        /* Soft limit: read no more from this peer until it reads. */
        if (!c->told) {
            c->told = 1;
            pv_info("%s: %zu bytes of ACKs not read by the peer "
                    "(mllp.max_pending_ack_bytes %zu); not reading from it "
                    "until it does",
                    c->peer, unsent(c), soft_limit(srv));
        }
        if (!c->paused) {
            c->paused = 1;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
}

/* Builds and writes the ACK of one pending message; frees the entry. */
static void answer(pv_mllp_server *srv, struct pending *pe, int failed)
{
    struct conn *c = pe->c;
    int code = failed ? PV_HL7_AE : pe->code;
    char ctl[64];
    snprintf(ctl, sizeof ctl, "PVACK%lu", ++srv->ack_seq);
    pv_hl7_ack_info info = {
        .code = code,
        .error = failed ? PV_HL7_ERR_INTERNAL : pe->error,
        .text = failed ? "could not be stored (database error); send it "
                         "again"
                       : pe->text,
        .control_id = ctl,
        .now = pv_store_now(pv_ingest_store(srv->p)),
    };
    char *ack = NULL;
    size_t len = 0;
    int rc = 0;
    if (pe->batch_ok) {
        /* A batch frame: its batch ACK, as built (issue 15 item 8). */
        ack = failed ? pe->batch_failed : pe->batch_ok;
        free(failed ? pe->batch_ok : pe->batch_failed);
        len = strlen(ack);
    } else if (pe->msg) {
        rc = pv_hl7_ack(pe->msg, &info, &ack, &len);
    } else {
        rc = pv_hl7_ack_unparsed(pe->raw, pe->rawlen, &info, &ack, &len);
    }
    for (int k = 0; k < 3; k++)
        if (failed)
            pv_metrics_failed(PV_FEED_MLLP, pe->kept[k]);
        else
            pv_metrics_stored_n(PV_FEED_MLLP, k, pe->kept[k]);
    if (code == PV_HL7_AA)
        srv->stats.aa++;
    else if (code == PV_HL7_AE)
        srv->stats.ae++;
    else
        srv->stats.ar++;
    if (!rc && !c->closed)
        write_ack(c, ack, len);
    else
        free(ack);
    pv_hl7_free(pe->msg);
    free(pe->raw);
    free(pe->text);
    if (--c->pending == 0)
        srv->busy--;
    if (c->closed) {
        conn_maybe_free(c);
    } else if (c->pending == 0) {
        if (c->close_after)
            conn_close(c);
        else
            conn_resume(c, soft_limit(srv) - 1);
    }
}

/* A committed batch after its sync (rc its result): alert-log lines, the
 * mailer's go-ahead, then the ACKs. After a failed sync the lines and the
 * mail wait for the next sync that succeeds (it covers this commit too).
 * Frees b. */
static void answer_batch(pv_mllp_server *srv, struct pending *b, size_t n,
                         pv_alerts_lines lines, int rc)
{
    if (rc)
        pv_error("MLLP batch of %zu messages committed but not confirmed on "
                 "disk (fdatasync of the WAL failed); answering AE",
                 n);
    else
        pv_ingest_durable(srv->p, lines);
    for (size_t i = 0; i < n; i++)
        answer(srv, &b[i], rc && b[i].code == PV_HL7_AA);
    free(b);
}

/* Answers the batches the finished sync covered (all of them when all is
 * set), oldest first. rc: the sync's result. */
static void answer_committed(pv_mllp_server *srv, int rc, int all)
{
    while (srv->head && (all || srv->head->covered)) {
        struct committed *k = srv->head;
        srv->head = k->next;
        if (!srv->head)
            srv->tail = NULL;
        answer_batch(srv, k->b, k->n, k->lines, rc);
        free(k);
    }
}

static void sync_work(uv_work_t *req)
{
    pv_mllp_server *srv = req->data;
    srv->sync_rc = pv_store_sync_wal(pv_ingest_store(srv->p));
}

static void start_sync(pv_mllp_server *srv);

static void sync_done(uv_work_t *req, int status)
{
    pv_mllp_server *srv = req->data;
    srv->syncing = 0;
    answer_committed(srv, status < 0 ? PV_EIO : srv->sync_rc, 0);
    if (srv->head)
        start_sync(srv);
    srv_unref(srv);
}

static void start_sync(pv_mllp_server *srv)
{
    if (srv->syncing || !srv->head)
        return;
    for (struct committed *k = srv->head; k; k = k->next)
        k->covered = 1;
    srv->sync_req.data = srv;
    if (uv_queue_work(srv->loop, &srv->sync_req, sync_work, sync_done) != 0) {
        /* No thread pool: sync here. */
        answer_committed(srv, pv_store_sync_wal(pv_ingest_store(srv->p)), 1);
        return;
    }
    srv->syncing = 1;
    srv->open_handles++; /* the request holds the server */
}

/* The commit point: commit the batch; its ACKs follow the WAL sync. */
static void flush(void *ud)
{
    pv_mllp_server *srv = ud;
    if (srv->nbatch == 0 && !pv_store_in_tx(pv_ingest_store(srv->p)))
        return;
    int failed = 0;
    pv_alerts_lines lines = {0, 0, 0};
    if (pv_store_in_tx(pv_ingest_store(srv->p))) {
        int rc = pv_ingest_commit_deferred(srv->p, &lines);
        if (rc) {
            pv_error("MLLP batch of %zu messages not committed: %s (%s); "
                     "answering AE",
                     srv->nbatch, pv_strerror(rc),
                     pv_store_errmsg(pv_ingest_store(srv->p)));
            pv_ingest_rollback(srv->p);
            failed = 1;
        }
    }
    srv->stats.batches++;
    if (srv->nbatch)
        pv_metrics_commit_batch((long)srv->nbatch);
    /* Take the batch first: answering may start reads that add to it. */
    struct pending *b = srv->batch;
    size_t n = srv->nbatch;
    srv->batch = NULL;
    srv->nbatch = srv->capbatch = 0;
    if (failed) {
        for (size_t i = 0; i < n; i++) {
            /* Rolled back: an AE/AR kept as rejected is not stored either. */
            if (b[i].code != PV_HL7_AA) {
                for (int k = 0; k < 3; k++)
                    pv_metrics_failed(PV_FEED_MLLP, b[i].kept[k]);
                memset(b[i].kept, 0, sizeof b[i].kept);
            }
            answer(srv, &b[i], b[i].code == PV_HL7_AA);
        }
        free(b);
        return;
    }
    struct committed *k = calloc(1, sizeof *k);
    if (!k) {
        /* No memory to wait: sync here, on the loop. */
        answer_batch(srv, b, n, lines,
                     pv_store_sync_wal(pv_ingest_store(srv->p)));
        return;
    }
    k->b = b;
    k->n = n;
    k->lines = lines;
    if (srv->tail)
        srv->tail->next = k;
    else
        srv->head = k;
    srv->tail = k;
    if (srv->stopping || (!srv->syncing && srv->busy >= srv->nconn))
        /* Stopping, or every connection waits for an ACK (backpressure:
         * none can send anything while the sync runs, e.g. a single
         * stop-and-wait sender): nothing to overlap, so sync here and
         * spare the hand-over to a thread and back. */
        answer_committed(srv, pv_store_sync_wal(pv_ingest_store(srv->p)), 1);
    else
        start_sync(srv);
}

static void on_check(uv_check_t *h)
{
    flush(h->data);
}

static int queue(pv_mllp_server *srv, struct pending pe)
{
    if (srv->nbatch == srv->capbatch) {
        size_t cap = srv->capbatch ? srv->capbatch * 2 : 16;
        struct pending *n = realloc(srv->batch, cap * sizeof *n);
        if (!n)
            return PV_ENOMEM;
        srv->batch = n;
        srv->capbatch = cap;
    }
    srv->batch[srv->nbatch++] = pe;
    if (pe.c->pending++ == 0)
        srv->busy++;
    return 0;
}

/* ---- A batch in one frame (issue 15 item 8) ----------------------------
 * A frame that starts with FHS or BHS is taken like a batch file: split
 * (pv_hl7_split, as 'pvwatch ingest' does), each message stored and judged
 * in the connection's transaction, and answered with one batch ACK (HL7
 * v2.5 section 2.10.3, "acknowledging batches") once the transaction is
 * committed and synced:
 *   BHS|^~\&|<BHS-5>|<BHS-6>|<BHS-3>|<BHS-4>|<now>||||<ack id>|<BHS-11>
 *   (one ACK message per message that was not AA, none when all were)
 *   BTS|<number of ACKs in the batch>|<comment>
 * A batch with no ACK inside acknowledges every message (AA). If the
 * commit fails, the batch ACK holds an AE ACK for every message. */
struct batch_frame {
    pv_mllp_server *srv;
    struct conn *c;
    struct dstr {
        char *p;
        size_t n, cap;
        int oom;
    } ok, failed;
    long messages, naks, faults;
    long kept[3]; /* by ACK code, for the metrics */
    int rc;
    char first_fault[200];
};

static void ds_put(struct dstr *d, const char *s, size_t n)
{
    if (d->oom)
        return;
    if (d->n + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 512;
        while (cap < d->n + n + 1)
            cap *= 2;
        char *q = realloc(d->p, cap);
        if (!q) {
            d->oom = 1;
            return;
        }
        d->p = q;
        d->cap = cap;
    }
    memcpy(d->p + d->n, s, n);
    d->n += n;
    d->p[d->n] = '\0';
}

static void ds_puts(struct dstr *d, const char *s)
{
    ds_put(d, s, strlen(s));
}

/* Field 'f' of the first BHS line of the frame (BHS-1 is the separator),
 * without CR/LF; "" when absent. */
static void bhs_field(pv_span frame, size_t f, char *out, size_t cap)
{
    out[0] = '\0';
    const char *b = frame.ptr, *end = frame.ptr + frame.len;
    const char *line = b;
    while (line < end) {
        const char *eol = line;
        while (eol < end && *eol != '\r' && *eol != '\n')
            eol++;
        if (eol - line >= 4 && !memcmp(line, "BHS", 3)) {
            char fs = line[3];
            const char *q = line + 4;
            for (size_t i = 2; i < f && q < eol; i++) {
                while (q < eol && *q != fs)
                    q++;
                if (q < eol)
                    q++;
            }
            if (f < 2)
                return;
            const char *e = q;
            while (e < eol && *e != fs)
                e++;
            size_t n = (size_t)(e - q) < cap - 1 ? (size_t)(e - q) : cap - 1;
            memcpy(out, q, n);
            out[n] = '\0';
            return;
        }
        line = eol + 1;
    }
}

static int is_batch_frame(pv_span m)
{
    size_t i = 0;
    if (m.len >= 3 && (unsigned char)m.ptr[0] == 0xEF &&
        (unsigned char)m.ptr[1] == 0xBB && (unsigned char)m.ptr[2] == 0xBF)
        i = 3;
    while (i < m.len && (m.ptr[i] == '\r' || m.ptr[i] == '\n' ||
                         m.ptr[i] == ' ' || m.ptr[i] == '\t'))
        i++;
    return m.len - i >= 4 &&
           (!memcmp(m.ptr + i, "FHS", 3) || !memcmp(m.ptr + i, "BHS", 3));
}

static void ack_into(struct dstr *d, const pv_hl7_result *res, pv_span msg,
                     pv_hl7_ack_info *info)
{
    char *ack = NULL;
    size_t len = 0;
    int rc = res->msg ? pv_hl7_ack(res->msg, info, &ack, &len)
                      : pv_hl7_ack_unparsed(msg.ptr, msg.len, info, &ack, &len);
    if (!rc)
        ds_put(d, ack, len);
    else
        d->oom = 1;
    free(ack);
}

static int on_batch_message(void *ud, pv_span msg, long line)
{
    struct batch_frame *bf = ud;
    pv_mllp_server *srv = bf->srv;
    srv->stats.messages++;
    pv_metrics_received(PV_FEED_MLLP);
    pv_hl7_result res;
    int rc = pv_ingest_hl7(srv->p, msg.ptr, msg.len, bf->c->peer, line, &res);
    if (rc) {
        bf->rc = rc;
        pv_hl7_result_free(&res);
        return 1;
    }
    if (res.ack < 0) {
        pv_hl7_result_free(&res);
        return 0;
    }
    bf->messages++;
    bf->kept[res.ack > 0 && res.ack < 3 ? res.ack : 0]++;
    pv_metrics_rejected(PV_FEED_MLLP, res.ack != PV_HL7_AA ? 1 : res.skipped);
    if (res.duplicate)
        srv->stats.duplicates++;
    char ctl[64];
    snprintf(ctl, sizeof ctl, "PVACK%lu", ++srv->ack_seq);
    pv_hl7_ack_info info = {
        .code = res.ack,
        .error = res.error,
        .text = res.text[0] ? res.text : NULL,
        .control_id = ctl,
        .now = pv_store_now(pv_ingest_store(srv->p)),
    };
    if (res.ack != PV_HL7_AA) {
        bf->naks++;
        pv_warn("%s: batch message at line %ld: %s: %s", bf->c->peer, line,
                res.ack == PV_HL7_AE ? "AE" : "AR", res.text);
        ack_into(&bf->ok, &res, msg, &info);
    }
    info.code = PV_HL7_AE;
    info.error = PV_HL7_ERR_INTERNAL;
    info.text = "could not be stored (database error); send it again";
    ack_into(&bf->failed, &res, msg, &info);
    pv_hl7_result_free(&res);
    return 0;
}

static void on_batch_fault(void *ud, long line, const char *reason)
{
    struct batch_frame *bf = ud;
    if (bf->faults++ == 0)
        snprintf(bf->first_fault, sizeof bf->first_fault, "line %ld: %s", line,
                 reason);
    pv_warn("%s: batch frame line %ld: %s", bf->c->peer, line, reason);
}

/* The frame is a batch: store its messages, queue its batch ACK. Returns
 * nonzero when it could not be queued (as on_message). */
static int on_batch(struct conn *c, pv_span frame)
{
    pv_mllp_server *srv = c->srv;
    struct batch_frame bf;
    memset(&bf, 0, sizeof bf);
    bf.srv = srv;
    bf.c = c;
    if (!pv_store_in_tx(pv_ingest_store(srv->p)))
        bf.rc = pv_ingest_begin_relaxed(srv->p);
    if (!bf.rc)
        pv_hl7_split(frame.ptr, frame.len, on_batch_message, on_batch_fault,
                     &bf);
    char app[64], fac[64], rapp[64], rfac[64], bid[64], head[512];
    bhs_field(frame, 3, app, sizeof app);
    bhs_field(frame, 4, fac, sizeof fac);
    bhs_field(frame, 5, rapp, sizeof rapp);
    bhs_field(frame, 6, rfac, sizeof rfac);
    bhs_field(frame, 11, bid, sizeof bid);
    char when[32];
    time_t now = (time_t)pv_store_now(pv_ingest_store(srv->p));
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y%m%d%H%M%S+0000", &tm);
    snprintf(head, sizeof head, "BHS|^~\\&|%s|%s|%s|%s|%s||||PVBACK%lu|%s\r",
             rapp[0] ? rapp : "PVWATCH", rfac, app, fac, when, ++srv->ack_seq,
             bid);
    struct dstr ok = {0}, failed = {0};
    ds_puts(&ok, head);
    ds_puts(&failed, head);
    if (!bf.rc) {
        ds_put(&ok, bf.ok.p ? bf.ok.p : "", bf.ok.n);
        char tail[400];
        if (bf.faults)
            snprintf(tail, sizeof tail,
                     "BTS|%ld|%ld messages; %ld batch envelope fault%s, the "
                     "first: %.200s\r",
                     bf.naks, bf.messages, bf.faults, bf.faults == 1 ? "" : "s",
                     bf.first_fault);
        else
            snprintf(tail, sizeof tail, "BTS|%ld|%ld messages\r", bf.naks,
                     bf.messages);
        for (char *t = tail + 4; *t && t[1]; t++)
            if (*t == '\r' || *t == '\n')
                *t = ' ';
        ds_puts(&ok, tail);
    }
    ds_put(&failed, bf.failed.p ? bf.failed.p : "", bf.failed.n);
    char ftail[160];
    snprintf(ftail, sizeof ftail,
             "BTS|%ld|batch not stored (database error); send it again\r",
             bf.messages);
    ds_puts(&failed, ftail);
    free(bf.ok.p);
    free(bf.failed.p);
    if (bf.rc)
        pv_error("%s: batch frame not stored: %s (%s)", c->peer,
                 pv_strerror(bf.rc), pv_store_errmsg(pv_ingest_store(srv->p)));
    if (ok.oom || failed.oom) {
        free(ok.p);
        free(failed.p);
        return 1;
    }
    struct pending pe = {.c = c, .code = bf.rc ? PV_HL7_AE : PV_HL7_AA};
    if (bf.rc)
        pv_metrics_failed(PV_FEED_MLLP, bf.messages);
    else
        memcpy(pe.kept, bf.kept, sizeof pe.kept);
    /* After a database error the failed variant is sent (see answer). */
    if (bf.rc) {
        pe.batch_ok = failed.p;
        pe.batch_failed = ok.p;
    } else {
        pe.batch_ok = ok.p;
        pe.batch_failed = failed.p;
    }
    if (queue(srv, pe)) {
        free(ok.p);
        free(failed.p);
        return 1;
    }
    if (srv->nbatch >= BATCH_CAP)
        flush(srv);
    return 0;
}

static int on_message(void *ud, pv_span msg)
{
    struct conn *c = ud;
    pv_mllp_server *srv = c->srv;
    if (is_batch_frame(msg))
        return on_batch(c, msg);
    srv->stats.messages++;
    pv_metrics_received(PV_FEED_MLLP);
    pv_ingest *p = srv->p;
    int rc = 0;
    if (!pv_store_in_tx(pv_ingest_store(p)))
        rc = pv_ingest_begin_relaxed(p);
    pv_hl7_result res;
    memset(&res, 0, sizeof res);
    if (!rc)
        rc = pv_ingest_hl7(p, msg.ptr, msg.len, c->peer, 1, &res);
    struct pending pe = {.c = c};
    if (rc) {
        pe.code = PV_HL7_AE;
        pe.error = PV_HL7_ERR_INTERNAL;
        pe.text = strdup("could not be stored (database error); send it "
                         "again");
        pv_error("%s: message not stored: %s (%s)", c->peer, pv_strerror(rc),
                 pv_store_errmsg(pv_ingest_store(p)));
        pv_metrics_failed(PV_FEED_MLLP, 1);
    } else if (res.ack < 0) {
        /* An ACK: never answered (the peer may be acknowledging ours). */
        srv->stats.acks++;
        pv_debug("%s: %s", c->peer, res.text);
        pv_hl7_result_free(&res);
        return 0;
    } else {
        pe.code = res.ack;
        pe.kept[res.ack > 0 && res.ack < 3 ? res.ack : 0] = 1;
        pv_metrics_rejected(PV_FEED_MLLP,
                            res.ack != PV_HL7_AA ? 1 : res.skipped);
        pe.error = res.error;
        pe.text = res.text[0] ? strdup(res.text) : NULL;
        if (res.duplicate) {
            srv->stats.duplicates++;
            pv_info("%s: %s", c->peer, res.text);
        } else if (res.ack != PV_HL7_AA) {
            pv_warn("%s: %s: %s", c->peer, res.ack == PV_HL7_AE ? "AE" : "AR",
                    res.text);
        }
    }
    pe.msg = res.msg;
    res.msg = NULL;
    if (!pe.msg) {
        pe.raw = malloc(msg.len ? msg.len : 1);
        if (pe.raw)
            memcpy(pe.raw, msg.ptr, msg.len);
        pe.rawlen = pe.raw ? msg.len : 0;
    }
    if (queue(srv, pe)) {
        pv_hl7_free(pe.msg);
        free(pe.raw);
        free(pe.text);
        return 1;
    }
    if (srv->nbatch >= BATCH_CAP)
        flush(srv);
    return 0;
}

static void on_frame_error(void *ud, pv_mllp_fault fault, size_t bytes,
                           const char *reason)
{
    struct conn *c = ud;
    (void)bytes;
    pv_warn("%s: %s", c->peer, reason);
    if (fault != PV_MLLP_TOO_BIG)
        return;
    pv_metrics_received(PV_FEED_MLLP);
    pv_metrics_rejected(PV_FEED_MLLP, 1);
    struct pending pe = {
        .c = c, .code = PV_HL7_AR, .error = PV_HL7_ERR_INTERNAL};
    char text[128];
    snprintf(text, sizeof text, "message larger than %ld bytes; rejected",
             c->srv->cfg->mllp.max_message);
    pe.text = strdup(text);
    /* Keep the frame's first segment for the AR: sender, receiver and
     * MSH-10 (MSA-2) come from it (pv_hl7_ack_unparsed). */
    pv_span head = pv_mllp_fault_head(c->framer);
    size_t keep = head.len < 8192 ? head.len : 8192;
    if (keep && (pe.raw = malloc(keep)) != NULL) {
        memcpy(pe.raw, head.ptr, keep);
        pe.rawlen = keep;
    }
    c->close_after = 1;
    if (queue(c->srv, pe)) {
        free(pe.text);
        free(pe.raw);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char slab[64 * 1024];
    /* One read at a time on the loop thread: a static slab suffices, the
     * framer copies what it keeps. */
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_idle(uv_timer_t *t)
{
    struct conn *c = t->data;
    pv_info("%s: idle for %.0fs; closing", c->peer,
            c->srv->cfg->mllp.idle_timeout);
    if (c->pending)
        c->close_after = 1;
    else
        conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n < 0) {
        if (c->pending)
            c->close_after = 1;
        else
            conn_close(c);
        return;
    }
    if (n == 0)
        return;
    uv_timer_again(&c->idle);
    /* Backpressure, paid only by a peer that sends before its ACKs are
     * out: this read is framed (at most a slab more per connection), then
     * reading stops until they are. A stop-and-wait peer never sends
     * early, so its reads are never stopped and restarted (two epoll_ctl
     * calls a message). */
    int owed = c->pending;
    if (pv_mllp_feed(c->framer, buf->base, (size_t)n) != 0 && !c->pending) {
        conn_close(c);
        return;
    }
    if (owed && c->pending && !c->closed && !c->paused) {
        c->paused = 1;
        uv_read_stop(s);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    pv_mllp_server *srv = server->data;
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->handles = 2;
    srv->nconn++;
    pv_metrics_mllp_conn(1);
    srv->open_handles++; /* the connection holds the server */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(c->peer, sizeof c->peer, "mllp:?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[64] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
        snprintf(c->peer, sizeof c->peer, "mllp:%s:%d", ip, port);
    }
    if (srv->nconn > (unsigned long)srv->cfg->mllp.max_connections ||
        srv->stopping) {
        pv_warn("%s: refused: %lu connections open (mllp.max_connections)",
                c->peer, srv->nconn - 1);
        conn_close(c);
        return;
    }
    srv->stats.connections++;
    pv_mllp_callbacks cb = {on_message, on_frame_error};
    c->framer = pv_mllp_new((size_t)srv->cfg->mllp.max_message, &cb, c);
    if (!c->framer) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uint64_t idle_ms = (uint64_t)(srv->cfg->mllp.idle_timeout * 1000);
    uv_timer_start(&c->idle, on_idle, idle_ms, idle_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return -1;
    size_t hl = (size_t)(colon - spec);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

int pv_mllp_server_start(uv_loop_t *loop, pv_ingest *p, const pv_config *cfg,
                         pv_mllp_server **out, char *err, size_t errcap)
{
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (parse_listen(cfg->mllp.listen, &ss) != 0) {
        snprintf(err, errcap, "mllp.listen '%s' is not HOST:PORT",
                 cfg->mllp.listen);
        return PV_EINVAL;
    }
    pv_mllp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return PV_ENOMEM;
    srv->loop = loop;
    srv->p = p;
    srv->cfg = cfg;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->open_handles = 1;
    int rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc) {
        snprintf(err, errcap, "cannot listen on %s: %s", cfg->mllp.listen,
                 uv_strerror(rc));
        pv_mllp_server_stop(srv);
        return PV_EIO;
    }
    if (port_of(&ss) == 0) {
        /* Port 0: the system chose one; say which, or nobody can connect
         * (tests listen on port 0 to avoid collisions). */
        struct sockaddr_storage bound;
        int blen = sizeof bound;
        char ip[64] = "?";
        if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound,
                               &blen) == 0) {
            if (bound.ss_family == AF_INET6)
                uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
            else
                uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
            pv_info(bound.ss_family == AF_INET6 ? "MLLP listening on [%s]:%d"
                                                : "MLLP listening on %s:%d",
                    ip, port_of(&bound));
        }
    }
    uv_check_init(loop, &srv->commit_point);
    srv->commit_point.data = srv;
    srv->open_handles++;
    srv->commit_open = 1;
    uv_check_start(&srv->commit_point, on_check);
    pv_ingest_set_flush(p, flush, srv);
    *out = srv;
    return 0;
}

static void srv_unref(pv_mllp_server *srv)
{
    if (--srv->open_handles == 0) {
        free(srv->batch);
        free(srv);
    }
}

static void on_srv_closed(uv_handle_t *h)
{
    srv_unref(h->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct conn *c = req->data;
    free(req);
    conn_close(c);
}

/* At stop, a peer that does not read its last ACKs gets this long before
 * its connection is closed anyway (uv_shutdown would wait for ever, and
 * the loop with it). Those ACKs answer committed messages: see the comment
 * at the top on why dropping them is safe. */
#define STOP_DRAIN_MS 2000

static void on_stop_drain(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (unsent(c))
        pv_warn("%s: %zu bytes of ACKs still not read by the peer at stop; "
                "closing (its messages are stored)",
                c->peer, unsent(c));
    conn_close(c);
}

/* At stop: the last ACKs are queued; shut the write side down once they
 * are out (uv_shutdown waits for pending writes), then close. */
static void close_conn_walk(uv_handle_t *h, void *arg)
{
    pv_mllp_server *srv = arg;
    if (h->type != UV_TCP || h == (uv_handle_t *)&srv->listener ||
        uv_is_closing(h))
        return;
    struct conn *c = h->data;
    if (!c || c->srv != srv || c->closed)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
        return;
    }
    uv_timer_start(&c->idle, on_stop_drain, STOP_DRAIN_MS, 0);
}

void pv_mllp_server_stop(pv_mllp_server *s)
{
    if (!s)
        return;
    s->stopping = 1;
    flush(s);
    /* Batches still waiting for a running sync: sync once more here and
     * answer them before the connections are shut down. */
    answer_committed(s, pv_store_sync_wal(pv_ingest_store(s->p)), 1);
    pv_ingest_set_flush(s->p, NULL, NULL);
    uv_walk(s->loop, close_conn_walk, s);
    uv_close((uv_handle_t *)&s->listener, on_srv_closed);
    if (s->commit_open) {
        s->commit_open = 0;
        uv_close((uv_handle_t *)&s->commit_point, on_srv_closed);
    }
}

void pv_mllp_server_stats(const pv_mllp_server *s, pv_mllp_stats *out)
{
    *out = s->stats;
}

void pv_mllp_server_address(const pv_mllp_server *s, char *out, size_t cap)
{
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    char ip[64] = "?";
    snprintf(out, cap, "?");
    if (!s ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) != 0)
        return;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%d", ip, port_of(&bound));
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof ip);
        snprintf(out, cap, "%s:%d", ip, port_of(&bound));
    }
}
