/*
 * test_io.c - the socket layer on loopback, and the outgoing batch that
 * feeds it. Real sockets are needed here (this is the one file that talks
 * to them), so each receive waits on poll() with a bounded timeout; every
 * datagram names itself in its first byte, so the checks do not depend on
 * the order in which the kernel hands datagrams over. The kernel's count of
 * dropped datagrams is tested by flooding a socket nobody reads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <rpc2/rpc2.h>

#include "addr.h"
#include "io.h"
#include "outq.h"
#include "check_run.h"

#define WAIT_MS 2000
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define BATCH 100
#define MAX_DGRAM 60000
/* The largest payload an IPv4 datagram can carry is 65507 bytes. */
#define TOO_BIG_V4 65508

/* ---- helpers -------------------------------------------------------------- */

static struct rpc2_addr make_addr(int family, const char *ip, int port)
{
    struct rpc2_addr a;

    memset(&a, 0, sizeof a);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
        a.len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
        a.len = sizeof *sin6;
    }
    return a;
}

static int open_on(int family, const char *ip)
{
    struct rpc2_addr a = make_addr(family, ip, 0);
    int fd = io_open(&a.ss, a.len);

    ck_assert_msg(fd >= 0, "io_open %s: %s", ip, strerror(errno));
    ck_assert_int_eq(io_family(fd), family);
    ck_assert_int_gt(io_local_port(fd), 0);
    return fd;
}

/* Where a socket bound to ip can be reached. */
static struct rpc2_addr addr_of(int fd, int family, const char *ip)
{
    return make_addr(family, ip, io_local_port(fd));
}

/* The expected content of datagram idx at byte k: byte 0 is the index. */
static uint8_t pattern(unsigned idx, size_t k)
{
    return k == 0 ? (uint8_t)idx : (uint8_t)(idx * 31 + k * 7 + (k >> 8));
}

static void fill(uint8_t *buf, unsigned idx, size_t len)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = pattern(idx, k);
}

static int matches(const uint8_t *buf, unsigned idx, size_t len)
{
    for (size_t k = 0; k < len; k++)
        if (buf[k] != pattern(idx, k))
            return 0;
    return 1;
}

static void set_slot(struct outq_slot *s, const struct rpc2_addr *to, unsigned idx, size_t len)
{
    s->buf = malloc(len);
    ck_assert_ptr_nonnull(s->buf);
    fill(s->buf, idx, len);
    s->data = s->buf;
    s->len = len;
    s->to = *to;
}

static void free_slots(struct outq_slot *slots, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        free(slots[i].buf);
}

/* What arrived for each datagram index. */
struct seen {
    unsigned times;
    size_t len;
    int intact; /* content matched the pattern */
    int truncated;
    struct sockaddr_storage from;
};

static long ms_left(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
    return WAIT_MS - elapsed;
}

static void record(struct seen *seen, unsigned n, const struct io_rx *rx, unsigned i)
{
    const struct io_dgram *d = &rx->dgrams[i];
    unsigned idx = d->len ? d->data[0] : n;

    ck_assert_msg(idx < n, "datagram with unknown index %u", idx);
    seen[idx].times++;
    seen[idx].len = d->len;
    seen[idx].intact = matches(d->data, idx, d->len);
    seen[idx].truncated = d->truncated;
    seen[idx].from = rx->from[d->msg];
}

