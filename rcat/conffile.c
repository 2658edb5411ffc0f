/*
 * conffile.c - configuration files only their owner can write (conffile.h).
 * A FIFO at the path must not hang a start or a reload: opened O_NONBLOCK,
 * then refused by fstat.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>

#include "conffile.h"

static int file_ok(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return RPC2_EINVAL;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "%s: writable by group or others (mode %04o): chmod go-w %s", path,
                 (unsigned)(st->st_mode & 07777), path);
        return RPC2_EACCES;
    }
    if (st->st_uid != geteuid() && st->st_uid != 0) {
        snprintf(err, errlen, "%s: owned by uid %lu, not by this user (uid %lu) or root", path,
                 (unsigned long)st->st_uid, (unsigned long)geteuid());
        return RPC2_EACCES;
    }
    return 0;
}

static int read_all(int fd, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    while (*len < cap) {
        ssize_t n = read(fd, buf + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    return 0;
}

int conffile_read(const char *path, size_t max, char **buf, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? RPC2_ENOENT : e == EACCES || e == EPERM ? RPC2_EACCES : RPC2_ESYSTEM;
    }
    rc = fstat(fd, &st) < 0 ? RPC2_ESYSTEM : file_ok(path, &st, err, errlen);
    if (rc == 0 && !(*buf = malloc(max + 1)))
        rc = RPC2_ENOMEM;
    if (rc == 0 && (rc = read_all(fd, *buf, max + 1, len)) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        rc = RPC2_ESYSTEM;
    }
    if (rc == 0 && *len > max) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        rc = RPC2_EINVAL;
    }
    if (rc == RPC2_ESYSTEM && !err[0])
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (rc == RPC2_ENOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    close(fd);
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    (*buf)[*len] = '\0';
    return 0;
}
