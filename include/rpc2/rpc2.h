/*
 * rpc2.h - the public API of the rpc2 core runtime.
 *
 * rpc2 runs remote procedure calls over UDP with at-most-once execution,
 * RTT-based retransmission and dead-peer detection. A context (rpc2_ctx)
 * owns its sockets, its libev loop (its own or the application's), the
 * connection table and the timers; nothing is process-global, so several
 * contexts can live in one process without meeting.
 *
 * Every function that can fail returns 0 or a negative code from the one
 * error list below; rpc2_strerror() names it. The library never prints and
 * never exits: it reports through the log callback set in rpc2_params.
 */
#ifndef RPC2_RPC2_H
#define RPC2_RPC2_H

#include <stddef.h>
#include <stdint.h>
#include <rpc/xdr.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RPC2_EXPORT __attribute__((visibility("default")))
#else
#define RPC2_EXPORT
#endif

/* The port rcatd and the examples use unless told otherwise. */
#define RPC2_DEFAULT_PORT 7755

/*
 * The error list: X(name, value, description). Values are stable (they
 * travel on the wire in replies), so new codes are only ever appended.
 */
#define RPC2_ERRORS(X)                                                                             \
    X(OK, 0, "success")                                                                            \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(ESYSTEM, -3, "system call failed")                                                           \
    X(EADDR, -4, "cannot resolve or use the address")                                              \
    X(ETIMEDOUT, -5, "call timed out")                                                             \
    X(EDEAD, -6, "peer is dead: no answer within the dead-peer silence")                           \
    X(EUNKNOWNCONN, -7, "server does not know this connection (restarted or expired)")             \
    X(EVERSION, -8, "peer does not speak this protocol version")                                   \
    X(ENOSUBSYS, -9, "server does not export this subsystem")                                      \
    X(ENOPROC, -10, "subsystem has no such procedure")                                             \
    X(EDECODE, -11, "arguments or result could not be decoded")                                    \
    X(EENCODE, -12, "arguments or result could not be encoded")                                    \
    X(ETOOBIG, -13, "message does not fit in one datagram")                                        \
    X(ECANCELED, -14, "call canceled")                                                             \
    X(EINPROGRESS, -15, "a call is already in flight on this connection")                          \
    X(ECLOSED, -16, "connection is closed")                                                        \
    X(ESECURITY, -17, "security level not supported or refused")                                   \
    X(EREFUSED, -18, "server refused the bind")                                                    \
    X(ELIMIT, -19, "a configured resource limit was reached")                                      \
    X(ESERVER, -20, "the procedure failed on the server")                                          \
    X(EBADPACKET, -21, "malformed packet")                                                         \
    X(ESEFAIL1, -22, "side effect failed; the connection is still usable")                         \
    X(ESEFAIL2, -23, "side effect failed; the connection is dead")                                 \
    X(ENOSETYPE, -24, "unknown side-effect type")                                                  \
    X(EWOULDBLOCK, -25, "blocking call made from inside a loop callback")                         \
    X(EQUOTA, -26, "transfer would exceed the byte quota")                                         \
    X(ENOENT, -27, "no such file or directory")                                                    \
    X(EACCES, -28, "permission denied")                                                            \
    X(EIO, -29, "input/output error on a local file")                                              \
    X(ENOSPC, -30, "no space left on device")                                                      \
    X(EOVERFLOW, -31, "data larger than the memory buffer given for it")                           \
    X(EEXIST, -32, "file exists")                                                                  \
    X(EISDIR, -33, "is a directory")                                                               \
    X(EINTEGRITY, -34, "data integrity check failed: the bytes written are not the bytes sent") \
    X(EAUTH, -35, "authentication failed: unknown identity or wrong secret")                       \
    X(ECONNREFUSED, -36, "connection refused: nothing listens at the server's address and port") \
    X(ECHANGED, -37, "the file changed while it was being sent")                                   \
    X(ESTALLED, -38, "transfer made no progress within the server's stall timeout")               \
    X(ESHUTDOWN, -39, "the server is stopping: the call was ended")                               \
    X(EBUSY, -40, "another transfer is writing this file: try again once it has ended")

enum rpc2_error {
#define RPC2_ERROR_ENUM(name, value, text) RPC2_##name = (value),
    RPC2_ERRORS(RPC2_ERROR_ENUM)
#undef RPC2_ERROR_ENUM
};

