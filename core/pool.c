/* pool: see pool.h. A freed small block becomes the head of its class's
 * list (its first bytes hold the next pointer); a slab is carved from the
 * front and never split again, so freeing is O(1) and nothing moves. */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#include "faultsim.h"

/* Sanitizer builds (CMake PV_SANITIZE / PV_TSAN define PV_SANITIZE; a
 * compiler's own -fsanitize=address is seen too) hand every block to
 * realloc and free, so that ASan sees each Lua allocation: a block reused
 * from a free list is invisible to it (issue 20). */
#if !defined(PV_SANITIZE) && defined(__SANITIZE_ADDRESS__)
#define PV_SANITIZE 1
#endif
#if !defined(PV_SANITIZE) && defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PV_SANITIZE 1
#endif
#endif
#ifdef PV_SANITIZE
#define POOLING 0
#else
#define POOLING 1
#endif

#define GRAIN 16
#define CLASSES (PV_POOL_SMALL / GRAIN)
#define SLAB_BYTES (64 * 1024)

struct slab {
    struct slab *next;
    /* Blocks follow, GRAIN-aligned (malloc aligns to at least 16 on the
     * platforms pvwatch builds for, and this header is padded to GRAIN). */
    _Alignas(GRAIN) unsigned char data[];
};

struct pv_pool {
    void *free[CLASSES]; /* class c holds blocks of (c + 1) * GRAIN bytes */
    struct slab *slabs;
    unsigned char *cut; /* the next uncarved byte of slabs */
    size_t left;        /* bytes after cut */
    size_t slab_bytes;
};

pv_pool *pv_pool_new(void)
{
    return calloc(1, sizeof(pv_pool));
}

static size_t class_of(size_t n)
{
    return (n + GRAIN - 1) / GRAIN - 1;
}

static void *small_alloc(pv_pool *p, size_t c)
{
    void *b = p->free[c];
    if (b) {
        memcpy(&p->free[c], b, sizeof(void *));
        return b;
    }
    size_t size = (c + 1) * GRAIN;
    if (p->left < size) {
        /* The slab's tail (under PV_POOL_SMALL bytes) is left unused. */
        struct slab *s = malloc(sizeof *s + SLAB_BYTES);
        if (!s)
            return NULL;
        s->next = p->slabs;
        p->slabs = s;
        p->cut = s->data;
        p->left = SLAB_BYTES;
        p->slab_bytes += SLAB_BYTES;
    }
    b = p->cut;
    p->cut += size;
    p->left -= size;
    return b;
}

static void small_free(pv_pool *p, void *b, size_t c)
{
    memcpy(b, &p->free[c], sizeof(void *));
    p->free[c] = b;
}

int pv_pool_pooling(void)
{
    return POOLING;
}

void *pv_pool_realloc(pv_pool *p, void *ptr, size_t osize, size_t nsize)
{
    if (!ptr)
        osize = 0;
    /* Fault injection (faultsim.h): a growing allocation may fail; Lua
     * never expects a shrink to. */
    if (pv_faultsim_on && nsize > osize && pv_faultsim_fail(PV_FAULT_LUA))
        return NULL;
    if (!POOLING) {
        if (nsize == 0) {
            free(ptr);
            return NULL;
        }
        return realloc(ptr, nsize);
    }
    int old_small = ptr && osize <= PV_POOL_SMALL;
    if (nsize == 0) {
        if (old_small)
            small_free(p, ptr, class_of(osize));
        else
            free(ptr);
        return NULL;
    }
    if (nsize > PV_POOL_SMALL) {
        if (!ptr || !old_small)
            return realloc(ptr, nsize);
        void *n = malloc(nsize);
        if (!n)
            return NULL;
        memcpy(n, ptr, osize);
        small_free(p, ptr, class_of(osize));
        return n;
    }
    size_t c = class_of(nsize);
    if (old_small && class_of(osize) == c)
        return ptr;
    void *n = small_alloc(p, c);
    if (!n)
        return NULL;
    if (ptr) {
        memcpy(n, ptr, osize < nsize ? osize : nsize);
        if (old_small)
            small_free(p, ptr, class_of(osize));
        else
            free(ptr);
    }
    return n;
}

void pv_pool_free(pv_pool *p)
{
    if (!p)
        return;
    for (struct slab *s = p->slabs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    free(p);
}

size_t pv_pool_slab_bytes(const pv_pool *p)
{
    return p ? p->slab_bytes : 0;
}
