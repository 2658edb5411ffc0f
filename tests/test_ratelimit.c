/*
 * test_ratelimit.c - the limit per source prefix on answers to unproven
 * peers (rpc2/ratelimit.c): a burst, then the rate; prefixes (IPv4 /24,
 * IPv6 /64, IPv4 seen through a dual-stack socket) share a bucket and
 * other prefixes do not; the cookie slip; a table that stays the same size
 * whatever the number of sources, and keeps the bucket being flooded.
 */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"
#include "check_run.h"

#define SEC 1000000ull

static struct rpc2_addr v4(const char *ip, uint16_t port)
{
    struct rpc2_addr a;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    memcpy(&a.ss, &sin, sizeof sin);
    a.len = sizeof sin;
    return a;
}

static struct rpc2_addr v6(const char *ip, uint16_t port)
{
    struct rpc2_addr a;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    memcpy(&a.ss, &sin6, sizeof sin6);
    a.len = sizeof sin6;
    return a;
}

/* Answers allowed out of n tries at one instant. */
static unsigned allowed(struct ratelimit *r, const struct rpc2_addr *a, unsigned n, uint64_t now,
                        unsigned slip)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        k += (unsigned)ratelimit_allow(r, a, now, slip);
    return k;
}

static struct ratelimit rl; /* 48 KiB: not on the stack */

static void fresh(uint32_t rate, uint32_t burst, uint32_t start)
{
    memset(&rl, 0, sizeof rl);
    rl.rate = rate;
    rl.burst = burst;
    rl.start = start;
}

START_TEST(new_prefix_starts_small_then_refills_to_the_burst)
{
    fresh(10, 20, 4);
    struct rpc2_addr a = v4("192.0.2.1", 1000);
    uint64_t t = 5 * SEC;
    ck_assert_uint_eq(allowed(&rl, &a, 100, t, 0), 4);
    /* 10 a second: half a second later, 5 more */
    ck_assert_uint_eq(allowed(&rl, &a, 100, t + SEC / 2, 0), 5);
    /* a long silence fills the bucket up to the burst, no further */
    ck_assert_uint_eq(allowed(&rl, &a, 100, t + 100 * SEC, 0), 20);
    ck_assert_uint_eq(allowed(&rl, &a, 100, t + 100 * SEC, 0), 0);
}
END_TEST

/* Over a long flood the answers follow the rate, whatever the flood's. */
START_TEST(flood_gets_the_rate)
{
    fresh(0, 0, 0); /* the defaults */
    struct rpc2_addr a = v4("198.51.100.7", 53);
    unsigned got = 0;
    for (uint64_t ms = 0; ms < 10000; ms++) /* 10 s, 100 tries every ms */
        got += allowed(&rl, &a, 100, SEC + ms * 1000, 0);
    ck_assert_uint_ge(got, 10 * RATELIMIT_RATE);
    ck_assert_uint_le(got, 10 * RATELIMIT_RATE + RATELIMIT_BURST + 1);
}
END_TEST

START_TEST(prefixes_share_a_bucket_others_do_not)
{
    fresh(1, 8, 8);
    const uint64_t t = SEC;
    struct rpc2_addr a = v4("203.0.113.1", 1), same24 = v4("203.0.113.250", 9);
    struct rpc2_addr other24 = v4("203.0.114.1", 1);
    ck_assert_uint_eq(allowed(&rl, &a, 5, t, 0), 5);
    ck_assert_uint_eq(allowed(&rl, &same24, 5, t, 0), 3); /* one /24: one bucket */
    ck_assert_uint_eq(allowed(&rl, &other24, 10, t, 0), 8);

    /* IPv4 through a dual-stack socket is the same IPv4 prefix */
    struct rpc2_addr mapped = v6("::ffff:203.0.113.77", 1);
    ck_assert_uint_eq(allowed(&rl, &mapped, 5, t, 0), 0);

    /* IPv6: one /64 is one bucket; the next /64 another */
    struct rpc2_addr h1 = v6("2001:db8:1:2::1", 1), h2 = v6("2001:db8:1:2:ffff::9", 1);
    struct rpc2_addr next64 = v6("2001:db8:1:3::1", 1);
    ck_assert_uint_eq(allowed(&rl, &h1, 6, t, 0), 6);
    ck_assert_uint_eq(allowed(&rl, &h2, 6, t, 0), 2);
    ck_assert_uint_eq(allowed(&rl, &next64, 10, t, 0), 8);
}
END_TEST

START_TEST(slip_lets_every_nth_through_past_the_limit)
{
    fresh(1, 4, 4);
    struct rpc2_addr a = v4("192.0.2.9", 7);
    ck_assert_uint_eq(allowed(&rl, &a, 4, SEC, 2), 4);
    ck_assert_uint_eq(allowed(&rl, &a, 100, SEC, 2), 50);
    ck_assert_uint_eq(allowed(&rl, &a, 100, SEC, 4), 25);
    ck_assert_uint_eq(allowed(&rl, &a, 100, SEC, 0), 0);
}
END_TEST

/* Sources sprayed over far more prefixes than the table holds: memory
 * stays what it is, each new prefix gets its small start, and the bucket
 * of the prefix under a steady flood is not the one forgotten. */
START_TEST(table_is_bounded_and_keeps_the_flooded_bucket)
{
    fresh(1, 64, 2);
    struct rpc2_addr victim = v4("10.0.0.1", 1);
    ck_assert_uint_eq(allowed(&rl, &victim, 1000, SEC, 0), 2);
    unsigned spray = 0;
    char ip[32];
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(ip, sizeof ip, "11.%u.%u.1", (i >> 8) & 0xff, i & 0xff);
        if (i >= 65536)
            break;
        struct rpc2_addr a = v4(ip, 1);
        spray += allowed(&rl, &a, 5, SEC, 0);
        /* the flood on the victim goes on meanwhile */
        ck_assert_uint_eq(allowed(&rl, &victim, 1, SEC, 0), 0);
    }
    ck_assert_uint_eq(spray, 2 * 20000);
    ck_assert_uint_eq(sizeof rl.e / sizeof rl.e[0], RATELIMIT_SETS * RATELIMIT_WAYS);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("buckets");
    tcase_add_test(tc, new_prefix_starts_small_then_refills_to_the_burst);
    tcase_add_test(tc, flood_gets_the_rate);
    tcase_add_test(tc, prefixes_share_a_bucket_others_do_not);
    tcase_add_test(tc, slip_lets_every_nth_through_past_the_limit);
    tcase_add_test(tc, table_is_bounded_and_keeps_the_flooded_bucket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(ratelimit_suite());
}
