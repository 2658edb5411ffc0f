/*
 * test_limits.c - what hostile or merely numerous peers can make a server
 * hold, and what it answers them: the per-address and total connection
 * limits, stateless cookies (two round trips, no state before the cookie
 * checks out, forged and stale ones refused and counted), answers to
 * unproven peers never larger than what they sent, half-open connections
 * that expire, the running-call limit (BUSY, not failure), the bound on
 * saved replies, and the kernel's drop count on a flooded socket.
 *
 * The engine is driven two ways: by hand, with datagrams from any address
 * and every answer captured (a server alone), and through the fake link
 * with a real client engine. One test uses a real context on loopback,
 * flooded while its loop is not run. No sleeps; no assertion on time.
 */
#include <check.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <ev.h>

#include "fakelink.h"
#include "testproto.h"
#include "check_run.h"

#define MS 1000ull
#define SEC 1000000ull

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 10 * SEC,
    .idle_timeout_us = 60 * SEC,
    .max_connections = 10000,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 42,
};

static struct conntable_limits limits(size_t per_addr, size_t cookie_threshold)
{
    return (struct conntable_limits){.max_per_addr = per_addr,
                                     .cookie_threshold = cookie_threshold,
                                     .max_running = SIZE_MAX,
                                     .max_saved_bytes = UINT64_MAX};
}

/* ---- the server's procedures --------------------------------------------- */

static struct {
    unsigned executions[8];
    rpc2_request *held;
} srv;

static void h_incr(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)arg;
    *(unsigned *)result = ++srv.executions[((incr_args *)args)->client % 8];
    engine_reply(req, 0, 0);
}

/* Runs, then holds its reply until the test sends it. */
static void h_hold(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)arg;
    *(unsigned *)result = ++srv.executions[((incr_args *)args)->client % 8];
    srv.held = req;
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_INCR,
     .decode_args = (xdrproc_t)xdr_incr_args,
     .args_size = sizeof(incr_args),
     .encode_result = (xdrproc_t)xdr_u_int,
     .result_size = sizeof(unsigned),
     .async_handler = h_incr},
    {.proc = TEST_SLOW_INCR,
     .decode_args = (xdrproc_t)xdr_incr_args,
     .args_size = sizeof(incr_args),
     .encode_result = (xdrproc_t)xdr_u_int,
     .result_size = sizeof(unsigned),
     .async_handler = h_hold},
};

/* ---- a server driven by hand --------------------------------------------- */

#define MAX_CAPTURED 64
#define CAPTURE_BYTES 256

struct captured {
    struct rpc2_addr to;
    size_t len;
    uint8_t data[CAPTURE_BYTES]; /* the start of it: answers here are small */
};

static struct {
    struct captured out[MAX_CAPTURED];
    unsigned n;
} cap;

static void capture(struct outq *q, void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < q->count; i++) {
        ck_assert_uint_lt(cap.n, MAX_CAPTURED);
        struct captured *c = &cap.out[cap.n++];
        c->to = q->slots[i].to;
        c->len = q->slots[i].len;
        memcpy(c->data, q->slots[i].data, c->len < CAPTURE_BYTES ? c->len : CAPTURE_BYTES);
    }
    q->count = 0;
}

