/*
 * retry.h - running a call again when it failed for a reason that a retry
 * can cure: the server was lost, restarted, unreachable or refused the
 * connection, the call timed out, its transfer stalled, or the server was
 * shutting down. Unattended transfers (cron, spools) rely on it: a server
 * restarted at night should cost a few retries, not a failed job.
 *
 * A policy says how often (attempts, a first wait, a backoff factor, a cap
 * on one wait) and for how long in all (a deadline). Each retry is told to
 * the caller before its wait (attempt number, the error, the delay), so a
 * tool can log it or print an event. rpc2_retry_call() binds again before
 * every retry and rewinds the side-effect descriptor, so the transfer
 * starts over from its beginning.
 */
#ifndef RPC2_RETRY_H
#define RPC2_RETRY_H

#include <stdint.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Told before each retry's wait: attempt is the number of the attempt
 * about to be made (2 for the first retry), error the rpc2 error the
 * previous attempt ended with, delay_us the wait before the attempt.
 * Return 0 to go on, anything else to give up: the run then returns error.
 * Runs on the thread that runs the retries.
 */
typedef int (*rpc2_retry_fn)(unsigned attempt, int error, uint64_t delay_us, void *arg);

struct rpc2_retry_policy {
    unsigned retries;         /* attempts after the first; 0: the call runs once */
    uint64_t interval_us;     /* the wait before the first retry */
    double backoff;           /* each wait is the previous one times this (>= 1; 1: fixed) */
    uint64_t max_interval_us; /* no wait is longer; 0: no cap */
    /* The whole run, from its start: no wait ends and no call runs past it
     * (each call's timeout_us is cut to what is left); 0: no deadline. A
     * bind is bounded by the context's dead-peer silence, not by this. */
    uint64_t deadline_us;
    rpc2_retry_fn on_retry; /* optional */
    void *arg;
};

/* No retries; when retries are set: 1 s, doubling, at most 1 min apart. */
#define RPC2_RETRY_POLICY_INIT                                                                     \
    {                                                                                              \
        .interval_us = 1000000, .backoff = 2.0, .max_interval_us = 60000000                        \
    }
RPC2_EXPORT void rpc2_retry_policy_init(struct rpc2_retry_policy *policy);
/* 0, or RPC2_EINVAL for a backoff below 1 (or not a number). */
RPC2_EXPORT int rpc2_retry_policy_check(const struct rpc2_retry_policy *policy);

/*
 * Whether a retry can cure error: RPC2_ETIMEDOUT, RPC2_EDEAD,
 * RPC2_EUNKNOWNCONN, RPC2_ECLOSED, RPC2_ESEFAIL2 (the transfer killed its
 * connection), RPC2_ECONNREFUSED, RPC2_ESTALLED, RPC2_ESHUTDOWN and
 * RPC2_EBUSY (a resumed transfer whose partial file another transfer, e.g.
 * the server's end of an attempt killed at the client, still writes). Never
 * an application status (> 0) nor anything about the request or its file:
 * RPC2_EADDR (a name that does not resolve), RPC2_ECANCELED, RPC2_ELIMIT,
 * RPC2_EAUTH, RPC2_ESECURITY, RPC2_ENOENT, RPC2_EACCES, RPC2_ENOSPC,
 * RPC2_EEXIST, RPC2_ECHANGED, RPC2_EINTEGRITY ... are final.
 */
RPC2_EXPORT int rpc2_retry_retryable(int error);

/* The wait before retry n (1: the first): interval_us * backoff^(n-1),
 * capped at max_interval_us. */
RPC2_EXPORT uint64_t rpc2_retry_delay(const struct rpc2_retry_policy *policy, unsigned n);

/*
 * One attempt of whatever is retried: attempt counts from 1, left_us is
 * the time left before the deadline (UINT64_MAX: none). Returns 0, a
 * positive application status, or an rpc2 error; only a retryable error
 * (rpc2_retry_retryable) is tried again.
 */
typedef int (*rpc2_retry_attempt_fn)(unsigned attempt, uint64_t left_us, void *arg);

/*
 * Runs attempt until it succeeds, fails for good, the retries are spent or
 * the next wait would end past the deadline; returns the last attempt's
 * outcome. Waits run ctx's loop when it is this thread's (so connections
 * keep being served), and sleep when the loop runs on another thread.
 * RPC2_EINVAL for a bad policy, RPC2_EWOULDBLOCK from a loop callback.
 */
RPC2_EXPORT int rpc2_retry_run(rpc2_ctx *ctx, const struct rpc2_retry_policy *policy,
                               rpc2_retry_attempt_fn attempt, void *arg);

/*
 * rpc2_call() under a policy. *conn is the connection to use first (NULL:
 * bound here with bp); after a retryable failure it is unbound, and bound
 * again with bp before the next attempt (a restarted server has forgotten
 * it). On return *conn is the connection of the last attempt, or NULL when
 * its bind failed: the caller unbinds it.
 *
 * opts->se, if any, is rewound before each retry: its out fields cleared, a
 * descriptor's fd put back at the offset it had at the start (and a regular
 * file the sink wrote cut back to its size at the start), so the transfer
 * is made again from its beginning; with opts->se->resume it continues from
 * the last restart point the source confirms instead. A side effect on a
 * descriptor that cannot be rewound (a pipe that bytes already went
 * through) is not retried; nor one whose file failed (opts->se->error not
 * retryable). Its event callback (event.h) hears RPC2_EVENT_RETRY before
 * each retry (attempt, and in result the error the last attempt ended
 * with), and may cancel it (the run then returns RPC2_ECANCELED).
 */
RPC2_EXPORT int rpc2_retry_call(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, rpc2_conn **conn,
                                uint32_t proc, xdrproc_t encode_args, const void *args,
                                xdrproc_t decode_result, void *result,
                                const struct rpc2_call_opts *opts,
                                const struct rpc2_retry_policy *policy);

#ifdef __cplusplus
}
#endif

#endif
