/*
 * test_sftp_machine.c - one SFTP source and one sink joined by an
 * in-memory link with a fake clock: datagrams are lost, duplicated,
 * reordered and delayed from a seed, timers fire when the clock reaches
 * them, the reader serves a pattern computed from the stream position and
 * the writer checks every byte against it. So a transfer through 30% loss
 * or a dead peer's whole retry schedule runs in milliseconds, the same way
 * every time.
 *
 * While a transfer runs the harness checks what must always hold: the
 * source never sends a seq more than a window beyond the got-them-all it
 * has been told, never resends what an ACK it received covered, never lets
 * out more than one pacer burst of DATA in one event (send_ahead packets, or
 * 2 ms at a fast rate: sftp_rate_info.burst), never sends DATA before START
 * in a store; the sink's got-them-all never decreases; every byte is
 * written exactly once, at its position (and in order for an in-order
 * writer).
 *
 * RPC2_TEST_SMALL=1 shrinks the 4 GiB stream to 64 MiB.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <xxhash.h>

#include <rpc2/rpc2.h>

#include "arrivals.h"
#include "machine.h"
#include "packet.h"
#include "wire.h"
#include "check_run.h"

#define NEVER UINT64_MAX
#define MS 1000u
#define SEC 1000000ull
/* The 32-bit ts wraps a few seconds into every run. */
#define START_TIME 0xfff00000ull

/* ck_assert marks a point (a pipe write) even when it holds; this does not. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)

/* ---- the link ------------------------------------------------------------ */

struct faults {
    double loss, dup, reorder, long_delay, no_buffer;
    uint32_t delay_us, jitter_us, long_delay_us;
    unsigned dup_copies;  /* extra copies of a duplicated datagram */
    unsigned drop_starts; /* the first START datagrams that vanish */
    unsigned drop_final;  /* the first ACKs sent after the sink is done that vanish */
    size_t cap;           /* the body room begin() offers */
    uint64_t dead_from;   /* from then on everything sent vanishes */
};

enum { TO_SOURCE = 0, TO_SINK = 1 };

struct dgram {
    struct arrival arrival; /* first: arrivals.h hands it back */
    struct dgram *next_free;
    int to;
    uint8_t type, flags;
    uint32_t seq, ts, ts_echo;
    size_t len;
    uint8_t body[];
};

struct harness;

struct endpoint {
    struct harness *h;
    int to; /* where what it sends goes */
    uint64_t timer;
    struct dgram *pending; /* handed out by begin, not yet committed */
    struct faults f;
    unsigned starts_dropped, finals_dropped;
};

struct scenario {
    uint64_t size;
    struct sftp_config src, snk;
    int store; /* the sink sends START; the source waits for it */
    int in_order;
    int sparse; /* stamps every 4 KiB instead of every byte (huge streams) */
    struct faults to_sink, to_source;
    uint64_t seed;
    uint64_t reader_fails_at, writer_fails_at; /* stream positions; NEVER: no */
    uint64_t abort_source_at, abort_sink_at;   /* times; NEVER: no */
    uint64_t time_limit;                       /* fake microseconds */
    /* A quiet pipe: the reader (writer) says SFTP_IO_WAIT from this stream
     * position on, for wait_us (NEVER: for good), then the harness resumes. */
    uint64_t read_wait_at, write_wait_at, wait_us;
    int digests;   /* reader and writer hash the stream (XXH3-128); 2: only the writer */
    int wrong_sum; /* ... and the reader's is wrong */
    /* Packets the memory cap lends each machine (0: no limit), and at
     * relend_at (NEVER: never) what it lends from then on. */
    uint32_t src_lent, snk_lent;
    uint64_t relend_at;
    uint32_t relend_src, relend_snk;
    /* The reader reads and the writer writes many packets a call (readv,
     * writev), and the sink gets what arrives within BATCH_SPAN_US as one
     * receive batch, as a context's recvmmsg hands it over. */
    int vectors;
    /* The source's link takes lent bodies (sftp_link.lend), which must
     * stay unchanged until a receive batch (or an event outside one) ends,
     * or an unpin comes for them, as the engine's outgoing batch needs;
     * else every body is copied at commit. */
    int lends;
};

#define BATCH_SPAN_US 500
#define BATCH_MAX 64
#define LENT_MAX 64

/* A body the source lent, and what its bytes hashed to then. */
struct lent {
    const uint8_t *body;
    size_t len;
    uint64_t sum;
};

struct harness {
    struct scenario sc;
    uint64_t now, rng, order;
    struct endpoint src_ep, snk_ep;
    struct sftp_source *src;
    struct sftp_sink *snk;
    struct arrivals arrivals;
    struct dgram *free_list;
    size_t body_room;

    /* the stream */
    uint32_t packet_size, window; /* the ones in force */
    uint64_t npackets;
    uint64_t read_pos;
    uint8_t *written; /* per packet */
    uint64_t written_bytes, next_in_order;
    uint64_t writev_calls, writev_runs; /* runs: calls with more than one packet */
    struct lent lent[LENT_MAX];
    unsigned n_lent;
    int in_batch;
    uint64_t lend_batch;  /* batches sent: the pins */
    uint64_t lent_bodies; /* lent in all */

    /* what the source has been told, for the invariants */
    uint32_t told_gta;
    uint8_t *told_held; /* per seq */
    uint32_t sent_gta;  /* the latest got-them-all the sink sent */
    int start_delivered;
    int in_source;
    uint64_t resume_at; /* when the quiet reader or writer has bytes or room */
    int read_waited, write_waited;
    XXH3_state_t *read_hash, *write_hash;
    unsigned data_this_event, max_data_per_event, burst_this_event, max_burst;
    uint64_t datagrams, events, done_at;
    uint32_t src_lent, snk_lent; /* in force; UINT32_MAX: none */
    uint32_t highest_sent;       /* the highest seq sent: above it is new data */
    uint32_t sent_window_end;    /* the latest window_end the sink sent */
};

static uint64_t rng_next(struct harness *h)
{
    uint64_t x = h->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static int chance(struct harness *h, double p)
{
    return p > 0 && (double)(rng_next(h) >> 11) / 9007199254740992.0 < p;
}

static struct dgram *dgram_new(struct harness *h)
{
    struct dgram *d = h->free_list;

    if (d != NULL) {
        h->free_list = d->next_free;
        return d;
    }
    d = malloc(sizeof(*d) + h->body_room);
    REQUIRE(d != NULL);
    return d;
}

static void dgram_free(struct harness *h, struct dgram *d)
{
    d->next_free = h->free_list;
    h->free_list = d;
}

/* ---- the stream's pattern ------------------------------------------------ */

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t pattern_byte(uint64_t pos)
{
    return (uint8_t)(mix(pos >> 3) >> (8 * (pos & 7)));
}

#define STAMP_EVERY 4096u

/* Sparse streams carry their position as 8 bytes at each 4 KiB boundary. */
static void for_each_stamp(uint64_t pos, size_t len, uint8_t *buf, const uint8_t *check)
{
    uint64_t p = (pos + STAMP_EVERY - 1) / STAMP_EVERY * STAMP_EVERY;

    for (; p + 8 <= pos + len; p += STAMP_EVERY) {
        if (buf != NULL)
            memcpy(buf + (p - pos), &p, 8);
        else
            REQUIRE(memcmp(check + (p - pos), &p, 8) == 0);
    }
}

/* Whether a quiet reader or writer waits now, the first time it reaches at
 * (then until resume_at, which the harness's clock brings). */
static int quiet(struct harness *h, int *waited, uint64_t at, uint64_t end)
{
    if (at == NEVER || *waited == 2 || end <= at)
        return 0;
    if (*waited == 0) {
        *waited = 1;
        h->resume_at = h->sc.wait_us == NEVER ? NEVER : h->now + h->sc.wait_us;
    }
    return 1;
}

static ssize_t reader_read(void *arg, uint8_t *buf, size_t len)
{
    struct harness *h = arg;
    uint64_t left = h->sc.size - h->read_pos;
    size_t n = left < len ? (size_t)left : len, i;

    if (h->sc.reader_fails_at != NEVER && h->read_pos + n > h->sc.reader_fails_at)
        return RPC2_EIO;
    if (quiet(h, &h->read_waited, h->sc.read_wait_at, h->read_pos + n))
        return SFTP_IO_WAIT;
    if (h->sc.sparse)
        for_each_stamp(h->read_pos, n, buf, NULL);
    else
        for (i = 0; i < n; i++)
            buf[i] = pattern_byte(h->read_pos + i);
    if (h->read_hash)
        XXH3_128bits_update(h->read_hash, buf, n);
    h->read_pos += n;
    return (ssize_t)n;
}

static void reader_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    struct harness *h = arg;
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->read_hash));
    memcpy(out, c.digest, SFTP_SUM_BYTES);
    out[7] ^= (uint8_t)h->sc.wrong_sum;
}

