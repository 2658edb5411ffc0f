/*
 * engine.h - the pure protocol machine of a context: connections, calls,
 * binds and dispatch, with no sockets, threads or clock of its own.
 *
 * Everything comes in as a datagram or a timer tick with the current time
 * (microseconds, any monotonic origin); everything goes out as datagrams in
 * the outq and a next deadline. The driver (ctx.c) feeds it from the libev
 * loop and sockets; tests feed it from a fake clock and a lossy fake link.
 *
 * engine.c owns the demultiplexing, connection lifetime and sending;
 * client.c the client side of binds and calls; server.c the server side.
 */
#ifndef RPC2_ENGINE_H
#define RPC2_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <rpc2/rpc2.h>

#include "addr.h"
#include "conntable.h"
#include "dupcache.h"
#include "log.h"
#include "outq.h"
#include "packet.h"
#include "ratelimit.h"
#include "rtt.h"
#include "se_ops.h"
#include "secure.h"
#include "timerheap.h"

struct engine_config {
    uint32_t retry_initial_us, retry_min_us, retry_max_us;
    uint32_t dead_peer_us;
    uint64_t idle_timeout_us; /* server connections silent this long are dropped */
    uint32_t max_connections;
    uint32_t max_saved_reply;
    uint64_t id_seed;                /* 0: random connection ids */
    enum rpc2_security min_security; /* server: binds asking for less are refused */
    rpc2_secret_fn secret_for;       /* server: identity -> secret; NULL: none known */
    void *secret_arg;
    uint32_t max_running_per_identity; /* server: shares of max_running; 0: none */
    uint32_t max_running_per_address;
    uint64_t stall_timeout_us; /* server side effects; 0: never stalled */
};

/* A local file a side effect waits on (a pipe with nothing to read, or no
 * room to write), so the loop goes on serving the network meanwhile. */
enum { ENGINE_FD_READ = 1, ENGINE_FD_WRITE = 2 };
struct engine_fdwatch {
    void (*ready)(struct engine_fdwatch *w, uint64_t now);
    void *driver; /* the driver's watcher; NULL while not watching */
};

/* What the engine needs from its driver. */
struct engine_hooks {
    /* Runs engine_run_handler(req) off the loop; the driver then calls
     * engine_handler_returned() with its status on the loop thread.
     * Returns 0 or a negative error (the request is then answered with
     * that error). */
    int (*run_blocking)(void *env, struct rpc2_request *req);
    /* Watches fd for the ENGINE_FD_* events, calling w->ready on the loop
     * each time one is ready, until called again with events 0 (which
     * also frees what the driver keeps in w->driver). Drivers without it
     * leave it NULL: side effects then block on their files instead. */
    int (*watch_fd)(void *env, struct engine_fdwatch *w, int fd, int events);
    /* As run_blocking, but on the loop thread at its next turn (once
     * what runs now has returned); 0, or an error (then nothing runs).
     * May be NULL. */
    int (*run_on_loop)(void *env, struct rpc2_request *req);
};

struct engine;

struct engine *engine_new(const struct engine_config *cfg, const struct logger *log,
                          const struct engine_hooks *hooks, void *env, outq_flush_fn flush,
                          void *flush_arg);
/* Ends every connection: a call or bind in flight completes with an error
 * (its callback runs), client connections send UNBIND, server connections
 * end their transfers. Callbacks must not unbind other connections here. */
void engine_close_all(struct engine *e, uint64_t now);
/* Frees every connection and request without calling user callbacks. */
void engine_free(struct engine *e);

/* pkt may be changed: a protected datagram is verified and decrypted in place. */
void engine_receive(struct engine *e, const struct rpc2_addr *from, uint8_t *pkt, size_t len,
                    uint64_t now);
/*
 * A receive batch: the datagrams a driver hands to engine_receive between
 * begin and end stay in their buffers until end, so a side effect may keep
 * pointers into them and act on a whole batch at once (an SFTP sink writes
 * its packets with one call, and acks once). What it deferred runs at end;
 * outside a batch, at the end of each engine_receive.
 */
