/*
 * root.c - path resolution beneath the served directory (rules in root.h).
 * Two resolvers keep the same rules: openat2, where the kernel itself keeps
 * the lookup beneath the root, and a walk in user space for kernels and
 * seccomp profiles without openat2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH, memrchr */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "rcat_proto.h"
#include "root.h"

#define MAX_LINKS 40      /* symlinks followed in one lookup, as the kernel allows */
/* EAGAIN: a rename raced with a ".." inside a symlink. Retries are cheap, and
 * under a rename storm on a busy machine 8 ran out (test_root swap_race). */
#define OPENAT2_RETRIES 64
#define LAST_RETRIES 8    /* the walk met a last component that changed under it */

int root_status_of_errno(int err)
{
    switch (err) {
    case ENOENT:
        return RCAT_NOT_FOUND;
    case ENOTDIR:
        return RCAT_NOT_DIR;
    case EACCES:
    case EPERM:
    case EROFS:
        return RCAT_PERMISSION;
    case EXDEV: /* RESOLVE_BENEATH: the lookup would have left the root */
        return RCAT_OUTSIDE_ROOT;
    case EISDIR:
        return RCAT_IS_DIR;
    case EEXIST:
        return RCAT_EXISTS;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return RCAT_NO_SPACE;
    case ENAMETOOLONG:
    case ELOOP: /* a symlink loop, or a /proc magic link */
    case EINVAL:
        return RCAT_BAD_PATH;
    default:
        return RCAT_IO;
    }
}

/* ---- openat2 ------------------------------------------------------------ */

static long sys_openat2(int dirfd, const char *path, struct open_how *how)
{
    return syscall(SYS_openat2, dirfd, path, how, sizeof *how);
}

/* Seccomp profiles of older container runtimes answer EPERM, not ENOSYS,
 * for system calls they do not know: any failure here means the walk. */
static int probe_openat2(int dirfd)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long fd = sys_openat2(dirfd, ".", &how);

    if (fd < 0)
        return 0;
    close((int)fd);
    return 1;
}

/* Returns an fd or -errno. */
static int open_beneath(int dirfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };

    for (int tries = 0;; tries++) {
        long fd = sys_openat2(dirfd, path, &how);
        if (fd >= 0)
            return (int)fd;
        if (errno == EINTR || (errno == EAGAIN && tries < OPENAT2_RETRIES))
            continue;
        return -errno;
    }
}

/* ---- the walk: one component at a time, never following a link blindly -- */

struct walk {
    int root;
    int dirfd;         /* the directory reached so far: root or one we opened */
    char at[PATH_MAX]; /* its path from the root, "" for the root, for ".." */
    size_t at_len;
    char todo[PATH_MAX]; /* what is left to resolve, from off */
    size_t off;
    int links;
};

static void walk_set_dir(struct walk *w, int fd)
{
    if (w->dirfd != w->root)
        close(w->dirfd);
    w->dirfd = fd;
}

/* A directory entry that is a directory itself, not a symlink to one. */
static int open_dir_nofollow(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
        close(fd);
        return -ENOTDIR;
    }
    return fd;
}

/* Copies the next component of todo into name: 1, 0 when none is left, or
 * -ENAMETOOLONG (a symlink's target may hold anything). */
static int take_component(struct walk *w, char name[NAME_MAX + 1])
{
    const char *p = w->todo + w->off;
    size_t n;

    p += strspn(p, "/");
    n = strcspn(p, "/");
    w->off = (size_t)(p + n - w->todo);
    if (n == 0)
        return 0;
    if (n > NAME_MAX)
        return -ENAMETOOLONG;
    memcpy(name, p, n);
    name[n] = '\0';
    return 1;
}

/* Is another component left? ("x/." must find x a directory.) */
static int more_left(const struct walk *w)
{
    const char *p = w->todo + w->off;

    return p[strspn(p, "/")] != '\0';
}

/* Goes back up by walking down again from the root: opening ".." instead
 * would follow a directory that was moved out of the root meanwhile. */
static int walk_up(struct walk *w)
{
    char copy[PATH_MAX];
    char *save = NULL;

    if (w->at_len == 0)
        return -EXDEV;
    char *slash = memrchr(w->at, '/', w->at_len);
    w->at_len = slash ? (size_t)(slash - w->at) : 0;
    w->at[w->at_len] = '\0';
    memcpy(copy, w->at, w->at_len + 1);
    walk_set_dir(w, w->root);
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int fd = open_dir_nofollow(w->dirfd, c);
        if (fd < 0)
            return fd;
        walk_set_dir(w, fd);
    }
    return 0;
}

