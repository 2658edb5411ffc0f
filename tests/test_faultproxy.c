/*
 * test_faultproxy.c - shows that the fault proxy does what its options say,
 * since every loopback test of rpc2 under loss and reordering trusts it.
 *
 * Real processes on loopback: an echo server on a thread, the proxy spawned
 * from the build tree, and a client that sends numbered datagrams and counts
 * what comes back. The proxy's choices follow its seed, so counts are
 * reproducible; timing only ever gets generous bounds, because this runs on a
 * loaded two-core machine.
 */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "procs.h"
#include "skip.h"
#include "check_run.h"

#define PAYLOAD 64
#define MAGIC 0x46505258u /* "FPRX" */
#define MAX_SEQ 512
#define PROXY_PREFIX "faultproxy listening on"
#define STOP_MS 5000
#define QUIET_MS 100 /* silence that ends a collection: replies take well under 1 ms */
#define DRAIN_MS 300 /* the last wait is longer, so late replies still count */
#define MAX_ARGS 32
#define N_DETERMINISTIC 40

/* ---- the echo server ---------------------------------------------------- */

struct echo {
    int fd;
    int port;
    atomic_bool stop;
    pthread_t thread;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    unsigned char buf[65536];

    while (!atomic_load(&e->stop)) {
        struct pollfd pfd = {.fd = e->fd, .events = POLLIN};
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n;

        if (poll(&pfd, 1, 20) <= 0)
            continue;
        n = recvfrom(e->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
        if (n >= 0)
            sendto(e->fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

static socklen_t loopback(int family, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)port);
        return sizeof(*a);
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons((uint16_t)port);
    return sizeof(*a);
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* False when this host has no loopback of that family (IPv6 can be switched off). */
static bool echo_start(struct echo *e, int family)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(family, 0, &ss);

    e->fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (e->fd < 0)
        return false;
    if (bind(e->fd, (struct sockaddr *)&ss, len) < 0) {
        close(e->fd);
        return false;
    }
    e->port = bound_port(e->fd);
    atomic_init(&e->stop, false);
    ck_assert_int_eq(pthread_create(&e->thread, NULL, echo_main, e), 0);
    return true;
}

static void echo_stop(struct echo *e)
{
    atomic_store(&e->stop, true);
    pthread_join(e->thread, NULL);
    close(e->fd);
}

/* ---- the proxy ---------------------------------------------------------- */

/* Spawns the proxy with argv: --listen LISTEN --server SERVER, then the faults. */
static pid_t proxy_start(const char *listen, const char *server, const char *const faults[],
                         int *port)
{
    char path[PATH_MAX];
    const char *argv[MAX_ARGS] = {path, "--listen", listen, "--server", server};
    size_t n = 5;
    pid_t pid = -1;

    snprintf(path, sizeof(path), "%s/tests/faultproxy", procs_builddir());
    for (size_t i = 0; faults[i] != NULL && n + 1 < MAX_ARGS; i++)
        argv[n++] = faults[i];
    argv[n] = NULL;
    *port = procs_spawn_port(argv, PROXY_PREFIX, &pid);
    ck_assert_msg(*port > 0, "%s did not announce its port", path);
    return pid;
}

/* Proxy on 127.0.0.1 in front of the IPv4 echo server. */
static pid_t proxy4(const struct echo *e, const char *const faults[], int *port)
{
    char server[64];

    snprintf(server, sizeof(server), "127.0.0.1:%d", e->port);
    return proxy_start("127.0.0.1:0", server, faults, port);
}

static void proxy_stop(pid_t pid, int sig)
{
    ck_assert_int_eq(procs_stop(pid, sig, STOP_MS), 0);
}

/* ---- the client --------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until(int64_t t)
{
    while (now_ms() < t)
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000L}, NULL);
}

static int client_open(int family, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(family, port, &ss);
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

static void payload(uint32_t seq, unsigned char *buf)
{
    uint32_t be_seq = htonl(seq), be_magic = htonl(MAGIC);

    memcpy(buf, &be_seq, 4);
    memcpy(buf + 4, &be_magic, 4);
    for (int i = 8; i < PAYLOAD; i++)
        buf[i] = (unsigned char)(seq * 31u + (unsigned)i);
}

/* The sequence number of an intact datagram, or -1 if it is not one of ours. */
static int payload_seq(const unsigned char *buf, ssize_t len)
{
    unsigned char want[PAYLOAD];
    uint32_t be_seq;

    if (len != PAYLOAD)
        return -1;
    memcpy(&be_seq, buf, 4);
    if (ntohl(be_seq) >= MAX_SEQ)
        return -1;
    payload(ntohl(be_seq), want);
    return memcmp(buf, want, PAYLOAD) == 0 ? (int)ntohl(be_seq) : -1;
}

static void send_seq(int fd, uint32_t seq)
{
    unsigned char buf[PAYLOAD];

    payload(seq, buf);
    ck_assert_int_eq(send(fd, buf, sizeof(buf), 0), PAYLOAD);
}

/* One datagram within timeout_ms: its length, or -1 if none came. */
static ssize_t recv_within(int fd, unsigned char *buf, size_t cap, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    if (poll(&pfd, 1, timeout_ms) <= 0)
        return -1;
    return recv(fd, buf, cap, MSG_DONTWAIT);
}

/* ---- counting what comes back ------------------------------------------- */

struct tally {
    int count[MAX_SEQ]; /* copies received of each sequence number */
    int distinct;
    int total;
    int out_of_order; /* arrivals behind a higher number already seen */
    int invalid;
    int max_seen;
};

static void tally_init(struct tally *t)
{
    memset(t, 0, sizeof(*t));
    t->max_seen = -1;
}

static void tally_add(struct tally *t, const unsigned char *buf, ssize_t len)
{
    int seq = payload_seq(buf, len);

    if (seq < 0) {
        t->invalid++;
        return;
    }
    t->distinct += t->count[seq]++ == 0;
    t->total++;
    if (seq < t->max_seen)
        t->out_of_order++;
    else
        t->max_seen = seq;
}

/* Receives until want distinct numbers are in or the line stays quiet for quiet_ms. */
static void collect(int fd, struct tally *t, int want, int quiet_ms)
{
    unsigned char buf[2048];
    ssize_t len;

    while (t->distinct < want && (len = recv_within(fd, buf, sizeof(buf), quiet_ms)) >= 0)
        tally_add(t, buf, len);
}

/* Sends 0..n-1 in groups (so no socket buffer overflows), collecting after each group. */
static void run_groups(int fd, struct tally *t, int n, int group, bool all_copies)
{
    for (int base = 0; base < n; base += group) {
        int end = base + group < n ? base + group : n;
        for (int seq = base; seq < end; seq++)
            send_seq(fd, (uint32_t)seq);
        collect(fd, t, all_copies ? INT_MAX : t->distinct + (end - base), QUIET_MS);
    }
    collect(fd, t, all_copies ? INT_MAX : n, DRAIN_MS);
}

/* One at a time, each waiting for its echo or timeout_ms; late echoes still count. */
static void run_lockstep(int fd, struct tally *t, int n, int timeout_ms)
{
    unsigned char buf[2048];

    for (int seq = 0; seq < n; seq++) {
        int64_t deadline = now_ms() + timeout_ms;
        send_seq(fd, (uint32_t)seq);
        while (t->count[seq] == 0 && now_ms() < deadline) {
            ssize_t len = recv_within(fd, buf, sizeof(buf), (int)(deadline - now_ms()));
            if (len >= 0)
                tally_add(t, buf, len);
        }
    }
    collect(fd, t, n, DRAIN_MS);
}

/* A whole lossy run through a fresh proxy: which numbers survived the round trip. */
static void lossy_run(const struct echo *e, const char *const faults[], int n, bool *survived)
{
    struct tally t;
    int port;
    pid_t pid = proxy4(e, faults, &port);
    int fd = client_open(AF_INET, port);

    tally_init(&t);
    run_lockstep(fd, &t, n, 50);
    for (int i = 0; i < n; i++)
        survived[i] = t.count[i] > 0;
    close(fd);
    proxy_stop(pid, SIGTERM);
}

/* Round trips through a fresh proxy with the given faults. */
static void groups_through(const char *const faults[], int n, int group, bool all_copies,
                           struct tally *t)
{
    struct echo e;
    int port;
    pid_t pid;
    int fd;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4(&e, faults, &port);
    fd = client_open(AF_INET, port);
    tally_init(t);
    run_groups(fd, t, n, group, all_copies);
    close(fd);
    proxy_stop(pid, SIGTERM);
    echo_stop(&e);
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(test_passthrough)
{
    const char *const faults[] = {"--loss", "0", NULL};
    struct echo e;
    struct tally t;
    int port;
    pid_t pid;
    int fd;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4(&e, faults, &port);
    fd = client_open(AF_INET, port);
    tally_init(&t);
    run_groups(fd, &t, 200, 20, false);
    ck_assert_int_eq(t.distinct, 200);
    ck_assert_int_eq(t.total, 200);
    ck_assert_int_eq(t.out_of_order, 0);
    ck_assert_int_eq(t.invalid, 0);
    close(fd);
    proxy_stop(pid, SIGINT); /* SIGINT stops it as cleanly as SIGTERM */
    echo_stop(&e);
}
END_TEST

/* Loss in both directions: a round trip survives with (1 - p)^2 = 25 %. */
START_TEST(test_loss_both_directions)
{
    const char *const faults[] = {"--loss", "0.5", "--seed", "1", NULL};
    struct tally t;

    groups_through(faults, 200, 50, false, &t);
    ck_assert_msg(t.distinct >= 24 && t.distinct <= 80, "%d of 200 survived", t.distinct);
    ck_assert_int_eq(t.total, t.distinct);
    ck_assert_int_eq(t.invalid, 0);
}
END_TEST

/* With a suffix only that direction loses: about half survive. */
START_TEST(test_loss_one_direction)
{
    const char *const c2s[] = {"--loss-c2s", "0.5", "--seed", "2", NULL};
    const char *const s2c[] = {"--loss-s2c", "0.5", "--seed", "3", NULL};
    struct tally t;

    groups_through(c2s, 200, 50, false, &t);
    ck_assert_msg(t.distinct >= 70 && t.distinct <= 130, "c2s: %d of 200", t.distinct);
    groups_through(s2c, 200, 50, false, &t);
    ck_assert_msg(t.distinct >= 70 && t.distinct <= 130, "s2c: %d of 200", t.distinct);
}
END_TEST

/*
 * Bursts on the way in only: the client-to-server stream is sent in sequence order, so
 * the missing numbers must come in runs of at least LEN (runs cut off by the end aside).
 */
START_TEST(test_burst)
{
    const char *const faults[] = {"--burst-c2s", "0.05,5", "--seed", "4", NULL};
    struct tally t;
    int runs = 0, n = 300;

    groups_through(faults, n, 50, false, &t);
    for (int seq = 0; seq < n;) {
        int len = 0;
        while (seq + len < n && t.count[seq + len] == 0)
            len++;
        if (len > 0 && seq + len < n) {
            ck_assert_msg(len >= 5, "a run of %d lost at %d", len, seq);
            runs++;
        }
        seq += len > 0 ? len : 1;
    }
    ck_assert_int_ge(runs, 1);
    ck_assert_int_ge(t.distinct, n / 2);
}
END_TEST

/* Every datagram doubled both ways: four copies of each come back. */
START_TEST(test_dup)
{
    const char *const faults[] = {"--dup", "1", NULL};
    struct tally t;

    groups_through(faults, 50, 25, true, &t);
    ck_assert_int_eq(t.distinct, 50);
    ck_assert_msg(t.total >= 100 && t.total <= 200, "%d copies of 50", t.total);
    ck_assert_int_eq(t.invalid, 0);
}
END_TEST

START_TEST(test_reorder)
{
    const char *const faults[] = {"--reorder", "0.5,40", "--seed", "5", NULL};
    struct tally t;

    groups_through(faults, 100, 25, false, &t);
    ck_assert_int_eq(t.distinct, 100);
    ck_assert_int_eq(t.total, 100);
    ck_assert_int_ge(t.out_of_order, 1);
}
END_TEST

/* A delay can only be checked from below on a busy machine: it is at least what was asked. */
START_TEST(test_delay)
{
    const char *const faults[] = {"--delay-c2s", "100", "--delay-s2c", "50", NULL};
    struct echo e;
    struct tally t;
    int port;
    pid_t pid;
    int fd;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4(&e, faults, &port);
    fd = client_open(AF_INET, port);
    tally_init(&t);
    for (int seq = 0; seq < 3; seq++) {
        int64_t start = now_ms();
        send_seq(fd, (uint32_t)seq);
        collect(fd, &t, seq + 1, 5000);
        ck_assert_int_eq(t.distinct, seq + 1);
        ck_assert_int_ge(now_ms() - start, 149);
    }
    close(fd);
    proxy_stop(pid, SIGTERM);
    echo_stop(&e);
}
END_TEST

START_TEST(test_corrupt)
{
    const char *const faults[] = {"--corrupt", "1", "--seed", "6", NULL};
    unsigned char sent[PAYLOAD], got[2048];
    struct echo e;
    int port, received = 0, differ = 0;
    pid_t pid;
    int fd;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4(&e, faults, &port);
    fd = client_open(AF_INET, port);
    for (uint32_t seq = 0; seq < 30; seq++) {
        ssize_t len;
        payload(seq, sent);
        send_seq(fd, seq);
        len = recv_within(fd, got, sizeof(got), 1000);
        if (len < 0)
            continue;
        received++;
        differ += len != PAYLOAD || memcmp(sent, got, PAYLOAD) != 0;
    }
    ck_assert_int_ge(received, 25);
    ck_assert_msg(differ * 10 >= received * 9, "%d of %d corrupted", differ, received);
    close(fd);
    proxy_stop(pid, SIGTERM);
    echo_stop(&e);
}
END_TEST

/*
 * How an echo differs from what was sent: -1 when its length differs, else
 * how many bytes differ; *one_bit stays true only while each differing
 * byte differs in exactly one bit (the proxy's documented damage).
 */
static int bytes_flipped(const unsigned char *sent, const unsigned char *got, ssize_t len,
                         bool *one_bit)
{
    int n = 0;

    if (len != PAYLOAD)
        return -1;
    for (int i = 0; i < PAYLOAD; i++) {
        unsigned x = sent[i] ^ got[i];
        if (x == 0)
            continue;
        n++;
        *one_bit = *one_bit && (x & (x - 1)) == 0;
    }
    return n;
}

#define CORRUPT_N 200
#define LOST (-2)

/* Lockstep through a fresh proxy: each number's echo kept in got[seq], and
 * how many of its bytes were flipped in flipped[seq] (LOST: no echo). */
static void corrupt_run(const struct echo *e, const char *const faults[],
                        unsigned char got[][PAYLOAD], int *flipped, bool *one_bit)
{
    unsigned char sent[PAYLOAD], buf[2048];
    int port;
    pid_t pid = proxy4(e, faults, &port);
    int fd = client_open(AF_INET, port);

    for (uint32_t seq = 0; seq < CORRUPT_N; seq++) {
        ssize_t len;
        payload(seq, sent);
        send_seq(fd, seq);
        len = recv_within(fd, buf, sizeof(buf), 1000);
        flipped[seq] = len < 0 ? LOST : bytes_flipped(sent, buf, len, one_bit);
        if (len == PAYLOAD)
            memcpy(got[seq], buf, PAYLOAD);
    }
    close(fd);
    proxy_stop(pid, SIGTERM);
}

/* A fraction of datagrams, one direction only: about that many arrive
 * damaged, none is lost for it, and damage is 1-3 bytes of one bit each
 * with the length kept (what an integrity check has to catch). */
START_TEST(test_corrupt_fraction)
{
    const char *const faults[] = {"--corrupt-c2s", "0.25", "--seed", "11", NULL};
    static unsigned char got[CORRUPT_N][PAYLOAD];
    int flipped[CORRUPT_N], damaged = 0, lost = 0;
    bool one_bit = true;
    struct echo e;

    ck_assert(echo_start(&e, AF_INET));
    corrupt_run(&e, faults, got, flipped, &one_bit);
    echo_stop(&e);
    for (int i = 0; i < CORRUPT_N; i++) {
        lost += flipped[i] == LOST;
        ck_assert_msg(flipped[i] != -1, "datagram %d changed length", i);
        ck_assert_msg(flipped[i] <= 3, "datagram %d: %d bytes damaged", i, flipped[i]);
        damaged += flipped[i] > 0;
    }
    ck_assert(one_bit);
    ck_assert_msg(lost <= CORRUPT_N / 20, "%d of %d lost", lost, CORRUPT_N);
    ck_assert_msg(damaged >= 25 && damaged <= 75, "%d of %d damaged at 0.25", damaged, CORRUPT_N);
}
END_TEST

/* The same seed damages the same datagrams in the same bits. */
START_TEST(test_corrupt_deterministic)
{
    const char *const faults[] = {"--corrupt", "0.1", "--seed", "12", NULL};
    static unsigned char first[CORRUPT_N][PAYLOAD], second[CORRUPT_N][PAYLOAD];
    int a[CORRUPT_N], b[CORRUPT_N], damaged = 0;
    bool one_bit = true;
    struct echo e;

    ck_assert(echo_start(&e, AF_INET));
    corrupt_run(&e, faults, first, a, &one_bit);
    corrupt_run(&e, faults, second, b, &one_bit);
    echo_stop(&e);
    for (int i = 0; i < CORRUPT_N; i++) {
        if (a[i] == LOST || b[i] == LOST)
            continue;
        ck_assert_int_eq(a[i], b[i]);
        ck_assert_mem_eq(first[i], second[i], PAYLOAD);
        damaged += a[i] > 0;
    }
    ck_assert_int_ge(damaged, 5);
}
END_TEST

/* Round trip of one number within timeout_ms, ignoring anything else that arrives. */
static bool round_trip(int fd, uint32_t seq, int timeout_ms)
{
    unsigned char buf[2048];
    int64_t deadline = now_ms() + timeout_ms;

    send_seq(fd, seq);
    while (now_ms() < deadline) {
        ssize_t len = recv_within(fd, buf, sizeof(buf), (int)(deadline - now_ms()));
        if (len >= 0 && payload_seq(buf, len) == (int)seq)
            return true;
    }
    return false;
}

/*
 * The blackout runs from 400 to 1400 ms after the proxy's first datagram, which it saw
 * between our first send (t0) and its echo (t1). So a probe sent after t1 + 450 meets it,
 * however late the proxy started its clock, and one sent after t1 + 1700 does not. Probes
 * stop at t0 + 1100, leaving 300 ms for a busy proxy to read the last one.
 */
START_TEST(test_blackout)
{
    const char *const faults[] = {"--blackout", "400,1000", NULL};
    struct echo e;
    int port, probes = 0, answered = 0;
    uint32_t seq = 0;
    bool back = false;
    int64_t t0, t1;
    pid_t pid;
    int fd;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4(&e, faults, &port);
    fd = client_open(AF_INET, port);
    t0 = now_ms();
    ck_assert(round_trip(fd, seq++, 1000));
    t1 = now_ms();
    sleep_until(t1 + 450);
    for (; now_ms() < t0 + 1100; probes++)
        answered += round_trip(fd, seq++, 40);
    ck_assert_int_ge(probes, 1);
    ck_assert_int_eq(answered, 0);
    sleep_until(t1 + 1700);
    for (int i = 0; i < 20 && !back; i++)
        back = round_trip(fd, seq++, 200);
    ck_assert(back);
    close(fd);
    proxy_stop(pid, SIGTERM);
    echo_stop(&e);
}
END_TEST

/* The same seed loses the same datagrams in both directions; another seed does not. */
START_TEST(test_deterministic)
{
    const char *const a[] = {"--loss", "0.25", "--seed", "42", NULL};
    const char *const b[] = {"--loss", "0.25", "--seed", "43", NULL};
    bool first[N_DETERMINISTIC], second[N_DETERMINISTIC], other[N_DETERMINISTIC];
    struct echo e;
    int survivors = 0;

    ck_assert(echo_start(&e, AF_INET));
    lossy_run(&e, a, N_DETERMINISTIC, first);
    lossy_run(&e, a, N_DETERMINISTIC, second);
    lossy_run(&e, b, N_DETERMINISTIC, other);
    echo_stop(&e);
    for (int i = 0; i < N_DETERMINISTIC; i++)
        survivors += first[i];
    ck_assert_int_gt(survivors, 0);
    ck_assert_int_lt(survivors, N_DETERMINISTIC);
    ck_assert_mem_eq(first, second, sizeof(first));
    ck_assert(memcmp(first, other, sizeof(first)) != 0);
}
END_TEST

static void ipv6_through(const char *listen, const char *server, int n)
{
    const char *const faults[] = {NULL};
    struct tally t;
    int port;
    pid_t pid = proxy_start(listen, server, faults, &port);
    int fd = client_open(listen[0] == '[' ? AF_INET6 : AF_INET, port);

    tally_init(&t);
    run_groups(fd, &t, n, 10, false);
    ck_assert_int_eq(t.distinct, n);
    ck_assert_int_eq(t.out_of_order, 0);
    close(fd);
    proxy_stop(pid, SIGTERM);
}

START_TEST(test_ipv6)
{
    struct echo e6, e4;
    char server[64];

    if (!echo_start(&e6, AF_INET6)) {
        test_skip("test_ipv6", machine_has_ipv6_loopback(), "no IPv6 loopback here");
        return;
    }
    snprintf(server, sizeof(server), "[::1]:%d", e6.port);
    ipv6_through("[::1]:0", server, 50);
    ipv6_through("127.0.0.1:0", server, 20);
    echo_stop(&e6);
    ck_assert(echo_start(&e4, AF_INET));
    snprintf(server, sizeof(server), "127.0.0.1:%d", e4.port);
    ipv6_through("[::1]:0", server, 20);
    echo_stop(&e4);
}
END_TEST

/* Three clients through a table of two: the evicted one simply gets a new slot. */
START_TEST(test_client_eviction)
{
    const char *const faults[] = {"--max-clients", "2", NULL};
    struct echo e;
    int port, fds[3];
    pid_t pid;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4(&e, faults, &port);
    for (int i = 0; i < 3; i++) {
        fds[i] = client_open(AF_INET, port);
        ck_assert(round_trip(fds[i], (uint32_t)i, 2000));
    }
    for (int i = 0; i < 3; i++) {
        ck_assert(round_trip(fds[i], (uint32_t)(10 + i), 2000));
        close(fds[i]);
    }
    proxy_stop(pid, SIGTERM);
    echo_stop(&e);
}
END_TEST

/* ---- the bottleneck ------------------------------------------------------ */

/* A proxy in front of e whose stderr (its counters, printed when it stops) goes to a file. */
static pid_t proxy4_logged(const struct echo *e, const char *const faults[], int *port, char *log,
                           size_t cap)
{
    int saved = dup(STDERR_FILENO), fd;
    pid_t pid;

    snprintf(log, cap, "/tmp/test_faultproxy.%d.XXXXXX", (int)getpid());
    fd = mkstemp(log);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    pid = proxy4(e, faults, port);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    close(fd);
    return pid;
}

/* Counter name of direction dir ("c2s") from a stopped proxy's log, which is removed. */
static unsigned long long proxy_counter(const char *log, const char *dir, const char *name)
{
    char line[512], head[32], key[64];
    FILE *f = fopen(log, "r");
    const char *at = NULL;
    unsigned long long v = 0;

    ck_assert_ptr_nonnull(f);
    snprintf(head, sizeof(head), "faultproxy %s:", dir);
    snprintf(key, sizeof(key), " %s=", name);
    while (at == NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, head, strlen(head)) == 0)
            at = strstr(line, key);
    }
    fclose(f);
    ck_assert_msg(at != NULL, "no %s %s counter in %s", dir, name, log);
    ck_assert_int_eq(sscanf(at + strlen(key), "%llu", &v), 1);
    return v;
}

/*
 * n datagrams sent at once through a fresh proxy with faults, collecting until want are in
 * or the line stays quiet for quiet_ms; the time from the first send to the end of the
 * collection is returned, the proxy's counters are left in log.
 */
static int64_t burst_through(const char *const faults[], int n, int want, int quiet_ms,
                             struct tally *t, char *log, size_t cap)
{
    struct echo e;
    int port, fd;
    int64_t start, elapsed;
    pid_t pid;

