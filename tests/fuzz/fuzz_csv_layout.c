/* fuzz_csv_layout: CSV layouts (issue 15 items 10 and 11) under any file.
 *
 * The first byte chooses the file's name (one that a configured layout
 * matches, an OMOP table's, another); the rest is parsed as CSV, its header
 * given to pv_layout_header and pv_layout_explain, every later record to
 * pv_map_csv_row. Nothing may crash, leak or read out of bounds; a mapped
 * row must carry the line it came from and its patient. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "csv_layout.h"
#include "map.h"

static char *keys[] = {"patient_id", "code", "value", "unit", "observed_at"};
static char *heads[] = {"Patient ID", "Test performed code", "Test result",
                        "Result units", "Test date"};

struct st {
    pv_config cfg;
    const char *name;
    pv_csv_map map;
    int have;
    pv_buf scratch;
};

static int on_record(void *ud, long line, const pv_span *f, size_t n)
{
    struct st *s = ud;
    char err[512];
    if (!s->have) {
        pv_buf out = PV_BUF_INIT;
        int ex = pv_layout_explain(&s->cfg, s->name, f, n, &out);
        pv_buf_free(&out);
        int rc =
            pv_layout_header(&s->cfg, s->name, f, n, &s->map, err, sizeof err);
        if ((rc == 0) != (ex == 0))
            abort(); /* explain and header must agree */
        if (rc)
            return 1;
        s->have = 1;
        return 0;
    }
    pv_row row;
    int rc =
        pv_map_csv_row(&s->map, f, n, line, &row, &s->scratch, err, sizeof err);
    if (rc == 0 && !row.patient_id)
        abort();
    if (rc == 0 && row.kind == PV_CSV_LABS && row.obs.line != line)
        abort();
    if (rc && !err[0])
        abort();
    return 0;
}

static void on_error(void *ud, long line, const char *reason)
{
    (void)ud;
    (void)line;
    (void)reason;
}

/* libFuzzer's entry point (and replay.c's). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"simplereport_1.csv", "measurement.csv",
                                  "in/x.csv", "DEATH.CSV"};
    if (size < 1)
        return 0;
    struct st s;
    memset(&s, 0, sizeof s);
    pv_csv_layout_cfg l;
    memset(&l, 0, sizeof l);
    l.match = "simplereport*.csv";
    l.kind = "labs";
    l.time_format = (data[0] & 4) ? "%m/%d/%Y %H:%M" : NULL;
    l.keys.items = keys;
    l.keys.count = 5;
    l.heads.items = heads;
    l.heads.count = 5;
    s.cfg.csv.layouts = &l;
    s.cfg.csv.nlayouts = 1;
    s.name = names[data[0] & 3];
    pv_csv *p = pv_csv_new(4096, on_record, on_error, &s);
    if (!p)
        return 0;
    pv_csv_feed(p, (const char *)data + 1, size - 1);
    pv_csv_finish(p);
    pv_csv_free(p);
    pv_buf_free(&s.scratch);
    return 0;
}
