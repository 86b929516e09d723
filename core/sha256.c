/* sha256.c: see sha256.h. A thin wrapper over Nettle's SHA-256. */
#include "sha256.h"

#include <nettle/sha2.h>

_Static_assert(sizeof(struct sha256_ctx) <= sizeof(((pv_sha256 *)0)->state),
               "pv_sha256 too small for Nettle's sha256_ctx");
_Static_assert(_Alignof(struct sha256_ctx) <= _Alignof(uint64_t),
               "pv_sha256 under-aligned for Nettle's sha256_ctx");

static struct sha256_ctx *ctx(pv_sha256 *c)
{
    return (struct sha256_ctx *)(void *)c->state.bytes;
}

void pv_sha256_init(pv_sha256 *c)
{
    sha256_init(ctx(c));
}

void pv_sha256_update(pv_sha256 *c, const void *data, size_t len)
{
    if (len)
        sha256_update(ctx(c), len, data);
}

void pv_sha256_hex(pv_sha256 *c, char hex[65])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(ctx(c), sizeof d, d);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
}
