/*
 * faultproxy.c - a UDP proxy that damages traffic on purpose, so integration
 * tests can show rpc2 surviving loss, bursts, duplication, reordering, delay,
 * corruption and outages on a real loopback path, reproducibly from a seed;
 * and a bottleneck (a rate with a bounded drop-tail queue), so they can show
 * how it fills a slow link without flooding it.
 *
 * Each client gets its own upstream socket, so the server sees one address per
 * client and its replies find their way back. Every random choice comes from a
 * per-direction generator that is drawn a fixed number of times per datagram:
 * the fate of the n-th datagram in a direction depends only on the seed and n,
 * not on timing or on which other faults are switched on. The bottleneck's
 * drops are the exception: like a router's, they depend on when datagrams come.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#define MAX_DGRAM 65536
#define DEFAULT_MAX_CLIENTS 1024
#define LIMIT_MAX_CLIENTS 65536
#define MAX_PENDING 65536             /* datagrams held back for later */
#define MAX_PENDING_BYTES (64u << 20) /* and their total size */
#define READ_BUDGET 64                /* per socket per wake-up: no socket starves the rest */
#define SOCKET_BUFFER (1 << 20)       /* asked for, the kernel may give less */
#define MAX_MS 3600000UL              /* one hour: any longer is a typo */
#define DEFAULT_QUEUE (64u << 10)     /* the bottleneck's queue when --queue is not given */
#define MIN_RATE 1000ULL              /* bits/s: slower would hold datagrams for minutes */
#define MAX_RATE 100000000000ULL
#define EXIT_USAGE 1
#define EXIT_SYSTEM 2

enum dir { C2S, S2C, NDIR };
static const char *const dir_names[NDIR] = {"c2s", "s2c"};

enum fault_id {
    F_LOSS,
    F_BURST,
    F_DUP,
    F_REORDER,
    F_DELAY,
    F_CORRUPT,
    F_BLACKOUT,
    F_RESEAL,
    F_RATE,
    F_QUEUE,
    NFAULT
};

/* What each fault option expects, for error messages; indexed by enum fault_id. */
static const struct {
    const char *name;
    const char *expect;
} fault_opts[NFAULT] = {
    {"loss", "P, a probability from 0 to 1"},
    {"burst", "P,LEN: a probability and a count >= 1"},
    {"dup", "P, a probability from 0 to 1"},
    {"reorder", "P,MAXDELAY_MS: a probability and 1..3600000 ms"},
    {"delay", "MS, 0..3600000"},
    {"corrupt", "P, a probability from 0 to 1"},
    {"blackout", "START_MS,LEN_MS, each 0..3600000"},
    {"corrupt-resealed", "P, a probability from 0 to 1"},
    {"rate", "BITS/S from 1000 to 100G, with k, M or G (powers of 1000): 20M"},
    {"queue", "BYTES from 1 to 64M, with k or M (powers of 1024): 64k"},
};

struct faults {
    double loss;
    double burst_p;
    unsigned burst_len;
    double dup;
    double reorder_p;
    unsigned reorder_max_ms;
    unsigned delay_ms;
    double corrupt;
    unsigned blackout_start_ms;
    unsigned blackout_len_ms;
    double reseal; /* SFTP data damaged and its datagram check made to match */
    uint64_t rate_bps;    /* the bottleneck: 0 when there is none */
    uint64_t queue_bytes; /* its drop-tail queue, DEFAULT_QUEUE unless set */
};

struct counters {
    uint64_t forwarded, dropped, duplicated, reordered, corrupted, delayed;
    uint64_t resealed;      /* damaged past the datagram check (--corrupt-resealed) */
    uint64_t overflow;      /* lost to the proxy's own limits, not to an injected fault */
    uint64_t errors;        /* sockets that failed */
    uint64_t queue_dropped; /* refused by the bottleneck's full queue */
    uint64_t bytes_in, bytes_forwarded; /* payload received and sent on: what a link costs */
};

struct direction {
    struct faults f;
    uint64_t rng;
    uint64_t reseal_rng; /* its own: switching it on changes no other fault's fate */
    unsigned burst_left;
    uint64_t link_free_ns; /* when the bottleneck has sent everything it accepted */
    struct counters n;
};

