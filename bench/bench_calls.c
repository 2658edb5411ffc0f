/*
 * bench_calls.c - the rpc2 side of the call benchmarks: null calls
 * (TEST_NULL) against tests/testsrv, measured the way udp_baseline measures
 * plain UDP, so bench/run.sh can print the two side by side and their ratio.
 *
 *   bench_calls latency [--host H] --port P [--n N]
 *   bench_calls load [--host H] --port P [--clients C] [--seconds T] [--warmup T]
 *
 * latency makes N blocking calls one after another on one connection and
 * prints "median_us=.. p99_us=.."; load keeps one call outstanding on each of
 * C connections for T seconds and prints "calls_per_s=..".
 *
 * The C clients of load are C connections driven by async calls from one
 * context and one thread, not C threads with a context each: the machine
 * has two cores, the server takes one, and C client threads sharing the
 * other would mostly measure the client's context switches. One loop with C
 * calls in flight is also what udp_baseline's load client does on its one
 * socket, so both servers see the same traffic.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <rpc2/rpc2.h>

#include "testproto.h"

#define MAX_CLIENTS 4096

struct opts {
    const char *host, *port;
    long n;
    int clients;
    double seconds, warmup;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "bench_calls: %s: %s\n", what, rpc2_strerror(rc));
    return 1;
}

static int bind_conn(rpc2_ctx *ctx, const struct opts *o, rpc2_conn **conn)
{
    struct rpc2_bind_params bp = {
        .host = o->host,
        .port = o->port,
        .subsystem = TEST_SUBSYS,
        .security = RPC2_SEC_NONE,
        .identity = "bench_calls",
    };
    return rpc2_bind(ctx, &bp, conn);
}

static uint64_t retransmissions(const rpc2_ctx *ctx)
{
    struct rpc2_ctx_stats st;
    rpc2_ctx_stats(ctx, &st);
    return st.retransmissions;
}

/* ---- latency ------------------------------------------------------------ */

static int null_call(rpc2_conn *conn)
{
    return rpc2_call(conn, TEST_NULL, NULL, NULL, NULL, NULL, NULL);
}

