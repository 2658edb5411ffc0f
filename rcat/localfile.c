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
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "localfile.h"
#include "report.h"
#include "verdict.h"

/* A symlink is written through, as cp does, never replaced: the file it
 * names is what gets replaced (or written into, for a device or FIFO), and
 * the link stays. -o /dev/stdout with standard output on a file replaces
 * that file. A link that leads nowhere is refused rather than guessed at. */
static int follow_link(const char *dest, struct sink *k, const char **result)
{
    struct stat st;

    if (lstat(dest, &st) < 0 || !S_ISLNK(st.st_mode))
        return RCAT_EXIT_OK;
    if (stat(dest, &st) < 0 && errno == ENOENT) {
        *result = "ENOENT";
        report_error(RCAT_EXIT_LOCAL, *result, dest,
                     "a symbolic link to nothing: not writing through it");
        return RCAT_EXIT_LOCAL;
    }
    k->resolved = realpath(dest, NULL);
    if (!k->resolved)
        return verdict_fail_local(dest, "cannot resolve the symbolic link", errno, result);
    return RCAT_EXIT_OK;
}

/* Devices and FIFOs are written into as they are (-o /dev/null): only a
 * regular file can be replaced atomically. */
int sink_open(const char *dest, int no_clobber, struct sink *k, const char **result)
{
    struct stat st;
    int code;

    memset(k, 0, sizeof *k);
    k->fd = STDOUT_FILENO;
    k->name = "-";
    k->shown = "standard output";
    if (!dest || !strcmp(dest, "-"))
        return RCAT_EXIT_OK;
    k->name = k->shown = dest;
    code = follow_link(dest, k, result);
    if (code != RCAT_EXIT_OK)
        return code;
    if (k->resolved)
        dest = k->resolved;
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
    free(k->resolved);
    k->resolved = NULL;
}

/* The library sets mode and mtime on the temporary before it takes the
 * name, from what the server reports of the file it sent: -p keeps both
 * exactly; otherwise a replaced file keeps its own mode, and a new one
 * gets the source's mode under the umask, as cp does. */
void sink_describe(const struct sink *k, int no_clobber, int preserve, struct rpc2_se_desc *d)
{
    if (!k->path) {
        d->file_kind = RPC2_SE_FILE_FD;
        d->file.fd.fd = k->fd;
        return;
    }
    d->file_kind = RPC2_SE_FILE_NAME;
    d->file.name.path = k->path;
    d->file.name.atomic = 1;
    d->file.name.no_clobber = no_clobber;
    d->file.name.mode = k->replaced ? k->old_mode : 0666; /* when the server says nothing */
    if (preserve)
        d->file.name.attrs =
            RPC2_SE_ATTR_MODE | RPC2_SE_ATTR_SOURCE_MODE | RPC2_SE_ATTR_SOURCE_MTIME;
    else
        d->file.name.attrs = k->replaced ? RPC2_SE_ATTR_MODE : RPC2_SE_ATTR_SOURCE_MODE;
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
