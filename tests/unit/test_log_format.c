/* test_log_format: the log line formats (issue 21 part 2, log.h): every
 * line starts with an ISO 8601 UTC timestamp with milliseconds, then
 * "pvwatch: "; log_format = "json" (or PVWATCH_LOG_FORMAT) gives one valid
 * JSON object per line whatever the message holds; an unknown log_format
 * is a configuration error naming the key and its line. */
#define _GNU_SOURCE
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "test.h"

static int64_t ms_of(int y, int mo, int d, int h, int mi, int s, int ms)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static const char *render(pv_buf *b, enum pv_log_format f, enum pv_log_level l,
                          int64_t ms, const char *msg)
{
    pv_buf_reset(b);
    pv_log_render(b, f, l, ms, msg, strlen(msg));
    return pv_buf_cstr(b);
}

/* A JSON value checker, enough for one flat object of strings: returns
 * the number of members, or -1 when text is not valid JSON of that
 * shape (raw control characters, bad escapes, trailing bytes). */
static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return NULL; /* end of text included */
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static int json_object(const char *p)
{
    int n = 0;
    if (*p++ != '{')
        return -1;
    while (*p != '}') {
        if (n && *p++ != ',')
            return -1;
        if (!(p = json_string(p)) || *p++ != ':' || !(p = json_string(p)))
            return -1;
        n++;
    }
    return strcmp(p, "}\n") == 0 ? n : -1;
}

static void issue21_text_lines(void)
{
    pv_buf b = PV_BUF_INIT;
    int64_t t = ms_of(2026, 12, 7, 16, 45, 0, 123);
    CHECK_STR(render(&b, PV_LOG_TEXT, PV_LOG_INFO, t, "running: 3 rules"),
              "2026-12-07T16:45:00.123Z pvwatch: running: 3 rules\n");
    CHECK_STR(render(&b, PV_LOG_TEXT, PV_LOG_WARN, t, "disk slow"),
              "2026-12-07T16:45:00.123Z pvwatch: warning: disk slow\n");
    CHECK_STR(render(&b, PV_LOG_TEXT, PV_LOG_ERROR, t, "a.csv:3: bad"),
              "2026-12-07T16:45:00.123Z pvwatch: a.csv:3: bad\n");
    /* Milliseconds are padded; the epoch; the last millisecond of a year. */
    CHECK_STR(render(&b, PV_LOG_TEXT, PV_LOG_INFO, 7, "x"),
              "1970-01-01T00:00:00.007Z pvwatch: x\n");
    CHECK_STR(render(&b, PV_LOG_TEXT, PV_LOG_INFO,
                     ms_of(2026, 12, 31, 23, 59, 59, 999), "x"),
              "2026-12-31T23:59:59.999Z pvwatch: x\n");
    /* A message cannot forge a line or drive the terminal. */
    CHECK_STR(render(&b, PV_LOG_TEXT, PV_LOG_INFO, t,
                     "P1\n2026-12-07T00:00:00.000Z pvwatch: forged\033[2J"),
              "2026-12-07T16:45:00.123Z pvwatch: P1\\n2026-12-07T00:00:00.000Z "
              "pvwatch: forged\\x1b[2J\n");
    pv_buf_free(&b);
}

static void issue21_json_lines(void)
{
    pv_buf b = PV_BUF_INIT;
    int64_t t = ms_of(2026, 12, 7, 16, 45, 0, 123);
    CHECK_STR(render(&b, PV_LOG_JSON, PV_LOG_INFO, t, "running"),
              "{\"ts\":\"2026-12-07T16:45:00.123Z\",\"level\":\"info\","
              "\"msg\":\"running\"}\n");
    const char *nasty = "say \"hi\"\\ back\nline\ttab\r\x01\x1f\x7f"
                        "\033[31m \xc3\xa9 \xff"
                        " end";
    const char *j = render(&b, PV_LOG_JSON, PV_LOG_WARN, t, nasty);
    CHECK_INT(json_object(j), 3);
    CHECK_STR(j, "{\"ts\":\"2026-12-07T16:45:00.123Z\",\"level\":\"warning\","
                 "\"msg\":\"say \\\"hi\\\"\\\\ back\\nline\\ttab\\r\\u0001"
                 "\\u001f\\u007f\\u001b[31m \xc3\xa9 \\ufffd end\"}\n");
    /* The checker itself: it refuses what is not JSON. */
    CHECK_INT(json_object("{\"a\":\"b\nc\"}\n"), -1);
    CHECK_INT(json_object("{\"a\":\"\\q\"}\n"), -1);
    CHECK_INT(json_object("{\"a\":\"b\"} x\n"), -1);
    static const char *const lv[] = {"error", "warning", "info", "debug"};
    for (int l = 0; l < 4; l++) {
        char want[64];
        snprintf(want, sizeof want, "\"level\":\"%s\"", lv[l]);
        CHECK(strstr(render(&b, PV_LOG_JSON, (enum pv_log_level)l, t, "m"),
                     want) != NULL);
        /* No "warning: " tag inside a JSON message. */
        CHECK(strstr(pv_buf_cstr(&b), "\"msg\":\"m\"") != NULL);
    }
    pv_buf_free(&b);
}

