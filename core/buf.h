/* buf: a growable byte buffer, and JSON string escaping into it.
 *
 * Used to build alert log lines, error summaries and mail bodies. The
 * buffer owns its bytes; pv_buf_free releases them, pv_buf_take hands them
 * to the caller. After an allocation failure the buffer is marked failed,
 * further appends do nothing, and pv_buf_ok() says so, so a caller checks
 * once at the end. Depends on nothing. */
#ifndef PV_BUF_H
#define PV_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct pv_buf {
    char *ptr; /* always NUL-terminated when len > 0 or after pv_buf_cstr */
    size_t len;
    size_t cap;
    int failed;
} pv_buf;

#define PV_BUF_INIT                                                            \
    {                                                                          \
        NULL, 0, 0, 0                                                          \
    }

void pv_buf_append(pv_buf *b, const char *data, size_t len);
void pv_buf_puts(pv_buf *b, const char *s);
void pv_buf_printf(pv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s (len bytes, or strlen when len is (size_t)-1) as a quoted JSON
 * string; NULL appends null. Control characters and invalid UTF-8 bytes are
 * escaped (\u00XX), so the output is always valid JSON; so are DEL and the
 * C1 controls (U+0080..U+009F), which terminals would act on. */
void pv_buf_json_str(pv_buf *b, const char *s, size_t len);
/* Appends s (len bytes, or strlen when len is (size_t)-1) made safe for a
 * terminal or a log line: control characters become C escapes -- \n, \r,
 * \t, and \xNN for the other C0 bytes, DEL and bytes that are not valid
 * UTF-8 -- and the C1 controls U+0080..U+009F become \u0080..\u009f;
 * valid UTF-8 is kept as it is. With PV_ESC_KEEP_NL a '\n' is kept (text
 * whose lines are meant, e.g. a table), with PV_ESC_KEEP_TAB a '\t'. NULL
 * appends "(null)". */
enum { PV_ESC_KEEP_NL = 1, PV_ESC_KEEP_TAB = 2 };
void pv_buf_put_escaped(pv_buf *b, const char *s, size_t len, int flags);
/* Resets b, puts s escaped (pv_buf_put_escaped, no flags) into it and
 * returns it as a C string (never NULL: "" when out of memory). */
const char *pv_buf_escape(pv_buf *b, const char *s);
/* Appends a number as JSON (null for NaN/inf). */
void pv_buf_json_num(pv_buf *b, double v);
/* The contents as a C string ("" when empty); never NULL unless failed. */
const char *pv_buf_cstr(pv_buf *b);
int pv_buf_ok(const pv_buf *b);
void pv_buf_reset(pv_buf *b);
void pv_buf_free(pv_buf *b);

#endif
