/*
 * ctx.c - the driver: the one file that knows libev. It owns the context's
 * sockets and watchers, feeds received batches and timer ticks to the pure
 * engine with the current time, sends what the engine queued, runs blocking
 * handlers on the worker pool and brings their outcome back to the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>

#include "addr.h"
#include "announce.h"
#include "ctx.h"
#include "engine.h"
#include "io.h"
#include "workers.h"

/* Receive batches handled per wake-up, so one busy socket cannot starve
 * timers and the other sockets. */
#define READ_BUDGET 16

struct rpc2_ctx {
    struct rpc2_params params;
    struct logger log;
    struct engine *engine;
    struct ev_loop *loop;
    int own_loop;
    int n_socks;
    int socks[RPC2_MAX_LISTEN];
    struct io_sockinfo sockinfo[RPC2_MAX_LISTEN]; /* family and UDP_SEGMENT, learnt once */
    struct io_drops drops[RPC2_MAX_LISTEN]; /* the kernel's drop count per socket */
    int peer_errors[RPC2_MAX_LISTEN];       /* the socket queues ICMP errors (a client's) */
    ev_io readers[RPC2_MAX_LISTEN];
    ev_timer timer;
    uint64_t timer_deadline; /* what the timer is armed for; UINT64_MAX: idle */
    ev_async wake;
    ev_prepare flusher; /* sends what handlers held back, before the loop sleeps */
    struct io_rx rx;
    struct workers *workers;
    struct mailbox mailbox;
    pthread_t loop_thread;
    atomic_int loop_running;
    atomic_int stop_requested;
    int in_handler; /* on_readable, on_timer or on_wake runs: they flush at their end */
};

void rpc2_params_init(struct rpc2_params *p)
{
    memset(p, 0, sizeof *p);
    p->retry_initial_us = 100 * 1000;
    p->retry_min_us = 10 * 1000;
    p->retry_max_us = 2 * 1000 * 1000;
    p->dead_peer_us = 30 * 1000 * 1000;
    p->idle_timeout_us = 600ull * 1000 * 1000;
    p->max_connections = 100000;
    p->max_per_address = 4096;
    p->cookie_threshold = 1024;
    p->max_running = 1024;
    p->max_saved_reply = PKT_MAX_DATAGRAM;
    p->max_saved_bytes = 64ull << 20;
    p->max_running_per_identity = 256;
    p->max_running_per_address = 256;
    p->stall_timeout_us = 300ull * 1000 * 1000;
    p->log_level = RPC2_LOG_INFO;
}

uint64_t ctx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct engine *ctx_engine(rpc2_ctx *ctx)
{
    return ctx->engine;
}

int ctx_workers(const rpc2_ctx *ctx)
{
    return ctx->params.workers;
}

/* ---- sending and timers ------------------------------------------------- */

/* The outq's flush: one io_send per run of datagrams for the same socket. */
static void flush_outq(struct outq *q, void *arg)
{
    rpc2_ctx *ctx = arg;
    unsigned start = 0;
    while (start < q->count) {
        unsigned end = start + 1;
        uint16_t sock = q->slots[start].to.sock;
        while (end < q->count && q->slots[end].to.sock == sock)
            end++;
        if (sock < ctx->n_socks) {
            io_send_on(ctx->socks[sock], &ctx->sockinfo[sock], &q->slots[start], end - start);
            ctx->engine->stats.send_batches++;
        }
        start = end;
    }
    q->count = 0;
}

static void rearm_timer(rpc2_ctx *ctx)
{
    uint64_t deadline = engine_next_deadline(ctx->engine);
    if (deadline == ctx->timer_deadline)
        return;
    ctx->timer_deadline = deadline;
    ev_timer_stop(ctx->loop, &ctx->timer);
    if (deadline == UINT64_MAX)
        return;
    uint64_t now = ctx_now();
    double after = deadline > now ? (double)(deadline - now) / 1e6 : 0.0;
    ev_timer_set(&ctx->timer, after, 0.0);
    ev_timer_start(ctx->loop, &ctx->timer);
}

