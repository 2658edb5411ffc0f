/*
 * test_sftp_loopback.c - the SFTP side effect end to end over real sockets
 * on loopback: every test spawns its own tests/testsrv on a fresh temporary
 * root (and, for the lossy cases, the fault proxy in front of it) and moves
 * files with an in-process client through the public API only.
 *
 * Every transfer is checked byte for byte: small ones by reading both ends
 * and comparing, big ones by streaming the result against the generator
 * that made the source (a pattern, or a sparse file of zeros and markers).
 *
 * What these show: every client file kind (name, name+atomic, fd, inode,
 * memory) works in both directions against every server kind, piggybacked
 * and streamed, at the sizes where the protocol changes its mind (0, 1, the
 * piggyback limit and one past it, window x packet and one either side,
 * 1 MiB), with byte ranges and quotas; fds concatenate like cat; a failed
 * atomic sink leaves nothing behind; piggybacked transfers send no SFTP
 * packet; both handler forms serve; loss, duplication, reordering and a
 * blackout are survived; errors come back as the documented codes and leave
 * the connection usable; sizes past 4 GiB work; the server's memory does
 * not grow with the file.
 *
 * Sources: this file, tests/procs.c and the generated testproto_xdr.c;
 * linked with librpc2_core.la like test_loopback. RPC2_TEST_SMALL=1 scales
 * the matrices and the lossy run down and skips the big sizes (sanitizer
 * builds); RPC2_TEST_SEED=N replays the lossy run's random choices.
 *
 * Waits are bounded and nothing here sleeps to wait for the network; time
 * bounds are generous (a loaded two-core machine).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "procs.h"
#include "testproto.h"
#include "skip.h"
#include "check_run.h"

#define SERVER_PREFIX "testsrv listening on"
#define PROXY_PREFIX "faultproxy listening on"
#define MS 1000u       /* microseconds */
#define SEC (1000u * MS)
#define KiB 1024u
#define MiB (1024u * KiB)
#define GiB (1024ull * MiB)

/* The client's and server's SFTP settings in most tests: a small piggyback
 * limit and MTU-sized packets, so the interesting sizes stay small. */
#define PIGGY_MAX 1000u
#define PIGGY_MAX_TEXT "1000"
#define PACKET 1400u
#define PACKET_TEXT "1400"
#define WINDOW 16u
#define WINDOW_BYTES (WINDOW * PACKET) /* a full window in flight */
#define LOOPBACK_PACKET (63u * KiB)    /* what the client picks on loopback when not told */

#define CHUNK MiB /* streaming compares and fills */

/* ---- scale, time, randomness ------------------------------------------------ */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint32_t xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* RPC2_TEST_SEED, or a fresh seed that failure messages print. */
static uint32_t test_seed(void)
{
    const char *s = getenv("RPC2_TEST_SEED");
    uint32_t seed =
        s && *s ? (uint32_t)strtoul(s, NULL, 0) : (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    return seed ? seed : 1;
}

/* ---- child processes ------------------------------------------------------- */

/* Spawns argv, waits for its "PREFIX PORT" line, and registers it so the
 * teardown can stop what a failed test left behind; returns the port. */
static int child_spawn(const char *const argv[], const char *prefix, pid_t *pid)
{
    int port = procs_child_spawn(argv, prefix, pid);
    ck_assert_msg(port > 0, "%s did not start", argv[0]);
    return port;
}

/* ---- temporary roots ---------------------------------------------------------- */

/*
 * Each test makes its own root, "<base>/sftp_loopback.<runner>.XXXXXX", with
 * the server's files in srv/ (its --root) and the client's in cli/. The
 * checked teardown removes it after a passing test, an atexit handler after
 * a failing one (check's fork mode ends a failed test with exit), and each
 * tcase's unchecked teardown, in the runner, sweeps whatever a test killed
 * on a timeout left: every root carries the runner's PID.
 */
static pid_t runner_pid;
static char root[1024], srv_dir[1100], cli_dir[1100]; /* short: paths append names */
static const char *const root_bases[] = {"/tmp", "/dev/shm"};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void root_remove(void)
{
    if (root[0] != '\0')
        rm_tree(root);
    root[0] = srv_dir[0] = cli_dir[0] = '\0';
}

static void root_make(const char *base)
{
    static bool atexit_set;
    if (!atexit_set) {
        atexit(root_remove);
        atexit_set = true;
    }
    root_remove();
    snprintf(root, sizeof root, "%s/sftp_loopback.%d.XXXXXX", base, (int)runner_pid);
    ck_assert_msg(mkdtemp(root) != NULL, "mkdtemp in %s: %s", base, strerror(errno));
    snprintf(srv_dir, sizeof srv_dir, "%s/srv", root);
    snprintf(cli_dir, sizeof cli_dir, "%s/cli", root);
    ck_assert_int_eq(mkdir(srv_dir, 0755), 0);
    ck_assert_int_eq(mkdir(cli_dir, 0755), 0);
}

static void sweep_roots(void)
{
    char prefix[64], path[PATH_MAX];
    snprintf(prefix, sizeof prefix, "sftp_loopback.%d.", (int)runner_pid);
    for (size_t b = 0; b < sizeof root_bases / sizeof root_bases[0]; b++) {
        DIR *dir = opendir(root_bases[b]);
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                snprintf(path, sizeof path, "%s/%s", root_bases[b], e->d_name);
                rm_tree(path);
            }
        }
        if (dir)
            closedir(dir);
    }
}

static void test_setup(void)
{
    procs_children_reset();
    root_make("/tmp");
}

static void test_teardown(void)
{
    procs_children_stop_leftovers();
    root_remove();
}

static void srv_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", srv_dir, name);
}

static void cli_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", cli_dir, name);
}

/* Free bytes for an unprivileged user on path's filesystem. */
static uint64_t free_bytes(const char *path)
{
    struct statvfs v;
    return statvfs(path, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : 0;
}

/* ---- servers, proxies, clients ------------------------------------------------ */

/* The server options of most tests: packet and piggyback limit as the client's. */
static const char *const SRV_STD[] = {"--packet", PACKET_TEXT, "--piggyback-max", PIGGY_MAX_TEXT,
                                      NULL};

/* A testsrv on listen with --root srv_dir and the extra options; returns its port. */
static int server_start(const char *listen, const char *const extra[], pid_t *pid)
{
    char path[PATH_MAX];
    const char *argv[24] = {path, "--listen", listen, "--root", srv_dir, "--workers", "4"};
    size_t n = 7;
    snprintf(path, sizeof path, "%s/tests/testsrv", procs_builddir());
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof argv / sizeof argv[0]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return child_spawn(argv, SERVER_PREFIX, pid);
}

/* A clean stop: testsrv exits 0 after SIGTERM, with everything freed. */
static void server_stop(pid_t pid)
{
    ck_assert_int_eq(procs_child_stop(pid, SIGTERM), 0);
}

/* The fault proxy in front of 127.0.0.1:server_port, faults as given. */
static int proxy_start(int server_port, const char *const faults[], pid_t *pid)
{
    char path[PATH_MAX], server[32];
    const char *argv[24] = {path, "--listen", "127.0.0.1:0", "--server", server};
    size_t n = 5;
    snprintf(path, sizeof path, "%s/tests/faultproxy", procs_builddir());
    snprintf(server, sizeof server, "127.0.0.1:%d", server_port);
    for (size_t i = 0; faults[i] != NULL && n + 1 < sizeof argv / sizeof argv[0]; i++)
        argv[n++] = faults[i];
    argv[n] = NULL;
    return child_spawn(argv, PROXY_PREFIX, pid);
}

/* The client's SFTP settings of most tests; stream: never piggyback. */
static struct rpc2_sftp_params sftp_params(bool stream)
{
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp);
    sp.packet_size = PACKET;
    sp.window = WINDOW;
    sp.piggyback_max = PIGGY_MAX;
    sp.piggyback = !stream;
    return sp;
}

static rpc2_ctx *client_new(const struct rpc2_params *p, const struct rpc2_sftp_params *sp)
{
    rpc2_ctx *ctx = NULL;
    ck_assert_int_eq(rpc2_ctx_new(p, &ctx), 0);
    ck_assert_int_eq(rpc2_sftp_activate(ctx, sp), 0);
    return ctx;
}

static rpc2_ctx *client_std(bool stream)
{
    struct rpc2_params p;
    struct rpc2_sftp_params sp = sftp_params(stream);
    rpc2_params_init(&p);
    return client_new(&p, &sp);
}

static rpc2_conn *bind_ok(rpc2_ctx *ctx, const char *host, int port)
{
    char port_text[16];
    rpc2_conn *conn = NULL;
    snprintf(port_text, sizeof port_text, "%d", port);
    struct rpc2_bind_params bp = {.host = host,
                                  .port = port_text,
                                  .subsystem = TEST_SUBSYS,
                                  .se_type = RPC2_SE_SFTP,
                                  .identity = "test_sftp_loopback"};
    int rc = rpc2_bind(ctx, &bp, &conn);
    ck_assert_msg(rc == 0, "bind to %s port %d: %s", host, port, rpc2_errname(rc));
    return conn;
}

static struct rpc2_sftp_stats sftp_stats(const rpc2_ctx *ctx)
{
    struct rpc2_sftp_stats st;
    ck_assert_int_eq(rpc2_sftp_stats(ctx, &st), 0);
    return st;
}

static uint32_t proc_of(enum rpc2_se_direction dir, bool blocking)
{
    if (dir == RPC2_SE_FETCH)
        return blocking ? TEST_FETCH_BLOCKING : TEST_FETCH;
    return blocking ? TEST_STORE_BLOCKING : TEST_STORE;
}

/* One transfer: the server's end as the arguments say, the client's in d.
 * *moved gets the bytes the server's end moved (-1 when no result came). */
static int call_xfer(rpc2_conn *conn, uint32_t proc, const char *srv_name, int64_t offset,
                     int64_t quota, int kind, int atomic, struct rpc2_se_desc *d, int64_t *moved)
{
    xfer_args a = {
        .path = (char *)srv_name, .offset = offset, .quota = quota, .kind = kind, .atomic = atomic};
    quad_t m = -1;
    struct rpc2_call_opts opts = {.se = d};
    int rc = rpc2_call(conn, proc, (xdrproc_t)xdr_xfer_args, &a, (xdrproc_t)xdr_quad_t, &m, &opts);
    if (moved)
        *moved = m;
    return rc;
}

static struct rpc2_se_desc desc_new(enum rpc2_se_direction dir, int64_t offset, int64_t quota)
{
    struct rpc2_se_desc d;
    memset(&d, 0, sizeof d);
    d.type = RPC2_SE_SFTP;
    d.direction = dir;
    d.seek_offset = offset;
    d.quota = quota;
    return d;
}

static struct rpc2_se_desc desc_name(enum rpc2_se_direction dir, const char *path, int atomic)
{
    struct rpc2_se_desc d = desc_new(dir, 0, -1);
    d.file_kind = RPC2_SE_FILE_NAME;
    d.file.name.path = path;
    d.file.name.mode = 0644;
    d.file.name.atomic = atomic;
    return d;
}