static int writer_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    struct harness *h = arg;
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->write_hash));
    memcpy(out, c.digest, SFTP_SUM_BYTES);
    return 0;
}

static int writer_write(void *arg, uint64_t pos, const uint8_t *data, size_t len)
{
    struct harness *h = arg;
    uint64_t index = pos / h->packet_size;
    size_t i;

    if (h->sc.writer_fails_at != NEVER && pos + len > h->sc.writer_fails_at)
        return RPC2_ENOSPC;
    if (quiet(h, &h->write_waited, h->sc.write_wait_at, pos + len))
        return SFTP_IO_WAIT;
    REQUIRE(len > 0);
    REQUIRE(pos % h->packet_size == 0);
    REQUIRE(index < h->npackets);
    REQUIRE(!h->written[index]);
    REQUIRE(pos + len <= h->sc.size);
    REQUIRE(len == h->packet_size || pos + len == h->sc.size);
    if (h->sc.in_order) {
        REQUIRE(pos == h->next_in_order);
        h->next_in_order += len;
    }
    if (h->sc.sparse)
        for_each_stamp(pos, len, NULL, data);
    else
        for (i = 0; i < len; i++)
            REQUIRE(data[i] == pattern_byte(pos + i));
    h->written[index] = 1;
    h->written_bytes += len;
    if (h->write_hash)
        XXH3_128bits_update(h->write_hash, data, len);
    return 0;
}

/* Reads buffer by buffer: the same bytes, and the same end, as one read. */
static ssize_t reader_readv(void *arg, const struct iovec *iov, int n)
{
    struct harness *h = arg;
    ssize_t total = 0;

    REQUIRE(n > 0 && n <= SFTP_READV_MAX);
    for (int i = 0; i < n; i++) {
        ssize_t got = reader_read(h, iov[i].iov_base, iov[i].iov_len);

        REQUIRE(got != SFTP_IO_WAIT); /* a reader with readv never waits */
        if (got < 0)
            return got;
        total += got;
        if ((size_t)got < iov[i].iov_len)
            break;
    }
    return total;
}

/* All or nothing, as writev is: a quiet writer takes none of the run. */
static int writer_writev(void *arg, uint64_t pos, const struct iovec *iov, int n)
{
    struct harness *h = arg;
    uint64_t end = pos;

    REQUIRE(n > 0 && n <= SFTP_WRITEV_MAX);
    for (int i = 0; i < n; i++)
        end += iov[i].iov_len;
    if (quiet(h, &h->write_waited, h->sc.write_wait_at, end))
        return SFTP_IO_WAIT;
    h->writev_calls++;
    if (n > 1)
        h->writev_runs++;
    for (int i = 0; i < n; i++) {
        int rc = iov[i].iov_len ? writer_write(h, pos, iov[i].iov_base, iov[i].iov_len) : 0;

        if (rc != 0)
            return rc;
        pos += iov[i].iov_len;
    }
    return 0;
}

/* ---- what the machines send ---------------------------------------------- */

static uint8_t *link_begin(void *arg, size_t *cap)
{
    struct endpoint *ep = arg;

    if (chance(ep->h, ep->f.no_buffer))
        return NULL;
    if (ep->pending == NULL)
        ep->pending = dgram_new(ep->h);
    *cap = ep->f.cap;
    return ep->pending->body;
}

static void link_set_timer(void *arg, uint64_t deadline)
{
    struct endpoint *ep = arg;

    ep->timer = deadline;
}

/* A stream of whole packets may end with an empty LAST after them, when
 * the reader could not tell in time that nothing followed. */
static uint64_t last_possible_seq(const struct harness *h)
{
    return h->npackets + (h->sc.size > 0 && h->sc.size % h->packet_size == 0);
}

/* The most DATA one event may send: a burst at the fastest rate the
 * source had during the event. */
static unsigned burst_allowed(struct harness *h)
{
    struct sftp_rate_info ri;

    sftp_source_rate_info(h->src, &ri);
    if (ri.burst > h->burst_this_event)
        h->burst_this_event = ri.burst;
    if (h->burst_this_event > h->max_burst)
        h->max_burst = h->burst_this_event;
    return h->burst_this_event > h->sc.src.send_ahead ? h->burst_this_event : h->sc.src.send_ahead;
}

/* The invariants that show in what the source sends. */
static void check_data(struct harness *h, const struct dgram *d)
{
    struct sftp_data data;

    REQUIRE(h->in_source);
    REQUIRE(++h->data_this_event <= burst_allowed(h));
    REQUIRE(!h->sc.store || h->start_delivered);
    REQUIRE(sftp_data_decode(d->body, d->len, &data) == PKT_OK);
    REQUIRE(d->seq >= 1 && d->seq <= last_possible_seq(h));
    REQUIRE(d->seq <= (uint64_t)h->told_gta + h->window);
    if (d->seq > h->highest_sent) { /* resends of what went before a lowering may exceed it */
        REQUIRE(d->seq <= (uint64_t)h->told_gta + h->src_lent);
        h->highest_sent = d->seq;
    }
    REQUIRE(!h->told_held[d->seq]);
    if (data.flags & SFTP_DATA_LAST)
        REQUIRE(d->seq == h->npackets || (d->seq == last_possible_seq(h) && data.len == 0));
    else
        REQUIRE(data.len == h->packet_size);
    REQUIRE((uint64_t)(d->seq - 1) * h->packet_size + data.len <= h->sc.size);
}

static void check_ack(struct harness *h, const struct dgram *d)
{
    struct sftp_ack a;

    REQUIRE(sftp_ack_decode(d->body, d->len, &a) == PKT_OK);
    REQUIRE(a.got_them_all >= h->sent_gta);
    REQUIRE(sftp_ack_highest(&a) <= last_possible_seq(h));
    /* past the loan only as far as an earlier ACK already opened */
    REQUIRE(a.window_end <= (uint64_t)a.got_them_all + h->snk_lent ||
            a.window_end <= h->sent_window_end);
    h->sent_window_end = a.window_end;
    h->sent_gta = a.got_them_all;
}

static int vanishes(struct endpoint *ep, const struct dgram *d)
{
    struct harness *h = ep->h;

    if (h->now >= ep->f.dead_from)
        return 1;
    if (d->type == PKT_SFTP_START && ep->starts_dropped < ep->f.drop_starts) {
        ep->starts_dropped++;
        return 1;
    }
    if (d->type == PKT_SFTP_ACK && sftp_sink_state(h->snk) == SFTP_DONE &&
        ep->finals_dropped < ep->f.drop_final) {
        ep->finals_dropped++;
        return 1;
    }
    return chance(h, ep->f.loss);
}

static uint64_t delivery_time(struct endpoint *ep)
{
    struct harness *h = ep->h;
    uint64_t at = h->now + ep->f.delay_us;

    if (ep->f.jitter_us > 0 && chance(h, ep->f.reorder))
        at += rng_next(h) % ep->f.jitter_us;
    if (chance(h, ep->f.long_delay))
        at += ep->f.long_delay_us;
    return at;
}

static void route(struct endpoint *ep, struct dgram *d)
{
    struct harness *h = ep->h;
    unsigned copies = chance(h, ep->f.dup) ? ep->f.dup_copies : 0, i;

    if (vanishes(ep, d)) {
        dgram_free(h, d);
        return;
    }
    for (i = 0; i < copies; i++) {
        struct dgram *c = dgram_new(h);

        memcpy(c, d, sizeof(*d) + d->len);
        c->arrival.at = delivery_time(ep);
        c->arrival.order = h->order++;
        arrivals_push(&h->arrivals, &c->arrival);
    }
    d->arrival.at = delivery_time(ep);
    d->arrival.order = h->order++;
    arrivals_push(&h->arrivals, &d->arrival);
}

static void link_commit(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                        size_t len)
{
    struct endpoint *ep = arg;
    struct harness *h = ep->h;
    struct dgram *d = ep->pending;

    REQUIRE(d != NULL);
    REQUIRE(len <= ep->f.cap);
    ep->pending = NULL;
    d->to = ep->to;
    d->type = type;
    d->flags = flags;
    d->seq = seq;
    d->ts = (uint32_t)h->now != 0 ? (uint32_t)h->now : 1;
    d->ts_echo = ts_echo;
    d->len = len;
    h->datagrams++;
    if (type == PKT_SFTP_DATA)
        check_data(h, d);
    else if (type == PKT_SFTP_ACK)
        check_ack(h, d);
    route(ep, d);
}

/* ---- lent bodies --------------------------------------------------------- */

/* The engine's batch goes out: each body lent into it must still be as it
 * was when lent; a source that changed or reused one before would have
 * sent other bytes than it meant. */
static void lent_flush(struct harness *h)
{
    for (unsigned i = 0; i < h->n_lent; i++)
        REQUIRE(XXH3_64bits(h->lent[i].body, h->lent[i].len) == h->lent[i].sum);
    h->n_lent = 0;
    h->lend_batch++;
}

/* The datagram is routed now (what is sent is what was lent); the body
 * is checked again when its batch goes out. */
