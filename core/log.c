/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

static enum pv_log_level max_level = PV_LOG_INFO;

void pv_log_set_level(enum pv_log_level level)
{
    max_level = level;
}

void pv_log(enum pv_log_level level, const char *fmt, ...)
{
    if (level > max_level)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* The message carries feed text (patient ids, values, file names): its
     * control characters are escaped, so that it cannot forge log lines
     * (a newline) or drive the terminal (ESC). Trailing newlines are the
     * caller's line end, not part of the message. */
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == '\n')
        len--;
    static const char *const tag[] = {"", "warning: ", "", ""};
    pv_buf b = PV_BUF_INIT;
    pv_buf_printf(&b, "pvwatch: %s", tag[level]);
    pv_buf_put_escaped(&b, line, len, 0);
    pv_buf_append(&b, "\n", 1);
    /* One write per line keeps lines whole when several processes share
     * stderr. */
    if (pv_buf_ok(&b))
        fputs(pv_buf_cstr(&b), stderr);
    else
        fprintf(stderr, "pvwatch: %s(message lost: out of memory)\n",
                tag[level]);
    pv_buf_free(&b);
}
