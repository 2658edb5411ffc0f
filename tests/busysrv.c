/*
 * busysrv.c - an rcatd that is always busy: it speaks rcat's subsystem
 * (rcat/rcat_proto.x) and accepts every call, but never finishes one, so
 * each client retrying its call is answered BUSY for ever. What rcat's
 * --timeout and --max-time do against a server that answers but never
 * replies is tested against it (tests/test_rcat_client.sh).
 *
 *   busysrv [--listen ADDR:PORT]
 *
 * Prints "busysrv listening on PORT" once ready; SIGTERM or SIGINT stop it.
 */
#include <stdio.h>
#include <string.h>

#include <ev.h>
#include <rpc2/rpc2.h>
#include <rpc2/sftp.h>

#include "rcat_proto.h"
#include "srv_run.h"

/* Holds the request: no reply, ever (the library answers retries BUSY). */
static void hold(rpc2_request *req, void *args, void *result, void *arg)
{
    (void)req;
    (void)args;
    (void)result;
    (void)arg;
}

static const struct rpc2_proc procs[] = {
    {.proc = RCAT_FETCH,
     .decode_args = (xdrproc_t)xdr_fetch_args,
     .args_size = sizeof(fetch_args),
     .encode_result = (xdrproc_t)xdr_file_info,
     .result_size = sizeof(file_info),
     .async_handler = hold},
    {.proc = RCAT_STAT,
     .decode_args = (xdrproc_t)xdr_path_args,
     .args_size = sizeof(path_args),
     .encode_result = (xdrproc_t)xdr_file_info,
     .result_size = sizeof(file_info),
     .async_handler = hold},
    {.proc = RCAT_LIST,
     .decode_args = (xdrproc_t)xdr_list_args,
     .args_size = sizeof(list_args),
     .encode_result = (xdrproc_t)xdr_list_result,
     .result_size = sizeof(list_result),
     .async_handler = hold},
    {.proc = RCAT_STORE,
     .decode_args = (xdrproc_t)xdr_store_args,
     .args_size = sizeof(store_args),
     .encode_result = (xdrproc_t)xdr_file_info,
     .result_size = sizeof(file_info),
     .async_handler = hold},
};

int main(int argc, char **argv)
{
    struct rpc2_params p;
    struct ev_loop *loop = ev_default_loop(0);
    rpc2_ctx *ctx;

    rpc2_params_init(&p);
    p.listen[p.n_listen++] = argc == 3 && !strcmp(argv[1], "--listen") ? argv[2] : "127.0.0.1:0";
    p.loop = loop;
    if (!loop || rpc2_ctx_new(&p, &ctx) != 0 || rpc2_sftp_activate(ctx, NULL) != 0 ||
        rpc2_export(ctx, RCAT_SUBSYS, procs, sizeof procs / sizeof procs[0], NULL) != 0) {
        fprintf(stderr, "busysrv: cannot start\n");
        return 1;
    }
    srv_run(loop, ctx, "busysrv");
    rpc2_ctx_free(ctx);
    return 0;
}
