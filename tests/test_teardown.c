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
#include <unistd.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "fakelink.h"
#include "sftp_type.h"
#include "testproto.h"
#include "check_run.h"

#define MS 1000ull
#define SEC 1000000ull
#define SERVER_BYTES (4u << 20)

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
    .stall_timeout_us = 120 * SEC,
};

/* ---- the server's worker pool: a queue the test empties ----------------- */

#define QUEUE_MAX 16
struct queue {
    rpc2_request *q[QUEUE_MAX];
    int n;
};
/* the workers', and the loop's next turn (rpc2_se_transfer_then_loop's
 * rest), so a test sees where the rest went */
static struct queue workers, loop_turn;

static void push(struct queue *q, struct rpc2_request *req)
{
    ck_assert_int_lt(q->n, QUEUE_MAX);
    q->q[q->n++] = req;
}

static int queue_request(void *env, struct rpc2_request *req)
{
    (void)env;
    push(&workers, req);
    return 0;
}

static int queue_for_loop(void *env, struct rpc2_request *req)
{
    (void)env;
    push(&loop_turn, req);
    return 0;
}

/* Files are watched (so a pipe is opened without blocking) but never
 * become ready: a stuck pipe stays stuck. */
static int watch_nothing(void *env, struct engine_fdwatch *w, int fd, int events)
{
    (void)env, (void)w, (void)fd, (void)events;
    return 0;
}

static const struct engine_hooks hooks = {
    .run_blocking = queue_request, .watch_fd = watch_nothing, .run_on_loop = queue_for_loop};

static struct fakelink link_;

/* Runs every queued handler, as the workers would, and hands each outcome
 * back to the loop. */
static void run_workers(void)
{
    while (workers.n > 0) {
        rpc2_request *req = workers.q[0];
        memmove(workers.q, workers.q + 1, (size_t)--workers.n * sizeof workers.q[0]);
        engine_handler_returned(req, engine_run_handler(req), link_.now);
    }
    fakelink_flush(&link_);
}

/* ---- the handlers -------------------------------------------------------- */

/* What the server's end does with a FETCH, chosen per test. */
enum state {
    ST_QUEUED,    /* blocking: waits for a worker (the crash of issue 10) */
    ST_HANDLER,   /* async: inside its handler, side effect not initialised */
    ST_INIT,      /* async: initialised, not yet checked */
    ST_STREAMING, /* async: the transfer streams */
    ST_CONTINUED, /* blocking, rpc2_se_transfer_then: streams with no worker */
    ST_WAITING,   /* async: the source is a pipe with nothing in it */
    N_STATES
};
static const char *const state_names[] = {"queued",    "handler",   "init",
                                          "streaming", "continued", "waiting"};

static struct {
    enum state state;
    uint8_t *data;
    struct rpc2_se_desc desc;
    rpc2_request *held; /* an async request the test resumes */
    int pipe[2];
    unsigned handler_runs;
    unsigned outcomes; /* the handler heard how its transfer ended */
    int outcome;
    int suspend;             /* the continuation suspends (rpc2_request_suspend) */
    int on_loop;             /* rpc2_se_transfer_then_loop, not rpc2_se_transfer_then */
    int to_worker;           /* TEST_FETCH_BOTH's loop part passes the call on */
    int to_worker_again;     /* what passing it on a second time returned */
    rpc2_request *suspended; /* ... this request, for the test to resume */
    unsigned resumed_runs;   /* the rest after the resume ran */
    int resumed_status;
} srv;

static void describe(void)
{
    memset(&srv.desc, 0, sizeof srv.desc);
    srv.desc.type = RPC2_SE_SFTP;
    srv.desc.direction = RPC2_SE_FETCH;
    srv.desc.quota = -1;
    if (srv.state == ST_WAITING) {
        srv.desc.file_kind = RPC2_SE_FILE_FD;
        srv.desc.file.fd.fd = srv.pipe[0];
        return;
    }
    srv.desc.file_kind = RPC2_SE_FILE_VM;
    srv.desc.file.vm.buf = srv.data;
    srv.desc.file.vm.len = SERVER_BYTES;
}

static void heard(int status)
{
    srv.outcomes++;
    srv.outcome = status;
}

