/*
 * cc_adaptive.c - the default rate policy: a model of the bottleneck, after
 * BBR (Cardwell et al., "BBR: Congestion-Based Congestion Control", 2016).
 *
 * The model is two numbers: the bottleneck's rate (the most the path has
 * delivered per second over the last PACER_ROUNDS round trips) and the
 * path's own delay (the smallest RTT in the last ten seconds). Their
 * product, the bandwidth-delay product, is what the path holds without a
 * queue. The policy paces at the modelled rate times a gain:
 *
 *   startup    2.89: doubles each round trip until three rounds in a row
 *              bring less than 25% more, or the smallest RTT of a round
 *              shows a queue of a quarter of the path's delay (4 to 16 ms,
 *              as HyStart; the smallest, so jitter alone does not end
 *              it): the pipe is full;
 *   drain      1/2.89, until in flight is down to one BDP: the queue
 *              startup built is emptied at once;
 *   probe_bw   a cycle of 5/4 (is there more?), 3/4 (empty what that
 *              queued, and what a high estimate queued: until the queue
 *              is gone, two round trips at most), then six of 1, each
 *              as long as the path's delay;
 *   probe_rtt  every ten seconds without a new minimum, in flight drops to
 *              half the BDP (four packets at least) for 200 ms or a round
 *              trip, so the delay is measured without our own queue (and
 *              competing flows see the queue drain). Half, as BBRv2, not
 *              BBRv1's four packets: the queue empties all the same, and
 *              at 100 ms the transfer keeps half its rate where it once
 *              stopped for a third of a second in every ten.
 *
 * In flight is held to twice the BDP plus, once out of startup, what ACKs
 * that come in bursts showed they need (ack batches, recvmmsg: BBR's
 * extra_acked), so a wrong rate estimate cannot build more than a BDP of
 * queue, and startup's last doubling fits a queue of one BDP. The
 * estimate is a little too high as a rule (the filter keeps the highest
 * sample, and ACKs that come late or in bunches make samples too high),
 * so pacing at it alone builds a queue until a drop-tail queue of one BDP
 * overflows. So in probe_bw the drain after each probe lasts until the
 * queue is gone (an RTT within a quarter of the path's delay of it, or in
 * flight down to a BDP), two round trips at most; and while the last
 * drain emptied the queue, in flight is held to 5/4 of the BDP in the
 * probe and to a BDP plus a quarter of the path's delay between probes
 * (target_cwnd). A drain that runs out of time means the queue is
 * another flow's (a loss-based one fills it whatever we do): then the
 * twice-the-BDP bound holds until a drain empties the queue again.
 *
 * Random loss does not slow it: a packet lost on the wire says
 * nothing about the bottleneck, and loss recovery resends it. Nor does
 * it lower the pace: the delivery rate under a loss rate p is the pace
 * times 1 - p, so probe_bw paces at the rate over 1 - p, p as measured in
 * rounds whose RTTs showed no queue (a queue that overflows is congestion,
 * and its losses come with high RTTs), up to 20%. A probe
 * timeout that ACKs confirmed (recovery.h) halves the bandwidth estimate.
 * A ceiling that rises (a new target rate) starts a new startup, so the
 * change shows within a few round trips.
 */
#include "pacer.h"

#include <string.h>

#define USEC_PER_SEC 1000000u
#define INITIAL_WINDOW 10u /* packets per initial RTT before any sample */
#define HIGH_GAIN 2885u    /* x1000: 2/ln 2, doubles the delivery rate per round */
#define DRAIN_GAIN 347u    /* 1000 / 2.885 */
#define CWND_GAIN 2000u
#define FULL_PIPE_ROUNDS 3u
#define MIN_RTT_EXPIRY_US (10u * USEC_PER_SEC)
#define PROBE_RTT_US (200u * 1000u)
#define PROBE_RTT_MIN_CWND 4u
#define EXTRA_ACKED_ROUNDS 5u
#define DOWN_MAX_RTTS 2u /* probe_bw: the longest a drain lasts, in min RTTs */
#define QUEUE_MIN_US 4000u
#define CRUISE_QUEUE_MIN_US 1000u
#define QUEUE_MAX_US 16000u
#define LOSS_ROUND_MIN 32u          /* packets a round needs to say a loss rate */
#define RANDOM_LOSS_MAX_PPM 200000u /* beyond 20% the path is broken, not lossy */

