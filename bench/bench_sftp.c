/*
 * bench_sftp.c - the rpc2 side of the bulk-transfer benchmarks, and the TCP
 * file copy they are measured against: SFTP fetches and stores of a big
 * file against tests/testsrv, a piggybacked small fetch's latency beside a
 * null call's, and a plain TCP copy with 256 KiB buffers, so
 * bench/run_sftp.sh can print them side by side with iperf3.
 *
 *   bench_sftp fetch [--host H] --port P --path REL [--sink devnull|FILE] [--prealloc B] [--n N]
 *   bench_sftp store [--host H] --port P --src FILE --path REL [--n N]
 *   bench_sftp latency [--host H] --port P [--path REL] [--n N]
 *   bench_sftp tcp-serve [--host H] [--port P] --file F
 *   bench_sftp tcp-fetch [--host H] --port P [--sink devnull|FILE] [--prealloc B] [--n N]
 *
 * fetch moves REL (relative to testsrv's --root, the server's end opened by
 * name) to the client's sink: an fd on /dev/null, or FILE by name written
 * in place (not atomic), preallocated to B bytes with fallocate before any
 * timing when --prealloc is given. store moves the client's FILE (by name)
 * to REL on the server, opened there by name: "../../../dev/null" style
 * paths reach /dev/null, a preallocated file under the root is written in
 * place. Each transfer prints one line of key=value figures: bytes,
 * seconds, mb_per_s (10^6 bytes/s), client_cpu_s (getrusage, every thread),
 * and the packet and drop counts of the transfer (see print_xfer).
 *
 * latency makes N pairs of calls on one connection, a TEST_NULL and a
 * TEST_FETCH of REL (a small file: it rides in the reply) into a memory
 * buffer, in alternating order, and prints both medians and their ratio.
 *
 * tcp-serve accepts connections one at a time and sends each the whole of
 * F with read() and write() through one 256 KiB buffer; tcp-fetch connects,
 * reads into one 256 KiB buffer until the server closes and writes what it
 * read to its sink. Both are the plainest copy there is, to put a figure
 * beside rpc2's that a program of the usual shape gets from TCP here.
 */
#define _GNU_SOURCE /* fallocate */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "testproto.h"

#define TCP_BUF (256 * 1024)
/* The data bytes per DATA packet the library picks on loopback
 * (sftp/params.c), to tell how many packets a transfer needed at least. */
#define LOOPBACK_PACKET (63 * 1024)
#define SMALL_MAX 65536 /* room for the latency mode's fetched file */

struct opts {
    const char *host, *port;
    const char *path, *sink, *src, *file;
    long long prealloc;
    long n;
    long packet; /* 0: the size the library picks for the path */
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

/* Datagrams the kernel dropped at the UDP sockets bound to port (the drops
 * column of /proc/net/udp and udp6): on loopback, every lost packet of the
 * socket's receiving side. -1 when unreadable. */
static long long udp_drops(int port)
{
    static const char *const tables[] = {"/proc/net/udp", "/proc/net/udp6"};
    long long sum = -1;
    char line[512];
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        FILE *f = fopen(tables[t], "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            char local[64];
            if (sscanf(line, " %*s %63s", local) != 1)
                continue;
            const char *colon = strrchr(local, ':');
            if (!colon || strtol(colon + 1, NULL, 16) != port)
                continue;
            const char *last = line + strlen(line);
            while (last > line && (last[-1] == ' ' || last[-1] == '\n'))
                last--;
            while (last > line && last[-1] != ' ')
                last--;
            sum = (sum < 0 ? 0 : sum) + atoll(last);
        }
        fclose(f);
    }
    return sum;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "bench_sftp: %s: %s\n", what, rpc2_strerror(rc));
    return 1;
}