static struct engine *server_new(size_t max_conns, const struct conntable_limits *l)
{
    struct engine_config c = cfg;
    c.max_connections = (uint32_t)max_conns;
    struct engine *e = engine_new(&c, NULL, NULL, NULL, capture, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(engine_export(e, TEST_SUBSYS, procs, 2, NULL), 0);
    conntable_set_limits(&e->conns, l);
    memset(&cap, 0, sizeof cap);
    memset(&srv, 0, sizeof srv);
    return e;
}

static struct rpc2_addr v4(const char *ip, uint16_t port)
{
    struct rpc2_addr a;
    struct sockaddr_in sin;
    memset(&a, 0, sizeof a);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    memcpy(&a.ss, &sin, sizeof sin);
    a.len = sizeof sin;
    return a;
}

/* A whole datagram: header, body, and the trailer its level seals it with. */
static size_t datagram(uint8_t *buf, uint8_t version, uint8_t type, uint32_t dst, uint32_t src,
                       uint32_t seq, const uint8_t *body, size_t body_len)
{
    struct pkt_hdr h = {.version = PKT_VERSION,
                        .type = type,
                        .dst_conn = dst,
                        .src_conn = src,
                        .seq = seq,
                        .ts = 777,
                        .body_len = (uint32_t)body_len,
                        .trailer_len = (uint16_t)pkt_trailer_size(RPC2_SEC_NONE)};
    pkt_hdr_encode(&h, buf);
    if (body_len)
        memcpy(buf + PKT_HDR_SIZE, body, body_len);
    size_t len = pkt_seal(buf, PKT_HDR_SIZE + body_len);
    ck_assert_uint_gt(len, 0);
    buf[0] = version; /* after sealing: a foreign version is refused before its check */
    return len;
}

static size_t bind_req(uint8_t *buf, uint32_t src, uint32_t subsystem, const uint8_t *cookie,
                       size_t cookie_len, const char *identity)
{
    uint8_t body[512];
    size_t body_len;
    struct pkt_bind_req m = {.subsystem = subsystem,
                             .cookie = cookie,
                             .cookie_len = (uint32_t)cookie_len,
                             .identity = (const uint8_t *)identity,
                             .identity_len = (uint32_t)strlen(identity)};
    ck_assert_int_eq(pkt_bind_req_encode(&m, body, sizeof body, &body_len), PKT_OK);
    return datagram(buf, PKT_VERSION, PKT_BIND_REQ, 0, src, 0, body, body_len);
}

/* Delivers one datagram and returns the index of the first answer it caused. */
static unsigned deliver(struct engine *e, const struct rpc2_addr *from, const uint8_t *pkt,
                        size_t len, uint64_t now)
{
    unsigned first = cap.n;
    static uint8_t copy[PKT_MAX_DATAGRAM]; /* engine_receive may decrypt in place */
    memcpy(copy, pkt, len < sizeof copy ? len : sizeof copy);
    engine_receive(e, from, copy, len, now);
    engine_flush(e);
    return first;
}

/* The one answer to the last datagram: its header (checked), and its body. */
static const uint8_t *answer(unsigned i, struct pkt_hdr *h)
{
    ck_assert_uint_eq(cap.n, i + 1);
    ck_assert_int_eq(pkt_hdr_decode(cap.out[i].data, cap.out[i].len, h), PKT_OK);
    return cap.out[i].data + PKT_HDR_SIZE;
}

/* Sends a bind; returns the answer's type (and its error or cookie). */
static int bind_from(struct engine *e, const struct rpc2_addr *from, uint32_t src,
                     const uint8_t *cookie, size_t cookie_len, uint64_t now, int32_t *err,
                     uint8_t got_cookie[CONNTABLE_COOKIE_LEN])
{
    uint8_t pkt[600];
    size_t len = bind_req(pkt, src, TEST_SUBSYS, cookie, cookie_len, "");
    struct pkt_hdr h;
    const uint8_t *body = answer(deliver(e, from, pkt, len, now), &h);
    ck_assert_uint_eq(h.dst_conn, src);
    if (h.type == PKT_BIND_ERR && err)
        ck_assert_int_eq(pkt_i32_decode(body, h.body_len, err), PKT_OK);
    if (h.type == PKT_BIND_COOKIE && got_cookie) {
        const uint8_t *c;
        uint32_t clen;
        ck_assert_int_eq(pkt_cookie_decode(body, h.body_len, &c, &clen), PKT_OK);
        ck_assert_uint_eq(clen, CONNTABLE_COOKIE_LEN);
        memcpy(got_cookie, c, clen);
    }
    return h.type;
}

/* ---- connection limits ------------------------------------------------------ */

START_TEST(per_address_limit_refuses_the_next_bind_from_that_address_only)
{
    struct conntable_limits l = limits(4, SIZE_MAX);
    struct engine *e = server_new(100, &l);
    uint64_t now = SEC;
    int32_t err = 0;

    /* Four clients behind one NAT address, one port each. */
    for (uint16_t i = 0; i < 4; i++) {
        struct rpc2_addr a = v4("10.1.1.1", (uint16_t)(5000 + i));
        ck_assert_int_eq(bind_from(e, &a, 100u + i, NULL, 0, now, NULL, NULL), PKT_BIND_OK);
    }
    struct rpc2_addr fifth = v4("10.1.1.1", 5004), other = v4("10.1.1.2", 5000);
    ck_assert_int_eq(bind_from(e, &fifth, 200, NULL, 0, now, &err, NULL), PKT_BIND_ERR);
    ck_assert_int_eq(err, RPC2_ELIMIT);
    ck_assert_uint_eq(engine_conn_count(e), 4);
    ck_assert_uint_eq(engine_stats(e)->binds_refused_address, 1);
    ck_assert_uint_eq(engine_stats(e)->binds_refused, 1);

    /* Another address still binds, and what exists goes on: a repeated
     * bind of a connection already made is answered as before. */
    ck_assert_int_eq(bind_from(e, &other, 300, NULL, 0, now, NULL, NULL), PKT_BIND_OK);
    struct rpc2_addr first = v4("10.1.1.1", 5000);
    ck_assert_int_eq(bind_from(e, &first, 100, NULL, 0, now, NULL, NULL), PKT_BIND_OK);
    ck_assert_uint_eq(engine_conn_count(e), 5);
    engine_free(e);
}
END_TEST

START_TEST(total_limit_refuses_binds_and_keeps_the_others)
{
    struct conntable_limits l = limits(SIZE_MAX, SIZE_MAX);
    struct engine *e = server_new(3, &l);
    int32_t err = 0;
    char ip[32];

    for (int i = 0; i < 3; i++) {
        snprintf(ip, sizeof ip, "10.2.0.%d", i + 1);
        struct rpc2_addr a = v4(ip, 7000);
        ck_assert_int_eq(bind_from(e, &a, 1, NULL, 0, SEC, NULL, NULL), PKT_BIND_OK);
    }
    struct rpc2_addr a = v4("10.2.0.9", 7000);
    ck_assert_int_eq(bind_from(e, &a, 1, NULL, 0, SEC, &err, NULL), PKT_BIND_ERR);
    ck_assert_int_eq(err, RPC2_ELIMIT);
    ck_assert_uint_eq(engine_stats(e)->binds_refused_limit, 1);
    ck_assert_uint_eq(engine_conn_count(e), 3);
    engine_free(e);
}
END_TEST

/* ---- cookies ------------------------------------------------------------------ */

/* Forged, moved and stale cookies get a fresh cookie, are counted by
 * reason, and leave nothing behind; a good one binds. */
START_TEST(forged_and_stale_cookies_are_refused_and_counted)
{
    struct conntable_limits l = limits(SIZE_MAX, 0); /* cookies always */
    struct engine *e = server_new(100, &l);
    struct rpc2_addr a = v4("192.0.2.7", 4000), moved = v4("192.0.2.7", 4001);
    uint8_t c1[CONNTABLE_COOKIE_LEN], c2[CONNTABLE_COOKIE_LEN], forged[64];
    uint64_t t = 50 * CONNTABLE_COOKIE_SLOT_US;
    const struct rpc2_ctx_stats *st = engine_stats(e);

    ck_assert_int_eq(bind_from(e, &a, 9, NULL, 0, t, NULL, c1), PKT_BIND_COOKIE);
    ck_assert_uint_eq(st->binds_cookie_missing, 1);
    ck_assert_uint_eq(engine_conn_count(e), 0);

    for (size_t i = 0; i < sizeof forged; i++)
        forged[i] = (uint8_t)(i * 37 + 1);
    ck_assert_int_eq(bind_from(e, &a, 9, forged, CONNTABLE_COOKIE_LEN, t, NULL, NULL),
                     PKT_BIND_COOKIE);
    ck_assert_int_eq(bind_from(e, &a, 9, forged, sizeof forged, t, NULL, NULL), PKT_BIND_COOKIE);
    ck_assert_int_eq(bind_from(e, &moved, 9, c1, sizeof c1, t, NULL, NULL), PKT_BIND_COOKIE);
    ck_assert_int_eq(bind_from(e, &a, 10, c1, sizeof c1, t, NULL, NULL), PKT_BIND_COOKIE);
    ck_assert_uint_eq(st->binds_cookie_bad, 4);

    /* Two slots later the cookie is stale; the fresh one binds. */
    uint64_t later = t + 2 * CONNTABLE_COOKIE_SLOT_US;
    ck_assert_int_eq(bind_from(e, &a, 9, c1, sizeof c1, later, NULL, c2), PKT_BIND_COOKIE);
    ck_assert_uint_eq(st->binds_cookie_stale, 1);
    ck_assert_uint_eq(st->cookies_sent, 6);
    ck_assert_uint_eq(engine_conn_count(e), 0);
    ck_assert_uint_eq(conntable_addr_count(&e->conns, &a), 0);
    ck_assert_uint_eq(st->binds_accepted, 0);

    ck_assert_int_eq(bind_from(e, &a, 9, c2, sizeof c2, later + 1, NULL, NULL), PKT_BIND_OK);
    ck_assert_uint_eq(engine_conn_count(e), 1);
    ck_assert_uint_eq(e->conns.half_open, 0); /* it proved its address */
    engine_free(e);
}
END_TEST

/* Half-open connections have a budget; past it binds need a cookie, and a
 * peer that speaks on its connection gives its place back. */
START_TEST(cookies_are_required_only_past_the_half_open_budget)
{
    struct conntable_limits l = limits(SIZE_MAX, 2);
    struct engine *e = server_new(100, &l);
    struct rpc2_addr a1 = v4("10.3.0.1", 1), a2 = v4("10.3.0.2", 1), a3 = v4("10.3.0.3", 1);
    uint8_t pkt[600];
    struct pkt_hdr h;

    ck_assert_int_eq(bind_from(e, &a1, 1, NULL, 0, SEC, NULL, NULL), PKT_BIND_OK);
    (void)answer(cap.n - 1, &h);
    uint32_t server_id = h.src_conn;
    ck_assert_int_eq(bind_from(e, &a2, 1, NULL, 0, SEC, NULL, NULL), PKT_BIND_OK);
    ck_assert_uint_eq(e->conns.half_open, 2);
    ck_assert_int_eq(bind_from(e, &a3, 1, NULL, 0, SEC, NULL, NULL), PKT_BIND_COOKIE);
    ck_assert_uint_eq(engine_conn_count(e), 2);

    /* a1 calls (a procedure it does not have: any packet on the connection
     * proves the peer heard our BIND_OK). */
    uint8_t body[8] = {0, 0, 3, 0xe7, 0, 0, 0, 0};
    size_t len = datagram(pkt, PKT_VERSION, PKT_CALL, server_id, 1, 1, body, sizeof body);
    (void)answer(deliver(e, &a1, pkt, len, SEC), &h);
    ck_assert_int_eq(h.type, PKT_REPLY);
    ck_assert_uint_eq(e->conns.half_open, 1);
    ck_assert_int_eq(bind_from(e, &a3, 1, NULL, 0, SEC, NULL, NULL), PKT_BIND_OK);
    engine_free(e);
}
END_TEST

/* A bind from a peer that never speaks again (its BIND_OK went to a forged
 * address) lasts the idle timeout, and gives its half-open place back. */
START_TEST(half_open_connections_expire_when_idle)
{
    struct conntable_limits l = limits(SIZE_MAX, 10);
    struct engine *e = server_new(100, &l);
    struct rpc2_addr a = v4("10.4.0.1", 1);
    uint64_t t = 5 * SEC;

    ck_assert_int_eq(bind_from(e, &a, 1, NULL, 0, t, NULL, NULL), PKT_BIND_OK);
    ck_assert_uint_eq(e->conns.half_open, 1);
    engine_timeout(e, t + cfg.idle_timeout_us - 1);
    ck_assert_uint_eq(engine_conn_count(e), 1);
    ck_assert_uint_eq(engine_next_deadline(e), t + cfg.idle_timeout_us);
    engine_timeout(e, t + cfg.idle_timeout_us);
    ck_assert_uint_eq(engine_conn_count(e), 0);
    ck_assert_uint_eq(e->conns.half_open, 0);
    ck_assert_uint_eq(conntable_addr_count(&e->conns, &a), 0);
    ck_assert_uint_eq(engine_stats(e)->connections_expired, 1);
    engine_free(e);
}
END_TEST

/* ---- no amplification --------------------------------------------------------- */

/* Every answer to one datagram from an unproven peer, checked against it. */
static void assert_not_larger(struct engine *e, const struct rpc2_addr *from, const uint8_t *pkt,
                              size_t len, uint64_t now, const char *what)
{
    unsigned first = deliver(e, from, pkt, len, now);
    ck_assert_msg(cap.n - first <= 1, "%s: %u answers", what, cap.n - first);
    for (unsigned i = first; i < cap.n; i++)
        ck_assert_msg(cap.out[i].len <= len, "%s: %zu bytes answered %zu", what, cap.out[i].len,
                      len);
}

START_TEST(answers_are_never_larger_than_what_caused_them)
{
    struct conntable_limits l = limits(1, 0);
    struct engine *e = server_new(2, &l);
    struct rpc2_addr a = v4("198.51.100.1", 9), b = v4("198.51.100.2", 9);
    struct rpc2_addr c = v4("198.51.100.3", 9);
    uint8_t pkt[600], ck[CONNTABLE_COOKIE_LEN], forged[CONNTABLE_COOKIE_LEN] = {1, 2, 3};
    uint64_t t = 7 * CONNTABLE_COOKIE_SLOT_US;
    size_t len;

    /* The smallest BIND_REQ there is: no cookie, no identity. */
    len = bind_req(pkt, 1, TEST_SUBSYS, NULL, 0, "");
    assert_not_larger(e, &a, pkt, len, t, "bind without cookie");
    ck_assert_int_eq(cap.out[cap.n - 1].data[1], PKT_BIND_COOKIE);
    conntable_cookie_make(&e->conns, &a, 1, t, ck);
    len = bind_req(pkt, 1, TEST_SUBSYS, forged, sizeof forged, "");
    assert_not_larger(e, &a, pkt, len, t, "forged cookie");
    len = bind_req(pkt, 1, TEST_SUBSYS, ck, sizeof ck, "");
    assert_not_larger(e, &a, pkt, len, t + 3 * CONNTABLE_COOKIE_SLOT_US, "stale cookie");
    len = bind_req(pkt, 1, TEST_SUBSYS + 1, NULL, 0, "");
    assert_not_larger(e, &a, pkt, len, t, "unknown subsystem");
    len = bind_req(pkt, 1, TEST_SUBSYS, ck, sizeof ck, "");
    assert_not_larger(e, &a, pkt, len, t, "accepted");
    ck_assert_uint_eq(engine_conn_count(e), 1);
    /* Over the per-address limit, then over the total. */
    conntable_cookie_make(&e->conns, &a, 2, t, ck);
    len = bind_req(pkt, 2, TEST_SUBSYS, ck, sizeof ck, "");
    assert_not_larger(e, &a, pkt, len, t, "address full");
    conntable_cookie_make(&e->conns, &b, 1, t, ck);
    len = bind_req(pkt, 1, TEST_SUBSYS, ck, sizeof ck, "");
    assert_not_larger(e, &b, pkt, len, t, "accepted");
    conntable_cookie_make(&e->conns, &c, 1, t, ck);
    len = bind_req(pkt, 1, TEST_SUBSYS, ck, sizeof ck, "");
    assert_not_larger(e, &c, pkt, len, t, "table full");
    ck_assert_uint_eq(engine_stats(e)->binds_refused_address, 1);
    ck_assert_uint_eq(engine_stats(e)->binds_refused_limit, 1);

    /* The answers engine.c makes outside any connection. */
    len = datagram(pkt, PKT_VERSION, PKT_UNBIND, 12345, 1, 0, NULL, 0);
    assert_not_larger(e, &c, pkt, len, t, "unbind of an unknown connection");
    uint8_t call[8] = {0};
    len = datagram(pkt, PKT_VERSION, PKT_CALL, 12345, 1, 1, call, sizeof call);
    assert_not_larger(e, &c, pkt, len, t, "call on an unknown connection");
    for (size_t n = PKT_HDR_SIZE; n <= PKT_HDR_SIZE + 16; n++) {
        memset(pkt, 0, n);
        pkt[0] = 2; /* a version we do not speak */
        pkt[1] = PKT_CALL;
        assert_not_larger(e, &c, pkt, n, t, "foreign version");
    }
    engine_free(e);
}
END_TEST

/* ---- through the fake link, with a real client ------------------------------------ */

enum { NODE_CLIENT = 0, NODE_SERVER = 1 };
static struct fakelink link_;

struct outcome {
    int done, status;
    rpc2_conn *conn;
};

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct outcome *o = arg;
    o->done = 1;
    o->status = status;
    o->conn = conn;
}

