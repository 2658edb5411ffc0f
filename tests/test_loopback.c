/*
 * test_loopback.c - rpc2 end to end over real sockets on loopback: every
 * test spawns its own tests/testsrv (and, for the lossy case, the fault
 * proxy) and talks to it through the public API from an in-process client.
 *
 * What these show: results are correct under load and concurrency, every
 * call runs at most once (testsrv counts each client's INCR executions, so
 * a returned count equal to the call number proves none ran twice and none
 * was lost), long calls survive on BUSY, dead and restarted servers are
 * told apart, unbinds free state on both sides, and errors come back as
 * the documented codes.
 *
 * This runs on a loaded two-core machine: no test asserts on timing except
 * with generous bounds, and waits for state are polled with a deadline,
 * never a fixed sleep. RPC2_TEST_SMALL=1 scales the big loops down (for
 * sanitizer builds).
 */
#include <check.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include <rpc2/rpc2.h>

#include "procs.h"
#include "testproto.h"
#include "skip.h"
#include "check_run.h"

#define SERVER_PREFIX "testsrv listening on"
#define PROXY_PREFIX "faultproxy listening on"
#define MS 1000u       /* microseconds */
#define SEC (1000u * MS)

/* ---- scale and time ----------------------------------------------------- */

/* n, or a tenth of it under RPC2_TEST_SMALL. */
static unsigned scaled(unsigned n)
{
    return procs_small_run() ? n / 10 : n;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- child processes ------------------------------------------------------ */

/* Spawns argv, waits for its "PREFIX PORT" line, and registers it so the
 * teardown can stop what a failed test left behind; returns the port. */
static int child_spawn(const char *const argv[], const char *prefix, pid_t *pid)
{
    int port = procs_child_spawn(argv, prefix, pid);
    ck_assert_msg(port > 0, "%s did not start", argv[0]);
    return port;
}

/* A testsrv listening on listen ("127.0.0.1:0", "[::1]:0", ...) that drops a
 * client's connection after dead_ms of silence; returns its port. */
static int server_start_dead(const char *listen, unsigned dead_ms, pid_t *pid)
{
    char path[PATH_MAX], dead[16];
    snprintf(path, sizeof path, "%s/tests/testsrv", procs_builddir());
    snprintf(dead, sizeof dead, "%u", dead_ms);
    const char *argv[] = {path,  "--listen",  listen, "--workers", "4",
                          "--dead-ms", dead, "--idle-ms", dead,   NULL};
    return child_spawn(argv, SERVER_PREFIX, pid);
}

static int server_start(const char *listen, pid_t *pid)
{
    return server_start_dead(listen, 30000, pid);
}

/* A clean stop: testsrv exits 0 after SIGTERM, with everything freed. */
static void server_stop(pid_t pid)
{
    ck_assert_int_eq(procs_child_stop(pid, SIGTERM), 0);
}

/* A crash: no goodbye to anyone. */
static void server_kill(pid_t pid)
{
    ck_assert_int_eq(procs_child_stop(pid, SIGKILL), 128 + SIGKILL);
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

/* ---- the client side ------------------------------------------------------ */

static struct rpc2_params client_params(void)
{
    struct rpc2_params p;
    rpc2_params_init(&p);
    return p;
}

/* Retransmissions every few tens of milliseconds: long calls and lossy
 * paths cost little waiting. */
static struct rpc2_params fast_retry_params(uint32_t retry_max_us)
{
    struct rpc2_params p = client_params();
    p.retry_initial_us = 20 * MS;
    p.retry_min_us = 10 * MS;
    p.retry_max_us = retry_max_us;
    return p;
}

static rpc2_ctx *client_new(const struct rpc2_params *p)
{
    rpc2_ctx *ctx = NULL;
    ck_assert_int_eq(rpc2_ctx_new(p, &ctx), 0);
    return ctx;
}

/* Does not assert, so hammer threads can use it. */
static int try_bind(rpc2_ctx *ctx, const char *host, int port, uint32_t subsystem, rpc2_conn **conn)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct rpc2_bind_params bp = {
        .host = host, .port = port_text, .subsystem = subsystem, .identity = "test_loopback"};
    return rpc2_bind(ctx, &bp, conn);
}

static rpc2_conn *bind_ok(rpc2_ctx *ctx, const char *host, int port)
{
    rpc2_conn *conn = NULL;
    int rc = try_bind(ctx, host, port, TEST_SUBSYS, &conn);
    ck_assert_msg(rc == 0, "bind to %s port %d: %s", host, port, rpc2_errname(rc));
    return conn;
}

static int call_add(rpc2_conn *conn, int a, int b, int *sum)
{
    add_args args = {.a = a, .b = b};
    return rpc2_call(conn, TEST_ADD, (xdrproc_t)xdr_add_args, &args, (xdrproc_t)xdr_int, sum, NULL);
}

static int call_incr(rpc2_conn *conn, uint32_t client, unsigned *count)
{
    incr_args args = {.client = client, .sleep_ms = 0};
    return rpc2_call(conn, TEST_INCR, (xdrproc_t)xdr_incr_args, &args, (xdrproc_t)xdr_u_int, count,
                     NULL);
}

static int call_slow_incr(rpc2_conn *conn, uint32_t client, unsigned sleep_ms, uint32_t timeout_us,
                          unsigned *count)
{
    incr_args args = {.client = client, .sleep_ms = sleep_ms};
    struct rpc2_call_opts opts = {.timeout_us = timeout_us};
    return rpc2_call(conn, TEST_SLOW_INCR, (xdrproc_t)xdr_incr_args, &args, (xdrproc_t)xdr_u_int,
                     count, &opts);
}

static int call_null(rpc2_conn *conn)
{
    return rpc2_call(conn, TEST_NULL, NULL, NULL, NULL, NULL, NULL);
}

static server_stats stats_ok(rpc2_conn *conn)
{
    server_stats st;
    memset(&st, 0, sizeof st);
    int rc = rpc2_call(conn, TEST_STATS, NULL, NULL, (xdrproc_t)xdr_server_stats, &st, NULL);
    ck_assert_msg(rc == 0, "TEST_STATS: %s", rpc2_errname(rc));
    return st;
}

static void expect_add(rpc2_conn *conn, int a, int b)
{
    int sum = 0, rc = call_add(conn, a, b, &sum);
    ck_assert_msg(rc == 0, "ADD(%d, %d): %s", a, b, rpc2_errname(rc));
    ck_assert_int_eq(sum, a + b);
}

static struct rpc2_ctx_stats client_stats(const rpc2_ctx *ctx)
{
    struct rpc2_ctx_stats st;
    rpc2_ctx_stats(ctx, &st);
    return st;
}

/* A UDP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
static int unused_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- 1. many calls on one connection -------------------------------------- */

START_TEST(test_many_calls_one_conn)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);

    unsigned n = scaled(10000);
    for (unsigned i = 0; i < n; i++) {
        int a = (int)(i * 7919u % 200001u) - 100000, b = (int)i - 5000;
        expect_add(conn, a, b);
    }

    server_stats st = stats_ok(conn);
    ck_assert_uint_eq(st.calls_executed, n + 1); /* the STATS call counts itself */
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 2. concurrent clients ------------------------------------------------ */