/* The fate of one datagram, drawn before anything is done to it. */
struct verdict {
    bool drop, dup, corrupt;
    uint64_t hold_us;
    uint64_t corrupt_seed;
};

struct client {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;       /* upstream socket connected to the server; -1 when the slot is free */
    uint32_t gen; /* bumped on eviction, so held datagrams never reach a newcomer */
    uint64_t last_us;
};

struct pending {
    uint64_t due_us;
    uint64_t order; /* equal deadlines leave in arrival order */
    enum dir dir;
    uint32_t slot, gen;
    size_t len;
    unsigned char *data;
};

struct config {
    struct sockaddr_storage listen, server;
    socklen_t listen_len, server_len;
    uint64_t seed;
    unsigned max_clients;
    struct faults f[NDIR];
};

struct proxy {
    struct config cfg;
    int lfd;
    struct client *clients;
    struct direction d[NDIR];
    struct pending *heap; /* min-heap on (due_us, order), MAX_PENDING slots */
    size_t nheap, heap_bytes;
    uint64_t next_order;
    bool started;
    uint64_t t0_us; /* first datagram seen: the blackout clock starts here */
    struct pollfd *pfds;
    uint32_t *pslot; /* client slot of each pfds entry after the first */
    unsigned char buf[MAX_DGRAM];
};

static volatile sig_atomic_t stop_signal;

/* ---- time and randomness ------------------------------------------------ */

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* splitmix64: tiny, seedable with any value, good enough to pick fates. */
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

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_prob(const char *s, double *out)
{
    char *end;
    double v;

    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return -1;
    *out = v;
    return 0;
}

/* Splits "A,B" into two bounded copies; anything but exactly one comma fails. */
static int split_pair(const char *s, char *a, char *b, size_t cap)
{
    const char *comma = strchr(s, ',');

    if (comma == NULL || strchr(comma + 1, ',') != NULL)
        return -1;
    if ((size_t)(comma - s) >= cap || strlen(comma + 1) >= cap)
        return -1;
    memcpy(a, s, (size_t)(comma - s));
    a[comma - s] = '\0';
    strcpy(b, comma + 1);
    return 0;
}

static int parse_prob_uint(const char *s, double *p, unsigned *v, unsigned long max)
{
    char a[64], b[64];

    if (split_pair(s, a, b, sizeof(a)) < 0 || parse_prob(a, p) < 0)
        return -1;
    if (parse_uint(b, max, v) < 0 || *v < 1)
        return -1;
    return 0;
}

static int parse_uint_pair(const char *s, unsigned *x, unsigned *y)
{
    char a[64], b[64];

    if (split_pair(s, a, b, sizeof(a)) < 0)
        return -1;
    return parse_uint(a, MAX_MS, x) < 0 || parse_uint(b, MAX_MS, y) < 0 ? -1 : 0;
}

/* N with an optional suffix: k, M, G times unit, unit^2, unit^3; N in [min, max]. */
static int parse_scaled(const char *s, uint64_t unit, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == 'k' || *end == 'K')
        mult = unit;
    else if (*end == 'M')
        mult = unit * unit;
    else if (*end == 'G')
        mult = unit * unit * unit;
    if (mult > 1)
        end++;
    if (*end != '\0' || v > max / mult || v * mult < min)
        return -1;
    *out = v * mult;
    return 0;
}

static int parse_fault(enum fault_id id, const char *arg, struct faults *f)
{
    switch (id) {
    case F_LOSS:
        return parse_prob(arg, &f->loss);
    case F_BURST:
        return parse_prob_uint(arg, &f->burst_p, &f->burst_len, UINT_MAX);
    case F_DUP:
        return parse_prob(arg, &f->dup);
    case F_REORDER:
        return parse_prob_uint(arg, &f->reorder_p, &f->reorder_max_ms, MAX_MS);
    case F_DELAY:
        return parse_uint(arg, MAX_MS, &f->delay_ms);
    case F_CORRUPT:
        return parse_prob(arg, &f->corrupt);
    case F_BLACKOUT:
        return parse_uint_pair(arg, &f->blackout_start_ms, &f->blackout_len_ms);
    case F_RESEAL:
        return parse_prob(arg, &f->reseal);
    case F_RATE:
        return parse_scaled(arg, 1000, MIN_RATE, MAX_RATE, &f->rate_bps);
    case F_QUEUE:
        return parse_scaled(arg, 1024, 1, MAX_PENDING_BYTES, &f->queue_bytes);
    case NFAULT:
        break;
    }
    return -1;
}

