/*
 * client.c - the client side of the protocol: the bind handshake, one call
 * at a time per connection retransmitted on the RTT schedule until a reply,
 * a timeout, a cancel or the dead-peer silence ends it, and the unbind
 * notice that keeps going until the server acknowledges it.
 *
 * User callbacks run last in every path, after the connection's state is
 * consistent, because a callback may start the next call or unbind.
 */
#include <stdlib.h>
#include <string.h>
#include <rpc/rpc.h>

#include <sodium.h>

#include "engine.h"

/* How many times an UNBIND is sent before the connection is let go. */
#define UNBIND_SENDS 4

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void client_rearm(rpc2_conn *c)
{
    uint64_t dead = c->engine->cfg.dead_peer_us;
    uint64_t next = UINT64_MAX;
    if (c->state == CS_CLOSING)
        return; /* send_unbind keeps its own schedule */
    if (c->bind) {
        next = min_u64(c->bind->next_send, c->bind->started + dead);
    } else if (c->call) {
        struct client_call *call = c->call;
        uint64_t silence_from = c->last_heard > call->started ? c->last_heard : call->started;
        next = min_u64(call->next_send, silence_from + dead);
        if (call->deadline)
            next = min_u64(next, call->deadline);
    }
    conn_arm(c, next);
}

/* ---- bind --------------------------------------------------------------- */

static void send_bind(rpc2_conn *c, uint64_t now)
{
    struct client_bind *b = c->bind;
    if (b->sends > 0) {
        c->engine->stats.retransmissions++;
        rtt_backoff(&c->rtt);
    }
    conn_send(c, PKT_BIND_REQ, b->sends ? PKT_F_RETRANSMIT : 0, 0, b->body, b->body_len, now);
    b->sent_ts[b->sent_count++ % CLIENT_BIND_TS_KEPT] = (uint32_t)now ? (uint32_t)now : 1;
    b->sends++;
    b->next_send = now + rtt_timeout(&c->rtt);
    client_rearm(c);
}

static int encode_bind(rpc2_conn *c, const uint8_t *cookie, uint32_t cookie_len,
                       const char *identity)
{
    struct engine *e = c->engine;
    struct pkt_bind_req m = {
        .subsystem = c->subsystem,
        .se_type = c->se_type,
        .cookie = cookie,
        .cookie_len = cookie_len,
        .identity = (const uint8_t *)identity,
        .identity_len = (uint32_t)strlen(identity),
        .hello = c->sec ? c->sec->hello : NULL,
        .hello_len = c->sec ? (uint32_t)c->sec->hello_len : 0,
    };
    size_t len;
    if (pkt_bind_req_encode(&m, e->scratch, sizeof e->scratch, &len) != PKT_OK)
        return RPC2_EINVAL;
    uint8_t *body = malloc(len);
    if (!body)
        return RPC2_ENOMEM;
    memcpy(body, e->scratch, len);
    free(c->bind->body);
    c->bind->body = body;
    c->bind->body_len = len;
    return 0;
}

/*
 * The client's half of the handshake, sent with every BIND_REQ of this
 * bind (cookie step included): it names the level, offers the suites and
 * proves the secret. The secret itself is kept only in the handshake state,
 * wiped when the bind ends.
 */
static int start_handshake(rpc2_conn *c, const struct engine_bind_args *a, const char *identity)
{
    struct sec_psk psk;
    struct conn_sec *s = calloc(1, sizeof *s);
    if (!s || !(s->hs = calloc(1, sizeof *s->hs))) {
        free(s);
        return RPC2_ENOMEM;
    }
    c->sec = s;
    s->level = a->security;
    memcpy(psk.key, a->secret, sizeof psk.key);
    struct sec_binding b = {.client_conn = c->link.id, .subsystem = a->subsystem,
                            .se_type = a->se_type};
    int rc = sec_client_hello(s->hs, identity, strlen(identity), &psk, a->security,
                              SEC_SUITES_ALL, &b, s->hello, sizeof s->hello, &s->hello_len);
    sodium_memzero(&psk, sizeof psk);
    return rc;
}

