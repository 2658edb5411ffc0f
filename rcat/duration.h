/*
 * duration.h - how long, as an operator writes it on rcat's and rcatd's
 * command lines: "30", "1.5", "90s", "5m", "2h", "1d". One parser for every
 * duration option of both tools, so they all read the same.
 */
#ifndef RCAT_DURATION_H
#define RCAT_DURATION_H

#include <stdint.h>

#define DURATION_US_PER_S 1000000ull

/*
 * A decimal number (digits, optionally a fraction: no sign, exponent or
 * spaces) and an optional unit: s (seconds, the default), m (minutes), h
 * (hours) or d (days). Into microseconds, rounded down. 0, or -1 for text
 * that is not a duration or one of more than DURATION_MAX_US.
 */
#define DURATION_MAX_US (100ull * 365 * 86400 * DURATION_US_PER_S) /* a century */
int duration_parse(const char *text, uint64_t *us);

/* "1.5 s", "5 min", "2 h": for messages; at least cap 32 bytes. */
void duration_format(uint64_t us, char *out, unsigned cap);

#endif
