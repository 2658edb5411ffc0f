/*
 * test_globwalk.c - wildcard patterns resolved beneath a root (globwalk.c),
 * as a table of patterns and the matches a user expects, in order, through
 * both resolvers; leading dots, escapes, character classes, literal
 * components, symlinks out and ".." never matching; then paging: walking a
 * pattern one match per page, continuing after the last path, gives the
 * same matches as one walk, each once, also when entries are added
 * between pages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <check.h>

#include "globwalk.h"
#include "listing.h"
#include "rcat_proto.h"
#include "root.h"

static char scratch[] = "/tmp/test_globwalk.XXXXXX";
#include "scratch.h"
#include "check_run.h"

static void scratch_make(void)
{
    static const char *const dirs[] = {"root",         "root/x1", "root/x1/logs", "root/x2",
                                       "root/x2/logs", "root/y",  "root/y/logs",  "root/.h",
                                       "root/.h/logs", "outside"};
    static const char *const files[] = {
        "root/x1/logs/a.gz",  "root/x1/logs/b.txt",     "root/x2/logs/c.gz",
        "root/x2/logs/.d.gz", "root/y/logs/e.gz",       "root/.h/logs/f.gz",
        "root/star*",         "root/x1/logs/sp ace.gz", "outside/o.gz"};
    char p[PATH_MAX], t[PATH_MAX];

    ck_assert_ptr_nonnull(mkdtemp(scratch));
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        put_dir(dirs[i]);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        put_file(files[i], "");
    snprintf(p, sizeof p, "%s/root/out", scratch);
    ck_assert_int_eq(symlink("../outside", p), 0);
    snprintf(p, sizeof p, "%s/root/abs", scratch);
    snprintf(t, sizeof t, "%s/root/x1", scratch);
    ck_assert_int_eq(symlink(t, p), 0);
    snprintf(p, sizeof p, "%s/root/x3", scratch);
    ck_assert_int_eq(symlink("x1", p), 0); /* inside: followed as a directory */
}

/* The matches, one per line, in out; stop after max (0: all). */
struct got {
    char out[8192];
    size_t n, max;
};

static int collect(const char *path, const struct stat *st, void *arg)
{
    struct got *g = arg;

    (void)st;
    if (g->max && g->n == g->max)
        return 1;
    strcat(g->out, path);
    strcat(g->out, "\n");
    g->n++;
    return 0;
}

static void open_root(struct root *r, struct listings **ls, int walk)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/root", scratch);
    ck_assert_int_eq(root_init(r, p), 0);
    if (walk)
        r->use_openat2 = 0;
    ck_assert_int_eq(listings_new(ls), 0);
}

static const struct {
    const char *pattern;
    int status;
    const char *matches;
} cases[] = {
    {"x*/logs/*.gz", 0,
     "x1/logs/a.gz\nx1/logs/sp ace.gz\nx2/logs/c.gz\nx3/logs/a.gz\nx3/logs/sp ace.gz\n"},
    {"*/logs/?.gz", 0, "x1/logs/a.gz\nx2/logs/c.gz\nx3/logs/a.gz\ny/logs/e.gz\n"},
    {".*/logs/*", 0, ".h/logs/f.gz\n"},
    {"x2/logs/.*", 0, "x2/logs/.d.gz\n"},
    {"[xy][0-9]/logs/[a-c].gz", 0, "x1/logs/a.gz\nx2/logs/c.gz\nx3/logs/a.gz\n"},
    {"x1/logs/b.txt", 0, "x1/logs/b.txt\n"}, /* no wildcard: looked up */
    {"x1/logs/none", 0, ""},
    {"star\\*", 0, "star*\n"}, /* escaped: the name itself */
    {"*/none/*", 0, ""},
    {"out/*", 0, ""},   /* a symlink out holds no match */
    {"abs/*", 0, ""},   /* nor an absolute one */
    {"o*", 0, "out\n"}, /* but is itself described */
    {"x1/../*", RCAT_OUTSIDE_ROOT, ""},
    {"/tmp/*", RCAT_OUTSIDE_ROOT, ""},
    {"*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*", RCAT_BAD_PATH, ""}, /* 17 wildcard components */
    {"./x1//logs/./a.*", 0, "x1/logs/a.gz\n"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

START_TEST(pattern_table)
{
    const size_t i = (size_t)_i / 2;
    struct root r;
    struct listings *ls;
    struct got g = {.out = ""};

    open_root(&r, &ls, _i % 2);
    int rc = glob_walk(&r, ls, cases[i].pattern, strlen(cases[i].pattern), "", collect, &g);
    ck_assert_msg(rc == cases[i].status, "%s: status %d", cases[i].pattern, rc);
    ck_assert_msg(!strcmp(g.out, cases[i].matches), "%s: got\n%s", cases[i].pattern, g.out);
    listings_free(ls);
    root_dispose(&r);
}
END_TEST

/* One match per page, each page continuing after the last path. */
static void walk_in_pages(struct root *r, struct listings *ls, const char *pattern, struct got *all,
                          void (*between)(void))
{
    char after[PATH_MAX] = "";

    for (int pages = 0; pages < 100; pages++) {
        struct got g = {.out = "", .max = 1};
        ck_assert_int_eq(glob_walk(r, ls, pattern, strlen(pattern), after, collect, &g), 0);
        if (g.n == 0)
            return;
        strcat(all->out, g.out);
        all->n++;
        g.out[strlen(g.out) - 1] = '\0';
        strcpy(after, g.out);
        if (between)
            between();
    }
    ck_abort_msg("%s: more than 100 pages", pattern);
}

START_TEST(pages_equal_one_walk)
{
    static const char *const patterns[] = {"*/logs/*", "x*/logs/*.gz", "*", ".*/*/*"};
    struct root r;
    struct listings *ls;

    open_root(&r, &ls, _i);
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        struct got whole = {.out = ""}, paged = {.out = ""};
        ck_assert_int_eq(glob_walk(&r, ls, patterns[i], strlen(patterns[i]), NULL, collect, &whole),
                         0);
        walk_in_pages(&r, ls, patterns[i], &paged, NULL);
        ck_assert_msg(!strcmp(whole.out, paged.out), "%s: whole\n%s\npaged\n%s", patterns[i],
                      whole.out, paged.out);
        ck_assert_int_gt(whole.n, 0);
    }
    listings_free(ls);
    root_dispose(&r);
}
END_TEST

static int added;

/* Between pages a name sorting before everything appears: nothing is
 * given twice or skipped (an index would shift by one). */
static void add_early_name(void)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/root/x2/logs/0-%d.gz", scratch, added++);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
}

START_TEST(pages_with_entries_added)
{
    struct root r;
    struct listings *ls;
    struct got paged = {.out = ""};

    open_root(&r, &ls, 0);
    walk_in_pages(&r, ls, "x2/logs/*", &paged, add_early_name);
    ck_assert_str_eq(paged.out, "x2/logs/c.gz\n");
    listings_free(ls);
    root_dispose(&r);
}
END_TEST

static Suite *globwalk_suite(void)
{
    Suite *s = suite_create("globwalk");
    TCase *t = tcase_create("glob");

    tcase_add_unchecked_fixture(t, scratch_make, scratch_remove);
    tcase_add_loop_test(t, pattern_table, 0, 2 * N_CASES);
    tcase_add_loop_test(t, pages_equal_one_walk, 0, 2);
    tcase_add_test(t, pages_with_entries_added);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(globwalk_suite());
}