static void transfer_done(rpc2_request *req, int status, void *arg)
{
    (void)arg;
    heard(status);
    engine_reply(req, status, req->engine->now);
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    srv.handler_runs++;
    describe();
    if (srv.state == ST_HANDLER) {
        srv.held = req;
        return;
    }
    ck_assert_int_eq(rpc2_se_init(req, &srv.desc), 0);
    if (srv.state == ST_INIT) {
        srv.held = req;
        return;
    }
    ck_assert_int_eq(rpc2_se_check_async(req, transfer_done, NULL), 0);
}

/* The rest once the application resumed a suspended continuation. */
static int after_resume(rpc2_request *req, int status, void *args, void *result, void *arg)
{
    (void)req, (void)args, (void)result, (void)arg;
    srv.resumed_runs++;
    srv.resumed_status = status;
    return status;
}

/* The rest of a handler that left its transfer to the loop. */
static int fetch_then(rpc2_request *req, int status, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    heard(status);
    if (srv.suspend && status == 0) {
        srv.suspended = req;
        return rpc2_request_suspend(req, after_resume, NULL);
    }
    return status;
}

static int h_fetch_blocking(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    srv.handler_runs++;
    describe();
    if (srv.on_loop)
        return rpc2_se_transfer_then_loop(req, &srv.desc, fetch_then, NULL);
    return rpc2_se_transfer_then(req, &srv.desc, fetch_then, NULL);
}

/* TEST_FETCH_BOTH's first turn, on the loop: the transfer from here, or
 * the call passed on to the blocking handler (which then has it alone). */
static void h_fetch_both(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    srv.handler_runs++;
    if (srv.to_worker) {
        ck_assert_int_eq(rpc2_request_to_worker(req), 0);
        srv.to_worker_again = rpc2_request_to_worker(req);
        return;
    }
    describe();
    ck_assert_int_eq(rpc2_se_init(req, &srv.desc), 0);
    ck_assert_int_eq(rpc2_se_check_async(req, transfer_done, NULL), 0);
    /* its transfer has begun: the call stays with the loop */
    ck_assert_int_eq(rpc2_request_to_worker(req), RPC2_EINVAL);
}

/* A held async handler goes on: what it would have done next. */
static void resume_held(void)
{
    rpc2_request *req = srv.held;
    int rc = 0;

    srv.held = NULL;
    if (!req)
        return;
    if (srv.state == ST_HANDLER)
        rc = rpc2_se_init(req, &srv.desc);
    if (rc == 0)
        rc = rpc2_se_check_async(req, transfer_done, NULL);
    if (rc != 0) {
        heard(rc);
        engine_reply(req, rc, link_.now);
    }
}

static const struct rpc2_proc procs[] = {
    {.proc = TEST_FETCH,
     .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args),
     .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t),
     .async_handler = h_fetch},
    {.proc = TEST_FETCH_BLOCKING,
     .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args),
     .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t),
     .blocking_handler = h_fetch_blocking},
    {.proc = TEST_FETCH_BOTH,
     .decode_args = (xdrproc_t)xdr_xfer_args,
     .args_size = sizeof(xfer_args),
     .encode_result = (xdrproc_t)xdr_quad_t,
     .result_size = sizeof(int64_t),
     .async_handler = h_fetch_both,
     .blocking_handler = h_fetch_blocking},
};

/* ---- the client ------------------------------------------------------------ */

struct outcome {
    int done, status;
};

static void on_called(int status, void *result, void *arg)
{
    struct outcome *o = arg;
    (void)result;
    o->done = 1, o->status = status;
}

static void setup(enum rpc2_security level, enum state state)
{
    memset(&workers, 0, sizeof workers);
    memset(&loop_turn, 0, sizeof loop_turn);
    memset(&srv, 0, sizeof srv);
    srv.state = state;
    srv.data = calloc(1, SERVER_BYTES);
    ck_assert_int_eq(pipe(srv.pipe), 0);
    fakelink_init(&link_, 99 + (uint64_t)level);
    fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, &hooks, NULL);
    /* 20 ms each way and a small window: a transfer takes seconds */
    for (int i = 0; i < 2; i++)
        link_.faults[i].delay_us = 10 * MS;
    struct rpc2_sftp_params p;
    rpc2_sftp_params_init(&p);
    p.packet_size = 1400;
    p.window = 16;
    p.piggyback = 0;
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(sftp_register(fakelink_engine(&link_, i), &p), 0);
    ck_assert_int_eq(engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs,
                                   sizeof procs / sizeof procs[0], NULL),
                     0);
}

