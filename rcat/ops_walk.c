/*
 * ops_walk.c - the server's side of rcat -r's plan: a remote path and
 * everything beneath it, read with LIST (pages of names with their size,
 * mode, mtime and type), and the paths a remote wildcard matches. Every
 * name a server sends is checked (tree_name_ok) before it becomes part of
 * a path: one with a '/', "." or ".." fails that entry alone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "ops_impl.h"
#include "ops_tree.h"

static void attr_of(const file_info *info, struct tree_attr *a)
{
    a->size = info->size;
    a->mode = info->mode & 07777;
    a->mtime_sec = info->mtime_sec;
    a->mtime_nsec = info->mtime_nsec;
}

static enum tree_kind kind_of(const file_info *info)
{
    return info->type == RCAT_DIR ? TREE_DIR : info->type == RCAT_LNK ? TREE_LINK : TREE_FILE;
}

struct walk {
    struct ops *o;
    struct slot *s;
    struct tree *t;
    const char *path, *rel;
    int arg;
    struct tree dirs; /* the subdirectories of this one, walked after its listing */
};

static int take_entry(const char *name, const file_info *info, void *arg)
{
    struct walk *w = arg;
    struct tree_attr a;
    char *src, *rel;
    int rc;

    if (!tree_name_ok(name)) {
        report_file_error(RCAT_EXIT_REFUSED, "RCAT_BAD_PATH", w->path,
                          "the server listed a name that would leave the directory: refused");
        return 0;
    }
    src = tree_join(w->path, name);
    rel = tree_join(w->rel, name);
    attr_of(info, &a);
    rc = src && rel ? tree_add(kind_of(info) == TREE_DIR ? &w->dirs : w->t, src, rel, kind_of(info),
                               &a, NULL, w->arg)
                    : -1;
    free(src);
    free(rel);
    return rc ? RPC2_ENOMEM : 0;
}

static int walk_remote(struct ops *o, struct slot *s, struct tree *t, const char *path,
                       const char *rel, int arg)
{
    struct walk w = {.o = o, .s = s, .t = t, .path = path, .rel = rel, .arg = arg};
    int rc;

    tree_init(&w.dirs);
    rc = ops_list_dir(o, s, path, take_entry, &w);
    for (size_t i = 0; rc == 0 && i < w.dirs.n; i++) {
        struct tree_entry *d = &w.dirs.v[i];

        rc = tree_add(t, d->src, d->rel, TREE_DIR, &d->attr, NULL, arg) ? RPC2_ENOMEM : 0;
        if (rc == 0)
            rc = walk_remote(o, s, t, d->src, d->rel, arg);
        if (rc > 0 || rc == RPC2_ENOENT) { /* removed meanwhile, or not ours to read */
            ops_fail(o, s, rc, NULL, d->src, NULL, &(const char *){NULL});
            rc = 0;
        }
    }
    tree_free(&w.dirs);
    return rc;
}

int ops_plan_remote(struct ops *o, struct slot *s, const char *path, const char *rel, int arg,
                    struct tree *t)
{
    file_info info;
    struct tree_attr a;
    int rc = ops_stat_call(o, s, path[0] ? path : ".", &info);

    if (rc != 0)
        return rc;
    attr_of(&info, &a);
    if (kind_of(&info) == TREE_DIR && !o->cfg.recursive)
        return RCAT_IS_DIR;
    if (tree_add(t, path, rel, kind_of(&info), &a, NULL, arg) != 0)
        return RPC2_ENOMEM;
    return kind_of(&info) == TREE_DIR ? walk_remote(o, s, t, path, rel, arg) : 0;
}

/* ---- wildcards ---------------------------------------------------------- */

int ops_has_wildcard(const char *path)
{
    return strpbrk(path, "*?[") != NULL;
}

struct glob_step {
    const char *dir, *pattern;
    struct tree *out;
};