enum { STARTUP, DRAIN, PROBE_BW, PROBE_RTT };

static const unsigned cycle_gain[] = {1250, 750, 1000, 1000, 1000, 1000, 1000, 1000};
#define CYCLE_LEN (sizeof(cycle_gain) / sizeof(cycle_gain[0]))
#define CYCLE_UP 0u     /* the probe */
#define CYCLE_DOWN 1u   /* the drain after it */
#define CYCLE_CRUISE 2u /* the first phase of 1 */

static uint64_t max_bw(const struct cc_adaptive *d)
{
    uint64_t best = 0;
    unsigned i;

    for (i = 0; i < PACER_ROUNDS; i++)
        if (d->bw_by_round[i] > best)
            best = d->bw_by_round[i];
    return best;
}

static uint64_t bdp(const struct cc_adaptive *d)
{
    return pacer_bytes_in(max_bw(d), d->min_rtt_us);
}

static uint32_t probe_rtt_cwnd(const struct pacer *p)
{
    uint32_t half = pacer_packets(p, bdp(&p->policy.adaptive) / 2);

    return half > PROBE_RTT_MIN_CWND ? half : PROBE_RTT_MIN_CWND;
}

static void adaptive_init(struct pacer *p, uint64_t now)
{
    uint32_t packets =
        p->params.send_ahead > INITIAL_WINDOW ? p->params.send_ahead : INITIAL_WINDOW;

    (void)now;
    memset(&p->policy.adaptive, 0, sizeof(p->policy.adaptive));
    p->policy.adaptive.mode = STARTUP;
    p->rate_bps =
        (uint64_t)packets * p->params.packet_size * USEC_PER_SEC / p->params.initial_rtt_us;
    p->cwnd = p->params.window;
}

/* A round trip ends when a packet sent after it began is acknowledged. */
static int next_round(struct cc_adaptive *d, const struct pacer_sample *s)
{
    if (s->interval_us == 0 || s->prior_delivered < d->next_round_delivered)
        return 0;
    d->next_round_delivered = s->total_delivered;
    d->round_count++;
    return 1;
}

/* Moves the filter to the current round, forgetting rounds too old to keep.
 * Only taken samples age it, so a spell of app-limited rounds keeps the
 * estimate (as Linux's BBR does). */
static void age_filter(struct cc_adaptive *d)
{
    uint64_t gap = d->round_count - d->filter_round;

    if (gap >= PACER_ROUNDS)
        memset(d->bw_by_round, 0, sizeof(d->bw_by_round));
    for (; gap > 0 && gap < PACER_ROUNDS; gap--) {
        d->round_slot = (d->round_slot + 1) % PACER_ROUNDS;
        d->bw_by_round[d->round_slot] = 0;
    }
    d->filter_round = d->round_count;
}

static void take_bw_sample(struct cc_adaptive *d, const struct pacer_sample *s)
{
    uint64_t bw;

    if (s->interval_us == 0 || s->delivered == 0)
        return;
    /* Below 2^44 bytes (16 TiB) in one interval the product fits. */
    if (s->delivered >= (uint64_t)1 << 44)
        return;
    bw = s->delivered * USEC_PER_SEC / s->interval_us;
    /* A source with nothing to send measures itself, not the path. */
    if (s->app_limited && bw < max_bw(d))
        return;
    age_filter(d);
    if (bw > d->bw_by_round[d->round_slot])
        d->bw_by_round[d->round_slot] = bw;
}

/* How far ACKs ran ahead of the modelled rate (bursts): a max filter
 * over the last EXTRA_ACKED_ROUNDS to 2 x EXTRA_ACKED_ROUNDS rounds. */
static void track_aggregation(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    struct cc_adaptive *d = &p->policy.adaptive;
    uint64_t expected, extra;

    if (d->round_count - d->extra_round >= EXTRA_ACKED_ROUNDS) {
        d->extra_acked[0] = d->extra_acked[1];
        d->extra_acked[1] = 0;
        d->extra_round = d->round_count;
    }
    expected = pacer_bytes_in(max_bw(d), now - d->epoch_start);
    if (d->epoch_start == 0 || d->epoch_acked <= expected) {
        d->epoch_start = now;
        d->epoch_acked = 0;
        expected = 0;
    }
    d->epoch_acked += (uint64_t)s->newly_acked * p->params.packet_size;
    extra = d->epoch_acked > expected ? d->epoch_acked - expected : 0;
    if (extra > d->extra_acked[1])
        d->extra_acked[1] = extra;
}