/* Times n calls into lat[], after n / 10 untimed ones to warm caches and clocks. */
static int time_calls(rpc2_conn *conn, uint64_t *lat, long n)
{
    for (long i = 0; i < n / 10; i++) {
        int rc = null_call(conn);
        if (rc != 0)
            return rc;
    }
    for (long i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        int rc = null_call(conn);
        lat[i] = now_ns() - t0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int latency(rpc2_ctx *ctx, const struct opts *o)
{
    rpc2_conn *conn;
    int rc = bind_conn(ctx, o, &conn);
    if (rc != 0)
        return fail("bind", rc);
    uint64_t *lat = calloc((size_t)o->n, sizeof *lat);
    rc = lat ? time_calls(conn, lat, o->n) : RPC2_ENOMEM;
    rpc2_unbind(conn);
    if (rc == 0) {
        qsort(lat, (size_t)o->n, sizeof lat[0], cmp_u64);
        printf("median_us=%.2f p99_us=%.2f n=%ld retrans=%llu\n", (double)lat[o->n / 2] / 1e3,
               (double)lat[o->n * 99 / 100] / 1e3, o->n, (unsigned long long)retransmissions(ctx));
    }
    free(lat);
    return rc == 0 ? 0 : fail("call", rc);
}

/* ---- load --------------------------------------------------------------- */

struct loader {
    rpc2_ctx *ctx;
    uint64_t warm_end, end; /* ns */
    uint64_t completed;
    int outstanding;
    int first_error;
};

struct client {
    struct loader *ld;
    rpc2_conn *conn;
};

static void on_done(int status, void *result, void *arg);

static int start_call(struct client *c)
{
    return rpc2_call_async(c->conn, TEST_NULL, NULL, NULL, NULL, NULL, NULL, on_done, c);
}

/* A call finished: count it and start the client's next one, until the
 * time is up; the last client to stop stops the loop. */
static void on_done(int status, void *result, void *arg)
{
    struct client *c = arg;
    struct loader *ld = c->ld;
    uint64_t now = now_ns();
    (void)result;
    if (status == 0 && now >= ld->warm_end && now < ld->end)
        ld->completed++;
    if (status == 0 && now < ld->end) {
        status = start_call(c);
        if (status == 0)
            return;
    }
    if (status < 0 && ld->first_error == 0)
        ld->first_error = status;
    if (--ld->outstanding == 0)
        rpc2_ctx_stop(ld->ctx);
}

static int bind_all(struct loader *ld, struct client *cl, const struct opts *o)
{
    for (int i = 0; i < o->clients; i++) {
        cl[i].ld = ld;
        int rc = bind_conn(ld->ctx, o, &cl[i].conn);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int run_load(struct loader *ld, struct client *cl, const struct opts *o)
{
    uint64_t t0 = now_ns();
    ld->warm_end = t0 + (uint64_t)(o->warmup * 1e9);
    ld->end = ld->warm_end + (uint64_t)(o->seconds * 1e9);
    for (int i = 0; i < o->clients; i++) {
        int rc = start_call(&cl[i]);
        if (rc != 0)
            return rc; /* load() unbinds, which cancels the calls already started */
        ld->outstanding++;
    }
    rpc2_ctx_run(ld->ctx);
    return ld->first_error;
}

static int load(rpc2_ctx *ctx, const struct opts *o)
{
    struct loader ld = {.ctx = ctx};
    struct client *cl = calloc((size_t)o->clients, sizeof *cl);
    if (!cl)
        return fail("load", RPC2_ENOMEM);
    int rc = bind_all(&ld, cl, o);
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns();
    if (rc == 0)
        rc = run_load(&ld, cl, o);
    double wall = (double)(now_ns() - t0) / 1e9;
    if (rc == 0)
        printf("calls_per_s=%.0f clients=%d calls=%llu retrans=%llu client_cpu_pct=%.0f\n",
               (double)ld.completed / o->seconds, o->clients, (unsigned long long)ld.completed,
               (unsigned long long)retransmissions(ctx), 100.0 * (cpu_seconds() - cpu0) / wall);
    for (int i = 0; i < o->clients; i++)
        rpc2_unbind(cl[i].conn);
    free(cl);
    return rc == 0 ? 0 : fail("load", rc);
}

/* ---- command line ------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_calls latency [--host H] --port P [--n N]\n"
                    "       bench_calls load [--host H] --port P [--clients C] [--seconds T]"
                    " [--warmup T]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"n", required_argument, NULL, 'n'},
        {"clients", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){"127.0.0.1", NULL, 20000, 1, 3.0, 0.5};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = optarg;
            break;
        case 'n':
            o->n = atol(optarg);
            break;
        case 'c':
            o->clients = atoi(optarg);
            break;
        case 't':
            o->seconds = atof(optarg);
            break;
        case 'w':
            o->warmup = atof(optarg);
            break;
        default:
            return -1;
        }
    }
    if (optind != argc || !o->port || o->n < 1 || o->clients < 1 || o->clients > MAX_CLIENTS ||
        o->seconds <= 0 || o->warmup < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (argc < 2 || parse_opts(argc - 1, argv + 1, &o) != 0 ||
        (strcmp(argv[1], "latency") && strcmp(argv[1], "load"))) {
        usage();
        return 2;
    }
    struct rpc2_params p;
    rpc2_ctx *ctx;
    rpc2_params_init(&p);
    int rc = rpc2_ctx_new(&p, &ctx);
    if (rc != 0)
        return fail("context", rc);
    rc = !strcmp(argv[1], "latency") ? latency(ctx, &o) : load(ctx, &o);
    rpc2_ctx_free(ctx);
    return rc;
}
