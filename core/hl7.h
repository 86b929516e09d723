/* hl7: a pure HL7 v2 parser, escape decoder, file splitter and ACK builder.
 *
 * Bytes in, a parsed message out: it reads the delimiters from MSH-1/MSH-2,
 * checks MSH-18 (UTF-8 and ASCII are validated, ISO 8859-1 is transcoded to
 * UTF-8, anything else is rejected), indexes segments and fields, and checks
 * the MSH fields every message needs. It does not know what segments mean
 * (map.c does), does not decide which types or versions are supported (the
 * engine does), and does no I/O. Every input has a ceiling, nothing recurses
 * on input, and the work is linear in the input. Calls only the C library;
 * depends on error.h. */
#ifndef PV_HL7_H
#define PV_HL7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Defaults for the ceilings in pv_hl7_opts. The message size is generous
 * because lab reports may embed a PDF in one field; the MLLP listener has its
 * own, smaller ceiling. */
#define PV_HL7_MAX_BYTES ((size_t)16 * 1024 * 1024)
#define PV_HL7_MAX_SEGMENTS 10000
#define PV_HL7_MAX_FIELDS 1000

typedef struct pv_hl7_msg pv_hl7_msg;

/* Ceilings and context for pv_hl7_parse(). A zero member means its default;
 * a NULL pointer means all defaults. */
typedef struct pv_hl7_opts {
    size_t max_bytes;    /* whole message; default PV_HL7_MAX_BYTES */
    size_t max_segments; /* default PV_HL7_MAX_SEGMENTS */
    size_t max_fields;   /* per segment; default PV_HL7_MAX_FIELDS */
    long first_line;     /* line number of the message's first byte in its
                            file, so reasons name file lines; default 1 */
} pv_hl7_opts;

/* Why a parse or split failed. 'reason' is a short English phrase naming the
 * segment and field where it can ("MSH-9 message type missing", "segment
 * name 'X1' is not 3 upper-case letters or digits"); it does not repeat the
 * line, which is in 'line' (0 when the fault has no line), so a caller
 * prints "FILE:LINE: reason" or "reason at line N". */
typedef struct pv_hl7_error {
    long line;
    char reason[256];
} pv_hl7_error;

/* ---- Parsing ---------------------------------------------------------- */

/* Parses one message from in[0..len). Segments may end with CR, LF or CRLF;
 * blank lines and a leading UTF-8 byte order mark are skipped. The message
 * keeps its own copy of the bytes (transcoded to UTF-8 when MSH-18 says ISO
 * 8859-1), so 'in' may be reused as soon as this returns, and every span the
 * accessors below return points into that copy, valid until pv_hl7_free().
 *
 * Returns 0 and sets *out, or fails with *out = NULL and 'err' (may be NULL)
 * filled: PV_EINVAL for a malformed or unsupported message, PV_ETOOBIG for a
 * ceiling crossed, PV_ENOMEM. */
int pv_hl7_parse(const char *in, size_t len, const pv_hl7_opts *opts,
                 pv_hl7_msg **out, pv_hl7_error *err);

/* Frees a message and every span into it. NULL is allowed. */
void pv_hl7_free(pv_hl7_msg *m);

/* ---- Segments --------------------------------------------------------- */

/* Segments are indexed from 0 in message order (MSH is 0), so a mapper can
 * walk PID / OBR / OBX groups in sequence. Out-of-range indexes give empty
 * spans, 0 or -1, never a crash; m may be NULL. Every span these functions
 * return has a non-NULL ptr, even when empty, so it can be handed to
 * memcmp() or printf("%.*s") without checks. */
size_t pv_hl7_segment_count(const pv_hl7_msg *m);

/* The three-character segment name ("OBX"). */
pv_span pv_hl7_segment_name(const pv_hl7_msg *m, size_t seg);

/* The line on which the segment stands (counted from opts->first_line; CRLF
 * counts as one line end). */
long pv_hl7_segment_line(const pv_hl7_msg *m, size_t seg);

/* Index of the nth (1-based) segment named 'name', or -1. */
long pv_hl7_find(const pv_hl7_msg *m, const char *name, size_t nth);

/* Index of the first segment named 'name' at index 'from' or later, or -1.
 * Walks groups: for (i = find_from(m, 0, "OBX"); i >= 0;
 *                    i = find_from(m, i + 1, "OBX")). */
long pv_hl7_find_from(const pv_hl7_msg *m, size_t from, const char *name);

/* Count of segments named 'name'. */
size_t pv_hl7_count(const pv_hl7_msg *m, const char *name);

/* ---- Fields ----------------------------------------------------------- */

/* Number of the last field present in the segment (MSH counts MSH-1, the
 * field separator, so "MSH|^~\&|A" has 3 fields). */
size_t pv_hl7_field_count(const pv_hl7_msg *m, size_t seg);

/* Field 'field' (1-based) of segment 'seg', raw (still escaped), with all its
 * repetitions. MSH is numbered as HL7 does: MSH-1 is the field separator
 * itself, MSH-2 the encoding characters, MSH-3 the sending application. */
