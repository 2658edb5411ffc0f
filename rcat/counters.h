/*
 * counters.h - rcatd's view of the context's counters (rpc2_ctx_stats): one
 * log line with all of them (on SIGUSR1, every --stats-interval when they
 * changed, and at exit), and a copy for /metrics (metrics.h) once a second.
 * They are loop-thread state, so everything here runs on the loop.
 */
#ifndef RCAT_COUNTERS_H
#define RCAT_COUNTERS_H

#include <ev.h>
#include <rpc2/rpc2.h>

#include "logfile.h"
#include "metrics.h"
#include "serve.h"

/* Embedded in rcatd's state, zeroed; the first five are set before
 * counters_start. */
struct counters {
    struct ev_loop *loop;
    rpc2_ctx *ctx;
    struct serve *serve; /* its own count, LIST's names read */
    struct logfile *log;
    struct metrics *metrics; /* NULL: no /metrics */
    ev_timer interval, publish;
    int started;
    struct rpc2_ctx_stats last_logged; /* what the periodic line last showed */
};

/* Starts the timers: a line every interval_s when something changed (0:
 * none), and the copy to the metrics, whose address is logged. */
void counters_start(struct counters *c, unsigned long interval_s);
/* The line now; why says what asked for it ("SIGUSR1", "exit"). */
void counters_log(struct counters *c, const char *why);
void counters_stop(struct counters *c);

#endif
