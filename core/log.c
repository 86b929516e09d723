/* log.c: see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

/* Atomics: the console's threads log while the loop thread may change the
 * level or format (SIGHUP). */
static atomic_int max_level = PV_LOG_INFO;
static atomic_int format = PV_LOG_TEXT;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

/* PVWATCH_LOG_FORMAT: the format until (and unless) the configuration
 * names one. */
static void read_env(void)
{
    const char *v = getenv("PVWATCH_LOG_FORMAT");
    enum pv_log_format f;
    if (v && *v && pv_log_format_parse(v, &f) == 0)
        atomic_store(&format, (int)f);
}

void pv_log_set_level(enum pv_log_level level)
{
    atomic_store(&max_level, (int)level);
}

enum pv_log_level pv_log_get_level(void)
{
    return (enum pv_log_level)atomic_load(&max_level);
}

void pv_log_set_format(enum pv_log_format f)
{
    pthread_once(&env_once, read_env);
    atomic_store(&format, (int)f);
}

enum pv_log_format pv_log_get_format(void)
{
    pthread_once(&env_once, read_env);
    return (enum pv_log_format)atomic_load(&format);
}

int pv_log_level_parse(const char *name, enum pv_log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, level_names[i])) {
            *out = (enum pv_log_level)i;
            return 0;
        }
    return -1;
}

int pv_log_format_parse(const char *name, enum pv_log_format *out)
{
    if (name && !strcmp(name, "text"))
        *out = PV_LOG_TEXT;
    else if (name && !strcmp(name, "json"))
        *out = PV_LOG_JSON;
    else
        return -1;
    return 0;
}

const char *pv_log_level_name(enum pv_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

void pv_log_configure(const char *fmt_name, const char *level_name)
{
    enum pv_log_format f = PV_LOG_TEXT;
    enum pv_log_level l = PV_LOG_INFO;
    const char *env = getenv("PVWATCH_LOG_FORMAT");
    if (pv_log_format_parse(fmt_name, &f) != 0 &&
        pv_log_format_parse(env, &f) != 0)
        f = PV_LOG_TEXT;
    if (pv_log_level_parse(level_name, &l) != 0)
        l = PV_LOG_INFO;
    pv_log_set_format(f);
    pv_log_set_level(l);
}

void pv_log_render(pv_buf *b, enum pv_log_format f, enum pv_log_level level,
                   int64_t ms, const char *msg, size_t len)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    char ts[40] = "1970-01-01T00:00:00";
    if (gmtime_r(&secs, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    size_t n = strlen(ts);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", frac);
    if (f == PV_LOG_JSON) {
        pv_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
                      pv_log_level_name(level));
        pv_buf_json_str(b, msg, len);
        pv_buf_puts(b, "}\n");
        return;
    }
    static const char *const tag[] = {"", "warning: ", "", ""};
    pv_buf_printf(b, "%s pvwatch: %s", ts,
                  (unsigned)level < 4 ? tag[level] : "");
    pv_buf_put_escaped(b, msg, len, 0);
    pv_buf_append(b, "\n", 1);
}

void pv_log(enum pv_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&max_level))
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
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    pv_buf b = PV_BUF_INIT;
    pv_log_render(&b, pv_log_get_format(), level, ms, line, len);
    /* One write per line keeps lines whole when several processes share
     * stderr. */
    if (pv_buf_ok(&b))
        fputs(pv_buf_cstr(&b), stderr);
    else
        fprintf(stderr, "pvwatch: (message lost: out of memory)\n");
    pv_buf_free(&b);
}
