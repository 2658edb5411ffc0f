/*
 * fuzz_sftp.c - exists because once a transfer runs, the SFTP machines
 * take DATA, ACK, START, ABORT and PROBE bodies from the peer and act on
 * them: index windows and bitmaps with the peer's numbers, write the
 * peer's bytes at positions computed from its sequence numbers, and time
 * retransmissions from its echoed timestamps. Hostile bodies and timer
 * ticks in any order must not crash, leak, write a byte twice or out of
 * order, or make a machine send a body its peer would refuse; and the
 * sftp/wire.h codecs (and the CALL/REPLY side-effect blocks) must re-encode
 * whatever they decode to the very same bytes.
 *
 * One machine per input, a source reading an in-memory stream or a sink
 * writing into a checking writer, on a link that records what it sends.
 *
 * Input: 10 bytes of set-up (see setup()), then operations, each a u8:
 *   low 3 bits 0-4: a packet (DATA, ACK, START, ABORT, PROBE), followed by
 *     u8 mods: bit 0 body built by the encoder from fields (else a raw
 *     u16 length and bytes); bit 1 seq from a per-type counter (else u16);
 *     bit 2 ts_echo = the ts of the machine's latest packet (else u32);
 *     bit 3 RETRANSMIT flag; bit 4 ts from the input (else the clock)
 *   5: advance the clock (u16 x 100 us), firing the timer when due
 *   6: jump to the timer's deadline and fire it
 *   7: bits 3-4 choose: abort here; make the reader/writer wait
 *      (SFTP_IO_WAIT); end the wait and resume; start the machine
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpc2/rpc2.h>

#include "fuzz_formats.h"
#include "fuzz_input.h"
#include "machine.h"
#include "seblock.h"
#include "wire.h"

#define NEVER UINT64_MAX
#define START_TIME 0xfff00000ull
#define WRITER_ROOM (256u << 10) /* bytes the sink may write; beyond: RPC2_EOVERFLOW */
#define RAW_MAX 4096u
#define FINAL_TICKS 32

struct harness {
    int is_sink, started, waiting_io;
    uint64_t now, timer;
    struct sftp_config cfg;
    size_t cap_mode;
    unsigned begins;
    struct sftp_source *src;
    struct sftp_sink *snk;
    /* source: the stream */
    uint64_t stream_size, read_pos, fail_at;
    /* sink: what was written */
    int in_order;
    uint64_t next_in_order;
    /* what the machine sent */
    uint32_t sent_ts, last_data_seq;
    uint32_t seq_counter[5];
};

static struct harness h;
static uint8_t link_buf[PKT_MAX_BODY];
static uint8_t body[PKT_MAX_BODY];
static uint8_t again[PKT_MAX_BODY];
static uint8_t written[WRITER_ROOM / 8];

/* ---- round trips of the codecs ------------------------------------------- */

static void require_same(const uint8_t *b, size_t len, size_t out_len)
{
    FUZZ_REQUIRE(out_len == len);
    FUZZ_REQUIRE(len == 0 || memcmp(again, b, len) == 0);
}

static void roundtrip_data(const uint8_t *b, size_t len)
{
    struct sftp_data d;
    struct namedsum_value named;
    uint8_t *p;

    if (sftp_data_decode(b, len, &d) != PKT_OK)
        return;
    p = sftp_data_encode_named(again, sizeof again, d.flags, d.tx, d.len,
                               namedsum_value_of(d.named_type, d.named, d.named_len, &named));
    FUZZ_REQUIRE(p != NULL);
    if (d.len)
        memcpy(p, d.bytes, d.len);
    if (d.sum)
        memcpy(p + d.len, d.sum, SFTP_SUM_SIZE);
    require_same(b, len, (size_t)(p - again) + d.len + (d.sum ? SFTP_SUM_SIZE : 0));
}

static void roundtrip_ack(const uint8_t *b, size_t len)
{
    struct sftp_ack a;
    size_t out_len;

    if (sftp_ack_decode(b, len, &a) != PKT_OK)
        return;
    FUZZ_REQUIRE(a.bitmap_len <= SFTP_MAX_BITMAP);
    FUZZ_REQUIRE(sftp_ack_highest(&a) >= a.got_them_all);
    FUZZ_REQUIRE(sftp_ack_encode(&a, again, sizeof again, &out_len) == PKT_OK);
    require_same(b, len, out_len);
}

