/*
 * test_se_desc.c - which descriptors are refused before any packet goes out,
 * as a numbered table of stories, and rpc2_se_inode_of(): the handle it
 * fills opens the same file, and its mount fd is the caller's to close.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_by_handle_at */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <check.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include "skip.h"
#include "check_run.h"

static char buf8[8];

/* clang-format off */
#define D(dir_, seek_, quota_, kind_, ...)                                                         \
    {.type = RPC2_SE_SFTP, .direction = (dir_), .seek_offset = (seek_), .quota = (quota_),        \
     .file_kind = (kind_), .file = __VA_ARGS__}
#define F RPC2_SE_FETCH
#define S RPC2_SE_STORE
#define NAME(p_, m_) {.name = {.path = (p_), .mode = (m_)}}
#define FLUSH(p_, f_) {.name = {.path = (p_), .flush = (enum rpc2_se_flush)(f_)}}
#define FD(fd_) {.fd = {.fd = (fd_)}}
#define INODE(mfd_, n_) {.inode = {.mount_fd = (mfd_), .handle_bytes = (n_)}}
#define VM(b_, l_, m_) {.vm = {.buf = (b_), .len = (l_), .max = (m_)}}
#define GROW(b_, m_, c_) {.vm = {.buf = (b_), .max = (m_), .grow = 1, .cap = (c_)}}
/* clang-format on */

static const struct {
    const char *story;
    int want;
    struct rpc2_se_desc d;
} cases[] = {
    {/* 1 */ "plain fetch by name", 0, D(F, 0, -1, RPC2_SE_FILE_NAME, NAME("x", 0644))},
    {/* 2 */ "store by fd with offset and quota", 0, D(S, 10, 5, RPC2_SE_FILE_FD, FD(0))},
    {/* 3 */ "inode with a handle", 0, D(F, 0, -1, RPC2_SE_FILE_INODE, INODE(3, 8))},
    {/* 4 */ "inode relative to the cwd", 0, D(F, 0, -1, RPC2_SE_FILE_INODE, INODE(AT_FDCWD, 8))},
    {/* 5 */ "memory", 0, D(F, 0, -1, RPC2_SE_FILE_VM, VM(buf8, 8, 8))},
    {/* 6 */ "empty memory with no buffer", 0, D(F, 0, -1, RPC2_SE_FILE_VM, VM(NULL, 0, 0))},
    {/* 7 */ "quota 0 moves nothing, and is fine", 0, D(F, 0, 0, RPC2_SE_FILE_FD, FD(1))},
    {/* 8 */ "direction 0", RPC2_EINVAL, D(0, 0, -1, RPC2_SE_FILE_FD, FD(1))},
    {/* 9 */ "direction 3", RPC2_EINVAL, D(3, 0, -1, RPC2_SE_FILE_FD, FD(1))},
    {/* 10 */ "file kind 0", RPC2_EINVAL, D(F, 0, -1, 0, FD(1))},
    {/* 11 */ "file kind 5", RPC2_EINVAL, D(F, 0, -1, 5, FD(1))},
    {/* 12 */ "negative seek offset", RPC2_EINVAL, D(F, -1, -1, RPC2_SE_FILE_FD, FD(1))},
    {/* 13 */ "quota below -1", RPC2_EINVAL, D(F, 0, -2, RPC2_SE_FILE_FD, FD(1))},
    {/* 14 */ "offset + quota past the largest offset", RPC2_EINVAL,
     D(F, INT64_MAX - 4, 5, RPC2_SE_FILE_FD, FD(1))},
    {/* 15 */ "offset + quota at the largest offset", 0,
     D(F, INT64_MAX - 5, 5, RPC2_SE_FILE_FD, FD(1))},
    {/* 16 */ "NULL path", RPC2_EINVAL, D(F, 0, -1, RPC2_SE_FILE_NAME, NAME(NULL, 0644))},
    {/* 17 */ "empty path", RPC2_EINVAL, D(F, 0, -1, RPC2_SE_FILE_NAME, NAME("", 0644))},
    {/* 18 */ "mode with file-type bits", RPC2_EINVAL,
     D(S, 0, -1, RPC2_SE_FILE_NAME, NAME("x", S_IFREG | 0644))},
    {/* 19 */ "setuid mode bits are mode bits", 0,
     D(S, 0, -1, RPC2_SE_FILE_NAME, NAME("x", 04755))},
    {/* 20 */ "negative fd", RPC2_EINVAL, D(F, 0, -1, RPC2_SE_FILE_FD, FD(-1))},
    {/* 21 */ "empty handle", RPC2_EINVAL, D(F, 0, -1, RPC2_SE_FILE_INODE, INODE(3, 0))},
    {/* 22 */ "handle longer than the room for it", RPC2_EINVAL,
     D(F, 0, -1, RPC2_SE_FILE_INODE, INODE(3, RPC2_SE_HANDLE_MAX + 1))},
    {/* 23 */ "handle exactly the room", 0,
     D(F, 0, -1, RPC2_SE_FILE_INODE, INODE(3, RPC2_SE_HANDLE_MAX))},
    {/* 24 */ "negative mount fd", RPC2_EINVAL, D(F, 0, -1, RPC2_SE_FILE_INODE, INODE(-1, 8))},
    {/* 25 */ "memory source with bytes but no buffer", RPC2_EINVAL,
     D(S, 0, -1, RPC2_SE_FILE_VM, VM(NULL, 8, 0))},
    {/* 26 */ "memory sink with room but no buffer", RPC2_EINVAL,
     D(F, 0, -1, RPC2_SE_FILE_VM, VM(NULL, 0, 8))},
    {/* 27 */ "memory offset past both len and max", RPC2_EINVAL,
     D(F, 9, -1, RPC2_SE_FILE_VM, VM(buf8, 8, 8))},
    {/* 28 */ "memory offset at the end", 0, D(F, 8, -1, RPC2_SE_FILE_VM, VM(buf8, 8, 0))},
    {/* 29 */ "growing sink, the library's buffer, no limit", 0,
     D(F, 0, -1, RPC2_SE_FILE_VM, GROW(NULL, 0, 0))},
    {/* 30 */ "growing sink with a limit and an offset far in", 0,
     D(F, 1000, -1, RPC2_SE_FILE_VM, GROW(NULL, 4096, 0))},
    {/* 31 */ "growing sink with an offset past its limit", RPC2_EINVAL,
     D(F, 5000, -1, RPC2_SE_FILE_VM, GROW(NULL, 4096, 0))},
    {/* 32 */ "growing sink claiming room it has no buffer for", RPC2_EINVAL,
     D(F, 0, -1, RPC2_SE_FILE_VM, GROW(NULL, 0, 64))},
    {/* 33 */ "a store flushed at the end", 0, D(S, 0, -1, RPC2_SE_FILE_NAME, FLUSH("x", 2))},
    {/* 34 */ "an unknown flush", RPC2_EINVAL, D(S, 0, -1, RPC2_SE_FILE_NAME, FLUSH("x", 3))},
    {/* 35 */ "a negative flush", RPC2_EINVAL, D(S, 0, -1, RPC2_SE_FILE_NAME, FLUSH("x", -1))},
};