/* code = 3 * fault + variant, where variant 0 is both directions, 1 is c2s, 2 is s2c. */
static int set_fault(struct config *cfg, int code, const char *arg)
{
    enum fault_id id = (enum fault_id)(code / 3);
    int variant = code % 3;

    for (int d = 0; d < NDIR; d++) {
        if (variant != 0 && variant != d + 1)
            continue;
        if (parse_fault(id, arg, &cfg->f[d]) < 0) {
            fprintf(stderr, "faultproxy: bad value '%s' for --%s%s%s (expected %s)\n", arg,
                    fault_opts[id].name, variant ? "-" : "", variant ? dir_names[d] : "",
                    fault_opts[id].expect);
            return -1;
        }
    }
    return 0;
}

static int resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res;

    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        return -1;
    return 0;
}

/* Accepts HOST:PORT and [IPV6]:PORT; a bare IPv6 address is ambiguous and refused. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon, *start = s, *stop;
    unsigned port;

    if (s[0] == '[') {
        start = s + 1;
        stop = strchr(start, ']');
        if (stop == NULL || stop[1] != ':')
            return -1;
        colon = stop + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return -1;
        stop = colon;
    }
    if (stop == start || (size_t)(stop - start) >= sizeof(host))
        return -1;
    memcpy(host, start, (size_t)(stop - start));
    host[stop - start] = '\0';
    if (parse_uint(colon + 1, 65535, &port) < 0)
        return -1;
    return resolve(host, port, ss, len);
}

static unsigned addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void usage(FILE *out)
{
    fputs("Usage: faultproxy --server ADDR:PORT [--listen ADDR:PORT] [options]\n"
          "A UDP proxy between clients and one server that drops, duplicates, reorders,\n"
          "delays and corrupts datagrams, reproducibly from a seed.\n"
          "\n"
          "  --listen ADDR:PORT    where clients send (default 127.0.0.1:0; port 0 picks a\n"
          "                        free port). ADDR is IPv4, [IPv6] or a host name\n"
          "  --server ADDR:PORT    the server every client datagram goes to (required)\n"
          "  --seed N              seed of every random choice (default 1)\n"
          "  --max-clients N       client table size; when full, the client idle longest is\n"
          "                        evicted (default 1024)\n"
          "  --help                print this text and exit\n"
          "\n"
          "Faults. Each option also exists with a -c2s (client to server) or -s2c (server\n"
          "to client) suffix, e.g. --loss-c2s; without one it sets both directions. P is a\n"
          "probability from 0 to 1. Every fault is off by default.\n"
          "  --loss P              drop each datagram with probability P\n"
          "  --burst P,LEN         with probability P start dropping LEN consecutive datagrams\n"
          "  --dup P               send a second copy with probability P\n"
          "  --reorder P,MAXMS     with probability P hold a datagram back 1..MAXMS ms, so\n"
          "                        later ones overtake it\n"
          "  --delay MS            delay every datagram by MS ms\n"
          "  --corrupt P           with probability P flip one bit in each of 1-3 bytes\n"
          "  --blackout START,LEN  drop everything from START ms to START+LEN ms after the\n"
          "                        first datagram the proxy sees\n"
          "  --corrupt-resealed P  with probability P flip a bit in the last body byte of an\n"
          "                        rpc2 SFTP DATA datagram at security none and make its\n"
          "                        check trailer match again: damage only the end-to-end\n"
          "                        checksum can find, as a sender corrupting its own data\n"
          "  --rate BPS            a bottleneck of BPS bits/s (k, M, G: powers of 1000) counting\n"
          "                        UDP payload; datagrams wait in its queue, then --delay\n"
          "  --queue BYTES         the bottleneck's drop-tail queue (k, M: powers of 1024;\n"
          "                        default 64k): a datagram that would overfill it is dropped,\n"
          "                        unless the queue is empty. Loss and bursts strike before it,\n"
          "                        so a lost datagram takes no capacity; a duplicate takes none\n"
          "\n"
          "Once bound, prints \"faultproxy listening on PORT\" on stdout. On SIGTERM or\n"
          "SIGINT prints per-direction counters on stderr and exits 0: forwarded, dropped\n"
          "(by a fault), duplicated, reordered, corrupted, delayed, overflow (lost to the\n"
          "proxy's limits: 65536 or 64 MiB of held datagrams, or a client evicted while\n"
          "one was held), errors (socket failures), queue_dropped (by the bottleneck),\n"
          "bytes_in (payload bytes received) and bytes_forwarded (payload bytes sent on).\n"
          "Exit status: 0 after a signal or --help, 1 for bad options, 2 for system errors.\n",
          out);
}

/* Each fault option three times: both directions, then -c2s and -s2c. */
// clang-format off
#define FAULT_OPTS(name, id)                                                                       \
    {name, required_argument, NULL, OPT_FAULT + 3 * (id)},                                         \
    {name "-c2s", required_argument, NULL, OPT_FAULT + 3 * (id) + 1},                              \
    {name "-s2c", required_argument, NULL, OPT_FAULT + 3 * (id) + 2}
