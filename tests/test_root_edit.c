/*
 * test_root_edit.c - the changes rcatd's remote operations make beneath
 * its root (root_edit.c), through both resolvers (openat2 and the walk):
 * mkdir with and without parents; rename with and without no-clobber, never
 * of the root, never out of it, never of a hidden file; delete of a file, a
 * symlink (its target untouched), an empty and a full directory, and a tree
 * in budgets of a few entries at a time, with symlinks out of the root
 * whose targets survive and a hidden file that stays; a tree deeper than
 * ROOT_TREE_DEPTH refused; symlinks made, replaced atomically and read;
 * a mode and an mtime set, a symlink's own mtime, the root's own.
 * Each case asserts the status a user would see and what is on disk after.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <check.h>

#include "rcat_proto.h"
#include "root.h"
#include "root_edit.h"

static char scratch[] = "/tmp/test_root_edit.XXXXXX";
#include "scratch.h"
#include "check_run.h"

static struct root r;

static int exists(const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    at(p, rel);
    return lstat(p, &st) == 0;
}

/* A fresh tree per test (each runs in its own process), served from root/,
 * with the resolver of the loop's index: 0 openat2, 1 the walk. */
static void setup_tree(int walk)
{
    char p[PATH_MAX];

    strcpy(scratch, "/tmp/test_root_edit.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    put_dir("outside");
    put_file("outside/secret", "outside");
    put_dir("root");
    put_dir("root/a");
    put_file("root/a/f", "f");
    put_file("root/a/g", "g");
    put_dir("root/empty");
    put_link("root/out", "../outside");
    put_link("root/abs_out", scratch); /* absolute: never followed */
    put_file("root/keys", "alice SECRET");
    at(p, "root");
    ck_assert_int_eq(root_init(&r, p), 0);
    if (walk)
        r.use_openat2 = 0;
    at(p, "root/keys");
    const char *hidden[] = {p};
    ck_assert_int_eq(root_hide(&r, hidden, 1), 0);
}

static void teardown_tree(void)
{
    root_dispose(&r);
    scratch_remove();
}

#define P(s) (s), strlen(s)

START_TEST(mkdir_cases)
{
    struct stat st;

    setup_tree(_i);
    ck_assert_int_eq(root_mkdir(&r, P("x/y"), 0755, 0, &st), RCAT_NOT_FOUND);
    ck_assert(!exists("root/x"));
    ck_assert_int_eq(root_mkdir(&r, P("x/y/z"), 0700, 1, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0700 & ~022 & 0777);
    ck_assert_int_eq(root_mkdir(&r, P("x/y/z"), 0755, 1, &st), 0); /* -p: there already */
    ck_assert_int_eq(root_mkdir(&r, P("x/y/z"), 0755, 0, &st), RCAT_EXISTS);
    ck_assert_int_eq(root_mkdir(&r, P("a/f"), 0755, 1, &st), RCAT_EXISTS); /* a file */
    ck_assert_int_eq(root_mkdir(&r, P("."), 0755, 1, &st), 0);
    ck_assert_int_eq(root_mkdir(&r, P("."), 0755, 0, &st), RCAT_EXISTS);
    ck_assert_int_eq(root_mkdir(&r, P("out/new"), 0755, 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_mkdir(&r, P("abs_out/new"), 0755, 1, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_mkdir(&r, P("../new"), 0755, 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_mkdir(&r, P("/tmp/new"), 0755, 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert(!exists("outside/new") && !exists("new"));
    teardown_tree();
}
END_TEST

START_TEST(rename_cases)
{
    struct stat st;

    setup_tree(_i);
    ck_assert_int_eq(root_rename(&r, P("a/f"), P("a/g"), 1, &st), RCAT_EXISTS);
    ck_assert(exists("root/a/f") && exists("root/a/g"));
    ck_assert_int_eq(root_rename(&r, P("a/f"), P("a/g"), 0, &st), 0);
    ck_assert(!exists("root/a/f") && S_ISREG(st.st_mode) && st.st_size == 1);
    ck_assert_int_eq(root_rename(&r, P("a/f"), P("a/h"), 0, &st), RCAT_NOT_FOUND);
    ck_assert_int_eq(root_rename(&r, P("a"), P("a/sub"), 0, &st), RCAT_PERMISSION);
    ck_assert_int_eq(root_rename(&r, P("a/g"), P("empty"), 0, &st), RCAT_IS_DIR);
    ck_assert_int_eq(root_rename(&r, P("a"), P("empty"), 0, &st), 0); /* over an empty dir */
    ck_assert(exists("root/empty/g") && !exists("root/a"));
    ck_assert_int_eq(root_rename(&r, P("."), P("x"), 0, &st), RCAT_PERMISSION);
    ck_assert_int_eq(root_rename(&r, P("empty/g"), P("."), 0, &st), RCAT_PERMISSION);
    ck_assert_int_eq(root_rename(&r, P("empty/g"), P("out/g"), 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_rename(&r, P("out/secret"), P("s"), 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_rename(&r, P("empty/g"), P("../g"), 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_rename(&r, P("keys"), P("k"), 0, &st), RCAT_PERMISSION);
    ck_assert_int_eq(root_rename(&r, P("empty/g"), P("keys"), 0, &st), RCAT_PERMISSION);
    ck_assert(exists("root/keys") && exists("root/empty/g") && exists("outside/secret"));
    /* a symlink is renamed itself, not what it points to */
    ck_assert_int_eq(root_rename(&r, P("out"), P("out2"), 0, &st), 0);
    ck_assert(S_ISLNK(st.st_mode) && exists("outside/secret"));
    teardown_tree();
}
END_TEST

START_TEST(delete_cases)
{
    uint64_t n;
    int more;

    setup_tree(_i);
    ck_assert_int_eq(root_delete(&r, P("a"), 0, 10, &n, &more), RCAT_IS_DIR);
    ck_assert_int_eq(root_delete(&r, P("a"), RCAT_DELETE_DIR, 10, &n, &more), RCAT_NOT_EMPTY);
    ck_assert_int_eq(root_delete(&r, P("empty"), RCAT_DELETE_DIR, 10, &n, &more), 0);
    ck_assert(!exists("root/empty") && n == 1);
    ck_assert_int_eq(root_delete(&r, P("a/f"), 0, 10, &n, &more), 0);
    ck_assert(!exists("root/a/f") && n == 1 && !more);
    ck_assert_int_eq(root_delete(&r, P("a/f"), 0, 10, &n, &more), RCAT_NOT_FOUND);
    ck_assert_int_eq(root_delete(&r, P("out"), 0, 10, &n, &more), 0); /* the link, not its target */
    ck_assert(!exists("root/out") && exists("outside/secret"));
    ck_assert_int_eq(root_delete(&r, P("abs_out/outside/secret"), 0, 10, &n, &more),
                     RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_delete(&r, P("keys"), 0, 10, &n, &more), RCAT_PERMISSION);
    ck_assert_int_eq(root_delete(&r, P("."), RCAT_DELETE_RECURSIVE, 10, &n, &more),
                     RCAT_PERMISSION);
    ck_assert_int_eq(root_delete(&r, P("a/.."), RCAT_DELETE_RECURSIVE, 10, &n, &more),
                     RCAT_OUTSIDE_ROOT);
    ck_assert(exists("root/keys") && exists("root/a/g") && exists("outside/secret"));
    teardown_tree();
}
END_TEST

/* 3 + 3 * 4 entries, removed 5 at a time: every call but the last says
 * more, the counts add up, and what the links point to stays. */
START_TEST(delete_tree_in_budgets)
{
    char rel[64];
    uint64_t n, total = 0;
    int more = 1, calls = 0;

    setup_tree(_i);
    put_dir("root/t");
    put_link("root/t/l_out", "../../outside");
    put_link("root/t/l_abs", scratch);
    put_link("root/t/l_secret", "../../outside/secret");
    for (int d = 0; d < 3; d++) {
        snprintf(rel, sizeof rel, "root/t/d%d", d);
        put_dir(rel);
        for (int f = 0; f < 3; f++) {
            snprintf(rel, sizeof rel, "root/t/d%d/f%d", d, f);
            put_file(rel, "x");
        }
    }
    while (more) {
        ck_assert_int_eq(root_delete(&r, P("t"), RCAT_DELETE_RECURSIVE, 5, &n, &more), 0);
        ck_assert(more ? n == 5 : n <= 5);
        total += n;
        ck_assert_int_lt(++calls, 10);
    }
    ck_assert_int_eq(total, 3 + 3 * 4 + 1);
    ck_assert(!exists("root/t") && exists("outside/secret"));
    /* a hidden file keeps its directory, and says so */
    put_dir("root/h");
    put_file("root/h/x", "x");
    char p[PATH_MAX], keys[PATH_MAX];
    at(keys, "root/keys");
    at(p, "root/h/keys_link");
    ck_assert_int_eq(link(keys, p), 0);
    ck_assert_int_eq(root_delete(&r, P("h"), RCAT_DELETE_RECURSIVE, 100, &n, &more),
                     RCAT_PERMISSION);
    ck_assert(exists("root/h/keys_link") && !exists("root/h/x"));
    teardown_tree();
}
END_TEST

START_TEST(delete_too_deep)
{
    char rel[PATH_MAX] = "root/deep";
    uint64_t n;
    int more;

    setup_tree(_i);
    put_dir(rel);
    for (int i = 0; i < ROOT_TREE_DEPTH + 2; i++) {
        strcat(rel, "/d");
        put_dir(rel);
    }
    ck_assert_int_eq(root_delete(&r, P("deep"), RCAT_DELETE_RECURSIVE, 1000, &n, &more),
                     RCAT_BAD_PATH);
    ck_assert(exists("root/deep"));
    teardown_tree();
}
END_TEST

START_TEST(symlink_cases)
{
    char target[PATH_MAX];
    struct stat st;

    setup_tree(_i);
    ck_assert_int_eq(root_symlink(&r, P("a/l"), P("f"), 0, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(root_readlink(&r, P("a/l"), target, sizeof target), 0);
    ck_assert_str_eq(target, "f");
    ck_assert_int_eq(root_symlink(&r, P("a/l"), P("g"), 0, &st), RCAT_EXISTS);
    ck_assert_int_eq(root_symlink(&r, P("a/l"), P("g"), 1, &st), 0);
    ck_assert_int_eq(root_readlink(&r, P("a/l"), target, sizeof target), 0);
    ck_assert_str_eq(target, "g");
    ck_assert_int_eq(root_symlink(&r, P("a/f"), P("g"), 1, &st), 0); /* a file replaced */
    ck_assert_int_eq(root_symlink(&r, P("empty"), P("g"), 1, &st), RCAT_IS_DIR);
    ck_assert_int_eq(root_symlink(&r, P("keys"), P("g"), 1, &st), RCAT_PERMISSION);
    ck_assert_int_eq(root_symlink(&r, P("a/m"), "g\0x", 3, 0, &st), RCAT_BAD_PATH);
    ck_assert_int_eq(root_symlink(&r, P("a/m"), "", 0, 0, &st), RCAT_BAD_PATH);
    ck_assert_int_eq(root_symlink(&r, P("out/m"), P("g"), 0, &st), RCAT_OUTSIDE_ROOT);
    ck_assert_int_eq(root_readlink(&r, P("a/g"), target, sizeof target), RCAT_NOT_LINK);
    ck_assert_int_eq(root_readlink(&r, P("."), target, sizeof target), RCAT_NOT_LINK);
    ck_assert_int_eq(root_readlink(&r, P("out"), target, sizeof target), 0);
    ck_assert_str_eq(target, "../outside");
    ck_assert_int_eq(root_readlink(&r, P("out"), target, 4), RCAT_BAD_PATH); /* no room */
    /* no temporary left behind */
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls -a %s/root/a | grep -q rcat-link", scratch);
    ck_assert_int_ne(system(cmd), 0);
    teardown_tree();
}
END_TEST

START_TEST(setattr_cases)
{
    struct timespec t = {.tv_sec = 1000000000, .tv_nsec = 123456789};
    struct stat st;

    setup_tree(_i);
    ck_assert_int_eq(
        root_setattr(&r, P("a/f"), RCAT_SETATTR_MODE | RCAT_SETATTR_MTIME, 0640, &t, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(st.st_mtim.tv_sec, t.tv_sec);
    ck_assert_int_eq(st.st_mtim.tv_nsec, t.tv_nsec);
    ck_assert_int_eq(root_setattr(&r, P("out"), RCAT_SETATTR_MTIME, 0, &t, &st), 0);
    ck_assert(S_ISLNK(st.st_mode) && st.st_mtim.tv_sec == t.tv_sec);
    ck_assert_int_eq(root_setattr(&r, P("out"), RCAT_SETATTR_MODE, 0600, &t, &st), RCAT_PERMISSION);
    char p[PATH_MAX];
    struct stat o;
    at(p, "outside");
    ck_assert_int_eq(stat(p, &o), 0);
    ck_assert_int_ne(o.st_mtim.tv_sec, t.tv_sec); /* the link's own, not its target's */
    ck_assert_int_eq(root_setattr(&r, P("."), RCAT_SETATTR_MODE, 0750, &t, &st), 0);
    ck_assert(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0750);
    ck_assert_int_eq(root_setattr(&r, P("keys"), RCAT_SETATTR_MODE, 0644, &t, &st),
                     RCAT_PERMISSION);
    ck_assert_int_eq(root_setattr(&r, P("out/secret"), RCAT_SETATTR_MODE, 0600, &t, &st),
                     RCAT_OUTSIDE_ROOT);
    teardown_tree();
}
END_TEST

static Suite *root_edit_suite(void)
{
    Suite *s = suite_create("root_edit");
    TCase *t = tcase_create("edit");

    tcase_add_loop_test(t, mkdir_cases, 0, 2);
    tcase_add_loop_test(t, rename_cases, 0, 2);
    tcase_add_loop_test(t, delete_cases, 0, 2);
    tcase_add_loop_test(t, delete_tree_in_budgets, 0, 2);
    tcase_add_loop_test(t, delete_too_deep, 0, 2);
    tcase_add_loop_test(t, symlink_cases, 0, 2);
    tcase_add_loop_test(t, setattr_cases, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    umask(022);
    return check_run(root_edit_suite());
}
