/*
 * test_retry.c - the retry API (include/rpc2/retry.h) against a real
 * tests/testsrv on loopback: which errors are retried, the backoff
 * sequence, the deadline, one callback per retry, and a call (with a file
 * as its side effect) that survives its server being killed and started
 * again on the same port.
 *
 * Timing decides nothing but the deadline's upper bound, which is 3x what
 * was configured.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <rpc2/rpc2.h>
#include <rpc2/retry.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "procs.h"
#include "testproto.h"
#include "check_run.h"

#define SERVER_PREFIX "testsrv listening on"
#define MS 1000u
#define SEC (1000u * MS)

static char root[256];

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A testsrv with --root root on listen ("127.0.0.1:0" or a fixed port). */
static int server_start(const char *listen, pid_t *pid)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/tests/testsrv", procs_builddir());
    const char *argv[] = {path, "--listen", listen, "--root", root, "--workers", "2", NULL};
    int port = procs_child_spawn(argv, SERVER_PREFIX, pid);
    ck_assert_msg(port > 0, "testsrv did not start");
    return port;
}

static void setup(void)
{
    procs_children_reset();
    snprintf(root, sizeof root, "/tmp/test_retry.%d.XXXXXX", (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
    char cmd[300];
    procs_children_stop_leftovers();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    (void)!system(cmd);
}

static rpc2_ctx *client_new(void)
{
    struct rpc2_params p;
    rpc2_ctx *ctx = NULL;
    rpc2_params_init(&p);
    p.dead_peer_us = 5 * SEC;
    ck_assert_int_eq(rpc2_ctx_new(&p, &ctx), 0);
    ck_assert_int_eq(rpc2_sftp_activate(ctx, NULL), 0);
    return ctx;
}

static struct rpc2_bind_params bind_params(const char *port)
{
    return (struct rpc2_bind_params){
        .host = "127.0.0.1", .port = port, .subsystem = TEST_SUBSYS, .se_type = RPC2_SE_SFTP};
}

/* A port nothing listens on: bound, read back and closed. */
static int dead_port(void)
{
    pid_t pid;
    int port = server_start("127.0.0.1:0", &pid);
    ck_assert_int_eq(procs_child_stop(pid, SIGKILL), 128 + SIGKILL);
    return port;
}

/* What the callback saw. */
#define SEEN_MAX 64
struct seen {
    unsigned n;
    unsigned attempt[SEEN_MAX];
    int error[SEEN_MAX];
    uint64_t delay[SEEN_MAX];
    /* restart the server (on this port) when this attempt is announced */
    unsigned restart_at;
    const char *listen;
    pid_t *srv;
    unsigned give_up_at; /* return non-zero at this attempt; 0: never */
};

static int on_retry(unsigned attempt, int error, uint64_t delay_us, void *arg)
{
    struct seen *s = arg;
    if (s->n < SEEN_MAX) {
        s->attempt[s->n] = attempt;
        s->error[s->n] = error;
        s->delay[s->n] = delay_us;
    }
    s->n++;
    if (s->restart_at && attempt == s->restart_at)
        server_start(s->listen, s->srv);
    return s->give_up_at && attempt == s->give_up_at;
}

/* ---- which errors ------------------------------------------------------- */

START_TEST(test_retryable_table)
{
    static const struct {
        int error, retried;
    } rows[] = {
        {RPC2_ETIMEDOUT, 1},    {RPC2_EDEAD, 1},
        {RPC2_EUNKNOWNCONN, 1}, {RPC2_ECLOSED, 1},
        {RPC2_ESEFAIL2, 1},     {RPC2_ECONNREFUSED, 1},
        {RPC2_ESTALLED, 1},     {RPC2_ESHUTDOWN, 1},
        {RPC2_EBUSY, 1},
        {RPC2_OK, 0},           {42, 0},
        {RPC2_EADDR, 0},        {RPC2_ECANCELED, 0},
        {RPC2_ELIMIT, 0},       {RPC2_EAUTH, 0},
        {RPC2_ESECURITY, 0},    {RPC2_ENOENT, 0},
        {RPC2_EACCES, 0},       {RPC2_ENOSPC, 0},
        {RPC2_EEXIST, 0},       {RPC2_ECHANGED, 0},
        {RPC2_EINTEGRITY, 0},   {RPC2_ESEFAIL1, 0},
        {RPC2_EINVAL, 0},       {RPC2_ENOPROC, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ck_assert_msg(rpc2_retry_retryable(rows[i].error) == rows[i].retried, "%s: %d",
                      rpc2_errname(rows[i].error), rows[i].retried);
}
END_TEST

START_TEST(test_backoff_sequence)
{
    struct rpc2_retry_policy p = RPC2_RETRY_POLICY_INIT;
    static const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};

    p.interval_us = 100 * MS;
    p.backoff = 2.0;
    p.max_interval_us = SEC;
    for (unsigned n = 1; n <= 7; n++)
        ck_assert_uint_eq(rpc2_retry_delay(&p, n), want[n - 1] * MS);
    p.backoff = 1.0; /* fixed */
    ck_assert_uint_eq(rpc2_retry_delay(&p, 5), 100 * MS);
    p.backoff = 10.0;
    p.max_interval_us = 0; /* no cap */
    ck_assert_uint_eq(rpc2_retry_delay(&p, 4), 100 * SEC);
    ck_assert_int_eq(rpc2_retry_policy_check(&p), 0);
    p.backoff = 0.5;
    ck_assert_int_eq(rpc2_retry_policy_check(&p), RPC2_EINVAL);
    p.backoff = NAN;
    ck_assert_int_eq(rpc2_retry_policy_check(&p), RPC2_EINVAL);
    rpc2_retry_policy_init(&p);
    ck_assert_uint_eq(p.retries, 0);
    ck_assert_uint_eq(rpc2_retry_delay(&p, 1), SEC);
}
END_TEST

/* ---- the loop against a server ------------------------------------------ */

static int call_add(rpc2_ctx *ctx, const struct rpc2_bind_params *bp, rpc2_conn **conn,
                    const struct rpc2_retry_policy *p, int *sum)
{
    add_args a = {.a = 20, .b = 22};
    return rpc2_retry_call(ctx, bp, conn, TEST_ADD, (xdrproc_t)xdr_add_args, &a, (xdrproc_t)xdr_int,
                           sum, NULL, p);
}

/* The server killed under a bound connection, started again on the same
 * port while the client waits: the call is made on a fresh connection, and
 * each retry was told once, with its number, error and delay. */
START_TEST(test_server_restarted)
{
    pid_t srv;
    char port[16], listen[32];
    snprintf(port, sizeof port, "%d", server_start("127.0.0.1:0", &srv));
    snprintf(listen, sizeof listen, "127.0.0.1:%s", port);
    rpc2_ctx *ctx = client_new();
    struct rpc2_bind_params bp = bind_params(port);
    rpc2_conn *conn = NULL;
    struct seen seen = {.restart_at = 3, .listen = listen, .srv = &srv};
    struct rpc2_retry_policy p = RPC2_RETRY_POLICY_INIT;
    int sum = 0;

    p.retries = 5;
    p.interval_us = 50 * MS;
    p.backoff = 2.0;
    p.on_retry = on_retry;
    p.arg = &seen;
    ck_assert_int_eq(call_add(ctx, &bp, &conn, &p, &sum), 0); /* binds */
    ck_assert_int_eq(sum, 42);
    ck_assert_uint_eq(seen.n, 0);

    ck_assert_int_eq(procs_child_stop(srv, SIGKILL), 128 + SIGKILL);
    sum = 0;
    ck_assert_int_eq(call_add(ctx, &bp, &conn, &p, &sum), 0);
    ck_assert_int_eq(sum, 42);
    /* attempt 1 on the old connection, 2 finds nobody, 3 the new server */
    ck_assert_uint_eq(seen.n, 2);
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_uint_eq(seen.attempt[i], i + 2);
        ck_assert_msg(rpc2_retry_retryable(seen.error[i]), "%s", rpc2_errname(seen.error[i]));
        ck_assert_uint_eq(seen.delay[i], rpc2_retry_delay(&p, i + 1));
    }
    ck_assert_ptr_nonnull(conn);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    ck_assert_int_eq(procs_child_stop(srv, SIGTERM), 0);
}
END_TEST

/* A client of a port nobody listens on, with a policy that reports to seen. */
struct nobody {
    char port[16];
    rpc2_ctx *ctx;
    struct rpc2_bind_params bp;
    rpc2_conn *conn;
    struct seen seen;
    struct rpc2_retry_policy p;
};

static void nobody_init(struct nobody *n)
{
    memset(n, 0, sizeof *n);
    snprintf(n->port, sizeof n->port, "%d", dead_port());
    n->ctx = client_new();
    n->bp = bind_params(n->port);
    rpc2_retry_policy_init(&n->p);
    n->p.on_retry = on_retry;
    n->p.arg = &n->seen;
}

/* Nobody there: retries until the next wait would pass the deadline, and
 * returns the last error well within 3x the deadline. */
START_TEST(test_deadline)
{
    struct nobody n;
    int sum = 0;

    nobody_init(&n);
    n.p.retries = 1000;
    n.p.interval_us = 50 * MS;
    n.p.backoff = 1.5;
    n.p.max_interval_us = 200 * MS;
    n.p.deadline_us = 1 * SEC;
    uint64_t t0 = now_us();
    int rc = call_add(n.ctx, &n.bp, &n.conn, &n.p, &sum);
    uint64_t took = now_us() - t0;

    ck_assert_msg(rc == RPC2_ECONNREFUSED, "got %s", rpc2_errname(rc));
    ck_assert_msg(took < 3 * n.p.deadline_us, "took %llu us", (unsigned long long)took);
    ck_assert_uint_gt(n.seen.n, 2);
    ck_assert_uint_lt(n.seen.n, 1000);
    uint64_t waited = 0;
    for (unsigned i = 0; i < n.seen.n && i < SEEN_MAX; i++)
        waited += n.seen.delay[i];
    ck_assert_uint_lt(waited, n.p.deadline_us); /* no wait was begun that ended past it */
    ck_assert_ptr_null(n.conn);
    rpc2_ctx_free(n.ctx);
}
END_TEST

/* The retries are spent: retries + 1 attempts, then the last error. */
START_TEST(test_retries_spent_and_give_up)
{
    struct nobody n;
    int sum = 0;

    nobody_init(&n);
    n.p.retries = 3;
    n.p.interval_us = 10 * MS;
    ck_assert_int_eq(call_add(n.ctx, &n.bp, &n.conn, &n.p, &sum), RPC2_ECONNREFUSED);
    ck_assert_uint_eq(n.seen.n, 3);
    ck_assert_uint_eq(n.seen.attempt[2], 4);

    n.seen = (struct seen){.give_up_at = 2};
    ck_assert_int_eq(call_add(n.ctx, &n.bp, &n.conn, &n.p, &sum), RPC2_ECONNREFUSED);
    ck_assert_uint_eq(n.seen.n, 1); /* the callback said stop */
    rpc2_ctx_free(n.ctx);
}
END_TEST

/* What a retry cannot cure runs once: an application status, a missing
 * file. */
START_TEST(test_final_errors_not_retried)
{
    pid_t srv;
    char port[16];
    snprintf(port, sizeof port, "%d", server_start("127.0.0.1:0", &srv));
    rpc2_ctx *ctx = client_new();
    struct rpc2_bind_params bp = bind_params(port);
    rpc2_conn *conn = NULL;
    struct seen seen = {0};
    struct rpc2_retry_policy p = RPC2_RETRY_POLICY_INIT;

    p.retries = 5;
    p.interval_us = 10 * MS;
    p.on_retry = on_retry;
    p.arg = &seen;
    ck_assert_int_eq(rpc2_retry_call(ctx, &bp, &conn, TEST_FAIL, NULL, NULL, NULL, NULL, NULL, &p),
                     42);

    char sink[300];
    snprintf(sink, sizeof sink, "%s/missing.copy", root);
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    d.file_kind = RPC2_SE_FILE_NAME;
    d.file.name.path = sink;
    d.file.name.mode = 0644;
    d.file.name.atomic = 1;
    xfer_args a = {.path = "missing", .quota = -1, .kind = TEST_KIND_NAME};
    int64_t moved = 0;
    struct rpc2_call_opts o = {.se = &d};
    int rc = rpc2_retry_call(ctx, &bp, &conn, TEST_FETCH, (xdrproc_t)xdr_xfer_args, &a,
                             (xdrproc_t)xdr_hyper, &moved, &o, &p);
    ck_assert_msg(rc != 0 && !rpc2_retry_retryable(rc), "got %s", rpc2_errname(rc));
    ck_assert_uint_eq(seen.n, 0);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    ck_assert_int_eq(procs_child_stop(srv, SIGTERM), 0);
}
END_TEST

/* The transfer's RETRY events: attempt and the error before it. */
struct retries_heard {
    unsigned n, attempt;
    int error;
};

static int hear_retry(const struct rpc2_event *ev, void *arg)
{
    struct retries_heard *h = arg;

    if (ev->type == RPC2_EVENT_RETRY) {
        h->n++;
        h->attempt = ev->attempt;
        h->error = ev->result;
    }
    return RPC2_EVENT_CONTINUE;
}

/* A fetch into a descriptor whose server died: rewound and made again on
 * the restarted server, the file holds the bytes once; its event callback
 * heard the retry. */
START_TEST(test_fetch_into_fd_after_restart)
{
    pid_t srv;
    char port[16], listen[32], path[300];
    size_t size = 3 * 1000 * 1000 + 7;
    unsigned char *data = malloc(size);

    for (size_t i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 131 + i / 4099);
    snprintf(path, sizeof path, "%s/src", root);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    fclose(f);
    snprintf(port, sizeof port, "%d", server_start("127.0.0.1:0", &srv));
    snprintf(listen, sizeof listen, "127.0.0.1:%s", port);
    ck_assert_int_eq(procs_child_stop(srv, SIGKILL), 128 + SIGKILL);

    rpc2_ctx *ctx = client_new();
    struct rpc2_bind_params bp = bind_params(port);
    rpc2_conn *conn = NULL;
    struct seen seen = {.restart_at = 2, .listen = listen, .srv = &srv};
    struct rpc2_retry_policy p = RPC2_RETRY_POLICY_INIT;
    snprintf(path, sizeof path, "%s/copy", root);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "head", 4), 4); /* the fetch goes after it, as cat's would */
    struct rpc2_se_desc d = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    d.file_kind = RPC2_SE_FILE_FD;
    d.file.fd.fd = fd;
    xfer_args a = {.path = "src", .quota = -1, .kind = TEST_KIND_NAME};
    int64_t moved = 0;
    struct rpc2_call_opts o = {.se = &d};
    struct retries_heard heard = {0};
    d.event = hear_retry;
    d.event_arg = &heard;

    p.retries = 3;
    p.interval_us = 20 * MS;
    p.on_retry = on_retry;
    p.arg = &seen;
    ck_assert_int_eq(rpc2_retry_call(ctx, &bp, &conn, TEST_FETCH, (xdrproc_t)xdr_xfer_args, &a,
                                     (xdrproc_t)xdr_hyper, &moved, &o, &p),
                     0);
    ck_assert_uint_eq(seen.n, 1);
    ck_assert_uint_eq(heard.n, 1);
    ck_assert_uint_eq(heard.attempt, 2);
    ck_assert_int_eq(heard.error, seen.error[0]);
    ck_assert_uint_eq(d.bytes_transferred, size);
    ck_assert_int_eq(d.local_status, RPC2_SE_SUCCESS);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)size + 4);
    unsigned char *back = malloc(size);
    ck_assert_int_eq(pread(fd, back, size, 4), (ssize_t)size);
    ck_assert_int_eq(memcmp(back, data, size), 0);
    free(back);
    free(data);
    close(fd);
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    ck_assert_int_eq(procs_child_stop(srv, SIGTERM), 0);
}
END_TEST

static Suite *retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *pure = tcase_create("policy");
    tcase_add_test(pure, test_retryable_table);
    tcase_add_test(pure, test_backoff_sequence);
    suite_add_tcase(s, pure);

    TCase *live = tcase_create("loopback");
    tcase_set_timeout(live, 60);
    tcase_add_checked_fixture(live, setup, teardown);
    tcase_add_test(live, test_server_restarted);
    tcase_add_test(live, test_deadline);
    tcase_add_test(live, test_retries_spent_and_give_up);
    tcase_add_test(live, test_final_errors_not_retried);
    tcase_add_test(live, test_fetch_into_fd_after_restart);
    suite_add_tcase(s, live);
    return s;
}

int main(void)
{
    return check_run(retry_suite());
}
