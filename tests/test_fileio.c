/*
 * test_fileio.c - every descriptor kind as source and sink against a model
 * of what the bytes must be, then the stories users rely on: transfers to
 * one fd concatenate like cat, pipes and /dev/null, atomic replacement that
 * leaves nothing behind on failure, no_clobber, strict quotas, memory
 * overflow, offsets past 4 GiB in sparse files, file handles with and
 * without the capability, and the errors (missing, directory, permission,
 * disk full). Tests that need privileges fork a child that takes or drops
 * them, and say so when the machine does not allow it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_by_handle_at, unshare, setresuid */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <check.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include <xxhash.h>

#include "fileio.h"
#include "skip.h"
#include "check_run.h"

#define MiB (1024 * 1024)
#define GiB (1024LL * MiB)
#define SKIP 77 /* a child's exit status: not possible on this machine */

/* The tcase's scratch directory, made and removed by the unchecked fixture
 * in the parent; tests (forked) only make names under it. */
static char scratch[] = "/tmp/test_fileio.XXXXXX";

static void scratch_make(void)
{
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void scratch_remove(void)
{
    nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *at(char *out, const char *name)
{
    snprintf(out, 256, "%s/%s", scratch, name);
    return out;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void put_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, data, n, 0), (ssize_t)n);
    close(fd);
}

/* The file's bytes (NULL if it does not exist); *n gets its size. */
static uint8_t *get_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    uint8_t *p;

    if (fd < 0)
        return NULL;
    ck_assert_int_eq(fstat(fd, &st), 0);
    *n = (size_t)st.st_size;
    p = malloc(*n ? *n : 1);
    ck_assert_int_eq(pread(fd, p, *n, 0), (ssize_t)*n);
    close(fd);
    return p;
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static struct rpc2_se_desc desc(enum rpc2_se_file_kind kind, int64_t seek, int64_t quota)
{
    struct rpc2_se_desc d;

    memset(&d, 0, sizeof d);
    d.type = RPC2_SE_SFTP;
    d.direction = RPC2_SE_FETCH;
    d.file_kind = kind;
    d.seek_offset = seek;
    d.quota = quota;
    return d;
}

static struct rpc2_se_desc desc_name(const char *path, int64_t seek, int64_t quota)
{
    struct rpc2_se_desc d = desc(RPC2_SE_FILE_NAME, seek, quota);

    d.file.name.path = path;
    d.file.name.mode = 0644;
    return d;
}

static struct rpc2_se_desc desc_fd(int fd, int64_t seek, int64_t quota)
{
    struct rpc2_se_desc d = desc(RPC2_SE_FILE_FD, seek, quota);

    d.file.fd.fd = fd;
    return d;
}

static struct rpc2_se_desc desc_vm(void *buf, size_t len, size_t max, int64_t seek, int64_t quota)
{
    struct rpc2_se_desc d = desc(RPC2_SE_FILE_VM, seek, quota);

    d.file.vm.buf = buf;
    d.file.vm.len = len;
    d.file.vm.max = max;
    return d;
}

/* open_by_handle_at needs CAP_DAC_READ_SEARCH: inode cases are skipped,
 * saying so, where the process lacks it. The capability set is asked,
 * not the code under test: an EACCES from fileio where the capability is
 * there is a failure, not a reason to skip. */
static int handles_permitted(const char *test)
{
    if (machine_has_capability(CAP_DAC_READ_SEARCH))
        return 1;
    test_skip(test, false, "no CAP_DAC_READ_SEARCH, file handle cases not run");
    return 0;
}

/* ---- drivers: the machine's view, through fileio_reader/writer ---------- */

/* Reads the source to its end in uneven chunks into out (room for cap). */
static int drain(struct fileio *f, uint8_t *out, size_t cap, size_t *got)
{
    static const size_t chunks[] = {1, 7, 4096, 65536, 1400, 100000};
    struct sftp_reader r = fileio_reader(f);
    size_t n = 0;

    for (size_t i = 0;; i++) {
        size_t want = chunks[i % 6] < cap - n ? chunks[i % 6] : cap - n;
        ssize_t k;

        if (want == 0)
            break;
        k = r.read(r.arg, out + n, want);
        if (k < 0)
            return (int)k;
        n += (size_t)k;
        if ((size_t)k < want)
            break;
    }
    *got = n;
    return 0;
}

static int source_all(struct rpc2_se_desc *d, unsigned flags, uint8_t *out, size_t cap, size_t *got,
                      int64_t *size)
{
    struct fileio *f;
    int rc = fileio_open_source(d, flags, &f, NULL);

    if (rc < 0)
        return rc;
    if (size)
        *size = fileio_source_size(f);
    rc = drain(f, out, cap, got);
    if (rc == 0)
        rc = fileio_finish(f, 1);
    fileio_free(f);
    return rc;
}

/* Writes data as 1400-byte packets: last to first when the sink allows any
 * order (as after loss), else in order. */
static int feed(struct fileio *f, const uint8_t *data, size_t n)
{
    struct sftp_writer w = fileio_writer(f);
    size_t packets = (n + 1399) / 1400;

    for (size_t i = 0; i < packets; i++) {
        size_t k = w.in_order ? i : packets - 1 - i;
        size_t len = n - k * 1400 < 1400 ? n - k * 1400 : 1400;
        int rc = w.write(w.arg, k * 1400, data + k * 1400, len);

        if (rc < 0)
            return rc;
    }
    return 0;
}

static int sink_all(struct rpc2_se_desc *d, unsigned flags, const uint8_t *data, size_t n)
{
    struct fileio *f;
    int rc = fileio_open_sink(d, flags, &f, NULL);

    if (rc < 0)
        return rc;
    rc = feed(f, data, n);
    rc = fileio_finish(f, rc == 0) ?: rc;
    fileio_free(f);
    return rc;
}

/* ---- every kind, both roles, against the model ------------------------- */

static const size_t sizes[] = {0, 1, 1000, MiB};
static const struct {
    int64_t seek, quota;
} variants[] = {{0, -1}, {3, -1}, {0, 500}, {7, 1}, {2, 0}};
#define N_KINDS 4
#define N_SIZES 4
#define N_VARIANTS 5

struct model {
    size_t lo, hi; /* the bytes of the data that move */
    int exceeded;
};

static struct model model(size_t n, int64_t seek, int64_t quota)
{
    struct model m;
    uint64_t end = quota < 0 ? n : (uint64_t)seek + (uint64_t)quota;

    m.lo = (uint64_t)seek < n ? (size_t)seek : n;
    m.hi = end < n ? (size_t)end : n;
    if (m.hi < m.lo)
        m.hi = m.lo;
    m.exceeded = quota >= 0 && end < n;
    return m;
}

/* A 6-byte prefix in front of fd kinds shows the offset is relative to the
 * fd's position, and the position after is checked. */
static void matrix_source(enum rpc2_se_file_kind kind, size_t n, int64_t seek, int64_t quota,
                          int idx)
{
    char path[256], name[32];
    uint8_t *data = pattern(n, (unsigned)idx), *out = malloc(n + 2);
    struct model m = model(n, seek, quota);
    struct rpc2_se_desc d;
    int fd = -1, rc;
    int64_t size;
    size_t got = 0;

    snprintf(name, sizeof name, "src%d", idx);
    at(path, name);
    if (kind == RPC2_SE_FILE_FD) {
        put_file(path, "PREFIX", 6);
        fd = open(path, O_RDWR | O_APPEND);
        ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
        ck_assert_int_eq(lseek(fd, 6, SEEK_SET), 6);
        d = desc_fd(fd, seek, quota);
    } else if (kind == RPC2_SE_FILE_VM) {
        d = desc_vm(data, n, 0, seek, quota);
    } else {
        put_file(path, data, n);
        d = desc_name(path, seek, quota);
        if (kind == RPC2_SE_FILE_INODE)
            ck_assert_int_eq(rpc2_se_inode_of(path, &d), 0);
    }

    rc = source_all(&d, 0, out, n + 2, &got, &size);
    if (kind == RPC2_SE_FILE_VM && (uint64_t)seek > n) {
        ck_assert_int_eq(rc, RPC2_EINVAL); /* past the buffer */
    } else {
        ck_assert_msg(rc == 0, "source kind %d: %s", kind, rpc2_errname(rc));
        ck_assert_uint_eq(got, m.hi - m.lo);
        ck_assert(memcmp(out, data + m.lo, got) == 0);
        ck_assert_uint_eq(d.bytes_transferred, got);
        ck_assert_int_eq(d.quota_exceeded, m.exceeded);
        /* an empty regular file might be a /proc file: size unknown */
        if (n == 0 && kind != RPC2_SE_FILE_VM && kind != RPC2_SE_FILE_FD && quota != 0)
            ck_assert_int_eq(size, -1);
        else
            ck_assert_int_eq(size, (int64_t)got);
    }
    if (fd >= 0) {
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 6 + seek + (int64_t)got);
        close(fd);
    }
    if (kind == RPC2_SE_FILE_INODE)
        close(d.file.inode.mount_fd);
    free(data);
    free(out);
}

