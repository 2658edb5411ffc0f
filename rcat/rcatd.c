/*
 * rcatd.c - the rcat file server as a process: it starts the parts, runs
 * the loop everything runs on, and stops. What a call does is serve.c's;
 * the command line is rcatd_options.c's, the log logfile.c's, the key and
 * access files reload.c's, the counters counters.c's.
 *
 * The loop is ours (params.loop), so that signals arrive as libev watchers
 * on the loop thread: SIGTERM and SIGINT stop, SIGHUP reopens the log
 * and reloads the key and access files (ending the connections of whoever
 * lost their key or a right), SIGUSR1 logs the counters, and none of it
 * runs inside a signal handler.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

#include "counters.h"
#include "hookrun.h"
#include "level.h"
#include "logfile.h"
#include "metrics.h"
#include "partials.h"
#include "rcatd_options.h"
#include "reload.h"
#include "serve.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define DRAIN_POLL_S 0.05 /* how often a stopping server looks at its running calls */
/* After the drain time the transfers are ended; their handlers get this
 * long to reply before the process exits without them. */
#define DRAIN_GRACE_S 2.0

struct daemon {
    struct ev_loop *loop;
    rpc2_ctx *ctx;
    struct serve *serve;
    struct logfile log;
    struct reload reload;
    struct counters counters;
    ev_signal sigterm, sigint, sighup, sigusr1;
    ev_timer drain;
    ev_tstamp drain_deadline;
    struct metrics *metrics;
    unsigned long drain_time_s;
    struct partials *partials; /* the sweeper of stale resumable partials */
    struct hookrun *hooks;     /* post-store commands (--hooks); NULL: none */
    int stopping;
    int transfers_ended; /* the drain time passed: running transfers were aborted */
};

/* ---- signals and stopping ---------------------------------------------------- */

/* The drain time is over: every transfer still running ends now with
 * RPC2_ESHUTDOWN (its client hears it in the reply; a store's temporary is
 * removed), and the handlers get DRAIN_GRACE_S to reply. */
static void end_transfers(struct daemon *d, unsigned running)
{
    logfile_printf(&d->log, "rcatd: %u calls still running after %lu s: ending their transfers",
                   running, d->drain_time_s);
    d->transfers_ended = 1;
    d->drain_deadline = ev_now(d->loop) + DRAIN_GRACE_S;
    rpc2_ctx_abort_transfers(d->ctx, RPC2_ESHUTDOWN);
    if (d->hooks)
        hookrun_end_all(d->hooks); /* their calls then fail with RCAT_HOOK_FAILED */
}

static void on_drain(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct daemon *d = w->data;
    unsigned running = serve_running(d->serve);

    (void)revents;
    if (running == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (ev_now(loop) < d->drain_deadline)
        return;
    if (!d->transfers_ended) {
        end_transfers(d, running);
        return;
    }
    logfile_printf(&d->log, "rcatd: %u calls still running after %lu s; exiting without them",
                   running, d->drain_time_s);
    _exit(1); /* the stuck workers would hang rpc2_ctx_free, and race exit()'s stdio teardown */
}

/* The first signal refuses new calls and lets running ones finish, with the
 * loop still running: a transfer needs the loop, and rpc2_ctx_free waits for
 * the workers. After --drain-time the transfers still running are ended
 * with an error to their clients; a handler stuck in the filesystem past
 * DRAIN_GRACE_S more is left behind. A second signal does not wait at all
 * (interrupted stores then leave their temporary files behind). */
static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    (void)revents;
    if (d->stopping) {
        logfile_printf(&d->log, "rcatd: signal %d again: exiting now", w->signum);
        _exit(1);
    }
    d->stopping = 1;
    serve_stop(d->serve);
    logfile_printf(&d->log, "rcatd: signal %d: stopping (%u calls running)", w->signum,
                   serve_running(d->serve));
    d->drain_deadline = ev_now(loop) + (double)d->drain_time_s;
    ev_timer_init(&d->drain, on_drain, 0., DRAIN_POLL_S);
    d->drain.data = d;
    ev_timer_start(loop, &d->drain);
}