#define N_HAMMERS 50

/* One client thread: its own context and connection, n INCR calls. */
struct hammer {
    pthread_t thread;
    int port;
    uint32_t client;
    unsigned calls;
    char failure[96]; /* what went wrong, read after join; "" if nothing */
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = NULL;
    rpc2_conn *conn = NULL;
    int rc = rpc2_ctx_new(&p, &ctx);

    if (rc == 0)
        rc = try_bind(ctx, "127.0.0.1", h->port, TEST_SUBSYS, &conn);
    if (rc != 0) {
        snprintf(h->failure, sizeof h->failure, "setup: %s", rpc2_errname(rc));
        rpc2_ctx_free(ctx);
        return NULL;
    }
    for (unsigned i = 1; i <= h->calls; i++) {
        unsigned count = 0;
        rc = call_incr(conn, h->client, &count);
        if (rc != 0 || count != i) {
            snprintf(h->failure, sizeof h->failure, "call %u: %s, count %u", i, rpc2_errname(rc),
                     count);
            break;
        }
    }
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return NULL;
}

/* n distinct, nonzero client ids from seed (xorshift32). */
static void random_clients(uint32_t seed, uint32_t *ids, unsigned n)
{
    uint32_t x = seed ? seed : 1;
    for (unsigned i = 0; i < n;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bool taken = x == 0;
        for (unsigned j = 0; j < i && !taken; j++)
            taken = ids[j] == x;
        if (!taken)
            ids[i++] = x;
    }
}

