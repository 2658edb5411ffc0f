/*
 * test_conntable.c - the connection table's promises: unpredictable ids
 * that never repeat or hit zero, a by-peer index no client can steer, both indexes right through growth and removal, a
 * hard limit that refuses cleanly, the per-address limit, the half-open
 * count that decides when cookies are required, and the cookies themselves.
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <rpc2/rpc2.h>

#include "conntable.h"
#include "check_run.h"

static struct rpc2_addr peer_v4(uint32_t ip, uint16_t port)
{
    struct rpc2_addr a;
    struct sockaddr_in sin;

    memset(&a, 0, sizeof(a));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(ip);
    memcpy(&a.ss, &sin, sizeof(sin));
    a.len = sizeof(sin);
    return a;
}

static void make_link(struct conn_link *l, uint32_t ip, uint16_t port, uint32_t peer_id)
{
    memset(l, 0, sizeof(*l));
    l->peer = peer_v4(ip, port);
    l->peer_id = peer_id;
}

START_TEST(insert_find_remove)
{
    struct conntable t;
    struct conn_link a, b;

    ck_assert_int_eq(conntable_init(&t, 10, 1), 0);
    make_link(&a, 0x0a000001, 1000, 7);
    make_link(&b, 0x0a000002, 1000, 7);
    ck_assert_int_eq(conntable_insert(&t, &a, 1), 0);
    ck_assert_int_eq(conntable_insert(&t, &b, 0), 0);
    ck_assert_uint_ne(a.id, 0);
    ck_assert_uint_ne(a.id, b.id);
    ck_assert_uint_eq(t.count, 2);
    ck_assert_ptr_eq(conntable_find(&t, a.id), &a);
    ck_assert_ptr_eq(conntable_find(&t, b.id), &b);

    conntable_remove(&t, &a);
    ck_assert_uint_eq(t.count, 1);
    ck_assert_ptr_null(conntable_find(&t, a.id));
    ck_assert_ptr_null(conntable_find_peer(&t, &a.peer, 7));
    ck_assert_ptr_eq(conntable_find(&t, b.id), &b);

    /* Removing twice is harmless. */
    conntable_remove(&t, &a);
    ck_assert_uint_eq(t.count, 1);
    conntable_dispose(&t);
}
END_TEST

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

START_TEST(ids_nonzero_unique_and_growth_keeps_entries)
{
    enum { N = 100000 };
    struct conn_link *links = calloc(N, sizeof(*links));
    uint32_t *ids = calloc(N, sizeof(*ids));
    struct conntable t;

    ck_assert_ptr_nonnull(links);
    ck_assert_ptr_nonnull(ids);
    ck_assert_int_eq(conntable_init(&t, N, 0x1234), 0);
    for (uint32_t i = 0; i < N; i++) {
        make_link(&links[i], 0x0a000000 + i / 1000, (uint16_t)(i % 1000), i);
        ck_assert_int_eq(conntable_insert(&t, &links[i], 1), 0);
        ck_assert_uint_ne(links[i].id, 0);
        ids[i] = links[i].id;
    }
    ck_assert_uint_eq(t.count, N);
    /* Grown as it filled: a power of two, at least one bucket per entry. */
    ck_assert_uint_ge(t.nbuckets, N);
    ck_assert_uint_eq(t.nbuckets & (t.nbuckets - 1), 0);

    qsort(ids, N, sizeof(ids[0]), cmp_u32);
    for (size_t i = 1; i < N; i++)
        ck_assert_uint_ne(ids[i - 1], ids[i]);
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_ptr_eq(conntable_find(&t, links[i].id), &links[i]);
        ck_assert_ptr_eq(conntable_find_peer(&t, &links[i].peer, i), &links[i]);
    }
    conntable_dispose(&t);
    free(ids);
    free(links);
}
END_TEST

START_TEST(same_seed_same_ids)
{
    struct conntable t1, t2, t3;
    struct conn_link a, b, c;

    ck_assert_int_eq(conntable_init(&t1, 4, 99), 0);
    ck_assert_int_eq(conntable_init(&t2, 4, 99), 0);
    ck_assert_int_eq(conntable_init(&t3, 4, 0), 0); /* seeded by the kernel */
    make_link(&a, 1, 1, 1);
    make_link(&b, 1, 1, 1);
    make_link(&c, 1, 1, 1);
    conntable_insert(&t1, &a, 0);
    conntable_insert(&t2, &b, 0);
    ck_assert_int_eq(conntable_insert(&t3, &c, 0), 0);
    ck_assert_uint_eq(a.id, b.id);
    ck_assert_uint_ne(c.id, 0);
    conntable_dispose(&t1);
    conntable_dispose(&t2);
    conntable_dispose(&t3);
}
END_TEST

