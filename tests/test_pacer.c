/*
 * test_pacer.c - the pacer: the release lets out at most send_ahead packets
 * at once however long it sat idle (more at rates that would outrun them
 * between two of the loop's millisecond timer ticks), then one packet per
 * packet_size/rate, and never more than the rate over time; the adaptive policy (cc_adaptive.c)
 * more than doubles per round trip in startup, settles near a bottleneck,
 * keeps in flight to about two bandwidth-delay products of the minimum
 * RTT, ignores app-limited lows, respects rate_max_bps and the window, and
 * halves its estimate on a confirmed timeout; the target and minimum rates
 * bound every policy; fixed holds its rate; background shrinks when a
 * queue builds. (tests/test_cc.c runs them through a modelled path.)
 */
#include <stdlib.h>

#include <check.h>

#include "check_run.h"
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

    pacer_init(&p, &pacer_adaptive_ops, &pp, 0);
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

    ck_assert_str_eq(p.ops->name, "adaptive");
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

/* A sender that waited for a release and woke far too late fell behind its
 * rate (its samples are its own pace); one idle for want of data did not. */
START_TEST(late_wake_ups_are_noticed)
{
    struct pacer p = make(8, 1000, 0);

    drain(&p, 0, 100);
    ck_assert(!pacer_fell_behind(&p));
    (void)pacer_next_release(&p, 0);
    drain(&p, SEC, 100); /* due after 10 us, woke after a second */
    ck_assert(pacer_fell_behind(&p));
    ck_assert(!pacer_fell_behind(&p)); /* reported once */
    drain(&p, 2 * SEC, 100); /* nobody waited: idle, not late */
    ck_assert(!pacer_fell_behind(&p));
}
END_TEST

/* Polled as libev's epoll backend polls it: a release due later than now
 * comes after whole milliseconds, at least one (plus late), never sooner. */
static uint64_t bytes_in_one_second_of_coarse_timers(struct pacer *p, uint64_t late_us)
{
    uint64_t now = 0, sent = 0;

    while (now < SEC) {
        uint64_t release;

        sent += (uint64_t)drain(p, now, 100000) * P;
        release = pacer_next_release(p, now);
        now += ((release - now + MS - 1) / MS > 0 ? (release - now + MS - 1) / MS : 1) * MS;
        now += late_us;
    }
    return sent;
}

/* 1 Gbit/s is 125 packets of 1000 bytes per millisecond: bursts of
 * send_ahead (48) once per timer tick would cap it near 400 Mbit/s. */
START_TEST(a_fast_rate_outlasts_millisecond_timers)
{
    struct pacer p = make(48, 100000, 0);
    uint64_t sent;

    pacer_set_rates(&p, 125000000, 0, 0);
    pacer_set_policy(&p, &pacer_fixed_ops, 0);
    ck_assert_uint_ge(pacer_burst(&p), 200);
    sent = bytes_in_one_second_of_coarse_timers(&p, 0);
    ck_assert_uint_ge(sent, 125000000 / 100 * 97);
    ck_assert_uint_le(sent, 125000000 + (uint64_t)pacer_burst(&p) * P);
    /* Each wake-up 0.8 ms later than asked: the bucket still holds it. */
    p = make(48, 100000, 0);
    pacer_set_rates(&p, 125000000, 0, 0);
    pacer_set_policy(&p, &pacer_fixed_ops, 0);
    sent = bytes_in_one_second_of_coarse_timers(&p, 800);
    ck_assert_uint_ge(sent, 125000000 / 100 * 97);
}
END_TEST

