/* chart.c: see chart.h.
 *
 * Two halves. pv_chart_init runs a small Lua chunk (PROBE below) in a
 * private lua_State that has loaded the rule pack's modules; the chunk
 * reads what the charts draw -- the CTCAE grade boundaries of every term
 * in every unit the term accepts (found with ctcae.grade itself, so the
 * boundary semantics of ctcae.lua hold), the label thresholds
 * (label.threshold), the LOINC analyte sets (codes.loinc_set), the
 * baricitinib identifiers (codes.drug_ids) and the unit spellings and
 * factors of units.lua -- and C copies the numbers into one immutable
 * table, checks its ports of units.canonical/units.convert and
 * codes.drug_matches against what the modules answer, and closes the
 * state. The drawing half only reads that table and the database. */
#include "chart.h"
#include "web.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "facts.h"
#include "pvtime.h"

/* ------------------------------------------------------------------ */
/* The table pv_chart_init builds.                                     */

#define UNAME 32

typedef struct {
    char name[UNAME];
    char kind[16];
    double factor;
} unit_def;

typedef struct {
    char key[48];
    char canon[UNAME];
} spelling;

typedef struct {
    char analyte[UNAME];
    double num, den;
} molar_def;

/* Boundary g of a band set: where the grade reaches g (a decreasing term
 * is grade >= g below it, an increasing one above it); relative: value
 * is a multiple of the LLN/ULN. */
typedef struct {
    int has, relative;
    double value;
} bound_def;

typedef struct {
    char unit[UNAME];
    int has_limit;
    double limit; /* default LLN/ULN in this unit */
    bound_def b[5];
} band_set;

#define MAX_CODES 16
#define MAX_BANDS 16

typedef struct {
    char name[UNAME]; /* codes.lua analyte */
    char abbrev[UNAME];
    char title[64]; /* CTCAE term as text */
    char codes[MAX_CODES][24];
    int ncodes;
    int has_term, increasing;
    band_set bands[MAX_BANDS];
    int nbands;
    int has_threshold;
    double threshold;
    char threshold_unit[UNAME];
    char citation[512];
} analyte_def;

typedef struct {
    char v[48];
} idstr;

#define MAX_IDS 32

struct chart_table {
    unit_def units[32];
    int nunits;
    spelling exact[16];
    int nexact;
    spelling aliases[256];
    int naliases;
    molar_def molar[16];
    int nmolar;
    analyte_def analytes[40];
    int nanalytes;
    idstr names[MAX_IDS], ndc[MAX_IDS], atc[MAX_IDS], rxcui[MAX_IDS],
        omop[MAX_IDS];
    int nnames, nndc, natc, nrxcui, nomop;
    char indication[16], region[16];
};

/* Written only by pv_chart_init / pv_chart_free (one thread, no chart
 * being drawn); read by every chart. */
static struct chart_table *table;

/* ------------------------------------------------------------------ */
/* Ports of units.lua (checked against it at init).                    */

/* units.lua key(): white space removed, micro sign and Greek mu as "u". */
static int unit_key(const char *u, char *k, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++) {
        char c;
        if ((p[0] == 0xC2 && p[1] == 0xB5) || (p[0] == 0xCE && p[1] == 0xBC)) {
            c = 'u';
            p++;
        } else if (*p == ' ' || (*p >= '\t' && *p <= '\r')) {
            continue;
        } else {
            c = (char)*p;
        }
        if (n + 1 >= cap)
            return -1;
        k[n++] = c;
    }
    k[n] = '\0';
    return 0;
}

static const unit_def *unit_find(const struct chart_table *t, const char *name)
{
    for (int i = 0; i < t->nunits; i++)
        if (!strcmp(t->units[i].name, name))
            return &t->units[i];
    return NULL;
}

/* units.canonical(u): the canonical spelling (in the table), or NULL. */
static const char *unit_canon(const struct chart_table *t, const char *u)
{
    char k[64];
    if (!t || !u || unit_key(u, k, sizeof k))
        return NULL;
    const unit_def *d = unit_find(t, k);
    if (d)
        return d->name;
    for (int i = 0; i < t->nexact; i++)
        if (!strcmp(t->exact[i].key, k))
            return t->exact[i].canon;
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (int i = 0; i < t->naliases; i++)
        if (!strcmp(t->aliases[i].key, k))
            return t->aliases[i].canon;
    return NULL;
}

/* units.round(x): 12 significant digits. */
static double round12(double x)
{
    if (!isfinite(x))
        return x;
    char s[64];
    snprintf(s, sizeof s, "%.12g", x);
    return strtod(s, NULL);
}

/* units.convert(v, cf, ct, analyte) between canonical units: 0 and *out,
 * or -1. */
static int convert_canon(const struct chart_table *t, double v, const char *cf,
                         const char *ct, const char *analyte, double *out)
{
    if (!isfinite(v) || !cf || !ct)
        return -1;
    if (!strcmp(cf, ct)) {
        *out = v;
        return 0;
    }
    const unit_def *uf = unit_find(t, cf), *ut = unit_find(t, ct);
    if (!uf || !ut)
        return -1;
    if (!strcmp(uf->kind, ut->kind)) {
        *out = round12(v * uf->factor / ut->factor);
        return 0;
    }
    int f_molar = !strcmp(uf->kind, "molar"),
        t_molar = !strcmp(ut->kind, "molar");
    int f_mass = !strcmp(uf->kind, "mass"), t_mass = !strcmp(ut->kind, "mass");
    if (!((f_mass && t_molar) || (f_molar && t_mass)) || !analyte)
        return -1;
    const molar_def *m = NULL;
    for (int i = 0; i < t->nmolar; i++)
        if (!strcmp(t->molar[i].analyte, analyte))
            m = &t->molar[i];
    if (!m)
        return -1;
    if (f_molar) {
        double mmol = v * uf->factor;
        *out = round12(mmol * m->num / m->den / ut->factor);
    } else {
        double mgdl = v * uf->factor;
        *out = round12(mgdl * m->den / m->num / ut->factor);
    }
    return 0;
}

/* units.convert(v, from, to, analyte): 0 and *out, or -1. */
static int unit_convert(const struct chart_table *t, double v, const char *from,
                        const char *to, const char *analyte, double *out)
{
    return convert_canon(t, v, unit_canon(t, from), unit_canon(t, to), analyte,
                         out);
}

/* unit_canon for rows that mostly repeat the unit of the row before. */
typedef struct {
    int valid;
    char raw[48];
    const char *canon;
} unit_memo;

static const char *unit_canon_memo(const struct chart_table *t, unit_memo *m,
                                   const char *u)
{
    if (!u || strlen(u) >= sizeof m->raw)
        return unit_canon(t, u);
    if (!m->valid || strcmp(m->raw, u)) {
        memcpy(m->raw, u, strlen(u) + 1);
        m->canon = unit_canon(t, u);
        m->valid = 1;
    }
    return m->canon;
}

/* ------------------------------------------------------------------ */
/* Port of codes.drug_matches("baricitinib", exposure) (checked at
 * init against it): a name in the drug text, or one of the identifiers
 * codes.drug_ids lists, as codes.lua's drug_code_matches reads a code. */

static void trim_copy(const char *s, char *out, size_t cap)
{
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r')))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

static int contains_ci(const char *text, const char *needle)
{
    size_t n = strlen(needle);
    if (!text)
        return 0;
    for (const char *p = text; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] &&
               tolower((unsigned char)p[i]) ==
                   tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* codes.lua ndc_key: the 9-digit labeler-product key, or -1. */
static int ndc_key(const char *code, char key[10])
{
    char s[64];
    trim_copy(code, s, sizeof s);
    const char *d1 = strchr(s, '-');
    if (d1) {
        const char *a = s, *b = d1 + 1;
        size_t na = (size_t)(d1 - s);
        const char *d2 = strchr(b, '-');
        size_t nb = d2 ? (size_t)(d2 - b) : strlen(b);
        if (!all_digits(a, na) || !all_digits(b, nb))
            return -1;
        if (d2) {
            size_t nc = strlen(d2 + 1);
            if (nc < 1 || nc > 2 || !all_digits(d2 + 1, nc))
                return -1;
        }
        if (na > 5 || nb > 4)
            return -1;
        memset(key, '0', 9);
        memcpy(key + 5 - na, a, na);
        memcpy(key + 9 - nb, b, nb);
        key[9] = '\0';
        return 0;
    }
    size_t n = strlen(s);
    if (!all_digits(s, n))
        return -1;
    if (n < 8 || n > 11)
        return -1;
    if (n == 11 || n == 9) {
        memcpy(key, s, 9); /* 11: the HIPAA 5-4-2 form's first 9 */
    } else {
        key[0] = '0'; /* 10: read as 4-4-2; 8: a 4-4 product code */
        memcpy(key + 1, s, 8);
    }
    key[9] = '\0';
    return 0;
}

static int in_ids(const idstr *ids, int n, const char *v)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ids[i].v, v))
            return 1;
    return 0;
}

static int bari_code(const struct chart_table *t, const char *rawcode,
                     const char *system)
{
    char code[64], up[64];
    if (!rawcode)
        return 0;
    trim_copy(rawcode, code, sizeof code);
    if (!code[0])
        return 0;
    size_t n = strlen(code);
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)code[i]);
    const char *kind = NULL;
    if (system) {
        char s[128];
        size_t k = 0;
        for (const char *p = system; *p && k + 1 < sizeof s; p++)
            if (isalnum((unsigned char)*p))
                s[k++] = (char)toupper((unsigned char)*p);
        s[k] = '\0';
        if (strstr(s, "RXNORM"))
            kind = "rxnorm";
        else if (strstr(s, "NDC"))
            kind = "ndc";
        else if (strstr(s, "OMOP"))
            kind = "omop";
        else if (strstr(s, "ATC"))
            kind = "atc";
    }
    char key[10], k2[10];
    int ndc_hit = 0;
    if (ndc_key(code, key) == 0)
        for (int i = 0; i < t->nndc && !ndc_hit; i++)
            ndc_hit = ndc_key(t->ndc[i].v, k2) == 0 && !strcmp(key, k2);
    if (kind) {
        if (!strcmp(kind, "ndc"))
            return ndc_hit;
        if (!strcmp(kind, "rxnorm"))
            return in_ids(t->rxcui, t->nrxcui, code);
        if (!strcmp(kind, "omop"))
            return in_ids(t->omop, t->nomop, code);
        return in_ids(t->atc, t->natc, up);
    }
    if (system && system[0])
        return 0;
    if (n == 7 && isupper((unsigned char)up[0]) &&
        isdigit((unsigned char)up[1]) && isdigit((unsigned char)up[2]) &&
        isupper((unsigned char)up[3]) && isupper((unsigned char)up[4]) &&
        isdigit((unsigned char)up[5]) && isdigit((unsigned char)up[6]))
        return in_ids(t->atc, t->natc, up);
    if (strchr(code, '-') || n == 11)
        return ndc_hit;
    return 0;
}

static int is_baricitinib(const struct chart_table *t, const char *drug,
                          const char *code, const char *system)
{
    if (!t)
        return 0;
    for (int i = 0; i < t->nnames; i++)
        if (contains_ci(drug, t->names[i].v))
            return 1;
    return bari_code(t, code, system);
}

/* ------------------------------------------------------------------ */
/* pv_chart_init: the private lua_State.                               */