/* What the init helper makes is the whole file, and valid once it names a
 * file; rpc2_se_vm_free leaves alone what the library did not allocate. */
START_TEST(init_helper_and_vm_free)
{
    struct rpc2_se_desc d;

    memset(&d, 0x5a, sizeof d);
    rpc2_se_desc_init(&d, RPC2_SE_STORE);
    ck_assert_int_eq(d.type, RPC2_SE_SFTP);
    ck_assert_int_eq(d.direction, RPC2_SE_STORE);
    ck_assert_int_eq(d.seek_offset, 0);
    ck_assert_int_eq(d.quota, RPC2_SE_NO_QUOTA);
    ck_assert_int_eq(d.bytes_transferred, 0);
    ck_assert_ptr_null(d.progress);
    d.file_kind = RPC2_SE_FILE_FD;
    d.file.fd.fd = 0;
    ck_assert_int_eq(rpc2_se_desc_check(&d), 0);

    rpc2_se_desc_init(&d, RPC2_SE_FETCH);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf8; /* the caller's, not grown: not freed */
    d.file.vm.max = sizeof buf8;
    rpc2_se_vm_free(&d);
    ck_assert_ptr_eq(d.file.vm.buf, buf8);
    d.file.vm.grow = 1;
    d.file.vm.buf = malloc(10);
    d.file.vm.cap = 10;
    rpc2_se_vm_free(&d);
    ck_assert_ptr_null(d.file.vm.buf);
    ck_assert_uint_eq(d.file.vm.cap, 0);
    rpc2_se_vm_free(NULL);
}
END_TEST