static void on_called(int status, void *result, void *arg)
{
    struct outcome *o = arg;
    (void)result;
    o->done = 1;
    o->status = status;
}

static struct engine *setup_link(uint64_t seed, const struct conntable_limits *l)
{
    memset(&srv, 0, sizeof srv);
    fakelink_init(&link_, seed);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, NULL, NULL);
    for (int i = 0; i < 2; i++)
        link_.faults[i].delay_us = 1000;
    struct engine *s = fakelink_engine(&link_, NODE_SERVER);
    ck_assert_int_eq(engine_export(s, TEST_SUBSYS, procs, 2, NULL), 0);
    conntable_set_limits(&s->conns, l);
    return s;
}

static void start_bind(struct outcome *o)
{
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .identity = "tester"};
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(engine_bind(fakelink_engine(&link_, NODE_CLIENT),
                                 fakelink_addr(&link_, NODE_SERVER), &a, on_bound, o, link_.now),
                     0);
}

static rpc2_conn *must_bind(void)
{
    struct outcome o;
    start_bind(&o);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 30 * SEC));
    ck_assert_int_eq(o.status, 0);
    return o.conn;
}

static void start_incr(rpc2_conn *c, uint32_t proc, incr_args *a, unsigned *result,
                       struct outcome *o)
{
    struct engine_call_args ca = {.proc = proc,
                                  .encode_args = (xdrproc_t)xdr_incr_args,
                                  .args = a,
                                  .decode_result = (xdrproc_t)xdr_u_int,
                                  .result = result};
    memset(o, 0, sizeof *o);
    ck_assert_int_eq(engine_call(c, &ca, on_called, o, link_.now), 0);
}