static const char PROBE[] =
    "-- Run by pv_chart_init in a private lua_State: reads the numbers the\n"
    "-- charts draw from the rule pack's modules and returns them as plain\n"
    "-- tables; C copies them and closes the state.\n"
    "local units, codes, ctcae, label, indication, region = ...\n"
    "\n"
    "-- upvalue(f, name): a module-local table a public function uses.\n"
    "local function upvalue(f, name, where)\n"
    "  for i = 1, 255 do\n"
    "    local n, v = debug.getupvalue(f, i)\n"
    "    if n == nil then break end\n"
    "    if n == name then return v end\n"
    "  end\n"
    "  error((\"%s: no local '%s' (the module changed shape)\"):format(where, "
    "name), 0)\n"
    "end\n"
    "\n"
    "local out = { units = {}, exact = {}, aliases = {}, molar = {},\n"
    "  analytes = {}, checks = {}, canon = {}, bari = {} }\n"
    "\n"
    "-- units.lua: canonical units, spellings, molar factors.\n"
    "local lookup = upvalue(units.canonical, \"lookup\", \"units.lua\")\n"
    "local UNITS = upvalue(lookup, \"UNITS\", \"units.lua\")\n"
    "local EXACT = upvalue(lookup, \"EXACT\", \"units.lua\")\n"
    "local ALIASES = upvalue(lookup, \"ALIASES\", \"units.lua\")\n"
    "local MOLAR = upvalue(units.convert, \"MOLAR\", \"units.lua\")\n"
    "local names = {}\n"
    "for n in pairs(UNITS) do names[#names + 1] = n end\n"
    "table.sort(names)\n"
    "for _, n in ipairs(names) do\n"
    "  out.units[#out.units + 1] = { name = n, kind = UNITS[n].kind,\n"
    "    factor = UNITS[n].factor }\n"
    "end\n"
    "local function pairs_sorted(t, into)\n"
    "  local ks = {}\n"
    "  for k in pairs(t) do ks[#ks + 1] = k end\n"
    "  table.sort(ks)\n"
    "  for _, k in ipairs(ks) do into[#into + 1] = { key = k, canon = t[k] } "
    "end\n"
    "end\n"
    "pairs_sorted(EXACT, out.exact)\n"
    "pairs_sorted(ALIASES, out.aliases)\n"
    "local mnames = {}\n"
    "for n in pairs(MOLAR) do mnames[#mnames + 1] = n end\n"
    "table.sort(mnames)\n"
    "for _, n in ipairs(mnames) do\n"
    "  out.molar[#out.molar + 1] = { analyte = n, num = MOLAR[n][1],\n"
    "    den = MOLAR[n][2] }\n"
    "end\n"
    "-- What units.lua itself answers, for C to check its copy against.\n"
    "local probes = { \" K/uL \", \"G/L\", \"g/l\", \"\\u{B5}mol/L\", "
    "\"\\u{3BC}mol/l\",\n"
    "  \"mL/min/1.73 m2\", \"x10E9/L\", \"cells/uL\", \"nonsense\" }\n"
    "for _, e in ipairs(out.aliases) do probes[#probes + 1] = e.key end\n"
    "for _, e in ipairs(out.exact) do probes[#probes + 1] = e.key end\n"
    "for _, s in ipairs(probes) do\n"
    "  out.canon[#out.canon + 1] = { s = s, canon = units.canonical(s) or \"\" "
    "}\n"
    "end\n"
    "local ans = { \"\" }\n"
    "for _, n in ipairs(mnames) do ans[#ans + 1] = n end\n"
    "for _, a in ipairs(names) do\n"
    "  for _, b in ipairs(names) do\n"
    "    for _, an in ipairs(ans) do\n"
    "      local r = units.convert(1.234, a, b, an ~= \"\" and an or nil)\n"
    "      if r then\n"
    "        out.checks[#out.checks + 1] = { from = a, to = b, analyte = an,\n"
    "          value = r }\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "\n"
    "-- The bands of one CTCAE term in unit u, as grade boundaries found with\n"
    "-- ctcae.grade itself: boundary g is where the grade reaches g.  For a "
    "term\n"
    "-- whose boundary moves with the LLN/ULN it is stored as a multiple of "
    "it.\n"
    "local BIG = 1e12\n"
    "local function grader(term, u, code, opts)\n"
    "  return function(v)\n"
    "    local g = ctcae.grade(term, { value = v, unit = u, code = code }, "
    "opts)\n"
    "    return g or 0\n"
    "  end\n"
    "end\n"
    "local function boundary(gr, g, inc)\n"
    "  -- Bracket the boundary by decades, then halve: gr(lo) < g <= gr(hi).\n"
    "  local lo, hi\n"
    "  if inc then\n"
    "    if gr(0) >= g or gr(BIG) < g then return nil end\n"
    "    lo, hi = 0, 1e-6\n"
    "    while gr(hi) < g and hi < BIG do lo, hi = hi, hi * 10 end\n"
    "  else\n"
    "    if gr(0) < g or gr(BIG) >= g then return nil end\n"
    "    hi, lo = 0, 1e-6\n"
    "    while gr(lo) >= g and lo < BIG do hi, lo = lo, lo * 10 end\n"
    "  end\n"
    "  for _ = 1, 200 do\n"
    "    local mid = (lo + hi) / 2\n"
    "    if mid == lo or mid == hi or math.abs(hi - lo) <= 1e-13 * mid then\n"
    "      break\n"
    "    end\n"
    "    if gr(mid) >= g then hi = mid else lo = mid end\n"
    "  end\n"
    "  return tonumber(string.format(\"%.10g\", hi))\n"
    "end\n"
    "local TERMS = upvalue(ctcae.default_limit, \"TERMS\", \"ctcae.lua\")\n"
    "\n"
    "local function bands_for(term, u, code)\n"
    "  local g0, why = ctcae.grade(term, { value = 1, unit = u, code = code "
    "})\n"
    "  if not g0 then return nil end\n"
    "  local inc = grader(term, u, code, nil)(BIG) > grader(term, u, code, "
    "nil)(0)\n"
    "  local key = inc and \"uln\" or \"lln\"\n"
    "  local set = { unit = u, increasing = inc, b = {} }\n"
    "  local lim, lunit = ctcae.normal_limit(term, { value = 1, unit = u,\n"
    "    code = code })\n"
    "  local L = lim and units.convert(lim, lunit, u, code)\n"
    "  set.limit = L\n"
    "  local ga = grader(term, u, code, L and { [key] = L } or nil)\n"
    "  local gb = L and grader(term, u, code, { [key] = 1.25 * L })\n"
    "  for g = 1, 4 do\n"
    "    local a = boundary(ga, g, inc)\n"
    "    if a then\n"
    "      local e = { value = a, relative = false }\n"
    "      if gb then\n"
    "        local b = boundary(gb, g, inc)\n"
    "        if b and math.abs(b - 1.25 * a) <= 1e-9 * math.abs(b)\n"
    "            and math.abs(b - a) > 1e-9 * math.abs(b) then\n"
    "          e.relative = true\n"
    "          e.value = tonumber(string.format(\"%.10g\", a / L))\n"
    "        end\n"
    "      end\n"
    "      set.b[g] = e\n"
    "    end\n"
    "  end\n"
    "  return set, inc\n"
    "end\n"
    "\n"
    "-- label.lua: the interrupt threshold of each analyte it knows, in its\n"
    "-- base unit (label.lua's ANALYTE table).\n"
    "local LABEL_ANALYTE = upvalue(label.threshold, \"ANALYTE\", "
    "\"label.lua\")\n"
    "-- label.lua's analyte keys and the codes.lua analyte each is.\n"
    "local LABEL_OF = { anc = \"neutrophils\", alc = \"lymphocytes\", hb = "
    "\"hemoglobin\" }\n"
    "local thresholds = {}\n"
    "for la, an in pairs(LABEL_OF) do\n"
    "  if LABEL_ANALYTE[la] then\n"
    "    local lim, cite = label.threshold(\"interrupt\", la, indication, "
    "region)\n"
    "    thresholds[an] = { value = lim, unit = LABEL_ANALYTE[la].unit,\n"
    "      name = LABEL_ANALYTE[la].name, citation = cite }\n"
    "  end\n"
    "end\n"
    "\n"
    "for _, set in ipairs(codes.loinc_sets()) do\n"
    "  local list = codes.loinc_set(set)\n"
    "  local pure = #list > 0\n"
    "  for _, c in ipairs(list) do\n"
    "    if codes.loinc_analyte(c) ~= set then pure = false end\n"
    "  end\n"
    "  if pure then\n"
    "    local a = { name = set, codes = list, bands = {} }\n"
    "    local term = ctcae.term_for(list[1])\n"
    "    if term then\n"
    "      a.term = term\n"
    "      a.abbrev = TERMS[term] and TERMS[term].abbrev or term\n"
    "      a.title = TERMS[term] and TERMS[term].title or term\n"
    "      for _, u in ipairs(names) do\n"
    "        local s, inc = bands_for(term, u, list[1])\n"
    "        if s then\n"
    "          a.bands[#a.bands + 1] = s\n"
    "          a.increasing = inc\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    local t = thresholds[set]\n"
    "    if t and t.value then\n"
    "      a.threshold, a.threshold_unit = t.value, t.unit\n"
    "      a.threshold_citation = t.citation\n"
    "      a.abbrev = a.abbrev or t.name\n"
    "    end\n"
    "    out.analytes[#out.analytes + 1] = a\n"
    "  end\n"
    "end\n"
    "\n"
    "-- codes.lua: what identifies baricitinib.\n"
    "local ids = codes.drug_ids(\"baricitinib\")\n"
    "if not ids then error(\"codes.lua: codes.drug_ids('baricitinib') is "
    "nil\", 0) end\n"
    "out.bari.names = ids.names\n"
    "for _, f in ipairs({ \"ndc\", \"atc\", \"rxcui\", \"omop\" }) do\n"
    "  out.bari[f] = {}\n"
    "  for i, e in ipairs(ids[f]) do out.bari[f][i] = e.code end\n"
    "end\n"
    "-- Sample exposures and what codes.drug_matches says, for C to check its\n"
    "-- matcher against.\n"
    "out.bari_checks = {}\n"
    "local samples = {\n"
    "  { drug = \"Olumiant 2 MG Oral Tablet\" }, { drug = \"BARICITINIB 4mg\" "
    "},\n"
    "  { drug = \"tofacitinib 5 mg\" }, { drug = \"x\", drug_code = "
    "\"00002447930\",\n"
    "  code_system = \"NDC\" }, { drug = \"x\", drug_code = \"0002-4479-30\" "
    "},\n"
    "  { drug = \"x\", drug_code = \"L04AA37\" }, { drug = \"x\", drug_code = "
    "\"l04af02\",\n"
    "  code_system = \"ATC\" }, { drug = \"x\", drug_code = \"2047241\",\n"
    "  code_system = \"RxNorm\" }, { drug = \"x\", drug_code = \"2047241\" },\n"
    "  { drug = \"x\", drug_code = \"1510627\", code_system = \"OMOP\" },\n"
    "  { drug = \"x\", drug_code = \"0002447930\" }, { drug = \"x\",\n"
    "  drug_code = \"000244793\" }, { drug = \"x\", drug_code = \"L04AA37\",\n"
    "  code_system = \"NDC\" }, { drug = \"x\", drug_code = \"http://x/omop "
    "779707\",\n"
    "  code_system = \"http://www.nlm.nih.gov/research/umls/rxnorm\" },\n"
    "}\n"
    "for _, s in ipairs(samples) do\n"
    "  out.bari_checks[#out.bari_checks + 1] = { drug = s.drug,\n"
    "    drug_code = s.drug_code or \"\", code_system = s.code_system or "
    "\"\",\n"
    "    match = codes.drug_matches(\"baricitinib\", s) }\n"
    "end\n"
    "return out\n";