static uint64_t link_lend(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                          uint8_t *body, size_t len)
{
    struct endpoint *ep = arg;
    struct harness *h = ep->h;
    size_t cap;
    uint8_t *copy;

    REQUIRE(h->in_source);
    /* the room the engine writes its header and trailer into */
    memset(body - SFTP_LEND_HEADROOM, 0x5a, SFTP_LEND_HEADROOM);
    memset(body + len, 0x5a, SFTP_LEND_TAILROOM);
    if (h->n_lent == LENT_MAX)
        lent_flush(h);
    h->lent[h->n_lent++] = (struct lent){body, len, XXH3_64bits(body, len)};
    h->lent_bodies++;
    copy = link_begin(ep, &cap);
    if (copy != NULL) {
        REQUIRE(len <= cap);
        memcpy(copy, body, len);
        link_commit(ep, type, flags, seq, ts_echo, len);
    }
    return h->lend_batch + 1;
}

static void link_unpin(void *arg, uint64_t pin)
{
    struct endpoint *ep = arg;

    if (pin == ep->h->lend_batch + 1)
        lent_flush(ep->h);
}

/* ---- delivering ---------------------------------------------------------- */

/* What an ACK tells the source, recorded before the source reads it. */
static void note_told(struct harness *h, const struct dgram *d)
{
    struct sftp_ack a;
    uint32_t i;

    if (d->type != PKT_SFTP_ACK || sftp_ack_decode(d->body, d->len, &a) != PKT_OK)
        return;
    for (; h->told_gta < a.got_them_all; h->told_gta++)
        h->told_held[h->told_gta + 1] = 1;
    for (i = 0; i < a.bitmap_len * 8; i++)
        if (a.bitmap[i / 8] >> (i % 8) & 1)
            h->told_held[a.got_them_all + 2 + i] = 1;
}

static void source_event_begin(struct harness *h)
{
    h->in_source = 1;
    h->data_this_event = 0;
    h->burst_this_event = 0;
}

static void source_event_end(struct harness *h)
{
    if (!h->in_batch)
        lent_flush(h);
    h->in_source = 0;
    if (h->data_this_event > h->max_data_per_event)
        h->max_data_per_event = h->data_this_event;
}

static void deliver(struct harness *h, struct dgram *d)
{
    if (d->to == TO_SOURCE) {
        note_told(h, d);
        if (d->type == PKT_SFTP_START)
            h->start_delivered = 1;
        source_event_begin(h);
        sftp_source_receive(h->src, d->type, d->seq, d->ts, d->ts_echo, d->body, d->len, h->now);
        source_event_end(h);
    } else {
        sftp_sink_receive(h->snk, d->type, d->flags, d->seq, d->ts, d->ts_echo, d->body, d->len,
                          h->now);
    }
    dgram_free(h, d);
}

/* What arrives within BATCH_SPAN_US of t, in order, as one receive batch:
 * the sink's bodies stay valid (not freed, not reused) until it ends. */
static void deliver_batch(struct harness *h, uint64_t t)
{
    struct dgram *held[BATCH_MAX];
    unsigned n = 0;

    sftp_sink_batch_begin(h->snk);
    h->in_batch = 1;
    while (n < BATCH_MAX && arrivals_next_at(&h->arrivals) <= t + BATCH_SPAN_US) {
        struct dgram *d = (struct dgram *)arrivals_pop(&h->arrivals);

        if (d->to == TO_SOURCE) {
            deliver(h, d);
            continue;
        }
        sftp_sink_receive(h->snk, d->type, d->flags, d->seq, d->ts, d->ts_echo, d->body, d->len,
                          h->now);
        held[n++] = d;
    }
    sftp_sink_batch_end(h->snk, h->now);
    h->in_batch = 0;
    lent_flush(h);
    while (n > 0)
        dgram_free(h, held[--n]);
}

/* The quiet pipe has bytes (or room) again. */
static void resume(struct harness *h)
{
    h->resume_at = NEVER;
    if (h->read_waited == 1) {
        h->read_waited = 2;
        source_event_begin(h);
        sftp_source_resume(h->src, h->now);
        source_event_end(h);
    }
    if (h->write_waited == 1) {
        h->write_waited = 2;
        sftp_sink_resume(h->snk, h->now);
    }
}

/* One event: the earliest datagram or timer. Returns 0 when nothing is left. */
static int step(struct harness *h)
{
    uint64_t t_pkt = arrivals_next_at(&h->arrivals);
    uint64_t t = t_pkt;

    if (h->src_ep.timer < t)
        t = h->src_ep.timer;
    if (h->snk_ep.timer < t)
        t = h->snk_ep.timer;
    if (h->resume_at < t)
        t = h->resume_at;
    if (t == NEVER)
        return 0;
    if (t > h->now)
        h->now = t;
    h->events++;
    if (t_pkt == t && h->sc.vectors) {
        deliver_batch(h, t);
    } else if (t_pkt == t) {
        deliver(h, (struct dgram *)arrivals_pop(&h->arrivals));
    } else if (h->resume_at == t) {
        resume(h);
    } else if (h->src_ep.timer == t) {
        h->src_ep.timer = NEVER;
        source_event_begin(h);
        sftp_source_on_timer(h->src, h->now);
        source_event_end(h);
    } else {
        h->snk_ep.timer = NEVER;
        sftp_sink_on_timer(h->snk, h->now);
    }
    return 1;
}

/* ---- scenarios ----------------------------------------------------------- */

static struct sftp_config default_config(void)
{
    return (struct sftp_config){
        .packet_size = 1000,
        .window = 64,
        .send_ahead = 8,
        .ack_point = 4,
        .dup_threshold = 3,
        .retry_count = 6,
        .retry_initial_us = 100 * MS,
        .retry_min_us = 5 * MS,
        .retry_max_us = 1000 * MS,
        .rate_max_bps = 0,
    };
}

static struct faults clean_link(void)
{
    return (struct faults){
        .delay_us = 1 * MS,
        .cap = PKT_MAX_BODY,
        .dead_from = NEVER,
    };
}

static struct faults lossy_link(double loss)
{
    struct faults f = clean_link();

    f.loss = loss;
    f.dup = 0.05;
    f.dup_copies = 2;
    f.reorder = 0.3;
    f.jitter_us = 3 * MS;
    return f;
}

static struct scenario default_scenario(uint64_t size)
{
    return (struct scenario){
        .size = size,
        .src = default_config(),
        .snk = default_config(),
        .to_sink = clean_link(),
        .to_source = clean_link(),
        .seed = 1,
        .reader_fails_at = NEVER,
        .writer_fails_at = NEVER,
        .abort_source_at = NEVER,
        .abort_sink_at = NEVER,
        .time_limit = 120 * SEC,
        .read_wait_at = NEVER,
        .write_wait_at = NEVER,
        .relend_at = NEVER,
    };
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* What the context's memory cap would do: lend each machine so many packets. */
static void lend(struct harness *h, uint32_t src, uint32_t snk)
{
    if (src != 0) {
        sftp_source_limit(h->src, src);
        h->src_lent = src;
    }
    if (snk != 0) {
        sftp_sink_limit(h->snk, snk);
        h->snk_lent = snk;
    }
}

static struct harness *harness_new(const struct scenario *sc)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct sftp_link src_link = {.begin = link_begin,
                                 .commit = link_commit,
                                 .set_timer = link_set_timer,
                                 .arg = &h->src_ep,
                                 .lend = sc->lends ? link_lend : NULL,
                                 .unpin = sc->lends ? link_unpin : NULL};
    struct sftp_link snk_link = {
        .begin = link_begin, .commit = link_commit, .set_timer = link_set_timer, .arg = &h->snk_ep};
    struct sftp_reader reader = {.read = reader_read,
                                 .readv = sc->vectors ? reader_readv : NULL,
                                 .digest = sc->digests == 1 ? reader_digest : NULL,
                                 .arg = h};
    struct sftp_writer writer = {.write = writer_write,
                                 .writev = sc->vectors ? writer_writev : NULL,
                                 .digest = sc->digests ? writer_digest : NULL,
                                 .in_order = sc->in_order,
                                 .arg = h};

