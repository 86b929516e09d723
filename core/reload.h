/* reload: what a SIGHUP does to the configuration (issue 21 part 2).
 *
 * The engine (engine.c, on_signal) reads the file again with the checks
 * 'pvwatch check' makes (pv_config_load, pv_config_check_paths); on any
 * error the running configuration stays whole. A valid new configuration
 * is merged here with the running one: what cannot change while running
 * keeps its running value in the new struct (so that every module sees
 * one consistent configuration), with a "needs a restart: KEY" line; every
 * other difference is a "KEY: OLD -> NEW" line. Secrets are never shown:
 * the user:password part of email.url is masked (the SMTP password itself
 * is never in the file). The engine then applies the live keys (the
 * e-mail routes and recipients through the notifier's configuration, the
 * inbox and tailed files by restarting their watchers, the log level and
 * format) and the rules reload with the new limits and label settings.
 * Pure: no I/O, no logging; calls config and buf. */
#ifndef PV_RELOAD_H
#define PV_RELOAD_H

#include "buf.h"
#include "config.h"

/* Compares old (running) with neu (loaded, valid). Keys that need a
 * restart are copied from old into neu; one line per key (no line end
 * inside) is appended to changes (what changed live) and to restart
 * (what needs a restart), each ending in '\n'. Returns 0, or PV_ENOMEM
 * (neu is then still safe to free, but not to use). */
int pv_reload_merge(const pv_config *old, pv_config *neu, pv_buf *changes,
                    pv_buf *restart);

/* The inbox.* and tail lines (not made by pv_reload_merge): the engine
 * appends them once it knows whether the new watchers started. */
int pv_reload_feed_lines(const pv_config *old, const pv_config *neu,
                         pv_buf *changes);

/* Whether the inbox watcher (inbox.*) or the tailed files (tail) must be
 * restarted for neu. */
int pv_reload_inbox_changed(const pv_config *old, const pv_config *neu);
int pv_reload_tail_changed(const pv_config *old, const pv_config *neu);

/* The new inbox or tail could not be started: neu gets old's settings
 * back (they are what runs). 0 or PV_ENOMEM. */
int pv_reload_keep_inbox(const pv_config *old, pv_config *neu);
int pv_reload_keep_tail(const pv_config *old, pv_config *neu);

/* email.url with a user[:password]@ part shown as "***@" (for logs). */
void pv_reload_put_url(pv_buf *b, const char *url);

#endif
