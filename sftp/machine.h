/*
 * machine.h - the SFTP source and sink state machines: the windowed bulk
 * transfer of one byte stream over datagrams, with selective acks, echoed
 * timestamps for RTT on both ends, retransmission of the worried set,
 * spontaneous acks on duplicates, and paced sending.
 *
 * Pure, like the rest of the protocol: the machines see datagram bodies and
 * the time, and act through three small interfaces — a link to send on and
 * set a timer with, a reader (source) and a writer (sink) for the bytes.
 * Which file, memory buffer or pipe is behind reader and writer, and which
 * connection is behind the link, is not their business.
 */
#ifndef RPC2_SFTP_MACHINE_H
#define RPC2_SFTP_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "namedsum.h"

/* How a machine sends and keeps time. The link fills in the rpc2 header
 * around the body (ids, transfer id, ts) and echoes nothing by itself. */
struct sftp_link {
    /* Space for one datagram body of at most *cap bytes; NULL when none is
     * available now (the machine treats it as a lost packet). */
    uint8_t *(*begin)(void *arg, size_t *cap);
    /* Sends the body begin() returned. type is a PKT_SFTP_* type, seq goes
     * into the header's seq, ts_echo into its ts_echo (0: none). */
    void (*commit)(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                   size_t len);
    /* Asks to be called (sftp_*_on_timer) at deadline; UINT64_MAX: never. */
    void (*set_timer)(void *arg, uint64_t deadline);
    void *arg;
    /* Optional (both or neither): sends a body that stays in the machine's
     * memory, with SFTP_LEND_HEADROOM bytes before it and SFTP_LEND_TAILROOM
     * after it that the link writes the datagram's header and trailer into,
     * so bulk data is not copied on its way out. Returns a pin (0: none
     * taken); until unpin(pin) returns, the link may still read the buffer,
     * so the machine neither changes nor frees it before. */
    uint64_t (*lend)(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                     uint8_t *body, size_t len);
    void (*unpin)(void *arg, uint64_t pin);
};

/* What a lent body has around it for the link (the rpc2 header before it,
 * the trailer after it at the levels that do not copy). */
#define SFTP_LEND_HEADROOM 48
#define SFTP_LEND_TAILROOM 16

/*
 * What a reader or writer returns when its file cannot move bytes now (a
 * pipe with nothing in it, or no room): the machine keeps what it has and
 * waits for sftp_source_resume / sftp_sink_resume, answering the peer's
 * probes meanwhile so that neither end takes the wait for a dead peer.
 * Outside the range of rpc2 errors.
 */
#define SFTP_IO_WAIT (-1000)

/* The stream's checksum (XXH3-128 of every byte moved, in order). */
#define SFTP_SUM_BYTES 16

/* The source's bytes, read once each, in order (so pipes work): returns the
 * bytes read, fewer than len only at the end of the stream, SFTP_IO_WAIT,
 * or a negative rpc2 error. digest (may be NULL: no checksum is sent)
 * writes the checksum of every byte read so far. */
struct sftp_reader {
    ssize_t (*read)(void *arg, uint8_t *buf, size_t len);
    void (*digest)(void *arg, uint8_t out[SFTP_SUM_BYTES]);
    /* The sink offers a restart point (resume.h): 1 confirmed (the reads
     * now start at offset), 0 refused (they start at 0), or an rpc2 error.
     * NULL: always refused. */
    int (*confirm)(void *arg, uint64_t offset, const uint8_t sum[SFTP_SUM_BYTES]);
    void *arg;
    /* may be NULL: 1 and *out when the LAST packet carries a named sum
     * (namedsum.h) of every byte read, else 0; a negative rpc2 error fails
     * the transfer before the LAST packet goes */
    int (*named)(void *arg, struct namedsum_value *out);
    /* may be NULL (read is used, a packet at a time): read into n <=
     * SFTP_READV_MAX buffers in order, as read would into one buffer of
     * their lengths added up (fewer bytes only at the end), for a reader
     * that never says SFTP_IO_WAIT. The source reads many packets with one
     * call, each straight into its own packet buffer. */
    ssize_t (*readv)(void *arg, const struct iovec *iov, int n);
};

/* The most buffers one reader readv fills. */
#define SFTP_READV_MAX 64

