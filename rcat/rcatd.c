/*
 * rcatd.c - the rcat file server as a process: options, the log file,
 * signals, and the loop everything runs on. What a call does is serve.c's.
 *
 *   rcatd [--listen ADDR:PORT]... [--root DIR] [--writable] [--workers N]
 *         [--max-connections N] [--max-per-address N] [--max-running N]
 *         [--cookie-threshold N] [--idle-timeout S] [--stats-interval S]
 *         [--keys FILE] [--min-security none|auth|encrypt] [--log FILE] [-v]
 *         [--stall-timeout S] [--drain-time S] [--max-running-per-identity N]
 *         [--max-running-per-address N]
 *
 * The loop is ours (params.loop), so that signals arrive as libev watchers
 * on the loop thread: SIGTERM and SIGINT stop, SIGHUP reopens the log
 * and reloads the key file,
 * SIGUSR1 logs the counters, and none of it runs inside a signal handler.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
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
#define DEFAULT_DRAIN_S 10 /* --drain-time */
/* After the drain time the transfers are ended; their handlers get this
 * long to reply before the process exits without them. */
#define DRAIN_GRACE_S 2.0

/* The server's limits (rpc2_params) that --max-... and friends set. */
struct limits {
    unsigned long max_connections, max_per_address, max_running, cookie_threshold;
    unsigned long idle_timeout_s;
    unsigned long max_running_per_identity, max_running_per_address, stall_timeout_s;
};

struct options {
    const char *listen[RPC2_MAX_LISTEN];
    int n_listen;
    const char *root;
    int writable;
    int workers;
    struct limits limits;
    unsigned long stats_interval_s;  /* 0: only on SIGUSR1 and at exit */
    unsigned long drain_time_s;      /* a stop waits this long for running calls */
    const char *keys_path;           /* --keys: the clients' secrets; NULL: none known */
    enum rpc2_security min_security; /* binds below it are refused */
    const char *log_path;            /* NULL: stderr */
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
    const char *keys_path;
    rpc2_keys *keys; /* replaced on SIGHUP; read by the library on the loop thread only */
    ev_signal sigterm, sigint, sighup, sigusr1;
    ev_timer stats_timer;
    struct rpc2_ctx_stats last_logged; /* what the periodic line last showed */
    ev_timer drain;
    ev_tstamp drain_deadline;
    unsigned long drain_time_s;
    int stopping;
    int transfers_ended; /* the drain time passed: running transfers were aborted */
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
    struct rpc2_params p;

