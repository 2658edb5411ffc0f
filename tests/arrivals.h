/*
 * arrivals.h - the datagrams of a simulated network in the order they
 * arrive: a binary heap on arrival time, ties in the order they were sent,
 * so a run is the same every time. Shared by the in-memory simulations of
 * test_cc (ccsim.c) and test_sftp_machine, whose datagrams differ but
 * arrive the same way: each begins with a struct arrival.
 */
#ifndef TESTS_ARRIVALS_H
#define TESTS_ARRIVALS_H

#include <stddef.h>
#include <stdint.h>

struct arrival {
    uint64_t at;    /* when it arrives */
    uint64_t order; /* among those arriving at the same time: sent first, first */
};

struct arrivals {
    struct arrival **heap;
    size_t len, cap;
};

void arrivals_push(struct arrivals *q, struct arrival *a);
/* The earliest; the queue must not be empty. */
struct arrival *arrivals_pop(struct arrivals *q);
/* When the earliest arrives, or never (UINT64_MAX) when nothing is under way. */
uint64_t arrivals_next_at(const struct arrivals *q);
/* Frees the heap, not what is in it (pop it empty first). */
void arrivals_dispose(struct arrivals *q);

#endif