static int bind_args_valid(const struct engine_bind_args *a, const char *identity)
{
    if (strlen(identity) > PKT_MAX_IDENTITY)
        return RPC2_EINVAL;
    if (a->security == RPC2_SEC_NONE)
        return 0;
    if (a->security != RPC2_SEC_AUTH && a->security != RPC2_SEC_ENCRYPT)
        return RPC2_ESECURITY;
    if (!a->secret || !sec_identity_ok((const uint8_t *)identity, strlen(identity)))
        return RPC2_EINVAL; /* a secret, and an identity to find it by */
    return 0;
}

int engine_bind(struct engine *e, const struct rpc2_addr *server, const struct engine_bind_args *a,
                rpc2_bind_cb cb, void *arg, uint64_t now)
{
    const char *identity = a->identity ? a->identity : "";
    int valid = bind_args_valid(a, identity);
    if (valid != 0 || !cb)
        return valid ? valid : RPC2_EINVAL;
    rpc2_conn *c = conn_new(e, ROLE_CLIENT, server, 0, now);
    if (!c)
        return RPC2_ENOMEM;
    c->state = CS_BINDING;
    c->subsystem = a->subsystem;
    c->security = RPC2_SEC_NONE; /* bind packets travel at none; keys come with BIND_OK */
    c->bind = calloc(1, sizeof *c->bind);
    int rc = c->bind ? conn_set_se_type(c, a->se_type) : RPC2_ENOMEM;
    if (rc == 0 && c->se_ops && c->se_ops->bind_before)
        rc = c->se_ops->bind_before(c->se_state, c);
    if (rc == 0)
        rc = conntable_insert(&e->conns, &c->link, 0);
    if (rc == 0 && a->security != RPC2_SEC_NONE)
        rc = start_handshake(c, a, identity); /* binds the id the table gave us */
    if (rc == 0)
        rc = encode_bind(c, NULL, 0, identity);
    if (rc != 0) {
        conn_free(c);
        return rc;
    }
    c->bind->cb = cb;
    c->bind->arg = arg;
    c->bind->started = now;
    send_bind(c, now);
    return 0;
}

static void bind_done(rpc2_conn *c, int status)
{
    struct client_bind *b = c->bind;
    rpc2_bind_cb cb = b->cb;
    void *arg = b->arg;
    c->bind = NULL;
    free(b->body);
    free(b);
    if (c->se_ops && c->se_ops->bind_after)
        c->se_ops->bind_after(c->se_state, c, status);
    if (status != 0) {
        conn_free(c);
        cb(status, NULL, arg);
        return;
    }
    c->state = CS_BOUND;
    client_rearm(c);
    cb(0, c, arg);
}

/*
 * A BIND_OK above level none must carry the server's half of the handshake,
 * proving it knows the secret and saw our exact hello. One that does not is
 * dropped, not believed and not fatal: a forgery must not end a bind that
 * the genuine answer can still complete (or be a downgrade to none).
 */
static int finish_handshake(rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body)
{
    uint32_t flags, hello_len;
    const uint8_t *hello;
    struct conn_sec *s = c->sec;
    if (!s)
        return 0;
    if (pkt_bind_ok_decode(body, h->body_len, &flags, &hello, &hello_len) != PKT_OK || !hello ||
        sec_client_finish(s->hs, hello, hello_len, h->src_conn, &s->session) != 0) {
        c->engine->stats.rejected_auth++;
        return -1;
    }
    free(s->hs); /* wiped by sec_client_finish */
    s->hs = NULL;
    s->ready = 1;
    c->security = (uint8_t)s->level;
    return 0;
}

