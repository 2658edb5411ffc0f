/*
 * rtime_client.c - the smallest rpc2 client: bind to a server, make one
 * call, print the answer, unbind.
 *
 *   rtime_client [HOST [PORT]]    (default 127.0.0.1 7755)
 */
#include <stdio.h>
#include <time.h>
#include <rpc2/rpc2.h>

#include "rtime.h"

int main(int argc, char **argv)
{
    struct rpc2_params params;
    rpc2_params_init(&params); /* no listen address: a client socket */
    params.dead_peer_us = 5 * 1000 * 1000; /* give up after 5 s of silence */

    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc != 0) {
        fprintf(stderr, "rtime_client: %s\n", rpc2_strerror(rc));
        return 1;
    }
    struct rpc2_bind_params bind = {
        .host = argc > 1 ? argv[1] : "127.0.0.1",
        .port = argc > 2 ? argv[2] : "7755",
        .subsystem = RTIME_SUBSYS,
        .identity = "rtime-example",
    };
    rpc2_conn *conn;
    rc = rpc2_bind(ctx, &bind, &conn);
    if (rc == 0) {
        /* The blocking call runs the context's loop until the reply is in. */
        rtime_result result = {0};
        rc = rpc2_call(conn, RTIME_GETTIME, NULL, NULL, (xdrproc_t)xdr_rtime_result, &result,
                       NULL);
        if (rc == 0) {
            time_t t = (time_t)result.seconds;
            struct tm tm;
            char text[64];
            strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
            printf("server time: %s.%06u %s\n", text, result.micros, result.zone);
            xdr_free((xdrproc_t)xdr_rtime_result, (char *)&result);
        }
        rpc2_unbind(conn);
    }
    if (rc != 0)
        fprintf(stderr, "rtime_client: %s\n", rpc2_strerror(rc));
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
