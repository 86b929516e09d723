/* log: one-line diagnostics on stderr.
 *
 * Every line starts with "pvwatch: "; errors about input name the place as
 * "FILE:LINE: what is wrong" (DESIGN, command line). Logs carry no patient
 * names or birth dates: callers pass ids and facts only. Control
 * characters in a message (feed text: patient ids, values, file names) are
 * escaped (pv_buf_put_escaped: \n, \r, \t, \xNN), so a message is always
 * one line and never a terminal escape. Depends on buf.c only; everything
 * may call it. */
#ifndef PV_LOG_H
#define PV_LOG_H

enum pv_log_level { PV_LOG_ERROR, PV_LOG_WARN, PV_LOG_INFO, PV_LOG_DEBUG };

/* Lines above this level are dropped (default PV_LOG_INFO). */
void pv_log_set_level(enum pv_log_level level);

void pv_log(enum pv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define pv_error(...) pv_log(PV_LOG_ERROR, __VA_ARGS__)
#define pv_warn(...) pv_log(PV_LOG_WARN, __VA_ARGS__)
#define pv_info(...) pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)

#endif
