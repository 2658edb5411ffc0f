/*
 * rcatd_options.c - rcatd's command line and its --help. Every option that
 * takes a count or a duration is one row of a table, so they are all
 * checked, and refused, alike.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "level.h"
#include "ratectl.h"
#include "rcatd_options.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define DEFAULT_WORKERS 4
#define DEFAULT_DRAIN_S 10              /* --drain-time */
#define DEFAULT_PARTIAL_MAX_AGE_S 86400 /* --partial-max-age */
#define DEFAULT_SPLIT_IDLE_S 600        /* --split-idle */
#define DEFAULT_RESTART_INTERVAL_MIB 32 /* --restart-interval */
#define DEFAULT_MEMORY_CAP_MIB 256      /* --memory-cap: the library's default */
#define DEFAULT_CONNECT_INTERVAL_S 5ul  /* --connect-interval: a waiting rcat hears one soon */
#define STRING_OF(x) #x
#define STRING(x) STRING_OF(x)
#define DEFAULT_LISTEN ":" STRING(RPC2_DEFAULT_PORT)
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
        "      --connect=HOST:PORT  for a server clients cannot reach (a firewall lets only\n"
        "                           its own traffic out): announce it to a client that\n"
        "                           waits with rcat --listen PORT, which then connects;\n"
        "                           repeatable (at most %d)\n"
        "      --connect-interval=D between announcements (default %lus)\n"
        "      --writable           accept STORE, MKDIR, RENAME, DELETE, SYMLINK and SETATTR\n"
        "                           from clients --access does not cover (default: read-only)\n"
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
        "      --split-idle=D       remove the temporary of a store in ranges (rcat --put\n"
        "                           --split) that no call used for D: its client is gone\n"
        "                           (default 10m)\n"
        "      --restart-interval=MIB  MiB between a resumable store's restart points\n"
        "                           (default 32)\n"
        "      --memory-cap=MIB     packet memory of all transfers at once; past it the\n"
        "                           windows are shared fairly (default 256)\n"
        "      --max-rate=RATE      send no transfer faster than RATE (bits/s: 800k, 100M,\n"
        "                           1G), whatever a client asks for (docs/RATE.md)\n"
        "      --policies=LIST      the rate policies clients may ask for, of adaptive,\n"
        "                           fixed, background (default: all); others get adaptive\n"
        "Security:\n"
        "      --keys=FILE          the clients' secrets, one \"IDENTITY BASE64-SECRET\" a\n"
        "                           line, '#' comments (mode 0600); reloaded on SIGHUP\n"
        "      --access=FILE        who may do what: \"IDENTITY RIGHTS ROOT [LOWEST-LEVEL]\"\n"
        "                           a line (rcatd(8)); reloaded on SIGHUP\n"
        "      --hooks=FILE         commands run after a STORE: \"PATTERN IDENTITY EXIT\n"
        "                           TIME-LIMIT COMMAND [ARG...]\" a line (rcatd(8)); the\n"
        "                           call succeeds only if its command does; reloaded on\n"
        "                           SIGHUP\n"
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
        RPC2_MAX_LISTEN, RPC2_DEFAULT_PORT, RPC2_MAX_ANNOUNCE, DEFAULT_CONNECT_INTERVAL_S,
        DEFAULT_WORKERS, p.max_connections, p.max_per_address,
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
 * largest, and where in struct options the value goes. */
#define FIELD(f) offsetof(struct options, f)
static const struct count_opt {
    int code;
    const char *name;
    unsigned long min, max;
    int duration;
    size_t field;
} count_opts[] = {
    {'n', "--workers", 1, 256, 0, FIELD(workers)},
    {'C', "--max-connections", 1, UINT32_MAX, 0, FIELD(limits.max_connections)},
    {'A', "--max-per-address", 1, UINT32_MAX, 0, FIELD(limits.max_per_address)},
    {'R', "--max-running", 1, UINT32_MAX, 0, FIELD(limits.max_running)},
    {'K', "--cookie-threshold", 0, UINT32_MAX, 0, FIELD(limits.cookie_threshold)},
    {'I', "--idle-timeout", 1, 1000000000, 1, FIELD(limits.idle_timeout_s)},
    {'S', "--stats-interval", 0, 1000000000, 1, FIELD(stats_interval_s)},
    {'i', "--max-running-per-identity", 0, UINT32_MAX, 0, FIELD(limits.max_running_per_identity)},
    {'p', "--max-running-per-address", 0, UINT32_MAX, 0, FIELD(limits.max_running_per_address)},
    {'T', "--stall-timeout", 1, 1000000000, 1, FIELD(limits.stall_timeout_s)},
    {'D', "--drain-time", 0, 1000000000, 1, FIELD(drain_time_s)},
    {'G', "--partial-max-age", 60, 1000000000, 1, FIELD(partial_max_age_s)},
    {'Y', "--split-idle", 1, 1000000000, 1, FIELD(split_idle_s)},
    {'Q', "--restart-interval", 1, 1048576, 0, FIELD(restart_interval_mib)},
    {'B', "--memory-cap", 1, 1048576, 0, FIELD(memory_cap_mib)},
    {'J', "--connect-interval", 1, 3600, 1, FIELD(connect_interval_s)},
};
#undef FIELD

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

