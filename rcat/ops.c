/*
 * ops.c - rcat's operations, on the public rpc2 API only: the run they
 * share, one context on a libev loop rcat owns, so that a signal or
 * --max-time can cancel the call in flight (ops_call_once). The
 * connections are ops_conn.c's, fetch and store ops_xfer.c's, stat and ls
 * ops_browse.c's; what a failure means is judged in verdict.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rpc2/sftp.h>

#include "ops_impl.h"
#include "report.h"

static uint64_t now_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- signals --------------------------------------------------------------- */

static void die_by_signal(int sig)
{
    sigset_t set;

    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* Cancelling the call lets the library remove an atomic fetch's temporary
 * before rcat dies. A second signal does not wait for that. */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct ops *o = w->data;

    (void)loop;
    (void)revents;
    if (o->signal || (!o->in_call && !o->cancel_all)) {
        report_done(128 + w->signum);
        die_by_signal(w->signum);
    }
    o->signal = w->signum;
    if (o->cancel_all)
        o->cancel_all(o->cancel_all_arg);
    else
        rpc2_cancel(o->in_call);
}

/* --max-time: the call in flight is cancelled (an atomic fetch leaves no
 * temporary); a bind in progress is abandoned (ops_conn.c); every later
 * operand fails at once. */
static void on_time_limit(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ops *o = w->data;

    (void)loop;
    (void)revents;
    o->timed_out = 1;
    if (o->cancel_all)
        o->cancel_all(o->cancel_all_arg);
    else if (o->in_call)
        rpc2_cancel(o->in_call);
}

static void start_time_limit(struct ops *o)
{
    if (!o->cfg.max_time_us)
        return;
    ev_timer_init(&o->time_limit, on_time_limit, (double)o->cfg.max_time_us / 1e6, 0.);
    o->time_limit.data = o;
    ev_timer_start(o->loop, &o->time_limit);
}

/* A signal ignored when rcat started (nohup's SIGHUP, SIGINT in a
 * background job) stays ignored. */
static void init_signals(struct ops *o)
{
    static const int which[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction was;

    o->sigpipe_default = sigaction(SIGPIPE, NULL, &was) == 0 && was.sa_handler == SIG_DFL;
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        if (sigaction(which[i], NULL, &was) == 0 && was.sa_handler == SIG_IGN)
            continue;
        ev_signal_init(&o->sigs[o->n_sigs], on_signal, which[i]);
        o->sigs[o->n_sigs++].data = o;
    }
}

/* Watched only while a call runs: outside one there is nothing to clean
 * up, and the default action also interrupts what blocks outside the loop
 * (opening a FIFO that has no reader yet). SIGPIPE is ignored while a call
 * runs: a reader gone mid-fetch (`rcat URL | head`) then fails the write,
 * the transfer is aborted and the server told at once, instead of waiting
 * for a peer that died (fetch_into then ends rcat by SIGPIPE, as cat). */
static void watch_signals(struct ops *o, int on)
{
    if (o->sigpipe_default)
        signal(SIGPIPE, on ? SIG_IGN : SIG_DFL);
    for (size_t i = 0; i < o->n_sigs; i++) {
        if (on)
            ev_signal_start(o->loop, &o->sigs[i]);
        else
            ev_signal_stop(o->loop, &o->sigs[i]);
    }
}

void ops_exit_if_interrupted(struct ops *o)
{
    int sig = o->signal;

    if (!sig)
        return;
    report_done(128 + sig);
    report_flush_stdout();
    ops_free(o);
    die_by_signal(sig);
}

/* ---- the context and connections -------------------------------------- */

static void on_log(enum rpc2_log_level level, const char *message, void *arg)
{
    (void)arg;
    report_library_log((int)level, message);
}

/* The key file's error names the file first ("FILE: why"): the file goes
 * to report_error's FILE, the rest is the text. The library never puts any
 * part of the secret in it. */
static int fail_key_file(const char *path, int rc, const char *err)
{
    size_t n = strlen(path);
    const char *why = err;

    if (!strncmp(err, path, n) && err[n] == ':' && err[n + 1] == ' ')
        why = err + n + 2;
    else if (!*err)
        why = rpc2_strerror(rc);
    report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), path, "unusable key file: %s", why);
    return RCAT_EXIT_LOCAL;
}

