/*
 * engine.c - the heart of the pure protocol machine: checks every datagram
 * before anything believes it, routes it to the client or server side,
 * answers what no connection can (foreign versions, unknown connections),
 * owns connection lifetime and timers, and writes packets into the outq.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "announce.h"
#include "engine.h"

struct engine *engine_new(const struct engine_config *cfg, const struct logger *log,
                          const struct engine_hooks *hooks, void *env, outq_flush_fn flush,
                          void *flush_arg)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cfg = *cfg;
    if (log)
        e->log = *log;
    e->hooks = hooks;
    e->env = env;
    if (conntable_init(&e->conns, cfg->max_connections, cfg->id_seed) != 0) {
        free(e);
        return NULL;
    }
    timerheap_init(&e->timers);
    outq_init(&e->out, PKT_MAX_DATAGRAM, flush, flush_arg);
    return e;
}

static void close_conn_entry(struct conn_link *l, void *arg)
{
    rpc2_conn *c = (rpc2_conn *)l;
    if (c->role == ROLE_CLIENT)
        engine_unbind(c, *(const uint64_t *)arg); /* ends its call or bind, tells the server */
    else
        conn_free(c); /* ends its running transfer: a waiting handler hears ECLOSED */
}

void engine_close_all(struct engine *e, uint64_t now)
{
    e->now = now;
    conntable_foreach(&e->conns, close_conn_entry, &now);
}

static void free_conn_entry(struct conn_link *l, void *arg)
{
    (void)arg;
    conn_free((rpc2_conn *)l);
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    /* Transfers freed with their connections let go of datagrams they lent;
     * at the end nothing more is sent, so those are dropped, not flushed. */
    outq_drop(&e->out);
    conntable_foreach(&e->conns, free_conn_entry, NULL);
    server_free_requests(e);
    server_free_subsystems(e);
    se_registry_dispose(&e->se);
    sec_replay_dispose(&e->replay);
    announce_free(e);
    conntable_dispose(&e->conns);
    timerheap_dispose(&e->timers);
    outq_dispose(&e->out);
    free(e);
}

unsigned engine_conn_count(const struct engine *e)
{
    return (unsigned)e->conns.count;
}

const struct rpc2_ctx_stats *engine_stats(const struct engine *e)
{
    return &e->stats;
}

struct engine *engine_of(const rpc2_conn *c)
{
    return c->engine;
}

uint64_t engine_next_deadline(const struct engine *e)
{
    return timerheap_next(&e->timers);
}

void engine_flush(struct engine *e)
{
    outq_flush(&e->out);
}

/* ---- timers and side-effect types --------------------------------------- */

void engine_timer_init(struct engine_timer *t, void (*fire)(struct engine_timer *, uint64_t))
{
    timer_init(&t->t);
    t->fire = fire;
}

void engine_timer_set(struct engine *e, struct engine_timer *t, uint64_t deadline)
{
    if (deadline == UINT64_MAX) {
        timerheap_cancel(&e->timers, &t->t);
        return;
    }
    /* On ENOMEM the timer stays where it was; its owner then relies on the
     * earlier deadline, and retries from there. */
    (void)timerheap_set(&e->timers, &t->t, deadline);
}

int engine_se_register(struct engine *e, uint32_t id, const struct se_ops *ops, void *type,
                       void (*free_type)(void *type))
{
    return se_register(&e->se, id, ops, type, free_type);
}

void *engine_se_type(const struct engine *e, uint32_t id)
{
    void *type = NULL;
    return se_lookup(&e->se, id, &type) ? type : NULL;
}

/* ---- connections -------------------------------------------------------- */

static void conn_timer_fired(struct engine_timer *t, uint64_t now)
{
    rpc2_conn *c = (rpc2_conn *)((char *)t - offsetof(rpc2_conn, timer));
    if (c->role == ROLE_CLIENT)
        client_timeout(c, now);
    else
        server_timeout(c, now);
}