START_TEST(find_peer)
{
    struct conntable t;
    struct conn_link a, b, c, unindexed;
    struct rpc2_addr mapped;

    ck_assert_int_eq(conntable_init(&t, 10, 5), 0);
    make_link(&a, 0x7f000001, 5000, 1);
    make_link(&b, 0x7f000001, 5000, 2); /* same peer, another of its connections */
    make_link(&c, 0x7f000001, 5001, 1); /* another peer port, same peer id */
    make_link(&unindexed, 0x7f000002, 5000, 1);
    conntable_insert(&t, &a, 1);
    conntable_insert(&t, &b, 1);
    conntable_insert(&t, &c, 1);
    conntable_insert(&t, &unindexed, 0);

    ck_assert_ptr_eq(conntable_find_peer(&t, &a.peer, 1), &a);
    ck_assert_ptr_eq(conntable_find_peer(&t, &a.peer, 2), &b);
    ck_assert_ptr_eq(conntable_find_peer(&t, &c.peer, 1), &c);
    ck_assert_ptr_null(conntable_find_peer(&t, &a.peer, 3));
    ck_assert_ptr_null(conntable_find_peer(&t, &unindexed.peer, 1));

    /* The same peer seen through a dual-stack socket. */
    mapped = a.peer;
    addr_to_v6mapped(&mapped.ss, &mapped.len);
    ck_assert_ptr_eq(conntable_find_peer(&t, &mapped, 1), &a);

    /* ...but not through another socket of the context. */
    mapped.sock = 1;
    ck_assert_ptr_null(conntable_find_peer(&t, &mapped, 1));
    conntable_dispose(&t);
}
END_TEST

START_TEST(limit_refuses_and_keeps_state)
{
    struct conntable t;
    struct conn_link links[4];

    ck_assert_int_eq(conntable_init(&t, 3, 11), 0);
    for (uint32_t i = 0; i < 4; i++)
        make_link(&links[i], 0x0a000001, 100, i + 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(conntable_insert(&t, &links[i], 1), 0);

    ck_assert_int_eq(conntable_insert(&t, &links[3], 1), RPC2_ELIMIT);
    ck_assert_uint_eq(t.count, 3);
    ck_assert_uint_eq(links[3].id, 0);
    ck_assert_ptr_null(conntable_find_peer(&t, &links[3].peer, 4));
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_eq(conntable_find(&t, links[i].id), &links[i]);
        ck_assert_ptr_eq(conntable_find_peer(&t, &links[i].peer, links[i].peer_id), &links[i]);
    }

    /* A slot freed is a slot usable again. */
    conntable_remove(&t, &links[1]);
    ck_assert_int_eq(conntable_insert(&t, &links[3], 1), 0);
    ck_assert_ptr_eq(conntable_find(&t, links[3].id), &links[3]);
    conntable_dispose(&t);
}
END_TEST

START_TEST(zero_max_refuses_everything)
{
    struct conntable t;
    struct conn_link a;

    ck_assert_int_eq(conntable_init(&t, 0, 3), 0);
    make_link(&a, 1, 1, 1);
    ck_assert_int_eq(conntable_insert(&t, &a, 1), RPC2_ELIMIT);
    conntable_dispose(&t);
}
END_TEST

struct sweep {
    size_t visited;
    uint32_t removed_below; /* removes links whose peer_id is below this */
    struct conntable *t;
};

static void remove_some(struct conn_link *l, void *arg)
{
    struct sweep *s = arg;

    s->visited++;
    if (l->peer_id < s->removed_below)
        conntable_remove(s->t, l);
}

