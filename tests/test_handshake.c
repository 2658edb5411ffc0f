/*
 * test_handshake.c - what the bind costs a stranger and what a stranger
 * can do to it, in memory: a recorded client hello replayed from a
 * thousand forged addresses costs no key exchange (counted) and cannot
 * poison the genuine one; the server is no reflector (bytes answered to a
 * flood of forged datagrams from one prefix, against bytes received); an
 * unprotected BIND_REQ retransmission changes nothing; the client believes
 * only bind answers that echo one of its BIND_REQs; UNBIND at auth and
 * encrypt ends both sides with one datagram each way and no
 * authentication failure; and a good protected datagram never pays the
 * damage test of the level-none check.
 *
 * The server is driven by hand (datagrams from any address, every answer
 * counted) or through the fake link with a real client engine. No sleeps.
 */
#define _GNU_SOURCE
#include <check.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakelink.h"
#include "hash.h"
#include "testproto.h"
#include "check_run.h"

#define MS 1000ull
#define SEC 1000000ull

/* ---- the damage test, counted --------------------------------------------- */

/* packet.c's test for a level-none datagram damaged in its security byte
 * is the only caller of XXH3_createState on the receive path: counting the
 * calls counts the times that test (an allocation and a full XXH3 pass)
 * ran. This definition takes the place of libxxhash's for the program. */
static unsigned xxh3_states;

XXH3_state_t *XXH3_createState(void)
{
    static XXH3_state_t *(*real)(void);
    if (!real) {
        void *sym = dlsym(RTLD_NEXT, "XXH3_createState");
        memcpy(&real, &sym, sizeof real);
    }
    xxh3_states++;
    return real ? real() : NULL;
}

/* ---- configuration, secrets and procedures -------------------------------- */

static const unsigned char alice_key[RPC2_SECRET_BYTES] = {
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int secret_of(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                     void *arg)
{
    (void)arg;
    if (len != 5 || memcmp(identity, "alice", 5) != 0)
        return RPC2_ENOENT;
    memcpy(secret, alice_key, RPC2_SECRET_BYTES);
    return 0;
}

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 10 * SEC,
    .idle_timeout_us = 60 * SEC,
    .max_connections = 10000,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 42,
    .secret_for = secret_of,
};

static void h_add(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)arg;
    *(int *)result = ((add_args *)args)->a + ((add_args *)args)->b;
    engine_reply(req, 0, req->engine->now);
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_ADD,
     .decode_args = (xdrproc_t)xdr_add_args,
     .args_size = sizeof(add_args),
     .encode_result = (xdrproc_t)xdr_int,
     .result_size = sizeof(int),
     .async_handler = h_add},
};

/* ---- an engine driven by hand: every answer counted -------------------------- */

#define KEPT 8
static struct {
    uint64_t packets, bytes;
    size_t len[KEPT];
    uint8_t data[KEPT][1024]; /* the last KEPT answers, from the start */
    struct rpc2_addr to[KEPT];
} out;

static void count_out(struct outq *q, void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < q->count; i++) {
        unsigned k = (unsigned)(out.packets++ % KEPT);
        out.bytes += q->slots[i].len;
        out.len[k] = q->slots[i].len;
        out.to[k] = q->slots[i].to;
        memcpy(out.data[k], q->slots[i].data, q->slots[i].len < 1024 ? q->slots[i].len : 1024);
    }
    q->count = 0;
}

/* The nth answer from the end (0: the last one). */
static const uint8_t *last_answer(unsigned back, struct pkt_hdr *h)
{
    ck_assert_uint_gt(out.packets, back);
    unsigned k = (unsigned)((out.packets - 1 - back) % KEPT);
    ck_assert_int_eq(pkt_hdr_decode(out.data[k], out.len[k], h), PKT_OK);
    return out.data[k] + PKT_HDR_SIZE;
}

