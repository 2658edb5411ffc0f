/*
 * bottleneck.h - a modelled network path for the in-memory rate-control
 * tests: a link of a given rate whose drop-tail queue (in bytes) fills
 * when more arrives than it can send, a propagation delay after it, and
 * random loss on the wire; and a TCP Reno flow that competes for the same
 * queue. A real queue, not a formula: each datagram waits behind the ones
 * already in it, is dropped when it does not fit, and leaves when the link
 * has sent everything before it.
 *
 * Times are microseconds of the test's fake clock, rates bytes per second.
 */
#ifndef RPC2_TESTS_BOTTLENECK_H
#define RPC2_TESTS_BOTTLENECK_H

#include <stdint.h>

#define BN_NEVER UINT64_MAX
/* What a datagram costs on the wire beyond its body: the rpc2 header and
 * trailer, UDP and IPv4. */
#define BN_OVERHEAD 76u

struct bn_slot {
    uint64_t depart;
    uint32_t len;
};

struct bn_link {
    uint64_t rate;      /* bytes per second; 0: no limit, no queue */
    uint32_t delay_us;  /* propagation after the queue */
    uint64_t queue_cap; /* bytes waiting, the one on the wire included */
    double loss;        /* probability a datagram is lost on the wire */
    uint32_t jitter_us; /* extra delay, uniform in [0, jitter_us]; never reorders */
    uint64_t rng;
    uint64_t last_arrival;
    struct bn_slot *q; /* FIFO ring of what waits or is being sent */
    uint32_t q_head, q_count, q_size;
    uint64_t queued_bytes, last_depart;
    uint64_t sent, dropped_full, dropped_loss, max_queued;
};

void bn_link_init(struct bn_link *l, uint64_t rate, uint32_t delay_us, uint64_t queue_cap,
                  double loss, uint64_t seed);
void bn_link_dispose(struct bn_link *l);
/* A datagram of len bytes enters at now: when it reaches the far end, or
 * BN_NEVER when the queue was full or the wire lost it. */
uint64_t bn_link_send(struct bn_link *l, uint64_t now, uint32_t len);
/* How long a datagram entering now would wait before it is sent. */
uint64_t bn_link_queue_delay(struct bn_link *l, uint64_t now);

/*
 * A TCP Reno sender and its receiver across fwd (the shared bottleneck)
 * and a return delay: slow start, one segment more per round trip after,
 * and half the window when a drop is noticed (a round trip after it, as
 * duplicate ACKs would tell it). A drop of a packet sent before the last
 * halving is part of that halving, as NewReno's recovery point makes it
 * (RFC 6582): a recovery that ended a round trip after the halving halved
 * again for the drops of a slow-start overshoot, noticed late because they
 * were sent into a full queue. Packets are ACKed one by one; only the
 * order of events matters, so they live in FIFOs of times.
 */
struct bn_fifo {
    uint64_t *at;
    uint32_t head, count, size;
};

struct bn_reno {
    struct bn_link *fwd;
    uint32_t rev_delay_us, mss, base_rtt_us;
    double cwnd, ssthresh;
    uint32_t in_flight;
    uint64_t recovery_began; /* the last halving */
    struct bn_fifo acks, losses, lost_sent_at;
    uint64_t delivered_bytes, sent_packets, loss_events;
    int running;
};

void bn_reno_init(struct bn_reno *r, struct bn_link *fwd, uint32_t rev_delay_us, uint32_t mss);
void bn_reno_dispose(struct bn_reno *r);
/* Starts (or stops) sending at now. */
void bn_reno_start(struct bn_reno *r, uint64_t now);
void bn_reno_stop(struct bn_reno *r);
/* Its next event, BN_NEVER when none. */
uint64_t bn_reno_next(const struct bn_reno *r);
/* Runs the events due at now. */
void bn_reno_run(struct bn_reno *r, uint64_t now);

#endif
