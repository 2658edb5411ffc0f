/*
 * sink.c - the SFTP sink: takes DATA packets in any order, writes each new
 * one once at its stream position (or, for a writer that needs order,
 * holds early ones until the gap before them fills), and tells the source
 * what it holds with ACKs.
 *
 * It acks after ack_point new packets, at once when a packet arrives out of
 * order, asks for it (ACKME) or completes the stream, after dup_threshold
 * duplicates, and otherwise within a short delay. An in-order writer is
 * given runs of packets (one writev per receive batch, not a write per
 * packet: at 1400-byte packets the sink's largest cost), and the ACK the
 * batch asked for goes once the run is written (sftp_sink_batch_end).
 * Each ACK names the newest transmission received (largest_tx) and how
 * long ago it came (ack_delay), so the source can time that very send and
 * judge what was sent before it;
 * it echoes that packet's ts advanced by the same delay, and carries the
 * delivered byte count the source's rate policy samples. When it must ask for the data
 * (a store: send_start) it repeats START until DATA comes.
 *
 * The stream's packet size is learned from the first full packet (every
 * packet but the last is full): the source may use less than our own
 * limit, and a LAST packet cannot be placed before that size is known.
 * Once data has come, retry_count consecutive timeouts without hearing
 * from the source fail the transfer with RPC2_EDEAD.
 *
 * A writer that cannot take more now (a pipe nobody reads) stops the
 * sink's writing, not the transfer: packets wait in the reorder buffer,
 * each ACK's window_end says how many more fit, and the source probes
 * until the window opens; resume, when the writer has room, writes on and
 * announces the new window. The stream is done only when every byte is
 * written and flushed and, if the source sent one, the checksum of what
 * was written matches; only then do ACKs say COMPLETE.
 */
#include "machine.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <rpc2/rpc2.h>

#include "ackmap.h"
#include "bufpool.h"
#include "link.h"
#include "rtt.h"
#include "wire.h"

#define NEVER UINT64_MAX
/* The longest an ACK waits for ack_point packets; shorter on fast paths. */
#define MAX_ACK_DELAY_US 1000u

/* Packets held for an in-order writer until the gap before them fills,
 * and the run of packets queued to be written with one call: seqs
 * [next_write, next_queued), each in its slot (held before) or still in
 * the datagram it came in (valid until the batch ends). */
struct reorder {
    uint8_t **slot; /* by seq, ring of nslots; NULL: not held */
    uint32_t *len;
    uint32_t mask;
    struct bufpool pool;
    uint32_t next_write;  /* the first seq not yet written */
    uint32_t next_queued; /* the seq the writer wants next */
    struct iovec run[SFTP_WRITEV_MAX]; /* [i]: seq next_write + i */
};

struct sftp_sink {
    struct sftp_config cfg;
    struct sftp_link link;
    struct sftp_writer writer;
    int state;
    int send_start;
    int got_data;

    struct ackmap held;
    struct reorder reorder;
    struct rtt rtt;
    struct sftp_counters counters;
    uint64_t beyond_window; /* dropped; struct sftp_counters has no field for it */
    uint32_t lent;          /* packets the context's memory cap lends us */
    uint32_t promised;      /* the highest window_end an ACK has said */

    uint32_t packet_size; /* the stream's, learned; 0 until known */
    uint32_t last_seq;    /* 0 until the LAST packet is held */
    int output_waiting;   /* the writer said SFTP_IO_WAIT */
    uint8_t sum[SFTP_SUM_BYTES]; /* the source's checksum, from the LAST packet */
    int have_sum;
    struct namedsum_value named; /* the source's named sum, from the LAST packet */
    int have_named;
    uint64_t bytes_written, delivered;

    uint32_t ack_seq;
    uint32_t new_since_ack, dups_since_ack;
    int ack_wanted; /* sent once what came is written (settle) */
    int batching;   /* sftp_sink_batch_begin: settle at batch_end */
    /* The newest transmission received (largest_tx), its ts and when it came. */
    uint32_t largest_tx;
    int have_tx;
    uint32_t echo_ts;
    uint64_t echo_arrival;
    uint64_t ack_due;
    struct sftp_wish wish; /* sent with every ACK when has_wish */
    int has_wish;