/* Slow rates keep bursts of send_ahead; the fastest are bounded all the same. */
START_TEST(bursts_scale_with_the_rate_within_bounds)
{
    struct pacer p = make(8, 100000, 0);

    pacer_set_policy(&p, &pacer_fixed_ops, 0);
    pacer_set_rates(&p, 1000000, 0, 0); /* 2 ms of it: 2 packets */
    ck_assert_uint_eq(pacer_burst(&p), 8);
    pacer_set_rates(&p, 50000000, 0, 0); /* 2 ms: 100 packets */
    ck_assert_uint_eq(pacer_burst(&p), 100);
    pacer_set_rates(&p, 100000000000ull, 0, 0);
    ck_assert_uint_le(pacer_burst(&p), (1u << 20) / P + 1);
    ck_assert_uint_eq(drain(&p, SEC, 100000), pacer_burst(&p));
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
        .srtt_us = path->rtt_us,
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

    /* First sample: what the initial rate delivered; then 2.89 times per round. */
    one_round(&p, &path, 0);
    prev = pacer_rate(&p);
    ck_assert_uint_eq(prev, 100000 * 2885 / 1000);
    for (round = 0; round < 5; round++) {
        one_round(&p, &path, 0);
        ck_assert_uint_ge(pacer_rate(&p), 2 * prev);
        prev = pacer_rate(&p);
    }
    ck_assert_int_eq(p.policy.adaptive.mode, 0); /* still in startup */
    for (round = 0; round < 20; round++)
        one_round(&p, &path, 0);
    ck_assert_int_ne(p.policy.adaptive.mode, 0);
    ck_assert_uint_eq(p.policy.adaptive.min_rtt_us, 10 * MS);
    /* The gain cycle: between 3/4 and 5/4 of the bottleneck, 1 most of the time. */
    for (round = 0; round < 16; round++) {
        one_round(&p, &path, 0);
        ck_assert_uint_le(pacer_rate(&p), 50000000ull * 5 / 4);
        ck_assert_uint_ge(pacer_rate(&p), 50000000ull * 3 / 4);
    }
    /* In flight: two BDPs = 2 * 50 MB/s * 10 ms = 1000 packets, plus what
     * a round's ACKs, all in one, ran ahead of the rate. */
    ck_assert_uint_ge(pacer_cwnd(&p), 1000);
    ck_assert_uint_le(pacer_cwnd(&p), 1600);
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

/* RTT under load (a queue) does not move the minimum the in-flight limit
 * comes from, so a queue cannot feed itself (tests/test_cc.c shows the
 * queue staying short on a modelled path). */
START_TEST(cwnd_follows_the_minimum_rtt)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 50000000, .rtt_us = 10 * MS};
    uint32_t before;
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    before = pacer_cwnd(&p);
    path.rtt_us = 20 * MS;
    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_eq(p.policy.adaptive.min_rtt_us, 10 * MS);
    ck_assert_uint_ge(before, 1000);
}
END_TEST

/* A queue that stood for ten seconds is not taken for the path's delay:
 * probe_rtt holds in flight to half the BDP of the minimum it had (not of
 * the queued RTT, which would keep the queue through the probe), and the
 * minimum the probe measures replaces it. */
START_TEST(probe_rtt_empties_a_standing_queue)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 50000000, .rtt_us = 10 * MS};
    uint32_t bdp_packets = (uint32_t)(50000000ull * 10 * MS / SEC / P);
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    path.rtt_us = 20 * MS; /* a queue of 10 ms stands */
    for (round = 0; round < 1000 && p.policy.adaptive.mode != 3; round++)
        one_round(&p, &path, 0);
    ck_assert_int_eq(p.policy.adaptive.mode, 3); /* probe_rtt */
    ck_assert_uint_le(pacer_cwnd(&p), bdp_packets / 2 + 1);
    path.rtt_us = 10 * MS; /* in flight fell: the queue is gone */
    for (round = 0; round < 100 && p.policy.adaptive.mode == 3; round++)
        one_round(&p, &path, 0);
    ck_assert_int_eq(p.policy.adaptive.mode, 2); /* probe_bw */
    ck_assert_uint_eq(p.policy.adaptive.min_rtt_us, 10 * MS);
}
END_TEST

START_TEST(confirmed_timeout_halves_the_estimate)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 10000000, .rtt_us = 10 * MS};
    uint64_t before;
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    before = pacer_rate(&p);
    pacer_on_timeout(&p, path.now);
    ck_assert_uint_le(pacer_rate(&p), before * 5 / 8);
    /* Loss alone changes nothing in this policy. */
    before = pacer_rate(&p);
    pacer_on_loss(&p, 10, path.now);
    ck_assert_uint_eq(pacer_rate(&p), before);
    /* The path brings it back. */
    for (round = 0; round < 20; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_ge(pacer_rate(&p), 10000000ull * 3 / 4);
}
END_TEST

/* A target is a ceiling, a minimum a floor; raising the ceiling restarts
 * the probe for bandwidth. */
