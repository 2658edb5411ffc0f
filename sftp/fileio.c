/*
 * fileio.c - one side's byte stream for one transfer, whatever the
 * descriptor names (path, fd, file handle, memory): reading, writing,
 * checksums and finishing. Opening is fileopen.c's, the atomic sink's
 * temporary atomicsink.c's, a source's version fileversion.c's and a sink's
 * room fspace.c's. The semantics are documented in fileio.h; the comments
 * here say why the code is shaped the way it is.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_by_handle_at, renameat2, O_PATH */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "atomicsink.h"
#include "fileio.h"
#include "fileio_impl.h"
#include "fileversion.h"
#include "fspace.h"
#include "vmbuf.h"
#include "hash.h"
#include "iov.h"
#include "resume.h"
#include "streamio.h"

int fileio_errno_code(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ESTALE: /* a file handle whose file is gone */
        return RPC2_ENOENT;
    case EACCES:
    case EPERM:
    case EROFS:
        return RPC2_EACCES;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return RPC2_ENOSPC;
    case EISDIR:
        return RPC2_EISDIR;
    case EEXIST:
        return RPC2_EEXIST;
    case ENOMEM:
        return RPC2_ENOMEM;
    case EINVAL:
    case EBADF:
    case ENAMETOOLONG:
    case ELOOP:
        return RPC2_EINVAL;
    default:
        return RPC2_EIO;
    }
}

/* ---- positional I/O: EINTR retried, short transfers continued ---------- */

/* Regular files and block devices; streams go through streamio.c. iov is
 * the caller's copy (n <= FILEIO_IOV_MAX), advanced past what was read. */
static ssize_t read_full(int fd, struct iovec *iov, int n, int64_t off)
{
    size_t done = 0;
    int i = 0;

    while (i < n) {
        ssize_t r = preadv(fd, iov + i, n - i, off + (int64_t)done);

        if (r == 0)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        done += (size_t)r;
        i = iov_advance(iov, n, i, (size_t)r);
    }
    return (ssize_t)done;
}

/* ---- source ------------------------------------------------------------ */

/* A stream source's seek offset is skipped by reading, into the caller's
 * buffer since those bytes are thrown away anyway. */
static int skip_stream(struct fileio *f, uint8_t *buf, size_t len)
{
    while (f->skip > 0) {
        size_t want = f->skip < len ? (size_t)f->skip : len;
        ssize_t n = streamio_read(&f->stream, buf, want);

        if (n == SFTP_IO_WAIT)
            return SFTP_IO_WAIT;
        if (n < 0)
            return fail(f, "reading past the seek offset failed", fileio_errno_code(errno));
        f->skip -= (uint64_t)n;
        if ((size_t)n < want) {
            f->eof = 1;
            f->skip = 0;
        }
    }
    return 0;
}

/* Copies iov[0..n) and cuts the copy at room bytes; how many entries it keeps. */
static int clip_iov(struct iovec *out, const struct iovec *iov, int n, size_t room)
{
    int k = 0;

    for (; k < n && room > 0; k++) {
        out[k] = iov[k];
        if (out[k].iov_len > room)
            out[k].iov_len = room;
        room -= out[k].iov_len;
    }
    return k;
}

/* Up to room bytes into iov (a stream only ever gets one buffer). */
static ssize_t fill(struct fileio *f, const struct iovec *iov, int n, size_t room)
{
    struct iovec v[FILEIO_IOV_MAX];
    ssize_t got;

    n = clip_iov(v, iov, n, room);
    if (f->kind == FIO_VM) {
        const struct rpc2_se_desc *d = f->d;
        uint64_t at = (uint64_t)d->seek_offset + f->moved;
        size_t left = at < d->file.vm.len ? d->file.vm.len - (size_t)at : 0, done = 0;

        for (int i = 0; i < n && done < left; i++) {
            size_t k = v[i].iov_len < left - done ? v[i].iov_len : left - done;

            memcpy(v[i].iov_base, (const uint8_t *)d->file.vm.buf + at + done, k);
            done += k;
        }
        return (ssize_t)done;
    }
    if (f->kind == FIO_STREAM) {
        int rc = n > 0 ? skip_stream(f, v[0].iov_base, v[0].iov_len) : 0;

        if (rc < 0 || f->eof || n == 0)
            return rc;
        got = streamio_read(&f->stream, v[0].iov_base, v[0].iov_len);
    } else {
        got = read_full(f->fd, v, n, f->start + (int64_t)f->moved);
    }
    if (got < 0 && got != SFTP_IO_WAIT)
        return fail(f, "reading the source failed", fileio_errno_code(errno));
    return got;
}

