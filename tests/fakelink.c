/*
 * fakelink.c - the in-memory network of fakelink.h. Delivery order is a
 * sorted list keyed by (time, sequence), so equal times keep send order and
 * a run depends on nothing but the seed.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "fakelink.h"

struct fakelink_packet {
    struct fakelink_packet *next;
    uint64_t at, order;
    int from, to;
    size_t len;
    uint8_t data[];
};

static uint64_t next_rand(struct fakelink *l)
{
    /* splitmix64: small, good enough, and the same everywhere */
    uint64_t z = (l->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double chance(struct fakelink *l)
{
    return (double)(next_rand(l) >> 11) / (double)(1ull << 53);
}

void fakelink_init(struct fakelink *l, uint64_t seed)
{
    memset(l, 0, sizeof *l);
    l->rng = seed;
    l->now = 1000000; /* not 0: 0 means "no timestamp" on the wire */
}

void fakelink_dispose(struct fakelink *l)
{
    while (l->queue) {
        struct fakelink_packet *p = l->queue;
        l->queue = p->next;
        free(p);
    }
    for (int i = 0; i < l->n_nodes; i++)
        engine_free(l->nodes[i].engine);
}

static int node_of(struct fakelink *l, const struct rpc2_addr *a)
{
    for (int i = 0; i < l->n_nodes; i++)
        if (addr_equal(&l->nodes[i].addr, a))
            return i;
    return -1;
}

static struct fakelink_packet *enqueue(struct fakelink *l, int from, int to, const uint8_t *data,
                                       size_t len, uint64_t at)
{
    struct fakelink_packet *p = malloc(sizeof *p + len);
    if (!p)
        abort();
    *p = (struct fakelink_packet){.at = at, .order = l->sent++, .from = from, .to = to, .len = len};
    memcpy(p->data, data, len);
    struct fakelink_packet **pp = &l->queue;
    while (*pp && (*pp)->at <= at)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
    return p;
}

/* Flips one bit in each of 1-3 distinct bytes, as the fault proxy does, so
 * the datagram always differs; the same seed damages copies alike. */
static void damage(uint8_t *d, size_t len, uint64_t seed)
{
    size_t pos[3], n = 1 + seed % 3;
    struct fakelink scratch = {.rng = seed};

    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++) {
        int seen;
        do {
            pos[i] = next_rand(&scratch) % len;
            seen = 0;
            for (size_t j = 0; j < i; j++)
                seen |= pos[j] == pos[i];
        } while (seen);
        d[pos[i]] ^= (uint8_t)(1u << (next_rand(&scratch) % 8));
    }
}

/* Whether this datagram is damaged. The generator is drawn only when
 * damage is asked for, so seeds of runs without it replay unchanged. */
static int decide_damage(struct fakelink *l, struct fakelink_faults *f)
{
    if (f->corrupt_next > 0) {
        f->corrupt_next--;
        return 1;
    }
    return f->corrupt > 0 && chance(l) < f->corrupt;
}

/* Applies the sender's faults to one datagram. */
static void transmit(struct fakelink *l, int from, int to, const uint8_t *data, size_t len)
{
    struct fakelink_faults *f = &l->faults[from];
    if (chance(l) < f->loss) {
        l->dropped++;
        return;
    }
    int copies = chance(l) < f->dup ? 2 : 1;
    l->duplicated += (uint64_t)(copies - 1);
    int damaged = len > 0 && decide_damage(l, f);
    uint64_t damage_seed = damaged ? next_rand(l) : 0;
    l->corrupted += (uint64_t)damaged;
    for (int c = 0; c < copies; c++) {
        uint64_t at = l->now + f->delay_us;
        if (f->max_extra_us && chance(l) < f->reorder)
            at += next_rand(l) % f->max_extra_us;
        struct fakelink_packet *p = enqueue(l, from, to, data, len, at);
        if (damaged)
            damage(p->data, p->len, damage_seed);
    }
}

static int broken(const uint8_t *data, size_t len)
{
    return len >= PKT_HDR_SIZE + PKT_CHECK_SIZE && data[3] == RPC2_SEC_NONE &&
           !pkt_check_ok(data, len);
}

