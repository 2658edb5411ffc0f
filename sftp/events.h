/*
 * events.h - a transfer's events (include/rpc2/event.h) as sftp.c raises
 * them: this module builds each event from what the transfer knows, keeps
 * the little state the events need between them (when it began, when STATS
 * was last due, the path as last seen), calls the descriptor's callback and
 * its older progress callback, and remembers a cancel the callback asked
 * for. sftp.c only says when.
 */
#ifndef RPC2_SFTP_EVENTS_H
#define RPC2_SFTP_EVENTS_H

#include <stdint.h>
#include <rpc2/event.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

struct sftp_events {
    struct rpc2_se_desc *desc; /* NULL: no one listens (the handler let it go) */
    struct rpc2_event base;    /* the fields every event of the transfer shares */
    uint64_t started, last_stats, interval_us;
    uint64_t last_progress, stats_bytes, stats_at;
    struct rpc2_sftp_transfer_info path; /* as last seen while the machine ran */
    int have_path;
    int began, joined, stopped;
    int cancel; /* a callback returned RPC2_EVENT_CANCEL: end the transfer */
};

/* INIT: the local end is open. size: the bytes it will move, or -1. */
void sftp_events_init(struct sftp_events *e, struct rpc2_se_desc *d, int is_client, int is_source,
                      int64_t size, uint64_t now);
/* SESSION (and NOTIFICATION when streamed: path non-NULL, with the
 * machine's packet size and window). Once per transfer. */
void sftp_events_session(struct sftp_events *e, int piggybacked,
                         const struct rpc2_sftp_transfer_info *path, uint32_t packet_size,
                         uint32_t window, uint64_t now);
/* Is a STATS event due now? (The caller then gathers the path for it.) */
int sftp_events_stats_due(const struct sftp_events *e, uint64_t now);
/* Bytes moved: the progress callback when they changed, STATS when due.
 * path: the machine's view now, or NULL. */
void sftp_events_progress(struct sftp_events *e, uint64_t bytes, int64_t total,
                          const struct rpc2_sftp_transfer_info *path, uint64_t now);
/* The machine's path as the transfer ends, for STOP's Rate and Delay (a
 * transfer shorter than the STATS interval had none sampled). */
void sftp_events_path(struct sftp_events *e, const struct rpc2_sftp_transfer_info *path);
/* ERROR (when result != 0) and STOP, once; d holds the outcome. */
void sftp_events_stop(struct sftp_events *e, const struct rpc2_se_desc *d, int result,
                      int call_status, uint64_t now);

#endif