START_TEST(target_and_minimum_bound_the_policy)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 10000000, .rtt_us = 10 * MS};
    int round;

    for (round = 0; round < 40; round++)
        one_round(&p, &path, 0);
    pacer_set_rates(&p, 2000000, 0, path.now);
    ck_assert_uint_eq(pacer_rate(&p), 2000000);
    for (round = 0; round < 20; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_le(pacer_rate(&p), 2000000);
    pacer_set_rates(&p, 0, 0, path.now);
    ck_assert_int_eq(p.policy.adaptive.mode, 0); /* startup again */
    for (round = 0; round < 6; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_ge(pacer_rate(&p), 10000000ull * 3 / 4);
    /* A floor holds whatever the path says, with room in flight for it. */
    path.bottleneck = 100000;
    pacer_set_rates(&p, 0, 5000000, path.now);
    for (round = 0; round < 20; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_eq(pacer_rate(&p), 5000000);
    ck_assert_uint_ge(pacer_cwnd(&p), 2 * 5000000 / 100 / P);
    /* A floor above the ceiling is the ceiling. */
    pacer_set_rates(&p, 1000000, 5000000, path.now);
    ck_assert_uint_eq(pacer_rate(&p), 1000000);
}
END_TEST

START_TEST(fixed_is_its_target)
{
    struct pacer p = make(8, 500, 0);
    struct path path = {.bottleneck = 1000000, .rtt_us = 10 * MS};
    int round;

    pacer_set_rates(&p, 3000000, 0, 0);
    pacer_set_policy(&p, &pacer_fixed_ops, 0);
    ck_assert_str_eq(p.ops->name, "fixed");
    for (round = 0; round < 10; round++) {
        one_round(&p, &path, 0);
        pacer_on_loss(&p, 100, path.now);
        pacer_on_timeout(&p, path.now);
        ck_assert_uint_eq(pacer_rate(&p), 3000000);
        ck_assert_uint_eq(pacer_cwnd(&p), 500);
    }
    pacer_set_rates(&p, 4000000, 0, path.now);
    ck_assert_uint_eq(pacer_rate(&p), 4000000);
    pacer_set_rates(&p, 1000000, 0, path.now);
    ck_assert_uint_eq(pacer_rate(&p), 1000000);
}
END_TEST

/* Background: a queue beyond its target shrinks it; none lets it grow. */
START_TEST(background_shrinks_with_the_queue)
{
    struct pacer p = make(8, 100000, 0);
    struct path path = {.bottleneck = 10000000, .rtt_us = 20 * MS};
    uint32_t grown;
    int round;

    pacer_set_policy(&p, &pacer_background_ops, 0);
    ck_assert_str_eq(p.ops->name, "background");
    for (round = 0; round < 30; round++)
        one_round(&p, &path, 0);
    grown = pacer_cwnd(&p);
    ck_assert_uint_gt(grown, 100);
    /* Another flow queues 30 ms: past a 5 ms target, it gives way. */
    path.rtt_us = 50 * MS;
    for (round = 0; round < 30; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_le(pacer_cwnd(&p), 4);
    /* The queue goes: it grows again. */
    path.rtt_us = 20 * MS;
    for (round = 0; round < 30; round++)
        one_round(&p, &path, 0);
    ck_assert_uint_gt(pacer_cwnd(&p), 10);
}
END_TEST

static Suite *pacer_suite(void)
{
    Suite *s = suite_create("pacer");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, first_burst_is_send_ahead);
    tcase_add_test(tc, idle_never_releases_more_than_a_burst);
    tcase_add_test(tc, rate_is_kept_over_time);
    tcase_add_test(tc, late_wake_ups_are_noticed);
    tcase_add_test(tc, a_fast_rate_outlasts_millisecond_timers);
    tcase_add_test(tc, bursts_scale_with_the_rate_within_bounds);
    tcase_add_test(tc, startup_doubles_then_settles);
    tcase_add_test(tc, app_limited_lows_are_ignored);
    tcase_add_test(tc, ceiling_and_window_apply);
    tcase_add_test(tc, cwnd_has_a_floor);
    tcase_add_test(tc, cwnd_follows_the_minimum_rtt);
    tcase_add_test(tc, probe_rtt_empties_a_standing_queue);
    tcase_add_test(tc, confirmed_timeout_halves_the_estimate);
    tcase_add_test(tc, target_and_minimum_bound_the_policy);
    tcase_add_test(tc, fixed_is_its_target);
    tcase_add_test(tc, background_shrinks_with_the_queue);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(pacer_suite());
}