    ck_assert(echo_start(&e, AF_INET));
    pid = proxy4_logged(&e, faults, &port, log, cap);
    fd = client_open(AF_INET, port);
    tally_init(t);
    start = now_ms();
    for (int seq = 0; seq < n; seq++)
        send_seq(fd, (uint32_t)seq);
    collect(fd, t, want, quiet_ms);
    elapsed = now_ms() - start;
    close(fd);
    proxy_stop(pid, SIGTERM);
    echo_stop(&e);
    return elapsed;
}

/*
 * 50 datagrams of 64 bytes sent at once into 64 kbit/s: 8 ms each, so the last cannot
 * come back before 50 x 8 ms + the 50 ms delay. Only a lower bound on the time: the
 * proxy never delivers faster than its rate, however loaded the machine.
 */
START_TEST(test_rate)
{
    const char *const faults[] = {"--rate-c2s",  "64k", "--queue-c2s", "64k",
                                  "--delay-c2s", "50",  NULL};
    char log[64];
    struct tally t;
    int64_t elapsed = burst_through(faults, 50, 50, 2000, &t, log, sizeof(log));

    ck_assert_int_eq(t.distinct, 50);
    ck_assert_int_eq(t.out_of_order, 0);
    ck_assert_int_ge(elapsed, 50 * 8 + 50 - 1);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "forwarded"), 50);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "queue_dropped"), 0);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "bytes_in"), 50 * PAYLOAD);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "bytes_forwarded"), 50 * PAYLOAD);
    unlink(log);
}
END_TEST

