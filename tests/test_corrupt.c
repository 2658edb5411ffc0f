/*
 * test_corrupt.c - rpc2 on loopback through the fault proxy when datagrams
 * are damaged on the way, not only lost: the proxy flips bits in 1% of the
 * datagrams each way (and drops 2%, duplicates and reorders a few), and
 * calls and SFTP transfers must still complete, byte-identical, with every
 * call run exactly once.
 *
 * This is what the check in every datagram's trailer is for (docs/PROTOCOL.md,
 * "The trailer"): a damaged datagram is refused before any field of it is
 * believed, counted in rejected_check, and recovered by the sender's
 * retransmission. Without it, damage in a DATA packet would reach the file,
 * and damage in a header could land a packet on the wrong call.
 *
 * At security levels auth and encrypt the MAC does the check's job, and
 * the replay window drops the proxy's duplicates: the "security" cases run
 * the same work through damage and duplication on protected connections,
 * and show the bind refusals (wrong secret, unknown identity, a level below
 * the server's minimum) and that a captured handshake replayed later opens
 * nothing.
 *
 * Spawns tests/testsrv on a fresh temporary root and tests/faultproxy in
 * front of it; the client is in-process and uses only the public API.
 * RPC2_TEST_SMALL=1 scales the work down (sanitizer builds). Waits are
 * bounded; nothing sleeps to wait for the network.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "packet.h"
#include "procs.h"
#include "secure.h"
#include "testproto.h"
#include "check_run.h"

#define SERVER_PREFIX "testsrv listening on"
#define PROXY_PREFIX "faultproxy listening on"
#define MS 1000u /* microseconds */
#define SEC (1000u * MS)
#define KiB 1024u
#define MiB (1024u * KiB)

/* ---- scale ---------------------------------------------------------------- */

static unsigned scaled(unsigned n)
{
    return procs_small_run() ? n / 10 : n;
}

/* ---- a temporary root: srv/ served by testsrv, cli/ for the client -------- */

static char root[64], srv_dir[96], cli_dir[96];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void root_make(void)
{
    snprintf(root, sizeof root, "/tmp/rpc2-corrupt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(srv_dir, sizeof srv_dir, "%s/srv", root);
    snprintf(cli_dir, sizeof cli_dir, "%s/cli", root);
    ck_assert_int_eq(mkdir(srv_dir, 0700), 0);
    ck_assert_int_eq(mkdir(cli_dir, 0700), 0);
}

static void root_remove(void)
{
    if (root[0])
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
}

/* ---- children: the server and the proxy ------------------------------------ */

static int child_spawn(const char *const argv[], const char *prefix, pid_t *pid)
{
    int port = procs_child_spawn(argv, prefix, pid);
    ck_assert_msg(port > 0, "%s did not start", argv[0]);
    return port;
}

/* testsrv; with keys (a key file) it knows identities' secrets, and
 * refuses binds below min_security. */
static int server_start_secure(const char *keys, const char *min_security, pid_t *pid)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tests/testsrv", procs_builddir());
    const char *argv[] = {path,     "--listen", "127.0.0.1:0",  "--root",       srv_dir,
                          "--workers", "4",     keys ? "--keys" : NULL, keys, "--min-security",
                          min_security, NULL};
    return child_spawn(argv, SERVER_PREFIX, pid);
}

static int server_start(pid_t *pid)
{
    return server_start_secure(NULL, NULL, pid);
}

/* The proxy in front of the server: 1% damage and some loss (2% or 10%)
 * each way, a few duplicates and reorderings; the seed fixes the fate of the
 * n-th datagram. */
static int proxy_start(int server_port, unsigned seed, const char *loss, pid_t *pid)
{
    char path[PATH_MAX], server[32], seed_text[16];
    snprintf(path, sizeof path, "%s/tests/faultproxy", procs_builddir());
    snprintf(server, sizeof server, "127.0.0.1:%d", server_port);
    snprintf(seed_text, sizeof seed_text, "%u", seed);
    /* clang-format off */
    const char *argv[] = {path, "--listen", "127.0.0.1:0", "--server", server,
                          "--corrupt", "0.01", "--loss", loss, "--dup", "0.01",
                          "--reorder", "0.02,10", "--seed", seed_text, NULL};
    /* clang-format on */
    return child_spawn(argv, PROXY_PREFIX, pid);
}

