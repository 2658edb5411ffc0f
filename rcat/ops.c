/*
 * ops.c - rcat's operations, on the public rpc2 API only: one context on a
 * libev loop rcat owns (so that a signal can cancel the call in flight),
 * one connection per server reused for every operand naming it. What a
 * failure means is judged in verdict.c; the local files are localfile.c's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <ev.h>
#include <rpc2/event.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"
#include "ops.h"
#include "localfile.h"
#include "policy.h"
#include "report.h"
#include "verdict.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

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
    rpc2_conn *in_call; /* what a signal or the time limit cancels */
    struct ratectl *ratectl; /* live rate changes (ratectl.h) */
    int signal;
    /* SIGPIPE was at its default when rcat started: see watch_signals */
    int sigpipe_default;
    ev_timer time_limit; /* --max-time, armed for the whole run */
    int timed_out;       /* it fired: what runs is cancelled, what follows is not tried */
    uint64_t started_us; /* when ops_new ran: --max-time counts from it */
    int last_error;      /* the rpc2 error of the last failure a retry could repeat; 0: none */
    /* Above level none: the identity's secret, kept for the whole run (a
     * server that forgot the connection is bound again) and wiped at the end. */
    unsigned char secret[RPC2_SECRET_BYTES];
};

static struct slot *find_slot(struct ops *o, const struct url *u);

static uint64_t now_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- signals --------------------------------------------------------------- */

static void die_by_signal(int sig)
{
    sigset_t set;

    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* Cancelling the call lets the library remove an atomic fetch's temporary
 * before rcat dies. A second signal does not wait for that. */
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct ops *o = w->data;

    (void)loop;
    (void)revents;
    if (o->signal || !o->in_call) {
        report_done(128 + w->signum);
        die_by_signal(w->signum);
    }
    o->signal = w->signum;
    rpc2_cancel(o->in_call);
}

/* --max-time: the call in flight is cancelled (an atomic fetch leaves no
 * temporary); a bind in progress is abandoned (bind_slot); every later
 * operand fails at once. */
static void on_time_limit(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ops *o = w->data;

    (void)loop;
    (void)revents;
    o->timed_out = 1;
    if (o->in_call)
        rpc2_cancel(o->in_call);
}

static void start_time_limit(struct ops *o)
{
    if (!o->cfg.max_time_us)
        return;
    ev_timer_init(&o->time_limit, on_time_limit, (double)o->cfg.max_time_us / 1e6, 0.);
    o->time_limit.data = o;
    ev_timer_start(o->loop, &o->time_limit);
}

/* A signal ignored when rcat started (nohup's SIGHUP, SIGINT in a
 * background job) stays ignored. */
static void init_signals(struct ops *o)
{
    static const int which[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction was;

    o->sigpipe_default = sigaction(SIGPIPE, NULL, &was) == 0 && was.sa_handler == SIG_DFL;
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++) {
        if (sigaction(which[i], NULL, &was) == 0 && was.sa_handler == SIG_IGN)
            continue;
        ev_signal_init(&o->sigs[o->n_sigs], on_signal, which[i]);
        o->sigs[o->n_sigs++].data = o;
    }
}

/* Watched only while a call runs: outside one there is nothing to clean
 * up, and the default action also interrupts what blocks outside the loop
 * (opening a FIFO that has no reader yet). SIGPIPE is ignored while a call
 * runs: a reader gone mid-fetch (`rcat URL | head`) then fails the write,
 * the transfer is aborted and the server told at once, instead of waiting
 * for a peer that died (fetch_into then ends rcat by SIGPIPE, as cat). */
static void watch_signals(struct ops *o, int on)
{
    if (o->sigpipe_default)
        signal(SIGPIPE, on ? SIG_IGN : SIG_DFL);
    for (size_t i = 0; i < o->n_sigs; i++) {
        if (on)
            ev_signal_start(o->loop, &o->sigs[i]);
        else
            ev_signal_stop(o->loop, &o->sigs[i]);
    }
}

void ops_exit_if_interrupted(struct ops *o)
{
    int sig = o->signal;

    if (!sig)
        return;
    report_done(128 + sig);
    report_flush_stdout();
    ops_free(o);
    die_by_signal(sig);
}

/* ---- the context and connections -------------------------------------- */