/*
 * A bind answer travels at level none and proves nothing by itself: it
 * must echo the ts of one of our latest BIND_REQs (the server echoes it
 * exactly), so a forger off the path must guess 32 more bits than our id,
 * and an answer to a bind of long ago is not taken for one to ours.
 */
static int echoes_our_bind(const rpc2_conn *c, const struct pkt_hdr *h)
{
    const struct client_bind *b = c->bind;
    for (unsigned i = 0; i < CLIENT_BIND_TS_KEPT && h->ts_echo != 0; i++)
        if (b->sent_ts[i] == h->ts_echo)
            return 1;
    c->engine->stats.rejected_other++;
    return 0;
}

static void on_bind_answer(rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                           uint64_t now)
{
    if (c->state != CS_BINDING)
        return; /* a duplicate answer */
    /* VERSION_ERR echoes nothing: a foreign header's ts cannot be read. */
    if (h->type != PKT_VERSION_ERR && !echoes_our_bind(c, h))
        return;
    if (h->type == PKT_BIND_OK) {
        if (finish_handshake(c, h, body) != 0)
            return;
        conn_heard(c, h, now, 1);
        c->link.peer_id = h->src_conn;
        bind_done(c, 0);
        return;
    }
    if (h->type == PKT_VERSION_ERR) {
        bind_done(c, RPC2_EVERSION);
        return;
    }
    int32_t err;
    if (pkt_i32_decode(body, h->body_len, &err) != PKT_OK) {
        c->engine->stats.rejected_length++;
        return;
    }
    /* Only a refusal is believed: a "success" here would be a lie. */
    bind_done(c, err < 0 ? err : RPC2_EREFUSED);
}

/* The server wants proof that we receive at our address: repeat the bind
 * with its cookie, at once. The cookie is an answer, not a loss: it gives an
 * RTT sample, and the bind that carries it starts a fresh schedule (the
 * whole bind still ends at the dead-peer silence, so a server that keeps
 * sending cookies cannot keep us forever). */
static void on_cookie(rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body, uint64_t now)
{
    const uint8_t *cookie;
    uint32_t len;
    if (c->state != CS_BINDING || !echoes_our_bind(c, h))
        return;
    if (pkt_cookie_decode(body, h->body_len, &cookie, &len) != PKT_OK || len == 0) {
        c->engine->stats.rejected_length++;
        return;
    }
    struct pkt_bind_req old;
    char identity[PKT_MAX_IDENTITY + 1];
    if (pkt_bind_req_decode(c->bind->body, c->bind->body_len, &old) != PKT_OK)
        return;
    /* Our retransmissions crossing the first answer fetch the same cookie. */
    if (old.cookie_len == len && memcmp(old.cookie, cookie, len) == 0)
        return;
    memcpy(identity, old.identity, old.identity_len);
    identity[old.identity_len] = '\0';
    if (encode_bind(c, cookie, len, identity) != 0)
        return;
    conn_heard(c, h, now, 1);
    c->bind->sends = 0;
    send_bind(c, now);
}

/* ---- calls -------------------------------------------------------------- */

static void abandon_transfer(rpc2_conn *c, void *transfer, int status, uint64_t now)
{
    if (transfer && c->se_ops->call_abandon)
        c->se_ops->call_abandon(c->se_state, c, transfer, status, now);
}


static void send_call(rpc2_conn *c, uint64_t now)
{
    struct client_call *call = c->call;
    if (call->sends > 0) {
        c->engine->stats.retransmissions++;
        rtt_backoff(&c->rtt);
    }
    conn_send(c, PKT_CALL, (uint8_t)(call->flags | (call->sends ? PKT_F_RETRANSMIT : 0)),
              call->seq, call->body, call->body_len, now);
    call->sends++;
    call->next_send = now + rtt_timeout(&c->rtt);
    client_rearm(c);
}

/* Ends the call in flight. r is its reply, NULL when it ended otherwise;
 * the side-effect type finishes its transfer first and may turn a success
 * into its own failure. */
