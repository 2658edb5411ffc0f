/*
 * fuzz_engine.c - the socketless server driver of the fuzz targets (see
 * fuzz_engine.h).
 */
#include "fuzz_engine.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not 0, which means "no timestamp" on the wire, and close enough to 2^32
 * that the 32-bit ts wraps a few seconds into a run. */
#define START_TIME 0xfff00000ull

void fuzz_engine_config(struct engine_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->retry_initial_us = 100000;
    cfg->retry_min_us = 10000;
    cfg->retry_max_us = 1000000;
    cfg->dead_peer_us = 10000000;
    cfg->idle_timeout_us = 30000000;
    cfg->max_connections = 8; /* small, so the limit is reached too */
    cfg->max_saved_reply = PKT_MAX_DATAGRAM;
    cfg->id_seed = 42;
}

static void ipv4_peer(struct rpc2_addr *a, uint32_t host, uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

    memset(a, 0, sizeof *a);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(host);
    sin->sin_port = htons(port);
    a->len = sizeof *sin;
}

static void mapped_peer(struct rpc2_addr *a, uint32_t host, uint16_t port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

    memset(a, 0, sizeof *a);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    fuzz_store_u32(&sin6->sin6_addr.s6_addr[12], host);
    sin6->sin6_port = htons(port);
    a->len = sizeof *sin6;
}

static struct fuzz_peer *peer_of(struct fuzz_engine *fe, const struct rpc2_addr *a)
{
    for (int i = 0; i < FUZZ_PEERS; i++)
        if (addr_equal(&fe->peers[i].addr, a))
            return &fe->peers[i];
    return NULL;
}

void fuzz_psk(struct sec_psk *psk)
{
    memset(psk->key, 0x42, sizeof psk->key);
}

int fuzz_secret_for(const char *identity, size_t len, unsigned char secret[RPC2_SECRET_BYTES],
                    void *arg)
{
    struct sec_psk psk;

    if (len != strlen(FUZZ_IDENTITY) || memcmp(identity, FUZZ_IDENTITY, len) != 0)
        return RPC2_ENOENT;
    fuzz_psk(&psk);
    memcpy(secret, psk.key, RPC2_SECRET_BYTES);
    return 0;
}

size_t fuzz_engine_seal(struct fuzz_engine *fe, int peer, uint8_t *buf, size_t len, size_t cap)
{
    struct fuzz_peer *p = fuzz_engine_peer(fe, peer);
    size_t out;
    uint32_t dst;

    if (len < PKT_HDR_SIZE || !p->secure || buf[FUZZ_OFF_TYPE] == PKT_BIND_REQ)
        return fuzz_seal(buf, len);
    dst = fuzz_load_u32(buf + FUZZ_OFF_DST_CONN);
    if (dst != p->conn_id)
        return fuzz_seal(buf, len);
    /* sec_protect wants the header as it will go: level, lengths */
    buf[FUZZ_OFF_SECURITY] = (uint8_t)p->session.level;
    fuzz_store_u32(buf + FUZZ_OFF_BODY_LEN, (uint32_t)(len - PKT_HDR_SIZE));
    buf[FUZZ_OFF_TRAILER_LEN] = 0;
    buf[FUZZ_OFF_TRAILER_LEN + 1] = SEC_TRAILER_LEN;
    return sec_protect(&p->session, buf, len, cap, &out) == 0 ? out : len;
}