/* With cookies required, a bind takes two round trips; the server holds
 * nothing after the first; the cookie round is no loss to the client. */
START_TEST(cookie_bind_takes_two_round_trips_and_no_state_before)
{
    struct conntable_limits l = limits(SIZE_MAX, 0);
    struct engine *s = setup_link(3, &l);
    struct engine *c = fakelink_engine(&link_, NODE_CLIENT);
    struct outcome o;

    start_bind(&o);
    /* One delay: the BIND_REQ is in, the BIND_COOKIE on its way. */
    fakelink_run(&link_, NULL, link_.now + 1500);
    ck_assert(!o.done);
    ck_assert_uint_eq(engine_stats(s)->cookies_sent, 1);
    ck_assert_uint_eq(engine_conn_count(s), 0);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 30 * SEC));
    ck_assert_int_eq(o.status, 0);
    ck_assert_uint_eq(link_.sent, 4); /* BIND_REQ, BIND_COOKIE, BIND_REQ, BIND_OK */
    ck_assert_uint_eq(engine_conn_count(s), 1);
    ck_assert_uint_eq(s->conns.half_open, 0);
    ck_assert_uint_eq(engine_stats(s)->binds_cookie_missing, 1);
    ck_assert_uint_eq(engine_stats(c)->retransmissions, 0);
    ck_assert_uint_gt(rpc2_conn_srtt_us(o.conn), 0);

    incr_args a = {.client = 1};
    unsigned r = 0;
    struct outcome co;
    start_incr(o.conn, TEST_INCR, &a, &r, &co);
    ck_assert(fakelink_run(&link_, &co.done, link_.now + 30 * SEC));
    ck_assert_int_eq(co.status, 0);
    ck_assert_uint_eq(r, 1);
    fakelink_dispose(&link_);
}
END_TEST

