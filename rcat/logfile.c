/*
 * logfile.c - rcatd's log: one mutex keeps each line whole whatever thread
 * writes it, and a line is flushed at once, so a crash loses none.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "logfile.h"

void logfile_line(struct logfile *l, const char *line)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);

    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    pthread_mutex_lock(&l->lock);
    /* several lines at once (a batch's files): each stamped, one flush */
    for (const char *end; (end = strchr(line, '\n')) != NULL; line = end + 1)
        fprintf(l->f, "%s %.*s\n", stamp, (int)(end - line), line);
    fprintf(l->f, "%s %s\n", stamp, line);
    fflush(l->f);
    pthread_mutex_unlock(&l->lock);
}

void logfile_printf(struct logfile *l, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    logfile_line(l, line);
}

void logfile_from_serve(const char *line, void *arg)
{
    logfile_line(arg, line);
}

void logfile_from_rpc2(enum rpc2_log_level level, const char *message, void *arg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};

    logfile_printf(arg, "rpc2 %s: %s", names[level <= RPC2_LOG_DEBUG ? level : RPC2_LOG_DEBUG],
                   message);
}

int logfile_open(struct logfile *l, const char *path)
{
    pthread_mutex_init(&l->lock, NULL);
    l->path = path;
    l->f = path ? fopen(path, "ae") : stderr;
    return l->f ? 0 : -errno;
}

void logfile_reopen(struct logfile *l)
{
    FILE *f, *old;

    if (!l->path)
        return;
    f = fopen(l->path, "ae");
    if (!f) {
        logfile_printf(l, "rcatd: cannot reopen %s: %s; still writing to the old file", l->path,
                       strerror(errno));
        return;
    }
    pthread_mutex_lock(&l->lock);
    old = l->f;
    l->f = f;
    pthread_mutex_unlock(&l->lock);
    fclose(old);
    logfile_printf(l, "rcatd: log reopened");
}

void logfile_close(struct logfile *l)
{
    if (l->f && l->f != stderr)
        fclose(l->f);
    l->f = NULL;
    pthread_mutex_destroy(&l->lock);
}
