/*
 * linkemu.h - what bench/wan/linkemu is asked to emulate: the shape of each direction of
 * the link and the program's settings, as its command line (linkopts.c) gives them.
 */
#ifndef RPC2_BENCH_LINKEMU_H
#define RPC2_BENCH_LINKEMU_H

#include <stdbool.h>
#include <stdint.h>

#define NS 1000000000ull
#define EXIT_USAGE 1
#define EXIT_SYSTEM 2
#define DEFAULT_MTU 1500
#define DEFAULT_MAX_PACKETS 65536 /* held per direction (queue + delay line) */
#define DEFAULT_INTERVAL_MS 100
#define DEFAULT_SLACK_US 50 /* packets due this soon leave with the current batch */

enum dir { AB, BA, NDIR };
extern const char *const dir_names[NDIR];

/* What one direction of the path does to packets; every part is off by default. */
struct shape {
    uint64_t delay_ns, jitter_ns;
    double loss;
    double ge_p, ge_r, ge_bad_loss, ge_good_loss; /* Gilbert-Elliott: G->B, B->G, loss in B, G */
    uint64_t rate_bps;                            /* 0: no bottleneck */
    uint64_t queue_bytes;                         /* the bottleneck's drop-tail limit */
    uint64_t queue_ns;                            /* or as time at the rate, if set */
    double reorder_p;
    uint64_t reorder_ns;
    double dup;
};

struct config {
    const char *ns[NDIR], *dev[NDIR]; /* ns: NULL for the current namespace */
    const char *stats_path;
    unsigned mtu, interval_ms, slack_us, max_packets;
    bool realtime;
    uint64_t seed;
    struct shape s[NDIR];
};

/* Fills cfg from the command line: 0 to run, 1 when --help was printed, -1 on an error
 * (already reported on stderr). */
int linkemu_parse_args(int argc, char **argv, struct config *cfg);

/* The bottleneck's queue limit in bytes, whether it was given in bytes or in time. */
uint64_t shape_queue_limit(const struct shape *s);

#endif