struct loader {
    lua_State *L;
    struct chart_table *t;
    char *err;
    size_t errcap;
    struct timespec deadline;
};

/* A runaway module (an endless loop in an edited scripts/ file) must not
 * hang the console's start: the probe gets 60 s (it takes about 0.1 s;
 * under valgrind a few seconds). */
static void probe_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct loader *ld = *(struct loader **)lua_getextraspace(L);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > ld->deadline.tv_sec ||
        (now.tv_sec == ld->deadline.tv_sec &&
         now.tv_nsec > ld->deadline.tv_nsec))
        luaL_error(L, "chart: reading the rule pack took longer than 60 s");
}

__attribute__((format(printf, 2, 3))) static int fail(struct loader *ld,
                                                      const char *fmt, ...)
{
    if (ld->err && ld->errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err, ld->errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copies string field k of the table at idx into dst. Missing: "" (or
 * an error when need). */
static int get_str(struct loader *ld, int idx, const char *k, char *dst,
                   size_t cap, int need)
{
    lua_State *L = ld->L;
    int ty = lua_getfield(L, idx, k);
    dst[0] = '\0';
    if (ty == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        lua_pop(L, 1);
        if (n >= cap || strlen(s) != n)
            return fail(ld, "chart: rule pack string '%s' is too long: %s", k,
                        s);
        memcpy(dst, s, n + 1);
        return 0;
    }
    lua_pop(L, 1);
    if (need)
        return fail(ld, "chart: rule pack field '%s' is not a string%s", k, "");
    return 0;
}

static int get_num(struct loader *ld, int idx, const char *k, double *out,
                   int *has)
{
    lua_State *L = ld->L;
    int ty = lua_getfield(L, idx, k);
    int ok = ty == LUA_TNUMBER;
    if (ok)
        *out = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (has)
        *has = ok && isfinite(*out);
    else if (!ok || !isfinite(*out))
        return fail(ld, "chart: rule pack field '%s' is not a number%s", k, "");
    return 0;
}

/* Iterates list field k of the table at idx: calls each(ld, item index,
 * i) with the item on the stack top. */
typedef int (*item_fn)(struct loader *ld, int item, int i, void *arg);

static int each_item(struct loader *ld, int idx, const char *k, int max,
                     item_fn fn, void *arg, int *count)
{
    lua_State *L = ld->L;
    *count = 0;
    if (lua_getfield(L, idx, k) != LUA_TTABLE) {
        lua_pop(L, 1);
        return fail(ld, "chart: rule pack list '%s' is missing%s", k, "");
    }
    lua_Integer n = luaL_len(L, -1);
    if (n > max) {
        lua_pop(L, 1);
        return fail(ld,
                    "chart: rule pack list '%s' has more entries than "
                    "the chart's table holds%s",
                    k, "");
    }
    int rc = 0;
    for (lua_Integer i = 1; i <= n && !rc; i++) {
        lua_geti(L, -1, i);
        rc = fn(ld, lua_gettop(L), (int)(i - 1), arg);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!rc)
        *count = (int)n;
    return rc;
}

static int copy_unit(struct loader *ld, int it, int i, void *arg)
{
    (void)arg;
    unit_def *u = &ld->t->units[i];
    if (get_str(ld, it, "name", u->name, sizeof u->name, 1) ||
        get_str(ld, it, "kind", u->kind, sizeof u->kind, 1))
        return -1;
    return get_num(ld, it, "factor", &u->factor, NULL);
}

static int copy_spelling(struct loader *ld, int it, int i, void *arg)
{
    spelling *s = &((spelling *)arg)[i];
    if (get_str(ld, it, "key", s->key, sizeof s->key, 1) ||
        get_str(ld, it, "canon", s->canon, sizeof s->canon, 1))
        return -1;
    return 0;
}

static int copy_molar(struct loader *ld, int it, int i, void *arg)
{
    (void)arg;
    molar_def *m = &ld->t->molar[i];
    if (get_str(ld, it, "analyte", m->analyte, sizeof m->analyte, 1))
        return -1;
    if (get_num(ld, it, "num", &m->num, NULL) ||
        get_num(ld, it, "den", &m->den, NULL))
        return -1;
    return 0;
}

static int copy_idstr(struct loader *ld, int it, int i, void *arg)
{
    idstr *ids = arg;
    lua_State *L = ld->L;
    size_t n;
    const char *s = lua_tolstring(L, it, &n);
    if (!s || n >= sizeof ids[i].v)
        return fail(ld,
                    "chart: codes.lua baricitinib identifier is not a "
                    "short string%s%s",
                    "", "");
    memcpy(ids[i].v, s, n + 1);
    return 0;
}

static int copy_band(struct loader *ld, int it, int i, void *arg)
{
    analyte_def *a = arg;
    band_set *s = &a->bands[i];
    lua_State *L = ld->L;
    if (get_str(ld, it, "unit", s->unit, sizeof s->unit, 1) ||
        get_num(ld, it, "limit", &s->limit, &s->has_limit))
        return -1;
    if (lua_getfield(L, it, "b") == LUA_TTABLE) {
        for (int g = 1; g <= 4; g++) {
            if (lua_geti(L, -1, g) == LUA_TTABLE) {
                int e = lua_gettop(L);
                if (get_num(ld, e, "value", &s->b[g].value, NULL)) {
                    lua_pop(L, 2);
                    return -1;
                }
                lua_getfield(L, e, "relative");
                s->b[g].relative = lua_toboolean(L, -1);
                lua_pop(L, 1);
                s->b[g].has = 1;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return 0;
}

static int copy_code(struct loader *ld, int it, int i, void *arg)
{
    analyte_def *a = arg;
    size_t n;
    const char *s = lua_tolstring(ld->L, it, &n);
    if (!s || n >= sizeof a->codes[i])
        return fail(ld,
                    "chart: codes.lua LOINC code of '%s' is not a short "
                    "string%s",
                    a->name, "");
    memcpy(a->codes[i], s, n + 1);
    return 0;
}

static int copy_analyte(struct loader *ld, int it, int i, void *arg)
{
    (void)arg;
    analyte_def *a = &ld->t->analytes[i];
    lua_State *L = ld->L;
    if (get_str(ld, it, "name", a->name, sizeof a->name, 1) ||
        get_str(ld, it, "abbrev", a->abbrev, sizeof a->abbrev, 0) ||
        get_str(ld, it, "title", a->title, sizeof a->title, 0) ||
        get_str(ld, it, "threshold_unit", a->threshold_unit,
                sizeof a->threshold_unit, 0) ||
        get_str(ld, it, "threshold_citation", a->citation, sizeof a->citation,
                0))
        return -1;
    if (each_item(ld, it, "codes", MAX_CODES, copy_code, a, &a->ncodes) ||
        each_item(ld, it, "bands", MAX_BANDS, copy_band, a, &a->nbands))
        return -1;
    if (get_num(ld, it, "threshold", &a->threshold, &a->has_threshold))
        return -1;
    a->has_threshold = a->has_threshold && a->threshold_unit[0];
    lua_getfield(L, it, "term");
    a->has_term = lua_type(L, -1) == LUA_TSTRING;
    lua_pop(L, 1);
    lua_getfield(L, it, "increasing");
    a->increasing = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!a->abbrev[0])
        memcpy(a->abbrev, a->name, sizeof a->abbrev);
    return 0;
}

/* The checks: C's ports against what the modules answered. */
static int check_canon(struct loader *ld, int it, int i, void *arg)
{
    (void)i;
    (void)arg;
    char s[64], want[UNAME];
    if (get_str(ld, it, "s", s, sizeof s, 1) ||
        get_str(ld, it, "canon", want, sizeof want, 0))
        return -1;
    const char *got = unit_canon(ld->t, s);
    if (strcmp(got ? got : "", want))
        return fail(ld,
                    "chart: the copy of units.lua reads unit '%s' "
                    "otherwise than units.canonical (%s)",
                    s, want);
    return 0;
}

static int check_convert(struct loader *ld, int it, int i, void *arg)
{
    (void)i;
    (void)arg;
    char from[UNAME], to[UNAME], an[UNAME];
    double want = NAN, got = NAN;
    if (get_str(ld, it, "from", from, sizeof from, 1) ||
        get_str(ld, it, "to", to, sizeof to, 1) ||
        get_str(ld, it, "analyte", an, sizeof an, 0) ||
        get_num(ld, it, "value", &want, NULL))
        return -1;
    if (unit_convert(ld->t, 1.234, from, to, an[0] ? an : NULL, &got) ||
        got != want)
        return fail(ld,
                    "chart: the copy of units.lua converts %s to %s "
                    "otherwise than units.convert",
                    from, to);
    return 0;
}

static int check_bari(struct loader *ld, int it, int i, void *arg)
{
    (void)i;
    (void)arg;
    char drug[64], code[64], sys[96];
    if (get_str(ld, it, "drug", drug, sizeof drug, 0) ||
        get_str(ld, it, "drug_code", code, sizeof code, 0) ||
        get_str(ld, it, "code_system", sys, sizeof sys, 0))
        return -1;
    lua_getfield(ld->L, it, "match");
    int want = lua_toboolean(ld->L, -1);
    lua_pop(ld->L, 1);
    if (is_baricitinib(ld->t, drug, code[0] ? code : NULL,
                       sys[0] ? sys : NULL) != want)
        return fail(ld,
                    "chart: the copy of codes.drug_matches answers "
                    "otherwise for drug '%s' code '%s'",
                    drug, code);
    return 0;
}

static int copy_all(struct loader *ld, int out)
{
    struct chart_table *t = ld->t;
    int n;
    if (each_item(ld, out, "units", 32, copy_unit, NULL, &t->nunits) ||
        each_item(ld, out, "exact", 16, copy_spelling, t->exact, &t->nexact) ||
        each_item(ld, out, "aliases", 256, copy_spelling, t->aliases,
                  &t->naliases) ||
        each_item(ld, out, "molar", 16, copy_molar, NULL, &t->nmolar) ||
        each_item(ld, out, "analytes", 40, copy_analyte, NULL, &t->nanalytes))
        return -1;
    lua_State *L = ld->L;
    if (lua_getfield(L, out, "bari") != LUA_TTABLE) {
        lua_pop(L, 1);
        return fail(ld, "chart: no baricitinib identifiers%s%s", "", "");
    }
    int b = lua_gettop(L);
    int rc =
        each_item(ld, b, "names", MAX_IDS, copy_idstr, t->names, &t->nnames) ||
        each_item(ld, b, "ndc", MAX_IDS, copy_idstr, t->ndc, &t->nndc) ||
        each_item(ld, b, "atc", MAX_IDS, copy_idstr, t->atc, &t->natc) ||
        each_item(ld, b, "rxcui", MAX_IDS, copy_idstr, t->rxcui, &t->nrxcui) ||
        each_item(ld, b, "omop", MAX_IDS, copy_idstr, t->omop, &t->nomop);
    lua_pop(L, 1);
    if (rc)
        return -1;
    if (each_item(ld, out, "canon", 100000, check_canon, NULL, &n) ||
        each_item(ld, out, "checks", 100000, check_convert, NULL, &n) ||
        each_item(ld, out, "bari_checks", 1000, check_bari, NULL, &n))
        return -1;
    return 0;
}

static int load_dirs(char *const *dirs, size_t ndirs, const char *indication,
                     const char *region, char *err, size_t errcap)
{
    if (ndirs == 0)
        return snprintf(err, errcap, "chart: no scripts directory"), -1;
    pv_buf path = PV_BUF_INIT;
    for (size_t i = 0; i < ndirs; i++) {
        if (!dirs[i] || strpbrk(dirs[i], ";?")) {
            pv_buf_free(&path);
            return snprintf(err, errcap,
                            "chart: scripts directory '%s' cannot be "
                            "searched (';' or '?' in it)",
                            dirs[i] ? dirs[i] : "(null)"),
                   -1;
        }
        pv_buf_printf(&path, "%s%s/?.lua", i ? ";" : "", dirs[i]);
    }
    struct chart_table *t = calloc(1, sizeof *t);
    lua_State *L = luaL_newstate();
    if (!t || !L || !pv_buf_ok(&path)) {
        free(t);
        if (L)
            lua_close(L);
        pv_buf_free(&path);
        return snprintf(err, errcap, "chart: out of memory"), -1;
    }
    snprintf(t->indication, sizeof t->indication, "%s",
             indication ? indication : "ra");
    snprintf(t->region, sizeof t->region, "%s", region ? region : "us");
    struct loader ld = {L, t, err, errcap, {0, 0}};
    clock_gettime(CLOCK_MONOTONIC, &ld.deadline);
    ld.deadline.tv_sec += 60;
    *(struct loader **)lua_getextraspace(L) = &ld;
    lua_sethook(L, probe_hook, LUA_MASKCOUNT, 100000);
    /* The libraries the modules and the probe use: no io, no os (the
     * modules are pure Lua, as the rule sandbox requires them). */
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},        {LUA_LOADLIBNAME, luaopen_package},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_TABLIBNAME, luaopen_table},
        {LUA_MATHLIBNAME, luaopen_math},  {LUA_UTF8LIBNAME, luaopen_utf8},
        {LUA_DBLIBNAME, luaopen_debug}};
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_getglobal(L, "package");
    lua_pushstring(L, pv_buf_cstr(&path));
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    pv_buf_free(&path);

    int rc = 0;
    static const char *const mods[] = {"units", "codes", "ctcae", "label"};
    if (luaL_loadbuffer(L, PROBE, sizeof PROBE - 1, "=chart probe") != LUA_OK)
        rc = -1;
    for (int i = 0; !rc && i < 4; i++) {
        lua_getglobal(L, "require");
        lua_pushstring(L, mods[i]);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
            rc = -1;
    }
    if (!rc) {
        lua_pushstring(L, t->indication);
        lua_pushstring(L, t->region);
        if (lua_pcall(L, 6, 1, 0) != LUA_OK)
            rc = -1;
    }
    if (rc) {
        const char *m = lua_tostring(L, -1);
        snprintf(err, errcap, "chart: %s", m ? m : "error reading the rules");
    } else if (lua_type(L, -1) != LUA_TTABLE) {
        snprintf(err, errcap, "chart: the probe returned no table");
        rc = -1;
    } else {
        rc = copy_all(&ld, lua_gettop(L));
    }
    lua_close(L);
    if (rc) {
        free(t);
        return -1;
    }
    free(table);
    table = t;
    return 0;
}

int pv_chart_init(const char *scripts_dir, char *err, size_t errcap)
{
    char *dirs[1] = {(char *)scripts_dir};
    return load_dirs(dirs, 1, NULL, NULL, err, errcap);
}

int pv_chart_init_cfg(const pv_config *cfg, char *err, size_t errcap)
{
    return load_dirs(cfg->scripts.items, cfg->scripts.count,
                     cfg->label.indication, cfg->label.region, err, errcap);
}

void pv_chart_free(void)
{
    free(table);
    table = NULL;
}

/* ------------------------------------------------------------------ */
/* Drawing helpers.                                                    */

#define CHART_W 720 /* every chart's width (viewBox units) */

/* Text and attribute values: the console's escaper (web.h), which also
 * drops control characters and mends invalid UTF-8, neither allowed in
 * XML. */
static void esc(pv_buf *b, const char *s)
{
    pv_web_esc(b, s);
}

/* At most max bytes of s, cut at a UTF-8 boundary, with "..." when cut. */
static void esc_short(pv_buf *b, const char *s, size_t max)
{
    if (!s)
        return;
    size_t n = strlen(s);
    if (n <= max) {
        esc(b, s);
        return;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    char tmp[256];
    if (max >= sizeof tmp)
        max = sizeof tmp - 1;
    memcpy(tmp, s, max);
    tmp[max] = '\0';
    esc(b, tmp);
    pv_buf_puts(b, "...");
}

/* A value as a laboratory writes it: no float noise, no trailing ".0". */
static const char *num(double v, char buf[32])
{
    snprintf(buf, 32, "%.10g", v);
    return buf;
}

/* The same for a label on the chart: 4 significant digits (the data
 * attributes and the titles keep the full value). */
static const char *num_short(double v, char buf[32])
{
    snprintf(buf, 32, "%.4g", v);
    return buf;
}

static const char *iso(pv_time_t t, char buf[PV_TIME_BUFSZ])
{
    return pv_time_format(t, buf);
}

static const char *day(pv_time_t t, char buf[PV_TIME_BUFSZ])
{
    pv_time_format(t, buf);
    buf[10] = '\0';
    return buf;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

typedef struct {
    pv_time_t t0, t1;
    double x0, x1;
} taxis;

/* x = x0 + (t - t0) / (t1 - t0) * (x1 - x0), the contract with the
 * browser test (chart.h). */
static double tx(const taxis *a, pv_time_t t)
{
    return a->x0 +
           (double)(t - a->t0) / (double)(a->t1 - a->t0) * (a->x1 - a->x0);
}

static void fix_range(taxis *a)
{
    if (a->t1 <= a->t0) {
        a->t0 -= 86400;
        a->t1 += 86400;
    }
    pv_time_t pad = (a->t1 - a->t0) / 40;
    a->t0 -= pad;
    a->t1 += pad;
}

/* Date ticks along y = ybase, with vertical grid lines from ytop; label
 * every step: days (1, 2, 7, 14) or calendar months (1, 2, 3, 6, 12, 24,
 * 60), aiming at no more than 7 ticks. */
static void time_ticks(pv_buf *b, const taxis *a, double ytop, double ybase)
{
    static const int day_steps[] = {1, 2, 7, 14};
    static const int month_steps[] = {1, 2, 3, 6, 12, 24, 60, 120, 240};
    double span_days = (double)(a->t1 - a->t0) / 86400.0;
    int step_days = 0, step_months = 0;
    for (size_t i = 0; i < sizeof day_steps / sizeof *day_steps; i++)
        if (span_days / day_steps[i] <= 7) {
            step_days = day_steps[i];
            break;
        }
    if (!step_days) {
        step_months = month_steps[sizeof month_steps / sizeof *month_steps - 1];
        for (size_t i = 0; i < sizeof month_steps / sizeof *month_steps; i++)
            if (span_days / (30.44 * month_steps[i]) <= 7) {
                step_months = month_steps[i];
                break;
            }
    }
    pv_buf_puts(b, "<g class=\"x-axis\" font-size=\"10\" fill=\"#495057\" "
                   "text-anchor=\"middle\">");
    char d[PV_TIME_BUFSZ];
    for (int guard = 0; guard < 64; guard++) {
        pv_time_t t;
        if (step_days) {
            /* the first midnight at or after t0, on a multiple of step */
            int64_t d0 = floordiv(a->t0 + 86399, 86400);
            d0 = floordiv(d0 + step_days - 1, step_days) * step_days;
            t = (d0 + (int64_t)guard * step_days) * 86400;
        } else {
            time_t tt = (time_t)a->t0;
            struct tm tm;
            if (!gmtime_r(&tt, &tm))
                break;
            /* months since year 0, January = 0 */
            int64_t m = (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
            m = floordiv(m + step_months - 1, step_months) * step_months;
            m += (int64_t)guard * step_months;
            int64_t y = floordiv(m, 12), mo = m - y * 12;
            t = pv_time_days_from_civil(y, (unsigned)mo + 1, 1) * 86400;
        }
        if (t < a->t0)
            continue;
        if (t > a->t1)
            break;
        double x = tx(a, t);
        pv_buf_printf(b,
                      "<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" "
                      "stroke=\"#e9ecef\"/>",
                      x, x, ytop, ybase);
        /* A date label would be cut at the edge of the picture. */
        if (x + 27 > CHART_W || x - 27 < 0)
            continue;
        pv_buf_printf(b,
                      "<text class=\"tick\" data-at=\"%s\" x=\"%.2f\" "
                      "y=\"%.2f\">",
                      iso(t, d), x, ybase + 14);
        day(t, d);
        if (step_months)
            d[7] = '\0';
        pv_buf_puts(b, d);
        pv_buf_puts(b, "</text>");
    }
    pv_buf_puts(b, "</g>");
}

static double nice_step(double range, int n)
{
    if (!(range > 0) || !isfinite(range))
        return 1;
    double raw = range / n;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    double s = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return s * p;
}

typedef struct {
    double v0, v1; /* value range */
    double y0, y1; /* pixels: y0 is v0 (bottom), y1 is v1 (top) */
} vaxis;

static double vy(const vaxis *a, double v)
{
    return a->y0 - (v - a->v0) / (a->v1 - a->v0) * (a->y0 - a->y1);
}

static double vclamp(const vaxis *a, double v)
{
    return v < a->v0 ? a->v0 : v > a->v1 ? a->v1 : v;
}

/* ------------------------------------------------------------------ */
/* Reading the database.                                               */

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

static int col_time(sqlite3_stmt *st, int i, pv_time_t *t)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? pv_time_parse((const char *)s, strlen((const char *)s), t) : -1;
}

static const analyte_def *analyte_of(const struct chart_table *t,
                                     const char *code)
{
    char c[32];
    if (!t || !code)
        return NULL;
    trim_copy(code, c, sizeof c);
    for (int i = 0; i < t->nanalytes; i++)
        for (int j = 0; j < t->analytes[i].ncodes; j++)
            if (!strcmp(t->analytes[i].codes[j], c))
                return &t->analytes[i];
    return NULL;
}

typedef struct {
    int64_t id;
    pv_time_t at;
    double v; /* in the panel's display unit */
    int judged, fact;
    char status[8], code[32], unit[32], cmp[4], raw[32];
} point;

typedef struct {
    int64_t id;
    char code[32], unit[UNAME];
    double v, lo, hi;
    int has_lo, has_hi;
} fact;

#define MAX_PANELS 3
#define MAX_FACTS 64
#define MAX_POINTS 1000

typedef struct {
    const analyte_def *an; /* NULL: a code the rule pack does not know */
    char code[32];
    char unit[UNAME]; /* the display unit */
    int canonical;    /* unit is one of units.lua's */
    const fact *first;
    point *pts;
    size_t n;
    long skipped_unit, skipped_text, void_n, nfacts;
} panel;

typedef struct {
    int64_t id;
    char drug[128];
    pv_time_t start, end;
    int open, bari;
} expo;

#define MAX_EXPOSURES 200

static int is_fact(const fact *f, int nf, int64_t id)
{
    for (int i = 0; i < nf; i++)
        if (f[i].id == id)
            return 1;
    return 0;
}

/* The results of a panel's analyte, oldest first (the newest
 * MAX_POINTS). */
static int load_points(sqlite3 *db, const char *patient, panel *p,
                       const fact *facts, int nf)
{
    pv_buf codes = PV_BUF_INIT;
    pv_buf_puts(&codes, "[");
    if (p->an) {
        for (int i = 0; i < p->an->ncodes; i++) {
            if (i)
                pv_buf_puts(&codes, ",");
            pv_buf_json_str(&codes, p->an->codes[i], (size_t)-1);
        }
    } else {
        pv_buf_json_str(&codes, p->code, (size_t)-1);
    }
    pv_buf_puts(&codes, "]");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT id, code, value_num, unit, status, observed_at, comparator, "
        "value_text FROM observations WHERE patient_id = ?1 AND code IN "
        "(SELECT value FROM json_each(?2)) "
        "ORDER BY observed_at DESC, id DESC LIMIT ?3",
        -1, &st, NULL);
    if (rc != SQLITE_OK || !pv_buf_ok(&codes)) {
        pv_buf_free(&codes);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_bind_text(st, 1, patient, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pv_buf_cstr(&codes), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, MAX_POINTS);
    unit_memo memo = {0};
    p->pts = calloc(MAX_POINTS, sizeof *p->pts);
    if (!p->pts) {
        pv_buf_free(&codes);
        sqlite3_finalize(st);
        return -1;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        point pt = {0};
        pt.id = sqlite3_column_int64(st, 0);
        col_copy(st, 1, pt.code, sizeof pt.code);
        col_copy(st, 3, pt.unit, sizeof pt.unit);
        col_copy(st, 4, pt.status, sizeof pt.status);
        col_copy(st, 6, pt.cmp, sizeof pt.cmp);
        col_copy(st, 7, pt.raw, sizeof pt.raw);
        if (col_time(st, 5, &pt.at))
            continue;
        if (sqlite3_column_type(st, 2) == SQLITE_NULL) {
            p->skipped_text++;
            continue;
        }
        double v = sqlite3_column_double(st, 2);
        const char *u = (const char *)sqlite3_column_text(st, 3);
        if (p->canonical) {
            if (convert_canon(table, v, unit_canon_memo(table, &memo, u),
                              p->unit, p->an ? p->an->name : NULL, &pt.v)) {
                p->skipped_unit++;
                continue;
            }
        } else if (strcmp(u ? u : "", p->unit)) {
            p->skipped_unit++;
            continue;
        } else {
            pt.v = v;
        }
        if (!isfinite(pt.v)) {
            p->skipped_text++;
            continue;
        }
        pt.judged = pv_obs_judged(pt.status);
        pt.fact = is_fact(facts, nf, pt.id);
        p->void_n += !pt.judged;
        p->nfacts += pt.fact;
        p->pts[p->n++] = pt;
    }
    sqlite3_finalize(st);
    pv_buf_free(&codes);
    if (rc != SQLITE_DONE)
        return -1;
    for (size_t i = 0; i < p->n / 2; i++) {
        point tmp = p->pts[i];
        p->pts[i] = p->pts[p->n - 1 - i];
        p->pts[p->n - 1 - i] = tmp;
    }
    return 0;
}

/* The patient's baricitinib exposures (codes.lua's identifiers). */
static int load_exposures(sqlite3 *db, const char *patient, expo *out, int *n,
                          int only_bari)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, drug, drug_code, code_system, start_at, "
                           "end_at FROM exposures WHERE patient_id = ?1 "
                           "ORDER BY start_at, id",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, patient, -1, SQLITE_STATIC);
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *drug = (const char *)sqlite3_column_text(st, 1);
        int bari = is_baricitinib(table, drug,
                                  (const char *)sqlite3_column_text(st, 2),
                                  (const char *)sqlite3_column_text(st, 3));
        if (only_bari && !bari)
            continue;
        expo e = {0};
        e.bari = bari;
        e.id = sqlite3_column_int64(st, 0);
        col_copy(st, 1, e.drug, sizeof e.drug);
        if (col_time(st, 4, &e.start))
            continue;
        e.open = sqlite3_column_type(st, 5) == SQLITE_NULL;
        if (!e.open && (col_time(st, 5, &e.end) || e.end < e.start))
            e.open = 1; /* an end that cannot be read: drawn as open */
        if (*n < MAX_EXPOSURES)
            out[(*n)++] = e;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* The alert chart.                                                    */

#define AW CHART_W
#define AH 260
#define AX0 64.0
#define AX1 704.0

static const band_set *bands_in(const analyte_def *an, const char *unit)
{
    if (!an)
        return NULL;
    for (int i = 0; i < an->nbands; i++)
        if (!strcmp(an->bands[i].unit, unit))
            return &an->bands[i];
    return NULL;
}

/* The LLN/ULN the relative boundaries are multiples of: the alert's
 * result's own range when it has one (as ctcae.grade uses it), else the
 * term's default, in the display unit. */
static int panel_limit(const panel *p, const band_set *bs, double *lim,
                       const char **source)
{
    const fact *f = p->first;
    int inc = p->an && p->an->increasing;
    if (f && (inc ? f->has_hi : f->has_lo) &&
        unit_convert(table, inc ? f->hi : f->lo, f->unit, p->unit, p->an->name,
                     lim) == 0) {
        *source = inc ? "the result's ULN" : "the result's LLN";
        return 0;
    }
    if (bs && bs->has_limit) {
        *lim = bs->limit;
        *source = inc ? "default ULN" : "default LLN";
        return 0;
    }
    return -1;
}

static const char *const GRADE_FILL[5] = {"", "#fff3bf", "#ffd8a8", "#ffa8a8",
                                          "#e599f7"};

static void draw_panel(pv_buf *b, pv_buf *desc, const panel *p, int idx,
                       const taxis *ta, const expo *ex, int nex)
{
    double top = idx * AH;
    double py0 = top + 36, py1 = top + 222; /* plot: top, bottom */
    char n1[32], n2[32], d1[PV_TIME_BUFSZ], d2[PV_TIME_BUFSZ];
    const analyte_def *an = p->an;
    const band_set *bs = p->canonical ? bands_in(an, p->unit) : NULL;
    double lim = NAN;
    const char *lim_src = NULL;
    int has_lim = bs && panel_limit(p, bs, &lim, &lim_src) == 0;
    double thr = NAN;
    int has_thr = an && an->has_threshold && p->canonical &&
                  unit_convert(table, an->threshold, an->threshold_unit,
                               p->unit, an->name, &thr) == 0;

    /* The value axis: 0 (or the lowest value) to a little above the
     * highest value, the threshold and the grade 1 boundary. */
    double vmin = 0, vmax = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->pts[i].v < vmin)
            vmin = p->pts[i].v;
        if (p->pts[i].v > vmax)
            vmax = p->pts[i].v;
    }
    if (has_thr && thr > vmax)
        vmax = thr;
    double g1 = NAN;
    if (bs && bs->b[1].has) {
        g1 = bs->b[1].relative ? (has_lim ? bs->b[1].value * lim : NAN)
                               : bs->b[1].value;
        if (isfinite(g1) && g1 > vmax && (!an->increasing || g1 < 3 * vmax))
            vmax = g1;
    }
    vmax = vmax > vmin ? vmax + (vmax - vmin) * 0.1 : vmin + 1;
    double step = nice_step(vmax - vmin, 5);
    vaxis va = {vmin, ceil(vmax / step) * step, py1, py0};
    if (vmin < 0)
        va.v0 = floor(vmin / step) * step;

    pv_buf_printf(b, "<g class=\"panel\" data-analyte=\"");
    esc(b, an ? an->name : p->code);
    pv_buf_puts(b, "\" data-unit=\"");
    esc(b, p->unit);
    pv_buf_printf(b,
                  "\" data-v0=\"%s\" data-v1=\"%s\" data-y0=\"%.2f\" "
                  "data-y1=\"%.2f\">",
                  num(va.v0, n1), num(va.v1, n2), va.y0, va.y1);
    /* Title: analyte and unit. */
    pv_buf_printf(b,
                  "<text class=\"chart-title\" x=\"8\" y=\"%.2f\" "
                  "font-size=\"13\" font-weight=\"bold\" fill=\"#212529\">",
                  top + 18);
    esc_short(b, an ? an->abbrev : p->code, 40);
    if (an && an->title[0]) {
        pv_buf_puts(b, " (");
        esc(b, an->title);
        pv_buf_puts(b, ")");
    } else if (an) {
        pv_buf_puts(b, " (");
        esc(b, an->name);
        pv_buf_puts(b, ")");
    }
    pv_buf_puts(b, ", ");
    esc_short(b, p->unit[0] ? p->unit : "no unit", 40);
    pv_buf_puts(b, "</text>");
    pv_buf_printf(b,
                  "<text class=\"legend\" x=\"%.2f\" y=\"%.2f\" "
                  "font-size=\"10\" fill=\"#495057\" "
                  "text-anchor=\"end\">",
                  AX1, top + 18);
    if (has_thr)
        pv_buf_puts(b, "dashed red: label threshold \xC2\xB7 ");
    if (nex)
        pv_buf_puts(b, "blue: baricitinib \xC2\xB7 ");
    pv_buf_puts(b, "large dot: alert evidence");
    if (p->void_n)
        pv_buf_puts(b, " \xC2\xB7 hollow: not judged");
    pv_buf_puts(b, "</text>");

    /* Grade bands. */
    if (bs) {
        int inc = an->increasing;
        pv_buf_printf(desc, " CTCAE v5 %s grades in %s:",
                      an->title[0] ? an->title : an->name, p->unit);
        for (int g = 1; g <= 4; g++) {
            if (!bs->b[g].has)
                continue;
            double from = bs->b[g].value;
            if (bs->b[g].relative) {
                if (!has_lim)
                    continue;
                from = round12(from * lim);
            }
            /* The band's other edge: the next grade's boundary. */
            double to = inc ? va.v1 : va.v0;
            for (int h = g + 1; h <= 4; h++) {
                if (!bs->b[h].has)
                    continue;
                double e = bs->b[h].value;
                if (bs->b[h].relative) {
                    if (!has_lim)
                        continue;
                    e = round12(e * lim);
                }
                to = e;
                break;
            }
            pv_buf_printf(desc, " G%d %s %s%s%s%s;", g, inc ? ">" : "<",
                          num(from, n1), bs->b[g].relative ? " (" : "",
                          bs->b[g].relative ? lim_src : "",
                          bs->b[g].relative ? ")" : "");
            double ya = vy(&va, vclamp(&va, from)),
                   yb = vy(&va, vclamp(&va, to));
            double yt = ya < yb ? ya : yb, h = fabs(ya - yb);
            if (h <= 0)
                continue;
            pv_buf_printf(b,
                          "<rect class=\"grade-band\" data-grade=\"%d\" "
                          "data-from=\"%s\" data-to=\"%s\" x=\"%.2f\" "
                          "y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                          "fill=\"%s\" fill-opacity=\"0.55\"><title>CTCAE "
                          "grade %d</title></rect>",
                          g, num(from, n1), num(to, n2), AX0, yt, AX1 - AX0, h,
                          GRADE_FILL[g], g);
            pv_buf_printf(b,
                          "<text x=\"%.2f\" y=\"%.2f\" font-size=\"9\" "
                          "fill=\"#868e96\" text-anchor=\"end\">G%d</text>",
                          AX1 - 3, yt + (h < 11 ? h : 11) - 2, g);
        }
    }

    /* Exposure windows (clamped to the time axis; data-clip says so). */
    for (int i = 0; i < nex; i++) {
        const expo *e = &ex[i];
        if (e->start > ta->t1 || (!e->open && e->end < ta->t0))
            continue;
        pv_time_t s = e->start < ta->t0 ? ta->t0 : e->start;
        double xs = tx(ta, s);
        double xe =
            e->open ? ta->x1 : tx(ta, e->end > ta->t1 ? ta->t1 : e->end);
        pv_buf_printf(b,
                      "<rect class=\"exposure\" data-start=\"%s\" "
                      "data-end=\"%s\"",
                      iso(e->start, d1), e->open ? "" : iso(e->end, d2));
        if (e->start < ta->t0 || (!e->open && e->end > ta->t1))
            pv_buf_printf(b, " data-clip=\"%s%s\"",
                          e->start < ta->t0 ? "start" : "",
                          (!e->open && e->end > ta->t1) ? " end" : "");
        pv_buf_printf(b,
                      " x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                      "fill=\"#4dabf7\" fill-opacity=\"0.2\"><title>",
                      xs, py0, xe - xs, py1 - py0);
        esc_short(b, e->drug, 80);
        pv_buf_printf(b, ": %s to %s</title></rect>", day(e->start, d1),
                      e->open ? "ongoing" : day(e->end, d2));
        if (xe - xs >= 70)
            pv_buf_printf(b,
                          "<text x=\"%.2f\" y=\"%.2f\" font-size=\"9\" "
                          "fill=\"#1864ab\">baricitinib</text>",
                          xs + 3, py0 + 10);
        if (idx == 0)
            pv_buf_printf(desc, " Baricitinib (%s) from %s to %s.", "exposure",
                          day(e->start, d1),
                          e->open ? "ongoing" : day(e->end, d2));
    }

    /* Axes and ticks. */
    pv_buf_printf(b, "<g class=\"y-axis\" font-size=\"10\" fill=\"#495057\" "
                     "text-anchor=\"end\">");
    for (int k = 0; k <= 20; k++) {
        double v = va.v0 + k * step;
        if (v > va.v1 + step / 1000)
            break;
        double y = vy(&va, v);
        pv_buf_printf(b,
                      "<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" "
                      "stroke=\"#e9ecef\"/><text x=\"%.2f\" y=\"%.2f\">%s"
                      "</text>",
                      AX0, AX1, y, y, AX0 - 4, y + 3, num(round12(v), n1));
    }
    pv_buf_printf(b,
                  "<text class=\"unit\" transform=\"rotate(-90 12 %.2f)\" "
                  "x=\"12\" y=\"%.2f\" text-anchor=\"middle\">",
                  (py0 + py1) / 2, (py0 + py1) / 2);
    esc_short(b, p->unit, 40);
    pv_buf_puts(b, "</text></g>");
    time_ticks(b, ta, py0, py1);
    pv_buf_printf(b,
                  "<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" "
                  "stroke=\"#868e96\"/><line x1=\"%.2f\" x2=\"%.2f\" "
                  "y1=\"%.2f\" y2=\"%.2f\" stroke=\"#868e96\"/>",
                  AX0, AX1, py1, py1, AX0, AX0, py0, py1);

    /* The label threshold. */
    if (has_thr) {
        double y = vy(&va, thr);
        pv_buf_printf(b,
                      "<line class=\"threshold\" data-value=\"%s\" "
                      "data-unit=\"",
                      num(thr, n1));
        esc(b, p->unit);
        pv_buf_printf(b,
                      "\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" "
                      "stroke=\"#c92a2a\" stroke-width=\"1.5\" "
                      "stroke-dasharray=\"6 3\"><title>label: interrupt "
                      "below %s ",
                      AX0, AX1, y, y, n1);
        esc(b, p->unit);
        pv_buf_printf(b,
                      "</title></line><text x=\"%.2f\" y=\"%.2f\" "
                      "font-size=\"10\" fill=\"#c92a2a\">interrupt &lt; %s "
                      "(label)</text>",
                      AX0 + 4, y - 3, num_short(thr, n2));
        pv_buf_printf(desc, " Label threshold: interrupt below %s %s (%s).", n1,
                      p->unit, an->citation);
    }

    /* The series: a line through the judged results, then the points. */
    int started = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->pts[i].judged)
            continue;
        if (!started)
            pv_buf_puts(b, "<polyline class=\"series\" fill=\"none\" "
                           "stroke=\"#1c7ed6\" stroke-width=\"1.5\" "
                           "points=\"");
        pv_buf_printf(b, "%s%.2f,%.2f", started ? " " : "",
                      tx(ta, p->pts[i].at), vy(&va, p->pts[i].v));
        started = 1;
    }
    if (started)
        pv_buf_puts(b, "\"/>");
    for (size_t i = 0; i < p->n; i++) {
        const point *pt = &p->pts[i];
        double x = tx(ta, pt->at), y = vy(&va, pt->v);
        if (!pt->judged)
            pv_buf_printf(b, "<circle class=\"void\" data-status=\"");
        else
            pv_buf_printf(b, "<circle class=\"point%s\" data-status=\"",
                          pt->fact ? " fact" : "");
        esc(b, pt->status);
        pv_buf_printf(b,
                      "\" data-at=\"%s\" data-value=\"%s\" data-id=\"%lld\" "
                      "cx=\"%.2f\" cy=\"%.2f\" r=\"%s\" %s><title>",
                      iso(pt->at, d1), num(pt->v, n1), (long long)pt->id, x, y,
                      pt->fact     ? "5.5"
                      : pt->judged ? "3"
                                   : "3.5",
                      !pt->judged ? "fill=\"#fff\" stroke=\"#868e96\" "
                                    "stroke-width=\"1.5\""
                      : pt->fact  ? "fill=\"#e03131\" stroke=\"#212529\" "
                                    "stroke-width=\"1.5\""
                                  : "fill=\"#1c7ed6\"");
        pv_buf_printf(b, "%s: ", day(pt->at, d1));
        esc(b, pt->cmp);
        pv_buf_printf(b, "%s ", n1);
        esc(b, p->unit);
        if (strcmp(pt->unit, p->unit)) {
            pv_buf_puts(b, " (sent as ");
            esc_short(b, pt->raw[0] ? pt->raw : "?", 24);
            pv_buf_puts(b, " ");
            esc_short(b, pt->unit, 24);
            pv_buf_puts(b, ")");
        }
        pv_buf_puts(b, ", ");
        esc(b, pt->code);
        pv_buf_puts(b, ", status ");
        esc(b, pt->status[0] ? pt->status : "F");
        if (!pt->judged)
            pv_buf_puts(b, ": not judged by the rules");
        if (pt->fact)
            pv_buf_puts(b, ": evidence of this alert");
        pv_buf_puts(b, "</title></circle>");
        if (pt->fact) {
            pv_buf_printf(b,
                          "<text class=\"fact-label\" x=\"%.2f\" "
                          "y=\"%.2f\" font-size=\"10\" font-weight=\"bold\" "
                          "fill=\"#212529\" text-anchor=\"%s\">",
                          x > AX1 - 40 ? x - 8 : x,
                          y < py0 + 14 ? y + 16 : y - 9,
                          x > AX1 - 40 ? "end" : "middle");
            esc(b, pt->cmp);
            pv_buf_printf(b, "%s</text>", num_short(pt->v, n2));
            pv_buf_printf(desc, " Alert evidence: %s ", day(pt->at, d1));
            pv_buf_puts(desc, pt->cmp);
            pv_buf_printf(desc, "%s %s.", n1, p->unit);
        }
    }
    long notes = p->skipped_unit + p->skipped_text;
    if (notes || p->void_n) {
        pv_buf_printf(b,
                      "<text class=\"note\" x=\"%.2f\" y=\"%.2f\" "
                      "font-size=\"10\" fill=\"#868e96\">",
                      AX0, top + 252);
        if (p->void_n)
            pv_buf_printf(b,
                          "%ld not judged (status W, X, I, R, N or O) "
                          "shown hollow. ",
                          p->void_n);
        if (p->skipped_unit)
            pv_buf_printf(b, "%ld in a unit that does not convert to ",
                          p->skipped_unit);
        if (p->skipped_unit) {
            esc(b, p->unit);
            pv_buf_puts(b, " not shown. ");
        }
        if (p->skipped_text)
            pv_buf_printf(b, "%ld without a number not shown.",
                          p->skipped_text);
        pv_buf_puts(b, "</text>");
    }
    pv_buf_puts(b, "</g>");
}