static void on_log(enum rpc2_log_level level, const char *message, void *arg)
{
    (void)arg;
    report_library_log((int)level, message);
}

/* The key file's error names the file first ("FILE: why"): the file goes
 * to report_error's FILE, the rest is the text. The library never puts any
 * part of the secret in it. */
static int fail_key_file(const char *path, int rc, const char *err)
{
    size_t n = strlen(path);
    const char *why = err;

    if (!strncmp(err, path, n) && err[n] == ':' && err[n + 1] == ' ')
        why = err + n + 2;
    else if (!*err)
        why = rpc2_strerror(rc);
    report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), path, "unusable key file: %s", why);
    return RCAT_EXIT_LOCAL;
}

static int load_secret(struct ops *o)
{
    char err[512] = "";
    int rc;

    if (o->cfg.security == RPC2_SEC_NONE)
        return RCAT_EXIT_OK; /* an explicit --security none: the key is not needed */
    rc = rpc2_keys_load_secret(o->cfg.key_file, o->secret, err, sizeof err);
    return rc == 0 ? RCAT_EXIT_OK : fail_key_file(o->cfg.key_file, rc, err);
}

int ops_new(const struct ops_config *c, struct ops **out)
{
    struct ops *o = calloc(1, sizeof *o);
    struct rpc2_params p;
    int rc;

    *out = NULL;
    if (!o || !(o->loop = ev_default_loop(0))) {
        free(o);
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", NULL, "cannot start the event loop");
        return RCAT_EXIT_LOCAL;
    }
    o->cfg = *c;
    o->slots = calloc(c->servers ? c->servers : 1, sizeof *o->slots);
    if (!o->slots) {
        ops_free(o);
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", NULL, "out of memory");
        return RCAT_EXIT_LOCAL;
    }
    rc = load_secret(o);
    if (rc != RCAT_EXIT_OK) {
        ops_free(o);
        return rc;
    }
    rpc2_params_init(&p);
    p.loop = o->loop;
    if (c->dead_peer_us)
        p.dead_peer_us = c->dead_peer_us;
    o->dead_peer_us = p.dead_peer_us;
    if (c->verbose) {
        p.log = on_log;
        p.log_level = RPC2_LOG_DEBUG;
    }
    rc = rpc2_ctx_new(&p, &o->ctx);
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp);
    ratectl_params(&c->rate, &sp);
    if (rc == 0)
        rc = rpc2_sftp_activate(o->ctx, &sp);
    if (rc != 0) {
        report_error(RCAT_EXIT_LOCAL, rpc2_errname(rc), NULL, "cannot set up rpc2: %s",
                     rpc2_strerror(rc));
        ops_free(o);
        return RCAT_EXIT_LOCAL;
    }
    init_signals(o);
    o->ratectl = ratectl_start(&c->rate, o->loop, &o->in_call, report_info);
    o->started_us = now_mono_us();
    start_time_limit(o);
    *out = o;
    return RCAT_EXIT_OK;
}

void ops_free(struct ops *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_slots; i++)
        rpc2_unbind(o->slots[i].conn);
    if (o->loop)
        ev_timer_stop(o->loop, &o->time_limit);
    free(o->slots);
    ratectl_stop(o->ratectl);
    rpc2_ctx_free(o->ctx);
    explicit_bzero(o->secret, sizeof o->secret);
    free(o);
}

/* ---- what a retry needs (retry.c) ------------------------------------------ */

rpc2_ctx *ops_ctx(struct ops *o)
{
    return o->ctx;
}

int ops_last_error(const struct ops *o)
{
    return o->signal ? 0 : o->last_error;
}

uint64_t ops_time_left_us(const struct ops *o)
{
    uint64_t used = now_mono_us() - o->started_us;

    if (!o->cfg.max_time_us)
        return UINT64_MAX;
    return o->timed_out || used >= o->cfg.max_time_us ? 0 : o->cfg.max_time_us - used;
}

void ops_watch_signals(struct ops *o)
{
    watch_signals(o, 1); /* the next call stops watching when it ends */
}

void ops_begin_attempt(struct ops *o, const struct url *u, int again)
{
    struct slot *s = find_slot(o, u);

    o->last_error = 0;
    if (!s || !again)
        return;
    rpc2_unbind(s->conn);
    s->conn = NULL;
    s->lost = 0;
}

