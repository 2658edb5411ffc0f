/*
 * testsrv.c - the server the loopback tests and benchmarks talk to. It
 * exports the test subsystem (tests/testproto.x) with async and blocking
 * handlers, and counts how often each client's INCR calls ran, so a test
 * can prove that no call was executed twice.
 *
 *   testsrv [--listen ADDR:PORT]... [--workers N] [--dead-ms N] [--idle-ms N]
 *           [--root DIR] [--packet N] [--piggyback-max N] [--no-piggyback]
 *           [--keys FILE] [--min-security none|auth|encrypt] [-v]
 *
 * TEST_FETCH and TEST_STORE move files under --root with SFTP, the server's
 * end described as the arguments say (by name, fd, inode or memory).
 *
 * Prints "testsrv listening on PORT" once ready; SIGTERM or SIGINT stop it
 * cleanly (all memory freed, for valgrind).
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/stat.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "testproto.h"

#define COUNTERS 8192 /* distinct client ids a run may use */

struct counters {
    pthread_mutex_t lock;
    uint32_t client[COUNTERS];
    uint32_t count[COUNTERS];
};

struct server {
    rpc2_ctx *ctx;
    struct counters counters;
    const char *root;
    rpc2_keys *keys; /* --keys: the secrets of identities */
};

static int security_of(const char *name)
{
    return !strcmp(name, "none") ? RPC2_SEC_NONE : !strcmp(name, "auth") ? RPC2_SEC_AUTH
                                               : !strcmp(name, "encrypt") ? RPC2_SEC_ENCRYPT : -1;
}

static int load_keys(struct server *s, const char *path, struct rpc2_params *p)
{
    char err[512];
    if (rpc2_keys_load(path, &s->keys, err, sizeof err) != 0) {
        fprintf(stderr, "testsrv: %s\n", err);
        return -1;
    }
    p->secret_for = rpc2_keys_secret_for;
    p->secret_arg = s->keys;
    return 0;
}

/* The server's end of one transfer, alive until the reply. */
#define VM_MAX (64u << 20)

struct xfer_end {
    struct rpc2_se_desc desc;
    char path[PATH_MAX];
    int fd;
    void *vm;
    quad_t *moved;
};

/* The signal handler's only way to the context. */
static rpc2_ctx *volatile stop_ctx;

