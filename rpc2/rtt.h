/*
 * rtt.h - the round-trip-time estimator behind every retransmission timer.
 *
 * Smoothed RTT and variance from samples (RFC 6298's gains), a timeout of
 * srtt + 4 * rttvar clamped to [min, max], doubled by each backoff step and
 * reset by the next sample. Samples come from echoed timestamps, so a
 * retransmitted packet still yields a true sample (no Karn ambiguity).
 */
#ifndef RPC2_RTT_H
#define RPC2_RTT_H

#include <stdint.h>

struct rtt {
    uint32_t srtt_us;   /* 0 until the first sample */
    uint32_t rttvar_us;
    uint32_t initial_us, min_us, max_us;
    unsigned backoff;   /* number of doublings applied to the timeout */
};

void rtt_init(struct rtt *r, uint32_t initial_us, uint32_t min_us, uint32_t max_us);
void rtt_sample(struct rtt *r, uint32_t sample_us);
/* The current retransmission timeout, backoff applied, within [min, max]. */
uint32_t rtt_timeout(const struct rtt *r);
void rtt_backoff(struct rtt *r);
/* Microseconds from an echoed 32-bit timestamp to now_ts (wrap-safe). */
uint32_t rtt_ts_elapsed(uint32_t now_ts, uint32_t echoed_ts);

#endif