pv_span pv_hl7_field(const pv_hl7_msg *m, size_t seg, size_t field);

/* One piece of a field, raw: repetition 'rep', component 'comp',
 * sub-component 'sub', all 1-based. comp = 0 gives the whole repetition and
 * sub = 0 the whole component; rep = 0 gives the whole field, like
 * pv_hl7_field(). Anything out of range is an empty span. MSH-1 and MSH-2
 * are never split. */
pv_span pv_hl7_get(const pv_hl7_msg *m, size_t seg, size_t field, size_t rep,
                   size_t comp, size_t sub);

/* Number of repetitions of a field: 0 when it is empty, else 1 plus the
 * count of repetition separators. */
size_t pv_hl7_rep_count(const pv_hl7_msg *m, size_t seg, size_t field);

/* True when v is the HL7 explicit null "" (delete the value), as opposed to
 * an empty field (no value sent). */
bool pv_hl7_is_null(pv_span v);

/* ---- Escapes ---------------------------------------------------------- */

/* Decodes the escape sequences of a raw value (any span, usually one from
 * the accessors) using m's delimiters: \F\ \S\ \T\ \R\ \E\ give the
 * delimiter, \P\ the truncation character (MSH-2's 5th), \Xhh..\ the bytes
 * (kept literally when they are not valid UTF-8 or contain NUL), \.br\ a
 * newline; the other formatting codes (\.sp\ \.in\ \.ti\ \.sk\ \.ce\ \.fi\
 * \.nf\ \H\ \N\) are dropped. An unknown or unterminated escape is copied as
 * it stands. Escapes do not nest: "\E\X0A\E\" decodes to the text \X0A\.
 *
 * Writes at most cap - 1 bytes and a NUL into out (cap may be 0, out then
 * may be NULL), snprintf-style, and returns the decoded length; a return >=
 * cap means the output was truncated. The decoded text is never longer than
 * raw, so cap = raw.len + 1 always suffices. */
size_t pv_hl7_decode(const pv_hl7_msg *m, pv_span raw, char *out, size_t cap);

/* Decodes into a new NUL-terminated string the caller frees with free(), or
 * returns NULL when out of memory. */
char *pv_hl7_decode_dup(const pv_hl7_msg *m, pv_span raw);

/* Escapes plain UTF-8 text for a field written with the standard delimiters
 * |^~\& : the five delimiters become \F\ \S\ \R\ \E\ \T\, a line end (LF,
 * CRLF or CR) \.br\, other control bytes and bytes that are not UTF-8
 * \Xhh\. Writes snprintf-style like pv_hl7_decode() and returns the escaped
 * length (at most 5 times the input). */
size_t pv_hl7_escape(pv_span text, char *out, size_t cap);

/* ---- MSH getters (raw spans, empty when absent) ------------------------- */

pv_span pv_hl7_msg_type(const pv_hl7_msg *m);         /* MSH-9.1, "ORU" */
pv_span pv_hl7_trigger(const pv_hl7_msg *m);          /* MSH-9.2, "R01" */
pv_span pv_hl7_structure(const pv_hl7_msg *m);        /* MSH-9.3, "ORU_R01" */
pv_span pv_hl7_control_id(const pv_hl7_msg *m);       /* MSH-10 */
pv_span pv_hl7_processing_id(const pv_hl7_msg *m);    /* MSH-11.1, P/D/T */
pv_span pv_hl7_version(const pv_hl7_msg *m);          /* MSH-12.1, "2.5.1" */
pv_span pv_hl7_sending_app(const pv_hl7_msg *m);      /* MSH-3, whole HD */
pv_span pv_hl7_sending_facility(const pv_hl7_msg *m); /* MSH-4, whole HD */
pv_span pv_hl7_time(const pv_hl7_msg *m);             /* MSH-7.1, HL7 TS */
pv_span pv_hl7_accept_ack(const pv_hl7_msg *m);       /* MSH-15, AL/NE/ER/SU */
pv_span pv_hl7_app_ack(const pv_hl7_msg *m);          /* MSH-16 */

/* MSH-18 as declared. The message's bytes are UTF-8 whatever it says: an
 * ISO 8859-1 message has been transcoded. */
pv_span pv_hl7_charset(const pv_hl7_msg *m);

/* True when the message is itself an acknowledgement (MSH-9.1 is "ACK"), so
 * the engine never acknowledges an ACK. */
bool pv_hl7_is_ack(const pv_hl7_msg *m);

/* The same test on bytes that may not parse: true when they begin (after
 * blank lines) with an MSH whose MSH-9.1 is "ACK". */
bool pv_hl7_raw_is_ack(const char *in, size_t len);

/* ---- Files ------------------------------------------------------------ */

/* Called once per message found by pv_hl7_split(). 'msg' points into the
 * caller's buffer (from "MSH" to the end of its last segment, without the
 * trailing line end) and 'line' is the line its MSH stands on; pass it as
 * opts->first_line to pv_hl7_parse(). Return 0 to go on, nonzero to stop:
 * pv_hl7_split() then returns that value. */
