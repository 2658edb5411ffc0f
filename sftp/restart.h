/*
 * restart.h - the restart-point file a resumable sink keeps beside its
 * partial file: where a later attempt may continue, and the checksum of
 * every byte before that point, so the continuation is checked against the
 * source's own bytes and never splices two versions of a file.
 *
 * The file is append-only: a restart point is a record of
 * RESTART_RECORD_SIZE bytes, appended and fdatasync'ed after the partial's
 * data up to its offset was itself fdatasync'ed, so whatever a crash (or a
 * power cut) leaves, a valid last record never points past durable data.
 * Record: u32 magic "RCRP", u32 version 1, u64 offset, 16 bytes XXH3-128 of
 * the bytes [0, offset) (canonical), u64 XXH64 of the 32 bytes before it;
 * integers big-endian. Only the last record counts. A file whose length is
 * not a whole number of records (a torn append), or whose last record fails
 * its checksum, is damaged: the transfer starts over rather than trust it.
 */
#ifndef RPC2_SFTP_RESTART_H
#define RPC2_SFTP_RESTART_H

#include <stdint.h>

#define RESTART_RECORD_SIZE 40
#define RESTART_SUM_BYTES 16

struct restart_point {
    uint64_t offset;
    uint8_t sum[RESTART_SUM_BYTES];
};

void restart_record_encode(const struct restart_point *p, uint8_t out[RESTART_RECORD_SIZE]);
/* 0 and *p, or RPC2_EINTEGRITY for a record that is not one. */
int restart_record_decode(const uint8_t in[RESTART_RECORD_SIZE], struct restart_point *p);

/* The last restart point of the file open at fd: 1 and *p, 0 when the file
 * holds none (empty), RPC2_EINTEGRITY when it is damaged, or another rpc2
 * error when it cannot be read. */
int restart_last(int fd, struct restart_point *p);
/* Appends p and makes it durable (fdatasync): 0 or an rpc2 error. */
int restart_append(int fd, const struct restart_point *p);
/* Empties the file, durably: 0 or an rpc2 error. */
int restart_clear(int fd);

/* The names a resumable sink for the file named base uses beside it, found
 * again by a later attempt: ".BASE.rcat-part" (the partial) and
 * ".BASE.rcat-part.rp" (its restart points), BASE shortened so both fit in
 * NAME_MAX. malloc'ed; NULL without memory. */
char *restart_part_name(const char *base);
char *restart_points_name(const char *base);

#endif
