/*
 * duration.c - durations on the command line. By hand rather than strtod,
 * which would take signs, spaces, hex, "inf" and exponents: a cron line
 * that says "--max-time 1e9" or "-5m" is a mistake to report, not a number.
 */
#include <stdio.h>

#include "duration.h"

static uint64_t unit_us(const char *u)
{
    if (u[0] && u[1])
        return 0;
    switch (u[0]) {
    case '\0':
    case 's':
        return DURATION_US_PER_S;
    case 'm':
        return 60 * DURATION_US_PER_S;
    case 'h':
        return 3600 * DURATION_US_PER_S;
    case 'd':
        return 86400 * DURATION_US_PER_S;
    }
    return 0;
}

int duration_parse(const char *text, uint64_t *us)
{
    const char *s = text;
    uint64_t whole = 0, frac_num = 0, frac_den = 1, unit;
    int digits = 0;

    if (!s)
        return -1;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        whole = whole * 10 + (uint64_t)(*s - '0');
        if (whole > DURATION_MAX_US / DURATION_US_PER_S)
            return -1;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            if (frac_den < DURATION_US_PER_S) { /* six digits: finer is not kept */
                frac_num = frac_num * 10 + (uint64_t)(*s - '0');
                frac_den *= 10;
            }
        }
    }
    unit = unit_us(s);
    if (!digits || !unit || whole > DURATION_MAX_US / unit)
        return -1;
    *us = whole * unit + frac_num * unit / frac_den;
    return *us > DURATION_MAX_US ? -1 : 0;
}

void duration_format(uint64_t us, char *out, unsigned cap)
{
    double s = (double)us / DURATION_US_PER_S;

    if (us >= 2 * 3600 * DURATION_US_PER_S && us % (3600 * DURATION_US_PER_S) == 0)
        snprintf(out, cap, "%.0f h", s / 3600);
    else if (us >= 2 * 60 * DURATION_US_PER_S && us % (60 * DURATION_US_PER_S) == 0)
        snprintf(out, cap, "%.0f min", s / 60);
    else
        snprintf(out, cap, "%.3g s", s);
}
