/*
 * sftp.c - the SFTP side-effect type: the hook table rpc2 calls, tying a
 * call's descriptor to a byte stream (fileio.c), piggybacking small
 * transfers into the CALL or REPLY, and running the source and sink
 * machines (source.c, sink.c) on the connection for large ones.
 *
 * One transfer (struct xfer) lives per call with a descriptor: on the
 * client from the call's send to its end, on the server from the request's
 * arrival to its reply. The client is always the one who asked; the
 * direction says who is the source.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc2/sftp.h>

#include "ctx.h"
#include "engine.h"
#include "events.h"
#include "fileio.h"
#include "link.h"
#include "machine.h"
#include "memshare.h"
#include "params.h"
#include "resume.h"
#include "seblock.h"
#include "sftp_type.h"
#include "stall.h"
#include "wire.h"

/* The room a piggybacked fetch leaves for the procedure's own result. */
#define RESULT_ROOM 8192

struct sftp_type {
    struct rpc2_sftp_params params;
    struct rpc2_sftp_stats stats;
    struct memshare memory; /* params.memory_cap, shared among the transfers */
};

struct xfer {
    struct sftp_type *type;
    struct engine *engine;
    rpc2_conn *conn;       /* NULL once the connection is gone */
    rpc2_request *req;     /* server end */
    uint32_t id;           /* the call's seq: the header's transfer id */
    int is_client;
    enum rpc2_se_direction direction;
    struct rpc2_se_desc *desc;
    struct fileio *file;
    struct sftp_config cfg;
    struct sftp_source *source;
    struct sftp_sink *sink;
    struct memshare_member memory; /* packet memory lent from the type's cap */
    struct engine_timer timer;
    struct stall stall;    /* server: the bound on a transfer that moves nothing */
    struct engine_fdwatch watch; /* the local file, while a machine waits on it */
    int watch_fd, watch_events;  /* what watch watches; 0 events: nothing */
    uint64_t now;          /* the time of the event being handled */
    /* what the peer asked for (server) or what we asked for (client) */
    int64_t peer_quota;
    uint32_t peer_flags, piggyback_max;
    uint8_t *piggy;        /* piggybacked data: a store's, or a fetch's reply */
    size_t piggy_len;
    uint8_t piggy_sum[FILEIO_SUM_BYTES]; /* a piggybacked store's checksum */
    uint32_t piggy_sum_len;
    uint32_t sum_type;     /* server: the named sum the client asked for */
    struct namedsum_value piggy_named; /* a piggybacked store's named sum (len 0: none) */
    struct seblock_info peer_info; /* server: the store's source, as the CALL said */
    int have_peer_info;
    int piggy_reply;       /* server: the reply carries the data */
    int result;            /* this end: 1 running, 0 done, < 0 failed */
    struct sftp_events ev; /* events.c: the descriptor's callbacks */
    se_check_done_fn done;
    struct sftp_wish wish; /* a client sink's: what it asks the server's source for */
    int has_wish;
    int restart_offered;   /* server source: the CALL carried the sink's restart point */
    uint64_t restart;
    uint8_t restart_sum[FILEIO_SUM_BYTES];
};

static int is_source(const struct xfer *x)
{
    return x->is_client == (x->direction == RPC2_SE_STORE);
}

/* ---- the link the machines send on ------------------------------------ */

static uint8_t *link_begin(void *arg, size_t *cap)
{
    struct xfer *x = arg;
    return x->conn ? conn_packet_begin(x->conn, cap) : NULL;
}

static void link_commit(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                        size_t len)
{
    struct xfer *x = arg;
    if (x->conn)
        conn_packet_commit(x->conn, type, flags, seq, x->id, ts_echo, len, x->now);
}

static void link_set_timer(void *arg, uint64_t deadline)
{
    struct xfer *x = arg;
    engine_timer_set(x->engine, &x->timer, deadline);
}

/* ---- lifetime ----------------------------------------------------------- */

static void add_counters(struct rpc2_sftp_stats *s, const struct sftp_counters *c)
{
    s->data_sent += c->data_sent;
    s->data_received += c->data_received;
    s->data_retransmitted += c->data_retransmitted;
    s->data_duplicates += c->data_duplicates;
    s->acks_sent += c->acks_sent;
    s->acks_received += c->acks_received;
    s->starts_sent += c->starts_sent;
    s->timeouts += c->timeouts;
    s->bytes_sent += c->bytes_sent;
    s->bytes_received += c->bytes_received;
}

/* The descriptor's per-transfer view of the machine's counters. */
static void fill_desc_stats(struct rpc2_se_desc *d, const struct sftp_counters *c)
{
    d->stats.data_sent = c->data_sent;
    d->stats.data_received = c->data_received;
    d->stats.retransmissions = c->data_retransmitted;
    d->stats.duplicates = c->data_duplicates;
    d->stats.acks_sent = c->acks_sent;
    d->stats.acks_received = c->acks_received;
    d->stats.timeouts = c->timeouts;
}

static void unwatch(struct xfer *x)
{
    if (x->watch_events)
        engine_fd_watch(x->engine, &x->watch, x->watch_fd, 0);
    x->watch_events = 0;
}

static void stop_machines(struct xfer *x)
{
    struct sftp_type *t = x->type;
    const struct sftp_counters *c = x->source ? sftp_source_counters(x->source)
                                    : x->sink ? sftp_sink_counters(x->sink) : NULL;
    if (c) {
        add_counters(&t->stats, c);
        if (x->desc)
            fill_desc_stats(x->desc, c);
    }
    unwatch(x);
    stall_stop(&x->stall);
    sftp_source_free(x->source);
    sftp_sink_free(x->sink);
    x->source = NULL;
    x->sink = NULL;
    engine_timer_set(x->engine, &x->timer, UINT64_MAX);
    memshare_leave(&t->memory, &x->memory);
}

static void fire_timer(struct engine_timer *et, uint64_t now);
static void file_ready(struct engine_fdwatch *w, uint64_t now);