static struct engine *server_new(size_t cookie_threshold)
{
    struct engine *e = engine_new(&cfg, NULL, NULL, NULL, count_out, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(engine_export(e, TEST_SUBSYS, procs, 1, NULL), 0);
    struct conntable_limits l = {.max_per_addr = SIZE_MAX,
                                 .cookie_threshold = cookie_threshold,
                                 .max_running = SIZE_MAX,
                                 .max_saved_bytes = UINT64_MAX};
    conntable_set_limits(&e->conns, &l);
    memset(&out, 0, sizeof out);
    return e;
}

static struct rpc2_addr v4(uint32_t ip, uint16_t port)
{
    struct rpc2_addr a;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    memset(&a, 0, sizeof a);
    sin.sin_addr.s_addr = htonl(ip);
    memcpy(&a.ss, &sin, sizeof sin);
    a.len = sizeof sin;
    return a;
}

static void deliver(struct engine *e, const struct rpc2_addr *from, const uint8_t *pkt, size_t len,
                    uint64_t now)
{
    static uint8_t copy[PKT_MAX_DATAGRAM]; /* engine_receive may decrypt in place */
    memcpy(copy, pkt, len);
    engine_receive(e, from, copy, len, now);
    engine_flush(e);
}

/* A level-none datagram: header, body, check. */
static size_t datagram(uint8_t *buf, uint8_t type, uint32_t dst, uint32_t src, uint32_t seq,
                       uint32_t ts, const uint8_t *body, size_t body_len)
{
    struct pkt_hdr h = {.version = PKT_VERSION,
                        .type = type,
                        .dst_conn = dst,
                        .src_conn = src,
                        .seq = seq,
                        .ts = ts,
                        .body_len = (uint32_t)body_len,
                        .trailer_len = PKT_CHECK_SIZE};
    pkt_hdr_encode(&h, buf);
    if (body_len)
        memcpy(buf + PKT_HDR_SIZE, body, body_len);
    size_t len = pkt_seal(buf, PKT_HDR_SIZE + body_len);
    ck_assert_uint_gt(len, 0);
    return len;
}

/* A BIND_REQ as a client would send it: above none, with its hello. */
static size_t bind_req(uint8_t *buf, uint32_t src, uint32_t ts, const uint8_t *hello,
                       size_t hello_len, const uint8_t *cookie, size_t cookie_len)
{
    uint8_t body[1024];
    size_t body_len;
    struct pkt_bind_req m = {.subsystem = TEST_SUBSYS,
                             .cookie = cookie,
                             .cookie_len = (uint32_t)cookie_len,
                             .identity = (const uint8_t *)(hello ? "alice" : ""),
                             .identity_len = hello ? 5 : 0,
                             .hello = hello,
                             .hello_len = (uint32_t)hello_len};
    ck_assert_int_eq(pkt_bind_req_encode(&m, body, sizeof body, &body_len), PKT_OK);
    return datagram(buf, PKT_BIND_REQ, 0, src, 0, ts, body, body_len);
}

/* alice's hello for a bind from client id src (its ephemeral key fresh). */
static size_t alice_hello(struct sec_hs *hs, uint32_t src, int level, uint8_t *hello)
{
    struct sec_psk psk;
    size_t len;
    memcpy(psk.key, alice_key, sizeof psk.key);
    struct sec_binding b = {.client_conn = src, .subsystem = TEST_SUBSYS};
    ck_assert_int_eq(sec_client_hello(hs, "alice", 5, &psk, level, SEC_SUITES_ALL, &b, hello,
                                      SEC_HELLO_MAX, &len),
                     0);
    return len;
}

/* ---- replays ---------------------------------------------------------------------- */

/*
 * A client's hello, recorded on the path, replayed from 1,000 forged
 * addresses (1,000 prefixes): not one key exchange, not one connection.
 */
START_TEST(replayed_hello_costs_no_key_exchange)
{
    struct engine *e = server_new(SIZE_MAX);
    const struct rpc2_ctx_stats *st = engine_stats(e);
    struct sec_hs hs;
    uint8_t hello[SEC_HELLO_MAX], pkt[2048];
    size_t hlen = alice_hello(&hs, 0x1111, RPC2_SEC_AUTH, hello);
    size_t len = bind_req(pkt, 0x1111, 1000, hello, hlen, NULL, 0);
    struct rpc2_addr genuine = v4(0xc0000201, 4000);
    struct pkt_hdr h;

    deliver(e, &genuine, pkt, len, SEC);
    (void)last_answer(0, &h);
    ck_assert_int_eq(h.type, PKT_BIND_OK);
    ck_assert_uint_eq(st->key_exchanges, 1);

    for (uint32_t i = 0; i < 1000; i++) {
        struct rpc2_addr forged = v4(0x0a000000u + (i << 8) + 7, (uint16_t)(1000 + i));
        deliver(e, &forged, pkt, len, SEC + i * MS);
    }
    ck_assert_uint_eq(st->key_exchanges, 1);
    ck_assert_uint_eq(st->binds_refused_replay, 1000);
    ck_assert_uint_eq(engine_conn_count(e), 1);
    ck_assert_uint_eq(e->conns.half_open, 1);
    sec_hs_wipe(&hs);
    engine_free(e);
}
END_TEST

/* A hello recorded from a bind that never completed (the genuine client
 * got a cookie and went away): its replays cost at most one key exchange
 * in all, whatever their number. */
START_TEST(never_accepted_hello_costs_one_key_exchange_at_most)
{
    struct engine *e = server_new(SIZE_MAX);
    const struct rpc2_ctx_stats *st = engine_stats(e);
    struct sec_hs hs;
    uint8_t hello[SEC_HELLO_MAX], pkt[2048];
    size_t hlen = alice_hello(&hs, 0x2222, RPC2_SEC_ENCRYPT, hello);
    size_t len = bind_req(pkt, 0x2222, 1000, hello, hlen, NULL, 0);
    for (uint32_t i = 0; i < 1000; i++) {
        struct rpc2_addr forged = v4(0x0b000000u + (i << 8) + 1, 999);
        deliver(e, &forged, pkt, len, SEC + i * MS);
    }
    ck_assert_uint_eq(st->key_exchanges, 1);
    ck_assert_uint_eq(st->binds_refused_replay, 999);
    ck_assert_uint_le(engine_conn_count(e), 1);
    sec_hs_wipe(&hs);
    engine_free(e);
}
END_TEST

/* What a stranger sends first with a genuine client's Ce (a hello that
 * fails proof1: changed in its binding, or under another secret) is not
 * remembered: the genuine hello, arriving after, binds. */
START_TEST(strangers_cannot_poison_the_replay_cache)
{
    struct engine *e = server_new(SIZE_MAX);
    const struct rpc2_ctx_stats *st = engine_stats(e);
    struct sec_hs hs;
    uint8_t hello[SEC_HELLO_MAX], bad[SEC_HELLO_MAX], pkt[2048];
    size_t hlen = alice_hello(&hs, 0x3333, RPC2_SEC_AUTH, hello);
    struct rpc2_addr stranger = v4(0x0c000001, 1), genuine = v4(0xc0000202, 2);
    struct pkt_hdr h;

    /* the same hello for another client id: the binding changed, proof1 fails */
    size_t len = bind_req(pkt, 0x3334, 5, hello, hlen, NULL, 0);
    deliver(e, &stranger, pkt, len, SEC);
    /* the hello with its proof changed */
    memcpy(bad, hello, hlen);
    bad[hlen - 1] ^= 1;
    len = bind_req(pkt, 0x3333, 6, bad, hlen, NULL, 0);
    deliver(e, &stranger, pkt, len, SEC);
    ck_assert_uint_eq(st->binds_refused_auth, 2);
    ck_assert_uint_eq(st->key_exchanges, 0);

    len = bind_req(pkt, 0x3333, 7, hello, hlen, NULL, 0);
    deliver(e, &genuine, pkt, len, SEC);
    (void)last_answer(0, &h);
    ck_assert_int_eq(h.type, PKT_BIND_OK);
    ck_assert_uint_eq(st->binds_refused_replay, 0);
    sec_hs_wipe(&hs);
    engine_free(e);
}
END_TEST

/* ---- reflection ---------------------------------------------------------------------- */

/* One forged datagram of kind k from `from`, each a kind that gets a
 * stateless answer; returns its length. */
static size_t forged(uint8_t *buf, unsigned k, uint32_t n)
{
    uint8_t body[16] = {0};
    switch (k % 5) {
    case 0: /* a CALL to a connection that does not exist: UNKNOWN_CONN */
        return datagram(buf, PKT_CALL, 0x7000000u + n, n + 1, 1, n, body, 8);
    case 1: /* an UNBIND of one: UNBIND_ACK */
        return datagram(buf, PKT_UNBIND, 0x7000000u + n, n + 1, 1, n, NULL, 0);
    case 2: { /* a foreign version: VERSION_ERR */
        size_t len = datagram(buf, PKT_CALL, 0x7000000u + n, n + 1, 1, n, body, 8);
        buf[0] = 9; /* checked as sent: not one of ours damaged in that byte */
        pkt_check_write(buf, len - PKT_CHECK_SIZE);
        return len;
    }
    case 3: /* a bind without a cookie while cookies are required: BIND_COOKIE */
        return bind_req(buf, n + 1, n, NULL, 0, NULL, 0);
    default: { /* a bind for a subsystem nobody exports: BIND_ERR */
        struct pkt_bind_req m = {.subsystem = TEST_SUBSYS + 1};
        size_t body_len;
        uint8_t b[64];
        ck_assert_int_eq(pkt_bind_req_encode(&m, b, sizeof b, &body_len), PKT_OK);
        return datagram(buf, PKT_BIND_REQ, 0, n + 1, 0, n, b, body_len);
    }
    }
}

/*
 * 10,000 forged datagrams in one second from hosts of one /24, each of a
 * kind that gets a stateless answer: the answers are far fewer bytes than
 * the flood (at most the bucket, then the rate, then one cookie in two),
 * and another prefix is answered as before.
 */
START_TEST(flood_from_one_prefix_is_not_reflected)
{
    struct engine *e = server_new(0); /* cookies always */
    uint8_t pkt[2048];
    uint64_t received = 0, t0 = 10 * SEC;
    const unsigned n = 10000;
    uint64_t answered_at_burst = 0, received_at_burst = 0;

    for (uint32_t i = 0; i < n; i++) {
        struct rpc2_addr from = v4(0xcb007100u + (i % 250) + 1, (uint16_t)(2000 + i));
        size_t len = forged(pkt, i, i);
        deliver(e, &from, pkt, len, t0 + (uint64_t)i * SEC / n);
        received += len;
        if (i == 2 * RATELIMIT_BURST) {
            answered_at_burst = out.bytes;
            received_at_burst = received;
        }
    }
    double ratio = (double)out.bytes / (double)received;
    double after = (double)(out.bytes - answered_at_burst) / (double)(received - received_at_burst);
    fprintf(stderr,
            "flood of %u forged datagrams from one /24 in 1 s: %llu bytes in, %llu answers "
            "(%llu bytes) out: ratio %.3f; %.3f once the bucket is empty; %llu left unsent\n",
            n, (unsigned long long)received, (unsigned long long)out.packets,
            (unsigned long long)out.bytes, ratio, after,
            (unsigned long long)engine_stats(e)->answers_limited);
    ck_assert(ratio <= 1.0);
    ck_assert(after < 0.2);
    ck_assert_uint_ge(engine_stats(e)->answers_limited, n / 2);

    /* another prefix is not held up by it */
    uint64_t before = out.packets;
    struct rpc2_addr other = v4(0xcb007201, 9);
    for (unsigned k = 0; k < 5; k++)
        deliver(e, &other, pkt, forged(pkt, k, 77), t0 + SEC);
    ck_assert_uint_eq(out.packets - before, 5);
    engine_free(e);
}
END_TEST

/* ---- retransmitted binds -------------------------------------------------------------- */

/*
 * A BIND_REQ of a bound connection sent again (by anyone who knows the
 * client's address and id: it is not protected) gets the same BIND_OK,
 * echoing its own ts, and changes nothing: not what the connection echoes,
 * not when its peer was last heard (so it cannot keep the connection from
 * expiring).
 */
START_TEST(bind_retransmission_changes_no_state)
{
    struct engine *e = server_new(SIZE_MAX);
    struct sec_hs hs;
    uint8_t hello[SEC_HELLO_MAX], pkt[2048], first_body[256];
    size_t hlen = alice_hello(&hs, 0x4444, RPC2_SEC_AUTH, hello);
    struct rpc2_addr client = v4(0xc0000203, 3);
    struct pkt_hdr h;
    uint64_t t = SEC;

    deliver(e, &client, pkt, bind_req(pkt, 0x4444, 100, hello, hlen, NULL, 0), t);
    const uint8_t *body = last_answer(0, &h);
    ck_assert_int_eq(h.type, PKT_BIND_OK);
    uint32_t server_id = h.src_conn, first_len = h.body_len;
    memcpy(first_body, body, h.body_len);
    rpc2_conn *c = (rpc2_conn *)conntable_find(&e->conns, server_id);
    ck_assert_ptr_nonnull(c);
    rpc2_conn before = *c;

    for (int i = 1; i <= 5; i++) {
        uint32_t ts = 100 + (uint32_t)i * 7;
        deliver(e, &client, pkt, bind_req(pkt, 0x4444, ts, hello, hlen, NULL, 0),
                t + (uint64_t)i * 10 * SEC);
        body = last_answer(0, &h);
        ck_assert_int_eq(h.type, PKT_BIND_OK);
        ck_assert_uint_eq(h.src_conn, server_id);
        ck_assert_uint_eq(h.ts_echo, ts);
        ck_assert_uint_eq(h.body_len, first_len);
        ck_assert_mem_eq(body, first_body, first_len);
        ck_assert_uint_eq(c->last_heard, before.last_heard);
        ck_assert_uint_eq(c->peer_ts, before.peer_ts);
        ck_assert_uint_eq(c->peer_ts_at, before.peer_ts_at);
        ck_assert_int_eq(c->link.half_open, 1);
    }
    /* the idle timeout counts from the bind itself */
    engine_timeout(e, t + cfg.idle_timeout_us);
    ck_assert_uint_eq(engine_conn_count(e), 0);
    ck_assert_uint_eq(engine_stats(e)->key_exchanges, 1);
    sec_hs_wipe(&hs);
    engine_free(e);
}
END_TEST

/* ---- the client's check of bind answers' echo ---------------------------------------------- */

static struct {
    int done, status;
    rpc2_conn *conn;
} bound;

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    (void)arg;
    bound.done = 1;
    bound.status = status;
    bound.conn = conn;
}

