/*
 * rcatd.c - the rcat file server as a process: options, the log file,
 * signals, and the loop everything runs on. What a call does is serve.c's.
 *
 *   rcatd [--listen ADDR:PORT]... [--root DIR] [--writable] [--workers N]
 *         [--log FILE] [-v]
 *
 * The loop is ours (params.loop), so that signals arrive as libev watchers
 * on the loop thread: SIGTERM and SIGINT stop, SIGHUP reopens the log, and
 * none of it runs inside a signal handler.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "serve.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define DEFAULT_WORKERS 4
#define DRAIN_POLL_S 0.05 /* how often a stopping server looks at its running calls */
#define DRAIN_MAX_S 30.0  /* then it gives up on them: the dead-peer silence by default */

struct options {
    const char *listen[RPC2_MAX_LISTEN];
    int n_listen;
    const char *root;
    int writable;
    int workers;
    const char *log_path; /* NULL: stderr */
    int verbose;
};

/* The log file, shared by worker threads (call lines), the loop thread
 * (library messages, reopening) and main. */
struct logfile {
    pthread_mutex_t lock;
    FILE *f;
    const char *path;
};

struct daemon {
    struct ev_loop *loop;
    rpc2_ctx *ctx;
    struct serve *serve;
    struct logfile log;
    ev_signal sigterm, sigint, sighup;
    ev_timer drain;
    ev_tstamp drain_deadline;
    int stopping;
};

/* ---- the log ---------------------------------------------------------------- */

static void log_line(struct logfile *l, const char *line)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);

    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    pthread_mutex_lock(&l->lock);
    fprintf(l->f, "%s %s\n", stamp, line);
    fflush(l->f);
    pthread_mutex_unlock(&l->lock);
}

static void log_printf(struct logfile *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_printf(struct logfile *l, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(l, line);
}

static void log_from_serve(const char *line, void *arg)
{
    log_line(arg, line);
}

static void log_from_rpc2(enum rpc2_log_level level, const char *message, void *arg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};

    log_printf(arg, "rpc2 %s: %s", names[level <= RPC2_LOG_DEBUG ? level : RPC2_LOG_DEBUG],
               message);
}

static int log_open(struct logfile *l, const char *path)
{
    pthread_mutex_init(&l->lock, NULL);
    l->path = path;
    l->f = path ? fopen(path, "ae") : stderr;
    return l->f ? 0 : -errno;
}

/* Log rotation: the old file was moved away, the new one is made here. If
 * that fails the old stream stays, so lines still go somewhere. */
static void log_reopen(struct logfile *l)
{
    FILE *f, *old;

    if (!l->path)
        return;
    f = fopen(l->path, "ae");
    if (!f) {
        log_printf(l, "rcatd: cannot reopen %s: %s; still writing to the old file", l->path,
                   strerror(errno));
        return;
    }
    pthread_mutex_lock(&l->lock);
    old = l->f;
    l->f = f;
    pthread_mutex_unlock(&l->lock);
    fclose(old);
    log_printf(l, "rcatd: log reopened");
}

static void log_close(struct logfile *l)
{
    if (l->f && l->f != stderr)
        fclose(l->f);
    l->f = NULL;
    pthread_mutex_destroy(&l->lock);
}

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: rcatd [--listen ADDR:PORT]... [--root DIR] [--writable] [--workers N]\n"
            "             [--log FILE] [-v]\n"
            "Serves the files beneath DIR to rcat over rpc2.\n"
            "  --listen ADDR:PORT  address to listen on, repeatable (at most %d): 127.0.0.1:7755,\n"
            "                      [::1]:7755, :7755 (all addresses, IPv4 and IPv6; the default\n"
            "                      is :%d); port 0 picks a free one\n"
            "  --root DIR          the directory served (default: the current directory)\n"
            "  --writable          accept STORE (default: read-only)\n"
            "  --workers N         calls served at once (default %d)\n"
            "  --log FILE          append the log to FILE, reopened on SIGHUP (default: stderr)\n"
            "  -v, --verbose       add the library's debug messages to the log\n"
            "  -h, --help          this text\n"
            "  -V, --version       the version\n"
            "Prints \"rcatd listening on PORT\" once ready; SIGTERM or SIGINT stop it.\n",
            RPC2_MAX_LISTEN, RPC2_DEFAULT_PORT, DEFAULT_WORKERS);
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "rcatd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'rcatd --help'.\n");
    return 1;
}

static int parse_workers(const char *s, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < 1 || n > 256)
        return -1;
    *out = (int)n;
    return 0;
}

