/* test_log_escape: pv_buf_put_escaped, the one escaping every human-facing
 * output uses (issue 22, item 16): control characters become C escapes,
 * valid UTF-8 is kept; and pv_buf_json_str escapes DEL and the C1
 * controls too. */
#include <string.h>

#include "buf.h"
#include "test.h"

static const char *esc(pv_buf *b, const char *s, size_t len, int flags)
{
    pv_buf_reset(b);
    pv_buf_put_escaped(b, s, len, flags);
    return pv_buf_cstr(b);
}

static void issue22_item16_escapes(void)
{
    pv_buf b = PV_BUF_INIT;
    CHECK_STR(esc(&b, "plain text, 1.5 mg/dL", (size_t)-1, 0),
              "plain text, 1.5 mg/dL");
    CHECK_STR(esc(&b, "a\nb\rc\td", (size_t)-1, 0), "a\\nb\\rc\\td");
    CHECK_STR(esc(&b, "P\033[31mX", (size_t)-1, 0), "P\\x1b[31mX");
    CHECK_STR(esc(&b, "bel\a del\x7f", (size_t)-1, 0), "bel\\x07 del\\x7f");
    /* A NUL inside the given length. */
    CHECK_STR(esc(&b, "a\0b", 3, 0), "a\\x00b");
    /* Valid UTF-8 is kept; C1 controls in UTF-8 are escaped; bytes that
     * are not UTF-8 (a raw C1 byte, a lone lead byte) too. */
    CHECK_STR(
        esc(&b, "M\xc3\xbcller \xe2\x82\xac \xf0\x9f\x92\x8a", (size_t)-1, 0),
        "M\xc3\xbcller \xe2\x82\xac \xf0\x9f\x92\x8a");
    CHECK_STR(esc(&b, "csi\xc2\x9b nel\xc2\x85 nbsp\xc2\xa0", (size_t)-1, 0),
              "csi\\u009b nel\\u0085 nbsp\xc2\xa0");
    CHECK_STR(esc(&b, "raw\x9b lone\xc3 end", (size_t)-1, 0),
              "raw\\x9b lone\\xc3 end");
    CHECK_STR(esc(&b, "\xed\xa0\x80", (size_t)-1, 0), "\\xed\\xa0\\x80");
    /* Flags keep line ends or tabs of a table. */
    CHECK_STR(esc(&b, "a\tb\nc\r\n", (size_t)-1, PV_ESC_KEEP_NL),
              "a\\tb\nc\\r\n");
    CHECK_STR(esc(&b, "a\tb\n", (size_t)-1, PV_ESC_KEEP_TAB), "a\tb\\n");
    CHECK_STR(esc(&b, NULL, 0, 0), "(null)");
    CHECK_STR(pv_buf_escape(&b, "x\ny"), "x\\ny");
    CHECK_STR(pv_buf_escape(&b, ""), "");
    pv_buf_free(&b);
}

static void issue22_item16_json(void)
{
    pv_buf b = PV_BUF_INIT;
    pv_buf_json_str(&b, "d\x7f c\xc2\x9b e\033 \xc3\xa9", (size_t)-1);
    CHECK_STR(pv_buf_cstr(&b), "\"d\\u007f c\\u009b e\\u001b \xc3\xa9\"");
    pv_buf_free(&b);
}

int main(void)
{
    issue22_item16_escapes();
    issue22_item16_json();
    return pv_test_report();
}