/* Receives until want datagrams came or WAIT_MS passed; returns how many. */
static unsigned receive(int fd, struct io_rx *rx, struct seen *seen, unsigned n, unsigned want)
{
    struct timespec start;
    unsigned got = 0;
    long left;

    memset(seen, 0, n * sizeof seen[0]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (got < want && (left = ms_left(&start)) > 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (poll(&p, 1, (int)left) <= 0)
            continue;
        int r = io_recv(fd, rx, NULL);

        ck_assert_int_ge(r, 0);
        for (int i = 0; i < r; i++)
            record(seen, n, rx, (unsigned)i);
        got += (unsigned)r;
    }
    return got;
}

static int nothing_waiting(int fd, struct io_rx *rx)
{
    return io_recv(fd, rx, NULL) == 0;
}

static int same_v4(const struct sockaddr_storage *ss, const char *ip, int port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    struct in_addr want;

    inet_pton(AF_INET, ip, &want);
    return sin->sin_family == AF_INET && sin->sin_addr.s_addr == want.s_addr &&
           ntohs(sin->sin_port) == port;
}

static int same_v6(const struct sockaddr_storage *ss, const char *ip, int port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    struct in6_addr want;

    inet_pton(AF_INET6, ip, &want);
    return sin6->sin6_family == AF_INET6 && memcmp(&sin6->sin6_addr, &want, sizeof want) == 0 &&
           ntohs(sin6->sin6_port) == port;
}

/*
 * The largest size in the batch: MAX_DGRAM unless the receive buffer the
 * kernel granted (small when net.core.rmem_max is and we lack CAP_NET_ADMIN)
 * could not queue a whole batch of that; the kernel charges about twice the
 * payload plus an skb per datagram.
 */
static size_t batch_max(int rx_fd)
{
    int rcvbuf = 0;
    socklen_t len = sizeof rcvbuf;

    ck_assert_int_eq(getsockopt(rx_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len), 0);
    size_t per = (size_t)rcvbuf * 3 / 4 / BATCH;
    size_t max = per > 1024 ? per - 1024 : 1;

    return max < MAX_DGRAM ? max : MAX_DGRAM;
}

/* Sizes from 1 to max, spread over the batch. */
static size_t batch_len(unsigned i, size_t max)
{
    if (i == 0)
        return 1;
    if (i == 1)
        return max;
    return 1 + (i * 7919u) % max;
}

/* ---- io: batches ------------------------------------------------------------ */

/* A batch of BATCH datagrams of sizes 1..max from tx to rx, all checked. */
static void exchange_batch(int family, const char *ip)
{
    int tx = open_on(family, ip), rx = open_on(family, ip);
    struct rpc2_addr to = addr_of(rx, family, ip);
    size_t max = batch_max(rx);
    struct outq_slot slots[BATCH];
    struct seen seen[BATCH];
    struct io_rx in;

    ck_assert_int_eq(io_rx_init(&in, MAX_DGRAM + 1), 0);
    for (unsigned i = 0; i < BATCH; i++)
        set_slot(&slots[i], &to, i, batch_len(i, max));
    ck_assert_int_eq(io_send(tx, AF_UNSPEC, slots, BATCH), BATCH);
    ck_assert_uint_eq(receive(rx, &in, seen, BATCH, BATCH), BATCH);

    for (unsigned i = 0; i < BATCH; i++) {
        ck_assert_uint_eq(seen[i].times, 1);
        ck_assert_uint_eq(seen[i].len, slots[i].len);
        ck_assert(seen[i].intact && !seen[i].truncated);
        if (family == AF_INET)
            ck_assert(same_v4(&seen[i].from, ip, io_local_port(tx)));
        else
            ck_assert(same_v6(&seen[i].from, ip, io_local_port(tx)));
    }
    ck_assert(nothing_waiting(rx, &in));
    free_slots(slots, BATCH);
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}

START_TEST(a_batch_crosses_ipv4_loopback)
{
    exchange_batch(AF_INET, "127.0.0.1");
}
END_TEST

START_TEST(a_batch_crosses_ipv6_loopback)
{
    exchange_batch(AF_INET6, "::1");
}
END_TEST

/* Sends one datagram of len bytes, index idx, from fd to `to`. */
static int send_one(int fd, const struct rpc2_addr *to, unsigned idx, size_t len)
{
    struct outq_slot s;

    set_slot(&s, to, idx, len);
    int r = io_send(fd, AF_UNSPEC, &s, 1);

    free(s.buf);
    return r;
}

/* Receives exactly one datagram, index idx, and returns its source. */
static struct sockaddr_storage expect_one(int fd, struct io_rx *in, unsigned idx, size_t len)
{
    struct seen seen[4];

    ck_assert_uint_eq(receive(fd, in, seen, 4, 1), 1);
    ck_assert_uint_eq(seen[idx].times, 1);
    ck_assert_uint_eq(seen[idx].len, len);
    ck_assert(seen[idx].intact);
    return seen[idx].from;
}

/*
 * An [::] socket talks to an IPv4 peer in all four ways an address can be
 * written: the peer appears as ::ffff:127.0.0.1, and io_send maps or unmaps
 * destinations to suit the sending socket.
 */
/*
 * Runs of equal datagrams to one peer go out segmented (UDP_SEGMENT) where
 * the kernel can: the receivers must still see each datagram alone, whole,
 * from the sender, whatever the runs look like: long runs (more than one
 * message holds), a shorter datagram ending a run, peers alternating, a
 * larger one after a run.
 */
static size_t run_len(unsigned i)
{
    if (i == 44 || i == 90)
        return 600; /* ends a run */
    if (i == 95)
        return 1500; /* larger than the run before it */
    return 1400;
}

static int run_peer(unsigned i)
{
    return (i >= 45 && i < 70) || (i >= 70 && i < 80 && i % 2) ? 1 : 0;
}

static void exchange_runs(int tx_family, const char *tx_ip, int family, const char *ip)
{
    int tx = open_on(tx_family, tx_ip), rx[2] = {open_on(family, ip), open_on(family, ip)};
    struct rpc2_addr to[2] = {addr_of(rx[0], family, ip), addr_of(rx[1], family, ip)};
    struct outq_slot slots[BATCH];
    struct seen seen[2][BATCH];
    unsigned want[2] = {0, 0};
    struct io_rx in;

    ck_assert_int_eq(io_rx_init(&in, MAX_DGRAM + 1), 0);
    for (unsigned i = 0; i < BATCH; i++) {
        set_slot(&slots[i], &to[run_peer(i)], i, run_len(i));
        want[run_peer(i)]++;
    }
    ck_assert_int_eq(io_send(tx, AF_UNSPEC, slots, BATCH), BATCH);
    for (int r = 0; r < 2; r++) {
        ck_assert_uint_eq(receive(rx[r], &in, seen[r], BATCH, want[r]), want[r]);
        ck_assert(nothing_waiting(rx[r], &in));
    }
    for (unsigned i = 0; i < BATCH; i++) {
        const struct seen *got = &seen[run_peer(i)][i];

        ck_assert_uint_eq(got->times, 1);
        ck_assert_uint_eq(got->len, run_len(i));
        ck_assert(got->intact && !got->truncated);
        ck_assert_uint_eq(seen[!run_peer(i)][i].times, 0);
    }
    free_slots(slots, BATCH);
    io_rx_dispose(&in);
    close(tx);
    close(rx[0]);
    close(rx[1]);
}

START_TEST(runs_of_equal_datagrams_arrive_one_by_one_ipv4)
{
    exchange_runs(AF_INET, "127.0.0.1", AF_INET, "127.0.0.1");
}
END_TEST

START_TEST(runs_of_equal_datagrams_arrive_one_by_one_ipv6)
{
    exchange_runs(AF_INET6, "::1", AF_INET6, "::1");
}
END_TEST

START_TEST(runs_of_equal_datagrams_arrive_one_by_one_dual_stack)
{
    exchange_runs(AF_INET6, "::", AF_INET, "127.0.0.1");
}
END_TEST

/*
 * Where the kernel joins a run on receipt (UDP_GRO), a receive that would
 * take forty datagrams one by one takes fewer messages, and io_recv still
 * lists forty whole datagrams in order.
 */
START_TEST(a_joined_run_is_cut_back_into_its_datagrams)
{
    int tx = open_on(AF_INET, "127.0.0.1"), rx = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr to = addr_of(rx, AF_INET, "127.0.0.1");
    struct outq_slot slots[40];
    struct io_rx in;
    int gro = 0;
    socklen_t len = sizeof gro;
    struct pollfd p = {.fd = rx, .events = POLLIN};

    ck_assert_int_eq(io_rx_init(&in, IO_RX_MAX), 0);
    for (unsigned i = 0; i < 40; i++)
        set_slot(&slots[i], &to, i, 1400);
    ck_assert_int_eq(io_send(tx, AF_UNSPEC, slots, 40), 40);
    ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
    ck_assert_int_eq(io_recv(rx, &in, NULL), (int)in.dgram_count);
    ck_assert_uint_gt(in.dgram_count, 0);
    for (unsigned i = 0; i < in.dgram_count; i++) {
        ck_assert_uint_eq(in.dgrams[i].len, 1400);
        ck_assert(matches(in.dgrams[i].data, i, 1400));
        ck_assert(!in.dgrams[i].truncated);
    }
    if (getsockopt(rx, SOL_UDP, UDP_GRO, &gro, &len) == 0 && gro)
        ck_assert_uint_lt(in.count, in.dgram_count);
    free_slots(slots, 40);
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}
END_TEST

START_TEST(a_dual_stack_socket_talks_to_ipv4)
{
    int ds = open_on(AF_INET6, "::"), v4 = open_on(AF_INET, "127.0.0.1");
    int ds_port = io_local_port(ds), v4_port = io_local_port(v4);
    struct rpc2_addr ds_as_v4 = make_addr(AF_INET, "127.0.0.1", ds_port);
    struct rpc2_addr ds_as_mapped = make_addr(AF_INET6, "::ffff:127.0.0.1", ds_port);
    struct rpc2_addr v4_as_v4 = make_addr(AF_INET, "127.0.0.1", v4_port);
    struct rpc2_addr v4_as_mapped = make_addr(AF_INET6, "::ffff:127.0.0.1", v4_port);
    struct io_rx in;
    struct sockaddr_storage from;

    ck_assert_int_eq(io_rx_init(&in, 2048), 0);
    ck_assert_int_eq(send_one(v4, &ds_as_v4, 0, 100), 1);
    from = expect_one(ds, &in, 0, 100);
    ck_assert(same_v6(&from, "::ffff:127.0.0.1", v4_port));

    ck_assert_int_eq(send_one(ds, &v4_as_v4, 1, 200), 1);
    from = expect_one(v4, &in, 1, 200);
    ck_assert(same_v4(&from, "127.0.0.1", ds_port));

    ck_assert_int_eq(send_one(ds, &v4_as_mapped, 2, 300), 1);
    from = expect_one(v4, &in, 2, 300);
    ck_assert(same_v4(&from, "127.0.0.1", ds_port));

    ck_assert_int_eq(send_one(v4, &ds_as_mapped, 3, 400), 1);
    from = expect_one(ds, &in, 3, 400);
    ck_assert(same_v6(&from, "::ffff:127.0.0.1", v4_port));

    io_rx_dispose(&in);
    close(ds);
    close(v4);
}
END_TEST

START_TEST(a_datagram_larger_than_the_buffer_is_marked_truncated)
{
    int tx = open_on(AF_INET, "127.0.0.1"), rx = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr to = addr_of(rx, AF_INET, "127.0.0.1");
    struct outq_slot slots[2];
    struct seen seen[2];
    struct io_rx in;

    ck_assert_int_eq(io_rx_init(&in, 100), 0);
    set_slot(&slots[0], &to, 0, 101);
    set_slot(&slots[1], &to, 1, 100);
    /* one by one: sent together they make a run the kernel may join */
    ck_assert_int_eq(io_send(tx, AF_UNSPEC, &slots[0], 1), 1);
    ck_assert_int_eq(io_send(tx, AF_UNSPEC, &slots[1], 1), 1);
    ck_assert_uint_eq(receive(rx, &in, seen, 2, 2), 2);

    ck_assert(seen[0].truncated);
    ck_assert_uint_eq(seen[0].len, 100); /* what fit; the rest is lost */
    ck_assert(seen[0].intact);
    ck_assert(!seen[1].truncated);
    ck_assert_uint_eq(seen[1].len, 100);
    free_slots(slots, 2);
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}
END_TEST

/*
 * Datagrams the kernel refuses at once (port 0, too large for IPv4) and one
 * to a closed port (refused later, by ICMP) sit between good ones: only the
 * refused ones are lost, and the port-unreachable reply is no error.
 */
START_TEST(refused_datagrams_do_not_fail_the_batch)
{
    int tx = open_on(AF_INET, "127.0.0.1"), rx = open_on(AF_INET, "127.0.0.1");
    int closed = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr good = addr_of(rx, AF_INET, "127.0.0.1");
    struct rpc2_addr dead = addr_of(closed, AF_INET, "127.0.0.1");
    struct rpc2_addr port0 = make_addr(AF_INET, "127.0.0.1", 0);
    struct outq_slot slots[8];
    struct seen seen[8];
    struct io_rx in;

    close(closed);
    ck_assert_int_eq(io_rx_init(&in, 1024), 0);
    set_slot(&slots[0], &good, 0, 10);
    set_slot(&slots[1], &dead, 1, 10);
    set_slot(&slots[2], &good, 2, 20);
    set_slot(&slots[3], &port0, 3, 10);
    set_slot(&slots[4], &good, 4, 30);
    set_slot(&slots[5], &good, 5, TOO_BIG_V4);
    set_slot(&slots[6], &dead, 6, 10);
    set_slot(&slots[7], &good, 7, 40);
    ck_assert_int_eq(io_send(tx, AF_UNSPEC, slots, 8), 6);
    ck_assert_uint_eq(receive(rx, &in, seen, 8, 4), 4);

    unsigned want[] = {0, 2, 4, 7};
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_uint_eq(seen[want[i]].times, 1);
        ck_assert(seen[want[i]].intact);
    }
    ck_assert(nothing_waiting(tx, &in)); /* no ECONNREFUSED surfaces */
    ck_assert_int_eq(send_one(tx, &good, 0, 10), 1);
    expect_one(rx, &in, 0, 10);
    free_slots(slots, 8);
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}
END_TEST

