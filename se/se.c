/*
 * se.c - what a server's handler calls to run the side effect of its
 * request: init (describe the local end) and check (run the transfer), in
 * both handler forms. Async handlers call these on the loop thread. Blocking
 * handlers call them on a worker thread: the work is carried over to the
 * loop thread, which owns all protocol state, and the worker waits for it;
 * or, with rpc2_se_transfer_then, the worker is let go and the handler goes
 * on (on a worker again) once the transfer is over.
 */
#include "ctx.h"
#include "engine.h"

static rpc2_ctx *ctx_of_request(const rpc2_request *req)
{
    return req->engine->env;
}

static int has_side_effect(const rpc2_request *req)
{
    return req && req->se_transfer && req->se_ops;
}

/* ---- init ---------------------------------------------------------------- */

/* Async handlers run inside an engine event, whose time is the engine's;
 * a blocking handler's work is posted to the loop, and reads the clock. */
static uint64_t now_for(const rpc2_request *req)
{
    return engine_request_blocking(req) ? ctx_now() : req->engine->now;
}

static int init_on_loop(rpc2_request *req, struct rpc2_se_desc *desc)
{
    int rc = rpc2_se_desc_check(desc);
    if (rc != 0)
        return rc;
    if (!req->se_ops->init)
        return RPC2_ENOSETYPE;
    return req->se_ops->init(req->se_state, req, req->se_transfer, desc, now_for(req));
}

struct init_job {
    rpc2_request *req;
    struct rpc2_se_desc *desc;
    struct ctx_sync sync;
};

static void init_job_run(void *arg)
{
    struct init_job *job = arg;
    ctx_sync_finish(&job->sync, init_on_loop(job->req, job->desc), NULL);
}

int rpc2_se_init(rpc2_request *req, struct rpc2_se_desc *desc)
{
    if (!has_side_effect(req) || !desc)
        return RPC2_EINVAL; /* the call carried no side effect */
    if (!engine_request_blocking(req))
        return init_on_loop(req, desc);
    struct init_job job = {.req = req, .desc = desc};
    ctx_sync_init(&job.sync, ctx_of_request(req));
    job.sync.threaded = 1; /* a worker thread, whichever thread runs the loop */
    return ctx_run_and_wait(ctx_of_request(req), &job.sync, init_job_run, &job);
}

/* ---- check --------------------------------------------------------------- */

static void async_check_done(rpc2_request *req, int status)
{
    rpc2_se_done_fn done = req->se_done;
    req->se_done = NULL;
    if (done)
        done(req, status, req->se_done_arg);
}

int rpc2_se_check_async(rpc2_request *req, rpc2_se_done_fn done, void *arg)
{
    if (!has_side_effect(req) || !done || req->se_done)
        return RPC2_EINVAL;
    if (!req->se_ops->check)
        return RPC2_ENOSETYPE;
    req->se_done = done;
    req->se_done_arg = arg;
    int rc = req->se_ops->check(req->se_state, req, req->se_transfer, async_check_done,
                              now_for(req));
    if (rc != 0)
        req->se_done = NULL;
    return rc;
}

/* The blocking form: the check runs on the loop; its end wakes the worker. */
static void blocking_check_done(rpc2_request *req, int status, void *arg)
{
    (void)req;
    ctx_sync_finish(arg, status, NULL);
}

struct check_job {
    rpc2_request *req;
    struct ctx_sync sync;
};

static void check_job_run(void *arg)
{
    struct check_job *job = arg;
    /* once the sync is finished the job (on the worker's stack) may be gone */
    rpc2_ctx *ctx = ctx_of_request(job->req);
    int rc = rpc2_se_check_async(job->req, blocking_check_done, &job->sync);
    if (rc != 0)
        ctx_sync_finish(&job->sync, rc, NULL);
    ctx_kick(ctx);
}

int rpc2_se_check(rpc2_request *req)
{
    if (!has_side_effect(req) || !engine_request_blocking(req))
        return RPC2_EINVAL; /* async handlers use rpc2_se_check_async */
    struct check_job job = {.req = req};
    ctx_sync_init(&job.sync, ctx_of_request(req));
    job.sync.threaded = 1;
    return ctx_run_and_wait(ctx_of_request(req), &job.sync, check_job_run, &job);
}

/* ---- the transfer on the loop, the handler's rest on a worker ------------- */

/* Only records what the loop does once the handler has returned
 * (engine_handler_returned): the worker is done with the request before the
 * loop touches it, so nothing here races with the transfer. */
static int transfer_then(rpc2_request *req, struct rpc2_se_desc *desc, rpc2_se_then_fn then,
                         void *arg, int on_loop)
{
    if (!req || !desc || !then || !engine_request_blocking(req) || req->then)
        return RPC2_EINVAL;
    req->then = then;
    req->then_arg = arg;
    req->then_desc = desc;
    req->then_on_loop = on_loop;
    return RPC2_CONTINUED;
}

int rpc2_se_transfer_then(rpc2_request *req, struct rpc2_se_desc *desc, rpc2_se_then_fn then,
                          void *arg)
{
    return transfer_then(req, desc, then, arg, 0);
}

int rpc2_se_transfer_then_loop(rpc2_request *req, struct rpc2_se_desc *desc, rpc2_se_then_fn then,
                               void *arg)
{
    return transfer_then(req, desc, then, arg, 1);
}