static struct xfer *xfer_new(struct sftp_type *t, rpc2_conn *c, uint32_t id, int is_client)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->type = t;
    x->engine = engine_of(c);
    x->conn = c;
    x->id = id;
    x->is_client = is_client;
    x->result = 1;
    engine_timer_init(&x->timer, fire_timer);
    x->watch.ready = file_ready;
    t->stats.transfers++;
    return x;
}

static void xfer_free(struct xfer *x)
{
    if (!x)
        return;
    stop_machines(x);
    if (x->file) {
        fileio_finish(x->file, 0); /* unfinished: a failure, nothing left at an atomic name */
        fileio_free(x->file);
    }
    if (x->result < 0)
        x->type->stats.failed++;
    free(x->piggy);
    free(x);
}

/* ---- the machines ------------------------------------------------------- */

/* The memory cap's say on the window in force (memshare.c). */
static void limit_window(void *arg, uint32_t packets)
{
    struct xfer *x = arg;

    if (x->source)
        sftp_source_limit(x->source, packets);
    else if (x->sink)
        sftp_sink_limit(x->sink, packets);
}

/* Packet memory for a window, lent from the context's cap and shared
 * fairly with the other transfers; a transfer that cannot have even four
 * packets fails with RPC2_ELIMIT while the others keep running. A sink
 * that writes at any offset (a file) holds no packet past its arrival and
 * borrows nothing. */
static int lend_memory(struct xfer *x, int holds_packets)
{
    if (x->memory.granted != 0)
        return 0; /* lent at an earlier try whose machine could not start */
    x->memory = (struct memshare_member){
        .packet_size = x->cfg.packet_size,
        .wanted = x->cfg.window,
        .limit = limit_window,
        .arg = x,
    };
    if (!holds_packets)
        return 0;
    return memshare_join(&x->type->memory, &x->memory);
}

static int start_machine(struct xfer *x)
{
    struct sftp_link link = {link_begin, link_commit, link_set_timer, x};
    int rc;

    if (is_source(x)) {
        struct sftp_reader reader = fileio_reader(x->file);
        if ((rc = lend_memory(x, 1)) != 0)
            return rc;
        x->source = sftp_source_new(&x->cfg, &link, &reader);
    } else {
        struct sftp_writer writer = fileio_writer(x->file);
        if ((rc = lend_memory(x, writer.in_order)) != 0)
            return rc;
        x->sink = sftp_sink_new(&x->cfg, &link, &writer);
        if (x->sink && x->has_wish)
            sftp_sink_set_wish(x->sink, &x->wish);
    }
    if (!x->source && !x->sink)
        return RPC2_ENOMEM;
    if (x->memory.granted != 0 && x->memory.granted < x->cfg.window)
        limit_window(x, x->memory.granted);
    return 0;
}

static int machine_state(const struct xfer *x)
{
    if (x->source)
        return sftp_source_state(x->source);
    return x->sink ? sftp_sink_state(x->sink) : SFTP_RUNNING;
}

/* Whether this end's machine failed by its own doing (not the peer's ABORT).
 * On the client, once the reply is in: a sink must hold every byte; a
 * source is vouched for by the server's sink, whose verdict is in the reply. */
static int machine_failed_here(const struct xfer *x)
{
    return x->source ? sftp_source_failed_here(x->source)
                     : x->sink && sftp_sink_failed_here(x->sink);
}

/* The peer's ABORT ended the machine: the other end failed by its own doing. */
static int machine_failed_by_peer(const struct xfer *x)
{
    return (x->source || x->sink) && machine_state(x) < 0 && !machine_failed_here(x);
}


static int xfer_info(const struct xfer *x, struct rpc2_sftp_transfer_info *out);

/* The progress callback and STATS; the machine's path only when due. */
static void report_progress(struct xfer *x)
{
    struct rpc2_sftp_transfer_info ti;
    int path = sftp_events_stats_due(&x->ev, x->now) && xfer_info(x, &ti) == 0;
    sftp_events_progress(&x->ev, fileio_bytes(x->file), fileio_source_size(x->file),
                         path ? &ti : NULL, x->now);
}

/* SESSION: the peer's end has joined (with NOTIFICATION when streamed). */
static void report_session(struct xfer *x, int piggybacked)
{
    struct rpc2_sftp_transfer_info ti;
    int path = !piggybacked && xfer_info(x, &ti) == 0;
    sftp_events_session(&x->ev, piggybacked, path ? &ti : NULL, x->cfg.packet_size,
                        x->cfg.window, x->now);
}

/* INIT, once the local end is open; whether the callback cancelled. */
static int report_init(struct xfer *x, struct rpc2_se_desc *d)
{
    int64_t size = fileio_source_size(x->file);
    if (size < 0 && d->expected_size && d->expected_size <= INT64_MAX)
        size = (int64_t)d->expected_size;
    sftp_events_init(&x->ev, d, x->is_client, is_source(x), size, x->now);
    return x->ev.cancel ? RPC2_ECANCELED : 0;
}

/* The server's end finished: the handler's descriptor gets the outcome and
 * is let go (the handler may free it before replying); then the handler is
 * told, and replies. */