static int take_match(const char *name, const file_info *info, void *arg)
{
    struct glob_step *g = arg;
    struct tree_attr a;
    char *p;
    int rc;

    if (!tree_name_ok(name) || fnmatch(g->pattern, name, FNM_PERIOD) != 0)
        return 0;
    p = tree_join(g->dir, name);
    attr_of(info, &a);
    rc = p ? tree_add(g->out, p, name, kind_of(info), &a, NULL, 0) : -1;
    free(p);
    return rc ? RPC2_ENOMEM : 0;
}

/* A server older than RCAT_GLOB: the paths matching pattern, component by
 * component, each wildcard matched against its directory's listing (a
 * leading '.' only by a pattern that starts with one, as the shell does). */
static int glob_by_listing(struct ops *o, struct slot *s, const char *pattern, struct tree *out)
{
    struct tree now, next;
    char *copy = strdup(pattern), *save = NULL;
    int rc = copy ? 0 : RPC2_ENOMEM;
    struct tree_attr none = {0};

    tree_init(&now);
    if (rc == 0)
        rc = tree_add(&now, "", "", TREE_DIR, &none, NULL, 0) ? RPC2_ENOMEM : 0;
    for (char *c = copy ? strtok_r(copy, "/", &save) : NULL; rc == 0 && c;
         c = strtok_r(NULL, "/", &save)) {
        tree_init(&next);
        for (size_t i = 0; rc == 0 && i < now.n; i++) {
            if (!ops_has_wildcard(c)) {
                char *p = tree_join(now.v[i].src, c);

                rc = p && tree_add(&next, p, c, TREE_FILE, &none, NULL, 0) == 0 ? 0 : RPC2_ENOMEM;
                free(p);
                continue;
            }
            struct glob_step g = {.dir = now.v[i].src, .pattern = c, .out = &next};

            if (now.v[i].kind == TREE_DIR || i == 0 || now.v[i].kind == TREE_FILE)
                rc = ops_list_dir(o, s, now.v[i].src, take_match, &g);
            if (rc > 0 || rc == RPC2_ENOENT)
                rc = 0; /* not a directory, or gone: no match there */
        }
        tree_free(&now);
        now = next;
    }
    free(copy);
    if (rc != 0) {
        tree_free(&now);
        return rc;
    }
    *out = now;
    return 0;
}

static int take_glob(const char *path, const file_info *info, void *arg)
{
    struct tree *out = arg;
    struct tree_attr a;
    char base[RCAT_MAX_NAME + 1];

    tree_basename(path, base, sizeof base);
    if (!base[0]) /* a server's path rcat could not name a copy after */
        return 0;
    attr_of(info, &a);
    return tree_add(out, path, base, kind_of(info), &a, NULL, 0) ? RPC2_ENOMEM : 0;
}

int ops_glob_remote(struct ops *o, struct slot *s, const struct url *pattern, struct tree *out)
{
    int rc;

    tree_init(out);
    rc = ops_glob(o, pattern, take_glob, out);
    if (rc == RPC2_ENOPROC) {
        tree_free(out);
        return glob_by_listing(o, s, pattern->path, out);
    }
    if (rc != 0)
        tree_free(out);
    return rc;
}

/* ---- the server's answers about one path ---------------------------------- */

void ops_url_at(const struct url *base, const char *path, struct url *out)
{
    memcpy(out->host, base->host, sizeof out->host);
    out->port = base->port;
    out->remote = 1;
    snprintf(out->path, sizeof out->path, "%s", path);
}

int ops_same_content(struct ops *o, const struct url *server, const char *path, int fd)
{
    unsigned char mine[RPC2_SE_SUM_MAX], theirs[RCAT_SUM_BYTES];
    unsigned mine_len = 0, their_len = 0;
    uint64_t bytes;
    struct url u;

    if (rpc2_se_sum_fd(fd, RPC2_SE_SUM_XXH128, 0, -1, mine, &mine_len, &bytes) != 0)
        return 0;
    ops_url_at(server, path, &u);
    if (ops_sum(o, &u, RCAT_SUM_XXH128, 0, -1, theirs, &their_len, NULL) != 0)
        return 0; /* a server without SUM, a file gone: moved, as without the option */
    return mine_len == their_len && !memcmp(mine, theirs, mine_len);
}