/* A bind answer that echoes none of the client's BIND_REQs is not believed
 * (a forger off the path must guess the ts too); one that does is. */
START_TEST(client_checks_bind_answers_echo)
{
    struct engine *cl = engine_new(&cfg, NULL, NULL, NULL, count_out, NULL);
    struct rpc2_addr server = v4(0xc0000204, 4);
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .identity = "x"};
    struct pkt_hdr req;
    uint8_t pkt[256], body[4] = {0xff, 0xff, 0xff, 0xf7}; /* RPC2_ENOSUBSYS */
    memset(&out, 0, sizeof out);
    memset(&bound, 0, sizeof bound);
    ck_assert_ptr_nonnull(cl);

    ck_assert_int_eq(engine_bind(cl, &server, &a, on_bound, NULL, 5 * SEC), 0);
    engine_flush(cl);
    (void)last_answer(0, &req);
    ck_assert_int_eq(req.type, PKT_BIND_REQ);
    ck_assert_uint_eq(req.ts, (uint32_t)(5 * SEC));

    /* a refusal and a cookie with the right ids and a wrong echo */
    size_t len = datagram(pkt, PKT_BIND_ERR, req.src_conn, 0, 0, 9, body, sizeof body);
    pkt[31] = 0x41; /* ts_echo: not one of ours */
    pkt_check_write(pkt, len - PKT_CHECK_SIZE);
    deliver(cl, &server, pkt, len, 5 * SEC + MS);
    uint8_t cookie[16] = {0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    len = datagram(pkt, PKT_BIND_COOKIE, req.src_conn, 0, 0, 9, cookie, sizeof cookie);
    deliver(cl, &server, pkt, len, 5 * SEC + MS);
    ck_assert_int_eq(bound.done, 0);
    ck_assert_uint_eq(out.packets, 1); /* the cookie was not taken: no new BIND_REQ */
    ck_assert_uint_eq(engine_stats(cl)->rejected_other, 2);

    /* the genuine refusal echoes the BIND_REQ's ts */
    len = datagram(pkt, PKT_BIND_ERR, req.src_conn, 0, 0, 9, body, sizeof body);
    struct pkt_hdr h;
    ck_assert_int_eq(pkt_hdr_decode(pkt, len, &h), PKT_OK);
    h.ts_echo = req.ts;
    pkt_hdr_encode(&h, pkt);
    pkt_check_write(pkt, len - PKT_CHECK_SIZE);
    deliver(cl, &server, pkt, len, 5 * SEC + 2 * MS);
    ck_assert_int_eq(bound.done, 1);
    ck_assert_int_eq(bound.status, RPC2_ENOSUBSYS);
    engine_free(cl);
}
END_TEST