/* A proxy that damages SFTP data past the datagram check, and nothing else. */
static int resealing_proxy_start(int server_port, unsigned seed, pid_t *pid)
{
    char path[PATH_MAX], server[32], seed_text[16];
    snprintf(path, sizeof path, "%s/tests/faultproxy", procs_builddir());
    snprintf(server, sizeof server, "127.0.0.1:%d", server_port);
    snprintf(seed_text, sizeof seed_text, "%u", seed);
    const char *argv[] = {path,   "--listen",           "127.0.0.1:0", "--server", server,
                          "--corrupt-resealed", "0.03", "--seed",      seed_text,  NULL};
    return child_spawn(argv, PROXY_PREFIX, pid);
}

/* ---- the client ------------------------------------------------------------- */

/* Quick retransmissions: every damaged datagram costs one retry interval. */
static rpc2_ctx *client_new(void)
{
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    rpc2_ctx *ctx = NULL;
    rpc2_params_init(&p);
    p.retry_initial_us = 20 * MS;
    p.retry_min_us = 10 * MS;
    p.retry_max_us = 200 * MS;
    p.dead_peer_us = 30 * SEC;
    rpc2_sftp_params_init(&sp); /* loopback: 63 KiB packets, piggybacking on */
    ck_assert_int_eq(rpc2_ctx_new(&p, &ctx), 0);
    ck_assert_int_eq(rpc2_sftp_activate(ctx, &sp), 0);
    return ctx;
}

static int bind_as(rpc2_ctx *ctx, int port, enum rpc2_security level, const char *identity,
                   const unsigned char *secret, rpc2_conn **conn)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct rpc2_bind_params bp = {.host = "127.0.0.1",
                                  .port = port_text,
                                  .subsystem = TEST_SUBSYS,
                                  .se_type = RPC2_SE_SFTP,
                                  .security = level,
                                  .identity = identity,
                                  .secret = secret};
    *conn = NULL;
    return rpc2_bind(ctx, &bp, conn);
}

static rpc2_conn *bind_ok(rpc2_ctx *ctx, int port)
{
    char port_text[16];
    rpc2_conn *conn = NULL;
    snprintf(port_text, sizeof port_text, "%d", port);
    struct rpc2_bind_params bp = {.host = "127.0.0.1",
                                  .port = port_text,
                                  .subsystem = TEST_SUBSYS,
                                  .se_type = RPC2_SE_SFTP,
                                  .identity = "test_corrupt"};
    int rc = rpc2_bind(ctx, &bp, &conn);
    ck_assert_msg(rc == 0, "bind to port %d: %s", port, rpc2_errname(rc));
    return conn;
}

/* The end of every test here: the client goes, then the proxy (-1: none)
 * and the server, each of which must exit cleanly, then the files. */
static void finish(rpc2_ctx *ctx, rpc2_conn *conn, pid_t proxy, pid_t srv)
{
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    if (proxy > 0)
        ck_assert_int_eq(procs_child_stop(proxy, SIGTERM), 0);
    ck_assert_int_eq(procs_child_stop(srv, SIGTERM), 0);
    root_remove();
}

/* ---- contents ----------------------------------------------------------------- */

static uint8_t pat(uint64_t i, uint32_t seed)
{
    uint64_t x = (i + ((uint64_t)seed << 40)) * 0x9E3779B97F4A7C15ull;
    return (uint8_t)((x ^ x >> 29) >> 24);
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
    uint8_t *buf = malloc(n + 1);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(i, seed);
    return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "creating %s: %s", path, strerror(errno));
    for (size_t done = 0; done < n;) {
        ssize_t k = write(fd, buf + done, n - done);
        ck_assert_msg(k > 0, "writing %s: %s", path, strerror(errno));
        done += (size_t)k;
    }
    ck_assert_int_eq(close(fd), 0);
}

