/*
 * test_cc.c - loss recovery and the rate policies through a modelled
 * bottleneck (tests/ccsim.c over tests/bottleneck.c: a link of a given rate
 * with a drop-tail queue of one bandwidth-delay product, propagation delay,
 * random loss both ways), with the fake clock: seconds of a 1 Gbit/s path
 * take a fraction of a second.
 *
 * For each of the five profiles of issue 11 (a: 100 Mbit/s 10 ms RTT;
 * b: 100 Mbit/s 100 ms; c: b with 1% loss; d: 100 Mbit/s 200 ms 3% loss;
 * e: 1 Gbit/s 20 ms 0.1% loss) the default policy reaches 0.9 of the
 * bottleneck (0.86 on d, whose ceiling is 0.915) within a bounded number
 * of round trips and stays
 * there, no probe timeout fires while ACKs arrive, and the bytes sent per
 * byte delivered stay within the loss rate + 3%; on a and b, with ACKs that
 * come late, the queue it builds stays short. Then: a rate change shows
 * within two round trips, the fixed policy holds its rate through loss,
 * the background policy yields to a competing TCP Reno flow and fills the
 * link alone, and a sink's wish reaches its source within its limits.
 *
 * SFTP_TEST_TRACE=1 prints what each run measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

#include "ccsim.h"
#include "check_run.h"
#include "wire.h"

#define ACK_JITTER_US 1000u

static const struct profile profiles[] = {
    {"a", 12500000, 10 * MS, 0, 3 * SEC, 0.9},
    {"b", 12500000, 100 * MS, 0, 8 * SEC, 0.9},
    {"c", 12500000, 100 * MS, 0.01, 8 * SEC, 0.9},
    /* 3 % loss each way: a DATA carries 1400 of the 1484 bytes it costs the
     * link, so no sender delivers more than 0.943 x 0.97 = 0.915 of it; the
     * issue asks 0.85 of a real link. Pacing at the delivery rate (0.97 of
     * the pace) gave 0.874 here, and 0.850 with probe_rtt at four packets. */
    {"d", 12500000, 200 * MS, 0.03, 12 * SEC, 0.86},
    {"e", 125000000, 20 * MS, 0.001, 2 * SEC, 0.9},
};

/* ---- the five profiles ------------------------------------------------------ */

START_TEST(profiles_fill_the_bottleneck)
{
    const struct profile *pr = &profiles[_i];
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t span = pr->rtt_us * 4 > 100 * MS ? pr->rtt_us * 4 : 100 * MS;
    uint64_t reached, delivered;
    double steady, efficiency, rtts;
    const struct sftp_counters *c;

    sim_init(&s, pr, 11 + (uint64_t)_i);
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, s.end);
    c = sftp_source_counters(f->src);
    reached = reached_at(&s, f, pr->share * (double)pr->rate, span);
    rtts = reached == NEVER ? -1 : (double)(reached - START_TIME) / pr->rtt_us;
    steady = reached == NEVER ? 0 : rate_of(&s, f->written_by_bucket, reached, s.end) / pr->rate;
    delivered = f->written;
    efficiency = (double)f->data_bytes_sent / (double)delivered;
    if (tracing())
        fprintf(stderr,
                "profile %s: 0.%.0f reached after %.1f RTTs, then %.3f of the link; sent/delivered "
                "%.4f (loss %.3f); retx %llu lost %llu timeouts %llu (confirmed %llu, with acks "
                "%llu); queue drops %llu max queue %llu B; srtt %u\n",
                pr->name, pr->share * 100, rtts, steady, efficiency, pr->loss,
                (unsigned long long)c->data_retransmitted, (unsigned long long)c->data_lost,
                (unsigned long long)c->timeouts, (unsigned long long)c->timeouts_confirmed,
                (unsigned long long)f->timeouts_with_acks, (unsigned long long)s.fwd.dropped_full,
                (unsigned long long)s.fwd.max_queued, sftp_source_srtt_us(f->src));
    ck_assert_int_eq(sftp_source_state(f->src), SFTP_RUNNING);
    ck_assert_msg(reached != NEVER, "profile %s never reached %.2f of the link", pr->name,
                  pr->share);
    /* Startup doubles per round trip: from ten packets to a BDP of 1,786
     * (profile e) takes about eight; drain and the ACK clock add a few. */
    ck_assert_msg(rtts <= 40 + 100.0 * MS / pr->rtt_us, "profile %s: %.1f round trips", pr->name,
                  rtts);
    ck_assert_msg(steady >= pr->share, "profile %s: %.3f of the link after reaching it", pr->name,
                  steady);
    ck_assert_uint_eq(f->timeouts_with_acks, 0);
    ck_assert_msg(efficiency <= 1.0 + pr->loss + 0.03, "profile %s: sent/delivered %.4f", pr->name,
                  efficiency);
    sim_free(&s);
}
END_TEST