/* ---- the other signals ------------------------------------------------------- */

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    (void)loop, (void)revents;
    logfile_reopen(&d->log);
    reload_now(&d->reload, d->ctx);
}

static void on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    (void)loop, (void)revents;
    counters_log(&d->counters, "SIGUSR1");
}

static void watch_signal(struct daemon *d, ev_signal *w, int sig,
                         void (*cb)(struct ev_loop *, ev_signal *, int))
{
    ev_signal_init(w, cb, sig);
    w->data = d;
    ev_signal_start(d->loop, w);
}

/* ---- running ---------------------------------------------------------------- */

static int start_serving(struct daemon *d, const struct options *o)
{
    struct serve_config sc = {.root = o->root,
                              .writable = o->writable,
                              .min_security = o->min_security,
                              .log = logfile_from_serve,
                              .log_arg = &d->log,
                              .metrics = d->metrics,
                              .restart_interval = (uint64_t)o->restart_interval_mib << 20,
                              .split_idle_us = (uint64_t)o->split_idle_s * 1000000u};
    const char *why = "";

    if (o->hooks_path) {
        d->hooks = hookrun_new(d->loop, o->root, logfile_from_serve, &d->log);
        if (!d->hooks) {
            fprintf(stderr, "rcatd: out of memory\n");
            return -1;
        }
        sc.hooks_runner = d->hooks;
    }
    int rc = serve_new(&sc, &d->serve, &why);

    if (rc != 0) {
        fprintf(stderr, "rcatd: %s: %s: %s\n", o->root, why, strerror(-rc));
        return -1;
    }
    d->reload.serve = d->serve;
    return 0;
}

static int start_rpc2(struct daemon *d, const struct options *o)
{
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    int rc;

    rpc2_params_init(&p);
    rcatd_options_params(o, &p);
    p.loop = d->loop;
    if (d->reload.keys) {
        p.secret_for = reload_secret_for;
        p.secret_arg = &d->reload;
    }
    p.log = logfile_from_rpc2;
    p.log_arg = &d->log;
    rc = rpc2_ctx_new(&p, &d->ctx);
    rpc2_sftp_params_init(&sp);
    sp.rate_max_bps = o->max_rate; /* no client's wish goes beyond these */
    sp.policies_allowed = o->policies_allowed;
    sp.memory_cap = (uint64_t)o->memory_cap_mib << 20;
    if (rc == 0)
        rc = rpc2_sftp_activate(d->ctx, &sp);
    if (rc == 0)
        rc = serve_export(d->serve, d->ctx);
    if (rc != 0) {
        fprintf(stderr, "rcatd: cannot serve on");
        for (int i = 0; i < p.n_listen; i++)
            fprintf(stderr, " %s", p.listen[i]);
        fprintf(stderr, ": %s\n", rpc2_strerror(rc));
        return -1;
    }
    return 0;
}

/* --connect: the clients this server announces itself to (rpc2_ctx_announce). */
static int start_announcing(struct daemon *d, const struct options *o)
{
    char host[256], port[8];

    for (int i = 0; i < o->n_connect; i++) {
        int rc = rcatd_connect_target(o->connect[i], host, sizeof host, port, sizeof port);

        if (rc == 0)
            rc = rpc2_ctx_announce(d->ctx, host, port,
                                   (uint64_t)o->connect_interval_s * 1000000u);
        if (rc != 0) {
            fprintf(stderr, "rcatd: cannot announce to %s: %s\n", o->connect[i],
                    rpc2_strerror(rc));
            return -1;
        }
        logfile_printf(&d->log, "rcatd: announcing to %s every %lu s", o->connect[i],
                       o->connect_interval_s);
    }
    return 0;
}

static int start_metrics(struct daemon *d, const struct options *o)
{
    char err[512];

    if (!o->metrics_addr)
        return 0;
    if (metrics_new(o->metrics_addr, &d->metrics, err, sizeof err) != 0) {
        fprintf(stderr, "rcatd: %s\n", err);
        return -1;
    }
    return 0;
}

