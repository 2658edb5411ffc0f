/*
 * timerheap.c - the deadlines of every connection and transfer of a context,
 * so the loop needs one libev timer for the earliest of them, not thousands.
 *
 * Ties are broken by arming order rather than left to the heap's shape, so a
 * test under a fake clock sees the same firing order on every run.
 */
#include <stdlib.h>

#include <rpc2/rpc2.h>

#include "timerheap.h"

#define TIMERHEAP_FIRST_CAP 16

void timerheap_init(struct timerheap *h)
{
    h->items = NULL;
    h->len = 0;
    h->cap = 0;
    h->next_order = 0;
}

/* The timers are not touched: their owners may already be gone. */
void timerheap_dispose(struct timerheap *h)
{
    free(h->items);
    timerheap_init(h);
}

static int before(const struct timer *a, const struct timer *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->order < b->order;
}

static void place(struct timerheap *h, size_t i, struct timer *t)
{
    h->items[i] = t;
    t->index = i;
}

static void sift_up(struct timerheap *h, size_t i)
{
    struct timer *t = h->items[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!before(t, h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(struct timerheap *h, size_t i)
{
    struct timer *t = h->items[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(h->items[child + 1], h->items[child]))
            child++;
        if (!before(h->items[child], t))
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, t);
}

/* Restores the heap at i after its timer's key changed either way. */
static void resift(struct timerheap *h, size_t i)
{
    if (i > 0 && before(h->items[i], h->items[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

static int grow(struct timerheap *h)
{
    size_t cap = h->cap ? h->cap * 2 : TIMERHEAP_FIRST_CAP;
    struct timer **items;

    if (cap < h->cap || cap > SIZE_MAX / sizeof(*items))
        return RPC2_ENOMEM;
    items = realloc(h->items, cap * sizeof(*items));
    if (items == NULL)
        return RPC2_ENOMEM;
    h->items = items;
    h->cap = cap;
    return 0;
}

int timerheap_set(struct timerheap *h, struct timer *t, uint64_t deadline)
{
    if (!timer_armed(t) && h->len == h->cap) {
        int rc = grow(h);

        if (rc != 0)
            return rc;
    }
    t->deadline = deadline;
    t->order = h->next_order++;
    if (timer_armed(t)) {
        resift(h, t->index);
        return 0;
    }
    place(h, h->len++, t);
    sift_up(h, t->index);
    return 0;
}

void timerheap_cancel(struct timerheap *h, struct timer *t)
{
    if (!timer_armed(t))
        return;
    size_t i = t->index;
    struct timer *last = h->items[--h->len];

    t->index = TIMER_IDLE;
    if (last == t)
        return;
    place(h, i, last);
    resift(h, i);
}

uint64_t timerheap_next(const struct timerheap *h)
{
    return h->len ? h->items[0]->deadline : UINT64_MAX;
}

struct timer *timerheap_pop_expired(struct timerheap *h, uint64_t now)
{
    if (h->len == 0 || h->items[0]->deadline > now)
        return NULL;
    struct timer *t = h->items[0];

    timerheap_cancel(h, t);
    return t;
}
