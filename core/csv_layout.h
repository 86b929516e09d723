/* csv_layout: which layout a CSV file is in (issue 15 items 10 and 11).
 *
 * Above map.c: a configured layout (csv.layouts, chosen by a glob on the
 * file's name, columns renamed to those of a built-in kind, an optional
 * time format) is tried first, then the OMOP CDM v5.4 tables person,
 * measurement, drug_exposure, condition_occurrence, death and
 * observation_period (by their standard column names, any case), then
 * pvwatch's own and Synthea's headers (pv_map_csv_header). Rows of an OMOP
 * table are mapped here (pv_omop_row, called by pv_map_csv_row); rows of a
 * configured layout by map.c. Pure: no I/O, no database. */
#ifndef PV_CSV_LAYOUT_H
#define PV_CSV_LAYOUT_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "error.h"
#include "map.h"
#include "pvtime.h"

/* Chooses the layout for a file named fname (only its last path component
 * is matched) whose header is fields[0..n). cfg may be NULL (no configured
 * layouts). 0 with m filled, or PV_EINVAL with the reason in err. */
int pv_layout_header(const pv_config *cfg, const char *fname,
                     const pv_span *fields, size_t n, pv_csv_map *m, char *err,
                     size_t errcap);

/* Says in out, for people, which layout the header matched and, when none
 * did, the required columns each candidate lacks and the headers that
 * nearly match them (case or '_'/' ' aside, or within two edits). Returns
 * 0 when a layout matched, PV_EINVAL when none did. */
int pv_layout_explain(const pv_config *cfg, const char *fname,
                      const pv_span *fields, size_t n, pv_buf *out);

/* Maps one row of an OMOP table; v[0..n) are the row's trimmed fields
 * (NULL when empty). Called by pv_map_csv_row. */
int pv_omop_row(const pv_csv_map *m, const char **v, size_t n, long line,
                pv_row *row, char *err, size_t errcap);

/* Configured layouts' checks (pvwatch check, pv_config_load): a time
 * format of strptime conversions with a year, a month and a day
 * (%Y/%y, %m/%b, %d/%e; %H %M %S %I %p %T %F %D %% and literals); a glob
 * that is not empty, has no '/' and closes each '['. 0 or PV_EINVAL. */
int pv_layout_check_time_format(const char *fmt, char *err, size_t errcap);
int pv_layout_check_glob(const char *glob, char *err, size_t errcap);

/* Parses s with a checked time format, as UTC. 0 or PV_EINVAL. */
int pv_layout_parse_time(const char *fmt, const char *s, pv_time_t *t);

#endif
