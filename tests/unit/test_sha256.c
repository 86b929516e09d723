/* test_sha256: pv_sha256 (Nettle underneath) against the FIPS 180-2
 * examples (appendix B: "abc", the 448-bit two-block message, one million
 * 'a'), the empty message, and streaming in pieces of every size across
 * block boundaries giving the one-shot digest. */
#include <stdlib.h>

#include "sha256.h"
#include "test.h"

static void digest(const void *data, size_t len, char hex[65])
{
    pv_sha256 c;
    pv_sha256_init(&c);
    pv_sha256_update(&c, data, len);
    pv_sha256_hex(&c, hex);
}

int main(void)
{
    char hex[65];

    /* FIPS 180-2 appendix B.1 */
    digest("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223"
                   "b00361a396177a9cb410ff61f20015ad");

    /* Appendix B.2: 448 bits, padded into two blocks. */
    const char *two =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(two, strlen(two), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039"
                   "a33ce45964ff2167f6ecedd419db06c1");

    /* Appendix B.3: one million 'a', fed 1000 at a time. */
    char block[1000];
    memset(block, 'a', sizeof block);
    pv_sha256 c;
    pv_sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        pv_sha256_update(&c, block, sizeof block);
    pv_sha256_hex(&c, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
                   "f1809a48a497200e046d39ccc7112cd0");

    /* The empty message, with and without a zero-length update. */
    digest("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                   "27ae41e4649b934ca495991b7852b855");
    pv_sha256_init(&c);
    pv_sha256_update(&c, NULL, 0);
    pv_sha256_hex(&c, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                   "27ae41e4649b934ca495991b7852b855");

    /* Streaming in pieces of 1..130 bytes equals the one-shot digest. */
    unsigned char msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    char whole[65];
    digest(msg, sizeof msg, whole);
    for (size_t step = 1; step <= 130; step++) {
        pv_sha256_init(&c);
        for (size_t off = 0; off < sizeof msg; off += step) {
            size_t n = sizeof msg - off < step ? sizeof msg - off : step;
            pv_sha256_update(&c, msg + off, n);
        }
        pv_sha256_hex(&c, hex);
        CHECK_STR(hex, whole);
    }

    /* A context is reusable after init. */
    pv_sha256_init(&c);
    pv_sha256_update(&c, "abc", 3);
    pv_sha256_hex(&c, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223"
                   "b00361a396177a9cb410ff61f20015ad");
    return pv_test_report();
}