static void roundtrip_small(uint8_t type, const uint8_t *b, size_t len)
{
    struct sftp_start st;
    int32_t error;
    uint32_t flags;
    size_t out_len;

    if (type == PKT_SFTP_START && sftp_start_decode(b, len, &st) == PKT_OK) {
        FUZZ_REQUIRE(sftp_start_encode(&st, again, sizeof again, &out_len) == PKT_OK);
        require_same(b, len, out_len);
    }
    if (type == PKT_SFTP_ABORT && sftp_abort_decode(b, len, &error) == PKT_OK) {
        FUZZ_REQUIRE(error < 0);
        FUZZ_REQUIRE(sftp_abort_encode(error, again, sizeof again, &out_len) == PKT_OK);
        require_same(b, len, out_len);
    }
    if (type == PKT_SFTP_PROBE && sftp_probe_decode(b, len, &flags) == PKT_OK) {
        FUZZ_REQUIRE(sftp_probe_encode(flags, again, sizeof again, &out_len) == PKT_OK);
        require_same(b, len, out_len);
    }
}

/* The side-effect blocks of CALL and REPLY, tried on every raw body. */
static void roundtrip_seblocks(const uint8_t *b, size_t len)
{
    struct seblock_call c;
    struct seblock_reply r;
    struct pkt_writer w;

    if (seblock_call_decode(b, len, &c) == PKT_OK) {
        pkt_writer_init(&w, again, sizeof again);
        seblock_call_encode(&c, &w);
        FUZZ_REQUIRE(!w.failed);
        require_same(b, len, (size_t)(w.p - again));
    }
    if (seblock_reply_decode(b, len, &r) == PKT_OK) {
        pkt_writer_init(&w, again, sizeof again);
        seblock_reply_encode(&r, &w);
        FUZZ_REQUIRE(!w.failed);
        require_same(b, len, (size_t)(w.p - again));
    }
}

static void roundtrip(uint8_t type, const uint8_t *b, size_t len)
{
    if (type == PKT_SFTP_DATA)
        roundtrip_data(b, len);
    else if (type == PKT_SFTP_ACK)
        roundtrip_ack(b, len);
    else
        roundtrip_small(type, b, len);
}

/* Whatever a machine sends, its peer's decoder takes. */
static int sent_body_ok(uint8_t type, const uint8_t *b, size_t len)
{
    struct sftp_data d;
    struct sftp_ack a;
    struct sftp_start st;
    int32_t error;
    uint32_t flags;

    switch (type) {
    case PKT_SFTP_DATA:
        return sftp_data_decode(b, len, &d) == PKT_OK && d.len <= h.cfg.packet_size;
    case PKT_SFTP_ACK:
        return sftp_ack_decode(b, len, &a) == PKT_OK;
    case PKT_SFTP_START:
        return sftp_start_decode(b, len, &st) == PKT_OK;
    case PKT_SFTP_ABORT:
        return sftp_abort_decode(b, len, &error) == PKT_OK;
    case PKT_SFTP_PROBE:
        return sftp_probe_decode(b, len, &flags) == PKT_OK;
    }
    return 0;
}

/* FUZZ_TRACE=1 in the environment prints every packet in and out: how to
 * see whether a seed gets where it is meant to. */
static void trace(const char *dir, uint8_t type, uint32_t seq, size_t len)
{
    static int on = -1;

    if (on < 0)
        on = getenv("FUZZ_TRACE") != NULL;
    if (on)
        fprintf(stderr, "%s type %u seq %u, %zu bytes at %llu\n", dir, type, seq, len,
                (unsigned long long)h.now);
}

/* ---- the link, the reader and the writer --------------------------------- */

/* Cap modes: a whole body, one packet's worth, too small for anything,
 * and every fourth buffer missing (memory short). */
static uint8_t *link_begin(void *arg, size_t *cap)
{
    static const size_t caps[] = {sizeof link_buf, 0, 12, sizeof link_buf};

    h.begins++;
    if (h.cap_mode == 3 && h.begins % 4 == 0)
        return NULL;
    *cap = h.cap_mode == 1 ? h.cfg.packet_size + SFTP_DATA_HEAD + SFTP_SUM_SIZE : caps[h.cap_mode];
    if (*cap > sizeof link_buf)
        *cap = sizeof link_buf;
    return link_buf;
}

