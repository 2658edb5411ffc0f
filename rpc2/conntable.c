/*
 * conntable.c - every connection of a context, found by our id for each
 * arriving packet and by (peer address, peer id) for a repeated bind.
 *
 * Ids are drawn at random rather than counted up, so a peer that talks to a
 * restarted server, or guesses, misses instead of landing on a stranger's
 * connection. Both indexes are intrusive chains over bucket arrays of one
 * size, so inserting allocates nothing except when the table doubles.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include <rpc2/rpc2.h>

#include "conntable.h"

#define CONNTABLE_FIRST_BUCKETS 16

/* Keeps a free id easy to find: random draws never scan a nearly full space. */
#define CONNTABLE_MOST_IDS ((size_t)1 << 31)

/* splitmix64: any state, zero included, gives a full-period sequence. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int seed_from_kernel(uint64_t *seed)
{
    ssize_t n;

    do
        n = getrandom(seed, sizeof(*seed), 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*seed) ? 0 : RPC2_ESYSTEM;
}

int conntable_init(struct conntable *t, size_t max, uint64_t seed)
{
    if (seed == 0 && seed_from_kernel(&seed) != 0)
        return RPC2_ESYSTEM;
    t->by_id = calloc(CONNTABLE_FIRST_BUCKETS, sizeof(*t->by_id));
    t->by_peer = calloc(CONNTABLE_FIRST_BUCKETS, sizeof(*t->by_peer));
    if (t->by_id == NULL || t->by_peer == NULL) {
        free(t->by_id);
        free(t->by_peer);
        return RPC2_ENOMEM;
    }
    t->nbuckets = CONNTABLE_FIRST_BUCKETS;
    t->count = 0;
    t->max = max < CONNTABLE_MOST_IDS ? max : CONNTABLE_MOST_IDS;
    t->rng = seed;
    return 0;
}

/* The links are not touched: they belong to their connections. */
void conntable_dispose(struct conntable *t)
{
    free(t->by_id);
    free(t->by_peer);
    t->by_id = NULL;
    t->by_peer = NULL;
    t->nbuckets = 0;
    t->count = 0;
}

static size_t id_bucket(size_t nbuckets, uint32_t id)
{
    /* Ids are uniformly random already: their low bits are a fine hash. */
    return id & (nbuckets - 1);
}

static size_t peer_bucket(size_t nbuckets, const struct rpc2_addr *peer, uint32_t peer_id)
{
    uint32_t h = addr_hash(peer) ^ (peer_id * 0x9e3779b1u);

    /* Fold the high bits in: small tables use only the low ones. */
    h ^= h >> 16;
    return h & (nbuckets - 1);
}

static void link_id(struct conn_link **buckets, size_t nbuckets, struct conn_link *l)
{
    struct conn_link **head = &buckets[id_bucket(nbuckets, l->id)];

    l->next_by_id = *head;
    *head = l;
}

static void link_peer(struct conn_link **buckets, size_t nbuckets, struct conn_link *l)
{
    struct conn_link **head = &buckets[peer_bucket(nbuckets, &l->peer, l->peer_id)];

    l->next_by_peer = *head;
    *head = l;
}

/* Doubles both indexes; on failure the table is left as it was. */
static int grow(struct conntable *t)
{
    size_t n = t->nbuckets * 2;
    struct conn_link **by_id = calloc(n, sizeof(*by_id));
    struct conn_link **by_peer = calloc(n, sizeof(*by_peer));

    if (by_id == NULL || by_peer == NULL) {
        free(by_id);
        free(by_peer);
        return RPC2_ENOMEM;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct conn_link *l, *next;

        for (l = t->by_id[i]; l != NULL; l = next) {
            next = l->next_by_id;
            link_id(by_id, n, l);
        }
        for (l = t->by_peer[i]; l != NULL; l = next) {
            next = l->next_by_peer;
            link_peer(by_peer, n, l);
        }
    }
    free(t->by_id);
    free(t->by_peer);
    t->by_id = by_id;
    t->by_peer = by_peer;
    t->nbuckets = n;
    return 0;
}

static uint32_t fresh_id(struct conntable *t)
{
    for (;;) {
        uint32_t id = (uint32_t)(next_random(&t->rng) >> 32);

        if (id != 0 && conntable_find(t, id) == NULL)
            return id;
    }
}

int conntable_insert(struct conntable *t, struct conn_link *l, int by_peer)
{
    if (t->count >= t->max)
        return RPC2_ELIMIT;
    if (t->count + 1 > t->nbuckets && grow(t) != 0)
        return RPC2_ENOMEM;
    l->id = fresh_id(t);
    l->by_peer = by_peer != 0;
    l->next_by_peer = NULL;
    link_id(t->by_id, t->nbuckets, l);
    if (l->by_peer)
        link_peer(t->by_peer, t->nbuckets, l);
    t->count++;
    return 0;
}

struct conn_link *conntable_find(const struct conntable *t, uint32_t id)
{
    struct conn_link *l = t->by_id[id_bucket(t->nbuckets, id)];

    while (l != NULL && l->id != id)
        l = l->next_by_id;
    return l;
}

struct conn_link *conntable_find_peer(const struct conntable *t, const struct rpc2_addr *peer,
                                      uint32_t peer_id)
{
    struct conn_link *l = t->by_peer[peer_bucket(t->nbuckets, peer, peer_id)];

    while (l != NULL && !(l->peer_id == peer_id && addr_equal(&l->peer, peer)))
        l = l->next_by_peer;
    return l;
}

static int unlink_id(struct conntable *t, struct conn_link *l)
{
    struct conn_link **p = &t->by_id[id_bucket(t->nbuckets, l->id)];

    while (*p != NULL && *p != l)
        p = &(*p)->next_by_id;
    if (*p == NULL)
        return -1;
    *p = l->next_by_id;
    l->next_by_id = NULL;
    return 0;
}

static void unlink_peer(struct conntable *t, struct conn_link *l)
{
    struct conn_link **p = &t->by_peer[peer_bucket(t->nbuckets, &l->peer, l->peer_id)];

    while (*p != NULL && *p != l)
        p = &(*p)->next_by_peer;
    if (*p != NULL)
        *p = l->next_by_peer;
    l->next_by_peer = NULL;
}

/* Removing a link that is not in the table (or twice) changes nothing. The
 * link's peer and peer_id must be those it was inserted with. */
void conntable_remove(struct conntable *t, struct conn_link *l)
{
    if (unlink_id(t, l) != 0)
        return;
    if (l->by_peer)
        unlink_peer(t, l);
    t->count--;
}

void conntable_foreach(struct conntable *t, void (*fn)(struct conn_link *l, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct conn_link *l, *next;

        /* next is read before fn runs: fn may remove l. */
        for (l = t->by_id[i]; l != NULL; l = next) {
            next = l->next_by_id;
            fn(l, arg);
        }
    }
}
