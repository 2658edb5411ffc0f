/*
 * bottleneck.c - the modelled path and competing flow of bottleneck.h.
 */
#include "bottleneck.h"

#include <stdlib.h>
#include <string.h>

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double chance(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) / (double)(1ull << 53);
}

void bn_link_init(struct bn_link *l, uint64_t rate, uint32_t delay_us, uint64_t queue_cap,
                  double loss, uint64_t seed)
{
    memset(l, 0, sizeof(*l));
    l->rate = rate;
    l->delay_us = delay_us;
    l->queue_cap = queue_cap;
    l->loss = loss;
    l->rng = seed;
}

void bn_link_dispose(struct bn_link *l)
{
    free(l->q);
    l->q = NULL;
}

/* Forgets what has left the queue by now. */
static void drain(struct bn_link *l, uint64_t now)
{
    while (l->q_count > 0 && l->q[l->q_head].depart <= now) {
        l->queued_bytes -= l->q[l->q_head].len;
        l->q_head = (l->q_head + 1) % l->q_size;
        l->q_count--;
    }
}

static void push(struct bn_link *l, uint64_t depart, uint32_t len)
{
    if (l->q_count == l->q_size) {
        uint32_t size = l->q_size ? l->q_size * 2 : 1024, i;
        struct bn_slot *q = malloc(size * sizeof(*q));

        if (q == NULL)
            abort();
        for (i = 0; i < l->q_count; i++)
            q[i] = l->q[(l->q_head + i) % l->q_size];
        free(l->q);
        l->q = q;
        l->q_head = 0;
        l->q_size = size;
    }
    l->q[(l->q_head + l->q_count) % l->q_size] = (struct bn_slot){depart, len};
    l->q_count++;
    l->queued_bytes += len;
    if (l->queued_bytes > l->max_queued)
        l->max_queued = l->queued_bytes;
}

uint64_t bn_link_send(struct bn_link *l, uint64_t now, uint32_t len)
{
    uint64_t start, depart;

    l->sent++;
    if (l->rate == 0) {
        depart = now;
    } else {
        drain(l, now);
        if (l->queued_bytes + len > l->queue_cap) {
            l->dropped_full++;
            return BN_NEVER;
        }
        start = l->last_depart > now ? l->last_depart : now;
        depart = start + ((uint64_t)len * 1000000u + l->rate - 1) / l->rate;
        l->last_depart = depart;
        push(l, depart, len);
    }
    if (l->loss > 0 && chance(&l->rng) < l->loss) {
        l->dropped_loss++;
        return BN_NEVER;
    }
    depart += l->delay_us;
    if (l->jitter_us > 0) {
        depart += (uint64_t)(chance(&l->rng) * (l->jitter_us + 1));
        if (depart < l->last_arrival)
            depart = l->last_arrival;
        l->last_arrival = depart;
    }
    return depart;
}

uint64_t bn_link_queue_delay(struct bn_link *l, uint64_t now)
{
    drain(l, now);
    return l->last_depart > now ? l->last_depart - now : 0;
}

/* ---- the Reno flow -------------------------------------------------------- */

static void fifo_push(struct bn_fifo *f, uint64_t at)
{
    if (f->count == f->size) {
        uint32_t size = f->size ? f->size * 2 : 1024, i;
        uint64_t *a = malloc(size * sizeof(*a));

        if (a == NULL)
            abort();
        for (i = 0; i < f->count; i++)
            a[i] = f->at[(f->head + i) % f->size];
        free(f->at);
        f->at = a;
        f->head = 0;
        f->size = size;
    }
    f->at[(f->head + f->count) % f->size] = at;
    f->count++;
}

static uint64_t fifo_head(const struct bn_fifo *f)
{
    return f->count > 0 ? f->at[f->head] : BN_NEVER;
}

static void fifo_pop(struct bn_fifo *f)
{
    f->head = (f->head + 1) % f->size;
    f->count--;
}

void bn_reno_init(struct bn_reno *r, struct bn_link *fwd, uint32_t rev_delay_us, uint32_t mss)
{
    memset(r, 0, sizeof(*r));
    r->fwd = fwd;
    r->rev_delay_us = rev_delay_us;
    r->mss = mss;
    r->base_rtt_us = fwd->delay_us + rev_delay_us;
    r->cwnd = 10;
    r->ssthresh = 1e9;
}

void bn_reno_dispose(struct bn_reno *r)
{
    free(r->acks.at);
    free(r->losses.at);
    free(r->lost_sent_at.at);
}

static void send_what_fits(struct bn_reno *r, uint64_t now)
{
    while (r->running && r->in_flight < (uint32_t)r->cwnd) {
        uint64_t at = bn_link_send(r->fwd, now, r->mss + 52);

        r->in_flight++;
        r->sent_packets++;
        if (at == BN_NEVER) { /* noticed a round trip later, as dup ACKs would show it */
            fifo_push(&r->losses, now + r->base_rtt_us + bn_link_queue_delay(r->fwd, now));
            fifo_push(&r->lost_sent_at, now);
        } else {
            fifo_push(&r->acks, at + r->rev_delay_us);
        }
    }
}

void bn_reno_start(struct bn_reno *r, uint64_t now)
{
    r->running = 1;
    send_what_fits(r, now);
}

void bn_reno_stop(struct bn_reno *r)
{
    r->running = 0;
}

uint64_t bn_reno_next(const struct bn_reno *r)
{
    uint64_t a = fifo_head(&r->acks), l = fifo_head(&r->losses);

    return a < l ? a : l;
}

void bn_reno_run(struct bn_reno *r, uint64_t now)
{
    while (fifo_head(&r->acks) <= now || fifo_head(&r->losses) <= now) {
        if (fifo_head(&r->acks) <= fifo_head(&r->losses)) {
            fifo_pop(&r->acks);
            r->in_flight--;
            r->delivered_bytes += r->mss;
            r->cwnd += r->cwnd < r->ssthresh ? 1.0 : 1.0 / r->cwnd;
        } else {
            uint64_t sent_at = fifo_head(&r->lost_sent_at);

            fifo_pop(&r->losses);
            fifo_pop(&r->lost_sent_at);
            r->in_flight--;
            if (sent_at >= r->recovery_began) {
                r->loss_events++;
                r->ssthresh = r->cwnd / 2 > 2 ? r->cwnd / 2 : 2;
                r->cwnd = r->ssthresh;
                r->recovery_began = now;
            }
        }
    }
    send_what_fits(r, now);
}
