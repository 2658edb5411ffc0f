/*
 * rcat_client.c - fetch a file from rcat_server: one call, with a side-effect
 * descriptor attached that says where the file's bytes go. They go to
 * standard output, or to LOCAL, which appears only once it is complete.
 *
 *   rcat_client HOST PORT NAME [LOCAL]
 */
#include <stdio.h>
#include <unistd.h>
#include <rpc2/rpc2.h>
#include <rpc2/se.h>
#include <rpc2/sftp.h>

#include "rcat_example.h"

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: rcat_client HOST PORT NAME [LOCAL]\n");
        return 2;
    }
    struct rpc2_params params;
    rpc2_params_init(&params);             /* no listen address: a client socket */
    params.dead_peer_us = 5 * 1000 * 1000; /* give up after 5 s of silence */

    rpc2_ctx *ctx;
    int rc = rpc2_ctx_new(&params, &ctx);
    if (rc != 0) {
        fprintf(stderr, "rcat_client: %s\n", rpc2_strerror(rc));
        return 1;
    }
    rc = rpc2_sftp_activate(ctx, NULL); /* both ends need SFTP */
    struct rpc2_bind_params bind = {
        .host = argv[1],
        .port = argv[2],
        .subsystem = RCAT_EXAMPLE_SUBSYS,
        .se_type = RPC2_SE_SFTP, /* calls on this connection may carry files */
        .identity = "rcat-example",
    };
    rpc2_conn *conn;
    if (rc == 0)
        rc = rpc2_bind(ctx, &bind, &conn);

    /* This end of the transfer: where the bytes go. */
    /* The whole file, server to client (quota RPC2_SE_NO_QUOTA). */
    struct rpc2_se_desc desc = RPC2_SE_DESC_INIT(RPC2_SE_FETCH);
    if (argc == 5) {
        desc.file_kind = RPC2_SE_FILE_NAME;
        desc.file.name.path = argv[4];
        desc.file.name.mode = 0644;
        desc.file.name.atomic = 1; /* a temporary name, renamed into place when complete */
    } else {
        desc.file_kind = RPC2_SE_FILE_FD;
        desc.file.fd.fd = STDOUT_FILENO; /* a terminal, a file or a pipe */
    }
    if (rc == 0) {
        rcat_example_args args = {.name = argv[3]};
        struct rpc2_call_opts opts = {.se = &desc};
        /* Returns once the reply is in, and with it the whole file. */
        rc = rpc2_call(conn, RCAT_EXAMPLE_FETCH, (xdrproc_t)xdr_rcat_example_args, &args, NULL,
                       NULL, &opts);
        rpc2_unbind(conn);
    }
    if (rc == RCAT_EXAMPLE_BAD_NAME)
        fprintf(stderr, "rcat_client: %s: not a plain file name\n", argv[3]);
    else if (rc != 0 && desc.error != 0) /* the side effect failed: desc.error says why */
        fprintf(stderr, "rcat_client: %s: %s (%s side)\n", argv[3], rpc2_strerror(desc.error),
                desc.remote_status == RPC2_SE_FAILURE ? "server" : "client");
    else if (rc != 0)
        fprintf(stderr, "rcat_client: %s\n", rpc2_strerror(rc));
    rpc2_ctx_free(ctx);
    return rc == 0 ? 0 : 1;
}
