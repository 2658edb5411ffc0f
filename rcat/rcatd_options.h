/*
 * rcatd_options.h - rcatd's command line: what it sets, with the defaults
 * filled in. Parsing says what is wrong with a bad option itself, so that
 * rcatd's main only has to exit with the code it returns.
 */
#ifndef RCAT_RCATD_OPTIONS_H
#define RCAT_RCATD_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include <rpc2/rpc2.h>

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
    unsigned long workers;
    struct limits limits;
    unsigned long stats_interval_s;     /* 0: only on SIGUSR1 and at exit */
    unsigned long drain_time_s;         /* a stop waits this long for running calls */
    unsigned long partial_max_age_s;    /* resumable stores' partials older than this go */
    unsigned long split_idle_s;         /* a split put's temporary no call used this long goes */
    unsigned long restart_interval_mib; /* between a resumable store's restart points */
    unsigned long memory_cap_mib;       /* packet memory of all transfers (memshare) */
    const char *keys_path;              /* --keys: the clients' secrets; NULL: none known */
    const char *access_path;            /* --access: who may do what; NULL: the defaults for all */
    const char *hooks_path;             /* --hooks: post-store commands; NULL: none */
    enum rpc2_security min_security;    /* binds below it are refused */
    const char *log_path;               /* NULL: stderr */
    const char *metrics_addr;           /* --metrics: NULL, no HTTP at all */
    int verbose;
    const char *connect[RPC2_MAX_ANNOUNCE]; /* --connect: clients to announce to */
    int n_connect;
    unsigned long connect_interval_s; /* between announcements */
    uint64_t max_rate;         /* --max-rate, bytes/s; 0: none */
    uint32_t policies_allowed; /* --policies; 0: any */
};

/* Returns -1 to go on with *o filled in, else the exit code: 0 after
 * --help or --version, 1 after a usage error (said on standard error). */
int rcatd_options_parse(int argc, char **argv, struct options *o);

/* Into p (from rpc2_params_init): the addresses (:RPC2_DEFAULT_PORT when
 * none was given), workers, limits, lowest level and how much the library
 * logs. */
void rcatd_options_params(const struct options *o, struct rpc2_params *p);

/* Splits a --connect target, HOST:PORT or [IPV6]:PORT (PORT 1 to 65535),
 * into host and port. 0, or -1 when it is not one or does not fit. */
int rcatd_connect_target(const char *text, char *host, size_t host_cap, char *port,
                         size_t port_cap);

#endif
