/*
 * timerheap.h - a binary min-heap of deadlines, one intrusive timer per
 * owner (connection, transfer). Equal deadlines fire in the order they
 * were set, so runs are deterministic under a fake clock.
 */
#ifndef RPC2_TIMERHEAP_H
#define RPC2_TIMERHEAP_H

#include <stddef.h>
#include <stdint.h>

struct timer {
    uint64_t deadline; /* microseconds, the caller's clock */
    uint64_t order;    /* ties broken by arming order */
    size_t index;      /* position in the heap; TIMER_IDLE when not armed */
};
#define TIMER_IDLE ((size_t)-1)

struct timerheap {
    struct timer **items;
    size_t len, cap;
    uint64_t next_order;
};

static inline void timer_init(struct timer *t)
{
    t->index = TIMER_IDLE;
}
static inline int timer_armed(const struct timer *t)
{
    return t->index != TIMER_IDLE;
}

void timerheap_init(struct timerheap *h);
void timerheap_dispose(struct timerheap *h);
/* Arms t, or moves it if armed. Returns 0 or RPC2_ENOMEM. */
int timerheap_set(struct timerheap *h, struct timer *t, uint64_t deadline);
/* Disarms t; harmless if not armed. */
void timerheap_cancel(struct timerheap *h, struct timer *t);
/* The earliest deadline, UINT64_MAX when empty. */
uint64_t timerheap_next(const struct timerheap *h);
/* Removes and returns one timer whose deadline is <= now, or NULL. */
struct timer *timerheap_pop_expired(struct timerheap *h, uint64_t now);

#endif
