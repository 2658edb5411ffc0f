/*
 * io.c - the one place that talks to the kernel's UDP sockets. Keeping every
 * socket call here means the protocol code can be driven in memory by tests,
 * and that batching, error policy and address-family quirks are decided once:
 * datagrams move in batches of IO_BATCH through recvmmsg and sendmmsg, and a
 * datagram the kernel refuses is dropped, never reported as a failure of the
 * batch, because UDP is lossy anyway and the protocols retransmit.
 *
 * A run of datagrams of one size to one peer (a bulk transfer's MTU-sized
 * DATA) goes as one message with UDP segmentation offload (UDP_SEGMENT):
 * the kernel builds one buffer and cuts it into the datagrams at the
 * device, instead of a trip down the stack per datagram. The datagrams stay
 * separate iovecs, so nothing is copied to join them; the receiver sees
 * the same datagrams either way. Where the kernel has no UDP_SEGMENT, or
 * refuses a segmented message, they go one by one as before.
 *
 * Receiving is the mirror (UDP_GRO): a run of equal datagrams from one
 * peer may arrive as one message with their size in a control message, so
 * a fast transfer costs a receive per 64 KiB instead of per datagram; the
 * caller cuts it (io_rx.seg_size). A kernel without it delivers them one
 * by one, and nothing else changes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#endif
#include <errno.h>
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rpc2/rpc2.h>

#include "io.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/* Segments per message: the kernel's limit was 64 until Linux 6.x raised it. */
#define GSO_SEGMENTS 64
/* Payload per message: an IPv4 datagram carries at most 65507 bytes. */
#define GSO_BYTES 65000

/* Room for a few milliseconds of a fast sender, so a loop that is busy for
 * a moment does not turn into packet loss and retransmissions. */
#define IO_SOCKBUF (4 * 1024 * 1024)

/* Asks for a large buffer. The FORCE variant (CAP_NET_ADMIN) may go beyond
 * net.core.[rw]mem_max; without the capability the plain one is capped
 * there. Neither failing is an error: the socket still works. */
static void want_sockbuf(int fd, int force_opt, int opt)
{
    int size = IO_SOCKBUF;

    if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) == 0)
        return;
    (void)setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

static int is_v6_wildcard(const struct sockaddr_storage *ss)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

    return ss->ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

/* Closes fd on a failure path without losing the errno that explains it. */
static int fail_closing(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
    return RPC2_ESYSTEM;
}

int io_open(const struct sockaddr_storage *ss, socklen_t len)
{
    if (!ss || (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)) {
        errno = EAFNOSUPPORT;
        return RPC2_EINVAL;
    }
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return RPC2_ESYSTEM;
    /* One wildcard socket serves IPv4 peers too (as ::ffff:a.b.c.d), whatever
     * net.ipv6.bindv6only says. */
    if (is_v6_wildcard(ss)) {
        int off = 0;

        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0)
            return fail_closing(fd);
    }
    want_sockbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    want_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    /* Drops are only counted, never needed: a kernel without it is fine. */
    int on = 1;

    (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    (void)setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on); /* likewise only faster */
    if (bind(fd, (const struct sockaddr *)ss, len) < 0)
        return fail_closing(fd);
    return fd;
}

static int local_addr(int fd, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof *ss;

    if (getsockname(fd, (struct sockaddr *)ss, &len) < 0)
        return RPC2_ESYSTEM;
    return 0;
}

int io_local_port(int fd)
{
    struct sockaddr_storage ss;
    int rc = local_addr(fd, &ss);

    if (rc < 0)
        return rc;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    errno = EAFNOSUPPORT;
    return RPC2_EINVAL;
}

int io_family(int fd)
{
    struct sockaddr_storage ss;
    int rc = local_addr(fd, &ss);

    return rc < 0 ? rc : ss.ss_family;
}

int io_rx_init(struct io_rx *rx, size_t buf_size)
{
    memset(rx, 0, sizeof *rx);
    if (buf_size == 0)
        return RPC2_EINVAL;
    rx->buf_size = buf_size;
    for (unsigned i = 0; i < IO_BATCH; i++) {
        rx->bufs[i] = malloc(buf_size);
        if (!rx->bufs[i]) {
            io_rx_dispose(rx);
            return RPC2_ENOMEM;
        }
    }
    return 0;
}

void io_rx_dispose(struct io_rx *rx)
{
    for (unsigned i = 0; i < IO_BATCH; i++) {
        free(rx->bufs[i]);
        rx->bufs[i] = NULL;
    }
    rx->count = 0;
}

