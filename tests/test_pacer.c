/*
 * test_pacer.c - the pacer: the release lets out at most send_ahead packets
 * at once however long it sat idle, then one packet per packet_size/rate,
 * and never more than the rate over time; the delivery-rate policy doubles
 * per round trip in startup, settles near a bottleneck, keeps in flight to
 * about two bandwidth-delay products, ignores app-limited lows, respects
 * rate_max_bps and the window, and backs off on a timeout.
 */
#include <stdlib.h>

#include <check.h>

#include "pacer.h"

#define P 1000u
#define MS 1000u
#define SEC 1000000u

static struct pacer make(uint32_t send_ahead, uint32_t window, uint64_t rate_max)
{
    struct pacer p;
    struct pacer_params pp = {
        .packet_size = P,
        .send_ahead = send_ahead,
        .window = window,
        .rate_max_bps = rate_max,
        .initial_rtt_us = 100 * MS,
    };

    pacer_init(&p, &pacer_delivery_ops, &pp, 0);
    return p;
}

/* Sends full packets while the pacer allows, at most limit; returns how many. */
static unsigned drain(struct pacer *p, uint64_t now, unsigned limit)
{
    unsigned n = 0;

    while (n < limit && pacer_may_send(p, now)) {
        pacer_sent(p, P, now);
        n++;
    }
    return n;
}

START_TEST(first_burst_is_send_ahead)
{
    struct pacer p = make(8, 1000, 0);

    ck_assert_str_eq(p.ops->name, "delivery");
    /* 10 packets per 100 ms initial RTT: 100 kB/s. */
    ck_assert_uint_eq(pacer_rate(&p), 100000);
    ck_assert_uint_eq(pacer_cwnd(&p), 1000);
    ck_assert_uint_eq(drain(&p, 0, 100), 8);
    ck_assert(!pacer_may_send(&p, 0));
    /* The bucket is empty: one byte's worth (10 us) lets the next go, which
     * leaves a packet's debt: 10 ms to the one after. */
    ck_assert_uint_eq(pacer_next_release(&p, 0), 10);
    ck_assert_uint_eq(drain(&p, 10, 100), 1);
    ck_assert_uint_eq(pacer_next_release(&p, 10), 10 + 10 * MS);
}
END_TEST

START_TEST(idle_never_releases_more_than_a_burst)
{
    struct pacer p = make(4, 1000, 0);

    ck_assert_uint_eq(drain(&p, 0, 100), 4);
    ck_assert_uint_eq(drain(&p, 3600ull * SEC, 100), 4); /* an hour later */
    ck_assert_uint_eq(drain(&p, 3600ull * SEC, 100), 0);
}
END_TEST

/* Polled at its own release times, the pacer keeps to the rate. */
static uint64_t bytes_in_one_second(struct pacer *p, uint64_t start)
{
    uint64_t now = start, sent = 0;

    while (now < start + SEC) {
        sent += (uint64_t)drain(p, now, 1000) * P;
        now = pacer_next_release(p, now);
    }
    return sent;
}

START_TEST(rate_is_kept_over_time)
{
    struct pacer p = make(8, 1000, 0);
    uint64_t sent;

    drain(&p, 0, 100);
    sent = bytes_in_one_second(&p, 0);
    ck_assert_uint_le(sent, 100000 + P);
    ck_assert_uint_ge(sent, 100000 - 2 * P);
}
END_TEST

/* ---- the delivery-rate policy -------------------------------------------- */

/*
 * One round trip through a bottleneck: the source sends at its rate for an
 * RTT (or at most cwnd packets), the path delivers at most bottleneck, and
 * the round's last ACK carries the sample.
 */
struct path {
    uint64_t bottleneck, delivered, now;
    uint32_t rtt_us;
};

static void one_round(struct pacer *p, struct path *path, int app_limited)
{
    uint64_t offered = pacer_rate(p) * path->rtt_us / SEC;
    uint64_t cwnd_bytes = (uint64_t)pacer_cwnd(p) * P;
    uint64_t capacity = path->bottleneck * path->rtt_us / SEC;
    uint64_t got = offered < capacity ? offered : capacity;
    struct pacer_sample s;

    if (got > cwnd_bytes)
        got = cwnd_bytes;
    s = (struct pacer_sample){
        .delivered = got,
        .interval_us = path->rtt_us,
        .prior_delivered = path->delivered,
        .total_delivered = path->delivered + got,
        .rtt_us = path->rtt_us,
        .newly_acked = (uint32_t)(got / P),
        .app_limited = app_limited,
    };
    path->delivered += got;
    path->now += path->rtt_us;
    pacer_on_ack(p, &s, path->now);
}