/* Inside one of the loop's handlers, what a callback queued by a public
 * call (a reply, a new call, a resumed request) stays queued until the
 * handler's own flush at its end: the replies to a batch of requests, and
 * the calls a batch of replies starts, then leave in one sendmmsg and wake
 * the peer once, where each went alone (a tree of small files: one system
 * call per file at each end). The outq still flushes itself when full. */
void ctx_kick(rpc2_ctx *ctx)
{
    if (ctx->in_handler)
        return;
    engine_flush(ctx->engine);
    rearm_timer(ctx);
}

/* A loop handler's work runs with ctx_kick held back; the outermost one
 * flushes at its end. A loop run inside a handler (a callback waiting for
 * a call of its own, ctx_run_until) is flushed by on_prepare before it
 * sleeps, so nothing held back waits on a reply it needs. */
static void handler_begin(rpc2_ctx *ctx)
{
    ctx->in_handler++;
}

static void handler_end(rpc2_ctx *ctx)
{
    if (--ctx->in_handler == 0)
        ctx_kick(ctx);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    rpc2_ctx *ctx = w->data;

    (void)loop, (void)revents;
    engine_flush(ctx->engine);
    rearm_timer(ctx);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    rpc2_ctx *ctx = w->data;
    (void)loop;
    (void)revents;
    ctx->timer_deadline = UINT64_MAX; /* it fired: no longer armed */
    handler_begin(ctx);
    engine_timeout(ctx->engine, ctx_now());
    handler_end(ctx);
}

/* ---- receiving ---------------------------------------------------------- */

/* A datagram longer than any rpc2 sends is refused as the kernel's
 * truncation is: the buffers hold what UDP_GRO joins, more than one. */
static void receive_batch(rpc2_ctx *ctx, uint16_t sock)
{
    uint64_t now = ctx_now();
    engine_batch_begin(ctx->engine); /* ctx->rx holds them until the next io_recv */
    for (unsigned i = 0; i < ctx->rx.dgram_count; i++) {
        const struct io_dgram *d = &ctx->rx.dgrams[i];

        if (d->truncated || d->len > PKT_MAX_DATAGRAM) {
            ctx->engine->stats.rejected_length++;
            continue;
        }
        struct rpc2_addr from = {.len = ctx->rx.fromlen[d->msg], .sock = sock};
        memcpy(&from.ss, &ctx->rx.from[d->msg], sizeof from.ss);
        engine_receive(ctx->engine, &from, d->data, d->len, now);
    }
    engine_batch_end(ctx->engine, now);
}

/* A queued error makes the socket readable until it is read, so all are
 * read, every time. */
static void receive_peer_errors(rpc2_ctx *ctx, uint16_t sock)
{
    struct io_peer_error pe;

    if (!ctx->peer_errors[sock])
        return;
    while (io_recv_peer_error(ctx->socks[sock], &pe) > 0) {
        struct rpc2_addr to = {.len = pe.tolen, .sock = sock};
        memcpy(&to.ss, &pe.to, sizeof to.ss);
        engine_peer_error(ctx->engine, &to, pe.err, pe.quoted, pe.quoted_len, ctx_now());
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    rpc2_ctx *ctx = w->data;
    uint16_t sock = (uint16_t)(w - ctx->readers);
    (void)loop;
    (void)revents;
    struct io_drops *drops = &ctx->drops[sock];
    uint64_t dropped_before = drops->total;
    handler_begin(ctx);
    for (int round = 0; round < READ_BUDGET; round++) {
        int n = io_recv(ctx->socks[sock], &ctx->rx, drops);
        if (n <= 0)
            break;
        receive_batch(ctx, sock);
        if (ctx->rx.count < IO_BATCH) /* the socket is empty */
            break;
    }
    ctx->engine->stats.rx_dropped += drops->total - dropped_before;
    receive_peer_errors(ctx, sock);
    handler_end(ctx);
}

/* ---- other threads ------------------------------------------------------ */

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    rpc2_ctx *ctx = w->data;
    (void)revents;
    handler_begin(ctx);
    mailbox_drain(&ctx->mailbox);
    handler_end(ctx);
    if (atomic_load(&ctx->stop_requested))
        ev_break(loop, EVBREAK_ALL);
}

