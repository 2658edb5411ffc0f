/*
 * fuzz_handshake.c - exists because the bind exchange is the one part of
 * the server that anyone on the network reaches without having proved
 * anything: BIND_REQ (with or without a cookie), stray BIND_COOKIEs and
 * UNBINDs from a few addresses, in any order, at any time, must never
 * crash the server, leak, exceed the connection limit, or make it send a
 * datagram a peer would refuse.
 *
 * Input: one byte choosing the server's limits (fuzz_engine_limits: cookie
 * threshold, connections per address ...), then a sequence of records, each
 *   u8 ctl   bits 0-1 peer; bits 2-3 kind (BIND_REQ, BIND_COOKIE, UNBIND,
 *            BIND_REQ carrying the cookie the server last gave this peer);
 *            bit 4 seal with a valid check; bit 5 advance the clock first
 *            (u16 milliseconds); bit 6 dst_conn = the id the server gave
 *            this peer; bit 7 header fields from the input (flags,
 *            security, a u32 src_conn) instead of plain ones
 *   u8 src_conn (or u32 with bit 7), u8 seq
 *   BIND_REQ:    u8 subsystem choice, u8 se_type, u8 cookie length and
 *                bytes (unless echoed), u8 identity length and bytes
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
    (void)args;
    (void)result;
    (void)arg;
    engine_reply(req, 0, 0);
}

static const struct rpc2_proc procs[] = {
    {.proc = 1, .async_handler = h_null},
};

static uint32_t pick_subsystem(uint8_t choice)
{
    return choice < 0xc0 ? FZ_SUBSYS : choice == 0xff ? 0 : FZ_SUBSYS + choice;
}

static void put_input_opaque(struct pkt_writer *w, struct fuzz_in *in)
{
    size_t got;
    const uint8_t *p = fin_bytes(in, fin_u8(in), &got);

    pkt_put_opaque(w, p, (uint32_t)got);
}

static void write_bind_body(struct pkt_writer *w, struct fuzz_in *in, const struct fuzz_peer *p,
                            int echo)
{
    pkt_put_u32(w, pick_subsystem(fin_u8(in)));
    pkt_put_u32(w, fin_u8(in) & 0x81u); /* 0 none, 1 SFTP, others unknown */
    if (echo)
        pkt_put_opaque(w, p->cookie, p->cookie_len);
    else
        put_input_opaque(w, in);
    put_input_opaque(w, in);
}

static uint8_t type_of(uint8_t kind)
{
    return kind == HS_COOKIE ? PKT_BIND_COOKIE : kind == HS_UNBIND ? PKT_UNBIND : PKT_BIND_REQ;
}

/* Builds one datagram from a record; returns its length. */
static size_t build(struct fuzz_engine *fe, struct fuzz_in *in, uint8_t ctl)
{
    uint8_t kind = ctl & HS_KIND;
    const struct fuzz_peer *p = fuzz_engine_peer(fe, ctl & HS_PEER);
    struct pkt_hdr h = {.version = PKT_VERSION, .type = type_of(kind)};
    struct pkt_writer w;

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
    if (kind == HS_BIND || kind == HS_ECHO)
        write_bind_body(&w, in, p, kind == HS_ECHO);
    else if (kind == HS_COOKIE)
        put_input_opaque(&w, in);
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
        len = fuzz_seal(dgram, len);
    fuzz_engine_receive(fe, ctl & HS_PEER, dgram, len);
    FUZZ_REQUIRE(engine_conn_count(fe->e) <= cfg->max_connections);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct engine_config cfg;
    struct fuzz_engine fe;
    struct fuzz_in in;

    fuzz_engine_config(&cfg);
    cfg.max_connections = 4;
    fuzz_engine_init(&fe, &cfg, NULL, NULL);
    FUZZ_REQUIRE(engine_export(fe.e, FZ_SUBSYS, procs, 1, NULL) == 0);
    FUZZ_REQUIRE(sftp_register(fe.e, NULL) == 0);
    fin_init(&in, data, size);
    fuzz_engine_limits(&fe, fin_u8(&in));
    while (!fin_empty(&in))
        run_record(&fe, &in, &cfg);
    fuzz_engine_advance(&fe, 1000000); /* let timers run once more */
    fuzz_engine_dispose(&fe);
    return 0;
}
