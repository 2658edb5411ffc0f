/*
 * localfile.c - rcat's end of a transfer on the local filesystem: where a
 * fetch writes (a file replaced atomically, or a device, FIFO or standard
 * output written into) and what a store reads, with the mode and mtime
 * that belong to the bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "localfile.h"
#include "report.h"
#include "verdict.h"

/* Devices and FIFOs are written into as they are (-o /dev/null): only a
 * regular file can be replaced atomically. */
int sink_open(const char *dest, int no_clobber, struct sink *k, const char **result)
{
    struct stat st;

    memset(k, 0, sizeof *k);
    k->fd = STDOUT_FILENO;
    k->name = "-";
    k->shown = "standard output";
    if (!dest || !strcmp(dest, "-"))
        return RCAT_EXIT_OK;
    k->name = k->shown = dest;
    if (stat(dest, &st) < 0) {
        k->path = dest;
        return RCAT_EXIT_OK; /* creating it: the library says why if it cannot */
    }
    if (no_clobber) {
        *result = "RPC2_EEXIST";
        report_error(RCAT_EXIT_LOCAL, *result, dest, "file exists (--no-clobber)");
        return RCAT_EXIT_LOCAL;
    }
    if (S_ISDIR(st.st_mode))
        return verdict_fail_local(dest, NULL, EISDIR, result);
    if (!S_ISREG(st.st_mode)) {
        k->fd = open(dest, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        k->own_fd = k->fd >= 0;
        return k->fd < 0 ? verdict_fail_local(dest, NULL, errno, result) : RCAT_EXIT_OK;
    }
    k->path = dest;
    k->replaced = 1;
    k->old_mode = st.st_mode & 0777; /* never set-id bits onto new content */
    return RCAT_EXIT_OK;
}

void sink_close(struct sink *k)
{
    if (k->own_fd)
        close(k->fd);
}

void sink_describe(const struct sink *k, int no_clobber, struct rpc2_se_desc *d)
{
    if (!k->path) {
        d->file_kind = RPC2_SE_FILE_FD;
        d->file.fd.fd = k->fd;
        return;
    }
    d->file_kind = RPC2_SE_FILE_NAME;
    d->file.name.path = k->path;
    d->file.name.mode = k->replaced ? k->old_mode : 0666; /* under the umask, as cp */
    d->file.name.atomic = 1;
    d->file.name.no_clobber = no_clobber;
}

static int set_mtime(const char *path, int64_t sec, unsigned nsec)
{
    struct timespec ts[2] = {
        {.tv_sec = 0, .tv_nsec = UTIME_OMIT},
        {.tv_sec = (time_t)sec, .tv_nsec = nsec < 1000000000u ? (long)nsec : 0},
    };

    return utimensat(AT_FDCWD, path, ts, 0);
}

/* After a complete fetch: -p's mode and mtime, or the replaced file's mode
 * (the umask may have taken bits from it; never adds any it did not have). */
int sink_finish(const struct sink *k, int preserve, const file_info *info, const char **result)
{
    if (!k->path)
        return RCAT_EXIT_OK;
    if (preserve) {
        if (chmod(k->path, info->mode & 0777) < 0 ||
            set_mtime(k->path, info->mtime_sec, info->mtime_nsec) < 0)
            return verdict_fail_local(k->path, "cannot keep mode and time", errno, result);
    } else if (k->replaced && chmod(k->path, k->old_mode) < 0) {
        report_info("%s: cannot restore mode %04o: %s", k->path, (unsigned)k->old_mode,
                    strerror(errno));
    }
    return RCAT_EXIT_OK;
}

static mode_t default_mode(void)
{
    mode_t mask = umask(0);

    umask(mask);
    return 0666 & ~mask; /* what a shell redirection would have created */
}

/* The local file is opened here rather than by the library: its mode and
 * mtime must be those of the very file whose bytes are sent. */
int source_open(const char *local, struct source *src, const char **result)
{
    struct stat st;

    memset(src, 0, sizeof *src);
    src->name = local;
    src->shown = "standard input";
    src->fd = STDIN_FILENO;
    src->file_size = -1;
    if (strcmp(local, "-") != 0) {
        src->shown = local;
        src->fd = open(local, O_RDONLY | O_NOCTTY | O_CLOEXEC);
        if (src->fd < 0)
            return verdict_fail_local(local, NULL, errno, result);
        src->own_fd = 1;
    }
    if (fstat(src->fd, &st) < 0)
        return verdict_fail_local(src->shown, NULL, errno, result);
    if (S_ISDIR(st.st_mode))
        return verdict_fail_local(src->shown, NULL, EISDIR, result);
    src->mode = S_ISREG(st.st_mode) ? st.st_mode & 0777 : default_mode();
    src->mtime_sec = st.st_mtim.tv_sec;
    src->mtime_nsec = (unsigned)st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode))
        src->file_size = st.st_size;
    return RCAT_EXIT_OK;
}

void source_close(struct source *src)
{
    if (src->own_fd)
        close(src->fd);
}
