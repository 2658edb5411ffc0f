/*
 * logfile.h - rcatd's log: time-stamped lines appended to --log FILE (or
 * standard error), written whole by worker threads (call lines), the loop
 * thread (library messages, reloads) and main alike, and reopened on SIGHUP
 * so that the file can be rotated under a running server.
 */
#ifndef RCAT_LOGFILE_H
#define RCAT_LOGFILE_H

#include <pthread.h>
#include <stdio.h>

#include <rpc2/rpc2.h>

/* Embedded in its owner: logfile_open, then logfile_close. */
struct logfile {
    pthread_mutex_t lock;
    FILE *f;
    const char *path;
};

/* path NULL: standard error. 0, or -errno. */
int logfile_open(struct logfile *l, const char *path);
/* Log rotation: a new file at the same path; the old stream stays if that
 * fails, and the line that says so goes to it. */
void logfile_reopen(struct logfile *l);
void logfile_close(struct logfile *l);

void logfile_line(struct logfile *l, const char *line);
void logfile_printf(struct logfile *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Callbacks for the other parts, arg being the struct logfile: serve.h's
 * and partials.h's line, and the library's rpc2_log_fn. */
void logfile_from_serve(const char *line, void *arg);
void logfile_from_rpc2(enum rpc2_log_level level, const char *message, void *arg);

#endif
