/* ingest: the pipeline every feed goes through — store the facts, run the
 * rules on each, record the alerts — and the reading of whole files.
 *
 * A pipeline owns the store, the rule set and the alerts of one engine.
 * Work happens inside a transaction the caller opens (pv_ingest_begin) and
 * closes (pv_ingest_commit): that is the group commit of DESIGN.md, and a
 * file or message inside it is one savepoint, so it can fail alone. The
 * alert log is written only after commit. Calls store, rules, alerts, csv
 * and map; the engine and the CLI call it. */
#ifndef PV_INGEST_H
#define PV_INGEST_H

#include <stdint.h>
#include <stdio.h>

#include "alerts.h"
#include "buf.h"
#include "config.h"
#include "error.h"
#include "facts.h"
#include "map.h"
#include "rules.h"
#include "store.h"

typedef struct pv_ingest pv_ingest;

/* Opens the database of cfg (or db_path when not NULL), loads the rules
 * (unless no_rules) and opens the alert log. Errors are appended to
 * errors as lines; returns PV_EINVAL for configuration or rule errors,
 * other codes for runtime failures. */
int pv_ingest_open(const pv_config *cfg, const char *db_path, int no_rules,
                   pv_ingest **out, pv_buf *errors);
void pv_ingest_close(pv_ingest *p);

pv_store *pv_ingest_store(pv_ingest *p);
pv_alerts *pv_ingest_alerts(pv_ingest *p);
pv_rules *pv_ingest_rules(pv_ingest *p);
const pv_config *pv_ingest_config(pv_ingest *p);
/* Replaces the rule set (hot reload); the old one is freed. */
void pv_ingest_set_rules(pv_ingest *p, pv_rules *r);

int pv_ingest_begin(pv_ingest *p);
/* Commits and then writes the alert log lines of the transaction. */
int pv_ingest_commit(pv_ingest *p);
void pv_ingest_rollback(pv_ingest *p);

/* One fact: stored, then offered to the rules. Inside a transaction. */
int pv_ingest_lab(pv_ingest *p, const pv_obs *o, int64_t *id);
int pv_ingest_exposure(pv_ingest *p, const pv_exposure *e, int64_t *id);
int pv_ingest_event(pv_ingest *p, const pv_event *e, int64_t *id);

/* What happened to one file. */
typedef struct pv_file_report {
    const char *kind;   /* "labs", "synthea observations", ... or NULL */
    long stored;
    long rejected;
    int duplicate;      /* the same bytes were ingested before */
    int64_t duplicate_of;
    int failed;         /* unreadable, unknown header, database failure */
    pv_buf errors;      /* "NAME:LINE: reason\n" per bad record */
    uint64_t bytes;
} pv_file_report;

void pv_file_report_free(pv_file_report *r);

/* Ingests one file ("-" = stdin) inside the open transaction, as one
 * savepoint: rows are stored one by one, bad rows are listed in
 * rep->errors and skipped, the good rows kept. 'name' is how the file is
 * named in messages. Returns 0 when the file was read (even with rejected
 * rows or as a duplicate), or a negative code when the database failed,
 * in which case the savepoint was rolled back. */
int pv_ingest_file(pv_ingest *p, const char *path, const char *name,
                   pv_file_report *rep);

/* Feeds CSV bytes of a followed file (see tail.c): the parser state lives
 * with the caller. Exposed for tail.c only. */
int pv_ingest_csv_record(pv_ingest *p, const pv_csv_map *m,
                         const pv_span *fields, size_t n, long line,
                         int64_t message_id, const char *name,
                         pv_file_report *rep);

#endif
