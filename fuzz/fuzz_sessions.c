/*
 * fuzz_sessions.c - exists because teardown is where servers crash: a
 * remote client decides when its connection ends, so binds, calls, cancels,
 * unbinds, dying hosts, transfers, worker hand-offs and a stopping server
 * must interleave in any order without a crash, a leak, or a handler that
 * hears its outcome twice or never (issue 10: rcatd died when an UNBIND met
 * a FETCH still waiting for a worker).
 *
 * Real client engines (three hosts) and a server engine on the fake link
 * (tests/fakelink.c), at security levels none, auth and encrypt. The server
 * exports a null call, async fetch and store of memory buffers, a call it
 * holds, and a blocking fetch that leaves its transfer to the loop
 * (rpc2_se_transfer_then); its "workers" are a queue the input runs.
 *
 * Input: a sequence of records, each
 *   u8 op    bits 0-3 the action below; bits 4-5 the client host (0-2);
 *            bits 6-7 its connection slot (0-3)
 *   u8 arg   what the action takes (a level, a size, a count, a time)
 * actions: 0 bind (level arg % 3), 1 null call, 2 async fetch, 3 blocking
 * fetch, 4 async store, 5 held call, 6 unbind, 7 cancel, 8 run arg % 8
 * queued handlers, 9 advance the clock arg * 10 ms, 10 answer the held
 * calls, 11 loss and duplication on the host's link (arg), 12 the server
 * aborts every transfer, 13 the host dies, 14-15 run the link arg ms.
 * At the end the server is stopped as rpc2_ctx_free stops it, and every
 * handler's continuation must have run exactly once.
 */
#include <stdlib.h>
#include <string.h>

#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "fakelink.h"
#include "fuzz_input.h"
#include "sftp_type.h"
#include "testproto.h"

#define MS 1000ull
#define SEC 1000000ull
#define HOSTS 3
#define SLOTS 4
#define NODE_SERVER HOSTS
#define BYTES 65536u
#define QUEUE_MAX 32
#define HELD_MAX 4

static const unsigned char secret[RPC2_SECRET_BYTES] = {9, 8, 7};

static int secret_for(const char *identity, size_t len, unsigned char out[RPC2_SECRET_BYTES],
                      void *arg)
{
    (void)identity, (void)len, (void)arg;
    memcpy(out, secret, RPC2_SECRET_BYTES);
    return 0;
}

static const struct engine_config cfg = {
    .retry_initial_us = 100 * MS,
    .retry_min_us = 10 * MS,
    .retry_max_us = 1 * SEC,
    .dead_peer_us = 5 * SEC,
    .idle_timeout_us = 20 * SEC,
    .max_connections = 64,
    .max_saved_reply = PKT_MAX_DATAGRAM,
    .id_seed = 5,
    .secret_for = secret_for,
    .max_running_per_identity = 6,
    .max_running_per_address = 4,
    .stall_timeout_us = 10 * SEC,
};

static struct fakelink link_;
static uint8_t server_bytes[BYTES], sink_bytes[BYTES];

/* ---- the server ------------------------------------------------------------ */

static struct {
    rpc2_request *q[QUEUE_MAX];
    int n;
} queue;
static rpc2_request *held[HELD_MAX];
static unsigned promised, continued; /* rpc2_se_transfer_then said yes; then ran */
static unsigned states;              /* server states alive */

struct srv_state {
    struct rpc2_se_desc desc;
};

static struct srv_state *state_new(enum rpc2_se_direction dir, const xfer_args *a)
{
    struct srv_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    states++;
    size_t len = (size_t)((uint64_t)a->offset % (BYTES + 1));
    st->desc = (struct rpc2_se_desc){
        .type = RPC2_SE_SFTP, .direction = dir, .quota = -1, .file_kind = RPC2_SE_FILE_VM};
    st->desc.file.vm.buf = dir == RPC2_SE_FETCH ? server_bytes : sink_bytes;
    st->desc.file.vm.len = dir == RPC2_SE_FETCH ? len : 0;
    st->desc.file.vm.max = BYTES;
    return st;
}

static void state_free(struct srv_state *st)
{
    states--;
    free(st);
}

static void async_done(rpc2_request *req, int status, void *arg)
{
    state_free(arg);
    engine_reply(req, status, link_.now);
}

static void run_async(rpc2_request *req, enum rpc2_se_direction dir, const xfer_args *a)
{
    struct srv_state *st = state_new(dir, a);
    int rc = rpc2_se_init(req, &st->desc);
    if (rc == 0)
        rc = rpc2_se_check_async(req, async_done, st);
    if (rc != 0) {
        state_free(st);
        engine_reply(req, rc, link_.now);
    }
}

static void h_null(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    engine_reply(req, 0, link_.now);
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)result, (void)arg;
    run_async(req, RPC2_SE_FETCH, args);
}