/* The file at path is exactly want[0 .. n). */
static void expect_file(const char *path, const uint8_t *want, size_t n, const char *what)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "%s: opening %s: %s", what, path, strerror(errno));
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_msg((size_t)st.st_size == n, "%s: %lld bytes, expected %zu", what,
                  (long long)st.st_size, n);
    uint8_t *got = malloc(n + 1);
    ck_assert_ptr_nonnull(got);
    for (size_t done = 0; done < n;) {
        ssize_t k = read(fd, got + done, n - done);
        ck_assert_msg(k > 0, "%s: reading %s", what, path);
        done += (size_t)k;
    }
    close(fd);
    ck_assert_msg(memcmp(got, want, n) == 0, "%s: contents differ", what);
    free(got);
}

/* ---- the work ------------------------------------------------------------------- */

/* INCR proves at-most-once (the count is the call's number), ECHO that the
 * bytes of arguments and results come back unchanged, up to a near-full
 * datagram. */
static unsigned run_calls(rpc2_conn *conn, unsigned n, uint32_t seed)
{
    uint8_t *data = pattern(TEST_MAX_BLOB, seed);
    for (unsigned i = 1; i <= n; i++) {
        incr_args a = {.client = 9, .sleep_ms = 0};
        unsigned count = 0;
        int rc = rpc2_call(conn, TEST_INCR, (xdrproc_t)xdr_incr_args, &a, (xdrproc_t)xdr_u_int,
                           &count, NULL);
        ck_assert_msg(rc == 0, "INCR %u: %s", i, rpc2_errname(rc));
        ck_assert_msg(count == i, "INCR %u ran as execution %u", i, count);

        blob in = {.data = {.data_len = (i * 7919u) % TEST_MAX_BLOB, .data_val = (char *)data}};
        blob out;
        memset(&out, 0, sizeof out);
        rc = rpc2_call(conn, TEST_ECHO, (xdrproc_t)xdr_blob, &in, (xdrproc_t)xdr_blob, &out, NULL);
        ck_assert_msg(rc == 0, "ECHO %u: %s", i, rpc2_errname(rc));
        ck_assert_uint_eq(out.data.data_len, in.data.data_len);
        ck_assert(memcmp(out.data.data_val, data, in.data.data_len) == 0);
        xdr_free((xdrproc_t)xdr_blob, (char *)&out);
    }
    free(data);
    return 2 * n;
}

/* One fetch (server file to client file) or store (the other way) of n
 * pattern bytes by name, written atomically at the far end. Success means
 * the far end holds exactly the bytes; the only failure allowed is the
 * integrity error, and then nothing is at the name. Returns the rc. */
static int transfer_checked(rpc2_conn *conn, enum rpc2_se_direction dir, size_t n, uint32_t seed)
{
    char name[32], spath[160], cpath[160], what[64];
    bool fetch = dir == RPC2_SE_FETCH;
    snprintf(name, sizeof name, "%s%zu-%u", fetch ? "f" : "s", n, seed);
    snprintf(spath, sizeof spath, "%s/%s", srv_dir, name);
    snprintf(cpath, sizeof cpath, "%s/%s", cli_dir, name);
    snprintf(what, sizeof what, "%s of %zu bytes", fetch ? "fetch" : "store", n);
    uint8_t *want = pattern(n, seed);
    write_file(fetch ? spath : cpath, want, n);

    struct rpc2_se_desc d;
    memset(&d, 0, sizeof d);
    d.type = RPC2_SE_SFTP;
    d.direction = dir;
    d.quota = -1;
    d.file_kind = RPC2_SE_FILE_NAME;
    d.file.name.path = cpath;
    d.file.name.mode = 0644;
    d.file.name.atomic = fetch;
    xfer_args a = {.path = name, .offset = 0, .quota = -1, .kind = TEST_KIND_NAME, .atomic = !fetch};
    quad_t moved = -1;
    struct rpc2_call_opts opts = {.se = &d};
    int rc = rpc2_call(conn, fetch ? TEST_FETCH : TEST_STORE, (xdrproc_t)xdr_xfer_args, &a,
                       (xdrproc_t)xdr_quad_t, &moved, &opts);
    int err = rc == RPC2_ESEFAIL1 ? d.error : rc;
    if (rc == 0) {
        ck_assert_msg(moved == (quad_t)n, "%s: the server moved %lld", what, (long long)moved);
        ck_assert_uint_eq(d.bytes_transferred, n);
        ck_assert_int_eq(d.checksum_valid, 1);
        expect_file(fetch ? cpath : spath, want, n, what);
    } else {
        ck_assert_msg(err == RPC2_EINTEGRITY, "%s: %s (desc.error %s)", what, rpc2_errname(rc),
                      rpc2_errname(d.error));
        ck_assert_msg(access(fetch ? cpath : spath, F_OK) != 0, "%s: a file despite %s", what,
                      rpc2_errname(err));
    }
    free(want);
    unlink(spath);
    unlink(cpath);
    return err;
}

