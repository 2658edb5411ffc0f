/*
 * root_edit.c - changes beneath the served root (rules in root_edit.h).
 * Each operation resolves the directory that holds its name beneath the
 * root (root_open_parent) and then works on that name with *at calls that
 * never follow it, so a symlink at the name is the thing changed, and one
 * swapped in meanwhile leads nowhere outside.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH, renameat2 */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "rcat_proto.h"
#include "root_edit.h"

#define TEMP_TRIES 8

static int is_dot(const char *name)
{
    return !strcmp(name, ".") || !name[0];
}

/* The directory holding path's last component, judged (not on a kernel
 * filesystem), and the component in name. */
static int open_name(const struct root *r, const char *path, size_t len, int *dirfd,
                     char name[NAME_MAX + 1])
{
    struct stat st;
    int rc = root_open_parent(r, path, len, dirfd, name);

    if (rc != 0)
        return rc;
    rc = root_judge(r, *dirfd, &st);
    if (rc != 0) {
        close(*dirfd);
        *dirfd = -1;
    }
    return rc;
}

/* What is at name, not followed, if a client may change it: 0 (with *st),
 * RCAT_NOT_FOUND, or RCAT_PERMISSION for a hidden file or one that is no
 * regular file, directory or symlink. */
static int judge_name(const struct root *r, int dirfd, const char *name, struct stat *st)
{
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return root_status_of_errno(errno);
    rc = root_judge(r, fd, st);
    close(fd);
    if (rc == 0 && !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
        rc = RCAT_PERMISSION;
    return rc;
}

static int stat_name(int dirfd, const char *name, struct stat *st)
{
    return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? root_status_of_errno(errno) : 0;
}

/* ---- mkdir ---------------------------------------------------------------- */

/* With parents, what is at path must be a directory (followed beneath the
 * root, as mkdir -p follows a symlink to one). */
static int existing_dir(const struct root *r, const char *path, size_t len, struct stat *st)
{
    int fd, rc = root_open(r, path, len, O_PATH | O_DIRECTORY, &fd);

    if (rc == RCAT_NOT_DIR)
        return RCAT_EXISTS;
    if (rc != 0)
        return rc;
    rc = root_judge(r, fd, st);
    close(fd);
    return rc;
}

int root_mkdir(const struct root *r, const char *path, size_t len, mode_t mode, int parents,
               struct stat *st)
{
    char name[NAME_MAX + 1];
    int dirfd, rc = parents ? root_make_parents(r, path, len) : 0;

    if (rc == 0)
        rc = open_name(r, path, len, &dirfd, name);
    if (rc != 0)
        return rc;
    if (is_dot(name))
        rc = RCAT_EXISTS; /* the root is always there */
    else if (mkdirat(dirfd, name, mode & 0777) < 0)
        rc = root_status_of_errno(errno);
    else
        rc = stat_name(dirfd, name, st);
    close(dirfd);
    if (rc == RCAT_EXISTS && parents)
        rc = existing_dir(r, path, len, st);
    return rc;
}

/* ---- rename --------------------------------------------------------------- */

static int rename_status(int err)
{
    switch (err) {
    case ENOTEMPTY:
        return RCAT_NOT_EMPTY;
    case EXDEV: /* another filesystem beneath the root: no atomic rename there */
        return RCAT_IO;
    case EINVAL: /* a directory into itself */
    case EBUSY:  /* a mount point */
        return RCAT_PERMISSION;
    default:
        return root_status_of_errno(err);
    }
}

int root_rename(const struct root *r, const char *from, size_t from_len, const char *to,
                size_t to_len, int no_clobber, struct stat *st)
{
    char fname[NAME_MAX + 1], tname[NAME_MAX + 1];
    struct stat fst, tst;
    int fdir = -1, tdir = -1;
    int rc = open_name(r, from, from_len, &fdir, fname);

    if (rc == 0)
        rc = open_name(r, to, to_len, &tdir, tname);
    if (rc == 0 && (is_dot(fname) || is_dot(tname)))
        rc = RCAT_PERMISSION; /* never the root itself */
    if (rc == 0)
        rc = judge_name(r, fdir, fname, &fst);
    if (rc == 0) {
        rc = judge_name(r, tdir, tname, &tst);
        rc = rc == RCAT_NOT_FOUND ? 0 : rc == 0 && no_clobber ? RCAT_EXISTS : rc;
    }
    if (rc == 0 && renameat2(fdir, fname, tdir, tname, no_clobber ? RENAME_NOREPLACE : 0) < 0)
        rc = rename_status(errno);
    if (rc == 0)
        rc = stat_name(tdir, tname, st);
    if (fdir >= 0)
        close(fdir);
    if (tdir >= 0)
        close(tdir);
    return rc;
}

/* ---- delete --------------------------------------------------------------- */

struct tree {
    const struct root *r;
    dev_t dev; /* the tree's filesystem: a mount beneath it is left alone */
    uint64_t budget, removed;
    int more;
    int status; /* the first entry that could not go */
};

static void tree_fail(struct tree *t, int status)
{
    if (!t->status)
        t->status = status;
}

static int remove_dir_entries(struct tree *t, int fd, int depth);

/* One entry of a directory being emptied: a subtree, or a name unlinked. */
static void remove_entry(struct tree *t, int dirfd, const char *name, int depth)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            tree_fail(t, root_status_of_errno(errno));
        return;
    }
    if (root_is_hidden(t->r, &st)) {
        tree_fail(t, RCAT_PERMISSION);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            tree_fail(t, root_status_of_errno(errno));
            return;
        }
        if (remove_dir_entries(t, fd, depth + 1) != 0 || t->more)
            return;
    }
    if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
        if (errno != ENOENT)
            tree_fail(t, rename_status(errno));
        return;
    }
    if (++t->removed >= t->budget)
        t->more = 1;
}

