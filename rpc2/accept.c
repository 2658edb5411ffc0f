/*
 * accept.c - the server's answer to a BIND_REQ: refusals before any state
 * (unknown subsystem or side-effect type, a level below the minimum), the
 * stateless cookie rule, the connection limits, and the security handshake
 * that proves the client's identity and makes the session keys.
 *
 * Nothing a stranger sends can make it hold more than the limits in
 * conntable_limits: connections in all and per address, half-open ones
 * (past their budget a bind must bring a stateless cookie first). Nor spend
 * more than two BLAKE2b runs: a replayed hello is refused before anything
 * else is done for it, and proof1 is checked before a connection is made
 * or an X25519 run. It never answers a peer it has not heard from with
 * more bytes than the peer sent, nor with more answers than the limit per
 * source prefix allows (ratelimit.h).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "engine.h"

/* ---- binds -------------------------------------------------------------- */

/* An answer to a peer whose address is unproven may not be larger than
 * what it sent, or a forged source address would turn us into an amplifier. */
static int answer_fits(const struct pkt_hdr *req, size_t body_len)
{
    return body_len <= req->body_len;
}

/* A header answering a BIND_REQ, outside any connection: at security
 * "none", since there are no keys yet to seal it with. */
static struct pkt_hdr bind_answer(const struct pkt_hdr *req, uint8_t type, size_t body_len,
                                  uint64_t now)
{
    return (struct pkt_hdr){
        .version = PKT_VERSION,
        .type = type,
        .security = RPC2_SEC_NONE,
        .dst_conn = req->src_conn,
        .ts = (uint32_t)now ? (uint32_t)now : 1,
        .ts_echo = req->ts,
        .body_len = (uint32_t)body_len,
    };
}

/* proven: the peer showed it receives at its address (a valid cookie); an
 * answer to anyone else goes through the limit per source prefix. */
static void send_bind_err(struct engine *e, const struct rpc2_addr *to, const struct pkt_hdr *req,
                          int error, int proven, uint64_t now)
{
    uint8_t body[4];
    struct pkt_writer w;
    pkt_writer_init(&w, body, sizeof body);
    pkt_put_u32(&w, (uint32_t)error);
    e->stats.binds_refused++;
    if (!answer_fits(req, sizeof body) || (!proven && !engine_may_answer(e, to, 0, now)))
        return;
    struct pkt_hdr h = bind_answer(req, PKT_BIND_ERR, sizeof body, now);
    engine_send(e, to, &h, body);
}

/* "Send your BIND_REQ again with this": 16 bytes of body, where the smallest
 * BIND_REQ has 16 too, so it is never larger than what prompted it. Past the
 * limit of its prefix, one cookie in RATELIMIT_COOKIE_SLIP still goes: a
 * client whose prefix a forger floods must still get through. */
static void send_cookie(struct engine *e, const struct rpc2_addr *to, const struct pkt_hdr *req,
                        uint64_t now)
{
    uint8_t cookie[CONNTABLE_COOKIE_LEN], body[4 + CONNTABLE_COOKIE_LEN];
    struct pkt_writer w;
    if (!answer_fits(req, sizeof body) || !engine_may_answer(e, to, RATELIMIT_COOKIE_SLIP, now))
        return;
    conntable_cookie_make(&e->conns, to, req->src_conn, now, cookie);
    pkt_writer_init(&w, body, sizeof body);
    pkt_put_opaque(&w, cookie, sizeof cookie);
    struct pkt_hdr h = bind_answer(req, PKT_BIND_COOKIE, sizeof body, now);
    engine_send(e, to, &h, body);
    e->stats.cookies_sent++;
}

/* BIND_OK travels at level none: above it, its body carries the server's
 * half of the handshake, from which the client gets the keys. */
static int bind_ok_body(const rpc2_conn *c, uint8_t *body, size_t cap, size_t *len)
{
    const struct conn_sec *s = c->sec;
    return pkt_bind_ok_encode(0, s ? s->hello : NULL, s ? (uint32_t)s->hello_len : 0, body, cap,
                              len) == PKT_OK;
}

static void send_bind_ok(rpc2_conn *c, uint64_t now)
{
    uint8_t body[8 + PKT_MAX_HELLO];
    size_t len;
    if (bind_ok_body(c, body, sizeof body, &len))
        conn_send_clear(c, PKT_BIND_OK, body, len, now);
}

/*
 * A retransmitted BIND_REQ gets the BIND_OK it got the first time, echoing
 * its own ts (the client checks the echo), and changes nothing: it is not
 * protected, so anyone who knows the client's address and id could send
 * it, and it must neither keep a connection alive nor move what the
 * connection echoes. To a peer that has not yet spoken on the connection
 * (half-open: its address is unproven), it is an answer like a cookie,
 * limited per prefix.
 */