/* The queue a round trip may show before its RTT says congestion. */
static uint32_t queue_allowance(const struct cc_adaptive *d)
{
    uint32_t a = d->min_rtt_us / 4;

    return a < QUEUE_MIN_US ? QUEUE_MIN_US : a > QUEUE_MAX_US ? QUEUE_MAX_US : a;
}

/* Startup sees a queue building: the pipe is full before the rate says
 * so. Judged per round, from its smallest RTT. */
static void check_queue(struct cc_adaptive *d, const struct pacer_sample *s, int round)
{
    uint32_t seen = d->round_min_rtt_us;

    if (s->rtt_us != 0 && (d->round_min_rtt_us == 0 || s->rtt_us < d->round_min_rtt_us))
        d->round_min_rtt_us = s->rtt_us;
    if (!round)
        return;
    d->round_min_rtt_us = 0;
    if (seen == 0 || d->round_count < 4)
        return;
    if (seen > d->min_rtt_us + queue_allowance(d)) {
        d->mode = DRAIN;
        d->full_bw_rounds = FULL_PIPE_ROUNDS;
    }
}

static void check_full_pipe(struct cc_adaptive *d)
{
    uint64_t bw = max_bw(d);

    if (bw >= d->full_bw + d->full_bw / 4) {
        d->full_bw = bw;
        d->full_bw_rounds = 0;
        return;
    }
    if (++d->full_bw_rounds >= FULL_PIPE_ROUNDS)
        d->mode = DRAIN;
}

/* The minimum stands until probe_rtt measures the path again: replaced at
 * its expiry by whatever the next sample says, a standing queue would
 * become the path's delay, and half a BDP computed from it would keep
 * that queue through the probe meant to empty it. */
static void update_min_rtt(struct cc_adaptive *d, const struct pacer_sample *s, uint64_t now)
{
    int expired = d->min_rtt_at != 0 && now > d->min_rtt_at + MIN_RTT_EXPIRY_US;

    if (d->mode == PROBE_RTT) {
        if (s->rtt_us != 0 && (d->probe_min_rtt_us == 0 || s->rtt_us < d->probe_min_rtt_us))
            d->probe_min_rtt_us = s->rtt_us;
        return;
    }
    if (s->rtt_us != 0 &&
        (d->min_rtt_us == 0 || s->rtt_us < d->min_rtt_us || (expired && d->mode == STARTUP))) {
        d->min_rtt_us = s->rtt_us;
        d->min_rtt_at = now;
        return;
    }
    if (expired && d->mode != STARTUP) {
        d->mode = PROBE_RTT;
        d->probe_rtt_until = 0;
        d->probe_min_rtt_us = 0;
    }
}

/* At each round's end: its loss rate joins the random estimate when no
 * RTT of it showed a queue; a round that queued lowers the estimate
 * instead, so a pace above the link (an estimate too high) corrects itself
 * as soon as the queue it builds shows. */
static void track_random_loss(struct cc_adaptive *d, const struct pacer_sample *s, int round)
{
    uint64_t n = d->loss_acked + d->loss_lost;

    d->loss_acked += s->newly_acked;
    if (s->rtt_us > d->loss_max_rtt_us)
        d->loss_max_rtt_us = s->rtt_us;
    if (!round || n < LOSS_ROUND_MIN)
        return;
    if (d->loss_max_rtt_us <= d->min_rtt_us + queue_allowance(d)) {
        uint64_t ppm = d->loss_lost * 1000000u / n;

        d->random_loss_ppm = (uint32_t)((7u * (uint64_t)d->random_loss_ppm + ppm) / 8u);
    } else {
        d->random_loss_ppm -= d->random_loss_ppm / 4;
    }
    d->loss_acked = d->loss_lost = 0;
    d->loss_max_rtt_us = 0;
}

static void next_phase(struct cc_adaptive *d, unsigned cycle, uint64_t now)
{
    d->cycle = cycle;
    d->cycle_start = now;
}