START_TEST(open_reports_errors_with_errno)
{
    int a = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr same = addr_of(a, AF_INET, "127.0.0.1");
    struct sockaddr_storage unix_ss = {.ss_family = AF_UNIX};

    errno = 0;
    ck_assert_int_eq(io_open(&same.ss, same.len), RPC2_ESYSTEM);
    ck_assert_int_eq(errno, EADDRINUSE);
    ck_assert_int_eq(io_open(&unix_ss, sizeof unix_ss), RPC2_EINVAL);
    close(a);
    ck_assert_int_eq(io_local_port(a), RPC2_ESYSTEM);
}
END_TEST

/* ---- outq ------------------------------------------------------------------- */

struct flushes {
    unsigned calls;
    unsigned last_count;
    unsigned bad;  /* slots whose address, length or content was wrong */
    unsigned base; /* index of the first datagram in this flush */
};

static struct rpc2_addr slot_addr(unsigned idx)
{
    struct rpc2_addr a =
        make_addr(idx % 2 ? AF_INET6 : AF_INET, idx % 2 ? "::1" : "127.0.0.1", 1000 + (int)idx);

    a.sock = (uint16_t)(idx % 3);
    return a;
}

static void check_flush(struct outq *q, void *arg)
{
    struct flushes *f = arg;

    f->calls++;
    f->last_count = q->count;
    for (unsigned i = 0; i < q->count; i++) {
        unsigned idx = f->base + i;
        struct rpc2_addr want = slot_addr(idx);
        const struct outq_slot *s = &q->slots[i];

        if (s->to.len != want.len || s->to.sock != want.sock ||
            memcmp(&s->to.ss, &want.ss, want.len) != 0 || s->len != idx % 50 + 1 ||
            !matches(s->data, idx % 256, s->len))
            f->bad++;
    }
    f->base += q->count;
    q->count = 0;
}

