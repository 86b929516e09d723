/* sha256: FIPS 180-4 SHA-256, streaming.
 *
 * Used for provenance (the hash of each rule plugin's source, recorded with
 * every alert) and to recognise a file that was ingested before. Pure; no
 * I/O. */
#ifndef PV_SHA256_H
#define PV_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct pv_sha256 {
    uint32_t h[8];
    uint64_t total;
    unsigned char block[64];
    size_t used;
} pv_sha256;

void pv_sha256_init(pv_sha256 *c);
void pv_sha256_update(pv_sha256 *c, const void *data, size_t len);
/* Writes the digest as 64 lower-case hex digits and a NUL into hex[65]. */
void pv_sha256_hex(pv_sha256 *c, char hex[65]);

#endif
