/*
 * test_memshare.c - the packet-memory cap shared among transfers: a lone
 * transfer gets its whole window; many transfers at once each get a fair
 * share instead of the first few taking everything; nobody is lowered
 * below the minimum, and a newcomer that cannot have it is refused
 * without touching the others; windows grow back as transfers end. Every
 * change of a grant reaches the transfer through its limit callback, and
 * the grants never add up past the cap.
 */
#include <stdlib.h>

#include <check.h>
#include <rpc2/rpc2.h>

#include "memshare.h"
#include "check_run.h"

#define PACKET 1000u

/* A transfer as the memory cap sees it, with what its callback heard. */
struct member {
    struct memshare_member m;
    uint32_t told; /* the last limit the callback said; 0: never told */
    unsigned calls;
};

static void heard(void *arg, uint32_t packets)
{
    struct member *t = arg;
    t->told = packets;
    t->calls++;
}

static void member_init(struct member *t, uint32_t wanted, uint32_t packet_size)
{
    *t = (struct member){0};
    t->m.packet_size = packet_size;
    t->m.wanted = wanted;
    t->m.limit = heard;
    t->m.arg = t;
}

/* What the machine runs with: the first grant, or the last limit told. */
static uint32_t window_of(const struct member *t)
{
    return t->m.granted;
}

static uint64_t granted_bytes(const struct member *t, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (uint64_t)t[i].m.granted * t[i].m.packet_size;
    return sum;
}

START_TEST(alone_gets_whole_window)
{
    struct memshare ms;
    struct member a;

    memshare_init(&ms, 100 * PACKET);
    member_init(&a, 96, PACKET);
    ck_assert_int_eq(memshare_join(&ms, &a.m), 0);
    ck_assert_uint_eq(a.m.granted, 96);
    ck_assert_uint_eq(a.calls, 0); /* the first grant is returned, not told */
    ck_assert_uint_eq(ms.in_use, 96 * PACKET);
    memshare_leave(&ms, &a.m);
    ck_assert_uint_eq(ms.in_use, 0);
    ck_assert_uint_eq(ms.count, 0);
    memshare_leave(&ms, &a.m); /* twice: nothing */
    ck_assert_uint_eq(ms.in_use, 0);
}
END_TEST

/* The failure this exists for: a cap with room for 4 full windows and 96
 * transfers that each want one. All 96 run, each with at least the
 * minimum (the cap holds 96 of those), and the grants stay within the
 * cap; the 97th is refused. */
START_TEST(many_share_a_cap_for_four)
{
    enum { N = 96, WANT = 96 };
    struct memshare ms;
    struct member *t = calloc(N, sizeof *t);

    memshare_init(&ms, 4 * WANT * PACKET);
    for (int i = 0; i < N; i++) {
        member_init(&t[i], WANT, PACKET);
        ck_assert_int_eq(memshare_join(&ms, &t[i].m), 0);
        ck_assert_uint_ge(t[i].m.granted, MEMSHARE_MIN_PACKETS);
        /* a newcomer gets at least its fair share of the cap */
        ck_assert_uint_ge(t[i].m.granted, (uint64_t)4 * WANT / (i + 1) < WANT
                                              ? (uint64_t)4 * WANT / (i + 1)
                                              : WANT);
        ck_assert_uint_le(granted_bytes(t, i + 1), ms.cap);
        ck_assert_uint_eq(granted_bytes(t, i + 1), ms.in_use);
    }
    struct member late;
    member_init(&late, WANT, PACKET);
    ck_assert_int_eq(memshare_join(&ms, &late.m), RPC2_ELIMIT);
    ck_assert_uint_eq(granted_bytes(t, N), ms.cap);
    /* each lowered transfer was told the window it now has */
    for (int i = 0; i < N; i++)
        if (t[i].calls > 0)
            ck_assert_uint_eq(t[i].told, window_of(&t[i]));
    ck_assert_uint_gt(ms.lowered, 0);
    /* the first ones no longer hold whole windows: 384 packets for 96 */
    ck_assert_uint_lt(t[0].m.granted, WANT);
    for (int i = 0; i < N; i++)
        memshare_leave(&ms, &t[i].m);
    ck_assert_uint_eq(ms.in_use, 0);
    free(t);
}
END_TEST