START_TEST(foreach_with_removal)
{
    enum { N = 1000 };
    static struct conn_link links[N];
    struct conntable t;
    struct sweep s = {0, N / 2, &t};

    ck_assert_int_eq(conntable_init(&t, N, 77), 0);
    for (uint32_t i = 0; i < N; i++) {
        make_link(&links[i], 0x0a000001, 9, i);
        ck_assert_int_eq(conntable_insert(&t, &links[i], 1), 0);
    }
    conntable_foreach(&t, remove_some, &s);
    ck_assert_uint_eq(s.visited, N);
    ck_assert_uint_eq(t.count, N - N / 2);
    for (uint32_t i = 0; i < N; i++) {
        struct conn_link *want = i < N / 2 ? NULL : &links[i];

        ck_assert_ptr_eq(conntable_find(&t, links[i].id), want);
        ck_assert_ptr_eq(conntable_find_peer(&t, &links[i].peer, i), want);
    }

    /* Removing everything from inside foreach leaves an empty table. */
    s.visited = 0;
    s.removed_below = N;
    conntable_foreach(&t, remove_some, &s);
    ck_assert_uint_eq(s.visited, N - N / 2);
    ck_assert_uint_eq(t.count, 0);
    conntable_dispose(&t);
}
END_TEST

START_TEST(removed_ids_miss_after_reinsert)
{
    struct conntable t;
    struct conn_link a;
    uint32_t old;

    ck_assert_int_eq(conntable_init(&t, 4, 8), 0);
    make_link(&a, 1, 1, 1);
    conntable_insert(&t, &a, 1);
    old = a.id;
    conntable_remove(&t, &a);
    /* The same connection object inserted again gets a fresh id. */
    conntable_insert(&t, &a, 1);
    ck_assert_uint_ne(a.id, old);
    ck_assert_ptr_null(conntable_find(&t, old));
    ck_assert_ptr_eq(conntable_find(&t, a.id), &a);
    conntable_dispose(&t);
}
END_TEST

static struct rpc2_addr peer_v6(const char *ip, uint16_t port)
{
    struct rpc2_addr a;
    struct sockaddr_in6 sin6;

    memset(&a, 0, sizeof(a));
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    memcpy(&a.ss, &sin6, sizeof(sin6));
    a.len = sizeof(sin6);
    return a;
}

static struct conntable_limits limits(size_t per_addr, size_t cookie_threshold)
{
    return (struct conntable_limits){.max_per_addr = per_addr,
                                     .cookie_threshold = cookie_threshold,
                                     .max_running = SIZE_MAX,
                                     .max_saved_bytes = UINT64_MAX};
}

START_TEST(per_address_limit_refuses_the_next_and_no_other)
{
    struct conntable t;
    struct conn_link l[6];
    struct conntable_limits lim = limits(3, SIZE_MAX);

    ck_assert_int_eq(conntable_init(&t, 100, 21), 0);
    conntable_set_limits(&t, &lim);
    /* Three connections from one address, from three ports (a NAT). */
    for (int i = 0; i < 4; i++)
        make_link(&l[i], 0x0a000001, (uint16_t)(1000 + i), 7);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(conntable_admit(&t, &l[i].peer), CONNTABLE_OK);
        ck_assert_int_eq(conntable_insert(&t, &l[i], CONNTABLE_BY_PEER), 0);
    }
    ck_assert_uint_eq(conntable_addr_count(&t, &l[0].peer), 3);
    ck_assert_int_eq(conntable_admit(&t, &l[3].peer), CONNTABLE_ADDR_FULL);
    ck_assert_int_eq(conntable_insert(&t, &l[3], CONNTABLE_BY_PEER), RPC2_ELIMIT);
    ck_assert_uint_eq(l[3].id, 0);
    ck_assert_uint_eq(t.count, 3);

    /* Another address is not affected; client-side entries are not counted. */
    make_link(&l[4], 0x0a000002, 1000, 7);
    ck_assert_int_eq(conntable_admit(&t, &l[4].peer), CONNTABLE_OK);
    ck_assert_int_eq(conntable_insert(&t, &l[4], CONNTABLE_BY_PEER), 0);
    make_link(&l[5], 0x0a000001, 2000, 9);
    ck_assert_int_eq(conntable_insert(&t, &l[5], 0), 0);
    ck_assert_uint_eq(conntable_addr_count(&t, &l[0].peer), 3);

    /* One goes, one more fits. */
    conntable_remove(&t, &l[1]);
    ck_assert_uint_eq(conntable_addr_count(&t, &l[0].peer), 2);
    ck_assert_int_eq(conntable_insert(&t, &l[3], CONNTABLE_BY_PEER), 0);
    for (int i = 0; i < 6; i++)
        conntable_remove(&t, &l[i]);
    ck_assert_uint_eq(conntable_addr_count(&t, &l[0].peer), 0);
    ck_assert_uint_eq(t.count, 0);
    conntable_dispose(&t);
}
END_TEST

/* IPv6 counts by /64 (one host holds a whole /64); IPv4 seen through a
 * dual-stack socket counts as the same address. */