/* Returns -1 to go on, else the exit code. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"root", required_argument, NULL, 'r'},
        {"writable", no_argument, NULL, 'w'},
        {"workers", required_argument, NULL, 'n'},
        {"log", required_argument, NULL, 'L'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct options){.root = ".", .workers = DEFAULT_WORKERS};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vhV", longs, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (o->n_listen == RPC2_MAX_LISTEN)
                return bad_usage("at most %s --listen addresses", "8");
            o->listen[o->n_listen++] = optarg;
            break;
        case 'r':
            o->root = optarg;
            break;
        case 'w':
            o->writable = 1;
            break;
        case 'n':
            if (parse_workers(optarg, &o->workers) != 0)
                return bad_usage("--workers wants a number from 1 to 256, not '%s'", optarg);
            break;
        case 'L':
            o->log_path = optarg;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("rcatd (rpc2) %s\n", PACKAGE_VERSION);
            return 0;
        case ':':
            return bad_usage("%s needs an argument", argv[optind - 1]);
        default:
            if (optopt) {
                char opt[3] = {'-', (char)optopt, '\0'};
                return bad_usage("unknown option '%s'", opt);
            }
            return bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    return -1;
}

/* ---- signals and stopping ---------------------------------------------------- */

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
    log_printf(&d->log, "rcatd: %u calls still running after %.0f s; exiting without them", running,
               DRAIN_MAX_S);
    _exit(1); /* the stuck workers would hang rpc2_ctx_free, and race exit()'s stdio teardown */
}

/* The first signal refuses new calls and lets running ones finish, with the
 * loop still running: a worker inside a transfer waits for the loop, and
 * rpc2_ctx_free waits for the workers. A second signal, or DRAIN_MAX_S, does
 * not wait (interrupted stores then leave their temporary files behind). */
static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    (void)revents;
    if (d->stopping) {
        log_printf(&d->log, "rcatd: signal %d again: exiting now", w->signum);
        _exit(1);
    }
    d->stopping = 1;
    serve_stop(d->serve);
    log_printf(&d->log, "rcatd: signal %d: stopping (%u calls running)", w->signum,
               serve_running(d->serve));
    d->drain_deadline = ev_now(loop) + DRAIN_MAX_S;
    ev_timer_init(&d->drain, on_drain, 0., DRAIN_POLL_S);
    d->drain.data = d;
    ev_timer_start(loop, &d->drain);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    log_reopen(&((struct daemon *)w->data)->log);
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
    struct serve_config sc = {
        .root = o->root, .writable = o->writable, .log = log_from_serve, .log_arg = &d->log};
    const char *why = "";
    int rc = serve_new(&sc, &d->serve, &why);

    if (rc != 0) {
        fprintf(stderr, "rcatd: %s: %s: %s\n", o->root, why, strerror(-rc));
        return -1;
    }
    return 0;
}

static int start_rpc2(struct daemon *d, const struct options *o, const char *default_listen)
{
    struct rpc2_params p;
    int rc;

    rpc2_params_init(&p);
    memcpy(p.listen, o->listen, sizeof p.listen);
    p.n_listen = o->n_listen;
    if (p.n_listen == 0)
        p.listen[p.n_listen++] = default_listen;
    p.loop = d->loop;
    p.workers = o->workers;
    p.log = log_from_rpc2;
    p.log_arg = &d->log;
    p.log_level = o->verbose ? RPC2_LOG_DEBUG : RPC2_LOG_INFO; /* INFO: why a transfer failed */
    rc = rpc2_ctx_new(&p, &d->ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(d->ctx, NULL);
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

static int run(struct daemon *d, const struct options *o)
{
    char default_listen[16];

    snprintf(default_listen, sizeof default_listen, ":%d", RPC2_DEFAULT_PORT);
    d->loop = ev_loop_new(EVFLAG_AUTO);
    if (!d->loop) {
        fprintf(stderr, "rcatd: cannot create an event loop\n");
        return 1;
    }
    if (start_serving(d, o) != 0 || start_rpc2(d, o, default_listen) != 0)
        return 1;
    watch_signal(d, &d->sigterm, SIGTERM, on_stop);
    watch_signal(d, &d->sigint, SIGINT, on_stop);
    watch_signal(d, &d->sighup, SIGHUP, on_hup);
    log_printf(&d->log, "rcatd %s: serving %s%s on port %d with %d workers", PACKAGE_VERSION,
               o->root, o->writable ? " (writable)" : " (read-only)", rpc2_ctx_port(d->ctx),
               o->workers);
    printf("rcatd listening on %d\n", rpc2_ctx_port(d->ctx));
    fflush(stdout);
    ev_run(d->loop, 0);
    log_printf(&d->log, "rcatd: stopped");
    return 0;
}

static void teardown(struct daemon *d)
{
    if (d->loop) {
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sighup);
        if (d->stopping)
            ev_timer_stop(d->loop, &d->drain);
    }
    rpc2_ctx_free(d->ctx);
    serve_free(d->serve);
    if (d->loop)
        ev_loop_destroy(d->loop);
    log_close(&d->log);
}

int main(int argc, char **argv)
{
    struct options o;
    struct daemon d = {0};
    int rc = parse_options(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (log_open(&d.log, o.log_path) != 0) {
        fprintf(stderr, "rcatd: cannot open the log %s: %s\n", o.log_path, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill a server */
    rc = run(&d, &o);
    teardown(&d);
    return rc;
}
