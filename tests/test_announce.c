/*
 * test_announce.c - connecting from the other side (rpc2/announce.c), in
 * memory with the fake link and clock: a server's announcements reach a
 * listening client at their interval with the server's address, the client
 * binds there and calls as over any connection; announcements are never
 * answered, are dropped (and counted) where nobody listens, and a malformed
 * one is refused without reaching the listener.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "announce.h"
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
    .id_seed = 11,
};

static void h_add(rpc2_request *req, void *args, void *result, void *arg)
{
    const add_args *a = args;

    (void)arg;
    *(int *)result = a->a + a->b;
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

static struct fakelink link_;

struct heard {
    int count;
    char host[64];
    unsigned port;
};

static void on_announce(const char *host, unsigned port, void *arg)
{
    struct heard *h = arg;

    h->count++;
    snprintf(h->host, sizeof h->host, "%s", host);
    h->port = port;
}

static struct engine *node(int i)
{
    return fakelink_engine(&link_, i);
}

static void setup(void)
{
    fakelink_init(&link_, 5);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, NULL, NULL);
    ck_assert_int_eq(engine_export(node(NODE_SERVER), TEST_SUBSYS, procs, 1, NULL), 0);
}

static void teardown(void)
{
    fakelink_dispose(&link_);
}

struct outcome {
    int done, status;
    rpc2_conn *conn;
    int result;
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

    o->done = 1;
    o->status = status;
    o->result = *(int *)result;
}

/* The address a listener was told, as the engine would bind to it. */
static struct rpc2_addr told(const struct heard *h)
{
    struct rpc2_addr a = {.len = sizeof(struct sockaddr_in)};
    struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)h->port);
    ck_assert_int_eq(inet_pton(AF_INET, h->host, &sin->sin_addr), 1);
    return a;
}

START_TEST(a_listening_client_hears_the_server_and_binds_to_it)
{
    struct heard h = {0};
    struct outcome b = {0}, c = {0};
    static add_args args = {.a = 40, .b = 2};
    static int result;

    setup();
    announce_listen(node(NODE_CLIENT), on_announce, &h);
    ck_assert_int_eq(announce_add(node(NODE_SERVER), fakelink_addr(&link_, NODE_CLIENT),
                                  1 * SEC, link_.now),
                     0);
    fakelink_flush(&link_);
    fakelink_run(&link_, NULL, link_.now + 10 * SEC + 500 * MS);
    /* one now and one a second for ten seconds */
    ck_assert_int_eq(h.count, 11);
    ck_assert_uint_eq(engine_stats(node(NODE_SERVER))->announces_sent, 11);
    ck_assert_uint_eq(engine_stats(node(NODE_CLIENT))->announces_heard, 11);
    ck_assert_str_eq(h.host, "10.0.0.2");
    ck_assert_uint_eq(h.port, 7000);
    /* never answered: the server heard nothing back */
    ck_assert_uint_eq(engine_stats(node(NODE_SERVER))->packets_received, 0);

    struct rpc2_addr server = told(&h);
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .identity = "tester"};
    ck_assert_int_eq(engine_bind(node(NODE_CLIENT), &server, &a, on_bound, &b, link_.now), 0);
    fakelink_flush(&link_);
    ck_assert(fakelink_run(&link_, &b.done, link_.now + 5 * SEC));
    ck_assert_int_eq(b.status, 0);
    struct engine_call_args ca = {.proc = TEST_ADD,
                                  .encode_args = (xdrproc_t)xdr_add_args,
                                  .args = &args,
                                  .decode_result = (xdrproc_t)xdr_int,
                                  .result = &result};
    ck_assert_int_eq(engine_call(b.conn, &ca, on_called, &c, link_.now), 0);
    fakelink_flush(&link_);
    ck_assert(fakelink_run(&link_, &c.done, link_.now + 5 * SEC));
    ck_assert_int_eq(c.status, 0);
    ck_assert_int_eq(c.result, 42);
    teardown();
}
END_TEST

START_TEST(nobody_listening_drops_them_unanswered)
{
    setup();
    ck_assert_int_eq(announce_add(node(NODE_SERVER), fakelink_addr(&link_, NODE_CLIENT),
                                  2 * SEC, link_.now),
                     0);
    fakelink_flush(&link_);
    fakelink_run(&link_, NULL, link_.now + 5 * SEC);
    ck_assert_uint_eq(engine_stats(node(NODE_CLIENT))->announces_ignored, 3);
    ck_assert_uint_eq(engine_stats(node(NODE_CLIENT))->announces_heard, 0);
    ck_assert_uint_eq(engine_stats(node(NODE_CLIENT))->packets_sent, 0);
    ck_assert_uint_eq(engine_stats(node(NODE_SERVER))->packets_received, 0);
    teardown();
}
END_TEST

/* An ANNOUNCE naming a connection, or with a body, is not one a server
 * sends: refused before the listener hears it. */
START_TEST(a_malformed_announce_is_refused)
{
    struct heard h = {0};
    const struct rpc2_addr *to;

    setup();
    to = fakelink_addr(&link_, NODE_CLIENT);
    announce_listen(node(NODE_CLIENT), on_announce, &h);
    engine_send_bare(node(NODE_SERVER), to, PKT_ANNOUNCE, 5, 0, 0, 0, 0, link_.now);
    engine_send_bare(node(NODE_SERVER), to, PKT_ANNOUNCE, 0, 9, 0, 0, 0, link_.now);
    engine_send_bare(node(NODE_SERVER), to, PKT_ANNOUNCE, 0, 0, 3, 0, 0, link_.now);
    struct pkt_hdr hdr = {.version = PKT_VERSION, .type = PKT_ANNOUNCE};
    static const uint8_t body[4] = {1, 2, 3, 4};
    hdr.body_len = sizeof body;
    engine_send(node(NODE_SERVER), to, &hdr, body);
    fakelink_flush(&link_);
    fakelink_run(&link_, NULL, link_.now + 1 * SEC);
    ck_assert_int_eq(h.count, 0);
    ck_assert_uint_eq(engine_stats(node(NODE_CLIENT))->rejected_other, 4);
    ck_assert_uint_eq(engine_stats(node(NODE_CLIENT))->packets_sent, 0);
    teardown();
}
END_TEST

START_TEST(targets_are_bounded)
{
    setup();
    for (int i = 0; i < RPC2_MAX_ANNOUNCE; i++)
        ck_assert_int_eq(announce_add(node(NODE_SERVER), fakelink_addr(&link_, NODE_CLIENT),
                                      1 * SEC, link_.now),
                         0);
    ck_assert_int_eq(announce_add(node(NODE_SERVER), fakelink_addr(&link_, NODE_CLIENT),
                                  1 * SEC, link_.now),
                     RPC2_ELIMIT);
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("announce");
    TCase *tc = tcase_create("announce");

    tcase_add_test(tc, a_listening_client_hears_the_server_and_binds_to_it);
    tcase_add_test(tc, nobody_listening_drops_them_unanswered);
    tcase_add_test(tc, a_malformed_announce_is_refused);
    tcase_add_test(tc, targets_are_bounded);
    suite_add_tcase(s, tc);
    return check_run(s);
}
