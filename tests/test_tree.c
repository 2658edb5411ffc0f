/*
 * test_tree.c - rcat -r's plan (rcat/tree.c): the names a server may send
 * (one with a '/', "." or ".." would lead a copy out of its destination),
 * the local directories a copy writes into (a symlink on the way is never
 * followed, whether planted in the destination or named by a server), the
 * local walk (directories before their contents, links as links, sorted)
 * and the names a copy takes from its source.
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
#include <sys/stat.h>

#include <check.h>

#include "tree.h"
#include "check_run.h"

START_TEST(names_from_a_server)
{
    static const struct {
        const char *name;
        int ok;
    } rows[] = {
        {"file", 1}, {"sp ace", 1}, {"-dash", 1}, {".hidden", 1}, {"..x", 1},
        {"ünï", 1},  {"", 0},       {".", 0},     {"..", 0},      {"a/b", 0},
        {"/", 0},    {"../x", 0},   {"/etc", 0},  {"x/", 0},
    };

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ck_assert_msg(tree_name_ok(rows[i].name) == rows[i].ok, "'%s': want %d", rows[i].name,
                      rows[i].ok);
}
END_TEST

START_TEST(basenames)
{
    static const struct {
        const char *path, *base;
    } rows[] = {
        {"a/b/c", "c"}, {"a/b/", "b"}, {"c", "c"}, {"", ""},
        {"/", ""},      {"a/..", ""},  {".", ""},  {"x//", "x"},
    };
    char out[256];

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tree_basename(rows[i].path, out, sizeof out);
        ck_assert_msg(!strcmp(out, rows[i].base), "'%s': '%s', want '%s'", rows[i].path, out,
                      rows[i].base);
    }
}
END_TEST

static char *make_tmp(void)
{
    char tmpl[] = "/tmp/test_tree.XXXXXX";
    char *d = mkdtemp(tmpl);

    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static void rm_rf(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(directories_never_through_a_link)
{
    char *top = make_tmp(), *out = make_tmp(), path[512];
    int topfd = open(top, O_RDONLY | O_DIRECTORY), fd;

    ck_assert_int_ge(topfd, 0);
    fd = tree_open_dir(topfd, "a/b/c", 1); /* made as mkdir -p */
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(path, sizeof path, "%s/a/b/c", top);
    ck_assert_int_eq(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/a/out", top); /* a link planted in the destination */
    ck_assert_int_eq(symlink(out, path), 0);
    fd = tree_open_dir(topfd, "a/out/x", 1);
    ck_assert_msg(fd == -ELOOP || fd == -ENOTDIR, "through a link: %d", fd);
    snprintf(path, sizeof path, "%s/x", out);
    ck_assert_int_ne(access(path, F_OK), 0); /* nothing made outside */
    ck_assert_int_eq(tree_open_dir(topfd, "a/../..", 1), -EINVAL);
    ck_assert_int_eq(tree_open_dir(topfd, "/etc", 0), -EINVAL);
    fd = tree_open_dir(topfd, "", 0); /* the top itself */
    ck_assert_int_ge(fd, 0);
    close(fd);
    close(topfd);
    rm_rf(top);
    rm_rf(out);
    free(top);
    free(out);
}
END_TEST

START_TEST(local_walk)
{
    char *top = make_tmp(), path[512], where[512];
    struct tree t;
    static const char *const want[] = {"", "a link", "b", "b/empty", "b/f", "z"};
    static const enum tree_kind kinds[] = {TREE_DIR, TREE_LINK, TREE_DIR,
                                           TREE_DIR, TREE_FILE, TREE_FILE};
    FILE *f;

    snprintf(path, sizeof path, "%s/b", top);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/b/empty", top);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/b/f", top);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("hello", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/z", top);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof path, "%s/a link", top);
    ck_assert_int_eq(symlink("/nowhere", path), 0);
    tree_init(&t);
    ck_assert_int_eq(tree_walk_local(&t, top, "", 1, 1, where, sizeof where), 0);
    ck_assert_uint_eq(t.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < t.n; i++) {
        ck_assert_str_eq(t.v[i].rel, want[i]);
        ck_assert_int_eq(t.v[i].kind, kinds[i]);
    }
    ck_assert_str_eq(t.v[1].target, "/nowhere");
    ck_assert_uint_eq(t.files, 2);
    ck_assert_uint_eq(t.file_bytes, 5);
    tree_free(&t);
    tree_init(&t);
    ck_assert_int_eq(tree_walk_local(&t, "/no/such/path", "", 1, 1, where, sizeof where), -ENOENT);
    ck_assert_str_eq(where, "/no/such/path");
    tree_free(&t);
    rm_rf(top);
    free(top);
}
END_TEST

static Suite *tree_suite(void)
{
    Suite *s = suite_create("tree");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, names_from_a_server);
    tcase_add_test(tc, basenames);
    tcase_add_test(tc, directories_never_through_a_link);
    tcase_add_test(tc, local_walk);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(tree_suite());
}
