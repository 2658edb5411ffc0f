/*
 * cc_background.c - the background policy: use what nobody else wants, and
 * give it back as soon as somebody does (after LEDBAT, RFC 6817, with the
 * multiplicative decrease of LEDBAT++).
 *
 * Queueing delay is the signal: the current delay (the smallest of the
 * last four RTT samples) less the path's own (the smallest ever seen). A
 * queue that grows beyond a small target — a quarter of the path's delay,
 * between 1 and 25 ms — means another flow wants the link; the in-flight
 * window then shrinks in proportion to how far the delay is past the target
 * (at most by half per round trip), down to two packets. Below the target
 * it grows by (target - delay) / target packets per round trip, or by a
 * sixteenth of itself once larger than sixteen packets, so alone it fills
 * the link and keeps the queue near the target. A loss halves it, as TCP
 * would. It starts by doubling each round trip until the delay reaches half
 * the target. The pace is 1.5 windows per current RTT; the window is what
 * keeps it in bounds.
 */
#include "pacer.h"

#include <string.h>

#define USEC_PER_SEC 1000000u
#define INITIAL_WINDOW 10u
#define MIN_WINDOW 2u
#define TARGET_MIN_US 1000u
#define TARGET_MAX_US 25000u
#define RECENT (sizeof(((struct cc_background *)0)->recent_rtt) / sizeof(uint32_t))

static uint32_t current_rtt(const struct cc_background *b)
{
    uint32_t best = 0;
    unsigned i;

    for (i = 0; i < RECENT; i++)
        if (b->recent_rtt[i] != 0 && (best == 0 || b->recent_rtt[i] < best))
            best = b->recent_rtt[i];
    return best;
}

static uint32_t target_delay(const struct cc_background *b)
{
    uint32_t t = b->base_rtt_us / 4;

    return t < TARGET_MIN_US ? TARGET_MIN_US : t > TARGET_MAX_US ? TARGET_MAX_US : t;
}

static uint64_t min_window(const struct pacer *p)
{
    return (uint64_t)MIN_WINDOW * p->params.packet_size;
}

static void set_outputs(struct pacer *p)
{
    struct cc_background *b = &p->policy.background;
    uint32_t rtt = current_rtt(b) ? current_rtt(b) : p->params.initial_rtt_us;

    if (b->cwnd_bytes < min_window(p))
        b->cwnd_bytes = min_window(p);
    p->cwnd = pacer_packets(p, b->cwnd_bytes);
    p->rate_bps = b->cwnd_bytes * 3 / 2 * USEC_PER_SEC / rtt;
    if (p->rate_bps < pacer_floor_rate(p))
        p->rate_bps = pacer_floor_rate(p);
}

static void background_init(struct pacer *p, uint64_t now)
{
    struct cc_background *b = &p->policy.background;

    (void)now;
    memset(b, 0, sizeof(*b));
    b->slow_start = 1;
    b->cwnd_bytes = (uint64_t)INITIAL_WINDOW * p->params.packet_size;
    set_outputs(p);
}

/* Cuts the window to fraction num/den, at most once per round trip. */
static void cut(struct pacer *p, uint64_t num, uint64_t den, uint64_t now)
{
    struct cc_background *b = &p->policy.background;
    uint32_t rtt = current_rtt(b) ? current_rtt(b) : p->params.initial_rtt_us;

    if (now < b->last_cut + rtt)
        return;
    b->last_cut = now;
    b->slow_start = 0;
    if (num * 2 < den)
        num = den / 2 + 1;
    b->cwnd_bytes = b->cwnd_bytes / den * num + b->cwnd_bytes % den * num / den;
}

static void background_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    struct cc_background *b = &p->policy.background;
    uint64_t acked = (uint64_t)s->newly_acked * p->params.packet_size;
    uint32_t qdelay, target;

    if (s->rtt_us != 0) {
        if (b->base_rtt_us == 0 || s->rtt_us < b->base_rtt_us)
            b->base_rtt_us = s->rtt_us;
        b->recent_rtt[b->recent_next] = s->rtt_us;
        b->recent_next = (unsigned)((b->recent_next + 1) % RECENT);
    }
    if (b->base_rtt_us == 0)
        return;
    qdelay = current_rtt(b) - b->base_rtt_us;
    target = target_delay(b);
    if (b->slow_start) {
        if (qdelay >= target / 2)
            b->slow_start = 0;
        else
            b->cwnd_bytes += acked;
    } else if (qdelay <= target) {
        uint64_t step = b->cwnd_bytes / 16 > p->params.packet_size ? b->cwnd_bytes / 16
                                                                   : p->params.packet_size;

        /* step per window acknowledged, scaled by how far below the target */
        b->cwnd_bytes += step * acked / (b->cwnd_bytes ? b->cwnd_bytes : 1) * (target - qdelay) /
                         target;
    } else {
        cut(p, target, qdelay, now);
    }
    set_outputs(p);
}

static void background_on_loss(struct pacer *p, uint32_t packets, uint64_t now)
{
    (void)packets;
    cut(p, 1, 2, now);
    set_outputs(p);
}

static void background_on_timeout(struct pacer *p, uint64_t now)
{
    struct cc_background *b = &p->policy.background;

    (void)now;
    b->slow_start = 0;
    b->cwnd_bytes = min_window(p);
    set_outputs(p);
}

const struct pacer_ops pacer_background_ops = {
    .name = "background",
    .init = background_init,
    .on_ack = background_on_ack,
    .on_loss = background_on_loss,
    .on_timeout = background_on_timeout,
    .on_ceiling_up = NULL,
};