/* Is there a byte after the quota? 1, 0, or a negative rpc2 error. Only a
 * positional file can be asked without consuming; a stream is read when
 * strict (it fails anyway if there is one), else assumed to have more. */
static int more_after_quota(struct fileio *f)
{
    uint8_t b;
    ssize_t n;
    int rc;

    if (f->kind == FIO_VM)
        return (uint64_t)f->d->seek_offset + f->moved < f->d->file.vm.len;
    if (f->kind == FIO_STREAM && !f->strict)
        return 1;
    if (f->kind == FIO_STREAM && (rc = skip_stream(f, &b, 1)) < 0)
        return rc;
    if (f->eof)
        return 0;
    if (f->kind == FIO_STREAM)
        n = streamio_read(&f->stream, &b, 1);
    else
        n = read_full(f->fd, &(struct iovec){.iov_base = &b, .iov_len = 1}, 1,
                      f->start + (int64_t)f->moved);
    if (n == SFTP_IO_WAIT)
        return SFTP_IO_WAIT;
    if (n < 0)
        return fail(f, "reading the source failed", fileio_errno_code(errno));
    return n > 0;
}

static int at_quota(struct fileio *f)
{
    int more = more_after_quota(f);

    if (more == SFTP_IO_WAIT)
        return more; /* asked again on the next read */
    f->eof = 1;
    if (more < 0)
        return more;
    if (more && f->strict)
        return fail(f, "the source has more bytes than the strict quota", RPC2_EQUOTA);
    f->quota_hit = more;
    return 0;
}

/* A regular file is sent as the version it had at open: never past the
 * size it announced, and only once fileversion_check says the file is
 * still that version (fileversion.h). -1: no such bound. */
static int64_t versioned_end(const struct fileio *f)
{
    return f->version.known && f->size >= 0 ? f->size : -1;
}

/* The stream's end is reached: the last bytes go out only if they and all
 * before them are one version of the file. */
static int at_end(struct fileio *f)
{
    int64_t end = versioned_end(f);

    f->eof = 1;
    if (end >= 0 && f->moved < (uint64_t)end)
        return fail(f, "the file was truncated while it was being sent", RPC2_ECHANGED);
    return fileversion_check(&f->version, f->fd, &f->why);
}

static int quota_end(struct fileio *f)
{
    int rc = at_quota(f);

    return rc < 0 || !f->eof ? rc : at_end(f);
}

/* Takes up to len new bytes from the file into iov (len bytes in all),
 * within the quota. */
static ssize_t take(struct fileio *f, const struct iovec *iov, int iovcnt, size_t len)
{
    int64_t quota = f->quota;
    int64_t end = versioned_end(f);
    size_t room = len > SSIZE_MAX ? SSIZE_MAX : len;
    ssize_t n;
    int rc;

    if (f->eof || len == 0)
        return 0;
    if (quota >= 0 && (uint64_t)quota == f->moved)
        return quota_end(f);
    if (end >= 0 && (uint64_t)end == f->moved)
        return at_end(f);
    if (quota >= 0 && (uint64_t)quota - f->moved < room)
        room = (size_t)((uint64_t)quota - f->moved);
    if (end >= 0 && (uint64_t)end - f->moved < room)
        room = (size_t)((uint64_t)end - f->moved);
    n = fill(f, iov, iovcnt, room);
    if (n < 0)
        return n;
    f->moved += (uint64_t)n;
    if ((size_t)n < room)
        rc = at_end(f);
    else if (quota >= 0 && (uint64_t)quota == f->moved)
        rc = quota_end(f); /* SFTP_IO_WAIT: asked again by the next read */
    else if (end >= 0 && (uint64_t)end == f->moved)
        rc = at_end(f);
    else
        rc = 0;
    return rc < 0 && rc != SFTP_IO_WAIT ? rc : n;
}