int conn_set_se_type(rpc2_conn *c, uint32_t se_type)
{
    c->se_type = se_type;
    if (se_type == 0)
        return 0;
    c->se_ops = se_lookup(&c->engine->se, se_type, &c->se_state);
    return c->se_ops ? 0 : RPC2_ENOSETYPE;
}

int conn_is_client(const rpc2_conn *c)
{
    return c->role == ROLE_CLIENT;
}

const struct rpc2_addr *conn_peer(const rpc2_conn *c)
{
    return &c->link.peer;
}

void *conn_transfer(const rpc2_conn *c, uint32_t transfer)
{
    if (c->role == ROLE_CLIENT)
        return c->call && c->call->seq == transfer ? c->call->se_transfer : NULL;
    return c->running && c->running->seq == transfer ? c->running->se_transfer : NULL;
}

rpc2_conn *conn_new(struct engine *e, enum conn_role role, const struct rpc2_addr *peer,
                    uint32_t peer_id, uint64_t now)
{
    rpc2_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->engine = e;
    c->role = role;
    c->link.peer = *peer;
    c->link.peer_id = peer_id;
    c->last_heard = now;
    engine_timer_init(&c->timer, conn_timer_fired);
    dupcache_init(&c->dup);
    rtt_init(&c->rtt, e->cfg.retry_initial_us, e->cfg.retry_min_us, e->cfg.retry_max_us);
    return c;
}

void conn_sec_free(struct conn_sec *s)
{
    if (!s)
        return;
    if (s->hs) {
        sec_hs_wipe(s->hs);
        free(s->hs);
    }
    sec_session_wipe(&s->session);
    sodium_memzero(s, sizeof *s);
    free(s);
}

void conn_free(rpc2_conn *c)
{
    struct engine *e = c->engine;
    if (c->link.id)
        conntable_remove(&e->conns, &c->link);
    timerheap_cancel(&e->timers, &c->timer.t);
    if (c->se_ops && c->se_ops->unbind)
        c->se_ops->unbind(c->se_state, c);
    client_dispose(c);
    server_dispose(c);
    dupcache_dispose(&c->dup);
    conn_sec_free(c->sec);
    free(c);
}

void conn_arm(rpc2_conn *c, uint64_t deadline)
{
    engine_timer_set(c->engine, &c->timer, deadline);
}

void conn_heard(rpc2_conn *c, const struct pkt_hdr *h, uint64_t now, int sample)
{
    c->last_heard = now;
    c->peer_ts = h->ts;
    c->peer_ts_at = now;
    if (sample && h->ts_echo != 0)
        rtt_sample(&c->rtt, rtt_ts_elapsed((uint32_t)now, h->ts_echo));
}

/* 0 means "none" on the wire; a clock reading that is 0 mod 2^32 goes out
 * as 1, a microsecond off. */
static uint32_t wire_ts(uint64_t t)
{
    return (uint32_t)t ? (uint32_t)t : 1;
}

/* Answers echo the timestamp of what prompted them; requests start fresh. */
static int is_answer(uint8_t type)
{
    return type == PKT_BIND_OK || type == PKT_REPLY || type == PKT_BUSY || type == PKT_UNBIND_ACK;
}

/* The echo is advanced by the time we held the peer's timestamp, so the
 * peer's sample measures the network, not how long a handler ran. */
static uint32_t echo_ts(const rpc2_conn *c, uint64_t now)
{
    if (c->peer_ts == 0)
        return 0;
    /* A caller's stale clock (before the packet arrived) holds for nothing,
     * rather than wrapping into an echo seconds old. */
    uint64_t held = now > c->peer_ts_at ? now - c->peer_ts_at : 0;
    return wire_ts(c->peer_ts + held);
}

/* ---- sending ------------------------------------------------------------ */

/* Room for a body in an outgoing datagram at this security level: what is
 * left after the header and the level's trailer. */
static size_t body_room(const struct engine *e, uint8_t security)
{
    return e->out.buf_size - PKT_HDR_SIZE - pkt_trailer_size(security);
}

/* The whole datagram's length once sealed at its level (the session's MAC
 * above none, the check at none), or 0: it must not leave. */