/*
 * A 640-byte queue at 8 kbit/s (64 ms a datagram) takes about 10 of a burst of 50; the
 * rest are dropped and counted, and every datagram is either delivered or counted. The
 * collection ends after 1.5 s of silence: the queue has long drained by then.
 */
START_TEST(test_queue_drops)
{
    const char *const faults[] = {"--rate-c2s", "8000", "--queue-c2s", "640", NULL};
    char log[64];
    struct tally t;

    burst_through(faults, 50, 50, 1500, &t, log, sizeof(log));
    ck_assert_msg(t.distinct >= 10 && t.distinct <= 40, "%d of 50 through", t.distinct);
    ck_assert_int_eq(t.total, t.distinct);
    ck_assert_int_eq(t.out_of_order, 0);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "queue_dropped"), 50 - (unsigned)t.distinct);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "forwarded"), (unsigned)t.distinct);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "dropped"), 0);
    ck_assert_uint_eq(proxy_counter(log, "s2c", "queue_dropped"), 0);
    unlink(log);
}
END_TEST

/* Loss strikes before the queue: what it takes is counted as dropped and fills no queue. */
START_TEST(test_rate_with_loss)
{
    const char *const faults[] = {"--rate-c2s", "8000", "--queue-c2s", "640",
                                  "--loss-c2s", "1",    NULL};
    char log[64];
    struct tally t;

    burst_through(faults, 20, 1, 300, &t, log, sizeof(log));
    ck_assert_int_eq(t.distinct, 0);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "dropped"), 20);
    ck_assert_uint_eq(proxy_counter(log, "c2s", "queue_dropped"), 0);
    unlink(log);
}
END_TEST

