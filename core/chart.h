/* chart: server-side inline SVG for the review console (issue 16): the
 * alert chart (an analyte's result history against the label threshold and
 * the CTCAE grade bands, baricitinib exposure windows shaded, the alert's
 * facts marked) and the patient timeline (exposures, events, one sparkline
 * per analyte, alerts on one time axis). Plain SVG, no script: it works
 * with JavaScript off and in a printed page.
 *
 * The numbers drawn (CTCAE bands, label thresholds, default LLN/ULN) are
 * read once, at console start, from the rule pack's Lua modules
 * (scripts/ctcae.lua, scripts/label.lua, with codes.lua and units.lua), by
 * pv_chart_init: a private lua_State loads them, the numbers are copied
 * into an immutable C table, and the state is closed. There is no second
 * copy of the numbers in C.
 *
 * Threads: pv_chart_alert and pv_chart_patient may be called from several
 * threads at once, each with its own (read-only) sqlite3 connection; they
 * only read the table pv_chart_init built and keep no other state. Call
 * pv_chart_init before the first chart and pv_chart_free after the last
 * (both from one thread, while no chart is being drawn).
 *
 * SVG contract with the browser test (classes and data attributes; all
 * times ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ"):
 *   <svg class="pv-chart" data-t0=ISO data-t1=ISO data-x0=px data-x1=px
 *        data-unit=UNIT ...>      (the time axis spans x0..x1 for t0..t1)
 *   <line class="threshold" data-value=V ...>   label threshold, in the
 *                                               plotted (display) unit
 *   <rect class="grade-band" data-grade=G ...>  CTCAE grade band
 *   <rect class="exposure" data-start=ISO data-end=ISO x=.. width=..>
 *        (an open exposure has data-end="" and runs to x1)
 *   <circle class="point" data-at=ISO data-value=V ...>   a result
 *   <circle class="point fact" ...>              a result that is one of the
 *                                               alert's evidence facts
 *   <circle class="void" data-status=S ...>      a result the rules never
 *        judge (W, X, I, R, N, O: docs/rules.md), hollow, never a "point"
 *   <g class="panel" data-analyte=A data-unit=U data-v0 data-v1 data-y0
 *        data-y1>   one analyte's plot: y = y0 - (v - v0)/(v1 - v0)*(y0 - y1)
 *   x = x0 + (t - t0) / (t1 - t0) * (x1 - x0).
 * Values are converted into one display unit per analyte (the unit of the
 * alert's result; units.lua's conversions), and so are the threshold and
 * the bands (a band that moves with the LLN/ULN uses the alert result's
 * own range, else the term's default). An exposure outside the time axis
 * is clamped to it and carries data-clip="start"/"end". Numbers are
 * written with the "C" locale's decimal point (pvwatch never calls
 * setlocale).
 * Calls SQLite, Lua (pv_chart_init only) and buf; nothing else. */
#ifndef PV_CHART_H
#define PV_CHART_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends one <svg> (viewBox 720 x 260, one such panel per analyte, at
 * most 3) for alert alert_id: the history of the alert's analyte(s) (its
 * evidence items of kind "lab", and every code codes.lua puts in the same
 * analyte set) for its patient, the newest 1000 results each. Returns 0
 * (svg appended), 1 when the alert has no numeric lab evidence (e.g. an
 * event-only alert such as herpes zoster, or evidence that is not JSON;
 * nothing appended), or -1 on a database error or when the alert does not
 * exist (nothing appended). Without pv_chart_init (or after it failed)
 * results are plotted in the unit they were sent in, without threshold,
 * bands or exposure windows. */
int pv_chart_alert(sqlite3 *db, int64_t alert_id, pv_buf *out);

/* Appends the patient timeline <svg> (720 wide, as tall as its rows):
 * exposures as bars per drug (<rect class="exposure" data-baricitinib=0|1>,
 * an open one to x1), events (<path class="event">) and alerts (<a
 * href="/alerts/ID"><circle class="alert">, at the time of the alert's
 * newest evidence item, else when it was raised) as markers, one sparkline per
 * analyte (<g class="sparkline">, the last 20 judged results) on a shared
 * time axis. Returns 0, or -1 on a database error (nothing appended). A
 * patient with no rows gets a small "no data" svg. */
int pv_chart_patient(sqlite3 *db, const char *patient_id, pv_buf *out);

/* Loads the CTCAE bands and label thresholds from the Lua modules in
 * scripts_dir (the directory holding ctcae.lua, label.lua, codes.lua and
 * units.lua), for the default label (indication "ra", region "us").
 * The copies chart.c keeps of units.canonical, units.convert and
 * codes.drug_matches are checked against what the modules answer. Returns
 * 0, or -1 with a message naming the file (and line) or the module local
 * and the reason in err; a failed call keeps the table of an earlier one,
 * and without any the charts are drawn without threshold, bands and
 * exposure windows. A second call replaces the table (not while charts are
 * being drawn). Takes about 0.1 s of CPU. */
int pv_chart_init(const char *scripts_dir, char *err, size_t errcap);
/* What the console calls at start: the modules are searched in the
 * config's `scripts` directories in order (cfg->scripts, as the rule
 * sandbox's require does; they default to ./scripts or the installed rule
 * pack), and the label threshold is the one of cfg->label (indication,
 * region; NULL fields mean "ra", "us"). */
struct pv_config;
int pv_chart_init_cfg(const struct pv_config *cfg, char *err, size_t errcap);
void pv_chart_free(void);

#endif
