/*
 * fileopen.c - opening one side of a transfer: the descriptor checked, its
 * file opened by name, fd, handle or memory and classified (positional or
 * stream), a source's size and version noted, a sink's room reserved. The
 * semantics are fileio.h's; the bytes then move in fileio.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_by_handle_at */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "fileio_impl.h"
#include "resume.h"
#include "vmbuf.h"

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
        if (!f->sink)
            fileversion_note(&f->version, &st);
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
    if (f->sink && d->file.name.flush == RPC2_SE_FLUSH_ALWAYS)
        f->sync = SYNC_FULL;
    return classify_own(f);
}

/* The file's mode and mtime are set before it takes the name, and made
 * durable with it: a full fsync, not only the data. */
static int open_atomic(struct fileio *f)
{
    const struct rpc2_se_desc *d = f->d;
    int fd;

    if (d->seek_offset != 0)
        return fail(f, "an atomic sink writes a whole new file: seek offset must be 0",
                    RPC2_EINVAL);
    if (f->resumable) {
        int existed = 0;

        fd = atomic_sink_open_resumable(&f->at, d->file.name.path, d->file.name.no_clobber,
                                        &existed, &f->why);
        if (fd < 0)
            return fd;
        f->fd = fd;
        f->own_fd = 1;
        int rc = resume_sink_open(f, existed);
        if (rc < 0)
            return rc;
    } else {
        fd = atomic_sink_open(&f->at, d->file.name.path, d->file.name.no_clobber, &f->why);
    }
    if (fd < 0)
        return fd;
    f->fd = fd;
    f->own_fd = 1;
    f->atomic = 1;
    f->kind = FIO_POSITIONAL;
    f->start = 0;
    f->sync = d->file.name.flush == RPC2_SE_FLUSH_NEVER ? SYNC_NONE : SYNC_FULL;
    return 0;
}

/* rpc2_se_desc's fd.positional: a regular file at seek_offset, as is. */
static int open_positional_fd(struct fileio *f)
{
    const struct stat *st = f->d->file.fd.st; /* the caller's, when it has one */
    struct stat own;

    if (!st && fstat(f->d->file.fd.fd, &own) < 0)
        return fail(f, "fstat failed", fileio_errno_code(errno));
    if (!st)
        st = &own;
    if (!S_ISREG(st->st_mode))
        return fail(f, "a positional fd must be a regular file", RPC2_EINVAL);
    f->fd = f->d->file.fd.fd;
    f->file_size = st->st_size;
    if (!f->sink)
        fileversion_note(&f->version, st);
    f->kind = FIO_POSITIONAL;
    f->start = f->d->seek_offset;
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
    if (!f->sink)
        fileversion_note(&f->version, &st); /* a regular file; a block device has no version */
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

/* Attributes are set on a temporary before it takes the name: only an
 * atomic sink has one. */
static int check_attrs(struct fileio *f)
{
    const struct rpc2_se_desc *d = f->d;
    unsigned known = RPC2_SE_ATTR_MODE | RPC2_SE_ATTR_SOURCE_MODE | RPC2_SE_ATTR_MTIME |
                     RPC2_SE_ATTR_SOURCE_MTIME;

    if (d->file_kind != RPC2_SE_FILE_NAME || !d->file.name.attrs)
        return 0;
    if ((d->file.name.attrs & ~known) || d->file.name.mtime_nsec >= 1000000000u)
        return fail(f, "unknown attrs, or an mtime_nsec of a second or more", RPC2_EINVAL);
    if (!d->file.name.atomic)
        return fail(f, "file attributes are set by an atomic sink only", RPC2_EINVAL);
    return 0;
}

static int open_kind(struct fileio *f)
{
    switch (f->d->file_kind) {
    case RPC2_SE_FILE_NAME:
        return f->sink && f->d->file.name.atomic ? open_atomic(f) : open_plain(f);
    case RPC2_SE_FILE_FD:
        return f->d->file.fd.positional ? open_positional_fd(f) : open_fd(f);
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
    f->resumable = sink && (flags & FILEIO_RESUME) && d->resume;
    f->hash = XXH3_createState();
    f->named = d->sum_type ? namedsum_new((uint32_t)d->sum_type) : NULL;
    if (!f->hash || XXH3_128bits_reset(f->hash) != XXH_OK || (d->sum_type && !f->named)) {
        XXH3_freeState(f->hash);
        namedsum_free(f->named);
        free(f);
        return refuse(why, "out of memory", RPC2_ENOMEM);
    }
    f->fd = -1;
    atomic_sink_init(&f->at);
    f->size = -1;
    f->quota = d->quota;
    rc = sink ? check_attrs(f) : 0;
    if (rc == 0 && f->resumable &&
        (d->file_kind != RPC2_SE_FILE_NAME || !d->file.name.atomic || d->quota >= 0))
        rc = fail(f, "only an atomic sink by name of the whole file resumes", RPC2_EINVAL);
    if (rc == 0)
        rc = open_kind(f);
    if (rc == 0 && !sink)
        rc = size_source(f);
    if (rc == 0 && sink && d->expected_size > 0)
        rc = fileio_reserve(f, d->expected_size);
    if (rc < 0) {
        /* Not fileio_finish: a refused open must not move an fd or touch
         * the descriptor's out fields. */
        refuse(why, f->why, rc);
        if (f->own_fd)
            close(f->fd);
        fileio_release(f); /* removes an atomic sink's temporary */
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