static void transfer(rpc2_conn *conn, enum rpc2_se_direction dir, size_t n, uint32_t seed)
{
    ck_assert_int_eq(transfer_checked(conn, dir, n, seed), 0);
}

/* Sizes where the path changes: nothing, a byte, piggybacked, one packet
 * and a bit, many windows. */
static const size_t sizes[] = {0, 1, 5000, 70 * KiB, 1 * MiB, 12 * MiB, 40 * MiB};

START_TEST(test_calls_and_transfers_survive_damage)
{
    uint32_t seed = 100 + (uint32_t)_i;
    pid_t srv, proxy;
    root_make();
    int srv_port = server_start(&srv);
    int proxy_port = proxy_start(srv_port, seed, "0.02", &proxy);
    rpc2_ctx *ctx = client_new();
    rpc2_conn *conn = bind_ok(ctx, proxy_port);

    unsigned calls = run_calls(conn, scaled(300), seed);
    size_t n_sizes = sizeof sizes / sizeof sizes[0] - (procs_small_run() ? 2 : 0);
    for (size_t i = 0; i < n_sizes; i++) {
        transfer(conn, RPC2_SE_FETCH, sizes[i], seed + (uint32_t)i);
        transfer(conn, RPC2_SE_STORE, sizes[i], seed + (uint32_t)i);
    }
    calls += 2 * (unsigned)n_sizes;

    struct rpc2_ctx_stats cs;
    rpc2_ctx_stats(ctx, &cs);
    fprintf(stderr,
            "corrupt (seed %u): client refused %llu damaged datagrams of %llu, "
            "%llu retransmissions\n",
            seed, (unsigned long long)cs.rejected_check, (unsigned long long)cs.packets_received,
            (unsigned long long)cs.retransmissions);
    /* Damage reached the client and was refused as damage, nothing else. */
    if (!procs_small_run())
        ck_assert_uint_gt(cs.rejected_check, 0);
    ck_assert_uint_eq(cs.rejected_type + cs.rejected_flags + cs.rejected_length, 0);

    /* Straight to the server: every call ran exactly once (and this STATS). */
    rpc2_conn *direct = bind_ok(ctx, srv_port);
    server_stats st;
    memset(&st, 0, sizeof st);
    ck_assert_int_eq(
        rpc2_call(direct, TEST_STATS, NULL, NULL, (xdrproc_t)xdr_server_stats, &st, NULL), 0);
    ck_assert_uint_eq(st.calls_executed, calls + 1);
    rpc2_unbind(direct);
    finish(ctx, conn, proxy, srv);
}
END_TEST

/*
 * 500 transfers of mixed sizes through 1% damage plus 10% loss, duplication
 * and reordering: each one is byte-identical at the far end. Never a wrong
 * file reported as success, and no failure either: the per-datagram check
 * catches every damaged datagram (the end-to-end checksum is shown catching
 * what gets past it in test_resealed_damage_caught_end_to_end).
 */
