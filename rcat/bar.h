/*
 * bar.h - the progress bar (bar.c), drawn on standard error for report.c.
 */
#ifndef RCAT_BAR_H
#define RCAT_BAR_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"

uint64_t bar_now_us(void); /* the monotonic clock, in microseconds */
/* Draws x's bar in place; done: its last drawing, with a newline. */
void bar_draw(const struct report_xfer *x, int done);
/* Blanks a bar left without its newline, so a message can follow. */
void bar_clear(void);
/* x's rate, averaged exponentially over the redraws. */
void bar_update_rate(struct report_xfer *x, uint64_t now);
void bar_human_bytes(char *out, size_t cap, double v);
void bar_clock_text(char *out, size_t cap, double seconds);

#endif