static void matrix_sink(enum rpc2_se_file_kind kind, size_t n, int64_t seek, int64_t quota, int idx)
{
    char path[256], name[32];
    uint8_t *data = pattern(n, (unsigned)idx), *buf = NULL, *got;
    struct model m = model(n, 0, quota); /* the sink's quota counts from its offset */
    size_t moved = m.hi, len = 0, head = kind == RPC2_SE_FILE_FD ? 6 : 0;
    struct rpc2_se_desc d;
    int fd = -1;

    snprintf(name, sizeof name, "dst%d", idx);
    at(path, name);
    if (kind == RPC2_SE_FILE_FD) {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        ck_assert_int_eq(write(fd, "HEADER", 6), 6);
        d = desc_fd(fd, seek, quota);
    } else if (kind == RPC2_SE_FILE_VM) {
        buf = malloc((size_t)seek + n + 16);
        memset(buf, 0xee, (size_t)seek + n + 16);
        d = desc_vm(buf, 0, (size_t)seek + n + 16, seek, quota);
    } else {
        d = desc_name(path, seek, quota);
        if (kind == RPC2_SE_FILE_INODE) {
            put_file(path, "", 0);
            ck_assert_int_eq(rpc2_se_inode_of(path, &d), 0);
        }
    }

    ck_assert_int_eq(sink_all(&d, 0, data, n), 0);
    ck_assert_uint_eq(d.bytes_transferred, moved);
    ck_assert_int_eq(d.quota_exceeded, m.exceeded);
    if (kind == RPC2_SE_FILE_VM) {
        ck_assert_uint_eq(d.file.vm.len, moved);
        ck_assert(memcmp(buf + seek, data, moved) == 0);
        for (size_t i = 0; i < (size_t)seek; i++)
            ck_assert_uint_eq(buf[i], 0xee);
        ck_assert_uint_eq(buf[(size_t)seek + moved], 0xee);
    } else {
        got = get_file(path, &len);
        ck_assert_ptr_nonnull(got);
        /* nothing written: nothing extends the file to the offset either */
        ck_assert_uint_eq(len, moved ? head + (size_t)seek + moved : head);
        if (moved) {
            for (size_t i = head; i < head + (size_t)seek; i++)
                ck_assert_uint_eq(got[i], 0);
            ck_assert(memcmp(got + head + seek, data, moved) == 0);
        }
        free(got);
    }
    if (fd >= 0) {
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 6 + seek + (int64_t)moved);
        close(fd);
    }
    if (kind == RPC2_SE_FILE_INODE)
        close(d.file.inode.mount_fd);
    free(data);
    free(buf);
}

START_TEST(every_kind_both_ways)
{
    int i = _i;
    enum rpc2_se_file_kind kind = (enum rpc2_se_file_kind)(i % N_KINDS + 1);
    size_t n = sizes[i / N_KINDS % N_SIZES];
    int v = i / (N_KINDS * N_SIZES) % N_VARIANTS;
    int sink = i / (N_KINDS * N_SIZES * N_VARIANTS);

    if (kind == RPC2_SE_FILE_INODE && !handles_permitted("every_kind_both_ways"))
        return;
    if (sink)
        matrix_sink(kind, n, variants[v].seek, variants[v].quota, i);
    else
        matrix_source(kind, n, variants[v].seek, variants[v].quota, i);
}
END_TEST

/* ---- fd stories --------------------------------------------------------- */

START_TEST(two_sinks_into_one_fd_concatenate)
{
    char path[256];
    uint8_t *a = pattern(1000, 1), *b = pattern(3000, 2), *got;
    int fd = open(at(path, "cat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct rpc2_se_desc d = desc_fd(fd, 0, -1);
    size_t n;

    ck_assert_int_eq(sink_all(&d, 0, a, 1000), 0);
    d = desc_fd(fd, 0, -1);
    ck_assert_int_eq(sink_all(&d, 0, b, 3000), 0); /* written last packet first */
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 4000);
    got = get_file(path, &n);
    ck_assert_uint_eq(n, 4000);
    ck_assert(memcmp(got, a, 1000) == 0 && memcmp(got + 1000, b, 3000) == 0);
    close(fd);
    free(a), free(b), free(got);
}
END_TEST

START_TEST(two_sources_from_one_fd_follow_each_other)
{
    char path[256];
    uint8_t *data = pattern(10000, 3), out[10001];
    int fd;
    struct rpc2_se_desc d;
    size_t got;

    put_file(at(path, "src"), data, 10000);
    fd = open(path, O_RDONLY);
    d = desc_fd(fd, 0, 4000);
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &got, NULL), 0);
    ck_assert_uint_eq(got, 4000);
    ck_assert_int_eq(d.quota_exceeded, 1);
    d = desc_fd(fd, 100, -1); /* skips 100 after the first 4000 */
    ck_assert_int_eq(source_all(&d, 0, out + 4000, sizeof out - 4000, &got, NULL), 0);
    ck_assert_uint_eq(got, 5900);
    ck_assert(memcmp(out, data, 4000) == 0 && memcmp(out + 4000, data + 4100, 5900) == 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 10000);
    close(fd);
    free(data);
}
END_TEST

START_TEST(append_fd_is_a_stream)
{
    char path[256];
    uint8_t *data = pattern(5000, 4), *got;
    int fd;
    struct rpc2_se_desc d;
    struct fileio *f;
    size_t n;

    put_file(at(path, "log"), "abc", 3);
    fd = open(path, O_WRONLY | O_APPEND);
    d = desc_fd(fd, 0, -1);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_in_order(f), 1);
    ck_assert_int_eq(feed(f, data, 5000), 0);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    got = get_file(path, &n);
    ck_assert_uint_eq(n, 5003);
    ck_assert(memcmp(got, "abc", 3) == 0 && memcmp(got + 3, data, 5000) == 0);
    close(fd);
    free(data), free(got);
}
END_TEST

/* fd.positional: the bytes at seek_offset itself, the fd's position left
 * where it was, both ways; anything but a regular file refused. */
START_TEST(positional_fd_keeps_its_position)
{
    char path[256];
    uint8_t *data = pattern(10000, 5), out[10001], *got;
    int p[2], fd;
    struct rpc2_se_desc d;
    size_t n;

    put_file(at(path, "pos"), data, 10000);
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(lseek(fd, 17, SEEK_SET), 17);
    d = desc_fd(fd, 100, -1);
    d.file.fd.positional = 1;
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &n, NULL), 0);
    ck_assert_uint_eq(n, 9900);
    ck_assert(memcmp(out, data + 100, 9900) == 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 17);
    close(fd);
    fd = open(at(path, "pos_sink"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    d = desc_fd(fd, 0, -1);
    d.file.fd.positional = 1;
    ck_assert_int_eq(sink_all(&d, 0, data, 10000), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
    got = get_file(path, &n);
    ck_assert_uint_eq(n, 10000);
    ck_assert(memcmp(got, data, 10000) == 0);
    close(fd);
    ck_assert_int_eq(pipe(p), 0);
    d = desc_fd(p[0], 0, -1);
    d.file.fd.positional = 1;
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &n, NULL), RPC2_EINVAL);
    close(p[0]), close(p[1]);
    free(data), free(got);
}
END_TEST

/* fd.st: the caller's fstat is the version sent. A file that changed
 * after the caller judged it (here: grew) ends RPC2_ECHANGED, as if it had
 * changed during the transfer, never as the later version; the size sent
 * is the caller's. Without fd.st the library's own fstat at open would
 * take the grown file as it is. */
START_TEST(positional_fd_takes_the_callers_stat)
{
    char path[256];
    uint8_t *data = pattern(12000, 9), out[12001];
    struct stat judged;
    struct rpc2_se_desc d;
    int64_t size = 0;
    size_t n;
    int fd;

    put_file(at(path, "judged"), data, 10000);
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &judged), 0);
    d = desc_fd(fd, 0, -1);
    d.file.fd.positional = 1;
    d.file.fd.st = &judged;
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &n, &size), 0);
    ck_assert_int_eq(size, 10000);
    ck_assert_uint_eq(n, 10000);
    ck_assert(memcmp(out, data, 10000) == 0);

    ck_assert_int_eq(pwrite(fd, data + 10000, 2000, 10000), 2000);
    d = desc_fd(fd, 0, -1);
    d.file.fd.positional = 1;
    d.file.fd.st = &judged; /* taken before the file grew */
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &n, &size), RPC2_ECHANGED);
    ck_assert_int_eq(size, 10000);
    d.file.fd.st = NULL; /* the library's own: the file as it is now */
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &n, &size), 0);
    ck_assert_int_eq(size, 12000);
    ck_assert(memcmp(out, data, 12000) == 0);
    close(fd);
    free(data);
}
END_TEST

START_TEST(fd_refusals)
{
    int p[2], fd = open("/dev/null", O_RDONLY), closed = dup(0);
    struct rpc2_se_desc d = desc_fd(fd, 0, -1);
    struct fileio *f;
    const char *why = NULL;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, &why), RPC2_EINVAL); /* read-only fd */
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(f);
    d = desc_fd(p[1], 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EINVAL); /* write end */
    d = desc_fd(p[1], 5, -1);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EINVAL); /* offset, no seek */
    close(closed);
    d = desc_fd(closed, 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EINVAL);
    d = desc_fd(open(scratch, O_RDONLY | O_DIRECTORY), 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EISDIR);
    close(d.file.fd.fd), close(fd), close(p[0]), close(p[1]);
}
END_TEST

/* ---- pipes, sockets, devices -------------------------------------------- */

