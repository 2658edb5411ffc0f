/*
 * sftp_server.c - the server's end of an SFTP transfer: the request's
 * block is checked before anything is kept, the handler's descriptor opens
 * the local file, piggybacked data is written or read at once, anything
 * else streams under the stall bound, and the reply's block says how it
 * ended.
 */
#include <stdlib.h>
#include <string.h>

#include "xfer.h"

static int valid_request(const struct seblock_call *b)
{
    return b->packet_size >= 256 && b->packet_size <= SFTP_MAX_PACKET && b->window >= 1 &&
           b->window <= SFTP_MAX_WINDOW;
}

int sftp_server_request(void *type, rpc2_request *req, const uint8_t *se, uint32_t se_len,
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
    x->cfg =
        sftp_config_of(&t->params, b.packet_size, b.window < own_window ? b.window : own_window);
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

int sftp_server_init(void *type, rpc2_request *req, void *transfer, struct rpc2_se_desc *d,
                     uint64_t now)
{
    struct xfer *x = transfer;
    if (x->result <= 0)
        return x->result < 0 ? x->result : RPC2_EINVAL; /* ended already: nothing to open */
    if (x->file || d->direction != x->direction)
        return RPC2_EINVAL; /* initialised twice, or the two ends disagree */
    x->desc = d;
    x->now = now;
    xfer_desc_start(d);
    d->sum_type = (int)x->sum_type; /* the client chooses the named sum */
    int rc = xfer_open_local(x, d, xfer_is_source(x));
    if (rc == 0)
        rc = fileio_limit(x->file, x->peer_quota, x->peer_flags & SEBLOCK_STRICT);
    if (rc == 0 && x->have_peer_info && !xfer_is_source(x)) {
        xfer_info_in(x, &x->peer_info);
        /* a full disk fails now, before START; piggybacked bytes are
         * written at once, and that write says so as soon (a call to make
         * room would cost a small file more than its write) */
        if (x->peer_info.size < UINT64_MAX && !x->piggy)
            rc = fileio_reserve(x->file, x->peer_info.size);
    }
    if (rc == 0)
        rc = xfer_report_init(x, d);
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

static void stalled(struct stall *st, uint64_t now)
{
    struct xfer *x = (struct xfer *)((char *)st - offsetof(struct xfer, stall));
    x->engine->stats.transfers_stalled++;
    /* The silence as measured, not the bound configured: how late the timer
     * fired is what an operator (and test_stall) can check here. */
    log_msg(&x->engine->log, RPC2_LOG_WARN,
            "sftp: %s with %s stalled: no byte moved for %.1f s (%llu moved in the %.1f s before), "
            "ended",
            xfer_is_source(x) ? "fetch" : "store", x->req ? rpc2_request_peer(x->req) : "?",
            (double)(now - st->moved_at) / 1e6, (unsigned long long)xfer_bytes_moved(x),
            (double)(st->moved_at - st->started_at) / 1e6);
    xfer_server_abort(x->type, x->req, x, RPC2_ESTALLED, now);
}

/* Piggybacked data is written or read at once; anything else streams. */
static int start_check(struct xfer *x, uint64_t now)
{
    if (x->piggy && !xfer_is_source(x)) {
        x->type->stats.piggybacked++;
        xfer_report_session(x, 1);
        xfer_server_complete(x, xfer_write_piggy(x, x->piggy, x->piggy_len, x->piggy_sum,
                                                 x->piggy_sum_len,
                                                 x->piggy_named.len ? &x->piggy_named : NULL));
        return 0;
    }
    if (xfer_is_source(x) && !x->restart_offered) {
        int rc = xfer_read_piggy(x, reply_piggyback_max(x));
        if (rc < 0)
            return rc;
        if (rc == 1) {
            x->piggy_reply = 1;
            x->type->stats.piggybacked++;
            xfer_report_session(x, 1);
            xfer_server_complete(x, 0);
            return 0;
        }
    }
    int rc = xfer_start_machine(x);
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
    xfer_report_session(x, 0);
    if (x->ev.cancel)
        engine_timer_set(x->engine, &x->timer, now);
    return 0;
}

int sftp_server_check(void *type, rpc2_request *req, void *transfer, se_check_done_fn done,
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

int sftp_server_reply(void *type, rpc2_request *req, void *transfer, int status,
                      struct pkt_writer *w)
{
    struct xfer *x = transfer;
    if (x->result > 0 && x->file) {
        /* the handler replied without waiting for its transfer: it is over */
        xfer_stop_machines(x);
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
        xfer_info_out(x, &b.flags, &b.info);
    seblock_reply_encode(&b, w);
    return w->failed ? RPC2_ETOOBIG : 0;
}

void sftp_server_request_free(void *type, rpc2_request *req, void *transfer)
{
    xfer_free(transfer);
}

/* The connection goes while a transfer runs: the handler hears it. */
void sftp_server_unbind(void *type, rpc2_conn *c)
{
    if (conn_is_client(c) || !c->running || !c->running->se_transfer)
        return;
    struct xfer *x = c->running->se_transfer;
    x->conn = NULL;
    xfer_stop_machines(x);
    xfer_server_complete(x, RPC2_ECLOSED);
}