static void link_commit(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                        size_t len)
{
    trace("->", type, seq, len);
    FUZZ_REQUIRE(len <= sizeof link_buf);
    FUZZ_REQUIRE(sent_body_ok(type, link_buf, len));
    FUZZ_REQUIRE((flags & ~PKT_FLAGS_KNOWN) == 0);
    h.sent_ts = (uint32_t)h.now ? (uint32_t)h.now : 1;
    if (type == PKT_SFTP_DATA) {
        FUZZ_REQUIRE(seq >= 1);
        h.last_data_seq = seq;
    }
}

static void link_set_timer(void *arg, uint64_t deadline)
{
    h.timer = deadline;
}

static void fill_pattern(uint8_t *buf, uint64_t pos, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((pos + i) * 2654435761u >> 13);
}

static ssize_t reader_read(void *arg, uint8_t *buf, size_t len)
{
    uint64_t left = h.stream_size - h.read_pos;

    if (h.waiting_io)
        return SFTP_IO_WAIT;
    if (h.read_pos >= h.fail_at)
        return RPC2_EIO;
    if (len > left)
        len = (size_t)left;
    fill_pattern(buf, h.read_pos, len);
    h.read_pos += len;
    return (ssize_t)len;
}

/* Both ends' checksums are all zeros here: a fuzzer can send the right one. */
static void reader_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    memset(out, 0, SFTP_SUM_BYTES);
}

static int writer_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    memset(out, 0, SFTP_SUM_BYTES);
    return 0;
}