/* Under loss the cookie exchange still completes. */
START_TEST(cookie_bind_survives_loss)
{
    struct conntable_limits l = limits(SIZE_MAX, 0);
    struct engine *s = setup_link(100 + (uint64_t)_i, &l);
    for (int i = 0; i < 2; i++)
        link_.faults[i] = (struct fakelink_faults){
            .loss = 0.3, .dup = 0.1, .reorder = 0.2, .delay_us = 1000, .max_extra_us = 20000};
    for (int i = 0; i < 5; i++)
        (void)must_bind();
    ck_assert_uint_eq(engine_conn_count(s), 5);
    ck_assert_uint_eq(s->conns.half_open, 0);
    fakelink_dispose(&link_);
}
END_TEST

/* Past max_running a new call is answered BUSY and not run; it runs, once,
 * when a running one ends, and nothing fails meanwhile. */
START_TEST(calls_past_max_running_wait_with_busy)
{
    struct conntable_limits l = limits(SIZE_MAX, SIZE_MAX);
    l.max_running = 1;
    struct engine *s = setup_link(4, &l);
    rpc2_conn *c1 = must_bind(), *c2 = must_bind();
    incr_args a1 = {.client = 1}, a2 = {.client = 2};
    unsigned r1 = 0, r2 = 0;
    struct outcome o1, o2;

    start_incr(c1, TEST_SLOW_INCR, &a1, &r1, &o1);
    fakelink_run(&link_, NULL, link_.now + 10 * MS);
    ck_assert_ptr_nonnull(srv.held);
    start_incr(c2, TEST_INCR, &a2, &r2, &o2);
    fakelink_run(&link_, NULL, link_.now + 5 * SEC);
    ck_assert(!o1.done && !o2.done);
    ck_assert_uint_eq(srv.executions[2], 0);
    ck_assert_uint_gt(engine_stats(s)->calls_deferred, 0);
    ck_assert_uint_eq(engine_stats(s)->requests_running, 1);

    ck_assert_int_eq(engine_reply(srv.held, 0, link_.now), 0);
    srv.held = NULL;
    ck_assert(fakelink_run(&link_, &o1.done, link_.now + 30 * SEC));
    ck_assert(fakelink_run(&link_, &o2.done, link_.now + 30 * SEC));
    ck_assert_int_eq(o1.status, 0);
    ck_assert_int_eq(o2.status, 0);
    ck_assert_uint_eq(r2, 1);
    ck_assert_uint_eq(srv.executions[2], 1);
    ck_assert_uint_eq(engine_stats(s)->requests_running, 0);
    fakelink_dispose(&link_);
}
END_TEST

