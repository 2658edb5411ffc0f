/*
 * fileio.h - the bytes of one side of one transfer, behind whatever the
 * side-effect descriptor names: a path, an open fd, a Linux file handle or a
 * memory buffer. The SFTP machines want a sequential reader and a positional
 * writer (machine.h); this turns each descriptor kind into those, with the
 * seek offset, the byte quota, atomic replacement and errno mapping done
 * once, here, instead of in every caller.
 *
 * Positions and sizes are 64-bit throughout; files larger than 4 GiB work.
 * Bytes go straight between the file and the caller's buffer (pread/pwrite,
 * read/write); a memory descriptor costs one memcpy.
 *
 * What each kind does:
 *
 * - By name (regular files and character devices only). A source is opened
 *   O_RDONLY. A sink that is not atomic is opened O_WRONLY|O_CREAT with the
 *   mode bits and WITHOUT O_TRUNC: writes land at the seek offset, so byte
 *   ranges and appends work, and a shorter transfer over a longer file
 *   leaves its tail (use atomic to replace a file). no_clobber adds O_EXCL.
 *   A failed non-atomic transfer leaves what was written. Directories are
 *   RPC2_EISDIR. FIFOs and sockets are refused (RPC2_EINVAL): opening one
 *   by name would wait on another process, possibly forever, on the loop
 *   thread; pass the open fd instead.
 * - Atomic sink by name (atomicsink.h): written to ".NAME.XXXXXX" (created
 *   O_EXCL, mode 0600 while it fills) in the same directory; when
 *   fileio_finish() is told the transfer succeeded it gets its mode (the
 *   mode bits under the umask, or as file.name.attrs asks: exactly, the
 *   source's, with an mtime), is fsync'ed, renamed over NAME, and the
 *   directory is fsync'ed; otherwise the temporary is removed and NAME is
 *   untouched. no_clobber renames with RENAME_NOREPLACE (or link+unlink
 *   where the filesystem lacks it): RPC2_EEXIST if NAME appeared meanwhile.
 *   An existing NAME must be a regular file or a symlink, which is replaced,
 *   not followed (so /dev/null is never replaced, and a server never writes
 *   through a link), and the seek offset must be 0. attrs on any other sink
 *   are refused (RPC2_EINVAL).
 * - By open fd (never closed here). The seek offset is relative to the fd's
 *   current position and the transfer advances the position by the bytes
 *   moved, so transfers to one fd follow each other like cat. Regular files
 *   and block devices use pread/pwrite at start + pos and are lseek'ed at
 *   finish; pipes, sockets, character devices and O_APPEND fds are streams:
 *   read/write in order, a source's seek offset skipped by reading, a sink's
 *   seek offset refused (RPC2_EINVAL). Without FILEIO_NONBLOCK they block
 *   (an O_NONBLOCK fd is waited on with poll); with it, streamio.c moves
 *   their bytes without blocking and calls that would wait say SFTP_IO_WAIT.
 * - By inode: open_by_handle_at(mount_fd, handle); the file must exist (a
 *   sink is never created or truncated). Needs CAP_DAC_READ_SEARCH: without
 *   it RPC2_EACCES, with a reason in *why. mount_fd must not be O_PATH (the
 *   kernel refuses those, EBADF, reported as RPC2_EINVAL).
 * - In memory: a source reads buf[seek .. len); a sink writes at
 *   buf + seek + pos, at most max - seek bytes, and more is RPC2_EOVERFLOW
 *   (the transfer fails; nothing is truncated). vm.len (out) is the bytes
 *   written, not counting the seek offset. A sink with no room is refused
 *   unless its quota is 0.
 *
 * A regular file as a source is sent as the version it had at open
 * (fileversion.h): never more than the size it had, and RPC2_ECHANGED from
 * the read that would end the stream if it was truncated, extended or
 * written meanwhile. A sink with the descriptor's expected_size (or a later
 * fileio_reserve()) has that room before any byte is written (fspace.h):
 * RPC2_ENOSPC at once otherwise.
 *
 * Quota (-1: none): a source delivers at most quota bytes and then ends;
 * quota_exceeded is set when more was available (for a stream source, whose
 * rest cannot be looked at without consuming it, whenever the quota was
 * reached). A sink cuts writes at the quota and sets quota_exceeded. With
 * FILEIO_STRICT_QUOTA, moving more than the quota fails with RPC2_EQUOTA
 * instead: at open when the source's size is known, else when it happens.
 *
 * The descriptor must stay valid until fileio_free(); fileio_finish() writes
 * its out fields. Not thread-safe: one transfer is driven by one thread.
 */