    REQUIRE(h != NULL);
    h->sc = *sc;
    h->now = START_TIME;
    h->resume_at = NEVER;
    if (sc->digests) {
        h->read_hash = XXH3_createState();
        h->write_hash = XXH3_createState();
        REQUIRE(h->read_hash && h->write_hash);
        XXH3_128bits_reset(h->read_hash);
        XXH3_128bits_reset(h->write_hash);
    }
    h->rng = sc->seed * 0x9e3779b97f4a7c15ull + 1;
    h->src_ep = (struct endpoint){h, TO_SINK, NEVER, NULL, sc->to_sink, 0, 0};
    h->snk_ep = (struct endpoint){h, TO_SOURCE, NEVER, NULL, sc->to_source, 0, 0};
    h->body_room = sc->to_sink.cap > sc->to_source.cap ? sc->to_sink.cap : sc->to_source.cap;
    h->packet_size = sc->src.packet_size;
    h->window = sc->src.window;
    if (sc->store) {
        h->packet_size = min_u32(h->packet_size, sc->snk.packet_size);
        h->window = min_u32(h->window, sc->snk.window);
    }
    h->npackets = sc->size == 0 ? 1 : (sc->size + h->packet_size - 1) / h->packet_size;
    h->written = calloc(h->npackets + 1, 1);
    h->told_held = calloc(h->npackets + h->window + 2, 1);
    REQUIRE(h->written != NULL && h->told_held != NULL);
    h->src = sftp_source_new(&sc->src, &src_link, &reader);
    h->snk = sftp_sink_new(&sc->snk, &snk_link, &writer);
    REQUIRE(h->src != NULL && h->snk != NULL);
    h->src_lent = h->snk_lent = UINT32_MAX;
    lend(h, sc->src_lent, sc->snk_lent);
    return h;
}

static void harness_free(struct harness *h)
{
    struct dgram *d;

    while (h->arrivals.len > 0)
        dgram_free(h, (struct dgram *)arrivals_pop(&h->arrivals));
    free(h->src_ep.pending);
    free(h->snk_ep.pending);
    while ((d = h->free_list) != NULL) {
        h->free_list = d->next_free;
        free(d);
    }
    /* what is still lent is dropped, as engine_free drops its batch */
    h->n_lent = 0;
    h->lend_batch++;
    sftp_source_free(h->src);
    sftp_sink_free(h->snk);
    arrivals_dispose(&h->arrivals);
    free(h->written);
    free(h->told_held);
    XXH3_freeState(h->read_hash);
    XXH3_freeState(h->write_hash);
    free(h);
}

static int running(const struct harness *h)
{
    return sftp_source_state(h->src) == SFTP_RUNNING || sftp_sink_state(h->snk) == SFTP_RUNNING;
}

static void maybe_abort(struct harness *h)
{
    if (h->now >= h->sc.abort_source_at) {
        h->sc.abort_source_at = NEVER;
        source_event_begin(h);
        sftp_source_abort(h->src, RPC2_ECANCELED, h->now);
        source_event_end(h);
    }
    if (h->now >= h->sc.abort_sink_at) {
        h->sc.abort_sink_at = NEVER;
        sftp_sink_abort(h->snk, RPC2_ESEFAIL1, h->now);
    }
}

/* SFTP_TEST_TRACE=1: one line per transfer, to see what the machines did. */
static void trace(const struct harness *h)
{
    if (getenv("SFTP_TEST_TRACE") == NULL)
        return;
    const struct sftp_counters *a = sftp_source_counters(h->src), *b = sftp_sink_counters(h->snk);

    fprintf(stderr,
            "size %llu P %u: %.3f ms, states %d/%d, data %llu (retx %llu) acks %llu/%llu "
            "dups %llu starts %llu timeouts %llu/%llu srtt %u events %llu maxburst %u\n",
            (unsigned long long)h->sc.size, h->packet_size,
            (double)(h->done_at - START_TIME) / 1000.0, sftp_source_state(h->src),
            sftp_sink_state(h->snk), (unsigned long long)a->data_sent,
            (unsigned long long)a->data_retransmitted, (unsigned long long)b->acks_sent,
            (unsigned long long)a->acks_received, (unsigned long long)b->data_duplicates,
            (unsigned long long)b->starts_sent, (unsigned long long)a->timeouts,
            (unsigned long long)b->timeouts, sftp_source_srtt_us(h->src),
            (unsigned long long)h->events, h->max_data_per_event);
}

/*
 * Runs the transfer until neither machine is running, then delivers what
 * is still on the way (the sink keeps answering duplicates after its end).
 */
static struct harness *run(const struct scenario *sc)
{
    struct harness *h = harness_new(sc);

    sftp_sink_start(h->snk, sc->store, h->now);
    if (!sc->store) {
        source_event_begin(h);
        sftp_source_start(h->src, h->now);
        source_event_end(h);
    }
    while (running(h) && step(h)) {
        REQUIRE(h->now - START_TIME <= sc->time_limit);
        maybe_abort(h);
        if (h->now >= h->sc.relend_at) {
            h->sc.relend_at = NEVER;
            lend(h, sc->relend_src, sc->relend_snk);
        }
    }
    h->done_at = h->now;
    trace(h);
    while (step(h))
        REQUIRE(h->now - START_TIME <= sc->time_limit + 60 * SEC);
    return h;
}

/* The transfer succeeded: both ends done, every byte written once. */
static void check_success(struct harness *h)
{
    uint64_t i;

    ck_assert_int_eq(sftp_source_state(h->src), SFTP_DONE);
    ck_assert_int_eq(sftp_sink_state(h->snk), SFTP_DONE);
    ck_assert_uint_eq(sftp_source_bytes(h->src), h->sc.size);
    ck_assert_uint_eq(sftp_sink_bytes(h->snk), h->sc.size);
    ck_assert_uint_eq(h->written_bytes, h->sc.size);
    for (i = 0; h->sc.size > 0 && i < h->npackets; i++)
        REQUIRE(h->written[i]);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->bytes_received, h->sc.size);
    ck_assert_uint_le(h->max_data_per_event,
                      h->max_burst > h->sc.src.send_ahead ? h->max_burst : h->sc.src.send_ahead);
}

static void run_ok(const struct scenario *sc)
{
    struct harness *h = run(sc);

    check_success(h);
    harness_free(h);
}

static int small_tests(void)
{
    const char *s = getenv("RPC2_TEST_SMALL");

    return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

/* ---- sizes on a clean link ------------------------------------------------ */

static const uint64_t sizes[] = {
    0, 1, 999, 1000, 1001, 64 * 1000 - 1, 64 * 1000, 64 * 1000 + 1, 4 * 1000 * 1000 + 7,
};

START_TEST(sizes_fetch)
{
    struct scenario sc = default_scenario(sizes[_i]);
    struct harness *h = run(&sc);

    check_success(h);
    /* Nothing was lost, so nothing went twice. */
    ck_assert_uint_eq(sftp_source_counters(h->src)->data_retransmitted, 0);
    ck_assert_uint_eq(sftp_source_counters(h->src)->data_sent, h->npackets);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->data_duplicates, 0);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->starts_sent, 0);
    ck_assert_uint_gt(sftp_source_srtt_us(h->src), 0);
    harness_free(h);
}
END_TEST

START_TEST(sizes_store)
{
    struct scenario sc = default_scenario(sizes[_i]);
    struct harness *h;

    sc.store = 1;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->starts_sent, 1);
    ck_assert_uint_eq(sftp_source_counters(h->src)->data_retransmitted, 0);
    harness_free(h);
}
END_TEST

START_TEST(sizes_in_order_writer)
{
    struct scenario sc = default_scenario(sizes[_i]);

    sc.in_order = 1;
    sc.to_sink = lossy_link(0.1);
    sc.seed = 100 + (uint64_t)_i;
    run_ok(&sc);
}
END_TEST

/* ---- loss, duplication, reordering ---------------------------------------- */

static void lossy(double loss, int store, int in_order, uint64_t seed)
{
    struct scenario sc = default_scenario(1000 * 1000 + 333);
    struct harness *h;

    sc.to_sink = lossy_link(loss);
    sc.to_source = lossy_link(loss);
    sc.store = store;
    sc.in_order = in_order;
    sc.seed = seed;
    sc.lends = (int)(seed & 1);
    h = run(&sc);
    check_success(h);
    if (sc.lends)
        ck_assert_uint_gt(h->lent_bodies, 0);
    if (loss > 0)
        ck_assert_uint_gt(sftp_source_counters(h->src)->data_retransmitted, 0);
    harness_free(h);
}

START_TEST(loss_10_percent)
{
    lossy(0.10, _i & 1, _i & 2, 10 + (uint64_t)_i);
}
END_TEST

START_TEST(loss_30_percent)
{
    lossy(0.30, _i & 1, _i & 2, 30 + (uint64_t)_i);
}
END_TEST

START_TEST(duplicate_floods)
{
    struct scenario sc = default_scenario(500 * 1000);
    struct harness *h;

    sc.to_sink = lossy_link(0.05);
    sc.to_sink.dup = 0.5;
    sc.to_sink.dup_copies = 6;
    sc.to_source = sc.to_sink;
    sc.in_order = _i;
    sc.lends = 1;
    sc.seed = 7 + (uint64_t)_i;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_gt(sftp_sink_counters(h->snk)->data_duplicates, 1000);
    harness_free(h);
}
END_TEST

/* A few packets arrive many round trips late, after their resends. */
START_TEST(long_reordering)
{
    struct scenario sc = default_scenario(1000 * 1000);
    struct harness *h;

    sc.to_sink = lossy_link(0.02);
    sc.to_sink.long_delay = 0.03;
    sc.to_sink.long_delay_us = 40 * MS; /* 20 round trips */
    sc.to_source = sc.to_sink;
    sc.in_order = _i;
    sc.lends = 1;
    sc.seed = 77 + (uint64_t)_i;
    h = run(&sc);
    check_success(h);
    harness_free(h);
}
END_TEST

