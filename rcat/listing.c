/*
 * listing.c - the kept listings of listing.h: a few slots, each a sorted
 * name array with the directory's identity (device, inode) and change
 * times, shared by the workers that page it and freed when the last user
 * lets go of a listing that was replaced or evicted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>

#include "listing.h"
#include "rcat_proto.h"
#include "root.h"

#define LIST_CAP (1u << 20)   /* entries in one directory; past it LIST refuses */
#define SLOTS 8               /* directories kept at once */
#define NAMES_KEPT (1u << 20) /* names kept in all: a memory bound */

struct kept {
    struct listing ls;
    dev_t dev;
    ino_t ino;
    struct timespec mtime, ctime;
    time_t loaded; /* CLOCK_MONOTONIC seconds */
    unsigned users;
    int dropped; /* out of its slot: freed by its last user */
};

struct listings {
    pthread_mutex_t lock;
    struct kept *slot[SLOTS];
    uint64_t names_read;
};

static time_t mono_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec;
}

static void kept_free(struct kept *k)
{
    for (size_t i = 0; i < k->ls.n; i++)
        free(k->ls.names[i]);
    free(k->ls.names);
    free(k);
}

static int add_name(struct kept *k, size_t *cap, const char *name)
{
    if (k->ls.n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        char **v = realloc(k->ls.names, ncap * sizeof *v);

        if (!v)
            return RPC2_ENOMEM;
        k->ls.names = v;
        *cap = ncap;
    }
    k->ls.names[k->ls.n] = strdup(name);
    return k->ls.names[k->ls.n++] ? 0 : RPC2_ENOMEM;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every name but "." and "..", sorted bytewise (the same in every locale). */
static int read_names(int fd, struct kept *k)
{
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;
    size_t cap = 0;
    int rc = 0;

    if (!d) {
        rc = root_status_of_errno(errno);
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    rewinddir(d); /* the dup shares its position with fd */
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        rc = k->ls.n < LIST_CAP ? add_name(k, &cap, e->d_name) : RCAT_IO;
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = root_status_of_errno(errno);
    closedir(d);
    if (rc == 0 && k->ls.n > 0) /* an empty directory has no array at all */
        qsort(k->ls.names, k->ls.n, sizeof *k->ls.names, by_name);
    return rc;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static int fresh(const struct kept *k, const struct stat *st, time_t now)
{
    return k->dev == st->st_dev && k->ino == st->st_ino && same_time(&k->mtime, &st->st_mtim) &&
           same_time(&k->ctime, &st->st_ctim) && now - k->loaded < LISTING_MAX_AGE_S;
}

/* Takes k out of its slot (lock held); freed now if nobody pages it. */
static void drop(struct listings *l, int i)
{
    struct kept *k = l->slot[i];

    l->slot[i] = NULL;
    if (k->users == 0)
        kept_free(k);
    else
        k->dropped = 1;
}

/* Lock held: a slot of this directory, stale or not, is given up; then the
 * oldest unused ones until the names kept fit. -1: no room (not kept). */
static int make_room(struct listings *l, const struct stat *st, size_t n)
{
    size_t kept = 0;
    int free_slot = -1;

    for (int i = 0; i < SLOTS; i++)
        if (l->slot[i] && l->slot[i]->dev == st->st_dev && l->slot[i]->ino == st->st_ino)
            drop(l, i);
    for (;;) {
        int oldest = -1;

        kept = 0;
        free_slot = -1;
        for (int i = 0; i < SLOTS; i++) {
            struct kept *k = l->slot[i];

            if (!k) {
                free_slot = i;
                continue;
            }
            kept += k->ls.n;
            if (oldest < 0 || k->loaded < l->slot[oldest]->loaded)
                oldest = i;
        }
        if (free_slot >= 0 && kept + n <= NAMES_KEPT)
            return free_slot;
        if (oldest < 0 || n > NAMES_KEPT)
            return -1;
        drop(l, oldest);
    }
}

static struct kept *find_fresh(struct listings *l, const struct stat *st, time_t now)
{
    for (int i = 0; i < SLOTS; i++)
        if (l->slot[i] && fresh(l->slot[i], st, now))
            return l->slot[i];
    return NULL;
}

static int load(struct listings *l, int fd, const struct stat *st, time_t now, struct kept **out)
{
    struct kept *k = calloc(1, sizeof *k);
    int rc;

    if (!k)
        return RPC2_ENOMEM;
    rc = read_names(fd, k);
    if (rc != 0) {
        kept_free(k);
        return rc;
    }
    *k = (struct kept){.ls = k->ls,
                       .dev = st->st_dev,
                       .ino = st->st_ino,
                       .mtime = st->st_mtim,
                       .ctime = st->st_ctim,
                       .loaded = now,
                       .users = 1};
    pthread_mutex_lock(&l->lock);
    l->names_read += k->ls.n;
    int i = make_room(l, st, k->ls.n);
    if (i >= 0)
        l->slot[i] = k;
    else
        k->dropped = 1; /* too big to keep: this page alone uses it */
    pthread_mutex_unlock(&l->lock);
    *out = k;
    return 0;
}

int listing_get(struct listings *l, int fd, const struct listing **out)
{
    struct stat st;
    time_t now = mono_now();
    struct kept *k;
    int rc;

    if (fstat(fd, &st) < 0)
        return root_status_of_errno(errno);
    pthread_mutex_lock(&l->lock);
    k = find_fresh(l, &st, now);
    if (k)
        k->users++;
    pthread_mutex_unlock(&l->lock);
    /* read outside the lock: a big directory must not stall other pages;
     * two workers may then read the same one at once, and the later wins */
    rc = k ? 0 : load(l, fd, &st, now, &k);
    if (rc == 0)
        *out = &k->ls;
    return rc;
}

void listing_release(struct listings *l, const struct listing *ls)
{
    struct kept *k = (struct kept *)((char *)ls - offsetof(struct kept, ls));

    pthread_mutex_lock(&l->lock);
    if (--k->users == 0 && k->dropped)
        kept_free(k);
    pthread_mutex_unlock(&l->lock);
}

uint64_t listings_names_read(struct listings *l)
{
    pthread_mutex_lock(&l->lock);
    uint64_t n = l->names_read;
    pthread_mutex_unlock(&l->lock);
    return n;
}

int listings_new(struct listings **out)
{
    struct listings *l = calloc(1, sizeof *l);

    if (!l || pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return RPC2_ENOMEM;
    }
    *out = l;
    return 0;
}

void listings_free(struct listings *l)
{
    if (!l)
        return;
    for (int i = 0; i < SLOTS; i++)
        if (l->slot[i])
            kept_free(l->slot[i]);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
