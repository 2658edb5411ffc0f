/*
 * arrivals.c - a binary heap of datagrams on (arrival time, send order)
 * (arrivals.h).
 */
#include "arrivals.h"

#include <check.h>
#include <stdlib.h>

static int earlier(const struct arrival *a, const struct arrival *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void swap(struct arrivals *q, size_t i, size_t j)
{
    struct arrival *t = q->heap[i];

    q->heap[i] = q->heap[j];
    q->heap[j] = t;
}

void arrivals_push(struct arrivals *q, struct arrival *a)
{
    size_t i;

    if (q->len == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 256;
        q->heap = realloc(q->heap, q->cap * sizeof(*q->heap));
        ck_assert_ptr_nonnull(q->heap);
    }
    i = q->len++;
    q->heap[i] = a;
    while (i > 0 && earlier(q->heap[i], q->heap[(i - 1) / 2])) {
        swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

struct arrival *arrivals_pop(struct arrivals *q)
{
    struct arrival *top = q->heap[0];
    size_t i = 0;

    q->heap[0] = q->heap[--q->len];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < q->len && earlier(q->heap[l], q->heap[m]))
            m = l;
        if (r < q->len && earlier(q->heap[r], q->heap[m]))
            m = r;
        if (m == i)
            return top;
        swap(q, i, m);
        i = m;
    }
}

uint64_t arrivals_next_at(const struct arrivals *q)
{
    return q->len > 0 ? q->heap[0]->at : UINT64_MAX;
}

void arrivals_dispose(struct arrivals *q)
{
    free(q->heap);
    q->heap = NULL;
    q->len = q->cap = 0;
}
