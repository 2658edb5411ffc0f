/*
 * rtime_server.c - the smallest rpc2 server: it exports one subsystem with
 * one procedure that answers with the server's clock.
 *
 *   rtime_server [ADDR:PORT]      (default 127.0.0.1:7755; port 0 picks one)
 *
 * It prints "rtime_server listening on PORT" and serves until killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <rpc2/rpc2.h>

#include "rtime.h"

/* An async handler: it runs on the loop thread, fills the result and
 * replies at once. The library encodes the result with xdr_rtime_result
 * and frees what the handler allocated in it (zone) afterwards. */
static void gettime(rpc2_request *req, void *args, void *result, void *arg)
{
    rtime_result *out = result;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    out->seconds = tv.tv_sec;
    out->micros = (unsigned)tv.tv_usec;
    out->zone = strdup("UTC");
    rpc2_reply(req, out->zone ? 0 : RPC2_ENOMEM);
}

static const struct rpc2_proc rtime_procs[] = {
    {
        .proc = RTIME_GETTIME,
        .encode_result = (xdrproc_t)xdr_rtime_result,
        .result_size = sizeof(rtime_result),
        .async_handler = gettime,
    },
};

int main(int argc, char **argv)
{
    struct rpc2_params params;
    rpc2_params_init(&params);
    params.listen[0] = argc > 1 ? argv[1] : "127.0.0.1:7755";
    params.n_listen = 1;

    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc == 0)
        rc = rpc2_export(ctx, RTIME_SUBSYS, rtime_procs, 1, NULL);
    if (rc != 0) {
        fprintf(stderr, "rtime_server: %s\n", rpc2_strerror(rc));
        return 1;
    }
    printf("rtime_server listening on %d\n", rpc2_ctx_port(ctx));
    fflush(stdout);
    rpc2_ctx_run(ctx); /* until rpc2_ctx_stop() or the process is killed */
    rpc2_ctx_free(ctx);
    return 0;
}
