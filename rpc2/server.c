/*
 * server.c - the server side of calls: the export registry, running each
 * call at most once (the duplicate-request cache answers retransmissions
 * with BUSY or the saved reply), dispatching to async or blocking handlers
 * with XDR decoding and encoding, idle expiry and unbinds. Binds are
 * accepted in accept.c.
 *
 * Nothing a bound peer sends can make it hold more than the limits in
 * conntable_limits: calls running, bytes of saved replies; nor can one
 * identity or address take more than its share of the calls running.
 */
#include <stdlib.h>
#include <string.h>
#include <rpc/rpc.h>

#include <sodium.h>

#include "engine.h"

/* ---- the export registry ------------------------------------------------ */

struct subsystem *server_find_subsystem(struct engine *e, uint32_t id)
{
    for (struct subsystem *s = e->subsystems; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static const struct rpc2_proc *find_proc(const struct subsystem *s, uint32_t proc)
{
    for (size_t i = 0; i < s->n_procs; i++)
        if (s->procs[i].proc == proc)
            return &s->procs[i];
    return NULL;
}

static int proc_valid(const struct rpc2_proc *p)
{
    if (!p->async_handler && !p->blocking_handler)
        return 0; /* one form at least; both: the async one first */
    if (p->decode_args && p->args_size == 0)
        return 0;
    return !(p->encode_result && p->result_size == 0);
}

int engine_export(struct engine *e, uint32_t subsystem, const struct rpc2_proc *procs, size_t n,
                  void *arg)
{
    if (server_find_subsystem(e, subsystem) || (n > 0 && !procs))
        return RPC2_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!proc_valid(&procs[i]))
            return RPC2_EINVAL;
    struct subsystem *s = calloc(1, sizeof *s);
    struct rpc2_proc *copy = calloc(n ? n : 1, sizeof *copy);
    if (!s || !copy) {
        free(s);
        free(copy);
        return RPC2_ENOMEM;
    }
    if (n)
        memcpy(copy, procs, n * sizeof *copy);
    *s = (struct subsystem){.next = e->subsystems, .id = subsystem, .procs = copy,
                            .n_procs = n, .arg = arg};
    e->subsystems = s;
    return 0;
}

void server_free_subsystems(struct engine *e)
{
    while (e->subsystems) {
        struct subsystem *s = e->subsystems;
        e->subsystems = s->next;
        free(s->procs);
        free(s);
    }
}

/* The idle timer: armed once per idle period, not per packet; when it
 * fires it looks at when the peer last spoke. A running request keeps its
 * connection, however quiet the client (its handler will reply). */
void server_timeout(rpc2_conn *c, uint64_t now)
{
    uint64_t idle = c->engine->cfg.idle_timeout_us;
    if (c->running || now - c->last_heard < idle) {
        uint64_t from = c->running ? now : c->last_heard;
        conn_arm(c, from + idle);
        return;
    }
    c->engine->stats.connections_expired++;
    conn_free(c);
}

/* ---- replies ------------------------------------------------------------ */

/* Encodes a REPLY body into the engine's scratch space; returns its length.
 * A result that cannot be encoded turns into an RPC2_EENCODE status. */
static size_t encode_reply(struct engine *e, int status, const struct rpc2_proc *p, void *result)
{
    struct pkt_writer w;
    pkt_writer_init(&w, e->scratch, PKT_MAX_BODY);
    pkt_put_u32(&w, (uint32_t)status);
    uint8_t *len_at = pkt_put_space(&w, 4);
    uint32_t result_len = 0;
    if (status == 0 && p && p->encode_result) {
        XDR x;
        xdrmem_create(&x, (char *)w.p, (u_int)(w.end - w.p), XDR_ENCODE);
        int ok = p->encode_result(&x, result);
        result_len = ok ? xdr_getpos(&x) : 0;
        xdr_destroy(&x);
        if (!ok)
            return encode_reply(e, RPC2_EENCODE, NULL, NULL);
        pkt_put_space(&w, result_len);
    }
    struct pkt_writer lw;
    pkt_writer_init(&lw, len_at, 4);
    pkt_put_u32(&lw, result_len);
    return (size_t)(w.p - e->scratch);
}

/* Appends the side-effect block of a request's reply; returns the new
 * length, or 0 when it did not fit (the reply then says so instead). */
static size_t append_se_block(rpc2_conn *c, struct rpc2_request *req, int status, size_t len)
{
    struct engine *e = c->engine;
    struct pkt_writer w, inner;
    pkt_writer_init(&w, e->scratch + len, PKT_MAX_BODY - len);
    uint8_t *len_at = pkt_put_space(&w, 4);
    pkt_writer_init(&inner, w.p, w.failed ? 0 : (size_t)(w.end - w.p));
    if (c->se_ops->reply(c->se_state, req, req->se_transfer, status, &inner) != 0 || inner.failed)
        return 0;
    uint32_t se_len = (uint32_t)(inner.p - w.p);
    pkt_put_space(&w, se_len);
    struct pkt_writer lw;
    pkt_writer_init(&lw, len_at, 4);
    pkt_put_u32(&lw, se_len);
    return w.failed ? 0 : len + (size_t)(w.p - (e->scratch + len));
}

/* Answers the running call: the reply is saved for retransmissions, then sent. */
static void finish_call(rpc2_conn *c, struct rpc2_request *req, uint32_t seq, int status,
                        uint64_t now)
{
    struct engine *e = c->engine;
    const struct rpc2_proc *p = req ? req->proc : NULL;
    size_t len = encode_reply(e, status, p, req ? req->result : NULL);
    uint8_t flags = 0;
    if (req && req->se_transfer && c->se_ops->reply) {
        size_t with_se = append_se_block(c, req, status, len);
        if (with_se == 0)
            with_se = append_se_block(c, req, RPC2_ETOOBIG, encode_reply(e, RPC2_ETOOBIG, NULL,
                                                                           NULL));
        len = with_se ? with_se : encode_reply(e, RPC2_ETOOBIG, NULL, NULL);
        flags = with_se ? PKT_F_SE : 0;
    }
    int rc = dupcache_finish(&c->dup, e->scratch, len, e->cfg.max_saved_reply,
                             e->conns.limits.max_saved_bytes);
    if (rc != 0 || !c->dup.reply)
        e->stats.replies_not_saved++;
    c->saved_reply_flags = flags;
    c->running = NULL;
    conn_send(c, PKT_REPLY, flags, seq, e->scratch, len, now);
}

static void request_free(struct rpc2_request *req)
{
    struct engine *e = req->engine;
    /* a continuation never handed to a worker (the engine is being freed)
     * still runs, once: it owns what its handler left for it */
    engine_handler_orphaned(req, req->then ? RPC2_CONTINUED : 0);
    e->stats.requests_running--;
    if (req->prev)
        req->prev->next = req->next;
    else
        e->requests = req->next;
    if (req->next)
        req->next->prev = req->prev;
    if (req->proc->decode_args)
        xdr_free(req->proc->decode_args, req->args);
    if (req->proc->encode_result)
        xdr_free(req->proc->encode_result, req->result);
    if (req->se_transfer && req->se_ops->request_free)
        req->se_ops->request_free(req->se_state, req, req->se_transfer);
    free(req->args);
    free(req->result);
    free(req);
}

int engine_reply(struct rpc2_request *req, int status, uint64_t now)
{
    if (req->conn && req->conn->running == req)
        finish_call(req->conn, req, req->seq, status, now);
    request_free(req);
    return 0;
}

void server_free_requests(struct engine *e)
{
    while (e->requests)
        request_free(e->requests);
}

/* ---- calls -------------------------------------------------------------- */

static struct rpc2_request *request_new(rpc2_conn *c, const struct rpc2_proc *p, uint32_t seq)
{
    struct rpc2_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->args = calloc(1, p->args_size ? p->args_size : 1);
    req->result = calloc(1, p->result_size ? p->result_size : 1);
    if (!req->args || !req->result) {
        free(req->args);
        free(req->result);
        free(req);
        return NULL;
    }
    struct engine *e = c->engine;
    req->engine = e;
    req->conn = c;
    req->proc = p;
    req->handler_arg = c->sub->arg;
    req->seq = seq;
    req->se_ops = c->se_ops;
    req->se_state = c->se_state;
    req->peer_addr = c->link.peer;
    memcpy(req->identity, c->identity, sizeof req->identity);
    req->security = c->security;
    req->next = e->requests;
    if (e->requests)
        e->requests->prev = req;
    e->requests = req;
    /* Counted until freed, not until its connection goes: a handler still
     * runs (or waits for a worker) after its client unbinds. */
    e->stats.requests_running++;
    return req;
}

static int decode_args(struct rpc2_request *req, const struct pkt_call *m)
{
    if (!req->proc->decode_args)
        return m->args_len == 0;
    XDR x;
    xdrmem_create(&x, (char *)m->args, m->args_len, XDR_DECODE);
    int ok = req->proc->decode_args(&x, req->args);
    xdr_destroy(&x);
    return ok;
}

static void dispatch(rpc2_conn *c, uint32_t seq, const struct pkt_call *m, uint64_t now)
{
    struct engine *e = c->engine;
    const struct rpc2_proc *p = find_proc(c->sub, m->proc);
    if (!p) {
        finish_call(c, NULL, seq, RPC2_ENOPROC, now);
        return;
    }
    if (m->se && (!c->se_ops || !c->se_ops->request)) {
        finish_call(c, NULL, seq, RPC2_ENOSETYPE, now);
        return;
    }
    struct rpc2_request *req = request_new(c, p, seq);
    if (!req) {
        finish_call(c, NULL, seq, RPC2_ENOMEM, now);
        return;
    }
    int rc = decode_args(req, m) ? 0 : RPC2_EDECODE;
    if (rc == 0 && m->se)
        rc = c->se_ops->request(c->se_state, req, m->se, m->se_len, &req->se_transfer);
    if (rc != 0) {
        request_free(req);
        finish_call(c, NULL, seq, rc, now);
        return;
    }
    c->running = req;
    e->stats.calls_executed++;
    if (p->async_handler) {
        p->async_handler(req, req->args, req->result, req->handler_arg);
        return; /* req may be gone already: the handler may have replied */
    }
    req->on_worker = 1;
    rc = e->hooks && e->hooks->run_blocking ? e->hooks->run_blocking(e->env, req) : RPC2_ESERVER;
    if (rc != 0)
        engine_reply(req, rc, now);
}

/* Whether a request counts against the share of c's identity or address. */
static int same_identity(const struct rpc2_request *req, const rpc2_conn *c)
{
    return strcmp(req->identity, c->identity) == 0;
}

static int same_address(const struct rpc2_request *req, const rpc2_conn *c)
{
    /* the table's per-address slot: one IPv4 address or IPv6 /64 */
    return req->conn && c->link.addr_slot && req->conn->link.addr_slot == c->link.addr_slot;
}

static int at_share(const rpc2_conn *c, uint32_t share, int (*same)(const struct rpc2_request *,
                                                                    const rpc2_conn *))
{
    uint32_t n = 0;
    if (share == 0)
        return 0;
    for (const struct rpc2_request *r = c->engine->requests; r && n < share; r = r->next)
        n += (uint32_t)same(r, c);
    return n >= share;
}

/* Past max_running, or past the share of c's identity or address (a scan
 * of the running requests, which max_running bounds): the call waits. */
static int must_wait(rpc2_conn *c)
{
    struct engine *e = c->engine;
    if (e->stats.requests_running >= e->conns.limits.max_running) {
        e->stats.calls_deferred++;
        return 1;
    }
    if (at_share(c, e->cfg.max_running_per_identity, same_identity)) {
        e->stats.calls_deferred_identity++;
        return 1;
    }
    if (at_share(c, e->cfg.max_running_per_address, same_address)) {
        e->stats.calls_deferred_address++;
        return 1;
    }
    return 0;
}

static void send_tiny_reply(rpc2_conn *c, uint32_t seq, int status, uint64_t now)
{
    uint8_t body[8];
    struct pkt_writer w;
    pkt_writer_init(&w, body, sizeof body);
    pkt_put_u32(&w, (uint32_t)status);
    pkt_put_u32(&w, 0);
    conn_send(c, PKT_REPLY, 0, seq, body, sizeof body, now);
}

static void on_call(rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body, uint64_t now)
{
    struct engine *e = c->engine;
    struct pkt_call m;
    if (pkt_call_decode(body, h->body_len, h->flags, &m) != PKT_OK) {
        e->stats.rejected_length++;
        return;
    }
    if (h->seq == 0) {
        e->stats.rejected_other++; /* 0 names no call */
        return;
    }
    conn_heard(c, h, now, 0);
    switch (dupcache_check(&c->dup, h->seq)) {
    case DUP_STALE:
        e->stats.duplicate_requests++;
        return;
    case DUP_RUNNING:
        e->stats.duplicate_requests++;
        /* fall through */
    case DUP_WAIT:
        e->stats.busy_sent++;
        conn_send(c, PKT_BUSY, 0, h->seq, NULL, 0, now);
        return;
    case DUP_RESEND:
        e->stats.duplicate_requests++;
        e->stats.replies_resent++;
        conn_send(c, PKT_REPLY, (uint8_t)(PKT_F_RETRANSMIT | c->saved_reply_flags), h->seq,
                  c->dup.reply, c->dup.reply_len, now);
        return;
    case DUP_LOST:
        e->stats.duplicate_requests++;
        send_tiny_reply(c, h->seq, RPC2_ELIMIT, now);
        return;
    case DUP_NEW:
        break;
    }
    if (must_wait(c)) {
        /* Not started and not recorded: a retry runs it once a call ends.
         * BUSY keeps the client waiting instead of failing a call that a
         * moment later would have run. */
        e->stats.busy_sent++;
        conn_send(c, PKT_BUSY, 0, h->seq, NULL, 0, now);
        return;
    }
    dupcache_start(&c->dup, h->seq);
    dispatch(c, h->seq, &m, now);
}

void server_receive(struct engine *e, const struct rpc2_addr *from, rpc2_conn *c,
                    const struct pkt_hdr *h, const uint8_t *body, uint64_t now)
{
    /* A packet naming our connection id, which went only to the peer's
     * address in BIND_OK: the peer receives there. */
    if (c)
        conntable_proven(&e->conns, &c->link);
    switch (h->type) {
    case PKT_BIND_REQ:
        server_on_bind(e, from, h, body, now);
        break;
    case PKT_CALL:
        on_call(c, h, body, now);
        break;
    case PKT_UNBIND:
        e->stats.unbinds++;
        engine_send_bare(e, from, PKT_UNBIND_ACK, h->src_conn, c->link.id, h->seq, 0, h->ts, now);
        conn_free(c);
        break;
    default:
        e->stats.rejected_type++;
    }
}

void server_dispose(rpc2_conn *c)
{
    /* A handler still running keeps its request; its reply goes nowhere. */
    if (c->running)
        c->running->conn = NULL;
}

/* ---- request accessors (public API) ------------------------------------ */

const char *rpc2_request_peer(const rpc2_request *req)
{
    struct rpc2_request *r = (struct rpc2_request *)req;
    if (!r->peer[0])
        addr_format(&r->peer_addr.ss, r->peer, sizeof r->peer);
    return r->peer;
}

uint32_t rpc2_request_proc(const rpc2_request *req)
{
    return req->proc->proc;
}

const char *rpc2_request_identity(const rpc2_request *req)
{
    return req->identity;
}

enum rpc2_security rpc2_request_security(const rpc2_request *req)
{
    return (enum rpc2_security)req->security;
}
