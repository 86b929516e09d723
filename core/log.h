/* log: one-line diagnostics on stderr.
 *
 * A line is "TIMESTAMP pvwatch: MESSAGE" (text, the default) or one JSON
 * object {"ts":TIMESTAMP,"level":"info|warning|error|debug","msg":MESSAGE}
 * (log_format = "json", or PVWATCH_LOG_FORMAT=json when the configuration
 * does not say). TIMESTAMP is ISO 8601 UTC with milliseconds
 * (2026-12-07T16:45:00.123Z); it comes first so that the lines sort by
 * time, and "pvwatch: " follows it as users grep for it (issue 21 part 2).
 * A warning's message starts "warning: " in text. Errors about input name
 * the place as "FILE:LINE: what is wrong" (DESIGN, command line). Logs
 * carry no patient names or birth dates: callers pass ids and facts only.
 * Control characters in a message (feed text: patient ids, values, file
 * names) are escaped (text: pv_buf_put_escaped, \n, \r, \t, \xNN; JSON:
 * pv_buf_json_str), so a message is always one line and never a terminal
 * escape. Depends on buf.c only; everything may call it. Not thread-safe
 * to reconfigure: the level and format are set on the loop thread (start,
 * SIGHUP); other threads only log. */
#ifndef PV_LOG_H
#define PV_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum pv_log_level { PV_LOG_ERROR, PV_LOG_WARN, PV_LOG_INFO, PV_LOG_DEBUG };
enum pv_log_format { PV_LOG_TEXT, PV_LOG_JSON };

/* Lines above this level are dropped (default PV_LOG_INFO). */
void pv_log_set_level(enum pv_log_level level);
enum pv_log_level pv_log_get_level(void);
void pv_log_set_format(enum pv_log_format format);
enum pv_log_format pv_log_get_format(void);

/* The names of the configuration keys log_level ("error", "warning",
 * "info", "debug") and log_format ("text", "json"): 0, or -1 for an
 * unknown name. */
int pv_log_level_parse(const char *name, enum pv_log_level *out);
int pv_log_format_parse(const char *name, enum pv_log_format *out);
const char *pv_log_level_name(enum pv_log_level level);

/* Applies what the configuration says (NULL: not said). An unset format
 * is PVWATCH_LOG_FORMAT's ("text" or "json"), else text; an unset level is
 * info. */
void pv_log_configure(const char *format, const char *level);

/* One line as pv_log writes it, newline included, appended to b: msg
 * (len bytes) at the time ms (milliseconds since the epoch, UTC). For
 * tests and for pv_log. */
void pv_log_render(pv_buf *b, enum pv_log_format format,
                   enum pv_log_level level, int64_t ms, const char *msg,
                   size_t len);

void pv_log(enum pv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define pv_error(...) pv_log(PV_LOG_ERROR, __VA_ARGS__)
#define pv_warn(...) pv_log(PV_LOG_WARN, __VA_ARGS__)
#define pv_info(...) pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)

#endif