/* ---- through the fake link: unbind, and the damage test ----------------------------------- */

enum { NODE_CLIENT = 0, NODE_SERVER = 1 };
static struct fakelink link_;

static rpc2_conn *secure_bind(int level)
{
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS,
                                 .security = (enum rpc2_security)level,
                                 .identity = "alice",
                                 .secret = alice_key};
    memset(&bound, 0, sizeof bound);
    ck_assert_int_eq(engine_bind(fakelink_engine(&link_, NODE_CLIENT),
                                 fakelink_addr(&link_, NODE_SERVER), &a, on_bound, NULL, link_.now),
                     0);
    ck_assert(fakelink_run(&link_, &bound.done, link_.now + 30 * SEC));
    ck_assert_int_eq(bound.status, 0);
    return bound.conn;
}

static void on_called(int status, void *result, void *arg)
{
    (void)result;
    ck_assert_int_eq(status, 0);
    *(int *)arg = 1;
}

static void add_call(rpc2_conn *c)
{
    add_args args = {.a = 2, .b = 40};
    int result = 0, done = 0;
    struct engine_call_args a = {.proc = TEST_ADD,
                                 .encode_args = (xdrproc_t)xdr_add_args,
                                 .args = &args,
                                 .decode_result = (xdrproc_t)xdr_int,
                                 .result = &result};
    ck_assert_int_eq(engine_call(c, &a, on_called, &done, link_.now), 0);
    ck_assert(fakelink_run(&link_, &done, link_.now + 30 * SEC));
    ck_assert_int_eq(result, 42);
}

