/*
 * cc_background.c - the background policy: use what nobody else wants, and
 * give it back as soon as somebody does (after LEDBAT, RFC 6817, and
 * LEDBAT++).
 *
 * Queueing delay is the signal: the current delay (the smallest RTT of
 * the last quarter of the path's delay, so that a host or link pausing a
 * few milliseconds is not taken for a queue) less the path's own (the
 * smallest ever seen). The target is a small queue, a fourteenth of the
 * path's delay between 2 and 10 ms: enough to keep the link busy when alone, and under what makes a
 * TCP flow stop doubling (Linux's cubic leaves slow start once its RTT is
 * an eighth of the path's delay above its smallest, HyStart). A TCP flow
 * that stops short of the link's rate, or halves there, grows back by a
 * few segments a round trip for seconds, and this flow would fill the gap
 * for all that time; so it must be out of the way whenever another flow is
 * starting. Hence:
 *
 *  - Start-up doubles the window each round trip until a queue shows (half
 *    the target). Another flow starting up beside it looks just like this
 *    flow's own queue, so it then steps aside at once, to a sixteenth of
 *    its window, and doubles again up to half what it had (its own
 *    overshoot). A TCP flow starting with it is then many doublings ahead
 *    and fills the link first; alone it is back near the link's rate a few
 *    round trips later.
 *  - Settled, below the target the window grows by (target - delay) /
 *    target packets per round trip, or by that share of a sixteenth of
 *    itself once larger than sixteen packets (LEDBAT); past the target it
 *    shrinks to what would hold the queue at the target were it alone,
 *    (path + target) / (path + delay) of itself.
 *  - Past twice the target a queue grows faster than this flow's own
 *    growth explains: somebody else is starting. It steps aside to a
 *    sixteenth at once, and doubles back to half what it had only once the
 *    path has been quiet for four of its round trips (a flow starting then
 *    would have filled the link by now).
 *  - A loss halves the window, as TCP would; a timeout leaves two packets.
 *  - One cut per round: after a cut, what the ACKs show is the queue from
 *    before it until a packet sent after it is ACKed (a step aside may
 *    still follow a smaller cut within the round).
 *
 * The pace is 1.5 windows per current RTT; the window keeps it in bounds.
 */
#include "pacer.h"

#include <string.h>

#define USEC_PER_SEC 1000000u
#define INITIAL_WINDOW 10u
#define MIN_WINDOW 2u
#define TARGET_DIVISOR 14u
#define TARGET_MIN_US 2000u
#define TARGET_MAX_US 10000u
#define SPAN_MIN_US 250u
#define STEP_ASIDE 16u   /* stepping aside leaves this fraction of the window */
#define STEP_ASIDE_AT 2u /* times the target */
#define QUIET_ROUNDS 4u
#define STARTUP UINT64_MAX /* regrow_to while the first doubling lasts */
#define GROWTH 16u         /* at most a sixteenth of the window per round trip */
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

/* The current delay's memory: four spans of a sixteenth of the path's
 * delay (at least SPAN_MIN_US). */
static void note_rtt(struct cc_background *b, uint32_t rtt_us, uint64_t now)
{
    uint64_t span = b->base_rtt_us / 16 > SPAN_MIN_US ? b->base_rtt_us / 16 : SPAN_MIN_US;
    uint32_t *slot = &b->recent_rtt[b->recent_now];

    if (b->base_rtt_us == 0 || rtt_us < b->base_rtt_us)
        b->base_rtt_us = rtt_us;
    if (*slot != 0 && now - b->span_start >= span) {
        b->recent_now = (unsigned)((b->recent_now + 1) % RECENT);
        b->span_start = now;
        slot = &b->recent_rtt[b->recent_now];
        *slot = 0;
    }
    if (*slot == 0 || rtt_us < *slot)
        *slot = rtt_us;
}

static uint32_t target_delay(const struct cc_background *b)
{
    uint32_t t = b->base_rtt_us / TARGET_DIVISOR;

    return t < TARGET_MIN_US ? TARGET_MIN_US : t > TARGET_MAX_US ? TARGET_MAX_US : t;
}

static uint64_t min_window(const struct pacer *p)
{
    return (uint64_t)MIN_WINDOW * p->params.packet_size;
}