static void finish_call(rpc2_conn *c, int status, const struct pkt_reply *r, uint64_t now)
{
    struct client_call *call = c->call;
    c->call = NULL;
    if (call->se_transfer && r && c->se_ops->call_after)
        c->se_ops->call_after(c->se_state, c, call->se_transfer, &status, r->se, r->se_len, now);
    else if (!r)
        abandon_transfer(c, call->se_transfer, status, now);
    c->engine->stats.calls_completed++;
    client_rearm(c);
    rpc2_call_cb cb = call->cb;
    void *result = call->result, *arg = call->arg;
    free(call->body);
    free(call);
    cb(status, result, arg);
}

static void break_conn(rpc2_conn *c, int error, uint64_t now)
{
    c->state = CS_BROKEN;
    c->broken_error = error;
    if (c->call)
        finish_call(c, error, NULL, now);
    else
        client_rearm(c);
}

/* Writes an opaque whose bytes a callback produces in place: the length
 * word is reserved first and filled in afterwards. */
static uint8_t *begin_opaque(struct pkt_writer *w, struct pkt_writer *inner)
{
    uint8_t *len_at = pkt_put_space(w, 4);
    pkt_writer_init(inner, w->p, w->failed ? 0 : (size_t)(w->end - w->p));
    return len_at;
}

static void end_opaque(struct pkt_writer *w, uint8_t *len_at, const struct pkt_writer *inner)
{
    uint32_t len = (uint32_t)(inner->p - w->p);
    if (inner->failed || w->failed) {
        w->failed = 1;
        return;
    }
    pkt_put_space(w, len); /* the bytes are in place; this pads and advances */
    struct pkt_writer lw;
    pkt_writer_init(&lw, len_at, 4);
    pkt_put_u32(&lw, len);
}

static int encode_args(struct pkt_writer *w, const struct engine_call_args *a)
{
    struct pkt_writer inner;
    uint8_t *len_at = begin_opaque(w, &inner);
    if (a->encode_args && !w->failed) {
        XDR x;
        xdrmem_create(&x, (char *)inner.p, (u_int)(inner.end - inner.p), XDR_ENCODE);
        int ok = a->encode_args(&x, (void *)a->args);
        inner.p += xdr_getpos(&x);
        xdr_destroy(&x);
        if (!ok)
            return xdr_sizeof(a->encode_args, (void *)a->args) > (unsigned long)(inner.end - w->p)
                       ? RPC2_ETOOBIG
                       : RPC2_EENCODE;
    }
    end_opaque(w, len_at, &inner);
    return w->failed ? RPC2_ETOOBIG : 0;
}

/* Encodes proc, the XDR arguments and the side-effect block (whose state
 * the type hands back in *transfer) into the engine's scratch space. */
static int encode_call(rpc2_conn *c, const struct engine_call_args *a, uint32_t seq,
                       void **transfer, size_t *len, uint64_t now)
{
    struct engine *e = c->engine;
    struct pkt_writer w;
    pkt_writer_init(&w, e->scratch, PKT_MAX_BODY);
    pkt_put_u32(&w, a->proc);
    int rc = encode_args(&w, a);
    if (rc != 0 || !a->se) {
        *len = (size_t)(w.p - e->scratch);
        return rc;
    }
    struct pkt_writer inner;
    uint8_t *len_at = begin_opaque(&w, &inner);
    rc = c->se_ops->call_before(c->se_state, c, a->se, seq, &inner, transfer, now);
    if (rc != 0)
        return rc;
    end_opaque(&w, len_at, &inner);
    *len = (size_t)(w.p - e->scratch);
    return w.failed ? RPC2_ETOOBIG : 0;
}

static uint32_t next_seq(const rpc2_conn *c)
{
    return c->next_seq + 1 ? c->next_seq + 1 : 1; /* 0 means "no call yet" to the server */
}

