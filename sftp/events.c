/*
 * events.c - builds and delivers a transfer's events (event.h). Every
 * event starts from the transfer's shared fields (direction, ends, range,
 * size) and adds what its type says; the path (rate, delay, loss) comes
 * from the machine while it runs and is kept for the STOP that follows it.
 * The older progress callback is fed from the same place, so the two can
 * never disagree about the bytes moved.
 */
#include <string.h>
#include <rpc2/event.h>

#include "events.h"

static const char *const names[] = {
    [RPC2_EVENT_INIT] = "INIT",
    [RPC2_EVENT_SESSION] = "SESSION",
    [RPC2_EVENT_NOTIFICATION] = "NOTIFICATION",
    [RPC2_EVENT_STATS] = "STATS",
    [RPC2_EVENT_STOP] = "STOP",
    [RPC2_EVENT_ERROR] = "ERROR",
    [RPC2_EVENT_RETRY] = "RETR",
};

const char *rpc2_event_name(int type)
{
    if (type <= 0 || (size_t)type >= sizeof names / sizeof names[0])
        return NULL;
    return names[type];
}

static void deliver(struct sftp_events *e, struct rpc2_event *ev, enum rpc2_event_type type,
                    uint64_t now)
{
    ev->type = type;
    ev->elapsed_us = now > e->started ? now - e->started : 0;
    ev->desc = e->desc;
    if (e->desc && e->desc->event && e->desc->event(ev, e->desc->event_arg) == RPC2_EVENT_CANCEL &&
        type != RPC2_EVENT_STOP)
        e->cancel = 1;
}

/* Loss: the data packets resent, in hundredths of a per cent of those
 * sent (or received). */
static uint32_t loss_bp(uint64_t resent, uint64_t packets)
{
    if (!packets)
        return 0;
    uint64_t bp = resent * 10000 / packets;
    return bp > 10000 ? 10000 : (uint32_t)bp;
}

static void path_fields(const struct sftp_events *e, struct rpc2_event *ev)
{
    const struct rpc2_sftp_transfer_info *p = &e->path;
    if (!e->have_path)
        return;
    ev->rate_bps = p->rate_bps * 8;
    ev->target_bps = p->target_bps * 8;
    ev->min_rate_bps = p->min_rate_bps * 8;
    ev->policy = p->policy;
    ev->delay_us = p->srtt_us;
    ev->min_delay_us = p->min_rtt_us;
    ev->loss_bp = loss_bp(p->packets_retransmitted, p->packets);
    ev->packets = p->packets;
    ev->packets_retransmitted = p->packets_retransmitted;
    ev->bytes_retransmitted = p->bytes_retransmitted;
    ev->timeouts = p->timeouts;
}

void sftp_events_init(struct sftp_events *e, struct rpc2_se_desc *d, int is_client, int is_source,
                      int64_t size, uint64_t now)
{
    memset(e, 0, sizeof *e);
    e->desc = d;
    e->started = e->last_stats = e->stats_at = now;
    e->interval_us = d->stats_interval_us ? d->stats_interval_us : RPC2_EVENT_STATS_DEFAULT_US;
    struct rpc2_event *b = &e->base;
    b->struct_size = sizeof *b;
    b->direction = (int)d->direction;
    b->is_client = is_client;
    b->is_source = is_source;
    b->start_byte = d->seek_offset;
    b->end_byte = d->quota >= 0 ? d->seek_offset + d->quota - 1 : -1;
    b->size = size;
    b->resume = d->resume;
    b->checksum_type = "xxh128";
    e->began = 1;
    struct rpc2_event ev = *b;
    ev.checksum_type = NULL;
    deliver(e, &ev, RPC2_EVENT_INIT, now);
}

void sftp_events_session(struct sftp_events *e, int piggybacked,
                         const struct rpc2_sftp_transfer_info *path, uint32_t packet_size,
                         uint32_t window, uint64_t now)
{
    if (!e->began || e->joined)
        return;
    e->joined = 1;
    e->base.piggybacked = piggybacked;
    struct rpc2_event ev = e->base;
    ev.checksum_type = NULL;
    deliver(e, &ev, RPC2_EVENT_SESSION, now);
    if (!path)
        return;
    sftp_events_path(e, path);
    ev = e->base;
    ev.checksum_type = NULL;
    path_fields(e, &ev);
    ev.packet_size = packet_size;
    ev.window = window;
    deliver(e, &ev, RPC2_EVENT_NOTIFICATION, now);
}

