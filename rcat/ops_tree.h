/*
 * ops_tree.h - what the files of rcat -r share (ops_walk.c reads the
 * server's side, ops_tree.c runs a fetch of a tree, ops_tree_put.c a store
 * of one). Only those files include it.
 */
#ifndef RCAT_OPS_TREE_H
#define RCAT_OPS_TREE_H

#include "ops_impl.h"
#include "tree.h"

/* Adds the remote path as rel to t: itself (STAT), and when it is a
 * directory (and -r) everything beneath it, each directory before its
 * contents. 0, an rcat status (RCAT_IS_DIR without -r) or an rpc2 error
 * about path itself; entries beneath it that fail are reported and left
 * out. */
int ops_plan_remote(struct ops *o, struct slot *s, const char *path, const char *rel, int arg,
                    struct tree *t);
/* A remote path with a wildcard ('*', '?', '[') in it. */
int ops_has_wildcard(const char *path);
/* The remote paths pattern matches (src; rel is each one's base name), in
 * the server's order: resolved by the server (RCAT_GLOB), or on its
 * listings when it is older. 0 (none matching is no error here) or an
 * rpc2 error. */
int ops_glob_remote(struct ops *o, struct slot *s, const struct url *pattern, struct tree *out);

/* out: path on base's server. */
void ops_url_at(const struct url *base, const char *path, struct url *out);

/* The file's counts for ARGSTOP and the exit code: the first failure's
 * code wins. */
static inline void ops_tree_note(int *first, int code)
{
    if (*first == RCAT_EXIT_OK)
        *first = code;
}

#endif