START_TEST(test_500_transfers_never_wrong)
{
    static const size_t mix[] = {0, 1, 1000, 5000, 64 * KiB, 64 * KiB + 1, 200 * KiB, 1 * MiB};
    uint32_t seed = 300;
    pid_t srv, proxy;
    root_make();
    int srv_port = server_start(&srv);
    int proxy_port = proxy_start(srv_port, seed, "0.10", &proxy);
    rpc2_ctx *ctx = client_new();
    rpc2_conn *conn = bind_ok(ctx, proxy_port);
    unsigned n = scaled(500), ok = 0, integrity = 0;

    for (unsigned i = 0; i < n; i++) {
        enum rpc2_se_direction dir = i % 2 ? RPC2_SE_STORE : RPC2_SE_FETCH;
        int rc = transfer_checked(conn, dir, mix[(i / 2) % (sizeof mix / sizeof mix[0])], seed + i);
        ok += rc == 0;
        integrity += rc == RPC2_EINTEGRITY;
    }
    struct rpc2_ctx_stats cs;
    rpc2_ctx_stats(ctx, &cs);
    fprintf(stderr,
            "500 transfers: %u byte-identical, %u failed with the integrity error; the client "
            "refused %llu damaged datagrams, %llu retransmissions\n",
            ok, integrity, (unsigned long long)cs.rejected_check,
            (unsigned long long)cs.retransmissions);
    /* Every one of them arrived: a 64-bit check per datagram lets damage
     * through once in 2^64, so an integrity failure here is a bug, and so
     * is a transfer that failed in any other way (transfer_checked already
     * refuses those). And the faults were there to survive. */
    ck_assert_uint_eq(integrity, 0);
    ck_assert_uint_eq(ok, n);
    ck_assert_uint_gt(cs.retransmissions, 0);
    if (!procs_small_run())
        ck_assert_uint_gt(cs.rejected_check, 0);
    finish(ctx, conn, proxy, srv);
}
END_TEST

/*
 * Damage the datagram check cannot see: the proxy flips a bit of SFTP data
 * and makes the datagram's check match again (a sender that damaged its own
 * buffer would send just that). Only the end-to-end checksum stands between
 * this and a wrong file: each transfer is byte-identical or fails with the
 * integrity error and leaves nothing at the name, and the checksum is shown
 * doing the catching (some fail), in both directions.
 */
START_TEST(test_resealed_damage_caught_end_to_end)
{
    static const size_t mix[] = {200 * KiB, 1 * MiB, 4 * MiB};
    uint32_t seed = 700;
    pid_t srv, proxy;
    root_make();
    int srv_port = server_start(&srv);
    int proxy_port = resealing_proxy_start(srv_port, seed, &proxy);
    rpc2_ctx *ctx = client_new();
    rpc2_conn *conn = bind_ok(ctx, proxy_port);
    unsigned n = procs_small_run() ? 30 : 60, ok = 0, caught[2] = {0, 0};

    for (unsigned i = 0; i < n; i++) {
        enum rpc2_se_direction dir = i % 2 ? RPC2_SE_STORE : RPC2_SE_FETCH;
        int rc = transfer_checked(conn, dir, mix[(i / 2) % (sizeof mix / sizeof mix[0])], seed + i);
        ok += rc == 0;
        caught[i % 2] += rc == RPC2_EINTEGRITY;
    }
    struct rpc2_ctx_stats cs;
    rpc2_ctx_stats(ctx, &cs);
    fprintf(stderr,
            "resealed damage: %u of %u byte-identical; the end-to-end checksum caught %u fetches "
            "and %u stores; the client's datagram check refused %llu\n",
            ok, n, caught[0], caught[1], (unsigned long long)cs.rejected_check);
    ck_assert_uint_eq(ok + caught[0] + caught[1], n);
    ck_assert_uint_gt(caught[0], 0); /* the client's sink caught some */
    ck_assert_uint_gt(caught[1], 0); /* the server's sink caught some */
    ck_assert_uint_gt(ok, 0);
    ck_assert_uint_eq(cs.rejected_check, 0); /* the damage was invisible to it */
    finish(ctx, conn, proxy, srv);
}
END_TEST

/* ---- security --------------------------------------------------------------- */

static unsigned char alice_secret[SEC_KEY_LEN];
static char keys_path[160];

/* A key file for the server (alice's secret, mode 0600, as it must be). */
static void keys_make(void)
{
    char b64[RPC2_SECRET_BASE64_LEN + 1], line[256];
    struct sec_psk psk;
    ck_assert_int_eq(rpc2_keys_generate(b64), 0);
    ck_assert_int_eq(sec_psk_from_base64(b64, strlen(b64), &psk), 0);
    memcpy(alice_secret, psk.key, sizeof alice_secret);
    snprintf(keys_path, sizeof keys_path, "%s/keys", root);
    int n = snprintf(line, sizeof line, "# test identities\nalice %s\n", b64);
    int fd = open(keys_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, line, (size_t)n), n);
    ck_assert_int_eq(close(fd), 0);
}