static struct rpc2_se_desc desc_fd(enum rpc2_se_direction dir, int fd)
{
    struct rpc2_se_desc d = desc_new(dir, 0, -1);
    d.file_kind = RPC2_SE_FILE_FD;
    d.file.fd.fd = fd;
    return d;
}

/* ---- contents: a pattern and a sparse file ------------------------------------ */

/* The byte at offset i of a pattern file made with seed. */
static inline uint8_t pat(uint64_t i, uint32_t seed)
{
    uint64_t x = (i + ((uint64_t)seed << 40)) * 0x9E3779B97F4A7C15ull;
    return (uint8_t)((x ^ x >> 29) >> 24);
}

static void pat_fill(uint8_t *buf, size_t n, uint64_t start, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(start + i, seed);
}

static void write_all(int fd, const uint8_t *buf, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t k = write(fd, buf, n);
        ck_assert_msg(k > 0, "writing %s: %s", what, strerror(errno));
        buf += k;
        n -= (size_t)k;
    }
}

/* A file of size pattern bytes. */
static void pattern_file(const char *path, uint64_t size, uint32_t seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "creating %s: %s", path, strerror(errno));
    uint8_t *buf = malloc(CHUNK);
    ck_assert_ptr_nonnull(buf);
    for (uint64_t at = 0; at < size; at += CHUNK) {
        size_t n = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
        pat_fill(buf, n, at, seed);
        write_all(fd, buf, n, path);
    }
    free(buf);
    ck_assert_int_eq(close(fd), 0);
}

/* The whole file, malloc'ed (at least one byte, so never NULL); *len its size. */
static uint8_t *read_file(const char *path, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "opening %s: %s", path, strerror(errno));
    ck_assert_int_eq(fstat(fd, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        ck_assert_msg(n > 0, "reading %s: %s", path, strerror(errno));
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Entries of dir other than . and ..; a leftover temporary would be one. */
static unsigned dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/*
 * img must be dst_off zero bytes and then the n pattern bytes from src_off,
 * or nothing at all when n is 0 (a sink that received nothing writes
 * nothing, so an offset makes no hole either).
 */
static void expect_image(const uint8_t *img, size_t len, uint64_t dst_off, uint64_t src_off,
                         uint64_t n, uint32_t seed, const char *what)
{
    uint64_t want = n ? dst_off + n : 0;
    ck_assert_msg(len == want, "%s: %zu bytes, expected %" PRIu64, what, len, want);
    /* no assertion per byte: each one costs check a message to the runner */
    for (size_t i = 0; i < len; i++) {
        uint8_t e = i < dst_off ? 0 : pat(src_off + i - dst_off, seed);
        if (img[i] != e)
            ck_abort_msg("%s: byte %zu is %u, expected %u", what, i, img[i], e);
    }
}

/* Streams path against the pattern: size bytes from src_off. */
static void expect_pattern_file(const char *path, uint64_t size, uint64_t src_off, uint32_t seed)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "opening %s: %s", path, strerror(errno));
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_msg((uint64_t)st.st_size == size, "%s: %lld bytes, expected %" PRIu64, path,
                  (long long)st.st_size, size);
    uint8_t *got = malloc(CHUNK), *want = malloc(CHUNK);
    ck_assert(got && want);
    for (uint64_t at = 0; at < size;) {
        ssize_t n = read(fd, got, CHUNK);
        ck_assert_msg(n > 0, "reading %s at %" PRIu64 ": %s", path, at, strerror(errno));
        pat_fill(want, (size_t)n, src_off + at, seed);
        if (memcmp(got, want, (size_t)n) != 0) {
            size_t i = 0;
            while (got[i] == want[i])
                i++;
            ck_abort_msg("%s: byte %" PRIu64 " is %u, expected %u", path, at + i, got[i], want[i]);
        }
        at += (uint64_t)n;
    }
    free(got);
    free(want);
    close(fd);
}

/*
 * The sparse files of the big tests: zeros, except one nonzero byte at each
 * marker offset, some of them past 4 GiB (so a 32-bit offset anywhere
 * shows). Only the markers below the file's size are there.
 */
static const uint64_t markers[] = {
    0,           1,       MiB + 3,     64ull * MiB - 1, 64ull * MiB, GiB + 17,
    4 * GiB - 1, 4 * GiB, 4 * GiB + 1, 4 * GiB + 12345, 5 * GiB - 2, 5 * GiB - 1,
};
#define N_MARKERS (sizeof markers / sizeof markers[0])

static uint8_t marker_value(size_t i)
{
    return (uint8_t)(0x5A + 37 * i) | 1;
}

static void sparse_file(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "creating %s: %s", path, strerror(errno));
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    for (size_t i = 0; i < N_MARKERS; i++) {
        uint8_t v = marker_value(i);
        if (markers[i] < size)
            ck_assert_int_eq(pwrite(fd, &v, 1, (off_t)markers[i]), 1);
    }
    ck_assert_int_eq(close(fd), 0);
}

/* Checks a sparse file's bytes as they stream past, in any chunk sizes. */
struct sparse_check {
    uint64_t pos;
    uint64_t bad_at; /* first wrong byte, UINT64_MAX: none */
};

static const uint8_t zeros[CHUNK];

static bool all_zero(const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n < CHUNK ? n : CHUNK;
        if (memcmp(p, zeros, k) != 0)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

static void sparse_check_feed(struct sparse_check *c, const uint8_t *buf, size_t n)
{
    uint64_t at = c->pos, end = c->pos + n; /* markers[] is sorted */
    for (size_t m = 0; m < N_MARKERS && c->bad_at == UINT64_MAX; m++) {
        if (markers[m] < at)
            continue;
        if (markers[m] >= end)
            break;
        if (!all_zero(buf + (at - c->pos), (size_t)(markers[m] - at)))
            c->bad_at = at;
        else if (buf[markers[m] - c->pos] != marker_value(m))
            c->bad_at = markers[m];
        at = markers[m] + 1;
    }
    if (c->bad_at == UINT64_MAX && !all_zero(buf + (at - c->pos), (size_t)(end - at)))
        c->bad_at = at;
    c->pos = end;
}

static void expect_sparse_file(const char *path, uint64_t size)
{
    struct sparse_check c = {.bad_at = UINT64_MAX};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "opening %s: %s", path, strerror(errno));
    uint8_t *buf = malloc(CHUNK);
    ck_assert_ptr_nonnull(buf);
    ssize_t n;
    while ((n = read(fd, buf, CHUNK)) > 0 && c.bad_at == UINT64_MAX)
        sparse_check_feed(&c, buf, (size_t)n);
    ck_assert_msg(n >= 0, "reading %s: %s", path, strerror(errno));
    free(buf);
    close(fd);
    ck_assert_msg(c.bad_at == UINT64_MAX, "%s: wrong byte at %" PRIu64, path, c.bad_at);
    ck_assert_msg(c.pos == size, "%s: %" PRIu64 " bytes, expected %" PRIu64, path, c.pos, size);
}

/* A thread reading a pipe to its end, checking (sparse), keeping the
 * first cap bytes in capture, or discarding; c.pos counts the bytes. */
struct pipe_reader {
    pthread_t thread;
    int fd;
    bool check;
    uint8_t *capture;
    size_t cap;
    struct sparse_check c;
    int error;
};

static void *pipe_reader_main(void *arg)
{
    struct pipe_reader *r = arg;
    uint8_t *buf = malloc(CHUNK);
    ssize_t n;
    r->c = (struct sparse_check){.bad_at = UINT64_MAX};
    while (buf && (n = read(r->fd, buf, CHUNK)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->error = errno;
            break;
        }
        if (r->capture && r->c.pos < r->cap) {
            size_t k =
                r->cap - (size_t)r->c.pos < (size_t)n ? r->cap - (size_t)r->c.pos : (size_t)n;
            memcpy(r->capture + r->c.pos, buf, k);
        }
        if (r->check && r->c.bad_at == UINT64_MAX)
            sparse_check_feed(&r->c, buf, (size_t)n);
        else
            r->c.pos += (uint64_t)n;
    }
    free(buf);
    return NULL;
}

/* A pipe with a reader thread on its read end; returns the write end. */
static int pipe_reader_start(struct pipe_reader *r, bool check, uint8_t *capture, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    (void)fcntl(fds[1], F_SETPIPE_SZ, (int)MiB); /* fewer wake-ups; a smaller pipe works too */
    *r = (struct pipe_reader){.fd = fds[0], .check = check, .capture = capture, .cap = cap};
    ck_assert_int_eq(pthread_create(&r->thread, NULL, pipe_reader_main, r), 0);
    return fds[1];
}