static void server_complete(struct xfer *x, int status)
{
    if (x->result <= 0)
        return;
    /* finished now, failed or not: the stream reports into the descriptor,
     * which is valid only until the handler hears the outcome. A transfer
     * ended before the handler initialised it (its connection went while
     * the request waited for a worker) has no stream at all. */
    int finished = x->file ? fileio_finish(x->file, status == 0) : 0;
    if (status == 0)
        status = finished;
    x->result = status == 0 ? 0 : status;
    int peer_failed = status != 0 && machine_failed_by_peer(x);
    struct rpc2_sftp_transfer_info path;
    if (xfer_info(x, &path) == 0)
        sftp_events_path(&x->ev, &path); /* as it ended: the machines go now */
    stop_machines(x);
    struct rpc2_se_desc *d = x->desc;
    if (d) {
        fileio_fill_desc(x->file, d);
        if (d->resume_note)
            log_msg(&x->engine->log, RPC2_LOG_INFO, "sftp: %s", d->resume_note);
        d->local_status = status == 0 ? RPC2_SE_SUCCESS : RPC2_SE_FAILURE;
        /* as on the client: FAILURE only when the client's end failed by
         * its own doing (its ABORT: a full disk, a closed pipe) */
        d->remote_status = peer_failed ? RPC2_SE_FAILURE : RPC2_SE_SUCCESS;
        d->error = status;
        sftp_events_stop(&x->ev, d, status, status, x->now);
        x->desc = NULL;
        x->ev.desc = NULL;
    }
    se_check_done_fn done = x->done;
    x->done = NULL;
    if (done)
        done(x->req, status);
}

/* The fd the machine waits on, if it waits on its file; else -1. */
static int waited_fd(const struct xfer *x, int *events)
{
    int fd, readable;
    int waits = x->source ? sftp_source_waiting_input(x->source)
                          : x->sink && sftp_sink_waiting_output(x->sink);
    if (!waits || !x->file || !fileio_wait(x->file, &fd, &readable))
        return -1;
    *events = readable ? ENGINE_FD_READ : ENGINE_FD_WRITE;
    return fd;
}

/* Watches the local file while the machine waits on it, and only then. */
static void update_watch(struct xfer *x)
{
    int events = 0;
    int fd = waited_fd(x, &events);
    if (fd < 0) {
        unwatch(x);
        return;
    }
    if (x->watch_events == events && x->watch_fd == fd)
        return;
    if (engine_fd_watch(x->engine, &x->watch, fd, events) != 0) {
        x->watch_events = 0;
        if (x->source)
            sftp_source_abort(x->source, RPC2_ENOMEM, x->now);
        else
            sftp_sink_abort(x->sink, RPC2_ENOMEM, x->now);
        return;
    }
    x->watch_fd = fd;
    x->watch_events = events;
}

/* What the stall bound counts: bytes the peer acknowledged (source) or
 * that were written (sink); not packets, which a closed window still sends. */
static uint64_t bytes_moved(const struct xfer *x)
{
    if (x->source)
        return sftp_source_bytes(x->source);
    return x->sink ? sftp_sink_bytes(x->sink) : 0;
}

/* After any event: has the machine finished? */
static void after_event(struct xfer *x)
{
    if (x->file)
        report_progress(x);
    if (x->ev.cancel) /* ended from the timer, where nothing runs above it */
        engine_timer_set(x->engine, &x->timer, x->now);
    update_watch(x);
    int state = machine_state(x);
    if (x->is_client)
        return; /* a client's end is settled by the reply */
    if (state == SFTP_RUNNING)
        stall_progress(&x->stall, bytes_moved(x), x->now);
    else
        server_complete(x, state == SFTP_DONE ? 0 : state);
}

static void server_abort(void *type, rpc2_request *req, void *transfer, int status, uint64_t now);

/* A callback asked to cancel: a client ends its call (the abandon hook
 * tells the server), a server its end of the transfer (the handler hears
 * RPC2_ECANCELED). */
static void cancel_now(struct xfer *x)
{
    x->ev.cancel = 0;
    if (!x->is_client) {
        server_abort(x->type, x->req, x, RPC2_ECANCELED, x->now);
        return;
    }
    if (x->conn && x->conn->call && x->conn->call->se_transfer == x)
        engine_cancel(x->conn, x->now);
}

static void fire_timer(struct engine_timer *et, uint64_t now)
{
    struct xfer *x = (struct xfer *)((char *)et - offsetof(struct xfer, timer));
    x->now = now;
    if (x->ev.cancel) {
        cancel_now(x); /* x may be gone */
        return;
    }
    if (x->source)
        sftp_source_on_timer(x->source, now);
    else if (x->sink)
        sftp_sink_on_timer(x->sink, now);
    after_event(x);
}

static void file_ready(struct engine_fdwatch *w, uint64_t now)
{
    struct xfer *x = (struct xfer *)((char *)w - offsetof(struct xfer, watch));
    x->now = now;
    if (x->source)
        sftp_source_resume(x->source, now);
    else if (x->sink)
        sftp_sink_resume(x->sink, now);
    after_event(x);
}

/* A client storing by streaming starts its machine on the server's START. */
static int client_lazy_start(struct xfer *x, uint8_t type)
{
    if (x->source || x->sink)
        return 0;
    if (!x->is_client || x->piggy_len || (is_source(x) ? type != PKT_SFTP_START
                                                       : type != PKT_SFTP_DATA))
        return -1;
    if (start_machine(x) != 0)
        return -1;
    if (x->sink)
        sftp_sink_start(x->sink, 0, x->now);
    report_session(x, 0);
    return 0;
}

static void sftp_receive(void *type, rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                         uint64_t now)
{
    struct xfer *x = conn_transfer(c, h->transfer);
    if (!x || (x->result <= 0 && !x->is_client))
        return; /* not a transfer of ours, or one that is over */
    x->now = now;
    if (!x->is_client && !x->source && !x->sink && h->type == PKT_SFTP_ABORT) {
        int32_t error;
        if (sftp_abort_decode(body, h->body_len, &error) == PKT_OK && error < 0)
            server_abort(x->type, x->req, x, error, now); /* the client gave up first */
        return;
    }
    if (client_lazy_start(x, h->type) != 0)
        return;
    if (x->source)
        sftp_source_receive(x->source, h->type, h->seq, h->ts, h->ts_echo, body, h->body_len, now);
    else if (x->sink)
        sftp_sink_receive(x->sink, h->type, h->flags, h->seq, h->ts, h->ts_echo, body,
                          h->body_len, now);
    after_event(x);
}

/* ---- piggybacking ------------------------------------------------------ */

