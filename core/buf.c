/* buf.c: see buf.h. */
#include "buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(pv_buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->ptr, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->ptr = p;
    b->cap = cap;
    return 0;
}

void pv_buf_append(pv_buf *b, const char *data, size_t len)
{
    if (grow(b, len))
        return;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
}

void pv_buf_puts(pv_buf *b, const char *s)
{
    pv_buf_append(b, s, strlen(s));
}

void pv_buf_printf(pv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        pv_buf_append(b, small, (size_t)n);
        return;
    }
    if (grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void pv_buf_json_str(pv_buf *b, const char *s, size_t len)
{
    if (!s) {
        pv_buf_puts(b, "null");
        return;
    }
    if (len == (size_t)-1)
        len = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    pv_buf_append(b, "\"", 1);
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        /* Copy plain runs in one go; stop at anything needing care. */
        while (run < len && p[run] >= 0x20 && p[run] < 0x7F && p[run] != '"' &&
               p[run] != '\\')
            run++;
        pv_buf_append(b, s + i, run - i);
        i = run;
        if (i >= len)
            break;
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            pv_buf_append(b, esc, 2);
            i++;
        } else if (c == '\n') {
            pv_buf_append(b, "\\n", 2);
            i++;
        } else if (c == '\r') {
            pv_buf_append(b, "\\r", 2);
            i++;
        } else if (c == '\t') {
            pv_buf_append(b, "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            pv_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t n = utf8_seq(p + i, len - i);
            if (n == 2 && c == 0xC2 && p[i + 1] < 0xA0) {
                pv_buf_printf(b, "\\u%04x", p[i + 1]); /* C1 control */
                i += 2;
            } else if (n) {
                pv_buf_append(b, s + i, n);
                i += n;
            } else {
                /* Not UTF-8: keep the byte visible as U+FFFD. */
                pv_buf_puts(b, "\\ufffd");
                i++;
            }
        }
    }
    pv_buf_append(b, "\"", 1);
}

void pv_buf_put_escaped(pv_buf *b, const char *s, size_t len, int flags)
{
    if (!s) {
        pv_buf_puts(b, "(null)");
        return;
    }
    if (len == (size_t)-1)
        len = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x7F)
            run++;
        pv_buf_append(b, s + i, run - i);
        i = run;
        if (i >= len)
            break;
        unsigned c = p[i];
        if (c == '\n' && (flags & PV_ESC_KEEP_NL)) {
            pv_buf_append(b, "\n", 1);
            i++;
        } else if (c == '\t' && (flags & PV_ESC_KEEP_TAB)) {
            pv_buf_append(b, "\t", 1);
            i++;
        } else if (c == '\n') {
            pv_buf_append(b, "\\n", 2);
            i++;
        } else if (c == '\r') {
            pv_buf_append(b, "\\r", 2);
            i++;
        } else if (c == '\t') {
            pv_buf_append(b, "\\t", 2);
            i++;
        } else if (c < 0x80) {
            pv_buf_printf(b, "\\x%02x", c); /* other C0, DEL */
            i++;
        } else {
            size_t n = utf8_seq(p + i, len - i);
            if (n == 2 && c == 0xC2 && p[i + 1] < 0xA0) {
                pv_buf_printf(b, "\\u%04x", p[i + 1]); /* C1 control */
                i += 2;
            } else if (n) {
                pv_buf_append(b, s + i, n);
                i += n;
            } else {
                pv_buf_printf(b, "\\x%02x", c); /* not UTF-8 */
                i++;
            }
        }
    }
}

const char *pv_buf_escape(pv_buf *b, const char *s)
{
    pv_buf_reset(b);
    pv_buf_put_escaped(b, s, (size_t)-1, 0);
    const char *r = pv_buf_cstr(b);
    return r ? r : "";
}

void pv_buf_json_num(pv_buf *b, double v)
{
    if (isnan(v) || isinf(v))
        pv_buf_puts(b, "null");
    else
        pv_buf_printf(b, "%.15g", v);
}

const char *pv_buf_cstr(pv_buf *b)
{
    if (b->failed)
        return NULL;
    if (!b->ptr)
        return "";
    return b->ptr;
}

int pv_buf_ok(const pv_buf *b)
{
    return !b->failed;
}

void pv_buf_reset(pv_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

void pv_buf_free(pv_buf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