START_TEST(test_concurrent_clients)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    uint32_t seed = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16, ids[N_HAMMERS];
    struct hammer h[N_HAMMERS];
    unsigned calls = scaled(1000);

    random_clients(seed, ids, N_HAMMERS);
    for (int i = 0; i < N_HAMMERS; i++) {
        h[i] = (struct hammer){.port = port, .client = ids[i], .calls = calls};
        ck_assert_int_eq(pthread_create(&h[i].thread, NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < N_HAMMERS; i++)
        pthread_join(h[i].thread, NULL);
    for (int i = 0; i < N_HAMMERS; i++)
        ck_assert_msg(h[i].failure[0] == '\0', "client %u (seed %u) %s", h[i].client, seed,
                      h[i].failure);

    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    server_stats st = stats_ok(conn);
    ck_assert_uint_eq(st.calls_executed, (uint64_t)N_HAMMERS * calls + 1);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 3. a long call lives on BUSY ----------------------------------------- */

START_TEST(test_slow_handler_busy)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = fast_retry_params(50 * MS);
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);

    /* 1000 ms: twenty times the largest retransmission timeout. */
    unsigned count = 0;
    ck_assert_int_eq(call_slow_incr(conn, 3, 1000, 0, &count), 0);
    ck_assert_uint_eq(count, 1);

    struct rpc2_ctx_stats cs = client_stats(ctx);
    ck_assert_uint_gt(cs.busy_received, 0);
    ck_assert_uint_gt(cs.retransmissions, 0);
    server_stats st = stats_ok(conn);
    ck_assert_uint_eq(st.calls_executed, 2); /* the slow call once, and this STATS */
    ck_assert_uint_gt(st.duplicate_requests, 0);
    ck_assert_uint_gt(st.busy_sent, 0);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 4. a dead server ----------------------------------------------------- */

/* A crashed server's kernel says the port is closed: the call ends at once
 * (RPC2_ECONNREFUSED), not after the silence. */
START_TEST(test_killed_server_is_dead)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    p.dead_peer_us = 20 * SEC;
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    ck_assert_int_eq(call_null(conn), 0);

    server_kill(srv);
    int64_t t0 = now_us();
    int rc = call_null(conn);
    int64_t elapsed = now_us() - t0;

    ck_assert_msg(rc == RPC2_ECONNREFUSED, "got %s", rpc2_errname(rc));
    ck_assert_msg(elapsed < 3 * SEC, "ECONNREFUSED after %lld us", (long long)elapsed);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
}
END_TEST

/* A server that is there but silent (stopped: its socket stays open, no
 * ICMP comes) is dead after the configured silence. */
START_TEST(test_silent_server_is_dead)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    p.dead_peer_us = 1 * SEC;
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    ck_assert_int_eq(call_null(conn), 0);

    ck_assert_int_eq(kill(srv, SIGSTOP), 0);
    int64_t t0 = now_us();
    int rc = call_null(conn);
    int64_t elapsed = now_us() - t0;

    ck_assert_msg(rc == RPC2_EDEAD, "got %s", rpc2_errname(rc));
    /* never before the silence it was given; the upper bound is the 3x
     * margin for a loaded machine (valgrind in CI) */
    ck_assert_msg(elapsed >= 990 * MS && elapsed <= 3 * p.dead_peer_us, "EDEAD after %lld us",
                  (long long)elapsed);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_kill(srv);
}
END_TEST

/* ---- 5. a restarted server ------------------------------------------------ */

