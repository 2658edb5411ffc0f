/*
 * iov.h - stepping an iovec array past bytes a vectored call moved, for
 * the loops that call preadv, pwritev and writev again until all is done
 * (fileio.c, streamio.c): one copy of the arithmetic that is easy to get
 * wrong.
 */
#ifndef RPC2_SFTP_IOV_H
#define RPC2_SFTP_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* iov[i..n) less its first r bytes (r at most what they hold): the first
 * entry with bytes left, shortened in place; n when none has. */
static inline int iov_advance(struct iovec *iov, int n, int i, size_t r)
{
    while (i < n && r >= iov[i].iov_len)
        r -= iov[i++].iov_len;
    if (i < n) {
        iov[i].iov_base = (uint8_t *)iov[i].iov_base + r;
        iov[i].iov_len -= r;
    }
    return i;
}

#endif
