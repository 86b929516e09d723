/* test_pool: the small-block allocator behind each rule plugin's Lua state
 * (pool.h). Contents survive every kind of resize (within a class, across
 * classes, small to large and back); freed blocks are reused, so a steady
 * churn does not grow the slabs; blocks are 16-byte aligned; many blocks
 * live at once without overlapping. A Lua state run on the pool checks
 * the lua_Alloc contract end to end. Run under valgrind and ASan by CI. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "test.h"

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31u + i);
}

static int holds(const unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 31u + i))
            return 0;
    return 1;
}

static void test_resizes_keep_contents(void)
{
    pv_pool *p = pv_pool_new();
    CHECK(p != NULL);
    /* Sizes on both sides of every boundary that matters. */
    const size_t sizes[] = {1,   15,  16,  17,   100, 255,
                            256, 257, 300, 4096, 24,  8};
    const size_t n = sizeof sizes / sizeof sizes[0];
    unsigned char *b = pv_pool_realloc(p, NULL, 7 /* a Lua type tag */, 1);
    CHECK(b != NULL);
    fill(b, 1, 1);
    size_t cur = 1;
    for (size_t i = 1; i < n; i++) {
        unsigned char *nb = pv_pool_realloc(p, b, cur, sizes[i]);
        CHECK(nb != NULL);
        if (!nb)
            break;
        size_t kept = cur < sizes[i] ? cur : sizes[i];
        if (!holds(nb, kept, (unsigned)i))
            PV_FAIL_("resize %zu -> %zu lost the contents", cur, sizes[i]);
        else
            pv_test_passed++;
        CHECK_INT((uintptr_t)nb % 16, 0);
        fill(nb, sizes[i], (unsigned)i + 1);
        b = nb;
        cur = sizes[i];
    }
    CHECK(pv_pool_realloc(p, b, cur, 0) == NULL);
    pv_pool_free(p);
}

static void test_reuse_and_no_overlap(void)
{
    pv_pool *p = pv_pool_new();
    enum { N = 5000 };
    static unsigned char *blk[N];
    static size_t len[N];
    for (int i = 0; i < N; i++) {
        len[i] = 1 + (size_t)(i * 37) % PV_POOL_SMALL;
        blk[i] = pv_pool_realloc(p, NULL, 0, len[i]);
        CHECK(blk[i] != NULL);
        fill(blk[i], len[i], (unsigned)i);
    }
    int intact = 1;
    for (int i = 0; i < N; i++)
        intact &= holds(blk[i], len[i], (unsigned)i);
    CHECK(intact);
    size_t peak = pv_pool_slab_bytes(p);
    /* Sanitizer builds do not pool (pool.h): no slabs, no reuse. */
    CHECK(pv_pool_pooling() ? peak > 0 : peak == 0);
    /* Churn: free and allocate the same sizes many times over; the slabs
     * must not grow, as every block comes back from a free list. */
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i += 2) {
            pv_pool_realloc(p, blk[i], len[i], 0);
            blk[i] = pv_pool_realloc(p, NULL, 0, len[i]);
            fill(blk[i], len[i], (unsigned)(i + round));
        }
        for (int i = 0; i < N; i += 2)
            intact &= holds(blk[i], len[i], (unsigned)(i + round));
        for (int i = 1; i < N; i += 2)
            intact &= holds(blk[i], len[i], (unsigned)i);
    }
    CHECK(intact);
    CHECK_INT(pv_pool_slab_bytes(p), peak);
    /* A freed block is the next one handed out for its size class. */
    uintptr_t last_freed = (uintptr_t)blk[10];
    pv_pool_realloc(p, blk[10], len[10], 0);
    blk[10] = pv_pool_realloc(p, NULL, 0, len[10]);
    CHECK(blk[10] != NULL);
    if (pv_pool_pooling())
        CHECK((uintptr_t)blk[10] == last_freed);
    for (int i = 0; i < N; i++)
        pv_pool_realloc(p, blk[i], len[i], 0);
    pv_pool_free(p);
}

static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    return pv_pool_realloc(ud, ptr, osize, nsize);
}

/* A Lua state on the pool: tables, strings, closures and the collector
 * exercise every lua_Alloc case. */
static void test_lua_on_pool(void)
{
    pv_pool *p = pv_pool_new();
    lua_State *L = lua_newstate(pool_alloc, p);
    CHECK(L != NULL);
    luaL_openlibs(L);
    const char *chunk =
        "local t = {}\n"
        "for i = 1, 20000 do t[i] = { i, tostring(i) .. 'x', f = function() "
        "return i end } end\n"
        "local s = 0\n"
        "for i = 1, #t, 7 do s = s + t[i][1] + t[i].f() + #t[i][2] end\n"
        "t = nil; collectgarbage()\n"
        "local parts = {}\n"
        "for i = 1, 300 do parts[#parts + 1] = string.rep('ab', i) end\n"
        "return s, #table.concat(parts)";
    CHECK_INT(luaL_dostring(L, chunk), LUA_OK);
    /* sum over i = 1, 8, ..., 19996 of 2 * i + #tostring(i) + 1 */
    long long want = 0;
    for (long long i = 1; i <= 20000; i += 7) {
        int digits = i < 10      ? 1
                     : i < 100   ? 2
                     : i < 1000  ? 3
                     : i < 10000 ? 4
                                 : 5;
        want += 2 * i + digits + 1;
    }
    CHECK_INT(lua_tointeger(L, -2), want);
    CHECK_INT(lua_tointeger(L, -1), 300 * 301);
    lua_close(L);
    pv_pool_free(p);
}

int main(void)
{
    test_resizes_keep_contents();
    test_reuse_and_no_overlap();
    test_lua_on_pool();
    return pv_test_report();
}
