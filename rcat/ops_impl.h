/*
 * ops_impl.h - what rcat's operations (ops.h) share between their files:
 * the run's state, one slot per server, and the calls every operation is
 * made of. Only the ops*.c files include it.
 */
#ifndef RCAT_OPS_IMPL_H
#define RCAT_OPS_IMPL_H

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "rcat_proto.h"
#include "ops.h"
#include "report.h"

#define SESSION_ID_LEN 36 /* a UUID in text */

/* One server: its connection, and whether it is lost for this run. */
struct slot {
    char host[URL_HOST_MAX + 1];
    unsigned port;
    rpc2_conn *conn;
    int lost; /* the error that ended it: later operands fail at once, not after a timeout */
    char session[SESSION_ID_LEN + 1];
};

struct ops {
    struct ops_config cfg;
    uint32_t dead_peer_us;
    struct ev_loop *loop;
    ev_signal sigs[3];
    size_t n_sigs; /* those not ignored */
    rpc2_ctx *ctx;
    struct slot *slots; /* cfg.servers of them, allocated at start */
    size_t n_slots;
    rpc2_conn *in_call;      /* what a signal or the time limit cancels */
    struct ratectl *ratectl; /* live rate changes (ratectl.h) */
    int signal;
    /* SIGPIPE was at its default when rcat started: see watch_signals */
    int sigpipe_default;
    ev_timer time_limit; /* --max-time, armed for the whole run */
    int timed_out;       /* it fired: what runs is cancelled, what follows is not tried */
    uint64_t started_us; /* when ops_new ran: --max-time counts from it */
    int last_error;      /* the rpc2 error of the last failure a retry could repeat; 0: none */
    struct announced *awaited; /* --listen: the announcement bind_slot waits for */
    /* Above level none: the identity's secret, kept for the whole run (a
     * server that forgot the connection is bound again) and wiped at the end. */
    unsigned char secret[RPC2_SECRET_BYTES];
    /* Several calls in flight (jobs.c): what a signal or --max-time
     * cancels instead of in_call alone; NULL when one call runs at a time. */
    void (*cancel_all)(void *arg);
    void *cancel_all_arg;
};

/* ---- ops.c ---- */

/* One attempt at a call on s's connection: the call a signal or --max-time
 * cancels while it runs. 0 or an rpc2 error. */
int ops_call_once(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                  xdrproc_t dec, void *result, struct rpc2_se_desc *d);

/* Watches SIGINT, SIGTERM and SIGHUP (they cancel what runs) or stops. */
void ops_watch(struct ops *o, int on);
/* Runs the loop for up to seconds, or until *done (NULL: never), a signal
 * or --max-time: the one wait between attempts and for a peer. */
void ops_wait(struct ops *o, double seconds, const int *done);

/* ---- ops_conn.c ---- */

/* Binds s (host and port filled in) without waiting; cb gets the outcome,
 * and ops_slot_bound then names the connection. */
int ops_bind_async(struct ops *o, const struct slot *s, rpc2_bind_cb cb, void *arg);
void ops_slot_bound(struct slot *s, rpc2_conn *conn);
/* As ops_fail, for a call made with rpc2_call_async on s (jobs.c): an
 * error that ends the connection also ends s for the run. */
int ops_fail_lane(struct ops *o, struct slot *s, int rc, const struct rpc2_se_desc *d,
                  const char *remote, const char *local, const char **name);
/* As ops_fail, for a file that failed before any transfer of it began
 * (a FILEERROR, counted as failed). */
int ops_fail_file(struct ops *o, const struct slot *s, int rc, const char *remote,
                  const char *local);
/* Whether a call's error ends its connection for the run. */
int ops_conn_lost(int rc);
/* rpc2_ctx_on_announce's callback (--listen). */
void ops_on_announce(const char *host, unsigned port, void *arg);

/* The connection for u's server: bound on first use, reused after. Returns
 * 0 or the rpc2 error of the bind (now or earlier in the run); *out is
 * NULL only past ops_config.servers servers. */
int ops_connect(struct ops *o, const struct url *u, struct slot **out);
/* A call as an operation makes it: a server that forgot the connection is
 * bound again and the call done again, when that repeats nothing. */
int ops_call(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
             xdrproc_t dec, void *result, struct rpc2_se_desc *d);
/* Reports a failed call (s may be NULL); returns its exit code, and its
 * name for STOP in *name. */
int ops_fail(struct ops *o, const struct slot *s, int rc, const struct rpc2_se_desc *d,
             const char *remote, const char *local, const char **name);

/* ---- ops_xfer.c ---- */

/* One transfer, as the library's events (rpc2/event.h) tell it during the
 * call: each goes to report.c as delivered, which prints it (ERROR and STOP
 * after the call has returned, with rcat's judgement of the outcome). */
struct xfer {
    struct ops *o;
    struct report_xfer rep;
    uint64_t retrans0;      /* the context's count when the transfer began */
    struct rpc2_event stop; /* the library's STOP of the last attempt */
    unsigned char sum[16];
    int stopped;
    int reopened; /* its local file is opened afresh by each attempt */
};

/* Every transfer gets its STOP (xfer_end), whatever stage it fails at. */
void xfer_begin(struct xfer *x, struct ops *o, int send, const char *file, const char *dest,
                int64_t size, struct rpc2_se_desc *d);
void xfer_end(struct xfer *x, const struct rpc2_se_desc *d, int code, const char *result);

/* ---- ops_browse.c ---- */

/* Every entry of the remote directory path ("" is the root), page by
 * page: 0, or an rpc2 error or rcat status; what fn returns non-zero
 * stops the listing and is returned. */
typedef int (*ops_entry_fn)(const char *name, const file_info *info, void *arg);
int ops_list_dir(struct ops *o, struct slot *s, const char *path, ops_entry_fn fn, void *arg);
/* A STAT of path into *info (cleared first); 0 or an rpc2 error. */
int ops_stat_call(struct ops *o, struct slot *s, const char *path, file_info *info);

#endif