static void h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)result, (void)arg;
    run_async(req, RPC2_SE_STORE, args);
}

/* Held until an "answer" record: its side effect then runs, if it has one. */
static void h_held(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)args, (void)result, (void)arg;
    for (int i = 0; i < HELD_MAX; i++) {
        if (!held[i]) {
            held[i] = req;
            return;
        }
    }
    engine_reply(req, RPC2_ELIMIT, link_.now);
}

static int fetch_then(rpc2_request *req, int status, void *args, void *result, void *arg)
{
    (void)req, (void)args, (void)result;
    continued++;
    state_free(arg);
    return status;
}

static int h_fetch_blocking(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)result, (void)arg;
    struct srv_state *st = state_new(RPC2_SE_FETCH, args);
    int rc = rpc2_se_transfer_then(req, &st->desc, fetch_then, st);
    if (rc == RPC2_CONTINUED)
        promised++;
    else
        state_free(st);
    return rc;
}

#define XFER(num, kind, fn)                                                                        \
    {                                                                                              \
        .proc = num, .decode_args = (xdrproc_t)xdr_xfer_args, .args_size = sizeof(xfer_args),      \
        .encode_result = (xdrproc_t)xdr_quad_t, .result_size = sizeof(int64_t), .kind = fn         \
    }
static const struct rpc2_proc procs[] = {
    {.proc = TEST_NULL, .async_handler = h_null},
    XFER(TEST_FETCH, async_handler, h_fetch),
    XFER(TEST_STORE, async_handler, h_store),
    XFER(TEST_SLOW_INCR, async_handler, h_held),
    XFER(TEST_FETCH_BLOCKING, blocking_handler, h_fetch_blocking),
};

static int queue_request(void *env, struct rpc2_request *req)
{
    (void)env;
    if (queue.n == QUEUE_MAX)
        return RPC2_ENOMEM; /* the engine then runs a continuation inline */
    queue.q[queue.n++] = req;
    return 0;
}

static const struct engine_hooks hooks = {.run_blocking = queue_request};

static void run_queued(int n)
{
    while (n-- > 0 && queue.n > 0) {
        rpc2_request *req = queue.q[0];
        memmove(queue.q, queue.q + 1, (size_t)--queue.n * sizeof queue.q[0]);
        engine_handler_returned(req, engine_run_handler(req), link_.now);
    }
    fakelink_flush(&link_);
}

static void answer_held(void)
{
    static const xfer_args some = {.path = "", .offset = 3000, .quota = -1};
    for (int i = 0; i < HELD_MAX; i++) {
        rpc2_request *req = held[i];
        held[i] = NULL;
        if (req)
            run_async(req, RPC2_SE_FETCH, &some); /* refused when the call had no descriptor */
    }
    fakelink_flush(&link_);
}

/* ---- the clients ------------------------------------------------------------ */

struct slot {
    rpc2_conn *conn;
    int binding, calling;
    xfer_args args;
    int64_t result;
    struct rpc2_se_desc desc;
    uint8_t buf[BYTES];
};

static struct slot slots[HOSTS][SLOTS];
static int dead[HOSTS];

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct slot *s = arg;
    s->binding = 0;
    s->conn = status == 0 ? conn : NULL;
}

static void on_called(int status, void *result, void *arg)
{
    struct slot *s = arg;
    (void)status, (void)result;
    s->calling = 0;
}

static void bind_slot(int host, struct slot *s, uint8_t arg)
{
    if (s->conn || s->binding)
        return;
    struct engine_bind_args a = {.subsystem = TEST_SUBSYS,
                                 .se_type = RPC2_SE_SFTP,
                                 .security = (enum rpc2_security)(arg % 3),
                                 .identity = arg & 0x80 ? "bob" : "alice",
                                 .secret = secret};
    s->binding = 1;
    if (engine_bind(fakelink_engine(&link_, host), fakelink_addr(&link_, NODE_SERVER), &a, on_bound,
                    s, link_.now) != 0)
        s->binding = 0;
}

static void call_slot(struct slot *s, uint32_t proc, int dir, uint8_t arg)
{
    if (!s->conn || s->calling)
        return;
    s->args = (xfer_args){.path = "", .offset = (int64_t)arg * 997, .quota = -1};
    s->desc = (struct rpc2_se_desc){.type = RPC2_SE_SFTP,
                                    .direction = (enum rpc2_se_direction)dir,
                                    .quota = -1,
                                    .file_kind = RPC2_SE_FILE_VM};
    s->desc.file.vm.buf = s->buf;
    s->desc.file.vm.len = dir == RPC2_SE_STORE ? (size_t)arg * 250 : 0;
    s->desc.file.vm.max = BYTES;
    struct engine_call_args ca = {.proc = proc,
                                  .encode_args = (xdrproc_t)xdr_xfer_args,
                                  .args = &s->args,
                                  .decode_result = (xdrproc_t)xdr_quad_t,
                                  .result = &s->result,
                                  .se = dir ? &s->desc : NULL};
    if (proc == TEST_NULL)
        ca.encode_args = ca.decode_result = NULL, ca.args = ca.result = NULL;
    s->calling = 1;
    if (engine_call(s->conn, &ca, on_called, s, link_.now) != 0)
        s->calling = 0;
}

