/*
 * sftp_client.c - the client's end of an SFTP transfer: the CALL's block
 * (what to move, piggybacked data, restart point, sums), then settling the
 * local file from the reply's block: every byte, the same sums, or a
 * failure that leaves nothing at the file's name.
 */
#include <string.h>

#include "resume.h"
#include "xfer.h"

int sftp_client_call_before(void *type, rpc2_conn *c, struct rpc2_se_desc *d, uint32_t seq,
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
    xfer_desc_start(d);
    uint32_t packet = sftp_choose_packet_size(&t->params, conn_peer(c));
    x->cfg = sftp_config_of(&t->params, packet, sftp_choose_window(&t->params, packet));
    x->wish = (struct sftp_wish){t->params.policy, t->params.rate_bps, t->params.min_rate_bps};
    x->has_wish = x->wish.policy || x->wish.rate || x->wish.min_rate;
    rc = xfer_open_local(x, d, xfer_is_source(x));
    if (rc == 0)
        rc = xfer_report_init(x, d);
    size_t room = (size_t)(w->end - w->p);
    uint32_t piggy_max = sftp_choose_piggyback_max(&t->params, conn_peer(c), room);
    if (rc == 0 && xfer_is_source(x))
        rc = xfer_read_piggy(x, piggy_max);
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
    xfer_info_out(x, &b.flags, &b.info);
    if (d->resume)
        b.flags |= SEBLOCK_RESUME;
    if (!xfer_is_source(x) && resume_sink_offer(x->file, &b.restart, b.restart_sum))
        b.flags |= SEBLOCK_RESTART; /* and no piggyback: the rest streams from the point */
    /* Piggybacked data is written when the reply comes, at once: not into a
     * file that may have no room then (a pipe), which streams instead. */
    if (!xfer_is_source(x) && t->params.piggyback && !fileio_may_wait(x->file) &&
        !(b.flags & SEBLOCK_RESTART)) {
        b.flags |= SEBLOCK_PIGGY_OK;
        b.piggyback_max =
            sftp_choose_piggyback_max(&t->params, conn_peer(c), PKT_MAX_BODY - RESULT_ROOM);
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
    if (fileio_check_named(
            x->file, namedsum_value_of(r->sum_type, r->named_sum, r->named_sum_len, &named)) != 0) {
        log_msg(&x->engine->log, RPC2_LOG_WARN, "sftp: %s", fileio_why(x->file));
        return 0;
    }
    return memcmp(own, r->checksum, sizeof own) == 0;
}

static int local_outcome(struct xfer *x, int status, const struct seblock_reply *r)
{
    if (xfer_failed_here(x))
        return xfer_machine_state(x); /* whatever the call says, this end failed itself */
    if (status != 0)
        return 0;
    int rc = 0;
    if (r && (r->flags & SEBLOCK_PIGGY) && !xfer_is_source(x)) {
        x->type->stats.piggybacked++;
        struct namedsum_value named;
        rc = xfer_write_piggy(
            x, r->data, r->data_len, r->checksum, r->checksum_len,
            namedsum_value_of(r->sum_type, r->named_sum, r->named_sum_len, &named));
    } else if (!xfer_is_source(x)) {
        int state = xfer_machine_state(x);
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
    if (r && (r->flags & SEBLOCK_SOURCE_INFO) && !xfer_is_source(x))
        xfer_info_in(x, &r->info); /* the attributes, before the file takes its name */
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

void sftp_client_call_after(void *type, rpc2_conn *c, void *transfer, int *status,
                            const uint8_t *se, uint32_t se_len, uint64_t now)
{
    struct xfer *x = transfer;
    struct seblock_reply r;
    int have_block = se && seblock_reply_decode(se, se_len, &r) == PKT_OK;
    x->now = now;
    if (have_block && r.status == 0)
        xfer_report_session(x, x->piggy || (r.flags & SEBLOCK_PIGGY));
    int ok = client_settle(x, *status, have_block ? &r : NULL);
    if (*status == 0 && !ok)
        *status = RPC2_ESEFAIL1; /* the procedure ran; its side effect failed (desc->error) */
    sftp_events_stop(&x->ev, x->desc, x->result, *status, now);
    xfer_free(x);
}

void sftp_client_call_abandon(void *type, rpc2_conn *c, void *transfer, int status, uint64_t now)
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
        xfer_link_abort(x, status);
    if (x->file)
        fileio_fill_desc(x->file, x->desc);
    x->desc->local_status = RPC2_SE_FAILURE;
    x->desc->error = status;
    x->result = status;
    sftp_events_stop(&x->ev, x->desc, status, status, now);
    xfer_free(x);
}