static int load_secret(struct ops *o)
{
    char err[512] = "";
    int rc;

    if (o->cfg.security == RPC2_SEC_NONE)
        return RCAT_EXIT_OK; /* an explicit --security none: the key is not needed */
    rc = rpc2_keys_load_secret(o->cfg.key_file, o->secret, err, sizeof err);
    return rc == 0 ? RCAT_EXIT_OK : fail_key_file(o->cfg.key_file, rc, err);
}

int ops_new(const struct ops_config *c, struct ops **out)
{
    struct ops *o = calloc(1, sizeof *o);
    struct rpc2_params p;
    int rc;

    *out = NULL;
    if (!o || !(o->loop = ev_default_loop(0))) {
        free(o);
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", NULL, "cannot start the event loop");
        return RCAT_EXIT_LOCAL;
    }
    o->cfg = *c;
    o->slots = calloc(c->servers ? c->servers : 1, sizeof *o->slots);
    if (!o->slots) {
        ops_free(o);
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", NULL, "out of memory");
        return RCAT_EXIT_LOCAL;
    }
    rc = load_secret(o);
    if (rc != RCAT_EXIT_OK) {
        ops_free(o);
        return rc;
    }
    rpc2_params_init(&p);
    p.loop = o->loop;
    if (c->dead_peer_us)
        p.dead_peer_us = c->dead_peer_us;
    o->dead_peer_us = p.dead_peer_us;
    if (c->listen) {
        p.listen[0] = c->listen;
        p.n_listen = 1;
    }
    if (c->verbose) {
        p.log = on_log;
        p.log_level = RPC2_LOG_DEBUG;
    }
    rc = rpc2_ctx_new(&p, &o->ctx);
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp);
    ratectl_params(&c->rate, &sp);
    if (rc == 0)
        rc = rpc2_sftp_activate(o->ctx, &sp);
    if (rc != 0) {
        if (c->listen)
            report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), NULL,
                         "cannot listen on %s: %s (--listen takes [ADDR:]PORT)", c->listen,
                         rpc2_strerror(rc));
        else
            report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), NULL, "cannot set up rpc2: %s",
                         rpc2_strerror(rc));
        ops_free(o);
        return RCAT_EXIT_LOCAL;
    }
    rpc2_ctx_on_announce(o->ctx, ops_on_announce, o);
    init_signals(o);
    o->ratectl = ratectl_start(&c->rate, o->loop, &o->in_call, report_info);
    o->started_us = now_mono_us();
    start_time_limit(o);
    *out = o;
    return RCAT_EXIT_OK;
}

void ops_free(struct ops *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_slots; i++)
        rpc2_unbind(o->slots[i].conn);
    if (o->loop)
        ev_timer_stop(o->loop, &o->time_limit);
    free(o->slots);
    ratectl_stop(o->ratectl);
    rpc2_ctx_free(o->ctx);
    explicit_bzero(o->secret, sizeof o->secret);
    free(o);
}

/* ---- what a retry needs (retry.c) ------------------------------------------ */

rpc2_ctx *ops_ctx(struct ops *o)
{
    return o->ctx;
}

int ops_last_error(const struct ops *o)
{
    return o->signal ? 0 : o->last_error;
}

uint64_t ops_time_left_us(const struct ops *o)
{
    uint64_t used = now_mono_us() - o->started_us;

    if (!o->cfg.max_time_us)
        return UINT64_MAX;
    return o->timed_out || used >= o->cfg.max_time_us ? 0 : o->cfg.max_time_us - used;
}

void ops_watch(struct ops *o, int on)
{
    watch_signals(o, on);
}

static void on_wait_over(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)w, (void)revents;
}

void ops_wait(struct ops *o, double seconds, const int *done)
{
    ev_timer t;

    ev_timer_init(&t, on_wait_over, seconds, 0.0);
    ev_timer_start(o->loop, &t);
    while (ev_is_active(&t) && !(done && *done) && !o->signal && !o->timed_out)
        ev_run(o->loop, EVRUN_ONCE);
    ev_timer_stop(o->loop, &t);
}

void ops_watch_signals(struct ops *o)
{
    watch_signals(o, 1); /* the next call stops watching when it ends */
}

/* ---- the call in flight ------------------------------------------------------ */

int ops_call_once(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                  xdrproc_t dec, void *result, struct rpc2_se_desc *d)
{
    struct rpc2_call_opts opts = {.se = d};
    int rc;

    if (o->timed_out)
        return RPC2_ETIMEDOUT;
    o->in_call = s->conn;
    watch_signals(o, 1);
    rc = rpc2_call(s->conn, proc, enc, args, dec, result, &opts);
    watch_signals(o, 0);
    o->in_call = NULL;
    return rc;
}
