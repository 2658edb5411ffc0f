/*
 * outq.h - the batch of datagrams the protocol machines produce and the
 * I/O layer sends with one sendmmsg per socket. Machines encode straight
 * into a slot's buffer; when the batch is full it is flushed through the
 * callback first, so a machine never has to know how sending is done (the
 * real driver calls sendmmsg, tests move the packets over a fake link).
 *
 * A datagram may also be lent: the sender keeps it in its own memory (the
 * SFTP source's packet buffers hold a whole datagram around each packet's
 * data, so bulk data is never copied on its way to the kernel). A lent
 * datagram must stay unchanged until it has been flushed: outq_lend
 * returns a pin, and outq_unpin flushes while that pin is still queued.
 */
#ifndef RPC2_OUTQ_H
#define RPC2_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define OUTQ_SLOTS 64

struct outq_slot {
    struct rpc2_addr to;
    size_t len;
    const uint8_t *data; /* the datagram: buf, or the memory it was lent */
    uint8_t *buf;        /* buf_size bytes, allocated on first use */
};

struct outq;
typedef void (*outq_flush_fn)(struct outq *q, void *arg);

struct outq {
    struct outq_slot slots[OUTQ_SLOTS];
    unsigned count;
    size_t buf_size;
    uint64_t flushes; /* batches handed to the callback: pins are taken from it */
    outq_flush_fn flush;
    void *flush_arg;
};

void outq_init(struct outq *q, size_t buf_size, outq_flush_fn flush, void *flush_arg);
void outq_dispose(struct outq *q);
/* A buffer of q->buf_size bytes for the next datagram; NULL on ENOMEM.
 * Flushes first when every slot is taken. */
uint8_t *outq_reserve(struct outq *q);
/* Queues the datagram written into the buffer outq_reserve returned. */
void outq_commit(struct outq *q, const struct rpc2_addr *to, size_t len);
/* Queues len bytes at datagram, which the caller keeps unchanged until the
 * pin returned has been let go (outq_unpin). */
uint64_t outq_lend(struct outq *q, const struct rpc2_addr *to, const uint8_t *datagram, size_t len);
/* Makes sure a datagram lent under pin is no longer read: flushes the
 * batch it is queued in, if that has not gone out yet. */
void outq_unpin(struct outq *q, uint64_t pin);
/* Hands everything queued to the flush callback, which must empty it. */
void outq_flush(struct outq *q);
/* Forgets everything queued, as a full socket buffer would drop it: every
 * pin is let go. */
void outq_drop(struct outq *q);

#endif