static void teardown(void)
{
    fakelink_dispose(&link_);
    close(srv.pipe[0]);
    close(srv.pipe[1]);
    free(srv.data);
}

static rpc2_conn *bind_at(enum rpc2_security level)
{
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS,
                                 .se_type = RPC2_SE_SFTP,
                                 .security = level,
                                 .identity = "alice",
                                 .secret = secret};
    rpc2_conn *conn;

    ck_assert_int_eq(fakelink_bind(&link_, NODE_CLIENT, NODE_SERVER, &a, 10 * SEC, &conn), 0);
    return conn;
}

static uint8_t client_buf[SERVER_BYTES + 1];

/* A fetch into client memory, started and left in flight. */
static void start_fetch(rpc2_conn *c, uint32_t proc, xfer_args *args, int64_t *moved,
                        struct rpc2_se_desc *d, struct outcome *o)
{
    *args = (xfer_args){.path = "", .quota = -1, .kind = TEST_KIND_VM};
    *d = (struct rpc2_se_desc){.type = RPC2_SE_SFTP,
                               .direction = RPC2_SE_FETCH,
                               .quota = -1,
                               .file_kind = RPC2_SE_FILE_VM};
    d->file.vm.buf = client_buf;
    d->file.vm.max = sizeof client_buf;
    struct engine_call_args ca = {.proc = proc,
                                  .encode_args = (xdrproc_t)xdr_xfer_args,
                                  .args = args,
                                  .decode_result = (xdrproc_t)xdr_quad_t,
                                  .result = moved,
                                  .se = d};
    ck_assert_int_eq(engine_call(c, &ca, on_called, o, link_.now), 0);
}

static const struct rpc2_ctx_stats *srv_stats(void)
{
    return engine_stats(fakelink_engine(&link_, NODE_SERVER));
}

/* ---- a continuation that waits on the application ------------------------ */

/* A blocking FETCH's continuation suspends (as rcatd's post-store command
 * does): no worker is held, the client waits, and the status given to the
 * resume is the reply's, whether the resume comes after the worker is back
 * (_i 0) or before (_i 1: the worker that suspended is slow to return). */
/* A blocking FETCH whose continuation will suspend, run until that
 * continuation waits for a worker (the transfer is over). */
struct suspended_fetch {
    xfer_args args;
    int64_t moved;
    struct rpc2_se_desc d;
    struct outcome o;
};

/* A blocking FETCH sent, its handler run: the transfer is on the loop. */
static void fetch_continued(struct suspended_fetch *f)
{
    rpc2_conn *c = bind_at(RPC2_SEC_NONE);
    *f = (struct suspended_fetch){0};
    start_fetch(c, TEST_FETCH_BLOCKING, &f->args, &f->moved, &f->d, &f->o);
    fakelink_run(&link_, NULL, link_.now + 50 * MS);
    run_workers(); /* the handler: the transfer goes to the loop */
}

static void fetch_until_continued(struct suspended_fetch *f)
{
    setup(RPC2_SEC_NONE, ST_CONTINUED);
    srv.suspend = 1;
    fetch_continued(f);
    for (int i = 0; i < 100 && workers.n == 0; i++)
        fakelink_run(&link_, NULL, link_.now + 1 * SEC);
    ck_assert_int_eq(workers.n, 1); /* the transfer is over: its continuation */
}

START_TEST(a_suspended_call_replies_once_resumed)
{
    int early = _i;
    struct suspended_fetch f;
    struct outcome *o = &f.o;
    fetch_until_continued(&f);
    rpc2_request *req = workers.q[--workers.n];
    int rc = engine_run_handler(req);
    ck_assert_int_eq(rc, RPC2_CONTINUED);
    ck_assert_ptr_eq(srv.suspended, req);
    if (early) {
        ck_assert_int_eq(engine_request_resume(req, 42, link_.now), 0);
        ck_assert_int_eq(workers.n, 0); /* not before the worker is back */
        engine_handler_returned(req, rc, link_.now);
    } else {
        engine_handler_returned(req, rc, link_.now);
        fakelink_run(&link_, NULL, link_.now + 30 * SEC);
        ck_assert(!o->done); /* the client waits (BUSY), its call alive */
        ck_assert_int_eq(workers.n, 0);
        ck_assert_int_eq(engine_request_resume(req, 42, link_.now), 0);
    }
    ck_assert_int_eq(engine_request_resume(req, 43, link_.now), RPC2_EINVAL); /* once */
    run_workers();
    ck_assert(fakelink_run(&link_, &o->done, link_.now + 10 * SEC));
    ck_assert_int_eq(o->status, 42);
    ck_assert_uint_eq(srv.resumed_runs, 1);
    ck_assert_int_eq(srv.resumed_status, 42);
    ck_assert_uint_eq(srv_stats()->requests_running, 0);
    teardown();
}
END_TEST

