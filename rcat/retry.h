/*
 * retry.h - rcat's retries (--retries, --retry-interval): an operand whose
 * operation failed for a reason a retry can cure (the library decides:
 * rpc2_retry_retryable) is done again, from a fresh connection, after a
 * wait that doubles each time; --max-time bounds the whole of it.
 */
#ifndef RCAT_RETRY_H
#define RCAT_RETRY_H

#include <stdint.h>

#include "ops.h"
#include "url.h"

#define RETRY_BACKOFF 2.0                         /* each wait is twice the one before */
#define RETRY_INTERVAL_US 1000000ull              /* --retry-interval's default: 1 s */
#define RETRY_MAX_INTERVAL_US (300ull * 1000000u) /* no wait longer (unless the interval is) */

struct retry_config {
    unsigned retries;     /* --retries: attempts after the first */
    uint64_t interval_us; /* --retry-interval: the first wait */
};

/* One attempt at an operand: rcat's exit code for it. */
typedef int (*retry_op_fn)(void *arg);

/* Runs op for the operand u until it succeeds, fails for good or the
 * retries (or --max-time) are spent; each retry is reported (a RETR
 * event). Returns the last attempt's exit code. */
int retry_operand(struct ops *o, const struct retry_config *c, const struct url *u, retry_op_fn op,
                  void *arg);

#endif
