/*
 * streamio.h - reading and writing a stream fd (a pipe, socket, terminal or
 * other character device) for one transfer, either blocking or without ever
 * blocking the loop.
 *
 * Why: an rcat writing to `less` or reading a pg_dump that pauses must not
 * stop the event loop that keeps every connection alive. In non-blocking
 * mode a read that cannot fill its buffer, or a write that finds no room,
 * returns SFTP_IO_WAIT and the caller watches streamio_wait_events() on
 * streamio_fd() until the fd is ready.
 *
 * The caller's fd is never switched to O_NONBLOCK: that flag belongs to the
 * open file description, which the shell and other processes share. Instead:
 * - reads ask poll() first (a pipe or terminal that polls readable returns
 *   what it has without blocking); sockets use MSG_DONTWAIT;
 * - writes go through a second description of the same FIFO or terminal,
 *   opened O_NONBLOCK through /proc/self/fd; sockets use MSG_DONTWAIT; an
 *   fd already O_NONBLOCK is used as it is. Where none of these works the
 *   write asks poll() first and then may block for the rest of one buffer.
 *
 * A read fills its whole buffer or stops at the end of the stream; bytes of
 * a partly filled buffer are kept for the next read. A write takes all of
 * its bytes or none: a partial write keeps the rest (one buffer's worth at
 * most) until streamio_flush() or the next write puts it down.
 */
#ifndef RPC2_SFTP_STREAMIO_H
#define RPC2_SFTP_STREAMIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct streamio {
    int fd;          /* the caller's (never closed here) */
    int wfd;         /* where writes go: fd or our own O_NONBLOCK description */
    int own_wfd;
    int is_sock;
    int nonblocking; /* SFTP_IO_WAIT instead of blocking */
    int native;      /* wfd is O_NONBLOCK itself: write without asking poll */
    short waiting;   /* POLLIN or POLLOUT after SFTP_IO_WAIT, else 0 */
    uint8_t *kept;   /* read: bytes of a partly filled buffer; write: the rest of one */
    size_t kept_len, kept_cap;
};

/* Sets s up for fd; sink says which way bytes go. 0 or -1 (errno). */
int streamio_init(struct streamio *s, int fd, int sink, int nonblocking);
void streamio_dispose(struct streamio *s);

/* len bytes, fewer only at the end; SFTP_IO_WAIT; or -1 (errno). */
ssize_t streamio_read(struct streamio *s, uint8_t *buf, size_t len);
/* Gives len bytes back to be read first (a caller's read that cannot
 * complete after all). 0 or -1 (ENOMEM). */
int streamio_unread(struct streamio *s, const uint8_t *buf, size_t len);
/* 0 (all taken), SFTP_IO_WAIT (none taken) or -1 (errno). */
int streamio_write(struct streamio *s, const uint8_t *data, size_t len);
/* streamio_write of the bytes of iov[0..n) in order, n <= STREAMIO_IOV_MAX,
 * with one writev (or sendmsg) where the fd takes them all. */
#define STREAMIO_IOV_MAX 64
int streamio_writev(struct streamio *s, const struct iovec *iov, int n);
/* Puts down what a write kept: 0, SFTP_IO_WAIT or -1. block waits for it. */
int streamio_flush(struct streamio *s, int block);

/* What to watch after SFTP_IO_WAIT: the fd and POLLIN or POLLOUT. */
int streamio_fd(const struct streamio *s);
short streamio_wait_events(const struct streamio *s);

#endif
