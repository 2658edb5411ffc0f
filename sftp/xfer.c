/*
 * xfer.c - one SFTP transfer at either end: the link its machines send on,
 * its lifetime, the machines (source.c, sink.c) with their packet memory,
 * the local file's watch, the descriptor's events, and piggybacked data.
 * The hooks rpc2 calls (sftp_client.c, sftp_server.c) drive it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resume.h"
#include "xfer.h"

int xfer_is_source(const struct xfer *x)
{
    return x->is_client == (x->direction == RPC2_SE_STORE);
}

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

_Static_assert(CONN_LEND_HEADROOM <= SFTP_LEND_HEADROOM && CONN_LEND_TAILROOM <= SFTP_LEND_TAILROOM,
               "the machines leave the engine room for its header and trailer");

static uint64_t link_lend(void *arg, uint8_t type, uint8_t flags, uint32_t seq, uint32_t ts_echo,
                          uint8_t *body, size_t len)
{
    struct xfer *x = arg;
    return x->conn ? conn_packet_lend(x->conn, type, flags, seq, x->id, ts_echo, body, len, x->now)
                   : 0;
}

static void link_unpin(void *arg, uint64_t pin)
{
    struct xfer *x = arg;
    engine_unpin(x->engine, pin);
}

static void link_set_timer(void *arg, uint64_t deadline)
{
    struct xfer *x = arg;
    engine_timer_set(x->engine, &x->timer, deadline);
}

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

void xfer_stop_machines(struct xfer *x)
{
    struct sftp_type *t = x->type;
    const struct sftp_counters *c = x->source ? sftp_source_counters(x->source)
                                    : x->sink ? sftp_sink_counters(x->sink)
                                              : NULL;
    if (c) {
        add_counters(&t->stats, c);
        if (x->desc)
            fill_desc_stats(x->desc, c);
    }
    unwatch(x);
    stall_stop(&x->stall);
    engine_undefer(x->engine, &x->batch);
    sftp_source_free(x->source);
    sftp_sink_free(x->sink);
    x->source = NULL;
    x->sink = NULL;
    engine_timer_set(x->engine, &x->timer, UINT64_MAX);
    memshare_leave(&t->memory, &x->memory);
}

static void fire_timer(struct engine_timer *et, uint64_t now);
static void file_ready(struct engine_fdwatch *w, uint64_t now);
static void batch_ended(struct engine_deferred *d, uint64_t now);

struct xfer *xfer_new(struct sftp_type *t, rpc2_conn *c, uint32_t id, int is_client)
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
    x->batch.run = batch_ended;
    x->watch.ready = file_ready;
    t->stats.transfers++;
    return x;
}

void xfer_free(struct xfer *x)
{
    if (!x)
        return;
    xfer_stop_machines(x);
    if (x->file) {
        fileio_finish(x->file, 0); /* unfinished: a failure, nothing left at an atomic name */
        fileio_free(x->file);
    }
    if (x->result < 0)
        x->type->stats.failed++;
    free(x->piggy);
    free(x);
}

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

