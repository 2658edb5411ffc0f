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
};

/* The source's bytes, read once each, in order (so pipes work): returns the
 * bytes read, fewer than len only at the end of the stream, or a negative
 * rpc2 error. */
struct sftp_reader {
    ssize_t (*read)(void *arg, uint8_t *buf, size_t len);
    void *arg;
};

/* The sink's bytes: written at stream position pos (0 = first byte). With
 * in_order set the machine calls write strictly in order (pipes, sockets);
 * otherwise in whatever order packets arrive. Returns 0 or a negative rpc2
 * error, which fails the transfer. */
struct sftp_writer {
    int (*write)(void *arg, uint64_t pos, const uint8_t *data, size_t len);
    int in_order;
    void *arg;
};

struct sftp_config {
    uint32_t packet_size;      /* data bytes per DATA packet */
    uint32_t window;           /* most packets in flight (and sink's reorder span) */
    uint32_t send_ahead;       /* most packets sent in one burst */
    uint32_t ack_point;        /* the sink acks after this many new packets */
    uint32_t dup_threshold;    /* duplicates that make the sink ack at once */
    uint32_t retry_count;      /* timeouts without progress before failing */
    uint32_t retry_initial_us; /* timeout before any RTT sample */
    uint32_t retry_min_us, retry_max_us;
    uint64_t rate_max_bps;     /* pacing ceiling in bytes/s; 0: none */
};

/* Per-transfer counters; the context sums them. */
struct sftp_counters {
    uint64_t data_sent, data_received, data_retransmitted, data_duplicates;
    uint64_t acks_sent, acks_received, starts_sent, timeouts;
    uint64_t bytes_sent, bytes_received;
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
/* A START, ACK or ABORT body from the sink, with the header's ts and ts_echo. */
void sftp_source_receive(struct sftp_source *s, uint8_t type, uint32_t seq, uint32_t ts,
                         uint32_t ts_echo, const uint8_t *body, size_t len, uint64_t now);
void sftp_source_on_timer(struct sftp_source *s, uint64_t now);
int sftp_source_state(const struct sftp_source *s);
uint64_t sftp_source_bytes(const struct sftp_source *s);  /* bytes acknowledged */
const struct sftp_counters *sftp_source_counters(const struct sftp_source *s);
uint32_t sftp_source_srtt_us(const struct sftp_source *s);

/* With send_start, the sink sends START (repeating it until data comes). */
struct sftp_sink *sftp_sink_new(const struct sftp_config *cfg, const struct sftp_link *link,
                                const struct sftp_writer *writer);
void sftp_sink_free(struct sftp_sink *k);
void sftp_sink_start(struct sftp_sink *k, int send_start, uint64_t now);
/* A DATA or ABORT body from the source, with the header's seq, ts, ts_echo. */
void sftp_sink_receive(struct sftp_sink *k, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts,
                       uint32_t ts_echo, const uint8_t *body, size_t len, uint64_t now);
void sftp_sink_on_timer(struct sftp_sink *k, uint64_t now);
int sftp_sink_state(const struct sftp_sink *k);
uint64_t sftp_sink_bytes(const struct sftp_sink *k); /* bytes written */
const struct sftp_counters *sftp_sink_counters(const struct sftp_sink *k);

/* True when the machine failed by its own doing (a read or write error, a
 * limit, the peer's silence) rather than by the peer's ABORT. */
int sftp_source_failed_here(const struct sftp_source *s);
int sftp_sink_failed_here(const struct sftp_sink *k);

/* Tells the peer the transfer failed (ABORT with the error) and stops. */
void sftp_source_abort(struct sftp_source *s, int error, uint64_t now);
void sftp_sink_abort(struct sftp_sink *k, int error, uint64_t now);

#endif
