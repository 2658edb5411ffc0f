/*
 * flood.c - a hostile peer for tests/test_flood.sh: sends a server many
 * datagrams that no honest peer would, as fast as the socket takes them,
 * and counts what comes back.
 *
 *   flood --to ADDR:PORT [--count N] [--seed S] [--subsystem N]
 *         [--binds] [--sources K]
 *
 * Without --binds, a mix of: random bytes of random length; well-formed
 * datagrams cut short; headers of every type with random connection ids,
 * sealed with a valid check and without one; foreign versions; lengths and
 * flags that disagree with the datagram; BIND_REQs with forged cookies; and
 * BIND_REQs without a cookie for the subsystem (each from a fresh client
 * id: a stranger who never answers its BIND_OK).
 *
 * With --binds, only those last: cookie-less BIND_REQs for the subsystem,
 * spread over K sockets bound to K different addresses 127.x.y.z (Linux
 * routes all of 127/8 to lo), as from many hosts.
 *
 * It prints one line: what was sent, how long it took, and what came back
 * by type, with bytes both ways (the server must never answer with more).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "packet.h"

#define BATCH 64
#define MAX_LEN 1500 /* junk stays below a typical MTU */
#define MAX_SOURCES 4096

struct options {
    const char *to;
    unsigned long count, seed, subsystem, sources;
    int binds;
};

struct tally {
    uint64_t sent, sent_bytes, answers, answer_bytes;
    uint64_t by_type[PKT_TYPE_MAX + 2]; /* the last: anything unparsable */
    uint64_t kinds[16];
    double sending_s; /* from the first datagram to the last */
};

static uint64_t rng_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t nonzero32(void)
{
    uint32_t v;
    do
        v = (uint32_t)rnd();
    while (v == 0);
    return v;
}

static void random_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* ---- datagrams ------------------------------------------------------------- */

/* Header and body; sealed with a valid check, or with a random trailer. */
static size_t make(uint8_t *buf, uint8_t type, uint8_t flags, const uint8_t *body, size_t body_len,
                   int valid_check)
{
    struct pkt_hdr h = {
        .version = PKT_VERSION,
        .type = type,
        .flags = flags,
        .dst_conn = type == PKT_BIND_REQ ? 0 : (uint32_t)rnd(),
        .src_conn = nonzero32(),
        .seq = (uint32_t)rnd(),
        .transfer = (uint32_t)(rnd() & 3) ? 0 : (uint32_t)rnd(),
        .ts = nonzero32(),
        .body_len = (uint32_t)body_len,
        .trailer_len = PKT_CHECK_SIZE,
    };
    pkt_hdr_encode(&h, buf);
    memcpy(buf + PKT_HDR_SIZE, body, body_len);
    if (valid_check)
        return pkt_seal(buf, PKT_HDR_SIZE + body_len);
    random_bytes(buf + PKT_HDR_SIZE + body_len, PKT_CHECK_SIZE);
    return PKT_HDR_SIZE + body_len + PKT_CHECK_SIZE;
}

static size_t bind_body(uint8_t *body, uint32_t subsystem, int forged_cookie)
{
    uint8_t cookie[PKT_MAX_COOKIE], identity[32];
    struct pkt_bind_req m = {.subsystem = subsystem, .identity = identity};
    size_t len = 0;

    if (forged_cookie) {
        m.cookie_len = (uint32_t)(rnd() % 3 == 0 ? 1 + rnd() % PKT_MAX_COOKIE : 12);
        random_bytes(cookie, m.cookie_len);
        m.cookie = cookie;
    }
    m.identity_len = (uint32_t)(rnd() % sizeof identity);
    memset(identity, 'x', m.identity_len);
    if (pkt_bind_req_encode(&m, body, 512, &len) != PKT_OK)
        return 0;
    return len;
}