/* The alert's lab facts (evidence items of kind "lab" whose observation
 * is the alert patient's), in evidence order. */
static int load_facts(sqlite3 *db, const char *patient, const char *evidence,
                      fact *out, int *n)
{
    sqlite3_stmt *ev = NULL, *ob = NULL;
    *n = 0;
    if (!evidence)
        return 0;
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT json_extract(value, '$.kind'), json_extract(value, '$.id') "
        "FROM json_each(CASE WHEN json_valid(?1) THEN ?1 ELSE '[]' END) "
        "WHERE type = 'object'",
        -1, &ev, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT code, unit, value_num, ref_low, "
                                "ref_high FROM observations WHERE id = ?1 "
                                "AND patient_id = ?2",
                                -1, &ob, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(ev);
        sqlite3_finalize(ob);
        return -1;
    }
    sqlite3_bind_text(ev, 1, evidence, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(ev)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(ev, 0);
        if (!kind || strcmp(kind, "lab") ||
            sqlite3_column_type(ev, 1) != SQLITE_INTEGER || *n >= MAX_FACTS)
            continue;
        sqlite3_reset(ob);
        sqlite3_bind_int64(ob, 1, sqlite3_column_int64(ev, 1));
        sqlite3_bind_text(ob, 2, patient, -1, SQLITE_STATIC);
        int orc = sqlite3_step(ob);
        if (orc == SQLITE_ROW && sqlite3_column_type(ob, 2) != SQLITE_NULL) {
            fact *f = &out[(*n)++];
            memset(f, 0, sizeof *f);
            f->id = sqlite3_column_int64(ev, 1);
            col_copy(ob, 0, f->code, sizeof f->code);
            col_copy(ob, 1, f->unit, sizeof f->unit);
            f->v = sqlite3_column_double(ob, 2);
            f->has_lo = sqlite3_column_type(ob, 3) != SQLITE_NULL;
            f->lo = sqlite3_column_double(ob, 3);
            f->has_hi = sqlite3_column_type(ob, 4) != SQLITE_NULL;
            f->hi = sqlite3_column_double(ob, 4);
        } else if (orc != SQLITE_ROW && orc != SQLITE_DONE) {
            rc = orc;
            break;
        }
    }
    sqlite3_finalize(ev);
    sqlite3_finalize(ob);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void svg_open(pv_buf *b, const char *kind, const char *idattr,
                     int height, const taxis *ta)
{
    char d1[PV_TIME_BUFSZ], d2[PV_TIME_BUFSZ];
    pv_buf_printf(
        b,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"pv-chart\" "
        "data-kind=\"%s\" viewBox=\"0 0 %d %d\" width=\"%d\" "
        "height=\"%d\" role=\"img\" font-family=\"sans-serif\" "
        "aria-labelledby=\"%s-title %s-desc\" data-t0=\"%s\" "
        "data-t1=\"%s\" data-x0=\"%.2f\" data-x1=\"%.2f\"",
        kind, AW, height, AW, height, idattr, idattr, iso(ta->t0, d1),
        iso(ta->t1, d2), ta->x0, ta->x1);
}