    rpc2_params_init(&p);
    fprintf(
        to,
        "usage: rcatd [--listen ADDR:PORT]... [--root DIR] [--writable] [--workers N]\n"
        "             [--max-connections N] [--max-per-address N] [--max-running N]\n"
        "             [--cookie-threshold N] [--idle-timeout S] [--stats-interval S]\n"
        "             [--keys FILE] [--min-security none|auth|encrypt] [--log FILE] [-v]\n"
        "             [--stall-timeout S] [--drain-time S] [--max-running-per-identity N]\n"
        "             [--max-running-per-address N]\n"
        "Serves the files beneath DIR to rcat over rpc2.\n"
        "  --listen ADDR:PORT  address to listen on, repeatable (at most %d): 127.0.0.1:7755,\n"
        "                      [::1]:7755, :7755 (all addresses, IPv4 and IPv6; the default\n"
        "                      is :%d); port 0 picks a free one\n"
        "  --root DIR          the directory served (default: the current directory)\n"
        "  --writable          accept STORE (default: read-only)\n"
        "  --workers N         calls served at once (default %d)\n"
        "  --max-connections N clients connected at once (default %" PRIu32 ")\n"
        "  --max-per-address N of those from one IPv4 address or IPv6 /64 (default %" PRIu32 ")\n"
        "  --max-running N     calls running or waiting for a worker; more wait, kept\n"
        "                      waiting by the protocol (default %" PRIu32 ")\n"
        "  --cookie-threshold N  make new clients prove their address (one more round trip)\n"
        "                      while N connections are half-open; 0: always (default %" PRIu32 ")\n"
        "  --idle-timeout S    drop a connection silent for S seconds (default %" PRIu64 ")\n"
        "  --max-running-per-identity N  calls of one identity running at once, so one\n"
        "                      user cannot take every slot; 0: no share (default %" PRIu32 ")\n"
        "  --max-running-per-address N  the same per IPv4 address or IPv6 /64 (default %" PRIu32 ")\n"
        "  --stall-timeout S   end a transfer that moved no byte for S seconds (a reader\n"
        "                      that never drains, a silent source) (default %" PRIu64 ")\n"
        "  --drain-time S      on SIGTERM, wait S seconds for running calls, then end their\n"
        "                      transfers with an error and exit (default %d)\n"
        "  --stats-interval S  log the counters every S seconds when they changed (default:\n"
        "                      only on SIGUSR1 and at exit)\n"
        "  --keys FILE         the clients' secrets, one \"IDENTITY BASE64-SECRET\" a line,\n"
        "                      '#' comments (mode 0600); reloaded on SIGHUP\n"
        "  --min-security L    refuse binds below level L: none (default), auth (packets\n"
        "                      authenticated) or encrypt (and encrypted); above none,\n"
        "                      --keys is required\n"
        "  --log FILE          append the log to FILE, reopened on SIGHUP (default: stderr)\n"
        "  -v, --verbose       add the library's debug messages to the log\n"
        "  -h, --help          this text\n"
        "  -V, --version       the version\n"
        "Prints \"rcatd listening on PORT\" once ready; SIGTERM or SIGINT stop it, SIGHUP\n"
        "reopens the log and reloads the keys, SIGUSR1 logs the counters.\n",
        RPC2_MAX_LISTEN, RPC2_DEFAULT_PORT, DEFAULT_WORKERS, p.max_connections, p.max_per_address,
        p.max_running, p.cookie_threshold, p.idle_timeout_us / 1000000, p.max_running_per_identity,
        p.max_running_per_address, p.stall_timeout_us / 1000000, DEFAULT_DRAIN_S);
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

/* A decimal count from min to max (digits only: no sign, no spaces). */
static int parse_count(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long n;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    n = strtoul(s, &end, 10);
    if (errno || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* The options that take a count: getopt's code, name, smallest and largest. */
static const struct count_opt {
    int code;
    const char *name;
    unsigned long min, max;
} count_opts[] = {
    {'C', "--max-connections", 1, UINT32_MAX}, {'A', "--max-per-address", 1, UINT32_MAX},
    {'R', "--max-running", 1, UINT32_MAX},     {'K', "--cookie-threshold", 0, UINT32_MAX},
    {'I', "--idle-timeout", 1, 1000000000},    {'S', "--stats-interval", 0, 1000000000},
    {'i', "--max-running-per-identity", 0, UINT32_MAX},
    {'a', "--max-running-per-address", 0, UINT32_MAX},
    {'T', "--stall-timeout", 1, 1000000000},   {'D', "--drain-time", 0, 1000000000},
};

static unsigned long *count_field(struct options *o, int code)
{
    switch (code) {
    case 'C':
        return &o->limits.max_connections;
    case 'A':
        return &o->limits.max_per_address;
    case 'R':
        return &o->limits.max_running;
    case 'K':
        return &o->limits.cookie_threshold;
    case 'I':
        return &o->limits.idle_timeout_s;
    case 'i':
        return &o->limits.max_running_per_identity;
    case 'a':
        return &o->limits.max_running_per_address;
    case 'T':
        return &o->limits.stall_timeout_s;
    case 'D':
        return &o->drain_time_s;
    default:
        return &o->stats_interval_s;
    }
}

/* Returns 1 if c is a count option (parsed into o, or 2 if bad), else 0. */
static int take_count(struct options *o, int c, const char *arg)
{
    for (size_t i = 0; i < sizeof count_opts / sizeof count_opts[0]; i++) {
        const struct count_opt *co = &count_opts[i];

        if (co->code != c)
            continue;
        if (parse_count(arg, co->min, co->max, count_field(o, c)) == 0)
            return 1;
        fprintf(stderr, "rcatd: %s wants a number from %lu to %lu, not '%s'\n", co->name, co->min,
                co->max, arg);
        return 2;
    }
    return 0;
}

static struct limits default_limits(void)
{
    struct rpc2_params p;

    rpc2_params_init(&p);
    return (struct limits){
        .max_connections = p.max_connections,
        .max_per_address = p.max_per_address,
        .max_running = p.max_running,
        .cookie_threshold = p.cookie_threshold,
        .idle_timeout_s = (unsigned long)(p.idle_timeout_us / 1000000),
        .max_running_per_identity = p.max_running_per_identity,
        .max_running_per_address = p.max_running_per_address,
        .stall_timeout_s = (unsigned long)(p.stall_timeout_us / 1000000),
    };
}

/* The levels as --min-security spells them, in enum rpc2_security's order. */
static const char *const level_names[] = {"none", "auth", "encrypt"};

static int parse_level(const char *s, enum rpc2_security *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (!strcmp(s, level_names[i])) {
            *out = (enum rpc2_security)i;
            return 0;
        }
    }
    return -1;
}

/* Options that only make sense together, checked once all are read. */
static int check_options(const struct options *o)
{
    if (o->min_security != RPC2_SEC_NONE && !o->keys_path) {
        fprintf(stderr,
                "rcatd: --min-security %s needs --keys FILE: without the clients' secrets every "
                "bind would be refused\nTry 'rcatd --help'.\n",
                level_names[o->min_security]);
        return 1;
    }
    return -1;
}

/* Returns -1 to go on, else the exit code. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"root", required_argument, NULL, 'r'},
        {"writable", no_argument, NULL, 'w'},
        {"workers", required_argument, NULL, 'n'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-per-address", required_argument, NULL, 'A'},
        {"max-running", required_argument, NULL, 'R'},
        {"cookie-threshold", required_argument, NULL, 'K'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"stats-interval", required_argument, NULL, 'S'},
        {"max-running-per-identity", required_argument, NULL, 'i'},
        {"max-running-per-address", required_argument, NULL, 'a'},
        {"stall-timeout", required_argument, NULL, 'T'},
        {"drain-time", required_argument, NULL, 'D'},
        {"keys", required_argument, NULL, 'k'},
        {"min-security", required_argument, NULL, 'm'},
        {"log", required_argument, NULL, 'L'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct options){.root = ".",
                          .workers = DEFAULT_WORKERS,
                          .limits = default_limits(),
                          .drain_time_s = DEFAULT_DRAIN_S};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vhV", longs, NULL)) != -1) {
        int counted = take_count(o, c, optarg);

        if (counted == 2) {
            fprintf(stderr, "Try 'rcatd --help'.\n");
            return 1;
        }
        if (counted)
            continue;
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
        case 'k':
            o->keys_path = optarg;
            break;
        case 'm':
            if (parse_level(optarg, &o->min_security) != 0)
                return bad_usage("--min-security wants none, auth or encrypt, not '%s'", optarg);
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
    return check_options(o);
}

/* ---- signals and stopping ---------------------------------------------------- */

/* The drain time is over: every transfer still running ends now with
 * RPC2_ESHUTDOWN (its client hears it in the reply; a store's temporary is
 * removed), and the handlers get DRAIN_GRACE_S to reply. */
static void end_transfers(struct daemon *d, unsigned running)
{
    log_printf(&d->log, "rcatd: %u calls still running after %lu s: ending their transfers",
               running, d->drain_time_s);
    d->transfers_ended = 1;
    d->drain_deadline = ev_now(d->loop) + DRAIN_GRACE_S;
    rpc2_ctx_abort_transfers(d->ctx, RPC2_ESHUTDOWN);
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
    log_printf(&d->log, "rcatd: %u calls still running after %lu s; exiting without them", running,
               d->drain_time_s);
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
        log_printf(&d->log, "rcatd: signal %d again: exiting now", w->signum);
        _exit(1);
    }
    d->stopping = 1;
    serve_stop(d->serve);
    log_printf(&d->log, "rcatd: signal %d: stopping (%u calls running)", w->signum,
               serve_running(d->serve));
    d->drain_deadline = ev_now(loop) + (double)d->drain_time_s;
    ev_timer_init(&d->drain, on_drain, 0., DRAIN_POLL_S);
    d->drain.data = d;
    ev_timer_start(loop, &d->drain);
}

/* ---- keys ------------------------------------------------------------------ */

/* The library asks on the loop thread, where SIGHUP swaps the keys too, so
 * the table never changes under a lookup. */
static int secret_for(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                      void *arg)
{
    return rpc2_keys_secret_for(identity, len, secret, ((struct daemon *)arg)->keys);
}

/* Loads d->keys_path; 0, or the library's error with err saying why (it
 * names the file and line, and never quotes a secret). */
static int keys_load(struct daemon *d, rpc2_keys **out, char *err, size_t errlen)
{
    int rc;

    err[0] = '\0';
    rc = rpc2_keys_load(d->keys_path, out, err, errlen);
    if (rc != 0 && !err[0])
        snprintf(err, errlen, "%s: %s", d->keys_path, rpc2_strerror(rc));
    return rc;
}

/* Revoking a client is deleting its line and sending SIGHUP. A file that no
 * longer loads keeps the old keys: a typo must not lock every client out,
 * nor let anyone in. */
static void keys_reload(struct daemon *d)
{
    char err[512];
    rpc2_keys *keys;

    if (!d->keys_path)
        return;
    if (keys_load(d, &keys, err, sizeof err) != 0) {
        log_printf(&d->log, "rcatd: keys not reloaded, the old ones stay: %s", err);
        return;
    }
    rpc2_keys_free(d->keys);
    d->keys = keys;
    log_printf(&d->log, "rcatd: keys reloaded from %s", d->keys_path);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;

    (void)loop, (void)revents;
    log_reopen(&d->log);
    keys_reload(d);
}

/* ---- counters --------------------------------------------------------------- */

/* One line with every counter, as name=value (the names of struct
 * rpc2_ctx_stats), so scripts can pick what they need. */
static void log_stats(struct daemon *d, const char *why)
{
    struct rpc2_ctx_stats st;

    rpc2_ctx_stats(d->ctx, &st);
    log_printf(
        &d->log,
        "rcatd: stats (%s) connections=%" PRIu64 " connections_half_open=%" PRIu64
        " requests_running=%" PRIu64 " saved_reply_bytes=%" PRIu64 " packets_received=%" PRIu64
        " bytes_received=%" PRIu64 " packets_sent=%" PRIu64 " bytes_sent=%" PRIu64
        " rx_dropped=%" PRIu64 " rejected_short=%" PRIu64 " rejected_version=%" PRIu64
        " rejected_type=%" PRIu64 " rejected_length=%" PRIu64 " rejected_flags=%" PRIu64
        " rejected_check=%" PRIu64 " rejected_unknown_conn=%" PRIu64 " rejected_other=%" PRIu64
        " binds_accepted=%" PRIu64 " binds_refused=%" PRIu64 " binds_refused_limit=%" PRIu64
        " binds_refused_address=%" PRIu64 " binds_cookie_missing=%" PRIu64
        " binds_cookie_bad=%" PRIu64 " binds_cookie_stale=%" PRIu64 " cookies_sent=%" PRIu64
        " unbinds=%" PRIu64 " connections_expired=%" PRIu64 " calls_executed=%" PRIu64
        " calls_deferred=%" PRIu64 " calls_deferred_identity=%" PRIu64
        " calls_deferred_address=%" PRIu64 " transfers_stalled=%" PRIu64
        " duplicate_requests=%" PRIu64 " replies_not_saved=%" PRIu64
        " rejected_auth=%" PRIu64 " rejected_replay=%" PRIu64 " binds_refused_auth=%" PRIu64
        " list_names_read=%" PRIu64,
        why, st.connections, st.connections_half_open, st.requests_running, st.saved_reply_bytes,
        st.packets_received, st.bytes_received, st.packets_sent, st.bytes_sent, st.rx_dropped,
        st.rejected_short, st.rejected_version, st.rejected_type, st.rejected_length,
        st.rejected_flags, st.rejected_check, st.rejected_unknown_conn, st.rejected_other,
        st.binds_accepted, st.binds_refused, st.binds_refused_limit, st.binds_refused_address,
        st.binds_cookie_missing, st.binds_cookie_bad, st.binds_cookie_stale, st.cookies_sent,
        st.unbinds, st.connections_expired, st.calls_executed, st.calls_deferred,
        st.calls_deferred_identity, st.calls_deferred_address, st.transfers_stalled,
        st.duplicate_requests, st.replies_not_saved, st.rejected_auth, st.rejected_replay,
        st.binds_refused_auth, serve_list_names_read(d->serve));
    d->last_logged = st;
}

static void on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    log_stats(w->data, "SIGUSR1");
}