static size_t peeked_left(const struct fileio *f)
{
    return f->peeked_len - f->peeked_off;
}

/* Bytes the source has handed out for good: taken, minus those a peek
 * holds back. */
static uint64_t delivered(const struct fileio *f)
{
    return f->sink ? f->moved : f->moved - peeked_left(f);
}

static void drop_peeked(struct fileio *f, size_t n)
{
    f->peeked_off += n;
    if (peeked_left(f) == 0) {
        free(f->peeked);
        f->peeked = NULL;
        f->peeked_len = f->peeked_off = 0;
    }
}

/* Every byte delivered or written goes into both sums. */
static void hash_bytes(struct fileio *f, const uint8_t *data, size_t len)
{
    XXH3_128bits_update(f->hash, data, len);
    if (f->named)
        namedsum_update(f->named, data, len);
}

ssize_t fileio_read(struct fileio *f, uint8_t *buf, size_t len)
{
    size_t k = peeked_left(f) < len ? peeked_left(f) : len;
    ssize_t n;

    if (f->sink || f->finished)
        return fail(f, "read on a sink or a finished transfer", RPC2_EINVAL);
    if (k > 0)
        memcpy(buf, f->peeked + f->peeked_off, k);
    n = take(f, &(struct iovec){.iov_base = buf + k, .iov_len = len - k}, 1, len - k);
    if (n < 0)
        return n; /* SFTP_IO_WAIT included: the peeked bytes stay in front */
    if (k > 0)
        drop_peeked(f, k);
    hash_bytes(f, buf, (size_t)n + k);
    return (ssize_t)k + n;
}

/* Many packets' worth with one system call: a positional file is read
 * with preadv straight into the caller's buffers. */
_Static_assert(FILEIO_IOV_MAX >= SFTP_READV_MAX, "a reader readv fits fileio_readv");
_Static_assert(FILEIO_IOV_MAX >= SFTP_WRITEV_MAX, "a writer writev fits fileio_writev");
_Static_assert(FILEIO_IOV_MAX <= STREAMIO_IOV_MAX, "fileio_writev fits streamio_writev");

ssize_t fileio_readv(struct fileio *f, const struct iovec *iov, int n)
{
    size_t len = 0, left;
    ssize_t got, total = 0;

    if (f->sink || f->finished || n < 0 || n > FILEIO_IOV_MAX || f->kind == FIO_STREAM)
        return fail(f, "readv on a sink, a stream or a finished transfer", RPC2_EINVAL);
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    if (peeked_left(f) > 0) { /* the peeked bytes first: a buffer at a time */
        for (int i = 0; i < n; i++) {
            got = fileio_read(f, iov[i].iov_base, iov[i].iov_len);
            if (got < 0)
                return got;
            total += got;
            if ((size_t)got < iov[i].iov_len)
                break;
        }
        return total;
    }
    got = take(f, iov, n, len);
    if (got < 0)
        return got;
    left = (size_t)got;
    for (int i = 0; i < n && left > 0; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;

        hash_bytes(f, iov[i].iov_base, k);
        left -= k;
    }
    return got;
}

/* A stream cannot be read twice, so what a peek takes is kept here (a
 * piggyback's worth) for the reads that follow, unless consumed. */
ssize_t fileio_peek(struct fileio *f, uint8_t *buf, size_t len)
{
    ssize_t n;

    if (f->sink || f->finished || f->peeked)
        return fail(f, "peek on a sink, a finished transfer, or twice", RPC2_EINVAL);
    n = take(f, &(struct iovec){.iov_base = buf, .iov_len = len}, 1, len);
    if (n <= 0)
        return n;
    f->peeked = malloc((size_t)n);
    if (!f->peeked)
        return fail(f, "out of memory", RPC2_ENOMEM);
    memcpy(f->peeked, buf, (size_t)n);
    f->peeked_len = (size_t)n;
    return n;
}

