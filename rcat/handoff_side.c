/*
 * handoff_side.c - a handoff's two sides (handoff_side.h): POSIX calls for
 * the local spool, the remote operations (ops.h) for the server's. Each
 * failure is reported here, where the path is known, and comes back as
 * rcat's exit code.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handoff_side.h"
#include "report.h"
#include "tree.h"
#include "verdict.h"

char *side_path(const struct side *s, const char *rel)
{
    const char *base = s->remote ? s->url.path : s->dir;

    return base[0] ? tree_join(base, rel) : strdup(rel);
}

void side_url(const struct side *s, const char *path, struct url *out)
{
    *out = s->url;
    snprintf(out->path, sizeof out->path, "%s", path);
}

static int local_fail(const char *path, const char *what, int err)
{
    const char *result;

    return verdict_fail_local(path, what, err, &result);
}

static int oom(void)
{
    return local_fail("rcat handoff", NULL, ENOMEM);
}

/* A remote call's rc on path: 0, or the exit code, reported. */
static int remote_fail(const struct side *s, const char *path, int rc)
{
    struct url u;

    if (rc == 0)
        return 0;
    side_url(s, path, &u);
    return ops_report_failure(s->o, &u, path, rc);
}

static enum side_kind kind_of_mode(mode_t m)
{
    return S_ISDIR(m) ? SIDE_DIR : S_ISREG(m) ? SIDE_FILE : SIDE_OTHER;
}

int side_kind(const struct side *s, const char *rel, enum side_kind *kind)
{
    char *path = side_path(s, rel);
    int code = 0;

    *kind = SIDE_NONE;
    if (!path)
        return oom();
    if (!s->remote) {
        struct stat st;

        if (lstat(path, &st) == 0)
            *kind = kind_of_mode(st.st_mode);
        else if (errno != ENOENT)
            code = local_fail(path, NULL, errno);
    } else {
        file_info info;
        struct url u;
        int rc;

        side_url(s, path, &u);
        rc = ops_lookup(s->o, &u, &info);
        if (rc == 0)
            *kind = info.type == RCAT_DIR ? SIDE_DIR : info.type == RCAT_REG ? SIDE_FILE : SIDE_OTHER;
        else if (rc != RCAT_NOT_FOUND)
            code = remote_fail(s, path, rc);
    }
    free(path);
    return code;
}

/* Adds name to the list unless it is there. */
static int add_name(char ***names, size_t *n, const char *name)
{
    char **v;

    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*names)[i], name))
            return 0;
    v = realloc(*names, (*n + 1) * sizeof *v);
    if (!v)
        return -1;
    *names = v;
    v[*n] = strdup(name);
    if (!v[*n])
        return -1;
    (*n)++;
    return 0;
}

/* Which names of a directory a listing keeps. */
typedef int (*keep_fn)(const char *name, int is_dir);

struct collect {
    keep_fn keep;
    char ***names;
    size_t *n;
    int failed;
};

static int collect(const char *path, const file_info *info, void *arg)
{
    struct collect *c = arg;
    const char *name = url_basename(path);

    if (!name || !c->keep(name, info->type == RCAT_DIR))
        return 0;
    if (add_name(c->names, c->n, name) < 0) {
        c->failed = 1;
        return RPC2_ENOMEM;
    }
    return 0;
}

/* The names in the directory rel that keep wants; on a server, those the
 * patterns match (a '*' leaves out hidden names: FNM_PERIOD). */
static int list_dir(const struct side *s, const char *rel, const char *const *patterns,
                    size_t n_patterns, keep_fn keep, char ***names, size_t *n)
{
    char *path = rel[0] ? side_path(s, rel) : strdup(s->remote ? s->url.path : s->dir);
    int code = 0;

    if (!path)
        return oom();
    if (!s->remote) {
        DIR *d = opendir(path);
        struct dirent *e;
        struct stat st;

        if (!d)
            code = local_fail(path, "cannot read it", errno);
        while (d && code == 0 && (e = readdir(d)) != NULL)
            if (keep(e->d_name, fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                    S_ISDIR(st.st_mode)) &&
                add_name(names, n, e->d_name) < 0)
                code = oom();
        if (d)
            closedir(d);
    }
    for (size_t i = 0; s->remote && code == 0 && i < n_patterns; i++) {
        struct collect c = {keep, names, n, 0};
        char *pattern = path[0] ? tree_join(path, patterns[i]) : strdup(patterns[i]);
        struct url u;
        int rc;

        if (!pattern) {
            code = oom();
            break;
        }
        side_url(s, pattern, &u);
        rc = ops_glob(s->o, &u, collect, &c);
        code = c.failed ? oom() : remote_fail(s, path[0] ? path : ".", rc);
        free(pattern);
    }
    free(path);
    return code;
}

static int is_batch(const char *name, int is_dir)
{
    return is_dir && name[0] && name[0] != '.';
}

static int is_entry(const char *name, int is_dir)
{
    (void)is_dir;
    return strcmp(name, ".") && strcmp(name, "..");
}

static int is_trash(const char *name, int is_dir)
{
    size_t n = strlen(name), p = strlen(HANDOFF_PREFIX), t = strlen(HANDOFF_TRASH);

    (void)is_dir;
    return n > p + t && !strncmp(name, HANDOFF_PREFIX, p) && !strcmp(name + n - t, HANDOFF_TRASH);
}

int side_batches(const struct side *s, char ***names, size_t *n)
{
    static const char *const patterns[] = {"*"};

    return list_dir(s, "", patterns, 1, is_batch, names, n);
}

int side_list(const struct side *s, const char *rel, char ***names, size_t *n)
{
    static const char *const patterns[] = {"*", ".*"};

    return list_dir(s, rel, patterns, 2, is_entry, names, n);
}

/* renameat2's RENAME_NOREPLACE: never over something there. */
static int rename_local(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return 1;
    return local_fail(from, "cannot rename it", errno);
}

int side_rename(const struct side *s, const char *rel, const char *to)
{
    char *from = side_path(s, rel);
    struct url u;
    int rc;

    if (!from)
        return oom();
    if (!s->remote) {
        rc = rename_local(from, to);
    } else {
        side_url(s, from, &u);
        rc = ops_rename(s->o, &u, to, 1, NULL);
        rc = rc == RCAT_EXISTS ? 1 : remote_fail(s, from, rc);
    }
    free(from);
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? errno : 0;
}

int side_remove(const struct side *s, const char *rel)
{
    char *path = side_path(s, rel);
    int rc;

    if (!path)
        return oom();
    if (!s->remote) {
        rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        rc = rc == 0 || errno == ENOENT ? 0 : local_fail(path, "cannot remove it", rc > 0 ? rc : errno);
    } else {
        struct url u;

        side_url(s, path, &u);
        rc = ops_delete(s->o, &u, RCAT_DELETE_DIR | RCAT_DELETE_RECURSIVE, NULL);
        rc = rc == RCAT_NOT_FOUND ? 0 : remote_fail(s, path, rc);
    }
    free(path);
    return rc;
}

int side_sweep(const struct side *s)
{
    static const char *const patterns[] = {HANDOFF_PREFIX "*" HANDOFF_TRASH};
    char **names = NULL;
    size_t n = 0;
    int code = list_dir(s, "", patterns, 1, is_trash, &names, &n);

    for (size_t i = 0; i < n; i++) {
        if (code == 0)
            code = side_remove(s, names[i]);
        free(names[i]);
    }
    free(names);
    return code;
}