size_t fuzz_engine_hello(struct fuzz_engine *fe, struct fuzz_peer *p, int level,
                         const struct pkt_bind_req *m, uint32_t src_conn, uint8_t *out, size_t cap)
{
    struct sec_binding b = {
        .client_conn = src_conn, .subsystem = m->subsystem, .se_type = m->se_type};
    struct sec_rand rnd;
    struct sec_psk psk;
    size_t len;

    /* a fresh ephemeral key per hello (the server refuses one it has seen);
     * X25519 clamps the first byte, so the count goes further in */
    memset(&rnd, 0, sizeof rnd);
    fe->hellos++;
    memcpy(rnd.secret + 8, &fe->hellos, sizeof fe->hellos);
    memcpy(rnd.nonce, &fe->hellos, sizeof fe->hellos);
    fuzz_psk(&psk);
    if (sec_client_hello_det(&p->hs, (const char *)m->identity, m->identity_len, &psk, level,
                             SEC_SUITES_ALL, &b, out, cap, &len, &rnd) != 0)
        return 0;
    p->hs_pending = 1;
    p->hs_conn = src_conn;
    return len;
}

void fuzz_engine_limits(struct fuzz_engine *fe, uint8_t choice)
{
    static const size_t cookies[] = {SIZE_MAX, 0, 1, 2}, per_addr[] = {SIZE_MAX, 1, 2, 3};
    static const size_t running[] = {SIZE_MAX, 1, 2, 8};
    static const uint64_t saved[] = {UINT64_MAX, 0, 100, 65536};
    struct conntable_limits l = {
        .cookie_threshold = cookies[choice & 3],
        .max_per_addr = per_addr[(choice >> 2) & 3],
        .max_running = running[(choice >> 4) & 3],
        .max_saved_bytes = saved[(choice >> 6) & 3],
    };

    conntable_set_limits(&fe->e->conns, &l);
}

struct fuzz_peer *fuzz_engine_peer(struct fuzz_engine *fe, int i)
{
    return peer_of(fe, &fe->peers[i].addr);
}

/* FUZZ_TRACE=1 in the environment prints every datagram in and out: how
 * to see whether a seed gets where it is meant to. */
static void trace(const char *dir, int peer, const uint8_t *dgram, size_t len)
{
    static int on = -1;
    struct pkt_hdr h;
    int32_t error = 0;
    int rc;

    if (on < 0)
        on = getenv("FUZZ_TRACE") != NULL;
    if (!on)
        return;
    rc = pkt_hdr_decode(dgram, len, &h);
    if (rc == PKT_OK && h.type == PKT_BIND_ERR)
        (void)pkt_i32_decode(dgram + PKT_HDR_SIZE, h.body_len, &error);
    fprintf(
        stderr,
        "%s peer %d: %zu bytes, decode %d, type %u sec %u dst %u src %u seq %u transfer %u%s%s\n",
        dir, peer, len, rc, h.type, h.security, h.dst_conn, h.src_conn, h.seq, h.transfer,
        error ? " " : "", error ? rpc2_errname(error) : "");
}

/* A BIND_OK answering our hello completes the handshake, as the client's
 * sec_client_finish() would; any other BIND_OK is a plain connection. */
static void learn_bind_ok(struct fuzz_peer *p, const struct pkt_hdr *h, const uint8_t *body)
{
    const uint8_t *reply;
    uint32_t flags, reply_len;

    p->conn_id = h->src_conn;
    p->secure = 0;
    sec_session_wipe(&p->session); /* a session owns contexts: one at a time */
    if (!p->hs_pending || h->dst_conn != p->hs_conn ||
        pkt_bind_ok_decode(body, h->body_len, &flags, &reply, &reply_len) != PKT_OK || !reply)
        return;
    if (sec_client_finish(&p->hs, reply, reply_len, h->src_conn, &p->session) == 0) {
        p->secure = 1;
        p->hs_pending = 0;
    }
}

/* A datagram protected for our secure connection must open with its
 * session: the server's sealing and the client's opening agree. */
static void check_protected(struct fuzz_peer *p, const struct pkt_hdr *h, const uint8_t *dgram,
                            size_t len)
{
    static uint8_t copy[PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM];

    if (h->security == RPC2_SEC_NONE || !p->secure || h->dst_conn != p->hs_conn)
        return;
    memcpy(copy, dgram, len);
    FUZZ_REQUIRE(sec_unprotect(&p->session, copy, len) == SEC_OK);
}