struct pump {
    int fd;
    uint8_t *data;
    size_t n; /* feeder: bytes to write; drainer: bytes read */
};

static void *feeder(void *arg)
{
    struct pump *p = arg;

    for (size_t done = 0; done < p->n;) {
        ssize_t k = write(p->fd, p->data + done, p->n - done);
        if (k <= 0)
            break; /* the reader went away early, as it may */
        done += (size_t)k;
    }
    close(p->fd);
    return NULL;
}

static void *drainer(void *arg)
{
    struct pump *p = arg;
    ssize_t k;

    while ((k = read(p->fd, p->data + p->n, 2 * MiB - p->n)) > 0)
        p->n += (size_t)k;
    return NULL;
}

/* 0: pipe, 1: pipe with O_NONBLOCK on our end, 2: socketpair */
static void stream_pair(int variant, int fds[2], int our_end)
{
    if (variant == 2)
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    else
        ck_assert_int_eq(pipe(fds), 0);
    if (variant == 1)
        fcntl(fds[our_end], F_SETFL, fcntl(fds[our_end], F_GETFL) | O_NONBLOCK);
}

START_TEST(stream_source)
{
    uint8_t *data = pattern(MiB, 5), *out = malloc(MiB + 1);
    int fds[2];
    struct pump p;
    pthread_t t;
    struct rpc2_se_desc d;
    size_t got;
    int64_t size;

    signal(SIGPIPE, SIG_IGN);
    stream_pair(_i, fds, 0);
    p = (struct pump){.fd = fds[1], .data = data, .n = MiB};
    pthread_create(&t, NULL, feeder, &p);
    d = desc_fd(fds[0], 5, -1); /* the offset is skipped by reading */
    ck_assert_int_eq(source_all(&d, 0, out, MiB + 1, &got, &size), 0);
    ck_assert_int_eq(size, -1);
    ck_assert_uint_eq(got, MiB - 5);
    ck_assert(memcmp(out, data + 5, got) == 0);
    pthread_join(t, NULL);
    close(fds[0]);
    free(data), free(out);
}
END_TEST

START_TEST(stream_source_quota)
{
    uint8_t *data = pattern(MiB, 6), out[2000];
    int fds[2];
    struct pump p;
    pthread_t t;
    struct rpc2_se_desc d = desc_fd(-1, 10, 1000);
    size_t got;

    signal(SIGPIPE, SIG_IGN);
    stream_pair(_i, fds, 0);
    p = (struct pump){.fd = fds[1], .data = data, .n = MiB};
    pthread_create(&t, NULL, feeder, &p);
    d.file.fd.fd = fds[0];
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &got, NULL), 0);
    ck_assert_uint_eq(got, 1000);
    ck_assert(memcmp(out, data + 10, 1000) == 0);
    ck_assert_int_eq(d.quota_exceeded, 1);
    d = desc_fd(fds[0], 0, 1000);
    ck_assert_int_eq(source_all(&d, FILEIO_STRICT_QUOTA, out, sizeof out, &got, NULL), RPC2_EQUOTA);
    close(fds[0]);
    pthread_join(t, NULL);
    free(data);
}
END_TEST

START_TEST(stream_sink)
{
    uint8_t *data = pattern(MiB, 7);
    int fds[2];
    struct pump p;
    pthread_t t;
    struct rpc2_se_desc d;
    struct fileio *f;

    stream_pair(_i, fds, 1);
    p = (struct pump){.fd = fds[0], .data = malloc(2 * MiB), .n = 0};
    pthread_create(&t, NULL, drainer, &p);
    d = desc_fd(fds[1], 0, -1);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_in_order(f), 1);
    ck_assert_int_eq(feed(f, data, MiB), 0);
    ck_assert_int_eq(fileio_write(f, 5, data, 10), RPC2_EINVAL); /* out of order */
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    d = desc_fd(fds[1], 0, 100); /* a second transfer follows, cut at its quota */
    ck_assert_int_eq(sink_all(&d, 0, data, 1000), 0);
    ck_assert_int_eq(d.quota_exceeded, 1);
    close(fds[1]);
    pthread_join(t, NULL);
    ck_assert_uint_eq(p.n, MiB + 100);
    ck_assert(memcmp(p.data, data, MiB) == 0 && memcmp(p.data + MiB, data, 100) == 0);
    close(fds[0]);
    free(data), free(p.data);
}
END_TEST

START_TEST(dev_null_sink)
{
    uint8_t *data = pattern(MiB, 8);
    int fd = open("/dev/null", O_WRONLY);
    struct rpc2_se_desc d = desc_fd(fd, 0, -1);
    struct fileio *f;

    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_in_order(f), 1);
    fileio_free(f);
    ck_assert_int_eq(sink_all(&d, 0, data, MiB), 0);
    ck_assert_uint_eq(d.bytes_transferred, MiB);
    d = desc_name("/dev/null", 0, -1);
    ck_assert_int_eq(sink_all(&d, 0, data, MiB), 0);
    ck_assert_uint_eq(d.bytes_transferred, MiB);
    d.file.name.atomic = 1; /* never replaces a device */
    ck_assert_int_eq(sink_all(&d, 0, data, 10), RPC2_EINVAL);
    close(fd);
    free(data);
}
END_TEST

START_TEST(devices_and_proc_by_name)
{
    uint8_t out[4096];
    struct rpc2_se_desc d = desc_name("/dev/zero", 10, 1000);
    size_t got;
    int64_t size;

    memset(out, 1, sizeof out);
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &got, &size), 0);
    ck_assert_uint_eq(got, 1000);
    ck_assert_int_eq(size, -1);
    ck_assert_int_eq(d.quota_exceeded, 1);
    for (size_t i = 0; i < got; i++)
        ck_assert_uint_eq(out[i], 0);
    d = desc_name("/proc/self/status", 0, -1); /* says size 0, has bytes */
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &got, &size), 0);
    ck_assert_int_eq(size, -1);
    ck_assert_uint_gt(got, 0);
    ck_assert_uint_eq(out[got - 1], '\n');
}
END_TEST

/* ---- name sinks --------------------------------------------------------- */

START_TEST(plain_sink_keeps_the_tail)
{
    char path[256];
    uint8_t *old = pattern(5000, 9), *data = pattern(1000, 10), *got;
    struct rpc2_se_desc d = desc_name(at(path, "keep"), 100, -1);
    size_t n;

    put_file(path, old, 5000);
    ck_assert_int_eq(sink_all(&d, 0, data, 1000), 0);
    got = get_file(path, &n);
    ck_assert_uint_eq(n, 5000);
    ck_assert(memcmp(got, old, 100) == 0 && memcmp(got + 100, data, 1000) == 0 &&
              memcmp(got + 1100, old + 1100, 3900) == 0);
    free(old), free(data), free(got);
}
END_TEST

/* A directory of the test's own: name and loop index. */
static void subdir(char *out, const char *name, int i)
{
    char leaf[64];

    snprintf(leaf, sizeof leaf, "%s%d", name, i);
    at(out, leaf);
    ck_assert_int_eq(mkdir(out, 0755), 0);
}

START_TEST(atomic_success)
{
    char dir[256], path[300];
    uint8_t *data = pattern(MiB, 11), *got;
    struct rpc2_se_desc d;
    struct stat st;
    size_t n;

    umask(022);
    subdir(dir, "atomic_ok", _i);
    snprintf(path, sizeof path, "%s/out", dir);
    put_file(path, "an older, longer file than the new one will be", 46);
    d = desc_name(path, 0, -1);
    d.file.name.atomic = 1;
    d.file.name.flush = (enum rpc2_se_flush)_i; /* NEVER: still whole under the name */
    d.file.name.mode = 0640;
    ck_assert_int_eq(sink_all(&d, 0, data, MiB), 0);
    got = get_file(path, &n);
    ck_assert_uint_eq(n, MiB);
    ck_assert(memcmp(got, data, MiB) == 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0640);
    ck_assert_int_eq(entries(dir), 1);
    free(data), free(got);
}
END_TEST

/* A symlink at the name is replaced, never looked through: not even to
 * say the target is a directory (which would tell a client what it is). */
START_TEST(atomic_replaces_a_symlink_to_a_directory)
{
    char dir[256], path[300], target[300];
    uint8_t *data = pattern(1000, 13), *got;
    struct rpc2_se_desc d;
    struct stat st;
    size_t n;

    subdir(dir, "atomic_link", _i);
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    snprintf(path, sizeof path, "%s/out", dir);
    ck_assert_int_eq(mkdir(target, 0755), 0);
    ck_assert_int_eq(symlink(target, path), 0);
    d = desc_name(path, 0, -1);
    d.file.name.atomic = 1;
    ck_assert_int_eq(sink_all(&d, 0, data, 1000), 0);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    got = get_file(path, &n);
    ck_assert_uint_eq(n, 1000);
    ck_assert(memcmp(got, data, 1000) == 0);
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert(S_ISDIR(st.st_mode)); /* the directory is untouched */
    free(data), free(got);
}
END_TEST