/* As a sink the machine has no pace of its own: the rate is the bytes that
 * arrived since the last STATS over the time since. */
static void arrival_rate(struct sftp_events *e, struct rpc2_event *ev, uint64_t bytes, uint64_t now)
{
    if (ev->rate_bps || now <= e->stats_at || bytes < e->stats_bytes)
        return;
    ev->rate_bps = (bytes - e->stats_bytes) * 8 * 1000000 / (now - e->stats_at);
}

int sftp_events_stats_due(const struct sftp_events *e, uint64_t now)
{
    return e->began && e->desc && e->desc->event && now - e->last_stats >= e->interval_us;
}

void sftp_events_progress(struct sftp_events *e, uint64_t bytes, int64_t total,
                          const struct rpc2_sftp_transfer_info *path, uint64_t now)
{
    struct rpc2_se_desc *d = e->desc;
    if (!e->began || !d)
        return;
    if (path)
        sftp_events_path(e, path);
    if (total >= 0 && e->base.size < 0)
        e->base.size = total;
    if (d->progress && bytes != e->last_progress)
        d->progress(bytes, total, d->progress_arg);
    e->last_progress = bytes;
    if (!d->event || now - e->last_stats < e->interval_us)
        return;
    e->last_stats = now;
    struct rpc2_event ev = e->base;
    ev.checksum_type = NULL;
    ev.file_bytes = bytes;
    path_fields(e, &ev);
    arrival_rate(e, &ev, bytes, now);
    e->stats_bytes = bytes;
    e->stats_at = now;
    deliver(e, &ev, RPC2_EVENT_STATS, now);
}

void sftp_events_path(struct sftp_events *e, const struct rpc2_sftp_transfer_info *path)
{
    e->path = *path;
    e->have_path = 1;
}

/* The failure is the named sum differing from the one expected: the sum
 * of the bytes that came is the news, not a sum of a good transfer. */
static int sum_disagreed(const struct rpc2_se_desc *d)
{
    return d->expect_sum_len && d->sum_len == d->expect_sum_len &&
           memcmp(d->sum, d->expect_sum, d->sum_len) != 0;
}

void sftp_events_stop(struct sftp_events *e, const struct rpc2_se_desc *d, int result,
                      int call_status, uint64_t now)
{
    if (!e->began || e->stopped || !e->desc)
        return;
    e->stopped = 1;
    struct rpc2_event ev = e->base;
    path_fields(e, &ev);
    ev.start_byte = d->seek_offset + (int64_t)d->resumed_from; /* known once it ran */
    ev.file_bytes = d->bytes_transferred;
    /* the machine's final counts (the path above is as last sampled) */
    ev.duplicates = d->stats.duplicates;
    ev.packets = d->stats.data_sent + d->stats.data_received;
    ev.packets_retransmitted = d->stats.retransmissions;
    ev.timeouts = d->stats.timeouts;
    ev.loss_bp = loss_bp(ev.packets_retransmitted, ev.packets);
    if (ev.size < 0 && result == 0)
        ev.size = (int64_t)ev.file_bytes; /* a sink learns the size by receiving it all */
    ev.result = result;
    ev.call_status = call_status;
    ev.quota_exceeded = d->quota_exceeded;
    ev.started_over = d->resume_started_over;
    ev.resume_note = d->resume_note;
    if (result != 0) {
        ev.error_name = rpc2_errname(result);
        ev.error_description = rpc2_strerror(result);
        ev.checksum_type = NULL;
        deliver(e, &ev, RPC2_EVENT_ERROR, now);
    }
    if (result != 0 && !sum_disagreed(d)) {
        ev.checksum_type = NULL;
    } else if (d->sum_len) { /* the named sum asked for (or the one that differed) */
        ev.checksum = d->sum;
        ev.checksum_len = d->sum_len;
        ev.checksum_type = rpc2_se_sum_name(d->sum_type);
    } else if (d->checksum_valid) {
        ev.checksum = d->checksum;
        ev.checksum_len = sizeof d->checksum;
    } else {
        ev.checksum_type = NULL;
    }
    deliver(e, &ev, RPC2_EVENT_STOP, now);
}