START_TEST(startup_doubles_then_settles)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 50000000, .rtt_us = 10 * MS};
    uint64_t prev;
    int round;

    /* First sample: what the initial rate delivered; then doubling. */
    one_round(&p, &path, 0);
    prev = pacer_rate(&p);
    ck_assert_uint_eq(prev, 2 * 100000);
    for (round = 0; round < 6; round++) {
        one_round(&p, &path, 0);
        ck_assert_uint_eq(pacer_rate(&p), 2 * prev);
        prev = pacer_rate(&p);
    }
    ck_assert(!p.policy.delivery.pipe_full);
    /* 12.8 MB/s now; two more doublings reach the 50 MB/s bottleneck. */
    for (round = 0; round < 20; round++)
        one_round(&p, &path, 0);
    ck_assert(p.policy.delivery.pipe_full);
    ck_assert_uint_eq(p.policy.delivery.min_rtt_us, 10 * MS);
    /* The gain cycle: over a cycle the rate averages the bottleneck. */
    {
        uint64_t sum = 0;

        for (round = 0; round < 8; round++) {
            one_round(&p, &path, 0);
            sum += pacer_rate(&p);
            ck_assert_uint_le(pacer_rate(&p), 50000000ull * 5 / 4);
            ck_assert_uint_ge(pacer_rate(&p), 50000000ull * 3 / 4);
        }
        ck_assert_uint_eq(sum / 8, 50000000);
    }
    /* In flight: two BDPs = 2 * 50 MB/s * 10 ms = 1000 packets. */
    ck_assert_uint_eq(pacer_cwnd(&p), 1000);
}
END_TEST

START_TEST(app_limited_lows_are_ignored)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 1000000, .rtt_us = 10 * MS};
    uint64_t rate;
    int round;

    for (round = 0; round < 30; round++)
        one_round(&p, &path, 0);
    rate = pacer_rate(&p);
    ck_assert_uint_ge(rate, 750000);
    /* A source with nothing to send delivers little; the estimate stands. */
    path.bottleneck = 10000;
    for (round = 0; round < 20; round++) {
        one_round(&p, &path, 1);
        ck_assert_uint_ge(pacer_rate(&p), 750000);
    }
    /* The same lows, not app-limited, age the old maximum out. */
    for (round = 0; round < 20; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_le(pacer_rate(&p), 20000);
}
END_TEST

START_TEST(ceiling_and_window_apply)
{
    struct pacer p = make(8, 64, 2000000);
    struct path path = {.bottleneck = 1000000000, .rtt_us = 10 * MS};
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_eq(pacer_rate(&p), 2000000);
    ck_assert_uint_le(pacer_cwnd(&p), 64);
    /* At the ceiling, one second lets out about two megabytes. */
    drain(&p, path.now, 1000);
    ck_assert_uint_le(bytes_in_one_second(&p, path.now), 2000000 + P);
}
END_TEST

START_TEST(cwnd_has_a_floor)
{
    struct pacer p = make(8, 1000, 0);
    struct path path = {.bottleneck = 100000, .rtt_us = 1 * MS};
    int round;

    /* 100 kB/s * 1 ms is a tenth of a packet: the floor holds. */
    for (round = 0; round < 30; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_eq(pacer_cwnd(&p), 2 * 8 + 4);
}
END_TEST

/* RTT under load (a batched path) raises the in-flight limit; the minimum stays. */
START_TEST(cwnd_follows_the_smoothed_rtt)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 50000000, .rtt_us = 10 * MS};
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_eq(pacer_cwnd(&p), 1000);
    path.rtt_us = 20 * MS;
    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_ge(pacer_cwnd(&p), 1990);
    ck_assert_uint_le(pacer_cwnd(&p), 2000);
    ck_assert_uint_eq(p.policy.delivery.min_rtt_us, 10 * MS);
}
END_TEST

START_TEST(timeout_halves_and_restarts)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 10000000, .rtt_us = 10 * MS};
    uint64_t before;
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    ck_assert(p.policy.delivery.pipe_full);
    before = p.policy.delivery.bw_by_round[p.policy.delivery.round_slot];
    pacer_on_timeout(&p, path.now);
    ck_assert(!p.policy.delivery.pipe_full);
    ck_assert_uint_le(pacer_rate(&p), before);
    ck_assert_uint_eq(pacer_cwnd(&p), 100000);
    /* Loss alone changes nothing in this policy. */
    before = pacer_rate(&p);
    pacer_on_loss(&p, 10, path.now);
    ck_assert_uint_eq(pacer_rate(&p), before);
    /* Startup brings it back. */
    for (round = 0; round < 10; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_ge(pacer_rate(&p), 10000000);
}
END_TEST

static Suite *pacer_suite(void)
{
    Suite *s = suite_create("pacer");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, first_burst_is_send_ahead);
    tcase_add_test(tc, idle_never_releases_more_than_a_burst);
    tcase_add_test(tc, rate_is_kept_over_time);
    tcase_add_test(tc, startup_doubles_then_settles);
    tcase_add_test(tc, app_limited_lows_are_ignored);
    tcase_add_test(tc, ceiling_and_window_apply);
    tcase_add_test(tc, cwnd_has_a_floor);
    tcase_add_test(tc, cwnd_follows_the_smoothed_rtt);
    tcase_add_test(tc, timeout_halves_and_restarts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pacer_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