/* Every ten seconds without a new smallest RTT the policy lowers what it
 * has in flight so the path's own delay shows (probe_rtt). Down to four
 * packets that costs a quarter to a third of a second of nothing per ten
 * at 100 ms; at half the BDP the queue still empties and the transfer keeps
 * half its rate. Profile b for 25 s: no second after startup delivers under
 * 0.75 of the link (with four packets the worst was 0.66), and the whole run
 * stays at 0.9 of it. */
START_TEST(probe_rtt_keeps_half_the_rate)
{
    struct profile pr = profiles[1];
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t t, from;
    double worst = 1e30, whole;

    pr.run_us = 25 * SEC;
    sim_init(&s, &pr, 5);
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, s.end);
    from = reached_at(&s, f, pr.share * (double)pr.rate, pr.rtt_us * 4);
    ck_assert_msg(from != NEVER, "never reached %.2f of the link", pr.share);
    for (t = from; t + SEC <= s.end; t += BUCKET_US) {
        double r = rate_of(&s, f->written_by_bucket, t, t + SEC) / (double)pr.rate;

        if (r < worst)
            worst = r;
    }
    whole = rate_of(&s, f->written_by_bucket, from, s.end) / (double)pr.rate;
    if (tracing())
        fprintf(stderr, "probe_rtt: from %.1f s, worst second %.3f of the link, %.3f overall\n",
                (double)(from - START_TIME) / SEC, worst, whole);
    ck_assert_msg(worst >= 0.75, "a second delivered %.3f of the link", worst);
    ck_assert_msg(whole >= 0.9, "%.3f of the link after startup", whole);
    sim_free(&s);
}
END_TEST

/*
 * The queue the default policy builds stays short. Its bandwidth filter
 * keeps the highest delivery-rate sample of ten rounds, and ACKs that come
 * late or in bunches (the receiving host's scheduling: here up to 1 ms
 * each, never reordered) make some samples too high, so the pace runs a
 * little above the link: before the in-flight bound, the queue grew after
 * every probe_rtt until the drop-tail queue of one BDP overflowed (here:
 * 6,155 queue drops in 20 s on a, waits up to 96 ms on b; the WAN bench
 * showed the same). Now, on a and b for 20 s after startup, the longest
 * wait a DATA meets in each 10 ms stays under half the buffer on average
 * (4.8 and 13.2 ms) and under 3/4 of it always (5.6 and 29 ms), nothing
 * is dropped at the queue, and the link stays 0.9 full.
 */
START_TEST(queue_stays_short)
{
    struct profile pr = profiles[_i];
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t steady = START_TIME + 2 * SEC, drops = 0, worst = 0, sum = 0;
    size_t b, n = 0;
    double share, mean;

    pr.run_us = 22 * SEC;
    sim_init(&s, &pr, 12 + (uint64_t)_i);
    s.rev.jitter_us = ACK_JITTER_US;
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, s.end);
    for (b = bucket_of(&s, steady); b < bucket_of(&s, s.end); b++, n++) {
        drops += s.drops_by_bucket[b];
        sum += s.queue_us_by_bucket[b];
        worst = s.queue_us_by_bucket[b] > worst ? s.queue_us_by_bucket[b] : worst;
    }
    mean = (double)sum / (double)n;
    share = rate_of(&s, f->written_by_bucket, steady, s.end) / (double)pr.rate;
    if (tracing())
        fprintf(stderr,
                "queue on %s: mean longest wait %.1f ms, worst %.1f ms (buffer %u ms), %llu queue "
                "drops, %.3f of the link\n",
                pr.name, mean / 1000, (double)worst / 1000, pr.rtt_us / 1000,
                (unsigned long long)drops, share);
    ck_assert_msg(drops == 0, "profile %s: %llu queue drops", pr.name, (unsigned long long)drops);
    ck_assert_msg(mean <= pr.rtt_us / 2, "profile %s: mean wait %.0f us", pr.name, mean);
    ck_assert_msg(worst <= pr.rtt_us * 3 / 4, "profile %s: worst wait %llu us", pr.name,
                  (unsigned long long)worst);
    ck_assert_msg(share >= 0.9, "profile %s: %.3f of the link", pr.name, share);
    sim_free(&s);
}
END_TEST