/* bit 0: finish(0), else free without finishing; bit 1: an old file is there */
START_TEST(atomic_failure_leaves_nothing)
{
    char dir[256], path[300];
    uint8_t *data = pattern(100000, 12), *got;
    struct rpc2_se_desc d;
    struct fileio *f;
    int old = _i & 2;
    size_t n;

    subdir(dir, "atomic_fail", _i);
    snprintf(path, sizeof path, "%s/out", dir);
    if (old)
        put_file(path, "old", 3);
    d = desc_name(path, 0, -1);
    d.file.name.atomic = 1;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(feed(f, data, 50000), 0);
    ck_assert_int_eq(entries(dir), old ? 2 : 1); /* the temporary, hidden */
    if (_i & 1)
        ck_assert_int_eq(fileio_finish(f, 0), 0);
    fileio_free(f);
    ck_assert_int_eq(entries(dir), old ? 1 : 0);
    got = get_file(path, &n);
    if (old)
        ck_assert(n == 3 && memcmp(got, "old", 3) == 0);
    else
        ck_assert_ptr_null(got);
    free(data), free(got);
}
END_TEST

START_TEST(atomic_refusals)
{
    char dir[256], path[300];
    struct rpc2_se_desc d;
    const char *why = NULL;
    struct fileio *f;

    subdir(dir, "atomic_refuse", _i);
    d = desc_name(dir, 0, -1);
    d.file.name.atomic = 1;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EISDIR);
    snprintf(path, sizeof path, "%s/", dir);
    d.file.name.path = path;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EISDIR);
    snprintf(path, sizeof path, "%s/x", dir);
    d.seek_offset = 10;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, &why), RPC2_EINVAL);
    ck_assert_ptr_nonnull(why);
    snprintf(path, sizeof path, "%s/missing/x", dir);
    d.seek_offset = 0;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_ENOENT);
    ck_assert_int_eq(entries(dir), 0);
}
END_TEST

START_TEST(no_clobber)
{
    char dir[256], path[300];
    uint8_t *got;
    struct rpc2_se_desc d;
    int atomic = _i;
    size_t n;

    subdir(dir, "noclob", _i);
    snprintf(path, sizeof path, "%s/out", dir);
    d = desc_name(path, 0, -1);
    d.file.name.no_clobber = 1;
    d.file.name.atomic = atomic;
    ck_assert_int_eq(sink_all(&d, 0, (const uint8_t *)"first", 5), 0);
    ck_assert_int_eq(sink_all(&d, 0, (const uint8_t *)"second", 6), RPC2_EEXIST);
    got = get_file(path, &n);
    ck_assert(n == 5 && memcmp(got, "first", 5) == 0);
    ck_assert_int_eq(entries(dir), 1);
    free(got);
}
END_TEST

START_TEST(no_clobber_name_appears_during_transfer)
{
    char dir[256], path[300];
    struct rpc2_se_desc d;
    struct fileio *f;
    const char *why = NULL;
    uint8_t *got;
    size_t n;

    subdir(dir, "noclob_race", _i);
    snprintf(path, sizeof path, "%s/out", dir);
    d = desc_name(path, 0, -1);
    d.file.name.no_clobber = 1;
    d.file.name.atomic = 1;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_write(f, 0, (const uint8_t *)"mine", 4), 0);
    put_file(path, "theirs", 6);
    ck_assert_int_eq(fileio_finish(f, 1), RPC2_EEXIST);
    ck_assert_int_eq(fileio_finish(f, 1), RPC2_EEXIST); /* the same answer again */
    why = fileio_why(f);
    ck_assert_ptr_nonnull(why);
    fileio_free(f);
    got = get_file(path, &n);
    ck_assert(n == 6 && memcmp(got, "theirs", 6) == 0);
    ck_assert_int_eq(entries(dir), 1);
    free(got);
}
END_TEST

/* ---- quotas and memory -------------------------------------------------- */

START_TEST(strict_quota)
{
    char path[256];
    uint8_t *data = pattern(1000, 13), out[1001], buf[2000];
    struct rpc2_se_desc d = desc_name(at(path, "strict"), 0, 999);
    const char *why = NULL;
    struct fileio *f;
    size_t got;

    put_file(path, data, 1000);
    ck_assert_int_eq(fileio_open_source(&d, FILEIO_STRICT_QUOTA, &f, &why), RPC2_EQUOTA);
    ck_assert_ptr_nonnull(why);
    d.quota = 1000;
    ck_assert_int_eq(source_all(&d, FILEIO_STRICT_QUOTA, out, sizeof out, &got, NULL), 0);
    ck_assert_uint_eq(got, 1000);
    ck_assert_int_eq(d.quota_exceeded, 0);
    d = desc_vm(data, 1000, 0, 1, 998);
    ck_assert_int_eq(fileio_open_source(&d, FILEIO_STRICT_QUOTA, &f, NULL), RPC2_EQUOTA);
    d = desc_vm(buf, 0, sizeof buf, 0, 999);
    ck_assert_int_eq(sink_all(&d, FILEIO_STRICT_QUOTA, data, 1000), RPC2_EQUOTA);
    d = desc_vm(buf, 0, sizeof buf, 0, 1000);
    ck_assert_int_eq(sink_all(&d, FILEIO_STRICT_QUOTA, data, 1000), 0);
    free(data);
}
END_TEST

START_TEST(quota_zero_moves_nothing)
{
    char path[256];
    uint8_t *data = pattern(1000, 14), out[10];
    struct rpc2_se_desc d = desc_name(at(path, "q0"), 0, 0);
    size_t got = 99;
    int64_t size;

    put_file(path, data, 1000);
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &got, &size), 0);
    ck_assert(got == 0 && size == 0 && d.quota_exceeded == 1);
    d.seek_offset = 1000; /* at the end: nothing more was there */
    ck_assert_int_eq(source_all(&d, 0, out, sizeof out, &got, &size), 0);
    ck_assert(got == 0 && d.quota_exceeded == 0);
    d = desc_vm(NULL, 0, 0, 0, 0); /* a memory sink with no room is fine for nothing */
    ck_assert_int_eq(sink_all(&d, 0, data, 1000), 0);
    ck_assert(d.file.vm.len == 0 && d.quota_exceeded == 1);
    free(data);
}
END_TEST

START_TEST(vm_overflow)
{
    uint8_t *data = pattern(1000, 15), buf[1010];
    struct rpc2_se_desc d = desc_vm(buf, 0, 999, 0, -1);
    const char *why = NULL;
    struct fileio *f;

    ck_assert_int_eq(sink_all(&d, 0, data, 1000), RPC2_EOVERFLOW);
    d = desc_vm(buf, 0, 1010, 10, -1); /* exactly the room after the offset */
    ck_assert_int_eq(sink_all(&d, 0, data, 1000), 0);
    ck_assert_uint_eq(d.file.vm.len, 1000);
    ck_assert(memcmp(buf + 10, data, 1000) == 0);
    d = desc_vm(buf, 0, 10, 10, -1);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, &why), RPC2_EINVAL); /* no room */
    ck_assert_ptr_nonnull(why);
    d = desc_vm(buf, 5, 0, 6, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EINVAL); /* past len */
    free(data);
}
END_TEST

/* ---- past 4 GiB, sparse ------------------------------------------------- */

#define FAR (4 * GiB + GiB / 2)

START_TEST(sparse_5gib_source)
{
    char path[256];
    uint8_t *data = pattern(MiB + 10, 16), *out = malloc(MiB + 1);
    int fd = open(at(path, "sparse_src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct rpc2_se_desc d;
    size_t got;
    int64_t size;

    ck_assert_int_eq(ftruncate(fd, 5 * GiB), 0);
    ck_assert_int_eq(pwrite(fd, data, MiB + 10, FAR), MiB + 10);
    d = desc_name(path, FAR, MiB);
    ck_assert_int_eq(source_all(&d, 0, out, MiB + 1, &got, &size), 0);
    ck_assert(got == MiB && size == MiB && d.quota_exceeded);
    ck_assert(memcmp(out, data, MiB) == 0);
    ck_assert_int_eq(lseek(fd, 4 * GiB, SEEK_SET), 4 * GiB);
    d = desc_fd(fd, GiB / 2, MiB); /* relative to a position past 4 GiB */
    ck_assert_int_eq(source_all(&d, 0, out, MiB + 1, &got, &size), 0);
    ck_assert(got == MiB && memcmp(out, data, MiB) == 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), FAR + MiB);
    close(fd);
    free(data), free(out);
}
END_TEST

START_TEST(sparse_5gib_sink)
{
    char path[256];
    uint8_t *data = pattern(MiB + 10, 17), *out = malloc(MiB);
    struct rpc2_se_desc d = desc_name(at(path, "sparse_dst"), FAR, MiB);
    struct stat st;
    int fd;

    ck_assert_int_eq(sink_all(&d, 0, data, MiB + 10), 0);
    ck_assert(d.bytes_transferred == MiB && d.quota_exceeded);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, FAR + MiB);
    fd = open(path, O_RDWR);
    ck_assert_int_eq(pread(fd, out, MiB, FAR), MiB);
    ck_assert(memcmp(out, data, MiB) == 0);
    ck_assert_int_eq(lseek(fd, 4 * GiB, SEEK_SET), 4 * GiB);
    d = desc_fd(fd, GiB / 2, -1);
    ck_assert_int_eq(sink_all(&d, 0, data + 10, MiB), 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), FAR + MiB);
    ck_assert_int_eq(pread(fd, out, MiB, FAR), MiB);
    ck_assert(memcmp(out, data + 10, MiB) == 0);
    close(fd);
    free(data), free(out);
}
END_TEST

