/*
 * conntable.c - every connection of a context, found by our id for each
 * arriving packet and by (peer address, peer id) for a repeated bind; and
 * the admission of a server's connections: how many in all, how many per
 * peer address, how many half-open, and the cookies that prove an address.
 *
 * Ids are drawn at random rather than counted up, so a peer that talks to a
 * restarted server, or guesses, misses instead of landing on a stranger's
 * connection. Both indexes are intrusive chains over bucket arrays of one
 * size, so inserting allocates nothing except when the table doubles (and
 * one small count the first time an address is seen).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/random.h>
#include "hash.h"

#include <rpc2/rpc2.h>

#include "conntable.h"

/* The count of server connections from one address (IPv4) or /64 (IPv6):
 * one host of IPv6 usually holds a whole /64, so counting /128s would let
 * one machine have four billion times the limit. */
#define ADDR_KEY_LEN 20
struct addr_slot {
    struct addr_slot *next;
    size_t count;
    uint8_t key[ADDR_KEY_LEN]; /* 16 address bytes (IPv4 mapped into IPv6), 4 scope bytes */
};

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

static int from_kernel(void *buf, size_t len)
{
    ssize_t n;

    do
        n = getrandom(buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : RPC2_ESYSTEM;
}

/* The cookie key: from the kernel, or (a seeded table, in tests) from the
 * seed, so that runs repeat. */
static int make_secret(struct conntable *t, uint64_t seed)
{
    if (seed == 0)
        return from_kernel(t->secret, sizeof(t->secret));
    uint64_t state = seed ^ 0x5ec7e75ec7e75ec7u;

    for (size_t i = 0; i < sizeof(t->secret); i += 8) {
        uint64_t r = next_random(&state);

        memcpy(t->secret + i, &r, 8);
    }
    return 0;
}

static const struct conntable_limits no_limits = {
    .max_per_addr = SIZE_MAX,
    .cookie_threshold = SIZE_MAX,
    .max_running = SIZE_MAX,
    .max_saved_bytes = UINT64_MAX,
};

static void free_buckets(struct conntable *t)
{
    free(t->by_id);
    free(t->by_peer);
    free(t->by_addr);
    t->by_id = NULL;
    t->by_peer = NULL;
    t->by_addr = NULL;
}

int conntable_init(struct conntable *t, size_t max, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    if (make_secret(t, seed) != 0 || (seed == 0 && from_kernel(&seed, sizeof(seed)) != 0))
        return RPC2_ESYSTEM;
    t->by_id = calloc(CONNTABLE_FIRST_BUCKETS, sizeof(*t->by_id));
    t->by_peer = calloc(CONNTABLE_FIRST_BUCKETS, sizeof(*t->by_peer));
    t->by_addr = calloc(CONNTABLE_FIRST_BUCKETS, sizeof(*t->by_addr));
    if (t->by_id == NULL || t->by_peer == NULL || t->by_addr == NULL) {
        free_buckets(t);
        return RPC2_ENOMEM;
    }
    t->nbuckets = CONNTABLE_FIRST_BUCKETS;
    t->max = max < CONNTABLE_MOST_IDS ? max : CONNTABLE_MOST_IDS;
    t->rng = seed;
    t->limits = no_limits;
    return 0;
}

/* The links are not touched: they belong to their connections. The
 * address counts are the table's own. */
void conntable_dispose(struct conntable *t)
{
    for (size_t i = 0; t->by_addr != NULL && i < t->nbuckets; i++) {
        struct addr_slot *a, *next;

        for (a = t->by_addr[i]; a != NULL; a = next) {
            next = a->next;
            free(a);
        }
    }
    free_buckets(t);
    t->nbuckets = 0;
    t->count = 0;
    t->half_open = 0;
}

void conntable_set_limits(struct conntable *t, const struct conntable_limits *limits)
{
    t->limits = *limits;
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

/* ---- peer addresses ------------------------------------------------------ */

/* The address in one form for both families: IPv4 as ::ffff:a.b.c.d, as a
 * dual-stack socket sees it. Returns the port (network order), or -1 for a
 * family the sockets do not speak. */
static int addr_bytes(const struct rpc2_addr *a, uint8_t bytes[16], uint32_t *scope)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    *scope = 0;
    if (a->ss.ss_family == AF_INET) {
        struct sockaddr_in sin;

        memcpy(&sin, &a->ss, sizeof(sin));
        memcpy(bytes, v4mapped, sizeof(v4mapped));
        memcpy(bytes + 12, &sin.sin_addr, 4);
        return sin.sin_port;
    }
    if (a->ss.ss_family == AF_INET6) {
        struct sockaddr_in6 sin6;

        memcpy(&sin6, &a->ss, sizeof(sin6));
        memcpy(bytes, &sin6.sin6_addr, 16);
        *scope = sin6.sin6_scope_id;
        return sin6.sin6_port;
    }
    memset(bytes, 0, 16);
    return -1;
}

/* What the per-address limit counts by: the IPv4 address, or the /64 of an
 * IPv6 one (with its scope: fe80::/64 on two links is two networks). */
static void addr_key(const struct rpc2_addr *a, uint8_t key[ADDR_KEY_LEN])
{
    uint32_t scope;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    (void)addr_bytes(a, key, &scope);
    if (memcmp(key, v4mapped, sizeof(v4mapped)) != 0)
        memset(key + 8, 0, 8);
    memcpy(key + 16, &scope, 4);
}

static size_t addr_bucket(size_t nbuckets, const uint8_t key[ADDR_KEY_LEN])
{
    return (size_t)XXH3_64bits(key, ADDR_KEY_LEN) & (nbuckets - 1);
}

static struct addr_slot *find_addr(const struct conntable *t, const uint8_t key[ADDR_KEY_LEN])
{
    struct addr_slot *a = t->by_addr[addr_bucket(t->nbuckets, key)];

    while (a != NULL && memcmp(a->key, key, ADDR_KEY_LEN) != 0)
        a = a->next;
    return a;
}

size_t conntable_addr_count(const struct conntable *t, const struct rpc2_addr *peer)
{
    uint8_t key[ADDR_KEY_LEN];

    addr_key(peer, key);
    struct addr_slot *a = find_addr(t, key);

    return a != NULL ? a->count : 0;
}

/* The address's count, made (at 0) the first time the address is seen. */
static struct addr_slot *get_addr(struct conntable *t, const struct rpc2_addr *peer)
{
    uint8_t key[ADDR_KEY_LEN];

    addr_key(peer, key);
    struct addr_slot *a = find_addr(t, key);

    if (a != NULL)
        return a;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    memcpy(a->key, key, ADDR_KEY_LEN);
    struct addr_slot **head = &t->by_addr[addr_bucket(t->nbuckets, key)];

    a->next = *head;
    *head = a;
    return a;
}

/* Drops one from the address's count; the last one frees it. */
static void put_addr(struct conntable *t, struct addr_slot *a)
{
    if (--a->count > 0)
        return;
    struct addr_slot **p = &t->by_addr[addr_bucket(t->nbuckets, a->key)];

    while (*p != NULL && *p != a)
        p = &(*p)->next;
    if (*p != NULL)
        *p = a->next;
    free(a);
}

/* ---- the indexes --------------------------------------------------------- */

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

static void rehash_addrs(struct conntable *t, struct addr_slot **by_addr, size_t n)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct addr_slot *a, *next;

        for (a = t->by_addr[i]; a != NULL; a = next) {
            struct addr_slot **head = &by_addr[addr_bucket(n, a->key)];

            next = a->next;
            a->next = *head;
            *head = a;
        }
    }
}

