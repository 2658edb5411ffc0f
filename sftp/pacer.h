/*
 * pacer.h - how fast the SFTP source sends: a release mechanism that lets
 * packets out at a rate in bursts of at most pacer_burst, and a rate
 * controller behind a small ops table that decides the rate (and how many
 * packets may be in flight) from what ACKs report.
 *
 * The split keeps the send path fixed while policies change: the source
 * asks only "may I send now?", "when next?" and "how many in flight?", and
 * reports sends, ACK rate samples, losses and timeouts. Each policy is one
 * ops table in a file of its own (cc_adaptive.c, cc_fixed.c,
 * cc_background.c; docs/RATE.md) and one member of the state union; the
 * target and minimum rates, which a user may change while a transfer
 * runs, bound whatever the policy decides.
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
    /* The ceiling rose (or went): find out what the path now gives. May be NULL. */
    void (*on_ceiling_up)(struct pacer *p, uint64_t now);
};

#define PACER_ROUNDS 10 /* the bandwidth filter's memory, in round trips */

/* The adaptive policy's model of the bottleneck (cc_adaptive.c). */
struct cc_adaptive {
    uint64_t bw_by_round[PACER_ROUNDS]; /* most bytes/s seen in each recent round */
    unsigned round_slot;                /* the slot of round filter_round */
    uint64_t filter_round;              /* the round of the latest sample taken */
    uint64_t round_count, next_round_delivered;
    uint64_t full_bw;          /* startup: bandwidth at the last 25% growth */
    unsigned full_bw_rounds;   /* startup: rounds since it */
    uint32_t round_min_rtt_us; /* startup: the smallest RTT of this round (0: none yet) */
    int mode;                  /* startup, drain, probe_bw, probe_rtt */
    unsigned cycle;            /* probe_bw: position in the gain cycle */
    uint64_t cycle_start;
    /* probe_bw: the last drain ran out of time before the queue went: it
     * is another flow's, so in flight may not be held to a short queue. */
    int queue_shared;
    uint32_t min_rtt_us; /* the path's own delay, without queues, lately */
    uint64_t min_rtt_at; /* when it was last seen (or confirmed) */
    uint64_t probe_rtt_until;
    uint32_t probe_min_rtt_us; /* probe_rtt: the smallest RTT it saw (0: none yet) */
    /* Acks that come in bursts (batches, aggregation): the most they ran
     * ahead of the estimated rate lately, added to the in-flight limit. */
    uint64_t epoch_start, epoch_acked;
    uint64_t extra_acked[2];
    uint64_t extra_round;
    uint32_t in_flight;
    /* Loss the path shows without a queue (random, on the wire): the
     * delivery rate is the pace less it, so probe_bw paces that much above
     * the rate to fill the link. Counted per round, smoothed over rounds. */
    uint64_t loss_acked, loss_lost; /* packets this round */
    uint32_t loss_max_rtt_us;       /* this round's largest RTT */
    uint32_t random_loss_ppm;
};

/* The background policy's state (cc_background.c). */
struct cc_background {
    uint64_t cwnd_bytes;
    uint64_t regrow_to;     /* doubling after a step aside stops here; 0: none due */
    uint64_t quiet_since;   /* the queue last stood at half the target or more */
    uint32_t base_rtt_us;   /* the path without queues */
    uint32_t recent_rtt[4]; /* the smallest RTT of each of the last four spans */
    unsigned recent_now;    /* the span being filled */
    uint64_t span_start;
    uint64_t delivered;     /* the latest total delivered */
    uint64_t cut_delivered; /* total delivered at the last cut */
    int settling;           /* cut, and no packet sent since has been ACKed: what the
                             * ACKs show is the queue from before the cut */
    int settling_aside;     /* ... and that cut stepped aside */
    int slow_start;         /* doubling: start-up, or regrowing after a step aside */
};

struct pacer_params {
    uint32_t packet_size;
    uint32_t send_ahead;     /* largest burst, in packets, at rates below 2 ms of it */
    uint32_t ack_point;      /* the sink acks every this many packets */
    uint32_t window;         /* most packets in flight, whatever the policy says */
    uint64_t rate_max_bps;   /* 0: no ceiling */
    uint32_t initial_rtt_us; /* before any sample (the initial retransmission timeout) */
};

struct pacer {
    const struct pacer_ops *ops;
    struct pacer_params params;
    /* Asked for while running (pacer_set_rates): a ceiling and a floor, 0: none. */
    uint64_t target_bps, min_bps;
    /* Set by the policy. */
    uint64_t rate_bps;
    uint32_t cwnd; /* packets in flight allowed, 1 .. window */
    uint32_t srtt_us;
    /* The release: tokens in bytes, at most a burst; negative is debt. */
    int64_t tokens;
    uint64_t refilled_at;
    int awaited;     /* the sender waits for a release (not for the window) */
    int fell_behind; /* that release came so late the bucket overflowed */
    union {
        struct cc_adaptive adaptive;
        struct cc_background background;
    } policy;
};

extern const struct pacer_ops pacer_adaptive_ops;
extern const struct pacer_ops pacer_fixed_ops;
extern const struct pacer_ops pacer_background_ops;

void pacer_init(struct pacer *p, const struct pacer_ops *ops, const struct pacer_params *params,
                uint64_t now);

/* The release. */
int pacer_may_send(struct pacer *p, uint64_t now);
void pacer_sent(struct pacer *p, uint32_t bytes, uint64_t now);
/* The most packets one release lets out: send_ahead, or more at rates
 * whose bucket must outlast the loop's coarse timers (pacer.c). */
uint32_t pacer_burst(const struct pacer *p);
/* When pacer_may_send will next be true (now if it is). */
uint64_t pacer_next_release(struct pacer *p, uint64_t now);
/* Whether the sender fell behind the rate since the last call (its wake-ups
 * came late, and the bucket could not keep what it missed): then what the
 * ACKs of its packets show is its own pace, not the path's (app-limited). */
int pacer_fell_behind(struct pacer *p);

/* The policy's outputs, within the ceiling (the smaller of target and
 * rate_max), above the floor (min, itself below the ceiling), and within
 * the window; the in-flight limit leaves room for the floor's rate. */
uint64_t pacer_rate(const struct pacer *p);
uint32_t pacer_cwnd(const struct pacer *p);
/* The ceiling in force: UINT64_MAX for none. */
uint64_t pacer_ceiling(const struct pacer *p);

/* Changes, any time: another policy (it starts from scratch, keeping the
 * rates), or another target and minimum rate (bytes/s, 0: none). */
void pacer_set_policy(struct pacer *p, const struct pacer_ops *ops, uint64_t now);
void pacer_set_rates(struct pacer *p, uint64_t target_bps, uint64_t min_bps, uint64_t now);

/* Events, passed to the policy. */
void pacer_on_ack(struct pacer *p, const struct pacer_sample *s, uint64_t now);
void pacer_on_loss(struct pacer *p, uint32_t packets, uint64_t now);
void pacer_on_timeout(struct pacer *p, uint64_t now);

/* For policies: bytes at rate over us (no overflow below 1 PB/s and 10 s);
 * the rate of a cwnd-style window over an RTT; packets for bytes. */
uint64_t pacer_bytes_in(uint64_t rate, uint64_t us);
uint32_t pacer_packets(const struct pacer *p, uint64_t bytes);
/* Never slower than a packet per initial RTT. */
uint64_t pacer_floor_rate(const struct pacer *p);

#endif