/* At debug level, each call with a side effect is described in the log. */
static void log_call(const rpc2_conn *c, const struct engine_call_args *a)
{
    const struct logger *log = &c->engine->log;
    if (!a->se || !log->fn || log->level < RPC2_LOG_DEBUG || !c->se_ops->describe)
        return;
    char text[256];
    c->se_ops->describe(c->se_state, a->se, text, sizeof text);
    log_msg(log, RPC2_LOG_DEBUG, "call %u proc %u: %s", c->next_seq, a->proc, text);
}

int engine_call(rpc2_conn *c, const struct engine_call_args *a, rpc2_call_cb cb, void *arg,
                uint64_t now)
{
    if (!cb)
        return RPC2_EINVAL;
    if (c->state == CS_BROKEN)
        return c->broken_error;
    if (c->state != CS_BOUND)
        return RPC2_ECLOSED;
    if (c->call)
        return RPC2_EINPROGRESS;
    if (a->se && (!c->se_ops || !c->se_ops->call_before || a->se->type != c->se_type))
        return RPC2_ENOSETYPE;
    size_t len;
    void *transfer = NULL;
    uint32_t seq = next_seq(c);
    int rc = encode_call(c, a, seq, &transfer, &len, now);
    if (rc != 0) {
        abandon_transfer(c, transfer, rc, now);
        return rc;
    }
    struct client_call *call = calloc(1, sizeof *call);
    uint8_t *body = malloc(len);
    if (!call || !body) {
        free(call);
        free(body);
        abandon_transfer(c, transfer, RPC2_ENOMEM, now);
        return RPC2_ENOMEM;
    }
    memcpy(body, c->engine->scratch, len);
    c->next_seq = seq;
    *call = (struct client_call){
        .seq = seq,
        .body = body,
        .body_len = len,
        .decode_result = a->decode_result,
        .result = a->result,
        .cb = cb,
        .arg = arg,
        .started = now,
        .deadline = a->timeout_us ? now + a->timeout_us : 0,
        .flags = a->se ? PKT_F_SE : 0,
        .se_transfer = transfer,
    };
    c->call = call;
    c->engine->stats.calls_sent++;
    log_call(c, a);
    send_call(c, now);
    return 0;
}

static int decode_result(struct client_call *call, const struct pkt_reply *r)
{
    if (r->status != 0 || !call->decode_result)
        return r->status;
    XDR x;
    xdrmem_create(&x, (char *)r->result, r->result_len, XDR_DECODE);
    int ok = call->decode_result(&x, call->result);
    xdr_destroy(&x);
    if (ok)
        return 0;
    xdr_free(call->decode_result, call->result);
    return RPC2_EDECODE;
}

static void on_reply(rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body, uint64_t now)
{
    struct client_call *call = c->call;
    struct pkt_reply r;
    if (!call || h->seq != call->seq)
        return; /* the answer to a call we gave up on, or a duplicate */
    if (pkt_reply_decode(body, h->body_len, h->flags, &r) != PKT_OK) {
        c->engine->stats.rejected_length++;
        return;
    }
    conn_heard(c, h, now, 1);
    finish_call(c, decode_result(call, &r), &r, now);
}

/* BUSY proves the server is alive and has the call; the retransmission
 * backoff keeps growing, so a long call costs few packets. */
static void on_busy(rpc2_conn *c, const struct pkt_hdr *h, uint64_t now)
{
    if (!c->call || h->seq != c->call->seq)
        return;
    c->engine->stats.busy_received++;
    conn_heard(c, h, now, 0);
    client_rearm(c);
}

static void on_unknown_conn(rpc2_conn *c, const struct pkt_hdr *h, uint64_t now)
{
    if (c->state == CS_BOUND && c->call && h->seq == c->call->seq)
        break_conn(c, RPC2_EUNKNOWNCONN, now);
}

