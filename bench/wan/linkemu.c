/*
 * linkemu.c - a user-space WAN link between two TUN devices, for bench/run_wan.sh.
 *
 * This kernel has no tc netem, so the bench needs its own: every IP packet one
 * namespace sends through its TUN device is read here, given the fate a real
 * path would give it (a rate-limited bottleneck with a bounded drop-tail queue,
 * one-way delay with jitter, random and Gilbert-Elliott burst loss, reordering,
 * duplication) and written into the other namespace's TUN device when due.
 *
 * Each direction has its own thread, state and random stream, so the two never
 * contend and a 1 Gbit/s direction gets a core of its own. The bottleneck is a
 * virtual clock (when the link will have finished serialising what it holds),
 * so the rate is exact on average however late a thread wakes; held packets
 * wait in a min-heap on their delivery time and leave in batches. A side
 * thread appends every direction's counters to a stats file at a fixed
 * interval: the bench reads goodput and send efficiency from those counters,
 * independent of the code under test.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MTU 1500
#define DEFAULT_MAX_PACKETS 65536 /* held per direction (queue + delay line) */
#define DEFAULT_INTERVAL_MS 100
#define DEFAULT_SLACK_US 50 /* packets due this soon leave with the current batch */
#define READ_BATCH 256      /* packets read per wake-up before releasing due ones */
#define IDLE_WAKE_NS 50000000ull
#define NS 1000000000ull
#define EXIT_USAGE 1
#define EXIT_SYSTEM 2

enum dir { AB, BA, NDIR };
static const char *const dir_names[NDIR] = {"ab", "ba"};

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

/* Cumulative, written by the direction's thread only, read by the stats thread. */
struct counters {
    _Atomic uint64_t in_pkts, in_bytes, in_udp, in_tcp;
    _Atomic uint64_t out_pkts, out_bytes, out_udp, out_tcp;
    _Atomic uint64_t lost, ge_lost, queue_drops, overflow, duplicated, reordered, errors;
    _Atomic uint64_t queue_max; /* the deepest the bottleneck queue got, bytes */
    /* UDP/TCP payload inside the link now (queued or propagating): what was sent but has
     * not arrived yet, so a reader can leave it out of what a stopped transfer cost */
    _Atomic uint64_t held_udp, held_tcp;
};

struct held {
    uint64_t due_ns, order;
    uint32_t slot, len;
    uint32_t udp, tcp; /* payload bytes, for the held_ gauges */
};

struct direction {
    enum dir id;
    struct shape s;
    int in_fd, out_fd;
    uint64_t rng;
    bool ge_bad;
    uint64_t link_free_ns; /* when the bottleneck has serialised everything accepted */
    uint64_t last_due_ns;  /* jitter never reorders: delivery times only grow */
    uint64_t order;
    /* the packet pool: slot_size bytes each, a stack of free slots */
    unsigned char *pool;
    size_t slot_size;
    uint32_t *free_slots, nfree, max_packets;
    struct held *heap;
    uint32_t nheap;
    struct counters n;
};

struct config {
    const char *ns[NDIR], *dev[NDIR]; /* ns: NULL for the current namespace */
    const char *stats_path;
    unsigned mtu, interval_ms, slack_us, max_packets;
    uint64_t seed;
    struct shape s[NDIR];
};

static atomic_bool stopping;
static uint64_t slack_ns;

/* ---- time and randomness ------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* splitmix64: seedable with anything, cheap, good enough to pick fates. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

/* ---- option parsing ----------------------------------------------------- */

static int parse_double(const char *s, double min, double max, double *out, char **rest)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= min && v <= max))
        return -1;
    if (rest != NULL)
        *rest = end;
    else if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* A probability from 0 to 1, or a percentage when it ends in '%'. */
static int parse_prob(const char *s, double *out, char **rest)
{
    char *end;

    if (parse_double(s, 0, 100, out, &end) < 0)
        return -1;
    if (*end == '%') {
        *out /= 100;
        end++;
    } else if (*out > 1) {
        return -1;
    }
    if (rest != NULL)
        *rest = end;
    return rest == NULL && *end != '\0' ? -1 : 0;
}