// clang-format on

enum { OPT_LISTEN = 256, OPT_SERVER, OPT_SEED, OPT_MAX_CLIENTS, OPT_HELP, OPT_FAULT = 512 };

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"server", required_argument, NULL, OPT_SERVER},
    {"seed", required_argument, NULL, OPT_SEED},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"help", no_argument, NULL, OPT_HELP},
    FAULT_OPTS("loss", F_LOSS),
    FAULT_OPTS("burst", F_BURST),
    FAULT_OPTS("dup", F_DUP),
    FAULT_OPTS("reorder", F_REORDER),
    FAULT_OPTS("delay", F_DELAY),
    FAULT_OPTS("corrupt", F_CORRUPT),
    FAULT_OPTS("blackout", F_BLACKOUT),
    FAULT_OPTS("corrupt-resealed", F_RESEAL),
    FAULT_OPTS("rate", F_RATE),
    FAULT_OPTS("queue", F_QUEUE),
    {NULL, 0, NULL, 0},
};

static int parse_seed(const char *s, uint64_t *out)
{
    char *end;

    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

static int bad_value(const char *opt, const char *arg)
{
    fprintf(stderr, "faultproxy: bad value '%s' for --%s\n", arg, opt);
    return -1;
}

/* One non-fault option; returns 1 when --help was handled, -1 on error. */
static int set_option(struct config *cfg, int c, const char *arg, bool *have_server)
{
    switch (c) {
    case OPT_LISTEN:
        return parse_addr(arg, &cfg->listen, &cfg->listen_len) < 0 ? bad_value("listen", arg) : 0;
    case OPT_SERVER:
        if (parse_addr(arg, &cfg->server, &cfg->server_len) < 0 || addr_port(&cfg->server) == 0)
            return bad_value("server", arg);
        *have_server = true;
        return 0;
    case OPT_SEED:
        return parse_seed(arg, &cfg->seed) < 0 ? bad_value("seed", arg) : 0;
    case OPT_MAX_CLIENTS:
        if (parse_uint(arg, LIMIT_MAX_CLIENTS, &cfg->max_clients) < 0 || cfg->max_clients < 1)
            return bad_value("max-clients", arg);
        return 0;
    case OPT_HELP:
        usage(stdout);
        return 1;
    default:
        fputs("Try 'faultproxy --help'.\n", stderr);
        return -1;
    }
}

/* Returns 0 to run, 1 when --help was printed, -1 on a bad command line. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    bool have_server = false;
    int c, r;

    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 1;
    cfg->max_clients = DEFAULT_MAX_CLIENTS;
    for (int d = 0; d < NDIR; d++)
        cfg->f[d].queue_bytes = DEFAULT_QUEUE;
    if (parse_addr("127.0.0.1:0", &cfg->listen, &cfg->listen_len) < 0)
        return -1;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        r = c >= OPT_FAULT ? set_fault(cfg, c - OPT_FAULT, optarg)
                           : set_option(cfg, c, optarg, &have_server);
        if (r != 0)
            return r;
    }
    if (optind < argc) {
        fprintf(stderr, "faultproxy: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!have_server) {
        fputs("faultproxy: --server ADDR:PORT is required\n", stderr);
        return -1;
    }
    return 0;
}

/* ---- sockets ------------------------------------------------------------ */

static int udp_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int size = SOCKET_BUFFER;

    if (fd < 0)
        return -1;
    /* Bigger buffers keep the proxy's own drops out of the measurements; best effort. */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    return fd;
}