/*
 * Calls and transfers on a protected connection through damage, loss and
 * duplication: all complete byte-identical; damaged datagrams fail their
 * MAC (rejected_auth) and the proxy's duplicates are replays
 * (rejected_replay): neither is believed.
 */
START_TEST(test_protected_through_damage)
{
    enum rpc2_security level = _i ? RPC2_SEC_ENCRYPT : RPC2_SEC_AUTH;
    uint32_t seed = 500 + (uint32_t)_i;
    pid_t srv, proxy;
    root_make();
    keys_make();
    int srv_port = server_start_secure(keys_path, "auth", &srv);
    char path[PATH_MAX], server[32], seed_text[16];
    snprintf(path, sizeof path, "%s/tests/faultproxy", procs_builddir());
    snprintf(server, sizeof server, "127.0.0.1:%d", srv_port);
    snprintf(seed_text, sizeof seed_text, "%u", seed);
    const char *argv[] = {path, "--listen", "127.0.0.1:0", "--server", server, "--corrupt", "0.01",
                          "--loss", "0.02", "--dup", "0.05", "--seed", seed_text, NULL};
    int proxy_port = child_spawn(argv, PROXY_PREFIX, &proxy);
    rpc2_ctx *ctx = client_new();
    rpc2_conn *conn;
    int rc = bind_as(ctx, proxy_port, level, "alice", alice_secret, &conn);
    ck_assert_msg(rc == 0, "bind: %s", rpc2_errname(rc));

    run_calls(conn, scaled(100), seed);
    static const size_t protected_sizes[] = {0, 5000, 1 * MiB, 12 * MiB};
    size_t n_sizes = sizeof protected_sizes / sizeof protected_sizes[0] - (procs_small_run() ? 1 : 0);
    for (size_t i = 0; i < n_sizes; i++) {
        transfer(conn, RPC2_SE_FETCH, protected_sizes[i], seed + (uint32_t)i);
        transfer(conn, RPC2_SE_STORE, protected_sizes[i], seed + (uint32_t)i);
    }
    struct rpc2_ctx_stats cs;
    rpc2_ctx_stats(ctx, &cs);
    fprintf(stderr,
            "protected (%s): the client refused %llu forged or damaged and %llu replayed "
            "datagrams of %llu\n",
            level == RPC2_SEC_AUTH ? "auth" : "encrypt", (unsigned long long)cs.rejected_auth,
            (unsigned long long)cs.rejected_replay, (unsigned long long)cs.packets_received);
    if (!procs_small_run()) {
        ck_assert_uint_gt(cs.rejected_auth, 0);
        ck_assert_uint_gt(cs.rejected_replay, 0);
    }
    finish(ctx, conn, proxy, srv);
}
END_TEST

/* Wrong secret and unknown identity look the same from outside (RPC2_EAUTH);
 * a level below the server's minimum is RPC2_ESECURITY; none leave a
 * connection behind. */
START_TEST(test_bind_refusals)
{
    pid_t srv;
    root_make();
    keys_make();
    int port = server_start_secure(keys_path, "auth", &srv);
    rpc2_ctx *ctx = client_new();
    rpc2_conn *conn;
    unsigned char wrong[SEC_KEY_LEN];
    memcpy(wrong, alice_secret, sizeof wrong);
    wrong[0] ^= 1;

    ck_assert_int_eq(bind_as(ctx, port, RPC2_SEC_AUTH, "alice", wrong, &conn), RPC2_EAUTH);
    ck_assert_int_eq(bind_as(ctx, port, RPC2_SEC_ENCRYPT, "mallory", alice_secret, &conn),
                     RPC2_EAUTH);
    ck_assert_int_eq(bind_as(ctx, port, RPC2_SEC_NONE, "alice", NULL, &conn), RPC2_ESECURITY);
    ck_assert_int_eq(bind_as(ctx, port, RPC2_SEC_AUTH, "alice", NULL, &conn), RPC2_EINVAL);
    ck_assert_int_eq(bind_as(ctx, port, RPC2_SEC_ENCRYPT, "alice", alice_secret, &conn), 0);
    run_calls(conn, 3, 1);
    finish(ctx, conn, -1, srv);
}
END_TEST

/* One datagram to the server from a socket of its own; the answer's type
 * and, for a BIND_ERR, its error. */