static void svg_title(pv_buf *b, const char *idattr, const char *title,
                      const char *desc)
{
    pv_buf_printf(b, "<title id=\"%s-title\">", idattr);
    esc(b, title);
    pv_buf_printf(b, "</title><desc id=\"%s-desc\">", idattr);
    esc(b, desc);
    pv_buf_puts(b, "</desc>");
}

int pv_chart_alert(sqlite3 *db, int64_t alert_id, pv_buf *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT patient_id, rule, title, evidence FROM "
                           "alerts WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, alert_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return -1;
    }
    char *patient = col_dup(st, 0), *rule = col_dup(st, 1),
         *evidence = col_dup(st, 3);
    sqlite3_finalize(st);

    int result = -1, nf = 0, np = 0, nex = 0;
    fact *facts = calloc(MAX_FACTS, sizeof *facts);
    expo *ex = calloc(MAX_EXPOSURES, sizeof *ex);
    panel panels[MAX_PANELS];
    memset(panels, 0, sizeof panels);
    pv_buf b = PV_BUF_INIT, desc = PV_BUF_INIT, title = PV_BUF_INIT;
    if (!patient || !facts || !ex ||
        load_facts(db, patient, evidence, facts, &nf))
        goto done;
    if (nf == 0) {
        result = 1; /* no numeric lab evidence: no chart */
        goto done;
    }
    /* One panel per analyte of the facts (at most MAX_PANELS). */
    for (int i = 0; i < nf; i++) {
        const analyte_def *an = analyte_of(table, facts[i].code);
        int j;
        for (j = 0; j < np; j++)
            if (an ? panels[j].an == an
                   : (!panels[j].an && !strcmp(panels[j].code, facts[i].code)))
                break;
        if (j < np || np == MAX_PANELS)
            continue;
        panel *p = &panels[np++];
        p->an = an;
        snprintf(p->code, sizeof p->code, "%s", facts[i].code);
        const char *c = unit_canon(table, facts[i].unit);
        p->canonical = c != NULL;
        snprintf(p->unit, sizeof p->unit, "%s", c ? c : facts[i].unit);
        p->first = &facts[i];
        if (load_points(db, patient, p, facts, nf))
            goto done;
    }
    if (load_exposures(db, patient, ex, &nex, 1))
        goto done;

    /* The time axis: the results, widened to the exposures around them
     * (at most a year either side). */
    taxis ta = {0, 0, AX0, AX1};
    int any = 0;
    for (int j = 0; j < np; j++)
        for (size_t i = 0; i < panels[j].n; i++) {
            pv_time_t t = panels[j].pts[i].at;
            if (!any || t < ta.t0)
                ta.t0 = t;
            if (!any || t > ta.t1)
                ta.t1 = t;
            any = 1;
        }
    if (!any) {
        result = 1; /* the facts' results are not numbers in any unit */
        goto done;
    }
    const pv_time_t YEAR = (pv_time_t)365 * 86400;
    pv_time_t lo = ta.t0 - YEAR, hi = ta.t1 + YEAR;
    pv_time_t d0 = ta.t0, d1 = ta.t1;
    for (int i = 0; i < nex; i++) {
        const expo *e = &ex[i];
        if (e->start > hi || (!e->open && e->end < lo))
            continue;
        pv_time_t s = e->start < lo ? lo : e->start;
        pv_time_t f = e->open ? s : (e->end > hi ? hi : e->end);
        if (s < d0)
            d0 = s;
        if (f > d1)
            d1 = f;
    }
    ta.t0 = d0;
    ta.t1 = d1;
    fix_range(&ta);

    char idattr[48];
    snprintf(idattr, sizeof idattr, "pvc-alert-%lld", (long long)alert_id);
    const panel *p0 = &panels[0];
    pv_buf_printf(&title, "%s", p0->an ? p0->an->abbrev : p0->code);
    pv_buf_printf(&title,
                  " in %s for patient %s: %zu results, %ld marked as "
                  "the evidence of alert %lld",
                  p0->unit[0] ? p0->unit : "no unit", patient, p0->n,
                  p0->nfacts, (long long)alert_id);
    pv_buf_printf(&desc, "Rule %s. Results over time, oldest left.",
                  rule ? rule : "?");
    pv_buf body = PV_BUF_INIT;
    for (int j = 0; j < np; j++) {
        if (j)
            pv_buf_printf(&desc, " Panel %d: %s in %s.", j + 1,
                          panels[j].an ? panels[j].an->abbrev : panels[j].code,
                          panels[j].unit);
        draw_panel(&body, &desc, &panels[j], j, &ta, ex, nex);
    }
    svg_open(&b, "alert", idattr, AH * np, &ta);
    pv_buf_puts(&b, " data-unit=\"");
    esc(&b, p0->unit);
    pv_buf_printf(&b, "\" data-alert=\"%lld\">", (long long)alert_id);
    svg_title(&b, idattr, pv_buf_cstr(&title), pv_buf_cstr(&desc));
    pv_buf_append(&b, body.ptr ? body.ptr : "", body.len);
    pv_buf_puts(&b, "</svg>");
    int ok = pv_buf_ok(&body);
    pv_buf_free(&body);
    if (!ok || !pv_buf_ok(&b) || !pv_buf_ok(&desc) || !pv_buf_ok(&title))
        goto done;
    pv_buf_append(out, b.ptr, b.len);
    result = pv_buf_ok(out) ? 0 : -1;
