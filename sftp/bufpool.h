/*
 * bufpool.h - packet buffers for one machine: allocated on first use,
 * reused once given back, never more than the window at once, and handed
 * back to the allocator when the context's memory cap lends the machine
 * fewer (memshare.h). The source's sent map and the in-order sink's
 * reorder ring both draw from one.
 */
#ifndef RPC2_SFTP_BUFPOOL_H
#define RPC2_SFTP_BUFPOOL_H

#include <stdint.h>

struct bufpool {
    uint8_t **spare; /* buffers given back, ready for reuse */
    uint32_t spare_count;
    uint32_t buffers; /* allocated: in use plus spare */
    uint32_t max;     /* buffers at most */
    uint32_t keep;    /* buffers past this go back to the allocator, not to spare */
    uint32_t size;    /* bytes each */
};

/* 0, or -1 when out of memory. */
int bufpool_init(struct bufpool *p, uint32_t max, uint32_t size);
/* Frees the spares; buffers in use are the caller's to drop first. */
void bufpool_dispose(struct bufpool *p);
/* Whether a get would find neither a spare nor room for a new one. */
int bufpool_full(const struct bufpool *p);
/* A buffer of size bytes; NULL when full or out of memory. */
uint8_t *bufpool_get(struct bufpool *p);
/* Gives a buffer back: kept for reuse, or freed while past keep. */
void bufpool_put(struct bufpool *p, uint8_t *b);
/* Frees a buffer in use for good (the transfer has ended). */
void bufpool_drop(struct bufpool *p, uint8_t *b);
/* Keeps at most n buffers (capped at max): spares past it go now, and
 * buffers given back later while more are allocated. */
void bufpool_keep(struct bufpool *p, uint32_t n);
/* Frees every spare. */
void bufpool_trim(struct bufpool *p);

#endif
