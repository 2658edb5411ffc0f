/*
 * bar.c - rcat's progress bar on a terminal: one line redrawn in place
 * (label, gauge, bytes, rate, ETA), and blanked before any message, so a
 * message never lands in the middle of a half-drawn bar. report.c decides
 * when; this draws.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "bar.h"

static int bar_visible; /* a bar line is on screen without its newline */

uint64_t bar_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static unsigned term_width(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col > 400 ? 400 : ws.ws_col;
    return 80;
}

/* A message must not be glued to a bar drawn without its newline. Blanks
 * rather than an escape sequence: any terminal understands them. */
void bar_clear(void)
{
    char blank[402];
    size_t n = term_width();

    if (!bar_visible)
        return;
    blank[0] = '\r';
    memset(blank + 1, ' ', n - 1);
    blank[n] = '\r';
    report_write_all(STDERR_FILENO, blank, n + 1);
    bar_visible = 0;
}

void bar_human_bytes(char *out, size_t cap, double v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t u = 0;

    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%.0f B", v);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}

void bar_clock_text(char *out, size_t cap, double seconds)
{
    uint64_t s = seconds < 0 ? 0 : seconds > 359999 ? 359999 : (uint64_t)(seconds + 0.5);

    if (s >= 3600)
        snprintf(out, cap, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
                 (unsigned)(s % 60));
    else
        snprintf(out, cap, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

/* "  45%  12.3 MiB  4.1 MiB/s  ETA 0:03", or without percent and ETA when
 * the size is unknown, or "in 0:03" once done. */
static unsigned percent(const struct report_xfer *x)
{
    return (unsigned)(x->bytes >= (uint64_t)x->size ? 100 : x->bytes * 100 / (uint64_t)x->size);
}

static void bar_stats(const struct report_xfer *x, int done, char *out, size_t cap)
{
    char got[32], rate[32], when[32];
    const char *word;
    double elapsed = (double)(bar_now_us() - x->start_us) / 1e6;
    double r = done && elapsed > 0 ? (double)x->bytes / elapsed : x->rate;

    bar_human_bytes(got, sizeof got, (double)x->bytes);
    bar_human_bytes(rate, sizeof rate, r);
    if (done)
        bar_clock_text(when, sizeof when, elapsed);
    else if (x->size >= 0 && r > 0)
        bar_clock_text(when, sizeof when, (double)((uint64_t)x->size - x->bytes) / r);
    else
        bar_clock_text(when, sizeof when, elapsed);
    word = done ? "in" : x->size >= 0 && r > 0 ? "ETA" : "  ";
    if (x->size > 0)
        snprintf(out, cap, " %3u%% %10s %10s/s %s %s", percent(x), got, rate, word, when);
    else
        snprintf(out, cap, " %10s %10s/s %s %s", got, rate, word, when);
}

/* The label, cut from the left so the end of a path stays visible. */
static void put_label(char *out, size_t *len, const char *label, size_t width)
{
    size_t n = strlen(label);

    if (n > width && width > 3) {
        memcpy(out + *len, "...", 3);
        memcpy(out + *len + 3, label + n - (width - 3), width - 3);
    } else {
        memcpy(out + *len, label, n < width ? n : width);
        memset(out + *len + (n < width ? n : width), ' ', n < width ? width - n : 0);
    }
    *len += width;
}

static void put_gauge(char *out, size_t *len, const struct report_xfer *x, size_t width)
{
    size_t full = x->size > 0 ? (size_t)((double)width * (double)x->bytes / (double)x->size) : 0;

    if (full > width)
        full = width;
    out[(*len)++] = ' ';
    out[(*len)++] = '[';
    memset(out + *len, '#', full);
    memset(out + *len + full, '-', width - full);
    *len += width;
    out[(*len)++] = ']';
}

void bar_draw(const struct report_xfer *x, int done)
{
    char stats[128], out[512];
    size_t width = term_width() - 1, len = 0, slen, avail, label_w, gauge_w = 0;

    bar_stats(x, done, stats, sizeof stats);
    slen = strlen(stats);
    avail = width > slen ? width - slen : 0;
    label_w = avail * 2 / 5 > 8 ? avail * 2 / 5 : avail;
    if (x->size > 0 && avail > label_w + 13)
        gauge_w = avail - label_w - 3 > 40 ? 40 : avail - label_w - 3;
    else
        label_w = avail;
    if (gauge_w)
        label_w = avail - gauge_w - 3;
    out[len++] = '\r';
    put_label(out, &len, x->label, label_w);
    if (gauge_w)
        put_gauge(out, &len, x, gauge_w);
    memcpy(out + len, stats, slen);
    len += slen;
    if (done)
        out[len++] = '\n';
    report_write_all(STDERR_FILENO, out, len);
    bar_visible = !done;
}

/* An exponential average of the rate between redraws: steadier than the
 * last interval alone, quicker to follow a change than the mean since start. */
void bar_update_rate(struct report_xfer *x, uint64_t now)
{
    double dt = (double)(now - x->last_us) / 1e6;
    double inst = dt > 0 ? (double)(x->bytes - x->last_bytes) / dt : 0;

    x->rate = x->rate > 0 ? 0.7 * x->rate + 0.3 * inst : inst;
    x->last_us = now;
    x->last_bytes = x->bytes;
}