/* The sink's bytes: written at stream position pos (0 = first byte). With
 * in_order set the machine calls write strictly in order (pipes, sockets);
 * otherwise in whatever order packets arrive. Returns 0, SFTP_IO_WAIT
 * (nothing was taken), or a negative rpc2 error, which fails the transfer.
 * flush (may be NULL) pushes out what write took but could not yet put
 * down: 0, SFTP_IO_WAIT or an error; the stream is done only after it
 * returns 0. digest (may be NULL: the peer's checksum is not checked)
 * writes the checksum of the bytes at positions [0, end). */
struct sftp_writer {
    int (*write)(void *arg, uint64_t pos, const uint8_t *data, size_t len);
    int (*flush)(void *arg);
    int (*digest)(void *arg, uint8_t out[SFTP_SUM_BYTES]);
    /* Optional (resume.h): the restart point to offer in START (1, or 0:
     * none), and the source's answer, before the first write. */
    int (*offer)(void *arg, uint64_t *offset, uint8_t sum[SFTP_SUM_BYTES]);
    int (*decide)(void *arg, int confirmed);
    int in_order;
    void *arg;
    /* may be NULL: judges the named sum the LAST packet carried (NULL when
     * it carried none) against the bytes written: 0 or an rpc2 error, which
     * fails the transfer before COMPLETE */
    int (*check_named)(void *arg, const struct namedsum_value *peer);
    /* may be NULL (write is used, a packet at a time): write of the bytes
     * of iov[0..n) in order from pos, n <= SFTP_WRITEV_MAX, the same
     * returns. An in-order sink writes a run of packets with one call. */
    int (*writev)(void *arg, uint64_t pos, const struct iovec *iov, int n);
};

/* The most packets one writer writev is given. */
#define SFTP_WRITEV_MAX 64

struct sftp_config {
    uint32_t packet_size;      /* data bytes per DATA packet */
    uint32_t window;           /* most packets in flight (and sink's reorder span) */
    uint32_t send_ahead;       /* most packets sent in one burst */
    uint32_t ack_point;        /* the sink acks after this many new packets */
    uint32_t dup_threshold;    /* duplicates that make the sink ack at once */
    uint32_t retry_count;      /* timeouts without progress before failing */
    uint32_t retry_initial_us; /* timeout before any RTT sample */
    uint32_t retry_min_us, retry_max_us;
    uint64_t rate_max_bps; /* pacing ceiling in bytes/s; 0: none */
    /* The source's rate policy and rates (docs/RATE.md): SFTP_POLICY_* (0:
     * adaptive), the target (a ceiling for adaptive and background, the
     * rate for fixed) and the minimum, bytes/s, 0: none; the policies a
     * peer's wish may choose, a mask of 1 << SFTP_POLICY_* (0: any). */
    uint32_t policy;
    uint64_t rate_bps, min_rate_bps;
    uint32_t policies_allowed;
};

/* Per-transfer counters; the context sums them. */
struct sftp_counters {
    uint64_t data_sent, data_received, data_retransmitted, data_duplicates;
    uint64_t acks_sent, acks_received, starts_sent, timeouts, probes_sent;
    uint64_t bytes_sent, bytes_received;
    /* The source's loss recovery: packets judged lost from ACKs, bytes sent
     * again, probe timeouts that ACKs showed were real. */
    uint64_t data_lost, bytes_retransmitted, timeouts_confirmed;
};

enum sftp_state {
    SFTP_RUNNING = 0,
    SFTP_DONE = 1, /* every byte delivered (source: acknowledged; sink: written) */
    /* negative: failed with that rpc2 error */
};

struct sftp_source;
struct sftp_sink;

/* The source waits for sftp_source_start (for a store: the sink's START). */
struct sftp_source *sftp_source_new(const struct sftp_config *cfg, const struct sftp_link *link,
                                    const struct sftp_reader *reader);
void sftp_source_free(struct sftp_source *s);
void sftp_source_start(struct sftp_source *s, uint64_t now);
/* Before the start: the sink's restart point (resume.h), as the CALL
 * carried it; START carries it otherwise. 1 confirmed, 0 refused (the
 * stream starts at 0), or an rpc2 error (the source has failed). */
int sftp_source_offer(struct sftp_source *s, uint64_t offset, const uint8_t sum[SFTP_SUM_BYTES]);
/* A START, ACK or ABORT body from the sink, with the header's ts and ts_echo. */
void sftp_source_receive(struct sftp_source *s, uint8_t type, uint32_t seq, uint32_t ts,
                         uint32_t ts_echo, const uint8_t *body, size_t len, uint64_t now);
