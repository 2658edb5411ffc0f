/*
 * udp_baseline.c - the yardstick rpc2's benchmarks are measured against:
 * what plain UDP on this machine does with the same datagram sizes and the
 * same traffic pattern, with no protocol at all. Without it an rpc2 figure
 * says nothing, since loopback speed varies from machine to machine and
 * from run to run.
 *
 *   udp_baseline echo-server [--host H] [--port P]
 *   udp_baseline pingpong [--host H] --port P [--n N] [--size S]
 *   udp_baseline load [--host H] --port P [--clients C] [--seconds T] [--warmup T] [--size S]
 *
 * The echo server answers every datagram with itself, in batches through
 * recvmmsg/sendmmsg, until SIGTERM or SIGINT. The clients print one line of
 * key=value figures for bench/run.sh: "median_us=.. p99_us=.." for pingpong,
 * "calls_per_s=.." for load.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg, MSG_WAITFORONE */
#include <arpa/inet.h>
#include <errno.h>
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

#define BATCH 64          /* datagrams per recvmmsg/sendmmsg */
#define BUF_SIZE 65536    /* any UDP datagram fits */
#define SOCKBUF (4 << 20) /* what rpc2's io.c asks for, so both sides start equal */
#define MAX_CLIENTS 4096
#define RESEND_MS 200 /* loopback loses only on overflow; then resend, don't hang */
#define MIN_SIZE 8    /* a load request carries client index and sequence number */

struct opts {
    const char *host;
    int port;
    long n;
    int size;
    int clients;
    double seconds, warmup;
};

/* Set by SIGTERM/SIGINT; the echo server's receive timeout makes it look. */
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

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

/* Sorts v and prints its median and 99th percentile in microseconds. */
static void print_latency(uint64_t *v, long n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_u64);
    printf("median_us=%.2f p99_us=%.2f n=%ld\n", (double)v[n / 2] / 1e3,
           (double)v[n * 99 / 100] / 1e3, n);
}

/* ---- sockets ------------------------------------------------------------ */

static int make_addr(const char *host, int port, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        fprintf(stderr, "udp_baseline: %s is not an IPv4 address\n", host);
        return -1;
    }
    return 0;
}

/* A UDP socket bound (server) or connected (client) to host:port, whose
 * blocking receives give up after timeout_ms so the caller can look up. */
