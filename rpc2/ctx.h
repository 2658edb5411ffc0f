/*
 * ctx.h - what the public call API (call.c) needs from the driver (ctx.c):
 * the clock, pushing queued packets out, waiting for an outcome by running
 * the loop, and handing work to the loop thread from other threads.
 */
#ifndef RPC2_CTX_H
#define RPC2_CTX_H

#include <pthread.h>
#include <stdint.h>
#include <rpc2/rpc2.h>

#include "mailbox.h"

struct engine;

/* Microseconds on the monotonic clock. */
uint64_t ctx_now(void);
struct engine *ctx_engine(rpc2_ctx *ctx);
/* After the engine was driven from outside a loop callback: send what it
 * queued and re-arm the timer for its next deadline. */
void ctx_kick(rpc2_ctx *ctx);
/* True inside one of the loop's callbacks, where waiting is not allowed. */
int ctx_in_callback(rpc2_ctx *ctx);
/* Runs the loop on this thread until *done. */
void ctx_run_until(rpc2_ctx *ctx, const volatile int *done);
/* Waits us microseconds: runs the loop meanwhile when it is this thread's,
 * sleeps when it runs on another. RPC2_EWOULDBLOCK inside a loop callback. */
int ctx_sleep(rpc2_ctx *ctx, uint64_t us);
/* True when the context's loop runs in another thread than the caller. */
int ctx_foreign_thread(const rpc2_ctx *ctx);
/* Runs fn(arg) on the loop thread, soon. */
int ctx_post(rpc2_ctx *ctx, mailbox_fn fn, void *arg);
int ctx_workers(const rpc2_ctx *ctx);

/*
 * Waiting for an outcome produced on the loop thread. A waiter on the loop
 * thread runs the loop until done; one on another thread sleeps on a
 * condition variable until the loop thread finishes it.
 */
struct ctx_sync {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    volatile int done;
    int status;
    void *result;
    int threaded; /* the waiter is not the loop thread */
};

void ctx_sync_init(struct ctx_sync *s, rpc2_ctx *ctx);
void ctx_sync_dispose(struct ctx_sync *s);
/* From the loop thread: the outcome is in. */
void ctx_sync_finish(struct ctx_sync *s, int status, void *result);
/* Runs start(job) on the loop thread, then waits until s is finished;
 * disposes s. Returns s's status, or RPC2_EWOULDBLOCK when called from a
 * loop callback (start is not run then). */
int ctx_run_and_wait(rpc2_ctx *ctx, struct ctx_sync *s, mailbox_fn start, void *job);

#endif