/* A description of an error code (or of an application status, if >= 0). */
RPC2_EXPORT const char *rpc2_strerror(int code);
/* The code's name, e.g. "RPC2_EDEAD"; "RPC2_UNKNOWN" for unlisted codes. */
RPC2_EXPORT const char *rpc2_errname(int code);
/* The code rpc2_errname names so ("RPC2_EBUSY" gives RPC2_EBUSY), for a
 * program reading names back (rcat's JSON events, logs); RPC2_EINVAL for
 * NULL or a name that is none of them. */
RPC2_EXPORT int rpc2_errcode(const char *name);

/* ---- logging --------------------------------------------------------- */

enum rpc2_log_level {
    RPC2_LOG_ERROR = 0,
    RPC2_LOG_WARN = 1,
    RPC2_LOG_INFO = 2,
    RPC2_LOG_DEBUG = 3,
};

typedef void (*rpc2_log_fn)(enum rpc2_log_level level, const char *message, void *arg);

/* ---- security levels ---------------------------------------------------- */

/*
 * Above NONE, both ends share a 32-byte secret per client identity; the
 * bind proves it both ways without sending it, and derives fresh session
 * keys from an ephemeral key exchange (docs/SECURITY.md says what each
 * level protects and what it does not).
 */
enum rpc2_security {
    RPC2_SEC_NONE = 0,    /* a check against accidental damage only */
    RPC2_SEC_AUTH = 1,    /* every packet carries a MAC; replays are dropped */
    RPC2_SEC_ENCRYPT = 2, /* AEAD: bodies are encrypted too */
};
#define RPC2_SECRET_BYTES 32

/* Server: the secret of a client identity. Returns 0 and fills secret, or
 * RPC2_ENOENT for an identity it does not know. Runs on the loop thread. */
typedef int (*rpc2_secret_fn)(const char *identity, size_t len,
                              unsigned char secret[RPC2_SECRET_BYTES], void *arg);

/*
 * Key files. A server's holds one "IDENTITY BASE64-SECRET" per line, with
 * '#' comments; a client's holds the base64 secret alone. A file that group
 * or others may read or write, or that another user owns, is refused.
 * Errors (in err, one line) name the file and line, never a secret.
 */
typedef struct rpc2_keys rpc2_keys;
#define RPC2_SECRET_BASE64_LEN 44
RPC2_EXPORT int rpc2_keys_load(const char *path, rpc2_keys **out, char *err, size_t errlen);
RPC2_EXPORT void rpc2_keys_free(rpc2_keys *keys);
/* An rpc2_secret_fn: pass it as rpc2_params.secret_for, the keys as secret_arg. */
RPC2_EXPORT int rpc2_keys_secret_for(const char *identity, size_t len,
                                     unsigned char secret[RPC2_SECRET_BYTES], void *keys);
/* A client's secret from its key file. */
RPC2_EXPORT int rpc2_keys_load_secret(const char *path, unsigned char secret[RPC2_SECRET_BYTES],
                                      char *err, size_t errlen);
/* A fresh random secret, in base64 (RPC2_SECRET_BASE64_LEN characters and a NUL). */
RPC2_EXPORT int rpc2_keys_generate(char out[RPC2_SECRET_BASE64_LEN + 1]);

/* ---- the context ------------------------------------------------------ */

typedef struct rpc2_ctx rpc2_ctx;
typedef struct rpc2_conn rpc2_conn;
typedef struct rpc2_request rpc2_request;

#define RPC2_MAX_LISTEN 8

struct ev_loop;

/*
 * Context parameters. Call rpc2_params_init() first, then change what you
 * need; zero is never a meaningful "default" for the time values.
 */
struct rpc2_params {
    /* Addresses to listen on, "HOST:PORT", "[V6]:PORT" or ":PORT" (all
     * addresses, IPv4 and IPv6 on one dual-stack socket). With none, the
     * context binds one ephemeral dual-stack socket: right for a client. */
    const char *listen[RPC2_MAX_LISTEN];
    int n_listen;

    /* NULL: the context creates and runs its own loop (rpc2_ctx_run).
     * Otherwise the context attaches its watchers to this loop, which the
     * application runs. */
    struct ev_loop *loop;

    int workers;                 /* threads for blocking handlers; 0: none */
    uint32_t retry_initial_us;   /* first retransmission timeout before any RTT sample */
    uint32_t retry_min_us;       /* lower bound of the computed timeout */
    uint32_t retry_max_us;       /* upper bound after backoff */
    uint32_t dead_peer_us;       /* total silence after which a peer is dead */