START_TEST(test_restarted_server_unknown_conn)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    p.dead_peer_us = 20 * SEC;
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    expect_add(conn, 1, 2);

    server_kill(srv);
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    ck_assert_int_eq(server_start(listen, &srv), port);

    int64_t t0 = now_us();
    int rc = call_add(conn, 3, 4, &(int){0});
    int64_t elapsed = now_us() - t0;
    ck_assert_msg(rc == RPC2_EUNKNOWNCONN, "got %s", rpc2_errname(rc));
    ck_assert_msg(elapsed < 5 * SEC, "EUNKNOWNCONN after %lld us", (long long)elapsed);

    rpc2_unbind(conn);
    conn = bind_ok(ctx, "127.0.0.1", port);
    expect_add(conn, 3, 4);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 6. unbind frees both ends -------------------------------------------- */

#define N_UNBINDS 100

START_TEST(test_unbind_frees_state)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *stats_conn = bind_ok(ctx, "127.0.0.1", port);
    rpc2_conn *conns[N_UNBINDS];

    for (int i = 0; i < N_UNBINDS; i++)
        conns[i] = bind_ok(ctx, "127.0.0.1", port);
    for (int i = 0; i < N_UNBINDS; i++)
        expect_add(conns[i], i, i);
    ck_assert_uint_eq(stats_ok(stats_conn).connections, N_UNBINDS + 1);
    ck_assert_uint_eq(rpc2_ctx_conn_count(ctx), N_UNBINDS + 1);
    for (int i = 0; i < N_UNBINDS; i++)
        rpc2_unbind(conns[i]);

    /* The UNBINDs and their acks travel while the loop runs, that is while
     * this client makes calls: keep asking until both ends are down to the
     * stats connection, for at most 5 s. */
    unsigned client_conns, server_conns;
    int64_t deadline = now_us() + 5 * SEC;
    do {
        server_conns = stats_ok(stats_conn).connections;
        client_conns = rpc2_ctx_conn_count(ctx);
    } while ((client_conns != 1 || server_conns != 1) && now_us() < deadline);
    ck_assert_uint_eq(client_conns, 1);
    ck_assert_uint_eq(server_conns, 1);
    rpc2_unbind(stats_conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- idle expiry ---------------------------------------------------------- */

/*
 * A client that vanishes without an UNBIND (it crashed, or all its UNBINDs
 * were lost) leaves a connection the server drops once it has been idle for
 * the server's idle timeout, so dead clients cannot pile up.
 */
START_TEST(test_server_drops_vanished_client)
{
    pid_t srv;
    int port = server_start_dead("127.0.0.1:0", 1000, &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *gone = client_new(&p), *ctx = client_new(&p);
    ck_assert_int_eq(call_null(bind_ok(gone, "127.0.0.1", port)), 0);
    rpc2_ctx_free(gone); /* vanishes: no UNBIND */

    /* Poll for five times the server's idle timeout. */
    rpc2_conn *stats_conn = bind_ok(ctx, "127.0.0.1", port);
    unsigned server_conns;
    int64_t deadline = now_us() + 5 * SEC;
    while ((server_conns = stats_ok(stats_conn).connections) != 1 && now_us() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    ck_assert_msg(server_conns == 1, "the vanished client's connection is still there");
    rpc2_unbind(stats_conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 7. through the fault proxy ------------------------------------------- */

START_TEST(test_lossy_path_at_most_once)
{
    pid_t srv, proxy;
    int srv_port = server_start("127.0.0.1:0", &srv);
    /* clang-format off */
    const char *faults[] = {"--loss", "0.2", "--reorder", "0.2,20", "--dup", "0.05",
                            "--seed", "7", NULL};
    /* clang-format on */
    int proxy_port = proxy_start(srv_port, faults, &proxy);
    struct rpc2_params p = fast_retry_params(200 * MS);
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", proxy_port);

    for (unsigned i = 1; i <= 300; i++) {
        unsigned count = 0;
        int rc = call_incr(conn, 77, &count);
        ck_assert_msg(rc == 0, "call %u: %s", i, rpc2_errname(rc));
        ck_assert_msg(count == i, "call %u ran as execution %u", i, count);
    }
    ck_assert_uint_gt(client_stats(ctx).retransmissions, 0); /* the faults did happen */

    /* Straight to the server: it ran exactly the 300 calls (and this STATS). */
    rpc2_conn *direct = bind_ok(ctx, "127.0.0.1", srv_port);
    server_stats st = stats_ok(direct);
    ck_assert_uint_eq(st.calls_executed, 301);
    ck_assert_uint_gt(st.duplicate_requests, 0);
    rpc2_unbind(direct);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    ck_assert_int_eq(procs_child_stop(proxy, SIGTERM), 0);
    server_stop(srv);
}
END_TEST

/* ---- 8. a lying length ---------------------------------------------------- */

/* Encodes "name_args" whose string claims 0x7FFFFFF0 bytes but carries four. */
static bool_t xdr_huge_name(XDR *x, void *unused)
{
    u_int len = 0x7FFFFFF0u;
    char bytes[4] = "abcd";
    (void)unused;
    return xdr_u_int(x, &len) && xdr_opaque(x, bytes, sizeof bytes);
}

START_TEST(test_huge_length_refused)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);

    unsigned len = 0;
    int rc = rpc2_call(conn, TEST_NAME, (xdrproc_t)xdr_huge_name, NULL, (xdrproc_t)xdr_u_int, &len,
                       NULL);
    ck_assert_msg(rc == RPC2_EDECODE, "got %s", rpc2_errname(rc));

    name_args ok = {.name = "hello"};
    ck_assert_int_eq(
        rpc2_call(conn, TEST_NAME, (xdrproc_t)xdr_name_args, &ok, (xdrproc_t)xdr_u_int, &len, NULL),
        0);
    ck_assert_uint_eq(len, 5);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 9. errors ------------------------------------------------------------ */

START_TEST(test_unknown_subsystem)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = NULL;

    int rc = try_bind(ctx, "127.0.0.1", port, TEST_SUBSYS + 1, &conn);
    ck_assert_msg(rc == RPC2_ENOSUBSYS, "got %s", rpc2_errname(rc));
    ck_assert_ptr_null(conn);
    ck_assert_uint_eq(rpc2_ctx_conn_count(ctx), 0);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

START_TEST(test_unknown_proc_and_app_status)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);

    int rc = rpc2_call(conn, 999, NULL, NULL, NULL, NULL, NULL);
    ck_assert_msg(rc == RPC2_ENOPROC, "got %s", rpc2_errname(rc));
    ck_assert_int_eq(rpc2_call(conn, TEST_FAIL, NULL, NULL, NULL, NULL, NULL), 42);
    expect_add(conn, 20, 22); /* neither error hurt the connection */
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

START_TEST(test_call_timeout_then_usable)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = fast_retry_params(200 * MS);
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    const uint32_t timeout = 500 * MS;

    unsigned count = 0;
    int64_t t0 = now_us();
    int rc = call_slow_incr(conn, 9, 4000, timeout, &count);
    int64_t elapsed = now_us() - t0;
    ck_assert_msg(rc == RPC2_ETIMEDOUT, "got %s", rpc2_errname(rc));
    ck_assert_msg(elapsed >= timeout && elapsed <= 3 * timeout, "ETIMEDOUT after %lld us",
                  (long long)elapsed);

    /* The server still runs the abandoned call: the next one hears BUSY
     * until it is done, then runs second. */
    ck_assert_int_eq(call_incr(conn, 9, &count), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_gt(client_stats(ctx).busy_received, 0);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

START_TEST(test_bind_to_nobody)
{
    int port = unused_port();
    struct rpc2_params p = client_params();
    p.dead_peer_us = 500 * MS;
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = NULL;

    int64_t t0 = now_us();
    int rc = try_bind(ctx, "127.0.0.1", port, TEST_SUBSYS, &conn);
    int64_t elapsed = now_us() - t0;
    ck_assert_msg(rc < 0, "bind to nobody: %d", rc);
    ck_assert_ptr_null(conn);
    if (rc == RPC2_EDEAD)
        ck_assert_msg(elapsed >= 490 * MS, "EDEAD after %lld us", (long long)elapsed);
    ck_assert_msg(elapsed <= 3 * p.dead_peer_us, "%s after %lld us", rpc2_errname(rc),
                  (long long)elapsed);
    rpc2_ctx_free(ctx);
}
END_TEST

/* ---- 10. IPv6 ------------------------------------------------------------- */

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
    pid_t srv;
    int port = server_start("[::1]:0", &srv);
    struct rpc2_params p = client_params();
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "::1", port);
    expect_add(conn, -6, 48);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 11. async calls and cancel ------------------------------------------- */

struct outcome {
    int calls;
    int status;
};

static void record_outcome(int status, void *result, void *arg)
{
    struct outcome *o = arg;
    (void)result;
    o->calls++;
    o->status = status;
}

START_TEST(test_async_cancel)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct rpc2_params p = fast_retry_params(100 * MS);
    rpc2_ctx *ctx = client_new(&p);
    rpc2_conn *conn = bind_ok(ctx, "127.0.0.1", port);
    rpc2_conn *other = bind_ok(ctx, "127.0.0.1", port);

    incr_args slow = {.client = 11, .sleep_ms = 500};
    unsigned count = 0;
    struct outcome out = {0};
    ck_assert_int_eq(rpc2_call_async(conn, TEST_SLOW_INCR, (xdrproc_t)xdr_incr_args, &slow,
                                     (xdrproc_t)xdr_u_int, &count, NULL, record_outcome, &out),
                     0);
    ck_assert_int_eq(rpc2_cancel(conn), 0);
    ck_assert_int_eq(out.calls, 1);
    ck_assert_int_eq(out.status, RPC2_ECANCELED);

    /* Run the loop a while: the canceled call's late answers change nothing. */
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(call_null(other), 0);
    ck_assert_int_eq(out.calls, 1);

    /* The server ran the canceled call once (it was sent on loopback before
     * the cancel); the next call waits for it and runs second. */
    ck_assert_int_eq(call_incr(conn, 11, &count), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(out.calls, 1);
    rpc2_unbind(other);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    server_stop(srv);
}
END_TEST

/* ---- 12. what a callback sends leaves with the rest of the loop's turn ----- */

#define FAN 8

/* A client on a loop of the test's own, so callbacks run inside the
 * context's handlers as an application's do. */
struct fan {
    struct ev_loop *loop;
    rpc2_ctx *ctx;
    rpc2_conn *first, *conns[FAN];
    uint64_t batches_before, batches_at_reply;
    unsigned started, done;
    int all_done; /* done == FAN */
    int status;
    int inner_done, inner_status; /* the call a callback waits for itself */
};

static uint64_t send_batches(const rpc2_ctx *ctx)
{
    return client_stats(ctx).send_batches;
}

static void fanned_done(int status, void *result, void *arg)
{
    struct fan *f = arg;
    (void)result;
    if (f->done++ == 0)
        f->batches_at_reply = send_batches(f->ctx);
    f->all_done = f->done == FAN;
    if (status != 0)
        f->status = status;
}

/* The first call's end starts FAN calls, one on each connection. */
static void fan_out(int status, void *result, void *arg)
{
    struct fan *f = arg;
    (void)result;
    f->status = status;
    f->batches_before = send_batches(f->ctx);
    for (unsigned i = 0; i < FAN; i++)
        if (rpc2_call_async(f->conns[i], TEST_NULL, NULL, NULL, NULL, NULL, NULL, fanned_done, f) ==
            0)
            f->started++;
}

static void inner_done(int status, void *result, void *arg)
{
    struct fan *f = arg;
    (void)result;
    f->inner_status = status;
    f->inner_done = 1;
}

/* The first call's end starts another and runs the loop itself until that
 * one is answered (as rcat's waits inside a callback do): what the handler
 * holds back must still go out before the loop sleeps. */
static void wait_inside(int status, void *result, void *arg)
{
    struct fan *f = arg;
    int64_t deadline = now_us() + 30 * (int64_t)SEC;
    (void)result;
    f->status = status;
    if (rpc2_call_async(f->conns[0], TEST_NULL, NULL, NULL, NULL, NULL, NULL, inner_done, f) != 0)
        return;
    while (!f->inner_done && now_us() < deadline)
        ev_run(f->loop, EVRUN_ONCE);
}

static void fan_setup(struct fan *f, int port)
{
    struct rpc2_params p = client_params();
    *f = (struct fan){.loop = ev_loop_new(EVFLAG_AUTO)};
    ck_assert_ptr_nonnull(f->loop);
    p.loop = f->loop;
    f->ctx = client_new(&p);
    f->first = bind_ok(f->ctx, "127.0.0.1", port);
    for (unsigned i = 0; i < FAN; i++)
        f->conns[i] = bind_ok(f->ctx, "127.0.0.1", port);
}

static void fan_run(struct fan *f, const int *done)
{
    int64_t deadline = now_us() + 60 * (int64_t)SEC;
    while (!*done && now_us() < deadline)
        ev_run(f->loop, EVRUN_ONCE);
    ck_assert_msg(*done, "the calls were not all answered");
}

static void fan_dispose(struct fan *f)
{
    rpc2_unbind(f->first);
    for (unsigned i = 0; i < FAN; i++)
        rpc2_unbind(f->conns[i]);
    rpc2_ctx_free(f->ctx);
    ev_loop_destroy(f->loop);
}

START_TEST(test_callback_calls_leave_together)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct fan f;

    fan_setup(&f, port);
    ck_assert_int_eq(rpc2_call_async(f.first, TEST_NULL, NULL, NULL, NULL, NULL, NULL, fan_out, &f),
                     0);
    fan_run(&f, &f.all_done);
    ck_assert_int_eq(f.status, 0);
    ck_assert_uint_eq(f.started, FAN);
    /* Sent one by one they would have taken FAN sends before the first
     * answer came back; together, one (and a retransmission's, on a slow
     * machine). */
    ck_assert_msg(f.batches_at_reply - f.batches_before < FAN, "%llu sends for %d calls",
                  (unsigned long long)(f.batches_at_reply - f.batches_before), FAN);
    fan_dispose(&f);
    server_stop(srv);
}
END_TEST

START_TEST(test_callback_waiting_on_its_own_call)
{
    pid_t srv;
    int port = server_start("127.0.0.1:0", &srv);
    struct fan f;

    fan_setup(&f, port);
    ck_assert_int_eq(
        rpc2_call_async(f.first, TEST_NULL, NULL, NULL, NULL, NULL, NULL, wait_inside, &f), 0);
    fan_run(&f, &f.inner_done);
    ck_assert_int_eq(f.status, 0);
    ck_assert_int_eq(f.inner_status, 0);
    fan_dispose(&f);
    server_stop(srv);
}
END_TEST

/* ---- the suite ------------------------------------------------------------ */

static TCase *tcase_new(const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    tcase_add_checked_fixture(tc, procs_children_reset, procs_children_stop_leftovers);
    return tc;
}

static Suite *loopback_suite(void)
{
    Suite *s = suite_create("loopback");

    TCase *load = tcase_new("load", 120);
    tcase_add_test(load, test_many_calls_one_conn);
    tcase_add_test(load, test_concurrent_clients);
    suite_add_tcase(s, load);

    TCase *failures = tcase_new("failures", 60);
    tcase_add_test(failures, test_slow_handler_busy);
    tcase_add_test(failures, test_killed_server_is_dead);
    tcase_add_test(failures, test_silent_server_is_dead);
    tcase_add_test(failures, test_restarted_server_unknown_conn);
    tcase_add_test(failures, test_unbind_frees_state);
    tcase_add_test(failures, test_lossy_path_at_most_once);
    suite_add_tcase(s, failures);

    TCase *errors = tcase_new("errors", 60);
    tcase_add_test(errors, test_huge_length_refused);
    tcase_add_test(errors, test_unknown_subsystem);
    tcase_add_test(errors, test_unknown_proc_and_app_status);
    tcase_add_test(errors, test_call_timeout_then_usable);
    tcase_add_test(errors, test_bind_to_nobody);
    tcase_add_test(errors, test_ipv6);
    tcase_add_test(errors, test_async_cancel);
    suite_add_tcase(s, errors);

    TCase *batching = tcase_new("batching", 120);
    tcase_add_test(batching, test_callback_calls_leave_together);
    tcase_add_test(batching, test_callback_waiting_on_its_own_call);
    suite_add_tcase(s, batching);

    TCase *idle = tcase_new("idle", 60);
    tcase_add_test(idle, test_server_drops_vanished_client);
    suite_add_tcase(s, idle);
    return s;
}

int main(void)
{
    return check_run(loopback_suite());
}
