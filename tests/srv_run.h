/*
 * srv_run.h - the main loop of the stand-in servers the shell tests start
 * (tests/busysrv, tests/oldsrv): they are stopped by PID with SIGTERM and
 * found by the port they print, as rcatd is (tests/rcatd_lib.sh).
 */
#ifndef RPC2_TESTS_SRV_RUN_H
#define RPC2_TESTS_SRV_RUN_H

#include <ev.h>
#include <rpc2/rpc2.h>

/* Ignores SIGPIPE, prints "NAME listening on PORT" (ctx's port) and runs
 * loop until SIGTERM or SIGINT. */
void srv_run(struct ev_loop *loop, rpc2_ctx *ctx, const char *name);

#endif
