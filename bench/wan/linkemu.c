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
 * contend and a 1 Gbit/s direction gets a core of its own; the threads ask for
 * real-time priority, since on a loaded machine a late read costs the link time.
 * The bottleneck is a virtual clock (when the link will have finished
 * serialising what it holds), so the rate is never exceeded and is kept on
 * average however late a thread wakes; held packets wait in a min-heap on their
 * delivery time and leave in batches. A side
 * thread appends every direction's counters to a stats file at a fixed
 * interval: the bench reads goodput and send efficiency from those counters,
 * independent of the code under test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
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

#include "linkemu.h"

#define READ_BATCH 256 /* packets read per wake-up before releasing due ones */
#define IDLE_WAKE_NS 50000000ull
#define CATCHUP_NS 2000000ull /* how late a read may be and still not cost the link time */

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
    uint64_t link_free_ns;  /* when the bottleneck has serialised everything accepted */
    uint64_t last_empty_ns; /* when a read last found nothing waiting */
    uint64_t last_due_ns;   /* jitter never reorders: delivery times only grow */
    uint64_t order;
    /* the packet pool: slot_size bytes each, a stack of free slots */
    unsigned char *pool;
    size_t slot_size;
    uint32_t *free_slots, nfree, max_packets;
    struct held *heap;
    uint32_t nheap;
    struct counters n;
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

/* When a packet of len bytes has crossed the bottleneck, or 0 if the queue drops it. */
/*
 * The link learns of a packet only when it is read, and a packet read late (the thread
 * was busy writing, or not scheduled) has waited in the kernel meanwhile: starting it at
 * the moment it was read would leave the virtual link idle for that wait and lose
 * capacity. It arrived after the input was last seen empty, so it may start from then,
 * at most CATCHUP_NS back. Departures still never overlap: the rate is never exceeded.
 */
static uint64_t bottleneck(struct direction *d, size_t len, uint64_t now)
{
    const struct shape *s = &d->s;
    uint64_t start, backlog, earliest = now - CATCHUP_NS;

    if (s->rate_bps == 0)
        return now;
    if (d->last_empty_ns > earliest)
        earliest = d->last_empty_ns;
    start = d->link_free_ns > earliest ? d->link_free_ns : earliest;
    /* bytes still to serialise when it came, counted from the latest it can have come */
    backlog = d->link_free_ns > now ? (d->link_free_ns - now) * s->rate_bps / 8 / NS : 0;
    if (backlog + len > shape_queue_limit(s) && backlog > 0) {
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

        uint64_t now = now_ns();

        if (d->nfree == 0) {
            /* Every slot is held: drain one packet so the sender sees loss, not a stall. */
            unsigned char sink[65536];
            if (read(d->in_fd, sink, sizeof(sink)) < 0)
                return;
            bump(&d->n.overflow, 1);
            continue;
        }
        slot = d->free_slots[--d->nfree];
        len = read(d->in_fd, slot_data(d, slot), d->slot_size);
        if (len <= 0) {
            d->free_slots[d->nfree++] = slot;
            if (len < 0 && errno == EAGAIN)
                d->last_empty_ns = now;
            else if (len < 0 && errno != EINTR)
                bump(&d->n.errors, 1);
            return;
        }
        admit(d, slot, (uint32_t)len, now);
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
                (unsigned long long)(s->rate_bps ? shape_queue_limit(s) : 0),
                (double)s->delay_ns / 1e6, (double)s->jitter_ns / 1e6, s->loss, s->ge_p, s->ge_r,
                s->ge_bad_loss, s->ge_good_loss, s->reorder_p, (double)s->reorder_ns / 1e6, s->dup);
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

/*
 * A packet read late was queued in the kernel meanwhile, and the virtual link, which only
 * learns of it when it is read, sat idle: on a loaded machine the link loses capacity.
 * Real-time priority keeps the forwarding threads' wake-ups prompt.
 */
static void go_realtime(pthread_t t, enum dir id)
{
    struct sched_param sp = {.sched_priority = 10};
    int r = pthread_setschedparam(t, SCHED_FIFO, &sp);

    if (r != 0)
        fprintf(stderr, "linkemu %s: no real-time priority (%s): timing suffers under load\n",
                dir_names[id], strerror(r));
}

int main(int argc, char **argv)
{
    static struct direction dirs[NDIR];
    struct config cfg;
    pthread_t threads[NDIR];
    sigset_t sigs;
    int fds[NDIR], home, r = linkemu_parse_args(argc, argv, &cfg);

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
        if (cfg.realtime)
            go_realtime(threads[i], (enum dir)i);
    }
    printf("linkemu ready\n");
    fflush(stdout);
    stats_loop(&cfg, dirs, &sigs);
    atomic_store(&stopping, true);
    for (int i = 0; i < NDIR; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
