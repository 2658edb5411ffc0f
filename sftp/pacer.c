/*
 * pacer.c - the release mechanism, and the delivery-rate policy.
 *
 * Release: a token bucket in bytes, refilled at the policy's rate and
 * capped at send_ahead packets, so however long the source sat idle the
 * next burst is at most send_ahead packets; a packet may leave while the
 * bucket is positive and leaves a debt behind it, so with a timer per
 * release packets go one by one at exactly the rate.
 *
 * Policy (the only one so far; a second belongs in a file of its own): a
 * simplified BBR. The delivery rate of each ACK feeds a max filter over the
 * last PACER_ROUNDS round trips; during startup the rate is twice that
 * (so it doubles every round trip while deliveries keep up), until three
 * rounds bring less than 25% more; then it cycles 5/4, 3/4 and six rounds
 * of 1, probing for more and draining what the probe queued. In flight is
 * held to twice the bandwidth times the smoothed RTT: BBR uses the minimum
 * RTT, but on a batched path (sendmmsg and recvmmsg on loopback, ACKs that
 * wait for a batch) the RTT under load is many times the idle one, and the
 * rate, not this limit, is what keeps the queue short. Loss alone does not
 * slow it (that is a TCP-friendly policy's job); a retransmission timeout
 * halves the estimate and restarts the startup.
 */
#include "pacer.h"

#include <string.h>

#define USEC_PER_SEC 1000000u
/* Beyond this the arithmetic below could overflow: 1 PB/s. */
#define RATE_LIMIT ((uint64_t)1 << 50)
/* Longer idle times fill the bucket anyway at any useful rate. */
#define MAX_REFILL_US (10u * USEC_PER_SEC)
#define INITIAL_WINDOW 10u /* packets per initial RTT before any sample */
#define STARTUP_GAIN_X4 8u /* 2.0 */
#define CWND_GAIN 2u
#define FULL_PIPE_ROUNDS 3u

static const unsigned cycle_gain_x4[] = {5, 3, 4, 4, 4, 4, 4, 4};
#define CYCLE_LEN (sizeof(cycle_gain_x4) / sizeof(cycle_gain_x4[0]))

/* ---- release ------------------------------------------------------------- */

static int64_t burst_bytes(const struct pacer *p)
{
    return (int64_t)p->params.send_ahead * p->params.packet_size;
}

/* rate * us / 1e6 without overflow for rate <= RATE_LIMIT, us <= MAX_REFILL_US. */
static uint64_t bytes_in(uint64_t rate, uint64_t us)
{
    return rate / USEC_PER_SEC * us + rate % USEC_PER_SEC * us / USEC_PER_SEC;
}

static void refill(struct pacer *p, uint64_t now)
{
    uint64_t elapsed, add;

    if (now <= p->refilled_at)
        return;
    elapsed = now - p->refilled_at;
    if (elapsed > MAX_REFILL_US)
        elapsed = MAX_REFILL_US;
    add = bytes_in(pacer_rate(p), elapsed);
    if (add > (uint64_t)burst_bytes(p) * 2)
        add = (uint64_t)burst_bytes(p) * 2;
    p->tokens += (int64_t)add;
    if (p->tokens > burst_bytes(p))
        p->tokens = burst_bytes(p);
    p->refilled_at = now;
}

int pacer_may_send(struct pacer *p, uint64_t now)
{
    refill(p, now);
    return p->tokens > 0;
}

void pacer_sent(struct pacer *p, uint32_t bytes, uint64_t now)
{
    refill(p, now);
    p->tokens -= bytes;
    /* Debt beyond one burst would only stall the next one for nothing. */
    if (p->tokens < -burst_bytes(p))
        p->tokens = -burst_bytes(p);
}

uint64_t pacer_next_release(struct pacer *p, uint64_t now)
{
    uint64_t need, rate = pacer_rate(p);

    refill(p, now);
    if (p->tokens > 0)
        return now;
    need = (uint64_t)(-p->tokens) + 1;
    return now + (need * USEC_PER_SEC + rate - 1) / rate;
}

uint64_t pacer_rate(const struct pacer *p)
{
    uint64_t rate = p->rate_bps;

    if (p->params.rate_max_bps != 0 && rate > p->params.rate_max_bps)
        rate = p->params.rate_max_bps;
    if (rate > RATE_LIMIT)
        rate = RATE_LIMIT;
    return rate > 0 ? rate : 1;
}

uint32_t pacer_cwnd(const struct pacer *p)
{
    if (p->cwnd == 0)
        return 1;
    return p->cwnd < p->params.window ? p->cwnd : p->params.window;
}

void pacer_init(struct pacer *p, const struct pacer_ops *ops, const struct pacer_params *params,
                uint64_t now)
{
    memset(p, 0, sizeof(*p));
    p->ops = ops;
    p->params = *params;
    if (p->params.packet_size == 0)
        p->params.packet_size = 1;
    if (p->params.send_ahead == 0)
        p->params.send_ahead = 1;
    if (p->params.window == 0)
        p->params.window = 1;
    if (p->params.initial_rtt_us == 0)
        p->params.initial_rtt_us = USEC_PER_SEC;
    p->cwnd = p->params.window;
    /* A full bucket: the first burst need not wait. */
    p->tokens = burst_bytes(p);
    p->refilled_at = now;
    ops->init(p, now);
}

