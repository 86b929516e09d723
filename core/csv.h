/* csv: a streaming RFC 4180 parser. Bytes in, records out; no I/O.
 *
 * Handles quoted fields, doubled quotes, separators and newlines inside
 * quotes, CRLF or LF line ends, a leading UTF-8 BOM, and detects the
 * delimiter (',' ';' or TAB) from the first record. Each record's fields are
 * checked to be valid UTF-8. It does not know what the columns mean (map.c
 * does) and does not compare column counts: the first record is delivered
 * like any other. Blank lines are skipped, not records; a CR without an LF
 * after it is data. A record over max_record bytes is an error, so memory
 * stays bounded whatever the input. Calls nothing but its callbacks. */
#ifndef PV_CSV_H
#define PV_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct pv_csv pv_csv;

/* Called once per complete record. 'line' is the 1-based line on which the
 * record starts. The fields and their bytes are owned by the parser and are
 * valid only during the call (quotes removed, doubled quotes undone). Return
 * 0 to go on, nonzero to stop: pv_csv_feed then returns that value. */
typedef int (*pv_csv_record_fn)(void *ud, long line, const pv_span *fields,
                                size_t nfields);

/* Called once per bad record, which is then skipped. 'reason' is a short
 * English phrase ("unterminated quote", "invalid UTF-8 in field 3", "record
 * longer than 1048576 bytes", "text after closing quote in field 2"); 'line'
 * is where the record started (for an unterminated quote: the line where the
 * quote opened). */
typedef void (*pv_csv_error_fn)(void *ud, long line, const char *reason);

/* Creates a parser. max_record bounds one record's bytes as they stand in
 * the file, quotes and delimiters included, line end not (0 = 1 MiB).
 * Returns NULL when out of memory. Free with pv_csv_free(). */
pv_csv *pv_csv_new(size_t max_record, pv_csv_record_fn on_record,
                   pv_csv_error_fn on_error, void *ud);
void pv_csv_free(pv_csv *p);

/* Feeds the next len bytes. Records completed by them are delivered before
 * it returns; an incomplete last record is kept for the next call. Returns 0,
 * PV_ENOMEM, or the nonzero value a record callback returned. When a callback
 * stops it, the bytes after that record are not consumed: feed again from
 * pv_csv_offset(). After PV_ENOMEM the parser can only be freed; after
 * pv_csv_finish() feeding returns PV_ESTATE. */
int pv_csv_feed(pv_csv *p, const char *buf, size_t len);

/* Ends the input: delivers a last record that has no line end, or reports an
 * unterminated quote. Returns as pv_csv_feed. */
int pv_csv_finish(pv_csv *p);

/* Bytes of input consumed up to the end of the last complete record (or
 * error), counting from the first byte ever fed. A follower of a growing file
 * stores this offset and resumes there. Inside a callback it already stands
 * past the record being reported, so it can be stored with that record. */
uint64_t pv_csv_offset(const pv_csv *p);

/* The line number at pv_csv_offset(): where the next record (or a blank
 * line before it) starts. A follower stores it with the offset and passes
 * both to pv_csv_resume(). */
long pv_csv_line(const pv_csv *p);

/* The delimiter detected from the first record, or 0 before it is known. */
char pv_csv_delimiter(const pv_csv *p);

/* For resuming in the middle of a file: sets the delimiter (skipping
 * detection and BOM handling), the line number of the next record and the
 * offset the next byte fed stands at. Call before feeding. A delimiter of 0
 * (not yet known when the offset was stored) detects it again, and with
 * offset 0 also strips a BOM, as a fresh parser would. */
void pv_csv_resume(pv_csv *p, char delimiter, long line, uint64_t offset);

#endif
