/*
 * atomicsink.h - a sink by name that never shows a partial file: the bytes
 * go to a private temporary beside the name, which takes the name only
 * once complete, with its mode and mtime already set and flushed, and the
 * rename made durable by an fsync of the directory. A failed transfer
 * removes the temporary and leaves the name as it was.
 *
 * Whatever is at the name must be a regular file or a symlink; a symlink
 * is replaced, never written through, so a server storing beneath its
 * root never follows a link out of it (a caller that wants to write
 * through a link resolves it first, as rcat does for -o).
 */
#ifndef RPC2_SFTP_ATOMICSINK_H
#define RPC2_SFTP_ATOMICSINK_H

#include <time.h>
#include <sys/types.h>

struct atomic_sink {
    int dirfd;      /* the name's directory (O_PATH); -1: not open */
    char *base;     /* the name within dirfd */
    char *tmp;      /* the temporary within dirfd; NULL: nothing to remove */
    mode_t allowed; /* the permission bits a new file may have here (umask, default ACL) */
    int keep;       /* resumable: a temporary not committed stays for the next attempt */
    char *side;     /* resumable: the restart-point file within dirfd, removed at commit */
};

void atomic_sink_init(struct atomic_sink *a);

/* Creates the temporary for path, mode 0600 while it fills. Returns its
 * fd, or a negative rpc2 error with *why set (nothing is left behind). */
int atomic_sink_open(struct atomic_sink *a, const char *path, int no_clobber, const char **why);

/* A resumable temporary (restart.h): the partial ".NAME.rcat-part" an
 * earlier attempt left, or a new one (mode 0600 either way), kept when the
 * transfer fails. Opened read-write (its prefix is hashed again) and
 * locked (flock): a second attempt at the same name while one runs is
 * RPC2_EBUSY. *existed says whether an earlier attempt's partial was found.
 * Returns its fd or a negative rpc2 error with *why set. */
int atomic_sink_open_resumable(struct atomic_sink *a, const char *path, int no_clobber,
                               int *existed, const char **why);

/* Sets mode (reduced to the allowed bits unless exact) and, if mtime is
 * not NULL, the mtime on the temporary's fd. 0 or an rpc2 error. */
int atomic_sink_set_attrs(const struct atomic_sink *a, int fd, mode_t mode, int exact,
                          const struct timespec *mtime, const char **why);

/* Renames the temporary over the name (no_clobber: RPC2_EEXIST if the name
 * appeared) and, with flush, fsyncs the directory. The temporary is gone
 * either way. */
int atomic_sink_commit(struct atomic_sink *a, int no_clobber, int flush, const char **why);

/* Removes the temporary, if any, and frees what a holds. */
void atomic_sink_dispose(struct atomic_sink *a);

#endif
