/* tmpl: the review console's templates and static files (issue 16), and
 * the small template engine that fills them in.
 *
 * The files of web/templates and web/static are embedded into the binary at
 * build time by cmake/embed_web.cmake (generated web_assets.c). A template
 * knows two placeholders and nothing else:
 *   {{name}}      the value of text variable name, HTML-escaped
 *                 (pv_web_esc);
 *   {{raw:name}}  the value of raw variable name, copied as it is: only
 *                 for fragments the program rendered itself (another
 *                 template, a chart's SVG).
 * Names are [a-z][a-z0-9_]*. A placeholder without a variable, a variable
 * no placeholder uses, a text variable in a raw placeholder (or the other
 * way round) are errors: pv_tmpl_render fails and says which, so a typo
 * fails a test instead of leaving a hole in a page. Malformed placeholders
 * fail the build (embed_web.cmake checks them).
 *
 * No state: everything is const and reentrant, for the console's threads.
 * Calls buf and web.h's pv_web_esc; nothing else. */
#ifndef PV_TMPL_H
#define PV_TMPL_H

#include <stddef.h>

#include "buf.h"

/* One embedded file (generated table in web_assets.c). */
struct pv_tmpl_file {
    const char *name; /* "worklist.html", "app.css" */
    const char *data; /* len bytes, then a NUL */
    size_t len;
};
extern const struct pv_tmpl_file pv_tmpl_templates[]; /* web/templates */
extern const size_t pv_tmpl_templates_count;
extern const struct pv_tmpl_file pv_tmpl_statics[]; /* web/static */
extern const size_t pv_tmpl_statics_count;

/* A variable: value is escaped ({{name}}) unless raw ({{raw:name}}).
 * value NULL renders as "". */
typedef struct pv_tmpl_var {
    const char *name;
    const char *value;
    int raw;
} pv_tmpl_var;
#define PV_TMPL_TEXT(n, v)                                                     \
    {                                                                          \
        (n), (v), 0                                                            \
    }
#define PV_TMPL_RAW(n, v)                                                      \
    {                                                                          \
        (n), (v), 1                                                            \
    }
/* At most this many variables per render. */
#define PV_TMPL_MAX_VARS 64

/* Appends template name (a file of web/templates) filled in with vars to
 * out. Returns 0, or -1 with a sentence in err (unknown template,
 * placeholder without a variable, unused variable, raw/text mismatch);
 * out then holds a partial rendering the caller discards. */
int pv_tmpl_render(pv_buf *out, const char *name, const pv_tmpl_var *vars,
                   size_t nvars, char *err, size_t errcap);
/* The same for a template given as text (tests); what names it in err. */
int pv_tmpl_render_src(pv_buf *out, const char *what, const char *src,
                       size_t len, const pv_tmpl_var *vars, size_t nvars,
                       char *err, size_t errcap);

/* A static file of web/static ("app.css"): its bytes (owned by the
 * program, never freed), *len and *content_type ("text/css;
 * charset=utf-8", ...); NULL when there is no such file. len and
 * content_type may be NULL. http serves it at /static/NAME. */
const char *pv_tmpl_asset(const char *name, size_t *len,
                          const char **content_type);

#endif