/* The queue probe_bw's in-flight bound allows between probes while the
 * queue is ours: a quarter of the path's delay, 1 to 16 ms. */
static uint32_t cruise_allowance(const struct cc_adaptive *d)
{
    uint32_t a = d->min_rtt_us / 4;

    return a < CRUISE_QUEUE_MIN_US ? CRUISE_QUEUE_MIN_US : a > QUEUE_MAX_US ? QUEUE_MAX_US : a;
}

/* The drain is over when the queue is: an RTT that shows none, or in
 * flight down to a BDP (the estimate's, a little above the path's). */
static int queue_gone(const struct cc_adaptive *d, const struct pacer_sample *s,
                      uint32_t bdp_packets)
{
    if (s->in_flight <= bdp_packets)
        return 1;
    return s->rtt_us != 0 && s->rtt_us <= d->min_rtt_us + queue_allowance(d);
}

/*
 * probe_bw's phases. The drain after a probe lasts until the queue is
 * gone: the one the probe built, and what a rate estimate a little too
 * high queued since the last one (the filter keeps the highest sample of
 * ten rounds, and ACKs that come late or in bunches make samples too
 * high). It stops after DOWN_MAX_RTTS at most: if the queue still stands
 * by then, it is another flow's, and draining longer would hand it our
 * share. Whether the queue went decides the in-flight bound of the cycle
 * that follows (target_cwnd).
 */
static void cycle_probe_bw(struct cc_adaptive *d, const struct pacer_sample *s,
                           uint32_t bdp_packets, uint64_t now)
{
    uint64_t in_phase = now - d->cycle_start;

    if (d->cycle == CYCLE_DOWN) {
        if (queue_gone(d, s, bdp_packets)) {
            d->queue_shared = 0;
            next_phase(d, CYCLE_CRUISE, now);
        } else if (in_phase > (uint64_t)DOWN_MAX_RTTS * d->min_rtt_us) {
            d->queue_shared = 1;
            next_phase(d, CYCLE_CRUISE, now);
        }
        return;
    }
    if (in_phase > d->min_rtt_us)
        next_phase(d, (d->cycle + 1) % CYCLE_LEN, now);
}

static void next_mode(struct pacer *p, const struct pacer_sample *s, int round, uint64_t now)
{
    struct cc_adaptive *d = &p->policy.adaptive;
    uint32_t bdp_packets = pacer_packets(p, bdp(d));

    if (d->mode == STARTUP && round)
        check_full_pipe(d);
    if (d->mode == STARTUP)
        check_queue(d, s, round);
    if (d->mode == DRAIN && s->in_flight <= bdp_packets) {
        d->mode = PROBE_BW;
        /* a phase of 1: the probe comes after the drain settled */
        next_phase(d, CYCLE_CRUISE, now);
        return;
    }
    if (d->mode == PROBE_BW)
        cycle_probe_bw(d, s, bdp_packets, now);
    if (d->mode == PROBE_RTT) {
        if (d->probe_rtt_until == 0 && s->in_flight <= probe_rtt_cwnd(p))
            d->probe_rtt_until =
                now + (d->min_rtt_us > PROBE_RTT_US ? d->min_rtt_us : PROBE_RTT_US);
        if (d->probe_rtt_until != 0 && now >= d->probe_rtt_until) {
            if (d->probe_min_rtt_us != 0)
                d->min_rtt_us = d->probe_min_rtt_us; /* the path now, higher or lower */
            d->min_rtt_at = now;
            d->mode = d->full_bw_rounds >= FULL_PIPE_ROUNDS ? PROBE_BW : STARTUP;
            d->cycle_start = now;
        }
    }
}

static unsigned pacing_gain(const struct cc_adaptive *d)
{
    switch (d->mode) {
    case STARTUP:
        return HIGH_GAIN;
    case DRAIN:
        return DRAIN_GAIN;
    case PROBE_BW:
        return cycle_gain[d->cycle];
    default:
        return 1000;
    }
}

/*
 * In flight, beyond what ACKs that come in bursts need (extra): twice the
 * BDP in startup, and in probe_bw while the queue is another flow's (a
 * loss-based flow beside us fills the queue, and a tighter bound would
 * hand it our share). While the queue is ours, the bound keeps it short
 * whatever the rate estimate says: 5/4 of the BDP in the probe, one BDP
 * and cruise_allowance between probes. The drain holds one BDP, so it
 * empties the queue even where the pacer's bursts (send_ahead packets)
 * are a good part of the BDP and the pace alone would not.
 */