/* --stats-interval: a line only when something changed, so an idle server
 * does not fill its log. */
static void on_stats_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct daemon *d = w->data;
    struct rpc2_ctx_stats st;

    (void)loop, (void)revents;
    rpc2_ctx_stats(d->ctx, &st);
    if (memcmp(&st, &d->last_logged, sizeof st) != 0)
        log_stats(d, "interval");
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
                              .log = log_from_serve,
                              .log_arg = &d->log};
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
    p.max_connections = (uint32_t)o->limits.max_connections;
    p.max_per_address = (uint32_t)o->limits.max_per_address;
    p.max_running = (uint32_t)o->limits.max_running;
    p.cookie_threshold = (uint32_t)o->limits.cookie_threshold;
    p.idle_timeout_us = (uint64_t)o->limits.idle_timeout_s * 1000000u;
    p.max_running_per_identity = (uint32_t)o->limits.max_running_per_identity;
    p.max_running_per_address = (uint32_t)o->limits.max_running_per_address;
    p.stall_timeout_us = (uint64_t)o->limits.stall_timeout_s * 1000000u;
    p.min_security = o->min_security;
    if (d->keys) {
        p.secret_for = secret_for;
        p.secret_arg = d;
    }
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

static int start_keys(struct daemon *d, const struct options *o)
{
    char err[512];

    d->keys_path = o->keys_path;
    if (!d->keys_path)
        return 0;
    if (keys_load(d, &d->keys, err, sizeof err) != 0) {
        fprintf(stderr, "rcatd: %s\n", err);
        return -1;
    }
    return 0;
}