static int fail_errno(const char *what)
{
    fprintf(stderr, "bench_sftp: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Opens the sink of a fetch: /dev/null, or FILE, preallocated when asked. */
static int open_sink(const struct opts *o)
{
    int devnull = !strcmp(o->sink, "devnull");
    int fd = open(devnull ? "/dev/null" : o->sink, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail_errno(o->sink), -1;
    if (!devnull && o->prealloc > 0 && fallocate(fd, 0, 0, (off_t)o->prealloc) != 0) {
        fail_errno("fallocate");
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- rpc2 ---------------------------------------------------------------- */

static int rpc2_open(const struct opts *o, rpc2_ctx **ctx, rpc2_conn **conn)
{
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    rpc2_params_init(&p);
    rpc2_sftp_params_init(&sp);
    sp.packet_size = (uint32_t)o->packet; /* the client picks a transfer's packet size */
    int rc = rpc2_ctx_new(&p, ctx);
    if (rc != 0)
        return fail("context", rc);
    rc = rpc2_sftp_activate(*ctx, &sp);
    if (rc != 0) {
        rpc2_ctx_free(*ctx);
        return fail("sftp", rc);
    }
    struct rpc2_bind_params bp = {
        .host = o->host,
        .port = o->port,
        .subsystem = TEST_SUBSYS,
        .security = RPC2_SEC_NONE,
        .se_type = RPC2_SE_SFTP,
        .identity = "bench_sftp",
    };
    rc = rpc2_bind(*ctx, &bp, conn);
    if (rc != 0) {
        rpc2_ctx_free(*ctx);
        return fail("bind", rc);
    }
    return 0;
}

static struct rpc2_se_desc desc_new(enum rpc2_se_direction dir)
{
    struct rpc2_se_desc d;
    memset(&d, 0, sizeof d);
    d.type = RPC2_SE_SFTP;
    d.direction = dir;
    d.seek_offset = 0;
    d.quota = -1;
    return d;
}

/* One transfer; the server's end is REL opened by name, not atomic. */
static int call_xfer(rpc2_conn *conn, uint32_t proc, const char *rel, struct rpc2_se_desc *d,
                     quad_t *moved)
{
    xfer_args a = {.path = (char *)rel, .offset = 0, .quota = -1, .kind = TEST_KIND_NAME};
    struct rpc2_call_opts opts = {.se = d};
    *moved = -1;
    return rpc2_call(conn, proc, (xdrproc_t)xdr_xfer_args, &a, (xdrproc_t)xdr_quad_t, moved, &opts);
}

/* Drop counts of both ends' sockets, before or after a transfer. */
struct drops {
    long long cli, srv;
};

static struct drops drops_now(rpc2_ctx *ctx, const struct opts *o)
{
    return (struct drops){udp_drops(rpc2_ctx_port(ctx)), udp_drops(atoi(o->port))};
}

static long long drops_delta(long long before, long long after)
{
    return before < 0 || after < 0 ? -1 : after - before;
}

/*
 * The line of one transfer. Packet counts are this end's (the descriptor's
 * stats), and cli_drops and srv_drops what the kernel dropped at each end's
 * socket meanwhile (DATA at the sink's end, ACKs at the source's). A
 * store's client is the sender: retrans is its own count. A fetch's client
 * is the sink, and on loopback a DATA packet the server sent was either
 * received or dropped at the client's socket, so the server's
 * retransmissions are data_rx + cli_drops - packets, where packets is the
 * ceil(bytes / data bytes per packet) the file needed; dups of them arrived
 * twice.
 */
static void print_xfer(const char *op, const struct rpc2_se_desc *d, uint64_t ns, double cpu,
                       struct drops d0, struct drops d1, uint64_t packet)
{
    uint64_t bytes = d->bytes_transferred;
    uint64_t need = (bytes + packet - 1) / packet;
    long long cli_drops = drops_delta(d0.cli, d1.cli), srv_drops = drops_delta(d0.srv, d1.srv);
    long long retrans = (long long)d->stats.retransmissions;
    if (d->direction == RPC2_SE_FETCH)
        retrans =
            (long long)d->stats.data_received + (cli_drops > 0 ? cli_drops : 0) - (long long)need;
    double s = (double)ns / 1e9;
    printf("op=%s bytes=%llu seconds=%.4f mb_per_s=%.1f client_cpu_s=%.3f packets=%llu "
           "data_sent=%llu data_rx=%llu retrans=%lld dups=%llu timeouts=%llu acks_sent=%llu "
           "acks_rx=%llu cli_drops=%lld srv_drops=%lld\n",
           op, (unsigned long long)bytes, s, (double)bytes / s / 1e6, cpu, (unsigned long long)need,
           (unsigned long long)d->stats.data_sent, (unsigned long long)d->stats.data_received,
           retrans, (unsigned long long)d->stats.duplicates, (unsigned long long)d->stats.timeouts,
           (unsigned long long)d->stats.acks_sent, (unsigned long long)d->stats.acks_received,
           cli_drops, srv_drops);
    fflush(stdout);
}

/* Runs one timed transfer and prints its line. */
static int timed_xfer(rpc2_ctx *ctx, rpc2_conn *conn, const struct opts *o, uint32_t proc,
                      const char *op, struct rpc2_se_desc *d)
{
    quad_t moved;
    struct drops d0 = drops_now(ctx, o);
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns();
    int rc = call_xfer(conn, proc, o->path, d, &moved);
    uint64_t ns = now_ns() - t0;
    double cpu = cpu_seconds() - cpu0;
    struct drops d1 = drops_now(ctx, o);
    if (rc != 0)
        return fail(op, rc);
    if (d->local_status != RPC2_SE_SUCCESS || moved != (quad_t)d->bytes_transferred) {
        fprintf(stderr, "bench_sftp: %s: moved %lld bytes, the server %lld\n", op,
                (long long)d->bytes_transferred, (long long)moved);
        return 1;
    }
    print_xfer(op, d, ns, cpu, d0, d1, o->packet ? (uint64_t)o->packet : LOOPBACK_PACKET);
    return 0;
}

static int fetch(const struct opts *o)
{
    rpc2_ctx *ctx;
    rpc2_conn *conn;
    int fd = open_sink(o);
    if (fd < 0)
        return 1;
    if (rpc2_open(o, &ctx, &conn) != 0) {
        close(fd);
        return 1;
    }
    int devnull = !strcmp(o->sink, "devnull");
    const char *op = devnull ? "fetch-devnull" : "fetch-file";
    int rc = 0;
    for (long i = 0; rc == 0 && i < o->n; i++) {
        struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH);
        if (devnull) {
            d.file_kind = RPC2_SE_FILE_FD;
            d.file.fd.fd = fd;
        } else {
            d.file_kind = RPC2_SE_FILE_NAME; /* written in place: no truncation, no rename */
            d.file.name.path = o->sink;
            d.file.name.mode = 0644;
        }
        rc = timed_xfer(ctx, conn, o, TEST_FETCH, op, &d);
    }
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    close(fd);
    return rc;
}

static int store(const struct opts *o)
{
    rpc2_ctx *ctx;
    rpc2_conn *conn;
    if (rpc2_open(o, &ctx, &conn) != 0)
        return 1;
    const char *op = strstr(o->path, "dev/null") ? "store-devnull" : "store-file";
    int rc = 0;
    for (long i = 0; rc == 0 && i < o->n; i++) {
        struct rpc2_se_desc d = desc_new(RPC2_SE_STORE);
        d.file_kind = RPC2_SE_FILE_NAME;
        d.file.name.path = o->src;
        rc = timed_xfer(ctx, conn, o, TEST_STORE, op, &d);
    }
    rpc2_unbind(conn);
    rpc2_ctx_free(ctx);
    return rc;
}

/* ---- latency: a piggybacked fetch beside a null call --------------------- */

/* Fetches rel into buf; *streamed counts the fetches that were not
 * piggybacked (that moved SFTP packets: the descriptor's stats say so, as
 * the client context's stats count only the piggybacking it did itself). */
static int small_fetch(rpc2_conn *conn, const char *rel, uint8_t *buf, long *streamed)
{
    struct rpc2_se_desc d = desc_new(RPC2_SE_FETCH);
    d.file_kind = RPC2_SE_FILE_VM;
    d.file.vm.buf = buf;
    d.file.vm.max = SMALL_MAX;
    quad_t moved;
    int rc = call_xfer(conn, TEST_FETCH, rel, &d, &moved);
    if (rc == 0 && (d.local_status != RPC2_SE_SUCCESS || moved != (quad_t)d.file.vm.len))
        rc = RPC2_EIO;
    if (d.stats.data_received || d.stats.acks_sent)
        (*streamed)++;
    return rc;
}

static int null_call(rpc2_conn *conn)
{
    return rpc2_call(conn, TEST_NULL, NULL, NULL, NULL, NULL, NULL);
}

/* One pair, the null call first when null_first; times go to *tn and *tf. */
static int pair(rpc2_conn *conn, const char *rel, uint8_t *buf, int null_first, uint64_t *tn,
                uint64_t *tf, long *streamed)
{
    for (int k = 0; k < 2; k++) {
        int is_null = (k == 0) == null_first;
        uint64_t t0 = now_ns();
        int rc = is_null ? null_call(conn) : small_fetch(conn, rel, buf, streamed);
        uint64_t t = now_ns() - t0;
        if (rc != 0)
            return rc;
        *(is_null ? tn : tf) = t;
    }
    return 0;
}

static int time_pairs(rpc2_conn *conn, const struct opts *o, uint8_t *buf, uint64_t *tn,
                      uint64_t *tf, long *streamed)
{
    uint64_t scratch_n, scratch_f;
    long warm_streamed = 0;
    for (long i = 0; i < o->n / 10; i++) { /* warm caches, branch predictors, CPU clocks */
        int rc = pair(conn, o->path, buf, (int)(i & 1), &scratch_n, &scratch_f, &warm_streamed);
        if (rc != 0)
            return rc;
    }
    for (long i = 0; i < o->n; i++) {
        int rc = pair(conn, o->path, buf, (int)(i & 1), &tn[i], &tf[i], streamed);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int latency(const struct opts *o)
{
    rpc2_ctx *ctx;
    rpc2_conn *conn;
    if (rpc2_open(o, &ctx, &conn) != 0)
        return 1;
    uint64_t *tn = calloc((size_t)o->n, sizeof *tn), *tf = calloc((size_t)o->n, sizeof *tf);
    uint8_t *buf = malloc(SMALL_MAX);
    long streamed = 0;
    int rc = tn && tf && buf ? time_pairs(conn, o, buf, tn, tf, &streamed) : RPC2_ENOMEM;
    rpc2_unbind(conn);
    if (rc == 0) {
        size_t n = (size_t)o->n;
        qsort(tn, n, sizeof tn[0], cmp_u64);
        qsort(tf, n, sizeof tf[0], cmp_u64);
        double mn = (double)tn[n / 2] / 1e3, mf = (double)tf[n / 2] / 1e3;
        printf("null_median_us=%.2f fetch_median_us=%.2f ratio=%.3f null_p99_us=%.2f "
               "fetch_p99_us=%.2f n=%ld piggybacked=%ld\n",
               mn, mf, mf / mn, (double)tn[n * 99 / 100] / 1e3, (double)tf[n * 99 / 100] / 1e3,
               o->n, o->n - streamed);
    }
    free(tn);
    free(tf);
    free(buf);
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : fail("latency", rc);
}

/* ---- TCP: the plain copy ------------------------------------------------- */

static int make_addr(const char *host, const char *port, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)atoi(port ? port : "0"));
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        fprintf(stderr, "bench_sftp: %s is not an IPv4 address\n", host);
        return -1;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends the whole file to one connection. */
static void serve_one(int conn, const char *file, uint8_t *buf)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_errno(file);
        return;
    }
    ssize_t r;
    while ((r = read(fd, buf, TCP_BUF)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0 && write_all(conn, buf, (size_t)r) != 0)
            break; /* the client went away */
    close(fd);
}

static int tcp_serve(const struct opts *o)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int one = 1;
    if (make_addr(o->host, o->port, &sin) != 0)
        return 1;
    /* Runs until killed: the buffer and the socket go with the process. */
    uint8_t *buf = malloc(TCP_BUF);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!buf || ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(ls, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(ls, 4) != 0 ||
        getsockname(ls, (struct sockaddr *)&sin, &len) != 0)
        return fail_errno("tcp-serve");
    signal(SIGPIPE, SIG_IGN);
    printf("bench_sftp tcp listening on %d\n", ntohs(sin.sin_port));
    fflush(stdout);
    for (;;) { /* until SIGTERM */
        int c = accept(ls, NULL, NULL);
        if (c < 0 && errno == EINTR)
            continue;
        if (c < 0)
            return fail_errno("accept");
        serve_one(c, o->file, buf);
        close(c);
    }
}

/* One copy: connect, read until the server closes, write to the sink. */
static int tcp_copy_one(const struct sockaddr_in *sin, int sink, int positional, uint8_t *buf,
                        const char *op)
{
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns(), bytes = 0;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail_errno("socket");
    if (connect(s, (const struct sockaddr *)sin, sizeof *sin) != 0) {
        fail_errno("connect");
        close(s);
        return 1;
    }
    ssize_t r;
    while ((r = read(s, buf, TCP_BUF)) > 0 || (r < 0 && errno == EINTR)) {
        if (r < 0)
            continue;
        /* pwrite into the file, as rpc2's sink does; /dev/null takes write. */
        ssize_t w =
            positional ? pwrite(sink, buf, (size_t)r, (off_t)bytes) : write(sink, buf, (size_t)r);
        if (w != r) {
            close(s);
            return fail_errno("write");
        }
        bytes += (uint64_t)r;
    }
    close(s);
    if (r < 0)
        return fail_errno("read");
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("op=%s bytes=%llu seconds=%.4f mb_per_s=%.1f client_cpu_s=%.3f\n", op,
           (unsigned long long)bytes, secs, (double)bytes / secs / 1e6, cpu_seconds() - cpu0);
    fflush(stdout);
    return 0;
}

static int tcp_fetch(const struct opts *o)
{
    struct sockaddr_in sin;
    if (make_addr(o->host, o->port, &sin) != 0)
        return 1;
    int fd = open_sink(o);
    if (fd < 0)
        return 1;
    uint8_t *buf = malloc(TCP_BUF);
    if (!buf) {
        close(fd);
        return fail_errno("malloc");
    }
    int devnull = !strcmp(o->sink, "devnull");
    int rc = 0;
    for (long i = 0; rc == 0 && i < o->n; i++)
        rc = tcp_copy_one(&sin, fd, !devnull, buf, devnull ? "tcp-devnull" : "tcp-file");
    close(fd);
    free(buf);
    return rc;
}

/* ---- command line -------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_sftp fetch [--host H] --port P --path REL [--sink devnull|FILE]"
                    " [--prealloc BYTES] [--n N] [--packet BYTES]\n"
                    "       bench_sftp store [--host H] --port P --src FILE --path REL [--n N]"
                    " [--packet BYTES]\n"
                    "       bench_sftp latency [--host H] --port P [--path REL] [--n N]\n"
                    "       bench_sftp tcp-serve [--host H] [--port P] --file F\n"
                    "       bench_sftp tcp-fetch [--host H] --port P [--sink devnull|FILE]"
                    " [--prealloc BYTES] [--n N]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 'r'},
        {"sink", required_argument, NULL, 'k'},
        {"src", required_argument, NULL, 's'},
        {"file", required_argument, NULL, 'f'},
        {"n", required_argument, NULL, 'n'},
        {"prealloc", required_argument, NULL, 'a'},
        {"packet", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.host = "127.0.0.1", .sink = "devnull", .n = 0}; /* 0: the mode's default */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = optarg;
            break;
        case 'r':
            o->path = optarg;
            break;
        case 'k':
            o->sink = optarg;
            break;
        case 's':
            o->src = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'n':
            o->n = atol(optarg);
            break;
        case 'a':
            o->prealloc = atoll(optarg);
            break;
        case 'P': /* rpc2_sftp_activate refuses a size out of its range */
            o->packet = atol(optarg);
            break;
        default:
            return -1;
        }
    }
    return optind == argc && o->n >= 0 && o->prealloc >= 0 && o->packet >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (argc < 2 || parse_opts(argc - 1, argv + 1, &o) != 0) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    if (o.n == 0)
        o.n = !strcmp(mode, "latency") ? 20000 : 1;
    if (!strcmp(mode, "tcp-serve") && o.file)
        return tcp_serve(&o);
    if (!o.port) {
        usage();
        return 2;
    }
    if (!strcmp(mode, "fetch") && o.path)
        return fetch(&o);
    if (!strcmp(mode, "store") && o.path && o.src)
        return store(&o);
    if (!strcmp(mode, "latency")) {
        if (!o.path)
            o.path = "1k";
        return latency(&o);
    }
    if (!strcmp(mode, "tcp-fetch"))
        return tcp_fetch(&o);
    usage();
    return 2;
}