/* Reads the whole source if it holds at most max bytes. Returns 1 with the
 * data in x->piggy, 0 when it is larger (bytes already read stay with the
 * stream for the machine), or a negative error. */
static int read_piggy(struct xfer *x, uint32_t max)
{
    int64_t size = fileio_source_size(x->file);
    if (max == 0 || (size >= 0 && size > (int64_t)max))
        return 0;
    x->piggy = malloc((size_t)max + 1);
    if (!x->piggy)
        return RPC2_ENOMEM;
    ssize_t n = fileio_peek(x->file, x->piggy, (size_t)max + 1);
    if (n < 0 && n != SFTP_IO_WAIT)
        return (int)n;
    if (n == SFTP_IO_WAIT || (size_t)n > max) { /* more, or more to come: it streams */
        free(x->piggy);
        x->piggy = NULL;
        return 0;
    }
    x->piggy_len = (size_t)n;
    int rc = fileio_consume(x->file, x->piggy_len);
    return rc < 0 ? rc : 1;
}

/*
 * Writes piggybacked data and checks it against the checksum that came
 * with it. A stream that has no room is waited for here, blocking the loop:
 * a client never offers piggybacking into such a file (the transfer then
 * streams, and the machine waits without blocking), so only a server whose
 * handler chose a pipe as a store's sink gets here, for one datagram.
 */
static int write_piggy(struct xfer *x, const uint8_t *data, size_t len, const uint8_t *sum,
                       uint32_t sum_len, const struct namedsum_value *named)
{
    int rc = len ? fileio_write(x->file, 0, data, len) : 0;
    if (rc == SFTP_IO_WAIT)
        rc = fileio_write_waiting(x->file, 0, data, len);
    if (rc != 0)
        return rc;
    if (sum_len != FILEIO_SUM_BYTES)
        return RPC2_EINTEGRITY; /* piggybacked data always comes with its checksum */
    uint8_t got[FILEIO_SUM_BYTES];
    if (fileio_digest(x->file, got) != 0 || memcmp(got, sum, sizeof got) != 0)
        return RPC2_EINTEGRITY;
    return fileio_check_named(x->file, named);
}

/* ---- the source file's info, between fileio and the blocks ------------- */

/* Sets SEBLOCK_SOURCE_INFO in *flags when this end's source is a file. */
static void info_out(const struct xfer *x, uint32_t *flags, struct seblock_info *out)
{
    struct fileio_info i;
    if (!x->file || !is_source(x) || !fileio_source_info(x->file, &i))
        return;
    *out = (struct seblock_info){.size = i.size < 0 ? UINT64_MAX : (uint64_t)i.size,
                                 .mode = i.mode,
                                 .mtime_sec = i.mtime_sec,
                                 .mtime_nsec = i.mtime_nsec};
    *flags |= SEBLOCK_SOURCE_INFO;
}

/* The sink hears what the source said: the attributes its file may take. */
static void info_in(struct xfer *x, const struct seblock_info *in)
{
    struct fileio_info i = {.size = in->size > INT64_MAX ? -1 : (int64_t)in->size,
                            .mode = in->mode,
                            .mtime_sec = in->mtime_sec,
                            .mtime_nsec = in->mtime_nsec};
    fileio_set_peer_source(x->file, &i);
}

/* ---- client hooks ------------------------------------------------------- */

static void fill_desc_start(struct rpc2_se_desc *d)
{
    memset(&d->stats, 0, sizeof d->stats);
    d->bytes_transferred = 0;
    d->quota_exceeded = 0;
    d->local_status = RPC2_SE_IN_PROGRESS;
    d->remote_status = RPC2_SE_NOT_STARTED;
    d->error = 0;
    d->resumed_from = 0;
    d->resume_started_over = 0;
    d->resume_note = NULL;
    d->sum_len = 0;
}

static int open_local(struct xfer *x, struct rpc2_se_desc *d, int as_source)
{
    unsigned flags = x->type->params.strict_quota ? FILEIO_STRICT_QUOTA : 0;
    if (engine_can_watch_fds(x->engine))
        flags |= FILEIO_NONBLOCK;
    /* a server's sink keeps restart points only for a client that asked */
    if (!as_source && d->resume && (x->is_client || (x->peer_flags & SEBLOCK_RESUME)))
        flags |= FILEIO_RESUME;
    const char *why = NULL;
    int rc = as_source ? fileio_open_source(d, flags, &x->file, &why)
                       : fileio_open_sink(d, flags, &x->file, &why);
    if (rc != 0 && why)
        log_msg(&x->engine->log, RPC2_LOG_INFO, "sftp: %s", why);
    return rc;
}