/* Puts a symlink's target in front of what is left to resolve. */
static int walk_follow(struct walk *w, int linkfd)
{
    char target[PATH_MAX], joined[PATH_MAX];
    ssize_t n;

    if (++w->links > MAX_LINKS)
        return -ELOOP;
    n = readlinkat(linkfd, "", target, sizeof target);
    if (n < 0)
        return -errno;
    if ((size_t)n >= sizeof target)
        return -ENAMETOOLONG;
    target[n] = '\0';
    if (target[0] == '/')
        return -EXDEV; /* as RESOLVE_BENEATH: absolute targets leave, wherever they point */
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", target, w->todo + w->off) >= sizeof joined)
        return -ENAMETOOLONG;
    memcpy(w->todo, joined, strlen(joined) + 1);
    w->off = 0;
    return 0;
}

/* The last component again, after O_NOFOLLOW refused it with err: follows
 * it if it is a link; -EAGAIN if it changed since (the caller retries). */
static int follow_if_link(struct walk *w, const char *name, int err)
{
    int fd = openat(w->dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    int rc;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISLNK(st.st_mode))
        rc = walk_follow(w, fd);
    else if (err == ELOOP || S_ISDIR(st.st_mode))
        rc = -EAGAIN; /* not a link now, nor the non-directory ENOTDIR meant */
    else
        rc = -err;
    close(fd);
    return rc;
}

static void walk_enter(struct walk *w, const char *name, int fd)
{
    size_t n = strlen(name);

    if (w->at_len)
        w->at[w->at_len++] = '/';
    memcpy(w->at + w->at_len, name, n + 1);
    w->at_len += n;
    walk_set_dir(w, fd);
}

/* A component with more after it: looked up once, then the object itself
 * says whether it is a directory to enter or a link to follow (a second
 * lookup could meet something else). */