/* What a client learns from the server's answers. */
static void learn(struct fuzz_peer *p, const uint8_t *dgram, size_t len)
{
    struct pkt_hdr h;
    const uint8_t *cookie;
    uint32_t cookie_len;

    if (pkt_hdr_decode(dgram, len, &h) != PKT_OK)
        return;
    check_protected(p, &h, dgram, len);
    if (h.type == PKT_BIND_OK && h.security == RPC2_SEC_NONE)
        learn_bind_ok(p, &h, dgram + PKT_HDR_SIZE);
    if (h.type == PKT_BIND_COOKIE &&
        pkt_cookie_decode(dgram + PKT_HDR_SIZE, h.body_len, &cookie, &cookie_len) == PKT_OK) {
        memcpy(p->cookie, cookie, cookie_len);
        p->cookie_len = cookie_len;
    }
}

/* Everything the server sends must be a datagram its peers accept, and
 * the answer to a foreign version no larger than what prompted it (a
 * spoofed source must not get amplification out of us). */
static void on_flush(struct outq *q, void *arg)
{
    struct fuzz_engine *fe = arg;

    for (unsigned i = 0; i < q->count; i++) {
        const struct outq_slot *s = &q->slots[i];
        struct fuzz_peer *p = peer_of(fe, &s->to);

        FUZZ_REQUIRE(s->len <= PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM);
        FUZZ_REQUIRE(fuzz_datagram_ok(s->data, s->len));
        FUZZ_REQUIRE(!fe->in_foreign || s->len <= fe->in_len);
        FUZZ_REQUIRE(p != NULL); /* answers go only where datagrams came from */
        trace("->", (int)(p - fe->peers), s->data, s->len);
        learn(p, s->data, s->len);
        fe->sent++;
    }
    q->count = 0;
}

void fuzz_engine_init(struct fuzz_engine *fe, const struct engine_config *cfg,
                      const struct engine_hooks *hooks, void *env)
{
    memset(fe, 0, sizeof *fe);
    fe->now = START_TIME;
    ipv4_peer(&fe->peers[0].addr, 0x0a000001u, 7000);
    ipv4_peer(&fe->peers[1].addr, 0x0a000002u, 7000);
    ipv4_peer(&fe->peers[2].addr, 0x0a000001u, 7001);
    mapped_peer(&fe->peers[3].addr, 0x0a000001u, 7000);
    fe->e = engine_new(cfg, NULL, hooks, env, on_flush, fe);
    if (!fe->e)
        abort();
}

/* The engine gets a copy it may change (a datagram is opened in place), so
 * a datagram delivered twice is the same datagram twice. */
void fuzz_engine_receive(struct fuzz_engine *fe, int peer, const uint8_t *dgram, size_t len)
{
    static uint8_t rx[PKT_MAX_DATAGRAM + FUZZ_SEAL_ROOM];

    FUZZ_REQUIRE(len <= sizeof rx);
    memcpy(rx, dgram, len);
    trace("<-", peer, rx, len);
    fe->in_len = len;
    fe->in_foreign = len > 0 && rx[0] != PKT_VERSION;
    engine_receive(fe->e, &fe->peers[peer].addr, rx, len, fe->now);
    engine_flush(fe->e);
    fe->in_foreign = 0;
}

void fuzz_engine_advance(struct fuzz_engine *fe, uint64_t us)
{
    fe->now += us;
    if (engine_next_deadline(fe->e) <= fe->now)
        engine_timeout(fe->e, fe->now);
    engine_flush(fe->e);
}

void fuzz_engine_dispose(struct fuzz_engine *fe)
{
    engine_close_all(fe->e, fe->now);
    engine_flush(fe->e);
    engine_free(fe->e);
    fe->e = NULL;
    for (int i = 0; i < FUZZ_PEERS; i++)
        sec_session_wipe(&fe->peers[i].session);
}