/* ---- file handles ------------------------------------------------------- */

static int drop_dac_read_search(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct c[2];

    if (syscall(SYS_capget, &h, c) < 0)
        return -1;
    c[0].effective &= ~(1u << CAP_DAC_READ_SEARCH);
    c[0].permitted &= ~(1u << CAP_DAC_READ_SEARCH);
    return (int)syscall(SYS_capset, &h, c);
}

/* Exit status: 0 refused as documented, SKIP, else what went wrong. */
static int without_capability(struct rpc2_se_desc *d)
{
    struct fileio *f;
    const char *why = NULL;

    if (drop_dac_read_search() < 0)
        return SKIP;
    if (fileio_open_source(d, 0, &f, &why) != RPC2_EACCES)
        return 1;
    return why && strstr(why, "CAP_DAC_READ_SEARCH") ? 0 : 2;
}

static int in_child(int (*fn)(struct rpc2_se_desc *), struct rpc2_se_desc *d)
{
    pid_t pid = fork();
    int st;

    if (pid == 0)
        _exit(fn(d));
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(inode_without_capability)
{
    char path[256];
    struct rpc2_se_desc d = desc_name(at(path, "handle"), 0, -1);
    int st;

    put_file(path, "x", 1);
    ck_assert_int_eq(rpc2_se_inode_of(path, &d), 0);
    st = in_child(without_capability, &d);
    if (st == SKIP)
        test_skip("inode_without_capability", machine_has_capability(CAP_SETPCAP) || machine_is_root(),
                  "capset not permitted here");
    else
        ck_assert_msg(st == 0, "child said %d", st);
    close(d.file.inode.mount_fd);
}
END_TEST

START_TEST(inode_refusals)
{
    char path[256];
    struct rpc2_se_desc d = desc_name(at(path, "gone"), 0, -1), keep;
    struct fileio *f;
    const char *why = NULL;
    int fd;

    if (!handles_permitted("inode_refusals"))
        return;
    put_file(path, "x", 1);
    ck_assert_int_eq(rpc2_se_inode_of(path, &d), 0);
    keep = d;
    fd = open(scratch, O_PATH | O_DIRECTORY);
    d.file.inode.mount_fd = fd;
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, &why), RPC2_EINVAL); /* O_PATH */
    ck_assert_ptr_nonnull(why);
    close(fd);
    d = keep;
    unlink(path);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_ENOENT); /* stale */
    close(d.file.inode.mount_fd);
    ck_assert_int_eq(rpc2_se_inode_of(scratch, &d), 0);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EISDIR);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EISDIR);
    close(d.file.inode.mount_fd);
}
END_TEST

/* ---- peek, consume, limit: the piggyback path --------------------------- */

/* 0: name, 1: fd, 2: memory, 3: pipe: a source of data's 5000 bytes (path: room for a name). */
static struct rpc2_se_desc peek_source(int variant, const uint8_t *data, char *path, int *fd,
                                       pthread_t *t, struct pump *p)
{
    char name[32];

    snprintf(name, sizeof name, "peek%d", variant);
    at(path, name);
    *fd = -1;
    if (variant == 2)
        return desc_vm((void *)data, 5000, 0, 0, -1);
    if (variant == 3) {
        int fds[2];

        signal(SIGPIPE, SIG_IGN);
        ck_assert_int_eq(pipe(fds), 0);
        *p = (struct pump){.fd = fds[1], .data = (uint8_t *)data, .n = 5000};
        pthread_create(t, NULL, feeder, p);
        *fd = fds[0];
        return desc_fd(fds[0], 0, -1);
    }
    put_file(path, data, 5000);
    if (variant == 1) {
        *fd = open(path, O_RDONLY);
        return desc_fd(*fd, 0, -1);
    }
    return desc_name(path, 0, -1);
}

static void peek_source_done(int variant, int fd, pthread_t *t)
{
    if (variant == 3)
        pthread_join(*t, NULL);
    if (fd >= 0)
        close(fd);
}

/* Too big to piggyback: everything peeked comes again from the reads. */
START_TEST(peek_then_read_everything)
{
    uint8_t *data = pattern(5000, 19), peeked[1001], out[5001];
    struct pump p;
    pthread_t t;
    char path[256];
    int fd;
    struct rpc2_se_desc d = peek_source(_i, data, path, &fd, &t, &p);
    struct fileio *f;
    size_t got;

    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_peek(f, peeked, 1001), 1001);
    ck_assert(memcmp(peeked, data, 1001) == 0);
    ck_assert_int_eq(fileio_peek(f, peeked, 10), RPC2_EINVAL); /* once */
    ck_assert_uint_eq(fileio_bytes(f), 0);
    ck_assert_int_eq(drain(f, out, sizeof out, &got), 0);
    ck_assert_uint_eq(got, 5000);
    ck_assert(memcmp(out, data, 5000) == 0);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    ck_assert_uint_eq(d.bytes_transferred, 5000);
    if (_i == 1)
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 5000);
    peek_source_done(_i, fd, &t);
    free(data);
}
END_TEST

/* Small enough: the peek is the transfer; an fd moves past what was sent. */
START_TEST(peek_consume_is_the_transfer)
{
    uint8_t *data = pattern(5000, 20), peeked[5001];
    struct pump p;
    pthread_t t;
    char path[256];
    int fd;
    struct rpc2_se_desc d = peek_source(_i, data, path, &fd, &t, &p);
    struct fileio *f;

    d.quota = 3000;
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_peek(f, peeked, 3001), 3000);
    ck_assert(memcmp(peeked, data, 3000) == 0);
    ck_assert_int_eq(fileio_consume(f, 3001), RPC2_EINVAL);
    ck_assert_int_eq(fileio_consume(f, 3000), 0);
    ck_assert_uint_eq(fileio_bytes(f), 3000);
    ck_assert_int_eq(fileio_read(f, peeked, 10), 0); /* nothing after the quota */
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    ck_assert_uint_eq(d.bytes_transferred, 3000);
    ck_assert_int_eq(d.quota_exceeded, 1);
    if (_i == 1)
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 3000);
    peek_source_done(_i, fd, &t);
    free(data);
}
END_TEST

START_TEST(limit_from_the_peer)
{
    char path[256];
    uint8_t *data = pattern(1000, 21), out[1001], buf[100];
    struct rpc2_se_desc d = desc_name(at(path, "limit"), 0, -1);
    struct fileio *f;
    size_t got;

    put_file(path, data, 1000);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_limit(f, -1, 0), 0); /* no limit: unchanged */
    ck_assert_int_eq(fileio_source_size(f), 1000);
    ck_assert_int_eq(fileio_limit(f, 500, 0), 0);
    ck_assert_int_eq(fileio_limit(f, 800, 0), 0); /* never raises */
    ck_assert_int_eq(fileio_source_size(f), 500);
    ck_assert_int_eq(fileio_limit(f, 600, 1), RPC2_EQUOTA); /* strict, 1000 > 500 */
    ck_assert_int_eq(drain(f, out, sizeof out, &got), 0);
    ck_assert_uint_eq(got, 500);
    ck_assert_int_eq(fileio_limit(f, 10, 0), RPC2_EINVAL); /* too late */
    fileio_free(f);

    d = desc_vm(buf, 0, sizeof buf, 0, -1);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_limit(f, 10, 1), 0);
    ck_assert_int_eq(fileio_write(f, 0, data, 11), RPC2_EQUOTA);
    ck_assert_int_eq(fileio_write(f, 0, data, 10), 0);
    fileio_fill_desc(f, &d); /* as it stands, before finishing */
    ck_assert(d.bytes_transferred == 10 && d.file.vm.len == 10);
    fileio_fill_desc(NULL, &d);
    fileio_free(f);
    free(data);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(missing_and_directories)
{
    char path[256];
    struct rpc2_se_desc d = desc_name(at(path, "nonexistent"), 0, -1);
    struct fileio *f;
    const char *why = NULL;

    ck_assert_int_eq(fileio_open_source(&d, 0, &f, &why), RPC2_ENOENT);
    ck_assert_ptr_nonnull(why);
    d = desc_name(at(path, "no/such/dir"), 0, -1);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_ENOENT);
    d = desc_name(scratch, 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EISDIR);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EISDIR);
    ck_assert_int_eq(mkfifo(at(path, "fifo"), 0644), 0);
    d = desc_name(path, 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), RPC2_EINVAL);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EINVAL);
    d.seek_offset = -1; /* the descriptor check runs first */
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, &why), RPC2_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "rpc2_se_desc_check"));
}
END_TEST

START_TEST(misuse)
{
    uint8_t buf[10] = {0};
    struct rpc2_se_desc d = desc_vm(buf, 10, 10, 0, -1);
    struct fileio *f;

    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_write(f, 0, buf, 1), RPC2_EINVAL);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    ck_assert_int_eq(fileio_read(f, buf, 1), RPC2_EINVAL);
    fileio_free(f);
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_read(f, buf, 1), RPC2_EINVAL);
    ck_assert_int_eq(fileio_write(f, UINT64_MAX, buf, 2), RPC2_EINVAL);
    fileio_free(f);
    fileio_free(NULL);
}
END_TEST