/* Empties the directory open at fd (closed here), depth first. A kernel
 * filesystem or another mount is not entered. */
static int remove_dir_entries(struct tree *t, int fd, int depth)
{
    struct stat st;
    struct dirent *e;
    DIR *d;
    int rc = depth > ROOT_TREE_DEPTH ? RCAT_BAD_PATH : root_judge(t->r, fd, &st);

    if (rc == 0 && st.st_dev != t->dev)
        rc = RCAT_PERMISSION;
    if (rc != 0 || !(d = fdopendir(fd))) {
        tree_fail(t, rc ? rc : root_status_of_errno(errno));
        close(fd);
        return t->status;
    }
    while (!t->more && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            remove_entry(t, dirfd(d), e->d_name, depth);
    closedir(d);
    return 0;
}

int root_delete(const struct root *r, const char *path, size_t len, unsigned flags, uint64_t budget,
                uint64_t *removed, int *more)
{
    char name[NAME_MAX + 1];
    struct stat st;
    int dirfd, rc = open_name(r, path, len, &dirfd, name);

    *removed = 0;
    *more = 0;
    if (rc != 0)
        return rc;
    if (is_dot(name))
        rc = RCAT_PERMISSION; /* never the root itself */
    if (rc == 0)
        rc = judge_name(r, dirfd, name, &st);
    if (rc == 0 && S_ISDIR(st.st_mode) && !(flags & (RCAT_DELETE_DIR | RCAT_DELETE_RECURSIVE)))
        rc = RCAT_IS_DIR;
    if (rc == 0 && S_ISDIR(st.st_mode) && (flags & RCAT_DELETE_RECURSIVE)) {
        struct tree t = {.r = r, .dev = st.st_dev, .budget = budget ? budget : 1};
        remove_entry(&t, dirfd, name, 0);
        *removed = t.removed;
        *more = t.more;
        rc = t.status;
    } else if (rc == 0) {
        if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
            rc = rename_status(errno);
        else
            *removed = 1;
    }
    close(dirfd);
    return rc;
}

/* ---- symlinks ------------------------------------------------------------- */

static int temp_name(char out[NAME_MAX + 1])
{
    unsigned char b[6];

    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return RCAT_IO;
    snprintf(out, NAME_MAX + 1, ".rcat-link.%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
             b[5]);
    return 0;
}

/* A link made under a temporary name and renamed over name: whoever looks
 * sees the old entry or the new link, never nothing. */
static int replace_with_link(int dirfd, const char *name, const char *target)
{
    char tmp[NAME_MAX + 1];

    for (int tries = 0; tries < TEMP_TRIES; tries++) {
        int rc = temp_name(tmp);
        if (rc != 0)
            return rc;
        if (symlinkat(target, dirfd, tmp) < 0) {
            if (errno == EEXIST)
                continue;
            return root_status_of_errno(errno);
        }
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
            int err = errno;
            unlinkat(dirfd, tmp, 0);
            return rename_status(err);
        }
        return 0;
    }
    return RCAT_IO;
}

