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
    int rc;

    if (on < 0)
        on = getenv("FUZZ_TRACE") != NULL;
    if (!on)
        return;
    rc = pkt_hdr_decode(dgram, len, &h);
    fprintf(stderr, "%s peer %d: %zu bytes, decode %d, type %u dst %u src %u seq %u transfer %u\n",
            dir, peer, len, rc, h.type, h.dst_conn, h.src_conn, h.seq, h.transfer);
}

/* What a client learns from the server's answers. */
static void learn(struct fuzz_peer *p, const uint8_t *dgram, size_t len)
{
    struct pkt_hdr h;
    const uint8_t *cookie;
    uint32_t cookie_len;

    if (pkt_hdr_decode(dgram, len, &h) != PKT_OK)
        return;
    if (h.type == PKT_BIND_OK)
        p->conn_id = h.src_conn;
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
        FUZZ_REQUIRE(fuzz_datagram_ok(s->buf, s->len));
        FUZZ_REQUIRE(!fe->in_foreign || s->len <= fe->in_len);
        FUZZ_REQUIRE(p != NULL); /* answers go only where datagrams came from */
        trace("->", (int)(p - fe->peers), s->buf, s->len);
        learn(p, s->buf, s->len);
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
}