/* As root, permission is tested as nobody in a child. */
static int as_nobody(struct rpc2_se_desc *d)
{
    struct fileio *f;
    struct rpc2_se_desc sink = *d;
    char dir[300];

    if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
        return SKIP;
    if (fileio_open_source(d, 0, &f, NULL) != RPC2_EACCES)
        return 1;
    snprintf(dir, sizeof dir, "%s/x", scratch);
    sink.file.name.path = dir;
    if (fileio_open_sink(&sink, 0, &f, NULL) != RPC2_EACCES)
        return 2;
    sink.file.name.atomic = 1;
    return fileio_open_sink(&sink, 0, &f, NULL) == RPC2_EACCES ? 0 : 3;
}

START_TEST(permission_denied)
{
    char path[256];
    struct rpc2_se_desc d = desc_name(at(path, "secret"), 0, -1);
    int st;

    put_file(path, "x", 1);
    chmod(path, 0600);
    chmod(scratch, 0711); /* nobody may pass, not write */
    if (geteuid() != 0) {
        chmod(path, 0);
        ck_assert_int_eq(fileio_open_source(&d, 0, &(struct fileio *){0}, NULL), RPC2_EACCES);
        return;
    }
    st = in_child(as_nobody, &d);
    if (st == SKIP)
        test_skip("permission_denied", machine_is_root(), "cannot become nobody here");
    else
        ck_assert_msg(st == 0, "child said %d", st);
}
END_TEST

/* In a private mount namespace: a 64 KiB tmpfs fills up. */
static int disk_full(struct rpc2_se_desc *unused)
{
    char mnt[300], path[320];
    uint8_t *data = pattern(MiB, 18);
    struct rpc2_se_desc d;
    struct fileio *f;

    (void)unused;
    snprintf(mnt, sizeof mnt, "%s/mnt", scratch);
    if (mkdir(mnt, 0755) < 0 || unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", mnt, "tmpfs", 0, "size=64k") < 0)
        return SKIP;
    snprintf(path, sizeof path, "%s/big", mnt);
    d = desc_name(path, 0, -1);
    if (sink_all(&d, 0, data, MiB) != RPC2_ENOSPC)
        return 1;
    unlink(path);
    d.file.name.atomic = 1;
    if (fileio_open_sink(&d, 0, &f, NULL) != 0)
        return 2;
    if (feed(f, data, MiB) != RPC2_ENOSPC)
        return 3;
    fileio_free(f);
    return entries(mnt) == 0 ? 0 : 4;
}

START_TEST(disk_full_in_tiny_tmpfs)
{
    int st = in_child(disk_full, NULL);

    if (st == SKIP)
        test_skip("disk_full_in_tiny_tmpfs", machine_is_root(), "cannot mount a tmpfs here");
    else
        ck_assert_msg(st == 0, "child said %d", st);
}
END_TEST

START_TEST(errno_map)
{
    static const int map[][2] = {
        {ENOENT, RPC2_ENOENT}, {ENOTDIR, RPC2_ENOENT}, {ESTALE, RPC2_ENOENT},
        {EACCES, RPC2_EACCES}, {EPERM, RPC2_EACCES},   {EROFS, RPC2_EACCES},
        {ENOSPC, RPC2_ENOSPC}, {EDQUOT, RPC2_ENOSPC},  {EFBIG, RPC2_ENOSPC},
        {EISDIR, RPC2_EISDIR}, {EEXIST, RPC2_EEXIST},  {ENOMEM, RPC2_ENOMEM},
        {EINVAL, RPC2_EINVAL}, {EBADF, RPC2_EINVAL},   {EIO, RPC2_EIO},
        {EPIPE, RPC2_EIO},     {ECONNRESET, RPC2_EIO},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        ck_assert_int_eq(fileio_errno_code(map[i][0]), map[i][1]);
}
END_TEST

/* ---- streams that never block the loop ---------------------------------- */

static int fl_of(int fd)
{
    return fcntl(fd, F_GETFL);
}

static void expect_sum(struct fileio *f, const void *data, size_t n)
{
    uint8_t got[FILEIO_SUM_BYTES];
    XXH128_canonical_t want;

    XXH128_canonicalFromHash(&want, XXH3_128bits(data, n));
    ck_assert_int_eq(fileio_digest(f, got), 0);
    ck_assert_mem_eq(got, want.digest, FILEIO_SUM_BYTES);
}

/* A quiet pipe (or socket) says SFTP_IO_WAIT and names the fd to watch;
 * what it had is kept for the next read; the caller's fd keeps its flags. */
START_TEST(nonblocking_stream_source)
{
    int fds[2], fl;
    uint8_t buf[16] = {0};
    struct fileio *f;
    struct rpc2_se_desc d;
    int fd, readable;

    if (_i == 0)
        ck_assert_int_eq(pipe(fds), 0);
    else
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    fl = fl_of(fds[0]);
    d = desc_fd(fds[0], 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, FILEIO_NONBLOCK, &f, NULL), 0);
    ck_assert_int_eq(fileio_may_wait(f), 1);
    ck_assert_int_eq(write(fds[1], "01234", 5), 5);
    ck_assert_int_eq(fileio_read(f, buf, 10), SFTP_IO_WAIT);
    ck_assert_int_eq(fileio_wait(f, &fd, &readable), 1);
    ck_assert_int_eq(fd, fds[0]);
    ck_assert_int_eq(readable, 1);
    ck_assert_int_eq(fileio_read(f, buf, 10), SFTP_IO_WAIT); /* still nothing new */
    ck_assert_int_eq(write(fds[1], "56789ab", 7), 7);
    ck_assert_int_eq(fileio_read(f, buf, 10), 10);
    ck_assert_mem_eq(buf, "0123456789", 10);
    close(fds[1]);
    ck_assert_int_eq(fileio_read(f, buf, 10), 2); /* the end */
    ck_assert_mem_eq(buf, "ab", 2);
    ck_assert_int_eq(fileio_wait(f, &fd, &readable), 0);
    expect_sum(f, "0123456789ab", 12);
    ck_assert_int_eq(fl_of(fds[0]), fl);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    close(fds[0]);
}
END_TEST

/* A pipe (or socket) with no room takes a partial write and keeps the rest,
 * then says SFTP_IO_WAIT without taking anything; flush puts the rest down
 * once there is room; the bytes arrive in order, and the caller's fd is
 * never switched to O_NONBLOCK. */
START_TEST(nonblocking_stream_sink)
{
    enum { CHUNK = 48 * 1024 };
    int fds[2], fl, fd, readable, rc;
    uint8_t *data = pattern(64 * CHUNK, 3), *got = malloc(64 * CHUNK);
    size_t taken = 0, have = 0;
    struct fileio *f;
    struct rpc2_se_desc d;

    if (_i == 0)
        ck_assert_int_eq(pipe(fds), 0);
    else
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    fl = fl_of(fds[1]);
    d = desc_fd(fds[1], 0, -1);
    ck_assert_int_eq(fileio_open_sink(&d, FILEIO_NONBLOCK, &f, NULL), 0);
    while ((rc = fileio_write(f, taken, data + taken, CHUNK)) == 0)
        taken += CHUNK; /* fills the pipe: nobody reads yet */
    ck_assert_int_eq(rc, SFTP_IO_WAIT);
    ck_assert_int_eq(fileio_wait(f, &fd, &readable), 1);
    ck_assert_int_eq(readable, 0);
    ck_assert_int_eq(fl_of(fds[1]) & O_NONBLOCK, fl & O_NONBLOCK);
    while (taken < 64 * CHUNK) { /* a slow reader: drain, then write on */
        ssize_t n;
        ck_assert_int_eq(fcntl(fds[0], F_SETFL, fl_of(fds[0]) | O_NONBLOCK), 0);
        while ((n = read(fds[0], got + have, 64 * CHUNK - have)) > 0)
            have += (size_t)n;
        rc = fileio_write(f, taken, data + taken, CHUNK);
        ck_assert(rc == 0 || rc == SFTP_IO_WAIT);
        if (rc == 0)
            taken += CHUNK;
    }
    while ((rc = fileio_flush(f)) == SFTP_IO_WAIT) {
        ssize_t n = read(fds[0], got + have, 64 * CHUNK - have);
        ck_assert_int_ge(n, 0);
        have += (size_t)n;
    }
    ck_assert_int_eq(rc, 0);
    expect_sum(f, data, 64 * CHUNK);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    close(fds[1]);
    for (ssize_t n; (n = read(fds[0], got + have, 64 * CHUNK - have)) > 0;)
        have += (size_t)n;
    ck_assert_uint_eq(have, 64 * CHUNK);
    ck_assert_mem_eq(got, data, 64 * CHUNK);
    close(fds[0]);
    free(data);
    free(got);
}
END_TEST

/* The checksum covers the bytes delivered (peeked and consumed included),
 * and a sink's covers what it was given, cut or not. */
START_TEST(checksum_of_what_moved)
{
    char path[PATH_MAX];
    uint8_t *data = pattern(100000, 9), buf[100000];
    struct fileio *f;
    struct rpc2_se_desc d;

    put_file(at(path, "sum"), data, 100000);
    d = desc_name(path, 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_peek(f, buf, 100), 100);
    ck_assert_int_eq(fileio_consume(f, 60), 0);
    ck_assert_int_eq(fileio_read(f, buf, 99940), 99940);
    expect_sum(f, data, 100000);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    ck_assert_int_eq(d.checksum_valid, 1);
    fileio_free(f);
    d = desc_name(at(path, "sum.out"), 0, 1000); /* a quota cuts the file... */
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_write(f, 0, data, 5000), 0);
    expect_sum(f, data, 5000); /* ...but not what the checksum saw */
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    free(data);
}
END_TEST