static void queue_one(struct outq *q, unsigned idx)
{
    uint8_t *buf = outq_reserve(q);
    struct rpc2_addr to = slot_addr(idx);

    ck_assert_ptr_nonnull(buf);
    fill(buf, idx % 256, idx % 50 + 1);
    outq_commit(q, &to, idx % 50 + 1);
}

START_TEST(outq_flushes_when_full_and_keeps_each_address)
{
    struct flushes f = {0};
    struct outq q;

    outq_init(&q, 64, check_flush, &f);
    outq_flush(&q);
    ck_assert_uint_eq(f.calls, 0); /* nothing queued: no call */
    for (unsigned i = 0; i < OUTQ_SLOTS; i++)
        queue_one(&q, i);
    ck_assert_uint_eq(f.calls, 0);
    ck_assert_uint_eq(q.count, OUTQ_SLOTS);
    uint8_t *first = q.slots[0].buf;

    queue_one(&q, OUTQ_SLOTS); /* the 65th flushes the 64 first */
    ck_assert_uint_eq(f.calls, 1);
    ck_assert_uint_eq(f.last_count, OUTQ_SLOTS);
    ck_assert_ptr_eq(q.slots[0].buf, first); /* buffers are reused */
    for (unsigned i = OUTQ_SLOTS + 1; i < 100; i++)
        queue_one(&q, i);
    outq_flush(&q);
    ck_assert_uint_eq(f.calls, 2);
    ck_assert_uint_eq(f.last_count, 100 - OUTQ_SLOTS);
    ck_assert_uint_eq(f.bad, 0);
    outq_flush(&q);
    ck_assert_uint_eq(f.calls, 2);
    outq_dispose(&q);
}
END_TEST