static uint32_t counter_bump(struct counters *c, uint32_t client)
{
    pthread_mutex_lock(&c->lock);
    uint32_t slot = (client * 2654435761u) % COUNTERS, value = 0;
    for (unsigned probe = 0; probe < COUNTERS; probe++, slot = (slot + 1) % COUNTERS) {
        if (c->client[slot] == client || c->client[slot] == 0) {
            c->client[slot] = client;
            value = ++c->count[slot];
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return value;
}

static void h_null(rpc2_request *req, void *args, void *result, void *arg)
{
    rpc2_reply(req, 0);
}

static void h_add(rpc2_request *req, void *args, void *result, void *arg)
{
    const add_args *a = args;
    *(int *)result = a->a + a->b;
    rpc2_reply(req, 0);
}

static void h_echo(rpc2_request *req, void *args, void *result, void *arg)
{
    blob *in = args, *out = result;
    /* Hand the decoded buffer over: the library frees the result after encoding. */
    *out = *in;
    in->data.data_val = NULL;
    in->data.data_len = 0;
    rpc2_reply(req, 0);
}

static void h_incr(rpc2_request *req, void *args, void *result, void *arg)
{
    struct server *s = arg;
    *(unsigned *)result = counter_bump(&s->counters, ((incr_args *)args)->client);
    rpc2_reply(req, 0);
}

static int h_slow_incr(rpc2_request *req, void *args, void *result, void *arg)
{
    struct server *s = arg;
    const incr_args *a = args;
    struct timespec ts = {a->sleep_ms / 1000, (long)(a->sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *(unsigned *)result = counter_bump(&s->counters, a->client);
    return 0;
}

static void h_name(rpc2_request *req, void *args, void *result, void *arg)
{
    *(unsigned *)result = (unsigned)strlen(((name_args *)args)->name);
    rpc2_reply(req, 0);
}

static void h_fail(rpc2_request *req, void *args, void *result, void *arg)
{
    rpc2_reply(req, 42);
}

static void h_stats(rpc2_request *req, void *args, void *result, void *arg)
{
    struct server *s = arg;
    server_stats *out = result;
    struct rpc2_ctx_stats st;
    rpc2_ctx_stats(s->ctx, &st);
    out->connections = rpc2_ctx_conn_count(s->ctx);
    out->calls_executed = st.calls_executed;
    out->duplicate_requests = st.duplicate_requests;
    out->busy_sent = st.busy_sent;
    rpc2_reply(req, 0);
}

/* ---- side effects ------------------------------------------------------ */

static int open_end(struct xfer_end *x, const xfer_args *a, enum rpc2_se_direction dir)
{
    struct rpc2_se_desc *d = &x->desc;
    d->type = RPC2_SE_SFTP;
    d->direction = dir;
    d->seek_offset = a->offset;
    d->quota = a->quota;
    x->fd = -1;
    int fetch = dir == RPC2_SE_FETCH;
    switch (a->kind) {
    case TEST_KIND_NAME:
        d->file_kind = RPC2_SE_FILE_NAME;
        d->file.name.path = x->path;
        d->file.name.mode = 0644;
        d->file.name.atomic = a->atomic;
        return 0;
    case TEST_KIND_FD:
        x->fd = fetch ? open(x->path, O_RDONLY) : open(x->path, O_WRONLY | O_CREAT, 0644);
        d->file_kind = RPC2_SE_FILE_FD;
        d->file.fd.fd = x->fd;
        return x->fd >= 0 ? 0 : RPC2_ENOENT;
    case TEST_KIND_INODE:
        if (!fetch)
            close(open(x->path, O_WRONLY | O_CREAT, 0644));
        d->file_kind = RPC2_SE_FILE_INODE;
        return rpc2_se_inode_of(x->path, d);
    case TEST_KIND_VM: {
        struct stat st;
        x->vm = malloc(VM_MAX);
        d->file_kind = RPC2_SE_FILE_VM;
        d->file.vm.buf = x->vm;
        d->file.vm.max = VM_MAX;
        if (!fetch)
            return x->vm ? 0 : RPC2_ENOMEM;
        int fd = open(x->path, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size > VM_MAX) {
            if (fd >= 0)
                close(fd);
            return RPC2_ENOENT;
        }
        d->file.vm.len = (size_t)read(fd, x->vm, (size_t)st.st_size);
        close(fd);
        return 0;
    }
    }
    return RPC2_EINVAL;
}

/* A memory sink's bytes go to the file once the transfer is done. */
static int close_end(struct xfer_end *x, int status)
{
    if (x->desc.file_kind == RPC2_SE_FILE_INODE)
        close(x->desc.file.inode.mount_fd);
    if (x->fd >= 0)
        close(x->fd);
    if (status == 0 && x->vm && x->desc.direction == RPC2_SE_STORE) {
        int fd = open(x->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ssize_t n = fd >= 0 ? write(fd, x->vm, x->desc.file.vm.len) : -1;
        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)x->desc.file.vm.len)
            status = RPC2_EIO;
    }
    *x->moved = (quad_t)x->desc.bytes_transferred;
    free(x->vm);
    free(x);
    return status;
}

static struct xfer_end *new_end(struct server *s, const xfer_args *a, void *result)
{
    struct xfer_end *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    snprintf(x->path, sizeof x->path, "%s/%s", s->root, a->path);
    x->moved = result;
    return x;
}

static void async_done(rpc2_request *req, int status, void *arg)
{
    rpc2_reply(req, close_end(arg, status));
}

static void async_transfer(rpc2_request *req, const xfer_args *a, void *result, void *arg,
                           enum rpc2_se_direction dir)
{
    struct xfer_end *x = new_end(arg, a, result);
    if (!x) {
        rpc2_reply(req, RPC2_ENOMEM);
        return;
    }
    int rc = open_end(x, a, dir);
    if (rc == 0)
        rc = rpc2_se_init(req, &x->desc);
    if (rc == 0)
        rc = rpc2_se_check_async(req, async_done, x);
    if (rc != 0)
        rpc2_reply(req, close_end(x, rc));
}

static void h_fetch(rpc2_request *req, void *args, void *result, void *arg)
{
    async_transfer(req, args, result, arg, RPC2_SE_FETCH);
}

static void h_store(rpc2_request *req, void *args, void *result, void *arg)
{
    async_transfer(req, args, result, arg, RPC2_SE_STORE);
}

/* The blocking form: plain sequential code on a worker thread. */
static int blocking_transfer(rpc2_request *req, const xfer_args *a, void *result, void *arg,
                             enum rpc2_se_direction dir)
{
    struct xfer_end *x = new_end(arg, a, result);
    if (!x)
        return RPC2_ENOMEM;
    int rc = open_end(x, a, dir);
    if (rc == 0)
        rc = rpc2_se_init(req, &x->desc);
    if (rc == 0)
        rc = rpc2_se_check(req);
    return close_end(x, rc);
}

static int h_fetch_blocking(rpc2_request *req, void *args, void *result, void *arg)
{
    return blocking_transfer(req, args, result, arg, RPC2_SE_FETCH);
}

static int h_store_blocking(rpc2_request *req, void *args, void *result, void *arg)
{
    return blocking_transfer(req, args, result, arg, RPC2_SE_STORE);
}

#define PROC(num, dec, atype, enc, rtype, kind, fn)                                                \
    {                                                                                              \
        .proc = num, .decode_args = (xdrproc_t)dec, .args_size = atype,                            \
        .encode_result = (xdrproc_t)enc, .result_size = rtype, .kind = fn                          \
    }

static const struct rpc2_proc test_procs[] = {
    PROC(TEST_NULL, NULL, 0, NULL, 0, async_handler, h_null),
    PROC(TEST_ADD, xdr_add_args, sizeof(add_args), xdr_int, sizeof(int), async_handler, h_add),
    PROC(TEST_ECHO, xdr_blob, sizeof(blob), xdr_blob, sizeof(blob), async_handler, h_echo),
    PROC(TEST_INCR, xdr_incr_args, sizeof(incr_args), xdr_u_int, sizeof(unsigned), async_handler,
         h_incr),
    PROC(TEST_SLOW_INCR, xdr_incr_args, sizeof(incr_args), xdr_u_int, sizeof(unsigned),
         blocking_handler, h_slow_incr),
    PROC(TEST_NAME, xdr_name_args, sizeof(name_args), xdr_u_int, sizeof(unsigned), async_handler,
         h_name),
    PROC(TEST_FAIL, NULL, 0, NULL, 0, async_handler, h_fail),
    PROC(TEST_STATS, NULL, 0, xdr_server_stats, sizeof(server_stats), async_handler, h_stats),
    PROC(TEST_FETCH, xdr_xfer_args, sizeof(xfer_args), xdr_quad_t, sizeof(quad_t), async_handler,
         h_fetch),
    PROC(TEST_STORE, xdr_xfer_args, sizeof(xfer_args), xdr_quad_t, sizeof(quad_t), async_handler,
         h_store),
    PROC(TEST_FETCH_BLOCKING, xdr_xfer_args, sizeof(xfer_args), xdr_quad_t, sizeof(quad_t),
         blocking_handler, h_fetch_blocking),
    PROC(TEST_STORE_BLOCKING, xdr_xfer_args, sizeof(xfer_args), xdr_quad_t, sizeof(quad_t),
         blocking_handler, h_store_blocking),
};

static void on_signal(int sig)
{
    (void)sig;
    if (stop_ctx)
        rpc2_ctx_stop(stop_ctx); /* ev_async_send is async-signal-safe */
}

static void log_stderr(enum rpc2_log_level level, const char *msg, void *arg)
{
    fprintf(stderr, "testsrv: %s\n", msg);
}

static int parse_args(int argc, char **argv, struct rpc2_params *p, struct rpc2_sftp_params *sp,
                      struct server *s)
{
    p->workers = 4;
    s->root = ".";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--root") && i + 1 < argc) {
            s->root = argv[++i];
            continue;
        }
        if (!strcmp(argv[i], "--packet") && i + 1 < argc) {
            sp->packet_size = (uint32_t)atoi(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--piggyback-max") && i + 1 < argc) {
            sp->piggyback_max = (uint32_t)atoi(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--no-piggyback")) {
            sp->piggyback = 0;
            continue;
        }
        if (!strcmp(argv[i], "--keys") && i + 1 < argc) {
            if (load_keys(s, argv[++i], p) != 0)
                return -1;
            continue;
        }
        if (!strcmp(argv[i], "--min-security") && i + 1 < argc && security_of(argv[i + 1]) >= 0) {
            p->min_security = (enum rpc2_security)security_of(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--listen") && i + 1 < argc && p->n_listen < RPC2_MAX_LISTEN)
            p->listen[p->n_listen++] = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            p->workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dead-ms") && i + 1 < argc)
            p->dead_peer_us = (uint32_t)atoi(argv[++i]) * 1000u;
        else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
            p->idle_timeout_us = (uint64_t)atoi(argv[++i]) * 1000u;
        else if (!strcmp(argv[i], "-v"))
            p->log = log_stderr, p->log_level = RPC2_LOG_DEBUG;
        else {
            fprintf(stderr, "usage: testsrv [--listen ADDR:PORT]... [--workers N] [--dead-ms N] "
                            "[--idle-ms N]\n");
            return -1;
        }
    }
    if (p->n_listen == 0)
        p->listen[p->n_listen++] = "127.0.0.1:0";
    return 0;
}

int main(int argc, char **argv)
{
    struct rpc2_params p;
    struct rpc2_sftp_params sp;
    rpc2_params_init(&p);
    rpc2_sftp_params_init(&sp);
    struct server *s = calloc(1, sizeof *s);
    if (parse_args(argc, argv, &p, &sp, s) != 0)
        return 1;
    pthread_mutex_init(&s->counters.lock, NULL);
    int rc = rpc2_ctx_new(&p, &s->ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(s->ctx, &sp);
    if (rc == 0)
        rc = rpc2_export(s->ctx, TEST_SUBSYS, test_procs,
                         sizeof test_procs / sizeof test_procs[0], s);
    if (rc != 0) {
        fprintf(stderr, "testsrv: %s\n", rpc2_strerror(rc));
        return 1;
    }
    stop_ctx = s->ctx;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("testsrv listening on %d\n", rpc2_ctx_port(s->ctx));
    fflush(stdout);
    rpc2_ctx_run(s->ctx);
    stop_ctx = NULL;
    rpc2_ctx_free(s->ctx);
    rpc2_keys_free(s->keys);
    pthread_mutex_destroy(&s->counters.lock);
    free(s);
    return 0;
}