/* One hostile datagram of the given kind; returns its length. */
static size_t hostile(uint8_t *buf, unsigned kind, uint32_t subsystem)
{
    uint8_t body[MAX_LEN];
    size_t body_len = rnd() % 64, len;

    random_bytes(body, body_len);
    switch (kind) {
    case 0: /* noise */
        len = rnd() % MAX_LEN;
        random_bytes(buf, len);
        return len;
    case 1: /* a good datagram cut short */
        len = make(buf, (uint8_t)(1 + rnd() % PKT_TYPE_MAX), 0, body, body_len, 1);
        return rnd() % len;
    case 2: /* any type, random ids, valid check: unknown connections, wrong directions */
        return make(buf, (uint8_t)(1 + rnd() % (PKT_TYPE_MAX + 3)), 0, body, body_len, 1);
    case 3: /* the same with a check that does not match */
        return make(buf, (uint8_t)(1 + rnd() % PKT_TYPE_MAX), 0, body, body_len, 0);
    case 4: /* a foreign version */
        len = make(buf, PKT_CALL, 0, body, body_len, 1);
        buf[0] = (uint8_t)(2 + rnd() % 250);
        return len;
    case 5: /* lengths that disagree with the datagram, sealed over what is there */
        len = make(buf, PKT_CALL, 0, body, body_len, 0);
        buf[35] ^= (uint8_t)(1 + rnd() % 255); /* body_len's low byte */
        pkt_check_write(buf, len - PKT_CHECK_SIZE);
        return len;
    case 6: /* unknown flags, security levels or reserved bits */
        len = make(buf, PKT_CALL, (uint8_t)(0x04 << (rnd() % 6)), body, body_len, 1);
        if (rnd() & 1) {
            buf[38] = 1; /* reserved */
            pkt_check_write(buf, len - PKT_CHECK_SIZE);
        }
        return len;
    case 7: /* a bind with a forged cookie */
        body_len = bind_body(body, subsystem, 1);
        return make(buf, PKT_BIND_REQ, 0, body, body_len, 1);
    default: /* a bind without a cookie, from a client that never answers */
        body_len = bind_body(body, subsystem, 0);
        return make(buf, PKT_BIND_REQ, 0, body, body_len, 1);
    }
}

/* ---- sockets ---------------------------------------------------------------- */

static int open_from(const char *ip)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int big = 8 << 20;

    if (fd < 0)
        return -1;
    /* Room for the answers between two drains (best effort). */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (ip && inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads every answer waiting on fd and counts it by type. */
static void drain(int fd, struct tally *t)
{
    static uint8_t bufs[BATCH][2048];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    int n;

    do {
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof bufs[i]};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < n; i++) {
            struct pkt_hdr h;
            size_t len = msgs[i].msg_len;
            int ok = pkt_hdr_decode(bufs[i], len, &h) == PKT_OK;

            t->answers++;
            t->answer_bytes += len;
            t->by_type[ok ? h.type : PKT_TYPE_MAX + 1]++;
        }
    } while (n == BATCH || (n < 0 && errno == EINTR));
}

/* Sends n datagrams from bufs; waits (draining answers) while the socket is full. */
static void send_all(int fd, const struct sockaddr_storage *to, socklen_t tolen,
                     uint8_t (*bufs)[MAX_LEN], const size_t *lens, int n, struct tally *t)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    int done = 0;

    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < n; i++) {
        iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = lens[i]};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (void *)to;
        msgs[i].msg_hdr.msg_namelen = tolen;
    }
    while (done < n) {
        int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);

        if (r > 0) {
            for (int i = done; i < done + r; i++)
                t->sent_bytes += lens[i];
            t->sent += (uint64_t)r;
            done += r;
            continue;
        }
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
            drain(fd, t);
            continue;
        }
        done++; /* refused (ICMP from an earlier datagram): skip it */
    }
}

/* ---- the two floods ----------------------------------------------------------- */

/* A moment for the last answers to arrive, then count them. */
static void settle(const int *fds, unsigned n, struct tally *t, double started)
{
    t->sending_s = now_s() - started;
    for (int round = 0; round < 20; round++) {
        struct timespec ms50 = {0, 50 * 1000 * 1000};
        nanosleep(&ms50, NULL);
        for (unsigned i = 0; i < n; i++)
            drain(fds[i], t);
    }
}

static int flood_mix(const struct options *o, const struct sockaddr_storage *to, socklen_t tolen,
                     struct tally *t)
{
    static uint8_t bufs[BATCH][MAX_LEN];
    size_t lens[BATCH];
    int fd = open_from("127.0.0.1");

    if (fd < 0) {
        perror("flood: socket");
        return 1;
    }
    double started = now_s();
    for (unsigned long left = o->count; left > 0;) {
        int n = left < BATCH ? (int)left : BATCH;

        for (int i = 0; i < n; i++) {
            unsigned kind = (unsigned)(rnd() % 9);
            lens[i] = hostile(bufs[i], kind, (uint32_t)o->subsystem);
            t->kinds[kind]++;
        }
        send_all(fd, to, tolen, bufs, lens, n, t);
        drain(fd, t);
        left -= (unsigned long)n;
    }
    settle(&fd, 1, t, started);
    close(fd);
    return 0;
}

