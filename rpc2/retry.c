/*
 * retry.c - calls run again under a retry policy (retry.h). The policy's
 * arithmetic and the loop are here; waiting is the driver's (ctx_sleep),
 * so the loop keeps serving the context's other connections meanwhile.
 * A call is retried on a fresh connection, its side effect rewound to where
 * it started: the transfer is made again from its beginning.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/retry.h>

#include "ctx.h"

void rpc2_retry_policy_init(struct rpc2_retry_policy *policy)
{
    *policy = (struct rpc2_retry_policy)RPC2_RETRY_POLICY_INIT;
}

int rpc2_retry_policy_check(const struct rpc2_retry_policy *policy)
{
    if (!policy || !(policy->backoff >= 1.0) || isinf(policy->backoff))
        return RPC2_EINVAL;
    return 0;
}

int rpc2_retry_retryable(int error)
{
    switch (error) {
    case RPC2_ETIMEDOUT:
    case RPC2_EDEAD:
    case RPC2_EUNKNOWNCONN:
    case RPC2_ECLOSED:
    case RPC2_ESEFAIL2:
    case RPC2_ECONNREFUSED:
    case RPC2_ESTALLED:
    case RPC2_ESHUTDOWN:
    case RPC2_EBUSY: /* the other transfer ends (or is ended) in time */
        return 1;
    }
    return 0;
}

uint64_t rpc2_retry_delay(const struct rpc2_retry_policy *policy, unsigned n)
{
    double d = (double)policy->interval_us;
    double cap = policy->max_interval_us ? (double)policy->max_interval_us : 1e18;

    for (unsigned i = 1; i < n && d < cap; i++)
        d *= policy->backoff;
    return d < cap ? (uint64_t)d : (uint64_t)cap;
}

/* ---- the loop -------------------------------------------------------------- */

int rpc2_retry_run(rpc2_ctx *ctx, const struct rpc2_retry_policy *policy,
                   rpc2_retry_attempt_fn attempt, void *arg)
{
    uint64_t start = ctx_now();
    uint64_t end = policy && policy->deadline_us ? start + policy->deadline_us : UINT64_MAX;
    int rc;

    if (!ctx || !attempt || rpc2_retry_policy_check(policy) != 0)
        return RPC2_EINVAL;
    if (ctx_in_callback(ctx) && !ctx_foreign_thread(ctx))
        return RPC2_EWOULDBLOCK;
    for (unsigned n = 1;; n++) {
        uint64_t now = ctx_now();

        rc = attempt(n, end == UINT64_MAX ? UINT64_MAX : end > now ? end - now : 0, arg);
        if (rc >= 0 || !rpc2_retry_retryable(rc) || n > policy->retries)
            return rc;
        uint64_t delay = rpc2_retry_delay(policy, n);
        now = ctx_now();
        if (end != UINT64_MAX && (now >= end || delay >= end - now))
            return rc; /* the attempt would start with no time left */
        if (policy->on_retry && policy->on_retry(n + 1, rc, delay, policy->arg) != 0)
            return rc;
        if (ctx_sleep(ctx, delay) != 0)
            return rc;
    }
}

/* ---- one call, again ------------------------------------------------------- */

/* Where a descriptor's fd stood at the start, to put it back. */
struct rewind {
    struct rpc2_se_desc start; /* the descriptor as the caller gave it */
    off_t pos;                 /* the fd's offset; -1: it has none (a pipe) */
    off_t size;                /* a regular file's size; -1: not one */
};

static void rewind_note(struct rewind *r, const struct rpc2_se_desc *d)
{
    struct stat st;

    r->pos = r->size = -1;
    if (!d)
        return;
    r->start = *d;
    if (d->file_kind != RPC2_SE_FILE_FD)
        return;
    r->pos = lseek(d->file.fd.fd, 0, SEEK_CUR);
    if (fstat(d->file.fd.fd, &st) == 0 && S_ISREG(st.st_mode))
        r->size = st.st_size;
}

/* Puts d back as it was given; 0, or -1 when that is impossible (bytes
 * went through a descriptor with no offset). */
