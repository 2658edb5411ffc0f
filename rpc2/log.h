/*
 * log.h - the library's only way to say anything: a callback the
 * application sets, filtered by level. The library never prints.
 */
#ifndef RPC2_LOG_H
#define RPC2_LOG_H

#include <rpc2/rpc2.h>

struct logger {
    rpc2_log_fn fn; /* NULL: silent */
    void *arg;
    enum rpc2_log_level level;
};

void log_msg(const struct logger *l, enum rpc2_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
