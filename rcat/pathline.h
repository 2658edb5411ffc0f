/*
 * pathline.h - rcat -v's line per second while a file moves: what moved in
 * that second and what the path looked like (the figures --json's STATS
 * carries as Rate, Delay, MinDelay, Loss and RetransmittedBytes), for an
 * operator watching a slow transfer from a terminal or a log.
 */
#ifndef RCAT_PATHLINE_H
#define RCAT_PATHLINE_H

#include <rpc2/event.h>
#include <stddef.h>
#include <stdint.h>

#define PATHLINE_EVERY_US 1000000u

struct pathline {
    uint64_t last_us, last_bytes; /* the previous line's; last_us 0: none yet */
};

/* The line for ev (a STATS) seen at now, into out; 0 when less than
 * PATHLINE_EVERY_US passed since the previous one (nothing written). The
 * first call only starts the clock. */
int pathline_format(struct pathline *p, const char *file, const struct rpc2_event *ev,
                    uint64_t now, char *out, size_t cap);

#endif