static void new_session_id(char *out)
{
    unsigned char b[16];

    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 4 * 8) ^ (unsigned)getpid() >> i ^
                                   (uint64_t)ts.tv_sec >> (i % 8 * 8));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* the RFC 4122 variant */
    snprintf(out, SESSION_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* A bind rcat may stop waiting for (--max-time): abandoned, it lives on
 * until the library ends it, and then frees itself. */
struct pending_bind {
    int done, status, abandoned;
    rpc2_conn *conn;
};

static void on_bound(int status, rpc2_conn *conn, void *arg)
{
    struct pending_bind *b = arg;

    if (b->abandoned) {
        if (status == 0)
            rpc2_unbind(conn);
        free(b);
        return;
    }
    b->done = 1;
    b->status = status;
    b->conn = conn;
}

static int bind_within_time(struct ops *o, const struct rpc2_bind_params *bp, rpc2_conn **out)
{
    struct pending_bind *b = calloc(1, sizeof *b);
    int rc;

    *out = NULL;
    if (!b)
        return RPC2_ENOMEM;
    rc = rpc2_bind_async(o->ctx, bp, on_bound, b);
    if (rc != 0) {
        free(b);
        return rc;
    }
    while (!b->done && !o->timed_out)
        ev_run(o->loop, EVRUN_ONCE);
    if (!b->done) {
        b->abandoned = 1;
        return RPC2_ETIMEDOUT;
    }
    rc = b->status;
    *out = b->conn;
    free(b);
    return rc;
}

static int bind_slot(struct ops *o, struct slot *s)
{
    char port[8];
    struct rpc2_bind_params b = {
        .host = s->host,
        .port = port,
        .subsystem = RCAT_SUBSYS,
        .se_type = RPC2_SE_SFTP,
        .security = o->cfg.security,
        /* without one, the name tells the server's log what connected */
        .identity = o->cfg.identity ? o->cfg.identity : "rcat/" PACKAGE_VERSION,
        .secret = o->cfg.security != RPC2_SEC_NONE ? o->secret : NULL,
    };
    int rc;

    snprintf(port, sizeof port, "%u", s->port);
    report_info("connecting to %s port %u", s->host, s->port);
    rc = o->timed_out ? RPC2_ETIMEDOUT : bind_within_time(o, &b, &s->conn);
    if (rc != 0) {
        s->conn = NULL;
        s->lost = rc;
        return rc;
    }
    new_session_id(s->session);
    report_session(s->session, s->host, s->port);
    return 0;
}

static struct slot *find_slot(struct ops *o, const struct url *u)
{
    for (size_t i = 0; i < o->n_slots; i++)
        if (o->slots[i].port == u->port && !strcmp(o->slots[i].host, u->host))
            return &o->slots[i];
    return NULL;
}

static struct slot *add_slot(struct ops *o, const struct url *u)
{
    struct slot *s;

    if (o->n_slots == (o->cfg.servers ? o->cfg.servers : 1))
        return NULL;
    s = &o->slots[o->n_slots++];
    memcpy(s->host, u->host, sizeof s->host);
    s->port = u->port;
    return s;
}

/* The connection for u's server: bound on first use, reused after. Returns
 * 0 or the rpc2 error of the bind (now or earlier in the run). */
static int connect_slot(struct ops *o, const struct url *u, struct slot **out)
{
    struct slot *s = find_slot(o, u);

    if (!s)
        s = add_slot(o, u);
    *out = s;
    if (!s)
        return RPC2_ELIMIT; /* more servers than ops_config said */
    if (s->lost)
        return s->lost;
    return s->conn ? 0 : bind_slot(o, s);
}

/* Reports a failed call; returns its exit code, and its name for STOP. */
static int fail(struct ops *o, const struct slot *s, int rc, const struct rpc2_se_desc *d,
                const char *remote, const char *local, const char **name)
{
    struct verdict_peer peer = {.host = s ? s->host : "the server",
                                .port = s ? s->port : 0,
                                .dead_peer_us = o->dead_peer_us,
                                .max_time_us = o->cfg.max_time_us,
                                .security = o->cfg.security,
                                .no_clobber = o->cfg.no_clobber};
    struct verdict v;

    if (rc == RPC2_ECANCELED && o->signal) {
        *name = "INTERRUPTED";
        return 128 + o->signal;
    }
    if (rc == RPC2_ECANCELED && o->timed_out)
        rc = RPC2_ETIMEDOUT;
    o->last_error = rc < 0 ? rc : 0;
    verdict_judge(&peer, rc, d, remote, local, &v);
    report_error(v.code, v.name, v.file, "%s", v.text);
    *name = v.name;
    return v.code;
}

/* ---- calls ----------------------------------------------------------------- */

static int call_once(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                     xdrproc_t dec, void *result, struct rpc2_se_desc *d)
{
    struct rpc2_call_opts opts = {.se = d};
    int rc;

    if (o->timed_out)
        return RPC2_ETIMEDOUT;
    o->in_call = s->conn;
    watch_signals(o, 1);
    rc = rpc2_call(s->conn, proc, enc, args, dec, result, &opts);
    watch_signals(o, 0);
    o->in_call = NULL;
    return rc;
}

/* Doing it again must not repeat bytes already written, nor lose bytes
 * already read: a store's source may be a pipe, and even a file's position
 * has moved, so only fetches are done again. */
static int restartable(const struct rpc2_se_desc *d)
{
    if (!d)
        return 1;
    return d->direction == RPC2_SE_FETCH &&
           (d->file_kind == RPC2_SE_FILE_NAME || d->bytes_transferred == 0);
}

/* A server that forgot the connection (restarted, or expired it) is bound
 * again once; a server that stopped answering is given up for the run. */
static int call(struct ops *o, struct slot *s, uint32_t proc, xdrproc_t enc, const void *args,
                xdrproc_t dec, void *result, struct rpc2_se_desc *d)
{
    int rc = call_once(o, s, proc, enc, args, dec, result, d);

    if (rc == RPC2_EUNKNOWNCONN && restartable(d) && !o->signal) {
        report_info("%s port %u forgot the connection; connecting again", s->host, s->port);
        rpc2_unbind(s->conn);
        s->conn = NULL;
        rc = bind_slot(o, s);
        if (rc == 0)
            rc = call_once(o, s, proc, enc, args, dec, result, d);
    }
    if (rc == RPC2_EDEAD || rc == RPC2_ECLOSED || rc == RPC2_ESEFAIL2)
        s->lost = rc;
    return rc;
}

static uint64_t call_retransmissions(const struct ops *o)
{
    struct rpc2_ctx_stats st;

    rpc2_ctx_stats(o->ctx, &st);
    return st.retransmissions;
}

/* One transfer, as the library's events (rpc2/event.h) tell it during the
 * call: each goes to report.c as delivered, which prints it (ERROR and STOP
 * after the call has returned, with rcat's judgement of the outcome). */
struct xfer {
    struct ops *o;
    struct report_xfer rep;
    uint64_t retrans0; /* the context's count when the transfer began */
    struct rpc2_event stop; /* the library's STOP of the last attempt */
    unsigned char sum[16];
    int stopped;
    int reopened; /* its local file is opened afresh by each attempt */
};

static int on_event(const struct rpc2_event *ev, void *arg)
{
    struct xfer *x = arg;

    if (ev->type == RPC2_EVENT_STOP) {
        x->stop = *ev;
        x->stop.policy = x->stop.error_name = x->stop.error_description = NULL;
        x->stop.checksum_type = NULL;
        x->stop.desc = NULL;
        x->stop.checksum = NULL;
        if (ev->checksum && ev->checksum_len == sizeof x->sum) {
            memcpy(x->sum, ev->checksum, sizeof x->sum);
            x->stop.checksum = x->sum;
        }
        x->stopped = 1;
    }
    if (ev->type == RPC2_EVENT_STATS)
        ratectl_sync(x->o->ratectl);
    report_xfer_event(&x->rep, ev, call_retransmissions(x->o) - x->retrans0);
    return RPC2_EVENT_CONTINUE;
}

/* Every transfer operand gets its STOP, whatever stage it fails at; the
 * session is filled in once connected. */
static void xfer_begin(struct xfer *x, struct ops *o, int send, const char *file, const char *dest,
                       int64_t size, struct rpc2_se_desc *d)
{
    x->o = o;
    x->stopped = 0;
    x->reopened = 0;
    o->last_error = 0;
    x->retrans0 = call_retransmissions(o);
    d->event = on_event;
    d->event_arg = x;
    d->stats_interval_us = report_stats_interval_us();
    d->sum_type = o->cfg.sum.type;
    memcpy(d->expect_sum, o->cfg.sum.expect, sizeof d->expect_sum);
    d->expect_sum_len = o->cfg.sum.expect_len;
    report_xfer_begin(&x->rep, NULL, send, file, dest, size);
}

static int xfer_connect(struct xfer *x, const struct url *u, struct slot **s, const char **result)
{
    int rc = connect_slot(x->o, u, s);

    if (rc != 0)
        return fail(x->o, *s, rc, NULL, u->path, NULL, result);
    x->rep.session = (*s)->session;
    return RCAT_EXIT_OK;
}

/* -C (or a retry): the library keeps restart points and continues from the
 * last one the source confirms, for a whole file whose sink is a file by
 * name (a fetch's -o FILE; a store's server keeps them when asked); a
 * retry into anything else starts again from 0. */
static void resume_describe(const struct ops *o, struct rpc2_se_desc *d, int sink_by_name)
{
    d->resume = o->cfg.resume && sink_by_name && o->cfg.offset == 0 && o->cfg.length < 0;
    d->resume_fail_changed = o->cfg.resume_strict;
    d->resume_interval = o->cfg.resume_interval;
}

/* STOP: the library's, once the call has returned; a transfer that never
 * reached the library (a local file that would not open, a server not
 * reached) has none, and is told from its descriptor, which says nothing
 * moved. Bytes that went through a descriptor rcat cannot rewind (standard
 * output, a FIFO, standard input) cannot be moved again by a retry. */
static void xfer_end(struct xfer *x, const struct rpc2_se_desc *d, int code, const char *result)
{
    struct rpc2_event none = {
        .file_bytes = d->bytes_transferred,
        .start_byte = d->seek_offset + (int64_t)d->resumed_from,
        .end_byte = d->quota >= 0 ? d->seek_offset + d->quota - 1 : -1,
        .size = -1,
        .packets_retransmitted = d->stats.retransmissions,
        .duplicates = d->stats.duplicates,
    };
    const struct rpc2_event *ev = x->stopped ? &x->stop : &none;

    if (code != RCAT_EXIT_OK && x->o->last_error && d->file_kind == RPC2_SE_FILE_FD &&
        d->bytes_transferred > 0 && !x->reopened) {
        report_info("not retried: bytes already went through %s",
                    x->rep.send ? x->rep.label : x->rep.dest);
        x->o->last_error = 0;
    }

    uint64_t retrans = ev->packets_retransmitted + call_retransmissions(x->o) - x->retrans0;

    struct report_sum sum = {.type = "xxh128", .bytes = d->checksum, .len = 16};

    if (d->sum_len) { /* the sum asked for; else the transfer's own, which is xxh128 */
        sum = (struct report_sum){rpc2_se_sum_name(d->sum_type), d->sum, d->sum_len};
    } else if (!d->checksum_valid) {
        sum.len = 0;
    }
    if (code != RCAT_EXIT_OK && !d->expect_sum_len)
        sum.len = 0; /* a failure's sum says nothing, unless it is why it failed */
    if (x->rep.size < 0 && ev->size >= 0)
        x->rep.size = ev->size;
    report_xfer_range(&x->rep, ev->start_byte, ev->end_byte);
    if (d->resume)
        report_xfer_resumed(&x->rep, d->resume_started_over, d->resume_note);
    report_xfer_end(&x->rep, ev->file_bytes, retrans, ev->duplicates, code, result, &sum);
}

/* The bytes the range selects from a file of this size. */
static int64_t range_size(const struct ops *o, uint64_t size)
{
    uint64_t off = (uint64_t)o->cfg.offset;
    uint64_t left = size > off ? size - off : 0;

    if (o->cfg.length >= 0 && (uint64_t)o->cfg.length < left)
        left = (uint64_t)o->cfg.length;
    return left > INT64_MAX ? INT64_MAX : (int64_t)left;
}

static const char *remote_path(const struct url *u)
{
    return u->path[0] ? u->path : "."; /* the server's root */
}

static const char *shown_path(const struct url *u)
{
    return u->path[0] ? u->path : "/";
}

/* ---- fetch ------------------------------------------------------------------ */

/* The size the bar and events show, when they want one, and the room a
 * file by name must have before the first byte moves: a STAT first. */
static int probe_size(struct ops *o, struct slot *s, const struct url *src, const struct sink *k,
                      int64_t *size, const char **result)
{
    path_args a = {.path = (char *)src->path};
    file_info info;
    int rc;

    if (!report_wants_size() && !k->path)
        return RCAT_EXIT_OK;
    memset(&info, 0, sizeof info);
    rc = call(o, s, RCAT_STAT, (xdrproc_t)xdr_path_args, &a, (xdrproc_t)xdr_file_info, &info, NULL);
    if (rc != 0)
        return fail(o, s, rc, NULL, src->path, NULL, result);
    if (info.type == RCAT_REG)
        *size = range_size(o, info.size);
    return RCAT_EXIT_OK;
}

/* Whether fd is a pipe or socket whose reader has gone (`rcat URL | head`
 * with SIGPIPE ignored): the write failed with EPIPE, which the library
 * reports as an I/O error. */
static int reader_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};

    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