static int walk_step(struct walk *w, const char *name)
{
    struct stat st;
    int fd, rc;

    if (w->at_len + 1 + strlen(name) >= sizeof w->at)
        return -ENAMETOOLONG;
    fd = openat(w->dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (S_ISDIR(st.st_mode)) {
        walk_enter(w, name, fd);
        return 0;
    } else {
        rc = S_ISLNK(st.st_mode) ? walk_follow(w, fd) : -ENOTDIR;
    }
    close(fd);
    return rc;
}

/* The last component, opened with the caller's flags unless it is a link.
 * O_NOFOLLOW on a link fails with ELOOP, or ENOTDIR with O_DIRECTORY; with
 * O_PATH it opens the link itself, so O_PATH lookups leave O_DIRECTORY out
 * and judge the one object they opened (a second lookup could meet a link
 * swapped for a directory, and back, as often as it retries). */
static int walk_last_once(struct walk *w, const char *name, int flags, int *out)
{
    int path = flags & O_PATH;
    int fd = openat(w->dirfd, name, (path ? flags & ~O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    int rc;

    if (fd < 0)
        return errno == ELOOP || errno == ENOTDIR ? follow_if_link(w, name, errno) : -errno;
    if (!path) {
        *out = fd;
        return 0;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (S_ISLNK(st.st_mode)) {
        rc = walk_follow(w, fd);
    } else if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) {
        rc = -ENOTDIR;
    } else {
        *out = fd;
        return 0;
    }
    close(fd);
    return rc;
}

static int walk_last(struct walk *w, const char *name, int flags, int *out)
{
    int rc = -EAGAIN;

    for (int tries = 0; rc == -EAGAIN && tries < LAST_RETRIES; tries++)
        rc = walk_last_once(w, name, flags, out);
    return rc;
}

/* One component; 0 with *out still -1 means go on. */
static int walk_next(struct walk *w, int flags, int *out)
{
    char name[NAME_MAX + 1];
    int rc = take_component(w, name);

    if (rc == 0) {
        *out = openat(w->dirfd, ".", flags | O_CLOEXEC);
        return *out < 0 ? -errno : 0;
    }
    if (rc < 0 || !strcmp(name, "."))
        return rc < 0 ? rc : 0;
    if (!strcmp(name, ".."))
        return walk_up(w);
    if (more_left(w))
        return walk_step(w, name);
    return walk_last(w, name, flags, out);
}

/* Returns an fd or -errno. */
static int walk_open(int root, const char *path, int flags)
{
    struct walk w = {.root = root, .dirfd = root};
    int fd = -1, rc = 0;

    if (strlen(path) >= sizeof w.todo)
        return -ENAMETOOLONG;
    strcpy(w.todo, path);
    while (rc == 0 && fd < 0)
        rc = walk_next(&w, flags, &fd);
    walk_set_dir(&w, root);
    return rc < 0 ? rc : fd;
}

/* ---- what a client may be given ------------------------------------------ */

struct root_hidden {
    pthread_mutex_t lock;
    size_t n;
    struct {
        dev_t dev;
        ino_t ino;
    } f[ROOT_HIDDEN_MAX];
};

static int is_hidden(const struct root *r, const struct stat *st)
{
    struct root_hidden *h = r->hidden;
    int found = 0;

    if (!h)
        return 0;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n && !found; i++)
        found = h->f[i].dev == st->st_dev && h->f[i].ino == st->st_ino;
    pthread_mutex_unlock(&h->lock);
    return found;
}

/* Filesystems whose files are the kernel's interfaces, not data: reading
 * one can show a process's memory or environment, writing one can
 * reconfigure the machine. */
static int kernel_fs(int fd)
{
    static const unsigned long magics[] = {
        PROC_SUPER_MAGIC,    SYSFS_MAGIC,   DEBUGFS_MAGIC,      TRACEFS_MAGIC,
        SECURITYFS_MAGIC,    SELINUX_MAGIC, SMACK_MAGIC,        CGROUP_SUPER_MAGIC,
        CGROUP2_SUPER_MAGIC, BPF_FS_MAGIC,  EFIVARFS_MAGIC,     PSTOREFS_MAGIC,
        BINFMTFS_MAGIC,      NSFS_MAGIC,    DEVPTS_SUPER_MAGIC, 0x62656570, /* configfs */
        0x65735543,                                                         /* fusectl */
    };
    struct statfs sf;

    if (fstatfs(fd, &sf) < 0)
        return -errno;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if ((unsigned long)sf.f_type == magics[i])
            return 1;
    return 0;
}

/* Filesystems whose lookups a cache answers and whose opens wait on no
 * server: the root's, for root_open_cached. Being none of kernel_fs's, a
 * file on them needs no fstatfs of its own. */
static int local_fs(int fd)
{
    static const unsigned long magics[] = {
        EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC,  BTRFS_SUPER_MAGIC,
        TMPFS_MAGIC,      F2FS_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC,
    };
    struct statfs sf;

    if (fstatfs(fd, &sf) < 0)
        return 0;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if ((unsigned long)sf.f_type == magics[i])
            return 1;
    return 0;
}

/* The object fd (O_PATH) refers to, described in *st, if a client may see
 * it at all: 0 or RCAT_PERMISSION (or what fstat's failure means). */
static int judge(const struct root *r, int fd, struct stat *st)
{
    int k;

    if (fstat(fd, st) < 0)
        return root_status_of_errno(errno);
    k = kernel_fs(fd);
    if (k < 0)
        return root_status_of_errno(-k);
    return k || is_hidden(r, st) ? RCAT_PERMISSION : 0;
}

/* Opens what the O_PATH descriptor refers to, for real, by the magic link
 * /proc/self/fd/N: the object judged (*st) is the object opened, whatever
 * was renamed meanwhile. *st then describes the open file itself (its
 * fstat, which the check takes anyway): what a FETCH hands the library as
 * the file's size and version. */
static int reopen(int pathfd, int flags, struct stat *st, int *out)
{
    char proc[32];
    struct stat now;
    int fd;

    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pathfd);
    fd = open(proc, flags | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return root_status_of_errno(errno);
    if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
        close(fd); /* not the /proc we know: give out nothing */
        return RCAT_IO;
    }
    *st = now;
    *out = fd;
    return 0;
}

/* ---- the API ------------------------------------------------------------- */

int root_init(struct root *r, const char *dir)
{
    r->hidden = calloc(1, sizeof *r->hidden);
    if (!r->hidden)
        return -ENOMEM;
    pthread_mutex_init(&r->hidden->lock, NULL);
    r->owns_hidden = 1;
    r->fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0) {
        int err = errno;
        root_dispose(r);
        return -err;
    }
    r->use_openat2 = probe_openat2(r->fd);
    r->cached_opens = r->use_openat2 && local_fs(r->fd);
    return 0;
}