static int open_listener(struct proxy *p)
{
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);

    p->lfd = udp_socket(p->cfg.listen.ss_family);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&p->cfg.listen, p->cfg.listen_len) < 0 ||
        getsockname(p->lfd, (struct sockaddr *)&bound, &len) < 0) {
        perror("faultproxy: listen socket");
        return -1;
    }
    printf("faultproxy listening on %u\n", addr_port(&bound));
    fflush(stdout);
    return 0;
}

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* ---- the client table --------------------------------------------------- */

/* A free slot, or else the one idle longest, whose socket is closed to make room. */
static uint32_t client_victim(struct proxy *p)
{
    uint32_t best = 0;

    for (uint32_t i = 0; i < p->cfg.max_clients; i++) {
        if (p->clients[i].fd < 0)
            return i;
        if (p->clients[i].last_us < p->clients[best].last_us)
            best = i;
    }
    close(p->clients[best].fd);
    p->clients[best].fd = -1;
    p->clients[best].gen++;
    return best;
}

static int client_open(struct proxy *p, struct client *c)
{
    int fd = udp_socket(p->cfg.server.ss_family);

    /* Connected, so only the server's replies arrive and plain send() suffices. */
    if (fd < 0 || connect(fd, (struct sockaddr *)&p->cfg.server, p->cfg.server_len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

/* The slot of the client at addr, created on its first datagram; -1 if no socket. */
static int client_find(struct proxy *p, const struct sockaddr_storage *addr, socklen_t len,
                       uint64_t now)
{
    uint32_t i;

    for (i = 0; i < p->cfg.max_clients; i++) {
        if (p->clients[i].fd >= 0 && addr_equal(&p->clients[i].addr, addr))
            break;
    }
    if (i == p->cfg.max_clients) {
        i = client_victim(p);
        if (client_open(p, &p->clients[i]) < 0)
            return -1;
        memcpy(&p->clients[i].addr, addr, len);
        p->clients[i].addrlen = len;
    }
    p->clients[i].last_us = now;
    return (int)i;
}

/* ---- held datagrams: a min-heap on (due, arrival order) ----------------- */

static bool pending_before(const struct pending *a, const struct pending *b)
{
    return a->due_us != b->due_us ? a->due_us < b->due_us : a->order < b->order;
}

static void heap_swap(struct pending *h, size_t i, size_t j)
{
    struct pending t = h[i];

    h[i] = h[j];
    h[j] = t;
}

static void heap_push(struct proxy *p, const struct pending *e)
{
    size_t i = p->nheap++;

    p->heap[i] = *e;
    while (i > 0 && pending_before(&p->heap[i], &p->heap[(i - 1) / 2])) {
        heap_swap(p->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct pending heap_pop(struct proxy *p)
{
    struct pending top = p->heap[0];
    size_t i = 0;

    p->heap[0] = p->heap[--p->nheap];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->nheap && pending_before(&p->heap[l], &p->heap[m]))
            m = l;
        if (r < p->nheap && pending_before(&p->heap[r], &p->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(p->heap, i, m);
        i = m;
    }
    return top;
}

/* ---- forwarding --------------------------------------------------------- */

static void send_now(struct proxy *p, enum dir dir, uint32_t slot, uint32_t gen,
                     const unsigned char *data, size_t len)
{
    struct client *c = &p->clients[slot];
    struct counters *n = &p->d[dir].n;
    ssize_t r;

    if (c->fd < 0 || c->gen != gen) {
        n->overflow++; /* the client was evicted while this datagram was held */
        return;
    }
    if (dir == C2S)
        r = send(c->fd, data, len, 0);
    else
        r = sendto(p->lfd, data, len, 0, (struct sockaddr *)&c->addr, c->addrlen);
    if (r < 0) {
        n->errors++;
    } else {
        n->forwarded++;
        n->bytes_forwarded += len;
    }
}

static void flush_due(struct proxy *p, uint64_t now)
{
    while (p->nheap > 0 && p->heap[0].due_us <= now) {
        struct pending e = heap_pop(p);
        p->heap_bytes -= e.len;
        send_now(p, e.dir, e.slot, e.gen, e.data, e.len);
        free(e.data);
    }
}

static void hold(struct proxy *p, enum dir dir, uint32_t slot, const unsigned char *data,
                 size_t len, uint64_t due)
{
    struct pending e = {.due_us = due,
                        .order = p->next_order++,
                        .dir = dir,
                        .slot = slot,
                        .gen = p->clients[slot].gen,
                        .len = len};

    if (p->nheap == MAX_PENDING || p->heap_bytes + len > MAX_PENDING_BYTES ||
        (e.data = malloc(len ? len : 1)) == NULL) {
        p->d[dir].n.overflow++;
        return;
    }
    memcpy(e.data, data, len);
    p->heap_bytes += len;
    heap_push(p, &e);
}

/* Anything already due goes first, so a datagram never overtakes an older one by accident. */
static void deliver(struct proxy *p, enum dir dir, uint32_t slot, const unsigned char *data,
                    size_t len, uint64_t due, uint64_t now)
{
    if (due > now) {
        hold(p, dir, slot, data, len, due);
        return;
    }
    flush_due(p, now);
    send_now(p, dir, slot, p->clients[slot].gen, data, len);
}

/* Every draw is made whatever the faults, so one fault never shifts another's pattern. */
static struct verdict decide(struct direction *d)
{
    const struct faults *f = &d->f;
    double r_loss = rng_unit(&d->rng), r_burst = rng_unit(&d->rng);
    double r_dup = rng_unit(&d->rng), r_reorder = rng_unit(&d->rng);
    double r_corrupt = rng_unit(&d->rng);
    uint64_t r_hold = rng_next(&d->rng);
    struct verdict v = {.corrupt_seed = rng_next(&d->rng)};

    if (d->burst_left > 0) {
        d->burst_left--;
        v.drop = true;
    } else if (r_burst < f->burst_p) {
        d->burst_left = f->burst_len - 1;
        v.drop = true;
    }
    v.drop = v.drop || r_loss < f->loss;
    v.dup = r_dup < f->dup;
    v.corrupt = r_corrupt < f->corrupt;
    if (r_reorder < f->reorder_p)
        v.hold_us = 1 + r_hold % ((uint64_t)f->reorder_max_ms * 1000u);
    return v;
}

static bool in_blackout(const struct faults *f, uint64_t since_us)
{
    uint64_t start = (uint64_t)f->blackout_start_ms * 1000u;

    return f->blackout_len_ms > 0 && since_us >= start &&
           since_us < start + (uint64_t)f->blackout_len_ms * 1000u;
}

/* Flips one bit in each of 1-3 distinct bytes, so the datagram always differs. */
static void corrupt(unsigned char *data, size_t len, uint64_t seed)
{
    size_t pos[3];
    size_t n = 1 + seed % 3;

    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++) {
        bool seen;
        do {
            pos[i] = rng_next(&seed) % len;
            seen = false;
            for (size_t j = 0; j < i; j++)
                seen = seen || pos[j] == pos[i];
        } while (seen);
        data[pos[i]] ^= (unsigned char)(1u << (rng_next(&seed) % 8));
    }
}

/* rpc2's header: type at 1, security at 3, body_len at 32, trailer_len at
 * 36, 40 bytes in all; at security none the trailer is XXH3-64 of every
 * byte before it, big-endian (docs/PROTOCOL.md). */
#define RPC2_HDR 40
#define RPC2_CHECK 8
#define RPC2_SFTP_DATA 16

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Flips a bit of an SFTP DATA datagram's last data byte (or checksum byte)
 * and recomputes its check; false when the datagram is not one. */
static bool reseal_damage(unsigned char *data, size_t len)
{
    if (len < RPC2_HDR + 5 + RPC2_CHECK || data[1] != RPC2_SFTP_DATA || data[3] != 0 ||
        (data[36] << 8 | data[37]) != RPC2_CHECK || be32(data + 32) != len - RPC2_HDR - RPC2_CHECK)
        return false;
    data[len - RPC2_CHECK - 1] ^= 0x01;
    uint64_t sum = XXH3_64bits(data, len - RPC2_CHECK);
    for (int i = 0; i < RPC2_CHECK; i++)
        data[len - RPC2_CHECK + i] = (unsigned char)(sum >> (56 - 8 * i));
    return true;
}

/*
 * When a datagram of len bytes arriving at now (us) has crossed the bottleneck, in
 * microseconds; false when its queue is full. The queue is a virtual clock: the link is
 * busy until link_free_ns, and the bytes it still has to send are that time at the rate.
 */
static bool bottleneck(struct direction *d, size_t len, uint64_t now, uint64_t *sent)
{
    const struct faults *f = &d->f;
    uint64_t now_ns = now * 1000u;
    uint64_t start = d->link_free_ns > now_ns ? d->link_free_ns : now_ns;
    double backlog = (double)(start - now_ns) * (double)f->rate_bps / 8e9;

    if (backlog >= 1.0 && backlog + (double)len > (double)f->queue_bytes)
        return false;
    d->link_free_ns = start + (uint64_t)len * 8000000000ULL / f->rate_bps;
    *sent = (d->link_free_ns + 999u) / 1000u;
    return true;
}

static void handle(struct proxy *p, enum dir dir, uint32_t slot, unsigned char *data, size_t len,
                   uint64_t now)
{
    struct direction *d = &p->d[dir];
    struct verdict v = decide(d);
    uint64_t sent = now, due;

    d->n.bytes_in += len;

    if (!p->started) {
        p->started = true;
        p->t0_us = now;
    }
    if (v.drop || in_blackout(&d->f, now - p->t0_us)) {
        d->n.dropped++;
        return;
    }
    if (d->f.rate_bps > 0 && !bottleneck(d, len, now, &sent)) {
        d->n.queue_dropped++;
        return;
    }
    due = sent + (uint64_t)d->f.delay_ms * 1000u;
    if (v.corrupt && len > 0) {
        corrupt(data, len, v.corrupt_seed);
        d->n.corrupted++;
    }
    if (d->f.reseal > 0 && rng_unit(&d->reseal_rng) < d->f.reseal && reseal_damage(data, len))
        d->n.resealed++;
    d->n.delayed += d->f.delay_ms > 0;
    d->n.reordered += v.hold_us > 0;
    deliver(p, dir, slot, data, len, due + v.hold_us, now);
    if (v.dup) {
        d->n.duplicated++;
        deliver(p, dir, slot, data, len, due, now);
    }
}

static void read_clients(struct proxy *p)
{
    for (int i = 0; i < READ_BUDGET; i++) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t len =
            recvfrom(p->lfd, p->buf, sizeof(p->buf), 0, (struct sockaddr *)&from, &fromlen);
        uint64_t now = now_us();
        int slot;

        if (len < 0)
            return;
        slot = client_find(p, &from, fromlen, now);
        if (slot < 0) {
            p->d[C2S].n.errors++;
            continue;
        }
        handle(p, C2S, (uint32_t)slot, p->buf, (size_t)len, now);
    }
}

static void read_server(struct proxy *p, uint32_t slot)
{
    for (int i = 0; i < READ_BUDGET; i++) {
        ssize_t len = recv(p->clients[slot].fd, p->buf, sizeof(p->buf), 0);

        if (len < 0 && errno == ECONNREFUSED)
            continue; /* the server was not there yet; the error is consumed */
        if (len < 0)
            return;
        handle(p, S2C, slot, p->buf, (size_t)len, now_us());
    }
}

/* ---- the loop ----------------------------------------------------------- */

static nfds_t build_pollfds(struct proxy *p)
{
    nfds_t n = 1;

    p->pfds[0] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
    for (uint32_t i = 0; i < p->cfg.max_clients; i++) {
        if (p->clients[i].fd < 0)
            continue;
        p->pfds[n] = (struct pollfd){.fd = p->clients[i].fd, .events = POLLIN};
        p->pslot[n++] = i;
    }
    return n;
}

static struct timespec *poll_timeout(const struct proxy *p, struct timespec *ts)
{
    uint64_t now = now_us(), wait;

    if (p->nheap == 0)
        return NULL;
    wait = p->heap[0].due_us > now ? p->heap[0].due_us - now : 0;
    ts->tv_sec = (time_t)(wait / 1000000u);
    ts->tv_nsec = (long)(wait % 1000000u) * 1000;
    return ts;
}

static int run(struct proxy *p, const sigset_t *waitmask)
{
    while (!stop_signal) {
        struct timespec ts;
        nfds_t n = build_pollfds(p);
        /* ppoll unblocks the stop signals only while waiting: none is lost between checks. */
        int r = ppoll(p->pfds, n, poll_timeout(p, &ts), waitmask);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            perror("faultproxy: ppoll");
            return -1;
        }
        flush_due(p, now_us());
        if (p->pfds[0].revents != 0)
            read_clients(p);
        for (nfds_t i = 1; i < n; i++) {
            if (p->pfds[i].revents != 0)
                read_server(p, p->pslot[i]);
        }
    }
    return 0;
}

static void print_counters(const struct proxy *p)
{
    for (int d = 0; d < NDIR; d++) {
        const struct counters *n = &p->d[d].n;
        fprintf(stderr,
                "faultproxy %s: forwarded=%llu dropped=%llu duplicated=%llu reordered=%llu "
                "corrupted=%llu resealed=%llu delayed=%llu overflow=%llu errors=%llu "
                "queue_dropped=%llu bytes_in=%llu bytes_forwarded=%llu\n",
                dir_names[d], (unsigned long long)n->forwarded, (unsigned long long)n->dropped,
                (unsigned long long)n->duplicated, (unsigned long long)n->reordered,
                (unsigned long long)n->corrupted, (unsigned long long)n->resealed,
                (unsigned long long)n->delayed, (unsigned long long)n->overflow,
                (unsigned long long)n->errors, (unsigned long long)n->queue_dropped,
                (unsigned long long)n->bytes_in, (unsigned long long)n->bytes_forwarded);
    }
}

static void on_stop(int sig)
{
    stop_signal = sig;
}

/* Blocks the stop signals outside ppoll and returns the mask ppoll waits with. */
static int setup_signals(sigset_t *waitmask)
{
    struct sigaction sa = {.sa_handler = on_stop};
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    if (sigprocmask(SIG_BLOCK, &block, waitmask) < 0)
        return -1;
    sigdelset(waitmask, SIGTERM);
    sigdelset(waitmask, SIGINT);
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -1;
    return 0;
}

static struct proxy *proxy_new(const struct config *cfg)
{
    struct proxy *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->cfg = *cfg;
    p->lfd = -1;
    p->clients = calloc(cfg->max_clients, sizeof(*p->clients));
    p->heap = calloc(MAX_PENDING, sizeof(*p->heap));
    p->pfds = calloc(cfg->max_clients + 1u, sizeof(*p->pfds));
    p->pslot = calloc(cfg->max_clients + 1u, sizeof(*p->pslot));
    for (uint32_t i = 0; p->clients != NULL && i < cfg->max_clients; i++)
        p->clients[i].fd = -1;
    for (int d = 0; d < NDIR; d++) {
        p->d[d].f = cfg->f[d];
        /* Distinct streams per direction, so each direction's pattern stands alone. */
        p->d[d].rng = cfg->seed ^ (0x5bd1e9955bd1e995ULL * (uint64_t)(d + 1));
        p->d[d].reseal_rng = p->d[d].rng ^ 0x9e3779b97f4a7c15ULL;
    }
    return p;
}

static void proxy_free(struct proxy *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = 0; p->clients != NULL && i < p->cfg.max_clients; i++) {
        if (p->clients[i].fd >= 0)
            close(p->clients[i].fd);
    }
    while (p->heap != NULL && p->nheap > 0)
        free(heap_pop(p).data);
    if (p->lfd >= 0)
        close(p->lfd);
    free(p->clients);
    free(p->heap);
    free(p->pfds);
    free(p->pslot);
    free(p);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct proxy *p;
    sigset_t waitmask;
    int r = parse_args(argc, argv, &cfg), status = EXIT_SYSTEM;

    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    p = proxy_new(&cfg);
    if (p == NULL || p->clients == NULL || p->heap == NULL || p->pfds == NULL || p->pslot == NULL) {
        fputs("faultproxy: out of memory\n", stderr);
    } else if (setup_signals(&waitmask) < 0) {
        perror("faultproxy: signals");
    } else if (open_listener(p) == 0 && run(p, &waitmask) == 0) {
        print_counters(p);
        status = 0;
    }
    proxy_free(p);
    return status;
}