/* ACKs that can hold only 8 bitmap bytes (a window of 64 needs up to 8). */
START_TEST(small_ack_room_and_missing_buffers)
{
    struct scenario sc = default_scenario(300 * 1000);

    sc.src.window = sc.snk.window = 200;
    sc.to_sink = lossy_link(0.1);
    sc.to_source = lossy_link(0.1);
    sc.to_source.cap = SFTP_ACK_HEAD + 8;
    sc.to_sink.no_buffer = 0.05;
    sc.to_source.no_buffer = 0.05;
    sc.seed = 5;
    run_ok(&sc);
}
END_TEST

/* The last ACK is lost twice: the source resends, the finished sink answers. */
START_TEST(final_ack_lost)
{
    struct scenario sc = default_scenario(10 * 1000);
    struct harness *h;

    sc.to_source.drop_final = 2;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_ge(sftp_source_counters(h->src)->timeouts, 1);
    ck_assert_uint_ge(sftp_sink_counters(h->snk)->data_duplicates, 1);
    harness_free(h);
}
END_TEST

/* ---- START, ABORT, failures ----------------------------------------------- */

START_TEST(store_with_starts_lost)
{
    struct scenario sc = default_scenario(50 * 1000);
    struct harness *h;

    sc.store = 1;
    sc.to_source.drop_starts = 4;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->starts_sent, 5);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->timeouts, 4);
    harness_free(h);
}
END_TEST

/* The sink takes smaller packets and a smaller window than the source offers. */
START_TEST(store_negotiates_down)
{
    struct scenario sc = default_scenario(200 * 1000 + 1);
    struct harness *h;

    sc.store = 1;
    sc.snk.packet_size = 700;
    sc.snk.window = 16;
    sc.to_sink = lossy_link(0.1);
    h = run(&sc);
    ck_assert_uint_eq(h->packet_size, 700);
    check_success(h);
    harness_free(h);
}
END_TEST

/* The source uses smaller packets than the sink's limit: the sink learns them. */
START_TEST(sink_learns_packet_size)
{
    struct scenario sc = default_scenario(100 * 1000 + 5);

    sc.src.packet_size = 640;
    sc.snk.packet_size = 1400;
    sc.to_sink = lossy_link(0.2);
    sc.to_sink.reorder = 0.8;
    sc.in_order = _i;
    sc.seed = 3 + (uint64_t)_i;
    run_ok(&sc);
}
END_TEST

START_TEST(source_aborts)
{
    struct scenario sc = default_scenario(1000 * 1000);
    struct harness *h;

    sc.abort_source_at = START_TIME + 20 * MS;
    h = run(&sc);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_ECANCELED);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_ECANCELED);
    ck_assert_uint_lt(sftp_sink_bytes(h->snk), sc.size);
    harness_free(h);
}
END_TEST

START_TEST(sink_aborts)
{
    struct scenario sc = default_scenario(1000 * 1000);
    struct harness *h;

    sc.store = _i;
    sc.abort_sink_at = START_TIME + 20 * MS;
    h = run(&sc);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_ESEFAIL1);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_ESEFAIL1);
    harness_free(h);
}
END_TEST

/* A store the sink aborts before the source ever started. */
START_TEST(sink_aborts_before_start)
{
    struct scenario sc = default_scenario(1000);
    struct harness *h;

    sc.store = 1;
    sc.to_source.drop_starts = 100;
    sc.abort_sink_at = START_TIME + 1;
    h = run(&sc);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_ESEFAIL1);
    ck_assert_uint_eq(sftp_source_counters(h->src)->data_sent, 0);
    harness_free(h);
}
END_TEST

START_TEST(reader_error_reaches_the_sink)
{
    struct scenario sc = default_scenario(100 * 1000);
    struct harness *h;

    sc.reader_fails_at = 50 * 1000;
    h = run(&sc);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_EIO);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_EIO);
    harness_free(h);
}
END_TEST

START_TEST(writer_error_reaches_the_source)
{
    struct scenario sc = default_scenario(100 * 1000);
    struct harness *h;

    sc.writer_fails_at = 30 * 1000;
    sc.in_order = _i;
    h = run(&sc);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_ENOSPC);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_ENOSPC);
    harness_free(h);
}
END_TEST

/* Everything vanishes mid-transfer: both ends give up after retry_count retries. */
START_TEST(peer_vanishes)
{
    struct scenario sc = default_scenario(1000 * 1000);
    struct harness *h;

    sc.to_sink.dead_from = START_TIME + 30 * MS;
    sc.to_source.dead_from = START_TIME + 30 * MS;
    h = run(&sc);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_EDEAD);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_EDEAD);
    ck_assert_uint_eq(sftp_source_counters(h->src)->timeouts, sc.src.retry_count + 1);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->timeouts, sc.snk.retry_count + 1);
    /* The whole backoff schedule, not a moment more: 7 doublings from >= 5 ms. */
    ck_assert_uint_lt(h->done_at - START_TIME, 3 * SEC);
    harness_free(h);
}
END_TEST

/* A store whose source never answers: START repeats retry_count times. */
START_TEST(store_source_never_answers)
{
    struct scenario sc = default_scenario(1000);
    struct harness *h;

    sc.store = 1;
    sc.to_source.dead_from = START_TIME;
    h = run(&sc);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_EDEAD);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->starts_sent, sc.snk.retry_count + 1);
    ck_assert_int_eq(sftp_source_state(h->src), SFTP_RUNNING);
    harness_free(h);
}
END_TEST

/* ---- pacing and size -------------------------------------------------------- */

START_TEST(rate_ceiling_is_kept)
{
    struct scenario sc = default_scenario(1000 * 1000);
    struct harness *h;

    sc.src.rate_max_bps = 2 * 1000 * 1000;
    sc.src.window = sc.snk.window = 1000;
    h = run(&sc);
    check_success(h);
    /* 1 MB at 2 MB/s: half a second, less at most one burst's head start. */
    ck_assert_uint_ge(h->done_at - START_TIME, 495 * MS);
    ck_assert_uint_le(h->done_at - START_TIME, 600 * MS);
    harness_free(h);
}
END_TEST

/* More than 4 GiB: positions and byte counts past 32 bits, through a link
 * that copies nothing and a pattern stamped every 4 KiB. */
START_TEST(beyond_4_gib)
{
    uint64_t size = small_tests() ? (64ull << 20) + 12345 : (4ull << 30) + 12345;
    struct scenario sc = default_scenario(size);
    struct harness *h;

    sc.src.packet_size = sc.snk.packet_size = 61440;
    sc.src.window = sc.snk.window = 128;
    sc.src.send_ahead = 32;
    sc.src.ack_point = sc.snk.ack_point = 16;
    sc.to_sink.delay_us = sc.to_source.delay_us = 100;
    sc.sparse = 1;
    sc.time_limit = 3600 * SEC;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_eq(sftp_source_counters(h->src)->bytes_sent, size);
    harness_free(h);
}
END_TEST

/* ---- random configurations ------------------------------------------------ */

static uint64_t pick(uint64_t *x, uint64_t n)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x % n;
}

static struct faults random_faults(uint64_t *x)
{
    static const double losses[] = {0, 0, 0.01, 0.05, 0.1, 0.2, 0.3};
    struct faults f = clean_link();

    f.loss = losses[pick(x, 7)];
    f.dup = pick(x, 3) == 0 ? 0.1 : 0;
    f.dup_copies = 1 + (unsigned)pick(x, 4);
    f.reorder = pick(x, 2) ? 0.3 : 0;
    f.jitter_us = 1 + (uint32_t)pick(x, 5 * MS);
    f.long_delay = pick(x, 4) == 0 ? 0.02 : 0;
    f.long_delay_us = 30 * MS;
    f.no_buffer = pick(x, 5) == 0 ? 0.02 : 0;
    f.delay_us = 100 + (uint32_t)pick(x, 3 * MS);
    return f;
}

