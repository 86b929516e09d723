/* fuzz_config: the configuration loader (core/config.c) on any file.
 *
 * pv_config_load() takes a path, so each input is written to one anonymous
 * file made once per process (a memfd, or an unlinked temporary file where
 * memfd_create is missing) and loaded through /proc/self/fd/N; nothing is
 * added to core for the fuzzer. Whatever the bytes, loading must end (the
 * loader's instruction cap), stay within memory (its allocation cap), and
 * either succeed with every value inside its documented bounds or fail with
 * at least one error line; freeing must leave nothing behind (ASan/LSan).
 * pv_config_warnings() must accept whatever was loaded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "error.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_config invariant broken: %s\n", what);
    abort();
}

static int file_fd = -1;
static char file_path[64];

static void open_file(void)
{
    if (file_fd >= 0)
        return;
#ifdef MFD_CLOEXEC
    file_fd = memfd_create("pvwatch-fuzz.lua", MFD_CLOEXEC);
#endif
    if (file_fd < 0) {
        char tmpl[] = "/tmp/pv_fuzz_config.XXXXXX";
        file_fd = mkstemp(tmpl);
        if (file_fd < 0)
            fail("cannot create a temporary file");
        unlink(tmpl);
    }
    snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
}

static void put_input(const uint8_t *data, size_t size)
{
    if (ftruncate(file_fd, 0) != 0)
        fail("ftruncate");
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(file_fd, data + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("pwrite");
        done += (size_t)n;
    }
}

static void check_list(const pv_strlist *l, const char *what)
{
    if (l->count && !l->items)
        fail(what);
    for (size_t i = 0; i < l->count; i++)
        if (!l->items[i])
            fail(what);
}

static int severity_ok(const char *s)
{
    return !s || !strcmp(s, "low") || !strcmp(s, "medium") ||
           !strcmp(s, "high") || !strcmp(s, "critical");
}

/* What a successful load promises (config.c's bounds). */
static void check_loaded(const pv_config *c)
{
    if (!c->path || !c->database || !c->alert_log || !c->mllp.listen ||
        !c->inbox.path || !c->label.indication || !c->label.region)
        fail("a required value is NULL after a successful load");
    if (c->mllp.max_message < 1024 || c->mllp.max_message > (1L << 30))
        fail("mllp.max_message out of bounds");
    if (!(c->mllp.idle_timeout >= 0.01 && c->mllp.idle_timeout <= 86400))
        fail("mllp.idle_timeout out of bounds");
    if (c->mllp.max_connections < 1 || c->mllp.max_connections > 100000)
        fail("mllp.max_connections out of bounds");
    if (!(c->inbox.rescan_interval >= 0.05 && c->inbox.rescan_interval <= 3600))
        fail("inbox.rescan_interval out of bounds");
    if (!(c->inbox.settle >= 0 && c->inbox.settle <= 3600))
        fail("inbox.settle out of bounds");
    if (!(c->exposure.washout_days >= 0 && c->exposure.washout_days <= 3650))
        fail("exposure.washout_days out of bounds");
    if (c->limits.rule_instructions < 1000 || c->limits.rule_memory < 64 * 1024)
        fail("limits out of bounds");
    if (strcmp(c->label.indication, "ra") &&
        strcmp(c->label.indication, "aa") &&
        strcmp(c->label.indication, "covid19"))
        fail("label.indication not one of the allowed values");
    if (strcmp(c->label.region, "us") && strcmp(c->label.region, "eu"))
        fail("label.region not one of the allowed values");
    if (!severity_ok(c->email.min_severity) ||
        !severity_ok(c->email.digest_severity))
        fail("email severity not one of the allowed values");
    if (c->email.enabled && !c->email.url == !c->email.dir)
        fail("email enabled without exactly one of url and dir");
    if (c->email.nroutes && !c->email.routes)
        fail("email routes counted but missing");
    for (size_t i = 0; i < c->email.nroutes; i++) {
        if (c->email.routes[i].to.count == 0)
            fail("email route without recipients");
        if (!severity_ok(c->email.routes[i].min_severity))
            fail("email route severity");
        check_list(&c->email.routes[i].to, "route to");
        check_list(&c->email.routes[i].signals, "route signals");
    }
    check_list(&c->plugins, "plugins");
    check_list(&c->scripts, "scripts");
    check_list(&c->tail, "tail");
    check_list(&c->email.to, "email.to");
}

/* libFuzzer's entry point (and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_file();
    put_input(data, size);

    pv_config cfg;
    pv_buf errors = PV_BUF_INIT;
    int rc = pv_config_load(file_path, &cfg, &errors);
    const char *msg = pv_buf_cstr(&errors);
    if (rc == 0) {
        check_loaded(&cfg);
    } else {
        if (rc != PV_EINVAL && rc != PV_EIO && rc != PV_ENOMEM)
            fail("unexpected status");
        if (!msg || !msg[0])
            fail("failed without an error message");
    }
    pv_buf warnings = PV_BUF_INIT;
    int nw = pv_config_warnings(&cfg, &warnings);
    if (nw < 0 || (nw > 0 && !pv_buf_cstr(&warnings)))
        fail("warnings");
    pv_buf_free(&warnings);
    pv_buf_free(&errors);
    pv_config_free(&cfg);
    return 0;
}
