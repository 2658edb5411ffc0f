/*
 * test_refused.c - what an ICMP "port unreachable" may end (rpc2/refused.c),
 * in memory with the fake link and clock: a bind or call waiting on a port
 * that is closed ends at once with RPC2_ECONNREFUSED; a forged, stray or
 * stale error, or one of another kind, ends nothing and is counted, so the
 * dead-peer silence and live connections go on as before.
 */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "bytes.h"
#include "fakelink.h"
#include "testproto.h"
#include "check_run.h"

#define MS 1000ull
#define SEC 1000000ull

enum { NODE_CLIENT = 0, NODE_SERVER = 1 };

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 10 * SEC,
    .idle_timeout_us = 60 * SEC,
    .max_connections = 100,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 7,
};

static rpc2_request *held;

/* A long handler: the test replies when it pleases (BUSY meanwhile). */
static void h_hold(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args;
    (void)arg;
    *(unsigned *)result = 1;
    held = req;
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_SLOW_INCR,
     .decode_args = (xdrproc_t)xdr_incr_args,
     .args_size = sizeof(incr_args),
     .encode_result = (xdrproc_t)xdr_u_int,
     .result_size = sizeof(unsigned),
     .async_handler = h_hold},
};

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

static struct engine *client(void)
{
    return fakelink_engine(&link_, NODE_CLIENT);
}

static const struct rpc2_addr *server_addr(void)
{
    return fakelink_addr(&link_, NODE_SERVER);
}

static void setup(void)
{
    held = NULL;
    fakelink_init(&link_, 3);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, NULL, NULL);
    ck_assert_int_eq(
        engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs, 1, NULL), 0);
}

static void teardown(void)
{
    fakelink_dispose(&link_);
}

static void server_dies(void)
{
    fakelink_restart(&link_, NODE_SERVER, NULL, NULL, NULL);
}

/* The start of a datagram the client sent, as an ICMP error quotes it. */
static size_t quote(uint8_t *q, uint8_t type, uint32_t dst, uint32_t src, uint32_t seq,
                    uint64_t sent_at)
{
    memset(q, 0, PKT_HDR_SIZE);
    q[0] = PKT_VERSION;
    q[1] = type;
    store_u32(q + 8, dst);
    store_u32(q + 12, src);
    store_u32(q + 16, seq);
    store_u32(q + 24, (uint32_t)sent_at);
    return PKT_HDR_SIZE;
}

static void find_binding(struct conn_link *l, void *arg)
{
    rpc2_conn *c = (rpc2_conn *)l;

    if (c->state == CS_BINDING)
        *(rpc2_conn **)arg = c;
}

/* Starts a bind (the server may be dead) and returns its connection. */
static rpc2_conn *start_bind(struct outcome *o)
{
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .identity = "tester"};
    rpc2_conn *c = NULL;

    memset(o, 0, sizeof *o);
    ck_assert_int_eq(engine_bind(client(), server_addr(), &a, on_bound, o, link_.now), 0);
    fakelink_flush(&link_);
    conntable_foreach(&client()->conns, find_binding, &c);
    ck_assert_ptr_nonnull(c);
    return c;
}

static rpc2_conn *must_bind(void)
{
    struct outcome o;

    start_bind(&o);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 5 * SEC));
    ck_assert_int_eq(o.status, 0);
    return o.conn;
}

static void start_slow_call(rpc2_conn *c, struct outcome *o)
{
    static incr_args args = {.client = 1};
    static unsigned result;
    struct engine_call_args a = {.proc = TEST_SLOW_INCR,
                                 .encode_args = (xdrproc_t)xdr_incr_args,
                                 .args = &args,
                                 .decode_result = (xdrproc_t)xdr_u_int,
                                 .result = &result};

    memset(o, 0, sizeof *o);
    ck_assert_int_eq(engine_call(c, &a, on_called, o, link_.now), 0);
    fakelink_flush(&link_);
}

static void refuse(const struct rpc2_addr *to, int err, const uint8_t *q, size_t len)
{
    engine_peer_error(client(), to, err, q, len, link_.now);
    fakelink_flush(&link_);
}

START_TEST(a_bind_to_a_closed_port_ends_at_once)
{
    struct outcome o;
    uint8_t q[PKT_HDR_SIZE];

    setup();
    server_dies();
    uint64_t start = link_.now;
    rpc2_conn *c = start_bind(&o);
    size_t len = quote(q, PKT_BIND_REQ, 0, c->link.id, 0, link_.now);

    refuse(server_addr(), ECONNREFUSED, q, len);
    ck_assert(o.done);
    ck_assert_int_eq(o.status, RPC2_ECONNREFUSED);
    ck_assert_uint_eq(link_.now, start); /* no waiting at all */
    ck_assert_uint_eq(engine_stats(client())->icmp_refused, 1);
    ck_assert_uint_eq(engine_conn_count(client()), 0);
    teardown();
}
END_TEST

/* A router may quote only the UDP header: that ends an unanswered bind to
 * the address, nothing more. */