static int proxy_exit_code(const char *const args[])
{
    char path[PATH_MAX];
    const char *argv[MAX_ARGS] = {path};
    size_t n = 1;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/tests/faultproxy", procs_builddir());
    for (size_t i = 0; args[i] != NULL && n + 1 < MAX_ARGS; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid = procs_spawn(argv, NULL);
    ck_assert_int_gt(pid, 0);
    return procs_stop(pid, 0, STOP_MS);
}

#define S "--server", "127.0.0.1:9"
static const char *const bad_options[][8] = {
    {NULL},
    {"--listen", "127.0.0.1:0", NULL},
    {S, "--bogus", NULL},
    {S, "extra", NULL},
    {"--server", "127.0.0.1", NULL},
    {"--server", "127.0.0.1:0", NULL},
    {"--server", "::1:9", NULL},
    {"--server", "[::1:9", NULL},
    {"--server", "127.0.0.1:65536", NULL},
    {S, "--listen", "127.0.0.1:x", NULL},
    {S, "--loss", "1.5", NULL},
    {S, "--loss", "-0.1", NULL},
    {S, "--loss-c2s", "abc", NULL},
    {S, "--loss-s2c", "", NULL},
    {S, "--dup", "0.5x", NULL},
    {S, "--corrupt", "nan", NULL},
    {S, "--burst", "0.5", NULL},
    {S, "--burst", "0.5,0", NULL},
    {S, "--burst-c2s", "0.5,3,4", NULL},
    {S, "--reorder", "0.5,-1", NULL},
    {S, "--reorder-s2c", "0.5,0", NULL},
    {S, "--delay", "-5", NULL},
    {S, "--delay", "3600001", NULL},
    {S, "--blackout", "100", NULL},
    {S, "--blackout-c2s", "a,b", NULL},
    {S, "--seed", "x", NULL},
    {S, "--max-clients", "0", NULL},
    {S, "--rate", "0", NULL},
    {S, "--rate", "999", NULL},
    {S, "--rate", "10X", NULL},
    {S, "--rate-c2s", "1e6", NULL},
    {S, "--rate-s2c", "101G", NULL},
    {S, "--queue", "0", NULL},
    {S, "--queue", "65M", NULL},
    {S, "--queue-c2s", "-1", NULL},
    {S, "--loss", NULL},
};
#undef S

START_TEST(test_bad_options)
{
    int code = proxy_exit_code(bad_options[_i]);

    ck_assert_msg(code == 1, "case %d exited %d", _i, code);
}
END_TEST

START_TEST(test_help)
{
    static const char *const documented[] = {
        "--listen", "--server", "--seed",    "--max-clients", "--help",        "--loss",
        "--burst",  "--dup",    "--reorder", "--delay",       "--corrupt",     "--blackout",
        "-c2s",     "-s2c",     "--rate",    "--queue",       "queue_dropped",
    };
    const char *argv[] = {NULL, "--help", NULL};
    char path[PATH_MAX], text[8192] = "", line[256];
    int fd, len;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/tests/faultproxy", procs_builddir());
    argv[0] = path;
    pid = procs_spawn(argv, &fd);
    ck_assert_int_gt(pid, 0);
    while ((len = procs_read_line(fd, line, sizeof(line), STOP_MS)) >= 0)
        strncat(text, line, sizeof(text) - strlen(text) - 1);
    ck_assert_int_eq(errno, ENODATA);
    close(fd);
    ck_assert_int_eq(procs_stop(pid, 0, STOP_MS), 0);
    for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++)
        ck_assert_msg(strstr(text, documented[i]) != NULL, "--help omits %s", documented[i]);
}
END_TEST

static Suite *faultproxy_suite(void)
{
    Suite *s = suite_create("faultproxy");
    TCase *tc = tcase_create("loopback");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_passthrough);
    tcase_add_test(tc, test_loss_both_directions);
    tcase_add_test(tc, test_loss_one_direction);
    tcase_add_test(tc, test_burst);
    tcase_add_test(tc, test_dup);
    tcase_add_test(tc, test_reorder);
    tcase_add_test(tc, test_delay);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_corrupt_fraction);
    tcase_add_test(tc, test_corrupt_deterministic);
    tcase_add_test(tc, test_blackout);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_client_eviction);
    tcase_add_test(tc, test_rate);
    tcase_add_test(tc, test_queue_drops);
    tcase_add_test(tc, test_rate_with_loss);
    tcase_add_loop_test(tc, test_bad_options, 0,
                        (int)(sizeof(bad_options) / sizeof(bad_options[0])));
    tcase_add_test(tc, test_help);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(faultproxy_suite());
}
