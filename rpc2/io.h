/*
 * io.h - the only code that touches sockets: opening the context's UDP
 * sockets, and moving datagrams in batches with recvmmsg and sendmmsg.
 */
#ifndef RPC2_IO_H
#define RPC2_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "outq.h"

#define IO_BATCH 32

/* Opens a nonblocking UDP socket bound to the address; an IPv6 wildcard is
 * made dual-stack (IPV6_V6ONLY off). Large socket buffers are requested,
 * the kernel's count of dropped datagrams (SO_RXQ_OVFL, see io_drops), and
 * received datagrams joined where the kernel can (UDP_GRO, see io_rx).
 * Returns the fd, or a negative rpc2 error (errno preserved). */
int io_open(const struct sockaddr_storage *ss, socklen_t len);
/* The family and port the socket is bound to. */
int io_local_port(int fd);
int io_family(int fd);

/* Room for the control messages io_recv asks for: the drop count and
 * UDP_GRO's segment size. */
#define IO_CMSG_SPACE 64
/* The most one received message can hold: a datagram, or with UDP_GRO a
 * run of them from one peer joined by the kernel (64 KiB at most). */
#define IO_RX_MAX 65536
/* Datagrams one io_recv can return: the kernel joins at most 64 a message. */
#define IO_DGRAMS_MAX (IO_BATCH * 64)

struct io_rx {
    unsigned count;                  /* messages received by the last io_recv */
    size_t buf_size;
    uint8_t *bufs[IO_BATCH];
    size_t lens[IO_BATCH];
    int truncated[IO_BATCH];          /* larger than buf_size: must be dropped */
    /* The datagrams the last io_recv returned, in order: a message the
     * kernel joined (UDP_GRO) is cut at its segment size, so callers see
     * datagrams only. from[msg] is where each came from. */
    struct io_dgram {
        uint8_t *data; /* the engine may decrypt in place */
        size_t len;
        int truncated; /* its message was larger than buf_size: drop it */
        unsigned msg;
    } dgrams[IO_DGRAMS_MAX];
    unsigned dgram_count;
    struct sockaddr_storage from[IO_BATCH];
    socklen_t fromlen[IO_BATCH];
    union {
        char buf[IO_CMSG_SPACE];
        struct cmsghdr align;
    } control[IO_BATCH];
};

/*
 * Datagrams the kernel dropped on one socket, mostly for a full receive
 * buffer. The kernel stamps each datagram it queues with its running count
 * of drops on that socket so far (SO_RXQ_OVFL); this keeps the last stamp
 * and adds up the differences, so drops are learnt when the next datagram
 * after them is read. One per socket, zeroed when the socket opens.
 */
struct io_drops {
    uint32_t last;  /* the kernel's count at the last datagram read */
    uint64_t total; /* drops learnt so far */
};

int io_rx_init(struct io_rx *rx, size_t buf_size);
void io_rx_dispose(struct io_rx *rx);
/* Receives up to IO_BATCH messages without blocking, each a datagram or a
 * run the kernel joined, and lists their datagrams in rx->dgrams. Returns
 * how many datagrams (0 when none are waiting), or a negative rpc2 error.
 * A truncated message is one datagram whose length is the bytes kept
 * (buf_size). Adds the socket's new drops to *drops (NULL: not counted). */
int io_recv(int fd, struct io_rx *rx, struct io_drops *drops);
/*
 * ICMP errors (port unreachable and the like) about datagrams a socket
 * sent: after io_want_peer_errors the kernel queues each with the address
 * the datagram went to and the start of that datagram as the ICMP quoted it
 * (what follows the UDP header; routers may quote nothing). Anyone on the
 * path can forge one, so what they mean is for the protocol to judge
 * against what it sent (rpc2/refused.c).
 */
#define IO_QUOTE_MAX 64

struct io_peer_error {
    int err;                    /* ECONNREFUSED, EHOSTUNREACH, ... */
    struct sockaddr_storage to; /* the datagram's destination */
    socklen_t tolen;
    uint8_t quoted[IO_QUOTE_MAX];
    size_t quoted_len;
};

/* IP_RECVERR (and IPV6_RECVERR): 0 or a negative rpc2 error. For a client's
 * socket only: a server has no use for its clients' ICMP errors. */
int io_want_peer_errors(int fd);
/* Reads the next queued ICMP error into *pe without blocking: 1, 0 when
 * none is queued, or a negative rpc2 error. Errors of other origins (the
 * kernel's own about sending) are read and skipped. */
int io_recv_peer_error(int fd, struct io_peer_error *pe);

/* Sends slots[0..n) whose to.sock all name this fd, with as few sendmmsg
 * calls as possible. family is the socket's (io_family), so addresses are
 * converted between IPv4 and IPv4-mapped IPv6 without a lookup per call;
 * AF_UNSPEC makes io_send look it up. A datagram the kernel refuses (unreachable peer, full
 * buffer) is dropped: UDP is lossy and the protocols retransmit. Returns the
 * number sent. */
int io_send(int fd, int family, const struct outq_slot *slots, unsigned n);

/* What io_send learns of a socket, for its owner to keep across calls:
 * the family (AF_UNSPEC: not known yet) and whether the kernel takes
 * UDP_SEGMENT on it (-1: not asked yet). */
struct io_sockinfo {
    int family;
    int gso;
};
/* io_send that learns and keeps what it needs of the socket in *si. */
int io_send_on(int fd, struct io_sockinfo *si, const struct outq_slot *slots, unsigned n);

#endif