/* ---- rate changes ------------------------------------------------------------ */

START_TEST(rate_change_shows_within_two_round_trips)
{
    const struct profile *pr = &profiles[1]; /* 100 Mbit/s, 100 ms */
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t t1 = START_TIME + 3 * SEC, t2 = START_TIME + 5 * SEC;
    double before, after, up;

    cfg.policy = SFTP_POLICY_FIXED;
    cfg.rate_bps = 6250000; /* 50 Mbit/s */
    sim_init(&s, pr, 5);
    s.end = START_TIME + 7 * SEC;
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, t1);
    before = rate_of(&s, f->sent_by_bucket, t1 - SEC, t1);
    ck_assert_int_eq(sftp_source_set_rate(f->src, 0, 2500000, 0, s.now), 0);
    run_until(&s, t2);
    /* From two round trips after the change on, the source sends at the new rate. */
    after = rate_of(&s, f->sent_by_bucket, t1 + 2 * pr->rtt_us, t2);
    /* Then the adaptive policy, with no ceiling: it finds the link again. */
    ck_assert_int_eq(sftp_source_set_rate(f->src, SFTP_POLICY_ADAPTIVE, 0, 0, s.now), 0);
    run_until(&s, s.end);
    up = rate_of(&s, f->written_by_bucket, t2 + 10 * pr->rtt_us, s.end);
    if (tracing())
        fprintf(stderr, "rate change: %.0f B/s, then %.0f B/s, then adaptive %.0f B/s\n", before,
                after, up);
    ck_assert_double_le(before, 6250000 * 1.02);
    ck_assert_double_ge(before, 6250000 * 0.98);
    ck_assert_double_le(after, 2500000 * 1.02);
    ck_assert_double_ge(after, 2500000 * 0.98);
    ck_assert_double_ge(up, 0.9 * (double)pr->rate);
    sim_free(&s);
}
END_TEST

/* The adaptive policy under a target rate: a ceiling, lowered and raised. */
START_TEST(adaptive_keeps_under_its_target)
{
    const struct profile *pr = &profiles[0]; /* 100 Mbit/s, 10 ms */
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t t1 = START_TIME + 1 * SEC, t2 = START_TIME + 2 * SEC;
    double capped, freed;

    sim_init(&s, pr, 6);
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, t1);
    ck_assert_int_eq(sftp_source_set_rate(f->src, 0, 5000000, 0, s.now), 0);
    run_until(&s, t2);
    capped = rate_of(&s, f->sent_by_bucket, t1 + 2 * pr->rtt_us, t2);
    ck_assert_int_eq(sftp_source_set_rate(f->src, 0, 0, 0, s.now), 0);
    run_until(&s, s.end);
    freed = rate_of(&s, f->written_by_bucket, t2 + 20 * pr->rtt_us, s.end);
    if (tracing())
        fprintf(stderr, "adaptive capped at 5 MB/s: %.0f B/s, then freed %.0f B/s\n", capped,
                freed);
    ck_assert_double_le(capped, 5000000 * 1.02);
    ck_assert_double_ge(capped, 5000000 * 0.9);
    ck_assert_double_ge(freed, 0.9 * (double)pr->rate);
    sim_free(&s);
}
END_TEST

/* Fixed: the target, through 1% loss, whatever the ACKs say. */
START_TEST(fixed_holds_its_rate)
{
    const struct profile *pr = &profiles[2]; /* 100 Mbit/s, 100 ms, 1% */
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    double sent, got;

    cfg.policy = SFTP_POLICY_FIXED;
    cfg.rate_bps = 10000000; /* 80 Mbit/s */
    sim_init(&s, pr, 7);
    s.end = START_TIME + 5 * SEC;
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, s.end);
    sent = rate_of(&s, f->sent_by_bucket, START_TIME + SEC, s.end);
    got = rate_of(&s, f->written_by_bucket, START_TIME + SEC, s.end);
    if (tracing())
        fprintf(stderr, "fixed 10 MB/s at 1%% loss: sent %.0f B/s, delivered %.0f B/s\n", sent,
                got);
    ck_assert_double_le(sent, 10000000 * 1.01);
    ck_assert_double_ge(sent, 10000000 * 0.99);
    ck_assert_double_ge(got, 10000000 * 0.96);
    sim_free(&s);
}
END_TEST

/* ---- background -------------------------------------------------------------- */

