/*
 * test_teardown.c - a server's request must survive the end of its
 * connection, or of the whole server, whatever state it is in. A remote
 * client decides when its connection ends, so no teardown path may assume
 * the request got anywhere: queued for a worker, inside its handler, its
 * side effect initialised or not, its transfer streaming or waiting.
 *
 * Two engines on the fake link (fakelink.c) at each security level; the
 * server's "worker pool" is a queue the test runs when it pleases, so a
 * request can be caught in every state.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "fakelink.h"
#include "sftp_type.h"
#include "testproto.h"

#define MS 1000ull
#define SEC 1000000ull
#define SERVER_BYTES (1u << 20)

enum { NODE_CLIENT = 0, NODE_SERVER = 1 };

static const unsigned char secret[RPC2_SECRET_BYTES] = {7, 7, 7};

static int secret_for(const char *identity, size_t len, unsigned char out[RPC2_SECRET_BYTES],
                      void *arg)
{
    (void)arg;
    if (len != 5 || memcmp(identity, "alice", 5) != 0)
        return RPC2_ENOENT;
    memcpy(out, secret, RPC2_SECRET_BYTES);
    return 0;
}

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 10 * SEC,
    .idle_timeout_us = 60 * SEC,
    .max_connections = 100,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 11,
    .secret_for = secret_for,
};

/* ---- the server's worker pool: a queue the test empties ----------------- */

#define QUEUE_MAX 16
static struct {
    rpc2_request *q[QUEUE_MAX];
    int n;
} workers;

static int queue_request(void *env, struct rpc2_request *req)
{
    (void)env;
    ck_assert_int_lt(workers.n, QUEUE_MAX);
    workers.q[workers.n++] = req;
    return 0;
}

static const struct engine_hooks hooks = {.run_blocking = queue_request};

static struct fakelink link_;

/* Runs every queued handler, as the workers would, and hands each outcome
 * back to the loop. */
static void run_workers(void)
{
    while (workers.n > 0) {
        rpc2_request *req = workers.q[0];
        memmove(workers.q, workers.q + 1, (size_t)--workers.n * sizeof workers.q[0]);
        req->status = req->proc->blocking_handler(req, req->args, req->result, req->handler_arg);
        engine_reply(req, req->status, link_.now);
    }
    fakelink_flush(&link_);
}

/* ---- the handlers -------------------------------------------------------- */

static unsigned handler_runs;

static int h_fetch_blocking(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)req, (void)args, (void)result, (void)arg;
    handler_runs++;
    return RPC2_ESERVER;
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_FETCH_BLOCKING, .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args), .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t), .blocking_handler = h_fetch_blocking},
};

/* ---- the client ------------------------------------------------------------ */

struct outcome {
    int done, status;
    rpc2_conn *conn;
};

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct outcome *o = arg;
    o->done = 1, o->status = status, o->conn = conn;
}

static void on_called(int status, void *result, void *arg)
{
    struct outcome *o = arg;
    (void)result;
    o->done = 1, o->status = status;
}

static void setup(enum rpc2_security level)
{
    memset(&workers, 0, sizeof workers);
    handler_runs = 0;
    fakelink_init(&link_, 99 + (uint64_t)level);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, &hooks, NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(sftp_register(fakelink_engine(&link_, i), NULL), 0);
    ck_assert_int_eq(engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs,
                                   sizeof procs / sizeof procs[0], NULL),
                     0);
}

static rpc2_conn *bind_at(enum rpc2_security level)
{
    struct outcome o = {0};
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS, .se_type = RPC2_SE_SFTP,
                                 .security = level, .identity = "alice", .secret = secret};
    ck_assert_int_eq(engine_bind(fakelink_engine(&link_, NODE_CLIENT),
                                 fakelink_addr(&link_, NODE_SERVER), &a, on_bound, &o, link_.now),
                     0);
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 10 * SEC));
    ck_assert_int_eq(o.status, 0);
    return o.conn;
}

static uint8_t client_buf[SERVER_BYTES];

/* A fetch into client memory, started and left in flight. */
static void start_fetch(rpc2_conn *c, uint32_t proc, xfer_args *args, int64_t *moved,
                        struct rpc2_se_desc *d, struct outcome *o)
{
    *args = (xfer_args){.path = "", .quota = -1, .kind = TEST_KIND_VM};
    *d = (struct rpc2_se_desc){.type = RPC2_SE_SFTP, .direction = RPC2_SE_FETCH, .quota = -1,
                               .file_kind = RPC2_SE_FILE_VM};
    d->file.vm.buf = client_buf;
    d->file.vm.max = sizeof client_buf;
    struct engine_call_args ca = {.proc = proc, .encode_args = (xdrproc_t)xdr_xfer_args,
                                  .args = args, .decode_result = (xdrproc_t)xdr_quad_t,
                                  .result = moved, .se = d};
    ck_assert_int_eq(engine_call(c, &ca, on_called, o, link_.now), 0);
}

static const struct rpc2_ctx_stats *srv_stats(void)
{
    return engine_stats(fakelink_engine(&link_, NODE_SERVER));
}

/* ---- the crash of issue 10 ---------------------------------------------- */

/* A FETCH waits for a worker when its client unbinds: the connection's
 * teardown ended a transfer whose file was never opened (rcatd died in
 * fileio_finish(NULL)). The handler still runs once and its reply goes
 * nowhere. */
START_TEST(unbind_while_queued_for_a_worker)
{
    enum rpc2_security level = (enum rpc2_security)_i;
    setup(level);
    rpc2_conn *c = bind_at(level);
    xfer_args args;
    int64_t moved = 0;
    struct rpc2_se_desc d;
    struct outcome o = {0};
    start_fetch(c, TEST_FETCH_BLOCKING, &args, &moved, &d, &o);
    fakelink_run(&link_, NULL, link_.now + 50 * MS);
    ck_assert_int_eq(workers.n, 1); /* the request waits for a worker */

    engine_unbind(c, link_.now);
    ck_assert(o.done);
    ck_assert_int_lt(o.status, 0);
    fakelink_run(&link_, NULL, link_.now + 1 * SEC);
    ck_assert_uint_eq(engine_conn_count(fakelink_engine(&link_, NODE_SERVER)), 0);
    ck_assert_uint_eq(srv_stats()->requests_running, 1);

    run_workers();
    ck_assert_uint_eq(handler_runs, 1);
    ck_assert_uint_eq(srv_stats()->requests_running, 0);
    fakelink_dispose(&link_);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("teardown");
    TCase *t = tcase_create("crash");
    tcase_add_loop_test(t, unbind_while_queued_for_a_worker, RPC2_SEC_NONE, RPC2_SEC_ENCRYPT + 1);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
