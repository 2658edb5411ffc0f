/*
 * call.c - the public client and server API around the engine: argument
 * checks, name resolution, and the blocking forms of bind, call and unbind,
 * which either run the loop on the caller's thread until the outcome is in,
 * or, when the loop runs on another thread, hand the work to it and wait.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "engine.h"

/* ---- bind --------------------------------------------------------------- */

struct bind_job {
    rpc2_ctx *ctx;
    struct rpc2_addr server;
    struct engine_bind_args args;
    rpc2_bind_cb cb;
    void *cb_arg;
    struct ctx_sync sync;
};

static int bind_prepare(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, struct bind_job *job)
{
    if (!ctx || !bp || !bp->host || !bp->port)
        return RPC2_EINVAL;
    memset(job, 0, sizeof *job);
    job->ctx = ctx;
    int rc = addr_resolve(bp->host, bp->port, &job->server.ss, &job->server.len);
    if (rc != 0)
        return rc;
    job->args = (struct engine_bind_args){
        .subsystem = bp->subsystem,
        .se_type = bp->se_type,
        .security = bp->security,
        .identity = bp->identity,
        .secret = bp->secret,
    };
    return 0;
}

static void bind_start(void *arg)
{
    struct bind_job *job = arg;
    rpc2_ctx *ctx = job->ctx; /* a finished job may be gone: its waiter returns */
    int rc = engine_bind(ctx_engine(ctx), &job->server, &job->args, job->cb, job->cb_arg,
                         ctx_now());
    if (rc != 0)
        job->cb(rc, NULL, job->cb_arg);
    ctx_kick(ctx);
}

static void bind_done_sync(int status, rpc2_conn *conn, void *arg)
{
    ctx_sync_finish(arg, status, conn);
}

int rpc2_bind(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, rpc2_conn **out)
{
    struct bind_job job;
    if (!out)
        return RPC2_EINVAL;
    *out = NULL;
    int rc = bind_prepare(ctx, bp, &job);
    if (rc != 0)
        return rc;
    ctx_sync_init(&job.sync, ctx);
    job.cb = bind_done_sync;
    job.cb_arg = &job.sync;
    rc = ctx_run_and_wait(ctx, &job.sync, bind_start, &job);
    *out = rc == 0 ? job.sync.result : NULL;
    return rc;
}

int rpc2_bind_async(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, rpc2_bind_cb cb, void *arg)
{
    struct bind_job job;
    if (!cb)
        return RPC2_EINVAL;
    int rc = bind_prepare(ctx, bp, &job);
    if (rc != 0)
        return rc;
    rc = engine_bind(ctx_engine(ctx), &job.server, &job.args, cb, arg, ctx_now());
    ctx_kick(ctx);
    return rc;
}

/* ---- calls -------------------------------------------------------------- */

struct call_job {
    rpc2_conn *conn;
    struct engine_call_args args;
    struct ctx_sync sync;
};

static rpc2_ctx *ctx_of(rpc2_conn *conn)
{
    return engine_of(conn)->env;
}

static struct engine_call_args call_args(uint32_t proc, xdrproc_t encode_args, const void *args,
                                         xdrproc_t decode_result, void *result,
                                         const struct rpc2_call_opts *opts)
{
    return (struct engine_call_args){
        .proc = proc,
        .encode_args = encode_args,
        .args = args,
        .decode_result = decode_result,
        .result = result,
        .timeout_us = opts ? opts->timeout_us : 0,
        .se = opts ? opts->se : NULL,
    };
}

static void call_done_sync(int status, void *result, void *arg)
{
    (void)result;
    ctx_sync_finish(arg, status, NULL);
}

static void call_start(void *arg)
{
    struct call_job *job = arg;
    rpc2_ctx *ctx = ctx_of(job->conn);
    int rc = engine_call(job->conn, &job->args, call_done_sync, &job->sync, ctx_now());
    if (rc != 0)
        ctx_sync_finish(&job->sync, rc, NULL);
    ctx_kick(ctx);
}