static size_t seal(struct engine *e, uint8_t *buf, size_t len, uint8_t security,
                   struct sec_session *s)
{
    size_t out;
    if (security == RPC2_SEC_NONE)
        return pkt_seal(buf, len);
    if (!s || sec_protect(s, buf, len, e->out.buf_size, &out) != 0)
        return 0;
    return out;
}

/*
 * Writes the header into the datagram outq_reserve handed out, whose body
 * is already in place, seals it with the trailer its security level
 * chooses (with the connection's session above none), and queues it.
 * Every packet leaves through here, so none leaves unsealed; the trailer is
 * computed in place, never over a copy.
 */
static size_t seal_datagram(struct engine *e, const struct pkt_hdr *h, uint8_t *buf,
                            struct sec_session *s)
{
    struct pkt_hdr sealed = *h;
    sealed.trailer_len = (uint16_t)pkt_trailer_size(h->security);
    pkt_hdr_encode(&sealed, buf);
    size_t len = seal(e, buf, PKT_HDR_SIZE + h->body_len, h->security, s);
    if (len == 0)
        return 0; /* no key for its level: nothing unsealed ever leaves */
    e->stats.packets_sent++;
    e->stats.bytes_sent += len;
    return len;
}

static void commit_packet(struct engine *e, const struct rpc2_addr *to, const struct pkt_hdr *h,
                          uint8_t *buf, struct sec_session *s)
{
    size_t len = seal_datagram(e, h, buf, s);
    if (len > 0)
        outq_commit(&e->out, to, len);
}

static void send_sealed(struct engine *e, const struct rpc2_addr *to, const struct pkt_hdr *h,
                        const uint8_t *body, struct sec_session *s)
{
    /* Callers bound bodies by PKT_MAX_BODY; this keeps a bug from writing
     * past the slot instead of failing one send. */
    if (h->body_len > body_room(e, h->security))
        return;
    uint8_t *buf = outq_reserve(&e->out);
    if (!buf)
        return; /* out of memory: as good as lost on the wire, and retried */
    if (h->body_len)
        memcpy(buf + PKT_HDR_SIZE, body, h->body_len);
    commit_packet(e, to, h, buf, s);
}

void engine_send(struct engine *e, const struct rpc2_addr *to, const struct pkt_hdr *h,
                 const uint8_t *body)
{
    send_sealed(e, to, h, body, NULL);
}

/* The session a connection's packets are sealed with, NULL at level none. */
static struct sec_session *session_of(const rpc2_conn *c)
{
    return c->security != RPC2_SEC_NONE && c->sec && c->sec->ready ? &c->sec->session : NULL;
}

static struct pkt_hdr conn_header(const rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq,
                                  uint32_t transfer, uint32_t ts_echo, size_t body_len,
                                  uint64_t now)
{
    return (struct pkt_hdr){
        .version = PKT_VERSION,
        .type = type,
        .flags = flags,
        .security = c->security,
        .dst_conn = c->link.peer_id,
        .src_conn = c->link.id,
        .seq = seq,
        .transfer = transfer,
        .ts = wire_ts(now),
        .ts_echo = ts_echo,
        .body_len = (uint32_t)body_len,
    };
}

void conn_send(rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq, const uint8_t *body,
               size_t body_len, uint64_t now)
{
    uint32_t echo = is_answer(type) ? echo_ts(c, now) : 0;
    struct pkt_hdr h = conn_header(c, type, flags, seq, 0, echo, body_len, now);
    send_sealed(c->engine, &c->link.peer, &h, body, session_of(c));
}

void conn_send_clear(rpc2_conn *c, uint8_t type, const uint8_t *body, size_t body_len, uint64_t now)
{
    struct pkt_hdr h = conn_header(c, type, 0, 0, 0, echo_ts(c, now), body_len, now);
    h.security = RPC2_SEC_NONE;
    engine_send(c->engine, &c->link.peer, &h, body);
}