/* The context goes while the call is suspended: the rest still runs once,
 * with RPC2_ECLOSED. */
START_TEST(a_suspended_call_hears_the_context_go)
{
    struct suspended_fetch f;
    fetch_until_continued(&f);
    run_workers();
    ck_assert_ptr_nonnull(srv.suspended);
    ck_assert_uint_eq(srv.resumed_runs, 0);
    fakelink_restart(&link_, NODE_SERVER, NULL, NULL, NULL);
    ck_assert_uint_eq(srv.resumed_runs, 1);
    ck_assert_int_eq(srv.resumed_status, RPC2_ECLOSED);
    teardown();
}
END_TEST

/* ---- the crash of issue 10 ---------------------------------------------- */

/* A FETCH waits for a worker when its client unbinds: the connection's
 * teardown ended a transfer whose file was never opened (rcatd died in
 * fileio_finish(NULL)). The handler still runs once, hears ECLOSED, and its
 * reply goes nowhere. */
START_TEST(unbind_while_queued_for_a_worker)
{
    enum rpc2_security level = (enum rpc2_security)_i;
    setup(level, ST_QUEUED);
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

    run_workers(); /* the handler, then (a worker again) its continuation */
    run_workers();
    ck_assert_uint_eq(srv.handler_runs, 1);
    ck_assert_uint_eq(srv.outcomes, 1);
    ck_assert_int_eq(srv.outcome, RPC2_ECLOSED);
    ck_assert_uint_eq(srv_stats()->requests_running, 0);
    teardown();
}
END_TEST

/* ---- the matrix: every teardown x every state x every level ----------------- */

enum event {
    EV_UNBIND,   /* the client unbinds */
    EV_CANCEL,   /* the client cancels the call (then unbinds, later) */
    EV_DEAD,     /* the client's host vanishes */
    EV_IDLE,     /* the client is silent past the idle timeout, then back */
    EV_ABORT,    /* the server ends every transfer (a bounded stop) */
    EV_SHUTDOWN, /* the server's context is freed */
    N_EVENTS
};
static const char *const event_names[] = {"unbind",      "cancel", "dead peer",
                                          "idle expiry", "abort",  "shutdown"};

/* Brings the request into its state; the transfer must not be over. */
static void reach(enum state state)
{
    fakelink_run(&link_, NULL, link_.now + 100 * MS);
    if (state == ST_QUEUED) {
        ck_assert_int_eq(workers.n, 1);
        return;
    }
    if (state == ST_CONTINUED) {
        run_workers(); /* the handler's blocking part; the worker is let go */
        ck_assert_int_eq(workers.n, 0);
        fakelink_run(&link_, NULL, link_.now + 200 * MS);
    }
    ck_assert_uint_eq(srv.handler_runs, 1);
    ck_assert_uint_eq(srv.outcomes, 0);
    ck_assert_uint_eq(srv_stats()->requests_running, 1);
}

static void happen(enum event ev, rpc2_conn *c)
{
    struct engine *server = fakelink_engine(&link_, NODE_SERVER);
    switch (ev) {
    case EV_UNBIND:
        engine_unbind(c, link_.now);
        break;
    case EV_CANCEL:
        ck_assert_int_eq(engine_cancel(c, link_.now), 0);
        break;
    case EV_DEAD:
        fakelink_restart(&link_, NODE_CLIENT, NULL, NULL, NULL);
        break;
    case EV_IDLE:
        link_.faults[NODE_CLIENT].loss = 1.0;
        fakelink_run(&link_, NULL, link_.now + cfg.idle_timeout_us + 5 * SEC);
        link_.faults[NODE_CLIENT].loss = 0.0;
        break;
    case EV_ABORT:
        engine_abort_transfers(server, RPC2_ESHUTDOWN, link_.now);
        break;
    case EV_SHUTDOWN:
        engine_close_all(server, link_.now);
        engine_flush(server);
        break;
    case N_EVENTS:
        break;
    }
    fakelink_flush(&link_);
}