START_TEST(background_yields_to_tcp)
{
    struct profile link = profiles[0]; /* 100 Mbit/s, 10 ms */
    const struct profile *pr = &link;
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t t0 = START_TIME + 3 * SEC;
    uint64_t reno_before;
    double share, reno_rate;

    cfg.policy = SFTP_POLICY_BACKGROUND;
    link.run_us = 11 * SEC;
    sim_init(&s, pr, 8);
    bn_reno_init(&s.reno, &s.fwd, pr->rtt_us / 2, PACKET);
    s.reno_used = 1;
    s.reno_start = START_TIME;
    f = flow_add(&s, &cfg, START_TIME + SEC);
    run_until(&s, t0);
    reno_before = s.reno.delivered_bytes;
    run_until(&s, s.end);
    share = rate_of(&s, f->written_by_bucket, t0, s.end) / pr->rate;
    reno_rate = (double)(s.reno.delivered_bytes - reno_before) * SEC / (double)(s.end - t0);
    if (tracing())
        fprintf(stderr, "background beside Reno: %.3f of the link, Reno %.3f (%llu loss events)\n",
                share, reno_rate / pr->rate, (unsigned long long)s.reno.loss_events);
    ck_assert_double_lt(share, 0.10);
    ck_assert_double_gt(reno_rate / pr->rate, 0.8);
    sim_free(&s);
}
END_TEST

/* Offsets of the background flow's start from the TCP flow's, in round
 * trips of profile b: from two seconds after it (8: in the middle of its
 * slow-start overshoot and recovery; 20: settled) to five seconds before. */
static const int background_start_rtts[] = {0, 2, -2, -10, 5, -5, -50, 8, 20};

/* Both on profile b, starting within a few round trips of each other, the
 * background flow settled first, or TCP settled first. When both double
 * at once the queue overflows, and whatever the background flow holds
 * then TCP's halved window does not win back for many seconds (one
 * segment per round trip): the background policy used to keep up to 0.79
 * of the link here, and 0.12 beside a settled TCP flow. Over the 20 s
 * after the later start it takes under a tenth of the link, and TCP most
 * of it. */
START_TEST(background_yields_to_tcp_starting_with_it)
{
    struct profile link = profiles[1]; /* 100 Mbit/s, 100 ms */
    const struct profile *pr = &link;
    int offset_rtts = background_start_rtts[_i];
    uint64_t tcp_start = START_TIME + 50 * pr->rtt_us;
    uint64_t bg_start = tcp_start + (uint64_t)((int64_t)offset_rtts * (int64_t)pr->rtt_us);
    uint64_t measured_from = bg_start > tcp_start ? bg_start : tcp_start;
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    uint64_t reno_before;
    double share, reno_share;

    cfg.policy = SFTP_POLICY_BACKGROUND;
    link.run_us = measured_from + 20 * SEC - START_TIME;
    sim_init(&s, pr, 21 + (uint64_t)_i);
    bn_reno_init(&s.reno, &s.fwd, pr->rtt_us / 2, PACKET);
    s.reno_used = 1;
    s.reno_start = tcp_start;
    f = flow_add(&s, &cfg, bg_start);
    run_until(&s, measured_from);
    reno_before = s.reno.delivered_bytes;
    run_until(&s, s.end);
    share = rate_of(&s, f->written_by_bucket, measured_from, s.end) / pr->rate;
    reno_share = (double)(s.reno.delivered_bytes - reno_before) * SEC /
                 (double)(s.end - measured_from) / pr->rate;
    if (tracing())
        fprintf(stderr,
                "background starting %d RTTs after TCP: %.3f of the link, TCP %.3f (%llu loss "
                "events)\n",
                offset_rtts, share, reno_share, (unsigned long long)s.reno.loss_events);
    ck_assert_msg(share < 0.10, "background took %.3f of the link", share);
    ck_assert_msg(reno_share > 0.8, "TCP took %.3f of the link", reno_share);
    sim_free(&s);
}
END_TEST

START_TEST(background_alone_fills_the_link)
{
    const struct profile *pr = &profiles[_i == 0 ? 0 : 1];
    struct sftp_config cfg = sim_config();
    struct sim s;
    struct flow *f;
    double share;

    cfg.policy = SFTP_POLICY_BACKGROUND;
    sim_init(&s, pr, 9);
    f = flow_add(&s, &cfg, START_TIME);
    run_until(&s, s.end);
    share = rate_of(&s, f->written_by_bucket, START_TIME + pr->run_us / 2, s.end) / pr->rate;
    if (tracing())
        fprintf(stderr, "background alone on %s: %.3f of the link, max queue %llu B\n", pr->name,
                share, (unsigned long long)s.fwd.max_queued);
    ck_assert_double_ge(share, 0.9);
    sim_free(&s);
}
END_TEST