static int fetch_into(struct ops *o, struct slot *s, const struct url *src, const struct sink *k,
                      struct rpc2_se_desc *d, const char **result)
{
    fetch_args a = {
        .path = (char *)src->path, .offset = (u_quad_t)o->cfg.offset, .length = o->cfg.length};
    file_info info;
    int rc;

    memset(&info, 0, sizeof info);
    sink_describe(k, o->cfg.no_clobber, o->cfg.preserve, d);
    rc = call(o, s, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &a, (xdrproc_t)xdr_file_info, &info, d);
    if (rc != 0 && !k->path && d->local_status == RPC2_SE_FAILURE && reader_gone(k->fd)) {
        if (!o->sigpipe_default)
            return verdict_fail_local(k->shown, NULL, EPIPE, result);
        o->signal = SIGPIPE; /* what a write would have ended rcat by */
        *result = "EPIPE";
        return 128 + SIGPIPE;
    }
    if (rc != 0)
        return fail(o, s, rc, d, src->path, k->shown, result);
    return RCAT_EXIT_OK;
}

int ops_fetch(struct ops *o, const struct url *src, const char *dest)
{
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH); /* from the destination's start */
    const char *result = "OK";
    struct slot *s = NULL;
    struct sink k;
    struct xfer x;
    struct target_policy tp = {o->cfg.no_clobber, o->cfg.append, o->cfg.mkdirs};
    int code = target_open(&tp, dest, &k, &result);

    d.quota = o->cfg.length; /* --length, or RPC2_SE_NO_QUOTA */
    resume_describe(o, &d, k.path != NULL && !k.append);
    xfer_begin(&x, o, 0, src->path, k.name, -1, &d);
    x.reopened = k.append; /* a failed append is cut back: the next attempt appends again */
    if (code == RCAT_EXIT_OK)
        code = xfer_connect(&x, src, &s, &result);
    if (code == RCAT_EXIT_OK)
        code = probe_size(o, s, src, &k, &x.rep.size, &result);
    if (x.rep.size > 0)
        d.expected_size = (uint64_t)x.rep.size;
    if (code == RCAT_EXIT_OK)
        code = fetch_into(o, s, src, &k, &d, &result);
    code = target_end(&k, code, &result);
    xfer_end(&x, &d, code, result);
    sink_close(&k);
    return code;
}

