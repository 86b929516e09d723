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
 * escaped (\u00XX), so the output is always valid JSON. */
void pv_buf_json_str(pv_buf *b, const char *s, size_t len);
/* Appends a number as JSON (null for NaN/inf). */
void pv_buf_json_num(pv_buf *b, double v);
/* The contents as a C string ("" when empty); never NULL unless failed. */
const char *pv_buf_cstr(pv_buf *b);
int pv_buf_ok(const pv_buf *b);
void pv_buf_reset(pv_buf *b);
void pv_buf_free(pv_buf *b);

#endif