    int resume_known, resumed; /* the stream's SFTP_DATA_RESUMED, from its first DATA */
    uint32_t start_seq;
    uint64_t start_due;   /* next START while no data has come */
    uint64_t silence_due; /* next probe while the stream is incomplete */
    unsigned timeouts_in_a_row;
    int failed_here;
    uint64_t timer_armed;
};

/* ---- setup --------------------------------------------------------------- */

static int reorder_init(struct reorder *r, uint32_t window, uint32_t packet_size)
{
    uint32_t n = 1;

    while (n < window)
        n *= 2;
    r->slot = calloc(n, sizeof(*r->slot));
    r->len = calloc(n, sizeof(*r->len));
    r->mask = n - 1;
    r->next_write = r->next_queued = 1;
    return r->slot && r->len && bufpool_init(&r->pool, window, packet_size) == 0 ? 0 : -1;
}

/* Every buffer back to the allocator: the stream has ended. */
static void reorder_trim(struct reorder *r)
{
    if (r->slot != NULL)
        for (uint32_t i = 0; i <= r->mask; i++) {
            bufpool_drop(&r->pool, r->slot[i]);
            r->slot[i] = NULL;
        }
    bufpool_trim(&r->pool);
}

static void reorder_dispose(struct reorder *r)
{
    reorder_trim(r);
    bufpool_dispose(&r->pool);
    free(r->slot);
    free(r->len);
}

struct sftp_sink *sftp_sink_new(const struct sftp_config *cfg, const struct sftp_link *link,
                                const struct sftp_writer *writer)
{
    struct sftp_sink *k;

    if (cfg == NULL || link == NULL || writer == NULL)
        return NULL;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->cfg = *cfg;
    sftp_config_clamp(&k->cfg);
    k->link = *link;
    k->writer = *writer;
    k->state = SFTP_RUNNING;
    k->ack_due = k->start_due = k->silence_due = k->timer_armed = NEVER;
    k->lent = UINT32_MAX;
    rtt_init(&k->rtt, k->cfg.retry_initial_us, k->cfg.retry_min_us, k->cfg.retry_max_us);
    if (ackmap_init(&k->held, k->cfg.window) != 0 ||
        (writer->in_order && reorder_init(&k->reorder, k->cfg.window, k->cfg.packet_size) != 0)) {
        sftp_sink_free(k);
        return NULL;
    }
    return k;
}

void sftp_sink_free(struct sftp_sink *k)
{
    if (k == NULL)
        return;
    ackmap_dispose(&k->held);
    reorder_dispose(&k->reorder);
    free(k);
}

/* ---- sending ------------------------------------------------------------- */

static void rearm(struct sftp_sink *k)
{
    uint64_t deadline = k->ack_due;

    if (k->state == SFTP_RUNNING) {
        if (k->start_due < deadline)
            deadline = k->start_due;
        if (k->silence_due < deadline)
            deadline = k->silence_due;
    }
    sftp_link_arm(&k->link, &k->timer_armed, deadline);
}

/* The highest seq the sink takes now: a window past what is written (in
 * order) or held (any order), so held-but-unwritten packets fit in it. */
static uint32_t window_end(const struct sftp_sink *k)
{
    uint32_t base = k->writer.in_order ? k->reorder.next_write - 1 : k->held.got_them_all;
    uint32_t end = base + (k->lent < k->held.window ? k->lent : k->held.window);

    /* A window once opened is never taken back (a smaller loan shows only
     * as the window moving on more slowly): the source may have sent up to
     * it, and the packets it resends there must still be taken. */
    return end > k->promised ? end : k->promised;
}

