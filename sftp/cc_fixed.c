/*
 * cc_fixed.c - the fixed rate policy: the target rate, whatever happens
 * (Aspera's "fixed"). Loss, delay and timeouts change nothing; only the
 * window bounds what is in flight. For a path the user owns or has
 * reserved: on a shared one it takes its rate from everybody else.
 *
 * Without a target rate it paces at the maximum rate, and without either
 * it is limited by the window alone (docs/RATE.md says to give it a rate).
 */
#include "pacer.h"

#define NO_CEILING ((uint64_t)1 << 50)

static void fixed_set(struct pacer *p)
{
    uint64_t c = pacer_ceiling(p);

    p->rate_bps = c != UINT64_MAX ? c : NO_CEILING;
    p->cwnd = p->params.window;
}

static void fixed_init(struct pacer *p, uint64_t now)
{
    (void)now;
    fixed_set(p);
}

static void fixed_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now)
{
    (void)s;
    (void)now;
    fixed_set(p);
}

static void fixed_on_loss(struct pacer *p, uint32_t packets, uint64_t now)
{
    (void)packets;
    (void)now;
    fixed_set(p);
}

static void fixed_on_timeout(struct pacer *p, uint64_t now)
{
    (void)now;
    fixed_set(p);
}

static void fixed_on_ceiling_up(struct pacer *p, uint64_t now)
{
    (void)now;
    fixed_set(p);
}

const struct pacer_ops pacer_fixed_ops = {
    .name = "fixed",
    .init = fixed_init,
    .on_ack = fixed_on_ack,
    .on_loss = fixed_on_loss,
    .on_timeout = fixed_on_timeout,
    .on_ceiling_up = fixed_on_ceiling_up,
};