/* An ICMP error queued on the socket (port unreachable and the like) that a
 * receive call reports instead of data; reading it clears it. */
static int is_peer_error(int err)
{
    return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
           err == ENETDOWN;
}

/* The drop count stamped on a received datagram. The kernel adds it only
 * once the count is not zero, so a datagram without it says "none yet". */
static void note_drops(struct msghdr *hdr, struct io_drops *drops)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL ||
            c->cmsg_len < CMSG_LEN(sizeof(uint32_t)))
            continue;
        uint32_t count;

        memcpy(&count, CMSG_DATA(c), sizeof count);
        /* Unsigned difference: right across the counter's wrap too. */
        drops->total += (uint32_t)(count - drops->last);
        drops->last = count;
    }
}

/* UDP_GRO's segment size, when the kernel joined datagrams; else 0. */
static size_t gro_segment(struct msghdr *hdr)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
        int size;

        if (c->cmsg_level != SOL_UDP || c->cmsg_type != UDP_GRO ||
            c->cmsg_len < CMSG_LEN(sizeof size))
            continue;
        memcpy(&size, CMSG_DATA(c), sizeof size);
        return size > 0 ? (size_t)size : 0;
    }
    return 0;
}

static void add_dgram(struct io_rx *rx, unsigned i, size_t off, size_t len, int truncated)
{
    struct io_dgram *d = &rx->dgrams[rx->dgram_count++];

    d->data = rx->bufs[i] + off;
    d->len = len;
    d->truncated = truncated;
    d->msg = i;
}

/* Lists message i's datagrams: seg bytes each (0: the message is one). A
 * segment size that would cut more than the kernel ever joins (64 a
 * message) is not believed: the message is listed whole and truncated,
 * so it is dropped as one. */
static void cut(struct io_rx *rx, unsigned i, size_t seg)
{
    size_t len = rx->lens[i];

    if (seg == 0 || seg >= len) {
        add_dgram(rx, i, 0, len, rx->truncated[i]);
        return;
    }
    if ((len + seg - 1) / seg > IO_DGRAMS_MAX / IO_BATCH) {
        add_dgram(rx, i, 0, len, 1);
        return;
    }
    for (size_t off = 0; off < len; off += seg)
        add_dgram(rx, i, off, len - off < seg ? len - off : seg, 0);
}

int io_recv(int fd, struct io_rx *rx, struct io_drops *drops)
{
    struct mmsghdr msgs[IO_BATCH];
    struct iovec iov[IO_BATCH];

    memset(msgs, 0, sizeof msgs);
    for (unsigned i = 0; i < IO_BATCH; i++) {
        iov[i].iov_base = rx->bufs[i];
        iov[i].iov_len = rx->buf_size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &rx->from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof rx->from[i];
        msgs[i].msg_hdr.msg_control = rx->control[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof rx->control[i].buf;
    }
    rx->count = rx->dgram_count = 0;
    int n;

    do {
        n = recvmmsg(fd, msgs, IO_BATCH, MSG_DONTWAIT, NULL);
    } while (n < 0 && (errno == EINTR || is_peer_error(errno)));
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : RPC2_ESYSTEM;
    for (int i = 0; i < n; i++) {
        rx->lens[i] = msgs[i].msg_len;
        rx->truncated[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        rx->fromlen[i] = msgs[i].msg_hdr.msg_namelen;
        cut(rx, (unsigned)i, rx->truncated[i] ? 0 : gro_segment(&msgs[i].msg_hdr));
        if (drops)
            note_drops(&msgs[i].msg_hdr, drops);
    }
    rx->count = (unsigned)n;
    return (int)rx->dgram_count;
}

int io_want_peer_errors(int fd)
{
    int on = 1;
    int family = io_family(fd);

    if (family < 0)
        return family;
    /* A dual-stack socket hears IPv4 peers' ICMP through the IPv4 option. */
    if (setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on) < 0 && family == AF_INET)
        return RPC2_ESYSTEM;
    if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on) < 0)
        return RPC2_ESYSTEM;
    return 0;
}

static const struct sock_extended_err *extended_err(struct msghdr *hdr)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR))
            return c->cmsg_len >= CMSG_LEN(sizeof(struct sock_extended_err))
                       ? (const struct sock_extended_err *)CMSG_DATA(c)
                       : NULL;
    }
    return NULL;
}