static void resend_bind_ok(struct engine *e, const struct rpc2_addr *from, const rpc2_conn *c,
                           const struct pkt_hdr *req, uint64_t now)
{
    uint8_t body[8 + PKT_MAX_HELLO];
    size_t len;
    if (!bind_ok_body(c, body, sizeof body, &len) ||
        (c->link.half_open && !engine_may_answer(e, from, 0, now)))
        return;
    struct pkt_hdr h = bind_answer(req, PKT_BIND_OK, len, now);
    h.src_conn = c->link.id;
    engine_send(e, from, &h, body);
}

/* Which refusal, if any, a bind gets before a connection is made for it. */
static int bind_refusal(struct engine *e, const struct pkt_hdr *h, const struct pkt_bind_req *m)
{
    if (h->security != RPC2_SEC_NONE)
        return RPC2_ESECURITY;
    void *type;
    if (m->se_type != 0 && !se_lookup(&e->se, m->se_type, &type))
        return RPC2_ENOSETYPE;
    if (!server_find_subsystem(e, m->subsystem))
        return RPC2_ENOSUBSYS;
    return 0;
}

/*
 * The cookie rule. A bind that brings a cookie must bring a valid one; one
 * without is taken as it is while fewer than cookie_threshold connections
 * are half-open (so the usual bind takes one round trip), and otherwise
 * answered with a cookie and forgotten: no state at all until the peer
 * proves it receives at its address. Returns 1 when the bind may go on;
 * *proven says whether it proved its address.
 */
static int cookie_passes(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                         const struct pkt_bind_req *m, int *proven, uint64_t now)
{
    *proven = 0;
    if (m->cookie_len == 0 && !conntable_cookie_required(&e->conns))
        return 1;
    if (m->cookie_len == 0) {
        e->stats.binds_cookie_missing++;
        send_cookie(e, from, h, now);
        return 0;
    }
    switch (conntable_cookie_check(&e->conns, from, h->src_conn, now, m->cookie, m->cookie_len)) {
    case COOKIE_OK:
        *proven = 1;
        return 1;
    case COOKIE_STALE:
        e->stats.binds_cookie_stale++;
        break;
    case COOKIE_BAD:
        e->stats.binds_cookie_bad++;
        break;
    }
    send_cookie(e, from, h, now);
    return 0;
}

/* RPC2_ELIMIT, counted by reason, when the table or the address is full. */
static int admit(struct engine *e, const struct rpc2_addr *from)
{
    switch (conntable_admit(&e->conns, from)) {
    case CONNTABLE_FULL:
        e->stats.binds_refused_limit++;
        return RPC2_ELIMIT;
    case CONNTABLE_ADDR_FULL:
        e->stats.binds_refused_address++;
        return RPC2_ELIMIT;
    case CONNTABLE_OK:
        break;
    }
    return 0;
}

/* ---- the security handshake ---------------------------------------------- */

/* Hellos seen, so a captured one replayed later opens nothing: kept for
 * longer than any bind can take. */
#define REPLAY_SLOTS 4096
#define REPLAY_LIFETIME_US (600ull * 1000 * 1000)

/* The level a bind asks for, and its parsed hello above none. */
static int requested_level(const struct pkt_bind_req *m, struct sec_hello *hello)
{
    if (!m->hello)
        return RPC2_SEC_NONE;
    if (sec_server_parse_hello(m->hello, m->hello_len, hello) != 0)
        return RPC2_EBADPACKET;
    /* the hello's identity is the one proved: the BIND_REQ's must be it */
    if (hello->identity_len != m->identity_len ||
        memcmp(hello->identity, m->identity, m->identity_len) != 0)
        return RPC2_EBADPACKET;
    return hello->level;
}

/* Which refusal, if any, the security of a bind gets before anything is made. */
static int security_refusal(struct engine *e, int level)
{
    if (level < 0)
        return level;
    if (level != RPC2_SEC_NONE && level != RPC2_SEC_AUTH && level != RPC2_SEC_ENCRYPT)
        return RPC2_ESECURITY;
    if (level < (int)e->cfg.min_security) {
        e->stats.binds_refused_auth++;
        return RPC2_ESECURITY;
    }
    return 0;
}

/* A hello accepted before (within the cache's lifetime), asked before the
 * cookie step and anything costly: a replay costs one SipHash. */
static int replayed(struct engine *e, const struct sec_hello *hello, uint64_t now)
{
    if (!sec_replay_seen(&e->replay, hello, now ? now : 1))
        return 0;
    e->stats.binds_refused_replay++;
    return 1;
}

/*
 * Proves the client knows its identity's secret: looks it up into *psk and
 * checks proof1 (two BLAKE2b runs), before a connection id or an X25519 is
 * spent on the bind. An unknown identity and a wrong secret get the same
 * answer, RPC2_EAUTH: which identities exist is nobody's business.
 */
