/*
 * globwalk.c - wildcard patterns resolved beneath a root (globwalk.h).
 * Directories are read through the kept listings (listing.h), sorted, so
 * that paging through the matches of a large tree reads each directory
 * once and finds its place in it by binary search.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rpc2/rpc2.h>

#include "globwalk.h"
#include "rcat_proto.h"

#define COMPONENTS_MAX (PATH_MAX / 2) /* "a/a/a/...": at most this many in a checked path */

struct comps {
    const char *p[COMPONENTS_MAX];
    size_t len[COMPONENTS_MAX];
    size_t n;
};

struct glob {
    const struct root *r;
    struct listings *ls;
    struct comps pat, after;
    glob_found_fn fn;
    void *arg;
    char path[PATH_MAX]; /* the match being built, relative to the root */
};

int glob_has_wildcard(const char *c, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (c[i] == '*' || c[i] == '?' || c[i] == '[' || c[i] == '\\')
            return 1;
    return 0;
}

/* Components, without empty ones and "." (which name nothing new). */
static int split(const char *s, struct comps *out)
{
    out->n = 0;
    for (const char *p = s; p && *p;) {
        size_t n = strcspn(p, "/");
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (out->n == COMPONENTS_MAX)
                return RCAT_BAD_PATH;
            out->p[out->n] = p;
            out->len[out->n++] = n;
        }
        p += n + strspn(p + n, "/");
    }
    return 0;
}

/* name against component i of after: <0, 0 or >0 as strcmp. */
static int cmp_after(const struct glob *g, size_t i, const char *name)
{
    size_t n = strlen(name), m = g->after.len[i];
    int c = memcmp(name, g->after.p[i], n < m ? n : m);

    return c ? c : (n > m) - (n < m);
}

/* The first index of the sorted names not before after's component i. */
static size_t lower_bound(const struct glob *g, size_t i, const struct listing *l)
{
    size_t lo = 0, hi = l->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_after(g, i, l->names[mid]) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Appends a component to g->path; returns the old length, or -1 when the
 * path would not fit. */
static long push(struct glob *g, size_t at, const char *c, size_t n)
{
    if (at + 1 + n >= sizeof g->path)
        return -1;
    if (at)
        g->path[at++] = '/';
    memcpy(g->path + at, c, n);
    g->path[at + n] = '\0';
    return (long)(at + n);
}

/* Missing, refused or outside: nothing matches there. */
static int no_match_here(int rc)
{
    return rc == RCAT_NOT_FOUND || rc == RCAT_NOT_DIR || rc == RCAT_PERMISSION ||
           rc == RCAT_OUTSIDE_ROOT || rc == RCAT_BAD_PATH;
}

static int walk(struct glob *g, size_t i, size_t at, int tied);

/* The whole path is built: described and given to fn, unless it is not
 * past after. */
static int found(struct glob *g, int tied)
{
    struct stat st;
    int rc;

    if (tied)
        return 0; /* after itself */
    rc = root_stat(g->r, g->path, strlen(g->path), &st);
    if (rc != 0)
        return no_match_here(rc) ? 0 : rc;
    return g->fn(g->path, &st, g->arg);
}

/* Component i has a wildcard: the directory built so far is listed. */
static int walk_listed(struct glob *g, size_t i, size_t at, int tied)
{
    const struct listing *l;
    char comp[NAME_MAX + 1];
    int fd, rc = root_open_dir(g->r, at ? g->path : ".", at ? at : 1, &fd);

    if (rc != 0)
        return no_match_here(rc) ? 0 : rc;
    memcpy(comp, g->pat.p[i], g->pat.len[i]);
    comp[g->pat.len[i]] = '\0';
    rc = listing_get(g->ls, fd, &l);
    close(fd);
    if (rc != 0)
        return rc;
    for (size_t k = tied ? lower_bound(g, i, l) : 0; rc == 0 && k < l->n; k++) {
        const char *name = l->names[k];
        if (fnmatch(comp, name, FNM_PERIOD) != 0)
            continue;
        long end = push(g, at, name, strlen(name));
        if (end >= 0)
            rc = walk(g, i + 1, (size_t)end, tied && cmp_after(g, i, name) == 0);
        g->path[at] = '\0';
    }
    listing_release(g->ls, l);
    return rc;
}

/* Components i.. of the pattern, beneath g->path[0 .. at). tied: the path
 * so far equals after's first i components, so only names not before
 * after's next one can follow it. */
static int walk(struct glob *g, size_t i, size_t at, int tied)
{
    if (i == g->pat.n)
        return found(g, tied);
    if (glob_has_wildcard(g->pat.p[i], g->pat.len[i]))
        return walk_listed(g, i, at, tied);
    char name[NAME_MAX + 1];
    memcpy(name, g->pat.p[i], g->pat.len[i]);
    name[g->pat.len[i]] = '\0';
    if (tied && cmp_after(g, i, name) < 0)
        return 0; /* every path from here is before after */
    long end = push(g, at, name, g->pat.len[i]);
    int rc = end < 0 ? 0 : walk(g, i + 1, (size_t)end, tied && cmp_after(g, i, name) == 0);
    g->path[at] = '\0';
    return rc;
}

int glob_walk(const struct root *r, struct listings *ls, const char *pattern, size_t len,
              const char *after, glob_found_fn fn, void *arg)
{
    struct glob *g;
    size_t wild = 0;
    int rc = root_check(pattern, len);

    if (rc != 0)
        return rc;
    g = calloc(1, sizeof *g);
    if (!g)
        return RPC2_ENOMEM;
    *g = (struct glob){.r = r, .ls = ls, .fn = fn, .arg = arg};
    rc = split(pattern, &g->pat);
    if (rc == 0)
        rc = split(after, &g->after);
    for (size_t i = 0; rc == 0 && i < g->pat.n; i++)
        wild += (size_t)glob_has_wildcard(g->pat.p[i], g->pat.len[i]);
    if (rc == 0 && wild > GLOB_WILD_MAX)
        rc = RCAT_BAD_PATH;
    /* an after of another shape came from no page of this pattern: from the start */
    int tied = after && *after && g->after.n == g->pat.n;
    if (rc == 0)
        rc = g->pat.n ? walk(g, 0, 0, tied) : RCAT_BAD_PATH;
    free(g);
    return rc == 1 ? 0 : rc;
}