static int client_call_before(void *type, rpc2_conn *c, struct rpc2_se_desc *d, uint32_t seq,
                              struct pkt_writer *w, void **transfer, uint64_t now)
{
    struct sftp_type *t = type;
    int rc = rpc2_se_desc_check(d);
    if (rc != 0)
        return rc;
    struct xfer *x = xfer_new(t, c, seq, 1);
    if (!x)
        return RPC2_ENOMEM;
    *transfer = x;
    x->now = now;
    x->direction = d->direction;
    x->desc = d;
    fill_desc_start(d);
    uint32_t packet = sftp_choose_packet_size(&t->params, conn_peer(c));
    x->cfg = sftp_config_of(&t->params, packet, sftp_choose_window(&t->params, packet));
    x->wish = (struct sftp_wish){t->params.policy, t->params.rate_bps, t->params.min_rate_bps};
    x->has_wish = x->wish.policy || x->wish.rate || x->wish.min_rate;
    rc = open_local(x, d, is_source(x));
    if (rc == 0)
        rc = report_init(x, d);
    size_t room = (size_t)(w->end - w->p);
    uint32_t piggy_max = sftp_choose_piggyback_max(&t->params, conn_peer(c), room);
    if (rc == 0 && is_source(x))
        rc = read_piggy(x, piggy_max);
    if (rc < 0)
        return rc;
    uint8_t sum[FILEIO_SUM_BYTES];
    int have_sum = x->piggy && fileio_digest(x->file, sum) == 0;
    struct namedsum_value named;
    int have_named = x->piggy ? fileio_named_sum(x->file, &named) : 0;
    if (have_named < 0)
        return have_named; /* not the data expected: nothing is sent */
    struct seblock_call b = {
        .direction = (uint32_t)x->direction,
        .flags = (x->piggy ? SEBLOCK_PIGGY : 0) | (t->params.strict_quota ? SEBLOCK_STRICT : 0),
        .quota = d->quota,
        .packet_size = packet,
        .window = x->cfg.window,
        .data = x->piggy,
        .data_len = (uint32_t)x->piggy_len,
        .checksum = have_sum ? sum : NULL,
        .checksum_len = have_sum ? FILEIO_SUM_BYTES : 0,
        .sum_type = (uint32_t)d->sum_type,
        .named_sum = have_named ? named.bytes : NULL,
        .named_sum_len = have_named ? named.len : 0,
    };
    b.flags |= d->sum_type ? SEBLOCK_NAMED_SUM : 0;
    info_out(x, &b.flags, &b.info);
    if (d->resume)
        b.flags |= SEBLOCK_RESUME;
    if (!is_source(x) && resume_sink_offer(x->file, &b.restart, b.restart_sum))
        b.flags |= SEBLOCK_RESTART; /* and no piggyback: the rest streams from the point */
    /* Piggybacked data is written when the reply comes, at once: not into a
     * file that may have no room then (a pipe), which streams instead. */
    if (!is_source(x) && t->params.piggyback && !fileio_may_wait(x->file) &&
        !(b.flags & SEBLOCK_RESTART)) {
        b.flags |= SEBLOCK_PIGGY_OK;
        b.piggyback_max = sftp_choose_piggyback_max(&t->params, conn_peer(c),
                                                    PKT_MAX_BODY - RESULT_ROOM);
    }
    if (x->piggy)
        t->stats.piggybacked++;
    seblock_call_encode(&b, w);
    return w->failed ? RPC2_ETOOBIG : 0;
}

/* Both ends hashed the bytes they moved; the server's sum says what it
 * moved, and a difference is an integrity failure whatever else said yes. */
static int sums_agree(const struct xfer *x, const struct seblock_reply *r)
{
    uint8_t own[FILEIO_SUM_BYTES];
    if (r->checksum_len != FILEIO_SUM_BYTES || fileio_digest(x->file, own) != 0) {
        log_msg(&x->engine->log, RPC2_LOG_WARN, "sftp: no checksum to compare: refused");
        return 0; /* a success that cannot be checked is not one */
    }
    struct namedsum_value named;
    if (fileio_check_named(x->file, namedsum_value_of(r->sum_type, r->named_sum,
                                                      r->named_sum_len, &named)) != 0) {
        log_msg(&x->engine->log, RPC2_LOG_WARN, "sftp: %s", fileio_why(x->file));
        return 0;
    }
    return memcmp(own, r->checksum, sizeof own) == 0;
}

static int local_outcome(struct xfer *x, int status, const struct seblock_reply *r)
{
    if (machine_failed_here(x))
        return machine_state(x); /* whatever the call says, this end failed itself */
    if (status != 0)
        return 0;
    int rc = 0;
    if (r && (r->flags & SEBLOCK_PIGGY) && !is_source(x)) {
        x->type->stats.piggybacked++;
        struct namedsum_value named;
        rc = write_piggy(x, r->data, r->data_len, r->checksum, r->checksum_len,
                         namedsum_value_of(r->sum_type, r->named_sum, r->named_sum_len, &named));
    } else if (!is_source(x)) {
        int state = machine_state(x);
        rc = state == SFTP_DONE ? 0 : state < 0 ? state : RPC2_ESEFAIL1;
    }
    if (rc == 0 && r && r->status == 0 && !sums_agree(x, r))
        rc = RPC2_EINTEGRITY;
    return rc;
}

/* Settles the client's end from the reply's block and the call's status;
 * returns whether the side effect succeeded. */
static int client_settle(struct xfer *x, int status, const struct seblock_reply *r)
{
    struct rpc2_se_desc *d = x->desc;
    int remote = r ? r->status : RPC2_ESEFAIL1; /* no block: the server took no part */
    if (r && (r->flags & SEBLOCK_SOURCE_INFO) && !is_source(x))
        info_in(x, &r->info); /* the attributes, before the file takes its name */
    int local = local_outcome(x, status, r);
    int ok = status == 0 && remote == 0 && local == 0;
    int finished = fileio_finish(x->file, ok);
    if (ok && finished != 0) {
        local = finished;
        ok = 0;
    }
    fileio_fill_desc(x->file, d);
    if (d->resume_note)
        log_msg(&x->engine->log, RPC2_LOG_INFO, "sftp: %s", d->resume_note);
    if (r && (r->flags & SEBLOCK_QUOTA_HIT))
        d->quota_exceeded = 1; /* the server's end applied our quota */
    d->local_status = ok ? RPC2_SE_SUCCESS : RPC2_SE_FAILURE;
    /* the server's end failing with our own error was our ABORT, not its fault */
    int remote_fault = remote != 0 && !(local != 0 && remote == local);
    d->remote_status = remote_fault ? RPC2_SE_FAILURE : RPC2_SE_SUCCESS;
    d->error = ok ? 0 : local ? local : remote ? remote : status;
    x->result = ok ? 0 : d->error;
    fileio_free(x->file);
    x->file = NULL;
    return ok;
}

