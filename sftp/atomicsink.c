/*
 * atomicsink.c - the temporary, its attributes, and the rename into place
 * (see atomicsink.h for why it is done this way).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2, O_PATH */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>

#include "atomicsink.h"
#include "fileio.h"
#include "restart.h"

static int refuse(const char **why, const char *text, int code)
{
    *why = text;
    return code;
}

void atomic_sink_init(struct atomic_sink *a)
{
    memset(a, 0, sizeof *a);
    a->dirfd = -1;
}

/* Splits path into its directory (opened as a->dirfd) and a->base. */
static int open_parent(struct atomic_sink *a, const char *path, const char **why)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir;

    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return refuse(why, "the name is a directory", RPC2_EISDIR);
    a->base = strdup(base);
    dir = slash == path ? strdup("/") : slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!a->base || !dir) {
        free(dir);
        return refuse(why, "out of memory", RPC2_ENOMEM);
    }
    a->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (a->dirfd < 0)
        return refuse(why, "opening the name's directory failed", fileio_errno_code(errno));
    return 0;
}

/* Whatever is at the name now must be something a rename may replace: a
 * regular file, or a symlink (replaced, never followed: looking through it
 * would tell a client what it points at). */
static int check_replaceable(const struct atomic_sink *a, int no_clobber, const char **why)
{
    struct stat st;

    if (fstatat(a->dirfd, a->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0
                               : refuse(why, "stat of the name failed", fileio_errno_code(errno));
    if (no_clobber)
        return refuse(why, "the name exists (no_clobber)", RPC2_EEXIST);
    if (S_ISDIR(st.st_mode))
        return refuse(why, "the name is a directory", RPC2_EISDIR);
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return refuse(why, "an atomic sink only replaces a regular file", RPC2_EINVAL);
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

/* Created 0777 to learn what the umask (or the directory's default ACL)
 * lets a new file have, then made private at once: nothing is in it yet,
 * and nobody else reads it while it fills. */
static int create_private(struct atomic_sink *a)
{
    struct stat st;
    int fd = openat(a->dirfd, a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0777);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || fchmod(fd, 0600) < 0) {
        int e = errno;

        close(fd);
        unlinkat(a->dirfd, a->tmp, 0);
        errno = e;
        return -1;
    }
    a->allowed = (st.st_mode & 0777) | 07000;
    return fd;
}

/* ".NAME.XXXXXX", with NAME shortened so the whole fits in NAME_MAX. */
static int create_temp(struct atomic_sink *a, const char **why)
{
    size_t keep = strlen(a->base);
    int fd = -1;

    if (keep > NAME_MAX - 8)
        keep = NAME_MAX - 8;
    a->tmp = malloc(NAME_MAX + 1);
    if (!a->tmp)
        return refuse(why, "out of memory", RPC2_ENOMEM);
    for (unsigned attempt = 0; attempt < 64; attempt++) {
        char suffix[7];

        random_suffix(suffix, 6, attempt);
        snprintf(a->tmp, NAME_MAX + 1, ".%.*s.%s", (int)keep, a->base, suffix);
        fd = create_private(a);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        free(a->tmp);
        a->tmp = NULL; /* nothing to remove */
        return refuse(why, "creating the temporary file failed", fileio_errno_code(errno));
    }
    return fd;
}

int atomic_sink_open(struct atomic_sink *a, const char *path, int no_clobber, const char **why)
{
    int rc = open_parent(a, path, why);

    if (rc == 0)
        rc = check_replaceable(a, no_clobber, why);
    return rc < 0 ? rc : create_temp(a, why);
}

/* The bits a new file may have here, learnt from a throwaway private file
 * (an earlier attempt's partial is 0600 and tells nothing). */
static int learn_allowed(struct atomic_sink *a, const char **why)
{
    char *partial = a->tmp;
    int fd;

    a->tmp = NULL;
    fd = create_temp(a, why);
    if (fd >= 0) {
        close(fd);
        unlinkat(a->dirfd, a->tmp, 0);
    }
    free(a->tmp);
    a->tmp = partial;
    return fd < 0 ? fd : 0;
}

static int open_partial(struct atomic_sink *a, int *existed, const char **why)
{
    struct stat st;
    int fd = create_private(a);

    *existed = fd < 0 && errno == EEXIST;
    if (*existed) {
        fd = openat(a->dirfd, a->tmp, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
                        fchmod(fd, 0600) < 0)) {
            close(fd);
            return refuse(why, "the partial file is not a private regular file", RPC2_EINVAL);
        }
    } else if (fd >= 0) {
        /* created O_WRONLY: the next attempt hashes it again, so read-write */
        int rw = openat(a->dirfd, a->tmp, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = rw;
    }
    if (fd < 0)
        return refuse(why, "opening the partial file failed", fileio_errno_code(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return refuse(why, "another transfer is writing this name's partial file", RPC2_EBUSY);
    }
    return fd;
}

int atomic_sink_open_resumable(struct atomic_sink *a, const char *path, int no_clobber,
                               int *existed, const char **why)
{
    int rc = open_parent(a, path, why);
    int fd;

    if (rc == 0)
        rc = check_replaceable(a, no_clobber, why);
    if (rc < 0)
        return rc;
    a->tmp = restart_part_name(a->base);
    a->side = restart_points_name(a->base);
    if (!a->tmp || !a->side)
        return refuse(why, "out of memory", RPC2_ENOMEM);
    a->keep = 1; /* from now on the partial is the next attempt's */
    fd = open_partial(a, existed, why);
    if (fd >= 0 && *existed && (rc = learn_allowed(a, why)) < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int atomic_sink_set_attrs(const struct atomic_sink *a, int fd, mode_t mode, int exact,
                          const struct timespec *mtime, const char **why)
{
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

    if (fchmod(fd, exact ? mode : mode & a->allowed) < 0)
        return refuse(why, "setting the file's mode failed", fileio_errno_code(errno));
    if (!mtime)
        return 0;
    times[1] = *mtime;
    if (futimens(fd, times) < 0)
        return refuse(why, "setting the file's mtime failed", fileio_errno_code(errno));
    return 0;
}

/* RENAME_NOREPLACE is atomic; filesystems without it get link+unlink, which
 * is too (link fails if the name exists), only leaving two names briefly. */
static int rename_no_clobber(const struct atomic_sink *a)
{
    if (renameat2(a->dirfd, a->tmp, a->dirfd, a->base, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    if (linkat(a->dirfd, a->tmp, a->dirfd, a->base, 0) < 0)
        return -1;
    unlinkat(a->dirfd, a->tmp, 0);
    return 0;
}

/* Without it a crash soon after success can leave the old file (or none)
 * at the name, although the new one's bytes are on disk. */
static int sync_dir(const struct atomic_sink *a, const char **why)
{
    int dfd = openat(a->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (dfd < 0 || fsync(dfd) < 0)
        rc =
            refuse(why, "flushing the directory after the rename failed", fileio_errno_code(errno));
    if (dfd >= 0)
        close(dfd);
    return rc;
}

int atomic_sink_commit(struct atomic_sink *a, int no_clobber, int flush, const char **why)
{
    int r = no_clobber ? rename_no_clobber(a) : renameat(a->dirfd, a->tmp, a->dirfd, a->base);

    if (r < 0) {
        int rc = refuse(why,
                        errno == EEXIST ? "the name appeared during the transfer (no_clobber)"
                                        : "renaming the temporary over the name failed",
                        fileio_errno_code(errno));
        unlinkat(a->dirfd, a->tmp, 0);
        free(a->tmp);
        a->tmp = NULL;
        return rc;
    }
    free(a->tmp);
    a->tmp = NULL;
    if (a->side) /* the restart points of a file that is now whole */
        unlinkat(a->dirfd, a->side, 0);
    return flush ? sync_dir(a, why) : 0;
}

void atomic_sink_dispose(struct atomic_sink *a)
{
    if (a->tmp && !a->keep)
        unlinkat(a->dirfd, a->tmp, 0);
    if (a->dirfd >= 0)
        close(a->dirfd);
    free(a->base);
    free(a->tmp);
    free(a->side);
    atomic_sink_init(a);
}
