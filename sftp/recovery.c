/*
 * recovery.c - loss detection and the probe timeout of the SFTP source
 * (recovery.h).
 */
#include "recovery.h"

#include <stddef.h>

#define NEVER UINT64_MAX

void recovery_init(struct recovery *r, uint32_t initial_us, uint32_t min_us, uint32_t max_us)
{
    *r = (struct recovery){.loss_time = NEVER};
    rtt_init(&r->rtt, initial_us, min_us, max_us);
}

uint32_t recovery_srtt(const struct recovery *r)
{
    return r->rtt.srtt_us != 0 ? r->rtt.srtt_us : r->rtt.initial_us;
}

uint32_t recovery_on_largest(struct recovery *r, uint64_t tx, uint64_t sent_time,
                             uint32_t ack_delay_us, uint64_t now)
{
    uint64_t elapsed;
    uint32_t latest, adjusted;

    if (tx <= r->largest_acked_tx)
        return 0;
    r->largest_acked_tx = tx;
    r->last_ack_time = now;
    if (r->probe_tx != 0 && tx < r->probe_tx)
        r->probe_tx = 0; /* a send from before the PTO came back: the path was only slow */
    elapsed = now > sent_time ? now - sent_time : 1;
    latest = elapsed < UINT32_MAX / 2 ? (uint32_t)elapsed : UINT32_MAX / 2;
    /* A sink cannot have held a packet longer than the round trip took. */
    if (ack_delay_us >= latest)
        ack_delay_us = 0;
    if (ack_delay_us > r->max_ack_delay_us)
        r->max_ack_delay_us = ack_delay_us;
    r->latest_rtt_us = latest;
    if (r->min_rtt_us == 0 || latest < r->min_rtt_us)
        r->min_rtt_us = latest;
    /* RFC 9002 5.3: the delay the sink added is not the path's, unless
     * taking it off would go below the path's own minimum. */
    adjusted = latest - ack_delay_us >= r->min_rtt_us ? latest - ack_delay_us : latest;
    rtt_sample(&r->rtt, adjusted);
    return latest;
}

static uint64_t loss_delay(const struct recovery *r)
{
    uint64_t base = r->latest_rtt_us > r->rtt.srtt_us ? r->latest_rtt_us : r->rtt.srtt_us;

    base += base / 8;
    return base > RECOVERY_GRANULARITY_US ? base : RECOVERY_GRANULARITY_US;
}

struct recovery_verdict recovery_detect(struct recovery *r, struct sentmap *m, uint64_t now)
{
    struct recovery_verdict v = {0};
    uint64_t delay = loss_delay(r);
    uint32_t lost_before_probe = 0;
    struct sentmap_packet *p;

    r->loss_time = NEVER;
    while ((p = sentmap_head(m, &m->flight)) != NULL && p->tx_order < r->largest_acked_tx) {
        if (p->tx_order + RECOVERY_PACKET_THRESHOLD > r->largest_acked_tx &&
            p->sent_time + delay > now) {
            r->loss_time = p->sent_time + delay;
            break;
        }
        if (r->probe_tx != 0 && p->tx_order < r->probe_tx)
            lost_before_probe++;
        v.lost++;
        v.lost_bytes += p->len;
        sentmap_worry(m, p);
    }
    if (r->probe_tx != 0 && r->largest_acked_tx >= r->probe_tx) {
        /* The probe is back: what was sent before it and is still
         * missing was lost, and the timeout was real. */
        v.timeout_confirmed = lost_before_probe > 0;
        v.timeout_spurious = lost_before_probe == 0;
        r->probe_tx = 0;
    }
    return v;
}

uint32_t recovery_pto(const struct recovery *r)
{
    uint64_t pto = rtt_timeout(&r->rtt);

    /* rtt_timeout applied the backoff to srtt + 4 rttvar; the ack delay
     * backs off with it. */
    pto += (uint64_t)r->max_ack_delay_us << (r->rtt.backoff < 16 ? r->rtt.backoff : 16);
    return pto < r->rtt.max_us ? (uint32_t)pto : r->rtt.max_us;
}

uint64_t recovery_deadline(const struct recovery *r, struct sentmap *m)
{
    const struct sentmap_packet *newest;
    uint64_t from;

    if (m->flight.count == 0)
        return NEVER;
    if (r->loss_time != NEVER)
        return r->loss_time;
    newest = &m->slots[m->flight.tail];
    from = newest->sent_time > r->last_ack_time ? newest->sent_time : r->last_ack_time;
    return from + recovery_pto(r);
}

void recovery_on_pto(struct recovery *r, uint64_t next_tx)
{
    rtt_backoff(&r->rtt);
    if (r->probe_tx == 0)
        r->probe_tx = next_tx;
}