void root_dispose(struct root *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->owns_hidden && r->hidden) {
        pthread_mutex_destroy(&r->hidden->lock);
        free(r->hidden);
    }
    r->hidden = NULL;
    r->owns_hidden = 0;
}

int root_hide(struct root *r, const char *const *paths, size_t n)
{
    struct root_hidden *h = r->hidden;
    struct stat st[ROOT_HIDDEN_MAX];

    if (!h || n > ROOT_HIDDEN_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (stat(paths[i], &st[i]) < 0)
            return -errno;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        h->f[i].dev = st[i].st_dev;
        h->f[i].ino = st[i].st_ino;
    }
    h->n = n;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

int root_check(const char *path, size_t len)
{
    if (!path || len == 0 || strlen(path) != len || len >= PATH_MAX)
        return RCAT_BAD_PATH;
    if (path[0] == '/')
        return RCAT_OUTSIDE_ROOT;
    for (const char *p = path; *p; p += strspn(p, "/")) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return RCAT_OUTSIDE_ROOT;
        if (n > NAME_MAX)
            return RCAT_BAD_PATH;
        p += n;
    }
    return 0;
}

/* Returns an fd or -errno. */
static int resolve(const struct root *r, const char *path, int flags)
{
    if (r->use_openat2) {
        int fd = open_beneath(r->fd, path, flags);
        if (fd != -ENOSYS)
            return fd;
    }
    return walk_open(r->fd, path, flags);
}

int root_open(const struct root *r, const char *path, size_t len, int flags, int *fd)
{
    int rc = root_check(path, len);

    if (rc != 0)
        return rc;
    rc = resolve(r, path, flags);
    if (rc < 0)
        return root_status_of_errno(-rc);
    *fd = rc;
    return 0;
}

int root_open_parent(const struct root *r, const char *path, size_t len, int *dirfd,
                     char name[NAME_MAX + 1])
{
    char parent[PATH_MAX];
    int rc = root_check(path, len);

    if (rc != 0)
        return rc;
    while (len > 1 && path[len - 1] == '/')
        len--; /* "dir/name/" names name */
    const char *slash = memrchr(path, '/', len);
    const char *base = slash ? slash + 1 : path;
    size_t n = len - (size_t)(base - path);
    memcpy(name, base, n);
    name[n] = '\0';
    if (slash) {
        memcpy(parent, path, (size_t)(slash - path));
        parent[slash - path] = '\0';
    } else {
        strcpy(parent, ".");
    }
    rc = resolve(r, parent, O_PATH | O_DIRECTORY);
    if (rc < 0)
        return root_status_of_errno(-rc);
    *dirfd = rc;
    return 0;
}

int root_enter(const struct root *r, const char *sub, struct root *out)
{
    int rc = root_check(sub, strlen(sub));

    if (rc != 0)
        return rc;
    rc = resolve(r, sub, O_PATH | O_DIRECTORY);
    if (rc < 0)
        return root_status_of_errno(-rc);
    *out = (struct root){.fd = rc, .use_openat2 = r->use_openat2, .hidden = r->hidden};
    return 0;
}

int root_open_regular(const struct root *r, const char *path, size_t len, int flags, int *fd,
                      struct stat *st)
{
    int rc = root_check(path, len);
    int pathfd;

    if (rc != 0)
        return rc;
    pathfd = resolve(r, path, O_PATH);
    if (pathfd < 0)
        return root_status_of_errno(-pathfd);
    rc = judge(r, pathfd, st);
    if (rc == 0 && !S_ISREG(st->st_mode))
        rc = S_ISDIR(st->st_mode) ? RCAT_IS_DIR : RCAT_PERMISSION;
    if (rc == 0)
        rc = reopen(pathfd, flags, st, fd);
    close(pathfd);
    return rc;
}

int root_open_cached(const struct root *r, const char *path, size_t len, int *fd, struct stat *st)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV | RESOLVE_CACHED,
    };
    long pathfd;
    int rc;

    if (!r->use_openat2 || !r->cached_opens || root_check(path, len) != 0)
        return -EINVAL;
    pathfd = sys_openat2(r->fd, path, &how);
    if (pathfd < 0)
        return -errno;
    /* on the root's filesystem (NO_XDEV), which is no kernel_fs one */
    if (fstat((int)pathfd, st) < 0)
        rc = -errno;
    else
        rc = !S_ISREG(st->st_mode) || is_hidden(r, st) ? -EPERM : 0;
    if (rc == 0 && reopen((int)pathfd, O_RDONLY, st, fd) != 0)
        rc = -EIO;
    close((int)pathfd);
    return rc;
}

