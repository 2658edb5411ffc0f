/*
 * sentmap.h - the source's record of the packets it has read and not yet
 * seen acknowledged: their bytes (a pipe cannot be read twice, so a packet
 * stays here until the sink holds it), when and in what order each was
 * last sent, and two queues that make every per-packet decision O(1):
 *
 *   flight   sent and unacknowledged, oldest transmission first: the head
 *            is the next to time out, and a packet sent well before one
 *            the sink already holds is found at the head too;
 *   worried  judged lost (timed out, or overtaken), to be sent again
 *            before any new data, oldest first.
 *
 * Every transmission (a first send or a resend) gets the next transmission
 * number, and a ring indexed by it keeps what the source knew when it
 * sent: so an ACK naming a transmission tells when exactly that send left
 * and how much had been delivered by then, even when the packet has been
 * resent since (a resend is a new transmission and never rewrites the
 * record of the one before it).
 *
 * A packet's buffer may have room around its data (sentmap_init's
 * headroom and tailroom) for a link to build the datagram in place, and
 * may then be pinned by the link (sftp_link.lend): the map lets go of a
 * pinned buffer only after its lender's unpin.
 *
 * Slots are indexed by seq, so a packet is found from its seq in O(1).
 * Buffers come from a pool that never holds more than the capacity given
 * at init, allocated on first use: a small transfer with a large window
 * allocates little, and nothing is allocated per packet once warm.
 */
#ifndef RPC2_SFTP_SENTMAP_H
#define RPC2_SFTP_SENTMAP_H

#include <stdint.h>

#include "bufpool.h"

enum sentmap_where {
    SENTMAP_FREE = 0,
    SENTMAP_READ,    /* read, never sent */
    SENTMAP_FLIGHT,  /* on the flight queue */
    SENTMAP_WORRIED, /* on the worried queue */
};

struct sentmap_packet {
    uint8_t *data; /* buffer_size bytes while the slot is in use */
    uint64_t pin;  /* the link may still read the buffer (0: it does not) */
    uint32_t len;
    uint32_t seq;
    uint8_t where; /* enum sentmap_where */
    uint8_t last;  /* the stream's last packet */
    uint8_t app_limited;
    uint32_t transmissions;
    uint32_t prev, next; /* neighbours on its queue, as slot indices */
    uint64_t sent_time;  /* of the latest transmission */
    uint64_t tx_order;   /* the latest transmission's number */
};

/* One transmission: what the rate sampler and the RTT need of it later. */
struct sentmap_tx {
    uint64_t tx; /* 0: an empty record */
    uint64_t sent_time;
    uint64_t delivered, delivered_time, first_sent_time; /* the sampler's snapshot */
    uint32_t seq;
    uint8_t app_limited;
};

struct sentmap_queue {
    uint32_t head, tail; /* slot indices, SENTMAP_NIL when empty */
    uint32_t count;
};

#define SENTMAP_NIL UINT32_MAX

/* Who may hold a packet's buffer after it was sent (sftp_link's unpin). */
struct sentmap_lender {
    void (*unpin)(void *arg, uint64_t pin);
    void *arg;
};

struct sentmap {
    struct sentmap_packet *slots;
    struct sentmap_lender lender;
    uint32_t headroom; /* bytes of each buffer before a packet's data */
    uint32_t mask;     /* slots - 1; slots is a power of two >= capacity */
    struct sentmap_queue flight, worried;
    struct bufpool pool;    /* the packets' buffers, at most capacity */
    struct sentmap_tx *txs; /* ring by transmission number */
    uint32_t tx_mask;
};

/* Room for capacity consecutive seqs in use at once, buffer_size bytes each,
 * with headroom bytes before each packet's data and tailroom after it.
 * Returns 0, or -1 when out of memory. */
int sentmap_init(struct sentmap *m, uint32_t capacity, uint32_t buffer_size, uint32_t headroom,
                 uint32_t tailroom);
/* Makes sure nobody reads p's buffer any more (it is to change or go). */
void sentmap_unpin(struct sentmap *m, struct sentmap_packet *p);
void sentmap_dispose(struct sentmap *m);
/* A map lent less memory gives it back: bufpool_keep(&m->pool, n). */

struct sentmap_packet *sentmap_at(struct sentmap *m, uint32_t seq);
/* Claims seq's (free) slot with a buffer; NULL when out of memory. */
struct sentmap_packet *sentmap_take(struct sentmap *m, uint32_t seq);
/* Frees the slot (acknowledged, or read ahead and never a packet). */
void sentmap_release(struct sentmap *m, struct sentmap_packet *p);
/* Gives every buffer back to the system (the transfer has ended). */
void sentmap_trim(struct sentmap *m);

/* Records transmission tx of p: the packet moves to the tail of the flight
 * queue; returns the transmission's record for the caller to fill in. */
struct sentmap_tx *sentmap_sent(struct sentmap *m, struct sentmap_packet *p, uint64_t now,
                                uint64_t tx);
/* Transmission tx's record, or NULL when the ring has forgotten it. */
const struct sentmap_tx *sentmap_tx_find(const struct sentmap *m, uint64_t tx);
/* Moves a packet in flight to the tail of the worried queue. */
void sentmap_worry(struct sentmap *m, struct sentmap_packet *p);
/* The head of a queue, or NULL. */
struct sentmap_packet *sentmap_head(struct sentmap *m, const struct sentmap_queue *q);

#endif
