/*
 * desc.c - the side-effect descriptor's own rules: refusing a descriptor
 * that makes no sense before any packet goes out, and filling one with a
 * Linux file handle. What only the role can decide (a memory sink's room, a
 * source's seek past its buffer, whether the file opens) is checked when the
 * file is opened (sftp/fileio.c), still before anything is sent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* name_to_handle_at, strnlen */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "fileio.h"

/* The types se.h defines; a new type adds its id here. Whether a context has
 * it registered is the runtime's question, asked at call time. */
static int known_type(uint32_t type)
{
    return type == RPC2_SE_SFTP;
}

static int check_name(const struct rpc2_se_desc *d)
{
    const char *path = d->file.name.path;

    if (!path || !*path || strnlen(path, PATH_MAX) == PATH_MAX)
        return RPC2_EINVAL;
    if (d->file.name.flush != RPC2_SE_FLUSH_DEFAULT && d->file.name.flush != RPC2_SE_FLUSH_ALWAYS &&
        d->file.name.flush != RPC2_SE_FLUSH_NEVER)
        return RPC2_EINVAL;
    return (d->file.name.mode & ~(mode_t)07777) ? RPC2_EINVAL : 0;
}

static int check_inode(const struct rpc2_se_desc *d)
{
    unsigned n = d->file.inode.handle_bytes;
    int mfd = d->file.inode.mount_fd;

    if (n == 0 || n > RPC2_SE_HANDLE_MAX)
        return RPC2_EINVAL;
    return mfd < 0 && mfd != AT_FDCWD ? RPC2_EINVAL : 0;
}

/* Role-blind: len is a source's, max a sink's, so an offset past both is
 * wrong for either. A growing sink's buffer may be the library's to make,
 * and with max 0 it has no end. */
static int check_vm(const struct rpc2_se_desc *d)
{
    size_t len = d->file.vm.len, max = d->file.vm.max;
    uint64_t end = len > max ? len : max;

    if (d->file.vm.grow) {
        if (!d->file.vm.buf && (len || d->file.vm.cap))
            return RPC2_EINVAL;
        return max && (uint64_t)d->seek_offset > end ? RPC2_EINVAL : 0;
    }
    if (!d->file.vm.buf && (len || max))
        return RPC2_EINVAL;
    return (uint64_t)d->seek_offset > end ? RPC2_EINVAL : 0;
}

static int check_file(const struct rpc2_se_desc *d)
{
    switch (d->file_kind) {
    case RPC2_SE_FILE_NAME:
        return check_name(d);
    case RPC2_SE_FILE_FD:
        return d->file.fd.fd < 0 ? RPC2_EINVAL : 0;
    case RPC2_SE_FILE_INODE:
        return check_inode(d);
    case RPC2_SE_FILE_VM:
        return check_vm(d);
    }
    return RPC2_EINVAL;
}

void rpc2_se_desc_init(struct rpc2_se_desc *d, enum rpc2_se_direction direction)
{
    *d = (struct rpc2_se_desc)RPC2_SE_DESC_INIT(direction);
}

void rpc2_se_vm_free(struct rpc2_se_desc *d)
{
    if (!d || d->file_kind != RPC2_SE_FILE_VM || !d->file.vm.grow)
        return;
    free(d->file.vm.buf);
    d->file.vm.buf = NULL;
    d->file.vm.len = 0;
    d->file.vm.cap = 0;
}

int rpc2_se_desc_check(const struct rpc2_se_desc *d)
{
    if (!d)
        return RPC2_EINVAL;
    if (!known_type(d->type))
        return RPC2_ENOSETYPE;
    if (d->direction != RPC2_SE_FETCH && d->direction != RPC2_SE_STORE)
        return RPC2_EINVAL;
    if (d->seek_offset < 0 || d->quota < -1)
        return RPC2_EINVAL;
    /* The last byte moved must have a file offset. */
    if (d->quota > 0 && d->seek_offset > INT64_MAX - d->quota)
        return RPC2_EINVAL;
    if (d->sum_type != RPC2_SE_SUM_NONE && !rpc2_se_sum_name(d->sum_type))
        return RPC2_EINVAL;
    if (d->expect_sum_len && (!d->sum_type || d->expect_sum_len != rpc2_se_sum_len(d->sum_type)))
        return RPC2_EINVAL;
    return check_file(d);
}

/* open_by_handle_at wants an fd on the file's filesystem, and refuses O_PATH
 * ones (EBADF), so this is a real open of the directory holding the file;
 * that is on the file's filesystem unless the file is itself a mount point
 * (a bind-mounted file), which then serves as its own mount fd. */
static int open_mount_fd(const char *resolved)
{
    char *dir = strdup(resolved);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    struct stat fst, dst;
    int fd;

    if (!dir)
        return -1;
    if (slash)
        slash[slash == dir] = '\0'; /* keep "/" for a file at the root */
    fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0 || stat(resolved, &fst) < 0 || fstat(fd, &dst) < 0 || fst.st_dev == dst.st_dev)
        return fd;
    close(fd);
    return open(resolved, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

static int handle_of(const char *resolved, struct rpc2_se_desc *desc)
{
    union {
        struct file_handle fh;
        unsigned char raw[sizeof(struct file_handle) + RPC2_SE_HANDLE_MAX];
    } h;
    int mount_id, mfd;

    h.fh.handle_bytes = RPC2_SE_HANDLE_MAX;
    if (name_to_handle_at(AT_FDCWD, resolved, &h.fh, &mount_id, 0) < 0)
        return errno == EOPNOTSUPP || errno == EOVERFLOW ? RPC2_EINVAL : fileio_errno_code(errno);
    mfd = open_mount_fd(resolved);
    if (mfd < 0)
        return fileio_errno_code(errno);
    desc->file_kind = RPC2_SE_FILE_INODE;
    desc->file.inode.mount_fd = mfd;
    desc->file.inode.handle_type = h.fh.handle_type;
    desc->file.inode.handle_bytes = h.fh.handle_bytes;
    memcpy(desc->file.inode.handle, h.fh.f_handle, h.fh.handle_bytes);
    return 0;
}

/*
 * Makes desc name path's file by handle: file_kind, handle and a mount fd
 * that the caller owns and closes once the transfer is over. Symbolic links
 * are followed, so the handle names the file the path opens. On failure desc
 * is untouched and there is nothing to close. RPC2_EINVAL when the
 * filesystem has no file handles.
 */
int rpc2_se_inode_of(const char *path, struct rpc2_se_desc *desc)
{
    char *resolved;
    int rc;

    if (!path || !*path || !desc)
        return RPC2_EINVAL;
    resolved = realpath(path, NULL);
    if (!resolved)
        return fileio_errno_code(errno);
    rc = handle_of(resolved, desc);
    free(resolved);
    return rc;
}
