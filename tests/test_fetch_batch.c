/*
 * test_fetch_batch.c - rcat -r's batches of small files (rcat/fetch_batch.c):
 * which files go in one FETCH_BATCH, and the check of a server's reply
 * before any byte of it is written: one entry per file asked for, each
 * sent file's length its size, none for a file not sent, the lengths adding
 * up to exactly the bytes that arrived. A reply that breaks any of these
 * is refused whole.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <rpc2/rpc2.h>

#include "fetch_batch.h"
#include "check_run.h"

/* ---- the check of a reply ---- */

static batch_entry sent(uint64_t len)
{
    return (batch_entry){.status = 0, .info = {.size = len, .type = RCAT_REG}, .length = len};
}

static batch_entry failed(int status)
{
    return (batch_entry){.status = status};
}

static int check(batch_entry *e, unsigned n, unsigned asked, size_t data_len, const char **why)
{
    fetch_batch_result res = {.entries = {.entries_len = n, .entries_val = e}};

    *why = NULL;
    return fetch_batch_check(&res, asked, data_len, why);
}

START_TEST(a_whole_reply_is_taken)
{
    batch_entry e[] = {sent(10), failed(RCAT_NOT_FOUND), sent(0), failed(RPC2_ECHANGED), sent(7)};
    const char *why;

    ck_assert_int_eq(check(e, 5, 5, 17, &why), 0);
    ck_assert_ptr_null(why);
    /* all failed: no bytes */
    batch_entry none[] = {failed(RCAT_PERMISSION), failed(RCAT_IS_DIR)};
    ck_assert_int_eq(check(none, 2, 2, 0, &why), 0);
}
END_TEST

START_TEST(lengths_that_do_not_add_up_are_refused)
{
    batch_entry e[] = {sent(10), sent(7)};
    const char *why;

    ck_assert_int_eq(check(e, 2, 2, 16, &why), -1); /* fewer bytes came than they say */
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(check(e, 2, 2, 18, &why), -1); /* more came */
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(check(e, 2, 2, 0, &why), -1);
    /* a length the size of memory would wrap a sum that did not check each step */
    batch_entry wrap[] = {sent(UINT64_MAX), sent(2)};
    ck_assert_int_eq(check(wrap, 2, 2, 1, &why), -1);
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(entries_that_lie_are_refused)
{
    const char *why;
    batch_entry other_size[] = {sent(10)};
    other_size[0].info.size = 11; /* length is not the file's size */
    ck_assert_int_eq(check(other_size, 1, 1, 10, &why), -1);

    batch_entry failed_with_bytes[] = {failed(RCAT_NOT_FOUND), sent(4)};
    failed_with_bytes[0].length = 3; /* a file not sent has no bytes */
    ck_assert_int_eq(check(failed_with_bytes, 2, 2, 7, &why), -1);

    batch_entry not_a_file[] = {sent(4)};
    not_a_file[0].info.type = RCAT_DIR;
    ck_assert_int_eq(check(not_a_file, 1, 1, 4, &why), -1);

    batch_entry two[] = {sent(1), sent(1)};
    ck_assert_int_eq(check(two, 2, 3, 2, &why), -1); /* fewer entries than files asked for */
    ck_assert_int_eq(check(two, 2, 1, 2, &why), -1); /* more */
    ck_assert_ptr_nonnull(why);
}
END_TEST

/* ---- which files go together ---- */

START_TEST(small_files_go_together_large_ones_alone)
{
    uint64_t sizes[] = {100, 200, FETCH_BATCH_FILE_MAX + 1, 300, 400, 500};
    size_t lens[] = {5, 5, 5, 5, 5, 5};
    struct fetch_batch_task t[6];
    size_t n = fetch_batch_group(sizes, lens, 6, 1, t);

    ck_assert_uint_eq(n, 3);
    ck_assert(t[0].batch && t[0].first == 0 && t[0].n == 2 && t[0].bytes == 300);
    ck_assert(!t[1].batch && t[1].first == 2 && t[1].n == 1);
    ck_assert(t[2].batch && t[2].first == 3 && t[2].n == 3 && t[2].bytes == 1200);
    /* without batching, every file alone */
    n = fetch_batch_group(sizes, lens, 6, 0, t);
    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        ck_assert(!t[i].batch && t[i].first == i && t[i].n == 1);
}
END_TEST

START_TEST(a_batch_keeps_to_its_bounds)
{
    enum { N = 1000 };
    uint64_t *sizes = calloc(N, sizeof *sizes);
    size_t *lens = calloc(N, sizeof *lens);
    struct fetch_batch_task *t = calloc(N, sizeof *t);
    size_t covered = 0;

    for (size_t i = 0; i < N; i++) {
        sizes[i] = i % 7 == 0 ? 0 : (i * 7919) % FETCH_BATCH_FILE_MAX;
        lens[i] = i % 13 == 0 ? 3000 : 20;
    }
    size_t n = fetch_batch_group(sizes, lens, N, 1, t);
    for (size_t k = 0; k < n; k++) {
        uint64_t bytes = 0;
        size_t paths = 0;

        ck_assert_uint_eq(t[k].first, covered); /* in order, none left out */
        for (size_t i = t[k].first; i < t[k].first + t[k].n; i++) {
            bytes += sizes[i];
            paths += lens[i];
        }
        ck_assert_uint_eq(bytes, t[k].bytes);
        ck_assert_uint_le(t[k].n, RCAT_BATCH_FILES);
        ck_assert_uint_le(bytes, FETCH_BATCH_BUDGET);
        ck_assert_uint_le(paths, FETCH_BATCH_PATHS);
        ck_assert_uint_le(FETCH_BATCH_PATHS, RCAT_BATCH_PATH_BYTES);
        covered += t[k].n;
    }
    ck_assert_uint_eq(covered, N);
    ck_assert_uint_lt(n, N / 2); /* they did go together */
    free(sizes);
    free(lens);
    free(t);
}
END_TEST

static Suite *batch_suite(void)
{
    Suite *s = suite_create("fetch_batch");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, a_whole_reply_is_taken);
    tcase_add_test(tc, lengths_that_do_not_add_up_are_refused);
    tcase_add_test(tc, entries_that_lie_are_refused);
    tcase_add_test(tc, small_files_go_together_large_ones_alone);
    tcase_add_test(tc, a_batch_keeps_to_its_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(batch_suite());
}
