/*
 * srv_run.c - the stand-in servers' main loop (srv_run.h).
 */
#include "srv_run.h"

#include <signal.h>
#include <stdio.h>

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

void srv_run(struct ev_loop *loop, rpc2_ctx *ctx, const char *name)
{
    ev_signal term, intr;

    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&term, on_stop, SIGTERM);
    ev_signal_init(&intr, on_stop, SIGINT);
    ev_signal_start(loop, &term);
    ev_signal_start(loop, &intr);
    printf("%s listening on %d\n", name, rpc2_ctx_port(ctx));
    fflush(stdout);
    ev_run(loop, 0);
    ev_signal_stop(loop, &term);
    ev_signal_stop(loop, &intr);
}