static int prove_secret(struct engine *e, const struct pkt_hdr *h, const struct pkt_bind_req *m,
                        const struct sec_hello *hello, struct sec_psk *psk)
{
    int rc = e->cfg.secret_for ? e->cfg.secret_for(hello->identity, hello->identity_len, psk->key,
                                                   e->cfg.secret_arg)
                               : RPC2_ENOENT;
    struct sec_binding b = {.client_conn = h->src_conn, .subsystem = m->subsystem,
                            .se_type = m->se_type};
    if (rc == 0)
        rc = sec_server_check(hello, psk, &b, sec_suites_available());
    if (rc == RPC2_ENOENT || rc == RPC2_EACCES) {
        e->stats.binds_refused_auth++;
        log_msg(&e->log, RPC2_LOG_INFO, "bind from identity \"%s\" refused: %s",
                hello->identity, rc == RPC2_ENOENT ? "unknown identity" : "wrong secret");
        return RPC2_EAUTH;
    }
    return rc;
}

/*
 * The key exchange, for a hello whose secret is proven and which is no
 * replay: makes the session keys and the reply for BIND_OK, and only then
 * remembers the hello (in the same event as the check that it was new, so
 * no copy can slip in between; and a bind that failed can be retried).
 */
static int server_handshake(struct engine *e, rpc2_conn *c, const struct pkt_bind_req *m,
                            const struct sec_hello *hello, const struct sec_psk *psk, uint64_t now)
{
    struct conn_sec *s = calloc(1, sizeof *s);
    if (!s)
        return RPC2_ENOMEM;
    struct sec_binding b = {.client_conn = c->link.peer_id, .subsystem = m->subsystem,
                            .se_type = m->se_type};
    c->sec = s;
    s->level = hello->level;
    e->stats.key_exchanges++;
    int rc = sec_server_accept(hello, psk, &b, c->link.id, sec_suites_available(), &s->session,
                               s->hello, sizeof s->hello, &s->hello_len);
    if (rc == 0 && !e->replay.e)
        rc = sec_replay_init(&e->replay, REPLAY_SLOTS, REPLAY_LIFETIME_US);
    if (rc == 0)
        rc = sec_replay_check(&e->replay, hello, now ? now : 1);
    if (rc != 0)
        return rc;
    s->ready = 1;
    c->security = (uint8_t)hello->level;
    return 0;
}

/* Makes the connection a bind asked for; 0 or an rpc2 error (nothing kept). */
static int accept_bind(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                       const struct pkt_bind_req *m, const struct sec_hello *hello,
                       const struct sec_psk *psk, int proven, uint64_t now)
{
    rpc2_conn *c = conn_new(e, ROLE_SERVER, from, h->src_conn, now);
    int rc = c ? conn_set_se_type(c, m->se_type) : RPC2_ENOMEM;
    if (rc == 0 && c->se_ops && c->se_ops->conn_new)
        rc = c->se_ops->conn_new(c->se_state, c);
    if (rc == 0)
        rc = conntable_insert(&e->conns, &c->link,
                              CONNTABLE_BY_PEER | (proven ? 0 : CONNTABLE_HALF_OPEN));
    if (rc == 0 && hello)
        rc = server_handshake(e, c, m, hello, psk, now); /* needs our id: after the insert */
    if (rc != 0) {
        if (c)
            conn_free(c);
        return rc;
    }
    c->state = CS_BOUND;
    c->subsystem = m->subsystem;
    c->sub = server_find_subsystem(e, m->subsystem);
    memcpy(c->identity, m->identity, m->identity_len);
    c->identity[m->identity_len] = '\0';
    dupcache_count_in(&c->dup, &e->stats.saved_reply_bytes);
    e->stats.binds_accepted++;
    conn_heard(c, h, now, 0);
    conn_arm(c, now + e->cfg.idle_timeout_us);
    send_bind_ok(c, now);
    return 0;
}

void server_on_bind(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                    const uint8_t *body, uint64_t now)
{
    struct pkt_bind_req m;
    if (pkt_bind_req_decode(body, h->body_len, &m) != PKT_OK || h->src_conn == 0) {
        e->stats.rejected_length++;
        return;
    }
    /* A retransmitted bind finds the connection it made the first time. */
    struct conn_link *l = conntable_find_peer(&e->conns, from, h->src_conn);
    if (l) {
        resend_bind_ok(e, from, (const rpc2_conn *)l, h, now);
        return;
    }
    struct sec_hello hello;
    struct sec_psk psk;
    int level = requested_level(&m, &hello);
    if (level == RPC2_EBADPACKET) {
        e->stats.rejected_length++;
        return;
    }
    int proven = 0, rc = bind_refusal(e, h, &m);
    if (rc == 0)
        rc = security_refusal(e, level);
    if (rc == 0 && m.hello && replayed(e, &hello, now))
        rc = RPC2_ESECURITY;
    if (rc == 0 && !cookie_passes(e, from, h, &m, &proven, now))
        return;
    if (rc == 0)
        rc = admit(e, from);
    if (rc == 0 && m.hello)
        rc = prove_secret(e, h, &m, &hello, &psk);
    if (rc == 0)
        rc = accept_bind(e, from, h, &m, m.hello ? &hello : NULL, &psk, proven, now);
    sodium_memzero(&psk, sizeof psk);
    if (rc != 0)
        send_bind_err(e, from, h, rc, proven, now);
}
