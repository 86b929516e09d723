/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

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
    /* One write per line keeps lines whole when several processes share
     * stderr. */
    static const char *const tag[] = {"", "warning: ", "", ""};
    fprintf(stderr, "pvwatch: %s%s\n", tag[level], line);
}