/* ---- a source changed while it is read ---------------------------------- */

/* Waits until the kernel's file clock has moved past the file's ctime, so
 * that the next change surely stamps a different one (the clock is coarse:
 * one tick). Bounded by the tick, not by a guess. */
static void next_file_tick(const char *path)
{
    struct stat st;
    struct timespec now;

    ck_assert_int_eq(stat(path, &st), 0);
    do
        clock_gettime(CLOCK_REALTIME_COARSE, &now);
    while (now.tv_sec < st.st_ctim.tv_sec ||
           (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec <= st.st_ctim.tv_nsec));
}

enum change { TRUNCATE_BELOW, TRUNCATE_AHEAD, GROW, REWRITE, REWRITE_KEEP_MTIME, N_CHANGES };

static void change_file(const char *path, enum change how)
{
    uint8_t *other = pattern(MiB, 99);
    int fd = open(path, O_WRONLY);
    struct stat st;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    next_file_tick(path);
    switch (how) {
    case TRUNCATE_BELOW: /* before what was read: the rest is gone */
        ck_assert_int_eq(ftruncate(fd, 1000), 0);
        break;
    case TRUNCATE_AHEAD: /* after it: the read ends early */
        ck_assert_int_eq(ftruncate(fd, 600000), 0);
        break;
    case GROW:
        ck_assert_int_eq(pwrite(fd, other, 5000, MiB), 5000);
        break;
    case REWRITE: /* same size, new bytes everywhere */
        ck_assert_int_eq(pwrite(fd, other, MiB, 0), MiB);
        break;
    case REWRITE_KEEP_MTIME: { /* and the mtime set back, as touch -d would */
        struct timespec t[2] = {st.st_atim, st.st_mtim};

        ck_assert_int_eq(pwrite(fd, other, MiB, 0), MiB);
        ck_assert_int_eq(futimens(fd, t), 0);
        break;
    }
    default:
        break;
    }
    close(fd);
    free(other);
}

/* _i: the change, by name and by fd (a store's source is an fd). Whatever
 * changed, the reader ends with RPC2_ECHANGED, never with bytes of two
 * versions, and never more than the size it announced. */
START_TEST(source_changed_while_read)
{
    enum change how = (enum change)(_i % N_CHANGES);
    int by_fd = _i >= N_CHANGES;
    char path[256], name[64];
    uint8_t *data = pattern(MiB, 31), *out = malloc(2 * MiB);
    struct rpc2_se_desc d;
    struct fileio *f;
    size_t got = 0;
    ssize_t n;
    int fd = -1;

    snprintf(name, sizeof name, "changed%d", _i);
    put_file(at(path, name), data, MiB);
    if (by_fd) {
        fd = open(path, O_RDONLY);
        d = desc_fd(fd, 0, -1);
    } else {
        d = desc_name(path, 0, -1);
    }
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_source_size(f), MiB);
    n = fileio_read(f, out, 300000);
    ck_assert_int_eq(n, 300000);
    change_file(path, how);
    while ((n = fileio_read(f, out + got, 65536)) > 0)
        got += (size_t)n;
    ck_assert_msg(n == RPC2_ECHANGED, "change %d: read said %zd after %zu more bytes", how, n, got);
    ck_assert_uint_le(300000 + got, MiB);
    ck_assert_ptr_nonnull(strstr(fileio_why(f), "while it was being sent"));
    fileio_free(f);
    if (fd >= 0)
        close(fd);
    free(data), free(out);
}
END_TEST

/* readv fills many buffers with one call, as read would one buffer of
 * their sizes: the same bytes, the end (mid-buffer) only at the end; and a
 * file that shrinks under it ends with RPC2_ECHANGED, never short bytes
 * taken for the end. */
START_TEST(source_readv)
{
    char path[256];
    size_t size = 10 * 1400 + 77, got = 0;
    uint8_t *data = pattern(size, 33), *out = malloc(64 * 1400);
    struct rpc2_se_desc d = desc_name(at(path, "readv"), 0, -1);
    struct iovec iov[8];
    struct fileio *f;
    ssize_t n;

    put_file(path, data, size);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    for (;;) {
        for (int i = 0; i < 8; i++)
            iov[i] = (struct iovec){.iov_base = out + got + (size_t)i * 1400, .iov_len = 1400};
        n = fileio_readv(f, iov, 8);
        ck_assert_int_ge(n, 0);
        got += (size_t)n;
        if (n < 8 * 1400)
            break;
    }
    ck_assert_uint_eq(got, size);
    ck_assert_mem_eq(out, data, size);
    ck_assert_int_eq(fileio_readv(f, iov, 8), 0);
    fileio_free(f);

    /* shrunk between two reads */
    d = desc_name(path, 0, -1);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    iov[0] = (struct iovec){.iov_base = out, .iov_len = 1400};
    iov[1] = (struct iovec){.iov_base = out + 1400, .iov_len = 1400};
    ck_assert_int_eq(fileio_readv(f, iov, 2), 2800);
    ck_assert_int_eq(truncate(path, 5000), 0);
    for (int i = 0; i < 8; i++)
        iov[i] = (struct iovec){.iov_base = out + (size_t)i * 1400, .iov_len = 1400};
    ck_assert_int_eq(fileio_readv(f, iov, 8), RPC2_ECHANGED);
    fileio_free(f);
    free(data), free(out);
}
END_TEST

/* Many packets written with one call land where one write each would put
 * them, a run starting anywhere; what a stream cannot take waits whole. */
START_TEST(sink_writev)
{
    char path[256];
    uint8_t *data = pattern(5000, 34), *back = malloc(5000);
    struct rpc2_se_desc d = desc_name(at(path, "writev"), 0, -1);
    struct iovec iov[3] = {{data + 1000, 1000}, {data + 2000, 0}, {data + 2000, 3000}};
    struct fileio *f;
    int fd;

    d.file.name.mode = 0644;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_write(f, 0, data, 1000), 0);
    ck_assert_int_eq(fileio_writev(f, 1000, iov, 3), 0);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(read(fd, back, 5000), 5000);
    ck_assert_mem_eq(back, data, 5000);
    close(fd);
    free(data), free(back);
}
END_TEST

/* An unchanged file, read whole or as a range, still ends well; what the
 * source tells the peer about it is the version it sent. */
START_TEST(source_unchanged_and_its_info)
{
    char path[256];
    uint8_t *data = pattern(100000, 32), *out = malloc(200000);
    struct rpc2_se_desc d = desc_name(at(path, "unchanged"), 0, -1);
    struct fileio_info info;
    struct fileio *f;
    struct stat st;
    size_t got;

    put_file(path, data, 100000);
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(source_all(&d, 0, out, 200000, &got, NULL), 0);
    ck_assert_uint_eq(got, 100000);
    d = desc_name(path, 10, 5000);
    ck_assert_int_eq(fileio_open_source(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_source_info(f, &info), 1);
    ck_assert_int_eq(info.size, 5000);
    ck_assert_uint_eq(info.mode, 0640);
    ck_assert_int_eq(info.mtime_sec, st.st_mtim.tv_sec);
    ck_assert_uint_eq(info.mtime_nsec, (uint32_t)st.st_mtim.tv_nsec);
    ck_assert_int_eq(drain(f, out, 200000, &got), 0);
    ck_assert_uint_eq(got, 5000);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    ck_assert_int_eq(d.quota_exceeded, 1);
    fileio_free(f);
    free(data), free(out);
}
END_TEST

/* ---- what an atomic sink's file gets before it takes the name ---------- */

/* The temporary is private while it fills, whatever mode is asked for. */
static int temporary_mode(const char *dir, mode_t *mode)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    struct stat st;
    int found = 0;

    ck_assert_ptr_nonnull(dp);
    while ((e = readdir(dp)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            fstatat(dirfd(dp), e->d_name, &st, 0) == 0) {
            *mode = st.st_mode & 07777;
            found++;
        }
    closedir(dp);
    return found;
}

/* _i: 0 mode under the umask; 1 mode exact; 2 the source's mode under the
 * umask; 3 the source's, exact, with its mtime (rcat -p); 4 a given mtime */
START_TEST(atomic_attrs_before_the_name)
{
    static const struct {
        unsigned attrs;
        mode_t want;
    } cases[] = {
        {0, 0640},
        {RPC2_SE_ATTR_MODE, 0666},
        {RPC2_SE_ATTR_SOURCE_MODE, 0750},
        {RPC2_SE_ATTR_SOURCE_MODE | RPC2_SE_ATTR_MODE | RPC2_SE_ATTR_SOURCE_MTIME, 0751},
        {RPC2_SE_ATTR_MTIME, 0640},
    };
    char dir[256], path[300];
    uint8_t *data = pattern(10000, 33);
    struct fileio_info src = {.size = 10000, .mode = 0751, .mtime_sec = 1234567890,
                              .mtime_nsec = 123456789};
    struct rpc2_se_desc d;
    struct fileio *f;
    struct stat st;
    mode_t tmp_mode = 0;

    umask(027);
    subdir(dir, "attrs", _i);
    snprintf(path, sizeof path, "%s/out", dir);
    d = desc_name(path, 0, -1);
    d.file.name.atomic = 1;
    d.file.name.mode = 0666;
    d.file.name.attrs = cases[_i].attrs;
    d.file.name.mtime_sec = 1000000000;
    d.file.name.mtime_nsec = 5;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(feed(f, data, 10000), 0);
    ck_assert_int_eq(temporary_mode(dir, &tmp_mode), 1);
    ck_assert_uint_eq(tmp_mode, 0600);
    fileio_set_peer_source(f, &src);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    fileio_free(f);
    umask(022);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, cases[_i].want);
    if (_i == 3) {
        ck_assert_int_eq(st.st_mtim.tv_sec, 1234567890);
        ck_assert_int_eq(st.st_mtim.tv_nsec, 123456789);
    } else if (_i == 4) {
        ck_assert_int_eq(st.st_mtim.tv_sec, 1000000000);
        ck_assert_int_eq(st.st_mtim.tv_nsec, 5);
    }
    ck_assert_int_eq(entries(dir), 1);
    free(data);
}
END_TEST