START_TEST(refused_below_the_minimum_leaves_others_alone)
{
    struct memshare ms;
    struct member a, b, c;

    memshare_init(&ms, 10 * PACKET); /* room for two minimum windows, not three */
    member_init(&a, 4, PACKET);
    member_init(&b, 4, PACKET);
    member_init(&c, 4, PACKET);
    ck_assert_int_eq(memshare_join(&ms, &a.m), 0);
    ck_assert_int_eq(memshare_join(&ms, &b.m), 0);
    ck_assert_int_eq(memshare_join(&ms, &c.m), RPC2_ELIMIT);
    ck_assert_uint_eq(c.m.granted, 0);
    ck_assert_uint_eq(a.m.granted, 4);
    ck_assert_uint_eq(b.m.granted, 4);
    ck_assert_uint_eq(a.calls + b.calls, 0);
    ck_assert_uint_eq(ms.count, 2);
    memshare_leave(&ms, &c.m); /* refused: not a member, nothing to give back */
    ck_assert_uint_eq(ms.in_use, 8 * PACKET);
}
END_TEST

START_TEST(windows_grow_back_as_others_end)
{
    enum { N = 10, WANT = 50 };
    struct memshare ms;
    struct member t[N];

    memshare_init(&ms, 2 * WANT * PACKET);
    for (int i = 0; i < N; i++) {
        member_init(&t[i], WANT, PACKET);
        ck_assert_int_eq(memshare_join(&ms, &t[i].m), 0);
    }
    ck_assert_uint_lt(t[0].m.granted, WANT);
    for (int i = 1; i < N; i++)
        memshare_leave(&ms, &t[i].m);
    ck_assert_uint_eq(t[0].m.granted, WANT);
    ck_assert_uint_eq(t[0].told, WANT);
    ck_assert_uint_eq(ms.in_use, WANT * PACKET);
}
END_TEST

/* When two remain, each is raised to half the cap before either takes
 * more than that. */
START_TEST(growth_is_shared)
{
    struct memshare ms;
    struct member t[4];

    memshare_init(&ms, 100 * PACKET);
    for (int i = 0; i < 4; i++) {
        member_init(&t[i], 100, PACKET);
        ck_assert_int_eq(memshare_join(&ms, &t[i].m), 0);
    }
    memshare_leave(&ms, &t[3].m);
    memshare_leave(&ms, &t[2].m);
    ck_assert_uint_ge(t[0].m.granted, 50);
    ck_assert_uint_ge(t[1].m.granted, 50);
    ck_assert_uint_le(granted_bytes(t, 2), ms.cap);
}
END_TEST

START_TEST(packet_sizes_mix)
{
    struct memshare ms;
    struct member big, small[20];

    memshare_init(&ms, 64 * 64000u);
    member_init(&big, 64, 64000);
    ck_assert_int_eq(memshare_join(&ms, &big.m), 0);
    ck_assert_uint_eq(big.m.granted, 64);
    for (int i = 0; i < 20; i++) {
        member_init(&small[i], 1000, 1400);
        ck_assert_int_eq(memshare_join(&ms, &small[i].m), 0);
        ck_assert_uint_le(ms.in_use, ms.cap);
    }
    ck_assert_uint_lt(big.m.granted, 64);
    ck_assert_uint_eq(big.told, big.m.granted);
    ck_assert_uint_eq(granted_bytes(&big, 1) + granted_bytes(small, 20), ms.in_use);
}
END_TEST

START_TEST(small_wants_are_met)
{
    struct memshare ms;
    struct member a;

    memshare_init(&ms, 4 * PACKET);
    member_init(&a, 2, PACKET);
    ck_assert_int_eq(memshare_join(&ms, &a.m), 0);
    ck_assert_uint_eq(a.m.granted, 2);
    member_init(&a, 0, PACKET);
    ck_assert_int_eq(memshare_join(&ms, &a.m), RPC2_EINVAL);
}
END_TEST

static Suite *memshare_suite(void)
{
    Suite *s = suite_create("memshare");
    TCase *tc = tcase_create("share");

    tcase_add_test(tc, alone_gets_whole_window);
    tcase_add_test(tc, many_share_a_cap_for_four);
    tcase_add_test(tc, refused_below_the_minimum_leaves_others_alone);
    tcase_add_test(tc, windows_grow_back_as_others_end);
    tcase_add_test(tc, growth_is_shared);
    tcase_add_test(tc, packet_sizes_mix);
    tcase_add_test(tc, small_wants_are_met);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(memshare_suite());
}