struct engine_deferred {
    struct engine_deferred *next;
    int queued;
    void (*run)(struct engine_deferred *d, uint64_t now);
};
void engine_batch_begin(struct engine *e);
void engine_batch_end(struct engine *e, uint64_t now);
/* Runs d->run once, when the datagrams being received are handled. */
void engine_defer(struct engine *e, struct engine_deferred *d);
/* d will not run (what it belongs to is going away). */
void engine_undefer(struct engine *e, struct engine_deferred *d);
void engine_timeout(struct engine *e, uint64_t now);
uint64_t engine_next_deadline(const struct engine *e);
void engine_flush(struct engine *e);

unsigned engine_conn_count(const struct engine *e);
const struct rpc2_ctx_stats *engine_stats(const struct engine *e);

/* ---- server ---- */
int engine_export(struct engine *e, uint32_t subsystem, const struct rpc2_proc *procs, size_t n,
                  void *arg);
int engine_reply(struct rpc2_request *req, int status, uint64_t now);
/* A worker's part of a request handed to run_blocking: the blocking
 * handler, or its continuation once the transfer it left to the loop
 * (rpc2_se_transfer_then) is over. Touches nothing but the request. */
int engine_run_handler(struct rpc2_request *req);
/* Back on the loop with what engine_run_handler returned: the reply, or
 * the transfer a handler left to the loop. */
void engine_handler_returned(struct rpc2_request *req, int status, uint64_t now);
/* A worker's handler returned and the loop will not hear of it (the
 * context is being freed): a continuation still due runs here, so it runs
 * exactly once. */
void engine_handler_orphaned(struct rpc2_request *req, int status);
/* Ends every running request's side effect with status (se_ops abort). */
void engine_abort_transfers(struct engine *e, int status, uint64_t now);
/* Whether a request's continuation is what run_blocking is asked to run. */
int engine_request_continues(const struct rpc2_request *req);
/* Whether its blocking handler has it (a worker, then its continuations),
 * rather than an async handler on the loop. */
int engine_request_blocking(const struct rpc2_request *req);
/* rpc2_request_to_worker: an async handler hands its request on to the
 * proc's blocking handler, on a worker. */
int engine_request_to_worker(struct rpc2_request *req);
/* rpc2_request_suspend and rpc2_request_resume (the latter on the loop). */
int engine_request_suspend(struct rpc2_request *req, rpc2_se_then_fn then, void *arg);
int engine_request_resume(struct rpc2_request *req, int status, uint64_t now);

/* ---- client ---- */
struct engine_bind_args {
    uint32_t subsystem, se_type;
    enum rpc2_security security;
    const char *identity;
    const unsigned char *secret; /* RPC2_SECRET_BYTES, above level none */
};
int engine_bind(struct engine *e, const struct rpc2_addr *server, const struct engine_bind_args *a,
                rpc2_bind_cb cb, void *arg, uint64_t now);
struct engine_call_args {
    uint32_t proc;
    xdrproc_t encode_args;
    const void *args;
    xdrproc_t decode_result;
    void *result;
    uint32_t timeout_us;
    struct rpc2_se_desc *se; /* NULL: no side effect */
};
int engine_call(rpc2_conn *c, const struct engine_call_args *a, rpc2_call_cb cb, void *arg,
                uint64_t now);
int engine_cancel(rpc2_conn *c, uint64_t now);
/* refused.c: an ICMP error (errno err) about a datagram sent to `to`, of
 * which the ICMP quoted quoted_len bytes; may end a bind or a call waiting
 * on that peer with RPC2_ECONNREFUSED, when the quote shows it is theirs. */
void engine_peer_error(struct engine *e, const struct rpc2_addr *to, int err, const uint8_t *quoted,
                       size_t quoted_len, uint64_t now);