static void pipe_reader_finish(struct pipe_reader *r, int write_end)
{
    close(write_end);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

/* ---- the client's end of a transfer, of any kind ------------------------------ */

enum ckind { CK_NAME, CK_ATOMIC, CK_FD, CK_INODE, CK_VM, N_CKINDS };
static const char *const ckind_names[N_CKINDS] = {"name", "name+atomic", "fd", "inode", "vm"};

#define N_SKINDS 4
static const int skinds[N_SKINDS] = {TEST_KIND_NAME, TEST_KIND_FD, TEST_KIND_VM, TEST_KIND_INODE};
static const char *skind_name(int k)
{
    return k == TEST_KIND_NAME ? "name"
           : k == TEST_KIND_FD ? "fd"
           : k == TEST_KIND_VM ? "vm"
                               : "inode";
}

/*
 * Opening by handle (open_by_handle_at) needs CAP_DAC_READ_SEARCH, which a
 * developer's or CI's unprivileged user lacks: then the inode kinds, on
 * either end (testsrv runs as the same user), are left out, once said.
 */
static bool inode_kind_works(void)
{
    static int works = -1;
    if (works >= 0)
        return works;
    char path[PATH_MAX];
    cli_path(path, sizeof path, ".inode-probe");
    close(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
    union {
        struct file_handle fh;
        unsigned char raw[sizeof(struct file_handle) + RPC2_SE_HANDLE_MAX];
    } h;
    works = 0;
    if (rpc2_se_inode_of(path, &d) == 0) {
        h.fh.handle_bytes = d.file.inode.handle_bytes;
        h.fh.handle_type = d.file.inode.handle_type;
        memcpy(h.fh.f_handle, d.file.inode.handle, d.file.inode.handle_bytes);
        int fd = open_by_handle_at(d.file.inode.mount_fd, &h.fh, O_RDONLY | O_CLOEXEC);
        works = fd >= 0;
        if (fd >= 0)
            close(fd);
        close(d.file.inode.mount_fd);
    }
    unlink(path);
    if (!works)
        fprintf(stderr, "open_by_handle_at refused (no CAP_DAC_READ_SEARCH?): the inode file "
                        "kinds are left out\n");
    return works;
}

/* Whether a case can run here: both of its ends' kinds work. */
static bool kinds_work(enum ckind ck, int sk)
{
    return (ck != CK_INODE && sk != TEST_KIND_INODE) || inode_kind_works();
}

struct cend {
    enum ckind kind;
    char path[PATH_MAX];
    int fd;
    uint8_t *buf;
    struct rpc2_se_desc d;
};

static void cend_kind(struct cend *e, enum rpc2_se_direction dir)
{
    switch (e->kind) {
    case CK_NAME:
    case CK_ATOMIC:
        e->d.file_kind = RPC2_SE_FILE_NAME;
        e->d.file.name.path = e->path;
        e->d.file.name.mode = 0644;
        e->d.file.name.atomic = e->kind == CK_ATOMIC;
        break;
    case CK_FD:
        e->fd = dir == RPC2_SE_FETCH ? open(e->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                                     : open(e->path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(e->fd >= 0, "opening %s: %s", e->path, strerror(errno));
        e->d.file_kind = RPC2_SE_FILE_FD;
        e->d.file.fd.fd = e->fd;
        break;
    case CK_INODE: /* a sink by handle must exist */
        if (dir == RPC2_SE_FETCH)
            close(open(e->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        ck_assert_int_eq(rpc2_se_inode_of(e->path, &e->d), 0);
        break;
    case CK_VM:
        e->d.file_kind = RPC2_SE_FILE_VM;
        e->d.file.vm.buf = e->buf;
        break;
    case N_CKINDS:
        break;
    }
}

/* A source of size pattern bytes at path (or in memory). */
static void cend_source(struct cend *e, enum ckind kind, const char *path, uint64_t size,
                        uint32_t seed, int64_t offset, int64_t quota)
{
    *e = (struct cend){.kind = kind, .fd = -1, .d = desc_new(RPC2_SE_STORE, offset, quota)};
    snprintf(e->path, sizeof e->path, "%s", path);
    if (kind == CK_VM) {
        e->buf = malloc(size + 1);
        ck_assert_ptr_nonnull(e->buf);
        pat_fill(e->buf, size, 0, seed);
        e->d.file.vm.len = size;
    } else {
        pattern_file(path, size, seed);
    }
    cend_kind(e, RPC2_SE_STORE);
}

/* A sink at path (which must not exist) or a zeroed buffer of room bytes. */
static void cend_sink(struct cend *e, enum ckind kind, const char *path, int64_t offset,
                      int64_t quota, size_t room)
{
    *e = (struct cend){.kind = kind, .fd = -1, .d = desc_new(RPC2_SE_FETCH, offset, quota)};
    snprintf(e->path, sizeof e->path, "%s", path);
    if (kind == CK_VM) {
        e->buf = calloc(1, room);
        ck_assert_ptr_nonnull(e->buf);
        e->d.file.vm.max = room;
    }
    cend_kind(e, RPC2_SE_FETCH);
}

/* What the sink holds, as a file would: the buffer up to the end of the
 * data for memory (nothing if no data came). */
static uint8_t *cend_image(const struct cend *e, size_t *len)
{
    if (e->kind != CK_VM)
        return read_file(e->path, len);
    size_t n = e->d.file.vm.len ? (size_t)e->d.seek_offset + e->d.file.vm.len : 0;
    uint8_t *img = malloc(n + 1);
    ck_assert_ptr_nonnull(img);
    memcpy(img, e->buf, n);
    *len = n;
    return img;
}

static void cend_close(struct cend *e)
{
    if (e->fd >= 0)
        close(e->fd);
    if (e->kind == CK_INODE)
        close(e->d.file.inode.mount_fd);
    free(e->buf);
    unlink(e->path);
    e->fd = -1;
    e->buf = NULL;
}

/* ---- one transfer of the matrices, with its expected outcome ------------------ */

struct mcase {
    enum rpc2_se_direction dir;
    enum ckind ck;
    int sk;         /* TEST_KIND_* */
    uint64_t size;  /* of the source file */
    int64_t coff;   /* client's seek offset */
    int64_t soff;   /* server's seek offset */
    int64_t cquota; /* client's quota, -1: none */
    int64_t squota; /* server's quota */
    bool stream;    /* the client never piggybacks */
    bool blocking;  /* the TEST_*_BLOCKING procedures */
};

/* What the matrices talk to: one server, a piggybacking and a streaming client. */
struct env {
    pid_t srv;
    int port;
    rpc2_ctx *ctx[2]; /* [stream] */
    rpc2_conn *conn[2];
    bool exact_counts;  /* no loss on the path: packet counts are exact */
    uint32_t piggy_max; /* the clients' piggyback_max */
    unsigned serial;    /* names each case's files */
};

static void env_start(struct env *env, const char *host, const char *listen)
{
    *env = (struct env){.exact_counts = true, .piggy_max = PIGGY_MAX};
    env->port = server_start(listen, SRV_STD, &env->srv);
    for (int s = 0; s < 2; s++) {
        env->ctx[s] = client_std(s == 1);
        env->conn[s] = bind_ok(env->ctx[s], host, env->port);
    }
}

static void env_stop(struct env *env)
{
    for (int s = 0; s < 2; s++) {
        rpc2_unbind(env->conn[s]);
        rpc2_ctx_free(env->ctx[s]);
    }
    server_stop(env->srv);
}

static int64_t min_quota(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static uint64_t data_packets(uint64_t n, uint32_t packet)
{
    return n == 0 ? 1 : (n + packet - 1) / packet; /* an empty stream is one empty LAST */
}

static void describe(char *out, size_t cap, const struct mcase *c)
{
    snprintf(out, cap,
             "%s %s client=%s server=%s size=%" PRIu64 " coff=%" PRId64 " soff=%" PRId64
             " cquota=%" PRId64 " squota=%" PRId64 " %s",
             c->dir == RPC2_SE_FETCH ? "fetch" : "store", c->blocking ? "blocking" : "async",
             ckind_names[c->ck], skind_name(c->sk), c->size, c->coff, c->soff, c->cquota, c->squota,
             c->stream ? "streamed" : "piggyback allowed");
}

/*
 * Runs one case and checks everything about it:
 *  - the bytes: the sink holds exactly what the source had in the range;
 *  - the counts: the server's result and the client's bytes_transferred;
 *  - the descriptor: statuses, quota_exceeded, the fd's new position;
 *  - the way: piggybacked (no SFTP packet) or streamed (one DATA per packet
 *    of the client's size, the server following the client's choice).
 *
 * The model: the source's range starts at its own seek offset and ends at
 * its end of file or after the smaller quota (a fetch's server source obeys
 * both quotas; a store's client source only its own, and the server's sink
 * cuts at its quota: the client then sent more than was kept). The sink
 * writes the bytes at its own seek offset.
 */
static void run_case(struct env *env, const struct mcase *c, uint32_t seed)
{
    char what[256], name[32], spath[PATH_MAX], cpath[PATH_MAX];
    bool fetch = c->dir == RPC2_SE_FETCH;
    if (!kinds_work(c->ck, c->sk))
        return;
    describe(what, sizeof what, c);
    snprintf(what + strlen(what), sizeof what - strlen(what), " (pattern %u)", seed);
    snprintf(name, sizeof name, "f%u", env->serial++);
    srv_path(spath, sizeof spath, name);
    cli_path(cpath, sizeof cpath, name);

    uint64_t src_off = (uint64_t)(fetch ? c->soff : c->coff);
    uint64_t dst_off = (uint64_t)(fetch ? c->coff : c->soff);
    uint64_t avail = c->size > src_off ? c->size - src_off : 0;
    int64_t q = min_quota(c->cquota, c->squota);
    uint64_t n = q >= 0 && avail > (uint64_t)q ? (uint64_t)q : avail;
    uint64_t sent = n; /* by the client's end; a store's client obeys its own quota only */
    if (!fetch)
        sent = c->cquota >= 0 && avail > (uint64_t)c->cquota ? (uint64_t)c->cquota : avail;
    bool exceeded = q >= 0 && avail > (uint64_t)q;
    bool piggy = !c->stream && sent <= env->piggy_max;

    struct cend e;
    if (fetch) {
        pattern_file(spath, c->size, seed);
        cend_sink(&e, c->ck, cpath, c->coff, c->cquota, (size_t)(c->coff + c->size + 64));
    } else {
        cend_source(&e, c->ck, cpath, c->size, seed, c->coff, c->cquota);
    }
    rpc2_ctx *ctx = env->ctx[c->stream];
    struct rpc2_sftp_stats before = sftp_stats(ctx);
    int64_t moved, t0 = now_us();
    int rc = call_xfer(env->conn[c->stream], proc_of(c->dir, c->blocking), name, c->soff, c->squota,
                       c->sk, 0, &e.d, &moved);
    struct rpc2_sftp_stats after = sftp_stats(ctx);
    if (getenv("RPC2_TEST_VERBOSE"))
        fprintf(stderr, "%s: %s in %.3f s\n", what, rpc2_errname(rc), (now_us() - t0) / 1e6);

    if (c->ck == CK_ATOMIC && fetch && c->coff != 0) {
        /* An atomic sink writes a whole new file: refused before anything is sent. */
        ck_assert_msg(rc == RPC2_EINVAL, "%s: %s, expected RPC2_EINVAL", what, rpc2_errname(rc));
        ck_assert_int_eq(after.transfers, before.transfers + 1);
        ck_assert_int_eq(after.failed, before.failed + 1);
        ck_assert_msg(!file_exists(cpath), "%s: the refused sink made a file", what);
        cend_close(&e);
        unlink(spath);
        return;
    }
    ck_assert_msg(rc == 0, "%s: %s (desc.error %s)", what, rpc2_errname(rc),
                  rpc2_errname(e.d.error));
    ck_assert_msg(moved == (int64_t)n, "%s: the server moved %" PRId64 ", expected %" PRIu64, what,
                  moved, n);
    ck_assert_msg(e.d.bytes_transferred == sent,
                  "%s: bytes_transferred %" PRIu64 ", expected %" PRIu64, what,
                  e.d.bytes_transferred, sent);
    ck_assert_msg(e.d.local_status == RPC2_SE_SUCCESS && e.d.remote_status == RPC2_SE_SUCCESS &&
                      e.d.error == 0,
                  "%s: statuses %d/%d error %s", what, e.d.local_status, e.d.remote_status,
                  rpc2_errname(e.d.error));
    ck_assert_msg(!!e.d.quota_exceeded == exceeded, "%s: quota_exceeded %d", what,
                  e.d.quota_exceeded);
    if (c->ck == CK_FD) /* the transfer advances the fd, like read/write */
        ck_assert_int_eq(lseek(e.fd, 0, SEEK_CUR), c->coff + (int64_t)sent);

    ck_assert_uint_eq(after.transfers, before.transfers + 1);
    ck_assert_uint_eq(after.failed, before.failed);
    uint64_t got_data = after.data_received - before.data_received;
    uint64_t sent_data = after.data_sent - before.data_sent;
    if (piggy) {
        /* counted on the client either way; no DATA, ACK or START */
        ck_assert_msg(after.piggybacked == before.piggybacked + 1, "%s: not piggybacked", what);
        uint64_t control = after.acks_sent + after.acks_received + after.starts_sent -
                           (before.acks_sent + before.acks_received + before.starts_sent);
        ck_assert_msg(got_data == 0 && sent_data == 0 && control == 0,
                      "%s: piggybacked, yet %" PRIu64 " DATA received, %" PRIu64 " sent, %" PRIu64
                      " ACK/START",
                      what, got_data, sent_data, control);
    } else {
        ck_assert_msg(after.piggybacked == before.piggybacked, "%s: piggybacked", what);
        /* Unique DATA packets of the client's packet size: the server followed. */
        uint64_t unique = fetch
                              ? got_data - (after.data_duplicates - before.data_duplicates)
                              : sent_data - (after.data_retransmitted - before.data_retransmitted);
        if (env->exact_counts)
            ck_assert_msg(unique == data_packets(sent, PACKET),
                          "%s: %" PRIu64 " DATA packets, expected %" PRIu64, what, unique,
                          data_packets(sent, PACKET));
        else
            ck_assert_msg(unique > 0, "%s: streamed without DATA", what);
    }

    size_t len;
    uint8_t *img;
    if (fetch) {
        img = cend_image(&e, &len);
        expect_image(img, len, dst_off, src_off, n, seed, what);
    } else {
        ck_assert_msg(file_exists(spath), "%s: no file on the server", what);
        img = read_file(spath, &len);
        /* testsrv writes a memory sink's vm.len bytes to a fresh file */
        expect_image(img, len, c->sk == TEST_KIND_VM ? 0 : dst_off, src_off, n, seed, what);
    }
    free(img);
    cend_close(&e);
    unlink(spath);
}

/* ---- 1. the matrices ---------------------------------------------------------- */

/* The sizes where something changes: nothing, one byte, the piggyback limit
 * and one past it, the window's worth of packets and one either side, and
 * a size of many windows. */
static const uint64_t matrix_sizes[] = {
    0, 1, PIGGY_MAX, PIGGY_MAX + 1, WINDOW_BYTES - 1, WINDOW_BYTES, WINDOW_BYTES + 1, MiB,
};
#define N_SIZES (sizeof matrix_sizes / sizeof matrix_sizes[0])

/*
 * Every client kind x every server kind x both directions x piggybacked or
 * streamed x every size, whole files. Under RPC2_TEST_SMALL the server kind
 * rotates instead of multiplying.
 */
START_TEST(test_kinds_by_sizes)
{
    struct env env;
    uint32_t seed = test_seed();
    env_start(&env, "127.0.0.1", "127.0.0.1:0");
    unsigned i = 0;
    for (int dir = RPC2_SE_FETCH; dir <= RPC2_SE_STORE; dir++)
        for (int ck = 0; ck < N_CKINDS; ck++)
            for (int sk = 0; sk < N_SKINDS; sk++)
                for (int stream = 0; stream < 2; stream++)
                    for (size_t s = 0; s < N_SIZES; s++, i++) {
                        if (procs_small_run() && sk != (dir * N_CKINDS + ck + stream) % N_SKINDS)
                            continue;
                        struct mcase c = {.dir = (enum rpc2_se_direction)dir,
                                          .ck = (enum ckind)ck,
                                          .sk = skinds[sk],
                                          .size = matrix_sizes[s],
                                          .coff = 0,
                                          .soff = 0,
                                          .cquota = -1,
                                          .squota = -1,
                                          .stream = stream,
                                          .blocking = i % 2};
                        run_case(&env, &c, seed + i);
                    }
    env_stop(&env);
}
END_TEST

/* Byte ranges and quotas: each row against every client kind, both
 * directions, piggybacked and streamed, at sizes on both sides of the
 * piggyback limit and a big one. Offsets stay within the source (past the
 * end is an error case of its own, below). */
/* clang-format off */
static const struct range_row {
    const char *name;
    int64_t coff, soff, cquota, squota;
} ranges[] = {
    /* name                      coff  soff  cquota   squota */
    {"client offset",             777,    0,     -1,      -1},
    {"server offset",               0,  333,     -1,      -1},
    {"both offsets",              500,  250,     -1,      -1},
    {"client quota cuts",           0,  100,    600,      -1},
    {"server quota cuts",         100,    0,     -1,     700},
    {"the smaller quota wins",      0,    0,   5000,    3000},
    {"quota above the size",        0,    0, 1 << 30,     -1},
    {"client quota 0",            300,    0,      0,      -1},
    {"server quota 0",              0,    0,     -1,       0},
};
/* clang-format on */
#define N_RANGES (sizeof ranges / sizeof ranges[0])
static const uint64_t range_sizes[] = {PIGGY_MAX + 1, WINDOW_BYTES + 1, MiB};
#define N_RANGE_SIZES (sizeof range_sizes / sizeof range_sizes[0])

START_TEST(test_ranges_and_quotas)
{
    struct env env;
    uint32_t seed = test_seed();
    env_start(&env, "127.0.0.1", "127.0.0.1:0");
    unsigned i = 0;
    for (size_t r = 0; r < N_RANGES; r++)
        for (int dir = RPC2_SE_FETCH; dir <= RPC2_SE_STORE; dir++)
            for (int ck = 0; ck < N_CKINDS; ck++)
                for (int stream = 0; stream < 2; stream++)
                    for (size_t s = 0; s < N_RANGE_SIZES; s++, i++) {
                        if (procs_small_run() && (i % 3) != 0)
                            continue;
                        const struct range_row *row = &ranges[r];
                        struct mcase c = {.dir = (enum rpc2_se_direction)dir,
                                          .ck = (enum ckind)ck,
                                          .sk = skinds[i % N_SKINDS],
                                          .size = range_sizes[s],
                                          .coff = row->coff,
                                          .soff = row->soff,
                                          .cquota = row->cquota,
                                          .squota = row->squota,
                                          .stream = stream,
                                          .blocking = (i / 2) % 2};
                        /* testsrv copies a memory sink to its file from the
                         * buffer's start, ignoring the server offset: such a
                         * store would not be the library's doing (see the
                         * report), so the server end is by name there. */
                        if (c.sk == TEST_KIND_VM && dir == RPC2_SE_STORE && c.soff != 0)
                            c.sk = TEST_KIND_NAME;
                        run_case(&env, &c, seed + i);
                    }
    env_stop(&env);
}
END_TEST

/* The same over IPv6 loopback, a few cases. */
static bool have_ipv6_loopback(void)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

START_TEST(test_ipv6)
{
    if (!have_ipv6_loopback()) {
        test_skip("test_ipv6", machine_has_ipv6_loopback(), "no ::1 on this host");
        return;
    }
    struct env env;
    env_start(&env, "::1", "[::1]:0");
    unsigned i = 0;
    for (int dir = RPC2_SE_FETCH; dir <= RPC2_SE_STORE; dir++)
        for (int stream = 0; stream < 2; stream++)
            for (size_t s = 0; s < N_SIZES; s++, i++) {
                struct mcase c = {.dir = (enum rpc2_se_direction)dir,
                                  .ck = (enum ckind)(i % N_CKINDS),
                                  .sk = skinds[i % N_SKINDS],
                                  .size = matrix_sizes[s],
                                  .cquota = -1,
                                  .squota = -1,
                                  .stream = stream};
                run_case(&env, &c, 99 + i);
            }
    env_stop(&env);
}
END_TEST

/* ---- 2. fds concatenate; a failed atomic sink leaves nothing ------------------- */

START_TEST(test_fd_fetches_concatenate)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    rpc2_ctx *ctx = client_std(false);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char a[PATH_MAX], b[PATH_MAX], out[PATH_MAX];
    const uint64_t size_a = 700, size_b = 50000; /* one piggybacked, one streamed */
    srv_path(a, sizeof a, "a");
    srv_path(b, sizeof b, "b");
    cli_path(out, sizeof out, "cat");
    pattern_file(a, size_a, 1);
    pattern_file(b, size_b, 2);

    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    int64_t moved;
    struct rpc2_se_desc d = desc_fd(RPC2_SE_FETCH, fd);
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "a", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    ck_assert_int_eq(moved, size_a);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), size_a);
    d = desc_fd(RPC2_SE_FETCH, fd);
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "b", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    ck_assert_int_eq(moved, size_b);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), size_a + size_b);
    close(fd);

    size_t len;
    uint8_t *img = read_file(out, &len);
    ck_assert_uint_eq(len, size_a + size_b);
    expect_image(img, size_a, 0, 0, size_a, 1, "first fetch");
    expect_image(img + size_a, size_b, 0, 0, size_b, 2, "second fetch");
    free(img);

    /* The same into a pipe: two fetches, one stream, in order. */
    struct pipe_reader r;
    uint8_t *piped = malloc(size_a + size_b);
    ck_assert_ptr_nonnull(piped);
    int w = pipe_reader_start(&r, false, piped, size_a + size_b);
    d = desc_fd(RPC2_SE_FETCH, w);
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "b", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    d = desc_fd(RPC2_SE_FETCH, w);
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "a", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    pipe_reader_finish(&r, w);
    ck_assert_int_eq(r.error, 0);
    ck_assert_uint_eq(r.c.pos, size_a + size_b);
    expect_image(piped, size_b, 0, 0, size_b, 2, "first fetch into the pipe");
    expect_image(piped + size_b, size_a, 0, 0, size_a, 1, "second fetch into the pipe");
    free(piped);

    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

START_TEST(test_atomic_sink_failure_leaves_nothing)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    rpc2_ctx *ctx = client_std(false);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char out[PATH_MAX], old[PATH_MAX];
    cli_path(out, sizeof out, "out");
    cli_path(old, sizeof old, "old");
    pattern_file(old, 3000, 5);

    for (int kind = 0; kind < 2; kind++) { /* the server's end by name, then by fd */
        int sk = kind ? TEST_KIND_FD : TEST_KIND_NAME;
        /* a new name: nothing appears */
        struct rpc2_se_desc d = desc_name(RPC2_SE_FETCH, out, 1);
        int rc = call_xfer(conn, TEST_FETCH, "missing", 0, -1, sk, 0, &d, NULL);
        ck_assert_msg(rc < 0, "fetch of a missing file: %d", rc);
        ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
        ck_assert_msg(!file_exists(out), "a failed atomic fetch left a file at the name");
        ck_assert_uint_eq(dir_entries(cli_dir), 1); /* only "old": no temporary */

        /* an existing name: left as it was */
        d = desc_name(RPC2_SE_FETCH, old, 1);
        rc = call_xfer(conn, TEST_FETCH_BLOCKING, "missing", 0, -1, sk, 0, &d, NULL);
        ck_assert_msg(rc < 0, "fetch of a missing file: %d", rc);
        size_t len;
        uint8_t *img = read_file(old, &len);
        expect_image(img, len, 0, 0, 3000, 5, "the file a failed atomic fetch must not touch");
        free(img);
        ck_assert_uint_eq(dir_entries(cli_dir), 1);
    }
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 3. piggybacking ------------------------------------------------------------ */

START_TEST(test_piggyback_sends_no_sftp_packet)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    rpc2_ctx *ctx = client_std(false);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char src[PATH_MAX];
    srv_path(src, sizeof src, "small");
    pattern_file(src, PIGGY_MAX, 3);

    /* a fetch and a store of exactly the limit, and one of nothing */
    uint8_t buf[PIGGY_MAX], back[PIGGY_MAX];
    struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.max = sizeof buf;
    int64_t moved;
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "small", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    ck_assert_uint_eq(d.file.vm.len, PIGGY_MAX);
    expect_image(buf, d.file.vm.len, 0, 0, PIGGY_MAX, 3, "piggybacked fetch");

    d = desc_new(RPC2_SE_STORE, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.len = sizeof buf;
    ck_assert_int_eq(call_xfer(conn, TEST_STORE, "copy", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    ck_assert_int_eq(moved, PIGGY_MAX);
    d = desc_new(RPC2_SE_STORE, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = back;
    d.file.vm.len = 0;
    ck_assert_int_eq(call_xfer(conn, TEST_STORE, "empty", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    ck_assert_int_eq(moved, 0);
    char stored[PATH_MAX];
    size_t len;
    srv_path(stored, sizeof stored, "copy");
    uint8_t *img = read_file(stored, &len);
    expect_image(img, len, 0, 0, PIGGY_MAX, 3, "piggybacked store");
    free(img);
    srv_path(stored, sizeof stored, "empty");
    free(read_file(stored, &len));
    ck_assert_uint_eq(len, 0);

    struct rpc2_sftp_stats st = sftp_stats(ctx);
    ck_assert_uint_eq(st.transfers, 3);
    ck_assert_uint_eq(st.piggybacked, 3);
    ck_assert_uint_eq(st.data_sent, 0);
    ck_assert_uint_eq(st.data_received, 0);
    ck_assert_uint_eq(st.acks_sent + st.acks_received + st.starts_sent, 0);

    /* one byte more streams */
    pattern_file(src, PIGGY_MAX + 1, 3);
    uint8_t big[PIGGY_MAX + 1];
    d = desc_new(RPC2_SE_FETCH, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = big;
    d.file.vm.max = sizeof big;
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "small", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    expect_image(big, d.file.vm.len, 0, 0, PIGGY_MAX + 1, 3, "streamed fetch");
    uint64_t piggybacked = st.piggybacked;
    st = sftp_stats(ctx);
    ck_assert_uint_eq(st.piggybacked, piggybacked);
    ck_assert_uint_eq(st.data_received, 1); /* PIGGY_MAX + 1 < PACKET: one DATA */
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/*
 * The client decides the packet size of each transfer (sftp.c: the CALL's
 * block carries it and the server takes it as is): a server started with
 * --packet 1400 still sends 63 KiB packets to a client that chose them, and
 * MTU-sized ones to a client that asked for 1400.
 */
START_TEST(test_server_follows_client_packet_size)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    rpc2_params_init(&p);
    rpc2_sftp_params_init(&sp); /* packet 0: the client picks 63 KiB on loopback */
    sp.piggyback = 0;
    rpc2_ctx *ctx = client_new(&p, &sp);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char src[PATH_MAX], dst[PATH_MAX];
    srv_path(src, sizeof src, "src");
    cli_path(dst, sizeof dst, "dst");
    pattern_file(src, MiB, 4);

    struct rpc2_se_desc d = desc_name(RPC2_SE_FETCH, dst, 0);
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "src", 0, -1, TEST_KIND_NAME, 0, &d, NULL), 0);
    expect_pattern_file(dst, MiB, 0, 4);
    struct rpc2_sftp_stats st = sftp_stats(ctx);
    ck_assert_uint_eq(st.data_received - st.data_duplicates, data_packets(MiB, LOOPBACK_PACKET));

    /* the context's counters sum both roles: retransmissions the fetch's
     * sink received count in data_retransmitted too, so the store's own are
     * what it adds */
    struct rpc2_sftp_stats before = st;
    d = desc_name(RPC2_SE_STORE, dst, 0);
    ck_assert_int_eq(call_xfer(conn, TEST_STORE, "back", 0, -1, TEST_KIND_NAME, 0, &d, NULL), 0);
    srv_path(src, sizeof src, "back");
    expect_pattern_file(src, MiB, 0, 4);
    st = sftp_stats(ctx);
    ck_assert_uint_eq((st.data_sent - before.data_sent) -
                          (st.data_retransmitted - before.data_retransmitted),
                      data_packets(MiB, LOOPBACK_PACKET));
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 4. both handler forms ------------------------------------------------------ */

START_TEST(test_handler_forms)
{
    struct env env;
    env_start(&env, "127.0.0.1", "127.0.0.1:0");
    static const uint64_t sizes[] = {0, 1, PIGGY_MAX, PIGGY_MAX + 1, 3 * MiB + 7};
    unsigned i = 0;
    for (int blocking = 0; blocking < 2; blocking++)
        for (int dir = RPC2_SE_FETCH; dir <= RPC2_SE_STORE; dir++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++, i++) {
                struct mcase c = {.dir = (enum rpc2_se_direction)dir,
                                  .ck = CK_NAME,
                                  .sk = TEST_KIND_NAME,
                                  .size = sizes[s],
                                  .cquota = -1,
                                  .squota = -1,
                                  .blocking = blocking};
                run_case(&env, &c, 40 + i);
                c.ck = CK_VM, c.sk = TEST_KIND_FD, c.stream = true;
                run_case(&env, &c, 80 + i);
            }
    env_stop(&env);
}
END_TEST

/* ---- 5. through the fault proxy --------------------------------------------------- */

/* Retransmissions every few tens of milliseconds: lossy paths cost little waiting. */
static struct rpc2_params lossy_params(void)
{
    struct rpc2_params p;
    rpc2_params_init(&p);
    p.retry_initial_us = 20 * MS;
    p.retry_min_us = 10 * MS;
    p.retry_max_us = 200 * MS;
    p.dead_peer_us = 30 * SEC;
    return p;
}

START_TEST(test_lossy_path_byte_identical)
{
    uint32_t seed = test_seed(), x = seed;
    char seed_text[16];
    snprintf(seed_text, sizeof seed_text, "%u", seed);
    /* the server's own limit applies too: it allows what the clients do */
    static const char *const srv_opts[] = {"--packet", PACKET_TEXT, "--piggyback-max", "32768",
                                           NULL};
    struct env env = {.exact_counts = false, .piggy_max = 32 * KiB};
    pid_t proxy;
    env.port = server_start("127.0.0.1:0", srv_opts, &env.srv);
    /* clang-format off */
    const char *faults[] = {"--loss", "0.1", "--reorder", "0.2,20", "--dup", "0.05",
                            "--seed", seed_text, NULL};
    /* clang-format on */
    int proxy_port = proxy_start(env.port, faults, &proxy);
    struct rpc2_params p = lossy_params();
    for (int s = 0; s < 2; s++) {
        struct rpc2_sftp_params sp = sftp_params(s == 1);
        sp.packet_size = 0; /* the loopback default: 63 KiB packets */
        sp.window = 0;
        sp.piggyback_max = env.piggy_max; /* big CALLs and REPLYs get lost too */
        env.ctx[s] = client_new(&p, &sp);
        env.conn[s] = bind_ok(env.ctx[s], "127.0.0.1", proxy_port);
    }

    /* Mostly small (piggybacked when the client allows), some streamed, a
     * few up to 2 MiB; the client and server kinds and the direction vary. */
    static const enum ckind cks[] = {CK_VM, CK_FD, CK_NAME, CK_ATOMIC, CK_INODE};
    static const int sks[] = {TEST_KIND_NAME, TEST_KIND_FD, TEST_KIND_VM};
    unsigned n = procs_small_run() ? 40 : 200;
    fprintf(stderr, "lossy: seed %u (RPC2_TEST_SEED=%u replays the sizes and faults)\n", seed,
            seed);
    int64_t t0 = now_us();
    for (unsigned i = 0; i < n; i++) {
        uint32_t r = xorshift32(&x), kind = r % 10;
        uint64_t size = kind < 6 ? r % 4096 : kind < 9 ? r % (256 * KiB) : r % (2 * MiB + 1);
        struct mcase c = {.dir = (r >> 8) & 1 ? RPC2_SE_STORE : RPC2_SE_FETCH,
                          .ck = cks[(r >> 9) % (sizeof cks / sizeof cks[0])],
                          .sk = sks[(r >> 12) % (sizeof sks / sizeof sks[0])],
                          .size = size,
                          .cquota = -1,
                          .squota = -1,
                          .stream = ((r >> 15) & 3) == 0,
                          .blocking = (r >> 17) & 1};
        if (!kinds_work(c.ck, c.sk))
            c.ck = CK_NAME, c.sk = TEST_KIND_NAME;
        run_case(&env, &c, seed + i);
    }
    int64_t elapsed = now_us() - t0;
    struct rpc2_sftp_stats st0 = sftp_stats(env.ctx[0]), st1 = sftp_stats(env.ctx[1]);
    struct rpc2_ctx_stats cs;
    rpc2_ctx_stats(env.ctx[0], &cs);
    fprintf(stderr,
            "lossy (seed %u): %u transfers in %.1f s; SFTP retransmissions %" PRIu64
            ", duplicates %" PRIu64 ", timeouts %" PRIu64 "; call retransmissions %" PRIu64 "\n",
            seed, n, elapsed / 1e6, st0.data_retransmitted + st1.data_retransmitted,
            st0.data_duplicates + st1.data_duplicates, st0.timeouts + st1.timeouts,
            cs.retransmissions);
    /* the faults did happen */
    ck_assert_uint_gt(st0.data_retransmitted + st1.data_retransmitted + cs.retransmissions, 0);
    for (int s = 0; s < 2; s++) {
        rpc2_unbind(env.conn[s]);
        rpc2_ctx_free(env.ctx[s]);
    }
    ck_assert_int_eq(procs_child_stop(proxy, SIGTERM), 0);
    server_stop(env.srv);
}
END_TEST

/* ---- 6. a blackout mid-transfer ---------------------------------------------------- */

/* Progress as it happens: when bytes moved, and the longest silence. */
struct progress_log {
    int64_t first_us, last_us, longest_gap_us, gap_end_us;
    uint64_t bytes, bytes_at_gap;
};

static void log_progress(uint64_t bytes, int64_t total, void *arg)
{
    struct progress_log *l = arg;
    int64_t t = now_us();
    (void)total;
    if (l->first_us == 0)
        l->first_us = t;
    else if (t - l->last_us > l->longest_gap_us) {
        l->longest_gap_us = t - l->last_us;
        l->gap_end_us = t;
        l->bytes_at_gap = l->bytes;
    }
    l->last_us = t;
    l->bytes = bytes;
}

/*
 * A 3-second outage in the middle of a transfer: the source backs off and
 * counts one timeout per timeout period (not one per expiring packet, which
 * once made it give up 2 to 3.5 s into the outage), and the transfer
 * resumes when the path does.
 *
 * The proxy's blackout clock starts at the first datagram it sees (the
 * bind); the fetch starts right after it. The window is bounded and the
 * path slow (--delay), so the 512 MiB fetch (a sparse file, into a pipe whose
 * reader checks every byte) takes several seconds and the 3-second blackout
 * falls inside it: the transfer must stall for about 3 s and then finish.
 */
#define BLACKOUT_START_MS 1500
#define BLACKOUT_LEN_MS 3000

START_TEST(test_blackout_recovers)
{
    pid_t srv, proxy;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    /* clang-format off */
    const char *faults[] = {"--delay", "5", "--blackout", "1500,3000", NULL};
    /* clang-format on */
    int proxy_port = proxy_start(port, faults, &proxy);
    struct rpc2_params p;
    rpc2_params_init(&p);
    p.dead_peer_us = 30 * SEC;
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp); /* 63 KiB packets on loopback */
    sp.window = 16;             /* at most 1 MiB per round trip of >= 10 ms: >= 5 s for 512 MiB */
    rpc2_ctx *ctx = client_new(&p, &sp);
    const uint64_t size = 512 * MiB;
    char src[PATH_MAX];
    srv_path(src, sizeof src, "src");
    sparse_file(src, size);
    int64_t t_bind = now_us(); /* the proxy's blackout clock starts here */
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", proxy_port);

    struct pipe_reader r;
    int w = pipe_reader_start(&r, true, NULL, 0);
    struct progress_log log = {0};
    struct rpc2_se_desc d = desc_fd(RPC2_SE_FETCH, w);
    d.progress = log_progress;
    d.progress_arg = &log;
    int64_t moved;
    int rc = call_xfer(conn, TEST_FETCH, "src", 0, -1, TEST_KIND_NAME, 0, &d, &moved);
    int64_t t_end = now_us();
    pipe_reader_finish(&r, w);
    struct rpc2_sftp_stats st = sftp_stats(ctx);
    ck_assert_msg(rc == 0,
                  "fetch across a blackout: %s (desc.error %s, local %d, remote %d, "
                  "%" PRIu64 " bytes; sink timeouts %" PRIu64 "; failed %.1f s after the bind)",
                  rpc2_errname(rc), rpc2_errname(d.error), d.local_status, d.remote_status,
                  d.bytes_transferred, st.timeouts, (t_end - t_bind) / 1e6);
    ck_assert_int_eq(moved, size);
    ck_assert_int_eq(r.error, 0);
    ck_assert_msg(r.c.bad_at == UINT64_MAX, "wrong byte at %" PRIu64, r.c.bad_at);
    ck_assert_uint_eq(r.c.pos, size);
    fprintf(stderr,
            "blackout: fetch took %.1f s; longest stall %.1f s ending %.1f s after the "
            "bind, at %" PRIu64 " bytes\n",
            (t_end - t_bind) / 1e6, log.longest_gap_us / 1e6, (log.gap_end_us - t_bind) / 1e6,
            log.bytes_at_gap);
    /* the blackout did fall inside the transfer */
    ck_assert_msg(log.bytes_at_gap > 0 && log.bytes_at_gap < size,
                  "the stall was not mid-transfer");
    ck_assert_msg(log.longest_gap_us >= 2 * SEC,
                  "no stall: the transfer missed the blackout "
                  "(longest gap %lld us)",
                  (long long)log.longest_gap_us);
    ck_assert_msg(t_end - t_bind >= (BLACKOUT_START_MS + BLACKOUT_LEN_MS) * (int64_t)MS,
                  "finished before the blackout ended");
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    ck_assert_int_eq(procs_child_stop(proxy, SIGTERM), 0);
    server_stop(srv);
}
END_TEST

/* ---- 7. errors --------------------------------------------------------------------- */

/* A good fetch and store on conn: it is still usable. */
static void expect_usable(rpc2_conn *conn, uint32_t seed)
{
    char src[PATH_MAX];
    uint8_t *buf = malloc(100 * KiB);
    ck_assert_ptr_nonnull(buf);
    srv_path(src, sizeof src, "usable");
    pattern_file(src, 100 * KiB, seed);
    struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.max = 100 * KiB;
    int rc = call_xfer(conn, TEST_FETCH, "usable", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
    ck_assert_msg(rc == 0, "the next fetch: %s", rpc2_errname(rc));
    expect_image(buf, d.file.vm.len, 0, 0, 100 * KiB, seed, "the next fetch");
    d = desc_new(RPC2_SE_STORE, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.len = 500;
    rc = call_xfer(conn, TEST_STORE, "usable", 0, -1, TEST_KIND_NAME, 1, &d, NULL);
    ck_assert_msg(rc == 0, "the next store: %s", rpc2_errname(rc));
    free(buf);
    size_t len;
    uint8_t *img = read_file(src, &len);
    expect_image(img, len, 0, 0, 500, seed, "the next store");
    free(img);
}

/*
 * A missing source on the server: the handler's rpc2_se_init fails, the
 * call returns that error (RPC2_ENOENT; the procedure did not succeed, so
 * it is not turned into RPC2_ESEFAIL1), desc.error says RPC2_ENOENT and the
 * remote end FAILURE. Then the connection is still usable.
 */
START_TEST(test_missing_source)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    rpc2_ctx *ctx = client_std(false);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    uint8_t buf[64];

    for (int blocking = 0; blocking < 2; blocking++) {
        struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
        d.file_kind = RPC2_SE_FILE_VM;
        d.file.vm.buf = buf;
        d.file.vm.max = sizeof buf;
        int64_t moved;
        int rc = call_xfer(conn, proc_of(RPC2_SE_FETCH, blocking), "nothing/here", 0, -1,
                           TEST_KIND_NAME, 0, &d, &moved);
        ck_assert_msg(rc == RPC2_ENOENT || rc == RPC2_ESEFAIL1, "got %s", rpc2_errname(rc));
        ck_assert_int_eq(rc, RPC2_ENOENT);
        ck_assert_msg(d.error == RPC2_ENOENT, "desc.error %s", rpc2_errname(d.error));
        ck_assert_int_eq(d.remote_status, RPC2_SE_FAILURE);
        ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
        ck_assert_uint_eq(d.bytes_transferred, 0);
        ck_assert_int_eq(moved, -1); /* no result with a failure status */
        expect_usable(conn, 7);
    }

    /* A missing source on the client: refused before anything is sent. */
    char gone[PATH_MAX];
    cli_path(gone, sizeof gone, "gone");
    struct rpc2_se_desc d = desc_name(RPC2_SE_STORE, gone, 0);
    int rc = call_xfer(conn, TEST_STORE, "x", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
    ck_assert_msg(rc == RPC2_ENOENT, "got %s", rpc2_errname(rc));
    ck_assert_int_eq(d.error, RPC2_ENOENT);
    ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
    char x[PATH_MAX];
    srv_path(x, sizeof x, "x");
    ck_assert_msg(!file_exists(x), "a refused store reached the server");
    expect_usable(conn, 8);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* A memory sink smaller than the data: RPC2_EOVERFLOW, piggybacked or streamed. */
START_TEST(test_memory_sink_too_small)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    char src[PATH_MAX];
    srv_path(src, sizeof src, "src");
    for (int stream = 0; stream < 2; stream++) {
        rpc2_ctx *ctx = client_std(stream);
        rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
        static const uint64_t sizes[] = {500, 100 * KiB};
        for (size_t s = 0; s < 2; s++) {
            pattern_file(src, sizes[s], 9);
            uint8_t buf[100];
            struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
            d.file_kind = RPC2_SE_FILE_VM;
            d.file.vm.buf = buf;
            d.file.vm.max = sizeof buf;
            int rc = call_xfer(conn, TEST_FETCH, "src", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
            ck_assert_msg(rc < 0, "%" PRIu64 " bytes into 100: %d", sizes[s], rc);
            ck_assert_msg(d.error == RPC2_EOVERFLOW,
                          "%" PRIu64 " bytes into 100 (%s): rc %s, "
                          "desc.error %s",
                          sizes[s], stream ? "streamed" : "piggyback allowed", rpc2_errname(rc),
                          rpc2_errname(d.error));
            ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
            expect_usable(conn, 10);
        }
        rpc2_unbind(conn);
        rpc2_ctx_free(ctx);
    }
    server_stop(srv);
}
END_TEST

/* strict_quota: more than the quota fails with RPC2_EQUOTA, in both
 * directions, whether the excess is known at open (a file) or not. */
START_TEST(test_strict_quota)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    rpc2_params_init(&p);
    char src[PATH_MAX], local[PATH_MAX], dst[PATH_MAX];
    srv_path(src, sizeof src, "src");
    srv_path(dst, sizeof dst, "dst");
    cli_path(local, sizeof local, "local");
    for (int stream = 0; stream < 2; stream++) {
        struct rpc2_sftp_params sp = sftp_params(stream);
        sp.strict_quota = 1;
        rpc2_ctx *ctx = client_new(&p, &sp);
        rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
        static const uint64_t sizes[] = {800, 80 * KiB};
        for (size_t s = 0; s < 2; s++) {
            char what[96];
            snprintf(what, sizeof what, "%s, %" PRIu64 " bytes, quota 100",
                     stream ? "streamed" : "piggyback allowed", sizes[s]);
            pattern_file(src, sizes[s], 11);
            struct rpc2_se_desc d = desc_name(RPC2_SE_FETCH, local, 0);
            d.quota = 100;
            int rc = call_xfer(conn, TEST_FETCH, "src", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
            ck_assert_msg(rc < 0 && d.error == RPC2_EQUOTA, "fetch %s: rc %s, desc.error %s", what,
                          rpc2_errname(rc), rpc2_errname(d.error));
            unlink(local);

            pattern_file(local, sizes[s], 12);
            d = desc_name(RPC2_SE_STORE, local, 0);
            d.quota = 100;
            rc = call_xfer(conn, TEST_STORE, "dst", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
            ck_assert_msg(rc < 0 && d.error == RPC2_EQUOTA, "store %s: rc %s, desc.error %s", what,
                          rpc2_errname(rc), rpc2_errname(d.error));
            unlink(dst);

            /* exactly the quota is fine */
            d = desc_name(RPC2_SE_STORE, local, 0);
            d.quota = (int64_t)sizes[s];
            ck_assert_int_eq(call_xfer(conn, TEST_STORE, "dst", 0, -1, TEST_KIND_NAME, 0, &d, NULL),
                             0);
            expect_pattern_file(dst, sizes[s], 0, 12);
            unlink(dst);
            unlink(local);
        }
        expect_usable(conn, 13);
        rpc2_unbind(conn);
        rpc2_ctx_free(ctx);
    }
    server_stop(srv);
}
END_TEST

/*
 * A seek offset past the source's end. What the library does (fileio.c):
 *  - a file source (by name, fd or handle) has no bytes there: the transfer
 *    succeeds with 0 bytes, and the sink is created empty;
 *  - a memory source refuses it, RPC2_EINVAL: on the client before anything
 *    is sent, on the server from rpc2_se_init (which testsrv replies with).
 */
START_TEST(test_offset_beyond_end)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    char src[PATH_MAX], local[PATH_MAX], dst[PATH_MAX];
    srv_path(src, sizeof src, "src");
    srv_path(dst, sizeof dst, "dst");
    cli_path(local, sizeof local, "local");
    pattern_file(src, 5000, 14);
    for (int stream = 0; stream < 2; stream++) {
        rpc2_ctx *ctx = client_std(stream);
        rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
        static const int sks[] = {TEST_KIND_NAME, TEST_KIND_FD, TEST_KIND_INODE};
        int64_t moved;
        for (size_t k = 0; k < 3; k++) {
            if (!kinds_work(CK_NAME, sks[k]))
                continue;
            struct rpc2_se_desc d = desc_name(RPC2_SE_FETCH, local, 0);
            int rc = call_xfer(conn, TEST_FETCH, "src", 9000, -1, sks[k], 0, &d, &moved);
            ck_assert_msg(rc == 0, "fetch from past the end (server %s): %s", skind_name(sks[k]),
                          rpc2_errname(rc));
            ck_assert_int_eq(moved, 0);
            ck_assert_uint_eq(d.bytes_transferred, 0);
            size_t len;
            free(read_file(local, &len));
            ck_assert_uint_eq(len, 0);
            unlink(local);
        }
        uint8_t buf[16];
        struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
        d.file_kind = RPC2_SE_FILE_VM;
        d.file.vm.buf = buf;
        d.file.vm.max = sizeof buf;
        int rc = call_xfer(conn, TEST_FETCH, "src", 9000, -1, TEST_KIND_VM, 0, &d, &moved);
        ck_assert_msg(rc == RPC2_EINVAL && d.error == RPC2_EINVAL,
                      "fetch from past the end of server memory: rc %s, desc.error %s",
                      rpc2_errname(rc), rpc2_errname(d.error));

        pattern_file(local, 5000, 15);
        d = desc_name(RPC2_SE_STORE, local, 0);
        d.seek_offset = 9000;
        rc = call_xfer(conn, TEST_STORE, "dst", 0, -1, TEST_KIND_NAME, 0, &d, &moved);
        ck_assert_msg(rc == 0, "store from past the end: %s", rpc2_errname(rc));
        ck_assert_int_eq(moved, 0);
        size_t len;
        free(read_file(dst, &len));
        ck_assert_uint_eq(len, 0);
        unlink(dst);
        unlink(local);

        uint8_t mem[100] = {0};
        d = desc_new(RPC2_SE_STORE, 101, -1);
        d.file_kind = RPC2_SE_FILE_VM;
        d.file.vm.buf = mem;
        d.file.vm.len = sizeof mem;
        rc = call_xfer(conn, TEST_STORE, "dst", 0, -1, TEST_KIND_NAME, 0, &d, &moved);
        ck_assert_msg(rc == RPC2_EINVAL, "store from past the end of memory: %s", rpc2_errname(rc));
        ck_assert_msg(!file_exists(dst), "a refused store reached the server");
        expect_usable(conn, 16);
        rpc2_unbind(conn);
        rpc2_ctx_free(ctx);
    }
    server_stop(srv);
}
END_TEST

/* Kills the server from the client's progress callback once enough moved. */
struct killer {
    pid_t pid;
    uint64_t at;
    int64_t killed_us;
    uint64_t bytes;
};

static void kill_on_progress(uint64_t bytes, int64_t total, void *arg)
{
    struct killer *k = arg;
    (void)total;
    k->bytes = bytes;
    if (k->killed_us == 0 && bytes >= k->at) {
        kill(k->pid, SIGKILL); /* our own child, started by this test */
        k->killed_us = now_us();
    }
}

/*
 * SIGKILL on the server while a 256 MiB fetch streams into an atomic sink:
 * the call ends within three times the client's dead-peer silence, with
 * RPC2_EDEAD, or RPC2_ECONNREFUSED when the client's retransmitted CALL met
 * the closed port first, and the atomic sink leaves no file and no temporary.
 */
START_TEST(test_server_killed_mid_transfer)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    rpc2_params_init(&p);
    p.dead_peer_us = 2 * SEC;
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp);
    rpc2_ctx *ctx = client_new(&p, &sp);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char src[PATH_MAX], dst[PATH_MAX];
    srv_path(src, sizeof src, "big");
    cli_path(dst, sizeof dst, "big");
    sparse_file(src, 256 * MiB);

    struct killer k = {.pid = srv, .at = 16 * MiB};
    struct rpc2_se_desc d = desc_name(RPC2_SE_FETCH, dst, 1);
    d.progress = kill_on_progress;
    d.progress_arg = &k;
    int rc = call_xfer(conn, TEST_FETCH, "big", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
    int64_t elapsed = now_us() - k.killed_us;
    ck_assert_msg(k.killed_us != 0, "the fetch ended (%s) before the kill", rpc2_errname(rc));
    ck_assert_int_eq(procs_child_stop(srv, 0), 128 + SIGKILL);
    fprintf(stderr, "server killed at %" PRIu64 " bytes: %s after %.2f s\n", k.bytes,
            rpc2_errname(rc), elapsed / 1e6);
    ck_assert_msg(rc == RPC2_EDEAD || rc == RPC2_ECONNREFUSED, "got %s (desc.error %s)",
                  rpc2_errname(rc), rpc2_errname(d.error));
    ck_assert_msg(elapsed < 3 * (int64_t)p.dead_peer_us, "the call ended after %lld us",
                  (long long)elapsed);
    ck_assert_int_eq(d.local_status, RPC2_SE_FAILURE);
    ck_assert_msg(dir_entries(cli_dir) == 0, "the atomic sink left a file");
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
}
END_TEST

/*
 * A transfer that fails on the server mid-stream (testsrv's memory sink
 * holds 64 MiB; a 70 MiB store overflows it) ends the call with the
 * server's error, and the connection is still usable afterwards.
 */
START_TEST(test_server_failure_mid_stream_conn_usable)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    rpc2_params_init(&p);
    rpc2_sftp_params_init(&sp);
    rpc2_ctx *ctx = client_new(&p, &sp);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char local[PATH_MAX];
    cli_path(local, sizeof local, "big");
    sparse_file(local, 70 * MiB);
    for (int blocking = 0; blocking < 2; blocking++) {
        struct rpc2_se_desc d = desc_name(RPC2_SE_STORE, local, 0);
        int rc = call_xfer(conn, proc_of(RPC2_SE_STORE, blocking), "mem", 0, -1, TEST_KIND_VM, 0,
                           &d, NULL);
        ck_assert_msg(rc < 0, "70 MiB into 64: %d", rc);
        ck_assert_msg(d.error == RPC2_EOVERFLOW, "rc %s, desc.error %s", rpc2_errname(rc),
                      rpc2_errname(d.error));
        ck_assert_int_eq(d.remote_status, RPC2_SE_FAILURE);
        expect_usable(conn, 17);
    }
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 8. big sizes (plain build only) ------------------------------------------------ */

static bool skip_big(const char *test)
{
    if (!procs_small_run())
        return false;
    test_skip(test, machine_runs_big_cases(), "a big case, left out under RPC2_TEST_SMALL");
    return true;
}

START_TEST(test_100mib_fetch_and_store)
{
    if (skip_big("test_100mib_fetch_and_store"))
        return;
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    rpc2_params_init(&p);
    rpc2_ctx *ctx = client_new(&p, NULL); /* SFTP defaults */
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    const uint64_t size = 100 * MiB;
    char src[PATH_MAX], local[PATH_MAX], back[PATH_MAX];
    srv_path(src, sizeof src, "src");
    srv_path(back, sizeof back, "back");
    cli_path(local, sizeof local, "local");
    pattern_file(src, size, 18);

    int64_t moved, t0 = now_us();
    struct rpc2_se_desc d = desc_name(RPC2_SE_FETCH, local, 0);
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "src", 0, -1, TEST_KIND_NAME, 0, &d, &moved), 0);
    int64_t t1 = now_us();
    ck_assert_int_eq(moved, size);
    expect_pattern_file(local, size, 0, 18);
    unlink(src);

    int64_t t2 = now_us();
    d = desc_name(RPC2_SE_STORE, local, 0);
    ck_assert_int_eq(call_xfer(conn, TEST_STORE, "back", 0, -1, TEST_KIND_NAME, 1, &d, &moved), 0);
    int64_t t3 = now_us();
    ck_assert_int_eq(moved, size);
    expect_pattern_file(back, size, 0, 18);
    fprintf(stderr, "100 MiB: fetch %.0f MB/s, store %.0f MB/s\n", size / (double)(t1 - t0),
            size / (double)(t3 - t2));
    unlink(local);
    unlink(back);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

#define SPARSE_SIZE (5 * GiB)

/* 5 GiB fetched into a pipe whose reader checks every byte on the fly. */
START_TEST(test_5gib_fetch_into_pipe)
{
    if (skip_big("test_5gib_fetch_into_pipe"))
        return;
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    rpc2_params_init(&p);
    rpc2_ctx *ctx = client_new(&p, NULL);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char src[PATH_MAX];
    srv_path(src, sizeof src, "sparse");
    sparse_file(src, SPARSE_SIZE);

    struct pipe_reader r;
    int w = pipe_reader_start(&r, true, NULL, 0);
    struct rpc2_se_desc d = desc_fd(RPC2_SE_FETCH, w);
    int64_t moved, t0 = now_us();
    int rc = call_xfer(conn, TEST_FETCH, "sparse", 0, -1, TEST_KIND_NAME, 0, &d, &moved);
    int64_t t1 = now_us();
    pipe_reader_finish(&r, w);
    ck_assert_msg(rc == 0, "5 GiB fetch: %s (desc.error %s)", rpc2_errname(rc),
                  rpc2_errname(d.error));
    ck_assert_int_eq(moved, SPARSE_SIZE);
    ck_assert_uint_eq(d.bytes_transferred, SPARSE_SIZE);
    ck_assert_int_eq(r.error, 0);
    ck_assert_msg(r.c.bad_at == UINT64_MAX, "wrong byte at %" PRIu64, r.c.bad_at);
    ck_assert_uint_eq(r.c.pos, SPARSE_SIZE);
    fprintf(stderr, "5 GiB fetch into a pipe: %.1f s, %.0f MB/s\n", (t1 - t0) / 1e6,
            SPARSE_SIZE / (double)(t1 - t0));
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* 5 GiB stored from a sparse file into the server's root (which fills the
 * 5 GiB for real), checked by streaming and deleted at once. */
START_TEST(test_5gib_store)
{
    if (skip_big("test_5gib_store"))
        return;
    const uint64_t need = 12 * GiB;
    const char *base = NULL;
    for (size_t b = 0; b < sizeof root_bases / sizeof root_bases[0] && !base; b++)
        if (free_bytes(root_bases[b]) >= need)
            base = root_bases[b];
    if (!base) {
        test_skip("test_5gib_store", false, "less than 12 GiB free in /tmp and /dev/shm");
        return;
    }
    root_make(base);
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    rpc2_params_init(&p);
    rpc2_ctx *ctx = client_new(&p, NULL);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char local[PATH_MAX], dst[PATH_MAX];
    cli_path(local, sizeof local, "sparse");
    srv_path(dst, sizeof dst, "stored");
    sparse_file(local, SPARSE_SIZE);

    struct rpc2_se_desc d = desc_name(RPC2_SE_STORE, local, 0);
    int64_t moved, t0 = now_us();
    int rc = call_xfer(conn, TEST_STORE, "stored", 0, -1, TEST_KIND_NAME, 0, &d, &moved);
    int64_t t1 = now_us();
    if (rc != 0)
        unlink(dst);
    ck_assert_msg(rc == 0, "5 GiB store into %s: %s (desc.error %s)", base, rpc2_errname(rc),
                  rpc2_errname(d.error));
    ck_assert_int_eq(moved, SPARSE_SIZE);
    fprintf(stderr, "5 GiB store into %s: %.1f s, %.0f MB/s\n", base, (t1 - t0) / 1e6,
            SPARSE_SIZE / (double)(t1 - t0));
    expect_sparse_file(dst, SPARSE_SIZE);
    unlink(dst);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 9. memory bounded by the window ------------------------------------------------ */

/* The server's peak resident set (VmHWM) in bytes, from /proc. */
static uint64_t peak_rss(pid_t pid)
{
    char path[64], line[256];
    unsigned long long kb = 0;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            break;
    fclose(f);
    ck_assert_uint_gt(kb, 0);
    return kb * 1024;
}

/* A fresh server's peak RSS after one streamed fetch of size (sparse) into
 * a pipe whose reader checks the bytes. */
static uint64_t peak_after_fetch(uint64_t size)
{
    char src[PATH_MAX];
    srv_path(src, sizeof src, "sparse");
    sparse_file(src, size);
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    struct rpc2_params p;
    rpc2_params_init(&p);
    rpc2_ctx *ctx = client_new(&p, NULL);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    struct pipe_reader r;
    int w = pipe_reader_start(&r, true, NULL, 0);
    struct rpc2_se_desc d = desc_fd(RPC2_SE_FETCH, w);
    int64_t moved;
    int rc = call_xfer(conn, TEST_FETCH, "sparse", 0, -1, TEST_KIND_NAME, 0, &d, &moved);
    pipe_reader_finish(&r, w);
    ck_assert_msg(rc == 0, "%" PRIu64 " byte fetch: %s", size, rpc2_errname(rc));
    ck_assert_int_eq(moved, size);
    ck_assert_msg(r.c.bad_at == UINT64_MAX, "wrong byte at %" PRIu64, r.c.bad_at);
    ck_assert_uint_eq(r.c.pos, size);
    uint64_t peak = peak_rss(srv); /* before the SIGTERM */
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
    unlink(src);
    return peak;
}

START_TEST(test_server_memory_bounded)
{
    if (skip_big("test_server_memory_bounded"))
        return;
    uint64_t small = peak_after_fetch(64 * MiB);
    uint64_t big = peak_after_fetch(4 * GiB);
    fprintf(stderr, "testsrv VmHWM: %.1f MiB after 64 MiB, %.1f MiB after 4 GiB\n",
            small / (double)MiB, big / (double)MiB);
    ck_assert_msg(big <= small + 16 * MiB,
                  "peak RSS %" PRIu64 " after 4 GiB vs %" PRIu64 " after 64 MiB", big, small);
}
END_TEST

/* ---- stopping a server mid-transfer -------------------------------------------------- */

struct slow_fetch {
    int port, rc;
    atomic_int moving; /* bytes have arrived: the transfer is under way */
};

static void note_moving(uint64_t bytes, int64_t total, void *arg)
{
    (void)total;
    if (bytes > 0)
        atomic_store(&((struct slow_fetch *)arg)->moving, 1);
}

/* A streamed fetch into /dev/null from a blocking handler, on its own
 * context: the server is stopped while it runs. */
static void *slow_fetch_thread(void *arg)
{
    struct slow_fetch *f = arg;
    struct rpc2_params p;
    rpc2_params_init(&p);
    p.dead_peer_us = 2 * SEC;
    struct rpc2_sftp_params sp;
    rpc2_sftp_params_init(&sp);
    sp.window = 4; /* slow enough to be mid-transfer when the server stops */
    rpc2_ctx *ctx = client_new(&p, &sp);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", f->port);
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct rpc2_se_desc d = desc_fd(RPC2_SE_FETCH, null_fd);
    d.progress = note_moving;
    d.progress_arg = f;
    f->rc = call_xfer(conn, TEST_FETCH_BLOCKING, "big", 0, -1, TEST_KIND_NAME, 0, &d, NULL);
    close(null_fd);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return NULL;
}

/*
 * SIGTERM while a blocking handler waits in rpc2_se_check: the server frees
 * its context at once and exits 0 (it once hung: the worker waited for the
 * loop, and the context's free waited for the worker).
 */
START_TEST(test_server_stops_mid_transfer)
{
    pid_t srv;
    struct slow_fetch f = {.rc = 1};
    f.port = server_start("127.0.0.1:0", SRV_STD, &srv);
    char src[PATH_MAX];
    srv_path(src, sizeof src, "big");
    sparse_file(src, 4 * GiB);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, slow_fetch_thread, &f), 0);
    /* into the transfer: once bytes move (bounded, not a guess of how long) */
    int64_t wait_until = now_us() + 30 * SEC;
    while (!atomic_load(&f.moving) && now_us() < wait_until)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    ck_assert_msg(atomic_load(&f.moving), "the fetch never started moving bytes");
    int64_t t0 = now_us();
    ck_assert_int_eq(procs_child_stop(srv, SIGTERM), 0);
    ck_assert_msg(now_us() - t0 < 5 * SEC, "the server took %.1f s to stop",
                  (now_us() - t0) / 1e6);
    pthread_join(t, NULL);
    ck_assert_int_ne(f.rc, 0); /* the fetch did not pretend to succeed */
}
END_TEST

/* ---- the server's own parameters and early failures ------------------------------ */

/*
 * A server context whose rpc2_sftp_params.piggyback is 0 streams even a
 * small fetch: the server's own limits apply on top of the client's (this
 * once went by the client's CALL block alone).
 */
START_TEST(test_server_no_piggyback_is_honoured)
{
    const char *const opts[] = {"--no-piggyback", NULL};
    pid_t srv;
    int port = server_start("127.0.0.1:0", opts, &srv);
    rpc2_ctx *ctx = client_std(false);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    char src[PATH_MAX];
    srv_path(src, sizeof src, "small");
    pattern_file(src, 100, 19);
    uint8_t buf[100];
    struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.max = sizeof buf;
    ck_assert_int_eq(call_xfer(conn, TEST_FETCH, "small", 0, -1, TEST_KIND_NAME, 0, &d, NULL), 0);
    expect_image(buf, d.file.vm.len, 0, 0, 100, 19, "fetch from a --no-piggyback server");
    struct rpc2_sftp_stats st = sftp_stats(ctx);
    ck_assert_msg(st.piggybacked == 0 && st.data_received == 1,
                  "a --no-piggyback server piggybacked its reply (piggybacked %" PRIu64
                  ", DATA received %" PRIu64 ")",
                  st.piggybacked, st.data_received);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/*
 * When a handler fails before it calls rpc2_se_init (testsrv's fd kind: the
 * open() of a missing file), the side effect never ran: the client's
 * desc.remote_status says FAILURE, with the handler's error.
 */
START_TEST(test_remote_status_when_handler_fails_early)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", SRV_STD, &srv);
    rpc2_ctx *ctx = client_std(false);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    uint8_t buf[64];
    struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH, 0, -1);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.max = sizeof buf;
    int rc = call_xfer(conn, TEST_FETCH, "missing", 0, -1, TEST_KIND_FD, 0, &d, NULL);
    ck_assert_int_eq(rc, RPC2_ENOENT);
    ck_assert_int_eq(d.error, RPC2_ENOENT);
    ck_assert_msg(d.remote_status == RPC2_SE_FAILURE,
                  "remote_status %d for a side effect the "
                  "server never started",
                  d.remote_status);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------------- */

static TCase *tcase_new(const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_add_unchecked_fixture(tc, NULL, sweep_roots);
    return tc;
}

static Suite *sftp_loopback_suite(void)
{
    Suite *s = suite_create("sftp_loopback");

    TCase *matrix = tcase_new("matrix", 600);
    tcase_add_test(matrix, test_kinds_by_sizes);
    tcase_add_test(matrix, test_ranges_and_quotas);
    tcase_add_test(matrix, test_ipv6);
    suite_add_tcase(s, matrix);

    TCase *semantics = tcase_new("semantics", 120);
    tcase_add_test(semantics, test_fd_fetches_concatenate);
    tcase_add_test(semantics, test_atomic_sink_failure_leaves_nothing);
    tcase_add_test(semantics, test_piggyback_sends_no_sftp_packet);
    tcase_add_test(semantics, test_server_follows_client_packet_size);
    tcase_add_test(semantics, test_handler_forms);
    suite_add_tcase(s, semantics);

    TCase *faults = tcase_new("faults", 600);
    tcase_add_test(faults, test_lossy_path_byte_identical);
    suite_add_tcase(s, faults);

    TCase *errors = tcase_new("errors", 120);
    tcase_add_test(errors, test_missing_source);
    tcase_add_test(errors, test_memory_sink_too_small);
    tcase_add_test(errors, test_strict_quota);
    tcase_add_test(errors, test_offset_beyond_end);
    tcase_add_test(errors, test_server_killed_mid_transfer);
    tcase_add_test(errors, test_server_failure_mid_stream_conn_usable);
    suite_add_tcase(s, errors);

    TCase *big = tcase_new("big", 600);
    tcase_add_test(big, test_100mib_fetch_and_store);
    tcase_add_test(big, test_5gib_fetch_into_pipe);
    tcase_add_test(big, test_5gib_store);
    tcase_add_test(big, test_server_memory_bounded);
    suite_add_tcase(s, big);

    TCase *recovery = tcase_new("recovery", 120);
    tcase_add_test(recovery, test_blackout_recovers);
    tcase_add_test(recovery, test_server_no_piggyback_is_honoured);
    tcase_add_test(recovery, test_remote_status_when_handler_fails_early);
    tcase_add_test(recovery, test_server_stops_mid_transfer);
    suite_add_tcase(s, recovery);
    return s;
}

int main(void)
{
    runner_pid = getpid();
    int rc = check_run(sftp_loopback_suite());

    sweep_roots();
    return rc;
}