static void set_faults(int host, uint8_t arg)
{
    link_.faults[host] = (struct fakelink_faults){.loss = (arg & 7) / 20.0,
                                                  .dup = (arg >> 3 & 3) / 10.0,
                                                  .delay_us = 1000 + (arg >> 5) * 5000};
}

static void act(uint8_t op, uint8_t arg)
{
    int host = (op >> 4 & 3) % HOSTS;
    struct slot *s = &slots[host][op >> 6];
    int client_op = (op & 15) <= 7 || (op & 15) == 11 || (op & 15) == 13;

    if (client_op && dead[host])
        return;
    switch (op & 15) {
    case 0:
        bind_slot(host, s, arg);
        break;
    case 1:
        call_slot(s, TEST_NULL, 0, arg);
        break;
    case 2:
        call_slot(s, TEST_FETCH, RPC2_SE_FETCH, arg);
        break;
    case 3:
        call_slot(s, TEST_FETCH_BLOCKING, arg & 1 ? RPC2_SE_FETCH : 0, arg);
        break;
    case 4:
        call_slot(s, TEST_STORE, RPC2_SE_STORE, arg);
        break;
    case 5:
        call_slot(s, TEST_SLOW_INCR, arg & 1 ? RPC2_SE_FETCH : 0, arg);
        break;
    case 6:
        if (s->conn)
            engine_unbind(s->conn, link_.now);
        s->conn = NULL;
        break;
    case 7:
        if (s->conn)
            engine_cancel(s->conn, link_.now);
        break;
    case 8:
        run_queued(arg % 8);
        break;
    case 9:
        fakelink_run(&link_, NULL, link_.now + (uint64_t)arg * 10 * MS);
        break;
    case 10:
        answer_held();
        break;
    case 11:
        set_faults(host, arg);
        break;
    case 12:
        engine_abort_transfers(fakelink_engine(&link_, NODE_SERVER), RPC2_ESHUTDOWN, link_.now);
        break;
    case 13:
        fakelink_restart(&link_, host, NULL, NULL, NULL); /* its connections vanish unsaid */
        memset(slots[host], 0, sizeof slots[host]);
        dead[host] = 1;
        break;
    default:
        fakelink_run(&link_, NULL, link_.now + arg * MS);
        break;
    }
    fakelink_flush(&link_);
}

static void setup(void)
{
    memset(&queue, 0, sizeof queue);
    memset(held, 0, sizeof held);
    memset(slots, 0, sizeof slots);
    memset(dead, 0, sizeof dead);
    promised = continued = states = 0;
    fakelink_init(&link_, 1);
    struct rpc2_sftp_params p;
    rpc2_sftp_params_init(&p);
    p.packet_size = 1400;
    p.window = 8;
    p.piggyback_max = 1000;
    for (int i = 0; i < HOSTS; i++)
        fakelink_add(&link_, &cfg, NULL, NULL);
    fakelink_add(&link_, &cfg, &hooks, NULL);
    for (int i = 0; i <= HOSTS; i++) {
        link_.faults[i].delay_us = 1000;
        if (sftp_register(fakelink_engine(&link_, i), &p) != 0)
            abort();
    }
    if (engine_export(fakelink_engine(&link_, NODE_SERVER), TEST_SUBSYS, procs,
                      sizeof procs / sizeof procs[0], NULL) != 0)
        abort();
}

/* The server stops as rpc2_ctx_free stops it: connections end, the workers
 * finish what is queued, then everything is freed. */
static void stop(void)
{
    struct engine *server = fakelink_engine(&link_, NODE_SERVER);
    answer_held();
    engine_close_all(server, link_.now);
    for (int round = 0; round < 4; round++)
        run_queued(QUEUE_MAX);
    memset(held, 0, sizeof held);
    fakelink_dispose(&link_);
    if (continued != promised || states != 0)
        abort(); /* a continuation ran twice or never, or a handler's state leaked */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in;
    fin_init(&in, data, size);
    setup();
    for (int n = 0; !fin_empty(&in) && n < 400; n++) {
        uint8_t op = fin_u8(&in);
        act(op, fin_u8(&in));
    }
    fakelink_run(&link_, NULL, link_.now + 30 * SEC);
    stop();
    return 0;
}