static int flood_binds(const struct options *o, const struct sockaddr_storage *to, socklen_t tolen,
                       struct tally *t)
{
    static int fds[MAX_SOURCES];
    static uint8_t bufs[BATCH][MAX_LEN];
    size_t lens[BATCH];
    unsigned k = (unsigned)o->sources;
    char ip[32];

    for (unsigned i = 0; i < k; i++) {
        /* 127.1.0.1 upwards: never 127.0.0.1, the honest clients' address */
        snprintf(ip, sizeof ip, "127.%u.%u.%u", 1 + i / 65024, (i / 254) % 256, 1 + i % 254);
        fds[i] = open_from(ip);
        if (fds[i] < 0) {
            fprintf(stderr, "flood: cannot send from %s: %s\n", ip, strerror(errno));
            return 1;
        }
    }
    /* Round robin over the addresses, a small batch from each. */
    unsigned long per = (o->count + k - 1) / k;
    int batch = per < BATCH ? (int)per : BATCH;
    double started = now_s();
    for (unsigned long sent = 0, turn = 0; sent < o->count; turn++) {
        unsigned src = (unsigned)(turn % k);
        int n = o->count - sent < (unsigned long)batch ? (int)(o->count - sent) : batch;

        for (int i = 0; i < n; i++)
            lens[i] = hostile(bufs[i], 8, (uint32_t)o->subsystem);
        t->kinds[8] += (uint64_t)n;
        send_all(fds[src], to, tolen, bufs, lens, n, t);
        drain(fds[src], t);
        sent += (unsigned long)n;
    }
    settle(fds, k, t, started);
    for (unsigned i = 0; i < k; i++)
        close(fds[i]);
    return 0;
}

/* ---- main ---------------------------------------------------------------------- */

static void report(const struct options *o, const struct tally *t)
{
    double secs = t->sending_s;
    static const char *const names[PKT_TYPE_MAX + 2] = {
        [PKT_BIND_COOKIE] = "BIND_COOKIE",
        [PKT_BIND_OK] = "BIND_OK",
        [PKT_BIND_ERR] = "BIND_ERR",
        [PKT_UNBIND_ACK] = "UNBIND_ACK",
        [PKT_REPLY] = "REPLY",
        [PKT_BUSY] = "BUSY",
        [PKT_UNKNOWN_CONN] = "UNKNOWN_CONN",
        [PKT_VERSION_ERR] = "VERSION_ERR",
        [PKT_TYPE_MAX + 1] = "unparsable",
    };

    printf("flood: sent %" PRIu64 " datagrams, %" PRIu64 " bytes, in %.2f s (%.0f/s) from %lu "
           "address%s; answers %" PRIu64 ", %" PRIu64 " bytes:",
           t->sent, t->sent_bytes, secs, secs > 0 ? (double)t->sent / secs : 0.0,
           o->binds ? o->sources : 1, o->binds && o->sources > 1 ? "es" : "", t->answers,
           t->answer_bytes);
    for (int i = 0; i < PKT_TYPE_MAX + 2; i++)
        if (t->by_type[i])
            printf(" %s=%" PRIu64, names[i] ? names[i] : "other", t->by_type[i]);
    printf("\n");
}

static int usage(void)
{
    fprintf(stderr, "usage: flood --to ADDR:PORT [--count N] [--seed S] [--subsystem N] "
                    "[--binds] [--sources K]\n");
    return 1;
}

static int parse(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"to", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"subsystem", required_argument, NULL, 'u'},
        {"binds", no_argument, NULL, 'b'},
        {"sources", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct options){.count = 100000, .seed = 1, .subsystem = 7755, .sources = 1};
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 't':
            o->to = optarg;
            break;
        case 'c':
            o->count = strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->seed = strtoul(optarg, NULL, 10);
            break;
        case 'u':
            o->subsystem = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            o->binds = 1;
            break;
        case 'k':
            o->sources = strtoul(optarg, NULL, 10);
            break;
        default:
            return -1;
        }
    }
    if (!o->to || o->sources < 1 || o->sources > MAX_SOURCES || optind != argc)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct sockaddr_storage to;
    socklen_t tolen;
    struct tally t;

    if (parse(argc, argv, &o) != 0)
        return usage();
    if (addr_parse_listen(o.to, &to, &tolen) != 0 || to.ss_family != AF_INET) {
        fprintf(stderr, "flood: --to wants an IPv4 ADDR:PORT, not '%s'\n", o.to);
        return 1;
    }
    memset(&t, 0, sizeof t);
    rng_state = o.seed;
    int rc = o.binds ? flood_binds(&o, &to, tolen, &t) : flood_mix(&o, &to, tolen, &t);
    if (rc == 0)
        report(&o, &t);
    return rc;
}
