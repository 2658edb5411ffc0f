/*
 * fileversion.c - noting and checking a source file's version (see
 * fileversion.h for why, and for what a check cannot see).
 */
#include <errno.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>

#include "fileio.h"
#include "fileversion.h"

void fileversion_note(struct fileversion *v, const struct stat *st)
{
    v->known = S_ISREG(st->st_mode);
    if (!v->known)
        return;
    v->dev = st->st_dev;
    v->ino = st->st_ino;
    v->size = st->st_size;
    v->mtime = st->st_mtim;
    v->ctime = st->st_ctim;
    v->mode = st->st_mode;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int fileversion_check(const struct fileversion *v, int fd, const char **why)
{
    struct stat st;

    if (!v->known)
        return 0;
    if (fstat(fd, &st) < 0) {
        *why = "fstat of the source failed";
        return fileio_errno_code(errno);
    }
    if (st.st_dev != v->dev || st.st_ino != v->ino) {
        *why = "the source is no longer the file it was";
        return RPC2_ECHANGED;
    }
    if (st.st_size < v->size)
        *why = "the file was truncated while it was being sent";
    else if (st.st_size > v->size)
        *why = "the file grew while it was being sent";
    else if (!same_time(&st.st_mtim, &v->mtime) || !same_time(&st.st_ctim, &v->ctime))
        *why = "the file was modified while it was being sent";
    else
        return 0;
    return RPC2_ECHANGED;
}