int root_symlink(const struct root *r, const char *path, size_t len, const char *target,
                 size_t target_len, int replace, struct stat *st)
{
    char name[NAME_MAX + 1];
    struct stat old;
    int dirfd, rc;

    if (!target || target_len == 0 || strlen(target) != target_len || target_len >= PATH_MAX)
        return RCAT_BAD_PATH;
    rc = open_name(r, path, len, &dirfd, name);
    if (rc != 0)
        return rc;
    if (is_dot(name))
        rc = RCAT_EXISTS;
    if (rc == 0 && replace) {
        rc = judge_name(r, dirfd, name, &old);
        if (rc == 0 && S_ISDIR(old.st_mode))
            rc = RCAT_IS_DIR;
        if (rc == 0)
            rc = replace_with_link(dirfd, name, target);
        else if (rc == RCAT_NOT_FOUND)
            rc = symlinkat(target, dirfd, name) < 0 ? root_status_of_errno(errno) : 0;
    } else if (rc == 0 && symlinkat(target, dirfd, name) < 0) {
        rc = root_status_of_errno(errno);
    }
    if (rc == 0)
        rc = stat_name(dirfd, name, st);
    close(dirfd);
    return rc;
}

int root_readlink(const struct root *r, const char *path, size_t len, char *out, size_t cap)
{
    char name[NAME_MAX + 1];
    struct stat st;
    int dirfd, rc = open_name(r, path, len, &dirfd, name);

    if (rc != 0)
        return rc;
    rc = is_dot(name) ? RCAT_NOT_LINK : judge_name(r, dirfd, name, &st);
    if (rc == 0 && !S_ISLNK(st.st_mode))
        rc = RCAT_NOT_LINK;
    if (rc == 0) {
        ssize_t n = readlinkat(dirfd, name, out, cap);
        if (n < 0)
            rc = errno == EINVAL ? RCAT_NOT_LINK : root_status_of_errno(errno);
        else if ((size_t)n >= cap)
            rc = RCAT_BAD_PATH;
        else
            out[n] = '\0';
    }
    close(dirfd);
    return rc;
}

/* ---- attributes ----------------------------------------------------------- */

/* The object at fd (O_PATH) changed through its /proc/self/fd link: the
 * object judged is the object changed, whatever is renamed meanwhile. */
static int set_on_fd(int fd, unsigned flags, mode_t mode, const struct timespec *mtime)
{
    char proc[32];
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {0}};

    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if ((flags & RCAT_SETATTR_MODE) && fchmodat(AT_FDCWD, proc, mode & 0777, 0) < 0)
        return root_status_of_errno(errno);
    if (flags & RCAT_SETATTR_MTIME) {
        ts[1] = *mtime;
        if (utimensat(AT_FDCWD, proc, ts, 0) < 0)
            return root_status_of_errno(errno);
    }
    return 0;
}

int root_setattr(const struct root *r, const char *path, size_t len, unsigned flags, mode_t mode,
                 const struct timespec *mtime, struct stat *st)
{
    char name[NAME_MAX + 1];
    int dirfd, fd, rc = open_name(r, path, len, &dirfd, name);

    if (rc != 0)
        return rc;
    fd = is_dot(name) ? dup(dirfd) : openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    rc = fd < 0 ? root_status_of_errno(errno) : root_judge(r, fd, st);
    if (rc == 0 && S_ISLNK(st->st_mode)) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {0}};
        if (flags & RCAT_SETATTR_MODE)
            rc = RCAT_PERMISSION; /* Linux keeps no mode on a symlink */
        else if (ts[1] = *mtime, utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
            rc = root_status_of_errno(errno);
    } else if (rc == 0 && (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
        rc = set_on_fd(fd, flags, mode, mtime);
    } else if (rc == 0) {
        rc = RCAT_PERMISSION;
    }
    if (rc == 0 && fstat(fd, st) < 0)
        rc = root_status_of_errno(errno);
    if (fd >= 0)
        close(fd);
    close(dirfd);
    return rc;
}
