/*
 * tree.c - the walk plan of rcat -r (tree.h): which entries a copy moves,
 * and the local directories it writes into, opened one component at a
 * time without following links, so that neither a hostile server's names
 * nor a link planted in the destination lead the copy outside it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "tree.h"

void tree_init(struct tree *t)
{
    memset(t, 0, sizeof *t);
}

void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].src);
        free(t->v[i].rel);
        free(t->v[i].target);
    }
    free(t->v);
    tree_init(t);
}

int tree_file_list(const struct tree *t, size_t **files, uint64_t **sizes)
{
    size_t n = t->files ? t->files : 1; /* an empty tree is no allocation failure */

    *files = calloc(n, sizeof **files);
    *sizes = calloc(n, sizeof **sizes);
    if (!*files || !*sizes) {
        free(*files);
        free(*sizes);
        *files = NULL;
        *sizes = NULL;
        return -1;
    }
    for (size_t i = 0, k = 0; i < t->n; i++) {
        if (t->v[i].kind == TREE_FILE) {
            (*files)[k] = i;
            (*sizes)[k++] = t->v[i].attr.size;
        }
    }
    return 0;
}

int tree_add(struct tree *t, const char *src, const char *rel, enum tree_kind kind,
             const struct tree_attr *a, const char *target, int arg)
{
    struct tree_entry *e;

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct tree_entry *v = realloc(t->v, cap * sizeof *v);

        if (!v)
            return -ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    e = &t->v[t->n];
    memset(e, 0, sizeof *e);
    e->src = strdup(src);
    e->rel = strdup(rel);
    e->target = target ? strdup(target) : NULL;
    if (!e->src || !e->rel || (target && !e->target)) {
        free(e->src);
        free(e->rel);
        free(e->target);
        return -ENOMEM;
    }
    e->kind = kind;
    e->attr = *a;
    e->arg = arg;
    t->n++;
    if (kind == TREE_FILE) {
        t->files++;
        t->file_bytes += a->size;
    }
    return 0;
}

int tree_name_ok(const char *name)
{
    return name[0] && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/');
}

char *tree_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    int slash = na > 0 && a[na - 1] != '/';
    char *out;

    if (!na)
        return strdup(b);
    out = malloc(na + (size_t)slash + nb + 1);
    if (!out)
        return NULL;
    memcpy(out, a, na);
    if (slash)
        out[na] = '/';
    memcpy(out + na + (size_t)slash, b, nb + 1);
    return out;
}

void tree_basename(const char *path, char *out, size_t cap)
{
    size_t n = strlen(path);
    const char *start;

    while (n > 0 && path[n - 1] == '/')
        n--;
    start = path + n;
    while (start > path && start[-1] != '/')
        start--;
    n = (size_t)(path + n - start);
    if (n >= cap || (n == 1 && start[0] == '.') || (n == 2 && !strncmp(start, "..", 2)))
        n = 0;
    memcpy(out, start, n);
    out[n] = '\0';
}

const char *tree_split(const char *rel, char *dir, size_t cap)
{
    const char *slash = strrchr(rel, '/');
    size_t n = slash ? (size_t)(slash - rel) : 0;

    if (cap == 0)
        return slash ? slash + 1 : rel;
    if (n >= cap)
        n = cap - 1;
    memcpy(dir, rel, n);
    dir[n] = '\0';
    return slash ? slash + 1 : rel;
}

static void attr_of(const struct stat *st, struct tree_attr *a)
{
    a->size = S_ISREG(st->st_mode) && st->st_size > 0 ? (uint64_t)st->st_size : 0;
    a->mode = st->st_mode & 07777;
    a->mtime_sec = st->st_mtim.tv_sec;
    a->mtime_nsec = (unsigned)st->st_mtim.tv_nsec;
}

struct walk {
    struct tree *t;
    int arg;
    char *where;
    size_t where_cap;
};

static int walk_fail(struct walk *w, const char *path, int err)
{
    snprintf(w->where, w->where_cap, "%s", path);
    return -err;
}

static int add_one(struct walk *w, int dirfd, const char *name, const char *path, const char *rel,
                   const struct stat *st, int recursive);

/* The entries of the directory open at fd, sorted, so that a copy's order
 * (and its events) do not depend on the filesystem's. */