/* Each byte once, at most WRITER_ROOM, in order when the writer says so. */
static int writer_write(void *arg, uint64_t pos, const uint8_t *data, size_t len)
{
    FUZZ_REQUIRE(!h.in_order || pos == h.next_in_order);
    FUZZ_REQUIRE(len == 0 || data != NULL);
    if (h.waiting_io)
        return SFTP_IO_WAIT;
    if (pos + len > h.fail_at)
        return RPC2_EIO;
    if (pos + len > WRITER_ROOM)
        return RPC2_EOVERFLOW;
    for (uint64_t i = pos; i < pos + len; i++) {
        FUZZ_REQUIRE(!(written[i / 8] & (1u << (i % 8))));
        written[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    h.next_in_order = pos + len;
    return 0;
}

static int writer_flush(void *arg)
{
    return h.waiting_io ? SFTP_IO_WAIT : 0;
}

/* ---- driving the machine --------------------------------------------------- */

static void start(int send_start)
{
    if (h.started)
        return;
    h.started = 1;
    if (h.snk)
        sftp_sink_start(h.snk, send_start, h.now);
    else
        sftp_source_start(h.src, h.now);
}

static void fire_timer(void)
{
    if (h.timer == NEVER || h.timer > h.now)
        return;
    h.timer = NEVER; /* the machine sets it again if it wants */
    if (h.snk)
        sftp_sink_on_timer(h.snk, h.now);
    else
        sftp_source_on_timer(h.src, h.now);
}

static void deliver(uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts, uint32_t ts_echo,
                    size_t len)
{
    trace("<-", type, seq, len);
    roundtrip(type, body, len);
    if (h.snk)
        sftp_sink_receive(h.snk, type, flags, seq, ts, ts_echo, body, len, h.now);
    else
        sftp_source_receive(h.src, type, seq, ts, ts_echo, body, len, h.now);
}

/* The wait of the reader or writer ends: the machine is told, as a driver
 * tells it when the file is ready again. */
static void end_wait(void)
{
    h.waiting_io = 0;
    if (h.snk && sftp_sink_waiting_output(h.snk))
        sftp_sink_resume(h.snk, h.now);
    if (h.src && sftp_source_waiting_input(h.src))
        sftp_source_resume(h.src, h.now);
}

static void local_op(uint8_t op)
{
    switch (op & FS_LOCAL) {
    case FS_LOCAL_ABORT:
        if (h.snk)
            sftp_sink_abort(h.snk, RPC2_ECANCELED, h.now);
        else
            sftp_source_abort(h.src, RPC2_ECANCELED, h.now);
        break;
    case FS_LOCAL_WAIT:
        h.waiting_io = 1;
        break;
    case FS_LOCAL_RESUME:
        end_wait();
        break;
    case FS_LOCAL_START:
        start(!!(op & FS_LOCAL_SEND_START));
        break;
    }
}

/* ---- set-up ---------------------------------------------------------------- */

/*
 * Set-up bytes: [0] bit 0 sink, bit 1 in-order writer, bit 2 start at once,
 * bit 3 the sink sends START, bits 4-5 cap mode, bit 6 fail at a position,
 * bit 7 no checksum functions; [1] packet size choice; [2] window;
 * [3] send_ahead and ack_point; [4] dup_threshold and retry_count;
 * [5-6] stream size; [7-8] failure position; [9] pacing rate choice.
 */
static void setup_config(struct fuzz_in *in, uint8_t b0)
{
    static const uint32_t sizes[] = {1, 7, 64, 256, 1000, 1400, 4096, SFTP_MAX_PACKET};
    static const uint64_t rates[] = {0, 0, 1000000, 100000000};
    uint8_t b;

    h.cfg.packet_size = sizes[fin_u8(in) & 7];
    h.cfg.window = (uint32_t)(fin_u8(in) % 64) + 1;
    b = fin_u8(in);
    h.cfg.send_ahead = (uint32_t)(b & 15) + 1;
    h.cfg.ack_point = (uint32_t)(b >> 4) + 1;
    b = fin_u8(in);
    h.cfg.dup_threshold = (uint32_t)(b & 7) + 1;
    h.cfg.retry_count = (uint32_t)(b >> 4) & 7;
    h.cfg.retry_initial_us = 100000;
    h.cfg.retry_min_us = 5000;
    h.cfg.retry_max_us = 1000000;
    h.stream_size = fin_u16(in) * (uint64_t)((b0 & FS_SINK) ? 1 : 7);
    h.fail_at = fin_u16(in);
    if (!(b0 & FS_FAIL))
        h.fail_at = NEVER;
    h.cfg.rate_max_bps = rates[fin_u8(in) & 3];
}

static void setup(struct fuzz_in *in)
{
    uint8_t b0 = fin_u8(in);
    struct sftp_link link = {
        .begin = link_begin, .commit = link_commit, .set_timer = link_set_timer};
    int sums = !(b0 & FS_NO_SUMS);

    memset(&h, 0, sizeof h);
    memset(written, 0, sizeof written);
    h.now = START_TIME;
    h.timer = NEVER;
    h.is_sink = !!(b0 & FS_SINK);
    h.in_order = !!(b0 & FS_IN_ORDER);
    h.cap_mode = (b0 & FS_CAP_MODE) >> 4;
    setup_config(in, b0);
    if (h.is_sink) {
        struct sftp_writer w = {.write = writer_write,
                                .flush = sums ? writer_flush : NULL,
                                .digest = sums ? writer_digest : NULL,
                                .in_order = h.in_order};
        h.snk = sftp_sink_new(&h.cfg, &link, &w);
    } else {
        struct sftp_reader r = {.read = reader_read, .digest = sums ? reader_digest : NULL};
        h.src = sftp_source_new(&h.cfg, &link, &r);
    }
    FUZZ_REQUIRE(h.src || h.snk);
    if (b0 & FS_START)
        start(!!(b0 & FS_SEND_START));
}

/* ---- packets ---------------------------------------------------------------- */

static size_t build_data(struct fuzz_in *in)
{
    uint8_t f = fin_u8(in);
    uint32_t flags = f & SFTP_DATA_FLAGS_KNOWN;
    uint32_t len = fin_u16(in) % (h.cfg.packet_size + 2);
    const uint8_t *sum;
    uint8_t *p;
    size_t got;

    p = sftp_data_encode(body, sizeof body, flags, 1, len);
    if (!p)
        return 0;
    fill_pattern(p, 0, len);
    if (flags & SFTP_DATA_SUM) {
        memset(p + len, 0, SFTP_SUM_SIZE); /* the sum our writer computes ... */
        if (f & 0x80) {                    /* ... or one from the input */
            sum = fin_bytes(in, SFTP_SUM_SIZE, &got);
            memcpy(p + len, sum, got);
        }
    }
    return (size_t)(p - body) + len + ((flags & SFTP_DATA_SUM) ? SFTP_SUM_SIZE : 0);
}

static size_t build_ack(struct fuzz_in *in)
{
    struct sftp_ack a;
    uint8_t below = fin_u8(in), bitmap[8];
    const uint8_t *bytes;
    size_t len, got;

    memset(&a, 0, sizeof a);
    a.got_them_all = h.last_data_seq > below ? h.last_data_seq - below : 0;
    a.window_end = a.got_them_all + fin_u16(in);
    a.delivered = fin_u32(in);
    a.flags = fin_u8(in) & 3;
    bytes = fin_bytes(in, fin_u8(in) % 9, &got);
    memcpy(bitmap, bytes, got);
    a.bitmap_len = (uint32_t)got;
    if (got)
        bitmap[got - 1] |= 0x80;
    a.bitmap = bitmap;
    return sftp_ack_encode(&a, body, sizeof body, &len) == PKT_OK ? len : 0;
}

static size_t build_small(uint8_t type, struct fuzz_in *in)
{
    struct sftp_start st;
    size_t len = 0;

    if (type == PKT_SFTP_START) {
        st.window = fin_u16(in);
        st.packet_size = fin_u16(in);
        (void)sftp_start_encode(&st, body, sizeof body, &len);
    } else if (type == PKT_SFTP_ABORT) {
        (void)sftp_abort_encode(-(int32_t)(fin_u8(in) % 40) - 1, body, sizeof body, &len);
    } else {
        (void)sftp_probe_encode(fin_u8(in) & 3, body, sizeof body, &len);
    }
    return len;
}

static size_t build_raw(struct fuzz_in *in)
{
    size_t len;
    const uint8_t *p = fin_bytes(in, fin_u16(in) % RAW_MAX, &len);

    memcpy(body, p, len);
    roundtrip_seblocks(body, len);
    return len;
}

static size_t build_body(uint8_t type, uint8_t mods, struct fuzz_in *in)
{
    if (!(mods & FS_MOD_ENCODE))
        return build_raw(in);
    if (type == PKT_SFTP_DATA)
        return build_data(in);
    if (type == PKT_SFTP_ACK)
        return build_ack(in);
    return build_small(type, in);
}

static void packet_op(uint8_t kind, struct fuzz_in *in)
{
    uint8_t type = (uint8_t)(PKT_SFTP_DATA + kind);
    uint8_t mods = fin_u8(in);
    uint32_t seq = (mods & FS_MOD_SEQ_COUNTER) ? ++h.seq_counter[kind] : fin_u16(in);
    uint32_t ts_echo = (mods & FS_MOD_ECHO) ? h.sent_ts : fin_u32(in);
    uint32_t ts = (mods & FS_MOD_TS) ? fin_u32(in) : (uint32_t)h.now;
    size_t len = build_body(type, mods, in);

    deliver(type, (mods & FS_MOD_RETRANSMIT) ? PKT_F_RETRANSMIT : 0, seq, ts, ts_echo, len);
}

static void run_op(struct fuzz_in *in)
{
    uint8_t op = fin_u8(in);

    switch (op & FS_OP) {
    case FS_OP_ADVANCE:
        h.now += (uint64_t)fin_u16(in) * 100;
        fire_timer();
        break;
    case FS_OP_TIMER:
        if (h.timer != NEVER && h.timer > h.now)
            h.now = h.timer;
        fire_timer();
        break;
    case FS_OP_LOCAL:
        local_op(op);
        break;
    default:
        packet_op(op & FS_OP, in);
    }
}

/* Reads what the machine says about itself, as sftp.c does after events. */
static void look(void)
{
    int state = h.snk ? sftp_sink_state(h.snk) : sftp_source_state(h.src);

    FUZZ_REQUIRE(state == SFTP_RUNNING || state == SFTP_DONE || state < 0);
    if (h.snk) {
        FUZZ_REQUIRE(sftp_sink_bytes(h.snk) <= WRITER_ROOM);
        (void)sftp_sink_counters(h.snk);
        (void)sftp_sink_failed_here(h.snk);
    } else {
        FUZZ_REQUIRE(sftp_source_bytes(h.src) <= h.read_pos);
        (void)sftp_source_counters(h.src);
        (void)sftp_source_srtt_us(h.src);
        (void)sftp_source_failed_here(h.src);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in;

    fin_init(&in, data, size);
    setup(&in);
    while (!fin_empty(&in)) {
        run_op(&in);
        look();
    }
    /* The retry schedule plays out: a stalled transfer must end by itself. */
    end_wait();
    for (int i = 0; i < FINAL_TICKS && h.timer != NEVER; i++) {
        h.now = h.timer > h.now ? h.timer : h.now;
        fire_timer();
        look();
    }
    sftp_sink_free(h.snk);
    sftp_source_free(h.src);
    return 0;
}