/* Milliseconds, fractions allowed ("2.5"), to nanoseconds. */
static int parse_ms(const char *s, uint64_t *ns, char **rest)
{
    double ms;

    if (parse_double(s, 0, 3600e3, &ms, rest) < 0)
        return -1;
    *ns = (uint64_t)llround(ms * 1e6);
    return 0;
}

/* Bits per second with an optional k, M or G (powers of 1000) and "bit" or "bps". */
static int parse_rate(const char *s, uint64_t *bps)
{
    static const char *const units[] = {"", "bit", "bps"};
    double v, mult = 1;
    char *end;

    if (parse_double(s, 0, 1e12, &v, &end) < 0)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        mult = 1e3;
        end++;
        break;
    case 'm':
    case 'M':
        mult = 1e6;
        end++;
        break;
    case 'g':
    case 'G':
        mult = 1e9;
        end++;
        break;
    default:
        break;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i]) == 0) {
            *bps = (uint64_t)llround(v * mult);
            return 0;
        }
    }
    return -1;
}

/* Bytes (with k, M, G suffixes: powers of 1024) or a time at the rate ("25ms"). */
static int parse_queue(const char *s, struct shape *sh)
{
    double v;
    char *end;

    if (parse_double(s, 0, 1e12, &v, &end) < 0)
        return -1;
    if (strcmp(end, "ms") == 0) {
        sh->queue_ns = (uint64_t)llround(v * 1e6);
        sh->queue_bytes = 0;
        return 0;
    }
    switch (*end) {
    case 'k':
    case 'K':
        v *= 1024;
        end++;
        break;
    case 'm':
    case 'M':
        v *= 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        v *= 1024 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0' && strcmp(end, "B") != 0)
        return -1;
    sh->queue_bytes = (uint64_t)llround(v);
    sh->queue_ns = 0;
    return 0;
}

/* "P,R[,H[,K]]": enter the bad state with P, leave it with R, lose H there and K in good. */
static int parse_ge(const char *s, struct shape *sh)
{
    double v[4] = {0, 0, 1, 0};
    char *end = (char *)s;
    int i;

    for (i = 0; i < 4; i++) {
        if (parse_prob(end, &v[i], &end) < 0)
            return -1;
        if (*end == '\0')
            break;
        if (*end++ != ',')
            return -1;
    }
    if (i < 1 || i == 4)
        return -1;
    sh->ge_p = v[0];
    sh->ge_r = v[1];
    sh->ge_bad_loss = v[2];
    sh->ge_good_loss = v[3];
    return 0;
}

/* "P,MS": with probability P hold a packet up to MS ms longer, so later ones overtake it. */
static int parse_reorder(const char *s, struct shape *sh)
{
    char *end;

    if (parse_prob(s, &sh->reorder_p, &end) < 0 || *end++ != ',')
        return -1;
    return parse_ms(end, &sh->reorder_ns, NULL) < 0 || sh->reorder_ns == 0 ? -1 : 0;
}

enum shape_id { S_DELAY, S_JITTER, S_LOSS, S_GE, S_RATE, S_QUEUE, S_REORDER, S_DUP, NSHAPE };

static const struct {
    const char *name, *expect;
} shape_opts[NSHAPE] = {
    {"delay", "MS, fractions allowed"},
    {"jitter", "MS, fractions allowed"},
    {"loss", "P from 0 to 1, or N%"},
    {"ge", "P,R[,H[,K]]: probabilities"},
    {"rate", "bits/s with k, M or G: 100M, 1G"},
    {"queue", "BYTES (k, M, G: powers of 1024) or MS followed by 'ms'"},
    {"reorder", "P,MS: a probability and a hold > 0 ms"},
    {"dup", "P from 0 to 1, or N%"},
};

static int parse_shape(enum shape_id id, const char *arg, struct shape *sh)
{
    switch (id) {
    case S_DELAY:
        return parse_ms(arg, &sh->delay_ns, NULL);
    case S_JITTER:
        return parse_ms(arg, &sh->jitter_ns, NULL);
    case S_LOSS:
        return parse_prob(arg, &sh->loss, NULL);
    case S_GE:
        return parse_ge(arg, sh);
    case S_RATE:
        return parse_rate(arg, &sh->rate_bps);
    case S_QUEUE:
        return parse_queue(arg, sh);
    case S_REORDER:
        return parse_reorder(arg, sh);
    case S_DUP:
        return parse_prob(arg, &sh->dup, NULL);
    case NSHAPE:
        break;
    }
    return -1;
}

/* code = 3 * shape + variant: 0 both directions, 1 a to b, 2 b to a. */
static int set_shape(struct config *cfg, int code, const char *arg)
{
    enum shape_id id = (enum shape_id)(code / 3);
    int variant = code % 3;

    for (int d = 0; d < NDIR; d++) {
        if (variant != 0 && variant != d + 1)
            continue;
        if (parse_shape(id, arg, &cfg->s[d]) < 0) {
            fprintf(stderr, "linkemu: bad value '%s' for --%s%s%s (expected %s)\n", arg,
                    shape_opts[id].name, variant ? "-" : "", variant ? dir_names[d] : "",
                    shape_opts[id].expect);
            return -1;
        }
    }
    return 0;
}

static void usage(FILE *out)
{
    fputs("Usage: linkemu --dev-a NAME --dev-b NAME [--ns-a NS] [--ns-b NS] [options]\n"
          "Joins two TUN devices (made beforehand, e.g. `ip tuntap add dev NAME mode tun`,\n"
          "each in network namespace NS if given) with an emulated WAN link.\n"
          "\n"
          "  --dev-a NAME, --dev-b NAME   the TUN devices of the two ends\n"
          "  --ns-a NS, --ns-b NS         their namespaces (names under /run/netns)\n"
          "  --mtu N                      largest packet, bytes (default 1500)\n"
          "  --seed N                     seed of every random choice (default 1)\n"
          "  --stats FILE                 append the counters to FILE every interval\n"
          "  --interval MS                stats interval (default 100)\n"
          "  --slack US                   packets due within US leave together (default 50)\n"
          "  --max-packets N              packets held per direction (default 65536)\n"
          "  --help                       this text\n"
          "\n"
          "The link. Each option also exists with an -ab (a to b) or -ba suffix; without\n"
          "one it sets both directions. P is a probability (0.01) or a percentage (1%).\n"
          "  --rate BPS         bottleneck rate in bits/s: 100M, 1G (default: none)\n"
          "  --queue SIZE       its drop-tail queue: bytes (64k, 1M) or time at the rate\n"
          "                     (25ms); default 1 MiB\n"
          "  --delay MS         one-way propagation delay\n"
          "  --jitter MS        uniform extra delay in [-MS, +MS]; never reorders\n"
          "  --loss P           random loss, before the queue (the lost packet takes no\n"
          "                     capacity)\n"
          "  --ge P,R[,H[,K]]   Gilbert-Elliott burst loss: good->bad with P, bad->good\n"
          "                     with R, loss H in bad (default 1) and K in good (0)\n"
          "  --reorder P,MS     with probability P hold a packet up to MS ms longer\n"
          "  --dup P            deliver a second copy with probability P\n"
          "\n"
          "Prints \"linkemu ready\" once both devices are attached. The stats line is\n"
          "key=value pairs: t (seconds since start) then per direction (ab_, ba_):\n"
          "in_pkts in_bytes in_udp in_tcp (UDP/TCP payload bytes read from the sending\n"
          "end), out_pkts out_bytes out_udp out_tcp (delivered), lost ge_lost queue_drops\n"
          "overflow duplicated reordered errors queue_max, held_udp held_tcp (payload in\n"
          "the link at that moment); the line ends with \"end=1\".\n"
          "SIGTERM or SIGINT: a last stats line, the totals on stderr, exit 0.\n",
          out);
}

// clang-format off
#define SHAPE_OPTS(name, id)                                                                       \
    {name, required_argument, NULL, OPT_SHAPE + 3 * (id)},                                         \
    {name "-ab", required_argument, NULL, OPT_SHAPE + 3 * (id) + 1},                               \
    {name "-ba", required_argument, NULL, OPT_SHAPE + 3 * (id) + 2}
// clang-format on

enum {
    OPT_DEV_A = 256,
    OPT_DEV_B,
    OPT_NS_A,
    OPT_NS_B,
    OPT_MTU,
    OPT_SEED,
    OPT_STATS,
    OPT_INTERVAL,
    OPT_SLACK,
    OPT_MAX_PACKETS,
    OPT_HELP,
    OPT_SHAPE = 512
};

static const struct option long_opts[] = {
    {"dev-a", required_argument, NULL, OPT_DEV_A},
    {"dev-b", required_argument, NULL, OPT_DEV_B},
    {"ns-a", required_argument, NULL, OPT_NS_A},
    {"ns-b", required_argument, NULL, OPT_NS_B},
    {"mtu", required_argument, NULL, OPT_MTU},
    {"seed", required_argument, NULL, OPT_SEED},
    {"stats", required_argument, NULL, OPT_STATS},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"slack", required_argument, NULL, OPT_SLACK},
    {"max-packets", required_argument, NULL, OPT_MAX_PACKETS},
    {"help", no_argument, NULL, OPT_HELP},
    SHAPE_OPTS("delay", S_DELAY),
    SHAPE_OPTS("jitter", S_JITTER),
    SHAPE_OPTS("loss", S_LOSS),
    SHAPE_OPTS("ge", S_GE),
    SHAPE_OPTS("rate", S_RATE),
    SHAPE_OPTS("queue", S_QUEUE),
    SHAPE_OPTS("reorder", S_REORDER),
    SHAPE_OPTS("dup", S_DUP),
    {NULL, 0, NULL, 0},
};