START_TEST(table)
{
    const struct rpc2_se_desc *d = &cases[_i].d;
    int got = rpc2_se_desc_check(d);

    ck_assert_msg(got == cases[_i].want, "case %d (%s): got %s, want %s", _i + 1, cases[_i].story,
                  rpc2_errname(got), rpc2_errname(cases[_i].want));
}
END_TEST

START_TEST(type_and_null)
{
    struct rpc2_se_desc d = D(F, 0, -1, RPC2_SE_FILE_FD, FD(1));

    ck_assert_int_eq(rpc2_se_desc_check(NULL), RPC2_EINVAL);
    d.type = 0;
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_ENOSETYPE);
    d.type = 77;
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_ENOSETYPE);
}
END_TEST

START_TEST(path_too_long)
{
    size_t n = 5000;
    char *p = malloc(n + 1);
    struct rpc2_se_desc d = D(F, 0, -1, RPC2_SE_FILE_NAME, NAME(p, 0644));

    memset(p, 'a', n);
    p[n] = '\0';
    ck_assert_int_eq(rpc2_se_desc_check(&d), RPC2_EINVAL);
    free(p);
}
END_TEST

/* The handle must reopen the very file: same inode, same bytes. */
START_TEST(inode_of_reopens_the_file)
{
    char dir[] = "/tmp/se_desc.XXXXXX", path[64], link[64], got[6] = {0};
    struct rpc2_se_desc d = D(F, 0, -1, RPC2_SE_FILE_FD, FD(1));
    struct stat a, b;
    int fd;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/file", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_eq(write(fd, "hello", 5), 5);
    close(fd);
    ck_assert_int_eq(symlink("file", link), 0);

    ck_assert_int_eq(rpc2_se_inode_of(link, &d), 0);
    ck_assert_int_eq(d.file_kind, RPC2_SE_FILE_INODE);
    ck_assert_int_ge(d.file.inode.mount_fd, 0);
    ck_assert_int_gt(d.file.inode.handle_bytes, 0);
    ck_assert_int_eq(rpc2_se_desc_check(&d), 0);

    union {
        struct file_handle fh;
        unsigned char raw[sizeof(struct file_handle) + RPC2_SE_HANDLE_MAX];
    } h;
    h.fh.handle_bytes = d.file.inode.handle_bytes;
    h.fh.handle_type = d.file.inode.handle_type;
    memcpy(h.fh.f_handle, d.file.inode.handle, d.file.inode.handle_bytes);
    fd = open_by_handle_at(d.file.inode.mount_fd, &h.fh, O_RDONLY);
    if (fd < 0 && errno == EPERM && !machine_has_capability(CAP_DAC_READ_SEARCH)) {
        test_skip("inode_of_reopens_the_file", false, "no CAP_DAC_READ_SEARCH, reopen not tried");
    } else {
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read(fd, got, 5), 5);
        ck_assert_str_eq(got, "hello");
        ck_assert_int_eq(fstat(fd, &a), 0);
        ck_assert_int_eq(stat(path, &b), 0);
        ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
        close(fd);
    }
    close(d.file.inode.mount_fd);
    unlink(link);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(inode_of_refuses)
{
    struct rpc2_se_desc d = D(F, 0, -1, RPC2_SE_FILE_FD, FD(1));

    ck_assert_int_eq(rpc2_se_inode_of("/nonexistent/file", &d), RPC2_ENOENT);
    ck_assert_int_eq(rpc2_se_inode_of(NULL, &d), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_se_inode_of("", &d), RPC2_EINVAL);
    ck_assert_int_eq(rpc2_se_inode_of("/tmp", NULL), RPC2_EINVAL);
    /* untouched on failure */
    ck_assert_int_eq(d.file_kind, RPC2_SE_FILE_FD);
    ck_assert_int_eq(d.file.fd.fd, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("se_desc");
    TCase *t = tcase_create("se_desc");
    tcase_add_loop_test(t, table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(t, type_and_null);
    tcase_add_test(t, init_helper_and_vm_free);
    tcase_add_test(t, path_too_long);
    tcase_add_test(t, inode_of_reopens_the_file);
    tcase_add_test(t, inode_of_refuses);
    suite_add_tcase(s, t);
    return check_run(s);
}