static void send_ack(struct sftp_sink *k, uint64_t now)
{
    struct sftp_ack a = {
        .got_them_all = k->held.got_them_all,
        .window_end = window_end(k),
        .delivered = k->delivered,
        .flags = (k->state == SFTP_DONE ? SFTP_ACK_COMPLETE : 0) |
                 (k->has_wish ? SFTP_ACK_WISH : 0),
        .largest_tx = k->largest_tx,
        .ack_delay_us = k->have_tx ? (uint32_t)(now - k->echo_arrival) : 0,
        .wish = k->wish,
    };
    size_t cap, len;
    uint8_t *buf, *bitmap;

    k->promised = a.window_end;
    /* Whether or not it leaves, this ACK answers what came before it. */
    k->new_since_ack = k->dups_since_ack = 0;
    k->ack_wanted = 0;
    k->ack_due = NEVER;
    buf = k->link.begin(k->link.arg, &cap);
    if (buf == NULL)
        return;
    a.bitmap_len = ackmap_bitmap_len(&k->held, sftp_ack_bitmap_room(cap, k->has_wish));
    bitmap = sftp_ack_encode_head(buf, cap, &a, &len);
    if (bitmap == NULL)
        return;
    ackmap_write_bitmap(&k->held, bitmap, a.bitmap_len);
    k->link.commit(k->link.arg, PKT_SFTP_ACK, 0, ++k->ack_seq, sftp_echo(k->echo_ts, k->echo_arrival, now), len);
    k->counters.acks_sent++;
}

static void send_start(struct sftp_sink *k, int again)
{
    struct sftp_start st = {.window = k->cfg.window, .packet_size = k->cfg.packet_size};
    size_t cap, len;
    uint8_t *buf = k->link.begin(k->link.arg, &cap);

    if (k->writer.offer)
        st.has_restart = k->writer.offer(k->writer.arg, &st.restart, st.restart_sum) == 1;

    if (buf == NULL || sftp_start_encode(&st, buf, cap, &len) != PKT_OK)
        return;
    k->link.commit(k->link.arg, PKT_SFTP_START, again ? PKT_F_RETRANSMIT : 0, ++k->start_seq, 0,
                   len);
    k->counters.starts_sent++;
}

static void fail(struct sftp_sink *k, int error, int tell_peer)
{
    k->failed_here = tell_peer; /* not the peer's ABORT: this end's own failure */
    if (tell_peer)
        sftp_link_abort(&k->link, error);
    k->state = error;
    k->ack_due = NEVER;
    k->ack_wanted = 0;
    k->reorder.next_queued = k->reorder.next_write; /* the run is dropped */
    reorder_trim(&k->reorder);
    sftp_link_arm(&k->link, &k->timer_armed, NEVER);
}

/* ---- writing ------------------------------------------------------------- */

static uint64_t position(const struct sftp_sink *k, uint32_t seq)
{
    return (uint64_t)(seq - 1) * k->packet_size;
}

static int write_at(struct sftp_sink *k, uint32_t seq, const uint8_t *data, uint32_t len)
{
    int rc;

    if (len == 0) /* an empty stream's one packet: nothing to write */
        return 0;
    rc = k->writer.write(k->writer.arg, position(k, seq), data, len);
    if (rc == SFTP_IO_WAIT) {
        k->output_waiting = 1;
        return rc;
    }
    if (rc < 0) {
        fail(k, rc, 1);
        return rc;
    }
    k->bytes_written += len;
    return 0;
}

/* The one copy an in-order writer costs: the datagram's buffer is not ours to keep. */
static int hold_for_later(struct sftp_sink *k, uint32_t seq, const uint8_t *data, uint32_t len)
{
    struct reorder *r = &k->reorder;
    uint32_t i = seq & r->mask;
    uint8_t *buf;

    if (bufpool_full(&r->pool))
        return RPC2_ELIMIT;
    buf = bufpool_get(&r->pool);
    if (buf == NULL)
        return RPC2_ENOMEM;
    if (len > 0)
        memcpy(buf, data, len);
    r->slot[i] = buf;
    r->len[i] = len;
    return 0;
}

/* The first done packets of the run are written: their slots are free. */
static void run_written(struct sftp_sink *k, uint32_t done)
{
    struct reorder *r = &k->reorder;

    for (uint32_t n = 0; n < done; n++, r->next_write++) {
        uint32_t i = r->next_write & r->mask;

        k->bytes_written += r->run[n].iov_len;
        if (r->slot[i] != NULL) {
            bufpool_put(&r->pool, r->slot[i]);
            r->slot[i] = NULL;
        }
    }
    memmove(r->run, r->run + done, (r->next_queued - r->next_write) * sizeof r->run[0]);
}