void engine_unbind(rpc2_conn *c, uint64_t now);
struct engine *engine_of(const rpc2_conn *c);

/* ---- side-effect types ---- */
int engine_se_register(struct engine *e, uint32_t id, const struct se_ops *ops, void *type,
                       void (*free_type)(void *type));
void *engine_se_type(const struct engine *e, uint32_t id);

/* Timers for anything on the loop: connections, transfers. */
struct engine_timer {
    struct timer t;
    void (*fire)(struct engine_timer *et, uint64_t now);
};
void engine_timer_init(struct engine_timer *t, void (*fire)(struct engine_timer *, uint64_t));
/* Arms (or moves) the timer; UINT64_MAX disarms it. */
void engine_timer_set(struct engine *e, struct engine_timer *t, uint64_t deadline);

/* Whether the driver can watch fds (else side effects block on them). */
static inline int engine_can_watch_fds(const struct engine *e);
/* Starts, changes (events) or stops (events 0) watching fd for w. */
static inline int engine_fd_watch(struct engine *e, struct engine_fdwatch *w, int fd, int events);

/* Zero-copy sending for side-effect types: the body is written straight
 * into the outgoing datagram (at most *cap bytes), then committed. Nothing
 * else may be sent between the two. NULL when memory is short. */
uint8_t *conn_packet_begin(rpc2_conn *c, size_t *cap);
void conn_packet_commit(rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq, uint32_t transfer,
                        uint32_t ts_echo, size_t body_len, uint64_t now);
/* Sends a body that sits in the caller's memory with CONN_LEND_HEADROOM
 * bytes before it and CONN_LEND_TAILROOM after it for the header and the
 * trailer, which are written there. At security none the datagram is lent
 * to the outgoing batch, not copied: the caller changes and frees none of
 * it until engine_unpin(pin) (the pin is returned; 0 when the body was
 * copied, as it is above none, where the seal needs a datagram of its own). */
#define CONN_LEND_HEADROOM PKT_HDR_SIZE
#define CONN_LEND_TAILROOM PKT_CHECK_SIZE
uint64_t conn_packet_lend(rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq,
                          uint32_t transfer, uint32_t ts_echo, uint8_t *body, size_t body_len,
                          uint64_t now);
/* Returns once a datagram lent under pin is no longer read. */
void engine_unpin(struct engine *e, uint64_t pin);
/* The side-effect state of the transfer with this id on c (the call in
 * flight on a client, the running request on a server), or NULL. */
void *conn_transfer(const rpc2_conn *c, uint32_t transfer);
int conn_is_client(const rpc2_conn *c);
const struct rpc2_addr *conn_peer(const rpc2_conn *c);

/* ==== shared by engine.c, client.c and server.c only ==================== */

enum conn_role { ROLE_CLIENT, ROLE_SERVER };
enum conn_state { CS_BINDING, CS_BOUND, CS_CLOSING, CS_BROKEN };

struct subsystem {
    struct subsystem *next;
    uint32_t id;
    struct rpc2_proc *procs;
    size_t n_procs;
    void *arg;
};

struct client_call {
    uint32_t seq;
    uint8_t *body; /* encoded CALL body, kept for retransmission */
    size_t body_len;
    xdrproc_t decode_result;
    void *result;
    rpc2_call_cb cb;
    void *arg;
    uint64_t started, deadline; /* deadline 0: none */
    uint64_t next_send;
    unsigned sends;
    uint8_t flags;     /* PKT_F_SE when the body carries a side-effect block */
    void *se_transfer; /* the side-effect type's state for this call */
};

/* The ts of the latest BIND_REQs sent: an answer must echo one of them. */
#define CLIENT_BIND_TS_KEPT 8

struct client_bind {
    uint8_t *body; /* BIND_REQ body */
    size_t body_len;
    rpc2_bind_cb cb;
    void *arg;
    uint64_t started, next_send;
    unsigned sends;
    uint32_t sent_ts[CLIENT_BIND_TS_KEPT]; /* a ring; 0: empty */
    unsigned sent_count;
};