START_TEST(teardown_in_every_state)
{
    enum rpc2_security level = (enum rpc2_security)(_i % 3);
    enum state state = (enum state)(_i / 3 % N_STATES);
    enum event ev = (enum event)(_i / 3 / N_STATES);
    setup(level, state);
    rpc2_conn *c = bind_at(level);
    xfer_args args;
    int64_t moved = 0;
    struct rpc2_se_desc d;
    struct outcome o = {0};
    int blocking = state == ST_QUEUED || state == ST_CONTINUED;
    start_fetch(c, blocking ? TEST_FETCH_BLOCKING : TEST_FETCH, &args, &moved, &d, &o);
    reach(state);

    happen(ev, c);
    if (ev == EV_SHUTDOWN) {
        /* the engine and every request go; a continuation due runs now */
        fakelink_restart(&link_, NODE_SERVER, NULL, NULL, NULL);
        srv.held = NULL;
        workers.n = 0;
        ck_assert_uint_le(srv.outcomes, 1);
        teardown();
        return;
    }
    /* the server goes on: held handlers resume, workers run, time passes */
    for (int round = 0; round < 3; round++) {
        resume_held();
        run_workers();
        fakelink_run(&link_, NULL, link_.now + 200 * SEC);
    }
    if (ev == EV_CANCEL || ev == EV_IDLE) {
        ck_assert(o.done);
        engine_unbind(c, link_.now);
        fakelink_run(&link_, NULL, link_.now + 200 * SEC);
        run_workers();
    }
    ck_assert_msg(srv.handler_runs == 1 && srv.outcomes == 1,
                  "%s while %s at level %d: handler ran %u times, heard %u outcomes",
                  event_names[ev], state_names[state], level, srv.handler_runs, srv.outcomes);
    if (ev == EV_UNBIND || ev == EV_ABORT || ev == EV_DEAD || state == ST_WAITING)
        ck_assert_int_lt(srv.outcome, 0); /* no transfer completes through these */
    if (ev == EV_ABORT)
        ck_assert_int_eq(srv.outcome, RPC2_ESHUTDOWN);
    if (ev == EV_UNBIND || ev == EV_ABORT || ev == EV_CANCEL || ev == EV_IDLE)
        ck_assert(o.done);
    if (ev == EV_ABORT && state != ST_QUEUED && state != ST_HANDLER)
        ck_assert_int_ne(o.status, 0); /* the client heard the transfer end */
    ck_assert_uint_eq(srv_stats()->requests_running, 0);
    ck_assert_uint_eq(engine_conn_count(fakelink_engine(&link_, NODE_SERVER)), 0);
    teardown();
}
END_TEST

/* ---- the stall bound --------------------------------------------------------- */

/* A source with nothing to read, a peer that answers every probe: only the
 * stall bound ends the wait, with RPC2_ESTALLED for both ends. */
START_TEST(a_transfer_that_moves_nothing_ends_at_the_stall_timeout)
{
    enum rpc2_security level = (enum rpc2_security)_i;
    setup(level, ST_WAITING);
    rpc2_conn *c = bind_at(level);
    xfer_args args;
    int64_t moved = 0;
    struct rpc2_se_desc d;
    struct outcome o = {0};
    start_fetch(c, TEST_FETCH, &args, &moved, &d, &o);
    fakelink_run(&link_, &o.done, link_.now + cfg.stall_timeout_us - 1 * SEC);
    ck_assert(!o.done); /* waiting is no failure */
    uint64_t started = link_.now;
    ck_assert(fakelink_run(&link_, &o.done, link_.now + 30 * SEC));
    ck_assert_uint_le(link_.now - started, 2 * SEC);
    ck_assert_int_eq(srv.outcome, RPC2_ESTALLED);
    ck_assert_int_eq(o.status, RPC2_ESTALLED); /* the reply says why */
    ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
    ck_assert_uint_eq(srv_stats()->transfers_stalled, 1);
    teardown();
}
END_TEST

/* ---- a continuation on the loop -------------------------------------------- */

/* rpc2_se_transfer_then_loop: the rest goes to the loop's next turn, never
 * to a worker and never from inside the transfer's own end; the reply
 * follows it, once. */