void client_receive(struct engine *e, rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                    uint64_t now)
{
    (void)e;
    switch (h->type) {
    case PKT_BIND_OK:
    case PKT_BIND_ERR:
        on_bind_answer(c, h, body, now);
        break;
    case PKT_BIND_COOKIE:
        on_cookie(c, h, body, now);
        break;
    case PKT_REPLY:
        on_reply(c, h, body, now);
        break;
    case PKT_BUSY:
        on_busy(c, h, now);
        break;
    case PKT_UNKNOWN_CONN:
        on_unknown_conn(c, h, now);
        break;
    case PKT_VERSION_ERR:
        if (c->state == CS_BINDING)
            on_bind_answer(c, h, body, now);
        else if (c->state == CS_BOUND)
            break_conn(c, RPC2_EVERSION, now);
        break;
    case PKT_UNBIND_ACK:
        if (c->state == CS_CLOSING)
            conn_free(c);
        break;
    }
}

/* ---- timers ------------------------------------------------------------- */

static void send_unbind(rpc2_conn *c, uint64_t now)
{
    if (c->unbind_sends > 0)
        rtt_backoff(&c->rtt);
    conn_send(c, PKT_UNBIND, c->unbind_sends ? PKT_F_RETRANSMIT : 0, c->next_seq, NULL, 0, now);
    c->unbind_sends++;
    conn_arm(c, now + rtt_timeout(&c->rtt));
}

static void call_timeout(rpc2_conn *c, uint64_t now)
{
    struct client_call *call = c->call;
    uint64_t silence_from = c->last_heard > call->started ? c->last_heard : call->started;
    if (call->deadline && now >= call->deadline) {
        finish_call(c, RPC2_ETIMEDOUT, NULL, now);
        return;
    }
    if (now - silence_from >= c->engine->cfg.dead_peer_us) {
        break_conn(c, RPC2_EDEAD, now);
        return;
    }
    if (now >= call->next_send)
        send_call(c, now);
    else
        client_rearm(c);
}

void client_timeout(rpc2_conn *c, uint64_t now)
{
    if (c->state == CS_CLOSING) {
        if (c->unbind_sends >= UNBIND_SENDS)
            conn_free(c); /* the server will expire its end */
        else
            send_unbind(c, now);
        return;
    }
    if (c->bind) {
        if (now - c->bind->started >= c->engine->cfg.dead_peer_us)
            bind_done(c, RPC2_EDEAD);
        else if (now >= c->bind->next_send)
            send_bind(c, now);
        else
            client_rearm(c);
        return;
    }
    if (c->call)
        call_timeout(c, now);
}

void client_refused(rpc2_conn *c, uint64_t now)
{
    if (c->bind)
        bind_done(c, RPC2_ECONNREFUSED);
    else if (c->call)
        break_conn(c, RPC2_ECONNREFUSED, now);
}

/* ---- cancel and unbind -------------------------------------------------- */

int engine_cancel(rpc2_conn *c, uint64_t now)
{
    if (!c->call)
        return RPC2_EINVAL;
    finish_call(c, RPC2_ECANCELED, NULL, now);
    return 0;
}

void engine_unbind(rpc2_conn *c, uint64_t now)
{
    if (c->state == CS_CLOSING)
        return; /* a callback of the cancel below unbinding again */
    if (c->bind) {
        bind_done(c, RPC2_ECANCELED); /* frees c; the binder hears it */
        return;
    }
    int was_bound = c->state == CS_BOUND;
    c->state = CS_CLOSING;
    if (c->call)
        finish_call(c, RPC2_ECANCELED, NULL, now);
    if (!was_bound) {
        conn_free(c);
        return;
    }
    c->engine->stats.unbinds++;
    send_unbind(c, now);
}

void client_dispose(rpc2_conn *c)
{
    if (c->bind) {
        free(c->bind->body);
        free(c->bind);
    }
    if (c->call) {
        abandon_transfer(c, c->call->se_transfer, RPC2_ECLOSED, 0);
        free(c->call->body);
        free(c->call);
    }
}
