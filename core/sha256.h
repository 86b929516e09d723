/* sha256: FIPS 180-4 SHA-256, streaming.
 *
 * Used for provenance (the hash of each rule plugin's source, recorded with
 * every alert) and to recognise a file that was ingested before. Pure; no
 * I/O, no allocation: a pv_sha256 lives on the caller's stack and needs no
 * freeing. The digest itself is computed by Nettle (sha256.c), the
 * maintained library that libcurl already loads (issue 21 part 3); the
 * state is kept opaque here so that callers need no Nettle headers. */
#ifndef PV_SHA256_H
#define PV_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct pv_sha256 {
    union {
        uint64_t align;
        unsigned char bytes[128]; /* Nettle's struct sha256_ctx */
    } state;
} pv_sha256;

void pv_sha256_init(pv_sha256 *c);
void pv_sha256_update(pv_sha256 *c, const void *data, size_t len);
/* Writes the digest as 64 lower-case hex digits and a NUL into hex[65].
 * The context is used up; pv_sha256_init starts it again. */
void pv_sha256_hex(pv_sha256 *c, char hex[65]);

#endif