#ifndef RPC2_SFTP_FILEIO_H
#define RPC2_SFTP_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <rpc2/se.h>

#include "machine.h"

struct fileio;

enum fileio_flags {
    FILEIO_STRICT_QUOTA = 1, /* more than the quota is RPC2_EQUOTA, not a cut */
    FILEIO_NONBLOCK = 2,     /* streams never block: SFTP_IO_WAIT and fileio_wait() */
    /* sink with the descriptor's resume: keep restart points and continue
     * from the last one the source confirms (resume.h) */
    FILEIO_RESUME = 4,
};

#define FILEIO_SUM_BYTES 16

/*
 * Open the descriptor's file as the side that reads (source) or writes
 * (sink). The descriptor is checked first (rpc2_se_desc_check, then what
 * only the role decides), so nothing that makes no sense gets this far.
 * Returns 0 and *out, or an rpc2 error; why (may be NULL) then points to a
 * static sentence worth logging.
 */
int fileio_open_source(struct rpc2_se_desc *d, unsigned flags, struct fileio **out,
                       const char **why);
int fileio_open_sink(struct rpc2_se_desc *d, unsigned flags, struct fileio **out, const char **why);

/* Source: fills buf in order; fewer than len bytes only at the end (quota
 * or end of file). Returns the count, SFTP_IO_WAIT (FILEIO_NONBLOCK: a
 * stream has not enough yet; what it had is kept for the next read), or a
 * negative rpc2 error. */
ssize_t fileio_read(struct fileio *f, uint8_t *buf, size_t len);

/* Source: fileio_read into n <= FILEIO_IOV_MAX buffers in order, as one
 * read of their lengths added up (fewer bytes only at the end); a
 * positional file with one preadv. Not for streams (RPC2_EINVAL). */
#define FILEIO_IOV_MAX 64
ssize_t fileio_readv(struct fileio *f, const struct iovec *iov, int n);

/* Source: reads like fileio_read but gives the bytes back: the next reads
 * return them again, unless fileio_consume() says they went another way
 * (piggybacked in a packet). One peek at a time (RPC2_EINVAL while one is
 * outstanding). fileio keeps a copy of what it peeked, so peek small
 * amounts: a piggyback's worth. */
ssize_t fileio_peek(struct fileio *f, uint8_t *buf, size_t len);
/* Source: the first n peeked bytes are delivered; reads continue after. */
int fileio_consume(struct fileio *f, size_t n);

/* Lowers the quota to quota (-1: leaves it) and makes it strict if strict:
 * what the peer asked for, on top of this side's descriptor. Before any
 * byte moves; a source whose size is known is checked again (RPC2_EQUOTA). */
int fileio_limit(struct fileio *f, int64_t quota, int strict);

/* Sink: writes data at stream position pos (0 = the byte at the seek
 * offset), in any order unless fileio_in_order(). 0, SFTP_IO_WAIT
 * (FILEIO_NONBLOCK: a stream with no room took nothing), or an rpc2 error.
 * A stream that took part of it keeps the rest for fileio_flush(). */
int fileio_write(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len);

/* Sink: fileio_write of the bytes of iov[0..n) in order from pos, n <=
 * FILEIO_IOV_MAX, with one pwritev (or writev to a stream). */
int fileio_writev(struct fileio *f, uint64_t pos, const struct iovec *iov, int n);

/* fileio_write that waits (poll) for a stream with no room, for callers
 * that cannot wait with the loop. */
int fileio_write_waiting(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len);

/* Whether writes must come strictly in order: 1 for every kind now, so the
 * sink's checksum is computed as the bytes land. */
int fileio_in_order(const struct fileio *f);

/* Sink: puts down what a stream kept from a partial write: 0,
 * SFTP_IO_WAIT, or an rpc2 error. fileio_finish() does it too, waiting. */
int fileio_flush(struct fileio *f);

