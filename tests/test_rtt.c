/*
 * test_rtt.c - the RTT estimator against numbers worked out by hand from
 * RFC 6298, so a change to its rounding or gains shows up as a failed row
 * instead of as retransmission storms on a real link.
 */
#include <stdlib.h>

#include <check.h>

#include "rtt.h"
#include "check_run.h"

#define MS 1000u
#define SEC 1000000u

/* A microsecond clock that wraps like the 32-bit timestamps on the wire. */
struct fake_clock {
    uint32_t now_us;
};

static void tick(struct fake_clock *c, uint32_t us)
{
    c->now_us += us;
}

START_TEST(before_any_sample_the_timeout_is_initial)
{
    struct rtt r;

    rtt_init(&r, 1 * SEC, 200 * MS, 60 * SEC);
    ck_assert_uint_eq(r.srtt_us, 0);
    ck_assert_uint_eq(rtt_timeout(&r), 1 * SEC);
}
END_TEST

/* Each row feeds one sample and states the estimator's state after it. */
static const struct {
    uint32_t sample, srtt, rttvar, timeout;
} gains[] = {
    /* 1: first sample: srtt = s, rttvar = s / 2, timeout srtt + 4 rttvar */
    {100000, 100000, 50000, 300000},
    /* 2: same again: the variance decays by 3/4 */
    {100000, 100000, 37500, 250000},
    /* 3: slower: rttvar (3 * 37500 + 40000) / 4 up, srtt (7 * 100000 + 140000) / 8 */
    {140000, 105000, 38125, 257500},
    /* 4: faster: delta 45000 raises rttvar to 39844 (rounded up), srtt rounds down */
    {60000, 99375, 39844, 258751},
};

START_TEST(gains_follow_rfc6298)
{
    struct rtt r;

    rtt_init(&r, 1 * SEC, 1 * MS, 60 * SEC);
    for (size_t i = 0; i < sizeof(gains) / sizeof(gains[0]); i++) {
        rtt_sample(&r, gains[i].sample);
        ck_assert_msg(r.srtt_us == gains[i].srtt, "row %zu: srtt %u", i + 1, r.srtt_us);
        ck_assert_msg(r.rttvar_us == gains[i].rttvar, "row %zu: rttvar %u", i + 1, r.rttvar_us);
        ck_assert_msg(rtt_timeout(&r) == gains[i].timeout, "row %zu: timeout %u", i + 1,
                      rtt_timeout(&r));
    }
}
END_TEST

START_TEST(converges_to_a_steady_rtt)
{
    struct rtt r;

    /* Start far above, then far below: both must land exactly on 20 ms. */
    rtt_init(&r, 1 * SEC, 1 * MS, 60 * SEC);
    rtt_sample(&r, 900 * MS);
    for (int i = 0; i < 200; i++)
        rtt_sample(&r, 20 * MS);
    ck_assert_uint_eq(r.srtt_us, 20 * MS);
    ck_assert_uint_eq(r.rttvar_us, 0);
    /* No variance left: the granularity floor keeps a margin over srtt. */
    ck_assert_uint_eq(rtt_timeout(&r), 21 * MS);

    rtt_init(&r, 1 * SEC, 1 * MS, 60 * SEC);
    rtt_sample(&r, 1);
    for (int i = 0; i < 200; i++)
        rtt_sample(&r, 20 * MS);
    ck_assert_uint_eq(r.srtt_us, 20 * MS);
    ck_assert_uint_eq(r.rttvar_us, 0);
}
END_TEST

START_TEST(variance_reacts_to_a_spike)
{
    struct rtt r;

    rtt_init(&r, 1 * SEC, 1 * MS, 60 * SEC);
    for (int i = 0; i < 200; i++)
        rtt_sample(&r, 10 * MS);
    ck_assert_uint_eq(rtt_timeout(&r), 11 * MS);

    /* One 50 ms sample: the variance, not srtt, carries most of the jump. */
    rtt_sample(&r, 50 * MS);
    ck_assert_uint_eq(r.rttvar_us, 10 * MS);
    ck_assert_uint_eq(r.srtt_us, 15 * MS);
    ck_assert_uint_eq(rtt_timeout(&r), 55 * MS);
    ck_assert_uint_gt(rtt_timeout(&r), 50 * MS);

    /* Back to steady: the margin shrinks again. */
    uint32_t after_spike = rtt_timeout(&r);

    for (int i = 0; i < 5; i++)
        rtt_sample(&r, 10 * MS);
    ck_assert_uint_lt(rtt_timeout(&r), after_spike);
}
END_TEST