static void log_start(struct daemon *d, const struct options *o)
{
    logfile_printf(&d->log, "rcatd %s: serving %s%s on port %d with %lu workers", PACKAGE_VERSION,
                   o->root, o->writable ? " (writable)" : " (read-only)", rpc2_ctx_port(d->ctx),
                   o->workers);
    logfile_printf(&d->log,
                   "rcatd: limits max-connections=%lu max-per-address=%lu max-running=%lu "
                   "cookie-threshold=%lu idle-timeout=%lu s max-running-per-identity=%lu "
                   "max-running-per-address=%lu stall-timeout=%lu s drain-time=%lu s memory-cap=%lu MiB",
                   o->limits.max_connections, o->limits.max_per_address, o->limits.max_running,
                   o->limits.cookie_threshold, o->limits.idle_timeout_s,
                   o->limits.max_running_per_identity, o->limits.max_running_per_address,
                   o->limits.stall_timeout_s, o->drain_time_s, o->memory_cap_mib);
    logfile_printf(&d->log, "rcatd: security min-security=%s keys=%s access=%s",
                   level_name(o->min_security),
                   o->keys_path ? o->keys_path : "none (binds above none are refused)",
                   o->access_path ? o->access_path : "none (every client gets the defaults)");
    if (o->hooks_path)
        logfile_printf(&d->log, "rcatd: post-store commands from %s", o->hooks_path);
}

static int run(struct daemon *d, const struct options *o)
{
    d->loop = ev_loop_new(EVFLAG_AUTO);
    if (!d->loop) {
        fprintf(stderr, "rcatd: cannot create an event loop\n");
        return 1;
    }
    d->drain_time_s = o->drain_time_s;
    d->reload = (struct reload){.keys_path = o->keys_path,
                                .access_path = o->access_path,
                                .hooks_path = o->hooks_path,
                                .log = &d->log};
    if (reload_keys_start(&d->reload) != 0 || start_metrics(d, o) != 0 ||
        start_serving(d, o) != 0 || reload_access_start(&d->reload) != 0 || start_rpc2(d, o) != 0)
        return 1;
    watch_signal(d, &d->sigterm, SIGTERM, on_stop);
    watch_signal(d, &d->sigint, SIGINT, on_stop);
    watch_signal(d, &d->sighup, SIGHUP, on_hup);
    watch_signal(d, &d->sigusr1, SIGUSR1, on_usr1);
    log_start(d, o);
    if (start_announcing(d, o) != 0)
        return 1;
    d->partials = partials_start(o->root, o->partial_max_age_s, logfile_from_serve, &d->log);
    d->counters = (struct counters){
        .loop = d->loop, .ctx = d->ctx, .serve = d->serve, .log = &d->log, .metrics = d->metrics};
    counters_start(&d->counters, o->stats_interval_s);
    printf("rcatd listening on %d\n", rpc2_ctx_port(d->ctx));
    fflush(stdout);
    ev_run(d->loop, 0);
    partials_stop(d->partials);
    counters_log(&d->counters, "exit");
    logfile_printf(&d->log, "rcatd: stopped");
    return 0;
}

static void teardown(struct daemon *d)
{
    if (d->loop) {
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sighup);
        ev_signal_stop(d->loop, &d->sigusr1);
        if (d->stopping)
            ev_timer_stop(d->loop, &d->drain);
    }
    counters_stop(&d->counters);
    rpc2_ctx_free(d->ctx);
    hookrun_free(d->hooks);     /* after the context: a call's end may cancel its command */
    metrics_free(d->metrics);   /* after the context: its workers count calls until freed */
    reload_dispose(&d->reload); /* after the context: it may look a secret up until freed */
    serve_free(d->serve);
    if (d->loop)
        ev_loop_destroy(d->loop);
    logfile_close(&d->log);
}

int main(int argc, char **argv)
{
    struct options o;
    struct daemon d = {0};
    int rc = rcatd_options_parse(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if ((rc = logfile_open(&d.log, o.log_path)) != 0) {
        fprintf(stderr, "rcatd: cannot open the log %s: %s\n", o.log_path, strerror(-rc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill a server */
    rc = run(&d, &o);
    teardown(&d);
    return rc;
}