/* XXH3-128 (canonical, big-endian) of every byte a source delivered, or a
 * sink was given, so far. RPC2_EINVAL if a sink was written out of order. */
int fileio_digest(const struct fileio *f, uint8_t out[FILEIO_SUM_BYTES]);

/* The descriptor's named sum (sum_type) of the same bytes as the digest
 * (filesum.c): 1 and *out when there is one, else 0; RPC2_EINTEGRITY when
 * it is not the descriptor's expect_sum. */
int fileio_named_sum(struct fileio *f, struct namedsum_value *out);
/* The same sum, unjudged: it reads nothing of the descriptor, so it serves
 * where that may be gone (a server's reply, after its handler freed it). */
int fileio_named_sum_value(const struct fileio *f, struct namedsum_value *out);
/* Judges the named sum the peer sent (NULL: none) against this end's: 0,
 * or RPC2_EINTEGRITY (why says which) when it differs, is of another type,
 * or is missing while this end computes one, or is sent unasked. */
int fileio_check_named(struct fileio *f, const struct namedsum_value *peer);
/* Writes sum_type, sum and sum_len into d (sum_len 0: none); fileio_fill_desc
 * does it too. */
void fileio_fill_named(const struct fileio *f, struct rpc2_se_desc *d);

/* After SFTP_IO_WAIT: 1 with the fd to watch and whether for reading (else
 * writing); 0 when nothing waits. */
int fileio_wait(const struct fileio *f, int *fd, int *readable);
/* Whether this file may say SFTP_IO_WAIT (a stream opened FILEIO_NONBLOCK). */
int fileio_may_wait(const struct fileio *f);

/* Bytes the source will deliver, when known (regular file with a nonzero
 * size, memory, or quota 0), after seek offset and quota; else -1. */
int64_t fileio_source_size(const struct fileio *f);

/* Bytes moved so far: delivered (source) or the end of the furthest write
 * (sink). */
uint64_t fileio_bytes(const struct fileio *f);

/* Writes bytes_transferred, quota_exceeded and (memory sink) vm.len into d
 * as they stand now; fileio_finish() does it too. NULL f does nothing. */
void fileio_fill_desc(const struct fileio *f, struct rpc2_se_desc *d);

/*
 * Ends the transfer. success: syncs as asked and, for an atomic sink, puts
 * the file at its name. !success: removes an atomic sink's temporary. Both:
 * an fd is left positioned after the bytes moved; the descriptor gets
 * bytes_transferred, quota_exceeded and (memory sink) vm.len. Returns 0, or
 * the error that fails a successful transfer after all (fsync, close,
 * rename, RPC2_EEXIST). A second call returns the first one's result.
 */
int fileio_finish(struct fileio *f, int success);

/* Frees f; if not finished, finishes it as failed. NULL is fine. */
void fileio_free(struct fileio *f);

/* Why the last failure of f happened (a static sentence), or NULL. */
const char *fileio_why(const struct fileio *f);

/* The machine-facing views of f; valid while f lives. */
struct sftp_reader fileio_reader(struct fileio *f);
struct sftp_writer fileio_writer(struct fileio *f);

/* A source file as one end tells the other (the side-effect blocks carry
 * it): the bytes it will send (-1: cannot tell), its permission bits and
 * mtime, all of the version being sent (fileversion.h). */
struct fileio_info {
    int64_t size;
    uint32_t mode;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
};

/* Source: 1 and *out for a regular file; 0 for anything else (a pipe, a
 * device, memory), which has no such information. */
int fileio_source_info(const struct fileio *f, struct fileio_info *out);

/* Sink: the source as the peer reported it, for the attributes an atomic
 * sink takes from it (RPC2_SE_ATTR_SOURCE_*). Before fileio_finish. */
void fileio_set_peer_source(struct fileio *f, const struct fileio_info *info);

/* Sink: makes room for bytes (cut at the quota) from the seek offset
 * before any is written (fspace.h): 0, or RPC2_ENOSPC when the disk or the
 * quota cannot hold them. Files that are not positional need none. The
 * descriptor's expected_size is reserved at open. */
int fileio_reserve(struct fileio *f, uint64_t bytes);

/* The rpc2 error for an errno value; the one place that decides it. */
int fileio_errno_code(int err);

#endif
