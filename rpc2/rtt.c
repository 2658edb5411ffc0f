/*
 * rtt.c - the retransmission timeout of one connection or transfer.
 *
 * Kept apart from the protocol machines so that the arithmetic (gains,
 * rounding, clamping, backoff) can be checked against RFC 6298 with plain
 * numbers, and so every machine waits by the same rules.
 */
#include "rtt.h"

/* RFC 6298's G: never wait less than srtt plus this, however steady the RTT
 * looks, so scheduling jitter on the receiver does not cause retransmissions. */
#define RTT_GRANULARITY_US 1000u

/* Beyond this many doublings any 32-bit timeout is already above max. */
#define RTT_MAX_BACKOFF 32u

void rtt_init(struct rtt *r, uint32_t initial_us, uint32_t min_us, uint32_t max_us)
{
    r->srtt_us = 0;
    r->rttvar_us = 0;
    r->initial_us = initial_us;
    r->min_us = min_us;
    r->max_us = max_us;
    r->backoff = 0;
}

/*
 * (old * keep + sample) >> shift, rounded toward the sample: truncation alone
 * would leave the estimate stuck a few microseconds below a steady RTT.
 */
static uint32_t ewma(uint64_t old, uint64_t sample, unsigned keep, unsigned shift)
{
    uint64_t sum = old * keep + sample;
    uint64_t div = (uint64_t)1 << shift;

    if (sample > old)
        return (uint32_t)((sum + div - 1) / div);
    return (uint32_t)(sum / div);
}

void rtt_sample(struct rtt *r, uint32_t sample_us)
{
    /* srtt 0 means "no sample yet", so a sub-microsecond RTT counts as 1. */
    if (sample_us == 0)
        sample_us = 1;
    r->backoff = 0;
    if (r->srtt_us == 0) {
        r->srtt_us = sample_us;
        r->rttvar_us = sample_us / 2;
        return;
    }
    uint32_t delta = r->srtt_us > sample_us ? r->srtt_us - sample_us : sample_us - r->srtt_us;

    /* RFC 6298 2.3: the variance uses the old srtt, so update it first. */
    r->rttvar_us = ewma(r->rttvar_us, delta, 3, 2);
    r->srtt_us = ewma(r->srtt_us, sample_us, 7, 3);
}

static uint64_t clamp(uint64_t v, uint32_t lo, uint32_t hi)
{
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;
}

uint32_t rtt_timeout(const struct rtt *r)
{
    uint64_t base = r->initial_us;

    if (r->srtt_us != 0) {
        uint64_t var = (uint64_t)r->rttvar_us * 4;

        base = (uint64_t)r->srtt_us + (var > RTT_GRANULARITY_US ? var : RTT_GRANULARITY_US);
    }
    base = clamp(base, r->min_us, r->max_us);
    if (r->backoff >= RTT_MAX_BACKOFF)
        return r->max_us;
    /* base < 2^32 and backoff < 32: the shift fits in 64 bits. */
    return (uint32_t)clamp(base << r->backoff, r->min_us, r->max_us);
}

void rtt_backoff(struct rtt *r)
{
    /* Count only doublings that still change the timeout, so the counter
     * saturates where the timeout does. */
    if (r->backoff < RTT_MAX_BACKOFF && rtt_timeout(r) < r->max_us)
        r->backoff++;
}

uint32_t rtt_ts_elapsed(uint32_t now_ts, uint32_t echoed_ts)
{
    return now_ts - echoed_ts;
}
