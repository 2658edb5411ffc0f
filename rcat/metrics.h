/*
 * metrics.h - rcatd's counters for Prometheus: `rcatd --metrics ADDR:PORT`
 * serves them over HTTP (libmicrohttpd, on its own thread) in the text
 * exposition format, at /metrics.
 *
 * Fed from two sides: serve.c's workers report each call as it starts and
 * ends; the loop thread publishes the context's counters (rpc2_ctx_stats,
 * loop-thread state) once a second. Both go in under one mutex, and a scrape
 * renders under it, so the page is always one consistent snapshot. Every
 * function takes m == NULL as "no metrics" and does nothing.
 */
#ifndef RCAT_METRICS_H
#define RCAT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <rpc2/rpc2.h>

#define METRICS_DEFAULT_HOST "127.0.0.1" /* when --metrics gives a port only */

struct metrics;

/* Serves /metrics on addr: "PORT" (on 127.0.0.1), "HOST:PORT",
 * "[V6ADDR]:PORT", or ":PORT" (every address; the operator's choice, never
 * the default). Port 0 picks a free one (metrics_port). Returns 0, or -1
 * with err saying why. */
int metrics_new(const char *addr, struct metrics **out, char *err, size_t errlen);
/* The address and port it serves on, as "HOST:PORT" or "[V6]:PORT". */
const char *metrics_where(const struct metrics *m);
/* Stops the HTTP thread; after the workers are gone. NULL is fine. */
void metrics_free(struct metrics *m);

/* A call of procedure proc ("FETCH", "STAT", ...) starts. Any thread. */
void metrics_call_begin(struct metrics *m, const char *proc);

struct metrics_call {
    const char *proc;     /* as given to metrics_call_begin */
    const char *status;   /* "ok", "RCAT_NOT_FOUND", "RPC2_EDEAD", ...: a bounded set */
    const char *identity; /* the client's, as bound (NULL: none) */
    uint64_t bytes;       /* file bytes moved by the call's side effect */
    double seconds;       /* how long the call ran */
    double rtt_seconds;   /* the transfer's smoothed round trip at its end; 0: none (no
                           * transfer, or its bytes rode in the call or reply) */
};
/* The call ends. Any thread. */
void metrics_call_end(struct metrics *m, const struct metrics_call *c);

/* The context's counters now. The loop thread, once a second. */
void metrics_set_ctx(struct metrics *m, const struct rpc2_ctx_stats *st);

/* The page, as a scrape gets it: malloc'd, NUL-terminated, *len bytes
 * (the HTTP handler's, and the unit test's). NULL when out of memory. */
char *metrics_render(struct metrics *m, size_t *len);

#endif