static void wake_loop(void *arg)
{
    rpc2_ctx *ctx = arg;
    ev_async_send(ctx->loop, &ctx->wake);
}

int ctx_post(rpc2_ctx *ctx, mailbox_fn fn, void *arg)
{
    return mailbox_post(&ctx->mailbox, fn, arg);
}

int ctx_foreign_thread(const rpc2_ctx *ctx)
{
    return atomic_load(&ctx->loop_running) && !pthread_equal(pthread_self(), ctx->loop_thread);
}

int ctx_in_callback(rpc2_ctx *ctx)
{
    return ev_depth(ctx->loop) > 0;
}

void ctx_run_until(rpc2_ctx *ctx, const volatile int *done)
{
    while (!*done)
        ev_run(ctx->loop, EVRUN_ONCE);
}

static void on_slept(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    *(int *)w->data = 1;
}

int ctx_sleep(rpc2_ctx *ctx, uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u), .tv_nsec = (long)(us % 1000000u) * 1000};
    volatile int done = 0;
    ev_timer t;

    if (ctx_foreign_thread(ctx)) {
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return 0;
    }
    if (ctx_in_callback(ctx))
        return RPC2_EWOULDBLOCK;
    ev_now_update(ctx->loop);
    ev_timer_init(&t, on_slept, (double)us / 1e6, 0.);
    t.data = (void *)&done;
    ev_timer_start(ctx->loop, &t);
    ctx_run_until(ctx, &done);
    ev_timer_stop(ctx->loop, &t);
    return 0;
}

void ctx_sync_init(struct ctx_sync *s, rpc2_ctx *ctx)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->done = 0;
    s->status = 0;
    s->result = NULL;
    s->threaded = ctx_foreign_thread(ctx);
}

void ctx_sync_dispose(struct ctx_sync *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}