/* The writer has no room: what the run took from datagrams is held, and
 * the whole run waits for resume. 0, or an error that failed the sink. */
static int run_waits(struct sftp_sink *k)
{
    struct reorder *r = &k->reorder;

    k->output_waiting = 1;
    for (uint32_t seq = r->next_write; seq != r->next_queued; seq++) {
        const struct iovec *v = &r->run[seq - r->next_write];
        int rc = r->slot[seq & r->mask] != NULL
                     ? 0
                     : hold_for_later(k, seq, v->iov_base, (uint32_t)v->iov_len);

        if (rc < 0) {
            fail(k, rc, 1);
            return rc;
        }
    }
    r->next_queued = r->next_write;
    return 0;
}

/* Writes the queued run: with one writev where the writer has it. */
static int write_run(struct sftp_sink *k)
{
    struct reorder *r = &k->reorder;
    uint32_t n = r->next_queued - r->next_write, done = 0;
    uint64_t pos = position(k, r->next_write);
    int rc = 0;

    if (n == 0)
        return 0;
    if (k->writer.writev) {
        rc = k->writer.writev(k->writer.arg, pos, r->run, (int)n);
        done = rc == 0 ? n : 0;
    } else {
        for (; done < n; done++) {
            size_t len = r->run[done].iov_len;

            if (len > 0 && (rc = k->writer.write(k->writer.arg, pos, r->run[done].iov_base, len)) != 0)
                break;
            pos += len;
        }
    }
    run_written(k, done);
    if (rc == SFTP_IO_WAIT)
        return run_waits(k);
    if (rc < 0)
        fail(k, rc, 1);
    return rc;
}

/* Queues the writer's next packet to the run; a full run is written first,
 * and when the writer has no room the packet waits with the run. */
static int queue_write(struct sftp_sink *k, const uint8_t *data, uint32_t len)
{
    struct reorder *r = &k->reorder;
    uint32_t seq = r->next_queued;
    int rc;

    if (seq - r->next_write == SFTP_WRITEV_MAX && (rc = write_run(k)) < 0)
        return rc;
    if (k->output_waiting) {
        if (r->slot[seq & r->mask] != NULL)
            return 0; /* held already */
        rc = hold_for_later(k, seq, data, len);
        if (rc < 0)
            fail(k, rc, 1);
        return rc;
    }
    r->run[seq - r->next_write] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
    r->next_queued++;
    return 0;
}

/* Queues what the gap held back, now that the writer's next packet is here. */
static int drain_in_order(struct sftp_sink *k)
{
    struct reorder *r = &k->reorder;

    for (;;) {
        uint32_t i = r->next_queued & r->mask;
        int rc;

        /* A run as long as the ring: next_queued's slot is next_write's. */
        if (r->next_queued - r->next_write > r->mask && (rc = write_run(k)) < 0)
            return rc;
        if (k->output_waiting || r->slot[i] == NULL)
            return 0;
        if ((rc = queue_write(k, r->slot[i], r->len[i])) < 0)
            return rc;
    }
}

static int store(struct sftp_sink *k, uint32_t seq, const struct sftp_data *d)
{
    int rc;

    if (!k->writer.in_order)
        return write_at(k, seq, d->bytes, d->len);
    if (seq != k->reorder.next_queued || k->output_waiting) {
        rc = hold_for_later(k, seq, d->bytes, d->len);
        if (rc < 0)
            fail(k, rc, 1);
        return rc;
    }
    rc = queue_write(k, d->bytes, d->len);
    return rc < 0 ? rc : drain_in_order(k);
}

/*
 * Whether a new packet fits the stream: only the last may be short, every
 * other one is exactly the stream's packet size, nothing lies past the last,
 * and a non-empty LAST other than the first needs that size to be placed.
 * An empty LAST ends a stream whose source could not tell, when it sent the
 * packet before, that nothing would follow (a pipe).
 */