    /*
     * Server-side limits: what peers, however many and whatever they send,
     * can make a server hold. Past a limit new work is refused and what
     * runs goes on: a bind gets BIND_ERR with RPC2_ELIMIT, a call BUSY (it
     * is not run; the client's retries run it once a slot is free). Every
     * refusal is counted in rpc2_ctx_stats.
     */
    uint64_t idle_timeout_us;    /* a connection silent this long is dropped, half-open ones too
                                  * (default 600 s); one with a call running is kept */
    uint32_t max_connections;    /* connections in all (default 100000) */
    uint32_t max_per_address;    /* connections from one IPv4 address or IPv6 /64 (default
                                  * 4096: many real clients share one NAT address) */
    uint32_t cookie_threshold;   /* binds must prove their address with a cookie (one more
                                  * round trip) while this many connections are half-open,
                                  * i.e. made without a cookie and not heard from since;
                                  * 0: always (default 1024) */
    uint32_t max_running;        /* calls running at once, handlers queued for a worker
                                  * included; past it a new CALL is answered BUSY and not
                                  * run (default 1024) */
    uint32_t max_saved_reply;    /* largest reply kept for retransmission, bytes (default
                                  * 65000) */
    uint64_t max_saved_bytes;    /* all saved replies together (default 64 MiB); a reply
                                  * not kept answers a retransmitted CALL with RPC2_ELIMIT */
    /* Shares of max_running, so one user cannot take every slot: calls
     * running at once on the connections of one identity (as named in the
     * bind: proved above level none, only claimed at none), and from one
     * IPv4 address or IPv6 /64. Past a share a new CALL gets BUSY, as past
     * max_running. Defaults: 256 and 256; 0: no share (max_running only). */
    uint32_t max_running_per_identity;
    uint32_t max_running_per_address;
    /* A server's side effect that moves no byte for this long ends with
     * RPC2_ESTALLED, whatever keeps it waiting (the peer's window kept
     * closed, a silent source, a pipe not drained): the handler hears it,
     * the peer gets an ABORT and the reply says it (default 300 s). */
    uint64_t stall_timeout_us;

    /* Server: the lowest security level a bind may ask for (a client asking
     * for less gets RPC2_ESECURITY), and where the secrets of identities
     * come from (NULL: binds above NONE are refused with RPC2_EAUTH). */
    enum rpc2_security min_security;
    rpc2_secret_fn secret_for;
    void *secret_arg;

    rpc2_log_fn log;             /* NULL: no logging */
    void *log_arg;
    enum rpc2_log_level log_level;
};

RPC2_EXPORT void rpc2_params_init(struct rpc2_params *params);

RPC2_EXPORT int rpc2_ctx_new(const struct rpc2_params *params, rpc2_ctx **out);
/* Frees the context, its connections (without telling peers) and sockets.
 * Must not be called while rpc2_ctx_run() is running in another thread. */
RPC2_EXPORT void rpc2_ctx_free(rpc2_ctx *ctx);

/* Runs the context's own loop until rpc2_ctx_stop(). Only for contexts
 * created without params.loop. */
RPC2_EXPORT int rpc2_ctx_run(rpc2_ctx *ctx);
/* Makes rpc2_ctx_run() return; safe from any thread and from callbacks. */
RPC2_EXPORT void rpc2_ctx_stop(rpc2_ctx *ctx);

/*
 * Ends the side effect of every request running (a bounded stop: see
 * rcatd's --drain-time): each transfer fails with status (RPC2_ESHUTDOWN,
 * say), its peer is told with an ABORT, and its handler hears the outcome
 * at once and replies, so the requests end without waiting for their
 * peers. Requests whose side effect is not initialised yet are ended as
 * soon as their handlers try to. Handlers without a side effect are left
 * to finish. Loop thread only.
 */
RPC2_EXPORT void rpc2_ctx_abort_transfers(rpc2_ctx *ctx, int status);

/* The local port of the context's first socket (useful with port 0). */
RPC2_EXPORT int rpc2_ctx_port(const rpc2_ctx *ctx);
/* Live connections: client and server ends, including closing ones. */
RPC2_EXPORT unsigned rpc2_ctx_conn_count(const rpc2_ctx *ctx);

