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
 * Every function returns 0 or a positive rcat_status (rcat_proto.x).
 */
#ifndef RCAT_ROOT_H
#define RCAT_ROOT_H

#include <limits.h>
#include <stddef.h>

struct root {
    int fd;          /* the served directory, O_PATH */
    int use_openat2; /* 0: the kernel refused openat2 at init (tests clear it too) */
};

/* Opens dir as the root. Returns 0 or -errno. */
int root_init(struct root *r, const char *dir);
void root_dispose(struct root *r);

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

/* The rcat_status for a failed system call's errno. */
int root_status_of_errno(int err);

#endif