uint8_t *conn_packet_begin(rpc2_conn *c, size_t *cap)
{
    uint8_t *buf = outq_reserve(&c->engine->out);
    if (!buf)
        return NULL;
    /* the commit seals the datagram: the trailer needs its room after the body */
    *cap = body_room(c->engine, c->security);
    return buf + PKT_HDR_SIZE;
}

void conn_packet_commit(rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq, uint32_t transfer,
                        uint32_t ts_echo, size_t body_len, uint64_t now)
{
    struct pkt_hdr h = conn_header(c, type, flags, seq, transfer, ts_echo, body_len, now);
    /* begin() handed out the datagram outq_reserve returns until committed */
    commit_packet(c->engine, &c->link.peer, &h, outq_reserve(&c->engine->out), session_of(c));
}

uint64_t conn_packet_lend(rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq,
                          uint32_t transfer, uint32_t ts_echo, uint8_t *body, size_t body_len,
                          uint64_t now)
{
    struct engine *e = c->engine;
    struct pkt_hdr h = conn_header(c, type, flags, seq, transfer, ts_echo, body_len, now);
    size_t cap, len;

    if (c->security != RPC2_SEC_NONE) {
        uint8_t *buf = conn_packet_begin(c, &cap);
        if (buf && body_len <= cap) {
            memcpy(buf, body, body_len);
            commit_packet(e, &c->link.peer, &h, buf - PKT_HDR_SIZE, session_of(c));
        }
        return 0;
    }
    if (body_len > body_room(e, RPC2_SEC_NONE))
        return 0; /* as send_sealed: a bug fails one send, writes nothing */
    len = seal_datagram(e, &h, body - PKT_HDR_SIZE, NULL);
    return len > 0 ? outq_lend(&e->out, &c->link.peer, body - PKT_HDR_SIZE, len) : 0;
}

void engine_unpin(struct engine *e, uint64_t pin)
{
    outq_unpin(&e->out, pin);
}

/* The protected connection an UNBIND_ACK answers, while it still exists:
 * the server answers an UNBIND before it frees the connection, so the ACK
 * can be sealed like any other packet of it, and the client believes it. */
static rpc2_conn *acked_conn(struct engine *e, const struct rpc2_addr *to, uint8_t type,
                             uint32_t dst_conn, uint32_t src_conn)
{
    struct conn_link *l = type == PKT_UNBIND_ACK ? conntable_find(&e->conns, src_conn) : NULL;
    rpc2_conn *c = (rpc2_conn *)l;
    if (!c || c->link.peer_id != dst_conn || !addr_equal(&c->link.peer, to))
        return NULL;
    return session_of(c) ? c : NULL;
}

void engine_send_bare(struct engine *e, const struct rpc2_addr *to, uint8_t type, uint32_t dst_conn,
                      uint32_t src_conn, uint32_t seq, uint32_t transfer, uint32_t ts_echo,
                      uint64_t now)
{
    rpc2_conn *c = acked_conn(e, to, type, dst_conn, src_conn);
    struct pkt_hdr h = {
        .version = PKT_VERSION,
        .type = type,
        .dst_conn = dst_conn,
        .src_conn = src_conn,
        .seq = seq,
        .transfer = transfer,
        .ts = wire_ts(now),
        .ts_echo = ts_echo,
    };
    if (c) {
        h.security = c->security;
        send_sealed(e, to, &h, NULL, session_of(c));
        return;
    }
    engine_send(e, to, &h, NULL);
}

int engine_may_answer(struct engine *e, const struct rpc2_addr *to, unsigned slip, uint64_t now)
{
    if (!e->answers.keyed) /* from the table's keys: a seeded engine repeats its runs */
        ratelimit_key(&e->answers, e->conns.index_key);
    if (ratelimit_allow(&e->answers, to, now, slip))
        return 1;
    e->stats.answers_limited++;
    return 0;
}

/* ---- receiving ---------------------------------------------------------- */