static void client_call_after(void *type, rpc2_conn *c, void *transfer, int *status,
                              const uint8_t *se, uint32_t se_len, uint64_t now)
{
    struct xfer *x = transfer;
    struct seblock_reply r;
    int have_block = se && seblock_reply_decode(se, se_len, &r) == PKT_OK;
    x->now = now;
    if (have_block && r.status == 0)
        report_session(x, x->piggy || (r.flags & SEBLOCK_PIGGY));
    int ok = client_settle(x, *status, have_block ? &r : NULL);
    if (*status == 0 && !ok)
        *status = RPC2_ESEFAIL1; /* the procedure ran; its side effect failed (desc->error) */
    sftp_events_stop(&x->ev, x->desc, x->result, *status, now);
    xfer_free(x);
}

static void client_call_abandon(void *type, rpc2_conn *c, void *transfer, int status,
                                uint64_t now)
{
    struct xfer *x = transfer;
    x->now = now;
    if (x->source)
        sftp_source_abort(x->source, status, now);
    else if (x->sink)
        sftp_sink_abort(x->sink, status, now);
    else if (!x->piggy && x->conn && x->conn->state != CS_CLOSING)
        /* no machine yet: the server's end may be waiting, or sending (an
         * unbind tells it by itself: the handler hears RPC2_ECLOSED) */
        sftp_link_abort(&(struct sftp_link){link_begin, link_commit, link_set_timer, x}, status);
    if (x->file)
        fileio_fill_desc(x->file, x->desc);
    x->desc->local_status = RPC2_SE_FAILURE;
    x->desc->error = status;
    x->result = status;
    sftp_events_stop(&x->ev, x->desc, status, status, now);
    xfer_free(x);
}

/* ---- server hooks ------------------------------------------------------- */

static int valid_request(const struct seblock_call *b)
{
    return b->packet_size >= 256 && b->packet_size <= SFTP_MAX_PACKET && b->window >= 1 &&
           b->window <= SFTP_MAX_WINDOW;
}

static int server_request(void *type, rpc2_request *req, const uint8_t *se, uint32_t se_len,
                          void **transfer)
{
    struct sftp_type *t = type;
    struct seblock_call b;
    if (seblock_call_decode(se, se_len, &b) != PKT_OK || !valid_request(&b))
        return RPC2_EBADPACKET;
    struct xfer *x = xfer_new(t, req->conn, req->seq, 0);
    if (!x)
        return RPC2_ENOMEM;
    x->req = req;
    x->direction = (enum rpc2_se_direction)b.direction;
    x->peer_quota = b.quota;
    x->peer_flags = b.flags;
    x->piggyback_max = (b.flags & SEBLOCK_PIGGY_OK) ? b.piggyback_max : 0;
    uint32_t own_window = sftp_choose_window(&t->params, b.packet_size);
    x->cfg = sftp_config_of(&t->params, b.packet_size,
                            b.window < own_window ? b.window : own_window);
    if (b.flags & SEBLOCK_PIGGY) {
        x->piggy = malloc(b.data_len ? b.data_len : 1);
        if (!x->piggy) {
            xfer_free(x);
            return RPC2_ENOMEM;
        }
        memcpy(x->piggy, b.data, b.data_len);
        x->piggy_len = b.data_len;
        x->piggy_sum_len = b.checksum_len;
        if (b.checksum_len)
            memcpy(x->piggy_sum, b.checksum, b.checksum_len);
        namedsum_value_of(b.sum_type, b.named_sum, b.named_sum_len, &x->piggy_named);
    }
    x->sum_type = b.sum_type;
    x->peer_info = b.info;
    x->have_peer_info = !!(b.flags & SEBLOCK_SOURCE_INFO);
    x->restart_offered = !!(b.flags & SEBLOCK_RESTART);
    x->restart = b.restart;
    memcpy(x->restart_sum, b.restart_sum, sizeof x->restart_sum);
    *transfer = x;
    return 0;
}

static int server_init(void *type, rpc2_request *req, void *transfer, struct rpc2_se_desc *d,
                       uint64_t now)
{
    struct xfer *x = transfer;
    if (x->result <= 0)
        return x->result < 0 ? x->result : RPC2_EINVAL; /* ended already: nothing to open */
    if (x->file || d->direction != x->direction)
        return RPC2_EINVAL; /* initialised twice, or the two ends disagree */
    x->desc = d;
    x->now = now;
    fill_desc_start(d);
    d->sum_type = (int)x->sum_type; /* the client chooses the named sum */
    int rc = open_local(x, d, is_source(x));
    if (rc == 0)
        rc = fileio_limit(x->file, x->peer_quota, x->peer_flags & SEBLOCK_STRICT);
    if (rc == 0 && x->have_peer_info && !is_source(x)) {
        info_in(x, &x->peer_info);
        if (x->peer_info.size < UINT64_MAX) /* a full disk fails now, before START */
            rc = fileio_reserve(x->file, x->peer_info.size);
    }
    if (rc == 0)
        rc = report_init(x, d);
    if (rc != 0) {
        sftp_events_stop(&x->ev, d, rc, rc, now);
        x->ev.desc = NULL;
        fileio_free(x->file);
        x->file = NULL;
        d->local_status = RPC2_SE_FAILURE;
        d->error = rc;
        x->result = rc; /* the reply tells the client why */
    }
    return rc;
}

static int start_check(struct xfer *x, uint64_t now);
static void stalled(struct stall *st, uint64_t now);

/* A fetch rides in the reply when the client takes it and the server's own
 * parameters allow it, leaving room for the procedure's result. */
static uint32_t reply_piggyback_max(const struct xfer *x)
{
    const struct rpc2_sftp_params *p = &x->type->params;
    uint32_t limit = PKT_MAX_BODY - RESULT_ROOM - SEBLOCK_REPLY_OVERHEAD - 8;
    if (!p->piggyback)
        return 0;
    if (p->piggyback_max && p->piggyback_max < limit)
        limit = p->piggyback_max;
    return x->piggyback_max < limit ? x->piggyback_max : limit;
}