/* ---- store ------------------------------------------------------------------ */

static int store_from(struct ops *o, struct slot *s, const struct source *src,
                      const struct url *dst, struct rpc2_se_desc *d, const char **result)
{
    store_args a = {
        .path = (char *)dst->path,
        .mode = (u_int)src->mode,
        .keep_mtime = o->cfg.preserve,
        .mtime_sec = o->cfg.preserve ? src->mtime_sec : 0,
        .mtime_nsec = o->cfg.preserve ? src->mtime_nsec : 0,
        .no_clobber = o->cfg.no_clobber,
    };
    store_flags_args f = {.store = a,
                          .flags = (o->cfg.append ? RCAT_STORE_APPEND : 0) |
                                   (o->cfg.mkdirs ? RCAT_STORE_MKDIRS : 0)};
    file_info info;
    int rc;

    memset(&info, 0, sizeof info);
    d->file_kind = RPC2_SE_FILE_FD;
    d->file.fd.fd = src->fd;
    if (f.flags) /* a server older than RCAT_STORE_FLAGS refuses it: never ignores them */
        rc = call(o, s, RCAT_STORE_FLAGS, (xdrproc_t)xdr_store_flags_args, &f,
                  (xdrproc_t)xdr_file_info, &info, d);
    else
        rc = call(o, s, RCAT_STORE, (xdrproc_t)xdr_store_args, &a, (xdrproc_t)xdr_file_info, &info,
                  d);
    return rc ? fail(o, s, rc, d, dst->path, src->shown, result) : RCAT_EXIT_OK;
}