START_TEST(per_address_limit_groups_ipv6_by_64_and_maps_ipv4)
{
    struct conntable t;
    struct conn_link a, b, c, v4, mapped;
    struct conntable_limits lim = limits(2, SIZE_MAX);

    ck_assert_int_eq(conntable_init(&t, 100, 22), 0);
    conntable_set_limits(&t, &lim);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    a.peer = peer_v6("2001:db8:1:2::1", 5);
    b.peer = peer_v6("2001:db8:1:2:ffff::7", 5);
    c.peer = peer_v6("2001:db8:1:3::1", 5); /* the next /64 */
    a.peer_id = b.peer_id = c.peer_id = 1;
    ck_assert_int_eq(conntable_insert(&t, &a, CONNTABLE_BY_PEER), 0);
    ck_assert_int_eq(conntable_insert(&t, &b, CONNTABLE_BY_PEER), 0);
    struct rpc2_addr same64 = peer_v6("2001:db8:1:2::99", 1), other4 = peer_v4(0x7f000002, 1);

    ck_assert_int_eq(conntable_admit(&t, &same64), CONNTABLE_ADDR_FULL);
    ck_assert_int_eq(conntable_insert(&t, &c, CONNTABLE_BY_PEER), 0);

    make_link(&v4, 0x7f000001, 1, 1);
    make_link(&mapped, 0x7f000001, 2, 1);
    addr_to_v6mapped(&mapped.peer.ss, &mapped.peer.len);
    ck_assert_int_eq(conntable_insert(&t, &v4, CONNTABLE_BY_PEER), 0);
    ck_assert_int_eq(conntable_insert(&t, &mapped, CONNTABLE_BY_PEER), 0);
    ck_assert_uint_eq(conntable_addr_count(&t, &v4.peer), 2);
    /* 127.0.0.2 is another address, even though ::ffff:127.0.0.0/96 is one /64. */
    ck_assert_int_eq(conntable_admit(&t, &other4), CONNTABLE_OK);
    conntable_dispose(&t); /* frees the address counts (the sanitizer run checks) */
}
END_TEST

START_TEST(half_open_count_decides_cookies)
{
    struct conntable t;
    struct conn_link l[3];
    struct conntable_limits lim = limits(SIZE_MAX, 2);

    ck_assert_int_eq(conntable_init(&t, 100, 23), 0);
    ck_assert(!conntable_cookie_required(&t)); /* the default: never */
    conntable_set_limits(&t, &lim);
    for (uint32_t i = 0; i < 3; i++)
        make_link(&l[i], 0x0a000001, 1, i + 1);
    ck_assert_int_eq(conntable_insert(&t, &l[0], CONNTABLE_BY_PEER | CONNTABLE_HALF_OPEN), 0);
    ck_assert_int_eq(conntable_insert(&t, &l[2], CONNTABLE_BY_PEER), 0); /* came with a cookie */
    ck_assert_uint_eq(t.half_open, 1);
    ck_assert(!conntable_cookie_required(&t));
    ck_assert_int_eq(conntable_insert(&t, &l[1], CONNTABLE_BY_PEER | CONNTABLE_HALF_OPEN), 0);
    ck_assert_uint_eq(t.half_open, 2);
    ck_assert(conntable_cookie_required(&t));

    conntable_proven(&t, &l[0]);
    conntable_proven(&t, &l[0]); /* twice: once counted */
    ck_assert_uint_eq(t.half_open, 1);
    ck_assert(!conntable_cookie_required(&t));
    conntable_remove(&t, &l[1]); /* expired while half-open */
    conntable_remove(&t, &l[2]);
    ck_assert_uint_eq(t.half_open, 0);

    lim.cookie_threshold = 0; /* always */
    conntable_set_limits(&t, &lim);
    ck_assert(conntable_cookie_required(&t));
    conntable_dispose(&t);
}
END_TEST

#define SLOT CONNTABLE_COOKIE_SLOT_US