static int server_check(void *type, rpc2_request *req, void *transfer, se_check_done_fn done,
                        uint64_t now)
{
    struct xfer *x = transfer;
    if (x->result < 0)
        return x->result; /* ended before it ran: its connection is gone */
    if (!x->file || x->result == 0)
        return RPC2_EINVAL; /* rpc2_se_init first, and once */
    x->now = now;
    x->done = done;
    int rc = start_check(x, now);
    if (rc != 0) {
        x->done = NULL;
        x->result = rc;
    }
    return rc;
}

/* Piggybacked data is written or read at once; anything else streams. */
static int start_check(struct xfer *x, uint64_t now)
{
    if (x->piggy && !is_source(x)) {
        x->type->stats.piggybacked++;
        report_session(x, 1);
        server_complete(x, write_piggy(x, x->piggy, x->piggy_len, x->piggy_sum, x->piggy_sum_len,
                                       x->piggy_named.len ? &x->piggy_named : NULL));
        return 0;
    }
    if (is_source(x) && !x->restart_offered) {
        int rc = read_piggy(x, reply_piggyback_max(x));
        if (rc < 0)
            return rc;
        if (rc == 1) {
            x->piggy_reply = 1;
            x->type->stats.piggybacked++;
            report_session(x, 1);
            server_complete(x, 0);
            return 0;
        }
    }
    int rc = start_machine(x);
    if (rc != 0)
        return rc;
    stall_start(&x->stall, x->engine, x->engine->cfg.stall_timeout_us, 0, now, stalled);
    if (x->source && x->restart_offered &&
        (rc = sftp_source_offer(x->source, x->restart, x->restart_sum)) < 0)
        return rc;
    if (x->source)
        sftp_source_start(x->source, now);
    else
        sftp_sink_start(x->sink, 1, now);
    report_session(x, 0);
    if (x->ev.cancel)
        engine_timer_set(x->engine, &x->timer, now);
    return 0;
}

/* Ends the server's end now: the peer hears an ABORT with status, the
 * handler the outcome. One not yet initialised is marked, so that its init
 * is refused with status. */
static void server_abort(void *type, rpc2_request *req, void *transfer, int status, uint64_t now)
{
    struct xfer *x = transfer;
    (void)type, (void)req;
    if (x->result <= 0)
        return; /* over already */
    x->now = now;
    if (x->source)
        sftp_source_abort(x->source, status, now);
    else if (x->sink)
        sftp_sink_abort(x->sink, status, now);
    if (!x->file) {
        x->result = status;
        return;
    }
    server_complete(x, status);
}

static void stalled(struct stall *st, uint64_t now)
{
    struct xfer *x = (struct xfer *)((char *)st - offsetof(struct xfer, stall));
    x->engine->stats.transfers_stalled++;
    log_msg(&x->engine->log, RPC2_LOG_WARN,
            "sftp: %s with %s stalled: no byte moved for %.1f s (%llu moved), ended",
            is_source(x) ? "fetch" : "store", x->req ? rpc2_request_peer(x->req) : "?",
            (double)x->engine->cfg.stall_timeout_us / 1e6, (unsigned long long)bytes_moved(x));
    server_abort(x->type, x->req, x, RPC2_ESTALLED, now);
}

static int server_reply(void *type, rpc2_request *req, void *transfer, int status,
                        struct pkt_writer *w)
{
    struct xfer *x = transfer;
    if (x->result > 0 && x->file) {
        /* the handler replied without waiting for its transfer: it is over */
        stop_machines(x);
        (void)fileio_finish(x->file, 0);
        x->result = RPC2_ESEFAIL1;
    }
    x->desc = NULL; /* the handler is done with its descriptor once it replies */
    x->ev.desc = NULL;
    /* never initialised: the side effect did not run; the call's own
     * status says why when it is an rpc2 error */
    int never_ran = status < 0 ? status : RPC2_ESEFAIL1;
    struct seblock_reply b = {
        .status = x->result > 0 ? never_ran : x->result,
        .bytes = x->file ? fileio_bytes(x->file) : 0,
        .flags = x->piggy_reply && status == 0 ? SEBLOCK_PIGGY : 0,
    };
    if (b.flags) {
        b.data = x->piggy;
        b.data_len = (uint32_t)x->piggy_len;
    }
    struct rpc2_se_desc outcome;
    memset(&outcome, 0, sizeof outcome);
    fileio_fill_desc(x->file, &outcome);
    if (x->file && x->result == 0 && outcome.checksum_valid) {
        b.checksum = outcome.checksum;
        b.checksum_len = FILEIO_SUM_BYTES;
    }
    if (outcome.quota_exceeded)
        b.flags |= SEBLOCK_QUOTA_HIT;
    struct namedsum_value named;
    if (x->sum_type) { /* asked for: said, with the value when this end succeeded */
        b.flags |= SEBLOCK_NAMED_SUM;
        b.sum_type = x->sum_type;
        /* the handler's descriptor may be gone by now: the sum alone */
        if (x->file && x->result == 0 && fileio_named_sum_value(x->file, &named) > 0) {
            b.named_sum = named.bytes;
            b.named_sum_len = named.len;
        }
    }
    if (x->result == 0)
        info_out(x, &b.flags, &b.info);
    seblock_reply_encode(&b, w);
    return w->failed ? RPC2_ETOOBIG : 0;
}

static void server_request_free(void *type, rpc2_request *req, void *transfer)
{
    xfer_free(transfer);
}

/* The connection goes while a transfer runs: the handler hears it. */
static void sftp_unbind(void *type, rpc2_conn *c)
{
    if (conn_is_client(c) || !c->running || !c->running->se_transfer)
        return;
    struct xfer *x = c->running->se_transfer;
    x->conn = NULL;
    stop_machines(x);
    server_complete(x, RPC2_ECLOSED);
}

static const char *kind_name(enum rpc2_se_file_kind k)
{
    switch (k) {
    case RPC2_SE_FILE_NAME:
        return "name";
    case RPC2_SE_FILE_FD:
        return "fd";
    case RPC2_SE_FILE_INODE:
        return "inode";
    case RPC2_SE_FILE_VM:
        return "memory";
    }
    return "?";
}