/* A connection above security level none: its session keys, and the
 * handshake while the bind runs. */
struct conn_sec {
    int level;                    /* what the bind asked for */
    struct sec_session session;   /* valid once the handshake is done */
    int ready;                    /* the session is valid */
    int confirmed;                /* server: a protected packet from the client verified */
    struct sec_hs *hs;            /* client, while binding */
    uint8_t hello[SEC_HELLO_MAX]; /* client: sent with every BIND_REQ; server: the reply */
    size_t hello_len;
};

struct rpc2_conn {
    struct conn_link link;
    struct engine_timer timer;
    struct engine *engine;
    enum conn_role role;
    enum conn_state state;
    int broken_error;     /* why CS_BROKEN */
    uint8_t security;     /* the level packets travel at (none while binding) */
    struct conn_sec *sec; /* NULL at level none */
    uint32_t subsystem, se_type;
    const struct se_ops *se_ops; /* of se_type; NULL without one */
    void *se_state;              /* the type's state for this context */
    struct rtt rtt;
    uint32_t peer_ts;    /* latest ts from the peer, echoed back */
    uint64_t peer_ts_at; /* when it arrived: the echo is advanced by the time held */
    uint64_t last_heard; /* when the peer last sent anything */
    /* client */
    struct client_bind *bind;
    struct client_call *call;
    uint32_t next_seq;
    unsigned unbind_sends;
    /* server */
    struct subsystem *sub;
    struct dupcache dup;
    uint8_t saved_reply_flags; /* PKT_F_SE if the saved reply carries a block */
    struct rpc2_request *running;
    char identity[PKT_MAX_IDENTITY + 1];
};

struct rpc2_request {
    struct rpc2_request *prev, *next; /* the engine's list of live requests */
    struct engine *engine;
    rpc2_conn *conn; /* NULL once the connection is gone */
    const struct rpc2_proc *proc;
    struct rpc2_addr peer_addr;
    void *handler_arg;
    uint32_t seq;
    void *args, *result;
    int status;                  /* set by the worker for blocking handlers */
    void *se_transfer;           /* the side-effect type's state, NULL: none */
    const struct se_ops *se_ops; /* its type, kept here: the connection may go first */
    void *se_state;
    rpc2_se_done_fn se_done; /* rpc2_se_check_async's callback */
    void *se_done_arg;
    /* rpc2_se_transfer_then: the handler's rest, run once after the
     * transfer (then_due: handed to a worker with then_status) */
    rpc2_se_then_fn then;
    void *then_arg;
    struct rpc2_se_desc *then_desc;
    int then_status, then_due;
    int then_on_loop; /* rpc2_se_transfer_then_loop: the rest runs on the loop */
    /* rpc2_request_suspend: then waits for the application's resume
     * (resumed, with resume_status) and for the worker to be back (parked) */
    int suspended, parked, resumed, resume_status;
    /* handed to a worker (a blocking proc, or a proc with both handlers
     * whose loop part passed it on): its blocking handler answers */
    int on_worker;
    char peer[ADDR_TEXT_MAX];
    uint8_t security; /* the connection's level when the request came */
    char identity[PKT_MAX_IDENTITY + 1];
};

struct engine {
    struct engine_config cfg;
    struct logger log;
    const struct engine_hooks *hooks;
    void *env;
    struct conntable conns;
    struct timerheap timers;
    struct outq out;
    struct subsystem *subsystems;
    struct rpc2_request *requests;
    struct rpc2_ctx_stats stats;
    struct se_registry se;
    struct sec_replay replay;  /* server: client hellos seen; ready when replay.e */
    struct ratelimit answers;  /* answers to unproven peers, per source prefix */
    struct announce *announce; /* announce.c: NULL until used */
    uint64_t now;              /* the time of the event being handled, for code called from it */
    int batching;              /* between engine_batch_begin and _end */
    struct engine_deferred *deferred;  /* to run when the batch ends */
    uint8_t scratch[PKT_MAX_DATAGRAM]; /* encode space for bodies */
};

