/*
 * multifetch.c - several files fetched at once from rcatd on one rpc2
 * context, each with its events. rpc2 runs one call at a time on a
 * connection, so concurrency comes from several connections, which are
 * cheap: this binds LANES of them without waiting (rpc2_bind_async), and
 * each lane fetches the next file as soon as its last one is over
 * (rpc2_call_async with a side-effect descriptor). Everything runs on the
 * context's own loop (rpc2_ctx_run) until the last file is done. Small
 * files ride in the reply datagram, so with several calls in flight each
 * costs a fraction of a round trip.
 *
 *   multifetch HOST PORT DIR PATH...     fetch each PATH into DIR/BASENAME
 *
 * It prints one line per event it cares about (INIT, STOP) and exits 0
 * when every file came whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc2/rpc2.h>
#include <rpc2/event.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>
#include <rpc2/rcat_proto.h>

#define LANES 4

struct lane;

struct run {
    rpc2_ctx *ctx;
    const char *dir;
    char **paths;
    int n_paths, next, left, failed;
};

/* One connection and the file it fetches now. */
struct lane {
    struct run *run;
    rpc2_conn *conn;
    const char *path;
    char local[4096];
    fetch_args args;
    file_info info;
    struct rpc2_se_desc desc;
};

/* Events arrive on the loop thread, for one transfer: desc.event_arg says
 * which. */
static int on_event(const struct rpc2_event *ev, void *arg)
{
    struct lane *l = arg;

    if (ev->type == RPC2_EVENT_INIT)
        printf("INIT %s\n", l->path);
    else if (ev->type == RPC2_EVENT_STOP)
        printf("STOP %s %llu bytes%s %s\n", l->path, (unsigned long long)ev->file_bytes,
               ev->piggybacked ? " (in the reply)" : "",
               ev->result ? rpc2_errname(ev->result) : "ok");
    return RPC2_EVENT_CONTINUE;
}

static void start_next(struct lane *l);

static void fetched(int status, void *result, void *arg)
{
    struct lane *l = arg;

    (void)result;
    if (status != 0) { /* > 0: rcatd's rcat_status; < 0: an rpc2 error */
        fprintf(stderr, "multifetch: %s: %s\n", l->path,
                status > 0 ? "refused by rcatd" : rpc2_strerror(status));
        l->run->failed++;
    }
    if (--l->run->left == 0)
        rpc2_ctx_stop(l->run->ctx);
    start_next(l);
}

static void start_next(struct lane *l)
{
    struct run *r = l->run;
    const char *base;
    int rc;

    if (r->next == r->n_paths)
        return;
    l->path = r->paths[r->next++];
    base = strrchr(l->path, '/') ? strrchr(l->path, '/') + 1 : l->path;
    snprintf(l->local, sizeof l->local, "%s/%s", r->dir, base);
    l->args = (fetch_args){.path = (char *)l->path, .offset = 0, .length = -1};
    memset(&l->info, 0, sizeof l->info);
    rpc2_se_desc_init(&l->desc, RPC2_SE_FETCH);
    l->desc.file_kind = RPC2_SE_FILE_NAME;
    l->desc.file.name.path = l->local;
    l->desc.file.name.mode = 0644;
    l->desc.file.name.atomic = 1; /* whole, or not at all */
    l->desc.event = on_event;
    l->desc.event_arg = l;
    struct rpc2_call_opts opts = {.se = &l->desc};
    rc = rpc2_call_async(l->conn, RCAT_FETCH, (xdrproc_t)xdr_fetch_args, &l->args,
                         (xdrproc_t)xdr_file_info, &l->info, &opts, fetched, l);
    if (rc != 0)
        fetched(rc, NULL, l);
}

static void bound(int status, rpc2_conn *conn, void *arg)
{
    struct lane *l = arg;

    if (status != 0) {
        fprintf(stderr, "multifetch: bind: %s\n", rpc2_strerror(status));
        l->run->failed++;
        rpc2_ctx_stop(l->run->ctx); /* the files it would have taken would wait for ever */
        return;
    }
    l->conn = conn;
    start_next(l);
}

int main(int argc, char **argv)
{
    struct rpc2_params params;
    struct run run = {0};
    struct lane lanes[LANES] = {{0}};
    int rc, n;

    if (argc < 5) {
        fprintf(stderr, "usage: multifetch HOST PORT DIR PATH...\n");
        return 2;
    }
    rpc2_params_init(&params);
    params.dead_peer_us = 5 * 1000 * 1000;
    rc = rpc2_ctx_new(&params, &run.ctx);
    if (rc == 0)
        rc = rpc2_sftp_activate(run.ctx, NULL);
    if (rc != 0) {
        fprintf(stderr, "multifetch: %s\n", rpc2_strerror(rc));
        return 1;
    }
    run.dir = argv[3];
    run.paths = argv + 4;
    run.n_paths = run.left = argc - 4;
    n = run.n_paths < LANES ? run.n_paths : LANES;
    struct rpc2_bind_params bind = {
        .host = argv[1],
        .port = argv[2],
        .subsystem = RCAT_SUBSYS,
        .se_type = RPC2_SE_SFTP,
        .identity = "multifetch-example",
    };
    for (int i = 0; i < n; i++) {
        lanes[i].run = &run;
        rc = rpc2_bind_async(run.ctx, &bind, bound, &lanes[i]);
        if (rc != 0) {
            fprintf(stderr, "multifetch: %s\n", rpc2_strerror(rc));
            rpc2_ctx_free(run.ctx);
            return 1;
        }
    }
    rpc2_ctx_run(run.ctx); /* until the last file is over (or a bind failed) */
    for (int i = 0; i < n; i++)
        if (lanes[i].conn)
            rpc2_unbind(lanes[i].conn);
    rpc2_ctx_free(run.ctx);
    return run.failed || run.left ? 1 : 0;
}
