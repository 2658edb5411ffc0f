/*
 * resume.h - continuing a transfer from a restart point (restart.h).
 *
 * The sink (an atomic sink by name, opened resumable) keeps its partial
 * file and restart points across attempts. When a new attempt opens it,
 * the sink hashes its partial's prefix again up to the last restart point
 * and, if that matches the point's checksum, offers the point to the source
 * (in START, wire.h). The source hashes its own bytes [0, offset) and
 * confirms (its DATA then carry SFTP_DATA_RESUMED and start at offset) or
 * refuses (it sends from 0). Each end's hash state then holds the prefix,
 * so the end-to-end checksum still covers the whole file. A refusal makes
 * the sink start over (or fail with RPC2_ECHANGED, by the descriptor), and
 * a partial or restart file that does not check out locally is never
 * offered: the transfer starts over. Nothing is ever spliced.
 *
 * Hashing a prefix reads it from the local disk on the thread that drives
 * the transfer (the loop): for a large prefix that is a pause of a fraction
 * of a second per GiB, much less than moving it again.
 */
#ifndef RPC2_SFTP_RESUME_H
#define RPC2_SFTP_RESUME_H

#include <stdint.h>

#include "hash.h"

struct fileio;

/* Bytes between restart points when the descriptor says 0. */
#define RESUME_DEFAULT_INTERVAL (32u << 20)

struct namedsum;

/* Feeds the bytes [from, from + len) of fd into the hash state h, and into
 * the named checksum's hasher when one was asked for (else NULL): the one
 * place a prefix is hashed, on either end. 0, or an rpc2 error (a file
 * shorter than that is RPC2_ECHANGED). */
int resume_feed_prefix(int fd, int64_t from, uint64_t len, XXH3_state_t *h,
                       struct namedsum *named);

/* Sink, after its resumable temporary was opened (existed: an earlier
 * attempt's partial was found): opens the restart-point file and checks
 * the partial against its last point. 0 or an rpc2 error. */
int resume_sink_open(struct fileio *f, int existed);
/* 1 with the restart point to offer the source, 0 when there is none. */
int resume_sink_offer(const struct fileio *f, uint64_t *offset, uint8_t sum[16]);
/* The source's answer (first DATA packet; or a write before any: 0):
 * confirmed continues from the offered point, else from 0. 0 or an rpc2
 * error (RPC2_ECHANGED when refused and the descriptor asks to fail; a
 * confirmation of nothing offered is RPC2_EBADPACKET). A second call does
 * nothing. */
int resume_sink_decide(struct fileio *f, int confirmed);
/* Whether resume_sink_decide has run (or no resume is kept). */
int resume_sink_decided(const struct fileio *f);
/* After bytes were hashed in order: records a restart point when one is
 * due (the data made durable first). 0 or an rpc2 error. */
int resume_sink_wrote(struct fileio *f);
/* At the end, committed or not: a partial without any restart point is
 * worth nothing to a later attempt, so it goes with its point file. */
void resume_sink_settle(struct fileio *f);
void resume_sink_free(struct fileio *f);

/* Source: the sink offers offset with the checksum of [0, offset). 1:
 * confirmed, the source now reads from offset with the prefix in its hash;
 * 0: refused (a different file, or one that cannot be read from an offset),
 * the source sends from 0; or an rpc2 error reading the file. */
int resume_source_confirm(struct fileio *f, uint64_t offset, const uint8_t sum[16]);

#endif
