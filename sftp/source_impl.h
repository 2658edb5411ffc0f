/*
 * source_impl.h - the inside of struct sftp_source, shared by the files
 * that make up the SFTP source: source.c (its life: creating, starting,
 * the packets it receives, failing and finishing), source_read.c (the
 * stream into packets), source_send.c (what goes next, and when),
 * source_ack.c (what ACKs and their absence say) and source_rate.c (the
 * rate policy in force and the sink's wishes). Nothing else includes it.
 *
 * `now` is the monotonic clock in microseconds that the link stamps into
 * each packet's ts (its low 32 bits), so now - ts_echo is a round trip.
 */
#ifndef RPC2_SFTP_SOURCE_IMPL_H
#define RPC2_SFTP_SOURCE_IMPL_H

#include <stdint.h>

#include "ackmap.h"
#include "machine.h"
#include "namedsum.h"
#include "pacer.h"
#include "recovery.h"
#include "sentmap.h"
#include "wire.h"

#define SOURCE_NEVER UINT64_MAX
/* Bytes before each packet's data: the DATA header and the link's room for
 * a lent datagram (SFTP_LEND_HEADROOM), rounded up so the data the file is
 * read into starts on a cache line of the buffer. */
#define SOURCE_HEADROOM ((SFTP_LEND_HEADROOM + SFTP_DATA_HEAD + 63u) / 64u * 64u)

struct sftp_source {
    struct sftp_config cfg;
    struct sftp_link link;
    struct sftp_reader reader;
    int state;
    int started;
    int resumed; /* the sink's restart point was confirmed: DATA say SFTP_DATA_RESUMED */
    uint32_t window, packet_size; /* in force: the smaller of ours and the START's */
    uint32_t lent;                /* packets the context's memory cap lends us */

    struct sentmap sent;
    struct ackmap peer; /* what the sink's ACKs say it holds */
    struct pacer pacer;
    struct recovery rec;
    struct sftp_counters counters;

    uint32_t next_seq; /* the first seq never sent */
    uint32_t last_seq; /* the stream's last packet, 0 until read */
    int eof;           /* the reader has reported the end */
    int input_waiting; /* the reader said SFTP_IO_WAIT */
    uint64_t bytes_read, bytes_acked;
    uint8_t sum[SFTP_SUM_BYTES];
    int have_sum;
    struct namedsum_value named; /* the LAST packet's, when have_named */
    int have_named;

    /* What the sink's latest ACK lets in, and whether it said COMPLETE. */
    uint32_t peer_window_end;
    int peer_complete;
    uint64_t probe_due;      /* next PROBE while waiting on the sink */
    uint32_t probe_interval; /* doubles per probe, up to retry_max */

    uint64_t transmissions; /* the latest transmission's number */
    uint32_t probe_credit;  /* packets a PTO lets out beyond the in-flight limit */

    /* The sink's latest ts (START or ACK) and when it came, to echo in DATA. */
    uint32_t echo_ts;
    uint64_t echo_arrival;
    uint32_t last_ack_seq;
    int have_ack_seq;

    /* Rate sampling (see pacer.h). */
    uint64_t delivered, delivered_time, first_sent_time;
    int app_limited;
    uint32_t newly_acked;

    unsigned timeouts_in_a_row;
    int failed_here;
    uint64_t timer_armed;
    struct sftp_wish last_wish; /* the sink's, as last applied */
};

/* source.c: the end of the transfer, here or told to the sink. */
void source_finish(struct sftp_source *s, int state);
void source_fail(struct sftp_source *s, int error, int tell_peer);
void source_send_probe(struct sftp_source *s, uint32_t flags);
/* Waiting on the reader with nothing in flight: tell the probing sink we are here. */
void source_answer_if_idle(struct sftp_source *s);

/* source_read.c: the packet for seq, read (with the one after it, to spot
 * the end) if it has not been; NULL when the reader has nothing yet or
 * the transfer failed. */
struct sentmap_packet *source_fetch_new(struct sftp_source *s, uint32_t seq);

/* source_send.c */
uint32_t source_window_end(const struct sftp_source *s);
/* Nothing in flight, nothing it may send, not waiting on its reader. */
int source_waiting_on_sink(const struct sftp_source *s);
/* Sends what the pacer allows now, then arms the one timer. */
void source_pump(struct sftp_source *s, uint64_t now);
void source_rearm(struct sftp_source *s, uint64_t now);
void source_plan_probe(struct sftp_source *s, uint64_t now);

/* source_ack.c */
void source_on_ack(struct sftp_source *s, uint32_t seq, uint32_t ts, const uint8_t *body,
                   size_t len, uint64_t now);

/* source_rate.c */
const struct pacer_ops *source_policy_ops(uint32_t policy);
/* The sink's wish, once per change: what this end allows of it. */
void source_apply_wish(struct sftp_source *s, const struct sftp_wish *w, uint64_t now);

#endif
