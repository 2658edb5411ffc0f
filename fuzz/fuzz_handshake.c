/*
 * fuzz_handshake.c - exists because the bind exchange is the one part of
 * the server that anyone on the network reaches without having proved
 * anything: BIND_REQ (with or without a cookie, with a client hello that
 * is valid, damaged or made up), stray BIND_COOKIEs and UNBINDs from a few
 * addresses, in any order, at any time, must never crash the server, leak,
 * exceed the connection limit, or make it send a datagram a peer would
 * refuse (or, on a secure connection, one the client's session cannot
 * open).
 *
 * Input: one byte choosing the server's limits (fuzz_engine_limits), one
 * for its security (bits 0-1 min_security: none, auth, encrypt, none; bit
 * 2 no identity secrets at all), then a sequence of records, each
 *   u8 ctl   bits 0-1 peer; bits 2-3 kind (BIND_REQ, BIND_COOKIE, UNBIND,
 *            BIND_REQ carrying the cookie the server last gave this peer);
 *            bit 4 seal (the check, or the session of a secure connection);
 *            bit 5 advance the clock first (u16 milliseconds); bit 6
 *            dst_conn = the id the server gave this peer; bit 7 header
 *            fields from the input (flags, security, a u32 src_conn)
 *   u8 src_conn (or u32 with bit 7), u8 seq
 *   BIND_REQ:    u8 subsystem choice, u8 se_type, u8 cookie length and
 *                bytes (unless echoed), u8 identity length and bytes,
 *                u8 hello: 0 none; 1 a valid one at auth, 2 at encrypt
 *                (made with the identity's secret, if it has one); 3 raw:
 *                u16 length and bytes; more: a valid one (bit 0: level)
 *                with byte (hello / 2) flipped
 *   BIND_COOKIE: u8 cookie length and bytes
 * Lengths may exceed the protocol's bounds on purpose.
 */
#include <string.h>

#include <rpc2/se.h>

#include "fuzz_engine.h"
#include "fuzz_formats.h"
#include "sftp_type.h"

static uint8_t dgram[PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM];

static void h_null(rpc2_request *req, void *args, void *result, void *arg)
{
    engine_reply(req, 0, 0);
}

static const struct rpc2_proc procs[] = {
    {.proc = 1, .async_handler = h_null},
};

static uint32_t pick_subsystem(uint8_t choice)
{
    return choice < 0xc0 ? FZ_SUBSYS : choice == 0xff ? 0 : FZ_SUBSYS + choice;
}

static const uint8_t *input_opaque(struct fuzz_in *in, uint32_t *len)
{
    size_t got;
    const uint8_t *p = fin_bytes(in, fin_u8(in), &got);

    *len = (uint32_t)got;
    return p;
}

/* ---- client hellos -------------------------------------------------------- */

static size_t make_hello(struct fuzz_engine *fe, struct fuzz_in *in, struct fuzz_peer *p,
                         const struct pkt_bind_req *m, uint32_t src_conn, uint8_t *out, size_t cap)
{
    uint8_t choice = fin_u8(in);
    const uint8_t *raw;
    size_t len;

    if (choice == 0)
        return 0;
    if (choice == 3) {
        raw = fin_bytes(in, fin_u16(in) % (cap + 1), &len);
        memcpy(out, raw, len);
        return len;
    }
    len = fuzz_engine_hello(fe, p, (choice & 1) ? RPC2_SEC_AUTH : RPC2_SEC_ENCRYPT, m, src_conn,
                            out, cap);
    if (choice > 3 && len > 0)
        out[(choice / 2) % len] ^= 0x01;
    return len;
}

/* ---- datagrams ------------------------------------------------------------ */

static void write_bind_body(struct fuzz_engine *fe, struct pkt_writer *w, struct fuzz_in *in,
                            struct fuzz_peer *p, int echo, uint32_t src_conn)
{
    static uint8_t hello[PKT_MAX_HELLO];
    struct pkt_bind_req m = {.subsystem = pick_subsystem(fin_u8(in)),
                             .se_type = fin_u8(in) & 0x81u}; /* 0 none, 1 SFTP, others unknown */
    size_t hello_len;

