/*
 * gen_corpus.c - writes the seed corpora of the fuzz targets: a handful of
 * small valid inputs each (a bind, a call, a fetch and a store that get
 * somewhere), built with the library's own encoders so they stay valid when
 * the wire format moves. A fuzzer starting from these reaches the deep
 * states in seconds instead of hours. `make fuzz-corpus` runs it:
 *
 *   gen_corpus DIR     writes DIR/fuzz_packet/..., DIR/fuzz_handshake/... etc.
 *
 * The record formats are described at the top of each target.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_formats.h"
#include "fuzz_input.h"
#include "packet.h"
#include "seblock.h"
#include "wire.h"

#define CLIENT_ID 0x1111u

struct seed {
    uint8_t buf[1 << 16];
    size_t len;
};

static const char *out_dir;

/* ---- bytes ---------------------------------------------------------------- */

static void put(struct seed *s, const void *p, size_t n)
{
    if (s->len + n > sizeof s->buf) {
        fprintf(stderr, "gen_corpus: seed too long\n");
        exit(1);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void put_u8(struct seed *s, uint8_t v)
{
    put(s, &v, 1);
}

static void put_u16(struct seed *s, uint16_t v)
{
    put_u8(s, (uint8_t)(v >> 8));
    put_u8(s, (uint8_t)v);
}

static void put_u32(struct seed *s, uint32_t v)
{
    put_u16(s, (uint16_t)(v >> 16));
    put_u16(s, (uint16_t)v);
}

static void write_seed(const char *target, const char *name, const struct seed *s)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- datagrams -------------------------------------------------------------- */

/* A datagram without trailer: header, then body_len bytes of body. */
struct dgram {
    uint8_t buf[PKT_MAX_DATAGRAM];
    size_t len;
};

static void dgram_make(struct dgram *d, uint8_t type, uint8_t flags, uint32_t seq,
                       const uint8_t *body, size_t body_len)
{
    struct pkt_hdr h = {.version = PKT_VERSION,
                        .type = type,
                        .flags = flags,
                        .src_conn = CLIENT_ID,
                        .seq = seq,
                        .ts = 1000,
                        .body_len = (uint32_t)body_len};

    pkt_hdr_encode(&h, d->buf);
    if (body_len)
        memcpy(d->buf + PKT_HDR_SIZE, body, body_len);
    d->len = PKT_HDR_SIZE + body_len;
}

static void bind_req(struct dgram *d, uint32_t se_type)
{
    static const uint8_t identity[] = "fuzzer";
    struct pkt_bind_req m = {
        .subsystem = FZ_SUBSYS, .se_type = se_type, .identity = identity, .identity_len = 6};
    uint8_t body[512];
    size_t len;

    if (pkt_bind_req_encode(&m, body, sizeof body, &len) != PKT_OK)
        exit(1);
    dgram_make(d, PKT_BIND_REQ, 0, 0, body, len);
}

/* A BIND_REQ for FUZZ_IDENTITY with a one-byte stand-in hello: fuzz_server
 * puts a genuine hello in its place (level auth when the byte is even,
 * encrypt when odd). */
static void secure_bind_req(struct dgram *d, uint32_t se_type, uint8_t level_bit)
{
    static const uint8_t identity[] = FUZZ_IDENTITY;
    uint8_t hello[1] = {level_bit};
    struct pkt_bind_req m = {.subsystem = FZ_SUBSYS,
                             .se_type = se_type,
                             .identity = identity,
                             .identity_len = sizeof identity - 1,
                             .hello = hello,
                             .hello_len = 1};
    uint8_t body[512];
    size_t len;

    if (pkt_bind_req_encode(&m, body, sizeof body, &len) != PKT_OK)
        exit(1);
    dgram_make(d, PKT_BIND_REQ, 0, 0, body, len);
}

/* A CALL body: proc, XDR args, and the side-effect block if given. */
static void call(struct dgram *d, uint32_t seq, uint32_t proc, const uint8_t *args,
                 uint32_t args_len, const struct seblock_call *se)
{
    static uint8_t body[PKT_MAX_BODY];
    struct pkt_writer w, inner;
    uint8_t *len_at;

    pkt_writer_init(&w, body, sizeof body);
    pkt_put_u32(&w, proc);
    pkt_put_opaque(&w, args, args_len);
    if (se) {
        len_at = pkt_put_space(&w, 4);
        pkt_writer_init(&inner, w.p, (size_t)(w.end - w.p));
        seblock_call_encode(se, &inner);
        pkt_put_space(&w, (uint32_t)(inner.p - w.p));
        pkt_writer_init(&inner, len_at, 4);
        pkt_put_u32(&inner, (uint32_t)(w.p - len_at - 4));
    }
    dgram_make(d, PKT_CALL, se ? PKT_F_SE : 0, seq, body, (size_t)(w.p - body));
}

/* fz_range: two XDR hypers, offset and quota. */
static uint32_t range_args(uint8_t *args, int64_t offset, int64_t quota)
{
    struct pkt_writer w;

    pkt_writer_init(&w, args, 16);
    pkt_put_u32(&w, (uint32_t)((uint64_t)offset >> 32));
    pkt_put_u32(&w, (uint32_t)offset);
    pkt_put_u32(&w, (uint32_t)((uint64_t)quota >> 32));
    pkt_put_u32(&w, (uint32_t)quota);
    return 16;
}

/* ---- fuzz_packet: a mode byte (bit 0 seal, bit 1 fix body_len), a datagram */

static void packet_seed(const char *name, uint8_t mode, const struct dgram *d)
{
    struct seed s = {.len = 0};

    put_u8(&s, mode);
    put(&s, d->buf, d->len);
    write_seed("fuzz_packet", name, &s);
}

static void packet_seeds(void)
{
    static struct dgram d;
    uint8_t args[16], body[8] = {0xff, 0xff, 0xff, 0xf7, 0, 0, 0, 0};
    struct seblock_call se = {.direction = 1, .quota = -1, .packet_size = 1400, .window = 8};

    bind_req(&d, 1);
    packet_seed("bind_req", 3, &d);
    call(&d, 1, P_FETCH, args, range_args(args, 0, -1), &se);
    packet_seed("call_se", 3, &d);
    dgram_make(&d, PKT_REPLY, 0, 1, body, sizeof body);
    packet_seed("reply", 3, &d);
    dgram_make(&d, PKT_BIND_ERR, 0, 0, body, 4);
    packet_seed("bind_err", 1, &d);
    dgram_make(&d, PKT_UNBIND, 0, 7, NULL, 0);
    packet_seed("unbind", 1, &d);
    d.buf[0] = 2; /* a foreign version */
    packet_seed("version2", 1, &d);
}

/* ---- fuzz_handshake --------------------------------------------------------- */

/* A BIND_REQ record: subsystem choice 0 (the exported one), se_type, no
 * cookie unless echoed, FUZZ_IDENTITY, and a hello choice (0: none). */
static void hs_bind(struct seed *s, uint8_t ctl, uint8_t src, uint8_t se_type, uint8_t hello)
{
    put_u8(s, ctl);
    if (ctl & HS_ADVANCE)
        put_u16(s, 5);
    put_u8(s, src);
    put_u8(s, 1);
    put_u8(s, 0);
    put_u8(s, se_type);
    if ((ctl & HS_KIND) != HS_ECHO)
        put_u8(s, 0);
    put_u8(s, (uint8_t)strlen(FUZZ_IDENTITY));
    put(s, FUZZ_IDENTITY, strlen(FUZZ_IDENTITY));
    put_u8(s, hello);
}

static void hs_unbind(struct seed *s, uint8_t peer, uint8_t src)
{
    put_u8(s, (uint8_t)(HS_UNBIND | HS_SEAL | HS_LEARNED | peer));
    put_u8(s, src);
    put_u8(s, 2);
}

/* The two set-up bytes: limits, then security (0: any level, secrets known). */
static void hs_setup(struct seed *s, uint8_t limits, uint8_t security)
{
    s->len = 0;
    put_u8(s, limits);
    put_u8(s, security);
}

static void handshake_seeds(void)
{
    struct seed s;

    hs_setup(&s, LIM_COOKIE_ALWAYS, 0);
    hs_bind(&s, HS_BIND | HS_SEAL, 1, 0, 0);
    hs_bind(&s, HS_ECHO | HS_SEAL, 1, 0, 0);
    hs_unbind(&s, 0, 1);
    write_seed("fuzz_handshake", "bind_unbind", &s);

    hs_setup(&s, LIM_COOKIE_AFTER_1 | LIM_PER_ADDR_1, 0);
    for (uint8_t peer = 0; peer < 4; peer++) {
        hs_bind(&s, (uint8_t)(HS_BIND | HS_SEAL | peer), (uint8_t)(10 + peer), 1, 0);
        hs_bind(&s, (uint8_t)(HS_ECHO | HS_SEAL | HS_ADVANCE | peer), (uint8_t)(10 + peer), 1, 0);
    }
    hs_unbind(&s, 1, 11);
    write_seed("fuzz_handshake", "four_peers", &s);

    hs_setup(&s, LIM_COOKIE_ALWAYS, 0);
    hs_bind(&s, HS_BIND | HS_SEAL, 3, 0, 0);
    put_u8(&s, HS_COOKIE | HS_SEAL | 2); /* a stray BIND_COOKIE from another port */
    put_u8(&s, 3);
    put_u8(&s, 0);
    put_u8(&s, 8);
    put(&s, "cookie!!", 8);
    hs_bind(&s, HS_ECHO | HS_SEAL | HS_ADVANCE, 3, 0, 0);
    hs_bind(&s, HS_ECHO | HS_SEAL, 3, 0, 0); /* a retransmitted bind */
    write_seed("fuzz_handshake", "stray_cookie", &s);

    hs_setup(&s, LIM_NONE, 1); /* auth at least */
    hs_bind(&s, HS_BIND | HS_SEAL, 5, 1, 1);
    hs_bind(&s, HS_BIND | HS_SEAL | 1, 6, 0, 2);
    hs_bind(&s, HS_BIND | HS_SEAL | 2, 7, 0, 0); /* refused: below the minimum */
    hs_unbind(&s, 0, 5);
    hs_unbind(&s, 1, 6);
    write_seed("fuzz_handshake", "secure", &s);

    hs_setup(&s, LIM_COOKIE_ALWAYS, 2); /* encrypt at least */
    hs_bind(&s, HS_BIND | HS_SEAL, 8, 0, 2);
    hs_bind(&s, HS_ECHO | HS_SEAL, 8, 0, 2);
    hs_bind(&s, HS_ECHO | HS_SEAL | 1, 9, 0, 0x41); /* a damaged hello */
    hs_unbind(&s, 0, 8);
    write_seed("fuzz_handshake", "secure_cookie", &s);
}

/* ---- fuzz_server ------------------------------------------------------------- */

static void srv_record(struct seed *s, uint8_t ctl, uint16_t advance_ms, const struct dgram *d)
{
    put_u8(s, (uint8_t)(ctl | (advance_ms ? SRV_ADVANCE : 0)));
    if (advance_ms)
        put_u16(s, advance_ms);
    put_u16(s, (uint16_t)d->len);
    put(s, d->buf, d->len);
}

/* A seed's start: the server's limits; then BIND_REQ, and again with the
 * cookie the server gave (if it gave one). */
static void srv_bind(struct seed *s, uint8_t limits, uint32_t se_type)
{
    static struct dgram d;

    put_u8(s, limits);
    bind_req(&d, se_type);
    srv_record(s, SRV_SEAL | SRV_FIXUP, 0, &d);
    srv_record(s, SRV_SEAL | SRV_FIXUP | SRV_ECHO_COOKIE, 1, &d);
}

static void srv_call(struct seed *s, uint32_t seq, uint32_t proc, const uint8_t *args,
                     uint32_t args_len, const struct seblock_call *se)
{
    static struct dgram d;

    call(&d, seq, proc, args, args_len, se);
    srv_record(s, SRV_SEAL | SRV_FIXUP, 0, &d);
}

static void srv_sftp(struct seed *s, uint8_t type, uint32_t seq, const uint8_t *body, size_t len,
                     uint16_t advance_ms)
{
    static struct dgram d;

    dgram_make(&d, type, 0, seq, body, len);
    srv_record(s, SRV_SEAL | SRV_FIXUP, advance_ms, &d);
}

static void srv_ack(struct seed *s, uint32_t seq, uint32_t got_them_all, uint32_t flags)
{
    struct sftp_ack a = {.got_them_all = got_them_all,
                         .window_end = got_them_all + 16,
                         .delivered = (uint64_t)got_them_all * 1400,
                         .flags = flags};
    uint8_t body[64];
    size_t len;

    if (sftp_ack_encode(&a, body, sizeof body, &len) != PKT_OK)
        exit(1);
    srv_sftp(s, PKT_SFTP_ACK, seq, body, len, 2);
}

static void server_seed_calls(void)
{
    struct seed s = {.len = 0};
    static struct dgram d;
    uint8_t blob[12] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};

    srv_bind(&s, LIM_COOKIE_ALWAYS | LIM_RUNNING_1 | LIM_SAVED_100, 0);
    srv_call(&s, 1, P_NULL, NULL, 0, NULL);
    srv_call(&s, 2, P_BLOB, blob, sizeof blob, NULL);
    srv_call(&s, 2, P_BLOB, blob, sizeof blob, NULL); /* a retransmission */
    srv_call(&s, 3, P_BLOCK, NULL, 0, NULL);
    srv_call(&s, 4, P_HOLD, NULL, 0, NULL);
    srv_call(&s, 4, P_HOLD, NULL, 0, NULL); /* BUSY */
    dgram_make(&d, PKT_UNBIND, 0, 5, NULL, 0);
    srv_record(&s, SRV_SEAL | SRV_FIXUP | SRV_ANSWER_HELD, 3, &d);
    write_seed("fuzz_server", "calls", &s);
}

static void server_seed_fetch(void)
{
    struct seed s = {.len = 0};
    uint8_t args[16];
    struct seblock_call se = {.direction = 1, .quota = -1, .packet_size = 1400, .window = 8};

    srv_bind(&s, LIM_NONE, 1);
    srv_call(&s, 1, P_FETCH, args, range_args(args, 0, -1), &se);
    for (uint32_t i = 1; i <= 12; i++)
        srv_ack(&s, i, i, i == 12 ? SFTP_ACK_COMPLETE : 0);
    write_seed("fuzz_server", "fetch_stream", &s);

    s.len = 0;
    se.flags = SEBLOCK_PIGGY_OK;
    se.piggyback_max = 60000;
    srv_bind(&s, LIM_COOKIE_AFTER_1, 1);
    srv_call(&s, 1, P_FETCH, args, range_args(args, 100, 1000), &se);
    write_seed("fuzz_server", "fetch_piggy", &s);
}

static void srv_data(struct seed *s, uint32_t seq, uint32_t flags, uint32_t len)
{
    static uint8_t body[2048];
    uint8_t *p = sftp_data_encode(body, sizeof body, flags, 1, len);

    if (!p)
        exit(1);
    memset(p, 'x', len);
    srv_sftp(s, PKT_SFTP_DATA, seq, body, (size_t)(p - body) + len, 0);
}

static void server_seed_store(void)
{
    struct seed s = {.len = 0};
    uint8_t args[16], data[300];
    struct seblock_call se = {.direction = 2,
                              .flags = SEBLOCK_PIGGY,
                              .quota = -1,
                              .packet_size = 1000,
                              .window = 8,
                              .data = data,
                              .data_len = sizeof data};

    memset(data, 'p', sizeof data);
    srv_bind(&s, LIM_NONE, 1);
    srv_call(&s, 1, P_STORE, args, range_args(args, 0, -1), &se);
    write_seed("fuzz_server", "store_piggy", &s);

    s.len = 0;
    se.flags = 0;
    se.data = NULL;
    se.data_len = 0;
    srv_bind(&s, LIM_PER_ADDR_1, 1);
    srv_call(&s, 1, P_STORE, args, range_args(args, 0, -1), &se);
    srv_data(&s, 1, 0, 1000);
    srv_data(&s, 3, SFTP_DATA_LAST, 10);
    srv_data(&s, 2, 0, 1000);
    write_seed("fuzz_server", "store_stream", &s);
}

/* Files by name (the store atomic) and pipes, streamed both ways. */
static void server_seed_files_and_pipes(void)
{
    static const uint32_t fetches[] = {P_FETCH_FILE, P_FETCH_PIPE};
    static const uint32_t stores[] = {P_STORE_FILE, P_STORE_PIPE};
    static const char *const names[] = {"file", "pipe"};
    struct seblock_call fetch = {.direction = 1, .quota = -1, .packet_size = 1400, .window = 8};
    struct seblock_call store = {.direction = 2, .quota = -1, .packet_size = 1000, .window = 8};
    uint8_t args[16];
    char name[32];

    for (int i = 0; i < 2; i++) {
        struct seed s = {.len = 0};
        srv_bind(&s, LIM_NONE, 1);
        srv_call(&s, 1, fetches[i], args, range_args(args, 0, -1), &fetch);
        for (uint32_t k = 1; k <= 12; k++)
            srv_ack(&s, k, k, k == 12 ? SFTP_ACK_COMPLETE : 0);
        snprintf(name, sizeof name, "fetch_%s", names[i]);
        write_seed("fuzz_server", name, &s);

        s.len = 0;
        srv_bind(&s, LIM_NONE, 1);
        srv_call(&s, 1, stores[i], args, range_args(args, 0, -1), &store);
        srv_data(&s, 1, 0, 1000);
        srv_data(&s, 2, 0, 1000);
        srv_data(&s, 3, SFTP_DATA_LAST, 10);
        snprintf(name, sizeof name, "store_%s", names[i]);
        write_seed("fuzz_server", name, &s);
    }
}

/* A secure bind (encrypt), then a protected call and a protected store:
 * every datagram after the bind sealed with the session. */
static void server_seed_secure(void)
{
    struct seed s = {.len = 0};
    static struct dgram d;
    struct seblock_call store = {.direction = 2, .quota = -1, .packet_size = 1000, .window = 8};
    uint8_t args[16];

    put_u8(&s, LIM_NONE);
    secure_bind_req(&d, 1, 1);
    srv_record(&s, SRV_SEAL | SRV_FIXUP, 0, &d);
    srv_call(&s, 1, P_NULL, NULL, 0, NULL);
    srv_call(&s, 2, P_STORE_FILE, args, range_args(args, 0, -1), &store);
    srv_data(&s, 1, 0, 1000);
    srv_data(&s, 2, SFTP_DATA_LAST, 10);
    dgram_make(&d, PKT_UNBIND, 0, 3, NULL, 0);
    srv_record(&s, SRV_SEAL | SRV_FIXUP, 1, &d);
    write_seed("fuzz_server", "secure_store", &s);
}

/* ---- fuzz_sftp: set-up bytes, then operations ------------------------------- */

/* Set-up: flags, packet size 1000 (choice 4), window 8, send_ahead 4 and
 * ack_point 2, dup_threshold 3 and retry_count 3, stream size, no failure,
 * no pacing. */
static void sftp_setup(struct seed *s, uint8_t flags, uint16_t size)
{
    put_u8(s, flags);
    put_u8(s, 4);
    put_u8(s, 7);
    put_u8(s, 0x13);
    put_u8(s, 0x32);
    put_u16(s, size);
    put_u16(s, 0);
    put_u8(s, 0);
}

/* A packet op with a body built by the encoder, seq from the counter (or
 * given) and the echo of the machine's latest ts. */
static void sftp_op(struct seed *s, uint8_t kind, int seq)
{
    put_u8(s, kind);
    put_u8(s, FS_MOD_ENCODE | FS_MOD_ECHO | (seq < 0 ? FS_MOD_SEQ_COUNTER : 0));
    if (seq >= 0)
        put_u16(s, (uint16_t)seq);
}

static void sftp_data(struct seed *s, int seq, uint8_t flags, uint16_t len)
{
    sftp_op(s, 0, seq);
    put_u8(s, flags);
    put_u16(s, len);
}

static void sftp_ack(struct seed *s, uint8_t below, uint8_t flags)
{
    sftp_op(s, 1, -1);
    put_u8(s, below);
    put_u16(s, 8);
    put_u32(s, 1000);
    put_u8(s, flags);
    put_u8(s, 0);
}

static void sftp_tick(struct seed *s, uint16_t hundred_us)
{
    put_u8(s, FS_OP_ADVANCE);
    put_u16(s, hundred_us);
}

static void sftp_sink_seeds(void)
{
    struct seed s = {.len = 0};

    sftp_setup(&s, FS_SINK | FS_START | FS_SEND_START, 0);
    sftp_data(&s, -1, 0, 1000);
    sftp_data(&s, -1, 0, 1000);
    sftp_tick(&s, 20);
    sftp_data(&s, -1, SFTP_DATA_LAST | SFTP_DATA_SUM, 500);
    sftp_tick(&s, 20);
    write_seed("fuzz_sftp", "sink_three", &s);

    s.len = 0;
    sftp_setup(&s, FS_SINK | FS_IN_ORDER | FS_START, 0);
    sftp_data(&s, 2, 0, 1000); /* early: held until 1 comes */
    sftp_data(&s, 1, 0, 1000);
    put_u8(&s, FS_OP_LOCAL | FS_LOCAL_WAIT);
    sftp_data(&s, 3, SFTP_DATA_LAST, 100);
    put_u8(&s, FS_OP_LOCAL | FS_LOCAL_RESUME);
    write_seed("fuzz_sftp", "sink_reorder_wait", &s);
}

static void sftp_source_seeds(void)
{
    struct seed s = {.len = 0};

    sftp_setup(&s, FS_START, 5000);
    sftp_ack(&s, 2, 0);
    sftp_tick(&s, 50);
    sftp_ack(&s, 0, 0);
    put_u8(&s, FS_OP_TIMER);
    sftp_ack(&s, 0, SFTP_ACK_COMPLETE);
    write_seed("fuzz_sftp", "source_acks", &s);

    s.len = 0;
    sftp_setup(&s, 0, 3000); /* waits for the sink's START */
    sftp_op(&s, 2, -1);
    put_u16(&s, 4);
    put_u16(&s, 800);
    put_u8(&s, FS_OP_LOCAL | FS_LOCAL_START);
    sftp_ack(&s, 1, 0);
    put_u8(&s, FS_OP_TIMER);
    put_u8(&s, FS_OP_TIMER);
    write_seed("fuzz_sftp", "source_start", &s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 1;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    packet_seeds();
    handshake_seeds();
    server_seed_calls();
    server_seed_fetch();
    server_seed_store();
    server_seed_files_and_pipes();
    server_seed_secure();
    sftp_sink_seeds();
    sftp_source_seeds();
    return 0;
}