static rpc2_conn *must_bind_as(const char *identity)
{
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .identity = identity};
    rpc2_conn *conn;

    ck_assert_int_eq(fakelink_bind(&link_, NODE_CLIENT, NODE_SERVER, &a, 30 * SEC, &conn), 0);
    return conn;
}

/* One identity (_i 0) or one address (_i 1) past its share of the calls
 * running waits with BUSY while another identity's call runs; its call runs,
 * once, when its own running call ends. */
START_TEST(one_user_cannot_take_every_slot)
{
    struct conntable_limits l = limits(SIZE_MAX, SIZE_MAX);
    struct engine *s = setup_link(6, &l);
    if (_i == 0)
        s->cfg.max_running_per_identity = 1;
    else
        s->cfg.max_running_per_address = 1;
    rpc2_conn *c1 = must_bind_as("tester"), *c2 = must_bind_as("tester");
    rpc2_conn *c3 = must_bind_as("other");
    incr_args a1 = {.client = 1}, a2 = {.client = 2}, a3 = {.client = 3};
    unsigned r1 = 0, r2 = 0, r3 = 0;
    struct outcome o1, o2, o3;

    start_incr(c1, TEST_SLOW_INCR, &a1, &r1, &o1);
    fakelink_run(&link_, NULL, link_.now + 10 * MS);
    ck_assert_ptr_nonnull(srv.held);
    start_incr(c2, TEST_INCR, &a2, &r2, &o2);
    start_incr(c3, TEST_INCR, &a3, &r3, &o3);
    fakelink_run(&link_, NULL, link_.now + 5 * SEC);
    ck_assert(!o2.done);
    ck_assert_uint_eq(srv.executions[2], 0);
    if (_i == 0) { /* another identity is not held up by tester's share */
        ck_assert(o3.done);
        ck_assert_int_eq(o3.status, 0);
        ck_assert_uint_gt(engine_stats(s)->calls_deferred_identity, 0);
    } else { /* the same address: "other" waits as well */
        ck_assert(!o3.done);
        ck_assert_uint_gt(engine_stats(s)->calls_deferred_address, 0);
    }

    ck_assert_int_eq(engine_reply(srv.held, 0, link_.now), 0);
    srv.held = NULL;
    ck_assert(fakelink_run(&link_, &o2.done, link_.now + 30 * SEC));
    ck_assert(fakelink_run(&link_, &o3.done, link_.now + 30 * SEC));
    ck_assert_int_eq(o2.status, 0);
    ck_assert_uint_eq(srv.executions[2], 1);
    ck_assert_uint_eq(srv.executions[3], 1);
    ck_assert_uint_eq(engine_stats(s)->requests_running, 0);
    fakelink_dispose(&link_);
}
END_TEST

