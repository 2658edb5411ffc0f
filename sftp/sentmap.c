/*
 * sentmap.c - slots by seq, two intrusive queues, and a bounded buffer pool.
 *
 * The queues link slots by index rather than by pointer so the whole map
 * is one array that can be freed at once; a packet is on at most one queue,
 * and its `where` says which, so removal needs no search.
 */
#include "sentmap.h"

#include <stdlib.h>

static uint32_t slot_of(const struct sentmap *m, const struct sentmap_packet *p)
{
    return (uint32_t)(p - m->slots);
}

int sentmap_init(struct sentmap *m, uint32_t capacity, uint32_t buffer_size, uint32_t headroom,
                 uint32_t tailroom)
{
    uint32_t n = 1;

    if (capacity == 0 || capacity > (1u << 25) || headroom > 4096 || tailroom > 4096 ||
        buffer_size > UINT32_MAX - headroom - tailroom)
        return -1;
    while (n < capacity)
        n *= 2;
    m->slots = calloc(n, sizeof(*m->slots));
    /* Resends and probes can put more transmissions than packets in
     * flight: four times the slots keeps every one an ACK can name. */
    m->txs = calloc((size_t)n * 4, sizeof(*m->txs));
    if (m->slots == NULL || m->txs == NULL ||
        bufpool_init(&m->pool, capacity, headroom + buffer_size + tailroom) != 0) {
        free(m->slots);
        free(m->txs);
        m->slots = NULL;
        m->txs = NULL;
        return -1;
    }
    m->headroom = headroom;
    m->mask = n - 1;
    m->tx_mask = n * 4 - 1;
    m->flight = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
    m->worried = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
    return 0;
}

void sentmap_trim(struct sentmap *m)
{
    uint32_t i;

    if (m->slots == NULL)
        return;
    for (i = 0; i <= m->mask; i++) {
        if (m->slots[i].data == NULL)
            continue;
        sentmap_unpin(m, &m->slots[i]);
        bufpool_drop(&m->pool, m->slots[i].data - m->headroom);
        m->slots[i].data = NULL;
        m->slots[i].where = SENTMAP_FREE;
    }
    bufpool_trim(&m->pool);
    m->flight = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
    m->worried = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
}

void sentmap_dispose(struct sentmap *m)
{
    if (m->slots == NULL)
        return;
    sentmap_trim(m);
    bufpool_dispose(&m->pool);
    free(m->slots);
    free(m->txs);
    m->slots = NULL;
    m->txs = NULL;
}

struct sentmap_packet *sentmap_at(struct sentmap *m, uint32_t seq)
{
    return &m->slots[seq & m->mask];
}

/* ---- queues -------------------------------------------------------------- */

static struct sentmap_queue *queue_of(struct sentmap *m, const struct sentmap_packet *p)
{
    if (p->where == SENTMAP_FLIGHT)
        return &m->flight;
    if (p->where == SENTMAP_WORRIED)
        return &m->worried;
    return NULL;
}

static void queue_push(struct sentmap *m, struct sentmap_queue *q, struct sentmap_packet *p)
{
    uint32_t slot = slot_of(m, p);

    p->prev = q->tail;
    p->next = SENTMAP_NIL;
    if (q->tail != SENTMAP_NIL)
        m->slots[q->tail].next = slot;
    else
        q->head = slot;
    q->tail = slot;
    q->count++;
}

static void queue_unlink(struct sentmap *m, struct sentmap_packet *p)
{
    struct sentmap_queue *q = queue_of(m, p);

    if (q == NULL)
        return;
    if (p->prev != SENTMAP_NIL)
        m->slots[p->prev].next = p->next;
    else
        q->head = p->next;
    if (p->next != SENTMAP_NIL)
        m->slots[p->next].prev = p->prev;
    else
        q->tail = p->prev;
    q->count--;
    p->prev = p->next = SENTMAP_NIL;
}

struct sentmap_packet *sentmap_head(struct sentmap *m, const struct sentmap_queue *q)
{
    return q->head == SENTMAP_NIL ? NULL : &m->slots[q->head];
}

/* ---- packets ------------------------------------------------------------- */

struct sentmap_packet *sentmap_take(struct sentmap *m, uint32_t seq)
{
    struct sentmap_packet *p = sentmap_at(m, seq);
    uint8_t *data;

    if (p->where != SENTMAP_FREE)
        return NULL;
    data = bufpool_get(&m->pool);
    if (data == NULL)
        return NULL;
    *p = (struct sentmap_packet){
        .data = data + m->headroom,
        .seq = seq,
        .where = SENTMAP_READ,
        .prev = SENTMAP_NIL,
        .next = SENTMAP_NIL,
    };
    return p;
}

void sentmap_release(struct sentmap *m, struct sentmap_packet *p)
{
    if (p->where == SENTMAP_FREE)
        return;
    queue_unlink(m, p);
    sentmap_unpin(m, p);
    bufpool_put(&m->pool, p->data - m->headroom);
    p->data = NULL;
    p->where = SENTMAP_FREE;
}

void sentmap_unpin(struct sentmap *m, struct sentmap_packet *p)
{
    if (p->pin == 0)
        return;
    m->lender.unpin(m->lender.arg, p->pin);
    p->pin = 0;
}

struct sentmap_tx *sentmap_sent(struct sentmap *m, struct sentmap_packet *p, uint64_t now,
                                uint64_t tx)
{
    struct sentmap_tx *t = &m->txs[tx & m->tx_mask];

    queue_unlink(m, p);
    p->where = SENTMAP_FLIGHT;
    queue_push(m, &m->flight, p);
    p->sent_time = now;
    p->tx_order = tx;
    p->transmissions++;
    *t = (struct sentmap_tx){.tx = tx, .sent_time = now, .seq = p->seq};
    return t;
}

const struct sentmap_tx *sentmap_tx_find(const struct sentmap *m, uint64_t tx)
{
    const struct sentmap_tx *t;

    if (m->txs == NULL || tx == 0)
        return NULL;
    t = &m->txs[tx & m->tx_mask];
    return t->tx == tx ? t : NULL;
}

void sentmap_worry(struct sentmap *m, struct sentmap_packet *p)
{
    if (p->where != SENTMAP_FLIGHT)
        return;
    queue_unlink(m, p);
    p->where = SENTMAP_WORRIED;
    queue_push(m, &m->worried, p);
}