static void link_up(uint64_t seed)
{
    fakelink_init(&link_, seed);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, NULL, NULL);
    ck_assert_int_eq(
        engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs, 1, NULL), 0);
    for (int i = 0; i < 2; i++)
        link_.faults[i] = (struct fakelink_faults){.delay_us = 1000};
}

/*
 * At auth and encrypt, UNBIND goes once and its ACK comes back sealed: both
 * ends free the connection, nothing is resent and no datagram fails
 * authentication. When that ACK is lost, the retry's ACK comes from a
 * server that no longer has the keys; it is taken all the same (it can end
 * only what the client has already ended) and not counted as a forgery.
 */
START_TEST(unbind_at_protected_levels_without_auth_failures)
{
    int level = _i % 2 ? RPC2_SEC_ENCRYPT : RPC2_SEC_AUTH, lose_ack = _i >= 2;
    link_up(70 + (uint64_t)_i);
    struct engine *ce = fakelink_engine(&link_, NODE_CLIENT);
    struct engine *se = fakelink_engine(&link_, NODE_SERVER);
    rpc2_conn *c = secure_bind(level);
    add_call(c);
    uint64_t sent = engine_stats(ce)->packets_sent;
    if (lose_ack)
        link_.faults[NODE_SERVER].loss = 1.0;
    engine_unbind(c, link_.now);
    fakelink_run(&link_, NULL, link_.now + 5 * MS);
    link_.faults[NODE_SERVER].loss = 0;
    fakelink_run(&link_, NULL, link_.now + 20 * SEC);

    ck_assert_uint_eq(engine_conn_count(ce), 0);
    ck_assert_uint_eq(engine_conn_count(se), 0);
    ck_assert_uint_eq(engine_stats(ce)->packets_sent - sent, lose_ack ? 2 : 1);
    ck_assert_uint_eq(engine_stats(ce)->rejected_auth, 0);
    ck_assert_uint_eq(engine_stats(se)->rejected_auth, 0);
    ck_assert_uint_eq(engine_stats(se)->unbinds, 1);
    fakelink_dispose(&link_);
}
END_TEST

