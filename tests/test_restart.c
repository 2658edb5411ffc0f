/*
 * test_restart.c - the restart-point file (sftp/restart.c): the last point
 * read back as written; a damaged byte anywhere in the last record, a torn
 * append or a file cut short is detected (RPC2_EINTEGRITY, the transfer
 * then starts over), never taken for a point; an append after a torn one
 * lands at a record boundary; the partial's names fit in NAME_MAX.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rpc2/rpc2.h>

#include "restart.h"
#include "check_run.h"

static int temp_file(void)
{
    char path[] = "/tmp/test_restart.XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

static struct restart_point point(uint64_t offset, uint8_t fill)
{
    struct restart_point p = {.offset = offset};

    memset(p.sum, fill, sizeof p.sum);
    p.sum[0] = (uint8_t)offset;
    return p;
}

START_TEST(last_point_is_read_back)
{
    int fd = temp_file();
    struct restart_point p;

    ck_assert_int_eq(restart_last(fd, &p), 0); /* empty: none */
    for (uint64_t i = 1; i <= 5; i++) {
        struct restart_point w = point(i << 26, (uint8_t)(0x10 * i));

        ck_assert_int_eq(restart_append(fd, &w), 0);
        ck_assert_int_eq(restart_last(fd, &p), 1);
        ck_assert_uint_eq(p.offset, w.offset);
        ck_assert_mem_eq(p.sum, w.sum, sizeof p.sum);
    }
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 5 * RESTART_RECORD_SIZE);
    ck_assert_int_eq(restart_clear(fd), 0);
    ck_assert_int_eq(restart_last(fd, &p), 0);
    close(fd);
}
END_TEST

START_TEST(every_damaged_byte_is_detected)
{
    struct restart_point w = point(123456789, 0xab), p;
    uint8_t rec[RESTART_RECORD_SIZE], bad[RESTART_RECORD_SIZE];

    restart_record_encode(&w, rec);
    ck_assert_int_eq(restart_record_decode(rec, &p), 0);
    for (int i = 0; i < RESTART_RECORD_SIZE; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, rec, sizeof bad);
            bad[i] ^= (uint8_t)(1u << bit);
            ck_assert_int_eq(restart_record_decode(bad, &p), RPC2_EINTEGRITY);
        }
    }
    /* in a file: the last record damaged is the file damaged */
    int fd = temp_file();
    ck_assert_int_eq(restart_append(fd, &w), 0);
    ck_assert_int_eq(restart_append(fd, &w), 0);
    uint8_t x = 0xff;
    ck_assert_int_eq(pwrite(fd, &x, 1, RESTART_RECORD_SIZE + 12), 1);
    ck_assert_int_eq(restart_last(fd, &p), RPC2_EINTEGRITY);
    /* zeros (a power cut's unwritten block) are no record either */
    memset(bad, 0, sizeof bad);
    ck_assert_int_eq(pwrite(fd, bad, sizeof bad, RESTART_RECORD_SIZE), RESTART_RECORD_SIZE);
    ck_assert_int_eq(restart_last(fd, &p), RPC2_EINTEGRITY);
    close(fd);
}
END_TEST

START_TEST(torn_and_truncated_files_are_detected)
{
    int fd = temp_file();
    struct restart_point a = point(1 << 20, 1), b = point(2 << 20, 2), p;

    ck_assert_int_eq(restart_append(fd, &a), 0);
    ck_assert_int_eq(restart_append(fd, &b), 0);
    for (off_t cut = 2 * RESTART_RECORD_SIZE - 1; cut > 0; cut -= 7) {
        ck_assert_int_eq(ftruncate(fd, cut), 0);
        if (cut % RESTART_RECORD_SIZE)
            ck_assert_int_eq(restart_last(fd, &p), RPC2_EINTEGRITY);
    }
    /* an append after a torn one starts at a record boundary: whole again */
    ck_assert_int_eq(restart_clear(fd), 0);
    ck_assert_int_eq(restart_append(fd, &a), 0);
    ck_assert_int_eq(ftruncate(fd, RESTART_RECORD_SIZE + 13), 0);
    ck_assert_int_eq(restart_append(fd, &b), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_END), 2 * RESTART_RECORD_SIZE);
    ck_assert_int_eq(restart_last(fd, &p), 1);
    ck_assert_uint_eq(p.offset, b.offset);
    close(fd);
}
END_TEST

START_TEST(names_fit_and_pair)
{
    char base[NAME_MAX + 1];
    char *part, *points;

    part = restart_part_name("file.bin");
    points = restart_points_name("file.bin");
    ck_assert_str_eq(part, ".file.bin.rcat-part");
    ck_assert_str_eq(points, ".file.bin.rcat-part.rp");
    free(part);
    free(points);
    memset(base, 'n', NAME_MAX);
    base[NAME_MAX] = '\0';
    part = restart_part_name(base);
    points = restart_points_name(base);
    ck_assert_uint_le(strlen(part), NAME_MAX);
    ck_assert_uint_le(strlen(points), NAME_MAX);
    ck_assert_int_eq(strncmp(part, points, strlen(part)), 0); /* the pair stays a pair */
    free(part);
    free(points);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("restart");
    TCase *t = tcase_create("restart");
    tcase_add_test(t, last_point_is_read_back);
    tcase_add_test(t, every_damaged_byte_is_detected);
    tcase_add_test(t, torn_and_truncated_files_are_detected);
    tcase_add_test(t, names_fit_and_pair);
    suite_add_tcase(s, t);
    return check_run(s);
}
