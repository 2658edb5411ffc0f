/*
 * rcatd.c - the rcat file server as a process: options, the log file,
 * signals, and the loop everything runs on. What a call does is serve.c's.
 *
 *   rcatd [--listen ADDR:PORT]... [--root DIR] [--writable] [--workers N]
 *         [--max-connections N] [--max-per-address N] [--max-running N]
 *         [--cookie-threshold N] [--idle-timeout S] [--stats-interval S]
 *         [--keys FILE] [--access FILE] [--min-security none|auth|encrypt]
 *         [--log FILE] [-v] [--metrics [ADDR:]PORT]
 *         [--stall-timeout D] [--drain-time D] [--max-running-per-identity N]
 *         [--max-running-per-address N] [--max-rate RATE] [--policies LIST]
 *
 * The loop is ours (params.loop), so that signals arrive as libev watchers
 * on the loop thread: SIGTERM and SIGINT stop, SIGHUP reopens the log
 * and reloads the key and access files (ending the connections of whoever
 * lost their key or a right),
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

#include "access.h"
#include "duration.h"
#include "metrics.h"
#include "partials.h"
#include "ratectl.h"
#include "serve.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define DEFAULT_WORKERS 4
#define DRAIN_POLL_S 0.05 /* how often a stopping server looks at its running calls */
#define METRICS_PUBLISH_S 1.0 /* how stale the context's counters on /metrics may be */
#define DEFAULT_DRAIN_S 10 /* --drain-time */
#define DEFAULT_PARTIAL_MAX_AGE_S 86400 /* --partial-max-age */
#define DEFAULT_RESTART_INTERVAL_MIB 32 /* --restart-interval */
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
    unsigned long partial_max_age_s; /* resumable stores' partials older than this go */
    unsigned long restart_interval_mib; /* between a resumable store's restart points */
    const char *keys_path;           /* --keys: the clients' secrets; NULL: none known */
    const char *access_path;         /* --access: who may do what; NULL: the defaults for all */
    enum rpc2_security min_security; /* binds below it are refused */
    const char *log_path;            /* NULL: stderr */
    const char *metrics_addr;        /* --metrics: NULL, no HTTP at all */
    int verbose;
    uint64_t max_rate;         /* --max-rate, bytes/s; 0: none */
    uint32_t policies_allowed; /* --policies; 0: any */
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
    const char *access_path;
    ev_signal sigterm, sigint, sighup, sigusr1;
    ev_timer stats_timer;
    struct rpc2_ctx_stats last_logged; /* what the periodic line last showed */
    ev_timer drain;
    ev_tstamp drain_deadline;
    struct metrics *metrics;
    ev_timer metrics_timer;
    unsigned long drain_time_s;
    struct partials *partials; /* the sweeper of stale resumable partials */
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

/* In the style of rcat --help: options grouped, long forms with '=',
 * durations explained once, the exit status at the end. */