START_TEST(cookies_check_out_only_for_their_peer_and_time)
{
    struct conntable t, other, same;
    struct rpc2_addr p = peer_v4(0xc0000201, 4000);
    uint8_t ck[CONNTABLE_COOKIE_LEN], ck2[CONNTABLE_COOKIE_LEN];
    uint64_t made = 100 * SLOT + 12345;

    ck_assert_int_eq(conntable_init(&t, 10, 31), 0);
    ck_assert_int_eq(conntable_init(&same, 10, 31), 0);
    ck_assert_int_eq(conntable_init(&other, 10, 0), 0); /* a random secret */
    conntable_cookie_make(&t, &p, 77, made, ck);
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, made, ck, sizeof ck), COOKIE_OK);
    /* Good for the rest of its slot and the whole next one, not after. */
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, 102 * SLOT - 1, ck, sizeof ck), COOKIE_OK);
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, 102 * SLOT, ck, sizeof ck), COOKIE_STALE);
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, 99 * SLOT, ck, sizeof ck), COOKIE_STALE);

    /* Another port, address, socket or connection id: forged. */
    struct rpc2_addr port = peer_v4(0xc0000201, 4001), ip = peer_v4(0xc0000202, 4000), sock = p;

    sock.sock = 1;
    ck_assert_int_eq(conntable_cookie_check(&t, &port, 77, made, ck, sizeof ck), COOKIE_BAD);
    ck_assert_int_eq(conntable_cookie_check(&t, &ip, 77, made, ck, sizeof ck), COOKIE_BAD);
    ck_assert_int_eq(conntable_cookie_check(&t, &sock, 77, made, ck, sizeof ck), COOKIE_BAD);
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 78, made, ck, sizeof ck), COOKIE_BAD);
    /* Any bit changed, the slot included (moving a cookie to now), or a cut. */
    for (size_t i = 0; i < sizeof ck * 8; i++) {
        memcpy(ck2, ck, sizeof ck);
        ck2[i / 8] ^= (uint8_t)(1u << (i % 8));
        ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, made, ck2, sizeof ck2), COOKIE_BAD);
    }
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, made, ck, sizeof ck - 1), COOKIE_BAD);
    ck_assert_int_eq(conntable_cookie_check(&t, &p, 77, made, ck, 0), COOKIE_BAD);
    /* Only the table's own secret makes it; the same seed makes the same. */
    ck_assert_int_eq(conntable_cookie_check(&other, &p, 77, made, ck, sizeof ck), COOKIE_BAD);
    conntable_cookie_make(&same, &p, 77, made, ck2);
    ck_assert_mem_eq(ck, ck2, sizeof ck);
    /* The same peer through a dual-stack socket gets the same cookie. */
    struct rpc2_addr mapped = p;

    addr_to_v6mapped(&mapped.ss, &mapped.len);
    ck_assert_int_eq(conntable_cookie_check(&t, &mapped, 77, made, ck, sizeof ck), COOKIE_OK);
    conntable_dispose(&t);
    conntable_dispose(&same);
    conntable_dispose(&other);
}
END_TEST

/* ---- ids and the peer index an attacker cannot steer ---------------------- */

/* The generator ids came from before: splitmix64, the id its high half. */
static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

#define N_IDS 10000
static struct conn_link id_links[2][N_IDS];

static void draw_ids(struct conntable *t, int which, uint32_t *ids)
{
    for (int i = 0; i < N_IDS; i++) {
        make_link(&id_links[which][i], 0x0a000001, 1, (uint32_t)i + 1);
        ck_assert_int_eq(conntable_insert(t, &id_links[which][i], 0), 0);
        ids[i] = id_links[which][i].id;
    }
}

/*
 * 10,000 ids are distinct and look like a PRF's, not a sequence: the old
 * generator, run from the same seed, predicts none of them; the step from
 * one id to the next is not constant; every bit is set about half the
 * time; and two tables with keys of their own (from the kernel) share no
 * id at the same position, so knowing the generator and the counter gives
 * nothing without the key.
 */