static uint32_t raw_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void count_reject(struct engine *e, int reason)
{
    switch (reason) {
    case PKT_ESHORT:
        e->stats.rejected_short++;
        break;
    case PKT_EVERSION:
        e->stats.rejected_version++;
        break;
    case PKT_ETYPE:
        e->stats.rejected_type++;
        break;
    case PKT_ELENGTH:
        e->stats.rejected_length++;
        break;
    case PKT_EFLAGS:
        e->stats.rejected_flags++;
        break;
    case PKT_ECHECK:
        e->stats.rejected_check++;
        break;
    default:
        e->stats.rejected_other++;
    }
}

/*
 * A peer speaking another version learns which we speak, so it fails fast.
 * The first 16 bytes have the same layout in every version, so its
 * connection id can be read; the answer (a version-1 header and its check,
 * in every version) is never larger than what caused it, and a VERSION_ERR
 * is never answered.
 */
static void answer_version(struct engine *e, const struct rpc2_addr *from, const uint8_t *pkt,
                           size_t len, uint64_t now)
{
    if (len < PKT_HDR_SIZE + PKT_CHECK_SIZE || pkt[1] == PKT_VERSION_ERR ||
        !engine_may_answer(e, from, 0, now))
        return;
    engine_send_bare(e, from, PKT_VERSION_ERR, raw_u32(pkt + 12), raw_u32(pkt + 8), PKT_VERSION,
                     PKT_VERSION, 0, now);
}

static int is_client_bound(uint8_t type)
{
    switch (type) {
    case PKT_BIND_COOKIE:
    case PKT_BIND_OK:
    case PKT_BIND_ERR:
    case PKT_UNBIND_ACK:
    case PKT_REPLY:
    case PKT_BUSY:
    case PKT_UNKNOWN_CONN:
    case PKT_VERSION_ERR:
        return 1;
    }
    return 0;
}

/* A packet naming a connection we do not have: a client of a restarted or
 * expired server connection learns it at once instead of timing out. */
static void answer_unknown(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                           uint64_t now)
{
    e->stats.rejected_unknown_conn++;
    if (h->type == PKT_UNBIND) {
        if (engine_may_answer(e, from, 0, now))
            engine_send_bare(e, from, PKT_UNBIND_ACK, h->src_conn, h->dst_conn, h->seq, 0, h->ts,
                             now);
        return;
    }
    if (is_client_bound(h->type) || h->src_conn == 0 || !engine_may_answer(e, from, 0, now))
        return; /* never answer an answer: two confused peers must not loop */
    engine_send_bare(e, from, PKT_UNKNOWN_CONN, h->src_conn, h->dst_conn, h->seq, h->transfer,
                     h->ts, now);
}

/* A VERSION_ERR whose range (transfer = lowest, seq = highest) includes
 * our version says nothing we can act on: its sender met a datagram of ours
 * damaged in the version byte. It must not end a bind or a connection. */
static int version_err_spurious(const struct pkt_hdr *h)
{
    return h->type == PKT_VERSION_ERR && h->transfer <= PKT_VERSION && PKT_VERSION <= h->seq;
}

/* Side-effect packets belong to the type the connection was bound with. */
static void deliver_to_se(struct engine *e, rpc2_conn *c, const struct pkt_hdr *h,
                          const uint8_t *body, uint64_t now)
{
    if (!c->se_ops || !c->se_ops->receive || c->state != CS_BOUND) {
        e->stats.rejected_type++;
        return;
    }
    c->last_heard = now; /* a transfer in progress is a peer alive */
    c->se_ops->receive(c->se_state, c, h, body, now);
}

/*
 * Whether c believes a datagram at the level its header names. A protected
 * connection believes nothing unprotected (such a packet, an UNKNOWN_CONN
 * too, could come from anyone); a protected datagram is believed only once
 * the connection's session verifies it (and decrypts its body in place):
 * until then only its connection id was read.
 */