/* A lent datagram goes out from the lender's memory, in its place among
 * copied ones; unpinning flushes only while its batch is still queued. */
START_TEST(outq_lent_datagrams_go_in_order_and_unpin_flushes_once)
{
    struct flushes f = {0};
    struct outq q;
    uint8_t lent[60];
    struct rpc2_addr to = slot_addr(1);

    outq_init(&q, 64, check_flush, &f);
    queue_one(&q, 0);
    fill(lent, 1, 2); /* what queue_one(1) would have written: index 1, 2 bytes */
    uint64_t pin = outq_lend(&q, &to, lent, 2);
    queue_one(&q, 2);
    ck_assert_uint_eq(q.count, 3);
    ck_assert_ptr_eq(q.slots[1].data, lent);
    outq_unpin(&q, pin);
    ck_assert_uint_eq(f.calls, 1);
    ck_assert_uint_eq(f.last_count, 3);
    ck_assert_uint_eq(f.bad, 0);
    outq_unpin(&q, pin); /* gone out already: nothing to do */
    queue_one(&q, 3);
    outq_unpin(&q, pin);
    ck_assert_uint_eq(f.calls, 1);
    ck_assert_uint_eq(q.count, 1);
    /* Dropping lets every pin go too. */
    pin = outq_lend(&q, &to, lent, 2);
    outq_drop(&q);
    outq_unpin(&q, pin);
    ck_assert_uint_eq(f.calls, 1);
    ck_assert_uint_eq(q.count, 0);
    outq_dispose(&q);
}
END_TEST