static int sftp_describe(void *type, const struct rpc2_se_desc *d, char *buf, size_t cap)
{
    char file[96] = "";
    if (d->file_kind == RPC2_SE_FILE_NAME)
        snprintf(file, sizeof file, " %.80s%s", d->file.name.path,
                 d->file.name.atomic ? " (atomic)" : "");
    else if (d->file_kind == RPC2_SE_FILE_FD)
        snprintf(file, sizeof file, " %d", d->file.fd.fd);
    return snprintf(buf, cap, "sftp %s %s%s offset %lld quota %lld",
                    d->direction == RPC2_SE_FETCH ? "fetch" : "store", kind_name(d->file_kind), file,
                    (long long)d->seek_offset, (long long)d->quota);
}

static const struct se_ops sftp_ops = {
    .name = "sftp",
    .call_before = client_call_before,
    .call_after = client_call_after,
    .call_abandon = client_call_abandon,
    .request = server_request,
    .init = server_init,
    .check = server_check,
    .reply = server_reply,
    .abort = server_abort,
    .request_free = server_request_free,
    .receive = sftp_receive,
    .unbind = sftp_unbind,
    .describe = sftp_describe,
};

/* ---- activation --------------------------------------------------------- */

int sftp_register(struct engine *e, const struct rpc2_sftp_params *p)
{
    struct rpc2_sftp_params defaults;
    if (!p) {
        rpc2_sftp_params_init(&defaults);
        p = &defaults;
    }
    if (rpc2_sftp_params_check(p) != 0)
        return RPC2_EINVAL;
    struct sftp_type *t = calloc(1, sizeof *t);
    if (!t)
        return RPC2_ENOMEM;
    t->params = *p;
    memshare_init(&t->memory, p->memory_cap);
    int rc = engine_se_register(e, RPC2_SE_SFTP, &sftp_ops, t, free);
    if (rc != 0)
        free(t);
    return rc;
}

int sftp_stats_of(const struct engine *e, struct rpc2_sftp_stats *out)
{
    const struct sftp_type *t = engine_se_type(e, RPC2_SE_SFTP);
    if (!t || !out)
        return RPC2_EINVAL;
    *out = t->stats;
    return 0;
}

int rpc2_sftp_activate(rpc2_ctx *ctx, const struct rpc2_sftp_params *p)
{
    return ctx ? sftp_register(ctx_engine(ctx), p) : RPC2_EINVAL;
}

int rpc2_sftp_stats(const rpc2_ctx *ctx, struct rpc2_sftp_stats *out)
{
    return ctx ? sftp_stats_of(ctx_engine((rpc2_ctx *)ctx), out) : RPC2_EINVAL;
}

/* ---- rate control and progress of the running transfer (docs/RATE.md) --- */

static struct xfer *running_xfer(rpc2_conn *c)
{
    if (!c || c->se_ops != &sftp_ops)
        return NULL;
    if (conn_is_client(c))
        return c->call ? c->call->se_transfer : NULL;
    return c->running ? c->running->se_transfer : NULL;
}

int rpc2_sftp_set_rate(rpc2_conn *c, const struct rpc2_sftp_rate *r)
{
    struct xfer *x = running_xfer(c);
    if (!r || r->policy > SFTP_POLICY_MAX)
        return RPC2_EINVAL;
    if (!x || x->result <= 0)
        return RPC2_ENOENT;
    x->now = ctx_now();
    if (x->source) {
        int rc = sftp_source_set_rate(x->source, r->policy, r->rate_bps, r->min_rate_bps, x->now);
        after_event(x);
        return rc;
    }
    x->wish = (struct sftp_wish){r->policy, r->rate_bps, r->min_rate_bps};
    x->has_wish = 1;
    if (x->sink)
        sftp_sink_set_wish(x->sink, &x->wish);
    if (is_source(x)) { /* not started yet: the source starts with it */
        x->cfg.policy = r->policy ? r->policy : x->cfg.policy;
        x->cfg.rate_bps = r->rate_bps;
        x->cfg.min_rate_bps = r->min_rate_bps;
    }
    return 0;
}

int rpc2_sftp_transfer_info(rpc2_conn *c, struct rpc2_sftp_transfer_info *out)
{
    struct xfer *x = running_xfer(c);
    if (!out)
        return RPC2_EINVAL;
    memset(out, 0, sizeof *out);
    return x ? xfer_info(x, out) : RPC2_ENOENT;
}

static int xfer_info(const struct xfer *x, struct rpc2_sftp_transfer_info *out)
{
    memset(out, 0, sizeof *out);
    if (!x->source && !x->sink)
        return RPC2_ENOENT;
    const struct sftp_counters *k =
        x->source ? sftp_source_counters(x->source) : sftp_sink_counters(x->sink);
    out->is_source = x->source != NULL;
    out->packets = x->source ? k->data_sent : k->data_received;
    out->packets_retransmitted = k->data_retransmitted;
    out->bytes_retransmitted = k->bytes_retransmitted;
    out->packets_lost = k->data_lost;
    out->timeouts = k->timeouts;
    if (x->source) {
        struct sftp_rate_info ri;
        sftp_source_rate_info(x->source, &ri);
        out->policy = ri.policy;
        out->bytes = sftp_source_bytes(x->source);
        out->rate_bps = ri.rate_bps;
        out->target_bps = ri.target_bps;
        out->min_rate_bps = ri.min_bps;
        out->srtt_us = ri.srtt_us;
        out->min_rtt_us = ri.min_rtt_us;
    } else {
        out->policy = rpc2_sftp_policy_name(x->has_wish ? x->wish.policy : 0);
        out->bytes = k->bytes_received;
        out->target_bps = x->has_wish ? x->wish.rate : 0;
        out->min_rate_bps = x->has_wish ? x->wish.min_rate : 0;
        out->srtt_us = sftp_sink_srtt_us(x->sink);
    }
    return 0;
}