int rpc2_call(rpc2_conn *conn, uint32_t proc, xdrproc_t encode_args, const void *args,
              xdrproc_t decode_result, void *result, const struct rpc2_call_opts *opts)
{
    if (!conn)
        return RPC2_EINVAL;
    struct call_job job = {.conn = conn};
    job.args = call_args(proc, encode_args, args, decode_result, result, opts);
    ctx_sync_init(&job.sync, ctx_of(conn));
    return ctx_run_and_wait(ctx_of(conn), &job.sync, call_start, &job);
}

int rpc2_call_async(rpc2_conn *conn, uint32_t proc, xdrproc_t encode_args, const void *args,
                    xdrproc_t decode_result, void *result, const struct rpc2_call_opts *opts,
                    rpc2_call_cb cb, void *arg)
{
    if (!conn)
        return RPC2_EINVAL;
    struct engine_call_args a = call_args(proc, encode_args, args, decode_result, result, opts);
    int rc = engine_call(conn, &a, cb, arg, ctx_now());
    ctx_kick(ctx_of(conn));
    return rc;
}

static void cancel_on_loop(void *arg)
{
    rpc2_conn *conn = arg;
    (void)engine_cancel(conn, ctx_now()); /* the call may have ended meanwhile */
    ctx_kick(ctx_of(conn));
}

int rpc2_cancel(rpc2_conn *conn)
{
    if (!conn)
        return RPC2_EINVAL;
    rpc2_ctx *ctx = ctx_of(conn);
    if (ctx_foreign_thread(ctx))
        return ctx_post(ctx, cancel_on_loop, conn); /* protocol state is the loop's */
    int rc = engine_cancel(conn, ctx_now());
    ctx_kick(ctx);
    return rc;
}

/* ---- unbind ------------------------------------------------------------- */

struct unbind_job {
    rpc2_conn *conn;
    struct ctx_sync sync;
};

static void unbind_start(void *arg)
{
    struct unbind_job *job = arg;
    rpc2_ctx *ctx = ctx_of(job->conn);
    engine_unbind(job->conn, ctx_now());
    ctx_kick(ctx);
    ctx_sync_finish(&job->sync, 0, NULL);
}

void rpc2_unbind(rpc2_conn *conn)
{
    if (!conn)
        return;
    rpc2_ctx *ctx = ctx_of(conn);
    struct unbind_job job = {.conn = conn};
    ctx_sync_init(&job.sync, ctx);
    if (!job.sync.threaded) {
        /* No waiting: the notice goes out in the background. */
        unbind_start(&job);
        ctx_sync_dispose(&job.sync);
        return;
    }
    (void)ctx_run_and_wait(ctx, &job.sync, unbind_start, &job);
}

uint32_t rpc2_conn_srtt_us(const rpc2_conn *conn)
{
    return conn ? conn->rtt.srtt_us : 0;
}

/* ---- server ------------------------------------------------------------- */

int rpc2_export(rpc2_ctx *ctx, uint32_t subsystem, const struct rpc2_proc *procs, size_t n_procs,
                void *arg)
{
    if (!ctx)
        return RPC2_EINVAL;
    for (size_t i = 0; i < n_procs; i++)
        if (procs[i].blocking_handler && ctx_workers(ctx) == 0)
            return RPC2_EINVAL; /* blocking handlers need params.workers > 0 */
    return engine_export(ctx_engine(ctx), subsystem, procs, n_procs, arg);
}

int rpc2_request_suspend(rpc2_request *req, rpc2_se_then_fn then, void *arg)
{
    return engine_request_suspend(req, then, arg);
}

int rpc2_request_resume(rpc2_request *req, int status)
{
    if (!req)
        return RPC2_EINVAL;
    rpc2_ctx *ctx = req->engine->env;
    int rc = engine_request_resume(req, status, ctx_now());
    ctx_kick(ctx);
    return rc;
}

int rpc2_request_to_worker(rpc2_request *req)
{
    if (!req)
        return RPC2_EINVAL;
    return engine_request_to_worker(req);
}

int rpc2_reply(rpc2_request *req, int status)
{
    if (!req || engine_request_blocking(req))
        return RPC2_EINVAL; /* a blocking handler replies by returning */
    rpc2_ctx *ctx = req->engine->env;
    int rc = engine_reply(req, status, ctx_now());
    ctx_kick(ctx);
    return rc;
}