struct sender {
    int fd;
    int sent;
};

static void send_flush(struct outq *q, void *arg)
{
    struct sender *s = arg;

    s->sent += io_send(s->fd, AF_UNSPEC, q->slots, q->count);
    q->count = 0;
}

/* The path the driver takes: machines fill the queue, flushes send it. */
START_TEST(outq_flushed_through_io_send_delivers_everything)
{
    int tx = open_on(AF_INET6, "::"), rx = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr to = addr_of(rx, AF_INET, "127.0.0.1");
    struct sender snd = {tx, 0};
    struct seen seen[BATCH];
    struct io_rx in;
    struct outq q;

    outq_init(&q, 1500, send_flush, &snd);
    ck_assert_int_eq(io_rx_init(&in, 1501), 0);
    for (unsigned i = 0; i < BATCH; i++) {
        uint8_t *buf = outq_reserve(&q);

        ck_assert_ptr_nonnull(buf);
        fill(buf, i, 1 + i * 13);
        outq_commit(&q, &to, 1 + i * 13);
    }
    outq_flush(&q);
    ck_assert_int_eq(snd.sent, BATCH);
    ck_assert_uint_eq(receive(rx, &in, seen, BATCH, BATCH), BATCH);
    for (unsigned i = 0; i < BATCH; i++) {
        ck_assert_uint_eq(seen[i].times, 1);
        ck_assert_uint_eq(seen[i].len, 1 + i * 13);
        ck_assert(seen[i].intact);
    }
    outq_dispose(&q);
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}
END_TEST

/* ---- io: the kernel's drop count -------------------------------------------- */

/* Sends n datagrams of len bytes to rx with plain sendto: on loopback each
 * one is queued on rx or dropped there at once, so when this returns, the
 * kernel has decided every one of them. */
static void flood(int tx, const struct rpc2_addr *to, unsigned n, size_t len)
{
    uint8_t buf[1024];

    ck_assert_uint_le(len, sizeof buf);
    memset(buf, 0x5a, len);
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(sendto(tx, buf, len, 0, (const struct sockaddr *)&to->ss, to->len),
                         (ssize_t)len);
}

