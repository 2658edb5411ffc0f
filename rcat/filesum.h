/*
 * filesum.h - the named sum (md5, sha1, sha256, xxh128) of a file's bytes
 * where the file lies, so that two sides can compare content without
 * moving it (rcatd's SUM; rcat's side of --checksum-compare). The sums are
 * those a transfer's --checksum computes, in the byte order md5sum,
 * sha256sum and `xxhsum -H2` print.
 */
#ifndef RCAT_FILESUM_H
#define RCAT_FILESUM_H

#include <stdint.h>

#define FILESUM_MAX 32 /* bytes of the longest (sha256) */

/* Sums length bytes (-1: to the end) of fd from offset with pread, type
 * one of rpc2/se.h's RPC2_SE_SUM_*: out gets *len bytes, *bytes says how
 * many were summed (fewer than length when the file ends first). 0, or
 * -EINVAL (an unknown type, a negative offset), -ENOMEM, or the -errno of
 * a failed read. */
int filesum_fd(int fd, int type, uint64_t offset, int64_t length, unsigned char out[FILESUM_MAX],
               unsigned *len, uint64_t *bytes);

#endif