static void set_outputs(struct pacer *p)
{
    struct cc_background *b = &p->policy.background;
    uint32_t rtt = current_rtt(b);

    if (rtt == 0)
        rtt = p->params.initial_rtt_us;

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
    b->regrow_to = STARTUP;
    b->cwnd_bytes = (uint64_t)INITIAL_WINDOW * p->params.packet_size;
    set_outputs(p);
}

/* Cuts the window to fraction num/den (not below a sixteenth), at most
 * once per round: not again until a packet sent after this cut is ACKed,
 * unless this cut steps aside and the last one did not. Ends any
 * doubling. Returns whether it cut. */
static int cut(struct pacer *p, uint64_t num, uint64_t den)
{
    struct cc_background *b = &p->policy.background;
    int aside = num * STEP_ASIDE <= den;

    if (b->settling && (b->settling_aside || !aside))
        return 0;
    b->settling = 1;
    b->settling_aside = aside;
    b->cut_delivered = b->delivered;
    b->slow_start = 0;
    if (aside)
        num = 1, den = STEP_ASIDE;
    b->cwnd_bytes = b->cwnd_bytes / den * num + b->cwnd_bytes % den * num / den;
    return 1;
}

/* A queue showed: step aside, and double back up to half of what it had
 * (a doubling's overshoot, if it was alone; room for growth to fill, if it
 * was settled): at once if it was doubling, else once the path is quiet. */
static void step_aside(struct pacer *p, uint64_t now)
{
    struct cc_background *b = &p->policy.background;
    uint64_t had = b->cwnd_bytes;
    int doubling = b->slow_start;

    if (!cut(p, 1, STEP_ASIDE))
        return;
    b->regrow_to = had / 2;
    b->slow_start = doubling;
    b->quiet_since = now;
}

/* Queueing delay under half the target: after a step aside, doubling back
 * begins once that has lasted. */
static void note_quiet(struct cc_background *b, uint32_t qdelay, uint32_t target, uint64_t now)
{
    if (qdelay >= target / 2)
        b->quiet_since = now;
    else if (b->regrow_to != 0 && now - b->quiet_since >= (uint64_t)QUIET_ROUNDS * b->base_rtt_us)
        b->slow_start = 1;
}

static void grow(struct pacer *p, uint64_t acked, uint32_t qdelay, uint32_t target)
{
    struct cc_background *b = &p->policy.background;
    uint64_t step = b->cwnd_bytes / GROWTH > p->params.packet_size ? b->cwnd_bytes / GROWTH
                                                                   : p->params.packet_size;

    /* step per window acknowledged, scaled by how far below the target */
    b->cwnd_bytes +=
        step * acked / (b->cwnd_bytes ? b->cwnd_bytes : 1) * (target - qdelay) / target;
}

static void background_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    struct cc_background *b = &p->policy.background;
    uint64_t acked = (uint64_t)s->newly_acked * p->params.packet_size;
    uint32_t qdelay, target;

    if (s->rtt_us != 0)
        note_rtt(b, s->rtt_us, now);
    b->delivered = s->total_delivered;
    if (b->settling && s->rtt_us != 0 && s->prior_delivered >= b->cut_delivered)
        b->settling = 0;
    if (b->base_rtt_us == 0 || (b->settling && b->settling_aside)) {
        set_outputs(p);
        return;
    }
    qdelay = current_rtt(b) - b->base_rtt_us;
    target = target_delay(b);
    if (b->slow_start && qdelay < target / 2) {
        b->cwnd_bytes += acked;
        if (b->cwnd_bytes >= b->regrow_to)
            b->slow_start = 0, b->regrow_to = 0;
    } else if ((b->slow_start && b->regrow_to == STARTUP) || qdelay > STEP_ASIDE_AT * target) {
        step_aside(p, now);
    } else if (b->slow_start) {
        b->slow_start = 0;
    } else if (qdelay > target) {
        cut(p, (uint64_t)b->base_rtt_us + target, (uint64_t)b->base_rtt_us + qdelay);
    } else if (!b->settling) {
        grow(p, acked, qdelay, target);
    }
    if (!b->slow_start)
        note_quiet(b, qdelay, target, now);
    set_outputs(p);
}

static void background_on_loss(struct pacer *p, uint32_t packets, uint64_t now)
{
    (void)packets;
    (void)now;
    cut(p, 1, 2);
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
