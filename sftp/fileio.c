/*
 * fileio.c - one side's byte stream for one transfer, whatever the
 * descriptor names (path, fd, file handle, memory). The semantics are
 * documented in fileio.h; the comments here say why the code is shaped the
 * way it is.
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
#include <sys/random.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "fileio.h"
#include "vmbuf.h"
#include "hash.h"
#include "streamio.h"

enum fio_kind {
    FIO_POSITIONAL, /* pread/pwrite at start + pos */
    FIO_STREAM,     /* read/write in order: pipes, sockets, devices, O_APPEND */
    FIO_VM,         /* the descriptor's memory buffer */
};

enum fio_sync {
    SYNC_NONE,
    SYNC_DATA, /* fdatasync: the bytes, enough for an atomic rename */
    SYNC_FULL, /* fsync: asked for by the descriptor */
};

struct fileio {
    struct rpc2_se_desc *d;
    enum fio_kind kind;
    int sink;
    int strict;
    int fd;          /* -1 for memory */
    int own_fd;      /* opened here, so closed at finish */
    int reposition;  /* a caller's seekable fd: lseek past what moved at finish */
    int64_t start;   /* file offset of stream byte 0 (positional) */
    uint64_t skip;   /* stream source: bytes still to discard (the seek offset) */
    int64_t quota;   /* the descriptor's, lowered by fileio_limit; -1: none */
    int64_t size;    /* source: bytes it will deliver; -1 unknown */
    int64_t file_size; /* a regular file's size when opened; -1: not a regular file */
    uint64_t moved;  /* source: bytes taken from the file; sink: end of the furthest write */
    uint8_t *peeked; /* source: bytes taken by fileio_peek and not yet delivered */
    size_t peeked_len, peeked_off;
    int quota_hit;
    int eof;
    int finished;
    int result;
    enum fio_sync sync;
    int sync_dir; /* atomic + fsync: make the rename durable too */
    int dirfd;    /* atomic sink: the name's directory (O_PATH), else -1 */
    char *base;   /* atomic sink: the name within dirfd */
    char *tmp;    /* atomic sink: the temporary within dirfd */
    const char *why;
    int nonblocking;         /* FILEIO_NONBLOCK: streams say SFTP_IO_WAIT */
    struct streamio stream;  /* FIO_STREAM */
    XXH3_state_t *hash;      /* every byte delivered (source) or given to write (sink) */
    uint64_t hashed;         /* sink: the stream position the hash has reached */
    int hash_gap;            /* sink: a write came out of order; no checksum */
};

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

static int refuse(const char **why, const char *text, int code)
{
    if (why)
        *why = text;
    return code;
}

static int fail(struct fileio *f, const char *text, int code)
{
    return refuse(&f->why, text, code);
}

/* ---- positional I/O: EINTR retried, short transfers continued ---------- */

/* Regular files and block devices; streams go through streamio.c. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len, int64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, off + (int64_t)done);

        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int write_full(int fd, const uint8_t *data, size_t len, int64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pwrite(fd, data + done, len - done, off + (int64_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) { /* would loop forever; the device takes no more */
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
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

