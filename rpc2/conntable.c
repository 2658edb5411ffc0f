/*
 * conntable.c - every connection of a context, found by our id for each
 * arriving packet and by (peer address, peer id) for a repeated bind; and
 * the admission of a server's connections: how many in all, how many per
 * peer address, how many half-open, and the cookies that prove an address.
 *
 * Ids come from a keyed PRF (SipHash-2-4 under a random key) over a
 * counter, not from a plain generator: ids seen on the wire say nothing
 * about the next one, so a host off the path can neither guess a live
 * connection's id nor aim at the one a bind will get. A peer that talks to
 * a restarted server misses instead of landing on a stranger's connection.
 * Both indexes are intrusive chains over bucket arrays of one size, so
 * inserting allocates nothing except when the table doubles (and one small
 * count the first time an address is seen); the buckets a peer lands in
 * are chosen under another key, so no peer can pick ids that pile up in one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include <rpc2/rpc2.h>

#include "conntable.h"

_Static_assert(CONNTABLE_KEY_SIZE == crypto_shorthash_KEYBYTES, "a SipHash key");

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

/* SipHash-2-4 of in under key: a PRF, so its outputs are unpredictable
 * without the key whatever inputs an attacker chooses or sees. */
static uint64_t prf(const uint8_t key[CONNTABLE_KEY_SIZE], const void *in, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t v;

    crypto_shorthash(out, in, len, key);
    memcpy(&v, out, sizeof(v));
    return v;
}

static int from_kernel(void *buf, size_t len)
{
    ssize_t n;

    do
        n = getrandom(buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : RPC2_ESYSTEM;
}

/* The keys: from the kernel, or (a seeded table, in tests) from the seed
 * by BLAKE2b, so that runs repeat. */
static int make_keys(struct conntable *t, uint64_t seed)
{
    uint8_t keys[3 * CONNTABLE_KEY_SIZE];

    if (seed == 0) {
        if (from_kernel(keys, sizeof(keys)) != 0)
            return RPC2_ESYSTEM;
    } else {
        crypto_generichash(keys, sizeof(keys), (const uint8_t *)&seed, sizeof(seed),
                           (const uint8_t *)"rpc2 conntable seed", 19);
    }
    memcpy(t->id_key, keys, CONNTABLE_KEY_SIZE);
    memcpy(t->cookie_key, keys + CONNTABLE_KEY_SIZE, CONNTABLE_KEY_SIZE);
    memcpy(t->index_key, keys + 2 * CONNTABLE_KEY_SIZE, CONNTABLE_KEY_SIZE);
    sodium_memzero(keys, sizeof(keys));
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
    if (make_keys(t, seed) != 0)
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
    sodium_memzero(t->id_key, sizeof(t->id_key));
    sodium_memzero(t->cookie_key, sizeof(t->cookie_key));
    sodium_memzero(t->index_key, sizeof(t->index_key));
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

/* Keyed: the peer chooses its id and, within limits, its address and port;
 * under an unkeyed hash it could choose them to land every bind in one
 * chain and make each lookup walk all of them. */
static size_t peer_bucket(const struct conntable *t, size_t nbuckets, const struct rpc2_addr *peer,
                          uint32_t peer_id)
{
    struct {
        struct addr_norm n;
        uint32_t peer_id;
        uint16_t sock;
    } in;

    memset(&in, 0, sizeof(in)); /* the padding too: it is hashed */
    (void)addr_normalize(&peer->ss, &in.n);
    in.peer_id = peer_id;
    in.sock = peer->sock;
    return (size_t)prf(t->index_key, &in, sizeof(in)) & (nbuckets - 1);
}

/* ---- peer addresses ------------------------------------------------------ */

/* What the per-address limit counts by: the IPv4 address, or the /64 of an
 * IPv6 one (with its scope: fe80::/64 on two links is two networks). */
static void addr_key(const struct rpc2_addr *a, uint8_t key[ADDR_KEY_LEN])
{
    struct addr_norm n;

    (void)addr_normalize(&a->ss, &n);
    memcpy(key, n.addr, 16);
    if (!addr_norm_is_v4(&n))
        memset(key + 8, 0, 8);
    memcpy(key + 16, &n.scope, 4);
}

static size_t addr_bucket(const struct conntable *t, size_t nbuckets,
                          const uint8_t key[ADDR_KEY_LEN])
{
    return (size_t)prf(t->index_key, key, ADDR_KEY_LEN) & (nbuckets - 1);
}

static struct addr_slot *find_addr(const struct conntable *t, const uint8_t key[ADDR_KEY_LEN])
{
    struct addr_slot *a = t->by_addr[addr_bucket(t, t->nbuckets, key)];

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
    struct addr_slot **head = &t->by_addr[addr_bucket(t, t->nbuckets, key)];

    a->next = *head;
    *head = a;
    return a;
}

/* Drops one from the address's count; the last one frees it. */
static void put_addr(struct conntable *t, struct addr_slot *a)
{
    if (--a->count > 0)
        return;
    struct addr_slot **p = &t->by_addr[addr_bucket(t, t->nbuckets, a->key)];

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

static void link_peer(const struct conntable *t, struct conn_link **buckets, size_t nbuckets,
                      struct conn_link *l)
{
    struct conn_link **head = &buckets[peer_bucket(t, nbuckets, &l->peer, l->peer_id)];

    l->next_by_peer = *head;
    *head = l;
}

static void rehash_addrs(struct conntable *t, struct addr_slot **by_addr, size_t n)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct addr_slot *a, *next;

        for (a = t->by_addr[i]; a != NULL; a = next) {
            struct addr_slot **head = &by_addr[addr_bucket(t, n, a->key)];

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
            link_peer(t, by_peer, n, l);
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
        uint64_t n = t->ids_drawn++;
        uint32_t id = (uint32_t)prf(t->id_key, &n, sizeof(n));

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
        link_peer(t, t->by_peer, t->nbuckets, l);
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
    struct conn_link *l = t->by_peer[peer_bucket(t, t->nbuckets, peer, peer_id)];

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
    struct conn_link **p = &t->by_peer[peer_bucket(t, t->nbuckets, &l->peer, l->peer_id)];

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
 * A cookie is the slot it was made in (u32) and a 64-bit MAC, SipHash-2-4
 * under the table's random cookie key, over the peer's address, port and
 * socket, its connection id and that slot. SipHash is a PRF: without the
 * key, a cookie for an address one does not receive at costs 2^64 guesses
 * (an unkeyed or merely seeded hash such as XXH3 makes no such promise).
 * A cookie proves only that the peer receives packets sent to the address
 * it claims (return routability); it proves no identity, grants nothing
 * once the connection exists, and a peer on the path could read it anyway.
 */
static uint64_t cookie_mac(const struct conntable *t, const struct rpc2_addr *peer,
                           uint32_t peer_id, uint32_t slot)
{
    struct {
        struct addr_norm n;
        uint32_t peer_id, slot;
        uint16_t sock;
    } in;

    memset(&in, 0, sizeof(in)); /* the padding too: it is hashed */
    (void)addr_normalize(&peer->ss, &in.n);
    in.peer_id = peer_id;
    in.slot = slot;
    in.sock = peer->sock;
    return prf(t->cookie_key, &in, sizeof(in));
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

    if (sodium_memcmp(&want, &got, sizeof(want)) != 0)
        return COOKIE_BAD;
    uint32_t age = cookie_slot(now) - slot;

    return age <= 1 ? COOKIE_OK : COOKIE_STALE;
}
