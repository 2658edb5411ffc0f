/*
 * serve_split.c - rcatd's side of a file stored in ranges (rcat --put
 * --split) as one store: SPLIT_BEGIN makes the hidden temporary the ranges
 * go into, SPLIT_END renames it into place and runs the post-store command
 * for the final name (rcat_proto.x). The server makes the temporary itself
 * so that no empty STORE runs a command for it, and keeps a table of the
 * ones it made: a call on one (STORE_RANGE, SUM) holds it, and one no call
 * has held for the idle bound (rcatd --split-idle) belonged to a client
 * that is gone (killed, its host down): a thread removes it. A held one
 * is never removed, however long its range takes. The table dies with the
 * process; partials.c's walk removes what a previous rcatd left.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "access.h"
#include "root_edit.h"
#include "serve_impl.h"

#define TEMP_INFIX ".rcat-split-"
#define TEMP_RANDOM 8        /* hex digits after the infix */
#define SPLIT_TEMPS_MAX 1024 /* temporaries at once, of all clients */

struct split_temp {
    dev_t dev;
    ino_t ino;
    int dirfd; /* its directory (O_PATH) */
    char name[NAME_MAX + 1];
    unsigned holds;     /* calls on it now */
    struct timespec at; /* when the last one ended (CLOCK_MONOTONIC) */
    int sum_type;       /* the last SUM of the whole, while no range wrote since; 0: none */
    unsigned sum_len;
    uint64_t sum_bytes;
    unsigned char sum[RPC2_SE_SUM_MAX];
};

struct serve_splits {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int stop;
    struct split_temp *v;
    size_t n, cap;
    uint64_t idle_us;
    serve_log_fn log;
    void *log_arg;
};

static double seconds_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The entry for st's file, or NULL; under the lock. */
static struct split_temp *find(struct serve_splits *t, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].dev == dev && t->v[i].ino == ino)
            return &t->v[i];
    return NULL;
}

static void drop(struct serve_splits *t, struct split_temp *e)
{
    close(e->dirfd);
    *e = t->v[--t->n];
}

/* Unlinks e's file if it is still the one made (a rename may have put
 * another there); under the lock. */
static void remove_file(struct serve_splits *t, struct split_temp *e, const char *why)
{
    struct stat st;
    char line[NAME_MAX + 128];

    if (fstatat(e->dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != e->dev ||
        st.st_ino != e->ino || unlinkat(e->dirfd, e->name, 0) != 0)
        return;
    snprintf(line, sizeof line, "rcatd: removed the split temporary %s: %s", e->name, why);
    if (t->log)
        t->log(line, t->log_arg);
}

static void sweep(struct serve_splits *t)
{
    double idle = (double)t->idle_us / 1e6;

    for (size_t i = 0; i < t->n;) {
        struct split_temp *e = &t->v[i];
        if (e->holds || seconds_since(&e->at) < idle) {
            i++;
            continue;
        }
        remove_file(t, e, "no call on it for --split-idle, its client is gone");
        drop(t, e);
    }
}

/* Often enough that a temporary goes within 1.25 idle bounds. */
static void *sweeper(void *arg)
{
    struct serve_splits *t = arg;
    uint64_t every = t->idle_us / 4 > 60000000u ? 60000000u : t->idle_us / 4;

    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(every / 1000000u);
        until.tv_nsec += (long)(every % 1000000u) * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->wake, &t->lock, &until);
        sweep(t);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int serve_splits_new(uint64_t idle_us, serve_log_fn log, void *log_arg, struct serve_splits **out)
{
    struct serve_splits *t = calloc(1, sizeof *t);
    pthread_condattr_t ca;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->idle_us = idle_us ? idle_us : SERVE_SPLIT_IDLE_DEFAULT_US;
    t->log = log;
    t->log_arg = log_arg;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&t->thread, NULL, sweeper, t);
    if (rc != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return -rc;
    }
    *out = t;
    return 0;
}

/* No call runs any more: every temporary left is one whose client will
 * never end it (a new rcatd would refuse its SPLIT_END anyway). */