void sftp_source_on_timer(struct sftp_source *s, uint64_t now);
/* The reader said SFTP_IO_WAIT: whether it still does (then the caller
 * waits for input and calls resume). */
int sftp_source_waiting_input(const struct sftp_source *s);
void sftp_source_resume(struct sftp_source *s, uint64_t now);
int sftp_source_state(const struct sftp_source *s);
uint64_t sftp_source_bytes(const struct sftp_source *s); /* bytes acknowledged */
const struct sftp_counters *sftp_source_counters(const struct sftp_source *s);
uint32_t sftp_source_srtt_us(const struct sftp_source *s);

/* How the source sends now: its policy, pace and the path it sees. */
struct sftp_rate_info {
    const char *policy;
    uint64_t rate_bps;            /* the pace now, bytes/s */
    uint64_t target_bps, min_bps; /* asked for; 0: none */
    uint32_t srtt_us, min_rtt_us;
    uint32_t cwnd;      /* packets allowed in flight */
    uint32_t in_flight; /* packets */
    uint32_t burst;     /* the most packets one release lets out now */
};
void sftp_source_rate_info(const struct sftp_source *s, struct sftp_rate_info *out);
/* Changes the policy (SFTP_POLICY_*, 0: keep) and rates (bytes/s, 0: none)
 * while the transfer runs; a policy not allowed, or unknown, is refused
 * with RPC2_EINVAL and nothing changes. */
int sftp_source_set_rate(struct sftp_source *s, uint32_t policy, uint64_t rate_bps,
                         uint64_t min_rate_bps, uint64_t now);

/* With send_start, the sink sends START (repeating it until data comes). */
struct sftp_sink *sftp_sink_new(const struct sftp_config *cfg, const struct sftp_link *link,
                                const struct sftp_writer *writer);
void sftp_sink_free(struct sftp_sink *k);
void sftp_sink_start(struct sftp_sink *k, int send_start, uint64_t now);
/* A DATA or ABORT body from the source, with the header's seq, ts, ts_echo. */
void sftp_sink_receive(struct sftp_sink *k, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts,
                       uint32_t ts_echo, const uint8_t *body, size_t len, uint64_t now);
void sftp_sink_on_timer(struct sftp_sink *k, uint64_t now);
/* Between begin and end the bodies given to sftp_sink_receive stay valid
 * (a receive batch's buffers): the sink collects what it can write in one
 * run, and its ACK, and writes and acks at the end. Without a batch it does
 * both before each receive returns. */
void sftp_sink_batch_begin(struct sftp_sink *k);
void sftp_sink_batch_end(struct sftp_sink *k, uint64_t now);
/* The writer said SFTP_IO_WAIT: whether it still does (then the caller
 * waits for room and calls resume). */
int sftp_sink_waiting_output(const struct sftp_sink *k);
void sftp_sink_resume(struct sftp_sink *k, uint64_t now);
int sftp_sink_state(const struct sftp_sink *k);
/* The rate the sink asks its source for, sent with every ACK from now on
 * (NULL: none); the source applies it within its own limits. */
struct sftp_wish;
void sftp_sink_set_wish(struct sftp_sink *k, const struct sftp_wish *w);
uint32_t sftp_sink_srtt_us(const struct sftp_sink *k);
uint64_t sftp_sink_bytes(const struct sftp_sink *k); /* bytes written */
const struct sftp_counters *sftp_sink_counters(const struct sftp_sink *k);

/* The packets the context's memory cap lends the machine (memshare.h):
 * its window in force never exceeds them. Lowered while other transfers
 * need memory, raised when they end; a machine lent less than it holds
 * frees the excess as its peer acknowledges (source) or its writer drains
 * (sink), and tells the peer through the window its ACKs open (sink). */
void sftp_source_limit(struct sftp_source *s, uint32_t packets);
void sftp_sink_limit(struct sftp_sink *k, uint32_t packets);

/* True when the machine failed by its own doing (a read or write error, a
 * limit, the peer's silence) rather than by the peer's ABORT. */
int sftp_source_failed_here(const struct sftp_source *s);
int sftp_sink_failed_here(const struct sftp_sink *k);

/* Tells the peer the transfer failed (ABORT with the error) and stops. */
void sftp_source_abort(struct sftp_source *s, int error, uint64_t now);
void sftp_sink_abort(struct sftp_sink *k, int error, uint64_t now);

#endif