static void usage(FILE *to)
{
    struct rpc2_params p;

    rpc2_params_init(&p);
    fprintf(
        to,
        "Usage: rcatd [OPTION]...\n"
        "Serve the files beneath a directory to rcat over rpc2.\n"
        "\n"
        "Serving:\n"
        "      --listen=ADDR:PORT   listen on ADDR:PORT, repeatable (at most %d):\n"
        "                           127.0.0.1:7755, [::1]:7755, :7755 (all addresses, IPv4\n"
        "                           and IPv6; the default is :%d); port 0 picks a free one\n"
        "      --root=DIR           the directory served (default: the current directory)\n"
        "      --writable           accept STORE from clients --access does not cover\n"
        "                           (default: read-only)\n"
        "      --workers=N          calls served at once (default %d)\n"
        "Limits:\n"
        "      --max-connections=N  clients connected at once (default %" PRIu32 ")\n"
        "      --max-per-address=N  of those from one IPv4 address or IPv6 /64 (default %" PRIu32
        ")\n"
        "      --max-running=N      calls running or waiting for a worker; more wait, kept\n"
        "                           waiting by the protocol (default %" PRIu32 ")\n"
        "      --cookie-threshold=N make new clients prove their address (one more round\n"
        "                           trip) while N connections are half-open; 0: always\n"
        "                           (default %" PRIu32 ")\n"
        "      --idle-timeout=D     drop a connection silent for D (default %" PRIu64 "s)\n"
        "      --max-running-per-identity=N  calls of one identity running at once, so\n"
        "                           one user cannot take every slot; 0: no share\n"
        "                           (default %" PRIu32 ")\n"
        "      --max-running-per-address=N  the same per IPv4 address or IPv6 /64\n"
        "                           (default %" PRIu32 ")\n"
        "      --stall-timeout=D    end a transfer that moved no byte for D (a reader that\n"
        "                           never drains, a silent source) (default %" PRIu64 "s)\n"
        "      --drain-time=D       on SIGTERM, wait D for running calls, then end their\n"
        "                           transfers with an error and exit (default %ds)\n"
        "      --partial-max-age=D  remove what resumable stores (rcat -C --put) left and\n"
        "                           nobody continued for D, at start and periodically\n"
        "                           (default 1d)\n"
        "      --restart-interval=MIB  MiB between a resumable store's restart points\n"
        "                           (default 32)\n"
        "      --max-rate=RATE      send no transfer faster than RATE (bits/s: 800k, 100M,\n"
        "                           1G), whatever a client asks for (docs/RATE.md)\n"
        "      --policies=LIST      the rate policies clients may ask for, of adaptive,\n"
        "                           fixed, background (default: all); others get adaptive\n"
        "Security:\n"
        "      --keys=FILE          the clients' secrets, one \"IDENTITY BASE64-SECRET\" a\n"
        "                           line, '#' comments (mode 0600); reloaded on SIGHUP\n"
        "      --access=FILE        who may do what: \"IDENTITY RIGHTS ROOT [LOWEST-LEVEL]\"\n"
        "                           a line (rcatd(8)); reloaded on SIGHUP\n"
        "      --min-security=LEVEL refuse binds below LEVEL: none (default), auth (packets\n"
        "                           authenticated) or encrypt (and encrypted); above\n"
        "                           none, --keys is required\n"
        "Messages:\n"
        "      --log=FILE           append the log to FILE, reopened on SIGHUP (default:\n"
        "                           standard error)\n"
        "      --stats-interval=D   log the counters every D when they changed (default:\n"
        "                           only on SIGUSR1 and at exit)\n"
        "      --metrics=[ADDR:]PORT  serve the counters for Prometheus over HTTP at\n"
        "                           /metrics; a port alone means 127.0.0.1 (default: none)\n"
        "  -v, --verbose            add the library's debug messages to the log\n"
        "  -h, --help               show this help and exit\n"
        "  -V, --version            show the version and exit\n"
        "\n"
        "D is seconds, or ends in s, m, h or d (90s, 5m, 2h, 1d).\n"
        "Prints \"rcatd listening on PORT\" once ready. SIGTERM or SIGINT stop it,\n"
        "SIGHUP reopens the log and reloads the keys and access, SIGUSR1 logs the counters.\n"
        "\n"
        "Exit status:\n"
        "  0  stopped by a signal, or --help and --version\n"
        "  1  usage error, or it could not start (the reason is on standard error)\n"
        "See rcatd(8).\n",
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

/* The options that take a count, or a duration in whole seconds (D:
 * duration.h's forms, 90s, 5m...): getopt's code, name, smallest and
 * largest. */
static const struct count_opt {
    int code;
    const char *name;
    unsigned long min, max;
    int duration;
} count_opts[] = {
    {'C', "--max-connections", 1, UINT32_MAX, 0}, {'A', "--max-per-address", 1, UINT32_MAX, 0},
    {'R', "--max-running", 1, UINT32_MAX, 0},     {'K', "--cookie-threshold", 0, UINT32_MAX, 0},
    {'I', "--idle-timeout", 1, 1000000000, 1},    {'S', "--stats-interval", 0, 1000000000, 1},
    {'i', "--max-running-per-identity", 0, UINT32_MAX, 0},
    {'p', "--max-running-per-address", 0, UINT32_MAX, 0},
    {'T', "--stall-timeout", 1, 1000000000, 1},   {'D', "--drain-time", 0, 1000000000, 1},
    {'G', "--partial-max-age", 60, 1000000000, 1}, {'Q', "--restart-interval", 1, 1048576, 0},
};

/* A duration of whole seconds from min to max. */
static int parse_seconds(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    uint64_t us;

    if (duration_parse(s, &us) != 0 || us % DURATION_US_PER_S != 0 ||
        us / DURATION_US_PER_S < min || us / DURATION_US_PER_S > max)
        return -1;
    *out = (unsigned long)(us / DURATION_US_PER_S);
    return 0;
}

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
    case 'p':
        return &o->limits.max_running_per_address;
    case 'T':
        return &o->limits.stall_timeout_s;
    case 'D':
        return &o->drain_time_s;
    case 'G':
        return &o->partial_max_age_s;
    case 'Q':
        return &o->restart_interval_mib;
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
        if ((co->duration ? parse_seconds : parse_count)(arg, co->min, co->max,
                                                          count_field(o, c)) == 0)
            return 1;
        if (co->duration)
            fprintf(stderr, "rcatd: %s wants whole seconds from %lu to %lu (30, 90s, 5m, 2h, 1d), "
                            "not '%s'\n",
                    co->name, co->min, co->max, arg);
        else
            fprintf(stderr, "rcatd: %s wants a number from %lu to %lu, not '%s'\n", co->name,
                    co->min, co->max, arg);
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
        {"max-running-per-address", required_argument, NULL, 'p'},
        {"stall-timeout", required_argument, NULL, 'T'},
        {"drain-time", required_argument, NULL, 'D'},
        {"partial-max-age", required_argument, NULL, 'G'},
        {"restart-interval", required_argument, NULL, 'Q'},
        {"keys", required_argument, NULL, 'k'},
        {"access", required_argument, NULL, 'a'},
        {"min-security", required_argument, NULL, 'm'},
        {"log", required_argument, NULL, 'L'},
        {"max-rate", required_argument, NULL, 'M'},
        {"policies", required_argument, NULL, 'P'},
        {"metrics", required_argument, NULL, 'X'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct options){.root = ".",
                          .workers = DEFAULT_WORKERS,
                          .limits = default_limits(),
                          .drain_time_s = DEFAULT_DRAIN_S,
                          .partial_max_age_s = DEFAULT_PARTIAL_MAX_AGE_S,
                          .restart_interval_mib = DEFAULT_RESTART_INTERVAL_MIB};
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
        case 'a':
            o->access_path = optarg;
            break;
        case 'm':
            if (parse_level(optarg, &o->min_security) != 0)
                return bad_usage("--min-security wants none, auth or encrypt, not '%s'", optarg);
            break;
        case 'L':
            o->log_path = optarg;
            break;
        case 'M':
            if (ratectl_parse_rate(optarg, &o->max_rate) != 0)
                return bad_usage("--max-rate wants a rate in bits/s (800k, 100M, 1G), not '%s'",
                                 optarg);
            break;
        case 'P':
            if (ratectl_parse_policies(optarg, &o->policies_allowed) != 0)
                return bad_usage("--policies wants a list of adaptive, fixed, background, not '%s'",
                                 optarg);
            break;
        case 'X':
            o->metrics_addr = optarg;
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
 * nor let anyone in. The old keys are the caller's to free: they judge
 * which live connections were bound with a secret that is gone. */
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
    d->keys = keys;
    log_printf(&d->log, "rcatd: keys reloaded from %s", d->keys_path);
}

/* ---- access ---------------------------------------------------------------- */

static void access_free(struct access *a)
{
    if (a)
        access_dispose(a);
    free(a);
}

/* Loads d->access_path and hands it to serve; 0, or -1 with err saying
 * why (the old table, if any, then stays). *old is the table replaced (the
 * caller's to free), *now the one serve judges by from now on. */
static int access_install(struct daemon *d, struct access **old, struct access **now, char *err,
                          size_t errlen)
{
    struct access *a = malloc(sizeof *a);
    char why[512];

    if (!a) {
        snprintf(err, errlen, "%s: out of memory", d->access_path);
        return -1;
    }
    if (access_load(a, d->access_path, err, errlen) != 0) {
        free(a);
        return -1;
    }
    if (serve_set_access(d->serve, a, old, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", d->access_path, why);
        access_free(a);
        return -1;
    }
    *now = a;
    return 0;
}

/* The daemon's own files are hidden from every client by device and inode
 * (root.h); a reload may have found them replaced. */
static int hide_own_files(struct daemon *d)
{
    const char *paths[2];
    size_t n = 0;

    if (d->keys_path)
        paths[n++] = d->keys_path;
    if (d->access_path)
        paths[n++] = d->access_path;
    return serve_hide(d->serve, paths, n);
}

/* ---- SIGHUP: reload, and end what was revoked -------------------------------- */

/* What a reload changed; equal pointers: that file did not change. */
struct revocation {
    struct daemon *d;
    rpc2_keys *old_keys, *new_keys;
    struct access *old_acl, *new_acl;
    unsigned defaults;
};

/* Whether identity's secret is gone or another now: a connection made with
 * the old one must not outlive it. */
static int key_changed(const struct revocation *r, const char *identity)
{
    unsigned char a[RPC2_SECRET_BYTES], b[RPC2_SECRET_BYTES];
    size_t len = strlen(identity);
    int changed = rpc2_keys_secret_for(identity, len, a, r->old_keys) != 0 ||
                  rpc2_keys_secret_for(identity, len, b, r->new_keys) != 0 ||
                  memcmp(a, b, sizeof a) != 0;

    explicit_bzero(a, sizeof a);
    explicit_bzero(b, sizeof b);
    return changed;
}

/* An rpc2_conn_filter: a connection ends when its identity lost its key
 * (above level none) or any right (access.h, access_narrowed). */
static int revoked(const char *identity, enum rpc2_security level, void *arg)
{
    const struct revocation *r = arg;
    char shown[64];

    if (!(level != RPC2_SEC_NONE && r->old_keys != r->new_keys && key_changed(r, identity)) &&
        !(r->old_acl != r->new_acl &&
          access_narrowed(r->old_acl, r->new_acl, identity, level, r->defaults)))
        return 0;
    /* claimed, not proved, at level none: shown with only printable bytes */
    snprintf(shown, sizeof shown, "%s", identity);
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            *p = '?';
    log_printf(&r->d->log, "rcatd: revoked: ending a connection of %s (level %s)", shown,
               level_names[level <= RPC2_SEC_ENCRYPT ? level : 0]);
    return 1;
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = w->data;
    struct revocation r = {.d = d, .old_keys = d->keys, .defaults = serve_defaults(d->serve)};
    char err[ACCESS_ERR_MAX];
    int rc;

    (void)loop, (void)revents;
    log_reopen(&d->log);
    keys_reload(d);
    r.new_keys = d->keys;
    if (d->access_path && access_install(d, &r.old_acl, &r.new_acl, err, sizeof err) != 0)
        log_printf(&d->log, "rcatd: access not reloaded, the old one stays: %s", err);
    else if (d->access_path)
        log_printf(&d->log, "rcatd: access reloaded from %s", d->access_path);
    if ((rc = hide_own_files(d)) != 0)
        log_printf(&d->log, "rcatd: cannot hide the key and access files from clients: %s",
                   strerror(-rc));
    unsigned ended = rpc2_ctx_end_connections(d->ctx, revoked, &r);
    if (ended)
        log_printf(&d->log, "rcatd: %u connection%s ended by the reload", ended,
                   ended == 1 ? "" : "s");
    if (r.old_keys != r.new_keys)
        rpc2_keys_free(r.old_keys);
    access_free(r.old_acl);
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
                              .log_arg = &d->log,
                              .metrics = d->metrics,
                              .restart_interval = (uint64_t)o->restart_interval_mib << 20};
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
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp);
    sp.rate_max_bps = o->max_rate; /* no client's wish goes beyond these */
    sp.policies_allowed = o->policies_allowed;
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

/* The context's counters are loop-thread state: copied to the metrics from
 * here, on the loop, for the HTTP thread to read. */
static void on_metrics_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct daemon *d = w->data;
    struct rpc2_ctx_stats st;

    (void)loop, (void)revents;
    rpc2_ctx_stats(d->ctx, &st);
    metrics_set_ctx(d->metrics, &st);
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

static void publish_metrics(struct daemon *d)
{
    if (!d->metrics)
        return;
    ev_timer_init(&d->metrics_timer, on_metrics_timer, 0., METRICS_PUBLISH_S);
    d->metrics_timer.data = d;
    ev_timer_start(d->loop, &d->metrics_timer);
    log_printf(&d->log, "rcatd: metrics on http://%s/metrics", metrics_where(d->metrics));
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

static int start_access(struct daemon *d, const struct options *o)
{
    char err[ACCESS_ERR_MAX];
    struct access *old = NULL, *now = NULL;
    int rc;

    d->access_path = o->access_path;
    if (d->access_path && access_install(d, &old, &now, err, sizeof err) != 0) {
        fprintf(stderr, "rcatd: %s\n", err);
        return -1;
    }
    if ((rc = hide_own_files(d)) != 0) {
        fprintf(stderr, "rcatd: cannot hide the key and access files from clients: %s\n",
                strerror(-rc));
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
    log_printf(&d->log, "rcatd: security min-security=%s keys=%s access=%s",
               level_names[o->min_security],
               o->keys_path ? o->keys_path : "none (binds above none are refused)",
               o->access_path ? o->access_path : "none (every client gets the defaults)");
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
    if (start_keys(d, o) != 0 || start_metrics(d, o) != 0 || start_serving(d, o) != 0 ||
        start_access(d, o) != 0 || start_rpc2(d, o, default_listen) != 0)
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
    d->partials = partials_start(o->root, o->partial_max_age_s, log_from_serve, &d->log);
    publish_metrics(d);
    printf("rcatd listening on %d\n", rpc2_ctx_port(d->ctx));
    fflush(stdout);
    ev_run(d->loop, 0);
    partials_stop(d->partials);
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
        if (d->metrics)
            ev_timer_stop(d->loop, &d->metrics_timer);
    }
    rpc2_ctx_free(d->ctx);
    metrics_free(d->metrics); /* after the context: its workers count calls until freed */
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