typedef int (*pv_hl7_msg_fn)(void *ud, pv_span msg, long line);

/* Called once per fault in the file's structure; the lines it covers are
 * skipped and splitting goes on. 'line' is where the fault was seen and
 * 'reason' a short English phrase valid during the call, such as "BHS
 * inside the batch opened at line 1 (nested batch); the message at line 2
 * and the lines up to the next MSH are skipped". */
typedef void (*pv_hl7_split_error_fn)(void *ud, long line, const char *reason);

/* Walks a whole file buffer and reports each message in it, in order. Lines
 * end with CR, LF or CRLF. Blank lines, a leading UTF-8 byte order mark and
 * MLLP framing bytes left in dump files (0x0B at a line's start, a line of
 * only 0x1C) are skipped. FHS / BHS / BTS / FTS envelopes are checked and
 * skipped: FHS only first, no nested BHS, BTS and FTS only closing what is
 * open, their counts equal to what was seen (BTS-1 messages; FTS-1 batches,
 * or messages in a file without batches), nothing after FTS, and every
 * envelope closed at the end. Lines outside any message are faults. The
 * messages themselves are not parsed. Returns 0, or the nonzero value a
 * message callback returned. Either callback may be NULL. */
int pv_hl7_split(const char *buf, size_t len, pv_hl7_msg_fn on_msg,
                 pv_hl7_split_error_fn on_error, void *ud);

/* ---- Acknowledgements ------------------------------------------------- */

/* MSA-1 codes of original-mode acknowledgement (HL7 table 0008). */
typedef enum pv_hl7_ack_code {
    PV_HL7_AA, /* accepted */
    PV_HL7_AE, /* well-formed but could not be stored or understood */
    PV_HL7_AR, /* rejected: malformed or unsupported */
} pv_hl7_ack_code;

/* ERR-3 error codes (HL7 table 0357). */
enum {
    PV_HL7_ERR_SEGMENT_SEQUENCE = 100,
    PV_HL7_ERR_REQUIRED_FIELD = 101,
    PV_HL7_ERR_DATA_TYPE = 102,
    PV_HL7_ERR_TABLE_VALUE = 103,
    PV_HL7_ERR_UNSUPPORTED_TYPE = 200,
    PV_HL7_ERR_UNSUPPORTED_EVENT = 201,
    PV_HL7_ERR_UNSUPPORTED_PROCESSING_ID = 202,
    PV_HL7_ERR_UNSUPPORTED_VERSION = 203,
    PV_HL7_ERR_UNKNOWN_KEY = 204,
    PV_HL7_ERR_DUPLICATE_KEY = 205,
    PV_HL7_ERR_RECORD_LOCKED = 206,
    PV_HL7_ERR_INTERNAL = 207,
};

/* What to say in an acknowledgement. */
typedef struct pv_hl7_ack_info {
    pv_hl7_ack_code code;
    int error;              /* ERR-3 code for AE/AR; 0 or unknown gives 207.
                             * With AA: nonzero means text holds warnings */
    const char *text;       /* ERR-8 for AE/AR, UTF-8, escaped here; NULL ok.
                             * With AA and error set: one warning per line,
                             * "ERL<TAB>text" (ERL = ERR-2, e.g. OBX^2^3, sent
                             * as is; no TAB: no ERR-2), each an ERR with
                             * severity W */
    const char *control_id; /* the ACK's own MSH-10, escaped here; required */
    int64_t now;            /* MSH-7, seconds since the epoch (injected) */
} pv_hl7_ack_info;

/* Builds an original-mode ACK for a parsed message, with the standard
 * delimiters |^~\& whatever the original used:
 *   MSH|^~\&|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<now>||ACK^<trigger>^ACK|
 *       <control_id>|<MSH-11.1, else P>|<MSH-12.1>
 *   MSA|<code>|<original MSH-10>
 *   ERR|||<error>^<table 0357 text>^HL70357|E||||<text>   (AE and AR only)
 *   ERR||<ERL>|<error>^<table 0357 text>^HL70357|W||||<text>  (AA with
 *       warnings: one per line of text, see pv_hl7_ack_info)
 * Every segment ends with CR; MSH-7 is UTC as YYYYMMDDHHMMSS+0000. On
 * success *out is a new NUL-terminated buffer of *len bytes that the caller
 * frees with free(). Returns 0, PV_EINVAL (no control_id, bad code) or
 * PV_ENOMEM. */
int pv_hl7_ack(const pv_hl7_msg *m, const pv_hl7_ack_info *info, char **out,
               size_t *len);

/* The same for bytes that did not parse: it copies what it can read safely
 * from an MSH on the first line (applications, facilities, trigger, MSH-10,
 * version) and leaves the rest empty, so MSA-2 is empty when no usable MSH
 * was found. The version defaults to 2.5. Same ownership as pv_hl7_ack(). */
int pv_hl7_ack_unparsed(const char *in, size_t in_len,
                        const pv_hl7_ack_info *info, char **out, size_t *len);

#endif
