/*
 * fspace.c - reserving a sink's blocks before its bytes move (see
 * fspace.h for why this way).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fallocate */
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <rpc2/rpc2.h>

#include "fileio.h"
#include "fspace.h"

static int no_room(const char **why)
{
    *why = "not enough free space for the file (checked before the transfer)";
    return RPC2_ENOSPC;
}

/* The filesystem cannot preallocate: its free space must cover what the
 * file does not hold yet. */
static int check_free(int fd, const struct stat *st, int64_t len, const char **why)
{
    struct statvfs vfs;
    uint64_t held = (uint64_t)st->st_blocks * 512u;
    uint64_t need = (uint64_t)len > held ? (uint64_t)len - held : 0;

    if (fstatvfs(fd, &vfs) < 0)
        return 0; /* nothing to ask: the writes will tell */
    if (vfs.f_frsize && (uint64_t)vfs.f_bavail < (need + vfs.f_frsize - 1) / vfs.f_frsize)
        return no_room(why);
    return 0;
}

int fspace_reserve(int fd, int64_t off, int64_t len, const char **why)
{
    struct stat st;
    int r;

    if (len <= 0)
        return 0;
    if (fstat(fd, &st) < 0) {
        *why = "fstat of the sink failed";
        return fileio_errno_code(errno);
    }
    if (!S_ISREG(st.st_mode))
        return 0;
    if (off > INT64_MAX - len)
        return no_room(why);
    do
        r = fallocate(fd, FALLOC_FL_KEEP_SIZE, off, len);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)
        return no_room(why);
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
        return check_free(fd, &st, len, why);
    *why = "preallocating the file failed";
    return fileio_errno_code(errno);
}

void fspace_release_tail(int fd, int64_t end)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size >= end)
        return;
    (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size, end - st.st_size);
}