void pacer_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    p->ops->on_ack(p, s, now);
}

void pacer_on_loss(struct pacer *p, uint32_t packets, uint64_t now)
{
    p->ops->on_loss(p, packets, now);
}

void pacer_on_timeout(struct pacer *p, uint64_t now)
{
    p->ops->on_timeout(p, now);
}

/* ---- the delivery-rate policy -------------------------------------------- */

static uint64_t initial_rate(const struct pacer *p)
{
    uint32_t packets =
        p->params.send_ahead > INITIAL_WINDOW ? p->params.send_ahead : INITIAL_WINDOW;

    return (uint64_t)packets * p->params.packet_size * USEC_PER_SEC / p->params.initial_rtt_us;
}

/* Never slower than a packet per initial RTT, so a bad estimate cannot
 * stall the transfer for longer than a timeout would. */
static uint64_t floor_rate(const struct pacer *p)
{
    uint64_t r = (uint64_t)p->params.packet_size * USEC_PER_SEC / p->params.initial_rtt_us;

    return r > 0 ? r : 1;
}

static uint64_t max_bw(const struct pacer_delivery *d)
{
    uint64_t best = 0;
    unsigned i;

    for (i = 0; i < PACER_ROUNDS; i++)
        if (d->bw_by_round[i] > best)
            best = d->bw_by_round[i];
    return best;
}

static void delivery_init(struct pacer *p, uint64_t now)
{
    (void)now;
    memset(&p->policy.delivery, 0, sizeof(p->policy.delivery));
    p->rate_bps = initial_rate(p);
    p->cwnd = p->params.window;
}

/* A round trip ends when a packet sent after it began is acknowledged. */
static int next_round(struct pacer_delivery *d, const struct pacer_sample *s)
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
static void age_filter(struct pacer_delivery *d)
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

static void take_bw_sample(struct pacer_delivery *d, const struct pacer_sample *s)
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

static void check_pipe_full(struct pacer_delivery *d)
{
    uint64_t bw = max_bw(d);

    if (d->pipe_full)
        return;
    if (bw >= d->full_bw + d->full_bw / 4) {
        d->full_bw = bw;
        d->full_bw_rounds = 0;
        return;
    }
    if (++d->full_bw_rounds >= FULL_PIPE_ROUNDS)
        d->pipe_full = 1;
}

static uint32_t cwnd_for(const struct pacer *p, uint64_t bw, uint32_t rtt_us)
{
    uint64_t bdp, packets, floor;

    floor = 2ull * p->params.send_ahead + 4;
    if (bw == 0 || rtt_us == 0)
        return p->params.window;
    bdp = bytes_in(bw < RATE_LIMIT ? bw : RATE_LIMIT, rtt_us);
    packets = CWND_GAIN * ((bdp + p->params.packet_size - 1) / p->params.packet_size);
    if (packets < floor)
        packets = floor;
    return packets < p->params.window ? (uint32_t)packets : p->params.window;
}

static void delivery_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    struct pacer_delivery *d = &p->policy.delivery;
    unsigned gain;
    uint64_t bw;
    int round;

    (void)now;
    if (s->rtt_us != 0) {
        if (d->min_rtt_us == 0 || s->rtt_us < d->min_rtt_us)
            d->min_rtt_us = s->rtt_us;
        d->srtt_us =
            d->srtt_us == 0 ? s->rtt_us : (uint32_t)(((uint64_t)d->srtt_us * 7 + s->rtt_us) / 8);
    }
    round = next_round(d, s);
    take_bw_sample(d, s);
    if (round) {
        check_pipe_full(d);
        if (d->pipe_full)
            d->cycle = (d->cycle + 1) % CYCLE_LEN;
    }
    bw = max_bw(d);
    if (bw == 0)
        return;
    gain = d->pipe_full ? cycle_gain_x4[d->cycle] : STARTUP_GAIN_X4;
    p->rate_bps = bw < RATE_LIMIT / 8 ? bw * gain / 4 : RATE_LIMIT;
    if (p->rate_bps < floor_rate(p))
        p->rate_bps = floor_rate(p);
    p->cwnd = cwnd_for(p, bw, d->srtt_us);
}

static void delivery_on_loss(struct pacer *p, uint32_t packets, uint64_t now)
{
    (void)p;
    (void)packets;
    (void)now;
}

static void delivery_on_timeout(struct pacer *p, uint64_t now)
{
    struct pacer_delivery *d = &p->policy.delivery;
    unsigned i;

    (void)now;
    for (i = 0; i < PACER_ROUNDS; i++)
        d->bw_by_round[i] /= 2;
    d->pipe_full = 0;
    d->full_bw = 0;
    d->full_bw_rounds = 0;
    d->min_rtt_us = 0;
    d->srtt_us = 0;
    p->rate_bps = max_bw(d) * 2;
    if (p->rate_bps < floor_rate(p))
        p->rate_bps = floor_rate(p);
    p->cwnd = p->params.window;
}

const struct pacer_ops pacer_delivery_ops = {
    .name = "delivery",
    .init = delivery_init,
    .on_ack = delivery_on_ack,
    .on_loss = delivery_on_loss,
    .on_timeout = delivery_on_timeout,
};