/* A transfer of random shape through a random link must still succeed. */
static void random_transfer(uint64_t seed)
{
    static const uint32_t windows[] = {1, 2, 3, 8, 64, 300, 2000};
    static const uint32_t packet_sizes[] = {1, 7, 100, 1000, 1400};
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 12345;
    struct scenario sc = default_scenario(0);
    struct sftp_config *c = &sc.src;

    c->window = windows[pick(&x, 7)];
    c->packet_size = packet_sizes[pick(&x, 5)];
    c->send_ahead = 1 + (uint32_t)pick(&x, c->window < 32 ? c->window : 32);
    c->ack_point = 1 + (uint32_t)pick(&x, 16);
    c->dup_threshold = 1 + (uint32_t)pick(&x, 5);
    c->retry_count = 12;
    c->rate_max_bps = pick(&x, 4) == 0 ? 1000 * 1000 + pick(&x, 1000 * 1000) : 0;
    sc.snk = *c;
    sc.store = (int)pick(&x, 2);
    sc.in_order = (int)pick(&x, 2);
    if (sc.store) { /* the sink may ask for less */
        sc.snk.window = windows[pick(&x, 7)];
        sc.snk.packet_size = packet_sizes[pick(&x, 5)];
    } else { /* a fetch's sink must accept what the source sends */
        sc.snk.packet_size = c->packet_size + (uint32_t)pick(&x, 100);
        sc.snk.window = c->window + (uint32_t)pick(&x, 10);
    }
    sc.snk.ack_point = 1 + (uint32_t)pick(&x, 16);
    sc.size = pick(&x, 2000) * min_u32(c->packet_size, sc.snk.packet_size) + pick(&x, 3);
    sc.to_sink = random_faults(&x);
    sc.to_source = random_faults(&x);
    sc.seed = seed;
    sc.lends = (int)(seed & 1);
    sc.time_limit = 600 * SEC;
    run_ok(&sc);
}

START_TEST(random_shapes)
{
    const char *env = getenv("SFTP_TEST_RANDOM_BASE");
    uint64_t base = env != NULL ? strtoull(env, NULL, 10) : 0;

    random_transfer(base + (uint64_t)_i);
}
END_TEST

/* ---- fed by hand: malformed input, the ack policy, memory ----------------- */

/* Takes everything the machines queued; returns the last ACK among it. */
static int take_sent(struct harness *h, struct sftp_ack *ack, uint8_t *bitmap, unsigned *n)
{
    int found = 0;

    *n = 0;
    while (h->arrivals.len > 0) {
        struct dgram *d = (struct dgram *)arrivals_pop(&h->arrivals);

        (*n)++;
        if (d->type == PKT_SFTP_ACK && sftp_ack_decode(d->body, d->len, ack) == PKT_OK) {
            if (ack->bitmap_len > 0)
                memcpy(bitmap, ack->bitmap, ack->bitmap_len);
            ack->bitmap = bitmap;
            found = 1;
        }
        dgram_free(h, d);
    }
    return found;
}

static void feed_data(struct harness *h, uint32_t seq, uint32_t flags, uint32_t len)
{
    uint8_t body[SFTP_DATA_HEAD + 2000];
    uint8_t *data = sftp_data_encode(body, sizeof(body), flags, seq, len);
    uint64_t pos = (uint64_t)(seq - 1) * h->packet_size;
    uint32_t i;

    REQUIRE(data != NULL);
    for (i = 0; i < len; i++)
        data[i] = pattern_byte(pos + i);
    h->now += 10;
    sftp_sink_receive(h->snk, PKT_SFTP_DATA, 0, seq, (uint32_t)h->now, 0, body,
                      SFTP_DATA_HEAD + len, h->now);
}

START_TEST(sink_refuses_what_does_not_fit)
{
    struct scenario sc = default_scenario(9500);
    struct harness *h = harness_new(&sc);
    const struct sftp_counters *c = sftp_sink_counters(h->snk);
    uint8_t body[8] = {0, 0, 0, 0x04}, bitmap[SFTP_MAX_BITMAP];
    struct sftp_ack ack;
    unsigned n;

    sftp_sink_start(h->snk, 0, h->now);
    /* Malformed: seq 0, a short body, an unknown flag, an unknown type. */
    feed_data(h, 0, 0, 1000);
    sftp_sink_receive(h->snk, PKT_SFTP_DATA, 0, 1, 1, 0, body, 3, h->now);
    sftp_sink_receive(h->snk, PKT_SFTP_DATA, 0, 1, 1, 0, body, 8, h->now);
    sftp_sink_receive(h->snk, PKT_SFTP_START, 0, 1, 1, 0, body, 8, h->now);
    ck_assert_uint_eq(c->data_received, 0);
    /* An ABORT that carries no error is no abort. */
    sftp_sink_receive(h->snk, PKT_SFTP_ABORT, 0, 0, 1, 0, (const uint8_t[]){0, 0, 0, 0}, 4, h->now);
    ck_assert_int_eq(sftp_sink_state(h->snk), SFTP_RUNNING);
    /* A LAST other than the first cannot be placed before the packet size is known. */
    feed_data(h, 10, SFTP_DATA_LAST, 500);
    ck_assert_uint_eq(c->data_received, 1);
    ck_assert_uint_eq(c->bytes_received, 0);
    ck_assert(!take_sent(h, &ack, bitmap, &n));
    /* seq 1 teaches it; wrong sizes after that are refused. */
    feed_data(h, 1, 0, 1000);
    feed_data(h, 2, 0, 999);
    ck_assert_uint_eq(c->bytes_received, 1000);
    feed_data(h, 10, SFTP_DATA_LAST, 500);
    ck_assert_uint_eq(c->bytes_received, 1500);
    /* Past the LAST, and a second LAST below what is held, are refused. */
    feed_data(h, 11, 0, 1000);
    feed_data(h, 5, SFTP_DATA_LAST, 10);
    ck_assert_uint_eq(c->bytes_received, 1500);
    feed_data(h, 10, 0, 1000); /* the same seq again: a duplicate */
    ck_assert_uint_eq(c->data_duplicates, 1);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 1);
    ck_assert_uint_eq(ack.delivered, 1500);
    ck_assert_uint_eq(ack.bitmap_len, 1); /* seq 10 = 1 + 2 + bit 7 */
    ck_assert_uint_eq(bitmap[0], 0x80);
    for (uint32_t seq = 2; seq <= 9; seq++)
        feed_data(h, seq, 0, 1000);
    ck_assert_int_eq(sftp_sink_state(h->snk), SFTP_DONE);
    ck_assert_uint_eq(sftp_sink_bytes(h->snk), 9500);
    /* Done, it still answers duplicates: its last ACK may have been lost. */
    take_sent(h, &ack, bitmap, &n);
    feed_data(h, 3, 0, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 10);
    harness_free(h);
}
END_TEST

/* Only an empty stream ends with an empty packet. */
/* A source that could not tell the stream had ended (a quiet pipe) sends an
 * empty LAST after the full packets; an empty stream is one empty LAST. */
START_TEST(empty_last_ends_a_stream)
{
    struct scenario sc = default_scenario(1000);
    struct harness *h = harness_new(&sc);

    sftp_sink_start(h->snk, 0, h->now);
    feed_data(h, 1, 0, 1000);
    ck_assert_int_eq(sftp_sink_state(h->snk), SFTP_RUNNING);
    feed_data(h, 2, SFTP_DATA_LAST, 0);
    ck_assert_int_eq(sftp_sink_state(h->snk), SFTP_DONE);
    ck_assert_uint_eq(h->written_bytes, 1000);
    harness_free(h);
    sc = default_scenario(0);
    h = harness_new(&sc);
    sftp_sink_start(h->snk, 0, h->now);
    feed_data(h, 1, SFTP_DATA_LAST, 0);
    ck_assert_int_eq(sftp_sink_state(h->snk), SFTP_DONE);
    harness_free(h);
}
END_TEST

START_TEST(sink_drops_beyond_its_window)
{
    struct scenario sc = default_scenario(200 * 1000);
    struct harness *h = harness_new(&sc);
    const struct sftp_counters *c = sftp_sink_counters(h->snk);
    uint8_t bitmap[SFTP_MAX_BITMAP];
    struct sftp_ack ack;
    unsigned n;

    sftp_sink_start(h->snk, 0, h->now);
    feed_data(h, 66, 0, 1000);
    feed_data(h, 65, 0, 1000);
    ck_assert_uint_eq(c->data_received, 2);
    ck_assert_uint_eq(c->bytes_received, 0);
    ck_assert_uint_eq(c->data_duplicates, 0);
    ck_assert_uint_eq(h->written_bytes, 0);
    feed_data(h, 64, 0, 1000); /* the window's last seq */
    ck_assert_uint_eq(h->written_bytes, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 0);
    ck_assert_uint_eq(ack.bitmap_len, 8);
    ck_assert_uint_eq(bitmap[7], 0x40); /* seq 64 = bit 62 */
    harness_free(h);
}
END_TEST

