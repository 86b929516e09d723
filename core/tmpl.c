/* tmpl: the template engine and the embedded files (tmpl.h). */
#include "tmpl.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "web.h"

static int name_char(char c, int first)
{
    if (c >= 'a' && c <= 'z')
        return 1;
    return !first && ((c >= '0' && c <= '9') || c == '_');
}

static size_t line_of(const char *src, const char *at)
{
    size_t line = 1;
    for (const char *p = src; p < at; p++)
        line += *p == '\n';
    return line;
}

int pv_tmpl_render_src(pv_buf *out, const char *what, const char *src,
                       size_t len, const pv_tmpl_var *vars, size_t nvars,
                       char *err, size_t errcap)
{
    if (nvars > PV_TMPL_MAX_VARS) {
        snprintf(err, errcap, "template %s: %zu variables, at most %d", what,
                 nvars, PV_TMPL_MAX_VARS);
        return -1;
    }
    uint64_t used = 0;
    const char *p = src, *end = src + len;
    while (p < end) {
        const char *open = NULL;
        for (const char *q = p; q + 1 < end; q++)
            if (q[0] == '{' && q[1] == '{') {
                open = q;
                break;
            }
        if (!open) {
            pv_buf_append(out, p, (size_t)(end - p));
            break;
        }
        pv_buf_append(out, p, (size_t)(open - p));
        const char *n = open + 2;
        int raw = 0;
        if ((size_t)(end - n) > 4 && memcmp(n, "raw:", 4) == 0) {
            raw = 1;
            n += 4;
        }
        const char *ne = n;
        while (ne < end && name_char(*ne, ne == n))
            ne++;
        if (ne == n || end - ne < 2 || ne[0] != '}' || ne[1] != '}') {
            snprintf(err, errcap,
                     "template %s:%zu: malformed placeholder (expected "
                     "{{name}} or {{raw:name}})",
                     what, line_of(src, open));
            return -1;
        }
        size_t nl = (size_t)(ne - n);
        size_t i;
        for (i = 0; i < nvars; i++)
            if (strlen(vars[i].name) == nl && memcmp(vars[i].name, n, nl) == 0)
                break;
        if (i == nvars) {
            snprintf(err, errcap,
                     "template %s:%zu: unknown placeholder {{%s%.*s}}", what,
                     line_of(src, open), raw ? "raw:" : "", (int)nl, n);
            return -1;
        }
        if (vars[i].raw != raw) {
            snprintf(err, errcap,
                     "template %s:%zu: {{%s%.*s}} is given as %s "
                     "text",
                     what, line_of(src, open), raw ? "raw:" : "", (int)nl, n,
                     vars[i].raw ? "raw (pre-rendered)" : "plain");
            return -1;
        }
        used |= (uint64_t)1 << i;
        if (vars[i].value && raw)
            pv_buf_puts(out, vars[i].value);
        else if (vars[i].value)
            pv_web_esc(out, vars[i].value);
        p = ne + 2;
    }
    for (size_t i = 0; i < nvars; i++)
        if (!(used & ((uint64_t)1 << i))) {
            snprintf(err, errcap,
                     "template %s: variable '%s' is given but never used", what,
                     vars[i].name);
            return -1;
        }
    if (!pv_buf_ok(out)) {
        snprintf(err, errcap, "template %s: out of memory", what);
        return -1;
    }
    return 0;
}

static const struct pv_tmpl_file *find(const struct pv_tmpl_file *t, size_t n,
                                       const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

int pv_tmpl_render(pv_buf *out, const char *name, const pv_tmpl_var *vars,
                   size_t nvars, char *err, size_t errcap)
{
    const struct pv_tmpl_file *f =
        find(pv_tmpl_templates, pv_tmpl_templates_count, name);
    if (!f) {
        snprintf(err, errcap, "no template %s in web/templates",
                 name ? name : "(null)");
        return -1;
    }
    return pv_tmpl_render_src(out, f->name, f->data, f->len, vars, nvars, err,
                              errcap);
}

static const char *content_type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

const char *pv_tmpl_asset(const char *name, size_t *len,
                          const char **content_type)
{
    const struct pv_tmpl_file *f =
        find(pv_tmpl_statics, pv_tmpl_statics_count, name);
    if (!f)
        return NULL;
    if (len)
        *len = f->len;
    if (content_type)
        *content_type = content_type_of(f->name);
    return f->data;
}