/* Reads everything queued (nothing waits: the sender is done); returns how many. */
static unsigned drain(int fd, struct io_rx *rx, struct io_drops *drops)
{
    unsigned got = 0;
    int r;

    while ((r = io_recv(fd, rx, drops)) > 0)
        got += (unsigned)r;
    ck_assert_int_eq(r, 0);
    return got;
}

/*
 * A socket flooded while nobody reads drops what its buffer cannot hold,
 * and io_recv learns how many from the next datagram queued after the
 * drops. Deterministic: the reader is simply not called during the flood,
 * and every datagram sent is either read or counted as dropped.
 */
START_TEST(drops_of_a_full_buffer_are_counted)
{
    int rx = open_on(AF_INET, "127.0.0.1");
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct rpc2_addr to = addr_of(rx, AF_INET, "127.0.0.1");
    struct io_drops drops = {0, 0};
    struct io_rx in;
    int small = 4096; /* the kernel doubles it, and keeps a floor: a few datagrams */

    ck_assert_int_ge(tx, 0);
    ck_assert_int_eq(setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    ck_assert_int_eq(io_rx_init(&in, 2048), 0);

    /* Before any drop, nothing is counted. */
    flood(tx, &to, 2, 100);
    ck_assert_uint_eq(drain(rx, &in, &drops), 2);
    ck_assert_uint_eq(drops.total, 0);

    for (unsigned round = 1; round <= 2; round++) {
        uint64_t before = drops.total;

        flood(tx, &to, 500, 1000);
        unsigned queued = drain(rx, &in, &drops);

        ck_assert_uint_gt(queued, 0);
        ck_assert_uint_lt(queued, 500);
        /* The drops came after everything queued: not known yet... */
        ck_assert_uint_eq(drops.total, before);
        /* ...until a datagram queued after them brings the count. */
        flood(tx, &to, 1, 100);
        ck_assert_uint_eq(drain(rx, &in, &drops), 1);
        ck_assert_uint_eq(drops.total - before, 500 - queued);
    }
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}
END_TEST

/* ---- ICMP errors about what a socket sent --------------------------------- */

/* Waits for the socket's error queue to hold something: 1, or 0 at the end
 * of the bounded wait. */
static int error_queued(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};

    return poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLERR);
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Sends one datagram from a socket that asked for peer errors to a port
 * nobody listens on, and reads the error back. */
static void check_refusal(int family, const char *bind_ip, int to_family, const char *to_ip)
{
    int tx = open_on(family, bind_ip), closed = open_on(to_family, to_ip);
    struct rpc2_addr dead = addr_of(closed, to_family, to_ip);
    struct io_peer_error pe;
    uint8_t sent[100];

    close(closed);
    ck_assert_int_eq(io_want_peer_errors(tx), 0);
    fill(sent, 9, sizeof sent);
    ck_assert_int_eq(send_one(tx, &dead, 9, sizeof sent), 1);
    ck_assert_msg(error_queued(tx), "no ICMP error queued for %s", to_ip);
    ck_assert_int_eq(io_recv_peer_error(tx, &pe), 1);
    ck_assert_int_eq(pe.err, ECONNREFUSED);
    ck_assert_int_eq(port_of(&pe.to), port_of(&dead.ss));
    /* The start of the datagram that was refused: enough to tell which. */
    ck_assert_uint_eq(pe.quoted_len, IO_QUOTE_MAX);
    ck_assert(memcmp(pe.quoted, sent, IO_QUOTE_MAX) == 0);
    ck_assert_int_eq(io_recv_peer_error(tx, &pe), 0); /* read once */
    close(tx);
}

START_TEST(a_refused_datagram_is_reported_with_its_destination_and_start)
{
    check_refusal(AF_INET, "127.0.0.1", AF_INET, "127.0.0.1");
    check_refusal(AF_INET6, "::1", AF_INET6, "::1");
    check_refusal(AF_INET6, "::", AF_INET, "127.0.0.1"); /* dual stack, IPv4 peer */
}
END_TEST