int fileio_consume(struct fileio *f, size_t n)
{
    if (n > peeked_left(f))
        return fail(f, "consuming more than was peeked", RPC2_EINVAL);
    if (n > 0) {
        hash_bytes(f, f->peeked + f->peeked_off, n);
        drop_peeked(f, n);
    }
    return 0;
}

/* ---- sink -------------------------------------------------------------- */

/* Cuts [pos, pos + *len) at the quota; 1 when nothing is left to write. */
static int cut_at_quota(struct fileio *f, uint64_t pos, size_t *len, int *rc)
{
    int64_t quota = f->quota;

    *rc = 0;
    if (quota < 0 || pos + *len <= (uint64_t)quota)
        return 0;
    if (f->strict) {
        *rc = fail(f, "the data is longer than the strict quota", RPC2_EQUOTA);
        return 1;
    }
    f->quota_hit = 1;
    if (pos >= (uint64_t)quota)
        return 1;
    *len = (size_t)((uint64_t)quota - pos);
    return 0;
}

/* A memory sink's bytes, grown to hold them. */
static int put_vm(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len)
{
    struct rpc2_se_desc *d = f->d;
    int rc = pos > UINT64_MAX - len ? RPC2_EOVERFLOW : vmbuf_room(d, pos + len);

    if (rc != 0)
        return fail(f, rc == RPC2_ENOMEM ? "no memory to grow the memory sink"
                                         : "the data is larger than the memory buffer",
                    rc);
    memcpy((uint8_t *)d->file.vm.buf + d->seek_offset + pos, data, len);
    return 0;
}

static int write_full_v(int fd, struct iovec *iov, int n, int64_t off)
{
    size_t done = 0;
    int i = 0;

    while (i < n && iov[i].iov_len == 0)
        i++;
    while (i < n) {
        ssize_t r = pwritev(fd, iov + i, n - i, off + (int64_t)done);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) { /* would loop forever; the device takes no more */
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)r;
        i = iov_advance(iov, n, i, (size_t)r);
    }
    return 0;
}

/* Writes the first len bytes of iov[0..n) at pos: one pwritev or writev. */
static int putv(struct fileio *f, uint64_t pos, const struct iovec *iov, int n, size_t len)
{
    struct iovec v[FILEIO_IOV_MAX];

    n = clip_iov(v, iov, n, len);
    if (f->kind == FIO_VM) {
        for (int i = 0; i < n; i++) {
            int rc = put_vm(f, pos, v[i].iov_base, v[i].iov_len);

            if (rc != 0)
                return rc;
            pos += v[i].iov_len;
        }
        return 0;
    }
    if (f->kind == FIO_STREAM && pos != f->moved)
        return fail(f, "out-of-order write to a stream sink", RPC2_EINVAL);
    if (f->kind == FIO_POSITIONAL &&
        (pos > (uint64_t)(INT64_MAX - f->start) || len > (uint64_t)(INT64_MAX - f->start) - pos))
        return fail(f, "write beyond the largest file offset", RPC2_EINVAL);
    if (f->kind == FIO_STREAM) {
        int rc = streamio_writev(&f->stream, v, n);
        return rc == -1 ? fail(f, "writing the sink failed", fileio_errno_code(errno)) : rc;
    }
    if (write_full_v(f->fd, v, n, f->start + (int64_t)pos) < 0)
        return fail(f, "writing the sink failed", fileio_errno_code(errno));
    return 0;
}

int fileio_write_waiting(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len)
{
    int rc, fd, readable;

    while ((rc = fileio_write(f, pos, data, len)) == SFTP_IO_WAIT && fileio_wait(f, &fd, &readable)) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};

        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return fail(f, "poll failed", fileio_errno_code(errno));
    }
    return rc;
}