/* Saved replies of all connections share one bound: a reply that does not
 * fit is not kept (and counted); bytes come back as clients move on. */
START_TEST(saved_replies_share_one_bound)
{
    struct conntable_limits l = limits(SIZE_MAX, SIZE_MAX);
    l.max_saved_bytes = 12; /* one INCR reply: status, length, u_int */
    struct engine *s = setup_link(5, &l);
    rpc2_conn *c1 = must_bind(), *c2 = must_bind();
    incr_args a1 = {.client = 1}, a2 = {.client = 2};
    unsigned r = 0;
    struct outcome o;

    start_incr(c1, TEST_INCR, &a1, &r, &o);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 30 * SEC));
    ck_assert_uint_eq(engine_stats(s)->saved_reply_bytes, 12);
    start_incr(c2, TEST_INCR, &a2, &r, &o);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 30 * SEC));
    ck_assert_int_eq(o.status, 0); /* not kept is not lost: it was sent */
    ck_assert_uint_eq(engine_stats(s)->replies_not_saved, 1);
    ck_assert_uint_eq(engine_stats(s)->saved_reply_bytes, 12);

    engine_unbind(c1, link_.now); /* c1's saved reply goes with it */
    fakelink_run(&link_, NULL, link_.now + SEC);
    ck_assert_uint_eq(engine_stats(s)->saved_reply_bytes, 0);
    start_incr(c2, TEST_INCR, &a2, &r, &o);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 30 * SEC));
    ck_assert_uint_eq(engine_stats(s)->saved_reply_bytes, 12);
    fakelink_dispose(&link_);
}
END_TEST

