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

int sentmap_init(struct sentmap *m, uint32_t capacity, uint32_t buffer_size)
{
    uint32_t n = 1;

    if (capacity == 0 || capacity > (1u << 25))
        return -1;
    while (n < capacity)
        n *= 2;
    m->slots = calloc(n, sizeof(*m->slots));
    m->spare = calloc(capacity, sizeof(*m->spare));
    /* Resends and probes can put more transmissions than packets in
     * flight: four times the slots keeps every one an ACK can name. */
    m->txs = calloc((size_t)n * 4, sizeof(*m->txs));
    if (m->slots == NULL || m->spare == NULL || m->txs == NULL) {
        free(m->slots);
        free(m->spare);
        free(m->txs);
        return -1;
    }
    m->mask = n - 1;
    m->tx_mask = n * 4 - 1;
    m->flight = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
    m->worried = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
    m->spare_count = 0;
    m->buffers = 0;
    m->max_buffers = capacity;
    m->keep = capacity;
    m->buffer_size = buffer_size;
    return 0;
}

void sentmap_trim(struct sentmap *m)
{
    uint32_t i;

    if (m->slots == NULL)
        return;
    for (i = 0; i <= m->mask; i++) {
        free(m->slots[i].data);
        m->slots[i].data = NULL;
        m->slots[i].where = SENTMAP_FREE;
    }
    for (i = 0; i < m->spare_count; i++)
        free(m->spare[i]);
    m->spare_count = 0;
    m->buffers = 0;
    m->flight = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
    m->worried = (struct sentmap_queue){SENTMAP_NIL, SENTMAP_NIL, 0};
}

void sentmap_dispose(struct sentmap *m)
{
    if (m->slots == NULL)
        return;
    sentmap_trim(m);
    free(m->slots);
    free(m->spare);
    free(m->txs);
    m->slots = NULL;
    m->spare = NULL;
    m->txs = NULL;
}

struct sentmap_packet *sentmap_at(struct sentmap *m, uint32_t seq)
{
    return &m->slots[seq & m->mask];
}

/* ---- buffers ------------------------------------------------------------- */

static uint8_t *buffer_get(struct sentmap *m)
{
    if (m->spare_count > 0)
        return m->spare[--m->spare_count];
    if (m->buffers == m->max_buffers)
        return NULL;
    uint8_t *b = malloc(m->buffer_size > 0 ? m->buffer_size : 1);

    if (b != NULL)
        m->buffers++;
    return b;
}

/* The pool never holds more than max_buffers, so spare always has room. */
static void buffer_put(struct sentmap *m, uint8_t *b)
{
    if (m->buffers > m->keep) {
        free(b);
        m->buffers--;
        return;
    }
    m->spare[m->spare_count++] = b;
}

void sentmap_keep(struct sentmap *m, uint32_t buffers)
{
    m->keep = buffers < m->max_buffers ? buffers : m->max_buffers;
    while (m->buffers > m->keep && m->spare_count > 0) {
        free(m->spare[--m->spare_count]);
        m->buffers--;
    }
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
    data = buffer_get(m);
    if (data == NULL)
        return NULL;
    *p = (struct sentmap_packet){
        .data = data,
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
    buffer_put(m, p->data);
    p->data = NULL;
    p->where = SENTMAP_FREE;
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
