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
};

/* ---- ops.c ---- */

/* One attempt at a call on s's connection: the call a signal or --max-time
 * cancels while it runs. 0 or an rpc2 error. */
int ops_call_once(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                  xdrproc_t dec, void *result, struct rpc2_se_desc *d);

/* ---- ops_conn.c ---- */

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

/* ---- ops_browse.c ---- */

/* A STAT of path into *info (cleared first); 0 or an rpc2 error. */
int ops_stat_call(struct ops *o, struct slot *s, const char *path, file_info *info);

#endif
