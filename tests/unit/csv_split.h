/* csv_split.h: the unit tests' way to make CSV fields from a line: split
 * on commas into spans, no quoting (test input only; the real parser is
 * csv.c). Shared by test_map.c and test_csv_layout.c. */
#ifndef PV_TEST_CSV_SPLIT_H
#define PV_TEST_CSV_SPLIT_H

#include <stdio.h>
#include <string.h>

#include "csv.h"

struct split {
    char text[2048];
    pv_span f[64];
    size_t n;
};

static void split(struct split *s, const char *line)
{
    snprintf(s->text, sizeof s->text, "%s", line);
    s->n = 0;
    char *p = s->text;
    for (;;) {
        char *c = strchr(p, ',');
        s->f[s->n].ptr = p;
        s->f[s->n].len = c ? (size_t)(c - p) : strlen(p);
        s->n++;
        if (!c || s->n == sizeof s->f / sizeof s->f[0])
            break;
        p = c + 1;
    }
}

#endif