static int fits_stream(struct sftp_sink *k, uint32_t seq, const struct sftp_data *d)
{
    if (k->last_seq != 0 && seq > k->last_seq)
        return 0;
    if (d->len > k->cfg.packet_size)
        return 0;
    if (d->flags & SFTP_DATA_LAST) {
        if (k->held.highest > seq)
            return 0;
        if (d->len == 0 || seq == 1)
            return 1;
        return k->packet_size != 0 && d->len <= k->packet_size;
    }
    if (d->len == 0)
        return 0;
    if (k->packet_size == 0)
        k->packet_size = d->len;
    return d->len == k->packet_size;
}

/* ---- receiving ----------------------------------------------------------- */

static uint32_t ack_delay(const struct sftp_sink *k)
{
    uint32_t d = k->rtt.srtt_us != 0 ? k->rtt.srtt_us / 4 : MAX_ACK_DELAY_US;

    return sftp_clamp_u32(d, 1, MAX_ACK_DELAY_US);
}

/* Sent by settle too: an ACK amid a batch would not count its run as
 * written, and would stand in for the batch's own. */
static void on_duplicate(struct sftp_sink *k)
{
    k->counters.data_duplicates++;
    /* After the end the source resends only because our last ACK was lost. */
    if (++k->dups_since_ack >= k->cfg.dup_threshold || k->state == SFTP_DONE)
        k->ack_wanted = 1;
}

/* What was written is what the source read: the checksums agree. */
static int sum_matches(struct sftp_sink *k)
{
    uint8_t got[SFTP_SUM_BYTES];

    if (!k->writer.digest)
        return 1; /* this end chose not to check */
    if (!k->have_sum)
        return 0; /* a source that sends no checksum is not believed */
    return k->writer.digest(k->writer.arg, got) == 0 && memcmp(got, k->sum, sizeof got) == 0;
}

/* Done when every packet is held, written and flushed, and checks out. */
static void check_done(struct sftp_sink *k)
{
    int rc;

    if (k->state != SFTP_RUNNING || k->last_seq == 0 || k->held.got_them_all < k->last_seq)
        return;
    if (k->writer.in_order && k->reorder.next_write <= k->last_seq)
        return;
    rc = k->writer.flush ? k->writer.flush(k->writer.arg) : 0;
    if (rc == SFTP_IO_WAIT) {
        k->output_waiting = 1;
        return;
    }
    if (rc == 0 && !sum_matches(k))
        rc = RPC2_EINTEGRITY;
    if (rc == 0 && k->writer.check_named)
        rc = k->writer.check_named(k->writer.arg, k->have_named ? &k->named : NULL);
    if (rc < 0) {
        fail(k, rc, 1);
        return;
    }
    k->state = SFTP_DONE;
    k->silence_due = NEVER;
    reorder_trim(&k->reorder);
}

static void on_new(struct sftp_sink *k, uint32_t seq, const struct sftp_data *d, uint64_t now)
{
    int out_of_order = seq != k->held.highest + 1;

    if (store(k, seq, d) < 0)
        return;
    ackmap_add(&k->held, seq);
    k->counters.bytes_received += d->len;
    k->delivered += d->len;
    if (d->flags & SFTP_DATA_LAST)
        k->last_seq = seq;
    if (d->sum) {
        memcpy(k->sum, d->sum, SFTP_SUM_BYTES);
        k->have_sum = 1;
    }
    if (d->named) {
        k->named.type = d->named_type;
        k->named.len = d->named_len;
        memcpy(k->named.bytes, d->named, d->named_len);
        k->have_named = 1;
    }
    check_done(k);
    if (k->state < 0)
        return;
    /* Sent by settle, once what came with this packet is written: its
     * window then says so, and a batch's packets get one ACK. */
    if (k->state == SFTP_DONE || out_of_order || (d->flags & SFTP_DATA_ACKME) ||
        ++k->new_since_ack >= k->cfg.ack_point) {
        k->ack_wanted = 1;
        return;
    }
    if (k->ack_due == NEVER)
        k->ack_due = now + ack_delay(k);
}

/* Every DATA says whether the source confirmed our restart point: the first
 * tells the writer where the stream starts, and one that says otherwise is
 * not of this stream. */