START_TEST(ids_come_from_a_keyed_prf)
{
    static uint32_t ids[N_IDS], other[N_IDS], sorted[N_IDS];
    struct conntable t, k1, k2;
    uint64_t state = 1234;
    unsigned predicted = 0, same_step = 0, same_position = 0, bits[32] = {0};

    ck_assert_int_eq(conntable_init(&t, N_IDS, 1234), 0);
    draw_ids(&t, 0, ids);
    memcpy(sorted, ids, sizeof sorted);
    qsort(sorted, N_IDS, sizeof sorted[0], cmp_u32);
    for (int i = 0; i < N_IDS; i++) {
        ck_assert_uint_ne(ids[i], 0);
        if (i > 0)
            ck_assert_uint_ne(sorted[i], sorted[i - 1]);
        predicted += ids[i] == (uint32_t)(splitmix(&state) >> 32);
        if (i > 1)
            same_step += ids[i] - ids[i - 1] == ids[i - 1] - ids[i - 2];
        for (int b = 0; b < 32; b++)
            bits[b] += (ids[i] >> b) & 1;
    }
    ck_assert_uint_eq(predicted, 0);
    ck_assert_uint_le(same_step, 1);
    for (int b = 0; b < 32; b++) {
        ck_assert_uint_gt(bits[b], N_IDS * 45 / 100);
        ck_assert_uint_lt(bits[b], N_IDS * 55 / 100);
    }
    conntable_dispose(&t);

    ck_assert_int_eq(conntable_init(&k1, N_IDS, 0), 0);
    ck_assert_int_eq(conntable_init(&k2, N_IDS, 0), 0);
    draw_ids(&k1, 0, ids);
    draw_ids(&k2, 1, other);
    for (int i = 0; i < N_IDS; i++)
        same_position += ids[i] == other[i];
    ck_assert_uint_le(same_position, 1);
    conntable_dispose(&k1);
    conntable_dispose(&k2);
}
END_TEST

/* x * inverse == 1 (mod 2^32), for odd x (Newton's iteration). */
static uint32_t inverse(uint32_t x)
{
    uint32_t y = x;

    for (int i = 0; i < 5; i++)
        y *= 2 - x * y;
    return y;
}

/* The bucket the by-peer index used before: unkeyed, so a client could
 * compute it for any id it liked. */
static size_t old_peer_bucket(size_t nbuckets, const struct rpc2_addr *peer, uint32_t peer_id)
{
    uint32_t h = addr_hash(peer) ^ (peer_id * 0x9e3779b1u);

    h ^= h >> 16;
    return h & (nbuckets - 1);
}

/*
 * Ids chosen so that the old unkeyed index put every one of them in one
 * bucket (each lookup a walk through all): under the keyed index they
 * spread like any others.
 */
START_TEST(peer_ids_cannot_be_chosen_to_collide)
{
    enum { N = 4096 };
    static struct conn_link l[N];
    struct conntable t;
    uint32_t inv = inverse(0x9e3779b1u);
    size_t longest = 0;

    ck_assert_int_eq(conntable_init(&t, N, 0), 0);
    for (uint32_t i = 0; i < N; i++) {
        /* the high and low halves of id * 0x9e3779b1 equal: they fold to 0 */
        make_link(&l[i], 0xc0000299, 5000, (i + 1) * 0x10001u * inv);
        ck_assert_int_eq(conntable_insert(&t, &l[i], CONNTABLE_BY_PEER), 0);
    }
    ck_assert_uint_eq(t.nbuckets, N);
    for (uint32_t i = 0; i < N; i++) {
        ck_assert_uint_eq(old_peer_bucket(t.nbuckets, &l[i].peer, l[i].peer_id),
                          old_peer_bucket(t.nbuckets, &l[0].peer, l[0].peer_id));
        ck_assert_ptr_eq(conntable_find_peer(&t, &l[i].peer, l[i].peer_id), &l[i]);
    }
    for (size_t b = 0; b < t.nbuckets; b++) {
        size_t n = 0;

        for (struct conn_link *p = t.by_peer[b]; p != NULL; p = p->next_by_peer)
            n++;
        longest = n > longest ? n : longest;
    }
    ck_assert_uint_le(longest, 16);
    conntable_dispose(&t);
}
END_TEST

static Suite *conntable_suite(void)
{
    Suite *s = suite_create("conntable");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, insert_find_remove);
    tcase_add_test(tc, ids_nonzero_unique_and_growth_keeps_entries);
    tcase_add_test(tc, same_seed_same_ids);
    tcase_add_test(tc, find_peer);
    tcase_add_test(tc, limit_refuses_and_keeps_state);
    tcase_add_test(tc, zero_max_refuses_everything);
    tcase_add_test(tc, foreach_with_removal);
    tcase_add_test(tc, removed_ids_miss_after_reinsert);
    tcase_add_test(tc, per_address_limit_refuses_the_next_and_no_other);
    tcase_add_test(tc, per_address_limit_groups_ipv6_by_64_and_maps_ipv4);
    tcase_add_test(tc, half_open_count_decides_cookies);
    tcase_add_test(tc, cookies_check_out_only_for_their_peer_and_time);
    tcase_add_test(tc, ids_come_from_a_keyed_prf);
    tcase_add_test(tc, peer_ids_cannot_be_chosen_to_collide);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(conntable_suite());
}