static int rewind_desc(const struct rewind *r, struct rpc2_se_desc *d)
{
    void *buf = d->file.vm.buf;
    size_t cap = d->file.vm.cap;
    int moved = d->bytes_transferred > 0;

    if (d->file_kind == RPC2_SE_FILE_FD) {
        if (r->pos < 0)
            return moved ? -1 : 0;
        if (d->direction == RPC2_SE_FETCH && r->size >= 0)
            (void)!ftruncate(d->file.fd.fd, r->size > r->pos ? r->size : r->pos);
        if (lseek(d->file.fd.fd, r->pos, SEEK_SET) < 0)
            return -1;
    }
    *d = r->start;
    if (d->file_kind == RPC2_SE_FILE_VM && d->file.vm.grow) {
        d->file.vm.buf = buf; /* what the library grew stays the caller's */
        d->file.vm.cap = cap;
    }
    return 0;
}

struct call_job {
    int last_error; /* the previous attempt's, for its RETRY event */
    rpc2_ctx *ctx;
    const struct rpc2_bind_params *bp;
    rpc2_conn **conn;
    uint32_t proc;
    xdrproc_t enc, dec;
    const void *args;
    void *result;
    struct rpc2_call_opts opts;
    struct rewind rw;
};

/* A side effect whose own file failed is not cured by calling again. */
static int se_final(const struct rpc2_se_desc *d)
{
    return d && d->error < 0 && d->error != RPC2_ESEFAIL1 && !rpc2_retry_retryable(d->error);
}

/* The transfer's callback hears that it is tried again (event.h): before
 * the attempt, which the callback may cancel. */
static int announce_retry(const struct rpc2_se_desc *d, unsigned attempt, int error)
{
    if (!d || !d->event)
        return 0;
    struct rpc2_event ev = {
        .struct_size = sizeof ev,
        .type = RPC2_EVENT_RETRY,
        .direction = (int)d->direction,
        .is_client = 1,
        .is_source = d->direction == RPC2_SE_STORE,
        .start_byte = d->seek_offset,
        .end_byte = d->quota >= 0 ? d->seek_offset + d->quota - 1 : -1,
        .size = -1,
        .result = error,
        .error_name = rpc2_errname(error),
        .error_description = rpc2_strerror(error),
        .attempt = attempt,
        .desc = d,
    };
    return d->event(&ev, d->event_arg) == RPC2_EVENT_CANCEL ? RPC2_ECANCELED : 0;
}

static int call_attempt(unsigned attempt, uint64_t left_us, void *arg)
{
    struct call_job *j = arg;
    struct rpc2_call_opts opts = j->opts;
    int rc;

    if (left_us == 0)
        return RPC2_ETIMEDOUT;
    if (left_us != UINT64_MAX && (opts.timeout_us == 0 || opts.timeout_us > left_us))
        opts.timeout_us = left_us > UINT32_MAX ? UINT32_MAX : (uint32_t)left_us;
    if (attempt > 1 && opts.se && rewind_desc(&j->rw, opts.se) != 0)
        return RPC2_ESYSTEM; /* final: the bytes cannot be sent again */
    if (attempt > 1 && (rc = announce_retry(opts.se, attempt, j->last_error)) != 0)
        return rc;
    if (!*j->conn) {
        rc = rpc2_bind(j->ctx, j->bp, j->conn);
        if (rc != 0) {
            *j->conn = NULL;
            j->last_error = rc;
            return rc;
        }
    }
    rc = rpc2_call(*j->conn, j->proc, j->enc, j->args, j->dec, j->result, &opts);
    j->last_error = rc;
    if (rc < 0 && rpc2_retry_retryable(rc)) {
        if (se_final(opts.se))
            return opts.se->error;
        rpc2_unbind(*j->conn); /* a fresh one next time: the server may have forgotten it */
        *j->conn = NULL;
    }
    return rc;
}

int rpc2_retry_call(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, rpc2_conn **conn,
                    uint32_t proc, xdrproc_t encode_args, const void *args, xdrproc_t decode_result,
                    void *result, const struct rpc2_call_opts *opts,
                    const struct rpc2_retry_policy *policy)
{
    struct call_job j = {.ctx = ctx,
                         .bp = bp,
                         .conn = conn,
                         .proc = proc,
                         .enc = encode_args,
                         .dec = decode_result,
                         .args = args,
                         .result = result};

    if (!bp || !conn)
        return RPC2_EINVAL;
    if (opts)
        j.opts = *opts;
    rewind_note(&j.rw, j.opts.se);
    return rpc2_retry_run(ctx, policy, call_attempt, &j);
}
