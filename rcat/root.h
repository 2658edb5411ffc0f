/*
 * root.h - turning a path from the network into an open file beneath the
 * directory rcatd serves, so that no request can reach anything outside it.
 *
 * A path is relative to the root. Absolute paths and ".." components are
 * refused outright; symlinks are followed while they stay beneath the root
 * (relative targets only), and the kernel checks that as it resolves
 * (openat2 with RESOLVE_BENEATH), so a symlink swapped in during a request
 * cannot lead out. Kernels or sandboxes without openat2 get the same rules
 * from a walk one component at a time with O_NOFOLLOW.
 *
 * What a lookup finds is judged before anything is opened for reading: a
 * client is given regular files and directories only (a device node is
 * never opened: opening some has effects; nor a FIFO, which would wait for
 * a writer), nothing on a filesystem whose files are kernel interfaces
 * (procfs, sysfs and their kind: with a root at or above /proc a client
 * could read /proc/self/mem, keys included), and none of the files the
 * daemon hides (its key and access files, by device and inode, so a hard
 * link to one is refused too).
 *
 * Every function returns 0 or a positive rcat_status (rcat_proto.x).
 */
#ifndef RCAT_ROOT_H
#define RCAT_ROOT_H

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>

struct root_hidden;

struct root {
    int fd;                     /* the served directory, O_PATH */
    int use_openat2;            /* 0: the kernel refused openat2 at init (tests clear it too) */
    struct root_hidden *hidden; /* the root_init one's, shared by root_enter's */
    int owns_hidden;
    /* root_init: openat2 works and the root is on a filesystem of local
     * disks or memory (root_open_cached) */
    int cached_opens;
};

/* Opens dir as the root. Returns 0 or -errno. */
int root_init(struct root *r, const char *dir);
void root_dispose(struct root *r);

/* The files no lookup beneath r (or a root entered from it) may give out,
 * replacing the previous ones: at most ROOT_HIDDEN_MAX, named by paths the
 * daemon uses (not resolved beneath the root). Safe while other threads
 * look up. Returns 0 or -errno (the set is then unchanged). */
#define ROOT_HIDDEN_MAX 8
int root_hide(struct root *r, const char *const *paths, size_t n);

/* A directory beneath r (a path as root_check takes it; "." is r itself)
 * as a root of its own: lookups from out stay beneath it, and it hides
 * what r hides. Dispose of out before r. */
int root_enter(const struct root *r, const char *sub, struct root *out);

/* Refuses what no lookup should see: 0, RCAT_BAD_PATH (empty, NUL inside,
 * too long, a component longer than NAME_MAX) or RCAT_OUTSIDE_ROOT
 * (absolute, a ".." component). len is the length the wire carried: a NUL
 * inside makes strlen(path) shorter. */
int root_check(const char *path, size_t len);

/* Opens what path names, following symlinks that stay beneath the root.
 * flags as for open(2) (O_CLOEXEC is added); *fd is set on success. */
int root_open(const struct root *r, const char *path, size_t len, int flags, int *fd);

/* Opens the directory that holds path's last component (O_PATH) and copies
 * that component into name, which is not looked at (so not followed): the
 * caller stats, replaces or creates it with *at calls on *dirfd. A path
 * naming the root itself gives the root and ".". */
int root_open_parent(const struct root *r, const char *path, size_t len, int *dirfd,
                     char name[NAME_MAX + 1]);

/* root_open_regular for a thread that must not block (rcatd's loop): the
 * path resolved from the kernel's caches alone (RESOLVE_CACHED) and on the
 * root's own filesystem (RESOLVE_NO_XDEV: no mount point beneath the root
 * is crossed, an NFS one least of all), the file opened O_RDONLY. 0 with
 * *fd and *st; any other return (-EAGAIN: not cached, -EXDEV: a mount
 * point or a way out of the root, -EPERM: not a regular file a client may
 * have, ...) is no answer: root_open_regular, on a thread that may block,
 * gives it. Never opens a file root_open_regular would refuse. *st is as
 * root_open_regular's. */
int root_open_cached(const struct root *r, const char *path, size_t len, int *fd, struct stat *st);

/* FETCH: the regular file path names, opened with flags (O_CLOEXEC and
 * O_NOCTTY are added) only after it was judged through an O_PATH
 * descriptor; *st describes it (an fstat of *fd once open, as the library
 * may take it: rpc2_se_desc.file.fd.st). RCAT_IS_DIR for a directory,
 * RCAT_PERMISSION for anything else a client may not be given. */
int root_open_regular(const struct root *r, const char *path, size_t len, int flags, int *fd,
                      struct stat *st);

/* LIST: the directory path names, opened O_RDONLY | O_DIRECTORY (which
 * opens nothing else), on a filesystem that holds files. */
int root_open_dir(const struct root *r, const char *path, size_t len, int *fd);

/* STAT: what path names, a last symlink described, not followed. Only
 * regular files, directories and symlinks are described; the rest is
 * RCAT_PERMISSION. */
int root_stat(const struct root *r, const char *path, size_t len, struct stat *st);

/* STORE: as root_open_parent, and the directory must be on a filesystem
 * that holds files; then what is at the name now: nothing (*exists 0), or a
 * regular file or symlink a rename may replace (*exists 1); RCAT_IS_DIR,
 * or RCAT_PERMISSION for anything else. */
int root_open_store(const struct root *r, const char *path, size_t len, int *dirfd,
                    char name[NAME_MAX + 1], int *exists);

/* STORE with --mkdirs: the directories above path's last component that
 * are missing, made one at a time beneath the root (mode 0777 under the
 * umask, as mkdir -p). */
int root_make_parents(const struct root *r, const char *path, size_t len);

/* STORE with --append: the regular file path names, opened for writing
 * (created with mode under the umask if missing; a symlink is not
 * followed: RCAT_PERMISSION), as judged by root_open_store; *st describes
 * it. */
int root_open_append(const struct root *r, const char *path, size_t len, mode_t mode, int *fd,
                     struct stat *st);

/* For the changes beneath the root (root_edit.c): the object fd refers to
 * (O_PATH will do), described in *st, if a client may see it at all: 0 or
 * RCAT_PERMISSION (kernel interfaces, the daemon's hidden files). */
int root_judge(const struct root *r, int fd, struct stat *st);
/* Whether st is one of the files the daemon hides. */
int root_is_hidden(const struct root *r, const struct stat *st);

/* The rcat_status for a failed system call's errno. */
int root_status_of_errno(int err);

#endif
