/* test_config_limits: what a mistaken or hostile configuration file may
 * cost 'pvwatch check' and start-up — regression tests for what fuzzing the
 * loader (tests/fuzz/fuzz_config.c) found; the inputs are also in
 * tests/fuzz/corpus/config/ under the same names:
 *   - memory_bomb: "s = s .. s" forty times asked Lua for a terabyte (the
 *     fuzzer's out-of-memory report); now a 64 MiB cap and an error;
 *   - sparse_list / sparse_routes: a table such as {[1]=..., [2]=...,
 *     [4]=..., [2^61]=...} has a length of 2^61, and the loader walked
 *     every index (an endless loop of error lines; for email.routes a
 *     calloc of n routes first); now lists over 10,000 entries are an
 *     error;
 *   - many_errors: a file with thousands of mistakes printed thousands of
 *     lines, each found by scanning the whole file; now 100 lines and a
 *     count of the rest.
 * Each must fail quickly with a clear message; the ordinary example must
 * still load. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "test.h"

static char base[] = "/tmp/pv_test_config_limits.XXXXXX";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Loads text as base/NAME.lua; returns the status, the errors in *errs
 * (caller frees) and the seconds it took in *secs. */
static int load(const char *name, const char *text, pv_buf *errs, double *secs)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.lua", base, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    pv_config cfg;
    double t0 = now_s();
    int rc = pv_config_load(path, &cfg, errs);
    *secs = now_s() - t0;
    pv_config_free(&cfg);
    return rc;
}

static void expect_fail(const char *name, const char *text, const char *needle,
                        double max_secs)
{
    pv_buf errs = PV_BUF_INIT;
    double secs;
    int rc = load(name, text, &errs, &secs);
    CHECK_INT(rc, PV_EINVAL);
    const char *msg = pv_buf_cstr(&errs);
    if (msg && strstr(msg, needle))
        pv_test_passed++;
    else
        PV_FAIL_("%s: errors lack \"%s\": \"%.300s\"", name, needle,
                 msg ? msg : "(null)");
    if (secs <= max_secs)
        pv_test_passed++;
    else
        PV_FAIL_("%s: took %.2f s (at most %.1f s)", name, secs, max_secs);
    pv_buf_free(&errs);
}

static void test_memory_bomb(void)
{
    expect_fail("memory_bomb", "s = \"x\" for i = 1, 40 do s = s .. s end\n",
                "configuration uses more than 64 MiB of memory", 10);
    /* A table bomb the same way. */
    expect_fail("table_bomb", "t = {} for i = 1, 1e7 do t[i] = { i } end\n",
                "more than 64 MiB", 20);
}

/* A table whose length (a border) is 2^61, built with a constructor so
 * that its integer keys stay in the hash part: {[1]=v, [2]=v, [4]=v, ...,
 * [2^61]=v}. */
static void sparse(pv_buf *b, const char *value, int top)
{
    pv_buf_puts(b, "{ ");
    for (int i = 0; i <= top; i++)
        pv_buf_printf(b, "[%llu] = %s, ", 1ULL << i, value);
    pv_buf_puts(b, "}");
}

static void expect_sparse(const char *name, const char *before,
                          const char *value, int top, const char *after,
                          const char *needle)
{
    pv_buf src = PV_BUF_INIT;
    pv_buf_puts(&src, before);
    sparse(&src, value, top);
    pv_buf_puts(&src, after);
    expect_fail(name, pv_buf_cstr(&src), needle, 5);
    pv_buf_free(&src);
}

static void test_sparse_lists(void)
{
    expect_sparse("sparse_list", "plugins = ", "\"p\"", 61, "\n",
                  "plugins has more than 10000 entries");
    expect_sparse("sparse_scripts", "scripts = ", "\"s\"", 61, "\n",
                  "scripts has more than 10000 entries");
    expect_sparse("sparse_tail", "tail = ", "\"f.csv\"", 61, "\n",
                  "tail has more than 10000 entries");
    expect_sparse("sparse_routes",
                  "email = { dir = \"o\", routes = ", "{ to = \"a@b\" }", 30,
                  " }\n", "email.routes has more than 10000 entries");
    expect_sparse("sparse_to", "email = { url = \"smtp://h\", to = ", "\"a@b\"",
                  61, " }\n", "email.to has more than 10000 entries");
    expect_sparse("sparse_signals",
                  "email = { dir = \"o\", routes = { { to = \"a@b\", "
                  "signals = ",
                  "\"lab\"", 61, " } } }\n",
                  "email.routes[].signals has more than 10000 entries");
    /* A long list that is not sparse is fine up to the limit. */
    pv_buf errs = PV_BUF_INIT;
    double secs;
    CHECK_INT(load("long_list",
                   "local t = {} for i = 1, 10000 do t[i] = \"d\" .. i end\n"
                   "scripts = t\n",
                   &errs, &secs),
              0);
    CHECK_STR(pv_buf_cstr(&errs), "");
    pv_buf_free(&errs);
    expect_fail("too_long_list",
                "local t = {} for i = 1, 10001 do t[i] = \"d\" .. i end\n"
                "scripts = t\n",
                "scripts has more than 10000 entries", 5);
}

static void test_many_errors(void)
{
    pv_buf src = PV_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        pv_buf_printf(&src, "unknown_key_%d = %d\n", i, i);
    pv_buf errs = PV_BUF_INIT;
    double secs;
    CHECK_INT(load("many_errors", pv_buf_cstr(&src), &errs, &secs), PV_EINVAL);
    const char *msg = pv_buf_cstr(&errs);
    int lines = 0;
    for (const char *p = msg; p && *p; p++)
        lines += *p == '\n';
    CHECK_INT(lines, 101);
    CHECK(msg && strstr(msg, "4900 more errors not shown") != NULL);
    /* The lines that are shown still name FILE:LINE. */
    CHECK(msg && strstr(msg, ".lua:") != NULL);
    if (secs < 5)
        pv_test_passed++;
    else
        PV_FAIL_("many_errors took %.2f s", secs);
    pv_buf_free(&errs);
    pv_buf_free(&src);
}

static void test_example_still_loads(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/examples/pvwatch.lua",
             getenv("PV_SOURCE_DIR") ? getenv("PV_SOURCE_DIR") : PV_SOURCE_DIR);
    pv_config cfg;
    pv_buf errs = PV_BUF_INIT;
    CHECK_INT(pv_config_load(path, &cfg, &errs), 0);
    CHECK_STR(pv_buf_cstr(&errs), "");
    CHECK_INT(cfg.limits.rule_memory, 8 * 1024 * 1024);
    pv_config_free(&cfg);
    pv_buf_free(&errs);
}

int main(void)
{
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 2;
    }
    test_memory_bomb();
    test_sparse_lists();
    test_many_errors();
    test_example_still_loads();
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    return pv_test_report();
}