static int parse_unsigned(const char *opt, const char *s, unsigned long min, unsigned long max,
                          uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
    if (!isdigit((unsigned char)s[0]) || errno != 0 || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "linkemu: bad value '%s' for --%s (expected %lu..%lu)\n", s, opt, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* One option that is not a link shape; 1 when --help was handled, -1 on error. */
static int set_option(struct config *cfg, int c, const char *arg)
{
    uint64_t v = 0;
    int r = 0;

    switch (c) {
    case OPT_DEV_A:
        cfg->dev[AB] = arg;
        break;
    case OPT_DEV_B:
        cfg->dev[BA] = arg;
        break;
    case OPT_NS_A:
        cfg->ns[AB] = arg;
        break;
    case OPT_NS_B:
        cfg->ns[BA] = arg;
        break;
    case OPT_STATS:
        cfg->stats_path = arg;
        break;
    case OPT_MTU:
        r = parse_unsigned("mtu", arg, 576, 65535, &v);
        cfg->mtu = (unsigned)v;
        break;
    case OPT_SEED:
        r = parse_unsigned("seed", arg, 0, ULONG_MAX, &cfg->seed);
        break;
    case OPT_INTERVAL:
        r = parse_unsigned("interval", arg, 1, 3600000, &v);
        cfg->interval_ms = (unsigned)v;
        break;
    case OPT_SLACK:
        r = parse_unsigned("slack", arg, 0, 1000000, &v);
        cfg->slack_us = (unsigned)v;
        break;
    case OPT_MAX_PACKETS:
        r = parse_unsigned("max-packets", arg, 16, 1u << 22, &v);
        cfg->max_packets = (unsigned)v;
        break;
    case OPT_HELP:
        usage(stdout);
        return 1;
    default:
        fputs("Try 'linkemu --help'.\n", stderr);
        return -1;
    }
    return r;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    int c, r;

    memset(cfg, 0, sizeof(*cfg));
    cfg->mtu = DEFAULT_MTU;
    cfg->interval_ms = DEFAULT_INTERVAL_MS;
    cfg->slack_us = DEFAULT_SLACK_US;
    cfg->max_packets = DEFAULT_MAX_PACKETS;
    cfg->seed = 1;
    for (int d = 0; d < NDIR; d++)
        cfg->s[d].queue_bytes = 1u << 20;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        r = c >= OPT_SHAPE ? set_shape(cfg, c - OPT_SHAPE, optarg) : set_option(cfg, c, optarg);
        if (r != 0)
            return r;
    }
    if (optind < argc) {
        fprintf(stderr, "linkemu: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cfg->dev[AB] == NULL || cfg->dev[BA] == NULL) {
        fputs("linkemu: --dev-a and --dev-b are required\n", stderr);
        return -1;
    }
    return 0;
}

/* ---- the TUN devices ---------------------------------------------------- */

static int enter_netns(const char *ns)
{
    char path[256];
    int fd, r;

    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "linkemu: namespace %s: %s\n", path, strerror(errno));
        return -1;
    }
    r = setns(fd, CLONE_NEWNET);
    if (r < 0)
        fprintf(stderr, "linkemu: setns %s: %s\n", ns, strerror(errno));
    close(fd);
    return r;
}

