/*
 * outq.c - the outgoing batch. It exists so a protocol machine can encode
 * a datagram in place without knowing whether it will go out through
 * sendmmsg or through a test's fake link, and so sending is batched by
 * construction: nothing leaves until the batch fills or the loop flushes.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

void outq_init(struct outq *q, size_t buf_size, outq_flush_fn flush, void *flush_arg)
{
    memset(q, 0, sizeof *q);
    q->buf_size = buf_size;
    q->flush = flush;
    q->flush_arg = flush_arg;
}

void outq_drop(struct outq *q)
{
    q->count = 0;
    q->flushes++;
}

/* Whatever is still queued is dropped, as a full socket buffer would. */
void outq_dispose(struct outq *q)
{
    outq_drop(q);
    for (unsigned i = 0; i < OUTQ_SLOTS; i++) {
        free(q->slots[i].buf);
        q->slots[i].buf = NULL;
    }
}

uint8_t *outq_reserve(struct outq *q)
{
    if (q->count == OUTQ_SLOTS)
        outq_flush(q);
    struct outq_slot *s = &q->slots[q->count];

    /* Buffers are allocated on first use and then reused for every later
     * batch, so a quiet context costs no packet memory and a busy one does
     * no allocation per datagram. */
    if (!s->buf)
        s->buf = malloc(q->buf_size);
    return s->buf;
}

void outq_commit(struct outq *q, const struct rpc2_addr *to, size_t len)
{
    assert(q->count < OUTQ_SLOTS);
    struct outq_slot *s = &q->slots[q->count];

    assert(s->buf && len <= q->buf_size);
    s->to = *to;
    s->len = len;
    s->data = s->buf;
    q->count++;
}

uint64_t outq_lend(struct outq *q, const struct rpc2_addr *to, const uint8_t *datagram, size_t len)
{
    if (q->count == OUTQ_SLOTS)
        outq_flush(q);
    struct outq_slot *s = &q->slots[q->count++];

    s->to = *to;
    s->len = len;
    s->data = datagram;
    /* The slot's own buffer, if any, stays for later copies. */
    return q->flushes + 1;
}

void outq_unpin(struct outq *q, uint64_t pin)
{
    if (pin == q->flushes + 1)
        outq_flush(q);
}

void outq_flush(struct outq *q)
{
    if (q->count == 0)
        return;
    assert(q->flush);
    q->flush(q, q->flush_arg);
    q->flushes++;
    /* A callback that left datagrams behind would make reserve overrun the
     * slots, or resend them on the next flush. */
    assert(q->count == 0);
}