static int walk_dir(struct walk *w, int fd, const char *path, const char *rel)
{
    DIR *d = fdopendir(fd);
    struct dirent **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0;

    if (!d) {
        close(fd);
        return walk_fail(w, path, errno);
    }
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            struct dirent **v = realloc(names, cap * sizeof *v);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            names = v;
        }
        names[n] = malloc(sizeof *de);
        if (!names[n]) {
            rc = -ENOMEM;
            break;
        }
        memcpy(names[n++], de, sizeof *de);
    }
    if (rc == 0 && n > 0)
        qsort(names, n, sizeof *names, (int (*)(const void *, const void *))alphasort);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;
        char *p = tree_join(path, names[i]->d_name), *r = tree_join(rel, names[i]->d_name);

        if (!p || !r)
            rc = -ENOMEM;
        else if (fstatat(dirfd(d), names[i]->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            rc = errno == ENOENT ? 0 : walk_fail(w, p, errno);
        else
            rc = add_one(w, dirfd(d), names[i]->d_name, p, r, &st, 1);
        free(p);
        free(r);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static int add_one(struct walk *w, int dirfd, const char *name, const char *path, const char *rel,
                   const struct stat *st, int recursive)
{
    struct tree_attr a;
    char target[PATH_MAX];
    int rc;

    attr_of(st, &a);
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);

        if (n < 0)
            return errno == ENOENT ? 0 : walk_fail(w, path, errno);
        target[n] = '\0';
        return tree_add(w->t, path, rel, TREE_LINK, &a, target, w->arg);
    }
    if (S_ISREG(st->st_mode))
        return tree_add(w->t, path, rel, TREE_FILE, &a, NULL, w->arg);
    if (!S_ISDIR(st->st_mode))
        return 0; /* devices, FIFOs, sockets: not what a copy of files moves */
    rc = tree_add(w->t, path, rel, TREE_DIR, &a, NULL, w->arg);
    if (rc != 0 || !recursive)
        return rc;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : walk_fail(w, path, errno);
    return walk_dir(w, fd, path, rel);
}

int tree_walk_local(struct tree *t, const char *path, const char *rel, int recursive, int arg,
                    char *where, size_t cap)
{
    struct walk w = {.t = t, .arg = arg, .where = where, .where_cap = cap};
    struct stat st;

    where[0] = '\0';
    if (lstat(path, &st) < 0)
        return walk_fail(&w, path, errno);
    return add_one(&w, AT_FDCWD, path, path, rel, &st, recursive);
}

int tree_open_dir(int topfd, const char *rel, int create)
{
    int fd = openat(topfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *c = rel;

    while (fd >= 0 && *c) {
        size_t n = strcspn(c, "/");
        char name[NAME_MAX + 1];
        int next;

        if (n == 0 || n > NAME_MAX) {
            close(fd);
            return n ? -ENAMETOOLONG : -EINVAL;
        }
        memcpy(name, c, n);
        name[n] = '\0';
        c += n + (c[n] == '/');
        if (!tree_name_ok(name)) {
            close(fd);
            return -EINVAL;
        }
        if (create && mkdirat(fd, name, 0777) < 0 && errno != EEXIST) {
            int err = errno;
            close(fd);
            return -err;
        }
        next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(fd);
        if (next < 0)
            return err == ENOTDIR ? -ENOTDIR : -err; /* ELOOP: a link in the way */
        fd = next;
    }
    return fd < 0 ? -errno : fd;
}

void tree_dirs_init(struct tree_dirs *c, int topfd)
{
    memset(c, 0, sizeof *c);
    c->topfd = topfd;
    for (int i = 0; i < TREE_DIRS_MAX; i++)
        c->v[i].fd = -1;
}

/* A slot to keep a new directory in: a free one, else the least recently
 * used of those not lent (closed first); -1 when all are lent. */
static int dirs_slot(struct tree_dirs *c)
{
    int best = -1;

    for (int i = 0; i < TREE_DIRS_MAX; i++) {
        if (c->v[i].fd < 0)
            return i;
        if (!c->v[i].lent && (best < 0 || c->v[i].used < c->v[best].used))
            best = i;
    }
    if (best >= 0) {
        close(c->v[best].fd);
        free(c->v[best].rel);
        c->v[best].fd = -1;
        c->v[best].rel = NULL;
    }
    return best;
}

int tree_dirs_get(struct tree_dirs *c, const char *rel)
{
    int i, fd;
    char *copy;

    for (i = 0; i < TREE_DIRS_MAX; i++) {
        if (c->v[i].fd >= 0 && strcmp(c->v[i].rel, rel) == 0) {
            c->v[i].lent++;
            c->v[i].used = ++c->clock;
            return c->v[i].fd;
        }
    }
    fd = tree_open_dir(c->topfd, rel, 0);
    if (fd < 0)
        return fd;
    i = dirs_slot(c);
    copy = i >= 0 ? strdup(rel) : NULL;
    if (!copy) /* not kept: tree_dirs_put closes it */
        return fd;
    c->v[i].rel = copy;
    c->v[i].fd = fd;
    c->v[i].lent = 1;
    c->v[i].used = ++c->clock;
    return fd;
}

void tree_dirs_put(struct tree_dirs *c, int fd)
{
    for (int i = 0; i < TREE_DIRS_MAX; i++) {
        if (c->v[i].fd == fd && c->v[i].lent) {
            c->v[i].lent--;
            return;
        }
    }
    close(fd);
}

void tree_dirs_free(struct tree_dirs *c)
{
    for (int i = 0; i < TREE_DIRS_MAX; i++) {
        if (c->v[i].fd >= 0)
            close(c->v[i].fd);
        free(c->v[i].rel);
    }
    tree_dirs_init(c, c->topfd);
}