START_TEST(attrs_refused_where_they_cannot_be_kept)
{
    char path[256];
    struct rpc2_se_desc d = desc_name(at(path, "attrs_plain"), 0, -1);
    struct fileio *f;

    d.file.name.attrs = RPC2_SE_ATTR_MODE; /* not atomic: no temporary to set them on */
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EINVAL);
    d.file.name.atomic = 1;
    d.file.name.attrs = 0x100;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EINVAL);
    d.file.name.attrs = RPC2_SE_ATTR_MTIME;
    d.file.name.mtime_nsec = 1000000000;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), RPC2_EINVAL);
    /* the source's mtime asked for, and the peer never told it */
    d.file.name.attrs = RPC2_SE_ATTR_SOURCE_MTIME;
    d.file.name.mtime_nsec = 0;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_finish(f, 1), RPC2_EINVAL);
    fileio_free(f);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* ---- room before the bytes move ----------------------------------------- */

/* In a private mount namespace, a 256 KiB tmpfs: a sink expecting 512 KiB
 * fails at open (atomic or not, or when reserved later) and leaves nothing;
 * one expecting 100 KiB gets its blocks at once, and keeps its size to
 * what was written. */
static int space_checked(struct rpc2_se_desc *unused)
{
    char mnt[300], path[320];
    uint8_t *data = pattern(100000, 34);
    struct rpc2_se_desc d;
    struct fileio *f;
    struct stat st;

    (void)unused;
    snprintf(mnt, sizeof mnt, "%s/space", scratch);
    if (mkdir(mnt, 0755) < 0 || unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", mnt, "tmpfs", 0, "size=256k") < 0)
        return SKIP;
    snprintf(path, sizeof path, "%s/big", mnt);
    d = desc_name(path, 0, -1);
    d.file.name.atomic = 1;
    d.expected_size = 512 * 1024;
    if (fileio_open_sink(&d, 0, &f, NULL) != RPC2_ENOSPC || entries(mnt) != 0)
        return 1;
    d.expected_size = 0;
    if (fileio_open_sink(&d, 0, &f, NULL) != 0)
        return 2;
    if (fileio_reserve(f, 512 * 1024) != RPC2_ENOSPC)
        return 3;
    fileio_free(f);
    if (entries(mnt) != 0)
        return 4;
    d.expected_size = 200000; /* more than will come: the rest is given back */
    if (fileio_open_sink(&d, 0, &f, NULL) != 0 || feed(f, data, 100000) != 0 ||
        fileio_finish(f, 1) != 0)
        return 5;
    fileio_free(f);
    if (stat(path, &st) < 0 || st.st_size != 100000 || st.st_blocks * 512 > 120000)
        return 6;
    return 0;
}

START_TEST(space_before_bytes_move)
{
    int st = in_child(space_checked, NULL);

    if (st == SKIP)
        fprintf(stderr, "space_before_bytes_move: cannot mount a tmpfs here, skipped\n");
    else
        ck_assert_msg(st == 0, "child said %d", st);
}
END_TEST

/* The sink judges the named sum the peer sent: the one asked for, of the
 * bytes written, or the transfer fails; none at all is refused too. The
 * md5 of "abc" is RFC 1321's. */
START_TEST(named_sum_judged_by_the_sink)
{
    static const uint8_t md5_abc[16] = {0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0,
                                        0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72};
    uint8_t buf[16];
    struct rpc2_se_desc d = desc_vm(buf, 0, sizeof buf, 0, -1);
    struct namedsum_value peer = {.type = RPC2_SE_SUM_MD5, .len = 16};
    struct fileio *f;

    d.direction = RPC2_SE_STORE;
    d.sum_type = RPC2_SE_SUM_MD5;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_write(f, 0, (const uint8_t *)"abc", 3), 0);
    ck_assert_int_eq(fileio_check_named(f, NULL), RPC2_EINTEGRITY); /* asked for, not sent */
    memcpy(peer.bytes, md5_abc, 16);
    ck_assert_int_eq(fileio_check_named(f, &peer), 0);
    peer.type = RPC2_SE_SUM_XXH128; /* as long, another type */
    ck_assert_int_eq(fileio_check_named(f, &peer), RPC2_EINTEGRITY);
    peer.type = RPC2_SE_SUM_MD5;
    peer.bytes[3] ^= 0x80;
    ck_assert_int_eq(fileio_check_named(f, &peer), RPC2_EINTEGRITY);
    ck_assert_int_eq(fileio_finish(f, 1), 0);
    ck_assert_uint_eq(d.sum_len, 16);
    ck_assert_int_eq(memcmp(d.sum, md5_abc, 16), 0);
    fileio_free(f);

    d = desc_vm(buf, 0, sizeof buf, 0, -1); /* none asked for: one sent is refused */
    d.direction = RPC2_SE_STORE;
    ck_assert_int_eq(fileio_open_sink(&d, 0, &f, NULL), 0);
    ck_assert_int_eq(fileio_check_named(f, NULL), 0);
    ck_assert_int_eq(fileio_check_named(f, &peer), RPC2_EINTEGRITY);
    fileio_free(f);
}
END_TEST

static Suite *fileio_suite(void)
{
    Suite *s = suite_create("fileio");
    TCase *t = tcase_create("fileio");

    tcase_add_unchecked_fixture(t, scratch_make, scratch_remove);
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, every_kind_both_ways, 0, 2 * N_KINDS * N_SIZES * N_VARIANTS);
    tcase_add_test(t, two_sinks_into_one_fd_concatenate);
    tcase_add_test(t, two_sources_from_one_fd_follow_each_other);
    tcase_add_test(t, append_fd_is_a_stream);
    tcase_add_test(t, fd_refusals);
    tcase_add_test(t, positional_fd_keeps_its_position);
    tcase_add_test(t, positional_fd_takes_the_callers_stat);
    tcase_add_loop_test(t, stream_source, 0, 3);
    tcase_add_loop_test(t, stream_source_quota, 0, 3);
    tcase_add_loop_test(t, stream_sink, 0, 3);
    tcase_add_test(t, dev_null_sink);
    tcase_add_test(t, devices_and_proc_by_name);
    tcase_add_test(t, plain_sink_keeps_the_tail);
    tcase_add_loop_test(t, atomic_success, 0, 3); /* each rpc2_se_flush */
    tcase_add_loop_test(t, atomic_failure_leaves_nothing, 0, 4);
    tcase_add_test(t, atomic_refusals);
    tcase_add_loop_test(t, no_clobber, 0, 2);
    tcase_add_test(t, no_clobber_name_appears_during_transfer);
    tcase_add_test(t, strict_quota);
    tcase_add_test(t, quota_zero_moves_nothing);
    tcase_add_test(t, vm_overflow);
    tcase_add_test(t, sparse_5gib_source);
    tcase_add_test(t, sparse_5gib_sink);
    tcase_add_loop_test(t, peek_then_read_everything, 0, 4);
    tcase_add_loop_test(t, peek_consume_is_the_transfer, 0, 4);
    tcase_add_test(t, limit_from_the_peer);
    tcase_add_test(t, inode_without_capability);
    tcase_add_test(t, inode_refusals);
    tcase_add_test(t, missing_and_directories);
    tcase_add_test(t, misuse);
    tcase_add_test(t, permission_denied);
    tcase_add_test(t, disk_full_in_tiny_tmpfs);
    tcase_add_loop_test(t, nonblocking_stream_source, 0, 2);
    tcase_add_loop_test(t, nonblocking_stream_sink, 0, 2);
    tcase_add_test(t, checksum_of_what_moved);
    tcase_add_test(t, errno_map);
    tcase_add_test(t, atomic_replaces_a_symlink_to_a_directory);
    tcase_add_loop_test(t, source_changed_while_read, 0, 2 * N_CHANGES);
    tcase_add_test(t, source_unchanged_and_its_info);
    tcase_add_test(t, source_readv);
    tcase_add_test(t, sink_writev);
    tcase_add_loop_test(t, atomic_attrs_before_the_name, 0, 5);
    tcase_add_test(t, attrs_refused_where_they_cannot_be_kept);
    tcase_add_test(t, space_before_bytes_move);
    tcase_add_test(t, named_sum_judged_by_the_sink);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return check_run(fileio_suite());
}
