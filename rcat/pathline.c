/*
 * pathline.c - rcat -v's line per second (pathline.h). The goodput is the
 * file's bytes over the second just past, not the library's pace: a user
 * asks what arrived, and the pace is what the sender aimed at.
 */
#include <inttypes.h>
#include <stdio.h>

#include "bar.h"
#include "pathline.h"

int pathline_format(struct pathline *p, const char *file, const struct rpc2_event *ev,
                    uint64_t now, char *out, size_t cap)
{
    char moved[32], resent[32], min_rtt[32] = "";
    uint64_t bytes = ev->file_bytes, span = now - p->last_us;

    if (p->last_us == 0 || bytes < p->last_bytes) {
        p->last_us = now;
        p->last_bytes = bytes;
        return 0;
    }
    if (span < PATHLINE_EVERY_US)
        return 0;
    bar_human_bytes(moved, sizeof moved, (double)bytes);
    bar_human_bytes(resent, sizeof resent, (double)ev->bytes_retransmitted);
    if (ev->min_delay_us)
        snprintf(min_rtt, sizeof min_rtt, " (min %.0f ms)", ev->min_delay_us / 1e3);
    /* a LAN's RTT is a fraction of a millisecond: one decimal below 10 */
    snprintf(out, cap, "%s: %.1f Mbit/s, %s moved, RTT %.*f ms%s, loss %.2f %%, %s resent", file,
             (double)(bytes - p->last_bytes) * 8 / (double)span, moved, ev->delay_us < 10000 ? 1 : 0,
             ev->delay_us / 1e3, min_rtt, ev->loss_bp / 100.0, resent);
    p->last_us = now;
    p->last_bytes = bytes;
    return 1;
}
