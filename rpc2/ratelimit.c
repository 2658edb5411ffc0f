/*
 * ratelimit.c - token buckets per source prefix for the answers a context
 * sends to unproven peers, so that it is no reflector (ratelimit.h).
 *
 * Each bucket is one number, GCRA's "theoretical arrival time": the moment
 * the bucket would be full again. An answer costs one interval (1 s /
 * rate); it is allowed while the bucket is not empty, that is while tat is
 * at most (burst - 1) intervals ahead of now. No floating point, no timer,
 * no refill loop: time passing is the refill.
 */
#include "ratelimit.h"

#include <string.h>

#include <sodium.h>

/* The prefix an address belongs to, as hashed: IPv4 /24 or IPv6 /64 (with
 * the scope: fe80::/64 on two links is two networks). An address of a
 * family we do not speak has the all-zero prefix. */
static uint64_t prefix_tag(const struct ratelimit *r, const struct rpc2_addr *a)
{
    struct addr_norm n;
    uint8_t key[1 + 8 + 4] = {0};
    uint8_t hash[crypto_shorthash_BYTES];
    uint64_t tag;

    (void)addr_normalize(&a->ss, &n);
    if (addr_norm_is_v4(&n)) {
        key[0] = 4;
        memcpy(key + 1, n.addr + 12, 3);
    } else {
        key[0] = 6;
        memcpy(key + 1, n.addr, 8);
        memcpy(key + 9, &n.scope, 4);
    }
    crypto_shorthash(hash, key, sizeof(key), r->key);
    memcpy(&tag, hash, sizeof(tag));
    return tag ? tag : 1; /* 0 marks a free entry */
}

static uint64_t interval_us(const struct ratelimit *r)
{
    uint32_t rate = r->rate ? r->rate : RATELIMIT_RATE;

    return 1000000u / rate ? 1000000u / rate : 1;
}

/* Which of two entries a new prefix should rather replace: a free one; else
 * the one with more tokens left (idler); at a tie, the one refused less
 * (the flood in progress keeps its empty bucket). */
static int evict_first(const struct ratelimit_entry *a, const struct ratelimit_entry *b)
{
    if (a->tag == 0 || b->tag == 0)
        return a->tag == 0;
    if (a->tat != b->tat)
        return a->tat < b->tat;
    return a->over < b->over;
}

/* The entry of the prefix, or a new one in its set (starting with `start`
 * answers) in place of the one evict_first() picks. */
static struct ratelimit_entry *entry_for(struct ratelimit *r, uint64_t tag, uint64_t now,
                                         uint64_t t, uint32_t burst)
{
    struct ratelimit_entry *set = r->e + (tag % RATELIMIT_SETS) * RATELIMIT_WAYS, *victim = set;
    uint32_t start = r->start ? r->start : RATELIMIT_START;

    for (int i = 0; i < RATELIMIT_WAYS; i++) {
        if (set[i].tag == tag)
            return &set[i];
        if (evict_first(&set[i], victim))
            victim = &set[i];
    }
    if (start > burst)
        start = burst;
    *victim = (struct ratelimit_entry){.tag = tag, .tat = now + (uint64_t)(burst - start) * t};
    return victim;
}

void ratelimit_key(struct ratelimit *r, const uint8_t secret[16])
{
    crypto_generichash(r->key, sizeof(r->key), (const uint8_t *)"rpc2 ratelimit", 14, secret, 16);
    r->keyed = 1;
}

int ratelimit_allow(struct ratelimit *r, const struct rpc2_addr *to, uint64_t now, unsigned slip)
{
    uint32_t burst = r->burst ? r->burst : RATELIMIT_BURST;
    uint64_t t = interval_us(r);

    if (!r->keyed) {
        randombytes_buf(r->key, sizeof(r->key));
        r->keyed = 1;
    }
    struct ratelimit_entry *e = entry_for(r, prefix_tag(r, to), now, t, burst);
    uint64_t tat = e->tat > now ? e->tat : now;

    if (tat - now <= (uint64_t)(burst - 1) * t) {
        e->tat = tat + t;
        return 1;
    }
    e->over++;
    return slip > 1 && e->over % slip == 0;
}