int xfer_start_machine(struct xfer *x)
{
    struct sftp_link link = {.begin = link_begin,
                             .commit = link_commit,
                             .set_timer = link_set_timer,
                             .arg = x,
                             .lend = link_lend,
                             .unpin = link_unpin};
    int rc;

    if (xfer_is_source(x)) {
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

int xfer_machine_state(const struct xfer *x)
{
    if (x->source)
        return sftp_source_state(x->source);
    return x->sink ? sftp_sink_state(x->sink) : SFTP_RUNNING;
}

/* Whether this end's machine failed by its own doing (not the peer's ABORT).
 * On the client, once the reply is in: a sink must hold every byte; a
 * source is vouched for by the server's sink, whose verdict is in the reply. */
int xfer_failed_here(const struct xfer *x)
{
    return x->source ? sftp_source_failed_here(x->source)
                     : x->sink && sftp_sink_failed_here(x->sink);
}

/* The peer's ABORT ended the machine: the other end failed by its own doing. */
static int machine_failed_by_peer(const struct xfer *x)
{
    return (x->source || x->sink) && xfer_machine_state(x) < 0 && !xfer_failed_here(x);
}

/* The progress callback and STATS; the machine's path only when due. */
static void report_progress(struct xfer *x)
{
    struct rpc2_sftp_transfer_info ti;
    int path = sftp_events_stats_due(&x->ev, x->now) && xfer_info(x, &ti) == 0;
    sftp_events_progress(&x->ev, fileio_bytes(x->file), fileio_source_size(x->file),
                         path ? &ti : NULL, x->now);
}

/* SESSION: the peer's end has joined (with NOTIFICATION when streamed). */
void xfer_report_session(struct xfer *x, int piggybacked)
{
    struct rpc2_sftp_transfer_info ti;
    int path = !piggybacked && xfer_info(x, &ti) == 0;
    sftp_events_session(&x->ev, piggybacked, path ? &ti : NULL, x->cfg.packet_size, x->cfg.window,
                        x->now);
}

/* INIT, once the local end is open; whether the callback cancelled. */
int xfer_report_init(struct xfer *x, struct rpc2_se_desc *d)
{
    int64_t size = fileio_source_size(x->file);
    if (size < 0 && d->expected_size && d->expected_size <= INT64_MAX)
        size = (int64_t)d->expected_size;
    sftp_events_init(&x->ev, d, x->is_client, xfer_is_source(x), size, x->now);
    return x->ev.cancel ? RPC2_ECANCELED : 0;
}

/* The server's end finished: the handler's descriptor gets the outcome and
 * is let go (the handler may free it before replying); then the handler is
 * told, and replies. */
void xfer_server_complete(struct xfer *x, int status)
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
    xfer_stop_machines(x);
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
uint64_t xfer_bytes_moved(const struct xfer *x)
{
    if (x->source)
        return sftp_source_bytes(x->source);
    return x->sink ? sftp_sink_bytes(x->sink) : 0;
}

/* After any event: has the machine finished? */
void xfer_after_event(struct xfer *x)
{
    if (x->file)
        report_progress(x);
    if (x->ev.cancel) /* ended from the timer, where nothing runs above it */
        engine_timer_set(x->engine, &x->timer, x->now);
    update_watch(x);
    int state = xfer_machine_state(x);
    if (x->is_client)
        return; /* a client's end is settled by the reply */
    if (state == SFTP_RUNNING)
        stall_progress(&x->stall, xfer_bytes_moved(x), x->now);
    else
        xfer_server_complete(x, state == SFTP_DONE ? 0 : state);
}

/* A callback asked to cancel: a client ends its call (the abandon hook
 * tells the server), a server its end of the transfer (the handler hears
 * RPC2_ECANCELED). */
static void cancel_now(struct xfer *x)
{
    x->ev.cancel = 0;
    if (!x->is_client) {
        xfer_server_abort(x->type, x->req, x, RPC2_ECANCELED, x->now);
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
    xfer_after_event(x);
}

static void file_ready(struct engine_fdwatch *w, uint64_t now)
{
    struct xfer *x = (struct xfer *)((char *)w - offsetof(struct xfer, watch));
    x->now = now;
    if (x->source)
        sftp_source_resume(x->source, now);
    else if (x->sink)
        sftp_sink_resume(x->sink, now);
    xfer_after_event(x);
}

/* The sink's packets of a receive batch are in: it writes them and acks. */
static void batch_ended(struct engine_deferred *d, uint64_t now)
{
    struct xfer *x = (struct xfer *)((char *)d - offsetof(struct xfer, batch));
    x->now = now;
    if (!x->sink)
        return;
    sftp_sink_batch_end(x->sink, now);
    xfer_after_event(x);
}

/* Ends the server's end now: the peer hears an ABORT with status, the
 * handler the outcome. One not yet initialised is marked, so that its init
 * is refused with status. */
void xfer_server_abort(void *type, rpc2_request *req, void *transfer, int status, uint64_t now)
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
    xfer_server_complete(x, status);
}

/* A client storing by streaming starts its machine on the server's START. */
static int client_lazy_start(struct xfer *x, uint8_t type)
{
    if (x->source || x->sink)
        return 0;
    if (!x->is_client || x->piggy_len ||
        (xfer_is_source(x) ? type != PKT_SFTP_START : type != PKT_SFTP_DATA))
        return -1;
    if (xfer_start_machine(x) != 0)
        return -1;
    if (x->sink)
        sftp_sink_start(x->sink, 0, x->now);
    xfer_report_session(x, 0);
    return 0;
}

void xfer_receive(void *type, rpc2_conn *c, const struct pkt_hdr *h, const uint8_t *body,
                  uint64_t now)
{
    struct xfer *x = conn_transfer(c, h->transfer);
    if (!x || (x->result <= 0 && !x->is_client))
        return; /* not a transfer of ours, or one that is over */
    x->now = now;
    if (!x->is_client && !x->source && !x->sink && h->type == PKT_SFTP_ABORT) {
        int32_t error;
        if (sftp_abort_decode(body, h->body_len, &error) == PKT_OK && error < 0)
            xfer_server_abort(x->type, x->req, x, error, now); /* the client gave up first */
        return;
    }
    if (client_lazy_start(x, h->type) != 0)
        return;
    if (x->source)
        sftp_source_receive(x->source, h->type, h->seq, h->ts, h->ts_echo, body, h->body_len, now);
    else if (x->sink) {
        /* the body stays valid until the batch ends (engine.h) */
        sftp_sink_batch_begin(x->sink);
        engine_defer(x->engine, &x->batch);
        sftp_sink_receive(x->sink, h->type, h->flags, h->seq, h->ts, h->ts_echo, body, h->body_len,
                          now);
    }
    xfer_after_event(x);
}

/* Reads the whole source if it holds at most max bytes. Returns 1 with the
 * data in x->piggy, 0 when it is larger (bytes already read stay with the
 * stream for the machine), or a negative error. */
int xfer_read_piggy(struct xfer *x, uint32_t max)
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
int xfer_write_piggy(struct xfer *x, const uint8_t *data, size_t len, const uint8_t *sum,
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

/* Sets SEBLOCK_SOURCE_INFO in *flags when this end's source is a file. */
void xfer_info_out(const struct xfer *x, uint32_t *flags, struct seblock_info *out)
{
    struct fileio_info i;
    if (!x->file || !xfer_is_source(x) || !fileio_source_info(x->file, &i))
        return;
    *out = (struct seblock_info){.size = i.size < 0 ? UINT64_MAX : (uint64_t)i.size,
                                 .mode = i.mode,
                                 .mtime_sec = i.mtime_sec,
                                 .mtime_nsec = i.mtime_nsec};
    *flags |= SEBLOCK_SOURCE_INFO;
}

/* The sink hears what the source said: the attributes its file may take. */
void xfer_info_in(struct xfer *x, const struct seblock_info *in)
{
    struct fileio_info i = {.size = in->size > INT64_MAX ? -1 : (int64_t)in->size,
                            .mode = in->mode,
                            .mtime_sec = in->mtime_sec,
                            .mtime_nsec = in->mtime_nsec};
    fileio_set_peer_source(x->file, &i);
}

void xfer_desc_start(struct rpc2_se_desc *d)
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

int xfer_open_local(struct xfer *x, struct rpc2_se_desc *d, int as_source)
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

int xfer_info(const struct xfer *x, struct rpc2_sftp_transfer_info *out)
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

void xfer_link_abort(struct xfer *x, int status)
{
    sftp_link_abort(
        &(struct sftp_link){
            .begin = link_begin, .commit = link_commit, .set_timer = link_set_timer, .arg = x},
        status);
}