static int believe(struct engine *e, rpc2_conn *c, uint8_t *pkt, size_t len,
                   const struct pkt_hdr *h)
{
    if (h->security == RPC2_SEC_NONE && c->security == RPC2_SEC_NONE)
        return 1;
    /* The UNBIND_ACK of a server that no longer has the keys (our first
     * UNBIND freed its end; its sealed ACK was lost): it can only end what
     * this end has already ended. */
    if (h->security == RPC2_SEC_NONE && h->type == PKT_UNBIND_ACK && c->role == ROLE_CLIENT &&
        c->state == CS_CLOSING)
        return 1;
    if (h->security != c->security || !session_of(c)) {
        e->stats.rejected_auth++;
        return 0;
    }
    switch (sec_unprotect(&c->sec->session, pkt, len)) {
    case SEC_OK:
        c->sec->confirmed = 1;
        return 1;
    case SEC_EREPLAY:
        e->stats.rejected_replay++;
        return 0;
    default:
        e->stats.rejected_auth++;
        return 0;
    }
}

void engine_defer(struct engine *e, struct engine_deferred *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    d->next = e->deferred;
    e->deferred = d;
}

void engine_undefer(struct engine *e, struct engine_deferred *d)
{
    if (!d->queued)
        return;
    for (struct engine_deferred **p = &e->deferred; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    d->queued = 0;
    d->next = NULL;
}

static void run_deferred(struct engine *e, uint64_t now)
{
    struct engine_deferred *d;

    e->now = now;
    while ((d = e->deferred) != NULL) {
        e->deferred = d->next;
        d->next = NULL;
        d->queued = 0;
        d->run(d, now);
    }
}

void engine_batch_begin(struct engine *e)
{
    e->batching = 1;
}

void engine_batch_end(struct engine *e, uint64_t now)
{
    e->batching = 0;
    run_deferred(e, now);
}

static void receive_one(struct engine *e, const struct rpc2_addr *from, uint8_t *pkt, size_t len,
                        uint64_t now);

void engine_receive(struct engine *e, const struct rpc2_addr *from, uint8_t *pkt, size_t len,
                    uint64_t now)
{
    receive_one(e, from, pkt, len, now);
    if (!e->batching)
        run_deferred(e, now);
}

static void receive_one(struct engine *e, const struct rpc2_addr *from, uint8_t *pkt, size_t len,
                        uint64_t now)
{
    struct pkt_hdr h;
    int rc = pkt_hdr_decode(pkt, len, &h);
    e->now = now;
    e->stats.packets_received++;
    e->stats.bytes_received += len;
    if (rc != PKT_OK) {
        count_reject(e, rc);
        if (rc == PKT_EVERSION)
            answer_version(e, from, pkt, len, now);
        return;
    }
    const uint8_t *body = pkt + PKT_HDR_SIZE;
    if (h.type == PKT_ANNOUNCE) {
        announce_receive(e, from, &h, now);
        return;
    }
    if (h.type == PKT_BIND_REQ) {
        if (h.security != RPC2_SEC_NONE) /* binds travel at none: keys come with them */
            e->stats.rejected_auth++;
        else
            server_receive(e, from, NULL, &h, body, now);
        return;
    }
    struct conn_link *l = conntable_find(&e->conns, h.dst_conn);
    if (!l) {
        answer_unknown(e, from, &h, now);
        return;
    }
    rpc2_conn *c = (rpc2_conn *)l;
    /* At security level "none" the address is all that ties a packet to a
     * connection: a packet from elsewhere is not believed. */
    if (!addr_equal(&l->peer, from) || version_err_spurious(&h)) {
        e->stats.rejected_other++;
        return;
    }
    if (!believe(e, c, pkt, len, &h))
        return;
    if (h.type >= PKT_SFTP_DATA)
        deliver_to_se(e, c, &h, body, now);
    else if (c->role == ROLE_CLIENT && is_client_bound(h.type))
        client_receive(e, c, &h, body, now);
    else if (c->role == ROLE_SERVER && !is_client_bound(h.type))
        server_receive(e, from, c, &h, body, now);
    else
        e->stats.rejected_type++;
}

void engine_timeout(struct engine *e, uint64_t now)
{
    struct timer *t;
    e->now = now;
    while ((t = timerheap_pop_expired(&e->timers, now)) != NULL) {
        struct engine_timer *et =
            (struct engine_timer *)((char *)t - offsetof(struct engine_timer, t));
        et->fire(et, now);
    }
}
