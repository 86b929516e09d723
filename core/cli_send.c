/* cli_send.c: 'pvwatch send HOST:PORT FILE...' — an MLLP client for
 * operators (and tests): sends each message of each HL7 file, waits for its
 * ACK and prints it. Blocking sockets: it is a command, not the engine. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "error.h"
#include "hl7.h"
#include "mllp.h"

#define ACK_TIMEOUT_MS 30000

static const char usage_send[] =
    "usage: pvwatch send HOST:PORT FILE...\n"
    "\n"
    "Sends every HL7 message of each file ('-' = stdin; one message or\n"
    "many, batches allowed) over MLLP, one at a time, waits for each ACK\n"
    "(30 s at most) and prints FILE:LINE: CODE control-id [error text].\n"
    "Exit 0 only if every message got AA; 1 otherwise.\n";

struct ack_wait {
    pv_buf ack;
    int got;
};

static int on_ack(void *ud, pv_span msg)
{
    struct ack_wait *w = ud;
    pv_buf_append(&w->ack, msg.ptr, msg.len);
    w->got = 1;
    return 1;
}

static int dial(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host)
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Prints "CODE control-id text" of an ACK; returns 1 if it is AA. */
static int print_ack(const char *where, pv_span ack)
{
    pv_hl7_msg *m;
    pv_hl7_error err;
    if (pv_hl7_parse(ack.ptr, ack.len, NULL, &m, &err) != 0) {
        printf("%s: unreadable ACK: %s\n", where, err.reason);
        return 0;
    }
    long msa = pv_hl7_find(m, "MSA", 1);
    long errseg = pv_hl7_find(m, "ERR", 1);
    char code[8] = "", ctl[200] = "", text[512] = "";
    if (msa >= 0) {
        pv_hl7_decode(m, pv_hl7_get(m, (size_t)msa, 1, 1, 1, 0), code,
                      sizeof code);
        pv_hl7_decode(m, pv_hl7_get(m, (size_t)msa, 2, 1, 1, 0), ctl,
                      sizeof ctl);
    }
    if (errseg >= 0)
        pv_hl7_decode(m, pv_hl7_get(m, (size_t)errseg, 8, 1, 0, 0), text,
                      sizeof text);
    printf("%s: %s %s%s%s\n", where, code[0] ? code : "(no MSA)", ctl,
           text[0] ? " " : "", text);
    pv_hl7_free(m);
    return strcmp(code, "AA") == 0 || strcmp(code, "CA") == 0;
}

struct sender {
    int fd;
    const char *file;
    int all_aa;
    int broken;
    pv_mllp *framer;
    struct ack_wait *wait;
};

static int send_one(void *ud, pv_span msg, long line)
{
    struct sender *s = ud;
    char where[4200];
    snprintf(where, sizeof where, "%s:%ld", s->file, line);
    if (s->broken) {
        printf("%s: not sent (connection lost)\n", where);
        s->all_aa = 0;
        return 0;
    }
    char *framed;
    size_t flen;
    if (pv_mllp_wrap(msg, &framed, &flen) != 0) {
        /* 0x0B or 0x1C inside would break the framing: not sent. */
        printf("%s: not sent: the message contains an MLLP framing byte "
               "(0x0B or 0x1C)\n",
               where);
        s->all_aa = 0;
        return 0;
    }
    int sent = send_all(s->fd, framed, flen);
    free(framed);
    if (sent != 0) {
        printf("%s: send failed: %s\n", where, strerror(errno));
        s->all_aa = 0;
        s->broken = 1;
        return 0;
    }
    s->wait->got = 0;
    pv_buf_reset(&s->wait->ack);
    char buf[8192];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!s->wait->got) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, ACK_TIMEOUT_MS) <= 0) {
            printf("%s: no ACK within %d s\n", where, ACK_TIMEOUT_MS / 1000);
            s->all_aa = 0;
            s->broken = 1;
            return 0;
        }
        ssize_t n = recv(s->fd, buf, sizeof buf, 0);
        if (n <= 0) {
            printf("%s: connection closed before the ACK\n", where);
            s->all_aa = 0;
            s->broken = 1;
            return 0;
        }
        pv_mllp_feed(s->framer, buf, (size_t)n);
    }
    if (!print_ack(where, (pv_span){s->wait->ack.ptr, s->wait->ack.len}))
        s->all_aa = 0;
    return 0;
}

static void on_split_error(void *ud, long line, const char *reason)
{
    struct sender *s = ud;
    printf("%s:%ld: not sent: %s\n", s->file, line, reason);
    s->all_aa = 0;
}

static char *slurp(const char *path, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    pv_buf b = PV_BUF_INIT;
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        pv_buf_append(&b, chunk, (size_t)n);
    if (fd)
        close(fd);
    *len = b.len;
    if (!b.ptr)
        pv_buf_append(&b, "", 0);
    return b.ptr;
}

int pv_cli_send(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_send, stdout);
            return 0;
        }
    if (argc < 3) {
        fprintf(stderr, "pvwatch send: needs HOST:PORT and files\n%s",
                usage_send);
        return 2;
    }
    int fd = dial(argv[1]);
    if (fd < 0) {
        fprintf(stderr, "pvwatch send: cannot connect to %s: %s\n", argv[1],
                strerror(errno));
        return 1;
    }
    struct ack_wait wait = {PV_BUF_INIT, 0};
    pv_mllp_callbacks cb = {on_ack, NULL};
    struct sender s = {.fd = fd, .all_aa = 1, .wait = &wait};
    s.framer = pv_mllp_new(PV_MLLP_MAX_MESSAGE, &cb, &wait);
    for (int i = 2; i < argc && s.framer; i++) {
        size_t len;
        char *data = slurp(argv[i], &len);
        if (!data) {
            fprintf(stderr, "pvwatch send: %s: %s\n", argv[i], strerror(errno));
            s.all_aa = 0;
            continue;
        }
        s.file = argv[i];
        pv_hl7_split(data, len, send_one, on_split_error, &s);
        free(data);
    }
    pv_mllp_free(s.framer);
    pv_buf_free(&wait.ack);
    close(fd);
    return s.all_aa ? 0 : 1;
}
