/*
 * pacer.h - how fast the SFTP source sends: a release mechanism that lets
 * packets out at a rate in bursts of at most send_ahead, and a rate
 * controller behind a small ops table that decides the rate (and how many
 * packets may be in flight) from what ACKs report.
 *
 * The split keeps the send path fixed while policies change: the source
 * asks only "may I send now?", "when next?" and "how many in flight?", and
 * reports sends, ACK rate samples, losses and timeouts. A fixed-rate, a
 * TCP-friendly and a background policy are each one more ops table (and
 * one more member of the state union); sftp_pacer_delivery is the first.
 *
 * Times are microseconds, rates bytes per second.
 */
#ifndef RPC2_SFTP_PACER_H
#define RPC2_SFTP_PACER_H

#include <stdint.h>

/* What one ACK says about delivery (after Cheng et al., "Delivery Rate
 * Estimation", draft-cheng-iccrg-delivery-rate-estimation). */
struct pacer_sample {
    uint64_t delivered;       /* bytes delivered during the interval */
    uint64_t interval_us;     /* 0: no rate sample in this ACK */
    uint64_t prior_delivered; /* total delivered when the sampled packet was sent */
    uint64_t total_delivered; /* total delivered now */
    uint32_t rtt_us;          /* the ACK's RTT sample; 0: none */
    uint32_t min_rtt_us;      /* the path's smallest RTT so far (recovery.h) */
    uint32_t srtt_us;         /* smoothed, ack delay taken off */
    uint32_t newly_acked;     /* packets */
    uint32_t in_flight;       /* packets, after this ACK */
    int app_limited;          /* the sampled packet left while the source had nothing to send */
};

struct pacer;

struct pacer_ops {
    const char *name;
    void (*init)(struct pacer *p, uint64_t now);
    void (*on_ack)(struct pacer *p, const struct pacer_sample *s, uint64_t now);
    void (*on_loss)(struct pacer *p, uint32_t packets, uint64_t now);
    void (*on_timeout)(struct pacer *p, uint64_t now);
};

#define PACER_ROUNDS 8 /* the bandwidth filter's memory, in round trips */

/* The delivery-rate policy's state (see pacer.c). */
struct pacer_delivery {
    uint64_t bw_by_round[PACER_ROUNDS]; /* most bytes/s seen in each recent round */
    unsigned round_slot;                /* the slot of round filter_round */
    uint64_t filter_round;              /* the round of the latest sample taken */
    uint64_t round_count, next_round_delivered;
    uint64_t full_bw;        /* startup: bandwidth at the last 25% growth */
    unsigned full_bw_rounds; /* startup: rounds since it */
    int pipe_full;           /* startup is over */
    unsigned cycle;          /* steady state: position in the gain cycle */
    uint32_t min_rtt_us;     /* the path's own delay, without queues */
    uint32_t srtt_us;        /* smoothed, for the in-flight limit */
};

struct pacer_params {
    uint32_t packet_size;
    uint32_t send_ahead;     /* largest burst, in packets */
    uint32_t window;         /* most packets in flight, whatever the policy says */
    uint64_t rate_max_bps;   /* 0: no ceiling */
    uint32_t initial_rtt_us; /* before any sample (the initial retransmission timeout) */
};

struct pacer {
    const struct pacer_ops *ops;
    struct pacer_params params;
    /* Set by the policy. */
    uint64_t rate_bps;
    uint32_t cwnd; /* packets in flight allowed, 1 .. window */
    /* The release: tokens in bytes, at most a burst; negative is debt. */
    int64_t tokens;
    uint64_t refilled_at;
    union {
        struct pacer_delivery delivery;
    } policy;
};

extern const struct pacer_ops pacer_delivery_ops;

void pacer_init(struct pacer *p, const struct pacer_ops *ops, const struct pacer_params *params,
                uint64_t now);

/* The release. */
int pacer_may_send(struct pacer *p, uint64_t now);
void pacer_sent(struct pacer *p, uint32_t bytes, uint64_t now);
/* When pacer_may_send will next be true (now if it is). */
uint64_t pacer_next_release(struct pacer *p, uint64_t now);

/* The policy's outputs, rate_max_bps and window applied. */
uint64_t pacer_rate(const struct pacer *p);
uint32_t pacer_cwnd(const struct pacer *p);

/* Events, passed to the policy. */
void pacer_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now);
void pacer_on_loss(struct pacer *p, uint32_t packets, uint64_t now);
void pacer_on_timeout(struct pacer *p, uint64_t now);

#endif