static inline int engine_can_watch_fds(const struct engine *e)
{
    return e->hooks && e->hooks->watch_fd;
}

static inline int engine_fd_watch(struct engine *e, struct engine_fdwatch *w, int fd, int events)
{
    if (!engine_can_watch_fds(e))
        return events ? RPC2_ESYSTEM : 0;
    return e->hooks->watch_fd(e->env, w, fd, events);
}

/* engine.c, for client.c and server.c */
/* Sends at level none whatever the connection's (BIND_OK: its handshake
 * reply is what gives the client the keys). */
void conn_send_clear(rpc2_conn *c, uint8_t type, const uint8_t *body, size_t body_len,
                     uint64_t now);
void conn_sec_free(struct conn_sec *s);
rpc2_conn *conn_new(struct engine *e, enum conn_role role, const struct rpc2_addr *peer,
                    uint32_t peer_id, uint64_t now);
void conn_free(rpc2_conn *c);
void conn_arm(rpc2_conn *c, uint64_t deadline);
/* Finds the side-effect ops for a bind's se_type; 0 or RPC2_ENOSETYPE. */
int conn_set_se_type(rpc2_conn *c, uint32_t se_type);
/* Sends a packet on a connection: header from the connection's ids and
 * timestamps, then the body. */
void conn_send(rpc2_conn *c, uint8_t type, uint8_t flags, uint32_t seq, const uint8_t *body,
               size_t body_len, uint64_t now);
/* Sends a packet to an address, outside any connection. */
void engine_send(struct engine *e, const struct rpc2_addr *to, const struct pkt_hdr *h,
                 const uint8_t *body);
/* Whether an answer to a peer not proven to receive at `to` may go (the
 * limit per source prefix; slip as ratelimit_allow); counts the refusals. */
int engine_may_answer(struct engine *e, const struct rpc2_addr *to, unsigned slip, uint64_t now);
/* Sends a header-only packet to an address outside any connection; an
 * UNBIND_ACK naming one of our protected connections as its source goes
 * sealed with that connection's keys. */
void engine_send_bare(struct engine *e, const struct rpc2_addr *to, uint8_t type, uint32_t dst_conn,
                      uint32_t src_conn, uint32_t seq, uint32_t transfer, uint32_t ts_echo,
                      uint64_t now);
/* Notes that the peer spoke: its timestamp (to echo) and liveness; with
 * sample set, also an RTT sample from the echoed timestamp. */
void conn_heard(rpc2_conn *c, const struct pkt_hdr *h, uint64_t now, int sample);

/* client.c */
void client_receive(struct engine *e, rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                    uint64_t now);
void client_timeout(rpc2_conn *c, uint64_t now);
void client_dispose(rpc2_conn *c);
/* Nothing listens at the peer's port (refused.c judged the ICMP): ends the
 * bind, or breaks the connection of the call in flight. */
void client_refused(rpc2_conn *c, uint64_t now);

/* server.c */
void server_receive(struct engine *e, const struct rpc2_addr *from, rpc2_conn *c,
                    const struct pkt_hdr *h, const uint8_t *body, uint64_t now);
void server_timeout(rpc2_conn *c, uint64_t now);
/* accept.c: a BIND_REQ; server.c: the subsystem a bind names, or NULL. */
void server_on_bind(struct engine *e, const struct rpc2_addr *from, const struct pkt_hdr *h,
                    const uint8_t *body, uint64_t now);
struct subsystem *server_find_subsystem(struct engine *e, uint32_t id);
void server_dispose(rpc2_conn *c);
void server_free_subsystems(struct engine *e);
void server_free_requests(struct engine *e);

#endif