/* Doubles the indexes; on failure the table is left as it was. */
static int grow(struct conntable *t)
{
    size_t n = t->nbuckets * 2;
    struct conn_link **by_id = calloc(n, sizeof(*by_id));
    struct conn_link **by_peer = calloc(n, sizeof(*by_peer));
    struct addr_slot **by_addr = calloc(n, sizeof(*by_addr));

    if (by_id == NULL || by_peer == NULL || by_addr == NULL) {
        free(by_id);
        free(by_peer);
        free(by_addr);
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
    rehash_addrs(t, by_addr, n);
    free_buckets(t);
    t->by_id = by_id;
    t->by_peer = by_peer;
    t->by_addr = by_addr;
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

enum conntable_admit conntable_admit(const struct conntable *t, const struct rpc2_addr *peer)
{
    if (t->count >= t->max)
        return CONNTABLE_FULL;
    if (conntable_addr_count(t, peer) >= t->limits.max_per_addr)
        return CONNTABLE_ADDR_FULL;
    return CONNTABLE_OK;
}

int conntable_insert(struct conntable *t, struct conn_link *l, int flags)
{
    int by_peer = (flags & CONNTABLE_BY_PEER) != 0;

    if (t->count >= t->max)
        return RPC2_ELIMIT;
    if (by_peer && conntable_addr_count(t, &l->peer) >= t->limits.max_per_addr)
        return RPC2_ELIMIT;
    if (t->count + 1 > t->nbuckets && grow(t) != 0)
        return RPC2_ENOMEM;
    l->addr_slot = by_peer ? get_addr(t, &l->peer) : NULL;
    if (by_peer && l->addr_slot == NULL)
        return RPC2_ENOMEM;
    l->id = fresh_id(t);
    l->by_peer = by_peer;
    l->half_open = (flags & CONNTABLE_HALF_OPEN) != 0;
    l->next_by_peer = NULL;
    link_id(t->by_id, t->nbuckets, l);
    if (by_peer) {
        link_peer(t->by_peer, t->nbuckets, l);
        l->addr_slot->count++;
    }
    t->half_open += (size_t)l->half_open;
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
    if (l->addr_slot != NULL)
        put_addr(t, l->addr_slot);
    l->addr_slot = NULL;
    conntable_proven(t, l);
    t->count--;
}

void conntable_proven(struct conntable *t, struct conn_link *l)
{
    if (!l->half_open)
        return;
    l->half_open = 0;
    t->half_open--;
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

/* ---- stateless cookies ---------------------------------------------------- */

/*
 * A cookie is the slot it was made in (u32) and 64 bits of XXH3-128, keyed
 * with the table's random secret, over the peer's address, port and socket,
 * its connection id and that slot. XXH3 is not a cryptographic MAC, and it
 * need not be one here: a cookie proves only that the peer receives packets
 * sent to the address it claims (return routability), which someone off the
 * path cannot fake without the secret; it proves no identity, grants nothing
 * once the connection exists, and a peer on the path could read it anyway.
 */
static uint64_t cookie_mac(const struct conntable *t, const struct rpc2_addr *peer,
                           uint32_t peer_id, uint32_t slot)
{
    uint8_t in[32];
    uint32_t scope;
    uint16_t port = (uint16_t)addr_bytes(peer, in, &scope), sock = peer->sock;

    memcpy(in + 16, &port, 2);
    memcpy(in + 18, &sock, 2);
    memcpy(in + 20, &peer_id, 4);
    memcpy(in + 24, &slot, 4);
    memcpy(in + 28, &scope, 4);
    return XXH3_128bits_withSecret(in, sizeof(in), t->secret, sizeof(t->secret)).low64;
}

static uint32_t cookie_slot(uint64_t now)
{
    return (uint32_t)(now / CONNTABLE_COOKIE_SLOT_US);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int conntable_cookie_required(const struct conntable *t)
{
    return t->limits.cookie_threshold == 0 || t->half_open >= t->limits.cookie_threshold;
}

void conntable_cookie_make(const struct conntable *t, const struct rpc2_addr *peer,
                           uint32_t peer_id, uint64_t now, uint8_t out[CONNTABLE_COOKIE_LEN])
{
    uint32_t slot = cookie_slot(now);
    uint64_t mac = cookie_mac(t, peer, peer_id, slot);

    put_be32(out, slot);
    put_be32(out + 4, (uint32_t)(mac >> 32));
    put_be32(out + 8, (uint32_t)mac);
}

enum conntable_cookie conntable_cookie_check(const struct conntable *t,
                                             const struct rpc2_addr *peer, uint32_t peer_id,
                                             uint64_t now, const uint8_t *cookie, size_t len)
{
    if (len != CONNTABLE_COOKIE_LEN)
        return COOKIE_BAD;
    uint32_t slot = get_be32(cookie);
    uint64_t want = cookie_mac(t, peer, peer_id, slot);
    uint64_t got = (uint64_t)get_be32(cookie + 4) << 32 | get_be32(cookie + 8);

    if (want != got)
        return COOKIE_BAD;
    uint32_t age = cookie_slot(now) - slot;

    return age <= 1 ? COOKIE_OK : COOKIE_STALE;
}
