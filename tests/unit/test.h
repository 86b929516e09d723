/* test.h: the assertions every C unit test uses.
 *
 * Each assertion prints the file, line and both sides when it fails, counts
 * the failure and goes on, so one run shows every broken case. A test file
 * ends with 'return pv_test_report();', which prints the closing line and
 * gives the exit status ctest reads. */
#ifndef PV_TEST_H
#define PV_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int pv_test_failed;
static int pv_test_passed;

#define PV_FAIL_(...)                                                          \
    do {                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                        \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        pv_test_failed++;                                                      \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond)                                                              \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("CHECK(%s) failed", #cond);                               \
    } while (0)

#define CHECK_INT(a, b)                                                        \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ == b_)                                                          \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                \
    } while (0)

#define CHECK_DBL(a, b, eps)                                                   \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        if (a_ - b_ <= (eps) && b_ - a_ <= (eps))                              \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("%s == %s: %.9g != %.9g", #a, #b, a_, b_);                \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (a_ && b_ && strcmp(a_, b_) == 0)                                   \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                     b_ ? b_ : "(null)");                                      \
    } while (0)

/* Compares a (pointer, length) span with a C string. */
#define CHECK_SPAN(ptr, len, b)                                                \
    do {                                                                       \
        const char *b_ = (b);                                                  \
        size_t l_ = (len);                                                     \
        if (strlen(b_) == l_ && memcmp((ptr), b_, l_) == 0)                    \
            pv_test_passed++;                                                  \
        else                                                                   \
            PV_FAIL_("%s == %s: \"%.*s\" != \"%s\"", #ptr, #b, (int)l_,        \
                     (const char *)(ptr), b_);                                 \
    } while (0)

static inline int pv_test_report(void)
{
    printf("%d passed, %d failed\n", pv_test_passed, pv_test_failed);
    return pv_test_failed ? 1 : 0;
}

#endif