/*
 * Connecting from the other side, for a server whose firewall lets only its
 * own traffic out. The server announces itself from its first socket to a
 * client that listens (params.listen) at host:port, now and every
 * interval_us (at least 1 ms) for the context's life; a stateful firewall
 * then takes the client's bind as an answer, and lets it in. Resolves host
 * (may block on DNS); call before rpc2_ctx_run or on the loop thread. 0,
 * RPC2_EADDR, RPC2_EINVAL, or RPC2_ELIMIT past RPC2_MAX_ANNOUNCE targets.
 *
 * The client hears each announcement through its callback, with the
 * server's address (IPv4 plainly, not as ::ffff:) and the port to bind to.
 * An announcement proves nothing: bind only to a server you expected there;
 * the bind authenticates as any other. Announcements are never answered.
 */
#define RPC2_MAX_ANNOUNCE 8
RPC2_EXPORT int rpc2_ctx_announce(rpc2_ctx *ctx, const char *host, const char *port,
                                  uint64_t interval_us);
typedef void (*rpc2_announce_fn)(const char *host, unsigned port, void *arg);
/* NULL: announcements are dropped (counted as announces_ignored). On the
 * loop thread, or before rpc2_ctx_run. */
RPC2_EXPORT void rpc2_ctx_on_announce(rpc2_ctx *ctx, rpc2_announce_fn fn, void *arg);

/* Server: whether to end the connection bound by identity at level (the
 * identity proved above RPC2_SEC_NONE, only claimed at it). */
typedef int (*rpc2_conn_filter)(const char *identity, enum rpc2_security level, void *arg);
/* Server: ends at once every connection for which end says so, a revoked
 * identity's say: a call running on it loses its transfer (its handler's
 * wait ends with an error) and its reply; the client hears UNKNOWN_CONN at
 * level none, and above it (where it believes nothing unprotected) finds
 * the server silent. Returns how many ended. On the loop thread only. */
RPC2_EXPORT unsigned rpc2_ctx_end_connections(rpc2_ctx *ctx, rpc2_conn_filter end, void *arg);

struct rpc2_ctx_stats {
    uint64_t packets_sent, packets_received, bytes_sent, bytes_received;
    uint64_t calls_sent, calls_completed, retransmissions, busy_sent, busy_received;
    uint64_t calls_executed, duplicate_requests, replies_resent;
    uint64_t rejected_short, rejected_version, rejected_type, rejected_length, rejected_flags;
    uint64_t rejected_unknown_conn, rejected_other;
    uint64_t rejected_check; /* the packet check (or MAC) did not match: corrupted */
    uint64_t rejected_auth;   /* a protected packet failed authentication: forged or damaged */
    uint64_t rejected_replay; /* a protected packet seen before (or too old): replayed */
    uint64_t binds_refused_auth; /* unknown identity, wrong secret, or a level below the minimum */
    uint64_t binds_accepted, binds_refused, unbinds, connections_expired;
    /* Binds refused for a limit (a subset of binds_refused): max_connections,
     * max_per_address. */
    uint64_t binds_refused_limit, binds_refused_address;
    /* Binds that needed a cookie and came without one, with a forged one, or
     * with one too old; each was answered with a fresh cookie (cookies_sent)
     * and left no state behind. */
    uint64_t binds_cookie_missing, binds_cookie_bad, binds_cookie_stale, cookies_sent;
    uint64_t calls_deferred;    /* new CALLs answered BUSY because max_running calls ran */
    /* ... because the identity's or the address's share of them ran */
    uint64_t calls_deferred_identity, calls_deferred_address;
    uint64_t transfers_stalled; /* side effects ended by stall_timeout_us */
    uint64_t replies_not_saved; /* over max_saved_reply or max_saved_bytes */
    /* Datagrams the kernel dropped on our sockets, mostly because the
     * receive buffer was full (SO_RXQ_OVFL); learnt as later ones arrive. */
    uint64_t rx_dropped;
    /* ICMP errors about what a client sent (rpc2/refused.c): those that
     * ended a bind or call with RPC2_ECONNREFUSED at once, and those not
     * believed (stale, not about a waiting bind or call, or other kinds). */
    uint64_t icmp_refused, icmp_ignored;
    /* Gauges, what is held now: connections (client and server ends, as
     * rpc2_ctx_conn_count), the half-open ones, calls running (handlers
     * queued for a worker included), bytes of saved replies. */
    uint64_t connections, connections_half_open, requests_running, saved_reply_bytes;
    /* Server: X25519 key exchanges run for binds (one per secure bind that
     * proved its secret and was not a replay); binds refused because their
     * client hello was seen before (a replay: no key exchange spent). */
    uint64_t key_exchanges, binds_refused_replay;
    /* Answers to peers not proven to receive at their address (UNKNOWN_CONN,
     * VERSION_ERR, cookies, BIND_ERR, UNBIND_ACK of an unknown connection)
     * left unsent by the rate limit per source prefix (docs/SECURITY.md). */
    uint64_t answers_limited;
    /* Connecting from the other side (rpc2_ctx_announce): announcements
     * sent; heard and told to rpc2_ctx_on_announce's callback; heard with
     * no callback set (dropped). */
    uint64_t announces_sent, announces_heard, announces_ignored;
};
RPC2_EXPORT void rpc2_ctx_stats(const rpc2_ctx *ctx, struct rpc2_ctx_stats *out);