static int resumed_as_agreed(struct sftp_sink *k, const struct sftp_data *d)
{
    int resumed = !!(d->flags & SFTP_DATA_RESUMED);
    int rc;

    if (k->resume_known)
        return resumed == k->resumed;
    k->resume_known = 1;
    k->resumed = resumed;
    rc = k->writer.decide ? k->writer.decide(k->writer.arg, resumed)
                          : resumed ? RPC2_EBADPACKET : 0;
    if (rc < 0) {
        fail(k, rc, 1);
        return 0;
    }
    return 1;
}

static void on_data(struct sftp_sink *k, uint32_t seq, uint32_t ts, uint32_t ts_echo,
                    const struct sftp_data *d, uint64_t now)
{
    uint32_t elapsed;

    k->counters.data_received++;
    if (ts_echo != 0) {
        elapsed = rtt_ts_elapsed((uint32_t)now, ts_echo);
        if (elapsed <= INT32_MAX)
            rtt_sample(&k->rtt, elapsed);
    }
    /* Duplicates count too: the source learns that this transmission came. */
    if (!k->have_tx || (int32_t)(d->tx - k->largest_tx) > 0) {
        k->largest_tx = d->tx;
        k->have_tx = 1;
        k->echo_ts = ts;
        k->echo_arrival = now;
    }
    k->got_data = 1;
    k->start_due = NEVER;
    k->timeouts_in_a_row = 0;
    if (k->state == SFTP_DONE) {
        on_duplicate(k);
        return;
    }
    k->silence_due = now + rtt_timeout(&k->rtt);
    if (ackmap_holds(&k->held, seq)) {
        on_duplicate(k);
        return;
    }
    /* Past what we promised to hold: the source will send it again. */
    if (seq > window_end(k)) {
        k->beyond_window++;
        return;
    }
    if (resumed_as_agreed(k, d) && fits_stream(k, seq, d))
        on_new(k, seq, d, now);
}

/* The source is alive: waiting on its reader, or asking for our window. */
static void on_probe(struct sftp_sink *k, const uint8_t *body, size_t len, uint64_t now)
{
    uint32_t flags;

    if (sftp_probe_decode(body, len, &flags) != PKT_OK)
        return;
    k->timeouts_in_a_row = 0;
    if (flags & SFTP_PROBE_ANSWER_ME)
        send_ack(k, now);
    rearm(k);
}

/* After packets: the queued run written, the stream perhaps complete, and
 * the ACK they asked for. */
static void settle(struct sftp_sink *k, uint64_t now)
{
    int was_running = k->state == SFTP_RUNNING;

    if (k->state < 0)
        return;
    if (k->writer.in_order && write_run(k) < 0)
        return;
    check_done(k);
    if (k->state < 0)
        return;
    if (k->ack_wanted || (was_running && k->state == SFTP_DONE))
        send_ack(k, now);
}

void sftp_sink_batch_begin(struct sftp_sink *k)
{
    k->batching = 1;
}

void sftp_sink_batch_end(struct sftp_sink *k, uint64_t now)
{
    if (!k->batching)
        return;
    k->batching = 0;
    settle(k, now);
    rearm(k);
}

void sftp_sink_receive(struct sftp_sink *k, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts,
                       uint32_t ts_echo, const uint8_t *body, size_t len, uint64_t now)
{
    struct sftp_data d;
    int32_t error;

    /* PKT_F_RETRANSMIT is for statistics (the loss the source repairs);
     * duplicates are found by seq. */
    if (k->state < 0)
        return;
    if (type == PKT_SFTP_ABORT) {
        if (sftp_abort_decode(body, len, &error) == PKT_OK)
            fail(k, error, 0);
        return;
    }
    if (type == PKT_SFTP_PROBE) {
        on_probe(k, body, len, now);
        return;
    }
    if (type != PKT_SFTP_DATA || sftp_data_decode(body, len, &d) != PKT_OK)
        return;
    if (seq == 0 || seq > SFTP_MAX_SEQ)
        return;
    if (flags & PKT_F_RETRANSMIT) {
        k->counters.data_retransmitted++;
        k->counters.bytes_retransmitted += d.len;
    }
    on_data(k, seq, ts, ts_echo, &d, now);
    if (!k->batching)
        settle(k, now);
    rearm(k);
}

