/*
 * ctx.h - what the public call API (call.c) needs from the driver (ctx.c):
 * the clock, pushing queued packets out, waiting for an outcome by running
 * the loop, and handing work to the loop thread from other threads.
 */
#ifndef RPC2_CTX_H
#define RPC2_CTX_H

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
/* True when the context's loop runs in another thread than the caller. */
int ctx_foreign_thread(const rpc2_ctx *ctx);
/* Runs fn(arg) on the loop thread, soon. */
int ctx_post(rpc2_ctx *ctx, mailbox_fn fn, void *arg);
int ctx_workers(const rpc2_ctx *ctx);

#endif
