/*
 * fileversion.h - which version of a regular file a source is sending.
 *
 * A transfer must deliver exactly one version of its source. A file that
 * is truncated, extended or rewritten in place while it is read would
 * otherwise reach the sink as a splice of old and new bytes, and the
 * end-to-end checksum cannot tell: it covers what was read, not what the
 * file was. So the source notes the file's version when it opens it (size,
 * mtime and ctime to the nanosecond, device and inode), and before the
 * stream's last bytes leave it looks again (fstat of the same fd): any
 * difference fails the transfer with RPC2_ECHANGED.
 *
 * ctime changes on every write, truncate and chmod, whatever mtime says
 * (touch -d cannot set it back). What slips through is a write whose
 * ctime equals the one noted at open: the kernel stamps files from a
 * coarse clock (one tick, 1-10 ms), so a rewrite within the same tick as
 * the open, keeping the size, is not seen. Pipes and devices have no
 * version: their bytes are what they are.
 */
#ifndef RPC2_SFTP_FILEVERSION_H
#define RPC2_SFTP_FILEVERSION_H

#include <stdint.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>

struct fileversion {
    int known; /* a regular file: the fields below are its version at open */
    dev_t dev;
    ino_t ino;
    int64_t size;
    struct timespec mtime, ctime;
    mode_t mode;
};

/* Notes st's version if it is a regular file; otherwise known stays 0. */
void fileversion_note(struct fileversion *v, const struct stat *st);

/* 0 when fd still holds the version noted (or none was), else
 * RPC2_ECHANGED (or the rpc2 error of a failed fstat) with *why set to a
 * static sentence saying what changed. */
int fileversion_check(const struct fileversion *v, int fd, const char **why);

#endif