/* ---- wishes ------------------------------------------------------------------ */

/* A fetching client's sink asks; the source applies it within its limits. */
START_TEST(sink_wish_reaches_the_source)
{
    const struct profile *pr = &profiles[0];
    struct sftp_config cfg = sim_config();
    struct sftp_wish wish = {SFTP_POLICY_FIXED, 4000000, 0};
    struct sftp_rate_info info;
    struct sim s;
    struct flow *f;

    cfg.rate_max_bps = 3000000;
    cfg.policies_allowed = 1u << SFTP_POLICY_ADAPTIVE | 1u << SFTP_POLICY_FIXED;
    sim_init(&s, pr, 10);
    f = flow_add(&s, &cfg, START_TIME);
    sftp_sink_set_wish(f->snk, &wish);
    run_until(&s, START_TIME + SEC);
    sftp_source_rate_info(f->src, &info);
    ck_assert_str_eq(info.policy, "fixed");
    ck_assert_uint_eq(info.target_bps, 4000000);
    ck_assert_uint_eq(info.rate_bps, 3000000); /* the source's own maximum wins */
    ck_assert_double_le(rate_of(&s, f->sent_by_bucket, START_TIME + SEC / 2, s.now),
                        3000000 * 1.02);
    /* A policy the source does not allow is not granted; the rates are. */
    wish = (struct sftp_wish){SFTP_POLICY_BACKGROUND, 1000000, 0};
    sftp_sink_set_wish(f->snk, &wish);
    run_until(&s, START_TIME + 2 * SEC);
    sftp_source_rate_info(f->src, &info);
    ck_assert_str_eq(info.policy, "fixed");
    ck_assert_uint_eq(info.rate_bps, 1000000);
    ck_assert_int_eq(sftp_source_set_rate(f->src, SFTP_POLICY_BACKGROUND, 0, 0, s.now),
                     RPC2_EINVAL);
    ck_assert_int_eq(sftp_source_set_rate(f->src, 99, 0, 0, s.now), RPC2_EINVAL);
    sim_free(&s);
}
END_TEST

/* ---- the model itself ---------------------------------------------------------- */

/* The bottleneck is a queue: it sends at its rate, holds what waits, and
 * drops what does not fit. */
START_TEST(bottleneck_is_a_drop_tail_queue)
{
    struct bn_link l;
    uint64_t at[5];
    int i;

    bn_link_init(&l, 1000000, 5000, 3000, 0, 1); /* 1 MB/s: 1000 bytes per ms */
    for (i = 0; i < 5; i++)
        at[i] = bn_link_send(&l, 0, 1000);
    ck_assert_uint_eq(at[0], 1000 + 5000);
    ck_assert_uint_eq(at[1], 2000 + 5000);
    ck_assert_uint_eq(at[2], 3000 + 5000);
    ck_assert_uint_eq(at[3], BN_NEVER); /* 3000 bytes wait: full */
    ck_assert_uint_eq(l.dropped_full, 2);
    ck_assert_uint_eq(bn_link_queue_delay(&l, 0), 3000);
    /* A millisecond later one has left, and one more fits behind the rest. */
    ck_assert_uint_eq(bn_link_send(&l, 1000, 1000), 4000 + 5000);
    ck_assert_uint_eq(bn_link_send(&l, 1000, 1000), BN_NEVER);
    bn_link_dispose(&l);
}
END_TEST

static Suite *cc_suite(void)
{
    Suite *s = suite_create("cc");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bottleneck_is_a_drop_tail_queue);
    tcase_add_loop_test(tc, profiles_fill_the_bottleneck, 0,
                        (int)(sizeof(profiles) / sizeof(profiles[0])));
    tcase_add_test(tc, probe_rtt_keeps_half_the_rate);
    tcase_add_loop_test(tc, queue_stays_short, 0, 2);
    tcase_add_test(tc, rate_change_shows_within_two_round_trips);
    tcase_add_test(tc, adaptive_keeps_under_its_target);
    tcase_add_test(tc, fixed_holds_its_rate);
    tcase_add_test(tc, background_yields_to_tcp);
    tcase_add_loop_test(tc, background_yields_to_tcp_starting_with_it, 0,
                        (int)(sizeof(background_start_rtts) / sizeof(background_start_rtts[0])));
    tcase_add_loop_test(tc, background_alone_fills_the_link, 0, 2);
    tcase_add_test(tc, sink_wish_reaches_the_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(cc_suite());
}