void serve_splits_free(struct serve_splits *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = 1;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    while (t->n) {
        remove_file(t, &t->v[0], "rcatd stops");
        drop(t, &t->v[0]);
    }
    free(t->v);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void serve_split_hold(struct serve *s, struct call *c, const struct stat *st, int writes)
{
    struct serve_splits *t = s->splits;

    pthread_mutex_lock(&t->lock);
    struct split_temp *e = find(t, st->st_dev, st->st_ino);
    if (e && !c->split_held) {
        e->holds++;
        if (writes)
            e->sum_type = 0;
        c->split_held = 1;
        c->split_dev = st->st_dev;
        c->split_ino = st->st_ino;
    }
    pthread_mutex_unlock(&t->lock);
}

void serve_split_release(struct serve *s, struct call *c)
{
    struct serve_splits *t = s->splits;

    if (!c->split_held)
        return;
    pthread_mutex_lock(&t->lock);
    struct split_temp *e = find(t, c->split_dev, c->split_ino);
    if (e) {
        e->holds--;
        clock_gettime(CLOCK_MONOTONIC, &e->at);
    }
    pthread_mutex_unlock(&t->lock);
    c->split_held = 0;
}

void serve_split_note_sum(struct serve *s, const struct call *c, int type, const unsigned char *sum,
                          unsigned len, uint64_t bytes)
{
    struct serve_splits *t = s->splits;

    if (!c->split_held || len > RPC2_SE_SUM_MAX)
        return;
    pthread_mutex_lock(&t->lock);
    struct split_temp *e = find(t, c->split_dev, c->split_ino);
    if (e && e->holds == 1) { /* no range wrote while it summed */
        e->sum_type = type;
        e->sum_len = len;
        e->sum_bytes = bytes;
        memcpy(e->sum, sum, len);
    }
    pthread_mutex_unlock(&t->lock);
}

/* ---- SPLIT_BEGIN ----------------------------------------------------------- */

struct split_begin_req {
    split_begin_args a;
    u_int path_len;
};
CHECKED_DECODER(split_begin_req, split_begin_args)

/* ".NAME.rcat-split-": the name cut so that the whole fits NAME_MAX. */
static int temp_prefix(const char *name, char *out, size_t cap)
{
    int keep = NAME_MAX - 1 - (int)strlen(TEMP_INFIX) - TEMP_RANDOM;

    return snprintf(out, cap, ".%.*s" TEMP_INFIX, keep, name);
}

/* An empty file under a free temporary name in dirfd, into e. */
static int make_temp(int dirfd, const char *name, struct split_temp *e)
{
    char prefix[NAME_MAX + 1];
    int len = temp_prefix(name, prefix, sizeof prefix);

    for (int tries = 0; tries < 16; tries++) {
        uint32_t r;
        struct stat st;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            return RCAT_IO;
        snprintf(e->name, sizeof e->name, "%.*s%08x", len, prefix, (unsigned)r);
        int fd = openat(dirfd, e->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return root_status_of_errno(errno);
        int rc = fstat(fd, &st) == 0 ? 0 : root_status_of_errno(errno);
        close(fd);
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        return rc;
    }
    return RCAT_EXISTS;
}

static int add(struct serve_splits *t, const struct split_temp *e)
{
    int rc = 0;

    pthread_mutex_lock(&t->lock);
    if (t->n >= SPLIT_TEMPS_MAX)
        rc = RPC2_ELIMIT; /* each holds a descriptor: clients cannot take them all */
    else if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        struct split_temp *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            rc = RPC2_ENOMEM;
        else
            t->v = v, t->cap = cap;
    }
    if (rc == 0)
        t->v[t->n++] = *e;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* The temporary's path as the caller names the target's: the same
 * directory part. */
static int caller_path(const char *path, const char *temp, split_begin_result *out)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    size_t n = (size_t)dir_len + strlen(temp) + 1;

    if (n > RCAT_MAX_PATH + 1)
        return RCAT_BAD_PATH;
    out->temporary = malloc(n); /* the library frees the result */
    if (!out->temporary)
        return RPC2_ENOMEM;
    snprintf(out->temporary, n, "%.*s%s", dir_len, path, temp);
    return 0;
}

static int begin_in(struct serve *s, const struct root *at, const struct split_begin_req *r,
                    split_begin_result *out, struct call *c)
{
    struct split_temp e = {.dirfd = -1};
    char name[NAME_MAX + 1];
    int exists, dirfd, rc;

    if ((r->a.flags & RCAT_STORE_MKDIRS) && (rc = root_make_parents(at, r->a.path, r->path_len)))
        return rc;
    if ((rc = root_open_store(at, r->a.path, r->path_len, &dirfd, name, &exists)) != 0)
        return rc;
    rc = make_temp(dirfd, name, &e);
    if (rc == 0)
        rc = caller_path(r->a.path, e.name, out);
    if (rc == 0) {
        c->path2_key = "temporary";
        c->path2 = out->temporary;
        e.dirfd = dirfd;
        clock_gettime(CLOCK_MONOTONIC, &e.at);
        rc = add(s->splits, &e);
        if (rc == 0)
            return 0; /* the table keeps dirfd */
        unlinkat(dirfd, e.name, 0);
    }
    close(dirfd);
    return rc;
}

static int do_split_begin(struct serve *s, rpc2_request *req, void *args, void *result,
                          struct call *c)
{
    const struct split_begin_req *r = args;
    struct root at;

    if (r->a.flags & ~(u_int)RCAT_STORE_MKDIRS)
        return RPC2_EINVAL;
    int rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = begin_in(s, &at, r, result, c);
    root_dispose(&at);
    return rc;
}

/* ---- SPLIT_END ------------------------------------------------------------- */

/* Whether from names a temporary SPLIT_BEGIN made for to: the same
 * directory, the name to's with the infix and random digits. */
static int is_temp_for(const struct root *at, const struct serve_rename_req *r, int to_dir,
                       const char *to_name)
{
    char from_name[NAME_MAX + 1], prefix[NAME_MAX + 1];
    struct stat a, b;
    int from_dir;

    if (root_open_parent(at, r->a.from, r->path_len, &from_dir, from_name) != 0)
        return 0;
    int same = fstat(from_dir, &a) == 0 && fstat(to_dir, &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
    close(from_dir);
    size_t len = (size_t)temp_prefix(to_name, prefix, sizeof prefix);
    if (!same || strncmp(from_name, prefix, len) != 0 || strlen(from_name) != len + TEMP_RANDOM)
        return 0;
    return strspn(from_name + len, "0123456789abcdef") == TEMP_RANDOM;
}

/* The temporary leaves the table; its SUM of the whole, if one was done
 * since the last range, becomes the store's checksum. */
static void take_out(struct serve *s, const struct stat *st, struct call *c)
{
    struct serve_splits *t = s->splits;

    pthread_mutex_lock(&t->lock);
    struct split_temp *e = find(t, st->st_dev, st->st_ino);
    if (e) {
        if (e->sum_type && e->sum_bytes == (uint64_t)st->st_size) {
            c->desc.sum_type = e->sum_type;
            c->desc.sum_len = e->sum_len;
            memcpy(c->desc.sum, e->sum, e->sum_len);
        }
        drop(t, e);
    }
    pthread_mutex_unlock(&t->lock);
}

static int end_in(struct serve *s, const struct root *at, const struct serve_rename_req *r,
                  file_info *out, struct call *c)
{
    struct stat st;
    int exists, rc;

    rc = root_open_store(at, r->a.to, r->to_len, &c->fd, c->name, &exists);
    if (rc != 0)
        return rc;
    if (!is_temp_for(at, r, c->fd, c->name))
        return RPC2_EINVAL;
    rc = root_rename(at, r->a.from, r->path_len, r->a.to, r->to_len,
                     r->a.flags & RCAT_RENAME_NO_CLOBBER, &st);
    if (rc != 0)
        return rc;
    take_out(s, &st, c);
    serve_info_of(&st, out);
    return serve_after_store(c, c->name, out);
}

static int do_split_end(struct serve *s, rpc2_request *req, void *args, void *result,
                        struct call *c)
{
    const struct serve_rename_req *r = args;
    struct root at;

    c->path2_key = "to";
    c->path2 = r->a.to;
    if (r->a.flags & ~(u_int)RCAT_RENAME_NO_CLOBBER)
        return RPC2_EINVAL;
    int rc = serve_caller_root(s, req, ACCESS_WRITE, &at);
    if (rc != 0)
        return rc;
    rc = end_in(s, &at, r, result, c);
    root_dispose(&at);
    return rc;
}

static int h_split_begin(rpc2_request *rq, void *args, void *result, void *arg)
{
    return serve_run(arg, rq, "SPLIT_BEGIN", ((struct split_begin_req *)args)->a.path,
                     do_split_begin, args, result);
}

static int h_split_end(rpc2_request *rq, void *args, void *result, void *arg)
{
    return serve_run(arg, rq, "SPLIT_END", ((struct serve_rename_req *)args)->a.from, do_split_end,
                     args, result);
}

const struct rpc2_proc serve_split_procs[SERVE_SPLIT_N] = {
    PROC(RCAT_SPLIT_BEGIN, split_begin_req, split_begin_result, h_split_begin, 1),
    PROC(RCAT_SPLIT_END, serve_rename_req, file_info, h_split_end, 0), /* its command waits */
};