/* pv_log itself, its stderr captured in a file. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/pv-log-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *out = calloc(1, 65536);
    if (out && pread(fd, out, 65535, 0) < 0)
        out[0] = '\0';
    close(fd);
    unlink(path);
    return out;
}

static void log_three(void)
{
    pv_info("hello %d", 42);
    pv_debug("not shown at info");
    pv_warn("careful \"%s\"", "q");
}

static int matches(const char *re, const char *text)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NEWLINE))
        return 0;
    int ok = regexec(&r, text, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

#define TS "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

static void issue21_pv_log_writes_now(void)
{
    unsetenv("PVWATCH_LOG_FORMAT");
    pv_log_configure(NULL, NULL);
    time_t before = time(NULL);
    char *out = capture(log_three);
    time_t after = time(NULL);
    CHECK(out != NULL);
    if (!out)
        return;
    CHECK(matches("^" TS " pvwatch: hello 42\n" TS
                  " pvwatch: warning: careful \"q\"\n$",
                  out));
    /* The timestamp is the present, in UTC. */
    struct tm tm = {0};
    CHECK(strptime(out, "%Y-%m-%dT%H:%M:%S", &tm) != NULL);
    time_t t = timegm(&tm);
    CHECK(t >= before - 1 && t <= after + 1);
    free(out);

    /* log_level = "debug" shows debug lines; "error" hides warnings. */
    pv_log_configure(NULL, "debug");
    out = capture(log_three);
    CHECK(out && strstr(out, "pvwatch: not shown at info\n"));
    free(out);
    pv_log_configure(NULL, "error");
    out = capture(log_three);
    CHECK_STR(out, "");
    free(out);

    /* JSON: from the configuration, else PVWATCH_LOG_FORMAT. */
    pv_log_configure("json", NULL);
    CHECK_INT(pv_log_get_format(), PV_LOG_JSON);
    out = capture(log_three);
    CHECK(out && matches("^\\{\"ts\":\"" TS "\",\"level\":\"info\",\"msg\":"
                         "\"hello 42\"\\}\n\\{\"ts\":\"" TS
                         "\",\"level\":\"warning\",\"msg\":\"careful "
                         "\\\\\"q\\\\\"\"\\}\n$",
                         out));
    free(out);
    setenv("PVWATCH_LOG_FORMAT", "json", 1);
    pv_log_configure(NULL, NULL);
    CHECK_INT(pv_log_get_format(), PV_LOG_JSON);
    pv_log_configure("text", NULL); /* the file wins */
    CHECK_INT(pv_log_get_format(), PV_LOG_TEXT);
    setenv("PVWATCH_LOG_FORMAT", "yaml", 1); /* unknown: text */
    pv_log_configure(NULL, NULL);
    CHECK_INT(pv_log_get_format(), PV_LOG_TEXT);
    unsetenv("PVWATCH_LOG_FORMAT");
    pv_log_configure(NULL, NULL);
}

static void issue21_config_keys(void)
{
    const char *path = "/tmp/pv-log-format-test.lua";
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("database = \":memory:\"\n\nlog_format = \"yaml\"\n"
          "log_level = \"loud\"\n",
          f);
    fclose(f);
    pv_config cfg;
    pv_buf err = PV_BUF_INIT;
    CHECK(pv_config_load(path, &cfg, &err) != 0);
    CHECK(strstr(pv_buf_cstr(&err),
                 "pv-log-format-test.lua:3: log_format 'yaml' is not one of "
                 "text, json") != NULL);
    CHECK(strstr(pv_buf_cstr(&err), "pv-log-format-test.lua:4: log_level "
                                    "'loud' is not one of") != NULL);
    pv_config_free(&cfg);
    pv_buf_reset(&err);
    f = fopen(path, "w");
    fputs("log_format = \"json\"\nlog_level = \"warning\"\n", f);
    fclose(f);
    CHECK_INT(pv_config_load(path, &cfg, &err), 0);
    CHECK_STR(cfg.log_format, "json");
    CHECK_STR(cfg.log_level, "warning");
    pv_config_free(&cfg);
    /* Not said: NULL (PVWATCH_LOG_FORMAT, else text; info). */
    f = fopen(path, "w");
    fputs("database = \":memory:\"\n", f);
    fclose(f);
    CHECK_INT(pv_config_load(path, &cfg, &err), 0);
    CHECK(cfg.log_format == NULL && cfg.log_level == NULL);
    pv_config_free(&cfg);
    pv_buf_free(&err);
    unlink(path);
}

int main(void)
{
    issue21_text_lines();
    issue21_json_lines();
    issue21_pv_log_writes_now();
    issue21_config_keys();
    return pv_test_report();
}