int root_open_dir(const struct root *r, const char *path, size_t len, int *fd)
{
    struct stat st;
    int rc = root_check(path, len);
    int dirfd;

    if (rc != 0)
        return rc;
    dirfd = resolve(r, path, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0)
        return root_status_of_errno(-dirfd);
    rc = judge(r, dirfd, &st);
    if (rc != 0) {
        close(dirfd);
        return rc;
    }
    *fd = dirfd;
    return 0;
}

int root_stat(const struct root *r, const char *path, size_t len, struct stat *st)
{
    char name[NAME_MAX + 1];
    int dirfd, fd;
    int rc = root_open_parent(r, path, len, &dirfd, name);

    if (rc != 0)
        return rc;
    fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    rc = fd < 0 ? root_status_of_errno(errno) : judge(r, fd, st);
    if (rc == 0 && !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
        rc = RCAT_PERMISSION;
    if (fd >= 0)
        close(fd);
    close(dirfd);
    return rc;
}

/* What a STORE at name would replace: nothing, a regular file or a symlink. */
static int replaceable(const struct root *r, int dirfd, const char *name, int *exists)
{
    struct stat st;

    *exists = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : root_status_of_errno(errno);
    *exists = 1;
    if (S_ISDIR(st.st_mode))
        return RCAT_IS_DIR;
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return RCAT_PERMISSION;
    return is_hidden(r, &st) ? RCAT_PERMISSION : 0;
}

int root_open_store(const struct root *r, const char *path, size_t len, int *dirfd,
                    char name[NAME_MAX + 1], int *exists)
{
    struct stat st;
    int rc = root_open_parent(r, path, len, dirfd, name);

    if (rc != 0)
        return rc;
    rc = judge(r, *dirfd, &st);
    if (rc == 0)
        rc = replaceable(r, *dirfd, name, exists);
    if (rc != 0) {
        close(*dirfd);
        *dirfd = -1;
    }
    return rc;
}

/* ---- --mkdirs and --append ----------------------------------------------- */

/* The directory prefix names (its first n bytes of a checked path): there
 * already, or made in its parent, which is looked up beneath the root. */
static int make_dir(const struct root *r, const char *prefix, size_t n)
{
    char name[NAME_MAX + 1];
    struct stat st;
    int dirfd, rc, fd = resolve(r, prefix, O_PATH | O_DIRECTORY);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (fd != -ENOENT)
        return root_status_of_errno(-fd);
    rc = root_open_parent(r, prefix, n, &dirfd, name);
    if (rc != 0)
        return rc;
    rc = judge(r, dirfd, &st);
    if (rc == 0 && mkdirat(dirfd, name, 0777) < 0 && errno != EEXIST)
        rc = root_status_of_errno(errno);
    close(dirfd);
    return rc;
}

int root_make_parents(const struct root *r, const char *path, size_t len)
{
    char prefix[PATH_MAX];
    int rc = root_check(path, len);

    while (rc == 0 && len > 1 && path[len - 1] == '/')
        len--; /* "a/b/" names b: a is its parent */
    for (size_t i = 1; rc == 0 && i < len; i++) {
        if (path[i] != '/' || path[i - 1] == '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        rc = make_dir(r, prefix, i);
    }
    return rc;
}

int root_open_append(const struct root *r, const char *path, size_t len, mode_t mode, int *fd,
                     struct stat *st)
{
    char name[NAME_MAX + 1];
    int dirfd, exists, f, rc = root_open_store(r, path, len, &dirfd, name, &exists);

    if (rc != 0)
        return rc;
    /* no link followed, no FIFO waited on: what was judged is what opens */
    f = openat(dirfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
               mode);
    if (f < 0)
        rc = errno == ELOOP ? RCAT_PERMISSION : root_status_of_errno(errno);
    else
        rc = judge(r, f, st);
    if (rc == 0 && !S_ISREG(st->st_mode))
        rc = RCAT_PERMISSION;
    if (rc == 0 && fcntl(f, F_SETFL, 0) < 0)
        rc = root_status_of_errno(errno);
    close(dirfd);
    if (rc != 0 && f >= 0)
        close(f);
    if (rc == 0)
        *fd = f;
    return rc;
}

int root_judge(const struct root *r, int fd, struct stat *st)
{
    return judge(r, fd, st);
}

int root_is_hidden(const struct root *r, const struct stat *st)
{
    return is_hidden(r, st);
}