/* ---- a real context, flooded while its loop sleeps --------------------------------- */

static void run_until_quiet(struct ev_loop *loop, rpc2_ctx *ctx)
{
    struct rpc2_ctx_stats st;
    uint64_t before;
    /* A socket with anything queued is readable, so a turn of the loop
     * that reads nothing means there was nothing left. */
    do {
        rpc2_ctx_stats(ctx, &st);
        before = st.packets_received;
        ev_run(loop, EVRUN_NOWAIT);
        rpc2_ctx_stats(ctx, &st);
    } while (st.packets_received != before);
}

START_TEST(kernel_drops_on_a_flooded_socket_are_counted)
{
    enum { FLOOD = 50000 };
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct rpc2_params p;
    rpc2_ctx *ctx;
    struct rpc2_ctx_stats st;

    ck_assert_ptr_nonnull(loop);
    rpc2_params_init(&p);
    p.listen[p.n_listen++] = "127.0.0.1:0";
    p.loop = loop;
    ck_assert_int_eq(rpc2_ctx_new(&p, &ctx), 0);
    struct rpc2_addr to = v4("127.0.0.1", (uint16_t)rpc2_ctx_port(ctx));
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(tx, 0);
    uint8_t junk[16] = {0};

    /* The loop is not run: nobody reads while the buffer fills. On loopback
     * each datagram is queued or dropped before sendto returns. */
    for (int i = 0; i < FLOOD; i++)
        ck_assert_int_eq(sendto(tx, junk, sizeof junk, 0, (struct sockaddr *)&to.ss, to.len),
                         (ssize_t)sizeof junk);
    run_until_quiet(loop, ctx);
    /* The drops are learnt from the next datagram queued after them. */
    ck_assert_int_eq(sendto(tx, junk, sizeof junk, 0, (struct sockaddr *)&to.ss, to.len),
                     (ssize_t)sizeof junk);
    run_until_quiet(loop, ctx);
    rpc2_ctx_stats(ctx, &st);
    ck_assert_uint_gt(st.rx_dropped, 0);
    ck_assert_uint_eq(st.rx_dropped + st.packets_received, FLOOD + 1);
    ck_assert_uint_eq(st.rejected_short, st.packets_received);
    close(tx);
    rpc2_ctx_free(ctx);
    ev_loop_destroy(loop);
}
END_TEST

static Suite *limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, per_address_limit_refuses_the_next_bind_from_that_address_only);
    tcase_add_test(tc, total_limit_refuses_binds_and_keeps_the_others);
    tcase_add_test(tc, forged_and_stale_cookies_are_refused_and_counted);
    tcase_add_test(tc, cookies_are_required_only_past_the_half_open_budget);
    tcase_add_test(tc, half_open_connections_expire_when_idle);
    tcase_add_test(tc, answers_are_never_larger_than_what_caused_them);
    tcase_add_test(tc, cookie_bind_takes_two_round_trips_and_no_state_before);
    tcase_add_loop_test(tc, cookie_bind_survives_loss, 0, 5);
    tcase_add_test(tc, calls_past_max_running_wait_with_busy);
    tcase_add_loop_test(tc, one_user_cannot_take_every_slot, 0, 2);
    tcase_add_test(tc, saved_replies_share_one_bound);
    tcase_add_test(tc, kernel_drops_on_a_flooded_socket_are_counted);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(limits_suite());
}
