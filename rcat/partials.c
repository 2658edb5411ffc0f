/*
 * partials.c - removing the partial files of stores nobody resumed
 * (partials.h says why and how far it goes).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <fts.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "partials.h"

#define PART_SUFFIX ".rcat-part"
#define POINTS_SUFFIX ".rcat-part.rp"
#define SPLIT_INFIX ".rcat-split-"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n > k && s[0] == '.' && !strcmp(s + n - k, suffix);
}

/* ".NAME.rcat-split-XXXXXXXX", the temporary of a store in ranges
 * (serve_split.c): the running rcatd removes its own when their client is
 * gone; one older than max_age was left by an rcatd that did not stop. */
static int is_split_temp(const char *name)
{
    const char *infix = strstr(name, SPLIT_INFIX);

    if (name[0] != '.' || !infix)
        return 0;
    while (strstr(infix + 1, SPLIT_INFIX))
        infix = strstr(infix + 1, SPLIT_INFIX);
    const char *digits = infix + strlen(SPLIT_INFIX);
    return strlen(digits) == 8 && strspn(digits, "0123456789abcdef") == 8;
}

/* A partial a running store holds is locked: not stale, however old. */
static int in_use(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    int busy;

    if (fd < 0)
        return 1;
    busy = flock(fd, LOCK_EX | LOCK_NB) < 0;
    close(fd);
    return busy;
}

static void remove_stale(const FTSENT *e, time_t before, long *removed, partials_log_fn log,
                         void *arg)
{
    char line[512];

    if (e->fts_info != FTS_F || e->fts_statp->st_mtime >= before)
        return;
    int split = is_split_temp(e->fts_name);
    if (!split && !ends_with(e->fts_name, PART_SUFFIX) && !ends_with(e->fts_name, POINTS_SUFFIX))
        return;
    if ((split || ends_with(e->fts_name, PART_SUFFIX)) && in_use(e->fts_accpath))
        return;
    if (unlink(e->fts_accpath) != 0)
        return;
    (*removed)++;
    snprintf(line, sizeof line, "rcatd: removed the stale partial %s", e->fts_path);
    if (log)
        log(line, arg);
}

long partials_sweep(const char *root, uint64_t max_age_s, partials_log_fn log, void *arg)
{
    char *paths[] = {(char *)root, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, NULL);
    time_t before = time(NULL) - (time_t)max_age_s;
    long removed = 0;
    FTSENT *e;

    if (!fts)
        return -1;
    while ((e = fts_read(fts)) != NULL)
        remove_stale(e, before, &removed, log, arg);
    fts_close(fts);
    return removed;
}

struct partials {
    char *root;
    uint64_t max_age_s;
    partials_log_fn log;
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
};

static void *sweeper(void *arg)
{
    struct partials *p = arg;
    uint64_t every = p->max_age_s / 4;

    every = every < 60 ? 60 : every > 3600 ? 3600 : every;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        struct timespec until;

        pthread_mutex_unlock(&p->lock);
        partials_sweep(p->root, p->max_age_s, p->log, p->arg);
        pthread_mutex_lock(&p->lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)every;
        while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct partials *partials_start(const char *root, uint64_t max_age_s, partials_log_fn log,
                                void *arg)
{
    struct partials *p = calloc(1, sizeof *p);

    if (!p || !(p->root = strdup(root))) {
        free(p);
        return NULL;
    }
    p->max_age_s = max_age_s;
    p->log = log;
    p->arg = arg;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->thread, NULL, sweeper, p) != 0) {
        free(p->root);
        free(p);
        return NULL;
    }
    return p;
}

void partials_stop(struct partials *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->root);
    free(p);
}