done:
    for (int j = 0; j < MAX_PANELS; j++)
        free(panels[j].pts);
    pv_buf_free(&b);
    pv_buf_free(&desc);
    pv_buf_free(&title);
    free(facts);
    free(ex);
    free(patient);
    free(rule);
    free(evidence);
    return result;
}

/* ------------------------------------------------------------------ */
/* The patient timeline.                                               */

#define PX0 160.0
#define PX1 704.0
#define SPARK_N 20
#define MAX_DRUGS 12
#define MAX_GROUPS 10
#define MAX_MARKS 500

typedef struct {
    int64_t id;
    pv_time_t at;
    char code[32], text[128], extra[32], status[16];
} mark;

typedef struct {
    const analyte_def *an;
    int order; /* table index, or large for unknown codes */
    char code[32];
    char unit[UNAME];
    int canonical;
    point pts[SPARK_N];
    int n;
} group;

static int load_marks(sqlite3 *db, const char *sql, const char *patient,
                      mark *out, int *n)
{
    sqlite3_stmt *st = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, patient, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, MAX_MARKS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mark m = {0};
        m.id = sqlite3_column_int64(st, 0);
        col_copy(st, 1, m.code, sizeof m.code);
        col_copy(st, 2, m.text, sizeof m.text);
        col_copy(st, 4, m.extra, sizeof m.extra);
        col_copy(st, 5, m.status, sizeof m.status);
        if (col_time(st, 3, &m.at) == 0 && *n < MAX_MARKS)
            out[(*n)++] = m;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int load_groups(sqlite3 *db, const char *patient, group *g, int *ng,
                       int *more)
{
    sqlite3_stmt *st = NULL;
    *ng = 0;
    *more = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, code, value_num, unit, status, "
                           "observed_at FROM observations WHERE patient_id = "
                           "?1 AND value_num IS NOT NULL ORDER BY observed_at "
                           "DESC, id DESC LIMIT 5000",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, patient, -1, SQLITE_STATIC);
    unit_memo memo = {0};
    /* The analyte of each code seen (a patient has a few dozen codes). */
    struct {
        char code[32];
        const analyte_def *an;
    } seen[32];
    int nseen = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char code[32], status[8];
        col_copy(st, 1, code, sizeof code);
        col_copy(st, 4, status, sizeof status);
        if (!pv_obs_judged(status))
            continue;
        const analyte_def *an = NULL;
        int k;
        for (k = 0; k < nseen && strcmp(seen[k].code, code); k++)
            ;
        if (k < nseen) {
            an = seen[k].an;
        } else {
            an = analyte_of(table, code);
            if (nseen < 32) {
                memcpy(seen[nseen].code, code, sizeof code);
                seen[nseen++].an = an;
            }
        }
        int j;
        for (j = 0; j < *ng; j++)
            if (an ? g[j].an == an : (!g[j].an && !strcmp(g[j].code, code)))
                break;
        const char *u = (const char *)sqlite3_column_text(st, 3);
        if (j == *ng) {
            /* The display unit: the newest result's, if the analyte's
             * CTCAE term grades that unit (a count sent as "%" does not
             * set the unit of the neutrophils). */
            const char *c = unit_canon_memo(table, &memo, u);
            if (an && (!c || (an->nbands && !bands_in(an, c))))
                continue;
            if (*ng == MAX_GROUPS) {
                *more = 1;
                continue;
            }
            group *n = &g[(*ng)++];
            memset(n, 0, sizeof *n);
            n->an = an;
            n->order = an ? (int)(an - table->analytes) : 1000;
            snprintf(n->code, sizeof n->code, "%s", code);
            n->canonical = c != NULL;
            snprintf(n->unit, sizeof n->unit, "%s", c ? c : (u ? u : ""));
        }
        group *gr = &g[j];
        if (gr->n == SPARK_N)
            continue;
        point pt = {0};
        pt.id = sqlite3_column_int64(st, 0);
        if (col_time(st, 5, &pt.at))
            continue;
        double v = sqlite3_column_double(st, 2);
        if (gr->canonical) {
            if (convert_canon(table, v, unit_canon_memo(table, &memo, u),
                              gr->unit, gr->an ? gr->an->name : NULL, &pt.v))
                continue;
        } else if (strcmp(u ? u : "", gr->unit)) {
            continue;
        } else {
            pt.v = v;
        }
        if (!isfinite(pt.v))
            continue;
        pt.judged = 1;
        gr->pts[gr->n++] = pt;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    /* Known analytes in the rule pack's order, then codes by name; each
     * group's points oldest first. */
    for (int i = 1; i < *ng; i++)
        for (int k = i; k > 0; k--) {
            group *a = &g[k - 1], *b = &g[k];
            int c = a->order != b->order ? (a->order > b->order ? 1 : -1)
                                         : strcmp(a->code, b->code);
            if (c <= 0)
                break;
            group tmp = *a;
            *a = *b;
            *b = tmp;
        }
    for (int j = 0; j < *ng; j++)
        for (int i = 0; i < g[j].n / 2; i++) {
            point tmp = g[j].pts[i];
            g[j].pts[i] = g[j].pts[g[j].n - 1 - i];
            g[j].pts[g[j].n - 1 - i] = tmp;
        }
    return 0;
}

