/*
 * retry.c - rcat's retry loop over the library's (rpc2_retry_run): the
 * library decides which errors are worth another attempt, computes the
 * waits and keeps them within the deadline; this file says what an attempt
 * is (one operand's whole operation, on a fresh connection) and tells the
 * operator about each retry.
 */
#include <stdint.h>

#include <rpc2/retry.h>

#include "report.h"
#include "retry.h"

struct job {
    struct ops *o;
    const struct retry_config *c;
    const struct url *u;
    retry_op_fn op;
    void *arg;
    int code; /* the last attempt's exit code */
};

/* A failure the library must not retry: a local one, or one ops would not
 * repeat (ops_last_error). Positive: an application status, never retried. */
#define NOT_RETRIED 1

static int attempt(unsigned n, uint64_t left_us, void *arg)
{
    struct job *j = arg;
    int err;

    (void)left_us; /* --max-time's own timer ends what runs */
    ops_begin_attempt(j->o, j->u, n > 1);
    j->code = j->op(j->arg);
    if (j->code == RCAT_EXIT_OK)
        return 0;
    err = ops_last_error(j->o);
    return err < 0 ? err : NOT_RETRIED;
}

static int on_retry(unsigned n, int error, uint64_t delay_us, void *arg)
{
    struct job *j = arg;

    report_retry(n, j->c->retries + 1, rpc2_errname(error), delay_us);
    ops_watch_signals(j->o);
    return 0;
}

int retry_operand(struct ops *o, const struct retry_config *c, const struct url *u, retry_op_fn op,
                  void *arg)
{
    struct job j = {.o = o, .c = c, .u = u, .op = op, .arg = arg, .code = RCAT_EXIT_OK};
    struct rpc2_retry_policy p = RPC2_RETRY_POLICY_INIT;
    uint64_t left = ops_time_left_us(o);

    p.retries = c->retries;
    p.interval_us = c->interval_us;
    p.backoff = RETRY_BACKOFF;
    p.max_interval_us =
        c->interval_us > RETRY_MAX_INTERVAL_US ? c->interval_us : RETRY_MAX_INTERVAL_US;
    p.deadline_us = left == UINT64_MAX ? 0 : left ? left : 1;
    p.on_retry = on_retry;
    p.arg = &j;
    rpc2_retry_run(ops_ctx(o), &p, attempt, &j);
    return j.code;
}