/*
 * Good protected datagrams never pay the test for a level-none datagram
 * damaged in its security byte (an allocation and a full XXH3 pass each,
 * before); a datagram that is such damage still does, and is still counted
 * as damage (rejected_check), not as a forgery.
 */
START_TEST(damage_test_only_for_refused_datagrams)
{
    link_up(90);
    struct engine *se = fakelink_engine(&link_, NODE_SERVER);
    rpc2_conn *c = secure_bind(RPC2_SEC_ENCRYPT);
    unsigned states = xxh3_states;
    for (int i = 0; i < 50; i++)
        add_call(c);
    ck_assert_uint_ge(engine_stats(se)->packets_received, 50);
    ck_assert_uint_eq(xxh3_states, states);

    /* a level-none CALL whose security byte was damaged into "auth" */
    uint8_t pkt[128], body[16] = {0, 0, 0, TEST_ADD, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2};
    size_t len = datagram(pkt, PKT_CALL, c->link.peer_id, c->link.id, 99, 5, body, sizeof body);
    pkt[3] = RPC2_SEC_AUTH;
    uint64_t check = engine_stats(se)->rejected_check, auth = engine_stats(se)->rejected_auth;
    fakelink_inject(&link_, NODE_CLIENT, NODE_SERVER, pkt, len);
    fakelink_run(&link_, NULL, link_.now + 10 * MS);
    ck_assert_uint_eq(xxh3_states, states + 1);
    ck_assert_uint_eq(engine_stats(se)->rejected_check, check + 1);
    ck_assert_uint_eq(engine_stats(se)->rejected_auth, auth);
    engine_unbind(c, link_.now);
    fakelink_run(&link_, NULL, link_.now + 10 * SEC);
    fakelink_dispose(&link_);
}
END_TEST

static Suite *handshake_suite(void)
{
    Suite *s = suite_create("handshake");
    TCase *tc = tcase_create("stranger");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, replayed_hello_costs_no_key_exchange);
    tcase_add_test(tc, never_accepted_hello_costs_one_key_exchange_at_most);
    tcase_add_test(tc, strangers_cannot_poison_the_replay_cache);
    tcase_add_test(tc, flood_from_one_prefix_is_not_reflected);
    tcase_add_test(tc, bind_retransmission_changes_no_state);
    tcase_add_test(tc, client_checks_bind_answers_echo);
    suite_add_tcase(s, tc);
    tc = tcase_create("link");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, unbind_at_protected_levels_without_auth_failures, 0, 4);
    tcase_add_test(tc, damage_test_only_for_refused_datagrams);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(handshake_suite());
}