/* ---- server side ------------------------------------------------------ */

/*
 * An async handler runs on the loop thread and must not block. It answers,
 * now or later, with exactly one rpc2_reply() on its request; until then
 * the client is kept waiting with BUSY answers to its retries.
 *
 * A blocking handler runs on a worker thread (params.workers > 0) and may
 * block; its return value is the reply status. One that moves a file
 * should not wait on the network in the worker: rpc2_se_transfer_then
 * (se.h) runs the transfer on the loop and continues the handler on a
 * worker once it is over.
 *
 * A proc may have both: its async handler runs first, on the loop, and
 * either answers the call itself (rpc2_reply) or passes it on with
 * rpc2_request_to_worker, after which the blocking handler has it, as if
 * the proc had no other. So the common case of a call can be served
 * without the two thread hops a worker costs, and what might block (a
 * path the loop cannot resolve from memory, say) still goes to a worker.
 *
 * Status: 0 for success (the result is encoded and sent), a positive
 * application code (sent as is, no result), or a negative rpc2 error.
 */
typedef void (*rpc2_async_handler)(rpc2_request *req, void *args, void *result, void *arg);
typedef int (*rpc2_blocking_handler)(rpc2_request *req, void *args, void *result, void *arg);

struct rpc2_proc {
    uint32_t proc;
    xdrproc_t decode_args; /* rpcgen's xdr_<type> for the arguments */
    size_t args_size;      /* sizeof the argument type */
    xdrproc_t encode_result;
    size_t result_size;
    rpc2_async_handler async_handler;       /* one of these two, or both (above) */
    rpc2_blocking_handler blocking_handler;
    /* Blocking handlers that are quick and never wait on a peer (a stat, a
     * directory page): they go ahead of the other queued ones, and with three
     * workers or more one worker is kept for them alone, so they never
     * queue behind slow calls. */
    int quick;
};

/* Exports a subsystem: binds naming it are accepted and calls on those
 * connections go to procs[]. The table is copied; arg goes to handlers. */
RPC2_EXPORT int rpc2_export(rpc2_ctx *ctx, uint32_t subsystem, const struct rpc2_proc *procs,
                            size_t n_procs, void *arg);

/* From the async handler of a proc that has both handlers, on the loop,
 * before it answered or started a side effect: the call goes to the
 * blocking handler on a worker, and that answers it. 0, or RPC2_EINVAL
 * (the proc has not both handlers, the call was passed on already, or its
 * side effect has begun: rpc2_se_check_async, rpc2_se_transfer_then*, a
 * suspension) or another error (no worker could take it): the async
 * handler still has the call to answer. */
RPC2_EXPORT int rpc2_request_to_worker(rpc2_request *req);

/* Sends the reply of an async handler. Safe only on the loop thread. */
RPC2_EXPORT int rpc2_reply(rpc2_request *req, int status);

/* Who made the request, as "ADDR:PORT" (IPv6 in brackets). */
RPC2_EXPORT const char *rpc2_request_peer(const rpc2_request *req);
RPC2_EXPORT uint32_t rpc2_request_proc(const rpc2_request *req);
/* The client identity named in the bind: proved by its secret above level
 * none, only claimed at none. */
RPC2_EXPORT const char *rpc2_request_identity(const rpc2_request *req);
/* The security level of the connection the request came on. */
RPC2_EXPORT enum rpc2_security rpc2_request_security(const rpc2_request *req);