static uint32_t target_cwnd(const struct pacer *p)
{
    const struct cc_adaptive *d = &p->policy.adaptive;
    uint64_t extra = d->extra_acked[0] > d->extra_acked[1] ? d->extra_acked[0] : d->extra_acked[1];
    uint64_t bytes;
    uint32_t floor = 2 * p->params.send_ahead + p->params.ack_point + 4;

    if (d->mode == PROBE_RTT)
        return probe_rtt_cwnd(p);
    if (d->min_rtt_us == 0)
        return p->params.window;
    if (d->mode == STARTUP)
        extra = 0; /* the estimate lags the ACKs: what runs ahead is growth */
    if (d->mode == PROBE_BW && d->cycle == CYCLE_UP && !d->queue_shared)
        bytes = bdp(d) / 4 * 5 + extra;
    else if (d->mode == PROBE_BW && d->cycle == CYCLE_DOWN)
        bytes = bdp(d) + extra;
    else if (d->mode == PROBE_BW && !d->queue_shared)
        bytes = bdp(d) + pacer_bytes_in(max_bw(d), cruise_allowance(d)) + extra;
    else
        bytes = bdp(d) / 1000 * CWND_GAIN + bdp(d) % 1000 * CWND_GAIN / 1000 + extra;
    return pacer_packets(p, bytes) > floor ? pacer_packets(p, bytes) : floor;
}

static void adaptive_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    struct cc_adaptive *d = &p->policy.adaptive;
    uint64_t bw;
    int round;

    update_min_rtt(d, s, now);
    round = next_round(d, s);
    take_bw_sample(d, s);
    track_aggregation(p, s, now);
    track_random_loss(d, s, round);
    next_mode(p, s, round, now);
    bw = max_bw(d);
    if (bw == 0)
        return;
    p->rate_bps = bw < UINT64_MAX / HIGH_GAIN ? bw * pacing_gain(d) / 1000 : bw;
    if (d->mode == PROBE_BW && p->rate_bps < UINT64_MAX / 1000000u) {
        uint32_t loss =
            d->random_loss_ppm < RANDOM_LOSS_MAX_PPM ? d->random_loss_ppm : RANDOM_LOSS_MAX_PPM;

        p->rate_bps = p->rate_bps * 1000000u / (1000000u - loss);
    }
    if (p->rate_bps < pacer_floor_rate(p))
        p->rate_bps = pacer_floor_rate(p);
    p->cwnd = target_cwnd(p);
}

static void adaptive_on_loss(struct pacer *p, uint32_t packets, uint64_t now)
{
    (void)now;
    p->policy.adaptive.loss_lost += packets;
}

static void adaptive_on_timeout(struct pacer *p, uint64_t now)
{
    struct cc_adaptive *d = &p->policy.adaptive;
    unsigned i;

    (void)now;
    for (i = 0; i < PACER_ROUNDS; i++)
        d->bw_by_round[i] /= 2;
    if (max_bw(d) > 0)
        p->rate_bps = max_bw(d);
    if (p->rate_bps < pacer_floor_rate(p))
        p->rate_bps = pacer_floor_rate(p);
}

static void adaptive_on_ceiling_up(struct pacer *p, uint64_t now)
{
    struct cc_adaptive *d = &p->policy.adaptive;

    (void)now;
    if (d->mode == STARTUP)
        return;
    d->mode = STARTUP;
    d->full_bw = 0;
    d->full_bw_rounds = 0;
    d->round_min_rtt_us = 0;
    if (max_bw(&p->policy.adaptive) > 0)
        p->rate_bps = max_bw(d) * HIGH_GAIN / 1000;
    p->cwnd = target_cwnd(p);
}

const struct pacer_ops pacer_adaptive_ops = {
    .name = "adaptive",
    .init = adaptive_init,
    .on_ack = adaptive_on_ack,
    .on_loss = adaptive_on_loss,
    .on_timeout = adaptive_on_timeout,
    .on_ceiling_up = adaptive_on_ceiling_up,
};
