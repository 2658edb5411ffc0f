/*
 * test_namedsum.c - the named sums of a file where it lies (sftp/namedsum.c,
 * rpc2_se_sum_fd): the digests md5sum, sha1sum, sha256sum and `xxhsum -H2`
 * print for the same bytes, a range of a file, a file shorter than the
 * range asked for, a file larger than one read, and every refusal.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "check_run.h"

/* A file holding bytes, open for reading, already unlinked. */
static int file_of(const void *bytes, size_t n)
{
    char path[] = "/tmp/test_namedsum.XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
    return fd;
}

static void hex_of(const unsigned char *sum, unsigned len, char *out)
{
    for (unsigned i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", sum[i]);
}

/* The sum of fd's range as hex, checking what the call says it summed. */
static void expect_sum(int fd, int type, uint64_t offset, int64_t length, uint64_t summed,
                       const char *hex)
{
    unsigned char sum[RPC2_SE_SUM_MAX];
    char got[2 * RPC2_SE_SUM_MAX + 1];
    unsigned len = 99;
    uint64_t bytes = 99;

    ck_assert_int_eq(rpc2_se_sum_fd(fd, type, offset, length, sum, &len, &bytes), 0);
    ck_assert_uint_eq(len, rpc2_se_sum_len(type));
    ck_assert_uint_eq(bytes, summed);
    hex_of(sum, len, got);
    ck_assert_str_eq(got, hex);
}

START_TEST(sums_are_the_ones_the_tools_print)
{
    int fd = file_of("abc", 3);

    expect_sum(fd, RPC2_SE_SUM_MD5, 0, -1, 3, "900150983cd24fb0d6963f7d28e17f72");
    expect_sum(fd, RPC2_SE_SUM_SHA1, 0, -1, 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    expect_sum(fd, RPC2_SE_SUM_SHA256, 0, -1, 3,
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sum(fd, RPC2_SE_SUM_XXH128, 0, -1, 3, "06b05ab6733a618578af5f94892f3950");
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 3); /* pread: the offset stays */
    close(fd);
}
END_TEST

START_TEST(a_range_is_summed_alone)
{
    int fd = file_of("xabcx", 5);

    expect_sum(fd, RPC2_SE_SUM_MD5, 1, 3, 3, "900150983cd24fb0d6963f7d28e17f72");
    /* a range past the end: the bytes there are, and how many */
    expect_sum(fd, RPC2_SE_SUM_MD5, 4, 100, 1, "9dd4e461268c8034f5c8564e155c67a6"); /* "x" */
    expect_sum(fd, RPC2_SE_SUM_MD5, 5, -1, 0, "d41d8cd98f00b204e9800998ecf8427e");  /* "" */
    expect_sum(fd, RPC2_SE_SUM_MD5, 1000, -1, 0, "d41d8cd98f00b204e9800998ecf8427e");
    expect_sum(fd, RPC2_SE_SUM_MD5, 0, 0, 0, "d41d8cd98f00b204e9800998ecf8427e");
    close(fd);
}
END_TEST

/* Three reads' worth (a read is 1 MiB): every read joins the sum once, in
 * order, as md5sum's figure for the same 3 MiB of 'a' says. */
START_TEST(a_file_larger_than_one_read)
{
    size_t n = 3u << 20;
    char *a = malloc(n);
    int fd;

    ck_assert_ptr_nonnull(a);
    memset(a, 'a', n);
    fd = file_of(a, n);
    free(a);
    expect_sum(fd, RPC2_SE_SUM_MD5, 0, -1, n, "6a11a8872b36343799a15617bea78cef");
    close(fd);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    unsigned char sum[RPC2_SE_SUM_MAX];
    unsigned len;
    uint64_t bytes;
    int fd = file_of("abc", 3);

    ck_assert_int_eq(rpc2_se_sum_fd(fd, RPC2_SE_SUM_NONE, 0, -1, sum, &len, &bytes), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_se_sum_fd(fd, 99, 0, -1, sum, &len, &bytes), RPC2_EINVAL);
    ck_assert_int_eq(
        rpc2_se_sum_fd(fd, RPC2_SE_SUM_MD5, (uint64_t)INT64_MAX + 1, -1, sum, &len, &bytes),
        RPC2_EINVAL);
    ck_assert_int_eq(rpc2_se_sum_fd(fd, RPC2_SE_SUM_MD5, 0, -2, sum, &len, &bytes), RPC2_EINVAL);
    ck_assert_uint_eq(len, 0);
    close(fd);
    /* a read that fails: its error, and errno as the read left it */
    ck_assert_int_eq(rpc2_se_sum_fd(fd, RPC2_SE_SUM_MD5, 0, -1, sum, &len, &bytes), RPC2_EINVAL);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_uint_eq(bytes, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("namedsum");
    TCase *t = tcase_create("namedsum");

    tcase_add_test(t, sums_are_the_ones_the_tools_print);
    tcase_add_test(t, a_range_is_summed_alone);
    tcase_add_test(t, a_file_larger_than_one_read);
    tcase_add_test(t, bad_arguments_are_refused);
    suite_add_tcase(s, t);
    return check_run(s);
}