static int open_socket(const char *host, int port, int server, int timeout_ms)
{
    struct sockaddr_in sin;
    if (make_addr(host, port, &sin) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("udp_baseline: socket");
        return -1;
    }
    int size = SOCKBUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = server ? bind(fd, (struct sockaddr *)&sin, sizeof sin)
                    : connect(fd, (struct sockaddr *)&sin, sizeof sin);
    if (rc != 0) {
        perror(server ? "udp_baseline: bind" : "udp_baseline: connect");
        close(fd);
        return -1;
    }
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

/* Receive and send descriptors for a batch, over one block of buffers. */
struct batch {
    uint8_t *bufs;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
};

static int batch_init(struct batch *b)
{
    memset(b, 0, sizeof *b);
    b->bufs = malloc((size_t)BATCH * BUF_SIZE);
    if (!b->bufs)
        return -1;
    for (int i = 0; i < BATCH; i++) {
        b->iov[i].iov_base = b->bufs + (size_t)i * BUF_SIZE;
        b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
        b->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return 0;
}

/* Makes every slot ready to receive; with_from keeps the senders' addresses. */
static void batch_arm_recv(struct batch *b, int with_from)
{
    for (int i = 0; i < BATCH; i++) {
        b->iov[i].iov_len = BUF_SIZE;
        b->msgs[i].msg_hdr.msg_name = with_from ? &b->from[i] : NULL;
        b->msgs[i].msg_hdr.msg_namelen = with_from ? sizeof b->from[i] : 0;
    }
}

/* Sends msgs[0..n). A datagram the kernel refuses is dropped, as UDP would. */
static void send_all(int fd, struct mmsghdr *msgs, int n)
{
    int done = 0;
    while (done < n) {
        int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
        if (r > 0)
            done += r;
        else if (r < 0 && errno == EINTR)
            continue;
        else
            done++;
    }
}

/* ---- echo server -------------------------------------------------------- */

static int echo_server(const struct opts *o)
{
    struct batch b;
    int fd = open_socket(o->host, o->port, 1, 100);
    if (fd < 0 || batch_init(&b) != 0)
        return 1;
    printf("udp_baseline listening on %d\n", local_port(fd));
    fflush(stdout);
    while (!stop_flag) {
        batch_arm_recv(&b, 1);
        /* Blocks for the first datagram only, then takes what is queued:
         * the best batching a loop can get without adding delay. */
        int n = recvmmsg(fd, b.msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue; /* the timeout, or a signal: look at stop_flag */
        for (int i = 0; i < n; i++)
            b.iov[i].iov_len = b.msgs[i].msg_len;
        send_all(fd, b.msgs, n);
    }
    free(b.bufs);
    close(fd);
    return 0;
}

/* ---- ping-pong ---------------------------------------------------------- */

/* One round trip of a datagram carrying seq; a lost one is sent again. */
static int ping(int fd, uint8_t *buf, int size, uint32_t seq)
{
    uint8_t in[BUF_SIZE];
    memcpy(buf, &seq, sizeof seq);
    for (;;) {
        if (send(fd, buf, (size_t)size, 0) != size) {
            perror("udp_baseline: send");
            return -1;
        }
        ssize_t r;
        while ((r = recv(fd, in, sizeof in, 0)) >= 0)
            if (r == size && memcmp(in, &seq, sizeof seq) == 0)
                return 0; /* anything else is a late answer to an earlier ping */
        if (errno != EAGAIN && errno != EINTR) {
            perror("udp_baseline: recv");
            return -1;
        }
    }
}

static int pingpong(const struct opts *o)
{
    int fd = open_socket(o->host, o->port, 0, RESEND_MS);
    uint8_t *buf = calloc(1, (size_t)o->size);
    uint64_t *lat = calloc((size_t)o->n, sizeof *lat);
    int rc = fd >= 0 && buf && lat ? 0 : 1;
    long warm = o->n / 10;
    for (long i = 0; rc == 0 && i < warm; i++) /* caches, branch predictors, CPU clocks */
        rc = ping(fd, buf, o->size, (uint32_t)i) ? 1 : 0;
    for (long i = 0; rc == 0 && i < o->n; i++) {
        uint64_t t0 = now_ns();
        rc = ping(fd, buf, o->size, (uint32_t)(warm + i)) ? 1 : 0;
        lat[i] = now_ns() - t0;
    }
    if (rc == 0)
        print_latency(lat, o->n);
    free(lat);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- load: C clients, one request outstanding each ---------------------- */

struct load {
    int fd;
    int clients, size;
    uint32_t *seq; /* the outstanding request of each client */
    struct batch rx, tx;
    uint64_t warm_end, end; /* ns */
    uint64_t completed, resent;
};

/* Queues client c's request in tx slot slot. */
static void put_request(struct load *l, int slot, uint32_t c)
{
    uint8_t *p = l->tx.iov[slot].iov_base;
    memcpy(p, &c, sizeof c);
    memcpy(p + 4, &l->seq[c], sizeof l->seq[c]);
    l->tx.iov[slot].iov_len = (size_t)l->size;
    l->tx.msgs[slot].msg_hdr.msg_name = NULL; /* connected socket */
}

/* Sends every client's outstanding request: at the start, and after a loss. */
static void send_outstanding(struct load *l)
{
    for (int c = 0; c < l->clients; c += BATCH) {
        int n = l->clients - c < BATCH ? l->clients - c : BATCH;
        for (int i = 0; i < n; i++)
            put_request(l, i, (uint32_t)(c + i));
        send_all(l->fd, l->tx.msgs, n);
    }
}

/* Takes the answers of one receive and sends each answered client's next
 * request, all in one sendmmsg. */
static void answer_batch(struct load *l, int n, uint64_t now)
{
    int out = 0;
    for (int i = 0; i < n; i++) {
        uint32_t c, seq;
        const uint8_t *p = l->rx.iov[i].iov_base;
        if (l->rx.msgs[i].msg_len < MIN_SIZE)
            continue;
        memcpy(&c, p, sizeof c);
        memcpy(&seq, p + 4, sizeof seq);
        if (c >= (uint32_t)l->clients || seq != l->seq[c])
            continue; /* a duplicate from a resend */
        if (now >= l->warm_end && now < l->end)
            l->completed++;
        l->seq[c]++;
        put_request(l, out++, c);
    }
    send_all(l->fd, l->tx.msgs, out);
}

static int run_load(struct load *l)
{
    send_outstanding(l);
    for (uint64_t now = now_ns(); now < l->end && !stop_flag; now = now_ns()) {
        batch_arm_recv(&l->rx, 0);
        int n = recvmmsg(l->fd, l->rx.msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            l->resent++;
            send_outstanding(l);
        } else if (n < 0 && errno != EINTR) {
            perror("udp_baseline: recvmmsg");
            return -1;
        } else if (n > 0) {
            answer_batch(l, n, now_ns());
        }
    }
    return 0;
}

static int load(const struct opts *o)
{
    struct load l = {.clients = o->clients, .size = o->size};
    l.fd = open_socket(o->host, o->port, 0, RESEND_MS);
    l.seq = calloc((size_t)o->clients, sizeof *l.seq);
    int rc = l.fd < 0 || !l.seq || batch_init(&l.rx) || batch_init(&l.tx) ? -1 : 0;
    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns();
    l.warm_end = t0 + (uint64_t)(o->warmup * 1e9);
    l.end = l.warm_end + (uint64_t)(o->seconds * 1e9);
    if (rc == 0)
        rc = run_load(&l);
    double wall = (double)(now_ns() - t0) / 1e9;
    if (rc == 0)
        printf("calls_per_s=%.0f clients=%d calls=%llu resent=%llu client_cpu_pct=%.0f\n",
               (double)l.completed / o->seconds, o->clients, (unsigned long long)l.completed,
               (unsigned long long)l.resent, 100.0 * (cpu_seconds() - cpu0) / wall);
    free(l.rx.bufs);
    free(l.tx.bufs);
    free(l.seq);
    if (l.fd >= 0)
        close(l.fd);
    return rc == 0 ? 0 : 1;
}

/* ---- command line ------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: udp_baseline echo-server [--host H] [--port P]\n"
                    "       udp_baseline pingpong [--host H] --port P [--n N] [--size S]\n"
                    "       udp_baseline load [--host H] --port P [--clients C] [--seconds T]"
                    " [--warmup T] [--size S]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},    {"port", required_argument, NULL, 'p'},
        {"n", required_argument, NULL, 'n'},       {"size", required_argument, NULL, 's'},
        {"clients", required_argument, NULL, 'c'}, {"seconds", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},  {NULL, 0, NULL, 0},
    };
    *o = (struct opts){"127.0.0.1", 0, 20000, 48, 1, 3.0, 0.5};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = atoi(optarg);
            break;
        case 'n':
            o->n = atol(optarg);
            break;
        case 's':
            o->size = atoi(optarg);
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
    if (optind != argc || o->port < 0 || o->port > 65535 || o->n < 1 || o->size < MIN_SIZE ||
        o->size > BUF_SIZE || o->clients < 1 || o->clients > MAX_CLIENTS || o->seconds <= 0 ||
        o->warmup < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (argc < 2 || parse_opts(argc - 1, argv + 1, &o) != 0) {
        usage();
        return 2;
    }
    /* No SA_RESTART: a blocked receive returns EINTR and the loop stops. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (!strcmp(argv[1], "echo-server"))
        return echo_server(&o);
    if (o.port == 0) {
        fprintf(stderr, "udp_baseline: %s needs --port\n", argv[1]);
        return 2;
    }
    if (!strcmp(argv[1], "pingpong"))
        return pingpong(&o);
    if (!strcmp(argv[1], "load"))
        return load(&o);
    usage();
    return 2;
}
