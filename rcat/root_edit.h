/*
 * root_edit.h - the changes rcatd's remote operations make beneath the
 * root: make a directory, rename, delete (a tree too), store a symlink as a
 * link, read one, set a mode or an mtime. Names are resolved as root.h
 * resolves them (beneath the root, RESOLVE_BENEATH), and the last
 * component is never followed: a symlink is renamed, removed or described
 * itself. The root itself is never renamed or removed, and the files the
 * daemon hides (its keys) are neither replaced, removed nor renamed.
 *
 * Every function returns 0 or a positive rcat_status (rcat_proto.x).
 */
#ifndef RCAT_ROOT_EDIT_H
#define RCAT_ROOT_EDIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/stat.h>

#include "root.h"

#define ROOT_TREE_DEPTH 128 /* directories deep a recursive delete goes (one fd each) */

/* mkdir (mode under the umask); with parents, as mkdir -p: the missing
 * directories above are made too, and a directory already there (or a
 * symlink beneath the root to one) is no error. *st: the directory. */
int root_mkdir(const struct root *r, const char *path, size_t len, mode_t mode, int parents,
               struct stat *st);

/* renameat2 from -> to, both beneath r; no_clobber: RENAME_NOREPLACE
 * (RCAT_EXISTS when to exists). *st: what to names afterwards. */
int root_rename(const struct root *r, const char *from, size_t from_len, const char *to,
                size_t to_len, int no_clobber, struct stat *st);

/* flags: RCAT_DELETE_*. A file or symlink; an empty directory with
 * RCAT_DELETE_DIR; a tree with RCAT_DELETE_RECURSIVE, which removes at most
 * budget entries, then sets *more (the rest is for another call). A tree
 * stays on its filesystem, and its hidden files stay (RCAT_PERMISSION).
 * *removed counts what went. */
int root_delete(const struct root *r, const char *path, size_t len, unsigned flags, uint64_t budget,
                uint64_t *removed, int *more);

/* A symlink at path to target (stored as given: target_len is the wire's,
 * a NUL inside is refused). replace: an existing file or symlink is
 * replaced atomically; otherwise RCAT_EXISTS. *st: the link. */
int root_symlink(const struct root *r, const char *path, size_t len, const char *target,
                 size_t target_len, int replace, struct stat *st);

/* The target of the symlink path names (NUL-terminated in out);
 * RCAT_NOT_LINK for anything else. */
int root_readlink(const struct root *r, const char *path, size_t len, char *out, size_t cap);

/* flags: RCAT_SETATTR_*; mode (0777 at most; RCAT_PERMISSION on a
 * symlink), mtime (a symlink's own). "." is the root itself. *st: after. */
int root_setattr(const struct root *r, const char *path, size_t len, unsigned flags, mode_t mode,
                 const struct timespec *mtime, struct stat *st);

#endif