    if (echo) {
        m.cookie = p->cookie;
        m.cookie_len = p->cookie_len;
    } else {
        m.cookie = input_opaque(in, &m.cookie_len);
    }
    m.identity = input_opaque(in, &m.identity_len);
    hello_len = make_hello(fe, in, p, &m, src_conn, hello, sizeof hello);
    /* the writer, not pkt_bind_req_encode: lengths past the bounds go too */
    pkt_put_u32(w, m.subsystem);
    pkt_put_u32(w, m.se_type);
    pkt_put_opaque(w, m.cookie, m.cookie_len);
    pkt_put_opaque(w, m.identity, m.identity_len);
    if (hello_len > 0)
        pkt_put_opaque(w, hello, (uint32_t)hello_len);
}

static uint8_t type_of(uint8_t kind)
{
    return kind == HS_COOKIE ? PKT_BIND_COOKIE : kind == HS_UNBIND ? PKT_UNBIND : PKT_BIND_REQ;
}

/* Builds one datagram from a record; returns its length. */
static size_t build(struct fuzz_engine *fe, struct fuzz_in *in, uint8_t ctl)
{
    uint8_t kind = ctl & HS_KIND;
    struct fuzz_peer *p = fuzz_engine_peer(fe, ctl & HS_PEER);
    struct pkt_hdr h = {.version = PKT_VERSION, .type = type_of(kind)};
    struct pkt_writer w;
    uint32_t cookie_len;
    const uint8_t *cookie;

    if (ctl & HS_RAW_HEADER) {
        h.flags = fin_u8(in);
        h.security = fin_u8(in) & 3;
        h.src_conn = fin_u32(in);
    } else {
        h.src_conn = fin_u8(in);
    }
    h.seq = fin_u8(in);
    h.dst_conn = (ctl & HS_LEARNED) ? p->conn_id : 0;
    h.ts = (uint32_t)fe->now;
    pkt_writer_init(&w, dgram + PKT_HDR_SIZE, PKT_MAX_BODY);
    if (kind == HS_BIND || kind == HS_ECHO) {
        write_bind_body(fe, &w, in, p, kind == HS_ECHO, h.src_conn);
    } else if (kind == HS_COOKIE) {
        cookie = input_opaque(in, &cookie_len);
        pkt_put_opaque(&w, cookie, cookie_len);
    }
    h.body_len = (uint32_t)(w.p - (dgram + PKT_HDR_SIZE));
    pkt_hdr_encode(&h, dgram);
    return PKT_HDR_SIZE + h.body_len;
}

static void run_record(struct fuzz_engine *fe, struct fuzz_in *in, const struct engine_config *cfg)
{
    uint8_t ctl = fin_u8(in);
    size_t len;

    if (ctl & HS_ADVANCE)
        fuzz_engine_advance(fe, (uint64_t)fin_u16(in) * 1000);
    len = build(fe, in, ctl);
    if (ctl & HS_SEAL)
        len = fuzz_engine_seal(fe, ctl & HS_PEER, dgram, len, sizeof dgram);
    fuzz_engine_receive(fe, ctl & HS_PEER, dgram, len);
    FUZZ_REQUIRE(engine_conn_count(fe->e) <= cfg->max_connections);
}

static void security_config(struct engine_config *cfg, uint8_t choice)
{
    static const enum rpc2_security levels[] = {RPC2_SEC_NONE, RPC2_SEC_AUTH, RPC2_SEC_ENCRYPT,
                                                RPC2_SEC_NONE};

    cfg->min_security = levels[choice & 3];
    cfg->secret_for = (choice & 4) ? NULL : fuzz_secret_for;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct engine_config cfg;
    struct fuzz_engine fe;
    struct fuzz_in in;
    uint8_t limits;

    fin_init(&in, data, size);
    limits = fin_u8(&in);
    fuzz_engine_config(&cfg);
    cfg.max_connections = 4;
    security_config(&cfg, fin_u8(&in));
    fuzz_engine_init(&fe, &cfg, NULL, NULL);
    fuzz_engine_limits(&fe, limits);
    FUZZ_REQUIRE(engine_export(fe.e, FZ_SUBSYS, procs, 1, NULL) == 0);
    FUZZ_REQUIRE(sftp_register(fe.e, NULL) == 0);
    while (!fin_empty(&in))
        run_record(&fe, &in, &cfg);
    fuzz_engine_advance(&fe, 1000000); /* let timers run once more */
    fuzz_engine_dispose(&fe);
    return 0;
}
