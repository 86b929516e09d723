/* pool: an allocator for the small blocks of one owner (a rule plugin's
 * Lua state), behind the lua_Alloc contract.
 *
 * A rule call makes and drops hundreds of small blocks (tables, strings,
 * closures); malloc and free cost about a tenth of an MLLP message's CPU.
 * Blocks up to PV_POOL_SMALL bytes come from free lists by 16-byte size
 * class, carved from 64 KiB slabs; larger ones go to malloc. Slabs are
 * given back only by pv_pool_free, so the pool's footprint is its owner's
 * peak of small blocks. It does no accounting of limits (the caller does)
 * and no locking: one pool, one thread at a time.
 *
 * In sanitizer builds (PV_SANITIZE) there is no pooling: every block goes
 * straight to realloc and free, so that ASan sees each one. Every growing
 * allocation is offered to fault injection first (faultsim.h,
 * PV_FAULT_LUA).
 */
#ifndef PV_POOL_H
#define PV_POOL_H

#include <stddef.h>

#define PV_POOL_SMALL 256

typedef struct pv_pool pv_pool;

/* A new, empty pool, or NULL when out of memory. */
pv_pool *pv_pool_new(void);

/* lua_Alloc semantics: nsize 0 frees ptr (NULL is allowed) and returns
 * NULL; otherwise returns a block of nsize bytes holding the first
 * min(osize, nsize) bytes of ptr (ptr NULL: a new block), or NULL with ptr
 * untouched when out of memory. osize must be the size ptr was allocated
 * with (Lua always passes it); it is ignored when ptr is NULL. */
void *pv_pool_realloc(pv_pool *p, void *ptr, size_t osize, size_t nsize);

/* Frees the pool and every slab: blocks still allocated from it are gone.
 * Call it after lua_close. NULL is allowed. */
void pv_pool_free(pv_pool *p);

/* 1 when blocks are pooled, 0 in sanitizer builds (every block is a
 * malloc of its own; pv_pool_slab_bytes stays 0). */
int pv_pool_pooling(void);

/* Bytes held in slabs (for tests and RSS reasoning). */
size_t pv_pool_slab_bytes(const pv_pool *p);

#endif