int ops_store(struct ops *o, const char *local, const struct url *dst)
{
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_STORE);
    const char *result = "OK";
    struct slot *s = NULL;
    struct source src;
    struct xfer x;
    int code = source_open(local, &src, &result);
    int64_t size = src.file_size > 0 ? range_size(o, (uint64_t)src.file_size) : -1;

    d.seek_offset = o->cfg.offset;
    d.quota = o->cfg.length; /* --length, or RPC2_SE_NO_QUOTA */
    resume_describe(o, &d, !o->cfg.append);
    xfer_begin(&x, o, 1, local, dst->path, size, &d);
    x.rep.label = src.shown;
    x.reopened = src.own_fd;
    if (code == RCAT_EXIT_OK)
        code = xfer_connect(&x, dst, &s, &result);
    if (code == RCAT_EXIT_OK)
        code = store_from(o, s, &src, dst, &d, &result);
    xfer_end(&x, &d, code, result);
    source_close(&src);
    return code;
}

/* ---- stat and ls -------------------------------------------------------------- */

static void entry_of(const file_info *info, struct report_entry *e)
{
    switch (info->type) {
    case RCAT_REG:
        e->type = REPORT_FILE;
        break;
    case RCAT_DIR:
        e->type = REPORT_DIR;
        break;
    case RCAT_LNK:
        e->type = REPORT_LINK;
        break;
    default:
        e->type = REPORT_OTHER;
    }
    e->size = info->size;
    e->mode = info->mode & 07777;
    e->mtime_sec = info->mtime_sec;
    e->mtime_nsec = info->mtime_nsec;
}