/* A server's socket does not ask: nothing is queued, nothing surfaces. */
START_TEST(a_socket_that_did_not_ask_hears_no_peer_errors)
{
    int tx = open_on(AF_INET, "127.0.0.1"), closed = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr dead = addr_of(closed, AF_INET, "127.0.0.1");
    struct io_peer_error pe;
    struct io_rx in;

    close(closed);
    ck_assert_int_eq(io_rx_init(&in, 1024), 0);
    ck_assert_int_eq(send_one(tx, &dead, 1, 10), 1);
    ck_assert(nothing_waiting(tx, &in));
    ck_assert_int_eq(io_recv_peer_error(tx, &pe), 0);
    io_rx_dispose(&in);
    close(tx);
}
END_TEST

/* The kernel also reports a queued ICMP error once through the next send
 * or receive call; neither loses the datagrams that are its business. */
START_TEST(a_pending_peer_error_costs_no_other_datagram)
{
    int tx = open_on(AF_INET, "127.0.0.1"), rx = open_on(AF_INET, "127.0.0.1");
    int closed = open_on(AF_INET, "127.0.0.1");
    struct rpc2_addr good = addr_of(rx, AF_INET, "127.0.0.1");
    struct rpc2_addr dead = addr_of(closed, AF_INET, "127.0.0.1");
    struct rpc2_addr tx_addr = addr_of(tx, AF_INET, "127.0.0.1");
    struct io_peer_error pe;
    struct io_rx in;

    close(closed);
    ck_assert_int_eq(io_rx_init(&in, 1024), 0);
    ck_assert_int_eq(io_want_peer_errors(tx), 0);
    ck_assert_int_eq(send_one(tx, &dead, 1, 10), 1);
    ck_assert(error_queued(tx));
    ck_assert_int_eq(send_one(tx, &good, 2, 20), 1); /* sent, not taken for the error */
    expect_one(rx, &in, 2, 20);
    ck_assert_int_eq(send_one(tx, &dead, 3, 10), 1);
    ck_assert(error_queued(tx));
    ck_assert_int_eq(send_one(rx, &tx_addr, 0, 30), 1);
    expect_one(tx, &in, 0, 30); /* received, not hidden by the error */
    ck_assert_int_eq(io_recv_peer_error(tx, &pe), 1);
    ck_assert_int_eq(io_recv_peer_error(tx, &pe), 1);
    ck_assert_int_eq(io_recv_peer_error(tx, &pe), 0);
    io_rx_dispose(&in);
    close(tx);
    close(rx);
}
END_TEST

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *io = tcase_create("io");
    TCase *outq = tcase_create("outq");

    tcase_add_test(io, a_batch_crosses_ipv4_loopback);
    tcase_add_test(io, a_batch_crosses_ipv6_loopback);
    tcase_add_test(io, a_dual_stack_socket_talks_to_ipv4);
    tcase_add_test(io, runs_of_equal_datagrams_arrive_one_by_one_ipv4);
    tcase_add_test(io, runs_of_equal_datagrams_arrive_one_by_one_ipv6);
    tcase_add_test(io, runs_of_equal_datagrams_arrive_one_by_one_dual_stack);
    tcase_add_test(io, a_datagram_larger_than_the_buffer_is_marked_truncated);
    tcase_add_test(io, a_joined_run_is_cut_back_into_its_datagrams);
    tcase_add_test(io, refused_datagrams_do_not_fail_the_batch);
    tcase_add_test(io, open_reports_errors_with_errno);
    tcase_add_test(io, drops_of_a_full_buffer_are_counted);
    tcase_add_test(io, a_refused_datagram_is_reported_with_its_destination_and_start);
    tcase_add_test(io, a_socket_that_did_not_ask_hears_no_peer_errors);
    tcase_add_test(io, a_pending_peer_error_costs_no_other_datagram);
    suite_add_tcase(s, io);
    tcase_add_test(outq, outq_flushes_when_full_and_keeps_each_address);
    tcase_add_test(outq, outq_lent_datagrams_go_in_order_and_unpin_flushes_once);
    tcase_add_test(outq, outq_flushed_through_io_send_delivers_everything);
    suite_add_tcase(s, outq);
    return s;
}

int main(void)
{
    return check_run(io_suite());
}
