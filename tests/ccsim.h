/*
 * ccsim.h - the in-memory network test_cc runs SFTP transfers through: a
 * source and a sink per flow, their datagrams carried by the modelled
 * bottleneck of bottleneck.h (forward: the rate, queue, delay and loss of
 * a profile; back: delay and loss), their timers on a fake clock that
 * fires as libev's epoll backend does, and what each flow sent and
 * delivered per 10 ms. Kept apart from the tests so that they read as
 * what they assert.
 */
#ifndef RPC2_TESTS_CCSIM_H
#define RPC2_TESTS_CCSIM_H

#include <stddef.h>
#include <stdint.h>

#include "arrivals.h"
#include "bottleneck.h"
#include "machine.h"

#define NEVER UINT64_MAX
#define MS 1000ull
#define SEC 1000000ull
#define START_TIME 1000000ull
#define BODY_ROOM 2400u
#define BUCKET_US (10 * MS)
#define PACKET 1400u

struct profile {
    const char *name;
    uint64_t rate; /* bytes/s */
    uint32_t rtt_us;
    double loss; /* each way */
    uint64_t run_us;
    double share; /* of the bottleneck to reach and keep */
};

struct dgram {
    struct arrival arrival; /* first: arrivals.h hands it back */
    struct dgram *next_free;
    struct flow *flow;
    int to_sink;
    uint8_t type, flags;
    uint32_t seq, ts, ts_echo;
    size_t len;
    uint8_t body[BODY_ROOM];
};

struct sim;

struct endpoint {
    struct flow *flow;
    int is_source;
    uint64_t timer;
    struct dgram *pending;
};

struct flow {
    struct sim *sim;
    struct sftp_source *src;
    struct sftp_sink *snk;
    struct endpoint src_ep, snk_ep;
    uint64_t started_at;
    uint64_t data_bytes_sent, written;
    uint64_t *written_by_bucket, *sent_by_bucket;
    uint64_t last_ack_at;        /* the latest ACK the source received */
    uint64_t timeouts_seen;      /* the source's counter, as last looked at */
    uint64_t timeouts_with_acks; /* PTOs that fired while ACKs were coming */
};

struct sim {
    uint64_t now, order, end;
    struct bn_link fwd, rev;
    struct arrivals arrivals;
    struct dgram *free_list;
    struct flow flows[2];
    int nflows;
    struct bn_reno reno;
    int reno_used;
    uint64_t reno_start;
    size_t buckets;
    /* What the bottleneck did per bucket: the longest wait a DATA met in
     * its queue, and the DATA it dropped there. */
    uint64_t *queue_us_by_bucket, *drops_by_bucket;
};

/* The default configuration, at PACKET bytes a packet. */
struct sftp_config sim_config(void);
/* A path of profile pr's rate, RTT and loss, with a drop-tail queue of one
 * BDP; nothing on it until flow_add. */
void sim_init(struct sim *s, const struct profile *pr, uint64_t seed);
/* A transfer that starts at start_at. */
struct flow *flow_add(struct sim *s, const struct sftp_config *cfg, uint64_t start_at);
void sim_free(struct sim *s);
void run_until(struct sim *s, uint64_t until);
size_t bucket_of(const struct sim *s, uint64_t t);
/* Bytes per second written by the sink (or sent by the source) in [t0, t1). */
double rate_of(const struct sim *s, const uint64_t *buckets, uint64_t t0, uint64_t t1);
/* When the goodput over a sliding span first reached rate (NEVER: never). */
uint64_t reached_at(const struct sim *s, const struct flow *f, double rate, uint64_t span);
/* SFTP_TEST_TRACE is set: print what each run measured. */
int tracing(void);

#endif