/* The checksum covers the bytes as they came, before any quota cut: it
 * proves the transport, and a cut is reported on its own. */
static void hash_written(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len)
{
    if (pos != f->hashed) {
        f->hash_gap = 1;
        return;
    }
    hash_bytes(f, data, len);
    f->hashed += len;
}

int fileio_write(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len)
{
    int rc;

    size_t given = len;

    if (!f->sink || f->finished)
        return fail(f, "write on a source or a finished transfer", RPC2_EINVAL);
    if (len > UINT64_MAX - pos)
        return fail(f, "write position overflows", RPC2_EINVAL);
    if (!resume_sink_decided(f) && (rc = resume_sink_decide(f, 0)) < 0)
        return rc; /* bytes from 0 before the source said anything: not resumed */
    if (cut_at_quota(f, pos, &len, &rc)) {
        if (rc == 0)
            hash_written(f, pos, data, given);
        return rc;
    }
    rc = putv(f, pos, &(struct iovec){.iov_base = (void *)data, .iov_len = len}, 1, len);
    if (rc != 0)
        return rc;
    if (pos + len > f->moved)
        f->moved = pos + len;
    hash_written(f, pos, data, given);
    return resume_sink_wrote(f);
}

/* fileio_write of many packets with one system call: the bytes of
 * iov[0..n) in order from pos. */
int fileio_writev(struct fileio *f, uint64_t pos, const struct iovec *iov, int n)
{
    size_t len = 0;
    int rc;

    if (!f->sink || f->finished || n < 0 || n > FILEIO_IOV_MAX)
        return fail(f, "writev on a source or a finished transfer", RPC2_EINVAL);
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len > SIZE_MAX - len)
            return fail(f, "write length overflows", RPC2_EINVAL);
        len += iov[i].iov_len;
    }
    if (len > UINT64_MAX - pos)
        return fail(f, "write position overflows", RPC2_EINVAL);
    if (!resume_sink_decided(f) && (rc = resume_sink_decide(f, 0)) < 0)
        return rc;
    if (!cut_at_quota(f, pos, &len, &rc)) {
        rc = putv(f, pos, iov, n, len);
        if (rc != 0)
            return rc;
        if (pos + len > f->moved)
            f->moved = pos + len;
    } else if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < n; i++) {
        hash_written(f, pos, iov[i].iov_base, iov[i].iov_len);
        pos += iov[i].iov_len;
    }
    return resume_sink_wrote(f);
}

/* ---- finishing --------------------------------------------------------- */

static int sync_file(struct fileio *f)
{
    int r = f->sync == SYNC_FULL ? fsync(f->fd) : 0;

    return r < 0 ? fail(f, "flushing the file to storage failed", fileio_errno_code(errno)) : 0;
}

static int reposition(struct fileio *f)
{
    if (lseek(f->fd, f->start + (int64_t)delivered(f), SEEK_SET) < 0 &&
        /* a source's range past the largest offset its filesystem allows
         * (16 TiB on ext4) read nothing: its fd is left at the end */
        !(errno == EINVAL && !f->sink && lseek(f->fd, 0, SEEK_END) >= 0))
        return fail(f, "moving the fd's position past the transfer failed",
                    fileio_errno_code(errno));
    return 0;
}

void fileio_fill_desc(const struct fileio *f, struct rpc2_se_desc *d)
{
    if (!f || !d)
        return;
    d->bytes_transferred = delivered(f);
    d->quota_exceeded = f->quota_hit;
    d->checksum_valid = fileio_digest(f, d->checksum) == 0;
    fileio_fill_named(f, d);
    if (f->sink && f->kind == FIO_VM)
        d->file.vm.len = (size_t)f->moved;
}

/* What the descriptor asks an atomic sink's file to have before it takes
 * the name; the source's mode and mtime come from the peer's report. */
