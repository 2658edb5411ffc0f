/*
 * ackmap.c - got-them-all plus a bitmap, kept as a ring of 64-bit words.
 *
 * Everything here works a word at a time (find-first-zero to slide, masks
 * to merge) because at 25,000 packets a second per transfer a bit-by-bit
 * loop over a 16,384-packet window would cost more than the data copy.
 */
#include "ackmap.h"

#include <stdlib.h>

#define WORD_BITS 64u
#define MAX_WINDOW (1u << 24)

static uint32_t ring_bits(const struct ackmap *m)
{
    return m->nwords * WORD_BITS;
}

static uint32_t bit_index(const struct ackmap *m, uint32_t seq)
{
    return seq & (ring_bits(m) - 1);
}

/* A mask of the n lowest bits, n in 0..64. */
static uint64_t low_bits(unsigned n)
{
    return n >= WORD_BITS ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

int ackmap_init(struct ackmap *m, uint32_t window)
{
    uint32_t nwords = 1;

    if (window == 0 || window > MAX_WINDOW)
        return -1;
    while (nwords * WORD_BITS < window)
        nwords *= 2;
    m->words = calloc(nwords, sizeof(*m->words));
    if (m->words == NULL)
        return -1;
    m->nwords = nwords;
    m->window = window;
    m->got_them_all = 0;
    m->highest = 0;
    m->held_beyond = 0;
    return 0;
}

void ackmap_dispose(struct ackmap *m)
{
    free(m->words);
    m->words = NULL;
}

/* ---- the ring ------------------------------------------------------------ */

static int test_bit(const struct ackmap *m, uint32_t seq)
{
    uint32_t i = bit_index(m, seq);

    return (int)(m->words[i / WORD_BITS] >> (i % WORD_BITS) & 1);
}

static void set_bit(struct ackmap *m, uint32_t seq)
{
    uint32_t i = bit_index(m, seq);

    m->words[i / WORD_BITS] |= (uint64_t)1 << (i % WORD_BITS);
}

/* The bits of seqs first .. first + 63 (bit j: seq first + j), across the
 * ring's wrap. With a one-word ring the "next" word is the same word. */
static uint64_t load64(const struct ackmap *m, uint32_t first)
{
    uint32_t i = bit_index(m, first);
    uint32_t w = i / WORD_BITS, b = i % WORD_BITS;
    uint64_t v = m->words[w] >> b;

    if (b != 0)
        v |= m->words[(w + 1) & (m->nwords - 1)] << (WORD_BITS - b);
    return v;
}

static void or64(struct ackmap *m, uint32_t first, uint64_t bits)
{
    uint32_t i = bit_index(m, first);
    uint32_t w = i / WORD_BITS, b = i % WORD_BITS;

    m->words[w] |= bits << b;
    if (b != 0)
        m->words[(w + 1) & (m->nwords - 1)] |= bits >> (WORD_BITS - b);
}

/* Clears the bits of seqs first .. first + n - 1 (n <= 64), within one word. */
static void clear_run(struct ackmap *m, uint32_t first, unsigned n)
{
    uint32_t i = bit_index(m, first);

    m->words[i / WORD_BITS] &= ~(low_bits(n) << (i % WORD_BITS));
}

/*
 * Moves got_them_all over the run of held seqs after it, clearing their
 * bits so the ring slots serve seqs a window later. Each bit is cleared
 * once, a word at a time: O(1) amortised per packet.
 */
static void slide(struct ackmap *m)
{
    for (;;) {
        uint32_t next = m->got_them_all + 1;
        uint32_t i = bit_index(m, next);
        unsigned b = i % WORD_BITS;
        uint64_t ahead = m->words[i / WORD_BITS] >> b;
        unsigned run = ~ahead == 0 ? WORD_BITS : (unsigned)__builtin_ctzll(~ahead);

        if (run > WORD_BITS - b)
            run = WORD_BITS - b;
        if (run == 0)
            break;
        clear_run(m, next, run);
        m->got_them_all += run;
        m->held_beyond -= run;
        if (b + run < WORD_BITS)
            break;
    }
    if (m->highest < m->got_them_all)
        m->highest = m->got_them_all;
}

/* ---- the sink's side ----------------------------------------------------- */

enum ackmap_add_result ackmap_add(struct ackmap *m, uint32_t seq)
{
    if (seq <= m->got_them_all)
        return ACKMAP_DUPLICATE;
    if (seq - m->got_them_all > m->window)
        return ACKMAP_BEYOND;
    if (test_bit(m, seq))
        return ACKMAP_DUPLICATE;
    set_bit(m, seq);
    m->held_beyond++;
    if (seq > m->highest)
        m->highest = seq;
    if (seq == m->got_them_all + 1)
        slide(m);
    return ACKMAP_NEW;
}

int ackmap_holds(const struct ackmap *m, uint32_t seq)
{
    if (seq <= m->got_them_all)
        return 1;
    if (seq - m->got_them_all > m->window)
        return 0;
    return test_bit(m, seq);
}

/* The bitmap's 64 bits from bit `first` on, the ones beyond highest masked
 * off (on a ring as small as the window they alias live slots). */
static uint64_t bitmap_chunk(const struct ackmap *m, uint32_t first_bit)
{
    uint32_t first = m->got_them_all + 2 + first_bit;

    if (first > m->highest)
        return 0;
    return load64(m, first) & low_bits(m->highest - first + 1);
}

static uint8_t bitmap_byte(const struct ackmap *m, uint32_t index)
{
    return (uint8_t)bitmap_chunk(m, index * 8);
}

uint32_t ackmap_bitmap_len(const struct ackmap *m, uint32_t max)
{
    uint32_t span, len;

    if (m->highest < m->got_them_all + 2)
        return 0;
    span = m->highest - m->got_them_all - 1; /* bits up to and including highest's */
    len = (span + 7) / 8;
    if (len <= max)
        return len; /* the last byte holds highest's bit: not zero */
    len = max;
    while (len > 0 && bitmap_byte(m, len - 1) == 0)
        len--;
    return len;
}

void ackmap_write_bitmap(const struct ackmap *m, uint8_t *out, uint32_t len)
{
    uint32_t i, k;

    for (i = 0; i < len; i += 8) {
        uint64_t v = bitmap_chunk(m, i * 8);

        for (k = 0; k < 8 && i + k < len; k++)
            out[i + k] = (uint8_t)(v >> (8 * k));
    }
}

/* ---- the source's side --------------------------------------------------- */

/* Bits first .. first + 63 of a byte bitmap, LSB first, zero past its end. */
static uint64_t bytes_load64(const uint8_t *bytes, uint32_t len, uint64_t first)
{
    uint64_t byte = first / 8, v = 0;
    unsigned shift = (unsigned)(first % 8), k;

    for (k = 0; k < 9 && byte + k < len; k++) {
        uint64_t b = bytes[byte + k];

        if (k < 8)
            v |= b << (8 * k) >> shift;
        else if (shift != 0)
            v |= b << (WORD_BITS - shift);
    }
    return v;
}

/* The highest seq an ACK claims, or its got_them_all if the bitmap is empty. */
static uint64_t claimed_highest(uint32_t got_them_all, const uint8_t *bitmap, uint32_t len)
{
    while (len > 0 && bitmap[len - 1] == 0)
        len--;
    if (len == 0)
        return got_them_all;
    return (uint64_t)got_them_all + 2 + (uint64_t)(len - 1) * 8 +
           (31u - (unsigned)__builtin_clz(bitmap[len - 1]));
}

/* Reports and forgets every seq up to `upto` the map had not marked held. */
static void advance_to(struct ackmap *m, uint32_t upto, ackmap_seq_fn newly_held, void *arg)
{
    while (m->got_them_all < upto) {
        uint32_t first = m->got_them_all + 1;
        uint32_t i = bit_index(m, first);
        unsigned b = i % WORD_BITS;
        unsigned n = WORD_BITS - b;
        uint64_t held, fresh;

        if (n > upto - m->got_them_all)
            n = upto - m->got_them_all;
        held = (m->words[i / WORD_BITS] >> b) & low_bits(n);
        for (fresh = ~held & low_bits(n); fresh != 0; fresh &= fresh - 1)
            newly_held(arg, first + (uint32_t)__builtin_ctzll(fresh));
        m->held_beyond -= (uint32_t)__builtin_popcountll(held);
        clear_run(m, first, n);
        m->got_them_all += n;
    }
    if (m->highest < m->got_them_all)
        m->highest = m->got_them_all;
}

static void merge_bitmap(struct ackmap *m, uint32_t base, const uint8_t *bitmap, uint32_t len,
                         ackmap_seq_fn newly_held, void *arg)
{
    uint64_t total = (uint64_t)len * 8;
    uint64_t off = 0;

    /* Bits at or below our own got_them_all tell nothing new. */
    if (m->got_them_all + 1 > base)
        off = m->got_them_all + 1 - base;
    for (; off < total; off += WORD_BITS) {
        uint32_t first = base + (uint32_t)off;
        uint64_t claim = bytes_load64(bitmap, len, off);
        uint64_t fresh;

        if (total - off < WORD_BITS)
            claim &= low_bits((unsigned)(total - off));
        fresh = claim & ~load64(m, first);
        if (fresh == 0)
            continue;
        or64(m, first, fresh);
        m->held_beyond += (uint32_t)__builtin_popcountll(fresh);
        for (; fresh != 0; fresh &= fresh - 1) {
            uint32_t seq = first + (uint32_t)__builtin_ctzll(fresh);

            if (seq > m->highest)
                m->highest = seq;
            newly_held(arg, seq);
        }
    }
}

int ackmap_merge(struct ackmap *m, uint32_t got_them_all, const uint8_t *bitmap,
                 uint32_t bitmap_len, ackmap_seq_fn newly_held, void *arg)
{
    uint32_t floor = got_them_all > m->got_them_all ? got_them_all : m->got_them_all;

    if ((uint64_t)got_them_all > (uint64_t)m->got_them_all + m->window)
        return -1;
    if (claimed_highest(got_them_all, bitmap, bitmap_len) > (uint64_t)floor + m->window)
        return -1;
    advance_to(m, got_them_all, newly_held, arg);
    merge_bitmap(m, got_them_all + 2, bitmap, bitmap_len, newly_held, arg);
    slide(m);
    return 0;
}