START_TEST(a_short_quote_ends_an_unanswered_bind)
{
    struct outcome o;
    uint8_t q[8] = {0};

    setup();
    server_dies();
    start_bind(&o);
    refuse(server_addr(), ECONNREFUSED, q, 0);
    ck_assert(o.done);
    ck_assert_int_eq(o.status, RPC2_ECONNREFUSED);
    teardown();
}
END_TEST

/* Wrong connection id, another address, another kind of error, a quote of
 * something else: all counted, none believed; the bind still ends at the
 * dead-peer silence, as without ICMP. */
START_TEST(forged_and_stray_errors_end_no_bind)
{
    struct outcome o;
    uint8_t q[PKT_HDR_SIZE];

    setup();
    server_dies();
    uint64_t start = link_.now;
    rpc2_conn *c = start_bind(&o);
    struct rpc2_addr other = *server_addr();
    ((struct sockaddr_in *)&other.ss)->sin_port ^= 0x0101; /* another port (v4 or v6 alike) */

    refuse(server_addr(), ECONNREFUSED, q, quote(q, PKT_BIND_REQ, 0, c->link.id + 1, 0, start));
    refuse(&other, ECONNREFUSED, q, quote(q, PKT_BIND_REQ, 0, c->link.id, 0, start));
    refuse(server_addr(), EHOSTUNREACH, q, quote(q, PKT_BIND_REQ, 0, c->link.id, 0, start));
    refuse(server_addr(), ECONNREFUSED, q, quote(q, PKT_CALL, 0, c->link.id, 0, start));
    q[0] = PKT_VERSION + 1;
    refuse(server_addr(), ECONNREFUSED, q, PKT_HDR_SIZE);
    ck_assert(!o.done);
    ck_assert_uint_eq(engine_stats(client())->icmp_ignored, 5);
    ck_assert_uint_eq(engine_stats(client())->icmp_refused, 0);
    ck_assert(fakelink_run(&link_, &o.done, start + 60 * SEC));
    ck_assert_int_eq(o.status, RPC2_EDEAD);
    ck_assert_uint_ge(link_.now - start, cfg.dead_peer_us);
    teardown();
}
END_TEST

/* A call whose server answers BUSY: an error quoting its CALL as sent
 * before the server last spoke is old news; one quoting nothing of ours, or
 * a short one, ends nothing on a bound connection. The call completes. */
START_TEST(a_live_connection_ignores_stale_and_short_errors)
{
    struct outcome o;
    uint8_t q[PKT_HDR_SIZE];

    setup();
    rpc2_conn *c = must_bind();
    uint64_t sent = link_.now;

    start_slow_call(c, &o);
    fakelink_run(&link_, NULL, link_.now + 3 * SEC); /* retries, answered BUSY */
    ck_assert_ptr_nonnull(held);
    ck_assert(!o.done);
    ck_assert_uint_gt(c->last_heard, sent);
    refuse(server_addr(), ECONNREFUSED, q,
           quote(q, PKT_CALL, c->link.peer_id, c->link.id, c->call->seq, sent));
    refuse(server_addr(), ECONNREFUSED, q, 0);
    refuse(server_addr(), ECONNREFUSED, q,
           quote(q, PKT_SFTP_DATA, c->link.peer_id, c->link.id, 1, link_.now));
    ck_assert(!o.done);
    ck_assert_uint_eq(engine_stats(client())->icmp_ignored, 3);
    engine_reply(held, 0, link_.now);
    fakelink_flush(&link_);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 5 * SEC));
    ck_assert_int_eq(o.status, 0);
    teardown();
}
END_TEST

/* The server's process is gone: its kernel refuses the CALL, and the call
 * ends at once; the connection is broken for later calls too. */
START_TEST(a_call_to_a_vanished_server_ends_at_once)
{
    struct outcome o;
    uint8_t q[PKT_HDR_SIZE];

    setup();
    rpc2_conn *c = must_bind();
    server_dies();
    fakelink_run(&link_, NULL, link_.now + 1 * SEC);
    uint64_t sent = link_.now;

    start_slow_call(c, &o);
    refuse(server_addr(), ECONNREFUSED, q,
           quote(q, PKT_CALL, c->link.peer_id, c->link.id, c->call->seq, sent));
    ck_assert(o.done);
    ck_assert_int_eq(o.status, RPC2_ECONNREFUSED);
    ck_assert_uint_eq(link_.now, sent);
    struct engine_call_args again = {.proc = TEST_SLOW_INCR};
    ck_assert_int_eq(engine_call(c, &again, on_called, &o, link_.now), RPC2_ECONNREFUSED);
    teardown();
}
END_TEST

static Suite *refused_suite(void)
{
    Suite *s = suite_create("refused");
    TCase *t = tcase_create("icmp");

    tcase_add_test(t, a_bind_to_a_closed_port_ends_at_once);
    tcase_add_test(t, a_short_quote_ends_an_unanswered_bind);
    tcase_add_test(t, forged_and_stray_errors_end_no_bind);
    tcase_add_test(t, a_live_connection_ignores_stale_and_short_errors);
    tcase_add_test(t, a_call_to_a_vanished_server_ends_at_once);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(refused_suite());
}