static int apply_attrs(struct fileio *f)
{
    const struct rpc2_se_desc *d = f->d;
    unsigned want = d->file.name.attrs;
    const struct fileio_info *src = f->have_peer_source ? &f->peer_source : NULL;
    mode_t mode = d->file.name.mode;
    struct timespec mtime = {.tv_sec = (time_t)d->file.name.mtime_sec,
                             .tv_nsec = (long)d->file.name.mtime_nsec};

    if ((want & RPC2_SE_ATTR_SOURCE_MODE) && src)
        mode = (mode_t)(src->mode & 0777); /* never set-id bits from the network */
    if (want & RPC2_SE_ATTR_SOURCE_MTIME) {
        if (!src)
            return fail(f, "the peer did not report the source's mtime", RPC2_EINVAL);
        mtime = (struct timespec){.tv_sec = (time_t)src->mtime_sec, .tv_nsec = src->mtime_nsec};
    }
    return atomic_sink_set_attrs(&f->at, f->fd, mode, !!(want & RPC2_SE_ATTR_MODE),
                                 want & (RPC2_SE_ATTR_MTIME | RPC2_SE_ATTR_SOURCE_MTIME) ? &mtime
                                                                                       : NULL,
                                 &f->why);
}

int fileio_finish(struct fileio *f, int success)
{
    int rc = 0;

    if (f->finished)
        return f->result;
    f->finished = 1;
    if (success && f->sink && f->kind == FIO_STREAM && streamio_flush(&f->stream, 1) < 0)
        rc = fail(f, "writing the sink failed", fileio_errno_code(errno));
    if (success && f->reserved_end > 0)
        fspace_release_tail(f->fd, f->reserved_end);
    if (success && f->atomic && rc == 0)
        rc = apply_attrs(f);
    if (success && f->sink && rc == 0)
        rc = sync_file(f);
    if (f->reposition) {
        int r = reposition(f);
        rc = rc ? rc : r;
    }
    if (f->own_fd && close(f->fd) < 0 && success && f->sink && rc == 0)
        rc = fail(f, "closing the sink failed (late write error)", fileio_errno_code(errno));
    f->fd = -1;
    if (f->atomic && success && rc == 0)
        rc = atomic_sink_commit(&f->at, f->d->file.name.no_clobber, f->sync == SYNC_FULL,
                                &f->why);
    resume_sink_settle(f);
    atomic_sink_dispose(&f->at); /* a temporary not committed is removed */
    fileio_fill_desc(f, f->d);
    f->result = success ? rc : 0;
    return f->result;
}

void fileio_release(struct fileio *f)
{
    if (f->kind == FIO_STREAM)
        streamio_dispose(&f->stream);
    XXH3_freeState(f->hash);
    resume_sink_free(f);
    namedsum_free(f->named);
    atomic_sink_dispose(&f->at);
    free(f->peeked);
    free(f);
}

void fileio_free(struct fileio *f)
{
    if (!f)
        return;
    fileio_finish(f, 0);
    fileio_release(f);
}

/* ---- queries and adapters ---------------------------------------------- */

/* Every sink is written in order, so its checksum is computed as the bytes
 * land; only packets after a loss wait (in memory, within the window). */
int fileio_in_order(const struct fileio *f)
{
    (void)f;
    return 1;
}

int fileio_digest(const struct fileio *f, uint8_t out[FILEIO_SUM_BYTES])
{
    XXH128_canonical_t c;

    if (f->hash_gap)
        return RPC2_EINVAL;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(f->hash));
    memcpy(out, c.digest, FILEIO_SUM_BYTES);
    return 0;
}

int fileio_flush(struct fileio *f)
{
    int rc;

    if (f->kind != FIO_STREAM || !f->sink)
        return 0;
    rc = streamio_flush(&f->stream, 0);
    return rc == -1 ? fail(f, "writing the sink failed", fileio_errno_code(errno)) : rc;
}

int fileio_wait(const struct fileio *f, int *fd, int *readable)
{
    short ev = f->kind == FIO_STREAM ? streamio_wait_events(&f->stream) : 0;

    if (!ev)
        return 0;
    *fd = streamio_fd(&f->stream);
    *readable = ev == POLLIN;
    return 1;
}