static void on_flush(struct outq *q, void *arg)
{
    struct fakelink_node *n = arg;
    for (unsigned i = 0; i < q->count; i++) {
        n->link->sent_broken += (uint64_t)broken(q->slots[i].data, q->slots[i].len);
        int to = node_of(n->link, &q->slots[i].to);
        if (to >= 0)
            transmit(n->link, n->index, to, q->slots[i].data, q->slots[i].len);
    }
    q->count = 0;
}

static struct engine *make_engine(struct fakelink_node *n, const struct engine_config *cfg,
                                  const struct engine_hooks *hooks, void *env)
{
    struct engine *e = engine_new(cfg, NULL, hooks, env, on_flush, n);
    if (!e)
        abort();
    return e;
}

int fakelink_add(struct fakelink *l, const struct engine_config *cfg,
                 const struct engine_hooks *hooks, void *env)
{
    int i = l->n_nodes++;
    struct fakelink_node *n = &l->nodes[i];
    struct sockaddr_in *sin = (struct sockaddr_in *)&n->addr.ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x0a000001u + (uint32_t)i); /* 10.0.0.1, .2 ... never used */
    sin->sin_port = htons(7000);
    n->addr.len = sizeof *sin;
    n->link = l;
    n->index = i;
    n->engine = make_engine(n, cfg, hooks, env);
    return i;
}

void fakelink_restart(struct fakelink *l, int i, const struct engine_config *cfg,
                      const struct engine_hooks *hooks, void *env)
{
    struct fakelink_node *n = &l->nodes[i];
    engine_free(n->engine);
    n->engine = cfg ? make_engine(n, cfg, hooks, env) : NULL;
}

struct engine *fakelink_engine(struct fakelink *l, int i)
{
    return l->nodes[i].engine;
}

const struct rpc2_addr *fakelink_addr(struct fakelink *l, int i)
{
    return &l->nodes[i].addr;
}

void fakelink_inject(struct fakelink *l, int from, int to, const uint8_t *pkt, size_t len)
{
    enqueue(l, from, to, pkt, len, l->now);
}

void fakelink_flush(struct fakelink *l)
{
    for (int i = 0; i < l->n_nodes; i++)
        if (l->nodes[i].engine)
            engine_flush(l->nodes[i].engine);
}

static uint64_t next_event(struct fakelink *l)
{
    uint64_t next = l->queue ? l->queue->at : UINT64_MAX;
    for (int i = 0; i < l->n_nodes; i++) {
        if (!l->nodes[i].engine)
            continue;
        uint64_t d = engine_next_deadline(l->nodes[i].engine);
        if (d < next)
            next = d;
    }
    return next;
}

static void deliver_due(struct fakelink *l)
{
    while (l->queue && l->queue->at <= l->now) {
        struct fakelink_packet *p = l->queue;
        l->queue = p->next;
        struct engine *e = l->nodes[p->to].engine;
        if (e) {
            l->delivered++;
            engine_receive(e, &l->nodes[p->from].addr, p->data, p->len, l->now);
            engine_flush(e);
        }
        free(p);
    }
}

static void fire_timers(struct fakelink *l)
{
    for (int i = 0; i < l->n_nodes; i++) {
        struct engine *e = l->nodes[i].engine;
        if (e && engine_next_deadline(e) <= l->now) {
            engine_timeout(e, l->now);
            engine_flush(e);
        }
    }
}

int fakelink_run(struct fakelink *l, const volatile int *done, uint64_t until)
{
    fakelink_flush(l);
    while (!(done && *done)) {
        uint64_t next = next_event(l);
        if (next > until) {
            if (until > l->now)
                l->now = until;
            break;
        }
        if (next > l->now)
            l->now = next;
        deliver_due(l);
        fire_timers(l);
    }
    return done ? *done : 0;
}

struct bind_outcome {
    int done, status;
    rpc2_conn *conn;
};

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct bind_outcome *o = arg;

    o->done = 1;
    o->status = status;
    o->conn = conn;
}

int fakelink_bind(struct fakelink *l, int client, int server, const struct engine_bind_args *a,
                  uint64_t within_us, rpc2_conn **conn)
{
    struct bind_outcome o = {0};
    int rc =
        engine_bind(fakelink_engine(l, client), fakelink_addr(l, server), a, on_bound, &o, l->now);

    *conn = NULL;
    if (rc != 0)
        return rc;
    if (!fakelink_run(l, &o.done, l->now + within_us))
        return RPC2_ETIMEDOUT;
    *conn = o.conn;
    return o.status;
}