/* ---- client side ------------------------------------------------------ */

struct rpc2_bind_params {
    const char *host;     /* name or address literal */
    const char *port;     /* service name or number */
    uint32_t subsystem;
    enum rpc2_security security;
    uint32_t se_type;     /* side-effect type; 0: none */
    const char *identity; /* client identity, at most 255 bytes; NULL: "" */
    /* Above NONE: the identity's secret (RPC2_SECRET_BYTES), used for the
     * handshake only and not kept. */
    const unsigned char *secret;
};

/* Binds to a server (a handshake): blocks until bound or failed. */
RPC2_EXPORT int rpc2_bind(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, rpc2_conn **out);

typedef void (*rpc2_bind_cb)(int status, rpc2_conn *conn, void *arg);
RPC2_EXPORT int rpc2_bind_async(rpc2_ctx *ctx, const struct rpc2_bind_params *bp,
                                rpc2_bind_cb cb, void *arg);

/* Tells the server the connection is over and frees the handle at once;
 * the notice is retransmitted in the background until acknowledged. */
RPC2_EXPORT void rpc2_unbind(rpc2_conn *conn);

struct rpc2_se_desc;

struct rpc2_call_opts {
    uint32_t timeout_us;     /* the whole call; 0: no limit but the dead-peer silence */
    struct rpc2_se_desc *se; /* side-effect descriptor (se.h); NULL: none */
};

/*
 * A call's outcome is one int, in three disjoint ranges:
 *   0    success: the handler returned 0 and its result is decoded;
 *   > 0  an application status: what the server's handler returned (or
 *        passed to rpc2_reply), sent as is; the library never makes one,
 *        and no result is decoded;
 *   < 0  an rpc2 error (enum rpc2_error). It is this side's (the transport:
 *        RPC2_EDEAD, RPC2_ETIMEDOUT, RPC2_ECONNREFUSED...; a side effect
 *        that failed here: its descriptor's local_status says FAILURE and
 *        its error which) or the server's (a refused bind, a handler that
 *        returned a negative code, a side effect that failed there:
 *        remote_status FAILURE). Handlers should return positive statuses
 *        for their own outcomes and leave negative ones to the library.
 * rpc2_app_status() and rpc2_lib_error() take the two apart.
 */
static inline int rpc2_app_status(int rc)
{
    return rc > 0 ? rc : 0;
}
static inline int rpc2_lib_error(int rc)
{
    return rc < 0 ? rc : 0;
}

/*
 * Makes a call and waits for its reply. Returns 0 (result decoded into
 * *result), a positive application status, or a negative rpc2 error (see
 * above).
 * From the loop thread it runs the loop until done; from another thread
 * (with the loop running elsewhere) it hands the call to the loop and waits.
 */
RPC2_EXPORT int rpc2_call(rpc2_conn *conn, uint32_t proc, xdrproc_t encode_args, const void *args,
                          xdrproc_t decode_result, void *result, const struct rpc2_call_opts *opts);

typedef void (*rpc2_call_cb)(int status, void *result, void *arg);
/* Starts a call; cb runs on the loop thread with the outcome. */
RPC2_EXPORT int rpc2_call_async(rpc2_conn *conn, uint32_t proc, xdrproc_t encode_args,
                                const void *args, xdrproc_t decode_result, void *result,
                                const struct rpc2_call_opts *opts, rpc2_call_cb cb, void *arg);

/* Cancels the call in flight on conn, if any: its callback gets
 * RPC2_ECANCELED (a blocking rpc2_call returns it). The server may still
 * run it (at most once). A transfer the call carried ends at both ends:
 * the server's side effect hears RPC2_ECANCELED through an ABORT, an atomic
 * sink's temporary is removed at both ends, and the connection takes the
 * next call. Safe from the loop thread (a callback, a transfer event) and
 * from any other thread while rpc2_ctx_run runs the loop: the cancel is
 * then handed to the loop, and the call ends there shortly after (0 is
 * returned at once; a call that finished meanwhile is not affected). */
RPC2_EXPORT int rpc2_cancel(rpc2_conn *conn);

/* Smoothed round-trip time of the connection in microseconds, 0 if unknown. */
RPC2_EXPORT uint32_t rpc2_conn_srtt_us(const rpc2_conn *conn);

#ifdef __cplusplus
}
#endif

#endif