/* ---- timers -------------------------------------------------------------- */

/* A timeout while waiting: another START, or a probe ACK, each spaced by a
 * doubling timeout; too many in a row and the source is gone. */
static int count_timeout(struct sftp_sink *k)
{
    k->counters.timeouts++;
    if (++k->timeouts_in_a_row > k->cfg.retry_count) {
        fail(k, RPC2_EDEAD, 1);
        return -1;
    }
    rtt_backoff(&k->rtt);
    return 0;
}

void sftp_sink_on_timer(struct sftp_sink *k, uint64_t now)
{
    if (k->state < 0)
        return;
    k->timer_armed = NEVER;
    if (k->ack_due <= now)
        send_ack(k, now);
    if (k->state == SFTP_RUNNING && k->start_due <= now) {
        if (count_timeout(k) < 0)
            return;
        send_start(k, 1);
        k->start_due = now + rtt_timeout(&k->rtt);
    }
    if (k->state == SFTP_RUNNING && k->silence_due <= now && k->output_waiting) {
        /* Our own writer holds things up, the source waits on us: no
         * probing, and no waking up until resume says the writer moved. */
        k->silence_due = NEVER;
    } else if (k->state == SFTP_RUNNING && k->silence_due <= now) {
        if (count_timeout(k) < 0)
            return;
        send_ack(k, now);
        k->silence_due = now + rtt_timeout(&k->rtt);
    }
    rearm(k);
}

void sftp_sink_start(struct sftp_sink *k, int send_start_now, uint64_t now)
{
    if (k->state != SFTP_RUNNING || k->send_start || k->got_data)
        return;
    if (send_start_now) {
        k->send_start = 1;
        send_start(k, 0);
        k->start_due = now + rtt_timeout(&k->rtt);
    }
    rearm(k);
}

/* ---- the writer --------------------------------------------------------- */

int sftp_sink_waiting_output(const struct sftp_sink *k)
{
    return k->state == SFTP_RUNNING && k->output_waiting;
}

/* The writer has room again: write what waits, and tell the source how
 * far it may now send (or that the stream is complete). */
void sftp_sink_resume(struct sftp_sink *k, uint64_t now)
{
    uint32_t window_before = window_end(k);

    if (k->state != SFTP_RUNNING || !k->output_waiting)
        return;
    k->output_waiting = 0;
    if (k->writer.in_order && (drain_in_order(k) < 0 || write_run(k) < 0))
        return;
    check_done(k);
    if (k->state < 0)
        return;
    if (k->state == SFTP_DONE || window_end(k) != window_before || k->ack_wanted)
        send_ack(k, now);
    if (k->state == SFTP_RUNNING)
        k->silence_due = now + rtt_timeout(&k->rtt);
    rearm(k);
}

/* ---- the rest of the API ------------------------------------------------- */

/* The next ACK opens the window only as far as lent: what is held past it
 * drains to the writer, and the source, stopped at the window, probes
 * until an ACK opens it again. */
void sftp_sink_limit(struct sftp_sink *k, uint32_t packets)
{
    k->lent = packets > 0 ? packets : 1;
    if (k->writer.in_order)
        bufpool_keep(&k->reorder.pool, k->lent);
}

void sftp_sink_abort(struct sftp_sink *k, int error, uint64_t now)
{
    (void)now;
    if (k->state < 0)
        return;
    fail(k, error < 0 ? error : RPC2_ECANCELED, 1);
}

int sftp_sink_state(const struct sftp_sink *k)
{
    return k->state;
}

uint64_t sftp_sink_bytes(const struct sftp_sink *k)
{
    return k->bytes_written;
}

uint32_t sftp_sink_srtt_us(const struct sftp_sink *k)
{
    return k->rtt.srtt_us;
}

void sftp_sink_set_wish(struct sftp_sink *k, const struct sftp_wish *w)
{
    k->has_wish = w != NULL;
    if (w != NULL)
        k->wish = *w;
}

int sftp_sink_failed_here(const struct sftp_sink *k)
{
    return k->state < 0 && k->failed_here;
}

const struct sftp_counters *sftp_sink_counters(const struct sftp_sink *k)
{
    return &k->counters;
}