void ctx_sync_finish(struct ctx_sync *s, int status, void *result)
{
    pthread_mutex_lock(&s->lock);
    s->status = status;
    s->result = result;
    s->done = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

int ctx_run_and_wait(rpc2_ctx *ctx, struct ctx_sync *s, mailbox_fn start, void *job)
{
    int rc = 0;
    if (s->threaded) {
        rc = ctx_post(ctx, start, job);
        pthread_mutex_lock(&s->lock);
        while (rc == 0 && !s->done)
            pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
    } else if (ctx_in_callback(ctx)) {
        rc = RPC2_EWOULDBLOCK; /* waiting here would stall the loop forever */
    } else {
        start(job);
        ctx_run_until(ctx, &s->done);
    }
    ctx_sync_dispose(s);
    return rc != 0 ? rc : s->status;
}

/* A blocking handler's outcome, back on the loop thread. */
static void blocking_done(void *arg)
{
    struct rpc2_request *req = arg;
    engine_handler_returned(req, req->status, ctx_now());
}

static void blocking_job(void *arg)
{
    struct rpc2_request *req = arg;
    rpc2_ctx *ctx = req->engine->env;
    int rc, status = engine_run_handler(req);
    req->status = status;
    /* Without memory to post, the reply would be lost and the client would
     * wait forever on BUSY; retrying costs nothing while memory returns.
     * A closed mailbox means the context is being freed, request and all
     * (a continuation the handler left still runs, here). */
    while ((rc = ctx_post(ctx, blocking_done, req)) == RPC2_ENOMEM)
        sched_yield();
    if (rc != 0)
        engine_handler_orphaned(req, status);
}

static int run_blocking(void *env, struct rpc2_request *req)
{
    rpc2_ctx *ctx = env;
    if (!ctx->workers)
        return RPC2_ESERVER;
    int quick = req->proc->quick && !engine_request_continues(req);
    return workers_submit_lane(ctx->workers, quick, blocking_job, req);
}

/* ---- local files a side effect waits on ------------------------------- */

struct fd_watcher {
    ev_io io; /* first: the callback gets this pointer */
    rpc2_ctx *ctx;
    struct engine_fdwatch *w;
};

static void on_fd_ready(struct ev_loop *loop, ev_io *io, int revents)
{
    struct fd_watcher *f = (struct fd_watcher *)io;
    rpc2_ctx *ctx = f->ctx; /* f may be freed by the callback */
    (void)loop;
    (void)revents;
    f->w->ready(f->w, ctx_now());
    ctx_kick(ctx);
}

static int watch_fd(void *env, struct engine_fdwatch *w, int fd, int events)
{
    rpc2_ctx *ctx = env;
    struct fd_watcher *f = w->driver;
    if (f)
        ev_io_stop(ctx->loop, &f->io);
    if (!events) {
        free(f);
        w->driver = NULL;
        return 0;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            return RPC2_ENOMEM;
        f->ctx = ctx;
        f->w = w;
        ev_init(&f->io, on_fd_ready);
        w->driver = f;
    }
    ev_io_set(&f->io, fd, ((events & ENGINE_FD_READ) ? EV_READ : 0) |
                              ((events & ENGINE_FD_WRITE) ? EV_WRITE : 0));
    ev_io_start(ctx->loop, &f->io);
    return 0;
}

/* Through the mailbox even from the loop thread: the handler's rest runs
 * at the next drain, after the callback that posted it has returned. */
static void loop_job(void *arg)
{
    struct rpc2_request *req = arg;
    engine_handler_returned(req, engine_run_handler(req), ctx_now());
}

static int run_on_loop(void *env, struct rpc2_request *req)
{
    return ctx_post(env, loop_job, req);
}

static const struct engine_hooks driver_hooks = {
    .run_blocking = run_blocking,
    .watch_fd = watch_fd,
    .run_on_loop = run_on_loop,
};

/* ---- the context -------------------------------------------------------- */

static int open_socket(rpc2_ctx *ctx, const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (ctx->n_socks == RPC2_MAX_LISTEN || addr_parse_listen(spec, &ss, &len) != 0) {
        log_msg(&ctx->log, RPC2_LOG_ERROR, "bad listen address \"%s\"", spec);
        return RPC2_EINVAL;
    }
    int fd = io_open(&ss, len);
    if (fd < 0) {
        log_msg(&ctx->log, RPC2_LOG_ERROR, "cannot listen on %s: %s", spec, strerror(errno));
        return fd;
    }
    ctx->sockinfo[ctx->n_socks] = (struct io_sockinfo){io_family(fd), -1};
    ctx->socks[ctx->n_socks++] = fd;
    return 0;
}

static int open_sockets(rpc2_ctx *ctx)
{
    for (int i = 0; i < ctx->params.n_listen; i++) {
        int rc = open_socket(ctx, ctx->params.listen[i]);
        if (rc != 0)
            return rc;
    }
    if (ctx->n_socks > 0)
        return 0;
    /* A client: one ephemeral socket, dual-stack where IPv6 exists, told
     * when a server's port is closed (rpc2/refused.c). */
    int rc = open_socket(ctx, "[::]:0") == 0 ? 0 : open_socket(ctx, "0.0.0.0:0");
    if (rc == 0)
        ctx->peer_errors[0] = io_want_peer_errors(ctx->socks[0]) == 0;
    return rc;
}

static int params_valid(const struct rpc2_params *p)
{
    return p->n_listen >= 0 && p->n_listen <= RPC2_MAX_LISTEN && p->workers >= 0 &&
           p->workers <= 256 && p->retry_min_us > 0 && p->retry_min_us <= p->retry_max_us &&
           p->retry_initial_us > 0 && p->dead_peer_us > 0 && p->idle_timeout_us > 0 &&
           p->max_connections > 0 && p->max_per_address > 0 && p->max_running > 0 &&
           p->stall_timeout_us > 0 && p->min_security <= RPC2_SEC_ENCRYPT;
}

/* The server's limits the engine's config has no room for live with its
 * connection table (conntable.h). */
static void set_limits(struct engine *e, const struct rpc2_params *p)
{
    struct conntable_limits l = {
        .max_per_addr = p->max_per_address,
        .cookie_threshold = p->cookie_threshold,
        .max_running = p->max_running,
        .max_saved_bytes = p->max_saved_bytes,
    };
    conntable_set_limits(&e->conns, &l);
}

static struct engine_config engine_config_of(const struct rpc2_params *p)
{
    return (struct engine_config){
        .retry_initial_us = p->retry_initial_us,
        .retry_min_us = p->retry_min_us,
        .retry_max_us = p->retry_max_us,
        .dead_peer_us = p->dead_peer_us,
        .idle_timeout_us = p->idle_timeout_us,
        .max_connections = p->max_connections,
        .max_saved_reply = p->max_saved_reply,
        .min_security = p->min_security,
        .secret_for = p->secret_for,
        .secret_arg = p->secret_arg,
        .max_running_per_identity = p->max_running_per_identity,
        .max_running_per_address = p->max_running_per_address,
        .stall_timeout_us = p->stall_timeout_us,
    };
}

static int setup_loop(rpc2_ctx *ctx)
{
    ctx->own_loop = ctx->params.loop == NULL;
    ctx->loop = ctx->own_loop ? ev_loop_new(EVFLAG_AUTO) : ctx->params.loop;
    if (!ctx->loop)
        return RPC2_ENOMEM;
    for (int i = 0; i < ctx->n_socks; i++) {
        ev_io_init(&ctx->readers[i], on_readable, ctx->socks[i], EV_READ);
        ctx->readers[i].data = ctx;
        ev_io_start(ctx->loop, &ctx->readers[i]);
    }
    ev_init(&ctx->timer, on_timer);
    ctx->timer.data = ctx;
    ctx->timer_deadline = UINT64_MAX;
    ev_async_init(&ctx->wake, on_wake);
    ctx->wake.data = ctx;
    ev_async_start(ctx->loop, &ctx->wake);
    if (!ctx->own_loop)
        ev_unref(ctx->loop); /* our wake-up watcher alone keeps no one's loop alive */
    ev_prepare_init(&ctx->flusher, on_prepare);
    ctx->flusher.data = ctx;
    ev_prepare_start(ctx->loop, &ctx->flusher);
    ev_unref(ctx->loop); /* nor does the flusher, on any loop */
    return 0;
}

int rpc2_ctx_new(const struct rpc2_params *params, rpc2_ctx **out)
{
    *out = NULL;
    if (!params || !params_valid(params))
        return RPC2_EINVAL;
    if (sec_init() != 0) /* libsodium, once: its failure shows here, not at a bind */
        return RPC2_ESYSTEM;
    rpc2_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return RPC2_ENOMEM;
    ctx->params = *params;
    ctx->log = (struct logger){params->log, params->log_arg, params->log_level};
    struct engine_config cfg = engine_config_of(params);
    int rc = mailbox_init(&ctx->mailbox, wake_loop, ctx);
    if (rc != 0) {
        free(ctx);
        return rc;
    }
    ctx->engine = engine_new(&cfg, &ctx->log, &driver_hooks, ctx, flush_outq, ctx);
    if (ctx->engine)
        set_limits(ctx->engine, params);
    rc = ctx->engine ? io_rx_init(&ctx->rx, IO_RX_MAX) : RPC2_ENOMEM;
    if (rc == 0)
        rc = open_sockets(ctx);
    if (rc == 0 && params->workers > 0)
        rc = workers_new(params->workers, &ctx->workers);
    if (rc == 0)
        rc = setup_loop(ctx);
    if (rc != 0) {
        rpc2_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void rpc2_ctx_free(rpc2_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->loop) {
        for (int i = 0; i < ctx->n_socks; i++)
            ev_io_stop(ctx->loop, &ctx->readers[i]);
        ev_timer_stop(ctx->loop, &ctx->timer);
        if (!ctx->own_loop)
            ev_ref(ctx->loop);
        ev_async_stop(ctx->loop, &ctx->wake);
        if (ev_is_active(&ctx->flusher)) {
            ev_ref(ctx->loop);
            ev_prepare_stop(ctx->loop, &ctx->flusher);
        }
    }
    /* Blocking handlers may be waiting for the loop (a side-effect check, a
     * nested call): what they posted runs now, every connection is ended
     * (their waits end with an error), and later posts are refused, so the
     * workers can finish and be joined. */
    mailbox_close(&ctx->mailbox);
    if (ctx->engine) {
        mailbox_drain(&ctx->mailbox);
        engine_close_all(ctx->engine, ctx_now());
        engine_flush(ctx->engine); /* the UNBINDs, so servers hear of it now */
    }
    workers_free(ctx->workers);
    engine_free(ctx->engine);
    for (int i = 0; i < ctx->n_socks; i++)
        close(ctx->socks[i]);
    io_rx_dispose(&ctx->rx);
    mailbox_dispose(&ctx->mailbox);
    if (ctx->own_loop && ctx->loop)
        ev_loop_destroy(ctx->loop);
    free(ctx);
}

int rpc2_ctx_run(rpc2_ctx *ctx)
{
    if (!ctx->own_loop)
        return RPC2_EINVAL;
    ctx->loop_thread = pthread_self();
    atomic_store(&ctx->loop_running, 1);
    ev_run(ctx->loop, 0);
    atomic_store(&ctx->loop_running, 0);
    atomic_store(&ctx->stop_requested, 0);
    return 0;
}

void rpc2_ctx_stop(rpc2_ctx *ctx)
{
    atomic_store(&ctx->stop_requested, 1);
    ev_async_send(ctx->loop, &ctx->wake);
}

void rpc2_ctx_abort_transfers(rpc2_ctx *ctx, int status)
{
    engine_abort_transfers(ctx->engine, status, ctx_now());
    ctx_kick(ctx);
}

int rpc2_ctx_port(const rpc2_ctx *ctx)
{
    return ctx->n_socks > 0 ? io_local_port(ctx->socks[0]) : -1;
}

unsigned rpc2_ctx_conn_count(const rpc2_ctx *ctx)
{
    return engine_conn_count(ctx->engine);
}

int rpc2_ctx_announce(rpc2_ctx *ctx, const char *host, const char *port, uint64_t interval_us)
{
    struct rpc2_addr to = {.sock = 0};
    if (!ctx || !host || !port || interval_us < 1000 || ctx->n_socks == 0)
        return RPC2_EINVAL;
    int rc = addr_resolve(host, port, &to.ss, &to.len);
    if (rc == 0)
        rc = announce_add(ctx->engine, &to, interval_us, ctx_now());
    ctx_kick(ctx); /* the first goes now; the timer for the next */
    return rc;
}

void rpc2_ctx_on_announce(rpc2_ctx *ctx, rpc2_announce_fn fn, void *arg)
{
    if (ctx)
        announce_listen(ctx->engine, fn, arg);
}

struct end_filter {
    rpc2_conn_filter end;
    void *arg;
    unsigned ended;
};

static void end_if(struct conn_link *l, void *arg)
{
    struct end_filter *f = arg;
    rpc2_conn *c = (rpc2_conn *)l;

    if (c->role != ROLE_SERVER || !f->end(c->identity, (enum rpc2_security)c->security, f->arg))
        return;
    f->ended++;
    conn_free(c); /* as idle expiry does: a waiting handler hears ECLOSED */
}

unsigned rpc2_ctx_end_connections(rpc2_ctx *ctx, rpc2_conn_filter end, void *arg)
{
    struct end_filter f = {end, arg, 0};

    ctx->engine->now = ctx_now();
    conntable_foreach(&ctx->engine->conns, end_if, &f);
    ctx_kick(ctx);
    return f.ended;
}

void rpc2_ctx_stats(const rpc2_ctx *ctx, struct rpc2_ctx_stats *out)
{
    const struct conntable *t = &ctx->engine->conns;
    *out = *engine_stats(ctx->engine);
    out->connections = t->count;
    out->connections_half_open = t->half_open;
}
