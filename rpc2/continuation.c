/*
 * continuation.c - blocking handlers that leave their transfer to the loop
 * (rpc2_se_transfer_then): the worker runs the handler's blocking part and
 * is let go; the loop initialises and runs the side effect, which may wait
 * on its peer as long as it likes without holding a thread; the handler's
 * rest then runs on a worker again. So a server with a few workers serves
 * any number of slow or stuck peers, and its workers stay free for work
 * that blocks the CPU or the disk.
 *
 * The continuation runs exactly once whatever happens to the request: the
 * outcome of the transfer, or the reason it never ran, or (the context
 * being freed) ECLOSED on the thread that frees it.
 *
 * With rpc2_se_transfer_then_loop the rest runs on the loop instead,
 * deferred to the next turn of the loop rather than called from the
 * transfer's own end (which would free the transfer under its own stack):
 * for a rest that cannot block, it saves two thread hops per call.
 *
 * A handler may also suspend (rpc2_request_suspend) to wait on something
 * of the application's: its rest runs the same way once the application
 * resumes it and the worker that suspended it is back.
 */
#include "engine.h"

int engine_request_continues(const struct rpc2_request *req)
{
    return req->then_due;
}

/* Takes the continuation out of the request, so nothing runs it twice. */
static int run_then(struct rpc2_request *req, int status)
{
    rpc2_se_then_fn then = req->then;
    req->then = NULL;
    req->then_due = 0;
    return then(req, status, req->args, req->result, req->then_arg);
}

int engine_request_blocking(const struct rpc2_request *req)
{
    return req->on_worker || !req->proc->async_handler;
}

int engine_request_to_worker(struct rpc2_request *req)
{
    struct engine *e = req->engine;

    /* Once its transfer has begun (checked, or with a rest to run) or it
     * waits suspended, the call belongs to the loop's side until it ends. */
    if (!req->proc->async_handler || !req->proc->blocking_handler || req->on_worker ||
        req->se_done || req->then || req->suspended || !e->hooks || !e->hooks->run_blocking)
        return RPC2_EINVAL;
    req->on_worker = 1;
    int rc = e->hooks->run_blocking(e->env, req);
    if (rc != 0)
        req->on_worker = 0; /* still the async handler's to answer */
    return rc;
}

int engine_run_handler(struct rpc2_request *req)
{
    if (req->then_due)
        return run_then(req, req->then_status);
    return req->proc->blocking_handler(req, req->args, req->result, req->handler_arg);
}

void engine_handler_orphaned(struct rpc2_request *req, int status)
{
    if (status == RPC2_CONTINUED && req->then)
        run_then(req, RPC2_ECLOSED);
}

/* The transfer is over (or never ran): the handler's rest goes to a worker,
 * or to the loop's next turn when it asked for the loop (a worker if that
 * cannot be had: the context is closing). Without either (no memory to
 * queue it) it runs here rather than never. */
static void transfer_over(rpc2_request *req, int status)
{
    struct engine *e = req->engine;
    req->then_status = status;
    req->then_due = 1;
    if (req->then_on_loop && e->hooks && e->hooks->run_on_loop &&
        e->hooks->run_on_loop(e->env, req) == 0)
        return;
    int rc =
        e->hooks && e->hooks->run_blocking ? e->hooks->run_blocking(e->env, req) : RPC2_ESERVER;
    if (rc != 0)
        engine_handler_returned(req, engine_run_handler(req), e->now);
}

/* What rpc2_se_init and rpc2_se_check do for a handler on a worker, here on
 * the loop with the engine's time. The side-effect type refuses a transfer
 * whose connection has gone or that was aborted. */
static void start_transfer(struct rpc2_request *req, uint64_t now)
{
    const struct se_ops *ops = req->se_ops;
    int rc = req->se_transfer ? rpc2_se_desc_check(req->then_desc) : RPC2_EINVAL;
    if (rc == 0 && (!ops->init || !ops->check))
        rc = RPC2_ENOSETYPE;
    if (rc == 0)
        rc = ops->init(req->se_state, req, req->se_transfer, req->then_desc, now);
    if (rc == 0)
        rc = ops->check(req->se_state, req, req->se_transfer, transfer_over, now);
    if (rc != 0)
        transfer_over(req, rc);
}

/* The handler's rest after its suspension: on a worker, as after a transfer. */
static void resume_now(struct rpc2_request *req)
{
    int status = req->resume_status;
    req->suspended = req->parked = req->resumed = 0;
    transfer_over(req, status);
}

int engine_request_suspend(struct rpc2_request *req, rpc2_se_then_fn then, void *arg)
{
    if (!req || !then || !engine_request_blocking(req) || req->then)
        return RPC2_EINVAL;
    req->then = then;
    req->then_arg = arg;
    req->then_desc = NULL;
    req->then_on_loop = 0; /* a suspension's rest runs on a worker */
    req->suspended = 1;
    return RPC2_CONTINUED;
}

int engine_request_resume(struct rpc2_request *req, int status, uint64_t now)
{
    if (!req || !req->suspended || req->resumed)
        return RPC2_EINVAL;
    req->engine->now = now;
    req->resumed = 1;
    req->resume_status = status;
    if (req->parked)
        resume_now(req);
    return 0;
}

void engine_handler_returned(struct rpc2_request *req, int status, uint64_t now)
{
    req->engine->now = now;
    if (status == RPC2_CONTINUED && req->then && req->suspended && !req->then_due) {
        req->parked = 1;
        if (req->resumed)
            resume_now(req);
        return;
    }
    if (status == RPC2_CONTINUED && req->then && !req->then_due) {
        start_transfer(req, now);
        return;
    }
    if (status == RPC2_CONTINUED) /* said so without rpc2_se_transfer_then */
        status = RPC2_ESERVER;
    engine_reply(req, status, now);
}

void engine_abort_transfers(struct engine *e, int status, uint64_t now)
{
    e->now = now;
    struct rpc2_request *next;
    for (struct rpc2_request *req = e->requests; req; req = next) {
        next = req->next; /* the handler may reply, and free req, as it hears */
        if (req->se_transfer && req->se_ops && req->se_ops->abort)
            req->se_ops->abort(req->se_state, req, req->se_transfer, status, now);
    }
}