START_TEST(sink_ack_policy)
{
    struct scenario sc = default_scenario(100 * 1000);
    struct harness *h = harness_new(&sc);
    uint8_t bitmap[SFTP_MAX_BITMAP];
    struct sftp_ack ack;
    unsigned n;
    uint32_t seq;

    sftp_sink_start(h->snk, 0, h->now);
    ck_assert_uint_eq(h->snk_ep.timer, NEVER); /* a fetch waits for data, no START */
    for (seq = 1; seq <= 3; seq++)
        feed_data(h, seq, 0, 1000);
    ck_assert(!take_sent(h, &ack, bitmap, &n));
    /* Fewer than ack_point: an ACK is due within the ack delay. */
    ck_assert_uint_le(h->snk_ep.timer, h->now + 1000);
    feed_data(h, 4, 0, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 4);
    /* A gap and its filling are reported at once. */
    feed_data(h, 6, 0, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 4);
    ck_assert_uint_eq(bitmap[0], 0x01);
    feed_data(h, 5, 0, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 6);
    ck_assert_uint_eq(ack.bitmap_len, 0);
    /* ACKME is answered at once. */
    feed_data(h, 7, SFTP_DATA_ACKME, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 7);
    /* dup_threshold duplicates make an ACK, fewer do not. */
    feed_data(h, 7, 0, 1000);
    feed_data(h, 7, 0, 1000);
    ck_assert(!take_sent(h, &ack, bitmap, &n));
    feed_data(h, 3, 0, 1000);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    /* The delayed ACK comes from the timer. */
    feed_data(h, 8, 0, 1000);
    ck_assert(!take_sent(h, &ack, bitmap, &n));
    h->now = h->snk_ep.timer;
    h->snk_ep.timer = NEVER;
    sftp_sink_on_timer(h->snk, h->now);
    ck_assert(take_sent(h, &ack, bitmap, &n));
    ck_assert_uint_eq(ack.got_them_all, 8);
    harness_free(h);
}
END_TEST

/* An in-order sink holds at most a window of packets, whatever arrives. */
START_TEST(in_order_sink_memory_is_bounded)
{
    struct scenario sc = default_scenario(1000 * 1000);
    struct harness *h;
    struct sftp_ack ack;
    uint8_t bitmap[SFTP_MAX_BITMAP];
    struct mallinfo2 before, after;
    unsigned n;
    uint32_t seq;

    sc.in_order = 1;
    sc.snk.window = 256;
    sc.to_source.cap = sc.to_sink.cap = 4096;
    h = harness_new(&sc);
    sftp_sink_start(h->snk, 0, h->now);
    feed_data(h, 2, 0, 1000);
    take_sent(h, &ack, bitmap, &n);
    before = mallinfo2();
    for (seq = 3; seq <= 900; seq++) {
        feed_data(h, seq, 0, 1000);
        take_sent(h, &ack, bitmap, &n);
    }
    after = mallinfo2();
    ck_assert_uint_le(after.uordblks - before.uordblks, 256 * 1000 + 64 * 1024);
    ck_assert_uint_eq(h->written_bytes, 0);
    ck_assert_uint_eq(sftp_sink_counters(h->snk)->bytes_received, 255 * 1000);
    /* The gap fills: the held packets go out in order, and the window moves. */
    feed_data(h, 1, 0, 1000);
    ck_assert_uint_eq(h->written_bytes, 256 * 1000);
    feed_data(h, 257, 0, 1000);
    ck_assert_uint_eq(h->written_bytes, 257 * 1000);
    harness_free(h);
}
END_TEST

/* A machine lent fewer packets than its window (the memory cap shared
 * among many transfers) sends no new packet past them, and a sink opens
 * no more than them; the transfer still completes, through loss, and when
 * the loan shrinks or grows midway. */
START_TEST(lent_windows)
{
    struct scenario sc = default_scenario(2 * 1000 * 1000 + 17);
    struct harness *h;
    int when = _i >> 2; /* 0: lent throughout; 1: lowered midway; 2: raised midway */

    sc.in_order = _i & 1;
    sc.store = (_i & 2) != 0;
    sc.to_sink = lossy_link(0.05);
    sc.to_source = lossy_link(0.05);
    sc.seed = 77 + (uint64_t)_i;
    if (when != 1) {
        sc.src_lent = 4;
        sc.snk_lent = 5;
    }
    if (when != 0) {
        sc.relend_at = START_TIME + 100 * MS;
        sc.relend_src = when == 1 ? 4 : 64;
        sc.relend_snk = when == 1 ? 5 : 64;
    }
    h = run(&sc);
    check_success(h);
    ck_assert_uint_eq(h->src_lent, when == 2 ? 64 : 4); /* the change came before the end */
    harness_free(h);
}
END_TEST

/* The source believes no ACK that names a packet it never sent. */
START_TEST(source_refuses_bogus_acks)
{
    struct scenario sc = default_scenario(100 * 1000);
    struct harness *h = harness_new(&sc);
    uint8_t body[SFTP_MAX_ACK], far[4] = {0, 0, 0, 0x80};
    struct sftp_ack a = {0};
    size_t len;
    unsigned n;
    struct dgram *d;

    source_event_begin(h);
    sftp_source_start(h->src, h->now);
    source_event_end(h);
    ck_assert_uint_eq(h->arrivals.len, 8); /* the first burst: seqs 1 .. 8 */
    while (h->arrivals.len > 0)
        dgram_free(h, (struct dgram *)arrivals_pop(&h->arrivals));
    source_event_begin(h);
    a.got_them_all = 9;
    a.window_end = 9 + 64;
    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &len), PKT_OK);
    sftp_source_receive(h->src, PKT_SFTP_ACK, 1, 1, 0, body, len, h->now);
    a = (struct sftp_ack){.window_end = 64, .bitmap = far, .bitmap_len = 4}; /* seq 33 */
    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &len), PKT_OK);
    sftp_source_receive(h->src, PKT_SFTP_ACK, 2, 1, 0, body, len, h->now);
    sftp_source_receive(h->src, PKT_SFTP_ACK, 3, 1, 0, body, 5, h->now);
    sftp_source_receive(h->src, PKT_SFTP_ABORT, 0, 1, 0, (const uint8_t[]){0, 0, 0, 1}, 4, h->now);
    sftp_source_receive(h->src, PKT_SFTP_START, 0, 1, 0, (const uint8_t[]){0, 0, 0, 1, 0, 0, 0, 1},
                        8, h->now);
    sftp_source_receive(h->src, PKT_SFTP_DATA, 0, 1, 0, body, 8, h->now);
    source_event_end(h);
    ck_assert_int_eq(sftp_source_state(h->src), SFTP_RUNNING);
    ck_assert_uint_eq(sftp_source_bytes(h->src), 0);
    ck_assert_uint_eq(h->arrivals.len, 0);
    /* A true ACK of all eight moves it on, at its own packet size. */
    a = (struct sftp_ack){.got_them_all = 8, .window_end = 8 + 64, .delivered = 8000};
    d = dgram_new(h);
    ck_assert_int_eq(sftp_ack_encode(&a, d->body, h->body_room, &d->len), PKT_OK);
    d->to = TO_SOURCE;
    d->type = PKT_SFTP_ACK;
    d->seq = 4;
    d->ts = 1;
    d->ts_echo = 0;
    h->now += 2 * MS; /* so the pacer has something to release */
    deliver(h, d);
    ck_assert_uint_eq(sftp_source_bytes(h->src), 8000);
    ck_assert_uint_gt(h->arrivals.len, 0);
    /* An older ACK (seq 3 < 4) is stale even if it claimed more. */
    take_sent(h, &a, body, &n);
    a = (struct sftp_ack){.got_them_all = 9, .window_end = 9 + 64};
    ck_assert_int_eq(sftp_ack_encode(&a, body, sizeof(body), &len), PKT_OK);
    source_event_begin(h);
    sftp_source_receive(h->src, PKT_SFTP_ACK, 3, 1, 0, body, len, h->now);
    source_event_end(h);
    ck_assert_uint_eq(sftp_source_bytes(h->src), 8000);
    harness_free(h);
}
END_TEST

/* ---- quiet pipes and checksums ------------------------------------------- */

/* A reader with nothing for two minutes (a pg_dump that pauses): the sink
 * probes, the source answers, neither gives up, and the probes back off to
 * one per retry_max; then the stream ends as if nothing happened. */
START_TEST(source_waits_on_its_reader)
{
    struct scenario sc = default_scenario(200 * 1000 + 7);
    struct harness *h;

    sc.store = _i;
    sc.read_wait_at = 100 * 1000; /* mid-stream, after a window's worth */
    sc.wait_us = 120 * SEC;
    sc.time_limit = 200 * SEC;
    h = run(&sc);
    check_success(h);
    const struct sftp_counters *src = sftp_source_counters(h->src),
                               *snk = sftp_sink_counters(h->snk);
    ck_assert_uint_gt(src->probes_sent, 10);
    /* backed off: at most about one per retry_max (1 s) over the wait */
    ck_assert_uint_le(src->probes_sent, 120 + sc.src.retry_count + 10);
    ck_assert_uint_le(snk->acks_sent, src->probes_sent + h->npackets + 20);
    harness_free(h);
}
END_TEST

/* A writer with no room for two minutes (rcat big | less, and a coffee):
 * the sink holds at most a window, the source probes the closed window, and
 * the transfer completes when the writer takes bytes again. */
START_TEST(sink_waits_on_its_writer)
{
    struct scenario sc = default_scenario(500 * 1000 + 3);
    struct harness *h;

    sc.in_order = 1;
    sc.write_wait_at = (uint64_t)_i * 250 * 1000; /* at the start, or mid-stream */
    sc.wait_us = 120 * SEC;
    sc.time_limit = 200 * SEC;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_gt(sftp_source_counters(h->src)->probes_sent, 10);
    ck_assert_uint_le(sftp_source_counters(h->src)->probes_sent, 120 + sc.src.retry_count + 10);
    harness_free(h);
}
END_TEST

