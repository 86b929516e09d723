/* map: turns CSV rows into facts (HL7 mapping lives in map_hl7.c).
 *
 * The header row decides the kind of file (DESIGN "Feeds": labs,
 * medications, events; Synthea's observations, medications, conditions
 * and patients; a patients file of our own). Column names are
 * case-insensitive and extra columns are ignored. A row that cannot be
 * mapped gets a reason naming the field ("observed_at '2026-13-45' is not a
 * valid time"). Pure: no I/O, no database. */
#ifndef PV_MAP_H
#define PV_MAP_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "facts.h"

enum pv_csv_kind {
    PV_CSV_LABS = 1,
    PV_CSV_MEDICATIONS,
    PV_CSV_EVENTS,
    PV_CSV_PATIENTS,
};

#define PV_MAP_MAXCOLS 24

/* A header with more columns is rejected ("header has N columns, more than
 * the limit of 1024"): no feed has that many, and it bounds the header's
 * check. */
#define PV_MAP_MAX_HEADER_COLS 1024

typedef struct pv_csv_map {
    enum pv_csv_kind kind;
    const char *name;        /* "labs", "synthea observations", ... */
    size_t ncols;            /* columns in the header */
    int col[PV_MAP_MAXCOLS]; /* logical column -> header index, -1 absent */
    const char *code_system; /* default for the kind */
} pv_csv_map;

/* A mapped row. Exactly one of the facts is filled, by kind; patient rows
 * fill birth_date/sex. Strings point into the scratch buffer given to
 * pv_map_csv_row and live until it is reused. */
typedef struct pv_row {
    enum pv_csv_kind kind;
    pv_obs obs;
    pv_exposure exp;
    pv_event ev;
    const char *patient_id;
    const char *birth_date; /* YYYY-MM-DD or NULL */
    const char *sex;
} pv_row;

/* Recognises the header, in time linear in its size. On failure (more
 * than PV_MAP_MAX_HEADER_COLS columns, a column twice, no kind fits) writes
 * the reason and returns PV_EINVAL. */
int pv_map_csv_header(const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                      size_t errcap);

/* Maps one data row. Returns 0, or PV_EINVAL with the reason in err. */
int pv_map_csv_row(const pv_csv_map *m, const pv_span *fields, size_t n,
                   long line, pv_row *row, pv_buf *scratch, char *err,
                   size_t errcap);

/* Strict number parsing of a span (surrounding blanks allowed): 0 or
 * PV_EINVAL. Accepts only finite decimal numbers. */
int pv_map_number(const char *s, size_t len, double *out);

/* Parses a reference range ("3.5-7.0", "<5", ">40") into o's ref_low /
 * ref_high. Returns 0, or PV_EINVAL leaving o unchanged. */
int pv_map_ref_range(const char *s, pv_obs *o);

#endif