static void widen(taxis *a, int *any, pv_time_t t)
{
    if (!*any || t < a->t0)
        a->t0 = t;
    if (!*any || t > a->t1)
        a->t1 = t;
    *any = 1;
}

static void row_label(pv_buf *b, double y, const char *text, size_t max)
{
    pv_buf_printf(b,
                  "<text class=\"row-label\" x=\"8\" y=\"%.2f\" "
                  "font-size=\"10\" fill=\"#343a40\">",
                  y);
    esc_short(b, text, max);
    pv_buf_puts(b, "</text>");
}

static const char *severity_fill(const char *s)
{
    if (!strcmp(s, "critical"))
        return "#862e9c";
    if (!strcmp(s, "high"))
        return "#e03131";
    if (!strcmp(s, "medium"))
        return "#f08c00";
    return "#868e96";
}

int pv_chart_patient(sqlite3 *db, const char *patient_id, pv_buf *out)
{
    if (!patient_id)
        return -1;
    int result = -1, nex = 0, nev = 0, nal = 0, ng = 0, more = 0;
    expo *ex = calloc(MAX_EXPOSURES, sizeof *ex);
    mark *ev = calloc(MAX_MARKS, sizeof *ev);
    mark *al = calloc(MAX_MARKS, sizeof *al);
    group *gr = calloc(MAX_GROUPS, sizeof *gr);
    pv_buf b = PV_BUF_INIT, desc = PV_BUF_INIT, title = PV_BUF_INIT;
    char d1[PV_TIME_BUFSZ], d2[PV_TIME_BUFSZ], n1[32];
    if (!ex || !ev || !al || !gr)
        goto done;
    if (load_exposures(db, patient_id, ex, &nex, 0) ||
        load_marks(
            db,
            "SELECT id, code, term, onset_at, CASE serious WHEN 1 THEN "
            "'serious' ELSE '' END, '' FROM events WHERE patient_id = ?1 "
            "ORDER BY onset_at, id LIMIT ?2",
            patient_id, ev, &nev) ||
        load_marks(db,
                   /* at the time of its newest fact (when the situation
                    * arose), else when it was raised */
                   "SELECT id, rule, title, COALESCE((SELECT "
                   "max(json_extract(j.value, '$.at')) FROM json_each(CASE "
                   "WHEN json_valid(evidence) THEN evidence ELSE '[]' END) j "
                   "WHERE j.type = 'object'), created_at) AS at, severity, "
                   "status FROM alerts WHERE patient_id = ?1 ORDER BY at, id "
                   "LIMIT ?2",
                   patient_id, al, &nal) ||
        load_groups(db, patient_id, gr, &ng, &more))
        goto done;

    taxis ta = {0, 0, PX0, PX1};
    int any = 0;
    for (int i = 0; i < nex; i++) {
        widen(&ta, &any, ex[i].start);
        if (!ex[i].open)
            widen(&ta, &any, ex[i].end);
    }
    for (int i = 0; i < nev; i++)
        widen(&ta, &any, ev[i].at);
    for (int i = 0; i < nal; i++)
        widen(&ta, &any, al[i].at);
    for (int j = 0; j < ng; j++)
        for (int i = 0; i < gr[j].n; i++)
            widen(&ta, &any, gr[j].pts[i].at);
    char idattr[48];
    snprintf(idattr, sizeof idattr, "pvc-patient");
    if (!any) {
        ta.t0 = 0;
        ta.t1 = 86400;
        svg_open(&b, "patient", idattr, 40, &ta);
        pv_buf_puts(&b, ">");
        svg_title(&b, idattr, "No data for this patient", "");
        pv_buf_puts(&b, "<text x=\"8\" y=\"24\" font-size=\"12\" "
                        "fill=\"#495057\">No exposures, events, results or "
                        "alerts.</text></svg>");
        goto emit;
    }
    fix_range(&ta);

    /* Drug rows, in the order of their first start. */
    const char *drugs[MAX_DRUGS];
    int ndrugs = 0, drug_more = 0;
    for (int i = 0; i < nex; i++) {
        int j;
        for (j = 0; j < ndrugs; j++)
            if (!strcmp(drugs[j], ex[i].drug))
                break;
        if (j == ndrugs) {
            if (ndrugs < MAX_DRUGS)
                drugs[ndrugs++] = ex[i].drug;
            else
                drug_more = 1;
        }
    }
    double y = 34;
    pv_buf body = PV_BUF_INIT;
    pv_buf_printf(&body, "<text class=\"chart-title\" x=\"8\" y=\"18\" "
                         "font-size=\"13\" font-weight=\"bold\" "
                         "fill=\"#212529\">Timeline of patient ");
    esc_short(&body, patient_id, 60);
    pv_buf_puts(&body, "</text>");
    double ytop = y;
    for (int j = 0; j < ndrugs; j++, y += 18) {
        row_label(&body, y + 9, drugs[j], 26);
        for (int i = 0; i < nex; i++) {
            const expo *e = &ex[i];
            if (strcmp(e->drug, drugs[j]))
                continue;
            double xs = tx(&ta, e->start);
            double xe = e->open ? ta.x1 : tx(&ta, e->end);
            int bari = e->bari;
            pv_buf_printf(&body,
                          "<rect class=\"exposure\" data-start=\"%s\" "
                          "data-end=\"%s\" data-baricitinib=\"%d\" x=\"%.2f\" "
                          "y=\"%.2f\" width=\"%.2f\" height=\"10\" rx=\"2\" "
                          "fill=\"%s\"><title>",
                          iso(e->start, d1), e->open ? "" : iso(e->end, d2),
                          bari, xs, y + 1, xe - xs,
                          bari ? "#1c7ed6" : "#74c0fc");
            esc_short(&body, e->drug, 80);
            pv_buf_printf(&body, ": %s to %s</title></rect>", day(e->start, d1),
                          e->open ? "ongoing" : day(e->end, d2));
        }
    }
    if (drug_more) {
        row_label(&body, y + 9, "(more drugs not shown)", 40);
        y += 18;
    }
    if (nev) {
        row_label(&body, y + 9, "Events", 20);
        for (int i = 0; i < nev; i++) {
            double x = tx(&ta, ev[i].at);
            pv_buf_printf(&body,
                          "<path class=\"event\" data-at=\"%s\" data-code=\"",
                          iso(ev[i].at, d1));
            esc(&body, ev[i].code);
            pv_buf_printf(&body,
                          "\" d=\"M%.2f %.2fl5 5l-5 5l-5 -5z\" fill=\"%s\">"
                          "<title>%s: ",
                          x, y, ev[i].extra[0] ? "#c92a2a" : "#f08c00",
                          day(ev[i].at, d1));
            esc_short(&body, ev[i].text[0] ? ev[i].text : ev[i].code, 100);
            pv_buf_puts(&body, " (");
            esc(&body, ev[i].code);
            pv_buf_printf(&body, "%s%s)</title></path>",
                          ev[i].extra[0] ? ", " : "", ev[i].extra);
        }
        y += 18;
    }
    if (nal) {
        row_label(&body, y + 9, "Alerts", 20);
        for (int i = 0; i < nal; i++) {
            double x = tx(&ta, al[i].at);
            pv_buf_printf(&body,
                          "<a href=\"/alerts/%lld\"><circle "
                          "class=\"alert\" data-id=\"%lld\" data-at=\"%s\" "
                          "data-severity=\"",
                          (long long)al[i].id, (long long)al[i].id,
                          iso(al[i].at, d1));
            esc(&body, al[i].extra);
            pv_buf_printf(&body,
                          "\" cx=\"%.2f\" cy=\"%.2f\" r=\"5\" fill=\"%s\">"
                          "<title>%s: ",
                          x, y + 6, severity_fill(al[i].extra),
                          day(al[i].at, d1));
            esc_short(&body, al[i].text, 100);
            pv_buf_puts(&body, " (");
            esc(&body, al[i].extra);
            pv_buf_puts(&body, ", ");
            esc(&body, al[i].status);
            pv_buf_puts(&body, ")</title></circle></a>");
        }
        y += 18;
    }
    for (int j = 0; j < ng; j++, y += 34) {
        const group *g = &gr[j];
        double lo = g->pts[0].v, hi = g->pts[0].v;
        for (int i = 1; i < g->n; i++) {
            if (g->pts[i].v < lo)
                lo = g->pts[i].v;
            if (g->pts[i].v > hi)
                hi = g->pts[i].v;
        }
        vaxis va = {lo, hi, y + 28, y + 4};
        if (!(hi > lo)) {
            va.v0 = lo - 1;
            va.v1 = hi + 1;
        }
        pv_buf lab = PV_BUF_INIT;
        pv_buf_printf(&lab, "%s %s %s", g->an ? g->an->abbrev : g->code,
                      num_short(g->pts[g->n - 1].v, n1), g->unit);
        row_label(&body, y + 19, pv_buf_cstr(&lab), 30);
        pv_buf_free(&lab);
        pv_buf_puts(&body, "<g class=\"sparkline\" data-analyte=\"");
        esc(&body, g->an ? g->an->name : g->code);
        pv_buf_puts(&body, "\" data-unit=\"");
        esc(&body, g->unit);
        pv_buf_puts(&body, "\"><polyline fill=\"none\" stroke=\"#1c7ed6\" "
                           "stroke-width=\"1.2\" points=\"");
        for (int i = 0; i < g->n; i++)
            pv_buf_printf(&body, "%s%.2f,%.2f", i ? " " : "",
                          tx(&ta, g->pts[i].at), vy(&va, g->pts[i].v));
        pv_buf_puts(&body, "\"/>");
        for (int i = 0; i < g->n; i++) {
            pv_buf_printf(&body,
                          "<circle class=\"point\" data-at=\"%s\" "
                          "data-value=\"%s\" cx=\"%.2f\" cy=\"%.2f\" r=\"2\" "
                          "fill=\"#1c7ed6\"><title>%s: %s ",
                          iso(g->pts[i].at, d1), num(g->pts[i].v, n1),
                          tx(&ta, g->pts[i].at), vy(&va, g->pts[i].v),
                          day(g->pts[i].at, d2), n1);
            esc(&body, g->unit);
            pv_buf_puts(&body, "</title></circle>");
        }
        pv_buf_puts(&body, "</g>");
        pv_buf_printf(&desc, " %s: last %d results, latest %s %s.",
                      g->an ? g->an->abbrev : g->code, g->n,
                      num(g->pts[g->n - 1].v, n1), g->unit);
    }
    if (more) {
        row_label(&body, y + 9, "(more analytes not shown)", 40);
        y += 18;
    }
    time_ticks(&body, &ta, ytop, y + 4);
    int height = (int)y + 24;

    pv_buf_printf(&title,
                  "Timeline of patient %s: %d exposures, %d events, "
                  "%d alerts, %d analytes",
                  patient_id, nex, nev, nal, ng);
    pv_buf_printf(&desc, " From %s to %s.", day(ta.t0, d1), day(ta.t1, d2));
    svg_open(&b, "patient", idattr, height, &ta);
    pv_buf_puts(&b, ">");
    svg_title(&b, idattr, pv_buf_cstr(&title), pv_buf_cstr(&desc));
    pv_buf_append(&b, body.ptr ? body.ptr : "", body.len);
    pv_buf_puts(&b, "</svg>");
    int ok = pv_buf_ok(&body);
    pv_buf_free(&body);
    if (!ok)
        goto done;
emit:
    if (!pv_buf_ok(&b) || !pv_buf_ok(&desc) || !pv_buf_ok(&title))
        goto done;
    pv_buf_append(out, b.ptr, b.len);
    result = pv_buf_ok(out) ? 0 : -1;
done:
    pv_buf_free(&b);
    pv_buf_free(&desc);
    pv_buf_free(&title);
    free(ex);
    free(ev);
    free(al);
    free(gr);
    return result;
}
