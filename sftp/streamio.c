/*
 * streamio.c - stream fds without blocking the loop (see streamio.h for
 * why the caller's fd keeps its flags and how each kind is handled).
 */
#include "streamio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "machine.h"

#define MEM_MAJOR 1 /* Linux devices.txt: mem, null, zero, full, random, urandom */

/* 1 when fd is ready for events now, 0 when not, -1 on error. */
static int ready_now(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    while ((n = poll(&p, 1, 0)) < 0)
        if (errno != EINTR)
            return -1;
    return n > 0 && p.revents != 0;
}

static int await(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};

    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* A FIFO or terminal gets a description of its own that may be O_NONBLOCK. */
static void open_own_writer(struct streamio *s)
{
    char path[64];
    struct stat st;
    int fd;

    if (fstat(s->fd, &st) < 0 || !(S_ISFIFO(st.st_mode) || isatty(s->fd)))
        return;
    snprintf(path, sizeof path, "/proc/self/fd/%d", s->fd);
    fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return; /* no /proc, or the pipe has no reader: ask poll instead */
    s->wfd = fd;
    s->own_wfd = 1;
    s->native = 1;
}

int streamio_init(struct streamio *s, int fd, int sink, int nonblocking)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);

    memset(s, 0, sizeof *s);
    if (fl < 0 || fstat(fd, &st) < 0)
        return -1;
    s->fd = s->wfd = fd;
    s->is_sock = S_ISSOCK(st.st_mode);
    s->nonblocking = nonblocking;
    /* The kernel's memory devices (/dev/null, /dev/zero, /dev/urandom...)
     * never block, so asking poll() before each buffer only doubles the
     * system calls of a `rcat > /dev/null`. */
    s->native = !!(fl & O_NONBLOCK) || (S_ISCHR(st.st_mode) && major(st.st_rdev) == MEM_MAJOR);
    if (sink && nonblocking && !s->native && !s->is_sock)
        open_own_writer(s);
    return 0;
}

void streamio_dispose(struct streamio *s)
{
    if (s->own_wfd)
        close(s->wfd);
    free(s->kept);
    memset(s, 0, sizeof *s);
    s->fd = s->wfd = -1;
}

/* ---- the kept bytes ------------------------------------------------------ */

static int make_room(struct streamio *s, size_t need)
{
    uint8_t *p;

    if (need <= s->kept_cap)
        return 0;
    p = realloc(s->kept, need);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    s->kept = p;
    s->kept_cap = need;
    return 0;
}

static size_t take_kept(struct streamio *s, uint8_t *buf, size_t len)
{
    size_t n = s->kept_len < len ? s->kept_len : len;

    if (n == 0)
        return 0;
    memcpy(buf, s->kept, n);
    memmove(s->kept, s->kept + n, s->kept_len - n);
    s->kept_len -= n;
    return n;
}

int streamio_unread(struct streamio *s, const uint8_t *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (make_room(s, s->kept_len + len) < 0)
        return -1;
    memmove(s->kept + len, s->kept, s->kept_len);
    memcpy(s->kept, buf, len);
    s->kept_len += len;
    return 0;
}

/* ---- single system calls --------------------------------------------------- */

/* One read: bytes, 0 at the end, or -1 (EAGAIN only when non-blocking). */
static ssize_t read_once(struct streamio *s, uint8_t *buf, size_t len)
{
    for (;;) {
        ssize_t n;

        if (s->nonblocking && !s->native && !s->is_sock) {
            int r = ready_now(s->fd, POLLIN);
            if (r <= 0) {
                errno = r < 0 ? errno : EAGAIN;
                return -1;
            }
        }
        n = s->is_sock ? recv(s->fd, buf, len, s->nonblocking ? MSG_DONTWAIT : 0)
                       : read(s->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && !s->nonblocking && await(s->fd, POLLIN) == 0)
            continue;
        return -1;
    }
}

/* One write: bytes taken (> 0), or -1 (EAGAIN only when non-blocking). */
static ssize_t write_once(struct streamio *s, const uint8_t *data, size_t len)
{
    for (;;) {
        ssize_t n;

        if (s->nonblocking && !s->native && !s->is_sock) {
            int r = ready_now(s->wfd, POLLOUT);
            if (r <= 0) {
                errno = r < 0 ? errno : EAGAIN;
                return -1;
            }
        }
        n = s->is_sock ? send(s->wfd, data, len, MSG_NOSIGNAL | (s->nonblocking ? MSG_DONTWAIT : 0))
                       : write(s->wfd, data, len);
        if (n > 0)
            return n;
        if (n == 0) { /* would loop forever: the device takes no more */
            errno = ENOSPC;
            return -1;
        }
        if (errno == EINTR)
            continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && !s->nonblocking &&
            await(s->wfd, POLLOUT) == 0)
            continue;
        return -1;
    }
}

static int would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* ---- reading ------------------------------------------------------------- */

ssize_t streamio_read(struct streamio *s, uint8_t *buf, size_t len)
{
    size_t got = take_kept(s, buf, len);

    s->waiting = 0;
    while (got < len) {
        ssize_t n = read_once(s, buf + got, len - got);

        if (n == 0)
            break;
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (!would_block())
            return -1;
        if (streamio_unread(s, buf, got) < 0)
            return -1;
        s->waiting = POLLIN;
        return SFTP_IO_WAIT;
    }
    return (ssize_t)got;
}

/* ---- writing ------------------------------------------------------------- */

int streamio_flush(struct streamio *s, int block)
{
    s->waiting = 0;
    while (s->kept_len > 0) {
        ssize_t n = write_once(s, s->kept, s->kept_len);

        if (n > 0) {
            memmove(s->kept, s->kept + n, s->kept_len - (size_t)n);
            s->kept_len -= (size_t)n;
            continue;
        }
        if (!would_block())
            return -1;
        if (block && await(s->wfd, POLLOUT) == 0)
            continue;
        if (block)
            return -1;
        s->waiting = POLLOUT;
        return SFTP_IO_WAIT;
    }
    return 0;
}

int streamio_write(struct streamio *s, const uint8_t *data, size_t len)
{
    size_t done = 0;
    int rc = streamio_flush(s, 0);

    if (rc != 0)
        return rc;
    while (done < len) {
        ssize_t n = write_once(s, data + done, len - done);

        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (!would_block())
            return -1;
        if (done == 0) {
            s->waiting = POLLOUT;
            return SFTP_IO_WAIT;
        }
        /* Part went out: the rest is ours now, put down by the next flush. */
        if (make_room(s, len - done) < 0)
            return -1;
        memcpy(s->kept, data + done, len - done);
        s->kept_len = len - done;
        return 0;
    }
    return 0;
}

int streamio_fd(const struct streamio *s)
{
    return s->waiting == POLLOUT ? s->wfd : s->fd;
}

short streamio_wait_events(const struct streamio *s)
{
    return s->waiting;
}
