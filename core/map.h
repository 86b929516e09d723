/* map: turns CSV rows into facts (HL7 mapping lives in map_hl7.c).
 *
 * The header row decides the kind of file (DESIGN "Feeds": labs,
 * medications, events; Synthea's observations, medications, conditions
 * and patients; a patients file of our own; OMOP CDM tables and the
 * layouts a site configures, csv_layout.h). Column names are
 * case-insensitive and extra columns are ignored; a header of more than
 * PV_MAP_MAX_HEADER_COLS columns is refused. A row that cannot be mapped
 * gets a reason naming the field ("observed_at '2026-13-45' is not a valid
 * time"). Pure: no I/O, no database. */
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
    /* Issue 15 items 10-11 (csv_layout.h): an OMOP CDM table (its
     * pv_omop_table + 1, 0 = none; its columns in omop_col[]), or a
     * configured layout's strftime-style time format (NULL = ISO 8601 or
     * HL7 TS) and the header names its columns were given. */
    int omop;
    int omop_col[PV_MAP_MAXCOLS];
    const char *time_format;
    const char *header_label[PV_MAP_MAXCOLS];
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
    char text[3][128]; /* text made for the row (OMOP: "OMOP concept N") */
} pv_row;

/* Recognises the header, in time linear in its size. On failure (more
 * than PV_MAP_MAX_HEADER_COLS columns, a column twice, no kind fits) writes
 * the reason and returns PV_EINVAL. */
int pv_map_csv_header(const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                      size_t errcap);

/* A configured layout (issue 15 item 11): keys[i] names a column of the
 * built-in kind ("labs", "medications", "events", "patients"; the names of
 * their pvwatch headers, e.g. patient_id, code, observed_at) and heads[i]
 * the header that holds it. With fields NULL only checks the keys (unknown
 * key, a required column not given): 0 or PV_EINVAL with the reason. With
 * a header, also finds each column (case-insensitively) and fills m. */
int pv_map_csv_mapped(const char *kind, const char *const *keys,
                      const char *const *heads, size_t nkeys,
                      const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                      size_t errcap);

/* The built-in layouts, for `ingest --explain`: the label of layout k and
 * its required column names (NULL-terminated into req, at most max - 1),
 * or NULL past the last. */
const char *pv_map_builtin(size_t k, const char **req, size_t max);

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