/* Many packets per read, write and receive batch (readv, writev, the
 * sink's batches) under loss, duplication and reordering, fetch and store:
 * every byte is still written once, at its place, and runs of packets were
 * written with one call. */
START_TEST(vectors_under_loss_and_reorder)
{
    struct scenario sc = default_scenario(1000 * 1000 + 333);
    struct harness *h;

    sc.vectors = 1;
    sc.in_order = 1;
    sc.to_sink = lossy_link(_i & 1 ? 0.1 : 0.0);
    sc.to_sink.jitter_us = 0; /* bursts arrive together: batches of many */
    sc.to_source = lossy_link(0.05);
    sc.store = _i & 2;
    sc.lends = 1;
    sc.seed = 500 + (uint64_t)_i;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_gt(h->writev_runs, 0);
    /* a batch's packets get one ACK: fewer than one per ack_point packets */
    ck_assert_uint_lt(sftp_sink_counters(h->snk)->acks_sent, h->npackets / sc.snk.ack_point);
    harness_free(h);
}
END_TEST

/* Reading many packets at once, the stream may end anywhere in the batch:
 * with a short packet mid-batch, with a full one, or exactly at its end. */
START_TEST(vectors_end_mid_batch)
{
    static const uint64_t ends[] = {0,         1,         999,           1000,      37 * 1000 + 5,
                                    37 * 1000, 64 * 1000, 64 * 1000 + 1, 65 * 1000, 200 * 1000 - 1};
    struct scenario sc = default_scenario(ends[_i]);

    sc.vectors = 1;
    sc.in_order = _i & 1;
    sc.seed = 600 + (uint64_t)_i;
    run_ok(&sc);
}
END_TEST

/* A writer with no room for a run: the run waits whole and is written
 * when it has room; nothing is lost or written twice. */
START_TEST(vectors_writer_waits)
{
    struct scenario sc = default_scenario(300 * 1000 + 3);
    struct harness *h;

    sc.vectors = 1;
    sc.in_order = 1;
    sc.to_sink.jitter_us = 0;
    sc.write_wait_at = (uint64_t)_i * 100 * 1000 + 500;
    sc.wait_us = 5 * SEC;
    sc.time_limit = 200 * SEC;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_gt(h->writev_runs, 0);
    harness_free(h);
}
END_TEST

/* The last bytes wait in the writer: the source is not done (nor the call
 * answered) before the sink says COMPLETE. */
START_TEST(source_done_only_when_sink_complete)
{
    struct scenario sc = default_scenario(10 * 1000);
    struct harness *h;

    sc.in_order = 1;
    sc.write_wait_at = 9 * 1000;
    sc.wait_us = 30 * SEC;
    h = run(&sc);
    check_success(h);
    ck_assert_uint_ge(h->done_at - START_TIME, 30 * SEC);
    harness_free(h);
}
END_TEST

/* Waiting on a sink that is gone: the unanswered probes fail the source. */
START_TEST(waiting_source_finds_sink_gone)
{
    struct scenario sc = default_scenario(500 * 1000);
    struct harness *h;

    sc.in_order = 1;
    sc.write_wait_at = 100 * 1000;
    sc.wait_us = NEVER;
    sc.to_source.dead_from = START_TIME + 2 * SEC;
    sc.time_limit = 300 * SEC;
    h = harness_new(&sc);
    source_event_begin(h);
    sftp_source_start(h->src, h->now);
    source_event_end(h);
    while (sftp_source_state(h->src) == SFTP_RUNNING && step(h))
        REQUIRE(h->now - START_TIME <= sc.time_limit);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_EDEAD);
    ck_assert_int_eq(sftp_source_failed_here(h->src), 1);
    /* within its retries of the last answer: retry_count probes, each at most retry_max apart */
    ck_assert_uint_le(h->now - sc.to_source.dead_from,
                      (uint64_t)(sc.src.retry_count + 2) * sc.src.retry_max_us);
    harness_free(h);
}
END_TEST

START_TEST(checksums_agree)
{
    struct scenario sc = default_scenario(64 * 1000 * (uint64_t)_i + 17 * (uint64_t)_i);

    sc.in_order = 1;
    sc.digests = 1;
    sc.to_sink = lossy_link(0.1);
    sc.seed = 7 + (uint64_t)_i;
    run_ok(&sc);
}
END_TEST

/* What was written is not what was read: the sink fails with
 * RPC2_EINTEGRITY instead of DONE, and tells the source. */
START_TEST(checksum_mismatch_fails_both_ends)
{
    struct scenario sc = default_scenario(100 * 1000 * (uint64_t)_i);
    struct harness *h;

    sc.in_order = 1;
    sc.digests = 1;
    sc.wrong_sum = 1;
    h = run(&sc);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_EINTEGRITY);
    ck_assert_int_eq(sftp_sink_failed_here(h->snk), 1);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_EINTEGRITY);
    harness_free(h);
}
END_TEST

/* A source that sends no checksum cannot prove its bytes: a sink that
 * checks refuses the stream rather than take "absent" for "agrees". */
START_TEST(missing_checksum_is_refused)
{
    struct scenario sc = default_scenario(100 * 1000 * (uint64_t)_i);
    struct harness *h;

    sc.in_order = 1;
    sc.digests = 2;
    h = run(&sc);
    ck_assert_int_eq(sftp_sink_state(h->snk), RPC2_EINTEGRITY);
    ck_assert_int_eq(sftp_source_state(h->src), RPC2_EINTEGRITY);
    harness_free(h);
}
END_TEST

static int random_count(void)
{
    const char *env = getenv("SFTP_TEST_RANDOM");

    return env != NULL ? atoi(env) : 24;
}

static Suite *machine_suite(void)
{
    Suite *s = suite_create("sftp_machine");
    TCase *tc = tcase_create("transfers");
    int nsizes = (int)(sizeof(sizes) / sizeof(sizes[0]));

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, sizes_fetch, 0, nsizes);
    tcase_add_loop_test(tc, sizes_store, 0, nsizes);
    tcase_add_loop_test(tc, sizes_in_order_writer, 0, nsizes);
    tcase_add_loop_test(tc, loss_10_percent, 0, 4);
    tcase_add_loop_test(tc, loss_30_percent, 0, 4);
    tcase_add_loop_test(tc, duplicate_floods, 0, 2);
    tcase_add_loop_test(tc, long_reordering, 0, 2);
    tcase_add_test(tc, small_ack_room_and_missing_buffers);
    tcase_add_test(tc, final_ack_lost);
    tcase_add_test(tc, store_with_starts_lost);
    tcase_add_test(tc, store_negotiates_down);
    tcase_add_loop_test(tc, sink_learns_packet_size, 0, 2);
    tcase_add_test(tc, source_aborts);
    tcase_add_loop_test(tc, sink_aborts, 0, 2);
    tcase_add_test(tc, sink_aborts_before_start);
    tcase_add_test(tc, reader_error_reaches_the_sink);
    tcase_add_loop_test(tc, writer_error_reaches_the_source, 0, 2);
    tcase_add_test(tc, peer_vanishes);
    tcase_add_test(tc, store_source_never_answers);
    tcase_add_test(tc, rate_ceiling_is_kept);
    tcase_add_test(tc, beyond_4_gib);
    suite_add_tcase(s, tc);
    tc = tcase_create("random");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, random_shapes, 0, random_count());
    suite_add_tcase(s, tc);
    tc = tcase_create("by_hand");
    tcase_add_test(tc, sink_refuses_what_does_not_fit);
    tcase_add_test(tc, empty_last_ends_a_stream);
    tcase_add_test(tc, sink_drops_beyond_its_window);
    tcase_add_test(tc, sink_ack_policy);
    tcase_add_test(tc, in_order_sink_memory_is_bounded);
    tcase_add_loop_test(tc, lent_windows, 0, 12);
    tcase_add_test(tc, source_refuses_bogus_acks);
    tcase_add_loop_test(tc, source_waits_on_its_reader, 0, 2);
    tcase_add_loop_test(tc, sink_waits_on_its_writer, 0, 2);
    tcase_add_test(tc, source_done_only_when_sink_complete);
    tcase_add_loop_test(tc, vectors_under_loss_and_reorder, 0, 4);
    tcase_add_loop_test(tc, vectors_end_mid_batch, 0, 10);
    tcase_add_loop_test(tc, vectors_writer_waits, 0, 3);
    tcase_add_test(tc, waiting_source_finds_sink_gone);
    tcase_add_loop_test(tc, checksums_agree, 0, 3);
    tcase_add_loop_test(tc, checksum_mismatch_fails_both_ends, 0, 2);
    tcase_add_loop_test(tc, missing_checksum_is_refused, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(machine_suite());
}
