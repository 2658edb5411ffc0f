/*
 * linkopts.c - bench/wan/linkemu's command line: the link's shape per direction, in the
 * units a person thinks in (100M, 25ms, 1%), checked before anything is set up.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkemu.h"

const char *const dir_names[NDIR] = {"ab", "ba"};

uint64_t shape_queue_limit(const struct shape *s)
{
    if (s->queue_ns > 0)
        return s->queue_ns * s->rate_bps / 8 / NS;
    return s->queue_bytes;
}

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
          "  --no-realtime                run at normal priority (default: the forwarding\n"
          "                               threads ask for SCHED_FIFO, so a loaded machine\n"
          "                               does not make the link late; they sleep between\n"
          "                               packets and take no more than they forward)\n"
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
    OPT_NO_REALTIME,
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
    {"no-realtime", no_argument, NULL, OPT_NO_REALTIME},
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
    case OPT_NO_REALTIME:
        cfg->realtime = false;
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

int linkemu_parse_args(int argc, char **argv, struct config *cfg)
{
    int c, r;

    memset(cfg, 0, sizeof(*cfg));
    cfg->mtu = DEFAULT_MTU;
    cfg->interval_ms = DEFAULT_INTERVAL_MS;
    cfg->slack_us = DEFAULT_SLACK_US;
    cfg->max_packets = DEFAULT_MAX_PACKETS;
    cfg->seed = 1;
    cfg->realtime = true;
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
