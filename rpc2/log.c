/*
 * log.c - formats a message and hands it to the application's callback,
 * only when someone listens at that level (formatting is not free).
 */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

void log_msg(const struct logger *l, enum rpc2_log_level level, const char *fmt, ...)
{
    if (!l || !l->fn || level > l->level)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    l->fn(level, text, l->arg);
}
