/*
 * conffile.h - reading a configuration file whose writer gets power: who
 * can write rcatd's access file grants rights, its hooks file runs commands
 * as rcatd, rcat's associations file sends a key to a host of its choosing.
 * So each is refused unless it is a regular file, written by nobody but its
 * owner, owned by the user reading it or root. Reading it is fine for
 * anyone: none of them holds a secret.
 */
#ifndef RCAT_CONFFILE_H
#define RCAT_CONFFILE_H

#include <stddef.h>

/* Reads path whole (at most max bytes) into *buf (malloc'd, NUL-terminated,
 * the caller's to free), *len its length. 0, or a negative rpc2 error with
 * err saying why, the path first: RPC2_ENOENT (missing), RPC2_EACCES (cannot
 * open, writable by group or others, owned by someone else), RPC2_EINVAL
 * (not a regular file, larger than max), RPC2_ESYSTEM, RPC2_ENOMEM. */
int conffile_read(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen);

#endif
