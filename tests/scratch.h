/*
 * scratch.h - a Check test's scratch tree under /tmp: paths in it, files,
 * directories and symlinks made with an assertion each, and the whole tree
 * removed without following a link. The including file defines the
 * directory first, a mkdtemp template:
 *
 *     static char scratch[] = "/tmp/test_x.XXXXXX";
 *     #include "scratch.h"
 */
#ifndef TESTS_SCRATCH_H
#define TESTS_SCRATCH_H

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>

#include <check.h>

static inline void at(char *out, const char *rel)
{
    snprintf(out, PATH_MAX, "%s/%s", scratch, rel);
}

static inline void put_file(const char *rel, const char *text)
{
    char p[PATH_MAX];
    at(p, rel);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static inline void put_dir(const char *rel)
{
    char p[PATH_MAX];
    at(p, rel);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

static inline void put_link(const char *rel, const char *target)
{
    char p[PATH_MAX];
    at(p, rel);
    ck_assert_int_eq(symlink(target, p), 0);
}

static inline int scratch_remove_one(const char *p, const struct stat *st, int flag,
                                     struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static inline void scratch_remove(void)
{
    nftw(scratch, scratch_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
