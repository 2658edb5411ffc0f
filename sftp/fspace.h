/*
 * fspace.h - room for a sink's bytes before any of them move.
 *
 * A full disk found by a failed write, after minutes of transfer, wastes
 * the transfer and leaves a partial file to clean up. When the size is
 * known up front (the store's source announces it; a fetch is told it by
 * its caller), the sink reserves the blocks at once: fallocate with
 * FALLOC_FL_KEEP_SIZE, which fails with ENOSPC (or EDQUOT, so quotas count
 * too) without writing anything, and leaves the file's size to the writes.
 * Filesystems that cannot preallocate (EOPNOTSUPP: some network and FUSE
 * filesystems) are asked for their free space instead (statvfs), and keep
 * writing sparsely. Blocks reserved past the end of a file that came out
 * shorter are given back at the end.
 */
#ifndef RPC2_SFTP_FSPACE_H
#define RPC2_SFTP_FSPACE_H

#include <stdint.h>

/* Makes room for [off, off + len) in fd's file (a regular file; anything
 * else needs none). 0, RPC2_ENOSPC, or another rpc2 error, with *why set to
 * a static sentence. */
int fspace_reserve(int fd, int64_t off, int64_t len, const char **why);

/* Gives back blocks reserved beyond the file's end, up to end. */
void fspace_release_tail(int fd, int64_t end);

#endif