/* What the network said, not the kernel about its own sending (a datagram
 * too large for the path, a full queue): only an ICMP is about the peer. */
static int from_icmp(const struct sock_extended_err *ee)
{
    return ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6;
}

int io_recv_peer_error(int fd, struct io_peer_error *pe)
{
    union {
        char buf[256];
        struct cmsghdr align;
    } control;

    for (;;) {
        struct iovec iov = {pe->quoted, sizeof pe->quoted};
        struct msghdr hdr = {
            .msg_name = &pe->to,
            .msg_namelen = sizeof pe->to,
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof control.buf,
        };
        ssize_t n = recvmsg(fd, &hdr, MSG_ERRQUEUE | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : RPC2_ESYSTEM;
        const struct sock_extended_err *ee = extended_err(&hdr);

        if (!ee || !from_icmp(ee))
            continue; /* read, so it is gone; nothing to tell */
        pe->err = (int)ee->ee_errno;
        pe->tolen = hdr.msg_namelen;
        pe->quoted_len = (size_t)n;
        return 1;
    }
}

/* ::ffff:a.b.c.d back to a.b.c.d, for an IPv4 socket given a peer that was
 * seen through a dual-stack one (addr_to_v6mapped does the other way). */
static void mapped_to_v4(const struct sockaddr_in6 *in6, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = in6->sin6_port;
    memcpy(&out->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
}

/* The socket's family (the caller's, or looked up at most once) and
 * whether it takes UDP_SEGMENT (asked at most once, and only when a run of
 * equal datagrams could use it): io_send_on keeps both in the caller's
 * io_sockinfo, so a busy socket is asked once, not at every flush. */
struct send_family {
    int fd;
    int family;
    int gso; /* -1: not asked yet, 0: no, 1: yes */
};

static int sock_family(struct send_family *sf)
{
    if (sf->family == AF_UNSPEC)
        sf->family = io_family(sf->fd);
    return sf->family;
}

static int sock_gso(struct send_family *sf)
{
    if (sf->gso < 0) {
        int size;
        socklen_t len = sizeof size;

        sf->gso = getsockopt(sf->fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
    }
    return sf->gso;
}

/*
 * Points hdr at the slot's destination, in the form the socket's family
 * accepts; a converted address goes into *tmp, the slot stays untouched.
 */
static void set_dest(struct msghdr *hdr, const struct rpc2_addr *to, struct send_family *sf,
                     struct sockaddr_storage *tmp)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&to->ss;

    hdr->msg_name = (void *)&to->ss; /* the kernel only reads it */
    hdr->msg_namelen = to->len;
    if (to->ss.ss_family == AF_INET && sock_family(sf) == AF_INET6) {
        *tmp = to->ss;
        addr_to_v6mapped(tmp, &hdr->msg_namelen);
        hdr->msg_name = tmp;
    } else if (to->ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
               sock_family(sf) == AF_INET) {
        mapped_to_v4(in6, (struct sockaddr_in *)tmp);
        hdr->msg_name = tmp;
        hdr->msg_namelen = sizeof(struct sockaddr_in);
    }
}

/* The datagram at the head of a sendmmsg call failed with err: skip just
 * that one (1), give up on the rest (-1), or try it again (0). *retried
 * says whether it was tried again already. */
static int send_error_action(int err, int *retried)
{
    if (err == EINTR)
        return 0;
    /* The socket buffer or the device queue is full: whatever follows would
     * fail the same way, and retransmission will cover it. */
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
        return -1;
    /* An ICMP error about an earlier datagram (io_want_peer_errors) is
     * reported, once, by whichever call comes next: not this datagram's
     * fault, so it goes again, once (no route at all fails the same way). */
    if (is_peer_error(err) && !*retried) {
        *retried = 1;
        return 0;
    }
    /* Unreachable peer, too large, refused by a firewall, bad address:
     * a property of this datagram, not of the batch. */
    *retried = 0;
    return 1;
}

static int same_peer(const struct rpc2_addr *a, const struct rpc2_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* How many datagrams from slots[0] on (at most n) one segmented message can
 * carry: the same peer, the same size but for a shorter last one. */
static unsigned gso_run(const struct outq_slot *slots, unsigned n)
{
    size_t seg = slots[0].len, total = seg;
    unsigned k = 1;

    if (seg == 0 || seg * 2 > GSO_BYTES)
        return 1;
    while (k < n && k < GSO_SEGMENTS && total + slots[k].len <= GSO_BYTES &&
           same_peer(&slots[k].to, &slots[0].to) && slots[k].len > 0 && slots[k].len <= seg) {
        total += slots[k].len;
        if (slots[k++].len < seg)
            break; /* a shorter one ends the message */
    }
    return k;
}

/* One sendmmsg's worth: messages of one or more datagrams each. */
struct send_plan {
    struct mmsghdr msgs[IO_BATCH];
    struct iovec iov[IO_BATCH];
    struct sockaddr_storage tmp[IO_BATCH];
    unsigned first[IO_BATCH], count[IO_BATCH]; /* the slots each message carries */
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } control[IO_BATCH];
    unsigned n_msgs;
};

/* Plans slots[from..n) as messages, segmented where gso allows. */
static void plan(struct send_plan *p, const struct outq_slot *slots, unsigned from, unsigned n,
                 int gso, struct send_family *sf)
{
    p->n_msgs = 0;
    for (unsigned i = from; i < n; i++) {
        p->iov[i].iov_base = (void *)slots[i].data;
        p->iov[i].iov_len = slots[i].len;
    }
    for (unsigned i = from; i < n;) {
        unsigned m = p->n_msgs++, k = 1;
        struct msghdr *hdr = &p->msgs[m].msg_hdr;

        if (gso && n - i > 1 && (k = gso_run(slots + i, n - i)) > 1 && !sock_gso(sf))
            k = 1;
        memset(&p->msgs[m], 0, sizeof p->msgs[m]);
        hdr->msg_iov = &p->iov[i];
        hdr->msg_iovlen = k;
        set_dest(hdr, &slots[i].to, sf, &p->tmp[m]);
        if (k > 1) {
            uint16_t seg = (uint16_t)slots[i].len;
            struct cmsghdr *c;

            /* the padding after the segment size goes to the kernel too */
            memset(p->control[m].buf, 0, sizeof p->control[m].buf);
            hdr->msg_control = p->control[m].buf;
            hdr->msg_controllen = sizeof p->control[m].buf;
            c = CMSG_FIRSTHDR(hdr);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof seg);
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        p->first[m] = i;
        p->count[m] = k;
        i += k;
    }
}

/* Sends slots[0..n), n <= IO_BATCH, and counts in *n_sent those that went
 * out. Returns -1 when the socket cannot take more now, else 0. */
static int send_batch(int fd, const struct outq_slot *slots, unsigned n, struct send_family *sf,
                      unsigned *n_sent)
{
    struct send_plan p;
    unsigned done = 0; /* messages */
    int retried = 0;

    plan(&p, slots, 0, n, 1, sf);
    *n_sent = 0;
    while (done < p.n_msgs) {
        int r = sendmmsg(fd, p.msgs + done, p.n_msgs - done, 0);

        if (r > 0) {
            /* A partial send stops at the message that failed; the next
             * call reports its error. */
            for (unsigned m = done; m < done + (unsigned)r; m++)
                *n_sent += p.count[m];
            done += (unsigned)r;
            retried = 0;
            continue;
        }
        int err = r < 0 ? errno : EIO;

        /* A segmented message refused (no offload on this path, a segment
         * beyond the path's MTU): the rest go one by one. */
        if (p.count[done] > 1 && err != EINTR && err != EAGAIN && err != EWOULDBLOCK &&
            err != ENOBUFS && !is_peer_error(err)) {
            plan(&p, slots, p.first[done], n, 0, sf);
            done = 0;
            continue;
        }
        int action = send_error_action(err, &retried);

        if (action < 0)
            return -1;
        done += (unsigned)action;
    }
    return 0;
}

int io_send(int fd, int family, const struct outq_slot *slots, unsigned n)
{
    struct io_sockinfo si = {family, -1};

    return io_send_on(fd, &si, slots, n);
}

int io_send_on(int fd, struct io_sockinfo *si, const struct outq_slot *slots, unsigned n)
{
    struct send_family sf = {fd, si->family, si->gso};
    unsigned total = 0;

    for (unsigned i = 0; i < n; i += IO_BATCH) {
        unsigned chunk = n - i < IO_BATCH ? n - i : IO_BATCH;
        unsigned sent;
        int rc = send_batch(fd, slots + i, chunk, &sf, &sent);

        total += sent;
        if (rc < 0)
            break;
    }
    si->family = sf.family;
    si->gso = sf.gso;
    return (int)total;
}