static uint8_t exchange(int fd, int port, const uint8_t *dgram, size_t len, int32_t *err)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    uint8_t answer[PKT_MAX_DATAGRAM];
    struct pkt_hdr h;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(sendto(fd, dgram, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
    ssize_t n = recv(fd, answer, sizeof answer, 0);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(pkt_hdr_decode(answer, (size_t)n, &h), PKT_OK);
    *err = 0;
    if (h.type == PKT_BIND_ERR)
        ck_assert_int_eq(pkt_i32_decode(answer + PKT_HDR_SIZE, h.body_len, err), PKT_OK);
    return h.type;
}

static int udp_socket(void)
{
    struct timeval tv = {.tv_sec = 10};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    return fd;
}

/*
 * A client's BIND_REQ, captured on the path and sent again later from
 * elsewhere: the server remembers the hello and refuses it
 * (RPC2_ESECURITY). (Its first answer gave the recorder nothing either: the
 * session keys need the client's ephemeral secret.)
 */
START_TEST(test_replayed_handshake_opens_nothing)
{
    pid_t srv;
    root_make();
    keys_make();
    int port = server_start_secure(keys_path, "auth", &srv);
    struct sec_hs hs;
    struct sec_psk psk;
    uint8_t hello[SEC_HELLO_MAX], dgram[PKT_MAX_DATAGRAM];
    size_t hello_len, body_len;
    const uint32_t client_conn = 0x5eed1234;
    memcpy(psk.key, alice_secret, sizeof psk.key);
    struct sec_binding b = {.client_conn = client_conn, .subsystem = TEST_SUBSYS};
    ck_assert_int_eq(sec_client_hello(&hs, "alice", 5, &psk, RPC2_SEC_AUTH, SEC_SUITES_ALL, &b,
                                      hello, sizeof hello, &hello_len),
                     0);
    struct pkt_bind_req m = {.subsystem = TEST_SUBSYS,
                             .identity = (const uint8_t *)"alice",
                             .identity_len = 5,
                             .hello = hello,
                             .hello_len = (uint32_t)hello_len};
    ck_assert_int_eq(pkt_bind_req_encode(&m, dgram + PKT_HDR_SIZE, PKT_MAX_BODY, &body_len), PKT_OK);
    struct pkt_hdr h = {.type = PKT_BIND_REQ, .src_conn = client_conn, .ts = 1,
                        .body_len = (uint32_t)body_len, .trailer_len = PKT_CHECK_SIZE};
    pkt_hdr_encode(&h, dgram);
    size_t len = pkt_seal(dgram, PKT_HDR_SIZE + body_len);
    ck_assert_uint_gt(len, 0);

    int genuine = udp_socket(), recorder = udp_socket();
    int32_t err;
    ck_assert_uint_eq(exchange(genuine, port, dgram, len, &err), PKT_BIND_OK);
    ck_assert_uint_eq(exchange(genuine, port, dgram, len, &err), PKT_BIND_OK); /* a retransmission */
    ck_assert_uint_eq(exchange(recorder, port, dgram, len, &err), PKT_BIND_ERR);
    ck_assert_int_eq(err, RPC2_ESECURITY);
    close(genuine);
    close(recorder);
    sec_hs_wipe(&hs);
    ck_assert_int_eq(procs_child_stop(srv, SIGTERM), 0);
    root_remove();
}
END_TEST

static void teardown(void)
{
    procs_children_stop_leftovers();
    root_remove();
}

static Suite *corrupt_suite(void)
{
    Suite *s = suite_create("corrupt");
    TCase *tc = tcase_create("damage");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, procs_children_reset, teardown);
    tcase_add_loop_test(tc, test_calls_and_transfers_survive_damage, 0, 3);
    tcase_add_test(tc, test_500_transfers_never_wrong);
    tcase_add_test(tc, test_resealed_damage_caught_end_to_end);
    suite_add_tcase(s, tc);
    tc = tcase_create("security");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, procs_children_reset, teardown);
    tcase_add_loop_test(tc, test_protected_through_damage, 0, 2);
    tcase_add_test(tc, test_bind_refusals);
    tcase_add_test(tc, test_replayed_handshake_opens_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(corrupt_suite());
}