START_TEST(clamps_at_min_and_max)
{
    struct rtt r;

    /* Loopback-fast samples never go below the configured minimum. */
    rtt_init(&r, 1 * SEC, 200 * MS, 2 * SEC);
    for (int i = 0; i < 50; i++)
        rtt_sample(&r, 14);
    ck_assert_uint_eq(rtt_timeout(&r), 200 * MS);

    /* A 1.5 s sample would give 4.5 s; the maximum wins. */
    rtt_init(&r, 1 * SEC, 200 * MS, 2 * SEC);
    rtt_sample(&r, 1500 * MS);
    ck_assert_uint_eq(rtt_timeout(&r), 2 * SEC);

    /* The largest values do not overflow on the way. */
    rtt_init(&r, 1 * SEC, 0, UINT32_MAX);
    rtt_sample(&r, UINT32_MAX);
    ck_assert_uint_eq(rtt_timeout(&r), UINT32_MAX);
    rtt_sample(&r, 1);
    ck_assert_uint_eq(rtt_timeout(&r), UINT32_MAX);
}
END_TEST

START_TEST(a_zero_sample_still_counts)
{
    struct rtt r;

    rtt_init(&r, 1 * SEC, 0, 60 * SEC);
    rtt_sample(&r, 0);
    ck_assert_uint_ne(r.srtt_us, 0);
    ck_assert_uint_lt(rtt_timeout(&r), 1 * SEC);
}
END_TEST

START_TEST(backoff_doubles_saturates_and_resets)
{
    static const uint32_t want[] = {21 * MS, 42 * MS, 84 * MS, 168 * MS, 200 * MS, 200 * MS};
    struct rtt r;

    rtt_init(&r, 1 * SEC, 1 * MS, 200 * MS);
    for (int i = 0; i < 200; i++)
        rtt_sample(&r, 20 * MS);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_msg(rtt_timeout(&r) == want[i], "step %zu: %u", i, rtt_timeout(&r));
        rtt_backoff(&r);
    }
    /* The counter stops where the timeout stops. */
    ck_assert_uint_eq(r.backoff, 4);
    for (int i = 0; i < 1000; i++)
        rtt_backoff(&r);
    ck_assert_uint_eq(rtt_timeout(&r), 200 * MS);
    ck_assert_uint_eq(r.backoff, 4);

    rtt_sample(&r, 20 * MS);
    ck_assert_uint_eq(r.backoff, 0);
    ck_assert_uint_eq(rtt_timeout(&r), 21 * MS);
}
END_TEST

START_TEST(backoff_before_any_sample_and_near_uint32_max)
{
    struct rtt r;

    rtt_init(&r, 1 * SEC, 200 * MS, 5 * SEC);
    rtt_backoff(&r);
    ck_assert_uint_eq(rtt_timeout(&r), 2 * SEC);
    rtt_backoff(&r);
    rtt_backoff(&r);
    ck_assert_uint_eq(rtt_timeout(&r), 5 * SEC);

    /* 3e9 doubled does not fit in 32 bits: it saturates at max instead. */
    rtt_init(&r, 3000000000u, 0, UINT32_MAX);
    rtt_backoff(&r);
    ck_assert_uint_eq(rtt_timeout(&r), UINT32_MAX);

    /* A zero timeout cannot double its way up; the counter still stops. */
    rtt_init(&r, 0, 0, 10 * SEC);
    for (int i = 0; i < 100; i++)
        rtt_backoff(&r);
    ck_assert_uint_le(rtt_timeout(&r), 10 * SEC);
}
END_TEST

START_TEST(elapsed_is_wrap_safe)
{
    static const struct {
        uint32_t now, echoed, want;
    } rows[] = {
        /* 1 */ {1000, 400, 600},
        /* 2 */ {5, 5, 0},
        /* 3 */ {0x10, 0xfffffff0u, 0x20},
        /* 4 */ {0, 0xffffffffu, 1},
        /* 5 */ {0x7fffffffu, 0, 0x7fffffffu},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_msg(rtt_ts_elapsed(rows[i].now, rows[i].echoed) == rows[i].want, "row %zu",
                      i + 1);
}
END_TEST

START_TEST(samples_from_a_wrapping_clock)
{
    struct fake_clock clock = {.now_us = 0xffffffffu - 2 * MS};
    struct rtt r;

    rtt_init(&r, 1 * SEC, 1 * MS, 60 * SEC);
    for (int i = 0; i < 10; i++) {
        uint32_t sent = clock.now_us;

        tick(&clock, 3 * MS); /* the first round trip crosses the wrap */
        rtt_sample(&r, rtt_ts_elapsed(clock.now_us, sent));
        tick(&clock, 7 * MS);
    }
    ck_assert_uint_eq(r.srtt_us, 3 * MS);
}
END_TEST

static Suite *rtt_suite(void)
{
    Suite *s = suite_create("rtt");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, before_any_sample_the_timeout_is_initial);
    tcase_add_test(tc, gains_follow_rfc6298);
    tcase_add_test(tc, converges_to_a_steady_rtt);
    tcase_add_test(tc, variance_reacts_to_a_spike);
    tcase_add_test(tc, clamps_at_min_and_max);
    tcase_add_test(tc, a_zero_sample_still_counts);
    tcase_add_test(tc, backoff_doubles_saturates_and_resets);
    tcase_add_test(tc, backoff_before_any_sample_and_near_uint32_max);
    tcase_add_test(tc, elapsed_is_wrap_safe);
    tcase_add_test(tc, samples_from_a_wrapping_clock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(rtt_suite());
}