int fileio_may_wait(const struct fileio *f)
{
    return f->kind == FIO_STREAM && f->nonblocking;
}

int64_t fileio_source_size(const struct fileio *f)
{
    return f->sink ? -1 : f->size;
}

uint64_t fileio_bytes(const struct fileio *f)
{
    return delivered(f);
}

const char *fileio_why(const struct fileio *f)
{
    return f->why;
}

static ssize_t reader_read(void *arg, uint8_t *buf, size_t len)
{
    return fileio_read(arg, buf, len);
}

static ssize_t reader_readv(void *arg, const struct iovec *iov, int n)
{
    return fileio_readv(arg, iov, n);
}

static void reader_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    (void)fileio_digest(arg, out); /* a source is always read in order */
}

static int reader_confirm(void *arg, uint64_t offset, const uint8_t sum[SFTP_SUM_BYTES])
{
    return resume_source_confirm(arg, offset, sum);
}

static int writer_offer(void *arg, uint64_t *offset, uint8_t sum[SFTP_SUM_BYTES])
{
    return resume_sink_offer(arg, offset, sum);
}

static int writer_decide(void *arg, int confirmed)
{
    return resume_sink_decide(arg, confirmed);
}

static int writer_write(void *arg, uint64_t pos, const uint8_t *data, size_t len)
{
    return fileio_write(arg, pos, data, len);
}

static int writer_writev(void *arg, uint64_t pos, const struct iovec *iov, int n)
{
    return fileio_writev(arg, pos, iov, n);
}

static int writer_flush(void *arg)
{
    return fileio_flush(arg);
}

static int writer_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    return fileio_digest(arg, out);
}

static int reader_named(void *arg, struct namedsum_value *out)
{
    return fileio_named_sum(arg, out);
}

static int writer_check_named(void *arg, const struct namedsum_value *peer)
{
    return fileio_check_named(arg, peer);
}

struct sftp_reader fileio_reader(struct fileio *f)
{
    return (struct sftp_reader){
        .read = reader_read,
        .digest = reader_digest,
        .named = reader_named,
        .confirm = reader_confirm,
        .readv = f->kind == FIO_STREAM ? NULL : reader_readv,
        .arg = f};
}

struct sftp_writer fileio_writer(struct fileio *f)
{
    return (struct sftp_writer){
        .write = writer_write,
        .writev = writer_writev,
        .flush = writer_flush,
        .digest = writer_digest,
        .offer = writer_offer,
        .decide = writer_decide,
        .check_named = writer_check_named,
        .in_order = fileio_in_order(f),
        .arg = f,
    };
}

/* ---- what the other end is told, and told by it ------------------------ */

int fileio_reserve(struct fileio *f, uint64_t bytes)
{
    int64_t len;
    int rc;

    if (!f->sink || f->finished || f->kind != FIO_POSITIONAL || bytes == 0)
        return 0;
    if (f->quota >= 0 && bytes > (uint64_t)f->quota)
        bytes = (uint64_t)f->quota;
    len = bytes > (uint64_t)(INT64_MAX - f->start) ? INT64_MAX - f->start : (int64_t)bytes;
    rc = fspace_reserve(f->fd, f->start, len, &f->why);
    if (rc == 0 && f->start + len > f->reserved_end)
        f->reserved_end = f->start + len;
    return rc;
}

int fileio_source_info(const struct fileio *f, struct fileio_info *out)
{
    const struct fileversion *v = &f->version;

    if (f->sink || !v->known)
        return 0;
    out->size = f->size < 0 ? f->size : f->size + (int64_t)f->resumed; /* the whole file */
    out->mode = (uint32_t)(v->mode & 07777);
    out->mtime_sec = v->mtime.tv_sec;
    out->mtime_nsec = (uint32_t)v->mtime.tv_nsec;
    return 1;
}

void fileio_set_peer_source(struct fileio *f, const struct fileio_info *info)
{
    f->peer_source = *info;
    f->have_peer_source = 1;
}