/* Attaches to TUN device name in namespace ns; the fd keeps it after we leave. */
static int open_tun(const char *ns, const char *name, int home_ns)
{
    struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
    int fd;

    if (ns != NULL && enter_netns(ns) < 0)
        return -1;
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror("linkemu: /dev/net/tun");
    } else {
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
            fprintf(stderr, "linkemu: attach %s: %s\n", name, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    if (ns != NULL && setns(home_ns, CLONE_NEWNET) < 0) {
        perror("linkemu: back to the first namespace");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* ---- held packets: a min-heap on (due, arrival order) ------------------- */

static bool held_before(const struct held *a, const struct held *b)
{
    return a->due_ns != b->due_ns ? a->due_ns < b->due_ns : a->order < b->order;
}

static void heap_push(struct direction *d, struct held e)
{
    uint32_t i = d->nheap++;

    while (i > 0 && held_before(&e, &d->heap[(i - 1) / 2])) {
        d->heap[i] = d->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    d->heap[i] = e;
}

static struct held heap_pop(struct direction *d)
{
    struct held top = d->heap[0], last = d->heap[--d->nheap];
    uint32_t i = 0;

    for (;;) {
        uint32_t l = 2 * i + 1, m = l;
        if (l >= d->nheap)
            break;
        if (l + 1 < d->nheap && held_before(&d->heap[l + 1], &d->heap[l]))
            m = l + 1;
        if (!held_before(&d->heap[m], &last))
            break;
        d->heap[i] = d->heap[m];
        i = m;
    }
    if (d->nheap > 0)
        d->heap[i] = last;
    return top;
}

static unsigned char *slot_data(struct direction *d, uint32_t slot)
{
    return d->pool + (size_t)slot * d->slot_size;
}

/* ---- one direction ------------------------------------------------------ */

static void bump(_Atomic uint64_t *c, uint64_t v)
{
    /* One writer per counter: a plain load and store, no locked add on the fast path. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* The UDP or TCP payload bytes of an IP packet (fragments of UDP count whole). */
static void payload_of(const unsigned char *p, size_t len, uint64_t *udp, uint64_t *tcp)
{
    size_t hl, l4;
    unsigned proto;
    bool first = true;

    *udp = *tcp = 0;
    if (len >= 20 && p[0] >> 4 == 4) {
        hl = (size_t)(p[0] & 15) * 4;
        proto = p[9];
        first = ((p[6] & 0x1f) | p[7]) == 0;
    } else if (len >= 40 && p[0] >> 4 == 6) {
        hl = 40;
        proto = p[6];
    } else {
        return;
    }
    if (hl > len)
        return;
    l4 = len - hl;
    if (proto == 17)
        *udp = first ? (l4 >= 8 ? l4 - 8 : 0) : l4;
    else if (proto == 6 && l4 >= 20 && (size_t)(p[hl + 12] >> 4) * 4 <= l4)
        *tcp = l4 - (size_t)(p[hl + 12] >> 4) * 4;
}

/* Random and burst loss; every draw is made whatever is on, so patterns stay put. */
static bool lose(struct direction *d, bool *burst)
{
    const struct shape *s = &d->s;
    double r_loss = rng_unit(&d->rng), r_move = rng_unit(&d->rng), r_ge = rng_unit(&d->rng);

    if (d->ge_bad ? r_move < s->ge_r : r_move < s->ge_p)
        d->ge_bad = !d->ge_bad;
    *burst = r_ge < (d->ge_bad ? s->ge_bad_loss : s->ge_good_loss) &&
             (s->ge_p > 0 || s->ge_good_loss > 0);
    return *burst || r_loss < s->loss;
}

static uint64_t queue_limit(const struct shape *s)
{
    if (s->queue_ns > 0)
        return s->queue_ns * s->rate_bps / 8 / NS;
    return s->queue_bytes;
}

/* When a packet of len bytes has crossed the bottleneck, or 0 if the queue drops it. */
static uint64_t bottleneck(struct direction *d, size_t len, uint64_t now)
{
    const struct shape *s = &d->s;
    uint64_t start, backlog;

    if (s->rate_bps == 0)
        return now;
    start = d->link_free_ns > now ? d->link_free_ns : now;
    backlog = (start - now) * s->rate_bps / 8 / NS; /* bytes still to serialise */
    if (backlog + len > queue_limit(s) && backlog > 0) {
        bump(&d->n.queue_drops, 1);
        return 0;
    }
    if (backlog + len > atomic_load_explicit(&d->n.queue_max, memory_order_relaxed))
        atomic_store_explicit(&d->n.queue_max, backlog + len, memory_order_relaxed);
    d->link_free_ns = start + (uint64_t)len * 8 * NS / s->rate_bps;
    return d->link_free_ns;
}

static uint64_t propagate(struct direction *d, uint64_t sent)
{
    const struct shape *s = &d->s;
    uint64_t due = sent + s->delay_ns;
    uint64_t r = rng_next(&d->rng);

    if (s->jitter_ns > 0) {
        int64_t j = (int64_t)(r % (2 * s->jitter_ns + 1)) - (int64_t)s->jitter_ns;
        due = (int64_t)due + j > (int64_t)sent ? (uint64_t)((int64_t)due + j) : sent;
    }
    if (due < d->last_due_ns)
        due = d->last_due_ns;
    d->last_due_ns = due;
    return due;
}

static bool hold(struct direction *d, uint32_t slot, uint32_t len, uint64_t due, uint64_t udp,
                 uint64_t tcp)
{
    if (d->nheap == d->max_packets)
        return false;
    heap_push(d, (struct held){.due_ns = due,
                               .order = d->order++,
                               .slot = slot,
                               .len = len,
                               .udp = (uint32_t)udp,
                               .tcp = (uint32_t)tcp});
    bump(&d->n.held_udp, udp);
    bump(&d->n.held_tcp, tcp);
    return true;
}

/* A packet just read into slot: its fate, then into the heap or back to the pool. */
static void admit(struct direction *d, uint32_t slot, uint32_t len, uint64_t now)
{
    const struct shape *s = &d->s;
    double r_reorder = rng_unit(&d->rng), r_dup = rng_unit(&d->rng);
    uint64_t r_hold = rng_next(&d->rng), udp, tcp, sent, due;
    bool burst;

    payload_of(slot_data(d, slot), len, &udp, &tcp);
    bump(&d->n.in_pkts, 1);
    bump(&d->n.in_bytes, len);
    bump(&d->n.in_udp, udp);
    bump(&d->n.in_tcp, tcp);
    if (lose(d, &burst)) {
        bump(burst ? &d->n.ge_lost : &d->n.lost, 1);
        d->free_slots[d->nfree++] = slot;
        return;
    }
    sent = bottleneck(d, len, now);
    if (sent == 0) {
        d->free_slots[d->nfree++] = slot;
        return;
    }
    due = propagate(d, sent);
    if (r_dup < s->dup && d->nfree > 0) {
        uint32_t copy = d->free_slots[--d->nfree];
        memcpy(slot_data(d, copy), slot_data(d, slot), len);
        if (hold(d, copy, len, due, udp, tcp))
            bump(&d->n.duplicated, 1);
        else
            d->free_slots[d->nfree++] = copy;
    }
    if (r_reorder < s->reorder_p) {
        due += 1 + r_hold % s->reorder_ns;
        bump(&d->n.reordered, 1);
    }
    if (!hold(d, slot, len, due, udp, tcp)) {
        bump(&d->n.overflow, 1);
        d->free_slots[d->nfree++] = slot;
    }
}

static void release_due(struct direction *d, uint64_t now)
{
    while (d->nheap > 0 && d->heap[0].due_ns <= now + slack_ns) {
        struct held h = heap_pop(d);
        const unsigned char *p = slot_data(d, h.slot);

        bump(&d->n.held_udp, -(uint64_t)h.udp);
        bump(&d->n.held_tcp, -(uint64_t)h.tcp);
        if (write(d->out_fd, p, h.len) != (ssize_t)h.len) {
            bump(&d->n.errors, 1);
        } else {
            bump(&d->n.out_pkts, 1);
            bump(&d->n.out_bytes, h.len);
            bump(&d->n.out_udp, h.udp);
            bump(&d->n.out_tcp, h.tcp);
        }
        d->free_slots[d->nfree++] = h.slot;
    }
}

static void read_batch(struct direction *d)
{
    for (int i = 0; i < READ_BATCH; i++) {
        uint32_t slot;
        ssize_t len;

        if (d->nfree == 0) {
            /* Every slot is held: drain one packet so the sender sees loss, not a stall. */
            static unsigned char sink[65536];
            if (read(d->in_fd, sink, sizeof(sink)) < 0)
                return;
            bump(&d->n.overflow, 1);
            continue;
        }
        slot = d->free_slots[--d->nfree];
        len = read(d->in_fd, slot_data(d, slot), d->slot_size);
        if (len <= 0) {
            d->free_slots[d->nfree++] = slot;
            if (len < 0 && errno != EAGAIN && errno != EINTR)
                bump(&d->n.errors, 1);
            return;
        }
        admit(d, slot, (uint32_t)len, now_ns());
    }
}

static void *direction_main(void *arg)
{
    struct direction *d = arg;
    struct pollfd pfd = {.fd = d->in_fd, .events = POLLIN};

    (void)prctl(PR_SET_TIMERSLACK, 1UL); /* wake when asked, not 50 us later */
    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        uint64_t now = now_ns(), wait = IDLE_WAKE_NS;
        struct timespec ts;

        release_due(d, now);
        if (d->nheap > 0)
            wait = d->heap[0].due_ns > now ? d->heap[0].due_ns - now : 0;
        if (wait > IDLE_WAKE_NS)
            wait = IDLE_WAKE_NS;
        ts.tv_sec = (time_t)(wait / NS);
        ts.tv_nsec = (long)(wait % NS);
        if (ppoll(&pfd, 1, &ts, NULL) > 0)
            read_batch(d);
    }
    return NULL;
}

static int direction_init(struct direction *d, enum dir id, const struct config *cfg)
{
    size_t pool_bytes;

    d->id = id;
    d->s = cfg->s[id];
    d->rng = cfg->seed ^ (0x5bd1e9955bd1e995ULL * (uint64_t)(id + 1));
    d->max_packets = cfg->max_packets;
    d->slot_size = ((size_t)cfg->mtu + 63) / 64 * 64;
    pool_bytes = d->slot_size * d->max_packets;
    /* Reserved, not committed: only the slots a deep queue touches cost memory. */
    d->pool = mmap(NULL, pool_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    d->free_slots = calloc(d->max_packets, sizeof(*d->free_slots));
    d->heap = calloc(d->max_packets, sizeof(*d->heap));
    if (d->pool == MAP_FAILED || d->free_slots == NULL || d->heap == NULL)
        return -1;
    /* Low slots on top of the stack: a shallow queue keeps reusing the same pages. */
    for (uint32_t i = 0; i < d->max_packets; i++)
        d->free_slots[i] = d->max_packets - 1 - i;
    d->nfree = d->max_packets;
    return 0;
}

/* ---- stats -------------------------------------------------------------- */

static void stats_line(FILE *f, const struct direction *dirs, uint64_t t0)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "t=%.3f", (double)(now_ns() - t0) / 1e9);

    for (int i = 0; i < NDIR; i++) {
        const struct counters *c = &dirs[i].n;
        const char *p = dir_names[i];
#define F(name) (unsigned long long)atomic_load_explicit(&c->name, memory_order_relaxed)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      " %s_in_pkts=%llu %s_in_bytes=%llu %s_in_udp=%llu %s_in_tcp=%llu"
                      " %s_out_pkts=%llu %s_out_bytes=%llu %s_out_udp=%llu %s_out_tcp=%llu"
                      " %s_lost=%llu %s_ge_lost=%llu %s_queue_drops=%llu %s_overflow=%llu"
                      " %s_duplicated=%llu %s_reordered=%llu %s_errors=%llu %s_queue_max=%llu"
                      " %s_held_udp=%llu %s_held_tcp=%llu",
                      p, F(in_pkts), p, F(in_bytes), p, F(in_udp), p, F(in_tcp), p, F(out_pkts), p,
                      F(out_bytes), p, F(out_udp), p, F(out_tcp), p, F(lost), p, F(ge_lost), p,
                      F(queue_drops), p, F(overflow), p, F(duplicated), p, F(reordered), p,
                      F(errors), p, F(queue_max), p, F(held_udp), p, F(held_tcp));
#undef F
    }
    snprintf(buf + n, sizeof(buf) - (size_t)n, " end=1\n");
    /* One write per line, so a reader never sees half of one mixed with another. */
    fputs(buf, f);
    fflush(f);
}

static void describe(const struct config *cfg)
{
    for (int i = 0; i < NDIR; i++) {
        const struct shape *s = &cfg->s[i];
        fprintf(stderr,
                "linkemu %s: rate=%llu bit/s queue=%llu B delay=%.3f ms jitter=%.3f ms "
                "loss=%g ge=%g,%g,%g,%g reorder=%g,%.3f ms dup=%g\n",
                dir_names[i], (unsigned long long)s->rate_bps,
                (unsigned long long)(s->rate_bps ? queue_limit(s) : 0), (double)s->delay_ns / 1e6,
                (double)s->jitter_ns / 1e6, s->loss, s->ge_p, s->ge_r, s->ge_bad_loss,
                s->ge_good_loss, s->reorder_p, (double)s->reorder_ns / 1e6, s->dup);
    }
}

/* Waits for a stop signal, writing a stats line every interval (and on SIGUSR1). */
static void stats_loop(const struct config *cfg, struct direction *dirs, const sigset_t *sigs)
{
    FILE *f = NULL;
    uint64_t t0 = now_ns(), next = t0;

    if (cfg->stats_path != NULL && (f = fopen(cfg->stats_path, "a")) == NULL)
        fprintf(stderr, "linkemu: %s: %s (no stats file)\n", cfg->stats_path, strerror(errno));
    for (;;) {
        uint64_t now = now_ns(), wait;
        struct timespec ts;
        int sig;

        if (now >= next) {
            if (f != NULL)
                stats_line(f, dirs, t0);
            next += (uint64_t)cfg->interval_ms * 1000000u;
            continue;
        }
        wait = next - now;
        ts.tv_sec = (time_t)(wait / NS);
        ts.tv_nsec = (long)(wait % NS);
        sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGUSR1 && f != NULL)
            stats_line(f, dirs, t0);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    if (f != NULL) {
        stats_line(f, dirs, t0);
        fclose(f);
    }
    stats_line(stderr, dirs, t0);
}

int main(int argc, char **argv)
{
    static struct direction dirs[NDIR];
    struct config cfg;
    pthread_t threads[NDIR];
    sigset_t sigs;
    int fds[NDIR], home, r = parse_args(argc, argv, &cfg);

    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    slack_ns = (uint64_t)cfg.slack_us * 1000u;
    /* Signals go to the stats loop's sigtimedwait, never to a forwarding thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
        perror("linkemu: /proc/self/ns/net");
        return EXIT_SYSTEM;
    }
    for (int i = 0; i < NDIR; i++) {
        fds[i] = open_tun(cfg.ns[i], cfg.dev[i], home);
        if (fds[i] < 0)
            return EXIT_SYSTEM;
    }
    close(home);
    for (int i = 0; i < NDIR; i++) {
        if (direction_init(&dirs[i], (enum dir)i, &cfg) < 0) {
            fputs("linkemu: out of memory\n", stderr);
            return EXIT_SYSTEM;
        }
        dirs[i].in_fd = fds[i];
        dirs[i].out_fd = fds[1 - i];
    }
    describe(&cfg);
    for (int i = 0; i < NDIR; i++) {
        if (pthread_create(&threads[i], NULL, direction_main, &dirs[i]) != 0) {
            fputs("linkemu: cannot start a thread\n", stderr);
            return EXIT_SYSTEM;
        }
    }
    printf("linkemu ready\n");
    fflush(stdout);
    stats_loop(&cfg, dirs, &sigs);
    atomic_store(&stopping, true);
    for (int i = 0; i < NDIR; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