static ssize_t fill(struct fileio *f, uint8_t *buf, size_t len)
{
    ssize_t n;

    if (f->kind == FIO_VM) {
        const struct rpc2_se_desc *d = f->d;
        uint64_t at = (uint64_t)d->seek_offset + f->moved;
        size_t left = at < d->file.vm.len ? d->file.vm.len - (size_t)at : 0;

        n = (ssize_t)(len < left ? len : left);
        if (n > 0)
            memcpy(buf, (const uint8_t *)d->file.vm.buf + at, (size_t)n);
        return n;
    }
    if (f->kind == FIO_STREAM) {
        int rc = skip_stream(f, buf, len);

        if (rc < 0 || f->eof)
            return rc;
        n = streamio_read(&f->stream, buf, len);
    } else {
        n = read_full(f->fd, buf, len, f->start + (int64_t)f->moved);
    }
    if (n < 0 && n != SFTP_IO_WAIT)
        return fail(f, "reading the source failed", fileio_errno_code(errno));
    return n;
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
        n = read_full(f->fd, &b, 1, f->start + (int64_t)f->moved);
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

/* Takes up to len new bytes from the file, within the quota. */
static ssize_t take(struct fileio *f, uint8_t *buf, size_t len)
{
    int64_t quota = f->quota;
    size_t room = len > SSIZE_MAX ? SSIZE_MAX : len;
    ssize_t n;

    if (f->eof || len == 0)
        return 0;
    if (quota >= 0 && (uint64_t)quota == f->moved)
        return at_quota(f);
    if (quota >= 0 && (uint64_t)quota - f->moved < room)
        room = (size_t)((uint64_t)quota - f->moved);
    n = fill(f, buf, room);
    if (n < 0)
        return n;
    f->moved += (uint64_t)n;
    if ((size_t)n < room)
        f->eof = 1;
    else if (quota >= 0 && (uint64_t)quota == f->moved) {
        int rc = at_quota(f);

        if (rc < 0)
            return rc;
    }
    return n;
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

ssize_t fileio_read(struct fileio *f, uint8_t *buf, size_t len)
{
    size_t k = peeked_left(f) < len ? peeked_left(f) : len;
    ssize_t n;

    if (f->sink || f->finished)
        return fail(f, "read on a sink or a finished transfer", RPC2_EINVAL);
    if (k > 0)
        memcpy(buf, f->peeked + f->peeked_off, k);
    n = take(f, buf + k, len - k);
    if (n < 0)
        return n; /* SFTP_IO_WAIT included: the peeked bytes stay in front */
    if (k > 0)
        drop_peeked(f, k);
    XXH3_128bits_update(f->hash, buf, (size_t)n + k);
    return (ssize_t)k + n;
}

/* A stream cannot be read twice, so what a peek takes is kept here (a
 * piggyback's worth) for the reads that follow, unless consumed. */
ssize_t fileio_peek(struct fileio *f, uint8_t *buf, size_t len)
{
    ssize_t n;

    if (f->sink || f->finished || f->peeked)
        return fail(f, "peek on a sink, a finished transfer, or twice", RPC2_EINVAL);
    n = take(f, buf, len);
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
        XXH3_128bits_update(f->hash, f->peeked + f->peeked_off, n);
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

static int put(struct fileio *f, uint64_t pos, const uint8_t *data, size_t len)
{
    struct rpc2_se_desc *d = f->d;

    if (f->kind == FIO_VM) {
        int rc = pos > UINT64_MAX - len ? RPC2_EOVERFLOW : vmbuf_room(d, pos + len);

        if (rc != 0)
            return fail(f, rc == RPC2_ENOMEM ? "no memory to grow the memory sink"
                                             : "the data is larger than the memory buffer",
                        rc);
        memcpy((uint8_t *)d->file.vm.buf + d->seek_offset + pos, data, len);
        return 0;
    }
    if (f->kind == FIO_STREAM && pos != f->moved)
        return fail(f, "out-of-order write to a stream sink", RPC2_EINVAL);
    if (f->kind == FIO_POSITIONAL &&
        (pos > (uint64_t)(INT64_MAX - f->start) || len > (uint64_t)(INT64_MAX - f->start) - pos))
        return fail(f, "write beyond the largest file offset", RPC2_EINVAL);
    if (f->kind == FIO_STREAM) {
        int rc = streamio_write(&f->stream, data, len);
        return rc == -1 ? fail(f, "writing the sink failed", fileio_errno_code(errno)) : rc;
    }
    if (write_full(f->fd, data, len, f->start + (int64_t)pos) < 0)
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
    XXH3_128bits_update(f->hash, data, len);
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
    if (cut_at_quota(f, pos, &len, &rc)) {
        if (rc == 0)
            hash_written(f, pos, data, given);
        return rc;
    }
    rc = put(f, pos, data, len);
    if (rc != 0)
        return rc;
    if (pos + len > f->moved)
        f->moved = pos + len;
    hash_written(f, pos, data, given);
    return 0;
}

/* ---- finishing --------------------------------------------------------- */

static int sync_file(struct fileio *f)
{
    int r = f->sync == SYNC_FULL ? fsync(f->fd) : f->sync == SYNC_DATA ? fdatasync(f->fd) : 0;

    return r < 0 ? fail(f, "flushing the file to storage failed", fileio_errno_code(errno)) : 0;
}

static int sync_dir(struct fileio *f)
{
    int dfd = openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (dfd < 0 || fsync(dfd) < 0)
        rc = fail(f, "flushing the directory after the rename failed", fileio_errno_code(errno));
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* RENAME_NOREPLACE is atomic; filesystems without it get link+unlink, which
 * is too (link fails if the name exists), only leaving two names briefly. */
static int rename_no_clobber(struct fileio *f)
{
    if (renameat2(f->dirfd, f->tmp, f->dirfd, f->base, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    if (linkat(f->dirfd, f->tmp, f->dirfd, f->base, 0) < 0)
        return -1;
    unlinkat(f->dirfd, f->tmp, 0);
    return 0;
}

static int commit(struct fileio *f)
{
    int r = f->d->file.name.no_clobber ? rename_no_clobber(f)
                                       : renameat(f->dirfd, f->tmp, f->dirfd, f->base);

    if (r < 0) {
        int rc = fail(f,
                      errno == EEXIST ? "the name appeared during the transfer (no_clobber)"
                                      : "renaming the temporary over the name failed",
                      fileio_errno_code(errno));
        unlinkat(f->dirfd, f->tmp, 0);
        return rc;
    }
    return f->sync_dir ? sync_dir(f) : 0;
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
    if (f->sink && f->kind == FIO_VM)
        d->file.vm.len = (size_t)f->moved;
}

int fileio_finish(struct fileio *f, int success)
{
    int rc = 0;

    if (f->finished)
        return f->result;
    f->finished = 1;
    if (success && f->sink && f->kind == FIO_STREAM && streamio_flush(&f->stream, 1) < 0)
        rc = fail(f, "writing the sink failed", fileio_errno_code(errno));
    if (success && f->sink && rc == 0)
        rc = sync_file(f);
    if (f->reposition) {
        int r = reposition(f);
        rc = rc ? rc : r;
    }
    if (f->own_fd && close(f->fd) < 0 && success && f->sink && rc == 0)
        rc = fail(f, "closing the sink failed (late write error)", fileio_errno_code(errno));
    f->fd = -1;
    if (f->tmp && success && rc == 0)
        rc = commit(f);
    else if (f->tmp)
        unlinkat(f->dirfd, f->tmp, 0);
    fileio_fill_desc(f, f->d);
    f->result = success ? rc : 0;
    return f->result;
}

static void release(struct fileio *f)
{
    if (f->kind == FIO_STREAM)
        streamio_dispose(&f->stream);
    XXH3_freeState(f->hash);
    if (f->dirfd >= 0)
        close(f->dirfd);
    free(f->base);
    free(f->tmp);
    free(f->peeked);
    free(f);
}

void fileio_free(struct fileio *f)
{
    if (!f)
        return;
    fileio_finish(f, 0);
    release(f);
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

static void reader_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    (void)fileio_digest(arg, out); /* a source is always read in order */
}

static int writer_write(void *arg, uint64_t pos, const uint8_t *data, size_t len)
{
    return fileio_write(arg, pos, data, len);
}

static int writer_flush(void *arg)
{
    return fileio_flush(arg);
}

static int writer_digest(void *arg, uint8_t out[SFTP_SUM_BYTES])
{
    return fileio_digest(arg, out);
}

struct sftp_reader fileio_reader(struct fileio *f)
{
    return (struct sftp_reader){.read = reader_read, .digest = reader_digest, .arg = f};
}

struct sftp_writer fileio_writer(struct fileio *f)
{
    return (struct sftp_writer){
        .write = writer_write,
        .flush = writer_flush,
        .digest = writer_digest,
        .in_order = fileio_in_order(f),
        .arg = f,
    };
}

/* ---- opening ----------------------------------------------------------- */

/* A source's seek offset is skipped by reading; a sink's cannot be. */
static int as_stream(struct fileio *f)
{
    f->skip = (uint64_t)f->d->seek_offset;
    if (f->sink && f->skip)
        return fail(f, "a seek offset on a sink that cannot seek", RPC2_EINVAL);
    if (streamio_init(&f->stream, f->fd, f->sink, f->nonblocking) < 0)
        return fail(f, "fcntl or fstat failed", fileio_errno_code(errno));
    f->kind = FIO_STREAM;
    return 0;
}

/* Files opened here: regular files are positional, character devices
 * streams; anything else is refused (see fileio.h for why FIFOs are). They
 * were opened O_NONBLOCK so that a FIFO could not hang the open itself. */
static int classify_own(struct fileio *f)
{
    struct stat st;
    int fl;

    if (fstat(f->fd, &st) < 0)
        return fail(f, "fstat failed", fileio_errno_code(errno));
    if (S_ISDIR(st.st_mode))
        return fail(f, "the file is a directory", RPC2_EISDIR);
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        return fail(f,
                    "only regular files and character devices are opened here; "
                    "pass a FIFO, socket or block device as an open fd",
                    RPC2_EINVAL);
    if (S_ISREG(st.st_mode)) { /* O_NONBLOCK means nothing to a regular file */
        f->kind = FIO_POSITIONAL;
        f->start = f->d->seek_offset;
        f->file_size = st.st_size;
        return 0;
    }
    /* Our own description: it stays O_NONBLOCK when we wait with the loop. */
    fl = fcntl(f->fd, F_GETFL);
    if (fl < 0 || (!f->nonblocking && fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
        return fail(f, "fcntl failed", fileio_errno_code(errno));
    return as_stream(f);
}

static int open_plain(struct fileio *f)
{
    const struct rpc2_se_desc *d = f->d;
    int fl = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

    if (f->sink)
        fl |= O_WRONLY | O_CREAT | (d->file.name.no_clobber ? O_EXCL : 0);
    else
        fl |= O_RDONLY;
    f->fd = open(d->file.name.path, fl, d->file.name.mode);
    if (f->fd < 0 && errno == ENXIO)
        return fail(f, "a FIFO or socket cannot be opened by name; pass an open fd", RPC2_EINVAL);
    if (f->fd < 0)
        return fail(f, "opening the file failed", fileio_errno_code(errno));
    f->own_fd = 1;
    if (f->sink && d->file.name.fsync)
        f->sync = SYNC_FULL;
    return classify_own(f);
}

/* Splits path into its directory (opened as f->dirfd) and f->base. */
static int open_parent(struct fileio *f)
{
    const char *path = f->d->file.name.path;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir;

    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return fail(f, "the name is a directory", RPC2_EISDIR);
    f->base = strdup(base);
    dir = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!f->base || !dir) {
        free(dir);
        return fail(f, "out of memory", RPC2_ENOMEM);
    }
    f->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (f->dirfd < 0)
        return fail(f, "opening the name's directory failed", fileio_errno_code(errno));
    return 0;
}

/* Whatever is at the name now must be something a rename may replace: a
 * regular file, or a symlink (replaced, never followed: looking through it
 * would tell a client what it points at). */
static int check_replaceable(struct fileio *f)
{
    struct stat st;

    if (fstatat(f->dirfd, f->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : fail(f, "stat of the name failed", fileio_errno_code(errno));
    if (f->d->file.name.no_clobber)
        return fail(f, "the name exists (no_clobber)", RPC2_EEXIST);
    if (S_ISDIR(st.st_mode))
        return fail(f, "the name is a directory", RPC2_EISDIR);
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return fail(f, "an atomic sink only replaces a regular file", RPC2_EINVAL);
    return 0;
}

static void random_suffix(char *out, size_t n, unsigned attempt)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[16];
    struct timespec ts;

    if (getrandom(r, n, GRND_NONBLOCK) != (ssize_t)n) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        for (size_t i = 0; i < n; i++)
            r[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i * 5) ^ getpid() >> i ^ attempt);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
    out[n] = '\0';
}

/* ".NAME.XXXXXX", with NAME shortened so the whole fits in NAME_MAX. */
static int create_temp(struct fileio *f)
{
    size_t keep = strlen(f->base);

    if (keep > NAME_MAX - 8)
        keep = NAME_MAX - 8;
    f->tmp = malloc(NAME_MAX + 1);
    if (!f->tmp)
        return fail(f, "out of memory", RPC2_ENOMEM);
    for (unsigned attempt = 0; attempt < 64; attempt++) {
        char suffix[7];

        random_suffix(suffix, 6, attempt);
        snprintf(f->tmp, NAME_MAX + 1, ".%.*s.%s", (int)keep, f->base, suffix);
        f->fd =
            openat(f->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, f->d->file.name.mode);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        free(f->tmp);
        f->tmp = NULL; /* nothing to remove */
        return fail(f, "creating the temporary file failed", fileio_errno_code(errno));
    }
    f->own_fd = 1;
    return 0;
}

static int open_atomic(struct fileio *f)
{
    int rc;

    if (f->d->seek_offset != 0)
        return fail(f, "an atomic sink writes a whole new file: seek offset must be 0",
                    RPC2_EINVAL);
    rc = open_parent(f);
    if (rc == 0)
        rc = check_replaceable(f);
    if (rc == 0)
        rc = create_temp(f);
    if (rc < 0)
        return rc;
    f->kind = FIO_POSITIONAL;
    f->start = 0;
    f->sync = f->d->file.name.fsync ? SYNC_FULL : SYNC_DATA;
    f->sync_dir = f->d->file.name.fsync;
    return 0;
}

static int open_fd(struct fileio *f)
{
    int fd = f->d->file.fd.fd;
    int fl = fcntl(fd, F_GETFL);
    int acc = fl & O_ACCMODE;
    struct stat st;
    off_t cur;

    if (fl < 0 || (fl & O_PATH))
        return fail(f, "the fd is not open for I/O", RPC2_EINVAL);
    if (f->sink ? acc == O_RDONLY : acc == O_WRONLY)
        return fail(f,
                    f->sink ? "the fd is not open for writing" : "the fd is not open for reading",
                    RPC2_EINVAL);
    if (fstat(fd, &st) < 0)
        return fail(f, "fstat failed", fileio_errno_code(errno));
    if (S_ISDIR(st.st_mode))
        return fail(f, "the fd is a directory", RPC2_EISDIR);
    f->fd = fd;
    f->file_size = S_ISREG(st.st_mode) ? st.st_size : -1;
    /* O_APPEND makes Linux pwrite append wherever pos says: a stream then. */
    cur = (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && !(f->sink && (fl & O_APPEND))
              ? lseek(fd, 0, SEEK_CUR)
              : -1;
    if (cur < 0)
        return as_stream(f);
    if (f->d->seek_offset > INT64_MAX - cur)
        return fail(f, "the seek offset overflows the fd's position", RPC2_EINVAL);
    f->kind = FIO_POSITIONAL;
    f->start = cur + f->d->seek_offset;
    f->reposition = 1;
    return 0;
}

static int open_inode(struct fileio *f)
{
    const struct rpc2_se_desc *d = f->d;
    union {
        struct file_handle fh;
        unsigned char raw[sizeof(struct file_handle) + RPC2_SE_HANDLE_MAX];
    } h;

    h.fh.handle_bytes = d->file.inode.handle_bytes;
    h.fh.handle_type = d->file.inode.handle_type;
    memcpy(h.fh.f_handle, d->file.inode.handle, d->file.inode.handle_bytes);
    f->fd = open_by_handle_at(d->file.inode.mount_fd, &h.fh,
                              (f->sink ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (f->fd < 0 && errno == EPERM)
        return fail(f, "open_by_handle_at needs CAP_DAC_READ_SEARCH", RPC2_EACCES);
    if (f->fd < 0 && errno == ESTALE)
        return fail(f, "the file handle is stale (the file is gone)", RPC2_ENOENT);
    if (f->fd < 0 && errno == EBADF)
        return fail(f, "mount_fd is not an open, non-O_PATH fd", RPC2_EINVAL);
    if (f->fd < 0)
        return fail(f, "open_by_handle_at failed", fileio_errno_code(errno));
    f->own_fd = 1;
    return classify_own(f);
}

static int open_vm(struct fileio *f)
{
    const struct rpc2_se_desc *d = f->d;
    uint64_t seek = (uint64_t)d->seek_offset;

    f->kind = FIO_VM;
    if (!f->sink)
        return seek > d->file.vm.len ? fail(f, "seek offset beyond the buffer", RPC2_EINVAL) : 0;
    const char *why;
    int rc = vmbuf_open(d, &why);
    return rc ? fail(f, why, rc) : 0;
}

/* Bytes a source has from its start, when the file says; -1 otherwise. A
 * regular file of size 0 may be a /proc file that has bytes all the same. */
static int64_t available(struct fileio *f)
{
    if (f->kind == FIO_VM)
        return (int64_t)(f->d->file.vm.len - (size_t)f->d->seek_offset);
    if (f->kind != FIO_POSITIONAL || f->file_size <= 0)
        return -1;
    return f->file_size > f->start ? f->file_size - f->start : 0;
}

static int size_source(struct fileio *f)
{
    int64_t quota = f->quota;
    int64_t avail = available(f);

    if (quota >= 0 && avail > quota && f->strict)
        return fail(f, "the source is larger than the strict quota", RPC2_EQUOTA);
    f->size = avail;
    if (quota >= 0 && (avail < 0 ? quota == 0 : avail > quota))
        f->size = quota;
    return 0;
}

static int open_kind(struct fileio *f)
{
    switch (f->d->file_kind) {
    case RPC2_SE_FILE_NAME:
        return f->sink && f->d->file.name.atomic ? open_atomic(f) : open_plain(f);
    case RPC2_SE_FILE_FD:
        return open_fd(f);
    case RPC2_SE_FILE_INODE:
        return open_inode(f);
    case RPC2_SE_FILE_VM:
        return open_vm(f);
    }
    return fail(f, "unknown file kind", RPC2_EINVAL);
}

static int open_side(struct rpc2_se_desc *d, int sink, unsigned flags, struct fileio **out,
                     const char **why)
{
    struct fileio *f;
    int rc = rpc2_se_desc_check(d);

    *out = NULL;
    if (rc < 0)
        return refuse(why, "the descriptor makes no sense (rpc2_se_desc_check)", rc);
    f = calloc(1, sizeof(*f));
    if (!f)
        return refuse(why, "out of memory", RPC2_ENOMEM);
    f->d = d;
    f->sink = sink;
    f->strict = !!(flags & FILEIO_STRICT_QUOTA);
    f->nonblocking = !!(flags & FILEIO_NONBLOCK);
    f->hash = XXH3_createState();
    if (!f->hash || XXH3_128bits_reset(f->hash) != XXH_OK) {
        XXH3_freeState(f->hash);
        free(f);
        return refuse(why, "out of memory", RPC2_ENOMEM);
    }
    f->fd = -1;
    f->dirfd = -1;
    f->size = -1;
    f->quota = d->quota;
    rc = open_kind(f);
    if (rc == 0 && !sink)
        rc = size_source(f);
    if (rc < 0) {
        /* Not fileio_finish: a refused open must not move an fd or touch
         * the descriptor's out fields. */
        refuse(why, f->why, rc);
        if (f->own_fd)
            close(f->fd);
        if (f->tmp)
            unlinkat(f->dirfd, f->tmp, 0);
        release(f);
        return rc;
    }
    d->bytes_transferred = 0;
    d->quota_exceeded = 0;
    *out = f;
    return 0;
}

int fileio_open_source(struct rpc2_se_desc *d, unsigned flags, struct fileio **out,
                       const char **why)
{
    return open_side(d, 0, flags, out, why);
}

int fileio_open_sink(struct rpc2_se_desc *d, unsigned flags, struct fileio **out, const char **why)
{
    return open_side(d, 1, flags, out, why);
}

int fileio_limit(struct fileio *f, int64_t quota, int strict)
{
    int64_t was_quota = f->quota;
    int was_strict = f->strict, rc;

    if (quota < -1)
        return fail(f, "a quota below -1", RPC2_EINVAL);
    if (f->moved || f->finished)
        return fail(f, "a limit after bytes moved", RPC2_EINVAL);
    if (quota >= 0 && (f->quota < 0 || quota < f->quota))
        f->quota = quota;
    f->strict |= !!strict;
    rc = f->sink ? 0 : size_source(f);
    if (rc < 0) { /* refused: as it was */
        f->quota = was_quota;
        f->strict = was_strict;
        size_source(f);
    }
    return rc;
}