START_TEST(a_loop_continuation_runs_at_the_loops_next_turn)
{
    struct suspended_fetch f;
    setup(RPC2_SEC_NONE, ST_CONTINUED);
    srv.on_loop = 1;
    fetch_continued(&f);
    for (int i = 0; i < 100 && loop_turn.n == 0; i++)
        fakelink_run(&link_, NULL, link_.now + 1 * SEC);
    ck_assert_int_eq(loop_turn.n, 1); /* the transfer is over: its rest waits for the turn */
    ck_assert_int_eq(workers.n, 0);
    ck_assert_uint_eq(srv.outcomes, 0);
    ck_assert(!f.o.done);
    rpc2_request *req = loop_turn.q[--loop_turn.n];
    engine_handler_returned(req, engine_run_handler(req), link_.now);
    fakelink_run(&link_, NULL, link_.now + 1 * SEC);
    ck_assert_uint_eq(srv.outcomes, 1);
    ck_assert_int_eq(srv.outcome, 0);
    ck_assert(f.o.done);
    ck_assert_int_eq(f.o.status, 0);
    ck_assert_int_eq(f.d.bytes_transferred, SERVER_BYTES);
    ck_assert_uint_eq(srv_stats()->requests_running, 0);
    teardown();
}
END_TEST

/* ---- a proc with both handlers --------------------------------------------- */

/* Its async handler runs first, on the loop: answered there (_i 0), no
 * worker is asked; passed on (_i 1, once: a second time is refused), the
 * blocking handler has it on a worker and its continuation answers. Either
 * way the whole file moves and the reply comes once. A blocking handler
 * may not reply as an async one does. */
START_TEST(a_proc_with_both_handlers_begins_on_the_loop)
{
    struct suspended_fetch f = {0};
    rpc2_conn *c;

    setup(RPC2_SEC_NONE, ST_CONTINUED);
    srv.to_worker = _i;
    c = bind_at(RPC2_SEC_NONE);
    start_fetch(c, TEST_FETCH_BOTH, &f.args, &f.moved, &f.d, &f.o);
    fakelink_run(&link_, NULL, link_.now + 50 * MS);
    ck_assert_uint_eq(srv.handler_runs, 1);
    ck_assert_int_eq(workers.n, _i);
    if (_i) {
        ck_assert_int_eq(srv.to_worker_again, RPC2_EINVAL);
        ck_assert_int_eq(rpc2_reply(workers.q[0], 0), RPC2_EINVAL);
        run_workers(); /* the blocking handler: the transfer goes to the loop */
        ck_assert_uint_eq(srv.handler_runs, 2);
    }
    for (int i = 0; i < 100 && !f.o.done; i++) {
        fakelink_run(&link_, &f.o.done, link_.now + 1 * SEC);
        run_workers(); /* the continuation, when there is one */
    }
    ck_assert(f.o.done);
    ck_assert_int_eq(f.o.status, 0);
    ck_assert_uint_eq(srv.outcomes, 1);
    ck_assert_int_eq(f.d.bytes_transferred, SERVER_BYTES);
    ck_assert_uint_eq(srv_stats()->requests_running, 0);
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("teardown");
    TCase *t = tcase_create("crash");
    tcase_add_loop_test(t, unbind_while_queued_for_a_worker, RPC2_SEC_NONE, RPC2_SEC_ENCRYPT + 1);
    suite_add_tcase(s, t);
    TCase *sus = tcase_create("suspend");
    tcase_add_loop_test(sus, a_suspended_call_replies_once_resumed, 0, 2);
    tcase_add_test(sus, a_suspended_call_hears_the_context_go);
    suite_add_tcase(s, sus);
    TCase *lp = tcase_create("loop");
    tcase_add_test(lp, a_loop_continuation_runs_at_the_loops_next_turn);
    tcase_add_loop_test(lp, a_proc_with_both_handlers_begins_on_the_loop, 0, 2);
    suite_add_tcase(s, lp);
    TCase *m = tcase_create("matrix");
    tcase_set_timeout(m, 60);
    tcase_add_loop_test(m, teardown_in_every_state, 0, 3 * N_STATES * N_EVENTS);
    suite_add_tcase(s, m);
    TCase *st = tcase_create("stall");
    tcase_add_loop_test(st, a_transfer_that_moves_nothing_ends_at_the_stall_timeout, RPC2_SEC_NONE,
                        RPC2_SEC_ENCRYPT + 1);
    suite_add_tcase(s, st);
    return check_run(s);
}