/* Returns 1 if c is a count option (parsed into o, or 2 if bad), else 0. */
static int take_count(struct options *o, int c, const char *arg)
{
    for (size_t i = 0; i < sizeof count_opts / sizeof count_opts[0]; i++) {
        const struct count_opt *co = &count_opts[i];

        unsigned long *field = (unsigned long *)((char *)o + co->field);

        if (co->code != c)
            continue;
        if ((co->duration ? parse_seconds : parse_count)(arg, co->min, co->max, field) == 0)
            return 1;
        if (co->duration)
            fprintf(stderr,
                    "rcatd: %s wants whole seconds from %lu to %lu (30, 90s, 5m, 2h, 1d), "
                    "not '%s'\n",
                    co->name, co->min, co->max, arg);
        else
            fprintf(stderr, "rcatd: %s wants a number from %lu to %lu, not '%s'\n", co->name,
                    co->min, co->max, arg);
        return 2;
    }
    return 0;
}

int rcatd_connect_target(const char *text, char *host, size_t host_cap, char *port,
                         size_t port_cap)
{
    const char *colon, *end;

    if (text[0] == '[') { /* [V6]:PORT */
        end = strchr(text, ']');
        if (!end || end[1] != ':')
            return -1;
        text++;
        colon = end + 1;
    } else {
        colon = strrchr(text, ':');
        end = colon;
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return -1; /* an IPv6 address needs its brackets */
    }
    unsigned long n;
    if (end == text || (size_t)(end - text) >= host_cap ||
        parse_count(colon + 1, 1, 65535, &n) != 0 || strlen(colon + 1) >= port_cap)
        return -1;
    memcpy(host, text, (size_t)(end - text));
    host[end - text] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

/* The limits are rpc2_params' in whole seconds: from the library's
 * defaults here, back into the params in rcatd_options_params. */
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

void rcatd_options_params(const struct options *o, struct rpc2_params *p)
{
    memcpy(p->listen, o->listen, sizeof p->listen);
    p->n_listen = o->n_listen;
    if (p->n_listen == 0)
        p->listen[p->n_listen++] = DEFAULT_LISTEN;
    p->workers = (int)o->workers;
    p->max_connections = (uint32_t)o->limits.max_connections;
    p->max_per_address = (uint32_t)o->limits.max_per_address;
    p->max_running = (uint32_t)o->limits.max_running;
    p->cookie_threshold = (uint32_t)o->limits.cookie_threshold;
    p->idle_timeout_us = (uint64_t)o->limits.idle_timeout_s * 1000000u;
    p->max_running_per_identity = (uint32_t)o->limits.max_running_per_identity;
    p->max_running_per_address = (uint32_t)o->limits.max_running_per_address;
    p->stall_timeout_us = (uint64_t)o->limits.stall_timeout_s * 1000000u;
    p->min_security = o->min_security;
    p->log_level = o->verbose ? RPC2_LOG_DEBUG : RPC2_LOG_INFO; /* INFO: why a transfer failed */
}

/* Options that only make sense together, checked once all are read. */
static int check_options(const struct options *o)
{
    if (o->min_security != RPC2_SEC_NONE && !o->keys_path) {
        fprintf(stderr,
                "rcatd: --min-security %s needs --keys FILE: without the clients' secrets every "
                "bind would be refused\nTry 'rcatd --help'.\n",
                level_name(o->min_security));
        return 1;
    }
    return -1;
}

int rcatd_options_parse(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"connect", required_argument, NULL, 'c'},
        {"connect-interval", required_argument, NULL, 'J'},
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
        {"split-idle", required_argument, NULL, 'Y'},
        {"restart-interval", required_argument, NULL, 'Q'},
        {"memory-cap", required_argument, NULL, 'B'},
        {"keys", required_argument, NULL, 'k'},
        {"access", required_argument, NULL, 'a'},
        {"hooks", required_argument, NULL, 'H'},
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
                          .split_idle_s = DEFAULT_SPLIT_IDLE_S,
                          .restart_interval_mib = DEFAULT_RESTART_INTERVAL_MIB,
                          .memory_cap_mib = DEFAULT_MEMORY_CAP_MIB,
                          .connect_interval_s = DEFAULT_CONNECT_INTERVAL_S};
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
        case 'c':
            if (o->n_connect == RPC2_MAX_ANNOUNCE)
                return bad_usage("at most %s --connect addresses", "8");
            if (rcatd_connect_target(optarg, (char[256]){0}, 256, (char[8]){0}, 8) != 0)
                return bad_usage("--connect wants HOST:PORT or [IPV6]:PORT, not '%s'", optarg);
            o->connect[o->n_connect++] = optarg;
            break;
        case 'r':
            o->root = optarg;
            break;
        case 'w':
            o->writable = 1;
            break;
        case 'k':
            o->keys_path = optarg;
            break;
        case 'H':
            o->hooks_path = optarg;
            break;
        case 'a':
            o->access_path = optarg;
            break;
        case 'm':
            if (level_parse(optarg, strlen(optarg), &o->min_security) != 0)
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
