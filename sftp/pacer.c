/*
 * pacer.c - the release mechanism, the bounds every policy keeps (target,
 * minimum and maximum rate, the window), and the dispatch to the policy.
 *
 * Release: a token bucket in bytes, refilled at the policy's rate and
 * capped at a burst, so however long the source sat idle the next burst is
 * at most that; a packet may leave while the bucket is positive and leaves
 * a debt behind it, so with a timer per release packets go one by one at
 * exactly the rate.
 *
 * A burst is send_ahead packets, or what the rate makes in RELEASE_US when
 * that is more (up to MAX_SCALED_BURST): the loop's timers do not fire
 * sooner than that (libev's epoll backend sleeps whole milliseconds, at
 * least one), so a bucket smaller than a timer's delay at the rate would
 * cap the rate itself. Measured through bench/run_wan.sh profile e (1
 * Gbit/s): bursts of 48 MTU packets, one per 1-2 ms wake-up, held the
 * fixed policy at 950 Mbit/s to 215 Mbit/s.
 */
#include "pacer.h"

#include <string.h>

#define USEC_PER_SEC 1000000u
/* Beyond this the arithmetic below could overflow: 1 PB/s. */
#define RATE_LIMIT ((uint64_t)1 << 50)
/* Longer idle times fill the bucket anyway at any useful rate. */
#define MAX_REFILL_US (10u * USEC_PER_SEC)
/* Two of the loop's timer ticks: a release due in microseconds comes one
 * to two milliseconds later. */
#define RELEASE_US 2000u
/* 2 ms at 4 Gbit/s; loopback's bursts of 64 KiB packets are larger anyway. */
#define MAX_SCALED_BURST (1u << 20)

/* ---- release ------------------------------------------------------------- */

static int64_t burst_bytes(const struct pacer *p)
{
    uint64_t fixed = (uint64_t)p->params.send_ahead * p->params.packet_size;
    uint64_t scaled = pacer_bytes_in(pacer_rate(p), RELEASE_US);

    if (scaled > MAX_SCALED_BURST)
        scaled = MAX_SCALED_BURST;
    return (int64_t)(scaled > fixed ? scaled : fixed);
}

uint32_t pacer_burst(const struct pacer *p)
{
    return pacer_packets(p, (uint64_t)burst_bytes(p));
}

/* rate * us / 1e6 without overflow for rate <= RATE_LIMIT, us <= MAX_REFILL_US. */
uint64_t pacer_bytes_in(uint64_t rate, uint64_t us)
{
    if (rate > RATE_LIMIT)
        rate = RATE_LIMIT;
    return rate / USEC_PER_SEC * us + rate % USEC_PER_SEC * us / USEC_PER_SEC;
}

uint32_t pacer_packets(const struct pacer *p, uint64_t bytes)
{
    uint64_t n = (bytes + p->params.packet_size - 1) / p->params.packet_size;

    return n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
}

uint64_t pacer_floor_rate(const struct pacer *p)
{
    uint64_t r = (uint64_t)p->params.packet_size * USEC_PER_SEC / p->params.initial_rtt_us;

    return r > 0 ? r : 1;
}

static void refill(struct pacer *p, uint64_t now)
{
    uint64_t elapsed, add;

    if (now <= p->refilled_at)
        return;
    elapsed = now - p->refilled_at;
    if (elapsed > MAX_REFILL_US)
        elapsed = MAX_REFILL_US;
    add = pacer_bytes_in(pacer_rate(p), elapsed);
    if (add > (uint64_t)burst_bytes(p) * 2)
        add = (uint64_t)burst_bytes(p) * 2;
    p->tokens += (int64_t)add;
    if (p->tokens > burst_bytes(p)) {
        /* More than a burst was due to a sender waiting for it: it woke late. */
        if (p->awaited && p->tokens > burst_bytes(p) + (int64_t)p->params.packet_size)
            p->fell_behind = 1;
        p->tokens = burst_bytes(p);
    }
    p->refilled_at = now;
    p->awaited = 0;
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
    p->awaited = 1;
    need = (uint64_t)(-p->tokens) + 1;
    return now + (need * USEC_PER_SEC + rate - 1) / rate;
}

int pacer_fell_behind(struct pacer *p)
{
    int was = p->fell_behind;

    p->fell_behind = 0;
    return was;
}

uint64_t pacer_ceiling(const struct pacer *p)
{
    uint64_t c = UINT64_MAX;

    if (p->params.rate_max_bps != 0)
        c = p->params.rate_max_bps;
    if (p->target_bps != 0 && p->target_bps < c)
        c = p->target_bps;
    return c;
}

static uint64_t floor_of(const struct pacer *p)
{
    uint64_t c = pacer_ceiling(p);

    return p->min_bps < c ? p->min_bps : c;
}

uint64_t pacer_rate(const struct pacer *p)
{
    uint64_t rate = p->rate_bps, c = pacer_ceiling(p);

    if (rate > c)
        rate = c;
    if (rate < floor_of(p))
        rate = floor_of(p);
    if (rate > RATE_LIMIT)
        rate = RATE_LIMIT;
    return rate > 0 ? rate : 1;
}

uint32_t pacer_cwnd(const struct pacer *p)
{
    uint32_t cwnd = p->cwnd;

    /* The floor's rate needs its bytes in flight: twice its BDP. */
    if (floor_of(p) > 0 && p->srtt_us > 0) {
        uint32_t need = pacer_packets(p, 2 * pacer_bytes_in(floor_of(p), p->srtt_us));

        if (need > cwnd)
            cwnd = need;
    }
    if (cwnd == 0)
        return 1;
    return cwnd < p->params.window ? cwnd : p->params.window;
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

void pacer_set_policy(struct pacer *p, const struct pacer_ops *ops, uint64_t now)
{
    if (ops == NULL || ops == p->ops)
        return;
    p->ops = ops;
    memset(&p->policy, 0, sizeof(p->policy));
    p->cwnd = p->params.window;
    ops->init(p, now);
}

void pacer_set_rates(struct pacer *p, uint64_t target_bps, uint64_t min_bps, uint64_t now)
{
    uint64_t before = pacer_ceiling(p);

    p->target_bps = target_bps;
    p->min_bps = min_bps;
    if (pacer_ceiling(p) > before && p->ops->on_ceiling_up)
        p->ops->on_ceiling_up(p, now);
}

void pacer_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    if (s->srtt_us != 0)
        p->srtt_us = s->srtt_us;
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