int ops_stat(struct ops *o, const struct url *u)
{
    path_args a = {.path = (char *)remote_path(u)};
    file_info info;
    struct report_entry e;
    struct slot *s;
    const char *name;
    int rc;

    memset(&info, 0, sizeof info);
    rc = connect_slot(o, u, &s);
    if (rc == 0)
        rc = call(o, s, RCAT_STAT, (xdrproc_t)xdr_path_args, &a, (xdrproc_t)xdr_file_info, &info,
                  NULL);
    if (rc != 0)
        return fail(o, s, rc, NULL, shown_path(u), NULL, &name);
    entry_of(&info, &e);
    report_stat(shown_path(u), &e);
    return RCAT_EXIT_OK;
}

/* One page of the listing; *start moves past it, *more says if another
 * follows. */
static int list_page(struct ops *o, struct slot *s, const struct url *u, u_int *start, int *more)
{
    list_args a = {.path = (char *)remote_path(u), .start = *start};
    list_result r;
    struct report_entry e;
    int rc;

    memset(&r, 0, sizeof r);
    rc = call(o, s, RCAT_LIST, (xdrproc_t)xdr_list_args, &a, (xdrproc_t)xdr_list_result, &r, NULL);
    if (rc != 0)
        return rc;
    for (u_int i = 0; i < r.entries.entries_len; i++) {
        entry_of(&r.entries.entries_val[i].info, &e);
        report_list_entry(r.entries.entries_val[i].name, &e);
    }
    /* An empty page that claims more would loop forever. */
    *more = r.more && r.entries.entries_len > 0;
    *start += r.entries.entries_len;
    xdr_free((xdrproc_t)xdr_list_result, (char *)&r);
    return 0;
}

int ops_list(struct ops *o, const struct url *u)
{
    struct slot *s;
    const char *name;
    u_int start = 0;
    int more = 1;
    int rc = connect_slot(o, u, &s);

    while (rc == 0 && more)
        rc = list_page(o, s, u, &start, &more);
    if (rc != 0)
        return fail(o, s, rc, NULL, shown_path(u), NULL, &name);
    return RCAT_EXIT_OK;
}