static void log_start(struct daemon *d, const struct options *o)
{
    log_printf(&d->log, "rcatd %s: serving %s%s on port %d with %d workers", PACKAGE_VERSION,
               o->root, o->writable ? " (writable)" : " (read-only)", rpc2_ctx_port(d->ctx),
               o->workers);
    log_printf(&d->log,
               "rcatd: limits max-connections=%lu max-per-address=%lu max-running=%lu "
               "cookie-threshold=%lu idle-timeout=%lu s max-running-per-identity=%lu "
               "max-running-per-address=%lu stall-timeout=%lu s drain-time=%lu s",
               o->limits.max_connections, o->limits.max_per_address, o->limits.max_running,
               o->limits.cookie_threshold, o->limits.idle_timeout_s,
               o->limits.max_running_per_identity, o->limits.max_running_per_address,
               o->limits.stall_timeout_s, o->drain_time_s);
    log_printf(&d->log, "rcatd: security min-security=%s keys=%s", level_names[o->min_security],
               o->keys_path ? o->keys_path : "none (binds above none are refused)");
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
    d->drain_time_s = o->drain_time_s;
    if (start_keys(d, o) != 0 || start_serving(d, o) != 0 || start_rpc2(d, o, default_listen) != 0)
        return 1;
    watch_signal(d, &d->sigterm, SIGTERM, on_stop);
    watch_signal(d, &d->sigint, SIGINT, on_stop);
    watch_signal(d, &d->sighup, SIGHUP, on_hup);
    watch_signal(d, &d->sigusr1, SIGUSR1, on_usr1);
    if (o->stats_interval_s > 0) {
        ev_timer_init(&d->stats_timer, on_stats_timer, (double)o->stats_interval_s,
                      (double)o->stats_interval_s);
        d->stats_timer.data = d;
        ev_timer_start(d->loop, &d->stats_timer);
    }
    log_start(d, o);
    printf("rcatd listening on %d\n", rpc2_ctx_port(d->ctx));
    fflush(stdout);
    ev_run(d->loop, 0);
    log_stats(d, "exit");
    log_printf(&d->log, "rcatd: stopped");
    return 0;
}

static void teardown(struct daemon *d)
{
    if (d->loop) {
        ev_signal_stop(d->loop, &d->sigterm);
        ev_signal_stop(d->loop, &d->sigint);
        ev_signal_stop(d->loop, &d->sighup);
        ev_signal_stop(d->loop, &d->sigusr1);
        ev_timer_stop(d->loop, &d->stats_timer);
        if (d->stopping)
            ev_timer_stop(d->loop, &d->drain);
    }
    rpc2_ctx_free(d->ctx);
    rpc2_keys_free(d->keys); /* after the context: it may look a secret up until freed */
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
