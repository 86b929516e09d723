/* web_cache.c: see web_cache.h. */
#include "web_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    char *key;
    char version[64];
    int64_t at_ms; /* CLOCK_MONOTONIC when kept */
    char *data;
    size_t len;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[PV_WEB_CACHE_SLOTS];
static unsigned long hits, misses;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pv_web_cache_version(sqlite3 *db, char out[64])
{
    sqlite3_stmt *st;
    out[0] = '\0';
    if (!db || sqlite3_prepare_v2(db,
                                  "SELECT (SELECT max(id) FROM alerts), "
                                  "(SELECT max(id) FROM alert_actions)",
                                  -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, 64, "%lld:%lld", (long long)sqlite3_column_int64(st, 0),
                 (long long)sqlite3_column_int64(st, 1));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static void slot_free(struct slot *s)
{
    free(s->key);
    free(s->data);
    memset(s, 0, sizeof *s);
}

int pv_web_cache_get(const char *key, const char *version, pv_buf *out)
{
    int hit = 0;
    int64_t now = now_ms();
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < PV_WEB_CACHE_SLOTS; i++) {
        struct slot *s = &slots[i];
        if (!s->key || strcmp(s->key, key))
            continue;
        if (!strcmp(s->version, version) && now - s->at_ms < PV_WEB_CACHE_MS &&
            now >= s->at_ms) {
            pv_buf_append(out, s->data, s->len);
            hit = pv_buf_ok(out);
        } else {
            slot_free(s); /* stale: no one will use it again */
        }
        break;
    }
    if (hit)
        hits++;
    else
        misses++;
    pthread_mutex_unlock(&mu);
    return hit;
}

void pv_web_cache_put(const char *key, const char *version, const char *data,
                      size_t len)
{
    if (len > PV_WEB_CACHE_MAX_BYTES || strlen(version) >= 64)
        return;
    char *k = strdup(key);
    char *d = malloc(len ? len : 1);
    if (!k || !d) {
        free(k);
        free(d);
        return;
    }
    memcpy(d, data, len);
    int64_t now = now_ms();
    pthread_mutex_lock(&mu);
    struct slot *to = NULL;
    for (size_t i = 0; i < PV_WEB_CACHE_SLOTS && !to; i++)
        if (slots[i].key && !strcmp(slots[i].key, key))
            to = &slots[i];
    for (size_t i = 0; i < PV_WEB_CACHE_SLOTS && !to; i++)
        if (!slots[i].key)
            to = &slots[i];
    if (!to) {
        to = &slots[0];
        for (size_t i = 1; i < PV_WEB_CACHE_SLOTS; i++)
            if (slots[i].at_ms < to->at_ms)
                to = &slots[i];
    }
    slot_free(to);
    to->key = k;
    snprintf(to->version, sizeof to->version, "%s", version);
    to->at_ms = now;
    to->data = d;
    to->len = len;
    pthread_mutex_unlock(&mu);
}

void pv_web_cache_counts(unsigned long *h, unsigned long *m)
{
    pthread_mutex_lock(&mu);
    if (h)
        *h = hits;
    if (m)
        *m = misses;
    pthread_mutex_unlock(&mu);
}

void pv_web_cache_clear(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < PV_WEB_CACHE_SLOTS; i++)
        slot_free(&slots[i]);
    hits = misses = 0;
    pthread_mutex_unlock(&mu);
}
