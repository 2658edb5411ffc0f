/*
 * ackmap.h - which packets of a transfer a sink holds: got-them-all (every
 * seq up to it) plus a bitmap of what lies beyond, within a window.
 *
 * The sink keeps one to decide what is new, duplicate or beyond the window,
 * and writes its ACK bitmap straight from it. The source keeps one too: the
 * sink's holdings as ACKs have reported them, merged ACK by ACK, so it
 * learns which packets each ACK newly covers without rescanning what it
 * already knew.
 *
 * Cost: every seq's bit is set once and cleared once as got-them-all slides
 * past it, a word at a time, so adding and sliding are O(1) amortised per
 * packet; writing or merging a bitmap costs one word operation per 64 seqs
 * it spans. Sequence numbers are u32 and never wrap (transfers stay below
 * SFTP_MAX_SEQ packets, see wire.h); seq 0 names no packet.
 */
#ifndef RPC2_SFTP_ACKMAP_H
#define RPC2_SFTP_ACKMAP_H

#include <stdint.h>

struct ackmap {
    uint64_t *words; /* a ring of bits; the bit of seq s is s mod (64 * nwords) */
    uint32_t nwords; /* a power of two */
    uint32_t window; /* seqs in (got_them_all, got_them_all + window] can be held */
    uint32_t got_them_all;
    uint32_t highest;     /* highest seq held; got_them_all when none lies beyond it */
    uint32_t held_beyond; /* seqs held above got_them_all */
};

enum ackmap_add_result {
    ACKMAP_NEW = 0,
    ACKMAP_DUPLICATE = 1, /* held already (seq 0 counts as held) */
    ACKMAP_BEYOND = 2,    /* above got_them_all + window: not recorded */
};

/* window is 1 .. 2^24; returns 0, or -1 when out of memory. */
int ackmap_init(struct ackmap *m, uint32_t window);
void ackmap_dispose(struct ackmap *m);

enum ackmap_add_result ackmap_add(struct ackmap *m, uint32_t seq);
int ackmap_holds(const struct ackmap *m, uint32_t seq);

/* Bytes of ACK bitmap needed to describe the map, at most max: trailing zero
 * bytes are trimmed, also after cutting at max (bits beyond go unreported). */
uint32_t ackmap_bitmap_len(const struct ackmap *m, uint32_t max);
/* Writes len bytes of bitmap (bit i: seq got_them_all + 2 + i, LSB first). */
void ackmap_write_bitmap(const struct ackmap *m, uint8_t *out, uint32_t len);

/*
 * Folds in what an ACK reports (got_them_all and its bitmap, in the layout
 * above) and calls newly_held once for each seq the map did not hold yet.
 * Refuses (returns -1, changing nothing) an ACK naming a seq beyond the
 * window; a got_them_all below the map's own is fine (an older view).
 */
typedef void (*ackmap_seq_fn)(void *arg, uint32_t seq);
int ackmap_merge(struct ackmap *m, uint32_t got_them_all, const uint8_t *bitmap,
                 uint32_t bitmap_len, ackmap_seq_fn newly_held, void *arg);

#endif
